//! The audit log: one JSON line per job run ([`JobRecord`]), appended to `audit.jsonl` in
//! opsdeck's XDG state directory, so "who deployed what when, and did it work" survives
//! the terminal that showed it. Appends are single writes in append mode, so two opsdeck
//! processes finishing at once do not interleave their lines.

use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use crate::model::job::JobRecord;

/// `$USER`, else `$LOGNAME`, else the passwd name of our uid: cron and systemd units
/// run without a login environment, and "unknown" is a poor answer to "who did this".
pub fn local_user() -> String {
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

/// `$XDG_STATE_HOME/opsdeck` (or the local data dir where there is no state dir, as on
/// macOS): the audit log and opsdeck's own log.
pub fn state_dir() -> Option<PathBuf> {
    let dirs = directories::ProjectDirs::from("", "", "opsdeck")?;
    Some(
        dirs.state_dir()
            .unwrap_or(dirs.data_local_dir())
            .to_path_buf(),
    )
}

/// `$XDG_STATE_HOME/opsdeck/audit.jsonl`.
pub fn path() -> Option<PathBuf> {
    Some(state_dir()?.join("audit.jsonl"))
}

/// Opens `path` for appending, readable by its owner only: the audit log keeps the steps'
/// output, and opsdeck's log names hosts and errors. The directories it makes are 0700;
/// a file that exists with looser bits is tightened to 0600 (what it had of them).
pub fn open_private(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)?;
        }
        options.mode(0o600);
        let file = options.open(path)?;
        use std::os::unix::fs::PermissionsExt;
        let mode = file.metadata()?.permissions().mode();
        if mode & 0o077 != 0 {
            file.set_permissions(std::fs::Permissions::from_mode(mode & 0o600))?;
        }
        Ok(file)
    }
    #[cfg(not(unix))]
    {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        options.open(path)
    }
}

/// Appends one line.
pub fn append_to(path: &Path, record: &JobRecord) -> Result<(), AuditError> {
    let io = |source| AuditError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut line = serde_json::to_vec(record).map_err(|e| io(std::io::Error::other(e)))?;
    line.push(b'\n');
    open_private(path)
        .and_then(|mut f| f.write_all(&line))
        .map_err(io)
}

/// The last `n` records of the log, oldest first. Only the file's last 8 MiB are read:
/// a log of years stays quick to open. Lines that do not parse are skipped.
pub fn read_recent(path: &Path, n: usize) -> Vec<JobRecord> {
    const TAIL: u64 = 8 * 1024 * 1024;
    let Ok(mut file) = std::fs::File::open(path) else {
        return Vec::new();
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    if len > TAIL && file.seek(std::io::SeekFrom::Start(len - TAIL)).is_err() {
        return Vec::new();
    }
    let mut bytes = Vec::new();
    if file.read_to_end(&mut bytes).is_err() {
        return Vec::new();
    }
    let text = String::from_utf8_lossy(&bytes);
    let mut lines: Vec<&str> = text.lines().collect();
    if len > TAIL && !lines.is_empty() {
        lines.remove(0); // cut in the middle
    }
    let mut records: Vec<JobRecord> = lines
        .iter()
        .rev()
        .filter_map(|l| serde_json::from_str(l).ok())
        .take(n)
        .collect();
    records.reverse();
    records
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(action: &str) -> JobRecord {
        JobRecord::new(
            jiff::Timestamp::now().to_string(),
            local_user(),
            "lila",
            "lila",
            action,
        )
    }

    #[test]
    fn appends_one_json_line_per_record_and_reads_the_newest_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("deep/audit.jsonl");
        let mut r = record("backup db");
        r.set = Some("db".into());
        r.outcome = "ok".into();
        append_to(&path, &r).unwrap();
        r.outcome = "failed: interrupted".into();
        append_to(&path, &r).unwrap();
        // a line from an older opsdeck, with fields it no longer writes, still reads
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"{\"time\":\"2026-11-01T00:00:00Z\",\"user\":\"x\",\"host\":\"h\",\"stack\":\"s\",\"action\":\"backup\",\"set\":\"db\",\"file\":null,\"size\":null,\"duration_ms\":5,\"outcome\":\"ok\"}\nnot json\n")
            .unwrap();
        let back = read_recent(&path, 2);
        assert_eq!(back.len(), 2);
        assert_eq!(back[0].outcome, "failed: interrupted");
        assert_eq!(back[1].host, "h");
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0]["host"], "lila");
        assert_eq!(lines[1]["outcome"], "failed: interrupted");
        assert!(lines[0]["time"].as_str().unwrap().ends_with('Z'));
    }

    #[cfg(unix)]
    fn mode(p: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[cfg(unix)]
    #[test]
    fn the_log_and_its_new_directories_are_the_owners_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = dir.path().join("state/opsdeck/audit.jsonl");
        append_to(&path, &record("deploy")).unwrap();
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&dir.path().join("state/opsdeck")), 0o700);
        assert_eq!(mode(&dir.path().join("state")), 0o700);
        // a directory that was there is left as it was
        assert_eq!(mode(dir.path()), 0o755);

        // a log from before, readable by everyone, is tightened when next written
        let old = dir.path().join("old.jsonl");
        std::fs::write(&old, "").unwrap();
        std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o644)).unwrap();
        append_to(&old, &record("deploy")).unwrap();
        assert_eq!(mode(&old), 0o600);
        let other = dir.path().join("opsdeck.log");
        std::fs::write(&other, "").unwrap();
        std::fs::set_permissions(&other, std::fs::Permissions::from_mode(0o666)).unwrap();
        drop(open_private(&other).unwrap());
        assert_eq!(mode(&other), 0o600);
    }
}
