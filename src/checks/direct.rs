//! Checks made from here, and webhooks, through reqwest: the system proxy from the
//! environment (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, `NO_PROXY`, upper or lower case,
//! read once per process), redirects only when a check asks for them, TLS by
//! [`super::tls`] (ring; the peer certificate from reqwest's TLS info, or through a proxy
//! from [`tls::watching_peer`]). One client per (`ca_file`, follow redirects), kept for the
//! process; no idle connections kept, so every run connects and shakes hands anew, as a
//! health check should (and the connection is made in the request's task, which
//! `watching_peer` needs). A failure while a proxy
//! is in use names the proxy (never its credentials).

use std::collections::HashMap;
use std::error::Error as StdError;
use std::io::ErrorKind;
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::Duration;

use hyper_util::client::proxy::matcher::Matcher;

use super::{Attempt, CheckSpec, Target, USER_AGENT, error_chain, parse, peer_tls, tls, verdict};

/// Redirects a `follow_redirects` check follows before it fails.
pub const MAX_REDIRECTS: usize = 10;

/// The client for checks with this `ca_file` that do (or do not) follow redirects; webhooks
/// use `(None, false)`. Built on first use; a `ca_file` that cannot be read is an error
/// each time, not a client.
fn client(ca_file: Option<&str>, follow: bool) -> Result<reqwest::Client, String> {
    type Clients = Mutex<HashMap<(Option<String>, bool), reqwest::Client>>;
    static CLIENTS: OnceLock<Clients> = OnceLock::new();
    let key = (ca_file.map(str::to_string), follow);
    let clients = CLIENTS.get_or_init(Clients::default);
    if let Some(c) = clients
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&key)
    {
        return Ok(c.clone());
    }
    let redirects = if follow {
        reqwest::redirect::Policy::limited(MAX_REDIRECTS)
    } else {
        reqwest::redirect::Policy::none()
    };
    let client = reqwest::Client::builder()
        .tls_backend_preconfigured(tls::client(ca_file)?)
        .tls_info(true)
        .redirect(redirects)
        .pool_max_idle_per_host(0)
        .user_agent(USER_AGENT)
        .build()
        .map_err(|e| format!("HTTP client: {e}"))?;
    clients
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(key, client.clone());
    Ok(client)
}

/// The proxy reqwest uses for `url`, as shown in errors (`http://proxy:3128`, without
/// credentials), or none: the same matcher over the same variables as reqwest's own.
pub fn proxy_for(url: &str) -> Option<String> {
    static MATCHER: OnceLock<Matcher> = OnceLock::new();
    let uri: hyper::Uri = url.parse().ok()?;
    let proxy = MATCHER.get_or_init(Matcher::from_env).intercept(&uri)?;
    Some(shown(proxy.uri()))
}

/// A proxy's scheme, host and port; any `user:password@` dropped.
fn shown(uri: &hyper::Uri) -> String {
    let authority = uri.authority().map_or("", |a| a.as_str());
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    format!("{}://{host_port}", uri.scheme_str().unwrap_or("http"))
}

/// `error`, saying which proxy the request went through when one did.
pub fn via_proxy(error: String, url: &str) -> String {
    through_proxy(error, proxy_for(url).as_deref())
}

fn through_proxy(error: String, proxy: Option<&str>) -> String {
    match proxy {
        Some(p) => format!("{error} (through proxy {p})"),
        None => error,
    }
}

/// One line for a failed request to `url`, naming the proxy it went through (for other
/// clients of the same crate: the metrics sources).
pub fn describe_url(err: &reqwest::Error, url: &str) -> String {
    match parse(url) {
        Ok((_, target)) => describe(err, &target, proxy_for(url).as_deref()),
        Err(_) => err.to_string(),
    }
}

/// One line for a failed request: what failed, in reqwest's chain of errors, and where.
fn describe(err: &reqwest::Error, target: &Target, proxy: Option<&str>) -> String {
    let Target { host, port, .. } = target;
    let chain: Vec<&(dyn StdError + 'static)> = error_chain(err).collect();
    let root = chain.last().map(|e| e.to_string()).unwrap_or_default();
    if let Some(r) = tls::rejection(err) {
        return through_proxy(r.reason.clone(), proxy);
    }
    if chain.iter().any(|e| e.is::<rustls::Error>()) {
        return through_proxy(format!("TLS handshake with {host}:{port}: {root}"), proxy);
    }
    let said = |what: &str| chain.iter().any(|e| e.to_string().contains(what));
    match proxy {
        Some(p) if err.is_connect() => {
            let refused = chain
                .iter()
                .filter_map(|e| e.downcast_ref::<std::io::Error>())
                .any(|io| io.kind() == ErrorKind::ConnectionRefused);
            if refused {
                format!("proxy {p} refused the connection")
            } else if said("proxy authorization required") {
                format!("proxy {p} wants credentials (407)")
            } else if said("tunnel error: unsuccessful") {
                format!("proxy {p} would not open a tunnel to {host}:{port}")
            } else {
                format!("proxy {p}: {root}")
            }
        }
        None if err.is_connect() => format!("connect {host}:{port}: {root}"),
        _ if err.is_redirect() => through_proxy(format!("redirect: {root}"), proxy),
        _ => through_proxy(format!("HTTP: {root}"), proxy),
    }
}

/// A check from here.
pub(super) async fn attempt(spec: &CheckSpec, now: i64) -> Attempt {
    let target = match parse(&spec.url) {
        Ok((_, t)) => t,
        Err(e) => return Attempt::failed(e),
    };
    let proxy = proxy_for(&spec.url);
    let client = match client(spec.ca_file.as_deref(), spec.follow_redirects) {
        Ok(c) => c,
        Err(e) => return Attempt::failed(e),
    };
    let (sent, watched) = tls::watching_peer(client.get(&spec.url).send()).await;
    let resp = match sent {
        Ok(r) => r,
        Err(e) => return Attempt::refused(&e, describe(&e, &target, proxy.as_deref()), now),
    };
    let status = resp.status().as_u16();
    let der = resp.extensions().get::<reqwest::tls::TlsInfo>();
    let tls = match der.and_then(|i| i.peer_certificate()) {
        Some(der) => peer_tls(Some(der), now),
        // Through a proxy's tunnel (no TlsInfo there): the certificate verified on the way.
        None if resp.url().scheme() == "https" => watched.map(|c| super::tls_status(c, now)),
        None => None,
    };
    let body = super::read_bounded(reqwest::Body::from(resp), super::BODY_LIMIT).await;
    let error = verdict(spec, status, &body).map(|e| through_proxy(e, proxy.as_deref()));
    Attempt {
        status: Some(status),
        tls,
        error,
    }
}

/// Sends one POST (a notification webhook), never following a redirect; over TLS the
/// certificate must verify, since here we are the ones sending data. Returns the status;
/// anything but 2xx is an error.
pub async fn post(
    url: &str,
    headers: &[(&str, String)],
    body: Vec<u8>,
    timeout: Duration,
) -> Result<u16, String> {
    tokio::time::timeout(timeout, post_inner(url, headers, body))
        .await
        .map_err(|_| via_proxy(format!("no answer within {}s", timeout.as_secs()), url))?
}

async fn post_inner(url: &str, headers: &[(&str, String)], body: Vec<u8>) -> Result<u16, String> {
    let (_, target) = parse(url)?;
    let proxy = proxy_for(url);
    let mut req = client(None, false)?.post(url).body(body);
    for (k, v) in headers {
        req = req.header(*k, v.as_str());
    }
    let resp = req
        .send()
        .await
        .map_err(|e| describe(&e, &target, proxy.as_deref()))?;
    let status = resp.status().as_u16();
    if (200..300).contains(&status) {
        Ok(status)
    } else {
        let error = format!("the webhook answered {status}");
        Err(through_proxy(error, proxy.as_deref()))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_proxy_is_shown_without_credentials() {
        let m = Matcher::builder()
            .all("http://ops:s3cret@proxy.example:3128")
            .no("localhost, .internal")
            .build();
        let shown_for = |url: &str| {
            let uri: hyper::Uri = url.parse().unwrap();
            m.intercept(&uri).map(|p| shown(p.uri()))
        };
        assert_eq!(
            shown_for("https://example.com/health").as_deref(),
            Some("http://proxy.example:3128")
        );
        assert_eq!(shown_for("http://localhost:8080/"), None);
        assert_eq!(shown_for("https://app.internal/"), None);
        let uri: hyper::Uri = "http://u:p@proxy:8080/".parse().unwrap();
        assert_eq!(shown(&uri), "http://proxy:8080");
    }
}
