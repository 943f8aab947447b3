//! `opsdeck logs HOST CONTAINER [--follow] [--tail N]`: a container's log on stdout,
//! through the console's worker for that host: its connection, its container list, and
//! its Docker client lent for the log stream.

use std::io::Write;

use bollard::Docker;
use tokio::sync::{mpsc, oneshot};

use crate::config::{Config, Host};
use crate::docker::logs::{self, LineSplitter, LogDecoder, LogRequest};
use crate::docker::{self};
use crate::model::{DockerState, LogLine, Msg, Stream};
use crate::remote::{self, HostCmd, HostHandle, Shared};

/// Docker on one host, lent by its worker: the API client, fresh connections to its
/// socket (for the log reader), and the worker that keeps the connection under them.
pub struct Engine {
    pub docker: Docker,
    pub socket: docker::Socket,
    /// Every container on the host, from the worker's list.
    pub containers: Vec<crate::model::Container>,
    _worker: HostHandle,
}

/// Docker for host `index`, through a worker as the console has.
pub async fn docker_for(
    index: usize,
    host: &Host,
    config: &Config,
    shared: &Shared,
) -> Result<Engine, String> {
    let (tx, mut rx) = mpsc::channel::<Msg>(64);
    let worker = remote::spawn_for_jobs(index, host, config, shared, tx);
    let snapshot = remote::ready(&mut rx).await?;
    let containers = match (&snapshot.containers, &snapshot.docker) {
        (Some((_, list)), _) => list.clone(),
        (None, DockerState::Unavailable { reason }) => {
            return Err(format!("Docker on {}: {reason}", host.name.get_ref()));
        }
        (None, _) => return Err(format!("Docker on {}: no answer", host.name.get_ref())),
    };
    let (reply, answer) = oneshot::channel();
    worker.send(HostCmd::Engine { reply });
    let Some((docker, socket)) = answer.await.ok().flatten() else {
        return Err(format!("Docker on {}: not reachable", host.name.get_ref()));
    };
    // The worker goes on watching; what it says is not needed here.
    tokio::spawn(async move { while rx.recv().await.is_some() {} });
    Ok(Engine {
        docker,
        socket,
        containers,
        _worker: worker,
    })
}

/// Finds a container by name, compose service or id prefix, in the worker's list.
pub fn find(engine: &Engine, wanted: &str) -> Result<String, String> {
    let all: Vec<&crate::model::Container> = engine.containers.iter().collect();
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

/// Prints the log to stdout and stderr, each to the stream it came on. Raw bytes (as
/// `docker logs` prints them) with `raw` or where the stream is not a terminal; on a
/// terminal, line by line with every escape sequence but colours removed (colours too
/// under `NO_COLOR`), so a log cannot write the clipboard or redraw the screen.
pub async fn print(
    engine: &Engine,
    id: &str,
    follow: bool,
    tail: Option<u64>,
    raw: bool,
) -> Result<(), String> {
    use std::io::IsTerminal;
    let req = LogRequest {
        follow,
        timestamps: false,
        tail,
        after: None,
    };
    let mut body = logs::open(&engine.docker, &engine.socket, id, &req).await?;
    let mut out = std::io::stdout().lock();
    let mut err = std::io::stderr().lock();
    let clean = [!raw && out.is_terminal(), !raw && err.is_terminal()];
    let colour = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let mut decoder = LogDecoder::new(body.tty);
    let mut splitter = LineSplitter::default();
    let mut lines = Vec::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk?;
        let mut failed = None;
        decoder.demux(&chunk, |stream, bytes| {
            let slot = usize::from(stream == Stream::Stderr);
            if clean[slot] {
                splitter.push(stream, bytes, &mut lines);
            } else {
                let w: &mut dyn Write = if slot == 1 { &mut err } else { &mut out };
                if let Err(e) = w.write_all(bytes) {
                    failed = Some(e);
                }
            }
        })?;
        if let Some(e) = failed {
            return Err(e.to_string());
        }
        write_lines(&mut out, &mut err, &mut lines, colour).map_err(|e| e.to_string())?;
        if follow {
            let _ = out.flush();
        }
    }
    splitter.finish(&mut lines);
    write_lines(&mut out, &mut err, &mut lines, colour).map_err(|e| e.to_string())
}

/// Writes lines the splitter made (already free of every escape but SGR), dropping
/// colours too when `colour` is off.
fn write_lines(
    out: &mut dyn Write,
    err: &mut dyn Write,
    lines: &mut Vec<LogLine>,
    colour: bool,
) -> std::io::Result<()> {
    for l in lines.drain(..) {
        let w: &mut dyn Write = if l.stream == Stream::Stderr {
            &mut *err
        } else {
            &mut *out
        };
        let text = if colour {
            l.text
        } else {
            crate::sanitize::line(&l.text).into_owned()
        };
        writeln!(w, "{text}")?;
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
