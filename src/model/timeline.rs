//! What changed on a host, and when: one line per event, newest first (`t`, `opsdeck
//! events`). Docker's events (a container died, was killed, ran out of memory, changed
//! health; an image was pulled or tagged), the check results that changed, opsdeck's own
//! jobs and backups (from the audit log). Kept on disk per host
//! ([`crate::remote::timeline`]), so the story survives a restart of opsdeck.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::job::JobRecord;

/// Events kept per host on disk.
pub const PER_HOST: usize = 10_000;
/// Events the console keeps for the whole fleet (the newest; the rest stay on disk).
pub const IN_CONSOLE: usize = 20_000;

/// How bad an event is, for its colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Grade {
    #[default]
    Info,
    Warn,
    Crit,
    Good,
}

/// One thing that happened on a host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// When, in nanoseconds since the epoch (Docker's `timeNano`).
    pub ns: i64,
    pub host: String,
    /// `die`, `oom`, `kill`, `health`, `restart`, `start`, `stop`, `destroy`, `pause`,
    /// `unpause`, `pull`, `tag`, `check`, `job`, `backup`.
    pub kind: String,
    /// The compose project of the container, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack: Option<String>,
    /// The container's name (or the check's, the image's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The container's id, for its log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// What happened, one line, inert.
    pub text: String,
    #[serde(default)]
    pub grade: Grade,
    /// Where it came from: `docker` (caught up from the engine's `since`), `opsdeck`.
    #[serde(default)]
    pub source: String,
}

impl Event {
    pub fn time(&self) -> Timestamp {
        Timestamp::from_nanosecond(i128::from(self.ns)).unwrap_or(Timestamp::UNIX_EPOCH)
    }

    /// Two sightings of one event (caught up twice, or by two opsdecks) have this alike.
    pub fn key(&self) -> (i64, &str, Option<&str>, &str) {
        (self.ns, &self.kind, self.id.as_deref(), &self.text)
    }

    /// Whether the filter, already [`super::logs::fold`]ed (as the log search folds it),
    /// is in its host, stack, subject, kind or text; an empty one is in every event.
    pub fn matches(&self, folded: &str) -> bool {
        folded.is_empty()
            || [
                Some(self.host.as_str()),
                self.stack.as_deref(),
                self.subject.as_deref(),
                Some(self.kind.as_str()),
                Some(self.text.as_str()),
            ]
            .into_iter()
            .flatten()
            .any(|s| super::logs::matches(s, folded))
    }
}

/// One line of host text, made safe and bounded (names, labels, signals come from the
/// host).
pub fn inert(s: &str, max: usize) -> String {
    let line = crate::sanitize::line(s);
    crate::ui::format::fit(&line, max).trim_end().to_string()
}

/// A job or backup from the audit log, as a timeline line of its host.
pub fn from_record(r: &JobRecord) -> Option<Event> {
    let t: Timestamp = r.time.parse().ok()?;
    let ns = i64::try_from(t.as_nanosecond()).ok()?;
    let backup = r.set.is_some() || r.action.starts_with("backup");
    let grade = if r.ok() {
        Grade::Good
    } else if r.outcome.starts_with("cancelled") {
        Grade::Warn
    } else {
        Grade::Crit
    };
    let what = r.summary.as_deref().unwrap_or(&r.action);
    let text = format!("{} by {}: {} ({})", r.action, r.user, r.outcome, what);
    Some(Event {
        ns,
        host: r.host.clone(),
        kind: if backup { "backup" } else { "job" }.into(),
        stack: (!r.stack.is_empty()).then(|| r.stack.clone()),
        subject: r.container.clone(),
        id: None,
        text: inert(&text, 240),
        grade,
        source: "opsdeck".into(),
    })
}

/// A check that changed from passing to failing or back.
pub fn check_changed(host: &str, name: &str, ok: bool, detail: &str, at: Timestamp) -> Event {
    Event {
        ns: i64::try_from(at.as_nanosecond()).unwrap_or(0),
        host: host.into(),
        kind: "check".into(),
        stack: None,
        subject: Some(inert(name, 64)),
        id: None,
        text: inert(
            &if ok {
                format!("check {name} passes again")
            } else {
                format!("check {name} fails: {detail}")
            },
            240,
        ),
        grade: if ok { Grade::Good } else { Grade::Crit },
        source: "opsdeck".into(),
    }
}

/// Within this of each other, two boot times (now less uptime) are one boot.
const SAME_BOOT_NS: i64 = 120 * 1_000_000_000;

/// What a host's sample says that belongs on its timeline: a boot not seen before (the
/// host rebooted; the first ever is recorded too), and each disk crossing its warning or
/// critical threshold, either way. `seen` is what the last samples said (`None` before
/// the first: a disk already full then is a state, not a change).
pub fn host_facts(
    host: &str,
    seen: &mut Option<Seen>,
    last_boot: Option<i64>,
    metrics: &super::host::Metrics,
    at: Timestamp,
    limits: &super::Limits,
) -> Vec<Event> {
    let at_ns = i64::try_from(at.as_nanosecond()).unwrap_or(0);
    let boot = at_ns.saturating_sub(
        i64::try_from(metrics.uptime_secs)
            .unwrap_or(0)
            .saturating_mul(1_000_000_000),
    );
    let mut out = Vec::new();
    let fact = |ns: i64, kind: &str, subject: Option<String>, text: String, grade: Grade| Event {
        ns,
        host: host.into(),
        kind: kind.into(),
        stack: None,
        subject,
        id: None,
        text,
        grade,
        source: "opsdeck".into(),
    };
    let known = seen.as_ref().and_then(|s| s.boot).or(last_boot);
    let new_boot = metrics.uptime_secs > 0 && known.is_none_or(|k| (boot - k).abs() > SAME_BOOT_NS);
    if new_boot {
        let (text, grade) = match known {
            Some(_) => ("host rebooted", Grade::Warn),
            None => ("host booted", Grade::Info),
        };
        out.push(fact(boot, "boot", None, text.into(), grade));
    }
    let level = |p: f64| u8::from(p >= limits.disk_warn) + u8::from(p >= limits.disk_crit);
    let state = seen.get_or_insert_with(Seen::default);
    state.boot = if new_boot {
        Some(boot)
    } else {
        state.boot.or(known)
    };
    for d in &metrics.disks {
        let p = super::host::percent(d.used_bytes, d.total_bytes);
        let now = level(p);
        // A disk seen for the first time (the first sample's all are) has no crossing.
        let Some(before) = state.disks.insert(d.mount.clone(), now) else {
            continue;
        };
        if now == before {
            continue;
        }
        let mount = inert(&d.mount, 64);
        let (text, grade) = match now {
            2 => (
                format!("disk {mount} {p:.0}% full: past {:.0}%", limits.disk_crit),
                Grade::Crit,
            ),
            1 if before < 1 => (
                format!("disk {mount} {p:.0}% full: past {:.0}%", limits.disk_warn),
                Grade::Warn,
            ),
            1 => (
                format!(
                    "disk {mount} {p:.0}% full: back under {:.0}%",
                    limits.disk_crit
                ),
                Grade::Warn,
            ),
            _ => (
                format!(
                    "disk {mount} {p:.0}% full: back under {:.0}%",
                    limits.disk_warn
                ),
                Grade::Good,
            ),
        };
        out.push(fact(at_ns, "disk", Some(mount.clone()), text, grade));
    }
    out
}

/// What [`host_facts`] remembers of a host between samples.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Seen {
    pub boot: Option<i64>,
    /// Each disk's level: 0 under the warning threshold, 1 past it, 2 past critical.
    pub disks: std::collections::HashMap<String, u8>,
}

/// Puts `new` into `list` (newest first), skipping what it has already (among its
/// newest), keeping `max`.
pub fn merge(list: &mut Vec<Event>, new: impl IntoIterator<Item = Event>, max: usize) {
    let mut added = false;
    for e in new {
        // A live event is newer than everything: it goes in front, no sort.
        let newest = list.first().is_none_or(|f| e.ns >= f.ns);
        if list.iter().take(512).any(|o| o.key() == e.key()) {
            continue;
        }
        if newest {
            list.insert(0, e);
        } else {
            list.push(e);
            added = true;
        }
    }
    if added {
        list.sort_by_key(|e| std::cmp::Reverse(e.ns));
    }
    list.truncate(max);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reboot_and_a_disk_crossing_its_thresholds_are_facts_a_steady_host_is_not() {
        use crate::model::host::{Disk, Metrics};
        let limits = crate::model::Limits::default();
        let m = |uptime: u64, used: u64| Metrics {
            uptime_secs: uptime,
            disks: vec![Disk {
                mount: "/".into(),
                used_bytes: used,
                total_bytes: 100,
            }],
            ..Metrics::default()
        };
        let at = |s: i64| Timestamp::from_second(1_700_000_000 + s).unwrap();
        let mut seen = None;
        // first sample: the boot is recorded; a disk already past 85% is a state, not news
        let first = host_facts("h", &mut seen, None, &m(3600, 90), at(0), &limits);
        let kinds: Vec<&str> = first.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(kinds, ["boot"]);
        assert_eq!(first[0].ns, (1_700_000_000 - 3600) * 1_000_000_000);
        // the same boot, the same level: nothing
        assert!(host_facts("h", &mut seen, None, &m(3602, 91), at(2), &limits).is_empty());
        // past critical, then back under warning
        let crit = host_facts("h", &mut seen, None, &m(3604, 96), at(4), &limits);
        assert_eq!(crit[0].text, "disk / 96% full: past 95%");
        assert_eq!(crit[0].grade, Grade::Crit);
        let ok = host_facts("h", &mut seen, None, &m(3606, 50), at(6), &limits);
        assert_eq!(ok[0].text, "disk / 50% full: back under 85%");
        // uptime went back: a reboot
        let reboot = host_facts("h", &mut seen, None, &m(30, 50), at(600), &limits);
        assert_eq!(reboot[0].text, "host rebooted");
        // a new console that knows the last boot from the store says nothing of it
        let mut fresh = None;
        let known = Some(reboot[0].ns);
        assert!(host_facts("h", &mut fresh, known, &m(40, 50), at(610), &limits).is_empty());
    }

    #[test]
    fn merging_keeps_newest_first_bounded_and_each_event_once() {
        let ev = |ns: i64, text: &str| Event {
            ns,
            host: "h".into(),
            kind: "die".into(),
            stack: None,
            subject: None,
            id: Some("c".into()),
            text: text.into(),
            grade: Grade::Info,
            source: "docker".into(),
        };
        let mut list = Vec::new();
        merge(&mut list, [ev(1, "a"), ev(3, "c"), ev(2, "b")], 10);
        merge(&mut list, [ev(3, "c"), ev(4, "d")], 3);
        let texts: Vec<&str> = list.iter().map(|e| e.text.as_str()).collect();
        assert_eq!(texts, ["d", "c", "b"]);
        let fold = crate::model::logs::fold;
        assert!(ev(1, "x").matches(&fold("DIE")) && !ev(1, "x").matches(&fold("pull")));
        assert!(ev(1, "x").matches(""));
    }
}
