//! The reference lab has the shape the other tests rely on: three hosts reachable over real
//! SSH with strict host key checking, each running exactly its stack on its own engine, the
//! unhealthy switch, the backups with their intended ages, working pg_dump, a down host.
//!
//! Needs `sudo tests/lab/lab up`; skipped when the lab is not up, unless
//! OPSDECK_REQUIRE_LAB=1 (then it fails).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::lab::{COURSE_SUPPORTER, DOWN, DUCKDB_APP, HOSTS, LILA, Lab, LabHost, wait_for};

#[test]
fn each_host_runs_exactly_its_stack_on_its_own_engine() {
    let Some(lab) = Lab::get() else { return };
    let mut engine_ids = BTreeSet::new();
    for host in HOSTS {
        let out = lab.ssh_ok(
            &host,
            r#"echo "$DOCKER_HOST"; docker info --format '{{.DockerRootDir}}'; docker ps -a --format '{{.Label "opsdeck.keep"}}|{{.Label "com.docker.compose.project"}}:{{.Label "com.docker.compose.service"}} {{.State}}'"#,
        );
        let mut lines = out.lines();
        let docker_host = lines.next().unwrap_or_default();
        assert_eq!(
            docker_host,
            format!("unix://{}", lab.docker_socket(&host).display()),
            "{}: DOCKER_HOST in a non-interactive ssh session",
            host.name
        );
        engine_ids.insert(lines.next().unwrap_or_default().to_string());
        // opsdeck's never-started keepers of kept releases' images are not the stack's
        let containers: Vec<&str> = lines
            .filter_map(|l| l.split_once('|'))
            .filter(|(keep, _)| keep.is_empty())
            .map(|(_, rest)| rest)
            .collect();
        let running: BTreeSet<&str> = containers
            .iter()
            .filter_map(|l| l.strip_suffix(" running"))
            .collect();
        let expected: BTreeSet<&str> = host.services.iter().copied().collect();
        assert_eq!(
            running, expected,
            "{}: running services (all containers: {containers:?})",
            host.name
        );
        assert_eq!(
            containers.len(),
            expected.len(),
            "{}: containers other than the stack's: {containers:?}",
            host.name
        );
    }
    assert_eq!(
        engine_ids.len(),
        3,
        "each host has its own Docker engine (data root): {engine_ids:?}"
    );
}

#[test]
fn a_host_user_cannot_reach_another_hosts_engine() {
    let Some(lab) = Lab::get() else { return };
    let other = lab.docker_socket(&LILA);
    let out = lab.ssh(
        &COURSE_SUPPORTER,
        &format!("docker -H unix://{} ps", other.display()),
    );
    assert!(
        !out.status.success(),
        "cs reached lila's engine: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn strict_host_key_checking_uses_the_lab_known_hosts() {
    let Some(lab) = Lab::get() else { return };
    let known = std::fs::read_to_string(&lab.known_hosts).expect("read the lab known_hosts");
    assert_eq!(known.lines().count(), 3, "one entry per lab host:\n{known}");
    assert!(
        known.lines().all(|l| l.starts_with("|1|")),
        "entries are hashed:\n{known}"
    );
    let empty = tempfile::NamedTempFile::new().expect("temp file");
    // ... and without it, strict checking refuses the very same host
    let out = std::process::Command::new("ssh")
        .args([
            "-F",
            "none",
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=yes",
        ])
        .args(["-o", "IdentitiesOnly=yes"])
        .arg("-o")
        .arg(format!("UserKnownHostsFile={}", empty.path().display()))
        .arg("-i")
        .arg(&lab.key)
        .arg(format!("{}@{}", LILA.user, LILA.address))
        .arg("true")
        .output()
        .expect("run ssh");
    assert!(!out.status.success(), "ssh accepted an unknown host key");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Host key verification failed"),
        "unexpected refusal: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // the lab agent holds the key
    let agent = std::process::Command::new("ssh-add")
        .arg("-l")
        .env("SSH_AUTH_SOCK", &lab.agent_sock)
        .output()
        .expect("run ssh-add");
    assert!(agent.status.success(), "the lab ssh-agent holds no key");
    assert!(
        lab.config.is_file(),
        "the generated inventory {} exists",
        lab.config.display()
    );
}

#[test]
fn each_engine_answers_through_a_forwarded_ssh_socket() {
    let Some(lab) = Lab::get() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    for host in HOSTS {
        let local = dir.path().join(format!("{}.sock", host.name));
        let mut tunnel = lab
            .ssh_base()
            .args(["-N", "-o", "ExitOnForwardFailure=yes", "-L"])
            .arg(format!(
                "{}:{}",
                local.display(),
                lab.docker_socket(&host).display()
            ))
            .arg(Lab::destination(&host))
            .spawn()
            .expect("start ssh -L");
        let ready = wait_for(Duration::from_secs(10), Duration::from_millis(100), || {
            local.exists().then_some(())
        });
        let version = ready.map(|()| {
            std::process::Command::new("curl")
                .args(["-fsS", "--max-time", "5", "--unix-socket"])
                .arg(&local)
                .arg("http://docker/version")
                .output()
                .expect("run curl")
        });
        let _ = tunnel.kill();
        let _ = tunnel.wait();
        let version = version.unwrap_or_else(|| panic!("{}: no forwarded socket", host.name));
        let body = String::from_utf8_lossy(&version.stdout);
        assert!(
            version.status.success() && body.contains("\"ApiVersion\":\"1.41\""),
            "{}: Docker API through ssh -L: {body} {}",
            host.name,
            String::from_utf8_lossy(&version.stderr)
        );
    }
}

#[test]
fn app_logs_have_colour_on_stdout_and_lines_on_stderr() {
    let Some(lab) = Lab::get() else { return };
    for (host, service) in [
        (COURSE_SUPPORTER, "app"),
        (LILA, "api"),
        (DUCKDB_APP, "backend"),
    ] {
        let id = format!("$(docker ps -q -f label=com.docker.compose.service={service})");
        let out = lab.ssh_ok(
            &host,
            &format!(
                "docker logs {id} 2>/dev/null | grep -c \"$(printf '\\033')\\[\" ; \
                 docker logs {id} 2>&1 >/dev/null | wc -l"
            ),
        );
        let counts: Vec<u64> = out
            .split_whitespace()
            .filter_map(|n| n.parse().ok())
            .collect();
        assert!(
            counts.len() == 2 && counts[0] > 0 && counts[1] > 0,
            "{} {service}: [coloured stdout lines, stderr lines] = {counts:?}",
            host.name
        );
    }
}

#[test]
fn the_down_host_refuses_connections() {
    let Some(lab) = Lab::get() else { return };
    let out = lab.ssh(&DOWN, "true");
    assert_eq!(out.status.code(), Some(255), "ssh to the down host");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Connection refused"), "down host: {err}");
}

fn api_health(lab: &Lab) -> String {
    let out = lab.ssh_ok(
        &LILA,
        "docker inspect -f '{{.State.Health.Status}}' $(docker ps -q -f label=com.docker.compose.service=api); \
         curl -s -o /dev/null -w '%{http_code}\\n' http://127.0.0.12/api/health",
    );
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Switches lila's api back to healthy even when an assertion fails half-way.
struct SwitchOff<'a>(&'a Lab);
impl Drop for SwitchOff<'_> {
    fn drop(&mut self) {
        self.0.lab(&["unhealthy", "off"]);
    }
}

#[test]
fn the_unhealthy_switch_flips_lila_api_health_and_back() {
    let Some(lab) = Lab::get() else { return };
    let limit = Duration::from_secs(30);
    let every = Duration::from_millis(500);
    assert_eq!(api_health(lab), "healthy 200", "lila api before the switch");
    let guard = SwitchOff(lab);
    lab.lab(&["unhealthy", "on"]);
    let seen = wait_for(limit, every, || {
        Some(api_health(lab)).filter(|s| s == "unhealthy 503")
    });
    assert!(
        seen.is_some(),
        "lila api did not turn unhealthy within {limit:?}: {}",
        api_health(lab)
    );
    drop(guard);
    let seen = wait_for(limit, every, || {
        Some(api_health(lab)).filter(|s| s == "healthy 200")
    });
    assert!(
        seen.is_some(),
        "lila api did not recover within {limit:?}: {}",
        api_health(lab)
    );
}

/// (name, age in hours, size in bytes) of the files under a directory on a host.
fn backups(lab: &Lab, host: &LabHost, dir: &str) -> Vec<(String, f64, u64)> {
    let out = lab.ssh_ok(
        host,
        &format!("date +%s; find {dir} -maxdepth 1 -type f -printf '%f %T@ %s\\n' | sort"),
    );
    let mut lines = out.lines();
    let now: f64 = lines
        .next()
        .and_then(|l| l.trim().parse().ok())
        .expect("remote date");
    lines
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let mtime: f64 = f[1].parse().expect("mtime");
            (
                f[0].to_string(),
                (now - mtime) / 3600.0,
                f[2].parse().expect("size"),
            )
        })
        .collect()
}

fn newest_first(mut files: Vec<(String, f64, u64)>) -> Vec<(String, f64, u64)> {
    files.sort_by(|a, b| a.1.total_cmp(&b.1));
    files
}

#[test]
fn backups_exist_with_their_intended_ages() {
    let Some(lab) = Lab::get() else { return };

    // course-supporter db: pg_dump -Fc files, newest 2-3 days old -> stale under max_age 26h
    let db = newest_first(backups(
        lab,
        &COURSE_SUPPORTER,
        "~/backups/course-supporter",
    ));
    assert!(db.len() >= 5, "course-supporter dumps: {db:?}");
    assert!(
        db.iter()
            .all(|(n, _, s)| n.starts_with("course-supporter-") && n.ends_with(".dump") && *s > 0),
        "{db:?}"
    );
    assert!(
        (48.0..96.0).contains(&db[0].1),
        "newest course-supporter dump should be 2-3 days old: {db:?}"
    );
    let magic = lab.ssh_ok(
        &COURSE_SUPPORTER,
        "for f in ~/backups/course-supporter/*.dump; do head -c5 \"$f\"; echo; done",
    );
    assert!(
        magic.lines().all(|l| l == "PGDMP"),
        "custom-format dumps start with PGDMP: {magic:?}"
    );

    // course-supporter uploads: fresh, but the newest is far smaller than the one before
    let up = newest_first(backups(lab, &COURSE_SUPPORTER, "~/backups/uploads"));
    assert!(up.len() >= 2, "uploads: {up:?}");
    assert!(up[0].1 < 26.0, "newest upload archive is fresh: {up:?}");
    assert!(
        up[0].2 * 2 < up[1].2,
        "newest upload archive is less than half the previous one: {up:?}"
    );

    // lila: daily gzipped SQL dumps over 7 days, the newest a few hours old -> fresh
    let lila = newest_first(backups(lab, &LILA, "~/backups"));
    assert!(lila.len() >= 7, "lila dumps: {lila:?}");
    assert!(
        lila.iter()
            .all(|(n, _, _)| n.starts_with("lila-") && n.ends_with(".sql.gz")),
        "{lila:?}"
    );
    assert!(
        lila[0].1 < 12.0,
        "newest lila dump is a few hours old: {lila:?}"
    );
    assert!(
        lila.iter().filter(|f| f.1 > 24.0).count() >= 5,
        "several lila dumps older than a day: {lila:?}"
    );
    let oldest = lila.last().map(|f| f.1).unwrap_or_default();
    assert!(
        (120.0..7.0 * 24.0 + 12.0).contains(&oldest),
        "lila dumps spread over 7 days: {lila:?}"
    );
    lab.ssh_ok(
        &LILA,
        "for f in ~/backups/lila-*.sql.gz; do gzip -t \"$f\" || exit 1; done",
    );

    // duckdb-app: nothing yet -> missing
    let duck = backups(lab, &DUCKDB_APP, "~/backups");
    assert!(duck.is_empty(), "duckdb-app ~/backups is empty: {duck:?}");
    let db_file = lab.ssh_ok(&DUCKDB_APP, "stat -c '%U %s' ~/app/data/app.db");
    assert!(
        db_file.starts_with("duck "),
        "data/app.db written by the backend as the host user: {db_file}"
    );
}

#[test]
fn pg_dump_succeeds_inside_each_database_container() {
    let Some(lab) = Lab::get() else { return };
    let cs = lab.ssh_ok(
        &COURSE_SUPPORTER,
        &format!(
            "{} exec -T db pg_dump -U postgres course_supporter",
            Lab::compose(&COURSE_SUPPORTER, "course-supporter")
        ),
    );
    assert!(
        cs.contains("CREATE TABLE public.courses"),
        "course-supporter dump has the schema"
    );
    assert!(cs.contains("vector(3)"), "course-supporter uses pgvector");
    assert!(
        cs.contains("PostgreSQL database dump complete"),
        "course-supporter dump is complete"
    );

    let lila = lab.ssh_ok(
        &LILA,
        &format!(
            "{} exec -T database pg_dump -U postgres lila",
            Lab::compose(&LILA, "lila")
        ),
    );
    assert!(
        lila.contains("__drizzle_migrations"),
        "lila's api ran its migrations at start"
    );
    assert!(
        lila.contains("PostgreSQL database dump complete"),
        "lila dump is complete"
    );
}

#[test]
fn course_supporter_compose_needs_its_env_file_and_deploys_from_a_local_origin() {
    let Some(lab) = Lab::get() else { return };
    let without = lab.ssh(
        &COURSE_SUPPORTER,
        "cd ~/course-supporter && docker-compose -f docker-compose.prod.yml config -q",
    );
    assert!(
        !without.status.success(),
        "compose must fail without --env-file .env.prod"
    );
    assert!(String::from_utf8_lossy(&without.stderr).contains("--env-file .env.prod"));
    lab.ssh_ok(
        &COURSE_SUPPORTER,
        &format!(
            "{} config -q",
            Lab::compose(&COURSE_SUPPORTER, "course-supporter")
        ),
    );

    let origin = lab.ssh_ok(
        &COURSE_SUPPORTER,
        "cd ~/course-supporter && git remote get-url origin && git ls-remote origin main",
    );
    let mut lines = origin.lines();
    assert_eq!(
        lines.next(),
        Some(
            lab.state
                .join("git/course-supporter.git")
                .to_string_lossy()
                .as_ref()
        ),
        "origin is the lab's bare repo"
    );
    assert!(
        lines.next().is_some_and(|l| l.ends_with("refs/heads/main")),
        "origin has main: {origin}"
    );
}

#[test]
fn the_generated_inventory_passes_config_check() {
    let Some(lab) = Lab::get() else { return };
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_opsdeck"))
        .args(["config", "check"])
        .arg(&lab.config)
        .output()
        .expect("run opsdeck config check");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "opsdeck config check {}:\n{text}{}",
        lab.config.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("OK: 4 hosts"), "{text}");
}
