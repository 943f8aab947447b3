//! Deploys to several hosts in one go, for real, on the lab: `opsdeck run --hosts` deploys
//! each host in the order given and stops at a host whose deploy fails, and the console's
//! marked hosts (`Space`, then `d`) go the same way.
//!
//! The lab's own stacks are never deployed here (other tests deploy them at the same
//! time): each test gives the hosts a stack of its own, in a directory of its own under
//! the lab user's home with a compose project of its own, whose deploy recipe leaves
//! evidence (a line with a nanosecond timestamp in `deployed.log`; the lab's hosts share
//! this machine's clock) or fails (`false`). What a test leaves on a host (the directory,
//! the lock and image files opsdeck keeps for the project) goes when it ends.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;
mod support;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::lab::{COURSE_SUPPORTER, DUCKDB_APP, LILA, Lab, LabHost, wait_for};
use common::run::{
    TestDir, audit, borrowed, both, hosts_inventory, lab_env, opsdeck, opsdeck_command, text,
};
use serde_json::Value;
use support::tui::Tui;

/// A test-only stack on one lab host: its directory, and on drop the project's files in
/// opsdeck's state directory on the host too (lock, holder, images), so the host is left
/// as it was found.
struct Probe<'a> {
    lab: &'a Lab,
    host: LabHost,
    dir: TestDir<'a>,
    project: String,
}

impl<'a> Probe<'a> {
    fn new(lab: &'a Lab, host: LabHost, name: &str) -> Self {
        Probe {
            lab,
            host,
            dir: TestDir::new(lab, host, name),
            project: format!("opsdeck-test-{name}"),
        }
    }

    /// The stack's inventory text, with these deploy steps (TOML strings).
    fn stack(&self, steps: &[&str]) -> String {
        let steps: Vec<String> = steps.iter().map(|s| format!("{s:?}")).collect();
        format!(
            "[[host.stack]]\nname = \"multi-probe\"\ndir = \"~/{}\"\nproject = \"{}\"\n[host.stack.deploy]\nsteps = [{}]\n",
            self.dir.rel,
            self.project,
            steps.join(", ")
        )
    }

    /// The timestamps the deploys wrote, oldest first (none when it never ran).
    fn deployed(&self) -> Vec<u128> {
        self.dir
            .ssh_ok(&format!(
                "cat {}/deployed.log 2>/dev/null || true",
                self.dir.rel
            ))
            .lines()
            .map(|l| l.trim().parse().unwrap())
            .collect()
    }
}

impl Drop for Probe<'_> {
    fn drop(&mut self) {
        let p = &self.project;
        let _ = self.lab.ssh(
            &self.host,
            &format!(
                "rm -f ~/.local/state/opsdeck/{p}.lock ~/.local/state/opsdeck/{p}.holder \
                 ~/.local/state/opsdeck/{p}.images ~/.local/state/opsdeck/{p}.releases; \
                 rmdir ~/.local/state/opsdeck ~/.local/state ~/.local 2>/dev/null; true"
            ),
        );
    }
}

/// The step that leaves evidence: a timestamp, appended.
const EVIDENCE: &str = "sh -c 'date +%s%N >> deployed.log; echo deployed here'";

fn hosts_of(a: &[Value]) -> Vec<&str> {
    a.iter().map(|r| r["host"].as_str().unwrap()).collect()
}

#[test]
fn hosts_are_deployed_one_at_a_time_in_the_order_given() {
    let Some(lab) = Lab::get() else { return };
    let home = tempfile::tempdir().unwrap();
    let duck = Probe::new(lab, DUCKDB_APP, "multi-order");
    let lila = Probe::new(lab, LILA, "multi-order");
    let config = hosts_inventory(
        home.path(),
        lab,
        &[
            (&LILA, &lila.stack(&[EVIDENCE])),
            (&DUCKDB_APP, &duck.stack(&[EVIDENCE])),
        ],
    );
    // the order of --hosts, not the inventory's
    let out = opsdeck(
        lab,
        home.path(),
        &[
            "-c",
            &config,
            "run",
            "--hosts",
            "duckdb-app,lila",
            "deploy",
            "--yes",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    let (d, l) = (duck.deployed(), lila.deployed());
    assert_eq!((d.len(), l.len()), (1, 1), "{}", both(&out));
    assert!(d[0] < l[0], "duckdb-app deployed after lila: {d:?} {l:?}");
    // the audit log agrees: one record per host, in order, each ok
    let a = audit(home.path());
    assert_eq!(hosts_of(&a), ["duckdb-app", "lila"], "{a:?}");
    assert!(a.iter().all(|r| r["outcome"] == "ok"), "{a:?}");
    // lila's job began after duckdb-app's had ended
    let time = |r: &Value| {
        r["time"]
            .as_str()
            .unwrap()
            .parse::<jiff::Timestamp>()
            .unwrap()
    };
    let duck_end =
        time(&a[0]) + jiff::SignedDuration::from_millis(a[0]["duration_ms"].as_i64().unwrap());
    assert!(time(&a[1]) >= duck_end, "{a:?}");
    // each host's lines carry its name; the summary names both
    let stdout = text(&out.stdout);
    assert!(stdout.contains("duckdb-app | deployed here"), "{stdout}");
    assert!(stdout.contains("lila       | deployed here"), "{stdout}");
    let stderr = text(&out.stderr);
    assert!(stderr.contains("lila       | ==> [3/3] sh -c"), "{stderr}");
    assert!(
        stderr.contains("opsdeck: deploy on 2 hosts: 2 done"),
        "{stderr}"
    );
    let summary = &stderr[stderr.find("2 done").unwrap()..];
    let order: Vec<&str> = summary
        .lines()
        .skip(2)
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(order, ["duckdb-app", "lila"], "{summary}");
}

#[test]
fn the_run_stops_at_the_host_whose_deploy_fails() {
    let Some(lab) = Lab::get() else { return };
    let home = tempfile::tempdir().unwrap();
    let duck = Probe::new(lab, DUCKDB_APP, "multi-stop");
    let lila = Probe::new(lab, LILA, "multi-stop");
    let cs = Probe::new(lab, COURSE_SUPPORTER, "multi-stop");
    let config = hosts_inventory(
        home.path(),
        lab,
        &[
            (&DUCKDB_APP, &duck.stack(&[EVIDENCE])),
            (&LILA, &lila.stack(&["false", EVIDENCE])),
            (&COURSE_SUPPORTER, &cs.stack(&[EVIDENCE])),
        ],
    );
    let out = opsdeck(
        lab,
        home.path(),
        &[
            "-c",
            &config,
            "run",
            "--hosts",
            "duckdb-app,lila,course-supporter",
            "deploy",
            "--yes",
            "--json",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", both(&out));
    assert_eq!(duck.deployed().len(), 1, "{}", both(&out));
    // lila's recipe stopped at `false`; course-supporter was never started
    assert_eq!(lila.deployed().len(), 0);
    assert_eq!(cs.deployed().len(), 0);
    let a = audit(home.path());
    assert_eq!(hosts_of(&a), ["duckdb-app", "lila"], "{a:?}");
    assert!(
        a[1]["outcome"]
            .as_str()
            .unwrap()
            .starts_with("failed: step 3/4 (false): exit status 1"),
        "{a:?}"
    );
    // stdout is the summary alone, as JSON
    let doc: Value = serde_json::from_slice(&out.stdout).expect("stdout is one JSON document");
    assert_eq!(doc["action"], "deploy");
    assert_eq!(doc["exit"], 1);
    let outcomes: Vec<(&str, &str)> = doc["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h["host"].as_str().unwrap(), h["outcome"].as_str().unwrap()))
        .collect();
    assert_eq!(
        outcomes,
        [
            ("duckdb-app", "ok"),
            ("lila", "failed"),
            ("course-supporter", "not started")
        ]
    );
    assert!(doc["hosts"][0]["duration_ms"].as_u64().is_some());
    assert!(doc["hosts"][2]["duration_ms"].is_null());
    // the steps' own stdout went to stderr, still under each host's name
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("duckdb-app       | deployed here"),
        "{stderr}"
    );
    assert!(stderr.contains("course-supporter  not started"), "{stderr}");
}

#[test]
fn nothing_runs_anywhere_when_one_host_is_refused() {
    let Some(lab) = Lab::get() else { return };
    let home = tempfile::tempdir().unwrap();
    let duck = Probe::new(lab, DUCKDB_APP, "multi-refused");
    let lila = Probe::new(lab, LILA, "multi-refused");
    let lila_ro = format!("read_only = true\n{}", lila.stack(&[EVIDENCE]));
    let config = hosts_inventory(
        home.path(),
        lab,
        &[(&DUCKDB_APP, &duck.stack(&[EVIDENCE])), (&LILA, &lila_ro)],
    );
    for (hosts, why) in [
        ("duckdb-app,nowhere", "unknown host \"nowhere\""),
        ("duckdb-app,lila", "the host is read_only in the inventory"),
    ] {
        let out = opsdeck(
            lab,
            home.path(),
            &["-c", &config, "run", "--hosts", hosts, "deploy", "--yes"],
        );
        assert_eq!(out.status.code(), Some(2), "{}", both(&out));
        let stderr = text(&out.stderr);
        assert!(stderr.contains(why), "{stderr}");
        assert!(
            stderr.contains("nothing was done on any of the 2 hosts"),
            "{stderr}"
        );
    }
    // a container's name means nothing on the next host
    let out = opsdeck(
        lab,
        home.path(),
        &[
            "-c",
            &config,
            "run",
            "--hosts",
            "duckdb-app",
            "stop",
            "api",
            "--yes",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    // without --yes and without a terminal to ask on: refused, all of it
    let out = opsdeck(
        lab,
        home.path(),
        &["-c", &config, "run", "--hosts", "duckdb-app", "deploy"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    assert!(text(&out.stderr).contains("pass --yes"), "{}", both(&out));
    assert_eq!(duck.deployed().len(), 0);
    assert!(audit(home.path()).is_empty());
}

#[test]
fn an_interrupt_stops_the_running_host_and_starts_no_other() {
    let Some(lab) = Lab::get() else { return };
    let home = tempfile::tempdir().unwrap();
    let duck = Probe::new(lab, DUCKDB_APP, "multi-int");
    let lila = Probe::new(lab, LILA, "multi-int");
    // a sleep of its own length, to find it on the host
    let secs = 4000 + std::process::id() % 1000;
    let tag = format!("[s]leep {secs}");
    let slow = format!("sh -c 'echo started; sleep {secs}'");
    let config = hosts_inventory(
        home.path(),
        lab,
        &[
            (&DUCKDB_APP, &duck.stack(&[&slow, EVIDENCE])),
            (&LILA, &lila.stack(&[EVIDENCE])),
        ],
    );
    let child = opsdeck_command(
        lab,
        home.path(),
        &[
            "-c",
            &config,
            "run",
            "--hosts",
            "duckdb-app,lila",
            "deploy",
            "--yes",
        ],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let running = wait_for(Duration::from_secs(30), Duration::from_millis(200), || {
        let out = lab.ssh(&DUCKDB_APP, &format!("pgrep -f '{tag}'"));
        out.status.success().then_some(())
    });
    assert!(running.is_some(), "the step never started");
    let ok = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", both(&out));
    let gone = wait_for(Duration::from_secs(10), Duration::from_millis(200), || {
        let out = lab.ssh(&DUCKDB_APP, &format!("pgrep -f '{tag}'"));
        (!out.status.success()).then_some(())
    });
    assert!(gone.is_some(), "the remote step outlived the interrupt");
    assert_eq!(duck.deployed().len(), 0);
    assert_eq!(lila.deployed().len(), 0);
    let a = audit(home.path());
    assert_eq!(hosts_of(&a), ["duckdb-app"], "{a:?}");
    let stderr = text(&out.stderr);
    assert!(stderr.contains("duckdb-app  cancelled"), "{stderr}");
    assert!(stderr.contains("lila        not started"), "{stderr}");
}

/// The console: two hosts marked with Space, `d`, one confirmation, each deployed in
/// turn, progress and the end in the fleet view.
#[test]
fn the_console_deploys_marked_hosts_in_turn() {
    let Some(lab) = Lab::get() else { return };
    let home = tempfile::tempdir().unwrap();
    let duck = Probe::new(lab, DUCKDB_APP, "multi-tui");
    let lila = Probe::new(lab, LILA, "multi-tui");
    let config = hosts_inventory(
        home.path(),
        lab,
        &[
            (&DUCKDB_APP, &duck.stack(&["sleep 1", EVIDENCE])),
            (&LILA, &lila.stack(&[EVIDENCE])),
        ],
    );
    let env = lab_env(lab, &config);
    let mut env = borrowed(&env);
    let home_s = home.path().display().to_string();
    let state = home.path().join("state").display().to_string();
    env.push(("HOME", Some(&home_s)));
    env.push(("XDG_STATE_HOME", Some(&state)));
    env.push(("USER", Some("tester")));
    let mut tui = Tui::start(home.path(), &[], &env);
    tui.wait_for("both hosts up", |s| {
        s.matches("● up").count() == 2 && s.contains("duckdb-app") && s.contains("lila")
    });
    tui.send(" ");
    tui.send("j");
    tui.send(" ");
    tui.wait_for("two marks", |s| s.contains("2 marked"));
    tui.send("d");
    let screen = tui.wait_for("the confirmation", |s| s.contains("one at a time"));
    assert!(
        screen.contains("duckdb-app") && screen.contains("lila"),
        "{screen}"
    );
    tui.send("y");
    let screen = tui.wait_for_within(
        Duration::from_secs(60),
        "the end of the multi-deploy",
        |s| s.contains("2 done") || s.contains("failed"),
    );
    // A host that failed: its job's record says why (steps, exit codes, output).
    assert!(
        !screen.contains("failed"),
        "{screen}\n{:#?}",
        audit(home.path())
    );
    assert!(!screen.contains("not started"), "{screen}");
    tui.quit_ok();
    let (d, l) = (duck.deployed(), lila.deployed());
    assert_eq!((d.len(), l.len()), (1, 1));
    assert!(d[0] < l[0], "{d:?} {l:?}");
    assert_eq!(hosts_of(&audit(home.path())), ["duckdb-app", "lila"]);
}

/// `run --hosts` on a terminal asks once for all the hosts; with a production host among
/// them, its name is what goes on (a `y` does not).
#[test]
fn a_terminal_is_asked_once_for_all_the_hosts() {
    let Some(lab) = Lab::get() else { return };
    let home = tempfile::tempdir().unwrap();
    let duck = Probe::new(lab, DUCKDB_APP, "multi-ask");
    let lila = Probe::new(lab, LILA, "multi-ask");
    let lila_prod = format!("production = true\n{}", lila.stack(&[EVIDENCE]));
    let config = hosts_inventory(
        home.path(),
        lab,
        &[(&DUCKDB_APP, &duck.stack(&[EVIDENCE])), (&LILA, &lila_prod)],
    );
    let env = lab_env(lab, &config);
    let env = borrowed(&env);
    let args = ["run", "--hosts", "duckdb-app,lila", "deploy"];
    // a y is not a production host's name: nothing is done
    let mut tui = Tui::start_sized(home.path(), &args, &env, 120, 40);
    let screen = tui.wait_for("the question", |s| s.contains("Type lila to go on:"));
    assert!(
        screen.contains("1. duckdb-app  deploy of stack multi-probe"),
        "{screen}"
    );
    assert!(screen.contains("PRODUCTION"), "{screen}");
    tui.send("y\r");
    let status = tui.finish();
    assert!(
        matches!(status, expectrl::WaitStatus::Exited(_, 2)),
        "{status:?}\n{}",
        tui.screen()
    );
    assert!(tui.screen().contains("not confirmed"), "{}", tui.screen());
    assert!(duck.deployed().is_empty());
    assert!(audit(home.path()).is_empty());
    // its name: both deploy, one question for both
    let mut tui = Tui::start_sized(home.path(), &args, &env, 120, 40);
    tui.wait_for("the question", |s| s.contains("Type lila to go on:"));
    tui.send("lila\r");
    let screen = tui.wait_for("the summary", |s| s.contains("2 done"));
    assert_eq!(screen.matches("to go on").count(), 1, "{screen}");
    let status = tui.finish();
    assert!(
        matches!(status, expectrl::WaitStatus::Exited(_, 0)),
        "{status:?}\n{}",
        tui.screen()
    );
    assert_eq!((duck.deployed().len(), lila.deployed().len()), (1, 1));
}

/// A host whose stack another job holds stops the run with the single run's 75.
#[test]
fn a_locked_stack_stops_the_run_with_75() {
    let Some(lab) = Lab::get() else { return };
    let home = tempfile::tempdir().unwrap();
    let duck = Probe::new(lab, DUCKDB_APP, "multi-lock");
    let lila = Probe::new(lab, LILA, "multi-lock");
    let secs = 5000 + std::process::id() % 1000;
    let tag = format!("[s]leep {secs}");
    let config = hosts_inventory(
        home.path(),
        lab,
        &[
            (&DUCKDB_APP, &duck.stack(&[EVIDENCE])),
            (&LILA, &lila.stack(&[EVIDENCE])),
        ],
    );
    // another job holds duckdb-app's stack: a custom action of the same stack, sleeping
    let holder_config = home.path().join("holder.toml");
    std::fs::write(
        &holder_config,
        std::fs::read_to_string(&config).unwrap().replacen(
            "[host.stack.deploy]",
            &format!("[[host.stack.action]]\nname = \"hold\"\nsteps = [\"sleep {secs}\"]\n[host.stack.deploy]"),
            1,
        ),
    )
    .unwrap();
    let holder_path = holder_config.display().to_string();
    let mut holder = opsdeck_command(
        lab,
        home.path(),
        &["-c", &holder_path, "run", "duckdb-app", "hold"],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let held = wait_for(Duration::from_secs(30), Duration::from_millis(200), || {
        let out = lab.ssh(&DUCKDB_APP, &format!("pgrep -f '{tag}'"));
        out.status.success().then_some(())
    });
    assert!(held.is_some(), "the holding job never started");
    let out = opsdeck(
        lab,
        home.path(),
        &[
            "-c",
            &config,
            "run",
            "--hosts",
            "duckdb-app,lila",
            "deploy",
            "--yes",
        ],
    );
    let _ = Command::new("kill")
        .args(["-INT", &holder.id().to_string()])
        .status();
    let _ = holder.wait();
    assert_eq!(out.status.code(), Some(75), "{}", both(&out));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("is locked by tester@"), "{stderr}");
    assert!(stderr.contains("duckdb-app  locked"), "{stderr}");
    assert!(stderr.contains("lila        not started"), "{stderr}");
    assert!(duck.deployed().is_empty() && lila.deployed().is_empty());
    let gone = wait_for(Duration::from_secs(10), Duration::from_millis(200), || {
        let out = lab.ssh(&DUCKDB_APP, &format!("pgrep -f '{tag}'"));
        (!out.status.success()).then_some(())
    });
    assert!(gone.is_some(), "the holding step outlived its job");
}
