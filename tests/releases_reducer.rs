//! The releases picker (`R`) in the pure model and on screen: it asks the host, shows the
//! answer newest first with what differs, and turns a choice into a rollback or a
//! restore confirmation; read-only hosts may look but not roll back. Snapshots at 80×24
//! and 160×48.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod support;

use opsdeck::model::picker::ReleasesPicker;
use opsdeck::model::releases::{History, Release, ReleasesView, ServiceImage};
use opsdeck::model::{Confirm, Effect, JobKind, Key, Model, Msg, Overlay, View, update};
use opsdeck::ui::Theme;
use support::*;

const SIZES: [(u16, u16); 2] = [(80, 24), (160, 48)];

fn snap(name: &str, model: &Model) {
    let theme = Theme::load("default").unwrap();
    for (w, h) in SIZES {
        let t = render(model, &theme, w, h);
        insta::assert_snapshot!(format!("{name}_{w}x{h}"), t.backend());
    }
}

fn id(c: char) -> String {
    format!("sha256:{}", c.to_string().repeat(64))
}

fn release(n: u64, api: char, outcome: &str) -> Release {
    Release {
        n,
        id: format!("20261203T07{n:02}00Z"),
        at: format!("2026-12-03T07:{n:02}:00Z"),
        who: "ops@laptop".into(),
        recipe: "deploy".into(),
        services: vec![
            ServiceImage {
                service: "api".into(),
                image: "127.0.0.1:5000/lila/api:latest".into(),
                id: id(api),
            },
            ServiceImage {
                service: "web".into(),
                image: "127.0.0.1:5000/lila/web:latest".into(),
                id: id('e'),
            },
        ],
        commit: None,
        migration_head: None,
        dump: None,
        dump_set: None,
        outcome: outcome.into(),
    }
}

fn view() -> ReleasesView {
    let mut second = release(2, 'b', "ok");
    second.commit = Some("0123456789abcdef0123456789abcdef01234567".into());
    second.migration_head = Some("0002".into());
    second.dump = Some("~/backups/lila-20261203-070200.sql.gz".into());
    second.dump_set = Some("db".into());
    ReleasesView {
        stack: "lila".into(),
        history: History {
            releases: vec![
                release(1, 'a', "ok"),
                second,
                release(3, 'c', "failed: step 3/4 (compose up -d): exit status 1"),
            ],
            unreadable: 0,
        },
        running: vec![("api".into(), id('c')), ("web".into(), id('e'))],
        downgrade: false,
    }
}

/// lila's host view with the picker asked for.
fn picker() -> (Model, Vec<Effect>) {
    let mut m = fleet();
    key(&mut m, Key::Down);
    key(&mut m, Key::Enter);
    assert_eq!(m.view, View::Host { host: 1 });
    let fx = key(&mut m, Key::Char('R'));
    (m, fx)
}

fn answered(m: &mut Model, result: Result<ReleasesView, String>) {
    update(
        m,
        Msg::Releases {
            host: 1,
            stack: "lila".into(),
            result,
        },
    );
}

fn state(m: &Model) -> &ReleasesPicker {
    match &m.overlay {
        Overlay::Releases(p) => p,
        other => panic!("expected the releases picker, got {other:?}"),
    }
}

#[test]
fn r_asks_the_host_and_shows_its_answer_newest_first() {
    let (mut m, fx) = picker();
    assert_eq!(
        fx,
        [Effect::ReadReleases {
            host: 1,
            stack: "lila".into()
        }]
    );
    assert_eq!(state(&m).view, None);
    snap("releases_loading", &m);
    // an answer about another stack is not this picker's
    update(
        &mut m,
        Msg::Releases {
            host: 1,
            stack: "other".into(),
            result: Ok(view()),
        },
    );
    assert_eq!(state(&m).view, None);
    answered(&mut m, Ok(view()));
    let numbers: Vec<u64> = state(&m).rows().iter().map(|r| r.n).collect();
    assert_eq!(numbers, [3, 2, 1]);
    snap("releases_newest", &m);
    key(&mut m, Key::Char('G'));
    assert_eq!(state(&m).selected().unwrap().n, 1);
    snap("releases_first_selected", &m);
    key(&mut m, Key::Char('k'));
    assert_eq!(state(&m).selected().unwrap().n, 2);
    key(&mut m, Key::Char('g'));
    assert_eq!(state(&m).selected().unwrap().n, 3);
    // r reads again
    let fx = key(&mut m, Key::Char('r'));
    assert!(matches!(&fx[..], [Effect::ReadReleases { host: 1, .. }]));
    assert_eq!(state(&m).view, None);
    key(&mut m, Key::Esc);
    assert_eq!(m.overlay, Overlay::None);
}

#[test]
fn a_host_that_cannot_answer_says_why() {
    let (mut m, _) = picker();
    answered(
        &mut m,
        Err("cannot read ~/.local/state/opsdeck/lila.releases: Permission denied".into()),
    );
    snap("releases_error", &m);
    // Enter on nothing does nothing
    assert!(key(&mut m, Key::Enter).is_empty());
    assert!(matches!(m.overlay, Overlay::Releases(_)));
}

#[test]
fn enter_asks_to_roll_back_to_the_selected_release_and_says_what_changes() {
    let (mut m, _) = picker();
    answered(&mut m, Ok(view()));
    key(&mut m, Key::Char('j'));
    key(&mut m, Key::Char('c'));
    assert!(state(&m).checkout);
    key(&mut m, Key::Enter);
    let Overlay::Confirm(Confirm::Job {
        host,
        request,
        details,
        typed,
        ..
    }) = &m.overlay
    else {
        panic!("{:?}", m.overlay)
    };
    assert_eq!(*host, 1);
    assert_eq!(request.kind, JobKind::Rollback);
    assert_eq!(request.stack, "lila");
    assert_eq!(request.opts.to.as_deref(), Some("2"));
    assert!(request.opts.checkout);
    assert_eq!(*typed, None, "lila is not production");
    assert_eq!(details[0], "api: cccccccccccc → bbbbbbbbbbbb");
    assert!(
        details
            .iter()
            .any(|d| d == "then git checkout 0123456789ab in the stack's directory"),
        "{details:?}"
    );
    assert!(
        details
            .iter()
            .any(|d| d.contains("migrations are NOT undone")),
        "{details:?}"
    );
    snap("releases_confirm_rollback", &m);
    // yes: the worker is asked
    let fx = key(&mut m, Key::Char('y'));
    assert!(
        matches!(&fx[..], [Effect::RunJob { host: 1, request }] if request.opts.to.as_deref() == Some("2")),
        "{fx:?}"
    );
}

#[test]
fn d_asks_separately_to_restore_a_dump_typed_out() {
    let (mut m, _) = picker();
    answered(&mut m, Ok(view()));
    // #3 took no dump
    assert!(key(&mut m, Key::Char('D')).is_empty());
    assert!(m.flash.as_ref().unwrap().text.contains("recorded no dump"));
    key(&mut m, Key::Char('j'));
    key(&mut m, Key::Char('D'));
    let Overlay::Confirm(Confirm::Job {
        request,
        details,
        typed,
        ..
    }) = &m.overlay
    else {
        panic!("{:?}", m.overlay)
    };
    assert_eq!(request.kind, JobKind::Restore { set: "db".into() });
    assert_eq!(request.opts.to.as_deref(), Some("2"));
    assert_eq!(typed.as_deref(), Some(""), "a restore is typed out");
    assert!(details[0].contains("~/backups/lila-20261203-070200.sql.gz"));
    snap("releases_confirm_restore", &m);
    // y alone does not do it
    assert!(key(&mut m, Key::Char('y')).is_empty());
}

#[test]
fn a_read_only_host_shows_its_releases_but_refuses_to_roll_back() {
    let (mut m, _) = picker();
    m.hosts[1].read_only = true;
    answered(&mut m, Ok(view()));
    assert!(key(&mut m, Key::Enter).is_empty());
    assert!(m.flash.as_ref().unwrap().text.contains("read-only"));
    assert!(matches!(m.overlay, Overlay::Releases(_)));
    assert!(key(&mut m, Key::Char('D')).is_empty());
    assert!(matches!(m.overlay, Overlay::Releases(_)));
}

#[test]
fn hostile_text_from_the_history_reaches_the_screen_inert() {
    let (mut m, _) = picker();
    let mut v = view();
    // what a hostile host wrote, as parse() made it: escapes removed, bounded
    let raw = format!(
        "{{\"n\":9,\"id\":\"x\",\"at\":\"\\u001b[2J2026\",\"who\":\"\\u001b]0;pwned\\u0007e\",\"recipe\":\"{}\",\"outcome\":\"ok\"}}\n",
        "r".repeat(3000)
    );
    v.history = opsdeck::model::releases::parse(raw.as_bytes());
    answered(&mut m, Ok(v));
    let theme = Theme::load("default").unwrap();
    let t = render(&m, &theme, 80, 24);
    let buf = t.backend().buffer();
    for cell in buf.content() {
        assert!(
            !cell.symbol().chars().any(|c| c.is_control()),
            "a control character on screen"
        );
    }
}
