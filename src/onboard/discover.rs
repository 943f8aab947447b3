//! From what a host answered (its containers' compose labels, the probe) to what
//! `opsdeck init` proposes for it: stacks, their Postgres services and backup sets, each
//! with the reason it was guessed. Pure: the tests feed it hostile answers.

use std::collections::BTreeMap;

use super::probe::{FileSeen, Probe, dump_target, file_pattern};
use super::sources::valid_name;

/// A container as `init` sees it: compose labels and the few environment variables that
/// name a Postgres database (never a password).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContainerSeen {
    pub name: String,
    pub image: String,
    pub project: Option<String>,
    pub service: Option<String>,
    pub working_dir: Option<String>,
    pub config_files: Option<String>,
    pub environment_file: Option<String>,
    /// `POSTGRES_DB`, `POSTGRES_USER` and `PGDATA`, when set.
    pub pg_env: BTreeMap<String, String>,
}

/// Environment variables `init` keeps from a container; everything else (passwords, keys)
/// is never read into memory past the inspect.
pub const PG_ENV: [&str; 3] = ["POSTGRES_DB", "POSTGRES_USER", "PGDATA"];

/// A value and why it was guessed.
#[derive(Debug, Clone, PartialEq)]
pub struct Found<T> {
    pub value: T,
    pub why: String,
}

fn found<T>(value: T, why: impl Into<String>) -> Found<T> {
    Found {
        value,
        why: why.into(),
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Postgres {
    pub service: String,
    pub database: String,
    pub user: String,
    pub why: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct BackupFound {
    pub name: String,
    pub dir: String,
    pub glob: String,
    /// `26h`: a day and two hours when files come daily.
    pub max_age: Found<String>,
    /// `custom` or `sql-gzip`, with the Postgres service, when opsdeck can take these too.
    pub pg_dump: Option<(Postgres, &'static str)>,
    pub why: String,
    /// Why it was put under this stack, when that was a guess.
    pub stack_why: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StackFound {
    pub name: String,
    pub project: String,
    pub dir: Found<String>,
    pub compose_files: Option<Found<Vec<String>>>,
    pub env_file: Option<Found<String>>,
    pub services: Vec<String>,
    pub postgres: Vec<Postgres>,
    pub backups: Vec<BackupFound>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct HostFound {
    pub docker_socket: Option<Found<String>>,
    pub compose_v1_only: bool,
    pub stacks: Vec<StackFound>,
    /// Things seen that did not become configuration, one line each.
    pub notes: Vec<String>,
}

/// `/home/cs/app` → `~/app` when under the host's home.
fn tilde(path: &str, home: &str) -> String {
    if !home.is_empty() && home != "/" {
        if path == home {
            return "~".into();
        }
        if let Some(rest) = path.strip_prefix(home)
            && let Some(rest) = rest.strip_prefix('/')
        {
            return format!("~/{rest}");
        }
    }
    path.to_string()
}

fn clean(s: &str) -> bool {
    !s.is_empty() && !s.chars().any(crate::sanitize::is_unsafe) && !s.contains(['"', '\\'])
}

fn is_postgres(c: &ContainerSeen) -> Option<String> {
    let image = c.image.to_ascii_lowercase();
    let repo = image.rsplit('/').next().unwrap_or(&image);
    let repo = repo.split([':', '@']).next().unwrap_or(repo);
    for word in ["postgres", "pgvector", "postgis", "timescale"] {
        if repo.contains(word) {
            return Some(format!("image {}", c.image));
        }
    }
    c.pg_env
        .contains_key("PGDATA")
        .then(|| format!("image {} sets PGDATA", c.image))
}

fn postgres_of(c: &ContainerSeen, service: &str) -> Option<Postgres> {
    let why = is_postgres(c)?;
    let user = c
        .pg_env
        .get("POSTGRES_USER")
        .filter(|u| clean(u))
        .cloned()
        .unwrap_or_else(|| "postgres".into());
    let database = c
        .pg_env
        .get("POSTGRES_DB")
        .filter(|d| clean(d))
        .cloned()
        .unwrap_or_else(|| user.clone());
    let env: Vec<String> = ["POSTGRES_DB", "POSTGRES_USER"]
        .iter()
        .filter_map(|k| c.pg_env.get(*k).map(|v| format!("{k}={v}")))
        .collect();
    let env = if env.is_empty() {
        "no POSTGRES_DB or POSTGRES_USER: the image's defaults".to_string()
    } else {
        env.join(", ")
    };
    Some(Postgres {
        service: service.to_string(),
        database,
        user,
        why: format!("service {service} runs {why} ({env})"),
    })
}

/// The stacks of a host, from its containers' compose labels, in the order projects are
/// first seen; containers without a project are counted in a note.
fn stacks(containers: &[ContainerSeen], home: &str, notes: &mut Vec<String>) -> Vec<StackFound> {
    let mut out: Vec<StackFound> = Vec::new();
    let mut loose = 0;
    for c in containers {
        let Some(project) = c.project.as_deref() else {
            loose += 1;
            continue;
        };
        if valid_name(project).is_err() || !clean(project) {
            notes.push(format!(
                "a compose project named {:?} was left out: its name is not a plain word",
                crate::sanitize::line(project)
            ));
            continue;
        }
        let service = c
            .service
            .clone()
            .filter(|s| clean(s))
            .unwrap_or_else(|| c.name.clone());
        if let Some(s) = out.iter_mut().find(|s| s.project == project) {
            if !s.services.contains(&service) {
                s.services.push(service.clone());
            }
            if let Some(pg) = postgres_of(c, &service)
                && !s.postgres.iter().any(|p| p.service == pg.service)
            {
                s.postgres.push(pg);
            }
            continue;
        }
        let Some(wd) = c
            .working_dir
            .as_deref()
            .filter(|d| clean(d) && d.starts_with('/'))
        else {
            notes.push(format!(
                "compose project {project} was left out: its containers record no working directory"
            ));
            continue;
        };
        let dir = found(
            tilde(wd, home),
            "label com.docker.compose.project.working_dir",
        );
        let files: Vec<String> = c
            .config_files
            .as_deref()
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|f| clean(f))
            .map(|f| match f.strip_prefix(wd) {
                Some(rel) if rel.starts_with('/') => rel.trim_start_matches('/').to_string(),
                _ => tilde(f, home),
            })
            .collect();
        let compose_files = (!files.is_empty()).then(|| {
            found(
                files,
                "label com.docker.compose.project.config_files".to_string(),
            )
        });
        let env_file = c
            .environment_file
            .as_deref()
            .map(|e| e.split(',').next().unwrap_or("").trim())
            .filter(|e| clean(e))
            .map(|e| match e.strip_prefix(wd) {
                Some(rel) if rel.starts_with('/') => rel.trim_start_matches('/').to_string(),
                _ => tilde(e, home),
            })
            .map(|e| found(e, "label com.docker.compose.project.environment_file"));
        let postgres = postgres_of(c, &service).into_iter().collect();
        out.push(StackFound {
            name: project.to_string(),
            project: project.to_string(),
            dir,
            compose_files,
            env_file,
            services: vec![service],
            postgres,
            backups: Vec::new(),
        });
    }
    if loose > 0 {
        notes.push(format!(
            "{loose} container(s) not started by compose: opsdeck shows them, but they belong to no stack"
        ));
    }
    out
}

/// A human interval: `1d`, `6h`, `30m`.
fn human(secs: i64) -> String {
    if secs >= 86_400 && secs % 86_400 < 3600 {
        format!("{}d", secs / 86_400)
    } else if secs >= 3600 {
        format!("{}h", (secs + 1800) / 3600)
    } else {
        format!("{}m", (secs + 59) / 60)
    }
}

/// `max_age`: the usual gap between the newest files (their median), plus two hours (a
/// tenth for short intervals), in whole hours; a day and two hours with fewer than two.
fn max_age(files: &[&FileSeen]) -> Found<String> {
    let mut times: Vec<i64> = files.iter().map(|f| f.mtime).collect();
    times.sort_unstable();
    times.dedup();
    let mut gaps: Vec<i64> = times
        .windows(2)
        .map(|w| w[1] - w[0])
        .rev()
        .take(10)
        .collect();
    gaps.sort_unstable();
    let Some(&gap) = gaps.get(gaps.len() / 2).filter(|g| **g > 0) else {
        return found(
            "26h".to_string(),
            "fewer than two files: a daily backup assumed, plus 2h",
        );
    };
    let margin = if gap >= 12 * 3600 { 2 * 3600 } else { gap / 10 };
    let hours = ((gap + margin) + 3599) / 3600;
    found(
        format!("{}h", hours.max(1)),
        format!("a new file about every {}, plus a margin", human(gap)),
    )
}

struct FileSet<'a> {
    dir: String,
    glob: String,
    files: Vec<&'a FileSeen>,
}

fn ext_format(glob: &str) -> Option<&'static str> {
    if glob.ends_with(".dump") || glob.ends_with(".pgdump") {
        Some("custom")
    } else if glob.ends_with(".sql.gz") {
        Some("sql-gzip")
    } else {
        None
    }
}

fn is_db_dump(glob: &str) -> bool {
    [
        ".dump", ".pgdump", ".sql", ".sql.gz", ".sql.zst", ".sql.xz", ".sql.bz2",
    ]
    .iter()
    .any(|e| glob.ends_with(e))
}

/// Everything `init` proposes for one host.
pub fn host(probe: &Probe, containers: &[ContainerSeen], extra_files: &[FileSeen]) -> HostFound {
    let mut notes = Vec::new();
    let home = probe.home.as_str();
    let mut found_host = HostFound {
        compose_v1_only: probe.compose_v1 && !probe.compose_v2,
        ..HostFound::default()
    };
    found_host.docker_socket = match probe.docker_host.as_deref() {
        Some(h) if h.starts_with("unix://") => {
            let path = &h["unix://".len()..];
            (clean(path) && path != crate::config::DEFAULT_DOCKER_SOCKET)
                .then(|| found(path.to_string(), "DOCKER_HOST in the host's environment"))
        }
        Some(h) if !h.is_empty() => {
            notes.push(format!(
                "DOCKER_HOST is {}: opsdeck reaches engines on a Unix socket only",
                crate::sanitize::line(h)
            ));
            None
        }
        _ => probe
            .sockets
            .iter()
            .find(|s| !matches!(s.as_str(), "/var/run/docker.sock" | "/run/docker.sock"))
            .filter(|_| !probe.sockets.iter().any(|s| s == "/var/run/docker.sock"))
            .filter(|s| clean(s))
            .map(|s| found(s.clone(), "the only Docker socket on the host (rootless)")),
    };
    let mut stacks = stacks(containers, home, &mut notes);

    // Backup files, grouped by directory and name pattern.
    let mut sets: Vec<FileSet> = Vec::new();
    for f in probe.files.iter().chain(extra_files) {
        let Some((dir, name)) = f.path.rsplit_once('/') else {
            continue;
        };
        let Some(glob) = file_pattern(name) else {
            continue;
        };
        let dir = tilde(if dir.is_empty() { "/" } else { dir }, home);
        if !clean(&dir) || !clean(&glob) {
            continue;
        }
        match sets.iter_mut().find(|s| s.dir == dir && s.glob == glob) {
            Some(s) => {
                if !s.files.iter().any(|x| x.path == f.path) {
                    s.files.push(f)
                }
            }
            None => sets.push(FileSet {
                dir,
                glob,
                files: vec![f],
            }),
        }
    }
    // Jobs that write dumps: a set even before their first file.
    let mut jobs: Vec<(String, String, String)> = Vec::new();
    for line in &probe.cron {
        match dump_target(line) {
            Some((dir, glob)) => jobs.push((dir, glob, format!("crontab: {line}"))),
            None => notes.push(format!(
                "a backup job in a crontab, writing where opsdeck cannot tell: {line}"
            )),
        }
    }
    for line in &probe.timers {
        match dump_target(line) {
            Some((dir, glob)) => jobs.push((dir, glob, format!("systemd timer {line}"))),
            None => notes.push(format!(
                "a backup job in a systemd timer, writing where opsdeck cannot tell: {line}"
            )),
        }
    }
    let mut proposals: Vec<(String, String, Vec<&FileSeen>, String)> = Vec::new();
    for (dir, glob, why) in &jobs {
        let dir = &tilde(dir, home);
        if !clean(dir) || !clean(glob) {
            continue;
        }
        let files: Vec<&FileSeen> = sets
            .iter()
            .filter(|s| &s.dir == dir && &s.glob == glob)
            .flat_map(|s| s.files.iter().copied())
            .collect();
        if !proposals.iter().any(|(d, g, _, _)| d == dir && g == glob) {
            proposals.push((dir.clone(), glob.clone(), files, why.clone()));
        }
    }
    sets.sort_by(|a, b| (&a.dir, &a.glob).cmp(&(&b.dir, &b.glob)));
    for s in &sets {
        if proposals
            .iter()
            .any(|(d, g, _, _)| *d == s.dir && *g == s.glob)
        {
            continue;
        }
        proposals.push((
            s.dir.clone(),
            s.glob.clone(),
            s.files.clone(),
            String::new(),
        ));
    }
    let now = probe.now.unwrap_or(0);
    for (dir, glob, files, job) in proposals {
        let newest = files.iter().map(|f| f.mtime).max();
        let total: u64 = files.iter().map(|f| f.size).sum();
        let mut why = if files.is_empty() {
            "no file yet".to_string()
        } else {
            format!(
                "{} file(s) in {dir}, {} in all, the newest {} old",
                files.len(),
                crate::ui::format::bytes(total),
                human((now - newest.unwrap_or(now)).max(0))
            )
        };
        if !job.is_empty() {
            why = format!("{why}; written by {job}");
        }
        // Which stack: the one whose project the set's directory or name mentions, else
        // the one Postgres stack for a dump, else the only stack.
        let haystack = format!("{dir}/{glob}");
        let by_name = stacks
            .iter()
            .enumerate()
            .filter(|(_, s)| haystack.contains(&s.project))
            .max_by_key(|(_, s)| s.project.len())
            .map(|(i, s)| (i, format!("its path names {}", s.project)));
        let pg_stacks: Vec<usize> = stacks
            .iter()
            .enumerate()
            .filter(|(_, s)| !s.postgres.is_empty())
            .map(|(i, _)| i)
            .collect();
        let pick = by_name
            .or_else(|| {
                (is_db_dump(&glob) && pg_stacks.len() == 1)
                    .then(|| (pg_stacks[0], "the host's only stack with Postgres".into()))
            })
            .or_else(|| (stacks.len() == 1).then(|| (0, "the host's only stack".into())))
            .or_else(|| {
                (!stacks.is_empty()).then(|| {
                    (
                        0,
                        "could not tell which stack it belongs to: move it if it is another's"
                            .into(),
                    )
                })
            });
        let Some((i, stack_why)) = pick else {
            notes.push(format!(
                "backups {dir}/{glob} ({why}): no compose stack on this host to put them under"
            ));
            continue;
        };
        let stack = &mut stacks[i];
        let pg_dump = ext_format(&glob).and_then(|format| {
            (stack.postgres.len() == 1).then(|| (stack.postgres[0].clone(), format))
        });
        let base = if is_db_dump(&glob) && !stack.backups.iter().any(|b| b.name == "db") {
            "db".to_string()
        } else {
            let stem: String = glob
                .split('*')
                .next()
                .unwrap_or("")
                .trim_end_matches(['-', '_', '.'])
                .to_string();
            if stem.is_empty() {
                "backup".into()
            } else {
                stem
            }
        };
        let mut name = base.clone();
        let mut n = 2;
        while stack.backups.iter().any(|b| b.name == name) {
            name = format!("{base}-{n}");
            n += 1;
        }
        stack.backups.push(BackupFound {
            name,
            dir,
            glob,
            max_age: max_age(&files),
            pg_dump,
            why,
            stack_why: Some(stack_why),
        });
    }
    found_host.stacks = stacks;
    found_host.notes = notes;
    found_host
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(name: &str, image: &str, project: &str, service: &str, wd: &str) -> ContainerSeen {
        ContainerSeen {
            name: name.into(),
            image: image.into(),
            project: Some(project.into()),
            service: Some(service.into()),
            working_dir: Some(wd.into()),
            config_files: Some("docker-compose.yml".into()),
            ..ContainerSeen::default()
        }
    }

    fn file(path: &str, mtime: i64) -> FileSeen {
        FileSeen {
            path: path.into(),
            size: 1000,
            mtime,
        }
    }

    #[test]
    fn stacks_postgres_and_backups_of_a_lila_like_host() {
        let mut db = c(
            "lila_database_1",
            "127.0.0.1:5000/library/postgres:17",
            "lila",
            "database",
            "/home/lila/lila",
        );
        db.pg_env.insert("POSTGRES_DB".into(), "lila".into());
        let containers = vec![
            c("lila_api_1", "lila/api", "lila", "api", "/home/lila/lila"),
            db,
            ContainerSeen {
                name: "loose".into(),
                image: "busybox".into(),
                ..ContainerSeen::default()
            },
        ];
        let day = 86_400;
        let probe = Probe {
            home: "/home/lila".into(),
            now: Some(10 * day),
            docker_host: Some("unix:///run/lab/lila/docker.sock".into()),
            files: (3..10)
                .map(|d| {
                    file(
                        &format!("/home/lila/backups/lila-2026112{d}-0649.sql.gz"),
                        d * day,
                    )
                })
                .collect(),
            complete: true,
            ..Probe::default()
        };
        let h = host(&probe, &containers, &[]);
        assert_eq!(
            h.docker_socket.as_ref().map(|f| f.value.as_str()),
            Some("/run/lab/lila/docker.sock")
        );
        assert_eq!(h.stacks.len(), 1);
        let s = &h.stacks[0];
        assert_eq!(s.dir.value, "~/lila");
        assert_eq!(s.services, ["api", "database"]);
        assert_eq!(s.postgres.len(), 1);
        assert_eq!(
            (s.postgres[0].database.as_str(), s.postgres[0].user.as_str()),
            ("lila", "postgres")
        );
        let b = &s.backups[0];
        assert_eq!(
            (b.name.as_str(), b.dir.as_str(), b.glob.as_str()),
            ("db", "~/backups", "lila-*.sql.gz")
        );
        assert_eq!(b.max_age.value, "26h");
        assert_eq!(b.pg_dump.as_ref().map(|p| p.1), Some("sql-gzip"));
        assert!(b.why.contains("7 file(s)"), "{}", b.why);
        assert!(h.notes.iter().any(|n| n.contains("1 container(s)")));
    }

    #[test]
    fn a_cron_job_names_a_set_before_its_first_file_and_sets_go_to_the_stack_they_name() {
        let containers = vec![
            c("a_web_1", "nginx", "shop", "web", "/srv/shop"),
            c("b_web_1", "nginx", "blog", "web", "/srv/blog"),
        ];
        let probe = Probe {
            home: "/root".into(),
            now: Some(1000),
            cron: vec![
                "0 3 * * * pg_dump blog | gzip > /var/backups/blog-$(date +\\%F).sql.gz".into(),
            ],
            files: vec![file("/root/backups/uploads-20260101.tar.gz", 10)],
            ..Probe::default()
        };
        let h = host(&probe, &containers, &[]);
        let blog = h.stacks.iter().find(|s| s.name == "blog").expect("blog");
        assert_eq!(blog.backups[0].glob, "blog-*.sql.gz");
        assert!(blog.backups[0].why.contains("no file yet"));
        assert!(blog.backups[0].why.contains("crontab"));
        let shop = h.stacks.iter().find(|s| s.name == "shop").expect("shop");
        assert_eq!(shop.backups[0].name, "uploads");
        assert!(
            shop.backups[0]
                .stack_why
                .as_deref()
                .is_some_and(|w| w.contains("could not tell"))
        );
    }

    #[test]
    fn hostile_labels_never_become_configuration() {
        let mut bad = c("x", "img", "evil\nproject", "s", "/srv/x");
        bad.config_files = Some("a.yml\"\n[[host]]".into());
        let mut ok = c("y", "img", "ok", "s\u{1b}[2J", "/srv/y\u{202e}");
        ok.environment_file = Some(".env\u{7}".into());
        let h = host(
            &Probe {
                home: "/root".into(),
                ..Probe::default()
            },
            &[bad, ok],
            &[],
        );
        assert!(h.stacks.is_empty(), "{h:?}");
        assert_eq!(h.notes.len(), 2, "{:?}", h.notes);
        assert!(h.notes.iter().all(|n| !n.contains('\n')));
    }
}
