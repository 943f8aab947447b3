//! The audit log: one JSON line per job run, appended to `audit.jsonl` in opsdeck's XDG
//! state directory, so "who took which backup when, and did it work" survives the
//! terminal that showed it. Appends are single writes in append mode, so two opsdeck
//! processes finishing at once do not interleave their lines.

use std::io::Write;
use std::path::PathBuf;

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Record {
    /// RFC 3339, UTC.
    pub time: String,
    /// `$USER` on the machine opsdeck runs on.
    pub user: String,
    pub host: String,
    pub stack: String,
    pub action: String,
    pub set: Option<String>,
    pub file: Option<String>,
    pub size: Option<u64>,
    pub duration_ms: u64,
    /// `ok`, or `failed: <why>`.
    pub outcome: String,
}

/// The audit line of one backup run, from the console or the command line alike.
pub fn record_backup(
    host: &str,
    stack: &str,
    set: &str,
    result: &Result<crate::jobs::backup::BackupOutcome, String>,
    duration: std::time::Duration,
) -> Result<PathBuf, AuditError> {
    let mut r = Record::now(host, stack, "backup");
    r.set = Some(set.to_string());
    r.duration_ms = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
    match result {
        Ok(o) => {
            r.file = Some(o.path.clone());
            r.size = Some(o.size);
            r.outcome = match &o.retention_error {
                None => "ok".into(),
                Some(e) => format!("ok; {e}"),
            };
        }
        Err(e) => r.outcome = format!("failed: {e}"),
    }
    append(&r)
}

impl Record {
    /// A record stamped now, by the local user.
    pub fn now(host: &str, stack: &str, action: &str) -> Record {
        Record {
            time: jiff::Timestamp::now().to_string(),
            user: local_user(),
            host: host.into(),
            stack: stack.into(),
            action: action.into(),
            set: None,
            file: None,
            size: None,
            duration_ms: 0,
            outcome: String::new(),
        }
    }
}

/// `$USER`, else `$LOGNAME`, else the passwd name of our uid: cron and systemd units
/// run without a login environment, and "unknown" is a poor answer to "who did this".
fn local_user() -> String {
    for var in ["USER", "LOGNAME"] {
        if let Ok(u) = std::env::var(var)
            && !u.is_empty()
        {
            return u;
        }
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if let Ok(meta) = std::fs::metadata("/proc/self") {
            let uid = meta.uid().to_string();
            let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
            let name = passwd.lines().find_map(|line| {
                let mut f = line.split(':');
                let name = f.next()?;
                (f.nth(1)? == uid).then(|| name.to_string())
            });
            return name.unwrap_or_else(|| format!("uid {uid}"));
        }
    }
    "unknown".into()
}

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("no home directory to keep the audit log in")]
    NoDir,
    #[error("cannot write the audit log {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// `$XDG_STATE_HOME/opsdeck/audit.jsonl` (or the local data dir where there is no state
/// dir, as on macOS).
pub fn path() -> Option<PathBuf> {
    let dirs = directories::ProjectDirs::from("", "", "opsdeck")?;
    Some(
        dirs.state_dir()
            .unwrap_or(dirs.data_local_dir())
            .join("audit.jsonl"),
    )
}

/// Appends one line; returns the file written.
pub fn append(record: &Record) -> Result<PathBuf, AuditError> {
    let path = path().ok_or(AuditError::NoDir)?;
    append_to(&path, record)?;
    Ok(path)
}

pub fn append_to(path: &std::path::Path, record: &Record) -> Result<(), AuditError> {
    let io = |source| AuditError::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let mut line = serde_json::to_vec(record).map_err(|e| io(std::io::Error::other(e)))?;
    line.push(b'\n');
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut f| f.write_all(&line))
        .map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_one_json_line_per_record() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("deep/audit.jsonl");
        let mut r = Record::now("lila", "lila", "backup");
        r.set = Some("db".into());
        r.outcome = "ok".into();
        append_to(&path, &r).unwrap();
        r.outcome = "failed: interrupted".into();
        append_to(&path, &r).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["host"], "lila");
        assert_eq!(lines[1]["outcome"], "failed: interrupted");
        assert!(lines[0]["time"].as_str().unwrap().ends_with('Z'));
    }
}
