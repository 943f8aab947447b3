//! `opsdeck` as a command against the lab, for the tests of headless jobs: a clean home
//! per test (its audit log in `state/`), an inventory of one lab host, and a scratch
//! directory on a host that goes away with the test.

#![allow(dead_code)] // each test binary uses its own subset
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

use super::lab::{Lab, LabHost};

/// The binary with the lab's environment, `home` as HOME and its state dir, user
/// `tester`, no stdin (so nothing can ask for a confirmation).
pub fn opsdeck_command(lab: &Lab, home: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_opsdeck"));
    cmd.args(args)
        .current_dir(home)
        .env("HOME", home)
        .env("XDG_STATE_HOME", home.join("state"))
        .env("USER", "tester")
        .stdin(Stdio::null());
    for (k, v) in &lab.env {
        cmd.env(k, v);
    }
    cmd
}

pub fn opsdeck(lab: &Lab, home: &Path, args: &[&str]) -> Output {
    opsdeck_command(lab, home, args).output().unwrap()
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Stdout then stderr, for assertion messages.
pub fn both(out: &Output) -> String {
    format!("{}{}", text(&out.stdout), text(&out.stderr))
}

/// The audit log of a test's home, one JSON value per line.
pub fn audit(home: &Path) -> Vec<Value> {
    std::fs::read_to_string(home.join("state/opsdeck/audit.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// `home/hosts.toml` with one lab host (its address, user, key, known_hosts and engine)
/// followed by `body` (its stacks); returns the path. Its disk thresholds are the lab
/// inventory's (only a full disk counts): the lab hosts share this machine's disk, and a
/// deploy's pre-flight must not warn about the machine's own fill (a `thresholds` line at
/// the top of `body` overrides them for the host).
pub fn host_inventory(home: &Path, lab: &Lab, h: &LabHost, body: &str) -> String {
    hosts_inventory(home, lab, &[(h, body)])
}

/// `home/hosts.toml` with several lab hosts, in this order, each followed by its `body`
/// (its stacks, and any host keys such as `production = true` first); returns the path.
pub fn hosts_inventory(home: &Path, lab: &Lab, hosts: &[(&LabHost, &str)]) -> String {
    let path = home.join("hosts.toml");
    let mut text = format!(
        "[settings]\nknown_hosts = \"{}\"\nthresholds = {{ disk_warn = 100, disk_crit = 100 }}\n",
        lab.known_hosts.display()
    );
    for (h, body) in hosts {
        text.push_str(&format!(
            "\n[[host]]\nname = \"{}\"\naddress = \"{}\"\nuser = \"{}\"\nidentity_file = \"{}\"\ndocker_socket = \"{}\"\n{body}\n",
            h.name,
            h.address,
            h.user,
            lab.key.display(),
            lab.docker_socket(h).display()
        ));
    }
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// `~/opsdeck-test/<name>` on a host, emptied now and removed when dropped.
pub struct TestDir<'a> {
    lab: &'a Lab,
    host: LabHost,
    /// Relative to the home directory, as remote commands see it.
    pub rel: String,
}

impl<'a> TestDir<'a> {
    pub fn new(lab: &'a Lab, host: LabHost, name: &str) -> Self {
        let rel = format!("opsdeck-test/{name}");
        lab.ssh_ok(&host, &format!("rm -rf {rel} && mkdir -p {rel}"));
        TestDir { lab, host, rel }
    }

    /// Every file in the directory, dot files included, sorted.
    pub fn files(&self) -> Vec<String> {
        let out = self.lab.ssh_ok(
            &self.host,
            &format!("ls -A {} 2>/dev/null || true", self.rel),
        );
        let mut v: Vec<String> = out.lines().map(str::to_string).collect();
        v.sort();
        v
    }

    pub fn ssh_ok(&self, cmd: &str) -> String {
        self.lab.ssh_ok(&self.host, cmd)
    }
}

impl Drop for TestDir<'_> {
    fn drop(&mut self) {
        let _ = self.lab.ssh(&self.host, &format!("rm -rf {}", self.rel));
        let _ = self
            .lab
            .ssh(&self.host, "rmdir opsdeck-test 2>/dev/null; true");
    }
}

/// The lab's environment for the console, with `config` as its inventory (for
/// `Tui::start_sized`, whose `env` borrows: see [`borrowed`]).
pub fn lab_env(lab: &Lab, config: &str) -> Vec<(String, Option<String>)> {
    let mut env: Vec<(String, Option<String>)> = lab
        .env
        .iter()
        .filter(|(k, _)| k != "OPSDECK_CONFIG")
        .map(|(k, v)| (k.clone(), Some(v.clone())))
        .collect();
    env.push(("OPSDECK_CONFIG".into(), Some(config.into())));
    env
}

/// `env` as the `(&str, Option<&str>)` pairs the PTY harness takes.
pub fn borrowed(env: &[(String, Option<String>)]) -> Vec<(&str, Option<&str>)> {
    env.iter()
        .map(|(k, v)| (k.as_str(), v.as_deref()))
        .collect()
}

/// A container on a lab host's engine (`sh -c SCRIPT` in the lab's base image, labelled
/// `opsdeck.test=1` so `tests/run` sweeps up what a killed test leaves), removed when
/// dropped.
pub struct TestContainer {
    lab: &'static Lab,
    host: LabHost,
    name: String,
}

impl TestContainer {
    pub fn run(lab: &'static Lab, host: LabHost, name: &str, script: &str) -> Self {
        Self::run_with(lab, host, name, &[], &[], script)
    }

    /// With `docker run` options and labels.
    pub fn run_with(
        lab: &'static Lab,
        host: LabHost,
        name: &str,
        options: &[&str],
        labels: &[(&str, &str)],
        script: &str,
    ) -> Self {
        let c = TestContainer {
            lab,
            host,
            name: name.to_string(),
        };
        let _ = c.docker(&["rm", "-f", name]);
        let mut args: Vec<String> = vec![
            "run".into(),
            "-d".into(),
            "--name".into(),
            name.into(),
            "--label".into(),
            "opsdeck.test=1".into(),
        ];
        args.extend(options.iter().map(|o| o.to_string()));
        for (k, v) in labels {
            args.push("--label".into());
            args.push(format!("{k}={v}"));
        }
        args.extend(["opsdeck-lab/base:latest".into(), "sh".into(), "-c".into()]);
        args.push(script.into());
        let out = c.docker(&args.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(out.status.success(), "docker run: {}", both(&out));
        c
    }

    /// `docker ARGS` against the container's engine.
    pub fn docker(&self, args: &[&str]) -> Output {
        Command::new("docker")
            .env(
                "DOCKER_HOST",
                format!("unix://{}", self.lab.docker_socket(&self.host).display()),
            )
            .args(args)
            .output()
            .unwrap()
    }
}

impl Drop for TestContainer {
    fn drop(&mut self) {
        let _ = self.docker(&["rm", "-f", &self.name]);
    }
}
