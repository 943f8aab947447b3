//! The real binary in a real pseudo-terminal: what a user sees, and that the terminal is
//! handed back in its normal mode however opsdeck ends.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod support;

use std::io::BufRead;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use expectrl::WaitStatus;
use support::tui::{Tui, alive, kill, wait_until};

#[test]
fn no_config_shows_this_machine_help_and_quits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let mut tui = Tui::start(
        dir.path(),
        &[],
        &[("DOCKER_HOST", Some("unix:///nonexistent.sock"))],
    );
    let started = Instant::now();
    // Live data: the per-core line appears only once the first sample has arrived.
    let screen = tui.wait_for("this machine's metrics", |s| {
        s.contains("local") && s.contains("cores")
    });
    eprintln!("first live sample on screen after {:?}", started.elapsed());
    assert!(screen.contains("fleet › local"));
    assert!(screen.contains("CPU"));
    assert!(screen.contains("MEM"));
    assert!(
        !tui.session.get_process().get_echo().unwrap(),
        "raw mode while running"
    );

    tui.send("?");
    let screen = tui.wait_for("the help overlay", |s| s.contains("Help: host view"));
    // what this view does comes first; the rest is a scroll away at 80x24
    assert!(
        screen.contains("deploy the selected container's stack"),
        "{screen}"
    );
    tui.send("G");
    let screen = tui.wait_for("the end of help", |s| s.contains("quit, from anywhere"));
    assert!(screen.contains("command palette"), "{screen}");
    tui.send("\u{1b}");
    tui.wait_for("help to close", |s| !s.contains("Help: host view"));

    tui.send("q");
    let status = tui.finish();
    assert!(matches!(status, WaitStatus::Exited(_, 0)), "{status:?}");
    tui.assert_restored();
}

#[test]
fn sigterm_and_sighup_restore_the_terminal() {
    for signal in ["-TERM", "-HUP"] {
        let dir = tempfile::tempdir().unwrap();
        let mut tui = Tui::start(dir.path(), &[], &[]);
        tui.wait_for("the console", |s| s.contains("local"));
        let pid = tui.session.get_process().pid();
        let ok = Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
        let status = tui.finish();
        assert!(
            matches!(status, WaitStatus::Exited(_, 0)),
            "{signal}: {status:?}"
        );
        tui.assert_restored();
    }
}

#[test]
fn resizing_redraws_at_the_new_size() {
    let dir = tempfile::tempdir().unwrap();
    let mut tui = Tui::start(dir.path(), &[], &[]);
    tui.wait_for("the console", |s| s.contains("cores"));
    tui.session
        .get_process_mut()
        .set_window_size(120, 40)
        .unwrap();
    tui.parser
        .screen_mut()
        .set_size(40.try_into().unwrap(), 120.try_into().unwrap());
    // The status line now ends near column 120, and the footer is on row 40.
    tui.wait_for("a redraw at 120x40", |s| {
        s.lines()
            .next()
            .is_some_and(|l| l.trim_end().len() > 100 && l.contains("hosts up"))
            && s.lines().nth(39).is_some_and(|l| l.contains("quit"))
    });
    tui.send("q");
    assert!(matches!(tui.finish(), WaitStatus::Exited(_, 0)));
}

#[test]
fn fleet_from_inventory_shows_every_host_and_why_one_is_down() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("hosts.toml"),
        "[[host]]\nname = \"here\"\naddress = \"local\"\n\n[[host]]\nname = \"far\"\naddress = \"far.example.invalid\"\n",
    )
    .unwrap();
    let mut tui = Tui::start(dir.path(), &["--theme", "16color"], &[]);
    let screen = tui.wait_for("the fleet", |s| {
        s.contains("Hosts (2)") && s.contains("● up")
    });
    assert!(screen.contains("here"));
    assert!(screen.contains("far"));
    tui.send("j");
    // `.invalid` never resolves: the row says why the host is down, the other stays live.
    let screen = tui.wait_for("the down host's reason", |s| {
        s.contains("cannot connect to far.example.invalid:22")
    });
    assert!(screen.contains("✖ down"));
    tui.send("\u{3}");
    let status = tui.finish();
    assert!(matches!(status, WaitStatus::Exited(_, 0)), "{status:?}");
    tui.assert_restored();
}

#[test]
fn broken_inventory_exits_2_before_touching_the_terminal() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("hosts.toml"),
        "[[host]]\nname = \"a\"\nadress = \"x\"\n",
    )
    .unwrap();
    let mut tui = Tui::start(dir.path(), &[], &[]);
    let status = tui.finish();
    assert!(matches!(status, WaitStatus::Exited(_, 2)), "{status:?}");
    let text = String::from_utf8_lossy(&tui.raw);
    assert!(
        text.contains("hosts.toml:3:1: unknown field `adress`"),
        "{text}"
    );
    assert!(
        !text.contains("\u{1b}[?1049h"),
        "the alternate screen was never entered"
    );
}

/// A host with one stack in a temp dir: a harmless action that runs at once, a dangerous
/// one that asks, and a slow one to cancel.
fn job_inventory(dir: &std::path::Path) {
    std::fs::create_dir_all(dir.join("app")).unwrap();
    std::fs::write(
        dir.join("hosts.toml"),
        "[[host]]\nname = \"here\"\naddress = \"local\"\n\n[[host.stack]]\nname = \"app\"\ndir = \"~/app\"\n\n\
         [[host.stack.action]]\nname = \"hello\"\nkey = \"H\"\nsteps = [\"sh -c 'echo hello from the job; echo a warning >&2'\"]\n\n\
         [[host.stack.action]]\nname = \"wipe\"\nkey = \"W\"\nsteps = [\"touch wiped\"]\ndangerous = true\n\n\
         [[host.stack.action]]\nname = \"slow\"\nkey = \"U\"\nsteps = [\"sleep 300\", \"touch after\"]\ndangerous = true\n",
    )
    .unwrap();
}

#[test]
fn confirm_dialog_cancel_and_accept_then_the_job_pane_and_cancel() {
    let dir = tempfile::tempdir().unwrap();
    job_inventory(dir.path());
    let mut tui = Tui::start(
        dir.path(),
        &[],
        &[("DOCKER_HOST", Some("unix:///nonexistent.sock"))],
    );
    tui.wait_for("the host view", |s| {
        s.contains("fleet › here") && s.contains("cores")
    });
    // ? lists the host's custom actions with their keys
    tui.send("?");
    tui.send("G");
    tui.wait_for("custom actions in help", |s| {
        s.contains("custom actions of this host") && s.contains("wipe (app)")
    });
    tui.send("\u{1b}");
    // (an Esc followed at once by a letter would read as Alt+letter)
    tui.wait_for("help to close", |s| !s.contains("Help: host view"));

    // a harmless action runs at once and its output streams into the job pane
    tui.send("H");
    let screen = tui.wait_for("the hello job done", |s| {
        s.contains("hello on here") && s.contains("· done") && s.contains("hello from the job")
    });
    assert!(
        screen.contains("E a warning"),
        "stderr is marked:\n{screen}"
    );
    assert!(screen.contains("1/1 steps"), "{screen}");
    tui.send("\u{1b}");
    tui.wait_for("the host view", |s| s.contains("cores"));

    // a dangerous one asks: n cancels and nothing runs
    tui.send("W");
    tui.wait_for("the confirm dialog", |s| {
        s.contains("Run wipe (app) on here?") && s.contains("touch wiped")
    });
    tui.send("n");
    tui.wait_for("the dialog to close", |s| {
        !s.contains("Run wipe (app) on here")
    });
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(!dir.path().join("app/wiped").exists());
    // y runs it
    tui.send("W");
    tui.wait_for("the confirm dialog", |s| {
        s.contains("Run wipe (app) on here")
    });
    tui.send("y");
    tui.wait_for("the wipe job done", |s| {
        s.contains("wipe on here") && s.contains("· done")
    });
    assert!(dir.path().join("app/wiped").exists());
    tui.send("\u{1b}");
    tui.wait_for("the host view", |s| s.contains("cores"));

    // a slow one: its pane shows step 1/2 running; x asks, y stops it on the host
    tui.send("U");
    tui.wait_for("the confirm dialog", |s| {
        s.contains("Run slow (app) on here")
    });
    tui.send("y");
    tui.wait_for("the running step", |s| {
        s.contains("step 1/2") && s.contains("running")
    });
    tui.send("q");
    tui.wait_for("quit to ask while a job runs", |s| {
        s.contains("Jobs are running") && s.contains("slow on here")
    });
    tui.send("n");
    tui.send("x");
    tui.wait_for("the cancel dialog", |s| s.contains("Stop slow on here?"));
    tui.send("y");
    let screen = tui.wait_for("the job cancelled", |s| s.contains("CANCELLED"));
    assert!(screen.contains("cancelled by the operator"), "{screen}");
    assert!(!dir.path().join("app/after").exists());

    // J lists them, newest first, and the audit log has them all
    tui.send("J");
    tui.wait_for("the jobs list", |s| {
        s.contains("Jobs (3)") && s.contains("cancelled")
    });
    tui.send("q");
    assert!(matches!(tui.finish(), WaitStatus::Exited(_, 0)));
    tui.assert_restored();
    let audit = std::fs::read_to_string(dir.path().join("state/opsdeck/audit.jsonl")).unwrap();
    let actions: Vec<String> = audit
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["action"].to_string())
        .collect();
    assert_eq!(actions, ["\"hello\"", "\"wipe\"", "\"slow\""]);
}

#[test]
fn read_only_turns_the_action_keys_off_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    job_inventory(dir.path());
    let mut tui = Tui::start(
        dir.path(),
        &["--read-only"],
        &[("DOCKER_HOST", Some("unix:///nonexistent.sock"))],
    );
    let screen = tui.wait_for("the host view", |s| s.contains("cores"));
    assert!(screen.contains("READ-ONLY"), "{screen}");
    tui.send("W");
    tui.wait_for("the refusal", |s| {
        s.contains("read-only: actions that change hosts are turned off")
    });
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(!dir.path().join("app/wiped").exists());
    tui.send("q");
    assert!(matches!(tui.finish(), WaitStatus::Exited(_, 0)));
}

/// In raw mode Ctrl-C is a key, so a SIGINT (or SIGQUIT) comes from outside: it quits like
/// SIGTERM does, and the shell opsdeck returns to finds its terminal as it left it.
#[test]
fn sigint_and_sigquit_from_outside_leave_the_terminal_cooked() {
    for signal in ["-INT", "-QUIT"] {
        let dir = tempfile::tempdir().unwrap();
        let mut tui = Tui::start_then_stty(
            dir.path(),
            &[],
            &[("DOCKER_HOST", Some("unix:///nonexistent.sock"))],
        );
        tui.wait_for("the first frame", |s| s.contains("fleet › local"));
        assert!(
            !tui.session.get_process().get_echo().unwrap(),
            "raw mode while running"
        );
        kill(signal, &tui.opsdeck_pid().to_string());
        let status = tui.finish();
        assert!(
            matches!(status, WaitStatus::Exited(_, 0)),
            "{signal}: {status:?}"
        );
        let (exit, modes) = tui.modes_after_exit();
        assert_eq!(exit, "0", "{signal}: opsdeck's exit status");
        for mode in ["icanon", "echo", "isig", "iexten", "icrnl", "opost"] {
            assert!(
                modes.iter().any(|m| m == mode),
                "{signal}: stty -a should say {mode}, it says: {}",
                modes.join(" ")
            );
        }
        tui.assert_restored();
    }
}

/// Every state file's mode: the audit log keeps the steps' output.
fn assert_private(state: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(
        mode(&state.join("opsdeck/audit.jsonl")),
        0o600,
        "audit.jsonl"
    );
    assert_eq!(
        mode(&state.join("opsdeck/opsdeck.log")),
        0o600,
        "opsdeck.log"
    );
    assert_eq!(mode(&state.join("opsdeck")), 0o700, "the state directory");
}

/// The audit log's lines for `action`.
fn audit_of(dir: &Path, action: &str) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("state/opsdeck/audit.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["action"] == action)
        .collect()
}

/// Quitting with a job running, by `q` or by a signal: the job is cancelled the way `x`
/// cancels it (its step stopped, the next one never run) and has its audit line, with
/// why, before opsdeck exits.
#[test]
fn quitting_with_a_job_running_cancels_and_records_it() {
    for (how, why) in [
        ("q", "cancelled: opsdeck quit"),
        ("-TERM", "cancelled: SIGTERM"),
        ("-INT", "cancelled: SIGINT"),
        // a hang-up reaches the terminal's whole foreground process group
        ("-HUP group", "cancelled: SIGHUP"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        slow_inventory(dir.path());
        let mut tui = Tui::start(
            dir.path(),
            &[],
            &[("DOCKER_HOST", Some("unix:///nonexistent.sock"))],
        );
        tui.wait_for("the host view", |s| {
            s.contains("fleet › here") && s.contains("cores")
        });
        tui.send("U");
        tui.wait_for("the confirm dialog", |s| {
            s.contains("Run slow (app) on here")
        });
        tui.send("y");
        tui.wait_for("the running step", |s| {
            s.contains("step 1/2") && s.contains("running")
        });
        let step = step_pid(dir.path());
        let pid = tui.opsdeck_pid();
        match how {
            "q" => {
                tui.send("q");
                tui.wait_for("quit to ask while a job runs", |s| {
                    s.contains("Jobs are running")
                });
                tui.send("y");
            }
            "-HUP group" => kill("-HUP", &format!("-{pid}")),
            signal => kill(signal, &pid.to_string()),
        }
        let status = tui.finish();
        assert!(
            matches!(status, WaitStatus::Exited(_, 0)),
            "{how}: {status:?}"
        );
        tui.assert_restored();
        let lines = audit_of(dir.path(), "slow");
        assert_eq!(
            lines.len(),
            1,
            "{how}: one audit line for the job: {lines:?}"
        );
        let outcome = lines[0]["outcome"].as_str().unwrap();
        assert!(outcome.starts_with(why), "{how}: {outcome}");
        assert!(
            !outcome.contains("opsdeck left"),
            "{how}: the step stopped in time: {outcome}"
        );
        assert_eq!(lines[0]["steps"][0]["outcome"], "cancelled", "{how}");
        assert_eq!(lines[0]["steps"][1]["outcome"], "skipped", "{how}");
        assert!(!dir.path().join("app/after").exists(), "{how}");
        assert!(
            !alive(step),
            "{how}: the step was stopped before opsdeck left"
        );
        assert_private(&dir.path().join("state"));
    }
}

/// A local host whose stack has a slow action (key `S`) whose first step writes its pid to
/// `app/step.pid` and sleeps, and one that cannot end when stopped (key `Z`): its step
/// leaves a process in a session of its own holding its output open (pid in
/// `app/held.pid`), so opsdeck never sees it end.
fn slow_inventory(dir: &Path) {
    std::fs::create_dir_all(dir.join("app")).unwrap();
    std::fs::write(
        dir.join("hosts.toml"),
        "[[host]]\nname = \"here\"\naddress = \"local\"\n\n[[host.stack]]\nname = \"app\"\ndir = \"~/app\"\n\n\
         [[host.stack.action]]\nname = \"slow\"\nkey = \"U\"\nsteps = [\"sh -c 'echo $$ > step.pid; exec sleep 300'\", \"touch after\"]\ndangerous = true\n\n\
         [[host.stack.action]]\nname = \"stuck\"\nkey = \"Z\"\nsteps = [\"sh -c 'setsid sleep 60 & echo $! > held.pid; exec sleep 300'\"]\ndangerous = true\n",
    )
    .unwrap();
}

/// The pid of the slow step of [`slow_inventory`], once it runs.
fn step_pid(dir: &Path) -> u32 {
    let file = dir.join("app/step.pid");
    let read = || {
        std::fs::read_to_string(&file)
            .ok()
            .and_then(|t| t.trim().parse::<u32>().ok())
    };
    wait_until(Duration::from_secs(30), "the step's pid", || {
        read().is_some()
    });
    let pid = read().unwrap();
    assert!(alive(pid), "the step runs");
    pid
}

/// `opsdeck run` on this machine, its step writing its pid, with `state` and `home` in
/// `dir`; stderr piped and its lines sent back as they come.
fn run_slow(dir: &Path) -> (std::process::Child, std::sync::mpsc::Receiver<String>) {
    run_action(dir, "slow")
}

/// `opsdeck run` of one of [`slow_inventory`]'s actions, as [`run_slow`].
fn run_action(
    dir: &Path,
    action: &str,
) -> (std::process::Child, std::sync::mpsc::Receiver<String>) {
    use std::os::unix::process::CommandExt;
    slow_inventory(dir);
    let mut child = Command::new(env!("CARGO_BIN_EXE_opsdeck"))
        .args(["run", "here", action, "--yes"])
        .current_dir(dir)
        .env("HOME", dir)
        .env("XDG_CONFIG_HOME", dir.join("config"))
        .env("XDG_STATE_HOME", dir.join("state"))
        .env("DOCKER_HOST", "unix:///nonexistent.sock")
        .env_remove("OPSDECK_CONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        // the foreground process group of a terminal of its own, as from a shell
        .process_group(0)
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    (child, rx)
}

/// The operator's SSH session drops mid-step: the hang-up reaches the whole foreground
/// process group. `opsdeck run` cancels the job as the first Ctrl-C does (the step is
/// stopped on the host, here this machine), records it, and exits 130.
#[test]
fn a_hang_up_cancels_opsdeck_run_and_records_it() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, lines) = run_slow(dir.path());
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !seen.iter().any(|l: &String| l.starts_with("==> [1/2]")) {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(l) => seen.push(l),
            Err(e) => panic!("waiting for the first step ({e}): {seen:?}"),
        }
    }
    let step = step_pid(dir.path());

    kill("-HUP", &format!("-{}", child.id()));
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "opsdeck run to exit: {seen:?}");
        std::thread::sleep(Duration::from_millis(20));
    };
    seen.extend(lines.try_iter());
    assert_eq!(status.code(), Some(130), "{status:?}: {seen:?}");
    assert!(
        seen.iter().any(|l| l.contains("SIGHUP: stopping the job")),
        "{seen:?}"
    );
    // the step was stopped on the host, not left running on its own
    wait_until(Duration::from_secs(10), "the step to be stopped", || {
        !alive(step)
    });
    let lines = audit_of(dir.path(), "slow");
    assert_eq!(lines.len(), 1, "{lines:?}");
    let outcome = lines[0]["outcome"].as_str().unwrap();
    assert!(
        outcome.starts_with("cancelled: interrupted (SIGHUP)"),
        "{outcome}"
    );
    assert_eq!(lines[0]["steps"][0]["outcome"], "cancelled");
    assert!(!dir.path().join("app/after").exists());
    assert_private(&dir.path().join("state"));
}

/// A job that does not end when stopped: the first SIGINT asks the host to stop it, the
/// second leaves at once (exit 130), and the job still has its audit record, saying
/// opsdeck left before the host confirmed the stop.
#[test]
fn a_second_interrupt_leaves_opsdeck_run_at_once_with_the_record_written() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, lines) = run_action(dir.path(), "stuck");
    let held = dir.path().join("app/held.pid");
    wait_until(Duration::from_secs(30), "the stuck step", || held.exists());
    let pid = child.id().to_string();
    let mut seen = Vec::new();
    kill("-INT", &pid);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !seen
        .iter()
        .any(|l: &String| l.contains("SIGINT: stopping the job"))
    {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(l) => seen.push(l),
            Err(e) => panic!("waiting for the first interrupt's answer ({e}): {seen:?}"),
        }
    }
    assert!(
        child.try_wait().unwrap().is_none(),
        "the step cannot end: {seen:?}"
    );
    kill("-INT", &pid);
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "opsdeck run to leave: {seen:?}");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(130), "{status:?}: {seen:?}");
    let lines = audit_of(dir.path(), "stuck");
    assert_eq!(lines.len(), 1, "{lines:?}");
    let outcome = lines[0]["outcome"].as_str().unwrap();
    assert!(
        outcome.starts_with("cancelled: interrupted (SIGINT)")
            && outcome.contains("opsdeck left before the host confirmed"),
        "{outcome}"
    );
    if let Some(held) = std::fs::read_to_string(&held)
        .ok()
        .and_then(|t| t.trim().parse::<u32>().ok())
    {
        kill("-KILL", &held.to_string());
    }
}

/// A job that does not end when stopped does not hold opsdeck for ever: `Ctrl-C` while
/// quitting waits for it leaves at once, and the job still has its audit line, saying that
/// opsdeck left before the host confirmed the stop.
#[test]
fn ctrl_c_while_quitting_leaves_and_the_job_still_has_its_line() {
    let dir = tempfile::tempdir().unwrap();
    slow_inventory(dir.path());
    let mut tui = Tui::start(
        dir.path(),
        &[],
        &[("DOCKER_HOST", Some("unix:///nonexistent.sock"))],
    );
    tui.wait_for("the host view", |s| {
        s.contains("fleet › here") && s.contains("cores")
    });
    tui.send("Z");
    tui.wait_for("the confirm dialog", |s| {
        s.contains("Run stuck (app) on here")
    });
    tui.send("y");
    let held_file = dir.path().join("app/held.pid");
    let held = || {
        std::fs::read_to_string(&held_file)
            .ok()
            .and_then(|t| t.trim().parse::<u32>().ok())
    };
    wait_until(Duration::from_secs(30), "the step to run", || {
        held().is_some()
    });
    tui.send("q");
    tui.wait_for("quit to ask while a job runs", |s| {
        s.contains("Jobs are running")
    });
    tui.send("y");
    tui.send("\u{3}");
    let status = tui.finish();
    kill("-KILL", &held().unwrap().to_string());
    assert!(matches!(status, WaitStatus::Exited(_, 0)), "{status:?}");
    tui.assert_restored();
    let log = std::fs::read_to_string(dir.path().join("state/opsdeck/opsdeck.log")).unwrap();
    assert!(log.contains("Ctrl-C while stopping jobs"), "{log}");
    let lines = audit_of(dir.path(), "stuck");
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(
        lines[0]["outcome"],
        "cancelled: opsdeck quit (opsdeck left before the host confirmed the step stopped)"
    );
    assert_eq!(lines[0]["steps"][0]["outcome"], "cancelled");
}

/// `S` on this machine: `$SHELL` runs on the terminal itself, cooked (it echoes what is
/// typed), and the console takes the terminal back, raw again, redrawn, with the record.
#[test]
fn s_on_this_machine_runs_the_shell_on_the_terminal_and_takes_it_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut tui = Tui::start(
        dir.path(),
        &[],
        &[
            ("DOCKER_HOST", Some("unix:///nonexistent.sock")),
            ("SHELL", Some("/bin/sh")),
            ("PS1", Some("local-shell$ ")),
        ],
    );
    tui.wait_for("this machine's metrics", |s| {
        s.contains("fleet › local") && s.contains("cores")
    });
    tui.send("S");
    tui.wait_for("the shell's prompt", |s| {
        s.contains("opsdeck: shell on local") && s.contains("local-shell$")
    });
    assert!(
        tui.session.get_process().get_echo().unwrap(),
        "the terminal is the shell's, cooked"
    );
    tui.send("echo $((6*7))\r");
    tui.wait_for("the shell's answer", |s| {
        s.lines().any(|l| l.trim() == "42")
    });
    tui.send("exit 4\r");
    tui.wait_for("the console again, and how the shell ended", |s| {
        s.contains("fleet › local")
            && s.contains("cores")
            && s.contains("shell on local ended: exit 4")
    });
    assert!(!tui.session.get_process().get_echo().unwrap(), "raw again");
    tui.quit_ok();
    tui.assert_restored();
    let audit = std::fs::read_to_string(dir.path().join("state/opsdeck/audit.jsonl")).unwrap();
    let record: serde_json::Value = serde_json::from_str(audit.lines().last().unwrap()).unwrap();
    assert_eq!(record["action"], "shell", "{record}");
    assert_eq!(record["host"], "local");
    assert!(
        record["outcome"]
            .as_str()
            .unwrap()
            .starts_with("failed: exit 4"),
        "{record}"
    );
}
