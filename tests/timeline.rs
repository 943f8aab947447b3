//! The incident timeline against the lab: a `docker kill`, an OOM kill and a health
//! change on a lab host reach the console's timeline as they happen; they are still there
//! after opsdeck restarts, with what happened while it was closed caught up from the
//! engine; a deploy and a backup are on it; `opsdeck events` prints the same.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;
mod support;

use std::sync::Mutex;
use std::time::Duration;

use common::lab::{LILA, Lab};
use common::run::{TestContainer, both, host_inventory, opsdeck_command, text};
use expectrl::WaitStatus;
use support::tui::Tui;

/// lila's health switch and its deploy: one test at a time.
static LILA_LOCK: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    LILA_LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Switches lila's api back to healthy even when an assertion fails half-way.
struct SwitchOff(&'static Lab);
impl Drop for SwitchOff {
    fn drop(&mut self) {
        self.0.lab(&["unhealthy", "off"]);
    }
}

fn env<'a>(lab: &'a Lab, config: &'a str) -> Vec<(&'a str, Option<&'a str>)> {
    let mut env: Vec<(&str, Option<&str>)> = lab
        .env
        .iter()
        .filter(|(k, _)| k != "OPSDECK_CONFIG")
        .map(|(k, v)| (k.as_str(), Some(v.as_str())))
        .collect();
    env.push(("OPSDECK_CONFIG", Some(config)));
    env
}

/// A timeline row naming `who` and saying `what`.
fn has(screen: &str, who: &str, what: &str) -> bool {
    screen.lines().any(|l| l.contains(who) && l.contains(what))
}

#[test]
fn kill_oom_and_health_reach_the_timeline_live_and_survive_a_restart() {
    let Some(lab) = Lab::get() else { return };
    let _lila = serial();
    let dir = tempfile::tempdir().unwrap();
    let config = host_inventory(dir.path(), lab, &LILA, "");
    let env = env(lab, &config);
    let mut tui = Tui::start_sized(dir.path(), &[], &env, 160, 48);
    tui.wait_for("lila's containers", |s| s.contains("lila 4/4 running"));
    tui.send("t");
    tui.wait_for("lila's timeline", |s| s.contains("What changed on lila"));

    // a docker kill, from outside opsdeck
    let name = "opsdeck-tl-kill";
    let c = TestContainer::run(
        lab,
        LILA,
        name,
        "trap 'exit 3' HUP; while :; do sleep 0.2; done",
    );
    tui.wait_for("its start", |s| has(s, name, "started"));
    let out = c.docker(&["kill", "-s", "HUP", name]);
    assert!(out.status.success(), "{}", both(&out));
    let took = tui.time_until(Duration::from_secs(15), "the kill on the timeline", |s| {
        has(s, name, "sent SIGHUP")
    });
    eprintln!("docker kill on the timeline after {took:?}");
    tui.wait_for("its exit code", |s| has(s, name, "exited with code 3"));

    // out of memory: 32 MiB, and tail(1) buffering a line that never ends
    let oom = "opsdeck-tl-oom";
    let _o = TestContainer::run_with(
        lab,
        LILA,
        oom,
        &["--memory", "32m", "--memory-swap", "32m"],
        &[],
        "tail /dev/zero",
    );
    tui.wait_for("the OOM kill", |s| {
        has(s, oom, "ran out of memory (OOM kill)")
    });

    // lila's api turns unhealthy, and back
    let guard = SwitchOff(lab);
    lab.lab(&["unhealthy", "on"]);
    tui.wait_for_within(Duration::from_secs(60), "the health change", |s| {
        has(s, "lila_api_1", "health: unhealthy")
    });
    drop(guard);
    tui.wait_for_within(Duration::from_secs(60), "healthy again", |s| {
        has(s, "lila_api_1", "health: healthy")
    });
    tui.send("q");
    assert!(matches!(tui.finish(), WaitStatus::Exited(_, 0)));
    drop(c);

    // while opsdeck is closed: another kill
    let closed = "opsdeck-tl-closed";
    let c = TestContainer::run(lab, LILA, closed, "while :; do sleep 0.2; done");
    let out = c.docker(&["kill", closed]);
    assert!(out.status.success(), "{}", both(&out));
    drop(c);

    // opsdeck again: what it saw is still there, what it missed is caught up
    let mut tui = Tui::start_sized(dir.path(), &[], &env, 160, 48);
    tui.wait_for("lila's containers", |s| s.contains("lila 4/4 running"));
    tui.send("t");
    let screen = tui.wait_for("the kill made while closed, caught up", |s| {
        has(s, closed, "sent SIGKILL") && has(s, closed, "exited with code 137")
    });
    for (who, what) in [
        (name, "sent SIGHUP"),
        (name, "exited with code 3"),
        (oom, "ran out of memory"),
        ("lila_api_1", "health: unhealthy"),
    ] {
        assert!(has(&screen, who, what), "{who} {what}:\n{screen}");
    }
    // the filter narrows to one container; Enter opens its log at that moment
    tui.send("/tl-oom\r");
    tui.wait_for("the filter", |s| {
        has(s, oom, "ran out of memory") && !has(s, name, "SIGHUP")
    });
    tui.send("\r");
    tui.wait_for("the OOM-killed container's log, paused there", |s| {
        s.contains("fleet › lila › opsdeck-tl-oom") && s.contains("Killed") && s.contains("PAUSED")
    });
    // a container that is gone has no log to open
    tui.send("t");
    tui.wait_for("lila's timeline", |s| s.contains("What changed on lila"));
    tui.send("/tl-closed\r");
    tui.wait_for("the filter", |s| {
        has(s, closed, "SIGKILL") && !has(s, oom, "memory")
    });
    tui.send("\r");
    tui.wait_for("a word on the log", |s| s.contains("its log went with it"));
    tui.send("q");
    assert!(matches!(tui.finish(), WaitStatus::Exited(_, 0)));

    // the headless command reads the same store, the same way
    let out = opsdeck_command(
        lab,
        dir.path(),
        &["-c", &config, "events", "lila", "--since", "1h"],
    )
    .env("XDG_STATE_HOME", dir.path().join("state"))
    .output()
    .unwrap();
    assert!(out.status.success(), "{}", both(&out));
    let printed = text(&out.stdout);
    let lines: Vec<&str> = printed.lines().collect();
    let at = |who: &str, what: &str| {
        lines
            .iter()
            .position(|l| l.contains(who) && l.contains(what))
            .unwrap_or_else(|| panic!("{who} {what} in\n{printed}"))
    };
    // newest first
    assert!(
        at(closed, "sent SIGKILL") < at(name, "sent SIGHUP"),
        "{printed}"
    );
    assert!(at(name, "sent SIGHUP") < at(name, "started"), "{printed}");
}

#[test]
fn a_deploy_and_a_backup_are_on_the_timeline_and_events_json_says_so() {
    let Some(lab) = Lab::get() else { return };
    let _lila = serial();
    let home = tempfile::tempdir().unwrap();
    let config = lab.config.display().to_string();
    for action in ["backup", "deploy"] {
        let out = opsdeck_command(
            lab,
            home.path(),
            &["-c", &config, "run", "lila", action, "--yes"],
        )
        .output()
        .unwrap();
        assert!(out.status.success(), "{action}: {}", both(&out));
    }
    let out = opsdeck_command(
        lab,
        home.path(),
        &["-c", &config, "events", "lila", "--since", "10m", "--json"],
    )
    .output()
    .unwrap();
    assert!(out.status.success(), "{}", both(&out));
    let events: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let events = events.as_array().unwrap();
    let find = |kind: &str| {
        events
            .iter()
            .find(|e| e["kind"] == kind)
            .unwrap_or_else(|| panic!("no {kind} in {events:#?}"))
    };
    let backup = find("backup");
    assert_eq!(backup["host"], "lila");
    assert_eq!(backup["grade"], "good");
    assert!(
        backup["text"].as_str().unwrap().contains("by tester: ok"),
        "{backup}"
    );
    let deploy = find("job");
    assert!(
        deploy["text"]
            .as_str()
            .unwrap()
            .starts_with("deploy by tester: ok"),
        "{deploy}"
    );
    assert!(deploy["time"].as_str().unwrap().ends_with('Z'), "{deploy}");
    // newest first: the deploy came after the backup
    let pos = |e: &serde_json::Value| events.iter().position(|x| x == e).unwrap();
    assert!(pos(deploy) < pos(backup));
    // an unknown host is a usage error
    let out = opsdeck_command(lab, home.path(), &["-c", &config, "events", "nohost"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
}
