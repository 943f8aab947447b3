//! `opsdeck run HOST ACTION [ARG] [--stack STACK] [--yes]`: one job on one host, without
//! the console, for scripts and CI. The job is the console's (same plan, lock, steps and
//! audit record); its output streams as it comes: the steps' stdout to stdout, their
//! stderr and opsdeck's own lines to stderr.
//!
//! Exit status: 0 done; 1 the job failed (or the host could not be reached); 2 nothing
//! was attempted (usage, inventory, no `--yes`, read-only); 75 the stack is locked by
//! another job (try again later); 130 interrupted or cancelled.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::config::{BackupSet, Config, Host, Stack};
use crate::jobs::exec::{self, Context};
use crate::jobs::plan::{self, Plan};
use crate::jobs::{Local, Runner, audit};
use crate::model::job::{JobEvent, JobKind, JobRecord, JobRequest, LineKind};
use crate::remote::Shared;
use crate::remote::ssh::{self, Session};

/// The command line of `opsdeck run`.
#[derive(Debug, Clone, Default)]
pub struct RunArgs {
    pub host: String,
    pub action: String,
    /// The action's argument: the set for `backup`, the container for `restart`.
    pub arg: Option<String>,
    pub stack: Option<String>,
    pub yes: bool,
    pub accept_new: bool,
    /// `--read-only` on the command line.
    pub read_only: bool,
}

/// What `opsdeck run` knows besides the stacks' custom actions.
pub const ACTIONS: &str = "deploy, migrate, rollback, restart [CONTAINER], backup [SET]";
/// Exit status when the stack is locked by another job.
pub const LOCKED: u8 = 75;

/// Runs the job and says how it went; the exit status is the whole answer for scripts.
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
    let stack_flag = args.stack.clone().unwrap_or_default();
    // `restart CONTAINER` is resolved on the host, once connected.
    let container = match (args.action.as_str(), &args.arg) {
        ("restart", Some(c)) => Some(c.clone()),
        _ => None,
    };
    let request = match request(host, &args, &stack_flag) {
        Ok(r) => r,
        Err(e) => return usage(&e),
    };
    let hname = host.name.get_ref();
    let plan = match plan::plan(hname, &host.stacks, &request) {
        Ok(p) => p,
        Err(e) => return usage(&e),
    };
    let what = describe(&plan);
    if plan.mutating {
        if let Some(why) = read_only(&config, host, args.read_only) {
            return usage(&format!("refused: {what} changes the host, and {why}"));
        }
        if !args.yes {
            match confirm(host, &what) {
                Ok(true) => {}
                Ok(false) => {
                    eprintln!("opsdeck: not confirmed: nothing was done");
                    return ExitCode::from(2);
                }
                Err(()) => {
                    return usage(&format!(
                        "{what} changes the host: pass --yes to run without confirmation"
                    ));
                }
            }
        }
    }
    if host.is_local() {
        let docker = crate::docker::connect_unix(host.docker_socket())
            .await
            .map(|(d, _)| d)
            .ok();
        return on_host(
            &Local::new(),
            host,
            docker,
            None,
            plan,
            container.as_deref(),
            &stack_flag,
        )
        .await;
    }
    let shared = Shared::new(args.accept_new);
    let target = ssh::resolve(host, &config.inventory.settings, shared.ssh_config.as_ref());
    let session = match Session::connect(&target, &shared.policy, &ssh::Passphrases::new()).await {
        Ok(s) => Arc::new(s),
        Err(e) => {
            eprintln!("opsdeck: {what}: cannot connect: {e}");
            return ExitCode::FAILURE;
        }
    };
    let docker = ssh::docker(session.clone(), host.docker_socket())
        .await
        .map(|(d, _)| d)
        .ok();
    let tunnel: Arc<dyn crate::checks::Tunnel> = session.clone();
    let code = on_host(
        &*session,
        host,
        docker,
        Some(tunnel),
        plan,
        container.as_deref(),
        &stack_flag,
    )
    .await;
    session.disconnect().await;
    code
}

/// The job on a connected host (this machine or an SSH session): `restart CONTAINER`
/// resolved first, then the job with its printer, then the last word.
async fn on_host<R: Runner>(
    runner: &R,
    host: &Host,
    docker: Option<bollard::Docker>,
    tunnel: Option<Arc<dyn crate::checks::Tunnel>>,
    mut plan: Plan,
    container: Option<&str>,
    stack: &str,
) -> ExitCode {
    if let Some(wanted) = container {
        match resolve_container(docker.as_ref(), host, stack, wanted).await {
            Ok(p) => plan = p,
            Err(e) => return usage(&e),
        }
    }
    let ctx = Context {
        runner,
        docker,
        tunnel,
        docker_host: host.docker_socket.clone(),
        audit: audit::path(),
        user: audit::local_user(),
    };
    finish(&plan, interruptible(&ctx, &plan).await)
}

/// `deploy of stack lila on lila`.
fn describe(plan: &Plan) -> String {
    if plan.stack_name.is_empty() {
        format!("{} on {}", plan.action, plan.host)
    } else {
        format!(
            "{} of stack {} on {}",
            plan.action, plan.stack_name, plan.host
        )
    }
}

/// The request the command line names.
fn request(host: &Host, args: &RunArgs, stack: &str) -> Result<JobRequest, String> {
    let kind = match args.action.as_str() {
        "deploy" => JobKind::Deploy,
        "migrate" => JobKind::Migrate,
        "rollback" => JobKind::Rollback,
        // resolved to a container once connected
        "restart" if args.arg.is_some() => JobKind::Restart {
            id: String::new(),
            name: String::new(),
        },
        "restart" => JobKind::RestartStack,
        "backup" => {
            let (st, set) = pick(host, args.stack.as_deref(), args.arg.as_deref())?;
            return Ok(JobRequest {
                stack: st.name.get_ref().clone(),
                kind: JobKind::Backup {
                    set: set.name.get_ref().clone(),
                },
            });
        }
        other => {
            let (st, name) = find_custom(host, stack, other)?;
            return Ok(JobRequest {
                stack: st,
                kind: JobKind::Custom { name },
            });
        }
    };
    Ok(JobRequest {
        stack: stack.to_string(),
        kind,
    })
}

/// A custom action by name (or the name with `-` for spaces), within `stack` if given.
fn find_custom(host: &Host, stack: &str, wanted: &str) -> Result<(String, String), String> {
    let hits: Vec<(String, String)> = host
        .stacks
        .iter()
        .filter(|st| stack.is_empty() || st.name.get_ref() == stack)
        .flat_map(|st| {
            st.actions
                .iter()
                .map(move |a| (st.name.get_ref().clone(), a.name.get_ref().clone()))
        })
        .filter(|(_, name)| name == wanted || name.replace(' ', "-") == wanted)
        .collect();
    match hits.as_slice() {
        [one] => Ok(one.clone()),
        [] => {
            let customs: Vec<String> = host
                .stacks
                .iter()
                .flat_map(|st| st.actions.iter().map(|a| format!("{:?}", a.name.get_ref())))
                .collect();
            let extra = if customs.is_empty() {
                String::new()
            } else {
                format!(", or a custom action: {}", customs.join(", "))
            };
            Err(format!(
                "unknown action {wanted:?}: `opsdeck run` knows {ACTIONS}{extra}"
            ))
        }
        _ => Err(format!(
            "action {wanted:?} is in several stacks of {}: choose one with --stack",
            host.name.get_ref()
        )),
    }
}

/// The plan for `restart CONTAINER`: the container found by name, service or id prefix;
/// its stack's lock when it belongs to one of the inventory's stacks.
async fn resolve_container(
    docker: Option<&bollard::Docker>,
    host: &Host,
    stack: &str,
    wanted: &str,
) -> Result<Plan, String> {
    let docker = docker.ok_or("Docker is not reachable on the host")?;
    let containers = crate::docker::InspectCache::default().list(docker).await?;
    // within --stack, when given: its compose project's containers
    let project = host
        .stacks
        .iter()
        .find(|s| s.name.get_ref() == stack)
        .map(crate::jobs::compose::project_name);
    let candidates: Vec<&crate::model::Container> = containers
        .iter()
        .filter(|c| stack.is_empty() || (project.is_some() && c.project == project))
        .collect();
    let hit = super::logs::pick(&candidates, wanted)?;
    let owner = host
        .stacks
        .iter()
        .find(|s| hit.project.as_deref() == Some(crate::jobs::compose::project_name(s).as_str()));
    let request = JobRequest {
        stack: owner.map(|s| s.name.get_ref().clone()).unwrap_or_default(),
        kind: JobKind::Restart {
            id: hit.id.clone(),
            name: hit.name.clone(),
        },
    };
    plan::plan(host.name.get_ref(), &host.stacks, &request)
}

/// Asks on the terminal: `y`, or the host's name for a production host. `Err` when
/// there is no terminal to ask on.
fn confirm(host: &Host, what: &str) -> Result<bool, ()> {
    if !std::io::stdin().is_terminal() || !std::io::stderr().is_terminal() {
        return Err(());
    }
    let name = host.name.get_ref();
    let mut err = std::io::stderr();
    if host.production {
        let _ = write!(err, "{what}: PRODUCTION host. Type {name} to go on: ");
    } else {
        let _ = write!(err, "{what}? [y/N] ");
    }
    let _ = err.flush();
    let mut line = String::new();
    if std::io::stdin().read_line(&mut line).is_err() {
        return Ok(false);
    }
    let line = line.trim();
    Ok(if host.production {
        line == name
    } else {
        matches!(line, "y" | "Y" | "yes")
    })
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

/// The job with its printer. The first SIGINT or SIGTERM cancels it (the host stops the
/// running step, and the record says so); a second one leaves at once.
async fn interruptible<R: Runner>(ctx: &Context<'_, R>, plan: &Plan) -> JobRecord {
    let (tx, rx) = mpsc::channel(256);
    let printer = tokio::spawn(print_events(
        rx,
        plan.steps.len(),
        std::io::stderr().is_terminal(),
    ));
    let (cancel, cancel_rx) = exec::cancel_channel();
    let record = {
        let job = exec::execute(ctx, plan, &tx, cancel_rx);
        tokio::pin!(job);
        tokio::select! {
            r = &mut job => r,
            sig = stop_signal() => {
                eprintln!("\nopsdeck: {sig}: stopping the job (again to leave at once)");
                let _ = cancel.send(Some(format!("interrupted ({sig})")));
                tokio::select! {
                    r = &mut job => r,
                    _ = stop_signal() => std::process::exit(130),
                }
            }
        }
    };
    drop(tx);
    let _ = printer.await;
    record
}

async fn stop_signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            return tokio::select! {
                _ = tokio::signal::ctrl_c() => "SIGINT",
                _ = term.recv() => "SIGTERM",
            };
        }
    }
    let _ = tokio::signal::ctrl_c().await;
    "SIGINT"
}

/// Output as it comes: step headers and results on stderr, each line where the step
/// wrote it; backup progress rewritten in place on a terminal, once a second otherwise.
async fn print_events(mut rx: mpsc::Receiver<JobEvent>, mut total: usize, tty: bool) {
    let started = Instant::now();
    let mut pending_line = false;
    let mut labels: Vec<String> = Vec::new();
    while let Some(event) = rx.recv().await {
        let mut err = std::io::stderr().lock();
        if pending_line && !matches!(event, JobEvent::Progress { .. }) {
            let _ = write!(err, "\r\x1b[K");
            pending_line = false;
        }
        match event {
            JobEvent::Planned { steps } => {
                total = steps.len();
                labels = steps;
            }
            JobEvent::StepStarted { index } => {
                let label = labels.get(index).map_or("", String::as_str);
                let _ = writeln!(err, "==> [{}/{total}] {label}", index + 1);
            }
            JobEvent::Output(lines) => {
                let mut out = std::io::stdout().lock();
                for l in lines {
                    match l.kind {
                        LineKind::Out => {
                            let _ = writeln!(out, "{}", l.text);
                        }
                        LineKind::Err => {
                            let _ = writeln!(err, "{}", l.text);
                        }
                        LineKind::Info => {
                            let _ = writeln!(err, "    {}", l.text);
                        }
                    }
                }
                let _ = out.flush();
            }
            JobEvent::StepFinished {
                ok, exit, millis, ..
            } => {
                let took = human_secs(Duration::from_millis(millis));
                let exit = exit
                    .filter(|e| *e != 0)
                    .map(|e| format!("exit {e}, "))
                    .unwrap_or_default();
                let verdict = if ok { "ok" } else { "FAILED" };
                let _ = writeln!(err, "    {verdict} ({exit}{took})");
            }
            JobEvent::Progress { bytes } => {
                let text = format!("{}  {}", human_bytes(bytes), human_secs(started.elapsed()));
                if tty {
                    let _ = write!(err, "\r\x1b[K{text}");
                    pending_line = true;
                } else {
                    let _ = writeln!(err, "{text}");
                }
            }
            JobEvent::Finished(_) => {}
        }
        let _ = err.flush();
    }
    if pending_line {
        let _ = writeln!(std::io::stderr());
    }
}

/// The last word, and the exit status.
fn finish(plan: &Plan, record: JobRecord) -> ExitCode {
    let what = describe(plan);
    let outcome = record.outcome.as_str();
    if let (Some(file), Some(size)) = (&record.file, record.size) {
        println!(
            "{file}  {size} bytes ({})  {}",
            human_bytes(size),
            human_secs(Duration::from_millis(record.duration_ms))
        );
        for l in &record.output {
            if let Some(path) = l.text.strip_prefix("retention removed ") {
                println!("removed {path}");
            }
        }
    }
    if outcome == "ok" {
        eprintln!(
            "opsdeck: {what}: done: {}",
            record.summary.as_deref().unwrap_or("ok")
        );
        return ExitCode::SUCCESS;
    }
    if let Some(warning) = outcome.strip_prefix("ok; ") {
        eprintln!("opsdeck: {what}: the backup is saved, but {warning}");
        return ExitCode::FAILURE;
    }
    if let Some(why) = outcome.strip_prefix("refused: ") {
        eprintln!("opsdeck: {what} refused: {why}");
        return ExitCode::from(LOCKED);
    }
    if let Some(why) = outcome.strip_prefix("cancelled: ") {
        let extra = if matches!(
            plan.steps.first().map(|s| &s.kind),
            Some(plan::StepKind::Backup(_))
        ) {
            "; the host removes its partial file"
        } else {
            ""
        };
        eprintln!("opsdeck: {what} {why}{extra}");
        return ExitCode::from(130);
    }
    eprintln!(
        "opsdeck: {what} {}",
        if outcome.starts_with("failed: ") {
            outcome.to_string()
        } else {
            format!("failed: {outcome}")
        }
    );
    ExitCode::FAILURE
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
