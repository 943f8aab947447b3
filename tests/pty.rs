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
    assert!(screen.contains("command palette"));
    assert!(screen.contains("quit, from anywhere"));
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
