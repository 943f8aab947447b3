//! `opsdeck run HOST backup [SET] [--stack STACK] --yes`: one action on one host, without
//! the console. Progress goes to stderr, the result to stdout, one line in the audit log.
//!
//! Exit status: 0 done, 1 the action failed (or could not reach the host), 2 nothing was
//! attempted (usage, inventory, no `--yes`, read-only), 130 interrupted.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::config::{BackupSet, Config, Host, Stack};
use crate::jobs::audit;
use crate::jobs::backup::{self, BackupError, BackupEvent, BackupJob, BackupOutcome};
use crate::jobs::{Local, Runner};
use crate::remote::Shared;
use crate::remote::ssh::{self, Session};

/// The command line of `opsdeck run`.
#[derive(Debug, Clone, Default)]
pub struct RunArgs {
    pub host: String,
    pub action: String,
    /// The action's argument: for `backup`, the set's name.
    pub arg: Option<String>,
    pub stack: Option<String>,
    pub yes: bool,
    pub accept_new: bool,
    /// `--read-only` on the command line.
    pub read_only: bool,
}

const ACTIONS: &str = "backup";

/// Runs the action and says how it went; the exit status is the whole answer for scripts.
pub async fn run(config: Config, args: RunArgs) -> ExitCode {
    let Some(host) = config
        .inventory
        .hosts
        .iter()
        .find(|h| h.name.get_ref() == &args.host)
    else {
        let known: Vec<&str> = config
            .inventory
            .hosts
            .iter()
            .map(|h| h.name.get_ref().as_str())
            .collect();
        return usage(&format!(
            "unknown host {:?} (the inventory has: {})",
            args.host,
            known.join(", ")
        ));
    };
    if args.action != "backup" {
        return usage(&format!(
            "unknown action {:?}: `opsdeck run` knows {ACTIONS}",
            args.action
        ));
    }
    let (stack, set) = match pick(host, args.stack.as_deref(), args.arg.as_deref()) {
        Ok(found) => found,
        Err(e) => return usage(&e),
    };
    let what = format!("backup {}/{}", stack.name.get_ref(), set.name.get_ref());
    if let Some(why) = read_only(&config, host, args.read_only) {
        return usage(&format!(
            "refused: {what} on {} changes the host, and {why}",
            args.host
        ));
    }
    if !args.yes {
        return usage(&format!(
            "{what} on {} changes the host: pass --yes to run without confirmation",
            args.host
        ));
    }
    let job = BackupJob::new(host, stack, set);
    let started = Instant::now();
    let result = if host.is_local() {
        interruptible(&Local::new(), &job).await
    } else {
        let shared = Shared::new(args.accept_new);
        let target = ssh::resolve(host, &config.inventory.settings, shared.ssh_config.as_ref());
        match Session::connect(&target, &shared.policy, &ssh::Passphrases::new()).await {
            Ok(session) => {
                let result = interruptible(&session, &job).await;
                if result.is_some() {
                    session.disconnect().await;
                }
                result
            }
            Err(e) => Some(Err(format!("cannot connect: {e}"))),
        }
    };
    let result = result.unwrap_or_else(|| Err("interrupted".into()));
    record(&args.host, &job, &result, started.elapsed());
    match result {
        Ok(outcome) => {
            report(&outcome);
            match outcome.retention_error {
                Some(e) => {
                    eprintln!("opsdeck: {what}: the backup is saved, but {e}");
                    ExitCode::FAILURE
                }
                None => ExitCode::SUCCESS,
            }
        }
        Err(e) if e == "interrupted" => {
            eprintln!("opsdeck: {what} interrupted; the host removes its partial file");
            ExitCode::from(130)
        }
        Err(e) => {
            eprintln!("opsdeck: {what} failed: {e}");
            ExitCode::FAILURE
        }
    }
}

fn usage(message: &str) -> ExitCode {
    eprintln!("opsdeck: {message}");
    ExitCode::from(2)
}

/// Why the host may not be changed, if it may not.
fn read_only(config: &Config, host: &Host, flag: bool) -> Option<&'static str> {
    if flag {
        Some("--read-only is set")
    } else if config.inventory.settings.read_only {
        Some("the inventory's settings say read_only")
    } else if host.read_only {
        Some("the host is read_only in the inventory")
    } else {
        None
    }
}

/// The backup set to take: the one named (within `--stack` if given), or the host's only
/// set with a recipe.
pub fn pick<'a>(
    host: &'a Host,
    stack: Option<&str>,
    name: Option<&str>,
) -> Result<(&'a Stack, &'a BackupSet), String> {
    let hname = host.name.get_ref();
    if let Some(s) = stack
        && !host.stacks.iter().any(|st| st.name.get_ref() == s)
    {
        let known: Vec<&str> = host
            .stacks
            .iter()
            .map(|s| s.name.get_ref().as_str())
            .collect();
        return Err(format!(
            "host {hname} has no stack {s:?} (it has: {})",
            known.join(", ")
        ));
    }
    let sets: Vec<(&Stack, &BackupSet)> = host
        .stacks
        .iter()
        .filter(|st| stack.is_none_or(|s| st.name.get_ref() == s))
        .flat_map(|st| st.backups.iter().map(move |b| (st, b)))
        .collect();
    let listing = || {
        if sets.is_empty() {
            return "none".to_string();
        }
        sets.iter()
            .map(|(st, b)| {
                let kind = if b.pg_dump.is_some() {
                    "pg_dump"
                } else if b.file_copy.is_some() {
                    "file_copy"
                } else {
                    "watched only"
                };
                format!("{} (stack {}, {kind})", b.name.get_ref(), st.name.get_ref())
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let takeable = |b: &BackupSet| b.pg_dump.is_some() || b.file_copy.is_some();
    let chosen: Vec<&(&Stack, &BackupSet)> = match name {
        Some(n) => sets.iter().filter(|(_, b)| b.name.get_ref() == n).collect(),
        None => sets.iter().filter(|(_, b)| takeable(b)).collect(),
    };
    match (chosen.as_slice(), name) {
        ([(st, b)], _) if takeable(b) => Ok((st, b)),
        ([(_, b)], _) => Err(format!(
            "backup set {:?} has no pg_dump or file_copy recipe: opsdeck only watches it",
            b.name.get_ref()
        )),
        ([], Some(n)) => Err(format!(
            "host {hname} has no backup set {n:?} (sets: {})",
            listing()
        )),
        ([], None) => Err(format!(
            "host {hname} has no backup set opsdeck can take (sets: {})",
            listing()
        )),
        (_, Some(n)) => Err(format!(
            "backup set {n:?} is in several stacks of {hname}: choose one with --stack (sets: {})",
            listing()
        )),
        (_, None) => Err(format!(
            "host {hname} has several backup sets: name one (sets: {})",
            listing()
        )),
    }
}

/// The job with its progress printer, until done or until SIGINT/SIGTERM (`None`). On a
/// signal opsdeck just goes: the closing connection is what tells the host's script to
/// stop and clean up.
async fn interruptible<R: Runner>(
    runner: &R,
    job: &BackupJob<'_>,
) -> Option<Result<BackupOutcome, String>> {
    let (tx, rx) = mpsc::channel(64);
    let printer = tokio::spawn(print_events(rx, std::io::stderr().is_terminal()));
    let result = tokio::select! {
        r = backup::run(runner, job, &tx) => Some(r.map_err(|e: BackupError| e.to_string())),
        () = stop_signal() => None,
    };
    drop(tx);
    if result.is_some() {
        let _ = printer.await;
    }
    result
}

async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// Progress on stderr: rewritten in place on a terminal, one line per second otherwise.
async fn print_events(mut rx: mpsc::Receiver<BackupEvent>, tty: bool) {
    let mut pending_line = false;
    while let Some(event) = rx.recv().await {
        let mut err = std::io::stderr().lock();
        let line = match event {
            BackupEvent::Started { what } => format!("opsdeck: {what}"),
            BackupEvent::Progress { bytes, elapsed } => {
                let text = format!("{}  {}", human_bytes(bytes), human_secs(elapsed));
                if tty {
                    let _ = write!(err, "\r\x1b[K{text}");
                    let _ = err.flush();
                    pending_line = true;
                    continue;
                }
                text
            }
            BackupEvent::Verified => "verified".into(),
            BackupEvent::Warning(w) => format!("opsdeck: warning: {w}"),
            BackupEvent::Renamed { .. }
            | BackupEvent::Removed { .. }
            | BackupEvent::Finished(_) => {
                continue;
            }
        };
        if pending_line {
            let _ = write!(err, "\r\x1b[K");
            pending_line = false;
        }
        let _ = writeln!(err, "{line}");
    }
    if pending_line {
        let _ = writeln!(std::io::stderr());
    }
}

fn report(outcome: &BackupOutcome) {
    println!(
        "{}  {} bytes ({})  {}",
        outcome.path,
        outcome.size,
        human_bytes(outcome.size),
        human_secs(outcome.duration)
    );
    for path in &outcome.removed {
        println!("removed {path}");
    }
}

/// One audit line; a log that cannot be written is reported, not fatal.
fn record(
    host: &str,
    job: &BackupJob<'_>,
    result: &Result<BackupOutcome, String>,
    duration: Duration,
) {
    let (stack, set) = (job.stack.name.get_ref(), job.set.name.get_ref());
    if let Err(e) = audit::record_backup(host, stack, set, result, duration) {
        eprintln!("opsdeck: warning: {e}");
    }
}

/// `532 B`, `12.3 MB`, `1.1 GB`: decimal, as file managers and `ls -h --si` print.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["kB", "MB", "GB", "TB", "PB"];
    if n < 1000 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1000.0;
    let mut unit = 0;
    while v >= 999.95 && unit < UNITS.len() - 1 {
        v /= 1000.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

/// `4s`, `1m05s`, `0.8s` for runs under ten seconds.
fn human_secs(d: Duration) -> String {
    let s = d.as_secs();
    if s < 10 {
        format!("{:.1}s", d.as_secs_f64())
    } else if s < 60 {
        format!("{s}s")
    } else {
        format!("{}m{:02}s", s / 60, s % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_str;
    use std::path::Path;

    fn host(text: &str) -> Host {
        parse_str(text, Path::new("t.toml"))
            .unwrap()
            .hosts
            .remove(0)
    }

    const TWO: &str = r#"
[[host]]
name = "cs"
[[host.stack]]
name = "app"
dir = "~/app"
[[host.stack.backup]]
name = "db"
dir = "~/b"
glob = "db-*.dump"
max_age = "1d"
[host.stack.backup.pg_dump]
service = "db"
database = "app"
[[host.stack.backup]]
name = "uploads"
dir = "~/b"
glob = "up-*.tgz"
max_age = "1d"
[[host.stack]]
name = "other"
dir = "~/other"
[[host.stack.backup]]
name = "db"
dir = "~/o"
glob = "o-*.db"
max_age = "1d"
[host.stack.backup.file_copy]
source = "o.db"
"#;

    #[test]
    fn picks_by_name_stack_or_the_only_takeable_set() {
        let h = host(TWO);
        let err = pick(&h, None, None).unwrap_err();
        assert!(err.contains("several backup sets"), "{err}");
        assert!(err.contains("uploads (stack app, watched only)"), "{err}");
        let err = pick(&h, None, Some("db")).unwrap_err();
        assert!(err.contains("--stack"), "{err}");
        let (st, b) = pick(&h, Some("app"), None).unwrap();
        assert_eq!(
            (st.name.get_ref().as_str(), b.name.get_ref().as_str()),
            ("app", "db")
        );
        let (st, _) = pick(&h, Some("other"), Some("db")).unwrap();
        assert_eq!(st.name.get_ref(), "other");
        assert!(
            pick(&h, None, Some("uploads"))
                .unwrap_err()
                .contains("only watches")
        );
        assert!(
            pick(&h, None, Some("nope"))
                .unwrap_err()
                .contains("no backup set \"nope\"")
        );
        assert!(
            pick(&h, Some("nope"), None)
                .unwrap_err()
                .contains("no stack")
        );
    }

    #[test]
    fn sizes_and_times_read_like_a_person_wrote_them() {
        assert_eq!(human_bytes(532), "532 B");
        assert_eq!(human_bytes(12_345_678), "12.3 MB");
        assert_eq!(human_bytes(999_999), "1.0 MB");
        assert_eq!(human_bytes(1_100_000_000), "1.1 GB");
        assert_eq!(human_secs(Duration::from_millis(800)), "0.8s");
        assert_eq!(human_secs(Duration::from_secs(42)), "42s");
        assert_eq!(human_secs(Duration::from_secs(65)), "1m05s");
    }
}
