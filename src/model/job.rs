//! Jobs as the console knows them: what the operator can ask for on a stack, a job from
//! its plan to its outcome, and the audit record a finished job leaves behind.
//!
//! Pure data. Workers run the jobs (`crate::jobs`) and report [`JobEvent`]s; `update`
//! folds them into a [`Job`]; the audit log is a file of [`JobRecord`]s, read back into
//! jobs for the history view.

use std::collections::VecDeque;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// Output lines a job keeps (in the console, and in its audit record): the newest ones,
/// with a count of those let go. A deploy's whole output fits many times over.
pub const JOB_OUTPUT_LINES: usize = 2000;
/// Finished jobs the history view keeps in memory.
pub const HISTORY_LEN: usize = 30;

/// Names `opsdeck run` gives its own jobs: a custom action may not take them.
pub const BUILTIN_ACTIONS: [&str; 12] = [
    "deploy", "migrate", "rollback", "restore", "restart", "backup", "stop", "start", "kill",
    "pause", "unpause", "rm",
];

/// The signals `kill` offers: the ones a service is commonly told something with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Term,
    Kill,
    Hup,
    Usr1,
    Usr2,
    Int,
}

impl Signal {
    pub const ALL: [Signal; 6] = [
        Signal::Term,
        Signal::Kill,
        Signal::Hup,
        Signal::Usr1,
        Signal::Usr2,
        Signal::Int,
    ];

    /// As Docker's API and `kill -s` take it.
    pub fn name(self) -> &'static str {
        match self {
            Signal::Term => "TERM",
            Signal::Kill => "KILL",
            Signal::Hup => "HUP",
            Signal::Usr1 => "USR1",
            Signal::Usr2 => "USR2",
            Signal::Int => "INT",
        }
    }

    fn number(self) -> u8 {
        match self {
            Signal::Term => 15,
            Signal::Kill => 9,
            Signal::Hup => 1,
            Signal::Usr1 => 10,
            Signal::Usr2 => 12,
            Signal::Int => 2,
        }
    }

    /// `HUP`, `SIGHUP`, `hup` or `1`.
    pub fn parse(text: &str) -> Option<Signal> {
        let upper = text.trim().to_ascii_uppercase();
        let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
        Signal::ALL
            .into_iter()
            .find(|s| s.name() == bare || bare.parse::<u8>().ok() == Some(s.number()))
    }

    /// The next one in [`Signal::ALL`] (or the one before), for the confirmation's choice.
    pub fn cycle(self, forward: bool) -> Signal {
        let i = Signal::ALL.iter().position(|s| *s == self).unwrap_or(0);
        let n = Signal::ALL.len();
        Signal::ALL[if forward {
            (i + 1) % n
        } else {
            (i + n - 1) % n
        }]
    }
}

/// What can be done to one container besides a restart: Docker's lifecycle calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerOp {
    Stop,
    Start,
    Kill(Signal),
    Pause,
    Unpause,
    /// Only a container that is not running: never forced.
    Remove,
}

impl ContainerOp {
    /// The word `opsdeck run` takes and the audit log starts with.
    pub fn verb(self) -> &'static str {
        match self {
            ContainerOp::Stop => "stop",
            ContainerOp::Start => "start",
            ContainerOp::Kill(_) => "kill",
            ContainerOp::Pause => "pause",
            ContainerOp::Unpause => "unpause",
            ContainerOp::Remove => "rm",
        }
    }

    /// From `opsdeck run`'s action word; `kill` takes `signal` (TERM when none).
    pub fn parse(verb: &str, signal: Option<Signal>) -> Option<ContainerOp> {
        Some(match verb {
            "stop" => ContainerOp::Stop,
            "start" => ContainerOp::Start,
            "kill" => ContainerOp::Kill(signal.unwrap_or(Signal::Term)),
            "pause" => ContainerOp::Pause,
            "unpause" => ContainerOp::Unpause,
            "rm" => ContainerOp::Remove,
            _ => return None,
        })
    }

    /// `stop api`, `kill -s HUP api`: the job's name in the console and the audit log.
    pub fn action(self, name: &str) -> String {
        match self {
            ContainerOp::Kill(s) => format!("kill -s {} {name}", s.name()),
            op => format!("{} {name}", op.verb()),
        }
    }

    /// What the Docker API will be asked, for the confirmation and the job's step.
    pub fn detail(self, name: &str) -> String {
        match self {
            ContainerOp::Stop => {
                format!("docker stop {name} (Docker API: its stop signal, 10 s, then SIGKILL)")
            }
            ContainerOp::Start => format!("docker start {name} (Docker API)"),
            ContainerOp::Kill(s) => format!("docker kill -s {} {name} (Docker API)", s.name()),
            ContainerOp::Pause => {
                format!("docker pause {name} (Docker API: its processes are frozen)")
            }
            ContainerOp::Unpause => format!("docker unpause {name} (Docker API)"),
            ContainerOp::Remove => format!(
                "docker rm {name} (Docker API: the stopped container and its writable layer; \
                 volumes stay)"
            ),
        }
    }

    fn question(self, name: &str) -> String {
        match self {
            ContainerOp::Stop => format!("Stop {name}"),
            ContainerOp::Start => format!("Start {name}"),
            ContainerOp::Kill(s) => format!("Send SIG{} to {name}", s.name()),
            ContainerOp::Pause => format!("Pause {name}"),
            ContainerOp::Unpause => format!("Unpause {name}"),
            ContainerOp::Remove => format!("Remove the stopped container {name}"),
        }
    }
}

/// What the operator asks to be done on a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobKind {
    Deploy,
    Migrate,
    /// Put back the image IDs the last deploy recorded, and recreate.
    Rollback,
    /// Restart one container through the Docker API.
    Restart {
        id: String,
        name: String,
    },
    /// Restart every container of the stack's compose project.
    RestartStack,
    /// Stop, start, kill, pause, unpause or remove one container through the Docker API.
    Container {
        op: ContainerOp,
        id: String,
        name: String,
    },
    /// A custom action of the stack, by name.
    Custom {
        name: String,
    },
    /// Take a backup of one set now.
    Backup {
        set: String,
    },
    /// Restore the dump a release recorded (`opts.to`) into a `pg_dump` set's database
    /// (empty: the stack's only one), after a dump of what it holds now.
    Restore {
        set: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRequest {
    /// The stack's name in the inventory; empty for a container outside any stack.
    pub stack: String,
    pub kind: JobKind,
    /// How a deploy or rollback goes: forced, only checked, to which release.
    pub opts: JobOptions,
}

/// The choices a deploy or a rollback takes besides its stack (ignored by other jobs).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JobOptions {
    /// Go on despite the pre-flight's warnings (never its refusals).
    pub force: bool,
    /// Run only the pre-flight, change nothing (`deploy --check`).
    pub check_only: bool,
    /// The release a rollback goes to: its number or ID (`None`: the one before the
    /// newest).
    pub to: Option<String>,
    /// A rollback also checks out the release's git commit in the stack's directory.
    pub checkout: bool,
}

impl JobRequest {
    /// What the confirmation asks, naming host, stack and action.
    pub fn question(&self, host: &str) -> String {
        let stack = &self.stack;
        match &self.kind {
            JobKind::Deploy => format!("Deploy {stack} on {host}?"),
            JobKind::Migrate => format!("Run the migrations of {stack} on {host}?"),
            JobKind::Rollback => match &self.opts.to {
                Some(to) => format!("Roll {stack} on {host} back to release {to}?"),
                None => format!("Roll {stack} on {host} back to its previous release?"),
            },
            JobKind::Restore { .. } => format!(
                "Restore the database of {stack} on {host} from the dump of release {}? What it holds now is dumped first.",
                self.opts.to.as_deref().unwrap_or("(the one before this)")
            ),
            JobKind::Restart { name, .. } if stack.is_empty() => {
                format!("Restart {name} on {host}?")
            }
            JobKind::Restart { name, .. } => format!("Restart {name} ({stack}) on {host}?"),
            JobKind::RestartStack => format!("Restart every container of {stack} on {host}?"),
            JobKind::Container { op, name, .. } if stack.is_empty() => {
                format!("{} on {host}?", op.question(name))
            }
            JobKind::Container { op, name, .. } => {
                format!("{} ({stack}) on {host}?", op.question(name))
            }
            JobKind::Custom { name } => format!("Run {name} ({stack}) on {host}?"),
            JobKind::Backup { set } => format!("Back up {stack}/{set} on {host} now?"),
        }
    }

    /// How the action is named in confirmations, the job pane and the audit log.
    pub fn action(&self) -> String {
        match &self.kind {
            JobKind::Deploy => "deploy".into(),
            JobKind::Migrate => "migrate".into(),
            JobKind::Rollback => "rollback".into(),
            JobKind::Restart { name, .. } => format!("restart {name}"),
            JobKind::RestartStack => "restart stack".into(),
            JobKind::Container { op, name, .. } => op.action(name),
            JobKind::Custom { name } => name.clone(),
            JobKind::Backup { set } => format!("backup {set}"),
            JobKind::Restore { .. } => "restore".into(),
        }
    }
}

/// What a stack offers, from the inventory: the console shows and confirms from this.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StackInfo {
    pub name: String,
    /// The compose project its containers carry in `com.docker.compose.project`.
    pub project: String,
    /// The deploy recipe's steps as written, when it has one.
    pub deploy: Option<Vec<String>>,
    pub migrate: Option<Vec<String>>,
    pub actions: Vec<ActionInfo>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionInfo {
    pub name: String,
    pub key: Option<char>,
    pub description: Option<String>,
    pub steps: Vec<String>,
    pub dangerous: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LineKind {
    Out,
    Err,
    /// opsdeck's own words: what it is doing, and why a step failed.
    Info,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobLine {
    /// The step (0-based) that printed it; `None` before the first step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<usize>,
    pub kind: LineKind,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepState {
    Pending,
    Running,
    Done {
        exit: Option<i32>,
        millis: u64,
    },
    Failed {
        exit: Option<i32>,
        millis: u64,
    },
    /// Not run: an earlier step failed, or the job was cancelled.
    Skipped,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobStep {
    pub label: String,
    pub state: StepState,
}

/// A job, live or finished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub host: String,
    /// Who ran it (`$USER` where opsdeck ran); empty when unknown.
    pub user: String,
    pub stack: String,
    pub action: String,
    pub steps: Vec<JobStep>,
    pub output: VecDeque<JobLine>,
    /// Lines let go from the front of `output`.
    pub dropped: u64,
    pub started: Timestamp,
    pub ended: Option<Timestamp>,
    /// `None` while running; then `Ok(summary)` or `Err(why)`.
    pub outcome: Option<Result<String, String>>,
    /// The backup set, for a backup job.
    pub set: Option<String>,
    /// Bytes written so far, for jobs that write a file (backups).
    pub bytes: u64,
    /// The operator asked to stop it; the host is stopping the running step.
    pub cancelling: bool,
}

impl Job {
    /// A job that has just been asked for, before its worker sends the plan.
    pub fn new(host: &str, stack: &str, action: &str, steps: Vec<String>, now: Timestamp) -> Job {
        Job {
            host: host.into(),
            user: String::new(),
            stack: stack.into(),
            action: action.into(),
            steps: steps
                .into_iter()
                .map(|label| JobStep {
                    label,
                    state: StepState::Pending,
                })
                .collect(),
            output: VecDeque::new(),
            dropped: 0,
            started: now,
            ended: None,
            outcome: None,
            set: None,
            bytes: 0,
            cancelling: false,
        }
    }

    pub fn running(&self) -> bool {
        self.outcome.is_none()
    }

    /// The step running now (or the next one to run), 0-based.
    pub fn current(&self) -> Option<usize> {
        self.steps
            .iter()
            .position(|s| s.state == StepState::Running)
            .or_else(|| {
                self.running()
                    .then(|| {
                        self.steps
                            .iter()
                            .position(|s| s.state == StepState::Pending)
                    })
                    .flatten()
            })
    }

    /// Steps that ended, well or not.
    pub fn finished_steps(&self) -> usize {
        self.steps
            .iter()
            .filter(|s| matches!(s.state, StepState::Done { .. } | StepState::Failed { .. }))
            .count()
    }

    pub fn push_line(&mut self, line: JobLine) {
        self.output.push_back(line);
        if self.output.len() > JOB_OUTPUT_LINES {
            self.output.pop_front();
            self.dropped += 1;
        }
    }

    /// Seconds it has run (or ran), as of `now`.
    pub fn elapsed_secs(&self, now: Timestamp) -> i64 {
        let end = self.ended.unwrap_or(now);
        (end.as_second() - self.started.as_second()).max(0)
    }

    /// ✔, ✖ or ⟳ and the action: how the fleet view sums a host's job up.
    pub fn short(&self) -> String {
        match &self.outcome {
            None => {
                let n = self.steps.len().max(1);
                format!(
                    "⟳ {} {}/{n}",
                    self.action,
                    (self.finished_steps() + 1).min(n)
                )
            }
            Some(Ok(_)) => format!("✔ {}", self.action),
            Some(Err(_)) => format!("✖ {}", self.action),
        }
    }

    /// A finished job as the audit log has it.
    pub fn from_record(r: &JobRecord) -> Job {
        let started = r.time.parse::<Timestamp>().unwrap_or(Timestamp::UNIX_EPOCH);
        let ended = Timestamp::from_second(
            started.as_second() + i64::try_from(r.duration_ms / 1000).unwrap_or(0),
        )
        .unwrap_or(started);
        let steps = r
            .steps
            .iter()
            .map(|s| JobStep {
                label: s.step.clone(),
                state: match s.outcome.as_str() {
                    "ok" => StepState::Done {
                        exit: s.exit,
                        millis: s.duration_ms,
                    },
                    "skipped" => StepState::Skipped,
                    _ => StepState::Failed {
                        exit: s.exit,
                        millis: s.duration_ms,
                    },
                },
            })
            .collect();
        let outcome = if r.outcome == "ok" {
            Ok(r.summary.clone().unwrap_or_else(|| "ok".into()))
        } else if r.outcome.starts_with("ok") {
            Ok(r.outcome.clone())
        } else {
            Err(r
                .outcome
                .strip_prefix("failed: ")
                .unwrap_or(&r.outcome)
                .to_string())
        };
        let action = match &r.set {
            Some(set) if r.action == "backup" => format!("backup {set}"),
            _ => r.action.clone(),
        };
        Job {
            host: r.host.clone(),
            user: r.user.clone(),
            stack: r.stack.clone(),
            action,
            steps,
            output: r.output.iter().cloned().collect(),
            dropped: r.output_dropped,
            started,
            ended: Some(ended),
            outcome: Some(outcome),
            set: r.set.clone(),
            bytes: r.size.unwrap_or(0),
            cancelling: false,
        }
    }
}

/// What a worker reports about a job, in order: `Planned`, then per step `StepStarted`,
/// `Output`, `StepFinished`; `Progress` now and then; `Finished` last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobEvent {
    Planned {
        steps: Vec<String>,
    },
    StepStarted {
        index: usize,
    },
    Output(Vec<JobLine>),
    StepFinished {
        index: usize,
        exit: Option<i32>,
        ok: bool,
        millis: u64,
    },
    Progress {
        bytes: u64,
    },
    /// The audit record as written, just before `Finished` (for `opsdeck run`'s last word
    /// and exit status); absent when the job never got as far as a record.
    Recorded(Box<JobRecord>),
    Finished(Result<String, String>),
}

/// One line of the audit log: a job that ran (or was refused on the host), as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRecord {
    /// When it started, RFC 3339, UTC.
    pub time: String,
    /// `$USER` on the machine opsdeck ran on.
    pub user: String,
    pub host: String,
    pub stack: String,
    pub action: String,
    /// Backups: the set, the new file and its size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Shells: the container's name (none for a shell on the host itself).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// Shells: when it ended, RFC 3339, UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended: Option<String>,
    pub duration_ms: u64,
    /// `ok`, `failed: <why>`, `cancelled: <why>` or `refused: <why>`.
    pub outcome: String,
    /// One line on what it achieved, when it worked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<StepRecord>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub output: Vec<JobLine>,
    /// Output lines not kept (the oldest), beyond [`JOB_OUTPUT_LINES`].
    #[serde(default, skip_serializing_if = "is_zero")]
    pub output_dropped: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepRecord {
    pub step: String,
    /// The command's exit status; `null` for Docker API calls and waits, and for a
    /// command killed by a signal.
    pub exit: Option<i32>,
    pub duration_ms: u64,
    /// `ok`, `failed`, `cancelled` or `skipped`.
    pub outcome: String,
}

impl JobRecord {
    pub fn new(time: String, user: String, host: &str, stack: &str, action: &str) -> Self {
        JobRecord {
            time,
            user,
            host: host.into(),
            stack: stack.into(),
            action: action.into(),
            set: None,
            file: None,
            size: None,
            container: None,
            ended: None,
            duration_ms: 0,
            outcome: String::new(),
            summary: None,
            steps: Vec::new(),
            output: Vec::new(),
            output_dropped: 0,
        }
    }

    pub fn ok(&self) -> bool {
        self.outcome == "ok" || self.outcome.starts_with("ok;")
    }
}
