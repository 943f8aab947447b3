//! One container's detail for the container view: `inspect` and `top`, and its I/O
//! counters from one-shot stats. What the host sends is sanitised and bounded here, once:
//! the model and the view only ever see [`ContainerDetail`].

use std::time::Duration;

use bollard::Docker;
use bollard::models::{ContainerInspectResponse, ContainerStatsResponse, ContainerTopResponse};
use bollard::query_parameters::{InspectContainerOptions, StatsOptions, TopOptions};
use futures::StreamExt;
use jiff::Timestamp;

use crate::model::detail::{
    ContainerDetail, EnvVar, HEALTH_LINES, HEALTH_RUNS, HealthInfo, HealthRun, IoSample,
    MAX_ENTRIES, MAX_VALUE_CHARS, MountInfo, Processes, is_secret_key,
};

/// How long inspect and top may take together.
const DETAIL_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the one-shot stats may take (dockerd answers within its 1 s cycle).
const STATS_TIMEOUT: Duration = Duration::from_secs(3);

/// Reads the detail of container `id`, and with `stats` its I/O counters; each within its
/// deadline.
pub async fn read(
    docker: &Docker,
    id: &str,
    stats: bool,
) -> (Result<ContainerDetail, String>, Option<IoSample>) {
    let detail = async {
        let inspected = docker
            .inspect_container(id, None::<InspectContainerOptions>)
            .await
            .map_err(|e| crate::sanitize::line(&format!("inspect: {e}")).into_owned())?;
        let running = inspected
            .state
            .as_ref()
            .and_then(|s| s.running)
            .unwrap_or(false);
        let top = if running {
            let opts = TopOptions {
                ps_args: "-ef".into(),
            };
            docker
                .top_processes(id, Some(opts))
                .await
                .map_err(|e| format!("docker top: {e}"))
        } else {
            Err("not running".to_string())
        };
        Ok(from_inspect(
            &inspected,
            top.as_ref().map_err(String::as_str),
        ))
    };
    let io = async {
        if !stats {
            return None;
        }
        let opts = StatsOptions {
            stream: false,
            one_shot: true,
        };
        let mut s = std::pin::pin!(docker.stats(id, Some(opts)));
        match tokio::time::timeout(STATS_TIMEOUT, s.next()).await {
            Ok(Some(Ok(s))) => io_sample(&s, Timestamp::now()),
            _ => None,
        }
    };
    let detail = async {
        tokio::time::timeout(DETAIL_TIMEOUT, detail)
            .await
            .unwrap_or_else(|_| Err(format!("Docker did not answer within {DETAIL_TIMEOUT:?}")))
    };
    tokio::join!(detail, io)
}

/// One value from the host, made one safe line of at most [`MAX_VALUE_CHARS`] characters.
fn clean(s: &str) -> String {
    let line = crate::sanitize::line(s);
    if line.chars().count() <= MAX_VALUE_CHARS {
        return line.into_owned();
    }
    let mut out: String = line.chars().take(MAX_VALUE_CHARS - 1).collect();
    out.push('…');
    out
}

fn time(s: Option<&str>) -> Option<Timestamp> {
    s.and_then(|t| t.parse::<Timestamp>().ok())
        .filter(|t| t.as_second() > 0)
}

/// The detail from inspect's answer and top's (or why there is none).
pub fn from_inspect(
    r: &ContainerInspectResponse,
    top: Result<&ContainerTopResponse, &str>,
) -> ContainerDetail {
    let state = r.state.as_ref();
    let config = r.config.as_ref();
    let host_config = r.host_config.as_ref();

    let all_env = config.and_then(|c| c.env.as_ref());
    let env = all_env
        .into_iter()
        .flatten()
        .take(MAX_ENTRIES)
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv.as_str(), ""));
            EnvVar {
                key: clean(k),
                value: clean(v),
                secret: is_secret_key(k),
            }
        })
        .collect();

    let all_labels = config.and_then(|c| c.labels.as_ref());
    let mut labels: Vec<(String, String)> = all_labels
        .into_iter()
        .flatten()
        .map(|(k, v)| (clean(k), clean(v)))
        .collect();
    labels.sort();
    labels.truncate(MAX_ENTRIES);

    let mounts = r
        .mounts
        .iter()
        .flatten()
        .take(MAX_ENTRIES)
        .map(|m| MountInfo {
            kind: clean(m.typ.as_deref().unwrap_or("")),
            source: clean(
                m.name
                    .as_deref()
                    .filter(|_| m.typ.as_deref() == Some("volume"))
                    .or(m.source.as_deref())
                    .unwrap_or(""),
            ),
            destination: clean(m.destination.as_deref().unwrap_or("")),
            read_only: m.rw == Some(false),
        })
        .collect();

    let mut ports: Vec<String> = r
        .network_settings
        .as_ref()
        .and_then(|n| n.ports.as_ref())
        .into_iter()
        .flatten()
        .flat_map(|(port, bindings)| {
            let published: Vec<String> = bindings
                .iter()
                .flatten()
                .map(|b| {
                    let ip = b.host_ip.as_deref().unwrap_or("");
                    let hp = b.host_port.as_deref().unwrap_or("");
                    clean(&format!("{ip}:{hp} → {port}"))
                })
                .collect();
            if published.is_empty() {
                vec![clean(&format!("{port} (not published)"))]
            } else {
                published
            }
        })
        .collect();
    ports.sort();
    ports.dedup();
    ports.truncate(MAX_ENTRIES);

    let health = state.and_then(|s| s.health.as_ref()).map(|h| {
        let log = h.log.as_deref().unwrap_or_default();
        let runs = log[log.len().saturating_sub(HEALTH_RUNS)..]
            .iter()
            .map(|run| HealthRun {
                start: time(run.start.as_deref()),
                exit_code: run.exit_code,
                output: crate::sanitize::text(run.output.as_deref().unwrap_or(""))
                    .lines()
                    .map(str::trim_end)
                    .filter(|l| !l.trim().is_empty())
                    .take(HEALTH_LINES)
                    .map(clean)
                    .collect(),
            })
            .collect();
        HealthInfo {
            status: h.status.map(|s| clean(s.as_ref())).unwrap_or_default(),
            failing_streak: h.failing_streak,
            runs,
        }
    });

    let command: Vec<String> = r
        .path
        .iter()
        .cloned()
        .chain(r.args.iter().flatten().take(MAX_ENTRIES).cloned())
        .collect();

    let restart_policy = host_config
        .and_then(|h| h.restart_policy.as_ref())
        .map(|p| {
            let name = p.name.map(|n| n.to_string()).unwrap_or_default();
            match p.maximum_retry_count {
                Some(n) if n > 0 => format!("{name}:{n}"),
                _ => name,
            }
        })
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "no".into());

    ContainerDetail {
        status: state
            .and_then(|s| s.status)
            .map(|s| clean(s.as_ref()))
            .unwrap_or_default(),
        running: state.and_then(|s| s.running).unwrap_or(false),
        oom_killed: state.and_then(|s| s.oom_killed).unwrap_or(false),
        exit_code: state.and_then(|s| s.exit_code),
        error: state
            .and_then(|s| s.error.as_deref())
            .filter(|e| !e.is_empty())
            .map(clean),
        started_at: time(state.and_then(|s| s.started_at.as_deref())),
        finished_at: time(state.and_then(|s| s.finished_at.as_deref())),
        restart_policy: clean(&restart_policy),
        restart_count: r.restart_count,
        mem_limit: host_config
            .and_then(|h| h.memory)
            .filter(|&m| m > 0)
            .map(|m| m as u64),
        command: clean(&command.join(" ")),
        env,
        env_total: all_env.map_or(0, Vec::len),
        mounts,
        ports,
        labels,
        labels_total: all_labels.map_or(0, |l| l.len()),
        health,
        processes: processes(top),
    }
}

fn processes(top: Result<&ContainerTopResponse, &str>) -> Processes {
    match top {
        Err(e) => Processes {
            error: Some(clean(e)),
            ..Processes::default()
        },
        Ok(t) => {
            let all = t.processes.as_deref().unwrap_or_default();
            Processes {
                titles: t
                    .titles
                    .iter()
                    .flatten()
                    .take(16)
                    .map(|s| clean(s))
                    .collect(),
                rows: all
                    .iter()
                    .take(MAX_ENTRIES)
                    .map(|row| row.iter().take(16).map(|s| clean(s)).collect())
                    .collect(),
                total: all.len(),
                error: None,
            }
        }
    }
}

/// The network (all interfaces) and block I/O (all devices) counters of a stats answer;
/// `None` when it has neither (a stopped container's empty answer).
pub fn io_sample(s: &ContainerStatsResponse, now: Timestamp) -> Option<IoSample> {
    let nets = s.networks.as_ref();
    let blk = s
        .blkio_stats
        .as_ref()
        .and_then(|b| b.io_service_bytes_recursive.as_ref());
    if nets.is_none() && blk.is_none() {
        return None;
    }
    let sum_net = |f: fn(&bollard::models::ContainerNetworkStats) -> Option<u64>| {
        nets.into_iter()
            .flat_map(|n| n.values())
            .filter_map(f)
            .fold(0u64, u64::saturating_add)
    };
    let sum_blk = |op: &str| {
        blk.into_iter()
            .flatten()
            .filter(|e| e.op.as_deref().is_some_and(|o| o.eq_ignore_ascii_case(op)))
            .filter_map(|e| e.value)
            .fold(0u64, u64::saturating_add)
    };
    let at = time(s.read.as_deref()).unwrap_or(now);
    Some(IoSample {
        at_ms: at.as_millisecond(),
        net_rx: sum_net(|n| n.rx_bytes),
        net_tx: sum_net(|n| n.tx_bytes),
        blk_read: sum_blk("read"),
        blk_write: sum_blk("write"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inspect(json: &str) -> ContainerInspectResponse {
        serde_json::from_str(json).unwrap()
    }

    /// Docker 20.10's answer for an exited, health-checked compose container, with what a
    /// hostile host could put in it.
    const EXITED: &str = r#"{
        "Id": "abc", "Path": "sh", "Args": ["-c", "echo \u001b]52;c;aGk=\u0007hi"],
        "State": {"Status": "exited", "Running": false, "OOMKilled": true, "ExitCode": 137,
            "Error": "", "StartedAt": "2026-11-23T10:00:00.5Z",
            "FinishedAt": "2026-11-23T11:00:00Z",
            "Health": {"Status": "unhealthy", "FailingStreak": 3, "Log": [
                {"Start": "2026-11-23T10:59:00Z", "End": "2026-11-23T10:59:01Z", "ExitCode": 0, "Output": "ok"},
                {"Start": "2026-11-23T10:59:10Z", "End": "2026-11-23T10:59:11Z", "ExitCode": 0, "Output": "ok"},
                {"Start": "2026-11-23T10:59:20Z", "End": "2026-11-23T10:59:21Z", "ExitCode": 0, "Output": "ok"},
                {"Start": "2026-11-23T10:59:30Z", "End": "2026-11-23T10:59:31Z", "ExitCode": 1, "Output": "curl: (7)\n\u001b[2Jfailed\n\n3\n4\n5\n6"},
                {"Start": "2026-11-23T10:59:40Z", "End": "2026-11-23T10:59:41Z", "ExitCode": 1, "Output": "a"},
                {"Start": "2026-11-23T10:59:50Z", "End": "2026-11-23T10:59:51Z", "ExitCode": 1, "Output": "b"}
            ]}},
        "RestartCount": 2,
        "HostConfig": {"Memory": 536870912, "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 3}},
        "Mounts": [
            {"Type": "volume", "Name": "pgdata", "Source": "/var/lib/docker/volumes/pgdata/_data", "Destination": "/var/lib/postgresql/data", "RW": true},
            {"Type": "bind", "Source": "/srv/\u001b[31mconf", "Destination": "/etc/app", "RW": false}
        ],
        "Config": {"Env": ["PATH=/usr/bin", "POSTGRES_PASSWORD=hunter2", "EMPTY", "X=a=b\u009b31m"],
            "Labels": {"b": "2", "a": "\u202eevil"}},
        "NetworkSettings": {"Ports": {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}], "5432/tcp": null}}
    }"#;

    #[test]
    fn an_exited_container_read_whole_and_clean() {
        let d = from_inspect(&inspect(EXITED), Err("not running"));
        assert_eq!(d.status, "exited");
        assert!(!d.running && d.oom_killed);
        assert_eq!(d.exit_code, Some(137));
        assert_eq!(d.error, None);
        assert_eq!(d.finished_at.unwrap().to_string(), "2026-11-23T11:00:00Z");
        assert_eq!(d.restart_policy, "on-failure:3");
        assert_eq!(d.restart_count, Some(2));
        assert_eq!(d.mem_limit, Some(512 << 20));
        assert!(!d.command.contains('\u{1b}') && !d.command.contains('\u{7}'));
        let env: Vec<(&str, &str, bool)> = d
            .env
            .iter()
            .map(|e| (e.key.as_str(), e.value.as_str(), e.secret))
            .collect();
        assert_eq!(
            env,
            [
                ("PATH", "/usr/bin", false),
                ("POSTGRES_PASSWORD", "hunter2", true),
                ("EMPTY", "", false),
                ("X", "a=b", false),
            ]
        );
        assert_eq!(
            d.labels,
            [("a".into(), "evil".into()), ("b".into(), "2".into())]
        );
        assert_eq!(d.mounts[0].source, "pgdata");
        assert_eq!(d.mounts[1].source, "/srv/conf");
        assert!(d.mounts[1].read_only && !d.mounts[0].read_only);
        assert_eq!(
            d.ports,
            ["0.0.0.0:8080 → 80/tcp", "5432/tcp (not published)"]
        );
        let h = d.health.unwrap();
        assert_eq!(
            (h.status.as_str(), h.failing_streak),
            ("unhealthy", Some(3))
        );
        assert_eq!(h.runs.len(), HEALTH_RUNS);
        assert_eq!(h.runs[2].output, ["curl: (7)", "failed", "3", "4"]);
        assert_eq!(h.runs[4].output, ["b"]);
        assert_eq!(h.runs[4].exit_code, Some(1));
        assert_eq!(d.processes.error.as_deref(), Some("not running"));
    }

    #[test]
    fn bounded_however_much_the_host_sends() {
        let env: Vec<String> = (0..5000)
            .map(|i| format!("K{i}={}", "x".repeat(10_000)))
            .collect();
        let mut r = inspect(r#"{"Config": {}}"#);
        r.config.as_mut().unwrap().env = Some(env);
        let top = ContainerTopResponse {
            titles: Some(vec!["PID".into(), "CMD".into()]),
            processes: Some(
                (0..10_000)
                    .map(|i| vec![i.to_string(), "é".repeat(100_000)])
                    .collect(),
            ),
        };
        let d = from_inspect(&r, Ok(&top));
        assert_eq!(d.env.len(), MAX_ENTRIES);
        assert_eq!(d.env_total, 5000);
        assert!(
            d.env
                .iter()
                .all(|e| e.value.chars().count() <= MAX_VALUE_CHARS)
        );
        assert_eq!(d.processes.rows.len(), MAX_ENTRIES);
        assert_eq!(d.processes.total, 10_000);
        assert_eq!(d.processes.rows[0][1].chars().count(), MAX_VALUE_CHARS);
        assert!(d.processes.rows[0][1].ends_with('…'));
    }

    #[test]
    fn io_counters_sum_interfaces_and_devices() {
        let s: ContainerStatsResponse = serde_json::from_str(
            r#"{"read": "2026-11-23T11:30:02.5Z",
                "networks": {"eth0": {"rx_bytes": 100, "tx_bytes": 10},
                             "eth1": {"rx_bytes": 1, "tx_bytes": 2}},
                "blkio_stats": {"io_service_bytes_recursive": [
                    {"major": 8, "minor": 0, "op": "Read", "value": 4096},
                    {"major": 8, "minor": 0, "op": "Write", "value": 512},
                    {"major": 8, "minor": 16, "op": "read", "value": 4},
                    {"major": 8, "minor": 0, "op": "Total", "value": 4608}]}}"#,
        )
        .unwrap();
        let now = Timestamp::from_second(0).unwrap();
        let io = io_sample(&s, now).unwrap();
        assert_eq!((io.net_rx, io.net_tx), (101, 12));
        assert_eq!((io.blk_read, io.blk_write), (4100, 512));
        let read: Timestamp = "2026-11-23T11:30:02.5Z".parse().unwrap();
        assert_eq!(io.at_ms, read.as_millisecond());
        let empty: ContainerStatsResponse = serde_json::from_str("{}").unwrap();
        assert_eq!(io_sample(&empty, now), None);
    }
}
