//! The timeline's two ends that touch the world: Docker's events as timeline lines
//! ([`from_docker`]), the per-host file they are kept in ([`Store`]), and the worker's
//! task that catches up from the engine (`since` the last event kept) and then follows it.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bollard::Docker;
use futures::StreamExt;
use jiff::Timestamp;
use tokio::sync::{mpsc, watch};

use crate::model::Msg;
use crate::model::timeline::{Event, Grade, PER_HOST, inert};

/// The engine's events the timeline keeps: a container's life, and images pulled or
/// tagged. Not `exec_*`: every health-check probe makes those.
const CONTAINER_EVENTS: [&str; 10] = [
    "die",
    "oom",
    "kill",
    "restart",
    "start",
    "stop",
    "destroy",
    "pause",
    "unpause",
    "health_status",
];
const IMAGE_EVENTS: [&str; 2] = ["pull", "tag"];
/// How far back the first catch-up of a host asks. The engine answers from memory: its
/// last 256 events of every kind (health-check probes make three each), so minutes on a
/// host with health checks.
const FIRST_SINCE: i64 = 24 * 3600;
/// The file is rewritten with its newest [`PER_HOST`] once it holds this many bytes.
const COMPACT_AT: u64 = 8 << 20;
/// The longest line read back (a line past it is not one of ours).
const MAX_LINE: usize = 8 << 10;

/// A Docker event as a timeline line; `None` for the ones that say nothing to an
/// operator (exec probes of health checks, create, attach...).
pub fn from_docker(host: &str, ev: &bollard::models::EventMessage) -> Option<Event> {
    use bollard::models::EventMessageTypeEnum as T;
    let action = ev.action.as_deref()?;
    let ns = ev
        .time_nano
        .or_else(|| ev.time.map(|s| s.saturating_mul(1_000_000_000)))?;
    let empty = HashMap::new();
    let actor = ev.actor.as_ref();
    let attrs = actor.and_then(|a| a.attributes.as_ref()).unwrap_or(&empty);
    let attr = |k: &str| attrs.get(k).map(String::as_str);
    let id = actor.and_then(|a| a.id.clone());
    let (kind, text, grade, subject) = match ev.typ {
        // opsdeck's never-started keepers of kept releases' images are not the host's
        Some(T::CONTAINER) if attrs.contains_key(crate::model::releases::KEEP_LABEL) => {
            return None;
        }
        Some(T::CONTAINER) => {
            let (kind, text, grade) = match action {
                "die" => {
                    let code = attr("exitCode").unwrap_or("?");
                    let grade = if code == "0" {
                        Grade::Info
                    } else {
                        Grade::Crit
                    };
                    ("die", format!("exited with code {code}"), grade)
                }
                "oom" => (
                    "oom",
                    "ran out of memory (OOM kill)".to_string(),
                    Grade::Crit,
                ),
                "kill" => {
                    let sig = signal_name(attr("signal").unwrap_or("?"));
                    ("kill", format!("sent {sig}"), Grade::Warn)
                }
                "restart" => ("restart", "restarted".into(), Grade::Warn),
                "start" => ("start", "started".into(), Grade::Good),
                "stop" => ("stop", "stopped".into(), Grade::Warn),
                "destroy" => ("destroy", "removed".into(), Grade::Info),
                "pause" => ("pause", "paused".into(), Grade::Warn),
                "unpause" => ("unpause", "unpaused".into(), Grade::Info),
                a if a.starts_with("health_status") => {
                    let status = a
                        .split_once(':')
                        .map_or("unknown", |(_, s)| s.trim())
                        .to_string();
                    let grade = match status.as_str() {
                        "healthy" => Grade::Good,
                        "unhealthy" => Grade::Crit,
                        _ => Grade::Info,
                    };
                    ("health", format!("health: {status}"), grade)
                }
                _ => return None,
            };
            (kind, text, grade, attr("name").map(|n| inert(n, 128)))
        }
        Some(T::IMAGE) => {
            let name = attr("name")
                .or(id.as_deref())
                .map(|n| inert(n, 160))
                .unwrap_or_default();
            match action {
                // a kept release's tag is opsdeck's bookkeeping, said in the job's output
                _ if name.starts_with("opsdeck-keep/") => return None,
                "pull" => ("pull", format!("image pulled: {name}"), Grade::Info, None),
                "tag" => ("tag", format!("image tagged: {name}"), Grade::Info, None),
                _ => return None,
            }
        }
        _ => return None,
    };
    Some(Event {
        ns,
        host: host.to_string(),
        kind: kind.into(),
        stack: attr("com.docker.compose.project").map(|p| inert(p, 64)),
        subject,
        id: if matches!(ev.typ, Some(T::CONTAINER)) {
            id
        } else {
            None
        },
        text: inert(&text, 240),
        grade,
        source: "docker".into(),
    })
}

/// A host's events on disk: `$XDG_STATE_HOME/opsdeck/events/<host>.jsonl`, one JSON line
/// each, appended with single writes (two opsdecks may write; readers drop the twins).
#[derive(Debug, Clone)]
pub struct Store {
    path: PathBuf,
}

/// A host name as a file name: its plain characters, and a hash of it when it has others.
fn file_name(host: &str) -> String {
    let plain: String = host
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        .take(64)
        .collect();
    if plain == host && !plain.starts_with('.') && !plain.is_empty() {
        format!("{plain}.jsonl")
    } else {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        host.hash(&mut h);
        format!(
            "{}-{:016x}.jsonl",
            plain.trim_start_matches('.'),
            h.finish()
        )
    }
}

impl Store {
    /// The store of host `host` in opsdeck's state directory.
    pub fn for_host(host: &str) -> Option<Store> {
        Some(Store::in_dir(
            &crate::jobs::audit::state_dir()?.join("events"),
            host,
        ))
    }

    pub fn in_dir(dir: &Path, host: &str) -> Store {
        Store {
            path: dir.join(file_name(host)),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every event kept, newest first, each once, at most [`PER_HOST`].
    pub fn load(&self) -> Vec<Event> {
        self.load_newest(PER_HOST)
    }

    /// The newest `max` events kept (of the file's last `max` lines: it is appended in
    /// time order, give or take a catch-up), newest first, each once.
    pub fn load_newest(&self, max: usize) -> Vec<Event> {
        let Ok(bytes) = std::fs::read(&self.path) else {
            return Vec::new();
        };
        let lines: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
        let from = lines.len().saturating_sub(max.saturating_add(1));
        let mut all: Vec<Event> = lines[from..]
            .iter()
            .filter(|line| !line.is_empty() && line.len() <= MAX_LINE)
            .filter_map(|line| serde_json::from_slice::<Event>(line).ok())
            .collect();
        // Newest first; twins side by side, and kept once.
        all.sort_by(|a, b| b.ns.cmp(&a.ns).then_with(|| a.key().cmp(&b.key())));
        all.dedup_by(|a, b| a.key() == b.key());
        all.truncate(max);
        all
    }

    /// Appends `events` (one write), and keeps the file bounded.
    pub fn append(&self, events: &[Event]) -> std::io::Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        let mut text = Vec::new();
        for e in events {
            serde_json::to_writer(&mut text, e)?;
            text.push(b'\n');
        }
        let mut file = crate::jobs::audit::open_private(&self.path)?;
        file.write_all(&text)?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        drop(file);
        if size > COMPACT_AT {
            self.compact()?;
        }
        Ok(())
    }

    /// Rewrites the file with its newest [`PER_HOST`] events, oldest first.
    fn compact(&self) -> std::io::Result<()> {
        let mut kept = self.load();
        kept.reverse();
        let tmp = self.path.with_extension("jsonl.tmp");
        let _ = std::fs::remove_file(&tmp);
        let mut file = crate::jobs::audit::open_private(&tmp)?;
        let mut text = Vec::new();
        for e in &kept {
            serde_json::to_writer(&mut text, e)?;
            text.push(b'\n');
        }
        file.write_all(&text)?;
        file.sync_all()?;
        std::fs::rename(&tmp, &self.path)
    }
}

/// `secs.nanos`, as the engine's `since` and `until` take a time.
fn docker_time(ns: i64) -> String {
    format!(
        "{}.{:09}",
        ns.div_euclid(1_000_000_000),
        ns.rem_euclid(1_000_000_000)
    )
}

fn options(since: i64, until: Option<i64>) -> bollard::query_parameters::EventsOptions {
    let mut filters = HashMap::new();
    filters.insert(
        "type".to_string(),
        vec!["container".to_string(), "image".to_string()],
    );
    let events: Vec<String> = CONTAINER_EVENTS
        .iter()
        .chain(IMAGE_EVENTS.iter())
        .map(|s| s.to_string())
        .collect();
    filters.insert("event".to_string(), events);
    bollard::query_parameters::EventsOptions {
        since: Some(docker_time(since)),
        until: until.map(docker_time),
        filters: Some(filters),
    }
}

/// An event's [`Event::key`], owned.
type Key = (i64, String, Option<String>, String);

/// Remembers the keys of the last events met, so an event met twice (at the seam of the
/// catch-up and the live stream) is kept once.
#[derive(Default)]
struct Twins {
    order: VecDeque<Key>,
    set: HashSet<Key>,
}

impl Twins {
    fn first_time(&mut self, e: &Event) -> bool {
        let (ns, kind, id, text) = e.key();
        let key: Key = (ns, kind.into(), id.map(String::from), text.into());
        if !self.set.insert(key.clone()) {
            return false;
        }
        self.order.push_back(key);
        if self.order.len() > 4096
            && let Some(old) = self.order.pop_front()
        {
            self.set.remove(&old);
        }
        true
    }
}

/// The worker's timeline task: once Docker answers, catches up on what happened since the
/// last event kept (or the last day), stores it and tells the console, then follows the
/// engine's events as they come. Again after the engine or the connection comes back.
pub async fn follow(
    host: usize,
    name: String,
    mut engine: watch::Receiver<Option<(Docker, crate::docker::Socket)>>,
    msgs: mpsc::Sender<Msg>,
) {
    let store = Store::for_host(&name);
    let mut seen = Twins::default();
    loop {
        let Ok(docker) = engine
            .wait_for(Option::is_some)
            .await
            .map(|e| e.as_ref().map(|(d, _)| d.clone()))
        else {
            return;
        };
        let Some(docker) = docker else { return };
        let kept = match &store {
            Some(s) => {
                let s = s.clone();
                tokio::task::spawn_blocking(move || s.load())
                    .await
                    .unwrap_or_default()
            }
            None => Vec::new(),
        };
        for e in kept.iter().take(512) {
            seen.first_time(e);
        }
        let now = i64::try_from(Timestamp::now().as_nanosecond()).unwrap_or(i64::MAX);
        let since = kept
            .iter()
            .filter(|e| e.source == "docker")
            .map(|e| e.ns)
            .max()
            .unwrap_or(now - FIRST_SINCE * 1_000_000_000);
        // What happened while nobody watched: a bounded question, until now.
        let mut caught = Vec::new();
        let mut past = docker.events(Some(options(since, Some(now))));
        while let Some(Ok(ev)) = past.next().await {
            if let Some(e) = from_docker(&name, &ev)
                && seen.first_time(&e)
            {
                caught.push(e);
                if caught.len() >= PER_HOST {
                    break;
                }
            }
        }
        drop(past);
        save(store.as_ref(), &caught).await;
        if msgs
            .send(Msg::Timeline {
                host,
                events: caught,
                caught_up: true,
            })
            .await
            .is_err()
        {
            return;
        }
        // Then as it happens.
        let mut live = docker.events(Some(options(now, None)));
        while let Some(Ok(ev)) = live.next().await {
            let Some(e) = from_docker(&name, &ev) else {
                continue;
            };
            if !seen.first_time(&e) {
                continue;
            }
            save(store.as_ref(), std::slice::from_ref(&e)).await;
            if msgs
                .send(Msg::Timeline {
                    host,
                    events: vec![e],
                    caught_up: true,
                })
                .await
                .is_err()
            {
                return;
            }
        }
        // The stream ended: the engine or the connection went. Again once it is back.
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// The engine names a signal by its number (Linux's): `SIGHUP` for `1`.
fn signal_name(number: &str) -> String {
    match number.parse().ok().and_then(super::shell::signal_name) {
        Some(name) => format!("SIG{name}"),
        None => format!("signal {}", inert(number, 16)),
    }
}

/// Stores events off the async threads; a failure is logged, never fatal.
pub async fn save(store: Option<&Store>, events: &[Event]) {
    let Some(store) = store else { return };
    if events.is_empty() {
        return;
    }
    let (store, events) = (store.clone(), events.to_vec());
    let path = store.path().display().to_string();
    match tokio::task::spawn_blocking(move || store.append(&events)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!("cannot keep the timeline in {path}: {e}"),
        Err(e) => tracing::warn!("cannot keep the timeline in {path}: {e}"),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use bollard::models::{EventActor, EventMessage, EventMessageTypeEnum};

    fn docker(typ: EventMessageTypeEnum, action: &str, attrs: &[(&str, &str)]) -> EventMessage {
        EventMessage {
            typ: Some(typ),
            action: Some(action.into()),
            actor: Some(EventActor {
                id: Some("abc123".into()),
                attributes: Some(
                    attrs
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
            }),
            scope: None,
            time: Some(1_700_000_000),
            time_nano: Some(1_700_000_000_123_456_789),
        }
    }

    #[test]
    fn docker_events_read_as_lines_and_probes_are_left_out() {
        use EventMessageTypeEnum::*;
        let base = [
            ("name", "lila_api_1"),
            ("com.docker.compose.project", "lila"),
        ];
        let with = |extra: (&'static str, &'static str)| {
            let mut v = base.to_vec();
            v.push(extra);
            v
        };
        let e = from_docker(
            "lila",
            &docker(CONTAINER, "die", &with(("exitCode", "137"))),
        )
        .unwrap();
        assert_eq!(
            (e.kind.as_str(), e.text.as_str(), e.grade),
            ("die", "exited with code 137", Grade::Crit)
        );
        assert_eq!(e.stack.as_deref(), Some("lila"));
        assert_eq!(e.subject.as_deref(), Some("lila_api_1"));
        assert_eq!(e.ns, 1_700_000_000_123_456_789);
        let e = from_docker(
            "lila",
            &docker(CONTAINER, "health_status: unhealthy", &base),
        )
        .unwrap();
        assert_eq!(
            (e.kind.as_str(), e.text.as_str()),
            ("health", "health: unhealthy")
        );
        let e = from_docker("lila", &docker(CONTAINER, "kill", &with(("signal", "9")))).unwrap();
        assert_eq!(e.text, "sent SIGKILL");
        let e = from_docker("lila", &docker(CONTAINER, "kill", &with(("signal", "64")))).unwrap();
        assert_eq!(e.text, "sent signal 64");
        assert_eq!(
            from_docker("lila", &docker(CONTAINER, "oom", &base))
                .unwrap()
                .kind,
            "oom"
        );
        for skipped in ["exec_create: sh -c true", "exec_die", "attach", "create"] {
            assert!(from_docker("lila", &docker(CONTAINER, skipped, &base)).is_none());
        }
        let e = from_docker("lila", &docker(IMAGE, "pull", &[("name", "lila/api:1.2")])).unwrap();
        assert_eq!(
            (e.kind.as_str(), e.text.as_str()),
            ("pull", "image pulled: lila/api:1.2")
        );
        assert!(e.id.is_none());
        // a hostile name stays one inert line
        let e = from_docker(
            "lila",
            &docker(
                CONTAINER,
                "stop",
                &[("name", "x\u{1b}]52;c;aGk=\u{7}\r\ny")],
            ),
        )
        .unwrap();
        let name = e.subject.unwrap();
        assert!(!name.chars().any(char::is_control), "{name:?}");
    }

    fn ev(ns: i64, text: &str) -> Event {
        Event {
            ns,
            host: "lila".into(),
            kind: "die".into(),
            stack: Some("lila".into()),
            subject: Some("lila_api_1".into()),
            id: Some("abc".into()),
            text: text.into(),
            grade: Grade::Crit,
            source: "docker".into(),
        }
    }

    #[test]
    fn the_store_keeps_each_event_once_newest_first_and_skips_what_is_not_ours() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::in_dir(dir.path(), "lila");
        store.append(&[ev(1, "a"), ev(2, "b")]).unwrap();
        // a second opsdeck wrote one of them too; a torn line; an overlong line
        store.append(&[ev(2, "b"), ev(3, "c")]).unwrap();
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(store.path())
            .unwrap();
        f.write_all(b"{\"ns\": 4, \"host\"\n").unwrap();
        f.write_all(&vec![b'x'; MAX_LINE * 2]).unwrap();
        f.write_all(b"\n").unwrap();
        drop(f);
        store.append(&[ev(5, "e")]).unwrap();
        let texts: Vec<String> = store.load().into_iter().map(|e| e.text).collect();
        assert_eq!(texts, ["e", "c", "b", "a"]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(store.path())
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn the_store_is_compacted_to_its_bound() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::in_dir(dir.path(), "lila");
        let long = "x".repeat(200);
        let batch: Vec<Event> = (0..2000).map(|i| ev(i, &format!("{i} {long}"))).collect();
        for round in 0..12 {
            let shifted: Vec<Event> = batch
                .iter()
                .map(|e| Event {
                    ns: e.ns + round * 2000,
                    text: format!("{round} {}", e.text),
                    ..e.clone()
                })
                .collect();
            store.append(&shifted).unwrap();
        }
        let size = std::fs::metadata(store.path()).unwrap().len();
        assert!(size <= COMPACT_AT + 2000 * 400, "{size}");
        let kept = store.load();
        assert_eq!(kept.len(), PER_HOST);
        assert_eq!(kept[0].ns, 11 * 2000 + 1999, "the newest stays");
    }

    #[test]
    fn host_names_make_plain_file_names() {
        assert_eq!(file_name("lila"), "lila.jsonl");
        let odd = file_name("../etc/passwd");
        assert!(!odd.contains('/') && odd.ends_with(".jsonl"), "{odd}");
        assert_ne!(file_name("a b"), file_name("a_b"));
        assert_eq!(
            docker_time(1_700_000_000_000_000_123),
            "1700000000.000000123"
        );
    }
}
