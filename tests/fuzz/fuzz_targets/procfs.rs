//! The remote metrics sample (`/proc`, cgroup counters and `df`, one exec's output):
//! any text parses without a panic into a sample whose invariants hold, and the rates
//! made from any two samples stay finite and in range; the files named back to the
//! host's awk reader (`paths`) are plain, bounded words.
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use opsdeck::collect::procfs::{Sample, Sampler, counts_as_host_traffic, parse, paths};

fn invariants(s: &Sample) {
    assert!(
        s.per_core.windows(2).all(|w| w[0].0 < w[1].0),
        "per_core sorted, unique"
    );
    for d in &s.disks {
        assert!(d.mount.starts_with('/') && d.used_bytes <= d.total_bytes && d.total_bytes > 0);
    }
    assert!(
        s.disks.windows(2).all(|w| w[0].mount < w[1].mount),
        "disks sorted, unique"
    );
    for (i, n) in s.net.iter().enumerate() {
        assert!(counts_as_host_traffic(&n.name));
        assert!(
            s.net[..i].iter().all(|m| m.name != n.name),
            "{} twice",
            n.name
        );
    }
    assert!(s.load.iter().all(|l| l.is_finite() && *l >= 0.0));
    assert!(s.mem_used_bytes <= s.mem_total_bytes);
    assert!(s.swap_used_bytes <= s.swap_total_bytes);
    for id in s.containers.keys() {
        assert!(id.len() == 64 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')));
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    // The same output cut short, as a dropped connection leaves it.
    let mut cut = data
        .first()
        .map_or(0, |&b| usize::from(b) * text.len() / 255);
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    let t0 = Instant::now();
    let mut sampler = Sampler::default();
    for (n, part) in [&text[..cut], &text[..]].into_iter().enumerate() {
        let sample = parse(part);
        invariants(&sample);
        let files = paths(part);
        assert!(files.len() <= 1024);
        assert!(files.is_empty() || files.iter().any(|f| f == "/proc/stat"));
        for (i, f) in files.iter().enumerate() {
            assert!(f.starts_with('/') && f.len() <= 256, "{f:?}");
            assert!(!f.split('/').any(|p| p == ".."), "{f:?}");
            assert!(
                f.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"/._-:,@+".contains(&b)),
                "{f:?}"
            );
            assert!(!files[..i].contains(f), "{f:?} twice");
        }
        let at = t0 + Duration::from_millis(n as u64 * 500);
        let (m, containers) = sampler.next(sample, at);
        assert!((0.0..=100.0).contains(&m.cpu_percent), "{}", m.cpu_percent);
        assert!(m.per_core.iter().all(|p| (0.0..=100.0).contains(p)));
        assert!(m.net_rx_bps.is_finite() && m.net_rx_bps >= 0.0);
        assert!(m.net_tx_bps.is_finite() && m.net_tx_bps >= 0.0);
        assert!(
            containers
                .values()
                .all(|c| c.cpu_percent.is_none_or(|p| p.is_finite() && p >= 0.0))
        );
    }
});
