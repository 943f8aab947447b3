//! Docker on one host, the same for the local and the SSH worker: connect and retry,
//! list containers through the inspect cache, merge in cgroup counters (or, where those
//! cannot be read, one-shot stats), follow one log.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::models::ContainerStatsResponse;
use bollard::query_parameters::StatsOptions;
use futures::StreamExt;
use jiff::Timestamp;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::HostCmd;
use crate::collect::cgroup::CpuRates;
use crate::docker::{self, InspectCache};
use crate::model::{Container, DockerState, Msg, Part};

/// How long to wait before asking an unreachable Docker socket again: a refused socket
/// answers at once and costs nothing, and a restarted engine should be back on screen
/// within two refreshes.
const DOCKER_RETRY: Duration = Duration::from_secs(2);

/// A full list this often even when no event said anything changed: an event missed
/// while the stream was reconnecting, a status that changes without one.
const FULL_LIST_EVERY: Duration = Duration::from_secs(45);

/// The container events that change what the console shows. Not `exec_create`,
/// `exec_start` and `exec_die`: every health-check probe makes those three, so with them
/// a host whose containers have health checks is listed again every tick. The engine
/// matches `health_status` by prefix (`health_status: healthy`).
pub const EVENTS: [&str; 13] = [
    "create",
    "start",
    "restart",
    "stop",
    "die",
    "kill",
    "oom",
    "pause",
    "unpause",
    "destroy",
    "rename",
    "update",
    "health_status",
];

/// A container's CPU (percent of one core, once two samples exist) and memory.
pub type Usage = (Option<f64>, u64);

/// The engine's container events, read by a task of their own from the moment they are
/// asked for (a stream only sends its request when first read, and the events between
/// the list and that first read would be lost): each event's container id, in order. The
/// channel closes when the stream ends or breaks; dropping this stops the task.
struct Events {
    ids: mpsc::Receiver<Option<String>>,
    task: JoinHandle<()>,
}

impl Events {
    fn subscribe(docker: &Docker) -> Self {
        let mut filters = HashMap::new();
        filters.insert("type", vec!["container"]);
        filters.insert("event", EVENTS.to_vec());
        let options = bollard::query_parameters::EventsOptionsBuilder::default()
            .filters(&filters)
            .build();
        let mut stream = docker.events(Some(options));
        let (tx, ids) = mpsc::channel(256);
        let task = tokio::spawn(async move {
            while let Some(Ok(event)) = stream.next().await {
                let id = event.actor.and_then(|a| a.id);
                if tx.send(id).await.is_err() {
                    return;
                }
            }
        });
        Events { ids, task }
    }
}

impl Drop for Events {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub struct DockerWatch {
    docker: Option<Docker>,
    /// Fresh connections to the engine's socket, for the log reader.
    socket: Option<docker::Socket>,
    next_try: Instant,
    cache: InspectCache,
    fallback: StatsFallback,
    /// The engine's container events; any of them makes the next tick list again.
    events: Option<Events>,
    /// An event came (or the stream broke) since the last list.
    stale: bool,
    listed_at: Option<Instant>,
    /// The last list, sent again each tick with fresh usage while nothing changed.
    last: Vec<Container>,
    /// How many times the engine was asked for the list.
    lists: u64,
}

impl Default for DockerWatch {
    fn default() -> Self {
        Self::new()
    }
}

impl DockerWatch {
    pub fn new() -> Self {
        DockerWatch {
            docker: None,
            socket: None,
            next_try: Instant::now(),
            cache: InspectCache::default(),
            fallback: StatsFallback::default(),
            events: None,
            stale: true,
            listed_at: None,
            last: Vec::new(),
            lists: 0,
        }
    }

    /// How many times the engine has been asked for the container list.
    pub fn lists(&self) -> u64 {
        self.lists
    }

    /// How many containers the engine has been asked to inspect.
    pub fn inspects(&self) -> u64 {
        self.cache.inspects()
    }

    /// The Docker client, for a job's Docker API steps.
    pub fn client(&self) -> Option<Docker> {
        self.docker.clone()
    }

    pub fn wants_connect(&self) -> bool {
        self.docker.is_none() && Instant::now() >= self.next_try
    }

    pub async fn connected(
        &mut self,
        result: Result<(Docker, String), String>,
        socket: docker::Socket,
        parts: &mpsc::Sender<Part>,
    ) {
        let state = match result {
            Ok((d, version)) => {
                self.docker = Some(d);
                self.socket = Some(socket);
                DockerState::Up { version }
            }
            Err(reason) => {
                self.next_try = Instant::now() + DOCKER_RETRY;
                DockerState::Unavailable { reason }
            }
        };
        let _ = parts.send(Part::Docker(state)).await;
    }

    /// Waits for the engine's next container event (forever without a stream), and
    /// marks the list stale: the next [`DockerWatch::tick`] lists again.
    /// Whether the engine said something changed (`false`: the stream ended).
    pub async fn event(&mut self) -> bool {
        let Some(events) = self.events.as_mut() else {
            return std::future::pending().await;
        };
        let got = events.ids.recv().await;
        // Only once something came: this future is dropped whenever a tick wins the race.
        self.stale = true;
        match got {
            // Its inspect result may be out of date whatever the list shows of it.
            Some(Some(id)) => {
                self.cache.forget(&id);
                true
            }
            Some(None) => true,
            // Ended or broke (the engine went away, the connection under it): list, and
            // subscribe again, at the next tick.
            None => {
                self.events = None;
                false
            }
        }
    }

    /// One refresh: the containers with their usage. Docker is asked for the list only
    /// when an event said something changed, or every [`FULL_LIST_EVERY`]; otherwise the
    /// last list goes out again with this tick's usage, and the engine does nothing.
    /// Returns the ids sent, so callers can forget state kept for containers that are gone.
    pub async fn tick(
        &mut self,
        parts: &mpsc::Sender<Part>,
        usage: impl FnMut(&Container) -> Option<Usage>,
    ) -> Vec<String> {
        let Some(d) = &self.docker else {
            return Vec::new();
        };
        if self.events.is_none() {
            // Subscribed before listing: the stream's task asks at once, so what changes
            // while the list is read comes as an event (the engine cannot say when it has
            // the subscription; the full list every 45 s catches what slips between).
            self.events = Some(Events::subscribe(d));
            self.stale = true;
            // What happened while there was no stream is unknown: inspect everything again.
            self.cache.clear();
        }
        let due = self.stale
            || self
                .listed_at
                .is_none_or(|t| t.elapsed() >= FULL_LIST_EVERY);
        if due {
            self.poll(parts, usage).await
        } else {
            self.send(parts, usage).await
        }
    }

    /// Lists containers and sends them with their usage; on failure, Docker is marked
    /// unavailable and asked again later. Returns the ids listed, so callers can forget
    /// state kept for containers that are gone.
    ///
    /// Running containers for which `usage` has nothing (their cgroup files could not be
    /// read) get CPU and memory from Docker's one-shot stats instead, bounded as
    /// [`StatsFallback`] explains.
    async fn poll(
        &mut self,
        parts: &mpsc::Sender<Part>,
        usage: impl FnMut(&Container) -> Option<Usage>,
    ) -> Vec<String> {
        let Some(d) = &self.docker else {
            return Vec::new();
        };
        self.lists += 1;
        match self.cache.list(d).await {
            Ok(containers) => {
                self.last = containers;
                self.stale = false;
                self.listed_at = Some(Instant::now());
                self.send(parts, usage).await
            }
            Err(reason) => {
                self.docker = None;
                self.events = None;
                self.last.clear();
                self.next_try = Instant::now() + DOCKER_RETRY;
                let _ = parts
                    .send(Part::Docker(DockerState::Unavailable { reason }))
                    .await;
                Vec::new()
            }
        }
    }

    /// The last list, with usage merged in, to the model.
    async fn send(
        &mut self,
        parts: &mpsc::Sender<Part>,
        mut usage: impl FnMut(&Container) -> Option<Usage>,
    ) -> Vec<String> {
        let Some(d) = &self.docker else {
            return Vec::new();
        };
        let mut containers = self.last.clone();
        let mut missing = Vec::new();
        for (i, c) in containers.iter_mut().enumerate() {
            if !c.is_running() {
                continue;
            }
            match usage(c) {
                Some((cpu, mem)) => {
                    c.cpu_percent = cpu;
                    c.mem_bytes = Some(mem);
                }
                None => missing.push(i),
            }
        }
        self.fallback.fill(d, &mut containers, &missing).await;
        let ids = containers.iter().map(|c| c.id.clone()).collect();
        let part = Part::Containers {
            at: Timestamp::now(),
            containers,
        };
        let _ = parts.send(part).await;
        ids
    }

    /// The client and the socket it came from, for the log follower and jobs.
    pub fn engine(&self) -> Option<(Docker, docker::Socket)> {
        Some((self.docker.clone()?, self.socket.clone()?))
    }

    /// The connection under Docker went away: forget the client.
    pub fn reset(&mut self) {
        self.docker = None;
        self.socket = None;
        self.events = None;
        self.last.clear();
        self.next_try = Instant::now();
    }
}

/// The log a host follows for the console (one container's, or a stack's), kept across
/// reconnects: when the connection comes back, it carries on after the last line it
/// passed on (each service's, for a stack), so nothing is lost or shown twice.
#[derive(Default)]
pub struct LogFollower {
    want: Option<Want>,
    /// `None`: not started on this connection (or paused by its loss).
    task: Option<JoinHandle<()>>,
}

enum Want {
    Container {
        id: String,
        resume: docker::logs::Resume,
    },
    Stack {
        project: String,
        sources: Vec<docker::stack::StackSource>,
    },
}

/// The last lines a container's log starts with; a stack's, each service's.
const CONTAINER_TAIL: u64 = 1000;
const STACK_TAIL: u64 = 1000;

impl LogFollower {
    /// Follow `id` from now on (its last 1000 lines first).
    pub fn want(&mut self, id: String) {
        self.pause();
        self.want = Some(Want::Container {
            id,
            resume: docker::logs::Resume::default(),
        });
    }

    /// Follow the stack `project`'s services (service name, container id) from now on,
    /// each one's last lines first, interleaved.
    pub fn want_stack(&mut self, project: String, sources: &[(String, String)]) {
        self.pause();
        let sources = sources
            .iter()
            .map(|(service, id)| docker::stack::StackSource::new(service, id))
            .collect();
        self.want = Some(Want::Stack { project, sources });
    }

    pub fn stop(&mut self, id: &str) {
        if matches!(&self.want, Some(Want::Container { id: i, .. }) if i == id) {
            self.pause();
            self.want = None;
        }
    }

    pub fn stop_stack(&mut self, project: &str) {
        if matches!(&self.want, Some(Want::Stack { project: p, .. }) if p == project) {
            self.pause();
            self.want = None;
        }
    }

    /// The connection is gone: stop reading, remember where.
    pub fn pause(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }

    /// Starts (or resumes) the wanted log when Docker is there and nothing reads it yet. A
    /// follower that ended by itself (the container stopped) is not started again.
    pub fn ensure(
        &mut self,
        engine: Option<(Docker, docker::Socket)>,
        host: usize,
        tx: &mpsc::Sender<Msg>,
    ) {
        let (Some(want), None, Some((d, socket))) = (&self.want, &self.task, engine) else {
            return;
        };
        self.task = Some(match want {
            Want::Container { id, resume } => tokio::spawn(docker::logs::follow(
                d,
                socket,
                host,
                id.clone(),
                tx.clone(),
                resume.clone(),
                Some(CONTAINER_TAIL),
            )),
            Want::Stack { project, sources } => {
                let req = docker::stack::StackRequest {
                    follow: true,
                    tail: Some(STACK_TAIL),
                    after: None,
                };
                tokio::spawn(docker::stack::follow_stack(
                    (d, socket),
                    host,
                    project.clone(),
                    sources.clone(),
                    req,
                    tx.clone(),
                ))
            }
        });
    }

    /// Answers a log command; false for any other command.
    pub fn command(&mut self, cmd: &HostCmd) -> bool {
        match cmd {
            HostCmd::FollowLogs { id } => self.want(id.clone()),
            HostCmd::StopLogs { id } => self.stop(id),
            HostCmd::FollowStack { project, sources } => self.want_stack(project.clone(), sources),
            HostCmd::StopStack { project } => self.stop_stack(project),
            _ => return false,
        }
        true
    }
}

impl Drop for LogFollower {
    fn drop(&mut self) {
        self.pause();
    }
}

/// Most one-shot stats calls made per tick.
const FALLBACK_PER_TICK: usize = 8;
/// How long a tick waits for a one-shot stats answer.
const FALLBACK_TIMEOUT: Duration = Duration::from_secs(3);

/// CPU and memory from Docker's stats API for running containers whose cgroup files could
/// not be read (rootless Docker, an unusual cgroup layout, a cgroup path we do not know).
///
/// Every stats sample goes through dockerd, containerd and the container's shim, which is
/// what makes `docker stats` and friends cost 7–8% of a core (DESIGN.md, "Where the cost
/// is"), so this path is bounded:
/// - only containers the cgroup path missed, and only while it misses them;
/// - one `stream=false, one_shot=true` call per container per tick, never a stream (a
///   stream holds a connection per container and makes the daemon sample it every
///   second). Without `one_shot` the daemon waits two of its 1 s collection cycles to
///   fill `precpu_stats`; with it `precpu_stats` is empty, so CPU % comes from our own
///   deltas of `total_usage` between ticks. Engines older than API 1.41 ignore
///   `one_shot` and answer in ~2 s, still within the timeout;
/// - at most [`FALLBACK_PER_TICK`] calls per tick, made concurrently: dockerd's collector
///   samples the containers it is asked about, then sleeps 1 s, so a call answers in a
///   few ms when it is idle and waits up to 1 s otherwise. In sequence, N calls took
///   N−1 s on a 20.10 engine; together they take about 1 s. When more containers miss,
///   they take turns, and keep their last values between turns;
/// - each call is cut off after [`FALLBACK_TIMEOUT`], so a slow engine delays a tick by
///   that much at most, and a container without an answer shows no usage.
#[derive(Debug, Default)]
struct StatsFallback {
    rates: CpuRates,
    last: HashMap<String, Usage>,
    /// Where the next turn starts among the containers missing usage.
    cursor: usize,
}

impl StatsFallback {
    /// Sets usage on `containers[i]` for each `i` in `missing`, from one-shot stats.
    async fn fill(&mut self, docker: &Docker, containers: &mut [Container], missing: &[usize]) {
        let (start, take) = turn(missing.len(), self.cursor, FALLBACK_PER_TICK);
        self.cursor = start + take;
        let calls = (0..take).map(|k| {
            let id = containers[missing[(start + k) % missing.len()]].id.clone();
            async move {
                let answer = one_shot_stats(docker, &id).await;
                (id, answer, Instant::now())
            }
        });
        for (id, answer, at) in futures::future::join_all(calls).await {
            match answer {
                Some((mem, cpu_ns)) => {
                    let cpu = cpu_ns.and_then(|ns| self.rates.rate(&id, ns, at));
                    self.last.insert(id, (cpu, mem));
                }
                None => {
                    self.last.remove(&id);
                }
            }
        }
        let ids: Vec<&str> = missing.iter().map(|&i| containers[i].id.as_str()).collect();
        self.rates.retain(&ids);
        self.last.retain(|k, _| ids.contains(&k.as_str()));
        for &i in missing {
            let c = &mut containers[i];
            if let Some(&(cpu, mem)) = self.last.get(&c.id) {
                c.cpu_percent = cpu;
                c.mem_bytes = Some(mem);
            }
        }
    }
}

/// This tick's turn among `n` containers: the first index and how many, at most `max`.
fn turn(n: usize, cursor: usize, max: usize) -> (usize, usize) {
    if n == 0 {
        return (0, 0);
    }
    let start = if n <= max { 0 } else { cursor % n };
    (start, n.min(max))
}

/// One container's stats, once, without a stream: memory in use and CPU time (ns).
async fn one_shot_stats(docker: &Docker, id: &str) -> Option<(u64, Option<u64>)> {
    let opts = StatsOptions {
        stream: false,
        one_shot: true,
    };
    let mut stats = std::pin::pin!(docker.stats(id, Some(opts)));
    match tokio::time::timeout(FALLBACK_TIMEOUT, stats.next()).await {
        Ok(Some(Ok(s))) => stats_usage(&s),
        Ok(Some(Err(e))) => {
            tracing::debug!("stats of {id}: {e}");
            None
        }
        Ok(None) => None,
        Err(_) => {
            tracing::debug!("stats of {id}: no answer within {FALLBACK_TIMEOUT:?}");
            None
        }
    }
}

/// Memory in use and total CPU time (nanoseconds) from a stats answer. Memory is usage
/// minus the inactive file cache, as `docker stats` counts it: cgroup v1 names that
/// `total_inactive_file`, v2 `inactive_file`. No memory usage (a stopped container's
/// empty answer) means no usage at all.
pub fn stats_usage(s: &ContainerStatsResponse) -> Option<(u64, Option<u64>)> {
    let mem = s.memory_stats.as_ref()?;
    let usage = mem.usage?;
    let stats = mem.stats.as_ref();
    let cache = stats
        .and_then(|m| m.get("total_inactive_file"))
        .filter(|&&v| v < usage)
        .or_else(|| stats.and_then(|m| m.get("inactive_file")))
        .filter(|&&v| v < usage)
        .copied()
        .unwrap_or(0);
    let cpu_ns = s
        .cpu_stats
        .as_ref()
        .and_then(|c| c.cpu_usage.as_ref())
        .and_then(|u| u.total_usage);
    Some((usage - cache, cpu_ns))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> ContainerStatsResponse {
        serde_json::from_str(json).unwrap()
    }

    /// Docker 20.10 on cgroup v1, one-shot: `precpu_stats` is left empty.
    const V1: &str = r#"{
        "read": "2026-11-23T11:27:14.160623408Z",
        "preread": "0001-01-01T00:00:00Z",
        "pids_stats": {"current": 8},
        "blkio_stats": {"io_service_bytes_recursive": [], "io_serviced_recursive": []},
        "num_procs": 0,
        "storage_stats": {},
        "cpu_stats": {
            "cpu_usage": {
                "total_usage": 92910335,
                "percpu_usage": [53063795, 39846540],
                "usage_in_kernelmode": 40000000,
                "usage_in_usermode": 50000000
            },
            "system_cpu_usage": 8232510000000,
            "online_cpus": 2,
            "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}
        },
        "precpu_stats": {
            "cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
            "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}
        },
        "memory_stats": {
            "usage": 10993664,
            "max_usage": 12935168,
            "stats": {
                "active_anon": 4096, "active_file": 2596864, "cache": 2654208,
                "hierarchical_memory_limit": 9223372036854771712,
                "inactive_anon": 7639040, "inactive_file": 61440, "rss": 7647232,
                "total_active_file": 2596864, "total_cache": 2654208,
                "total_inactive_anon": 7639040, "total_inactive_file": 1061440,
                "total_rss": 7647232, "unevictable": 0
            },
            "limit": 25276502016
        },
        "name": "/lila_caddy_1",
        "id": "cf1d7d23247e75e3c484d4a6510b525ff8ff5c00330cc279cfc8756cc1c4d064",
        "networks": {"eth0": {"rx_bytes": 23235, "rx_packets": 257, "rx_errors": 0,
            "rx_dropped": 0, "tx_bytes": 23131, "tx_packets": 220, "tx_errors": 0,
            "tx_dropped": 0}}
    }"#;

    /// Docker 24 on cgroup v2, one-shot: no `percpu_usage`, no `max_usage`, v2 keys.
    const V2: &str = r#"{
        "read": "2026-11-23T11:30:02.514305729Z",
        "preread": "0001-01-01T00:00:00Z",
        "pids_stats": {"current": 3, "limit": 18446744073709551615},
        "blkio_stats": {"io_service_bytes_recursive": [
            {"major": 8, "minor": 0, "op": "read", "value": 4096}],
            "io_serviced_recursive": null},
        "num_procs": 0,
        "storage_stats": {},
        "cpu_stats": {
            "cpu_usage": {
                "total_usage": 1234567000,
                "usage_in_kernelmode": 234567000,
                "usage_in_usermode": 1000000000
            },
            "system_cpu_usage": 91234560000000,
            "online_cpus": 4,
            "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}
        },
        "precpu_stats": {
            "cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
            "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}
        },
        "memory_stats": {
            "usage": 52428800,
            "stats": {
                "active_anon": 0, "active_file": 1048576, "anon": 41943040,
                "file": 10485760, "inactive_anon": 41943040, "inactive_file": 9437184,
                "kernel_stack": 49152, "pgfault": 12345, "shmem": 0, "slab": 524288,
                "sock": 0, "unevictable": 0, "workingset_refault_file": 0
            },
            "limit": 8335769600
        },
        "name": "/app-backend-1",
        "id": "5e2f1a0c9b8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f",
        "networks": {"eth0": {"rx_bytes": 1000, "rx_packets": 10, "rx_errors": 0,
            "rx_dropped": 0, "tx_bytes": 2000, "tx_packets": 20, "tx_errors": 0,
            "tx_dropped": 0}}
    }"#;

    #[test]
    fn usage_from_cgroup_v1_stats() {
        // total_inactive_file (hierarchical) wins over the cgroup's own inactive_file
        assert_eq!(
            stats_usage(&parse(V1)),
            Some((10_993_664 - 1_061_440, Some(92_910_335)))
        );
    }

    #[test]
    fn usage_from_cgroup_v2_stats() {
        assert_eq!(
            stats_usage(&parse(V2)),
            Some((52_428_800 - 9_437_184, Some(1_234_567_000)))
        );
    }

    #[test]
    fn usage_edge_cases() {
        // a cache larger than usage is not subtracted (as `docker stats` does)
        let big = parse(
            r#"{"memory_stats": {"usage": 1000, "stats": {"inactive_file": 5000}},
                "cpu_stats": {"cpu_usage": {"total_usage": 7}}}"#,
        );
        assert_eq!(stats_usage(&big), Some((1000, Some(7))));
        // no stats map at all: plain usage; no CPU counter: memory alone
        let bare = parse(r#"{"memory_stats": {"usage": 4096}}"#);
        assert_eq!(stats_usage(&bare), Some((4096, None)));
        // a container that stopped between list and stats answers with empty maps
        let stopped = parse(
            r#"{"read": "0001-01-01T00:00:00Z", "memory_stats": {}, "cpu_stats":
                {"cpu_usage": {"total_usage": 0}, "throttling_data": {}}}"#,
        );
        assert_eq!(stats_usage(&stopped), None);
    }

    #[test]
    fn turns_are_bounded_and_rotate() {
        assert_eq!(turn(0, 5, 8), (0, 0));
        assert_eq!(turn(3, 5, 8), (0, 3));
        assert_eq!(turn(8, 1, 8), (0, 8));
        // 20 containers missing usage: 8 a tick, starting where the last turn stopped
        let (s, n) = turn(20, 0, 8);
        assert_eq!((s, n), (0, 8));
        let (s, n) = turn(20, s + n, 8);
        assert_eq!((s, n), (8, 8));
        let (s, n) = turn(20, s + n, 8);
        assert_eq!((s, n), (16, 8)); // wraps: 16..20, then 0..4
        assert_eq!(turn(20, s + n, 8), (4, 8));
    }
}
