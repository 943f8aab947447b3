//! The real binary in a real pseudo-terminal: what a user sees, and that the terminal is
//! handed back in its normal mode however opsdeck ends.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod support;

use std::process::Command;
use std::time::Instant;

use expectrl::WaitStatus;
use support::tui::Tui;

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
         [[host.stack.action]]\nname = \"slow\"\nkey = \"S\"\nsteps = [\"sleep 300\", \"touch after\"]\ndangerous = true\n",
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
    tui.send("S");
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
