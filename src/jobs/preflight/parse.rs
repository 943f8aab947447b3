//! Reading what the pre-flight's host script printed: sections, `df -P`, `git status
//! --porcelain`, the lock's holders in `/proc/locks`, compose's images. Any bytes are
//! taken: bounded, never a panic, every text made safe for a terminal.

use std::collections::BTreeMap;

use super::{MAX_DIRS, MAX_OUTPUT};
use crate::sanitize;

/// One filesystem as `df -P -k` reports it, for the path measured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Df {
    /// The path measured: the one asked, or its nearest parent that exists.
    pub path: String,
    pub mount: String,
    pub used_kb: u64,
    pub avail_kb: u64,
}

impl Df {
    /// Percent in use, as `df` counts it (of what a user may fill: used + available).
    pub fn used_pct(&self) -> f64 {
        let all = self.used_kb.saturating_add(self.avail_kb);
        if all == 0 {
            return 100.0;
        }
        self.used_kb as f64 * 100.0 / all as f64
    }

    pub fn avail_bytes(&self) -> u64 {
        self.avail_kb.saturating_mul(1024)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Git {
    /// The script did not get as far (the stack dir is missing).
    #[default]
    Unknown,
    /// Not a checkout.
    None,
    /// A `.git` but no `git` on the host.
    NoGit,
    /// `git` could not read it (dubious ownership, say): its first line.
    Error(String),
    Repo(Repo),
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Repo {
    pub head: String,
    /// `None` when detached.
    pub branch: Option<String>,
    /// Changed tracked files (as many as were read), and whether the list is complete.
    pub changes: Vec<String>,
    pub changes_complete: bool,
    /// `git status` failed: its first line.
    pub status_error: Option<String>,
    /// `git fetch`'s failure: its first line.
    pub fetch_error: Option<String>,
    pub upstream: Option<Upstream>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    pub name: String,
    pub head: String,
    /// Commits on this side only, and on the upstream only; `None` when not read.
    pub counts: Option<(u64, u64)>,
    /// The upstream's newest commit: short hash and subject.
    pub newest: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockSeen {
    /// No lock file: no job ever ran on this stack.
    NoFile,
    Free,
    /// Held, by what the holder wrote.
    Held(String),
}

/// Everything [`SCRIPT`] said, parsed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Gathered {
    pub root: Option<Result<Df, String>>,
    /// By the index of the backup dir asked.
    pub dirs: BTreeMap<usize, Result<Df, String>>,
    pub lock: Option<LockSeen>,
    /// `Some(false)`: the stack dir does not exist.
    pub dir: Option<bool>,
    /// `present`, `missing` or `notfile`.
    pub env: Option<String>,
    pub git: Git,
    /// `Ok` when `compose config -q` passed, else its first line.
    pub compose: Option<Result<(), String>>,
    /// `(service, image)` of services without a `build`, as compose resolved them.
    pub images: Vec<(String, String)>,
}

const MARK: &str = "@@opsdeck ";
const RC: &str = "@@rc ";

/// Splits the output into its sections, by name (a later section of the same name wins).
fn sections(out: &[u8]) -> Vec<(String, Vec<String>)> {
    let out = &out[..out.len().min(MAX_OUTPUT)];
    let text = String::from_utf8_lossy(out);
    let mut found: Vec<(String, Vec<String>)> = Vec::new();
    for line in text.lines() {
        if let Some(name) = line.strip_prefix(MARK) {
            found.push((name.trim().to_string(), Vec::new()));
        } else if let Some((_, body)) = found.last_mut() {
            body.push(line.to_string());
        }
    }
    found
}

/// The status a section's `@@rc N` line gives, and its other lines.
fn with_rc(body: &[String]) -> (Option<i64>, Vec<&str>) {
    let mut rc = None;
    let mut lines = Vec::new();
    for l in body {
        match l.strip_prefix(RC) {
            Some(n) => rc = n.trim().parse().ok(),
            None => lines.push(l.as_str()),
        }
    }
    (rc, lines)
}

/// The first line with something on it, made safe and not too long.
pub(super) fn first_line<'a>(lines: impl IntoIterator<Item = &'a str>) -> Option<String> {
    lines
        .into_iter()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(|l| short(l, 200))
}

/// `s` made safe for one line of a terminal and cut at `max` characters.
pub(super) fn short(s: &str, max: usize) -> String {
    let clean = sanitize::line(s);
    let mut out: String = clean.chars().take(max).collect();
    if clean.chars().count() > max {
        out.push('…');
    }
    out
}

/// The last line of `df -P -k` that reads as a filesystem: the first field ending in `%`
/// after three numbers, the mount point after it (which may have spaces).
pub(super) fn parse_df(body: &[String]) -> Result<Df, String> {
    let Some((path, rest)) = body.split_first() else {
        return Err("no answer".into());
    };
    for line in rest.iter().rev() {
        let words: Vec<&str> = line.split_whitespace().collect();
        for i in 4..words.len() {
            let Some(pct) = words[i].strip_suffix('%') else {
                continue;
            };
            let num = |w: &str| w.parse::<u64>().ok();
            if let (Some(_total), Some(used), Some(avail), true) = (
                num(words[i - 3]),
                num(words[i - 2]),
                num(words[i - 1]),
                pct == "-" || pct.parse::<u64>().is_ok(),
            ) {
                let mount = words[i + 1..].join(" ");
                return Ok(Df {
                    path: short(path, 200),
                    mount: short(if mount.is_empty() { "?" } else { &mount }, 200),
                    used_kb: used,
                    avail_kb: avail,
                });
            }
        }
    }
    Err(first_line(rest.iter().map(String::as_str)).unwrap_or_else(|| "df said nothing".into()))
}

/// A path as `git status --porcelain` writes it: as is, or C-quoted (`"a\"b\303\251"`).
pub(super) fn unquote_git(s: &str) -> String {
    let Some(inner) = s.strip_prefix('"').and_then(|r| r.strip_suffix('"')) else {
        return s.to_string();
    };
    let mut bytes: Vec<u8> = Vec::with_capacity(inner.len());
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            let mut buf = [0u8; 4];
            bytes.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        match chars.next() {
            Some('n') => bytes.push(b'\n'),
            Some('t') => bytes.push(b'\t'),
            Some('a') => bytes.push(7),
            Some('b') => bytes.push(8),
            Some('f') => bytes.push(12),
            Some('r') => bytes.push(b'\r'),
            Some('v') => bytes.push(11),
            Some(d @ '0'..='7') => {
                let mut v = d.to_digit(8).unwrap_or(0);
                for _ in 0..2 {
                    match chars.peek().and_then(|c| c.to_digit(8)) {
                        Some(n) => {
                            v = v * 8 + n;
                            chars.next();
                        }
                        None => break,
                    }
                }
                bytes.push(u8::try_from(v & 0xff).unwrap_or(b'?'));
            }
            Some(other) => {
                let mut buf = [0u8; 4];
                bytes.extend_from_slice(other.encode_utf8(&mut buf).as_bytes());
            }
            None => bytes.push(b'\\'),
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The file a porcelain line is about: `XY path`, or `XY old -> new` for a rename.
pub(super) fn porcelain_path(line: &str) -> Option<String> {
    let rest = line.get(3..).filter(|_| line.is_char_boundary(3))?;
    if rest.is_empty() {
        return None;
    }
    // a rename's new name (a quoted name never holds an unquoted " -> ")
    let path = match rest.rsplit_once(" -> ") {
        Some((_, new)) if !rest.starts_with('"') || new.starts_with('"') => new,
        _ => rest,
    };
    Some(short(&unquote_git(path), 120))
}

pub(super) fn parse_lock(body: &[String]) -> LockSeen {
    let mut ino: Option<String> = None;
    let mut holder = String::new();
    let mut alive = false;
    let mut locks_read = true;
    let mut held = false;
    for l in body {
        if l.trim() == "nofile" {
            return LockSeen::NoFile;
        } else if let Some(n) = l.strip_prefix("ino ") {
            ino = Some(n.trim().to_string()).filter(|n| !n.is_empty());
        } else if let Some(h) = l.strip_prefix("holder ") {
            holder = short(h.split_once(' ').map_or("", |(_, info)| info), 200);
        } else if l.trim() == "alive yes" {
            alive = true;
        } else if l.trim() == "nolocks" {
            locks_read = false;
        } else if let (Some(lock), Some(ino)) = (l.strip_prefix("L "), &ino) {
            // `1: FLOCK  ADVISORY  WRITE 4242 fd:01:1234 0 EOF`: the file's inode last
            held |= lock
                .split_whitespace()
                .find(|w| w.matches(':').count() == 2)
                .and_then(|w| w.rsplit(':').next())
                .is_some_and(|i| i == ino);
        }
    }
    // Without /proc/locks, the holder's process being alive is the best word there is.
    if held || (!locks_read && alive) {
        LockSeen::Held(if holder.is_empty() {
            "another job".into()
        } else {
            holder
        })
    } else {
        LockSeen::Free
    }
}

/// Reads what [`SCRIPT`] printed. Never panics, whatever the bytes.
pub fn parse(out: &[u8]) -> Gathered {
    let mut g = Gathered::default();
    let mut repo: Option<Repo> = None;
    for (name, body) in sections(out) {
        let mut words = name.split_whitespace();
        match (words.next(), words.next()) {
            (Some("df"), Some("root")) => g.root = Some(parse_df(&body)),
            (Some("df"), Some(n)) => {
                if let Ok(n) = n.parse::<usize>()
                    && n < MAX_DIRS
                {
                    g.dirs.insert(n, parse_df(&body));
                }
            }
            (Some("lock"), _) => g.lock = Some(parse_lock(&body)),
            (Some("dir"), _) => g.dir = body.first().map(|l| l.trim() == "ok"),
            (Some("env"), _) => g.env = body.first().map(|l| short(l.trim(), 20)),
            (Some("git"), _) => {
                let lines: Vec<&str> = body.iter().map(String::as_str).collect();
                match lines.first().map(|l| l.trim()) {
                    Some("repo") => {
                        let field = |i: usize| {
                            lines
                                .get(i)
                                .map(|l| short(l.trim(), 80))
                                .filter(|l| !l.is_empty() && l != "-")
                        };
                        repo = Some(Repo {
                            head: field(1).unwrap_or_else(|| "?".into()),
                            branch: field(2),
                            ..Repo::default()
                        });
                    }
                    Some("none") => g.git = Git::None,
                    Some("nogit") => g.git = Git::NoGit,
                    Some("error") => {
                        g.git = Git::Error(
                            first_line(lines[1..].iter().copied())
                                .unwrap_or_else(|| "git failed".into()),
                        )
                    }
                    _ => {}
                }
            }
            (Some("status"), _) => {
                if let Some(r) = repo.as_mut() {
                    let (rc, lines) = with_rc(&body);
                    match rc {
                        Some(0) | None => {
                            r.changes_complete = rc.is_some();
                            r.changes = lines
                                .iter()
                                .filter_map(|l| porcelain_path(l))
                                .take(100)
                                .collect();
                        }
                        Some(_) => {
                            r.status_error = Some(
                                first_line(lines).unwrap_or_else(|| "git status failed".into()),
                            )
                        }
                    }
                }
            }
            (Some("fetch"), _) => {
                if let Some(r) = repo.as_mut() {
                    let (rc, lines) = with_rc(&body);
                    if rc != Some(0) {
                        let why = first_line(lines).unwrap_or_else(|| match rc {
                            Some(124) => "timed out after 60 s".into(),
                            Some(n) => format!("exit status {n}"),
                            None => "no answer".into(),
                        });
                        r.fetch_error = Some(why);
                    }
                }
            }
            (Some("upstream"), _) => {
                if let Some(r) = repo.as_mut()
                    && let Some(name) = body.first().map(|l| short(l.trim(), 80))
                    && !name.is_empty()
                {
                    let counts = body.get(2).and_then(|l| {
                        let mut n = l.split_whitespace().map(|w| w.parse::<u64>().ok());
                        match (n.next(), n.next(), n.next()) {
                            (Some(Some(a)), Some(Some(b)), None) => Some((a, b)),
                            _ => None,
                        }
                    });
                    r.upstream = Some(Upstream {
                        name,
                        head: body
                            .get(1)
                            .map(|l| short(l.trim(), 40))
                            .unwrap_or_else(|| "?".into()),
                        counts,
                        newest: body
                            .get(3)
                            .map(|l| short(l.trim(), 100))
                            .filter(|l| !l.is_empty()),
                    });
                }
            }
            (Some("compose"), _) => {
                let (rc, lines) = with_rc(&body);
                g.compose = Some(match rc {
                    Some(0) => Ok(()),
                    Some(n) => Err(first_line(lines).unwrap_or_else(|| format!("exit status {n}"))),
                    None => Err("no answer".into()),
                });
            }
            (Some("images"), _) => {
                let mut built: Vec<&str> = Vec::new();
                let mut images: Vec<(String, String)> = Vec::new();
                for l in &body {
                    let mut f = l.split('\t');
                    match (f.next(), f.next(), f.next()) {
                        (Some("build"), Some(svc), None) => built.push(svc),
                        (Some("image"), Some(svc), Some(image)) => {
                            let image = image.trim().trim_matches(|c| c == '"' || c == '\'');
                            images.push((svc.to_string(), image.to_string()));
                        }
                        _ => {}
                    }
                }
                g.images = images
                    .into_iter()
                    .filter(|(svc, _)| !built.contains(&svc.as_str()))
                    .take(100)
                    .collect();
            }
            _ => {}
        }
    }
    if let Some(r) = repo {
        g.git = Git::Repo(r);
    }
    g
}
