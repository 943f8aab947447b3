//! A shell on a host or in one of its containers, on the operator's own terminal: `e` and
//! `S` in the console, `opsdeck exec` headless. Over SSH it is one more channel of the
//! host's connection, with a PTY whose size follows the terminal (`docker exec -it` runs
//! on the host for a container); on this machine the program runs on the terminal
//! itself. What the remote side prints goes to the terminal as it is: the operator asked
//! for that host's shell, as with `ssh`.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use russh::ChannelMsg;
use russh::client::Msg as ClientMsg;
use tokio::sync::mpsc;

/// What to open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShellRequest {
    /// The container's id; `None` for the host's own login shell.
    pub container: Option<String>,
    /// What to run; empty for an interactive shell (bash where there is one, else sh).
    pub command: Vec<String>,
    /// A terminal for it; `None` runs it on plain pipes (`opsdeck exec` in a script).
    pub tty: Option<Tty>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tty {
    pub cols: u16,
    pub rows: u16,
    /// `$TERM` as the remote side should see it.
    pub term: String,
}

impl Tty {
    /// The operator's terminal: its size, and `$TERM` when it is a plain name.
    pub fn here() -> Tty {
        let (cols, rows) = crossterm::terminal::size().unwrap_or((80, 24));
        Tty {
            cols,
            rows,
            term: term_name(std::env::var("TERM").ok().as_deref()),
        }
    }
}

/// `$TERM` when it is a plain terminal name, else `xterm-256color`: it is handed to the
/// host's shell, and a name with spaces or quotes is not one.
pub fn term_name(term: Option<&str>) -> String {
    match term {
        Some(t)
            if !t.is_empty()
                && t.len() <= 64
                && t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._+-".contains(&b)) =>
        {
            t.to_string()
        }
        _ => "xterm-256color".into(),
    }
}

/// Run in a container for an interactive shell: bash where the image has it, else sh.
pub const SHELL_FALLBACK: &str =
    "if command -v bash >/dev/null 2>&1; then exec bash; else exec sh; fi";

/// The words the host runs for `req`: `docker exec` for a container (`DOCKER_HOST` from
/// the inventory's `docker_socket`), the command itself on the host; empty for the host's
/// login shell.
pub fn argv(req: &ShellRequest, docker_host: Option<&str>) -> Vec<String> {
    let Some(id) = &req.container else {
        return req.command.clone();
    };
    let mut words: Vec<String> = Vec::new();
    if let Some(host) = crate::jobs::script::docker_host_env(docker_host) {
        words.push("env".into());
        words.push(format!("DOCKER_HOST={host}"));
    }
    words.extend(["docker".into(), "exec".into(), "-i".into()]);
    if let Some(tty) = &req.tty {
        words.push("-t".into());
        words.push("-e".into());
        words.push(format!("TERM={}", tty.term));
    }
    words.push(id.clone());
    if req.command.is_empty() {
        words.extend(["sh".into(), "-c".into(), SHELL_FALLBACK.into()]);
    } else {
        words.extend(req.command.iter().cloned());
    }
    words
}

/// The shell's way to the terminal, as the worker hands it over.
pub enum ShellIo {
    /// A channel of the host's SSH connection, its command started; what it printed
    /// before the hand-over.
    Ssh {
        channel: russh::Channel<ClientMsg>,
        early: Vec<u8>,
    },
    /// A program on this machine, run on the terminal itself.
    Local { argv: Vec<String> },
}

impl std::fmt::Debug for ShellIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ShellIo::Ssh { .. } => f.write_str("ShellIo::Ssh"),
            ShellIo::Local { argv } => write!(f, "ShellIo::Local({argv:?})"),
        }
    }
}

impl ShellIo {
    /// Whether the program runs on the terminal itself (which must then be in the mode
    /// a program expects, not raw).
    pub fn is_local(&self) -> bool {
        matches!(self, ShellIo::Local { .. })
    }
}

/// How long the host gets to grant the PTY and start the command.
const OPEN_WITHIN: Duration = Duration::from_secs(15);
/// What a channel may print before the hand-over, at most (a banner, a prompt).
const EARLY_MAX: usize = 64 << 10;

/// Starts `req` on a new session channel: a PTY when asked, then the command (or the
/// login shell); returns once the host has granted both.
pub async fn start(
    channel: russh::Channel<ClientMsg>,
    req: &ShellRequest,
    docker_host: Option<&str>,
) -> Result<ShellIo, String> {
    let words = argv(req, docker_host);
    let line = if words.is_empty() {
        None
    } else {
        Some(
            shlex::try_join(words.iter().map(String::as_str)).map_err(|_| {
                "the command cannot be passed to the host's shell (it has a NUL byte)".to_string()
            })?,
        )
    };
    let mut channel = channel;
    let mut asked = 0;
    if let Some(tty) = &req.tty {
        channel
            .request_pty(
                true,
                &tty.term,
                u32::from(tty.cols),
                u32::from(tty.rows),
                0,
                0,
                &[],
            )
            .await
            .map_err(|e| format!("cannot ask the host for a terminal: {e}"))?;
        asked += 1;
    }
    match &line {
        Some(line) => channel.exec(true, line.as_bytes()).await,
        None => channel.request_shell(true).await,
    }
    .map_err(|e| format!("cannot start the shell: {e}"))?;
    asked += 1;
    let mut early = Vec::new();
    let granted = tokio::time::timeout(OPEN_WITHIN, async {
        let mut granted = 0;
        while granted < asked {
            match channel.wait().await {
                Some(ChannelMsg::Success) => granted += 1,
                Some(ChannelMsg::Failure) => {
                    return Err(if granted == 0 && req.tty.is_some() {
                        "the host refused a terminal (PTY) for the shell".to_string()
                    } else {
                        "the host refused to start the shell".to_string()
                    });
                }
                Some(ChannelMsg::Data { data } | ChannelMsg::ExtendedData { data, .. }) => {
                    if early.len() + data.len() <= EARLY_MAX {
                        early.extend_from_slice(&data);
                    }
                }
                Some(ChannelMsg::Close | ChannelMsg::Eof) | None => {
                    return Err("the host closed the shell's channel".to_string());
                }
                Some(_) => {}
            }
        }
        Ok(())
    })
    .await;
    match granted {
        Ok(Ok(())) => Ok(ShellIo::Ssh { channel, early }),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(format!(
            "the host did not start the shell within {}s",
            OPEN_WITHIN.as_secs()
        )),
    }
}

/// How a shell ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ended {
    /// The command's exit status, when it had one.
    pub status: Option<u32>,
    /// The signal that ended it, by name.
    pub signal: Option<String>,
    /// The connection went before the command ended.
    pub lost: bool,
    /// The last bytes it printed (for a shell that ended at once: why).
    pub tail: Vec<u8>,
}

impl Ended {
    /// The exit status a command line reports for it: the command's, 128 + n for a
    /// signal, 255 for a lost connection (as `ssh` does).
    pub fn code(&self) -> u8 {
        match (self.status, &self.signal) {
            (Some(s), _) => u8::try_from(s).unwrap_or(255),
            (None, Some(sig)) => 128 + signal_number(sig),
            (None, None) => 255,
        }
    }

    /// One line on how it went: `exit 0`, `killed by TERM`, `the connection was lost`;
    /// with `why`, a failure says its last line of output too (`exit 127: <line>`): what a
    /// shell that ended at once, before anyone could read it, had to say.
    pub fn describe(&self, why: bool) -> String {
        if self.lost && self.status.is_none() {
            return "the connection was lost".into();
        }
        let mut text = match (self.status, &self.signal) {
            (Some(s), _) => format!("exit {s}"),
            (None, Some(sig)) => format!("killed by {sig}"),
            (None, None) => "ended without a status".into(),
        };
        if why && self.status != Some(0) {
            let tail = String::from_utf8_lossy(&self.tail);
            let last = tail
                .split(['\r', '\n'])
                .map(|l| crate::model::logs::strip_ansi(l).trim().to_string())
                .rfind(|l| !l.is_empty());
            if let Some(last) = last {
                text.push_str(": ");
                text.push_str(&crate::sanitize::line(&last));
            }
        }
        text
    }
}

/// Completes a shell's audit record (made with its start, who, host, stack, action,
/// container and summary) from how it ended: when, after how long, and its outcome
/// (`ok`, `failed: exit 3`, `cancelled: SIGTERM` when opsdeck was signalled). With `why`,
/// a failure that came at once names the shell's last line.
pub fn finish_record(
    record: &mut crate::model::JobRecord,
    ended: &Ended,
    took: Duration,
    interrupted: Option<&str>,
    why: bool,
) {
    record.ended = Some(jiff::Timestamp::now().to_string());
    record.duration_ms = u64::try_from(took.as_millis()).unwrap_or(u64::MAX);
    record.outcome = match (ended.status, interrupted) {
        (_, Some(sig)) => format!("cancelled: {sig}"),
        (Some(0), None) => "ok".into(),
        _ => format!("failed: {}", ended.describe(why && quick(took))),
    };
}

/// A shell that ended this soon never became a session: what it printed last is why.
pub fn quick(lasted: Duration) -> bool {
    lasted < Duration::from_secs(3)
}

/// Linux's signal numbers, for the names SSH and Docker use and the numbers a process's
/// status and Docker's events carry.
pub const SIGNALS: [(u8, &str); 14] = [
    (1, "HUP"),
    (2, "INT"),
    (3, "QUIT"),
    (4, "ILL"),
    (6, "ABRT"),
    (8, "FPE"),
    (9, "KILL"),
    (10, "USR1"),
    (11, "SEGV"),
    (12, "USR2"),
    (13, "PIPE"),
    (14, "ALRM"),
    (15, "TERM"),
    (19, "STOP"),
];

/// A signal's number by its name (`KILL` or `SIGKILL`); TERM's for one not known.
fn signal_number(name: &str) -> u8 {
    let name = name.trim_start_matches("SIG");
    SIGNALS
        .iter()
        .find(|(_, n)| *n == name)
        .map_or(15, |(number, _)| *number)
}

/// A signal's name (`KILL`) by its number, when it is one of [`SIGNALS`].
pub fn signal_name(number: i64) -> Option<&'static str> {
    SIGNALS
        .iter()
        .find(|(n, _)| i64::from(*n) == number)
        .map(|(_, name)| *name)
}

/// The bytes kept of the end of a shell's output, for [`Ended::tail`].
const TAIL: usize = 512;

/// Reads this process's stdin on a thread of its own while it lives, and stops (joined)
/// when dropped: it polls, so it never sits in a read that would take the next key from
/// the console once the shell is over.
struct StdinPump {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// `None` is end of input.
type Input = Option<Vec<u8>>;

impl StdinPump {
    fn start() -> (StdinPump, mpsc::Receiver<Input>) {
        let (tx, rx) = mpsc::channel::<Input>(16);
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("shell-stdin".into())
            .spawn(move || pump(&flag, &tx))
            .ok();
        (StdinPump { stop, thread }, rx)
    }
}

impl Drop for StdinPump {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn pump(stop: &AtomicBool, tx: &mpsc::Sender<Input>) {
    use rustix::event::{PollFd, PollFlags, Timespec, poll};
    let stdin = std::io::stdin();
    let tick = Timespec {
        tv_sec: 0,
        tv_nsec: 50_000_000,
    };
    let mut buf = vec![0u8; 8192];
    while !stop.load(Ordering::SeqCst) {
        let mut fds = [PollFd::new(&stdin, PollFlags::IN)];
        match poll(&mut fds, Some(&tick)) {
            Ok(0) => continue,
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => break,
        }
        let revents = fds[0].revents();
        if !revents.intersects(PollFlags::IN | PollFlags::HUP | PollFlags::ERR) {
            continue;
        }
        match rustix::io::read(&stdin, &mut buf[..]) {
            Ok(0) | Err(_) => {
                let _ = tx.blocking_send(None);
                return;
            }
            Ok(n) => {
                if tx.blocking_send(Some(buf[..n].to_vec())).is_err() {
                    return;
                }
            }
        }
    }
}

/// Joins the terminal to a shell's channel until the shell ends: keys (and piped input)
/// go to it, its output comes here, and a resize of the terminal goes to its PTY.
pub async fn bridge(channel: russh::Channel<ClientMsg>, early: Vec<u8>, tty: bool) -> Ended {
    use tokio::io::AsyncWriteExt;
    let (mut read, write) = channel.split();
    let mut out = tokio::io::stdout();
    let mut err = tokio::io::stderr();
    let mut ended = Ended::default();
    keep_tail(&mut ended.tail, &early);
    let _ = out.write_all(&early).await;
    let _ = out.flush().await;
    let (pump, mut input) = StdinPump::start();
    let mut resized =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change()).ok();
    let mut reading = true;
    loop {
        tokio::select! {
            msg = read.wait() => match msg {
                Some(ChannelMsg::Data { data }) => {
                    keep_tail(&mut ended.tail, &data);
                    let _ = out.write_all(&data).await;
                    let _ = out.flush().await;
                }
                Some(ChannelMsg::ExtendedData { data, .. }) => {
                    keep_tail(&mut ended.tail, &data);
                    let _ = err.write_all(&data).await;
                    let _ = err.flush().await;
                }
                Some(ChannelMsg::ExitStatus { exit_status }) => ended.status = Some(exit_status),
                Some(ChannelMsg::ExitSignal { signal_name, .. }) => {
                    ended.signal = Some(match signal_name {
                        russh::Sig::Custom(name) => crate::sanitize::line(&name).into_owned(),
                        sig => format!("{sig:?}"),
                    });
                }
                Some(ChannelMsg::Close) => break,
                Some(_) => {}
                None => {
                    ended.lost = ended.status.is_none() && ended.signal.is_none();
                    break;
                }
            },
            bytes = input.recv(), if reading => match bytes {
                Some(Some(bytes)) => {
                    if write.data_bytes(bytes).await.is_err() {
                        ended.lost = true;
                        break;
                    }
                }
                // End of input: a terminal has none (Ctrl-D is a byte in raw mode); piped
                // input tells the command, as `ssh` does.
                _ => {
                    reading = false;
                    if !tty {
                        let _ = write.eof().await;
                    }
                }
            },
            Some(()) = async { match resized.as_mut() { Some(s) => s.recv().await, None => None } } => {
                if tty && let Ok((cols, rows)) = crossterm::terminal::size() {
                    let _ = write.window_change(u32::from(cols), u32::from(rows), 0, 0).await;
                }
            }
        }
    }
    drop(pump);
    ended
}

fn keep_tail(tail: &mut Vec<u8>, data: &[u8]) {
    tail.extend_from_slice(&data[data.len().saturating_sub(TAIL)..]);
    let excess = tail.len().saturating_sub(TAIL);
    tail.drain(..excess);
}

/// Runs a program of this machine on the terminal (its stdin, stdout and stderr are
/// opsdeck's) and waits for it.
pub async fn run_local(argv: &[String]) -> Ended {
    let Some((program, args)) = argv.split_first() else {
        return Ended::default();
    };
    let status = tokio::process::Command::new(program)
        .args(args)
        .kill_on_drop(true)
        .status()
        .await;
    match status {
        Ok(s) => {
            use std::os::unix::process::ExitStatusExt;
            Ended {
                status: s.code().and_then(|c| u32::try_from(c).ok()),
                signal: s.signal().map(|n| {
                    signal_name(i64::from(n)).map_or_else(|| format!("signal {n}"), String::from)
                }),
                ..Ended::default()
            }
        }
        Err(e) => {
            let mut tail = Vec::new();
            let _ = write!(tail, "cannot run {program}: {e}");
            Ended {
                status: Some(127),
                tail,
                ..Ended::default()
            }
        }
    }
}

/// What `S` runs on this machine: `$SHELL`, else sh.
pub fn local_login_shell() -> Vec<String> {
    let shell = std::env::var("SHELL")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "/bin/sh".into());
    vec![shell]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(container: Option<&str>, command: &[&str], tty: bool) -> ShellRequest {
        ShellRequest {
            container: container.map(String::from),
            command: command.iter().map(|s| s.to_string()).collect(),
            tty: tty.then(|| Tty {
                cols: 80,
                rows: 24,
                term: "xterm".into(),
            }),
        }
    }

    #[test]
    fn a_container_shell_is_docker_exec_with_bash_else_sh() {
        let words = argv(&req(Some("abc123"), &[], true), Some("/run/d.sock"));
        assert_eq!(
            words,
            [
                "env",
                "DOCKER_HOST=unix:///run/d.sock",
                "docker",
                "exec",
                "-i",
                "-t",
                "-e",
                "TERM=xterm",
                "abc123",
                "sh",
                "-c",
                SHELL_FALLBACK
            ]
        );
        let words = argv(&req(Some("abc123"), &["echo", "a b"], false), None);
        assert_eq!(words, ["docker", "exec", "-i", "abc123", "echo", "a b"]);
        // the host: its login shell, or the command as given
        assert!(argv(&req(None, &[], true), None).is_empty());
        assert_eq!(argv(&req(None, &["uptime"], false), None), ["uptime"]);
    }

    #[test]
    fn term_is_passed_only_when_it_is_a_plain_name() {
        assert_eq!(term_name(Some("screen-256color")), "screen-256color");
        assert_eq!(term_name(Some("xterm; rm -rf /")), "xterm-256color");
        assert_eq!(term_name(Some("")), "xterm-256color");
        assert_eq!(term_name(None), "xterm-256color");
    }

    #[test]
    fn an_ending_says_why_and_gives_the_status_a_shell_would() {
        let ok = Ended {
            status: Some(0),
            tail: b"bye\r\n".to_vec(),
            ..Ended::default()
        };
        assert_eq!((ok.code(), ok.describe(true)), (0, "exit 0".to_string()));
        let missing = Ended {
            status: Some(127),
            tail: b"OCI runtime exec failed: \x1b[31mexec: \"sh\": not found\x1b[0m\r\n\r\n"
                .to_vec(),
            ..Ended::default()
        };
        assert_eq!(missing.code(), 127);
        assert_eq!(
            missing.describe(true),
            "exit 127: OCI runtime exec failed: exec: \"sh\": not found"
        );
        assert_eq!(missing.describe(false), "exit 127");
        let logout = Ended {
            status: Some(3),
            tail: b"lila@vm:~$ exit 3\r\r\nlogout\r\n".to_vec(),
            ..Ended::default()
        };
        assert_eq!(logout.describe(true), "exit 3: logout");
        let killed = Ended {
            signal: Some("KILL".into()),
            ..Ended::default()
        };
        assert_eq!(
            (killed.code(), killed.describe(true)),
            (137, "killed by KILL".into())
        );
        let lost = Ended {
            lost: true,
            ..Ended::default()
        };
        assert_eq!(
            (lost.code(), lost.describe(true)),
            (255, "the connection was lost".into())
        );
    }

    #[test]
    fn a_shells_record_says_how_it_ended() {
        let rec = |ended: &Ended, took: u64, sig: Option<&str>, why: bool| {
            let mut r = crate::model::JobRecord::new("t".into(), "u".into(), "h", "", "shell");
            finish_record(&mut r, ended, Duration::from_secs(took), sig, why);
            r
        };
        let failed = Ended {
            status: Some(127),
            tail: b"sh: not found\r\n".to_vec(),
            ..Ended::default()
        };
        let r = rec(&failed, 1, None, true);
        assert_eq!(r.outcome, "failed: exit 127: sh: not found");
        assert_eq!(r.duration_ms, 1000);
        assert!(r.ended.is_some());
        // a long session, or a command: no last line
        assert_eq!(rec(&failed, 60, None, true).outcome, "failed: exit 127");
        assert_eq!(rec(&failed, 1, None, false).outcome, "failed: exit 127");
        let ok = Ended {
            status: Some(0),
            ..Ended::default()
        };
        assert_eq!(rec(&ok, 5, None, true).outcome, "ok");
        assert_eq!(
            rec(&ok, 5, Some("SIGTERM"), true).outcome,
            "cancelled: SIGTERM"
        );
    }

    #[test]
    fn signals_by_name_and_number() {
        assert_eq!(signal_number("SIGUSR1"), 10);
        assert_eq!(signal_number("KILL"), 9);
        assert_eq!(signal_number("WINCH"), 15, "not known: TERM's");
        assert_eq!(signal_name(9), Some("KILL"));
        assert_eq!(signal_name(64), None);
        for (n, name) in SIGNALS {
            assert_eq!(signal_name(i64::from(n)), Some(name));
            assert_eq!(signal_number(name), n);
        }
    }

    #[test]
    fn the_tail_keeps_the_last_bytes_only() {
        let mut tail = Vec::new();
        keep_tail(&mut tail, &[b'a'; 400]);
        keep_tail(&mut tail, &[b'b'; 400]);
        assert_eq!(tail.len(), TAIL);
        assert!(tail.ends_with(&[b'b'; 400]));
        keep_tail(&mut tail, &[b'c'; 2000]);
        assert_eq!(tail, vec![b'c'; TAIL]);
    }
}
