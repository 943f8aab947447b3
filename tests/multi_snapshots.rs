//! The fleet with marked hosts and with a multi-deploy, at 80×24 and 160×48: the marker
//! column, the table's bottom line, the confirmation, and the marks without colour.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod support;

use opsdeck::model::{JobEvent, Key, Model, Msg, update};
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

fn text(model: &Model, theme: &Theme, w: u16, h: u16) -> String {
    let t = render(model, theme, w, h);
    let buf = t.backend().buffer();
    (0..h)
        .map(|y| {
            (0..w)
                .map(|x| buf.cell((x, y)).unwrap().symbol())
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every host marked but staging (down), the cursor on lila.
fn marked() -> Model {
    let mut m = fleet();
    for _ in 0..3 {
        key(&mut m, Key::Char(' '));
        key(&mut m, Key::Down);
    }
    key(&mut m, Key::Up);
    key(&mut m, Key::Up);
    m
}

fn job(m: &mut Model, host: usize, event: JobEvent) {
    update(m, Msg::Job { host, event });
}

/// Time passes, and the hosts that are up keep reporting.
fn later(m: &mut Model, secs: i64) {
    let now = m.now + jiff::SignedDuration::from_secs(secs);
    update(m, Msg::Tick { now });
    for h in &mut m.hosts {
        if h.metrics_at.is_some() && h.conn == opsdeck::model::HostConn::Up {
            h.metrics_at = Some(now);
        }
    }
}

#[test]
fn fleet_with_marks_and_the_confirmation() {
    let mut m = marked();
    snap("fleet_marked", &m);
    key(&mut m, Key::Char('d'));
    snap("confirm_multi_deploy", &m);
}

#[test]
fn fleet_with_a_multi_deploy_in_progress_and_ended() {
    let mut m = marked();
    key(&mut m, Key::Char('d'));
    keys(&mut m, "course-supporter");
    key(&mut m, Key::Enter);
    // course-supporter done, lila two steps in, duckdb-app waiting
    later(&mut m, 48);
    job(&mut m, 0, JobEvent::Finished(Ok("6 steps in 48s".into())));
    later(&mut m, 7);
    job(
        &mut m,
        1,
        JobEvent::Planned {
            steps: vec![
                "record".into(),
                "compose pull".into(),
                "compose up -d".into(),
            ],
        },
    );
    job(&mut m, 1, JobEvent::StepStarted { index: 0 });
    job(
        &mut m,
        1,
        JobEvent::StepFinished {
            index: 0,
            exit: None,
            ok: true,
            millis: 100,
        },
    );
    job(&mut m, 1, JobEvent::StepStarted { index: 1 });
    m.flash = None;
    snap("fleet_multi_deploy_running", &m);
    // lila fails: duckdb-app is not started
    later(&mut m, 5);
    job(
        &mut m,
        1,
        JobEvent::Finished(Err("step 2/3 (compose pull): exit status 1".into())),
    );
    snap("fleet_multi_deploy_failed", &m);
}

#[test]
fn marks_read_without_colour() {
    let theme = Theme::monochrome();
    let mut m = marked();
    let screen = text(&m, &theme, 80, 24);
    let rows: Vec<&str> = screen.lines().filter(|l| l.contains("● up")).collect();
    assert_eq!(rows.len(), 3, "{screen}");
    for r in &rows {
        assert!(r.starts_with("│* "), "{screen}");
    }
    assert!(screen.contains("3 marked"), "{screen}");
    key(&mut m, Key::Char('d'));
    keys(&mut m, "course-supporter");
    key(&mut m, Key::Enter);
    let screen = text(&m, &theme, 80, 24);
    let marks: Vec<char> = screen
        .lines()
        .filter(|l| l.contains("● up"))
        .map(|l| l.chars().nth(1).unwrap())
        .collect();
    assert_eq!(marks, ['▶', '·', '·'], "{screen}");
    let t = render(&m, &theme, 80, 24);
    for cell in t.backend().buffer().content() {
        assert_eq!(cell.fg, ratatui::style::Color::Reset);
    }
}

#[test]
fn many_marked_hosts_leave_the_question_on_screen() {
    let mut m = fleet();
    for i in 0..12 {
        let mut h = m.hosts[1].clone();
        h.name = format!("web-{i:02}");
        m.hosts.push(h);
    }
    m.hosts.swap(0, 3); // staging (down) first, not marked
    key(&mut m, Key::Down);
    for _ in 1..m.hosts.len() {
        key(&mut m, Key::Char(' '));
        key(&mut m, Key::Down);
    }
    assert_eq!(m.marked.len(), 15);
    key(&mut m, Key::Char('d'));
    let screen = text(&m, &Theme::load("default").unwrap(), 80, 24);
    assert!(screen.contains("Deploy 15 hosts"), "{screen}");
    assert!(screen.contains("… and 7 more"), "{screen}");
    assert!(screen.contains("PRODUCTION HOSTS AMONG THEM"), "{screen}");
    assert!(
        screen.contains("Type course-supporter and press ⏎"),
        "{screen}"
    );
    assert!(screen.contains("Esc cancel"), "{screen}");
}
