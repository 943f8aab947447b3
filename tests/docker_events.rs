//! The Docker watcher against a real engine (a lab host's): which container events make
//! it list again. Health-check probes are `docker exec`s, and every one of them emits
//! `exec_create`, `exec_start` and `exec_die`; listing on those would list every tick on
//! any host whose containers have health checks.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::time::Duration;

use common::lab::{LILA, Lab};
use common::run::TestContainer;
use opsdeck::docker::{Socket, connect_unix};
use opsdeck::model::{Container, Part};
use opsdeck::remote::docker_watch::DockerWatch;
use tokio::sync::mpsc;

/// The watcher sees every container event on the engine: one test at a time.
static ENGINE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn execs_do_not_make_the_watcher_list_again_and_a_kill_does() {
    let Some(lab) = Lab::get() else { return };
    let _engine = ENGINE.lock().await;
    let name = "opsdeck-test-events";
    let c = TestContainer::run(lab, LILA, name, "sleep 600");
    let sock = lab.docker_socket(&LILA).display().to_string();
    let (tx, mut rx) = mpsc::channel(64);
    tokio::spawn(async move { while rx.recv().await.is_some() {} });
    let mut w = DockerWatch::new();
    w.connected(connect_unix(&sock).await, Socket::unix(&sock), &tx)
        .await;
    // The first tick subscribes to the events, then lists.
    w.tick(&tx, |_| Some((None, 0))).await;
    assert_eq!(w.lists(), 1);

    for _ in 0..3 {
        let out = c.docker(&["exec", name, "true"]);
        assert!(out.status.success(), "{out:?}");
    }
    let woke = tokio::time::timeout(Duration::from_secs(2), w.event()).await;
    assert!(woke.is_err(), "a docker exec woke the watcher");
    w.tick(&tx, |_| Some((None, 0))).await;
    assert_eq!(w.lists(), 1, "listed again after execs alone");

    let out = c.docker(&["kill", name]);
    assert!(out.status.success(), "{out:?}");
    tokio::time::timeout(Duration::from_secs(15), w.event())
        .await
        .expect("the kill's events reach the watcher");
    w.tick(&tx, |_| Some((None, 0))).await;
    assert_eq!(w.lists(), 2, "a killed container is listed again");
}

/// The last container list the watcher sent.
fn last_list(rx: &mut mpsc::Receiver<Part>) -> Option<Vec<Container>> {
    let mut last = None;
    while let Ok(msg) = rx.try_recv() {
        if let Part::Containers { containers, .. } = msg {
            last = Some(containers);
        }
    }
    last
}

/// A young container's status line changes every second (`Up 5 seconds`, `Up 6 seconds`)
/// and an older one's every minute; that alone is no reason to inspect it again. A restart
/// that the list cannot tell from before (running both times) is: its event says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_status_line_that_only_ages_is_not_inspected_again_and_a_restart_is() {
    let Some(lab) = Lab::get() else { return };
    let _engine = ENGINE.lock().await;
    let name = "opsdeck-test-inspects";
    let other = "opsdeck-test-inspects-2";
    let c = TestContainer::run(lab, LILA, name, "sleep 600");
    let sock = lab.docker_socket(&LILA).display().to_string();
    let (tx, mut rx) = mpsc::channel(1024);
    let mut w = DockerWatch::new();
    w.connected(connect_unix(&sock).await, Socket::unix(&sock), &tx)
        .await;
    w.tick(&tx, |_| Some((None, 0))).await;
    let first = last_list(&mut rx).expect("the first tick sends the list");
    let started = |list: &[Container]| {
        list.iter()
            .find(|k| k.name == name)
            .and_then(|k| k.started_at)
            .expect("the test container, with its start time")
    };
    let started0 = started(&first);
    let inspects0 = w.inspects();
    assert!(inspects0 >= 1, "the first list inspects every container");

    // Wait for its status line to age, then make an event elsewhere so the watcher lists.
    let status = || {
        c.docker(&[
            "ps",
            "--filter",
            &format!("name=^{name}$"),
            "--format",
            "{{.Status}}",
        ])
    };
    let before = String::from_utf8_lossy(&status().stdout).into_owned();
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while String::from_utf8_lossy(&status().stdout) == before {
        assert!(
            std::time::Instant::now() < deadline,
            "status stayed {before:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let _other = TestContainer::run(lab, LILA, other, "sleep 600");
    tokio::time::timeout(Duration::from_secs(15), w.event())
        .await
        .expect("the new container's events reach the watcher");
    w.tick(&tx, |_| Some((None, 0))).await;
    assert_eq!(w.lists(), 2);
    // Only the new container (its create and start events may forget it twice, it is
    // inspected once per list).
    assert_eq!(
        w.inspects(),
        inspects0 + 1,
        "an aged status line made the watcher inspect again"
    );

    // A restart: running before and after, so only its events tell.
    let out = c.docker(&["restart", "-t", "0", name]);
    assert!(out.status.success(), "{out:?}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let list = loop {
        tokio::time::timeout_at(deadline, w.event())
            .await
            .expect("the restart's events reach the watcher");
        w.tick(&tx, |_| Some((None, 0))).await;
        let list = last_list(&mut rx).expect("a tick sends the list");
        if list.iter().any(|k| k.name == name && k.is_running()) && started(&list) > started0 {
            break list;
        }
    };
    assert!(started(&list) > started0);
}
