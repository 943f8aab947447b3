//! Host workers: one tokio task per host owns that host's connection, polls it, runs what
//! it is asked, and reports by sending messages. Workers never touch the model.

pub mod docker_watch;
pub mod known_hosts;
pub mod local;

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

/// Starts the worker for host `index`; every host connects in parallel.
pub fn spawn(index: usize, host: &Host, config: &Config, tx: mpsc::Sender<Msg>) -> HostHandle {
    let refresh = config.refresh_for(host);
    let socket = host.docker_socket().to_string();
    let (cmds, _) = mpsc::channel(1);
    if host.is_local() {
        return HostHandle {
            cmds: local::spawn(index, socket, refresh, tx),
        };
    }
    let reason =
        "SSH hosts are not supported by this build yet: only `address = \"local\"` is watched"
            .to_string();
    let conn = crate::model::HostConn::Down {
        since: jiff::Timestamp::now(),
        reason,
    };
    let _ = tx.try_send(Msg::Conn { host: index, conn });
    HostHandle { cmds }
}
