//! This machine's metrics through sysinfo (no SSH, no /proc parsing of our own).

use std::time::Instant;

use sysinfo::{CpuRefreshKind, Disks, MemoryRefreshKind, Networks, RefreshKind, System};

use crate::model::Metrics;
use crate::model::host::Disk;

pub struct LocalCollector {
    sys: System,
    disks: Option<Disks>,
    nets: Option<Networks>,
    last_net: Instant,
}

impl LocalCollector {
    pub fn new() -> Result<Self, String> {
        let sys = System::new_with_specifics(
            RefreshKind::nothing()
                .with_cpu(CpuRefreshKind::nothing().with_usage())
                .with_memory(MemoryRefreshKind::everything()),
        )
        .map_err(|e| format!("cannot read this machine's metrics: {e}"))?;
        Ok(LocalCollector {
            sys,
            // Missing disk or network tables are shown as empty rather than fatal.
            disks: Disks::new_with_refreshed_list().ok(),
            nets: Networks::new_with_refreshed_list().ok(),
            last_net: Instant::now(),
        })
    }

    /// One sample. CPU usage is measured since the previous call, so call it on a timer.
    pub fn sample(&mut self) -> Metrics {
        self.sys.refresh_cpu_usage();
        self.sys.refresh_memory();
        if let Some(d) = self.disks.as_mut() {
            d.refresh(true);
        }
        if let Some(n) = self.nets.as_mut() {
            n.refresh(true);
        }
        let now = Instant::now();
        let secs = now.duration_since(self.last_net).as_secs_f64().max(0.001);
        self.last_net = now;
        let (mut rx, mut tx) = (0u64, 0u64);
        for (name, data) in self.nets.iter().flat_map(|n| n.iter()) {
            if name != "lo" {
                rx += data.received();
                tx += data.transmitted();
            }
        }
        let load = System::load_average()
            .map(|l| [l.one, l.five, l.fifteen])
            .unwrap_or_default();
        let mut disks: Vec<Disk> = Vec::new();
        for d in self.disks.iter().flat_map(|d| d.iter()) {
            let mount = d.mount_point().to_string_lossy().into_owned();
            let total = d.total_space();
            if total == 0 || disks.iter().any(|x| x.mount == mount) {
                continue;
            }
            disks.push(Disk {
                mount,
                used_bytes: total.saturating_sub(d.available_space()),
                total_bytes: total,
            });
        }
        disks.sort_by(|a, b| a.mount.cmp(&b.mount));
        Metrics {
            cpu_percent: f64::from(self.sys.global_cpu_usage()),
            per_core: self
                .sys
                .cpus()
                .iter()
                .map(|c| f64::from(c.usage()))
                .collect(),
            mem_used_bytes: self.sys.used_memory(),
            mem_total_bytes: self.sys.total_memory(),
            swap_used_bytes: self.sys.used_swap(),
            swap_total_bytes: self.sys.total_swap(),
            load,
            disks,
            net_rx_bps: rx as f64 / secs,
            net_tx_bps: tx as f64 / secs,
            uptime_secs: System::uptime().unwrap_or(0),
        }
    }
}
