//! Docker on one host, the same for the local and the SSH worker: connect and retry,
//! list containers through the inspect cache, merge in cgroup counters, follow one log.

use std::time::{Duration, Instant};

use bollard::Docker;
use jiff::Timestamp;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::HostCmd;
use crate::docker::{self, InspectCache};
use crate::model::{DockerState, Msg};

/// How long to wait before asking an unreachable Docker socket again.
const DOCKER_RETRY: Duration = Duration::from_secs(10);

/// A container's CPU (percent of one core, once two samples exist) and memory.
pub type Usage = (Option<f64>, u64);

pub struct DockerWatch {
    host: usize,
    docker: Option<Docker>,
    next_try: Instant,
    cache: InspectCache,
    logs: Option<(String, JoinHandle<()>)>,
}

impl DockerWatch {
    pub fn new(host: usize) -> Self {
        DockerWatch {
            host,
            docker: None,
            next_try: Instant::now(),
            cache: InspectCache::default(),
            logs: None,
        }
    }

    pub fn wants_connect(&self) -> bool {
        self.docker.is_none() && Instant::now() >= self.next_try
    }

    pub async fn connected(
        &mut self,
        result: Result<(Docker, String), String>,
        tx: &mpsc::Sender<Msg>,
    ) {
        let state = match result {
            Ok((d, version)) => {
                self.docker = Some(d);
                DockerState::Up { version }
            }
            Err(reason) => {
                self.next_try = Instant::now() + DOCKER_RETRY;
                DockerState::Unavailable { reason }
            }
        };
        let _ = tx
            .send(Msg::Docker {
                host: self.host,
                state,
            })
            .await;
    }

    /// Lists containers and sends them with their usage; on failure, Docker is marked
    /// unavailable and asked again later. Returns the ids listed, so callers can forget
    /// state kept for containers that are gone.
    pub async fn poll(
        &mut self,
        tx: &mpsc::Sender<Msg>,
        mut usage: impl FnMut(&str) -> Option<Usage>,
    ) -> Vec<String> {
        let Some(d) = &self.docker else {
            return Vec::new();
        };
        match self.cache.list(d).await {
            Ok(mut containers) => {
                for c in containers.iter_mut().filter(|c| c.is_running()) {
                    if let Some((cpu, mem)) = usage(&c.id) {
                        c.cpu_percent = cpu;
                        c.mem_bytes = Some(mem);
                    }
                }
                let ids = containers.iter().map(|c| c.id.clone()).collect();
                let msg = Msg::Containers {
                    host: self.host,
                    at: Timestamp::now(),
                    containers,
                };
                let _ = tx.send(msg).await;
                ids
            }
            Err(reason) => {
                self.docker = None;
                self.next_try = Instant::now() + DOCKER_RETRY;
                let _ = tx
                    .send(Msg::Docker {
                        host: self.host,
                        state: DockerState::Unavailable { reason },
                    })
                    .await;
                Vec::new()
            }
        }
    }

    pub async fn command(&mut self, cmd: HostCmd, tx: &mpsc::Sender<Msg>) {
        match cmd {
            HostCmd::FollowLogs { id } => {
                self.stop_logs();
                match &self.docker {
                    Some(d) => {
                        let task = tokio::spawn(docker::follow_logs(
                            d.clone(),
                            self.host,
                            id.clone(),
                            tx.clone(),
                        ));
                        self.logs = Some((id, task));
                    }
                    None => {
                        let msg = Msg::LogEnded {
                            host: self.host,
                            id,
                            reason: "Docker is not reachable".into(),
                        };
                        let _ = tx.send(msg).await;
                    }
                }
            }
            HostCmd::StopLogs { id } => {
                if self
                    .logs
                    .as_ref()
                    .is_some_and(|(current, _)| *current == id)
                {
                    self.stop_logs();
                }
            }
            // Host keys are the connection's business, not Docker's.
            HostCmd::AcceptHostKey { .. } => {}
        }
    }

    /// The connection under Docker went away: forget the client, keep nothing running.
    pub fn reset(&mut self) {
        self.stop_logs();
        self.docker = None;
        self.next_try = Instant::now();
    }

    fn stop_logs(&mut self) {
        if let Some((_, task)) = self.logs.take() {
            task.abort();
        }
    }
}

impl Drop for DockerWatch {
    fn drop(&mut self) {
        self.stop_logs();
    }
}
