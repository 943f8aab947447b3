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
use std::time::{Duration, Instant};

use tokio::signal::unix::SignalKind;
use tokio::sync::mpsc;

use crate::config::{BackupSet, Config, Host, Stack};
use crate::jobs::plan::{self, Plan};
use crate::jobs::{audit, exec};
use crate::model::job::{
    ContainerOp, JobEvent, JobKind, JobOptions, JobRecord, JobRequest, LineKind, Signal,
};
use crate::model::{DockerState, HostSnapshot, Msg};
use crate::remote::{self, HostCmd, HostHandle, Shared};
use crate::runtime::Signals;
use crate::sanitize;

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
    /// `--signal` for `kill`.
    pub signal: Option<String>,
    /// `--force`, `--check`, `--to`, `--checkout`.
    pub opts: JobOptions,
    /// `--json`, for `deploy --check`.
    pub json: bool,
}

/// What `opsdeck run` knows besides the stacks' custom actions.
pub const ACTIONS: &str = "deploy, migrate, rollback [--to N], restore [SET] --to N, \
                           restart [CONTAINER], backup [SET], \
                           stop|start|kill|pause|unpause|rm CONTAINER";
/// Exit status when the stack is locked by another job.
pub const LOCKED: u8 = 75;

/// Runs the job and says how it went; the exit status is the whole answer for scripts.
pub async fn run(config: Config, args: RunArgs) -> ExitCode {
    let (index, host) = match find_host(&config, &args.host) {
        Ok(found) => found,
        Err(e) => return usage(&e),
    };
    let stack_flag = args.stack.clone().unwrap_or_default();
    // `restart CONTAINER` (and stop, kill...) is resolved on the host, once connected.
    let container = match (args.action.as_str(), &args.arg) {
        ("restart", Some(c)) => Some(c.clone()),
        (verb, Some(c)) if ContainerOp::parse(verb, None).is_some() => Some(c.clone()),
        _ => None,
    };
    let mut request = match request(host, &args, &stack_flag) {
        Ok(r) => r,
        Err(e) => return usage(&e),
    };
    let hname = host.name.get_ref();
    let mut plan = match plan::plan(hname, &host.stacks, &request) {
        Ok(p) => p,
        Err(e) => return usage(&e),
    };
    let what = describe(&plan);
    if request.opts.check_only {
        let ro = read_only(&config, host, args.read_only);
        return check_only(index, host, &config, &args, &plan, ro).await;
    }
    if plan.mutating {
        if let Some(why) = read_only(&config, host, args.read_only) {
            return usage(&format!("refused: {what} changes the host, and {why}"));
        }
        if !args.yes {
            match confirm(host, &what) {
                Ok(true) => {}
                Ok(false) => {
                    say("not confirmed: nothing was done");
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
    // The console's worker for this host runs the job: the same connection, Docker
    // client, job runner, lock and audit record as pressing the key in the console.
    let mut signals = Signals::new(&RUN_SIGNALS);
    if let Err(e) = &signals {
        say(&format!("cannot listen for signals: {e}"));
    }
    let (worker, mut rx, snapshot) =
        match connect(index, host, &config, args.accept_new, &mut signals).await {
            Ok(ready) => ready,
            Err(NotReady::Unreachable(e)) => {
                say(&format!("{what}: cannot connect: {e}"));
                return ExitCode::FAILURE;
            }
            Err(NotReady::Signal(sig)) => {
                say(&format!("{sig}: nothing was done"));
                return ExitCode::from(130);
            }
        };
    if let Some(wanted) = &container {
        match resolve_container(&snapshot, host, &stack_flag, wanted, &request.kind) {
            Ok((r, p)) => (request, plan) = (r, p),
            Err(e) => return usage(&e),
        }
    }
    worker.send(HostCmd::Job(request));
    let (mut printer, record) = follow(worker, &mut rx, &plan, &mut signals).await;
    let code = printer.finish(&plan, &record);
    // The worker closes its connection politely once its handle is gone; wait for it
    // (bounded), so the host sees a clean logout rather than a reset.
    let _ = tokio::time::timeout(CLOSE_WAIT, async { while rx.recv().await.is_some() {} }).await;
    code
}

/// How long `deploy --check` waits for the pre-flight's report once connected.
const CHECK_WAIT: Duration = Duration::from_secs(150);

/// `deploy --check`: the pre-flight alone, no lock, nothing changed (but `git fetch`,
/// which read-only mode leaves out), no `--yes`. Exit 0 ok, 1 warnings, 2 refused (or
/// nothing checked), 130 interrupted.
async fn check_only(
    index: usize,
    host: &Host,
    config: &Config,
    args: &RunArgs,
    plan: &Plan,
    read_only: Option<&'static str>,
) -> ExitCode {
    let what = format!("pre-flight of {}", describe(plan));
    if let Some(why) = read_only {
        say(&format!(
            "{why}: no git fetch; the checkout is compared with its upstream as last fetched"
        ));
    }
    let mut signals = Signals::new(&RUN_SIGNALS);
    let (worker, mut rx, _) =
        match connect(index, host, config, args.accept_new, &mut signals).await {
            Ok(ready) => ready,
            Err(NotReady::Unreachable(e)) => {
                say(&format!("{what}: cannot connect: {e}"));
                return ExitCode::from(2);
            }
            Err(NotReady::Signal(sig)) => {
                say(&format!("{sig}: nothing was checked"));
                return ExitCode::from(130);
            }
        };
    worker.send(HostCmd::Preflight {
        id: 1,
        stack: plan.stack_name.clone(),
        fetch: read_only.is_none(),
    });
    let deadline = tokio::time::Instant::now() + CHECK_WAIT;
    let report = loop {
        tokio::select! {
            msg = tokio::time::timeout_at(deadline, rx.recv()) => match msg {
                Ok(Some(Msg::Preflight { report, .. })) => break report,
                Ok(Some(_)) => {}
                Ok(None) => break Err("the host's worker stopped (see opsdeck.log)".into()),
                Err(_) => break Err(format!("no report within {}s", CHECK_WAIT.as_secs())),
            },
            sig = next_signal(&mut signals) => {
                say(&format!("{sig}: the pre-flight was not finished"));
                return ExitCode::from(130);
            }
        }
    };
    drop(worker);
    let _ = tokio::time::timeout(CLOSE_WAIT, async { while rx.recv().await.is_some() {} }).await;
    let report = match report {
        Ok(r) => r,
        Err(why) => {
            say(&format!("{what}: could not run: {why}"));
            return ExitCode::from(2);
        }
    };
    let verdict = report.verdict();
    let mut out = std::io::stdout();
    if args.json {
        let json = serde_json::json!({
            "host": plan.host,
            "stack": plan.stack_name,
            "verdict": verdict,
            "summary": report.summary(),
            "items": report.items,
        });
        let _ = writeln!(out, "{}", crate::cli::json_text(&json));
    } else {
        let _ = writeln!(out, "{}:", sanitize::line(&what));
        for i in &report.items {
            let _ = writeln!(out, "  {:<7} {}", i.verdict.word(), sanitize::line(&i.text));
        }
    }
    let _ = out.flush();
    let word = match verdict {
        crate::model::preflight::Verdict::Ok => "a deploy would go on",
        crate::model::preflight::Verdict::Warn => "a deploy would stop unless forced (--force)",
        crate::model::preflight::Verdict::Refuse => "a deploy would be refused",
    };
    say(&format!("{what}: {}: {word}", report.summary()));
    ExitCode::from(verdict.exit_code())
}

/// Why a command's worker is not ready for it.
pub(crate) enum NotReady {
    /// The host cannot be reached, and why.
    Unreachable(String),
    /// A signal came first (its name): nothing was done.
    Signal(&'static str),
}

/// The console's worker for host `index`, watching what a command needs, once it is
/// connected and has asked Docker; its messages; its first snapshot that can serve.
pub(crate) async fn connect(
    index: usize,
    host: &Host,
    config: &Config,
    accept_new: bool,
    signals: &mut std::io::Result<Signals>,
) -> Result<
    (
        HostHandle,
        mpsc::Receiver<Msg>,
        std::sync::Arc<HostSnapshot>,
    ),
    NotReady,
> {
    let shared = Shared::new(accept_new);
    let (tx, mut rx) = mpsc::channel::<Msg>(1024);
    let worker = remote::spawn_for_jobs(index, host, config, &shared, tx);
    tokio::select! {
        r = remote::ready(&mut rx) => match r {
            Ok(s) => Ok((worker, rx, s)),
            Err(e) => Err(NotReady::Unreachable(e)),
        },
        sig = next_signal(signals) => Err(NotReady::Signal(sig)),
    }
}

/// The containers Docker listed in `snapshot`, or why there are none.
pub(crate) fn containers(snapshot: &HostSnapshot) -> Result<&[crate::model::Container], String> {
    match (&snapshot.docker, &snapshot.containers) {
        (_, Some((_, list))) => Ok(list),
        (DockerState::Unavailable { reason }, None) => {
            Err(format!("Docker is not reachable on the host: {reason}"))
        }
        _ => Err("Docker is not reachable on the host".into()),
    }
}

/// The inventory's stack whose compose project the container belongs to.
pub(crate) fn stack_of<'h>(host: &'h Host, c: &crate::model::Container) -> Option<&'h Stack> {
    host.stacks
        .iter()
        .find(|s| c.project.as_deref() == Some(crate::jobs::compose::project_name(s).as_str()))
}

/// The inventory's host by name, with its index; the error lists the names there are.
pub(crate) fn find_host<'c>(config: &'c Config, name: &str) -> Result<(usize, &'c Host), String> {
    let hosts = &config.inventory.hosts;
    hosts
        .iter()
        .enumerate()
        .find(|(_, h)| h.name.get_ref() == name)
        .ok_or_else(|| {
            let known: Vec<&str> = hosts.iter().map(|h| h.name.get_ref().as_str()).collect();
            format!(
                "unknown host {name:?} (the inventory has: {})",
                known.join(", ")
            )
        })
}

/// How long a job's worker gets to log out when the job is over.
pub(crate) const CLOSE_WAIT: Duration = Duration::from_secs(3);

/// The job's events, printed as they come, until its end. The first SIGINT, SIGTERM or
/// SIGHUP (the operator's SSH session dropped) cancels it: the host stops the running
/// step, and the record says so. A second one leaves at once: the worker is dropped, and
/// with it the job, which writes its record as it goes.
async fn follow(
    worker: HostHandle,
    rx: &mut mpsc::Receiver<Msg>,
    plan: &Plan,
    signals: &mut std::io::Result<Signals>,
) -> (Printer, JobRecord) {
    let printer = Printer::stdio(plan.steps.len());
    follow_with(printer, worker, rx, plan, signals).await
}

/// [`follow`] printing with `printer` (`opsdeck run --hosts` prefixes each host's lines).
pub(crate) async fn follow_with<O: Write, E: Write>(
    mut printer: Printer<O, E>,
    worker: HostHandle,
    rx: &mut mpsc::Receiver<Msg>,
    plan: &Plan,
    signals: &mut std::io::Result<Signals>,
) -> (Printer<O, E>, JobRecord) {
    let mut record = None;
    let mut stopping = false;
    loop {
        tokio::select! {
            msg = rx.recv() => match msg {
                Some(Msg::Job { event: JobEvent::Recorded(r), .. }) => record = Some(*r),
                Some(Msg::Job { event: JobEvent::Finished(result), .. }) => {
                    printer.end();
                    let record = record.unwrap_or_else(|| unrecorded(plan, result));
                    return (printer, record);
                }
                Some(Msg::Job { event, .. }) => printer.event(event),
                Some(_) => {}
                None => {
                    printer.end();
                    let why = Err("the host's worker stopped (see opsdeck.log)".into());
                    return (printer, unrecorded(plan, why));
                }
            },
            sig = next_signal(signals) => {
                if stopping {
                    leave_at_once(worker).await;
                }
                stopping = true;
                // on its own line, after the `^C` a terminal echoes
                let _ = writeln!(std::io::stderr());
                say(&format!("{sig}: stopping the job (again to leave at once)"));
                worker.send(HostCmd::CancelJob { why: format!("interrupted ({sig})") });
            }
        }
    }
}

/// The second signal: the worker goes, its job is dropped and writes its audit record
/// (bounded: a host that hangs does not hold opsdeck), then exit 130.
async fn leave_at_once(worker: HostHandle) -> ! {
    drop(worker);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while exec::running() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    std::process::exit(130)
}

/// The record of a job whose own never came (its worker ended first).
fn unrecorded(plan: &Plan, result: Result<String, String>) -> JobRecord {
    let mut record = JobRecord::new(
        jiff::Timestamp::now().to_string(),
        audit::local_user(),
        &plan.host,
        &plan.stack_name,
        &plan.audit_action,
    );
    record.outcome = match result {
        Ok(_) => "ok".into(),
        Err(why) => format!("failed: {why}"),
    };
    record
}

/// `deploy of stack lila on lila`.
pub(crate) fn describe(plan: &Plan) -> String {
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
pub(crate) fn request(host: &Host, args: &RunArgs, stack: &str) -> Result<JobRequest, String> {
    let o = &args.opts;
    if (o.force || o.check_only) && args.action != "deploy" {
        return Err("--force and --check go with deploy only".into());
    }
    if args.json && !o.check_only {
        return Err("--json goes with deploy --check only".into());
    }
    if o.force && o.check_only {
        return Err("--check changes nothing: --force has nothing to force".into());
    }
    if o.to.is_some() && !matches!(args.action.as_str(), "rollback" | "restore") {
        return Err("--to goes with rollback and restore only".into());
    }
    if o.checkout && args.action != "rollback" {
        return Err("--checkout goes with rollback only".into());
    }
    let kind = match args.action.as_str() {
        "deploy" => JobKind::Deploy,
        "migrate" => JobKind::Migrate,
        "rollback" => JobKind::Rollback,
        "restore" => JobKind::Restore {
            set: args.arg.clone().unwrap_or_default(),
        },
        // resolved to a container once connected
        "restart" if args.arg.is_some() => JobKind::Restart {
            id: String::new(),
            name: String::new(),
        },
        "restart" => JobKind::RestartStack,
        verb if ContainerOp::parse(verb, None).is_some() => {
            if args.arg.is_none() {
                return Err(format!(
                    "{verb} needs a container: opsdeck run HOST {verb} CONTAINER"
                ));
            }
            let signal = match (verb, args.signal.as_deref()) {
                (_, None) => None,
                ("kill", Some(text)) => Some(Signal::parse(text).ok_or_else(|| {
                    let known: Vec<&str> = Signal::ALL.iter().map(|s| s.name()).collect();
                    format!("unknown signal {text:?} (kill takes {})", known.join(", "))
                })?),
                (_, Some(_)) => return Err("--signal goes with kill only".into()),
            };
            // resolved to a container once connected
            JobKind::Container {
                op: ContainerOp::parse(verb, signal).unwrap_or(ContainerOp::Stop),
                id: String::new(),
                name: String::new(),
            }
        }
        _ if args.signal.is_some() => return Err("--signal goes with kill only".into()),
        "backup" => {
            let (st, set) = pick(host, args.stack.as_deref(), args.arg.as_deref())?;
            return Ok(JobRequest {
                stack: st.name.get_ref().clone(),
                kind: JobKind::Backup {
                    set: set.name.get_ref().clone(),
                },
                opts: Default::default(),
            });
        }
        other => {
            let (st, name) = find_custom(host, stack, other)?;
            return Ok(JobRequest {
                stack: st,
                kind: JobKind::Custom { name },
                opts: Default::default(),
            });
        }
    };
    Ok(JobRequest {
        stack: stack.to_string(),
        kind,
        opts: args.opts.clone(),
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

/// The plan for `restart CONTAINER` (or `stop`, `kill`...: `kind` says which): the
/// container found by name, service or id prefix; its stack's lock when it belongs to one
/// of the inventory's stacks.
fn resolve_container(
    snapshot: &HostSnapshot,
    host: &Host,
    stack: &str,
    wanted: &str,
    kind: &JobKind,
) -> Result<(JobRequest, Plan), String> {
    let containers = containers(snapshot)?;
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
    let request = JobRequest {
        stack: stack_of(host, hit)
            .map(|s| s.name.get_ref().clone())
            .unwrap_or_default(),
        kind: match kind {
            JobKind::Container { op, .. } => JobKind::Container {
                op: *op,
                id: hit.id.clone(),
                name: hit.name.clone(),
            },
            _ => JobKind::Restart {
                id: hit.id.clone(),
                name: hit.name.clone(),
            },
        },
        opts: Default::default(),
    };
    let plan = plan::plan(host.name.get_ref(), &host.stacks, &request)?;
    Ok((request, plan))
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

pub(crate) fn usage(message: &str) -> ExitCode {
    say(message);
    ExitCode::from(2)
}

/// One line of opsdeck's own on stderr. Made safe for the terminal: it may quote the host
/// (a container's name, an SSH error). Never `eprintln!`, which panics when the write
/// fails, as it does once the operator's terminal has hung up.
pub(crate) fn say(message: &str) {
    let _ = writeln!(std::io::stderr(), "opsdeck: {}", sanitize::line(message));
}

/// Why the host may not be changed, if it may not.
pub(crate) fn read_only(config: &Config, host: &Host, flag: bool) -> Option<&'static str> {
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

/// The signals that stop a job run from the command line.
pub(crate) const RUN_SIGNALS: [(SignalKind, &str); 3] = [
    (SignalKind::interrupt(), "SIGINT"),
    (SignalKind::terminate(), "SIGTERM"),
    (SignalKind::hangup(), "SIGHUP"),
];

pub(crate) async fn next_signal(signals: &mut std::io::Result<Signals>) -> &'static str {
    match signals {
        Ok(s) => s.recv().await,
        Err(_) => std::future::pending().await,
    }
}

/// Whether text written to a stream of this kind may keep its colours: a terminal, and
/// `NO_COLOR` not set (or empty).
pub(crate) fn colour(terminal: bool) -> bool {
    terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// What `opsdeck run` prints, as it comes: step headers and results on stderr, each line
/// where the step wrote it, backup progress rewritten in place on a terminal (once a
/// second otherwise), then the last word.
///
/// Everything the host sent (step output, the lock's holder, failure reasons, file names)
/// goes through [`crate::sanitize`] first: step output keeps its SGR colours when its
/// stream is a terminal that wants colour, and nothing else of it reaches the terminal but
/// printable text. Write errors are ignored: a closed pipe or a hung-up terminal must not
/// stop the job from being cancelled and recorded.
pub(crate) struct Printer<O: Write = std::io::Stdout, E: Write = std::io::Stderr> {
    out: O,
    err: E,
    out_colour: bool,
    err_colour: bool,
    /// stderr is a terminal: progress is rewritten in place.
    in_place: bool,
    total: usize,
    labels: Vec<String>,
    pending_line: bool,
    started: Instant,
    /// The job got as far as its plan on the host (a refusal after it is the stack's lock).
    planned: bool,
}

impl Printer {
    fn stdio(total: usize) -> Printer {
        let err_tty = std::io::stderr().is_terminal();
        Printer::new(
            std::io::stdout(),
            std::io::stderr(),
            colour(std::io::stdout().is_terminal()),
            colour(err_tty),
            err_tty,
            total,
        )
    }
}

impl<O: Write, E: Write> Printer<O, E> {
    pub(crate) fn new(
        out: O,
        err: E,
        out_colour: bool,
        err_colour: bool,
        in_place: bool,
        total: usize,
    ) -> Self {
        Printer {
            out,
            err,
            out_colour,
            err_colour,
            in_place,
            total,
            labels: Vec::new(),
            pending_line: false,
            started: Instant::now(),
            planned: false,
        }
    }

    fn event(&mut self, event: JobEvent) {
        if self.pending_line && !matches!(event, JobEvent::Progress { .. }) {
            let _ = write!(self.err, "\r\x1b[K");
            self.pending_line = false;
        }
        match event {
            JobEvent::Planned { steps } => {
                self.planned = true;
                self.total = steps.len();
                self.labels = steps;
            }
            JobEvent::StepStarted { index } => {
                let label = self.labels.get(index).map_or("", String::as_str);
                let _ = writeln!(
                    self.err,
                    "==> [{}/{}] {}",
                    index + 1,
                    self.total,
                    sanitize::line(label)
                );
            }
            JobEvent::Output(lines) => {
                for l in lines {
                    match l.kind {
                        LineKind::Out => {
                            let _ = writeln!(self.out, "{}", step_line(&l.text, self.out_colour));
                        }
                        LineKind::Err => {
                            let _ = writeln!(self.err, "{}", step_line(&l.text, self.err_colour));
                        }
                        LineKind::Info => {
                            let _ = writeln!(self.err, "    {}", sanitize::line(&l.text));
                        }
                    }
                }
                let _ = self.out.flush();
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
                let _ = writeln!(self.err, "    {verdict} ({exit}{took})");
            }
            JobEvent::Progress { bytes } => {
                let text = format!(
                    "{}  {}",
                    human_bytes(bytes),
                    human_secs(self.started.elapsed())
                );
                if self.in_place {
                    let _ = write!(self.err, "\r\x1b[K{text}");
                    self.pending_line = true;
                } else {
                    let _ = writeln!(self.err, "{text}");
                }
            }
            JobEvent::Recorded(_) | JobEvent::Finished(_) => {}
        }
        let _ = self.err.flush();
    }

    /// Ends a progress line left open.
    fn end(&mut self) {
        if self.pending_line {
            let _ = writeln!(self.err);
            self.pending_line = false;
        }
    }

    /// opsdeck's own line on stderr, host text in it made safe.
    fn say(&mut self, message: &str) {
        let _ = writeln!(self.err, "opsdeck: {}", sanitize::line(message));
    }

    /// The last word, and the exit status.
    fn finish(&mut self, plan: &Plan, record: &JobRecord) -> ExitCode {
        ExitCode::from(self.finish_code(plan, record))
    }

    /// [`Printer::finish`], with the exit status as a number.
    pub(crate) fn finish_code(&mut self, plan: &Plan, record: &JobRecord) -> u8 {
        let what = describe(plan);
        let outcome = record.outcome.as_str();
        if let (Some(file), Some(size)) = (&record.file, record.size) {
            let _ = writeln!(
                self.out,
                "{}  {size} bytes ({})  {}",
                sanitize::line(file),
                human_bytes(size),
                human_secs(Duration::from_millis(record.duration_ms))
            );
            for l in &record.output {
                if let Some(path) = l.text.strip_prefix("retention removed ") {
                    let _ = writeln!(self.out, "removed {}", sanitize::line(path));
                }
            }
            let _ = self.out.flush();
        }
        if outcome == "ok" {
            let summary = record.summary.as_deref().unwrap_or("ok");
            self.say(&format!("{what}: done: {summary}"));
            return 0;
        }
        if let Some(warning) = outcome.strip_prefix("ok; ") {
            self.say(&format!("{what}: the backup is saved, but {warning}"));
            return 1;
        }
        if let Some(why) = outcome.strip_prefix("refused: ")
            && record.steps.iter().any(|s| s.outcome == "refused")
        {
            // The pre-flight stopped it before anything changed.
            self.say(&format!("{what} refused: {why}"));
            return 2;
        }
        if let Some(why) = outcome.strip_prefix("refused: ") {
            self.say(&format!("{what} refused: {why}"));
            // Refused by the stack's lock: try again later. Refused by the worker before
            // it started (the connection went in between): the host could not be reached.
            return if self.planned { LOCKED } else { 1 };
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
            self.say(&format!("{what} {why}{extra}"));
            return 130;
        }
        if outcome.starts_with("failed: ") {
            self.say(&format!("{what} {outcome}"));
        } else {
            self.say(&format!("{what} failed: {outcome}"));
        }
        1
    }
}

/// A line of a step's output, for a stream that may or may not keep colours.
fn step_line(text: &str, colour: bool) -> std::borrow::Cow<'_, str> {
    if colour {
        sanitize::keep_sgr(text)
    } else {
        sanitize::line(text)
    }
}

/// `532 B`, `12.3 MB`, `1.1 GB`: decimal, as file managers and `ls -h --si` print.
pub fn human_bytes(n: u64) -> String {
    crate::ui::format::si_bytes(n)
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

    /// What a hostile host can put in its text: OSC 52 (the clipboard), a screen clear and
    /// cursor move, 8-bit CSI and OSC, a bell, a bidi override.
    const EVIL: &str =
        "\u{1b}]52;c;cm0gLXJmIH4=\u{7}x\u{1b}[2J\u{1b}[1;1H\u{9b}31my\u{9d}0;t\u{9c}\u{7}z\u{202e}";

    fn line(kind: LineKind, text: &str) -> crate::model::job::JobLine {
        crate::model::job::JobLine {
            step: Some(0),
            kind,
            text: text.into(),
        }
    }

    fn backup_plan() -> Plan {
        let h = host(TWO);
        let req = JobRequest {
            stack: "app".into(),
            kind: JobKind::Backup { set: "db".into() },
            opts: Default::default(),
        };
        plan::plan("cs", &h.stacks, &req).unwrap()
    }

    /// Prints every kind of event and last word, each carrying [`EVIL`]; returns stdout,
    /// stderr and the exit statuses of the last words.
    fn print_all(colour: bool) -> (String, String, Vec<ExitCode>) {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let mut codes = Vec::new();
        {
            let mut p = Printer::new(&mut out, &mut err, colour, colour, false, 1);
            p.event(JobEvent::Planned {
                steps: vec![format!("label {EVIL}")],
            });
            p.event(JobEvent::StepStarted { index: 0 });
            p.event(JobEvent::Output(vec![
                line(
                    LineKind::Out,
                    &format!("\u{1b}[32mgreen\u{1b}[0m out {EVIL}"),
                ),
                line(LineKind::Err, &format!("err {EVIL}")),
                line(LineKind::Info, &format!("info {EVIL}")),
            ]));
            p.event(JobEvent::Progress { bytes: 5 });
            p.event(JobEvent::StepFinished {
                index: 0,
                exit: Some(1),
                ok: false,
                millis: 5,
            });
            p.end();
            let plan = backup_plan();
            let mut r = JobRecord::new("t".into(), "u".into(), "cs", "app", "backup");
            r.file = Some(format!("~/b/db-{EVIL}.dump"));
            r.size = Some(10);
            r.output.push(line(
                LineKind::Info,
                &format!("retention removed ~/b/{EVIL}"),
            ));
            for outcome in [
                "ok".to_string(),
                format!("ok; retention failed: {EVIL}"),
                format!("refused: app on cs is locked by alice@laptop {EVIL}"),
                format!("failed: pg_dump: {EVIL}"),
                format!("cancelled: {EVIL}"),
                EVIL.to_string(),
            ] {
                r.outcome = outcome;
                r.summary = Some(format!("summary {EVIL}"));
                codes.push(p.finish(&plan, &r));
            }
        }
        (
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
            codes,
        )
    }

    fn assert_inert(what: &str, text: &str) {
        for c in text.chars() {
            assert!(
                !(c == '\u{1b}' || c == '\u{7}' || ('\u{80}'..='\u{9f}').contains(&c)),
                "{what} has {c:?}: {text:?}"
            );
            assert!(
                c == '\n' || !sanitize::is_unsafe(c),
                "{what} has {c:?}: {text:?}"
            );
        }
    }

    #[test]
    fn host_text_reaches_the_terminal_inert() {
        let (out, err, codes) = print_all(false);
        assert_inert("stdout", &out);
        assert_inert("stderr", &err);
        // what the text said is still there
        assert!(out.contains("green out xyz"), "{out}");
        assert!(out.contains("removed ~/b/xyz"), "{out}");
        assert!(out.contains("~/b/db-xyz.dump  10 bytes"), "{out}");
        assert!(err.contains("==> [1/1] label xyz"), "{err}");
        assert!(err.contains("err xyz"), "{err}");
        assert!(err.contains("    info xyz"), "{err}");
        assert!(
            err.contains("refused: app on cs is locked by alice@laptop xyz"),
            "{err}"
        );
        assert!(err.contains("failed: pg_dump: xyz"), "{err}");
        let codes: Vec<String> = codes.iter().map(|c| format!("{c:?}")).collect();
        let want: Vec<String> = [0u8, 1, LOCKED, 1, 130, 1]
            .iter()
            .map(|c| format!("{:?}", ExitCode::from(*c)))
            .collect();
        assert_eq!(codes, want);
    }

    #[test]
    fn step_output_keeps_its_colours_only_where_they_are_wanted() {
        let (out, err, _) = print_all(true);
        // SGR stays in the steps' own output, and nothing else does
        // (the 8-bit CSI of EVIL's `\u{9b}31m` is a colour too, written the 7-bit way)
        assert!(
            out.contains("\u{1b}[32mgreen\u{1b}[0m out x\u{1b}[31myz"),
            "{out:?}"
        );
        let without_sgr = out
            .replace("\u{1b}[32m", "")
            .replace("\u{1b}[0m", "")
            .replace("\u{1b}[31m", "");
        assert_inert("stdout without its colours", &without_sgr);
        assert!(without_sgr.contains("green out xyz"), "{out:?}");
        assert_inert("stderr", &err.replace("\u{1b}[31m", ""));
        assert!(!out.contains("]52"), "{out:?}");
        assert!(!err.contains("]52"), "{err:?}");
        // opsdeck's own notes never keep the host's colours
        assert!(err.contains("    info xyz"), "{err:?}");
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
