//! Host workers: one tokio task per host owns that host's connection, polls it, runs what
//! it is asked, and reports by sending messages. Workers never touch the model.

pub mod local;

use tokio::sync::mpsc;

use crate::config::{Config, Host};
use crate::model::{HostConn, Msg};

/// What the runtime asks of a host worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostCmd {
    FollowLogs { id: String },
    StopLogs { id: String },
}

/// A running worker's inbox.
#[derive(Debug, Clone)]
pub struct HostHandle {
    pub cmds: Option<mpsc::Sender<HostCmd>>,
}

impl HostHandle {
    pub fn send(&self, cmd: HostCmd) {
        if let Some(tx) = &self.cmds {
            // A full inbox means the worker is stuck; dropping a log request is harmless.
            let _ = tx.try_send(cmd);
        }
    }
}

/// Starts the worker for host `index`.
pub fn spawn(index: usize, host: &Host, config: &Config, tx: mpsc::Sender<Msg>) -> HostHandle {
    if host.is_local() {
        let cmds = local::spawn(
            index,
            host.docker_socket().to_string(),
            config.refresh_for(host),
            tx,
        );
        HostHandle { cmds: Some(cmds) }
    } else {
        let reason =
            "SSH hosts are not supported by this build yet: only `address = \"local\"` is watched"
                .to_string();
        let _ = tx.try_send(Msg::Conn {
            host: index,
            conn: HostConn::Down {
                since: jiff::Timestamp::now(),
                reason,
            },
        });
        HostHandle { cmds: None }
    }
}
