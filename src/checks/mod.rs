//! HTTP health checks from the inventory, and the webhooks of `opsdeck check`. Two routes,
//! one result ([`CheckStatus`]) and one TLS setup ([`tls`]): a check from here (and every
//! webhook) goes through reqwest ([`direct`]), which brings the system proxy
//! (`HTTPS_PROXY`, `NO_PROXY`, ...) and redirects; a check with `via = "ssh"` speaks one
//! HTTP/1.1 GET with hyper over a `direct-tcpip` channel of the host's SSH connection,
//! which reqwest cannot open, with TLS over it by tokio-rustls.

pub mod direct;
pub mod tls;

use std::error::Error as StdError;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::BodyExt;
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
    /// Follow redirects (at most [`direct::MAX_REDIRECTS`]); otherwise a 3xx is the
    /// answer. Checks through SSH never follow.
    pub follow_redirects: bool,
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
            follow_redirects: c.follow_redirects,
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
    let tunnel = tunnel.filter(|_| spec.via_ssh);
    let attempt = async {
        match tunnel {
            Some(t) => through(spec, t, now).await,
            None => direct::attempt(spec, now).await,
        }
    };
    let outcome = match tokio::time::timeout(spec.timeout, attempt).await {
        Ok(o) => o,
        Err(_) => {
            let error = format!("timed out after {}s", spec.timeout.as_secs_f64());
            match tunnel {
                Some(_) => Attempt::failed(error),
                None => Attempt::failed(direct::via_proxy(error, &spec.url)),
            }
        }
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

    /// A request that failed with `error`; a refused certificate still reports what it
    /// says (its expiry and issuer).
    fn refused(err: &(dyn StdError + 'static), error: String, now: i64) -> Self {
        let cert = tls::rejection(err).and_then(|r| r.cert.clone());
        Attempt {
            status: None,
            tls: cert.map(|c| tls_status(c, now)),
            error: Some(error),
        }
    }
}

fn tls_status(c: tls::CertInfo, now: i64) -> TlsStatus {
    TlsStatus {
        days_left: (c.not_after - now).div_euclid(86_400),
        not_after: c.not_after,
        issuer: c.issuer,
    }
}

/// The peer certificate (DER) of a connection that passed verification, as a check shows it.
fn peer_tls(der: Option<&[u8]>, now: i64) -> Option<TlsStatus> {
    der.and_then(tls::cert_info).map(|c| tls_status(c, now))
}

/// An error and every error below it, looking inside `io::Error`s too (whose `source`
/// skips the error they wrap): what reqwest, hyper and tokio-rustls nest.
pub fn error_chain<'a>(
    err: &'a (dyn StdError + 'static),
) -> impl Iterator<Item = &'a (dyn StdError + 'static)> {
    std::iter::successors(Some(err), |&e: &&'a (dyn StdError + 'static)| {
        match e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner as &(dyn StdError + 'static)),
            None => e.source(),
        }
    })
}

/// Scheme, host and port of a check's or webhook's URL.
struct Target {
    https: bool,
    host: String,
    port: u16,
}

fn target(uri: &hyper::Uri) -> Result<Target, String> {
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
    Ok(Target { https, host, port })
}

fn parse(url: &str) -> Result<(hyper::Uri, Target), String> {
    let uri: hyper::Uri = url.parse().map_err(|e| format!("bad url: {e}"))?;
    let target = target(&uri)?;
    Ok((uri, target))
}

/// A check through the host's SSH connection: a `direct-tcpip` channel, TLS over it for
/// https, one GET.
async fn through(spec: &CheckSpec, tunnel: &dyn Tunnel, now: i64) -> Attempt {
    let (uri, target) = match parse(&spec.url) {
        Ok(t) => t,
        Err(e) => return Attempt::failed(e),
    };
    let (stream, tls) = match open_through(tunnel, &target, spec.ca_file.as_deref(), now).await {
        Ok(s) => s,
        Err(failed) => return failed,
    };
    let (status, error) = match get(stream, &uri, &target, BODY_LIMIT).await {
        Ok((status, body)) => (Some(status), verdict(spec, status, &body)),
        Err(e) => (None, Some(e)),
    };
    Attempt { status, tls, error }
}

/// A `direct-tcpip` channel to `target` through the host's SSH connection, TLS over it for
/// https; with the certificate the server showed.
async fn open_through(
    tunnel: &dyn Tunnel,
    target: &Target,
    ca_file: Option<&str>,
    now: i64,
) -> Result<(BoxIo, Option<TlsStatus>), Attempt> {
    let Target { https, host, port } = target;
    let stream = tunnel
        .open_tcp(host, *port)
        .await
        .map_err(|e| Attempt::failed(format!("through SSH: {e}")))?;
    if !https {
        return Ok((stream, None));
    }
    let config = tls::client(ca_file).map_err(Attempt::failed)?;
    let Ok(name) = rustls::pki_types::ServerName::try_from(host.clone()) else {
        return Err(Attempt::failed(format!(
            "{host} is not a valid TLS server name"
        )));
    };
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let conn = connector.connect(name, stream).await.map_err(|e| {
        let error =
            tls::rejection(&e).map_or_else(|| format!("TLS handshake: {e}"), |r| r.reason.clone());
        Attempt::refused(&e, error, now)
    })?;
    let der = conn.get_ref().1.peer_certificates().and_then(|c| c.first());
    let tls = peer_tls(der.map(|d| d.as_ref()), now);
    Ok((Box::new(conn), tls))
}

/// One GET of `url` through the host's SSH connection (a metrics source on the host's
/// localhost): the body, an error past `limit` bytes or for a status other than 2xx (as
/// `metrics::get` from here).
pub async fn fetch_through(tunnel: &dyn Tunnel, url: &str, limit: usize) -> Result<Bytes, String> {
    let (uri, target) = parse(url)?;
    let (stream, _) = open_through(tunnel, &target, None, 0)
        .await
        .map_err(|a| a.error.unwrap_or_default())?;
    let (status, body) = get(stream, &uri, &target, limit).await?;
    if !(200..300).contains(&status) {
        return Err(format!("HTTP {status}"));
    }
    if body.len() >= limit {
        return Err(format!("an answer over {} KiB", limit >> 10));
    }
    Ok(body)
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

/// At most `limit` bytes of a body: a longer body is cut there, unread; a body that
/// breaks off is what came before.
pub(crate) async fn read_bounded<B>(body: B, limit: usize) -> Bytes
where
    B: hyper::body::Body<Data = Bytes> + Unpin,
{
    let mut body = body;
    let mut read = Vec::new();
    while read.len() < limit {
        match body.frame().await {
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    let room = limit - read.len();
                    read.extend_from_slice(&data[..data.len().min(room)]);
                }
            }
            Some(Err(_)) | None => break,
        }
    }
    Bytes::from(read)
}

/// One HTTP/1.1 GET over an open stream (TCP, TLS, or an SSH channel). Returns the
/// status and up to `limit` bytes of the body.
async fn get(
    stream: BoxIo,
    uri: &hyper::Uri,
    &Target {
        ref host,
        port,
        https,
    }: &Target,
    limit: usize,
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
    let req = hyper::Request::builder()
        .method(hyper::Method::GET)
        .uri(path)
        .header(hyper::header::HOST, host_header)
        .header(hyper::header::USER_AGENT, USER_AGENT)
        .header(hyper::header::CONNECTION, "close")
        .body(http_body_util::Empty::<Bytes>::new())
        .map_err(|e| format!("request: {e}"))?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| format!("HTTP: {e}"))?;
    let status = resp.status().as_u16();
    Ok((status, read_bounded(resp.into_body(), limit).await))
}

/// What checks and webhooks call themselves.
pub const USER_AGENT: &str = "opsdeck";

pub use direct::post;
