//! The JSON Schema of `hosts.toml` (schema/hosts.schema.json): generated from the inventory's
//! types, committed, and checked here against the committed file, the example inventory, the
//! lab's, the config fixtures and every inventory the tests write; it must also refuse what
//! the loader refuses for a wrong type, an unknown key or an unknown enum value.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

const SCHEMA_FILE: &str = "schema/hosts.schema.json";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn validator() -> jsonschema::Validator {
    let schema: Value = serde_json::from_str(&read(SCHEMA_FILE)).unwrap();
    jsonschema::draft7::new(&schema).expect("the committed schema compiles as draft-07")
}

/// A TOML text as the JSON value the schema judges (what Taplo does with the file).
fn json_of(toml_text: &str) -> Value {
    toml::from_str(toml_text).unwrap_or_else(|e| panic!("not TOML ({e}):\n{toml_text}"))
}

/// The schema's complaints about `toml_text`, one line each; empty when it is valid.
fn complaints(v: &jsonschema::Validator, toml_text: &str) -> Vec<String> {
    let json = json_of(toml_text);
    v.iter_errors(&json)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

fn assert_accepts(v: &jsonschema::Validator, what: &str, toml_text: &str) {
    let errors = complaints(v, toml_text);
    assert!(
        errors.is_empty(),
        "the schema refuses {what}:\n  {}\n--- inventory ---\n{toml_text}",
        errors.join("\n  ")
    );
}

/// The schema refuses `toml_text`, with a complaint containing `needle`.
fn assert_refuses(v: &jsonschema::Validator, toml_text: &str, needle: &str) {
    let errors = complaints(v, toml_text);
    assert!(
        errors.iter().any(|e| e.contains(needle)),
        "the schema should refuse this, saying {needle:?}; it said {errors:#?}:\n{toml_text}"
    );
}

fn loader_accepts(text: &str) -> bool {
    opsdeck::config::parse_str(text, Path::new("hosts.toml")).is_ok()
}

#[test]
fn the_committed_schema_is_the_generated_one() {
    let generated = opsdeck::config::json_schema();
    let path = root().join(SCHEMA_FILE);
    if std::env::var_os("UPDATE_SCHEMA").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed != generated {
        let line = committed
            .lines()
            .zip(generated.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| committed.lines().count().min(generated.lines().count()));
        panic!(
            "{SCHEMA_FILE} differs from the schema the inventory types in src/config generate \
             (first at line {}). Regenerate it with\n\n    \
             UPDATE_SCHEMA=1 cargo test --test schema\n\nor `opsdeck config schema > {SCHEMA_FILE}`, \
             and commit it.",
            line + 1
        );
    }
}

#[test]
fn config_schema_prints_the_generated_schema() {
    let out = Command::new(env!("CARGO_BIN_EXE_opsdeck"))
        .args(["config", "schema"])
        .env_remove("OPSDECK_CONFIG")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        opsdeck::config::json_schema()
    );
}

#[test]
fn the_schema_is_draft_07_with_descriptions_defaults_and_formats() {
    let schema: Value = serde_json::from_str(&read(SCHEMA_FILE)).unwrap();
    // A valid schema by its own meta-schema (Taplo validates with draft-07).
    jsonschema::meta::validate(&schema).unwrap();
    assert_eq!(schema["$schema"], "http://json-schema.org/draft-07/schema#");
    let defs = &schema["definitions"];
    // Doc comments become descriptions, serde defaults become defaults.
    assert_eq!(
        defs["Host"]["properties"]["production"]["description"],
        "Confirmations ask you to type the host name."
    );
    assert_eq!(defs["Host"]["properties"]["production"]["default"], false);
    assert_eq!(defs["Check"]["properties"]["expect_status"]["default"], 200);
    assert_eq!(defs["PgDump"]["properties"]["user"]["default"], "postgres");
    assert_eq!(
        defs["Stack"]["properties"]["backup_before_migrate"]["default"],
        true
    );
    // Enums list their values, as serde spells them, each with its description.
    let compose: Vec<&str> = defs["ComposeCommand"]["oneOf"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["const"].as_str().unwrap())
        .collect();
    assert_eq!(compose, ["auto", "docker compose", "docker-compose"]);
    // Durations are strings of the parser's grammar; no key is ever null (TOML has none).
    assert_eq!(defs["Duration"]["type"], "string");
    assert_eq!(
        defs["Duration"]["pattern"],
        opsdeck::config::duration::DURATION_PATTERN
    );
    assert!(!read(SCHEMA_FILE).contains("null"));
}

/// The duration pattern and the parser agree, on what either might get wrong.
#[test]
fn the_duration_pattern_is_the_parsers_grammar() {
    let v = validator();
    for text in [
        "90s",
        "500ms",
        "15m",
        "26h",
        "7d",
        "2w",
        "1h30m",
        " 2m ",
        "0s",
        "1d2h3m4s5ms",
        "",
        "90",
        "h",
        "3y",
        "1.5h",
        "1h 30m",
        "-5s",
        "1H",
        "s90",
        "1hh",
        "ms",
        "5sm",
    ] {
        let inv = format!("[settings]\nrefresh = {text:?}\n");
        let parser = opsdeck::config::parse_duration(text).is_ok();
        assert_eq!(
            v.is_valid(&json_of(&inv)),
            parser,
            "duration {text:?}: the parser says {parser}"
        );
        assert_eq!(loader_accepts(&inv), parser, "{inv}");
    }
}

#[test]
fn the_example_inventory_is_valid() {
    let v = validator();
    let text = read("hosts.toml");
    assert!(loader_accepts(&text));
    assert_accepts(&v, "hosts.toml", &text);
}

#[test]
fn the_lab_inventory_is_valid() {
    let v = validator();
    let text = read("tests/lab/hosts.toml.in")
        .replace("@STATE@", "/tmp/opsdeck-lab/state")
        .replace("@RUN@", "/tmp/opsdeck-lab/run");
    assert!(!text.contains('@'), "a placeholder left: {text}");
    assert!(loader_accepts(&text));
    assert_accepts(&v, "tests/lab/hosts.toml.in", &text);
}

/// Every config fixture the loader accepts, the schema accepts; and of those it refuses,
/// the schema refuses the ones a single value's type or shape already gives away.
#[test]
fn the_config_fixtures() {
    let v = validator();
    // Refused by the loader and by the schema, with the schema's words.
    let refused = [
        ("action_empty_steps", "[] has less than 1 item"),
        ("action_key_multichar", "is longer than 1 character"),
        ("backup_glob_with_slash", "does not match \"^[^/]+$\""),
        ("check_url_without_scheme", "does not match \"^https?://\""),
        ("downgrade_empty_steps", "[] has less than 1 item"),
        ("duration_unknown_unit", "does not match"),
        ("duration_without_unit", "is not of type \"string\""),
        ("empty_steps", "[] has less than 1 item"),
        (
            "expect_status_invalid",
            "is greater than the maximum of 599",
        ),
        ("host_name_with_space", r#"does not match "^\S+$""#),
        (
            "misspelt_key",
            "Additional properties are not allowed ('adress'",
        ),
        ("port_as_string", "is not of type \"integer\""),
        ("port_out_of_range", "is greater than the maximum of 65535"),
        ("port_zero", "is less than the minimum of 1"),
        (
            "unknown_dump_format",
            "is not valid under any of the schemas",
        ),
        (
            "wait_healthy_unknown_key",
            "is not valid under any of the schemas",
        ),
        (
            "metrics_netdata_without_scheme",
            "is not valid under any of the schemas",
        ),
        (
            "metrics_unknown_source",
            "is not valid under any of the schemas",
        ),
    ];
    // Refused by the loader only: what needs the whole file, the file system, a shell's
    // quoting rules or opsdeck's key map (`opsdeck config check` says it).
    let loader_only = [
        "action_key_reserved",
        "action_key_twice",
        "backup_two_methods",
        "duplicate_host",
        "duplicate_stack",
        "follow_redirects_via_ssh",
        "local_with_user",
        "metrics_two_tokens",
        "step_unclosed_quote",
        "unknown_theme",
    ];
    // Not TOML at all.
    let not_toml = ["missing_bracket", "unterminated_string"];
    let mut seen = 0;
    for entry in std::fs::read_dir(root().join("tests/fixtures/config")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_str().unwrap().to_string();
        let text = std::fs::read_to_string(&path).unwrap();
        seen += 1;
        if not_toml.contains(&name.as_str()) {
            assert!(toml::from_str::<Value>(&text).is_err(), "{name}");
            continue;
        }
        if loader_accepts(&text) {
            assert!(name.starts_with("valid_"), "{name}: the loader accepts it");
            assert_accepts(&v, &name, &text);
        } else if let Some((_, needle)) = refused.iter().find(|(n, _)| *n == name) {
            assert_refuses(&v, &text, needle);
        } else {
            assert!(
                loader_only.contains(&name.as_str()),
                "fixture {name}: add it to `refused` or `loader_only`"
            );
            assert_accepts(&v, &name, &text);
        }
    }
    assert!(seen >= 28, "only {seen} fixtures");
}

#[test]
fn wrong_types_unknown_keys_and_unknown_enum_values_are_refused() {
    let v = validator();
    let host = "[[host]]\nname = \"a\"\n";
    let stack = "[[host]]\nname = \"a\"\n[[host.stack]]\nname = \"s\"\ndir = \"~/s\"\n";
    let cases: &[(String, &str)] = &[
        // A duration needs a unit, and is a string.
        (
            "[settings]\nrefresh = 5\n".into(),
            "5 is not of type \"string\"",
        ),
        ("[settings]\nrefresh = \"5\"\n".into(), "does not match"),
        (
            "[settings]\nread_only = \"yes\"\n".into(),
            "is not of type \"boolean\"",
        ),
        (
            "[settings]\ntheme = 1\n".into(),
            "is not of type \"string\"",
        ),
        (
            "[settings]\nthresholds = { disk_warn = \"85\" }\n".into(),
            "is not of type \"number\"",
        ),
        (
            "[settings]\nthresholds = { restarts = 2.5 }\n".into(),
            "is not of type \"integer\"",
        ),
        (
            "[settings]\nthresholds = { disk = 85 }\n".into(),
            "Additional properties are not allowed ('disk'",
        ),
        (
            "[settings]\nnotify = { url = \"http://x\", kind = \"slack\" }\n".into(),
            "is not valid under any of the schemas",
        ),
        (
            "[settings]\nnotify = { kind = \"ntfy\" }\n".into(),
            "\"url\" is a required property",
        ),
        (
            "[settings]\nrefrsh = \"2s\"\n".into(),
            "Additional properties are not allowed ('refrsh'",
        ),
        (
            "[setting]\nrefresh = \"2s\"\n".into(),
            "Additional properties are not allowed ('setting'",
        ),
        (
            format!("{host}port = \"22\"\n"),
            "\"22\" is not of type \"integer\"",
        ),
        (
            format!("{host}port = 70000\n"),
            "is greater than the maximum of 65535",
        ),
        (
            format!("{host}production = 1\n"),
            "is not of type \"boolean\"",
        ),
        (
            format!("{host}adress = \"x\"\n"),
            "Additional properties are not allowed ('adress'",
        ),
        (
            "[[host]]\naddress = \"x\"\n".into(),
            "\"name\" is a required property",
        ),
        ("[host]\nname = \"a\"\n".into(), "is not of type \"array\""),
        (
            format!("{host}[[host.stack]]\nname = \"s\"\n"),
            "\"dir\" is a required property",
        ),
        (
            format!("{stack}compose = \"podman-compose\"\n"),
            "is not valid under any of the schemas",
        ),
        (
            format!("{stack}compose_files = \"a.yml\"\n"),
            "is not of type \"array\"",
        ),
        (
            format!("{stack}backup_before_migrate = \"no\"\n"),
            "is not of type \"boolean\"",
        ),
        (
            format!("{stack}[host.stack.deploy]\nsteps = \"compose up -d\"\n"),
            "is not of type \"array\"",
        ),
        (
            format!("{stack}[host.stack.deploy]\nsteps = [\"compose pull\", 3]\n"),
            "is not valid under any of the schemas",
        ),
        (
            format!("{stack}[host.stack.deploy]\nsteps = [\"  \"]\n"),
            "is not valid under any of the schemas",
        ),
        (
            format!("{stack}[host.stack.deploy]\nsteps = [{{ wait_healthy = 120 }}]\n"),
            "is not valid under any of the schemas",
        ),
        (
            format!("{stack}[host.stack.deploy]\nsteps = [\"x\"]\ntimeout = \"soon\"\n"),
            "does not match",
        ),
        (
            format!(
                "{stack}[[host.stack.check]]\nname = \"c\"\nurl = \"http://x/\"\nvia = \"proxy\"\n"
            ),
            "is not valid under any of the schemas",
        ),
        (
            format!(
                "{stack}[[host.stack.check]]\nname = \"c\"\nurl = \"http://x/\"\nexpect_status = \"200\"\n"
            ),
            "is not of type \"integer\"",
        ),
        (
            format!(
                "{stack}[[host.stack.check]]\nname = \"c\"\nurl = \"http://x/\"\ntls_warn_days = -1\n"
            ),
            "is less than the minimum of 0",
        ),
        (
            format!("{stack}[[host.stack.backup]]\nname = \"b\"\ndir = \"~/b\"\nglob = \"b-*\"\n"),
            "\"max_age\" is a required property",
        ),
        (
            format!(
                "{stack}[[host.stack.backup]]\nname = \"b\"\ndir = \"~/b\"\nglob = \"b-*\"\nmax_age = \"1d\"\nkeep_last = \"7\"\n"
            ),
            "is not of type \"integer\"",
        ),
        (
            format!(
                "{stack}[[host.stack.backup]]\nname = \"b\"\ndir = \"~/b\"\nglob = \"b-*\"\nmax_age = \"1d\"\n[host.stack.backup.pg_dump]\nservice = \"db\"\ndatabase = \"d\"\nformat = \"tar\"\n"
            ),
            "is not valid under any of the schemas",
        ),
        (
            format!(
                "{stack}[[host.stack.backup]]\nname = \"b\"\ndir = \"~/b\"\nglob = \"b-*\"\nmax_age = \"1d\"\n[host.stack.backup.file_copy]\nsource = \"a.db\"\nquiesce = [\"compose\", \"stop\"]\n"
            ),
            "is not of type \"string\"",
        ),
    ];
    for (text, needle) in cases {
        assert!(!loader_accepts(text), "the loader accepts it:\n{text}");
        assert_refuses(&v, text, needle);
    }
}

// ---------------------------------------------------------------------------------------
// Every inventory the tests write. They are string literals in tests/*.rs (most of them
// format! templates filled with the lab's paths), so this reads them out of the sources:
// a literal holding a whole inventory, or a host's body (from `[[host.stack]]` or
// `[[host.check]]` on, as tests/common/run.rs's host_inventory takes it, put under a host
// here), with its `{...}` holes filled with a plain word; every one the loader accepts must
// pass the schema. New inventories in new tests are covered without a change here.

/// The string literals of a Rust source, unescaped (`"…"`, `r"…"`, `r#"…"#`).
fn string_literals(src: &str) -> Vec<String> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '/' && chars.get(i + 1) == Some(&'/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '\'' {
            // A char literal ('"', '\'', '\n') or a lifetime ('a).
            if chars.get(i + 1) == Some(&'\\') {
                i += 2;
                while i < chars.len() && chars[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if chars.get(i + 2) == Some(&'\'') {
                i += 3;
            } else {
                i += 1;
            }
        } else if c == 'r'
            && (chars.get(i + 1) == Some(&'"') || chars.get(i + 1) == Some(&'#'))
            && (i == 0 || !chars[i - 1].is_alphanumeric() && chars[i - 1] != '_')
        {
            let mut j = i + 1;
            let mut hashes = 0;
            while chars.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if chars.get(j) != Some(&'"') {
                i += 1;
                continue;
            }
            let closing: String = std::iter::once('"')
                .chain(std::iter::repeat_n('#', hashes))
                .collect();
            let rest: String = chars[j + 1..].iter().collect();
            let end = rest.find(&closing).unwrap_or(rest.len());
            out.push(rest[..end].to_string());
            i = j + 1 + rest[..end].chars().count() + closing.chars().count();
        } else if c == '"' {
            let mut s = String::new();
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    i += 1;
                    match chars.get(i) {
                        Some('n') => s.push('\n'),
                        Some('t') => s.push('\t'),
                        Some('\n') => {
                            while chars.get(i + 1).is_some_and(|c| c.is_whitespace()) {
                                i += 1;
                            }
                        }
                        Some(other) => s.push(*other),
                        None => {}
                    }
                } else {
                    s.push(chars[i]);
                }
                i += 1;
            }
            i += 1;
            out.push(s);
        } else {
            i += 1;
        }
    }
    out
}

/// A format! template as the text it writes: `{{`/`}}` are braces, a `{hole}` alone on a
/// line is dropped (a body or extra keys), `[{}]` is one step, and any other `{...}` hole
/// becomes `x`.
fn fill_holes(template: &str) -> String {
    // A list of steps filled in by the test (tests/multi_deploy.rs): one step.
    let template = template.replace("[{}]", "[\"x\"]");
    let lines: Vec<String> = template
        .lines()
        .filter(|l| {
            let t = l.trim();
            let alone = t.starts_with('{') && t.ends_with('}');
            let hole = alone && !t.contains('=') && !t.contains(' ');
            !hole
        })
        .map(|l| {
            let mut out = String::new();
            let mut rest = l;
            while let Some(open) = rest.find('{') {
                out.push_str(&rest[..open]);
                let after = &rest[open + 1..];
                if let Some(stripped) = after.strip_prefix('{') {
                    out.push('{');
                    rest = stripped;
                    continue;
                }
                match after.find('}') {
                    Some(close)
                        if after[..close]
                            .chars()
                            .all(|c| c.is_alphanumeric() || "_:.?#".contains(c)) =>
                    {
                        out.push('x');
                        rest = &after[close + 1..];
                    }
                    _ => {
                        out.push('{');
                        rest = after;
                    }
                }
            }
            out.push_str(rest);
            out.replace("}}", "}")
        })
        .collect();
    lines.join("\n") + "\n"
}

#[test]
fn every_inventory_the_tests_write_is_valid() {
    let v = validator();
    let mut sources: Vec<PathBuf> = Vec::new();
    for dir in ["tests", "tests/common"] {
        for entry in std::fs::read_dir(root().join(dir)).unwrap() {
            let path = entry.unwrap().path();
            // Not this file: its inventories are made to be refused.
            if path.extension().is_some_and(|e| e == "rs") && !path.ends_with("tests/schema.rs") {
                sources.push(path);
            }
        }
    }
    sources.sort();
    let mut checked = Vec::new();
    for path in &sources {
        let file = path.strip_prefix(root()).unwrap().display().to_string();
        for literal in string_literals(&std::fs::read_to_string(path).unwrap()) {
            let text = fill_holes(&literal);
            let start = text.trim_start();
            let whole = start.starts_with("[settings]") || start.starts_with("[[host]]");
            let body = start.starts_with("[[host.stack]]") || start.starts_with("[[host.check]]");
            // tests/backup_run.rs's inventory() writes its `stack` after `[[host.stack]]`.
            let stack = start.starts_with("name = ") && start.contains("\ndir = ");
            let host = "[[host]]\nname = \"h\"\naddress = \"127.0.0.1\"\n";
            let text = if whole {
                text
            } else if body {
                format!("{host}{text}")
            } else if stack {
                format!("{host}[[host.stack]]\n{text}")
            } else {
                continue;
            };
            if toml::from_str::<Value>(&text).is_err() || !loader_accepts(&text) {
                continue;
            }
            assert_accepts(&v, &format!("an inventory of {file}"), &text);
            checked.push(file.clone());
        }
    }
    let count = checked.len();
    checked.dedup();
    eprintln!("{count} inventories checked, from {checked:?}");
    // The files that write the inventories this finds today; a parser that finds none
    // would pass vacuously.
    assert!(count >= 30, "only {count} inventories found");
    for file in [
        "tests/backup_run.rs",
        "tests/common/run.rs",
        "tests/config.rs",
        "tests/deploy.rs",
        "tests/hostile.rs",
        "tests/multi_deploy.rs",
        "tests/pty.rs",
        "tests/releases.rs",
        "tests/remote.rs",
        "tests/worker_faults.rs",
    ] {
        assert!(
            checked.contains(&file.to_string()),
            "no inventory found in {file}: {checked:?}"
        );
    }
}

#[test]
fn the_literal_reader_reads_rust_strings() {
    let src = r####"let a = "x\n\"y\" \
                   z"; // "not" a 'string
let c = '"'; let l: &'static str = r#"[[host]]
name = "a""#; let e = '\''; let f = "{{ disk_warn = 1 }}\n{body}\nname = \"{}\"";"####;
    let lits = string_literals(src);
    assert_eq!(
        lits,
        [
            "x\n\"y\" z",
            "[[host]]\nname = \"a\"",
            "{{ disk_warn = 1 }}\n{body}\nname = \"{}\""
        ]
    );
    assert_eq!(fill_holes(&lits[2]), "{ disk_warn = 1 }\nname = \"x\"\n");
}

/// The example carries Taplo's `#:schema` directive on its first line (Taplo reads it from
/// the comments before the first key), pointing at the committed file relative to itself;
/// the loader still reads it (the_example_inventory_is_valid).
#[test]
fn the_example_points_editors_at_the_schema() {
    let text = read("hosts.toml");
    let first = text.lines().next().unwrap_or("");
    let target = first
        .strip_prefix("#:schema ")
        .unwrap_or_else(|| panic!("hosts.toml starts with {first:?}, not #:schema"));
    assert_eq!(
        std::fs::canonicalize(root().join(target.trim())).unwrap(),
        std::fs::canonicalize(root().join(SCHEMA_FILE)).unwrap(),
        "{first}"
    );
}

/// What `opsdeck init` writes (a host looked at, with a stack, a Postgres service and its
/// dumps; one not reachable) is valid, like everything else opsdeck asks users to keep.
#[test]
fn the_inventory_init_writes_is_valid() {
    use opsdeck::onboard::discover::{self, ContainerSeen};
    use opsdeck::onboard::probe::{FileSeen, Probe};
    use opsdeck::onboard::{Candidate, HostReport, Outcome, render};
    let mut db = ContainerSeen {
        name: "shop_db_1".into(),
        image: "postgres:16".into(),
        project: Some("shop".into()),
        service: Some("db".into()),
        working_dir: Some("/home/deploy/shop".into()),
        config_files: Some("/home/deploy/shop/compose.prod.yml".into()),
        environment_file: Some("/home/deploy/shop/.env.prod".into()),
        ..ContainerSeen::default()
    };
    db.pg_env.insert("POSTGRES_USER".into(), "shop".into());
    let probe = Probe {
        home: "/home/deploy".into(),
        now: Some(200_000),
        docker_host: Some("unix:///run/user/1000/docker.sock".into()),
        compose_v1: true,
        files: (0..3)
            .map(|d| FileSeen {
                path: format!("/home/deploy/backups/shop-2026120{d}.dump"),
                size: 4096,
                mtime: 100_000 + d * 86_400 / 2,
            })
            .collect(),
        ..Probe::default()
    };
    let looked = HostReport {
        candidate: Candidate {
            name: "web1".into(),
            address: "10.0.0.1".into(),
            user: Some("deploy".into()),
            port: Some(2222),
            identity_file: Some("~/.ssh/web".into()),
            jump: Some("bastion".into()),
            origin: "inventory.yml (group web)".into(),
            resolved: None,
        },
        outcome: Outcome::Found(discover::host(&probe, &[db], &[])),
    };
    let down = HostReport {
        candidate: Candidate {
            name: "web2".into(),
            address: "web2".into(),
            origin: "~/.ssh/config".into(),
            ..Candidate::default()
        },
        outcome: Outcome::Unreachable("no answer".into()),
    };
    let text = render::file(&[looked, down], "now", "opsdeck init");
    assert!(loader_accepts(&text), "{text}");
    assert_accepts(&validator(), "init's inventory", &text);
    assert!(text.contains("max_age = \"14h\""), "{text}");
}
