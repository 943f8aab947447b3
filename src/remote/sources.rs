//! A worker's external metrics source (issue 16): a Prometheus server's hub, or the
//! host's Netdata. The source's task sends the host's figures; while it serves them the
//! SSH sampler reads only the containers' cgroups (and keeps the connection's pulse), and
//! while it fails the sampler sends the host's figures again (`own`) and the host's state
//! says why. Netdata's cgroup charts also give the containers' CPU and memory (`named`,
//! by container name), which the Docker watcher prefers to the sampler's.
//!
//! A Prometheus feed, and a Netdata reached directly, run for the worker's whole life,
//! connected or not: a host SSH cannot reach may still be reported by its exporter. A
//! Netdata reached through SSH runs while the connection does.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use hyper::body::Bytes;
use jiff::Timestamp;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::docker_watch::Usage;
use crate::metrics::netdata;
use crate::model::{MetricsFrom, Part};

/// Where a host's figures come from, when not from the SSH sampler alone.
#[derive(Debug, Clone)]
pub enum Source {
    /// A Prometheus server's hub: one query per refresh for all its hosts.
    Prometheus(crate::metrics::Feed),
    /// The host's Netdata at `url`, through the SSH connection or from here.
    Netdata { url: String, via_ssh: bool },
}

impl Source {
    /// Whether the source reports the host without its SSH connection (a down host's
    /// answer waits for it).
    pub fn outside(&self) -> bool {
        !matches!(self, Source::Netdata { via_ssh: true, .. })
    }
}

/// What a source's task reports to, shared by the worker's connections.
pub struct Outputs {
    parts: mpsc::Sender<Part>,
    /// True while the SSH sampler must send the host's figures (no source, or it fails).
    own: watch::Sender<bool>,
    /// The containers' usage by name, from the source (Netdata's cgroup charts).
    named: watch::Sender<HashMap<String, Usage>>,
    /// The graphs' history has been sent (once for the worker's life).
    history_sent: AtomicBool,
}

/// What the connection's tasks read of the source.
#[derive(Clone)]
pub struct Readers {
    pub own: watch::Receiver<bool>,
    pub named: watch::Receiver<HashMap<String, Usage>>,
}

/// The outputs of a worker's source and their readers.
pub fn outputs(has_source: bool, parts: mpsc::Sender<Part>) -> (Arc<Outputs>, Readers) {
    let (own, own_rx) = watch::channel(!has_source);
    let (named, named_rx) = watch::channel(HashMap::new());
    let out = Arc::new(Outputs {
        parts,
        own,
        named,
        history_sent: AtomicBool::new(false),
    });
    (
        out,
        Readers {
            own: own_rx,
            named: named_rx,
        },
    )
}

/// The source's task that runs for the worker's life, whatever the connection: a
/// Prometheus feed, or a Netdata reached from here.
pub fn spawn_outside(
    source: Option<&Source>,
    refresh: Duration,
    out: &Arc<Outputs>,
) -> Option<JoinHandle<()>> {
    match source? {
        Source::Prometheus(feed) => Some(tokio::spawn(prometheus(feed.clone(), out.clone()))),
        Source::Netdata {
            url,
            via_ssh: false,
        } => Some(spawn_netdata(url, None, refresh, out)),
        Source::Netdata { via_ssh: true, .. } => None,
    }
}

/// The source's task for one connection: a Netdata reached through it.
pub fn spawn_through(
    source: Option<&Source>,
    refresh: Duration,
    tunnel: Option<Arc<dyn crate::checks::Tunnel>>,
    out: &Arc<Outputs>,
) -> Option<JoinHandle<()>> {
    let Some(Source::Netdata { url, via_ssh: true }) = source else {
        return None;
    };
    Some(spawn_netdata(url, tunnel, refresh, out))
}

/// The task of the Netdata at `url`: reached through `tunnel` (the host's SSH
/// connection), or from here without one.
fn spawn_netdata(
    url: &str,
    tunnel: Option<Arc<dyn crate::checks::Tunnel>>,
    refresh: Duration,
    out: &Arc<Outputs>,
) -> JoinHandle<()> {
    let what = match tunnel {
        Some(_) => format!("netdata {url} (through SSH)"),
        None => format!("netdata {url}"),
    };
    let base = url.trim_end_matches('/').to_string();
    let fetch = move |path: String| {
        let url = format!("{base}{path}");
        let tunnel = tunnel.clone();
        async move {
            match tunnel {
                Some(t) => crate::checks::fetch_through(&*t, &url, netdata::ANSWER_CAP).await,
                None => crate::metrics::get(&url, netdata::ANSWER_CAP).await,
            }
        }
    };
    tokio::spawn(netdata_feed(what, refresh, fetch, out.clone()))
}

impl Outputs {
    /// Tells the sampler whether to send the host's figures, and the model where they come
    /// from (only when that changed). False when the console is gone.
    async fn state(
        &self,
        said: &mut Option<MetricsFrom>,
        what: &str,
        fallback: Option<String>,
    ) -> bool {
        let failing = fallback.is_some();
        self.own
            .send_if_modified(|own| std::mem::replace(own, failing) != failing);
        if failing {
            self.named.send_if_modified(|n| {
                let had = !n.is_empty();
                n.clear();
                had
            });
        }
        let now = MetricsFrom {
            what: what.to_string(),
            fallback: fallback.map(|f| format!("{f}: sampled over SSH meanwhile")),
        };
        if said.as_ref() == Some(&now) {
            return true;
        }
        *said = Some(now.clone());
        self.parts.send(Part::Source(now)).await.is_ok()
    }
}

/// The host's figures from a Prometheus hub: its history once, then each round's figures.
async fn prometheus(feed: crate::metrics::Feed, out: Arc<Outputs>) {
    let what = format!("prometheus {} (instance {})", feed.server, feed.instance);
    let (mut rounds, mut history) = (feed.rounds, feed.history);
    let mut said: Option<MetricsFrom> = None;
    loop {
        let answer = if out.history_sent.load(Ordering::Relaxed) {
            None
        } else {
            history.borrow_and_update().clone()
        };
        if let Some(answer) = answer {
            // Taken once; an instance the answer lacks (added later, or unknown to the
            // server) waits for the next.
            let mine = match answer {
                Ok(all) => all.get(&feed.instance).cloned(),
                Err(_) => {
                    out.history_sent.store(true, Ordering::Relaxed);
                    None
                }
            };
            if let Some(mine) = mine {
                out.history_sent.store(true, Ordering::Relaxed);
                if out.parts.send(Part::History(mine)).await.is_err() {
                    return;
                }
            }
        }
        let round = rounds.borrow_and_update().clone();
        if let Some(round) = round {
            let (figures, fallback) = match &round.result {
                Ok(all) => match all.get(&feed.instance) {
                    Some(m) => (Some(m.clone()), None),
                    None => (
                        None,
                        Some(format!("{} has no instance {}", feed.server, feed.instance)),
                    ),
                },
                Err(e) => (None, Some(e.clone())),
            };
            if !out.state(&mut said, &what, fallback).await {
                return;
            }
            if let Some(metrics) = figures
                && out
                    .parts
                    .send(Part::Figures {
                        at: round.at,
                        metrics,
                    })
                    .await
                    .is_err()
            {
                return;
            }
        }
        let waiting_history = !out.history_sent.load(Ordering::Relaxed);
        tokio::select! {
            r = rounds.changed() => if r.is_err() { return },
            h = history.changed(), if waiting_history => if h.is_err() { return },
        }
    }
}

/// One request's deadline at most (less at a short refresh).
const NETDATA_TIMEOUT: Duration = Duration::from_secs(10);

/// The host's figures from its Netdata, each refresh; at its first answer, the graphs'
/// ten minutes first.
async fn netdata_feed<F, Fut>(what: String, refresh: Duration, fetch: F, out: Arc<Outputs>)
where
    F: Fn(String) -> Fut,
    Fut: Future<Output = Result<Bytes, String>>,
{
    let deadline = NETDATA_TIMEOUT.min(refresh * 2).max(Duration::from_secs(2));
    let ask = |path: String| {
        let asked = fetch(path);
        async move {
            match tokio::time::timeout(deadline, asked).await {
                Ok(r) => r,
                Err(_) => Err(format!("no answer within {}s", deadline.as_secs())),
            }
        }
    };
    let mut ticker = tokio::time::interval(refresh);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut said: Option<MetricsFrom> = None;
    loop {
        ticker.tick().await;
        let now = match ask(netdata::now_path()).await {
            Ok(body) => netdata::parse_now(&body),
            Err(e) => Err(e),
        };
        let now = match now {
            Ok(now) => now,
            Err(e) => {
                let e = format!("{what}: {}", crate::sanitize::line(&e));
                if !out.state(&mut said, &what, Some(e)).await {
                    return;
                }
                continue;
            }
        };
        if !out.history_sent.swap(true, Ordering::Relaxed) {
            let step = refresh.as_secs().clamp(1, 60);
            let mut answers = HashMap::new();
            for chart in netdata::history_charts(&now.interfaces) {
                let got = ask(netdata::history_path(&chart, step)).await;
                if let Ok(data) = got.and_then(|b| netdata::parse_data(&b)) {
                    answers.insert(chart, data);
                }
            }
            let history = netdata::history(&answers);
            if !history.cpu.is_empty()
                && out
                    .parts
                    .send(Part::History(Arc::new(history)))
                    .await
                    .is_err()
            {
                return;
            }
        }
        if !out.state(&mut said, &what, None).await {
            return;
        }
        out.named.send_replace(
            now.containers
                .into_iter()
                .map(|(name, (cpu, mem))| (name, (Some(cpu), mem)))
                .collect(),
        );
        let figures = Part::Figures {
            at: Timestamp::now(),
            metrics: now.metrics,
        };
        if out.parts.send(figures).await.is_err() {
            return;
        }
    }
}
