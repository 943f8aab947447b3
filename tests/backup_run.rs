//! `opsdeck run HOST backup` against the lab: real pg_dump in the stacks' database
//! containers, real file copies between `compose stop` and `compose start`.
//!
//! Every test writes its own inventory whose sets live in `~/opsdeck-test/<test>` on the
//! host, and removes that directory (and any scratch database) when it ends, pass or
//! fail: the lab's seeded backups, whose verdicts lab_shape checks, are never touched.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Output, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use common::lab::{COURSE_SUPPORTER, DUCKDB_APP, LILA, Lab, LabHost, wait_for};
use common::run::{TestDir, audit, host_inventory, opsdeck, opsdeck_command, text};
use serde_json::Value;

/// The DuckDB app's backend is stopped and started by two tests: one at a time.
static DUCK: Mutex<()> = Mutex::new(());

/// An inventory with one lab host and one stack; `stack` is the TOML after `[[host.stack]]`.
fn inventory(home: &Path, lab: &Lab, h: &LabHost, stack: &str) -> String {
    host_inventory(home, lab, h, &format!("[[host.stack]]\n{stack}"))
}

/// `psql` as postgres in lila's database container.
fn lila_sql(lab: &Lab, db: &str, sql: &str) -> String {
    lab.ssh_ok(
        &LILA,
        &format!(
            "docker exec lila_database_1 psql -X -U postgres -d {db} -Atqc {}",
            shell_quote(sql)
        ),
    )
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// A scratch database in lila's container, dropped (sessions and all) when dropped.
struct ScratchDb<'a> {
    lab: &'a Lab,
    name: &'static str,
}

impl<'a> ScratchDb<'a> {
    fn create(lab: &'a Lab, name: &'static str) -> Self {
        lila_sql(
            lab,
            "postgres",
            &format!("drop database if exists {name} with (force)"),
        );
        lila_sql(lab, "postgres", &format!("create database {name}"));
        ScratchDb { lab, name }
    }
}

impl Drop for ScratchDb<'_> {
    fn drop(&mut self) {
        let sql = format!("drop database if exists {} with (force)", self.name);
        let _ = self.lab.ssh(
            &LILA,
            &format!(
                "docker exec lila_database_1 psql -X -U postgres -d postgres -Atqc {}",
                shell_quote(&sql)
            ),
        );
    }
}

/// Row counts of every table in `public`, one `table|count` line each.
fn row_counts(lab: &Lab, db: &str) -> String {
    lila_sql(
        lab,
        db,
        "select table_name || '|' || (xpath('/row/c/text()', query_to_xml(format('select count(*) as c from public.%I', table_name), false, true, '')))[1]::text \
         from information_schema.tables where table_schema = 'public' and table_type = 'BASE TABLE' order by table_name",
    )
}

fn lila_set(dir: &str, extra: &str) -> String {
    format!(
        "name = \"lila\"\ndir = \"~/lila\"\nproject = \"lila\"\ncompose = \"docker-compose\"\n\n[[host.stack.backup]]\nname = \"db\"\ndir = \"~/{dir}\"\nglob = \"lila-*.sql.gz\"\nmax_age = \"26h\"\n{extra}\n"
    )
}

fn audit_lines(home: &Path) -> Vec<Value> {
    audit(home)
}

/// The first word of stdout: the new file as the inventory spells it (`~/...`).
fn new_file(out: &Output) -> String {
    let stdout = text(&out.stdout);
    let first = stdout.split_whitespace().next().unwrap_or_default();
    first.strip_prefix("~/").unwrap_or(first).to_string()
}

#[test]
fn lila_sql_gzip_dump_restores_with_the_same_row_counts() {
    let Some(lab) = Lab::get() else { return };
    let home = tempfile::tempdir().unwrap();
    let dir = TestDir::new(lab, LILA, "restore");
    let config = inventory(
        home.path(),
        lab,
        &LILA,
        &lila_set(
            &dir.rel,
            "[host.stack.backup.pg_dump]\nservice = \"database\"\ndatabase = \"lila\"\nuser = \"postgres\"\nformat = \"sql-gzip\"",
        ),
    );
    let out = opsdeck(
        lab,
        home.path(),
        &["-c", &config, "run", "lila", "backup", "--yes"],
    );
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(
        text(&out.stderr).contains("verified"),
        "{}",
        text(&out.stderr)
    );
    let file = new_file(&out);
    let name = file.rsplit('/').next().unwrap().to_string();
    assert!(
        name.starts_with("lila-") && name.ends_with(".sql.gz"),
        "{file}"
    );
    assert_eq!(
        dir.files(),
        std::slice::from_ref(&name),
        "exactly the new dump, no partial"
    );
    dir.ssh_ok(&format!("gzip -t {file}"));

    let scratch = ScratchDb::create(lab, "opsdeck_restore_test");
    dir.ssh_ok(&format!(
        "gunzip -c {file} | docker exec -i lila_database_1 psql -X -q -v ON_ERROR_STOP=1 -U postgres -d {} >/dev/null",
        scratch.name
    ));
    let source = row_counts(lab, "lila");
    assert!(source.lines().count() >= 3, "lila has tables: {source}");
    assert!(source.contains("users|"), "{source}");
    assert_eq!(row_counts(lab, scratch.name), source);

    let audit = audit_lines(home.path());
    assert_eq!(audit.len(), 1, "{audit:?}");
    let size: u64 = dir
        .ssh_ok(&format!("stat -c %s {file}"))
        .trim()
        .parse()
        .unwrap();
    assert_eq!(audit[0]["host"], "lila");
    assert_eq!(audit[0]["stack"], "lila");
    assert_eq!(audit[0]["action"], "backup");
    assert_eq!(audit[0]["set"], "db");
    assert_eq!(audit[0]["user"], "tester");
    assert_eq!(audit[0]["file"], format!("~/{file}"));
    assert_eq!(audit[0]["size"], size);
    assert_eq!(audit[0]["outcome"], "ok");
    assert!(audit[0]["duration_ms"].as_u64().unwrap() > 0);
}

#[test]
fn course_supporter_custom_dump_passes_pg_restore_list() {
    let Some(lab) = Lab::get() else { return };
    let home = tempfile::tempdir().unwrap();
    let dir = TestDir::new(lab, COURSE_SUPPORTER, "custom");
    let stack = format!(
        "name = \"course-supporter\"\ndir = \"~/course-supporter\"\ncompose_files = [\"docker-compose.prod.yml\"]\nenv_file = \".env.prod\"\nproject = \"course-supporter\"\ncompose = \"docker-compose\"\n\n[[host.stack.backup]]\nname = \"db\"\ndir = \"~/{}\"\nglob = \"course-supporter-*.dump\"\nmax_age = \"26h\"\n[host.stack.backup.pg_dump]\nservice = \"db\"\ndatabase = \"course_supporter\"\nuser = \"postgres\"\nformat = \"custom\"\n",
        dir.rel
    );
    let config = inventory(home.path(), lab, &COURSE_SUPPORTER, &stack);
    let out = opsdeck(
        lab,
        home.path(),
        &[
            "-c",
            &config,
            "run",
            "course-supporter",
            "backup",
            "db",
            "--yes",
        ],
    );
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let file = new_file(&out);
    assert!(file.ends_with(".dump"), "{file}");
    assert_eq!(dir.files().len(), 1, "{:?}", dir.files());
    assert_eq!(dir.ssh_ok(&format!("head -c 5 {file}")), "PGDMP");
    let toc = dir.ssh_ok(&format!(
        "docker exec -i course-supporter-db pg_restore --list <{file}"
    ));
    assert!(toc.contains("TABLE public courses"), "{toc}");
}

#[test]
fn a_missing_database_fails_names_it_and_leaves_no_counted_file() {
    let Some(lab) = Lab::get() else { return };
    let home = tempfile::tempdir().unwrap();
    let dir = TestDir::new(lab, LILA, "missing-db");
    let config = inventory(
        home.path(),
        lab,
        &LILA,
        &lila_set(
            &dir.rel,
            "[host.stack.backup.pg_dump]\nservice = \"database\"\ndatabase = \"opsdeck_no_such_db\"\nformat = \"sql-gzip\"",
        ),
    );
    let out = opsdeck(
        lab,
        home.path(),
        &["-c", &config, "run", "lila", "backup", "--yes"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("pg_dump failed")
            && stderr.contains("\"opsdeck_no_such_db\" does not exist"),
        "{stderr}"
    );
    assert!(
        dir.files().iter().all(|f| f.starts_with('.')),
        "{:?}",
        dir.files()
    );
    let audit = audit_lines(home.path());
    assert!(
        audit[0]["outcome"]
            .as_str()
            .unwrap()
            .starts_with("failed: pg_dump failed"),
        "{audit:?}"
    );
    assert_eq!(audit[0]["file"], Value::Null);

    // A service with no running container says so, before anything is written.
    let config = inventory(
        home.path(),
        lab,
        &LILA,
        &lila_set(
            &dir.rel,
            "[host.stack.backup.pg_dump]\nservice = \"nosuchservice\"\ndatabase = \"lila\"",
        ),
    );
    let out = opsdeck(
        lab,
        home.path(),
        &["-c", &config, "run", "lila", "backup", "--yes"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains(
            "no running container for service \"nosuchservice\" of compose project \"lila\""
        ),
        "{}",
        text(&out.stderr)
    );
    assert!(dir.files().is_empty(), "{:?}", dir.files());
}

#[test]
fn killing_opsdeck_mid_dump_leaves_no_counted_file_and_no_session() {
    let Some(lab) = Lab::get() else { return };
    let home = tempfile::tempdir().unwrap();
    let dir = TestDir::new(lab, LILA, "killed");
    // Big enough that the dump takes seconds: ~200 MB of text, gzip on the host.
    let scratch = ScratchDb::create(lab, "opsdeck_kill_test");
    lila_sql(
        lab,
        scratch.name,
        "create table big as select g, repeat(md5(g::text), 10) as t from generate_series(1, 500000) g",
    );
    let config = inventory(
        home.path(),
        lab,
        &LILA,
        &lila_set(
            &dir.rel,
            "[host.stack.backup.pg_dump]\nservice = \"database\"\ndatabase = \"opsdeck_kill_test\"\nformat = \"sql-gzip\"",
        ),
    );
    let mut child = opsdeck_command(
        lab,
        home.path(),
        &["-c", &config, "run", "lila", "backup", "--yes"],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    // Progress lines are `<size>  <elapsed>`: the first one with data written is midway.
    let stderr = child.stderr.take().unwrap();
    let mut seen = Vec::new();
    for line in BufReader::new(stderr).lines() {
        let line = line.unwrap();
        seen.push(line.clone());
        if line.contains(" MB  ") || line.contains(" kB  ") {
            break;
        }
    }
    assert!(
        seen.last().is_some_and(|l| l.contains("B  ")),
        "no progress before the end: {seen:?}"
    );
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success());

    let gone = wait_for(Duration::from_secs(15), Duration::from_millis(300), || {
        dir.files().is_empty().then_some(())
    });
    assert!(gone.is_some(), "left behind: {:?}", dir.files());
    let ended = wait_for(Duration::from_secs(15), Duration::from_millis(300), || {
        let sessions = lila_sql(
            lab,
            "postgres",
            "select count(*) from pg_stat_activity where application_name like 'opsdeck-backup-%'",
        );
        (sessions.trim() == "0").then_some(())
    });
    assert!(
        ended.is_some(),
        "the dump's database session is still there"
    );
    // Had the dump carried on, it would have been renamed into place by now.
    std::thread::sleep(Duration::from_secs(2));
    assert!(dir.files().is_empty(), "{:?}", dir.files());
}

#[test]
fn retention_removes_exactly_the_expected_files() {
    let Some(lab) = Lab::get() else { return };
    let home = tempfile::tempdir().unwrap();
    let dir = TestDir::new(lab, LILA, "retention");
    // Five earlier dumps 1..5 hours old, and old files retention must never touch.
    let mut seed = String::from("set -e; now=$(date +%s); ");
    for h in 1..=5 {
        seed.push_str(&format!(
            "f={}/lila-2026010{h}-000000.sql.gz; echo {h} | gzip >$f; touch -d @$((now - {h} * 3600 - 60)) $f; ",
            dir.rel
        ));
    }
    for other in ["notes.txt", ".lila-hidden.sql.gz", "other-1.sql.gz"] {
        seed.push_str(&format!(
            "echo x >{0}/{other}; touch -d @$((now - 30 * 86400)) {0}/{other}; ",
            dir.rel
        ));
    }
    dir.ssh_ok(&seed);
    // keep_last 2 keeps the new dump and the 1h one; keep_within 150m also keeps the 2h one.
    let config = inventory(
        home.path(),
        lab,
        &LILA,
        &lila_set(
            &dir.rel,
            "keep_last = 2\nkeep_within = \"150m\"\n[host.stack.backup.pg_dump]\nservice = \"database\"\ndatabase = \"lila\"\nformat = \"sql-gzip\"",
        ),
    );
    let out = opsdeck(
        lab,
        home.path(),
        &["-c", &config, "run", "lila", "backup", "--yes"],
    );
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let stdout = text(&out.stdout);
    let removed: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("removed "))
        .collect();
    let expected: Vec<String> = [5, 4, 3]
        .iter()
        .map(|h| format!("~/{}/lila-2026010{h}-000000.sql.gz", dir.rel))
        .collect();
    assert_eq!(removed, expected, "{stdout}");
    let new = new_file(&out).rsplit('/').next().unwrap().to_string();
    let mut want = vec![
        ".lila-hidden.sql.gz".to_string(),
        "lila-20260101-000000.sql.gz".into(),
        "lila-20260102-000000.sql.gz".into(),
        "notes.txt".into(),
        "other-1.sql.gz".into(),
        new,
    ];
    want.sort();
    assert_eq!(dir.files(), want);
}

/// Running containers of a duckdb-app service, and when the backend last started.
fn backend_state(lab: &Lab) -> (String, String) {
    let out = lab.ssh_ok(
        &DUCKDB_APP,
        "docker inspect -f '{{.State.Status}} {{.State.StartedAt}}' app_backend_1",
    );
    let mut w = out.split_whitespace();
    (
        w.next().unwrap_or_default().to_string(),
        w.next().unwrap_or_default().to_string(),
    )
}

/// Waits until the backend is healthy again, so the lab is left as found.
fn wait_backend_healthy(lab: &Lab) {
    let healthy = wait_for(Duration::from_secs(40), Duration::from_millis(500), || {
        let h = lab.ssh_ok(
            &DUCKDB_APP,
            "docker inspect -f '{{.State.Health.Status}}' app_backend_1",
        );
        (h.trim() == "healthy").then_some(())
    });
    assert!(
        healthy.is_some(),
        "the backend did not become healthy again"
    );
}

fn duck_stack(dir: &str, source: &str, resume: &str) -> String {
    format!(
        "name = \"app\"\ndir = \"~/app\"\nproject = \"app\"\n\n[[host.stack.backup]]\nname = \"app.db\"\ndir = \"~/{dir}\"\nglob = \"app-*.db\"\nmax_age = \"26h\"\n[host.stack.backup.file_copy]\nsource = \"{source}\"\nquiesce = \"compose stop backend\"\nresume = {resume}\n"
    )
}

#[test]
fn duckdb_file_copy_is_byte_identical_to_the_quiesced_source() {
    let Some(lab) = Lab::get() else { return };
    let _one = DUCK.lock().unwrap_or_else(|e| e.into_inner());
    let home = tempfile::tempdir().unwrap();
    let dir = TestDir::new(lab, DUCKDB_APP, "copy");
    // The resume step records the source's hash while the writer is still stopped, then
    // starts it: after that the backend writes a row at once and the file moves on.
    let hash_file = format!("../{}/.source.sha256", dir.rel);
    let resume = format!(
        "\"sh -c 'sha256sum data/app.db >\\\"$0\\\" && exec docker-compose -p app start backend' {hash_file}\""
    );
    let config = inventory(
        home.path(),
        lab,
        &DUCKDB_APP,
        &duck_stack(&dir.rel, "data/app.db", &resume),
    );
    let (_, started_before) = backend_state(lab);
    let out = opsdeck(
        lab,
        home.path(),
        &["-c", &config, "run", "duckdb-app", "backup", "--yes"],
    );
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let file = new_file(&out);
    assert!(file.ends_with(".db"), "{file}");
    let source = dir.ssh_ok(&format!("cat {}/.source.sha256", dir.rel));
    let copy = dir.ssh_ok(&format!("sha256sum {file}"));
    let (source, copy) = (
        source.split_whitespace().next().unwrap(),
        copy.split_whitespace().next().unwrap(),
    );
    assert_eq!(copy, source, "the copy differs from the quiesced source");
    let (status, started_after) = backend_state(lab);
    assert_eq!(status, "running");
    assert_ne!(
        started_after, started_before,
        "the backend was not stopped for the copy"
    );
    wait_backend_healthy(lab);
}

#[test]
fn duckdb_failed_copy_still_resumes_the_backend() {
    let Some(lab) = Lab::get() else { return };
    let _one = DUCK.lock().unwrap_or_else(|e| e.into_inner());
    let home = tempfile::tempdir().unwrap();
    let dir = TestDir::new(lab, DUCKDB_APP, "copy-fails");
    let config = inventory(
        home.path(),
        lab,
        &DUCKDB_APP,
        &duck_stack(&dir.rel, "data/missing.db", "\"compose start backend\""),
    );
    let (_, started_before) = backend_state(lab);
    let out = opsdeck(
        lab,
        home.path(),
        &["-c", &config, "run", "duckdb-app", "backup", "--yes"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("the copy failed") && stderr.contains("data/missing.db"),
        "{stderr}"
    );
    assert!(dir.files().is_empty(), "{:?}", dir.files());
    let (status, started_after) = backend_state(lab);
    assert_eq!(
        status, "running",
        "resume did not run after the failed copy"
    );
    assert_ne!(started_after, started_before);
    wait_backend_healthy(lab);
}

#[test]
fn refuses_without_yes_in_read_only_mode_and_for_unknown_sets() {
    let Some(lab) = Lab::get() else { return };
    let home = tempfile::tempdir().unwrap();
    let set = lila_set(
        "opsdeck-test/refused",
        "[host.stack.backup.pg_dump]\nservice = \"database\"\ndatabase = \"lila\"",
    );
    let config = inventory(home.path(), lab, &LILA, &set);
    let refused = |args: &[&str], why: &str| {
        let mut all = vec!["-c", config.as_str(), "run", "lila"];
        all.extend_from_slice(args);
        let out = opsdeck(lab, home.path(), &all);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(
            text(&out.stderr).contains(why),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(out.stdout.is_empty());
    };
    refused(&["backup"], "pass --yes to run without confirmation");
    refused(&["backup", "--yes", "--read-only"], "--read-only is set");
    refused(
        &["--read-only", "backup", "db", "--yes"],
        "--read-only is set",
    );
    refused(
        &["backup", "nope", "--yes"],
        "no backup set \"nope\" (sets: db (stack lila, pg_dump))",
    );
    refused(&["undo", "--yes"], "unknown action \"undo\"");
    // restore is opsdeck's own (tests/releases.rs): refused like the others
    refused(&["restore", "--yes", "--read-only"], "--read-only is set");
    refused(
        &["restore", "nope", "--to", "1", "--yes"],
        "no stack on lila has a pg_dump backup set \"nope\"",
    );
    refused(
        &["backup", "--to", "1", "--yes"],
        "--to goes with rollback and restore only",
    );
    // read_only in the inventory, for the host and for everything
    let ro_host = home.path().join("ro-host.toml");
    let text_host = std::fs::read_to_string(&config)
        .unwrap()
        .replace("[[host.stack]]", "read_only = true\n\n[[host.stack]]");
    std::fs::write(&ro_host, text_host).unwrap();
    let out = opsdeck(
        lab,
        home.path(),
        &[
            "-c",
            ro_host.to_str().unwrap(),
            "run",
            "lila",
            "backup",
            "--yes",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("the host is read_only"),
        "{}",
        text(&out.stderr)
    );
    let ro_all = home.path().join("ro-all.toml");
    let text_all = std::fs::read_to_string(&config)
        .unwrap()
        .replace("[settings]", "[settings]\nread_only = true");
    std::fs::write(&ro_all, text_all).unwrap();
    let out = opsdeck(
        lab,
        home.path(),
        &[
            "-c",
            ro_all.to_str().unwrap(),
            "run",
            "lila",
            "backup",
            "--yes",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("settings say read_only"),
        "{}",
        text(&out.stderr)
    );
    // Nothing reached the host, and nothing was audited.
    let exists = lab.ssh(&LILA, "test -e opsdeck-test/refused");
    assert!(!exists.status.success());
    assert!(audit_lines(home.path()).is_empty());
}
