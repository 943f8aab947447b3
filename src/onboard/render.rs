//! The `hosts.toml` that `opsdeck init` writes: every value it guessed has a `# found: …`
//! comment saying why, a host it could not reach is written commented out with the
//! reason, and what it saw but did not turn into configuration is said in comments.
//! Values come from hosts: they are written as TOML strings (escaped by the toml crate)
//! only when printable, and comments are single lines of printable text.

use super::discover::{HostFound, StackFound};
use super::sources::Candidate;

/// What `init` learned of one host.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Looked at: its stacks and backups.
    Found(HostFound),
    /// Connected to no avail for a reason the operator fixes (an unknown host key, a
    /// passphrase): the host is written, unprobed, and the console will ask.
    NotProbed(String),
    /// Could not be reached: written commented out.
    Unreachable(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct HostReport {
    pub candidate: Candidate,
    pub outcome: Outcome,
}

/// A TOML basic string.
fn q(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// One comment line's text: printable, one line, at most 300 characters.
fn c(s: &str) -> String {
    let line = crate::sanitize::line(s);
    let mut out: String = line.chars().take(300).collect();
    if line.chars().count() > 300 {
        out.push('…');
    }
    out
}

fn kv(out: &mut String, key: &str, value: &str, why: Option<&str>) {
    out.push_str(&format!("{key} = {}", q(value)));
    if let Some(w) = why {
        out.push_str(&format!("   # found: {}", c(w)));
    }
    out.push('\n');
}

fn host_lines(r: &HostReport) -> Vec<String> {
    let cand = &r.candidate;
    let mut out = String::new();
    out.push_str("[[host]]\n");
    kv(&mut out, "name", &cand.name, None);
    let origin = match &cand.resolved {
        Some(res) => format!("from {}: {res}", cand.origin),
        None => format!("from {}", cand.origin),
    };
    out.push_str(&format!(
        "address = {}   # {}\n",
        q(&cand.address),
        c(&origin)
    ));
    if let Some(u) = &cand.user {
        kv(&mut out, "user", u, None);
    }
    if let Some(p) = cand.port {
        out.push_str(&format!("port = {p}\n"));
    }
    if let Some(i) = &cand.identity_file {
        kv(&mut out, "identity_file", i, None);
    }
    if let Some(j) = &cand.jump {
        kv(&mut out, "jump", j, None);
    }
    out.lines().map(str::to_string).collect()
}

fn stack(out: &mut String, s: &StackFound, v1_only: bool) {
    out.push_str(&format!(
        "\n[[host.stack]]   # found: compose project {}, services {}\n",
        c(&s.project),
        c(&s.services.join(", "))
    ));
    kv(out, "name", &s.name, None);
    kv(out, "dir", &s.dir.value, Some(&s.dir.why));
    kv(
        out,
        "project",
        &s.project,
        Some("label com.docker.compose.project"),
    );
    if let Some(f) = &s.compose_files {
        let list: Vec<String> = f.value.iter().map(|v| q(v)).collect();
        out.push_str(&format!(
            "compose_files = [{}]   # found: {}\n",
            list.join(", "),
            c(&f.why)
        ));
    }
    if let Some(e) = &s.env_file {
        kv(out, "env_file", &e.value, Some(&e.why));
    }
    if v1_only {
        kv(
            out,
            "compose",
            "docker-compose",
            Some("only docker-compose v1 answers on the host"),
        );
    }
    for pg in &s.postgres {
        out.push_str(&format!("# found: Postgres: {}\n", c(&pg.why)));
    }
    out.push_str(
        "# A deploy recipe is yours to write (opsdeck does not guess one); a common one:\n\
         # [host.stack.deploy]\n\
         # steps = [\"git pull --ff-only\", \"compose pull\", \"compose up -d\", { wait_healthy = \"2m\" }]\n",
    );
    for b in &s.backups {
        out.push_str(&format!(
            "\n[[host.stack.backup]]   # found: {}\n",
            c(&b.why)
        ));
        if let Some(w) = &b.stack_why {
            out.push_str(&format!("# under this stack because {}\n", c(w)));
        }
        kv(out, "name", &b.name, None);
        kv(out, "dir", &b.dir, None);
        kv(out, "glob", &b.glob, None);
        kv(out, "max_age", &b.max_age.value, Some(&b.max_age.why));
        out.push_str(
            "# no retention: opsdeck deletes no backup until you set keep_last or keep_within\n",
        );
        if let Some((pg, format)) = &b.pg_dump {
            out.push_str(&format!(
                "[host.stack.backup.pg_dump]   # found: {}; opsdeck's `b` takes one like it\n",
                c(&pg.why)
            ));
            kv(out, "service", &pg.service, None);
            kv(out, "database", &pg.database, None);
            kv(out, "user", &pg.user, None);
            kv(
                out,
                "format",
                format,
                Some(&format!(
                    "the files end in {}",
                    b.glob.rsplit('*').next().unwrap_or("")
                )),
            );
        }
    }
}

/// One host's block.
pub fn host(r: &HostReport) -> String {
    let cand = &r.candidate;
    let mut out = String::new();
    match &r.outcome {
        Outcome::Unreachable(why) => {
            out.push_str(&format!(
                "# {}: not reachable ({}); written commented out: uncomment it once the host answers\n",
                c(&cand.name),
                c(why)
            ));
            for l in host_lines(r) {
                out.push_str(&format!("# {l}\n"));
            }
        }
        Outcome::NotProbed(why) => {
            out.push_str(&format!(
                "# {}: connected, not looked at ({}): its stacks are yours to add, or run `opsdeck init` again\n",
                c(&cand.name),
                c(why)
            ));
            for l in host_lines(r) {
                out.push_str(&format!("{l}\n"));
            }
        }
        Outcome::Found(f) => {
            for l in host_lines(r) {
                out.push_str(&format!("{l}\n"));
            }
            if let Some(s) = &f.docker_socket {
                kv(&mut out, "docker_socket", &s.value, Some(&s.why));
            }
            for n in &f.notes {
                out.push_str(&format!("# noticed: {}\n", c(n)));
            }
            if f.stacks.is_empty() {
                out.push_str(
                    "# no compose project runs on this host: opsdeck watches it all the same\n",
                );
            }
            for s in &f.stacks {
                stack(&mut out, s, f.compose_v1_only);
            }
        }
    }
    out
}

/// The whole file.
pub fn file(reports: &[HostReport], when: &str, command: &str) -> String {
    let mut out = format!(
        "# opsdeck inventory, written by `{}` on {when}.\n\
         # Every `# found:` line is a guess opsdeck made from what the host showed: review them.\n\
         # `opsdeck config check` checks this file; the README's config reference explains every key.\n",
        c(command)
    );
    for r in reports {
        out.push_str(
            "\n# ---------------------------------------------------------------------------\n",
        );
        out.push_str(&host(r));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::onboard::discover::{self, ContainerSeen};
    use crate::onboard::probe::{FileSeen, Probe};

    fn lila() -> HostReport {
        let mut db = ContainerSeen {
            name: "lila_database_1".into(),
            image: "postgres:17".into(),
            project: Some("lila".into()),
            service: Some("database".into()),
            working_dir: Some("/home/lila/lila".into()),
            config_files: Some("/home/lila/lila/compose.yml".into()),
            environment_file: Some("/home/lila/lila/.env.prod".into()),
            ..ContainerSeen::default()
        };
        db.pg_env.insert("POSTGRES_DB".into(), "lila".into());
        let probe = Probe {
            home: "/home/lila".into(),
            now: Some(100_000),
            compose_v1: true,
            files: vec![FileSeen {
                path: "/home/lila/backups/lila-20261127.sql.gz".into(),
                size: 2048,
                mtime: 90_000,
            }],
            ..Probe::default()
        };
        HostReport {
            candidate: Candidate {
                name: "lila".into(),
                address: "lila".into(),
                origin: "~/.ssh/config".into(),
                resolved: Some("lila@127.0.0.12:22".into()),
                ..Candidate::default()
            },
            outcome: Outcome::Found(discover::host(&probe, &[db], &[])),
        }
    }

    #[test]
    fn a_written_inventory_parses_and_marks_its_guesses() {
        let down = HostReport {
            candidate: Candidate {
                name: "down".into(),
                address: "10.0.0.14".into(),
                user: Some("deploy".into()),
                port: Some(2222),
                origin: "inv.yml (group web)".into(),
                ..Candidate::default()
            },
            outcome: Outcome::Unreachable("cannot connect to 10.0.0.14:2222: refused".into()),
        };
        let text = file(
            &[lila(), down],
            "2026-12-03 11:00 UTC",
            "opsdeck init --from-ssh-config",
        );
        let inv = crate::config::parse_str(&text, std::path::Path::new("init.toml"))
            .unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(inv.hosts.len(), 1, "{text}");
        let h = &inv.hosts[0];
        let s = &h.stacks[0];
        assert_eq!(s.dir, "~/lila");
        assert_eq!(s.compose_files, ["compose.yml"]);
        assert_eq!(s.env_file.as_deref(), Some(".env.prod"));
        let b = &s.backups[0];
        assert_eq!(b.glob.get_ref(), "lila-*.sql.gz");
        assert!(b.pg_dump.is_some());
        assert!(text.contains("# found: label com.docker.compose.project.working_dir"));
        assert!(text.contains("# down: not reachable (cannot connect"));
        assert!(text.contains("# name = \"down\""));
        insta::assert_snapshot!(text);
    }

    #[test]
    fn hostile_text_stays_inside_strings_and_comments() {
        let mut r = lila();
        r.candidate.name = "x\ny".into();
        r.candidate.origin = "evil\n[[host]]\nname = \"injected\"".into();
        r.outcome =
            Outcome::Unreachable("reason\n[[host]]\nname = \"also\"\u{1b}]52;c;x\u{7}".into());
        let text = file(&[r], "now", "opsdeck init");
        let inv = crate::config::parse_str(&text, std::path::Path::new("x.toml"))
            .unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert!(inv.hosts.is_empty(), "{text}");
        assert!(!text.chars().any(|c| c.is_control() && c != '\n'));
    }
}
