//! A Netdata agent's answers (hostile: any bytes, a proxy's error page, an agent that
//! lies): parsing never panics, and every figure it keeps is finite and in range.
#![no_main]

use std::collections::HashMap;

use libfuzzer_sys::fuzz_target;
use opsdeck::metrics::netdata::{history, parse_data, parse_now};

fuzz_target!(|data: &[u8]| {
    if let Ok(now) = parse_now(data) {
        let m = &now.metrics;
        assert!((0.0..=100.0).contains(&m.cpu_percent));
        assert!(m.per_core.iter().all(|c| (0.0..=100.0).contains(c)));
        assert!(m.mem_used_bytes <= m.mem_total_bytes, "{m:?}");
        assert!(m.swap_used_bytes <= m.swap_total_bytes, "{m:?}");
        assert!(m.net_rx_bps.is_finite() && m.net_tx_bps.is_finite());
        assert!(m.net_rx_bps >= 0.0 && m.net_tx_bps >= 0.0);
        assert!(m.load.iter().all(|l| l.is_finite() && *l >= 0.0));
        assert!(m.disks.len() <= 64);
        assert!(m.disks.iter().all(|d| d.used_bytes <= d.total_bytes));
        assert!(now.containers.len() <= 4096);
        for (name, (cpu, _)) in &now.containers {
            assert!(cpu.is_finite() && *cpu >= 0.0);
            assert!(!name.chars().any(opsdeck::sanitize::is_unsafe));
        }
        assert!(now.interfaces.len() <= 64);
    }
    if let Ok(d) = parse_data(data) {
        assert!(d.rows.len() <= 2400 && d.labels.len() <= 256);
        assert!(d.rows.windows(2).all(|w| w[0].0 <= w[1].0));
        let answers: HashMap<String, _> = ["system.cpu", "system.ram", "mem.available", "system.load", "net.eth0"]
            .iter()
            .map(|c| (c.to_string(), d.clone()))
            .collect();
        let h = history(&answers);
        for s in [&h.cpu, &h.mem_pct, &h.load1, &h.rx, &h.tx] {
            assert!(s.iter().all(|(_, v)| v.is_finite()));
            assert!(s.windows(2).all(|w| w[0].0 <= w[1].0));
        }
        assert!(h.cpu.iter().chain(&h.mem_pct).all(|(_, v)| (0.0..=100.0).contains(v)));
    }
});
