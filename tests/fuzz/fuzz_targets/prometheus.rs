//! A Prometheus server's answers (hostile: any bytes, a proxy's error page, a server that
//! lies): parsing never panics, and every figure it keeps is finite and in range.
#![no_main]

use libfuzzer_sys::fuzz_target;
use opsdeck::metrics::prometheus::{parse_history, parse_instant};

fuzz_target!(|data: &[u8]| {
    if let Ok(all) = parse_instant(data) {
        for m in all.values() {
            assert!((0.0..=100.0).contains(&m.cpu_percent));
            assert!(m.per_core.iter().all(|c| (0.0..=100.0).contains(c)));
            assert!(m.mem_used_bytes <= m.mem_total_bytes);
            assert!(m.net_rx_bps.is_finite() && m.net_tx_bps.is_finite());
            assert!(m.load.iter().all(|l| l.is_finite() && *l >= 0.0));
            assert!(m.disks.len() <= 64);
            assert!(m.disks.iter().all(|d| d.used_bytes <= d.total_bytes));
        }
    }
    if let Ok(all) = parse_history(data) {
        for h in all.values() {
            for s in [&h.cpu, &h.mem_pct, &h.load1, &h.rx, &h.tx] {
                assert!(s.len() <= 2400);
                assert!(s.iter().all(|(_, v)| v.is_finite()));
                assert!(s.windows(2).all(|w| w[0].0 <= w[1].0));
            }
        }
    }
});
