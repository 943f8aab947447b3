//! Pictures of the real thing: the real binary in a real pseudo-terminal, its screen read
//! by a vt100 parser and drawn as SVG (`support::svg`).
//!
//! `screenshots_of_the_lab` is what `tests/lab/screenshots` runs (it is ignored in the
//! normal test run: it takes two minutes and changes course-supporter by deploying it).
//! `the_capture_step_draws_what_the_terminal_shows` checks the capture itself, on this
//! machine's console, in every test run.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;
mod support;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::lab::{COURSE_SUPPORTER, HOSTS, LILA, Lab};
use common::run::TestContainer;
use support::tui::Tui;

fn save(tui: &mut Tui, dir: &Path, name: &str, title: &str) {
    // the frame that satisfied the wait may still be arriving
    tui.pump_for(Duration::from_millis(400));
    let svg = support::svg::render(tui.parser.screen(), title);
    let path = dir.join(format!("{name}.svg"));
    std::fs::write(&path, svg).unwrap();
    eprintln!("wrote {}", path.display());
}

#[test]
fn the_capture_step_draws_what_the_terminal_shows() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("hosts.toml"),
        "[[host]]\nname = \"local\"\naddress = \"local\"\n\n[[host]]\nname = \"far\"\naddress = \"far.example.invalid\"\n",
    )
    .unwrap();
    let mut tui = Tui::start(
        dir.path(),
        &[],
        &[("DOCKER_HOST", Some("unix:///nonexistent.sock"))],
    );
    tui.wait_for("the fleet with a live host", |s| {
        s.contains("● up") && s.contains("✖ down")
    });
    tui.pump_for(Duration::from_millis(400));
    let svg = support::svg::render(tui.parser.screen(), "opsdeck on this machine");
    tui.send("q");
    tui.finish();
    assert!(
        svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"696\" height=\"456\"")
    );
    assert!(svg.trim_end().ends_with("</svg>"));
    assert!(svg.contains("<title>opsdeck on this machine</title>"));
    // the screen's text, box drawing included, is there, every glyph in its own column:
    // as many x positions as characters in each word
    let spans: Vec<(&str, &str)> = svg
        .split("<tspan x=\"")
        .skip(1)
        .map(|rest| {
            let (xs, rest) = rest.split_once("\">").unwrap();
            (xs, rest.split("</tspan>").next().unwrap())
        })
        .collect();
    let unescape = |t: &str| {
        t.replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&amp;", "&")
    };
    for (xs, text) in &spans {
        assert_eq!(
            xs.split(' ').count(),
            unescape(text).chars().count(),
            "{xs} {text}"
        );
    }
    let all: String = spans.iter().map(|(_, t)| unescape(t)).collect();
    for needle in [
        "opsdeck", "fleet", "local", "far", "CPU", "MEM", "┌", "─", "┐", "│", "●", "✖", "quit",
    ] {
        assert!(all.contains(needle), "{needle} missing from the picture");
    }
    // colours and emphasis came through: several colours, bold, a selection background
    let fills: HashSet<&str> = svg
        .split("fill=\"")
        .skip(1)
        .map(|s| s.split('"').next().unwrap())
        .collect();
    assert!(fills.len() >= 5, "{fills:?}");
    assert!(svg.contains("font-weight=\"bold\""), "{svg}");
    // the selected row's background, from the default theme's `selected` role
    assert!(
        svg.lines().any(|l| l.starts_with("<rect x=")
            && l.contains("y=\"66.0\"")
            && l.contains("fill=\"#2e3c64\"")),
        "{svg}"
    );
}

/// The lab's inventory plus a backup set with a dump made now, so the backups panel
/// shows a fresh set beside the lab's stale and suspicious ones.
fn inventory(lab: &Lab, home: &Path) -> PathBuf {
    lab.ssh_ok(
        &COURSE_SUPPORTER,
        "mkdir -p opsdeck-shots && docker exec course-supporter-db pg_dump -U postgres -Fc course_supporter > opsdeck-shots/nightly-$(date -u +%Y%m%d-%H%M%S).dump",
    );
    let text = std::fs::read_to_string(&lab.config).unwrap().replacen(
        "[[host.stack]]\nname = \"nginx\"",
        "[[host.stack.backup]]\nname = \"offsite\"\ndir = \"~/opsdeck-shots\"\nglob = \"nightly-*.dump\"\nmax_age = \"26h\"\n\n[[host.stack]]\nname = \"nginx\"",
        1,
    );
    let path = home.join("hosts.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn full_fleet(s: &str) -> bool {
    HOSTS.iter().all(|h| {
        s.lines().any(|l| {
            let n = h.services.len();
            l.contains(&format!("{} ", h.name))
                && l.contains("● up")
                && l.contains(&format!("{n}/{n}"))
        })
    }) && s.contains("none")
}

#[test]
#[ignore = "run by tests/lab/screenshots: two minutes, and it deploys course-supporter"]
fn screenshots_of_the_lab() {
    let (lab, out, home) = shots();
    let config = inventory(lab, home.path());
    lab.lab(&["cs-commit", &format!("shots_{}", std::process::id())]);
    let mut env: Vec<(&str, Option<&str>)> = lab
        .env
        .iter()
        .map(|(k, v)| (k.as_str(), Some(v.as_str())))
        .collect();
    env.retain(|(k, _)| *k != "OPSDECK_CONFIG");
    let config = config.display().to_string();
    env.push(("OPSDECK_CONFIG", Some(config.as_str())));

    // 120×36, the default theme, a minute of samples in every graph
    let mut tui = Tui::start_sized(home.path(), &[], &env, 120, 36);
    tui.wait_for("the full fleet", full_fleet);
    tui.pump_for(Duration::from_secs(65));

    tui.send("j");
    tui.send("\r");
    tui.wait_for("lila's host view", |s| {
        s.contains("fleet › lila") && s.contains("▾ lila")
    });
    tui.pump_for(Duration::from_secs(2));
    save(
        &mut tui,
        &out,
        "host",
        "opsdeck: lila's host view, ten minutes of graphs, containers by compose project",
    );

    tui.send("\r");
    tui.wait_for("the api's log", |s| {
        s.contains("› lila_api_1") && s.contains("lines")
    });
    tui.pump_for(Duration::from_secs(3));
    tui.send("/health\r");
    tui.wait_for("search matches", |s| {
        s.contains("/health") && s.contains("matches")
    });
    tui.pump_for(Duration::from_millis(500));
    save(
        &mut tui,
        &out,
        "logs-search",
        "opsdeck: a container's log, searched, matches highlighted",
    );

    tui.send("\u{1b}");
    tui.wait_for("lila's host view", |s| {
        s.contains("▾ lila") && !s.contains("lila_api_1 ")
    });
    tui.send("\u{1b}[Z"); // Shift-Tab: the previous host, course-supporter
    tui.wait_for("course-supporter's backups", |s| {
        s.contains("fleet › course-supporter")
            && s.contains("STALE")
            && s.contains("suspicious")
            && s.contains("fresh")
    });
    tui.pump_for(Duration::from_secs(1));
    save(
        &mut tui,
        &out,
        "backups",
        "opsdeck: course-supporter's backup sets: stale, suspicious, fresh",
    );

    tui.send("d");
    tui.wait_for("the confirm dialog", |s| {
        s.contains("Type course-supporter and press")
    });
    // the pre-flight's report, which the deploy waits for (origin has a new commit)
    tui.wait_for_within(Duration::from_secs(60), "the pre-flight's report", |s| {
        s.contains("Pre-flight: all")
    });
    tui.send("course-supp");
    tui.wait_for("the name half typed", |s| {
        s.contains("press ⏎: course-supp")
    });
    save(
        &mut tui,
        &out,
        "confirm",
        "opsdeck: a deploy to a production host wants its name typed",
    );

    tui.send("orter\r");
    tui.wait_for_within(
        Duration::from_secs(90),
        "the deploy streaming its build",
        |s| {
            s.contains("deploy on course-supporter · running")
                && s.contains("▶  4. compose build")
                && s.contains("Step 4/")
        },
    );
    save(
        &mut tui,
        &out,
        "deploy-job",
        "opsdeck: a deploy streaming its steps",
    );
    tui.wait_for_within(Duration::from_secs(180), "the deploy to finish", |s| {
        s.contains("deploy on course-supporter · done") || s.contains("· FAILED")
    });
    // the fleet last: its job column now says how the deploy ended
    tui.send("F");
    tui.wait_for("the fleet with the job", |s| s.contains("✔ deploy"));
    save(
        &mut tui,
        &out,
        "fleet",
        "opsdeck: the fleet view watching the reference lab over SSH",
    );
    tui.send("q");
    tui.finish();

    // 80×24, the plain terminal of an SSH session, in both themes
    for (theme, name) in [("default", "fleet-80x24"), ("16color", "16color-80x24")] {
        let mut tui = Tui::start_sized(home.path(), &["--theme", theme], &env, 80, 24);
        tui.wait_for("the full fleet", full_fleet);
        tui.pump_for(Duration::from_secs(20));
        save(
            &mut tui,
            &out,
            name,
            &format!("opsdeck at 80x24, the {theme} theme"),
        );
        tui.send("q");
        tui.finish();
    }
    lab.ssh_ok(&COURSE_SUPPORTER, "rm -rf opsdeck-shots");
}

/// The lab, where the pictures go (`$OPSDECK_SCREENSHOTS`, else `screenshots/`), and a
/// home for the console.
fn shots() -> (&'static Lab, PathBuf, tempfile::TempDir) {
    let lab = Lab::get().expect("the lab is up (tests/lab/screenshots brings it up)");
    let out = std::env::var_os("OPSDECK_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("screenshots"));
    std::fs::create_dir_all(&out).unwrap();
    (lab, out, tempfile::tempdir().unwrap())
}

/// The stack's logs picture alone (no deploy): course-supporter's app and db interleaved.
/// Its name starts with the test above's, so `tests/lab/screenshots` takes it too.
#[test]
#[ignore = "run by tests/lab/screenshots"]
fn screenshots_of_the_lab_stack_logs() {
    let (lab, out, home) = shots();
    let env: Vec<(&str, Option<&str>)> = lab
        .env
        .iter()
        .map(|(k, v)| (k.as_str(), Some(v.as_str())))
        .collect();
    let mut tui = Tui::start_sized(home.path(), &[], &env, 120, 36);
    tui.wait_for("the full fleet", full_fleet);
    tui.send("\r");
    tui.wait_for("course-supporter's host view", |s| {
        s.contains("fleet › course-supporter") && s.contains("▾ course-supporter")
    });
    tui.send("L");
    tui.wait_for("the stack's logs", |s| s.contains("all 2 services"));
    // A checkpoint makes PostgreSQL log two lines among the app's requests.
    lab.ssh_ok(
        &COURSE_SUPPORTER,
        "docker exec -u postgres course-supporter-db psql -q -d postgres -c CHECKPOINT",
    );
    tui.wait_for("lines of both services", |s| {
        s.contains("│app │") && s.contains("checkpoint complete")
    });
    tui.pump_for(Duration::from_secs(6));
    save(
        &mut tui,
        &out,
        "stack-logs",
        "opsdeck: course-supporter's stack logs, app and db interleaved by time",
    );
    tui.send("q");
    tui.finish();
}

/// Triage at the console, for the README: a shell in lila's api, the api's graphs tab, and
/// lila's timeline after a container was killed. Its name starts with the first test's,
/// so `tests/lab/screenshots` takes it too.
#[test]
#[ignore = "run by tests/lab/screenshots"]
fn screenshots_of_the_lab_triage() {
    let (lab, out, home) = shots();
    let env: Vec<(&str, Option<&str>)> = lab
        .env
        .iter()
        .map(|(k, v)| (k.as_str(), Some(v.as_str())))
        .collect();
    let mut tui = Tui::start_sized(home.path(), &[], &env, 120, 36);
    tui.wait_for("the full fleet", full_fleet);
    tui.send("j");
    tui.send("\r");
    tui.wait_for("lila's host view", |s| {
        s.contains("fleet › lila") && s.contains("▾ lila")
    });
    // graphs with some history
    tui.pump_for(Duration::from_secs(40));

    // e: a shell in the api container, the terminal handed over
    tui.send("e");
    tui.wait_for("the container's prompt", |s| {
        s.contains("opsdeck: shell in api on lila")
            && s.lines().any(|l| l.trim_end().ends_with('#'))
    });
    tui.send("hostname; id; ls\r");
    tui.wait_for("its answers", |s| s.contains("uid=0(root)"));
    tui.pump_for(Duration::from_millis(300));
    save(
        &mut tui,
        &out,
        "shell",
        "opsdeck: e hands the terminal to a shell in lila's api container",
    );
    tui.send("exit\r");
    tui.wait_for("the host view again", |s| {
        s.contains("▾ lila") && s.contains("shell in api on lila ended: exit 0")
    });

    // the container view's graphs
    tui.send("\r");
    tui.wait_for("the api's view", |s| s.contains("› lila_api_1"));
    tui.send("2");
    tui.wait_for("its graphs", |s| s.contains("CPU") && s.contains("Graphs"));
    tui.pump_for(Duration::from_secs(5));
    save(
        &mut tui,
        &out,
        "container-graphs",
        "opsdeck: the container view's graphs tab for lila's api",
    );
    tui.send("\u{1b}");
    tui.wait_for("lila's host view", |s| s.contains("▾ lila"));

    // the database's environment, its password masked
    tui.send("/database\r");
    tui.send("\r");
    tui.wait_for("the database's view", |s| s.contains("› lila_database_1"));
    tui.send("4");
    tui.wait_for("its environment, masked", |s| {
        s.contains("POSTGRES_PASSWORD") && s.contains("••••••")
    });
    save(
        &mut tui,
        &out,
        "container-env",
        "opsdeck: the container view's environment tab, the password masked until v",
    );
    tui.send("\u{1b}");
    tui.wait_for("lila's host view, filtered", |s| {
        s.contains("▾ lila") && s.contains("filter \"database\"")
    });
    tui.send("\u{1b}");
    tui.wait_for("lila's host view", |s| {
        s.contains("▾ lila") && s.contains("  api ")
    });

    // something to see on the timeline: a worker killed from outside opsdeck
    let c = TestContainer::run(
        lab,
        LILA,
        "lila-worker",
        "trap 'exit 2' HUP; while :; do sleep 1; done",
    );
    tui.send("t");
    tui.wait_for("lila's timeline", |s| {
        s.contains("What changed on lila") && s.contains("lila-worker")
    });
    let _ = c.docker(&["kill", "-s", "HUP", "lila-worker"]);
    tui.wait_for("the kill", |s| s.contains("exited with code 2"));
    tui.pump_for(Duration::from_millis(500));
    save(
        &mut tui,
        &out,
        "timeline",
        "opsdeck: what changed on lila, newest first",
    );
    drop(c);
    tui.send("q");
    tui.finish();
}
