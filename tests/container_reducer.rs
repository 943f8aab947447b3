//! The container view's tabs in the pure model: switching, secrets masked until asked and
//! again after leaving, the detail asked for while the view is open and applied only to
//! its container, and each container's usage history bounded and dropped with it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod support;

use opsdeck::model::detail::{IoSample, Tab};
use opsdeck::model::series::WINDOW_SECS;
use opsdeck::model::{Effect, HostSnapshot, Key, Model, Msg, Part, RunState, View, update};
use support::*;

fn viewed(m: &Model) -> (usize, String) {
    match &m.view {
        View::Container { host, id } => (*host, id.clone()),
        v => panic!("expected the container view, got {v:?}"),
    }
}

fn tab(m: &Model) -> Tab {
    m.detail.as_ref().unwrap().tab
}

fn answer(m: &mut Model, host: usize, id: &str) -> Vec<Effect> {
    update(
        m,
        Msg::ContainerDetail {
            host,
            id: id.into(),
            at: now(),
            detail: Ok(Box::new(container_detail())),
            io: None,
        },
    )
}

fn tick(m: &mut Model, secs: i64) -> Vec<Effect> {
    let now = jiff::Timestamp::from_second(m.now.as_second() + secs).unwrap();
    update(m, Msg::Tick { now })
}

fn containers(host: usize, at: i64, list: Vec<opsdeck::model::Container>) -> Msg {
    let mut snapshot = HostSnapshot::new(false, false);
    let changed = snapshot.apply(Part::Containers {
        at: jiff::Timestamp::from_second(at).unwrap(),
        containers: list,
    });
    Msg::Host {
        host,
        snapshot: std::sync::Arc::new(snapshot),
        changed,
    }
}

#[test]
fn brackets_and_digits_switch_tabs_and_the_log_stays_first() {
    let mut m = container_view();
    assert_eq!(tab(&m), Tab::Logs);
    key(&mut m, Key::Char(']'));
    assert_eq!(tab(&m), Tab::Graphs);
    key(&mut m, Key::Char('['));
    key(&mut m, Key::Char('['));
    assert_eq!(tab(&m), Tab::State, "wraps around");
    key(&mut m, Key::Char('4'));
    assert_eq!(tab(&m), Tab::Env);
    key(&mut m, Key::Char('9'));
    assert_eq!(tab(&m), Tab::Env, "no ninth tab");
    // `/` searches the log: it goes back to it
    key(&mut m, Key::Char('/'));
    assert_eq!(tab(&m), Tab::Logs);
    // Tab still means the next host, p still pauses
    key(&mut m, Key::Esc);
    key(&mut m, Key::Char('p'));
    assert!(!m.logs.as_ref().unwrap().follow);
}

#[test]
fn secrets_are_masked_until_v_and_again_after_leaving() {
    let mut m = container_tab(Tab::Env);
    assert!(!m.detail.as_ref().unwrap().reveal);
    key(&mut m, Key::Char('v'));
    assert!(m.detail.as_ref().unwrap().reveal);
    let (host, _) = viewed(&m);
    key(&mut m, Key::Esc);
    assert!(m.detail.is_none());
    assert_eq!(m.view, View::Host { host });
    key(&mut m, Key::Enter);
    assert!(!m.detail.as_ref().unwrap().reveal, "masked again");
    // v masks again too
    key(&mut m, Key::Char('v'));
    key(&mut m, Key::Char('v'));
    assert!(!m.detail.as_ref().unwrap().reveal);
}

#[test]
fn the_detail_is_asked_while_open_and_stops_when_closed() {
    let mut m = fleet();
    key(&mut m, Key::Down);
    key(&mut m, Key::Enter);
    let fx = key(&mut m, Key::Enter);
    let (host, id) = viewed(&m);
    let ask = |stats| Effect::InspectContainer {
        host,
        id: id.clone(),
        stats,
    };
    assert!(fx.contains(&ask(false)), "{fx:?}");
    // no second ask while the answer is out, unless it never comes
    assert!(!tick(&mut m, 5).contains(&ask(false)));
    assert!(
        tick(&mut m, 11).contains(&ask(false)),
        "asked again after 15 s"
    );
    answer(&mut m, host, &id);
    let every = m.hosts[host].refresh_secs.max(2) as i64;
    assert!(!tick(&mut m, every - 1).iter().any(|e| *e == ask(false)));
    assert!(tick(&mut m, 1).contains(&ask(false)), "each refresh");
    answer(&mut m, host, &id);
    // the graphs ask for I/O counters, at once
    let fx = key(&mut m, Key::Char('2'));
    assert_eq!(fx, vec![ask(true)]);
    answer(&mut m, host, &id);
    assert!(tick(&mut m, every).contains(&ask(true)));
    answer(&mut m, host, &id);
    // closed: no more asks
    key(&mut m, Key::Esc);
    for _ in 0..5 {
        let fx = tick(&mut m, every);
        assert!(
            !fx.iter()
                .any(|e| matches!(e, Effect::InspectContainer { .. })),
            "{fx:?}"
        );
    }
}

#[test]
fn a_state_change_asks_at_once() {
    let mut m = container_view();
    let (host, id) = viewed(&m);
    answer(&mut m, host, &id);
    let mut list = m.hosts[host].containers.clone();
    let c = list.iter_mut().find(|c| c.id == id).unwrap();
    c.state = RunState::Exited { code: Some(1) };
    let fx = update(&mut m, containers(host, NOW, list));
    assert_eq!(
        fx,
        vec![Effect::InspectContainer {
            host,
            id,
            stats: false
        }]
    );
}

#[test]
fn a_detail_applies_only_to_its_host_and_container() {
    let mut m = container_view();
    let (host, id) = viewed(&m);
    let other = m.hosts[host]
        .containers
        .iter()
        .find(|c| c.id != id)
        .unwrap()
        .id
        .clone();
    answer(&mut m, host, &other);
    answer(&mut m, host + 1, &id);
    assert!(m.detail.as_ref().unwrap().detail.is_none());
    let io = IoSample {
        at_ms: NOW * 1000,
        ..IoSample::default()
    };
    update(
        &mut m,
        Msg::ContainerDetail {
            host,
            id: id.clone(),
            at: now(),
            detail: Err("inspect: no such container".into()),
            io: Some(io),
        },
    );
    let pane = m.detail.as_ref().unwrap();
    assert!(pane.detail.is_none());
    assert_eq!(pane.error.as_deref(), Some("inspect: no such container"));
    answer(&mut m, host, &id);
    let pane = m.detail.as_ref().unwrap();
    assert_eq!(pane.detail.as_ref(), Some(&container_detail()));
    assert!(pane.error.is_none());
}

#[test]
fn usage_history_is_kept_per_container_bounded_and_dropped_when_gone() {
    let mut m = fleet();
    let host = 1;
    let list = m.hosts[host].containers.clone();
    let running: Vec<String> = list
        .iter()
        .filter(|c| c.is_running())
        .map(|c| c.id.clone())
        .collect();
    for t in 0..2000 {
        update(&mut m, containers(host, NOW + t, list.clone()));
    }
    let usage = &m.hosts[host].usage;
    assert_eq!(usage.len(), running.len(), "running containers only");
    for id in &running {
        let u = &usage[id];
        assert_eq!(u.cpu.len(), WINDOW_SECS as usize + 1);
        assert_eq!(u.mem.last(), Some(120.0 * 1024.0 * 1024.0));
    }
    // one goes away
    let fewer: Vec<_> = list
        .iter()
        .filter(|c| c.id != running[0])
        .cloned()
        .collect();
    update(&mut m, containers(host, NOW + 2000, fewer));
    assert!(!m.hosts[host].usage.contains_key(&running[0]));
    assert_eq!(m.hosts[host].usage.len(), running.len() - 1);
}

#[test]
fn scrolling_a_tab_stops_at_its_rows() {
    let mut m = container_tab(Tab::Processes);
    let rows = container_detail().processes.rows.len();
    for _ in 0..50 {
        key(&mut m, Key::Down);
    }
    assert_eq!(m.detail.as_ref().unwrap().scroll, rows - 1);
    key(&mut m, Key::Char('g'));
    assert_eq!(m.detail.as_ref().unwrap().scroll, 0);
    // the log's own scroll is untouched
    assert_eq!(m.logs.as_ref().unwrap().scroll, 0);
    assert!(m.logs.as_ref().unwrap().follow);
}
