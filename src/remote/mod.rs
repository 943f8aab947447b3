//! Host workers: one tokio task per host owns that host's connection, polls it, runs what
//! it is asked, and reports by sending messages. Workers never touch the model. One
//! design ([`worker`]) for hosts over SSH ([`ssh_link`]) and this machine ([`local`]).

pub mod docker_watch;
pub mod known_hosts;
pub mod local;
pub mod shell;
pub mod sources;
pub mod ssh;
pub mod ssh_link;
pub mod timeline;
pub mod worker;

use std::time::Duration;

use tokio::sync::mpsc;

use crate::collect::backups::SetRef;

use crate::config::{Config, Host, Stack};
use crate::model::{DockerState, HostConn, HostSnapshot, Msg};

/// What the runtime asks of a host worker.
#[derive(Debug)]
pub enum HostCmd {
    FollowLogs {
        id: String,
    },
    StopLogs {
        id: String,
    },
    /// Follow a stack's logs together: its services as (service name, container id).
    FollowStack {
        project: String,
        sources: Vec<(String, String)>,
    },
    StopStack {
        project: String,
    },
    /// The operator trusts this host key fingerprint: record it and connect.
    AcceptHostKey {
        fingerprint: String,
    },
    /// Run a job: deploy, migrate, restart, rollback, a custom action, a backup.
    Job(crate::model::JobRequest),
    /// Stop the running job: its step is stopped on the host, later steps are skipped;
    /// `why` is what its record says (`cancelled: <why>`).
    CancelJob {
        why: String,
    },
    /// Lend the connection's Docker client and socket (for `opsdeck logs`): `None`, or the
    /// sender dropped, when Docker cannot be reached now.
    Engine {
        reply: tokio::sync::oneshot::Sender<Option<(bollard::Docker, crate::docker::Socket)>>,
    },
    /// Open a shell on the host or in a container (`e`, `S`, `opsdeck exec`): a channel
    /// of the connection, started, for the terminal to be joined to. The sender dropped
    /// means the host is not connected.
    Shell {
        request: shell::ShellRequest,
        reply: tokio::sync::oneshot::Sender<Result<shell::ShellIo, String>>,
    },
    /// Read a container's detail (inspect, top) and, with `stats`, its I/O counters, for
    /// the container view; answered with [`Msg::ContainerDetail`]. Dropped while the host
    /// is not connected (the console asks again).
    Inspect {
        id: String,
        stats: bool,
    },
    /// Read a stack's release history and what it runs now; answered with
    /// [`Msg::Releases`] (an error while the host is not connected).
    Releases {
        stack: String,
    },
    /// The passphrase of an encrypted identity file, typed by the operator.
    Passphrase {
        path: String,
        passphrase: crate::model::Secret,
    },
    /// Run a deploy's pre-flight of `stack` (empty: the host's only stack with a deploy
    /// recipe) without a lock, changing nothing (`fetch`: but `git fetch`); answered with
    /// [`Msg::Preflight`] carrying `id`.
    Preflight {
        id: u64,
        stack: String,
        fetch: bool,
    },
}

/// A running worker's inbox. It has no bound to fill: the worker's connection owner does
/// nothing slow itself, so it takes every command at once, and none is ever dropped.
#[derive(Debug, Clone)]
pub struct HostHandle {
    pub cmds: mpsc::UnboundedSender<HostCmd>,
    /// For a job sent to a worker that is gone: it ends failed, and the audit log says so.
    refuse: Option<(usize, String, mpsc::Sender<Msg>)>,
}

impl HostHandle {
    pub fn new(cmds: mpsc::UnboundedSender<HostCmd>) -> Self {
        HostHandle { cmds, refuse: None }
    }

    pub fn send(&self, cmd: HostCmd) {
        if let Err(mpsc::error::SendError(cmd)) = self.cmds.send(cmd)
            && let (HostCmd::Job(request), Some((host, name, tx))) = (cmd, &self.refuse)
        {
            refuse_job_audited(
                *host,
                name,
                &request,
                "the host's worker has stopped (see opsdeck.log)",
                tx,
            );
        }
    }
}

/// What every worker of one run shares: `~/.ssh/config`, read once, and the host key policy.
pub struct Shared {
    pub ssh_config: Option<ssh2_config::SshConfig>,
    pub policy: ssh::KeyPolicy,
    /// The external metrics sources' hubs (one query per server for all its hosts).
    pub metrics: crate::metrics::Hubs,
}

impl Shared {
    pub fn new(accept_new: bool) -> Self {
        Shared {
            ssh_config: ssh::load_ssh_config(),
            policy: if accept_new {
                ssh::KeyPolicy::AcceptNew
            } else {
                ssh::KeyPolicy::Refuse
            },
            metrics: crate::metrics::Hubs::default(),
        }
    }
}

/// What a worker watches on its host, from the inventory.
#[derive(Debug, Clone)]
pub struct Watch {
    pub host: usize,
    pub name: String,
    pub socket: String,
    /// The inventory's `docker_socket`, handed to commands run on the host.
    pub docker_host: Option<String>,
    pub refresh: Duration,
    pub stacks: Vec<Stack>,
    pub backups: Vec<SetRef>,
    pub checks: Vec<crate::checks::CheckSpec>,
    /// Keep the host's timeline: catch up on Docker's events, follow them, store them.
    pub timeline: bool,
    /// Disk use (percent) a deploy's pre-flight warns at.
    pub disk_warn: f64,
    /// Host metrics from an external source instead of the SSH sampler (which then only
    /// reads the containers' usage, and the host's again when the source fails).
    pub metrics: Option<sources::Source>,
    /// The longest wait between two connection attempts (longer on a big fleet).
    pub max_backoff: Duration,
}

/// Backup directories change slowly: they are listed this often, not every tick.
pub const BACKUP_EVERY: Duration = Duration::from_secs(30);

/// HTTP checks run this often: often enough to notice an outage within a minute, rarely
/// enough not to show up in the app's own request logs.
pub const CHECK_EVERY: Duration = Duration::from_secs(30);

/// Starts the worker for host `index`; every host connects in parallel.
pub fn spawn(
    index: usize,
    host: &Host,
    config: &Config,
    shared: &Shared,
    tx: mpsc::Sender<Msg>,
) -> HostHandle {
    spawn_watching(
        watch_of(index, host, config, shared),
        host,
        config,
        shared,
        tx,
    )
}

/// Starts a worker for one job from the command line (`opsdeck run`): the console's
/// worker, watching what a job needs (the connection, Docker and the containers), not
/// the backup sets and checks it would only list and drop.
pub fn spawn_for_jobs(
    index: usize,
    host: &Host,
    config: &Config,
    shared: &Shared,
    tx: mpsc::Sender<Msg>,
) -> HostHandle {
    spawn_lean(index, host, config, shared, tx, false)
}

/// Starts a worker for `opsdeck events`: the connection, Docker and the timeline (caught
/// up from the engine and stored), nothing else.
pub fn spawn_for_events(
    index: usize,
    host: &Host,
    config: &Config,
    shared: &Shared,
    tx: mpsc::Sender<Msg>,
) -> HostHandle {
    spawn_lean(index, host, config, shared, tx, true)
}

/// A worker without backup sets and checks, with or without the timeline.
fn spawn_lean(
    index: usize,
    host: &Host,
    config: &Config,
    shared: &Shared,
    tx: mpsc::Sender<Msg>,
    timeline: bool,
) -> HostHandle {
    let watch = Watch {
        backups: Vec::new(),
        checks: Vec::new(),
        timeline,
        ..watch_of(index, host, config, shared)
    };
    spawn_watching(watch, host, config, shared, tx)
}

/// What the inventory says to watch on host `index`.
fn watch_of(index: usize, host: &Host, config: &Config, shared: &Shared) -> Watch {
    let source = host
        .metrics
        .as_ref()
        .or(config.inventory.settings.metrics.as_ref())
        .map(toml::Spanned::get_ref);
    let metrics = match source {
        Some(crate::config::MetricsSource::Prometheus(p)) if !host.is_local() => {
            let instance =
                crate::metrics::for_host(&p.instance, host.name.get_ref(), host.address());
            Some(sources::Source::Prometheus(shared.metrics.feed(
                p,
                instance,
                config.refresh_for(host),
            )))
        }
        Some(crate::config::MetricsSource::Netdata(n)) if !host.is_local() => {
            Some(sources::Source::Netdata {
                url: crate::metrics::for_host(&n.netdata, host.name.get_ref(), host.address()),
                via_ssh: n.via == crate::config::Via::Ssh,
            })
        }
        _ => None,
    };
    Watch {
        metrics,
        max_backoff: worker::max_backoff(config.inventory.hosts.len()),
        host: index,
        name: host.name.get_ref().clone(),
        socket: host.docker_socket().to_string(),
        docker_host: host.docker_socket.clone(),
        refresh: config.refresh_for(host),
        stacks: host.stacks.clone(),
        backups: host
            .stacks
            .iter()
            .flat_map(|st| {
                st.backups
                    .iter()
                    .map(|b| (st.name.get_ref().clone(), b.clone()))
            })
            .collect(),
        checks: crate::checks::specs(host),
        timeline: true,
        disk_warn: crate::jobs::preflight::disk_warn(
            host.thresholds.or(config.inventory.settings.thresholds),
        ),
    }
}

fn spawn_watching(
    watch: Watch,
    host: &Host,
    config: &Config,
    shared: &Shared,
    tx: mpsc::Sender<Msg>,
) -> HostHandle {
    let refuse = Some((watch.host, watch.name.clone(), tx.clone()));
    let cmds = if host.is_local() {
        worker::spawn(watch, local::LocalConnector, tx)
    } else {
        let target = ssh::resolve(host, &config.inventory.settings, shared.ssh_config.as_ref());
        let connector = ssh_link::SshConnector::new(target, shared.policy.clone());
        worker::spawn(watch, connector, tx)
    };
    HostHandle { cmds, refuse }
}

/// How long a command waits for its host: a connection (each hop has its own 10 s),
/// Docker's answer and the first container list.
const READY_WITHIN: Duration = Duration::from_secs(30);
/// For a command (`run`, `logs`): the worker's first snapshot that can serve it:
/// connected, and Docker asked (its containers listed, or why it cannot be). `Err` is why
/// the host cannot be reached; the console would try again, a command says so and leaves.
pub async fn ready(rx: &mut mpsc::Receiver<Msg>) -> Result<std::sync::Arc<HostSnapshot>, String> {
    let deadline = tokio::time::Instant::now() + READY_WITHIN;
    loop {
        let msg = match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(msg)) => msg,
            Ok(None) => return Err("the host's worker stopped (see opsdeck.log)".into()),
            Err(_) => return Err(format!("no answer within {}s", READY_WITHIN.as_secs())),
        };
        let Msg::Host { snapshot, .. } = msg else {
            continue;
        };
        match &snapshot.conn {
            // The console would try again; a command says why and leaves.
            HostConn::Down { reason, .. } => return Err(worker::first_words(reason)),
            HostConn::Up | HostConn::Stalled { .. }
                if snapshot.containers.is_some()
                    || matches!(snapshot.docker, DockerState::Unavailable { .. }) =>
            {
                return Ok(snapshot);
            }
            _ => {}
        }
    }
}

/// The job a worker runs now: how to stop it, and whether it is still going.
pub struct RunningJob {
    cancel: crate::jobs::exec::CancelSender,
    task: tokio::task::JoinHandle<()>,
}

impl RunningJob {
    pub fn running(&self) -> bool {
        !self.task.is_finished()
    }

    pub fn cancel(&self, why: &str) {
        let _ = self.cancel.send(Some(why.to_string()));
    }
}

/// A worker that ends (opsdeck leaves) takes its job with it: dropped, the job writes its
/// audit record, and its step's stdin closes, so the host stops the step.
impl Drop for RunningJob {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What a job runs with on a host: Docker and, over SSH, a tunnel for checks.
pub struct JobTools {
    pub docker: Option<bollard::Docker>,
    pub tunnel: Option<std::sync::Arc<dyn crate::checks::Tunnel>>,
}

/// Runs a job in its own task, so the worker keeps polling meanwhile: plans it from the
/// inventory, forwards its events to the console (the audit line is written by the job),
/// and after a backup lists the sets again so the new file shows at once.
pub fn spawn_job<R>(
    runner: std::sync::Arc<R>,
    tools: JobTools,
    watch: &Watch,
    request: crate::model::JobRequest,
    out: worker::Out,
) -> RunningJob
where
    R: crate::jobs::Runner + Send + 'static,
{
    use crate::jobs::{audit, exec, plan};
    use crate::model::JobEvent;
    let host = watch.host;
    let planned = plan::plan(&watch.name, &watch.stacks, &request).map(|mut p| {
        crate::jobs::preflight::configure(&mut p, watch.disk_warn);
        p
    });
    let (docker_host, sets) = (watch.docker_host.clone(), watch.backups.clone());
    let is_backup = matches!(request.kind, crate::model::JobKind::Backup { .. });
    let (cancel, cancel_rx) = exec::cancel_channel();
    let tx = out.msgs;
    let task = tokio::spawn(async move {
        let plan = match planned {
            Ok(p) => p,
            Err(e) => {
                let _ = tx
                    .send(Msg::Job {
                        host,
                        event: JobEvent::Finished(Err(e)),
                    })
                    .await;
                return;
            }
        };
        let (etx, mut erx) = mpsc::channel::<JobEvent>(256);
        let forward_tx = tx.clone();
        let forward = tokio::spawn(async move {
            while let Some(event) = erx.recv().await {
                if forward_tx.send(Msg::Job { host, event }).await.is_err() {
                    break;
                }
            }
        });
        let ctx = exec::Context {
            runner: &*runner,
            docker: tools.docker,
            tunnel: tools.tunnel,
            docker_host,
            audit: audit::path(),
            user: audit::local_user(),
        };
        exec::execute(&ctx, &plan, &etx, cancel_rx).await;
        drop(etx);
        let _ = forward.await;
        if is_backup {
            let now = jiff::Timestamp::now().as_second();
            let backups = crate::collect::backups::survey(host, &sets, now, &*runner).await;
            let _ = out.parts.send(crate::model::Part::Backups(backups)).await;
        }
    });
    RunningJob { cancel, task }
}

/// Reads a stack's releases for the console's picker or `opsdeck releases`, and answers
/// with [`Msg::Releases`].
pub fn spawn_releases<R>(
    runner: std::sync::Arc<R>,
    docker: Option<bollard::Docker>,
    watch: &Watch,
    stack: String,
    tx: mpsc::Sender<Msg>,
) where
    R: crate::jobs::Runner + Send + Sync + 'static,
{
    let host = watch.host;
    let found = watch
        .stacks
        .iter()
        .find(|s| *s.name.get_ref() == stack)
        .cloned();
    tokio::spawn(async move {
        let result = match found {
            Some(st) => crate::jobs::releases_view(&*runner, docker.as_ref(), &st).await,
            None => Err(format!("no stack {stack:?} in the inventory")),
        };
        let _ = tx
            .send(Msg::Releases {
                host,
                stack,
                result,
            })
            .await;
    });
}

/// Answers a releases request while the host is not connected.
pub fn refuse_releases(host: usize, stack: String, tx: &mpsc::Sender<Msg>) {
    let tx = tx.clone();
    tokio::spawn(async move {
        let _ = tx
            .send(Msg::Releases {
                host,
                stack,
                result: Err("the host is not connected".into()),
            })
            .await;
    });
}

/// A deploy's pre-flight asked on its own (the console's confirmation, `deploy --check`):
/// no lock taken, nothing changed but `git fetch`; the answer goes back as
/// [`Msg::Preflight`].
pub async fn preflight<R>(
    runner: std::sync::Arc<R>,
    docker: Option<bollard::Docker>,
    watch: Watch,
    (id, stack, fetch): (u64, String, bool),
    tx: mpsc::Sender<Msg>,
) where
    R: crate::jobs::Runner + Send + 'static,
{
    use crate::jobs::{plan, preflight};
    let kind = crate::model::JobKind::Deploy;
    let report = match plan::find_stack(&watch.name, &watch.stacks, &stack, &kind) {
        Ok(st) if st.deploy.is_none() => Err(format!(
            "stack {} on {} has no deploy recipe",
            st.name.get_ref(),
            watch.name
        )),
        Ok(st) => {
            let settings = preflight::Settings {
                disk_warn: watch.disk_warn,
                fetch,
                probe_lock: true,
                force: false,
            };
            let socket = watch.docker_host.as_deref();
            preflight::check(&*runner, docker.as_ref(), socket, st, &settings).await
        }
        Err(e) => Err(e),
    };
    let host = watch.host;
    let _ = tx
        .send(Msg::Preflight {
            host,
            id,
            stack,
            report,
        })
        .await;
}

/// Answers a pre-flight asked of a worker whose host is not connected.
pub fn refuse_preflight(host: usize, id: u64, stack: String, why: &str, tx: &mpsc::Sender<Msg>) {
    let tx = tx.clone();
    let report = Err(why.to_string());
    tokio::spawn(async move {
        let _ = tx
            .send(Msg::Preflight {
                host,
                id,
                stack,
                report,
            })
            .await;
    });
}

/// Answers a job asked of a worker that cannot run it now: the console hears it failed
/// (sent from a task of its own, so a full channel never loses it) and the audit log gets
/// its line, `refused: <why>`.
pub fn refuse_job_audited(
    host: usize,
    name: &str,
    request: &crate::model::JobRequest,
    why: &str,
    tx: &mpsc::Sender<Msg>,
) {
    use crate::jobs::audit;
    let time = jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let mut record = crate::model::JobRecord::new(
        time,
        audit::local_user(),
        name,
        &request.stack,
        &request.action(),
    );
    record.outcome = format!("refused: {why}");
    if let Some(path) = audit::path()
        && let Err(e) = audit::append_to(&path, &record)
    {
        tracing::error!("audit log: {e}");
    }
    let events = [
        crate::model::JobEvent::Recorded(Box::new(record)),
        crate::model::JobEvent::Finished(Err(why.to_string())),
    ];
    let tx = tx.clone();
    tokio::spawn(async move {
        for event in events {
            let _ = tx.send(Msg::Job { host, event }).await;
        }
    });
}

/// Every set of a host reported as not listed in time: a hung listing (a dead mount) must
/// say so rather than leave the panel as it was.
pub fn timed_out_backups(
    host: usize,
    sets: &[SetRef],
    limit: Duration,
    now_secs: i64,
) -> Vec<crate::collect::backups::BackupStatus> {
    use crate::collect::backups::{ListError, evaluate};
    sets.iter()
        .map(|(stack, set)| {
            let error = ListError::Failed {
                dir: set.dir.clone(),
                detail: format!("the listing timed out after {}s", limit.as_secs()),
            };
            evaluate(host, stack, set, Err(&error), now_secs)
        })
        .collect()
}
