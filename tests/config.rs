//! The inventory, checked the way an operator meets it: `opsdeck config check` on the
//! real binary, plus the library's `parse_str` on the same fixtures. Every malformed
//! fixture in `tests/fixtures/config` must be rejected with exit code 2 and an error
//! that names the file, the line and the column, and says what is wrong.

// `allow-expect-in-tests` covers `#[test]` functions only; the helpers below panic on
// purpose too, since a panic is how a test reports a broken environment.
#![allow(clippy::expect_used)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use opsdeck::config::{ConfigError, parse_str};

const BIN: &str = env!("CARGO_BIN_EXE_opsdeck");
const ROOT: &str = env!("CARGO_MANIFEST_DIR");
/// Relative to `ROOT`, so error messages carry a predictable path.
const FIXTURES: &str = "tests/fixtures/config";

/// (fixture, line, column, message fragment). Line and column are 1-based, the column
/// in characters, exactly as printed after `path:`.
const MALFORMED: &[(&str, usize, usize, &str)] = &[
    (
        "action_empty_steps.toml",
        12,
        9,
        "an action needs at least one step",
    ),
    (
        "action_key_multichar.toml",
        11,
        7,
        "key \"Ctrl-C\" must be a single character",
    ),
    (
        "action_key_reserved.toml",
        11,
        7,
        "key \"q\" is already bound by opsdeck; pick another (see `?` in the TUI)",
    ),
    (
        "action_key_twice.toml",
        20,
        7,
        "key \"C\" is used by two actions on host \"lila\"",
    ),
    (
        "backup_glob_with_slash.toml",
        12,
        8,
        "a backup glob matches file names inside `dir`: it must be non-empty and contain no `/`",
    ),
    (
        "backup_two_methods.toml",
        10,
        8,
        "backup set \"app.db\" has both `pg_dump` and `file_copy`: choose one",
    ),
    (
        "check_url_without_scheme.toml",
        11,
        7,
        "check url \"lila.example.invalid/health\" must start with http:// or https://",
    ),
    ("duplicate_host.toml", 12, 8, "duplicate host name \"lila\""),
    (
        "duplicate_stack.toml",
        10,
        8,
        "duplicate stack name \"course-supporter\" on host \"course-supporter\"",
    ),
    (
        "duration_unknown_unit.toml",
        14,
        15,
        "invalid duration \"3y\": unknown unit \"y\" (use ms, s, m, h, d or w)",
    ),
    (
        "duration_without_unit.toml",
        2,
        11,
        "a duration needs a unit: write \"90s\", \"90m\" or \"90h\", not 90",
    ),
    (
        "downgrade_empty_steps.toml",
        10,
        9,
        "a recipe needs at least one step",
    ),
    (
        "empty_steps.toml",
        10,
        9,
        "a recipe needs at least one step",
    ),
    (
        "expect_status_invalid.toml",
        12,
        17,
        "expect_status 2000 is not an HTTP status (100 to 599)",
    ),
    (
        "follow_redirects_via_ssh.toml",
        11,
        7,
        "follow_redirects works only for direct checks, not via = \"ssh\"",
    ),
    (
        "metrics_netdata_without_scheme.toml",
        4,
        11,
        "lila: metrics: netdata url \"127.0.0.1:19999\" must start with http:// or https://",
    ),
    (
        "metrics_two_tokens.toml",
        2,
        11,
        "settings: metrics: give a bearer token by token_env or by token_file, not both",
    ),
    (
        "metrics_unknown_source.toml",
        3,
        11,
        "metrics must be \"ssh\", { netdata = \"URL\", via = \"ssh\" } or { prometheus = \"URL\", instance = \"{address}:9100\" }",
    ),
    (
        "host_name_with_space.toml",
        2,
        8,
        "host name \"course supporter\" must be non-empty and have no spaces",
    ),
    // Points at `address = "local"` (line 4), the value that makes the host local; the
    // offending `user = ...` (line 5) carries no span.
    (
        "local_with_user.toml",
        4,
        11,
        "host \"local\" is `local` but sets `user`, which only SSH hosts use",
    ),
    (
        "missing_bracket.toml",
        5,
        14,
        "unclosed array table, expected `]`",
    ),
    (
        "misspelt_key.toml",
        4,
        1,
        "unknown field `adress`, expected one of `name`, `address`, `port`",
    ),
    (
        "port_as_string.toml",
        4,
        8,
        "invalid type: string \"22\", expected a port number from 1 to 65535",
    ),
    (
        "port_zero.toml",
        4,
        8,
        "port 0 is out of range: use a port number from 1 to 65535",
    ),
    (
        "port_out_of_range.toml",
        5,
        8,
        "port 70000 is out of range: use a port number from 1 to 65535",
    ),
    (
        "step_unclosed_quote.toml",
        13,
        3,
        "cannot split \"sh -c 'compose up -d\" into words: a quote is not closed",
    ),
    (
        "unknown_dump_format.toml",
        17,
        10,
        "unknown variant `gzip`, expected `custom` or `sql-gzip`",
    ),
    (
        "unknown_theme.toml",
        3,
        9,
        "unknown theme \"solarized\": use one of default, 16color or a path to a theme file",
    ),
    (
        "unterminated_string.toml",
        3,
        32,
        "invalid basic string, expected `\"`",
    ),
    // Known imprecision: points at the inline table's `{` (column 43), not at the
    // unknown key `timeout` (column 66).
    (
        "wait_healthy_unknown_key.toml",
        10,
        43,
        "unknown field `timeout`, expected `wait_healthy`",
    ),
];

/// (fixture, exact first line of the summary).
const VALID: &[(&str, &str)] = &[
    (
        "valid_minimal.toml",
        "tests/fixtures/config/valid_minimal.toml: OK: 1 host, 0 stacks, 0 checks, 0 backup sets",
    ),
    (
        "valid_full.toml",
        "tests/fixtures/config/valid_full.toml: OK: 1 host, 1 stack, 2 checks, 2 backup sets",
    ),
];

fn fixture(name: &str) -> String {
    format!("{FIXTURES}/{name}")
}

fn abs_fixture(name: &str) -> PathBuf {
    Path::new(ROOT).join(FIXTURES).join(name)
}

/// The binary with no inventory leaking in from the environment of whoever runs the
/// tests: `OPSDECK_CONFIG` removed, `HOME` and `XDG_CONFIG_HOME` pointed at `home`.
fn opsdeck(args: &[&str], cwd: &Path, home: &Path, env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .current_dir(cwd)
        .env_remove("OPSDECK_CONFIG")
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join(".config"));
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run the opsdeck binary")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).expect("utf-8 output")
}

/// Line `n` (1-based) of a fixture.
fn source_line(name: &str, n: usize) -> String {
    let src = fs::read_to_string(abs_fixture(name)).expect("read fixture");
    src.lines().nth(n - 1).unwrap_or("").to_string()
}

#[test]
fn every_fixture_is_in_a_table() {
    let mut on_disk: Vec<String> = fs::read_dir(Path::new(ROOT).join(FIXTURES))
        .expect("fixtures dir")
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|n| n.ends_with(".toml"))
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = MALFORMED
        .iter()
        .map(|r| r.0)
        .chain(VALID.iter().map(|r| r.0))
        .map(String::from)
        .collect();
    listed.sort();
    assert_eq!(on_disk, listed);
    assert_eq!(MALFORMED.len(), 30);
}

#[test]
fn malformed_fixtures_exit_2_naming_file_line_and_column() {
    let home = tempfile::tempdir().expect("tempdir");
    let mut failures = Vec::new();
    for &(name, line, column, fragment) in MALFORMED {
        let path = fixture(name);
        let out = opsdeck(
            &["config", "check", &path],
            Path::new(ROOT),
            home.path(),
            &[],
        );
        let stderr = text(&out.stderr);
        let lines: Vec<&str> = stderr.lines().collect();
        let prefix = format!("opsdeck: {path}:{line}:{column}: ");
        let gutter = " ".repeat(line.to_string().len());
        let expected_tail = [
            format!("{gutter} |"),
            format!("{line} | {}", source_line(name, line)),
            format!("{gutter} | {}^", " ".repeat(column - 1)),
        ];
        let problems = [
            (
                out.status.code() != Some(2),
                format!("exit {:?}", out.status.code()),
            ),
            (!out.stdout.is_empty(), "stdout not empty".into()),
            (
                !stderr.starts_with(&prefix),
                format!("expected prefix {prefix:?}"),
            ),
            (
                !lines.first().is_some_and(|l| l.contains(fragment)),
                format!("expected fragment {fragment:?}"),
            ),
            (
                lines.len() != 4 || lines[1..] != expected_tail,
                format!("expected excerpt {expected_tail:?}"),
            ),
        ];
        for (bad, what) in problems {
            if bad {
                failures.push(format!("{name}: {what}\n--- stderr:\n{stderr}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn parse_str_reports_the_same_positions_as_the_binary() {
    let mut failures = Vec::new();
    for &(name, line, column, fragment) in MALFORMED {
        let path = fixture(name);
        let src = fs::read_to_string(abs_fixture(name)).expect("read fixture");
        match parse_str(&src, Path::new(&path)) {
            Err(ConfigError::Invalid {
                path: p,
                line: l,
                column: c,
                message,
                excerpt,
            }) => {
                if p != Path::new(&path) {
                    failures.push(format!("{name}: path {p:?}"));
                }
                if (l, c) != (line, column) {
                    failures.push(format!("{name}: at {l}:{c}, expected {line}:{column}"));
                }
                if !message.contains(fragment) {
                    failures.push(format!("{name}: message {message:?} lacks {fragment:?}"));
                }
                if excerpt != source_line(name, line) {
                    failures.push(format!("{name}: excerpt {excerpt:?}"));
                }
            }
            other => failures.push(format!("{name}: expected Invalid, got {other:?}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn binary_prints_exactly_the_library_error() {
    let home = tempfile::tempdir().expect("tempdir");
    for &(name, ..) in MALFORMED {
        let path = fixture(name);
        let src = fs::read_to_string(abs_fixture(name)).expect("read fixture");
        let err = parse_str(&src, Path::new(&path)).expect_err("malformed fixture");
        let out = opsdeck(
            &["config", "check", &path],
            Path::new(ROOT),
            home.path(),
            &[],
        );
        assert_eq!(text(&out.stderr), format!("opsdeck: {err}\n"), "{name}");
    }
}

#[test]
fn display_shows_the_offending_line_with_a_caret_under_the_column() {
    let name = "port_out_of_range.toml";
    let path = fixture(name);
    let src = fs::read_to_string(abs_fixture(name)).expect("read fixture");
    let err = parse_str(&src, Path::new(&path)).expect_err("malformed fixture");
    assert_eq!(
        err.to_string(),
        "tests/fixtures/config/port_out_of_range.toml:5:8: port 70000 is out of range: use a port number from 1 to 65535\n  \
         |\n\
         5 | port = 70000\n  \
         |        ^"
    );

    // A two-digit line number widens the gutter on every line of the excerpt.
    let name = "duration_unknown_unit.toml";
    let path = fixture(name);
    let src = fs::read_to_string(abs_fixture(name)).expect("read fixture");
    let err = parse_str(&src, Path::new(&path)).expect_err("malformed fixture");
    assert_eq!(
        err.to_string(),
        "tests/fixtures/config/duration_unknown_unit.toml:14:15: \
         invalid duration \"3y\": unknown unit \"y\" (use ms, s, m, h, d or w)\n   \
         |\n\
         14 | keep_within = \"3y\"\n   \
         |               ^"
    );
}

#[test]
fn columns_count_characters_not_bytes() {
    // `é` is two bytes: the `[]` is character 57 but byte 58 of its line.
    let src = "[[host]]\nname = \"web1\"\nstack = [{ name = \"café\", dir = \"~\", deploy = { steps = [] } }]\n";
    let err = parse_str(src, Path::new("h.toml")).expect_err("empty steps");
    assert_eq!(
        err.to_string(),
        format!(
            "h.toml:3:57: a recipe needs at least one step\n  |\n\
             3 | stack = [{{ name = \"café\", dir = \"~\", deploy = {{ steps = [] }} }}]\n  | {}^",
            " ".repeat(56)
        )
    );
}

#[test]
fn valid_fixtures_pass_with_a_summary() {
    let home = tempfile::tempdir().expect("tempdir");
    for &(name, first) in VALID {
        let path = fixture(name);
        let out = opsdeck(
            &["config", "check", &path],
            Path::new(ROOT),
            home.path(),
            &[],
        );
        assert_eq!(out.status.code(), Some(0), "{name}: {}", text(&out.stderr));
        assert_eq!(text(&out.stderr), "", "{name}");
        assert_eq!(text(&out.stdout).lines().next(), Some(first), "{name}");
    }
    let out = opsdeck(
        &["config", "check", &fixture("valid_minimal.toml")],
        Path::new(ROOT),
        home.path(),
        &[],
    );
    assert_eq!(
        text(&out.stdout),
        "tests/fixtures/config/valid_minimal.toml: OK: 1 host, 0 stacks, 0 checks, 0 backup sets\n  \
         web1: ssh web1, every 2s\n"
    );
}

#[test]
fn valid_fixtures_parse_in_the_library() {
    let src = fs::read_to_string(abs_fixture("valid_minimal.toml")).expect("read");
    let inv = parse_str(&src, Path::new("valid_minimal.toml")).expect("valid");
    assert_eq!(inv.hosts.len(), 1);
    assert_eq!(inv.hosts[0].name.get_ref(), "web1");
    assert_eq!(inv.hosts[0].address(), "web1");

    let src = fs::read_to_string(abs_fixture("valid_full.toml")).expect("read");
    let inv = parse_str(&src, Path::new("valid_full.toml")).expect("valid");
    let host = &inv.hosts[0];
    assert_eq!(host.port, Some(opsdeck::config::Port(2222)));
    assert_eq!(host.checks.len(), 1);
    let stack = &host.stacks[0];
    assert_eq!(
        stack.deploy.as_ref().map(|d| d.steps.get_ref().len()),
        Some(3)
    );
    assert_eq!(
        stack.actions[0].key.as_ref().map(|k| k.get_ref().as_str()),
        Some("V")
    );
    assert_eq!(stack.backups.len(), 2);
    use opsdeck::config::{MetricsSource, Via};
    match host.metrics.as_ref().map(|m| m.get_ref()) {
        Some(MetricsSource::Netdata(n)) => {
            assert_eq!(
                (n.netdata.as_str(), n.via),
                ("http://127.0.0.1:19999", Via::Ssh)
            );
        }
        other => panic!("host metrics: {other:?}"),
    }
    match inv.settings.metrics.as_ref().map(|m| m.get_ref()) {
        Some(MetricsSource::Prometheus(p)) => {
            assert_eq!(p.instance, "{name}:9100");
            assert_eq!(p.token_env.as_deref(), Some("PROM_TOKEN"));
        }
        other => panic!("settings metrics: {other:?}"),
    }
}

#[test]
fn committed_example_passes_and_names_its_four_hosts() {
    let home = tempfile::tempdir().expect("tempdir");
    let out = opsdeck(
        &["config", "check", "hosts.toml"],
        Path::new(ROOT),
        home.path(),
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stderr), "");
    let stdout = text(&out.stdout);
    let mut lines = stdout.lines();
    assert_eq!(
        lines.next(),
        Some("hosts.toml: OK: 4 hosts, 4 stacks, 4 checks, 3 backup sets")
    );
    let hosts: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("  ") && !l.starts_with("    "))
        .map(|l| l.trim_start().split(':').next().unwrap_or(""))
        .collect();
    assert_eq!(hosts, ["course-supporter", "lila", "duckdb-app", "local"]);
    assert!(
        stdout.contains("\n  local: this machine, every 2s\n"),
        "{stdout}"
    );
}

#[test]
fn missing_file_exits_2_and_names_the_path() {
    let home = tempfile::tempdir().expect("tempdir");
    let path = fixture("does-not-exist.toml");
    let out = opsdeck(
        &["config", "check", &path],
        Path::new(ROOT),
        home.path(),
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with(
            "opsdeck: tests/fixtures/config/does-not-exist.toml: cannot read the inventory: "
        ),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[test]
fn no_inventory_anywhere_exits_2_and_explains() {
    let cwd = tempfile::tempdir().expect("tempdir");
    let home = tempfile::tempdir().expect("tempdir");
    let out = opsdeck(&["config", "check"], cwd.path(), home.path(), &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    assert_eq!(
        text(&out.stderr),
        format!(
            "opsdeck: no inventory found (--config, $OPSDECK_CONFIG, ./hosts.toml, {}); \
             without one opsdeck watches this machine\n",
            home.path().join(".config/opsdeck/hosts.toml").display()
        )
    );
}

/// A working directory with its own `hosts.toml` and an XDG config dir with another,
/// each naming a different host so the summary shows which one was read.
struct Layout {
    cwd: tempfile::TempDir,
    home: tempfile::TempDir,
}

impl Layout {
    fn new(in_cwd: bool, in_xdg: bool) -> Layout {
        let layout = Layout {
            cwd: tempfile::tempdir().expect("tempdir"),
            home: tempfile::tempdir().expect("tempdir"),
        };
        if in_cwd {
            fs::write(
                layout.cwd.path().join("hosts.toml"),
                "[[host]]\nname = \"from-cwd\"\n",
            )
            .expect("write");
        }
        if in_xdg {
            let dir = layout.xdg_file().parent().expect("parent").to_path_buf();
            fs::create_dir_all(&dir).expect("mkdir");
            fs::write(layout.xdg_file(), "[[host]]\nname = \"from-xdg\"\n").expect("write");
        }
        layout
    }

    fn xdg_file(&self) -> PathBuf {
        self.home.path().join(".config/opsdeck/hosts.toml")
    }

    fn check(&self, args: &[&str], env: &[(&str, &str)]) -> String {
        let out = opsdeck(args, self.cwd.path(), self.home.path(), env);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        text(&out.stdout)
    }
}

fn one_host_summary(source: &str, host: &str) -> String {
    format!(
        "{source}: OK: 1 host, 0 stacks, 0 checks, 0 backup sets\n  {host}: ssh {host}, every 2s\n"
    )
}

#[test]
fn discovery_env_beats_working_dir_and_xdg() {
    let layout = Layout::new(true, true);
    let env = abs_fixture("valid_minimal.toml");
    let env = env.to_str().expect("utf-8 path");
    let stdout = layout.check(&["config", "check"], &[("OPSDECK_CONFIG", env)]);
    assert_eq!(stdout, one_host_summary(env, "web1"));
}

#[test]
fn discovery_working_dir_beats_xdg() {
    let layout = Layout::new(true, true);
    let stdout = layout.check(&["config", "check"], &[]);
    assert_eq!(stdout, one_host_summary("hosts.toml", "from-cwd"));
    // An empty $OPSDECK_CONFIG counts as unset.
    let stdout = layout.check(&["config", "check"], &[("OPSDECK_CONFIG", "")]);
    assert_eq!(stdout, one_host_summary("hosts.toml", "from-cwd"));
}

#[test]
fn discovery_falls_back_to_the_xdg_config_dir() {
    let layout = Layout::new(false, true);
    let stdout = layout.check(&["config", "check"], &[]);
    let xdg = layout.xdg_file();
    assert_eq!(
        stdout,
        one_host_summary(xdg.to_str().expect("utf-8 path"), "from-xdg")
    );
}

#[test]
fn discovery_config_flag_beats_everything() {
    let layout = Layout::new(true, true);
    let env = abs_fixture("valid_full.toml");
    let env = env.to_str().expect("utf-8 path");
    let flag = abs_fixture("valid_minimal.toml");
    let flag = flag.to_str().expect("utf-8 path");
    let expected = one_host_summary(flag, "web1");
    for args in [
        ["--config", flag, "config", "check"],
        ["config", "check", "--config", flag],
        ["-c", flag, "config", "check"],
    ] {
        let stdout = layout.check(&args, &[("OPSDECK_CONFIG", env)]);
        assert_eq!(stdout, expected, "{args:?}");
    }
    // An explicit path to `config check` is what gets checked, even beside --config.
    let stdout = layout.check(
        &["--config", env, "config", "check", flag],
        &[("OPSDECK_CONFIG", env)],
    );
    assert_eq!(stdout, expected);
}

#[test]
fn discovered_invalid_inventory_is_reported_with_its_path() {
    let layout = Layout::new(false, false);
    let env = abs_fixture("port_as_string.toml");
    let env = env.to_str().expect("utf-8 path");
    let out = opsdeck(
        &["config", "check"],
        layout.cwd.path(),
        layout.home.path(),
        &[("OPSDECK_CONFIG", env)],
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with(&format!("opsdeck: {env}:4:8: invalid type: string \"22\"")),
        "{stderr}"
    );
}
