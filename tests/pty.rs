//! The real binary in a real pseudo-terminal: what a user sees, and that the terminal is
//! handed back in its normal mode however opsdeck ends.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::io::ErrorKind;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use expectrl::Session;
use expectrl::WaitStatus;

struct Tui {
    session: Session,
    parser: vt100::Parser,
    raw: Vec<u8>,
}

impl Tui {
    /// Starts opsdeck with a clean environment: no inventory anywhere unless given.
    fn start(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Tui {
        // The pty starts with echo off; `stty sane` gives opsdeck the cooked terminal a
        // shell would, so "echo is back on" after exit really means opsdeck restored it.
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg("stty sane; exec \"$0\" \"$@\"")
            .arg(env!("CARGO_BIN_EXE_opsdeck"))
            .args(args)
            .current_dir(dir)
            .env("HOME", dir)
            .env("XDG_CONFIG_HOME", dir.join("config"))
            .env("XDG_STATE_HOME", dir.join("state"))
            .env("TERM", "xterm-256color")
            .env_remove("OPSDECK_CONFIG")
            .env_remove("NO_COLOR");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut session = Session::spawn(cmd).expect("spawn opsdeck in a pty");
        session.get_process_mut().set_window_size(80, 24).unwrap();
        Tui {
            session,
            parser: vt100::Parser::new(24.try_into().unwrap(), 80.try_into().unwrap(), 0),
            raw: Vec::new(),
        }
    }

    /// Reads output until `done(screen)` holds, or fails showing the screen.
    fn wait_for(&mut self, what: &str, done: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let alive = self.pump();
            let screen = self.parser.screen().contents();
            if done(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline && alive,
                "waiting for {what}; screen:\n{screen}"
            );
        }
    }

    /// Reads what is available; false once the pty is closed.
    fn pump(&mut self) -> bool {
        let mut buf = [0u8; 16384];
        match self.session.try_read(&mut buf) {
            Ok(0) => false,
            Ok(n) => {
                self.parser.process(&buf[..n]);
                self.raw.extend_from_slice(&buf[..n]);
                true
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(20));
                true
            }
            Err(_) => false,
        }
    }

    fn send(&mut self, keys: &str) {
        self.session.send(keys).unwrap();
    }

    fn finish(&mut self) -> WaitStatus {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            self.pump();
            match self.session.get_process().status() {
                Ok(WaitStatus::StillAlive) if Instant::now() < deadline => {}
                Ok(status) => {
                    while self.pump() {}
                    return status;
                }
                Err(e) => panic!("waiting for opsdeck to exit: {e}"),
            }
        }
    }

    /// The terminal is back: main screen, cursor shown, echo and line mode on.
    fn assert_restored(&self) {
        let text = String::from_utf8_lossy(&self.raw);
        let entered = text
            .find("\u{1b}[?1049h")
            .expect("opsdeck entered the alternate screen");
        let left = text
            .rfind("\u{1b}[?1049l")
            .expect("opsdeck left the alternate screen");
        assert!(left > entered);
        assert!(
            text[left..].contains("\u{1b}[?25h")
                || text[..left].rfind("\u{1b}[?25h") > text.rfind("\u{1b}[?25l"),
            "cursor shown again"
        );
        assert!(!self.parser.screen().alternate_screen());
        assert!(
            self.session.get_process().get_echo().unwrap(),
            "echo is back on (raw mode left)"
        );
    }
}

#[test]
fn no_config_shows_this_machine_help_and_quits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let mut tui = Tui::start(
        dir.path(),
        &[],
        &[("DOCKER_HOST", "unix:///nonexistent.sock")],
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
    let screen = tui.wait_for("the down host's reason", |s| {
        s.contains("not supported by this build")
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
