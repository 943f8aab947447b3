//! This machine as the worker sees it ([`super::worker`]): no connection to make or lose,
//! job commands run by `sh` here ([`Local`]), metrics from sysinfo, containers' CPU and
//! memory from the local cgroup filesystem, Docker on the local socket.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use super::ssh::SshError;
use super::worker::{Connector, Link, Probe, ProbeError, Sampled};
use crate::collect::cgroup::{self, CpuRates};
use crate::collect::local::LocalCollector;
use crate::jobs::Local;

/// Where this machine's cgroups are.
const CGROUP_ROOT: &str = "/sys/fs/cgroup";

pub struct LocalConnector;

impl Connector for LocalConnector {
    type Link = Local;

    async fn connect(&mut self) -> Result<Local, SshError> {
        Ok(Local::new())
    }
}

impl Link for Local {
    type Probe = LocalProbe;

    fn probe(self: &Arc<Self>) -> LocalProbe {
        LocalProbe {
            collector: None,
            rates: CpuRates::default(),
        }
    }

    async fn docker(
        self: &Arc<Self>,
        socket: &str,
    ) -> (
        Result<(bollard::Docker, String), String>,
        crate::docker::Socket,
    ) {
        (
            crate::docker::connect_unix(socket).await,
            crate::docker::Socket::unix(socket),
        )
    }

    fn tunnel(self: &Arc<Self>) -> Option<Arc<dyn crate::checks::Tunnel>> {
        None
    }

    fn is_closed(&self) -> bool {
        false
    }

    async fn disconnect(&self) {}

    async fn shell(
        self: &Arc<Self>,
        request: &super::shell::ShellRequest,
        docker_host: Option<&str>,
    ) -> Result<super::shell::ShellIo, String> {
        let mut argv = super::shell::argv(request, docker_host);
        if argv.is_empty() {
            argv = super::shell::local_login_shell();
        }
        Ok(super::shell::ShellIo::Local { argv })
    }
}

pub struct LocalProbe {
    /// sysinfo's state between samples (CPU usage is measured since the last one); made
    /// at the first sample, and again if a sample was abandoned while it had it.
    collector: Option<LocalCollector>,
    rates: CpuRates,
}

impl Probe for LocalProbe {
    async fn sample(&mut self) -> Result<Sampled, ProbeError> {
        let mut collector = match self.collector.take() {
            Some(c) => c,
            None => LocalCollector::new().map_err(ProbeError::Failed)?,
        };
        // sysinfo and cgroupfs are read synchronously: off the async threads.
        let (collector, metrics, counters) = tokio::task::spawn_blocking(move || {
            let metrics = collector.sample();
            let root = Path::new(CGROUP_ROOT);
            let counters: Vec<_> = cgroup::local_ids(root)
                .into_iter()
                .filter_map(|id| Some((cgroup::read_local(root, &id)?, id)))
                .collect();
            (collector, metrics, counters)
        })
        .await
        .map_err(|e| ProbeError::Failed(format!("the local sampler failed: {e}")))?;
        self.collector = Some(collector);
        let now = Instant::now();
        let usage: HashMap<String, _> = counters
            .into_iter()
            .map(|(c, id)| {
                let cpu = self.rates.rate(&id, c.cpu_ns, now);
                (id, (cpu, c.mem_bytes))
            })
            .collect();
        let ids: Vec<&str> = usage.keys().map(String::as_str).collect();
        self.rates.retain(&ids);
        Ok((metrics, usage))
    }

    fn reset(&mut self) {}
}
