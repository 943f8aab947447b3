//! `opsdeck events [HOST...] [--since 24h] [--json]`: what changed on the hosts, newest
//! first: each host's stored timeline, caught up first from its Docker engine (what
//! happened since the last event kept, while no opsdeck watched), with the audit log's
//! jobs and backups. A host that cannot be reached is said on stderr; what was kept of it
//! is still printed.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::config::Config;
use crate::model::timeline::{self, Event, Grade};
use crate::model::{DockerState, HostConn, Msg};
use crate::remote::{self, Shared};

#[derive(Debug, Clone, Default)]
pub struct EventsArgs {
    pub hosts: Vec<String>,
    /// Default: a day back.
    pub since: Option<String>,
    pub json: bool,
    pub accept_new: bool,
}

/// How long the hosts get to connect and catch up.
const CATCH_UP_WITHIN: Duration = Duration::from_secs(30);

pub async fn run(config: Config, args: EventsArgs) -> ExitCode {
    let selected = match super::status::select(&config, &args.hosts) {
        Ok(s) => s,
        Err(e) => return super::run::usage(&e),
    };
    let since = match super::logs::since(args.since.as_deref().unwrap_or("24h")) {
        Ok(t) => t,
        Err(e) => return super::run::usage(&e),
    };
    let shared = Shared::new(args.accept_new);
    let (tx, mut rx) = mpsc::channel::<Msg>(1024);
    let mut workers = Vec::new();
    for &i in &selected {
        let h = &config.inventory.hosts[i];
        workers.push(remote::spawn_for_events(i, h, &config, &shared, tx.clone()));
    }
    drop(tx);
    // Each host: caught up, or why not.
    let mut outcome: Vec<Option<Result<(), String>>> = vec![None; config.inventory.hosts.len()];
    let deadline = tokio::time::Instant::now() + CATCH_UP_WITHIN;
    while selected.iter().any(|&i| outcome[i].is_none()) {
        let msg = match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(m)) => m,
            _ => break,
        };
        match msg {
            Msg::Timeline {
                host,
                caught_up: true,
                ..
            } => outcome[host] = Some(Ok(())),
            Msg::Host { host, snapshot, .. } if outcome[host].is_none() => {
                if let HostConn::Down { reason, .. } = &snapshot.conn {
                    outcome[host] = Some(Err(format!("cannot connect: {reason}")));
                } else if let DockerState::Unavailable { reason } = &snapshot.docker {
                    outcome[host] = Some(Err(format!("Docker is not reachable: {reason}")));
                }
            }
            _ => {}
        }
    }
    drop(workers);
    let mut failed = false;
    let mut events: Vec<Event> = Vec::new();
    for &i in &selected {
        let name = config.inventory.hosts[i].name.get_ref();
        match &outcome[i] {
            Some(Ok(())) => {}
            Some(Err(why)) => {
                failed = true;
                super::run::say(&format!("{name}: {why}; showing what was kept"));
            }
            None => {
                failed = true;
                super::run::say(&format!(
                    "{name}: not caught up within {}s; showing what was kept",
                    CATCH_UP_WITHIN.as_secs()
                ));
            }
        }
        if let Some(store) = remote::timeline::Store::for_host(name) {
            timeline::merge(&mut events, store.load(), usize::MAX);
        }
    }
    if let Some(path) = crate::jobs::audit::path() {
        let names: Vec<&String> = selected
            .iter()
            .map(|&i| config.inventory.hosts[i].name.get_ref())
            .collect();
        let jobs = crate::jobs::audit::read_recent(&path, 10_000)
            .iter()
            .filter(|r| names.contains(&&r.host))
            .filter_map(timeline::from_record)
            .collect::<Vec<_>>();
        timeline::merge(&mut events, jobs, usize::MAX);
    }
    let from = i64::try_from(since.as_nanosecond()).unwrap_or(i64::MIN);
    events.retain(|e| e.ns >= from);
    let mut out = std::io::stdout().lock();
    let written = if args.json {
        let list: Vec<serde_json::Value> = events.iter().map(to_json).collect();
        writeln!(out, "{}", super::json_text(&serde_json::Value::Array(list)))
    } else {
        let colour = super::run::colour(std::io::stdout().is_terminal());
        events
            .iter()
            .try_for_each(|e| writeln!(out, "{}", line(e, colour)))
    };
    if written.is_err() {
        return ExitCode::FAILURE;
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn to_json(e: &Event) -> serde_json::Value {
    let mut v = serde_json::to_value(e).unwrap_or_default();
    if let Some(o) = v.as_object_mut() {
        o.insert("time".into(), e.time().to_string().into());
    }
    v
}

/// `TIME  HOST  STACK/SUBJECT  KIND  TEXT`, inert; the text coloured by its grade.
pub fn line(e: &Event, colour: bool) -> String {
    let time = e.time().strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
    let what = match (&e.stack, &e.subject) {
        (Some(st), Some(s)) => format!("{st}/{s}"),
        (None, Some(s)) => s.clone(),
        (Some(st), None) => st.clone(),
        (None, None) => "-".into(),
    };
    let text = crate::sanitize::line(&e.text);
    let text = if colour {
        let code = match e.grade {
            Grade::Crit => "31",
            Grade::Warn => "33",
            Grade::Good => "32",
            Grade::Info => "0",
        };
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.into_owned()
    };
    format!(
        "{time}  {}  {}  {:<8} {text}",
        crate::sanitize::line(&e.host),
        crate::sanitize::line(&what),
        e.kind
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_inert_and_coloured_only_when_asked() {
        let e = Event {
            ns: 1_700_000_000_000_000_000,
            host: "lila".into(),
            kind: "die".into(),
            stack: Some("lila".into()),
            subject: Some("lila_api_1\u{1b}]52;c;aGk=\u{7}".into()),
            id: None,
            text: "exited with code 137\u{1b}[2J".into(),
            grade: Grade::Crit,
            source: "docker".into(),
        };
        let plain = line(&e, false);
        assert!(
            plain.starts_with("2023-11-14T22:13:20Z  lila  lila/lila_api_1"),
            "{plain}"
        );
        assert!(plain.contains("die      exited with code 137"), "{plain}");
        assert!(
            !plain.contains('\u{1b}') && !plain.contains('\u{7}'),
            "{plain:?}"
        );
        let coloured = line(&e, true);
        assert!(
            coloured.contains("\u{1b}[31mexited with code 137"),
            "{coloured:?}"
        );
        assert_eq!(coloured.matches('\u{1b}').count(), 2, "{coloured:?}");
    }
}
