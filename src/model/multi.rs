//! Deploys to several hosts in one go, from the fleet view: `Space` marks hosts, `d`
//! deploys the marked ones after one confirmation, one host at a time, in inventory
//! order. The sequencing lives here, in the reducer: a queue of hosts whose next one
//! starts (as an [`Effect::RunJob`]) when the job of the one before it has finished well;
//! a failure, a refusal or a stop leaves the rest not started.

use jiff::Timestamp;

use super::job::{Job, JobKind, JobRequest};
use super::{Confirm, Effect, Key, Level, Model, Overlay};

/// Where a host stands in a multi-deploy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Turn {
    /// Its turn has not come yet.
    Waiting,
    Running,
    Done,
    /// Its job failed, was cancelled, or could not start; why.
    Failed(String),
    /// An earlier host stopped the run.
    NotStarted,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchHost {
    pub host: usize,
    /// The stack deployed (the host's only stack with a deploy recipe).
    pub stack: String,
    /// The recipe's steps as written, for the job shown before its plan arrives.
    pub steps: Vec<String>,
    pub turn: Turn,
    pub started: Option<Timestamp>,
    pub ended: Option<Timestamp>,
}

/// A multi-deploy, running or just ended (shown until dismissed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// In the order they run.
    pub hosts: Vec<BatchHost>,
    /// The operator asked to stop: the running host's job is being cancelled, and no other
    /// host starts whatever its outcome.
    pub stopping: bool,
}

impl Batch {
    pub fn running(&self) -> bool {
        self.hosts
            .iter()
            .any(|h| matches!(h.turn, Turn::Waiting | Turn::Running))
    }

    /// The host whose job runs now, with its place (0-based).
    pub fn current(&self) -> Option<(usize, &BatchHost)> {
        self.hosts
            .iter()
            .enumerate()
            .find(|(_, h)| h.turn == Turn::Running)
    }

    pub fn turn_of(&self, host: usize) -> Option<&Turn> {
        self.hosts.iter().find(|h| h.host == host).map(|h| &h.turn)
    }

    pub fn count(&self, f: impl Fn(&Turn) -> bool) -> usize {
        self.hosts.iter().filter(|h| f(&h.turn)).count()
    }

    /// Seconds a host's deploy took (or has taken so far), as of `now`.
    pub fn secs(h: &BatchHost, now: Timestamp) -> Option<i64> {
        let start = h.started?;
        Some((h.ended.unwrap_or(now).as_second() - start.as_second()).max(0))
    }
}

/// The one-character mark of a host in the fleet's marker column: its turn in the
/// multi-deploy shown, else `*` when marked. Plain characters, so it reads without colour.
pub fn marker(model: &Model, host: usize) -> Option<(&'static str, MarkKind)> {
    if let Some(turn) = model.batch.as_ref().and_then(|b| b.turn_of(host)) {
        return Some(match turn {
            Turn::Waiting => ("·", MarkKind::Waiting),
            Turn::Running => ("▶", MarkKind::Running),
            Turn::Done => ("✔", MarkKind::Done),
            Turn::Failed(_) => ("✖", MarkKind::Failed),
            Turn::NotStarted => ("–", MarkKind::Waiting),
        });
    }
    model
        .marked
        .contains(&host)
        .then_some(("*", MarkKind::Marked))
}

/// How a mark is drawn (its colour role).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkKind {
    Marked,
    Waiting,
    Running,
    Done,
    Failed,
}

/// Whether the fleet shows its marker column: something is marked, or a multi-deploy is
/// shown.
pub fn shows_marks(model: &Model) -> bool {
    !model.marked.is_empty() || model.batch.is_some()
}

/// One line on the marks or the multi-deploy, for the fleet table's bottom edge.
pub fn status_line(model: &Model) -> Option<String> {
    if let Some(b) = &model.batch {
        let n = b.hosts.len();
        let done = b.count(|t| *t == Turn::Done);
        if let Some((i, cur)) = b.current() {
            let name = host_name(model, cur.host);
            let cancelling = model
                .hosts
                .get(cur.host)
                .and_then(|h| h.job.as_ref())
                .is_some_and(|j| j.cancelling);
            let doing = if b.stopping || cancelling {
                "stopping"
            } else {
                "deploying"
            };
            return Some(format!(
                "deploy {}/{n}: {doing} {name} · {done} done · x stops",
                i + 1
            ));
        }
        if b.running() {
            return Some(format!("deploy of {n} hosts: starting…"));
        }
        let mut text = format!("deploy of {n} hosts: {done} done");
        if let Some(failed) = b.hosts.iter().find(|h| matches!(h.turn, Turn::Failed(_))) {
            text.push_str(&format!(", {} failed", host_name(model, failed.host)));
        }
        let left = b.count(|t| *t == Turn::NotStarted);
        if left > 0 {
            text.push_str(&format!(", {left} not started"));
        }
        text.push_str(" · Esc clears");
        return Some(text);
    }
    let n = model.marked.len();
    (n > 0).then(|| format!("{n} marked · d deploys them one at a time · Esc clears"))
}

fn host_name(model: &Model, host: usize) -> &str {
    model.hosts.get(host).map_or("?", |h| h.name.as_str())
}

/// `Space` in the fleet: marks the selected host, or unmarks it.
pub(super) fn toggle_mark(model: &mut Model) {
    if model.batch.as_ref().is_some_and(Batch::running) {
        model.flash(
            Level::Info,
            "a multi-deploy is running: mark hosts once it has ended (x stops it)",
        );
        return;
    }
    // A multi-deploy that has ended makes way for the next.
    model.batch = None;
    let Some(&host) = model.visible_hosts().get(model.fleet_cursor) else {
        return;
    };
    if let Some(pos) = model.marked.iter().position(|&h| h == host) {
        model.marked.remove(pos);
    } else {
        model.marked.push(host);
        model.marked.sort_unstable();
    }
}

/// `Esc` in the fleet with no filter: the marks go, else an ended multi-deploy.
pub(super) fn clear(model: &mut Model) {
    if !model.marked.is_empty() {
        model.marked.clear();
        model.flash(Level::Info, "marks cleared");
    } else if model.batch.as_ref().is_some_and(|b| !b.running()) {
        model.batch = None;
    }
}

/// `d` in the fleet: the marked hosts' deploys, after one confirmation.
pub(super) fn ask(model: &mut Model) {
    if model.batch.as_ref().is_some_and(Batch::running) {
        model.flash(Level::Info, "a multi-deploy is running: x stops it");
        return;
    }
    if model.marked.is_empty() {
        model.flash(
            Level::Info,
            "Space marks hosts to deploy one after the other; d in a host view deploys one",
        );
        return;
    }
    let mut hosts = Vec::new();
    let mut problems = Vec::new();
    for &host in &model.marked {
        if let Some(why) = super::actions::refusal(model, host, true) {
            problems.push(why);
            continue;
        }
        let h = &model.hosts[host];
        let fitting: Vec<&super::StackInfo> =
            h.stacks.iter().filter(|s| s.deploy.is_some()).collect();
        match fitting.as_slice() {
            [st] => hosts.push(BatchHost {
                host,
                stack: st.name.clone(),
                steps: st.deploy.clone().unwrap_or_default(),
                turn: Turn::Waiting,
                started: None,
                ended: None,
            }),
            [] => problems.push(format!(
                "no stack on {} has a deploy recipe in the inventory",
                h.name
            )),
            _ => problems.push(format!(
                "several stacks on {} have a deploy recipe: deploy it from its host view",
                h.name
            )),
        }
    }
    if let Some(first) = problems.first() {
        let more = match problems.len() {
            1 => String::new(),
            n => format!(" (and {} more)", n - 1),
        };
        model.flash(Level::Warn, format!("not deployed: {first}{more}"));
        return;
    }
    let production = hosts.iter().any(|b| model.hosts[b.host].production);
    model.overlay = Overlay::Confirm(Confirm::Batch {
        batch: Batch {
            hosts,
            stopping: false,
        },
        typed: production.then(String::new),
    });
}

/// What must be typed to deploy to production hosts: their names, comma-separated, as
/// `opsdeck run --hosts` asks.
pub fn production_word(model: &Model, batch: &Batch) -> String {
    batch
        .hosts
        .iter()
        .filter(|b| model.hosts.get(b.host).is_some_and(|h| h.production))
        .map(|b| host_name(model, b.host))
        .collect::<Vec<_>>()
        .join(",")
}

/// Keys in the multi-deploy's confirmation.
pub(super) fn on_confirm_key(model: &mut Model, key: Key, effects: &mut Vec<Effect>) {
    let word = match &model.overlay {
        Overlay::Confirm(Confirm::Batch { batch, .. }) => production_word(model, batch),
        _ => return,
    };
    let Overlay::Confirm(Confirm::Batch { typed, .. }) = &mut model.overlay else {
        return;
    };
    if let Some(text) = typed {
        match key {
            Key::Char(c) => text.push(c),
            Key::Backspace => {
                text.pop();
            }
            Key::Esc => model.overlay = Overlay::None,
            Key::Enter => {
                if *text == word {
                    accept(model, effects);
                } else {
                    let msg = format!("type {word} exactly, or Esc to cancel");
                    model.flash(Level::Warn, msg);
                }
            }
            _ => {}
        }
        return;
    }
    match key {
        Key::Char('y') | Key::Char('Y') => accept(model, effects),
        Key::Char('n') | Key::Char('N') | Key::Esc | Key::Char('q') => {
            model.overlay = Overlay::None
        }
        _ => {}
    }
}

fn accept(model: &mut Model, effects: &mut Vec<Effect>) {
    let Overlay::Confirm(Confirm::Batch { batch, .. }) =
        std::mem::replace(&mut model.overlay, Overlay::None)
    else {
        return;
    };
    model.marked.clear();
    model.batch = Some(batch);
    start_next(model, effects);
}

/// Starts the next waiting host's deploy, or ends the run: when it was asked to stop, or
/// the host cannot take a job now (refused: the run stops there).
fn start_next(model: &mut Model, effects: &mut Vec<Effect>) {
    let now = model.now;
    let Some(batch) = model.batch.as_ref() else {
        return;
    };
    let Some(i) = batch.hosts.iter().position(|h| h.turn == Turn::Waiting) else {
        return end(model);
    };
    if batch.stopping {
        return end(model);
    }
    let host = batch.hosts[i].host;
    let refused = super::actions::refusal(model, host, true);
    let Some(batch) = model.batch.as_mut() else {
        return;
    };
    let b = &mut batch.hosts[i];
    b.started = Some(now);
    if let Some(why) = refused {
        b.ended = Some(now);
        b.turn = Turn::Failed(format!("not started: {why}"));
        return end(model);
    }
    b.turn = Turn::Running;
    let request = JobRequest {
        stack: b.stack.clone(),
        kind: JobKind::Deploy,
        opts: Default::default(),
    };
    let mut steps = vec!["record the image IDs in use (for a rollback)".to_string()];
    steps.extend(b.steps.iter().cloned());
    let user = model.user.clone();
    let h = &mut model.hosts[host];
    let mut job = Job::new(&h.name, &request.stack, &request.action(), steps, now);
    job.user = user;
    h.job = Some(job);
    effects.push(Effect::RunJob { host, request });
}

/// A host's job has finished (`asked_to_stop`: it was being cancelled). When it was the
/// multi-deploy's running host, the next starts, or the run ends.
pub(super) fn job_finished(
    model: &mut Model,
    host: usize,
    asked_to_stop: bool,
    effects: &mut Vec<Effect>,
) {
    let now = model.now;
    let outcome = model
        .hosts
        .get(host)
        .and_then(|h| h.job.as_ref())
        .and_then(|j| j.outcome.clone());
    let Some(batch) = model.batch.as_mut() else {
        return;
    };
    let Some(b) = batch
        .hosts
        .iter_mut()
        .find(|b| b.host == host && b.turn == Turn::Running)
    else {
        return;
    };
    b.ended = Some(now);
    b.turn = match outcome {
        Some(Ok(_)) => Turn::Done,
        Some(Err(why)) => Turn::Failed(why),
        None => Turn::Failed("ended without an outcome".into()),
    };
    if asked_to_stop {
        batch.stopping = true;
    }
    if b.turn == Turn::Done {
        start_next(model, effects);
    } else {
        end(model);
    }
}

/// The run is over: hosts still waiting are not started; the flash sums it up.
fn end(model: &mut Model) {
    let now = model.now;
    let Some(batch) = model.batch.as_mut() else {
        return;
    };
    for b in &mut batch.hosts {
        if b.turn == Turn::Waiting {
            b.turn = Turn::NotStarted;
        }
    }
    let parts: Vec<String> = batch
        .hosts
        .iter()
        .map(|b| {
            let name = model.hosts.get(b.host).map_or("?", |h| h.name.as_str());
            let secs = Batch::secs(b, now).map_or(String::new(), |s| format!(" {s}s"));
            match &b.turn {
                Turn::Done => format!("✔ {name}{secs}"),
                Turn::Failed(_) => format!("✖ {name}{secs}"),
                _ => format!("– {name} not started"),
            }
        })
        .collect();
    let all = batch.hosts.iter().all(|b| b.turn == Turn::Done);
    let level = if all { Level::Info } else { Level::Error };
    let n = batch.hosts.len();
    model.flash(level, format!("deploy of {n} hosts: {}", parts.join(", ")));
}

/// `x` in the fleet while a multi-deploy runs: asks to stop its running host's job.
pub(super) fn ask_stop(model: &mut Model) {
    match model.batch.as_ref().and_then(Batch::current) {
        Some((_, b)) => {
            let host = b.host;
            model.overlay = Overlay::Confirm(Confirm::CancelJob { host });
        }
        None => model.flash(Level::Info, "no multi-deploy is running"),
    }
}
