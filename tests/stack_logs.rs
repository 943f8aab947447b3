//! A stack's logs together, against the lab: course-supporter's `app` and `db` write
//! marker lines in turn (app through its PID 1's stdout, db through PostgreSQL's own
//! `RAISE LOG`), and `opsdeck logs --stack` and the console must show them in that order,
//! each after its service's name, the same lines with the same timestamps as
//! `docker logs --timestamps` of each container, merged.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;
mod support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::lab::{COURSE_SUPPORTER, Lab};
use support::tui::Tui;

const APP: &str = "course-supporter-app";
const DB: &str = "course-supporter-db";

fn docker(lab: &Lab, args: &[&str]) -> Output {
    let socket = lab.docker_socket(&COURSE_SUPPORTER);
    let out = Command::new("docker")
        .args(args)
        .env("DOCKER_HOST", format!("unix://{}", socket.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A word no other run or test writes.
fn token(what: &str) -> String {
    let mut b = [0u8; 6];
    getrandom::fill(&mut b).unwrap();
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("opsdeck-{what}-{hex}")
}

/// Marker `{token}-{i}` for i in 1..=n, app on odd, db on even, one after the other: each
/// `docker exec` returns once the line is written, so their timestamps ascend.
fn write_markers(lab: &Lab, token: &str, n: usize) {
    for i in 1..=n {
        let mark = format!("{token}-{i}");
        if i % 2 == 1 {
            docker(
                lab,
                &[
                    "exec",
                    APP,
                    "sh",
                    "-c",
                    &format!("echo {mark} > /proc/1/fd/1"),
                ],
            );
        } else {
            let sql = format!("DO $$ BEGIN RAISE LOG '{mark}'; END $$");
            docker(
                lab,
                &[
                    "exec", "-u", "postgres", DB, "psql", "-q", "-d", "postgres", "-c", &sql,
                ],
            );
        }
    }
}

/// Whether `text` is marker `mark`'s own line (PostgreSQL also echoes the statement).
fn is_marker(text: &str, mark: &str) -> bool {
    text == mark || text.ends_with(&format!("LOG:  {mark}"))
}

fn opsdeck(lab: &Lab, home: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_opsdeck"));
    cmd.current_dir(home)
        .env("HOME", home)
        .env("XDG_STATE_HOME", home.join("state"))
        .env_remove("NO_COLOR");
    for (k, v) in &lab.env {
        cmd.env(k, v);
    }
    cmd
}

/// `service | timestamp text`, as `opsdeck logs --stack -t` prints a line.
fn parse(line: &str) -> (String, jiff::Timestamp, String) {
    let (service, rest) = line
        .split_once(" | ")
        .unwrap_or_else(|| panic!("no service column: {line:?}"));
    let (ts, text) = rest.split_once(' ').unwrap_or((rest, ""));
    (
        service.trim_end().to_string(),
        ts.parse()
            .unwrap_or_else(|e| panic!("no timestamp in {line:?}: {e}")),
        text.to_string(),
    )
}

/// Each container's log as `docker logs --timestamps` prints it, as (service, time, text),
/// both merged by time: the oracle.
fn docker_merged(lab: &Lab) -> Vec<(String, jiff::Timestamp, String)> {
    let mut all = Vec::new();
    for (service, container) in [("app", APP), ("db", DB)] {
        let out = docker(lab, &["logs", "--timestamps", "--tail", "2000", container]);
        // The app logs to stdout, PostgreSQL to stderr: together, as opsdeck shows them.
        for stream in [&out.stdout, &out.stderr] {
            for l in String::from_utf8_lossy(stream).lines() {
                let (ts, text) = l.split_once(' ').unwrap_or((l, ""));
                let plain = opsdeck::sanitize::line(text).into_owned();
                all.push((service.to_string(), ts.parse().unwrap(), plain));
            }
        }
    }
    all.sort_by_key(|(_, ts, _)| *ts);
    all
}

#[test]
fn headless_stack_logs_are_in_timestamp_order_like_docker_logs_merged() {
    let Some(lab) = Lab::get() else { return };
    let home = tempfile::tempdir().unwrap();
    let token = token("stack");
    write_markers(lab, &token, 6);
    let out = opsdeck(lab, home.path())
        .args([
            "logs",
            "course-supporter",
            "--stack",
            "course-supporter",
            "--tail",
            "40",
            "-t",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    // Piped: plain text, not one escape.
    assert!(!text.contains('\u{1b}'), "{text}");
    let lines: Vec<_> = text.lines().map(parse).collect();
    assert!(
        lines.iter().all(|(s, ..)| s == "app" || s == "db"),
        "{text}"
    );
    // In timestamp order.
    for w in lines.windows(2) {
        assert!(w[0].1 <= w[1].1, "out of order:\n{w:?}\n{text}");
    }
    // The markers in the order written, alternating services.
    let marks: Vec<(usize, &str)> = (1..=6)
        .map(|i| {
            let mark = format!("{token}-{i}");
            let at = lines
                .iter()
                .position(|(_, _, t)| is_marker(t, &mark))
                .unwrap_or_else(|| panic!("{mark} missing:\n{text}"));
            (at, lines[at].0.as_str())
        })
        .collect();
    assert!(marks.windows(2).all(|w| w[0].0 < w[1].0), "{marks:?}");
    let services: Vec<&str> = marks.iter().map(|m| m.1).collect();
    assert_eq!(services, ["app", "db", "app", "db", "app", "db"]);
    // Every line is docker's, same service, same time, same text; and each service's
    // last 40 lines are all there (those written since may follow them in docker's).
    let oracle = docker_merged(lab);
    for l in &lines {
        assert!(oracle.contains(l), "not in docker logs: {l:?}");
    }
    for service in ["app", "db"] {
        let ours: Vec<_> = lines.iter().filter(|l| l.0 == service).collect();
        let theirs: Vec<_> = oracle.iter().filter(|l| l.0 == service).collect();
        let start = theirs.iter().position(|l| *l == ours[0]).unwrap();
        assert!(
            ours.len() == 40 || (start == 0 && ours.len() < 40),
            "--tail 40 of {service}: {} lines from {start}",
            ours.len()
        );
        assert_eq!(
            ours,
            theirs[start..start + ours.len()],
            "{service}: a gap or a repeat"
        );
    }
    // An unknown stack is an error that says which there are.
    let out = opsdeck(lab, home.path())
        .args(["logs", "course-supporter", "--stack", "nosuch"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no stack \"nosuch\" on this host (there are: course-supporter, nginx)"),
        "{err}"
    );
}

#[test]
fn headless_stack_logs_follow_new_lines_of_both_services_in_order() {
    let Some(lab) = Lab::get() else { return };
    let home = tempfile::tempdir().unwrap();
    let token = token("follow");
    let mut child = opsdeck(lab, home.path())
        .args([
            "logs",
            "course-supporter",
            "--stack",
            "course-supporter",
            "-f",
            "--since",
            "5s",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // Written after it started: the follow shows them as they come.
    let started = Instant::now();
    write_markers(lab, &token, 6);
    let mut seen: Vec<String> = Vec::new();
    let deadline = started + Duration::from_secs(60);
    let last = format!("{token}-6");
    while !seen
        .iter()
        .any(|l| is_marker(l.split_once(" | ").map_or("", |p| p.1), &last))
    {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) => seen.push(l),
            Err(_) => panic!("no {last} within 60 s:\n{}", seen.join("\n")),
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let order: Vec<(usize, String)> = (1..=6)
        .map(|i| {
            let mark = format!("{token}-{i}");
            let at = seen
                .iter()
                .position(|l| {
                    l.split_once(" | ")
                        .is_some_and(|(_, t)| is_marker(t, &mark))
                })
                .unwrap_or_else(|| panic!("{mark} missing:\n{}", seen.join("\n")));
            (at, seen[at].split(" | ").next().unwrap().trim().to_string())
        })
        .collect();
    assert!(order.windows(2).all(|w| w[0].0 < w[1].0), "{order:?}");
    let services: Vec<&str> = order.iter().map(|o| o.1.as_str()).collect();
    assert_eq!(services, ["app", "db", "app", "db", "app", "db"]);
}

#[test]
fn the_console_shows_the_stack_logs_with_service_names_and_filters_them() {
    let Some(lab) = Lab::get() else { return };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hosts.toml");
    let h = COURSE_SUPPORTER;
    std::fs::write(
        &path,
        format!(
            "[[host]]\nname = \"{}\"\naddress = \"{}\"\nuser = \"{}\"\ndocker_socket = \"{}\"\nknown_hosts = \"{}\"\n",
            h.name,
            h.address,
            h.user,
            lab.docker_socket(&h).display(),
            lab.known_hosts.display(),
        ),
    )
    .unwrap();
    let config = path.display().to_string();
    let agent = lab.agent_sock.display().to_string();
    let env = [
        ("OPSDECK_CONFIG", Some(config.as_str())),
        ("SSH_AUTH_SOCK", Some(agent.as_str())),
        ("NO_COLOR", None),
    ];
    let mut tui = Tui::start_sized(dir.path(), &[], &env, 160, 48);
    // One host: the console opens on it; the cursor is on course-supporter's app.
    tui.wait_for("course-supporter's containers", |s| {
        s.contains("▾ course-supporter") && s.contains("  app ")
    });
    tui.send("L");
    tui.wait_for("the stack's logs", |s| {
        s.contains("course-supporter logs") && s.contains("all 2 services")
    });
    let token = token("tui");
    write_markers(lab, &token, 4);
    let rows = |s: &str, mark: &str| -> Option<String> {
        s.lines()
            .find(|l| l.contains(mark) && !l.contains("STATEMENT"))
            .map(str::to_string)
    };
    let screen = tui.wait_for("every marker, each after its service", |s| {
        (1..=4).all(|i| rows(s, &format!("{token}-{i}")).is_some())
    });
    let at = |i: usize| {
        let mark = format!("{token}-{i}");
        let row = rows(&screen, &mark).unwrap();
        let service = if i % 2 == 1 {
            "│app │ "
        } else {
            "│db  │ "
        };
        assert!(row.starts_with(service), "{row:?}\n{screen}");
        screen.find(&row).unwrap()
    };
    assert!(at(1) < at(2) && at(2) < at(3) && at(3) < at(4), "{screen}");
    // Only db, then only app... and all again.
    tui.send("f");
    tui.wait_for("app alone", |s| {
        s.contains("only app") && rows(s, &format!("{token}-2")).is_none()
    });
    tui.send("f");
    tui.wait_for("db alone", |s| {
        s.contains("only db")
            && rows(s, &format!("{token}-4")).is_some()
            && rows(s, &format!("{token}-3")).is_none()
    });
    tui.send("f");
    tui.wait_for("both again", |s| s.contains("all 2 services"));
    tui.send("\u{1b}");
    tui.wait_for("the host view", |s| s.contains("▾ course-supporter"));
    // the same from the project's row: up from its first container, Enter
    tui.send("k");
    tui.wait_for("the project's row selected", |s| {
        s.contains("▾ course-supporter 2/2 running  ⏎ its logs together")
    });
    tui.send("\r");
    tui.wait_for("the stack's logs again", |s| {
        s.contains("course-supporter logs") && s.contains("all 2 services")
    });
    tui.send("\u{1b}");
    tui.wait_for("the host view", |s| s.contains("▾ course-supporter"));
    tui.quit_ok();
}
