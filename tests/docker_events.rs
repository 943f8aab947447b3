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
use opsdeck::remote::docker_watch::DockerWatch;
use tokio::sync::mpsc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn execs_do_not_make_the_watcher_list_again_and_a_kill_does() {
    let Some(lab) = Lab::get() else { return };
    let name = "opsdeck-test-events";
    let c = TestContainer::run(lab, LILA, name, "sleep 600");
    let sock = lab.docker_socket(&LILA).display().to_string();
    let (tx, mut rx) = mpsc::channel(64);
    tokio::spawn(async move { while rx.recv().await.is_some() {} });
    let mut w = DockerWatch::new(0);
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
