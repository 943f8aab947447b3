//! `opsdeck logs HOST CONTAINER [--follow] [--tail N]`: a container's log on stdout,
//! through the same connection code as the console (SSH or the local socket).

use std::io::Write;
use std::sync::Arc;

use bollard::Docker;
use bollard::container::LogOutput;
use bollard::query_parameters::LogsOptions;
use futures::StreamExt;

use crate::config::Host;
use crate::docker::{self, InspectCache};
use crate::remote::Shared;
use crate::remote::ssh::{self, Session};

/// Docker for one host, and the SSH session it rides on (kept alive by the caller).
pub async fn docker_for(
    host: &Host,
    config: &crate::config::Config,
    shared: &Shared,
) -> Result<(Docker, Option<Arc<Session>>), String> {
    if host.is_local() {
        let (d, _) = docker::connect_unix(host.docker_socket()).await?;
        return Ok((d, None));
    }
    let target = ssh::resolve(host, &config.inventory.settings, shared.ssh_config.as_ref());
    let session = Arc::new(
        Session::connect(&target, &shared.policy, &ssh::Passphrases::new())
            .await
            .map_err(|e| e.to_string())?,
    );
    let (d, _) = ssh::docker(session.clone(), host.docker_socket()).await?;
    Ok((d, Some(session)))
}

/// Finds a container by name, compose service or id prefix.
pub async fn find(docker: &Docker, wanted: &str) -> Result<String, String> {
    let containers = InspectCache::default().list(docker).await?;
    let all: Vec<&crate::model::Container> = containers.iter().collect();
    pick(&all, wanted).map(|c| c.id.clone())
}

/// The container `wanted` names among `containers`: by name or full id, else by compose
/// service, else by an id prefix of at least 4 characters. The error lists the names.
pub fn pick<'a>(
    containers: &[&'a crate::model::Container],
    wanted: &str,
) -> Result<&'a crate::model::Container, String> {
    let by =
        |f: &dyn Fn(&crate::model::Container) -> bool| containers.iter().copied().find(|c| f(c));
    by(&|c| c.name == wanted || c.id == wanted)
        .or_else(|| by(&|c| c.service.as_deref() == Some(wanted)))
        .or_else(|| by(&|c| wanted.len() >= 4 && c.id.starts_with(wanted)))
        .ok_or_else(|| {
            let names: Vec<&str> = containers.iter().map(|c| c.name.as_str()).collect();
            format!("no container {wanted:?} (there are: {})", names.join(", "))
        })
}

pub async fn print(
    docker: &Docker,
    id: &str,
    follow: bool,
    tail: Option<u64>,
) -> Result<(), String> {
    let opts = LogsOptions {
        follow,
        stdout: true,
        stderr: true,
        timestamps: false,
        tail: tail.map_or("all".into(), |n| n.to_string()),
        ..Default::default()
    };
    let mut stream = docker.logs(id, Some(opts));
    let mut out = std::io::stdout().lock();
    let mut err = std::io::stderr().lock();
    while let Some(item) = stream.next().await {
        match item.map_err(|e| e.to_string())? {
            LogOutput::StdErr { message } => err.write_all(&message),
            LogOutput::StdOut { message }
            | LogOutput::Console { message }
            | LogOutput::StdIn { message } => out.write_all(&message),
        }
        .map_err(|e| e.to_string())?;
        if follow {
            let _ = out.flush();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Container, RunState};

    fn c(id: &str, name: &str, service: Option<&str>) -> Container {
        Container {
            id: id.into(),
            name: name.into(),
            project: service.map(|_| "lila".into()),
            service: service.map(str::to_string),
            image: "i".into(),
            state: RunState::Running,
            health: None,
            restart_count: None,
            started_at: None,
            ports: vec![],
            cpu_percent: None,
            mem_bytes: None,
        }
    }

    #[test]
    fn names_win_over_services_and_services_over_id_prefixes() {
        let all = [
            c("aaaa1111", "web", None),
            c("bbbb2222", "lila_web_1", Some("web")),
            c("cccc3333", "lila_api_1", Some("api")),
        ];
        let refs: Vec<&Container> = all.iter().collect();
        assert_eq!(pick(&refs, "web").unwrap().id, "aaaa1111");
        assert_eq!(pick(&refs, "api").unwrap().id, "cccc3333");
        assert_eq!(pick(&refs, "bbbb").unwrap().name, "lila_web_1");
        assert_eq!(pick(&refs, "lila_web_1").unwrap().id, "bbbb2222");
        // too short to be a prefix, and no such name
        let err = pick(&refs, "ccc").unwrap_err();
        assert_eq!(
            err,
            "no container \"ccc\" (there are: web, lila_web_1, lila_api_1)"
        );
    }
}
