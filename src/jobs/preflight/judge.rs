//! The pre-flight's verdicts on what the host script gathered: what is ok, what is a
//! warning (a forced deploy goes on), what refuses.

use super::NAMED_FILES;
use super::parse::{Df, Gathered, Git, LockSeen, short};
use crate::model::preflight::{Item, Report, Topic, Verdict};

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
