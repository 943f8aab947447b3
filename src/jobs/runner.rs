//! Where a job's commands run: the host's SSH session, or this machine for `address =
//! "local"`. Both take the same command line a login shell would get over SSH, so a job
//! is written once and runs the same way on either.

use std::future::Future;
use std::path::PathBuf;
use std::process::Stdio;

use tokio::io::AsyncReadExt;
use tokio::sync::{mpsc, oneshot};

/// What a command run to completion gave back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    pub status: Option<u32>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RunError {
    /// The way to the host failed (the SSH connection or channel), in its own words.
    #[error("{0}")]
    Transport(String),
    #[error("cannot run sh on this machine: {0}")]
    Spawn(String),
}

/// Runs shell command lines on a host: to completion ([`Runner::run`]), or streaming their
/// output as it comes ([`Runner::start`]).
///
/// The command's stdin stays open until the command ends and closes when the caller goes
/// away (the SSH channel or the local pipe): job scripts watch it to clean up when opsdeck
/// is killed mid-job, and to stop a step the operator cancelled.
pub trait Runner: Sync {
    fn run(&self, command: &str) -> impl Future<Output = Result<ExecOutput, RunError>> + Send;
    fn start(&self, command: &str) -> impl Future<Output = Result<Process, RunError>> + Send;
}

/// What a started command reports, in order: output as it is written, then exactly one
/// `Exit` or `Lost`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProcEvent {
    Stdout(Vec<u8>),
    Stderr(Vec<u8>),
    /// The command ended; `None` when it was killed by a signal.
    Exit(Option<u32>),
    /// The connection went away before the command said how it ended.
    Lost(String),
}

/// A command started with [`Runner::start`]. Its output arrives on a bounded channel, so
/// a command that writes faster than it is read waits (SSH flow control on a remote
/// host, the pipe on this machine) instead of filling memory.
pub struct Process {
    events: mpsc::Receiver<ProcEvent>,
    stdin: Option<oneshot::Sender<()>>,
}

impl Process {
    /// The two ends a transport fills in: the events it sends, and the signal to close the
    /// command's stdin (sent, or dropped with the `Process`).
    pub fn channel() -> (Process, mpsc::Sender<ProcEvent>, oneshot::Receiver<()>) {
        let (tx, events) = mpsc::channel(64);
        let (stdin, close) = oneshot::channel();
        (
            Process {
                events,
                stdin: Some(stdin),
            },
            tx,
            close,
        )
    }

    /// The next piece of output, or how the command ended; `None` after that.
    pub async fn next(&mut self) -> Option<ProcEvent> {
        self.events.recv().await
    }

    /// Ends the command's stdin: job scripts take that as "stop now" and stop the step's
    /// whole process group.
    pub fn close_stdin(&mut self) {
        if let Some(tx) = self.stdin.take() {
            let _ = tx.send(());
        }
    }
}

/// This machine: `sh -c COMMAND` in the home directory, where an SSH exec would start, in
/// a process group of its own, as a command over SSH would be: the signals a terminal sends
/// its foreground group (Ctrl-C at `opsdeck run`, the hang-up when the operator's SSH
/// session drops) are opsdeck's to handle, by stopping the job through the command's stdin.
/// Had they reached the step wrapper, it would die and leave the step running unwatched.
#[derive(Debug, Clone, Default)]
pub struct Local {
    /// The working directory; `$HOME` when unset.
    pub home: Option<PathBuf>,
}

impl Local {
    pub fn new() -> Self {
        Local {
            home: std::env::var_os("HOME").map(PathBuf::from),
        }
    }
}

impl Local {
    fn command(&self, command: &str) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new("sh");
        cmd.arg("-c")
            .arg(command)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        #[cfg(unix)]
        cmd.process_group(0);
        if let Some(home) = &self.home {
            cmd.current_dir(home);
        }
        cmd
    }
}

/// Forwards one pipe of a local child as events until it ends.
async fn pump<R: tokio::io::AsyncRead + Unpin>(
    mut pipe: R,
    tx: mpsc::Sender<ProcEvent>,
    wrap: fn(Vec<u8>) -> ProcEvent,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match pipe.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if tx.send(wrap(buf[..n].to_vec())).await.is_err() {
                    return;
                }
            }
        }
    }
}

impl Runner for Local {
    async fn start(&self, command: &str) -> Result<Process, RunError> {
        let mut child = self
            .command(command)
            .spawn()
            .map_err(|e| RunError::Spawn(e.to_string()))?;
        let (process, tx, close) = Process::channel();
        let stdin = child.stdin.take();
        let out = child
            .stdout
            .take()
            .map(|p| tokio::spawn(pump(p, tx.clone(), ProcEvent::Stdout)));
        let err = child
            .stderr
            .take()
            .map(|p| tokio::spawn(pump(p, tx.clone(), ProcEvent::Stderr)));
        tokio::spawn(async move {
            // Dropping stdin (on request, or when the Process is dropped) is the stop signal.
            let _ = close.await;
            drop(stdin);
        });
        tokio::spawn(async move {
            for pipe in [out, err].into_iter().flatten() {
                let _ = pipe.await;
            }
            let status = child.wait().await.ok().and_then(|s| s.code());
            let _ = tx
                .send(ProcEvent::Exit(status.and_then(|c| u32::try_from(c).ok())))
                .await;
        });
        Ok(process)
    }

    async fn run(&self, command: &str) -> Result<ExecOutput, RunError> {
        let mut child = self
            .command(command)
            .spawn()
            .map_err(|e| RunError::Spawn(e.to_string()))?;
        // Held, never written: its end of file tells the script we are gone.
        let stdin = child.stdin.take();
        let out = child
            .wait_with_output()
            .await
            .map_err(|e| RunError::Spawn(e.to_string()))?;
        drop(stdin);
        Ok(ExecOutput {
            status: out.status.code().and_then(|c| u32::try_from(c).ok()),
            stdout: out.stdout,
            stderr: out.stderr,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn local_runs_in_home_with_stdin_open() {
        let dir = tempfile::tempdir().unwrap();
        let local = Local {
            home: Some(dir.path().to_path_buf()),
        };
        let out = local.run("pwd; echo oops >&2; exit 3").await.unwrap();
        assert_eq!(out.status, Some(3));
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            dir.path().canonicalize().unwrap().display().to_string()
        );
        assert_eq!(out.stderr, b"oops\n");
        // A read from stdin would return at once on /dev/null; here it times out.
        let out = local
            .run("if timeout 0.3 head -c1 >/dev/null; then echo closed; else echo open; fi")
            .await
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "open");
    }

    async fn collect(mut p: Process) -> (String, String, Option<ProcEvent>) {
        let (mut out, mut err) = (String::new(), String::new());
        while let Some(e) = p.next().await {
            match e {
                ProcEvent::Stdout(b) => out.push_str(&String::from_utf8_lossy(&b)),
                ProcEvent::Stderr(b) => err.push_str(&String::from_utf8_lossy(&b)),
                end => return (out, err, Some(end)),
            }
        }
        (out, err, None)
    }

    #[tokio::test]
    async fn started_commands_stream_both_pipes_then_exit() {
        let local = Local::new();
        let p = local.start("echo one; echo two >&2; exit 4").await.unwrap();
        let (out, err, end) = collect(p).await;
        assert_eq!((out.as_str(), err.as_str()), ("one\n", "two\n"));
        assert_eq!(end, Some(ProcEvent::Exit(Some(4))));
    }

    #[tokio::test]
    async fn closing_stdin_is_seen_by_the_command() {
        let local = Local::new();
        let mut p = local
            .start("while read -r _; do :; done; echo stdin closed")
            .await
            .unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        p.close_stdin();
        let (out, _, end) = tokio::time::timeout(std::time::Duration::from_secs(5), collect(p))
            .await
            .unwrap();
        assert_eq!(out, "stdin closed\n");
        assert_eq!(end, Some(ProcEvent::Exit(Some(0))));
    }
}
