//! Checks and webhooks through an HTTP proxy, by the real binary against lila (issue 15,
//! part 5): a tinyproxy of the test's own (the lab installs the package; its config here
//! allows only this machine and CONNECT only to the test's ports) carries an https check
//! to a server of the test (CONNECT), an http check to lila's web front (a forwarded GET)
//! and the webhook of `opsdeck check` (a forwarded POST); its log shows each. With the
//! proxy stopped every one of them fails naming the proxy, without the proxy's password;
//! with `NO_PROXY` covering the targets they go direct and pass again.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::lab::{LILA, Lab, wait_for};
use common::run::{host_inventory, opsdeck_command, text};
use common::tls::{ca, http_server, https_server, leaf, read_request};
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

/// A tinyproxy in the foreground on a free port of 127.0.0.1, stopped when dropped.
struct Tinyproxy {
    child: Option<Child>,
    port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Tinyproxy {
    fn start(connect_ports: &[u16]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = dir.path().join("tinyproxy.log");
        let mut conf = format!(
            "Port {port}\nListen 127.0.0.1\nTimeout 10\nAllow 127.0.0.1\nMaxClients 20\n\
             LogLevel Connect\nLogFile \"{}\"\n",
            log.display()
        );
        for p in connect_ports {
            conf.push_str(&format!("ConnectPort {p}\n"));
        }
        let conf_path = dir.path().join("tinyproxy.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let child = Command::new("tinyproxy")
            .arg("-d")
            .arg("-c")
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("tinyproxy (the lab installs it: sudo tests/lab/lab up)");
        let mut proxy = Tinyproxy {
            child: Some(child),
            port,
            log,
            _dir: dir,
        };
        let up = wait_for(Duration::from_secs(10), Duration::from_millis(20), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).ok()
        });
        if up.is_none() {
            proxy.stop();
            panic!("tinyproxy did not listen on 127.0.0.1:{port} within 10 s");
        }
        proxy
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Tinyproxy {
    fn drop(&mut self) {
        self.stop();
    }
}

/// What the webhook receiver was sent: one request head and body per post.
type Received = Arc<Mutex<Vec<(String, String)>>>;

/// Answers every request with 200 "ok", keeping it in `received` when given.
async fn ok<S: AsyncRead + AsyncWrite + Unpin>(mut s: S, received: Option<Received>) {
    let Some((head, body)) = read_request(&mut s).await else {
        return;
    };
    if let Some(r) = received {
        r.lock()
            .unwrap()
            .push((head, String::from_utf8_lossy(&body).into_owned()));
    }
    let resp = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
    let _ = s.write_all(resp).await;
    let _ = s.shutdown().await;
}

/// The binary against the lab with this proxy environment (every other proxy variable
/// removed) and its own state dir, so each run's webhook sees a changed set and posts.
async fn run(
    lab: &'static Lab,
    home: &Path,
    state: &str,
    proxy: &[(&str, &str)],
    args: &[&str],
) -> Output {
    let mut cmd = opsdeck_command(lab, home, args);
    cmd.env("OPSDECK_CONFIG", home.join("hosts.toml"))
        .env("XDG_STATE_HOME", home.join(state));
    for var in ["HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY"] {
        cmd.env_remove(var).env_remove(var.to_lowercase());
    }
    for (k, v) in proxy {
        cmd.env(k, v);
    }
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}

/// lila's checks from `status --json`, by name.
fn checks(out: &Output) -> Vec<(String, Value)> {
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}{}", text(&out.stdout), text(&out.stderr)));
    v["hosts"][0]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].as_str().unwrap().to_string(), c.clone()))
        .collect()
}

/// `check` posted without complaint: the receiver holds `count` posts.
fn posted(out: &Output, received: &Received, count: usize) {
    let stderr = text(&out.stderr);
    assert!(!stderr.contains("notify"), "{stderr}");
    assert_eq!(received.lock().unwrap().len(), count);
}

fn check<'a>(checks: &'a [(String, Value)], name: &str) -> &'a Value {
    &checks.iter().find(|(n, _)| n == name).unwrap().1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checks_and_webhooks_go_through_the_proxy_and_say_so_when_it_is_down() {
    let Some(lab) = Lab::get() else { return };
    let ca = ca("opsdeck proxy test CA");
    let not_after =
        time::OffsetDateTime::now_utc() + time::Duration::days(60) + time::Duration::hours(1);
    let (cert, key) = leaf(&ca, not_after);
    let target = https_server(cert.clone(), key.clone_key(), |s| ok(s, None)).await;
    // An https webhook receiver whose CA a webhook does not trust (webhooks take no
    // ca_file): it shows HTTPS_PROXY carrying a webhook, and the refusal.
    let untrusted = https_server(cert, key, |s| ok(s, None)).await;
    let received = Received::default();
    let hook = {
        let received = received.clone();
        http_server(move |s| ok(s, Some(received.clone()))).await
    };
    let mut proxy = Tinyproxy::start(&[target, untrusted]);
    let proxy_url = proxy.url();

    let home = tempfile::tempdir().unwrap();
    let ca_file = home.path().join("ca.pem");
    std::fs::write(&ca_file, &ca.pem).unwrap();
    let inventory = |hook: &str| {
        format!(
            "[[host.check]]\nname = \"tls\"\nurl = \"https://localhost:{target}/\"\nca_file = \"{ca}\"\n\n\
             [[host.check]]\nname = \"lab\"\nurl = \"http://{lila}/\"\nexpect_body = \"lila\"\n\n\
             # a problem for `check` to post\n\
             [[host.check]]\nname = \"always\"\nurl = \"https://localhost:{target}/\"\nca_file = \"{ca}\"\nexpect_status = 299\n\n\
             [settings.notify]\nurl = \"{hook}\"\n",
            ca = ca_file.display(),
            lila = LILA.address,
        )
    };
    let hook_url = format!("http://127.0.0.1:{hook}/hook");
    host_inventory(home.path(), lab, &LILA, &inventory(&hook_url));

    // The proxy up: everything through it.
    let via = [
        ("HTTPS_PROXY", proxy_url.as_str()),
        ("HTTP_PROXY", proxy_url.as_str()),
        ("NO_PROXY", ""),
    ];
    let out = run(lab, home.path(), "s1", &via, &["status", "lila", "--json"]).await;
    let found = checks(&out);
    let tls = check(&found, "tls");
    assert_eq!(tls["ok"], true, "{tls}");
    assert_eq!(tls["tls"]["days_left"], 60, "{tls}");
    assert_eq!(tls["tls"]["issuer"], "opsdeck proxy test CA");
    assert_eq!(check(&found, "lab")["ok"], true, "{}", check(&found, "lab"));
    let always = check(&found, "always")["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        always,
        format!("expected status 299 got 200 (through proxy {proxy_url})")
    );
    let log = proxy.log();
    assert!(
        log.contains(&format!("CONNECT localhost:{target} ")),
        "{log}"
    );
    assert!(
        log.contains(&format!("GET http://{}/ ", LILA.address)),
        "{log}"
    );

    let out = run(lab, home.path(), "s2", &via, &["check", "lila"]).await;
    posted(&out, &received, 1);
    {
        let got = received.lock().unwrap();
        let body: Value = serde_json::from_str(&got[0].1).unwrap();
        let problems = body["problems"].to_string();
        assert!(problems.contains("check always failed"), "{problems}");
    }
    assert!(
        proxy
            .log()
            .contains(&format!("POST http://127.0.0.1:{hook}/hook "))
    );

    // An https webhook goes through HTTPS_PROXY too, and an untrusted one is refused.
    let untrusted_home = tempfile::tempdir().unwrap();
    host_inventory(
        untrusted_home.path(),
        lab,
        &LILA,
        &inventory(&format!("https://localhost:{untrusted}/hook")),
    );
    let out = run(lab, untrusted_home.path(), "s", &via, &["check", "lila"]).await;
    assert!(
        text(&out.stderr).contains(&format!(
            "opsdeck: notify: certificate issuer unknown (not a trusted CA) (through proxy {proxy_url})"
        )),
        "{}",
        text(&out.stderr)
    );
    assert!(
        proxy
            .log()
            .contains(&format!("CONNECT localhost:{untrusted} "))
    );

    // The proxy stopped: each failure names it, never its password.
    proxy.stop();
    let with_password = format!("http://opsdeck:s3cret@127.0.0.1:{}", proxy.port);
    let via = [
        ("HTTPS_PROXY", with_password.as_str()),
        ("HTTP_PROXY", with_password.as_str()),
        ("NO_PROXY", ""),
    ];
    let refused = format!("proxy {proxy_url} refused the connection");
    let out = run(lab, home.path(), "s3", &via, &["status", "lila", "--json"]).await;
    let found = checks(&out);
    for name in ["tls", "lab", "always"] {
        let c = check(&found, name);
        assert_eq!(c["ok"], false, "{c}");
        assert_eq!(c["error"], refused.as_str(), "{c}");
    }
    let out = run(lab, home.path(), "s4", &via, &["check", "lila"]).await;
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("opsdeck: notify: {refused}")),
        "{stderr}"
    );
    assert!(!format!("{}{stderr}", text(&out.stdout)).contains("s3cret"));
    assert_eq!(received.lock().unwrap().len(), 1);

    // NO_PROXY covering the targets: direct, with the proxy still stopped.
    let no_proxy = format!("localhost,127.0.0.1,{}", LILA.address);
    let direct = [
        ("HTTPS_PROXY", with_password.as_str()),
        ("HTTP_PROXY", with_password.as_str()),
        ("NO_PROXY", no_proxy.as_str()),
    ];
    let out = run(
        lab,
        home.path(),
        "s5",
        &direct,
        &["status", "lila", "--json"],
    )
    .await;
    let found = checks(&out);
    assert_eq!(check(&found, "tls")["ok"], true, "{}", check(&found, "tls"));
    assert_eq!(check(&found, "tls")["tls"]["days_left"], 60);
    assert_eq!(check(&found, "lab")["ok"], true, "{}", check(&found, "lab"));
    assert_eq!(
        check(&found, "always")["error"],
        "expected status 299 got 200"
    );
    let out = run(lab, home.path(), "s6", &direct, &["check", "lila"]).await;
    posted(&out, &received, 2);
}
