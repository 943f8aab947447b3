//! `opsdeck exec HOST CONTAINER [-- CMD...]` against the lab: the command runs in the
//! container over the host's SSH connection, its output and exit status come back, piped
//! input reaches it, and read-only refuses it; each run is a line of the audit log.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::io::Write;
use std::process::Stdio;

use common::lab::{LILA, Lab};
use common::run::{audit, both, opsdeck, opsdeck_command, text};

#[test]
fn exec_runs_in_the_container_and_exits_with_its_status() {
    let Some(lab) = Lab::get() else { return };
    let home = tempfile::tempdir().unwrap();
    let config = lab.config.display().to_string();
    let out = opsdeck(
        lab,
        home.path(),
        &[
            "-c",
            &config,
            "exec",
            "lila",
            "api",
            "--",
            "sh",
            "-c",
            "hostname; echo $((6*7)); echo oops >&2; exit 3",
        ],
    );
    assert_eq!(out.status.code(), Some(3), "{}", both(&out));
    let stdout = text(&out.stdout);
    let hostname = lab.hostname_of(&LILA, "lila_api_1");
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        [hostname.as_str(), "42"],
        "{}",
        both(&out)
    );
    // stderr stays stderr without a terminal
    assert!(text(&out.stderr).contains("oops"), "{}", both(&out));
    let records = audit(home.path());
    let last = records.last().unwrap();
    assert_eq!(last["action"], "exec", "{last}");
    assert_eq!(last["container"], "lila_api_1");
    assert_eq!(last["user"], "tester");
    assert_eq!(last["outcome"], "failed: exit 3");
    assert!(last["ended"].is_string(), "{last}");

    // piped input reaches the command, and its end ends it
    let mut child = opsdeck_command(
        lab,
        home.path(),
        &[
            "-c",
            &config,
            "exec",
            "lila",
            "api",
            "--",
            "sh",
            "-c",
            "wc -l; cat",
        ],
    )
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"one\ntwo\nthree\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", both(&out));
    assert_eq!(text(&out.stdout).trim(), "3", "{}", both(&out));
    assert_eq!(audit(home.path()).last().unwrap()["outcome"], "ok");
}

#[test]
fn exec_is_refused_read_only_and_for_a_container_not_there_or_not_running() {
    let Some(lab) = Lab::get() else { return };
    let home = tempfile::tempdir().unwrap();
    let config = lab.config.display().to_string();
    let out = opsdeck(
        lab,
        home.path(),
        &[
            "-c",
            &config,
            "--read-only",
            "exec",
            "lila",
            "api",
            "--",
            "true",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    assert!(
        text(&out.stderr).contains("refused: a shell in a container can change the host"),
        "{}",
        both(&out)
    );
    let out = opsdeck(lab, home.path(), &["-c", &config, "exec", "lila", "nosuch"]);
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    assert!(
        text(&out.stderr).contains("no container \"nosuch\""),
        "{}",
        both(&out)
    );
    let out = opsdeck(lab, home.path(), &["-c", &config, "exec", "nohost", "api"]);
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    assert!(audit(home.path()).is_empty());
}
