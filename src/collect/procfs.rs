//! A remote host's metrics and all its containers' CPU and memory from one shell on the
//! host, asked once per tick ([`LOOP`]), or one exec ([`SCRIPT`]).
//! Installing nothing on the host and asking dockerd for nothing is the point (see
//! DESIGN.md, "Where the cost is"): the kernel already keeps every counter in /proc and
//! cgroupfs, so one `head` over those files plus `df` is the whole sample. The parser
//! treats the text as untrusted: a cut connection, an odd kernel or a busybox userland
//! must give missing fields, never a panic or a nonsense rate.

use std::collections::HashMap;
use std::time::Instant;

use super::cgroup::{self, Counters, CpuRates};
use crate::model::Metrics;
use crate::model::host::Disk;

/// Wrapped in `sh -c` because SSH hands the command to the user's login shell, and zsh
/// aborts the whole line on an unmatched glob while fish rejects `a=b`; the inner script
/// therefore holds no single quote or backslash. No config value is interpolated.
///
/// `head` prints `==> path <==` before each file, so one process reads /proc and every
/// container's counters; globs that match nothing (no Docker, the other cgroup version,
/// the other cgroup driver) stay literal and fail on stderr, which is discarded. Systemd
/// hosts on cgroup v1 link `cpuacct` to `cpu,cpuacct`; the `[ -d ]` picks one of the two
/// so each counter is read once. `memory.stat` is ~1 KB per container but only its
/// inactive-file line is needed (subtracting it matches `docker stats`), so `grep` keeps
/// just that line. `df -l` skips network filesystems, whose hung server would otherwise
/// block every tick; busybox df has no `-l` and falls back to plain `-kP`. A local mount
/// can hang too (a FUSE daemon that stopped answering): `timeout -s KILL` bounds `df`
/// where coreutils has it, so the rest of the sample still arrives. The `end` marker lets
/// the parser tell a complete sample from a cut one.
///
/// `d` says what to read: empty, everything; `skip`, no page cache and no disks; `cg` and
/// `cgskip`, the same without /proc and the disks, for a host whose figures come from a
/// metrics source (only its containers' cgroups are read).
macro_rules! sample_body {
    () => {
        "c=/sys/fs/cgroup; a=$c/cpuacct; [ -d $a ] || a=$c/cpu,cpuacct; \
P=\"/proc/stat /proc/meminfo /proc/loadavg /proc/net/dev /proc/uptime\"; case $d in cg*) P=;; esac; \
head -c 262144 $P \
$a/docker/*/cpuacct.usage $a/system.slice/docker-*.scope/cpuacct.usage \
$c/memory/docker/*/memory.usage_in_bytes $c/memory/system.slice/docker-*.scope/memory.usage_in_bytes \
$c/docker/*/cpu.stat $c/docker/*/memory.current \
$c/system.slice/docker-*.scope/cpu.stat $c/system.slice/docker-*.scope/memory.current 2>/dev/null; \
case $d in *skip) ;; *) echo \"==> inactive_file <==\"; \
grep -sH -e \"^total_inactive_file \" -e \"^inactive_file \" \
$c/memory/docker/*/memory.stat $c/memory/system.slice/docker-*.scope/memory.stat \
$c/docker/*/memory.stat $c/system.slice/docker-*.scope/memory.stat 2>/dev/null; \
case $d in cg*) ;; *) echo \"==> df <==\"; t=; command -v timeout >/dev/null 2>&1 && t=\"timeout -s KILL 1\"; \
$t df -kPl 2>/dev/null || $t df -kP 2>/dev/null;; esac;; esac; \
echo \"==> end <==\""
    };
}

/// One sample, for a one-off command (`d` empty: with the disks).
pub const SCRIPT: &str = concat!("sh -c 'd=; ", sample_body!(), "'");

/// The sampler that stays for the whole connection: one line on its stdin asks for a
/// sample, which it prints up to its end marker; EOF ends it. An empty line asks for the
/// whole sample; `skip` leaves out the two forks that read what changes slowly, `grep` for
/// the containers' page cache and `df` for the disks ([`Sample::fill_from`] takes those two
/// from the last whole sample), so it costs the host one `head`. One channel and one shell
/// for the connection's life, where [`SCRIPT`] costs sshd a session, the login shell and
/// `sh` per tick.
///
/// And most ticks fork nothing: `p PATH...` hands the files a sample read (see [`paths`])
/// to an `awk` that stays beside the shell, which reads them at once and again at each `r`.
/// Forking `head` is three quarters of a tick's cost to the host; awk's `getline` and
/// `close` are an open, a read and a close per file. The globs, and the cgroups of
/// containers started since, are the shell's again at the next whole or `skip` sample. A
/// host without awk answers `p` and `r` as `skip`. mawk reads a pipe in blocks unless told
/// `-W interactive`; an awk that warns about it (busybox) or refuses it reads a pipe as it
/// comes and runs without. Each sample leaves awk as one write.
pub static LOOP: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let body = sample_body!();
    let reader = in_double_quotes(AWK_READER);
    let command = format!(
        "sh -c 's() {{ {body}; }}; \
if command -v awk >/dev/null 2>&1; then A=\"awk -W interactive\"; \
o=$($A \"BEGIN{{}}\" </dev/null 2>&1) && [ -z \"$o\" ] || A=awk; \
{{ while read -r d; do case $d in [pr]*) echo \"$d\";; *) s >&3;; esac; done | $A \"{reader}\"; }} 3>&1; \
else while read -r d; do case $d in [pr]*) d=skip;; esac; s; done; fi'"
    );
    debug_assert_eq!(command.matches('\'').count(), 2, "{command}");
    command
});

/// The files of the last `p` line, read at each request, each at most 256 KiB as `head -c`
/// reads them; a file that cannot be read (its container stopped) is left out, header
/// and all, as `head` leaves it out.
const AWK_READER: &str = r#"$1 == "p" { n = 0; for (i = 2; i <= NF; i++) f[++n] = $i }
{ o = ""; for (i = 1; i <= n; i++) { p = f[i]; if ((getline l < p) > 0) {
o = o "==> " p " <==\n" l "\n"; k = length(l);
while (k < 262144 && (getline l < p) > 0) { o = o l "\n"; k += length(l) + 1 } }
close(p) } printf "%s==> end <==\n", o; fflush() }"#;

/// `text` for the inside of a double-quoted shell word on one line.
fn in_double_quotes(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '\\' | '"' | '$' | '`' => {
                out.push('\\');
                out.push(c);
            }
            '\n' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// The most paths a `p` line names, and the longest path: a host's files could be anything,
/// and what goes back to it is bounded like what comes from it.
const MAX_PATHS: usize = 1024;
const MAX_PATH_LEN: usize = 256;

/// The files a sample read (its `==> path <==` headers), for the sampler's `p` line:
/// absolute paths of plain characters only, since the line is split on blanks and each
/// word is opened by name. Empty when the sample did not read /proc/stat, without which
/// there is no sample.
pub fn paths(output: &str) -> Vec<String> {
    let out = headers(output);
    if out.iter().any(|p| p == "/proc/stat") {
        out
    } else {
        Vec::new()
    }
}

/// The containers' files a sample read (not /proc), for a sampler that reads only those.
pub fn cgroup_paths(output: &str) -> Vec<String> {
    let mut out = headers(output);
    out.retain(|p| !p.starts_with("/proc/"));
    out
}

fn headers(output: &str) -> Vec<String> {
    let plain = |p: &str| {
        p.len() <= MAX_PATH_LEN
            && p.starts_with('/')
            && !p.split('/').any(|part| part == "..")
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"/._-:,@+".contains(&b))
    };
    let mut out: Vec<String> = Vec::new();
    for line in output.lines() {
        if let Some(path) = header(line).filter(|p| plain(p))
            && !out.iter().any(|p| p == path)
        {
            if out.len() == MAX_PATHS {
                break;
            }
            out.push(path.to_string());
        }
    }
    out
}

/// What ends a sample's output.
pub const END_MARK: &[u8] = b"==> end <==\n";

/// Jiffies since boot; `idle` includes iowait, since a core waiting on disk is free to run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuTimes {
    pub total: u64,
    pub idle: u64,
}

/// Per interface, so an interface that vanishes between ticks (a VPN going down) cannot
/// make the summed counter step backwards.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetCounters {
    pub name: String,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
}

/// One parsed sample: absolute counters, not rates. A section missing from the output
/// leaves its fields empty or zero.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sample {
    /// `None` when /proc/stat was missing, so no rate is made against a zero.
    pub cpu: Option<CpuTimes>,
    /// By kernel CPU number: offline CPUs are absent, so positions alone would mismatch.
    pub per_core: Vec<(u32, CpuTimes)>,
    pub mem_total_bytes: u64,
    /// Total minus MemAvailable, the figure `free` and sysinfo report as used.
    pub mem_used_bytes: u64,
    pub swap_total_bytes: u64,
    pub swap_used_bytes: u64,
    pub load: [f64; 3],
    /// Interfaces that carry the host's own traffic; see [`counts_as_host_traffic`].
    pub net: Vec<NetCounters>,
    pub uptime_secs: u64,
    pub disks: Vec<Disk>,
    /// By full container id. Present whenever the CPU counter was read; `mem_bytes` is 0
    /// when the memory controller is absent (Raspberry Pi kernels ship it disabled).
    pub containers: HashMap<String, Counters>,
    /// Each container's reclaimable page cache (`inactive_file`), already taken off its
    /// `mem_bytes`; `None` when the sample did not read it (asked with `skip`).
    pub page_cache: Option<HashMap<String, u64>>,
    /// The output ran to the end marker: without it the last section may be cut short,
    /// and a number cut in half still parses.
    pub complete: bool,
}

impl Sample {
    /// Completes a sample asked with `skip` from `full`, the last one read whole: its
    /// disks, and each container's page cache taken off the memory in use (a container
    /// new since then counts none until the next full sample).
    pub fn fill_from(&mut self, full: &Sample) {
        if self.page_cache.is_some() {
            return;
        }
        self.disks.clone_from(&full.disks);
        if let Some(cache) = &full.page_cache {
            for (id, c) in &mut self.containers {
                let inactive = cache.get(id).copied().unwrap_or(0);
                c.mem_bytes = c.mem_bytes.saturating_sub(inactive);
            }
        }
    }

    pub fn net_totals(&self) -> (u64, u64) {
        self.net.iter().fold((0, 0), |(rx, tx), n| {
            (rx.saturating_add(n.rx_bytes), tx.saturating_add(n.tx_bytes))
        })
    }
}

/// What the console shows per container: counters plus the rate made from them.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ContainerUsage {
    /// Percent of one core, as `docker stats` shows it: 250 means two and a half cores.
    /// `None` until a second sample: a container has no since-boot average to fall back on.
    pub cpu_percent: Option<f64>,
    pub mem_bytes: u64,
    pub cpu_ns: u64,
}

/// Loopback never leaves the host; Docker's bridges and veth pairs (and libvirt's and
/// CNI's) carry container traffic that the physical interface counts again on its way
/// out, and ifb devices mirror another interface's ingress for shaping. Counting any of
/// them would double the host's network rate whenever containers talk.
pub fn counts_as_host_traffic(name: &str) -> bool {
    const SKIP: [&str; 8] = [
        "docker", "br-", "veth", "virbr", "cni", "flannel", "cali", "ifb",
    ];
    name != "lo" && !name.is_empty() && !SKIP.iter().any(|p| name.starts_with(p))
}

/// Sources whose usage is RAM, a read-only image or another disk seen twice. The root
/// mount is kept whatever its source: inside a container `/` is an overlay, and its usage
/// is still the backing disk's.
const PSEUDO_SOURCES: [&str; 27] = [
    "tmpfs",
    "devtmpfs",
    "overlay",
    "overlayfs",
    "squashfs",
    "proc",
    "sysfs",
    "devpts",
    "cgroup",
    "cgroup2",
    "shm",
    "none",
    "udev",
    "ramfs",
    "mqueue",
    "hugetlbfs",
    "debugfs",
    "tracefs",
    "securityfs",
    "pstore",
    "bpf",
    "configfs",
    "fusectl",
    "efivarfs",
    "binfmt_misc",
    "nsfs",
    "autofs",
];

/// Mount points that are the system's plumbing or Docker's storage, not a disk to watch.
const SYSTEM_MOUNTS: [&str; 6] = ["/proc", "/sys", "/dev", "/run", "/snap", "/var/lib/docker"];

/// Total over any text: what comes back over SSH may be cut off, from a kernel with other
/// columns, or not this script's output at all, so unknown sections and lines that do not
/// parse are skipped rather than trusted or fatal.
pub fn parse(output: &str) -> Sample {
    let mut sample = Sample::default();
    let mut raw: HashMap<&str, RawContainer> = HashMap::new();
    let mut name = "";
    let mut body: Vec<&str> = Vec::new();
    for line in output.lines() {
        if let Some(next) = header(line) {
            section(&mut sample, &mut raw, name, &body);
            name = next;
            body.clear();
        } else {
            body.push(line);
        }
    }
    section(&mut sample, &mut raw, name, &body);
    let mut cache = HashMap::new();
    for (id, c) in raw {
        let Some(cpu_ns) = c.cpu_ns else { continue };
        let inactive = cgroup::page_cache(&c.stat);
        let mem_bytes = c
            .usage
            .as_deref()
            .and_then(|u| u.trim().parse::<u64>().ok())
            .map_or(0, |u| u.saturating_sub(inactive));
        if sample.page_cache.is_some() {
            cache.insert(id.to_string(), inactive);
        }
        sample
            .containers
            .insert(id.to_string(), Counters { cpu_ns, mem_bytes });
    }
    if sample.page_cache.is_some() {
        sample.page_cache = Some(cache);
    }
    sample
}

/// A container's files arrive in separate sections (v1 even in separate hierarchies).
#[derive(Default)]
struct RawContainer {
    cpu_ns: Option<u64>,
    usage: Option<String>,
    stat: String,
}

fn header(line: &str) -> Option<&str> {
    line.trim()
        .strip_prefix("==> ")?
        .strip_suffix(" <==")
        .map(str::trim)
}

fn section<'a>(
    s: &mut Sample,
    raw: &mut HashMap<&'a str, RawContainer>,
    name: &'a str,
    body: &[&'a str],
) {
    match name {
        "" => {}
        "/proc/stat" => parse_stat(s, body),
        "/proc/meminfo" => parse_meminfo(s, body),
        "/proc/loadavg" => {
            let mut it = body.first().into_iter().flat_map(|l| l.split_whitespace());
            for slot in &mut s.load {
                if let Some(v) = it.next().and_then(parse_float) {
                    *slot = v;
                }
            }
        }
        "/proc/uptime" => {
            if let Some(v) = body
                .first()
                .and_then(|l| l.split_whitespace().next())
                .and_then(parse_float)
            {
                // Saturating cast: a float beyond u64 becomes u64::MAX, not a panic.
                s.uptime_secs = v as u64;
            }
        }
        "/proc/net/dev" => parse_net(s, body),
        "inactive_file" => {
            s.page_cache = Some(HashMap::new());
            for line in body {
                let Some((path, stat)) = line.split_once(':') else {
                    continue;
                };
                if let Some(id) = container_id(path) {
                    let c = raw.entry(id).or_default();
                    c.stat.push_str(stat);
                    c.stat.push('\n');
                }
            }
        }
        "df" => s.disks = parse_df(body),
        "end" => s.complete = true,
        path => {
            let Some(id) = container_id(path) else { return };
            let text = body.join("\n");
            let file = path.rsplit('/').next().unwrap_or("");
            match file {
                "cpuacct.usage" => {
                    if let Some(ns) = cgroup::parse_v1_cpu(&text) {
                        raw.entry(id).or_default().cpu_ns = Some(ns);
                    }
                }
                "cpu.stat" => {
                    if let Some(ns) = cgroup::parse_v2_cpu(&text) {
                        raw.entry(id).or_default().cpu_ns = Some(ns);
                    }
                }
                "memory.usage_in_bytes" | "memory.current" => {
                    raw.entry(id).or_default().usage = Some(text);
                }
                _ => {}
            }
        }
    }
}

/// `docker/<id>/file` (cgroupfs driver) or `system.slice/docker-<id>.scope/file`
/// (systemd driver). Anything else under those globs, such as buildkit's cgroup, is not a
/// container and is dropped.
fn container_id(path: &str) -> Option<&str> {
    let mut parts = path.trim().rsplit('/');
    parts.next()?;
    cgroup::docker_id(parts.next()?)
}

/// Rejects NaN, infinities and negatives, which a float parser happily accepts.
fn parse_float(s: &str) -> Option<f64> {
    s.parse::<f64>().ok().filter(|v| v.is_finite() && *v >= 0.0)
}

/// `cpu  user nice system idle iowait irq softirq steal guest guest_nice`. Guest time is
/// already inside user and nice, so only the first eight columns add up to the total;
/// older kernels print fewer columns, which then count as zero.
fn parse_stat(s: &mut Sample, body: &[&str]) {
    for line in body {
        let mut it = line.split_whitespace();
        let Some(label) = it.next() else { continue };
        let Some(rest) = label.strip_prefix("cpu") else {
            continue;
        };
        let fields: Option<Vec<u64>> = it.take(8).map(|f| f.parse().ok()).collect();
        let Some(f) = fields.filter(|f| f.len() >= 4) else {
            continue;
        };
        let times = CpuTimes {
            total: f.iter().fold(0u64, |a, &b| a.saturating_add(b)),
            idle: f[3].saturating_add(f.get(4).copied().unwrap_or(0)),
        };
        if rest.is_empty() {
            s.cpu = Some(times);
        } else if let Ok(id) = rest.parse::<u32>() {
            match s.per_core.iter_mut().find(|(i, _)| *i == id) {
                Some(core) => core.1 = times,
                None => s.per_core.push((id, times)),
            }
        }
    }
    s.per_core.sort_by_key(|(id, _)| *id);
}

fn parse_meminfo(s: &mut Sample, body: &[&str]) {
    let mut values: HashMap<&str, u64> = HashMap::new();
    for line in body {
        let Some((key, rest)) = line.split_once(':') else {
            continue;
        };
        if let Some(kb) = rest
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<u64>().ok())
        {
            values.insert(key.trim(), kb.saturating_mul(1024));
        }
    }
    let get = |k: &str| values.get(k).copied();
    let Some(total) = get("MemTotal") else { return };
    // MemAvailable is from Linux 3.14; before it, free plus the caches is the estimate.
    let available = get("MemAvailable").unwrap_or_else(|| {
        ["MemFree", "Buffers", "Cached", "SReclaimable"]
            .iter()
            .filter_map(|k| get(k))
            .fold(0u64, u64::saturating_add)
    });
    s.mem_total_bytes = total;
    s.mem_used_bytes = total.saturating_sub(available);
    s.swap_total_bytes = get("SwapTotal").unwrap_or(0);
    s.swap_used_bytes = s
        .swap_total_bytes
        .saturating_sub(get("SwapFree").unwrap_or(0));
}

/// `  eth0: rx_bytes packets errs drop fifo frame compressed multicast tx_bytes ...`;
/// long names leave no space before the colon, so split on the colon, not on blanks.
fn parse_net(s: &mut Sample, body: &[&str]) {
    for line in body {
        let Some((name, rest)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim();
        if !counts_as_host_traffic(name) || s.net.iter().any(|n| n.name == name) {
            continue;
        }
        let f: Vec<&str> = rest.split_whitespace().collect();
        let (Some(rx), Some(tx)) = (
            f.first().and_then(|v| v.parse().ok()),
            f.get(8).and_then(|v| v.parse().ok()),
        ) else {
            continue;
        };
        s.net.push(NetCounters {
            name: name.to_string(),
            rx_bytes: rx,
            tx_bytes: tx,
        });
    }
}

/// `df -kP` rows: source, 1K-blocks, used, available, capacity, mount (which may hold
/// spaces). Used is total minus available, as the local collector counts it: blocks
/// reserved for root are not space a service can write to.
fn parse_df(body: &[&str]) -> Vec<Disk> {
    let mut disks: Vec<Disk> = Vec::new();
    for line in body {
        let Some((source, total_k, avail_k, mount)) = df_fields(line) else {
            continue;
        };
        let pseudo = PSEUDO_SOURCES.contains(&source) || source.starts_with("/dev/loop");
        let system = SYSTEM_MOUNTS
            .iter()
            .any(|m| mount == *m || mount.strip_prefix(m).is_some_and(|r| r.starts_with('/')));
        let total = total_k.saturating_mul(1024);
        if mount != "/" && (pseudo || system) || total == 0 {
            continue;
        }
        let disk = Disk {
            mount: mount.to_string(),
            used_bytes: total.saturating_sub(avail_k.saturating_mul(1024)),
            total_bytes: total,
        };
        // A mount listed twice (stacked mounts, or the busybox fallback after a partial
        // GNU run) is one disk; the later line is the mount that is visible.
        match disks.iter_mut().find(|d| d.mount == disk.mount) {
            Some(d) => *d = disk,
            None => disks.push(disk),
        }
    }
    disks.sort_by(|a, b| a.mount.cmp(&b.mount));
    disks
}

fn df_fields(line: &str) -> Option<(&str, u64, u64, &str)> {
    let mut rest = line.trim();
    let mut f = [""; 5];
    for slot in &mut f {
        let (field, tail) = rest.split_once(char::is_whitespace)?;
        *slot = field;
        rest = tail.trim_start();
    }
    let mount = rest.trim_end();
    f[2].parse::<u64>().ok()?;
    let total = f[1].parse().ok()?;
    let avail = f[3].parse().ok()?;
    mount
        .starts_with('/')
        .then_some((f[0], total, avail, mount))
}

/// Turns successive samples into rates. Keep one per host connection: rates are only
/// meaningful between samples of the same machine.
#[derive(Debug, Default)]
pub struct Sampler {
    prev: Option<Prev>,
    containers: CpuRates,
}

#[derive(Debug)]
struct Prev {
    cpu: Option<CpuTimes>,
    per_core: Vec<(u32, CpuTimes)>,
    net: Vec<NetCounters>,
    uptime_secs: u64,
    at: Instant,
}

impl Sampler {
    /// Rates need two samples: the first call reports host CPU as the average since boot,
    /// container CPU as unknown and network rates as zero; a counter that went
    /// backwards (container restart, interface reset) reports zero for that tick, and a
    /// reboot (uptime going down) starts over as if this were the first call.
    pub fn next(
        &mut self,
        sample: Sample,
        at: Instant,
    ) -> (Metrics, HashMap<String, ContainerUsage>) {
        let rebooted = self.prev.as_ref().is_some_and(|p| {
            sample.uptime_secs > 0 && p.uptime_secs > 0 && sample.uptime_secs < p.uptime_secs
        });
        if rebooted {
            self.prev = None;
            self.containers = CpuRates::default();
        }
        let prev = self.prev.take();
        let secs = prev
            .as_ref()
            .and_then(|p| at.checked_duration_since(p.at))
            .map(|d| d.as_secs_f64())
            .filter(|s| *s > 0.0);

        // Without a previous sample, the counters from zero give the average since boot:
        // a truthful first figure for a one-shot `status`, replaced at the next tick.
        let cpu_percent = match (&prev, sample.cpu) {
            (None, Some(b)) => busy_percent(CpuTimes::default(), b),
            (Some(p), Some(b)) => p.cpu.map_or(0.0, |a| busy_percent(a, b)),
            (_, None) => 0.0,
        };
        let per_core = sample
            .per_core
            .iter()
            .map(|(id, now)| {
                let before = match &prev {
                    Some(p) => p.per_core.iter().find(|(i, _)| i == id).map(|(_, b)| *b),
                    None => Some(CpuTimes::default()),
                };
                before.map_or(0.0, |b| busy_percent(b, *now))
            })
            .collect();

        let (mut rx, mut tx) = (0u64, 0u64);
        if let Some(p) = &prev {
            for n in &sample.net {
                if let Some(old) = p.net.iter().find(|o| o.name == n.name) {
                    rx = rx.saturating_add(n.rx_bytes.saturating_sub(old.rx_bytes));
                    tx = tx.saturating_add(n.tx_bytes.saturating_sub(old.tx_bytes));
                }
            }
        }
        let rate = |bytes: u64| secs.map_or(0.0, |s| bytes as f64 / s);

        let mut containers = HashMap::with_capacity(sample.containers.len());
        for (id, c) in &sample.containers {
            let cpu_percent = self
                .containers
                .rate(id, c.cpu_ns, at)
                .filter(|p| p.is_finite());
            containers.insert(
                id.clone(),
                ContainerUsage {
                    cpu_percent,
                    mem_bytes: c.mem_bytes,
                    cpu_ns: c.cpu_ns,
                },
            );
        }
        let ids: Vec<&str> = sample.containers.keys().map(String::as_str).collect();
        self.containers.retain(&ids);

        let metrics = Metrics {
            cpu_percent,
            per_core,
            mem_used_bytes: sample.mem_used_bytes,
            mem_total_bytes: sample.mem_total_bytes,
            swap_used_bytes: sample.swap_used_bytes,
            swap_total_bytes: sample.swap_total_bytes,
            load: sample.load,
            disks: sample.disks,
            net_rx_bps: rate(rx),
            net_tx_bps: rate(tx),
            uptime_secs: sample.uptime_secs,
        };
        self.prev = Some(Prev {
            cpu: sample.cpu,
            per_core: sample.per_core,
            net: sample.net,
            uptime_secs: sample.uptime_secs,
            at,
        });
        (metrics, containers)
    }
}

/// Signed, because iowait (part of idle here) can step backwards on some kernels while
/// the total does too; clamped so no tick shows more than all of the CPU or less than none.
/// The fraction is taken before the percent: `busy / total` is at most 1 when busy is at
/// most total, whereas `busy * 100 / total` rounds twice and can pass 100.
fn busy_percent(before: CpuTimes, now: CpuTimes) -> f64 {
    let total = i128::from(now.total) - i128::from(before.total);
    let idle = i128::from(now.idle) - i128::from(before.idle);
    if total <= 0 {
        return 0.0;
    }
    let busy = (total - idle).clamp(0, total);
    busy as f64 / total as f64 * 100.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use std::process::Command;
    use std::time::Duration;

    /// The lab's `stall-sampler` fault holds a host's commands that name these files: the
    /// one-off sample and the sampler loop must both (tests/lab/lab, STALL_PATTERN).
    #[test]
    fn both_samplers_name_the_files_the_labs_stall_fault_matches() {
        let pattern = "/proc/stat /proc/meminfo /proc/loadavg";
        assert!(SCRIPT.contains(pattern), "{SCRIPT}");
        assert!(LOOP.contains(pattern), "{}", *LOOP);
        let lab =
            std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lab/lab"))
                .unwrap();
        assert!(
            lab.contains(&format!("STALL_PATTERN='{pattern}'")),
            "tests/lab/lab's STALL_PATTERN is no longer {pattern:?}"
        );
    }

    const ID1: &str = "1111111111111111111111111111111111111111111111111111111111111111";
    const ID2: &str = "2222222222222222222222222222222222222222222222222222222222222222";

    fn run(script: &str) -> String {
        let out = Command::new("sh").arg("-c").arg(script).output().unwrap();
        assert!(
            out.stderr.is_empty(),
            "the script must keep stderr quiet: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn fixture(user: u64, idle: u64, eth_rx: u64, eth_tx: u64, ns1: u64, us2: u64) -> String {
        format!(
            "==> /proc/stat <==
cpu  {user} 0 0 {idle} 0 0 0 0 7 7
cpu0 {half} 0 0 {idle_half} 0 0 0 0 0 0
cpu1 {half} 0 0 {idle_half} 0 0 0 0 0 0
intr 1 2 3 4
ctxt 99

==> /proc/meminfo <==
MemTotal:        2000 kB
MemFree:          100 kB
MemAvailable:     500 kB
Buffers:           10 kB
SwapTotal:       1000 kB
SwapFree:         250 kB

==> /proc/loadavg <==
0.50 1.25 2.00 1/123 4567

==> /proc/net/dev <==
Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo: {lo} 1 0 0 0 0 0 0 {lo} 1 0 0 0 0 0 0
  eth0: {eth_rx} 1 0 0 0 0 0 0 {eth_tx} 1 0 0 0 0 0 0
docker0: {lo} 1 0 0 0 0 0 0 {lo} 1 0 0 0 0 0 0
veth1a2b3c: {lo} 1 0 0 0 0 0 0 {lo} 1 0 0 0 0 0 0
br-152e422aa4b9: {lo} 1 0 0 0 0 0 0 {lo} 1 0 0 0 0 0 0

==> /proc/uptime <==
{uptime}.25 7000.00

==> /sys/fs/cgroup/cpuacct/docker/{ID1}/cpuacct.usage <==
{ns1}

==> /sys/fs/cgroup/memory/docker/{ID1}/memory.usage_in_bytes <==
10485760

==> /sys/fs/cgroup/system.slice/docker-{ID2}.scope/cpu.stat <==
usage_usec {us2}
user_usec 1
system_usec 1

==> /sys/fs/cgroup/system.slice/docker-{ID2}.scope/memory.current <==
20971520

==> /sys/fs/cgroup/docker/buildkit/cpu.stat <==
usage_usec 5
==> inactive_file <==
/sys/fs/cgroup/memory/docker/{ID1}/memory.stat:inactive_file 1048576
/sys/fs/cgroup/memory/docker/{ID1}/memory.stat:total_inactive_file 2097152
/sys/fs/cgroup/system.slice/docker-{ID2}.scope/memory.stat:inactive_file 4194304
==> df <==
Filesystem     1024-blocks    Used Available Capacity Mounted on
/dev/vda1          1000000  400000    550000      43% /
tmpfs               100000       0    100000       0% /dev/shm
overlay            1000000  400000    550000      43% /var/lib/docker/overlay2/abc/merged
/dev/loop3           60000   60000         0     100% /snap/core/1
/dev/vdb1             2000    1000       500      67% /mnt/my data
/dev/vdb1             2000    1000       500      67% /mnt/my data
==> end <==
",
            half = user / 2,
            idle_half = idle / 2,
            lo = eth_rx * 10,
            uptime = 1000 + user,
        )
    }

    #[test]
    fn parses_a_fixture_and_makes_exact_rates() {
        let a = parse(&fixture(
            1000,
            3000,
            10_000,
            5_000,
            1_000_000_000,
            2_000_000,
        ));
        assert!(a.complete);
        assert_eq!(
            a.cpu,
            Some(CpuTimes {
                total: 4000,
                idle: 3000
            })
        );
        assert_eq!(a.per_core.len(), 2);
        assert_eq!(a.per_core[1].0, 1);
        assert_eq!(a.mem_total_bytes, 2000 * 1024);
        assert_eq!(a.mem_used_bytes, 1500 * 1024);
        assert_eq!(a.swap_total_bytes, 1000 * 1024);
        assert_eq!(a.swap_used_bytes, 750 * 1024);
        assert_eq!(a.load, [0.5, 1.25, 2.0]);
        assert_eq!(a.uptime_secs, 2000);
        assert_eq!(
            a.net,
            vec![NetCounters {
                name: "eth0".into(),
                rx_bytes: 10_000,
                tx_bytes: 5_000
            }]
        );
        assert_eq!(
            a.disks,
            vec![
                Disk {
                    mount: "/".into(),
                    used_bytes: 450_000 * 1024,
                    total_bytes: 1_000_000 * 1024
                },
                Disk {
                    mount: "/mnt/my data".into(),
                    used_bytes: 1500 * 1024,
                    total_bytes: 2000 * 1024
                },
            ]
        );
        // v1 subtracts the hierarchical total_inactive_file, v2 inactive_file; the
        // buildkit cgroup is not a container.
        assert_eq!(a.containers.len(), 2);
        assert_eq!(
            a.containers[ID1],
            Counters {
                cpu_ns: 1_000_000_000,
                mem_bytes: 10_485_760 - 2_097_152
            }
        );
        assert_eq!(
            a.containers[ID2],
            Counters {
                cpu_ns: 2_000_000_000,
                mem_bytes: 20_971_520 - 4_194_304
            }
        );

        let mut s = Sampler::default();
        let t0 = Instant::now();
        let (m, c) = s.next(a, t0);
        // First sample: the average since boot (1000 busy of 4000 jiffies).
        assert_eq!(m.cpu_percent, 25.0);
        assert_eq!(m.per_core, vec![25.0, 25.0]);
        assert_eq!((m.net_rx_bps, m.net_tx_bps), (0.0, 0.0));
        assert_eq!(c[ID1].cpu_percent, None);
        assert_eq!(m.mem_used_bytes, 1500 * 1024);

        // 2 s later: 1000 more busy and 3000 more idle jiffies = 25 %; eth0 +8000/+4000
        // bytes; ID1 +0.5 s of CPU = 25 % of a core, ID2 +3 s = 150 %.
        let b = parse(&fixture(
            2000,
            6000,
            18_000,
            9_000,
            1_500_000_000,
            5_000_000,
        ));
        let (m, c) = s.next(b, t0 + Duration::from_secs(2));
        assert_eq!(m.cpu_percent, 25.0);
        assert_eq!(m.per_core, vec![25.0, 25.0]);
        assert_eq!(m.net_rx_bps, 4000.0);
        assert_eq!(m.net_tx_bps, 2000.0);
        assert_eq!(c[ID1].cpu_percent, Some(25.0));
        assert_eq!(c[ID2].cpu_percent, Some(150.0));
        assert_eq!(c[ID2].mem_bytes, 20_971_520 - 4_194_304);
        assert_eq!(m.load, [0.5, 1.25, 2.0]);
        assert_eq!(m.disks.len(), 2);
    }

    #[test]
    fn counters_going_backwards_give_zero() {
        let mut s = Sampler::default();
        let t0 = Instant::now();
        s.next(
            parse(&fixture(
                5000,
                5000,
                90_000,
                90_000,
                9_000_000_000,
                9_000_000,
            )),
            t0,
        );
        // Container restarted and the NIC counters were reset, same boot (uptime grows).
        let mut b = parse(&fixture(6000, 6000, 10, 10, 5, 5));
        b.uptime_secs = 1_000_000;
        let (m, c) = s.next(b, t0 + Duration::from_secs(2));
        assert_eq!((m.net_rx_bps, m.net_tx_bps), (0.0, 0.0));
        assert_eq!(c[ID1].cpu_percent, None);
        assert_eq!(c[ID2].cpu_percent, None);
        assert_eq!(m.cpu_percent, 50.0);

        // A reboot (uptime down) starts over: CPU is the new boot's average (half busy),
        // never a delta against the old boot's counters; network rates are zero.
        let (m, _) = s.next(
            parse(&fixture(9000, 9000, 20, 20, 50, 50)),
            t0 + Duration::from_secs(4),
        );
        assert_eq!(m.cpu_percent, 50.0);
        assert_eq!(m.net_rx_bps, 0.0);

        // The same instant twice, or time running backwards, gives no rate.
        let (m, _) = s.next(
            parse(&fixture(9500, 9500, 40, 40, 60, 60)),
            t0 + Duration::from_secs(3),
        );
        assert_eq!(m.net_rx_bps, 0.0);
        assert!(m.cpu_percent >= 0.0 && m.cpu_percent <= 100.0);
    }

    #[test]
    fn crlf_and_missing_sections() {
        let lf = fixture(1000, 3000, 10_000, 5_000, 1_000_000_000, 2_000_000);
        assert_eq!(parse(&lf.replace('\n', "\r\n")), parse(&lf));

        assert_eq!(parse(""), Sample::default());
        let mut s = Sampler::default();
        let (m, c) = s.next(parse(""), Instant::now());
        assert_eq!(m, Metrics::default());
        assert!(c.is_empty());

        // Only meminfo: memory is there, everything else stays empty.
        let only_mem = "==> /proc/meminfo <==\nMemTotal: 100 kB\nMemFree: 40 kB\n";
        let p = parse(only_mem);
        assert_eq!((p.mem_total_bytes, p.mem_used_bytes), (102_400, 61_440));
        assert_eq!(p.cpu, None);
        assert!(p.disks.is_empty() && p.net.is_empty() && !p.complete);

        // A sample without /proc/stat between two with it gives no CPU rate against zero.
        let mut s = Sampler::default();
        let t0 = Instant::now();
        s.next(parse(only_mem), t0);
        let (m, _) = s.next(parse(&lf), t0 + Duration::from_secs(1));
        assert_eq!(m.cpu_percent, 0.0);
    }

    #[test]
    fn huge_and_hostile_numbers() {
        let max = u64::MAX;
        let text = format!(
            "==> /proc/stat <==\ncpu {max} {max} {max} {max} {max} 1 1 1\ncpu0 1 2\n\
             cpu99999999999 1 1 1 1\ncpu1 -1 0 0 0\n\
             ==> /proc/meminfo <==\nMemTotal: {max} kB\nMemAvailable: 99999999999999999999999 kB\n\
             ==> /proc/loadavg <==\nNaN inf -1 1/1 1\n\
             ==> /proc/uptime <==\n1e400 0\n\
             ==> /proc/net/dev <==\neth0: {max} 0 0 0 0 0 0 0 {max}\n\
             ==> /sys/fs/cgroup/docker/{ID1}/cpu.stat <==\nusage_usec {max}\n\
             ==> /sys/fs/cgroup/docker/{ID1}/memory.current <==\n{max}\n\
             ==> df <==\n/dev/sda {max} 1 {max} 1% /\n"
        );
        let a = parse(&text);
        assert_eq!(a.cpu.map(|c| c.total), Some(max));
        assert!(a.per_core.is_empty());
        assert_eq!(a.mem_total_bytes, max);
        assert_eq!(a.load, [0.0, 0.0, 0.0]);
        assert_eq!(a.uptime_secs, 0);
        assert_eq!(a.containers[ID1].cpu_ns, max);
        assert_eq!(a.disks[0].total_bytes, max);
        let mut s = Sampler::default();
        let t0 = Instant::now();
        s.next(a.clone(), t0);
        s.next(parse(""), t0 + Duration::from_secs(1));
        s.next(a, t0 + Duration::from_secs(2));
        let (m, c) = s.next(parse(&text.replace(&max.to_string(), "0")), t0);
        assert!(
            m.cpu_percent.is_finite()
                && c.values().all(|u| u.cpu_percent.is_none_or(f64::is_finite))
        );
    }

    fn xorshift(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    fn feed(sampler: &mut Sampler, text: &str, at: Instant) {
        let (m, c) = sampler.next(parse(text), at);
        assert!(m.cpu_percent.is_finite() && (0.0..=100.0).contains(&m.cpu_percent));
        assert!(m.net_rx_bps.is_finite() && m.net_rx_bps >= 0.0);
        assert!(c.values().all(|u| u.cpu_percent.is_none_or(f64::is_finite)));
    }

    /// Found by the procfs fuzz target: `busy * 100 / total` rounds twice, and with every
    /// jiffy busy and a total this large it came out at 100.00000000000001.
    #[test]
    fn all_busy_is_at_most_one_hundred_percent() {
        let now = CpuTimes {
            total: 7_461_357_922_965_555_065,
            idle: 0,
        };
        assert_eq!(busy_percent(CpuTimes::default(), now), 100.0);
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..10_000 {
            let total = xorshift(&mut state);
            let idle = xorshift(&mut state) % (total / 1000 + 1);
            let p = busy_percent(CpuTimes::default(), CpuTimes { total, idle });
            assert!((0.0..=100.0).contains(&p), "{total} {idle}: {p}");
        }
    }

    #[test]
    fn the_loop_answers_each_line_with_one_sample_and_ends_at_eof() {
        use std::io::Write;
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(&*LOOP)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"skip\n\nskip\ncg\ncgskip\n")
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{out:?}");
        assert!(
            out.stderr.is_empty(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        let end = std::str::from_utf8(END_MARK).unwrap();
        let samples: Vec<&str> = text.split_inclusive(end).collect();
        assert_eq!(samples.len(), 5, "{text}");
        let parsed: Vec<Sample> = samples.iter().map(|s| parse(s)).collect();
        // `cg` and `cgskip` read no /proc file (a metrics source has the host's figures).
        for (i, cg) in samples[3..].iter().enumerate() {
            assert!(!cg.contains("/proc/") && !cg.contains("==> df <=="), "{cg}");
            assert!(parsed[3 + i].complete && parsed[3 + i].cpu.is_none());
        }
        assert!(
            samples[3].contains("==> inactive_file <=="),
            "{}",
            samples[3]
        );
        assert!(
            !samples[4].contains("==> inactive_file <=="),
            "{}",
            samples[4]
        );
        let parsed = &parsed[..3];
        assert!(parsed.iter().all(|p| p.complete && p.cpu.is_some()));
        // `skip` leaves out the disks; an empty line asks for them.
        assert!(parsed[0].disks.is_empty() && parsed[2].disks.is_empty());
        assert!(!parsed[1].disks.is_empty(), "{}", samples[1]);
        assert_eq!(parse(&run(SCRIPT)).disks.len(), parsed[1].disks.len());
    }

    #[test]
    fn no_input_panics() {
        let real = run(SCRIPT);
        let fix = fixture(1000, 3000, 10_000, 5_000, 1_000_000_000, 2_000_000);
        let t0 = Instant::now();
        let mut sampler = Sampler::default();
        for (n, text) in [real.as_str(), fix.as_str()].into_iter().enumerate() {
            // Every byte prefix that is valid UTF-8 (the text is ASCII, so all of them).
            for cut in (0..=text.len()).filter(|&i| text.is_char_boundary(i)) {
                let at = t0 + Duration::from_millis((n * 100_000 + cut) as u64);
                feed(&mut sampler, &text[..cut], at);
            }
        }
        let tokens = [
            "==> /proc/stat <==",
            "==> /proc/meminfo <==",
            "==> /proc/net/dev <==",
            "==> /proc/loadavg <==",
            "==> /proc/uptime <==",
            "==> df <==",
            "==> inactive_file <==",
            "==> end <==",
            "==> <==",
            "==>",
            "<==",
            "cpu",
            "cpu0",
            "cpu4294967296",
            "MemTotal:",
            "kB",
            "eth0:",
            ":",
            "/",
            "%",
            "0",
            "18446744073709551615",
            "18446744073709551616",
            "-5",
            "1.5",
            "nan",
            "\n",
            "\r\n",
            "\r",
            " ",
            "\t",
            "é",
            "\u{0}",
            "/sys/fs/cgroup/docker/",
            ID1,
            "/cpu.stat",
            "/memory.current",
            "docker-",
            ".scope",
            "usage_usec",
            "inactive_file",
        ];
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        for round in 0..3000u64 {
            let mut text = String::new();
            let len = xorshift(&mut state) % 200;
            for _ in 0..len {
                let r = xorshift(&mut state);
                if r.is_multiple_of(4) {
                    text.push(char::from((r >> 8) as u8));
                } else {
                    text.push_str(tokens[(r >> 8) as usize % tokens.len()]);
                }
            }
            feed(
                &mut sampler,
                &text,
                t0 + Duration::from_millis(300_000 + round),
            );
            // Raw bytes too, the way a caller would decode them.
            let bytes: Vec<u8> = (0..len).map(|_| xorshift(&mut state) as u8).collect();
            feed(
                &mut sampler,
                &String::from_utf8_lossy(&bytes),
                t0 + Duration::from_millis(400_000 + round),
            );
        }
    }

    fn proc_value(file: &str, key: &str) -> u64 {
        let text = std::fs::read_to_string(file).unwrap();
        cgroup::stat_value(&text.replace(':', ""), key).unwrap()
    }

    #[test]
    fn the_real_script_here() {
        let load_before = std::fs::read_to_string("/proc/loadavg").unwrap();
        let out = run(SCRIPT);
        let load_after = std::fs::read_to_string("/proc/loadavg").unwrap();
        eprintln!("SCRIPT output here: {} bytes", out.len());
        let a = parse(&out);
        assert!(a.complete);
        let online = run("getconf _NPROCESSORS_ONLN");
        assert_eq!(a.per_core.len(), online.trim().parse::<usize>().unwrap());
        let nproc: usize = run("nproc").trim().parse().unwrap();
        assert!(a.per_core.len() >= nproc);
        assert!(a.cpu.unwrap().total > 0);
        assert_eq!(
            a.mem_total_bytes,
            proc_value("/proc/meminfo", "MemTotal") * 1024
        );
        assert!(a.mem_used_bytes > 0 && a.mem_used_bytes < a.mem_total_bytes);
        let root = a.disks.iter().find(|d| d.mount == "/").unwrap();
        assert!(root.total_bytes > 0 && root.used_bytes <= root.total_bytes);
        assert!(a.disks.iter().all(|d| !d.mount.starts_with("/dev")));
        let loads = |l: &str| -> Vec<f64> {
            l.split_whitespace()
                .take(3)
                .map(|v| v.parse().unwrap())
                .collect()
        };
        assert!(a.load.to_vec() == loads(&load_before) || a.load.to_vec() == loads(&load_after));
        assert!(a.uptime_secs > 0);
        assert!(a.net.iter().all(|n| counts_as_host_traffic(&n.name)));
        assert!(
            a.containers
                .keys()
                .all(|id| container_id(&format!("/{id}/x")).is_some())
        );

        let mut s = Sampler::default();
        let t0 = Instant::now();
        s.next(a, t0);
        std::thread::sleep(Duration::from_millis(200));
        let (m, _) = s.next(parse(&run(SCRIPT)), Instant::now());
        assert_eq!(m.per_core.len(), online.trim().parse::<usize>().unwrap());
        assert!((0.0..=100.0).contains(&m.cpu_percent));
        assert!(m.per_core.iter().all(|p| (0.0..=100.0).contains(p)));
    }

    /// Busybox hosts (Alpine, embedded): its sh, head, grep and df must give the same
    /// sample. Skipped, saying so, where busybox is not installed.
    #[test]
    fn the_real_script_under_busybox() {
        let Some(busybox) = ["/bin/busybox", "/usr/bin/busybox"]
            .into_iter()
            .find(|p| Path::new(p).exists())
        else {
            eprintln!("busybox not installed: skipped");
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        for applet in ["sh", "head", "grep", "df", "echo", "["] {
            std::os::unix::fs::symlink(busybox, dir.path().join(applet)).unwrap();
        }
        let out = Command::new(dir.path().join("sh"))
            .arg("-c")
            .arg(SCRIPT)
            .env_clear()
            .env("PATH", dir.path())
            .output()
            .unwrap();
        assert!(
            out.stderr.is_empty(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let b = parse(&String::from_utf8(out.stdout).unwrap());
        let g = parse(&run(SCRIPT));
        assert!(b.complete);
        assert_eq!(b.per_core.len(), g.per_core.len());
        assert_eq!(b.mem_total_bytes, g.mem_total_bytes);
        // GNU df folds bind mounts of one filesystem into one line and busybox does not,
        // so only the root filesystem is compared.
        let root = |s: &Sample| {
            s.disks
                .iter()
                .find(|d| d.mount == "/")
                .map(|d| d.total_bytes)
        };
        assert_eq!(root(&b), root(&g));
        assert!(root(&b).is_some());
        assert_eq!(
            b.net.iter().map(|n| &n.name).collect::<Vec<_>>(),
            g.net.iter().map(|n| &n.name).collect::<Vec<_>>()
        );
        assert!(b.uptime_secs > 0 && b.cpu.is_some());
    }

    fn write(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    /// Sizes and fields as on a 6.x kernel, so the byte count below is realistic.
    fn v1_memory_stat(inactive: u64) -> String {
        let mut s = String::new();
        for prefix in ["", "total_"] {
            for k in [
                "cache",
                "rss",
                "rss_huge",
                "shmem",
                "mapped_file",
                "dirty",
                "writeback",
                "workingset_refault_anon",
                "workingset_refault_file",
                "swap",
                "swapcached",
                "pgpgin",
                "pgpgout",
                "pgfault",
                "pgmajfault",
                "inactive_anon",
                "active_anon",
                "inactive_file",
                "active_file",
                "unevictable",
            ] {
                let v = if k == "inactive_file" {
                    inactive
                } else {
                    123_456_789
                };
                s.push_str(&format!("{prefix}{k} {v}\n"));
            }
            if prefix.is_empty() {
                s.push_str("hierarchical_memory_limit 9223372036854771712\n");
                s.push_str("hierarchical_memsw_limit 9223372036854771712\n");
            }
        }
        s
    }

    fn v2_memory_stat(inactive: u64) -> String {
        let keys = "anon file kernel kernel_stack pagetables sec_pagetables percpu sock vmalloc \
            shmem zswap zswapped file_mapped file_dirty file_writeback swapcached anon_thp \
            file_thp shmem_thp inactive_anon active_anon inactive_file active_file unevictable \
            slab_reclaimable slab_unreclaimable slab workingset_refault_anon \
            workingset_refault_file workingset_activate_anon workingset_activate_file \
            workingset_restore_anon workingset_restore_file workingset_nodereclaim pgscan \
            pgsteal pgscan_kswapd pgscan_direct pgscan_khugepaged pgsteal_kswapd \
            pgsteal_direct pgsteal_khugepaged pgfault pgmajfault pgrefill pgactivate \
            pgdeactivate pglazyfree pglazyfreed zswpin zswpout zswpwb thp_fault_alloc \
            thp_collapse_alloc thp_swpout thp_swpout_fallback";
        keys.split_whitespace()
            .map(|k| {
                let v = if k == "inactive_file" {
                    inactive
                } else {
                    123_456_789
                };
                format!("{k} {v}\n")
            })
            .collect()
    }

    #[derive(Clone, Copy)]
    enum Layout {
        V1Cgroupfs,
        V1Systemd,
        V2Cgroupfs,
        V2Systemd,
    }

    const LAYOUTS: [Layout; 4] = [
        Layout::V1Cgroupfs,
        Layout::V1Systemd,
        Layout::V2Cgroupfs,
        Layout::V2Systemd,
    ];

    /// A fake /sys/fs/cgroup: `cpu,cpuacct` with the `cpuacct` link systemd makes.
    fn fake_tree(root: &Path, containers: &[(Layout, String)]) {
        std::fs::create_dir_all(root.join("cpu,cpuacct")).unwrap();
        std::os::unix::fs::symlink(root.join("cpu,cpuacct"), root.join("cpuacct")).unwrap();
        for (n, (layout, id)) in containers.iter().enumerate() {
            let n = n as u64 + 1;
            let (cpu_dir, mem_dir) = match layout {
                Layout::V1Cgroupfs => (
                    format!("cpu,cpuacct/docker/{id}"),
                    format!("memory/docker/{id}"),
                ),
                Layout::V1Systemd => (
                    format!("cpu,cpuacct/system.slice/docker-{id}.scope"),
                    format!("memory/system.slice/docker-{id}.scope"),
                ),
                Layout::V2Cgroupfs => (format!("docker/{id}"), format!("docker/{id}")),
                Layout::V2Systemd => (
                    format!("system.slice/docker-{id}.scope"),
                    format!("system.slice/docker-{id}.scope"),
                ),
            };
            let (cpu_dir, mem_dir) = (root.join(cpu_dir), root.join(mem_dir));
            let usage = format!("{}\n", n * 1_000_000);
            if matches!(layout, Layout::V1Cgroupfs | Layout::V1Systemd) {
                write(&cpu_dir.join("cpuacct.usage"), &format!("{}\n", n * 1000));
                write(&mem_dir.join("memory.usage_in_bytes"), &usage);
                write(&mem_dir.join("memory.stat"), &v1_memory_stat(n));
            } else {
                let stat = format!(
                    "usage_usec {n}\nuser_usec 1\nsystem_usec 1\ncore_sched.force_idle_usec 0\n\
                     nr_periods 0\nnr_throttled 0\nthrottled_usec 0\nnr_bursts 0\nburst_usec 0\n"
                );
                write(&cpu_dir.join("cpu.stat"), &stat);
                write(&mem_dir.join("memory.current"), &usage);
                write(&mem_dir.join("memory.stat"), &v2_memory_stat(n));
            }
        }
    }

    fn id(n: usize) -> String {
        format!("{n:064x}")
    }

    /// Runs SCRIPT against a fake cgroup root; returns the sample and the output's size
    /// as it would be with the real, slightly longer, `/sys/fs/cgroup` paths.
    fn run_on(root: &Path) -> (Sample, usize) {
        let root = root.to_str().unwrap();
        let script = SCRIPT.replacen("c=/sys/fs/cgroup;", &format!("c={root};"), 1);
        assert_ne!(script, SCRIPT);
        let out = run(&script);
        let size = out.len() + out.matches(root).count() * "/sys/fs/cgroup".len()
            - out.matches(root).count() * root.len();
        (parse(&out.replace(root, "/sys/fs/cgroup")), size)
    }

    #[test]
    fn every_cgroup_layout_is_read_once() {
        let dir = tempfile::tempdir().unwrap();
        let list: Vec<(Layout, String)> = (0..20).map(|n| (LAYOUTS[n % 4], id(n + 1))).collect();
        fake_tree(dir.path(), &list);
        // Not a container: must be ignored.
        write(
            &dir.path().join("docker/buildkit/cpu.stat"),
            "usage_usec 9\n",
        );
        let (sample, _) = run_on(dir.path());
        assert_eq!(sample.containers.len(), 20);
        // This machine's worker finds the same containers by listing the directories.
        let mut want: Vec<String> = list.iter().map(|(_, id)| id.clone()).collect();
        want.sort();
        assert_eq!(cgroup::local_ids(dir.path()), want);
        for (n, (_, id)) in list.iter().enumerate() {
            let n = n as u64 + 1;
            // v1 writes n*1000 ns, v2 n µs: both n*1000 ns.
            let cpu_ns = n * 1000;
            assert_eq!(
                sample.containers[id],
                Counters {
                    cpu_ns,
                    mem_bytes: n * 1_000_000 - n
                },
                "container {n}"
            );
        }
    }

    #[test]
    fn a_skip_sample_reads_no_page_cache_and_takes_the_last_full_ones() {
        let dir = tempfile::tempdir().unwrap();
        let list: Vec<(Layout, String)> = [Layout::V1Cgroupfs, Layout::V2Systemd]
            .into_iter()
            .enumerate()
            .map(|(n, l)| (l, id(n + 1)))
            .collect();
        fake_tree(dir.path(), &list);
        let mut sampler = Loop::start(dir.path(), true, None);
        let (whole, skip_text) = (sampler.ask(""), sampler.ask("skip"));
        let (full, mut skip) = (parse(&whole), parse(&skip_text));
        assert_eq!(full.containers.len(), 2);
        assert_eq!(full.page_cache.as_ref().map(HashMap::len), Some(2));
        assert!(skip.page_cache.is_none() && skip.disks.is_empty());
        assert!(!skip_text.contains("inactive_file"));
        // Without the page cache, memory in use reads as the whole usage...
        for (n, (_, id)) in list.iter().enumerate() {
            assert_eq!(skip.containers[id].mem_bytes, (n as u64 + 1) * 1_000_000);
        }
        // ...until the last full sample's cache is taken off, as a full sample does.
        skip.fill_from(&full);
        assert_eq!(skip.containers, full.containers);
        assert_eq!(skip.disks, full.disks);
        // A full sample keeps its own.
        let mut again = full.clone();
        again.fill_from(&Sample::default());
        assert_eq!(again, full);
    }

    /// The sampler loop on a fake cgroup root, asked one line at a time.
    struct Loop {
        child: std::process::Child,
        out: std::io::BufReader<std::process::ChildStdout>,
        root: String,
    }

    impl Loop {
        /// With `userland`, a directory of busybox applets that is the whole PATH.
        fn start(root: &Path, awk: bool, userland: Option<&Path>) -> Loop {
            let root = root.to_str().unwrap().to_string();
            let mut script = LOOP.replacen("c=/sys/fs/cgroup;", &format!("c={root};"), 1);
            if !awk {
                script = script.replacen("command -v awk", "command -v no-such-awk", 1);
            }
            let mut command = match userland {
                Some(dir) => {
                    let mut c = Command::new(dir.join("sh"));
                    c.env_clear().env("PATH", dir);
                    c
                }
                None => Command::new("sh"),
            };
            let mut child = command
                .arg("-c")
                .arg(&script)
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            let out = std::io::BufReader::new(child.stdout.take().unwrap());
            Loop { child, out, root }
        }

        /// One sample's text, with the real cgroup root's paths.
        fn ask(&mut self, line: &str) -> String {
            use std::io::{BufRead, Write};
            let stdin = self.child.stdin.as_mut().unwrap();
            stdin.write_all(format!("{line}\n").as_bytes()).unwrap();
            stdin.flush().unwrap();
            let mut text = String::new();
            while !text.ends_with(std::str::from_utf8(END_MARK).unwrap()) {
                let n = self.out.read_line(&mut text).unwrap();
                assert!(n > 0, "the sampler ended after {text:?}");
            }
            text.replace(&self.root, "/sys/fs/cgroup")
        }

        /// A `p` line for the files `text` read, on the fake root.
        fn files(&self, text: &str) -> String {
            let files = paths(text).join(" ");
            format!("p {}", files.replace("/sys/fs/cgroup", &self.root))
        }
    }

    impl Drop for Loop {
        fn drop(&mut self) {
            drop(self.child.stdin.take());
            let _ = self.child.wait();
        }
    }

    #[test]
    fn the_awk_reader_reads_again_the_files_the_shell_found_and_drops_the_gone() {
        let list: Vec<(Layout, String)> = (0..8).map(|n| (LAYOUTS[n % 4], id(n + 1))).collect();
        // Alpine's userland as well, where busybox is there.
        let applets = tempfile::tempdir().unwrap();
        let busybox = ["/bin/busybox", "/usr/bin/busybox"]
            .into_iter()
            .find(|p| Path::new(p).exists());
        if let Some(busybox) = busybox {
            for applet in ["sh", "head", "grep", "df", "echo", "[", "awk", "timeout"] {
                std::os::unix::fs::symlink(busybox, applets.path().join(applet)).unwrap();
            }
        }
        let userlands = [None]
            .into_iter()
            .chain(busybox.map(|_| Some(applets.path())));
        for (awk, userland) in userlands.flat_map(|u| [(true, u), (false, u)]) {
            let dir = tempfile::tempdir().unwrap();
            fake_tree(dir.path(), &list);
            let mut sampler = Loop::start(dir.path(), awk, userland);
            let whole = sampler.ask("");
            let skip = sampler.ask("skip");
            let files = sampler.files(&skip);
            assert!(
                files.contains("/proc/stat") && files.contains(&id(8)),
                "{files}"
            );
            let handed = sampler.ask(&files);
            let again = sampler.ask("r");
            let (skip, handed, again) = (parse(&skip), parse(&handed), parse(&again));
            for s in [&skip, &handed, &again] {
                assert!(s.complete && s.cpu.is_some() && s.mem_total_bytes > 0);
                assert!(s.load.iter().any(|l| *l > 0.0) || s.uptime_secs > 0);
                assert_eq!(s.containers, skip.containers, "awk {awk}");
                assert!(s.page_cache.is_none() && s.disks.is_empty());
            }
            assert_eq!(skip.containers.len(), 8);
            assert!(parse(&whole).page_cache.is_some());
            // What the awk reads is read afresh each time...
            let v2 = dir.path().join(format!("docker/{}/cpu.stat", id(3)));
            write(&v2, "usage_usec 7000\n");
            let changed = parse(&sampler.ask("r"));
            assert_eq!(changed.containers[&id(3)].cpu_ns, 7_000_000, "awk {awk}");
            // ...and a container that went away is left out, not read as zero.
            std::fs::remove_dir_all(dir.path().join(format!("cpu,cpuacct/docker/{}", id(1))))
                .unwrap();
            let gone = parse(&sampler.ask("r"));
            assert!(!gone.containers.contains_key(&id(1)), "awk {awk}");
            assert_eq!(gone.containers.len(), 7, "awk {awk}");
        }
    }

    #[test]
    fn a_p_line_names_only_plain_absolute_files_and_none_without_proc_stat() {
        let text = "==> /proc/stat <==\ncpu 1 2 3 4\n==> /sys/fs/cgroup/docker/ab/cpu.stat <==\n\
                    ==> /proc/stat <==\n==> inactive_file <==\n==> df <==\n==> /tmp/a b <==\n\
                    ==> /x/../etc/shadow <==\n==> relative <==\n==> /a$(reboot) <==\n==> end <==\n";
        assert_eq!(
            paths(text),
            ["/proc/stat", "/sys/fs/cgroup/docker/ab/cpu.stat"]
        );
        assert!(paths("==> /sys/fs/cgroup/docker/ab/cpu.stat <==\n").is_empty());
        let many: String = (0..5000)
            .map(|n| format!("==> /sys/f{n} <==\n"))
            .chain(["==> /proc/stat <==\n".to_string()])
            .collect();
        assert!(
            paths(&many).is_empty(),
            "past the bound /proc/stat is not reached"
        );
        let long = format!("==> /proc/stat <==\n==> /{} <==\n", "a".repeat(300));
        assert_eq!(paths(&long), ["/proc/stat"]);
    }

    #[test]
    fn bytes_per_tick_with_twenty_containers() {
        let empty = tempfile::tempdir().unwrap();
        let (_, base) = run_on(empty.path());
        for (name, layout) in [
            ("v1 cgroupfs", Layout::V1Cgroupfs),
            ("v2 systemd", Layout::V2Systemd),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let list: Vec<(Layout, String)> = (0..20).map(|n| (layout, id(n + 1))).collect();
            fake_tree(dir.path(), &list);
            let (sample, size) = run_on(dir.path());
            assert_eq!(sample.containers.len(), 20);
            let per = (size - base) / 20;
            eprintln!(
                "{name}: {size} bytes per tick with 20 containers ({base} host + {per} per container)"
            );
            assert!(per < 700, "{per} bytes per container");
        }
    }
}
