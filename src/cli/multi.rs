//! `opsdeck run --hosts a,b,c ACTION [ARG]`: one action on several hosts, one host at a
//! time, in the order given, stopping at the first host whose job does not end well.
//!
//! Everything that can be refused is refused before anything runs: every host is looked
//! up, every request planned and checked against read-only, so a typo in the third host's
//! name never leaves the first one deployed. Then one confirmation for the whole run (the
//! production hosts' names typed, as a single run wants its host's), then each host's job
//! exactly as `opsdeck run HOST ACTION` runs it (its own worker connection, lock, steps and
//! audit record), its lines prefixed with the host's name. A summary ends the run: host,
//! outcome, duration; with `--json`, as a document on stdout (the steps' stdout then goes
//! to stderr, so that stdout is the document alone).
//!
//! Exit status: 0 every host done; 1 a host's job failed (or it could not be reached); 2
//! refused before anything ran; 75 a host's stack was locked by another job; 130
//! interrupted. The hosts after the one that stopped the run are not started.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use crate::config::{Config, Host};
use crate::jobs::plan::{self, Plan};
use crate::model::job::{ContainerOp, JobRecord, JobRequest};
use crate::remote::HostCmd;
use crate::runtime::Signals;
use crate::sanitize;

use super::run::{
    CLOSE_WAIT, NotReady, Printer, RUN_SIGNALS, RunArgs, colour, connect, describe, find_host,
    read_only, request, say, usage,
};

/// One host of the run, planned before anything runs.
struct Planned<'c> {
    index: usize,
    host: &'c Host,
    request: JobRequest,
    plan: Plan,
}

/// How a host's part of the run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Done,
    Failed,
    Unreachable,
    Locked,
    Cancelled,
    NotStarted,
}

impl Outcome {
    /// The word the summary and `--json` use.
    pub fn word(self) -> &'static str {
        match self {
            Outcome::Done => "ok",
            Outcome::Failed => "failed",
            Outcome::Unreachable => "unreachable",
            Outcome::Locked => "locked",
            Outcome::Cancelled => "cancelled",
            Outcome::NotStarted => "not started",
        }
    }

    /// From `opsdeck run`'s exit status for one host.
    fn from_code(code: u8) -> Outcome {
        match code {
            0 => Outcome::Done,
            super::run::LOCKED => Outcome::Locked,
            130 => Outcome::Cancelled,
            _ => Outcome::Failed,
        }
    }
}

/// One line of the summary.
#[derive(Debug, Clone)]
pub struct HostResult {
    pub host: String,
    pub stack: String,
    pub outcome: Outcome,
    /// The audit record's outcome or summary, or why it could not start; host text in it
    /// is made safe where it is printed.
    pub detail: String,
    pub duration: Option<Duration>,
}

/// The host names of `--hosts`: comma-separated, none empty, none twice.
pub fn parse_hosts(text: &str) -> Result<Vec<String>, String> {
    let mut names: Vec<String> = Vec::new();
    for raw in text.split(',') {
        let name = raw.trim();
        if name.is_empty() {
            return Err(format!(
                "--hosts {text:?} has an empty name: write them as a,b,c"
            ));
        }
        if names.iter().any(|n| n == name) {
            return Err(format!("--hosts names {name} twice"));
        }
        names.push(name.to_string());
    }
    Ok(names)
}

/// Why an action cannot be asked of several hosts at once, if it cannot.
fn per_host_refusal(args: &RunArgs) -> Option<String> {
    let verb = args.action.as_str();
    if ContainerOp::parse(verb, None).is_some() || (verb == "restart" && args.arg.is_some()) {
        return Some(format!(
            "{verb} acts on one container, and a container's name differs from host to \
             host: run it host by host (opsdeck run HOST {verb} CONTAINER)"
        ));
    }
    if args.signal.is_some() {
        return Some("--signal goes with kill only, which takes one host".into());
    }
    if verb == "restore" {
        return Some(
            "restore drops a database and loads a dump: run it host by host \
             (opsdeck run HOST restore --to N)"
                .into(),
        );
    }
    if args.opts.to.is_some() {
        return Some(
            "--to names a release of one host's history (numbers differ from host to host): \
             roll back host by host, or without --to"
                .into(),
        );
    }
    None
}

/// Plans every host's job; every reason to refuse, for all the hosts at once.
fn prepare<'c>(
    config: &'c Config,
    names: &[String],
    args: &RunArgs,
) -> Result<Vec<Planned<'c>>, Vec<String>> {
    if let Some(why) = per_host_refusal(args) {
        return Err(vec![why]);
    }
    let stack_flag = args.stack.clone().unwrap_or_default();
    let mut planned = Vec::new();
    let mut problems = Vec::new();
    for name in names {
        let (index, host) = match find_host(config, name) {
            Ok(found) => found,
            Err(e) => {
                problems.push(e);
                continue;
            }
        };
        let made = request(host, args, &stack_flag).and_then(|request| {
            let plan = plan::plan(host.name.get_ref(), &host.stacks, &request)?;
            Ok((request, plan))
        });
        match made {
            Ok((request, plan)) => {
                if plan.mutating
                    && let Some(why) = read_only(config, host, args.read_only)
                {
                    problems.push(format!(
                        "{}: {} changes the host, and {why}",
                        host.name.get_ref(),
                        describe(&plan)
                    ));
                    continue;
                }
                planned.push(Planned {
                    index,
                    host,
                    request,
                    plan,
                });
            }
            Err(e) => problems.push(format!("{name}: {e}")),
        }
    }
    if problems.is_empty() {
        Ok(planned)
    } else {
        Err(problems)
    }
}

/// What the production hosts' names typed must read to go on: `a` or `a,b`.
pub fn production_word(names: &[&str]) -> String {
    names.join(",")
}

/// One question for the whole run on the terminal: `y`, or the production hosts' names.
/// `Err` when there is no terminal to ask on.
fn confirm_all(planned: &[Planned<'_>]) -> Result<bool, ()> {
    if !std::io::stdin().is_terminal() || !std::io::stderr().is_terminal() {
        return Err(());
    }
    let production: Vec<&str> = planned
        .iter()
        .filter(|p| p.host.production)
        .map(|p| p.host.name.get_ref().as_str())
        .collect();
    let mut err = std::io::stderr();
    if production.is_empty() {
        let _ = write!(err, "Go on with these {} hosts? [y/N] ", planned.len());
    } else {
        let word = production_word(&production);
        let hosts = if production.len() == 1 {
            "host"
        } else {
            "hosts"
        };
        let _ = write!(err, "PRODUCTION {hosts} {word}. Type {word} to go on: ");
    }
    let _ = err.flush();
    let mut line = String::new();
    if std::io::stdin().read_line(&mut line).is_err() {
        return Ok(false);
    }
    let line = line.trim();
    Ok(if production.is_empty() {
        matches!(line, "y" | "Y" | "yes")
    } else {
        line == production_word(&production)
    })
}

/// Runs the action on every host in turn and says how each went.
pub async fn run(config: Config, hosts: String, args: RunArgs, json: bool) -> ExitCode {
    let names = match parse_hosts(&hosts) {
        Ok(n) => n,
        Err(e) => return usage(&e),
    };
    let planned = match prepare(&config, &names, &args) {
        Ok(p) => p,
        Err(problems) => {
            for p in &problems {
                say(p);
            }
            return usage(&format!(
                "refused: nothing was done on any of the {} hosts",
                names.len()
            ));
        }
    };
    let width = names.iter().map(|n| n.chars().count()).max().unwrap_or(0);
    say(&format!(
        "{} on {} hosts, one at a time, stopping at the first that fails:",
        args.action,
        planned.len()
    ));
    for (i, p) in planned.iter().enumerate() {
        let production = if p.host.production {
            "  PRODUCTION"
        } else {
            ""
        };
        let _ = writeln!(
            std::io::stderr(),
            "  {}. {:<width$}  {} ({} steps){production}",
            i + 1,
            p.host.name.get_ref(),
            describe(&p.plan),
            p.plan.steps.len()
        );
    }
    if planned.iter().any(|p| p.plan.mutating) && !args.yes {
        match confirm_all(&planned) {
            Ok(true) => {}
            Ok(false) => {
                say("not confirmed: nothing was done");
                return ExitCode::from(2);
            }
            Err(()) => {
                return usage(&format!(
                    "{} changes the hosts: pass --yes to run without confirmation",
                    args.action
                ));
            }
        }
    }
    let mut signals = Signals::new(&RUN_SIGNALS);
    if let Err(e) = &signals {
        say(&format!("cannot listen for signals: {e}"));
    }
    let mut results: Vec<HostResult> = planned
        .iter()
        .map(|p| HostResult {
            host: p.host.name.get_ref().clone(),
            stack: p.plan.stack_name.clone(),
            outcome: Outcome::NotStarted,
            detail: String::new(),
            duration: None,
        })
        .collect();
    let mut code = 0u8;
    let n = planned.len();
    for (i, p) in planned.iter().enumerate() {
        let name = p.host.name.get_ref();
        say(&format!("[{}/{n}] {}", i + 1, describe(&p.plan)));
        let started = Instant::now();
        let (outcome, detail, c) =
            match connect(p.index, p.host, &config, args.accept_new, &mut signals).await {
                Err(NotReady::Unreachable(e)) => {
                    say(&format!("{}: cannot connect: {e}", describe(&p.plan)));
                    (Outcome::Unreachable, format!("cannot connect: {e}"), 1)
                }
                Err(NotReady::Signal(sig)) => {
                    say(&format!("{sig}: nothing was done on {name}"));
                    (Outcome::Cancelled, format!("{sig} before it started"), 130)
                }
                Ok((worker, mut rx, _)) => {
                    worker.send(HostCmd::Job(p.request.clone()));
                    let printer = host_printer(name, width, json, p.plan.steps.len());
                    let (mut printer, record) =
                        super::run::follow_with(printer, worker, &mut rx, &p.plan, &mut signals)
                            .await;
                    let c = printer.finish_code(&p.plan, &record);
                    drop(printer);
                    // as a single run does: let the worker log out politely (bounded)
                    let _ = tokio::time::timeout(CLOSE_WAIT, async {
                        while rx.recv().await.is_some() {}
                    })
                    .await;
                    (Outcome::from_code(c), detail_of(&record), c)
                }
            };
        results[i].outcome = outcome;
        results[i].detail = detail;
        results[i].duration = Some(started.elapsed());
        if c != 0 {
            code = c;
            break;
        }
    }
    if json {
        let doc = to_json(&args.action, code, &results);
        let mut out = std::io::stdout();
        let _ = writeln!(out, "{}", super::json_text(&doc));
        let _ = out.flush();
    }
    let _ = write!(std::io::stderr(), "{}", summary(&args.action, &results));
    ExitCode::from(code)
}

/// The printer of one host's job: every line after the host's name, padded to `width`.
fn host_printer(
    name: &str,
    width: usize,
    json: bool,
    steps: usize,
) -> Printer<LinePrefix<Box<dyn Write>>, LinePrefix<std::io::Stderr>> {
    let prefix = format!("{name:<width$} | ");
    let err_tty = std::io::stderr().is_terminal();
    let (out, out_colour): (Box<dyn Write>, bool) = if json {
        (Box::new(std::io::stderr()), colour(err_tty))
    } else {
        (
            Box::new(std::io::stdout()),
            colour(std::io::stdout().is_terminal()),
        )
    };
    Printer::new(
        LinePrefix::new(out, &prefix),
        LinePrefix::new(std::io::stderr(), &prefix),
        out_colour,
        colour(err_tty),
        // progress rewritten in place would lose the prefix: one line each instead
        false,
        steps,
    )
}

/// What the summary says of a job that ran: its outcome, or its summary when it went well.
fn detail_of(record: &JobRecord) -> String {
    if record.outcome == "ok" {
        record.summary.clone().unwrap_or_else(|| "ok".into())
    } else {
        record.outcome.clone()
    }
}

/// The summary's text: a line per host (outcome, duration, what happened), every host's
/// text made safe.
pub fn summary(action: &str, results: &[HostResult]) -> String {
    let done = results
        .iter()
        .filter(|r| r.outcome == Outcome::Done)
        .count();
    let mut text = format!(
        "opsdeck: {action} on {} hosts: {done} done\n",
        results.len()
    );
    let width = results
        .iter()
        .map(|r| r.host.chars().count())
        .max()
        .unwrap_or(0)
        .max(4);
    text.push_str(&format!(
        "  {:<width$}  {:<11}  {:>7}  DETAIL\n",
        "HOST", "OUTCOME", "TIME"
    ));
    for r in results {
        let took = r.duration.map_or_else(|| "-".into(), human_secs);
        let detail = sanitize::line(&r.detail);
        let detail: String = detail.chars().take(200).collect();
        text.push_str(
            format!(
                "  {:<width$}  {:<11}  {took:>7}  {detail}",
                sanitize::line(&r.host),
                r.outcome.word(),
            )
            .trim_end(),
        );
        text.push('\n');
    }
    text
}

/// `--json`: the action, the exit status, and each host's outcome in order.
pub fn to_json(action: &str, code: u8, results: &[HostResult]) -> serde_json::Value {
    let hosts: Vec<serde_json::Value> = results
        .iter()
        .map(|r| {
            serde_json::json!({
                "host": r.host,
                "stack": r.stack,
                "outcome": r.outcome.word(),
                "detail": r.detail,
                "duration_ms": r.duration.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            })
        })
        .collect();
    serde_json::json!({ "action": action, "exit": code, "hosts": hosts })
}

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

/// A writer that puts `prefix` at the start of every line: one host's output among
/// several hosts' stays readable, and `grep '^lila '` finds it.
pub struct LinePrefix<W: Write> {
    inner: W,
    prefix: String,
    at_start: bool,
}

impl<W: Write> LinePrefix<W> {
    pub fn new(inner: W, prefix: &str) -> Self {
        LinePrefix {
            inner,
            prefix: prefix.to_string(),
            at_start: true,
        }
    }
}

impl<W: Write> Write for LinePrefix<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut rest = buf;
        while !rest.is_empty() {
            if self.at_start {
                self.inner.write_all(self.prefix.as_bytes())?;
                self.at_start = false;
            }
            match rest.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    self.inner.write_all(&rest[..=i])?;
                    self.at_start = true;
                    rest = &rest[i + 1..];
                }
                None => {
                    self.inner.write_all(rest)?;
                    rest = &[];
                }
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_str;
    use std::path::Path;

    fn config(text: &str) -> Config {
        Config {
            source: crate::config::Source::BuiltinLocal,
            inventory: parse_str(text, Path::new("t.toml")).unwrap(),
        }
    }

    const THREE: &str = r#"
[[host]]
name = "a"
[[host.stack]]
name = "web"
dir = "~/web"
[host.stack.deploy]
steps = ["true"]

[[host]]
name = "b"
read_only = true
[[host.stack]]
name = "web"
dir = "~/web"
[host.stack.deploy]
steps = ["true"]

[[host]]
name = "c"
[[host.stack]]
name = "other"
dir = "~/other"
"#;

    fn args(action: &str) -> RunArgs {
        RunArgs {
            action: action.into(),
            yes: true,
            ..RunArgs::default()
        }
    }

    #[test]
    fn host_lists_are_names_once_each() {
        assert_eq!(parse_hosts("a, b,c").unwrap(), ["a", "b", "c"]);
        assert!(parse_hosts("a,,b").unwrap_err().contains("empty name"));
        assert!(parse_hosts("a,b,a").unwrap_err().contains("a twice"));
        assert!(parse_hosts("").is_err());
    }

    #[test]
    fn every_host_is_checked_before_anything_runs() {
        let c = config(THREE);
        let names = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let ok = prepare(&c, &names(&["a"]), &args("deploy")).unwrap();
        assert_eq!(ok.len(), 1);
        let Err(problems) = prepare(&c, &names(&["a", "b", "c", "zz"]), &args("deploy")) else {
            panic!("refused")
        };
        let all = problems.join("\n");
        assert!(
            all.contains("b: deploy of stack web on b changes the host, and the host is read_only"),
            "{all}"
        );
        assert!(
            all.contains("c: no stack on c has a deploy recipe"),
            "{all}"
        );
        assert!(all.contains("unknown host \"zz\""), "{all}");
        assert_eq!(problems.len(), 3, "{all}");
        // --read-only refuses every host
        let mut ro = args("deploy");
        ro.read_only = true;
        assert!(prepare(&c, &names(&["a"]), &ro).is_err());
    }

    #[test]
    fn actions_on_one_container_are_refused() {
        let c = config(THREE);
        let a = vec!["a".to_string()];
        for verb in ["stop", "start", "kill", "pause", "unpause", "rm"] {
            let mut x = args(verb);
            x.arg = Some("api".into());
            let Err(p) = prepare(&c, &a, &x) else {
                panic!("{verb} refused")
            };
            assert!(p[0].contains("differs from host to host"), "{p:?}");
        }
        let mut r = args("restart");
        r.arg = Some("api".into());
        assert!(prepare(&c, &a, &r).is_err());
        // restarting the whole stack is the same on every host
        assert!(prepare(&c, &a, &args("restart")).is_ok());
        // a release number or a restore belongs to one host's history
        assert!(prepare(&c, &a, &args("restore")).is_err());
        let mut r = args("rollback");
        r.opts.to = Some("3".into());
        assert!(prepare(&c, &a, &r).is_err());
    }

    #[test]
    fn the_options_reach_every_host() {
        let c = config(THREE);
        let mut x = args("deploy");
        x.opts.force = true;
        let p = prepare(&c, &["a".to_string()], &x).unwrap();
        assert!(p[0].request.opts.force);
    }

    #[test]
    fn every_line_carries_its_host() {
        let mut buf = Vec::new();
        {
            let mut w = LinePrefix::new(&mut buf, "lila | ");
            write!(w, "one").unwrap();
            writeln!(w, " more").unwrap();
            write!(w, "two\nthree\n\nfour").unwrap();
        }
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            "lila | one more\nlila | two\nlila | three\nlila | \nlila | four"
        );
    }

    #[test]
    fn the_summary_names_each_host_with_its_outcome_and_time() {
        let results = vec![
            HostResult {
                host: "duckdb-app".into(),
                stack: "p".into(),
                outcome: Outcome::Done,
                detail: "3 steps in 1s".into(),
                duration: Some(Duration::from_millis(1200)),
            },
            HostResult {
                host: "lila".into(),
                stack: "p".into(),
                outcome: Outcome::Failed,
                detail: "failed: step 2/2 (false): exit status 1 \u{1b}]52;c;x\u{7}".into(),
                duration: Some(Duration::from_secs(65)),
            },
            HostResult {
                host: "cs".into(),
                stack: "p".into(),
                outcome: Outcome::NotStarted,
                detail: String::new(),
                duration: None,
            },
        ];
        let text = summary("deploy", &results);
        assert_eq!(
            text,
            "opsdeck: deploy on 3 hosts: 1 done\n  \
             HOST        OUTCOME         TIME  DETAIL\n  \
             duckdb-app  ok              1.2s  3 steps in 1s\n  \
             lila        failed         1m05s  failed: step 2/2 (false): exit status 1 \n  \
             cs          not started        -\n"
                .replace(" \n", "\n")
        );
        let doc = to_json("deploy", 1, &results);
        assert_eq!(doc["exit"], 1);
        assert_eq!(doc["hosts"][2]["outcome"], "not started");
        assert_eq!(doc["hosts"][2]["duration_ms"], serde_json::Value::Null);
        assert_eq!(doc["hosts"][0]["duration_ms"], 1200);
        let text = crate::cli::json_text(&doc);
        assert!(!text.contains('\u{1b}'), "{text}");
    }
}
