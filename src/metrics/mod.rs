//! Metrics from the metrics system a fleet already runs, instead of sampling each host's
//! /proc over SSH (issue 16). A [`Hub`] per Prometheus server asks it once per refresh for
//! every host that reads from it, and once at the start for ten minutes of history; each
//! host's worker takes its own instance's figures from the hub's latest round. When the
//! server fails or does not have a host, that host's worker goes back to sampling over SSH
//! and says so.

pub mod netdata;
pub mod prometheus;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::watch;

use crate::config::PrometheusSource;
use crate::model::Metrics;
pub use prometheus::History;

/// Instances per history query: ten minutes of 50 hosts at a 2 s step is a 2 MB answer.
const HISTORY_CHUNK: usize = 50;

/// The hub's history of every instance, once asked: the graphs' ten minutes, or why not.
pub type Answer = Option<Result<Arc<HashMap<String, Arc<History>>>, String>>;

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

/// A Prometheus server's hub: the instances asked for, where its answers go, and its task
/// (which ends when no feed is left).
struct Hub {
    instances: Arc<Mutex<Vec<String>>>,
    rounds: Arc<watch::Sender<Option<Round>>>,
    history: Arc<watch::Sender<Answer>>,
    task: tokio::task::JoinHandle<()>,
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
    /// The feed of `instance` from `source`'s server, starting its hub on first use (or
    /// again, when the last feed of the one before was dropped). A hub asks for every
    /// instance fed from it, added as hosts start; it stops when no feed is left.
    pub fn feed(&self, source: &PrometheusSource, instance: String, refresh: Duration) -> Feed {
        let url = source.prometheus.trim_end_matches('/').to_string();
        let mut hubs = self.hubs.lock().unwrap_or_else(PoisonError::into_inner);
        if hubs.get(&url).is_some_and(|h| h.task.is_finished()) {
            hubs.remove(&url);
        }
        let hub = hubs.entry(url.clone()).or_insert_with(|| {
            let instances = Arc::new(Mutex::new(Vec::new()));
            let rounds = Arc::new(watch::Sender::new(None));
            let history = Arc::new(watch::Sender::new(None));
            let client = Client::new(&url, source);
            let task = tokio::spawn(run_hub(
                client,
                instances.clone(),
                refresh,
                rounds.clone(),
                history.clone(),
            ));
            Hub {
                instances,
                rounds,
                history,
                task,
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
            rounds: hub.rounds.subscribe(),
            history: hub.history.subscribe(),
        }
    }
}

/// The HTTP client of the metrics sources reached from here (one for the run: reqwest
/// pools connections per server), with the system proxy and our TLS roots.
pub fn http() -> Result<&'static reqwest::Client, &'static String> {
    static HTTP: std::sync::OnceLock<Result<reqwest::Client, String>> = std::sync::OnceLock::new();
    HTTP.get_or_init(|| {
        crate::checks::tls::client(None).and_then(|tls| {
            reqwest::Client::builder()
                .tls_backend_preconfigured(tls)
                .timeout(prometheus::TIMEOUT)
                .user_agent(crate::checks::USER_AGENT)
                .build()
                .map_err(|e| format!("HTTP client: {e}"))
        })
    })
    .as_ref()
}

/// A source's pattern for one host (Prometheus' `instance`, Netdata's URL): `{name}` is the
/// inventory name, `{address}` (or `{host}`) the host's address.
pub fn for_host(pattern: &str, name: &str, address: &str) -> String {
    pattern
        .replace("{name}", name)
        .replace("{address}", address)
        .replace("{host}", address)
}

/// A name or label from a source (an instance, a mount point, an interface, a container),
/// when it is plain printable text of 1 to 256 bytes.
fn printable(s: &str) -> Option<&str> {
    (!s.is_empty() && s.len() <= 256 && !s.chars().any(crate::sanitize::is_unsafe)).then_some(s)
}

/// One GET of `url` from here: the body, an error past `cap` bytes or for a status other
/// than 2xx.
pub async fn get(url: &str, cap: usize) -> Result<hyper::body::Bytes, String> {
    let http = http().map_err(Clone::clone)?;
    let resp = http
        .get(url)
        .send()
        .await
        .map_err(|e| crate::checks::direct::describe_url(&e, url))?;
    let status = resp.status();
    if !status.is_success() {
        return Err(format!("HTTP {status}"));
    }
    let body = crate::checks::read_bounded(reqwest::Body::from(resp), cap).await;
    if body.len() >= cap {
        return Err(format!("an answer over {} KiB", cap >> 10));
    }
    Ok(body)
}

/// How a hub talks to its server.
struct Client {
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
        let token = match (&source.token_env, &source.token_file) {
            (Some(v), _) => Token::Env(v.clone()),
            (None, Some(f)) => Token::File(f.clone()),
            (None, None) => Token::None,
        };
        Client {
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
    async fn ask(&self, path: &str, form: &[(&str, String)]) -> Result<hyper::body::Bytes, String> {
        let http = http().map_err(Clone::clone)?;
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
        let resp = req.send().await.map_err(shown)?;
        let status = resp.status();
        let out =
            crate::checks::read_bounded(reqwest::Body::from(resp), prometheus::ANSWER_CAP).await;
        if out.len() >= prometheus::ANSWER_CAP {
            return Err(format!(
                "{}: an answer over {} MiB",
                self.base,
                prometheus::ANSWER_CAP >> 20
            ));
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
    rounds: Arc<watch::Sender<Option<Round>>>,
    history: Arc<watch::Sender<Answer>>,
) {
    let list = || {
        instances
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    };
    // Hosts start together: the first round waits a moment for all of them.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut asked_history: std::collections::HashSet<String> = std::collections::HashSet::new();
    let mut ticker = tokio::time::interval(refresh);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    // Whether the history last sent is still held for feeds to take.
    let mut history_held = false;
    loop {
        ticker.tick().await;
        if rounds.receiver_count() == 0 && history.receiver_count() == 0 {
            return;
        }
        let now = list();
        if now.is_empty() {
            continue;
        }
        if history_held {
            // Each feed took its instance's ten minutes when they came, a refresh ago (or
            // goes without): a big fleet's history is not kept for the whole run.
            let _ = history.send(Some(Ok(Arc::new(HashMap::new()))));
            history_held = false;
        }
        // History for instances that have none yet (at the start: all of them), a chunk
        // of them per query, in the inventory's order: the first chunk (the rows on the
        // first screen) before the figures, so the graphs are whole at the first draw;
        // the rest after them, so the figures of a big fleet do not wait.
        let fresh: Vec<String> = now
            .iter()
            .filter(|i| !asked_history.contains(*i))
            .cloned()
            .collect();
        let mut chunks = fresh.chunks(HISTORY_CHUNK);
        let mut ask_chunk = async |chunk: &[String]| {
            let got = match ask_history(&client, chunk, refresh).await {
                Ok(new) => new.into_iter().map(|(i, h)| (i, Arc::new(h))).collect(),
                // Those hosts' graphs fill as figures come.
                Err(e) => {
                    tracing::warn!("metrics history from {}: {e}", client.base);
                    HashMap::new()
                }
            };
            asked_history.extend(chunk.iter().cloned());
            // With this round's chunks before it: a feed that wakes after a later chunk
            // still finds its own (they share the histories, the map is all that grows);
            // the whole is dropped a refresh later.
            history.send_modify(|held| match held {
                Some(Ok(all)) => Arc::make_mut(all).extend(got),
                _ => *held = Some(Ok(Arc::new(got))),
            });
        };
        if let Some(first) = chunks.next() {
            ask_chunk(first).await;
            history_held = true;
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
        for chunk in chunks {
            ask_chunk(chunk).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_patterns() {
        assert_eq!(
            for_host("{address}:9100", "web", "10.0.0.1"),
            "10.0.0.1:9100"
        );
        assert_eq!(for_host("{name}", "web", "10.0.0.1"), "web");
        assert_eq!(
            for_host("http://{host}:19999", "web", "10.0.0.1"),
            "http://10.0.0.1:19999"
        );
    }

    /// A Prometheus that answers any instant query with nothing and a history query with
    /// a point of CPU for each instance the query names (of `names`).
    async fn fake_prometheus(names: Vec<String>) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let Ok((mut conn, _)) = listener.accept().await else {
                    return;
                };
                let names = names.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    loop {
                        // one request: its head, then Content-Length bytes of form
                        let head_end = loop {
                            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                                break i + 4;
                            }
                            let mut chunk = [0u8; 4096];
                            match conn.read(&mut chunk).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                            }
                        };
                        let head = String::from_utf8_lossy(&buf[..head_end]).to_lowercase();
                        let len: usize = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .map_or(0, |v| v.trim().parse().unwrap());
                        while buf.len() < head_end + len {
                            let mut chunk = [0u8; 4096];
                            match conn.read(&mut chunk).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                            }
                        }
                        let form =
                            String::from_utf8_lossy(&buf[head_end..head_end + len]).into_owned();
                        buf.drain(..head_end + len);
                        let body = if head.starts_with("post /api/v1/query_range") {
                            let series: Vec<String> = names
                                .iter()
                                .filter(|n| form.contains(n.as_str()))
                                .map(|n| format!(r#"{{"metric":{{"instance":"{n}","opsdeck_m":"cpu"}},"values":[[1000,"5"]]}}"#))
                                .collect();
                            format!(
                                r#"{{"status":"success","data":{{"resultType":"matrix","result":[{}]}}}}"#,
                                series.join(",")
                            )
                        } else {
                            r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#
                                .to_string()
                        };
                        let answer = format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                            body.len()
                        );
                        if conn.write_all(answer.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        format!("http://{addr}")
    }

    #[tokio::test]
    async fn a_feed_that_wakes_after_later_chunks_still_finds_its_history() {
        // three chunks of history: 1-50 (before the figures), 51-100 and 101-120 (after)
        let names: Vec<String> = (1..=120).map(|i| format!("h{i:03}x")).collect();
        let url = fake_prometheus(names.clone()).await;
        let source = PrometheusSource {
            prometheus: url,
            instance: "{address}".into(),
            token_env: None,
            token_file: None,
        };
        let hubs = Hubs::default();
        let feeds: Vec<Feed> = names
            .iter()
            .map(|n| hubs.feed(&source, n.clone(), Duration::from_secs(600)))
            .collect();
        // Nobody reads until the last chunk is there (a busy machine's feeds wake late).
        let mut last = feeds[119].history.clone();
        let held = tokio::time::timeout(Duration::from_secs(30), async {
            loop {
                let now = last.borrow_and_update().clone();
                if let Some(Ok(all)) = now
                    && all.contains_key("h120x")
                {
                    return all;
                }
                last.changed().await.unwrap();
            }
        })
        .await
        .expect("the last chunk within 30 s");
        for n in ["h001x", "h075x", "h120x"] {
            assert_eq!(
                held.get(n).map(|h| h.cpu.clone()),
                Some(vec![(1000, 5.0)]),
                "{n}"
            );
        }
        drop(feeds);
    }

    #[test]
    fn form_encoding() {
        assert_eq!(
            form_encode("a b{c=\"d\"}|é"),
            "a+b%7Bc%3D%22d%22%7D%7C%C3%A9"
        );
    }
}
