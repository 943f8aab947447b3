//! The worker for the machine opsdeck runs on: sysinfo for metrics, the local Docker
//! socket for containers, cgroupfs for their CPU and memory.

use std::path::Path;
use std::time::{Duration, Instant};

use bollard::Docker;
use jiff::Timestamp;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::HostCmd;
use crate::collect::cgroup::{self, CpuRates};
use crate::collect::local::LocalCollector;
use crate::docker::{self, InspectCache};
use crate::model::{DockerState, Msg};

/// How long to wait before asking an unreachable Docker socket again.
const DOCKER_RETRY: Duration = Duration::from_secs(10);

pub fn spawn(
    host: usize,
    socket: String,
    refresh: Duration,
    tx: mpsc::Sender<Msg>,
) -> mpsc::Sender<HostCmd> {
    let (cmd_tx, cmd_rx) = mpsc::channel(16);
    tokio::spawn(run(host, socket, refresh, tx, cmd_rx));
    cmd_tx
}

async fn run(
    host: usize,
    socket: String,
    refresh: Duration,
    tx: mpsc::Sender<Msg>,
    mut cmds: mpsc::Receiver<HostCmd>,
) {
    let mut collector = match LocalCollector::new() {
        Ok(c) => Some(c),
        Err(reason) => {
            let since = Timestamp::now();
            let _ = tx
                .send(Msg::Conn {
                    host,
                    conn: crate::model::HostConn::Down { since, reason },
                })
                .await;
            None
        }
    };
    let mut docker: Option<Docker> = None;
    let mut next_docker_try = Instant::now();
    let mut cache = InspectCache::default();
    let mut rates = CpuRates::default();
    let mut logs: Option<(String, JoinHandle<()>)> = None;
    let mut ticker = tokio::time::interval(refresh);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                if let Some(mut c) = collector.take() {
                    // sysinfo reads /proc synchronously; keep it off the async threads.
                    match tokio::task::spawn_blocking(move || { let m = c.sample(); (c, m) }).await {
                        Ok((c, metrics)) => {
                            collector = Some(c);
                            if tx.send(Msg::Metrics { host, at: Timestamp::now(), metrics }).await.is_err() {
                                break;
                            }
                        }
                        Err(e) => tracing::error!("local metrics sampler failed: {e}"),
                    }
                }
                if docker.is_none() && Instant::now() >= next_docker_try {
                    match docker::connect_unix(&socket).await {
                        Ok((d, version)) => {
                            docker = Some(d);
                            let _ = tx.send(Msg::Docker { host, state: DockerState::Up { version } }).await;
                        }
                        Err(reason) => {
                            next_docker_try = Instant::now() + DOCKER_RETRY;
                            let _ = tx.send(Msg::Docker { host, state: DockerState::Unavailable { reason } }).await;
                        }
                    }
                }
                if let Some(d) = &docker {
                    match cache.list(d).await {
                        Ok(mut containers) => {
                            let now = Instant::now();
                            let root = Path::new("/sys/fs/cgroup");
                            for c in containers.iter_mut().filter(|c| c.is_running()) {
                                if let Some(counters) = cgroup::read_local(root, &c.id) {
                                    c.mem_bytes = Some(counters.mem_bytes);
                                    c.cpu_percent = rates.rate(&c.id, counters.cpu_ns, now);
                                }
                            }
                            let ids: Vec<&str> = containers.iter().map(|c| c.id.as_str()).collect();
                            rates.retain(&ids);
                            let _ = tx.send(Msg::Containers { host, at: Timestamp::now(), containers }).await;
                        }
                        Err(reason) => {
                            docker = None;
                            next_docker_try = Instant::now() + DOCKER_RETRY;
                            let _ = tx.send(Msg::Docker { host, state: DockerState::Unavailable { reason } }).await;
                        }
                    }
                }
            }
            cmd = cmds.recv() => match cmd {
                None => break,
                Some(HostCmd::FollowLogs { id }) => {
                    if let Some((_, task)) = logs.take() {
                        task.abort();
                    }
                    match &docker {
                        Some(d) => {
                            let task = tokio::spawn(docker::follow_logs(d.clone(), host, id.clone(), tx.clone()));
                            logs = Some((id, task));
                        }
                        None => {
                            let _ = tx.send(Msg::LogEnded { host, id, reason: "Docker is not reachable".into() }).await;
                        }
                    }
                }
                Some(HostCmd::StopLogs { id }) => {
                    if logs.as_ref().is_some_and(|(current, _)| *current == id)
                        && let Some((_, task)) = logs.take() {
                            task.abort();
                        }
                }
            }
        }
    }
    if let Some((_, task)) = logs {
        task.abort();
    }
}
