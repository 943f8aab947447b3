//! Deploys to several hosts in one go, in the pure model: marks, the one confirmation
//! (production hosts' names typed), the queue (the next host starts when the one before
//! ended well; a failure, a refusal or a stop leaves the rest not started), and jobs of
//! other hosts leaving it alone.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod support;

use opsdeck::model::multi::Turn;
use opsdeck::model::{
    Confirm, Effect, HostConn, JobEvent, JobKind, Key, Model, Msg, Overlay, View, update,
};
use support::*;

fn flash(m: &Model) -> String {
    m.flash.as_ref().map(|f| f.text.clone()).unwrap_or_default()
}

/// Marks the fleet's rows `rows` (0-based, inventory order) with Space.
fn mark(m: &mut Model, rows: &[usize]) {
    for &r in rows {
        key(m, Key::Home);
        for _ in 0..r {
            key(m, Key::Down);
        }
        key(m, Key::Char(' '));
    }
}

fn finish(m: &mut Model, host: usize, outcome: Result<&str, &str>) -> Vec<Effect> {
    let outcome = outcome.map(str::to_string).map_err(str::to_string);
    update(
        m,
        Msg::Job {
            host,
            event: JobEvent::Finished(outcome),
        },
    )
}

fn runs(effects: &[Effect]) -> Vec<usize> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::RunJob { host, request } => {
                assert_eq!(request.kind, JobKind::Deploy);
                Some(*host)
            }
            _ => None,
        })
        .collect()
}

fn turns(m: &Model) -> Vec<(usize, Turn)> {
    m.batch
        .as_ref()
        .unwrap()
        .hosts
        .iter()
        .map(|b| (b.host, b.turn.clone()))
        .collect()
}

/// lila and duckdb-app marked, `d`, `y`: the effects of the confirmation.
fn two_started(m: &mut Model) -> Vec<Effect> {
    mark(m, &[1, 2]);
    assert_eq!(m.marked, [1, 2]);
    key(m, Key::Char('d'));
    assert!(matches!(
        m.overlay,
        Overlay::Confirm(Confirm::Batch { typed: None, .. })
    ));
    key(m, Key::Char('y'))
}

#[test]
fn marked_hosts_are_deployed_one_after_the_other() {
    let mut m = fleet();
    let effects = two_started(&mut m);
    // only the first starts; the view stays on the fleet, the marks became the run
    assert_eq!(runs(&effects), [1]);
    assert_eq!(m.view, View::Fleet);
    assert!(m.marked.is_empty());
    assert_eq!(turns(&m), [(1, Turn::Running), (2, Turn::Waiting)]);
    assert!(m.hosts[1].job.as_ref().unwrap().running());
    assert_eq!(
        m.hosts[1].job.as_ref().unwrap().steps[0].label,
        "record the image IDs in use (for a rollback)"
    );
    // the first ends well: the second starts
    let effects = finish(&mut m, 1, Ok("3 steps in 12s"));
    assert_eq!(runs(&effects), [2]);
    assert_eq!(turns(&m), [(1, Turn::Done), (2, Turn::Running)]);
    // a job of a host outside the run changes nothing
    assert!(runs(&finish(&mut m, 0, Ok("x"))).is_empty());
    assert_eq!(turns(&m), [(1, Turn::Done), (2, Turn::Running)]);
    // the last ends well: nothing more to start, the summary says so
    let effects = finish(&mut m, 2, Ok("4 steps in 30s"));
    assert!(runs(&effects).is_empty());
    assert_eq!(turns(&m), [(1, Turn::Done), (2, Turn::Done)]);
    assert!(!m.batch.as_ref().unwrap().running());
    assert!(
        flash(&m).starts_with("deploy of 2 hosts: ✔ lila"),
        "{}",
        flash(&m)
    );
    assert!(flash(&m).contains("✔ duckdb-app"), "{}", flash(&m));
    // Esc puts the ended run away
    key(&mut m, Key::Esc);
    assert!(m.batch.is_none());
}

#[test]
fn a_failure_stops_the_run_and_the_rest_is_not_started() {
    let mut m = fleet();
    // course-supporter is a production host: its name is typed
    mark(&mut m, &[2, 0, 1]);
    assert_eq!(
        m.marked,
        [0, 1, 2],
        "inventory order, whatever the marking order"
    );
    key(&mut m, Key::Char('d'));
    assert!(matches!(
        m.overlay,
        Overlay::Confirm(Confirm::Batch { typed: Some(_), .. })
    ));
    assert!(
        key(&mut m, Key::Char('y')).is_empty(),
        "y is typed, not a yes"
    );
    key(&mut m, Key::Backspace);
    keys(&mut m, "lila");
    assert!(runs(&key(&mut m, Key::Enter)).is_empty());
    assert!(
        flash(&m).contains("type course-supporter exactly"),
        "{}",
        flash(&m)
    );
    for _ in 0..4 {
        key(&mut m, Key::Backspace);
    }
    keys(&mut m, "course-supporter");
    assert_eq!(runs(&key(&mut m, Key::Enter)), [0]);
    assert_eq!(runs(&finish(&mut m, 0, Ok("done"))), [1]);
    let effects = finish(&mut m, 1, Err("step 2/3 (false): exit status 1"));
    assert!(runs(&effects).is_empty());
    assert_eq!(
        turns(&m),
        [
            (0, Turn::Done),
            (1, Turn::Failed("step 2/3 (false): exit status 1".into())),
            (2, Turn::NotStarted)
        ]
    );
    assert!(m.hosts[2].job.is_none(), "duckdb-app was never started");
    assert!(flash(&m).contains("✖ lila"), "{}", flash(&m));
    assert!(
        flash(&m).contains("– duckdb-app not started"),
        "{}",
        flash(&m)
    );
}

#[test]
fn stopping_cancels_the_running_host_and_starts_no_other() {
    let mut m = fleet();
    two_started(&mut m);
    // x in the fleet asks to stop the running host's job
    key(&mut m, Key::Char('x'));
    assert_eq!(m.overlay, Overlay::Confirm(Confirm::CancelJob { host: 1 }));
    let effects = key(&mut m, Key::Char('y'));
    assert_eq!(effects, [Effect::CancelJob { host: 1 }]);
    // even when the job ends well before the host stops it, nothing more starts
    let effects = finish(&mut m, 1, Ok("3 steps in 2s"));
    assert!(runs(&effects).is_empty());
    assert_eq!(turns(&m), [(1, Turn::Done), (2, Turn::NotStarted)]);

    // cancelled from the job's own pane, as any job: the same
    let mut m = fleet();
    two_started(&mut m);
    key(&mut m, Key::Char('J'));
    key(&mut m, Key::Enter);
    key(&mut m, Key::Char('x'));
    assert_eq!(m.overlay, Overlay::Confirm(Confirm::CancelJob { host: 1 }));
    key(&mut m, Key::Char('y'));
    let effects = finish(&mut m, 1, Err("cancelled: by the operator"));
    assert!(runs(&effects).is_empty());
    assert_eq!(
        turns(&m),
        [
            (1, Turn::Failed("cancelled: by the operator".into())),
            (2, Turn::NotStarted)
        ]
    );
}

#[test]
fn a_host_that_cannot_take_its_turn_stops_the_run() {
    let mut m = fleet();
    two_started(&mut m);
    m.hosts[2].conn = HostConn::Down {
        since: now(),
        reason: "connection refused".into(),
    };
    let effects = finish(&mut m, 1, Ok("done"));
    assert!(runs(&effects).is_empty());
    assert_eq!(
        turns(&m),
        [
            (1, Turn::Done),
            (
                2,
                Turn::Failed("not started: duckdb-app is not connected".into())
            )
        ]
    );
}

/// A stalled host (connected, its sampler late: what a busy host looks like) still takes
/// its turn: the worker runs the job over the connection, or refuses it itself.
#[test]
fn a_stalled_host_takes_its_turn() {
    let mut m = fleet();
    two_started(&mut m);
    m.hosts[2].conn = HostConn::Stalled {
        since: now(),
        reason: "no answer for 4s".into(),
    };
    let effects = finish(&mut m, 1, Ok("done"));
    assert_eq!(runs(&effects), [2]);
    assert_eq!(turns(&m), [(1, Turn::Done), (2, Turn::Running)]);
}

#[test]
fn refusals_come_before_the_confirmation() {
    // nothing marked: how to mark
    let mut m = fleet();
    key(&mut m, Key::Char('d'));
    assert_eq!(m.overlay, Overlay::None);
    assert!(flash(&m).contains("Space marks hosts"), "{}", flash(&m));
    // a host that is down, among others: none is deployed
    let mut m = fleet();
    mark(&mut m, &[1, 3]);
    key(&mut m, Key::Char('d'));
    assert_eq!(m.overlay, Overlay::None);
    assert!(
        flash(&m).contains("staging is not connected"),
        "{}",
        flash(&m)
    );
    // read-only
    let mut m = fleet();
    m.read_only = true;
    mark(&mut m, &[1]);
    key(&mut m, Key::Char('d'));
    assert_eq!(m.overlay, Overlay::None);
    assert!(
        flash(&m).starts_with("not deployed: read-only"),
        "{}",
        flash(&m)
    );
    // a host with no deploy recipe
    let mut m = fleet();
    m.hosts[2].stacks.iter_mut().for_each(|s| s.deploy = None);
    mark(&mut m, &[1, 2]);
    key(&mut m, Key::Char('d'));
    assert!(
        flash(&m).contains("no stack on duckdb-app"),
        "{}",
        flash(&m)
    );
    // no second run while one runs; no marking either
    let mut m = fleet();
    two_started(&mut m);
    key(&mut m, Key::Char(' '));
    assert!(m.marked.is_empty());
    assert!(
        flash(&m).contains("a multi-deploy is running"),
        "{}",
        flash(&m)
    );
    key(&mut m, Key::Char('d'));
    assert_eq!(m.overlay, Overlay::None);
}

#[test]
fn marks_toggle_and_esc_clears_them() {
    let mut m = fleet();
    mark(&mut m, &[0, 1]);
    assert_eq!(m.marked, [0, 1]);
    mark(&mut m, &[0]);
    assert_eq!(m.marked, [1]);
    // Esc clears a filter first, then the marks
    key(&mut m, Key::Char('/'));
    keys(&mut m, "li");
    key(&mut m, Key::Enter);
    key(&mut m, Key::Esc);
    assert!(m.filter.is_empty());
    assert_eq!(m.marked, [1]);
    key(&mut m, Key::Esc);
    assert!(m.marked.is_empty());
    // n (or Esc) in the confirmation leaves the marks for another try
    mark(&mut m, &[1]);
    key(&mut m, Key::Char('d'));
    key(&mut m, Key::Char('n'));
    assert_eq!(m.overlay, Overlay::None);
    assert_eq!(m.marked, [1]);
    assert!(m.batch.is_none());
}
