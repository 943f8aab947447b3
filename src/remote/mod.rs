//! Host workers: one tokio task per host owns that host's connection, polls it, runs what
//! it is asked, and reports by sending messages. Workers never touch the model.

pub mod docker_watch;
pub mod known_hosts;
pub mod local;
pub mod ssh;
pub mod ssh_worker;

use std::time::Duration;

use tokio::sync::mpsc;

use crate::collect::backups::SetRef;

use crate::config::{Config, Host, Stack};
use crate::model::Msg;

/// What the runtime asks of a host worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostCmd {
    FollowLogs {
        id: String,
    },
    StopLogs {
        id: String,
    },
    /// The operator trusts this host key fingerprint: record it and connect.
    AcceptHostKey {
        fingerprint: String,
    },
    /// Take a backup of one set now.
    Backup {
        stack: String,
        set: String,
    },
    /// The passphrase of an encrypted identity file, typed by the operator.
    Passphrase {
        path: String,
        passphrase: crate::model::Secret,
    },
}

/// A running worker's inbox.
#[derive(Debug, Clone)]
pub struct HostHandle {
    pub cmds: mpsc::Sender<HostCmd>,
}

impl HostHandle {
    pub fn send(&self, cmd: HostCmd) {
        // A full inbox means the worker is stuck; dropping a log request is harmless.
        let _ = self.cmds.try_send(cmd);
    }
}

/// What every worker of one run shares: `~/.ssh/config`, read once, and the host key policy.
pub struct Shared {
    pub ssh_config: Option<ssh2_config::SshConfig>,
    pub policy: ssh::KeyPolicy,
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
}

/// Backup directories change slowly: they are listed this often, not every tick.
pub const BACKUP_EVERY: Duration = Duration::from_secs(30);

/// HTTP checks run this often: often enough to notice an outage within a minute, rarely
/// enough not to show up in the app's own request logs.
pub const CHECK_EVERY: Duration = Duration::from_secs(30);

/// Runs a host's checks in their own task, so a check waiting out its timeout never holds
/// up the metrics; the returned handle tells the worker whether a round is still going.
pub fn spawn_checks(
    watch: &Watch,
    tunnel: Option<std::sync::Arc<dyn crate::checks::Tunnel>>,
    tx: &mpsc::Sender<Msg>,
) -> tokio::task::JoinHandle<()> {
    let (host, specs, tx) = (watch.host, watch.checks.clone(), tx.clone());
    tokio::spawn(async move {
        let now = jiff::Timestamp::now().as_second();
        let checks = crate::checks::run_all(&specs, tunnel, now).await;
        let _ = tx.send(Msg::Checks { host, checks }).await;
    })
}

/// Starts the worker for host `index`; every host connects in parallel.
pub fn spawn(
    index: usize,
    host: &Host,
    config: &Config,
    shared: &Shared,
    tx: mpsc::Sender<Msg>,
) -> HostHandle {
    let watch = Watch {
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
    };
    let cmds = if host.is_local() {
        local::spawn(watch, tx)
    } else {
        let target = ssh::resolve(host, &config.inventory.settings, shared.ssh_config.as_ref());
        ssh_worker::spawn(watch, target, shared.policy.clone(), tx)
    };
    HostHandle { cmds }
}

/// Runs a backup in its own task, so the worker keeps polling meanwhile: forwards its
/// progress to the console, writes the audit line, and lists the sets again at the end so
/// the new file shows at once.
pub fn spawn_backup<R>(
    runner: std::sync::Arc<R>,
    watch: &Watch,
    stack: &str,
    set: &str,
    tx: mpsc::Sender<Msg>,
) where
    R: crate::jobs::Runner + Send + 'static,
{
    use crate::jobs::backup::{self, BackupEvent, BackupJob};
    use crate::model::JobEvent;
    let host = watch.host;
    let found = watch
        .stacks
        .iter()
        .find(|s| s.name.get_ref() == stack)
        .and_then(|st| {
            st.backups
                .iter()
                .find(|b| b.name.get_ref() == set)
                .map(|b| (st.clone(), b.clone()))
        });
    let Some((stack, set)) = found else {
        let event =
            JobEvent::Finished(Err(format!("no backup set {stack}/{set} in the inventory")));
        let _ = tx.try_send(Msg::Job { host, event });
        return;
    };
    let (name, docker_host, sets) = (
        watch.name.clone(),
        watch.docker_host.clone(),
        watch.backups.clone(),
    );
    tokio::spawn(async move {
        let (etx, mut erx) = mpsc::channel::<BackupEvent>(32);
        let forward_tx = tx.clone();
        let forward = tokio::spawn(async move {
            while let Some(e) = erx.recv().await {
                if let BackupEvent::Progress { bytes, elapsed } = e {
                    let event = JobEvent::Progress {
                        bytes,
                        elapsed_secs: elapsed.as_secs(),
                    };
                    let _ = forward_tx.send(Msg::Job { host, event }).await;
                }
            }
        });
        let job = BackupJob {
            stack: &stack,
            set: &set,
            docker_host: docker_host.as_deref(),
        };
        let started = std::time::Instant::now();
        let result = backup::run(&*runner, &job, &etx)
            .await
            .map_err(|e| e.to_string());
        drop(etx);
        let _ = forward.await;
        if let Err(e) = crate::jobs::audit::record_backup(
            &name,
            stack.name.get_ref(),
            set.name.get_ref(),
            &result,
            started.elapsed(),
        ) {
            tracing::warn!("audit log: {e}");
        }
        let summary = result.map(|o| {
            let removed = if o.removed.is_empty() {
                String::new()
            } else {
                format!(", {} old removed", o.removed.len())
            };
            format!(
                "{} ({} in {}s{removed})",
                o.path,
                crate::ui::format::bytes(o.size),
                o.duration.as_secs()
            )
        });
        let _ = tx
            .send(Msg::Job {
                host,
                event: JobEvent::Finished(summary),
            })
            .await;
        let now = jiff::Timestamp::now().as_second();
        let backups = crate::collect::backups::survey(host, &sets, now, &*runner).await;
        let _ = tx.send(Msg::Backups { host, backups }).await;
    });
}
