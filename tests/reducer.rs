//! The pure model: every key and message, no terminal, no I/O.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod support;

use opsdeck::model::{
    Container, DockerState, Effect, HostConn, HostQuestion, HostSnapshot, Input, Key, Msg, Overlay,
    Part, RunState, Secret, View, update,
};
use support::*;

/// A worker's update that brings one part.
fn part(host: usize, part: Part) -> Msg {
    let mut snapshot = HostSnapshot::new(false, false);
    let changed = snapshot.apply(part);
    Msg::Host {
        host,
        snapshot: std::sync::Arc::new(snapshot),
        changed,
    }
}

fn open_host(m: &mut opsdeck::model::Model, index: usize) {
    for _ in 0..index {
        key(m, Key::Down);
    }
    key(m, Key::Enter);
}

#[test]
fn starts_on_the_fleet_and_single_host_starts_in_its_view() {
    let m = fleet();
    assert_eq!(m.view, View::Fleet);
    let one = opsdeck::model::Model::new(vec![m.hosts[0].clone()], now());
    assert_eq!(one.view, View::Host { host: 0 });
}

#[test]
fn vim_keys_and_arrows_move_and_clamp() {
    let mut m = fleet();
    key(&mut m, Key::Char('j'));
    key(&mut m, Key::Down);
    assert_eq!(m.fleet_cursor, 2);
    for _ in 0..10 {
        key(&mut m, Key::Char('j'));
    }
    assert_eq!(m.fleet_cursor, 3, "stops at the last host");
    key(&mut m, Key::Char('k'));
    assert_eq!(m.fleet_cursor, 2);
    key(&mut m, Key::Char('g'));
    assert_eq!(m.fleet_cursor, 0);
    key(&mut m, Key::Char('G'));
    assert_eq!(m.fleet_cursor, 3);
}

#[test]
fn enter_opens_host_then_container_and_esc_walks_back() {
    let mut m = fleet();
    open_host(&mut m, 1);
    assert_eq!(m.view, View::Host { host: 1 });
    let fx = key(&mut m, Key::Enter);
    let id = m.hosts[1].containers[1].id.clone();
    assert_eq!(
        m.view,
        View::Container {
            host: 1,
            id: id.clone()
        }
    );
    assert_eq!(
        fx,
        vec![
            Effect::FollowLogs {
                host: 1,
                id: id.clone()
            },
            Effect::InspectContainer {
                host: 1,
                id: id.clone(),
                stats: false
            }
        ]
    );
    assert!(
        m.logs
            .as_ref()
            .is_some_and(|p| p.follow && p.ring.is_empty())
    );
    let fx = key(&mut m, Key::Esc);
    assert_eq!(fx, vec![Effect::StopLogs { host: 1, id }]);
    assert_eq!(m.view, View::Host { host: 1 });
    assert!(m.logs.is_none());
    key(&mut m, Key::Char('h'));
    assert_eq!(m.view, View::Fleet);
}

#[test]
fn host_view_cursor_walks_containers_in_group_order() {
    let mut m = fleet();
    open_host(&mut m, 0);
    // course-supporter: app, db, netdata; then proxy: nginx.
    let names: Vec<String> = m.hosts[0]
        .visible_containers("")
        .iter()
        .map(|&i| m.hosts[0].containers[i].display_name().to_string())
        .collect();
    assert_eq!(names, ["app", "db", "netdata", "nginx"]);
    key(&mut m, Key::Char('G'));
    assert_eq!(m.selected_container().unwrap().1.display_name(), "nginx");
}

#[test]
fn slash_filters_as_typed_enter_keeps_esc_clears() {
    let mut m = fleet();
    key(&mut m, Key::Char('/'));
    assert_eq!(m.input, Some(Input::Filter(String::new())));
    keys(&mut m, "li");
    assert_eq!(m.visible_hosts(), vec![1]);
    key(&mut m, Key::Enter);
    assert_eq!(m.input, None);
    assert_eq!(m.filter, "li");
    // q while typing is text, not quit.
    key(&mut m, Key::Char('/'));
    keys(&mut m, "q");
    assert!(!m.should_quit);
    assert!(m.visible_hosts().is_empty());
    key(&mut m, Key::Esc);
    assert_eq!(m.filter, "");
    assert_eq!(m.visible_hosts().len(), 4);
}

#[test]
fn host_filter_matches_image_and_project() {
    let mut m = fleet();
    open_host(&mut m, 0);
    key(&mut m, Key::Char('/'));
    keys(&mut m, "PROXY");
    assert_eq!(m.hosts[0].visible_containers(&m.filter).len(), 1);
    key(&mut m, Key::Enter);
    assert_eq!(m.selected_container().unwrap().1.display_name(), "nginx");
    // First Esc clears the filter, the second leaves the host.
    key(&mut m, Key::Esc);
    assert_eq!(m.view, View::Host { host: 0 });
    key(&mut m, Key::Esc);
    assert_eq!(m.view, View::Fleet);
}

#[test]
fn ctrl_c_quits_from_anywhere() {
    for setup in [
        |_: &mut opsdeck::model::Model| {},
        |m: &mut opsdeck::model::Model| {
            key(m, Key::Char('/'));
        },
        |m: &mut opsdeck::model::Model| {
            key(m, Key::Char('?'));
        },
        |m: &mut opsdeck::model::Model| {
            key(m, Key::Char(':'));
        },
    ] {
        let mut m = fleet();
        setup(&mut m);
        key(&mut m, Key::Ctrl('c'));
        assert!(m.should_quit);
    }
}

#[test]
fn help_opens_and_closes_without_quitting() {
    let mut m = fleet();
    key(&mut m, Key::Char('?'));
    assert_eq!(m.overlay, Overlay::Help(0));
    key(&mut m, Key::Char('j'));
    assert_eq!(
        m.fleet_cursor, 0,
        "keys do not leak through the help overlay"
    );
    key(&mut m, Key::Char('q'));
    assert_eq!(m.overlay, Overlay::None);
    assert!(!m.should_quit);
    key(&mut m, Key::Char('q'));
    assert!(m.should_quit);
}

#[test]
fn palette_jumps_to_a_host_and_runs_actions() {
    let mut m = fleet();
    key(&mut m, Key::Char(':'));
    keys(&mut m, "duck");
    key(&mut m, Key::Enter);
    assert_eq!(m.view, View::Host { host: 2 });
    assert_eq!(m.overlay, Overlay::None);
    key(&mut m, Key::Char(':'));
    keys(&mut m, "fleet");
    key(&mut m, Key::Enter);
    assert_eq!(m.view, View::Fleet);
    key(&mut m, Key::Char(':'));
    keys(&mut m, "zzzz");
    key(&mut m, Key::Enter);
    assert!(
        m.flash
            .as_ref()
            .unwrap()
            .text
            .contains("no command matches \"zzzz\"")
    );
}

#[test]
fn tab_cycles_hosts_and_closes_the_log() {
    let mut m = container_view();
    let fx = key(&mut m, Key::Tab);
    assert_eq!(m.view, View::Host { host: 2 });
    assert!(matches!(fx.as_slice(), [Effect::StopLogs { host: 1, .. }]));
    key(&mut m, Key::BackTab);
    key(&mut m, Key::BackTab);
    key(&mut m, Key::BackTab);
    assert_eq!(m.view, View::Host { host: 3 }, "wraps around");
}

#[test]
fn paused_log_keeps_its_viewport_while_lines_arrive() {
    let mut m = container_view();
    let (host, id) = (1, m.hosts[1].containers[1].id.clone());
    key(&mut m, Key::Char('p'));
    assert!(!m.logs.as_ref().unwrap().follow);
    update(
        &mut m,
        Msg::LogLines {
            host,
            id: id.clone(),
            lines: log_lines(5),
        },
    );
    assert_eq!(m.logs.as_ref().unwrap().scroll, 5);
    assert_eq!(m.logs.as_ref().unwrap().ring.len(), 205);
    key(&mut m, Key::Char('G'));
    let p = m.logs.as_ref().unwrap();
    assert!(p.follow);
    assert_eq!(p.scroll, 0);
}

#[test]
fn scrolling_up_pauses_following() {
    let mut m = container_view();
    key(&mut m, Key::Up);
    key(&mut m, Key::Char('k'));
    let p = m.logs.as_ref().unwrap();
    assert!(!p.follow);
    assert_eq!(p.scroll, 2);
}

#[test]
fn search_finds_newest_match_first_and_n_goes_older() {
    let mut m = container_view();
    key(&mut m, Key::Char('/'));
    keys(&mut m, "timeout");
    key(&mut m, Key::Enter);
    // Lines 3, 8, ..., 198 say "timeout"; the newest is 198.
    let p = m.logs.as_ref().unwrap();
    assert_eq!(p.current_match, Some(198));
    assert!(!p.follow, "a search stops following so the match stays put");
    key(&mut m, Key::Char('n'));
    assert_eq!(m.logs.as_ref().unwrap().current_match, Some(193));
    key(&mut m, Key::Char('N'));
    assert_eq!(m.logs.as_ref().unwrap().current_match, Some(198));
    key(&mut m, Key::Char('N'));
    assert_eq!(
        m.logs.as_ref().unwrap().current_match,
        Some(3),
        "wraps to the oldest"
    );
}

#[test]
fn search_without_match_says_so() {
    let mut m = container_view();
    key(&mut m, Key::Char('/'));
    keys(&mut m, "no-such-text");
    key(&mut m, Key::Enter);
    assert_eq!(m.logs.as_ref().unwrap().current_match, None);
    assert!(m.flash.as_ref().unwrap().text.contains("no match"));
}

#[test]
fn log_lines_for_another_container_are_ignored() {
    let mut m = container_view();
    m.dirty = false;
    update(
        &mut m,
        Msg::LogLines {
            host: 0,
            id: "other".into(),
            lines: log_lines(3),
        },
    );
    assert_eq!(m.logs.as_ref().unwrap().ring.len(), 200);
    assert!(!m.dirty);
    let id = m.hosts[1].containers[1].id.clone();
    update(
        &mut m,
        Msg::LogEnded {
            host: 1,
            id,
            reason: "the container stopped".into(),
        },
    );
    assert_eq!(
        m.logs.as_ref().unwrap().ended.as_deref(),
        Some("the container stopped")
    );
}

#[test]
fn metrics_append_history_and_mark_host_up() {
    let mut m = fleet();
    let before = m.hosts[3].cpu.len();
    let mut metrics = m.hosts[0].metrics.clone().unwrap();
    metrics.cpu_percent = 99.0;
    update(&mut m, part(3, Part::Metrics { at: now(), metrics }));
    assert_eq!(m.hosts[3].conn, HostConn::Up);
    assert_eq!(m.hosts[3].cpu.len(), before + 1);
    assert_eq!(m.hosts[3].cpu.last(), Some(99.0));
    // Unknown host indices are ignored, not a panic.
    update(&mut m, part(99, Part::Conn(HostConn::Up)));
}

#[test]
fn tick_redraws_only_when_something_on_screen_ages() {
    let mut m = fleet();
    // The down host shows "down 3m": ticks must redraw.
    m.dirty = false;
    update(&mut m, Msg::Tick { now: ago(-1) });
    assert!(m.dirty);
    // All hosts up and fresh: a tick changes nothing visible.
    let mut m = fleet();
    m.hosts.truncate(3);
    m.dirty = false;
    update(&mut m, Msg::Tick { now: ago(-1) });
    assert!(!m.dirty);
    // Stale data (no sample for > 3 intervals) is shown, so ticks redraw again.
    update(&mut m, Msg::Tick { now: ago(-30) });
    assert!(m.dirty);
    assert_eq!(m.hosts[0].stale_secs(m.now), Some(32));
}

#[test]
fn unchanged_snapshots_do_not_redraw() {
    let mut m = fleet();
    let same = m.hosts[0].containers.clone();
    m.dirty = false;
    update(
        &mut m,
        part(
            0,
            Part::Containers {
                at: now(),
                containers: same,
            },
        ),
    );
    assert!(!m.dirty);
    update(
        &mut m,
        part(
            0,
            Part::Docker(DockerState::Up {
                version: "28.2.2".into(),
            }),
        ),
    );
    assert!(!m.dirty);
}

#[test]
fn disappearing_containers_clamp_the_cursor() {
    let mut m = fleet();
    open_host(&mut m, 0);
    key(&mut m, Key::Char('G'));
    assert_eq!(m.host_cursor, 3);
    let one: Vec<Container> = m.hosts[0].containers[..1].to_vec();
    update(
        &mut m,
        part(
            0,
            Part::Containers {
                at: now(),
                containers: one,
            },
        ),
    );
    assert_eq!(m.host_cursor, 0);
    update(
        &mut m,
        part(
            0,
            Part::Containers {
                at: now(),
                containers: vec![],
            },
        ),
    );
    assert!(m.selected_container().is_none());
    let fx = key(&mut m, Key::Enter);
    assert!(fx.is_empty());
    assert!(m.flash.is_some());
}

#[test]
fn troubled_containers_are_counted() {
    let m = fleet();
    // lila: api unhealthy, forgejo exited 137.
    assert_eq!(m.hosts[1].unhealthy(), 2);
    assert_eq!(m.hosts[1].running(), 4);
    assert_eq!(m.hosts[0].unhealthy(), 0);
    let mut clean = m.hosts[1].containers[4].clone();
    clean.state = RunState::Exited { code: Some(0) };
    assert!(!clean.is_troubled(), "a one-shot job that exited 0 is fine");
}

#[test]
fn shutdown_message_quits() {
    let mut m = fleet();
    update(&mut m, Msg::Shutdown);
    assert!(m.should_quit);
}

#[test]
fn unknown_host_key_is_trusted_only_after_y() {
    let mut m = fleet();
    let fp = "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU".to_string();
    update(
        &mut m,
        Msg::HostKeyUnknown {
            host: 3,
            fingerprint: fp.clone(),
        },
    );
    key(&mut m, Key::Char('G'));
    key(&mut m, Key::Enter);
    assert_eq!(m.view, View::Host { host: 3 });
    key(&mut m, Key::Char('A'));
    assert_eq!(
        m.overlay,
        Overlay::Confirm(opsdeck::model::Confirm::TrustHostKey {
            host: 3,
            fingerprint: fp.clone()
        })
    );
    // Anything but y leaves it untrusted.
    assert!(key(&mut m, Key::Char('x')).is_empty());
    assert!(key(&mut m, Key::Esc).is_empty());
    assert_eq!(m.overlay, Overlay::None);
    assert_eq!(
        m.hosts[3].question,
        Some(HostQuestion::UnknownKey {
            fingerprint: fp.clone()
        })
    );
    key(&mut m, Key::Char('A'));
    let fx = key(&mut m, Key::Char('y'));
    assert_eq!(
        fx,
        vec![Effect::AcceptHostKey {
            host: 3,
            fingerprint: fp
        }]
    );
    assert_eq!(m.hosts[3].question, None);
    assert_eq!(m.hosts[3].conn, HostConn::Connecting);
    // Nothing left to trust.
    key(&mut m, Key::Char('A'));
    assert_eq!(m.overlay, Overlay::None);
    assert!(m.flash.is_some());
}

#[test]
fn passphrase_is_typed_masked_and_sent_only_on_enter() {
    let mut m = fleet();
    let path = "/home/op/.ssh/id_ed25519".to_string();
    update(
        &mut m,
        Msg::PassphraseNeeded {
            host: 3,
            path: path.clone(),
            wrong: false,
        },
    );
    key(&mut m, Key::Char('G'));
    // From the fleet view too: A answers the selected host.
    key(&mut m, Key::Char('A'));
    assert!(matches!(&m.overlay, Overlay::Passphrase { host: 3, .. }));
    // Letters that are bindings elsewhere are just passphrase characters here.
    keys(&mut m, "q?/x");
    key(&mut m, Key::Backspace);
    assert!(!m.should_quit);
    assert!(
        !format!("{m:?}").contains("q?/"),
        "the passphrase never shows in debug output"
    );
    let fx = key(&mut m, Key::Enter);
    assert_eq!(
        fx,
        vec![Effect::Passphrase {
            host: 3,
            path,
            passphrase: Secret::new("q?/")
        }]
    );
    assert_eq!(m.hosts[3].conn, HostConn::Connecting);
    assert_eq!(m.hosts[3].question, None);
    // A wrong one comes back as a new question; Esc abandons without sending anything.
    update(
        &mut m,
        Msg::PassphraseNeeded {
            host: 3,
            path: "k".into(),
            wrong: true,
        },
    );
    key(&mut m, Key::Char('A'));
    keys(&mut m, "abc");
    assert!(key(&mut m, Key::Esc).is_empty());
    assert_eq!(m.overlay, Overlay::None);
}

#[test]
fn key_alert_stays_until_the_host_is_up() {
    let mut m = fleet();
    update(
        &mut m,
        Msg::HostKeyAlert {
            host: 3,
            message: "HOST KEY CHANGED".into(),
        },
    );
    assert!(m.hosts[3].key_alert.is_some());
    update(&mut m, Msg::Tick { now: ago(-5) });
    assert!(m.hosts[3].key_alert.is_some());
    update(&mut m, part(3, Part::Conn(HostConn::Up)));
    assert_eq!(m.hosts[3].key_alert, None);
}

#[test]
fn backups_update_the_host_and_its_worst_set() {
    let mut m = fleet();
    let now = now().as_second();
    // course-supporter: a stale db outranks a suspicious uploads set.
    let worst = m.hosts[0].worst_backup(now).unwrap();
    assert_eq!(worst.name, "db");
    assert_eq!(
        m.hosts[2].worst_backup(now).unwrap().verdict,
        opsdeck::collect::backups::Verdict::Missing
    );
    assert!(m.hosts[3].worst_backup(now).is_none());
    let same = m.hosts[1].backups.clone();
    m.dirty = false;
    update(&mut m, part(1, Part::Backups(same)));
    assert!(!m.dirty, "an unchanged survey does not redraw");
    update(&mut m, part(1, Part::Backups(vec![])));
    assert!(m.dirty);
    assert!(m.hosts[1].backups.is_empty());
}

#[test]
fn b_backs_up_the_set_that_needs_it_after_y() {
    let mut m = fleet();
    key(&mut m, Key::Enter); // course-supporter: db is stale, uploads has no recipe
    key(&mut m, Key::Char('b'));
    let Overlay::Confirm(opsdeck::model::Confirm::Job {
        host,
        request,
        details,
        typed,
        preflight: None,
    }) = m.overlay.clone()
    else {
        panic!("expected a backup confirmation, got {:?}", m.overlay);
    };
    assert_eq!(
        (host, request.stack.as_str(), request.kind.clone()),
        (
            0,
            "course-supporter",
            opsdeck::model::JobKind::Backup { set: "db".into() }
        )
    );
    assert!(details[0].starts_with("pg_dump of database"));
    // course-supporter is a production host: its name must be typed, `y` is just a letter.
    assert_eq!(typed.as_deref(), Some(""));
    // Esc cancels: nothing runs.
    assert!(key(&mut m, Key::Esc).is_empty());
    assert!(m.hosts[0].job.is_none());
    key(&mut m, Key::Char('b'));
    assert!(key(&mut m, Key::Char('y')).is_empty());
    key(&mut m, Key::Backspace);
    keys(&mut m, "course-supporter");
    let fx = key(&mut m, Key::Enter);
    assert_eq!(
        fx,
        vec![Effect::RunJob {
            host: 0,
            request: opsdeck::model::JobRequest {
                stack: "course-supporter".into(),
                kind: opsdeck::model::JobKind::Backup { set: "db".into() },
                opts: Default::default()
            }
        }]
    );
    // The job pane opens on the new job.
    assert_eq!(m.view, View::Job(opsdeck::model::JobRef::Host(0)));
    key(&mut m, Key::Esc);
    assert!(m.hosts[0].job.as_ref().unwrap().running());
    // A second b while it runs is refused.
    key(&mut m, Key::Char('b'));
    assert_eq!(m.overlay, Overlay::None);
    assert!(m.flash.as_ref().unwrap().text.contains("already running"));
    update(
        &mut m,
        Msg::Job {
            host: 0,
            event: opsdeck::model::JobEvent::Progress { bytes: 4096 },
        },
    );
    assert_eq!(m.hosts[0].job.as_ref().unwrap().bytes, 4096);
    update(
        &mut m,
        Msg::Job {
            host: 0,
            event: opsdeck::model::JobEvent::Finished(Err(
                "pg_dump failed: database \"x\" does not exist".into(),
            )),
        },
    );
    assert!(!m.hosts[0].job.as_ref().unwrap().running());
    let flash = m.flash.as_ref().unwrap();
    assert_eq!(flash.level, opsdeck::model::Level::Error);
    assert!(
        flash.text.contains("FAILED: pg_dump failed"),
        "{}",
        flash.text
    );
}

#[test]
fn b_is_refused_read_only_and_without_recipes() {
    let mut m = fleet();
    m.read_only = true;
    key(&mut m, Key::Enter);
    key(&mut m, Key::Char('b'));
    assert_eq!(m.overlay, Overlay::None);
    assert!(m.flash.as_ref().unwrap().text.contains("read-only"));
    let mut m = fleet();
    key(&mut m, Key::Char('G'));
    key(&mut m, Key::Enter); // the down host: nothing can run there now
    key(&mut m, Key::Char('b'));
    assert_eq!(m.overlay, Overlay::None);
    let flash = &m.flash.as_ref().unwrap().text;
    assert!(flash.contains("staging is not connected"), "{flash}");
    // An up host whose only set is watched, not taken.
    let mut m = fleet();
    m.hosts[2].backups[0].recipe = None;
    m.hosts[2].stacks.clear();
    key(&mut m, Key::Down);
    key(&mut m, Key::Down);
    key(&mut m, Key::Enter);
    key(&mut m, Key::Char('b'));
    assert_eq!(m.overlay, Overlay::None);
    let flash = &m.flash.as_ref().unwrap().text;
    assert!(flash.contains("no pg_dump or file_copy recipe"), "{flash}");
    m.hosts[2].backups.clear();
    key(&mut m, Key::Char('b'));
    assert!(m.flash.as_ref().unwrap().text.contains("no backup sets"));
}

#[test]
fn checks_keep_their_last_failure_while_they_pass_again() {
    let mut model = support::fleet();
    let failing = support::check("api", Some(503), Some("expected status 200 got 503"), None);
    update(&mut model, part(0, Part::Checks(vec![failing.clone()])));
    assert_eq!(model.hosts[0].worst_check().unwrap().short(), "503");
    let mut passing = support::check("api", Some(200), None, None);
    passing.at += 30;
    update(&mut model, part(0, Part::Checks(vec![passing])));
    let c = &model.hosts[0].checks[0];
    assert!(c.ok);
    assert_eq!(c.short(), "ok");
    assert_eq!(c.last_failure, failing.last_failure);
}

#[test]
fn problems_are_evaluated_from_the_model_worst_first() {
    use opsdeck::model::problems::problems;
    let model = support::fleet();
    let all: Vec<usize> = (0..model.hosts.len()).collect();
    let found = problems(&model, &all);
    let lines: Vec<String> = found
        .iter()
        .map(|p| format!("{} {}: {}", p.severity.label(), p.host_name, p.what))
        .collect();
    let has = |s: &str| lines.iter().any(|l| l.starts_with(s));
    assert!(
        has("CRITICAL lila: check api failed: expected status 200 got 503"),
        "{lines:#?}"
    );
    assert!(has("CRITICAL staging: host unreachable"), "{lines:#?}");
    assert!(
        has("WARNING duckdb-app: check site: certificate expires in 3 days"),
        "{lines:#?}"
    );
    assert!(
        has("CRITICAL duckdb-app: backup app/app.db missing"),
        "{lines:#?}"
    );
    // The staging host is down: nothing else is said about it.
    assert_eq!(found.iter().filter(|p| p.host_name == "staging").count(), 1);
    let first_warning = found
        .iter()
        .position(|p| p.severity == opsdeck::model::Severity::Warning)
        .unwrap();
    assert!(
        found[first_warning..]
            .iter()
            .all(|p| p.severity == opsdeck::model::Severity::Warning)
    );
    assert_eq!(opsdeck::cli::check::exit_code(&found), 2);
    assert_eq!(opsdeck::cli::check::exit_code(&found[first_warning..]), 1);
    assert_eq!(opsdeck::cli::check::exit_code(&[]), 0);
}

#[test]
fn s_sorts_the_fleet_worst_first_keeping_the_selection() {
    let mut model = support::fleet();
    let names = |m: &opsdeck::model::Model| -> Vec<String> {
        m.visible_hosts()
            .iter()
            .map(|&i| m.hosts[i].name.clone())
            .collect()
    };
    assert_eq!(
        names(&model),
        ["course-supporter", "lila", "duckdb-app", "staging"]
    );
    key(&mut model, Key::Down); // lila
    key(&mut model, Key::Char('s'));
    assert!(model.sort_worst);
    let sorted = names(&model);
    // Every host here has a critical problem; lila has the most of them.
    assert_eq!(sorted[0], "lila", "{sorted:?}");
    assert_eq!(sorted.len(), 4);
    assert_eq!(
        model.hosts[model.visible_hosts()[model.fleet_cursor]].name,
        "lila"
    );
    key(&mut model, Key::Char('s'));
    assert_eq!(
        names(&model),
        ["course-supporter", "lila", "duckdb-app", "staging"]
    );
    assert_eq!(model.fleet_cursor, 1);
}

#[test]
fn p_lists_problems_and_enter_jumps_to_the_host() {
    let mut model = support::fleet();
    key(&mut model, Key::Char('P'));
    assert_eq!(model.overlay, Overlay::Problems { cursor: 0 });
    let found = model.problems();
    let target = found
        .iter()
        .position(|p| p.host_name == "duckdb-app")
        .unwrap();
    for _ in 0..target {
        key(&mut model, Key::Down);
    }
    assert_eq!(model.overlay, Overlay::Problems { cursor: target });
    key(&mut model, Key::Enter);
    assert_eq!(model.overlay, Overlay::None);
    assert_eq!(model.view, View::Host { host: 2 });
    // Esc closes without moving.
    key(&mut model, Key::Char('P'));
    key(&mut model, Key::Esc);
    assert_eq!(model.overlay, Overlay::None);
    assert_eq!(model.view, View::Host { host: 2 });
}

/// The lines of `ring` matching `needle`, counted from scratch.
fn recount(ring: &opsdeck::model::LogRing, needle: &str) -> usize {
    let needle = opsdeck::model::logs::fold(needle);
    ring.range(0, u64::MAX)
        .filter(|(_, l)| opsdeck::model::logs::matches(&l.text, &needle))
        .count()
}

#[test]
fn search_match_count_follows_lines_in_and_out_of_the_ring() {
    let mut m = container_view();
    key(&mut m, Key::Char('/'));
    keys(&mut m, "timeout");
    key(&mut m, Key::Enter);
    let pane = m.logs.as_ref().unwrap();
    assert_eq!(pane.ring.matches(), recount(&pane.ring, "timeout"));
    assert_eq!(pane.ring.matches(), 40);
    // Enough new lines to push every old one out of the ring.
    let (host, id) = (1, m.hosts[1].containers[1].id.clone());
    for _ in 0..26 {
        update(
            &mut m,
            Msg::LogLines {
                host,
                id: id.clone(),
                lines: log_lines(200),
            },
        );
    }
    let pane = m.logs.as_ref().unwrap();
    assert_eq!(pane.ring.len(), opsdeck::model::logs::LOG_CAPACITY);
    assert_eq!(pane.ring.matches(), recount(&pane.ring, "timeout"));
    assert_eq!(pane.ring.matches(), 1000);
}

#[test]
fn l_opens_the_stack_of_the_selected_container_and_esc_stops_it() {
    let mut m = fleet();
    key(&mut m, Key::Enter);
    key(&mut m, Key::Down); // course-supporter's db
    let fx = key(&mut m, Key::Char('L'));
    assert_eq!(
        m.view,
        View::Stack {
            host: 0,
            project: "course-supporter".into()
        }
    );
    let id = |c: &str| format!("{c:0<64}");
    assert_eq!(
        fx,
        [Effect::FollowStack {
            host: 0,
            project: "course-supporter".into(),
            // Every service of the project, in the host view's order; not proxy's nginx.
            sources: vec![
                ("app".into(), id("a1")),
                ("db".into(), id("a2")),
                ("netdata".into(), id("a3")),
            ],
        }]
    );
    let st = m.logs.as_ref().unwrap().stack.as_ref().unwrap();
    assert_eq!(st.services, ["app", "db", "netdata"]);
    let fx = key(&mut m, Key::Esc);
    assert_eq!(m.view, View::Host { host: 0 });
    assert!(m.logs.is_none());
    assert_eq!(
        fx,
        [Effect::StopStack {
            host: 0,
            project: "course-supporter".into()
        }]
    );
}

#[test]
fn l_in_a_container_log_swaps_it_for_its_stack() {
    let mut m = container_view();
    let fx = key(&mut m, Key::Char('L'));
    assert!(matches!(&fx[0], Effect::StopLogs { host: 1, .. }), "{fx:?}");
    assert!(
        matches!(&fx[1], Effect::FollowStack { host: 1, project, sources } if project == "lila" && sources.len() == 5),
        "{fx:?}"
    );
    assert_eq!(fx.len(), 2);
    assert!(matches!(m.view, View::Stack { host: 1, .. }));
    // Tab leaves it for the next host, stopping it.
    let fx = key(&mut m, Key::Tab);
    assert_eq!(m.view, View::Host { host: 2 });
    assert!(matches!(fx.as_slice(), [Effect::StopStack { host: 1, .. }]));
}

#[test]
fn l_outside_a_compose_project_says_why() {
    let mut m = fleet();
    open_host(&mut m, 2);
    let h = match m.view {
        View::Host { host } => host,
        ref v => panic!("{v:?}"),
    };
    // Walk to a container without a project, if the host has one.
    let outside = m.hosts[h]
        .visible_containers("")
        .iter()
        .position(|&i| m.hosts[h].containers[i].project.is_none())
        .expect("the fixture has a container outside compose");
    for _ in 0..outside {
        key(&mut m, Key::Down);
    }
    let fx = key(&mut m, Key::Char('L'));
    assert!(fx.is_empty());
    assert_eq!(m.view, View::Host { host: h });
    assert!(
        m.flash
            .as_ref()
            .unwrap()
            .text
            .contains("not in a compose project"),
        "{:?}",
        m.flash
    );
}

#[test]
fn stack_lines_go_to_their_stack_only() {
    let mut m = stack_view();
    assert_eq!(m.logs.as_ref().unwrap().ring.len(), 120);
    m.dirty = false;
    for msg in [
        Msg::StackLines {
            host: 0,
            project: "proxy".into(),
            lines: stack_lines(3),
        },
        Msg::StackLines {
            host: 1,
            project: "course-supporter".into(),
            lines: stack_lines(3),
        },
        // A container's lines, with an id that happens to be the project's name.
        Msg::LogLines {
            host: 0,
            id: "course-supporter".into(),
            lines: log_lines(3),
        },
    ] {
        update(&mut m, msg);
    }
    assert_eq!(m.logs.as_ref().unwrap().ring.len(), 120);
    assert!(!m.dirty);
    update(
        &mut m,
        Msg::StackEnded {
            host: 0,
            project: "course-supporter".into(),
            reason: "every service's log ended".into(),
        },
    );
    assert_eq!(
        m.logs.as_ref().unwrap().ended.as_deref(),
        Some("every service's log ended")
    );
}

/// `n` more lines of course-supporter's stack, as its follower sends them.
fn more_stack_lines(m: &mut opsdeck::model::Model, n: usize) {
    update(
        m,
        Msg::StackLines {
            host: 0,
            project: "course-supporter".into(),
            lines: stack_lines(n),
        },
    );
}

fn shown_sources(m: &opsdeck::model::Model) -> Vec<u16> {
    let ring = &m.logs.as_ref().unwrap().ring;
    let mut s: Vec<u16> = ring
        .range(0, u64::MAX)
        .filter_map(|(_, l)| l.source)
        .collect();
    s.dedup();
    s.sort();
    s.dedup();
    s
}

#[test]
fn f_shows_one_service_then_the_next_then_all() {
    let mut m = stack_view();
    assert_eq!(shown_sources(&m), [0, 1, 2]);
    key(&mut m, Key::Char('f'));
    assert_eq!(shown_sources(&m), [0]);
    assert_eq!(m.logs.as_ref().unwrap().ring.len(), 40);
    key(&mut m, Key::Char('f'));
    assert_eq!(shown_sources(&m), [1]);
    // New lines of a hidden service are kept for later, not shown.
    more_stack_lines(&mut m, 6);
    assert_eq!(m.logs.as_ref().unwrap().ring.len(), 42);
    key(&mut m, Key::Char('f'));
    assert_eq!(shown_sources(&m), [2]);
    key(&mut m, Key::Char('f'));
    assert_eq!(shown_sources(&m), [0, 1, 2]);
    assert_eq!(m.logs.as_ref().unwrap().ring.len(), 126);
    // In timestamp order as they came.
    let ring = &m.logs.as_ref().unwrap().ring;
    let ats: Vec<_> = ring.range(0, 120).map(|(_, l)| l.at).collect();
    assert!(ats.windows(2).all(|w| w[0] <= w[1]));
}

#[test]
fn search_and_pause_work_across_the_services_and_the_filter() {
    let mut m = stack_view();
    key(&mut m, Key::Char('/'));
    keys(&mut m, "timeout");
    key(&mut m, Key::Enter);
    // app says it at 3, 15, 27, ...; db at 7, 19, ...: i % 4 == 3 and i % 3 < 2.
    let expected: Vec<u64> = (0..120u64).filter(|i| i % 4 == 3 && i % 3 < 2).collect();
    let p = m.logs.as_ref().unwrap();
    assert_eq!(p.ring.matches(), expected.len());
    assert_eq!(p.current_match, expected.last().copied());
    assert!(!p.follow);
    key(&mut m, Key::Char('n'));
    assert_eq!(
        m.logs.as_ref().unwrap().current_match,
        Some(expected[expected.len() - 2])
    );
    // Only db: the search stays, its matches are db's.
    key(&mut m, Key::Char('f'));
    key(&mut m, Key::Char('f'));
    let p = m.logs.as_ref().unwrap();
    assert_eq!(p.search, "timeout");
    assert_eq!(p.current_match, None);
    let db = expected.iter().filter(|i| *i % 3 == 1).count();
    assert_eq!(p.ring.matches(), db);
    key(&mut m, Key::Char('n'));
    let seq = m.logs.as_ref().unwrap().current_match.unwrap();
    let line = m.logs.as_ref().unwrap().ring.get(seq).unwrap();
    assert_eq!(line.source, Some(1));
    assert!(line.text.contains("timeout"));
    // Paused: lines coming in keep the viewport still, counting only the shown ones.
    let before = m.logs.as_ref().unwrap().scroll;
    more_stack_lines(&mut m, 6);
    assert_eq!(m.logs.as_ref().unwrap().scroll, before + 2);
    key(&mut m, Key::Char('G'));
    let p = m.logs.as_ref().unwrap();
    assert!(p.follow);
    assert_eq!(p.scroll, 0);
    key(&mut m, Key::Char('p'));
    assert!(!m.logs.as_ref().unwrap().follow);
}

#[test]
fn t_shows_what_changed_newest_first_filters_and_opens_the_log_at_that_moment() {
    use opsdeck::model::timeline::Grade;
    use opsdeck::model::{Effect, LogLine, Stream, View};
    let mut m = support::with_timeline(support::fleet());
    // the fleet's: every host's, newest first
    key(&mut m, Key::Char('t'));
    assert_eq!(m.view, View::Timeline { host: None });
    let list: Vec<(String, String)> = m
        .timeline_list()
        .iter()
        .map(|e| (e.host.clone(), e.text.clone()))
        .collect();
    assert_eq!(list.len(), 9);
    assert_eq!(list[0].1, "health: unhealthy");
    assert!(m.timeline_list().windows(2).all(|w| w[0].ns >= w[1].ns));
    // the same event again (caught up twice) is not shown twice
    let again = support::event(
        "lila",
        40,
        "health",
        Some("lila-api-1"),
        Some("b1"),
        "health: unhealthy",
        Grade::Crit,
    );
    update(
        &mut m,
        Msg::Timeline {
            host: 1,
            events: vec![again],
            caught_up: true,
        },
    );
    assert_eq!(m.timeline_list().len(), 9);
    key(&mut m, Key::Esc);
    assert_eq!(m.view, View::Fleet);
    // a host's: only its own; the filter narrows by stack, container, kind or text
    key(&mut m, Key::Down);
    key(&mut m, Key::Enter);
    key(&mut m, Key::Char('t'));
    assert_eq!(m.view, View::Timeline { host: Some(1) });
    assert!(m.timeline_list().iter().all(|e| e.host == "lila"));
    assert_eq!(m.timeline_list().len(), 6);
    // (the filter starts the cursor again at the top)
    key(&mut m, Key::Down);
    key(&mut m, Key::Down);
    key(&mut m, Key::Char('/'));
    keys(&mut m, "oom");
    key(&mut m, Key::Enter);
    assert_eq!(m.timeline_list().len(), 1);
    // Enter: the container's log, to be paused at that moment
    let fx = key(&mut m, Key::Enter);
    let id = format!("{:0<64}", "b1");
    assert_eq!(
        fx,
        vec![
            Effect::FollowLogs {
                host: 1,
                id: id.clone()
            },
            Effect::InspectContainer {
                host: 1,
                id: id.clone(),
                stats: false
            },
        ]
    );
    assert_eq!(
        m.view,
        View::Container {
            host: 1,
            id: id.clone()
        }
    );
    let line = |secs: i64, text: &str| LogLine {
        time: String::new(),
        at: Some(support::ago(secs)),
        source: None,
        stream: Stream::Stdout,
        text: text.into(),
    };
    let lines = (0..10)
        .map(|i| line(200 - i * 20, &format!("line {i}")))
        .collect();
    update(
        &mut m,
        Msg::LogLines {
            host: 1,
            id: id.clone(),
            lines,
        },
    );
    // the OOM came 97 s ago: the last line at or before it is `line 5` (100 s ago)
    let pane = m.logs.as_ref().unwrap();
    assert!(!pane.follow);
    assert_eq!(
        pane.scroll, 4,
        "line 5 at the bottom, four newer lines below"
    );
    // a line after the moment settles it: later lines keep the place
    update(
        &mut m,
        Msg::LogLines {
            host: 1,
            id: id.clone(),
            lines: vec![line(1, "later")],
        },
    );
    assert_eq!(m.logs.as_ref().unwrap().scroll, 5);
    assert!(m.logs.as_ref().unwrap().moment.is_none());
    // a container that is gone: said, nothing opened
    key(&mut m, Key::Char('t'));
    key(&mut m, Key::Char('/'));
    keys(&mut m, "sigkill");
    key(&mut m, Key::Enter);
    m.hosts[1]
        .containers
        .retain(|c| c.display_name() != "forgejo");
    assert!(key(&mut m, Key::Enter).is_empty());
    assert!(
        m.flash.as_ref().unwrap().text.contains("is gone from lila"),
        "{:?}",
        m.flash
    );
}

#[test]
fn up_from_a_projects_first_container_is_its_row_and_enter_there_opens_its_logs_together() {
    use opsdeck::model::{Effect, View};
    let mut m = support::fleet();
    key(&mut m, Key::Enter); // course-supporter: its project, then proxy
    assert_eq!(m.selected_container().unwrap().1.display_name(), "app");
    key(&mut m, Key::Up);
    assert!(m.host_header);
    assert!(
        m.selected_container().is_none(),
        "a project row is no container"
    );
    // actions that want a container say so
    key(&mut m, Key::Char('r'));
    assert_eq!(m.overlay, opsdeck::model::Overlay::None);
    // Enter: every service of the project, together
    let fx = key(&mut m, Key::Enter);
    assert!(
        matches!(&fx[..], [Effect::FollowStack { host: 0, project, .. }] if project == "course-supporter"),
        "{fx:?}"
    );
    assert!(matches!(m.view, View::Stack { host: 0, .. }));
    key(&mut m, Key::Esc);
    // Up at the top stays; Down leaves the row for its first container
    let mut m = support::fleet();
    key(&mut m, Key::Enter);
    key(&mut m, Key::Up);
    key(&mut m, Key::Up);
    assert!(m.host_header);
    key(&mut m, Key::Down);
    assert!(!m.host_header);
    assert_eq!(m.selected_container().unwrap().1.display_name(), "app");
    // from the next group's first container: its row, then the previous group's last
    for _ in 0..3 {
        key(&mut m, Key::Down);
    }
    assert_eq!(m.selected_container().unwrap().1.display_name(), "nginx");
    key(&mut m, Key::Up);
    assert!(m.host_header);
    let fx = key(&mut m, Key::Enter);
    assert!(
        matches!(&fx[..], [Effect::FollowStack { project, .. }] if project == "proxy"),
        "{fx:?}"
    );
    key(&mut m, Key::Esc);
    assert!(m.host_header, "back on the project's row");
    key(&mut m, Key::Up);
    assert!(!m.host_header);
    assert_eq!(m.selected_container().unwrap().1.display_name(), "netdata");
}

#[test]
fn samples_put_a_boot_and_a_disk_crossing_on_the_timeline_and_ask_to_keep_them() {
    use opsdeck::model::host::{Disk, Metrics};
    let sample = |uptime: u64, used: u64| Metrics {
        uptime_secs: uptime,
        disks: vec![Disk {
            mount: "/".into(),
            used_bytes: used,
            total_bytes: 100,
        }],
        ..Metrics::default()
    };
    let mut m = fleet();
    let send = |m: &mut opsdeck::model::Model, metrics: Metrics, secs: i64| {
        update(
            m,
            part(
                1,
                Part::Metrics {
                    at: ago(secs),
                    metrics,
                },
            ),
        )
    };
    let kept = |fx: &[Effect]| -> Vec<String> {
        fx.iter()
            .filter_map(|e| match e {
                Effect::KeepEvents { events } => Some(events.iter().map(|e| e.text.clone())),
                _ => None,
            })
            .flatten()
            .collect()
    };
    // the first sample: the host's boot (its first), the disk's level taken as it is
    let fx = send(&mut m, sample(3600, 90), 10);
    assert_eq!(kept(&fx), ["host booted"]);
    assert!(
        m.timeline
            .iter()
            .any(|e| e.host == "lila" && e.kind == "boot")
    );
    // the same boot, the same level: nothing
    assert!(kept(&send(&mut m, sample(3608, 91), 2)).is_empty());
    // the disk past critical
    let fx = send(&mut m, sample(3610, 96), 0);
    assert_eq!(kept(&fx), ["disk / 96% full: past 95%"]);
    // a new console that loaded this boot from the store says nothing of it
    let mut again = fleet();
    let stored: Vec<_> = m.timeline.clone();
    update(
        &mut again,
        Msg::Timeline {
            host: 1,
            events: stored,
            caught_up: false,
        },
    );
    assert!(kept(&send(&mut again, sample(3620, 96), 0)).is_empty());
}

/// A worker's update: its snapshot after `parts`, starting from `conn`.
fn update_of(host: usize, conn: HostConn, parts: Vec<Part>) -> Msg {
    let mut snapshot = HostSnapshot::new(false, false);
    snapshot.conn = conn;
    let mut changed = opsdeck::model::Changed::default();
    for p in parts {
        changed = changed.or(snapshot.apply(p));
    }
    Msg::Host {
        host,
        snapshot: std::sync::Arc::new(snapshot),
        changed,
    }
}

fn figures(cpu: f64) -> Part {
    Part::Figures {
        at: now(),
        metrics: opsdeck::model::Metrics {
            cpu_percent: cpu,
            mem_used_bytes: 1 << 30,
            mem_total_bytes: 4 << 30,
            ..Default::default()
        },
    }
}

#[test]
fn a_metrics_source_reports_a_host_ssh_cannot_reach_and_leaves_its_state_alone() {
    let mut m = fleet();
    let down = HostConn::Down {
        since: now(),
        reason: "cannot connect to 192.0.2.44:22: Connection refused".into(),
    };
    let source = Part::Source(opsdeck::model::MetricsFrom {
        what: "prometheus http://prom:9090 (instance 192.0.2.44:9100)".into(),
        fallback: None,
    });
    update(
        &mut m,
        update_of(3, down.clone(), vec![source, figures(42.0)]),
    );
    let h = &m.hosts[3];
    assert_eq!(h.conn, down, "figures from a source say nothing of SSH");
    assert_eq!(h.metrics.as_ref().map(|x| x.cpu_percent), Some(42.0));
    assert!(h.sourced() && h.reported_while_down(m.now));
    // Figures that stopped coming (a source reached through SSH) are not shown as fresh.
    let later = Msg::Tick {
        now: m.now + jiff::SignedDuration::from_secs(10),
    };
    let mut stopped = m.clone();
    update(&mut stopped, later);
    assert!(!stopped.hosts[3].reported_while_down(stopped.now));
    // A sample over SSH (`Part::Metrics`) is what says a host is up.
    update(
        &mut m,
        update_of(
            3,
            down,
            vec![Part::Metrics {
                at: now(),
                metrics: opsdeck::model::Metrics::default(),
            }],
        ),
    );
    assert_eq!(m.hosts[3].conn, HostConn::Up);
}

#[test]
fn history_after_the_first_figures_goes_before_them() {
    let mut m = fleet();
    let mut fresh = opsdeck::model::HostState::new("fresh", "x", 2);
    fresh.conn = HostConn::Up;
    m.hosts.push(fresh);
    let i = m.hosts.len() - 1;
    update(&mut m, update_of(i, HostConn::Up, vec![figures(50.0)]));
    assert_eq!(m.hosts[i].cpu.len(), 1);
    let t = now().as_second();
    let history = opsdeck::model::series::History {
        cpu: (1..=30).map(|k| (t - 2 * (31 - k), 10.0)).collect(),
        ..Default::default()
    };
    update(
        &mut m,
        update_of(
            i,
            HostConn::Up,
            vec![Part::History(std::sync::Arc::new(history))],
        ),
    );
    let cpu = &m.hosts[i].cpu;
    assert_eq!(cpu.len(), 31, "thirty older points before the first figure");
    assert_eq!(cpu.tail(2), vec![10.0, 50.0]);
}

#[test]
fn a_host_off_the_screen_is_drawn_with_the_next_frame_due_not_its_own() {
    let mut m = fleet();
    let many: Vec<_> = (0..40)
        .map(|k| {
            let mut h = opsdeck::model::HostState::new(format!("extra-{k:02}"), "x", 2);
            h.conn = HostConn::Up;
            h
        })
        .collect();
    m.hosts.extend(many);
    let theme = opsdeck::ui::theme::Theme::load("default").unwrap();
    let backend = ratatui::backend::TestBackend::new(80, 24);
    let mut term = ratatui::Terminal::new(backend).unwrap();
    term.draw(|f| opsdeck::ui::view(&m, &theme, f)).unwrap();
    m.dirty = false;
    let last = m.hosts.len() - 1;
    // Figures of a host below the screen: no frame of their own.
    update(&mut m, update_of(last, HostConn::Up, vec![figures(10.0)]));
    assert!(!m.dirty);
    assert_eq!(
        m.hosts[last].metrics.as_ref().map(|x| x.cpu_percent),
        Some(10.0)
    );
    // Going down changes the fleet's count: drawn.
    let down = HostConn::Down {
        since: now(),
        reason: "gone".into(),
    };
    update(
        &mut m,
        update_of(last, HostConn::Up, vec![Part::Conn(down)]),
    );
    assert!(m.dirty, "a host going down is drawn at once");
    // A host on the screen: drawn.
    m.dirty = false;
    update(&mut m, update_of(0, HostConn::Up, vec![figures(10.0)]));
    assert!(m.dirty);
}
