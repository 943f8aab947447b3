//! Drives the real binary in a pseudo-terminal and reads its screen with a vt100 parser.

use std::io::ErrorKind;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use expectrl::Session;
use expectrl::WaitStatus;

pub struct Tui {
    pub session: Session,
    pub parser: vt100::Parser,
    pub raw: Vec<u8>,
    /// Inside a synchronized update (`CSI ? 2026 h` seen, its `l` not yet): the screen is
    /// half old frame, half new, and no predicate is asked about it.
    in_frame: bool,
    /// opsdeck runs under a shell that outlives it (see [`Tui::start_then_stty`]).
    wrapped: bool,
}

/// What the shell prints once opsdeck has exited, before `stty -a`.
pub const EXITED: &str = "[opsdeck exited ";

impl Tui {
    /// Starts opsdeck with a clean environment: no inventory anywhere unless given; `env`
    /// sets (`Some`) or removes (`None`) variables.
    pub fn start(dir: &Path, args: &[&str], env: &[(&str, Option<&str>)]) -> Tui {
        Tui::start_sized(dir, args, env, 80, 24)
    }

    /// [`Tui::start`] in a terminal of `cols`×`rows`.
    pub fn start_sized(
        dir: &Path,
        args: &[&str],
        env: &[(&str, Option<&str>)],
        cols: u16,
        rows: u16,
    ) -> Tui {
        // The pty starts with echo off; `stty sane` gives opsdeck the cooked terminal a
        // shell would, so "echo is back on" after exit really means opsdeck restored it.
        Tui::spawn("stty sane; exec \"$0\" \"$@\"", dir, args, env, cols, rows)
    }

    /// [`Tui::start`], under a shell that, once opsdeck has exited, prints [`EXITED`] with
    /// its status and then `stty -a` of the same terminal: what the operator's shell would
    /// find. [`Tui::opsdeck_pid`] is opsdeck's pid (a child of the shell).
    pub fn start_then_stty(dir: &Path, args: &[&str], env: &[(&str, Option<&str>)]) -> Tui {
        let script = format!("stty sane; \"$0\" \"$@\"; echo \"{EXITED}$?]\"; stty -a");
        let mut tui = Tui::spawn(&script, dir, args, env, 80, 24);
        tui.wrapped = true;
        tui
    }

    /// The terminal modes `stty -a` printed after opsdeck exited (see
    /// [`Tui::start_then_stty`]), one word each (`icanon`, `-echo`, ...), and opsdeck's exit
    /// status as the shell saw it.
    pub fn modes_after_exit(&self) -> (String, Vec<String>) {
        let text = String::from_utf8_lossy(&self.raw);
        let at = text
            .rfind(EXITED)
            .unwrap_or_else(|| panic!("the shell says opsdeck exited:\n{text}"));
        let rest = &text[at + EXITED.len()..];
        let (status, stty) = rest.split_once(']').unwrap_or((rest, ""));
        let words = stty
            .split(|c: char| c.is_whitespace() || c == ';')
            .filter(|w| !w.is_empty())
            .map(str::to_string)
            .collect();
        (status.to_string(), words)
    }

    /// The pid to signal: opsdeck's own, also when it runs under a shell.
    pub fn opsdeck_pid(&self) -> u32 {
        let pid = self.session.get_process().pid().as_raw() as u32;
        if !self.wrapped {
            return pid;
        }
        let kids = children(pid);
        assert_eq!(kids.len(), 1, "the shell runs opsdeck and nothing else");
        kids[0]
    }

    fn spawn(
        script: &str,
        dir: &Path,
        args: &[&str],
        env: &[(&str, Option<&str>)],
        cols: u16,
        rows: u16,
    ) -> Tui {
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(script)
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
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        let mut session = Session::spawn(cmd).expect("spawn opsdeck in a pty");
        session
            .get_process_mut()
            .set_window_size(cols, rows)
            .unwrap();
        Tui {
            session,
            parser: vt100::Parser::new(
                rows.max(1).try_into().unwrap(),
                cols.max(1).try_into().unwrap(),
                0,
            ),
            raw: Vec::new(),
            in_frame: false,
            wrapped: false,
        }
    }

    /// Reads output until `done(screen)` holds, or fails showing the screen.
    pub fn wait_for(&mut self, what: &str, done: impl Fn(&str) -> bool) -> String {
        // Generous: under load a first SSH attempt may time out (10 s) before the retry succeeds.
        self.wait_for_within(Duration::from_secs(30), what, done)
    }

    /// [`Tui::wait_for`] with a time limit of its own.
    pub fn wait_for_within(
        &mut self,
        limit: Duration,
        what: &str,
        done: impl Fn(&str) -> bool,
    ) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let alive = self.pump();
            let screen = self.parser.screen().contents();
            if !self.in_frame && done(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline && alive,
                "waiting for {what}; screen:\n{screen}"
            );
        }
    }

    /// How long until `done(screen)` holds, reading as soon as output arrives (every
    /// millisecond, where [`Tui::wait_for`] naps 20 ms): for timing a keystroke's redraw.
    /// Fails showing the screen after `limit`.
    pub fn time_until(
        &mut self,
        limit: Duration,
        what: &str,
        done: impl Fn(&str) -> bool,
    ) -> Duration {
        let start = Instant::now();
        let mut buf = [0u8; 16384];
        loop {
            match self.session.try_read(&mut buf) {
                Ok(n) if n > 0 => {
                    self.take(&buf[..n]);
                    let screen = self.parser.screen().contents();
                    if !self.in_frame && done(&screen) {
                        return start.elapsed();
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(1))
                }
                _ => panic!(
                    "the pty closed waiting for {what}; screen:\n{}",
                    self.parser.screen().contents()
                ),
            }
            assert!(
                start.elapsed() < limit,
                "waiting for {what}; screen:\n{}",
                self.parser.screen().contents()
            );
        }
    }

    /// Feeds output to the screen and notes whether it ends inside a frame.
    fn take(&mut self, bytes: &[u8]) {
        const BEGIN: &[u8] = b"\x1b[?2026h";
        const END: &[u8] = b"\x1b[?2026l";
        self.parser.process(bytes);
        // A sequence may straddle two reads: look again at the last few bytes before.
        let from = self.raw.len().saturating_sub(BEGIN.len() - 1);
        self.raw.extend_from_slice(bytes);
        let tail = &self.raw[from..];
        let last = |needle: &[u8]| tail.windows(needle.len()).rposition(|w| w == needle);
        match (last(BEGIN), last(END)) {
            (Some(b), Some(e)) => self.in_frame = b > e,
            (Some(_), None) => self.in_frame = true,
            (None, Some(_)) => self.in_frame = false,
            (None, None) => {}
        }
    }

    /// The screen as last read.
    pub fn screen(&self) -> String {
        self.parser.screen().contents()
    }

    /// Reads what is available; false once the pty is closed.
    pub fn pump(&mut self) -> bool {
        let mut buf = [0u8; 16384];
        match self.session.try_read(&mut buf) {
            Ok(0) => false,
            Ok(n) => {
                self.take(&buf[..n]);
                true
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(20));
                true
            }
            Err(_) => false,
        }
    }

    /// Keeps reading the screen for `d` (the program keeps drawing meanwhile).
    pub fn pump_for(&mut self, d: Duration) {
        let until = Instant::now() + d;
        while Instant::now() < until && self.pump() {}
    }

    pub fn send(&mut self, keys: &str) {
        self.session.send(keys).unwrap();
    }

    /// `q`, and opsdeck exits 0.
    pub fn quit_ok(&mut self) {
        self.send("q");
        let status = self.finish();
        assert!(
            matches!(status, WaitStatus::Exited(_, 0)),
            "{status:?}\n{}",
            self.parser.screen().contents()
        );
    }

    pub fn finish(&mut self) -> WaitStatus {
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
    pub fn assert_restored(&self) {
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

/// The processes whose parent is `pid`, from `/proc`.
pub fn children(pid: u32) -> Vec<u32> {
    let mut kids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(child) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid ...`; comm may hold spaces and parentheses
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(pid) {
            kids.push(child);
        }
    }
    kids
}

/// Whether process `pid` still runs (a zombie does not).
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X")
    })
}

/// Sends `signal` (`-INT`, `-TERM`, ...) to `target` (a pid, or `-PGID` for a group) with
/// kill(1), as an operator or the system would.
pub fn kill(signal: &str, target: &str) {
    let ok = Command::new("kill")
        .args([signal, "--", target])
        .status()
        .unwrap();
    assert!(ok.success(), "kill {signal} {target}");
}

/// Waits until `done()` holds, polling, or fails saying `what`.
pub fn wait_until(limit: Duration, what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
