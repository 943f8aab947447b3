//! Metrics from the metrics system a fleet already runs, instead of sampling each host's
//! /proc over SSH (issue 16). A [`Hub`] per Prometheus server asks it once per refresh for
//! every host that reads from it, and once at the start for ten minutes of history; each
//! host's worker takes its own instance's figures from the hub's latest round. When the
//! server fails or does not have a host, that host's worker goes back to sampling over SSH
//! and says so.

pub mod prometheus;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::watch;

use crate::config::PrometheusSource;
use crate::model::Metrics;
pub use prometheus::History;

/// The hub's history of every instance, once asked: the graphs' ten minutes, or why not.
pub type Answer = Option<Result<Arc<HashMap<String, History>>, String>>;

/// One round of the hub: when, and every instance's figures, or why there are none.
#[derive(Debug, Clone)]
pub struct Round {
    pub at: Timestamp,
    pub result: Result<Arc<HashMap<String, Metrics>>, String>,
}

/// What a host's worker holds of a hub: its rounds and its history, and its instance.
#[derive(Clone, Debug)]
pub struct Feed {
    pub server: String,
    pub instance: String,
    pub rounds: watch::Receiver<Option<Round>>,
    pub history: watch::Receiver<Answer>,
}

/// A Prometheus server's hub: the instances asked for, and where its answers go.
struct Hub {
    instances: Arc<Mutex<Vec<String>>>,
    rounds: watch::Receiver<Option<Round>>,
    history: watch::Receiver<Answer>,
}

/// Every hub of one run, by server URL (what `remote::Shared` keeps).
#[derive(Default)]
pub struct Hubs {
    hubs: Mutex<HashMap<String, Hub>>,
}

impl std::fmt::Debug for Hubs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Hubs")
    }
}

impl Hubs {
    /// The feed of `instance` from `source`'s server, starting its hub on first use. A hub
    /// asks for every instance fed from it, added as hosts start; it stops when no feed is
    /// left.
    pub fn feed(&self, source: &PrometheusSource, instance: String, refresh: Duration) -> Feed {
        let url = source.prometheus.trim_end_matches('/').to_string();
        let mut hubs = self.hubs.lock().unwrap_or_else(PoisonError::into_inner);
        let hub = hubs.entry(url.clone()).or_insert_with(|| {
            let instances = Arc::new(Mutex::new(Vec::new()));
            let (rounds_tx, rounds) = watch::channel(None);
            let (history_tx, history) = watch::channel(None);
            let client = Client::new(&url, source);
            tokio::spawn(run_hub(
                client,
                instances.clone(),
                refresh,
                rounds_tx,
                history_tx,
            ));
            Hub {
                instances,
                rounds,
                history,
            }
        });
        {
            let mut list = hub.instances.lock().unwrap_or_else(PoisonError::into_inner);
            if !list.contains(&instance) {
                list.push(instance.clone());
            }
        }
        Feed {
            server: url,
            instance,
            rounds: hub.rounds.clone(),
            history: hub.history.clone(),
        }
    }
}

/// How a hub talks to its server.
struct Client {
    http: Result<reqwest::Client, String>,
    base: String,
    token: Token,
}

enum Token {
    None,
    Env(String),
    File(String),
}

impl Client {
    fn new(base: &str, source: &PrometheusSource) -> Self {
        let http = crate::checks::tls::client(None).and_then(|tls| {
            reqwest::Client::builder()
                .tls_backend_preconfigured(tls)
                .timeout(prometheus::TIMEOUT)
                .user_agent(crate::checks::USER_AGENT)
                .build()
                .map_err(|e| format!("HTTP client: {e}"))
        });
        let token = match (&source.token_env, &source.token_file) {
            (Some(v), _) => Token::Env(v.clone()),
            (None, Some(f)) => Token::File(f.clone()),
            (None, None) => Token::None,
        };
        Client {
            http,
            base: base.to_string(),
            token,
        }
    }

    /// The bearer token, read anew each time (a rotated file is picked up).
    fn token(&self) -> Result<Option<String>, String> {
        match &self.token {
            Token::None => Ok(None),
            Token::Env(v) => std::env::var(v)
                .map(|t| Some(t.trim().to_string()))
                .map_err(|_| format!("token_env: ${v} is not set")),
            Token::File(f) => {
                let path = match f.strip_prefix("~/") {
                    Some(rest) => std::env::var_os("HOME")
                        .map(|h| std::path::Path::new(&h).join(rest))
                        .unwrap_or_else(|| f.into()),
                    None => f.into(),
                };
                std::fs::read_to_string(&path)
                    .map(|t| Some(t.trim().to_string()))
                    .map_err(|e| format!("token_file {}: {e}", path.display()))
            }
        }
    }

    /// POSTs a query to `path` (`/api/v1/query` or `/api/v1/query_range`) and reads the
    /// answer, at most [`prometheus::ANSWER_CAP`] bytes.
    async fn ask(&self, path: &str, form: &[(&str, String)]) -> Result<Vec<u8>, String> {
        let http = self.http.as_ref().map_err(Clone::clone)?;
        let url = format!("{}{path}", self.base);
        let body = form
            .iter()
            .map(|(k, v)| format!("{k}={}", form_encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let mut req = http
            .post(&url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        if let Some(t) = self.token()? {
            req = req.bearer_auth(t);
        }
        let shown = |e: reqwest::Error| {
            format!(
                "{}: {}",
                self.base,
                crate::checks::direct::describe_url(&e, &url)
            )
        };
        let mut resp = req.send().await.map_err(shown)?;
        let status = resp.status();
        let mut out = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(shown)? {
            if out.len() + chunk.len() > prometheus::ANSWER_CAP {
                return Err(format!(
                    "{}: an answer over {} MiB",
                    self.base,
                    prometheus::ANSWER_CAP >> 20
                ));
            }
            out.extend_from_slice(&chunk);
        }
        // Prometheus answers a bad query with 400 and a JSON error: the parser says it.
        if !status.is_success() && !out.starts_with(b"{") {
            return Err(format!("{}: HTTP {status}", self.base));
        }
        Ok(out)
    }
}

/// `application/x-www-form-urlencoded`.
fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3 / 2);
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Ten minutes of every instance's graphs, a step of the refresh (at least 2 s, at most
/// 600 points a series).
async fn ask_history(
    client: &Client,
    instances: &[String],
    refresh: Duration,
) -> Result<HashMap<String, History>, String> {
    let end = Timestamp::now().as_second();
    let step = refresh.as_secs().clamp(2, 60);
    let form = [
        ("query", prometheus::history_query(instances)),
        (
            "start",
            (end - crate::model::series::WINDOW_SECS).to_string(),
        ),
        ("end", end.to_string()),
        ("step", step.to_string()),
    ];
    let answer = client.ask("/api/v1/query_range", &form).await?;
    prometheus::parse_history(&answer)
}

async fn run_hub(
    client: Client,
    instances: Arc<Mutex<Vec<String>>>,
    refresh: Duration,
    rounds: watch::Sender<Option<Round>>,
    history: watch::Sender<Answer>,
) {
    let list = || {
        instances
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    };
    // Hosts start together: the first round waits a moment for all of them.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut asked_history: Vec<String> = Vec::new();
    let mut ticker = tokio::time::interval(refresh);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        ticker.tick().await;
        if rounds.is_closed() && history.is_closed() {
            return;
        }
        let now = list();
        if now.is_empty() {
            continue;
        }
        // History for instances that have none yet (at the start: all of them).
        if now.iter().any(|i| !asked_history.contains(i)) {
            let fresh: Vec<String> = now
                .iter()
                .filter(|i| !asked_history.contains(i))
                .cloned()
                .collect();
            let got = ask_history(&client, &fresh, refresh).await;
            asked_history.extend(fresh);
            let merged = match (got, history.borrow().clone()) {
                (Ok(new), Some(Ok(old))) => {
                    let mut all = (*old).clone();
                    all.extend(new);
                    Ok(Arc::new(all))
                }
                (Ok(new), _) => Ok(Arc::new(new)),
                (Err(e), _) => Err(e),
            };
            let _ = history.send(Some(merged));
        }
        let form = [("query", prometheus::instant_query(&now))];
        let result = match client.ask("/api/v1/query", &form).await {
            Ok(answer) => prometheus::parse_instant(&answer).map(Arc::new),
            Err(e) => Err(e),
        };
        let _ = rounds.send(Some(Round {
            at: Timestamp::now(),
            result,
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_encoding() {
        assert_eq!(
            form_encode("a b{c=\"d\"}|é"),
            "a+b%7Bc%3D%22d%22%7D%7C%C3%A9"
        );
    }
}
