//! `R` in the host view: the stack's releases, newest first, with what going back to each
//! would change per service. Enter asks to roll back to the selected one (`c` adds a
//! `git checkout` of its commit, as a step the confirmation names); `D` asks, separately,
//! to restore the dump taken before its migration.

use super::job::{JobKind, JobOptions, JobRequest};
use super::releases::{self, Release, ReleasesView};
use super::{Confirm, Effect, Key, Level, Model, Overlay};

/// The picker's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleasesPicker {
    pub host: usize,
    pub stack: String,
    /// `None` while the host is asked; then its answer.
    pub view: Option<Result<ReleasesView, String>>,
    /// Row in the newest-first list.
    pub cursor: usize,
    /// A rollback from here also checks out the release's commit.
    pub checkout: bool,
}

impl ReleasesPicker {
    /// The releases newest first.
    pub fn rows(&self) -> Vec<&Release> {
        match &self.view {
            Some(Ok(v)) => v.history.releases.iter().rev().collect(),
            _ => Vec::new(),
        }
    }

    pub fn selected(&self) -> Option<&Release> {
        self.rows().get(self.cursor).copied()
    }
}

/// Opens the picker on a stack with a deploy recipe and asks its host for the history.
pub(super) fn open(model: &mut Model, host: usize, stack: String, effects: &mut Vec<Effect>) {
    model.overlay = Overlay::Releases(ReleasesPicker {
        host,
        stack: stack.clone(),
        view: None,
        cursor: 0,
        checkout: false,
    });
    effects.push(Effect::ReadReleases { host, stack });
}

/// The host's answer; dropped when the picker was closed or moved on meanwhile.
pub(super) fn answered(
    model: &mut Model,
    host: usize,
    stack: &str,
    result: Result<ReleasesView, String>,
) {
    if let Overlay::Releases(p) = &mut model.overlay
        && p.host == host
        && p.stack == stack
    {
        p.view = Some(result);
        p.cursor = p.cursor.min(p.rows().len().saturating_sub(1));
        model.dirty = true;
    }
}

pub(super) fn on_key(model: &mut Model, key: Key, effects: &mut Vec<Effect>) {
    let Overlay::Releases(p) = &mut model.overlay else {
        return;
    };
    let last = p.rows().len().saturating_sub(1);
    match key {
        Key::Esc | Key::Char('q') => model.overlay = Overlay::None,
        Key::Up | Key::Char('k') => p.cursor = p.cursor.saturating_sub(1),
        Key::Down | Key::Char('j') => p.cursor = (p.cursor + 1).min(last),
        Key::Home | Key::Char('g') => p.cursor = 0,
        Key::End | Key::Char('G') => p.cursor = last,
        Key::Char('c') => p.checkout = !p.checkout,
        Key::Char('r') => {
            let (host, stack) = (p.host, p.stack.clone());
            p.view = None;
            effects.push(Effect::ReadReleases { host, stack });
        }
        Key::Enter => ask_rollback(model),
        Key::Char('D') => ask_restore(model),
        _ => {}
    }
}

fn ask_rollback(model: &mut Model) {
    let Overlay::Releases(p) = &model.overlay else {
        return;
    };
    let (Some(Ok(view)), Some(r)) = (&p.view, p.selected()) else {
        return;
    };
    if let Some(why) = super::actions::refusal(model, p.host, true) {
        model.flash(Level::Warn, why);
        return;
    }
    let mut details = Vec::new();
    let changes = releases::changes(r, &view.running);
    if changes.is_empty() {
        details.push("every service runs this release's images already".to_string());
    }
    details.extend(changes);
    match (&r.commit, p.checkout) {
        (Some(c), true) => details.push(format!(
            "then git checkout {} in the stack's directory",
            c.get(..12).unwrap_or(c)
        )),
        (Some(_), false) => {
            details.push("the checkout stays where it is (c in the picker checks it out)".into())
        }
        (None, _) => {}
    }
    details.push(if view.downgrade {
        match &r.migration_head {
            Some(h) => format!("migrations are undone down to {h} (the stack's downgrade recipe)"),
            None => "migrations are not undone: the release recorded no head".into(),
        }
    } else {
        "migrations are NOT undone: the stack declares no downgrade recipe".into()
    });
    if !r.ok() {
        details.push(format!("note: this release ended {}", r.outcome));
    }
    details.push("then compose up -d --no-build, and wait until healthy".into());
    let request = JobRequest {
        stack: p.stack.clone(),
        kind: JobKind::Rollback,
        opts: JobOptions {
            to: Some(r.n.to_string()),
            checkout: p.checkout && r.commit.is_some(),
            ..JobOptions::default()
        },
    };
    let host = p.host;
    let typed = model.hosts[host].production.then(String::new);
    model.overlay = Overlay::Confirm(Confirm::Job {
        host,
        request,
        details,
        typed,
        preflight: None,
    });
}

fn ask_restore(model: &mut Model) {
    let Overlay::Releases(p) = &model.overlay else {
        return;
    };
    let Some(r) = p.selected() else {
        return;
    };
    if let Some(why) = super::actions::refusal(model, p.host, true) {
        model.flash(Level::Warn, why);
        return;
    }
    let Some(dump) = r.dump.clone() else {
        let why = format!(
            "release {} recorded no dump (only migrations take one)",
            r.label()
        );
        model.flash(Level::Info, why);
        return;
    };
    let details = vec![
        format!("the dump taken before release {}: {dump}", r.label()),
        "first a verified dump of what the database holds now".into(),
        "the stack's other services are stopped meanwhile, then started".into(),
        "the database is dropped and made again from the dump".into(),
    ];
    let request = JobRequest {
        stack: p.stack.clone(),
        kind: JobKind::Restore {
            set: r.dump_set.clone().unwrap_or_default(),
        },
        opts: JobOptions {
            to: Some(r.n.to_string()),
            ..JobOptions::default()
        },
    };
    let host = p.host;
    // A restore drops a database: always typed out, production or not.
    model.overlay = Overlay::Confirm(Confirm::Job {
        host,
        request,
        details,
        typed: Some(String::new()),
        preflight: None,
    });
}
