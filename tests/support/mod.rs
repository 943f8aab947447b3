//! Hand-built models for reducer and screen tests: the three reference deployments, plus
//! a host that is down, with deterministic metrics and logs.
#![allow(dead_code)]
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

pub mod svg;
pub mod tui;

use jiff::Timestamp;
use opsdeck::checks::{CheckStatus, Failure, TlsStatus};
use opsdeck::collect::backups::{BackupStatus, FileEntry, Verdict};
use opsdeck::model::host::Disk;
use opsdeck::model::{
    Container, DockerState, Health, HostConn, HostState, Key, LogLine, Metrics, Model, Msg,
    RunState, Stream, update,
};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

pub const NOW: i64 = 1_795_000_000;

pub fn now() -> Timestamp {
    Timestamp::from_second(NOW).unwrap()
}

pub fn ago(secs: i64) -> Timestamp {
    Timestamp::from_second(NOW - secs).unwrap()
}

pub fn container(
    id: &str,
    project: Option<&str>,
    service: &str,
    image: &str,
    state: RunState,
    health: Option<Health>,
) -> Container {
    let running = matches!(state, RunState::Running);
    let name = match project {
        Some(p) => format!("{p}-{service}-1"),
        None => service.to_string(),
    };
    Container {
        id: format!("{id:0<64}"),
        name,
        project: project.map(str::to_string),
        service: project.map(|_| service.to_string()),
        image: image.into(),
        started_at: running.then(|| ago(3 * 3600 + 120)),
        state,
        health,
        restart_count: Some(0),
        ports: Vec::new(),
        // Counters are read only for running containers, as the workers do.
        cpu_percent: running.then_some(1.5),
        mem_bytes: running.then_some(120 * 1024 * 1024),
    }
}

fn metrics(cpu: f64, mem_used_gib: u64, mem_total_gib: u64, cores: usize) -> Metrics {
    Metrics {
        cpu_percent: cpu,
        per_core: (0..cores)
            .map(|i| (cpu + i as f64 * 7.0).min(100.0))
            .collect(),
        mem_used_bytes: mem_used_gib << 30,
        mem_total_bytes: mem_total_gib << 30,
        swap_used_bytes: 0,
        swap_total_bytes: 1 << 30,
        load: [0.42, 0.35, 0.30],
        disks: vec![
            Disk {
                mount: "/".into(),
                used_bytes: 21 << 30,
                total_bytes: 32 << 30,
            },
            Disk {
                mount: "/var/lib/docker".into(),
                used_bytes: 29 << 30,
                total_bytes: 32 << 30,
            },
        ],
        net_rx_bps: 125_000.0,
        net_tx_bps: 48_000.0,
        uptime_secs: 12 * 86_400,
    }
}

/// Sixty samples of a wave, so graphs have a recognisable shape.
fn fill(h: &mut HostState, base: f64, mem_used: u64, mem_total: u64, cores: usize) {
    for i in 0..60i64 {
        let wave = ((i % 12) as f64 - 6.0).abs() * 5.0;
        let mut m = metrics(base + wave, mem_used, mem_total, cores);
        m.net_rx_bps = 100_000.0 + wave * 10_000.0;
        m.net_tx_bps = 40_000.0 + wave * 3_000.0;
        m.load[0] = 0.3 + wave / 50.0;
        h.apply_metrics(ago((60 - i) * 2), m);
    }
}

/// A check result; `tls` is the certificate's days left for an https check.
pub fn check(
    name: &str,
    status: Option<u16>,
    error: Option<&str>,
    tls: Option<i64>,
) -> CheckStatus {
    CheckStatus {
        stack: None,
        name: name.into(),
        url: format!("https://{name}.example/health"),
        via_ssh: false,
        ok: error.is_none(),
        status,
        expect_status: 200,
        latency_ms: status.map(|_| 42),
        error: error.map(str::to_string),
        tls: tls.map(|days| TlsStatus {
            days_left: days,
            not_after: NOW + days * 86_400,
            issuer: "R11".into(),
        }),
        tls_warn_days: 14,
        at: NOW,
        last_failure: error.map(|e| Failure {
            at: NOW,
            error: e.into(),
        }),
    }
}

fn backup(
    host: usize,
    stack: &str,
    name: &str,
    verdict: Verdict,
    newest: Option<(&str, i64, u64)>,
    count: usize,
) -> BackupStatus {
    BackupStatus {
        host,
        stack: stack.into(),
        name: name.into(),
        dir: "~/backups".into(),
        newest: newest.map(|(n, age, size)| FileEntry {
            name: n.into(),
            mtime: NOW - age,
            size,
        }),
        count,
        total_bytes: newest.map_or(0, |(_, _, s)| s * count as u64),
        max_age_secs: 26 * 3600,
        verdict,
        error: None,
        recipe: (name != "uploads").then(|| format!("pg_dump of database {stack} as postgres in service db (custom format) into ~/backups")),
    }
}

pub fn fleet() -> Model {
    let mut cs = HostState::new("course-supporter", "deploy@203.0.113.10", 2);
    cs.production = true;
    cs.conn = HostConn::Up;
    fill(&mut cs, 12.0, 3, 8, 2);
    cs.docker = DockerState::Up {
        version: "28.2.2".into(),
    };
    let mut app = container(
        "a1",
        Some("course-supporter"),
        "app",
        "course-supporter-app:latest",
        RunState::Running,
        Some(Health::Healthy),
    );
    app.ports = vec!["8000/tcp".into()];
    cs.containers = vec![
        app,
        container(
            "a2",
            Some("course-supporter"),
            "db",
            "pgvector/pgvector:pg17",
            RunState::Running,
            Some(Health::Healthy),
        ),
        container(
            "a3",
            Some("course-supporter"),
            "netdata",
            "netdata/netdata:stable",
            RunState::Running,
            None,
        ),
        {
            let mut n = container(
                "a4",
                Some("proxy"),
                "nginx",
                "nginx:1.27-alpine",
                RunState::Running,
                None,
            );
            n.ports = vec!["0.0.0.0:443→443/tcp".into(), "0.0.0.0:80→80/tcp".into()];
            n
        },
    ];
    cs.containers_at = Some(ago(1));
    cs.checks = vec![check("api", Some(200), None, Some(45))];
    cs.backups = vec![
        backup(
            0,
            "course-supporter",
            "db",
            Verdict::Stale,
            Some(("course-supporter-20261120-2322.dump", 60 * 3600, 6_833_000)),
            5,
        ),
        backup(
            0,
            "course-supporter",
            "uploads",
            Verdict::Suspicious,
            Some(("uploads-20261123-0622.tar.gz", 5 * 3600, 20_691)),
            4,
        ),
    ];

    let mut lila = HostState::new("lila", "lila@lila.example.org", 2);
    lila.conn = HostConn::Up;
    fill(&mut lila, 30.0, 2, 4, 2);
    lila.docker = DockerState::Up {
        version: "20.10.24".into(),
    };
    let mut api = container(
        "b1",
        Some("lila"),
        "api",
        "git.lilastudy.com/forgejo-lila/lila-api:latest",
        RunState::Running,
        Some(Health::Unhealthy),
    );
    api.restart_count = Some(3);
    api.cpu_percent = Some(87.5);
    let mut caddy = container(
        "b2",
        Some("lila"),
        "caddy",
        "caddy:alpine",
        RunState::Running,
        None,
    );
    caddy.ports = vec!["0.0.0.0:443→443/tcp".into(), "0.0.0.0:80→80/tcp".into()];
    lila.containers = vec![
        caddy,
        api,
        container(
            "b3",
            Some("lila"),
            "web",
            "git.lilastudy.com/forgejo-lila/lila-web:latest",
            RunState::Running,
            None,
        ),
        container(
            "b4",
            Some("lila"),
            "database",
            "postgres:16",
            RunState::Running,
            Some(Health::Healthy),
        ),
        container(
            "b5",
            Some("lila"),
            "forgejo",
            "codeberg.org/forgejo/forgejo:9",
            RunState::Exited { code: Some(137) },
            None,
        ),
    ];
    lila.containers_at = Some(ago(1));
    lila.checks = vec![
        check("site", Some(200), None, Some(61)),
        check(
            "api",
            Some(503),
            Some("expected status 200 got 503"),
            Some(61),
        ),
    ];
    lila.backups = vec![backup(
        1,
        "lila",
        "db",
        Verdict::Fresh,
        Some(("lila-20261123-0300.sql.gz", 3 * 3600, 1_200_000)),
        7,
    )];

    let mut duck = HostState::new("duckdb-app", "app@198.51.100.7", 2);
    duck.conn = HostConn::Up;
    fill(&mut duck, 4.0, 1, 2, 1);
    duck.docker = DockerState::Up {
        version: "27.5.1".into(),
    };
    duck.containers = vec![
        container(
            "c1",
            Some("app"),
            "backend",
            "app-backend",
            RunState::Running,
            Some(Health::Healthy),
        ),
        container(
            "c2",
            Some("app"),
            "frontend",
            "app-frontend",
            RunState::Running,
            Some(Health::Starting),
        ),
        container(
            "c3",
            Some("app"),
            "nginx",
            "nginx:stable",
            RunState::Running,
            None,
        ),
        container(
            "c4",
            None,
            "coolify-proxy",
            "traefik:v3.1",
            RunState::Running,
            None,
        ),
    ];
    duck.containers_at = Some(ago(1));
    duck.backups = vec![backup(2, "app", "app.db", Verdict::Missing, None, 0)];
    duck.checks = vec![
        check("backend", Some(200), None, None),
        check("site", Some(200), None, Some(3)),
    ];

    let mut down = HostState::new("staging", "root@192.0.2.44", 2);
    down.conn = HostConn::Down {
        since: ago(190),
        reason: "connect 192.0.2.44:22: connection refused (retry in 8s)".into(),
    };

    let mut hosts = vec![cs, lila, duck, down];
    // What each stack offers, straight from the committed example inventory.
    let example = opsdeck::config::parse_str(
        include_str!("../../hosts.toml"),
        std::path::Path::new("hosts.toml"),
    )
    .unwrap();
    for h in &mut hosts {
        if let Some(cfg) = example.hosts.iter().find(|c| c.name.get_ref() == &h.name) {
            h.stacks = cfg
                .stacks
                .iter()
                .map(opsdeck::jobs::plan::stack_info)
                .collect();
        }
    }
    let mut model = Model::new(hosts, now());
    model.source = "hosts.toml (working directory)".into();
    model.size = (80, 24);
    model
}

pub fn key(model: &mut Model, k: Key) -> Vec<opsdeck::model::Effect> {
    update(model, Msg::Key(k))
}

pub fn keys(model: &mut Model, text: &str) {
    for c in text.chars() {
        key(model, Key::Char(c));
    }
}

/// The pre-flight a deploy's confirmation waits for, answered with `report`; nothing
/// when no confirmation waits for one.
pub fn preflight_answers(model: &mut Model, report: opsdeck::model::preflight::Report) {
    use opsdeck::model::preflight::Shown;
    use opsdeck::model::{Confirm, Overlay};
    let Overlay::Confirm(Confirm::Job {
        host,
        request,
        preflight: Some(Shown::Checking { id }),
        ..
    }) = &model.overlay
    else {
        return;
    };
    let msg = Msg::Preflight {
        host: *host,
        id: *id,
        stack: request.stack.clone(),
        report: Ok(report),
    };
    update(model, msg);
}

/// A report of course-supporter's kind, every check passing.
pub fn preflight_ok() -> opsdeck::model::preflight::Report {
    use opsdeck::model::preflight::{Item, Report, Topic, Verdict};
    Report {
        items: vec![
            Item::new(
                Topic::Disk,
                Verdict::Ok,
                "Docker's root /var/lib/docker: 48 % free (47.6 GB)",
            ),
            Item::new(
                Topic::Disk,
                Verdict::Ok,
                "~/backups/course-supporter, ~/backups/uploads: 48 % free (47.6 GB) on /",
            ),
            Item::new(Topic::Lock, Verdict::Ok, "no other job holds the lock"),
            Item::new(Topic::Env, Verdict::Ok, "env file .env.prod present"),
            Item::new(
                Topic::Checkout,
                Verdict::Ok,
                "checkout clean (main at 9c4423a)",
            ),
            Item::new(
                Topic::Origin,
                Verdict::Ok,
                "2 commits behind origin/main: 2 commits to deploy",
            ),
            Item::new(Topic::Compose, Verdict::Ok, "compose config -q passes"),
        ],
    }
}

/// [`preflight_ok`] with a level checkout and a nearly full backup disk: two warnings.
pub fn preflight_warns() -> opsdeck::model::preflight::Report {
    use opsdeck::model::preflight::{Item, Topic, Verdict};
    let mut r = preflight_ok();
    r.items[1] = Item::new(
        Topic::Disk,
        Verdict::Warn,
        "~/backups/course-supporter: 3 % free (31.5 MB) on /srv/backups: under 10 % free",
    );
    r.items[5] = Item::new(
        Topic::Origin,
        Verdict::Warn,
        "nothing new to deploy: level with origin/main at 9c4423a",
    );
    r
}

/// [`preflight_ok`] with a modified tracked file: refused.
pub fn preflight_refuses() -> opsdeck::model::preflight::Report {
    use opsdeck::model::preflight::{Item, Topic, Verdict};
    let mut r = preflight_warns();
    r.items[4] = Item::new(
        Topic::Checkout,
        Verdict::Refuse,
        "checkout has changes: course_supporter/api.py",
    );
    r
}

/// The pre-flight a deploy's confirmation waits for, every check passing.
pub fn preflight_passes(model: &mut Model) {
    preflight_answers(model, preflight_ok());
}

pub fn log_lines(n: usize) -> Vec<LogLine> {
    (0..n)
        .map(|i| LogLine {
            time: format!("10:{:02}:{:02}", (i / 60) % 60, i % 60),
            at: None,
            source: None,
            stream: if i % 7 == 3 {
                Stream::Stderr
            } else {
                Stream::Stdout
            },
            text: match i % 5 {
                0 => format!("INFO:     127.0.0.1:5{i:04} - \"GET /health HTTP/1.1\" 200 OK"),
                1 => format!(
                    "\u{1b}[32mINFO\u{1b}[0m request id={i} path=/api/courses took {}ms",
                    i % 40
                ),
                2 => format!("worker {}: heartbeat", i % 2),
                3 => format!(
                    "\u{1b}[31mERROR\u{1b}[0m database timeout after 5000ms (attempt {})",
                    i % 3 + 1
                ),
                _ => format!("DEBUG cache hit ratio 0.{:02}", i % 100),
            },
        })
        .collect()
}

/// The fleet model with lila's api container open and 200 log lines received.
pub fn container_view() -> Model {
    let mut m = fleet();
    key(&mut m, Key::Down);
    key(&mut m, Key::Enter);
    // lila's containers sort api, caddy, database, forgejo, web: the cursor is on api.
    key(&mut m, Key::Enter);
    let (host, id) = match &m.view {
        opsdeck::model::View::Container { host, id } => (*host, id.clone()),
        v => panic!("expected the container view, got {v:?}"),
    };
    update(
        &mut m,
        Msg::LogLines {
            host,
            id,
            lines: log_lines(200),
        },
    );
    m
}

/// Every event a deploy of course-supporter sends up to its third step, as a worker
/// would: the model shows a job in the middle of `compose build`.
pub fn deploy_events() -> Vec<opsdeck::model::JobEvent> {
    use opsdeck::model::JobEvent;
    use opsdeck::model::job::{JobLine, LineKind};
    let line = |step: usize, kind: LineKind, text: &str| JobLine {
        step: Some(step),
        kind,
        text: text.into(),
    };
    vec![
        JobEvent::Planned {
            steps: vec![
                "record the image IDs in use (for a rollback)".into(),
                "git pull --ff-only".into(),
                "compose build".into(),
                "compose up -d".into(),
                "compose exec -T app alembic upgrade head".into(),
                "wait healthy (up to 2m)".into(),
            ],
        },
        JobEvent::Output(vec![JobLine {
            step: None,
            kind: LineKind::Info,
            text: "locked ~/.local/state/opsdeck/course-supporter.lock".into(),
        }]),
        JobEvent::StepStarted { index: 0 },
        JobEvent::Output(vec![
            line(
                0,
                LineKind::Info,
                "app: course-supporter_app = 4f1c2a9b8d7e",
            ),
            line(
                0,
                LineKind::Info,
                "db: opsdeck-lab/pgvector:pg17 = 9a8b7c6d5e4f",
            ),
        ]),
        JobEvent::StepFinished {
            index: 0,
            exit: None,
            ok: true,
            millis: 140,
        },
        JobEvent::StepStarted { index: 1 },
        JobEvent::Output(vec![
            line(
                1,
                LineKind::Err,
                "From /var/lib/opsdeck-lab/git/course-supporter",
            ),
            line(
                1,
                LineKind::Err,
                "   3f2a1b0..8c9d0e1  main       -> origin/main",
            ),
            line(1, LineKind::Out, "Updating 3f2a1b0..8c9d0e1"),
            line(1, LineKind::Out, "Fast-forward"),
            line(
                1,
                LineKind::Out,
                " migrations/versions/0002_published.py | 21 +++++++++++++++++++++",
            ),
        ]),
        JobEvent::StepFinished {
            index: 1,
            exit: Some(0),
            ok: true,
            millis: 420,
        },
        JobEvent::StepStarted { index: 2 },
        JobEvent::Output(vec![
            line(2, LineKind::Err, "Building app"),
            line(2, LineKind::Out, "Step 1/6 : FROM opsdeck-lab/base:latest"),
            line(2, LineKind::Out, " ---> 5e6f7a8b9c0d"),
            line(2, LineKind::Out, "Step 2/6 : WORKDIR /app"),
        ]),
    ]
}

pub fn render(model: &Model, theme: &opsdeck::ui::Theme, w: u16, h: u16) -> Terminal<TestBackend> {
    let mut model = model.clone();
    model.size = (w, h);
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| opsdeck::ui::view(&model, theme, f)).unwrap();
    t
}

/// `n` lines of course-supporter's three services, as a stack's logs receive them: one
/// second apart, the services in turn (app, db, netdata; `source` 0, 1, 2), a few of
/// them saying "timeout".
pub fn stack_lines(n: usize) -> Vec<LogLine> {
    (0..n)
        .map(|i| {
            let source = (i % 3) as u16;
            let text = match (source, i % 4) {
                (0, 3) => format!("\u{1b}[31mERROR\u{1b}[0m request {i}: upstream timeout"),
                (0, _) => {
                    format!("INFO:     172.24.0.5:4{i:04} - \"GET /api/courses HTTP/1.1\" 200")
                }
                (1, 3) => format!("LOG:  statement timeout on query {i}"),
                (1, _) => format!("LOG:  checkpoint complete: wrote {i} buffers"),
                _ => format!("collector: {} metrics sent", i * 7),
            };
            LogLine {
                time: format!("10:{:02}:{:02}", (i / 60) % 60, i % 60),
                at: Some(Timestamp::from_second(1_795_000_000 + i as i64).unwrap()),
                source: Some(source),
                stream: if i % 11 == 5 {
                    Stream::Stderr
                } else {
                    Stream::Stdout
                },
                text,
            }
        })
        .collect()
}

/// The fleet model with course-supporter's stack logs open (from its app row, with `L`)
/// and 120 lines received.
pub fn stack_view() -> Model {
    let mut m = fleet();
    key(&mut m, Key::Enter);
    key(&mut m, Key::Char('L'));
    let (host, project) = match &m.view {
        opsdeck::model::View::Stack { host, project } => (*host, project.clone()),
        v => panic!("expected the stack view, got {v:?}"),
    };
    update(
        &mut m,
        Msg::StackLines {
            host,
            project,
            lines: stack_lines(120),
        },
    );
    m
}

/// A timeline event of the fixture fleet, `secs` before [`NOW`].
pub fn event(
    host: &str,
    secs: i64,
    kind: &str,
    subject: Option<&str>,
    id: Option<&str>,
    text: &str,
    grade: opsdeck::model::timeline::Grade,
) -> opsdeck::model::timeline::Event {
    opsdeck::model::timeline::Event {
        ns: (NOW - secs) * 1_000_000_000,
        host: host.into(),
        kind: kind.into(),
        stack: subject.map(|_| host.to_string()),
        subject: subject.map(String::from),
        id: id.map(|i| format!("{i:0<64}")),
        text: text.into(),
        grade,
        source: "docker".into(),
    }
}

/// The fleet with an afternoon's events on its timeline: lila's api dying and coming
/// back, an OOM kill, a failing check, a deploy.
pub fn with_timeline(mut m: Model) -> Model {
    use opsdeck::model::timeline::Grade::*;
    let events = vec![
        event(
            "lila",
            40,
            "health",
            Some("lila-api-1"),
            Some("b1"),
            "health: unhealthy",
            Crit,
        ),
        event(
            "lila",
            95,
            "restart",
            Some("lila-api-1"),
            Some("b1"),
            "restarted",
            Warn,
        ),
        event(
            "lila",
            96,
            "die",
            Some("lila-api-1"),
            Some("b1"),
            "exited with code 137",
            Crit,
        ),
        event(
            "lila",
            97,
            "oom",
            Some("lila-api-1"),
            Some("b1"),
            "ran out of memory (OOM kill)",
            Crit,
        ),
        event(
            "lila",
            3600,
            "pull",
            None,
            None,
            "image pulled: git.lilastudy.com/forgejo-lila/lila-api:latest",
            Info,
        ),
        event(
            "course-supporter",
            600,
            "check",
            Some("api"),
            None,
            "check api fails: HTTP 502",
            Crit,
        ),
        event(
            "course-supporter",
            540,
            "check",
            Some("api"),
            None,
            "check api passes again",
            Good,
        ),
        event(
            "course-supporter",
            7200,
            "job",
            None,
            None,
            "deploy by alice: ok (deploy course-supporter)",
            Good,
        ),
        event(
            "lila",
            86_000,
            "kill",
            Some("lila-forgejo-1"),
            Some("b5"),
            "sent SIGKILL",
            Warn,
        ),
    ];
    for (i, h) in ["course-supporter", "lila"].iter().enumerate() {
        let mine: Vec<_> = events.iter().filter(|e| e.host == *h).cloned().collect();
        update(
            &mut m,
            Msg::Timeline {
                host: i,
                events: mine,
                caught_up: true,
            },
        );
    }
    m
}

/// What Docker says of lila's api in the fixtures: a health-checked compose service with a
/// secret in its environment, two mounts, a published port, and six processes.
pub fn container_detail() -> opsdeck::model::detail::ContainerDetail {
    use opsdeck::model::detail::*;
    let env = |k: &str, v: &str| EnvVar {
        key: k.into(),
        value: v.into(),
        secret: is_secret_key(k),
    };
    let run = |secs: i64, code: i64, out: &[&str]| HealthRun {
        start: Some(ago(secs)),
        exit_code: Some(code),
        output: out.iter().map(|s| s.to_string()).collect(),
    };
    let ps = |pid: u32, ppid: u32, cmd: &str| {
        vec![
            "app".to_string(),
            pid.to_string(),
            ppid.to_string(),
            "0".into(),
            "10:02".into(),
            "?".into(),
            "00:00:03".into(),
            cmd.into(),
        ]
    };
    let envs = vec![
        env("PATH", "/usr/local/bin:/usr/bin:/bin"),
        env("DATABASE_URL", "postgresql://lila@database:5432/lila"),
        env("POSTGRES_PASSWORD", "correct-horse-battery-staple"),
        env("SESSION_SECRET", "5f2b9c1e7a"),
        env("LOG_LEVEL", "info"),
        env("WORKERS", "4"),
    ];
    let labels: Vec<(String, String)> = [
        (
            "com.docker.compose.config-hash",
            "9f8e7d6c5b4a39281706f5e4d3c2b1a0",
        ),
        ("com.docker.compose.container-number", "1"),
        ("com.docker.compose.oneoff", "False"),
        ("com.docker.compose.project", "lila"),
        ("com.docker.compose.project.working_dir", "/home/lila/lila"),
        ("com.docker.compose.service", "api"),
        ("com.docker.compose.version", "1.29.2"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    ContainerDetail {
        status: "running".into(),
        running: true,
        oom_killed: false,
        exit_code: Some(0),
        error: None,
        started_at: Some(ago(3 * 3600 + 120)),
        finished_at: None,
        restart_policy: "unless-stopped".into(),
        restart_count: Some(0),
        mem_limit: Some(512 * 1024 * 1024),
        command: "uvicorn app.main:app --host 0.0.0.0 --port 8000 --workers 4".into(),
        env_total: envs.len(),
        env: envs,
        mounts: vec![
            MountInfo {
                kind: "bind".into(),
                source: "/home/lila/lila/config".into(),
                destination: "/app/config".into(),
                read_only: true,
            },
            MountInfo {
                kind: "volume".into(),
                source: "lila_uploads".into(),
                destination: "/app/uploads".into(),
                read_only: false,
            },
        ],
        ports: vec!["8000/tcp (not published)".into()],
        labels_total: labels.len(),
        labels,
        health: Some(HealthInfo {
            status: "unhealthy".into(),
            failing_streak: Some(2),
            runs: vec![
                run(50, 0, &["ok"]),
                run(40, 0, &["ok"]),
                run(30, 0, &["ok"]),
                run(
                    20,
                    1,
                    &[
                        "curl: (22) The requested URL returned error: 503",
                        "upstream: database timeout",
                    ],
                ),
                run(10, 1, &["curl: (22) The requested URL returned error: 503"]),
            ],
        }),
        processes: Processes {
            titles: ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            rows: vec![
                ps(
                    1,
                    0,
                    "/usr/local/bin/python /usr/local/bin/uvicorn app.main:app --host 0.0.0.0 --port 8000 --workers 4",
                ),
                ps(
                    8,
                    1,
                    "/usr/local/bin/python -c from multiprocessing.resource_tracker import main;main(4)",
                ),
                ps(
                    9,
                    1,
                    "/usr/local/bin/python -c from multiprocessing.spawn import spawn_main; spawn_main(tracker_fd=5, pipe_handle=7) --multiprocessing-fork",
                ),
                ps(
                    10,
                    1,
                    "/usr/local/bin/python -c from multiprocessing.spawn import spawn_main; spawn_main(tracker_fd=5, pipe_handle=9) --multiprocessing-fork",
                ),
                ps(
                    11,
                    1,
                    "/usr/local/bin/python -c from multiprocessing.spawn import spawn_main; spawn_main(tracker_fd=5, pipe_handle=11) --multiprocessing-fork",
                ),
                ps(
                    12,
                    1,
                    "/usr/local/bin/python -c from multiprocessing.spawn import spawn_main; spawn_main(tracker_fd=5, pipe_handle=13) --multiprocessing-fork",
                ),
            ],
            total: 6,
            error: None,
        },
    }
}

/// The container view of lila's api with its detail answered, ten minutes of its CPU
/// and memory, and a minute of I/O counters; `tab` open.
pub fn container_tab(tab: opsdeck::model::detail::Tab) -> Model {
    use opsdeck::model::detail::IoSample;
    let mut m = container_view();
    let (host, id) = match &m.view {
        opsdeck::model::View::Container { host, id } => (*host, id.clone()),
        v => panic!("expected the container view, got {v:?}"),
    };
    let usage = m.hosts[host].usage.entry(id.clone()).or_default();
    for i in 0..300i64 {
        let t = NOW - 600 + 2 * i;
        let wave = ((i as f64) / 12.0).sin();
        usage.cpu.push(t, 40.0 + 35.0 * wave);
        usage
            .mem
            .push(t, (180.0 + 60.0 * (i as f64 / 300.0)) * 1024.0 * 1024.0);
    }
    for i in 0..30i64 {
        let io = IoSample {
            at_ms: (NOW - 60 + 2 * i) * 1000,
            net_rx: (i * i * 40_000) as u64,
            net_tx: (i * 90_000) as u64,
            blk_read: (i * 4096) as u64,
            blk_write: (i * i * 8192) as u64,
        };
        update(
            &mut m,
            Msg::ContainerDetail {
                host,
                id: id.clone(),
                at: ago(1),
                detail: Ok(Box::new(container_detail())),
                io: Some(io),
            },
        );
    }
    let digit = char::from_digit(tab.index() as u32 + 1, 10).unwrap();
    key(&mut m, Key::Char(digit));
    m
}
