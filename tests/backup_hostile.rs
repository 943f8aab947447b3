//! Backup directories as a host may really present them, against the lab over SSH: a
//! directory that is a symbolic link, one that does not exist, and file names and times
//! no honest backup would have.
//!
//! Every test writes its own inventory whose set lives under `~/opsdeck-test/<test>` on
//! lila, made by a [`TestDir`] that removes it when the test ends, pass or fail: the lab's
//! seeded backups (whose verdicts lab_shape and remote.rs check) are never touched.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::path::Path;

use common::lab::{LILA, Lab};
use common::run::{TestDir, both, host_inventory, opsdeck, text};
use serde_json::Value;

/// An inventory with lila and one watched set in `~/{dir}` (a lila stack, no recipe
/// unless `extra` gives one).
fn inventory(home: &Path, lab: &Lab, dir: &str, extra: &str) -> String {
    host_inventory(
        home,
        lab,
        &LILA,
        &format!(
            "[[host.stack]]\nname = \"lila\"\ndir = \"~/lila\"\nproject = \"lila\"\ncompose = \"docker-compose\"\n\n[[host.stack.backup]]\nname = \"db\"\ndir = \"~/{dir}\"\nglob = \"lila-*.sql.gz\"\nmax_age = \"26h\"\n{extra}\n"
        ),
    )
}

/// The set's entry in `opsdeck status --json`.
fn status_of_set(lab: &Lab, home: &Path, config: &str) -> Value {
    let out = opsdeck(lab, home, &["-c", config, "status", "--json"]);
    assert!(out.status.success(), "{}", both(&out));
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    let host = &status["hosts"][0];
    assert_eq!(host["reachable"], true, "{host:#}");
    host["backups"][0].clone()
}

/// `opsdeck check --json`: exit code and report.
fn check(lab: &Lab, home: &Path, config: &str) -> (Option<i32>, Value) {
    let out = opsdeck(lab, home, &["-c", config, "check", "--json"]);
    let report = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("check printed no JSON ({e}): {}", both(&out)));
    (out.status.code(), report)
}

/// The problems whose text mentions the set `lila/db`.
fn set_problems(report: &Value) -> Vec<Value> {
    report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["what"].as_str().unwrap().contains("lila/db"))
        .cloned()
        .collect()
}

/// Shell lines that make gzipped files in `dir` dated `hours` ago by the host's clock
/// (negative: in its future).
fn seed(dir: &str, files: &[(&str, i64)]) -> String {
    let mut s = format!("set -e; mkdir -p {dir}; now=$(date +%s); ");
    for (name, hours) in files {
        s.push_str(&format!(
            "f=\"{dir}/{name}\"; echo {name} | gzip >\"$f\"; touch -d @$((now - {hours} * 3600)) \"$f\"; "
        ));
    }
    s
}

#[test]
fn a_symlinked_backup_directory_is_followed_for_the_verdict_and_retention() {
    let Some(lab) = Lab::get() else { return };
    let home = tempfile::tempdir().unwrap();
    let dir = TestDir::new(lab, LILA, "symlinked");
    // The dumps live in `real`; the inventory names `link`, a symbolic link to it, as
    // when ~/backups is a link to a bigger disk.
    let real = format!("{}/real", dir.rel);
    dir.ssh_ok(&seed(
        &real,
        &[
            ("lila-20260103-000000.sql.gz", 2),
            ("lila-20260102-000000.sql.gz", 26),
            ("lila-20260101-000000.sql.gz", 50),
        ],
    ));
    dir.ssh_ok(&format!("ln -s real {}/link", dir.rel));
    let link = format!("{}/link", dir.rel);

    let config = inventory(home.path(), lab, &link, "");
    let b = status_of_set(lab, home.path(), &config);
    assert_eq!(b["verdict"], "fresh", "{b:#}");
    assert_eq!(b["count"], 3, "{b:#}");
    assert_eq!(
        b["newest_path"],
        format!("~/{link}/lila-20260103-000000.sql.gz"),
        "{b:#}"
    );
    let age = b["newest_age_seconds"].as_i64().unwrap();
    assert!((2 * 3600..2 * 3600 + 600).contains(&age), "{b:#}");

    // A backup through the link lands in `real`, and retention deletes there.
    let config = inventory(
        home.path(),
        lab,
        &link,
        "keep_last = 2\n[host.stack.backup.pg_dump]\nservice = \"database\"\ndatabase = \"lila\"\nformat = \"sql-gzip\"",
    );
    let out = opsdeck(
        lab,
        home.path(),
        &["-c", &config, "run", "lila", "backup", "--yes"],
    );
    assert!(out.status.success(), "{}", both(&out));
    let removed: Vec<String> = text(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("removed "))
        .map(str::to_string)
        .collect();
    assert_eq!(
        removed,
        [
            format!("~/{link}/lila-20260101-000000.sql.gz"),
            format!("~/{link}/lila-20260102-000000.sql.gz"),
        ],
        "{}",
        both(&out)
    );
    let left = dir.ssh_ok(&format!("ls -A {real}"));
    let left: Vec<&str> = left.lines().collect();
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(left.contains(&"lila-20260103-000000.sql.gz"), "{left:?}");
    assert!(
        dir.ssh_ok(&format!("test -L {link} && echo link")).trim() == "link",
        "the link itself is left alone"
    );
}

#[test]
fn a_backup_directory_that_does_not_exist_is_a_missing_set_and_critical() {
    let Some(lab) = Lab::get() else { return };
    let home = tempfile::tempdir().unwrap();
    let dir = TestDir::new(lab, LILA, "no-dir");
    let gone = format!("{}/backups", dir.rel);
    let config = inventory(home.path(), lab, &gone, "");

    let b = status_of_set(lab, home.path(), &config);
    assert_eq!(b["verdict"], "missing", "{b:#}");
    assert_eq!(b["count"], 0);
    assert_eq!(
        b["error"],
        format!("directory ~/{gone} does not exist"),
        "{b:#}"
    );

    let (code, report) = check(lab, home.path(), &config);
    assert_eq!(code, Some(2), "{report:#}");
    let problems = set_problems(&report);
    assert_eq!(problems.len(), 1, "{report:#}");
    assert_eq!(problems[0]["severity"], "critical", "{report:#}");
    assert_eq!(
        problems[0]["what"],
        format!("backup lila/db missing: directory ~/{gone} does not exist")
    );

    // A link to nowhere is no better.
    dir.ssh_ok(&format!("ln -s nowhere {gone}"));
    let (code, report) = check(lab, home.path(), &config);
    assert_eq!(code, Some(2), "{report:#}");
    let problems = set_problems(&report);
    assert_eq!(problems[0]["severity"], "critical", "{report:#}");
    let what = problems[0]["what"].as_str().unwrap();
    assert!(
        what.starts_with("backup lila/db missing: directory") && what.contains("does not exist"),
        "{what}"
    );
}

#[test]
fn hostile_names_and_a_file_from_the_future_never_pass_for_a_fresh_set() {
    let Some(lab) = Lab::get() else { return };
    let home = tempfile::tempdir().unwrap();
    let dir = TestDir::new(lab, LILA, "hostile-names");
    // Old real dumps, a name with a newline and one that would set the terminal's
    // title, both newer, and one dated a month into the host's future. Names are made by
    // printf on the host, so they hold the real control characters.
    dir.ssh_ok(&seed(
        &dir.rel,
        &[
            ("lila-20260101-000000.sql.gz", 50),
            ("lila-20260102-000000.sql.gz", 48),
        ],
    ));
    dir.ssh_ok(&format!(
        "set -e; cd {}; now=$(date +%s); \
         n=$(printf 'lila-a\\nb.sql.gz'); echo x | gzip >\"$n\"; touch -d @$((now - 40 * 3600)) \"$n\"; \
         n=$(printf 'lila-\\033]0;pwned\\007.sql.gz'); echo x | gzip >\"$n\"; touch -d @$((now - 30 * 3600)) \"$n\"; \
         n=lila-20991231-000000.sql.gz; echo x | gzip >\"$n\"; touch -d @$((now + 30 * 86400 + 3600)) \"$n\"",
        dir.rel
    ));
    let count = dir.ssh_ok(&format!("find {} -type f -printf x | wc -c", dir.rel));
    assert_eq!(count.trim(), "5");
    let config = inventory(home.path(), lab, &dir.rel, "");

    let b = status_of_set(lab, home.path(), &config);
    // Without the file from the future the newest dump is 30 h old: stale, whatever 2099
    // says, and the reason names it.
    assert_eq!(b["verdict"], "stale", "{b:#}");
    assert_eq!(b["count"], 5, "{b:#}");
    let newest = b["newest_path"].as_str().unwrap();
    assert!(newest.contains("pwned"), "{b:#}");
    let age = b["newest_age_seconds"].as_i64().unwrap();
    assert!((30 * 3600..30 * 3600 + 600).contains(&age), "{b:#}");
    assert_eq!(
        b["error"],
        "lila-20991231-000000.sql.gz is dated 30d in the future of the host's clock: its age is unknown",
        "{b:#}"
    );

    // check's text output carries no control character from the host.
    let out = opsdeck(lab, home.path(), &["-c", &config, "check"]);
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("backup lila/db stale, newest 30h old: lila-20991231-000000.sql.gz is dated 30d in the future"),
        "{stdout}"
    );
    assert!(
        !stdout.chars().any(|c| c.is_control() && c != '\n'),
        "{stdout:?}"
    );

    // Only the future file left beside the old ones' absence: suspicious, never fresh.
    dir.ssh_ok(&format!(
        "cd {} && rm -f lila-2026*.sql.gz lila-a* lila-?]0*",
        dir.rel
    ));
    assert_eq!(dir.files(), ["lila-20991231-000000.sql.gz"]);
    let b = status_of_set(lab, home.path(), &config);
    assert_eq!(b["verdict"], "suspicious", "{b:#}");
    assert_eq!(b["newest_path"], Value::Null, "{b:#}");
    let (code, report) = check(lab, home.path(), &config);
    assert_eq!(code.map(|c| c >= 1), Some(true), "{report:#}");
    let problems = set_problems(&report);
    assert!(
        problems[0]["what"]
            .as_str()
            .unwrap()
            .contains("its age is unknown"),
        "{report:#}"
    );
}
