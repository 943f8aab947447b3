//! A stack's logs together: every service's log, interleaved by Docker's timestamps, as
//! `docker compose logs` prints them. Each service is read by the single-container
//! machinery of [`super::logs`] (its decoder, its bounds, its resume after a reconnect);
//! this only puts the lines in one order ([`Interleave`]) and names their service.
//!
//! First each service's backlog (its last `tail` lines, or those after `after`) is read
//! in full and merge-sorted; then, when following, each service is followed from its own
//! last line on, and the live lines are ordered within a short window.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use bollard::Docker;
use tokio::sync::mpsc;

use super::logs::{self, LogDecoder, LogRequest, Resume, Socket};
use crate::model::logs::{Interleave, LOG_BYTES};
use crate::model::{LogLine, Msg, Stream};

/// One service of the stack.
#[derive(Debug, Clone)]
pub struct StackSource {
    /// The compose service, as the host named it (shown sanitised).
    pub service: String,
    pub id: String,
    /// Where its log got to: a follower started again (after a reconnect) carries on from
    /// there, without the backlog.
    pub resume: Resume,
}

impl StackSource {
    pub fn new(service: impl Into<String>, id: impl Into<String>) -> Self {
        StackSource {
            service: service.into(),
            id: id.into(),
            resume: Resume::default(),
        }
    }
}

/// What to read of the stack.
#[derive(Debug, Clone, Copy)]
pub struct StackRequest {
    /// Keep reading new lines after the backlog.
    pub follow: bool,
    /// Each service's last lines (`None`: all of them).
    pub tail: Option<u64>,
    /// Only lines stamped after this.
    pub after: Option<jiff::Timestamp>,
}

/// How often held lines are looked at, and the most lines sent in one message.
const FLUSH_EVERY: Duration = Duration::from_millis(50);
const BATCH: usize = 1000;

/// Reads the stack's logs and sends them as [`Msg::StackLines`] (each line's `source` the
/// index of its service in `sources`), then [`Msg::StackEnded`] when every service's log
/// has ended (or, without `follow`, after the backlog). A service whose log ends says so
/// in a line of its own, as compose does. Runs until then or until aborted; a follower
/// aborted loses at most the lines held for the window.
pub async fn follow_stack(
    (docker, socket): (Docker, Socket),
    host: usize,
    project: String,
    sources: Vec<StackSource>,
    req: StackRequest,
    tx: mpsc::Sender<Msg>,
) {
    let send = |lines: Vec<LogLine>| {
        let (tx, project) = (tx.clone(), project.clone());
        async move {
            lines.is_empty()
                || tx
                    .send(Msg::StackLines {
                        host,
                        project,
                        lines,
                    })
                    .await
                    .is_ok()
        }
    };
    // The backlog, each service's in full (bounded), then all of them sorted.
    let reads = sources.iter().enumerate().map(|(i, s)| {
        let (docker, socket) = (&docker, &socket);
        async move {
            if s.resume.lock().ok().and_then(|r| *r).is_some() {
                return Ok(Vec::new());
            }
            backlog(docker, socket, &s.id, req.tail, req.after)
                .await
                .map(|lines| tag(lines, i))
        }
    });
    let mut merged = Interleave::default();
    let mut out = Vec::new();
    let mut ended = vec![false; sources.len()];
    for (i, read) in futures::future::join_all(reads)
        .await
        .into_iter()
        .enumerate()
    {
        match read {
            Ok(lines) => {
                if let Some(last) = lines.iter().rev().find_map(|l| l.at)
                    && let Ok(mut r) = sources[i].resume.lock()
                {
                    *r = Some(last);
                }
                for l in lines {
                    merged.push(l, 0, &mut out);
                }
            }
            Err(e) => {
                ended[i] = true;
                merged.push(note(i, &format!("cannot read its log: {e}")), 0, &mut out);
            }
        }
    }
    merged.drain(&mut out);
    for chunk in out.chunks(BATCH) {
        if !send(chunk.to_vec()).await {
            return;
        }
    }
    let ended_all = |reason: &str| {
        let msg = Msg::StackEnded {
            host,
            project: project.clone(),
            reason: reason.to_string(),
        };
        let tx = tx.clone();
        async move {
            let _ = tx.send(msg).await;
        }
    };
    if !req.follow {
        return ended_all("end of the log").await;
    }
    // Following: one follower per service, from its own last line (or the time asked
    // for, or only new lines); their batches come here, keyed by container id.
    let (inner_tx, mut inner) = mpsc::channel::<Msg>(64);
    let mut followers = tokio::task::JoinSet::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for (i, s) in sources.iter().enumerate() {
        if ended[i] {
            continue;
        }
        if let Ok(mut r) = s.resume.lock()
            && r.is_none()
        {
            *r = req.after;
        }
        index.insert(s.id.clone(), i);
        followers.spawn(logs::follow(
            docker.clone(),
            socket.clone(),
            host,
            s.id.clone(),
            inner_tx.clone(),
            s.resume.clone(),
            Some(0),
        ));
    }
    drop(inner_tx);
    let start = tokio::time::Instant::now();
    let mut flush = tokio::time::interval(FLUSH_EVERY);
    let mut out = Vec::new();
    loop {
        let now_ms = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
        tokio::select! {
            msg = inner.recv() => match msg {
                Some(Msg::LogLines { id, lines, .. }) => {
                    if let Some(&i) = index.get(&id) {
                        for l in tag(lines, i) {
                            merged.push(l, now_ms, &mut out);
                        }
                    }
                }
                Some(Msg::LogEnded { id, reason, .. }) => {
                    if let Some(&i) = index.get(&id) {
                        ended[i] = true;
                        merged.push(note(i, &format!("log ended: {reason}")), now_ms, &mut out);
                    }
                }
                Some(_) => {}
                None => break,
            },
            _ = flush.tick() => merged.release(now_ms, &mut out),
        }
        if (out.len() >= BATCH || (!out.is_empty() && inner.is_empty()))
            && !send(std::mem::take(&mut out)).await
        {
            return;
        }
        if ended.iter().all(|e| *e) {
            break;
        }
    }
    merged.drain(&mut out);
    send(out).await;
    ended_all("every service's log ended").await;
}

/// The lines of service `i`.
fn tag(mut lines: Vec<LogLine>, i: usize) -> Vec<LogLine> {
    let source = u16::try_from(i).ok();
    for l in &mut lines {
        l.source = source;
    }
    lines
}

/// opsdeck's own line about service `i` (its log ended, or could not be read).
fn note(i: usize, text: &str) -> LogLine {
    LogLine {
        time: String::new(),
        at: None,
        source: u16::try_from(i).ok(),
        stream: Stream::Stderr,
        text: format!("── {}", crate::sanitize::line(text)),
    }
}

/// A container's log up to now: its last `tail` lines (or those after `after`), each
/// with its timestamp, the newest [`LOG_BYTES`] of them at most.
pub async fn backlog(
    docker: &Docker,
    socket: &Socket,
    id: &str,
    tail: Option<u64>,
    after: Option<jiff::Timestamp>,
) -> Result<Vec<LogLine>, String> {
    let req = LogRequest {
        follow: false,
        timestamps: true,
        tail,
        after,
    };
    let mut body = logs::open(docker, socket, id, &req).await?;
    let mut decoder = LogDecoder::resuming(body.tty, after);
    let mut kept: VecDeque<LogLine> = VecDeque::new();
    let mut bytes = 0;
    let mut batch = Vec::new();
    let mut keep = |batch: &mut Vec<LogLine>| {
        for l in batch.drain(..) {
            bytes += l.cost();
            kept.push_back(l);
            while bytes > LOG_BYTES && kept.len() > 1 {
                if let Some(old) = kept.pop_front() {
                    bytes -= old.cost();
                }
            }
        }
    };
    while let Some(chunk) = body.next().await {
        decoder.push(&chunk?, &mut batch)?;
        keep(&mut batch);
    }
    decoder.finish(&mut batch);
    keep(&mut batch);
    Ok(kept.into())
}
