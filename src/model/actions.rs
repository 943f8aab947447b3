//! Asking for jobs and following them: which stack a key means, the confirmation that
//! names host, stack and action (typed out for a production host), and the job's events
//! folded into the host's job and the history.

use super::host::RunState;
use super::job::{
    ActionInfo, ContainerOp, HISTORY_LEN, Job, JobEvent, JobKind, JobRequest, Signal, StepState,
};
use super::preflight::{Item, Report, Shown, Topic, Verdict, must_type};
use super::{Confirm, Effect, HostConn, JobRef, Key, Level, Model, Overlay, View};

/// The host an action is about: the one on screen, or the fleet's selected row.
pub(super) fn current_host(model: &Model) -> Option<usize> {
    match &model.view {
        View::Host { host } | View::Container { host, .. } | View::Stack { host, .. } => {
            Some(*host)
        }
        View::Job(JobRef::Host(host)) => Some(*host),
        View::Fleet => model.visible_hosts().get(model.fleet_cursor).copied(),
        View::Timeline { host } => *host,
        View::Job(JobRef::History(_)) | View::Jobs => None,
    }
}

/// `R`: the releases picker of the stack a deploy would go to. Reading the history changes
/// nothing, so it opens on a read-only host too; rolling back from it is refused there.
pub(super) fn releases(model: &mut Model, effects: &mut Vec<Effect>) {
    let Some(host) = current_host(model) else {
        model.flash(Level::Info, "open a host first");
        return;
    };
    if !model.hosts[host].conn.connected() {
        let why = format!("{} is not connected", model.hosts[host].name);
        model.flash(Level::Warn, why);
        return;
    }
    match pick_stack(model, host, "a deploy recipe", |s| s.deploy.is_some()) {
        Ok(st) => {
            let stack = st.name.clone();
            super::picker::open(model, host, stack, effects);
        }
        Err(why) => model.flash(Level::Info, why),
    }
}

/// Why a job may not start on this host now, if it may not.
pub(super) fn refusal(model: &Model, host: usize, mutating: bool) -> Option<String> {
    let h = model.hosts.get(host)?;
    if mutating && model.read_only {
        return Some("read-only: actions that change hosts are turned off".into());
    }
    if mutating && h.read_only {
        return Some(format!(
            "read-only: the inventory marks {} read_only",
            h.name
        ));
    }
    if h.job_running() {
        return Some(format!(
            "a job is already running on {}: J shows it",
            h.name
        ));
    }
    if !h.conn.connected() {
        return Some(format!("{} is not connected", h.name));
    }
    None
}

/// The kinds of request the keys make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ask {
    Deploy,
    Migrate,
    Restart,
    RestartStack,
    Backup,
    /// Stop a running container, start one that is not.
    StopStart,
    /// Pause a running container, unpause a paused one.
    PauseUnpause,
    Kill,
    Remove,
}

/// The stack a key means: the selected container's, when it qualifies, else the host's
/// only stack that does.
fn pick_stack<'m>(
    model: &'m Model,
    host: usize,
    what: &str,
    fits: impl Fn(&super::StackInfo) -> bool,
) -> Result<&'m super::StackInfo, String> {
    let h = &model.hosts[host];
    if let View::Host { host: shown } = model.view
        && shown == host
        && let Some((_, c)) = model.selected_container()
        && let Some(st) = h.stack_of(c)
        && fits(st)
    {
        return Ok(st);
    }
    let fitting: Vec<&super::StackInfo> = h.stacks.iter().filter(|s| fits(s)).collect();
    match fitting.as_slice() {
        [one] => Ok(one),
        [] => Err(format!(
            "no stack on {} has {what} in the inventory",
            h.name
        )),
        _ => Err(format!(
            "several stacks on {} have {what}: select one of its containers first",
            h.name
        )),
    }
}

pub(super) fn ask(model: &mut Model, what: Ask, effects: &mut Vec<Effect>) {
    let Some(host) = current_host(model) else {
        model.flash(Level::Info, "open a host first");
        return;
    };
    if let Some(why) = refusal(model, host, true) {
        model.flash(Level::Warn, why);
        return;
    }
    let h = &model.hosts[host];
    let made = match what {
        Ask::Deploy => {
            pick_stack(model, host, "a deploy recipe", |s| s.deploy.is_some()).map(|st| {
                let mut details = vec![
                    super::preflight::STEP_LABEL.to_string(),
                    "record the image IDs in use (for a rollback)".into(),
                ];
                details.extend(st.deploy.clone().unwrap_or_default());
                (st.name.clone(), JobKind::Deploy, details)
            })
        }
        Ask::Migrate => {
            pick_stack(model, host, "a migrate recipe", |s| s.migrate.is_some()).map(|st| {
                let details = st.migrate.clone().unwrap_or_default();
                (st.name.clone(), JobKind::Migrate, details)
            })
        }
        Ask::RestartStack => pick_stack(model, host, "a stack", |_| true).map(|st| {
            let details = vec![format!(
                "restart every container of {}, one after the other (Docker API)",
                st.name
            )];
            (st.name.clone(), JobKind::RestartStack, details)
        }),
        Ask::Restart => match (&model.view, model.selected_container()) {
            (View::Host { .. }, Some((_, c))) => {
                let stack = h.stack_of(c).map(|s| s.name.clone()).unwrap_or_default();
                let details = vec![format!(
                    "docker restart {} (Docker API: SIGTERM, 10 s, then SIGKILL; then start)",
                    c.name
                )];
                Ok((
                    stack,
                    JobKind::Restart {
                        id: c.id.clone(),
                        name: c.display_name().to_string(),
                    },
                    details,
                ))
            }
            _ => Err("select a container in the host view first".into()),
        },
        Ask::StopStart | Ask::PauseUnpause | Ask::Kill | Ask::Remove => {
            match (&model.view, model.selected_container()) {
                // By its container name, which the audit log keeps unambiguous.
                (View::Host { .. }, Some((_, c))) => lifecycle(what, &c.state, c.display_name())
                    .map(|op| {
                        let stack = h.stack_of(c).map(|s| s.name.clone()).unwrap_or_default();
                        let name = c.name.clone();
                        let details = vec![op.detail(&name)];
                        let kind = JobKind::Container {
                            op,
                            id: c.id.clone(),
                            name,
                        };
                        (stack, kind, details)
                    }),
                _ => Err("select a container in the host view first".into()),
            }
        }
        Ask::Backup => {
            let now = model.now.as_second();
            let pick = h
                .backups
                .iter()
                .filter(|b| b.recipe.is_some())
                .max_by_key(|b| (b.verdict.severity(), b.newest_age(now).unwrap_or(i64::MAX)));
            match pick {
                Some(b) => Ok((
                    b.stack.clone(),
                    JobKind::Backup {
                        set: b.name.clone(),
                    },
                    vec![b.recipe.clone().unwrap_or_default()],
                )),
                None if h.backups.is_empty() => {
                    Err("no backup sets listed for this host (yet)".into())
                }
                None => Err(
                    "these backup sets have no pg_dump or file_copy recipe: opsdeck only watches them"
                        .into(),
                ),
            }
        }
    };
    match made {
        Ok((stack, kind, details)) => {
            let typed = h.production.then(String::new);
            // A deploy's pre-flight is asked at once; its report fills the dialog in.
            let preflight = (kind == JobKind::Deploy).then(|| {
                model.preflights += 1;
                let id = model.preflights;
                effects.push(Effect::Preflight {
                    host,
                    id,
                    stack: stack.clone(),
                });
                Shown::Checking { id }
            });
            let request = JobRequest {
                stack,
                kind,
                opts: Default::default(),
            };
            model.overlay = Overlay::Confirm(Confirm::Job {
                host,
                request,
                details,
                typed,
                preflight,
            });
        }
        Err(why) => model.flash(Level::Info, why),
    }
}

/// Which of Docker's calls a lifecycle key means for a container in this state.
fn lifecycle(what: Ask, state: &RunState, name: &str) -> Result<ContainerOp, String> {
    match (what, state) {
        (Ask::StopStart, RunState::Running | RunState::Restarting | RunState::Paused) => {
            Ok(ContainerOp::Stop)
        }
        (Ask::StopStart, RunState::Created | RunState::Exited { .. } | RunState::Dead) => {
            Ok(ContainerOp::Start)
        }
        (Ask::PauseUnpause, RunState::Running) => Ok(ContainerOp::Pause),
        (Ask::PauseUnpause, RunState::Paused) => Ok(ContainerOp::Unpause),
        (Ask::PauseUnpause, _) => Err(format!("{name} is not running: nothing to pause")),
        (Ask::Kill, RunState::Running | RunState::Restarting | RunState::Paused) => {
            Ok(ContainerOp::Kill(Signal::Term))
        }
        (Ask::Kill, _) => Err(format!("{name} is not running: nothing to signal")),
        (Ask::Remove, RunState::Created | RunState::Exited { .. } | RunState::Dead) => {
            Ok(ContainerOp::Remove)
        }
        (Ask::Remove, _) => Err(format!(
            "{name} is running: stop it first (only a stopped container is removed)"
        )),
        (_, state) => Err(format!("{name} is {}: try again", state.docker_word())),
    }
}

/// A custom action's key in the host view.
pub(super) fn custom_key(model: &mut Model, host: usize, key: char, effects: &mut Vec<Effect>) {
    let Some(h) = model.hosts.get(host) else {
        return;
    };
    let found = h.stacks.iter().find_map(|st| {
        st.actions
            .iter()
            .find(|a| a.key == Some(key))
            .map(|a| (st.name.clone(), a.clone()))
    });
    if let Some((stack, action)) = found {
        custom(model, host, &stack, &action, effects);
    }
}

/// A custom action by stack and name (its key, or the palette).
pub(super) fn custom(
    model: &mut Model,
    host: usize,
    stack: &str,
    action: &ActionInfo,
    effects: &mut Vec<Effect>,
) {
    if let Some(why) = refusal(model, host, action.dangerous) {
        model.flash(Level::Warn, why);
        return;
    }
    let request = JobRequest {
        stack: stack.to_string(),
        kind: JobKind::Custom {
            name: action.name.clone(),
        },
        opts: Default::default(),
    };
    if action.dangerous {
        let mut details = action.steps.clone();
        if let Some(d) = &action.description {
            details.insert(0, d.clone());
        }
        let typed = model.hosts[host].production.then(String::new);
        model.overlay = Overlay::Confirm(Confirm::Job {
            host,
            request,
            details,
            typed,
            preflight: None,
        });
    } else {
        let steps = action.steps.clone();
        start(model, host, request, steps, effects);
    }
}

/// Creates the host's job (shown at once) and asks its worker to run it.
fn start(
    model: &mut Model,
    host: usize,
    request: JobRequest,
    steps: Vec<String>,
    effects: &mut Vec<Effect>,
) {
    let h = &mut model.hosts[host];
    let mut job = Job::new(&h.name, &request.stack, &request.action(), steps, model.now);
    job.user = model.user.clone();
    if let JobKind::Backup { set } = &request.kind {
        job.set = Some(set.clone());
    }
    h.job = Some(job);
    super::leave_container(model, effects);
    model.view = View::Job(JobRef::Host(host));
    model.job_scroll = 0;
    effects.push(Effect::RunJob { host, request });
}

pub(super) fn on_confirm_key(model: &mut Model, key: Key, effects: &mut Vec<Effect>) {
    let Overlay::Confirm(confirm) = &mut model.overlay else {
        return;
    };
    // A kill's signal: Tab (or ← →) chooses, in both kinds of confirmation.
    if let Confirm::Job {
        request:
            JobRequest {
                kind:
                    JobKind::Container {
                        op: ContainerOp::Kill(signal),
                        name,
                        ..
                    },
                ..
            },
        details,
        ..
    } = confirm
        && matches!(key, Key::Tab | Key::BackTab | Key::Left | Key::Right)
    {
        *signal = signal.cycle(matches!(key, Key::Tab | Key::Right));
        *details = vec![ContainerOp::Kill(*signal).detail(name)];
        return;
    }
    // Typing a production host's name, or `force`: every character is input, Enter
    // decides.
    if let Confirm::Job {
        host,
        typed: Some(text),
        preflight,
        ..
    } = confirm
    {
        let host = *host;
        match key {
            Key::Char(c) if text.chars().count() < 200 => text.push(c),
            Key::Backspace => {
                text.pop();
            }
            Key::Esc => model.overlay = Overlay::None,
            Key::Enter => {
                if let Some(why) = preflight.as_ref().and_then(Shown::not_ready) {
                    model.flash(Level::Warn, why);
                    return;
                }
                let (name, production) = model
                    .hosts
                    .get(host)
                    .map_or(("", false), |h| (h.name.as_str(), h.production));
                let want = must_type(name, production, preflight.as_ref()).unwrap_or_default();
                if *text == want {
                    accept(model, effects);
                } else {
                    let msg = if want == name {
                        format!("type the host name {name} exactly, or Esc to cancel")
                    } else {
                        format!(
                            "type {want:?} exactly to deploy despite the warnings, or Esc to cancel"
                        )
                    };
                    model.flash(Level::Warn, msg);
                }
            }
            _ => {}
        }
        return;
    }
    let waiting = match confirm {
        Confirm::Job {
            preflight: Some(p), ..
        } => p.not_ready(),
        _ => None,
    };
    match key {
        Key::Char('y') | Key::Char('Y') if waiting.is_some() => {
            model.flash(Level::Warn, waiting.unwrap_or_default());
        }
        Key::Char('y') | Key::Char('Y') => accept(model, effects),
        Key::Char('n') | Key::Char('N') | Key::Esc | Key::Char('q') => {
            model.overlay = Overlay::None
        }
        _ => {}
    }
}

fn accept(model: &mut Model, effects: &mut Vec<Effect>) {
    let Overlay::Confirm(confirm) = std::mem::replace(&mut model.overlay, Overlay::None) else {
        return;
    };
    match confirm {
        Confirm::TrustHostKey { host, fingerprint } => {
            if let Some(h) = model.hosts.get_mut(host) {
                h.question = None;
                h.conn = HostConn::Connecting;
            }
            effects.push(Effect::AcceptHostKey { host, fingerprint });
        }
        Confirm::Job {
            host,
            mut request,
            details,
            preflight,
            ..
        } => {
            // The host may have changed while the dialog was open.
            if let Some(why) = refusal(model, host, true) {
                model.flash(Level::Warn, why);
                return;
            }
            if let Some(why) = preflight.as_ref().and_then(Shown::not_ready) {
                model.flash(Level::Warn, why);
                return;
            }
            // The operator typed `force`: the job's own pre-flight goes on past warnings.
            request.opts.force |= preflight.as_ref().is_some_and(Shown::warns);
            start(model, host, request, details, effects);
        }
        Confirm::CancelJob { host } => {
            if let Some(job) = model.hosts.get_mut(host).and_then(|h| h.job.as_mut())
                && job.running()
            {
                job.cancelling = true;
                effects.push(Effect::CancelJob { host });
            }
        }
        Confirm::Quit { .. } => model.should_quit = true,
        // answered by `multi::on_confirm_key`
        Confirm::Batch { .. } => {}
    }
}

/// `e` (a shell in the selected container, or the one whose log is open) and `S` (a shell
/// on the host): refused in read-only mode, where a shell could change anything.
pub(super) fn shell(model: &mut Model, on_host: bool, effects: &mut Vec<Effect>) {
    let Some(host) = current_host(model) else {
        model.flash(Level::Info, "open a host first");
        return;
    };
    let h = &model.hosts[host];
    let refused = if model.read_only {
        Some("read-only: shells are turned off, as every action that changes hosts".into())
    } else if h.read_only {
        Some(format!(
            "read-only: the inventory marks {} read_only, shells included",
            h.name
        ))
    } else if !h.conn.connected() {
        Some(format!("{} is not connected", h.name))
    } else {
        None
    };
    if let Some(why) = refused {
        model.flash(Level::Warn, why);
        return;
    }
    let container = if on_host {
        None
    } else {
        let shown = match &model.view {
            View::Host { .. } => model.selected_container().map(|(_, c)| c),
            View::Container { id, .. } => h.containers.iter().find(|c| &c.id == id),
            _ => None,
        };
        let Some(c) = shown else {
            model.flash(Level::Info, "select a container in the host view first");
            return;
        };
        if !matches!(c.state, RunState::Running) {
            let name = c.display_name().to_string();
            let why = match c.state {
                RunState::Paused => format!("{name} is paused: p unpauses it"),
                _ => format!("{name} is not running: s starts it"),
            };
            model.flash(Level::Info, why);
            return;
        }
        let stack = h.stack_of(c).map(|s| s.name.clone()).unwrap_or_default();
        Some((
            c.id.clone(),
            c.name.clone(),
            c.display_name().to_string(),
            stack,
        ))
    };
    let where_ = match &container {
        Some((_, _, shown, _)) => format!("a shell in {shown} on {}", h.name),
        None => format!("a shell on {}", h.name),
    };
    let (container, stack) = match container {
        Some((id, name, _, stack)) => (Some((id, name)), stack),
        None => (None, String::new()),
    };
    effects.push(Effect::Shell {
        host,
        container,
        stack,
    });
    model.flash(Level::Info, format!("opening {where_}…"));
}

/// `x` in a job's pane.
pub(super) fn cancel(model: &mut Model) {
    match model.view {
        View::Job(JobRef::Host(host)) if model.hosts[host].job_running() => {
            model.overlay = Overlay::Confirm(Confirm::CancelJob { host });
        }
        _ => model.flash(Level::Info, "no running job here to cancel"),
    }
}

/// `q` with jobs running asks first: quitting stops their steps on the hosts.
pub(super) fn quit(model: &mut Model) {
    let running: Vec<String> = model
        .hosts
        .iter()
        .filter_map(|h| h.job.as_ref().filter(|j| j.running()))
        .map(|j| format!("{} on {}", j.action, j.host))
        .collect();
    if running.is_empty() {
        model.should_quit = true;
    } else {
        model.overlay = Overlay::Confirm(Confirm::Quit { running });
    }
}

/// A pre-flight's answer: into the confirmation that asked for it, if it is still open.
pub(super) fn on_preflight(
    model: &mut Model,
    host: usize,
    id: u64,
    stack: &str,
    report: Result<Report, String>,
) {
    let Overlay::Confirm(Confirm::Job {
        host: shown_host,
        request,
        typed,
        preflight: Some(shown),
        ..
    }) = &mut model.overlay
    else {
        return;
    };
    if *shown_host != host || request.stack != stack || *shown != (Shown::Checking { id }) {
        return;
    }
    let report = report.unwrap_or_else(|why| Report {
        items: vec![Item::new(
            Topic::Preflight,
            Verdict::Refuse,
            format!(
                "the pre-flight could not run: {}",
                crate::sanitize::line(&why)
            ),
        )],
    });
    if report.verdict() == Verdict::Warn && typed.is_none() {
        *typed = Some(String::new());
    }
    *shown = Shown::Done(report);
    model.dirty = true;
}

pub(super) fn on_job_event(model: &mut Model, host: usize, event: JobEvent) {
    if let JobEvent::Recorded(record) = &event {
        // Every job and backup is a line of its host's timeline.
        model.add_events(super::timeline::from_record(record));
        model.dirty = true;
    }
    let now = model.now;
    let viewing = model.view == View::Job(JobRef::Host(host));
    let Some(h) = model.hosts.get_mut(host) else {
        return;
    };
    let Some(job) = h.job.as_mut() else {
        return;
    };
    model.dirty = true;
    match event {
        JobEvent::Planned { steps } => {
            job.steps = Job::new("", "", "", steps, now).steps;
        }
        JobEvent::StepStarted { index } => {
            if let Some(s) = job.steps.get_mut(index) {
                s.state = StepState::Running;
            }
        }
        JobEvent::Output(lines) => {
            let n = lines.len() as u64;
            for l in lines {
                job.push_line(l);
            }
            if viewing && model.job_scroll > 0 {
                // Keep a scrolled-back viewport on the same lines.
                model.job_scroll =
                    (model.job_scroll + n).min(job.output.len().saturating_sub(1) as u64);
            }
        }
        JobEvent::StepFinished {
            index,
            exit,
            ok,
            millis,
        } => {
            if let Some(s) = job.steps.get_mut(index) {
                s.state = if ok {
                    StepState::Done { exit, millis }
                } else {
                    StepState::Failed { exit, millis }
                };
            }
        }
        JobEvent::Progress { bytes } => job.bytes = bytes,
        // The console shows the job from its events; the history reads the audit log.
        JobEvent::Recorded(_) => {}
        JobEvent::Finished(outcome) => {
            for s in &mut job.steps {
                if matches!(s.state, StepState::Pending | StepState::Running) {
                    s.state = StepState::Skipped;
                }
            }
            job.outcome = Some(outcome.clone());
            job.ended = Some(now);
            job.cancelling = false;
            let done = job.clone();
            let (name, action) = (done.host.clone(), done.action.clone());
            model.history.insert(0, done);
            model.history.truncate(HISTORY_LEN);
            if let View::Job(JobRef::History(i)) = &mut model.view {
                *i += 1;
            }
            match outcome {
                Ok(summary) => {
                    model.flash(Level::Info, format!("{name}: {action} done: {summary}"))
                }
                Err(why) => model.flash(Level::Error, format!("{name}: {action} FAILED: {why}")),
            }
        }
    }
}
