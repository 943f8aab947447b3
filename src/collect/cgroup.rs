//! Container CPU and memory straight from the kernel's cgroup counters, the cheap path:
//! Docker's stats API makes dockerd, containerd and every shim work for each sample, while
//! these files are plain counters. The parsers take file text, so the same code serves a
//! local read and, later, one `cat` over an SSH exec.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counters {
    /// Total CPU time used, in nanoseconds.
    pub cpu_ns: u64,
    /// Memory in use without the reclaimable page cache, as `docker stats` counts it.
    pub mem_bytes: u64,
}

/// `cpuacct.usage` (v1): one integer of nanoseconds.
pub fn parse_v1_cpu(text: &str) -> Option<u64> {
    text.trim().parse().ok()
}

/// `cpu.stat` (v2): `usage_usec N` among other lines.
pub fn parse_v2_cpu(text: &str) -> Option<u64> {
    stat_value(text, "usage_usec").map(|us| us.saturating_mul(1000))
}

/// A `key value` line from `memory.stat` or `cpu.stat`.
pub fn stat_value(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let mut it = l.split_whitespace();
        (it.next() == Some(key)).then(|| it.next()?.parse().ok())?
    })
}

/// Usage minus inactive file cache; v1 names it `total_inactive_file`, v2 `inactive_file`.
pub fn memory_in_use(usage: &str, stat: &str) -> Option<u64> {
    let usage: u64 = usage.trim().parse().ok()?;
    Some(usage.saturating_sub(page_cache(stat)))
}

/// The reclaimable page cache in a `memory.stat`, 0 when it does not say.
pub fn page_cache(stat: &str) -> u64 {
    stat_value(stat, "total_inactive_file")
        .or_else(|| stat_value(stat, "inactive_file"))
        .unwrap_or(0)
}

/// Where a container's cgroup lives on this machine, v2 systemd, v2 cgroupfs or v1.
fn local_dirs(root: &Path, id: &str) -> Option<(PathBuf, PathBuf, bool)> {
    let v2 = [
        root.join(format!("system.slice/docker-{id}.scope")),
        root.join(format!("docker/{id}")),
    ];
    if root.join("cgroup.controllers").exists() {
        return v2
            .into_iter()
            .find(|p| p.is_dir())
            .map(|p| (p.clone(), p, true));
    }
    let cpu = [
        root.join(format!("cpuacct/docker/{id}")),
        root.join(format!("cpu,cpuacct/docker/{id}")),
        root.join(format!("cpuacct/system.slice/docker-{id}.scope")),
    ]
    .into_iter()
    .find(|p| p.is_dir())?;
    let mem = [
        root.join(format!("memory/docker/{id}")),
        root.join(format!("memory/system.slice/docker-{id}.scope")),
    ]
    .into_iter()
    .find(|p| p.is_dir())?;
    Some((cpu, mem, false))
}

/// The container id in a cgroup directory's name: `<id>` (cgroupfs driver) or
/// `docker-<id>.scope` (systemd driver). Anything else, such as buildkit's cgroup, is not
/// a container.
pub fn docker_id(dir: &str) -> Option<&str> {
    let id = dir
        .strip_prefix("docker-")
        .and_then(|d| d.strip_suffix(".scope"))
        .unwrap_or(dir);
    let hex = |b: u8| b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
    (id.len() == 64 && id.bytes().all(hex)).then_some(id)
}

/// Every Docker container with a cgroup on this machine, by full id: the directories the
/// sampler script's globs read on a remote host (`docker/<id>`, `docker-<id>.scope`), in
/// each layout.
pub fn local_ids(root: &Path) -> Vec<String> {
    let parents = [
        "docker",
        "system.slice",
        "cpuacct/docker",
        "cpu,cpuacct/docker",
        "cpuacct/system.slice",
    ];
    let mut ids: Vec<String> = parents
        .iter()
        .filter_map(|p| std::fs::read_dir(root.join(p)).ok())
        .flatten()
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            docker_id(&name).map(str::to_string)
        })
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

/// Reads one container's counters from the local cgroup filesystem.
pub fn read_local(root: &Path, id: &str) -> Option<Counters> {
    let (cpu_dir, mem_dir, v2) = local_dirs(root, id)?;
    let read = |p: PathBuf| std::fs::read_to_string(p).ok();
    if v2 {
        let cpu_ns = parse_v2_cpu(&read(cpu_dir.join("cpu.stat"))?)?;
        let mem = memory_in_use(
            &read(mem_dir.join("memory.current"))?,
            &read(mem_dir.join("memory.stat")).unwrap_or_default(),
        )?;
        Some(Counters {
            cpu_ns,
            mem_bytes: mem,
        })
    } else {
        let cpu_ns = parse_v1_cpu(&read(cpu_dir.join("cpuacct.usage"))?)?;
        let mem = memory_in_use(
            &read(mem_dir.join("memory.usage_in_bytes"))?,
            &read(mem_dir.join("memory.stat")).unwrap_or_default(),
        )?;
        Some(Counters {
            cpu_ns,
            mem_bytes: mem,
        })
    }
}

/// Turns successive CPU counters into percent of one core, per container.
#[derive(Debug, Default)]
pub struct CpuRates {
    last: HashMap<String, (u64, Instant)>,
}

impl CpuRates {
    pub fn rate(&mut self, id: &str, cpu_ns: u64, at: Instant) -> Option<f64> {
        let prev = self.last.insert(id.to_string(), (cpu_ns, at));
        let (prev_ns, prev_at) = prev?;
        let wall = at.checked_duration_since(prev_at)?.as_nanos() as f64;
        if wall <= 0.0 || cpu_ns < prev_ns {
            return None;
        }
        Some((cpu_ns - prev_ns) as f64 * 100.0 / wall)
    }

    /// Forgets containers that are gone, so the map stays bounded.
    pub fn retain(&mut self, ids: &[&str]) {
        self.last.retain(|k, _| ids.contains(&k.as_str()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn parses_v1_and_v2() {
        assert_eq!(parse_v1_cpu("123456789\n"), Some(123_456_789));
        assert_eq!(
            parse_v2_cpu("usage_usec 1500\nuser_usec 1000\n"),
            Some(1_500_000)
        );
        assert_eq!(
            memory_in_use("1000\n", "cache 10\ntotal_inactive_file 300\n"),
            Some(700)
        );
        assert_eq!(
            memory_in_use("1000\n", "anon 5\ninactive_file 100\n"),
            Some(900)
        );
        assert_eq!(memory_in_use("garbage", ""), None);
        assert_eq!(parse_v2_cpu("nonsense"), None);
    }

    #[test]
    fn cpu_rate_from_deltas() {
        let mut r = CpuRates::default();
        let t0 = Instant::now();
        assert_eq!(r.rate("a", 0, t0), None);
        let p = r
            .rate("a", 500_000_000, t0 + Duration::from_secs(1))
            .unwrap();
        assert!((p - 50.0).abs() < 0.01);
        // A counter that went backwards (container restarted) gives no rate, not garbage.
        assert_eq!(r.rate("a", 10, t0 + Duration::from_secs(2)), None);
        r.retain(&[]);
        assert_eq!(r.rate("a", 20, t0 + Duration::from_secs(3)), None);
    }

    #[test]
    fn reads_a_v1_tree() {
        let dir = tempfile::tempdir().unwrap();
        let id = "abc";
        let cpu = dir.path().join("cpuacct/docker/abc");
        let mem = dir.path().join("memory/docker/abc");
        std::fs::create_dir_all(&cpu).unwrap();
        std::fs::create_dir_all(&mem).unwrap();
        std::fs::write(cpu.join("cpuacct.usage"), "42\n").unwrap();
        std::fs::write(mem.join("memory.usage_in_bytes"), "2048\n").unwrap();
        std::fs::write(mem.join("memory.stat"), "total_inactive_file 48\n").unwrap();
        assert_eq!(
            read_local(dir.path(), id),
            Some(Counters {
                cpu_ns: 42,
                mem_bytes: 2000
            })
        );
        assert_eq!(read_local(dir.path(), "missing"), None);
    }
}
