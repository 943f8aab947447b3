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

use crate::config::{Config, Host};
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
    pub socket: String,
    pub refresh: Duration,
    pub backups: Vec<SetRef>,
}

/// Backup directories change slowly: they are listed this often, not every tick.
pub const BACKUP_EVERY: Duration = Duration::from_secs(30);

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
        socket: host.docker_socket().to_string(),
        refresh: config.refresh_for(host),
        backups: host
            .stacks
            .iter()
            .flat_map(|st| {
                st.backups
                    .iter()
                    .map(|b| (st.name.get_ref().clone(), b.clone()))
            })
            .collect(),
    };
    let cmds = if host.is_local() {
        local::spawn(watch, tx)
    } else {
        let target = ssh::resolve(host, &config.inventory.settings, shared.ssh_config.as_ref());
        ssh_worker::spawn(watch, target, shared.policy.clone(), tx)
    };
    HostHandle { cmds }
}
