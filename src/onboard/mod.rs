//! `opsdeck init` and the console's first-run import: from the hosts an operator already
//! keeps (`~/.ssh/config`, an Ansible inventory, names on the command line) to a reviewed
//! `hosts.toml`. Each host is reached over SSH as the console would reach it, asked one
//! probe script and its Docker engine's container list, and written with every guess
//! marked (`sources` → `probe` + `discover` → `render`).

pub mod discover;
pub mod probe;
pub mod render;
pub mod sources;

use std::sync::Arc;
use std::time::Duration;

use bollard::query_parameters::{InspectContainerOptions, ListContainersOptions};

use crate::remote::ssh::{self, KeyPolicy, Passphrases, Session, SshError};
pub use render::{HostReport, Outcome};
pub use sources::Candidate;

/// Hosts looked at together.
pub const PARALLEL: usize = 8;
/// One host's whole look (connect, probe, Docker) at most.
pub const HOST_DEADLINE: Duration = Duration::from_secs(45);
const API_TIMEOUT: Duration = Duration::from_secs(10);

/// The `[[host]]` lines of a candidate, parsed by the inventory loader: the host is
/// reached exactly as the written inventory will reach it.
fn as_host(c: &Candidate) -> Result<crate::config::Host, String> {
    let report = HostReport {
        candidate: c.clone(),
        outcome: Outcome::NotProbed(String::new()),
    };
    let text = render::host(&report);
    let inv = crate::config::parse_str(&text, std::path::Path::new("<init>"))
        .map_err(|e| e.to_string())?;
    inv.hosts
        .into_iter()
        .next()
        .ok_or_else(|| "no host".to_string())
}

/// Looks at one host; never fails: every problem is part of the report.
pub async fn look(
    c: &Candidate,
    ssh_config: Option<&ssh2_config::SshConfig>,
    policy: &KeyPolicy,
) -> HostReport {
    let outcome = match tokio::time::timeout(HOST_DEADLINE, look_inner(c, ssh_config, policy)).await
    {
        Ok(o) => o,
        Err(_) => Outcome::Unreachable(format!(
            "no complete answer within {}s",
            HOST_DEADLINE.as_secs()
        )),
    };
    HostReport {
        candidate: c.clone(),
        outcome,
    }
}

async fn look_inner(
    c: &Candidate,
    ssh_config: Option<&ssh2_config::SshConfig>,
    policy: &KeyPolicy,
) -> Outcome {
    if let Err(e) = sources::valid_name(&c.name) {
        return Outcome::Unreachable(format!("not looked at: {e}"));
    }
    let host = match as_host(c) {
        Ok(h) => h,
        Err(e) => return Outcome::Unreachable(format!("not looked at: {e}")),
    };
    let target = ssh::resolve(&host, &crate::config::Settings::default(), ssh_config);
    let session = match Session::connect(&target, policy, &Passphrases::default()).await {
        Ok(s) => Arc::new(s),
        Err(e @ (SshError::UnknownKey { .. } | SshError::NeedPassphrase { .. })) => {
            return Outcome::NotProbed(e.to_string());
        }
        Err(e) => return Outcome::Unreachable(e.to_string()),
    };
    let outcome = probe_host(&session).await;
    session.disconnect().await;
    outcome
}

async fn probe_host(session: &Arc<Session>) -> Outcome {
    let answer = match session.exec(probe::SCRIPT).await {
        Ok(a) => a,
        Err(e) => return Outcome::NotProbed(format!("the probe did not run: {e}")),
    };
    let p = probe::parse(&answer.stdout);
    if p.home.is_empty() {
        return Outcome::NotProbed(
            "the probe script did not answer (is the login shell POSIX?)".into(),
        );
    }
    // The engine: DOCKER_HOST's socket, the rootless one, else the standard one.
    let socket = match p.docker_host.as_deref() {
        Some(h) if h.starts_with("unix://") => h["unix://".len()..].to_string(),
        _ => p
            .sockets
            .first()
            .cloned()
            .unwrap_or_else(|| crate::config::DEFAULT_DOCKER_SOCKET.to_string()),
    };
    let mut notes = Vec::new();
    let containers = match containers(session.clone(), &socket).await {
        Ok(c) => c,
        Err(e) => {
            notes.push(format!("Docker at {socket}: {e}"));
            Vec::new()
        }
    };
    // Directories crontab and timer jobs write to, when the probe's search missed them.
    let mut extra = Vec::new();
    let dirs: Vec<String> = p
        .cron
        .iter()
        .chain(&p.timers)
        .filter_map(|l| probe::dump_target(l))
        .map(|(d, _)| d)
        .collect();
    if let Some(cmd) = probe::list_dirs_script(&dirs)
        && let Ok(out) = session.exec(&cmd).await
    {
        extra = probe::parse(&out.stdout).files;
    }
    let mut found = discover::host(&p, &containers, &extra);
    found.notes.extend(notes);
    if !p.complete {
        found
            .notes
            .push("the probe's answer was cut short: some backups may be missing".into());
    }
    Outcome::Found(found)
}

/// Every container of the engine (opsdeck's own keepers left out), inspected for the few
/// environment variables that name a database.
async fn containers(
    session: Arc<Session>,
    socket: &str,
) -> Result<Vec<discover::ContainerSeen>, String> {
    let (docker, _) = ssh::docker(session, socket).await?;
    let opts = ListContainersOptions {
        all: true,
        ..Default::default()
    };
    let list = tokio::time::timeout(API_TIMEOUT, docker.list_containers(Some(opts)))
        .await
        .map_err(|_| "no container list within 10s".to_string())?
        .map_err(|e| format!("listing containers: {e}"))?;
    let mut out = Vec::new();
    for s in list.iter().take(2000) {
        let labels = s.labels.clone().unwrap_or_default();
        if labels.contains_key(crate::model::releases::KEEP_LABEL) {
            continue;
        }
        let label = |k: &str| labels.get(k).cloned();
        let name = s
            .names
            .as_ref()
            .and_then(|n| n.first())
            .map(|n| n.trim_start_matches('/').to_string())
            .unwrap_or_default();
        let mut seen = discover::ContainerSeen {
            name,
            image: s.image.clone().unwrap_or_default(),
            project: label("com.docker.compose.project"),
            service: label("com.docker.compose.service"),
            working_dir: label("com.docker.compose.project.working_dir"),
            config_files: label("com.docker.compose.project.config_files"),
            environment_file: label("com.docker.compose.project.environment_file"),
            ..Default::default()
        };
        if let Some(id) = &s.id
            && let Ok(Ok(r)) = tokio::time::timeout(
                API_TIMEOUT,
                docker.inspect_container(id, None::<InspectContainerOptions>),
            )
            .await
        {
            for kv in r.config.and_then(|c| c.env).unwrap_or_default() {
                if let Some((k, v)) = kv.split_once('=')
                    && discover::PG_ENV.contains(&k)
                {
                    seen.pg_env.insert(k.to_string(), v.to_string());
                }
            }
        }
        out.push(seen);
    }
    Ok(out)
}

/// Looks at every candidate, [`PARALLEL`] at a time, reporting each as it ends; the
/// reports come back in the candidates' order.
pub async fn look_all(
    candidates: &[Candidate],
    ssh_config: Option<Arc<ssh2_config::SshConfig>>,
    policy: &KeyPolicy,
    mut progress: impl FnMut(usize, &HostReport),
) -> Vec<HostReport> {
    let turns = Arc::new(tokio::sync::Semaphore::new(PARALLEL));
    let mut runs = tokio::task::JoinSet::new();
    for (i, c) in candidates.iter().cloned().enumerate() {
        let (cfg, policy, turns) = (ssh_config.clone(), policy.clone(), turns.clone());
        runs.spawn(async move {
            let _turn = turns.acquire_owned().await;
            (i, look(&c, cfg.as_deref(), &policy).await)
        });
    }
    let mut slots: Vec<Option<HostReport>> = vec![None; candidates.len()];
    let mut done = 0;
    while let Some(joined) = runs.join_next().await {
        if let Ok((i, r)) = joined {
            done += 1;
            progress(done, &r);
            slots[i] = Some(r);
        }
    }
    // A look that panicked (a bug) still leaves its host in the file, unprobed.
    slots
        .into_iter()
        .zip(candidates)
        .map(|(r, c)| {
            r.unwrap_or_else(|| HostReport {
                candidate: c.clone(),
                outcome: Outcome::Unreachable("opsdeck's look at it failed (a bug)".into()),
            })
        })
        .collect()
}

/// The names an inventory file already has, to leave out of what `init` adds.
pub fn existing_names(text: &str, path: &std::path::Path) -> Result<Vec<String>, String> {
    let inv = crate::config::parse_str(text, path).map_err(|e| e.to_string())?;
    Ok(inv.hosts.iter().map(|h| h.name.get_ref().clone()).collect())
}

/// The default file `init` writes: the inventory opsdeck reads when no other is named.
pub fn default_out() -> Option<std::path::PathBuf> {
    crate::config::xdg_config_dir().map(|d| d.join("hosts.toml"))
}

/// `2026-12-03 11:00 UTC`, for the written file's first comment.
pub fn now_text() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%d %H:%M UTC")
        .to_string()
}

/// Writes an inventory whole or not at all (a temporary file renamed into place), its
/// directory made first; with `keep_old`, an existing file is copied to `.toml.bak` first.
pub fn write_inventory(path: &std::path::Path, text: &str, keep_old: bool) -> Result<(), String> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    if keep_old && path.exists() {
        let bak = path.with_extension("toml.bak");
        std::fs::copy(path, &bak).map_err(|e| format!("{}: {e}", bak.display()))?;
    }
    let tmp = path.with_extension("toml.partial");
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// The console's first-run offer: how many hosts `~/.ssh/config` names, when it names any
/// and no inventory exists where the import would write one.
pub fn offer() -> Option<usize> {
    if default_out().is_none_or(|p| p.exists()) {
        return None;
    }
    let cfg = ssh::load_ssh_config()?;
    let n = sources::from_ssh_config(&cfg).len();
    (n > 0).then_some(n)
}

/// The console's import (`I`): `opsdeck init --from-ssh-config` into the default file,
/// never over an existing one, unknown host keys left for the console to ask about.
/// Returns the file written.
pub async fn import_ssh_config(progress: impl FnMut(usize, usize)) -> Result<String, String> {
    let mut progress = progress;
    let out = default_out().ok_or("no config directory (is HOME set?)")?;
    if out.exists() {
        return Err(format!(
            "{} exists already: it is left alone",
            out.display()
        ));
    }
    let cfg = ssh::load_ssh_config().ok_or("~/.ssh/config is gone or does not parse")?;
    let candidates = sources::from_ssh_config(&cfg);
    if candidates.is_empty() {
        return Err("~/.ssh/config names no concrete host".into());
    }
    let total = candidates.len();
    let reports = look_all(
        &candidates,
        Some(Arc::new(cfg)),
        &KeyPolicy::Refuse,
        |done, _| progress(done, total),
    )
    .await;
    let text = render::file(
        &reports,
        &now_text(),
        "opsdeck (I: import from ~/.ssh/config)",
    );
    crate::config::parse_str(&text, &out).map_err(|e| format!("a bug in opsdeck: {e}"))?;
    if out.exists() {
        return Err(format!(
            "{} appeared meanwhile: it is left alone",
            out.display()
        ));
    }
    write_inventory(&out, &text, false)?;
    Ok(out.display().to_string())
}
