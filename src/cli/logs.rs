//! `opsdeck logs HOST CONTAINER [--follow] [--tail N]`: a container's log on stdout,
//! through the console's worker for that host: its connection, its container list, and
//! its Docker client lent for the log stream. `opsdeck logs HOST --stack NAME`: every
//! service's log of a stack, interleaved by time, each line after its service's name.

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

/// The compose project a stack named `wanted` runs as: an inventory stack of the host by
/// name, or a compose project the host's containers carry. The error lists both.
pub fn stack_project(
    stacks: &[crate::config::Stack],
    containers: &[crate::model::Container],
    wanted: &str,
) -> Result<String, String> {
    if let Some(s) = stacks.iter().find(|s| s.name.get_ref() == wanted) {
        return Ok(crate::jobs::compose::project_name(s));
    }
    // The inventory's names, then the projects no inventory stack runs as.
    let mut known: Vec<String> = stacks.iter().map(|s| s.name.get_ref().clone()).collect();
    let projects: Vec<String> = stacks
        .iter()
        .map(crate::jobs::compose::project_name)
        .collect();
    for c in containers {
        if let Some(p) = &c.project {
            if p == wanted {
                return Ok(p.clone());
            }
            if !known.contains(p) && !projects.contains(p) {
                known.push(p.clone());
            }
        }
    }
    let known: Vec<String> = known
        .iter()
        .map(|k| crate::sanitize::line(k).into_owned())
        .collect();
    Err(format!(
        "no stack {:?} on this host (there are: {})",
        crate::sanitize::line(wanted),
        if known.is_empty() {
            "none".to_string()
        } else {
            known.join(", ")
        }
    ))
}

/// `--since`: a duration back from now (`90s`, `1h`), or an RFC 3339 time.
pub fn since(text: &str) -> Result<jiff::Timestamp, String> {
    if let Ok(at) = text.parse::<jiff::Timestamp>() {
        return Ok(at);
    }
    let back =
        crate::config::duration::parse_duration(text).map_err(|e| format!("--since: {e}"))?;
    let back = jiff::SignedDuration::try_from(back).map_err(|e| format!("--since: {e}"))?;
    jiff::Timestamp::now()
        .checked_sub(back)
        .map_err(|e| format!("--since {text}: {e}"))
}

/// A stack's containers as (service, container id), by service name.
pub fn stack_sources(
    containers: &[crate::model::Container],
    project: &str,
) -> Vec<(String, String)> {
    let mut found: Vec<(String, String)> = containers
        .iter()
        .filter(|c| c.project.as_deref() == Some(project))
        .map(|c| (c.display_name().to_string(), c.id.clone()))
        .collect();
    found.sort();
    found
}

/// What `opsdeck logs --stack` prints, and how.
#[derive(Debug, Clone, Copy)]
pub struct StackPrint {
    pub follow: bool,
    pub tail: Option<u64>,
    pub after: Option<jiff::Timestamp>,
    /// Each line after Docker's timestamp, as `docker compose logs --timestamps` does.
    pub timestamps: bool,
}

/// Prints a stack's logs on stdout, interleaved by time, each line as `service | text`.
/// On a terminal each service's name has its own colour and lines keep theirs (none of
/// either under `NO_COLOR`); piped, the output is plain text. Every other escape sequence
/// and control character is removed either way.
pub async fn print_stack(engine: &Engine, project: &str, how: StackPrint) -> Result<(), String> {
    use std::io::IsTerminal;
    let sources = stack_sources(&engine.containers, project);
    if sources.is_empty() {
        return Err(format!(
            "stack {:?} has no containers on this host",
            crate::sanitize::line(project)
        ));
    }
    let names: Vec<String> = sources
        .iter()
        .map(|(s, _)| crate::sanitize::line(s).into_owned())
        .collect();
    let stack_sources = sources
        .iter()
        .map(|(s, id)| docker::stack::StackSource::new(s, id))
        .collect();
    let req = docker::stack::StackRequest {
        follow: how.follow,
        tail: how.tail,
        after: how.after,
    };
    let (tx, mut rx) = mpsc::channel::<Msg>(64);
    let task = tokio::spawn(docker::stack::follow_stack(
        (engine.docker.clone(), engine.socket.clone()),
        0,
        project.to_string(),
        stack_sources,
        req,
        tx,
    ));
    let mut out = std::io::stdout().lock();
    let colour = out.is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let prefix = StackPrefix::new(&names, colour);
    let result = loop {
        match rx.recv().await {
            Some(Msg::StackLines { lines, .. }) => {
                for l in &lines {
                    if let Err(e) = write_stack_line(&mut out, &prefix, l, how.timestamps, colour) {
                        task.abort();
                        return Err(e.to_string());
                    }
                }
                let _ = out.flush();
            }
            Some(Msg::StackEnded { .. }) | None => break Ok(()),
            Some(_) => {}
        }
    };
    task.abort();
    result
}

/// Each service's name as the column before its lines: the same width for all (the
/// longest, by display width, at most 16 columns), coloured per service or plain.
pub struct StackPrefix(Vec<String>);

/// Colours of services' names on a terminal, as compose picks them: cyan, yellow, green,
/// magenta, blue, then their bright kinds.
const SERVICE_SGR: [&str; 10] = ["36", "33", "32", "35", "34", "96", "93", "92", "95", "94"];

impl StackPrefix {
    pub fn new(names: &[String], colour: bool) -> Self {
        let width = names
            .iter()
            .map(|n| unicode_width::UnicodeWidthStr::width(n.as_str()))
            .max()
            .unwrap_or(0)
            .min(crate::ui::panels::container::SERVICE_COLUMN_MAX);
        StackPrefix(
            names
                .iter()
                .enumerate()
                .map(|(i, n)| {
                    let name = crate::ui::format::fit_columns(n, width);
                    if colour {
                        format!(
                            "\u{1b}[{}m{name} |\u{1b}[0m ",
                            SERVICE_SGR[i % SERVICE_SGR.len()]
                        )
                    } else {
                        format!("{name} | ")
                    }
                })
                .collect(),
        )
    }

    pub fn get(&self, source: Option<u16>) -> &str {
        source
            .and_then(|i| self.0.get(usize::from(i)))
            .map_or("", String::as_str)
    }
}

/// One line of a stack's logs: its service, its timestamp when asked for, its text (with
/// its colours only when `colour`).
pub fn write_stack_line(
    w: &mut dyn Write,
    prefix: &StackPrefix,
    l: &LogLine,
    timestamps: bool,
    colour: bool,
) -> std::io::Result<()> {
    w.write_all(prefix.get(l.source).as_bytes())?;
    if timestamps && let Some(at) = l.at {
        write!(w, "{at:.9} ")?;
    }
    if colour {
        writeln!(w, "{}", l.text)
    } else {
        writeln!(w, "{}", crate::sanitize::line(&l.text))
    }
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
    fn stack_lines_are_prefixed_by_their_service_and_plain_when_piped() {
        let names = vec!["app".to_string(), "database-with-a-long-name".to_string()];
        let line = |src: u16, text: &str| LogLine {
            time: "10:00:01".into(),
            at: Some("2026-11-23T10:00:01.5Z".parse().unwrap()),
            source: Some(src),
            stream: Stream::Stdout,
            text: text.into(),
        };
        let mut out = Vec::new();
        let plain = StackPrefix::new(&names, false);
        write_stack_line(
            &mut out,
            &plain,
            &line(0, "\u{1b}[31mred\u{1b}[0m"),
            false,
            false,
        )
        .unwrap();
        write_stack_line(&mut out, &plain, &line(1, "ready"), true, false).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "app              | red\n\
             database-with-a… | 2026-11-23T10:00:01.500000000Z ready\n"
        );
        let mut out = Vec::new();
        let coloured = StackPrefix::new(&names, true);
        write_stack_line(
            &mut out,
            &coloured,
            &line(1, "\u{1b}[31mred\u{1b}[0m"),
            false,
            true,
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\u{1b}[33mdatabase-with-a… |\u{1b}[0m \u{1b}[31mred\u{1b}[0m\n"
        );
    }

    #[test]
    fn a_stack_is_found_by_inventory_name_or_compose_project() {
        let all = [
            c("aaaa1111", "lila_web_1", Some("web")),
            c("bbbb2222", "lila_api_1", Some("api")),
            c("cccc3333", "other", None),
        ];
        assert_eq!(stack_project(&[], &all, "lila").unwrap(), "lila");
        let err = stack_project(&[], &all, "nope\u{1b}[2J").unwrap_err();
        assert_eq!(err, "no stack \"nope\" on this host (there are: lila)");
        assert_eq!(
            stack_sources(&all, "lila"),
            [
                ("api".to_string(), "bbbb2222".to_string()),
                ("web".to_string(), "aaaa1111".to_string())
            ]
        );
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
