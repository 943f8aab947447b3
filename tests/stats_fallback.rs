//! The one-shot stats fallback against a real engine: when no cgroup counters can be read
//! for a running container, `DockerWatch::tick` asks Docker for its memory and CPU.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::lab::{LILA, Lab};
use opsdeck::collect::cgroup;
use opsdeck::model::{Container, DockerState, Part};
use opsdeck::remote::docker_watch::DockerWatch;
use tokio::sync::mpsc;

/// One tick with no cgroup usage at all; the listed containers and how long it took.
async fn poll_without_cgroups(
    watch: &mut DockerWatch,
    tx: &mpsc::Sender<Part>,
    rx: &mut mpsc::Receiver<Part>,
) -> (Vec<Container>, Duration) {
    let start = Instant::now();
    watch.tick(tx, |_| None).await;
    let took = start.elapsed();
    match rx.try_recv() {
        Ok(Part::Containers { containers, .. }) => (containers, took),
        other => panic!("expected the container list, got {other:?}"),
    }
}

#[tokio::test]
async fn running_containers_get_usage_from_one_shot_stats() {
    let Some(lab) = Lab::get() else { return };
    let socket = lab.docker_socket(&LILA);
    let (tx, mut rx) = mpsc::channel(16);
    let mut watch = DockerWatch::new();
    watch
        .connected(
            opsdeck::docker::connect_unix(&socket.to_string_lossy()).await,
            opsdeck::docker::Socket::unix(&socket.to_string_lossy()),
            &tx,
        )
        .await;
    match rx.try_recv() {
        Ok(Part::Docker(DockerState::Up { .. })) => {}
        other => panic!("lila's engine is not up: {other:?}"),
    }

    let (first, took1) = poll_without_cgroups(&mut watch, &tx, &mut rx).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (second, took2) = poll_without_cgroups(&mut watch, &tx, &mut rx).await;
    let running: Vec<&Container> = second.iter().filter(|c| c.is_running()).collect();
    eprintln!(
        "{} running containers; first poll {took1:?}, second poll {took2:?}",
        running.len()
    );
    assert!(
        running.len() >= LILA.services.len(),
        "lila runs {:?}, listed: {second:?}",
        LILA.services
    );
    // Both polls are bounded by the fallback's timeout, not by one call per container.
    assert!(took1 < Duration::from_secs(4) && took2 < Duration::from_secs(4));

    for c in &first {
        if c.is_running() {
            assert!(c.mem_bytes.is_some_and(|m| m > 0), "first poll, {c:?}");
            // One sample is not a rate yet.
            assert_eq!(c.cpu_percent, None, "first poll, {c:?}");
        }
    }
    for c in &running {
        let mem = c.mem_bytes.unwrap_or(0);
        assert!(mem > 0, "no memory for {}: {c:?}", c.name);
        let cpu = c
            .cpu_percent
            .unwrap_or_else(|| panic!("no CPU % for {} on the second poll: {c:?}", c.name));
        // percent of one core, on a machine with a handful of cores
        assert!((0.0..=1600.0).contains(&cpu), "{}: {cpu}%", c.name);
        // The lab's engines use cgroupfs on this machine: Docker's figure must agree with
        // the counters the cheap path reads (memory moves a little between the reads).
        if let Some(counters) = cgroup::read_local(Path::new("/sys/fs/cgroup"), &c.id) {
            let diff = mem.abs_diff(counters.mem_bytes);
            assert!(
                diff <= counters.mem_bytes / 5 + (4 << 20),
                "{}: stats say {mem} bytes, cgroupfs {}",
                c.name,
                counters.mem_bytes
            );
        }
        eprintln!("{}: {mem} bytes, {cpu:.2}%", c.name);
    }
    for c in second.iter().filter(|c| !c.is_running()) {
        assert_eq!((c.cpu_percent, c.mem_bytes), (None, None), "{c:?}");
    }
}
