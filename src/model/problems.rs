//! What needs attention across the fleet, worst first: one pure function from the model to
//! a list, shared by `opsdeck check`, notifications and the console's problems panel, so
//! the three never disagree.

use serde::Serialize;

use super::backup::Verdict;
use super::check::CheckVerdict;
use super::{DockerState, Health, HostConn, Model, RunState};

/// When a reading becomes a problem; the inventory's `thresholds` resolved per host.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    pub disk_warn: f64,
    pub disk_crit: f64,
    pub mem_warn: f64,
    pub mem_crit: f64,
    pub restarts: i64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            disk_warn: 85.0,
            disk_crit: 95.0,
            mem_warn: 90.0,
            mem_crit: 97.0,
            restarts: 3,
        }
    }
}

/// Ordered as monitoring plugins rank them; the exit status of `opsdeck check` is the
/// worst one's code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Critical,
}

impl Severity {
    pub fn label(self) -> &'static str {
        match self {
            Severity::Warning => "WARNING",
            Severity::Critical => "CRITICAL",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Problem {
    pub severity: Severity,
    #[serde(skip)]
    pub host: usize,
    #[serde(rename = "host")]
    pub host_name: String,
    pub what: String,
    /// Stable across runs while the problem stays the same (no ages, percentages or retry
    /// counts), so notifications fire on a change of the set, not of its wording.
    #[serde(skip)]
    pub key: String,
}

/// The problems of the given hosts, worst first, then by host and text so the order (and
/// a notification's "has anything changed") is stable.
pub fn problems(model: &Model, hosts: &[usize]) -> Vec<Problem> {
    let now = model.now.as_second();
    let mut out = Vec::new();
    for &i in hosts {
        let Some(h) = model.hosts.get(i) else {
            continue;
        };
        let mut add = |severity: Severity, key: String, what: String| {
            out.push(Problem {
                severity,
                host: i,
                host_name: h.name.clone(),
                key: format!("{} {}: {key}", severity.label(), h.name),
                what,
            })
        };
        if let HostConn::Down { reason, .. } = &h.conn {
            // The worker's retry schedule is not part of the problem.
            let reason = reason.split(" (retry in ").next().unwrap_or(reason);
            add(
                Severity::Critical,
                "down".into(),
                format!("host unreachable: {reason}"),
            );
            // Everything else about it would be stale.
            continue;
        }
        let l = h.limits;
        if let Some(m) = &h.metrics {
            for d in &m.disks {
                let p = super::host::percent(d.used_bytes, d.total_bytes);
                let sev = level(p, l.disk_warn, l.disk_crit);
                if let Some(sev) = sev {
                    add(
                        sev,
                        format!("disk {}", d.mount),
                        format!("disk {} {p:.0}% full", d.mount),
                    );
                }
            }
            let p = m.mem_percent();
            if let Some(sev) = level(p, l.mem_warn, l.mem_crit) {
                add(sev, "memory".into(), format!("memory {p:.0}% used"));
            }
        }
        if let DockerState::Unavailable { reason } = &h.docker {
            add(
                Severity::Warning,
                "docker".into(),
                format!("docker unavailable: {reason}"),
            );
        }
        for c in &h.containers {
            let name = &c.name;
            match &c.state {
                RunState::Running | RunState::Paused => {}
                RunState::Restarting => {
                    add(
                        Severity::Critical,
                        format!("restarting {name}"),
                        format!("container {name} restarting"),
                    );
                }
                other => {
                    add(
                        Severity::Critical,
                        format!("stopped {name}"),
                        format!("container {name} not running ({})", other.label()),
                    );
                }
            }
            // A stopped container keeps its last health verdict; "not running" says it all.
            if c.health == Some(Health::Unhealthy) && c.is_running() {
                add(
                    Severity::Critical,
                    format!("unhealthy {name}"),
                    format!("container {name} unhealthy"),
                );
            }
            if let Some(n) = c.restart_count
                && n >= l.restarts
                && c.state != RunState::Restarting
            {
                add(
                    Severity::Warning,
                    format!("restarts {name}"),
                    format!("container {name} restarted {n} times (restart loop?)"),
                );
            }
        }
        for b in &h.backups {
            let set = format!("{}/{}", b.stack, b.name);
            let age = b
                .newest_age(now)
                .map(|a| format!(", newest {}h old", a / 3600))
                .unwrap_or_default();
            // Why, when opsdeck knows more than the verdict says: "directory ~/backups
            // does not exist", "a file is dated in the future", ... (already fit for a
            // terminal).
            let why = b
                .error
                .as_deref()
                .map(|e| format!(": {e}"))
                .unwrap_or_default();
            let key = format!("backup {set} {:?}", b.verdict);
            match b.verdict {
                Verdict::Fresh => {}
                Verdict::Missing => add(
                    Severity::Critical,
                    key,
                    format!("backup {set} missing{why}"),
                ),
                Verdict::Stale => add(
                    Severity::Critical,
                    key,
                    format!("backup {set} stale{age}{why}"),
                ),
                Verdict::Suspicious => {
                    add(
                        Severity::Warning,
                        key,
                        format!("backup {set} suspicious{age}{why}"),
                    );
                }
                Verdict::Unknown => add(
                    Severity::Warning,
                    key,
                    format!(
                        "backup {set} could not be listed: {}",
                        b.error.as_deref().unwrap_or("unknown")
                    ),
                ),
            }
        }
        for c in &h.checks {
            match c.verdict() {
                CheckVerdict::Ok => {}
                CheckVerdict::Failed => add(
                    Severity::Critical,
                    format!("check {} failed", c.name),
                    format!(
                        "check {} failed: {}",
                        c.name,
                        c.error.as_deref().unwrap_or("failed")
                    ),
                ),
                CheckVerdict::TlsSoon => {
                    let (days, issuer) = c
                        .tls
                        .as_ref()
                        .map_or((0, ""), |t| (t.days_left, t.issuer.as_str()));
                    add(
                        Severity::Warning,
                        format!("check {} certificate", c.name),
                        format!(
                            "check {}: certificate expires in {days} days (issuer {issuer})",
                            c.name
                        ),
                    );
                }
            }
        }
    }
    out.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.host_name.cmp(&b.host_name))
            .then_with(|| a.what.cmp(&b.what))
    });
    out
}

fn level(value: f64, warn: f64, crit: f64) -> Option<Severity> {
    if value >= crit {
        Some(Severity::Critical)
    } else if value >= warn {
        Some(Severity::Warning)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::HostState;
    use crate::model::backup::{BackupStatus, FileEntry};

    fn set(name: &str, verdict: Verdict, error: Option<&str>, age: Option<i64>) -> BackupStatus {
        BackupStatus {
            host: 0,
            stack: "s".into(),
            name: name.into(),
            dir: "~/backups".into(),
            newest: age.map(|a| FileEntry {
                name: "db-1.dump".into(),
                mtime: 1_000_000 - a,
                size: 1,
            }),
            count: usize::from(age.is_some()),
            total_bytes: 0,
            max_age_secs: 26 * 3600,
            verdict,
            error: error.map(str::to_string),
            recipe: None,
        }
    }

    #[test]
    fn backup_problems_say_why() {
        let mut h = HostState::new("h", "h", 2);
        h.conn = HostConn::Up;
        h.backups = vec![
            set(
                "gone",
                Verdict::Missing,
                Some("directory ~/backups does not exist"),
                None,
            ),
            set("empty", Verdict::Missing, None, None),
            set(
                "future",
                Verdict::Suspicious,
                Some("db-9.dump is dated 3d in the future of the host's clock: its age is unknown"),
                None,
            ),
            set("old", Verdict::Stale, None, Some(30 * 3600)),
            set(
                "cut",
                Verdict::Unknown,
                Some("the listing of ~/backups is incomplete"),
                None,
            ),
        ];
        let model = Model::new(vec![h], jiff::Timestamp::from_second(1_000_000).unwrap());
        let lines: Vec<String> = problems(&model, &[0])
            .iter()
            .map(|p| format!("{} {}", p.severity.label(), p.what))
            .collect();
        assert_eq!(
            lines,
            [
                "CRITICAL backup s/empty missing",
                "CRITICAL backup s/gone missing: directory ~/backups does not exist",
                "CRITICAL backup s/old stale, newest 30h old",
                "WARNING backup s/cut could not be listed: the listing of ~/backups is incomplete",
                "WARNING backup s/future suspicious: db-9.dump is dated 3d in the future of the host's clock: its age is unknown",
            ]
        );
    }
}
