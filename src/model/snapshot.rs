//! What a host worker knows of its host, whole: connection state, metrics, Docker and its
//! containers, backup sets and check results. A worker keeps one [`HostSnapshot`] and
//! sends it, with what changed, at each update (`Msg::Host`), so a reader never has to
//! piece one host together from separate messages: `opsdeck status` waits until each
//! host's snapshot is [`complete`](HostSnapshot::complete), the console applies what
//! [`Changed`].

use jiff::Timestamp;

use super::backup::BackupStatus;
use super::check::CheckStatus;
use super::host::{Container, DockerState, HostConn, Metrics};

#[derive(Debug, Clone, PartialEq)]
pub struct HostSnapshot {
    pub conn: HostConn,
    /// The newest sample and when it came; `None` until the first.
    pub metrics: Option<(Timestamp, Metrics)>,
    pub docker: DockerState,
    /// The newest container list and when it was made; `None` until the first.
    pub containers: Option<(Timestamp, Vec<Container>)>,
    /// `None` until the first listing; `Some(empty)` from the start for a host with no
    /// backup sets.
    pub backups: Option<Vec<BackupStatus>>,
    /// `None` until the first round; `Some(empty)` from the start for a host with no checks.
    pub checks: Option<Vec<CheckStatus>>,
    /// Where the metrics come from when not from SSH sampling (`None`: SSH).
    pub source: Option<MetricsFrom>,
    /// Ten minutes of graphs from the metrics source, once, for a console that just started.
    pub history: Option<std::sync::Arc<super::series::History>>,
    /// The host has an external metrics source: a down host's answer is complete only once
    /// the source has said whether it reports the host (a host SSH cannot reach may still
    /// have figures).
    pub awaits_source: bool,
}

/// An external metrics source of a host, and whether it serves it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsFrom {
    /// `prometheus http://prom:9090 (instance 10.0.0.1:9100)`.
    pub what: String,
    /// Why the host is sampled over SSH instead, while it is.
    pub fallback: Option<String>,
}

/// Which parts of a snapshot an update brought (each may equal what was there before).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Changed {
    pub conn: bool,
    pub metrics: bool,
    pub docker: bool,
    pub containers: bool,
    pub backups: bool,
    pub checks: bool,
}

impl Changed {
    pub const CONN: Changed = Changed {
        conn: true,
        metrics: false,
        docker: false,
        containers: false,
        backups: false,
        checks: false,
    };

    pub fn or(self, o: Changed) -> Changed {
        Changed {
            conn: self.conn || o.conn,
            metrics: self.metrics || o.metrics,
            docker: self.docker || o.docker,
            containers: self.containers || o.containers,
            backups: self.backups || o.backups,
            checks: self.checks || o.checks,
        }
    }
}

/// One thing a worker's task learnt about its host.
#[derive(Debug, Clone, PartialEq)]
pub enum Part {
    Conn(HostConn),
    /// A sample; the host answered, so it is up.
    Metrics {
        at: Timestamp,
        metrics: Metrics,
    },
    /// Figures from the external metrics source: they say nothing of the connection.
    Figures {
        at: Timestamp,
        metrics: Metrics,
    },
    Docker(DockerState),
    Containers {
        at: Timestamp,
        containers: Vec<Container>,
    },
    Backups(Vec<BackupStatus>),
    Checks(Vec<CheckStatus>),
    /// The external metrics source's state (reported as a connection change).
    Source(MetricsFrom),
    /// The source's history of the graphs (reported as a metrics change).
    History(std::sync::Arc<super::series::History>),
}

impl HostSnapshot {
    /// Nothing known yet: connecting; backups and checks already complete where the host
    /// has none.
    pub fn new(has_backups: bool, has_checks: bool) -> Self {
        HostSnapshot {
            conn: HostConn::Connecting,
            metrics: None,
            docker: DockerState::Unknown,
            containers: None,
            backups: (!has_backups).then(Vec::new),
            checks: (!has_checks).then(Vec::new),
            source: None,
            history: None,
            awaits_source: false,
        }
    }

    /// Takes in one part; says which part it was. Whether it differs from what was there
    /// is for the reader to judge (the console redraws only when it does).
    pub fn apply(&mut self, part: Part) -> Changed {
        let mut changed = Changed::default();
        match part {
            Part::Conn(conn) => {
                self.conn = conn;
                changed.conn = true;
            }
            Part::Metrics { at, metrics } => {
                self.metrics = Some((at, metrics));
                changed.metrics = true;
                if self.conn != HostConn::Up {
                    self.conn = HostConn::Up;
                    changed.conn = true;
                }
            }
            Part::Figures { at, metrics } => {
                self.metrics = Some((at, metrics));
                changed.metrics = true;
            }
            Part::Docker(state) => {
                self.docker = state;
                changed.docker = true;
            }
            Part::Containers { at, containers } => {
                self.containers = Some((at, containers));
                changed.containers = true;
            }
            Part::Backups(b) => {
                self.backups = Some(b);
                changed.backups = true;
            }
            Part::Checks(c) => {
                self.checks = Some(c);
                changed.checks = true;
            }
            Part::Source(s) => {
                self.source = Some(s);
                changed.conn = true;
            }
            Part::History(h) => {
                self.history = Some(h);
                changed.conn = true;
            }
        }
        changed
    }

    /// A full answer: a host that is down says all there is; one that is up has sent a
    /// sample, its containers (or why Docker cannot be asked), and its backup sets and
    /// check results where it has any.
    pub fn complete(&self) -> bool {
        match self.conn {
            HostConn::Down { .. } => !self.awaits_source || self.source.is_some(),
            _ => {
                self.metrics.is_some()
                    && (matches!(self.docker, DockerState::Unavailable { .. })
                        || self.containers.is_some())
                    && self.backups.is_some()
                    && self.checks.is_some()
            }
        }
    }

    /// Only the connection state, for a worker that can no longer say anything itself.
    pub fn down(since: Timestamp, reason: String) -> Self {
        let mut s = HostSnapshot::new(false, false);
        s.conn = HostConn::Down { since, reason };
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> Timestamp {
        Timestamp::from_second(s).unwrap()
    }

    #[test]
    fn complete_once_every_wanted_part_is_in() {
        let mut s = HostSnapshot::new(true, false);
        assert!(!s.complete());
        let c = s.apply(Part::Metrics {
            at: t(1),
            metrics: Metrics::default(),
        });
        assert!(c.metrics && c.conn, "{c:?}");
        assert_eq!(s.conn, HostConn::Up);
        assert!(!s.complete(), "no containers yet");
        s.apply(Part::Docker(DockerState::Unavailable {
            reason: "no socket".into(),
        }));
        assert!(!s.complete(), "no backups yet");
        s.apply(Part::Backups(vec![]));
        assert!(s.complete());
    }

    #[test]
    fn a_down_host_is_complete_and_an_update_says_which_parts_it_brought() {
        let mut s = HostSnapshot::new(true, true);
        let down = HostConn::Down {
            since: t(5),
            reason: "refused".into(),
        };
        assert_eq!(s.apply(Part::Conn(down)), Changed::CONN);
        assert!(s.complete());
        let lists = [
            Part::Containers {
                at: t(6),
                containers: vec![],
            },
            Part::Docker(DockerState::Unknown),
        ];
        let c = lists
            .into_iter()
            .fold(Changed::default(), |c, p| c.or(s.apply(p)));
        assert!(c.containers && c.docker && !c.conn && !c.metrics, "{c:?}");
        assert_eq!(s.containers.as_ref().map(|(at, _)| *at), Some(t(6)));
        // a sample while up brings no connection change
        s.apply(Part::Conn(HostConn::Up));
        let c = s.apply(Part::Metrics {
            at: t(7),
            metrics: Metrics::default(),
        });
        assert!(c.metrics && !c.conn, "{c:?}");
    }
}
