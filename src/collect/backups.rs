//! Backup sets: what is in a backup directory on the host, and whether to trust it.
//!
//! The directory is listed by one `find` (names, sizes and times, NUL-separated so odd
//! file names survive) and the set's glob is matched here, not by a remote shell: a glob
//! in the inventory is never expanded on the host.

use serde::Serialize;

use crate::config::BackupSet;

/// One regular file in a backup directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    pub name: String,
    /// Modification time, seconds since the epoch.
    pub mtime: i64,
    pub size: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Fresh,
    /// The newest file is older than the set's `max_age`.
    Stale,
    /// No file matches.
    Missing,
    /// The newest file is empty, or less than half the size of the one before it.
    Suspicious,
    /// The directory could not be listed.
    Unknown,
}

impl Verdict {
    /// Worst first, for the fleet's "worst backup" column and sorting.
    pub fn severity(self) -> u8 {
        match self {
            Verdict::Fresh => 0,
            Verdict::Suspicious => 2,
            Verdict::Stale => 3,
            Verdict::Unknown => 1,
            Verdict::Missing => 4,
        }
    }
}

/// A backup set as the console shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct BackupStatus {
    pub host: usize,
    pub stack: String,
    pub name: String,
    pub dir: String,
    pub newest: Option<FileEntry>,
    pub count: usize,
    pub total_bytes: u64,
    pub max_age_secs: i64,
    pub verdict: Verdict,
    /// Why the directory could not be listed, when it could not.
    pub error: Option<String>,
    /// What `b` would run, in words; `None` for a set opsdeck only watches.
    pub recipe: Option<String>,
}

impl BackupStatus {
    pub fn newest_age(&self, now_secs: i64) -> Option<i64> {
        self.newest.as_ref().map(|f| (now_secs - f.mtime).max(0))
    }
}

/// The directory as the remote shell should see it: `~/x` relative to the home directory
/// an exec starts in, anything else as written.
pub fn remote_dir(dir: &str) -> &str {
    match dir.strip_prefix("~/") {
        Some(rest) if !rest.is_empty() => rest,
        _ if dir == "~" => ".",
        _ => dir,
    }
}

/// The remote command listing one directory: GNU find, one record per regular file,
/// `mtime<TAB>size<TAB>name<NUL>`. The directory travels as a quoted argument.
pub fn list_command(dir: &str) -> String {
    let quoted =
        shlex::try_quote(remote_dir(dir)).map_or_else(|_| "'.'".into(), |q| q.into_owned());
    format!("find {quoted} -maxdepth 1 -type f -printf '%T@\\t%s\\t%f\\0'")
}

/// Parses `list_command` output; records that do not parse are skipped, never a panic.
pub fn parse_listing(out: &str) -> Vec<FileEntry> {
    out.split('\0')
        .filter_map(|rec| {
            let rec = rec.trim_start_matches('\n');
            let mut parts = rec.splitn(3, '\t');
            let mtime: f64 = parts.next()?.parse().ok()?;
            let size: u64 = parts.next()?.parse().ok()?;
            let name = parts.next()?.to_string();
            (!name.is_empty() && mtime.is_finite()).then_some(FileEntry {
                name,
                mtime: mtime as i64,
                size,
            })
        })
        .collect()
}

/// Shell-style glob on one file name: `*`, `?` and `[...]` classes (with `!` or `^`
/// negation and ranges). A leading `.` must be matched literally, as in the shell, so
/// `.<set>.partial` files being written never count as backups.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    if name.starts_with('.') && !pattern.starts_with('.') {
        return false;
    }
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    glob_at(&p, &n)
}

fn glob_at(p: &[char], n: &[char]) -> bool {
    // Iterative matcher with one backtrack point for the last `*`: linear-ish, no blow-up.
    let (mut pi, mut ni) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() {
            match p[pi] {
                '*' => {
                    star = Some((pi, ni));
                    pi += 1;
                    continue;
                }
                '?' => {
                    pi += 1;
                    ni += 1;
                    continue;
                }
                '[' => {
                    if let Some((matched, next)) = class(&p[pi..], n[ni]) {
                        if matched {
                            pi += next;
                            ni += 1;
                            continue;
                        }
                    } else if n[ni] == '[' {
                        pi += 1;
                        ni += 1;
                        continue;
                    }
                }
                c if c == n[ni] => {
                    pi += 1;
                    ni += 1;
                    continue;
                }
                _ => {}
            }
        }
        match star {
            Some((sp, sn)) => {
                pi = sp + 1;
                ni = sn + 1;
                star = Some((sp, sn + 1));
            }
            None => return false,
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// `[...]` at the start of `p`: whether `c` is in it, and the class's length.
fn class(p: &[char], c: char) -> Option<(bool, usize)> {
    let mut i = 1;
    let negate = matches!(p.get(i), Some('!') | Some('^'));
    if negate {
        i += 1;
    }
    let mut hit = false;
    let mut first = true;
    while i < p.len() {
        if p[i] == ']' && !first {
            return Some((hit != negate, i + 1));
        }
        first = false;
        if p.get(i + 1) == Some(&'-') && p.get(i + 2).is_some_and(|&e| e != ']') {
            if p[i] <= c && c <= p[i + 2] {
                hit = true;
            }
            i += 3;
        } else {
            if p[i] == c {
                hit = true;
            }
            i += 1;
        }
    }
    None
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

/// The verdict for a set, from the files in its directory.
pub fn evaluate(
    host: usize,
    stack: &str,
    set: &BackupSet,
    listing: Result<&[FileEntry], &str>,
    now_secs: i64,
) -> BackupStatus {
    let max_age_secs = set.max_age.as_duration().as_secs() as i64;
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
    let files = match listing {
        Ok(files) => files,
        Err(e) => {
            status.error = Some(e.to_string());
            return status;
        }
    };
    let mut matching: Vec<&FileEntry> = files
        .iter()
        .filter(|f| glob_match(set.glob.get_ref(), &f.name))
        .collect();
    // Newest first; equal times by name, so the verdict does not flicker.
    matching.sort_by(|a, b| b.mtime.cmp(&a.mtime).then(b.name.cmp(&a.name)));
    status.count = matching.len();
    status.total_bytes = matching.iter().map(|f| f.size).sum();
    status.newest = matching.first().map(|f| (*f).clone());
    status.verdict = match (matching.first(), matching.get(1)) {
        (None, _) => Verdict::Missing,
        (Some(newest), _) if newest.size == 0 => Verdict::Suspicious,
        (Some(newest), Some(prev)) if newest.size.saturating_mul(2) < prev.size => {
            Verdict::Suspicious
        }
        (Some(newest), _) if now_secs - newest.mtime > max_age_secs => Verdict::Stale,
        _ => Verdict::Fresh,
    };
    status
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
    (glob.matches('*').count() == 1 && !glob.contains(['?', '[']))
        .then(|| glob.replacen('*', stamp, 1))
}

/// One listed backup set, with the stack it belongs to.
pub type SetRef = (String, BackupSet);

/// Lists every directory of `sets` once on the host and evaluates each set. A directory
/// that cannot be listed gives `Unknown` with the reason.
pub async fn survey<R: crate::jobs::Runner>(
    host: usize,
    sets: &[SetRef],
    now_secs: i64,
    runner: &R,
) -> Vec<BackupStatus> {
    let mut listings: Vec<(String, Result<Vec<FileEntry>, String>)> = Vec::new();
    for dir in directories(sets.iter().map(|(_, s)| s)) {
        let listing = match runner.run(&list_command(&dir)).await {
            Ok(out) if out.status == Some(0) => {
                Ok(parse_listing(&String::from_utf8_lossy(&out.stdout)))
            }
            Ok(out) => {
                let err = String::from_utf8_lossy(&out.stderr);
                let first = err.lines().next().unwrap_or("cannot list the directory");
                Err(first.trim().to_string())
            }
            Err(e) => Err(e.to_string()),
        };
        listings.push((dir, listing));
    }
    sets.iter()
        .map(|(stack, set)| {
            let listing = listings.iter().find(|(d, _)| *d == set.dir).map(|(_, l)| l);
            match listing {
                Some(Ok(files)) => evaluate(host, stack, set, Ok(files), now_secs),
                Some(Err(e)) => evaluate(host, stack, set, Err(e), now_secs),
                None => evaluate(host, stack, set, Err("not listed"), now_secs),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_str;
    use std::path::Path;

    fn set(glob: &str, max_age: &str) -> BackupSet {
        let text = format!(
            "[[host]]\nname = \"h\"\n[[host.stack]]\nname = \"s\"\ndir = \"~/x\"\n[[host.stack.backup]]\nname = \"db\"\ndir = \"~/backups\"\nglob = \"{glob}\"\nmax_age = \"{max_age}\"\n"
        );
        let mut inv = parse_str(&text, Path::new("t.toml")).unwrap();
        inv.hosts.remove(0).stacks.remove(0).backups.remove(0)
    }

    fn f(name: &str, age_h: i64, size: u64) -> FileEntry {
        FileEntry {
            name: name.into(),
            mtime: 1_000_000 - age_h * 3600,
            size,
        }
    }

    #[test]
    fn globs_like_the_shell() {
        assert!(glob_match("lila-*.sql.gz", "lila-20261123.sql.gz"));
        assert!(!glob_match("lila-*.sql.gz", "lila-20261123.sql"));
        assert!(glob_match("*.dump", "a.dump"));
        assert!(
            !glob_match("*.dump", ".lila.partial.dump"),
            "dot files need a literal dot"
        );
        assert!(glob_match("app-??.db", "app-01.db"));
        assert!(glob_match("app-[0-9]*.db", "app-2026.db"));
        assert!(!glob_match("app-[!0-9]*.db", "app-2026.db"));
        assert!(glob_match("a*b*c*d", "axxbyyczzd"));
        assert!(!glob_match("a*b*c*d", "axxbyyczz"));
        assert!(glob_match("x[", "x["));
        // Pathological patterns stay fast.
        let name = "a".repeat(200);
        assert!(!glob_match(&format!("{}b", "*a".repeat(30)), &name));
    }

    #[test]
    fn listing_survives_odd_names_and_garbage() {
        let out =
            "1700000000.5\t42\tlila-1.sql.gz\0\n1700000100.0\t7\tname with\ttab\0garbage\0\t\t\0";
        let files = parse_listing(out);
        assert_eq!(files.len(), 2);
        assert_eq!(
            files[0],
            FileEntry {
                name: "lila-1.sql.gz".into(),
                mtime: 1_700_000_000,
                size: 42
            }
        );
        assert_eq!(files[1].name, "name with\ttab");
        assert!(parse_listing("").is_empty());
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
        let st = evaluate(0, "s", &s, Ok(&fresh), now);
        assert_eq!(
            (st.verdict, st.count, st.total_bytes),
            (Verdict::Fresh, 2, 1900)
        );
        assert_eq!(st.newest.as_ref().unwrap().name, "db-2.dump");
        assert_eq!(st.newest_age(now), Some(3 * 3600));
        let stale = [f("db-2.dump", 30, 1000)];
        assert_eq!(
            evaluate(0, "s", &s, Ok(&stale), now).verdict,
            Verdict::Stale
        );
        assert_eq!(evaluate(0, "s", &s, Ok(&[]), now).verdict, Verdict::Missing);
        let shrunk = [f("db-2.dump", 1, 400), f("db-1.dump", 25, 1000)];
        assert_eq!(
            evaluate(0, "s", &s, Ok(&shrunk), now).verdict,
            Verdict::Suspicious
        );
        let empty = [f("db-2.dump", 1, 0)];
        assert_eq!(
            evaluate(0, "s", &s, Ok(&empty), now).verdict,
            Verdict::Suspicious
        );
        let err = evaluate(
            0,
            "s",
            &s,
            Err("find: 'backups': No such file or directory"),
            now,
        );
        assert_eq!(err.verdict, Verdict::Unknown);
        assert!(err.error.unwrap().contains("No such file"));
    }

    #[test]
    fn commands_quote_the_directory() {
        assert_eq!(remote_dir("~/backups"), "backups");
        assert_eq!(remote_dir("/srv/b"), "/srv/b");
        assert_eq!(
            list_command("~/my backups"),
            "find 'my backups' -maxdepth 1 -type f -printf '%T@\\t%s\\t%f\\0'"
        );
        assert_eq!(
            name_for("lila-*.sql.gz", "20261123-031500").as_deref(),
            Some("lila-20261123-031500.sql.gz")
        );
        assert_eq!(name_for("a-*-*.gz", "x"), None);
    }
}
