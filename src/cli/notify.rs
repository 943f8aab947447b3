//! Notifications from `opsdeck check`: the problems go to a webhook only when their set
//! changed since the last run (kept in the XDG state dir), so a cron job every minute
//! reports a new problem once, stays quiet while nothing changes, and reports the all-clear.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::json;

use crate::config::{Notify, NotifyKind};
use crate::model::{Problem, Severity};

const TIMEOUT: Duration = Duration::from_secs(10);

/// One state file per inventory and host selection: `check lila` and `check` are watched
/// separately and must not reset each other.
pub fn state_path(source: &str, hosts: &[String]) -> Option<PathBuf> {
    let dirs = directories::ProjectDirs::from("", "", "opsdeck")?;
    let dir = dirs.state_dir().unwrap_or(dirs.data_local_dir());
    // FNV-1a: stable across runs and Rust versions, unlike DefaultHasher.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in source.bytes().chain(hosts.join("\0").bytes()) {
        hash = (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    Some(dir.join(format!("notify-{hash:016x}.json")))
}

/// The problems' stable keys, sorted: what "the set changed" compares.
pub fn keys(problems: &[Problem]) -> Vec<String> {
    let mut k: Vec<String> = problems.iter().map(|p| p.key.clone()).collect();
    k.sort();
    k.dedup();
    k
}

/// The last run's keys; none (a first run) counts as "no problems".
pub fn load(path: &Path) -> Vec<String> {
    std::fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| serde_json::from_value(v["keys"].clone()).ok())
        .unwrap_or_default()
}

fn save(path: &Path, keys: &[String]) -> Result<(), String> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let tmp = path.with_extension("json.partial");
    std::fs::write(&tmp, json!({ "keys": keys }).to_string())
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// What one run did.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Unchanged,
    Sent,
}

/// Posts when the set changed, then records it; a failed post records nothing, so the
/// next run tries again.
pub async fn run(
    notify: &Notify,
    problems: &[Problem],
    hosts: usize,
    state: &Path,
) -> Result<Outcome, String> {
    let now = keys(problems);
    if load(state) == now {
        return Ok(Outcome::Unchanged);
    }
    let (headers, body) = payload(notify, problems, hosts)?;
    let headers: Vec<(&str, String)> = headers.iter().map(|(k, v)| (*k, v.clone())).collect();
    crate::checks::post(notify.url.get_ref(), &headers, body, TIMEOUT).await?;
    save(state, &now)?;
    Ok(Outcome::Sent)
}

fn text(problems: &[Problem], hosts: usize) -> String {
    super::check::to_text(problems, hosts)
}

type Payload = (Vec<(&'static str, String)>, Vec<u8>);

fn payload(notify: &Notify, problems: &[Problem], hosts: usize) -> Result<Payload, String> {
    let worst = problems.iter().map(|p| p.severity).max();
    match notify.kind {
        NotifyKind::Json => Ok((
            vec![("content-type", "application/json".into())],
            super::check::to_json(problems, hosts)
                .to_string()
                .into_bytes(),
        )),
        NotifyKind::Ntfy => {
            let (title, priority, tags) = match worst {
                None => ("opsdeck: all clear", "default", "white_check_mark"),
                Some(Severity::Warning) => ("opsdeck: WARNING", "default", "warning"),
                Some(Severity::Critical) => ("opsdeck: CRITICAL", "high", "rotating_light"),
            };
            Ok((
                vec![
                    ("content-type", "text/plain; charset=utf-8".into()),
                    ("title", title.into()),
                    ("priority", priority.into()),
                    ("tags", tags.into()),
                ],
                text(problems, hosts).into_bytes(),
            ))
        }
        NotifyKind::Telegram => {
            let chat = notify
                .chat_id
                .as_deref()
                .ok_or("notify.kind = \"telegram\" needs chat_id")?;
            Ok((
                vec![("content-type", "application/json".into())],
                json!({ "chat_id": chat, "text": text(problems, hosts) })
                    .to_string()
                    .into_bytes(),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn problem(severity: Severity, key: &str) -> Problem {
        Problem {
            severity,
            host: 0,
            host_name: "lila".into(),
            what: format!("{key} (details that change)"),
            key: key.into(),
        }
    }

    fn notify(kind: NotifyKind, chat_id: Option<&str>) -> Notify {
        Notify {
            url: toml::Spanned::new(0..0, "https://ntfy.sh/ops".into()),
            kind,
            chat_id: chat_id.map(str::to_string),
        }
    }

    #[test]
    fn ntfy_and_telegram_payloads() {
        let p = [problem(Severity::Critical, "down")];
        let (headers, body) = payload(&notify(NotifyKind::Ntfy, None), &p, 1).unwrap();
        assert!(headers.contains(&("priority", "high".into())));
        assert!(headers.contains(&("title", "opsdeck: CRITICAL".into())));
        assert_eq!(
            String::from_utf8(body).unwrap(),
            "CRITICAL lila: down (details that change)\n"
        );
        let (_, body) = payload(&notify(NotifyKind::Ntfy, None), &[], 1).unwrap();
        assert_eq!(
            String::from_utf8(body).unwrap(),
            "OK: 1 hosts, no problems\n"
        );
        let (_, body) = payload(&notify(NotifyKind::Telegram, Some("-100")), &p, 1).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["chat_id"], "-100");
        assert!(payload(&notify(NotifyKind::Telegram, None), &p, 1).is_err());
    }

    #[test]
    fn keys_compare_the_set_not_the_wording() {
        let mut a = problem(Severity::Warning, "memory");
        let before = keys(&[a.clone()]);
        a.what = "memory 93% used".into();
        assert_eq!(keys(&[a]), before);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s/notify.json");
        assert!(load(&path).is_empty());
        save(&path, &before).unwrap();
        assert_eq!(load(&path), before);
    }
}
