//! The worker for the machine opsdeck runs on: sysinfo for metrics, the local Docker
//! socket for containers, cgroupfs for their CPU and memory.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use jiff::Timestamp;
use tokio::sync::mpsc;

use super::docker_watch::{DockerWatch, LogFollower};
use super::{BACKUP_EVERY, HostCmd, Watch};
use crate::collect::backups;
use crate::collect::cgroup::{self, CpuRates};
use crate::collect::local::LocalCollector;
use crate::docker;
use crate::jobs::Local;
use crate::model::{HostConn, Msg};

pub fn spawn(watch: Watch, tx: mpsc::Sender<Msg>) -> mpsc::UnboundedSender<HostCmd> {
    let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
    tokio::spawn(run(watch, tx, cmd_rx));
    cmd_tx
}

async fn run(watch: Watch, tx: mpsc::Sender<Msg>, mut cmds: mpsc::UnboundedReceiver<HostCmd>) {
    let Watch {
        host,
        ref socket,
        refresh,
        ..
    } = watch;
    let mut next_backups = Instant::now();
    let mut next_checks = Instant::now();
    let mut checks_running: Option<tokio::task::JoinHandle<()>> = None;
    let mut job: Option<super::RunningJob> = None;
    let local = Arc::new(Local::new());
    let mut collector = match LocalCollector::new() {
        Ok(c) => Some(c),
        Err(reason) => {
            let since = Timestamp::now();
            let _ = tx
                .send(Msg::Conn {
                    host,
                    conn: HostConn::Down { since, reason },
                })
                .await;
            None
        }
    };
    let mut docker_watch = DockerWatch::new(host);
    let mut logs = LogFollower::default();
    let mut rates = CpuRates::default();
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
                if !watch.backups.is_empty() && Instant::now() >= next_backups {
                    next_backups = Instant::now() + BACKUP_EVERY;
                    let now = Timestamp::now().as_second();
                    let backups = backups::survey(host, &watch.backups, now, &*local).await;
                    let _ = tx.send(Msg::Backups { host, backups }).await;
                }
                if !watch.checks.is_empty()
                    && Instant::now() >= next_checks
                    && checks_running.as_ref().is_none_or(|h| h.is_finished())
                {
                    next_checks = Instant::now() + super::CHECK_EVERY;
                    checks_running = Some(super::spawn_checks(&watch, None, &tx));
                }
                if docker_watch.wants_connect() {
                    docker_watch
                        .connected(docker::connect_unix(socket).await, docker::Socket::unix(socket), &tx)
                        .await;
                }
                let now = Instant::now();
                let root = Path::new("/sys/fs/cgroup");
                let ids = docker_watch.tick(&tx, |id| {
                    let counters = cgroup::read_local(root, id)?;
                    Some((rates.rate(id, counters.cpu_ns, now), counters.mem_bytes))
                }).await;
                let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
                rates.retain(&ids);
                logs.ensure(docker_watch.engine(), host, &tx);
            }
            // An event only marks the list stale: it is read again at the next tick.
            _ = docker_watch.event() => {}
            cmd = cmds.recv() => match cmd {
                None => break,
                Some(HostCmd::Job(request)) => {
                    if job.as_ref().is_some_and(super::RunningJob::running) {
                        let why = "a job is already running on this host";
                        super::refuse_job_audited(host, &watch.name, &request, why, &tx);
                    } else {
                        let tools = super::JobTools { docker: docker_watch.client(), tunnel: None };
                        job = Some(super::spawn_job(local.clone(), tools, &watch, request, tx.clone()));
                    }
                }
                Some(HostCmd::CancelJob) => {
                    if let Some(j) = &job {
                        j.cancel();
                    }
                }
                Some(cmd) => {
                    if logs.command(&cmd) {
                        logs.ensure(docker_watch.engine(), host, &tx);
                    }
                }
            }
        }
    }
}
