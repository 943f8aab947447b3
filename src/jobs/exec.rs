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
use super::{lock, script, steps};
use crate::checks::Tunnel;
use crate::collect::backups::remote_dir;
use crate::config::{ComposeCommand, Stack};
use crate::model::job::{JOB_OUTPUT_LINES, JobEvent, JobLine, JobRecord, LineKind, StepRecord};
use crate::remote::ssh::ExecOutput;

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

/// Why a job should stop now: the operator said so, or its recipe's time is up.
#[derive(Clone)]
pub(super) struct Stop {
    cancel: CancelReceiver,
    deadline: Option<(tokio::time::Instant, Duration)>,
}

impl Stop {
    pub(super) fn reason(&self) -> Option<String> {
        if let Some(why) = self.cancel.borrow().clone() {
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
                changed = self.cancel.changed() => {
                    if changed.is_err() {
                        // Nobody can cancel any more: only the deadline is left.
                        match deadline {
                            Some(at) => tokio::time::sleep_until(at).await,
                            None => std::future::pending::<()>().await,
                        }
                    }
                }
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
                        return Err(RunError::Ssh(crate::remote::ssh::SshError::Protocol(why)));
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
/// line; ANSI escapes are dropped; an endless line is cut every [`MAX_LINE`] bytes.
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
        let text = String::from_utf8_lossy(&self.buf).into_owned();
        self.buf.clear();
        crate::model::logs::strip_ansi(&text)
            .chars()
            .filter(|c| !c.is_control() || *c == '\t')
            .collect()
    }
}

/// The record being written and the console being told, line by line.
pub(super) struct Tracker<'a> {
    events: &'a mpsc::Sender<JobEvent>,
    pub(super) record: JobRecord,
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
    Failed { exit: Option<i32>, why: String },
    Cancelled(String),
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
    let started = Instant::now();
    let mut t = Tracker {
        events,
        record: JobRecord::new(
            jiff::Timestamp::now().to_string(),
            ctx.user.clone(),
            &plan.host,
            &plan.stack_name,
            &plan.audit_action,
        ),
    };
    t.send(JobEvent::Planned {
        steps: plan.labels(),
    })
    .await;
    let stop = Stop {
        cancel,
        deadline: plan.timeout.map(|d| (tokio::time::Instant::now() + d, d)),
    };
    let outcome = run_locked(ctx, plan, &mut t, stop).await;
    let mut record = t.record;
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
    let _lock = match &plan.project {
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
            StepKind::Restart { id, name } => {
                let mut stop = stop.clone();
                tokio::select! {
                    end = steps::restart(ctx, id, name, i, t) => end,
                    why = stop.wait() => StepEnd::Cancelled(why),
                }
            }
            StepKind::RestartProject => steps::restart_project(ctx, plan, i, t, stop.clone()).await,
            StepKind::Backup(set) => match &plan.stack {
                Some(st) => {
                    let (end, made) = steps::run_backup(ctx, st, set, i, t, &runner).await;
                    summary = made;
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
async fn run_command<R: Runner>(
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
