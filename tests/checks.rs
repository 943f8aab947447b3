//! HTTP and TLS checks against servers started in the test: plain HTTP for status, body
//! and timeout verdicts; HTTPS with a test CA and three certificates generated here (valid,
//! expiring in 3 days, expired) for the expiry verdicts.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::time::Duration;

use common::tls::{ca, http_server, https_server, leaf, read_request};
use opsdeck::checks::{self, CheckSpec, CheckStatus, CheckVerdict};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

/// Answers `/` with 200 "ok", `/503` with 503, `/other` with 200 "something else",
/// `/slow` after 5 s, `/redirect` with a 302 to `/other`, `/loop` with a 302 to itself, and
/// `/big` with 2 MiB.
async fn answer<S: AsyncRead + AsyncWrite + Unpin>(mut s: S) {
    let Some((req, _)) = read_request(&mut s).await else {
        return;
    };
    let path = req.split_whitespace().nth(1).unwrap_or("/").to_string();
    let mut location = "";
    let big;
    let (status, body) = match path.as_str() {
        "/503" => ("503 Service Unavailable", "down"),
        "/other" => ("200 OK", "something else"),
        "/redirect" => {
            location = "/other";
            ("302 Found", "")
        }
        "/loop" => {
            location = "/loop";
            ("302 Found", "")
        }
        // 2 MiB: "start" at its beginning, "end" past the 1 MiB a check reads.
        "/big" => {
            big = format!("start{}end", "x".repeat(2 << 20));
            ("200 OK", big.as_str())
        }
        "/slow" => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            ("200 OK", "ok")
        }
        _ => ("200 OK", "ok"),
    };
    let location = if location.is_empty() {
        String::new()
    } else {
        format!("Location: {location}\r\n")
    };
    let resp = format!(
        "HTTP/1.1 {status}\r\n{location}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = s.write_all(resp.as_bytes()).await;
    let _ = s.shutdown().await;
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
    let port = http_server(answer).await;
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

/// A test CA, the directory holding its `ca_file`, and an https check of a port of
/// localhost trusting it.
fn test_ca() -> (
    common::tls::Ca,
    tempfile::TempDir,
    impl Fn(u16) -> CheckSpec,
) {
    let ca = ca("opsdeck test CA");
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &ca.pem).unwrap();
    let ca_file = ca_file.display().to_string();
    let https = move |port: u16| CheckSpec {
        ca_file: Some(ca_file.clone()),
        ..spec(format!("https://localhost:{port}/"))
    };
    (ca, dir, https)
}

#[tokio::test]
async fn tls_valid_expiring_and_expired_certificates() {
    let (ca, _dir, https) = test_ca();
    let now = time::OffsetDateTime::now_utc();

    let (cert, key) = leaf(
        &ca,
        now + time::Duration::days(60) + time::Duration::hours(1),
    );
    let valid_port = https_server(cert, key, answer).await;
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
    let port = https_server(cert, key, answer).await;
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
    let port = https_server(cert, key, answer).await;
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

#[tokio::test]
async fn redirects_are_the_answer_unless_a_check_follows_them() {
    let port = http_server(answer).await;
    let mut s = spec(format!("http://127.0.0.1:{port}/redirect"));
    s.expect_body = Some("else".into());
    let not_followed = run(&s).await;
    assert!(!not_followed.ok);
    assert_eq!(not_followed.status, Some(302));
    assert_eq!(
        not_followed.error.as_deref(),
        Some("expected status 200 got 302")
    );

    s.follow_redirects = true;
    let followed = run(&s).await;
    assert!(followed.ok, "{followed:?}");
    assert_eq!(followed.status, Some(200));

    // Expecting the redirect itself is how a check watches one.
    let mut expect_302 = spec(format!("http://127.0.0.1:{port}/redirect"));
    expect_302.expect_status = 302;
    assert!(run(&expect_302).await.ok);

    let mut endless = spec(format!("http://127.0.0.1:{port}/loop"));
    endless.follow_redirects = true;
    let endless = run(&endless).await;
    assert!(!endless.ok);
    assert_eq!(endless.status, None);
    let error = endless.error.unwrap();
    assert!(error.starts_with("redirect: "), "{error}");
}

#[tokio::test]
async fn a_body_is_read_up_to_one_mebibyte() {
    let port = http_server(answer).await;
    let mut s = spec(format!("http://127.0.0.1:{port}/big"));
    s.expect_body = Some("start".into());
    let head = run(&s).await;
    assert!(head.ok, "{head:?}");
    s.expect_body = Some("end".into());
    let tail = run(&s).await;
    assert!(!tail.ok);
    assert_eq!(tail.error.as_deref(), Some("body does not contain \"end\""));
}

/// Stands in for an SSH `direct-tcpip` channel: a TCP connection from here.
struct Loopback;

impl checks::Tunnel for Loopback {
    fn open_tcp<'a>(&'a self, host: &'a str, port: u16) -> checks::OpenFuture<'a> {
        Box::pin(async move {
            let tcp = tokio::net::TcpStream::connect((host, port))
                .await
                .map_err(|e| e.to_string())?;
            Ok(Box::new(tcp) as checks::BoxIo)
        })
    }
}

#[tokio::test]
async fn through_a_tunnel_the_certificate_is_read_and_refused_alike() {
    let (ca, _dir, https) = test_ca();
    let now = time::OffsetDateTime::now_utc();
    let tunnelled = |port: u16| CheckSpec {
        via_ssh: true,
        ..https(port)
    };
    let through = |s: CheckSpec| async move {
        checks::run(&s, Some(&Loopback), jiff::Timestamp::now().as_second()).await
    };

    let (cert, key) = leaf(
        &ca,
        now + time::Duration::days(60) + time::Duration::hours(1),
    );
    let valid = through(tunnelled(https_server(cert, key, answer).await)).await;
    assert!(valid.ok, "{valid:?}");
    assert_eq!(valid.tls.unwrap().days_left, 60);

    let (cert, key) = leaf(
        &ca,
        now - time::Duration::days(2) - time::Duration::hours(1),
    );
    let expired = through(tunnelled(https_server(cert, key, answer).await)).await;
    assert_eq!(expired.error.as_deref(), Some("certificate expired"));
    assert_eq!(expired.status, None);
    assert_eq!(expired.tls.unwrap().days_left, -3);
}
