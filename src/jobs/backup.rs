//! Taking a backup of one set: `pg_dump` in the stack's database container, or a copy of a
//! database file between a quiesce and a resume command; then retention.
//!
//! The new file is written to `<dir>/.<set>.partial` (a dot file, which no set's glob
//! counts) and renamed to its final name only after it passed its checks: exit status 0,
//! not empty, and `pg_restore --list` or `gzip -t` for dumps. A run that fails or is cut
//! off leaves nothing a verdict would count. See [`super::script`] for the host side.

use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::collect::backups::{glob_match, name_for, remote_dir};
use crate::config::{BackupSet, ComposeCommand, DumpFormat, FileCopy, Host, PgDump, Stack};
use crate::jobs::runner::ExecOutput;

use super::compose;
use super::retention;
use super::runner::{RunError, Runner};
use super::script::{self, exit};

/// One backup to take.
#[derive(Debug, Clone, Copy)]
pub struct BackupJob<'a> {
    pub stack: &'a Stack,
    pub set: &'a BackupSet,
    /// `unix:///path` of the engine the inventory names for the host, for `docker` and
    /// compose on the host; `None` leaves the host's own `DOCKER_HOST`.
    pub docker_host: Option<&'a str>,
}

impl<'a> BackupJob<'a> {
    pub fn new(host: &'a Host, stack: &'a Stack, set: &'a BackupSet) -> Self {
        BackupJob {
            stack,
            set,
            docker_host: host.docker_socket.as_deref(),
        }
    }

    fn docker_env(&self) -> Option<String> {
        script::docker_host_env(self.docker_host)
    }
}

/// What a running backup reports, in order: `Started`, `Progress` about once a second,
/// `Verified`, `Renamed`, `Removed` per file retention deleted, then `Finished`.
#[derive(Debug, Clone, PartialEq)]
pub enum BackupEvent {
    Started {
        what: String,
    },
    Progress {
        bytes: u64,
        elapsed: Duration,
    },
    Verified,
    Renamed {
        path: String,
        size: u64,
    },
    Removed {
        path: String,
    },
    /// Something went wrong that did not undo the backup (retention).
    Warning(String),
    Finished(Result<BackupOutcome, BackupError>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct BackupOutcome {
    /// The new file as the inventory spells its directory: `~/backups/lila-....sql.gz`.
    pub path: String,
    pub size: u64,
    pub duration: Duration,
    /// Files retention removed, spelled like `path`.
    pub removed: Vec<String>,
    /// Retention failed after the backup itself succeeded.
    pub retention_error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackupError {
    #[error("backup set {0:?} has no pg_dump or file_copy recipe: opsdeck only watches it")]
    NoRecipe(String),
    #[error(
        "a new file would be named {name:?}, which the set's glob {glob:?} does not match: give the glob exactly one `*`"
    )]
    Naming { glob: String, name: String },
    #[error("a value in the inventory cannot be passed to the host's shell (a NUL byte?)")]
    Quote,
    #[error("{0}")]
    Run(#[from] RunError),
    #[error("cannot list the containers: {0}")]
    Docker(String),
    #[error("no running container for service {service:?} of compose project {project:?}")]
    NoContainer { project: String, service: String },
    #[error("another backup of this set is running on the host")]
    Busy,
    #[error("cannot write the backup: {0}")]
    Write(String),
    #[error("pg_dump failed: {0}")]
    Dump(String),
    #[error("the quiesce command failed: {0}")]
    Quiesce(String),
    #[error("the copy failed: {0}")]
    Copy(String),
    #[error("the backup came out empty")]
    Empty,
    #[error("verification failed: {0}")]
    Verify(String),
    #[error("{0} already exists")]
    Exists(String),
    #[error("cannot rename the backup into place: {0}")]
    Rename(String),
    #[error("the backup {path} was saved ({size} bytes), but the resume command failed: {detail}")]
    Resume {
        path: String,
        size: u64,
        detail: String,
    },
    #[error("interrupted: the connection to the host was lost or the job was stopped")]
    Interrupted,
    #[error("the backup script failed (exit {status:?}): {detail}")]
    Script { status: Option<u32>, detail: String },
}

/// Where the new file goes, as the host's shell sees it and as the inventory spells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    pub file: String,
    pub partial: String,
    pub final_path: String,
    pub display: String,
}

/// The file name for a backup taken at `stamp`: the glob's `*` replaced by the stamp, or
/// `<set>-<stamp>.<ext>` for a glob without exactly one `*`, provided the glob matches it.
pub fn names(set: &BackupSet, stamp: &str) -> Result<Names, BackupError> {
    let glob = set.glob.get_ref();
    let base = safe(set.name.get_ref());
    let file = match name_for(glob, stamp) {
        Some(n) => n,
        None => format!("{base}-{stamp}.{}", extension(set)),
    };
    if !glob_match(glob, &file) {
        return Err(BackupError::Naming {
            glob: glob.clone(),
            name: file,
        });
    }
    let dir = remote_dir(&set.dir).trim_end_matches('/');
    let shown = set.dir.trim_end_matches('/');
    Ok(Names {
        partial: format!("{dir}/.{base}.partial"),
        final_path: format!("{dir}/{file}"),
        display: format!("{shown}/{file}"),
        file,
    })
}

fn extension(set: &BackupSet) -> String {
    match (&set.pg_dump, &set.file_copy) {
        (Some(pg), _) if pg.format == DumpFormat::SqlGzip => "sql.gz".into(),
        (Some(_), _) => "dump".into(),
        (None, Some(fc)) => {
            let name = fc.source.rsplit('/').next().unwrap_or(&fc.source);
            match name.split_once('.') {
                Some((_, ext)) if !ext.is_empty() => safe(ext),
                _ => "bak".into(),
            }
        }
        (None, None) => "bak".into(),
    }
}

/// A set name as a file name part: no `/`, no leading dot, nothing a shell user would
/// have to quote.
fn safe(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    let s = s.trim_start_matches('.');
    if s.is_empty() {
        "backup".into()
    } else {
        s.into()
    }
}

/// `20261123-031500`, UTC: sorts by name, and means the same on every machine.
pub fn stamp_now() -> String {
    jiff::Timestamp::now().strftime("%Y%m%d-%H%M%S").to_string()
}

/// Takes the backup, applies retention, and reports on `events` (a closed receiver is
/// fine: the job does not depend on anyone listening).
pub async fn run<R: Runner>(
    runner: &R,
    job: &BackupJob<'_>,
    events: &mpsc::Sender<BackupEvent>,
) -> Result<BackupOutcome, BackupError> {
    let started = Instant::now();
    let result = take(runner, job, events, started).await;
    let _ = events.send(BackupEvent::Finished(result.clone())).await;
    result
}

async fn take<R: Runner>(
    runner: &R,
    job: &BackupJob<'_>,
    events: &mpsc::Sender<BackupEvent>,
    started: Instant,
) -> Result<BackupOutcome, BackupError> {
    let set = job.set;
    let names = names(set, &stamp_now())?;
    let command = match (&set.pg_dump, &set.file_copy) {
        (Some(pg), _) => {
            let ctr = container(runner, job, pg).await?;
            let _ = events
                .send(BackupEvent::Started {
                    what: format!(
                        "pg_dump {} (container {}) to {}",
                        pg.database,
                        short(&ctr),
                        names.display
                    ),
                })
                .await;
            pg_dump_command(job, pg, &ctr, &names)?
        }
        (None, Some(fc)) => {
            let detected =
                if compose::needs_detection(job.stack, fc.quiesce.iter().chain(fc.resume.iter())) {
                    compose::detect(runner).await
                } else {
                    ComposeCommand::Standalone
                };
            let _ = events
                .send(BackupEvent::Started {
                    what: format!("copy {} to {}", fc.source, names.display),
                })
                .await;
            file_copy_command(job, fc, detected, &names)?
        }
        (None, None) => return Err(BackupError::NoRecipe(set.name.get_ref().clone())),
    };
    let size_cmd = script::command(None, script::SIZE, std::slice::from_ref(&names.partial))
        .ok_or(BackupError::Quote)?;
    let out = with_progress(runner, &command, &size_cmd, events, started).await?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if stdout.lines().any(|l| l == "verified") {
        let _ = events.send(BackupEvent::Verified).await;
    }
    let size = verdict(&out, &names)?;
    let _ = events
        .send(BackupEvent::Renamed {
            path: names.display.clone(),
            size,
        })
        .await;
    let mut outcome = BackupOutcome {
        path: names.display.clone(),
        size,
        duration: started.elapsed(),
        removed: Vec::new(),
        retention_error: None,
    };
    // Retention reads the host's clock itself: this machine's has no say in what goes.
    match retention::apply(runner, set, &names.file).await {
        Ok(removed) => {
            let shown = set.dir.trim_end_matches('/');
            for name in removed {
                // The name came from the host's listing: fit for a terminal before it is
                // printed (the host already deleted the exact name).
                let path = format!("{shown}/{}", crate::sanitize::line(&name));
                let _ = events
                    .send(BackupEvent::Removed { path: path.clone() })
                    .await;
                outcome.removed.push(path);
            }
        }
        Err(e) => {
            let why = format!("retention: {e}");
            let _ = events.send(BackupEvent::Warning(why.clone())).await;
            outcome.retention_error = Some(why);
        }
    }
    Ok(outcome)
}

fn short(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

/// The running container of the set's service, by compose labels, as `docker ps` on the
/// host sees it.
async fn container<R: Runner>(
    runner: &R,
    job: &BackupJob<'_>,
    pg: &PgDump,
) -> Result<String, BackupError> {
    let project = compose::project_name(job.stack);
    let cmd = script::command(
        job.docker_env().as_deref(),
        r#"docker ps -q --filter "label=com.docker.compose.project=$1" --filter "label=com.docker.compose.service=$2""#,
        &[project.clone(), pg.service.clone()],
    )
    .ok_or(BackupError::Quote)?;
    let out = runner.run(&cmd).await?;
    if out.status != Some(0) {
        return Err(BackupError::Docker(detail(&out.stderr)));
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(str::to_string)
        .ok_or_else(|| BackupError::NoContainer {
            project,
            service: pg.service.clone(),
        })
}

fn pg_dump_command(
    job: &BackupJob<'_>,
    pg: &PgDump,
    ctr: &str,
    names: &Names,
) -> Result<String, BackupError> {
    let tag = format!(
        "opsdeck-backup-{}-{}",
        std::process::id(),
        jiff::Timestamp::now().as_nanosecond() % 1_000_000_000
    );
    // The tag is ours (letters, digits, dashes): safe inside the SQL literal.
    let stop = format!(
        "select pg_terminate_backend(pid) from pg_stat_activity where application_name = '{tag}' and pid <> pg_backend_pid()"
    );
    let format = match pg.format {
        DumpFormat::Custom => "custom",
        DumpFormat::SqlGzip => "sql-gzip",
    };
    let args = [
        names.partial.clone(),
        names.final_path.clone(),
        ctr.to_string(),
        pg.user.clone(),
        pg.database.clone(),
        format.to_string(),
        tag,
        stop,
    ];
    script::command(
        job.docker_env().as_deref(),
        &script::assemble(script::PG_DUMP),
        &args,
    )
    .ok_or(BackupError::Quote)
}

fn file_copy_command(
    job: &BackupJob<'_>,
    fc: &FileCopy,
    detected: ComposeCommand,
    names: &Names,
) -> Result<String, BackupError> {
    let stack_dir = remote_dir(&job.stack.dir).trim_end_matches('/');
    let stack_dir = if stack_dir.is_empty() { "/" } else { stack_dir };
    let source = if fc.source.starts_with('/') {
        fc.source.clone()
    } else if fc.source.starts_with("~/") {
        remote_dir(&fc.source).to_string()
    } else {
        format!("{stack_dir}/{}", fc.source)
    };
    let quiesce = fc
        .quiesce
        .as_ref()
        .map(|c| compose::expand(c, job.stack, detected))
        .unwrap_or_default();
    let resume = fc
        .resume
        .as_ref()
        .map(|c| compose::expand(c, job.stack, detected))
        .unwrap_or_default();
    let mut args = vec![
        stack_dir.to_string(),
        source,
        names.partial.clone(),
        names.final_path.clone(),
        quiesce.len().to_string(),
        resume.len().to_string(),
    ];
    args.extend(quiesce);
    args.extend(resume);
    script::command(
        job.docker_env().as_deref(),
        &script::assemble(script::FILE_COPY),
        &args,
    )
    .ok_or(BackupError::Quote)
}

/// Runs the job's script, polling the partial file's size on a second channel once a
/// second. Progress is sent with `try_send`: a slow listener loses ticks, not the job.
async fn with_progress<R: Runner>(
    runner: &R,
    command: &str,
    size_cmd: &str,
    events: &mpsc::Sender<BackupEvent>,
    started: Instant,
) -> Result<ExecOutput, RunError> {
    let progress = async {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        tick.tick().await;
        loop {
            tick.tick().await;
            let Ok(out) = runner.run(size_cmd).await else {
                continue;
            };
            let bytes = String::from_utf8_lossy(&out.stdout).trim().parse::<u64>();
            if let (Some(0), Ok(bytes)) = (out.status, bytes) {
                let _ = events.try_send(BackupEvent::Progress {
                    bytes,
                    elapsed: started.elapsed(),
                });
            }
        }
    };
    tokio::select! {
        out = runner.run(command) => out,
        never = progress => match never {},
    }
}

/// Reads the script's exit status and output into the size of the new file or the reason
/// it is not there.
fn verdict(out: &ExecOutput, names: &Names) -> Result<u64, BackupError> {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let size = stdout
        .lines()
        .find_map(|l| l.strip_prefix("ok ")?.trim().parse::<u64>().ok());
    let why = detail(&out.stderr);
    match (out.status, size) {
        (Some(0), Some(size)) => Ok(size),
        (Some(exit::RESUME), Some(size)) => Err(BackupError::Resume {
            path: names.display.clone(),
            size,
            detail: resume_detail(&out.stderr),
        }),
        (Some(exit::BUSY), _) => Err(BackupError::Busy),
        (Some(exit::WRITE), _) => Err(BackupError::Write(why)),
        (Some(exit::DUMP), _) => Err(BackupError::Dump(why)),
        (Some(exit::QUIESCE), _) => Err(BackupError::Quiesce(why)),
        (Some(exit::COPY), _) => Err(BackupError::Copy(why)),
        (Some(exit::EMPTY), _) => Err(BackupError::Empty),
        (Some(exit::VERIFY), _) => Err(BackupError::Verify(why)),
        (Some(exit::EXISTS), _) => Err(BackupError::Exists(names.display.clone())),
        (Some(exit::RENAME), _) => Err(BackupError::Rename(why)),
        (None | Some(exit::HANGUP) | Some(exit::INTERRUPTED), _) => Err(BackupError::Interrupted),
        (status, _) => Err(BackupError::Script {
            status,
            detail: why,
        }),
    }
}

/// One stage of a script's stderr: what the tools printed, and opsdeck's own lines.
#[derive(Debug, Default)]
struct Segment {
    stage: String,
    tools: Vec<String>,
    ours: Vec<String>,
}

impl Segment {
    /// The last few tool lines on one line, then opsdeck's reason in parentheses.
    fn describe(&self) -> String {
        let tools = self.tools[self.tools.len().saturating_sub(4)..].join("; ");
        match (tools.is_empty(), self.ours.last()) {
            (true, Some(o)) => o.clone(),
            (true, None) => "no message".into(),
            (false, Some(o)) => format!("{tools} ({o})"),
            (false, None) => tools,
        }
    }
}

fn segments(stderr: &[u8]) -> Vec<Segment> {
    let text = String::from_utf8_lossy(stderr);
    let mut segs = vec![Segment {
        stage: "start".into(),
        ..Segment::default()
    }];
    // The host's words end up in messages on a terminal: made fit for one first.
    for line in text
        .lines()
        .map(|l| crate::sanitize::line(l).trim().to_string())
        .filter(|l| !l.is_empty())
    {
        let line = line.as_str();
        if let Some(stage) = line.strip_prefix("opsdeck-stage: ") {
            segs.push(Segment {
                stage: stage.into(),
                ..Segment::default()
            });
        } else if let Some(seg) = segs.last_mut() {
            match line.strip_prefix("opsdeck: ") {
                Some(ours) => seg.ours.push(ours.into()),
                None => seg.tools.push(line.into()),
            }
        }
    }
    segs
}

/// Why the job failed: the stage that said so (or, failing that, the last one that
/// printed anything), plus the resume command's failure when it failed too.
fn detail(stderr: &[u8]) -> String {
    let segs = segments(stderr);
    let failed = segs
        .iter()
        .find(|s| s.stage != "resume" && !s.ours.is_empty())
        .or_else(|| {
            segs.iter()
                .rev()
                .find(|s| s.stage != "resume" && !s.tools.is_empty())
        });
    let mut why = failed.map_or_else(|| "no message".into(), Segment::describe);
    if let Some(resume) = segs
        .iter()
        .find(|s| s.stage == "resume" && !s.ours.is_empty())
    {
        why.push_str(&format!(
            "; then the resume command failed too: {}",
            resume.describe()
        ));
    }
    why
}

/// What the resume stage printed, for a backup that was saved before resume failed.
fn resume_detail(stderr: &[u8]) -> String {
    segments(stderr)
        .iter()
        .find(|s| s.stage == "resume")
        .map_or_else(|| "no message".into(), Segment::describe)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn details_come_from_the_failing_stage() {
        let stderr = b"\nopsdeck-stage: quiesce\nStopping app_backend_1 ... done\n\nopsdeck-stage: copy\ncp: cannot stat 'app/data/x.db': No such file or directory\nopsdeck: cannot copy app/data/x.db\n\nopsdeck-stage: resume\nStarting backend ... done\n";
        assert_eq!(
            detail(stderr),
            "cp: cannot stat 'app/data/x.db': No such file or directory (cannot copy app/data/x.db)"
        );
        let both = b"opsdeck-stage: copy\nopsdeck: cannot copy x\nopsdeck-stage: resume\nNo such service: nosuch\nopsdeck: the resume command failed (exit 1)\n";
        assert_eq!(
            detail(both),
            "cannot copy x; then the resume command failed too: No such service: nosuch (the resume command failed (exit 1))"
        );
        assert_eq!(
            resume_detail(both),
            "No such service: nosuch (the resume command failed (exit 1))"
        );
        assert_eq!(
            detail(b"Cannot connect to the Docker daemon\n"),
            "Cannot connect to the Docker daemon"
        );
        assert_eq!(detail(b""), "no message");
        assert_eq!(
            detail(b"opsdeck-stage: dump\npg_dump: \x1b]52;c;aGk=\x07error\r\n"),
            "pg_dump: error"
        );
    }

    #[test]
    fn names_follow_the_glob_or_refuse() {
        let set = |glob: &str| {
            crate::config::parse_str(
                &format!("[[host]]\nname = \"h\"\n[[host.stack]]\nname = \"s\"\ndir = \"~/x\"\n[[host.stack.backup]]\nname = \"app.db\"\ndir = \"~/backups/\"\nglob = \"{glob}\"\nmax_age = \"1d\"\n[host.stack.backup.file_copy]\nsource = \"data/app.db\"\n"),
                std::path::Path::new("t.toml"),
            )
            .unwrap()
            .hosts
            .remove(0)
            .stacks
            .remove(0)
            .backups
            .remove(0)
        };
        let n = names(&set("app-*.db"), "20261123-031500").unwrap();
        assert_eq!(
            n,
            Names {
                file: "app-20261123-031500.db".into(),
                partial: "backups/.app.db.partial".into(),
                final_path: "backups/app-20261123-031500.db".into(),
                display: "~/backups/app-20261123-031500.db".into(),
            }
        );
        // No single `*`: <set>-<stamp>.<ext>, when the glob still matches it.
        let n = names(&set("app.db-*-*"), "20261123-031500").unwrap();
        assert_eq!(n.file, "app.db-20261123-031500.db");
        let err = names(&set("app-??.db"), "20261123-031500").unwrap_err();
        assert!(matches!(err, BackupError::Naming { .. }), "{err}");
    }
}
