//! The cgroup counter parsers (`cpuacct.usage`, `cpu.stat`, `memory.current` with
//! `memory.stat`): total over any text, and what they return is what the text says.
#![no_main]

use libfuzzer_sys::fuzz_target;
use opsdeck::collect::cgroup::{memory_in_use, parse_v1_cpu, parse_v2_cpu, stat_value};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Some(ns) = parse_v1_cpu(&text) {
        assert_eq!(text.trim().parse::<u64>().ok(), Some(ns));
    }
    if let Some(ns) = parse_v2_cpu(&text) {
        let us = stat_value(&text, "usage_usec").expect("parse_v2_cpu read usage_usec");
        assert_eq!(ns, us.saturating_mul(1000));
    }
    // The first line as a usage counter, the rest as memory.stat.
    let (usage, stat) = text.split_once('\n').unwrap_or((&text, ""));
    if let Some(used) = memory_in_use(usage, stat) {
        let total: u64 = usage
            .trim()
            .parse()
            .expect("memory_in_use parsed the usage");
        assert!(used <= total);
    }
    // Any key the text names.
    if let Some(key) = text.split_whitespace().next()
        && let Some(v) = stat_value(&text, key)
    {
        assert!(text.lines().any(|l| {
            let mut w = l.split_whitespace();
            w.next() == Some(key) && w.next().and_then(|x| x.parse::<u64>().ok()) == Some(v)
        }));
    }
});
