//! Jobs in the pure model: which keys ask for what, the confirmation (typed host name on
//! production hosts), read-only refusals, the job's events folded into its pane, cancel,
//! quit with jobs running, the jobs list and its history.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod support;

use opsdeck::model::job::{JobLine, JobRecord, LineKind, StepRecord, StepState};
use opsdeck::model::preflight::{Report, Shown, Verdict};
use opsdeck::model::{
    Confirm, Effect, JobEvent, JobKind, JobRef, JobRequest, Key, Level, Model, Msg, Overlay, View,
    update,
};
use support::*;

/// The fleet model with host `host` opened in the host view.
fn at_host(host: usize) -> Model {
    let mut m = fleet();
    for _ in 0..host {
        key(&mut m, Key::Down);
    }
    key(&mut m, Key::Enter);
    assert_eq!(m.view, View::Host { host });
    m
}

fn confirm(m: &Model) -> (usize, JobRequest, Vec<String>, Option<String>) {
    match &m.overlay {
        Overlay::Confirm(Confirm::Job {
            host,
            request,
            details,
            typed,
            ..
        }) => (*host, request.clone(), details.clone(), typed.clone()),
        other => panic!("expected a job confirmation, got {other:?}"),
    }
}

fn flash(m: &Model) -> String {
    m.flash.as_ref().map(|f| f.text.clone()).unwrap_or_default()
}

fn job_event(m: &mut Model, host: usize, event: JobEvent) {
    update(m, Msg::Job { host, event });
}

#[test]
fn d_on_a_production_host_wants_its_name_typed() {
    let mut m = at_host(0);
    // the cursor is on nginx of project proxy, which has no deploy: the host's only
    // stack with a deploy recipe is meant
    key(&mut m, Key::Char('G'));
    // the pre-flight is asked at once, and answers
    assert!(matches!(
        &key(&mut m, Key::Char('d'))[..],
        [Effect::Preflight { host: 0, id: 1, stack }] if stack == "course-supporter"
    ));
    preflight_passes(&mut m);
    let (host, request, details, typed) = confirm(&m);
    assert_eq!(host, 0);
    assert_eq!(
        request,
        JobRequest {
            stack: "course-supporter".into(),
            kind: JobKind::Deploy,
            opts: Default::default()
        }
    );
    assert_eq!(
        details,
        [
            opsdeck::model::preflight::STEP_LABEL,
            "record the image IDs in use (for a rollback)",
            "git pull --ff-only",
            "compose build",
            "compose up -d",
            "compose exec -T app alembic upgrade head",
            "wait healthy (up to 2m)",
        ]
    );
    assert_eq!(typed.as_deref(), Some(""));
    // y is just a letter of the name here; a wrong name is refused and the dialog stays
    keys(&mut m, "yes");
    assert!(key(&mut m, Key::Enter).is_empty());
    assert!(flash(&m).contains("type the host name course-supporter exactly"));
    assert!(matches!(m.overlay, Overlay::Confirm(_)));
    for _ in 0..3 {
        key(&mut m, Key::Backspace);
    }
    keys(&mut m, "course-supporter");
    let fx = key(&mut m, Key::Enter);
    assert_eq!(
        fx,
        vec![Effect::RunJob {
            host: 0,
            request: request.clone()
        }]
    );
    assert_eq!(m.overlay, Overlay::None);
    assert_eq!(m.view, View::Job(JobRef::Host(0)));
    let job = m.hosts[0].job.as_ref().unwrap();
    assert!(job.running());
    assert_eq!(job.steps.len(), 7);
    assert_eq!(job.action, "deploy");
    // Esc cancels a typed confirmation too
    let mut m = at_host(0);
    key(&mut m, Key::Char('d'));
    preflight_passes(&mut m);
    keys(&mut m, "course");
    assert!(key(&mut m, Key::Esc).is_empty());
    assert_eq!(m.overlay, Overlay::None);
    assert!(m.hosts[0].job.is_none());
}

#[test]
fn y_confirms_elsewhere_and_n_runs_nothing() {
    let mut m = at_host(1); // lila: not production
    key(&mut m, Key::Char('d'));
    preflight_passes(&mut m);
    let (_, request, details, typed) = confirm(&m);
    assert_eq!(typed, None);
    assert_eq!(request.kind, JobKind::Deploy);
    assert_eq!(details[2], "compose pull");
    assert!(key(&mut m, Key::Char('n')).is_empty());
    assert!(m.hosts[1].job.is_none());
    key(&mut m, Key::Char('d'));
    preflight_passes(&mut m);
    let fx = key(&mut m, Key::Char('y'));
    assert!(matches!(&fx[..], [Effect::RunJob { host: 1, .. }]));
}

#[test]
fn m_r_and_rollback_name_the_right_target() {
    let mut m = at_host(0);
    key(&mut m, Key::Char('m'));
    let (_, request, details, _) = confirm(&m);
    assert_eq!(request.kind, JobKind::Migrate);
    assert_eq!(details, ["compose exec -T app alembic upgrade head"]);
    key(&mut m, Key::Esc);
    // R opens the releases picker of the stack a deploy would go to (tests/releases_reducer.rs)
    let fx = key(&mut m, Key::Char('R'));
    assert!(
        matches!(&fx[..], [Effect::ReadReleases { host: 0, stack }] if stack == "course-supporter"),
        "{fx:?}"
    );
    key(&mut m, Key::Esc);
    // r restarts the selected container: app, of stack course-supporter
    key(&mut m, Key::Char('r'));
    let (_, request, details, _) = confirm(&m);
    assert_eq!(request.stack, "course-supporter");
    assert!(
        matches!(&request.kind, JobKind::Restart { name, id } if name == "app" && id.starts_with("a1"))
    );
    assert!(details[0].contains("course-supporter-app-1"));
    key(&mut m, Key::Esc);
    // the palette restarts the selected container's whole stack
    key(&mut m, Key::Char(':'));
    keys(&mut m, "restart-stack");
    key(&mut m, Key::Enter);
    let (_, request, details, _) = confirm(&m);
    assert_eq!(
        request,
        JobRequest {
            stack: "course-supporter".into(),
            kind: JobKind::RestartStack,
            opts: Default::default()
        }
    );
    assert!(details[0].contains("every container of course-supporter"));
    key(&mut m, Key::Esc);
    // on the duckdb host, a Coolify container outside compose: no stack, so no lock
    let mut m = at_host(2);
    key(&mut m, Key::Char('G'));
    key(&mut m, Key::Char('r'));
    let (_, request, _, _) = confirm(&m);
    assert_eq!(request.stack, "");
    assert!(matches!(&request.kind, JobKind::Restart { name, .. } if name == "coolify-proxy"));
    // migrate on a host whose stacks have no migrate recipe
    key(&mut m, Key::Esc);
    key(&mut m, Key::Char('m'));
    assert_eq!(m.overlay, Overlay::None);
    assert!(flash(&m).contains("no stack on duckdb-app has a migrate recipe"));
}

#[test]
fn custom_actions_run_from_their_key_and_the_palette() {
    let mut m = at_host(1);
    // `C` is lila's dangerous "restart caddy": it asks first
    assert!(key(&mut m, Key::Char('C')).is_empty());
    let (_, request, details, _) = confirm(&m);
    assert_eq!(
        request,
        JobRequest {
            stack: "lila".into(),
            kind: JobKind::Custom {
                name: "restart caddy".into()
            },
            opts: Default::default()
        }
    );
    assert_eq!(
        details,
        [
            "Reload the reverse proxy after a Caddyfile change",
            "compose restart caddy"
        ]
    );
    key(&mut m, Key::Esc);
    // and the palette offers it by name
    key(&mut m, Key::Char(':'));
    keys(&mut m, "action cad");
    key(&mut m, Key::Enter);
    let (_, request, _, _) = confirm(&m);
    assert!(matches!(request.kind, JobKind::Custom { .. }));
    key(&mut m, Key::Char('y'));
    assert_eq!(m.view, View::Job(JobRef::Host(1)));
    // keys of another host's actions mean nothing here
    let mut m = at_host(0);
    assert!(key(&mut m, Key::Char('C')).is_empty());
    assert_eq!(m.overlay, Overlay::None);
}

/// Moves the host view's cursor to the container named `name`.
fn select(m: &mut Model, name: &str) {
    key(m, Key::Char('g'));
    for _ in 0..30 {
        if m.selected_container()
            .is_some_and(|(_, c)| c.display_name() == name)
        {
            return;
        }
        key(m, Key::Down);
    }
    panic!("no container {name} in the host view");
}

#[test]
fn s_p_k_and_d_ask_for_what_the_containers_state_allows() {
    use opsdeck::model::job::{ContainerOp, Signal};
    let mut m = at_host(1);
    let op = |m: &Model| match confirm(m).1.kind {
        JobKind::Container { op, .. } => op,
        other => panic!("expected a container job, got {other:?}"),
    };
    // a running container: s stops it, p pauses it, K signals it (TERM first)
    select(&mut m, "caddy");
    for (k, want) in [
        ('s', ContainerOp::Stop),
        ('p', ContainerOp::Pause),
        ('K', ContainerOp::Kill(Signal::Term)),
    ] {
        key(&mut m, Key::Char(k));
        assert_eq!(op(&m), want, "{k}");
        let (_, request, details, typed) = confirm(&m);
        assert_eq!(request.stack, "lila");
        assert_eq!(typed, None);
        assert!(details[0].contains("lila-caddy-1"), "{details:?}");
        if k != 'K' {
            key(&mut m, Key::Esc);
        }
    }
    // Tab, or the arrows, choose the signal; the question and the details follow it
    key(&mut m, Key::Tab);
    key(&mut m, Key::Tab);
    assert_eq!(op(&m), ContainerOp::Kill(Signal::Hup));
    assert!(
        confirm(&m).2[0].contains("kill -s HUP"),
        "{:?}",
        confirm(&m).2
    );
    assert!(confirm(&m).1.question("lila").starts_with("Send SIGHUP to"));
    key(&mut m, Key::Left);
    assert_eq!(op(&m), ContainerOp::Kill(Signal::Kill));
    key(&mut m, Key::BackTab);
    key(&mut m, Key::BackTab);
    assert_eq!(op(&m), ContainerOp::Kill(Signal::Int));
    let fx = key(&mut m, Key::Char('y'));
    match &fx[..] {
        [Effect::RunJob { host: 1, request }] => assert!(matches!(
            &request.kind,
            JobKind::Container { op: ContainerOp::Kill(Signal::Int), id, name }
                if id.starts_with("b2") && name == "lila-caddy-1"
        )),
        other => panic!("expected the kill to run, got {other:?}"),
    }
    assert_eq!(
        m.hosts[1].job.as_ref().unwrap().action,
        "kill -s INT lila-caddy-1"
    );
    // an exited container: s starts it, D removes it; it cannot be paused or signalled
    let mut m = at_host(1);
    select(&mut m, "forgejo");
    key(&mut m, Key::Char('s'));
    assert_eq!(op(&m), ContainerOp::Start);
    key(&mut m, Key::Esc);
    key(&mut m, Key::Char('D'));
    assert_eq!(op(&m), ContainerOp::Remove);
    assert!(
        confirm(&m)
            .1
            .question("lila")
            .starts_with("Remove the stopped container")
    );
    key(&mut m, Key::Esc);
    for (k, why) in [('p', "nothing to pause"), ('K', "nothing to signal")] {
        m.flash = None;
        assert!(key(&mut m, Key::Char(k)).is_empty());
        assert_eq!(m.overlay, Overlay::None);
        assert!(flash(&m).contains(why), "{k}: {}", flash(&m));
    }
    // a running one is not removed
    select(&mut m, "caddy");
    key(&mut m, Key::Char('D'));
    assert_eq!(m.overlay, Overlay::None);
    assert!(flash(&m).contains("stop it first"), "{}", flash(&m));
    // a paused one: p unpauses, s stops
    m.hosts[1].containers[0].state = opsdeck::model::RunState::Paused;
    select(&mut m, "caddy");
    key(&mut m, Key::Char('p'));
    assert_eq!(op(&m), ContainerOp::Unpause);
    key(&mut m, Key::Esc);
    key(&mut m, Key::Char('s'));
    assert_eq!(op(&m), ContainerOp::Stop);
    // on a production host the name is typed, and Tab still chooses the signal
    let mut m = at_host(0);
    key(&mut m, Key::Char('K'));
    key(&mut m, Key::Tab);
    assert_eq!(op(&m), ContainerOp::Kill(Signal::Kill));
    assert_eq!(confirm(&m).3.as_deref(), Some(""));
}

#[test]
fn read_only_refuses_every_action_and_says_why() {
    for global in [true, false] {
        let mut m = at_host(1);
        if global {
            m.read_only = true;
        } else {
            m.hosts[1].read_only = true;
        }
        // (R opens the releases picker, which reads only; rolling back from it is refused:
        // tests/releases_reducer.rs)
        for k in ['d', 'm', 'r', 'b', 'C', 's', 'p', 'K', 'D'] {
            m.flash = None;
            assert!(key(&mut m, Key::Char(k)).is_empty(), "{k}");
            assert_eq!(m.overlay, Overlay::None, "{k}");
            // read-only is said first, even where the stack has no recipe for it (m)
            let text = flash(&m);
            assert!(text.contains("read-only"), "{k}: {text}");
        }
        for action in [
            "deploy",
            "restart-stack",
            "stop-start",
            "kill",
            "action restart caddy",
        ] {
            key(&mut m, Key::Char(':'));
            keys(&mut m, action);
            assert!(key(&mut m, Key::Enter).is_empty(), "{action}");
            assert_eq!(m.overlay, Overlay::None, "{action}");
        }
        assert!(m.hosts[1].job.is_none());
    }
}

#[test]
fn one_job_per_host_and_only_on_a_connected_host() {
    let mut m = at_host(1);
    key(&mut m, Key::Char('d'));
    preflight_passes(&mut m);
    key(&mut m, Key::Char('y'));
    key(&mut m, Key::Esc);
    assert_eq!(m.view, View::Host { host: 1 });
    key(&mut m, Key::Char('r'));
    assert_eq!(m.overlay, Overlay::None);
    assert!(flash(&m).contains("a job is already running on lila"));
    // other hosts are free
    key(&mut m, Key::Tab);
    key(&mut m, Key::Char('d'));
    preflight_passes(&mut m);
    assert!(matches!(m.overlay, Overlay::Confirm(_)));
}

#[test]
fn job_events_fill_the_pane_and_the_history() {
    let mut m = at_host(0);
    key(&mut m, Key::Char('d'));
    preflight_passes(&mut m);
    keys(&mut m, "course-supporter");
    key(&mut m, Key::Enter);
    for e in deploy_events() {
        job_event(&mut m, 0, e);
    }
    let job = m.hosts[0].job.clone().unwrap();
    assert_eq!(job.current(), Some(2));
    assert!(matches!(
        job.steps[1].state,
        StepState::Done {
            exit: Some(0),
            millis: 420
        }
    ));
    assert_eq!(job.steps[2].state, StepState::Running);
    assert_eq!(job.output.len(), 12);
    assert_eq!(job.short(), "⟳ deploy 3/6");
    // scrolled back, new lines keep the viewport on the same lines
    key(&mut m, Key::Up);
    key(&mut m, Key::Up);
    assert_eq!(m.job_scroll, 2);
    job_event(
        &mut m,
        0,
        JobEvent::Output(vec![JobLine {
            step: Some(2),
            kind: LineKind::Out,
            text: "Step 3/6 : COPY . /app".into(),
        }]),
    );
    assert_eq!(m.job_scroll, 3);
    key(&mut m, Key::Char('G'));
    assert_eq!(m.job_scroll, 0);
    // elapsed time on screen: ticks redraw while the job runs
    m.dirty = false;
    update(
        &mut m,
        Msg::Tick {
            now: opsdeck::model::job::Job::new("", "", "", vec![], now())
                .started
                .checked_add(jiff::SignedDuration::from_secs(5))
                .unwrap(),
        },
    );
    assert!(m.dirty);
    job_event(
        &mut m,
        0,
        JobEvent::StepFinished {
            index: 2,
            exit: Some(1),
            ok: false,
            millis: 3000,
        },
    );
    job_event(
        &mut m,
        0,
        JobEvent::Finished(Err("step 3/6 (compose build): exit status 1".into())),
    );
    let job = m.hosts[0].job.as_ref().unwrap();
    assert!(!job.running());
    assert_eq!(job.steps[3].state, StepState::Skipped);
    assert_eq!(job.short(), "✖ deploy");
    assert_eq!(m.history.len(), 1);
    assert_eq!(m.history[0].action, "deploy");
    let f = m.flash.as_ref().unwrap();
    assert_eq!(f.level, Level::Error);
    assert!(
        f.text.contains("course-supporter: deploy FAILED: step 3/6"),
        "{}",
        f.text
    );
    // the host is free again
    key(&mut m, Key::Esc);
    key(&mut m, Key::Char('m'));
    assert!(matches!(m.overlay, Overlay::Confirm(_)));
}

#[test]
fn x_cancels_after_a_yes_and_q_asks_while_jobs_run() {
    let mut m = at_host(1);
    key(&mut m, Key::Char('d'));
    preflight_passes(&mut m);
    key(&mut m, Key::Char('y'));
    assert!(key(&mut m, Key::Char('x')).is_empty());
    assert_eq!(m.overlay, Overlay::Confirm(Confirm::CancelJob { host: 1 }));
    assert!(key(&mut m, Key::Char('n')).is_empty());
    assert!(!m.hosts[1].job.as_ref().unwrap().cancelling);
    key(&mut m, Key::Char('x'));
    assert_eq!(
        key(&mut m, Key::Char('y')),
        vec![Effect::CancelJob { host: 1 }]
    );
    assert!(m.hosts[1].job.as_ref().unwrap().cancelling);
    // q while it runs: asks, names the job, n stays
    key(&mut m, Key::Char('q'));
    assert_eq!(
        m.overlay,
        Overlay::Confirm(Confirm::Quit {
            running: vec!["deploy on lila".into()]
        })
    );
    key(&mut m, Key::Esc);
    assert!(!m.should_quit);
    key(&mut m, Key::Char('q'));
    key(&mut m, Key::Char('y'));
    assert!(m.should_quit);
    // Ctrl-C never asks
    let mut m = at_host(1);
    key(&mut m, Key::Char('d'));
    preflight_passes(&mut m);
    key(&mut m, Key::Char('y'));
    key(&mut m, Key::Ctrl('c'));
    assert!(m.should_quit);
    // nothing to cancel in a finished job's pane
    let mut m = at_host(1);
    key(&mut m, Key::Char('d'));
    preflight_passes(&mut m);
    key(&mut m, Key::Char('y'));
    job_event(&mut m, 1, JobEvent::Finished(Ok("3 steps in 40s".into())));
    key(&mut m, Key::Char('x'));
    assert_eq!(m.overlay, Overlay::None);
    assert!(flash(&m).contains("no running job"));
}

fn record(host: &str, action: &str, outcome: &str, secs_ago: i64) -> JobRecord {
    let mut r = JobRecord::new(
        ago(secs_ago).to_string(),
        "alice".into(),
        host,
        host,
        action,
    );
    r.outcome = outcome.into();
    r.duration_ms = 42_000;
    r.steps = vec![StepRecord {
        step: "compose pull".into(),
        exit: Some(0),
        duration_ms: 42_000,
        outcome: "ok".into(),
    }];
    r.output = vec![JobLine {
        step: Some(0),
        kind: LineKind::Err,
        text: "Pulling api ... done".into(),
    }];
    r
}

#[test]
fn the_jobs_list_shows_running_jobs_then_history_and_opens_them() {
    let mut m = fleet();
    update(
        &mut m,
        Msg::History(vec![
            record("lila", "deploy", "ok", 7200),
            record(
                "course-supporter",
                "migrate",
                "failed: step 1/1 (x): exit status 1",
                3600,
            ),
        ]),
    );
    // newest first
    assert_eq!(m.history[0].action, "migrate");
    assert_eq!(
        m.history[0].outcome,
        Some(Err("step 1/1 (x): exit status 1".into()))
    );
    assert_eq!(m.history[1].user, "alice");
    key(&mut m, Key::Down);
    key(&mut m, Key::Enter); // lila
    key(&mut m, Key::Char('d'));
    preflight_passes(&mut m);
    key(&mut m, Key::Char('y'));
    key(&mut m, Key::Esc);
    key(&mut m, Key::Char('F'));
    key(&mut m, Key::Char('J'));
    assert_eq!(m.view, View::Jobs);
    assert_eq!(
        m.job_list(),
        [JobRef::Host(1), JobRef::History(0), JobRef::History(1)]
    );
    key(&mut m, Key::Down);
    key(&mut m, Key::Enter);
    assert_eq!(m.view, View::Job(JobRef::History(0)));
    let shown = m.job(JobRef::History(0)).unwrap();
    assert_eq!(shown.output[0].text, "Pulling api ... done");
    // the live job finishing moves the history along under the viewer
    job_event(&mut m, 1, JobEvent::Finished(Ok("done".into())));
    assert_eq!(m.view, View::Job(JobRef::History(1)));
    assert_eq!(m.job(JobRef::History(1)).unwrap().action, "migrate");
    key(&mut m, Key::Esc);
    assert_eq!(m.view, View::Jobs);
    // the filter narrows the list
    key(&mut m, Key::Char('/'));
    keys(&mut m, "migr");
    key(&mut m, Key::Enter);
    assert_eq!(m.job_list(), [JobRef::History(1)]);
    key(&mut m, Key::Esc);
    key(&mut m, Key::Esc);
    assert_eq!(m.view, View::Fleet);
    // J in a host view with a job opens that job
    key(&mut m, Key::Down);
    key(&mut m, Key::Enter);
    key(&mut m, Key::Char('J'));
    assert_eq!(m.view, View::Job(JobRef::Host(1)));
    key(&mut m, Key::Esc);
    assert_eq!(m.view, View::Host { host: 1 });
}

#[test]
fn jobs_on_other_hosts_keep_running_while_the_operator_looks_elsewhere() {
    let mut m = at_host(1);
    key(&mut m, Key::Char('d'));
    preflight_passes(&mut m);
    key(&mut m, Key::Char('y'));
    key(&mut m, Key::Char('F'));
    assert_eq!(m.view, View::Fleet);
    job_event(&mut m, 1, JobEvent::StepStarted { index: 1 });
    assert_eq!(m.hosts[1].job.as_ref().unwrap().current(), Some(1));
    job_event(&mut m, 1, JobEvent::Finished(Ok("4 steps in 1m".into())));
    assert_eq!(
        m.view,
        View::Fleet,
        "a finished job does not steal the screen"
    );
    let f = m.flash.as_ref().unwrap();
    assert_eq!(f.level, Level::Info);
    assert!(f.text.contains("lila: deploy done: 4 steps in 1m"));
}

#[test]
fn e_and_s_ask_the_runtime_for_a_shell_where_one_can_run() {
    let shell = |fx: &[Effect]| match fx {
        [
            Effect::Shell {
                host,
                container,
                stack,
            },
        ] => (*host, container.clone(), stack.clone()),
        other => panic!("expected a shell, got {other:?}"),
    };
    // e: the selected running container, by id, named for the audit log
    let mut m = at_host(1);
    select(&mut m, "caddy");
    let (host, container, stack) = shell(&key(&mut m, Key::Char('e')));
    let (id, name) = container.unwrap();
    assert_eq!(
        (host, name.as_str(), stack.as_str()),
        (1, "lila-caddy-1", "lila")
    );
    assert!(id.starts_with("b2"), "{id}");
    assert_eq!(flash(&m), "opening a shell in caddy on lila…");
    assert_eq!(
        m.overlay,
        Overlay::None,
        "no confirmation: a shell changes nothing by itself"
    );
    // and from that container's log
    key(&mut m, Key::Enter);
    assert!(matches!(m.view, View::Container { .. }));
    let (_, again, _) = shell(&key(&mut m, Key::Char('e')));
    assert_eq!(again.unwrap().0, id);
    key(&mut m, Key::Esc);
    // a container that is not running has no shell to give
    select(&mut m, "forgejo");
    assert!(key(&mut m, Key::Char('e')).is_empty());
    assert!(
        flash(&m).contains("forgejo is not running: s starts it"),
        "{}",
        flash(&m)
    );
    // S: the host's own shell, from its view and from the fleet's row
    assert_eq!(
        shell(&key(&mut m, Key::Char('S'))),
        (1, None, String::new())
    );
    let mut f = fleet();
    key(&mut f, Key::Down);
    key(&mut f, Key::Down);
    assert_eq!(shell(&key(&mut f, Key::Char('S'))).0, 2);
    // a host that is down: nothing to open
    key(&mut f, Key::Down);
    assert!(key(&mut f, Key::Char('S')).is_empty());
    assert!(
        flash(&f).contains("staging is not connected"),
        "{}",
        flash(&f)
    );
    // read-only, for the whole console or this host: refused, and said
    for global in [true, false] {
        let mut m = at_host(1);
        select(&mut m, "caddy");
        if global {
            m.read_only = true;
        } else {
            m.hosts[1].read_only = true;
        }
        for k in ['e', 'S'] {
            m.flash = None;
            assert!(key(&mut m, Key::Char(k)).is_empty(), "{k}");
            assert!(flash(&m).starts_with("read-only:"), "{k}: {}", flash(&m));
        }
    }
    // how it ended comes back as a notice, and its record joins the history
    let mut m = at_host(1);
    update(
        &mut m,
        Msg::Notice {
            level: Level::Warn,
            text: "shell in caddy on lila ended: exit 127".into(),
        },
    );
    assert_eq!(flash(&m), "shell in caddy on lila ended: exit 127");
    let mut r = record("lila", "shell", "ok", 5);
    r.container = Some("lila-caddy-1".into());
    update(&mut m, Msg::Recorded(Box::new(r)));
    assert_eq!(m.history[0].action, "shell");
}

fn shown(m: &Model) -> Option<opsdeck::model::preflight::Shown> {
    match &m.overlay {
        Overlay::Confirm(Confirm::Job { preflight, .. }) => preflight.clone(),
        _ => None,
    }
}

fn answer(m: &mut Model, host: usize, id: u64, stack: &str, report: Result<Report, String>) {
    update(
        m,
        Msg::Preflight {
            host,
            id,
            stack: stack.into(),
            report,
        },
    );
}

#[test]
fn a_deploy_waits_for_its_preflight_and_only_its_own_answer_counts() {
    let mut m = at_host(1); // lila: not production
    let fx = key(&mut m, Key::Char('d'));
    assert_eq!(
        fx,
        vec![Effect::Preflight {
            host: 1,
            id: 1,
            stack: "lila".into()
        }]
    );
    assert_eq!(shown(&m), Some(Shown::Checking { id: 1 }));
    // y before the report: nothing runs, and it says why
    assert!(key(&mut m, Key::Char('y')).is_empty());
    assert!(flash(&m).contains("still checking"), "{}", flash(&m));
    assert!(matches!(m.overlay, Overlay::Confirm(_)));
    // closed and asked again: the first answer is late, and ignored
    key(&mut m, Key::Esc);
    key(&mut m, Key::Char('d'));
    assert_eq!(shown(&m), Some(Shown::Checking { id: 2 }));
    answer(&mut m, 1, 1, "lila", Ok(preflight_refuses()));
    answer(&mut m, 0, 2, "lila", Ok(preflight_refuses()));
    answer(&mut m, 1, 2, "other", Ok(preflight_refuses()));
    assert_eq!(shown(&m), Some(Shown::Checking { id: 2 }));
    answer(&mut m, 1, 2, "lila", Ok(preflight_ok()));
    assert_eq!(shown(&m), Some(Shown::Done(preflight_ok())));
    let fx = key(&mut m, Key::Char('y'));
    let [Effect::RunJob { host: 1, request }] = &fx[..] else {
        panic!("{fx:?}")
    };
    assert!(!request.opts.force);
    // an answer to a dialog no longer open changes nothing
    let before = m.overlay.clone();
    answer(&mut m, 1, 2, "lila", Ok(preflight_refuses()));
    assert_eq!(m.overlay, before);
}

#[test]
fn warnings_want_force_typed_and_the_job_then_runs_forced() {
    let mut m = at_host(1);
    key(&mut m, Key::Char('d'));
    answer(&mut m, 1, 1, "lila", Ok(preflight_warns()));
    let (_, _, _, typed) = confirm(&m);
    assert_eq!(typed.as_deref(), Some(""));
    // y is a letter now; a wrong word is refused and the dialog stays
    keys(&mut m, "y");
    assert!(key(&mut m, Key::Enter).is_empty());
    assert!(
        flash(&m).contains("type \"force\" exactly"),
        "{}",
        flash(&m)
    );
    key(&mut m, Key::Backspace);
    keys(&mut m, "force");
    let fx = key(&mut m, Key::Enter);
    let [Effect::RunJob { host: 1, request }] = &fx[..] else {
        panic!("{fx:?}")
    };
    assert!(
        request.opts.force,
        "typed force: the job's pre-flight goes on past warnings"
    );
    assert_eq!(m.hosts[1].job.as_ref().unwrap().steps.len(), 5);
}

#[test]
fn on_a_production_host_warnings_want_force_and_the_name() {
    let mut m = at_host(0);
    key(&mut m, Key::Char('d'));
    keys(&mut m, "course-supporter");
    // Enter before the report: nothing runs
    assert!(key(&mut m, Key::Enter).is_empty());
    assert!(flash(&m).contains("still checking"));
    answer(&mut m, 0, 1, "course-supporter", Ok(preflight_warns()));
    assert!(key(&mut m, Key::Enter).is_empty());
    assert!(
        flash(&m).contains("type \"force course-supporter\" exactly"),
        "{}",
        flash(&m)
    );
    for _ in 0.."course-supporter".len() {
        key(&mut m, Key::Backspace);
    }
    keys(&mut m, "force course-supporter");
    let fx = key(&mut m, Key::Enter);
    assert!(
        matches!(&fx[..], [Effect::RunJob { host: 0, request }] if request.opts.force),
        "{fx:?}"
    );
}

#[test]
fn a_refusal_cannot_be_confirmed_nor_can_a_preflight_that_did_not_run() {
    for report in [
        Ok(preflight_refuses()),
        Err("cannot run sh: the SSH channel closed".to_string()),
    ] {
        let mut m = at_host(1);
        key(&mut m, Key::Char('d'));
        answer(&mut m, 1, 1, "lila", report.clone());
        let Some(Shown::Done(r)) = shown(&m) else {
            panic!("{:?}", m.overlay)
        };
        assert_eq!(r.verdict(), Verdict::Refuse);
        // warnings and a refusal: nothing to type, nothing to confirm
        assert!(key(&mut m, Key::Char('y')).is_empty());
        assert!(key(&mut m, Key::Enter).is_empty());
        assert!(m.hosts[1].job.is_none());
        let text = flash(&m);
        assert!(text.contains("refused by the pre-flight"), "{text}");
        if report.is_ok() {
            assert!(
                text.contains("checkout has changes: course_supporter/api.py"),
                "{text}"
            );
        } else {
            assert!(text.contains("could not run: cannot run sh"), "{text}");
        }
        key(&mut m, Key::Esc);
        assert_eq!(m.overlay, Overlay::None);
    }
}
