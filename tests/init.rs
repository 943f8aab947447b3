//! `opsdeck init` against the lab: from an ssh_config naming the three lab hosts and the
//! down one, and from an Ansible YAML inventory of the same, it writes an inventory that
//! `opsdeck config check` accepts, with course-supporter's two compose projects (dir,
//! compose file, env file), lila's project and its pg_dump backups, the DuckDB app, and the
//! down host commented out with its reason; `opsdeck status` over it lists the same
//! containers as over the lab's own inventory. A second run leaves the file alone and
//! prints what it would add; `--force` rewrites it and keeps the old one.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;

use common::lab::Lab;
use common::run::{both, opsdeck, text};
use serde_json::Value;

fn ansible_yaml(lab: &Lab) -> String {
    format!(
        "all:\n  vars:\n    ansible_ssh_private_key_file: {}\n  children:\n    web:\n      hosts:\n        lila:\n          ansible_host: 127.0.0.12\n          ansible_user: lila\n        duckdb-app:\n          ansible_host: 127.0.0.13\n          ansible_user: duck\n    db:\n      vars:\n        ansible_port: 22\n      hosts:\n        course-supporter:\n          ansible_host: 127.0.0.11\n          ansible_user: cs\n        down:\n          ansible_host: 127.0.0.14\n          ansible_user: deploy\n",
        lab.key.display()
    )
}

/// The cron test writes /etc/cron.d, which every lab host's probe reads (they share this
/// machine): the tests of this file take turns.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Each host's container names, from `opsdeck status --json` over `config`.
fn containers(lab: &Lab, home: &Path, config: &str) -> BTreeMap<String, Vec<String>> {
    let out = opsdeck(lab, home, &["status", "--json", "-c", config]);
    let json: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("status --json: {e}\n{}", both(&out)));
    json["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["reachable"] == Value::Bool(true))
        .map(|h| {
            let mut names: Vec<String> = h["containers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["name"].as_str().unwrap().to_string())
                .collect();
            names.sort();
            (h["name"].as_str().unwrap().to_string(), names)
        })
        .collect()
}

fn stack<'a>(inv: &'a toml::Value, host: &str, stack: &str) -> &'a toml::Value {
    inv["host"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["name"].as_str() == Some(host))
        .unwrap_or_else(|| panic!("no host {host}"))["stack"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"].as_str() == Some(stack))
        .unwrap_or_else(|| panic!("no stack {stack} on {host}"))
}

/// What both sources must give: checked on the written file and against the lab.
fn check_written(lab: &Lab, home: &Path, file: &Path) {
    let written = std::fs::read_to_string(file).unwrap();
    let path = file.to_str().unwrap();
    let check = opsdeck(lab, home, &["config", "check", "-c", path]);
    assert!(check.status.success(), "{}\n{written}", both(&check));
    let inv: toml::Value = toml::from_str(&written).unwrap();
    let mut names: Vec<&str> = inv["host"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["course-supporter", "duckdb-app", "lila"],
        "{written}"
    );

    let cs = stack(&inv, "course-supporter", "course-supporter");
    assert_eq!(cs["dir"].as_str(), Some("~/course-supporter"));
    assert_eq!(
        cs["compose_files"].as_array().unwrap()[0].as_str(),
        Some("docker-compose.prod.yml")
    );
    assert_eq!(cs["env_file"].as_str(), Some(".env.prod"));
    let cs_db = cs["backup"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["glob"].as_str() == Some("course-supporter-*.dump"))
        .expect("course-supporter's dumps");
    assert_eq!(
        cs_db["pg_dump"]["database"].as_str(),
        Some("course_supporter")
    );
    assert_eq!(cs_db["pg_dump"]["format"].as_str(), Some("custom"));
    let proxy = stack(&inv, "course-supporter", "proxy");
    assert_eq!(proxy["dir"].as_str(), Some("~/proxy"));

    let lila = stack(&inv, "lila", "lila");
    assert_eq!(lila["dir"].as_str(), Some("~/lila"));
    let b = &lila["backup"].as_array().unwrap()[0];
    assert_eq!(
        (b["dir"].as_str(), b["glob"].as_str()),
        (Some("~/backups"), Some("lila-*.sql.gz"))
    );
    assert_eq!(b["pg_dump"]["service"].as_str(), Some("database"));
    assert_eq!(b["pg_dump"]["database"].as_str(), Some("lila"));
    assert_eq!(b["pg_dump"]["format"].as_str(), Some("sql-gzip"));

    let app = stack(&inv, "duckdb-app", "app");
    assert_eq!(app["dir"].as_str(), Some("~/app"));

    // Every guess is marked; the down host is there, commented out, with its reason.
    assert!(
        written.contains("dir = \"~/lila\"   # found: "),
        "{written}"
    );
    assert!(
        written.contains("# down: not reachable (cannot connect to 127.0.0.14:22"),
        "{written}"
    );
    assert!(
        written.contains("# [[host]]\n# name = \"down\"\n"),
        "{written}"
    );

    // The console's view over it is the lab inventory's.
    let ours = containers(lab, home, path);
    let labs = containers(lab, home, lab.config.to_str().unwrap());
    let labs: BTreeMap<_, _> = labs.into_iter().filter(|(h, _)| h != "down").collect();
    assert_eq!(ours, labs);
    assert!(ours["lila"].len() >= 4, "{ours:?}");
}

#[test]
fn init_from_ssh_config_finds_the_labs_stacks_and_backups_and_never_overwrites() {
    let Some(lab) = Lab::get() else { return };
    let _turn = serial();
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(home.path().join(".ssh")).unwrap();
    std::fs::write(home.path().join(".ssh/config"), lab.ssh_config()).unwrap();
    let file = home.path().join("conf/hosts.toml");
    let f = file.to_str().unwrap();

    let out = opsdeck(lab, home.path(), &["init", "--from-ssh-config", "-o", f]);
    assert!(out.status.success(), "{}", both(&out));
    let err = text(&out.stderr);
    assert!(err.contains("[4/4]"), "{err}");
    assert!(err.contains("wrote"), "{err}");
    check_written(lab, home.path(), &file);
    let first = std::fs::read(&file).unwrap();

    // Present: nothing changes; what it would add (the down host, still down) is printed.
    let again = opsdeck(lab, home.path(), &["init", "--from-ssh-config", "-o", f]);
    assert!(again.status.success(), "{}", both(&again));
    assert_eq!(std::fs::read(&file).unwrap(), first);
    let err = text(&again.stderr);
    assert!(err.contains("already in") && err.contains("lila"), "{err}");
    let printed = text(&again.stdout);
    assert!(printed.contains("# name = \"down\""), "{printed}");
    assert!(!printed.contains("name = \"lila\""), "{printed}");

    // Named hosts only, with --force: rewritten, the old file kept.
    let forced = opsdeck(lab, home.path(), &["init", "lila", "-o", f, "--force"]);
    assert!(forced.status.success(), "{}", both(&forced));
    assert_eq!(
        std::fs::read(file.with_extension("toml.bak")).unwrap(),
        first
    );
    let now = std::fs::read_to_string(&file).unwrap();
    assert!(
        now.contains("name = \"lila\"") && !now.contains("course-supporter"),
        "{now}"
    );
}

#[test]
fn init_from_an_ansible_yaml_inventory_writes_the_same_hosts() {
    let Some(lab) = Lab::get() else { return };
    let _turn = serial();
    let home = tempfile::tempdir().unwrap();
    // No ssh_config here: the user's known_hosts knows the lab's keys.
    std::fs::create_dir_all(home.path().join(".ssh")).unwrap();
    std::fs::copy(&lab.known_hosts, home.path().join(".ssh/known_hosts")).unwrap();
    let inv = home.path().join("inventory.yml");
    std::fs::write(&inv, ansible_yaml(lab)).unwrap();
    let file = home.path().join("hosts.toml");

    let out = opsdeck(
        lab,
        home.path(),
        &[
            "init",
            "--ansible",
            inv.to_str().unwrap(),
            "-o",
            file.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", both(&out));
    check_written(lab, home.path(), &file);
    let written = std::fs::read_to_string(&file).unwrap();
    assert!(written.contains("address = \"127.0.0.12\""), "{written}");
    assert!(written.contains("user = \"lila\""), "{written}");
    assert!(written.contains("(group web)"), "{written}");
}

/// Removes what the cron test put on the machine, however the test ends.
struct CronFixture {
    file: std::path::PathBuf,
    dir: std::path::PathBuf,
}

impl Drop for CronFixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.file);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn a_pg_dump_cron_job_names_a_backup_set_where_no_search_would_look() {
    let Some(lab) = Lab::get() else { return };
    let _turn = serial();
    let duck_home = lab.state.join("home/duck");
    let fixture = CronFixture {
        file: "/etc/cron.d/opsdeck-init-test".into(),
        dir: duck_home.join("pgdumps"),
    };
    std::fs::create_dir_all(&fixture.dir).unwrap();
    std::fs::write(
        fixture.dir.join("app-2026-12-01.sql.gz"),
        b"not really gzip",
    )
    .unwrap();
    std::fs::write(
        &fixture.file,
        format!(
            "# a nightly dump\n30 3 * * * duck pg_dump -U app app | gzip > {}/app-$(date +\\%F).sql.gz\n",
            fixture.dir.display()
        ),
    )
    .unwrap();
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(home.path().join(".ssh")).unwrap();
    std::fs::write(home.path().join(".ssh/config"), lab.ssh_config()).unwrap();
    let out = opsdeck(lab, home.path(), &["init", "duckdb-app", "-o", "-"]);
    assert!(out.status.success(), "{}", both(&out));
    let written = text(&out.stdout);
    let inv: toml::Value = toml::from_str(&written).unwrap();
    let app = stack(&inv, "duckdb-app", "app");
    let set = app["backup"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["glob"].as_str() == Some("app-*.sql.gz"))
        .unwrap_or_else(|| panic!("no set from the crontab:\n{written}"));
    assert_eq!(set["dir"].as_str(), Some("~/pgdumps"), "{written}");
    assert!(
        written.contains("1 file(s) in ~/pgdumps")
            && written.contains("written by crontab: 30 3 * * * duck pg_dump"),
        "{written}"
    );
}
