//! `opsdeck status`: one snapshot of the fleet, from the same workers and model as the
//! console, as a compact table or as JSON for scripts.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::config::Config;
use crate::model::{DockerState, Health, HostConn, Model, Msg, update};
use crate::remote::{self, Shared};
use crate::runtime::initial_model;
use crate::ui::format;

/// Long enough for a connect timeout plus a Docker answer; a host slower than this is
/// reported as not answering rather than holding up the whole report.
const DEADLINE: Duration = Duration::from_secs(20);

/// Which inventory hosts `names` selects; all when empty.
pub fn select(config: &Config, names: &[String]) -> Result<Vec<usize>, String> {
    if names.is_empty() {
        return Ok((0..config.inventory.hosts.len()).collect());
    }
    names
        .iter()
        .map(|n| {
            config
                .inventory
                .hosts
                .iter()
                .position(|h| h.name.get_ref() == n)
                .ok_or_else(|| {
                    let known: Vec<&str> = config
                        .inventory
                        .hosts
                        .iter()
                        .map(|h| h.name.get_ref().as_str())
                        .collect();
                    format!(
                        "unknown host {n:?} (the inventory has: {})",
                        known.join(", ")
                    )
                })
        })
        .collect()
}

/// Connects to the selected hosts in parallel and waits for a complete snapshot of each.
pub async fn snapshot(config: &Config, selected: &[usize], shared: &Shared) -> Model {
    let (tx, mut rx) = mpsc::channel::<Msg>(1024);
    let mut model = initial_model(config, true);
    let _handles: Vec<_> = selected
        .iter()
        .map(|&i| remote::spawn(i, &config.inventory.hosts[i], config, shared, tx.clone()))
        .collect();
    drop(tx);
    // Each host's newest snapshot: the worker says when it holds a full answer.
    let mut complete = vec![false; model.hosts.len()];
    // Many hosts share this machine's CPU and, behind a jump host, one connection.
    let limit = DEADLINE + Duration::from_millis(250) * selected.len() as u32;
    let deadline = tokio::time::Instant::now() + limit;
    while !selected.iter().all(|&i| complete[i]) {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(msg)) => {
                if let Msg::Host { host, snapshot, .. } = &msg
                    && let Some(c) = complete.get_mut(*host)
                {
                    *c = snapshot.complete();
                }
                update(&mut model, msg);
            }
            Ok(None) | Err(_) => break,
        }
    }
    for &i in selected {
        if complete[i] {
            continue;
        }
        let h = &mut model.hosts[i];
        if !matches!(h.conn, HostConn::Down { .. }) {
            let reason = format!("no complete answer within {}s", limit.as_secs());
            h.conn = HostConn::Down {
                since: jiff::Timestamp::now(),
                reason,
            };
        }
    }
    model
}

fn health(h: Option<Health>) -> Value {
    match h {
        Some(Health::Healthy) => json!("healthy"),
        Some(Health::Unhealthy) => json!("unhealthy"),
        Some(Health::Starting) => json!("starting"),
        None => Value::Null,
    }
}

fn check_json(c: &crate::checks::CheckStatus) -> Value {
    json!({
        "stack": c.stack,
        "name": c.name,
        "url": c.url,
        "via": if c.via_ssh { "ssh" } else { "direct" },
        "ok": c.ok,
        "status": c.status,
        "latency_ms": c.latency_ms,
        "error": c.error,
        "tls": c.tls.as_ref().map(|t| json!({
            "days_left": t.days_left,
            "not_after": jiff::Timestamp::from_second(t.not_after).ok().map(|t| t.to_string()),
            "issuer": t.issuer,
            "warn_days": c.tls_warn_days,
        })),
        "last_failure": c.last_failure.as_ref().map(|f| json!({
            "at": jiff::Timestamp::from_second(f.at).ok().map(|t| t.to_string()),
            "error": f.error,
        })),
    })
}

pub fn to_json(model: &Model, selected: &[usize]) -> Value {
    let now = model.now.as_second();
    let hosts: Vec<Value> = selected
        .iter()
        .map(|&i| {
            let h = &model.hosts[i];
            let (reachable, error) = match &h.conn {
                HostConn::Down { reason, .. } => (false, Some(reason.clone())),
                _ => (true, None),
            };
            // A host SSH cannot reach may still be reported by its metrics source.
            let shown = h.shows_figures(model.now);
            let metrics = h.metrics.as_ref().filter(|_| shown).map(|m| {
                json!({
                    "cpu_percent": m.cpu_percent,
                    "mem_used_bytes": m.mem_used_bytes,
                    "mem_total_bytes": m.mem_total_bytes,
                    "load1": m.load[0],
                    "disks": m.disks.iter().map(|d| json!({
                        "mount": d.mount, "used_bytes": d.used_bytes, "total_bytes": d.total_bytes,
                    })).collect::<Vec<_>>(),
                })
            });
            let source = match &h.source {
                Some(s) => json!({ "from": s.what, "fallback": s.fallback }),
                None => json!({ "from": "ssh", "fallback": null }),
            };
            let (first, last) = (h.cpu.first_at(), h.cpu.last_at());
            let graphs = json!({
                "cpu_points": h.cpu.len(),
                "span_secs": first.zip(last).map_or(0, |(a, b)| b - a),
            });
            let docker_error = match &h.docker {
                DockerState::Unavailable { reason } => Some(reason.clone()),
                _ => None,
            };
            let containers: Vec<Value> = h
                .containers
                .iter()
                .map(|c| {
                    json!({
                        "name": c.name,
                        "id": c.id,
                        "project": c.project,
                        "service": c.service,
                        "state": c.state.docker_word(),
                        "exit_code": c.state.exit_code(),
                        "health": health(c.health),
                        "restarts": c.restart_count,
                        "image": c.image,
                        "started_at": c.started_at.map(|t| t.to_string()),
                        "cpu_percent": c.cpu_percent,
                        "mem_bytes": c.mem_bytes,
                    })
                })
                .collect();
            json!({
                "name": h.name,
                "reachable": reachable,
                "metrics_source": source,
                "graphs": graphs,
                "error": error,
                "docker_error": docker_error,
                "metrics": metrics,
                "containers": containers,
                "backups": h.backups.iter().map(|b| json!({
                    "stack": b.stack,
                    "name": b.name,
                    "dir": b.dir,
                    "newest_path": b.newest.as_ref().map(|f| format!("{}/{}", b.dir.trim_end_matches('/'), f.name)),
                    "newest_age_seconds": b.newest_age(now),
                    "newest_size_bytes": b.newest.as_ref().map(|f| f.size),
                    "count": b.count,
                    "total_bytes": b.total_bytes,
                    "max_age_seconds": b.max_age_secs,
                    "verdict": b.verdict,
                    "error": b.error,
                })).collect::<Vec<_>>(),
                "checks": h.checks.iter().map(check_json).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({ "hosts": hosts })
}

pub fn to_text(model: &Model, selected: &[usize]) -> String {
    let mut out = format!(
        "{:<18} {:<8} {:>6} {:>6} {:>6} {:>6} {:>5}\n",
        "HOST", "STATE", "CPU", "MEM", "LOAD", "CTRS", "BAD"
    );
    for &i in selected {
        let h = &model.hosts[i];
        match (&h.conn, &h.metrics) {
            (HostConn::Down { reason, .. }, _) => {
                out.push_str(&format!("{:<18} {:<8} {reason}\n", h.name, "down"));
            }
            (_, Some(m)) => {
                let ctrs = match &h.docker {
                    DockerState::Unavailable { .. } => "n/a".to_string(),
                    _ => format!("{}/{}", h.running(), h.containers.len()),
                };
                out.push_str(&format!(
                    "{:<18} {:<8} {:>6} {:>6} {:>6.2} {:>6} {:>5}\n",
                    h.name,
                    "up",
                    format::percent(m.cpu_percent),
                    format::percent(m.mem_percent()),
                    m.load[0],
                    ctrs,
                    h.unhealthy()
                ));
                if let DockerState::Unavailable { reason } = &h.docker {
                    out.push_str(&format!("  docker: {reason}\n"));
                }
                for b in &h.backups {
                    let age = b
                        .newest_age(model.now.as_second())
                        .map(|a| format!(", newest {} ago", format::age(a)))
                        .unwrap_or_default();
                    let verdict = serde_json::to_value(b.verdict)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default();
                    out.push_str(&format!(
                        "  backup {}/{}: {verdict}{age}, {} files\n",
                        b.stack, b.name, b.count
                    ));
                }
                for c in &h.checks {
                    let what = match (&c.error, c.status) {
                        (Some(e), _) => e.clone(),
                        (None, Some(s)) => format!("{s} in {}ms", c.latency_ms.unwrap_or(0)),
                        (None, None) => "ok".into(),
                    };
                    let tls = c
                        .tls
                        .as_ref()
                        .map(|t| format!(", TLS {}d left ({})", t.days_left, t.issuer))
                        .unwrap_or_default();
                    out.push_str(&format!("  check {}: {} {what}{tls}\n", c.name, c.short()));
                }
                for g in h.groups("") {
                    let project = g
                        .project
                        .clone()
                        .unwrap_or_else(|| "(no compose project)".into());
                    out.push_str(&format!("  {project}\n"));
                    for &ci in &g.containers {
                        let c = &h.containers[ci];
                        let health = match c.health {
                            Some(Health::Healthy) => " healthy",
                            Some(Health::Unhealthy) => " UNHEALTHY",
                            Some(Health::Starting) => " starting",
                            None => "",
                        };
                        out.push_str(&format!(
                            "    {:<20} {}{health}\n",
                            c.display_name(),
                            c.state.label()
                        ));
                    }
                }
            }
            (_, None) => out.push_str(&format!("{:<18} {:<8}\n", h.name, "no data")),
        }
    }
    // Issuers, reasons, labels and names are the hosts' words.
    crate::sanitize::text(&out).into_owned()
}
