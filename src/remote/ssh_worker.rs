//! The worker for a host reached over SSH: one connection, reconnected with capped
//! exponential backoff; per tick one exec for metrics and container counters, one
//! Docker API list over the same connection.

use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use tokio::sync::mpsc;

use super::docker_watch::DockerWatch;
use super::ssh::{self, KeyPolicy, Session, Target};
use super::{BACKUP_EVERY, CHECK_EVERY, HostCmd, Watch};
use crate::collect::{backups, procfs};
use crate::model::{HostConn, Msg};

const MAX_BACKOFF: Duration = Duration::from_secs(30);

pub fn spawn(
    watch: Watch,
    target: Target,
    policy: KeyPolicy,
    tx: mpsc::Sender<Msg>,
) -> mpsc::Sender<HostCmd> {
    let (cmd_tx, cmd_rx) = mpsc::channel(16);
    tokio::spawn(run(watch, target, policy, tx, cmd_rx));
    cmd_tx
}

enum Exit {
    /// The console is gone: stop.
    Quit,
    /// The connection broke: reconnect.
    Lost(String),
}

async fn run(
    watch: Watch,
    target: Target,
    mut policy: KeyPolicy,
    tx: mpsc::Sender<Msg>,
    mut cmds: mpsc::Receiver<HostCmd>,
) {
    let host = watch.host;
    let mut backoff = Duration::from_secs(1);
    let mut down_since: Option<Timestamp> = None;
    let mut passphrases = ssh::Passphrases::new();
    loop {
        match Session::connect(&target, &policy, &passphrases).await {
            Ok(session) => {
                backoff = Duration::from_secs(1);
                down_since = None;
                let _ = tx
                    .send(Msg::Conn {
                        host,
                        conn: HostConn::Up,
                    })
                    .await;
                match serve(&watch, Arc::new(session), &tx, &mut cmds).await {
                    Exit::Quit => return,
                    Exit::Lost(reason) => {
                        let since = *down_since.get_or_insert_with(Timestamp::now);
                        let conn = HostConn::Down {
                            since,
                            reason: format!("{reason}; reconnecting"),
                        };
                        let _ = tx.send(Msg::Conn { host, conn }).await;
                    }
                }
            }
            Err(e) => {
                let since = *down_since.get_or_insert_with(Timestamp::now);
                let fatal = e.is_fatal();
                let reason = if fatal {
                    e.to_string()
                } else {
                    format!("{e} (retry in {}s)", backoff.as_secs())
                };
                if tx
                    .send(Msg::Conn {
                        host,
                        conn: HostConn::Down { since, reason },
                    })
                    .await
                    .is_err()
                {
                    return;
                }
                let question = match &e {
                    ssh::SshError::UnknownKey { fingerprint, .. } => Some(Msg::HostKeyUnknown {
                        host,
                        fingerprint: fingerprint.clone(),
                    }),
                    ssh::SshError::NeedPassphrase { path, wrong } => Some(Msg::PassphraseNeeded {
                        host,
                        path: path.clone(),
                        wrong: *wrong,
                    }),
                    ssh::SshError::ChangedKey { path, line, .. } => Some(Msg::HostKeyAlert {
                        host,
                        message: format!("host key CHANGED ({path}:{line}): connection refused"),
                    }),
                    ssh::SshError::RevokedKey { path, line, .. } => Some(Msg::HostKeyAlert {
                        host,
                        message: format!("host key REVOKED ({path}:{line}): connection refused"),
                    }),
                    _ => None,
                };
                if let Some(msg) = question {
                    let _ = tx.send(msg).await;
                }
                // A refused host key is not retried until the operator says so.
                let wait = if fatal { None } else { Some(backoff) };
                match idle(host, wait, &mut cmds, &tx).await {
                    Idle::Quit => return,
                    Idle::Accept(fingerprint) => policy = KeyPolicy::AcceptFingerprint(fingerprint),
                    Idle::Passphrase(path, secret) => {
                        passphrases.insert(path.into(), secret);
                    }
                    Idle::Retry => {}
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

enum Idle {
    Quit,
    Retry,
    Accept(String),
    Passphrase(String, crate::model::Secret),
}

/// Waits out a backoff (or, with `None`, until the operator accepts a key), answering
/// commands that make no sense while down.
async fn idle(
    host: usize,
    wait: Option<Duration>,
    cmds: &mut mpsc::Receiver<HostCmd>,
    tx: &mpsc::Sender<Msg>,
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
            Some(HostCmd::Job(_)) => {
                super::refuse_job(host, "the host is not connected", tx);
            }
            Some(_) => {}
        }
    }
}

async fn serve(
    spec: &Watch,
    session: Arc<Session>,
    tx: &mpsc::Sender<Msg>,
    cmds: &mut mpsc::Receiver<HostCmd>,
) -> Exit {
    let (host, socket, refresh) = (spec.host, spec.socket.as_str(), spec.refresh);
    let mut next_backups = Instant::now();
    let mut next_checks = Instant::now();
    let mut checks_running: Option<tokio::task::JoinHandle<()>> = None;
    let mut job: Option<super::RunningJob> = None;
    let mut watch = DockerWatch::new(host);
    let mut sampler = procfs::Sampler::default();
    let mut ticker = tokio::time::interval(refresh);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    // A host slower than this is treated as gone, so one wedged host never stalls its row.
    let budget = (refresh * 3).max(Duration::from_secs(10));
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                if session.is_closed() {
                    return Exit::Lost("the SSH connection closed".into());
                }
                let out = match tokio::time::timeout(budget, session.exec(procfs::SCRIPT)).await {
                    Ok(Ok(out)) => out,
                    Ok(Err(e)) => return Exit::Lost(e.to_string()),
                    Err(_) => return Exit::Lost(format!("no answer within {}s", budget.as_secs())),
                };
                let sample = procfs::parse(&String::from_utf8_lossy(&out.stdout));
                if !sample.complete {
                    // A cut-off sample can end in half a number: skip it rather than graph it.
                    tracing::warn!("host {host}: incomplete metrics sample (exit status {:?})", out.status);
                    continue;
                }
                let (metrics, usage) = sampler.next(sample, Instant::now());
                if tx.send(Msg::Metrics { host, at: Timestamp::now(), metrics }).await.is_err() {
                    return Exit::Quit;
                }
                if !spec.backups.is_empty() && Instant::now() >= next_backups {
                    next_backups = Instant::now() + BACKUP_EVERY;
                    let now = Timestamp::now().as_second();
                    let backups = backups::survey(host, &spec.backups, now, &*session).await;
                    let _ = tx.send(Msg::Backups { host, backups }).await;
                }
                if !spec.checks.is_empty()
                    && Instant::now() >= next_checks
                    && checks_running.as_ref().is_none_or(|h| h.is_finished())
                {
                    next_checks = Instant::now() + CHECK_EVERY;
                    let tunnel: Arc<dyn crate::checks::Tunnel> = session.clone();
                    checks_running = Some(super::spawn_checks(spec, Some(tunnel), tx));
                }
                if watch.wants_connect() {
                    let opener = ssh::docker_socket(session.clone(), socket);
                    watch.connected(ssh::docker(session.clone(), socket).await, opener, tx).await;
                }
                watch.poll(tx, |id| usage.get(id).map(|u| (u.cpu_percent, u.mem_bytes))).await;
            }
            cmd = cmds.recv() => match cmd {
                None => {
                    session.disconnect().await;
                    return Exit::Quit;
                }
                Some(HostCmd::AcceptHostKey { .. } | HostCmd::Passphrase { .. }) => {}
                Some(HostCmd::Job(request)) => {
                    if job.as_ref().is_some_and(super::RunningJob::running) {
                        super::refuse_job(host, "a job is already running on this host", tx);
                    } else {
                        let tunnel: Arc<dyn crate::checks::Tunnel> = session.clone();
                        let tools = super::JobTools { docker: watch.client(), tunnel: Some(tunnel) };
                        job = Some(super::spawn_job(session.clone(), tools, spec, request, tx.clone()));
                    }
                }
                Some(HostCmd::CancelJob) => {
                    if let Some(j) = &job {
                        j.cancel();
                    }
                }
                Some(cmd) => watch.command(cmd, tx).await,
            }
        }
    }
}
