//! Where a job's commands run: the host's SSH session, or this machine for `address =
//! "local"`. Both take the same command line a login shell would get over SSH, so a job
//! is written once and runs the same way on either.

use std::future::Future;
use std::path::PathBuf;
use std::process::Stdio;

use crate::remote::ssh::{ExecOutput, Session, SshError};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Ssh(#[from] SshError),
    #[error("cannot run sh on this machine: {0}")]
    Spawn(String),
}

/// Runs one shell command line on a host to completion.
///
/// The command's stdin stays open until the command ends and closes when the caller goes
/// away (the SSH channel or the local pipe): job scripts watch it to clean up when opsdeck
/// is killed mid-job.
pub trait Runner: Sync {
    fn run(&self, command: &str) -> impl Future<Output = Result<ExecOutput, RunError>> + Send;
}

impl Runner for Session {
    async fn run(&self, command: &str) -> Result<ExecOutput, RunError> {
        Ok(self.exec(command).await?)
    }
}

/// This machine: `sh -c COMMAND` in the home directory, where an SSH exec would start.
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

impl Runner for Local {
    async fn run(&self, command: &str) -> Result<ExecOutput, RunError> {
        let mut cmd = tokio::process::Command::new("sh");
        cmd.arg("-c")
            .arg(command)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(home) = &self.home {
            cmd.current_dir(home);
        }
        let mut child = cmd.spawn().map_err(|e| RunError::Spawn(e.to_string()))?;
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
}
