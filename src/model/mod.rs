//! The console's state as plain data, and `update`, the only place it changes.
//!
//! No I/O, no clock, no async here: time arrives in `Msg::Tick`, results of remote work
//! arrive as messages, and what should happen outside comes back as `Effect`s. That is
//! what lets every screen be tested from a hand-built `Model`.

mod actions;
pub mod backup;
pub mod check;
pub mod detail;
pub mod host;
pub mod job;
pub mod keymap;
pub mod logs;
pub mod multi;
pub mod palette;
pub mod picker;
pub mod preflight;
pub mod problems;
pub mod releases;
pub mod series;
pub mod snapshot;
pub mod timeline;

use jiff::Timestamp;

pub use host::{
    Container, DockerState, Group, Health, HostConn, HostQuestion, HostState, Metrics, RunState,
};
pub use job::{Job, JobEvent, JobKind, JobOptions, JobRecord, JobRequest, StackInfo};
pub use keymap::{Action, Key, ViewKind};
pub use logs::{LogLine, LogRing, Stream};
use palette::{Command, Palette};
pub use problems::{Limits, Problem, Severity};
pub use snapshot::{Changed, HostSnapshot, MetricsFrom, Part};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum View {
    Fleet,
    Host {
        host: usize,
    },
    Container {
        host: usize,
        id: String,
    },
    /// A compose project's logs together: every service's, interleaved by time.
    Stack {
        host: usize,
        project: String,
    },
    /// One job: a host's current (or last) job, or one from the history.
    Job(JobRef),
    /// Recent jobs, newest first.
    Jobs,
    /// What changed, when: one host's events, or the fleet's (`None`), newest first.
    Timeline {
        host: Option<usize>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobRef {
    /// `hosts[i].job`: live while it runs.
    Host(usize),
    /// `history[i]`.
    History(usize),
}

impl View {
    pub fn kind(&self) -> ViewKind {
        match self {
            View::Fleet => ViewKind::Fleet,
            View::Host { .. } => ViewKind::Host,
            View::Container { .. } => ViewKind::Container,
            View::Stack { .. } => ViewKind::Stack,
            View::Job(_) => ViewKind::Job,
            View::Jobs => ViewKind::Jobs,
            View::Timeline { .. } => ViewKind::Timeline,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Overlay {
    None,
    /// Every binding of the view; the number is how far it is scrolled.
    Help(u16),
    Palette(Palette),
    Confirm(Confirm),
    /// The fleet's problems, worst first, with a cursor; Enter opens the problem's host.
    Problems {
        cursor: usize,
    },
    /// A stack's releases (`R`): roll back to one, restore its dump.
    Releases(picker::ReleasesPicker),
    /// Typing the passphrase of an encrypted identity file; shown masked.
    Passphrase {
        host: usize,
        path: String,
        input: Secret,
    },
}

/// A passphrase on its way from the keyboard to a worker; never printed, not even in
/// debug output or logs.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.chars().count()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// A question that must be answered before anything happens: `y`, or for a change to a
/// production host, its name typed out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Confirm {
    TrustHostKey {
        host: usize,
        fingerprint: String,
    },
    /// A job that changes a host.
    Job {
        host: usize,
        request: JobRequest,
        /// What will run, one line each (the recipe's steps, the backup's recipe).
        details: Vec<String>,
        /// What has been typed so far, when something must be: the host's name on a
        /// production host, `force` for a deploy whose pre-flight warns.
        typed: Option<String>,
        /// A deploy's pre-flight: being checked, or its report.
        preflight: Option<preflight::Shown>,
    },
    /// Stop a host's running job.
    CancelJob {
        host: usize,
    },
    /// Quit while jobs run: their steps are stopped on the hosts.
    Quit {
        running: Vec<String>,
    },
    /// Deploy the marked hosts, one at a time; `Some` when one of them is a production
    /// host: what has been typed of the production hosts' names so far.
    Batch {
        batch: multi::Batch,
        typed: Option<String>,
    },
}

/// A line being typed at the bottom of the screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Filter(String),
    Search(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Warn,
    Error,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flash {
    pub text: String,
    pub level: Level,
    pub until: Timestamp,
}

/// The log pane of the container view.
#[derive(Debug, Clone)]
pub struct LogPane {
    pub host: usize,
    pub id: String,
    pub ring: LogRing,
    /// Stick to the newest line as lines arrive.
    pub follow: bool,
    /// Lines between the bottom of the viewport and the newest line, when not following.
    pub scroll: u64,
    /// The search as typed; the ring counts the lines matching it.
    pub search: String,
    pub current_match: Option<u64>,
    /// Why the stream stopped, when it did (container gone, connection lost).
    pub ended: Option<String>,
    /// A stack's logs: its services, and which are shown (`ring` holds the lines shown).
    pub stack: Option<StackLogs>,
    /// Opened from the timeline: the moment to show, once lines reach it.
    pub moment: Option<Timestamp>,
}

/// What a log pane knows of a stack whose logs it shows together.
#[derive(Debug, Clone)]
pub struct StackLogs {
    pub project: String,
    /// The services as the host names them, in the order a line's `source` counts them.
    pub services: Vec<String>,
    /// `None`: every service; `Some(i)`: only `services[i]`.
    pub only: Option<u16>,
    /// Every service's lines; the pane's ring holds those shown.
    pub all: LogRing,
}

impl StackLogs {
    pub fn shows(&self, line: &LogLine) -> bool {
        self.only.is_none() || self.only == line.source
    }
}

impl LogPane {
    fn new(host: usize, id: String) -> Self {
        LogPane {
            host,
            id,
            ring: LogRing::default(),
            follow: true,
            scroll: 0,
            search: String::new(),
            current_match: None,
            ended: None,
            stack: None,
            moment: None,
        }
    }

    fn for_stack(host: usize, project: String, services: Vec<String>) -> Self {
        LogPane {
            stack: Some(StackLogs {
                project: project.clone(),
                services,
                only: None,
                all: LogRing::default(),
            }),
            ..LogPane::new(host, project)
        }
    }

    /// Takes new lines: a stack's go to all its lines, and to the ring when shown.
    /// Returns how many the ring took.
    fn push(&mut self, lines: Vec<LogLine>) -> u64 {
        let mut shown = 0;
        for l in lines {
            if let Some(st) = self.stack.as_mut() {
                if !st.shows(&l) {
                    st.all.push(l);
                    continue;
                }
                st.all.push(l.clone());
            }
            self.ring.push(l);
            shown += 1;
        }
        if !self.follow {
            // Keep the paused viewport on the same lines.
            self.scroll += shown;
            let max = self.ring.len().saturating_sub(1) as u64;
            self.scroll = self.scroll.min(max);
        }
        if let Some(moment) = self.moment {
            self.show_moment(moment);
        }
        shown
    }

    /// Pauses on the last line at or before `moment` (what led up to it), or the oldest
    /// line when the log starts later. Lines come in time order: once one later than the
    /// moment has come, the place is final; until then each batch moves it on.
    fn show_moment(&mut self, moment: Timestamp) {
        let (first, end) = (self.ring.first_seq(), self.ring.end_seq());
        if first == end {
            return;
        }
        let at = |seq: u64| self.ring.get(seq).and_then(|l| l.at);
        let last_before = (first..end)
            .rev()
            .find(|&seq| at(seq).is_some_and(|t| t <= moment));
        let place = last_before.unwrap_or(first);
        self.follow = false;
        self.scroll = end.saturating_sub(1).saturating_sub(place);
        if at(end - 1).is_some_and(|t| t > moment) {
            self.moment = None;
        }
    }

    /// Shows the next service alone, or after the last, all of them again: the ring is
    /// made anew from the stack's lines, the search kept.
    fn next_service(&mut self) {
        let Some(st) = self.stack.as_mut() else {
            return;
        };
        let n = st.services.len();
        st.only = match st.only {
            None if n > 0 => Some(0),
            Some(i) if usize::from(i) + 1 < n => Some(i + 1),
            _ => None,
        };
        let mut ring = LogRing::default();
        ring.set_search(&self.search);
        for (_, l) in st.all.range(0, u64::MAX) {
            if st.shows(l) {
                ring.push(l.clone());
            }
        }
        self.ring = ring;
        self.scroll = 0;
        self.current_match = None;
    }
}

#[derive(Debug, Clone)]
pub enum Msg {
    Key(Key),
    Tick {
        now: Timestamp,
    },
    Resize {
        width: u16,
        height: u16,
    },
    /// A host worker's whole snapshot of its host, and which parts this update brought.
    Host {
        host: usize,
        snapshot: std::sync::Arc<HostSnapshot>,
        changed: Changed,
    },
    LogLines {
        host: usize,
        id: String,
        lines: Vec<LogLine>,
    },
    LogEnded {
        host: usize,
        id: String,
        reason: String,
    },
    /// A stack's lines, interleaved; each line's `source` names its service.
    StackLines {
        host: usize,
        project: String,
        lines: Vec<LogLine>,
    },
    /// Every service's log of the stack ended.
    StackEnded {
        host: usize,
        project: String,
        reason: String,
    },
    /// The host offered a key no known_hosts file has; the worker waits for a decision.
    HostKeyUnknown {
        host: usize,
        fingerprint: String,
    },
    /// A changed or revoked host key: the worker refuses to connect until the file is fixed.
    HostKeyAlert {
        host: usize,
        message: String,
    },
    /// An identity file is encrypted; the worker waits for its passphrase.
    PassphraseNeeded {
        host: usize,
        path: String,
        wrong: bool,
    },
    Job {
        host: usize,
        event: JobEvent,
    },
    /// A stack's release history and what it runs, read for the releases picker.
    Releases {
        host: usize,
        stack: String,
        result: Result<releases::ReleasesView, String>,
    },
    /// A deploy's pre-flight, asked with `id` (`Err`: it could not run).
    Preflight {
        host: usize,
        id: u64,
        stack: String,
        report: Result<preflight::Report, String>,
    },
    /// Recent jobs from the audit log, oldest first, read at start-up.
    History(Vec<JobRecord>),
    /// Events of a host's timeline (Docker's, its checks'); `caught_up` once what happened
    /// while opsdeck was away has been asked of the engine.
    Timeline {
        host: usize,
        events: Vec<timeline::Event>,
        caught_up: bool,
    },
    /// A record the runtime wrote to the audit log itself (a shell's), for the history.
    Recorded(Box<JobRecord>),
    /// A word from the runtime for the status line (a shell that could not open, or how
    /// one ended).
    Notice {
        level: Level,
        text: String,
    },
    /// What Docker says of the container on screen (inspect, top), and its I/O
    /// counters when its graphs are open; `at` is when it was read.
    ContainerDetail {
        host: usize,
        id: String,
        at: Timestamp,
        detail: Result<Box<detail::ContainerDetail>, String>,
        io: Option<detail::IoSample>,
    },
    /// SIGTERM, SIGHUP: leave cleanly.
    Shutdown,
    /// The first-run import from `~/.ssh/config` (`I`): hosts looked at so far, or its end.
    Import(ImportMsg),
}

/// How the first-run import goes.
#[derive(Debug, Clone)]
pub enum ImportMsg {
    Progress {
        done: usize,
        total: usize,
    },
    /// The inventory written (its path), or why none was.
    Done(Result<String, String>),
}

/// The first-run offer: with no inventory anywhere and hosts in `~/.ssh/config`, the
/// console offers to write one from them (what `opsdeck init --from-ssh-config` does).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Import {
    Offered { hosts: usize },
    Running { done: usize, total: usize },
    Failed { hosts: usize, error: String },
}

/// Work for the runtime: the model asks, workers do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Write an inventory from `~/.ssh/config`'s hosts (answered by [`Msg::Import`]).
    Import,
    /// Read a stack's release history and what it runs (answered by [`Msg::Releases`]).
    ReadReleases {
        host: usize,
        stack: String,
    },
    FollowLogs {
        host: usize,
        id: String,
    },
    StopLogs {
        host: usize,
        id: String,
    },
    /// Follow a compose project's logs together: its services as (service, container id),
    /// in the order the lines' `source` counts them.
    FollowStack {
        host: usize,
        project: String,
        sources: Vec<(String, String)>,
    },
    StopStack {
        host: usize,
        project: String,
    },
    AcceptHostKey {
        host: usize,
        fingerprint: String,
    },
    Passphrase {
        host: usize,
        path: String,
        passphrase: Secret,
    },
    /// Run a job on a host (its worker plans it from the inventory).
    RunJob {
        host: usize,
        request: JobRequest,
    },
    /// Stop the host's running job.
    CancelJob {
        host: usize,
    },
    /// Run a deploy's pre-flight (no lock, nothing changed); answered with
    /// [`Msg::Preflight`] carrying `id`.
    Preflight {
        host: usize,
        id: u64,
        stack: String,
    },
    /// Keep these events in the host's timeline store.
    KeepEvents {
        events: Vec<timeline::Event>,
    },
    /// Read what Docker says of a container (inspect, top) and, with `stats`, its I/O
    /// counters; answered with [`Msg::ContainerDetail`].
    InspectContainer {
        host: usize,
        id: String,
        stats: bool,
    },
    /// Hand the terminal to a shell on the host, or in one of its containers.
    Shell {
        host: usize,
        /// `(id, name)`; `None` for the host's login shell.
        container: Option<(String, String)>,
        /// The container's stack in the inventory, for the audit record; empty if none.
        stack: String,
    },
}

/// A set of host indices the view writes while drawing (it holds the model shared).
#[derive(Debug, Default)]
pub struct Drawn(std::sync::Mutex<Option<Vec<usize>>>);

impl Clone for Drawn {
    fn clone(&self) -> Self {
        Drawn(std::sync::Mutex::new(self.lock().clone()))
    }
}

impl Drawn {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Vec<usize>>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn set(&self, hosts: Vec<usize>) {
        *self.lock() = Some(hosts);
    }

    /// Whether `host` was drawn (everything was, before the first frame).
    pub fn has(&self, host: usize) -> bool {
        self.lock().as_ref().is_none_or(|d| d.contains(&host))
    }
}

#[derive(Debug, Clone)]
pub struct Model {
    pub hosts: Vec<HostState>,
    pub view: View,
    pub fleet_cursor: usize,
    /// The hosts whose rows the fleet view drew last (the view says): a host's figures or
    /// retry times off the screen need no frame of their own (500 hosts send 250 updates
    /// a second).
    pub fleet_drawn: Drawn,
    /// Hosts marked in the fleet view (`Space`), by index, in inventory order: `d` deploys
    /// them one after the other.
    pub marked: Vec<usize>,
    /// The multi-deploy running, or the last one until it is dismissed.
    pub batch: Option<multi::Batch>,
    /// The fleet view lists the worst host first instead of in inventory order.
    pub sort_worst: bool,
    pub host_cursor: usize,
    /// The host view's cursor is on the compose project row above the container at
    /// `host_cursor` (the first of its group): `Enter` there opens the stack's logs.
    pub host_header: bool,
    pub filter: String,
    pub input: Option<Input>,
    pub overlay: Overlay,
    pub logs: Option<LogPane>,
    /// The container view's tabs: which is open, what Docker said of the container.
    pub detail: Option<detail::DetailPane>,
    /// Finished jobs, newest first: this session's and the audit log's.
    pub history: Vec<Job>,
    pub jobs_cursor: usize,
    /// Every host's events and the audit log's jobs, newest first (see [`timeline`]).
    pub timeline: Vec<timeline::Event>,
    pub timeline_cursor: usize,
    /// Lines between the bottom of the job pane and its newest line; 0 follows.
    pub job_scroll: u64,
    pub flash: Option<Flash>,
    pub read_only: bool,
    pub now: Timestamp,
    pub size: (u16, u16),
    /// Where the inventory came from, shown in help.
    pub source: String,
    /// Who runs this console (`$USER`), for its own jobs in the jobs list.
    pub user: String,
    pub dirty: bool,
    pub should_quit: bool,
    /// Pre-flights asked so far: each confirmation knows its answer by this number.
    pub preflights: u64,
    /// The first-run import from `~/.ssh/config`, when offered.
    pub import: Option<Import>,
    /// An inventory to load once this console's loop ends (the import wrote it).
    pub reload: Option<String>,
}

const FLASH_SECS: i64 = 4;

impl Model {
    pub fn new(hosts: Vec<HostState>, now: Timestamp) -> Self {
        let view = if hosts.len() == 1 {
            View::Host { host: 0 }
        } else {
            View::Fleet
        };
        Model {
            hosts,
            view,
            fleet_cursor: 0,
            marked: Vec::new(),
            batch: None,
            sort_worst: false,
            host_cursor: 0,
            host_header: false,
            filter: String::new(),
            input: None,
            overlay: Overlay::None,
            logs: None,
            detail: None,
            history: Vec::new(),
            timeline: Vec::new(),
            timeline_cursor: 0,
            jobs_cursor: 0,
            job_scroll: 0,
            flash: None,
            read_only: false,
            now,
            size: (80, 24),
            source: String::new(),
            user: String::new(),
            dirty: true,
            fleet_drawn: Drawn::default(),
            should_quit: false,
            preflights: 0,
            import: None,
            reload: None,
        }
    }

    /// Hosts shown in the fleet view, as indices, after the filter; with `sort_worst`,
    /// by their worst problem, then how many, then inventory order.
    pub fn visible_hosts(&self) -> Vec<usize> {
        let f = self.filter.to_lowercase();
        let mut hosts: Vec<usize> = (0..self.hosts.len())
            .filter(|&i| f.is_empty() || self.hosts[i].name.to_lowercase().contains(&f))
            .collect();
        if self.sort_worst {
            let found = self.problems();
            let rank = |i: usize| {
                let mine = found.iter().filter(|p| p.host == i);
                let worst = mine.clone().map(|p| p.severity).max();
                (std::cmp::Reverse(worst), std::cmp::Reverse(mine.count()), i)
            };
            hosts.sort_by_key(|&i| rank(i));
        }
        hosts
    }

    /// Every host's problems, worst first: what `opsdeck check` would print.
    pub fn problems(&self) -> Vec<Problem> {
        let all: Vec<usize> = (0..self.hosts.len()).collect();
        problems::problems(self, &all)
    }

    /// The jobs list: jobs running now, then the history; both after the filter.
    pub fn job_list(&self) -> Vec<JobRef> {
        let f = self.filter.to_lowercase();
        let fits = |j: &Job| {
            f.is_empty()
                || [&j.host, &j.stack, &j.action]
                    .iter()
                    .any(|s| s.to_lowercase().contains(&f))
        };
        let live = self
            .hosts
            .iter()
            .enumerate()
            .filter(|(_, h)| h.job.as_ref().is_some_and(|j| j.running() && fits(j)))
            .map(|(i, _)| JobRef::Host(i));
        let past = self
            .history
            .iter()
            .enumerate()
            .filter(|(_, j)| fits(j))
            .map(|(i, _)| JobRef::History(i));
        live.chain(past).collect()
    }

    pub fn job(&self, r: JobRef) -> Option<&Job> {
        match r {
            JobRef::Host(h) => self.hosts.get(h)?.job.as_ref(),
            JobRef::History(i) => self.history.get(i),
        }
    }

    pub fn selected_container(&self) -> Option<(usize, &Container)> {
        if self.host_header {
            return None;
        }
        self.cursor_container()
    }

    /// The container at the host view's cursor, or whose project row it is on.
    pub fn cursor_container(&self) -> Option<(usize, &Container)> {
        let View::Host { host } = self.view else {
            return None;
        };
        let h = self.hosts.get(host)?;
        let idx = *h.visible_containers(&self.filter).get(self.host_cursor)?;
        Some((idx, &h.containers[idx]))
    }

    /// Takes events into the timeline (newest first, each once, bounded).
    pub fn add_events(&mut self, events: impl IntoIterator<Item = timeline::Event>) {
        timeline::merge(&mut self.timeline, events, timeline::IN_CONSOLE);
        // Only the list on screen has a cursor to keep in it.
        if matches!(self.view, View::Timeline { .. }) {
            self.timeline_cursor = self
                .timeline_cursor
                .min(self.timeline_list().len().saturating_sub(1));
        }
    }

    /// The timeline as shown: the host's (or the fleet's) events matching the filter.
    pub fn timeline_list(&self) -> Vec<&timeline::Event> {
        let host = match self.view {
            View::Timeline { host } => host.and_then(|h| self.hosts.get(h)),
            _ => None,
        };
        let folded = logs::fold(&self.filter);
        self.timeline
            .iter()
            .filter(|e| host.is_none_or(|h| e.host == h.name) && e.matches(&folded))
            .collect()
    }

    fn flash(&mut self, level: Level, text: impl Into<String>) {
        self.flash = Some(Flash {
            text: text.into(),
            level,
            until: Timestamp::from_second(self.now.as_second() + FLASH_SECS).unwrap_or(self.now),
        });
    }

    fn page(&self) -> u64 {
        u64::from(self.size.1.saturating_sub(10)).max(1)
    }
}

/// What a worker's update brought, applied part by part; the screen is marked for a
/// redraw only where something differs (a sample always does: the graphs move).
fn on_snapshot(model: &mut Model, host: usize, snap: &HostSnapshot, changed: Changed) {
    let Some(h) = model.hosts.get_mut(host) else {
        return;
    };
    let mut dirty = false;
    // What the fleet's title and problems count: a change of these is drawn wherever the
    // host's row is.
    let mut counted = false;
    // A sample over SSH says the host is up; the snapshot has said so already.
    if (changed.conn || changed.metrics) && h.conn != snap.conn {
        counted |= std::mem::discriminant(&h.conn) != std::mem::discriminant(&snap.conn);
        if snap.conn == HostConn::Up {
            h.question = None;
            h.key_alert = None;
        }
        h.conn = snap.conn.clone();
        dirty = true;
    }
    if changed.conn && h.source != snap.source {
        h.source = snap.source.clone();
        dirty = true;
    }
    // The source's ten minutes, before its first figures (which may have come first).
    if let (true, Some(history)) = (changed.conn, &snap.history) {
        h.apply_history(history);
        dirty = true;
    }
    if let (true, Some((at, metrics))) = (changed.metrics, &snap.metrics) {
        h.apply_metrics(*at, metrics.clone());
        dirty = true;
    }
    if changed.docker && h.docker != snap.docker {
        h.docker = snap.docker.clone();
        dirty = true;
    }
    let mut listed = false;
    if let (true, Some((at, containers))) = (changed.containers, &snap.containers) {
        detail::record_usage(&mut h.usage, *at, containers);
        if &h.containers != containers {
            h.containers = containers.clone();
            dirty = true;
        }
        h.containers_at = Some(*at);
        listed = true;
    }
    if let (true, Some(backups)) = (changed.backups, &snap.backups)
        && &h.backups != backups
    {
        h.backups = backups.clone();
        dirty = true;
    }
    if let (true, Some(checks)) = (changed.checks, &snap.checks) {
        h.set_checks(checks.clone());
        dirty = true;
    }
    counted |= changed.docker || changed.containers || changed.backups || changed.checks;
    // On the fleet view, a host whose row is off the screen is drawn with the next frame
    // that is due anyway (the clock's, each second).
    let seen = counted || model.view != View::Fleet || model.fleet_drawn.has(host);
    model.dirty |= dirty && seen;
    if listed {
        clamp_cursors(model);
    }
}

/// Applies one message. Returns what the outside world should do about it.
pub fn update(model: &mut Model, msg: Msg) -> Vec<Effect> {
    let mut effects = Vec::new();
    match msg {
        Msg::Key(key) => {
            model.dirty = true;
            on_key(model, key, &mut effects);
        }
        Msg::Import(m) => {
            model.dirty = true;
            match m {
                ImportMsg::Progress { done, total } => {
                    model.import = Some(Import::Running { done, total });
                }
                ImportMsg::Done(Ok(path)) => {
                    // The console starts again over the new inventory.
                    model.reload = Some(path);
                    model.should_quit = true;
                }
                ImportMsg::Done(Err(error)) => {
                    let hosts = match model.import {
                        Some(Import::Running { total, .. }) => total,
                        _ => 0,
                    };
                    model.flash(Level::Error, format!("import failed: {error}"));
                    model.import = Some(Import::Failed { hosts, error });
                }
            }
        }
        Msg::Tick { now } => {
            let before = model.now.as_second();
            model.now = now;
            if model.flash.as_ref().is_some_and(|f| f.until <= now) {
                model.flash = None;
                model.dirty = true;
            }
            ask_detail(model, false, &mut effects);
            // Ages on screen count in seconds only for hosts that are down or stale, and
            // for jobs that run.
            if now.as_second() != before
                && model.hosts.iter().any(|h| {
                    !matches!(h.conn, HostConn::Up)
                        || h.stale_secs(now).is_some()
                        || h.job_running()
                })
            {
                model.dirty = true;
            }
        }
        Msg::Resize { width, height } => {
            model.size = (width, height);
            model.dirty = true;
        }
        Msg::Host {
            host,
            snapshot,
            changed,
        } => {
            let before = viewed_state(model, host);
            on_snapshot(model, host, &snapshot, changed);
            if viewed_state(model, host) != before {
                // Started, stopped, restarted: what inspect says has changed with it.
                ask_detail(model, true, &mut effects);
            }
            if let Some((at, metrics)) = &snapshot.metrics
                && changed.metrics
            {
                host_facts(model, host, metrics, *at, &mut effects);
            }
        }
        Msg::Releases {
            host,
            stack,
            result,
        } => picker::answered(model, host, &stack, result),
        Msg::LogLines { host, id, lines } => {
            if let Some(pane) = container_pane(model, host, &id) {
                pane.push(lines);
                model.dirty = true;
            }
        }
        Msg::LogEnded { host, id, reason } => {
            if let Some(pane) = container_pane(model, host, &id) {
                pane.ended = Some(reason);
                model.dirty = true;
            }
        }
        Msg::StackLines {
            host,
            project,
            lines,
        } => {
            if let Some(pane) = stack_pane(model, host, &project) {
                pane.push(lines);
                model.dirty = true;
            }
        }
        Msg::StackEnded {
            host,
            project,
            reason,
        } => {
            if let Some(pane) = stack_pane(model, host, &project) {
                pane.ended = Some(reason);
                model.dirty = true;
            }
        }
        Msg::HostKeyUnknown { host, fingerprint } => {
            if let Some(h) = model.hosts.get_mut(host) {
                h.question = Some(HostQuestion::UnknownKey { fingerprint });
                model.dirty = true;
            }
        }
        Msg::HostKeyAlert { host, message } => {
            if let Some(h) = model.hosts.get_mut(host) {
                h.key_alert = Some(message);
                model.dirty = true;
            }
        }
        Msg::PassphraseNeeded { host, path, wrong } => {
            if let Some(h) = model.hosts.get_mut(host) {
                h.question = Some(HostQuestion::Passphrase { path, wrong });
                model.dirty = true;
            }
        }
        Msg::Job { host, event } => {
            let finished = matches!(event, JobEvent::Finished(_));
            let asked_to_stop = finished
                && model
                    .hosts
                    .get(host)
                    .and_then(|h| h.job.as_ref())
                    .is_some_and(|j| j.cancelling);
            actions::on_job_event(model, host, event);
            if finished {
                multi::job_finished(model, host, asked_to_stop, &mut effects);
            }
        }
        Msg::Preflight {
            host,
            id,
            stack,
            report,
        } => actions::on_preflight(model, host, id, &stack, report),
        Msg::History(records) => {
            model.add_events(records.iter().filter_map(timeline::from_record));
            let mut jobs: Vec<Job> = records.iter().rev().map(Job::from_record).collect();
            jobs.truncate(job::HISTORY_LEN);
            model.history = jobs;
            model.dirty = true;
        }
        Msg::Recorded(record) => {
            model.history.insert(0, Job::from_record(&record));
            model.history.truncate(job::HISTORY_LEN);
            model.add_events(timeline::from_record(&record));
            model.dirty = true;
        }
        Msg::Timeline {
            host,
            events,
            caught_up,
        } => {
            if let Some(h) = model.hosts.get_mut(host) {
                h.timeline_caught_up |= caught_up;
            }
            if !events.is_empty() {
                model.add_events(events);
                model.dirty = true;
            }
        }
        Msg::Notice { level, text } => {
            model.flash(level, text);
            model.dirty = true;
        }
        Msg::ContainerDetail {
            host,
            id,
            at,
            detail,
            io,
        } => {
            if let Some(pane) = model
                .detail
                .as_mut()
                .filter(|p| p.host == host && p.id == id)
            {
                pane.answer(at, detail.map(|d| *d), io);
                model.dirty = true;
            }
        }
        Msg::Shutdown => {
            model.should_quit = true;
        }
    }
    effects
}

/// The log pane of container `id` on `host`, when that is what is shown.
fn container_pane<'a>(model: &'a mut Model, host: usize, id: &str) -> Option<&'a mut LogPane> {
    model
        .logs
        .as_mut()
        .filter(|p| p.host == host && p.stack.is_none() && p.id == id)
}

/// The log pane of stack `project` on `host`, when that is what is shown.
fn stack_pane<'a>(model: &'a mut Model, host: usize, project: &str) -> Option<&'a mut LogPane> {
    model
        .logs
        .as_mut()
        .filter(|p| p.host == host && p.stack.as_ref().is_some_and(|s| s.project == project))
}

/// The state of the container on screen, when it is on host `host`.
fn viewed_state(model: &Model, host: usize) -> Option<host::RunState> {
    let View::Container { host: h, id } = &model.view else {
        return None;
    };
    if *h != host {
        return None;
    }
    let c = model
        .hosts
        .get(host)?
        .containers
        .iter()
        .find(|c| &c.id == id)?;
    Some(c.state.clone())
}

/// Asks for the detail of the container on screen: `now`, or when it is due (each
/// refresh of its host, every two seconds at the most often). Its I/O counters only
/// while the graphs are open.
fn ask_detail(model: &mut Model, now: bool, effects: &mut Vec<Effect>) {
    let every = match &model.view {
        View::Container { host, .. } => model
            .hosts
            .get(*host)
            .map_or(2, |h| h.refresh_secs.max(2) as i64),
        _ => return,
    };
    let at = model.now;
    let Some(pane) = model.detail.as_mut() else {
        return;
    };
    if !(pane.due(at, every) || (now && !pane.pending)) {
        return;
    }
    pane.asked_at = Some(at);
    pane.pending = true;
    effects.push(Effect::InspectContainer {
        host: pane.host,
        id: pane.id.clone(),
        stats: pane.tab == detail::Tab::Graphs,
    });
}

/// Opens a tab of the container view.
fn show_tab(model: &mut Model, tab: detail::Tab, effects: &mut Vec<Effect>) {
    let Some(pane) = model.detail.as_mut() else {
        return;
    };
    if pane.tab == tab {
        return;
    }
    pane.tab = tab;
    pane.scroll = 0;
    if tab == detail::Tab::Graphs {
        // The I/O graphs start from the counters read now.
        ask_detail(model, true, effects);
    }
}

fn on_key(model: &mut Model, key: Key, effects: &mut Vec<Effect>) {
    if key == Key::Ctrl('c') {
        model.should_quit = true;
        return;
    }
    if model.input.is_some() {
        on_input_key(model, key);
        return;
    }
    if key == Key::Char('I')
        && model.overlay == Overlay::None
        && let Some(Import::Offered { hosts } | Import::Failed { hosts, .. }) = model.import
    {
        model.import = Some(Import::Running {
            done: 0,
            total: hosts,
        });
        effects.push(Effect::Import);
        return;
    }
    match &mut model.overlay {
        Overlay::Help(scroll) => {
            match key {
                Key::Esc | Key::Char('q') | Key::Char('?') | Key::Enter => {
                    model.overlay = Overlay::None
                }
                Key::Down | Key::Char('j') => *scroll = scroll.saturating_add(1).min(200),
                Key::Up | Key::Char('k') => *scroll = scroll.saturating_sub(1),
                Key::PageDown | Key::Ctrl('f') | Key::Char(' ') => {
                    *scroll = scroll.saturating_add(10).min(200)
                }
                Key::PageUp | Key::Ctrl('b') => *scroll = scroll.saturating_sub(10),
                Key::Home | Key::Char('g') => *scroll = 0,
                // the view clamps it to the last page
                Key::End | Key::Char('G') => *scroll = 200,
                _ => {}
            }
            return;
        }
        Overlay::Palette(_) => {
            on_palette_key(model, key, effects);
            return;
        }
        Overlay::Releases(_) => {
            picker::on_key(model, key, effects);
            return;
        }
        Overlay::Problems { cursor } => {
            let cursor = *cursor;
            let found = model.problems();
            let last = found.len().saturating_sub(1);
            let moved = match key {
                Key::Up | Key::Char('k') => Some(cursor.saturating_sub(1)),
                Key::Down | Key::Char('j') => Some((cursor + 1).min(last)),
                Key::Home | Key::Char('g') => Some(0),
                Key::End | Key::Char('G') => Some(last),
                Key::Enter | Key::Right | Key::Char('l') => {
                    model.overlay = Overlay::None;
                    if let Some(p) = found.get(cursor) {
                        goto_host(model, p.host, effects);
                    }
                    None
                }
                Key::Esc | Key::Char('q') | Key::Char('P') => {
                    model.overlay = Overlay::None;
                    None
                }
                _ => None,
            };
            if let Some(cursor) = moved {
                model.overlay = Overlay::Problems { cursor };
            }
            return;
        }
        Overlay::Passphrase { host, path, input } => {
            match key {
                Key::Char(c) => input.0.push(c),
                Key::Backspace => {
                    input.0.pop();
                }
                Key::Enter => {
                    let (host, path) = (*host, path.clone());
                    let passphrase = std::mem::take(input);
                    if let Some(h) = model.hosts.get_mut(host) {
                        h.question = None;
                        h.conn = HostConn::Connecting;
                    }
                    effects.push(Effect::Passphrase {
                        host,
                        path,
                        passphrase,
                    });
                    model.overlay = Overlay::None;
                }
                Key::Esc => model.overlay = Overlay::None,
                _ => {}
            }
            return;
        }
        Overlay::Confirm(Confirm::Batch { .. }) => {
            multi::on_confirm_key(model, key, effects);
            return;
        }
        Overlay::Confirm(_) => {
            actions::on_confirm_key(model, key, effects);
            return;
        }
        Overlay::None => {}
    }
    if let Some(action) = keymap::lookup(model.view.kind(), key) {
        if let (Action::GotoTab, Key::Char(c)) = (action, key)
            && let Some(tab) = detail::Tab::from_digit(c)
        {
            show_tab(model, tab, effects);
        }
        run_action(model, action, effects);
    } else if let (View::Host { host }, Key::Char(c)) = (&model.view, key) {
        actions::custom_key(model, *host, c, effects);
    }
}

fn on_input_key(model: &mut Model, key: Key) {
    let Some(input) = model.input.as_mut() else {
        return;
    };
    let (Input::Filter(text) | Input::Search(text)) = input;
    match key {
        Key::Char(c) => text.push(c),
        Key::Backspace => {
            text.pop();
        }
        Key::Enter => {
            if let Some(Input::Search(s)) = model.input.take() {
                start_search(model, s);
            } else {
                model.input = None;
            }
            return;
        }
        Key::Esc => {
            if matches!(model.input.take(), Some(Input::Filter(_))) {
                model.filter.clear();
                clamp_cursors(model);
            }
            return;
        }
        _ => return,
    }
    // Filters apply as they are typed.
    if let Some(Input::Filter(s)) = &model.input {
        model.filter = s.clone();
        model.fleet_cursor = 0;
        model.host_cursor = 0;
        model.host_header = false;
        model.jobs_cursor = 0;
        model.timeline_cursor = 0;
    }
}

fn start_search(model: &mut Model, needle: String) {
    let Some(pane) = model.logs.as_mut() else {
        return;
    };
    pane.ring.set_search(&needle);
    pane.search = needle;
    pane.current_match = None;
    if pane.search.is_empty() {
        return;
    }
    let from = pane.ring.end_seq().checked_sub(1 + pane.scroll);
    match pane.ring.find(from, false) {
        Some(seq) => show_match(pane, seq, model.size.1),
        None => {
            let text = format!("no match for {:?}", pane.search);
            model.flash(Level::Warn, text);
        }
    }
}

fn show_match(pane: &mut LogPane, seq: u64, height: u16) {
    pane.current_match = Some(seq);
    pane.follow = false;
    let half = u64::from(height.saturating_sub(10) / 2);
    let below = pane.ring.end_seq().saturating_sub(seq + 1);
    pane.scroll = below.saturating_sub(half);
}

impl Model {
    /// What the palette offers here: actions, the custom actions of the host on screen,
    /// host jumps.
    pub fn palette_entries(&self) -> Vec<palette::Entry> {
        let customs: Vec<(usize, String, String)> = match &self.view {
            View::Host { host } | View::Container { host, .. } | View::Stack { host, .. } => self
                .hosts[*host]
                .stacks
                .iter()
                .flat_map(|st| {
                    st.actions
                        .iter()
                        .map(|a| (*host, st.name.clone(), a.name.clone()))
                })
                .collect(),
            _ => Vec::new(),
        };
        let names: Vec<&str> = self.hosts.iter().map(|h| h.name.as_str()).collect();
        palette::entries(&names, &customs)
    }
}

fn on_palette_key(model: &mut Model, key: Key, effects: &mut Vec<Effect>) {
    let all = model.palette_entries();
    let Overlay::Palette(p) = &mut model.overlay else {
        return;
    };
    let matches = palette::matching(all, &p.input);
    match key {
        Key::Esc => model.overlay = Overlay::None,
        Key::Char(c) => {
            p.input.push(c);
            p.selected = 0;
        }
        Key::Backspace => {
            p.input.pop();
            p.selected = 0;
        }
        Key::Up | Key::BackTab | Key::Ctrl('p') => p.selected = p.selected.saturating_sub(1),
        Key::Down | Key::Tab | Key::Ctrl('n') => {
            p.selected = (p.selected + 1).min(matches.len().saturating_sub(1));
        }
        Key::Enter => {
            let chosen = matches.get(p.selected).cloned();
            let typed = std::mem::take(&mut p.input);
            model.overlay = Overlay::None;
            match chosen.map(|e| e.command) {
                Some(Command::Run(action)) => run_action(model, action, effects),
                Some(Command::GotoHost(i)) => goto_host(model, i, effects),
                Some(Command::Custom { host, stack, name }) => {
                    let action = model.hosts.get(host).and_then(|h| {
                        h.stacks
                            .iter()
                            .find(|s| s.name == stack)
                            .and_then(|s| s.actions.iter().find(|a| a.name == name))
                            .cloned()
                    });
                    if let Some(a) = action {
                        actions::custom(model, host, &stack, &a, effects);
                    }
                }
                None => model.flash(Level::Warn, format!("no command matches {typed:?}")),
            }
        }
        _ => {}
    }
}

fn goto_host(model: &mut Model, host: usize, effects: &mut Vec<Effect>) {
    if host >= model.hosts.len() {
        return;
    }
    leave_container(model, effects);
    model.view = View::Host { host };
    model.host_cursor = 0;
    model.host_header = false;
    model.filter.clear();
    if let Some(pos) = model.visible_hosts().iter().position(|&i| i == host) {
        model.fleet_cursor = pos;
    }
}

/// Leaves a container's log or a stack's logs for their host's view, stopping the log.
/// A sample's reboot or disk crossing, into the timeline and (through the runtime) the
/// host's store.
fn host_facts(
    model: &mut Model,
    host: usize,
    metrics: &host::Metrics,
    at: Timestamp,
    effects: &mut Vec<Effect>,
) {
    let Some(h) = model.hosts.get(host) else {
        return;
    };
    // The boot the timeline knows matters only until a sample has told this console its
    // own: looked up once, not at every sample of every host.
    let last_boot = if h.facts.as_ref().and_then(|s| s.boot).is_none() {
        model
            .timeline
            .iter()
            .find(|e| e.host == h.name && e.kind == "boot")
            .map(|e| e.ns)
    } else {
        None
    };
    let (name, limits) = (h.name.clone(), h.limits);
    let Some(h) = model.hosts.get_mut(host) else {
        return;
    };
    let events = timeline::host_facts(&name, &mut h.facts, last_boot, metrics, at, &limits);
    if !events.is_empty() {
        model.add_events(events.clone());
        model.dirty = true;
        effects.push(Effect::KeepEvents { events });
    }
}

/// `Enter` on a timeline line: its container's log, paused at that moment.
fn open_event(model: &mut Model, effects: &mut Vec<Effect>) {
    let Some(e) = model
        .timeline_list()
        .get(model.timeline_cursor)
        .copied()
        .cloned()
    else {
        return;
    };
    let Some(host) = model.hosts.iter().position(|h| h.name == e.host) else {
        model.flash(
            Level::Info,
            format!("{} is not in the inventory now", e.host),
        );
        return;
    };
    let found =
        e.id.as_ref()
            .and_then(|id| model.hosts[host].containers.iter().find(|c| &c.id == id));
    let Some(c) = found else {
        let why = match (&e.id, &e.subject) {
            (Some(_), Some(name)) => {
                format!("{name} is gone from {}: its log went with it", e.host)
            }
            _ => "this event has no container log to open".to_string(),
        };
        model.flash(Level::Info, why);
        return;
    };
    let id = c.id.clone();
    let mut pane = LogPane::new(host, id.clone());
    pane.moment = Some(e.time());
    model.logs = Some(pane);
    model.detail = Some(detail::DetailPane::new(host, id.clone()));
    effects.push(Effect::FollowLogs {
        host,
        id: id.clone(),
    });
    model.view = View::Container { host, id };
    ask_detail(model, true, effects);
}

fn leave_container(model: &mut Model, effects: &mut Vec<Effect>) {
    match &model.view {
        View::Container { host, id } => {
            effects.push(Effect::StopLogs {
                host: *host,
                id: id.clone(),
            });
        }
        View::Stack { host, project } => {
            effects.push(Effect::StopStack {
                host: *host,
                project: project.clone(),
            });
        }
        _ => return,
    }
    if let View::Container { host, .. } | View::Stack { host, .. } = model.view {
        model.view = View::Host { host };
        model.logs = None;
        model.detail = None;
    }
}

/// Opens the logs of the compose project of the selected container (in the host view) or
/// of the container shown: every service's, together.
fn open_stack(model: &mut Model, effects: &mut Vec<Effect>) {
    let (host, project) = match &model.view {
        View::Host { host } => (
            *host,
            model.cursor_container().map(|(_, c)| c.project.clone()),
        ),
        View::Container { host, id } => (
            *host,
            model.hosts[*host]
                .containers
                .iter()
                .find(|c| &c.id == id)
                .map(|c| c.project.clone()),
        ),
        View::Stack { .. } => return,
        _ => {
            model.flash(Level::Info, "a stack's logs: open a host first");
            return;
        }
    };
    let project = match project {
        None => return model.flash(Level::Info, "no container selected"),
        Some(None) => {
            return model.flash(Level::Info, "this container is not in a compose project");
        }
        Some(Some(p)) => p,
    };
    // Its containers in the host view's order: by service name.
    let h = &model.hosts[host];
    let sources: Vec<(String, String)> = h
        .groups("")
        .into_iter()
        .filter(|g| g.project.as_deref() == Some(project.as_str()))
        .flat_map(|g| g.containers)
        .map(|i| {
            (
                h.containers[i].display_name().to_string(),
                h.containers[i].id.clone(),
            )
        })
        .collect();
    leave_container(model, effects);
    let services = sources.iter().map(|(s, _)| s.clone()).collect();
    model.logs = Some(LogPane::for_stack(host, project.clone(), services));
    effects.push(Effect::FollowStack {
        host,
        project: project.clone(),
        sources,
    });
    model.view = View::Stack { host, project };
}

fn run_action(model: &mut Model, action: Action, effects: &mut Vec<Effect>) {
    let page = model.page();
    match action {
        Action::Quit => actions::quit(model),
        Action::Help => model.overlay = Overlay::Help(0),
        Action::Problems => model.overlay = Overlay::Problems { cursor: 0 },
        Action::SortWorst => {
            // Keep the selected host selected across the re-order.
            let selected = model.visible_hosts().get(model.fleet_cursor).copied();
            model.sort_worst = !model.sort_worst;
            if let Some(pos) =
                selected.and_then(|h| model.visible_hosts().iter().position(|&i| i == h))
            {
                model.fleet_cursor = pos;
            }
            let how = if model.sort_worst {
                "worst host first"
            } else {
                "inventory order"
            };
            model.flash(Level::Info, format!("fleet sorted: {how}"));
        }
        Action::Palette => model.overlay = Overlay::Palette(Palette::default()),
        Action::Filter => {
            if model.view.kind() == ViewKind::Container {
                return run_action(model, Action::Search, effects);
            }
            model.input = Some(Input::Filter(model.filter.clone()));
        }
        Action::Search => {
            show_tab(model, detail::Tab::Logs, effects);
            if model.logs.is_some() {
                model.input = Some(Input::Search(String::new()));
            } else {
                model.flash(
                    Level::Info,
                    "search works in a container's log: open one first",
                );
            }
        }
        Action::Up => move_cursor(model, -1),
        Action::Down => move_cursor(model, 1),
        Action::PageUp => move_cursor(model, -(page as i64)),
        Action::PageDown => move_cursor(model, page as i64),
        Action::Top => move_cursor(model, i64::MIN / 2),
        Action::Bottom => move_cursor(model, i64::MAX / 2),
        Action::Open => match model.view.clone() {
            View::Fleet => {
                if let Some(&host) = model.visible_hosts().get(model.fleet_cursor) {
                    model.view = View::Host { host };
                    model.host_cursor = 0;
                    model.host_header = false;
                    model.filter.clear();
                }
            }
            View::Host { .. } if model.host_header => open_stack(model, effects),
            View::Host { host } => {
                if let Some((_, c)) = model.selected_container() {
                    let id = c.id.clone();
                    model.logs = Some(LogPane::new(host, id.clone()));
                    model.detail = Some(detail::DetailPane::new(host, id.clone()));
                    effects.push(Effect::FollowLogs {
                        host,
                        id: id.clone(),
                    });
                    model.view = View::Container { host, id };
                    ask_detail(model, true, effects);
                } else {
                    model.flash(Level::Info, "no container selected");
                }
            }
            View::Container { .. } | View::Stack { .. } | View::Job(_) => {}
            View::Jobs => {
                if let Some(&r) = model.job_list().get(model.jobs_cursor) {
                    model.view = View::Job(r);
                    model.job_scroll = 0;
                }
            }
            View::Timeline { .. } => open_event(model, effects),
        },
        Action::Back => match model.view.clone() {
            View::Fleet => {
                if model.filter.is_empty() {
                    multi::clear(model);
                }
                model.filter.clear();
                clamp_cursors(model);
            }
            View::Host { .. } => {
                if !model.filter.is_empty() {
                    model.filter.clear();
                } else {
                    model.view = View::Fleet;
                }
            }
            View::Container { .. } | View::Stack { .. } => leave_container(model, effects),
            View::Job(JobRef::Host(host)) => model.view = View::Host { host },
            View::Job(JobRef::History(_)) => model.view = View::Jobs,
            View::Jobs => {
                if !model.filter.is_empty() {
                    model.filter.clear();
                } else {
                    model.view = View::Fleet;
                }
            }
            View::Timeline { host } => {
                if !model.filter.is_empty() {
                    model.filter.clear();
                } else {
                    model.view = match host {
                        Some(host) => View::Host { host },
                        None => View::Fleet,
                    };
                }
            }
        },
        Action::GoFleet => {
            leave_container(model, effects);
            model.view = View::Fleet;
            model.filter.clear();
        }
        Action::NextHost | Action::PrevHost => {
            let n = model.hosts.len();
            let current = match &model.view {
                View::Host { host } | View::Container { host, .. } | View::Stack { host, .. } => {
                    *host
                }
                _ => return,
            };
            if n > 1 {
                let next = if action == Action::NextHost {
                    (current + 1) % n
                } else {
                    (current + n - 1) % n
                };
                goto_host(model, next, effects);
            }
        }
        Action::SearchNext | Action::SearchPrev => {
            show_tab(model, detail::Tab::Logs, effects);
            let height = model.size.1;
            let mut missing = None;
            if let Some(pane) = model.logs.as_mut() {
                if pane.search.is_empty() {
                    missing = Some("no search yet: press / to search".to_string());
                } else {
                    // `n` goes to older lines, like less after a backwards search from the end.
                    let forward = action == Action::SearchPrev;
                    let from = pane
                        .current_match
                        .or_else(|| pane.ring.end_seq().checked_sub(1 + pane.scroll));
                    match pane.ring.find(from, forward) {
                        Some(seq) => show_match(pane, seq, height),
                        None => missing = Some(format!("no match for {:?}", pane.search)),
                    }
                }
            }
            if let Some(text) = missing {
                model.flash(Level::Warn, text);
            }
        }
        Action::TogglePause => {
            if let Some(pane) = model.logs.as_mut() {
                pane.follow = !pane.follow;
                if pane.follow {
                    pane.scroll = 0;
                }
            }
        }
        Action::Backup => actions::ask(model, actions::Ask::Backup, effects),
        Action::Deploy => actions::ask(model, actions::Ask::Deploy, effects),
        Action::Migrate => actions::ask(model, actions::Ask::Migrate, effects),
        Action::Rollback => actions::releases(model, effects),
        Action::Restart => actions::ask(model, actions::Ask::Restart, effects),
        Action::StopStart => actions::ask(model, actions::Ask::StopStart, effects),
        Action::PauseUnpause => actions::ask(model, actions::Ask::PauseUnpause, effects),
        Action::Kill => actions::ask(model, actions::Ask::Kill, effects),
        Action::Remove => actions::ask(model, actions::Ask::Remove, effects),
        Action::RestartStack => actions::ask(model, actions::Ask::RestartStack, effects),
        Action::CancelJob => actions::cancel(model),
        Action::Mark => multi::toggle_mark(model),
        Action::DeployMarked => multi::ask(model),
        Action::StopDeploys => multi::ask_stop(model),
        Action::Timeline => {
            let host = match model.view {
                View::Fleet | View::Jobs | View::Job(JobRef::History(_)) => None,
                _ => actions::current_host(model),
            };
            leave_container(model, effects);
            model.view = View::Timeline { host };
            model.timeline_cursor = 0;
            model.filter.clear();
        }
        Action::Shell => actions::shell(model, false, effects),
        Action::HostShell => actions::shell(model, true, effects),
        Action::Jobs => {
            leave_container(model, effects);
            let host = match model.view {
                View::Host { host } => Some(host),
                _ => None,
            };
            match host {
                Some(h) if model.hosts[h].job.is_some() => {
                    model.view = View::Job(JobRef::Host(h));
                    model.job_scroll = 0;
                }
                _ => {
                    model.view = View::Jobs;
                    model.jobs_cursor = 0;
                    model.filter.clear();
                }
            }
        }
        Action::Answer => {
            let Some(host) = actions::current_host(model) else {
                return;
            };
            match model.hosts.get(host).and_then(|h| h.question.clone()) {
                Some(HostQuestion::UnknownKey { fingerprint }) => {
                    model.overlay = Overlay::Confirm(Confirm::TrustHostKey { host, fingerprint })
                }
                Some(HostQuestion::Passphrase { path, .. }) => {
                    model.overlay = Overlay::Passphrase {
                        host,
                        path,
                        input: Secret::default(),
                    }
                }
                None => model.flash(Level::Info, "this host is not waiting for an answer"),
            }
        }
        Action::StackLogs => open_stack(model, effects),
        Action::ServiceFilter => {
            if let Some(pane) = model.logs.as_mut() {
                pane.next_service();
            }
        }
        Action::NextTab => {
            let tab = model.detail.as_ref().map(|p| p.tab.step(1));
            if let Some(tab) = tab {
                show_tab(model, tab, effects);
            }
        }
        Action::PrevTab => {
            let tab = model.detail.as_ref().map(|p| p.tab.step(-1));
            if let Some(tab) = tab {
                show_tab(model, tab, effects);
            }
        }
        // A digit names the tab: `on_key` opens it (the palette does not offer this).
        Action::GotoTab => {}
        Action::Reveal => {
            if let Some(pane) = model.detail.as_mut() {
                pane.reveal = !pane.reveal;
                let text = if pane.reveal {
                    "secret values shown until you leave this container (v masks them)"
                } else {
                    "secret values masked"
                };
                model.flash(Level::Info, text);
            }
        }
        Action::FollowEnd => {
            show_tab(model, detail::Tab::Logs, effects);
            if let Some(pane) = model.logs.as_mut() {
                pane.follow = true;
                pane.scroll = 0;
            }
            model.job_scroll = 0;
        }
    }
}

fn move_cursor(model: &mut Model, delta: i64) {
    match &model.view {
        View::Fleet => {
            let n = model.visible_hosts().len();
            model.fleet_cursor = step(model.fleet_cursor, delta, n);
        }
        View::Host { host } => {
            let groups = model
                .hosts
                .get(*host)
                .map(|h| h.groups(&model.filter))
                .unwrap_or_default();
            let n: usize = groups.iter().map(|g| g.containers.len()).sum();
            // Each group's first container, by its place in the cursor's count.
            let firsts: Vec<usize> = groups
                .iter()
                .scan(0, |at, g| {
                    let first = *at;
                    *at += g.containers.len();
                    Some(first)
                })
                .collect();
            let first_of_group = firsts.contains(&model.host_cursor);
            match delta {
                // One row up from a group's first container: its project's row.
                -1 if !model.host_header && first_of_group && n > 0 => model.host_header = true,
                -1 if model.host_header => {
                    if model.host_cursor > 0 {
                        model.host_header = false;
                        model.host_cursor -= 1;
                    }
                }
                1 if model.host_header => model.host_header = false,
                _ => {
                    model.host_header = false;
                    model.host_cursor = step(model.host_cursor, delta, n);
                }
            }
        }
        View::Jobs => {
            let n = model.job_list().len();
            model.jobs_cursor = step(model.jobs_cursor, delta, n);
        }
        View::Timeline { .. } => {
            let n = model.timeline_list().len();
            model.timeline_cursor = step(model.timeline_cursor, delta, n);
        }
        View::Job(r) => {
            let lines = model.job(*r).map_or(0, |j| j.output.len());
            let max = lines.saturating_sub(1) as i64;
            model.job_scroll = (model.job_scroll as i64)
                .saturating_sub(delta)
                .clamp(0, max.max(0)) as u64;
        }
        View::Container { .. } | View::Stack { .. } => {
            if let Some(pane) = model.detail.as_mut().filter(|p| {
                p.tab != detail::Tab::Logs && matches!(model.view, View::Container { .. })
            }) {
                let max = pane.rows().saturating_sub(1) as i64;
                pane.scroll = (pane.scroll as i64).saturating_add(delta).clamp(0, max) as usize;
            } else if let Some(pane) = model.logs.as_mut() {
                let max = pane.ring.len().saturating_sub(1) as i64;
                let scroll = (pane.scroll as i64)
                    .saturating_sub(delta)
                    .clamp(0, max.max(0));
                pane.scroll = scroll as u64;
                pane.follow = scroll == 0 && delta > 0 && pane.follow;
                if delta < 0 {
                    pane.follow = false;
                }
            }
        }
    }
}

fn step(cursor: usize, delta: i64, len: usize) -> usize {
    if len == 0 {
        return 0;
    }
    (cursor as i64)
        .saturating_add(delta)
        .clamp(0, len as i64 - 1) as usize
}

fn clamp_cursors(model: &mut Model) {
    let hosts = model.visible_hosts().len();
    model.fleet_cursor = model.fleet_cursor.min(hosts.saturating_sub(1));
    if let View::Host { host } = model.view {
        let n = model
            .hosts
            .get(host)
            .map_or(0, |h| h.visible_containers(&model.filter).len());
        model.host_cursor = model.host_cursor.min(n.saturating_sub(1));
        // A project row is only above its group's first container.
        if model.host_header {
            let mut at = 0;
            let first = model.hosts.get(host).is_some_and(|h| {
                h.groups(&model.filter).iter().any(|g| {
                    let hit = at == model.host_cursor;
                    at += g.containers.len();
                    hit
                })
            });
            model.host_header &= first;
        }
    }
}
