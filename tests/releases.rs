//! Release history against the lab: three deploys of lila with three images pushed to
//! the lab registry, `opsdeck releases`, the `R` picker in a pseudo-terminal, a rollback
//! to the first release by number, its images surviving `docker image prune -af`; and on
//! course-supporter a migration that takes a dump first, fails, and whose dump the
//! explicit restore brings back.
//!
//! Each test leaves its host as the lab made it: the image it pushed replaced by the old
//! one, the history file and the keepers it caused removed.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;
mod support;

use std::sync::Mutex;
use std::time::Duration;

use common::lab::{COURSE_SUPPORTER, LILA, Lab, LabHost, wait_for};
use common::run::{TestDir, audit, both, host_inventory, opsdeck, text};
use expectrl::WaitStatus;
use serde_json::Value;
use support::tui::Tui;

static LILA_LOCK: Mutex<()> = Mutex::new(());
static CS: Mutex<()> = Mutex::new(());

fn serial(m: &'static Mutex<()>) -> std::sync::MutexGuard<'static, ()> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Removes a project's history file, keeper containers and keep tags.
fn forget_releases(lab: &Lab, h: &LabHost, project: &str) {
    let _ = lab.ssh(h, &format!("rm -f .local/state/opsdeck/{project}.releases"));
    let keepers = lab.docker(
        h,
        &[
            "ps",
            "-aq",
            "--filter",
            &format!("label=opsdeck.keep={project}"),
        ],
    );
    for id in keepers.lines().filter(|l| !l.is_empty()) {
        lab.docker(h, &["rm", "-f", id]);
    }
    let tags = lab.docker(
        h,
        &[
            "images",
            "--format",
            "{{.Repository}}:{{.Tag}}",
            &format!("opsdeck-keep/{project}/*"),
        ],
    );
    for t in tags.lines().filter(|l| !l.is_empty()) {
        let _ = lab.docker_out(h, &["rmi", t]);
    }
}

/// Puts lila back as the lab made it: the old api image as `latest`, locally and in the
/// registry, running; no history.
struct LilaBack<'a> {
    lab: &'a Lab,
    image: &'static str,
    old: String,
}

impl Drop for LilaBack<'_> {
    fn drop(&mut self) {
        let (lab, h) = (self.lab, &LILA);
        let _ = lab.docker_out(h, &["tag", &self.old, self.image]);
        let _ = lab.docker_out(h, &["push", self.image]);
        let _ = lab.ssh(
            h,
            &format!("{} up -d >/dev/null 2>&1", Lab::compose(h, "lila")),
        );
        forget_releases(lab, h, "lila");
        let _ = lab.docker_out(h, &["rmi", "opsdeck-test/prune-me:1"]);
        // the api was recreated: the next test (or test binary) finds it healthy
        let _ = wait_for(Duration::from_secs(120), Duration::from_millis(500), || {
            let out = lab.ssh(h, "docker inspect -f '{{.State.Health.Status}}' lila_api_1");
            (text(&out.stdout).trim() == "healthy").then_some(())
        });
    }
}

fn build_release(lab: &Lab, image: &str, from: &str, n: usize) -> String {
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!(
            "FROM {from}\nLABEL opsdeck.test.release=\"{n} {:?}\"\n",
            std::time::SystemTime::now()
        ),
    )
    .unwrap();
    lab.docker(
        &LILA,
        &["build", "-q", "-t", image, ctx.path().to_str().unwrap()],
    );
    lab.docker(&LILA, &["image", "inspect", "-f", "{{.Id}}", image])
}

fn releases_json(lab: &Lab, home: &std::path::Path, config: &str, host: &str) -> Value {
    let out = opsdeck(lab, home, &["-c", config, "releases", host, "--json"]);
    assert!(out.status.success(), "{}", both(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn short(id: &str) -> &str {
    let id = id.strip_prefix("sha256:").unwrap_or(id);
    &id[..12]
}

#[test]
fn three_lila_releases_a_picker_a_rollback_to_the_first_and_kept_images_survive_a_prune() {
    let Some(lab) = Lab::get() else { return };
    let _g = serial(&LILA_LOCK);
    let home = tempfile::tempdir().unwrap();
    let image = "127.0.0.1:5000/lila/api:latest";
    let old = lab.image_of(&LILA, "lila_api_1");
    let _back = LilaBack {
        lab,
        image,
        old: old.clone(),
    };
    forget_releases(lab, &LILA, "lila");
    let config = lab.config.display().to_string();

    // Three releases, each a new api image pushed to the registry and deployed.
    let mut ids = Vec::new();
    for n in 1..=3 {
        let id = build_release(lab, image, &old, n);
        lab.docker(&LILA, &["push", image]);
        // the old image as `latest` here, so only `compose pull` brings the new one
        lab.docker(&LILA, &["tag", &old, image]);
        let out = opsdeck(
            lab,
            home.path(),
            &["-c", &config, "run", "lila", "deploy", "--yes"],
        );
        assert!(out.status.success(), "deploy {n}: {}", both(&out));
        assert!(
            text(&out.stderr).contains(&format!("release #{n} ")),
            "deploy {n}: {}",
            both(&out)
        );
        assert_eq!(lab.image_of(&LILA, "lila_api_1"), id, "deploy {n}");
        ids.push(id);
    }
    assert!(ids[0] != ids[1] && ids[1] != ids[2]);

    // The history: newest first, what differs from now per service.
    let json = releases_json(lab, home.path(), &config, "lila");
    let list = json["releases"].as_array().unwrap();
    let numbers: Vec<u64> = list.iter().map(|r| r["n"].as_u64().unwrap()).collect();
    assert_eq!(numbers, [3, 2, 1], "{json:#}");
    for (r, id) in list.iter().zip(ids.iter().rev()) {
        let api = r["services"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["service"] == "api")
            .unwrap();
        assert_eq!(api["id"], id.as_str(), "{r:#}");
        assert_eq!(r["outcome"], "ok");
        assert_eq!(r["recipe"], "deploy");
    }
    assert_eq!(list[0]["changes"], serde_json::json!([]));
    assert_eq!(
        list[2]["changes"],
        serde_json::json!([format!("api: {} → {}", short(&ids[2]), short(&ids[0]))])
    );

    // The picker in the console shows the same three, with their differences.
    let env: Vec<(&str, Option<&str>)> = lab
        .env
        .iter()
        .map(|(k, v)| (k.as_str(), Some(v.as_str())))
        .chain([("OPSDECK_CONFIG", Some(config.as_str()))])
        .collect();
    let mut tui = Tui::start_sized(home.path(), &[], &env, 120, 36);
    tui.wait_for("the fleet with lila up", |s| {
        s.contains("lila") && s.contains("4/4")
    });
    // the fleet's rows are in inventory order: lila is the second
    tui.send("j");
    tui.send("\r");
    tui.wait_for("lila's host view", |s| s.contains("fleet › lila"));
    tui.send("R");
    let screen = tui.wait_for("three releases in the picker", |s| {
        s.contains("Releases of lila on lila") && s.contains("#3") && s.contains("#1")
    });
    assert!(screen.contains("runs now"), "{screen}");
    assert!(screen.contains("differs: api"), "{screen}");
    tui.send("G");
    let screen = tui.wait_for("the first release selected, its difference shown", |s| {
        s.contains(&format!("api: {} → {}", short(&ids[2]), short(&ids[0])))
    });
    assert!(screen.contains("#1"), "{screen}");
    tui.send("\x1b");
    tui.wait_for("the picker closed", |s| !s.contains("Releases of lila"));
    tui.send("q");
    assert!(matches!(tui.finish(), WaitStatus::Exited(_, 0)));

    // Kept releases' images survive a prune of every unused image. The lab's own
    // unused images are held by containers of the test's (tests/run removes them if
    // this test is cut short); an image nobody keeps shows the prune really ran.
    let unkept = build_release(lab, "opsdeck-test/prune-me:1", &old, 9);
    let used: Vec<String> = lab
        .docker(&LILA, &["ps", "-aq", "--no-trunc"])
        .lines()
        .map(|c| lab.docker(&LILA, &["inspect", "-f", "{{.Image}}", c]))
        .collect();
    let all = lab.docker(&LILA, &["images", "-q", "--no-trunc"]);
    let mut holders = Vec::new();
    for img in all.lines().filter(|l| !l.is_empty()) {
        if used.iter().any(|u| u == img) || ids.iter().any(|i| i == img) || *img == unkept {
            continue;
        }
        let id = lab.docker(
            &LILA,
            &[
                "create",
                "--label",
                "opsdeck.test=1",
                "--entrypoint",
                "/held",
                img,
            ],
        );
        holders.push(id);
    }
    lab.docker(&LILA, &["image", "prune", "-af"]);
    for id in &holders {
        lab.docker(&LILA, &["rm", "-f", id]);
    }
    assert!(
        !lab.docker_out(&LILA, &["image", "inspect", &unkept])
            .status
            .success(),
        "the prune removed nothing"
    );
    for (n, id) in ids.iter().enumerate() {
        assert!(
            lab.docker_out(&LILA, &["image", "inspect", id])
                .status
                .success(),
            "release #{}'s image {id} was pruned",
            n + 1
        );
    }

    // Back to the first release by number: its image ID runs, retagged, nothing pulled.
    let out = opsdeck(
        lab,
        home.path(),
        &[
            "-c", &config, "run", "lila", "rollback", "--to", "1", "--yes",
        ],
    );
    assert!(out.status.success(), "{}", both(&out));
    assert_eq!(lab.image_of(&LILA, "lila_api_1"), ids[0], "{}", both(&out));
    let err = text(&out.stderr);
    assert!(err.contains("release #1 "), "{err}");
    assert!(err.contains("release #4 "), "{err}");
    let json = releases_json(lab, home.path(), &config, "lila");
    assert_eq!(
        json["releases"][0]["recipe"]
            .as_str()
            .unwrap()
            .split(' ')
            .take(3)
            .collect::<Vec<_>>(),
        ["rollback", "to", "#1"]
    );
    // a release that is not kept is refused before anything changes
    let out = opsdeck(
        lab,
        home.path(),
        &[
            "-c", &config, "run", "lila", "rollback", "--to", "99", "--yes",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", both(&out));
    assert!(
        text(&out.stderr).contains("no release #99 is kept (kept: #1 to #4)"),
        "{}",
        both(&out)
    );
    assert_eq!(lab.image_of(&LILA, "lila_api_1"), ids[0]);
    let a = audit(home.path());
    let actions: Vec<&str> = a.iter().map(|r| r["action"].as_str().unwrap()).collect();
    assert_eq!(
        actions,
        ["deploy", "deploy", "deploy", "rollback", "rollback"]
    );
}

/// A release aging out takes its keeper and keep tag with it.
#[test]
fn the_oldest_release_ages_out_with_its_keep_tag_and_keeper() {
    let Some(lab) = Lab::get() else { return };
    let _g = serial(&LILA_LOCK);
    let home = tempfile::tempdir().unwrap();
    let old = lab.image_of(&LILA, "lila_api_1");
    let _back = LilaBack {
        lab,
        image: "127.0.0.1:5000/lila/api:latest",
        old: old.clone(),
    };
    forget_releases(lab, &LILA, "lila");
    // twenty releases on record, the oldest (#5) kept by its tag and keeper
    let lines: String = (5..25)
        .map(|n| {
            format!(
                "{{\"n\":{n},\"id\":\"r{n}\",\"at\":\"2026-12-01T00:00:00Z\",\"who\":\"t@m\",\"recipe\":\"deploy\",\"services\":[{{\"service\":\"api\",\"image\":\"127.0.0.1:5000/lila/api:latest\",\"id\":\"{old}\"}}],\"outcome\":\"ok\"}}\n"
            )
        })
        .collect();
    let tmp = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(tmp.path(), lines).unwrap();
    lab.ssh_ok(&LILA, "mkdir -p .local/state/opsdeck");
    let st = lab
        .ssh_command(&LILA, "cat > .local/state/opsdeck/lila.releases")
        .stdin(std::fs::File::open(tmp.path()).unwrap())
        .status()
        .unwrap();
    assert!(st.success(), "writing lila's history");
    lab.docker(&LILA, &["tag", &old, "opsdeck-keep/lila/api:5"]);
    lab.docker(
        &LILA,
        &[
            "create",
            "--name",
            "opsdeck-keep-lila-api-5",
            "--label",
            "opsdeck.keep=lila",
            "--entrypoint",
            "/x",
            "opsdeck-keep/lila/api:5",
        ],
    );
    let config = lab.config.display().to_string();
    let out = opsdeck(
        lab,
        home.path(),
        &["-c", &config, "run", "lila", "deploy", "--yes"],
    );
    assert!(out.status.success(), "{}", both(&out));
    assert!(text(&out.stderr).contains("release #25 "), "{}", both(&out));
    let json = releases_json(lab, home.path(), &config, "lila");
    let list = json["releases"].as_array().unwrap();
    assert_eq!(list.len(), 20);
    assert_eq!(list.last().unwrap()["n"], 6);
    assert!(
        !lab.docker_out(&LILA, &["inspect", "opsdeck-keep-lila-api-5"])
            .status
            .success(),
        "the aged-out keeper is still there"
    );
    assert!(
        !lab.docker_out(&LILA, &["image", "inspect", "opsdeck-keep/lila/api:5"])
            .status
            .success(),
        "the aged-out tag is still there"
    );
    assert!(
        lab.docker_out(&LILA, &["inspect", "opsdeck-keep-lila-api-25"])
            .status
            .success(),
        "the new release has no keeper"
    );
}

/// Drops the probe table and the history the test made.
struct CsBack<'a> {
    lab: &'a Lab,
    table: String,
}

impl Drop for CsBack<'_> {
    fn drop(&mut self) {
        let _ = self.lab.ssh(
            &COURSE_SUPPORTER,
            &format!(
                "docker exec course-supporter-db psql -X -U postgres -d course_supporter -qc 'DROP TABLE IF EXISTS {}'",
                self.table
            ),
        );
        forget_releases(self.lab, &COURSE_SUPPORTER, "course-supporter");
        // the app was stopped and started by the restore: wait for it to be healthy
        let _ = wait_for(Duration::from_secs(120), Duration::from_millis(500), || {
            let out = self.lab.ssh(
                &COURSE_SUPPORTER,
                "docker inspect -f '{{.State.Health.Status}}' course-supporter-app",
            );
            (text(&out.stdout).trim() == "healthy").then_some(())
        });
    }
}

#[test]
fn a_failed_migration_leaves_its_dump_and_a_failed_release_and_the_restore_brings_a_table_back() {
    let Some(lab) = Lab::get() else { return };
    let _g = serial(&CS);
    let home = tempfile::tempdir().unwrap();
    let dumps = TestDir::new(lab, COURSE_SUPPORTER, "dumps");
    let table = format!("probe_{}", std::process::id());
    let _back = CsBack {
        lab,
        table: table.clone(),
    };
    forget_releases(lab, &COURSE_SUPPORTER, "course-supporter");
    lab.cs_sql(&format!(
        "CREATE TABLE {table} (v text); INSERT INTO {table} VALUES ('kept')"
    ));
    // A migration that drops the table, then fails.
    let config = host_inventory(
        home.path(),
        lab,
        &COURSE_SUPPORTER,
        &format!(
            r#"[[host.stack]]
name = "course-supporter"
dir = "~/course-supporter"
compose_files = ["docker-compose.prod.yml"]
env_file = ".env.prod"
project = "course-supporter"
compose = "docker-compose"
migration_head = "compose exec -T app alembic current"

[host.stack.migrate]
steps = [
  "compose exec -T db psql -X -U postgres -d course_supporter -v ON_ERROR_STOP=1 -c 'DROP TABLE {table}'",
  "compose exec -T db psql -X -U postgres -d course_supporter -v ON_ERROR_STOP=1 -c 'SELECT no_such_function()'",
]

[[host.stack.backup]]
name = "db"
dir = "~/{dir}"
glob = "cs-*.dump"
max_age = "26h"
[host.stack.backup.pg_dump]
service = "db"
database = "course_supporter"
user = "postgres"
format = "custom"
"#,
            dir = dumps.rel
        ),
    );
    let out = opsdeck(
        lab,
        home.path(),
        &["-c", &config, "run", "course-supporter", "migrate", "--yes"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", both(&out));
    assert_eq!(
        lab.cs_sql(&format!("SELECT to_regclass('{table}')")),
        "",
        "the migration dropped the table"
    );
    // The dump came first, verified, and the failed release names it.
    let json = releases_json(lab, home.path(), &config, "course-supporter");
    let r = &json["releases"][0];
    assert_eq!(r["recipe"], "migrate", "{json:#}");
    assert!(
        r["outcome"]
            .as_str()
            .unwrap()
            .starts_with("failed: step 3/3"),
        "{r:#}"
    );
    assert_eq!(r["dump_set"], "db");
    assert!(
        r["migration_head"].as_str().is_some_and(|h| !h.is_empty()),
        "{r:#}"
    );
    let dump = r["dump"].as_str().unwrap().to_string();
    let prefix = format!("~/{}/cs-", dumps.rel);
    assert!(dump.starts_with(&prefix), "{dump}");
    let file = dump.trim_start_matches("~/");
    lab.ssh_ok(
        &COURSE_SUPPORTER,
        &format!("docker exec -i course-supporter-db pg_restore --list < {file} | grep -q 'TABLE public {table}'"),
    );
    let n = r["n"].as_u64().unwrap().to_string();

    // The explicit restore: a dump of now first, the app stopped, the database made again.
    let out = opsdeck(
        lab,
        home.path(),
        &[
            "-c",
            &config,
            "run",
            "course-supporter",
            "restore",
            "--to",
            &n,
            "--yes",
        ],
    );
    assert!(out.status.success(), "{}", both(&out));
    assert_eq!(lab.cs_sql(&format!("SELECT v FROM {table}")), "kept");
    let all = both(&out);
    assert!(all.contains("stopped course-supporter-app"), "{all}");
    // the script's own lines, on stdout
    assert!(text(&out.stdout).contains("restored"), "{all}");
    assert_eq!(
        dumps.files().len(),
        2,
        "the restore's own dump of before: {:?}",
        dumps.files()
    );
    let a = audit(home.path());
    let last = a.last().unwrap();
    assert_eq!(last["action"], "restore", "{last:#}");
    assert_eq!(last["outcome"], "ok");
    let migrate = &a[a.len() - 2];
    assert_eq!(migrate["action"], "migrate");
    assert_eq!(migrate["file"], dump.as_str(), "{migrate:#}");
}

/// Back on main after a rollback that checked out an older commit (detached HEAD), so the
/// next deploy's `git pull --ff-only` works; the history goes.
struct CheckoutBack<'a> {
    lab: &'a Lab,
}

impl Drop for CheckoutBack<'_> {
    fn drop(&mut self) {
        let _ = self.lab.ssh(
            &COURSE_SUPPORTER,
            "cd ~/course-supporter && git checkout -q main",
        );
        forget_releases(self.lab, &COURSE_SUPPORTER, "course-supporter");
    }
}

fn cs(lab: &Lab, cmd: &str) -> String {
    lab.ssh_ok(
        &COURSE_SUPPORTER,
        &format!("cd ~/course-supporter && {cmd}"),
    )
    .trim()
    .to_string()
}

#[test]
fn course_supporter_rolls_back_to_an_older_release_with_its_commit_and_schema() {
    let Some(lab) = Lab::get() else { return };
    let _g = serial(&CS);
    let home = tempfile::tempdir().unwrap();
    let _back = CheckoutBack { lab };
    forget_releases(lab, &COURSE_SUPPORTER, "course-supporter");
    let config = lab.config.display().to_string();
    let stamp = std::process::id();
    let (first, second) = (format!("rb_a_{stamp}"), format!("rb_b_{stamp}"));
    let exists = |t: &str| lab.cs_sql(&format!("select to_regclass('public.{t}') is not null"));
    let deploy = |name: &str| {
        lab.lab(&["cs-commit", name]);
        let out = opsdeck(
            lab,
            home.path(),
            &["-c", &config, "run", "course-supporter", "deploy", "--yes"],
        );
        assert!(out.status.success(), "{}", both(&out));
        (
            cs(lab, "git rev-parse HEAD"),
            lab.image_of(&COURSE_SUPPORTER, "course-supporter-app"),
        )
    };
    let (commit_a, image_a) = deploy(&first);
    let (commit_b, image_b) = deploy(&second);
    assert_ne!(commit_a, commit_b);
    assert_ne!(image_a, image_b);
    assert_eq!((exists(&first), exists(&second)), ("t".into(), "t".into()));
    let json = releases_json(lab, home.path(), &config, "course-supporter");
    let (b, a) = (&json["releases"][0], &json["releases"][1]);
    assert_eq!(a["commit"], commit_a.as_str(), "{json:#}");
    assert_eq!(b["commit"], commit_b.as_str(), "{json:#}");
    let (head_a, head_b) = (
        a["migration_head"].as_str().unwrap().to_string(),
        b["migration_head"].as_str().unwrap().to_string(),
    );
    assert!(head_b > head_a, "{head_a} then {head_b}");
    assert_eq!(json["downgrade"], true);

    // Without --checkout the checkout stays; with it, the release's commit is checked out.
    let n = a["n"].as_u64().unwrap().to_string();
    let out = opsdeck(
        lab,
        home.path(),
        &[
            "-c",
            &config,
            "run",
            "course-supporter",
            "rollback",
            "--to",
            &n,
            "--checkout",
            "--yes",
        ],
    );
    assert!(out.status.success(), "{}", both(&out));
    assert_eq!(
        lab.image_of(&COURSE_SUPPORTER, "course-supporter-app"),
        image_a
    );
    assert_eq!(cs(lab, "git rev-parse HEAD"), commit_a);
    assert_eq!(exists(&first), "t");
    assert_eq!(
        exists(&second),
        "f",
        "the downgrade dropped the newer table"
    );
    let current = lab.ssh_ok(
        &COURSE_SUPPORTER,
        "docker exec course-supporter-app alembic current 2>/dev/null",
    );
    assert!(current.trim().starts_with(&head_a), "{current}");
    let err = text(&out.stderr);
    for want in [
        "undo migrations down to the release's head",
        "git checkout the release's commit",
        &format!("its migration head: {head_a}"),
    ] {
        assert!(err.contains(want), "{want}: {err}");
    }
    let json = releases_json(lab, home.path(), &config, "course-supporter");
    assert_eq!(json["releases"][0]["migration_head"], head_a.as_str());
    assert_eq!(json["releases"][0]["commit"], commit_a.as_str());
}
