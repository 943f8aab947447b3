//! A host over SSH as the worker sees it ([`super::worker`]): the connector that makes
//! (and re-makes) the connection with the operator's answers to key and passphrase
//! questions, and the [`Session`] as a [`Link`], sampled by one long-lived shell.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use super::ssh::{self, KeyPolicy, Passphrases, Session, SshError, Target};
use super::worker::{Connector, Link, Probe, ProbeError, Sampled};
use crate::collect::procfs;
use crate::model::Secret;

/// The disks and the containers' page cache (the sampler's `df` and `grep`) are read
/// every this many samples: 30 s at the default refresh. Both change slowly, and the
/// forks are most of what a whole sample costs the host.
const WHOLE_EVERY: u32 = 15;
/// A sample larger than this is not a sample: the sampler's channel is dropped.
const MAX_SAMPLE: usize = 4 << 20;

pub struct SshConnector {
    pub target: Target,
    pub policy: KeyPolicy,
    pub passphrases: Passphrases,
}

impl SshConnector {
    pub fn new(target: Target, policy: KeyPolicy) -> Self {
        SshConnector {
            target,
            policy,
            passphrases: Passphrases::new(),
        }
    }
}

impl Connector for SshConnector {
    type Link = Session;

    async fn connect(&mut self) -> Result<Session, SshError> {
        Session::connect(&self.target, &self.policy, &self.passphrases).await
    }

    fn accept_key(&mut self, fingerprint: String) {
        self.policy = KeyPolicy::AcceptFingerprint(fingerprint);
    }

    fn passphrase(&mut self, path: String, secret: Secret) {
        self.passphrases.insert(path.into(), secret);
    }
}

impl Link for Session {
    type Probe = SshProbe;

    fn probe(self: &Arc<Self>) -> SshProbe {
        SshProbe {
            session: self.clone(),
            remote: None,
            sampler: procfs::Sampler::default(),
            plan: Plan::default(),
            full: procfs::Sample::default(),
        }
    }

    async fn docker(
        self: &Arc<Self>,
        socket: &str,
    ) -> (
        Result<(bollard::Docker, String), String>,
        crate::docker::Socket,
    ) {
        let opener = ssh::docker_socket(self.clone(), socket);
        (ssh::docker(self.clone(), socket).await, opener)
    }

    fn tunnel(self: &Arc<Self>) -> Option<Arc<dyn crate::checks::Tunnel>> {
        Some(self.clone())
    }

    fn is_closed(&self) -> bool {
        Session::is_closed(self)
    }

    async fn shell(
        self: &Arc<Self>,
        request: &super::shell::ShellRequest,
        docker_host: Option<&str>,
    ) -> Result<super::shell::ShellIo, String> {
        self.open_shell(request, docker_host).await
    }

    async fn disconnect(&self) {
        Session::disconnect(self).await;
    }
}

/// The host's /proc and its containers' cgroup counters from one [`RemoteSampler`] (another
/// opened after any trouble with it), asked as [`Plan`] says.
pub struct SshProbe {
    session: Arc<Session>,
    remote: Option<RemoteSampler>,
    sampler: procfs::Sampler,
    plan: Plan,
    /// The last sample read whole: disks and page cache for the ones asked with `skip`.
    full: procfs::Sample,
}

/// Which request each tick makes of the sampler (see `procfs::LOOP`): whole with the first
/// sample and every [`WHOLE_EVERY`], the rest completed from the last whole one; read by
/// the sampler's awk from the files the shell's last sample named, or by the shell's globs
/// (`skip`) while those are not known, after a rescan, or on a connection where the awk
/// reader failed.
#[derive(Debug, Clone, PartialEq)]
struct Plan {
    asked: u32,
    /// [`WHOLE_EVERY`], but in tests.
    whole_every: u32,
    /// The files the shell's last sample read, for the awk reader.
    files: Vec<String>,
    /// `files` went to this sampler's awk (with `p`): `r` reads them again.
    handed: bool,
    /// The awk reader has not failed on this connection.
    fast: bool,
    /// The host's figures come from a metrics source: only the containers' cgroups are
    /// read (`cg`, `cgskip`, and the awk reader handed only those files).
    cgroups_only: bool,
}

impl Default for Plan {
    fn default() -> Self {
        Plan {
            asked: 0,
            whole_every: WHOLE_EVERY,
            files: Vec::new(),
            handed: false,
            fast: true,
            cgroups_only: false,
        }
    }
}

impl Plan {
    fn next(&self) -> Ask<'_> {
        let cg = self.cgroups_only;
        if self.asked.is_multiple_of(self.whole_every) {
            Ask::Whole { cg }
        } else if !self.fast || self.files.is_empty() {
            Ask::Skip { cg }
        } else if self.handed {
            Ask::Again
        } else {
            Ask::Files(&self.files)
        }
    }

    /// The answer to a request of this kind came whole, with this text.
    fn answered(&mut self, by_awk: bool, text: &str) {
        self.asked = self.asked.wrapping_add(1);
        if by_awk {
            self.handed = true;
        } else {
            let files = if self.cgroups_only {
                procfs::cgroup_paths(text)
            } else {
                procfs::paths(text)
            };
            if files != self.files {
                self.files = files;
                self.handed = false;
            }
        }
    }

    /// The sampler failed, or was dropped, on a request of this kind: a new one starts at
    /// the next tick, and its awk knows no files. A reader that broke its sampler is not
    /// asked again on this connection.
    fn dropped(&mut self, by_awk: bool) {
        self.fast &= !by_awk;
        self.handed = false;
    }

    /// Containers may have started: the shell's globs look again.
    fn rescan(&mut self) {
        self.files.clear();
    }

    /// Whether to read the host's /proc (its figures are ours to send) or only the
    /// containers' cgroups; a change starts with a whole sample of the new kind.
    fn host_figures(&mut self, wanted: bool) {
        if self.cgroups_only != wanted {
            return;
        }
        self.cgroups_only = !wanted;
        self.files.clear();
        self.handed = false;
        self.asked = 0;
    }
}

impl Probe for SshProbe {
    async fn sample(&mut self) -> Result<Sampled, ProbeError> {
        let next = self.plan.next();
        let (whole, by_awk) = (matches!(next, Ask::Whole { .. }), next.by_awk());
        let line = next.line();
        let text = match ask(&self.session, &mut self.remote, &line).await {
            Ok(text) => text,
            Err(SampleError::Ssh(e)) => return Err(ProbeError::Lost(e)),
            Err(SampleError::Channel(e)) => {
                // Another channel at the next tick; a connection that is gone fails there.
                self.remote = None;
                self.plan.dropped(by_awk);
                return Err(ProbeError::Failed(e));
            }
        };
        let mut parsed = procfs::parse(&text);
        if !parsed.complete {
            // A cut-off sample can end in half a number: skip it rather than graph it.
            self.remote = None;
            self.plan.dropped(by_awk);
            return Err(ProbeError::Failed("an incomplete metrics sample".into()));
        }
        self.plan.answered(by_awk, &text);
        if whole {
            self.full = parsed.clone();
        } else {
            parsed.fill_from(&self.full);
        }
        let (metrics, per_container) = self.sampler.next(parsed, Instant::now());
        let usage: HashMap<_, _> = per_container
            .into_iter()
            .map(|(id, u)| (id, (u.cpu_percent, u.mem_bytes)))
            .collect();
        Ok((metrics, usage))
    }

    fn reset(&mut self) {
        self.remote = None;
        self.plan.dropped(false);
    }

    fn rescan(&mut self) {
        self.plan.rescan();
    }

    fn host_figures(&mut self, wanted: bool) {
        self.plan.host_figures(wanted);
    }
}

/// One request to the sampler (see `procfs::LOOP`).
#[derive(Debug, PartialEq)]
enum Ask<'a> {
    /// Everything, with the disks and the page cache (`cg`: no /proc, no disks).
    Whole { cg: bool },
    /// The shell's globs without the disks and the page cache (`cg`: nor /proc).
    Skip { cg: bool },
    /// The awk reader, handed these files first.
    Files(&'a [String]),
    /// The awk reader, on the files it has.
    Again,
}

impl Ask<'_> {
    fn line(&self) -> Vec<u8> {
        match self {
            Ask::Whole { cg: false } => b"\n".to_vec(),
            Ask::Whole { cg: true } => b"cg\n".to_vec(),
            Ask::Skip { cg: false } => b"skip\n".to_vec(),
            Ask::Skip { cg: true } => b"cgskip\n".to_vec(),
            Ask::Again => b"r\n".to_vec(),
            Ask::Files(files) => format!("p {}\n", files.join(" ")).into_bytes(),
        }
    }

    fn by_awk(&self) -> bool {
        matches!(self, Ask::Again | Ask::Files(_))
    }
}

/// The host's sampler loop ([`procfs::LOOP`]) on a channel of its own: a line in, one
/// sample out, for as long as the connection lives.
struct RemoteSampler {
    stream: russh::ChannelStream<russh::client::Msg>,
    buf: Vec<u8>,
}

enum SampleError {
    /// The connection failed: the host is lost.
    Ssh(String),
    /// Only the sampler's channel failed (it ended, or talked nonsense): open another.
    Channel(String),
}

impl RemoteSampler {
    async fn open(session: &Session) -> Result<Self, SampleError> {
        let stream = session
            .open_command(&procfs::LOOP)
            .await
            .map_err(|e| SampleError::Ssh(e.to_string()))?;
        Ok(RemoteSampler {
            stream,
            buf: Vec::new(),
        })
    }

    /// Asks for one sample with `ask` (one line) and reads it to its end marker.
    async fn sample(&mut self, ask: &[u8]) -> Result<String, SampleError> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let channel = |e: std::io::Error| SampleError::Channel(e.to_string());
        self.stream.write_all(ask).await.map_err(channel)?;
        self.stream.flush().await.map_err(channel)?;
        self.buf.clear();
        let mut chunk = [0u8; 16384];
        loop {
            let n = self.stream.read(&mut chunk).await.map_err(channel)?;
            if n == 0 {
                return Err(SampleError::Channel("the sampler ended".into()));
            }
            let from = self.buf.len().saturating_sub(procfs::END_MARK.len());
            self.buf.extend_from_slice(&chunk[..n]);
            if self.buf[from..]
                .windows(procfs::END_MARK.len())
                .any(|w| w == procfs::END_MARK)
            {
                return Ok(String::from_utf8_lossy(&self.buf).into_owned());
            }
            if self.buf.len() > MAX_SAMPLE {
                return Err(SampleError::Channel(format!(
                    "a sample over {} MiB",
                    MAX_SAMPLE >> 20
                )));
            }
        }
    }
}

/// One sample from the sampler, opened first when there is none.
async fn ask(
    session: &Session,
    sampler: &mut Option<RemoteSampler>,
    line: &[u8],
) -> Result<String, SampleError> {
    if sampler.is_none() {
        *sampler = Some(RemoteSampler::open(session).await?);
    }
    match sampler.as_mut() {
        Some(s) => s.sample(line).await,
        None => Err(SampleError::Channel("no sampler".into())),
    }
}

/// Host workers spawn jobs on the runtime: the job must be `Send` over either runner.
#[cfg(test)]
#[allow(dead_code)]
fn jobs_are_send(
    session: &Session,
    local: &crate::jobs::Local,
    job: &crate::jobs::backup::BackupJob<'_>,
) {
    fn send<T: Send>(_: T) {}
    let (tx, _rx) = tokio::sync::mpsc::channel(1);
    send(crate::jobs::backup::run(session, job, &tx));
    send(crate::jobs::backup::run(local, job, &tx));
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "==> /proc/stat <==\ncpu 1 2 3 4\n\n==> /sys/fs/cgroup/docker/a/cpu.stat <==\n\
                          usage_usec 1\n==> end <==\n";

    /// Asks as the probe does, answering every request with `text`; returns the kinds asked.
    fn run(plan: &mut Plan, ticks: usize, text: &str) -> Vec<&'static str> {
        (0..ticks)
            .map(|_| {
                let next = plan.next();
                let (kind, by_awk) = (
                    match next {
                        Ask::Whole { cg: false } => "whole",
                        Ask::Whole { cg: true } => "cg",
                        Ask::Skip { cg: false } => "skip",
                        Ask::Skip { cg: true } => "cgskip",
                        Ask::Files(_) => "p",
                        Ask::Again => "r",
                    },
                    next.by_awk(),
                );
                plan.answered(by_awk, text);
                kind
            })
            .collect()
    }

    #[test]
    fn a_host_served_by_a_metrics_source_has_only_its_cgroups_read() {
        let mut plan = Plan {
            whole_every: 5,
            ..Plan::default()
        };
        assert_eq!(run(&mut plan, 3, SAMPLE), ["whole", "p", "r"]);
        plan.host_figures(false);
        let cg_only = "==> /sys/fs/cgroup/docker/a/cpu.stat <==\nusage_usec 1\n==> end <==\n";
        assert_eq!(
            run(&mut plan, 7, cg_only),
            ["cg", "p", "r", "r", "r", "cg", "r"]
        );
        assert_eq!(plan.files, ["/sys/fs/cgroup/docker/a/cpu.stat"]);
        let unhanded = Plan {
            handed: false,
            ..plan.clone()
        };
        let Ask::Files(files) = unhanded.next() else {
            panic!("the awk reader is handed the files")
        };
        assert!(files.iter().all(|f| !f.starts_with("/proc/")), "{files:?}");
        // No container yet: the shell's globs, without /proc.
        plan.rescan();
        assert_eq!(plan.next().line(), b"cgskip\n");
        // The source fails: /proc again, from a whole sample.
        plan.host_figures(true);
        assert_eq!(run(&mut plan, 2, SAMPLE), ["whole", "p"]);
        assert!(plan.files.iter().any(|f| f == "/proc/stat"));
    }

    #[test]
    fn most_ticks_go_to_the_awk_reader_and_a_rescan_or_a_failure_goes_back_to_the_shell() {
        let every_fifth = Plan {
            whole_every: 5,
            ..Plan::default()
        };
        let mut plan = every_fifth.clone();
        let first = run(&mut plan, 11, SAMPLE);
        assert_eq!(
            first,
            [
                "whole", "p", "r", "r", "r", "whole", "r", "r", "r", "r", "whole"
            ]
        );
        assert_eq!(plan.next().line(), b"r\n");
        // A container started: the shell's globs, then the awk gets the new list.
        plan.rescan();
        let more = SAMPLE.replace("docker/a/", "docker/b/");
        assert_eq!(run(&mut plan, 3, &more), ["skip", "p", "r"]);
        assert!(plan.files.iter().any(|f| f.contains("docker/b/")));
        // A new sampler (the old one timed out) is handed the files again.
        plan.dropped(false);
        assert_eq!(run(&mut plan, 3, &more), ["p", "whole", "r"]);
        let fresh = Plan {
            handed: false,
            ..plan.clone()
        };
        let Ask::Files(files) = fresh.next() else {
            panic!("files")
        };
        assert_eq!(files, ["/proc/stat", "/sys/fs/cgroup/docker/b/cpu.stat"]);
        // The awk reader broke its sampler: the shell answers from then on.
        plan.dropped(true);
        assert_eq!(
            run(&mut plan, 5, &more),
            ["skip", "skip", "skip", "whole", "skip"]
        );
        // A sample that names no /proc/stat gives the awk nothing to read.
        let mut plan = every_fifth;
        assert_eq!(
            run(&mut plan, 3, "==> end <==\n"),
            ["whole", "skip", "skip"]
        );
    }
}
