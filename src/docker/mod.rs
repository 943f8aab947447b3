//! The Docker Engine API through bollard, turned into model data: containers grouped by
//! compose labels, health, restarts, uptime, and followed logs.

use std::collections::HashMap;
use std::time::Duration;

use bollard::Docker;
use bollard::models::{ContainerInspectResponse, ContainerSummary, HealthStatusEnum};
use bollard::query_parameters::{InspectContainerOptions, ListContainersOptions};
use jiff::Timestamp;

use crate::model::{Container, Health, RunState};

pub mod detail;
pub mod logs;
pub mod stack;
pub use logs::Socket;

const API_TIMEOUT: Duration = Duration::from_secs(5);

/// Connects to a local socket and agrees on an API version, so engines as old as Docker
/// 20.10 (API 1.41) answer as well as current ones.
pub async fn connect_unix(socket: &str) -> Result<(Docker, String), String> {
    let docker =
        Docker::connect_with_unix(socket, API_TIMEOUT.as_secs(), bollard::API_DEFAULT_VERSION)
            .map_err(|e| format!("cannot connect to {socket}: {e}"))?;
    negotiate(docker, socket).await
}

/// Agrees on an API version (old engines such as 20.10 speak 1.41) and reads the engine's
/// version, both bounded in time so a wedged daemon cannot hang a worker.
pub async fn negotiate(docker: Docker, socket: &str) -> Result<(Docker, String), String> {
    let docker = tokio::time::timeout(API_TIMEOUT, docker.negotiate_version())
        .await
        .map_err(|_| format!("{socket}: no answer within {}s", API_TIMEOUT.as_secs()))?
        .map_err(|e| format!("{socket}: {e}"))?;
    let version = tokio::time::timeout(API_TIMEOUT, docker.version())
        .await
        .map_err(|_| format!("{socket}: no answer within {}s", API_TIMEOUT.as_secs()))?
        .map_err(|e| format!("{socket}: {e}"))?;
    let v = version.version.unwrap_or_else(|| "?".into());
    Ok((docker, v))
}

/// What `inspect` adds to the list call; asked again only when a container's status changes.
#[derive(Debug, Clone)]
pub struct Inspected {
    pub restart_count: Option<i64>,
    pub started_at: Option<Timestamp>,
    pub exit_code: Option<i64>,
    pub health: Option<Health>,
}

impl Inspected {
    pub fn from_response(r: &ContainerInspectResponse) -> Self {
        let state = r.state.as_ref();
        Inspected {
            restart_count: r.restart_count,
            started_at: state
                .and_then(|s| s.started_at.as_deref())
                .and_then(|t| t.parse::<Timestamp>().ok())
                .filter(|t| t.as_second() > 0),
            exit_code: state.and_then(|s| s.exit_code),
            health: state
                .and_then(|s| s.health.as_ref())
                .and_then(|h| h.status)
                .and_then(|s| match s {
                    HealthStatusEnum::HEALTHY => Some(Health::Healthy),
                    HealthStatusEnum::UNHEALTHY => Some(Health::Unhealthy),
                    HealthStatusEnum::STARTING => Some(Health::Starting),
                    _ => None,
                }),
        }
    }
}

/// Keeps inspect results by container id, with what the list showed of the container
/// when it was inspected ([`Seen`]).
#[derive(Debug, Default)]
pub struct InspectCache {
    entries: HashMap<String, (Seen, Inspected)>,
    inspects: u64,
}

/// What of a list entry, when it changes, makes its inspect result out of date: its state,
/// and the health and exit code its status line shows. Not the status line itself: `Up 5
/// seconds` becomes `Up 6 seconds`, and `Up 5 minutes` `Up 6 minutes`, with nothing having
/// happened, and keyed on it every young container was inspected again at every list and
/// every other one each minute. What changes without showing here (a restart between two
/// lists) comes as an event, and the watcher [`InspectCache::forget`]s that container.
type Seen = (Option<String>, Option<Health>, Option<i64>);

fn seen(s: &ContainerSummary) -> Seen {
    let status = s.status.as_deref().unwrap_or("");
    (
        s.state.map(|st| st.to_string()),
        health_from_status(status),
        exit_code_from_status(status),
    )
}

impl InspectCache {
    /// Lists all containers, inspecting only those that are new, changed what the list
    /// shows of them, or were forgotten since.
    pub async fn list(&mut self, docker: &Docker) -> Result<Vec<Container>, String> {
        let opts = ListContainersOptions {
            all: true,
            ..Default::default()
        };
        let summaries = tokio::time::timeout(API_TIMEOUT, docker.list_containers(Some(opts)))
            .await
            .map_err(|_| "Docker did not list containers within 5s".to_string())?
            .map_err(|e| format!("listing containers: {e}"))?;
        let mut out = Vec::with_capacity(summaries.len());
        for s in &summaries {
            let Some(id) = s.id.clone() else { continue };
            // opsdeck's own never-started holders of kept releases' images: not the host's.
            if s.labels
                .as_ref()
                .is_some_and(|l| l.contains_key(crate::model::releases::KEEP_LABEL))
            {
                continue;
            }
            let now = seen(s);
            let fresh = self.entries.get(&id).is_some_and(|(was, _)| *was == now);
            if !fresh {
                self.inspects += 1;
                let inspect = tokio::time::timeout(
                    API_TIMEOUT,
                    docker.inspect_container(&id, None::<InspectContainerOptions>),
                )
                .await;
                if let Ok(Ok(r)) = inspect {
                    self.entries
                        .insert(id.clone(), (now, Inspected::from_response(&r)));
                }
            }
            out.push(to_container(s, self.entries.get(&id).map(|(_, i)| i)));
        }
        let ids: Vec<&str> = out.iter().map(|c| c.id.as_str()).collect();
        self.entries.retain(|k, _| ids.contains(&k.as_str()));
        Ok(out)
    }

    /// Something happened to this container: inspect it again at the next list.
    pub fn forget(&mut self, id: &str) {
        self.entries.remove(id);
    }

    /// Events may have been missed: inspect every container again at the next list.
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// How many inspects the engine has been asked for.
    pub fn inspects(&self) -> u64 {
        self.inspects
    }
}

/// A container as the model keeps it. Names, labels and the image are the host's words:
/// they are sanitised here, once, so no view or printer ever sees an escape sequence.
pub fn to_container(s: &ContainerSummary, inspected: Option<&Inspected>) -> Container {
    let clean = |t: &str| crate::sanitize::line(t).into_owned();
    let labels = s.labels.clone().unwrap_or_default();
    let name = s
        .names
        .as_ref()
        .and_then(|n| n.first())
        .map(|n| clean(n.trim_start_matches('/')))
        .unwrap_or_default();
    let status = s.status.as_deref().unwrap_or("");
    let state = match s.state.map(|st| st.to_string()).as_deref() {
        Some("running") => RunState::Running,
        Some("restarting") => RunState::Restarting,
        Some("paused") => RunState::Paused,
        Some("created") => RunState::Created,
        Some("exited") => RunState::Exited {
            code: inspected
                .and_then(|i| i.exit_code)
                .or_else(|| exit_code_from_status(status)),
        },
        Some("dead") => RunState::Dead,
        Some(other) => RunState::Other(clean(other)),
        None => RunState::Other("unknown".into()),
    };
    let health = inspected
        .and_then(|i| i.health)
        .or_else(|| health_from_status(status));
    let mut ports: Vec<String> = s
        .ports
        .iter()
        .flatten()
        .map(|p| {
            let proto = p.typ.map(|t| t.to_string()).unwrap_or_else(|| "tcp".into());
            match (p.ip.as_deref(), p.public_port) {
                (Some(ip), Some(public)) => {
                    clean(&format!("{ip}:{public}→{}/{proto}", p.private_port))
                }
                _ => clean(&format!("{}/{proto}", p.private_port)),
            }
        })
        .collect();
    ports.sort();
    ports.dedup();
    Container {
        id: clean(s.id.as_deref().unwrap_or_default()),
        name,
        project: labels.get("com.docker.compose.project").map(|p| clean(p)),
        service: labels.get("com.docker.compose.service").map(|p| clean(p)),
        image: clean(s.image.as_deref().unwrap_or_default()),
        state,
        health,
        restart_count: inspected.and_then(|i| i.restart_count),
        started_at: inspected.and_then(|i| i.started_at),
        ports,
        cpu_percent: None,
        mem_bytes: None,
    }
}

/// `Up 5 minutes (healthy)` → healthy; used before the first inspect answers.
pub fn health_from_status(status: &str) -> Option<Health> {
    if status.contains("(healthy)") {
        Some(Health::Healthy)
    } else if status.contains("(unhealthy)") {
        Some(Health::Unhealthy)
    } else if status.contains("(health: starting)") {
        Some(Health::Starting)
    } else {
        None
    }
}

/// `Exited (137) 2 hours ago` → 137.
pub fn exit_code_from_status(status: &str) -> Option<i64> {
    let start = status.find("Exited (")? + "Exited (".len();
    let end = status[start..].find(')')? + start;
    status[start..end].parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_parsing() {
        assert_eq!(
            health_from_status("Up 3 minutes (healthy)"),
            Some(Health::Healthy)
        );
        assert_eq!(
            health_from_status("Up 3 minutes (unhealthy)"),
            Some(Health::Unhealthy)
        );
        assert_eq!(
            health_from_status("Up 1 second (health: starting)"),
            Some(Health::Starting)
        );
        assert_eq!(health_from_status("Up 3 minutes"), None);
        assert_eq!(exit_code_from_status("Exited (137) 2 hours ago"), Some(137));
        assert_eq!(exit_code_from_status("Up"), None);
    }
}
