//! Retention: which of a set's files to delete after a successful backup.
//!
//! A file is kept when any rule keeps it: among the newest `keep_last`, or younger than
//! `keep_within`. Whatever the rules say, the newest file and the file just made are
//! kept, and a file the set's glob does not match is never touched (the directory may be
//! shared with other sets, or with files the operator keeps by hand).
//!
//! Ages are differences between two readings of the host's clock: the files' mtimes and
//! the host's `date +%s`, read in the same exec as the listing. This machine's clock never
//! enters, so a host whose clock is off (ahead or behind) loses exactly what it would with
//! a correct one. A file dated in the host's future has no age: it is kept, and takes no
//! place among the newest `keep_last`. A listing that is incomplete (cut off, or find
//! failed) deletes nothing, nor does a name that came back from the host in invalid UTF-8
//! (opsdeck could not name the file exactly).

use std::time::Duration;

use crate::collect::backups::{self, FileEntry, ListError, Listing, counts, in_the_future};
use crate::config::BackupSet;

use super::runner::{RunError, Runner};
use super::script;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RetentionError {
    #[error("{0}")]
    Run(#[from] RunError),
    #[error("{0}; nothing was deleted")]
    List(#[from] ListError),
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

/// The names to delete, oldest first. `host_now` is the host's clock when it listed the
/// files; only its differences with their mtimes matter. `just_made` is kept even when
/// its time is off.
pub fn plan(listing: &Listing, glob: &str, rules: Rules, just_made: &str) -> Vec<String> {
    if rules.is_empty() {
        return Vec::new();
    }
    let now = listing.host_now;
    let mut matching: Vec<&FileEntry> = listing
        .files
        .iter()
        .filter(|f| counts(glob, &f.name) && !in_the_future(f, now))
        .collect();
    // Newest first; equal times by name, as the verdicts order them.
    backups::newest_first(&mut matching);
    let within = rules
        .keep_within
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let mut doomed: Vec<String> = matching
        .iter()
        .enumerate()
        .filter(|(i, f)| {
            let newest = *i == 0;
            let by_count = rules
                .keep_last
                .is_some_and(|n| *i < usize::try_from(n).unwrap_or(usize::MAX));
            let by_age = within.is_some_and(|d| now.saturating_sub(f.mtime) < d);
            let exact = !listing.inexact.contains(&f.name);
            exact && !(newest || by_count || by_age || f.name == just_made)
        })
        .map(|(_, f)| f.name.clone())
        .collect();
    doomed.reverse();
    doomed
}

/// Lists the set's directory, deletes what [`plan`] says, and returns the names removed.
pub async fn apply<R: Runner>(
    runner: &R,
    set: &BackupSet,
    just_made: &str,
) -> Result<Vec<String>, RetentionError> {
    let rules = Rules::of(set);
    if rules.is_empty() {
        return Ok(Vec::new());
    }
    let listing = backups::list(&set.dir, runner).await?;
    let doomed = plan(&listing, set.glob.get_ref(), rules, just_made);
    if doomed.is_empty() {
        return Ok(Vec::new());
    }
    let mut args = vec![backups::remote_dir_arg(&set.dir)];
    args.extend(doomed.iter().cloned());
    let cmd = script::command(None, script::REMOVE, &args).ok_or(RetentionError::Quote)?;
    let out = runner.run(&cmd).await?;
    // The host's word for what it removed, believed only for names opsdeck asked for.
    let removed: Vec<String> = out
        .stdout
        .split(|&b| b == 0)
        .filter_map(|n| std::str::from_utf8(n).ok())
        .filter(|n| doomed.iter().any(|d| d == n))
        .map(str::to_string)
        .collect();
    if out.status != Some(0) {
        let detail = crate::sanitize::line(String::from_utf8_lossy(&out.stderr).trim())
            .chars()
            .take(300)
            .collect::<String>();
        return Err(RetentionError::Remove(if removed.is_empty() {
            detail
        } else {
            format!(
                "{detail} (removed: {})",
                removed
                    .iter()
                    .map(|n| crate::sanitize::line(n))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }));
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::runner::ExecOutput;
    use std::collections::BTreeSet;
    use std::path::{Path, PathBuf};

    const H: i64 = 3600;

    fn f(name: &str, age_h: i64) -> FileEntry {
        FileEntry {
            name: name.into(),
            mtime: 1_000_000 - age_h * H,
            size: 10,
        }
    }

    fn listing(files: Vec<FileEntry>) -> Listing {
        Listing {
            host_now: 1_000_000,
            files,
            inexact: BTreeSet::new(),
        }
    }

    fn files() -> Listing {
        listing(vec![
            f("db-5.dump", 0),
            f("db-4.dump", 24),
            f("db-3.dump", 48),
            f("db-2.dump", 72),
            f("db-1.dump", 96),
            f("notes.txt", 500),
            f(".db.partial", 500),
        ])
    }

    fn rules(keep_last: Option<u32>, days: Option<u64>) -> Rules {
        Rules {
            keep_last,
            keep_within: days.map(|d| Duration::from_secs(d * 86_400)),
        }
    }

    #[test]
    fn keep_last_deletes_the_oldest_matches_only() {
        let doomed = plan(&files(), "db-*.dump", rules(Some(2), None), "db-5.dump");
        assert_eq!(doomed, ["db-1.dump", "db-2.dump", "db-3.dump"]);
    }

    #[test]
    fn keep_within_and_the_union_of_rules() {
        let within = plan(&files(), "db-*.dump", rules(None, Some(2)), "db-5.dump");
        assert_eq!(within, ["db-1.dump", "db-2.dump", "db-3.dump"]);
        // keep_last 4 keeps db-2 as well; 2 days alone would not
        let both = plan(&files(), "db-*.dump", rules(Some(4), Some(2)), "db-5.dump");
        assert_eq!(both, ["db-1.dump"]);
    }

    #[test]
    fn never_the_newest_nor_the_new_file_nor_without_rules() {
        let old = listing(vec![f("db-2.dump", 500), f("db-1.dump", 600)]);
        assert_eq!(
            plan(&old, "db-*.dump", rules(None, Some(1)), "x"),
            ["db-1.dump"]
        );
        assert_eq!(
            plan(&old, "db-*.dump", rules(Some(0), None), "db-1.dump"),
            Vec::<String>::new()
        );
        assert!(plan(&files(), "db-*.dump", rules(None, None), "").is_empty());
    }

    #[test]
    fn a_glob_starting_with_a_dot_never_deletes_a_partial_file() {
        let l = listing(vec![
            f(".db-3", 0),
            f(".db.partial", 30),
            f(".db-2", 50),
            f(".db-1", 70),
        ]);
        assert_eq!(
            plan(&l, ".*", rules(Some(1), None), ".db-3"),
            [".db-1", ".db-2"]
        );
    }

    #[test]
    fn a_file_from_the_future_is_kept_and_takes_no_place() {
        let l = listing(vec![
            f("db-9.dump", -24 * 30),
            f("db-5.dump", 0),
            f("db-4.dump", 24),
            f("db-3.dump", 48),
        ]);
        // Ranked first, the file from 2030 would have kept itself and cost db-4 its place.
        assert_eq!(
            plan(&l, "db-*.dump", rules(Some(2), None), "db-5.dump"),
            ["db-3.dump"]
        );
    }

    #[test]
    fn names_the_host_sent_in_invalid_utf8_are_never_deleted() {
        let mut l = listing(vec![f("db-2.dump", 0), f("db-\u{fffd}.dump", 50)]);
        l.inexact.insert("db-\u{fffd}.dump".into());
        assert!(plan(&l, "db-*.dump", rules(Some(1), None), "db-2.dump").is_empty());
    }

    fn set(glob: &str, dir: &str, rules: &str) -> BackupSet {
        crate::config::parse_str(
            &format!("[[host]]\nname = \"h\"\n[[host.stack]]\nname = \"s\"\ndir = \"~/x\"\n[[host.stack.backup]]\nname = \"s\"\ndir = \"{dir}\"\nglob = \"{glob}\"\nmax_age = \"1d\"\n{rules}\n"),
            Path::new("t.toml"),
        )
        .unwrap()
        .hosts
        .remove(0)
        .stacks
        .remove(0)
        .backups
        .remove(0)
    }

    /// Files in `dir`, dated `now + shift - age` by this machine's clock.
    fn put(dir: &Path, shift: i64, files: &[(&str, i64)]) {
        std::fs::create_dir_all(dir).unwrap();
        let now = jiff::Timestamp::now().as_second();
        for (name, age) in files {
            let p = dir.join(name);
            std::fs::write(&p, b"x").unwrap();
            let at = u64::try_from(now + shift - age).unwrap();
            std::fs::File::options()
                .write(true)
                .open(&p)
                .unwrap()
                .set_modified(std::time::UNIX_EPOCH + Duration::from_secs(at))
                .unwrap();
        }
    }

    fn left(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[tokio::test]
    async fn apply_removes_and_reports_on_this_machine() {
        let home = tempfile::tempdir().unwrap();
        let dir = home.path().join("b");
        put(
            &dir,
            0,
            &[
                ("s-3.gz", 0),
                ("s-2.gz", 10 * H),
                ("s-1.gz", 20 * H),
                ("other", 30 * H),
            ],
        );
        let local = super::super::Local {
            home: Some(home.path().to_path_buf()),
        };
        let removed = apply(&local, &set("s-*.gz", "~/b", "keep_last = 1"), "s-3.gz")
            .await
            .unwrap();
        assert_eq!(removed, ["s-1.gz", "s-2.gz"]);
        assert_eq!(left(&dir), ["other", "s-3.gz"]);
    }

    #[tokio::test]
    async fn a_symlinked_directory_is_followed() {
        let home = tempfile::tempdir().unwrap();
        let real = home.path().join("real");
        put(
            &real,
            0,
            &[("s-3.gz", 0), ("s-2.gz", 10 * H), ("s-1.gz", 20 * H)],
        );
        std::os::unix::fs::symlink(&real, home.path().join("b")).unwrap();
        let local = super::super::Local {
            home: Some(home.path().to_path_buf()),
        };
        let removed = apply(&local, &set("s-*.gz", "~/b", "keep_last = 2"), "s-3.gz")
            .await
            .unwrap();
        assert_eq!(removed, ["s-1.gz"]);
        assert_eq!(left(&real), ["s-2.gz", "s-3.gz"]);
    }

    /// [`super::super::Local`] whose `date` runs `skew` seconds off, and whose listings
    /// are cut after `cut` bytes, like a capped exec would.
    struct Host {
        local: super::super::Local,
        bin: PathBuf,
        cut: Option<usize>,
    }

    impl Host {
        fn new(home: &Path, skew: i64) -> Host {
            use std::os::unix::fs::PermissionsExt;
            let bin = home.join("bin");
            std::fs::create_dir_all(&bin).unwrap();
            let date = bin.join("date");
            std::fs::write(
                &date,
                format!(
                    "#!/bin/sh\nreal=$(PATH=/usr/bin:/bin date \"$@\")\necho $((real + {skew}))\n"
                ),
            )
            .unwrap();
            std::fs::set_permissions(&date, std::fs::Permissions::from_mode(0o755)).unwrap();
            Host {
                local: super::super::Local {
                    home: Some(home.to_path_buf()),
                },
                bin,
                cut: None,
            }
        }
    }

    impl Runner for Host {
        async fn run(&self, command: &str) -> Result<ExecOutput, RunError> {
            let cmd = format!("PATH={}:$PATH; export PATH; {command}", self.bin.display());
            let mut out = self.local.run(&cmd).await?;
            if let Some(cut) = self.cut.filter(|_| command.contains("find -H")) {
                out.stdout.truncate(cut);
            }
            Ok(out)
        }

        async fn start(&self, command: &str) -> Result<super::super::runner::Process, RunError> {
            self.local.start(command).await
        }
    }

    #[tokio::test]
    async fn a_skewed_host_clock_deletes_what_a_correct_one_would() {
        let d = 86_400;
        for skew in [-3 * d, -2 * H, 0, 5 * H, 3 * d] {
            let home = tempfile::tempdir().unwrap();
            let dir = home.path().join("b");
            // The host made a dump a day for five days, by its own (skewed) clock.
            put(
                &dir,
                skew,
                &[
                    ("s-5.gz", 0),
                    ("s-4.gz", d),
                    ("s-3.gz", 2 * d + H),
                    ("s-2.gz", 3 * d),
                    ("s-1.gz", 4 * d),
                ],
            );
            let host = Host::new(home.path(), skew);
            let removed = apply(
                &host,
                &set("s-*.gz", "~/b", "keep_within = \"2d\""),
                "s-5.gz",
            )
            .await
            .unwrap();
            assert_eq!(removed, ["s-1.gz", "s-2.gz", "s-3.gz"], "skew {skew}");
            assert_eq!(left(&dir), ["s-4.gz", "s-5.gz"], "skew {skew}");
        }
    }

    #[tokio::test]
    async fn an_incomplete_listing_deletes_nothing() {
        let home = tempfile::tempdir().unwrap();
        let dir = home.path().join("b");
        let names: Vec<String> = (1..=9).map(|i| format!("s-{i}.gz")).collect();
        let files: Vec<(&str, i64)> = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.as_str(), (9 - i as i64) * H))
            .collect();
        put(&dir, 0, &files);
        let mut host = Host::new(home.path(), 0);
        host.cut = Some(200);
        let err = apply(&host, &set("s-*.gz", "~/b", "keep_last = 1"), "s-9.gz")
            .await
            .unwrap_err();
        assert!(
            matches!(err, RetentionError::List(ListError::Truncated { .. })),
            "{err}"
        );
        assert!(err.to_string().ends_with("nothing was deleted"), "{err}");
        assert_eq!(left(&dir), names);
    }

    #[tokio::test]
    async fn a_missing_directory_is_an_error_not_an_empty_set() {
        let home = tempfile::tempdir().unwrap();
        let local = super::super::Local {
            home: Some(home.path().to_path_buf()),
        };
        let err = apply(&local, &set("s-*.gz", "~/gone", "keep_last = 1"), "s-1.gz")
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "directory ~/gone does not exist; nothing was deleted"
        );
    }
}
