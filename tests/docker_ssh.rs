//! Docker's API over SSH against a lab host's sshd and engine: requests share kept
//! connections instead of opening a channel each (each channel costs the host a socket
//! connection, and russh keeps a little memory for every channel the client closes).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::alloc::System;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::lab::{LILA, Lab};
use opsdeck::docker::InspectCache;
use opsdeck::remote::ssh::{self, KeyPolicy, Passphrases, Session};
use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};

/// Counts this test binary's allocations.
#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Bytes allocated and not yet freed by this test binary.
fn live() -> i64 {
    let s = GLOBAL.stats();
    s.bytes_allocated as i64 + s.bytes_reallocated as i64 - s.bytes_deallocated as i64
}

/// lila's inventory entry and a session to it.
async fn lila(lab: &Lab) -> (opsdeck::config::Host, Arc<Session>) {
    let text = std::fs::read_to_string(&lab.config).unwrap();
    let inventory = opsdeck::config::parse_str(&text, Path::new(&lab.config)).unwrap();
    let host = inventory
        .hosts
        .into_iter()
        .find(|h| h.name.get_ref() == LILA.name)
        .unwrap();
    let target = ssh::resolve(&host, &inventory.settings, None);
    let session = Arc::new(
        Session::connect(&target, &KeyPolicy::Refuse, &Passphrases::new())
            .await
            .expect("lila connects"),
    );
    (host, session)
}

/// Channels opened and dropped leave nothing behind: russh 0.65 keeps the entry of a
/// channel its client closes first (~2.5 KB), so a dropped stream lets the host close it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_channel_leaves_no_memory_behind() {
    let Some(lab) = Lab::get() else { return };
    let (host, session) = lila(lab).await;
    let socket = host.docker_socket().to_string();
    let round = |n: usize| {
        let session = session.clone();
        let socket = socket.clone();
        async move {
            for _ in 0..n {
                let stream = session
                    .open_socket(&socket)
                    .await
                    .expect("the socket opens");
                drop(stream);
            }
        }
    };
    // Warm up whatever grows once (buffers, the runtime's pools).
    round(50).await;
    let settle = || async {
        // The streams' closing tasks end within HOST_CLOSE_WAIT plus half a second.
        let mut last = live();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            tokio::time::sleep(Duration::from_millis(700)).await;
            let now = live();
            if (now - last).abs() < 4096 || tokio::time::Instant::now() > deadline {
                return now;
            }
            last = now;
        }
    };
    let before = settle().await;
    round(400).await;
    let after = settle().await;
    let per_channel = (after - before) / 400;
    assert!(
        per_channel < 256,
        "{per_channel} bytes kept per dropped channel ({} KB for 400)",
        (after - before) / 1024
    );
    session.disconnect().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_and_inspects_share_one_kept_connection() {
    let Some(lab) = Lab::get() else { return };
    let (host, session) = lila(lab).await;
    let (docker, _) = ssh::docker(session.clone(), host.docker_socket())
        .await
        .expect("lila's engine answers");
    // Three lists, each inspecting every container afresh: 15 requests or more.
    let mut requests = 0;
    for _ in 0..3 {
        let mut cache = InspectCache::default();
        let containers = cache.list(&docker).await.expect("lila lists");
        // caddy, api, web and database
        assert!(containers.len() >= 4, "{}", containers.len());
        requests += 1 + cache.inspects();
    }
    let opened = session.sockets_opened();
    assert!(
        opened <= 2,
        "{opened} channels opened for {requests} requests after the version check"
    );
    // The engine going away closes the kept connection; the next request opens another
    // and answers (covered end to end by worker_faults' stopped-engine test).
    session.disconnect().await;
}
