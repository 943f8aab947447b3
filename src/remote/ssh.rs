//! One SSH connection per host (russh), every piece of host work a channel on it: execs
//! for metrics and steps, `direct-streamlocal` for the Docker socket, `direct-tcpip` for
//! jump hosts. Host keys are checked as strictly as OpenSSH does, before any channel opens.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bollard::Docker;
use hyper_util::rt::TokioIo;
use russh::ChannelMsg;
use russh::client::{self, AuthResult, Handle};
use russh::keys::agent::client::AgentClient;
use russh::keys::{PrivateKeyWithHashAlg, PublicKey, PublicKeyOrCertificate, load_secret_key};

use super::known_hosts::{self, HostKeyStatus};
use crate::config::{Host, Settings};
use crate::jobs::runner::{ExecOutput, ProcEvent, Process, RunError, Runner};

pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Exec output kept per command: a metrics sample is a few kilobytes; this is a fence.
const MAX_OUTPUT: usize = 8 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hop {
    pub hostname: String,
    pub port: u16,
    pub user: String,
    pub identities: Vec<PathBuf>,
}

/// Everything needed to reach one host, resolved from the inventory and `~/.ssh/config`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub name: String,
    pub dest: Hop,
    pub jumps: Vec<Hop>,
    /// Checked in order; accepted keys are appended to the first.
    pub known_hosts: Vec<PathBuf>,
    pub agent: Option<PathBuf>,
}

/// Passphrases typed by the operator, by identity file path; kept by the host's worker.
pub type Passphrases = std::collections::HashMap<PathBuf, crate::model::Secret>;

/// What to do with a host key that no known_hosts file mentions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyPolicy {
    Refuse,
    /// `--accept-new`: record it, like OpenSSH's `StrictHostKeyChecking=accept-new`.
    AcceptNew,
    /// The operator saw this fingerprint and said yes; any other key is still refused.
    AcceptFingerprint(String),
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum SshError {
    #[error("cannot connect to {addr}: {reason}")]
    Connect { addr: String, reason: String },
    #[error("{addr}: no answer within {}s", CONNECT_TIMEOUT.as_secs())]
    Timeout { addr: String },
    #[error(
        "unknown host key for {host} ({fingerprint}): not in {files}; accept it in the console or run with --accept-new"
    )]
    UnknownKey {
        host: String,
        fingerprint: String,
        files: String,
    },
    #[error(
        "HOST KEY CHANGED for {host}: the key offered ({fingerprint}) differs from {path}:{line}; refusing to connect (possible man-in-the-middle). Remove that line if the change is expected"
    )]
    ChangedKey {
        host: String,
        fingerprint: String,
        path: String,
        line: usize,
    },
    #[error("host key for {host} is marked @revoked in {path}:{line}; refusing to connect")]
    RevokedKey {
        host: String,
        path: String,
        line: usize,
    },
    #[error("{host} offered a host certificate; opsdeck checks plain host keys only")]
    Certificate { host: String },
    #[error(
        "the identity file {path} is encrypted: enter its passphrase in the console (A), or add it to ssh-agent with `ssh-add {path}`"
    )]
    NeedPassphrase { path: String, wrong: bool },
    #[error("permission denied for {user}@{host}: tried {tried}")]
    Auth {
        user: String,
        host: String,
        tried: String,
    },
    #[error("ssh: {0}")]
    Protocol(String),
}

impl SshError {
    /// Errors a retry cannot fix: the operator has to act.
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            SshError::ChangedKey { .. }
                | SshError::RevokedKey { .. }
                | SshError::UnknownKey { .. }
                | SshError::Certificate { .. }
                | SshError::NeedPassphrase { .. }
        )
    }
}

fn expand_home(p: &str) -> PathBuf {
    match (p.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => Path::new(&home).join(rest),
        _ => PathBuf::from(p),
    }
}

fn home_ssh(file: &str) -> Option<PathBuf> {
    std::env::var_os("HOME").map(|h| Path::new(&h).join(".ssh").join(file))
}

/// Unknown keywords are skipped, and the ones ssh2_config knows but does not model (such as
/// `UserKnownHostsFile`) are kept for [`resolve`] to read.
pub const PARSE_RULES: ssh2_config::ParseRule = ssh2_config::ParseRule::ALLOW_UNKNOWN_FIELDS
    .union(ssh2_config::ParseRule::ALLOW_UNSUPPORTED_FIELDS);

/// `UserKnownHostsFile` of an ssh_config host: its files, `none` meaning none.
fn user_known_hosts(params: &ssh2_config::HostParams) -> Vec<PathBuf> {
    params
        .unsupported_fields
        .get("userknownhostsfile")
        .into_iter()
        .flatten()
        .flat_map(|a| a.split_whitespace())
        .filter(|f| *f != "none" && *f != "/dev/null")
        .map(expand_home)
        .collect()
}

/// Reads `~/.ssh/config` if there is one; a broken file is reported, not fatal.
pub fn load_ssh_config() -> Option<ssh2_config::SshConfig> {
    let path = home_ssh("config")?;
    let file = std::fs::File::open(path).ok()?;
    let mut reader = std::io::BufReader::new(file);
    match ssh2_config::SshConfig::default().parse(&mut reader, PARSE_RULES) {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::warn!("~/.ssh/config: {e}");
            None
        }
    }
}

fn default_user() -> String {
    std::env::var("USER").unwrap_or_else(|_| "root".into())
}

/// `user@host:port` (all but host optional), resolved through `~/.ssh/config` like ssh does.
fn resolve_hop(
    spec: &str,
    cfg: Option<&ssh2_config::SshConfig>,
    extra_identity: Option<&str>,
) -> Hop {
    let (user, rest) = match spec.rsplit_once('@') {
        Some((u, r)) => (Some(u.to_string()), r),
        None => (None, spec),
    };
    let (alias, port) = match rest.rsplit_once(':') {
        Some((h, p)) if p.parse::<u16>().is_ok() && !h.contains(':') => {
            (h.to_string(), p.parse().ok())
        }
        _ => (rest.to_string(), None),
    };
    let params = cfg.map(|c| c.query(&alias));
    let hostname = params
        .as_ref()
        .and_then(|p| p.host_name.clone())
        .unwrap_or_else(|| alias.clone());
    let port = port.or(params.as_ref().and_then(|p| p.port)).unwrap_or(22);
    let user = user
        .or_else(|| params.as_ref().and_then(|p| p.user.clone()))
        .unwrap_or_else(default_user);
    let mut identities: Vec<PathBuf> = extra_identity.map(expand_home).into_iter().collect();
    if let Some(files) = params.as_ref().and_then(|p| p.identity_file.clone()) {
        identities.extend(files.iter().map(|f| expand_home(&f.to_string_lossy())));
    }
    for name in ["id_ed25519", "id_ecdsa", "id_rsa"] {
        identities.extend(home_ssh(name));
    }
    identities.dedup();
    Hop {
        hostname,
        port,
        user,
        identities,
    }
}

/// Resolves an inventory host; inventory values win over `~/.ssh/config`.
pub fn resolve(host: &Host, settings: &Settings, cfg: Option<&ssh2_config::SshConfig>) -> Target {
    let mut dest = resolve_hop(host.address(), cfg, host.identity_file.as_deref());
    if let Some(p) = host.port {
        dest.port = p.0;
    }
    if let Some(u) = &host.user {
        dest.user = u.clone();
    }
    let jump_spec = host.jump.clone().or_else(|| {
        cfg.map(|c| c.query(host.address()))
            .and_then(|p| p.proxy_jump)
            .map(|hops| hops.join(","))
    });
    let jumps = jump_spec
        .iter()
        .flat_map(|s| s.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty() && *s != "none")
        .map(|s| resolve_hop(s, cfg, None))
        .collect();
    let mut known_hosts: Vec<PathBuf> = host
        .known_hosts
        .as_deref()
        .or(settings.known_hosts.as_deref())
        .map(expand_home)
        .into_iter()
        .collect();
    if let Some(c) = cfg {
        known_hosts.extend(user_known_hosts(&c.query(host.address())));
    }
    known_hosts.extend(home_ssh("known_hosts"));
    known_hosts.dedup();
    Target {
        name: host.name.get_ref().clone(),
        dest,
        jumps,
        known_hosts,
        agent: std::env::var_os("SSH_AUTH_SOCK")
            .filter(|s| !s.is_empty())
            .map(PathBuf::from),
    }
}

/// Checks the server's key during the handshake and remembers why it said no.
struct Verifier {
    hostname: String,
    port: u16,
    files: Vec<PathBuf>,
    policy: KeyPolicy,
    refusal: Arc<Mutex<Option<SshError>>>,
}

impl Verifier {
    fn refuse(&self, e: SshError) -> bool {
        if let Ok(mut slot) = self.refusal.lock() {
            *slot = Some(e);
        }
        false
    }

    fn verify(&self, key: &PublicKey) -> bool {
        let host = if self.port == 22 {
            self.hostname.clone()
        } else {
            format!("[{}]:{}", self.hostname, self.port)
        };
        let fingerprint = known_hosts::fingerprint(key);
        match known_hosts::check(&self.files, &self.hostname, self.port, key) {
            Ok(HostKeyStatus::Known { .. }) => true,
            Ok(HostKeyStatus::Changed { path, line, .. }) => self.refuse(SshError::ChangedKey {
                host,
                fingerprint,
                path: path.display().to_string(),
                line,
            }),
            Ok(HostKeyStatus::Revoked { path, line }) => self.refuse(SshError::RevokedKey {
                host,
                path: path.display().to_string(),
                line,
            }),
            Ok(HostKeyStatus::Unknown) => {
                let accept = match &self.policy {
                    KeyPolicy::AcceptNew => true,
                    KeyPolicy::AcceptFingerprint(f) => *f == fingerprint,
                    KeyPolicy::Refuse => false,
                };
                let Some(file) = self.files.first().filter(|_| accept) else {
                    let files = self
                        .files
                        .iter()
                        .map(|f| f.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ");
                    return self.refuse(SshError::UnknownKey {
                        host,
                        fingerprint,
                        files,
                    });
                };
                match known_hosts::append(file, &self.hostname, self.port, key) {
                    Ok(()) => true,
                    Err(e) => self.refuse(SshError::Protocol(format!(
                        "cannot record the host key in {}: {e}",
                        file.display()
                    ))),
                }
            }
            Err(e) => self.refuse(SshError::Protocol(format!("reading known_hosts: {e}"))),
        }
    }
}

impl client::Handler for Verifier {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        Ok(match key {
            PublicKeyOrCertificate::PublicKey { key, .. } => self.verify(key),
            PublicKeyOrCertificate::Certificate(_) => self.refuse(SshError::Certificate {
                host: self.hostname.clone(),
            }),
        })
    }
}

fn ssh_config() -> Arc<client::Config> {
    Arc::new(client::Config {
        // Keepalives, not an inactivity timeout: a quiet `docker compose pull` must live.
        keepalive_interval: Some(Duration::from_secs(15)),
        keepalive_max: 3,
        inactivity_timeout: None,
        nodelay: true,
        ..Default::default()
    })
}

/// A live connection; jump hosts stay open underneath it as long as it lives.
pub struct Session {
    handle: Handle<Verifier>,
    /// The jump hosts' connections, shared with every other session behind them.
    _jumps: Vec<Arc<Handle<Verifier>>>,
    pub target: Target,
    /// Channels opened to Unix sockets on the host (Docker's API, logs).
    sockets: std::sync::atomic::AtomicU64,
}

/// Handshakes in flight to one sshd at most: OpenSSH's MaxStartups starts dropping new
/// connections at 10 unauthenticated ones.
const HANDSHAKES_PER_SSHD: usize = 8;
/// Tries of a handshake that the server reset.
const HANDSHAKE_TRIES: u64 = 3;

type JumpSlot = Arc<tokio::sync::Mutex<std::sync::Weak<Handle<Verifier>>>>;

/// Connections to jump hosts, by the chain that reaches them (and who logs in), shared by
/// every session behind them while any is alive.
static JUMPS: std::sync::LazyLock<Mutex<std::collections::HashMap<String, JumpSlot>>> =
    std::sync::LazyLock::new(Mutex::default);

/// A semaphore per sshd address, for [`HANDSHAKES_PER_SSHD`].
static GATES: std::sync::LazyLock<
    Mutex<std::collections::HashMap<String, Arc<tokio::sync::Semaphore>>>,
> = std::sync::LazyLock::new(Mutex::default);

/// `user@host:port` of each hop, with the identities offered: sessions share a jump
/// connection only when they would have logged in to it the same way.
fn chain_key(hops: &[Hop]) -> String {
    hops.iter()
        .map(|h| format!("{}@{}:{} {:?}", h.user, h.hostname, h.port, h.identities))
        .collect::<Vec<_>>()
        .join(" > ")
}

enum HandshakeError {
    /// Refused by us or the server in a way that is final (host key, authentication).
    Ssh(SshError),
    /// The transport failed: perhaps worth another try.
    Russh(russh::Error),
}

impl From<SshError> for HandshakeError {
    fn from(e: SshError) -> Self {
        HandshakeError::Ssh(e)
    }
}

fn is_reset(reason: &str) -> bool {
    let r = reason.to_ascii_lowercase();
    r.contains("reset") || r.contains("connection closed") || r.contains("disconnected")
}

/// A job's commands run over this session.
impl Runner for Session {
    async fn run(&self, command: &str) -> Result<ExecOutput, RunError> {
        Ok(self.exec(command).await?)
    }

    async fn start(&self, command: &str) -> Result<Process, RunError> {
        Ok(self.exec_streaming(command).await?)
    }
}

impl From<SshError> for RunError {
    fn from(e: SshError) -> Self {
        RunError::Transport(e.to_string())
    }
}

impl Session {
    /// `passphrases` holds what the operator typed for encrypted identity files, by path.
    pub async fn connect(
        target: &Target,
        policy: &KeyPolicy,
        passphrases: &Passphrases,
    ) -> Result<Session, SshError> {
        // Each hop's handshake has its own deadline (in `open_hop`), not counting the wait
        // for a turn at a busy sshd or for a shared jump connection being made.
        Self::connect_inner(target, policy, passphrases).await
    }

    async fn connect_inner(
        target: &Target,
        policy: &KeyPolicy,
        passphrases: &Passphrases,
    ) -> Result<Session, SshError> {
        let mut jumps: Vec<Arc<Handle<Verifier>>> = Vec::new();
        // Jump hosts are shared: every target behind the same chain rides on one
        // connection to it, a channel each.
        for (i, hop) in target.jumps.iter().enumerate() {
            let key = chain_key(&target.jumps[..=i]);
            let slot = {
                let mut pool = JUMPS.lock().unwrap_or_else(|p| p.into_inner());
                pool.retain(|_, s| {
                    Arc::strong_count(s) > 1 || s.try_lock().is_ok_and(|w| w.strong_count() > 0)
                });
                pool.entry(key).or_default().clone()
            };
            // One connect per chain at a time; the others wait for it and share it.
            let mut shared = slot.lock().await;
            let handle = match shared.upgrade().filter(|h| !h.is_closed()) {
                Some(h) => h,
                None => {
                    let h = Arc::new(
                        Self::open_hop(target, hop, jumps.last(), policy, passphrases).await?,
                    );
                    *shared = Arc::downgrade(&h);
                    h
                }
            };
            drop(shared);
            jumps.push(handle);
        }
        let handle =
            Self::open_hop(target, &target.dest, jumps.last(), policy, passphrases).await?;
        Ok(Session {
            handle,
            _jumps: jumps,
            target: target.clone(),
            sockets: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// One SSH connection: straight to `hop`, or through a `direct-tcpip` channel of `via`.
    /// At most [`HANDSHAKES_PER_SSHD`] handshakes to one sshd run at once (sshd refuses
    /// past its MaxStartups), and a connection reset during one is tried again.
    async fn open_hop(
        target: &Target,
        hop: &Hop,
        via: Option<&Arc<Handle<Verifier>>>,
        policy: &KeyPolicy,
        passphrases: &Passphrases,
    ) -> Result<Handle<Verifier>, SshError> {
        let addr = format!("{}:{}", hop.hostname, hop.port);
        let gate = {
            let mut gates = GATES.lock().unwrap_or_else(|p| p.into_inner());
            gates
                .entry(addr.clone())
                .or_insert_with(|| Arc::new(tokio::sync::Semaphore::new(HANDSHAKES_PER_SSHD)))
                .clone()
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            let permit = gate
                .acquire()
                .await
                .map_err(|_| SshError::Protocol("handshake gate closed".into()))?;
            let refusal = Arc::new(Mutex::new(None));
            let verifier = Verifier {
                hostname: hop.hostname.clone(),
                port: hop.port,
                files: target.known_hosts.clone(),
                policy: policy.clone(),
                refusal: refusal.clone(),
            };
            let handshake = async {
                let mut handle = Self::handshake(hop, via, verifier, &addr).await?;
                authenticate(&mut handle, hop, target.agent.as_deref(), passphrases).await?;
                Ok::<_, HandshakeError>(handle)
            };
            let result = tokio::time::timeout(CONNECT_TIMEOUT, handshake)
                .await
                .map_err(|_| SshError::Timeout { addr: addr.clone() })?;
            match result {
                Ok(handle) => return Ok(handle),
                Err(HandshakeError::Ssh(e)) => return Err(e),
                Err(HandshakeError::Russh(e)) => {
                    if let Some(refused) = refusal.lock().ok().and_then(|mut s| s.take()) {
                        return Err(refused);
                    }
                    let reason = connect_reason(&e);
                    drop(permit);
                    // sshd past MaxStartups drops new connections: a reset, not an answer.
                    if attempt < HANDSHAKE_TRIES && is_reset(&reason) {
                        tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
                        continue;
                    }
                    return Err(SshError::Connect { addr, reason });
                }
            }
        }
    }

    /// The SSH handshake with one hop, straight or through `via`.
    async fn handshake(
        hop: &Hop,
        via: Option<&Arc<Handle<Verifier>>>,
        verifier: Verifier,
        addr: &str,
    ) -> Result<Handle<Verifier>, HandshakeError> {
        let result = match via {
            None => {
                client::connect(ssh_config(), (hop.hostname.as_str(), hop.port), verifier).await
            }
            Some(via) => {
                let channel = via
                    .channel_open_direct_tcpip(
                        hop.hostname.clone(),
                        u32::from(hop.port),
                        "127.0.0.1",
                        0,
                    )
                    .await
                    .map_err(|e| SshError::Connect {
                        addr: addr.to_string(),
                        reason: format!("through the jump host: {e}"),
                    })?;
                client::connect_stream(ssh_config(), channel.into_stream(), verifier).await
            }
        };
        result.map_err(HandshakeError::Russh)
    }

    pub fn is_closed(&self) -> bool {
        self.handle.is_closed()
    }

    /// Runs a command to completion. Reads until the channel closes: the exit status can
    /// arrive before the last of the output.
    pub async fn exec(&self, command: &str) -> Result<ExecOutput, SshError> {
        let mut channel = self.handle.channel_open_session().await.map_err(protocol)?;
        channel
            .exec(true, command.as_bytes())
            .await
            .map_err(protocol)?;
        let mut out = ExecOutput {
            status: None,
            stdout: Vec::new(),
            stderr: Vec::new(),
        };
        while let Some(msg) = channel.wait().await {
            match msg {
                ChannelMsg::Data { data } if out.stdout.len() < MAX_OUTPUT => {
                    out.stdout.extend_from_slice(&data)
                }
                ChannelMsg::ExtendedData { data, .. } if out.stderr.len() < MAX_OUTPUT => {
                    out.stderr.extend_from_slice(&data)
                }
                ChannelMsg::ExitStatus { exit_status } => out.status = Some(exit_status),
                ChannelMsg::Close => break,
                _ => {}
            }
        }
        Ok(out)
    }

    /// Starts a command whose output is forwarded as it arrives, for job steps. Closing
    /// the [`Process`]'s stdin sends EOF on the channel, which the job scripts take as
    /// "stop": sshd does not signal a command that has no terminal.
    pub async fn exec_streaming(&self, command: &str) -> Result<Process, SshError> {
        let mut channel = self.handle.channel_open_session().await.map_err(protocol)?;
        channel
            .exec(true, command.as_bytes())
            .await
            .map_err(protocol)?;
        let (process, tx, mut close) = Process::channel();
        tokio::spawn(async move {
            let mut status = None;
            let mut closing = false;
            let end = loop {
                tokio::select! {
                    msg = channel.wait() => {
                        let event = match msg {
                            Some(ChannelMsg::Data { data }) => ProcEvent::Stdout(data.to_vec()),
                            Some(ChannelMsg::ExtendedData { data, .. }) => {
                                ProcEvent::Stderr(data.to_vec())
                            }
                            Some(ChannelMsg::ExitStatus { exit_status }) => {
                                status = Some(exit_status);
                                continue;
                            }
                            Some(ChannelMsg::Close) => break ProcEvent::Exit(status),
                            Some(_) => continue,
                            None if status.is_some() => break ProcEvent::Exit(status),
                            None => break ProcEvent::Lost("the SSH connection was lost".into()),
                        };
                        if tx.send(event).await.is_err() {
                            // Nobody listens any more: stop the command, as a cancel would.
                            let _ = channel.eof().await;
                            let _ = channel.close().await;
                            return;
                        }
                    }
                    _ = &mut close, if !closing => {
                        closing = true;
                        let _ = channel.eof().await;
                    }
                }
            };
            let _ = tx.send(end).await;
        });
        Ok(process)
    }

    /// A command that stays, talked to over its stdin and stdout (the metrics sampler's
    /// loop); its stderr is not read.
    pub async fn open_command(
        &self,
        command: &str,
    ) -> Result<russh::ChannelStream<client::Msg>, SshError> {
        let channel = self.handle.channel_open_session().await.map_err(protocol)?;
        channel
            .exec(true, command.as_bytes())
            .await
            .map_err(protocol)?;
        Ok(channel.into_stream())
    }

    /// A shell or a command for the operator's terminal, on a channel of its own.
    pub async fn open_shell(
        &self,
        request: &super::shell::ShellRequest,
        docker_host: Option<&str>,
    ) -> Result<super::shell::ShellIo, String> {
        let channel = self
            .handle
            .channel_open_session()
            .await
            .map_err(|e| format!("cannot open a channel for the shell: {e}"))?;
        super::shell::start(channel, request, docker_host).await
    }

    /// A byte stream to a Unix socket on the host (OpenSSH `direct-streamlocal`).
    pub async fn open_socket(&self, path: &str) -> Result<HostClosed, SshError> {
        self.sockets
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let channel = self
            .handle
            .channel_open_direct_streamlocal(path)
            .await
            .map_err(|e| SshError::Protocol(format!("cannot open {path} on the host: {e}")))?;
        Ok(HostClosed(Some(channel.into_stream())))
    }

    /// How many channels to Unix sockets on the host this connection has opened.
    pub fn sockets_opened(&self) -> u64 {
        self.sockets.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// A TCP connection made by the host (`direct-tcpip`), for health checks of ports
    /// only the host can reach.
    pub async fn open_tcp(&self, host: &str, port: u16) -> Result<HostClosed, SshError> {
        let channel = self
            .handle
            .channel_open_direct_tcpip(host, u32::from(port), "127.0.0.1", 0)
            .await
            .map_err(|e| {
                SshError::Protocol(format!("cannot reach {host}:{port} from the host: {e}"))
            })?;
        Ok(HostClosed(Some(channel.into_stream())))
    }

    pub async fn disconnect(&self) {
        let _ = self
            .handle
            .disconnect(russh::Disconnect::ByApplication, "", "en")
            .await;
    }
}

/// A stream to a socket or port on the host whose channel, once dropped, the host closes:
/// we send EOF, read what is left for a few seconds, and let go only after the host's
/// close has had time to arrive. russh 0.65's client keeps the entry of every channel it
/// closes itself (the host's reply finds the channel no longer established and returns
/// early), about 3 KB each: over a check every 30 s, or Docker connections, that grew
/// without bound. A channel the host closes first is forgotten properly.
pub struct HostClosed(Option<russh::ChannelStream<client::Msg>>);

/// How long a dropped stream waits for the host to close its channel.
const HOST_CLOSE_WAIT: Duration = Duration::from_secs(5);

impl Drop for HostClosed {
    fn drop(&mut self) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let Some(mut stream) = self.0.take() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        runtime.spawn(async move {
            let _ = stream.shutdown().await;
            let drained = tokio::time::timeout(HOST_CLOSE_WAIT, async {
                let mut buf = [0u8; 4096];
                while matches!(stream.read(&mut buf).await, Ok(n) if n > 0) {}
            })
            .await;
            if drained.is_ok() {
                // The host's close follows its EOF at once.
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        });
    }
}

impl tokio::io::AsyncRead for HostClosed {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.0.as_mut() {
            Some(s) => std::pin::Pin::new(s).poll_read(cx, buf),
            None => std::task::Poll::Ready(Ok(())),
        }
    }
}

impl tokio::io::AsyncWrite for HostClosed {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        match self.0.as_mut() {
            Some(s) => std::pin::Pin::new(s).poll_write(cx, buf),
            None => std::task::Poll::Ready(Err(std::io::ErrorKind::NotConnected.into())),
        }
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.0.as_mut() {
            Some(s) => std::pin::Pin::new(s).poll_flush(cx),
            None => std::task::Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.0.as_mut() {
            Some(s) => std::pin::Pin::new(s).poll_shutdown(cx),
            None => std::task::Poll::Ready(Ok(())),
        }
    }
}

fn protocol(e: russh::Error) -> SshError {
    SshError::Protocol(e.to_string())
}

fn connect_reason(e: &russh::Error) -> String {
    match e {
        russh::Error::IO(io) => io.to_string(),
        other => other.to_string(),
    }
}

async fn authenticate(
    handle: &mut Handle<Verifier>,
    hop: &Hop,
    agent: Option<&Path>,
    passphrases: &Passphrases,
) -> Result<(), SshError> {
    let mut tried: Vec<String> = Vec::new();
    let rsa_hash = handle
        .best_supported_rsa_hash()
        .await
        .ok()
        .flatten()
        .flatten();
    if let Some(sock) = agent {
        match AgentClient::connect_uds(sock).await {
            Ok(mut client) => {
                let identities = client.request_identities().await.unwrap_or_default();
                for id in identities {
                    let key = id.public_key().into_owned();
                    let hash = if key.algorithm().is_rsa() {
                        rsa_hash
                    } else {
                        None
                    };
                    match handle
                        .authenticate_publickey_with(hop.user.clone(), key, hash, &mut client)
                        .await
                    {
                        Ok(AuthResult::Success) => return Ok(()),
                        Ok(_) | Err(_) => tried.push("agent key".into()),
                    }
                }
                if tried.is_empty() {
                    tried.push("ssh-agent (no keys)".into());
                }
            }
            Err(e) => tried.push(format!("ssh-agent at {} ({e})", sock.display())),
        }
    }
    // An encrypted key is asked about only after every other way in has failed.
    let mut locked: Option<(String, bool)> = None;
    for path in &hop.identities {
        if !path.is_file() {
            continue;
        }
        let typed = passphrases.get(path).map(|s| s.expose());
        match load_secret_key(path, typed) {
            Ok(key) => {
                let key = PrivateKeyWithHashAlg::new(Arc::new(key), rsa_hash);
                match handle.authenticate_publickey(hop.user.clone(), key).await {
                    Ok(AuthResult::Success) => return Ok(()),
                    Ok(_) => tried.push(path.display().to_string()),
                    Err(e) => return Err(protocol(e)),
                }
            }
            Err(russh::keys::Error::KeyIsEncrypted) if typed.is_none() => {
                tried.push(format!("{} (encrypted)", path.display()));
                locked.get_or_insert((path.display().to_string(), false));
            }
            // With a passphrase given, any failure to open the key means it was wrong.
            Err(_) if typed.is_some() => {
                tried.push(format!("{} (wrong passphrase)", path.display()));
                locked.get_or_insert((path.display().to_string(), true));
            }
            Err(e) => tried.push(format!("{} ({e})", path.display())),
        }
    }
    if let Some((path, wrong)) = locked {
        return Err(SshError::NeedPassphrase { path, wrong });
    }
    Err(SshError::Auth {
        user: hop.user.clone(),
        host: hop.hostname.clone(),
        tried: if tried.is_empty() {
            "no keys (no agent, no identity file)".into()
        } else {
            tried.join(", ")
        },
    })
}

/// HTTP connections to one engine's socket, each over a `direct-streamlocal` channel of
/// its own, kept open and used again (Docker keeps connections alive). A channel per
/// request, as bollard's own Unix transport has a connection per request, cost the host a
/// channel, a socket connection and their teardown for every list and inspect, and cost us
/// memory (see [`HostClosed`]). A kept channel is closed by the host (the engine ends an
/// idle connection), or goes with the session.
struct EnginePool<B> {
    idle: Mutex<Vec<Kept<B>>>,
}

/// A kept connection, and whether its last request answers at once ([`answers_at_once`]):
/// such a connection is ready again as soon as its answer is read, where one carrying a
/// stream (events, a followed log) may stay busy for the whole run.
struct Kept<B> {
    sender: hyper::client::conn::http1::SendRequest<B>,
    at_once: bool,
}

/// Connections kept. A streamed response (events, a followed log) holds its connection
/// until it ends; the others serve lists and inspects one after another.
const POOL_KEEP: usize = 4;

/// How long a request waits for a kept connection whose answer has just been read, before
/// it opens another: the connection is ready once its own task has seen the end of the
/// answer, a moment after the reader did (longer on a busy machine).
const SETTLE: Duration = Duration::from_millis(100);

/// What a request of `parts` gets back is a short answer, not a stream: the engine's
/// version, lists and inspects (`GET .../json`), a stats sample with `stream=false`.
fn answers_at_once(parts: &hyper::http::request::Parts) -> bool {
    let path = parts.uri.path();
    let query = parts.uri.query().unwrap_or("");
    parts.method == hyper::Method::GET
        && (path.ends_with("/json")
            || path.ends_with("/version")
            || path.ends_with("/_ping")
            || path.ends_with("/info")
            || (path.ends_with("/stats") && query.split('&').any(|kv| kv == "stream=false")))
}

/// What the pool has for a request.
enum Take<B> {
    /// A connection that takes a request now.
    Ready(hyper::client::conn::http1::SendRequest<B>),
    /// One whose short answer is being read or was just read: ready in a moment.
    Settling(hyper::client::conn::http1::SendRequest<B>),
    Nothing,
}

impl<B> EnginePool<B> {
    /// The kept connections the engine has not closed.
    fn open(&self) -> std::sync::MutexGuard<'_, Vec<Kept<B>>> {
        let mut idle = self
            .idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        idle.retain(|k| !k.sender.is_closed());
        idle
    }

    /// An open connection that can take a request now, or one that can in a moment.
    fn take(&self) -> Take<B> {
        let mut idle = self.open();
        if let Some(i) = idle.iter().position(|k| k.sender.is_ready()) {
            return Take::Ready(idle.swap_remove(i).sender);
        }
        match idle.iter().position(|k| k.at_once) {
            Some(i) => Take::Settling(idle.swap_remove(i).sender),
            None => Take::Nothing,
        }
    }

    /// A connection whose response has its headers: it is ready again once the body is
    /// read. When the pool is full, one still busy with a stream makes room (its stream
    /// goes on; the connection closes after it).
    fn put(&self, sender: hyper::client::conn::http1::SendRequest<B>, at_once: bool) {
        let mut idle = self.open();
        if idle.len() >= POOL_KEEP {
            match idle.iter().position(|k| !k.sender.is_ready()) {
                Some(i) => {
                    idle.swap_remove(i);
                }
                None => return,
            }
        }
        idle.push(Kept { sender, at_once });
    }

    /// A kept connection for a request: one ready now, or one whose short answer is
    /// ending, waited for up to [`SETTLE`] (rather than a channel more for every request
    /// that comes a moment early). None: open another.
    async fn ready(&self) -> Option<hyper::client::conn::http1::SendRequest<B>> {
        match self.take() {
            Take::Ready(sender) => Some(sender),
            Take::Settling(mut sender) => {
                match tokio::time::timeout(SETTLE, sender.ready()).await {
                    Ok(Ok(())) => Some(sender),
                    // closed by the engine
                    Ok(Err(_)) => None,
                    // still busy with a long answer: kept for later
                    Err(_) => {
                        self.put(sender, true);
                        None
                    }
                }
            }
            Take::Nothing => None,
        }
    }
}

/// The Docker Engine API over the SSH connection, on pooled connections ([`EnginePool`]),
/// served `.with_upgrades()` so attach and exec work, with a `Host` header Docker insists on.
pub async fn docker(session: Arc<Session>, socket: &str) -> Result<(Docker, String), String> {
    use http_body_util::Either;
    let socket = socket.to_string();
    let path = socket.clone();
    let pool = Arc::new(EnginePool {
        idle: Mutex::new(Vec::new()),
    });
    let transport = move |req: bollard::BollardRequest| {
        let session = session.clone();
        let path = path.clone();
        let pool = pool.clone();
        async move {
            let (mut parts, body) = req.into_parts();
            // Origin-form request line, as a Unix-socket client sends it.
            if let Some(pq) = parts.uri.path_and_query().cloned() {
                parts.uri = pq.as_str().parse().unwrap_or(parts.uri);
            }
            parts.headers.insert(
                hyper::header::HOST,
                hyper::header::HeaderValue::from_static("docker"),
            );
            let hyper_error = |err| bollard::errors::Error::HyperResponseError { err };
            let at_once = answers_at_once(&parts);
            // A kept connection the engine closed just now fails the request before any
            // answer: a request whose body can be sent again goes once more, on a new one.
            if let Some(mut sender) = pool.ready().await {
                let again = match &body {
                    Either::Left(full) => Some((parts.clone(), Either::Left(full.clone()))),
                    Either::Right(_) => None,
                };
                match sender
                    .send_request(hyper::Request::from_parts(parts, body))
                    .await
                {
                    Ok(response) => {
                        pool.put(sender, at_once);
                        return Ok(response);
                    }
                    Err(err) => match again {
                        Some((p, b)) => {
                            tracing::debug!("a kept Docker connection failed ({err}): a new one");
                            return fresh(
                                &session,
                                &path,
                                &pool,
                                hyper::Request::from_parts(p, b),
                                at_once,
                            )
                            .await;
                        }
                        None => return Err(hyper_error(err)),
                    },
                }
            }
            fresh(
                &session,
                &path,
                &pool,
                hyper::Request::from_parts(parts, body),
                at_once,
            )
            .await
        }
    };
    let docker = Docker::connect_with_custom_transport(
        transport,
        Some("http://docker"),
        30,
        bollard::API_DEFAULT_VERSION,
    )
    .map_err(|e| format!("docker over ssh: {e}"))?;
    crate::docker::negotiate(docker, &socket).await
}

/// A request on a new connection, kept in `pool` afterwards.
async fn fresh<B>(
    session: &Session,
    path: &str,
    pool: &EnginePool<B>,
    request: hyper::Request<B>,
    at_once: bool,
) -> Result<hyper::Response<hyper::body::Incoming>, bollard::errors::Error>
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let hyper_error = |err| bollard::errors::Error::HyperResponseError { err };
    let stream = session
        .open_socket(path)
        .await
        .map_err(|e| bollard::errors::Error::IOError {
            err: std::io::Error::other(e.to_string()),
        })?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(hyper_error)?;
    tokio::spawn(async move {
        let _ = conn.with_upgrades().await;
    });
    let response = sender.send_request(request).await.map_err(hyper_error)?;
    pool.put(sender, at_once);
    Ok(response)
}

/// Fresh `direct-streamlocal` channels to the engine's socket, for the log reader.
pub fn docker_socket(session: Arc<Session>, path: &str) -> crate::docker::Socket {
    let path = path.to_string();
    crate::docker::Socket::new(move || {
        let session = session.clone();
        let path = path.clone();
        Box::pin(async move {
            let stream = session
                .open_socket(&path)
                .await
                .map_err(|e| e.to_string())?;
            Ok(Box::new(stream) as crate::checks::BoxIo)
        })
    })
}

impl crate::checks::Tunnel for Session {
    fn open_tcp<'a>(&'a self, host: &'a str, port: u16) -> crate::checks::OpenFuture<'a> {
        Box::pin(async move {
            let stream = Session::open_tcp(self, host, port)
                .await
                .map_err(|e| e.to_string())?;
            Ok(Box::new(stream) as crate::checks::BoxIo)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_answers_are_told_from_streams() {
        let parts = |method: &str, uri: &str| {
            hyper::Request::builder()
                .method(method)
                .uri(uri)
                .body(())
                .unwrap()
                .into_parts()
                .0
        };
        for uri in [
            "/v1.47/containers/json?all=true",
            "/v1.47/containers/abc/json",
            "/version",
            "/_ping",
            "/v1.47/info",
            "/v1.47/containers/abc/stats?stream=false&one-shot=true",
        ] {
            assert!(answers_at_once(&parts("GET", uri)), "{uri}");
        }
        for (method, uri) in [
            ("GET", "/v1.47/events?since=1"),
            ("GET", "/v1.47/containers/abc/logs?follow=true&stdout=true"),
            ("GET", "/v1.47/containers/abc/stats"),
            ("GET", "/v1.47/containers/abc/stats?stream=true"),
            ("POST", "/v1.47/containers/abc/attach?stream=1"),
            ("POST", "/v1.47/exec/abc/start"),
            ("POST", "/v1.47/containers/abc/wait"),
        ] {
            assert!(!answers_at_once(&parts(method, uri)), "{method} {uri}");
        }
    }

    #[test]
    fn hop_specs_parse_like_proxyjump() {
        let h = resolve_hop("deploy@bastion.example.invalid:2222", None, None);
        assert_eq!(
            (h.user.as_str(), h.hostname.as_str(), h.port),
            ("deploy", "bastion.example.invalid", 2222)
        );
        let h = resolve_hop("bastion", None, Some("~/.ssh/jump_key"));
        assert_eq!((h.hostname.as_str(), h.port), ("bastion", 22));
        assert!(h.identities[0].ends_with(".ssh/jump_key"));
    }

    #[test]
    fn ssh_config_supplies_hostname_user_port_identity_and_jump() {
        let text = "Host web\n  HostName 127.0.0.12\n  User lila\n  Port 2200\n  IdentityFile /keys/lab\n  ProxyJump cs@127.0.0.11\n  UserKnownHostsFile /keys/known_hosts /keys/other\nHost *\n  SendEnv LANG\n  UserKnownHostsFile /never\n";
        let cfg = ssh2_config::SshConfig::default()
            .parse(&mut text.as_bytes(), PARSE_RULES)
            .unwrap();
        let inv =
            crate::config::parse_str("[[host]]\nname = \"web\"\n", Path::new("t.toml")).unwrap();
        let t = resolve(&inv.hosts[0], &inv.settings, Some(&cfg));
        assert_eq!(t.dest.hostname, "127.0.0.12");
        assert_eq!(t.dest.user, "lila");
        assert_eq!(t.dest.port, 2200);
        assert_eq!(t.dest.identities[0], PathBuf::from("/keys/lab"));
        // UserKnownHostsFile, the first block's (as ssh takes the first value), before
        // ~/.ssh/known_hosts.
        assert_eq!(t.known_hosts[0], PathBuf::from("/keys/known_hosts"));
        assert_eq!(t.known_hosts[1], PathBuf::from("/keys/other"));
        assert!(!t.known_hosts.contains(&PathBuf::from("/never")));
        assert_eq!(t.jumps.len(), 1);
        assert_eq!(
            (t.jumps[0].user.as_str(), t.jumps[0].hostname.as_str()),
            ("cs", "127.0.0.11")
        );
        // The inventory wins over ~/.ssh/config.
        let inv = crate::config::parse_str(
            "[[host]]\nname = \"web\"\nuser = \"root\"\nport = 22\n",
            Path::new("t.toml"),
        )
        .unwrap();
        let t = resolve(&inv.hosts[0], &inv.settings, Some(&cfg));
        assert_eq!((t.dest.user.as_str(), t.dest.port), ("root", 22));
    }
}
