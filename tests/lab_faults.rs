//! `tests/lab/lab fault HOST KIND` and `lab heal`: each fault has its real effect, seen
//! with plain tools (ssh, docker, find), and `heal` undoes it, leaving `lab status -q`
//! green. Faults go to duckdb-app (hang to lila, whose backup directory has files), one
//! test at a time (a process-wide lock), and a guard heals the host even when a test fails.
//!
//! Needs `sudo tests/lab/lab up` (and root, as `lab fault` does); skipped when the lab is
//! not up, unless OPSDECK_REQUIRE_LAB=1 (then it fails).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use common::lab::{DUCKDB_APP, LILA, Lab, LabHost, lab_script, wait_for};

/// Faults on the same host would mix their effects: one test at a time.
static ONE_FAULT_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Holds the lock; heals the host when dropped, whatever happened.
struct Faulted {
    lab: &'static Lab,
    host: LabHost,
    _one: MutexGuard<'static, ()>,
}

impl Faulted {
    fn new(lab: &'static Lab, host: LabHost) -> Self {
        let one = ONE_FAULT_AT_A_TIME
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        Faulted {
            lab,
            host,
            _one: one,
        }
    }

    /// `lab fault <host> <args>`, twice (every fault is idempotent); the first's stdout.
    fn apply(&self, args: &[&str]) -> String {
        let mut full = vec!["fault", self.host.name];
        full.extend_from_slice(args);
        let said = self.lab.lab(&full);
        let again = self.lab.lab(&full);
        assert!(
            again.contains(&format!("[{}] {}", self.host.name, args[0])),
            "lab {full:?} a second time: {again}"
        );
        said
    }

    fn heal(&self) -> String {
        self.lab.lab(&["heal", self.host.name])
    }
}

impl Drop for Faulted {
    fn drop(&mut self) {
        let out = Command::new(lab_script())
            .args(["heal", self.host.name])
            .output();
        match out {
            Ok(o) if o.status.success() => {}
            Ok(o) => eprintln!(
                "lab heal {} failed: {}{}",
                self.host.name,
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            ),
            Err(e) => eprintln!("cannot run lab heal {}: {e}", self.host.name),
        }
    }
}

fn status() -> Output {
    Command::new(lab_script())
        .arg("status")
        .output()
        .expect("run lab status")
}

/// `lab status -q` is green (within a minute: a healthcheck may take a round to pass).
fn assert_green() {
    let green = wait_for(Duration::from_secs(60), Duration::from_millis(500), || {
        Command::new(lab_script())
            .args(["status", "-q"])
            .status()
            .is_ok_and(|s| s.success())
            .then_some(())
    });
    assert!(
        green.is_some(),
        "lab status is not green after heal:\n{}",
        String::from_utf8_lossy(&status().stdout)
    );
}

/// `lab status` is red and shows the fault on the host's FAULTS line.
fn assert_status_shows(host: &LabHost, fault: &str) {
    let out = status();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        !out.status.success(),
        "lab status is green under {fault}:\n{text}"
    );
    let mut lines = text.lines().skip_while(|l| !l.starts_with(host.name));
    lines.next();
    let faults = lines.next().unwrap_or_default();
    assert!(
        faults.contains("FAULTS:") && faults.contains(fault),
        "{}: status should show {fault}:\n{text}",
        host.name
    );
}

/// What a line reader saw.
#[derive(Debug, PartialEq)]
enum Seen {
    Line(String),
    Eof,
    Nothing,
}

/// An ssh session running `cat` on a host: every line sent comes back.
struct Session {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<Option<String>>,
}

impl Session {
    /// Opens the session and waits (up to `limit`) until the remote side says it is ready.
    fn open(lab: &Lab, host: &LabHost, limit: Duration) -> Session {
        let mut child = lab
            .ssh_command(host, "echo ready; exec cat")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start ssh");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(Some(line)).is_err() {
                    return;
                }
            }
            let _ = tx.send(None);
        });
        let stdin = child.stdin.take();
        let mut s = Session {
            child,
            stdin,
            lines,
        };
        let ready = s.next(limit);
        assert_eq!(
            ready,
            Seen::Line("ready".into()),
            "ssh session to {} did not open within {limit:?}",
            host.name
        );
        s
    }

    fn next(&mut self, limit: Duration) -> Seen {
        match self.lines.recv_timeout(limit) {
            Ok(Some(l)) => Seen::Line(l),
            Ok(None) | Err(RecvTimeoutError::Disconnected) => Seen::Eof,
            Err(RecvTimeoutError::Timeout) => Seen::Nothing,
        }
    }

    fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().unwrap();
        // a session that is gone is seen by next(); a write into it may fail
        let _ = writeln!(stdin, "{line}").and_then(|()| stdin.flush());
    }

    /// A line there and back.
    fn round_trip(&mut self, tag: &str) -> Duration {
        let t0 = Instant::now();
        self.send(tag);
        let back = self.next(Duration::from_secs(20));
        assert_eq!(back, Seen::Line(tag.into()), "echo of {tag}");
        t0.elapsed()
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.stdin.take();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn ssh_timed(lab: &Lab, host: &LabHost, remote: &str) -> (Output, Duration) {
    let t0 = Instant::now();
    let mut cmd = lab.ssh_base();
    cmd.arg(Lab::destination(host)).arg(remote);
    let out = cmd.output().expect("run ssh");
    (out, t0.elapsed())
}

#[test]
fn cut_drops_packets_silently_and_open_connections_resume_after_heal() {
    let Some(lab) = Lab::get() else { return };
    let host = DUCKDB_APP;
    let fault = Faulted::new(lab, host);
    let mut open = Session::open(lab, &host, Duration::from_secs(20));
    open.round_trip("before");

    let said = fault.apply(&["cut"]);
    assert!(said.contains("dropped"), "lab fault cut said: {said}");
    assert_status_shows(&host, "cut");

    // a new connection times out: no answer at all, not a refusal
    let (out, took) = ssh_timed(lab, &host, "true"); // ConnectTimeout=5
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("timed out") && took >= Duration::from_millis(1900),
        "ssh under cut: {} after {took:?}: {err}",
        out.status
    );
    // the open connection hangs: what is sent does not come back...
    open.send("during the cut");
    assert_eq!(open.next(Duration::from_secs(2)), Seen::Nothing);

    let healed = fault.heal();
    assert!(healed.contains("healed: cut"), "lab heal said: {healed}");
    // ... and arrives once the link is back (TCP retransmits it): the connection survived
    assert_eq!(
        open.next(Duration::from_secs(30)),
        Seen::Line("during the cut".into())
    );
    lab.ssh_ok(&host, "true");
    assert_green();
}

#[test]
fn slow_delays_each_way_and_drops_open_connections() {
    let Some(lab) = Lab::get() else { return };
    let host = DUCKDB_APP;
    let fault = Faulted::new(lab, host);
    let mut before = Session::open(lab, &host, Duration::from_secs(20));

    let said = fault.apply(&["slow"]);
    assert!(
        said.contains("300 ms ± 50 ms"),
        "lab fault slow said: {said}"
    );
    assert_status_shows(&host, "slow");
    // connections made before the fault are dropped (so that every connection is slow)
    assert_eq!(before.next(Duration::from_secs(15)), Seen::Eof);

    // the same address and host key (strict checking) through the proxy; opening a session
    // takes several round trips
    let t0 = Instant::now();
    let mut slow = Session::open(lab, &host, Duration::from_secs(30));
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_millis(1200),
        "an ssh session under slow opened in {took:?}"
    );
    let rtts: Vec<Duration> = (0..4)
        .map(|i| slow.round_trip(&format!("slow {i}")))
        .collect();
    // 300 ms ± 50 ms each way: every round trip at least 500 ms, 600 ms on average
    for rtt in &rtts {
        assert!(
            *rtt >= Duration::from_millis(500) && *rtt < Duration::from_secs(10),
            "round trips under slow: {rtts:?}"
        );
    }
    let spread = *rtts.iter().max().unwrap() - *rtts.iter().min().unwrap();
    assert!(spread >= Duration::from_millis(5), "no jitter: {rtts:?}");

    let healed = fault.heal();
    assert!(healed.contains("healed: slow"), "lab heal said: {healed}");
    // the proxy is gone, and its connections with it
    assert_eq!(slow.next(Duration::from_secs(15)), Seen::Eof);
    let mut fast = Session::open(lab, &host, Duration::from_secs(20));
    let best = (0..3)
        .map(|i| fast.round_trip(&format!("fast {i}")))
        .min()
        .unwrap();
    assert!(
        best < Duration::from_millis(300),
        "round trip after heal: {best:?}"
    );
    assert_green();
}

/// How long the bytes from `skip` to `skip + window` of `head -c` on a host took to arrive.
fn transfer_window(lab: &Lab, host: &LabHost, skip: usize, window: usize) -> Duration {
    let mut child = lab
        .ssh_command(host, &format!("head -c {} /dev/urandom", skip + window))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start ssh");
    let mut stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut buf = [0u8; 16384];
        let mut total = 0;
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            total += n;
            if tx.send((Instant::now(), total)).is_err() {
                return;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut start, mut end) = (None, None);
    while end.is_none() {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok((at, total)) = rx.recv_timeout(left) else {
            break;
        };
        if start.is_none() && total >= skip {
            start = Some(at);
        }
        if total >= skip + window {
            end = Some(at);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    match (start, end) {
        (Some(s), Some(e)) => e - s,
        _ => panic!(
            "{}: {} bytes did not arrive within 60 s",
            host.name,
            skip + window
        ),
    }
}

#[test]
fn slow_link_limits_the_rate_of_that_address_only() {
    let Some(lab) = Lab::get() else { return };
    let host = DUCKDB_APP;
    let fault = Faulted::new(lab, host);
    // past tbf's 80 KiB burst, 256 KiB at 1 Mbit/s (125 kB/s) take about 2.1 s
    let (skip, window) = (128 * 1024, 256 * 1024);

    let said = fault.apply(&["slow-link", "1mbit"]);
    assert!(said.contains("1mbit"), "lab fault slow-link said: {said}");
    assert_status_shows(&host, "slow-link 1mbit");
    let limited = transfer_window(lab, &host, skip, window);
    assert!(
        limited >= Duration::from_millis(1000),
        "256 KiB under slow-link 1mbit took {limited:?}"
    );
    // the filter is by address: lila's link is as fast as ever
    let other = transfer_window(lab, &LILA, skip, window);
    assert!(
        other * 3 < limited,
        "lila took {other:?} for what duckdb-app took {limited:?}"
    );

    let healed = fault.heal();
    assert!(
        healed.contains("healed: slow-link"),
        "lab heal said: {healed}"
    );
    let after = transfer_window(lab, &host, skip, window);
    assert!(
        after * 3 < limited,
        "after heal {after:?}, under slow-link {limited:?}"
    );
    assert_green();
}

#[test]
fn sshd_kill_ends_sessions_and_heal_starts_sshd_again() {
    let Some(lab) = Lab::get() else { return };
    let host = DUCKDB_APP;
    let fault = Faulted::new(lab, host);
    let mut open = Session::open(lab, &host, Duration::from_secs(20));

    let said = fault.apply(&["sshd-kill"]);
    assert!(said.contains("SIGKILL"), "lab fault sshd-kill said: {said}");
    assert_status_shows(&host, "sshd-kill");
    assert_eq!(open.next(Duration::from_secs(10)), Seen::Eof);
    let (out, _) = ssh_timed(lab, &host, "true");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.code() == Some(255) && err.contains("Connection refused"),
        "ssh after sshd-kill: {} {err}",
        out.status
    );

    let healed = fault.heal();
    assert!(
        healed.contains("healed: sshd-kill"),
        "lab heal said: {healed}"
    );
    // the same host key (strict checking) on the same address
    assert_eq!(lab.ssh_ok(&host, "echo back").trim(), "back");
    assert_green();
}

fn docker_ps(lab: &Lab, host: &LabHost) -> Output {
    Command::new("docker")
        .arg("-H")
        .arg(format!("unix://{}", lab.docker_socket(host).display()))
        .args([
            "ps",
            "--format",
            r#"{{.Label "com.docker.compose.project"}}:{{.Label "com.docker.compose.service"}}"#,
        ])
        .output()
        .expect("run docker")
}

#[test]
fn dockerd_stop_and_start() {
    let Some(lab) = Lab::get() else { return };
    let host = DUCKDB_APP;
    let fault = Faulted::new(lab, host);
    assert!(docker_ps(lab, &host).status.success(), "docker ps before");

    let said = fault.apply(&["dockerd-stop"]);
    assert!(
        said.contains("stopped its dockerd"),
        "lab fault dockerd-stop said: {said}"
    );
    assert_status_shows(&host, "dockerd-stop");
    let out = docker_ps(lab, &host);
    assert!(
        !out.status.success(),
        "docker ps answered with the engine stopped: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let over_ssh = lab.ssh(&host, "docker ps");
    assert!(
        !over_ssh.status.success(),
        "docker ps over ssh with the engine stopped"
    );

    let said = lab.lab(&["fault", host.name, "dockerd-start"]);
    assert!(
        said.contains("dockerd-start"),
        "lab fault dockerd-start said: {said}"
    );
    let out = docker_ps(lab, &host);
    let mut running: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    running.sort();
    let mut expected: Vec<String> = host.services.iter().map(|s| s.to_string()).collect();
    expected.sort();
    assert_eq!(running, expected, "running after dockerd-start");
    // dockerd-start cleared the fault: heal has nothing left to do
    assert!(fault.heal().contains("no fault"));
    assert_green();
}

#[test]
fn hang_blocks_the_backup_listing_until_heal() {
    let Some(lab) = Lab::get() else { return };
    let host = LILA; // its ~/backups holds the 7 dumps of its set
    let fault = Faulted::new(lab, host);
    let list = "find -H ~/backups -mindepth 1 -maxdepth 1 -type f -printf '%f\\n' | sort";
    let before = lab.ssh_ok(&host, list);
    assert!(before.lines().count() >= 7, "lila's backups: {before}");

    let said = fault.apply(&["hang"]);
    assert!(said.contains("~/backups"), "lab fault hang said: {said}");
    assert_status_shows(&host, "hang");
    // a listing that waits for ever; started now, released by heal
    let mut waiting = lab
        .ssh_command(&host, "find ~/backups -maxdepth 1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start ssh");
    // opsdeck's listing (find -H DIR -maxdepth 1, see src/collect/backups.rs) blocks
    let (out, took) = ssh_timed(
        lab,
        &host,
        "timeout 5 find -H ~/backups -mindepth 1 -maxdepth 1 -type f -printf x >/dev/null; echo \"status $?\"",
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "status 124",
        "timeout 5 find under hang ({took:?}): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        took >= Duration::from_secs(5),
        "find under hang returned after {took:?}"
    );
    assert!(
        waiting.try_wait().unwrap().is_none(),
        "the listing did not block"
    );

    let healed = fault.heal();
    assert!(healed.contains("healed: hang"), "lab heal said: {healed}");
    let done = wait_for(Duration::from_secs(20), Duration::from_millis(100), || {
        waiting.try_wait().unwrap()
    });
    let _ = waiting.kill();
    let mut err = String::new();
    if let Some(mut e) = waiting.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    let _ = waiting.wait();
    assert!(
        done.is_some_and(|s| !s.success()),
        "the blocked listing was not released by heal: {done:?} {err}"
    );
    assert_eq!(lab.ssh_ok(&host, list), before, "the listing after heal");
    assert_green();
}
