//! Host metrics from a Prometheus server scraping node-exporter: the whole fleet's latest
//! figures in **one** instant query per refresh (every series of every host, each labelled
//! with what it is by `label_replace`), and ten minutes of history in one range query at
//! the start. The server's answer is read with a byte bound and parsed as hostile: a value
//! that is not a finite number, a label that is not expected, is left out.

use std::collections::HashMap;
use std::time::Duration;

use std::borrow::Cow;

use serde::Deserialize;

use crate::model::Metrics;
use crate::model::host::Disk;

/// The most of an answer that is read: 500 hosts' instant figures are ~2 MB, their ten
/// minutes of history at a 5 s step ~15 MB.
pub const ANSWER_CAP: usize = 64 << 20;
/// Points of one series of history kept at most (ten minutes at a 1 s step is 601).
const MAX_POINTS: usize = 2400;
/// One query's deadline.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// The label each series of the combined query carries to say what it is.
const KIND: &str = "opsdeck_m";
/// Network devices that are not the host's traffic (as the SSH sampler counts it).
const NOT_HOST_NET: &str = "lo|docker.*|br-.*|veth.*|virbr.*|cni.*|flannel.*|cali.*|ifb.*";
/// Filesystems that are RAM, images or pseudo (as the SSH sampler leaves them out).
const NOT_DISK_FS: &str =
    "tmpfs|devtmpfs|overlay|squashfs|nsfs|ramfs|proc|sysfs|cgroup.*|autofs|fuse\\..*|nfs.*|cifs";

/// A PromQL string literal (double-quoted, escaped).
fn lit(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A regular expression matching exactly these strings (RE2 syntax, as Prometheus takes).
fn alternatives(values: &[String]) -> String {
    let mut out = String::new();
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            out.push('|');
        }
        for c in v.chars() {
            if "\\.+*?()|[]{}^$".contains(c) {
                out.push('\\');
            }
            out.push(c);
        }
    }
    out
}

fn tagged(expr: &str, kind: &str) -> String {
    format!(
        "label_replace({expr}, {}, {}, \"\", \"\")",
        lit(KIND),
        lit(kind)
    )
}

/// The series of one instant query for `instances`, each `(kind, PromQL)`.
fn series(sel: &str, window: &str) -> Vec<(&'static str, String)> {
    let idle = format!("node_cpu_seconds_total{{mode=\"idle\",{sel}}}");
    let nets = |m: &str| {
        format!(
            "sum by (instance) (irate({m}{{device!~{},{sel}}}[{window}]))",
            lit(NOT_HOST_NET)
        )
    };
    // Aggregated by what opsdeck reads, so each series carries two or three labels, not
    // the target's dozen: a 500-host answer is half the bytes.
    let fs = |m: &str| {
        format!(
            "max by (instance, mountpoint) ({m}{{fstype!~{},{sel}}})",
            lit(NOT_DISK_FS)
        )
    };
    let one = |m: &str| format!("max by (instance) ({m}{{{sel}}})");
    vec![
        (
            "cpu",
            format!("100 * (1 - avg by (instance) (irate({idle}[{window}])))"),
        ),
        (
            "core",
            format!("100 * (1 - sum by (instance, cpu) (irate({idle}[{window}])))"),
        ),
        ("mem_total", one("node_memory_MemTotal_bytes")),
        ("mem_avail", one("node_memory_MemAvailable_bytes")),
        ("swap_total", one("node_memory_SwapTotal_bytes")),
        ("swap_free", one("node_memory_SwapFree_bytes")),
        ("load1", one("node_load1")),
        ("load5", one("node_load5")),
        ("load15", one("node_load15")),
        ("rx", nets("node_network_receive_bytes_total")),
        ("tx", nets("node_network_transmit_bytes_total")),
        (
            "uptime",
            format!(
                "max by (instance) (node_time_seconds{{{sel}}} - node_boot_time_seconds{{{sel}}})"
            ),
        ),
        ("fs_size", fs("node_filesystem_size_bytes")),
        ("fs_avail", fs("node_filesystem_avail_bytes")),
    ]
}

fn selector(instances: &[String]) -> String {
    format!("instance=~{}", lit(&alternatives(instances)))
}

/// The one instant query that gives every figure of every instance.
pub fn instant_query(instances: &[String]) -> String {
    let sel = selector(instances);
    series(&sel, "2m")
        .into_iter()
        .map(|(k, e)| tagged(&e, k))
        .collect::<Vec<_>>()
        .join(" or ")
}

/// The one range query for the graphs' history: CPU, memory used in percent, load,
/// network rates.
pub fn history_query(instances: &[String]) -> String {
    let sel = selector(instances);
    let wanted = ["cpu", "load1", "rx", "tx"];
    let mut parts: Vec<String> = series(&sel, "2m")
        .into_iter()
        .filter(|(k, _)| wanted.contains(k))
        .map(|(k, e)| tagged(&e, k))
        .collect();
    parts.push(tagged(
        &format!(
            "100 * (1 - max by (instance) (node_memory_MemAvailable_bytes{{{sel}}}) / max by (instance) (node_memory_MemTotal_bytes{{{sel}}}))"
        ),
        "mem_pct",
    ));
    parts.join(" or ")
}

/// The figures of one instance, gathered from the series of an instant answer.
#[derive(Debug, Default, Clone)]
struct Gathered {
    cpu: Option<f64>,
    cores: Vec<(u32, f64)>,
    mem_total: Option<f64>,
    mem_avail: Option<f64>,
    swap_total: Option<f64>,
    swap_free: Option<f64>,
    load: [Option<f64>; 3],
    rx: Option<f64>,
    tx: Option<f64>,
    uptime: Option<f64>,
    fs: HashMap<String, (Option<f64>, Option<f64>)>,
}

fn bytes(v: Option<f64>) -> u64 {
    v.filter(|v| *v >= 0.0).map_or(0, |v| v as u64)
}

impl Gathered {
    fn metrics(self) -> Option<Metrics> {
        // Without CPU and memory an instance is not there (node-exporter gone, or the
        // series of another exporter under the same instance).
        let cpu = self.cpu?;
        let total = self.mem_total?;
        let mut cores = self.cores;
        cores.sort_by_key(|(i, _)| *i);
        let mut disks: Vec<Disk> = self
            .fs
            .into_iter()
            .filter_map(|(mount, (size, avail))| {
                let size = bytes(size);
                (size > 0).then(|| Disk {
                    used_bytes: size.saturating_sub(bytes(avail)),
                    total_bytes: size,
                    mount,
                })
            })
            .collect();
        disks.sort_by(|a, b| a.mount.cmp(&b.mount));
        disks.truncate(64);
        let swap_total = bytes(self.swap_total);
        Some(Metrics {
            cpu_percent: cpu.clamp(0.0, 100.0),
            per_core: cores
                .into_iter()
                .map(|(_, v)| v.clamp(0.0, 100.0))
                .collect(),
            mem_used_bytes: bytes(Some(total)).saturating_sub(bytes(self.mem_avail)),
            mem_total_bytes: bytes(Some(total)),
            swap_used_bytes: swap_total.saturating_sub(bytes(self.swap_free)),
            swap_total_bytes: swap_total,
            load: self.load.map(|l| l.unwrap_or(0.0).max(0.0)),
            disks,
            net_rx_bps: self.rx.unwrap_or(0.0).max(0.0),
            net_tx_bps: self.tx.unwrap_or(0.0).max(0.0),
            uptime_secs: bytes(self.uptime),
        })
    }
}

/// An answer of Prometheus's HTTP API, read without copying its strings (a 500-host
/// fleet's instant answer is a megabyte, its history tens: parsed as a `Value` tree it
/// cost ten times that).
#[derive(Deserialize)]
struct Answer<'a> {
    #[serde(borrow)]
    status: Cow<'a, str>,
    #[serde(borrow, default)]
    error: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    data: Option<Data<'a>>,
}

#[derive(Deserialize)]
struct Data<'a> {
    #[serde(rename = "resultType", borrow)]
    result_type: Cow<'a, str>,
    #[serde(borrow, default)]
    result: Vec<Sample<'a>>,
}

/// One series: its labels, and its value (instant) or values (range).
#[derive(Deserialize)]
struct Sample<'a> {
    #[serde(borrow, default)]
    metric: Labels<'a>,
    #[serde(default)]
    value: Option<Point>,
    #[serde(default)]
    values: Vec<Point>,
}

/// A string of the answer: borrowed from it, unless JSON escapes in it had to be undone.
/// (`Cow<str>` itself is borrowed only as a struct's own field, never inside a map.)
struct Str<'a>(Cow<'a, str>);

/// A series' labels, as they come (a handful: a map would cost more than it finds).
#[derive(Default)]
struct Labels<'a>(Vec<(Str<'a>, Str<'a>)>);

impl Labels<'_> {
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k.0 == name)
            .map(|(_, v)| v.0.as_ref())
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Labels<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Pairs;
        impl<'de> serde::de::Visitor<'de> for Pairs {
            type Value = Labels<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a map of labels")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Labels<'de>, A::Error> {
                let mut out = Vec::with_capacity(map.size_hint().unwrap_or(4).min(16));
                while let Some(pair) = map.next_entry::<Str<'de>, Str<'de>>()? {
                    out.push(pair);
                }
                Ok(Labels(out))
            }
        }
        d.deserialize_map(Pairs)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Str<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Text;
        impl<'de> serde::de::Visitor<'de> for Text {
            type Value = Str<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Str<'de>, E> {
                Ok(Str(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Str<'de>, E> {
                Ok(Str(Cow::Owned(v.to_string())))
            }
        }
        d.deserialize_str(Text)
    }
}

/// `[unix time, "value"]`; a time or value that is not a finite number is NaN, and the
/// point is left out later.
struct Point(f64, f64);

impl<'de> Deserialize<'de> for Point {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Pair;
        impl<'de> serde::de::Visitor<'de> for Pair {
            type Value = Point;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("[time, \"value\"]")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Point, A::Error> {
                let t = seq.next_element::<Num>()?.map_or(f64::NAN, |n| n.0);
                let v = seq.next_element::<Num>()?.map_or(f64::NAN, |n| n.0);
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(Point(t, v))
            }
        }
        d.deserialize_seq(Pair)
    }
}

/// A number, or a string holding one; anything else is NaN.
struct Num(f64);

impl<'de> Deserialize<'de> for Num {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Any;
        impl<'de> serde::de::Visitor<'de> for Any {
            type Value = Num;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a number")
            }
            fn visit_f64<E>(self, v: f64) -> Result<Num, E> {
                Ok(Num(v))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Num, E> {
                Ok(Num(v as f64))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Num, E> {
                Ok(Num(v as f64))
            }
            fn visit_str<E>(self, v: &str) -> Result<Num, E> {
                Ok(Num(v.parse::<f64>().unwrap_or(f64::NAN)))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Num, E> {
                Ok(Num(f64::NAN))
            }
            fn visit_unit<E>(self) -> Result<Num, E> {
                Ok(Num(f64::NAN))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Num, A::Error> {
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(Num(f64::NAN))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Num, A::Error> {
                while map
                    .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                    .is_some()
                {}
                Ok(Num(f64::NAN))
            }
        }
        d.deserialize_any(Any)
    }
}

impl Point {
    fn value(&self) -> Option<f64> {
        Some(self.1).filter(|v| v.is_finite())
    }
}

/// A label of a series, when it is plain printable text (see [`super::printable`]).
fn label<'a>(s: &'a Sample<'_>, name: &str) -> Option<&'a str> {
    s.metric.get(name).and_then(super::printable)
}

/// `{"status":"success","data":{"resultType":..., "result":[...]}}` → the series; an error
/// answer → its message.
fn results<'a>(answer: &'a [u8], kind: &str) -> Result<Vec<Sample<'a>>, String> {
    let a: Answer<'a> =
        serde_json::from_slice(answer).map_err(|e| format!("not a Prometheus answer ({e})"))?;
    if a.status != "success" {
        let error = a.error.as_deref().unwrap_or("no reason given");
        return Err(format!(
            "Prometheus refused the query: {}",
            crate::sanitize::line(&error.chars().take(300).collect::<String>())
        ));
    }
    let Some(data) = a.data else {
        return Err("Prometheus answered no data".into());
    };
    if data.result_type != kind {
        return Err(format!(
            "Prometheus answered a {:?}, not a {kind}",
            crate::sanitize::line(&data.result_type.chars().take(40).collect::<String>())
        ));
    }
    Ok(data.result)
}

/// Each instance's metrics from an instant answer; instances with no CPU or memory are
/// left out.
pub fn parse_instant(answer: &[u8]) -> Result<HashMap<String, Metrics>, String> {
    let mut by: HashMap<String, Gathered> = HashMap::new();
    for r in results(answer, "vector")? {
        let (Some(instance), Some(kind)) = (label(&r, "instance"), label(&r, KIND)) else {
            continue;
        };
        let Some(value) = r.value.as_ref().and_then(Point::value) else {
            continue;
        };
        if by.len() >= 100_000 && !by.contains_key(instance) {
            continue;
        }
        let g = by.entry(instance.to_string()).or_default();
        match kind {
            "cpu" => g.cpu = Some(value),
            "core" => {
                if let Some(id) = label(&r, "cpu").and_then(|c| c.parse().ok())
                    && g.cores.len() < 1024
                {
                    g.cores.push((id, value));
                }
            }
            "mem_total" => g.mem_total = Some(value),
            "mem_avail" => g.mem_avail = Some(value),
            "swap_total" => g.swap_total = Some(value),
            "swap_free" => g.swap_free = Some(value),
            "load1" => g.load[0] = Some(value),
            "load5" => g.load[1] = Some(value),
            "load15" => g.load[2] = Some(value),
            "rx" => g.rx = Some(value),
            "tx" => g.tx = Some(value),
            "uptime" => g.uptime = Some(value),
            "fs_size" | "fs_avail" => {
                if let Some(mount) = label(&r, "mountpoint")
                    && (g.fs.len() < 256 || g.fs.contains_key(mount))
                {
                    let e = g.fs.entry(mount.to_string()).or_default();
                    if kind == "fs_size" {
                        e.0 = Some(value);
                    } else {
                        e.1 = Some(value);
                    }
                }
            }
            _ => {}
        }
    }
    Ok(by
        .into_iter()
        .filter_map(|(i, g)| g.metrics().map(|m| (i, m)))
        .collect())
}

pub use crate::model::series::History;

/// Each instance's history from a range answer (a matrix).
pub fn parse_history(answer: &[u8]) -> Result<HashMap<String, History>, String> {
    let mut by: HashMap<String, History> = HashMap::new();
    for r in results(answer, "matrix")? {
        let (Some(instance), Some(kind)) = (label(&r, "instance"), label(&r, KIND)) else {
            continue;
        };
        if by.len() >= 100_000 && !by.contains_key(instance) {
            continue;
        }
        let h = by.entry(instance.to_string()).or_default();
        let series = match kind {
            "cpu" => &mut h.cpu,
            "mem_pct" => &mut h.mem_pct,
            "load1" => &mut h.load1,
            "rx" => &mut h.rx,
            "tx" => &mut h.tx,
            _ => continue,
        };
        series.reserve_exact(r.values.len().min(MAX_POINTS));
        for p in r.values.iter().take(MAX_POINTS) {
            if series.len() >= MAX_POINTS {
                break;
            }
            if let (true, Some(v)) = (p.0.is_finite(), p.value()) {
                series.push((p.0 as i64, v));
            }
        }
        series.sort_by_key(|(t, _)| *t);
    }
    Ok(by)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_query_names_every_instance_escaped() {
        let q = instant_query(&["10.0.0.1:9100".into(), "web\"1.example:9100".into()]);
        assert!(
            q.contains(r#"instance=~"10\\.0\\.0\\.1:9100|web\"1\\.example:9100""#),
            "{q}"
        );
        assert_eq!(q.matches(" or ").count(), 13);
        assert!(history_query(&["a:9100".into()]).contains("mem_pct"));
    }

    #[test]
    fn an_instant_answer_becomes_metrics_per_instance() {
        let answer = br#"{"status":"success","data":{"resultType":"vector","result":[
 {"metric":{"instance":"a:9100","opsdeck_m":"cpu"},"value":[1,"12.5"]},
 {"metric":{"instance":"a:9100","opsdeck_m":"core","cpu":"1"},"value":[1,"20"]},
 {"metric":{"instance":"a:9100","opsdeck_m":"core","cpu":"0"},"value":[1,"5"]},
 {"metric":{"instance":"a:9100","opsdeck_m":"mem_total"},"value":[1,"1000"]},
 {"metric":{"instance":"a:9100","opsdeck_m":"mem_avail"},"value":[1,"400"]},
 {"metric":{"instance":"a:9100","opsdeck_m":"load1"},"value":[1,"0.5"]},
 {"metric":{"instance":"a:9100","opsdeck_m":"rx"},"value":[1,"NaN"]},
 {"metric":{"instance":"a:9100","opsdeck_m":"fs_size","mountpoint":"/"},"value":[1,"100"]},
 {"metric":{"instance":"a:9100","opsdeck_m":"fs_avail","mountpoint":"/"},"value":[1,"30"]},
 {"metric":{"instance":"a:9100","opsdeck_m":"fs_size","mountpoint":"/x\u001b[2J"},"value":[1,"100"]},
 {"metric":{"instance":"b:9100","opsdeck_m":"mem_total"},"value":[1,"1000"]},
 {"metric":{"instance":"c:9100","opsdeck_m":"cpu"},"value":[1,"+Inf"]}
]}}"#;
        let m = parse_instant(answer).expect("parses");
        assert_eq!(m.len(), 1, "only a has CPU and memory: {m:?}");
        let a = &m["a:9100"];
        assert_eq!(a.cpu_percent, 12.5);
        assert_eq!(a.per_core, [5.0, 20.0]);
        assert_eq!((a.mem_used_bytes, a.mem_total_bytes), (600, 1000));
        assert_eq!(a.load, [0.5, 0.0, 0.0]);
        assert_eq!(a.net_rx_bps, 0.0);
        assert_eq!(a.disks.len(), 1);
        assert_eq!((a.disks[0].used_bytes, a.disks[0].total_bytes), (70, 100));
    }

    #[test]
    fn refusals_and_garbage_are_errors_not_panics() {
        let e = parse_instant(
            br#"{"status":"error","errorType":"bad_data","error":"parse error\u001b]52"}"#,
        )
        .unwrap_err();
        assert!(e.contains("parse error") && !e.contains('\u{1b}'), "{e}");
        assert!(parse_instant(b"<html>proxy error</html>").is_err());
        assert!(
            parse_instant(br#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#)
                .is_err()
        );
        assert!(parse_history(br#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"instance":"a","opsdeck_m":"cpu"},"values":[[1,"2"],["x","3"],[0,"1"]]}]}}"#).expect("parses")["a"].cpu == [(0, 1.0), (1, 2.0)]);
        // A label with JSON escapes is read (unescaped, so not borrowed); one that is not a
        // string is not an answer.
        let escaped = br#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"instance":"web:9100","opsdeck_m":"cpu"},"value":[1,"5"]},{"metric":{"instance":"web:9100","opsdeck_m":"mem_total"},"value":[1,"8"]},{"metric":{"instance":"web:9100","opsdeck_m":"mem_avail"},"value":[1,"4"]}]}}"#;
        assert_eq!(
            parse_instant(escaped).expect("parses")["web:9100"].cpu_percent,
            5.0
        );
        assert!(parse_instant(br#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"instance":1},"value":[1,"5"]}]}}"#).is_err());
    }

    #[test]
    fn labels_are_borrowed_from_the_answer_unless_escaped() {
        let answer = br#"{"instance":"web:9100","mount\tpoint":"/a\"b"}"#;
        let labels: Labels = serde_json::from_slice(answer).unwrap();
        let ((k0, v0), (k1, v1)) = (&labels.0[0], &labels.0[1]);
        assert!(matches!(k0.0, Cow::Borrowed("instance")));
        assert!(matches!(v0.0, Cow::Borrowed("web:9100")));
        assert!(matches!(&k1.0, Cow::Owned(k) if k == "mount\tpoint"));
        assert!(matches!(&v1.0, Cow::Owned(v) if v == "/a\"b"));
        assert_eq!(labels.get("instance"), Some("web:9100"));
    }
}
