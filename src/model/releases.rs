//! A stack's release history, kept on its host beside the lock
//! (`~/.local/state/opsdeck/<project>.releases`): one JSON object per line, the newest
//! last, at most [`KEEP`]. Every deploy, rollback and migration adds one, ok or failed:
//! when, who, what ran, the image ID behind every service, the checkout's commit, the
//! migration head and the dump taken before migrating.
//!
//! The file lives on the host, so it is read as hostile: bounded, a line that does not
//! parse is left out (and counted), every text field is cut to a length and made safe to
//! print before it reaches a screen.

use serde::{Deserialize, Serialize};

/// Releases kept per stack; older ones age out (their keep tags go with them).
pub const KEEP: usize = 20;
/// The most of the file read; 20 releases of a dozen services are ~20 KB.
pub const MAX_FILE: usize = 1024 * 1024;
/// Services recorded per release, and the longest text field kept.
const MAX_SERVICES: usize = 64;
const MAX_FIELD: usize = 512;

/// One service of a release: the image name the compose file uses and the ID it ran.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceImage {
    pub service: String,
    pub image: String,
    /// `sha256:...`
    pub id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Release {
    /// 1 for the stack's first release; never reused, also after older ones age out.
    pub n: u64,
    /// `20261203T074012Z`: when it was recorded, unique per stack in practice.
    pub id: String,
    /// RFC 3339.
    pub at: String,
    /// `user@machine`.
    pub who: String,
    /// `deploy`, `migrate`, `rollback to #3`.
    pub recipe: String,
    #[serde(default)]
    pub services: Vec<ServiceImage>,
    /// The stack directory's `git rev-parse HEAD`, when it is a checkout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// What the stack's `migration_head` command printed (its last line).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migration_head: Option<String>,
    /// The dump taken before this release's migration, as the inventory spells its dir.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dump: Option<String>,
    /// The backup set the dump belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dump_set: Option<String>,
    /// `ok`, or `failed: ...` / `cancelled: ...` as the audit record says.
    pub outcome: String,
}

impl Release {
    pub fn ok(&self) -> bool {
        self.outcome == "ok"
    }

    /// The image ID of a service, if the release ran it.
    pub fn image_of(&self, service: &str) -> Option<&ServiceImage> {
        self.services.iter().find(|s| s.service == service)
    }

    /// Every text field made safe to print and cut to a bound: what a hostile host wrote
    /// into its file never reaches a terminal as it is.
    fn tamed(mut self) -> Release {
        let tame = |s: &mut String| {
            *s = crate::sanitize::line(s).chars().take(MAX_FIELD).collect();
        };
        tame(&mut self.id);
        tame(&mut self.at);
        tame(&mut self.who);
        tame(&mut self.recipe);
        tame(&mut self.outcome);
        for o in [
            &mut self.commit,
            &mut self.migration_head,
            &mut self.dump,
            &mut self.dump_set,
        ]
        .into_iter()
        .flatten()
        {
            tame(o);
        }
        self.services.truncate(MAX_SERVICES);
        for s in &mut self.services {
            tame(&mut s.service);
            tame(&mut s.image);
            tame(&mut s.id);
        }
        self
    }

    /// `#3 20261203T074012Z`
    pub fn label(&self) -> String {
        format!("#{} {}", self.n, self.id)
    }
}

/// What a releases file holds: the releases in order, oldest first, and how many lines
/// could not be read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct History {
    pub releases: Vec<Release>,
    pub unreadable: usize,
}

/// Reads a releases file (already bounded by the reader): lines that are not a release
/// are counted, not fatal; releases are ordered by number, a number seen twice keeps the
/// later line.
pub fn parse(bytes: &[u8]) -> History {
    let text = String::from_utf8_lossy(bytes);
    let mut h = History::default();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        match serde_json::from_str::<Release>(line) {
            Ok(r) => {
                let r = r.tamed();
                h.releases.retain(|o| o.n != r.n);
                h.releases.push(r);
            }
            Err(_) => h.unreadable += 1,
        }
    }
    h.releases.sort_by_key(|r| r.n);
    h
}

/// The file's text for `releases` (oldest first), one line each.
pub fn render(releases: &[Release]) -> String {
    releases
        .iter()
        .filter_map(|r| serde_json::to_string(r).ok())
        .map(|l| l + "\n")
        .collect()
}

/// The history with `new` added as the next number, cut to [`KEEP`]: returns the new
/// list and the releases that aged out (whose keep tags go).
pub fn append(mut list: Vec<Release>, mut new: Release) -> (Vec<Release>, Vec<Release>) {
    new.n = list.iter().map(|r| r.n).max().unwrap_or(0) + 1;
    list.push(new);
    let excess = list.len().saturating_sub(KEEP);
    let gone: Vec<Release> = list.drain(..excess).collect();
    (list, gone)
}

/// `--to`: a release number (`3`, `#3`) or its ID (or a prefix of it that only one
/// release has).
pub fn find<'a>(list: &'a [Release], to: &str) -> Result<&'a Release, String> {
    let to = to.trim();
    let number = to.strip_prefix('#').unwrap_or(to);
    if let Ok(n) = number.parse::<u64>() {
        if let Some(r) = list.iter().find(|r| r.n == n) {
            return Ok(r);
        }
        if to.starts_with('#') || list.iter().all(|r| !r.id.starts_with(to)) {
            return Err(format!("no release #{n} is kept ({})", kept(list)));
        }
    }
    let hits: Vec<&Release> = list.iter().filter(|r| r.id.starts_with(to)).collect();
    match hits.as_slice() {
        [one] => Ok(one),
        [] => Err(format!("no release {to:?} is kept ({})", kept(list))),
        _ => Err(format!(
            "{to:?} names {} releases: give more of its ID, or its number",
            hits.len()
        )),
    }
}

fn kept(list: &[Release]) -> String {
    match (list.first(), list.last()) {
        (Some(a), Some(b)) if a.n == b.n => format!("only #{}", a.n),
        (Some(a), Some(b)) => format!("kept: #{} to #{}", a.n, b.n),
        _ => "none recorded yet".into(),
    }
}

/// What runs now: service → image ID.
pub type Running = [(String, String)];

/// The release a plain `rollback` goes to: the newest ok one whose images differ from what
/// runs now. `None` when no release differs (the caller falls back to the images recorded
/// before the last deploy).
pub fn default_target<'a>(list: &'a [Release], running: &Running) -> Option<&'a Release> {
    list.iter()
        .rev()
        .filter(|r| r.ok() && !r.services.is_empty())
        .find(|r| !changes(r, running).is_empty())
}

/// What going to `r` changes, one line per service: `api: 3f2a1b9c0d1e → 9b8c7d6e5f4a`,
/// `worker: not running now → 9b8c…`. Services that run the release's image already are
/// left out.
pub fn changes(r: &Release, running: &Running) -> Vec<String> {
    let mut out = Vec::new();
    for s in &r.services {
        match running.iter().find(|(name, _)| *name == s.service) {
            Some((_, id)) if id == &s.id => {}
            Some((_, id)) => out.push(format!(
                "{}: {} → {}",
                s.service,
                short_id(id),
                short_id(&s.id)
            )),
            None => out.push(format!(
                "{}: not running now → {}",
                s.service,
                short_id(&s.id)
            )),
        }
    }
    out
}

/// `sha256:3f2a1b9c0d1e...` → `3f2a1b9c0d1e`.
pub fn short_id(id: &str) -> &str {
    let id = id.strip_prefix("sha256:").unwrap_or(id);
    id.get(..12).unwrap_or(id)
}

/// `opsdeck-keep/<project>/<service>` and `<n>`: the tag that names a kept release's
/// image, made of what Docker allows in a repository name.
pub fn keep_tag(project: &str, service: &str, n: u64) -> (String, String) {
    let clean = |s: &str| -> String {
        let c: String = s
            .to_lowercase()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.' {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        let c = c
            .trim_matches(|c: char| !c.is_ascii_alphanumeric())
            .to_string();
        if c.is_empty() { "x".into() } else { c }
    };
    (
        format!("opsdeck-keep/{}/{}", clean(project), clean(service)),
        n.to_string(),
    )
}

/// The never-started container that holds a kept release's image against
/// `docker image prune -a` (a tag alone does not: `-a` removes every image no container
/// uses): `opsdeck-keep-<project>-<service>-<n>`.
pub fn keeper_name(project: &str, service: &str, n: u64) -> String {
    let (repo, tag) = keep_tag(project, service, n);
    format!("{}-{tag}", repo.replace('/', "-"))
}

/// The label every keeper container carries (the project), so the console leaves them
/// out of its lists and opsdeck finds them again.
pub const KEEP_LABEL: &str = "opsdeck.keep";

/// What the console's picker and `opsdeck releases` show of one stack: its history and
/// what runs now, read from the host together.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReleasesView {
    pub stack: String,
    pub history: History,
    /// service → image ID, what the project's containers run now.
    pub running: Vec<(String, String)>,
    /// The stack declares a `downgrade` recipe (rollbacks undo migrations).
    pub downgrade: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rel(n: u64, ids: &[(&str, &str)]) -> Release {
        Release {
            n,
            id: format!("2026120{n}T000000Z"),
            at: "2026-12-03T00:00:00Z".into(),
            who: "t@m".into(),
            recipe: "deploy".into(),
            services: ids
                .iter()
                .map(|(s, i)| ServiceImage {
                    service: s.to_string(),
                    image: format!("reg/{s}:latest"),
                    id: format!("sha256:{i}"),
                })
                .collect(),
            commit: None,
            migration_head: None,
            dump: None,
            dump_set: None,
            outcome: "ok".into(),
        }
    }

    #[test]
    fn append_numbers_on_and_ages_out_past_keep() {
        let mut list = Vec::new();
        let mut gone_all = Vec::new();
        for _ in 0..25 {
            let (l, gone) = append(list, rel(0, &[("api", "a")]));
            list = l;
            gone_all.extend(gone);
        }
        assert_eq!(list.len(), KEEP);
        assert_eq!(list.first().unwrap().n, 6);
        assert_eq!(list.last().unwrap().n, 25);
        assert_eq!(
            gone_all.iter().map(|r| r.n).collect::<Vec<_>>(),
            [1, 2, 3, 4, 5]
        );
    }

    #[test]
    fn the_file_round_trips_and_garbage_lines_are_counted_not_fatal() {
        let list = vec![rel(1, &[("api", "aaa")]), rel(2, &[("api", "bbb")])];
        let mut text = render(&list);
        text.push_str("not json\n{\"n\":\"x\"}\n\n");
        let h = parse(text.as_bytes());
        assert_eq!(h.releases, list);
        assert_eq!(h.unreadable, 2);
    }

    #[test]
    fn hostile_fields_are_made_safe_and_bounded() {
        let mut r = rel(1, &[("api", "aaa")]);
        r.who = format!("evil\x1b]0;pwned\x07{}", "x".repeat(5000));
        r.services[0].image = "img\u{9b}31m".into();
        let h = parse(render(&[r]).as_bytes());
        let r = &h.releases[0];
        assert!(!r.who.contains('\x1b') && !r.who.contains('\x07'));
        assert!(r.who.chars().count() <= MAX_FIELD);
        assert!(!r.services[0].image.contains('\u{9b}'));
    }

    #[test]
    fn to_takes_a_number_or_an_id_prefix() {
        let list = vec![rel(1, &[]), rel(2, &[]), rel(3, &[])];
        assert_eq!(find(&list, "2").unwrap().n, 2);
        assert_eq!(find(&list, "#3").unwrap().n, 3);
        assert_eq!(find(&list, "20261201").unwrap().n, 1);
        assert!(find(&list, "2026120").unwrap_err().contains("3 releases"));
        assert_eq!(
            find(&list, "7").unwrap_err(),
            "no release #7 is kept (kept: #1 to #3)"
        );
        assert!(find(&[], "1").unwrap_err().contains("none recorded yet"));
    }

    #[test]
    fn a_plain_rollback_goes_to_the_newest_ok_release_that_differs() {
        let mut failed = rel(3, &[("api", "ccc")]);
        failed.outcome = "failed: step 2/3".into();
        let list = vec![rel(1, &[("api", "aaa")]), rel(2, &[("api", "bbb")]), failed];
        let running = [("api".to_string(), "sha256:bbb".to_string())];
        assert_eq!(default_target(&list, &running).unwrap().n, 1);
        let running = [("api".to_string(), "sha256:ccc".to_string())];
        assert_eq!(default_target(&list, &running).unwrap().n, 2);
        assert_eq!(changes(&list[0], &running), ["api: ccc → aaa"]);
        assert!(default_target(&list[..1], &[("api".into(), "sha256:aaa".into())]).is_none());
    }

    #[test]
    fn keep_names_are_what_docker_accepts() {
        assert_eq!(
            keep_tag("Course Supporter", "app/1", 7),
            ("opsdeck-keep/course-supporter/app-1".into(), "7".into())
        );
        assert_eq!(keeper_name("lila", "api", 3), "opsdeck-keep-lila-api-3");
    }
}
