//! Retention: which of a set's files to delete after a successful backup.
//!
//! A file is kept when any rule keeps it: among the newest `keep_last`, or younger than
//! `keep_within`. Whatever the rules say, the newest file and the file just made are
//! kept, and a file the set's glob does not match is never touched (the directory may be
//! shared with other sets, or with files the operator keeps by hand).

use std::time::Duration;

use crate::collect::backups::{self, FileEntry, glob_match};
use crate::config::BackupSet;

use super::runner::{RunError, Runner};
use super::script;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RetentionError {
    #[error("{0}")]
    Run(#[from] RunError),
    #[error("cannot list {dir}: {detail}")]
    List { dir: String, detail: String },
    #[error("could not remove every old backup: {0}")]
    Remove(String),
    #[error("a file name cannot be passed to the host's shell")]
    Quote,
}

/// The rules of one set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    pub keep_last: Option<u32>,
    pub keep_within: Option<Duration>,
}

impl Rules {
    pub fn of(set: &BackupSet) -> Rules {
        Rules {
            keep_last: set.keep_last,
            keep_within: set.keep_within.map(|d| d.as_duration()),
        }
    }

    /// No rule: the set keeps everything.
    pub fn is_empty(&self) -> bool {
        self.keep_last.is_none() && self.keep_within.is_none()
    }
}

/// The names to delete, oldest first. `just_made` is kept even when its time is off.
pub fn plan(
    files: &[FileEntry],
    glob: &str,
    rules: Rules,
    just_made: &str,
    now_secs: i64,
) -> Vec<String> {
    if rules.is_empty() {
        return Vec::new();
    }
    let mut matching: Vec<&FileEntry> =
        files.iter().filter(|f| glob_match(glob, &f.name)).collect();
    // Newest first; equal times by name, as the verdicts order them.
    matching.sort_by(|a, b| b.mtime.cmp(&a.mtime).then(b.name.cmp(&a.name)));
    let mut doomed: Vec<String> = matching
        .iter()
        .enumerate()
        .filter(|(i, f)| {
            let newest = *i == 0;
            let by_count = rules
                .keep_last
                .is_some_and(|n| *i < usize::try_from(n).unwrap_or(usize::MAX));
            let by_age = rules.keep_within.is_some_and(|d| {
                now_secs - f.mtime < i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
            });
            !(newest || by_count || by_age || f.name == just_made)
        })
        .map(|(_, f)| f.name.clone())
        .collect();
    doomed.reverse();
    doomed
}

/// Lists the set's directory, deletes what [`plan`] says, and returns the names removed.
/// Ages count from the new file's time on the host, so a skewed local clock cannot make
/// every file look old.
pub async fn apply<R: Runner>(
    runner: &R,
    set: &BackupSet,
    just_made: &str,
    now_secs: i64,
) -> Result<Vec<String>, RetentionError> {
    let rules = Rules::of(set);
    if rules.is_empty() {
        return Ok(Vec::new());
    }
    let out = runner.run(&backups::list_command(&set.dir)).await?;
    if out.status != Some(0) {
        return Err(RetentionError::List {
            dir: set.dir.clone(),
            detail: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    let files = backups::parse_listing(&String::from_utf8_lossy(&out.stdout));
    let now = files
        .iter()
        .find(|f| f.name == just_made)
        .map_or(now_secs, |f| f.mtime.max(now_secs - 60));
    let doomed = plan(&files, set.glob.get_ref(), rules, just_made, now);
    if doomed.is_empty() {
        return Ok(Vec::new());
    }
    let mut args = vec![backups::remote_dir(&set.dir).to_string()];
    args.extend(doomed);
    let cmd = script::command(None, script::REMOVE, &args).ok_or(RetentionError::Quote)?;
    let out = runner.run(&cmd).await?;
    let removed: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .split('\0')
        .filter(|n| !n.is_empty())
        .map(str::to_string)
        .collect();
    if out.status != Some(0) {
        let detail = String::from_utf8_lossy(&out.stderr).trim().to_string();
        return Err(RetentionError::Remove(if removed.is_empty() {
            detail
        } else {
            format!("{detail} (removed: {})", removed.join(", "))
        }));
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3600;

    fn f(name: &str, age_h: i64) -> FileEntry {
        FileEntry {
            name: name.into(),
            mtime: 1_000_000 - age_h * H,
            size: 10,
        }
    }

    fn files() -> Vec<FileEntry> {
        vec![
            f("db-5.dump", 0),
            f("db-4.dump", 24),
            f("db-3.dump", 48),
            f("db-2.dump", 72),
            f("db-1.dump", 96),
            f("notes.txt", 500),
            f(".db.partial", 500),
        ]
    }

    fn rules(keep_last: Option<u32>, days: Option<u64>) -> Rules {
        Rules {
            keep_last,
            keep_within: days.map(|d| Duration::from_secs(d * 86_400)),
        }
    }

    #[test]
    fn keep_last_deletes_the_oldest_matches_only() {
        let doomed = plan(
            &files(),
            "db-*.dump",
            rules(Some(2), None),
            "db-5.dump",
            1_000_000,
        );
        assert_eq!(doomed, ["db-1.dump", "db-2.dump", "db-3.dump"]);
    }

    #[test]
    fn keep_within_and_the_union_of_rules() {
        let within = plan(
            &files(),
            "db-*.dump",
            rules(None, Some(2)),
            "db-5.dump",
            1_000_000,
        );
        assert_eq!(within, ["db-1.dump", "db-2.dump", "db-3.dump"]);
        // keep_last 4 keeps db-2 as well; 2 days alone would not
        let both = plan(
            &files(),
            "db-*.dump",
            rules(Some(4), Some(2)),
            "db-5.dump",
            1_000_000,
        );
        assert_eq!(both, ["db-1.dump"]);
    }

    #[test]
    fn never_the_newest_nor_the_new_file_nor_without_rules() {
        let old = vec![f("db-2.dump", 500), f("db-1.dump", 600)];
        assert_eq!(
            plan(&old, "db-*.dump", rules(None, Some(1)), "x", 1_000_000),
            ["db-1.dump"]
        );
        assert_eq!(
            plan(
                &old,
                "db-*.dump",
                rules(Some(0), None),
                "db-1.dump",
                1_000_000
            ),
            Vec::<String>::new()
        );
        assert!(plan(&files(), "db-*.dump", rules(None, None), "", 1_000_000).is_empty());
    }

    #[tokio::test]
    async fn apply_removes_and_reports_on_this_machine() {
        let home = tempfile::tempdir().unwrap();
        let dir = home.path().join("b");
        std::fs::create_dir(&dir).unwrap();
        for (name, age) in [("s-3.gz", 0), ("s-2.gz", 10), ("s-1.gz", 20), ("other", 30)] {
            let p = dir.join(name);
            std::fs::write(&p, b"x").unwrap();
            let t = std::time::SystemTime::now() - Duration::from_secs(age * 3600);
            std::fs::File::options()
                .write(true)
                .open(&p)
                .unwrap()
                .set_modified(t)
                .unwrap();
        }
        let set = crate::config::parse_str(
            "[[host]]\nname = \"h\"\n[[host.stack]]\nname = \"s\"\ndir = \"~/x\"\n[[host.stack.backup]]\nname = \"s\"\ndir = \"~/b\"\nglob = \"s-*.gz\"\nmax_age = \"1d\"\nkeep_last = 1\n",
            std::path::Path::new("t.toml"),
        )
        .unwrap()
        .hosts
        .remove(0)
        .stacks
        .remove(0)
        .backups
        .remove(0);
        let local = super::super::Local {
            home: Some(home.path().to_path_buf()),
        };
        let now = jiff::Timestamp::now().as_second();
        let removed = apply(&local, &set, "s-3.gz", now).await.unwrap();
        assert_eq!(removed, ["s-1.gz", "s-2.gz"]);
        let mut left: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["other", "s-3.gz"]);
    }
}
