//! The steps that are not command lines: Docker API calls over the host's connection
//! (restart, image tags for a rollback, container health for `wait healthy`) and a
//! backup of one set.

use std::sync::Arc;
use std::time::Duration;

use bollard::Docker;
use bollard::query_parameters::{RestartContainerOptions, TagImageOptions};
use tokio::sync::mpsc;

use super::backup::{self, BackupError, BackupEvent, BackupJob};
use super::exec::{Context, StepEnd, Stop, Tracker};
use super::lock::host_file;
use super::plan::Plan;
use super::runner::Runner;
use super::script;
use crate::checks::{CheckSpec, Tunnel};
use crate::config::Stack;
use crate::model::job::ContainerOp;
use crate::model::job::{JobEvent, LineKind};
use crate::model::{Container, Health, RunState};

/// How often `wait healthy` looks again.
const WAIT_EVERY: Duration = Duration::from_secs(2);
/// Docker API calls of a job (a restart waits for the container to stop).
const DOCKER_TIMEOUT: Duration = Duration::from_secs(120);

fn need_docker<R: Runner>(ctx: &Context<'_, R>) -> Result<Docker, StepEnd> {
    ctx.docker
        .clone()
        .map(|d| d.with_timeout(DOCKER_TIMEOUT))
        .ok_or_else(|| StepEnd::fail("Docker is not reachable on the host"))
}

/// Docker, and the compose project the step works on (every step that needs one belongs
/// to a stack; the plan refuses the others).
fn docker_and_project<'p, R: Runner>(
    ctx: &Context<'_, R>,
    plan: &'p Plan,
) -> Result<(Docker, &'p str), StepEnd> {
    let docker = need_docker(ctx)?;
    let project = plan
        .project
        .as_deref()
        .ok_or_else(|| StepEnd::fail("this step works on a stack, and the job has none"))?;
    Ok((docker, project))
}

/// The project's containers (not one-off `compose run` ones), as the console shows them.
async fn project_containers(
    docker: &Docker,
    cache: &mut crate::docker::InspectCache,
    project: &str,
    services: &[String],
) -> Result<Vec<Container>, String> {
    Ok(cache
        .list(docker)
        .await?
        .into_iter()
        .filter(|c| c.project.as_deref() == Some(project))
        .filter(|c| {
            services.is_empty()
                || c.service
                    .as_ref()
                    .is_some_and(|s| services.iter().any(|w| w == s))
        })
        .collect())
}

/// `Ok(())` when a container counts as healthy; else what is wrong with it.
fn container_verdict(c: &Container) -> Result<(), String> {
    let name = c.display_name();
    match (&c.state, c.health) {
        (RunState::Running, None | Some(Health::Healthy)) => Ok(()),
        (RunState::Running, Some(Health::Starting)) => Err(format!("{name} starting")),
        (RunState::Running, Some(Health::Unhealthy)) => Err(format!("{name} unhealthy")),
        // A one-shot service that did its work (a migration container, say).
        (RunState::Exited { code: Some(0) }, _) => Ok(()),
        (state, _) => Err(format!("{name} {}", state.label())),
    }
}

pub(super) async fn wait_healthy<R: Runner>(
    ctx: &Context<'_, R>,
    plan: &Plan,
    limit: Duration,
    step: usize,
    t: &mut Tracker<'_>,
    mut stop: Stop,
) -> StepEnd {
    let (docker, project) = match docker_and_project(ctx, plan) {
        Ok(found) => found,
        Err(e) => return e,
    };
    let started = tokio::time::Instant::now();
    let deadline = started + limit;
    let mut cache = crate::docker::InspectCache::default();
    let mut last = String::new();
    loop {
        let containers = project_containers(&docker, &mut cache, project, &plan.services).await;
        let checks = check_all(&plan.checks, ctx.tunnel.clone()).await;
        let mut bad: Vec<String> = Vec::new();
        let summary = match &containers {
            Ok(cs) if cs.is_empty() => {
                bad.push(format!("no containers of project {project}"));
                String::new()
            }
            Ok(cs) => {
                for c in cs {
                    if let Err(e) = container_verdict(c) {
                        bad.push(e);
                    }
                }
                format!(
                    "{} container{}",
                    cs.len(),
                    if cs.len() == 1 { "" } else { "s" }
                )
            }
            Err(e) => {
                bad.push(format!("cannot list containers: {e}"));
                String::new()
            }
        };
        for c in &checks {
            if !c.ok {
                let why = c
                    .error
                    .clone()
                    .or(c.status.map(|s| format!("status {s}")))
                    .unwrap_or_else(|| "failed".into());
                bad.push(format!("check {} {why}", c.name));
            }
        }
        let now_text = if bad.is_empty() {
            format!(
                "healthy: {summary}{}",
                if checks.is_empty() {
                    String::new()
                } else {
                    format!(
                        ", {} check{} passing",
                        checks.len(),
                        if checks.len() == 1 { "" } else { "s" }
                    )
                }
            )
        } else {
            format!("waiting: {}", bad.join(", "))
        };
        if now_text != last {
            t.info(Some(step), now_text.clone()).await;
            last = now_text;
        }
        if bad.is_empty() {
            return StepEnd::Ok;
        }
        if tokio::time::Instant::now() >= deadline {
            return StepEnd::fail(format!(
                "not healthy after {}: {}",
                crate::config::format_duration(limit),
                bad.join(", ")
            ));
        }
        tokio::select! {
            _ = tokio::time::sleep(WAIT_EVERY.min(deadline - tokio::time::Instant::now())) => {}
            why = stop.wait() => return StepEnd::Cancelled(why),
        }
    }
}

async fn check_all(
    specs: &[CheckSpec],
    tunnel: Option<Arc<dyn Tunnel>>,
) -> Vec<crate::checks::CheckStatus> {
    if specs.is_empty() {
        return Vec::new();
    }
    crate::checks::run_all(specs, tunnel, jiff::Timestamp::now().as_second()).await
}

/// `service<TAB>image name<TAB>image id` per line, one line per service.
fn images_record(rows: &[(String, String, String)]) -> String {
    rows.iter()
        .map(|(s, n, i)| format!("{s}\t{n}\t{i}\n"))
        .collect()
}

fn parse_images_record(text: &str) -> Vec<(String, String, String)> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split('\t');
            let (s, n, i) = (f.next()?, f.next()?, f.next()?);
            (!s.is_empty() && !n.is_empty() && i.starts_with("sha256:"))
                .then(|| (s.to_string(), n.to_string(), i.to_string()))
        })
        .collect()
}

fn short_id(id: &str) -> &str {
    let id = id.strip_prefix("sha256:").unwrap_or(id);
    id.get(..12).unwrap_or(id)
}

pub(super) async fn record_images<R: Runner>(
    ctx: &Context<'_, R>,
    plan: &Plan,
    step: usize,
    t: &mut Tracker<'_>,
    runner: &impl Runner,
) -> StepEnd {
    let (docker, project) = match docker_and_project(ctx, plan) {
        Ok(found) => found,
        Err(e) => return e,
    };
    let rows = match current_images(&docker, project).await {
        Ok(rows) => rows,
        Err(e) => return StepEnd::fail(e),
    };
    if rows.is_empty() {
        t.info(
            Some(step),
            format!("no containers of project {project} yet: the last record (if any) is kept"),
        )
        .await;
        return StepEnd::Ok;
    }
    let file = host_file(project, "images");
    let Some(command) = script::command(
        None,
        script::WRITE_FILE,
        &[file.clone(), images_record(&rows)],
    ) else {
        return StepEnd::fail("an image name cannot be passed to the host's shell");
    };
    match runner.run(&command).await {
        Ok(out) if out.status == Some(0) => {
            let lines = rows
                .iter()
                .map(|(s, n, i)| format!("{s}: {n} = {}", short_id(i)))
                .chain(std::iter::once(format!("recorded in ~/{file}")))
                .collect();
            t.lines(Some(step), LineKind::Info, lines).await;
            StepEnd::Ok
        }
        Ok(out) => StepEnd::Failed {
            exit: out.status.and_then(|s| i32::try_from(s).ok()),
            why: format!(
                "cannot write ~/{file}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        },
        Err(e) => StepEnd::fail(e.to_string()),
    }
}

/// What the project's containers run now, one row per service, sorted: (service, the
/// image name its compose file uses, the image ID).
pub(super) async fn current_images(
    docker: &Docker,
    project: &str,
) -> Result<Vec<(String, String, String)>, String> {
    let mut cache = crate::docker::InspectCache::default();
    let containers = project_containers(docker, &mut cache, project, &[])
        .await
        .map_err(|e| format!("cannot list the containers: {e}"))?;
    let mut rows: Vec<(String, String, String)> = Vec::new();
    for c in &containers {
        let Some(service) = c.service.clone() else {
            continue;
        };
        let inspect = tokio::time::timeout(
            DOCKER_TIMEOUT,
            docker.inspect_container(
                &c.id,
                None::<bollard::query_parameters::InspectContainerOptions>,
            ),
        )
        .await;
        let Ok(Ok(r)) = inspect else {
            return Err(format!("cannot inspect {}", c.name));
        };
        let name = r.config.as_ref().and_then(|c| c.image.clone());
        if let (Some(name), Some(id)) = (name, r.image)
            && !rows.iter().any(|(s, _, _)| *s == service)
        {
            rows.push((service, name, id));
        }
    }
    rows.sort();
    Ok(rows)
}

/// `127.0.0.1:5000/lila/api:latest` → (`127.0.0.1:5000/lila/api`, `latest`): the tag is
/// after the last `:` only when no `/` follows it (a registry port is not a tag).
fn split_image(name: &str) -> (String, String) {
    let name = name.split('@').next().unwrap_or(name);
    match name.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo.to_string(), tag.to_string()),
        _ => (name.to_string(), "latest".to_string()),
    }
}

pub(super) async fn restore_images<R: Runner>(
    ctx: &Context<'_, R>,
    plan: &Plan,
    step: usize,
    t: &mut Tracker<'_>,
    runner: &impl Runner,
) -> StepEnd {
    let (docker, project) = match docker_and_project(ctx, plan) {
        Ok(found) => found,
        Err(e) => return e,
    };
    if let Some(r) = &t.chosen {
        let rows: Vec<(String, String, String)> = r
            .services
            .iter()
            .map(|s| (s.service.clone(), s.image.clone(), s.id.clone()))
            .collect();
        return retag(&docker, &rows, step, t).await;
    }
    let file = host_file(project, "images");
    let Some(command) = script::command(None, script::READ_FILE, std::slice::from_ref(&file))
    else {
        return StepEnd::fail("the record's path cannot be quoted");
    };
    let text = match runner.run(&command).await {
        Ok(out) if out.status == Some(0) => String::from_utf8_lossy(&out.stdout).into_owned(),
        Ok(out) => {
            return StepEnd::fail(format!(
                "cannot read ~/{file}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Err(e) => {
            return StepEnd::fail(e.to_string());
        }
    };
    let rows = parse_images_record(&text);
    if rows.is_empty() {
        return StepEnd::fail(format!(
            "nothing to roll back to: ~/{file} is missing or empty (each deploy records the image IDs in use before it changes anything)"
        ));
    }
    retag(&docker, &rows, step, t).await
}

/// Tags each recorded image ID with the name its service's compose file uses (the image
/// must still be on the host: nothing is pulled).
async fn retag(
    docker: &Docker,
    rows: &[(String, String, String)],
    step: usize,
    t: &mut Tracker<'_>,
) -> StepEnd {
    if rows.is_empty() {
        return StepEnd::fail("the release recorded no images");
    }
    for (service, name, id) in rows {
        if !id.starts_with("sha256:") || name.is_empty() {
            return StepEnd::fail(format!(
                "the record of {service} is not an image ID and name"
            ));
        }
        if let Err(e) = docker.inspect_image(id).await {
            return StepEnd::fail(format!(
                "the image {} of {service} is gone from the host ({e}): nothing was retagged",
                short_id(id)
            ));
        }
    }
    // every image is there: only now is anything retagged
    for (service, name, id) in rows {
        let (repo, tag) = split_image(name);
        let opts = TagImageOptions {
            repo: Some(repo),
            tag: Some(tag),
        };
        if let Err(e) = docker.tag_image(id, Some(opts)).await {
            return StepEnd::fail(format!("cannot tag {} as {name}: {e}", short_id(id)));
        }
        t.info(Some(step), format!("{service}: {name} → {}", short_id(id)))
            .await;
    }
    StepEnd::Ok
}

pub(super) async fn restart<R: Runner>(
    ctx: &Context<'_, R>,
    id: &str,
    name: &str,
    step: usize,
    t: &mut Tracker<'_>,
) -> StepEnd {
    let docker = match need_docker(ctx) {
        Ok(d) => d,
        Err(e) => return e,
    };
    let opts = RestartContainerOptions {
        t: Some(10),
        signal: None,
    };
    match docker.restart_container(id, Some(opts)).await {
        Ok(()) => {
            t.info(Some(step), format!("{name} restarted")).await;
            StepEnd::Ok
        }
        Err(e) => StepEnd::fail(format!("cannot restart {name}: {e}")),
    }
}

/// One of Docker's lifecycle calls on one container.
pub(super) async fn container_op<R: Runner>(
    ctx: &Context<'_, R>,
    op: ContainerOp,
    id: &str,
    name: &str,
    step: usize,
    t: &mut Tracker<'_>,
) -> StepEnd {
    use bollard::query_parameters::{
        KillContainerOptions, RemoveContainerOptions, StartContainerOptions, StopContainerOptions,
    };
    let docker = match need_docker(ctx) {
        Ok(d) => d,
        Err(e) => return e,
    };
    let done = match op {
        ContainerOp::Stop => {
            let opts = StopContainerOptions {
                t: Some(10),
                signal: None,
            };
            docker
                .stop_container(id, Some(opts))
                .await
                .map(|()| "stopped")
        }
        ContainerOp::Start => docker
            .start_container(id, None::<StartContainerOptions>)
            .await
            .map(|()| "started"),
        ContainerOp::Kill(signal) => {
            let opts = KillContainerOptions {
                signal: signal.name().to_string(),
            };
            docker
                .kill_container(id, Some(opts))
                .await
                .map(|()| "signalled")
        }
        ContainerOp::Pause => docker.pause_container(id).await.map(|()| "paused"),
        ContainerOp::Unpause => docker.unpause_container(id).await.map(|()| "unpaused"),
        ContainerOp::Remove => {
            let opts = RemoveContainerOptions {
                force: false,
                v: false,
                link: false,
            };
            docker
                .remove_container(id, Some(opts))
                .await
                .map(|()| "removed")
        }
    };
    match done {
        Ok(what) => {
            let what = match op {
                ContainerOp::Kill(s) => format!("{name}: SIG{} sent", s.name()),
                _ => format!("{name} {what}"),
            };
            t.info(Some(step), what).await;
            StepEnd::Ok
        }
        Err(e) => StepEnd::fail(format!(
            "cannot {} {name}: {}",
            op.verb(),
            crate::sanitize::line(&e.to_string())
        )),
    }
}

pub(super) async fn restart_project<R: Runner>(
    ctx: &Context<'_, R>,
    plan: &Plan,
    step: usize,
    t: &mut Tracker<'_>,
    stop: Stop,
) -> StepEnd {
    let (docker, project) = match docker_and_project(ctx, plan) {
        Ok(found) => found,
        Err(e) => return e,
    };
    let mut cache = crate::docker::InspectCache::default();
    let mut containers = match project_containers(&docker, &mut cache, project, &[]).await {
        Ok(c) => c,
        Err(e) => {
            return StepEnd::fail(format!("cannot list the containers: {e}"));
        }
    };
    if containers.is_empty() {
        return StepEnd::fail(format!("no containers of project {project} on the host"));
    }
    containers.sort_by(|a, b| a.name.cmp(&b.name));
    for c in containers {
        if let Some(why) = stop.reason() {
            return StepEnd::Cancelled(why);
        }
        if let StepEnd::Failed { exit, why } = restart(ctx, &c.id, &c.name, step, t).await {
            return StepEnd::Failed { exit, why };
        }
    }
    StepEnd::Ok
}

// --------------------------------------------------------------------------- backups

pub(super) async fn run_backup<R: Runner>(
    ctx: &Context<'_, R>,
    stack: &Stack,
    set: &crate::config::BackupSet,
    step: usize,
    t: &mut Tracker<'_>,
    runner: &impl Runner,
) -> (StepEnd, Option<String>) {
    let job = BackupJob {
        stack,
        set,
        docker_host: ctx.docker_host.as_deref(),
    };
    let (etx, mut erx) = mpsc::channel::<BackupEvent>(32);
    let result = {
        let run = backup::run(runner, &job, &etx);
        tokio::pin!(run);
        loop {
            tokio::select! {
                r = &mut run => break r,
                Some(e) = erx.recv() => backup_event(e, step, t).await,
            }
        }
    };
    drop(etx);
    while let Ok(e) = erx.try_recv() {
        backup_event(e, step, t).await;
    }
    t.record.set = Some(set.name.get_ref().clone());
    match result {
        Ok(o) => {
            t.record.file = Some(o.path.clone());
            t.record.size = Some(o.size);
            let removed = if o.removed.is_empty() {
                String::new()
            } else {
                format!(", {} old removed", o.removed.len())
            };
            let summary = format!(
                "{} ({} in {}s{removed})",
                o.path,
                crate::ui::format::bytes(o.size),
                o.duration.as_secs()
            );
            if let Some(e) = &o.retention_error {
                t.lines(
                    Some(step),
                    LineKind::Err,
                    vec![format!("opsdeck: warning: {e}")],
                )
                .await;
            }
            (StepEnd::Ok, Some(summary))
        }
        Err(BackupError::Interrupted) => (
            StepEnd::Cancelled("the host stopped the backup and removed its partial file".into()),
            None,
        ),
        Err(e) => (StepEnd::fail(e.to_string()), None),
    }
}

async fn backup_event(e: BackupEvent, step: usize, t: &mut Tracker<'_>) {
    match e {
        BackupEvent::Started { what } => t.info(Some(step), what).await,
        BackupEvent::Progress { bytes, .. } => t.send(JobEvent::Progress { bytes }).await,
        BackupEvent::Verified => t.info(Some(step), "verified").await,
        BackupEvent::Renamed { path, size } => {
            t.info(Some(step), format!("saved {path} ({size} bytes)"))
                .await
        }
        BackupEvent::Removed { path } => {
            t.info(Some(step), format!("retention removed {path}"))
                .await
        }
        BackupEvent::Warning(w) => {
            t.lines(
                Some(step),
                LineKind::Err,
                vec![format!("opsdeck: warning: {w}")],
            )
            .await
        }
        BackupEvent::Finished(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_names_split_at_the_tag_not_the_registry_port() {
        assert_eq!(
            split_image("127.0.0.1:5000/lila/api:latest"),
            ("127.0.0.1:5000/lila/api".into(), "latest".into())
        );
        assert_eq!(
            split_image("127.0.0.1:5000/lila/api"),
            ("127.0.0.1:5000/lila/api".into(), "latest".into())
        );
        assert_eq!(
            split_image("course-supporter_app"),
            ("course-supporter_app".into(), "latest".into())
        );
        assert_eq!(
            split_image("postgres:17@sha256:abc"),
            ("postgres".into(), "17".into())
        );
    }

    #[test]
    fn image_records_round_trip_and_skip_garbage() {
        let rows = vec![(
            "api".to_string(),
            "127.0.0.1:5000/lila/api:latest".to_string(),
            "sha256:0123456789abcdef".to_string(),
        )];
        let text = images_record(&rows);
        assert_eq!(parse_images_record(&text), rows);
        assert!(parse_images_record("api\tx\tnot-an-id\n\ngarbage").is_empty());
    }

    fn c(state: RunState, health: Option<Health>) -> Container {
        Container {
            id: "x".into(),
            name: "app_api_1".into(),
            project: Some("app".into()),
            service: Some("api".into()),
            image: "i".into(),
            state,
            health,
            restart_count: Some(0),
            started_at: None,
            ports: vec![],
            cpu_percent: None,
            mem_bytes: None,
        }
    }

    #[test]
    fn healthy_means_running_and_passing_its_healthcheck_or_done() {
        assert!(container_verdict(&c(RunState::Running, None)).is_ok());
        assert!(container_verdict(&c(RunState::Running, Some(Health::Healthy))).is_ok());
        assert_eq!(
            container_verdict(&c(RunState::Running, Some(Health::Starting))),
            Err("api starting".into())
        );
        assert_eq!(
            container_verdict(&c(RunState::Running, Some(Health::Unhealthy))),
            Err("api unhealthy".into())
        );
        assert!(container_verdict(&c(RunState::Exited { code: Some(0) }, None)).is_ok());
        assert_eq!(
            container_verdict(&c(RunState::Exited { code: Some(1) }, None)),
            Err("api exited(1)".into())
        );
        assert_eq!(
            container_verdict(&c(RunState::Restarting, None)),
            Err("api restarting".into())
        );
    }
}
