//! One host as the console knows it: connection state, the newest metrics with their age,
//! ten minutes of history, and its containers. Everything remote that can fail is state.

use jiff::Timestamp;

use super::backup::{BackupStatus, Verdict};
use super::check::{CheckStatus, CheckVerdict};
use super::series::Series;

#[derive(Debug, Clone, PartialEq)]
pub enum HostConn {
    Connecting,
    Up,
    /// Connected, but the last sample is late: no answer for two refreshes. `since` is
    /// when the last one came.
    Stalled {
        since: Timestamp,
        reason: String,
    },
    Down {
        since: Timestamp,
        reason: String,
    },
}

impl HostConn {
    /// The connection is there: up, or up with a late sampler (a sick host is when a
    /// restart or a deploy is most wanted; the worker itself refuses a job it cannot run).
    pub fn connected(&self) -> bool {
        matches!(self, HostConn::Up | HostConn::Stalled { .. })
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Disk {
    pub mount: String,
    pub used_bytes: u64,
    pub total_bytes: u64,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Metrics {
    pub cpu_percent: f64,
    pub per_core: Vec<f64>,
    pub mem_used_bytes: u64,
    pub mem_total_bytes: u64,
    pub swap_used_bytes: u64,
    pub swap_total_bytes: u64,
    pub load: [f64; 3],
    pub disks: Vec<Disk>,
    pub net_rx_bps: f64,
    pub net_tx_bps: f64,
    pub uptime_secs: u64,
}

impl Metrics {
    pub fn mem_percent(&self) -> f64 {
        percent(self.mem_used_bytes, self.mem_total_bytes)
    }
}

pub fn percent(used: u64, total: u64) -> f64 {
    if total == 0 {
        0.0
    } else {
        used as f64 * 100.0 / total as f64
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DockerState {
    /// Not asked yet.
    Unknown,
    Up {
        version: String,
    },
    Unavailable {
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunState {
    Running,
    Restarting,
    Paused,
    Created,
    Exited { code: Option<i64> },
    Dead,
    Other(String),
}

impl RunState {
    /// The state as Docker names it (`created`, `running`, `restarting`, `paused`,
    /// `exited`, `removing`, `dead`), for scripts; the exit code is [`Self::exit_code`].
    pub fn docker_word(&self) -> &str {
        match self {
            RunState::Running => "running",
            RunState::Restarting => "restarting",
            RunState::Paused => "paused",
            RunState::Created => "created",
            RunState::Exited { .. } => "exited",
            RunState::Dead => "dead",
            RunState::Other(s) => s,
        }
    }

    pub fn exit_code(&self) -> Option<i64> {
        match self {
            RunState::Exited { code } => *code,
            _ => None,
        }
    }

    pub fn label(&self) -> String {
        match self {
            RunState::Running => "running".into(),
            RunState::Restarting => "restarting".into(),
            RunState::Paused => "paused".into(),
            RunState::Created => "created".into(),
            RunState::Exited { code: Some(c) } => format!("exited({c})"),
            RunState::Exited { code: None } => "exited".into(),
            RunState::Dead => "dead".into(),
            RunState::Other(s) => s.clone(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Healthy,
    Unhealthy,
    Starting,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Container {
    pub id: String,
    pub name: String,
    /// `com.docker.compose.project`; `None` for containers made outside compose.
    pub project: Option<String>,
    pub service: Option<String>,
    pub image: String,
    pub state: RunState,
    pub health: Option<Health>,
    pub restart_count: Option<i64>,
    pub started_at: Option<Timestamp>,
    pub ports: Vec<String>,
    pub cpu_percent: Option<f64>,
    pub mem_bytes: Option<u64>,
}

impl Container {
    pub fn is_running(&self) -> bool {
        self.state == RunState::Running
    }

    /// Unhealthy, or not running when it should be (restarting, dead, exited non-zero).
    pub fn is_troubled(&self) -> bool {
        self.health == Some(Health::Unhealthy)
            || matches!(self.state, RunState::Restarting | RunState::Dead)
            || matches!(self.state, RunState::Exited { code: Some(c) } if c != 0)
    }

    pub fn display_name(&self) -> &str {
        self.service.as_deref().unwrap_or(&self.name)
    }
}

/// Containers of one compose project (or of none), as the host view lists them.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub project: Option<String>,
    pub containers: Vec<usize>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HostState {
    pub name: String,
    /// `this machine` or `user@address:port`, shown beside the name.
    pub target: String,
    pub production: bool,
    pub refresh_secs: u64,
    pub conn: HostConn,
    pub metrics: Option<Metrics>,
    pub metrics_at: Option<Timestamp>,
    pub cpu: Series,
    pub mem: Series,
    pub net_rx: Series,
    pub net_tx: Series,
    pub load1: Series,
    pub docker: DockerState,
    pub containers: Vec<Container>,
    pub containers_at: Option<Timestamp>,
    /// Each running container's CPU and memory over the graphs' window, by id.
    pub usage: std::collections::HashMap<String, super::detail::Usage>,
    /// Something only the operator can answer before the worker goes on.
    pub question: Option<HostQuestion>,
    /// A host key that changed or is revoked: shown as a banner until the host is up.
    pub key_alert: Option<String>,
    pub backups: Vec<BackupStatus>,
    pub checks: Vec<CheckStatus>,
    /// What counts as a problem on this host, from the inventory.
    pub limits: super::Limits,
    /// The host's current or last job, as the host view shows it.
    pub job: Option<super::job::Job>,
    /// What its stacks offer: deploy, migrate, custom actions.
    pub stacks: Vec<super::job::StackInfo>,
    /// The inventory says this host must not be changed.
    pub read_only: bool,
    /// The timeline has caught up on what the engine did while opsdeck was away.
    pub timeline_caught_up: bool,
    /// The boot and disk levels the last samples showed, for the timeline's changes.
    pub facts: Option<super::timeline::Seen>,
    /// Where its metrics come from when not SSH sampling, and whether that works now.
    pub source: Option<super::MetricsFrom>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostQuestion {
    /// A host key no known_hosts file has (its SHA256 fingerprint).
    UnknownKey { fingerprint: String },
    /// An encrypted identity file; `wrong` after a passphrase that did not open it.
    Passphrase { path: String, wrong: bool },
}

impl HostState {
    pub fn new(name: impl Into<String>, target: impl Into<String>, refresh_secs: u64) -> Self {
        HostState {
            name: name.into(),
            target: target.into(),
            production: false,
            refresh_secs: refresh_secs.max(1),
            conn: HostConn::Connecting,
            metrics: None,
            metrics_at: None,
            cpu: Series::at_refresh(refresh_secs),
            mem: Series::at_refresh(refresh_secs),
            net_rx: Series::at_refresh(refresh_secs),
            net_tx: Series::at_refresh(refresh_secs),
            load1: Series::at_refresh(refresh_secs),
            docker: DockerState::Unknown,
            containers: Vec::new(),
            containers_at: None,
            usage: std::collections::HashMap::new(),
            question: None,
            key_alert: None,
            backups: Vec::new(),
            checks: Vec::new(),
            limits: super::Limits::default(),
            job: None,
            timeline_caught_up: false,
            facts: None,
            source: None,
            stacks: Vec::new(),
            read_only: false,
        }
    }

    /// The stack whose compose project a container belongs to.
    pub fn stack_of(&self, c: &Container) -> Option<&super::job::StackInfo> {
        let project = c.project.as_deref()?;
        self.stacks.iter().find(|s| s.project == project)
    }

    pub fn job_running(&self) -> bool {
        self.job.as_ref().is_some_and(super::job::Job::running)
    }

    pub fn apply_metrics(&mut self, at: Timestamp, m: Metrics) {
        let t = at.as_second();
        self.cpu.push(t, m.cpu_percent);
        self.mem.push(t, m.mem_percent());
        self.net_rx.push(t, m.net_rx_bps);
        self.net_tx.push(t, m.net_tx_bps);
        self.load1.push(t, m.load[0]);
        self.metrics = Some(m);
        self.metrics_at = Some(at);
    }

    /// Fills the graphs with a metrics source's history: its points older than the first
    /// figures go before them (the figures may have come first), within ten minutes.
    pub fn apply_history(&mut self, h: &super::series::History) {
        for (series, points) in [
            (&mut self.cpu, &h.cpu),
            (&mut self.mem, &h.mem_pct),
            (&mut self.load1, &h.load1),
            (&mut self.net_rx, &h.rx),
            (&mut self.net_tx, &h.tx),
        ] {
            series.prepend(points);
        }
    }

    /// The set that most needs attention: worst verdict, then oldest newest file.
    pub fn worst_backup(&self, now_secs: i64) -> Option<&BackupStatus> {
        self.backups.iter().max_by_key(|b| {
            (
                b.verdict.severity(),
                b.newest_age(now_secs).unwrap_or(i64::MAX),
            )
        })
    }

    /// Takes new results, keeping each check's last failure while it passes again.
    pub fn set_checks(&mut self, mut checks: Vec<CheckStatus>) {
        for c in &mut checks {
            if c.last_failure.is_none() {
                c.last_failure = self
                    .checks
                    .iter()
                    .find(|o| o.stack == c.stack && o.name == c.name)
                    .and_then(|o| o.last_failure.clone());
            }
        }
        self.checks = checks;
    }

    /// The check that most needs attention: failed, then soonest certificate expiry.
    pub fn worst_check(&self) -> Option<&CheckStatus> {
        self.checks.iter().max_by_key(|c| {
            (
                c.verdict(),
                std::cmp::Reverse(c.tls.as_ref().map_or(i64::MAX, |t| t.days_left)),
            )
        })
    }

    pub fn checks_with(&self, verdict: CheckVerdict) -> usize {
        self.checks
            .iter()
            .filter(|c| c.verdict() == verdict)
            .count()
    }

    pub fn backups_with(&self, verdict: Verdict) -> usize {
        self.backups.iter().filter(|b| b.verdict == verdict).count()
    }

    pub fn running(&self) -> usize {
        self.containers.iter().filter(|c| c.is_running()).count()
    }

    pub fn unhealthy(&self) -> usize {
        self.containers.iter().filter(|c| c.is_troubled()).count()
    }

    /// Its figures come from its external metrics source now (not SSH, not failing).
    pub fn sourced(&self) -> bool {
        self.source.as_ref().is_some_and(|s| s.fallback.is_none())
    }

    /// Its metrics source still reports it while SSH cannot reach it: its figures are
    /// fresh (a source reached through SSH stops with the connection).
    pub fn reported_while_down(&self, now: Timestamp) -> bool {
        self.sourced() && self.metrics_at.is_some() && self.stale_secs(now).is_none()
    }

    /// Whether its figures are shown: it is not down, or its metrics source reports it
    /// while SSH cannot reach it.
    pub fn shows_figures(&self, now: Timestamp) -> bool {
        !matches!(self.conn, HostConn::Down { .. }) || self.reported_while_down(now)
    }

    /// Seconds since the newest metrics, when older than three poll intervals.
    pub fn stale_secs(&self, now: Timestamp) -> Option<i64> {
        let at = self.metrics_at?;
        let age = now.as_second() - at.as_second();
        (age > 3 * self.refresh_secs as i64).then_some(age)
    }

    /// Compose projects in name order, then the containers outside any project;
    /// `filter` matches name, service, project or image, case-insensitively.
    pub fn groups(&self, filter: &str) -> Vec<Group> {
        let filter = filter.to_lowercase();
        let mut groups: Vec<Group> = Vec::new();
        let mut order: Vec<usize> = (0..self.containers.len()).collect();
        order.sort_by(|&a, &b| {
            let (ca, cb) = (&self.containers[a], &self.containers[b]);
            (ca.project.is_none(), &ca.project, ca.display_name()).cmp(&(
                cb.project.is_none(),
                &cb.project,
                cb.display_name(),
            ))
        });
        for i in order {
            let c = &self.containers[i];
            if !filter.is_empty() {
                let hay = [
                    c.name.as_str(),
                    c.service.as_deref().unwrap_or(""),
                    c.project.as_deref().unwrap_or(""),
                    c.image.as_str(),
                ];
                if !hay.iter().any(|h| h.to_lowercase().contains(&filter)) {
                    continue;
                }
            }
            match groups.last_mut() {
                Some(g) if g.project == c.project => g.containers.push(i),
                _ => groups.push(Group {
                    project: c.project.clone(),
                    containers: vec![i],
                }),
            }
        }
        groups
    }

    /// Container indices in display order, the host view's cursor moves over these.
    pub fn visible_containers(&self, filter: &str) -> Vec<usize> {
        self.groups(filter)
            .into_iter()
            .flat_map(|g| g.containers)
            .collect()
    }
}
