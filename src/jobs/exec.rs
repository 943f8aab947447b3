//! Running a [`Plan`]: the stack's lock, then each step in order with its output streamed
//! line by line, stop at the first failure, cancel on request, one audit record at the
//! end. The console's workers and `opsdeck run` both run jobs through [`execute`].
//!
//! Remote commands are the inventory's argument vectors, quoted word by word, run by the
//! [`script::STEP`] wrapper in the stack's directory. Docker API steps (restart, image
//! tags, health) go through bollard over the host's own connection.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bollard::Docker;
use tokio::sync::{mpsc, watch};

use super::compose;
use super::plan::{Plan, StepKind};
use super::runner::{ProcEvent, Process, RunError, Runner};
use super::{lock, release_steps, script, steps};
use crate::checks::Tunnel;
use crate::collect::backups::remote_dir;
use crate::config::{ComposeCommand, Stack};
use crate::jobs::runner::ExecOutput;
use crate::model::job::{JOB_OUTPUT_LINES, JobEvent, JobLine, JobRecord, LineKind, StepRecord};

/// Longest output line kept; a progress bar without newlines must not grow without end.
const MAX_LINE: usize = 4096;

/// What a job runs with: the host's runner and, over the same connection, Docker and a
/// tunnel for `via = "ssh"` checks.
pub struct Context<'a, R: Runner> {
    pub runner: &'a R,
    pub docker: Option<Docker>,
    pub tunnel: Option<Arc<dyn Tunnel>>,
    /// `DOCKER_HOST` for the commands (the inventory's `docker_socket`), else the host's.
    pub docker_host: Option<String>,
    /// The audit log to append to; `None` keeps no record (tests).
    pub audit: Option<PathBuf>,
    /// Who runs it, for the lock and the audit record.
    pub user: String,
}

/// Ask a running job to stop: send `Some(why)`.
pub type CancelSender = watch::Sender<Option<String>>;
pub type CancelReceiver = watch::Receiver<Option<String>>;

pub fn cancel_channel() -> (CancelSender, CancelReceiver) {
    watch::channel(None)
}

/// Every job running in this process, so that opsdeck quitting (`q`, or a signal) can stop
/// them all, each with the reason its audit line gives, without asking every host worker.
/// Once stopping, it stays so: a job that starts while opsdeck quits is stopped at once.
pub(super) struct Registry {
    next: u64,
    jobs: Vec<(u64, CancelSender)>,
    stopping: Option<String>,
}

impl Registry {
    pub(super) const fn new() -> Registry {
        Registry {
            next: 0,
            jobs: Vec::new(),
            stopping: None,
        }
    }

    fn add(&mut self, stop: CancelSender) -> u64 {
        if let Some(why) = &self.stopping {
            stop.send_replace(Some(why.clone()));
        }
        self.next += 1;
        self.jobs.push((self.next, stop));
        self.next
    }

    fn remove(&mut self, id: u64) {
        self.jobs.retain(|(i, _)| *i != id);
    }

    fn stop_all(&mut self, why: &str) -> usize {
        self.stopping = Some(why.to_string());
        for (_, stop) in &self.jobs {
            stop.send_replace(Some(why.to_string()));
        }
        self.jobs.len()
    }
}

static RUNNING: std::sync::Mutex<Registry> = std::sync::Mutex::new(Registry::new());

fn lock_registry(r: &std::sync::Mutex<Registry>) -> std::sync::MutexGuard<'_, Registry> {
    r.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Stops every job of this process the way `x` stops one (the host stops the running
/// step), and every job started from now on; `why` is the reason their records give
/// (`cancelled: SIGTERM`). Returns how many were running.
pub fn stop_all(why: &str) -> usize {
    lock_registry(&RUNNING).stop_all(why)
}

/// Jobs of this process that have not yet written their audit record.
pub fn running() -> usize {
    lock_registry(&RUNNING).jobs.len()
}

/// A job's place in the registry, left when it is dropped.
struct Registered<'a> {
    registry: &'a std::sync::Mutex<Registry>,
    id: u64,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        lock_registry(self.registry).remove(self.id);
    }
}

/// Why a job should stop now: the operator said so, opsdeck is quitting, or its recipe's
/// time is up.
#[derive(Clone)]
pub(super) struct Stop {
    cancel: CancelReceiver,
    /// From the registry: opsdeck quits.
    quit: CancelReceiver,
    deadline: Option<(tokio::time::Instant, Duration)>,
}

impl Stop {
    /// Why someone asked the job to stop, if anyone did (the operator, or opsdeck quitting).
    fn asked(&self) -> Option<String> {
        self.cancel
            .borrow()
            .clone()
            .or_else(|| self.quit.borrow().clone())
    }

    pub(super) fn reason(&self) -> Option<String> {
        if let Some(why) = self.asked() {
            return Some(why);
        }
        match self.deadline {
            Some((at, limit)) if tokio::time::Instant::now() >= at => Some(format!(
                "timed out: the recipe's timeout of {} passed",
                crate::config::format_duration(limit)
            )),
            _ => None,
        }
    }

    /// Resolves once the job should stop, with the reason.
    pub(super) async fn wait(&mut self) -> String {
        loop {
            if let Some(why) = self.reason() {
                return why;
            }
            let deadline = self.deadline.map(|(at, _)| at);
            tokio::select! {
                _ = changed(&mut self.cancel) => {}
                _ = changed(&mut self.quit) => {}
                _ = async {
                    match deadline {
                        Some(at) => tokio::time::sleep_until(at).await,
                        None => std::future::pending::<()>().await,
                    }
                } => {}
            }
        }
    }
}

/// Resolves when the value changes; never, once nobody can change it any more.
async fn changed(rx: &mut CancelReceiver) {
    if rx.changed().await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// A runner whose commands are told to stop (their stdin closed) when the job is.
struct Stoppable<'a, R> {
    inner: &'a R,
    stop: Stop,
}

const MAX_COLLECT: usize = 8 * 1024 * 1024;

impl<R: Runner> Runner for Stoppable<'_, R> {
    async fn run(&self, command: &str) -> Result<ExecOutput, RunError> {
        let mut p = self.inner.start(command).await?;
        let mut stop = self.stop.clone();
        let mut out = ExecOutput {
            status: None,
            stdout: Vec::new(),
            stderr: Vec::new(),
        };
        let mut stopping = false;
        loop {
            tokio::select! {
                ev = p.next() => match ev {
                    Some(ProcEvent::Stdout(b)) if out.stdout.len() < MAX_COLLECT => out.stdout.extend_from_slice(&b),
                    Some(ProcEvent::Stderr(b)) if out.stderr.len() < MAX_COLLECT => out.stderr.extend_from_slice(&b),
                    Some(ProcEvent::Stdout(_) | ProcEvent::Stderr(_)) => {}
                    Some(ProcEvent::Exit(status)) => {
                        out.status = status;
                        return Ok(out);
                    }
                    Some(ProcEvent::Lost(why)) => {
                        return Err(RunError::Transport(why));
                    }
                    None => return Ok(out),
                },
                _ = stop.wait(), if !stopping => {
                    stopping = true;
                    p.close_stdin();
                }
            }
        }
    }

    async fn start(&self, command: &str) -> Result<Process, RunError> {
        self.inner.start(command).await
    }
}

/// Splits a byte stream into lines: `\n`, `\r\n` or a lone `\r` (progress output) ends a
/// line; escape sequences and controls but tab are dropped ([`crate::sanitize::text`]); an
/// endless line is cut every [`MAX_LINE`] bytes.
#[derive(Debug, Default)]
pub struct Lines {
    buf: Vec<u8>,
    after_cr: bool,
}

impl Lines {
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<String> {
        let mut out = Vec::new();
        for &b in bytes {
            match b {
                b'\n' if self.after_cr => self.after_cr = false,
                b'\n' | b'\r' => {
                    out.push(self.take());
                    self.after_cr = b == b'\r';
                }
                _ => {
                    self.after_cr = false;
                    self.buf.push(b);
                    if self.buf.len() >= MAX_LINE {
                        out.push(self.take());
                    }
                }
            }
        }
        out
    }

    /// What is left without a newline at the end.
    pub fn finish(&mut self) -> Option<String> {
        (!self.buf.is_empty()).then(|| self.take())
    }

    fn take(&mut self) -> String {
        let line = crate::sanitize::text(&String::from_utf8_lossy(&self.buf)).into_owned();
        self.buf.clear();
        line
    }
}

/// The record being written and the console being told, line by line.
///
/// A tracker dropped before its record was written (the job's task panicked, or opsdeck
/// quit before the host confirmed the step stopped) writes the record itself: every job
/// leaves its audit line, and the console hears that it ended.
pub(super) struct Tracker<'a> {
    events: &'a mpsc::Sender<JobEvent>,
    pub(super) record: JobRecord,
    unwritten: Option<Unwritten>,
    /// The release a rollback or restore goes to, once chosen.
    pub(super) chosen: Option<crate::model::releases::Release>,
}

/// What a tracker needs to write its record if the job never gets to.
struct Unwritten {
    started: Instant,
    audit: Option<PathBuf>,
    labels: Vec<String>,
    stop: Stop,
}

impl Drop for Tracker<'_> {
    fn drop(&mut self) {
        let Some(u) = self.unwritten.take() else {
            return;
        };
        let (outcome, step_outcome) = if std::thread::panicking() {
            (
                "failed: opsdeck bug: the job panicked (see opsdeck.log)".to_string(),
                "failed",
            )
        } else if let Some(why) = u.stop.asked() {
            (
                format!(
                    "cancelled: {why} (opsdeck left before the host confirmed the step stopped)"
                ),
                "cancelled",
            )
        } else {
            (
                "failed: opsdeck went away before the job ended".to_string(),
                "failed",
            )
        };
        tracing::warn!(
            "job {} of {} on {}: {outcome}",
            self.record.action,
            self.record.stack,
            self.record.host
        );
        let record = &mut self.record;
        record.duration_ms = millis(u.started.elapsed());
        record.outcome = outcome.clone();
        // The step that was running, then the ones never started.
        let done = record.steps.len();
        for (i, label) in u.labels.iter().enumerate().skip(done) {
            record.steps.push(StepRecord {
                step: label.clone(),
                exit: None,
                duration_ms: 0,
                outcome: if i == done { step_outcome } else { "skipped" }.into(),
            });
        }
        if let Some(path) = &u.audit
            && let Err(e) = super::audit::append_to(path, record)
        {
            tracing::error!("{e}");
        }
        let why = outcome
            .strip_prefix("failed: ")
            .unwrap_or(&outcome)
            .to_string();
        let _ = self
            .events
            .try_send(JobEvent::Recorded(Box::new(record.clone())));
        let _ = self.events.try_send(JobEvent::Finished(Err(why)));
    }
}

impl Tracker<'_> {
    pub(super) async fn send(&self, e: JobEvent) {
        let _ = self.events.send(e).await;
    }

    pub(super) async fn lines(&mut self, step: Option<usize>, kind: LineKind, texts: Vec<String>) {
        if texts.is_empty() {
            return;
        }
        let lines: Vec<JobLine> = texts
            .into_iter()
            .map(|text| JobLine { step, kind, text })
            .collect();
        for l in &lines {
            self.record.output.push(l.clone());
        }
        let excess = self.record.output.len().saturating_sub(JOB_OUTPUT_LINES);
        if excess > 0 {
            self.record.output.drain(..excess);
            self.record.output_dropped += excess as u64;
        }
        self.send(JobEvent::Output(lines)).await;
    }

    pub(super) async fn info(&mut self, step: Option<usize>, text: impl Into<String>) {
        self.lines(step, LineKind::Info, vec![text.into()]).await;
    }
}

/// How one step ended.
pub(super) enum StepEnd {
    Ok,
    Failed {
        exit: Option<i32>,
        why: String,
    },
    Cancelled(String),
    /// The pre-flight stopped the job before anything changed.
    Refused(String),
}

impl StepEnd {
    /// A step that failed without an exit status of its own (Docker API calls, waits).
    pub(super) fn fail(why: impl Into<String>) -> StepEnd {
        StepEnd::Failed {
            exit: None,
            why: why.into(),
        }
    }
}

/// Runs the job and returns its audit record (already appended to `ctx.audit`).
pub async fn execute<R: Runner>(
    ctx: &Context<'_, R>,
    plan: &Plan,
    events: &mpsc::Sender<JobEvent>,
    cancel: CancelReceiver,
) -> JobRecord {
    execute_in(&RUNNING, ctx, plan, events, cancel).await
}

/// [`execute`], registered in `registry` while it runs.
pub(super) async fn execute_in<R: Runner>(
    registry: &std::sync::Mutex<Registry>,
    ctx: &Context<'_, R>,
    plan: &Plan,
    events: &mpsc::Sender<JobEvent>,
    cancel: CancelReceiver,
) -> JobRecord {
    let started = Instant::now();
    let (quit_tx, quit) = cancel_channel();
    let registered = Registered {
        registry,
        id: lock_registry(registry).add(quit_tx),
    };
    let stop = Stop {
        cancel,
        quit,
        deadline: plan.timeout.map(|d| (tokio::time::Instant::now() + d, d)),
    };
    let mut t = Tracker {
        events,
        record: JobRecord::new(
            jiff::Timestamp::now().to_string(),
            ctx.user.clone(),
            &plan.host,
            &plan.stack_name,
            &plan.audit_action,
        ),
        chosen: None,
        unwritten: Some(Unwritten {
            started,
            audit: ctx.audit.clone(),
            labels: plan.labels(),
            stop: stop.clone(),
        }),
    };
    t.send(JobEvent::Planned {
        steps: plan.labels(),
    })
    .await;
    let outcome = run_locked(ctx, plan, &mut t, stop).await;
    t.unwritten = None;
    let mut record = std::mem::replace(
        &mut t.record,
        JobRecord::new(String::new(), String::new(), "", "", ""),
    );
    drop(t);
    record.duration_ms = millis(started.elapsed());
    let result = match outcome {
        Ok(made) => {
            record.outcome = "ok".into();
            let summary = made.unwrap_or_else(|| {
                format!(
                    "{} step{} in {}",
                    plan.steps.len(),
                    if plan.steps.len() == 1 { "" } else { "s" },
                    crate::config::format_duration(Duration::from_secs(
                        started.elapsed().as_secs()
                    ))
                )
            });
            record.summary = Some(summary.clone());
            Ok(summary)
        }
        Err(e) => {
            record.outcome = e.clone();
            Err(e.strip_prefix("failed: ").map(str::to_string).unwrap_or(e))
        }
    };
    if let Some(path) = &ctx.audit
        && let Err(e) = super::audit::append_to(path, &record)
    {
        let _ = events
            .send(JobEvent::Output(vec![JobLine {
                step: None,
                kind: LineKind::Err,
                text: format!("opsdeck: {e}"),
            }]))
            .await;
    }
    // Recorded: quitting need not wait for this job any more.
    drop(registered);
    let _ = events
        .send(JobEvent::Recorded(Box::new(record.clone())))
        .await;
    let _ = events.send(JobEvent::Finished(result)).await;
    record
}

/// The lock, then the steps. `Err` is the record's outcome: `failed: ...`,
/// `cancelled: ...` or `refused: ...`.
async fn run_locked<R: Runner>(
    ctx: &Context<'_, R>,
    plan: &Plan,
    t: &mut Tracker<'_>,
    stop: Stop,
) -> Result<Option<String>, String> {
    let runner = Stoppable {
        inner: ctx.runner,
        stop: stop.clone(),
    };
    let lock = match &plan.project {
        Some(project) => {
            let info = lock::lock_info(&ctx.user, &plan.action);
            match lock::lock(ctx.runner, project, &info, plan.shared_lock).await {
                Ok(guard) => {
                    t.info(None, format!("locked ~/{}", guard.file)).await;
                    Some(guard)
                }
                Err(lock::LockError::Busy(holder)) => {
                    let why = format!(
                        "{} on {} is locked by {holder}",
                        if plan.stack_name.is_empty() {
                            project.as_str()
                        } else {
                            plan.stack_name.as_str()
                        },
                        plan.host
                    );
                    t.lines(None, LineKind::Err, vec![format!("opsdeck: {why}")])
                        .await;
                    skip_from(t, plan, 0);
                    return Err(format!("refused: {why}"));
                }
                Err(lock::LockError::Failed(why)) => {
                    let why = format!("cannot take the stack's lock: {why}");
                    t.lines(None, LineKind::Err, vec![format!("opsdeck: {why}")])
                        .await;
                    skip_from(t, plan, 0);
                    return Err(format!("failed: {why}"));
                }
            }
        }
        None => None,
    };
    let result = run_steps(ctx, plan, t, stop, runner).await;
    // A job refused before it changed anything made no release.
    let refused = matches!(&result, Err(e) if e.starts_with("refused"));
    if plan.release.is_some() && !refused {
        super::release_steps::record(ctx, plan, &result, t).await;
    }
    if let Some(guard) = lock
        && !guard.release().await
    {
        t.info(
            None,
            "the lock holder did not confirm it let go (the host drops the lock when the connection ends)",
        )
        .await;
    }
    result
}

/// The steps, in order, stopping at the first that fails or at a cancel.
async fn run_steps<R: Runner>(
    ctx: &Context<'_, R>,
    plan: &Plan,
    t: &mut Tracker<'_>,
    stop: Stop,
    runner: Stoppable<'_, R>,
) -> Result<Option<String>, String> {
    let mut detected: Option<ComposeCommand> = None;
    // what the job says it achieved, when a step knows better than "N steps" (a backup)
    let mut summary: Option<String> = None;
    for (i, step) in plan.steps.iter().enumerate() {
        if let Some(why) = stop.reason() {
            skip_from(t, plan, i);
            return Err(format!("cancelled: {why}"));
        }
        t.send(JobEvent::StepStarted { index: i }).await;
        let t0 = Instant::now();
        let end = match &step.kind {
            StepKind::Run(cmd) => {
                let stack = plan.stack.as_ref();
                let argv = match stack {
                    Some(st) if cmd.is_compose() => {
                        let which = match (st.compose, detected) {
                            (ComposeCommand::Auto, None) => {
                                let d = compose::detect(&runner).await;
                                detected = Some(d);
                                d
                            }
                            (ComposeCommand::Auto, Some(d)) => d,
                            (chosen, _) => chosen,
                        };
                        compose::expand(cmd, st, which)
                    }
                    _ => cmd.argv.clone(),
                };
                let dir = stack.map_or(".", |s| stack_dir(s));
                run_command(ctx, dir, &argv, i, t, stop.clone()).await
            }
            StepKind::WaitHealthy(limit) => {
                steps::wait_healthy(ctx, plan, *limit, i, t, stop.clone()).await
            }
            StepKind::RecordImages => steps::record_images(ctx, plan, i, t, &runner).await,
            StepKind::RestoreImages => steps::restore_images(ctx, plan, i, t, &runner).await,
            StepKind::ChooseRelease { to, need_dump } => {
                release_steps::choose(ctx, plan, to.as_deref(), *need_dump, i, t).await
            }
            StepKind::Downgrade(cmds) => {
                release_steps::downgrade(ctx, plan, cmds, i, t, stop.clone()).await
            }
            StepKind::Checkout => release_steps::checkout(ctx, plan, i, t, stop.clone()).await,
            StepKind::RestoreDump(set) => {
                release_steps::restore_dump(ctx, plan, set, i, t, stop.clone()).await
            }
            StepKind::Restart { id, name } => {
                let mut stop = stop.clone();
                tokio::select! {
                    end = steps::restart(ctx, id, name, i, t) => end,
                    why = stop.wait() => StepEnd::Cancelled(why),
                }
            }
            StepKind::RestartProject => steps::restart_project(ctx, plan, i, t, stop.clone()).await,
            StepKind::Container { op, id, name } => {
                let mut stop = stop.clone();
                tokio::select! {
                    end = steps::container_op(ctx, *op, id, name, i, t) => end,
                    why = stop.wait() => StepEnd::Cancelled(why),
                }
            }
            StepKind::Preflight(settings) => {
                let stack = plan.stack.as_ref();
                super::preflight::step(ctx, stack, settings, i, t, stop.clone()).await
            }
            StepKind::Backup(set) => match &plan.stack {
                Some(st) => {
                    let (end, made) = steps::run_backup(ctx, st, set, i, t, &runner).await;
                    // a backup job's summary is its file; a deploy's stays its steps
                    if plan.steps.len() == 1 {
                        summary = made;
                    }
                    end
                }
                None => StepEnd::fail("a backup needs its stack"),
            },
        };
        let ms = millis(t0.elapsed());
        let (exit, outcome, why) = match &end {
            StepEnd::Ok => (Some(0).filter(|_| is_command(&step.kind)), "ok", None),
            StepEnd::Failed { exit, why } => (*exit, "failed", Some(why.clone())),
            StepEnd::Cancelled(why) => (None, "cancelled", Some(why.clone())),
            StepEnd::Refused(why) => (None, "refused", Some(why.clone())),
        };
        t.record.steps.push(StepRecord {
            step: step.label.clone(),
            exit,
            duration_ms: ms,
            outcome: outcome.into(),
        });
        t.send(JobEvent::StepFinished {
            index: i,
            exit,
            ok: why.is_none(),
            millis: ms,
        })
        .await;
        if let Some(why) = why {
            let n = plan.steps.len();
            t.lines(
                Some(i),
                LineKind::Err,
                vec![format!("opsdeck: step {}/{n} {outcome}: {why}", i + 1)],
            )
            .await;
            skip_from(t, plan, i + 1);
            // A job of one step needs no step number to say what failed.
            return Err(match (outcome, n) {
                ("refused", _) => format!("refused: {why}"),
                ("cancelled", 1) => format!("cancelled: {why}"),
                ("cancelled", _) => {
                    format!(
                        "cancelled: {why} (during step {}/{n}: {})",
                        i + 1,
                        step.label
                    )
                }
                (_, 1) => format!("failed: {why}"),
                _ => format!("failed: step {}/{n} ({}): {why}", i + 1, step.label),
            });
        }
    }
    Ok(summary)
}

fn is_command(kind: &StepKind) -> bool {
    matches!(kind, StepKind::Run(_))
}

fn skip_from(t: &mut Tracker<'_>, plan: &Plan, from: usize) {
    for step in plan.steps.iter().skip(from) {
        t.record.steps.push(StepRecord {
            step: step.label.clone(),
            exit: None,
            duration_ms: 0,
            outcome: "skipped".into(),
        });
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The stack's directory as the host's login shell sees it (relative to home for `~/`).
pub fn stack_dir(stack: &Stack) -> &str {
    let d = remote_dir(&stack.dir).trim_end_matches('/');
    if d.is_empty() { "/" } else { d }
}

/// One command, its output streamed, stopped (really, on the host) when the job is.
pub(super) async fn run_command<R: Runner>(
    ctx: &Context<'_, R>,
    dir: &str,
    argv: &[String],
    step: usize,
    t: &mut Tracker<'_>,
    mut stop: Stop,
) -> StepEnd {
    let mut args = vec![dir.to_string()];
    args.extend(argv.iter().cloned());
    let Some(command) = script::command(
        script::docker_host_env(ctx.docker_host.as_deref()).as_deref(),
        script::STEP,
        &args,
    ) else {
        return StepEnd::fail(
            "a word of the step cannot be passed to the host's shell (a NUL byte?)",
        );
    };
    let mut p = match ctx.runner.start(&command).await {
        Ok(p) => p,
        Err(e) => {
            return StepEnd::fail(e.to_string());
        }
    };
    let (mut out, mut err) = (Lines::default(), Lines::default());
    let mut stopped: Option<String> = None;
    let status = loop {
        tokio::select! {
            ev = p.next() => match ev {
                Some(ProcEvent::Stdout(b)) => t.lines(Some(step), LineKind::Out, out.feed(&b)).await,
                Some(ProcEvent::Stderr(b)) => t.lines(Some(step), LineKind::Err, err.feed(&b)).await,
                Some(ProcEvent::Exit(status)) => break Ok(status),
                Some(ProcEvent::Lost(why)) => break Err(why),
                None => break Err("the command's channel closed".into()),
            },
            why = stop.wait(), if stopped.is_none() => {
                t.info(Some(step), format!("stopping: {why}")).await;
                stopped = Some(why);
                p.close_stdin();
            }
        }
    };
    let rest_out: Vec<String> = out.finish().into_iter().collect();
    let rest_err: Vec<String> = err.finish().into_iter().collect();
    t.lines(Some(step), LineKind::Out, rest_out).await;
    t.lines(Some(step), LineKind::Err, rest_err).await;
    let exit = status
        .as_ref()
        .ok()
        .copied()
        .flatten()
        .and_then(|s| i32::try_from(s).ok());
    match (stopped, status) {
        (Some(why), _) => StepEnd::Cancelled(why),
        (None, Ok(Some(0))) => StepEnd::Ok,
        (None, Ok(Some(126))) => StepEnd::Failed {
            exit,
            why: format!("cannot enter the stack directory {dir}"),
        },
        (None, Ok(Some(127))) => StepEnd::Failed {
            exit,
            why: "exit status 127 (command not found on the host)".into(),
        },
        (None, Ok(Some(s))) => StepEnd::Failed {
            exit,
            why: format!("exit status {s}"),
        },
        (None, Ok(None)) => StepEnd::fail("killed by a signal"),
        (None, Err(why)) => StepEnd::Failed { exit: None, why },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::Local;
    use crate::model::job::{JobKind, JobRequest};
    use std::path::Path;
    use std::sync::Mutex;

    /// Plans action `name` of stack `app` on a local host whose home is `home`: `hello`
    /// ends at once, `sleepy` sleeps, `slow` has a step that outlives SIGTERM (so it cannot
    /// stop before its host's SIGKILL, 5 s after the stop) and a second step.
    fn plan_of(home: &Path, name: &str) -> Plan {
        std::fs::create_dir_all(home.join("app")).unwrap();
        let text = "[[host]]\nname = \"h\"\naddress = \"local\"\n[[host.stack]]\nname = \"app\"\ndir = \"~/app\"\n\
                    [[host.stack.action]]\nname = \"hello\"\nsteps = [\"true\"]\n\
                    [[host.stack.action]]\nname = \"sleepy\"\nsteps = [\"sleep 30\"]\n\
                    [[host.stack.action]]\nname = \"slow\"\nsteps = [\"sh -c 'trap : TERM; sleep 30; sleep 30'\", \"touch after\"]\n";
        let stacks = crate::config::parse_str(text, Path::new("t.toml"))
            .unwrap()
            .hosts
            .remove(0)
            .stacks;
        let req = JobRequest {
            stack: "app".into(),
            kind: JobKind::Custom { name: name.into() },
            opts: Default::default(),
        };
        super::super::plan::plan("h", &stacks, &req).unwrap()
    }

    fn audit_lines(path: &Path) -> Vec<serde_json::Value> {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    struct Boom;

    impl Runner for Boom {
        async fn run(&self, _: &str) -> Result<ExecOutput, RunError> {
            panic!("boom (a test)")
        }
        async fn start(&self, _: &str) -> Result<Process, RunError> {
            panic!("boom (a test)")
        }
    }

    #[tokio::test]
    async fn a_job_that_panics_ends_failed_with_its_record() {
        static REGISTRY: Mutex<Registry> = Mutex::new(Registry::new());
        let dir = tempfile::tempdir().unwrap();
        let audit = dir.path().join("audit.jsonl");
        let plan = plan_of(dir.path(), "hello");
        let (tx, mut rx) = mpsc::channel(100);
        let path = audit.clone();
        let task = tokio::spawn(async move {
            let ctx = Context {
                runner: &Boom,
                docker: None,
                tunnel: None,
                docker_host: None,
                audit: Some(path),
                user: "t".into(),
            };
            let (_keep, cancel) = cancel_channel();
            execute_in(&REGISTRY, &ctx, &plan, &tx, cancel).await
        });
        assert!(task.await.unwrap_err().is_panic());
        let mut last = None;
        while let Some(e) = rx.recv().await {
            last = Some(e);
        }
        match last {
            Some(JobEvent::Finished(Err(why))) => assert!(why.contains("panicked"), "{why}"),
            e => panic!("the console hears how it ended: {e:?}"),
        }
        let lines = audit_lines(&audit);
        assert_eq!(lines.len(), 1);
        assert_eq!(
            lines[0]["outcome"],
            "failed: opsdeck bug: the job panicked (see opsdeck.log)"
        );
        assert_eq!(lines[0]["steps"][0]["outcome"], "failed");
        assert!(lock_registry(&REGISTRY).jobs.is_empty());
    }

    #[tokio::test]
    async fn stopping_all_cancels_running_jobs_and_those_that_start_after() {
        static REGISTRY: Mutex<Registry> = Mutex::new(Registry::new());
        let dir = tempfile::tempdir().unwrap();
        let local = Local {
            home: Some(dir.path().to_path_buf()),
        };
        let ctx = Context {
            runner: &local,
            docker: None,
            tunnel: None,
            docker_host: None,
            audit: Some(dir.path().join("audit.jsonl")),
            user: "t".into(),
        };
        let plan = plan_of(dir.path(), "sleepy");
        let (tx, mut rx) = mpsc::channel(100);
        let (_keep, cancel) = cancel_channel();
        let job = execute_in(&REGISTRY, &ctx, &plan, &tx, cancel);
        tokio::pin!(job);
        // until its step runs
        loop {
            tokio::select! {
                r = &mut job => panic!("ended early: {r:?}"),
                Some(e) = rx.recv() => if e == (JobEvent::StepStarted { index: 0 }) { break },
            }
        }
        assert_eq!(lock_registry(&REGISTRY).stop_all("SIGTERM"), 1);
        let record = tokio::time::timeout(Duration::from_secs(20), job)
            .await
            .expect("the step stops");
        assert_eq!(record.outcome, "cancelled: SIGTERM");
        assert_eq!(record.steps[0].outcome, "cancelled");
        // a job that starts while opsdeck quits never runs a step
        let (_keep, cancel) = cancel_channel();
        let record = execute_in(&REGISTRY, &ctx, &plan, &tx, cancel).await;
        assert_eq!(record.outcome, "cancelled: SIGTERM");
        assert_eq!(record.steps[0].outcome, "skipped");
        assert!(lock_registry(&REGISTRY).jobs.is_empty());
        assert_eq!(audit_lines(&dir.path().join("audit.jsonl")).len(), 2);
    }

    #[tokio::test]
    async fn a_job_left_before_its_step_stopped_records_why() {
        static REGISTRY: Mutex<Registry> = Mutex::new(Registry::new());
        let dir = tempfile::tempdir().unwrap();
        let audit = dir.path().join("audit.jsonl");
        let plan = plan_of(dir.path(), "slow");
        let (tx, mut rx) = mpsc::channel(100);
        let (home, path) = (dir.path().to_path_buf(), audit.clone());
        let task = tokio::spawn(async move {
            let local = Local { home: Some(home) };
            let ctx = Context {
                runner: &local,
                docker: None,
                tunnel: None,
                docker_host: None,
                audit: Some(path),
                user: "t".into(),
            };
            let (_keep, cancel) = cancel_channel();
            execute_in(&REGISTRY, &ctx, &plan, &tx, cancel).await
        });
        while let Some(e) = rx.recv().await {
            if e == (JobEvent::StepStarted { index: 0 }) {
                break;
            }
        }
        // Quitting stops it, and opsdeck leaves before the step (which ignores SIGTERM)
        // could stop: on this single-threaded runtime the job gets no turn in between.
        assert_eq!(lock_registry(&REGISTRY).stop_all("SIGHUP"), 1);
        task.abort();
        assert!(task.await.unwrap_err().is_cancelled());
        let lines = audit_lines(&audit);
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert_eq!(
            lines[0]["outcome"],
            "cancelled: SIGHUP (opsdeck left before the host confirmed the step stopped)"
        );
        let steps: Vec<&str> = lines[0]["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["outcome"].as_str().unwrap())
            .collect();
        assert_eq!(steps, ["cancelled", "skipped"]);
        let mut last = None;
        while let Some(e) = rx.recv().await {
            last = Some(e);
        }
        assert!(
            matches!(&last, Some(JobEvent::Finished(Err(why))) if why.starts_with("cancelled: SIGHUP")),
            "{last:?}"
        );
        assert!(lock_registry(&REGISTRY).jobs.is_empty());
    }

    #[test]
    fn lines_split_on_newlines_and_carriage_returns() {
        let mut l = Lines::default();
        assert_eq!(l.feed(b"one\ntw"), ["one"]);
        assert_eq!(l.feed(b"o\r\nthree\rfour"), ["two", "three"]);
        assert_eq!(l.feed(b"\x1b[32mgreen\x1b[0m\n"), ["fourgreen"]);
        assert_eq!(l.finish(), None);
        l.feed(b"tail");
        assert_eq!(l.finish().as_deref(), Some("tail"));
        let long = vec![b'x'; MAX_LINE * 2 + 10];
        assert_eq!(l.feed(&long).len(), 2);
    }
}
