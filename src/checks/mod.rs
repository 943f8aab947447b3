//! HTTP health checks from the inventory. One code path for both routes: a byte stream
//! (a TCP connection from here, or a `direct-tcpip` channel through the host's SSH
//! connection for `via = "ssh"`), TLS over it for https, then one HTTP/1.1 GET with hyper.
//! reqwest cannot speak over an SSH channel, and hyper is already here for Docker, so the
//! two routes cannot drift apart.

pub mod tls;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Limited};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::config::{Check, Via};

/// A check without its own `timeout`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// A check without its own `tls_warn_days`.
pub const DEFAULT_TLS_WARN_DAYS: u32 = 14;
/// More than this much body is not read: a health page is small.
const BODY_LIMIT: usize = 1 << 20;

/// One check as a worker runs it, from the inventory.
#[derive(Debug, Clone)]
pub struct CheckSpec {
    pub stack: Option<String>,
    pub name: String,
    pub url: String,
    pub expect_status: u16,
    pub expect_body: Option<String>,
    pub timeout: Duration,
    pub via_ssh: bool,
    pub tls_warn_days: u32,
    pub ca_file: Option<String>,
}

impl CheckSpec {
    pub fn new(stack: Option<&str>, c: &Check) -> Self {
        CheckSpec {
            stack: stack.map(str::to_string),
            name: c.name.get_ref().clone(),
            url: c.url.get_ref().clone(),
            expect_status: *c.expect_status.get_ref(),
            expect_body: c.expect_body.clone(),
            timeout: c.timeout.map(|t| t.0).unwrap_or(DEFAULT_TIMEOUT),
            via_ssh: c.via == Via::Ssh,
            tls_warn_days: c.tls_warn_days.unwrap_or(DEFAULT_TLS_WARN_DAYS),
            ca_file: c.ca_file.clone(),
        }
    }
}

/// Every check of a host: its own, then each stack's.
pub fn specs(host: &crate::config::Host) -> Vec<CheckSpec> {
    let own = host.checks.iter().map(|c| CheckSpec::new(None, c));
    let stacks = host.stacks.iter().flat_map(|s| {
        s.checks
            .iter()
            .map(move |c| CheckSpec::new(Some(s.name.get_ref()), c))
    });
    own.chain(stacks).collect()
}

pub use crate::model::check::{CheckStatus, CheckVerdict, Failure, TlsStatus};

/// A byte stream a check can speak HTTP (or TLS) over.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

pub type BoxIo = Box<dyn Io>;
pub type OpenFuture<'a> = Pin<Box<dyn Future<Output = Result<BoxIo, String>> + Send + 'a>>;

/// Opens a TCP connection as seen from the host (`via = "ssh"`).
pub trait Tunnel: Send + Sync {
    fn open_tcp<'a>(&'a self, host: &'a str, port: u16) -> OpenFuture<'a>;
}

/// Runs all checks of one host concurrently. Without a tunnel (the local host) `via =
/// "ssh"` checks go direct: the host is this machine.
pub async fn run_all(
    specs: &[CheckSpec],
    tunnel: Option<Arc<dyn Tunnel>>,
    now: i64,
) -> Vec<CheckStatus> {
    let runs = specs.iter().map(|s| run(s, tunnel.as_deref(), now));
    futures::future::join_all(runs).await
}

/// Runs one check, never failing: every problem is part of the result.
pub async fn run(spec: &CheckSpec, tunnel: Option<&dyn Tunnel>, now: i64) -> CheckStatus {
    let started = Instant::now();
    let outcome = match tokio::time::timeout(spec.timeout, attempt(spec, tunnel, now)).await {
        Ok(o) => o,
        Err(_) => Attempt {
            status: None,
            tls: None,
            error: Some(format!("timed out after {}s", spec.timeout.as_secs_f64())),
        },
    };
    let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let ok = outcome.error.is_none();
    CheckStatus {
        stack: spec.stack.clone(),
        name: spec.name.clone(),
        url: spec.url.clone(),
        via_ssh: spec.via_ssh,
        ok,
        status: outcome.status,
        expect_status: spec.expect_status,
        latency_ms: outcome.status.map(|_| latency_ms),
        last_failure: outcome.error.as_ref().map(|e| Failure {
            at: now,
            error: e.clone(),
        }),
        error: outcome.error,
        tls: outcome.tls,
        tls_warn_days: spec.tls_warn_days,
        at: now,
    }
}

struct Attempt {
    status: Option<u16>,
    tls: Option<TlsStatus>,
    error: Option<String>,
}

impl Attempt {
    fn failed(error: impl Into<String>) -> Self {
        Attempt {
            status: None,
            tls: None,
            error: Some(error.into()),
        }
    }
}

async fn attempt(spec: &CheckSpec, tunnel: Option<&dyn Tunnel>, now: i64) -> Attempt {
    let uri: hyper::Uri = match spec.url.parse() {
        Ok(u) => u,
        Err(e) => return Attempt::failed(format!("bad url: {e}")),
    };
    let https = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        _ => return Attempt::failed("url must start with http:// or https://"),
    };
    let Some(host) = uri.host().map(|h| h.trim_matches(['[', ']']).to_string()) else {
        return Attempt::failed("url has no host");
    };
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let stream: BoxIo = match (spec.via_ssh, tunnel) {
        (true, Some(t)) => match t.open_tcp(&host, port).await {
            Ok(s) => s,
            Err(e) => return Attempt::failed(format!("through SSH: {e}")),
        },
        _ => match tokio::net::TcpStream::connect((host.as_str(), port)).await {
            Ok(s) => Box::new(s),
            Err(e) => return Attempt::failed(format!("connect {host}:{port}: {e}")),
        },
    };
    let mut tls = None;
    let stream: BoxIo = if https {
        let (config, recording) = match tls::client(spec.ca_file.as_deref()) {
            Ok(c) => c,
            Err(e) => return Attempt::failed(e),
        };
        let Ok(name) = rustls::pki_types::ServerName::try_from(host.clone()) else {
            return Attempt::failed(format!("{host} is not a valid TLS server name"));
        };
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let conn = match connector.connect(name, stream).await {
            Ok(c) => c,
            Err(e) => return Attempt::failed(format!("TLS handshake: {e}")),
        };
        tls = conn
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|c| c.first())
            .and_then(|der| tls::cert_info(der))
            .map(|c| TlsStatus {
                days_left: (c.not_after - now).div_euclid(86_400),
                not_after: c.not_after,
                issuer: c.issuer,
            });
        let rejected = recording.error.lock().ok().and_then(|e| e.clone());
        if let Some(error) = rejected {
            // Never send a request over a connection we could not verify.
            return Attempt {
                status: None,
                tls,
                error: Some(error),
            };
        }
        Box::new(conn)
    } else {
        stream
    };
    let target = (host.as_str(), port, https);
    let request = send(stream, hyper::Method::GET, &uri, target, &[], Bytes::new());
    let (status, error) = match request.await {
        Ok((status, body)) => (Some(status), verdict(spec, status, &body)),
        Err(e) => (None, Some(e)),
    };
    Attempt { status, tls, error }
}

/// What is wrong with an answer, if anything.
fn verdict(spec: &CheckSpec, status: u16, body: &[u8]) -> Option<String> {
    if status != spec.expect_status {
        return Some(format!(
            "expected status {} got {status}",
            spec.expect_status
        ));
    }
    match &spec.expect_body {
        Some(want) if !String::from_utf8_lossy(body).contains(want.as_str()) => {
            Some(format!("body does not contain {want:?}"))
        }
        _ => None,
    }
}

/// One HTTP/1.1 request over an open stream (TCP, TLS, or an SSH channel), for checks
/// and webhooks alike. Returns the status and up to `BODY_LIMIT` of the body.
async fn send(
    stream: BoxIo,
    method: hyper::Method,
    uri: &hyper::Uri,
    (host, port, https): (&str, u16, bool),
    headers: &[(&str, String)],
    body: Bytes,
) -> Result<(u16, Bytes), String> {
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("HTTP: {e}"))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let default_port = if https { 443 } else { 80 };
    let host_header = if port == default_port {
        host.to_string()
    } else {
        format!("{host}:{port}")
    };
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut req = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header(hyper::header::HOST, host_header)
        .header(hyper::header::USER_AGENT, "opsdeck")
        .header(hyper::header::CONNECTION, "close");
    for (k, v) in headers {
        req = req.header(*k, v.as_str());
    }
    let req = req
        .body(http_body_util::Full::new(body))
        .map_err(|e| format!("request: {e}"))?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| format!("HTTP: {e}"))?;
    let status = resp.status().as_u16();
    let body = Limited::new(resp.into_body(), BODY_LIMIT)
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    Ok((status, body))
}

/// Sends one POST (a notification webhook): over TLS the certificate must verify, since
/// here we are the ones sending data. Returns the status; anything but 2xx is an error.
pub async fn post(
    url: &str,
    headers: &[(&str, String)],
    body: Vec<u8>,
    timeout: Duration,
) -> Result<u16, String> {
    tokio::time::timeout(timeout, post_inner(url, headers, body))
        .await
        .map_err(|_| format!("no answer within {}s", timeout.as_secs()))?
}

async fn post_inner(url: &str, headers: &[(&str, String)], body: Vec<u8>) -> Result<u16, String> {
    let uri: hyper::Uri = url.parse().map_err(|e| format!("bad url: {e}"))?;
    let https = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        _ => return Err("url must start with http:// or https://".into()),
    };
    let host = uri
        .host()
        .map(|h| h.trim_matches(['[', ']']).to_string())
        .ok_or("url has no host")?;
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|e| format!("connect {host}:{port}: {e}"))?;
    let stream: BoxIo = if https {
        let (config, recording) = tls::client(None)?;
        let name = rustls::pki_types::ServerName::try_from(host.clone())
            .map_err(|_| format!("{host} is not a valid TLS server name"))?;
        let conn = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS handshake: {e}"))?;
        if let Some(e) = recording.error.lock().ok().and_then(|e| e.clone()) {
            return Err(e);
        }
        Box::new(conn)
    } else {
        Box::new(tcp)
    };
    let mut all: Vec<(&str, String)> = vec![("content-length", body.len().to_string())];
    all.extend(headers.iter().map(|(k, v)| (*k, v.clone())));
    let target = (host.as_str(), port, https);
    let (status, _) = send(
        stream,
        hyper::Method::POST,
        &uri,
        target,
        &all,
        Bytes::from(body),
    )
    .await?;
    if (200..300).contains(&status) {
        Ok(status)
    } else {
        Err(format!("the webhook answered {status}"))
    }
}
