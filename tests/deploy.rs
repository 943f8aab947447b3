//! `opsdeck run` deploying, migrating, rolling back and restarting the lab's stacks for
//! real: course-supporter picks up a commit pushed to its origin and migrates, lila runs
//! the image pushed to the lab registry and rolls back to the old one, the DuckDB app is
//! rebuilt. Plus the safety rails: a failing step, the lock, read-only, quoting, cancel.
//!
//! Tests that change the same lab host hold its lock here (`serial`), since cargo runs
//! a binary's tests in parallel.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use common::lab::{COURSE_SUPPORTER, DUCKDB_APP, LILA, Lab, LabHost, wait_for};
use common::run::{
    TestContainer, TestDir, audit, both, host_inventory as inventory, opsdeck, opsdeck_command,
    text,
};
use serde_json::Value;

static CS: Mutex<()> = Mutex::new(());
static LILA_LOCK: Mutex<()> = Mutex::new(());
static DUCK: Mutex<()> = Mutex::new(());

fn serial(m: &'static Mutex<()>) -> std::sync::MutexGuard<'static, ()> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn started_at(lab: &Lab, h: &LabHost, container: &str) -> String {
    lab.docker(h, &["inspect", "-f", "{{.State.StartedAt}}", container])
}

#[test]
fn course_supporter_deploy_pulls_builds_and_migrates_the_schema() {
    let Some(lab) = Lab::get() else { return };
    let _g = serial(&CS);
    let home = tempfile::tempdir().unwrap();
    let table = format!(
        "deploy_{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis()
    );
    lab.lab(&["cs-commit", &table]);
    let origin = lab.ssh_ok(
        &COURSE_SUPPORTER,
        "cd ~/course-supporter && git ls-remote origin main | cut -f1",
    );
    assert_eq!(
        lab.cs_sql(&format!("select to_regclass('public.{table}') is null")),
        "t"
    );
    let config = lab.config.display().to_string();
    let out = opsdeck(
        lab,
        home.path(),
        &["-c", &config, "run", "course-supporter", "deploy", "--yes"],
    );
    assert!(out.status.success(), "{}", both(&out));
    // the checkout is at origin's commit, the new migration ran, the app is healthy
    let head = lab.ssh_ok(
        &COURSE_SUPPORTER,
        "cd ~/course-supporter && git rev-parse HEAD",
    );
    assert_eq!(head.trim(), origin.trim());
    assert_eq!(
        lab.cs_sql(&format!("select to_regclass('public.{table}') is not null")),
        "t",
        "{}",
        both(&out)
    );
    assert_eq!(
        lab.cs_sql("select count(*) from information_schema.columns where table_name = 'courses' and column_name = 'published'"
        ),
        "1"
    );
    // every step streamed, with its header, in order
    let stderr = text(&out.stderr);
    let order = [
        "[1/7] pre-flight",
        "behind origin/main: ",
        "[2/7] record the image IDs in use",
        "[3/7] git pull --ff-only",
        "[4/7] compose build",
        "[5/7] compose up -d",
        "[6/7] compose exec -T app alembic upgrade head",
        "[7/7] wait healthy",
    ];
    let mut at = 0;
    for o in order {
        let found = stderr[at..]
            .find(o)
            .unwrap_or_else(|| panic!("{o} in {stderr}"));
        at += found;
    }
    assert!(
        both(&out).contains(&format!("create table {table}")),
        "{}",
        both(&out)
    );
    let a = audit(home.path());
    assert_eq!(a.len(), 1);
    assert_eq!(a[0]["action"], "deploy");
    assert_eq!(a[0]["outcome"], "ok");
    let exits: Vec<Value> = a[0]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["exit"].clone())
        .collect();
    assert_eq!(
        exits,
        [
            Value::Null,
            Value::Null,
            Value::from(0),
            Value::from(0),
            Value::from(0),
            Value::from(0),
            Value::Null
        ]
    );
    // migrate again: nothing to do, and it says so
    let out = opsdeck(
        lab,
        home.path(),
        &["-c", &config, "run", "course-supporter", "migrate", "--yes"],
    );
    assert!(out.status.success(), "{}", both(&out));
    assert!(
        text(&out.stderr).contains("Context impl PostgresqlImpl"),
        "{}",
        both(&out)
    );
}

#[test]
fn lila_deploys_the_pushed_image_and_rolls_back_to_the_old_one() {
    let Some(lab) = Lab::get() else { return };
    let _g = serial(&LILA_LOCK);
    let home = tempfile::tempdir().unwrap();
    let image = "127.0.0.1:5000/lila/api:latest";
    let old = lab.image_of(&LILA, "lila_api_1");
    // A new release: the same app with a label of its own, pushed to the lab registry.
    let ctx = tempfile::tempdir().unwrap();
    let stamp = format!("{:?}", std::time::Instant::now());
    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!("FROM {image}\nLABEL opsdeck.test.release=\"{stamp}\"\n"),
    )
    .unwrap();
    lab.docker(
        &LILA,
        &["build", "-q", "-t", image, ctx.path().to_str().unwrap()],
    );
    lab.docker(&LILA, &["push", image]);
    let new = lab.docker(&LILA, &["image", "inspect", "-f", "{{.Id}}", image]);
    assert_ne!(new, old);
    // Put the old image back as "latest" locally, so only `compose pull` brings the new one.
    lab.docker(&LILA, &["tag", &old, image]);
    let config = lab.config.display().to_string();
    let out = opsdeck(
        lab,
        home.path(),
        &["-c", &config, "run", "lila", "deploy", "--yes"],
    );
    assert!(out.status.success(), "{}", both(&out));
    assert_eq!(lab.image_of(&LILA, "lila_api_1"), new, "{}", both(&out));
    assert!(
        text(&out.stderr).contains("healthy: 4 containers"),
        "{}",
        both(&out)
    );

    let out = opsdeck(
        lab,
        home.path(),
        &["-c", &config, "run", "lila", "rollback", "--yes"],
    );
    assert!(out.status.success(), "{}", both(&out));
    assert_eq!(lab.image_of(&LILA, "lila_api_1"), old, "{}", both(&out));
    let a = audit(home.path());
    assert_eq!(
        a.iter()
            .map(|r| r["action"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["deploy", "rollback"]
    );
    // leave the registry as the lab made it
    lab.docker(&LILA, &["push", image]);
}

#[test]
fn the_duckdb_app_is_rebuilt_by_its_deploy() {
    let Some(lab) = Lab::get() else { return };
    let _g = serial(&DUCK);
    let home = tempfile::tempdir().unwrap();
    let before = lab.image_of(&DUCKDB_APP, "app_backend_1");
    let marker = "app/backend/opsdeck-test-build.txt";
    lab.ssh_ok(&DUCKDB_APP, &format!("date +%s%N > {marker}"));
    let config = lab.config.display().to_string();
    let out = opsdeck(
        lab,
        home.path(),
        &["-c", &config, "run", "duckdb-app", "deploy", "--yes"],
    );
    lab.ssh_ok(&DUCKDB_APP, &format!("rm -f {marker}"));
    assert!(out.status.success(), "{}", both(&out));
    let after = lab.image_of(&DUCKDB_APP, "app_backend_1");
    assert_ne!(before, after, "the backend was not rebuilt: {}", both(&out));
    assert!(both(&out).contains("Successfully built"), "{}", both(&out));
    assert!(
        text(&out.stderr).contains("healthy: 3 containers"),
        "{}",
        both(&out)
    );
}

#[test]
fn a_failing_step_stops_the_deploy_with_an_audit_entry() {
    let Some(lab) = Lab::get() else { return };
    let home = tempfile::tempdir().unwrap();
    let dir = TestDir::new(lab, LILA, "fail");
    let config = inventory(
        home.path(),
        lab,
        &LILA,
        &format!(
            "[[host.stack]]\nname = \"fail\"\ndir = \"~/{}\"\nproject = \"opsdeck-test-fail\"\n[host.stack.deploy]\nsteps = [\"sh -c 'echo one > one.txt'\", \"sh -c 'echo broken >&2; exit 3'\", \"touch never\"]\n",
            dir.rel
        ),
    );
    let out = opsdeck(
        lab,
        home.path(),
        &["-c", &config, "run", "lila", "deploy", "--yes"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", both(&out));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("broken"), "{stderr}");
    assert!(
        stderr.contains("failed: step 4/5 (sh -c 'echo broken >&2; exit 3'): exit status 3"),
        "{stderr}"
    );
    let files = lab.ssh_ok(&LILA, &format!("ls {}", dir.rel));
    assert_eq!(files.trim(), "one.txt");
    let a = audit(home.path());
    assert_eq!(a.len(), 1);
    let steps: Vec<(Value, &str)> = a[0]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["exit"].clone(), s["outcome"].as_str().unwrap()))
        .collect();
    assert_eq!(
        steps,
        [
            (Value::Null, "ok"),
            (Value::Null, "ok"),
            (Value::from(0), "ok"),
            (Value::from(3), "failed"),
            (Value::Null, "skipped")
        ]
    );
    assert!(
        a[0]["outcome"]
            .as_str()
            .unwrap()
            .starts_with("failed: step 4/5")
    );
}

#[test]
fn restart_changes_the_start_time_and_custom_actions_run_by_name() {
    let Some(lab) = Lab::get() else { return };
    let _g = serial(&LILA_LOCK);
    let home = tempfile::tempdir().unwrap();
    let config = lab.config.display().to_string();
    let before = started_at(lab, &LILA, "lila_web_1");
    let out = opsdeck(
        lab,
        home.path(),
        &["-c", &config, "run", "lila", "restart", "web", "--yes"],
    );
    assert!(out.status.success(), "{}", both(&out));
    assert_ne!(started_at(lab, &LILA, "lila_web_1"), before);
    assert!(
        text(&out.stderr).contains("lila_web_1 restarted"),
        "{}",
        both(&out)
    );
    // the dangerous custom action needs --yes like the rest, then runs its compose step
    let caddy = started_at(lab, &LILA, "lila_caddy_1");
    let out = opsdeck(
        lab,
        home.path(),
        &["-c", &config, "run", "lila", "restart caddy"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    assert_eq!(started_at(lab, &LILA, "lila_caddy_1"), caddy);
    let out = opsdeck(
        lab,
        home.path(),
        &["-c", &config, "run", "lila", "restart-caddy", "--yes"],
    );
    assert!(out.status.success(), "{}", both(&out));
    assert_ne!(started_at(lab, &LILA, "lila_caddy_1"), caddy);
    // without a container: every container of the stack, one after the other
    let before: Vec<String> = [
        "lila_api_1",
        "lila_caddy_1",
        "lila_database_1",
        "lila_web_1",
    ]
    .iter()
    .map(|c| started_at(lab, &LILA, c))
    .collect();
    let out = opsdeck(
        lab,
        home.path(),
        &["-c", &config, "run", "lila", "restart", "--yes"],
    );
    assert!(out.status.success(), "{}", both(&out));
    for (c, was) in [
        "lila_api_1",
        "lila_caddy_1",
        "lila_database_1",
        "lila_web_1",
    ]
    .iter()
    .zip(&before)
    {
        assert_ne!(&started_at(lab, &LILA, c), was, "{c} was not restarted");
    }
    let a = audit(home.path());
    assert_eq!(a[0]["action"], "restart lila_web_1");
    assert_eq!(a[1]["action"], "restart caddy");
    assert_eq!(a[2]["action"], "restart stack");
    // the api is healthy again before anything else runs on lila
    let healthy = wait_for(Duration::from_secs(60), Duration::from_millis(500), || {
        (lab.docker(
            &LILA,
            &["inspect", "-f", "{{.State.Health.Status}}", "lila_api_1"],
        ) == "healthy")
            .then_some(())
    });
    assert!(healthy.is_some(), "lila's api did not come back healthy");
}

#[test]
fn two_concurrent_deploys_of_one_stack_exactly_one_runs() {
    let Some(lab) = Lab::get() else { return };
    let home = tempfile::tempdir().unwrap();
    let dir = TestDir::new(lab, DUCKDB_APP, "lock");
    let config = inventory(
        home.path(),
        lab,
        &DUCKDB_APP,
        &format!(
            "[[host.stack]]\nname = \"lock\"\ndir = \"~/{}\"\nproject = \"opsdeck-test-lock\"\n[host.stack.deploy]\nsteps = [\"sleep 3\", \"sh -c 'echo ran >> ran.log'\"]\n",
            dir.rel
        ),
    );
    let spawn = || {
        opsdeck_command(
            lab,
            home.path(),
            &["-c", &config, "run", "duckdb-app", "deploy", "--yes"],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    let codes = [a.status.code(), b.status.code()];
    assert!(
        codes.contains(&Some(0)) && codes.contains(&Some(75)),
        "{codes:?}\n{}\n{}",
        both(&a),
        both(&b)
    );
    let refused = if a.status.code() == Some(75) { &a } else { &b };
    let msg = text(&refused.stderr);
    assert!(
        msg.contains("lock on duckdb-app is locked by tester@"),
        "{msg}"
    );
    assert!(msg.contains(" since 20"), "{msg}");
    assert_eq!(
        lab.ssh_ok(&DUCKDB_APP, &format!("cat {}/ran.log", dir.rel)),
        "ran\n"
    );
    // the refusal is in the audit log too, as such
    let a = audit(home.path());
    assert_eq!(a.len(), 2);
    assert!(
        a.iter()
            .any(|r| r["outcome"].as_str().unwrap().starts_with("refused: "))
    );
}

#[test]
fn read_only_refuses_every_action_and_nothing_reaches_the_host() {
    let Some(lab) = Lab::get() else { return };
    let home = tempfile::tempdir().unwrap();
    let config = lab.config.display().to_string();
    let actions: [&[&str]; 7] = [
        &["deploy"],
        &["migrate"],
        &["rollback"],
        &["restart"],
        &["restart", "web"],
        &["backup"],
        &["restart caddy"],
    ];
    for host in ["lila", "course-supporter"] {
        for action in actions {
            if host == "lila" && action == ["migrate"] {
                continue; // lila has no migrate recipe: that refusal is not read-only's
            }
            if host == "course-supporter" && action.contains(&"restart caddy") {
                continue;
            }
            let mut args = vec!["-c", config.as_str(), "--read-only", "run", host];
            args.extend_from_slice(action);
            args.push("--yes");
            if host == "course-supporter" && action == ["backup"] {
                args.insert(args.len() - 1, "db");
            }
            if host == "course-supporter" && action.first() == Some(&"restart") {
                args.extend_from_slice(&["--stack", "course-supporter"]);
            }
            let out = opsdeck(lab, home.path(), &args);
            assert_eq!(out.status.code(), Some(2), "{args:?}: {}", both(&out));
            assert!(
                text(&out.stderr).contains("--read-only is set"),
                "{args:?}: {}",
                both(&out)
            );
        }
    }
    // the inventory's setting, too
    let ro = home.path().join("ro.toml");
    let text_ro = std::fs::read_to_string(&lab.config)
        .unwrap()
        .replace("read_only = false", "read_only = true");
    std::fs::write(&ro, text_ro).unwrap();
    let out = opsdeck(
        lab,
        home.path(),
        &["-c", ro.to_str().unwrap(), "run", "lila", "deploy", "--yes"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    assert!(text(&out.stderr).contains("settings say read_only"));
    assert!(
        audit(home.path()).is_empty(),
        "nothing ran, nothing audited"
    );
}

#[test]
fn a_dir_with_shell_syntax_is_quoted_not_executed() {
    let Some(lab) = Lab::get() else { return };
    let home = tempfile::tempdir().unwrap();
    let marker = format!("/tmp/opsdeck-pwned-{}", std::process::id());
    let _ = std::fs::remove_file(&marker);
    let config = inventory(
        home.path(),
        lab,
        &LILA,
        &format!(
            "[[host.stack]]\nname = \"evil\"\ndir = \"x; touch {marker}\"\n[[host.stack.action]]\nname = \"hello\"\nsteps = [\"echo $(touch {marker}) `touch {marker}`\"]\n"
        ),
    );
    let out = opsdeck(lab, home.path(), &["-c", &config, "run", "lila", "hello"]);
    assert_eq!(out.status.code(), Some(1), "{}", both(&out));
    assert!(
        text(&out.stderr).contains(&format!(
            "cannot enter the stack directory x; touch {marker}"
        )),
        "{}",
        both(&out)
    );
    assert!(
        !Path::new(&marker).exists(),
        "the config value ran as shell"
    );
}

#[test]
fn interrupting_a_job_stops_its_step_on_the_host() {
    let Some(lab) = Lab::get() else { return };
    let home = tempfile::tempdir().unwrap();
    let dir = TestDir::new(lab, COURSE_SUPPORTER, "cancel");
    // a sleep of its own length, to find it on the host (`[s]` keeps pgrep from finding
    // the shell that runs pgrep)
    let secs = 3000 + std::process::id() % 1000;
    let tag = format!("[s]leep {secs}");
    let config = inventory(
        home.path(),
        lab,
        &COURSE_SUPPORTER,
        &format!(
            "[[host.stack]]\nname = \"slow\"\ndir = \"~/{}\"\nproject = \"opsdeck-test-cancel\"\n[[host.stack.action]]\nname = \"wait\"\nsteps = [\"sh -c 'echo started; sleep {secs}'\", \"touch after\"]\n",
            dir.rel
        ),
    );
    let child = opsdeck_command(
        lab,
        home.path(),
        &["-c", &config, "run", "course-supporter", "wait"],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let running = wait_for(Duration::from_secs(20), Duration::from_millis(200), || {
        let out = lab.ssh(&COURSE_SUPPORTER, &format!("pgrep -f '{tag}'"));
        out.status.success().then_some(())
    });
    assert!(running.is_some(), "the step never started");
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", both(&out));
    let gone = wait_for(Duration::from_secs(10), Duration::from_millis(200), || {
        let out = lab.ssh(&COURSE_SUPPORTER, &format!("pgrep -f '{tag}'"));
        (!out.status.success()).then_some(())
    });
    assert!(gone.is_some(), "the remote step outlived the cancel");
    let files = lab.ssh_ok(&COURSE_SUPPORTER, &format!("ls {}", dir.rel));
    assert!(!files.contains("after"), "{files}");
    let a = audit(home.path());
    assert!(
        a[0]["outcome"]
            .as_str()
            .unwrap()
            .starts_with("cancelled: interrupted (SIGINT)"),
        "{a:?}"
    );
}

/// `State.Status` and `State.ExitCode` of a lab container, or `None` when it is gone.
fn state_of(lab: &Lab, h: &LabHost, container: &str) -> Option<(String, i64)> {
    let out = Command::new("docker")
        .arg("-H")
        .arg(format!("unix://{}", lab.docker_socket(h).display()))
        .args([
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.ExitCode}}",
            container,
        ])
        .output()
        .unwrap();
    if !out.status.success() {
        return None;
    }
    let line = text(&out.stdout);
    let (status, code) = line.trim().split_once(' ')?;
    Some((status.to_string(), code.parse().ok()?))
}

#[test]
fn stop_start_kill_pause_unpause_and_rm_do_what_docker_says_refused_when_read_only() {
    let Some(lab) = Lab::get() else { return };
    let _lila = serial(&LILA_LOCK);
    let home = tempfile::tempdir().unwrap();
    let config = lab.config.display().to_string();
    // HUP and TERM each end it with a code of their own: PID 1 has no default actions.
    let name = "opsdeck-life";
    let _c = TestContainer::run(
        lab,
        LILA,
        name,
        "trap 'exit 7' HUP; trap 'exit 0' TERM; while :; do sleep 0.2; done",
    );
    let state = || state_of(lab, &LILA, name);
    let run = |args: &[&str]| {
        let mut all = vec!["-c", config.as_str(), "run", "lila"];
        all.extend_from_slice(args);
        all.push("--yes");
        opsdeck(lab, home.path(), &all)
    };
    let until = |what: &str, want: &dyn Fn(Option<(String, i64)>) -> bool| {
        let seen = wait_for(Duration::from_secs(15), Duration::from_millis(100), || {
            want(state()).then_some(())
        });
        assert!(seen.is_some(), "{what}: docker inspect says {:?}", state());
    };
    until("running", &|s| s.is_some_and(|(st, _)| st == "running"));

    // read-only: each is refused before anything reaches the host
    for op in ["stop", "start", "kill", "pause", "unpause", "rm"] {
        let out = opsdeck(
            lab,
            home.path(),
            &[
                "-c",
                &config,
                "--read-only",
                "run",
                "lila",
                op,
                name,
                "--yes",
            ],
        );
        assert_eq!(out.status.code(), Some(2), "{op}: {}", both(&out));
        assert!(
            text(&out.stderr).contains("--read-only is set"),
            "{op}: {}",
            both(&out)
        );
        assert_eq!(state().map(|s| s.0).as_deref(), Some("running"), "{op}");
    }
    // --signal is kill's alone, and a signal it does not offer is refused
    let out = run(&["stop", name, "--signal", "HUP"]);
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    let out = run(&["kill", name, "--signal", "SEGV"]);
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    assert!(
        text(&out.stderr).contains("unknown signal"),
        "{}",
        both(&out)
    );

    let out = run(&["pause", name]);
    assert!(out.status.success(), "{}", both(&out));
    assert_eq!(state().unwrap().0, "paused");
    let out = run(&["unpause", name]);
    assert!(out.status.success(), "{}", both(&out));
    assert_eq!(state().unwrap().0, "running");
    let out = run(&["kill", name, "--signal", "hup"]);
    assert!(out.status.success(), "{}", both(&out));
    assert!(text(&out.stderr).contains("SIGHUP sent"), "{}", both(&out));
    until("exited by its HUP trap", &|s| {
        s == Some(("exited".into(), 7))
    });
    let out = run(&["start", name]);
    assert!(out.status.success(), "{}", both(&out));
    until("running again", &|s| {
        s.is_some_and(|(st, _)| st == "running")
    });
    // a running container is not removed: Docker's refusal, said, and nothing lost
    let out = run(&["rm", name]);
    assert_eq!(out.status.code(), Some(1), "{}", both(&out));
    assert!(
        text(&out.stderr).contains("cannot rm opsdeck-life"),
        "{}",
        both(&out)
    );
    assert_eq!(state().unwrap().0, "running");
    let out = run(&["stop", name]);
    assert!(out.status.success(), "{}", both(&out));
    until("stopped by TERM", &|s| s == Some(("exited".into(), 0)));
    let out = run(&["rm", name]);
    assert!(out.status.success(), "{}", both(&out));
    assert_eq!(state(), None, "removed");

    // every one audited, the failure as such
    let a = audit(home.path());
    let got: Vec<(String, String)> = a
        .iter()
        .map(|r| {
            let outcome = r["outcome"].as_str().unwrap();
            let outcome = outcome.split(':').next().unwrap();
            (
                r["action"].as_str().unwrap().to_string(),
                outcome.to_string(),
            )
        })
        .collect();
    let want: Vec<(String, String)> = [
        ("pause", "ok"),
        ("unpause", "ok"),
        ("kill -s HUP", "ok"),
        ("start", "ok"),
        ("rm", "failed"),
        ("stop", "ok"),
        ("rm", "ok"),
    ]
    .iter()
    .map(|(a, o)| (format!("{a} {name}"), o.to_string()))
    .collect();
    assert_eq!(got, want);
}
