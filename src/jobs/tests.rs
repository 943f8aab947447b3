//! The backup scripts on this machine, with a fake `docker` on the PATH: every failure
//! path and the cleanup after opsdeck goes away, without the lab.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::sync::mpsc;

use super::backup::{self, BackupError, BackupEvent, BackupJob};
use super::runner::{Local, Process, RunError, Runner};
use crate::config::{Stack, parse_str};
use crate::jobs::runner::ExecOutput;

/// [`Local`] with the fake tools first on the PATH.
struct Fake {
    local: Local,
    bin: PathBuf,
    /// Start the scripts with SIGHUP ignored, as under `nohup` or a parent that ignores
    /// it: a shell cannot trap a signal ignored on entry.
    ignore_hup: bool,
}

impl Fake {
    fn prefixed(&self, command: &str) -> String {
        let hup = if self.ignore_hup { "trap '' HUP; " } else { "" };
        format!(
            "{hup}PATH={}:$PATH; export PATH; {command}",
            self.bin.display()
        )
    }
}

impl Runner for Fake {
    async fn run(&self, command: &str) -> Result<ExecOutput, RunError> {
        self.local.run(&self.prefixed(command)).await
    }

    async fn start(&self, command: &str) -> Result<Process, RunError> {
        self.local.start(&self.prefixed(command)).await
    }
}

/// `docker ps` answers one container; `docker exec` runs `pg_dump.sh`, `pg_restore.sh`
/// or `psql.sh` from the fake's own directory (with the arguments), each defaulting to
/// success.
const DOCKER: &str = r#"#!/bin/sh
fake=$(dirname "$0")
case $1 in
ps) echo f4k3c0nta1n3r ;;
exec)
    shift
    while [ $# -gt 0 ]; do
        case $1 in -e) shift 2 ;; -i) shift ;; *) break ;; esac
    done
    shift
    tool=$1
    shift
    [ -f "$fake/$tool.sh" ] && . "$fake/$tool.sh"
    [ "$tool" = pg_restore ] && cat >/dev/null
    exit 0
    ;;
esac
"#;

struct Setup {
    home: tempfile::TempDir,
    fake: Fake,
    stack: Stack,
}

impl Setup {
    fn new(set: &str) -> Setup {
        Setup::with(|_| set.to_string())
    }

    /// For a set whose commands name paths in the home directory.
    fn with(set: impl FnOnce(&Path) -> String) -> Setup {
        let home = tempfile::tempdir().unwrap();
        let set = set(home.path());
        let bin = home.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::create_dir_all(home.path().join("app/data")).unwrap();
        write_exec(&bin.join("docker"), DOCKER);
        let text = format!(
            "[[host]]\nname = \"h\"\naddress = \"local\"\n[[host.stack]]\nname = \"app\"\ndir = \"~/app\"\ncompose = \"docker-compose\"\n[[host.stack.backup]]\nname = \"db\"\ndir = \"~/b\"\nmax_age = \"1d\"\n{set}\n"
        );
        let stack = parse_str(&text, Path::new("t.toml"))
            .unwrap()
            .hosts
            .remove(0)
            .stacks
            .remove(0);
        let fake = Fake {
            local: Local {
                home: Some(home.path().to_path_buf()),
            },
            bin,
            ignore_hup: false,
        };
        Setup { home, fake, stack }
    }

    fn ignoring_hangups(mut self, ignore: bool) -> Setup {
        self.fake.ignore_hup = ignore;
        self
    }

    fn tool(&self, name: &str, body: &str) {
        std::fs::write(self.fake.bin.join(format!("{name}.sh")), body).unwrap();
    }

    async fn run(&self) -> (Result<backup::BackupOutcome, BackupError>, Vec<BackupEvent>) {
        let (tx, mut rx) = mpsc::channel(100);
        let job = BackupJob {
            stack: &self.stack,
            set: &self.stack.backups[0],
            docker_host: None,
        };
        let result = backup::run(&self.fake, &job, &tx).await;
        drop(tx);
        let mut events = Vec::new();
        while let Some(e) = rx.recv().await {
            events.push(e);
        }
        (result, events)
    }

    /// The backup directory's files, dot files included.
    fn files(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.home.path().join("b"))
            .map(|d| {
                d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.home.path().join(rel)).unwrap_or_default()
    }
}

fn write_exec(path: &Path, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, body).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

const SQL_GZIP: &str = "glob = \"db-*.sql.gz\"\n[host.stack.backup.pg_dump]\nservice = \"db\"\ndatabase = \"app\"\nformat = \"sql-gzip\"";
const CUSTOM: &str = "glob = \"db-*.dump\"\n[host.stack.backup.pg_dump]\nservice = \"db\"\ndatabase = \"app\"\nformat = \"custom\"";

#[tokio::test]
async fn sql_gzip_dump_is_verified_and_renamed() {
    let s = Setup::new(SQL_GZIP);
    s.tool(
        "pg_dump",
        "echo \"-- dump of $*\"; echo 'CREATE TABLE t ();'\n",
    );
    let (result, events) = s.run().await;
    let outcome = result.unwrap();
    let files = s.files();
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(outcome.path.starts_with("~/b/db-") && outcome.path.ends_with(".sql.gz"));
    let gz = std::fs::read(s.home.path().join("b").join(&files[0])).unwrap();
    assert_eq!(outcome.size, gz.len() as u64);
    let out = std::process::Command::new("gunzip")
        .arg("-c")
        .arg(s.home.path().join("b").join(&files[0]))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "-- dump of -U postgres -- app\nCREATE TABLE t ();\n"
    );
    assert!(events.contains(&BackupEvent::Verified), "{events:?}");
    assert!(matches!(events.last(), Some(BackupEvent::Finished(Ok(_)))));
}

#[tokio::test]
async fn a_failed_dump_keeps_its_status_through_gzip_and_leaves_nothing() {
    let s = Setup::new(SQL_GZIP);
    s.tool(
        "pg_dump",
        "echo 'half a dump'; echo 'pg_dump: error: database \"app\" does not exist' >&2; exit 1\n",
    );
    let (result, events) = s.run().await;
    let err = result.unwrap_err();
    assert!(
        matches!(&err, BackupError::Dump(d) if d.contains("database \"app\" does not exist") && d.contains("status 1")),
        "{err}"
    );
    assert!(s.files().is_empty(), "{:?}", s.files());
    assert!(!events.contains(&BackupEvent::Verified));
}

#[tokio::test]
async fn custom_dumps_must_pass_pg_restore_and_not_be_empty() {
    let s = Setup::new(CUSTOM);
    s.tool("pg_dump", "printf 'PGDMP-truncated'\n");
    s.tool(
        "pg_restore",
        "cat >/dev/null; echo 'pg_restore: error: could not read input file: end of file' >&2; exit 1\n",
    );
    let err = s.run().await.0.unwrap_err();
    assert!(
        matches!(&err, BackupError::Verify(d) if d.contains("end of file")),
        "{err}"
    );
    assert!(s.files().is_empty(), "{:?}", s.files());

    s.tool("pg_dump", "exit 0\n");
    s.tool("pg_restore", "cat >/dev/null\n");
    assert_eq!(s.run().await.0.unwrap_err(), BackupError::Empty);
    assert!(s.files().is_empty(), "{:?}", s.files());
}

#[tokio::test]
async fn a_dropped_job_ends_the_dump_session_and_removes_the_partial() {
    for ignore_hup in [false, true] {
        dropped_dump_is_cleaned(ignore_hup).await;
    }
}

async fn dropped_dump_is_cleaned(ignore_hup: bool) {
    let s = Setup::new(SQL_GZIP).ignoring_hangups(ignore_hup);
    s.tool("pg_dump", "echo started; sleep 3\n");
    s.tool("psql", "echo \"$*\" >>\"$fake/psql.log\"\n");
    // opsdeck going away: the job's future is dropped, so the script's stdin closes.
    let dropped = tokio::time::timeout(Duration::from_millis(700), s.run()).await;
    assert!(dropped.is_err(), "the dump should still be running");
    // The cleanup takes milliseconds; the deadline is for a machine under load (4 s was
    // not enough once, with a release build and a CPU hog beside the suite).
    let mut cleaned = false;
    for _ in 0..200 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if s.files().is_empty() && !s.read("bin/psql.log").is_empty() {
            cleaned = true;
            break;
        }
    }
    assert!(
        cleaned,
        "SIGHUP ignored: {ignore_hup}; left: {:?}",
        s.files()
    );
    assert!(
        s.read("bin/psql.log")
            .contains("pg_terminate_backend(pid) from pg_stat_activity where application_name = 'opsdeck-backup-"),
        "{}",
        s.read("bin/psql.log")
    );
    // and nothing is renamed into place once the dump would have ended
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(s.files().is_empty(), "{:?}", s.files());
}

fn file_copy(home: &Path, source: &str, quiesce: &str) -> String {
    let log = home.join("steps.log");
    format!(
        "glob = \"db-*.db\"\n[host.stack.backup.file_copy]\nsource = \"{source}\"\nquiesce = \"sh -c '{quiesce} && echo quiesce in $(basename $PWD) >>{log}' \"\nresume = \"sh -c 'echo resume >>{log}'\"",
        log = log.display()
    )
}

fn copy_setup(source: &str, quiesce: &str) -> Setup {
    Setup::with(|home| file_copy(home, source, quiesce))
}

#[tokio::test]
async fn file_copy_runs_quiesce_copy_resume_in_order() {
    let s = copy_setup("data/app.db", "true");
    std::fs::write(
        s.home.path().join("app/data/app.db"),
        b"SQLite format 3\0data",
    )
    .unwrap();
    let outcome = s.run().await.0.unwrap();
    assert_eq!(s.read("steps.log"), "quiesce in app\nresume\n");
    let files = s.files();
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(files[0].starts_with("db-") && files[0].ends_with(".db"));
    assert_eq!(
        std::fs::read(s.home.path().join("b").join(&files[0])).unwrap(),
        b"SQLite format 3\0data"
    );
    assert_eq!(outcome.size, 20);
}

#[tokio::test]
async fn resume_runs_after_a_failed_copy_and_a_failed_quiesce() {
    let s = copy_setup("data/missing.db", "true");
    let err = s.run().await.0.unwrap_err();
    assert!(
        matches!(&err, BackupError::Copy(d) if d.contains("missing.db")),
        "{err}"
    );
    assert_eq!(s.read("steps.log"), "quiesce in app\nresume\n");
    assert!(s.files().is_empty(), "{:?}", s.files());

    let s = copy_setup("data/app.db", "false");
    std::fs::write(s.home.path().join("app/data/app.db"), b"x").unwrap();
    let err = s.run().await.0.unwrap_err();
    assert!(matches!(err, BackupError::Quiesce(_)), "{err}");
    assert_eq!(s.read("steps.log"), "resume\n");
    assert!(s.files().is_empty(), "{:?}", s.files());
}

#[tokio::test]
async fn resume_runs_when_opsdeck_goes_away_mid_quiesce() {
    for ignore_hup in [false, true] {
        resumed_after_drop(ignore_hup).await;
    }
}

async fn resumed_after_drop(ignore_hup: bool) {
    let s = copy_setup("data/app.db", "sleep 1").ignoring_hangups(ignore_hup);
    std::fs::write(s.home.path().join("app/data/app.db"), b"x").unwrap();
    let dropped = tokio::time::timeout(Duration::from_millis(300), s.run()).await;
    assert!(dropped.is_err());
    // As above: milliseconds, with room for a loaded machine.
    let mut resumed = false;
    for _ in 0..200 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if s.read("steps.log").contains("resume") {
            resumed = true;
            break;
        }
    }
    assert!(
        resumed,
        "SIGHUP ignored: {ignore_hup}; {}",
        s.read("steps.log")
    );
    assert!(s.files().is_empty(), "{:?}", s.files());
}

#[tokio::test]
async fn a_second_run_of_a_set_is_refused_while_the_first_runs() {
    let s = Setup::new(SQL_GZIP);
    s.tool("pg_dump", "sleep 2; echo x\n");
    let (first, second) = tokio::join!(s.run(), async {
        tokio::time::sleep(Duration::from_millis(700)).await;
        s.run().await
    });
    assert!(first.0.is_ok(), "{:?}", first.0);
    assert_eq!(second.0.unwrap_err(), BackupError::Busy);
    assert_eq!(s.files().len(), 1, "{:?}", s.files());
}
