//! The console watching the lab over SSH, in a real pseudo-terminal: the first full fleet
//! screen, a host whose sshd dies and comes back, an encrypted key unlocked at a prompt,
//! and a changed host key raised as a banner.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;
mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::lab::{COURSE_SUPPORTER, HOSTS, LILA, Lab, LabHost};
use expectrl::WaitStatus;
use support::tui::Tui;

/// The test that kills course-supporter's sshd (and every session on it) runs alone; the
/// others share the lab. Without this a migration on course-supporter running beside it
/// failed with "the SSH connection was lost" (a fresh clone's run under load).
static SSHD: std::sync::RwLock<()> = std::sync::RwLock::new(());

fn alone() -> std::sync::RwLockWriteGuard<'static, ()> {
    SSHD.write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn shared() -> std::sync::RwLockReadGuard<'static, ()> {
    SSHD.read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn lab_env(lab: &Lab) -> Vec<(&str, Option<&str>)> {
    lab.env
        .iter()
        .map(|(k, v)| (k.as_str(), Some(v.as_str())))
        .collect()
}

/// The fleet row of a host, as drawn.
fn row<'a>(screen: &'a str, name: &str) -> Option<&'a str> {
    screen
        .lines()
        .find(|l| l.trim_start_matches('│').starts_with(&format!("{name} ")))
}

fn one_host_inventory(dir: &Path, lab: &Lab, h: &LabHost, extra: &str) -> String {
    let path = dir.join("hosts.toml");
    std::fs::write(
        &path,
        format!(
            "[[host]]\nname = \"{}\"\naddress = \"{}\"\nuser = \"{}\"\ndocker_socket = \"{}\"\n{extra}\n",
            h.name,
            h.address,
            h.user,
            lab.docker_socket(h).display()
        ),
    )
    .unwrap();
    path.display().to_string()
}

#[test]
fn first_full_fleet_screen_then_reconnect_after_sshd_restarts() {
    let Some(lab) = Lab::get() else { return };
    let _sshd = alone();
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let mut tui = Tui::start(dir.path(), &[], &lab_env(lab));
    // Every lab host up with its containers counted; the down host with its reason.
    let screen = tui.wait_for("the full fleet", |s| {
        HOSTS.iter().all(|h| {
            row(s, h.name).is_some_and(|r| {
                let n = h.services.len();
                r.contains("● up") && r.contains(&format!("{n}/{n}"))
            })
        }) && row(s, "down").is_some_and(|r| r.contains("✖ down"))
    });
    eprintln!("first full fleet screen after {:?}", started.elapsed());
    assert!(screen.contains("3/4 hosts up"), "{screen}");

    // Kill course-supporter's sshd: the listener and the session opsdeck is using.
    let pidfile = lab.run.join(COURSE_SUPPORTER.name).join("sshd.pid");
    let pid = std::fs::read_to_string(&pidfile).unwrap();
    assert!(
        Command::new("kill")
            .arg(pid.trim())
            .status()
            .unwrap()
            .success()
    );
    let _ = Command::new("pkill")
        .args(["-f", &format!("sshd: {}", COURSE_SUPPORTER.user)])
        .status();
    tui.wait_for("course-supporter to be seen down", |s| {
        row(s, COURSE_SUPPORTER.name).is_some_and(|r| r.contains("✖ down"))
    });
    // The other hosts never stopped.
    let screen = tui.parser.screen().contents();
    assert!(
        row(&screen, LILA.name).unwrap().contains("● up"),
        "{screen}"
    );

    // sshd comes back; opsdeck reconnects by itself, no restart.
    lab.lab(&["up"]);
    let back = Instant::now();
    tui.wait_for("course-supporter to reconnect", |s| {
        row(s, COURSE_SUPPORTER.name).is_some_and(|r| r.contains("● up") && r.contains("3/3"))
    });
    eprintln!("reconnected {:?} after sshd was back", back.elapsed());
    tui.send("q");
    assert!(matches!(tui.finish(), WaitStatus::Exited(_, 0)));
    tui.assert_restored();
}

#[test]
fn encrypted_key_is_unlocked_at_the_prompt() {
    let Some(lab) = Lab::get() else { return };
    let _sshd = shared();
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("id_locked");
    std::fs::copy(&lab.key, &key).unwrap();
    let ok = Command::new("ssh-keygen")
        .args(["-q", "-p", "-P", "", "-N", "correct horse", "-f"])
        .arg(&key)
        .status()
        .unwrap();
    assert!(ok.success());
    let extra = format!(
        "known_hosts = \"{}\"\nidentity_file = \"{}\"",
        lab.known_hosts.display(),
        key.display()
    );
    let config = one_host_inventory(dir.path(), lab, &LILA, &extra);
    let env = [
        ("OPSDECK_CONFIG", Some(config.as_str())),
        ("SSH_AUTH_SOCK", None),
    ];
    let mut tui = Tui::start(dir.path(), &[], &env);
    // One host: the console opens on it and says what it needs.
    tui.wait_for("the passphrase question", |s| {
        s.contains("to enter the passphrase of")
    });
    tui.send("A");
    tui.wait_for("the unlock dialog", |s| s.contains("Unlock key"));
    tui.send("wrong\r");
    tui.wait_for("a wrong passphrase", |s| {
        s.contains("wrong passphrase; press")
    });
    tui.send("A");
    tui.wait_for("the unlock dialog again", |s| s.contains("Unlock key"));
    tui.send("correct horse");
    let screen = tui.wait_for("bullets only", |s| s.contains("•••••••••••••"));
    assert!(
        !screen.contains("correct horse"),
        "the passphrase is never drawn"
    );
    tui.send("\r");
    tui.wait_for("lila connected", |s| {
        s.contains("1/1 hosts up") && s.contains("api")
    });
    tui.send("q");
    assert!(matches!(tui.finish(), WaitStatus::Exited(_, 0)));
}

#[test]
fn changed_host_key_raises_a_banner_with_file_and_line() {
    let Some(lab) = Lab::get() else { return };
    let _sshd = shared();
    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join("other");
    let ok = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&other)
        .status()
        .unwrap();
    assert!(ok.success());
    let pubkey = std::fs::read_to_string(other.with_extension("pub")).unwrap();
    let kh = dir.path().join("kh");
    std::fs::write(&kh, format!("{} {pubkey}", LILA.address)).unwrap();
    let extra = format!(
        "known_hosts = \"{}\"\nidentity_file = \"{}\"",
        kh.display(),
        lab.key.display()
    );
    let config = one_host_inventory(dir.path(), lab, &LILA, &extra);
    let env = [("OPSDECK_CONFIG", Some(config.as_str()))];
    let mut tui = Tui::start(dir.path(), &[], &env);
    let banner = format!(
        "⚠ lila: host key CHANGED ({}:1): connection refused",
        kh.display()
    );
    tui.wait_for("the changed-key banner and the host down for it", |s| {
        s.contains(&banner) && s.contains("lila is down: HOST KEY CHANGED")
    });
    tui.send("q");
    assert!(matches!(tui.finish(), WaitStatus::Exited(_, 0)));
}

#[test]
fn b_takes_a_verified_backup_from_the_console() {
    let Some(lab) = Lab::get() else { return };
    let _sshd = shared();
    let dir = tempfile::tempdir().unwrap();
    // Its own backup directory, so the lab's seeded sets keep their verdicts.
    let backups = "opsdeck-test/tui-backup";
    let extra = format!(
        "known_hosts = \"{}\"\nidentity_file = \"{}\"\n\
         [[host.stack]]\nname = \"lila\"\ndir = \"~/lila\"\nproject = \"lila\"\ncompose = \"docker-compose\"\n\
         [[host.stack.backup]]\nname = \"db\"\ndir = \"~/{backups}\"\nglob = \"lila-*.sql.gz\"\nmax_age = \"26h\"\n\
         [host.stack.backup.pg_dump]\nservice = \"database\"\ndatabase = \"lila\"\nformat = \"sql-gzip\"\n",
        lab.known_hosts.display(),
        lab.key.display()
    );
    lab.ssh_ok(&LILA, &format!("rm -rf {backups} && mkdir -p {backups}"));
    let config = one_host_inventory(dir.path(), lab, &LILA, &extra);
    let env = [
        ("OPSDECK_CONFIG", Some(config.as_str())),
        ("XDG_STATE_HOME", Some(dir.path().to_str().unwrap())),
    ];
    let mut tui = Tui::start(dir.path(), &[], &env);
    // An empty directory: the set is missing, and b offers to fix exactly that.
    tui.wait_for("the missing set", |s| s.contains("MISSING"));
    tui.send("b");
    tui.wait_for("the confirmation", |s| {
        s.contains("Back up lila/db on lila now?")
    });
    tui.send("y");
    // The job pane follows it, then the backups panel shows the new file.
    let screen = tui.wait_for("the finished backup", |s| {
        s.contains("backup db on lila · done") && s.contains("verified")
    });
    assert!(!screen.contains("FAILED"), "{screen}");
    tui.send("\u{1b}");
    tui.wait_for("the fresh set", |s| s.contains("Backups: 1 fresh"));
    tui.send("q");
    assert!(matches!(tui.finish(), WaitStatus::Exited(_, 0)));
    // The file on the host is a complete gzip, and the audit log has the run.
    let listing = lab.ssh_ok(
        &LILA,
        &format!("cd {backups} && ls -A && gzip -t lila-*.sql.gz && echo GZIP-OK"),
    );
    assert!(listing.contains("GZIP-OK"), "{listing}");
    assert_eq!(
        listing.lines().filter(|l| l.starts_with("lila-")).count(),
        1,
        "{listing}"
    );
    assert!(!listing.contains(".partial"), "{listing}");
    let audit = std::fs::read_to_string(dir.path().join("opsdeck/audit.jsonl")).unwrap();
    let line: serde_json::Value = serde_json::from_str(audit.lines().last().unwrap()).unwrap();
    assert_eq!(line["action"], "backup");
    assert_eq!(line["host"], "lila");
    assert_eq!(line["outcome"], "ok");
    lab.ssh_ok(&LILA, "rm -rf opsdeck-test/tui-backup");
}

#[test]
fn a_job_from_the_console_over_ssh_typed_confirmation_and_the_job_pane() {
    let Some(lab) = Lab::get() else { return };
    let _sshd = shared();
    let dir = tempfile::tempdir().unwrap();
    let mut tui = Tui::start(dir.path(), &[], &lab_env(lab));
    tui.wait_for("the fleet", |s| {
        row(s, COURSE_SUPPORTER.name).is_some_and(|r| r.contains("● up"))
            && row(s, LILA.name).is_some_and(|r| r.contains("● up"))
    });
    // course-supporter is production: migrate asks for its name, typed out
    tui.send("\r");
    tui.wait_for("course-supporter's containers", |s| {
        s.contains("fleet › course-supporter") && s.contains("course-supporter 2/2 running")
    });
    tui.send("m");
    tui.wait_for("the typed confirmation", |s| {
        s.contains("PRODUCTION HOST") && s.contains("Type course-supporter and press ⏎")
    });
    tui.send("y\r");
    tui.wait_for("a refusal of the wrong name", |s| {
        s.contains("type the host name course-supporter exactly")
    });
    tui.send("\u{7f}course-supporter\r");
    let screen = tui.wait_for("the migration done in the job pane", |s| {
        s.contains("migrate on course-supporter") && s.contains("· done")
    });
    assert!(
        screen.contains("compose exec -T app alembic upgrade head"),
        "{screen}"
    );
    assert!(screen.contains("Context impl PostgresqlImpl"), "{screen}");
    // the fleet shows how the host's last job ended
    tui.send("F");
    tui.wait_for("the job in the fleet", |s| {
        row(s, COURSE_SUPPORTER.name)
            .is_some_and(|r| r.trim_end_matches('│').trim_end().ends_with('✔'))
    });
    tui.send("q");
    assert!(matches!(tui.finish(), WaitStatus::Exited(_, 0)));
    tui.assert_restored();
    let audit = std::fs::read_to_string(dir.path().join("state/opsdeck/audit.jsonl")).unwrap();
    let record: serde_json::Value = serde_json::from_str(audit.lines().last().unwrap()).unwrap();
    assert_eq!(record["host"], "course-supporter");
    assert_eq!(record["action"], "migrate");
    assert_eq!(record["outcome"], "ok");
    assert_eq!(record["steps"][0]["exit"], 0);
}

/// The lines of the screen, trimmed, for "a line that is exactly ...".
fn has_line(screen: &str, want: &str) -> bool {
    screen.lines().any(|l| l.trim() == want)
}

#[test]
fn e_opens_a_shell_in_lila_api_resizes_reach_it_and_the_console_comes_back_redrawn() {
    let Some(lab) = Lab::get() else { return };
    let _sshd = shared();
    let dir = tempfile::tempdir().unwrap();
    let config = common::run::host_inventory(dir.path(), lab, &LILA, "");
    let mut env = lab_env(lab);
    env.push(("OPSDECK_CONFIG", Some(config.as_str())));
    env.push(("TERM", Some("xterm-256color")));
    // one host: the console opens on its host view
    let mut tui = Tui::start_sized(dir.path(), &[], &env, 100, 30);
    let before = tui.wait_for("lila's containers, api selected", |s| {
        s.contains("fleet › lila") && s.contains("lila 4/4 running") && s.contains("  api ")
    });
    tui.send("e");
    tui.wait_for("the shell's prompt", |s| {
        s.contains("opsdeck: shell in api on lila")
            && s.lines().any(|l| l.trim_end().ends_with('#'))
    });
    tui.send("hostname; echo $((6*7))\r");
    let screen = tui.wait_for("42 from the container", |s| has_line(s, "42"));
    // the container's hostname (its short id), as docker says
    let id = lab.hostname_of(&LILA, "lila_api_1");
    assert!(has_line(&screen, &id), "{id:?} in\n{screen}");

    // a resize reaches the container's terminal
    tui.session
        .get_process_mut()
        .set_window_size(90, 26)
        .unwrap();
    tui.parser
        .screen_mut()
        .set_size(26.try_into().unwrap(), 90.try_into().unwrap());
    // The resize travels on its own (SIGWINCH, the channel's window-change, the engine's
    // exec resize), so a command typed at once may still see the old size, as it would in
    // any terminal: ask until the container's terminal answers with the new one.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        tui.send("printf '\\033[H\\033[2J'; stty size\r");
        // the screen once cleared: only this stty's answer and the next prompt
        let screen = tui.wait_for("stty's answer on a cleared screen", |s| {
            let lines: Vec<&str> = s.lines().filter(|l| !l.trim().is_empty()).collect();
            lines.len() == 2
                && lines[0].split(' ').all(|w| w.parse::<u16>().is_ok())
                && lines[1].trim_end().ends_with('#')
        });
        if has_line(&screen, "26 90") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the new size never reached the container's terminal:\n{screen}"
        );
        tui.pump_for(Duration::from_millis(200));
    }

    tui.send("exit\r");
    let after = tui.wait_for("the console again, redrawn at the new size", |s| {
        s.contains("fleet › lila")
            && s.contains("lila 4/4 running")
            && s.contains("shell in api on lila ended: exit 0")
    });
    // what it showed before, whole: the header, the graphs, the containers
    for want in ["CPU", "MEM", "Containers", "  api ", "  web "] {
        assert!(
            before.contains(want) && after.contains(want),
            "{want}:\n{after}"
        );
    }
    assert!(!after.contains("opsdeck: shell in"), "{after}");
    // and it still takes keys
    tui.send("?");
    tui.wait_for("help", |s| s.contains("a shell in the container"));
    tui.send("q");
    tui.send("q");
    assert!(matches!(tui.finish(), WaitStatus::Exited(_, 0)));
    tui.assert_restored();
    let audit = std::fs::read_to_string(dir.path().join("state/opsdeck/audit.jsonl")).unwrap();
    let record: serde_json::Value = serde_json::from_str(audit.lines().last().unwrap()).unwrap();
    assert_eq!(record["action"], "shell", "{record}");
    assert_eq!(record["host"], "lila");
    assert_eq!(record["container"], "lila_api_1");
    assert_eq!(record["outcome"], "ok");
    assert!(
        record["user"].as_str().is_some_and(|u| !u.is_empty()),
        "{record}"
    );
    let start: jiff::Timestamp = record["time"].as_str().unwrap().parse().unwrap();
    let end: jiff::Timestamp = record["ended"].as_str().unwrap().parse().unwrap();
    assert!(end > start, "{record}");
}

#[test]
fn s_opens_a_shell_on_the_host_and_read_only_refuses_both() {
    let Some(lab) = Lab::get() else { return };
    let _sshd = shared();
    let dir = tempfile::tempdir().unwrap();
    let config = common::run::host_inventory(dir.path(), lab, &LILA, "");
    let mut env = lab_env(lab);
    env.push(("OPSDECK_CONFIG", Some(config.as_str())));

    // read-only: neither key hands the terminal over
    let mut tui = Tui::start_sized(dir.path(), &["--read-only"], &env, 100, 30);
    tui.wait_for("lila's containers", |s| s.contains("lila 4/4 running"));
    tui.send("S");
    tui.wait_for("the refusal of S", |s| {
        s.contains("read-only: shells are turned off")
    });
    // another refusal in between, so the next one must be e's own
    tui.send("s");
    tui.wait_for("the refusal of s", |s| {
        s.contains("read-only: actions that change hosts are turned off")
    });
    tui.send("e");
    let screen = tui.wait_for("the refusal of e", |s| {
        s.contains("read-only: shells are turned off")
    });
    assert!(!screen.contains("opsdeck: shell"), "{screen}");
    tui.send("q");
    assert!(matches!(tui.finish(), WaitStatus::Exited(_, 0)));
    assert!(!dir.path().join("state/opsdeck/audit.jsonl").exists());

    // S from the fleet's row: the lab user's login shell on the host
    let mut tui = Tui::start_sized(dir.path(), &[], &env, 100, 30);
    tui.wait_for("lila's containers", |s| s.contains("lila 4/4 running"));
    tui.send("F");
    tui.wait_for("lila up in the fleet", |s| {
        row(s, LILA.name).is_some_and(|r| r.contains("● up"))
    });
    tui.send("S");
    tui.wait_for("the host's prompt", |s| {
        s.contains("opsdeck: shell on lila") && s.lines().any(|l| l.trim_end().ends_with('$'))
    });
    tui.send("id -un; stty size\r");
    tui.wait_for("who and how big", |s| {
        has_line(s, LILA.user) && has_line(s, "30 100")
    });
    tui.send("exit 3\r");
    tui.wait_for("the fleet again, and how the shell ended", |s| {
        row(s, LILA.name).is_some_and(|r| r.contains("● up"))
            && s.contains("shell on lila ended: exit 3")
    });
    tui.send("q");
    assert!(matches!(tui.finish(), WaitStatus::Exited(_, 0)));
    tui.assert_restored();
    let audit = std::fs::read_to_string(dir.path().join("state/opsdeck/audit.jsonl")).unwrap();
    let record: serde_json::Value = serde_json::from_str(audit.lines().last().unwrap()).unwrap();
    assert_eq!(record["action"], "shell", "{record}");
    assert!(record.get("container").is_none(), "{record}");
    assert_eq!(record["summary"], "shell on lila");
    // (a shell over within seconds also names its last line: here `logout`)
    assert!(
        record["outcome"]
            .as_str()
            .is_some_and(|o| o.starts_with("failed: exit 3")),
        "{record}"
    );
}
