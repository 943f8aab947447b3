//! Every view at 80×24 (the plain terminal of an SSH session) and 160×48, from fixture
//! models. Text snapshots catch layout; the style checks below catch colour roles.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod support;

use opsdeck::model::{DockerState, HostConn, Key, Model};
use opsdeck::ui::Theme;
use ratatui::style::Modifier;
use support::*;

const SIZES: [(u16, u16); 2] = [(80, 24), (160, 48)];

fn snap(name: &str, model: &Model) {
    let theme = Theme::load("default").unwrap();
    for (w, h) in SIZES {
        let t = render(model, &theme, w, h);
        insta::assert_snapshot!(format!("{name}_{w}x{h}"), t.backend());
    }
}

#[test]
fn fleet() {
    snap("fleet", &support::fleet());
}

#[test]
fn fleet_down_host_selected() {
    let mut m = support::fleet();
    key(&mut m, Key::Char('G'));
    snap("fleet_down_selected", &m);
}

#[test]
fn fleet_filtered() {
    let mut m = support::fleet();
    key(&mut m, Key::Char('/'));
    keys(&mut m, "li");
    snap("fleet_filter_typing", &m);
}

#[test]
fn host() {
    let mut m = support::fleet();
    key(&mut m, Key::Enter);
    snap("host", &m);
}

#[test]
fn host_with_unhealthy_and_exited() {
    let mut m = support::fleet();
    key(&mut m, Key::Down);
    key(&mut m, Key::Enter);
    key(&mut m, Key::Char('j'));
    snap("host_lila", &m);
}

#[test]
fn host_outside_compose() {
    let mut m = support::fleet();
    key(&mut m, Key::Down);
    key(&mut m, Key::Down);
    key(&mut m, Key::Enter);
    snap("host_duckdb", &m);
}

#[test]
fn host_down() {
    let mut m = support::fleet();
    key(&mut m, Key::Char('G'));
    key(&mut m, Key::Enter);
    snap("host_down", &m);
}

#[test]
fn fleet_and_host_with_a_stalled_host() {
    let mut m = support::fleet();
    m.hosts[0].conn = HostConn::Stalled {
        since: m.now - jiff::SignedDuration::from_secs(7),
        reason: "no answer for 7s".into(),
    };
    snap("fleet_stalled", &m);
    key(&mut m, Key::Enter);
    snap("host_stalled", &m);
}

#[test]
fn host_without_docker() {
    let mut m = support::fleet();
    m.hosts[0].docker = DockerState::Unavailable {
        reason: "no Docker socket at /var/run/docker.sock".into(),
    };
    m.hosts[0].containers.clear();
    key(&mut m, Key::Enter);
    snap("host_no_docker", &m);
}

#[test]
fn host_waiting_for_first_sample() {
    let mut m = Model::new(
        vec![opsdeck::model::HostState::new("local", "this machine", 2)],
        support::now(),
    );
    m.hosts[0].conn = HostConn::Up;
    snap("host_first_sample", &m);
}

#[test]
fn container_following() {
    snap("container", &container_view());
}

#[test]
fn container_paused_with_search() {
    let mut m = container_view();
    key(&mut m, Key::Char('/'));
    keys(&mut m, "timeout");
    key(&mut m, Key::Enter);
    key(&mut m, Key::Char('n'));
    snap("container_search", &m);
}

#[test]
fn container_search_typing() {
    let mut m = container_view();
    key(&mut m, Key::Char('/'));
    keys(&mut m, "err");
    snap("container_search_typing", &m);
}

#[test]
fn help_overlays() {
    let mut m = support::fleet();
    key(&mut m, Key::Char('?'));
    snap("help_fleet", &m);
    let mut m = support::fleet();
    key(&mut m, Key::Enter);
    key(&mut m, Key::Char('?'));
    snap("help_host", &m);
    let mut m = container_view();
    key(&mut m, Key::Char('?'));
    snap("help_container", &m);
}

#[test]
fn palette() {
    let mut m = support::fleet();
    key(&mut m, Key::Char(':'));
    snap("palette_empty", &m);
    keys(&mut m, "li");
    snap("palette_typed", &m);
}

#[test]
fn read_only_banner_and_flash() {
    let mut m = support::fleet();
    m.read_only = true;
    key(&mut m, Key::Char(':'));
    keys(&mut m, "zzz");
    key(&mut m, Key::Enter);
    snap("fleet_read_only_flash", &m);
}

#[test]
fn tiny_terminal_does_not_panic() {
    let theme = Theme::load("default").unwrap();
    for m in [support::fleet(), container_view()] {
        for (w, h) in [(1, 1), (10, 5), (40, 10), (80, 8)] {
            render(&m, &theme, w, h);
        }
    }
}

#[test]
fn styles_carry_meaning() {
    let theme = Theme::load("default").unwrap();
    let m = support::fleet();
    let t = render(&m, &theme, 80, 24);
    let buf = t.backend().buffer();
    // The selected row (course-supporter) is drawn in the selection style.
    let name_cell = buf.cell((1, 3)).unwrap();
    assert_eq!(name_cell.symbol(), "c");
    assert_eq!(name_cell.bg, theme.selected.bg.unwrap());
    // lila's unhealthy count (2) is critical.
    let line: String = (0..80)
        .map(|x| buf.cell((x, 4)).unwrap().symbol().to_string())
        .collect();
    let col = line
        .find(" 2 ")
        .map(|i| line[..i + 1].chars().count())
        .unwrap();
    assert_eq!(
        buf.cell((col as u16, 4)).unwrap().fg,
        theme.crit.fg.unwrap()
    );
    // The down host's state is critical too.
    let line: String = (0..80)
        .map(|x| buf.cell((x, 6)).unwrap().symbol().to_string())
        .collect();
    let col = line.find('✖').map(|i| line[..i].chars().count()).unwrap();
    assert_eq!(
        buf.cell((col as u16, 6)).unwrap().fg,
        theme.crit.fg.unwrap()
    );
}

#[test]
fn no_color_theme_uses_no_colour_at_all() {
    let theme = Theme::monochrome();
    for m in [support::fleet(), container_view()] {
        let t = render(&m, &theme, 160, 48);
        for cell in t.backend().buffer().content() {
            assert_eq!(cell.fg, ratatui::style::Color::Reset, "{:?}", cell.symbol());
            assert_eq!(cell.bg, ratatui::style::Color::Reset);
        }
    }
    // Selection stays visible without colour.
    let t = render(&support::fleet(), &theme, 80, 24);
    let cell = t.backend().buffer().cell((1, 3)).unwrap();
    assert!(cell.modifier.contains(Modifier::REVERSED));
}

#[test]
fn sixteen_colour_theme_renders_the_log_with_ansi_colours() {
    let theme = Theme::load("16color").unwrap();
    let t = render(&container_view(), &theme, 80, 24);
    let buf = t.backend().buffer();
    // ANSI red from the log line itself ("ERROR") comes through.
    let found = buf
        .content()
        .iter()
        .any(|c| c.symbol() == "E" && c.fg == ratatui::style::Color::Red);
    assert!(found, "the ERROR word keeps its ANSI red");
}

#[test]
fn unknown_host_key_prompt_and_dialog() {
    let mut m = support::fleet();
    let fp = "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU".to_string();
    m.hosts[3].conn = HostConn::Down {
        since: support::ago(5),
        reason: format!("unknown host key for 192.0.2.44 ({fp}): not in ~/.ssh/known_hosts"),
    };
    opsdeck::model::update(
        &mut m,
        opsdeck::model::Msg::HostKeyUnknown {
            host: 3,
            fingerprint: fp,
        },
    );
    key(&mut m, Key::Char('G'));
    key(&mut m, Key::Enter);
    snap("host_unknown_key", &m);
    key(&mut m, Key::Char('A'));
    snap("confirm_trust_key", &m);
}

#[test]
fn passphrase_prompt_and_changed_key_banner() {
    let mut m = support::fleet();
    let alert = "host key CHANGED (/home/op/.ssh/known_hosts:12): connection refused";
    opsdeck::model::update(
        &mut m,
        opsdeck::model::Msg::HostKeyAlert {
            host: 3,
            message: alert.into(),
        },
    );
    snap("banner_changed_key", &m);
    opsdeck::model::update(
        &mut m,
        opsdeck::model::Msg::PassphraseNeeded {
            host: 1,
            path: "/home/op/.ssh/id_ed25519".into(),
            wrong: false,
        },
    );
    key(&mut m, Key::Down);
    key(&mut m, Key::Char('A'));
    keys(&mut m, "secret");
    snap("passphrase_prompt", &m);
}

#[test]
fn backup_confirmation_and_running_job() {
    let mut m = support::fleet();
    key(&mut m, Key::Down);
    key(&mut m, Key::Enter);
    key(&mut m, Key::Char('b'));
    snap("confirm_backup", &m);
    key(&mut m, Key::Char('y'));
    key(&mut m, Key::Esc); // from the job pane back to the host view
    opsdeck::model::update(
        &mut m,
        opsdeck::model::Msg::Job {
            host: 1,
            event: opsdeck::model::JobEvent::Progress { bytes: 12_900_000 },
        },
    );
    snap("backup_running", &m);
}

#[test]
fn fleet_sorted_worst_first_and_problems_panel() {
    let mut m = support::fleet();
    key(&mut m, Key::Char('s'));
    snap("fleet_worst_first", &m);
    key(&mut m, Key::Char('P'));
    key(&mut m, Key::Down);
    snap("problems_panel", &m);
}

/// A deploy's confirmation while its pre-flight checks, and with each kind of report.
#[test]
fn deploy_confirmation_with_its_preflight() {
    let mut m = support::fleet();
    key(&mut m, Key::Down);
    key(&mut m, Key::Enter); // lila: not production
    key(&mut m, Key::Char('d'));
    snap("confirm_preflight_checking", &m);
    use opsdeck::model::preflight::{Item, Report, Topic, Verdict};
    let lila = |registry: Item| Report {
        items: vec![
            Item::new(
                Topic::Disk,
                Verdict::Ok,
                "Docker's root /var/lib/docker: 48 % free (47.6 GB)",
            ),
            Item::new(
                Topic::Disk,
                Verdict::Ok,
                "~/backups: 48 % free (47.6 GB) on /",
            ),
            Item::new(Topic::Lock, Verdict::Ok, "no other job holds the lock"),
            Item::new(Topic::Checkout, Verdict::Ok, "~/lila is not a git checkout"),
            Item::new(Topic::Compose, Verdict::Ok, "compose config -q passes"),
            registry,
        ],
    };
    let mut ok = m.clone();
    let pulls = Item::new(
        Topic::Registry,
        Verdict::Ok,
        "the registry has all 4 images the deploy pulls",
    );
    preflight_answers(&mut ok, lila(pulls));
    snap("confirm_preflight_ok", &ok);
    let mut refused = m.clone();
    let down = Item::new(
        Topic::Registry,
        Verdict::Refuse,
        "the registry of git.lilastudy.com/lila/api:latest does not answer: Get \"https://git.lilastudy.com/v2/\": dial tcp: connect: connection refused",
    );
    preflight_answers(&mut refused, lila(down));
    snap("confirm_preflight_refused", &refused);
    // course-supporter, production: warnings want `force` and the name typed
    let mut m = support::fleet();
    key(&mut m, Key::Enter);
    key(&mut m, Key::Char('d'));
    preflight_answers(&mut m, preflight_warns());
    keys(&mut m, "force co");
    snap("confirm_preflight_warnings", &m);
}

fn deploying() -> Model {
    let mut m = support::fleet();
    key(&mut m, Key::Enter);
    key(&mut m, Key::Char('d'));
    preflight_passes(&mut m);
    keys(&mut m, "course-supp");
    snap("confirm_deploy_production", &m);
    keys(&mut m, "orter");
    key(&mut m, Key::Enter);
    for e in support::deploy_events() {
        opsdeck::model::update(&mut m, opsdeck::model::Msg::Job { host: 0, event: e });
    }
    m
}

#[test]
fn job_pane_running_and_failed() {
    let mut m = deploying();
    snap("job_running", &m);
    use opsdeck::model::JobEvent;
    for e in [
        JobEvent::Output(vec![opsdeck::model::job::JobLine {
            step: Some(2),
            kind: opsdeck::model::job::LineKind::Err,
            text: "ERROR: Service 'app' failed to build: COPY failed: no source files".into(),
        }]),
        JobEvent::StepFinished {
            index: 2,
            exit: Some(1),
            ok: false,
            millis: 3100,
        },
        JobEvent::Finished(Err("step 3/6 (compose build): exit status 1".into())),
    ] {
        opsdeck::model::update(&mut m, opsdeck::model::Msg::Job { host: 0, event: e });
    }
    m.flash = None;
    snap("job_failed", &m);
    // scrolled back: paused, with how much is below
    key(&mut m, Key::Up);
    key(&mut m, Key::Up);
    key(&mut m, Key::Up);
    snap("job_scrolled", &m);
}

#[test]
fn fleet_with_jobs_and_the_jobs_list() {
    let mut m = deploying();
    key(&mut m, Key::Char('F'));
    // lila: a restart that went well, earlier
    key(&mut m, Key::Down);
    key(&mut m, Key::Enter);
    key(&mut m, Key::Char('r'));
    key(&mut m, Key::Char('y'));
    opsdeck::model::update(
        &mut m,
        opsdeck::model::Msg::Job {
            host: 1,
            event: opsdeck::model::JobEvent::Finished(Ok("1 step in 2s".into())),
        },
    );
    key(&mut m, Key::Char('F'));
    m.flash = None;
    snap("fleet_with_jobs", &m);
    let mut r = opsdeck::model::JobRecord::new(
        ago(7200).to_string(),
        "alice".into(),
        "duckdb-app",
        "app",
        "deploy",
    );
    r.outcome = "ok".into();
    r.duration_ms = 95_000;
    let mut b = opsdeck::model::JobRecord::new(
        ago(86_400).to_string(),
        "cron".into(),
        "course-supporter",
        "course-supporter",
        "backup",
    );
    b.set = Some("db".into());
    b.outcome = "failed: pg_dump failed: database \"course_supporter\" does not exist".into();
    b.duration_ms = 800;
    opsdeck::model::update(&mut m, opsdeck::model::Msg::History(vec![b, r]));
    key(&mut m, Key::Char('J'));
    snap("jobs_list", &m);
}

#[test]
fn cancel_quit_and_custom_action_dialogs() {
    let mut m = deploying();
    key(&mut m, Key::Char('x'));
    snap("confirm_cancel_job", &m);
    key(&mut m, Key::Esc);
    key(&mut m, Key::Char('q'));
    snap("confirm_quit_with_jobs", &m);
    let mut m = support::fleet();
    key(&mut m, Key::Down);
    key(&mut m, Key::Enter);
    key(&mut m, Key::Char('C'));
    snap("confirm_custom_action", &m);
    // K on lila's caddy, the signal chosen with Tab
    key(&mut m, Key::Esc);
    key(&mut m, Key::Char('g'));
    key(&mut m, Key::Char('K'));
    key(&mut m, Key::Tab);
    key(&mut m, Key::Tab);
    snap("confirm_kill_signal", &m);
    key(&mut m, Key::Esc);
    key(&mut m, Key::Char('?'));
    key(&mut m, Key::Char('G'));
    snap("help_host_custom_actions", &m);
}

#[test]
fn stack_logs_following() {
    snap("stack_logs", &stack_view());
}

#[test]
fn stack_logs_one_service_paused_with_search() {
    let mut m = stack_view();
    key(&mut m, Key::Char('f'));
    key(&mut m, Key::Char('f'));
    key(&mut m, Key::Char('/'));
    keys(&mut m, "timeout");
    key(&mut m, Key::Enter);
    snap("stack_logs_db_search", &m);
}

#[test]
fn stack_logs_name_each_service_in_its_own_colour() {
    let theme = Theme::load("default").unwrap();
    let t = render(&stack_view(), &theme, 160, 48);
    let buf = t.backend().buffer();
    // The service column's first cell on each log row, by the service named there.
    let mut colours = std::collections::HashMap::new();
    for y in 0..48 {
        let row: String = (1..160).map(|x| buf[(x, y)].symbol().to_string()).collect();
        for name in ["app ", "db ", "netdata "] {
            if row.starts_with(name) && row.contains(" │ ") {
                colours.entry(name).or_insert(buf[(1, y)].fg);
            }
        }
    }
    assert_eq!(
        colours.len(),
        3,
        "every service has lines on screen: {colours:?}"
    );
    let mut distinct: Vec<_> = colours.values().map(|c| format!("{c:?}")).collect();
    distinct.sort();
    distinct.dedup();
    assert_eq!(
        distinct.len(),
        3,
        "three services, three colours: {colours:?}"
    );
    // Under NO_COLOR: none at all (checked cell by cell).
    let t = render(&stack_view(), &Theme::monochrome(), 160, 48);
    for cell in t.backend().buffer().content() {
        assert_eq!(cell.fg, ratatui::style::Color::Reset, "{:?}", cell.symbol());
    }
}

#[test]
fn a_hostile_service_name_is_cleaned_and_cut_by_display_width() {
    let mut m = support::fleet();
    // The host names the services: one with escapes and controls, one wide and long.
    m.hosts[0].containers[1].service = Some("db\u{1b}]52;c;aGk=\u{7}\u{1b}[2J\r\n".into());
    m.hosts[0].containers[2].service = Some("監視データ収集サービス-netdata".into());
    key(&mut m, Key::Enter);
    key(&mut m, Key::Char('L'));
    let (host, project) = match &m.view {
        opsdeck::model::View::Stack { host, project } => (*host, project.clone()),
        v => panic!("{v:?}"),
    };
    opsdeck::model::update(
        &mut m,
        opsdeck::model::Msg::StackLines {
            host,
            project,
            lines: stack_lines(9),
        },
    );
    let t = render(&m, &Theme::load("default").unwrap(), 80, 24);
    let buf = t.backend().buffer();
    let mut text = String::new();
    for y in 0..24 {
        for x in 0..80 {
            text.push_str(buf[(x, y)].symbol());
        }
        text.push('\n');
    }
    assert!(
        !text
            .chars()
            .any(|c| c != '\n' && (c.is_control() || c == '\u{1b}')),
        "{text}"
    );
    // The column is 16 terminal columns wide (the cap) on every row: the wide name is
    // cut to seven characters (14 columns) and an ellipsis, by display width.
    let rows: Vec<u16> = (0..24)
        .filter(|&y| buf[(0, y)].symbol() == "│" && buf[(18, y)].symbol() == "│")
        .collect();
    assert_eq!(rows.len(), 9, "{text}");
    let names: Vec<String> = rows
        .iter()
        .map(|&y| (1..17).map(|x| buf[(x, y)].symbol()).collect::<String>())
        .collect();
    assert_eq!(names[0].trim_end(), "app");
    assert_eq!(names[1].trim_end(), "db", "escapes and controls gone");
    assert!(names[2].starts_with("監"), "{:?}", names[2]);
    assert!(names[2].contains('…'), "{:?}", names[2]);
    insta::assert_snapshot!("stack_logs_hostile_names_80x24", t.backend());
}

#[test]
fn timeline_of_the_fleet_and_of_a_host() {
    let mut m = support::with_timeline(support::fleet());
    key(&mut m, Key::Char('t'));
    snap("timeline_fleet", &m);
    key(&mut m, Key::Esc);
    key(&mut m, Key::Down);
    key(&mut m, Key::Enter);
    key(&mut m, Key::Char('t'));
    key(&mut m, Key::Down);
    snap("timeline_lila", &m);
    let mut empty = support::fleet();
    key(&mut empty, Key::Char('t'));
    snap("timeline_empty", &empty);
}

#[test]
fn host_with_a_project_row_selected() {
    let mut m = support::fleet();
    key(&mut m, Key::Enter);
    key(&mut m, Key::Up);
    snap("host_project_row", &m);
}

/// Hosts whose metrics come from Prometheus: one served, one falling back to SSH sampling
/// (`● up ssh!`, and why under the table when selected).
#[test]
fn fleet_with_metrics_sources() {
    use opsdeck::model::MetricsFrom;
    let mut m = support::fleet();
    m.hosts[0].source = Some(MetricsFrom {
        what: "prometheus http://prom:9090 (instance 10.0.0.11:9100)".into(),
        fallback: None,
    });
    m.hosts[1].source = Some(MetricsFrom {
        what: "prometheus http://prom:9090 (instance 10.0.0.12:9100)".into(),
        fallback: Some(
            "http://prom:9090: connect prom:9090: Connection refused: sampled over SSH meanwhile"
                .into(),
        ),
    });
    // staging: SSH refused, but its node-exporter still reports it: its figures are shown.
    let (cpu, mem, metrics, at) = {
        let h = &m.hosts[0];
        (
            h.cpu.clone(),
            h.mem.clone(),
            h.metrics.clone(),
            h.metrics_at,
        )
    };
    let staging = &mut m.hosts[3];
    staging.source = Some(MetricsFrom {
        what: "prometheus http://prom:9090 (instance 192.0.2.44:9100)".into(),
        fallback: None,
    });
    (
        staging.cpu,
        staging.mem,
        staging.metrics,
        staging.metrics_at,
    ) = (cpu, mem, metrics, at);
    key(&mut m, Key::Down);
    snap("fleet_metrics_sources", &m);
    let theme = Theme::load("default").unwrap();
    let t = render(&m, &theme, 80, 24);
    let text = format!("{:?}", t.backend());
    assert!(text.contains("● up ssh!"), "{text}");
    let row = text
        .lines()
        .find(|l| l.contains("staging"))
        .unwrap_or_default();
    assert!(row.contains("✖ down") && row.contains('%'), "{row}");
}
