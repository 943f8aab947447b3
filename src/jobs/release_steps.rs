//! The steps of a stack's release history ([`crate::model::releases`]): recording a
//! release when a deploy, migration or rollback ends; choosing the release a rollback or a
//! restore goes to; undoing migrations with the stack's `downgrade` recipe; checking out
//! the release's commit; restoring its dump; and the keep tags and never-started keeper
//! containers that hold kept releases' images against `docker image prune -a`.

use std::collections::HashMap;
use std::time::Duration;

use bollard::Docker;
use bollard::models::ContainerCreateBody;
use bollard::query_parameters::{
    CreateContainerOptions, RemoveContainerOptions, RemoveImageOptions, StartContainerOptions,
    StopContainerOptions, TagImageOptions,
};

use super::exec::{Context, StepEnd, Stop, Tracker, run_command, stack_dir};
use super::lock::host_file;
use super::plan::Plan;
use super::runner::Runner;
use super::{compose, script};
use crate::collect::backups::remote_dir;
use crate::config::{BackupSet, CommandLine, ComposeCommand, DumpFormat};
use crate::model::job::LineKind;
use crate::model::releases::{self, History, KEEP_LABEL, Release, ServiceImage};

/// Commands that read the host for a release record (git, the migration head): they run
/// after the job, cancelled or not, so they get a bound of their own.
const READ_TIMEOUT: Duration = Duration::from_secs(60);
/// Docker calls of the keep tags.
const DOCKER_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest migration head or commit kept.
const MAX_WORD: usize = 200;

/// Prints at most `$2` bytes of `$1`, or nothing when there is no such file.
const READ_HEAD: &str = r#"[ ! -e "$1" ] || head -c "$2" -- "$1""#;

/// The commit of the stack directory's checkout, or nothing when it is not one.
const GIT_HEAD: &str = r#"cd -- "$1" 2>/dev/null || exit 0
git rev-parse --is-inside-work-tree >/dev/null 2>&1 || exit 0
git rev-parse --verify -q HEAD 2>/dev/null"#;

/// Restores a dump into a freshly made database, after checking the dump reads whole (so
/// a broken file never drops the database). Positional: container, user, database,
/// format (`custom` or `sql-gzip`), the dump's path.
const RESTORE: &str = r#"set -u
ctr=$1 user=$2 db=$3 format=$4 file=$5
[ -r "$file" ] || { printf 'opsdeck: cannot read the dump %s\n' "$file" >&2; exit 1; }
case $format in
custom) docker exec -i "$ctr" pg_restore --list <"$file" >/dev/null || { printf 'opsdeck: pg_restore --list rejects %s: nothing was changed\n' "$file" >&2; exit 1; } ;;
*) gzip -t -- "$file" || { printf 'opsdeck: gzip -t rejects %s: nothing was changed\n' "$file" >&2; exit 1; } ;;
esac
printf 'dropping and creating database %s\n' "$db"
docker exec "$ctr" dropdb -U "$user" --if-exists --force -- "$db" || exit 1
docker exec "$ctr" createdb -U "$user" -- "$db" || exit 1
printf 'restoring %s\n' "$file"
case $format in
custom) docker exec -i "$ctr" pg_restore -U "$user" -d "$db" --exit-on-error <"$file" || exit 1 ;;
*) gzip -dc -- "$file" | docker exec -i "$ctr" psql -X -q -v ON_ERROR_STOP=1 -U "$user" -d "$db" >/dev/null || exit 1 ;;
esac
printf 'restored\n'"#;

fn need<R: Runner>(ctx: &Context<'_, R>, plan: &Plan) -> Result<(Docker, String), StepEnd> {
    let docker = ctx
        .docker
        .clone()
        .map(|d| d.with_timeout(DOCKER_TIMEOUT))
        .ok_or_else(|| StepEnd::fail("Docker is not reachable on the host"))?;
    let project = plan
        .project
        .clone()
        .ok_or_else(|| StepEnd::fail("this step works on a stack, and the job has none"))?;
    Ok((docker, project))
}

/// The stack's history as its host keeps it (bounded; unreadable lines counted).
pub(crate) async fn history<R: Runner>(runner: &R, project: &str) -> Result<History, String> {
    let file = host_file(project, "releases");
    let command = script::command(
        None,
        READ_HEAD,
        &[file.clone(), releases::MAX_FILE.to_string()],
    )
    .ok_or("the history's path cannot be quoted")?;
    let out = tokio::time::timeout(READ_TIMEOUT, runner.run(&command))
        .await
        .map_err(|_| format!("reading ~/{file} took over a minute"))?
        .map_err(|e| e.to_string())?;
    if out.status != Some(0) {
        return Err(format!(
            "cannot read ~/{file}: {}",
            crate::sanitize::text(String::from_utf8_lossy(&out.stderr).trim())
        ));
    }
    Ok(releases::parse(&out.stdout))
}

/// service → image ID of what runs now.
pub(crate) async fn running(
    docker: &Docker,
    project: &str,
) -> Result<Vec<(String, String)>, String> {
    Ok(super::steps::current_images(docker, project)
        .await?
        .into_iter()
        .map(|(s, _, id)| (s, id))
        .collect())
}

/// The console's and `opsdeck releases`' view of a stack: its history and what runs.
pub async fn view<R: Runner>(
    runner: &R,
    docker: Option<&Docker>,
    stack: &crate::config::Stack,
) -> Result<releases::ReleasesView, String> {
    let project = compose::project_name(stack);
    let history = history(runner, &project).await?;
    let running = match docker {
        Some(d) => running(d, &project).await?,
        None => return Err("Docker is not reachable on the host".into()),
    };
    Ok(releases::ReleasesView {
        stack: stack.name.get_ref().clone(),
        history,
        running,
        downgrade: stack.downgrade.is_some(),
    })
}

/// Chooses the release a rollback (or a restore, which needs one with a dump) goes to and
/// says what going there changes.
pub(super) async fn choose<R: Runner>(
    ctx: &Context<'_, R>,
    plan: &Plan,
    to: Option<&str>,
    need_dump: bool,
    step: usize,
    t: &mut Tracker<'_>,
) -> StepEnd {
    let (docker, project) = match need(ctx, plan) {
        Ok(found) => found,
        Err(e) => return e,
    };
    let h = match history(ctx.runner, &project).await {
        Ok(h) => h,
        Err(e) => return StepEnd::fail(e),
    };
    if h.unreadable > 0 {
        t.lines(
            Some(step),
            LineKind::Err,
            vec![format!(
                "opsdeck: warning: {} line(s) of ~/{} are not releases and were left out",
                h.unreadable,
                host_file(&project, "releases")
            )],
        )
        .await;
    }
    let now = match running(&docker, &project).await {
        Ok(r) => r,
        Err(e) => return StepEnd::fail(e),
    };
    let chosen = match (to, need_dump) {
        (Some(to), _) => match releases::find(&h.releases, to) {
            Ok(r) => r.clone(),
            Err(e) => return StepEnd::fail(e),
        },
        (None, true) => match h.releases.iter().rev().find(|r| r.dump.is_some()) {
            Some(r) => r.clone(),
            None => return StepEnd::fail("no kept release recorded a dump"),
        },
        (None, false) => match releases::default_target(&h.releases, &now) {
            Some(r) => r.clone(),
            None => {
                t.info(
                    Some(step),
                    format!(
                        "no kept release differs from what runs: going back to the images recorded before the last deploy (~/{})",
                        host_file(&project, "images")
                    ),
                )
                .await;
                return StepEnd::Ok;
            }
        },
    };
    let mut lines = vec![format!(
        "release {} of {} by {}: {}, {}",
        chosen.label(),
        chosen.at,
        chosen.who,
        chosen.recipe,
        chosen.outcome
    )];
    if need_dump {
        match &chosen.dump {
            Some(d) => lines.push(format!("its dump: {d}")),
            None => {
                return StepEnd::fail(format!(
                    "release {} recorded no dump (only migrations take one)",
                    chosen.label()
                ));
            }
        }
    } else {
        let changes = releases::changes(&chosen, &now);
        if changes.is_empty() {
            lines.push("every service runs its images already".into());
        }
        lines.extend(changes);
        if let Some(c) = &chosen.commit {
            lines.push(format!("its commit: {}", short(c)));
        }
        if let Some(head) = &chosen.migration_head {
            lines.push(format!("its migration head: {head}"));
        }
        if plan.stack.as_ref().is_some_and(|s| s.downgrade.is_none()) {
            lines.push("migrations are not undone: the stack declares no downgrade recipe".into());
        }
        if !chosen.ok() {
            lines.push(format!("note: that release ended {}", chosen.outcome));
        }
    }
    t.lines(Some(step), LineKind::Info, lines).await;
    t.chosen = Some(chosen);
    StepEnd::Ok
}

fn short(commit: &str) -> &str {
    commit.get(..12).unwrap_or(commit)
}

/// Runs the stack's `migration_head` command in its directory: its last non-empty line.
async fn migration_head<R: Runner>(ctx: &Context<'_, R>, plan: &Plan) -> Option<String> {
    let stack = plan.stack.as_ref()?;
    let cmd = stack.migration_head.as_ref()?;
    let argv = expand(ctx, stack, cmd).await;
    let mut args = vec![stack_dir(stack).to_string()];
    args.extend(argv);
    let command = script::command(
        script::docker_host_env(ctx.docker_host.as_deref()).as_deref(),
        script::STEP,
        &args,
    )?;
    let out = tokio::time::timeout(READ_TIMEOUT, ctx.runner.run(&command))
        .await
        .ok()?
        .ok()?;
    if out.status != Some(0) {
        return None;
    }
    last_word_line(&out.stdout)
}

/// The first word of the last non-empty line (`0002 (head)` → `0002`), made safe and
/// bounded.
fn last_word_line(bytes: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(bytes);
    let line = text.lines().map(str::trim).rfind(|l| !l.is_empty())?;
    let word = line.split_whitespace().next()?;
    let safe: String = crate::sanitize::text(word).chars().take(MAX_WORD).collect();
    (!safe.is_empty()).then_some(safe)
}

async fn expand<R: Runner>(
    ctx: &Context<'_, R>,
    stack: &crate::config::Stack,
    cmd: &CommandLine,
) -> Vec<String> {
    let which = match stack.compose {
        ComposeCommand::Auto if cmd.is_compose() => compose::detect(ctx.runner).await,
        chosen => chosen,
    };
    compose::expand(cmd, stack, which)
}

/// Undoes migrations down to the chosen release's head.
pub(super) async fn downgrade<R: Runner>(
    ctx: &Context<'_, R>,
    plan: &Plan,
    cmds: &[CommandLine],
    step: usize,
    t: &mut Tracker<'_>,
    stop: Stop,
) -> StepEnd {
    let Some(stack) = plan.stack.as_ref() else {
        return StepEnd::fail("a downgrade needs its stack");
    };
    let Some(target) = t.chosen.as_ref().and_then(|r| r.migration_head.clone()) else {
        t.info(
            Some(step),
            "the release recorded no migration head: nothing to undo",
        )
        .await;
        return StepEnd::Ok;
    };
    if let Some(now) = migration_head(ctx, plan).await
        && now == target
    {
        t.info(Some(step), format!("the database is at {target} already"))
            .await;
        return StepEnd::Ok;
    }
    for cmd in cmds {
        let words = CommandLine {
            argv: cmd
                .argv
                .iter()
                .map(|w| w.replace("{head}", &target))
                .collect(),
        };
        let argv = expand(ctx, stack, &words).await;
        let end = run_command(ctx, stack_dir(stack), &argv, step, t, stop.clone()).await;
        if !matches!(end, StepEnd::Ok) {
            return end;
        }
    }
    StepEnd::Ok
}

/// `git checkout` of the chosen release's commit.
pub(super) async fn checkout<R: Runner>(
    ctx: &Context<'_, R>,
    plan: &Plan,
    step: usize,
    t: &mut Tracker<'_>,
    stop: Stop,
) -> StepEnd {
    let Some(stack) = plan.stack.as_ref() else {
        return StepEnd::fail("a checkout needs its stack");
    };
    let Some(commit) = t.chosen.as_ref().and_then(|r| r.commit.clone()) else {
        t.info(
            Some(step),
            "the release recorded no commit (its stack directory was not a checkout): nothing to check out",
        )
        .await;
        return StepEnd::Ok;
    };
    if !commit.chars().all(|c| c.is_ascii_hexdigit()) || commit.len() < 7 {
        return StepEnd::fail(format!("the recorded commit {commit:?} is not a commit ID"));
    }
    let argv = ["git", "checkout", "--quiet", commit.as_str()].map(String::from);
    let end = run_command(ctx, stack_dir(stack), &argv, step, t, stop).await;
    if matches!(end, StepEnd::Ok) {
        t.info(Some(step), format!("checked out {}", short(&commit)))
            .await;
    }
    end
}

/// Stops the project's running services but the database's, restores the chosen release's
/// dump, and starts them again whatever happened.
pub(super) async fn restore_dump<R: Runner>(
    ctx: &Context<'_, R>,
    plan: &Plan,
    set: &BackupSet,
    step: usize,
    t: &mut Tracker<'_>,
    stop: Stop,
) -> StepEnd {
    let (docker, project) = match need(ctx, plan) {
        Ok(found) => found,
        Err(e) => return e,
    };
    let Some(pg) = &set.pg_dump else {
        return StepEnd::fail("the set has no pg_dump recipe");
    };
    let Some(dump) = t.chosen.as_ref().and_then(|r| r.dump.clone()) else {
        return StepEnd::fail("the release recorded no dump");
    };
    // The history is the host's file: the dump must be a file of this set's directory.
    let dir = set.dir.trim_end_matches('/');
    let inside = dump
        .strip_prefix(dir)
        .and_then(|rest| rest.strip_prefix('/'))
        .is_some_and(|name| !name.is_empty() && !name.contains('/') && name != "..");
    if !inside {
        return StepEnd::fail(format!(
            "the recorded dump {dump} is not a file of the set's directory {}",
            set.dir
        ));
    }
    let mut cache = crate::docker::InspectCache::default();
    let containers = match cache.list(&docker).await {
        Ok(c) => c,
        Err(e) => return StepEnd::fail(format!("cannot list the containers: {e}")),
    };
    let ours: Vec<_> = containers
        .into_iter()
        .filter(|c| c.project.as_deref() == Some(project.as_str()))
        .collect();
    let Some(db) = ours
        .iter()
        .find(|c| c.service.as_deref() == Some(pg.service.as_str()) && c.is_running())
    else {
        return StepEnd::fail(format!("the {} container is not running", pg.service));
    };
    let others: Vec<_> = ours
        .iter()
        .filter(|c| c.id != db.id && c.is_running())
        .collect();
    let mut stopped = Vec::new();
    for c in &others {
        let opts = StopContainerOptions {
            t: Some(10),
            signal: None,
        };
        match docker.stop_container(&c.id, Some(opts)).await {
            Ok(()) => {
                t.info(Some(step), format!("stopped {}", c.name)).await;
                stopped.push((c.id.clone(), c.name.clone()));
            }
            Err(e) => {
                restart_all(&docker, &stopped, step, t).await;
                return StepEnd::fail(format!("cannot stop {}: {e}", c.name));
            }
        }
    }
    let format = match pg.format {
        DumpFormat::Custom => "custom",
        _ => "sql-gzip",
    };
    let argv: Vec<String> = [
        "sh",
        "-c",
        RESTORE,
        "opsdeck-restore",
        db.name.as_str(),
        pg.user.as_str(),
        pg.database.as_str(),
        format,
        remote_dir(&dump),
    ]
    .map(String::from)
    .to_vec();
    let home = ".";
    let end = run_command(ctx, home, &argv, step, t, stop).await;
    restart_all(&docker, &stopped, step, t).await;
    end
}

async fn restart_all(
    docker: &Docker,
    stopped: &[(String, String)],
    step: usize,
    t: &mut Tracker<'_>,
) {
    for (id, name) in stopped {
        match docker
            .start_container(id, None::<StartContainerOptions>)
            .await
        {
            Ok(()) => t.info(Some(step), format!("started {name}")).await,
            Err(e) => {
                t.lines(
                    Some(step),
                    LineKind::Err,
                    vec![format!("opsdeck: cannot start {name} again: {e}")],
                )
                .await;
            }
        }
    }
}

/// Adds the release the job made to the stack's history on the host (ok or not), keeps
/// its images, lets the aged-out ones go. Never fails the job: what goes wrong is said.
pub(super) async fn record<R: Runner>(
    ctx: &Context<'_, R>,
    plan: &Plan,
    result: &Result<Option<String>, String>,
    t: &mut Tracker<'_>,
) {
    if let Err(why) = record_inner(ctx, plan, result, t).await {
        t.lines(
            None,
            LineKind::Err,
            vec![format!("opsdeck: warning: no release recorded: {why}")],
        )
        .await;
    }
}

async fn record_inner<R: Runner>(
    ctx: &Context<'_, R>,
    plan: &Plan,
    result: &Result<Option<String>, String>,
    t: &mut Tracker<'_>,
) -> Result<(), String> {
    let (Some(stack), Some(project), Some(recipe)) = (&plan.stack, &plan.project, &plan.release)
    else {
        return Ok(());
    };
    let docker = ctx
        .docker
        .clone()
        .map(|d| d.with_timeout(DOCKER_TIMEOUT))
        .ok_or("Docker is not reachable on the host")?;
    let services: Vec<ServiceImage> = super::steps::current_images(&docker, project)
        .await?
        .into_iter()
        .map(|(service, image, id)| ServiceImage { service, image, id })
        .collect();
    let commit = match script::command(None, GIT_HEAD, &[stack_dir(stack).to_string()]) {
        Some(cmd) => match tokio::time::timeout(READ_TIMEOUT, ctx.runner.run(&cmd)).await {
            Ok(Ok(out)) if out.status == Some(0) => {
                last_word_line(&out.stdout).filter(|c| c.chars().all(|ch| ch.is_ascii_hexdigit()))
            }
            _ => None,
        },
        None => None,
    };
    let head = migration_head(ctx, plan).await;
    let recipe = match (recipe.as_str(), &t.chosen) {
        ("rollback", Some(r)) => format!("rollback to {}", r.label()),
        ("rollback", None) => "rollback to the images before the last deploy".into(),
        (other, _) => other.to_string(),
    };
    let outcome = match result {
        Ok(_) => "ok".to_string(),
        Err(e) => e.clone(),
    };
    let now = jiff::Timestamp::now();
    let who = super::lock::who(&ctx.user);
    // the dump before the migration, when the job's backup step made one
    let dump = if plan
        .steps
        .iter()
        .any(|s| matches!(s.kind, super::plan::StepKind::Backup(_)))
    {
        t.record.file.clone()
    } else {
        None
    };
    let new = Release {
        n: 0,
        id: now.strftime("%Y%m%dT%H%M%SZ").to_string(),
        at: now.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        who,
        recipe,
        services,
        commit,
        migration_head: head,
        dump_set: dump.as_ref().and(t.record.set.clone()),
        dump,
        outcome,
    };
    let h = history(ctx.runner, project).await?;
    let (list, gone) = releases::append(h.releases, new);
    let file = host_file(project, "releases");
    let command = script::command(
        None,
        script::WRITE_FILE,
        &[file.clone(), releases::render(&list)],
    )
    .ok_or("a release cannot be passed to the host's shell")?;
    let out = tokio::time::timeout(READ_TIMEOUT, ctx.runner.run(&command))
        .await
        .map_err(|_| format!("writing ~/{file} took over a minute"))?
        .map_err(|e| e.to_string())?;
    if out.status != Some(0) {
        return Err(format!(
            "cannot write ~/{file}: {}",
            crate::sanitize::text(String::from_utf8_lossy(&out.stderr).trim())
        ));
    }
    let Some(made) = list.last() else {
        return Ok(());
    };
    let mut what = vec![format!("{} service(s)", made.services.len())];
    if let Some(c) = &made.commit {
        what.push(format!("commit {}", short(c)));
    }
    if let Some(hd) = &made.migration_head {
        what.push(format!("migration head {hd}"));
    }
    if let Some(d) = &made.dump {
        what.push(format!("dump {d}"));
    }
    t.info(
        None,
        format!(
            "release {} recorded ({}), {}",
            made.label(),
            what.join(", "),
            made.outcome
        ),
    )
    .await;
    let mut problems = keep(&docker, project, made).await;
    for r in &gone {
        problems.extend(let_go(&docker, project, r).await);
    }
    if !problems.is_empty() {
        t.lines(
            None,
            LineKind::Err,
            problems
                .into_iter()
                .map(|p| format!("opsdeck: warning: {p}"))
                .collect(),
        )
        .await;
    }
    Ok(())
}

/// Tags the release's images `opsdeck-keep/<project>/<service>:<n>` and gives each a
/// never-started keeper container, so `docker image prune -a` leaves them. Returns what
/// could not be done.
async fn keep(docker: &Docker, project: &str, r: &Release) -> Vec<String> {
    let mut problems = Vec::new();
    for s in &r.services {
        let (repo, tag) = releases::keep_tag(project, &s.service, r.n);
        let opts = TagImageOptions {
            repo: Some(repo.clone()),
            tag: Some(tag.clone()),
        };
        if let Err(e) = docker.tag_image(&s.id, Some(opts)).await {
            problems.push(format!("cannot tag {} as {repo}:{tag}: {e}", short(&s.id)));
            continue;
        }
        let name = releases::keeper_name(project, &s.service, r.n);
        let body = ContainerCreateBody {
            image: Some(format!("{repo}:{tag}")),
            entrypoint: Some(vec!["/opsdeck-keeps-this-image".into()]),
            labels: Some(HashMap::from([
                (KEEP_LABEL.to_string(), project.to_string()),
                ("opsdeck.keep.release".to_string(), r.n.to_string()),
            ])),
            network_disabled: Some(true),
            ..Default::default()
        };
        let opts = CreateContainerOptions {
            name: Some(name.clone()),
            ..Default::default()
        };
        match docker.create_container(Some(opts), body).await {
            Ok(_) => {}
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 409, ..
            }) => {}
            Err(e) => problems.push(format!("cannot create the keeper {name}: {e}")),
        }
    }
    problems
}

/// Removes an aged-out release's keeper containers and tags (the image goes with the next
/// prune when nothing else uses it).
async fn let_go(docker: &Docker, project: &str, r: &Release) -> Vec<String> {
    let mut problems = Vec::new();
    for s in &r.services {
        let name = releases::keeper_name(project, &s.service, r.n);
        let opts = RemoveContainerOptions {
            force: true,
            v: false,
            link: false,
        };
        match docker.remove_container(&name, Some(opts)).await {
            Ok(())
            | Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => {}
            Err(e) => problems.push(format!("cannot remove the keeper {name}: {e}")),
        }
        let (repo, tag) = releases::keep_tag(project, &s.service, r.n);
        let opts = RemoveImageOptions {
            force: false,
            noprune: false,
            ..Default::default()
        };
        // 404: gone already; 409: a container uses it (the tag stays until it does not)
        let _ = docker
            .remove_image(&format!("{repo}:{tag}"), Some(opts), None)
            .await;
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_head_is_the_last_line_made_safe() {
        assert_eq!(
            last_word_line(b"INFO  [alembic] Context impl\n0002 (head)\n\n").as_deref(),
            Some("0002")
        );
        assert_eq!(last_word_line(b"\n \n"), None);
        let evil = last_word_line(b"\x1b[31mred\x1b[0m").unwrap();
        assert!(!evil.contains('\x1b'));
        assert!(last_word_line(&[b'a'; 5000]).unwrap().len() <= MAX_WORD);
    }
}
