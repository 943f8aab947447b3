//! `opsdeck check`: everything opsdeck knows, as a monitoring plugin reports it: the
//! problems one line each, worst first, and an exit status cron, Nagios-style monitors and
//! shell scripts understand (0 OK, 1 warning, 2 critical, 3 could not run).

use std::process::ExitCode;

use serde_json::json;

use crate::config::Config;
use crate::model::problems::problems;
use crate::model::{Problem, Severity};
use crate::remote::Shared;

pub const OK: u8 = 0;
pub const WARNING: u8 = 1;
pub const CRITICAL: u8 = 2;
pub const UNKNOWN: u8 = 3;

pub struct CheckArgs {
    pub hosts: Vec<String>,
    pub json: bool,
    pub accept_new: bool,
}

pub fn exit_code(problems: &[Problem]) -> u8 {
    match problems.iter().map(|p| p.severity).max() {
        None => OK,
        Some(Severity::Warning) => WARNING,
        Some(Severity::Critical) => CRITICAL,
    }
}

fn status_word(code: u8) -> &'static str {
    match code {
        OK => "ok",
        WARNING => "warning",
        CRITICAL => "critical",
        _ => "unknown",
    }
}

pub fn to_text(problems: &[Problem], hosts: usize) -> String {
    if problems.is_empty() {
        return format!("OK: {hosts} hosts, no problems\n");
    }
    problems
        .iter()
        .map(|p| {
            // A problem's words quote the host (reasons, issuers, names): one line each.
            let what = crate::sanitize::line(&p.what);
            let host = crate::sanitize::line(&p.host_name);
            format!("{:<8} {host}: {what}\n", p.severity.label())
        })
        .collect()
}

pub fn to_json(problems: &[Problem], hosts: usize) -> serde_json::Value {
    json!({
        "status": status_word(exit_code(problems)),
        "hosts": hosts,
        "problems": problems,
    })
}

/// Connects, takes one snapshot, evaluates, prints; an unknown host name is "could not
/// run" (3), not a problem of the fleet.
pub async fn run(config: Config, args: CheckArgs) -> ExitCode {
    let selected = match super::status::select(&config, &args.hosts) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("opsdeck: {e}");
            return ExitCode::from(UNKNOWN);
        }
    };
    let shared = Shared::new(args.accept_new);
    let mut model = super::status::snapshot(&config, &selected, &shared).await;
    model.now = jiff::Timestamp::now();
    let found = problems(&model, &selected);
    if args.json {
        println!("{}", super::json_text(&to_json(&found, selected.len())));
    } else {
        print!("{}", to_text(&found, selected.len()));
    }
    if let Some(notify) = &config.inventory.settings.notify {
        let source = config.source.describe();
        match super::notify::state_path(&source, &args.hosts) {
            None => eprintln!("opsdeck: notify: no state directory to remember the last run in"),
            Some(state) => {
                if let Err(e) = super::notify::run(notify, &found, selected.len(), &state).await {
                    // The report above stands; cron mails stderr, and the next run retries.
                    eprintln!("opsdeck: notify: {}", crate::sanitize::line(&e.to_string()));
                }
            }
        }
    }
    ExitCode::from(exit_code(&found))
}
