//! What `opsdeck init` asks a host in one shell script over its SSH connection: its home,
//! where its Docker engine listens, backup jobs in crontabs and systemd timers, and backup
//! files in backups-like directories. The answer is the host's text: read with a byte
//! bound, each section a list of lines, every line that does not parse left out.

/// Bytes of the probe's answer that are read; the rest is cut.
pub const ANSWER_CAP: usize = 1 << 20;
/// Backup files listed at most (the newest of a directory are what matter).
pub const MAX_FILES: usize = 5000;

/// The probe, POSIX sh, wrapped in `sh -c '…'` (SSH hands a command to the user's login
/// shell, which may be fish or zsh), so it holds no single quote. Each section starts with
/// a line `@@opsdeck:NAME`.
pub const SCRIPT: &str = r#"sh -c '
exec 2>/dev/null
t=; command -v timeout >/dev/null && t="timeout 20"
echo "@@opsdeck:home"; printf "%s\n" "$HOME"
echo "@@opsdeck:now"; date +%s
echo "@@opsdeck:docker_host"; printf "%s\n" "${DOCKER_HOST:-}"
echo "@@opsdeck:sockets"
for s in /var/run/docker.sock /run/docker.sock "${XDG_RUNTIME_DIR:-/nonexistent}/docker.sock" "$HOME/.docker/run/docker.sock"; do
  [ -S "$s" ] && printf "%s\n" "$s"
done
echo "@@opsdeck:compose"
docker compose version >/dev/null 2>&1 && echo v2
command -v docker-compose >/dev/null 2>&1 && echo v1
echo "@@opsdeck:cron"
{ crontab -l; cat /etc/crontab /etc/cron.d/*; } | grep -E "pg_dump|pg_dumpall|backup" | head -c 65536
echo
echo "@@opsdeck:timers"
if command -v systemctl >/dev/null 2>&1; then
  for scope in --system --user; do
    for tm in $(systemctl $scope list-units --type=timer --all --no-legend --plain | awk "{print \$1}" | head -n 200); do
      for u in $(systemctl $scope show -p Triggers --value "$tm"); do
        systemctl $scope cat "$u" | grep -E "^ExecStart" | grep -E "pg_dump|pg_dumpall|backup" | sed "s|^|$tm |"
      done
    done
  done | head -c 65536
fi
echo
echo "@@opsdeck:files"
for r in "$HOME" /var/backups /backup /backups /srv /opt; do
  [ -d "$r" ] || continue
  $t find "$r" -xdev -maxdepth 4 -type f -path "*backup*" \( -name "*.sql" -o -name "*.sql.gz" -o -name "*.sql.zst" -o -name "*.sql.xz" -o -name "*.sql.bz2" -o -name "*.dump" -o -name "*.pgdump" -o -name "*.tar.gz" -o -name "*.tgz" -o -name "*.tar.zst" -o -name "*.tar" -o -name "*.db" -o -name "*.sqlite" -o -name "*.sqlite3" \) -printf "%T@\t%s\t%p\n"
done | head -n 5000
echo "@@opsdeck:end"
'"#;

/// Lists the regular files of `dirs` (as the probe's `files` section, then its end
/// marker), for directories a crontab or timer job writes to that the probe's search
/// missed. `~/` is the SSH user's home; a directory with a quote or a newline is left out.
pub fn list_dirs_script(dirs: &[String]) -> Option<String> {
    let words: Vec<String> = dirs
        .iter()
        .filter(|d| !d.contains(['\'', '"', '\\', '$', '`', '\n']))
        .map(|d| match d.strip_prefix("~/") {
            Some(rest) => format!("\"$HOME/{rest}\""),
            None => format!("\"{d}\""),
        })
        .collect();
    if words.is_empty() {
        return None;
    }
    Some(format!(
        "sh -c 'echo @@opsdeck:files; for d in {}; do find \"$d\" -maxdepth 1 -type f -printf \"%T@\\t%s\\t%p\\n\" 2>/dev/null; done | head -n {MAX_FILES}; echo @@opsdeck:end'",
        words.join(" ")
    ))
}

/// A file the probe listed.
#[derive(Debug, Clone, PartialEq)]
pub struct FileSeen {
    pub path: String,
    pub size: u64,
    pub mtime: i64,
}

/// The probe's answer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Probe {
    pub home: String,
    pub now: Option<i64>,
    pub docker_host: Option<String>,
    pub sockets: Vec<String>,
    pub compose_v2: bool,
    pub compose_v1: bool,
    pub cron: Vec<String>,
    /// `unit.timer ExecStart=...`.
    pub timers: Vec<String>,
    pub files: Vec<FileSeen>,
    /// The answer ended with its end marker (not cut short).
    pub complete: bool,
}

fn printable(s: &str) -> bool {
    !s.is_empty() && !s.chars().any(crate::sanitize::is_unsafe)
}

/// Parses the probe's output: unknown sections and unprintable lines are left out.
pub fn parse(bytes: &[u8]) -> Probe {
    let bytes = &bytes[..bytes.len().min(ANSWER_CAP)];
    let text = String::from_utf8_lossy(bytes);
    let mut p = Probe::default();
    let mut section = "";
    for line in text.lines() {
        if let Some(name) = line.strip_prefix("@@opsdeck:") {
            section = match name {
                "home" => "home",
                "now" => "now",
                "docker_host" => "docker_host",
                "sockets" => "sockets",
                "compose" => "compose",
                "cron" => "cron",
                "timers" => "timers",
                "files" => "files",
                "end" => {
                    p.complete = true;
                    ""
                }
                _ => "",
            };
            continue;
        }
        let line = line.trim_end_matches('\r');
        if !printable(line) && section != "files" {
            continue;
        }
        match section {
            "home" if p.home.is_empty() && line.starts_with('/') => p.home = line.to_string(),
            "now" => p.now = p.now.or(line.trim().parse().ok()),
            "docker_host" if p.docker_host.is_none() => p.docker_host = Some(line.to_string()),
            "sockets" if line.starts_with('/') => p.sockets.push(line.to_string()),
            "compose" => match line.trim() {
                "v2" => p.compose_v2 = true,
                "v1" => p.compose_v1 = true,
                _ => {}
            },
            "cron" if p.cron.len() < 200 => {
                let l = line.trim();
                if !l.starts_with('#') {
                    p.cron.push(l.chars().take(1000).collect());
                }
            }
            "timers" if p.timers.len() < 200 => p.timers.push(line.chars().take(1000).collect()),
            "files" if p.files.len() < MAX_FILES => {
                let mut f = line.splitn(3, '\t');
                let (Some(t), Some(s), Some(path)) = (f.next(), f.next(), f.next()) else {
                    continue;
                };
                let mtime = t.split('.').next().and_then(|t| t.parse::<i64>().ok());
                if let (Some(mtime), Ok(size)) = (mtime, s.parse::<u64>())
                    && printable(path)
                    && path.starts_with('/')
                {
                    p.files.push(FileSeen {
                        path: path.to_string(),
                        size,
                        mtime,
                    });
                }
            }
            _ => {}
        }
    }
    p
}

/// A pg_dump job's output file, from a crontab line or an `ExecStart=`: the path after
/// `>` (or `-f`/`--file`), its directory and its name's pattern (every `$(…)`, `$VAR`,
/// `%…` and run of digits a `*`). `None` when the command's output cannot be told.
pub fn dump_target(command: &str) -> Option<(String, String)> {
    if !command.contains("pg_dump") {
        return None;
    }
    // Crontab escapes % as \%; a command substitution (`$(date +%F)`) becomes one `%S`
    // so that the words split where the shell splits them.
    let c = substitutions_collapsed(&command.replace("\\%", "%"));
    let mut path: Option<String> = None;
    let words: Vec<&str> = c.split_whitespace().collect();
    for (i, w) in words.iter().enumerate() {
        let next = words.get(i + 1).copied();
        let candidate = if let Some(rest) = w.strip_prefix('>') {
            let rest = rest.trim_start_matches('>');
            if rest.is_empty() { next } else { Some(rest) }
        } else if *w == "-f" || *w == "--file" {
            next
        } else {
            w.strip_prefix("--file=")
        };
        if let Some(p) = candidate
            && p.contains('/')
            && p != "/dev/null"
        {
            path = Some(p.trim_matches(['"', '\'', ';']).to_string());
        }
    }
    let path = path?;
    let (dir, name) = path.rsplit_once('/')?;
    let glob = name_pattern(name)?;
    let dir = if dir.is_empty() { "/" } else { dir };
    let dir = dir
        .replace("$HOME/", "~/")
        .replace("${HOME}/", "~/")
        .replace("$HOME", "~")
        .replace("${HOME}", "~");
    if dir.contains(['$', '`', '*', '%']) {
        return None;
    }
    Some((dir, glob))
}

/// Every `$(…)` and `` `…` `` of a command as `%S`.
fn substitutions_collapsed(command: &str) -> String {
    let mut out = String::with_capacity(command.len());
    let mut chars = command.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek() == Some(&'(') {
            let mut depth = 0;
            for c in chars.by_ref() {
                if c == '(' {
                    depth += 1;
                } else if c == ')' {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
            }
            out.push_str("%S");
        } else if c == '`' {
            for c in chars.by_ref() {
                if c == '`' {
                    break;
                }
            }
            out.push_str("%S");
        } else {
            out.push(c);
        }
    }
    out
}

/// `lila-$(date +%F).sql.gz` → `lila-*.sql.gz`; `db-%Y%m%d.dump` → `db-*.dump`.
fn name_pattern(name: &str) -> Option<String> {
    let name = substitutions_collapsed(name);
    let mut out = String::new();
    let mut chars = name.chars().peekable();
    let star = |out: &mut String| {
        if !out.ends_with('*') {
            out.push('*');
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '$' => {
                if chars.peek() == Some(&'{') {
                    for c in chars.by_ref() {
                        if c == '}' {
                            break;
                        }
                    }
                } else {
                    while chars
                        .peek()
                        .is_some_and(|c| c.is_alphanumeric() || *c == '_')
                    {
                        chars.next();
                    }
                }
                star(&mut out);
            }
            '%' => {
                chars.next();
                star(&mut out);
            }
            '"' | '\'' => {}
            c if c.is_ascii_digit() => star(&mut out),
            c => {
                // Separators between two stamp parts stay inside one `*`.
                if out.ends_with('*')
                    && matches!(c, '-' | '_' | 'T' | ':')
                    && chars
                        .peek()
                        .is_some_and(|n| n.is_ascii_digit() || *n == '$' || *n == '%')
                {
                    continue;
                }
                out.push(c);
            }
        }
    }
    (out.matches('*').count() == 1 && !out.contains('/')).then_some(out)
}

/// A backup file's name split around its stamp: `lila-20261127-0649.sql.gz` →
/// `lila-*.sql.gz`. `None` when it has no digits or more than one run of them with words
/// between.
pub fn file_pattern(name: &str) -> Option<String> {
    name_pattern(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_answer_parses_by_section_and_drops_what_is_hostile() {
        let out = b"@@opsdeck:home\n/home/cs\n@@opsdeck:now\n1780000000\n@@opsdeck:docker_host\nunix:///run/x/docker.sock\n@@opsdeck:sockets\n/var/run/docker.sock\n@@opsdeck:compose\nv1\n@@opsdeck:cron\n# 0 1 * * * pg_dump old\n0 3 * * * pg_dump -U postgres app | gzip > /srv/backups/app-$(date +\\%F).sql.gz\n\n@@opsdeck:timers\n\n@@opsdeck:files\n1764312540.5\t1574\t/home/cs/backups/lila-20261127-0649.sql.gz\nbad line\n1764312540\t12\t/home/cs/backups/a\x1b[2Jb.dump\n@@opsdeck:end\n";
        let p = parse(out);
        assert_eq!(p.home, "/home/cs");
        assert_eq!(p.now, Some(1_780_000_000));
        assert_eq!(p.docker_host.as_deref(), Some("unix:///run/x/docker.sock"));
        assert_eq!(p.sockets, ["/var/run/docker.sock"]);
        assert!(p.compose_v1 && !p.compose_v2);
        assert_eq!(p.cron.len(), 1);
        assert_eq!(p.files.len(), 1);
        assert_eq!(p.files[0].mtime, 1_764_312_540);
        assert!(p.complete);
        assert!(!parse(b"@@opsdeck:home\n/x\n").complete);
    }

    #[test]
    fn the_scripts_are_one_sh_word_for_any_login_shell() {
        assert_eq!(SCRIPT.matches('\'').count(), 2);
        assert!(SCRIPT.starts_with("sh -c '") && SCRIPT.trim_end().ends_with('\''));
        let s = list_dirs_script(&["~/b k".into(), "/srv/x".into(), "/a'b".into()]).unwrap();
        assert_eq!(s.matches('\'').count(), 2, "{s}");
        assert!(s.contains("\"$HOME/b k\" \"/srv/x\";"), "{s}");
        assert!(list_dirs_script(&["/a$(x)".into()]).is_none());
    }

    #[test]
    fn dump_targets_from_cron_and_timers() {
        let cases = [
            (
                "0 3 * * * pg_dump -U postgres app | gzip > /srv/backups/app-$(date +\\%F).sql.gz",
                Some(("/srv/backups", "app-*.sql.gz")),
            ),
            (
                "30 2 * * * docker exec db pg_dump -Fc -U app app >$HOME/backups/app_$(date +\\%Y\\%m\\%d).dump",
                Some(("~/backups", "app_*.dump")),
            ),
            (
                "ExecStart=/usr/bin/pg_dump -Fc -f /var/backups/pg/db-%i.dump db",
                Some(("/var/backups/pg", "db-*.dump")),
            ),
            ("0 3 * * * /usr/local/bin/backup.sh", None),
            ("0 3 * * * pg_dump app > /dev/null", None),
            ("0 3 * * * pg_dump app > $DIR/app.sql", None),
        ];
        for (line, want) in cases {
            let got = dump_target(line);
            assert_eq!(
                got.as_ref().map(|(d, g)| (d.as_str(), g.as_str())),
                want,
                "{line}"
            );
        }
    }

    #[test]
    fn file_names_become_one_star_patterns() {
        for (name, want) in [
            ("lila-20261127-0649.sql.gz", Some("lila-*.sql.gz")),
            ("lila-20261203-084208.sql.gz", Some("lila-*.sql.gz")),
            (
                "course-supporter-20261126-2149.dump",
                Some("course-supporter-*.dump"),
            ),
            ("db_2026-11-27T06:49:00Z.sql", Some("db_*Z.sql")),
            ("latest.dump", None),
            ("v2-backup-2026.tar.gz", None),
        ] {
            assert_eq!(file_pattern(name).as_deref(), want, "{name}");
        }
    }
}
