//! `opsdeck completions SHELL` and `opsdeck man`, with the real shells and the real `man`:
//! bash sources the script, and the function `complete -p opsdeck` names is called the way
//! readline calls it (COMP_WORDS, COMP_CWORD, COMP_LINE, COMP_POINT), against an inventory
//! in a temporary directory; fish completes with `complete -C`; zsh parses the script;
//! `man -l -` renders every page.
//!
//! zsh, fish and man-db are in the lab's package list (`tests/lab/lab up` installs them).
//! `man` missing fails the man tests; zsh or fish missing fails theirs under
//! `OPSDECK_REQUIRE_LAB=1` (as `tests/run` sets) and skips them, saying so, otherwise.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_opsdeck");

const INVENTORY: &str = r#"
[[host]]
name = "lila"
address = "10.0.0.2"

[[host.stack]]
name = "lila"
dir = "~/lila"

[[host.stack.action]]
name = "restart caddy"
steps = ["compose restart caddy"]

[[host.stack.backup]]
name = "db"
dir = "~/backups"
glob = "lila-*.sql.gz"
max_age = "1d"

[[host]]
name = "lab-two"
address = "10.0.0.3"

[[host.stack]]
name = "course-supporter"
dir = "~/course-supporter"

[[host.stack]]
name = "proxy"
dir = "~/proxy"

[[host]]
name = "duck"
address = "10.0.0.4"

[[host.stack]]
name = "evil\u001b]52;c;ZWNobyBoaQ==\u0007stack"
dir = "~/app"
"#;

/// A scratch home: the inventory, the completion script, and an empty working directory
/// (so `./hosts.toml` is not found by accident).
struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    fn new() -> Scratch {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("hosts.toml"), INVENTORY).unwrap();
        std::fs::create_dir(dir.path().join("empty")).unwrap();
        std::fs::create_dir(dir.path().join("xdg")).unwrap();
        Scratch { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn inventory(&self) -> String {
        self.path("hosts.toml").display().to_string()
    }

    /// `opsdeck completions SHELL` written to a file; returns its path.
    fn script(&self, shell: &str) -> PathBuf {
        let out = Command::new(BIN)
            .args(["completions", shell])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "completions {shell}: {}",
            text(&out.stderr)
        );
        assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
        let path = self.path(&format!("opsdeck.{shell}"));
        std::fs::write(&path, &out.stdout).unwrap();
        path
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// What bash completes for `words` (the last is the word under the cursor, "" for a new
/// one), with `env` set and in `cwd`: sources the script, finds the function that
/// `complete -p opsdeck` registered, calls it as readline does, prints COMPREPLY. Returns
/// the candidates; fails when bash wrote anything to stderr.
fn bash(script: &Path, cwd: &Path, env: &[(&str, &str)], words: &[&str]) -> Vec<String> {
    const DRIVER: &str = r#"
script=$1; shift
source "$script"
spec=$(complete -p opsdeck) || { echo "nothing registered for opsdeck" >&2; exit 90; }
case $spec in *"-F "*) ;; *) echo "no completion function in: $spec" >&2; exit 91 ;; esac
fn=${spec##*-F }; fn=${fn%% *}
COMP_WORDS=("$@")
COMP_CWORD=$(( $# - 1 ))
COMP_LINE="$*"
COMP_POINT=${#COMP_LINE}
COMP_TYPE=9
COMP_KEY=9
COMPREPLY=()
"$fn" opsdeck "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
for c in "${COMPREPLY[@]}"; do printf '%s\n' "$c"; done
"#;
    let mut cmd = Command::new("bash");
    cmd.args(["--norc", "--noprofile", "-c", DRIVER, "bash"])
        .arg(script)
        .args(words)
        .current_dir(cwd)
        .env_remove("OPSDECK_CONFIG")
        .env_remove("OPSDECK_COMPLETE")
        .env("XDG_CONFIG_HOME", cwd.join("no-xdg"))
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "bash completing {words:?}: {}\nstdout: {}\nstderr: {}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    let stdout = text(&out.stdout);
    assert!(
        !stdout.contains('\u{1b}'),
        "an escape reached the terminal: {stdout:?}"
    );
    stdout.lines().map(String::from).collect()
}

/// Without the flags: with nothing typed yet, clap's engine offers the subcommand's flags
/// after the values.
fn names(candidates: Vec<String>) -> Vec<String> {
    candidates
        .into_iter()
        .filter(|c| !c.starts_with('-'))
        .collect()
}

/// Completion of `words` with the scratch inventory in `$OPSDECK_CONFIG`.
fn complete(s: &Scratch, words: &[&str]) -> Vec<String> {
    let inv = s.inventory();
    bash(
        &s.script("bash"),
        &s.path("empty"),
        &[("OPSDECK_CONFIG", &inv)],
        words,
    )
}

#[test]
fn bash_completes_run_li_to_lila() {
    let s = Scratch::new();
    assert_eq!(complete(&s, &["opsdeck", "run", "li"]), ["lila"]);
}

#[test]
fn bash_completes_hosts_wherever_a_host_goes() {
    let s = Scratch::new();
    for words in [
        &["opsdeck", "status", "l"][..],
        &["opsdeck", "status", "duck", "l"][..],
        &["opsdeck", "check", "l"][..],
        &["opsdeck", "events", "--json", "l"][..],
        &["opsdeck", "logs", "l"][..],
        &["opsdeck", "releases", "l"][..],
        &["opsdeck", "exec", "l"][..],
        &["opsdeck", "run", "--stack", "lila", "l"][..],
        &["opsdeck", "--config", &s.inventory(), "run", "l"][..],
    ] {
        assert_eq!(complete(&s, words), ["lila", "lab-two"], "{words:?}");
    }
    assert_eq!(
        names(complete(&s, &["opsdeck", "run", ""])),
        ["lila", "lab-two", "duck"]
    );
    assert_eq!(complete(&s, &["opsdeck", "run", "x"]), Vec::<String>::new());
    // --hosts: a comma-separated list, each host once
    assert_eq!(
        complete(&s, &["opsdeck", "run", "--hosts", "lila,la"]),
        ["lila,lab-two"]
    );
    assert_eq!(
        complete(&s, &["opsdeck", "run", "--hosts", "lila,"]),
        ["lila,lab-two", "lila,duck"]
    );
}

#[test]
fn bash_completes_the_named_hosts_stacks() {
    let s = Scratch::new();
    assert_eq!(
        names(complete(&s, &["opsdeck", "run", "lab-two", "--stack", ""])),
        ["course-supporter", "proxy"]
    );
    assert_eq!(
        names(complete(&s, &["opsdeck", "logs", "lila", "--stack", ""])),
        ["lila"]
    );
    assert_eq!(
        complete(&s, &["opsdeck", "releases", "lab-two", "--stack", "p"]),
        ["proxy"]
    );
    assert_eq!(
        names(complete(
            &s,
            &[
                "opsdeck",
                "run",
                "--hosts",
                "lila,lab-two",
                "deploy",
                "--stack",
                ""
            ]
        )),
        ["lila", "course-supporter", "proxy"]
    );
    // no host yet: every stack; the one whose name carries an escape sequence is never
    // offered (bash() also checks that no escape reached stdout)
    assert_eq!(
        names(complete(&s, &["opsdeck", "run", "--stack", ""])),
        ["lila", "course-supporter", "proxy"]
    );
    assert_eq!(
        names(complete(&s, &["opsdeck", "run", "duck", "--stack", ""])),
        Vec::<String>::new()
    );
}

#[test]
fn bash_completes_actions_and_backup_sets() {
    let s = Scratch::new();
    assert_eq!(
        complete(&s, &["opsdeck", "run", "lila", "re"]),
        ["restore", "restart", "restart-caddy"]
    );
    assert_eq!(
        complete(&s, &["opsdeck", "run", "lab-two", "re"]),
        ["restore", "restart"]
    );
    assert_eq!(
        names(complete(&s, &["opsdeck", "run", "lila", "backup", ""])),
        ["db"]
    );
    assert_eq!(
        complete(&s, &["opsdeck", "run", "lila", "restore", "d"]),
        ["db"]
    );
    assert_eq!(
        names(complete(&s, &["opsdeck", "run", "lila", "stop", ""])),
        Vec::<String>::new()
    );
    // with --hosts the first word is the action
    assert_eq!(
        complete(&s, &["opsdeck", "run", "--hosts", "lila,lab-two", "dep"]),
        ["deploy"]
    );
    assert_eq!(
        names(complete(
            &s,
            &["opsdeck", "run", "--hosts", "lila", "backup", ""]
        )),
        ["db"]
    );
}

#[test]
fn bash_completes_subcommands_flags_and_shells() {
    let s = Scratch::new();
    assert_eq!(complete(&s, &["opsdeck", "ru"]), ["run"]);
    assert_eq!(complete(&s, &["opsdeck", "com"]), ["completions"]);
    assert_eq!(
        complete(&s, &["opsdeck", "run", "lila", "deploy", "--ch"]),
        ["--check", "--checkout"]
    );
    assert_eq!(complete(&s, &["opsdeck", "completions", "z"]), ["zsh"]);
    assert_eq!(complete(&s, &["opsdeck", "man", "con"]), ["config"]);
    assert_eq!(
        names(complete(&s, &["opsdeck", "man", "config", ""])),
        ["check", "schema"]
    );
    assert_eq!(complete(&s, &["opsdeck", "--theme", "16"]), ["16color"]);
}

/// The inventory is the one opsdeck would load for the line: --config (and -c) on it
/// first, then $OPSDECK_CONFIG, ./hosts.toml, the XDG config dir.
#[test]
fn bash_follows_the_inventory_opsdeck_would_load() {
    let s = Scratch::new();
    let script = s.script("bash");
    std::fs::write(
        s.path("other.toml"),
        "[[host]]\nname = \"lion\"\naddress = \"10.0.0.9\"\n",
    )
    .unwrap();
    let other = s.path("other.toml").display().to_string();
    let inv = s.inventory();
    let env = [("OPSDECK_CONFIG", inv.as_str())];
    let empty = s.path("empty");
    fn run_l<'a>(pre: &[&'a str]) -> Vec<&'a str> {
        let mut w = vec!["opsdeck"];
        w.extend_from_slice(pre);
        w.extend(["run", "l"]);
        w
    }
    // the flag beats the environment, in each spelling
    for pre in [vec!["--config", other.as_str()], vec!["-c", other.as_str()]] {
        assert_eq!(
            bash(&script, &empty, &env, &run_l(&pre)),
            ["lion"],
            "{pre:?}"
        );
    }
    let joined = format!("--config={other}");
    assert_eq!(bash(&script, &empty, &env, &run_l(&[&joined])), ["lion"]);
    // after the subcommand too (--config is global), and as `~/...`
    assert_eq!(
        bash(
            &script,
            &empty,
            &[
                ("OPSDECK_CONFIG", &inv),
                ("HOME", s.dir.path().to_str().unwrap())
            ],
            &["opsdeck", "run", "--config", "~/other.toml", "l"]
        ),
        ["lion"]
    );
    // $OPSDECK_CONFIG
    assert_eq!(
        bash(&script, &empty, &[("OPSDECK_CONFIG", &other)], &run_l(&[])),
        ["lion"]
    );
    // ./hosts.toml
    assert_eq!(
        bash(&script, s.dir.path(), &[], &run_l(&[])),
        ["lila", "lab-two"]
    );
    // the XDG config dir
    let xdg = s.path("xdg");
    std::fs::create_dir_all(xdg.join("opsdeck")).unwrap();
    std::fs::copy(s.path("other.toml"), xdg.join("opsdeck/hosts.toml")).unwrap();
    assert_eq!(
        bash(
            &script,
            &empty,
            &[("XDG_CONFIG_HOME", xdg.to_str().unwrap())],
            &run_l(&[])
        ),
        ["lion"]
    );
    // no inventory anywhere: opsdeck watches this machine, as `local`
    assert_eq!(
        names(bash(&script, &empty, &[], &["opsdeck", "run", ""])),
        ["local"]
    );
}

#[test]
fn bash_completes_nothing_from_a_broken_or_missing_inventory() {
    let s = Scratch::new();
    let script = s.script("bash");
    std::fs::write(
        s.path("broken.toml"),
        "[[host]]\nname = \"lila\"\nadress = 1\n",
    )
    .unwrap();
    let broken = s.path("broken.toml").display().to_string();
    let missing = s.path("missing.toml").display().to_string();
    for inv in [&broken, &missing] {
        for words in [
            &["opsdeck", "run", "li"][..],
            &["opsdeck", "run", "lila", "--stack", ""][..],
            &["opsdeck", "run", "lila", ""][..],
            &["opsdeck", "run", "--hosts", "lila,"][..],
        ] {
            // bash() fails on anything on stderr
            let got = names(bash(
                &script,
                &s.path("empty"),
                &[("OPSDECK_CONFIG", inv)],
                words,
            ));
            assert_eq!(got, Vec::<String>::new(), "{inv}: {words:?}");
        }
        // the same through --config
        let got = names(bash(
            &script,
            &s.path("empty"),
            &[],
            &["opsdeck", "--config", inv, "status", ""],
        ));
        assert_eq!(got, Vec::<String>::new(), "{inv}");
    }
    // subcommands still complete: they do not need the inventory
    let got = bash(
        &script,
        &s.path("empty"),
        &[("OPSDECK_CONFIG", &broken)],
        &["opsdeck", "sta"],
    );
    assert_eq!(got, ["status"]);
}

/// The completer the script calls: a completion request that cannot be answered (a cursor
/// past the words) says nothing and fails quietly.
#[test]
fn a_failed_completion_request_prints_nothing() {
    let out = Command::new(BIN)
        .args(["--", "opsdeck", "run", "li"])
        .env("OPSDECK_COMPLETE", "bash")
        .env("_CLAP_COMPLETE_INDEX", "9")
        .env_remove("OPSDECK_CONFIG")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(out.stdout.is_empty() && out.stderr.is_empty(), "{out:?}");
}

/// `opsdeck completions` for every shell: the script calls this binary, by the variable
/// only opsdeck reads; an unknown shell is a usage error.
#[test]
fn every_shell_gets_a_script() {
    let s = Scratch::new();
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let script = std::fs::read_to_string(s.script(shell)).unwrap();
        assert!(script.contains("OPSDECK_COMPLETE"), "{shell}:\n{script}");
        assert!(
            script.contains(BIN),
            "{shell} does not call {BIN}:\n{script}"
        );
    }
    let out = Command::new(BIN)
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
}

/// Whether `shell` is installed; when it is not, fails under OPSDECK_REQUIRE_LAB=1 and
/// says the test is skipped otherwise.
fn have(shell: &str) -> bool {
    let found = Command::new(shell)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !found {
        let why = format!("{shell} is not installed (tests/lab/lab up installs it)");
        assert!(
            std::env::var("OPSDECK_REQUIRE_LAB").as_deref() != Ok("1"),
            "OPSDECK_REQUIRE_LAB=1: {why}"
        );
        eprintln!("skipped: {why}");
    }
    found
}

#[test]
fn zsh_parses_its_script() {
    if !have("zsh") {
        return;
    }
    let s = Scratch::new();
    let out = Command::new("zsh")
        .arg("-n")
        .arg(s.script("zsh"))
        .output()
        .unwrap();
    assert!(out.status.success() && out.stderr.is_empty(), "{out:?}");
}

#[test]
fn fish_parses_its_script_and_completes_run_li_to_lila() {
    if !have("fish") {
        return;
    }
    let s = Scratch::new();
    let script = s.script("fish");
    let out = Command::new("fish")
        .arg("-n")
        .arg(&script)
        .output()
        .unwrap();
    assert!(out.status.success() && out.stderr.is_empty(), "{out:?}");
    let fish = |line: &str| -> Vec<String> {
        let out = Command::new("fish")
            .args(["--no-config", "-c"])
            .arg(format!("source {}; complete -C '{line}'", script.display()))
            .current_dir(s.path("empty"))
            .env("OPSDECK_CONFIG", s.inventory())
            .env("HOME", s.dir.path())
            .output()
            .unwrap();
        assert!(out.status.success() && out.stderr.is_empty(), "{out:?}");
        // each line `value<TAB>description`
        text(&out.stdout)
            .lines()
            .map(|l| l.split('\t').next().unwrap_or("").to_string())
            .collect()
    };
    assert_eq!(fish("opsdeck run li"), ["lila"]);
    assert_eq!(
        fish("opsdeck run lab-two --stack "),
        ["course-supporter", "proxy"]
    );
}

/// Fails, saying how to get it, when `man` is not installed: the man tests must not pass
/// without it.
fn require_man() {
    let found = Command::new("man")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "`man` is not installed: the man page cannot be checked. tests/lab/lab up installs \
         man-db (sudo tests/lab/lab up, or apt-get install man-db)"
    );
}

/// `man` with a plain pager and a fixed width.
fn man_command() -> Command {
    require_man();
    let mut cmd = Command::new("man");
    cmd.env("MANPAGER", "cat")
        .env("PAGER", "cat")
        .env("MANWIDTH", "80")
        .env("LC_ALL", "C.UTF-8")
        .env_remove("MANOPT");
    cmd
}

/// `man --warnings -l -` on `page`: the text, and groff's warnings and errors must be none.
fn render(page: &[u8]) -> String {
    let mut man = man_command()
        .args(["--warnings", "-l", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    man.stdin.take().unwrap().write_all(page).unwrap();
    let out = man.wait_with_output().unwrap();
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "man -l -: {}\n{}",
        out.status,
        text(&out.stderr)
    );
    text(&out.stdout)
}

fn opsdeck(args: &[&str]) -> Output {
    let out = Command::new(BIN).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "opsdeck {args:?}: {}",
        text(&out.stderr)
    );
    out
}

#[test]
fn opsdeck_man_renders_with_man() {
    // the pipe of the README, as a shell runs it
    require_man();
    let out = Command::new("bash")
        .args([
            "--norc",
            "-c",
            "set -o pipefail; \"$0\" man | man --warnings -l -",
            BIN,
        ])
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "80")
        .env("LC_ALL", "C.UTF-8")
        .output()
        .unwrap();
    assert!(out.status.success() && out.stderr.is_empty(), "{out:?}");
    let shown = text(&out.stdout);
    // man justifies lines: compare with single spaces
    let words = shown.split_whitespace().collect::<Vec<_>>().join(" ");
    for want in [
        "opsdeck(1)",
        "NAME",
        "opsdeck - A terminal ops console",
        "SYNOPSIS",
        "OPTIONS",
        "--config <PATH>",
        "SUBCOMMANDS",
        "opsdeck-run(1)",
        "opsdeck-completions(1)",
        "ENVIRONMENT",
        "OPSDECK_CONFIG",
        "FILES",
        "source <(opsdeck completions bash)",
        "SEE ALSO",
    ] {
        assert!(
            words.contains(want),
            "{want:?} not in the rendered page:\n{shown}"
        );
    }
    // no roff left unread
    for line in shown.lines() {
        assert!(
            !line.starts_with('.') && !line.contains("\\f"),
            "roff in the page: {line:?}"
        );
    }
    assert_eq!(render(&opsdeck(&["man"]).stdout), shown);
}

#[test]
fn every_subcommands_page_renders() {
    let run = render(&opsdeck(&["man", "run"]).stdout);
    for want in [
        "opsdeck-run(1)",
        "--hosts <A,B,...>",
        "--stack <STACK>",
        "SEE ALSO",
    ] {
        assert!(run.contains(want), "{want:?} not in opsdeck-run(1):\n{run}");
    }
    let check = render(&opsdeck(&["man", "config", "check"]).stdout);
    assert!(check.contains("opsdeck-config-check(1)"), "{check}");
    let dir = tempfile::tempdir().unwrap();
    let out = opsdeck(&[
        "man",
        "--out-dir",
        dir.path().join("man1").to_str().unwrap(),
    ]);
    let files: Vec<&str> = std::str::from_utf8(&out.stdout).unwrap().lines().collect();
    assert_eq!(files.len(), 14, "{files:?}"); // opsdeck, 11 subcommands, config check|schema
    for f in files {
        let name = Path::new(f)
            .file_stem()
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        let shown = render(&std::fs::read(f).unwrap());
        assert!(shown.starts_with(&format!("{name}(1)")), "{f}:\n{shown}");
    }
    let bad = Command::new(BIN).args(["man", "nope"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        text(&bad.stderr).contains("no page for \"nope\""),
        "{bad:?}"
    );
}

/// The real thing: an interactive bash in a pseudo-terminal, the script sourced, and
/// `opsdeck run li` + TAB typed; readline puts `lila` on the line. (`opsdeck` is a shell
/// function here that prints its arguments, so that Enter shows what the line became.)
#[test]
fn tab_in_an_interactive_bash_completes_run_li_to_lila() {
    let s = Scratch::new();
    let script = s.script("bash");
    let mut cmd = Command::new("bash");
    cmd.args(["--norc", "--noprofile", "-i"])
        .current_dir(s.path("empty"))
        .env("OPSDECK_CONFIG", s.inventory())
        .env("PS1", "$ ")
        .env("INPUTRC", "/dev/null")
        .env("TERM", "dumb")
        .env("HISTFILE", "/dev/null")
        .env_remove("OPSDECK_COMPLETE");
    let mut bash = expectrl::Session::spawn(cmd).expect("bash in a pty");
    bash.set_expect_timeout(Some(std::time::Duration::from_secs(20)));
    let lines = [
        format!("source '{}'", script.display()),
        "opsdeck() { printf '<%s>' \"$@\"; echo; }".to_string(),
        "echo ready-$((40+2))".to_string(),
    ];
    for l in lines {
        bash.send_line(&l).unwrap();
    }
    bash.expect("ready-42").expect("bash sourced the script");
    bash.send("opsdeck run li\t").unwrap();
    bash.send("\r").unwrap();
    bash.expect("<run><lila>")
        .expect("TAB completed li to lila");
    bash.send_line("exit").unwrap();
}
