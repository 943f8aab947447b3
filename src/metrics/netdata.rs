//! Host and container metrics from the host's Netdata agent: each refresh **one** request
//! (`/api/v1/allmetrics`, filtered to the charts opsdeck shows: the host's CPU, memory,
//! swap, load, uptime, network interfaces and filesystems, and each container's cgroup CPU
//! and memory); once, at the start, ten minutes of the graphs' charts
//! (`/api/v1/data`). Netdata usually listens on the host's localhost only, so it is
//! reached through the host's SSH connection (`via = "ssh"`, the default) or directly.
//! Its answers are read with a byte bound and parsed as hostile: a value that is not a
//! finite number, a name with a control character, is left out.

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::Value;

use super::printable;
use crate::collect::procfs::counts_as_host_traffic;
use crate::model::Metrics;
use crate::model::host::Disk;
use crate::model::series::History;

/// The most of one answer that is read: a host with 200 containers answers ~150 KB.
pub const ANSWER_CAP: usize = 4 << 20;
/// The charts of one refresh (Netdata's simple patterns, space-separated).
pub const CHARTS: &str = "system.cpu cpu.cpu* system.ram mem.available mem.swap system.load \
                          system.uptime net.* disk_space.* cgroup_*.cpu cgroup_*.mem_usage";
/// Containers taken from one answer at most.
const MAX_CONTAINERS: usize = 4096;
/// Points of one history series kept at most.
const MAX_POINTS: usize = 2400;
const MIB: f64 = 1024.0 * 1024.0;
const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// `/api/v1/allmetrics` for one refresh.
pub fn now_path() -> String {
    format!(
        "/api/v1/allmetrics?format=json&filter={}",
        CHARTS.replace(' ', "%20")
    )
}

/// `/api/v1/data` for ten minutes of `chart`, a point every `step` seconds.
pub fn history_path(chart: &str, step: u64) -> String {
    let points = (crate::model::series::WINDOW_SECS as u64 / step.max(1)).max(1);
    format!(
        "/api/v1/data?chart={}&after=-{}&points={points}&group=average&format=json&options=abs",
        encode(chart),
        crate::model::series::WINDOW_SECS
    )
}

/// A chart id in a query string (ids are names from the host: anything but the unreserved
/// characters is escaped).
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(b as char)
            }
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// One chart of an `allmetrics` answer.
#[derive(Deserialize)]
struct Chart {
    #[serde(default)]
    family: Value,
    #[serde(default)]
    dimensions: HashMap<String, Dim>,
}

#[derive(Deserialize)]
struct Dim {
    #[serde(default)]
    value: Value,
}

impl Chart {
    /// The dimension `id`'s value, when a finite number.
    fn get(&self, id: &str) -> Option<f64> {
        self.dimensions.get(id).and_then(|d| finite(&d.value))
    }

    /// Every dimension's value but those named in `except`.
    fn sum_except(&self, except: &[&str]) -> f64 {
        self.dimensions
            .iter()
            .filter(|(id, _)| !except.contains(&id.as_str()))
            .filter_map(|(_, d)| finite(&d.value))
            .sum()
    }
}

fn finite(v: &Value) -> Option<f64> {
    v.as_f64().filter(|f| f.is_finite())
}

/// One refresh's figures: the host's, each container's `(CPU % of one core, memory bytes)`
/// by container name, and the host's network interfaces (for the history's charts).
#[derive(Debug, Clone, PartialEq)]
pub struct Now {
    pub metrics: Metrics,
    pub containers: HashMap<String, (f64, u64)>,
    pub interfaces: Vec<String>,
}

fn bytes(v: f64) -> u64 {
    if v.is_finite() && v > 0.0 {
        v as u64
    } else {
        0
    }
}

/// The figures of an `allmetrics?format=json` answer.
pub fn parse_now(answer: &[u8]) -> Result<Now, String> {
    let charts: HashMap<String, Chart> =
        serde_json::from_slice(answer).map_err(|e| format!("not a Netdata answer ({e})"))?;
    let chart = |id: &str| charts.get(id);
    let Some(cpu) = chart("system.cpu") else {
        return Err("Netdata has no chart system.cpu".into());
    };
    let Some(ram) = chart("system.ram") else {
        return Err("Netdata has no chart system.ram".into());
    };
    let busy = |c: &Chart| c.sum_except(&["idle"]).clamp(0.0, 100.0);
    let mut cores: Vec<(u32, f64)> = charts
        .iter()
        .filter_map(|(id, c)| {
            let n = id.strip_prefix("cpu.cpu")?.parse::<u32>().ok()?;
            Some((n, busy(c)))
        })
        .take(1024)
        .collect();
    cores.sort_by_key(|(n, _)| *n);
    // system.ram's dimensions (free, used, cached, buffers) make up the whole of RAM; in
    // use is what is not available, as the kernel (and the other samplers) count it.
    let total = (ram.sum_except(&[]) * MIB).max(0.0);
    let total = if total.is_finite() { total } else { 0.0 };
    let used = match chart("mem.available").and_then(|c| c.get("MemAvailable")) {
        Some(avail) => total - avail * MIB,
        None => ram.get("used").unwrap_or(0.0) * MIB,
    }
    .clamp(0.0, total);
    let (swap_used, swap_total) = chart("mem.swap").map_or((0.0, 0.0), |c| {
        let used = c.get("used").unwrap_or(0.0).max(0.0);
        let total = used + c.get("free").unwrap_or(0.0).max(0.0);
        (used * MIB, total * MIB)
    });
    let load = chart("system.load").map_or([0.0; 3], |c| {
        ["load1", "load5", "load15"].map(|d| c.get(d).unwrap_or(0.0).max(0.0))
    });
    let uptime = chart("system.uptime")
        .and_then(|c| c.get("uptime"))
        .unwrap_or(0.0);
    let (mut rx, mut tx) = (0.0, 0.0);
    let mut interfaces = Vec::new();
    let mut disks = Vec::new();
    let mut containers = HashMap::new();
    for (id, c) in &charts {
        if let Some(iface) = id.strip_prefix("net.").and_then(printable) {
            // as the SSH sampler counts the host's traffic
            if !counts_as_host_traffic(iface) {
                continue;
            }
            // kilobits/s; "sent" is drawn below the axis, so negative
            rx += c.get("received").unwrap_or(0.0).abs() * 1000.0 / 8.0;
            tx += c.get("sent").unwrap_or(0.0).abs() * 1000.0 / 8.0;
            if interfaces.len() < 64 {
                interfaces.push(iface.to_string());
            }
        } else if id.starts_with("disk_space.") {
            // GiB: avail, used, reserved for root; the family is the mount point
            let Some(mount) = c.family.as_str().and_then(printable) else {
                continue;
            };
            let size = c.sum_except(&[]) * GIB;
            let avail = (c.get("avail").unwrap_or(0.0) * GIB).clamp(0.0, size.max(0.0));
            if size > 0.0 && size.is_finite() && disks.len() < 64 {
                disks.push(Disk {
                    mount: mount.to_string(),
                    used_bytes: bytes(size - avail),
                    total_bytes: bytes(size),
                });
            }
        } else if let Some(rest) = id.strip_prefix("cgroup_") {
            let (name, what) = match rest.rsplit_once('.') {
                Some(x) => x,
                None => continue,
            };
            let Some(name) = printable(name) else {
                continue;
            };
            if containers.len() >= MAX_CONTAINERS && !containers.contains_key(name) {
                continue;
            }
            match what {
                "cpu" => {
                    // percent of one core: user + system
                    let e = containers.entry(name.to_string()).or_insert((0.0, 0));
                    e.0 = c.sum_except(&[]).clamp(0.0, 100_000.0);
                }
                "mem_usage" => {
                    let e = containers.entry(name.to_string()).or_insert((0.0, 0));
                    e.1 = bytes(c.get("ram").unwrap_or(0.0) * MIB);
                }
                _ => {}
            }
        }
    }
    interfaces.sort();
    disks.sort_by(|a, b| a.mount.cmp(&b.mount));
    Ok(Now {
        metrics: Metrics {
            cpu_percent: busy(cpu),
            per_core: cores.into_iter().map(|(_, v)| v).collect(),
            mem_used_bytes: bytes(used),
            mem_total_bytes: bytes(total),
            swap_used_bytes: bytes(swap_used),
            swap_total_bytes: bytes(swap_total),
            load,
            disks,
            net_rx_bps: rx,
            net_tx_bps: tx,
            uptime_secs: bytes(uptime),
        },
        containers,
        interfaces,
    })
}

/// One chart's points from a `/api/v1/data?format=json` answer: each row's time and its
/// columns by label (`null` where Netdata has no value).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Data {
    pub labels: Vec<String>,
    pub rows: Vec<(i64, Vec<Option<f64>>)>,
}

pub fn parse_data(answer: &[u8]) -> Result<Data, String> {
    #[derive(Deserialize)]
    struct Raw {
        labels: Vec<Value>,
        data: Vec<Vec<Value>>,
    }
    let raw: Raw =
        serde_json::from_slice(answer).map_err(|e| format!("not a Netdata answer ({e})"))?;
    let labels: Vec<String> = raw
        .labels
        .iter()
        .skip(1)
        .take(256)
        .map(|l| l.as_str().and_then(printable).unwrap_or("?").to_string())
        .collect();
    let mut rows: Vec<(i64, Vec<Option<f64>>)> = raw
        .data
        .iter()
        .take(MAX_POINTS)
        .filter_map(|row| {
            let t = row.first()?.as_f64().filter(|t| t.is_finite())? as i64;
            let values = row.iter().skip(1).take(labels.len()).map(finite).collect();
            Some((t, values))
        })
        .collect();
    rows.sort_by_key(|(t, _)| *t);
    Ok(Data { labels, rows })
}

impl Data {
    /// Each row's sum of the columns whose label `keep` accepts, where any has a value.
    fn sum(&self, keep: impl Fn(&str) -> bool) -> Vec<(i64, f64)> {
        let cols: Vec<usize> = (0..self.labels.len())
            .filter(|&i| keep(&self.labels[i]))
            .collect();
        self.rows
            .iter()
            .filter_map(|(t, vs)| {
                let mut present = cols.iter().filter_map(|&i| vs.get(i).copied()?).peekable();
                present.peek().is_some().then(|| (*t, present.sum()))
            })
            .collect()
    }
}

/// The charts whose ten minutes make the graphs' history (`net.IFACE` for each of the
/// host's interfaces).
pub fn history_charts(interfaces: &[String]) -> Vec<String> {
    let mut charts: Vec<String> = ["system.cpu", "system.ram", "mem.available", "system.load"]
        .map(String::from)
        .to_vec();
    charts.extend(interfaces.iter().map(|i| format!("net.{i}")));
    charts
}

/// The graphs' history from the answers of [`history_charts`] (by chart id; a chart that
/// failed is missing).
pub fn history(answers: &HashMap<String, Data>) -> History {
    let mut h = History::default();
    if let Some(cpu) = answers.get("system.cpu") {
        h.cpu = cpu
            .sum(|l| l != "idle")
            .into_iter()
            .map(|(t, v)| (t, v.clamp(0.0, 100.0)))
            .collect();
    }
    if let Some(ram) = answers.get("system.ram") {
        let avail: HashMap<i64, f64> = answers
            .get("mem.available")
            .map(|a| a.sum(|_| true).into_iter().collect())
            .unwrap_or_default();
        let used: HashMap<i64, f64> = ram.sum(|l| l == "used").into_iter().collect();
        h.mem_pct = ram
            .sum(|_| true)
            .into_iter()
            .filter(|(_, total)| *total > 0.0)
            .filter_map(|(t, total)| {
                let used = match avail.get(&t) {
                    Some(a) => total - a,
                    None => *used.get(&t)?,
                };
                Some((t, (100.0 * used / total).clamp(0.0, 100.0)))
            })
            .collect();
    }
    if let Some(load) = answers.get("system.load") {
        h.load1 = load.sum(|l| l == "load1");
    }
    let mut rx: HashMap<i64, f64> = HashMap::new();
    let mut tx: HashMap<i64, f64> = HashMap::new();
    for (id, data) in answers {
        if !id.starts_with("net.") {
            continue;
        }
        for (t, v) in data.sum(|l| l == "received") {
            *rx.entry(t).or_default() += v.abs() * 1000.0 / 8.0;
        }
        for (t, v) in data.sum(|l| l == "sent") {
            *tx.entry(t).or_default() += v.abs() * 1000.0 / 8.0;
        }
    }
    let sorted = |m: HashMap<i64, f64>| {
        let mut v: Vec<(i64, f64)> = m.into_iter().collect();
        v.sort_by_key(|(t, _)| *t);
        v
    };
    h.rx = sorted(rx);
    h.tx = sorted(tx);
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: &str = r#"{
      "system.cpu": {"family":"cpu","dimensions":{"user":{"name":"user","value":20.5},
        "system":{"name":"system","value":9.5},"idle":{"name":"idle","value":70.0},
        "iowait":{"name":"iowait","value":null}}},
      "cpu.cpu0": {"dimensions":{"user":{"value":10.0},"idle":{"value":90.0}}},
      "cpu.cpu1": {"dimensions":{"user":{"value":50.0},"idle":{"value":50.0}}},
      "system.ram": {"dimensions":{"free":{"value":1024},"used":{"value":1024},
        "cached":{"value":1536},"buffers":{"value":512}}},
      "mem.available": {"dimensions":{"MemAvailable":{"value":3072}}},
      "mem.swap": {"dimensions":{"free":{"value":768},"used":{"value":256}}},
      "system.load": {"dimensions":{"load1":{"value":1.5},"load5":{"value":1.0},"load15":{"value":0.5}}},
      "system.uptime": {"dimensions":{"uptime":{"value":3600.5}}},
      "net.eth0": {"family":"eth0","dimensions":{"received":{"value":800},"sent":{"value":-1600}}},
      "net.veth1": {"family":"veth1","dimensions":{"received":{"value":99999},"sent":{"value":-99999}}},
      "disk_space._": {"family":"/","dimensions":{"avail":{"value":30},"used":{"value":60},"reserved_for_root":{"value":10}}},
      "cgroup_app_1.cpu": {"dimensions":{"user":{"value":12.5},"system":{"value":2.5}}},
      "cgroup_app_1.mem_usage": {"dimensions":{"ram":{"value":64},"swap":{"value":0}}},
      "cgroup_bad\u001b[31m.cpu": {"dimensions":{"user":{"value":1}}}
    }"#;

    #[test]
    fn one_answer_gives_host_and_containers() {
        let now = parse_now(NOW.as_bytes()).unwrap();
        let m = &now.metrics;
        assert_eq!(m.cpu_percent, 30.0);
        assert_eq!(m.per_core, vec![10.0, 50.0]);
        assert_eq!(m.mem_total_bytes, 4096 << 20);
        assert_eq!(m.mem_used_bytes, 1024 << 20);
        assert_eq!(
            (m.swap_used_bytes, m.swap_total_bytes),
            (256 << 20, 1024 << 20)
        );
        assert_eq!(m.load, [1.5, 1.0, 0.5]);
        assert_eq!(m.uptime_secs, 3600);
        assert_eq!(m.net_rx_bps, 100_000.0, "800 kbit/s, veth left out");
        assert_eq!(m.net_tx_bps, 200_000.0);
        assert_eq!(m.disks.len(), 1);
        assert_eq!(m.disks[0].mount, "/");
        assert_eq!(m.disks[0].total_bytes, 100 << 30);
        assert_eq!(m.disks[0].used_bytes, 70 << 30);
        assert_eq!(now.containers.len(), 1, "{:?}", now.containers);
        assert_eq!(now.containers["app_1"], (15.0, 64 << 20));
        assert_eq!(now.interfaces, vec!["eth0".to_string()]);
    }

    #[test]
    fn hostile_answers_are_errors_or_left_out() {
        assert!(parse_now(b"[]").is_err());
        assert!(parse_now(b"{}").unwrap_err().contains("system.cpu"));
        let odd = r#"{"system.cpu":{"dimensions":{"user":{"value":"1e999"},"x":{"value":1e308},"y":{"value":1e308}}},
                     "system.ram":{"dimensions":{"used":{"value":-5}}}}"#;
        let now = parse_now(odd.as_bytes()).unwrap();
        assert_eq!(now.metrics.cpu_percent, 100.0);
        assert_eq!(now.metrics.mem_total_bytes, 0);
    }

    #[test]
    fn history_from_data_answers() {
        let cpu = parse_data(
            br#"{"labels":["time","user","system"],"data":[[1004,10,5],[1002,20,null],[1000,null,null]]}"#,
        )
        .unwrap();
        let ram = parse_data(
            br#"{"labels":["time","free","used","cached","buffers"],"data":[[1002,1,1,1,1],[1004,2,1,1,0]]}"#,
        )
        .unwrap();
        let avail = parse_data(br#"{"labels":["time","avail"],"data":[[1002,3]]}"#).unwrap();
        let net =
            parse_data(br#"{"labels":["time","received","sent"],"data":[[1002,8,16]]}"#).unwrap();
        let answers: HashMap<String, Data> = [
            ("system.cpu".to_string(), cpu),
            ("system.ram".into(), ram),
            ("mem.available".into(), avail),
            ("net.eth0".into(), net),
        ]
        .into_iter()
        .collect();
        let h = history(&answers);
        assert_eq!(h.cpu, vec![(1002, 20.0), (1004, 15.0)]);
        assert_eq!(h.mem_pct, vec![(1002, 25.0), (1004, 25.0)]);
        assert_eq!(h.rx, vec![(1002, 1000.0)]);
        assert_eq!(h.tx, vec![(1002, 2000.0)]);
    }

    #[test]
    fn paths_escape_what_the_host_named() {
        assert!(now_path().contains("filter=system.cpu%20cpu.cpu*"));
        let p = history_path("net.eth0&x=1", 2);
        assert!(
            p.contains("chart=net.eth0%26x%3D1&after=-600&points=300"),
            "{p}"
        );
    }
}
