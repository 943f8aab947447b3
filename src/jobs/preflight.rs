//! A deploy's pre-flight: what breaks deploys most, checked before anything changes. Free
//! space on Docker's root and on each backup directory, the checkout clean and where it
//! stands against its upstream, the env file there, `compose config -q` passing, the
//! registry answering for each image a pulling deploy pulls, and no other job holding the
//! stack's lock.
//!
//! One `sh` script ([`SCRIPT`]) gathers what the host knows in one round trip, every value
//! a quoted positional argument; Docker's own answers (its root directory, the images'
//! sizes, the registry's manifests) come over the host's Docker connection. The script's
//! output is the host's word, so the parsers here take any bytes: bounded, never a panic,
//! every text made safe for a terminal before it joins the report.
//!
//! "The size of the last build" is not known cheaply (Docker keeps no record of it), so
//! the free space on Docker's root is compared with the size of the images the stack's
//! containers run now, as Docker counts them (shared layers included): what a rebuild or
//! a pull of every image could need at worst.

use std::collections::BTreeMap;
use std::time::Duration;

use bollard::Docker;

use super::compose;
use super::exec::{Context, StepEnd, Stop, Tracker};
use super::lock::host_file;
use super::runner::Runner;
use super::script;
use crate::collect::backups::remote_dir_arg;
use crate::config::{ComposeCommand, Stack, Step};
use crate::model::job::LineKind;
use crate::model::preflight::{Item, Report, Topic, Verdict};
use crate::sanitize;

/// Disk use (percent) at or above which the pre-flight warns when the inventory sets no
/// `disk_warn`: under 10 % free.
pub const DEFAULT_DISK_WARN: f64 = 90.0;
/// The script's output read at most; the script bounds each part far below this.
const MAX_OUTPUT: usize = 256 * 1024;
/// Backup directories measured at most.
const MAX_DIRS: usize = 16;
/// Images whose manifest is asked of the registry at most.
const MAX_IMAGES: usize = 16;
/// File names of a dirty checkout named in its item.
const NAMED_FILES: usize = 3;
/// One Docker call of the pre-flight (a registry's answer included).
const DOCKER_TIMEOUT: Duration = Duration::from_secs(20);
/// The whole script; `git fetch` has 60 s of it.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(90);

/// How a pre-flight runs, besides the stack.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Disk use (percent) at or above which a filesystem is a warning: the inventory's
    /// `disk_warn` when it sets one, else [`DEFAULT_DISK_WARN`].
    pub disk_warn: f64,
    /// `git fetch` before comparing with the upstream (not in read-only mode).
    pub fetch: bool,
    /// Look whether another job holds the stack's lock (not when this job holds it).
    pub probe_lock: bool,
    /// Go on despite warnings (`--force`).
    pub force: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            disk_warn: DEFAULT_DISK_WARN,
            fetch: true,
            probe_lock: false,
            force: false,
        }
    }
}

/// Gives a plan's pre-flight the host's disk threshold (the plan knows only the stacks).
pub fn configure(plan: &mut super::plan::Plan, disk_warn: f64) {
    for step in &mut plan.steps {
        if let super::plan::StepKind::Preflight(s) = &mut step.kind {
            s.disk_warn = disk_warn;
        }
    }
}

/// The disk threshold of a host: its `disk_warn` (or the settings'), else the default.
pub fn disk_warn(thresholds: crate::config::Thresholds) -> f64 {
    thresholds.disk_warn.unwrap_or(DEFAULT_DISK_WARN)
}

/// The host side. Positional: the stack dir, the env file (empty: none), Docker's root
/// (empty: unknown), `1` to fetch, the lock file (empty: not probed), `1` to list the
/// services' images, the number of backup dirs, those dirs, then the compose command
/// (none: the deploy uses no compose). Sections start with a line `@@opsdeck NAME`; a
/// command's status is a line `@@rc N`. Every part is cut short (`head`).
pub const SCRIPT: &str = r#"set -u
dir=$1 envf=$2 root=$3 fetch=$4 lockf=$5 images=$6 nb=$7
shift 7
sec() { printf '\n@@opsdeck %s\n' "$1"; }
space() {
    p=$1 up=0
    while [ ! -e "$p" ] && [ "$up" -lt 64 ]; do
        case $p in
        */*) p=${p%/*}; [ -n "$p" ] || p=/ ;;
        *) p=. ;;
        esac
        up=$((up + 1))
    done
    printf '%s\n' "$p"
    df -Pk -- "$p" 2>&1 | head -n 5
}
if [ -n "$root" ]; then sec 'df root'; space "$root"; fi
i=0
while [ "$i" -lt "$nb" ]; do
    sec "df $i"
    space "$1"
    shift
    i=$((i + 1))
done
if [ -n "$lockf" ]; then
    sec lock
    if [ -e "$lockf" ]; then
        printf 'ino %s\n' "$(stat -c %i -- "$lockf" 2>/dev/null)"
        if [ -r /proc/locks ]; then grep FLOCK /proc/locks | head -n 2000 | sed 's/^/L /'; else echo nolocks; fi
        h=$(head -c 1024 -- "${lockf%.lock}.holder" 2>/dev/null | head -n 1) || h=
        printf 'holder %s\n' "$h"
        pid=${h%% *}
        case $pid in
        '' | *[!0-9]*) echo 'alive no' ;;
        *) if kill -0 "$pid" 2>/dev/null; then echo 'alive yes'; else echo 'alive no'; fi ;;
        esac
    else
        echo nofile
    fi
fi
sec dir
cd -- "$dir" 2>/dev/null || { echo missing; exit 0; }
echo ok
if [ -n "$envf" ]; then
    sec env
    if [ -f "$envf" ]; then echo present; elif [ -e "$envf" ]; then echo notfile; else echo missing; fi
fi
sec git
if ! command -v git >/dev/null 2>&1; then
    if [ -e .git ]; then echo nogit; else echo none; fi
else
    w=$(git rev-parse --is-inside-work-tree 2>&1 | head -n 3)
    case $w in
    true)
        echo repo
        git rev-parse --short HEAD 2>/dev/null || echo -
        git symbolic-ref --short -q HEAD 2>/dev/null || echo -
        sec status
        { git status --porcelain --untracked-files=no 2>&1; printf '@@rc %s\n' "$?"; } | head -n 400
        up=$(git rev-parse --abbrev-ref --symbolic-full-name '@{u}' 2>/dev/null) || up=
        if [ -n "$up" ]; then
            if [ "$fetch" = 1 ]; then
                sec fetch
                t=
                if command -v timeout >/dev/null 2>&1; then t='timeout 60'; fi
                { GIT_TERMINAL_PROMPT=0 $t git fetch --quiet </dev/null 2>&1; printf '@@rc %s\n' "$?"; } | head -n 20
            fi
            sec upstream
            printf '%s\n' "$up"
            git rev-parse --short '@{u}' 2>/dev/null || echo -
            git rev-list --left-right --count 'HEAD...@{u}' 2>&1 | head -n 1
            git log -1 --format='%h %s' '@{u}' 2>/dev/null | head -c 300 | head -n 1
        fi
        ;;
    *'not a git repository'*) echo none ;;
    *) echo error; printf '%s\n' "$w" ;;
    esac
fi
if [ "$#" -gt 0 ]; then
    sec compose
    out=$("$@" config -q 2>&1 </dev/null)
    rc=$?
    printf '%s\n' "$out" | head -n 40
    printf '@@rc %s\n' "$rc"
    if [ "$rc" -eq 0 ] && [ "$images" = 1 ]; then
        sec images
        "$@" config 2>/dev/null </dev/null | awk '
            /^[^ ]/ { top = $0; svc = ""; next }
            top != "services:" { next }
            /^  [^ ]/ { svc = substr($0, 3); sub(/:.*/, "", svc); next }
            svc == "" { next }
            /^    image: / { printf "image\t%s\t%s\n", svc, substr($0, 12); next }
            /^    build:/ { printf "build\t%s\n", svc }
        ' | head -n 400
    fi
fi"#;

/// What [`SCRIPT`] is asked, in its order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inputs {
    pub dir: String,
    pub env_file: String,
    pub root: String,
    pub fetch: bool,
    pub lock_file: String,
    pub images: bool,
    pub backup_dirs: Vec<String>,
    pub compose: Vec<String>,
}

/// The command line for the host; `None` when a value cannot be quoted (a NUL byte).
pub fn command(docker_host: Option<&str>, i: &Inputs) -> Option<String> {
    let flag = |b: bool| if b { "1" } else { "0" }.to_string();
    let mut args = vec![
        i.dir.clone(),
        i.env_file.clone(),
        i.root.clone(),
        flag(i.fetch),
        i.lock_file.clone(),
        flag(i.images),
        i.backup_dirs.len().to_string(),
    ];
    args.extend(i.backup_dirs.iter().cloned());
    args.extend(i.compose.iter().cloned());
    script::command(docker_host, SCRIPT, &args)
}

// ----------------------------------------------------------------------------- parsing

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
fn first_line<'a>(lines: impl IntoIterator<Item = &'a str>) -> Option<String> {
    lines
        .into_iter()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(|l| short(l, 200))
}

/// `s` made safe for one line of a terminal and cut at `max` characters.
fn short(s: &str, max: usize) -> String {
    let clean = sanitize::line(s);
    let mut out: String = clean.chars().take(max).collect();
    if clean.chars().count() > max {
        out.push('…');
    }
    out
}

/// The last line of `df -P -k` that reads as a filesystem: the first field ending in `%`
/// after three numbers, the mount point after it (which may have spaces).
fn parse_df(body: &[String]) -> Result<Df, String> {
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
fn unquote_git(s: &str) -> String {
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
fn porcelain_path(line: &str) -> Option<String> {
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

fn parse_lock(body: &[String]) -> LockSeen {
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

// ----------------------------------------------------------------------------- judging

/// What the report says things are called, and what the deploy does.
#[derive(Debug, Clone, Default)]
pub struct Names {
    /// The stack dir as the inventory writes it.
    pub dir: String,
    pub env_file: Option<String>,
    /// Docker's root dir, or why it is not known.
    pub root: Option<Result<String, String>>,
    /// Each backup dir as written, with the sets in it.
    pub backups: Vec<(String, Vec<String>)>,
    /// The deploy runs `git pull` (or fetch, merge): "nothing new" means something.
    pub pulls_code: bool,
    /// The deploy uses compose.
    pub uses_compose: bool,
    /// What the stack's images take now, for Docker's root.
    pub images_size: Option<u64>,
    pub disk_warn: f64,
    /// Lock probed (else this job holds it).
    pub probe_lock: bool,
}

/// `52.5 GB`: decimal, as `opsdeck run` prints sizes.
fn human(bytes: u64) -> String {
    crate::ui::format::si_bytes(bytes)
}

/// `1 commit`, `3 commits`.
fn commits(n: u64) -> String {
    format!("{n} commit{}", if n == 1 { "" } else { "s" })
}

/// The report of what the script gathered (the registry's items come after).
pub fn judge(g: &Gathered, n: &Names) -> Report {
    let mut r = Report::default();
    disks(g, n, &mut r);
    if n.probe_lock {
        match &g.lock {
            Some(LockSeen::Held(who)) => r.push(Item::new(
                Topic::Lock,
                Verdict::Refuse,
                format!("another job holds the stack's lock: {who}"),
            )),
            Some(LockSeen::Free | LockSeen::NoFile) => r.push(Item::new(
                Topic::Lock,
                Verdict::Ok,
                "no other job holds the lock",
            )),
            None => r.push(Item::new(
                Topic::Lock,
                Verdict::Warn,
                "the stack's lock could not be looked at",
            )),
        }
    }
    match g.dir {
        Some(true) => {}
        Some(false) => {
            r.push(Item::new(
                Topic::Checkout,
                Verdict::Refuse,
                format!("the stack directory {} does not exist", n.dir),
            ));
            return r;
        }
        None => {
            r.push(Item::new(
                Topic::Preflight,
                Verdict::Refuse,
                "the host's answer ended early (the connection?)",
            ));
            return r;
        }
    }
    if let Some(env) = &n.env_file {
        match g.env.as_deref() {
            Some("present") => r.push(Item::new(
                Topic::Env,
                Verdict::Ok,
                format!("env file {env} present"),
            )),
            Some("notfile") => r.push(Item::new(
                Topic::Env,
                Verdict::Refuse,
                format!("env file {env} is not a file"),
            )),
            _ => r.push(Item::new(
                Topic::Env,
                Verdict::Refuse,
                format!("env file {env} is missing in {}", n.dir),
            )),
        }
    }
    checkout(&g.git, n, &mut r);
    if n.uses_compose {
        match &g.compose {
            Some(Ok(())) => r.push(Item::new(
                Topic::Compose,
                Verdict::Ok,
                "compose config -q passes",
            )),
            Some(Err(why)) => r.push(Item::new(
                Topic::Compose,
                Verdict::Refuse,
                format!("compose config failed: {why}"),
            )),
            None => r.push(Item::new(
                Topic::Compose,
                Verdict::Refuse,
                "compose config did not run",
            )),
        }
    }
    r
}

fn disks(g: &Gathered, n: &Names, r: &mut Report) {
    // One item per filesystem, naming what lives on it.
    let mut by_mount: Vec<(Df, Vec<String>, bool)> = Vec::new();
    let mut add = |df: &Df, what: String, is_root: bool| match by_mount
        .iter_mut()
        .find(|(d, _, _)| d.mount == df.mount)
    {
        Some((_, names, root)) => {
            names.push(what);
            *root |= is_root;
        }
        None => by_mount.push((df.clone(), vec![what], is_root)),
    };
    match (&n.root, &g.root) {
        (Some(Ok(path)), Some(Ok(df))) => {
            add(df, format!("Docker's root {}", short(path, 120)), true)
        }
        (Some(Ok(path)), Some(Err(why))) => r.push(Item::new(
            Topic::Disk,
            Verdict::Warn,
            format!(
                "cannot measure the free space of Docker's root {}: {why}",
                short(path, 120)
            ),
        )),
        (Some(Err(why)), _) => r.push(Item::new(
            Topic::Disk,
            Verdict::Warn,
            format!("Docker's root directory is not known: {why}"),
        )),
        _ => {}
    }
    for (i, (dir, _)) in n.backups.iter().enumerate() {
        match g.dirs.get(&i) {
            Some(Ok(df)) => add(df, short(dir, 120), false),
            Some(Err(why)) => r.push(Item::new(
                Topic::Disk,
                Verdict::Warn,
                format!(
                    "cannot measure the free space of {}: {why}",
                    short(dir, 120)
                ),
            )),
            None => {}
        }
    }
    for (df, names, is_root) in by_mount {
        let free_pct = (100.0 - df.used_pct()).max(0.0);
        // the mount point, unless it is what was measured
        let on = if names.iter().any(|n| n.ends_with(&df.mount)) {
            String::new()
        } else {
            format!(" on {}", df.mount)
        };
        let head = format!(
            "{}: {:.0} % free ({}){on}",
            names.join(", "),
            free_pct.floor(),
            human(df.avail_bytes()),
        );
        let need = n.images_size.filter(|_| is_root);
        if df.used_pct() >= n.disk_warn {
            r.push(Item::new(
                Topic::Disk,
                Verdict::Warn,
                format!("{head}: under {:.0} % free", 100.0 - n.disk_warn),
            ));
        } else if let Some(need) = need.filter(|need| df.avail_bytes() < *need) {
            r.push(Item::new(
                Topic::Disk,
                Verdict::Warn,
                format!(
                    "{head}: less than the {} of the images the stack runs now",
                    human(need)
                ),
            ));
        } else {
            r.push(Item::new(Topic::Disk, Verdict::Ok, head));
        }
    }
}

fn checkout(git: &Git, n: &Names, r: &mut Report) {
    let repo = match git {
        Git::Repo(repo) => repo,
        Git::None => {
            r.push(Item::new(
                Topic::Checkout,
                Verdict::Ok,
                format!("{} is not a git checkout", n.dir),
            ));
            return;
        }
        Git::NoGit => {
            r.push(Item::new(
                Topic::Checkout,
                Verdict::Warn,
                format!(
                    "{} is a git checkout, but git is not installed on the host",
                    n.dir
                ),
            ));
            return;
        }
        Git::Error(why) => {
            r.push(Item::new(
                Topic::Checkout,
                Verdict::Warn,
                format!("git cannot read {}: {why}", n.dir),
            ));
            return;
        }
        Git::Unknown => return,
    };
    let at = match &repo.branch {
        Some(b) => format!("{b} at {}", repo.head),
        None => format!("detached at {}", repo.head),
    };
    if let Some(why) = &repo.status_error {
        r.push(Item::new(
            Topic::Checkout,
            Verdict::Refuse,
            format!("git status failed: {why}"),
        ));
    } else if repo.changes.is_empty() && repo.changes_complete {
        r.push(Item::new(
            Topic::Checkout,
            Verdict::Ok,
            format!("checkout clean ({at})"),
        ));
    } else {
        let named: Vec<&str> = repo
            .changes
            .iter()
            .take(NAMED_FILES)
            .map(String::as_str)
            .collect();
        let more = repo.changes.len().saturating_sub(NAMED_FILES);
        let more = match (more, repo.changes_complete) {
            (0, true) => String::new(),
            (m, true) => format!(" and {m} more"),
            (_, false) => " and more".to_string(),
        };
        let names = if named.is_empty() {
            "(cannot say which)".to_string()
        } else {
            named.join(", ")
        };
        r.push(Item::new(
            Topic::Checkout,
            Verdict::Refuse,
            format!("checkout has changes: {names}{more}"),
        ));
    }
    let Some(up) = &repo.upstream else {
        r.push(Item::new(
            Topic::Origin,
            Verdict::Ok,
            format!("{at} has no upstream branch: not compared"),
        ));
        return;
    };
    if let Some(why) = &repo.fetch_error {
        r.push(Item::new(
            Topic::Origin,
            Verdict::Warn,
            format!(
                "git fetch failed: {why}: compared with {} as last fetched",
                up.name
            ),
        ));
    }
    let Some((ahead, behind)) = up.counts else {
        r.push(Item::new(
            Topic::Origin,
            Verdict::Warn,
            format!("cannot compare with {}", up.name),
        ));
        return;
    };
    let (verdict, text) = match (ahead, behind) {
        (0, 0) if n.pulls_code => (
            Verdict::Warn,
            format!(
                "nothing new to deploy: level with {} at {}",
                up.name, up.head
            ),
        ),
        (0, 0) => (
            Verdict::Ok,
            format!("level with {} at {}", up.name, up.head),
        ),
        (0, b) if n.pulls_code => {
            let newest = up
                .newest
                .as_ref()
                .map(|c| format!(", up to {c}"))
                .unwrap_or_default();
            (
                Verdict::Ok,
                format!(
                    "{} behind {}: {} to deploy{newest}",
                    commits(b),
                    up.name,
                    commits(b)
                ),
            )
        }
        (0, b) => (
            Verdict::Ok,
            format!(
                "{} behind {} (the deploy recipe does not pull)",
                commits(b),
                up.name
            ),
        ),
        (a, 0) => (
            Verdict::Warn,
            format!("{} ahead of {}: not pushed", commits(a), up.name),
        ),
        (a, b) => (
            // `git pull` would merge on the server, or fail with --ff-only
            if n.pulls_code {
                Verdict::Refuse
            } else {
                Verdict::Warn
            },
            format!(
                "diverged from {}: {} ahead, {} behind",
                up.name,
                commits(a),
                commits(b)
            ),
        ),
    };
    r.push(Item::new(Topic::Origin, verdict, text));
}

/// A reference Docker will take in a URL path: registry, path, tag or digest characters.
fn plain_reference(image: &str) -> bool {
    !image.is_empty()
        && image.len() <= 255
        && image
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/' | ':' | '@'))
}

/// The registry's word on each image a pulling deploy pulls.
async fn registry(docker: Option<&Docker>, images: &[(String, String)], r: &mut Report) {
    let mut wanted: Vec<&str> = Vec::new();
    for (_, image) in images {
        if !wanted.contains(&image.as_str()) {
            wanted.push(image);
        }
    }
    if wanted.is_empty() {
        return;
    }
    let Some(docker) = docker else {
        r.push(Item::new(
            Topic::Registry,
            Verdict::Warn,
            "Docker is not reachable: the registry was not asked",
        ));
        return;
    };
    let asks = wanted.iter().take(MAX_IMAGES).map(|image| async move {
        let answer = if plain_reference(image) {
            match tokio::time::timeout(DOCKER_TIMEOUT, docker.inspect_registry_image(image, None))
                .await
            {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(e)) => Err(registry_error(&e)),
                Err(_) => Err(RegistrySays::Unreachable(format!(
                    "no answer within {}s",
                    DOCKER_TIMEOUT.as_secs()
                ))),
            }
        } else {
            Err(RegistrySays::Odd)
        };
        (*image, answer)
    });
    let answers = futures::future::join_all(asks).await;
    let mut fine = 0;
    let mut login = Vec::new();
    for (image, answer) in answers {
        let image = short(image, 120);
        match answer {
            Ok(()) => fine += 1,
            Err(RegistrySays::Login) => login.push(image),
            Err(RegistrySays::Missing(why)) => r.push(Item::new(
                Topic::Registry,
                Verdict::Refuse,
                format!("{image} is not in its registry: {why}"),
            )),
            Err(RegistrySays::Unreachable(why)) => r.push(Item::new(
                Topic::Registry,
                Verdict::Refuse,
                format!("the registry of {image} does not answer: {why}"),
            )),
            Err(RegistrySays::Odd) => r.push(Item::new(
                Topic::Registry,
                Verdict::Warn,
                format!("{image}: an image name opsdeck does not ask about"),
            )),
        }
    }
    if fine > 0 {
        r.push(Item::new(
            Topic::Registry,
            Verdict::Ok,
            format!(
                "the registry has {} the deploy pulls",
                if fine == 1 {
                    "the image".to_string()
                } else {
                    format!("all {fine} images")
                }
            ),
        ));
    }
    if !login.is_empty() {
        r.push(Item::new(
            Topic::Registry,
            Verdict::Ok,
            format!(
                "the registry answers but wants a login for {} (opsdeck sends none: not checked further)",
                login.join(", ")
            ),
        ));
    }
    if wanted.len() > MAX_IMAGES {
        r.push(Item::new(
            Topic::Registry,
            Verdict::Ok,
            format!("{} more images not asked about", wanted.len() - MAX_IMAGES),
        ));
    }
}

enum RegistrySays {
    Login,
    Missing(String),
    Unreachable(String),
    Odd,
}

fn registry_error(e: &bollard::errors::Error) -> RegistrySays {
    match e {
        bollard::errors::Error::DockerResponseServerError {
            status_code,
            message,
        } => {
            let m = short(message, 160);
            match status_code {
                401 | 403 => RegistrySays::Login,
                404 => RegistrySays::Missing(m),
                _ if m.contains("unauthorized") || m.contains("authentication required") => {
                    RegistrySays::Login
                }
                _ if m.contains("manifest unknown") || m.contains("not found") => {
                    RegistrySays::Missing(m)
                }
                _ => RegistrySays::Unreachable(m),
            }
        }
        other => RegistrySays::Unreachable(short(&other.to_string(), 160)),
    }
}

/// Docker's root dir (`docker info`), or why it is not known.
async fn docker_root(docker: Option<&Docker>) -> Result<String, String> {
    let docker = docker.ok_or("Docker is not reachable on the host")?;
    match tokio::time::timeout(DOCKER_TIMEOUT, docker.info()).await {
        Ok(Ok(info)) => info
            .docker_root_dir
            .filter(|d| d.starts_with('/') && !d.contains('\0'))
            .ok_or_else(|| "docker info does not say".to_string()),
        Ok(Err(e)) => Err(short(&e.to_string(), 160)),
        Err(_) => Err(format!("no answer within {}s", DOCKER_TIMEOUT.as_secs())),
    }
}

/// What the images of the project's containers take, as Docker counts them.
async fn images_size(docker: Option<&Docker>, project: &str) -> Option<u64> {
    use bollard::query_parameters::{ListContainersOptions, ListImagesOptions};
    let docker = docker?;
    let mut filters = std::collections::HashMap::new();
    filters.insert(
        "label".to_string(),
        vec![format!("com.docker.compose.project={project}")],
    );
    let containers = tokio::time::timeout(
        DOCKER_TIMEOUT,
        docker.list_containers(Some(ListContainersOptions {
            all: true,
            filters: Some(filters),
            ..Default::default()
        })),
    )
    .await
    .ok()?
    .ok()?;
    let ids: Vec<String> = containers.into_iter().filter_map(|c| c.image_id).collect();
    if ids.is_empty() {
        return None;
    }
    let images = tokio::time::timeout(
        DOCKER_TIMEOUT,
        docker.list_images(Some(ListImagesOptions::default())),
    )
    .await
    .ok()?
    .ok()?;
    let total: i64 = images
        .iter()
        .filter(|i| ids.contains(&i.id))
        .map(|i| i.size.max(0))
        .sum();
    u64::try_from(total).ok().filter(|t| *t > 0)
}

/// Whether a recipe's steps run `git pull` (or fetch, merge, rebase): then a checkout
/// level with its upstream has nothing new to deploy.
fn pulls_code(steps: &[Step]) -> bool {
    steps.iter().any(|s| match s {
        Step::Run(cmd) => {
            cmd.argv.first().is_some_and(|w| w == "git")
                && cmd
                    .argv
                    .iter()
                    .skip(1)
                    .any(|w| matches!(w.as_str(), "pull" | "fetch" | "merge" | "rebase"))
        }
        Step::WaitHealthy(_) => false,
    })
}

/// Whether a recipe runs `compose pull`: then the registry is asked for every image.
fn pulls_images(steps: &[Step]) -> bool {
    steps.iter().any(|s| match s {
        Step::Run(cmd) => cmd.is_compose() && cmd.argv.get(1).is_some_and(|w| w == "pull"),
        Step::WaitHealthy(_) => false,
    })
}

/// The pre-flight of a deploy of `stack`: Docker's answers, the script's, the registry's.
/// `docker_socket` is the inventory's, handed to compose. `Err` when the host could not
/// be asked at all.
pub async fn check<R: Runner>(
    runner: &R,
    docker: Option<&Docker>,
    docker_socket: Option<&str>,
    stack: &Stack,
    settings: &Settings,
) -> Result<Report, String> {
    let docker_host = docker_socket;
    let steps: &[Step] = stack.deploy.as_ref().map_or(&[], |d| d.steps.get_ref());
    let uses_compose = steps
        .iter()
        .any(|s| matches!(s, Step::Run(c) if c.is_compose()));
    let project = compose::project_name(stack);
    let (root, size) = tokio::join!(docker_root(docker), images_size(docker, &project));
    let compose_argv = if uses_compose {
        let detected = if stack.compose == ComposeCommand::Auto {
            compose::detect(runner).await
        } else {
            stack.compose
        };
        compose::compose_argv(stack, detected)
    } else {
        Vec::new()
    };
    let mut backups: Vec<(String, Vec<String>)> = Vec::new();
    for b in &stack.backups {
        let set = b.name.get_ref().clone();
        match backups.iter().position(|(d, _)| *d == b.dir) {
            Some(i) => backups[i].1.push(set),
            None if backups.len() < MAX_DIRS => backups.push((b.dir.clone(), vec![set])),
            None => {}
        }
    }
    let inputs = Inputs {
        dir: remote_dir_arg(&stack.dir),
        env_file: stack.env_file.clone().unwrap_or_default(),
        root: root.clone().unwrap_or_default(),
        fetch: settings.fetch,
        lock_file: if settings.probe_lock {
            host_file(&project, "lock")
        } else {
            String::new()
        },
        images: pulls_images(steps),
        backup_dirs: backups.iter().map(|(d, _)| remote_dir_arg(d)).collect(),
        compose: compose_argv,
    };
    let env = script::docker_host_env(docker_host);
    let command = command(env.as_deref(), &inputs)
        .ok_or("a value of the stack cannot be passed to the host's shell (a NUL byte?)")?;
    let out = match tokio::time::timeout(SCRIPT_TIMEOUT, runner.run(&command)).await {
        Ok(Ok(out)) => out,
        Ok(Err(e)) => return Err(e.to_string()),
        Err(_) => {
            return Err(format!(
                "the host did not answer within {}s",
                SCRIPT_TIMEOUT.as_secs()
            ));
        }
    };
    let gathered = parse(&out.stdout);
    let names = Names {
        dir: short(&stack.dir, 120),
        env_file: stack.env_file.as_deref().map(|e| short(e, 120)),
        root: Some(root),
        backups,
        pulls_code: pulls_code(steps),
        uses_compose,
        images_size: size,
        disk_warn: settings.disk_warn,
        probe_lock: settings.probe_lock,
    };
    let mut report = judge(&gathered, &names);
    if inputs.images && gathered.compose == Some(Ok(())) {
        registry(docker, &gathered.images, &mut report).await;
    }
    Ok(report)
}

/// The job's first step: the pre-flight under the stack's lock. Its refusal, or its
/// warnings unless forced, stop the job before anything changes.
pub(super) async fn step<R: Runner>(
    ctx: &Context<'_, R>,
    stack: Option<&Stack>,
    settings: &Settings,
    step: usize,
    t: &mut Tracker<'_>,
    mut stop: Stop,
) -> StepEnd {
    let Some(stack) = stack else {
        return StepEnd::fail("a pre-flight needs its stack");
    };
    let run = check(
        ctx.runner,
        ctx.docker.as_ref(),
        ctx.docker_host.as_deref(),
        stack,
        settings,
    );
    let report = tokio::select! {
        r = run => r,
        why = stop.wait() => return StepEnd::Cancelled(why),
    };
    let report = match report {
        Ok(r) => r,
        Err(why) => return StepEnd::fail(format!("the pre-flight could not run: {why}")),
    };
    let lines: Vec<String> = report
        .items
        .iter()
        .map(|i| format!("{:<6} {}", i.verdict.word(), i.text))
        .collect();
    t.lines(Some(step), LineKind::Info, lines).await;
    match report.stops(settings.force) {
        Some(why) => StepEnd::Refused(why),
        None => {
            let word = match report.verdict() {
                Verdict::Warn => format!("pre-flight: {}: going on (forced)", report.summary()),
                _ => format!("pre-flight: {}", report.summary()),
            };
            t.info(Some(step), word).await;
            StepEnd::Ok
        }
    }
}

#[cfg(test)]
mod tests;
