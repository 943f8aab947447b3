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
    let hit = containers
        .iter()
        .find(|c| c.name == wanted || c.id == wanted)
        .or_else(|| {
            containers
                .iter()
                .find(|c| c.service.as_deref() == Some(wanted))
        })
        .or_else(|| {
            containers
                .iter()
                .find(|c| wanted.len() >= 4 && c.id.starts_with(wanted))
        });
    match hit {
        Some(c) => Ok(c.id.clone()),
        None => {
            let names: Vec<&str> = containers.iter().map(|c| c.name.as_str()).collect();
            Err(format!(
                "no container {wanted:?} (there are: {})",
                names.join(", ")
            ))
        }
    }
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
