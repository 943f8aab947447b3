//! A deploy's pre-flight against course-supporter for real: a dirty checkout refused with
//! the file named, "nothing new" when the checkout is level with its origin, a compose file
//! with a syntax error refused before any step runs, a backup directory on a nearly full
//! filesystem (a small tmpfs) warned about, another job's lock refused. Each test leaves
//! the host as it found it (guards restore on drop).
//!
//! Tests that touch course-supporter hold its lock here (`serial`), since cargo runs a
//! binary's tests in parallel.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;
mod support;

use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use common::lab::{COURSE_SUPPORTER, Lab, wait_for};
use common::run::{
    TestDir, audit, borrowed, both, host_inventory, lab_env, opsdeck, opsdeck_command, text,
};
use expectrl::WaitStatus;
use support::tui::Tui;

static CS: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    CS.lock().unwrap_or_else(|e| e.into_inner())
}

fn cs(lab: &Lab, cmd: &str) -> String {
    lab.ssh_ok(&COURSE_SUPPORTER, cmd).trim().to_string()
}

fn head(lab: &Lab) -> String {
    cs(lab, "cd ~/course-supporter && git rev-parse HEAD")
}

/// The app container's start time: a deploy that ran `compose up` changes it.
fn app_started(lab: &Lab) -> String {
    let out = Command::new("docker")
        .arg("-H")
        .arg(format!(
            "unix://{}",
            lab.docker_socket(&COURSE_SUPPORTER).display()
        ))
        .args([
            "inspect",
            "-f",
            "{{.State.StartedAt}}",
            "course-supporter-app",
        ])
        .output()
        .unwrap();
    text(&out.stdout).trim().to_string()
}

/// A test inventory of course-supporter with `body` (its stacks, and thresholds of its
/// own when the lab's do not fit the test).
fn inventory(home: &std::path::Path, lab: &Lab, body: &str) -> String {
    host_inventory(home, lab, &COURSE_SUPPORTER, body)
}

/// The lab's course-supporter recipe, for a stack of the test inventories.
const CS_DEPLOY: &str = r#"[host.stack.deploy]
steps = ["git pull --ff-only", "compose build", "compose up -d", "compose exec -T app alembic upgrade head", { wait_healthy = "2m" }]
"#;

/// A tracked file of the real checkout with a line appended; `git checkout` puts it back.
struct Modified<'a> {
    lab: &'a Lab,
    file: &'static str,
}

impl<'a> Modified<'a> {
    fn new(lab: &'a Lab, file: &'static str) -> Self {
        cs(
            lab,
            &format!("cd ~/course-supporter && echo '# opsdeck pre-flight test' >> {file}"),
        );
        Modified { lab, file }
    }
}

impl Drop for Modified<'_> {
    fn drop(&mut self) {
        let _ = self.lab.ssh(
            &COURSE_SUPPORTER,
            &format!("cd ~/course-supporter && git checkout -q -- {}", self.file),
        );
    }
}

/// A file on course-supporter, removed when dropped.
struct RemoteFile<'a> {
    lab: &'a Lab,
    path: String,
}

impl Drop for RemoteFile<'_> {
    fn drop(&mut self) {
        let _ = self
            .lab
            .ssh(&COURSE_SUPPORTER, &format!("rm -f {}", self.path));
    }
}

/// The lock and holder files a test project's jobs leave in opsdeck's state dir on
/// course-supporter, removed when dropped.
struct StateFiles<'a> {
    lab: &'a Lab,
    project: &'static str,
}

impl Drop for StateFiles<'_> {
    fn drop(&mut self) {
        let p = self.project;
        let _ = self.lab.ssh(
            &COURSE_SUPPORTER,
            &format!("cd .local/state/opsdeck && rm -f {p}.lock {p}.holder {p}.images"),
        );
    }
}

fn clean(lab: &Lab) -> bool {
    cs(
        lab,
        "cd ~/course-supporter && git status --porcelain --untracked-files=no",
    )
    .is_empty()
}

#[test]
fn a_dirty_checkout_is_refused_naming_the_file_and_nothing_runs() {
    let Some(lab) = Lab::get() else { return };
    let _g = serial();
    assert!(clean(lab), "the lab's checkout is dirty before the test");
    let home = tempfile::tempdir().unwrap();
    let config = lab.config.display().to_string();
    let (before, started) = (head(lab), app_started(lab));
    let file = "course_supporter/api.py";
    let modified = Modified::new(lab, file);

    let out = opsdeck(
        lab,
        home.path(),
        &[
            "-c",
            &config,
            "run",
            "course-supporter",
            "deploy",
            "--check",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains(&format!("REFUSE  checkout has changes: {file}")),
        "{}",
        both(&out)
    );
    // nothing else is wrong with the stack: the checkout is its only refusal
    assert_eq!(stdout.matches("REFUSE").count(), 1, "{stdout}");
    assert!(audit(home.path()).is_empty(), "a check is not a job");

    // the deploy itself stops at its pre-flight, under the lock, before any step
    let out = opsdeck(
        lab,
        home.path(),
        &["-c", &config, "run", "course-supporter", "deploy", "--yes"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    assert!(
        text(&out.stderr).contains(&format!(
            "refused: pre-flight: checkout has changes: {file}"
        )),
        "{}",
        both(&out)
    );
    let a = audit(home.path());
    assert_eq!(a.len(), 1);
    assert!(
        a[0]["outcome"]
            .as_str()
            .unwrap()
            .starts_with("refused: pre-flight: checkout has changes: course_supporter/api.py"),
        "{a:?}"
    );
    let steps: Vec<&str> = a[0]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(
        steps,
        [
            "refused", "skipped", "skipped", "skipped", "skipped", "skipped", "skipped"
        ]
    );
    assert_eq!(head(lab), before, "git pull ran");
    assert_eq!(app_started(lab), started, "compose up ran");
    drop(modified);
    assert!(clean(lab), "the test left the checkout dirty");
}

#[test]
fn a_checkout_level_with_its_origin_has_nothing_new_and_force_goes_on() {
    let Some(lab) = Lab::get() else { return };
    let _g = serial();
    let home = tempfile::tempdir().unwrap();
    // a clone of course-supporter's origin: level with it, unlike the lab's checkout
    let dir = TestDir::new(lab, COURSE_SUPPORTER, "pf-level");
    let _files = StateFiles {
        lab,
        project: "opsdeck-test-level",
    };
    dir.ssh_ok(&format!(
        "rmdir {0} && git clone -q \"$(git -C course-supporter remote get-url origin)\" {0}",
        dir.rel
    ));
    let origin = cs(
        lab,
        &format!("cd {} && git rev-parse --short HEAD", dir.rel),
    );
    let config = inventory(
        home.path(),
        lab,
        &format!(
            "[[host.stack]]\nname = \"level\"\ndir = \"~/{}\"\nproject = \"opsdeck-test-level\"\n[host.stack.deploy]\nsteps = [\"git pull --ff-only\", \"sh -c 'echo deployed > deployed.txt'\"]\n[[host.stack.action]]\nname = \"hold\"\nsteps = [\"sleep 30\"]\n",
            dir.rel
        ),
    );
    let check = |extra: &[&str]| {
        let mut args = vec!["-c", config.as_str(), "run", "course-supporter", "deploy"];
        args.extend_from_slice(extra);
        opsdeck(lab, home.path(), &args)
    };
    let out = check(&["--check"]);
    assert_eq!(out.status.code(), Some(1), "{}", both(&out));
    assert!(
        text(&out.stdout).contains(&format!(
            "warn    nothing new to deploy: level with origin/main at {origin}"
        )),
        "{}",
        both(&out)
    );
    // as JSON, for scripts
    let out = check(&["--check", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", both(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["verdict"], "warn");
    assert!(
        json["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["topic"] == "origin" && i["verdict"] == "warn"),
        "{json}"
    );
    // a warning stops a deploy that is not forced, before anything ran
    let out = check(&["--yes"]);
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    assert!(
        text(&out.stderr).contains("pre-flight warning (force to deploy anyway): nothing new"),
        "{}",
        both(&out)
    );
    assert!(!dir.files().contains(&"deployed.txt".to_string()));
    // --force goes on, and says so
    let out = check(&["--yes", "--force"]);
    assert!(out.status.success(), "{}", both(&out));
    assert!(
        text(&out.stderr).contains("going on (forced)"),
        "{}",
        both(&out)
    );
    assert!(dir.files().contains(&"deployed.txt".to_string()));
    // one commit behind: something to deploy, nothing to warn about
    dir.ssh_ok(&format!("cd {} && git reset -q --hard HEAD~1", dir.rel));
    let out = check(&["--check"]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    assert!(
        text(&out.stdout).contains(&format!(
            "ok      1 commit behind origin/main: 1 commit to deploy, up to {origin} "
        )),
        "{}",
        both(&out)
    );
    // another job holding the stack's lock is a refusal
    let mut holder = opsdeck_command(
        lab,
        home.path(),
        &["-c", &config, "run", "course-supporter", "hold"],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let refused = wait_for(Duration::from_secs(20), Duration::from_millis(300), || {
        let out = check(&["--check"]);
        (out.status.code() == Some(2)).then_some(out)
    });
    let _ = holder.kill();
    let _ = holder.wait();
    let out = refused.expect("the lock was never seen held");
    assert!(
        text(&out.stdout).contains("REFUSE  another job holds the stack's lock: tester@"),
        "{}",
        both(&out)
    );
}

#[test]
fn a_compose_file_with_a_syntax_error_is_refused_before_any_step() {
    let Some(lab) = Lab::get() else { return };
    let _g = serial();
    let home = tempfile::tempdir().unwrap();
    // a copy of the stack's compose file, broken, beside it (untracked: the checkout
    // stays clean)
    let broken = RemoteFile {
        lab,
        path: "course-supporter/opsdeck-test-broken.yml".into(),
    };
    let _files = StateFiles {
        lab,
        project: "opsdeck-test-broken",
    };
    cs(
        lab,
        &format!(
            "cp course-supporter/docker-compose.prod.yml {0} && printf '  oops: [unclosed\\n' >> {0}",
            broken.path
        ),
    );
    let config = inventory(
        home.path(),
        lab,
        &format!(
            "[[host.stack]]\nname = \"broken\"\ndir = \"~/course-supporter\"\ncompose_files = [\"opsdeck-test-broken.yml\"]\nenv_file = \".env.prod\"\nproject = \"opsdeck-test-broken\"\ncompose = \"docker-compose\"\n{CS_DEPLOY}"
        ),
    );
    let (before, started) = (head(lab), app_started(lab));
    let out = opsdeck(
        lab,
        home.path(),
        &[
            "-c",
            &config,
            "run",
            "course-supporter",
            "deploy",
            "--check",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    let stdout = text(&out.stdout);
    let line = stdout
        .lines()
        .find(|l| l.contains("compose config failed: "))
        .unwrap_or_else(|| panic!("{}", both(&out)));
    assert!(line.trim_start().starts_with("REFUSE"), "{line}");
    assert!(line.to_lowercase().contains("yaml"), "{line}");

    let out = opsdeck(
        lab,
        home.path(),
        &["-c", &config, "run", "course-supporter", "deploy", "--yes"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    assert!(
        text(&out.stderr).contains("refused: pre-flight: compose config failed: "),
        "{}",
        both(&out)
    );
    assert!(
        !text(&out.stderr).contains("==> [2/"),
        "a step ran: {}",
        both(&out)
    );
    let a = audit(home.path());
    assert_eq!(a[0]["steps"][0]["outcome"], "refused", "{a:?}");
    assert!(
        a[0]["steps"].as_array().unwrap()[1..]
            .iter()
            .all(|s| s["outcome"] == "skipped"),
        "{a:?}"
    );
    assert_eq!(head(lab), before, "git pull ran");
    assert_eq!(app_started(lab), started, "compose up ran");
    drop(broken);
    assert!(
        !cs(lab, "ls course-supporter").contains("opsdeck-test-broken"),
        "the broken copy is left"
    );
}

/// A small tmpfs mounted in course-supporter's home (this machine is the lab host, and
/// root), owned by `cs`, filled to the brim but a few KiB; unmounted and removed on drop.
struct Tmpfs {
    path: std::path::PathBuf,
}

impl Tmpfs {
    fn nearly_full(lab: &Lab, name: &str) -> Self {
        let path = lab.state.join("home/cs").join(name);
        let run = |args: &[&str]| {
            let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
            assert!(out.status.success(), "{args:?}: {}", both(&out));
            text(&out.stdout).trim().to_string()
        };
        let _ = Command::new("umount").arg(&path).output();
        std::fs::create_dir_all(&path).unwrap();
        let t = Tmpfs { path };
        let p = t.path.display().to_string();
        let (uid, gid) = (run(&["id", "-u", "cs"]), run(&["id", "-g", "cs"]));
        run(&[
            "mount",
            "-t",
            "tmpfs",
            "-o",
            &format!("size=1m,mode=0755,uid={uid},gid={gid}"),
            "opsdeck-test-full",
            &p,
        ]);
        run(&[
            "dd",
            "if=/dev/zero",
            &format!("of={p}/filler"),
            "bs=1k",
            "count=1000",
        ]);
        t
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.path).output();
        let _ = std::fs::remove_dir(&self.path);
    }
}

#[test]
fn a_backup_directory_on_a_nearly_full_filesystem_is_a_warning() {
    let Some(lab) = Lab::get() else { return };
    let _g = serial();
    let home = tempfile::tempdir().unwrap();
    let full = Tmpfs::nearly_full(lab, "opsdeck-test-full");
    // Use at or above 95 % warns: the tmpfs is at ~98 %; the lab's own disk, this
    // machine's, is not judged by the lab's 100 % here but it stays a separate item.
    let config = inventory(
        home.path(),
        lab,
        &format!(
            "thresholds = {{ disk_warn = 95 }}\n\n[[host.stack]]\nname = \"full\"\ndir = \"~/course-supporter\"\ncompose_files = [\"docker-compose.prod.yml\"]\nenv_file = \".env.prod\"\nproject = \"opsdeck-test-full\"\ncompose = \"docker-compose\"\n{CS_DEPLOY}\n[[host.stack.backup]]\nname = \"dumps\"\ndir = \"~/opsdeck-test-full\"\nglob = \"dump-*.sql\"\nmax_age = \"1d\"\n"
        ),
    );
    let out = opsdeck(
        lab,
        home.path(),
        &[
            "-c",
            &config,
            "run",
            "course-supporter",
            "deploy",
            "--check",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", both(&out));
    let stdout = text(&out.stdout);
    let line = stdout
        .lines()
        .find(|l| l.contains("~/opsdeck-test-full: "))
        .unwrap_or_else(|| panic!("{}", both(&out)));
    assert!(line.trim_start().starts_with("warn"), "{line}");
    assert!(line.ends_with("under 5 % free"), "{line}");
    assert!(
        line.contains(&format!("on {}", full.path.display())),
        "{line}"
    );
    drop(full);
    assert!(
        !lab.state.join("home/cs/opsdeck-test-full").exists(),
        "the tmpfs is left"
    );
}

#[test]
fn the_console_shows_the_preflight_refuses_a_dirty_checkout_and_goes_on_when_force_is_typed() {
    let Some(lab) = Lab::get() else { return };
    let _g = serial();
    let home = tempfile::tempdir().unwrap();
    let dir = TestDir::new(lab, COURSE_SUPPORTER, "pf-console");
    let _files = StateFiles {
        lab,
        project: "opsdeck-test-console",
    };
    dir.ssh_ok(&format!(
        "rmdir {0} && git clone -q \"$(git -C course-supporter remote get-url origin)\" {0} && echo '# changed' >> {0}/alembic.ini",
        dir.rel
    ));
    let config = inventory(
        home.path(),
        lab,
        &format!(
            "[[host.stack]]\nname = \"level\"\ndir = \"~/{}\"\nproject = \"opsdeck-test-console\"\n[host.stack.deploy]\nsteps = [\"git pull --ff-only\", \"sh -c 'echo deployed > deployed.txt'\"]\n",
            dir.rel
        ),
    );
    let mut env = lab_env(lab, &config);
    env.push((
        "XDG_STATE_HOME".into(),
        Some(home.path().join("state").display().to_string()),
    ));
    let mut tui = Tui::start_sized(home.path(), &[], &borrowed(&env), 100, 36);
    tui.wait_for("course-supporter's containers", |s| {
        s.contains("fleet › course-supporter") && s.contains("course-supporter 2/2 running")
    });
    // a dirty checkout: the report refuses, and nothing can confirm it
    tui.send("d");
    let screen = tui.wait_for_within(Duration::from_secs(60), "the refusal", |s| {
        s.contains("✖ checkout has changes: alembic.ini")
    });
    assert!(
        screen.contains("Esc close: the pre-flight refuses this deploy"),
        "{screen}"
    );
    tui.send("y");
    tui.wait_for("the refusal said", |s| {
        s.contains("refused by the pre-flight")
    });
    tui.send("\u{1b}");
    // clean again, level with origin: a warning, and `force` typed goes on
    dir.ssh_ok(&format!("cd {} && git checkout -q -- alembic.ini", dir.rel));
    tui.send("d");
    tui.wait_for_within(Duration::from_secs(60), "the warning", |s| {
        s.contains("! nothing new to deploy: level with origin/main")
            && s.contains("Type force and press ⏎")
    });
    tui.send("y\r");
    tui.wait_for("the wrong word refused", |s| {
        s.contains("type \"force\" exactly")
    });
    tui.send("\u{7f}force\r");
    let screen = tui.wait_for_within(Duration::from_secs(60), "the deploy done", |s| {
        s.contains("deploy on course-supporter") && s.contains("· done")
    });
    assert!(screen.contains("going on (forced)"), "{screen}");
    tui.send("q");
    assert!(matches!(tui.finish(), WaitStatus::Exited(_, 0)));
    assert!(dir.files().contains(&"deployed.txt".to_string()));
    let a = audit(home.path());
    let outcomes: Vec<&str> = a.iter().map(|r| r["outcome"].as_str().unwrap()).collect();
    assert_eq!(
        outcomes,
        ["ok"],
        "a refused confirmation runs no job: {a:?}"
    );
}
