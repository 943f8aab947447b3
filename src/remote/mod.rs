//! Host workers: one tokio task per host owns that host's connection, polls it, runs what
//! it is asked, and reports by sending messages. Workers never touch the model.

pub mod docker_watch;
pub mod known_hosts;
pub mod local;
pub mod ssh;
pub mod ssh_worker;

use tokio::sync::mpsc;

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

/// Starts the worker for host `index`; every host connects in parallel.
pub fn spawn(
    index: usize,
    host: &Host,
    config: &Config,
    shared: &Shared,
    tx: mpsc::Sender<Msg>,
) -> HostHandle {
    let refresh = config.refresh_for(host);
    let socket = host.docker_socket().to_string();
    let cmds = if host.is_local() {
        local::spawn(index, socket, refresh, tx)
    } else {
        let target = ssh::resolve(host, &config.inventory.settings, shared.ssh_config.as_ref());
        ssh_worker::spawn(index, target, socket, refresh, shared.policy.clone(), tx)
    };
    HostHandle { cmds }
}
