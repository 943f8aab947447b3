//! Remote hosts against the lab: real OpenSSH servers, real Docker engines (20.10, API
//! 1.41), reached the way an operator's machine reaches a VPS.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};

use common::lab::{COURSE_SUPPORTER, DOWN, HOSTS, LILA, Lab, LabHost};
use serde_json::Value;

/// Tests here count logins in the lab's sshd logs, so they must not log in concurrently:
/// each test holds this for its whole run.
static SSH_LOGINS: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SSH_LOGINS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs the real binary with the lab's environment, minus what a test overrides.
fn opsdeck(lab: &Lab, home: &Path, args: &[&str], env: &[(&str, Option<&str>)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_opsdeck"));
    cmd.args(args)
        .current_dir(home)
        .env("HOME", home)
        .env("XDG_STATE_HOME", home.join("state"));
    for (k, v) in &lab.env {
        cmd.env(k, v);
    }
    for (k, v) in env {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    cmd.output().unwrap()
}

fn status_json(lab: &Lab, home: &Path, args: &[&str], env: &[(&str, Option<&str>)]) -> Value {
    let mut all = vec!["status", "--json"];
    all.extend_from_slice(args);
    let out = opsdeck(lab, home, &all, env);
    assert!(
        out.status.success(),
        "opsdeck status failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn host<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["name"] == name)
        .unwrap_or_else(|| panic!("{name} missing from {status:#}"))
}

/// An inventory with one lab host, written by the test: `extra` lines go under `[[host]]`.
fn inventory(dir: &Path, lab: &Lab, h: &LabHost, extra: &str) -> String {
    let path = dir.join("hosts.toml");
    let text = format!(
        "[[host]]\nname = \"{}\"\naddress = \"{}\"\nuser = \"{}\"\ndocker_socket = \"{}\"\n{extra}\n",
        h.name,
        h.address,
        h.user,
        lab.docker_socket(h).display()
    );
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

fn sshd_log(lab: &Lab, h: &LabHost) -> String {
    std::fs::read_to_string(lab.state.join("hosts").join(h.name).join("sshd.log"))
        .unwrap_or_default()
}

fn accepted(lab: &Lab, h: &LabHost) -> usize {
    sshd_log(lab, h).matches("Accepted publickey").count()
}

#[test]
fn status_lists_what_docker_ps_shows_on_each_host() {
    let Some(lab) = Lab::get() else { return };
    let _serial = serial();
    let home = tempfile::tempdir().unwrap();
    let status = status_json(lab, home.path(), &[], &[]);
    for h in HOSTS {
        let got = host(&status, h.name);
        assert_eq!(got["reachable"], true, "{}: {got:#}", h.name);
        assert_eq!(got["error"], Value::Null);
        assert_eq!(got["docker_error"], Value::Null);
        // Exactly what `docker ps -a` says over a plain ssh to the same host.
        // (but opsdeck's own never-started keepers of kept releases' images)
        let ps = lab.ssh_ok(
            &h,
            "docker ps -a --format '{{.ID}} {{.Names}} {{.State}} {{.Label \"opsdeck.keep\"}}'",
        );
        let expected: BTreeSet<(String, String)> = ps
            .lines()
            .filter(|l| l.split_whitespace().nth(3).is_none())
            .map(|l| {
                let mut w = l.split_whitespace();
                let (_, name, state) = (w.next().unwrap(), w.next().unwrap(), w.next().unwrap());
                (name.to_string(), state.to_string())
            })
            .collect();
        let listed: BTreeSet<(String, String)> = got["containers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["name"].as_str().unwrap().to_string(),
                    c["state"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        assert_eq!(listed, expected, "{}", h.name);
        for wanted in h.services {
            let (project, service) = wanted.split_once(':').unwrap();
            assert!(
                got["containers"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|c| c["project"] == project && c["service"] == service),
                "{}: no {wanted} in {got:#}",
                h.name
            );
        }
        // Metrics are read from the host's /proc over the same connection: sane, non-zero.
        let m = &got["metrics"];
        let cpu = m["cpu_percent"].as_f64().unwrap();
        assert!(cpu > 0.0 && cpu <= 100.0, "cpu {cpu}");
        let (used, total) = (
            m["mem_used_bytes"].as_u64().unwrap(),
            m["mem_total_bytes"].as_u64().unwrap(),
        );
        assert!(used > 0 && used < total, "{used} of {total}");
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap();
        let kb: u64 = meminfo
            .lines()
            .next()
            .unwrap()
            .split_whitespace()
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(total, kb * 1024, "MemTotal as the host reports it");
        assert!(
            m["disks"]
                .as_array()
                .unwrap()
                .iter()
                .any(|d| d["mount"] == "/")
        );
        // Container memory comes from the host's cgroup files: every running one has some.
        for c in got["containers"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["state"] == "running")
        {
            assert!(c["mem_bytes"].as_u64().unwrap() > 0, "{c:#}");
            assert!(c["started_at"].is_string());
            assert_eq!(c["restarts"], 0);
        }
        // The lab inventory gives every up host two checks, one of them via SSH; they
        // have their own test below, as do backups.
        assert_eq!(got["checks"].as_array().unwrap().len(), 2, "{got:#}");
    }
    let down = host(&status, DOWN.name);
    assert_eq!(down["reachable"], false);
    assert!(
        down["error"]
            .as_str()
            .unwrap()
            .contains("Connection refused"),
        "{down:#}"
    );
    assert_eq!(down["metrics"], Value::Null);
}

#[test]
fn status_text_is_a_compact_table_and_names_select_hosts() {
    let Some(lab) = Lab::get() else { return };
    let _serial = serial();
    let home = tempfile::tempdir().unwrap();
    let out = opsdeck(lab, home.path(), &["status", "lila", "down"], &[]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("HOST "), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("lila") && l.contains(" up ")),
        "{text}"
    );
    assert!(text.contains("    api "), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("down") && l.contains("Connection refused")),
        "{text}"
    );
    assert!(
        !text.contains("course-supporter"),
        "only the named hosts: {text}"
    );
    let out = opsdeck(lab, home.path(), &["status", "nosuchhost"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown host \"nosuchhost\""));
}

#[test]
fn unknown_host_key_is_refused_headless_and_accepted_with_accept_new() {
    let Some(lab) = Lab::get() else { return };
    let _serial = serial();
    let home = tempfile::tempdir().unwrap();
    let known = home.path().join("known_hosts");
    let config = inventory(
        home.path(),
        lab,
        &LILA,
        &format!(
            "known_hosts = \"{}\"\nidentity_file = \"{}\"",
            known.display(),
            lab.key.display()
        ),
    );
    let env = [
        ("OPSDECK_CONFIG", Some(config.as_str())),
        ("SSH_AUTH_SOCK", None),
    ];
    let before = accepted(lab, &LILA);
    let status = status_json(lab, home.path(), &[], &env);
    let got = host(&status, LILA.name);
    assert_eq!(got["reachable"], false);
    let error = got["error"].as_str().unwrap();
    assert!(
        error.contains("unknown host key for 127.0.0.12 (SHA256:"),
        "{error}"
    );
    assert!(error.contains("--accept-new"), "{error}");
    assert_eq!(
        accepted(lab, &LILA),
        before,
        "nothing logged in before the key was trusted"
    );
    assert!(!known.exists(), "nothing recorded without --accept-new");

    let status = status_json(lab, home.path(), &["--accept-new"], &env);
    assert_eq!(host(&status, LILA.name)["reachable"], true, "{status:#}");
    // Recorded hashed, as OpenSSH writes it, and OpenSSH itself finds it.
    let text = std::fs::read_to_string(&known).unwrap();
    assert!(text.starts_with("|1|"), "{text}");
    let found = Command::new("ssh-keygen")
        .args(["-F", "127.0.0.12", "-f"])
        .arg(&known)
        .output()
        .unwrap();
    assert!(
        found.status.success(),
        "ssh-keygen -F does not find the recorded key"
    );
    // And the recorded key now lets a strict connection through without the flag.
    let status = status_json(lab, home.path(), &[], &env);
    assert_eq!(host(&status, LILA.name)["reachable"], true);
}

#[test]
fn changed_host_key_is_refused_naming_file_and_line_and_nothing_runs() {
    let Some(lab) = Lab::get() else { return };
    let _serial = serial();
    let home = tempfile::tempdir().unwrap();
    // A different ed25519 key recorded for course-supporter's address, on line 3.
    let keyfile = home.path().join("other");
    let ok = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&keyfile)
        .status()
        .unwrap();
    assert!(ok.success());
    let other = std::fs::read_to_string(keyfile.with_extension("pub")).unwrap();
    let known = home.path().join("known_hosts");
    std::fs::write(&known, format!("# managed by hand\n\n127.0.0.11 {other}")).unwrap();
    let config = inventory(
        home.path(),
        lab,
        &COURSE_SUPPORTER,
        &format!(
            "known_hosts = \"{}\"\nidentity_file = \"{}\"",
            known.display(),
            lab.key.display()
        ),
    );
    let env = [("OPSDECK_CONFIG", Some(config.as_str()))];
    let before = accepted(lab, &COURSE_SUPPORTER);
    // Even --accept-new never overrides a changed key.
    let status = status_json(lab, home.path(), &["--accept-new"], &env);
    let got = host(&status, COURSE_SUPPORTER.name);
    assert_eq!(got["reachable"], false);
    let error = got["error"].as_str().unwrap();
    assert!(error.contains("HOST KEY CHANGED for 127.0.0.11"), "{error}");
    assert!(error.contains(&format!("{}:3", known.display())), "{error}");
    // The handshake stopped before authentication: sshd never logged us in.
    assert_eq!(
        accepted(lab, &COURSE_SUPPORTER),
        before,
        "{}",
        sshd_log(lab, &COURSE_SUPPORTER)
    );
    assert_eq!(
        std::fs::read_to_string(&known).unwrap().lines().count(),
        3,
        "known_hosts untouched"
    );
}

#[test]
fn agent_auth_and_key_file_auth_both_work() {
    let Some(lab) = Lab::get() else { return };
    let _serial = serial();
    let home = tempfile::tempdir().unwrap();
    let kh = format!("known_hosts = \"{}\"", lab.known_hosts.display());
    // Agent only: no identity file anywhere (HOME is empty).
    let config = inventory(home.path(), lab, &LILA, &kh);
    let env = [("OPSDECK_CONFIG", Some(config.as_str()))];
    let status = status_json(lab, home.path(), &[], &env);
    assert_eq!(
        host(&status, LILA.name)["reachable"],
        true,
        "agent auth: {status:#}"
    );
    // Key file only: no agent.
    let config = inventory(
        home.path(),
        lab,
        &LILA,
        &format!("{kh}\nidentity_file = \"{}\"", lab.key.display()),
    );
    let env = [
        ("OPSDECK_CONFIG", Some(config.as_str())),
        ("SSH_AUTH_SOCK", None),
    ];
    let status = status_json(lab, home.path(), &[], &env);
    assert_eq!(
        host(&status, LILA.name)["reachable"],
        true,
        "key file auth: {status:#}"
    );
    // Neither: a clear refusal naming what was tried.
    let config = inventory(home.path(), lab, &LILA, &kh);
    let env = [
        ("OPSDECK_CONFIG", Some(config.as_str())),
        ("SSH_AUTH_SOCK", None),
    ];
    let status = status_json(lab, home.path(), &[], &env);
    let got = host(&status, LILA.name);
    assert_eq!(got["reachable"], false);
    assert!(
        got["error"]
            .as_str()
            .unwrap()
            .contains("permission denied for lila@127.0.0.12"),
        "{got:#}"
    );
}

#[test]
fn proxyjump_through_one_lab_host_to_another() {
    let Some(lab) = Lab::get() else { return };
    let _serial = serial();
    let home = tempfile::tempdir().unwrap();
    let extra = format!(
        "known_hosts = \"{}\"\njump = \"{}@{}\"",
        lab.known_hosts.display(),
        COURSE_SUPPORTER.user,
        COURSE_SUPPORTER.address
    );
    let config = inventory(home.path(), lab, &LILA, &extra);
    let env = [("OPSDECK_CONFIG", Some(config.as_str()))];
    let before = accepted(lab, &COURSE_SUPPORTER);
    let status = status_json(lab, home.path(), &[], &env);
    let got = host(&status, LILA.name);
    assert_eq!(got["reachable"], true, "{got:#}");
    assert!(
        got["containers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["service"] == "api")
    );
    assert!(
        accepted(lab, &COURSE_SUPPORTER) > before,
        "the jump host saw a login"
    );
}

#[test]
fn a_hundred_hosts_behind_one_jump_host_share_its_connection() {
    let Some(lab) = Lab::get() else { return };
    let _serial = serial();
    let home = tempfile::tempdir().unwrap();
    // 100 inventory hosts, each one of the three lab hosts, all through course-supporter.
    let mut text = String::new();
    for i in 0..100 {
        let h = HOSTS[i % 3];
        text.push_str(&format!(
            "[[host]]\nname = \"{}-{i}\"\naddress = \"{}\"\nuser = \"{}\"\ndocker_socket = \"{}\"\nknown_hosts = \"{}\"\njump = \"{}@{}\"\n\n",
            h.name,
            h.address,
            h.user,
            lab.docker_socket(&h).display(),
            lab.known_hosts.display(),
            COURSE_SUPPORTER.user,
            COURSE_SUPPORTER.address
        ));
    }
    let config = home.path().join("hosts.toml");
    std::fs::write(&config, text).unwrap();
    let config = config.display().to_string();
    let env = [("OPSDECK_CONFIG", Some(config.as_str()))];
    for run in 0..1 {
        let before = accepted(lab, &COURSE_SUPPORTER);
        let status = status_json(lab, home.path(), &[], &env);
        let hosts = status["hosts"].as_array().unwrap();
        assert_eq!(hosts.len(), 100);
        let down: Vec<String> = hosts
            .iter()
            .filter(|h| h["reachable"] != true)
            .map(|h| format!("{}: {}", h["name"], h["error"]))
            .collect();
        assert!(down.is_empty(), "run {run}: {} down: {down:?}", down.len());
        // One login on the jump host for the jump itself; course-supporter's own 34
        // inventory entries log in to it as targets, through the jump.
        let logins = accepted(lab, &COURSE_SUPPORTER) - before;
        assert_eq!(logins, 1 + 34, "run {run}: logins on the jump host");
    }
}

#[test]
fn ssh_config_alias_supplies_address_user_and_key() {
    let Some(lab) = Lab::get() else { return };
    let _serial = serial();
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(home.path().join(".ssh")).unwrap();
    std::fs::write(
        home.path().join(".ssh/config"),
        format!(
            "Host lila-vps\n  HostName {}\n  User {}\n  IdentityFile {}\n  UserKnownHostsFile {}\n",
            LILA.address,
            LILA.user,
            lab.key.display(),
            lab.known_hosts.display()
        ),
    )
    .unwrap();
    let path = home.path().join("hosts.toml");
    std::fs::write(
        &path,
        format!(
            "[settings]\nknown_hosts = \"{}\"\n[[host]]\nname = \"lila-vps\"\ndocker_socket = \"{}\"\n",
            lab.known_hosts.display(),
            lab.docker_socket(&LILA).display()
        ),
    )
    .unwrap();
    let config = path.display().to_string();
    let env = [
        ("OPSDECK_CONFIG", Some(config.as_str())),
        ("SSH_AUTH_SOCK", None),
    ];
    let status = status_json(lab, home.path(), &[], &env);
    assert_eq!(host(&status, "lila-vps")["reachable"], true, "{status:#}");
}

#[test]
fn logs_command_prints_a_containers_log_over_ssh() {
    let Some(lab) = Lab::get() else { return };
    let _serial = serial();
    let home = tempfile::tempdir().unwrap();
    let out = opsdeck(
        lab,
        home.path(),
        &["logs", "lila", "api", "--tail", "5"],
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("lila-api"), "{text}");
    assert!(text.lines().count() <= 10, "--tail 5 per stream: {text}");
    let out = opsdeck(lab, home.path(), &["logs", "lila", "nosuch"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no container \"nosuch\""));
}

#[test]
fn status_reports_the_labs_backup_verdicts() {
    let Some(lab) = Lab::get() else { return };
    let _serial = serial();
    let home = tempfile::tempdir().unwrap();
    let status = status_json(lab, home.path(), &[], &[]);
    // The lab seeds these (tests/lab/README.md): one set per verdict.
    for (h, set, verdict) in [
        ("course-supporter", "db", "stale"),
        ("course-supporter", "uploads", "suspicious"),
        ("lila", "db", "fresh"),
        ("duckdb-app", "app.db", "missing"),
    ] {
        let b = host(&status, h)["backups"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["name"] == set)
            .unwrap_or_else(|| panic!("{h}/{set} missing"))
            .clone();
        assert_eq!(b["verdict"], verdict, "{h}/{set}: {b:#}");
        if verdict == "missing" {
            assert_eq!(b["count"], 0);
            assert_eq!(b["newest_path"], Value::Null);
        } else {
            assert!(b["count"].as_u64().unwrap() >= 3, "{b:#}");
            assert!(b["newest_size_bytes"].as_u64().unwrap() > 0);
            let path = b["newest_path"].as_str().unwrap();
            // The file really is there, and really is the newest, as ls sees it.
            let dir = b["dir"].as_str().unwrap().trim_start_matches("~/");
            let glob = if set == "uploads" {
                "uploads-*.tar.gz"
            } else if h == "lila" {
                "lila-*.sql.gz"
            } else {
                "course-supporter-*.dump"
            };
            let lab_host = common::lab::HOSTS.iter().find(|x| x.name == h).unwrap();
            let newest = lab.ssh_ok(lab_host, &format!("cd {dir} && ls -t {glob} | head -1"));
            assert!(path.ends_with(newest.trim()), "{path} vs {newest}");
        }
    }
    let fresh_age = host(&status, "lila")["backups"][0]["newest_age_seconds"]
        .as_i64()
        .unwrap();
    assert!(fresh_age < 26 * 3600, "{fresh_age}");
}

#[test]
fn status_runs_the_labs_http_checks_directly_and_through_ssh() {
    let Some(lab) = Lab::get() else { return };
    let _serial = serial();
    let home = tempfile::tempdir().unwrap();
    let status = status_json(lab, home.path(), &[], &[]);
    // tests/lab/README.md: the app ports (8000, 12000) and lila's API are only checked
    // through the host's SSH connection (direct-tcpip), the sites through nginx/caddy.
    for (h, name, via) in [
        ("course-supporter", "api via nginx", "direct"),
        ("course-supporter", "app direct", "ssh"),
        ("lila", "site", "direct"),
        ("lila", "api health", "ssh"),
        ("duckdb-app", "backend", "ssh"),
        ("duckdb-app", "site via nginx", "direct"),
    ] {
        let c = host(&status, h)["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("{h}/{name} missing"))
            .clone();
        assert_eq!(c["via"], via, "{c:#}");
        assert_eq!(c["status"], 200, "{h}/{name}: {c:#}");
        assert_eq!(c["ok"], true, "{h}/{name}: {c:#}");
        assert_eq!(c["error"], Value::Null);
        assert!(c["latency_ms"].as_u64().unwrap() < 10_000);
        assert_eq!(c["tls"], Value::Null, "plain http has no certificate");
    }
    assert_eq!(host(&status, "down")["checks"], serde_json::json!([]));
}

/// `opsdeck check` with the lab's environment: exit code and the JSON it printed.
fn check_json(lab: &Lab, home: &Path, args: &[&str]) -> (i32, Value) {
    let mut all = vec!["check", "--json"];
    all.extend_from_slice(args);
    let out = opsdeck(lab, home, &all, &[]);
    let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "check printed no JSON ({e}): {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap(), json)
}

/// Problems of `host` whose text contains `needle`.
fn problems_of(report: &Value, host: &str, needle: &str) -> Vec<Value> {
    report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["host"] == host && p["what"].as_str().unwrap().contains(needle))
        .cloned()
        .collect()
}

/// Runs `check` until `done` holds (the lab's switches take a few seconds to show).
fn check_until(
    lab: &Lab,
    home: &Path,
    args: &[&str],
    what: &str,
    done: impl Fn(i32, &Value) -> bool,
) -> (i32, Value) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let (code, report) = check_json(lab, home, args);
        if done(code, &report) {
            return (code, report);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: not within 60 s; last exit {code}: {report:#}"
        );
        std::thread::sleep(std::time::Duration::from_secs(2));
    }
}

#[test]
fn check_prints_the_labs_problems_worst_first_with_plugin_exit_codes() {
    let Some(lab) = Lab::get() else { return };
    let _serial = serial();
    let home = tempfile::tempdir().unwrap();
    let (code, report) = check_json(lab, home.path(), &[]);
    assert_eq!(code, 2, "{report:#}");
    assert_eq!(report["status"], "critical");
    // The lab's reference state: course-supporter's db dumps are stale by design, the
    // duckdb app has no backup at all, and `down` refuses connections.
    let stale = problems_of(
        &report,
        "course-supporter",
        "backup course-supporter/db stale",
    );
    assert_eq!(stale.len(), 1, "{report:#}");
    assert_eq!(stale[0]["severity"], "critical");
    let down = problems_of(&report, "down", "host unreachable");
    assert_eq!(down.len(), 1, "{report:#}");
    assert!(
        down[0]["what"]
            .as_str()
            .unwrap()
            .contains("Connection refused")
    );
    assert_eq!(
        problems_of(&report, "duckdb-app", "backup app/app.db missing").len(),
        1
    );
    assert_eq!(
        problems_of(&report, "course-supporter", "uploads suspicious")[0]["severity"],
        "warning"
    );
    // Worst first.
    let severities: Vec<&str> = report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["severity"].as_str().unwrap())
        .collect();
    let first_warning = severities.iter().position(|s| *s == "warning");
    if let Some(w) = first_warning {
        assert!(
            severities[w..].iter().all(|s| *s == "warning"),
            "{severities:?}"
        );
    }

    // Text: one line per problem, the same order.
    let out = opsdeck(lab, home.path(), &["check"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.lines().count(), severities.len(), "{text}");
    assert!(
        text.lines().next().unwrap().starts_with("CRITICAL "),
        "{text}"
    );
    assert!(text.contains("CRITICAL down: host unreachable"), "{text}");

    // lila is clean in its reference state: 0.
    let out = opsdeck(lab, home.path(), &["check", "lila"], &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "OK: 1 hosts, no problems\n"
    );

    // A warning only: 1. Thresholds from the inventory, here memory use at 0.1%.
    let dir = tempfile::tempdir().unwrap();
    let config = inventory(
        dir.path(),
        lab,
        &LILA,
        &format!(
            "known_hosts = \"{}\"\nthresholds = {{ mem_warn = 0.1, mem_crit = 100, disk_warn = 100, disk_crit = 100 }}",
            lab.known_hosts.display()
        ),
    );
    let out = opsdeck(
        lab,
        home.path(),
        &["check"],
        &[("OPSDECK_CONFIG", Some(&config))],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.starts_with("WARNING  lila: memory "), "{text}");

    // Could not run: 3, for an unknown host and for a broken inventory.
    let out = opsdeck(lab, home.path(), &["check", "nosuch"], &[]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown host \"nosuch\""));
    let broken = dir.path().join("broken.toml");
    std::fs::write(&broken, "[[host]]\nnmae = \"x\"\n").unwrap();
    let broken = broken.display().to_string();
    let out = opsdeck(
        lab,
        home.path(),
        &["check"],
        &[("OPSDECK_CONFIG", Some(&broken))],
    );
    assert_eq!(out.status.code(), Some(3));
}

/// Turns lila's unhealthy switch off again even when the test fails.
struct UnhealthyOff<'a>(&'a Lab);
impl Drop for UnhealthyOff<'_> {
    fn drop(&mut self) {
        self.0.lab(&["unhealthy", "off"]);
    }
}

#[test]
fn check_turns_the_unhealthy_switch_into_critical_lines_and_back() {
    let Some(lab) = Lab::get() else { return };
    let _serial = serial();
    let home = tempfile::tempdir().unwrap();
    lab.lab(&["unhealthy", "on"]);
    let guard = UnhealthyOff(lab);
    let (code, report) = check_until(lab, home.path(), &["lila"], "lila unhealthy", |_, r| {
        !problems_of(r, "lila", "unhealthy").is_empty()
            && !problems_of(r, "lila", "check api health failed").is_empty()
    });
    assert_eq!(code, 2, "{report:#}");
    let failed = &problems_of(&report, "lila", "check api health failed")[0];
    assert_eq!(failed["severity"], "critical");
    assert!(
        failed["what"].as_str().unwrap().contains("got 503"),
        "{failed:#}"
    );
    let unhealthy = &problems_of(&report, "lila", "unhealthy")[0];
    assert!(
        unhealthy["what"].as_str().unwrap().contains("api"),
        "{unhealthy:#}"
    );
    drop(guard);
    let (code, report) = check_until(lab, home.path(), &["lila"], "lila healthy again", |c, _| {
        c == 0
    });
    assert_eq!(report["problems"], serde_json::json!([]));
    assert_eq!(code, 0);
}

/// Starts a stopped lab container again (and waits until it is up) even when the test fails.
struct StartAgain<'a>(&'a Lab, &'a LabHost, String);
impl Drop for StartAgain<'_> {
    fn drop(&mut self) {
        let (lab, h, name) = (self.0, self.1, &self.2);
        lab.ssh_ok(h, &format!("docker start {name}"));
        for _ in 0..60 {
            let state = lab.ssh_ok(
                h,
                &format!(
                    "docker inspect -f '{{{{.State.Status}}}} {{{{if .State.Health}}}}{{{{.State.Health.Status}}}}{{{{end}}}}' {name}"
                ),
            );
            if state.trim() == "running" || state.trim() == "running healthy" {
                return;
            }
            std::thread::sleep(std::time::Duration::from_secs(1));
        }
    }
}

#[test]
fn check_reports_a_stopped_container() {
    let Some(lab) = Lab::get() else { return };
    let _serial = serial();
    let home = tempfile::tempdir().unwrap();
    let duck = HOSTS.iter().find(|h| h.name == "duckdb-app").unwrap();
    let name = lab
        .ssh_ok(
            duck,
            "docker ps --filter label=com.docker.compose.service=frontend --format '{{.Names}}'",
        )
        .trim()
        .to_string();
    assert!(!name.is_empty());
    lab.ssh_ok(duck, &format!("docker stop -t 1 {name}"));
    let restart = StartAgain(lab, duck, name.clone());
    let needle = format!("container {name} not running");
    let (code, report) = check_until(
        lab,
        home.path(),
        &["duckdb-app"],
        "stopped container",
        |_, r| !problems_of(r, "duckdb-app", &needle).is_empty(),
    );
    assert_eq!(code, 2);
    let p = &problems_of(&report, "duckdb-app", &needle)[0];
    assert_eq!(p["severity"], "critical");
    assert!(p["what"].as_str().unwrap().contains("exited"), "{p:#}");
    // Its last health verdict is not news once it is not running.
    assert!(
        problems_of(&report, "duckdb-app", "unhealthy").is_empty(),
        "{report:#}"
    );
    drop(restart);
    let (_, report) = check_until(
        lab,
        home.path(),
        &["duckdb-app"],
        "container back",
        |_, r| problems_of(r, "duckdb-app", &name).is_empty(),
    );
    assert!(problems_of(&report, "duckdb-app", "not running").is_empty());
}

/// A webhook receiver on 127.0.0.1: every request's headers and body, in order.
fn webhook() -> (u16, std::sync::mpsc::Receiver<(String, String)>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut head = String::new();
            let mut len = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
                head.push_str(&line);
            }
            let mut body = vec![0; len];
            reader.read_exact(&mut body).unwrap();
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            let _ = tx.send((head, String::from_utf8_lossy(&body).into_owned()));
        }
    });
    (port, rx)
}

#[test]
fn check_notifies_once_per_change_of_the_problem_set() {
    let Some(lab) = Lab::get() else { return };
    let _serial = serial();
    let home = tempfile::tempdir().unwrap();
    let (port, received) = webhook();
    let dir = tempfile::tempdir().unwrap();
    // A memory threshold lila always exceeds: a problem that stays the same between runs
    // (its percentage may move; its key does not).
    let write = |threshold: &str| {
        inventory(
            dir.path(),
            lab,
            &LILA,
            &format!(
                "known_hosts = \"{}\"\n{threshold}\n[settings.notify]\nurl = \"http://127.0.0.1:{port}/hook\"\n",
                lab.known_hosts.display()
            ),
        )
    };
    // The helper puts `extra` under [[host]]; a [settings.notify] header after it still
    // names the top-level settings table.
    let config =
        write("thresholds = { mem_warn = 0.1, mem_crit = 100, disk_warn = 100, disk_crit = 100 }");
    let env = [("OPSDECK_CONFIG", Some(config.as_str()))];
    let wait = std::time::Duration::from_secs(5);

    let out = opsdeck(lab, home.path(), &["check"], &env);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (head, body) = received.recv_timeout(wait).expect("first run notifies");
    assert!(head.starts_with("POST /hook HTTP/1.1"), "{head}");
    let sent: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(sent["status"], "warning");
    assert_eq!(sent["problems"][0]["host"], "lila");
    assert!(
        sent["problems"][0]["what"]
            .as_str()
            .unwrap()
            .starts_with("memory ")
    );
    assert!(
        std::fs::read_dir(home.path().join("state/opsdeck"))
            .unwrap()
            .any(|e| e
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("notify-"))
    );

    let out = opsdeck(lab, home.path(), &["check"], &env);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        received
            .recv_timeout(std::time::Duration::from_secs(2))
            .is_err(),
        "an unchanged second run must not notify"
    );

    // The problem clears: one all-clear. (Only a full disk counts: the lab hosts share
    // this machine's disk, which a build can take past the default 85 %.)
    write("thresholds = { disk_warn = 100, disk_crit = 100 }");
    let out = opsdeck(lab, home.path(), &["check"], &env);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let (_, body) = received.recv_timeout(wait).expect("the all-clear is sent");
    let sent: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(sent["status"], "ok");
    assert_eq!(sent["problems"], serde_json::json!([]));
    let out = opsdeck(lab, home.path(), &["check"], &env);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        received
            .recv_timeout(std::time::Duration::from_secs(2))
            .is_err()
    );
}

/// lila's cgroup files are readable, so its containers' usage comes from the sampler and
/// Docker's stats (about a second each, and dear for the engine) are never asked, not
/// even by a first list that beats the first sample.
#[test]
fn status_reads_usage_from_cgroups_and_never_asks_dockers_stats() {
    let Some(lab) = Lab::get() else { return };
    let _serial = serial();
    for _ in 0..3 {
        let home = tempfile::tempdir().unwrap();
        let status = status_json(
            lab,
            home.path(),
            &["lila"],
            &[("OPSDECK_LOG", Some("bollard=debug"))],
        );
        let running: Vec<&Value> = host(&status, "lila")["containers"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["state"] == "running")
            .collect();
        assert!(!running.is_empty(), "{status:#}");
        assert!(
            running.iter().all(|c| c["mem_bytes"].as_u64().is_some()),
            "{status:#}"
        );
        let log = std::fs::read_to_string(home.path().join("state/opsdeck/opsdeck.log")).unwrap();
        assert!(
            log.contains("/containers/json"),
            "no Docker requests logged: {log}"
        );
        let stats: Vec<&str> = log.lines().filter(|l| l.contains("/stats?")).collect();
        assert!(stats.is_empty(), "Docker's stats were asked: {stats:#?}");
    }
}
