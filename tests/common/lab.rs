//! The reference lab (tests/lab/) as seen from a test: where its inventory, key and
//! known_hosts are, the hosts it runs, and a strict `ssh` into them.
//!
//! A lab-backed test starts with `let Some(lab) = Lab::get() else { return };`: when the lab
//! is not up it prints `lab not up: skipped` and returns, unless `OPSDECK_REQUIRE_LAB=1`
//! (set by tests/run and so by CI), where it fails with the reason instead.

#![allow(dead_code)] // each test binary uses its own subset
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

/// One lab host: a reference deployment behind its own sshd and Docker engine.
#[derive(Debug, Clone, Copy)]
pub struct LabHost {
    /// The host's name in the generated inventory.
    pub name: &'static str,
    pub address: &'static str,
    pub user: &'static str,
    /// `project:service` pairs that must be running on this host's engine, and nothing else.
    pub services: &'static [&'static str],
}

pub const COURSE_SUPPORTER: LabHost = LabHost {
    name: "course-supporter",
    address: "127.0.0.11",
    user: "cs",
    services: &["course-supporter:app", "course-supporter:db", "proxy:nginx"],
};
pub const LILA: LabHost = LabHost {
    name: "lila",
    address: "127.0.0.12",
    user: "lila",
    services: &["lila:caddy", "lila:api", "lila:web", "lila:database"],
};
pub const DUCKDB_APP: LabHost = LabHost {
    name: "duckdb-app",
    address: "127.0.0.13",
    user: "duck",
    services: &["app:backend", "app:frontend", "app:nginx"],
};
/// Configured in the inventory, but nothing listens there.
pub const DOWN: LabHost = LabHost {
    name: "down",
    address: "127.0.0.14",
    user: "deploy",
    services: &[],
};

pub const HOSTS: [LabHost; 3] = [COURSE_SUPPORTER, LILA, DUCKDB_APP];

/// The running lab's client side, from `tests/lab/lab env`.
#[derive(Debug, Clone)]
pub struct Lab {
    pub state: PathBuf,
    pub run: PathBuf,
    /// The generated inventory (`OPSDECK_CONFIG`).
    pub config: PathBuf,
    pub key: PathBuf,
    pub known_hosts: PathBuf,
    /// A lab ssh-agent holding `key` (`SSH_AUTH_SOCK`).
    pub agent_sock: PathBuf,
    /// Every export of `lab env`, to hand to an opsdeck child process.
    pub env: Vec<(String, String)>,
}

/// tests/lab/lab in this checkout.
pub fn lab_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lab/lab")
}

fn require_lab() -> bool {
    std::env::var("OPSDECK_REQUIRE_LAB").is_ok_and(|v| v == "1")
}

impl Lab {
    /// The lab when it is up. Otherwise: `None` after printing `lab not up: skipped`, or a
    /// panic with the reason when `OPSDECK_REQUIRE_LAB=1`.
    pub fn get() -> Option<&'static Lab> {
        static LAB: OnceLock<Result<Lab, String>> = OnceLock::new();
        match LAB.get_or_init(Lab::detect) {
            Ok(lab) => Some(lab),
            Err(reason) if require_lab() => {
                panic!(
                    "OPSDECK_REQUIRE_LAB=1 but the lab is not up: {reason}\n(run: sudo tests/lab/lab up)"
                )
            }
            Err(reason) => {
                eprintln!("lab not up: skipped ({reason})");
                None
            }
        }
    }

    fn detect() -> Result<Lab, String> {
        let script = lab_script();
        // status first: `lab env` starts the lab's ssh-agent, which a lab that is down
        // should not be left with. A container the test binary before restarted may still
        // be starting (its health check not yet passed): that settles, so it is waited
        // for, two minutes at most; anything else that is not up fails at once.
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let status = Command::new(&script)
                .args(["status", "-q"])
                .output()
                .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
            if status.status.success() {
                break;
            }
            let detail = Command::new(&script)
                .arg("status")
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default();
            let settling = detail.contains("not running/healthy")
                && !detail.contains(" DOWN")
                && !detail.contains("missing");
            if !settling || Instant::now() >= deadline {
                return Err(format!("`lab status` says not fully up:\n{detail}"));
            }
            thread::sleep(Duration::from_secs(1));
        }
        let out = Command::new(&script)
            .arg("env")
            .output()
            .map_err(|e| format!("cannot run `lab env`: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "`lab env` failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        let env = parse_exports(&String::from_utf8_lossy(&out.stdout));
        let map: HashMap<_, _> = env.iter().cloned().collect();
        let path = |k: &str| {
            map.get(k)
                .map(PathBuf::from)
                .ok_or_else(|| format!("`lab env` did not export {k}"))
        };
        Ok(Lab {
            state: path("OPSDECK_LAB_STATE")?,
            run: path("OPSDECK_LAB_RUN")?,
            config: path("OPSDECK_CONFIG")?,
            key: path("OPSDECK_LAB_KEY")?,
            known_hosts: path("OPSDECK_LAB_KNOWN_HOSTS")?,
            agent_sock: path("SSH_AUTH_SOCK")?,
            env,
        })
    }

    /// An ssh_config naming the three lab hosts and the down one by their inventory
    /// names, with the lab's key and known_hosts (for `opsdeck init` and the first run).
    pub fn ssh_config(&self) -> String {
        format!(
            "Host course-supporter\n  HostName 127.0.0.11\n  User cs\n\
             Host lila\n  HostName 127.0.0.12\n  User lila\n\
             Host duckdb-app\n  HostName 127.0.0.13\n  User duck\n\
             Host down\n  HostName 127.0.0.14\n  User deploy\n\
             Host *\n  IdentityFile {}\n  UserKnownHostsFile {}\n",
            self.key.display(),
            self.known_hosts.display()
        )
    }

    /// The Docker engine socket of the lab host at `host`'s address (its `docker_socket`
    /// in the inventory; a test may name a lab host otherwise in its inventory).
    pub fn docker_socket(&self, host: &LabHost) -> PathBuf {
        let name = [COURSE_SUPPORTER, LILA, DUCKDB_APP]
            .iter()
            .find(|h| h.address == host.address)
            .map_or(host.name, |h| h.name);
        self.run.join(name).join("docker.sock")
    }

    /// `ssh` with strict host key checking against the lab's known_hosts, the lab key only,
    /// no agent, no user ssh config, no prompts; add options, then the destination.
    pub fn ssh_base(&self) -> Command {
        let mut cmd = Command::new("ssh");
        cmd.args([
            "-F",
            "none",
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=yes",
        ])
        .arg("-o")
        .arg(format!("UserKnownHostsFile={}", self.known_hosts.display()))
        .args([
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "ConnectTimeout=5",
            "-o",
            "LogLevel=ERROR",
        ])
        .arg("-i")
        .arg(&self.key)
        .env_remove("SSH_AUTH_SOCK");
        cmd
    }

    /// `user@address` of a host.
    pub fn destination(host: &LabHost) -> String {
        format!("{}@{}", host.user, host.address)
    }

    /// [`Lab::ssh_base`] running one remote command on a host.
    pub fn ssh_command(&self, host: &LabHost, remote: &str) -> Command {
        let mut cmd = self.ssh_base();
        cmd.arg(Self::destination(host)).arg(remote);
        cmd
    }

    pub fn ssh(&self, host: &LabHost, remote: &str) -> Output {
        self.ssh_command(host, remote)
            .output()
            .unwrap_or_else(|e| panic!("cannot run ssh to {}: {e}", host.name))
    }

    /// Stdout of a remote command that must succeed.
    pub fn ssh_ok(&self, host: &LabHost, remote: &str) -> String {
        let out = self.ssh(host, remote);
        assert!(
            out.status.success(),
            "ssh {}@{} {remote:?} failed ({}):\n{}",
            host.user,
            host.address,
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A container's hostname (its short id) as the host's engine says, asked over SSH.
    pub fn hostname_of(&self, host: &LabHost, container: &str) -> String {
        let out = self.ssh_ok(
            host,
            &format!(
                "DOCKER_HOST=unix://{} docker inspect -f '{{{{.Config.Hostname}}}}' {container}",
                self.docker_socket(host).display()
            ),
        );
        out.trim().to_string()
    }

    /// Run `tests/lab/lab <args>`; panics when it fails.
    pub fn lab(&self, args: &[&str]) -> String {
        let out = Command::new(lab_script())
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run lab {args:?}: {e}"));
        assert!(
            out.status.success(),
            "lab {args:?} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `docker ARGS` on a lab host's engine, from this machine (root reaches every engine).
    pub fn docker_out(&self, host: &LabHost, args: &[&str]) -> Output {
        Command::new("docker")
            .arg("-H")
            .arg(format!("unix://{}", self.docker_socket(host).display()))
            .args(args)
            .env("DOCKER_BUILDKIT", "0")
            .output()
            .unwrap_or_else(|e| panic!("docker {args:?}: {e}"))
    }

    /// [`Lab::docker_out`] that must succeed: its stdout, trimmed.
    pub fn docker(&self, host: &LabHost, args: &[&str]) -> String {
        let out = self.docker_out(host, args);
        assert!(
            out.status.success(),
            "docker {args:?} on {}: {}",
            host.name,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// The image ID a container runs.
    pub fn image_of(&self, host: &LabHost, container: &str) -> String {
        self.docker(host, &["inspect", "-f", "{{.Image}}", container])
    }

    /// `psql -Atq` in course-supporter's database: the answer, trimmed.
    pub fn cs_sql(&self, sql: &str) -> String {
        self.ssh_ok(
            &COURSE_SUPPORTER,
            &format!(
                "docker exec course-supporter-db psql -X -U postgres -d course_supporter -Atqc \"{sql}\""
            ),
        )
        .trim()
        .to_string()
    }

    /// The compose command line of a stack on its host, as an operator types it there.
    pub fn compose(host: &LabHost, stack: &str) -> String {
        match (host.name, stack) {
            ("course-supporter", "course-supporter") => "cd ~/course-supporter && docker-compose --env-file .env.prod -f docker-compose.prod.yml -p course-supporter".into(),
            ("course-supporter", "proxy") => "cd ~/proxy && docker-compose -p proxy".into(),
            ("lila", "lila") => "cd ~/lila && docker-compose -p lila".into(),
            ("duckdb-app", "app") => "cd ~/app && docker-compose -p app".into(),
            _ => panic!("no stack {stack} on {}", host.name),
        }
    }
}

/// `export K='V'` lines (as `lab env` prints them) into pairs.
pub fn parse_exports(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|line| line.trim().strip_prefix("export "))
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| {
            (
                k.trim().to_string(),
                v.trim().trim_matches('\'').trim_matches('"').to_string(),
            )
        })
        .collect()
}

/// Poll `probe` every `every` until it returns `Some`, for at most `limit`.
pub fn wait_for<T>(
    limit: Duration,
    every: Duration,
    mut probe: impl FnMut() -> Option<T>,
) -> Option<T> {
    let start = Instant::now();
    loop {
        if let Some(v) = probe() {
            return Some(v);
        }
        if start.elapsed() >= limit {
            return None;
        }
        thread::sleep(every);
    }
}
