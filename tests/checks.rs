//! HTTP and TLS checks against servers started in the test: plain HTTP for status, body
//! and timeout verdicts; HTTPS with a test CA and three certificates generated here (valid,
//! expiring in 3 days, expired) for the expiry verdicts.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::sync::Arc;
use std::time::Duration;

use opsdeck::checks::{self, CheckSpec, CheckStatus, CheckVerdict};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

/// Answers `/` with 200 "ok", `/503` with 503, `/other` with 200 "something else", and
/// `/slow` after 5 s.
async fn answer<S: AsyncRead + AsyncWrite + Unpin>(mut s: S) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let req = String::from_utf8_lossy(&buf);
    let path = req.split_whitespace().nth(1).unwrap_or("/").to_string();
    let (status, body) = match path.as_str() {
        "/503" => ("503 Service Unavailable", "down"),
        "/other" => ("200 OK", "something else"),
        "/slow" => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            ("200 OK", "ok")
        }
        _ => ("200 OK", "ok"),
    };
    let resp = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = s.write_all(resp.as_bytes()).await;
    let _ = s.shutdown().await;
}

async fn http_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            tokio::spawn(answer(s));
        }
    });
    port
}

struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

fn ca() -> Ca {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(DnType::CommonName, "opsdeck test CA");
    let cert = params.self_signed(&key).unwrap();
    Ca {
        issuer: Issuer::new(params, key),
        pem: cert.pem(),
    }
}

/// A leaf for `localhost`, valid from 30 days ago until `not_after`.
fn leaf(
    ca: &Ca,
    not_after: time::OffsetDateTime,
) -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params.not_before = time::OffsetDateTime::now_utc() - time::Duration::days(30);
    params.not_after = not_after;
    let cert = params.signed_by(&key, &ca.issuer).unwrap();
    (
        cert.der().clone(),
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    )
}

async fn https_server(cert: CertificateDer<'static>, key: PrivateKeyDer<'static>) -> u16 {
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert], key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(s).await {
                    answer(tls).await;
                }
            });
        }
    });
    port
}

fn spec(url: String) -> CheckSpec {
    CheckSpec {
        stack: None,
        name: "t".into(),
        url,
        expect_status: 200,
        expect_body: None,
        timeout: Duration::from_secs(3),
        via_ssh: false,
        tls_warn_days: 14,
        ca_file: None,
        follow_redirects: false,
    }
}

async fn run(s: &CheckSpec) -> CheckStatus {
    checks::run(s, None, jiff::Timestamp::now().as_second()).await
}

#[tokio::test]
async fn http_status_body_and_timeout_verdicts() {
    let port = http_server().await;
    let ok = run(&spec(format!("http://127.0.0.1:{port}/"))).await;
    assert!(ok.ok, "{ok:?}");
    assert_eq!(ok.status, Some(200));
    assert!(ok.latency_ms.is_some());
    assert_eq!(ok.short(), "ok");

    let down = run(&spec(format!("http://127.0.0.1:{port}/503"))).await;
    assert!(!down.ok);
    assert_eq!(down.status, Some(503));
    assert_eq!(down.short(), "503");
    assert_eq!(down.error.as_deref(), Some("expected status 200 got 503"));

    let mut expect_503 = spec(format!("http://127.0.0.1:{port}/503"));
    expect_503.expect_status = 503;
    assert!(run(&expect_503).await.ok);

    let mut body = spec(format!("http://127.0.0.1:{port}/other"));
    body.expect_body = Some("ok".into());
    let wrong_body = run(&body).await;
    assert!(!wrong_body.ok);
    assert_eq!(wrong_body.short(), "body");
    body.expect_body = Some("else".into());
    assert!(run(&body).await.ok);

    let mut slow = spec(format!("http://127.0.0.1:{port}/slow"));
    slow.timeout = Duration::from_millis(300);
    let started = std::time::Instant::now();
    let timed_out = run(&slow).await;
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(!timed_out.ok);
    assert_eq!(timed_out.short(), "t/o");
    assert!(timed_out.error.unwrap().starts_with("timed out"));

    // Nothing listens on port 1: refused, reported, not a panic.
    let refused = run(&spec("http://127.0.0.1:1/".into())).await;
    assert!(!refused.ok);
    assert_eq!(refused.short(), "down");
    assert!(refused.error.unwrap().contains("connect 127.0.0.1:1"));
}

#[tokio::test]
async fn tls_valid_expiring_and_expired_certificates() {
    let ca = ca();
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &ca.pem).unwrap();
    let now = time::OffsetDateTime::now_utc();
    let https = |port: u16| {
        let mut s = spec(format!("https://localhost:{port}/"));
        s.ca_file = Some(ca_file.display().to_string());
        s
    };

    let (cert, key) = leaf(
        &ca,
        now + time::Duration::days(60) + time::Duration::hours(1),
    );
    let valid_port = https_server(cert, key).await;
    let valid = run(&https(valid_port)).await;
    assert!(valid.ok, "{valid:?}");
    assert_eq!(valid.verdict(), CheckVerdict::Ok);
    let tls = valid.tls.clone().unwrap();
    assert_eq!(tls.days_left, 60);
    assert_eq!(tls.issuer, "opsdeck test CA");

    let (cert, key) = leaf(
        &ca,
        now + time::Duration::days(3) + time::Duration::hours(1),
    );
    let port = https_server(cert, key).await;
    let soon = run(&https(port)).await;
    assert!(soon.ok, "{soon:?}");
    assert_eq!(soon.verdict(), CheckVerdict::TlsSoon);
    assert_eq!(soon.short(), "TLS 3d");
    // Under a lower threshold the same certificate is fine.
    let mut relaxed = https(port);
    relaxed.tls_warn_days = 2;
    assert_eq!(run(&relaxed).await.verdict(), CheckVerdict::Ok);

    let (cert, key) = leaf(
        &ca,
        now - time::Duration::days(2) - time::Duration::hours(1),
    );
    let port = https_server(cert, key).await;
    let expired = run(&https(port)).await;
    assert!(!expired.ok);
    assert_eq!(expired.verdict(), CheckVerdict::Failed);
    assert_eq!(expired.short(), "TLS!");
    assert_eq!(expired.error.as_deref(), Some("certificate expired"));
    assert_eq!(
        expired.status, None,
        "no request over an unverified connection"
    );
    let tls = expired.tls.unwrap();
    assert_eq!(tls.days_left, -3);
    assert_eq!(tls.issuer, "opsdeck test CA");

    // Without the CA file the issuer is unknown: a failure that still reads the expiry.
    let unknown = run(&spec(format!("https://localhost:{valid_port}/"))).await;
    assert!(!unknown.ok);
    assert_eq!(unknown.short(), "TLS?");
    assert!(unknown.error.unwrap().contains("issuer unknown"));
    assert!(unknown.tls.is_some());
}
