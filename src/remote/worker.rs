//! The host worker, one design for this machine and for hosts over SSH. One task owns the
//! connection and answers commands at once; everything slow runs beside it in tasks of its
//! own, each with its own deadline: the sampler (on SSH, one shell for the connection's
//! life, asked once per tick), the Docker watcher, the backup survey, the checks, the
//! followed log, and jobs. A sampler that gets no answer says the host is `stalled`; the
//! connection is declared lost when the transport closes or nothing has answered for
//! [`LOST_AFTER`], then retried with capped, jittered exponential backoff. A job outlives
//! the connection it started on: cancel always reaches it, and its end is its own to
//! report.
//!
//! What differs between a host over SSH and this machine is behind two traits:
//! [`Connector`] makes a connection ([`super::ssh_link`], [`super::local`]), and the
//! [`Link`] it returns runs commands, samples metrics, reaches Docker and tunnels checks.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
// tokio's clock, so the worker's timing can be tested with time paused.
use tokio::time::Instant;

use super::docker_watch::{DockerWatch, LogFollower, Usage};
use super::ssh::SshError;
use super::{BACKUP_EVERY, CHECK_EVERY, HostCmd, Watch};
use crate::collect::backups;
use crate::model::{HostConn, HostSnapshot, Metrics, Msg, Part, Secret};

/// The longest wait between two connection attempts, on a fleet of up to 50 hosts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// The longest wait between two connection attempts of one host in a fleet of `hosts`:
/// [`MAX_BACKOFF`], and more on a big fleet, so that its hosts that are down try about ten
/// times a second together at most (500 hosts down: every 50 s each).
pub fn max_backoff(hosts: usize) -> Duration {
    MAX_BACKOFF.max(Duration::from_millis(100) * u32::try_from(hosts).unwrap_or(u32::MAX))
}
/// A connection that lived this long was healthy: the next loss starts backoff afresh.
const HEALTHY_FOR: Duration = Duration::from_secs(60);
/// No sample for this long (and at least three refreshes): the connection is lost.
const LOST_AFTER: Duration = Duration::from_secs(12);
/// How long the first container list waits for the first metrics sample.
const FIRST_SAMPLE_WAIT: Duration = Duration::from_secs(3);
/// How long after a container event the list is read (events come in bursts).
const EVENT_SETTLE: Duration = Duration::from_millis(200);
/// How long a backup listing may take before the panel says it timed out.
const SURVEY_TIMEOUT: Duration = Duration::from_secs(20);

/// Makes connections to one host; keeps what the operator gave for it (a host key to
/// trust, a passphrase) across attempts.
pub trait Connector: Send + 'static {
    type Link: Link;
    fn connect(&mut self) -> impl Future<Output = Result<Self::Link, SshError>> + Send;
    /// The operator trusts this host key: the next attempt accepts it.
    fn accept_key(&mut self, _fingerprint: String) {}
    /// The passphrase of an encrypted identity file, for the next attempt.
    fn passphrase(&mut self, _path: String, _secret: Secret) {}
}

/// One connection to a host: runs job and survey commands ([`crate::jobs::Runner`]), and
/// gives the worker's tasks what they need of the host.
pub trait Link: crate::jobs::Runner + Send + Sync + 'static {
    type Probe: Probe;
    /// A sampler of the host's metrics and its containers' usage, for this connection.
    fn probe(self: &Arc<Self>) -> Self::Probe;
    /// Docker's API on the host at `socket`, and how to open more streams to it (logs).
    fn docker(
        self: &Arc<Self>,
        socket: &str,
    ) -> impl Future<
        Output = (
            Result<(bollard::Docker, String), String>,
            crate::docker::Socket,
        ),
    > + Send;
    /// Where `via = "ssh"` checks and jobs' checks connect through; `None` on this machine.
    fn tunnel(self: &Arc<Self>) -> Option<Arc<dyn crate::checks::Tunnel>>;
    /// The transport has closed under us.
    fn is_closed(&self) -> bool;
    /// Ends the connection politely (the console is quitting).
    fn disconnect(&self) -> impl Future<Output = ()> + Send;
    /// A shell (or a command) on the host or in a container, for the operator's terminal.
    fn shell(
        self: &Arc<Self>,
        _request: &super::shell::ShellRequest,
        _docker_host: Option<&str>,
    ) -> impl Future<Output = Result<super::shell::ShellIo, String>> + Send {
        async { Err("this host offers no shell".to_string()) }
    }
}

/// Samples one host, tick after tick.
pub trait Probe: Send + 'static {
    fn sample(&mut self) -> impl Future<Output = Result<Sampled, ProbeError>> + Send;
    /// A sample was abandoned half-way (it timed out): start afresh next time.
    fn reset(&mut self);
    /// A running container had no usage in the last sample: look for containers again
    /// (their cgroups) at the next one.
    fn rescan(&mut self) {}
    /// Whether the host's own figures are wanted (no metrics source serves them): when
    /// not, a sampler that can reads only the containers' usage.
    fn host_figures(&mut self, _wanted: bool) {}
}

/// Containers' usage, by full id (the sampler's) or by name (a metrics source's).
type UsageBy = watch::Receiver<HashMap<String, Usage>>;

/// The host's metrics, and each container's (CPU %, memory) by full id.
pub type Sampled = (Metrics, HashMap<String, Usage>);

pub enum ProbeError {
    /// The connection failed: the host is lost.
    Lost(String),
    /// Only the sampler failed (it ended, or talked nonsense): another try next tick.
    Failed(String),
}

/// Starts a worker on `connector`'s host; returns its inbox.
pub fn spawn<C: Connector>(
    watch: Watch,
    connector: C,
    tx: mpsc::Sender<Msg>,
) -> mpsc::UnboundedSender<HostCmd> {
    let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
    let (parts_tx, parts_rx) = mpsc::channel(64);
    let mut snapshot = HostSnapshot::new(!watch.backups.is_empty(), !watch.checks.is_empty());
    snapshot.awaits_source = watch
        .metrics
        .as_ref()
        .is_some_and(super::sources::Source::outside);
    tokio::spawn(snapshots(watch.host, snapshot, parts_rx, tx.clone()));
    let out = Out {
        msgs: tx,
        parts: parts_tx,
    };
    tokio::spawn(run(watch, connector, out, cmd_rx));
    cmd_tx
}

/// Where a worker's tasks report: parts of the host's snapshot, and messages that go to
/// the console as they are (log lines, jobs' events, questions for the operator).
#[derive(Clone)]
pub struct Out {
    pub msgs: mpsc::Sender<Msg>,
    pub parts: mpsc::Sender<Part>,
}

/// Keeps the host's snapshot: each part the worker's tasks report goes in, together with
/// any others already waiting, and the whole snapshot goes out as one update. Ends when
/// the worker and its tasks are gone, or the console is.
async fn snapshots(
    host: usize,
    snapshot: HostSnapshot,
    mut parts: mpsc::Receiver<Part>,
    tx: mpsc::Sender<Msg>,
) {
    let mut snapshot = Arc::new(snapshot);
    while let Some(part) = parts.recv().await {
        // Copied only while the console still holds the previous update.
        let s = Arc::make_mut(&mut snapshot);
        // The source's history went out with the update that brought it: the console took
        // it then, and ten minutes of a big fleet's graphs are not kept twice.
        s.history = None;
        let mut changed = s.apply(part);
        while let Ok(part) = parts.try_recv() {
            changed = changed.or(s.apply(part));
        }
        let msg = Msg::Host {
            host,
            snapshot: snapshot.clone(),
            changed,
        };
        if tx.send(msg).await.is_err() {
            return;
        }
    }
}

/// `base` give or take a fifth, so hosts that went down together do not all come back at
/// the same instant.
fn jitter(base: Duration) -> Duration {
    let mut b = [0u8; 2];
    let r = if getrandom::fill(&mut b).is_ok() {
        f64::from(u16::from_le_bytes(b)) / f64::from(u16::MAX)
    } else {
        0.5
    };
    base.mul_f64(0.8 + 0.4 * r)
}

/// What outlives one connection: the running job, the followed log.
#[derive(Default)]
struct Kept {
    job: Option<super::RunningJob>,
    logs: LogFollower,
}

impl Kept {
    /// Commands that mean the same whether or not the host is connected.
    fn common(&mut self, cmd: &HostCmd) -> bool {
        match cmd {
            HostCmd::CancelJob { why } => {
                if let Some(j) = &self.job {
                    j.cancel(why);
                }
                true
            }
            other => self.logs.command(other),
        }
    }
}

enum Exit {
    /// The console is gone: stop.
    Quit,
    /// The connection broke: reconnect.
    Lost(String),
}

async fn run<C: Connector>(
    watch: Watch,
    mut connector: C,
    out: Out,
    mut cmds: mpsc::UnboundedReceiver<HostCmd>,
) {
    let host = watch.host;
    let tx = out.msgs.clone();
    let mut backoff = Duration::from_secs(1);
    let mut down_since: Option<Timestamp> = None;
    let mut kept = Kept::default();
    // The external metrics source feeds the host's figures whether or not SSH is up (a
    // host SSH cannot reach may still be reported by its node-exporter); while the source
    // fails, the connection's sampler sends them instead.
    let (sourced, readers) = super::sources::outputs(watch.metrics.is_some(), out.parts.clone());
    let _outside = Tasks(
        super::sources::spawn_outside(watch.metrics.as_ref(), watch.refresh, &sourced)
            .into_iter()
            .collect(),
    );
    loop {
        let connect = connector.connect();
        // Connecting can take seconds: commands are answered meanwhile.
        let connected = tokio::select! {
            r = connect => r,
            quit = drain_while_connecting((host, &watch.name), &mut cmds, &tx, &mut kept) => {
                if quit {
                    return;
                }
                continue;
            }
        };
        match connected {
            Ok(link) => {
                down_since = None;
                let _ = out.parts.send(Part::Conn(HostConn::Up)).await;
                let started = Instant::now();
                match serve(
                    &watch,
                    Arc::new(link),
                    &out,
                    (&mut cmds, &mut kept),
                    (&sourced, &readers),
                )
                .await
                {
                    Exit::Quit => return,
                    Exit::Lost(reason) => {
                        kept.logs.pause();
                        backoff = if started.elapsed() >= HEALTHY_FOR {
                            Duration::from_secs(1)
                        } else {
                            (backoff * 2).min(watch.max_backoff)
                        };
                        let wait = jitter(backoff);
                        let since = *down_since.get_or_insert_with(Timestamp::now);
                        let conn = HostConn::Down {
                            since,
                            reason: format!("{reason}; {}", next_try(wait)),
                        };
                        if out.parts.send(Part::Conn(conn)).await.is_err() {
                            return;
                        }
                        let idled =
                            idle((host, &watch.name), Some(wait), &mut cmds, &tx, &mut kept).await;
                        if !answer(idled, &mut connector) {
                            return;
                        }
                    }
                }
            }
            Err(e) => {
                let since = *down_since.get_or_insert_with(Timestamp::now);
                let fatal = e.is_fatal();
                let wait = jitter(backoff);
                let reason = if fatal {
                    e.to_string()
                } else {
                    format!("{e}; {}", next_try(wait))
                };
                let down = HostConn::Down { since, reason };
                if out.parts.send(Part::Conn(down)).await.is_err() {
                    return;
                }
                let question = match &e {
                    SshError::UnknownKey { fingerprint, .. } => Some(Msg::HostKeyUnknown {
                        host,
                        fingerprint: fingerprint.clone(),
                    }),
                    SshError::NeedPassphrase { path, wrong } => Some(Msg::PassphraseNeeded {
                        host,
                        path: path.clone(),
                        wrong: *wrong,
                    }),
                    SshError::ChangedKey { path, line, .. } => Some(Msg::HostKeyAlert {
                        host,
                        message: format!("host key CHANGED ({path}:{line}): connection refused"),
                    }),
                    SshError::RevokedKey { path, line, .. } => Some(Msg::HostKeyAlert {
                        host,
                        message: format!("host key REVOKED ({path}:{line}): connection refused"),
                    }),
                    _ => None,
                };
                if let Some(msg) = question {
                    let _ = tx.send(msg).await;
                }
                // A refused host key is not retried until the operator says so.
                let wait = if fatal { None } else { Some(wait) };
                let idled = idle((host, &watch.name), wait, &mut cmds, &tx, &mut kept).await;
                if !answer(idled, &mut connector) {
                    return;
                }
                backoff = (backoff * 2).min(watch.max_backoff);
            }
        }
    }
}

enum Idle {
    Quit,
    Retry,
    Accept(String),
    Passphrase(String, Secret),
}

/// Hands what the operator gave while the host was down to the connector; false when the
/// console is gone.
fn answer<C: Connector>(idled: Idle, connector: &mut C) -> bool {
    match idled {
        Idle::Quit => return false,
        Idle::Accept(fingerprint) => connector.accept_key(fingerprint),
        Idle::Passphrase(path, secret) => connector.passphrase(path, secret),
        Idle::Retry => {}
    }
    true
}

/// "next try in 4s (01:02:03)", for the host's row.
fn next_try(wait: Duration) -> String {
    let at = Timestamp::now() + wait;
    let local = at.to_zoned(jiff::tz::TimeZone::system());
    format!(
        "{}{}s ({})",
        RETRY_SEP.trim_start_matches("; "),
        wait.as_secs_f64().round(),
        local.strftime("%H:%M:%S")
    )
}

/// A down host's reason without the worker's own "; next try in …" (for a command that
/// will not try again).
pub fn first_words(reason: &str) -> String {
    match reason.rsplit_once(RETRY_SEP) {
        Some((why, _)) => why.to_string(),
        None => reason.to_string(),
    }
}

/// What joins a down host's reason to its next try.
const RETRY_SEP: &str = "; next try in ";

/// While a connection attempt runs: answers commands that need no connection, refuses
/// jobs. Returns true when the console is gone.
async fn drain_while_connecting(
    (host, name): (usize, &str),
    cmds: &mut mpsc::UnboundedReceiver<HostCmd>,
    tx: &mpsc::Sender<Msg>,
    kept: &mut Kept,
) -> bool {
    loop {
        match cmds.recv().await {
            None => return true,
            Some(HostCmd::Job(request)) => {
                super::refuse_job_audited(host, name, &request, "the host is not connected", tx);
            }
            Some(HostCmd::Releases { stack }) => super::refuse_releases(host, stack, tx),
            Some(HostCmd::Preflight { id, stack, .. }) => {
                super::refuse_preflight(host, id, stack, "the host is not connected", tx);
            }
            Some(cmd) => {
                kept.common(&cmd);
            }
        }
    }
}

/// Waits out a backoff (or, with `None`, until the operator accepts a key), answering
/// commands that make no sense while down.
async fn idle(
    (host, name): (usize, &str),
    wait: Option<Duration>,
    cmds: &mut mpsc::UnboundedReceiver<HostCmd>,
    tx: &mpsc::Sender<Msg>,
    kept: &mut Kept,
) -> Idle {
    let deadline = wait.map(|w| tokio::time::Instant::now() + w);
    loop {
        let cmd = match deadline {
            Some(d) => match tokio::time::timeout_at(d, cmds.recv()).await {
                Ok(cmd) => cmd,
                Err(_) => return Idle::Retry,
            },
            None => cmds.recv().await,
        };
        match cmd {
            None => return Idle::Quit,
            Some(HostCmd::AcceptHostKey { fingerprint }) => return Idle::Accept(fingerprint),
            Some(HostCmd::Passphrase { path, passphrase }) => {
                return Idle::Passphrase(path, passphrase);
            }
            Some(HostCmd::Job(request)) => {
                super::refuse_job_audited(host, name, &request, "the host is not connected", tx);
            }
            Some(HostCmd::Releases { stack }) => super::refuse_releases(host, stack, tx),
            Some(HostCmd::Preflight { id, stack, .. }) => {
                super::refuse_preflight(host, id, stack, "the host is not connected", tx);
            }
            Some(cmd) => {
                kept.common(&cmd);
            }
        }
    }
}

/// Aborts the connection's tasks when the connection is done with.
struct Tasks(Vec<JoinHandle<()>>);

impl Drop for Tasks {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
    }
}

async fn serve<L: Link>(
    spec: &Watch,
    session: Arc<L>,
    out: &Out,
    (cmds, kept): (&mut mpsc::UnboundedReceiver<HostCmd>, &mut Kept),
    (sourced, readers): (&Arc<super::sources::Outputs>, &super::sources::Readers),
) -> Exit {
    let (host, name) = (spec.host, spec.name.as_str());
    let tx = &out.msgs;
    let (lost_tx, mut lost_rx) = mpsc::channel::<String>(4);
    let (usage_tx, usage_rx) = watch::channel(HashMap::<String, Usage>::new());
    let (engine_tx, mut engine_rx) = watch::channel(None);
    let rescan = Arc::new(AtomicBool::new(false));
    // With an external metrics source the sampler keeps the connection's pulse and the
    // containers' usage, and sends the host's figures only while the source fails.
    let mut tasks = vec![
        tokio::spawn(sample(
            spec.clone(),
            session.clone(),
            out.parts.clone(),
            (usage_tx, rescan.clone(), readers.own.clone()),
            lost_tx,
        )),
        tokio::spawn(watch_docker(
            spec.clone(),
            session.clone(),
            out.parts.clone(),
            (usage_rx, readers.named.clone(), rescan),
            engine_tx,
        )),
    ];
    tasks.extend(super::sources::spawn_through(
        spec.metrics.as_ref(),
        spec.refresh,
        session.tunnel(),
        sourced,
    ));
    if !spec.backups.is_empty() {
        tasks.push(tokio::spawn(survey(
            spec.clone(),
            session.clone(),
            out.parts.clone(),
        )));
    }
    if !spec.checks.is_empty() {
        tasks.push(tokio::spawn(check(
            spec.clone(),
            session.clone(),
            out.clone(),
        )));
    }
    if spec.timeline {
        tasks.push(tokio::spawn(super::timeline::follow(
            host,
            spec.name.clone(),
            engine_rx.clone(),
            out.msgs.clone(),
        )));
    }
    let _tasks = Tasks(tasks);
    // The container view's one detail read: a newer ask for another container replaces
    // it, one for the same container while it runs is dropped (the console asks again).
    let mut inspecting: Option<(String, Tasks)> = None;
    let mut closed = tokio::time::interval(Duration::from_millis(500));
    loop {
        tokio::select! {
            reason = lost_rx.recv() => {
                return Exit::Lost(reason.unwrap_or_else(|| "the sampler stopped".into()));
            }
            _ = closed.tick() => {
                if session.is_closed() {
                    return Exit::Lost("the SSH connection closed".into());
                }
            }
            changed = engine_rx.changed() => {
                if changed.is_ok() {
                    let engine = engine_rx.borrow().clone();
                    kept.logs.ensure(engine, host, tx);
                }
            }
            cmd = cmds.recv() => match cmd {
                None => {
                    // Whoever asked is gone: a job still running goes first (dropped, it
                    // writes its record), then the connection, however long that takes.
                    kept.job = None;
                    session.disconnect().await;
                    return Exit::Quit;
                }
                Some(HostCmd::AcceptHostKey { .. } | HostCmd::Passphrase { .. }) => {}
                Some(HostCmd::Engine { reply }) => {
                    let _ = reply.send(engine_rx.borrow().clone());
                }
                Some(HostCmd::Shell { request, reply }) => {
                    // Opening waits on the host: never in this loop.
                    let (session, docker_host) = (session.clone(), spec.docker_host.clone());
                    tokio::spawn(async move {
                        let io = session.shell(&request, docker_host.as_deref()).await;
                        let _ = reply.send(io);
                    });
                }
                Some(HostCmd::Inspect { id, stats }) => {
                    let busy = inspecting
                        .as_ref()
                        .is_some_and(|(i, t)| *i == id && t.0.iter().any(|t| !t.is_finished()));
                    if !busy {
                        let docker = engine_rx.borrow().as_ref().map(|(d, _)| d.clone());
                        let task = tokio::spawn(inspect(host, docker, id.clone(), stats, tx.clone()));
                        inspecting = Some((id, Tasks(vec![task])));
                    }
                }
                Some(HostCmd::Releases { stack }) => {
                    let docker = engine_rx.borrow().as_ref().map(|(d, _)| d.clone());
                    super::spawn_releases(session.clone(), docker, spec, stack, tx.clone());
                }
                Some(HostCmd::Preflight { id, stack, fetch }) => {
                    // Slow (a fetch, the registry): never in this loop.
                    let docker = engine_rx.borrow().as_ref().map(|(d, _)| d.clone());
                    let asked = (id, stack, fetch);
                    tokio::spawn(super::preflight(session.clone(), docker, spec.clone(), asked, tx.clone()));
                }
                Some(HostCmd::Job(request)) => {
                    if kept.job.as_ref().is_some_and(super::RunningJob::running) {
                        super::refuse_job_audited(host, name, &request, "a job is already running on this host", tx);
                    } else {
                        let docker = engine_rx.borrow().as_ref().map(|(d, _)| d.clone());
                        let tools = super::JobTools { docker, tunnel: session.tunnel() };
                        kept.job = Some(super::spawn_job(session.clone(), tools, spec, request, out.clone()));
                    }
                }
                Some(cmd) => {
                    if kept.common(&cmd) {
                        let engine = engine_rx.borrow().clone();
                        kept.logs.ensure(engine, host, tx);
                    }
                }
            }
        }
    }
}

/// Reads one container's detail for the container view and reports it; Docker not
/// reachable is an answer too.
async fn inspect(
    host: usize,
    docker: Option<bollard::Docker>,
    id: String,
    stats: bool,
    tx: mpsc::Sender<Msg>,
) {
    let (detail, io) = match &docker {
        Some(d) => crate::docker::detail::read(d, &id, stats).await,
        None => (Err("Docker is not reachable on this host now".into()), None),
    };
    let msg = Msg::ContainerDetail {
        host,
        id,
        at: Timestamp::now(),
        detail: detail.map(Box::new),
        io,
    };
    let _ = tx.send(msg).await;
}

/// The host's metrics and its containers' usage from the link's [`Probe`], asked each
/// tick. Says the host is stalled when an answer is late, and the connection lost when
/// there has been none for [`LOST_AFTER`] or the probe says the connection is gone.
/// `rescan` is the Docker watcher's word that a running container had no usage.
async fn sample<L: Link>(
    spec: Watch,
    session: Arc<L>,
    parts: mpsc::Sender<Part>,
    (usage, rescan, own): (
        watch::Sender<HashMap<String, Usage>>,
        Arc<AtomicBool>,
        watch::Receiver<bool>,
    ),
    lost: mpsc::Sender<String>,
) {
    let (host, refresh) = (spec.host, spec.refresh);
    let mut probe = session.probe();
    let mut ticker = tokio::time::interval(refresh);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let stall_after = refresh * 2;
    let lost_after = LOST_AFTER.max(refresh * 3);
    let mut last = Instant::now();
    let mut last_at = Timestamp::now();
    let mut stalled = false;
    loop {
        ticker.tick().await;
        if rescan.swap(false, Ordering::Relaxed) {
            probe.rescan();
        }
        probe.host_figures(*own.borrow());
        let left = lost_after.saturating_sub(last.elapsed());
        let wait = if stalled { left } else { stall_after.min(left) };
        let why = match tokio::time::timeout(wait, probe.sample()).await {
            Ok(Ok((metrics, per_container))) => {
                last = Instant::now();
                last_at = Timestamp::now();
                stalled = false;
                let _ = usage.send(per_container);
                if !*own.borrow() {
                    continue;
                }
                if parts
                    .send(Part::Metrics {
                        at: last_at,
                        metrics,
                    })
                    .await
                    .is_err()
                {
                    return;
                }
                continue;
            }
            Ok(Err(ProbeError::Lost(e))) => {
                let _ = lost.send(e).await;
                return;
            }
            Ok(Err(ProbeError::Failed(e))) => {
                tracing::warn!("host {host}: the metrics sampler failed: {e}");
                format!("no metrics: {e}")
            }
            Err(_) => {
                // An answer may still be on its way: it would be read as the next one's.
                probe.reset();
                format!("no answer for {}s", last.elapsed().as_secs())
            }
        };
        if last.elapsed() >= lost_after {
            let _ = lost.send(why).await;
            return;
        }
        if last.elapsed() >= stall_after {
            stalled = true;
            let conn = HostConn::Stalled {
                since: last_at,
                reason: why,
            };
            let _ = parts.send(Part::Conn(conn)).await;
        }
    }
}

/// Docker over the connection: connect (and again after a failure), follow its container
/// events, list when they say something changed (and every 45 s), send the containers
/// every tick with the sampler's cgroup counters, publish the client for the log follower and jobs.
async fn watch_docker<L: Link>(
    spec: Watch,
    session: Arc<L>,
    parts: mpsc::Sender<Part>,
    (mut usage, named, rescan): (UsageBy, UsageBy, Arc<AtomicBool>),
    engine: watch::Sender<Option<(bollard::Docker, crate::docker::Socket)>>,
) {
    let mut docker = DockerWatch::new();
    let mut sampled = false;
    let mut ticker = tokio::time::interval(spec.refresh);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    // When the list is read again after an event: a moment later, not at the next tick,
    // so what the operator just did (a stop, a pause) shows at once; the moment lets a
    // burst (kill, die, stop) cost one list.
    let mut soon: Option<tokio::time::Instant> = None;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            changed = docker.event() => {
                if changed {
                    soon.get_or_insert_with(|| tokio::time::Instant::now() + EVENT_SETTLE);
                }
                continue;
            }
            _ = tokio::time::sleep_until(soon.unwrap_or_else(tokio::time::Instant::now)), if soon.is_some() => {}
        }
        soon = None;
        if docker.wants_connect() {
            let (result, opener) = session.docker(&spec.socket).await;
            // Published before Docker's state goes out: whoever hears the engine is up
            // (a job from `opsdeck run`) finds the client there.
            let (client, socket) = (result.as_ref().ok().map(|(d, _)| d.clone()), opener.clone());
            let _ = engine.send(client.map(|d| (d, socket)));
            docker.connected(result, opener, &parts).await;
        }
        if !sampled && docker.engine().is_some() {
            // The first list waits for the sampler's first answer (tens of milliseconds):
            // a running container the sample does not have goes to Docker's stats, about
            // a second each and dear for the engine, and before the first sample that
            // would be every one of them.
            let _ = tokio::time::timeout(FIRST_SAMPLE_WAIT, usage.changed()).await;
            sampled = true;
        }
        let current = usage.borrow().clone();
        let by_name = named.borrow().clone();
        let mut missing = false;
        docker
            .tick(&parts, |c| {
                // The metrics source's cgroup charts where it has them, the sampler's
                // cgroup files where not.
                let found = by_name.get(&c.name).or_else(|| current.get(&c.id)).copied();
                missing |= found.is_none();
                found
            })
            .await;
        if missing && sampled {
            // A container started since the sampler last looked: it looks again.
            rescan.store(true, Ordering::Relaxed);
        }
        let now = docker.engine();
        if now.is_some() != engine.borrow().is_some() {
            let _ = engine.send(now);
        }
    }
}

/// Lists the backup directories every [`BACKUP_EVERY`], each round bounded in time: a
/// listing that hangs (a dead mount) is reported as timed out, and never holds up
/// anything else.
async fn survey<L: Link>(spec: Watch, session: Arc<L>, parts: mpsc::Sender<Part>) {
    let host = spec.host;
    loop {
        let now = Timestamp::now().as_second();
        let round = backups::survey(host, &spec.backups, now, &*session);
        let backups = match tokio::time::timeout(SURVEY_TIMEOUT, round).await {
            Ok(b) => b,
            Err(_) => super::timed_out_backups(host, &spec.backups, SURVEY_TIMEOUT, now),
        };
        if parts.send(Part::Backups(backups)).await.is_err() {
            return;
        }
        tokio::time::sleep(BACKUP_EVERY).await;
    }
}

/// The host's HTTP checks every [`CHECK_EVERY`], through the connection for `via = "ssh"`.
async fn check<L: Link>(spec: Watch, session: Arc<L>, out: Out) {
    // Each check's last result, for the timeline's "fails" and "passes again".
    let mut was: HashMap<String, bool> = HashMap::new();
    let store = super::timeline::Store::for_host(&spec.name);
    loop {
        let now = Timestamp::now().as_second();
        let checks = crate::checks::run_all(&spec.checks, session.tunnel(), now).await;
        let at = Timestamp::now();
        let changed: Vec<_> = checks
            .iter()
            .filter(|c| was.get(&c.name).is_some_and(|&ok| ok != c.ok))
            .map(|c| {
                let detail = c
                    .error
                    .clone()
                    .or_else(|| c.status.map(|s| format!("HTTP {s}")))
                    .unwrap_or_default();
                crate::model::timeline::check_changed(&spec.name, &c.name, c.ok, &detail, at)
            })
            .collect();
        for c in &checks {
            was.insert(c.name.clone(), c.ok);
        }
        if spec.timeline && !changed.is_empty() {
            super::timeline::save(store.as_ref(), &changed).await;
            let msg = Msg::Timeline {
                host: spec.host,
                events: changed,
                caught_up: false,
            };
            if out.msgs.send(msg).await.is_err() {
                return;
            }
        }
        if out.parts.send(Part::Checks(checks)).await.is_err() {
            return;
        }
        tokio::time::sleep(CHECK_EVERY).await;
    }
}

/// The worker's timing against a fake host, with tokio's clock paused: what it says while
/// the host stalls, is lost and comes back; its backoff; a command answered while the
/// sampler hangs. The same behaviour against real hosts is in `tests/worker_faults.rs`.
#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    use super::*;
    use crate::jobs::runner::{ExecOutput, Process, RunError, Runner};
    use crate::model::{JobEvent, JobKind, JobRequest};

    #[derive(Clone, Copy)]
    enum Answer {
        Sample,
        Hang,
    }

    /// The fake host: how its sampler answers, whether its transport is closed, how many
    /// connection attempts still fail, and when each attempt came.
    struct Host {
        answer: Mutex<Answer>,
        closed: AtomicBool,
        failing: AtomicUsize,
        attempts: Mutex<Vec<Instant>>,
    }

    impl Host {
        fn new() -> Arc<Host> {
            Arc::new(Host {
                answer: Mutex::new(Answer::Sample),
                closed: AtomicBool::new(false),
                failing: AtomicUsize::new(0),
                attempts: Mutex::new(Vec::new()),
            })
        }

        fn answer(&self, a: Answer) {
            *self.answer.lock().unwrap() = a;
        }
    }

    struct FakeConnector(Arc<Host>);

    impl Connector for FakeConnector {
        type Link = FakeLink;

        async fn connect(&mut self) -> Result<FakeLink, SshError> {
            self.0.attempts.lock().unwrap().push(Instant::now());
            let failing = self.0.failing.load(Ordering::SeqCst);
            if failing > 0 {
                self.0.failing.store(failing - 1, Ordering::SeqCst);
                return Err(SshError::Connect {
                    addr: "fake".into(),
                    reason: "refused".into(),
                });
            }
            self.0.closed.store(false, Ordering::SeqCst);
            Ok(FakeLink(self.0.clone()))
        }
    }

    struct FakeLink(Arc<Host>);

    impl Runner for FakeLink {
        async fn run(&self, _: &str) -> Result<ExecOutput, RunError> {
            Err(RunError::Transport("no commands on the fake host".into()))
        }

        async fn start(&self, _: &str) -> Result<Process, RunError> {
            Err(RunError::Transport("no commands on the fake host".into()))
        }
    }

    impl Link for FakeLink {
        type Probe = FakeProbe;

        fn probe(self: &Arc<Self>) -> FakeProbe {
            FakeProbe(self.0.clone())
        }

        async fn docker(
            self: &Arc<Self>,
            _: &str,
        ) -> (
            Result<(bollard::Docker, String), String>,
            crate::docker::Socket,
        ) {
            let socket = crate::docker::Socket::unix("/nonexistent");
            (Err("no engine on the fake host".into()), socket)
        }

        fn tunnel(self: &Arc<Self>) -> Option<Arc<dyn crate::checks::Tunnel>> {
            None
        }

        fn is_closed(&self) -> bool {
            self.0.closed.load(Ordering::SeqCst)
        }

        async fn disconnect(&self) {}
    }

    struct FakeProbe(Arc<Host>);

    impl Probe for FakeProbe {
        async fn sample(&mut self) -> Result<Sampled, ProbeError> {
            let answer = *self.0.answer.lock().unwrap();
            match answer {
                Answer::Sample => Ok((Metrics::default(), HashMap::new())),
                Answer::Hang => std::future::pending().await,
            }
        }

        fn reset(&mut self) {}
    }

    const REFRESH: Duration = Duration::from_secs(2);

    fn start(host: &Arc<Host>) -> (mpsc::UnboundedSender<HostCmd>, mpsc::Receiver<Msg>) {
        let (tx, rx) = mpsc::channel(256);
        let watch = Watch {
            host: 0,
            name: "fake".into(),
            socket: "/nonexistent".into(),
            docker_host: None,
            refresh: REFRESH,
            stacks: Vec::new(),
            backups: Vec::new(),
            checks: Vec::new(),
            timeline: false,
            disk_warn: 90.0,
            metrics: None,
            max_backoff: MAX_BACKOFF,
        };
        (spawn(watch, FakeConnector(host.clone()), tx), rx)
    }

    /// The next connection state the worker reports, and when, within `limit`.
    async fn next_conn(rx: &mut mpsc::Receiver<Msg>, limit: Duration) -> (HostConn, Instant) {
        let deadline = Instant::now() + limit;
        loop {
            let msg = tokio::time::timeout_at(deadline, rx.recv())
                .await
                .unwrap_or_else(|_| panic!("no connection state within {limit:?}"))
                .unwrap();
            if let Msg::Host {
                snapshot, changed, ..
            } = msg
                && changed.conn
            {
                return (snapshot.conn.clone(), Instant::now());
            }
        }
    }

    async fn next_metrics(rx: &mut mpsc::Receiver<Msg>, limit: Duration) -> Instant {
        let deadline = Instant::now() + limit;
        loop {
            let msg = tokio::time::timeout_at(deadline, rx.recv())
                .await
                .unwrap_or_else(|_| panic!("no metrics within {limit:?}"))
                .unwrap();
            if matches!(msg, Msg::Host { changed, .. } if changed.metrics) {
                return Instant::now();
            }
        }
    }

    /// Each update is the host's whole snapshot: a part that comes later keeps what came
    /// before, and the snapshot says when it is a full answer.
    #[tokio::test(start_paused = true)]
    async fn every_update_carries_the_whole_snapshot() {
        let host = Host::new();
        let (_cmds, mut rx) = start(&host);
        let deadline = Instant::now() + REFRESH * 3;
        let mut seen = crate::model::Changed::default();
        let last = loop {
            let msg = tokio::time::timeout_at(deadline, rx.recv())
                .await
                .expect("a complete snapshot within three refreshes")
                .unwrap();
            let Msg::Host {
                snapshot, changed, ..
            } = msg
            else {
                continue;
            };
            seen = seen.or(changed);
            if snapshot.complete() {
                break snapshot;
            }
            assert!(
                !(seen.metrics && seen.docker),
                "both parts came, yet not complete: {snapshot:?}"
            );
        };
        assert!(seen.metrics && seen.docker && seen.conn, "{seen:?}");
        assert_eq!(last.conn, HostConn::Up);
        assert!(last.metrics.is_some(), "{last:?}");
        assert!(
            matches!(&last.docker, crate::model::DockerState::Unavailable { reason } if reason.contains("no engine")),
            "{last:?}"
        );
        // A stall keeps the last sample beside the new state.
        host.answer(Answer::Hang);
        let (stalled, _) = next_conn(&mut rx, REFRESH * 4).await;
        assert!(matches!(stalled, HostConn::Stalled { .. }), "{stalled:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_hung_sampler_is_stalled_in_two_refreshes_then_down_then_back() {
        let host = Host::new();
        let (_cmds, mut rx) = start(&host);
        assert_eq!(next_conn(&mut rx, REFRESH).await.0, HostConn::Up);
        let last = next_metrics(&mut rx, REFRESH).await;
        host.answer(Answer::Hang);

        let (stalled, at) = next_conn(&mut rx, REFRESH * 4).await;
        let HostConn::Stalled { reason, .. } = stalled else {
            panic!("{stalled:?}")
        };
        assert!(reason.starts_with("no answer for"), "{reason}");
        // No sample for two refreshes, noticed at the next tick's deadline at the latest.
        assert!(at - last <= REFRESH * 3, "stalled after {:?}", at - last);

        let (down, at) = next_conn(&mut rx, LOST_AFTER * 2).await;
        let HostConn::Down { reason, .. } = down else {
            panic!("{down:?}")
        };
        assert!(reason.contains("next try in"), "{reason}");
        assert!(
            at - last >= LOST_AFTER && at - last <= LOST_AFTER + REFRESH * 2,
            "down after {:?}",
            at - last
        );

        host.answer(Answer::Sample);
        let (up, back) = next_conn(&mut rx, MAX_BACKOFF * 2).await;
        assert_eq!(up, HostConn::Up);
        assert!(
            back - at <= MAX_BACKOFF.mul_f64(1.2),
            "back after {:?}",
            back - at
        );
        next_metrics(&mut rx, REFRESH * 2).await;
        assert_eq!(host.attempts.lock().unwrap().len(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_closed_transport_is_down_at_once_and_failed_attempts_back_off() {
        let host = Host::new();
        let (_cmds, mut rx) = start(&host);
        assert_eq!(next_conn(&mut rx, REFRESH).await.0, HostConn::Up);
        host.failing.store(4, Ordering::SeqCst);
        let closed = Instant::now();
        host.closed.store(true, Ordering::SeqCst);
        let (down, at) = next_conn(&mut rx, REFRESH).await;
        assert!(
            matches!(&down, HostConn::Down { reason, .. } if reason.starts_with("the SSH connection closed")),
            "{down:?}"
        );
        assert!(
            at - closed <= Duration::from_millis(600),
            "{:?}",
            at - closed
        );
        // Four refused attempts, then one that connects.
        loop {
            if next_conn(&mut rx, MAX_BACKOFF * 3).await.0 == HostConn::Up {
                break;
            }
        }
        let attempts = host.attempts.lock().unwrap().clone();
        assert_eq!(attempts.len(), 6, "the first, four refused, the last");
        let gaps: Vec<f64> = attempts[1..]
            .windows(2)
            .map(|w| (w[1] - w[0]).as_secs_f64())
            .collect();
        // 1 s doubling, capped at 5 s, each give or take a fifth.
        for (gap, base) in gaps.iter().zip([2.0, 4.0, 5.0, 5.0]) {
            assert!(
                *gap >= base * 0.8 - 0.01 && *gap <= base * 1.2 + 0.01,
                "gaps {gaps:?}"
            );
        }
    }

    /// The next pre-flight answer: its id and report.
    async fn preflight_answer(
        rx: &mut mpsc::Receiver<Msg>,
    ) -> (u64, Result<crate::model::preflight::Report, String>) {
        loop {
            if let Msg::Preflight { id, report, .. } = rx.recv().await.unwrap() {
                return (id, report);
            }
        }
    }

    /// The pre-flight asked of a worker: answered at once while the sampler hangs (the
    /// plan's error here: the fake host has no stacks), and while the host is down.
    #[tokio::test(start_paused = true)]
    async fn a_preflight_is_answered_connected_or_not() {
        let host = Host::new();
        let (cmds, mut rx) = start(&host);
        assert_eq!(next_conn(&mut rx, REFRESH).await.0, HostConn::Up);
        host.answer(Answer::Hang);
        let ask = |id: u64| {
            cmds.send(HostCmd::Preflight {
                id,
                stack: String::new(),
                fetch: true,
            })
            .unwrap();
        };
        ask(7);
        let asked = Instant::now();
        let (id, report) = preflight_answer(&mut rx).await;
        assert_eq!(id, 7);
        assert_eq!(
            report,
            Err("host fake has no stacks in the inventory".into())
        );
        assert!(Instant::now() - asked < Duration::from_millis(100));
        // down: answered too, with why
        host.failing.store(100, Ordering::SeqCst);
        host.closed.store(true, Ordering::SeqCst);
        loop {
            if matches!(
                next_conn(&mut rx, REFRESH * 2).await.0,
                HostConn::Down { .. }
            ) {
                break;
            }
        }
        ask(8);
        let (id, report) = preflight_answer(&mut rx).await;
        assert_eq!((id, report), (8, Err("the host is not connected".into())));
    }

    #[tokio::test(start_paused = true)]
    async fn a_job_is_answered_while_the_sampler_hangs() {
        let host = Host::new();
        let (cmds, mut rx) = start(&host);
        assert_eq!(next_conn(&mut rx, REFRESH).await.0, HostConn::Up);
        host.answer(Answer::Hang);
        tokio::time::sleep(REFRESH * 3).await;
        let asked = Instant::now();
        cmds.send(HostCmd::Job(JobRequest {
            stack: "nope".into(),
            kind: JobKind::Deploy,
            opts: Default::default(),
        }))
        .unwrap();
        loop {
            let msg = rx.recv().await.unwrap();
            if let Msg::Job {
                event: JobEvent::Finished(result),
                ..
            } = msg
            {
                // No such stack: the plan refuses it, at once, hung sampler or not.
                assert!(result.is_err(), "{result:?}");
                break;
            }
        }
        assert!(Instant::now() - asked < Duration::from_millis(100));
    }
}
