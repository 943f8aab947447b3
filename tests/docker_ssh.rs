//! Docker's API over SSH against a lab host's sshd and engine: requests share kept
//! connections instead of opening a channel each (each channel costs the host a socket
//! connection, and russh keeps a little memory for every channel the client closes).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::path::Path;
use std::sync::Arc;

use common::lab::{LILA, Lab};
use opsdeck::docker::InspectCache;
use opsdeck::remote::ssh::{self, KeyPolicy, Passphrases, Session};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_and_inspects_share_one_kept_connection() {
    let Some(lab) = Lab::get() else { return };
    let text = std::fs::read_to_string(&lab.config).unwrap();
    let inventory = opsdeck::config::parse_str(&text, Path::new(&lab.config)).unwrap();
    let host = inventory
        .hosts
        .iter()
        .find(|h| h.name.get_ref() == LILA.name)
        .unwrap();
    let target = ssh::resolve(host, &inventory.settings, None);
    let session = Arc::new(
        Session::connect(&target, &KeyPolicy::Refuse, &Passphrases::new())
            .await
            .expect("lila connects"),
    );
    let (docker, _) = ssh::docker(session.clone(), host.docker_socket())
        .await
        .expect("lila's engine answers");
    // Three lists, each inspecting every container afresh: dozens of requests.
    let mut requests = 0;
    for _ in 0..3 {
        let mut cache = InspectCache::default();
        let containers = cache.list(&docker).await.expect("lila lists");
        assert!(containers.len() >= 5, "{}", containers.len());
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
