//! Backup sets: what is in a backup directory on the host, and whether to trust it.
//!
//! The directory is listed by one small `sh` script (the directory travels as a quoted
//! argument) that prints the host's clock, then one record per regular file from GNU
//! `find -printf`, then an end marker with find's exit status, every record ended by a
//! NUL: no file name can contain a NUL, so newlines, tabs and invalid UTF-8 in names never
//! split or shift a record. The set's glob is matched here, not by a remote shell: a glob
//! in the inventory is never expanded on the host.
//!
//! Everything in the listing is the host's word. Ages are measured on the host's own clock
//! (its `date +%s` from the same exec, against its own mtimes), so a host whose clock is
//! off by a day still gets the right ages; a file dated in the host's future has no
//! trustworthy age at all. A listing that lost its end marker (cut at [`LISTING_CAP`], or
//! by the connection) is refused as a whole rather than half believed.

use std::collections::{BTreeSet, HashSet};

use crate::config::BackupSet;
use crate::jobs::runner::ExecOutput;
use crate::sanitize;

mod glob;
pub use glob::glob_match;

pub use crate::model::backup::{BackupStatus, FileEntry, Verdict};

/// Bytes of listing a host may send for one directory, about 40 a file: some 100,000
/// files. The host cuts its output there (`head -c`), which cuts the end marker off too,
/// so a longer listing is reported as incomplete instead of silently shortened. Kept
/// under the SSH exec's own 8 MiB fence.
pub const LISTING_CAP: usize = 4 * 1024 * 1024;

/// How far in the host's future a file's time may be and still count as "now": a file
/// finished while the directory was listed, or a network filesystem a little ahead.
pub const FUTURE_TOLERANCE_SECS: i64 = 300;

/// One directory listed on the host: its clock, and its regular files.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Listing {
    /// The host's `date +%s` when it listed the directory.
    pub host_now: i64,
    pub files: Vec<FileEntry>,
    /// Names that were not valid UTF-8 on the host, as they appear in `files` (with
    /// U+FFFD): shown and counted, never passed back to the host to delete, since the
    /// name opsdeck has is not the file's.
    pub inexact: BTreeSet<String>,
}

/// Why a directory has no listing opsdeck can trust.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ListError {
    #[error("directory {dir} does not exist")]
    Missing { dir: String },
    #[error("directory {dir} does not exist (it is a symbolic link to nothing)")]
    Dangling { dir: String },
    #[error("{dir} is not a directory")]
    NotDir { dir: String },
    #[error("directory {dir:?} cannot be passed to the host's shell (a NUL byte?)")]
    Unquotable { dir: String },
    #[error(
        "the listing of {dir} is incomplete (cut off after {bytes} bytes; more than about 100,000 files?), so it is not trusted"
    )]
    Truncated { dir: String, bytes: usize },
    #[error("cannot list {dir}: {detail}")]
    Failed { dir: String, detail: String },
    #[error("cannot list {dir}: the host's clock could not be read (`date +%s`)")]
    Clock { dir: String },
    #[error("cannot list {dir}: unexpected output from the host ({what})")]
    Garbled { dir: String, what: String },
}

impl ListError {
    /// A directory that is not there holds no backups: the set is missing, which is as bad
    /// as it gets. Anything else leaves the verdict unknown.
    pub fn verdict(&self) -> Verdict {
        match self {
            ListError::Missing { .. } | ListError::Dangling { .. } | ListError::NotDir { .. } => {
                Verdict::Missing
            }
            _ => Verdict::Unknown,
        }
    }
}

/// The directory as the remote shell should see it: `~/x` relative to the home directory
/// an exec starts in, anything else as written.
pub fn remote_dir(dir: &str) -> &str {
    match dir.strip_prefix("~/") {
        Some(rest) if !rest.trim_start_matches('/').is_empty() => rest,
        Some(_) => ".",
        None if dir == "~" => ".",
        None => dir,
    }
}

/// [`remote_dir`] made safe as a command argument and from `CDPATH`: a relative path gets
/// `./` in front, so it never starts with `-` and `cd` never searches for it.
pub fn remote_dir_arg(dir: &str) -> String {
    let d = remote_dir(dir);
    if d.starts_with('/') || d.starts_with("./") {
        d.to_string()
    } else {
        format!("./{d}")
    }
}

/// The host side of a listing: the clock, then the directory's state or its regular
/// files (`find -H` follows the directory itself when it is a symbolic link, not the links
/// in it; `-mindepth 1` leaves the directory itself out), then find's status; all of it
/// cut at [`LISTING_CAP`] bytes.
const LIST_SCRIPT: &str = r#"d=$1
{
    printf 'now %s\0' "$(date +%s)"
    if [ -d "$d" ]; then
        find -H "$d" -mindepth 1 -maxdepth 1 -type f -printf 'f %T@ %s %f\0'
        printf 'end %s\0' "$?"
    elif [ -L "$d" ]; then
        printf 'dangling\0'
    elif [ -e "$d" ]; then
        printf 'notdir\0'
    else
        printf 'missing\0'
    fi
} | head -c __CAP__"#;

/// The remote command listing one directory; `None` when the directory cannot be quoted
/// for the host's shell (never a fallback to some other directory).
pub fn list_command(dir: &str) -> Option<String> {
    sh_command(
        &LIST_SCRIPT.replace("__CAP__", &LISTING_CAP.to_string()),
        dir,
    )
}

/// `sh -c SCRIPT sh DIR`, every word quoted.
fn sh_command(script: &str, dir: &str) -> Option<String> {
    let words = ["sh", "-c", script, "sh", &remote_dir_arg(dir)]
        .map(|w| shlex::try_quote(w).ok().map(|q| q.into_owned()));
    words
        .into_iter()
        .collect::<Option<Vec<String>>>()
        .map(|w| w.join(" "))
}

/// Reads what [`list_command`] printed. Never panics, whatever the bytes: anything that is
/// not exactly the expected records is an error, and a listing without its end marker is
/// [`ListError::Truncated`].
pub fn parse_listing(dir: &str, out: &[u8]) -> Result<Listing, ListError> {
    let garbled = |what: &str| ListError::Garbled {
        dir: dir.to_string(),
        what: what.to_string(),
    };
    let truncated = || ListError::Truncated {
        dir: dir.to_string(),
        bytes: out.len(),
    };
    // After the last NUL comes nothing; a record without its NUL was cut.
    let mut complete: Vec<&[u8]> = out.split(|&b| b == 0).collect();
    let tail = complete.pop().unwrap_or_default();
    if !tail.is_empty() {
        return Err(truncated());
    }
    let mut complete = complete.into_iter();
    let host_now = match complete.next() {
        None => return Err(truncated()),
        Some(rec) => {
            let rec = rec
                .strip_prefix(b"now ")
                .ok_or_else(|| garbled("no clock"))?;
            if rec.is_empty() {
                return Err(ListError::Clock {
                    dir: dir.to_string(),
                });
            }
            std::str::from_utf8(rec)
                .ok()
                .and_then(parse_int)
                .ok_or_else(|| garbled("the clock is not a number"))?
        }
    };
    let mut listing = Listing {
        host_now,
        ..Listing::default()
    };
    let mut ended = false;
    let mut seen: HashSet<&[u8]> = HashSet::new();
    for (i, rec) in complete.enumerate() {
        if ended {
            return Err(garbled("records after the end"));
        }
        match rec {
            b"missing" | b"dangling" | b"notdir" if i == 0 => {
                let dir = dir.to_string();
                return Err(match rec {
                    b"missing" => ListError::Missing { dir },
                    b"dangling" => ListError::Dangling { dir },
                    _ => ListError::NotDir { dir },
                });
            }
            _ => {}
        }
        if let Some(status) = rec.strip_prefix(b"end ") {
            match status {
                b"0" => ended = true,
                _ if std::str::from_utf8(status).is_ok_and(|s| parse_int(s).is_some()) => {
                    // find said why on stderr; the caller has it.
                    return Err(ListError::Failed {
                        dir: dir.to_string(),
                        detail: String::new(),
                    });
                }
                _ => return Err(garbled("a bad end marker")),
            }
            continue;
        }
        let (file, raw_name) =
            parse_file(rec).ok_or_else(|| garbled("a file record that does not parse"))?;
        // find lists a name once; a host that says otherwise is not listing a directory.
        if !seen.insert(raw_name) {
            return Err(garbled("a file listed twice"));
        }
        if std::str::from_utf8(raw_name).is_err() {
            listing.inexact.insert(file.name.clone());
        }
        listing.files.push(file);
    }
    if !ended {
        return Err(truncated());
    }
    Ok(listing)
}

/// `f MTIME SIZE NAME`: MTIME as find's `%T@` (seconds, a fraction), SIZE in bytes, NAME
/// whatever bytes but `/` (and NUL); the entry, and the name's bytes as the host sent them.
fn parse_file(rec: &[u8]) -> Option<(FileEntry, &[u8])> {
    let rest = rec.strip_prefix(b"f ")?;
    let mut parts = rest.splitn(3, |&b| b == b' ');
    let mtime = std::str::from_utf8(parts.next()?).ok()?;
    let size = std::str::from_utf8(parts.next()?).ok()?;
    let name = parts.next()?;
    let (secs, frac) = mtime.split_once('.').unwrap_or((mtime, "0"));
    if frac.is_empty() || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mtime = parse_int(secs)?;
    let size: u64 = size
        .bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| size.parse().ok())??;
    if name.is_empty() || name == b"." || name == b".." || name.contains(&b'/') {
        return None;
    }
    let entry = FileEntry {
        name: String::from_utf8_lossy(name).into_owned(),
        mtime,
        size,
    };
    Some((entry, name))
}

/// A decimal integer as `date` and find print them: an optional `-`, then digits.
fn parse_int(s: &str) -> Option<i64> {
    let digits = s.strip_prefix('-').unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// The listing of `dir` from the exec that ran [`list_command`]: its stdout, with find's
/// complaint from stderr when find failed.
pub fn read_listing(dir: &str, out: &ExecOutput) -> Result<Listing, ListError> {
    match parse_listing(dir, &out.stdout) {
        Err(ListError::Failed { dir, .. }) => Err(ListError::Failed {
            dir,
            detail: first_line(&out.stderr, "find failed"),
        }),
        // Nothing at all: the shell itself failed, and said why on stderr.
        Err(ListError::Truncated { dir, .. }) if out.stdout.is_empty() => Err(ListError::Failed {
            dir,
            detail: first_line(&out.stderr, "the host printed nothing"),
        }),
        other => other,
    }
}

/// The first non-empty line of a host's stderr, fit for a terminal and not endless.
fn first_line(stderr: &[u8], otherwise: &str) -> String {
    let text = String::from_utf8_lossy(stderr);
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or(otherwise);
    let clean = sanitize::line(line);
    clean.chars().take(300).collect()
}

/// Whether a file is one opsdeck is still writing: `.<set>.partial`, never a backup
/// whatever the glob says (a glob may start with `.`).
pub fn is_partial(name: &str) -> bool {
    name.starts_with('.') && name.ends_with(".partial")
}

/// Whether `name` is one of the set's backups: the glob matches and it is not a file
/// being written.
pub fn counts(glob: &str, name: &str) -> bool {
    !is_partial(name) && glob_match(glob, name)
}

/// What taking this set's backup means, for a confirmation an operator can check.
pub fn recipe(set: &BackupSet) -> Option<String> {
    if let Some(p) = &set.pg_dump {
        let format = match p.format {
            crate::config::DumpFormat::Custom => "custom format",
            crate::config::DumpFormat::SqlGzip => "plain SQL, gzipped",
        };
        return Some(format!(
            "pg_dump of database {} as {} in service {} ({format}) into {}",
            p.database, p.user, p.service, set.dir
        ));
    }
    set.file_copy.as_ref().map(|f| {
        let quiesce = f
            .quiesce
            .as_ref()
            .map(|q| format!(", after `{q}`"))
            .unwrap_or_default();
        format!("copy of {}{quiesce} into {}", f.source, set.dir)
    })
}

/// Newest first; equal times by name, so the verdict does not flicker.
pub fn newest_first(files: &mut [&FileEntry]) {
    files.sort_by(|a, b| b.mtime.cmp(&a.mtime).then(b.name.cmp(&a.name)));
}

/// Whether a file's time is past the host's "now" by more than the tolerance: its age is
/// unknown, so it neither makes a set fresh nor ranks as its newest file.
pub fn in_the_future(f: &FileEntry, host_now: i64) -> bool {
    f.mtime.saturating_sub(host_now) > FUTURE_TOLERANCE_SECS
}

/// The verdict for a set, from its directory's listing. Ages come from the host's clock
/// alone; `local_now` (this machine's) only places the newest file's time on this
/// machine's clock for display (see [`BackupStatus::newest`]).
pub fn evaluate(
    host: usize,
    stack: &str,
    set: &BackupSet,
    listing: Result<&Listing, &ListError>,
    local_now: i64,
) -> BackupStatus {
    let max_age_secs = i64::try_from(set.max_age.as_duration().as_secs()).unwrap_or(i64::MAX);
    let mut status = BackupStatus {
        host,
        stack: stack.to_string(),
        name: set.name.get_ref().clone(),
        dir: set.dir.clone(),
        newest: None,
        count: 0,
        total_bytes: 0,
        max_age_secs,
        verdict: Verdict::Unknown,
        error: None,
        recipe: recipe(set),
    };
    let listing = match listing {
        Ok(listing) => listing,
        Err(e) => {
            status.verdict = e.verdict();
            status.error = Some(sanitize::line(&e.to_string()).into_owned());
            return status;
        }
    };
    let host_now = listing.host_now;
    let mut matching: Vec<&FileEntry> = listing
        .files
        .iter()
        .filter(|f| counts(set.glob.get_ref(), &f.name))
        .collect();
    newest_first(&mut matching);
    status.count = matching.len();
    status.total_bytes = matching
        .iter()
        .fold(0u64, |sum, f| sum.saturating_add(f.size));
    let (future, dated): (Vec<&FileEntry>, Vec<&FileEntry>) =
        matching.iter().partition(|f| in_the_future(f, host_now));
    let offset = local_now.saturating_sub(host_now);
    status.newest = dated.first().map(|f| FileEntry {
        mtime: f.mtime.saturating_add(offset),
        ..(*f).clone()
    });
    let mut verdict = match (dated.first(), dated.get(1)) {
        (None, _) => Verdict::Missing,
        (Some(newest), _) if newest.size == 0 => Verdict::Suspicious,
        (Some(newest), Some(prev)) if newest.size.saturating_mul(2) < prev.size => {
            Verdict::Suspicious
        }
        (Some(newest), _) if host_now.saturating_sub(newest.mtime) > max_age_secs => Verdict::Stale,
        _ => Verdict::Fresh,
    };
    if let Some(furthest) = future.first() {
        let ahead = short_age(furthest.mtime.saturating_sub(host_now));
        let name = sanitize::line(&furthest.name);
        status.error = Some(if future.len() == 1 {
            format!("{name} is dated {ahead} in the future of the host's clock: its age is unknown")
        } else {
            format!(
                "{} files are dated in the future of the host's clock ({name} by {ahead}): their age is unknown",
                future.len()
            )
        });
        // A stale set stays stale; otherwise the files with an unknown age are the news.
        if matches!(verdict, Verdict::Fresh | Verdict::Missing) {
            verdict = Verdict::Suspicious;
        }
    }
    status.verdict = verdict;
    status
}

/// `90s`, `5m`, `3h`, `2d`: for messages (the UI has its own).
fn short_age(secs: i64) -> String {
    match secs.max(0) {
        s @ 0..=119 => format!("{s}s"),
        s @ 120..=7199 => format!("{}m", s / 60),
        s @ 7200..=172_799 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

/// `~/backups` and friends: the distinct directories of a host's sets, each listed once.
pub fn directories<'a>(sets: impl Iterator<Item = &'a BackupSet>) -> Vec<String> {
    let mut dirs: Vec<String> = sets.map(|s| s.dir.clone()).collect();
    dirs.sort();
    dirs.dedup();
    dirs
}

/// For the inventory's own validation: a glob must have exactly one `*` for opsdeck to
/// name new dumps after it (`lila-*.sql.gz` → `lila-20261123-031500.sql.gz`).
pub fn name_for(glob: &str, stamp: &str) -> Option<String> {
    (glob.matches('*').count() == 1 && !glob.contains(['?', '[', '\\']))
        .then(|| glob.replacen('*', stamp, 1))
}

/// One listed backup set, with the stack it belongs to.
pub type SetRef = (String, BackupSet);

/// Lists `dir` on the host.
pub async fn list<R: crate::jobs::Runner>(dir: &str, runner: &R) -> Result<Listing, ListError> {
    let Some(cmd) = list_command(dir) else {
        return Err(ListError::Unquotable {
            dir: dir.to_string(),
        });
    };
    match runner.run(&cmd).await {
        Ok(out) => read_listing(dir, &out),
        Err(e) => Err(ListError::Failed {
            dir: dir.to_string(),
            detail: sanitize::line(&e.to_string()).into_owned(),
        }),
    }
}

/// Lists every directory of `sets` once on the host and evaluates each set. A directory
/// that cannot be listed gives `Unknown` with the reason, one that does not exist
/// `Missing`. `now_secs` is this machine's clock (see [`evaluate`]).
pub async fn survey<R: crate::jobs::Runner>(
    host: usize,
    sets: &[SetRef],
    now_secs: i64,
    runner: &R,
) -> Vec<BackupStatus> {
    let mut listings: Vec<(String, Result<Listing, ListError>)> = Vec::new();
    for dir in directories(sets.iter().map(|(_, s)| s)) {
        let listing = list(&dir, runner).await;
        listings.push((dir, listing));
    }
    sets.iter()
        .map(|(stack, set)| {
            let listing = listings.iter().find(|(d, _)| *d == set.dir).map(|(_, l)| l);
            match listing {
                Some(l) => evaluate(host, stack, set, l.as_ref(), now_secs),
                None => evaluate(
                    host,
                    stack,
                    set,
                    Err(&ListError::Failed {
                        dir: set.dir.clone(),
                        detail: "not listed".into(),
                    }),
                    now_secs,
                ),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_str;
    use crate::jobs::{Local, RunError, Runner};
    use std::path::Path;

    fn set_in(dir: &str, glob: &str, max_age: &str) -> BackupSet {
        let text = format!(
            "[[host]]\nname = \"h\"\n[[host.stack]]\nname = \"s\"\ndir = \"~/x\"\n[[host.stack.backup]]\nname = \"db\"\ndir = \"{dir}\"\nglob = \"{glob}\"\nmax_age = \"{max_age}\"\n"
        );
        let mut inv = parse_str(&text, Path::new("t.toml")).unwrap();
        inv.hosts.remove(0).stacks.remove(0).backups.remove(0)
    }

    fn set(glob: &str, max_age: &str) -> BackupSet {
        set_in("~/backups", glob, max_age)
    }

    fn f(name: &str, age_h: i64, size: u64) -> FileEntry {
        FileEntry {
            name: name.into(),
            mtime: 1_000_000 - age_h * 3600,
            size,
        }
    }

    fn listing(host_now: i64, files: &[FileEntry]) -> Listing {
        Listing {
            host_now,
            files: files.to_vec(),
            inexact: BTreeSet::new(),
        }
    }

    #[test]
    fn a_glob_starting_with_a_dot_never_counts_partial_files() {
        assert!(glob_match(".*", ".db.partial"), "the glob alone would");
        for glob in [".*", ".*.partial", ".db*", ".?b.partial"] {
            assert!(!counts(glob, ".db.partial"), "{glob}");
        }
        assert!(counts(".db-*", ".db-1.dump"));
        assert!(
            counts("*.partial", "x.partial"),
            "only hidden .partial files"
        );
        let s = set(".*", "1d");
        let files = [f(".db.partial", 0, 10), f(".db-1", 30, 10)];
        let st = evaluate(0, "s", &s, Ok(&listing(1_000_000, &files)), 1_000_000);
        assert_eq!((st.verdict, st.count), (Verdict::Stale, 1));
        assert_eq!(st.newest.unwrap().name, ".db-1");
    }

    fn rec(parts: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for p in parts {
            out.extend_from_slice(p);
            out.push(0);
        }
        out
    }

    #[test]
    fn listing_survives_odd_names_and_refuses_garbage() {
        let out = rec(&[
            b"now 1700000500",
            b"f 1700000000.5000000000 42 lila-1.sql.gz",
            b"f 1700000100.0000000000 7 name with\ttab and\nnewline",
            b"f 1700000200.0000000000 9 bad-\xff-utf8",
            b"f -5.0000000000 0 1969",
            b"end 0",
        ]);
        let l = parse_listing("~/b", &out).unwrap();
        assert_eq!(l.host_now, 1_700_000_500);
        assert_eq!(
            l.files[0],
            FileEntry {
                name: "lila-1.sql.gz".into(),
                mtime: 1_700_000_000,
                size: 42
            }
        );
        assert_eq!(l.files[1].name, "name with\ttab and\nnewline");
        assert_eq!(l.files[2].name, "bad-\u{fffd}-utf8");
        assert!(l.inexact.contains("bad-\u{fffd}-utf8") && l.inexact.len() == 1);
        assert_eq!(l.files[3].mtime, -5);
        let empty = parse_listing("~/b", &rec(&[b"now 5", b"end 0"])).unwrap();
        assert!(empty.files.is_empty());

        let err = |parts: &[&[u8]]| parse_listing("~/b", &rec(parts)).unwrap_err();
        assert!(matches!(
            err(&[b"now 5", b"missing"]),
            ListError::Missing { .. }
        ));
        assert!(matches!(
            err(&[b"now 5", b"dangling"]),
            ListError::Dangling { .. }
        ));
        assert!(matches!(
            err(&[b"now 5", b"notdir"]),
            ListError::NotDir { .. }
        ));
        assert!(matches!(err(&[b"now ", b"end 0"]), ListError::Clock { .. }));
        assert!(matches!(
            err(&[b"now 5", b"end 1"]),
            ListError::Failed { .. }
        ));
        for garbage in [
            &[b"garbage".as_slice(), b"end 0"][..],
            &[b"now 5", b"f 1.0 x name", b"end 0"],
            &[b"now 5", b"f 1e9.0 1 name", b"end 0"],
            &[b"now 5", b"f 1.0 1 a/b", b"end 0"],
            &[b"now 5", b"f 1.0 1 ", b"end 0"],
            &[b"now 5", b"end 0", b"f 1.0 1 late"],
            &[b"now 5", b"f 1.0 1 a", b"missing", b"end 0"],
            &[b"now 5", b"f 1.0 1 a", b"f 2.0 2 a", b"end 0"],
            &[b"now 99999999999999999999", b"end 0"],
        ] {
            assert!(
                matches!(err(garbage), ListError::Garbled { .. }),
                "{garbage:?}: {:?}",
                err(garbage)
            );
        }
        // No end marker, or a record cut in the middle: incomplete, never trusted.
        assert!(matches!(
            err(&[b"now 5", b"f 1.0 1 a"]),
            ListError::Truncated { .. }
        ));
        let mut cut = rec(&[b"now 5", b"f 1.0 1 a"]);
        cut.extend_from_slice(b"f 2.0 1 b");
        assert!(matches!(
            parse_listing("~/b", &cut),
            Err(ListError::Truncated { .. })
        ));
        assert!(matches!(
            parse_listing("~/b", b""),
            Err(ListError::Truncated { .. })
        ));
    }

    #[test]
    fn verdicts() {
        let now = 1_000_000;
        let s = set("db-*.dump", "26h");
        let fresh = [
            f("db-2.dump", 3, 1000),
            f("db-1.dump", 27, 900),
            f("other.txt", 0, 5),
        ];
        let st = evaluate(0, "s", &s, Ok(&listing(now, &fresh)), now);
        assert_eq!(
            (st.verdict, st.count, st.total_bytes),
            (Verdict::Fresh, 2, 1900)
        );
        assert_eq!(st.newest.as_ref().unwrap().name, "db-2.dump");
        assert_eq!(st.newest_age(now), Some(3 * 3600));
        assert_eq!(st.error, None);
        let verdict =
            |files: &[FileEntry]| evaluate(0, "s", &s, Ok(&listing(now, files)), now).verdict;
        assert_eq!(verdict(&[f("db-2.dump", 30, 1000)]), Verdict::Stale);
        assert_eq!(verdict(&[]), Verdict::Missing);
        let shrunk = [f("db-2.dump", 1, 400), f("db-1.dump", 25, 1000)];
        assert_eq!(verdict(&shrunk), Verdict::Suspicious);
        assert_eq!(verdict(&[f("db-2.dump", 1, 0)]), Verdict::Suspicious);
        let err = evaluate(
            0,
            "s",
            &s,
            Err(&ListError::Failed {
                dir: "~/backups".into(),
                detail: "find: 'backups': Permission denied".into(),
            }),
            now,
        );
        assert_eq!(err.verdict, Verdict::Unknown);
        assert!(err.error.unwrap().contains("Permission denied"));
    }

    #[test]
    fn a_missing_directory_is_a_missing_set_with_the_reason() {
        let s = set("db-*.dump", "26h");
        for (e, why) in [
            (
                ListError::Missing {
                    dir: "~/backups".into(),
                },
                "directory ~/backups does not exist",
            ),
            (
                ListError::Dangling {
                    dir: "~/backups".into(),
                },
                "directory ~/backups does not exist (it is a symbolic link to nothing)",
            ),
            (
                ListError::NotDir {
                    dir: "~/backups".into(),
                },
                "~/backups is not a directory",
            ),
        ] {
            let st = evaluate(0, "s", &s, Err(&e), 0);
            assert_eq!(st.verdict, Verdict::Missing);
            assert_eq!(st.error.as_deref(), Some(why));
        }
    }

    #[test]
    fn ages_come_from_the_hosts_clock_whatever_the_skew() {
        let s = set("db-*.dump", "26h");
        let local_now = 1_000_000;
        for skew in [-3 * 86_400, -90, 0, 3600, 40 * 86_400] {
            // The host wrote its files 3 h and 27 h ago by its own clock.
            let files = [f("db-2.dump", 3, 1000), f("db-1.dump", 27, 900)].map(|mut f| {
                f.mtime += skew;
                f
            });
            let st = evaluate(
                0,
                "s",
                &s,
                Ok(&listing(local_now + skew, &files)),
                local_now,
            );
            assert_eq!(st.verdict, Verdict::Fresh, "skew {skew}");
            assert_eq!(st.newest_age(local_now), Some(3 * 3600), "skew {skew}");
            assert_eq!(st.newest_age(local_now + 60), Some(3 * 3600 + 60));
            let old = [f("db-1.dump", 27, 900)].map(|mut f| {
                f.mtime += skew;
                f
            });
            let st = evaluate(0, "s", &s, Ok(&listing(local_now + skew, &old)), local_now);
            assert_eq!(st.verdict, Verdict::Stale, "skew {skew}");
        }
    }

    #[test]
    fn a_file_from_the_future_never_makes_a_set_fresh() {
        let now = 1_000_000;
        let s = set("db-*.dump", "26h");
        let eval = |files: &[FileEntry]| evaluate(0, "s", &s, Ok(&listing(now, files)), now);
        // Alone: suspicious, with the reason; no newest file, no age.
        let st = eval(&[f("db-9.dump", -30 * 24, 1000)]);
        assert_eq!(st.verdict, Verdict::Suspicious);
        assert_eq!(st.newest, None);
        assert_eq!(st.count, 1);
        assert_eq!(
            st.error.as_deref(),
            Some("db-9.dump is dated 30d in the future of the host's clock: its age is unknown")
        );
        // Beside an old dump: the set is stale, as the old dump says.
        let st = eval(&[f("db-9.dump", -2, 1000), f("db-1.dump", 40, 1000)]);
        assert_eq!(st.verdict, Verdict::Stale);
        assert_eq!(st.newest.as_ref().unwrap().name, "db-1.dump");
        assert!(
            st.error
                .unwrap()
                .contains("db-9.dump is dated 2h in the future")
        );
        // Beside a fresh dump: suspicious, not fresh.
        let st = eval(&[
            f("db-9.dump", -2, 1000),
            f("db-8.dump", -3, 1000),
            f("db-1.dump", 1, 1000),
        ]);
        assert_eq!(st.verdict, Verdict::Suspicious);
        assert!(
            st.error.unwrap().starts_with(
                "2 files are dated in the future of the host's clock (db-8.dump by 3h)"
            )
        );
        // A few seconds ahead is just a file finished while the directory was listed.
        let mut just_now = f("db-2.dump", 0, 1000);
        just_now.mtime += 30;
        let st = eval(&[just_now]);
        assert_eq!((st.verdict, st.error), (Verdict::Fresh, None));
        // Control characters in a name never reach the reason.
        let st = eval(&[f("db-\u{1b}]52;c;x\u{7}.dump", -48, 1)]);
        assert!(!st.error.unwrap().contains('\u{1b}'));
    }

    #[test]
    fn commands_quote_the_directory() {
        assert_eq!(remote_dir("~/backups"), "backups");
        assert_eq!(remote_dir("/srv/b"), "/srv/b");
        assert_eq!(remote_dir("~"), ".");
        assert_eq!(remote_dir("~/"), ".");
        assert_eq!(remote_dir_arg("~/-rf"), "./-rf");
        assert_eq!(remote_dir_arg("rel"), "./rel");
        assert_eq!(remote_dir_arg("/srv/b"), "/srv/b");
        assert_eq!(remote_dir_arg("~"), "./.");
        let cmd = list_command("~/my backups").unwrap();
        assert!(cmd.ends_with(" sh './my backups'"), "{cmd}");
        assert_eq!(
            name_for("lila-*.sql.gz", "20261123-031500").as_deref(),
            Some("lila-20261123-031500.sql.gz")
        );
        assert_eq!(name_for("a-*-*.gz", "x"), None);
    }

    /// Records every command; answers none.
    #[derive(Default)]
    struct Refuse(std::sync::Mutex<Vec<String>>);

    impl Runner for Refuse {
        async fn run(&self, command: &str) -> Result<ExecOutput, RunError> {
            self.0.lock().unwrap().push(command.to_string());
            Err(RunError::Spawn("not here".into()))
        }

        async fn start(&self, command: &str) -> Result<crate::jobs::runner::Process, RunError> {
            self.0.lock().unwrap().push(command.to_string());
            Err(RunError::Spawn("not here".into()))
        }
    }

    #[tokio::test]
    async fn an_unquotable_directory_is_refused_never_replaced_by_the_home_directory() {
        assert_eq!(list_command("~/back\0ups"), None);
        let runner = Refuse::default();
        let s = set_in("~/back\\u0000ups", "db-*.dump", "1d");
        assert_eq!(s.dir, "~/back\0ups");
        let st = survey(0, &[("s".into(), s)], 0, &runner).await;
        assert!(runner.0.lock().unwrap().is_empty(), "nothing ran");
        assert_eq!(st[0].verdict, Verdict::Unknown);
        let why = st[0].error.as_deref().unwrap();
        assert!(
            why.contains("cannot be passed to the host's shell") && why.contains("\\0"),
            "{why}"
        );
    }

    /// Files in `dir`, each `(name, age in seconds, bytes)`.
    fn put(dir: &Path, files: &[(&str, u64, usize)]) {
        std::fs::create_dir_all(dir).unwrap();
        for (name, age, size) in files {
            let p = dir.join(name);
            std::fs::write(&p, vec![b'x'; *size]).unwrap();
            let t = std::time::SystemTime::now() - std::time::Duration::from_secs(*age);
            std::fs::File::options()
                .write(true)
                .open(&p)
                .unwrap()
                .set_modified(t)
                .unwrap();
        }
    }

    #[tokio::test]
    async fn lists_for_real_through_sh_and_find() {
        let home = tempfile::tempdir().unwrap();
        let local = Local {
            home: Some(home.path().to_path_buf()),
        };
        let real = home.path().join("real");
        put(
            &real,
            &[
                ("db-1.dump", 7200, 10),
                ("odd\nname\t.dump", 60, 3),
                ("-rf", 0, 1),
            ],
        );
        std::fs::create_dir(real.join("subdir")).unwrap();
        std::os::unix::fs::symlink(real.join("db-1.dump"), real.join("link.dump")).unwrap();
        std::os::unix::fs::symlink(&real, home.path().join("linked")).unwrap();
        std::os::unix::fs::symlink(home.path().join("nowhere"), home.path().join("dangling"))
            .unwrap();
        std::fs::write(home.path().join("plain"), b"x").unwrap();

        let now = jiff::Timestamp::now().as_second();
        for dir in [
            "~/real",
            "~/linked",
            "~/linked/",
            &real.display().to_string(),
        ] {
            let l = list(dir, &local).await.unwrap();
            let mut names: Vec<&str> = l.files.iter().map(|f| f.name.as_str()).collect();
            names.sort();
            assert_eq!(names, ["-rf", "db-1.dump", "odd\nname\t.dump"], "{dir}");
            assert!((l.host_now - now).abs() < 60);
            let db = l.files.iter().find(|f| f.name == "db-1.dump").unwrap();
            assert!((l.host_now - db.mtime - 7200).abs() < 60);
            assert_eq!(db.size, 10);
        }
        assert!(matches!(
            list("~/nothing", &local).await,
            Err(ListError::Missing { .. })
        ));
        assert!(matches!(
            list("~/dangling", &local).await,
            Err(ListError::Dangling { .. })
        ));
        assert!(matches!(
            list("~/plain", &local).await,
            Err(ListError::NotDir { .. })
        ));
    }

    #[tokio::test]
    async fn a_listing_over_the_cap_is_incomplete_not_shorter() {
        let home = tempfile::tempdir().unwrap();
        let dir = home.path().join("b");
        let names: Vec<String> = (0..40).map(|i| format!("db-{i:04}.dump")).collect();
        let files: Vec<(&str, u64, usize)> = names.iter().map(|n| (n.as_str(), 60, 1)).collect();
        put(&dir, &files);
        let local = Local {
            home: Some(home.path().to_path_buf()),
        };
        // The real script with a small cap: 40 records of ~40 bytes do not fit in 600.
        let script = LIST_SCRIPT.replace("__CAP__", "600");
        let cmd = sh_command(&script, "~/b").unwrap();
        let out = local.run(&cmd).await.unwrap();
        assert_eq!(out.stdout.len(), 600);
        assert!(matches!(
            read_listing("~/b", &out),
            Err(ListError::Truncated { bytes: 600, .. })
        ));
        let full = list("~/b", &local).await.unwrap();
        assert_eq!(full.files.len(), 40);
        let st = evaluate(
            0,
            "s",
            &set_in("~/b", "db-*.dump", "1d"),
            read_listing("~/b", &out).as_ref(),
            0,
        );
        assert_eq!(st.verdict, Verdict::Unknown);
        assert!(st.error.unwrap().contains("incomplete"));
    }

    #[tokio::test]
    async fn find_failing_says_why() {
        // find's status and message, as an unreadable directory gives them (root reads
        // anything, so the failure is staged).
        let out = ExecOutput {
            status: Some(0),
            stdout: rec(&[b"now 5", b"end 1"]),
            stderr: b"find: './b': Permission denied\x1b[2J\n".to_vec(),
        };
        let e = read_listing("~/b", &out).unwrap_err();
        assert_eq!(
            e.to_string(),
            "cannot list ~/b: find: './b': Permission denied"
        );
    }
}
