//! `opsdeck releases HOST [--stack S] [--json]`: a stack's release history as its host
//! keeps it, newest first, with what going back to each release would change. Exit 0
//! when read, 1 when the host could not be asked, 2 for a bad host or stack name.

use std::process::ExitCode;

use crate::config::Config;
use crate::model::Msg;
use crate::model::releases::{self, ReleasesView};
use crate::remote::HostCmd;
use crate::runtime::Signals;

use super::run::{NotReady, RUN_SIGNALS, connect, find_host, say, usage};

pub struct ReleasesArgs {
    pub host: String,
    pub stack: Option<String>,
    pub json: bool,
    pub accept_new: bool,
}

pub async fn run(config: Config, args: ReleasesArgs) -> ExitCode {
    let (index, host) = match find_host(&config, &args.host) {
        Ok(found) => found,
        Err(e) => return usage(&e),
    };
    let stack = match pick(host, args.stack.as_deref()) {
        Ok(s) => s,
        Err(e) => return usage(&e),
    };
    let mut signals = Signals::new(&RUN_SIGNALS);
    let (worker, mut rx, _) =
        match connect(index, host, &config, args.accept_new, &mut signals).await {
            Ok(ready) => ready,
            Err(NotReady::Unreachable(e)) => {
                say(&format!("cannot connect: {e}"));
                return ExitCode::FAILURE;
            }
            Err(NotReady::Signal(sig)) => {
                say(&format!("{sig}: nothing was read"));
                return ExitCode::from(130);
            }
        };
    worker.send(HostCmd::Releases {
        stack: stack.clone(),
    });
    let answer = loop {
        match rx.recv().await {
            Some(Msg::Releases { result, .. }) => break result,
            Some(_) => {}
            None => break Err("the host's worker ended".to_string()),
        }
    };
    drop(worker);
    match answer {
        Ok(view) => {
            if args.json {
                println!("{}", super::json_text(&json(&view)));
            } else {
                print!("{}", table(&view));
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            say(&format!("cannot read the releases of {stack}: {e}"));
            ExitCode::FAILURE
        }
    }
}

/// The stack named, else the host's only one that records releases (a deploy or a
/// migrate recipe).
fn pick(host: &crate::config::Host, name: Option<&str>) -> Result<String, String> {
    let hname = host.name.get_ref();
    let names = |l: &[&crate::config::Stack]| {
        l.iter()
            .map(|s| s.name.get_ref().as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if let Some(name) = name {
        return host
            .stacks
            .iter()
            .find(|s| s.name.get_ref() == name)
            .map(|s| s.name.get_ref().clone())
            .ok_or_else(|| {
                let all: Vec<_> = host.stacks.iter().collect();
                format!(
                    "host {hname} has no stack {name:?} (stacks: {})",
                    names(&all)
                )
            });
    }
    let fitting: Vec<_> = host
        .stacks
        .iter()
        .filter(|s| s.deploy.is_some() || s.migrate.is_some())
        .collect();
    match fitting.as_slice() {
        [one] => Ok(one.name.get_ref().clone()),
        [] => Err(format!(
            "no stack on {hname} has a deploy or migrate recipe: none records releases"
        )),
        several => Err(format!(
            "host {hname} has several stacks with releases: choose one with --stack (stacks: {})",
            names(several)
        )),
    }
}

fn json(view: &ReleasesView) -> serde_json::Value {
    let list: Vec<serde_json::Value> = view
        .history
        .releases
        .iter()
        .rev()
        .map(|r| {
            let mut v = serde_json::to_value(r).unwrap_or_default();
            if let Some(o) = v.as_object_mut() {
                o.insert(
                    "changes".into(),
                    serde_json::json!(releases::changes(r, &view.running)),
                );
            }
            v
        })
        .collect();
    serde_json::json!({
        "stack": view.stack,
        "releases": list,
        "running": view.running.iter().map(|(s, id)| serde_json::json!({"service": s, "id": id})).collect::<Vec<_>>(),
        "unreadable_lines": view.history.unreadable,
        "downgrade": view.downgrade,
    })
}

/// The history as a table, newest first, then per release what differs from now.
pub fn table(view: &ReleasesView) -> String {
    let mut out = String::new();
    if view.history.releases.is_empty() {
        out.push_str(&format!(
            "{}: no releases yet (each deploy, migration and rollback records one)\n",
            view.stack
        ));
        return out;
    }
    out.push_str(&format!(
        "{:<5} {:<16} {:<20} {:<28} {:<10} {}\n",
        "#", "ID", "WHEN", "RECIPE", "OUTCOME", "DIFFERS FROM NOW"
    ));
    for r in view.history.releases.iter().rev() {
        let changes = releases::changes(r, &view.running);
        let outcome = if r.ok() { "ok" } else { "failed" };
        let differs = if changes.is_empty() {
            "runs now".to_string()
        } else {
            changes.join("; ")
        };
        out.push_str(&format!(
            "{:<5} {:<16} {:<20} {:<28} {:<10} {}\n",
            format!("#{}", r.n),
            r.id,
            r.at,
            crate::ui::format::fit(&r.recipe, 28),
            outcome,
            differs
        ));
        let mut facts = Vec::new();
        if let Some(c) = &r.commit {
            facts.push(format!("commit {}", c.get(..12).unwrap_or(c)));
        }
        if let Some(h) = &r.migration_head {
            facts.push(format!("migration head {h}"));
        }
        if let Some(d) = &r.dump {
            facts.push(format!("dump {d}"));
        }
        if !r.ok() {
            facts.push(r.outcome.clone());
        }
        if !facts.is_empty() {
            out.push_str(&format!("      {}\n", facts.join(" · ")));
        }
    }
    if view.history.unreadable > 0 {
        out.push_str(&format!(
            "({} line(s) of the host's file are not releases and were left out)\n",
            view.history.unreadable
        ));
    }
    out
}
