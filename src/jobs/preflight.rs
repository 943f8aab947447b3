//! A deploy's pre-flight: what breaks deploys most, checked before anything changes. Free
//! space on Docker's root and on each backup directory, the checkout clean and where it
//! stands against its upstream, the env file there, `compose config -q` passing, the
//! registry answering for each image a pulling deploy pulls, and no other job holding the
//! stack's lock.
//!
//! One `sh` script ([`SCRIPT`]) gathers what the host knows in one round trip, every value
//! a quoted positional argument; Docker's own answers (its root directory, the images'
//! sizes, the registry's manifests) come over the host's Docker connection. The script's
//! output is the host's word, so the parsers here take any bytes: bounded, never a panic,
//! every text made safe for a terminal before it joins the report.
//!
//! "The size of the last build" is not known cheaply (Docker keeps no record of it), so
//! the free space on Docker's root is compared with the size of the images the stack's
//! containers run now, as Docker counts them (shared layers included): what a rebuild or
//! a pull of every image could need at worst.

use std::time::Duration;

use bollard::Docker;

use super::compose;
use super::exec::{Context, StepEnd, Stop, Tracker};
use super::lock::host_file;
use super::runner::Runner;
use super::script;
use crate::collect::backups::remote_dir_arg;
use crate::config::{ComposeCommand, Stack, Step};
use crate::model::job::LineKind;
use crate::model::preflight::{Item, Report, Topic, Verdict};

mod judge;
mod parse;

pub use judge::{Names, judge};
use parse::short;
pub use parse::{Df, Gathered, Git, LockSeen, Repo, Upstream, parse};
#[cfg(test)]
use parse::{parse_df, parse_lock, porcelain_path, unquote_git};

/// Disk use (percent) at or above which the pre-flight warns when the inventory sets no
/// `disk_warn`: under 10 % free.
pub const DEFAULT_DISK_WARN: f64 = 90.0;
/// The script's output read at most; the script bounds each part far below this.
const MAX_OUTPUT: usize = 256 * 1024;
/// Backup directories measured at most.
const MAX_DIRS: usize = 16;
/// Images whose manifest is asked of the registry at most.
const MAX_IMAGES: usize = 16;
/// File names of a dirty checkout named in its item.
const NAMED_FILES: usize = 3;
/// One Docker call of the pre-flight (a registry's answer included).
const DOCKER_TIMEOUT: Duration = Duration::from_secs(20);
/// The whole script; `git fetch` has 60 s of it.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(90);

/// How a pre-flight runs, besides the stack.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Disk use (percent) at or above which a filesystem is a warning: the inventory's
    /// `disk_warn` when it sets one, else [`DEFAULT_DISK_WARN`].
    pub disk_warn: f64,
    /// `git fetch` before comparing with the upstream (not in read-only mode).
    pub fetch: bool,
    /// Look whether another job holds the stack's lock (not when this job holds it).
    pub probe_lock: bool,
    /// Go on despite warnings (`--force`).
    pub force: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            disk_warn: DEFAULT_DISK_WARN,
            fetch: true,
            probe_lock: false,
            force: false,
        }
    }
}

/// Gives a plan's pre-flight the host's disk threshold (the plan knows only the stacks).
pub fn configure(plan: &mut super::plan::Plan, disk_warn: f64) {
    for step in &mut plan.steps {
        if let super::plan::StepKind::Preflight(s) = &mut step.kind {
            s.disk_warn = disk_warn;
        }
    }
}

/// The disk threshold of a host: its `disk_warn` (or the settings'), else the default.
pub fn disk_warn(thresholds: crate::config::Thresholds) -> f64 {
    thresholds.disk_warn.unwrap_or(DEFAULT_DISK_WARN)
}

/// The host side. Positional: the stack dir, the env file (empty: none), Docker's root
/// (empty: unknown), `1` to fetch, the lock file (empty: not probed), `1` to list the
/// services' images, the number of backup dirs, those dirs, then the compose command
/// (none: the deploy uses no compose). Sections start with a line `@@opsdeck NAME`; a
/// command's status is a line `@@rc N`. Every part is cut short (`head`).
pub const SCRIPT: &str = r#"set -u
dir=$1 envf=$2 root=$3 fetch=$4 lockf=$5 images=$6 nb=$7
shift 7
sec() { printf '\n@@opsdeck %s\n' "$1"; }
space() {
    p=$1 up=0
    while [ ! -e "$p" ] && [ "$up" -lt 64 ]; do
        case $p in
        */*) p=${p%/*}; [ -n "$p" ] || p=/ ;;
        *) p=. ;;
        esac
        up=$((up + 1))
    done
    printf '%s\n' "$p"
    df -Pk -- "$p" 2>&1 | head -n 5
}
if [ -n "$root" ]; then sec 'df root'; space "$root"; fi
i=0
while [ "$i" -lt "$nb" ]; do
    sec "df $i"
    space "$1"
    shift
    i=$((i + 1))
done
if [ -n "$lockf" ]; then
    sec lock
    if [ -e "$lockf" ]; then
        printf 'ino %s\n' "$(stat -c %i -- "$lockf" 2>/dev/null)"
        if [ -r /proc/locks ]; then grep FLOCK /proc/locks | head -n 2000 | sed 's/^/L /'; else echo nolocks; fi
        h=$(head -c 1024 -- "${lockf%.lock}.holder" 2>/dev/null | head -n 1) || h=
        printf 'holder %s\n' "$h"
        pid=${h%% *}
        case $pid in
        '' | *[!0-9]*) echo 'alive no' ;;
        *) if kill -0 "$pid" 2>/dev/null; then echo 'alive yes'; else echo 'alive no'; fi ;;
        esac
    else
        echo nofile
    fi
fi
sec dir
cd -- "$dir" 2>/dev/null || { echo missing; exit 0; }
echo ok
if [ -n "$envf" ]; then
    sec env
    if [ -f "$envf" ]; then echo present; elif [ -e "$envf" ]; then echo notfile; else echo missing; fi
fi
sec git
if ! command -v git >/dev/null 2>&1; then
    if [ -e .git ]; then echo nogit; else echo none; fi
else
    w=$(git rev-parse --is-inside-work-tree 2>&1 | head -n 3)
    case $w in
    true)
        echo repo
        git rev-parse --short HEAD 2>/dev/null || echo -
        git symbolic-ref --short -q HEAD 2>/dev/null || echo -
        sec status
        { git status --porcelain --untracked-files=no 2>&1; printf '@@rc %s\n' "$?"; } | head -n 400
        up=$(git rev-parse --abbrev-ref --symbolic-full-name '@{u}' 2>/dev/null) || up=
        if [ -n "$up" ]; then
            if [ "$fetch" = 1 ]; then
                sec fetch
                t=
                if command -v timeout >/dev/null 2>&1; then t='timeout 60'; fi
                { GIT_TERMINAL_PROMPT=0 $t git fetch --quiet </dev/null 2>&1; printf '@@rc %s\n' "$?"; } | head -n 20
            fi
            sec upstream
            printf '%s\n' "$up"
            git rev-parse --short '@{u}' 2>/dev/null || echo -
            git rev-list --left-right --count 'HEAD...@{u}' 2>&1 | head -n 1
            git log -1 --format='%h %s' '@{u}' 2>/dev/null | head -c 300 | head -n 1
        fi
        ;;
    *'not a git repository'*) echo none ;;
    *) echo error; printf '%s\n' "$w" ;;
    esac
fi
if [ "$#" -gt 0 ]; then
    sec compose
    out=$("$@" config -q 2>&1 </dev/null)
    rc=$?
    printf '%s\n' "$out" | head -n 40
    printf '@@rc %s\n' "$rc"
    if [ "$rc" -eq 0 ] && [ "$images" = 1 ]; then
        sec images
        "$@" config 2>/dev/null </dev/null | awk '
            /^[^ ]/ { top = $0; svc = ""; next }
            top != "services:" { next }
            /^  [^ ]/ { svc = substr($0, 3); sub(/:.*/, "", svc); next }
            svc == "" { next }
            /^    image: / { printf "image\t%s\t%s\n", svc, substr($0, 12); next }
            /^    build:/ { printf "build\t%s\n", svc }
        ' | head -n 400
    fi
fi"#;

/// What [`SCRIPT`] is asked, in its order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inputs {
    pub dir: String,
    pub env_file: String,
    pub root: String,
    pub fetch: bool,
    pub lock_file: String,
    pub images: bool,
    pub backup_dirs: Vec<String>,
    pub compose: Vec<String>,
}

/// The command line for the host; `None` when a value cannot be quoted (a NUL byte).
pub fn command(docker_host: Option<&str>, i: &Inputs) -> Option<String> {
    let flag = |b: bool| if b { "1" } else { "0" }.to_string();
    let mut args = vec![
        i.dir.clone(),
        i.env_file.clone(),
        i.root.clone(),
        flag(i.fetch),
        i.lock_file.clone(),
        flag(i.images),
        i.backup_dirs.len().to_string(),
    ];
    args.extend(i.backup_dirs.iter().cloned());
    args.extend(i.compose.iter().cloned());
    script::command(docker_host, SCRIPT, &args)
}

/// A reference Docker will take in a URL path: registry, path, tag or digest characters.
fn plain_reference(image: &str) -> bool {
    !image.is_empty()
        && image.len() <= 255
        && image
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/' | ':' | '@'))
}

/// The registry's word on each image a pulling deploy pulls.
async fn registry(docker: Option<&Docker>, images: &[(String, String)], r: &mut Report) {
    let mut wanted: Vec<&str> = Vec::new();
    for (_, image) in images {
        if !wanted.contains(&image.as_str()) {
            wanted.push(image);
        }
    }
    if wanted.is_empty() {
        return;
    }
    let Some(docker) = docker else {
        r.push(Item::new(
            Topic::Registry,
            Verdict::Warn,
            "Docker is not reachable: the registry was not asked",
        ));
        return;
    };
    let asks = wanted.iter().take(MAX_IMAGES).map(|image| async move {
        let answer = if plain_reference(image) {
            match tokio::time::timeout(DOCKER_TIMEOUT, docker.inspect_registry_image(image, None))
                .await
            {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(e)) => Err(registry_error(&e)),
                Err(_) => Err(RegistrySays::Unreachable(format!(
                    "no answer within {}s",
                    DOCKER_TIMEOUT.as_secs()
                ))),
            }
        } else {
            Err(RegistrySays::Odd)
        };
        (*image, answer)
    });
    let answers = futures::future::join_all(asks).await;
    let mut fine = 0;
    let mut login = Vec::new();
    for (image, answer) in answers {
        let image = short(image, 120);
        match answer {
            Ok(()) => fine += 1,
            Err(RegistrySays::Login) => login.push(image),
            Err(RegistrySays::Missing(why)) => r.push(Item::new(
                Topic::Registry,
                Verdict::Refuse,
                format!("{image} is not in its registry: {why}"),
            )),
            Err(RegistrySays::Unreachable(why)) => r.push(Item::new(
                Topic::Registry,
                Verdict::Refuse,
                format!("the registry of {image} does not answer: {why}"),
            )),
            Err(RegistrySays::Odd) => r.push(Item::new(
                Topic::Registry,
                Verdict::Warn,
                format!("{image}: an image name opsdeck does not ask about"),
            )),
        }
    }
    if fine > 0 {
        r.push(Item::new(
            Topic::Registry,
            Verdict::Ok,
            format!(
                "the registry has {} the deploy pulls",
                if fine == 1 {
                    "the image".to_string()
                } else {
                    format!("all {fine} images")
                }
            ),
        ));
    }
    if !login.is_empty() {
        r.push(Item::new(
            Topic::Registry,
            Verdict::Ok,
            format!(
                "the registry answers but wants a login for {} (opsdeck sends none: not checked further)",
                login.join(", ")
            ),
        ));
    }
    if wanted.len() > MAX_IMAGES {
        r.push(Item::new(
            Topic::Registry,
            Verdict::Ok,
            format!("{} more images not asked about", wanted.len() - MAX_IMAGES),
        ));
    }
}

enum RegistrySays {
    Login,
    Missing(String),
    Unreachable(String),
    Odd,
}

fn registry_error(e: &bollard::errors::Error) -> RegistrySays {
    match e {
        bollard::errors::Error::DockerResponseServerError {
            status_code,
            message,
        } => {
            let m = short(message, 160);
            match status_code {
                401 | 403 => RegistrySays::Login,
                404 => RegistrySays::Missing(m),
                _ if m.contains("unauthorized") || m.contains("authentication required") => {
                    RegistrySays::Login
                }
                _ if m.contains("manifest unknown") || m.contains("not found") => {
                    RegistrySays::Missing(m)
                }
                _ => RegistrySays::Unreachable(m),
            }
        }
        other => RegistrySays::Unreachable(short(&other.to_string(), 160)),
    }
}

/// Docker's root dir (`docker info`), or why it is not known.
async fn docker_root(docker: Option<&Docker>) -> Result<String, String> {
    let docker = docker.ok_or("Docker is not reachable on the host")?;
    match tokio::time::timeout(DOCKER_TIMEOUT, docker.info()).await {
        Ok(Ok(info)) => info
            .docker_root_dir
            .filter(|d| d.starts_with('/') && !d.contains('\0'))
            .ok_or_else(|| "docker info does not say".to_string()),
        Ok(Err(e)) => Err(short(&e.to_string(), 160)),
        Err(_) => Err(format!("no answer within {}s", DOCKER_TIMEOUT.as_secs())),
    }
}

/// What the images of the project's containers take, as Docker counts them.
async fn images_size(docker: Option<&Docker>, project: &str) -> Option<u64> {
    use bollard::query_parameters::{ListContainersOptions, ListImagesOptions};
    let docker = docker?;
    let mut filters = std::collections::HashMap::new();
    filters.insert(
        "label".to_string(),
        vec![format!("com.docker.compose.project={project}")],
    );
    let containers = tokio::time::timeout(
        DOCKER_TIMEOUT,
        docker.list_containers(Some(ListContainersOptions {
            all: true,
            filters: Some(filters),
            ..Default::default()
        })),
    )
    .await
    .ok()?
    .ok()?;
    let ids: Vec<String> = containers.into_iter().filter_map(|c| c.image_id).collect();
    if ids.is_empty() {
        return None;
    }
    let images = tokio::time::timeout(
        DOCKER_TIMEOUT,
        docker.list_images(Some(ListImagesOptions::default())),
    )
    .await
    .ok()?
    .ok()?;
    let total: i64 = images
        .iter()
        .filter(|i| ids.contains(&i.id))
        .map(|i| i.size.max(0))
        .sum();
    u64::try_from(total).ok().filter(|t| *t > 0)
}

/// Whether a recipe's steps run `git pull` (or fetch, merge, rebase): then a checkout
/// level with its upstream has nothing new to deploy.
fn pulls_code(steps: &[Step]) -> bool {
    steps.iter().any(|s| match s {
        Step::Run(cmd) => {
            cmd.argv.first().is_some_and(|w| w == "git")
                && cmd
                    .argv
                    .iter()
                    .skip(1)
                    .any(|w| matches!(w.as_str(), "pull" | "fetch" | "merge" | "rebase"))
        }
        Step::WaitHealthy(_) => false,
    })
}

/// Whether a recipe runs `compose pull`: then the registry is asked for every image.
fn pulls_images(steps: &[Step]) -> bool {
    steps.iter().any(|s| match s {
        Step::Run(cmd) => cmd.is_compose() && cmd.argv.get(1).is_some_and(|w| w == "pull"),
        Step::WaitHealthy(_) => false,
    })
}

/// The pre-flight of a deploy of `stack`: Docker's answers, the script's, the registry's.
/// `docker_socket` is the inventory's, handed to compose. `Err` when the host could not
/// be asked at all.
pub async fn check<R: Runner>(
    runner: &R,
    docker: Option<&Docker>,
    docker_socket: Option<&str>,
    stack: &Stack,
    settings: &Settings,
) -> Result<Report, String> {
    let steps: &[Step] = stack.deploy.as_ref().map_or(&[], |d| d.steps.get_ref());
    let uses_compose = steps
        .iter()
        .any(|s| matches!(s, Step::Run(c) if c.is_compose()));
    let project = compose::project_name(stack);
    let (root, size) = tokio::join!(docker_root(docker), images_size(docker, &project));
    let compose_argv = if uses_compose {
        let detected = if stack.compose == ComposeCommand::Auto {
            compose::detect(runner).await
        } else {
            stack.compose
        };
        compose::compose_argv(stack, detected)
    } else {
        Vec::new()
    };
    let mut backups: Vec<(String, Vec<String>)> = Vec::new();
    for b in &stack.backups {
        let set = b.name.get_ref().clone();
        match backups.iter().position(|(d, _)| *d == b.dir) {
            Some(i) => backups[i].1.push(set),
            None if backups.len() < MAX_DIRS => backups.push((b.dir.clone(), vec![set])),
            None => {}
        }
    }
    let inputs = Inputs {
        dir: remote_dir_arg(&stack.dir),
        env_file: stack.env_file.clone().unwrap_or_default(),
        root: root.clone().unwrap_or_default(),
        fetch: settings.fetch,
        lock_file: if settings.probe_lock {
            host_file(&project, "lock")
        } else {
            String::new()
        },
        images: pulls_images(steps),
        backup_dirs: backups.iter().map(|(d, _)| remote_dir_arg(d)).collect(),
        compose: compose_argv,
    };
    let env = script::docker_host_env(docker_socket);
    let command = command(env.as_deref(), &inputs)
        .ok_or("a value of the stack cannot be passed to the host's shell (a NUL byte?)")?;
    let out = match tokio::time::timeout(SCRIPT_TIMEOUT, runner.run(&command)).await {
        Ok(Ok(out)) => out,
        Ok(Err(e)) => return Err(e.to_string()),
        Err(_) => {
            return Err(format!(
                "the host did not answer within {}s",
                SCRIPT_TIMEOUT.as_secs()
            ));
        }
    };
    let gathered = parse(&out.stdout);
    let names = Names {
        dir: short(&stack.dir, 120),
        env_file: stack.env_file.as_deref().map(|e| short(e, 120)),
        root: Some(root),
        backups,
        pulls_code: pulls_code(steps),
        uses_compose,
        images_size: size,
        disk_warn: settings.disk_warn,
        probe_lock: settings.probe_lock,
    };
    let mut report = judge(&gathered, &names);
    if inputs.images && gathered.compose == Some(Ok(())) {
        registry(docker, &gathered.images, &mut report).await;
    }
    Ok(report)
}

/// The job's first step: the pre-flight under the stack's lock. Its refusal, or its
/// warnings unless forced, stop the job before anything changes.
pub(super) async fn step<R: Runner>(
    ctx: &Context<'_, R>,
    stack: Option<&Stack>,
    settings: &Settings,
    step: usize,
    t: &mut Tracker<'_>,
    mut stop: Stop,
) -> StepEnd {
    let Some(stack) = stack else {
        return StepEnd::fail("a pre-flight needs its stack");
    };
    let run = check(
        ctx.runner,
        ctx.docker.as_ref(),
        ctx.docker_host.as_deref(),
        stack,
        settings,
    );
    let report = tokio::select! {
        r = run => r,
        why = stop.wait() => return StepEnd::Cancelled(why),
    };
    let report = match report {
        Ok(r) => r,
        Err(why) => return StepEnd::fail(format!("the pre-flight could not run: {why}")),
    };
    let lines: Vec<String> = report
        .items
        .iter()
        .map(|i| format!("{:<6} {}", i.verdict.word(), i.text))
        .collect();
    t.lines(Some(step), LineKind::Info, lines).await;
    match report.stops(settings.force) {
        Some(why) => StepEnd::Refused(why),
        None => {
            let word = match report.verdict() {
                Verdict::Warn => format!("pre-flight: {}: going on (forced)", report.summary()),
                _ => format!("pre-flight: {}", report.summary()),
            };
            t.info(Some(step), word).await;
            StepEnd::Ok
        }
    }
}

#[cfg(test)]
mod tests;
