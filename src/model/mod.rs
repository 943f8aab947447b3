//! The console's state as plain data, and `update`, the only place it changes.
//!
//! No I/O, no clock, no async here: time arrives in `Msg::Tick`, results of remote work
//! arrive as messages, and what should happen outside comes back as `Effect`s. That is
//! what lets every screen be tested from a hand-built `Model`.

mod actions;
pub mod backup;
pub mod check;
pub mod host;
pub mod job;
pub mod keymap;
pub mod logs;
pub mod palette;
pub mod problems;
pub mod series;
pub mod snapshot;

use jiff::Timestamp;

pub use host::{
    Container, DockerState, Group, Health, HostConn, HostQuestion, HostState, Metrics, RunState,
};
pub use job::{Job, JobEvent, JobKind, JobRecord, JobRequest, StackInfo};
pub use keymap::{Action, Key, ViewKind};
pub use logs::{LogLine, LogRing, Stream};
use palette::{Command, Palette};
pub use problems::{Limits, Problem, Severity};
pub use snapshot::{Changed, HostSnapshot, Part};

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
    /// One job: a host's current (or last) job, or one from the history.
    Job(JobRef),
    /// Recent jobs, newest first.
    Jobs,
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
            View::Job(_) => ViewKind::Job,
            View::Jobs => ViewKind::Jobs,
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
        /// `Some` on a production host: what has been typed of its name so far.
        typed: Option<String>,
    },
    /// Stop a host's running job.
    CancelJob {
        host: usize,
    },
    /// Quit while jobs run: their steps are stopped on the hosts.
    Quit {
        running: Vec<String>,
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
        }
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
    /// Recent jobs from the audit log, oldest first, read at start-up.
    History(Vec<JobRecord>),
    /// SIGTERM, SIGHUP: leave cleanly.
    Shutdown,
}

/// Work for the runtime: the model asks, workers do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    FollowLogs {
        host: usize,
        id: String,
    },
    StopLogs {
        host: usize,
        id: String,
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
}

#[derive(Debug, Clone)]
pub struct Model {
    pub hosts: Vec<HostState>,
    pub view: View,
    pub fleet_cursor: usize,
    /// The fleet view lists the worst host first instead of in inventory order.
    pub sort_worst: bool,
    pub host_cursor: usize,
    pub filter: String,
    pub input: Option<Input>,
    pub overlay: Overlay,
    pub logs: Option<LogPane>,
    /// Finished jobs, newest first: this session's and the audit log's.
    pub history: Vec<Job>,
    pub jobs_cursor: usize,
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
            sort_worst: false,
            host_cursor: 0,
            filter: String::new(),
            input: None,
            overlay: Overlay::None,
            logs: None,
            history: Vec::new(),
            jobs_cursor: 0,
            job_scroll: 0,
            flash: None,
            read_only: false,
            now,
            size: (80, 24),
            source: String::new(),
            user: String::new(),
            dirty: true,
            should_quit: false,
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
        let View::Host { host } = self.view else {
            return None;
        };
        let h = self.hosts.get(host)?;
        let idx = *h.visible_containers(&self.filter).get(self.host_cursor)?;
        Some((idx, &h.containers[idx]))
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
    if changed.conn && h.conn != snap.conn {
        if snap.conn == HostConn::Up {
            h.question = None;
            h.key_alert = None;
        }
        h.conn = snap.conn.clone();
        dirty = true;
    }
    if let (true, Some((at, metrics))) = (changed.metrics, &snap.metrics) {
        h.apply_metrics(*at, metrics.clone());
        h.conn = HostConn::Up;
        dirty = true;
    }
    if changed.docker && h.docker != snap.docker {
        h.docker = snap.docker.clone();
        dirty = true;
    }
    let mut listed = false;
    if let (true, Some((at, containers))) = (changed.containers, &snap.containers) {
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
    model.dirty |= dirty;
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
        Msg::Tick { now } => {
            let before = model.now.as_second();
            model.now = now;
            if model.flash.as_ref().is_some_and(|f| f.until <= now) {
                model.flash = None;
                model.dirty = true;
            }
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
        } => on_snapshot(model, host, &snapshot, changed),
        Msg::LogLines { host, id, lines } => {
            if let Some(pane) = model.logs.as_mut().filter(|p| p.host == host && p.id == id) {
                let n = lines.len() as u64;
                for l in lines {
                    pane.ring.push(l);
                }
                if !pane.follow {
                    // Keep the paused viewport on the same lines.
                    pane.scroll += n;
                    let max = pane.ring.len().saturating_sub(1) as u64;
                    pane.scroll = pane.scroll.min(max);
                }
                model.dirty = true;
            }
        }
        Msg::LogEnded { host, id, reason } => {
            if let Some(pane) = model.logs.as_mut().filter(|p| p.host == host && p.id == id) {
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
        Msg::Job { host, event } => actions::on_job_event(model, host, event),
        Msg::History(records) => {
            let mut jobs: Vec<Job> = records.iter().rev().map(Job::from_record).collect();
            jobs.truncate(job::HISTORY_LEN);
            model.history = jobs;
            model.dirty = true;
        }
        Msg::Shutdown => {
            model.should_quit = true;
        }
    }
    effects
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
        Overlay::Confirm(_) => {
            actions::on_confirm_key(model, key, effects);
            return;
        }
        Overlay::None => {}
    }
    if let Some(action) = keymap::lookup(model.view.kind(), key) {
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
        model.jobs_cursor = 0;
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
            View::Host { host } | View::Container { host, .. } => self.hosts[*host]
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
    model.filter.clear();
    if let Some(pos) = model.visible_hosts().iter().position(|&i| i == host) {
        model.fleet_cursor = pos;
    }
}

fn leave_container(model: &mut Model, effects: &mut Vec<Effect>) {
    if let View::Container { host, id } = &model.view {
        effects.push(Effect::StopLogs {
            host: *host,
            id: id.clone(),
        });
        model.view = View::Host { host: *host };
        model.logs = None;
    }
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
                    model.filter.clear();
                }
            }
            View::Host { host } => {
                if let Some((_, c)) = model.selected_container() {
                    let id = c.id.clone();
                    model.logs = Some(LogPane::new(host, id.clone()));
                    effects.push(Effect::FollowLogs {
                        host,
                        id: id.clone(),
                    });
                    model.view = View::Container { host, id };
                } else {
                    model.flash(Level::Info, "no container selected");
                }
            }
            View::Container { .. } | View::Job(_) => {}
            View::Jobs => {
                if let Some(&r) = model.job_list().get(model.jobs_cursor) {
                    model.view = View::Job(r);
                    model.job_scroll = 0;
                }
            }
        },
        Action::Back => match model.view.clone() {
            View::Fleet => {
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
            View::Container { .. } => leave_container(model, effects),
            View::Job(JobRef::Host(host)) => model.view = View::Host { host },
            View::Job(JobRef::History(_)) => model.view = View::Jobs,
            View::Jobs => {
                if !model.filter.is_empty() {
                    model.filter.clear();
                } else {
                    model.view = View::Fleet;
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
                View::Host { host } | View::Container { host, .. } => *host,
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
        Action::Backup => actions::ask(model, actions::Ask::Backup),
        Action::Deploy => actions::ask(model, actions::Ask::Deploy),
        Action::Migrate => actions::ask(model, actions::Ask::Migrate),
        Action::Rollback => actions::ask(model, actions::Ask::Rollback),
        Action::Restart => actions::ask(model, actions::Ask::Restart),
        Action::StopStart => actions::ask(model, actions::Ask::StopStart),
        Action::PauseUnpause => actions::ask(model, actions::Ask::PauseUnpause),
        Action::Kill => actions::ask(model, actions::Ask::Kill),
        Action::Remove => actions::ask(model, actions::Ask::Remove),
        Action::RestartStack => actions::ask(model, actions::Ask::RestartStack),
        Action::CancelJob => actions::cancel(model),
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
        Action::FollowEnd => {
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
            let n = model
                .hosts
                .get(*host)
                .map_or(0, |h| h.visible_containers(&model.filter).len());
            model.host_cursor = step(model.host_cursor, delta, n);
        }
        View::Jobs => {
            let n = model.job_list().len();
            model.jobs_cursor = step(model.jobs_cursor, delta, n);
        }
        View::Job(r) => {
            let lines = model.job(*r).map_or(0, |j| j.output.len());
            let max = lines.saturating_sub(1) as i64;
            model.job_scroll = (model.job_scroll as i64)
                .saturating_sub(delta)
                .clamp(0, max.max(0)) as u64;
        }
        View::Container { .. } => {
            if let Some(pane) = model.logs.as_mut() {
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
    }
}
