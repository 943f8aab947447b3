//! The console's first-run import (issue 15, part 2) on the pure model: with no inventory
//! and hosts in ~/.ssh/config the console offers `I`; pressing it asks the runtime for the
//! import, progress and the end come back as messages; a failure can be tried again; the
//! written inventory ends this console's loop so that it starts again over it. The offer's
//! line at 80×24 and 160×48. (The real thing, against the lab in a PTY: tests/import_pty.rs.)

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod support;

use opsdeck::model::{Effect, Import, ImportMsg, Key, Model, Msg, Overlay, update};
use opsdeck::ui::Theme;
use support::*;

fn offered() -> Model {
    let mut m = fleet();
    m.import = Some(Import::Offered { hosts: 4 });
    m
}

fn snap(name: &str, model: &Model) {
    let theme = Theme::load("default").unwrap();
    for (w, h) in [(80, 24), (160, 48)] {
        let t = render(model, &theme, w, h);
        insta::assert_snapshot!(format!("{name}_{w}x{h}"), t.backend());
    }
}

#[test]
fn i_asks_for_the_import_and_progress_then_the_new_inventory_ends_the_loop() {
    let mut m = offered();
    snap("import_offered", &m);
    let fx = key(&mut m, Key::Char('I'));
    assert_eq!(fx, vec![Effect::Import]);
    assert_eq!(m.import, Some(Import::Running { done: 0, total: 4 }));
    // A second I while it runs does not start another.
    assert!(!key(&mut m, Key::Char('I')).contains(&Effect::Import));
    update(
        &mut m,
        Msg::Import(ImportMsg::Progress { done: 3, total: 4 }),
    );
    assert_eq!(m.import, Some(Import::Running { done: 3, total: 4 }));
    snap("import_running", &m);
    assert!(!m.should_quit);
    update(
        &mut m,
        Msg::Import(ImportMsg::Done(Ok(
            "/home/me/.config/opsdeck/hosts.toml".into()
        ))),
    );
    assert!(m.should_quit);
    assert_eq!(
        m.reload.as_deref(),
        Some("/home/me/.config/opsdeck/hosts.toml")
    );
}

#[test]
fn a_failed_import_says_why_and_can_be_tried_again() {
    let mut m = offered();
    key(&mut m, Key::Char('I'));
    update(
        &mut m,
        Msg::Import(ImportMsg::Done(Err(
            "/home/me/.config/opsdeck/hosts.toml: Permission denied\u{1b}[2J".into(),
        ))),
    );
    assert!(!m.should_quit && m.reload.is_none());
    assert!(matches!(m.import, Some(Import::Failed { hosts: 4, .. })));
    m.flash = None;
    snap("import_failed", &m);
    assert_eq!(key(&mut m, Key::Char('I')), vec![Effect::Import]);
}

#[test]
fn without_the_offer_or_under_an_overlay_i_imports_nothing() {
    let mut m = fleet();
    assert!(!key(&mut m, Key::Char('I')).contains(&Effect::Import));
    assert_eq!(m.import, None);
    let mut m = offered();
    key(&mut m, Key::Char('?'));
    assert!(matches!(m.overlay, Overlay::Help(_)));
    // Help lists the offer's key, which is no binding of the table (a custom action may
    // take `I` in an inventory; with one, there is no offer).
    let screen = format!(
        "{:?}",
        render(&m, &Theme::load("default").unwrap(), 160, 48).backend()
    );
    assert!(
        screen.contains("import 4 host(s) from ~/.ssh/config"),
        "{screen}"
    );
    assert!(!key(&mut m, Key::Char('I')).contains(&Effect::Import));
    assert_eq!(m.import, Some(Import::Offered { hosts: 4 }));
}
