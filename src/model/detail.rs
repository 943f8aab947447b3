//! The container view's tabs beyond the log: what Docker says of one container (inspect
//! and top), read while the view is open, and the graphs of its usage.
//!
//! Everything here came from a host and was sanitised and bounded where it was read
//! ([`crate::docker::detail`]); the model only keeps it, masks secrets and turns I/O
//! counters into rates.

use std::collections::HashMap;

use jiff::Timestamp;

use super::series::Series;

/// At most this many environment variables, labels, mounts, ports and processes are kept.
pub const MAX_ENTRIES: usize = 200;
/// At most this many characters of one value (an env value, a label, a command line).
pub const MAX_VALUE_CHARS: usize = 512;
/// The health check's last runs kept, newest last.
pub const HEALTH_RUNS: usize = 5;
/// Lines of one health check output kept.
pub const HEALTH_LINES: usize = 4;
/// What a masked value shows.
pub const MASK: &str = "••••••";
/// A detail asked for and not answered in this long is asked for again.
const ANSWER_WAIT_SECS: i64 = 15;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    Logs,
    Graphs,
    Processes,
    Env,
    Mounts,
    Labels,
    State,
}

impl Tab {
    pub const ALL: [Tab; 7] = [
        Tab::Logs,
        Tab::Graphs,
        Tab::Processes,
        Tab::Env,
        Tab::Mounts,
        Tab::Labels,
        Tab::State,
    ];

    /// The tab's name on a wide screen, and on a narrow one.
    pub fn names(self) -> (&'static str, &'static str) {
        match self {
            Tab::Logs => ("Logs", "Logs"),
            Tab::Graphs => ("Graphs", "Graphs"),
            Tab::Processes => ("Processes", "Procs"),
            Tab::Env => ("Env", "Env"),
            Tab::Mounts => ("Mounts·Ports", "Mounts"),
            Tab::Labels => ("Labels", "Labels"),
            Tab::State => ("Health·State", "State"),
        }
    }

    pub fn index(self) -> usize {
        Tab::ALL.iter().position(|&t| t == self).unwrap_or(0)
    }

    /// The tab `step` places away, wrapping around.
    pub fn step(self, step: i64) -> Tab {
        let n = Tab::ALL.len() as i64;
        Tab::ALL[(self.index() as i64 + step).rem_euclid(n) as usize]
    }

    /// The tab a digit key names (`1` is the log).
    pub fn from_digit(c: char) -> Option<Tab> {
        let d = c.to_digit(10)? as usize;
        Tab::ALL.get(d.checked_sub(1)?).copied()
    }
}

/// Whether an environment variable's value is masked: its key names a secret.
pub fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_uppercase();
    ["PASS", "SECRET", "TOKEN", "KEY"]
        .iter()
        .any(|w| k.contains(w))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvVar {
    pub key: String,
    pub value: String,
    /// Shown as [`MASK`] until the operator asks.
    pub secret: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountInfo {
    /// `bind`, `volume`, `tmpfs`…
    pub kind: String,
    /// The host path, or the volume's name.
    pub source: String,
    pub destination: String,
    pub read_only: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthRun {
    pub start: Option<Timestamp>,
    pub exit_code: Option<i64>,
    /// The first [`HEALTH_LINES`] lines of its output.
    pub output: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthInfo {
    pub status: String,
    pub failing_streak: Option<i64>,
    /// The last [`HEALTH_RUNS`] runs, oldest first.
    pub runs: Vec<HealthRun>,
}

/// `docker top`: its column titles and rows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Processes {
    pub titles: Vec<String>,
    pub rows: Vec<Vec<String>>,
    /// How many rows the host sent (more than `rows` holds when it was cut).
    pub total: usize,
    /// Why there are none: not running, or Docker refused.
    pub error: Option<String>,
}

/// One container as `docker inspect` and `docker top` describe it, sanitised and bounded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerDetail {
    /// Docker's word: `running`, `exited`…
    pub status: String,
    pub running: bool,
    pub oom_killed: bool,
    pub exit_code: Option<i64>,
    /// Docker's error for a container that failed to start.
    pub error: Option<String>,
    pub started_at: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
    pub restart_policy: String,
    pub restart_count: Option<i64>,
    /// `None`: no limit (the host's memory).
    pub mem_limit: Option<u64>,
    /// The command it runs: entrypoint and arguments.
    pub command: String,
    pub env: Vec<EnvVar>,
    pub env_total: usize,
    pub mounts: Vec<MountInfo>,
    pub ports: Vec<String>,
    pub labels: Vec<(String, String)>,
    pub labels_total: usize,
    pub health: Option<HealthInfo>,
    pub processes: Processes,
}

/// A container's network and block I/O counters (bytes since it started), from Docker's
/// stats, and when they were read (milliseconds since the epoch).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IoSample {
    pub at_ms: i64,
    pub net_rx: u64,
    pub net_tx: u64,
    pub blk_read: u64,
    pub blk_write: u64,
}

/// A container's CPU and memory over the graphs' window, from every sample of its host.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Usage {
    /// Percent of one core.
    pub cpu: Series,
    pub mem: Series,
}

/// The usage history of each container of a host; a container gone from the host's list
/// is dropped with its history.
pub fn record_usage(
    usage: &mut HashMap<String, Usage>,
    at: Timestamp,
    containers: &[super::Container],
) {
    let t = at.as_second();
    for c in containers {
        if !c.is_running() {
            continue;
        }
        if c.cpu_percent.is_none() && c.mem_bytes.is_none() {
            continue;
        }
        let u = usage.entry(c.id.clone()).or_default();
        if let Some(cpu) = c.cpu_percent {
            u.cpu.push(t, cpu);
        }
        if let Some(mem) = c.mem_bytes {
            u.mem.push(t, mem as f64);
        }
    }
    usage.retain(|id, _| containers.iter().any(|c| &c.id == id));
}

/// The container view's state beyond the log: the open tab, the last detail, the I/O
/// graphs, and whether secrets are shown. Dropped when the view closes, so secrets are
/// masked again when it opens next.
#[derive(Debug, Clone)]
pub struct DetailPane {
    pub host: usize,
    pub id: String,
    pub tab: Tab,
    /// Lines the open tab (not the log) is scrolled down.
    pub scroll: usize,
    /// Secret env values shown.
    pub reveal: bool,
    pub detail: Option<ContainerDetail>,
    /// When `detail` was read.
    pub detail_at: Option<Timestamp>,
    /// Why the last ask failed, when it did.
    pub error: Option<String>,
    /// When the detail was last asked for, and whether the answer is still out.
    pub asked_at: Option<Timestamp>,
    pub pending: bool,
    last_io: Option<IoSample>,
    pub net_rx: Series,
    pub net_tx: Series,
    pub blk_read: Series,
    pub blk_write: Series,
}

impl DetailPane {
    pub fn new(host: usize, id: String) -> Self {
        DetailPane {
            host,
            id,
            tab: Tab::Logs,
            scroll: 0,
            reveal: false,
            detail: None,
            detail_at: None,
            error: None,
            asked_at: None,
            pending: false,
            last_io: None,
            net_rx: Series::default(),
            net_tx: Series::default(),
            blk_read: Series::default(),
            blk_write: Series::default(),
        }
    }

    /// How many rows the open tab has (the log's are the log pane's): how far it scrolls.
    pub fn rows(&self) -> usize {
        let Some(d) = &self.detail else {
            return 0;
        };
        match self.tab {
            Tab::Logs | Tab::Graphs => 0,
            Tab::Processes => d.processes.rows.len(),
            Tab::Env => d.env.len(),
            Tab::Mounts => d.mounts.len() + d.ports.len() + 3,
            Tab::Labels => d.labels.len(),
            Tab::State => {
                let runs = d.health.as_ref().map_or(0, |h| {
                    h.runs.iter().map(|r| 1 + r.output.len()).sum::<usize>()
                });
                10 + runs
            }
        }
    }

    /// Whether to ask again now: every `every` seconds, at once when never asked, and
    /// again when an answer has not come for a while (a host lost meanwhile).
    pub fn due(&self, now: Timestamp, every: i64) -> bool {
        match self.asked_at {
            None => true,
            Some(at) => {
                let age = now.as_second() - at.as_second();
                if self.pending {
                    age >= ANSWER_WAIT_SECS
                } else {
                    age >= every
                }
            }
        }
    }

    /// Takes an answer: the detail, or why there is none, and I/O counters whose
    /// difference from the last ones makes a point of each I/O graph.
    pub fn answer(
        &mut self,
        at: Timestamp,
        detail: Result<ContainerDetail, String>,
        io: Option<IoSample>,
    ) {
        self.pending = false;
        match detail {
            Ok(d) => {
                self.detail = Some(d);
                self.detail_at = Some(at);
                self.error = None;
            }
            Err(e) => self.error = Some(e),
        }
        let Some(io) = io else {
            return;
        };
        if let Some(last) = self.last_io {
            let dt = (io.at_ms - last.at_ms) as f64 / 1000.0;
            // Counters that went back belong to a restarted container: start afresh.
            let back = io.net_rx < last.net_rx
                || io.net_tx < last.net_tx
                || io.blk_read < last.blk_read
                || io.blk_write < last.blk_write;
            if dt > 0.0 && !back {
                let t = io.at_ms.div_euclid(1000);
                let rate = |now: u64, then: u64| (now - then) as f64 / dt;
                self.net_rx.push(t, rate(io.net_rx, last.net_rx));
                self.net_tx.push(t, rate(io.net_tx, last.net_tx));
                self.blk_read.push(t, rate(io.blk_read, last.blk_read));
                self.blk_write.push(t, rate(io.blk_write, last.blk_write));
            }
            if dt <= 0.0 && !back {
                return;
            }
        }
        self.last_io = Some(io);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_keys() {
        for k in [
            "POSTGRES_PASSWORD",
            "api_key",
            "GITHUB_TOKEN",
            "Secret",
            "PASSPHRASE",
        ] {
            assert!(is_secret_key(k), "{k}");
        }
        for k in ["PATH", "HOME", "LANG", "DATABASE_URL"] {
            assert!(!is_secret_key(k), "{k}");
        }
    }

    #[test]
    fn tabs_wrap_and_digits_name_them() {
        assert_eq!(Tab::Logs.step(-1), Tab::State);
        assert_eq!(Tab::State.step(1), Tab::Logs);
        assert_eq!(Tab::from_digit('1'), Some(Tab::Logs));
        assert_eq!(Tab::from_digit('7'), Some(Tab::State));
        assert_eq!(Tab::from_digit('8'), None);
        assert_eq!(Tab::from_digit('0'), None);
    }

    #[test]
    fn io_rates_from_successive_counters() {
        let mut p = DetailPane::new(0, "c".into());
        let at = Timestamp::from_second(1000).unwrap();
        let io = |ms: i64, n: u64| IoSample {
            at_ms: ms,
            net_rx: n,
            net_tx: 2 * n,
            blk_read: 3 * n,
            blk_write: 0,
        };
        p.answer(at, Err("x".into()), Some(io(1_000_000, 1000)));
        assert!(p.net_rx.is_empty());
        p.answer(at, Err("x".into()), Some(io(1_002_000, 3000)));
        assert_eq!(p.net_rx.last(), Some(1000.0));
        assert_eq!(p.net_tx.last(), Some(2000.0));
        assert_eq!(p.blk_read.last(), Some(3000.0));
        // a restart: counters start again, no negative rate
        p.answer(at, Err("x".into()), Some(io(1_004_000, 10)));
        assert_eq!(p.net_rx.len(), 1);
        p.answer(at, Err("x".into()), Some(io(1_005_000, 510)));
        assert_eq!(p.net_rx.last(), Some(500.0));
    }
}
