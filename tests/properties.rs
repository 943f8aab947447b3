//! Property tests for the functions that read remote or user text (DESIGN.md, "Hostile
//! input"): the /proc, cgroup and df parsers, known_hosts matching (against `ssh-keygen
//! -F`), `script::command` (through dash, bash and busybox sh), the TOML inventory loader
//! and the terminal sanitizer. The fuzz targets in `tests/fuzz/` cover the same functions
//! for longer; these stay quick enough for every `tests/run`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use opsdeck::collect::cgroup::{self, Counters};
use opsdeck::collect::procfs::{self, CpuTimes, NetCounters, Sample};
use opsdeck::config::{self, ConfigError, Inventory};
use opsdeck::model::host::Disk;
use opsdeck::remote::known_hosts::{self, HostKeyStatus, Marker};
use opsdeck::sanitize;
use proptest::prelude::*;
use proptest::sample::{Index, select};
use proptest::test_runner::{Config as ProptestConfig, FileFailurePersistence};

#[path = "support/oracles.rs"]
mod oracles;
/// `opsdeck::jobs::script` is private to the crate (`mod script;` in src/jobs/mod.rs), so
/// the very same source file is compiled in here.
#[allow(dead_code)]
#[path = "../src/jobs/script.rs"]
mod script;
use oracles::{bidi, only_sgr};

/// `cases`, or `PROPTEST_CASES` when set, for a longer run by hand.
fn cases(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(cases),
        // A failure prints its minimal input; no regression files land in the tree.
        failure_persistence: Some(Box::new(FileFailurePersistence::Off)),
        ..ProptestConfig::default()
    }
}

/// `None` (skipped, saying so) when `program` is not installed; under
/// `OPSDECK_REQUIRE_LAB=1` (CI, `tests/run`) a missing program fails the test instead.
fn require(program: &str, package: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
            .map(|dir| dir.join(program))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        let msg = format!(
            "{program} is not installed (Debian package {package}; tests/lab/lab up installs it)"
        );
        assert!(
            std::env::var("OPSDECK_REQUIRE_LAB").as_deref() != Ok("1"),
            "{msg}"
        );
        eprintln!("{msg}: skipped");
    }
    found
}

// ------------------------------------------------------------------ /proc, cgroup, df

/// What one host's sample says, from which both the script's output and the sample
/// parsed from it are made.
#[derive(Debug, Clone)]
struct HostText {
    /// user nice system idle iowait irq softirq steal guest guest_nice.
    cpu: Option<[u64; 10]>,
    cores: Vec<(u32, [u64; 8])>,
    /// MemTotal, MemAvailable, SwapTotal, SwapFree in kB.
    mem: Option<[u64; 4]>,
    /// Hundredths.
    load: [u32; 3],
    net: Vec<(String, u64, u64)>,
    uptime: Option<(u64, u8)>,
    disks: Vec<(String, u64, u64, String)>,
    containers: Vec<ContainerText>,
    complete: bool,
}

#[derive(Debug, Clone)]
struct ContainerText {
    id: String,
    v2: bool,
    systemd: bool,
    /// ns (v1) or µs (v2).
    cpu: u64,
    /// Usage and inactive file cache, in bytes.
    mem: Option<(u64, u64)>,
}

impl ContainerText {
    fn dir(&self, controller: &str) -> String {
        let root = if self.v2 {
            "/sys/fs/cgroup".to_string()
        } else {
            format!("/sys/fs/cgroup/{controller}")
        };
        if self.systemd {
            format!("{root}/system.slice/docker-{}.scope", self.id)
        } else {
            format!("{root}/docker/{}", self.id)
        }
    }
}

/// Interfaces that are not host traffic (loopback, Docker's and others' virtual ones),
/// which the parser must drop.
const VIRTUAL_NICS: [&str; 8] = [
    "lo",
    "docker0",
    "veth9a8b7c",
    "br-1f2e3d",
    "virbr0",
    "cni0",
    "flannel.1",
    "ifb0",
];

fn host_text() -> impl Strategy<Value = HostText> {
    let counter = 0u64..1 << 56;
    let nic = (
        select(vec!["eth", "enp", "wlan", "bond", "tun", "wg", "ens"]),
        "[0-9a-z]{0,6}",
    )
        .prop_map(|(p, s)| format!("{p}{s}"));
    let nic = prop_oneof![4 => nic, 1 => select(VIRTUAL_NICS.to_vec()).prop_map(String::from)];
    let disk = (
        select(vec![
            "/dev/sda1",
            "/dev/nvme0n1p2",
            "/dev/mapper/vg-root",
            "server:/export",
        ]),
        1u64..1 << 40,
        any::<Index>(),
        prop_oneof![Just("/".to_string()), "/srv/[a-z][a-z ]{0,8}[a-z]"],
    )
        .prop_map(|(source, total, avail, mount)| {
            (
                source.to_string(),
                total,
                avail.index(total as usize + 1) as u64,
                mount,
            )
        });
    let container = (
        "[0-9a-f]{64}",
        any::<bool>(),
        any::<bool>(),
        0u64..1 << 50,
        proptest::option::of((0u64..1 << 50, 0u64..1 << 50)),
    )
        .prop_map(|(id, v2, systemd, cpu, mem)| ContainerText {
            id,
            v2,
            systemd,
            cpu,
            mem,
        });
    (
        (
            proptest::option::of(proptest::array::uniform10(counter.clone())),
            proptest::collection::vec((0u32..4096, proptest::array::uniform8(counter)), 0..5),
            proptest::option::of(proptest::array::uniform4(0u64..1 << 40)),
            proptest::array::uniform3(0u32..100_000),
        ),
        (
            proptest::collection::vec((nic, any::<u64>(), any::<u64>()), 0..5),
            proptest::option::of((0u64..1 << 40, 0u8..100)),
            proptest::collection::vec(disk, 0..5),
            proptest::collection::vec(container, 0..4),
            any::<bool>(),
        ),
    )
        .prop_map(
            |((cpu, cores, mem, load), (net, uptime, disks, containers, complete))| HostText {
                cpu,
                cores,
                mem,
                load,
                net,
                uptime,
                disks,
                containers,
                complete,
            },
        )
}

/// The text the script prints for `h`, pseudo filesystems and all.
fn render(h: &HostText) -> String {
    let mut out = String::from("==> /proc/stat <==\n");
    if let Some(f) = h.cpu {
        let f: Vec<String> = f.iter().map(u64::to_string).collect();
        out.push_str(&format!("cpu  {}\n", f.join(" ")));
    }
    for (id, f) in &h.cores {
        let f: Vec<String> = f.iter().map(u64::to_string).collect();
        out.push_str(&format!("cpu{id} {} 0 0\n", f.join(" ")));
    }
    out.push_str("intr 1 2 3\nctxt 99\nprocs_running 2\n\n==> /proc/meminfo <==\n");
    if let Some([total, avail, swap, swap_free]) = h.mem {
        out.push_str(&format!(
            "MemTotal:       {total} kB\nMemFree:        1 kB\nMemAvailable:   {avail} kB\n\
             Cached:         7 kB\nSwapTotal:      {swap} kB\nSwapFree:       {swap_free} kB\n"
        ));
    }
    let load: Vec<String> = h
        .load
        .iter()
        .map(|l| format!("{}.{:02}", l / 100, l % 100))
        .collect();
    out.push_str(&format!(
        "\n==> /proc/loadavg <==\n{} 1/234 5678\n\n==> /proc/net/dev <==\n\
         Inter-|   Receive                |  Transmit\n face |bytes    packets errs|bytes\n",
        load.join(" ")
    ));
    for (name, rx, tx) in &h.net {
        out.push_str(&format!(
            "{name:>6}: {rx} 1 0 0 0 0 0 0 {tx} 1 0 0 0 0 0 0\n"
        ));
    }
    out.push_str("\n==> /proc/uptime <==\n");
    if let Some((secs, frac)) = h.uptime {
        out.push_str(&format!("{secs}.{frac:02} 4242.42\n"));
    }
    for c in &h.containers {
        let (file, body) = if c.v2 {
            ("cpu.stat", format!("usage_usec {}\nuser_usec 1\n", c.cpu))
        } else {
            ("cpuacct.usage", format!("{}\n", c.cpu))
        };
        out.push_str(&format!("\n==> {}/{file} <==\n{body}", c.dir("cpuacct")));
        if let Some((usage, _)) = c.mem {
            let file = if c.v2 {
                "memory.current"
            } else {
                "memory.usage_in_bytes"
            };
            out.push_str(&format!("\n==> {}/{file} <==\n{usage}\n", c.dir("memory")));
        }
    }
    out.push_str("==> inactive_file <==\n");
    for c in &h.containers {
        if let Some((_, inactive)) = c.mem {
            let key = if c.v2 {
                "inactive_file"
            } else {
                "total_inactive_file"
            };
            out.push_str(&format!(
                "{}/memory.stat:{key} {inactive}\n",
                c.dir("memory")
            ));
        }
    }
    out.push_str(
        "==> df <==\nFilesystem     1024-blocks      Used Available Capacity Mounted on\n",
    );
    out.push_str("tmpfs 1024 0 1024 0% /dev/shm\n");
    out.push_str("overlay 4096 1024 3072 25% /var/lib/docker/overlay2/abc/merged\n");
    out.push_str("/dev/loop3 128 128 0 100% /snap/core/17\n");
    out.push_str("tmpfs 1024 0 1024 0% /run/user/1000\n");
    for (source, total, avail, mount) in &h.disks {
        out.push_str(&format!(
            "{source} {total} {} {avail} 50% {mount}\n",
            total - avail
        ));
    }
    if h.complete {
        out.push_str("==> end <==\n");
    }
    out
}

/// The sample `h` describes, worked out without the parser.
fn expected(h: &HostText) -> Sample {
    let times = |f: &[u64]| CpuTimes {
        total: f[..8].iter().sum(),
        idle: f[3] + f[4],
    };
    let mut per_core: Vec<(u32, CpuTimes)> = Vec::new();
    for (id, f) in &h.cores {
        per_core.retain(|(i, _)| i != id);
        per_core.push((*id, times(f)));
    }
    per_core.sort_by_key(|(id, _)| *id);
    let [total, avail, swap, swap_free] = h.mem.unwrap_or_default();
    let mut net: Vec<NetCounters> = Vec::new();
    for (name, rx, tx) in &h.net {
        if !VIRTUAL_NICS.contains(&name.as_str()) && !net.iter().any(|n| &n.name == name) {
            net.push(NetCounters {
                name: name.clone(),
                rx_bytes: *rx,
                tx_bytes: *tx,
            });
        }
    }
    let mut disks: Vec<Disk> = Vec::new();
    for (_, total, avail, mount) in &h.disks {
        disks.retain(|d| &d.mount != mount);
        disks.push(Disk {
            mount: mount.clone(),
            used_bytes: (total - avail) * 1024,
            total_bytes: total * 1024,
        });
    }
    disks.sort_by(|a, b| a.mount.cmp(&b.mount));
    let mut containers = HashMap::new();
    for c in &h.containers {
        containers.insert(
            c.id.clone(),
            Counters {
                cpu_ns: if c.v2 { c.cpu * 1000 } else { c.cpu },
                mem_bytes: c.mem.map_or(0, |(u, i)| u.saturating_sub(i)),
            },
        );
    }
    Sample {
        cpu: h.cpu.map(|f| times(&f)),
        per_core,
        mem_total_bytes: total * 1024,
        mem_used_bytes: (total * 1024).saturating_sub(avail * 1024),
        swap_total_bytes: swap * 1024,
        swap_used_bytes: (swap * 1024).saturating_sub(swap_free * 1024),
        load: h
            .load
            .map(|l| format!("{}.{:02}", l / 100, l % 100).parse().unwrap()),
        net,
        uptime_secs: h.uptime.map_or(0, |(s, _)| s),
        disks,
        containers,
        // The generated output always has the section: each container's cache, 0 unsaid.
        page_cache: Some(
            h.containers
                .iter()
                .map(|c| (c.id.clone(), c.mem.map_or(0, |(_, i)| i)))
                .collect(),
        ),
        complete: h.complete,
    }
}

proptest! {
    #![proptest_config(cases(256))]

    #[test]
    fn procfs_parses_what_the_script_prints(h in host_text()) {
        let text = render(&h);
        prop_assert_eq!(procfs::parse(&text), expected(&h), "{}", text);
    }

    /// A sample cut anywhere before its end marker (a dropped connection) is never taken
    /// for a complete one, and never panics the parser or the rates.
    #[test]
    fn procfs_cut_output_is_incomplete(h in host_text(), cut in any::<Index>()) {
        let text = render(&HostText { complete: true, ..h });
        let end = text.rfind("==> end <==").unwrap();
        let mut at = cut.index(end + 1);
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        let sample = procfs::parse(&text[..at]);
        prop_assert!(!sample.complete);
        let mut sampler = procfs::Sampler::default();
        let t0 = std::time::Instant::now();
        sampler.next(procfs::parse(&text), t0);
        let (m, _) = sampler.next(sample, t0 + std::time::Duration::from_secs(1));
        prop_assert!((0.0..=100.0).contains(&m.cpu_percent));
        prop_assert!(m.net_rx_bps.is_finite() && m.net_tx_bps.is_finite());
    }

    #[test]
    fn procfs_never_panics(text in "(==> [a-z/_ .]{0,12} <==|[\\PC\n\t :0-9.-]{0,20}|\n){0,40}") {
        let s = procfs::parse(&text);
        prop_assert!(s.disks.iter().all(|d| d.used_bytes <= d.total_bytes));
        prop_assert!(s.mem_used_bytes <= s.mem_total_bytes);
    }

    #[test]
    fn cgroup_counters_round_trip(
        us in any::<u64>(),
        ns in any::<u64>(),
        usage in any::<u64>(),
        inactive in any::<u64>(),
        v1 in any::<bool>(),
        noise in "[a-z_]{1,12} [0-9]{1,5}\n",
    ) {
        prop_assert_eq!(cgroup::parse_v1_cpu(&format!(" {ns}\n")), Some(ns));
        let stat = format!("{noise}usage_usec {us}\nuser_usec 3\n");
        let want = if noise.starts_with("usage_usec ") {
            None
        } else {
            Some(us.saturating_mul(1000))
        };
        if let Some(want) = want {
            prop_assert_eq!(cgroup::parse_v2_cpu(&stat), Some(want));
        }
        let key = if v1 { "total_inactive_file" } else { "inactive_file" };
        let mem = format!("cache 1\n{key} {inactive}\nactive_file 2\n");
        prop_assert_eq!(
            cgroup::memory_in_use(&format!("{usage}\n"), &mem),
            Some(usage.saturating_sub(inactive))
        );
    }

    #[test]
    fn cgroup_parsers_are_total(text in "\\PC{0,40}", key in "[a-z_]{0,12}") {
        let _ = cgroup::parse_v1_cpu(&text);
        let _ = cgroup::parse_v2_cpu(&text);
        let _ = cgroup::stat_value(&text, &key);
        if let Some(m) = cgroup::memory_in_use(&text, &text) {
            prop_assert!(m <= text.trim().parse::<u64>().unwrap());
        }
    }
}

// ------------------------------------------------------------------------- known_hosts

const KEYS: [&str; 3] = [
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINnErunihirY0qNWagQHhyAViidMnBbVmCGibfAb9G6M",
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOj9wcXcbK6y5d7qBWcKVvhalTVfRfDyO4HsncV5867G",
    "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBKcMPsyeqpQMOxbZF0CsngyHkzc0goeEUobemqL/VG3XQpvPqZVIRyj7qfrJdwd1+7750BGzN/f7dosWwJBWzF0=",
];

/// A host the file is asked about; names come from a small alphabet so that patterns
/// written for one host often match, or nearly match, another.
fn query() -> impl Strategy<Value = (String, u16)> {
    (
        "[ab]{1,2}(\\.[ab1-]{1,2}){0,2}",
        prop_oneof![3 => Just(22u16), 2 => Just(2222u16), 1 => 1u16..],
    )
}

#[derive(Debug, Clone)]
enum HostPattern {
    /// A pattern written from a query's name: the name itself, or with letters turned into
    /// `*`/`?` or upper case, optionally bracketed with a port.
    FromQuery {
        query: Index,
        edits: Vec<(Index, char)>,
        bracket: Option<Option<u16>>,
    },
    Random(String),
    /// At and around OpenSSH's 1023-byte limit on one pattern.
    Long(usize, char),
}

#[derive(Debug, Clone)]
enum LineSpec {
    Entry {
        marker: &'static str,
        lead: &'static str,
        sep: &'static str,
        /// Each pattern with its `!`.
        patterns: Vec<(bool, HostPattern)>,
        key: Index,
        comment: bool,
    },
    /// One name, hashed by `ssh-keygen -H`.
    Hashed {
        marker: &'static str,
        query: Index,
        key: Index,
    },
    Raw(&'static str),
}

fn host_pattern() -> impl Strategy<Value = HostPattern> {
    prop_oneof![
        6 => (
            any::<Index>(),
            proptest::collection::vec((any::<Index>(), select(vec!['*', '?', 'A', 'B', 'a', '.'])), 0..3),
            proptest::option::of(proptest::option::of(prop_oneof![Just(2222u16), 1u16..])),
        )
            .prop_map(|(query, edits, bracket)| HostPattern::FromQuery { query, edits, bracket }),
        2 => "[ab.*?\\[\\]:0-9]{0,6}".prop_map(HostPattern::Random),
        1 => (1020usize..1026, select(vec!['a', '*'])).prop_map(|(n, c)| HostPattern::Long(n, c)),
    ]
}

fn line_spec() -> impl Strategy<Value = LineSpec> {
    let marker = prop_oneof![
        8 => Just(""),
        2 => Just("@revoked "),
        2 => Just("@cert-authority "),
        1 => Just("@revoked\t"),
        1 => Just("@rev "),
        1 => Just("@bogus "),
        1 => Just("@revoked @revoked "),
    ];
    prop_oneof![
        8 => (
            marker.clone(),
            select(vec!["", "", " ", "\t"]),
            select(vec![" ", " ", "\t", "  "]),
            proptest::collection::vec((proptest::bool::weighted(0.2), host_pattern()), 1..4),
            any::<Index>(),
            any::<bool>(),
        )
            .prop_map(|(marker, lead, sep, patterns, key, comment)| LineSpec::Entry {
                marker,
                lead,
                sep,
                patterns,
                key,
                comment,
            }),
        3 => (marker, any::<Index>(), any::<Index>())
            .prop_map(|(marker, query, key)| LineSpec::Hashed { marker, query, key }),
        1 => select(vec!["", "# a comment", "  # indented", "a.b", "@revoked", "*"]).prop_map(LineSpec::Raw),
    ]
}

fn name(host: &str, port: u16) -> String {
    if port == 22 {
        host.to_string()
    } else {
        format!("[{host}]:{port}")
    }
}

fn pattern_text(p: &HostPattern, queries: &[(String, u16)]) -> String {
    match p {
        HostPattern::FromQuery {
            query,
            edits,
            bracket,
        } => {
            let (host, port) = query.get(queries);
            let mut chars: Vec<char> = host.chars().collect();
            for (at, c) in edits {
                let i = at.index(chars.len());
                chars[i] = *c;
            }
            let host: String = chars.into_iter().collect();
            match bracket {
                None => host,
                Some(p) => format!("[{host}]:{}", p.unwrap_or(*port)),
            }
        }
        HostPattern::Random(s) => s.clone(),
        HostPattern::Long(n, c) => c.to_string().repeat(*n),
    }
}

/// `ssh-keygen -H` over one line per name: the hashed host fields, in order.
fn hash_names(dir: &Path, names: &[String]) -> Vec<String> {
    if names.is_empty() {
        return Vec::new();
    }
    let file = dir.join("to_hash");
    let text: String = names.iter().map(|n| format!("{n} {}\n", KEYS[0])).collect();
    std::fs::write(&file, text).unwrap();
    let out = Command::new("ssh-keygen")
        .args(["-q", "-H", "-f"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let hashed: Vec<String> = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .map(|l| l.split(' ').next().unwrap().to_string())
        .collect();
    assert_eq!(hashed.len(), names.len());
    assert!(hashed.iter().all(|h| h.starts_with("|1|")), "{hashed:?}");
    hashed
}

/// The lines `ssh-keygen -F NAME` reports, with their markers.
fn ssh_keygen_finds(file: &Path, name: &str) -> Vec<(usize, Marker)> {
    let out = Command::new("ssh-keygen")
        .arg("-F")
        .arg(name)
        .arg("-f")
        .arg(file)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("# Host ")?.split_once(" found: line ")?.1;
            let mut words = rest.split(' ');
            let line = words.next()?.parse().ok()?;
            let marker = match words.next().unwrap_or("") {
                "CA" => Marker::CertAuthority,
                "REVOKED" => Marker::Revoked,
                _ => Marker::None,
            };
            Some((line, marker))
        })
        .collect()
}

proptest! {
    #![proptest_config(cases(64))]

    /// For generated files (plain, hashed, bracketed, wildcard and negated entries,
    /// markers good and bad, comments, long patterns), the lines opsdeck takes as being
    /// about a host are exactly those `ssh-keygen -F` finds, markers included.
    #[test]
    fn known_hosts_lines_agree_with_ssh_keygen(
        queries in proptest::collection::vec(query(), 1..3),
        specs in proptest::collection::vec(line_spec(), 1..10),
    ) {
        let Some(_) = require("ssh-keygen", "openssh-client") else { return Ok(()) };
        let dir = tempfile::tempdir().unwrap();
        let to_hash: Vec<String> = specs
            .iter()
            .filter_map(|s| match s {
                LineSpec::Hashed { query, .. } => {
                    let (h, p) = query.get(&queries);
                    Some(name(h, *p))
                }
                _ => None,
            })
            .collect();
        let mut hashed = hash_names(dir.path(), &to_hash).into_iter();
        let mut text = String::new();
        for spec in &specs {
            match spec {
                LineSpec::Entry { marker, lead, sep, patterns, key, comment } => {
                    let hosts: Vec<String> = patterns
                        .iter()
                        .map(|(neg, p)| format!("{}{}", if *neg { "!" } else { "" }, pattern_text(p, &queries)))
                        .collect();
                    text.push_str(&format!("{lead}{marker}{}{sep}{}", hosts.join(","), key.get(&KEYS)));
                    if *comment {
                        text.push_str(" user@example");
                    }
                }
                LineSpec::Hashed { marker, key, .. } => {
                    text.push_str(&format!("{marker}{} {}", hashed.next().unwrap(), key.get(&KEYS)));
                }
                LineSpec::Raw(s) => text.push_str(s),
            }
            text.push('\n');
        }
        let file = dir.path().join("known_hosts");
        std::fs::write(&file, &text).unwrap();
        let lines: Vec<&str> = text.split('\n').collect();
        for (host, port) in &queries {
            let mut ours: Vec<(usize, Marker)> = known_hosts::host_lines(text.as_bytes(), host, *port)
                .into_iter()
                .map(|l| (l.line, l.marker))
                .collect();
            let theirs = ssh_keygen_finds(&file, &name(host, *port));
            // The one deliberate difference: OpenSSH ends a marker at the first space on the
            // line (a tab only where there is no space), so `@revoked<TAB>host key` is an
            // invalid marker to it and the line is ignored. opsdeck reads the revocation
            // the operator wrote: it can only refuse a key ssh would accept, never the
            // other way round.
            ours.retain(|&(line, marker)| {
                let text = lines[line - 1].trim_start_matches([' ', '\t']);
                let tab_marker = ["@revoked\t", "@cert-authority\t"]
                    .iter()
                    .any(|m| text.starts_with(m) && text.contains(' '));
                assert!(!tab_marker || marker != Marker::None);
                !tab_marker
            });
            prop_assert_eq!(ours, theirs, "{}:{}\n{}", host, port, text);
        }
    }

    /// Whatever the file, a status names a line `host_lines` lists with the fitting
    /// marker, and a key listed (unmarked) for the host is never reported Unknown.
    #[test]
    fn known_hosts_status_is_consistent(
        (host, port) in query(),
        lines in proptest::collection::vec("(@revoked |@cert-authority )?[ab.*?!,\\[\\]:0-9|]{0,8}[ \t]", 0..8),
        keys in proptest::collection::vec(any::<Index>(), 8),
        presented in any::<Index>(),
    ) {
        let text: String = lines
            .iter()
            .zip(&keys)
            .map(|(l, k)| format!("{l}{}\n", k.get(&KEYS)))
            .collect();
        let presented: &str = KEYS[presented.index(KEYS.len())];
        let key = russh::keys::PublicKey::from_openssh(presented).unwrap();
        let listed = known_hosts::host_lines(text.as_bytes(), &host, port);
        let has = |line: usize, marker: Marker| listed.iter().any(|l| l.line == line && l.marker == marker);
        match known_hosts::check_contents(Path::new("f"), text.as_bytes(), &host, port, &key) {
            HostKeyStatus::Known { line, .. } | HostKeyStatus::Changed { line, .. } => {
                prop_assert!(has(line, Marker::None))
            }
            HostKeyStatus::Revoked { line, .. } => prop_assert!(has(line, Marker::Revoked)),
            HostKeyStatus::Unknown => {
                let same = |l: &known_hosts::HostLine| {
                    russh::keys::PublicKey::from_openssh(&l.key).is_ok_and(|k| k.key_data() == key.key_data())
                };
                prop_assert!(!listed.iter().any(|l| l.marker == Marker::None && same(l)));
            }
        }
    }
}

// -------------------------------------------------------------------- script::command

/// Characters that mean something to a shell, weighted up against the rest of Unicode.
fn shell_char() -> impl Strategy<Value = char> {
    prop_oneof![
        3 => select("'\"$`\\\n\t !*?[]{}~#=%;&|<>()^,\r-".chars().collect::<Vec<_>>()),
        1 => any::<char>().prop_filter("argv holds no NUL", |c| *c != '\0'),
        1 => proptest::char::range('a', 'z'),
    ]
}

fn shell_word() -> impl Strategy<Value = String> {
    proptest::collection::vec(shell_char(), 0..12).prop_map(String::from_iter)
}

/// Each shell as the login shell and as the `sh` inside the command line, with nothing
/// but a PATH holding it (and `env`).
struct Shell {
    name: &'static str,
    dir: tempfile::TempDir,
    argv0: Vec<String>,
}

fn shells() -> Vec<Shell> {
    let mut out = Vec::new();
    for (name, program, package) in [
        ("dash", "dash", "dash"),
        ("bash", "bash", "bash"),
        ("busybox sh", "busybox", "busybox"),
    ] {
        let Some(path) = require(program, package) else {
            continue;
        };
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(&path, dir.path().join("sh")).unwrap();
        let env = require("env", "coreutils").unwrap();
        std::os::unix::fs::symlink(env, dir.path().join("env")).unwrap();
        let argv0 = if program == "busybox" {
            vec![path.to_str().unwrap().to_string(), "sh".into()]
        } else {
            vec![path.to_str().unwrap().to_string()]
        };
        out.push(Shell { name, dir, argv0 });
    }
    out
}

proptest! {
    #![proptest_config(cases(40))]

    /// The command line opsdeck hands a host's login shell delivers every word byte for
    /// byte to the script, in dash, bash and busybox sh alike; the script's `$0` is `sh`.
    #[test]
    fn script_command_delivers_argv_byte_for_byte(
        args in proptest::collection::vec(shell_word(), 0..6),
        docker_host in proptest::option::of(shell_word()),
    ) {
        let shells = shells();
        let script = r#"printf '%s\0' "${DOCKER_HOST-unset}" "$0" "$@""#;
        let line = script::command(docker_host.as_deref(), script, &args).unwrap();
        let mut want: Vec<u8> = Vec::new();
        for w in std::iter::once(docker_host.as_deref().unwrap_or("unset"))
            .chain(["sh"])
            .chain(args.iter().map(String::as_str))
        {
            want.extend_from_slice(w.as_bytes());
            want.push(0);
        }
        for shell in &shells {
            let out = Command::new(&shell.argv0[0])
                .args(&shell.argv0[1..])
                .arg("-c")
                .arg(&line)
                .env_clear()
                .env("PATH", shell.dir.path())
                .output()
                .unwrap();
            prop_assert!(out.status.success(), "{}: {}\n{}", shell.name, line, String::from_utf8_lossy(&out.stderr));
            prop_assert_eq!(
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&want),
                "{}: {}", shell.name, line
            );
            prop_assert_eq!(&out.stdout, &want);
        }
    }

    #[test]
    fn script_command_refuses_nul_only(
        args in proptest::collection::vec("[a\\x00']{0,3}", 0..4),
        docker_host in proptest::option::of("[a\\x00]{0,2}"),
    ) {
        let nul = args.iter().chain(&docker_host).any(|w| w.contains('\0'));
        prop_assert_eq!(script::command(docker_host.as_deref(), "x", &args).is_none(), nul);
    }
}

// --------------------------------------------------------------------- TOML inventory

fn fixtures() -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut texts = vec![std::fs::read_to_string(root.join("hosts.toml")).unwrap()];
    let mut paths: Vec<PathBuf> = std::fs::read_dir(root.join("tests/fixtures/config"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    paths.sort();
    texts.extend(paths.iter().map(|p| std::fs::read_to_string(p).unwrap()));
    assert!(texts.len() > 10);
    texts
}

/// What "every error carries a span" means for the operator: the position is inside the
/// text, the excerpt is that line, and the message starts with `path:line:column:`.
fn check_error_position(
    text: &str,
    result: Result<Inventory, ConfigError>,
) -> Result<(), TestCaseError> {
    let Err(e) = result else { return Ok(()) };
    let shown = e.to_string();
    let ConfigError::Invalid {
        line,
        column,
        excerpt,
        ..
    } = &e
    else {
        return Err(TestCaseError::fail(format!(
            "not an Invalid error: {shown}"
        )));
    };
    let lines: Vec<&str> = text.split('\n').collect();
    prop_assert!((1..=lines.len()).contains(line), "{}", shown);
    let this = lines[line - 1];
    prop_assert!(
        *column >= 1 && *column <= this.chars().count() + 1,
        "{}",
        shown
    );
    let want = if *line < lines.len() {
        this.strip_suffix('\r').unwrap_or(this)
    } else {
        this
    };
    prop_assert_eq!(want, excerpt.as_str());
    prop_assert!(
        shown.starts_with(&format!("fuzz.toml:{line}:{column}: ")),
        "{}",
        shown
    );
    // A 1:1 position must come from the error itself, not from a span that was missing.
    if let Err(toml) = toml::from_str::<Inventory>(text) {
        prop_assert!(toml.span().is_some(), "no span: {}", toml);
    }
    Ok(())
}

const TOML_BITS: [&str; 24] = [
    "\n",
    "[",
    "]",
    "[[host]]\n",
    "[[host.stack]]\n",
    "=",
    "\"",
    "'",
    "\"\"\"",
    ",",
    "{",
    "}",
    "name = ",
    "port = ",
    "0",
    "65536",
    "-1",
    "\"2m\"",
    "true",
    "é",
    "\u{0}",
    "#",
    "\r\n",
    "\\",
];

proptest! {
    #![proptest_config(cases(256))]

    #[test]
    fn inventory_errors_point_into_the_text(text in "\\PC{0,200}") {
        check_error_position(&text, config::parse_str(&text, Path::new("fuzz.toml")))?;
    }

    /// The fixtures and the example inventory, edited: a token inserted, a span deleted,
    /// a line repeated. Never a panic, and every error is positioned.
    #[test]
    fn edited_inventories_never_panic(
        which in any::<Index>(),
        edits in proptest::collection::vec((0u8..3, any::<Index>(), any::<Index>(), select(TOML_BITS.to_vec())), 1..5),
    ) {
        let fixtures = fixtures();
        let mut text = which.get(&fixtures).clone();
        for (kind, a, b, bit) in edits {
            let bounds: Vec<usize> = text.char_indices().map(|(i, _)| i).chain([text.len()]).collect();
            let at = *a.get(&bounds);
            match kind {
                0 => text.insert_str(at, bit),
                1 => {
                    let to = (*b.get(&bounds)).max(at);
                    text.replace_range(at..to.min(at + 40), "");
                }
                _ => {
                    let lines: Vec<&str> = text.split_inclusive('\n').collect();
                    if !lines.is_empty() {
                        let l = a.get(&lines).to_string();
                        let to = b.index(lines.len());
                        let mut out: Vec<&str> = lines.clone();
                        out.insert(to, &l);
                        text = out.concat();
                    }
                }
            }
        }
        check_error_position(&text, config::parse_str(&text, Path::new("fuzz.toml")))?;
    }
}

// -------------------------------------------------------------------------- sanitize

/// Text rich in what the sanitizer must remove: ESC and C1 introducers, the bytes of
/// their grammar, BEL, C0, DEL and the bidi overrides.
fn hostile_text() -> impl Strategy<Value = String> {
    let c = prop_oneof![
        4 => select(
            "\u{1b}\u{1b}\u{1b}[[]]PX^_\\;:0123456789m?<>= !\"#/@AHJK~\u{7}\u{8}\u{0}\r\n\t\u{7f}\u{9b}\u{9c}\u{9d}\u{90}\u{98}\u{9e}\u{9f}\u{85}\u{202e}\u{2066}\u{200b}"
                .chars()
                .collect::<Vec<_>>()
        ),
        2 => any::<char>(),
        1 => proptest::char::range('a', 'z'),
    ];
    proptest::collection::vec(c, 0..40).prop_map(String::from_iter)
}

proptest! {
    #![proptest_config(cases(512))]

    #[test]
    fn sanitize_removes_every_control(s in hostile_text()) {
        let line = sanitize::line(&s);
        prop_assert!(!line.chars().any(|c| c.is_control() || bidi(c)), "{:?} -> {:?}", s, line);
        let text = sanitize::text(&s);
        prop_assert!(
            !text.chars().any(|c| (c.is_control() && c != '\n' && c != '\t') || bidi(c)),
            "{:?} -> {:?}", s, text
        );
        let sgr = sanitize::keep_sgr(&s);
        prop_assert!(only_sgr(&sgr), "{:?} -> {:?}", s, sgr);
    }

    #[test]
    fn sanitize_is_idempotent(s in hostile_text()) {
        for f in [sanitize::line, sanitize::text, sanitize::keep_sgr] {
            let once = f(&s).into_owned();
            let twice = f(&once);
            prop_assert_eq!(&once, twice.as_ref(), "{:?}", s);
        }
    }

    /// Without escape sequences, nothing but the controls themselves is touched.
    #[test]
    fn sanitize_keeps_plain_text(s in "[^\u{1b}\u{90}-\u{9f}]{0,40}") {
        let line: String = s
            .chars()
            .filter_map(|c| match c {
                '\n' | '\t' | '\r' => Some(' '),
                c if c.is_control() || bidi(c) => None,
                c => Some(c),
            })
            .collect();
        prop_assert_eq!(sanitize::line(&s), line);
        let text: String = s
            .chars()
            .filter(|&c| c == '\n' || c == '\t' || !(c.is_control() || bidi(c)))
            .collect();
        prop_assert_eq!(sanitize::text(&s), text);
    }
}
