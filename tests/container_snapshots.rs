//! The container view's tabs at 80×24 and 160×48, from the fixture of lila's api: every
//! tab, secrets masked and shown, a stopped container's exit, and a detail not yet read.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod support;

use opsdeck::model::detail::Tab;
use opsdeck::model::{Key, Model, Msg, View, update};
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

fn text(model: &Model, w: u16, h: u16) -> String {
    let theme = Theme::load("default").unwrap();
    let t = render(model, &theme, w, h);
    let buf = t.backend().buffer();
    let mut out = String::new();
    for y in 0..buf.area.height {
        for x in 0..buf.area.width {
            out.push_str(buf[(x, y)].symbol());
        }
        out.push('\n');
    }
    out
}

#[test]
fn every_tab() {
    for (tab, name) in [
        (Tab::Graphs, "container_graphs"),
        (Tab::Processes, "container_processes"),
        (Tab::Env, "container_env"),
        (Tab::Mounts, "container_mounts"),
        (Tab::Labels, "container_labels"),
        (Tab::State, "container_state"),
    ] {
        snap(name, &container_tab(tab));
    }
}

#[test]
fn env_masks_until_v_and_graphs_draw_something() {
    let mut m = container_tab(Tab::Env);
    let masked = text(&m, 80, 24);
    assert!(masked.contains("POSTGRES_PASSWORD"), "{masked}");
    assert!(!masked.contains("correct-horse"), "{masked}");
    assert!(masked.contains("••••••"), "{masked}");
    key(&mut m, Key::Char('v'));
    snap("container_env_revealed", &m);
    assert!(text(&m, 80, 24).contains("correct-horse"));

    let graphs = text(&container_tab(Tab::Graphs), 80, 24);
    for want in ["CPU", "MEM", "512M limit", "NET ↓", "BLOCK I/O r "] {
        assert!(graphs.contains(want), "{want}:\n{graphs}");
    }
    // the sparklines have bars, not only blanks
    assert!(graphs.chars().any(|c| ('▁'..='█').contains(&c)), "{graphs}");
}

#[test]
fn a_stopped_container_and_one_not_read_yet() {
    let mut m = container_tab(Tab::State);
    let View::Container { host, id } = m.view.clone() else {
        unreachable!()
    };
    let mut d = container_detail();
    d.status = "exited".into();
    d.running = false;
    d.exit_code = Some(137);
    d.oom_killed = true;
    d.finished_at = Some(ago(300));
    d.processes.rows.clear();
    d.processes.error = Some("not running".into());
    update(
        &mut m,
        Msg::ContainerDetail {
            host,
            id,
            at: now(),
            detail: Ok(Box::new(d)),
            io: None,
        },
    );
    // the timeline saw it killed for memory twice (and another container once)
    let oom = |secs: i64, id: &str| {
        event(
            "lila",
            secs,
            "oom",
            Some("lila-api-1"),
            Some(id),
            "ran out of memory (OOM kill)",
            opsdeck::model::timeline::Grade::Crit,
        )
    };
    update(
        &mut m,
        Msg::Timeline {
            host,
            events: vec![oom(400, "b1"), oom(320, "b1"), oom(310, "b2")],
            caught_up: true,
        },
    );
    snap("container_state_exited", &m);
    let t = text(&m, 80, 24);
    assert!(t.contains("exit code     137"), "{t}");
    assert!(t.contains("OOM-killed    yes"), "{t}");
    assert!(t.contains("OOM kills     2 on its timeline"), "{t}");

    let mut fresh = container_view();
    key(&mut fresh, Key::Char('4'));
    snap("container_env_asking", &fresh);
}
