//! A stack's lock on its host: `flock` held by a process of its own for the whole job,
//! with who holds it and since when written in the file, so a second job on the same
//! stack (from this opsdeck, another one, or a script) is refused with "locked by X since
//! T". Backups take it shared: they exclude deploys and actions, not each other.

use std::time::Duration;

use super::runner::{ProcEvent, Process, Runner};
use super::script;

/// Where opsdeck keeps its per-stack files on a host, relative to the login directory:
/// `<project>.lock` (the lock), `<project>.holder` (who holds it, since when) and
/// `<project>.images` (the image IDs before the last deploy). Not in the stack directory, which may be a build context.
pub const HOST_STATE_DIR: &str = ".local/state/opsdeck";
/// How long a job waits for its lock holder to answer.
const LOCK_TIMEOUT: Duration = Duration::from_secs(30);

/// Held while alive: dropping it closes the holder's stdin, and the host drops the lock
/// soon after. [`LockGuard::release`] waits until it has.
pub struct LockGuard {
    holder: Process,
    pub file: String,
}

/// How long [`LockGuard::release`] waits for the holder to let go.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(10);

impl LockGuard {
    /// Lets go of the lock and waits until the holder process on the host has ended (so the
    /// flock is gone): a job is reported done only after this, so the next job on the stack
    /// never finds this one's lock. Returns false when the holder did not confirm in time
    /// (the connection is gone: the host drops the lock when its sshd notices).
    pub async fn release(mut self) -> bool {
        self.holder.close_stdin();
        tokio::time::timeout(RELEASE_TIMEOUT, async {
            loop {
                match self.holder.next().await {
                    Some(ProcEvent::Exit(_)) | None => return true,
                    Some(ProcEvent::Lost(_)) => return false,
                    Some(_) => {}
                }
            }
        })
        .await
        .unwrap_or(false)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockError {
    /// Another job holds it: what its holder wrote (who, since when, what).
    Busy(String),
    Failed(String),
}

/// `tester@laptop`: the local user at this machine, as the lock and the release history
/// name who did something.
pub fn who(user: &str) -> String {
    let machine = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    if machine.is_empty() {
        user.to_string()
    } else {
        format!("{user}@{machine}")
    }
}

/// `tester@laptop since 2026-12-01T18:30:00Z (deploy, opsdeck pid 4242)`.
pub fn lock_info(user: &str, action: &str) -> String {
    let who = who(user);
    format!(
        "{who} since {} ({action}, opsdeck pid {})",
        jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ"),
        std::process::id()
    )
}

/// `.local/state/opsdeck/<project>.<ext>`, the project name made safe as a file name.
pub fn host_file(project: &str, ext: &str) -> String {
    let safe: String = project
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{HOST_STATE_DIR}/{}.{ext}", safe.trim_start_matches('.'))
}

/// Takes the lock of a compose project on the host: exclusive for deploys and actions,
/// shared for backups (they exclude deploys, not each other).
pub async fn lock<R: Runner>(
    runner: &R,
    project: &str,
    info: &str,
    shared: bool,
) -> Result<LockGuard, LockError> {
    let file = host_file(project, "lock");
    let mode = if shared { "shared" } else { "exclusive" };
    let command = script::command(
        None,
        script::LOCK,
        &[file.clone(), info.into(), mode.into()],
    )
    .ok_or_else(|| LockError::Failed("the lock's description cannot be quoted".into()))?;
    let mut p = runner
        .start(&command)
        .await
        .map_err(|e| LockError::Failed(e.to_string()))?;
    let answer = tokio::time::timeout(LOCK_TIMEOUT, async {
        let (mut out, mut err) = (String::new(), String::new());
        loop {
            match p.next().await {
                Some(ProcEvent::Stdout(b)) => {
                    out.push_str(&String::from_utf8_lossy(&b));
                    if let Some((line, _)) = out.split_once('\n') {
                        return Ok(line.to_string());
                    }
                }
                Some(ProcEvent::Stderr(b)) => err.push_str(&String::from_utf8_lossy(&b)),
                Some(ProcEvent::Exit(_)) | None => {
                    let why = err.trim().trim_start_matches("opsdeck: ").to_string();
                    return Err(if why.is_empty() {
                        "the lock holder ended without a word".to_string()
                    } else {
                        why
                    });
                }
                Some(ProcEvent::Lost(why)) => return Err(why),
            }
        }
    })
    .await
    .map_err(|_| LockError::Failed(format!("no answer within {}s", LOCK_TIMEOUT.as_secs())))?
    .map_err(LockError::Failed)?;
    match answer.strip_prefix("busy") {
        Some(holder) => {
            let holder = holder.trim();
            Err(LockError::Busy(if holder.is_empty() {
                "another job".into()
            } else {
                holder.into()
            }))
        }
        None if answer == "locked" => Ok(LockGuard { holder: p, file }),
        None => Err(LockError::Failed(format!("unexpected answer {answer:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::Local;

    #[test]
    fn host_files_stay_in_the_state_dir() {
        assert_eq!(
            host_file("my app/../x", "lock"),
            ".local/state/opsdeck/my_app_.._x.lock"
        );
        assert_eq!(
            host_file("lila", "images"),
            ".local/state/opsdeck/lila.images"
        );
    }

    #[tokio::test]
    async fn a_second_exclusive_lock_is_refused_naming_the_holder() {
        let home = tempfile::tempdir().unwrap();
        let local = Local {
            home: Some(home.path().to_path_buf()),
        };
        let first = lock(&local, "lila", "alice@laptop since T (deploy)", false)
            .await
            .unwrap();
        assert_eq!(first.file, ".local/state/opsdeck/lila.lock");
        let second = lock(&local, "lila", "bob since U (deploy)", false).await;
        assert_eq!(
            second.err(),
            Some(LockError::Busy("alice@laptop since T (deploy)".into()))
        );
        // shared holders exclude an exclusive one, not each other
        let other = lock(&local, "app", "b1 (backup)", true).await.unwrap();
        let again = lock(&local, "app", "b2 (backup)", true).await.unwrap();
        assert!(matches!(
            lock(&local, "app", "d (deploy)", false).await,
            Err(LockError::Busy(_))
        ));
        drop((other, again));
        // dropping the guard ends the holder and frees the lock
        drop(first);
        let mut freed = false;
        for _ in 0..50 {
            if lock(&local, "lila", "bob (deploy)", false).await.is_ok() {
                freed = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(freed, "the lock was not released");
    }
}
