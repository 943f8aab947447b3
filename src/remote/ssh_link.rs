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
/// every this many samples.
const WHOLE_EVERY: u32 = 5;
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
            asked: 0,
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

    async fn disconnect(&self) {
        Session::disconnect(self).await;
    }
}

/// The host's /proc and its containers' cgroup counters from one [`RemoteSampler`] (another
/// opened after any trouble with it); whole every [`WHOLE_EVERY`] samples, the rest
/// completed from the last whole one.
pub struct SshProbe {
    session: Arc<Session>,
    remote: Option<RemoteSampler>,
    sampler: procfs::Sampler,
    asked: u32,
    /// The last sample read whole: disks and page cache for the ones asked with `skip`.
    full: procfs::Sample,
}

impl Probe for SshProbe {
    async fn sample(&mut self) -> Result<Sampled, ProbeError> {
        // Whole with the first sample, then every few; see `procfs::LOOP`.
        let whole = self.asked.is_multiple_of(WHOLE_EVERY);
        let text = match ask(&self.session, &mut self.remote, whole).await {
            Ok(text) => text,
            Err(SampleError::Ssh(e)) => return Err(ProbeError::Lost(e)),
            Err(SampleError::Channel(e)) => {
                // Another channel at the next tick; a connection that is gone fails there.
                self.remote = None;
                return Err(ProbeError::Failed(e));
            }
        };
        self.asked = self.asked.wrapping_add(1);
        let mut parsed = procfs::parse(&text);
        if !parsed.complete {
            // A cut-off sample can end in half a number: skip it rather than graph it.
            self.remote = None;
            return Err(ProbeError::Failed("an incomplete metrics sample".into()));
        }
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
            .open_command(procfs::LOOP)
            .await
            .map_err(|e| SampleError::Ssh(e.to_string()))?;
        Ok(RemoteSampler {
            stream,
            buf: Vec::new(),
        })
    }

    /// Asks for one sample and reads it to its end marker.
    async fn sample(&mut self, disks: bool) -> Result<String, SampleError> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let ask: &[u8] = if disks { b"\n" } else { b"skip\n" };
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
    disks: bool,
) -> Result<String, SampleError> {
    if sampler.is_none() {
        *sampler = Some(RemoteSampler::open(session).await?);
    }
    match sampler.as_mut() {
        Some(s) => s.sample(disks).await,
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
