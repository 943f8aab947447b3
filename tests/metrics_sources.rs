//! Host metrics from the lab's Prometheus (node-exporter scraped every 5 s) against the
//! SSH sampler's, for the same host, in one run of the real workers: CPU within 15
//! percentage points and memory within 3 % of the total, averaged over the same ten
//! seconds (the two measure different windows: irate over the last two scrapes, and 2 s
//! between samples). Ten minutes of history (or as much as the lab's Prometheus has) are
//! in the graphs with the first figures, in `opsdeck status --json` and on the console's
//! first screen of the host. A server that refuses, and one without the host, leave the
//! host sampled over SSH, and say so.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;
mod support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::lab::{COURSE_SUPPORTER, LILA, Lab, LabHost};
use common::run::{borrowed, both, hosts_inventory, lab_env, opsdeck};
use opsdeck::model::{HostSnapshot, Msg};
use serde_json::Value;
use support::tui::Tui;

/// A variable `lab env` exports.
fn lab_var(lab: &Lab, name: &str) -> String {
    lab.env
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| panic!("lab env exports {name}"))
}

fn prometheus(lab: &Lab) -> String {
    lab_var(lab, "OPSDECK_LAB_PROMETHEUS")
}

/// lila under another inventory name: four hosts that are one machine.
const fn lila_as(name: &'static str) -> LabHost {
    LabHost { name, ..LILA }
}
const SSH: LabHost = lila_as("lila-ssh");
const PROM: LabHost = lila_as("lila-prom");
const REFUSED: LabHost = lila_as("lila-refused");
const UNKNOWN: LabHost = lila_as("lila-unknown");

fn inventory(lab: &Lab, home: &std::path::Path) -> String {
    let prom = format!(
        "metrics = {{ prometheus = \"{}\", instance = \"{{address}}:9100\" }}",
        prometheus(lab)
    );
    hosts_inventory(
        home,
        lab,
        &[
            (&SSH, "metrics = \"ssh\""),
            (&PROM, &prom),
            (
                &REFUSED,
                "metrics = { prometheus = \"http://127.0.0.1:1\" }",
            ),
            (
                &UNKNOWN,
                &format!(
                    "metrics = {{ prometheus = \"{}\", instance = \"nowhere:9100\" }}",
                    prometheus(lab)
                ),
            ),
        ],
    )
}

/// How many seconds of the last ten minutes the lab's Prometheus has of lila (0 before its
/// first scrape).
fn prometheus_has(lab: &Lab) -> i64 {
    let out = std::process::Command::new("curl")
        .args([
            "-fsS",
            "--data-urlencode",
            "query=count_over_time(up{instance=\"127.0.0.12:9100\"}[10m])",
            &format!("{}/api/v1/query", prometheus(lab)),
        ])
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    let scrapes = v["data"]["result"][0]["value"][1]
        .as_str()
        .and_then(|n| n.parse::<f64>().ok())
        .unwrap_or(0.0);
    ((scrapes as i64 - 1) * 5).max(0)
}

/// Seconds of history a source must hold before these tests look at it: a dozen points at
/// the 2 s refresh and then some (the sparklines have fewer bars than that).
const ENOUGH_HISTORY: i64 = 60;

/// Waits until a source holds `ENOUGH_HISTORY` seconds of history and returns how much it
/// holds (at most ten minutes). A lab just started (a new machine's first `tests/run`) has
/// none: its Prometheus scrapes every 5 s, its Netdata collects every second.
fn wait_for_history(what: &str, has: impl Fn() -> i64) -> i64 {
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        let held = has();
        if held >= ENOUGH_HISTORY {
            return held.min(600);
        }
        assert!(
            Instant::now() < deadline,
            "{what} holds {held} s of history after four minutes"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// A container as reported: name, CPU %, memory bytes.
type Seen = (String, Option<f64>, Option<u64>);

/// Everything the hosts' workers report.
struct Watched {
    /// Each host's (CPU %, memory %) figures of the last ten seconds.
    figures: HashMap<usize, Vec<(f64, f64)>>,
    /// Each host's containers' (name, CPU %, memory bytes) in the last ten seconds.
    containers: HashMap<usize, Vec<Seen>>,
    last: HashMap<usize, std::sync::Arc<HostSnapshot>>,
}

impl Watched {
    fn mean(&self, host: usize, f: fn(&(f64, f64)) -> f64) -> f64 {
        let v = &self.figures[&host];
        v.iter().map(f).sum::<f64>() / v.len() as f64
    }
}

/// Runs the real workers of the inventory at `path` for 25 s: both sources settle (the
/// sampler's first figure is the average since boot), then the figures from each host
/// after the first 15 s are kept (until every host has three, a minute at most).
fn watch(path: &str) -> Watched {
    let text = std::fs::read_to_string(path).unwrap();
    let inventory = opsdeck::config::parse_str(&text, std::path::Path::new(path)).unwrap();
    let config = opsdeck::config::Config {
        source: opsdeck::config::Source::Flag(path.into()),
        inventory,
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let shared = opsdeck::remote::Shared::new(false);
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Msg>(1024);
        let _handles: Vec<_> = (0..config.inventory.hosts.len())
            .map(|i| {
                opsdeck::remote::spawn(i, &config.inventory.hosts[i], &config, &shared, tx.clone())
            })
            .collect();
        let start = Instant::now();
        let mut w = Watched {
            figures: HashMap::new(),
            containers: HashMap::new(),
            last: HashMap::new(),
        };
        // At least the 25 s; on a machine too busy for three figures and a container
        // listing of every host in the last ten, longer (a minute at most).
        let hosts = config.inventory.hosts.len();
        let enough = |w: &Watched| {
            (0..hosts).all(|h| {
                w.figures.get(&h).is_some_and(|f| f.len() >= 3)
                    && w.containers.get(&h).is_some_and(|c| !c.is_empty())
            })
        };
        while start.elapsed() < Duration::from_secs(25)
            || (!enough(&w) && start.elapsed() < Duration::from_secs(60))
        {
            let Ok(Some(msg)) = tokio::time::timeout(Duration::from_secs(1), rx.recv()).await
            else {
                continue;
            };
            if let Msg::Host {
                host,
                snapshot,
                changed,
            } = msg
            {
                let counted = start.elapsed() > Duration::from_secs(15);
                if changed.metrics
                    && counted
                    && let Some((_, m)) = &snapshot.metrics
                {
                    w.figures
                        .entry(host)
                        .or_default()
                        .push((m.cpu_percent, m.mem_percent()));
                }
                if changed.containers
                    && counted
                    && let Some((_, cs)) = &snapshot.containers
                {
                    w.containers.entry(host).or_default().extend(
                        cs.iter()
                            .map(|c| (c.name.clone(), c.cpu_percent, c.mem_bytes)),
                    );
                }
                w.last.insert(host, snapshot);
            }
        }
        w
    })
}

#[test]
fn prometheus_figures_agree_with_the_ssh_samplers_and_failures_fall_back_to_ssh() {
    let Some(lab) = Lab::get() else { return };
    let home = tempfile::tempdir().unwrap();
    let path = inventory(lab, home.path());
    wait_for_history("the lab's Prometheus", || prometheus_has(lab));
    let w = watch(&path);
    let (ssh_cpu, prom_cpu) = (w.mean(0, |p| p.0), w.mean(1, |p| p.0));
    let (ssh_mem, prom_mem) = (w.mean(0, |p| p.1), w.mean(1, |p| p.1));
    eprintln!(
        "cpu: ssh {ssh_cpu:.1} % prometheus {prom_cpu:.1} %; memory: ssh {ssh_mem:.1} % prometheus {prom_mem:.1} % ({} and {} figures)",
        w.figures[&0].len(),
        w.figures[&1].len()
    );
    assert!(
        (ssh_cpu - prom_cpu).abs() <= 15.0,
        "cpu {ssh_cpu} vs {prom_cpu}"
    );
    assert!(
        (ssh_mem - prom_mem).abs() <= 3.0,
        "memory {ssh_mem} vs {prom_mem}"
    );
    let last = w.last;
    // The source says what it is; the failing ones say why, and their hosts still have
    // figures, from SSH.
    let prom = last[&1].source.clone().expect("a source");
    assert!(prom.what.contains("instance 127.0.0.12:9100"), "{prom:?}");
    assert_eq!(prom.fallback, None);
    assert_eq!(last[&0].source, None);
    let refused = last[&2].source.clone().expect("a source");
    assert!(
        refused
            .fallback
            .as_deref()
            .is_some_and(|f| f.contains("127.0.0.1:1") && f.contains("sampled over SSH")),
        "{refused:?}"
    );
    assert!(last[&2].metrics.is_some());
    let unknown = last[&3].source.clone().expect("a source");
    assert!(
        unknown
            .fallback
            .as_deref()
            .is_some_and(|f| f.contains("has no instance nowhere:9100")),
        "{unknown:?}"
    );
    assert!(last[&3].metrics.is_some());
}

#[test]
fn ten_minutes_of_history_come_with_the_first_figures() {
    let Some(lab) = Lab::get() else { return };
    let home = tempfile::tempdir().unwrap();
    let path = inventory(lab, home.path());
    let has = wait_for_history("the lab's Prometheus", || prometheus_has(lab));
    let out = opsdeck(
        lab,
        home.path(),
        &["status", "--json", "-c", &path, "lila-prom", "lila-ssh"],
    );
    assert!(out.status.success(), "{}", both(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let prom = &v["hosts"][0];
    let span = prom["graphs"]["span_secs"].as_i64().unwrap();
    assert!(
        span >= has - 30,
        "Prometheus has {has} s of lila, the graphs {span} s: {prom}"
    );
    assert!(
        prom["graphs"]["cpu_points"].as_u64().unwrap() >= (has as u64) / 5 - 6,
        "{prom}"
    );
    // The SSH sampler starts from nothing.
    assert!(
        v["hosts"][1]["graphs"]["cpu_points"].as_u64().unwrap() <= 2,
        "{v}"
    );

    // The console's first screen of the host: the CPU graph already reaches back.
    let env = lab_env(lab, &path);
    let mut tui = Tui::start_sized(home.path(), &[], &borrowed(&env), 100, 30);
    let screen = tui.wait_for("the fleet with lila-prom up", |s| {
        s.lines()
            .any(|l| l.contains("lila-prom") && l.contains("● up"))
    });
    let row = screen
        .lines()
        .find(|l| l.contains("lila-prom"))
        .unwrap()
        .to_string();
    let bars = row.chars().filter(|c| ('▁'..='█').contains(c)).count();
    assert!(bars >= 10, "the sparklines are not full at once: {row}");
    tui.quit_ok();
}

// ---------------------------------------------------------------------------------------
// Netdata (the lab runs it "on" course-supporter: 127.0.0.1:19999, reached through
// course-supporter's SSH connection)

const CS_SSH: LabHost = LabHost {
    name: "cs-ssh",
    ..COURSE_SUPPORTER
};
const CS_NETDATA: LabHost = LabHost {
    name: "cs-netdata",
    ..COURSE_SUPPORTER
};

fn netdata(lab: &Lab) -> String {
    lab_var(lab, "OPSDECK_LAB_NETDATA")
}

fn netdata_inventory(lab: &Lab, home: &std::path::Path) -> String {
    hosts_inventory(
        home,
        lab,
        &[
            (&CS_SSH, ""),
            (
                &CS_NETDATA,
                &format!(
                    "metrics = {{ netdata = \"{}\", via = \"ssh\" }}",
                    netdata(lab)
                ),
            ),
        ],
    )
}

/// How many seconds of the last ten minutes of system.cpu the lab's Netdata has.
fn netdata_has(lab: &Lab) -> i64 {
    let out = std::process::Command::new("curl")
        .args([
            "-fsS",
            &format!(
                "{}/api/v1/data?chart=system.cpu&after=-600&points=600&format=json",
                netdata(lab)
            ),
        ])
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    let times: Vec<i64> = v["data"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter(|row| row[1].is_number())
        .filter_map(|row| row[0].as_i64())
        .collect();
    match (times.iter().max(), times.iter().min()) {
        (Some(last), Some(first)) => last - first,
        _ => 0,
    }
}

#[test]
fn netdata_figures_agree_with_the_ssh_samplers_for_the_host_and_its_containers() {
    let Some(lab) = Lab::get() else { return };
    let home = tempfile::tempdir().unwrap();
    let path = netdata_inventory(lab, home.path());
    wait_for_history("the lab's Netdata", || netdata_has(lab));
    let w = watch(&path);
    let src = w.last[&1].source.clone().expect("a source");
    assert!(
        src.what.contains("netdata") && src.what.contains("through SSH"),
        "{src:?}"
    );
    assert_eq!(src.fallback, None, "{src:?}");
    let (ssh_cpu, nd_cpu) = (w.mean(0, |p| p.0), w.mean(1, |p| p.0));
    let (ssh_mem, nd_mem) = (w.mean(0, |p| p.1), w.mean(1, |p| p.1));
    eprintln!(
        "cpu: ssh {ssh_cpu:.1} % netdata {nd_cpu:.1} %; memory: ssh {ssh_mem:.1} % netdata {nd_mem:.1} % ({} and {} figures)",
        w.figures[&0].len(),
        w.figures[&1].len()
    );
    assert!(
        (ssh_cpu - nd_cpu).abs() <= 15.0,
        "cpu {ssh_cpu} vs {nd_cpu}"
    );
    assert!(
        (ssh_mem - nd_mem).abs() <= 3.0,
        "memory {ssh_mem} vs {nd_mem}"
    );
    // The containers' memory from Netdata's cgroup charts against the sampler's cgroup
    // files: within a fifth, or 8 MiB for a small one; every running container has CPU.
    let mem_of = |host: usize, name: &str| -> f64 {
        let v: Vec<u64> = w.containers[&host]
            .iter()
            .filter(|(n, _, _)| n == name)
            .filter_map(|(_, _, m)| *m)
            .collect();
        assert!(!v.is_empty(), "no memory figure of {name} on host {host}");
        v.iter().sum::<u64>() as f64 / v.len() as f64
    };
    for name in [
        "course-supporter-db",
        "course-supporter-app",
        "proxy_nginx_1",
    ] {
        let (ssh, nd) = (mem_of(0, name), mem_of(1, name));
        eprintln!(
            "{name}: memory ssh {:.1} MiB netdata {:.1} MiB",
            ssh / 1048576.0,
            nd / 1048576.0
        );
        assert!(
            (ssh - nd).abs() <= (ssh * 0.2).max(8.0 * 1048576.0),
            "{name}: {ssh} vs {nd}"
        );
        assert!(
            w.containers[&1]
                .iter()
                .any(|(n, cpu, _)| n == name && cpu.is_some()),
            "{name} has no CPU figure from netdata"
        );
    }
}

#[test]
fn netdata_history_comes_with_the_first_figures_and_a_dead_netdata_falls_back() {
    let Some(lab) = Lab::get() else { return };
    let home = tempfile::tempdir().unwrap();
    let path = netdata_inventory(lab, home.path());
    let has = wait_for_history("the lab's Netdata", || netdata_has(lab));
    let out = opsdeck(
        lab,
        home.path(),
        &["status", "--json", "-c", &path, "cs-netdata"],
    );
    assert!(out.status.success(), "{}", both(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let h = &v["hosts"][0];
    let span = h["graphs"]["span_secs"].as_i64().unwrap();
    assert!(
        span >= has - 30,
        "Netdata has {has} s, the graphs {span} s: {h}"
    );
    assert!(
        h["metrics_source"]["from"]
            .as_str()
            .unwrap()
            .contains("netdata"),
        "{h}"
    );
    let running: Vec<&Value> = h["containers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["state"] == "running")
        .collect();
    assert!(
        running.len() >= 3 && running.iter().all(|c| c["mem_bytes"].is_u64()),
        "{h}"
    );

    // The console: the first screen with cs-netdata's figures has its graphs full.
    let env = lab_env(lab, &path);
    let mut tui = Tui::start_sized(home.path(), &[], &borrowed(&env), 100, 30);
    let screen = tui.wait_for("cs-netdata with its figures", |s| {
        s.lines()
            .any(|l| l.contains("cs-netdata") && l.contains("● up") && l.contains('%'))
    });
    let row = screen
        .lines()
        .find(|l| l.contains("cs-netdata"))
        .unwrap()
        .to_string();
    let bars = row.chars().filter(|c| ('▁'..='█').contains(c)).count();
    assert!(bars >= 10, "the sparklines are not full at once: {row}");
    tui.quit_ok();

    // Nothing listens where this Netdata is said to be: sampled over SSH, and said so.
    let dead = hosts_inventory(
        home.path(),
        lab,
        &[(
            &CS_NETDATA,
            "metrics = { netdata = \"http://127.0.0.1:1\" }",
        )],
    );
    let out = opsdeck(lab, home.path(), &["status", "--json", "-c", &dead]);
    assert!(out.status.success(), "{}", both(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let h = &v["hosts"][0];
    let fallback = h["metrics_source"]["fallback"].as_str().unwrap_or_default();
    assert!(
        fallback.contains("127.0.0.1:1") && fallback.contains("sampled over SSH"),
        "{h}"
    );
    assert!(h["metrics"]["cpu_percent"].is_number(), "{h}");
}
