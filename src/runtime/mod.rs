//! The one loop: terminal input, worker messages and a clock tick go into `update`;
//! effects go out to workers; the screen is redrawn only when the model says it changed.

pub mod terminal;

use std::time::{Duration, Instant};

use crossterm::event::{Event, EventStream};
use futures::StreamExt;
use jiff::Timestamp;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::mpsc;

use crate::config::Config;
use crate::model::{Changed, Effect, HostSnapshot, HostState, Key, Model, Msg, ViewKind, update};
use crate::remote::{self, HostCmd, HostHandle};
use crate::ui::{self, Theme};

/// At most one frame per this interval, however fast messages arrive.
const FRAME: Duration = Duration::from_millis(33);

/// Where nothing streams (the fleet, a host, the job history), the hosts' updates are
/// drawn at most this often: twenty hosts sampled every 2 s send about twenty updates a
/// second, and a frame for each would cost more than the rest of the console together. A
/// key is still drawn at once; a log or a job's output follows at [`FRAME`].
const DATA_FRAME: Duration = Duration::from_millis(250);

/// The fleet's initial state, straight from the inventory.
pub fn initial_model(config: &Config, read_only: bool) -> Model {
    let hosts = config
        .inventory
        .hosts
        .iter()
        .map(|h| {
            let target = h.target();
            let mut s = HostState::new(
                h.name.get_ref().clone(),
                target,
                config.refresh_for(h).as_secs(),
            );
            s.production = h.production;
            s.read_only = h.read_only;
            s.stacks = h.stacks.iter().map(crate::jobs::plan::stack_info).collect();
            s.limits = h
                .thresholds
                .or(config.inventory.settings.thresholds)
                .resolve();
            s
        })
        .collect();
    let mut model = Model::new(hosts, Timestamp::now());
    model.read_only = read_only || config.inventory.settings.read_only;
    model.source = config.source.describe();
    model.user = crate::jobs::audit::local_user();
    model
}

pub async fn run(config: Config, theme: Theme, read_only: bool) -> anyhow::Result<()> {
    let (tx, rx) = mpsc::channel::<Msg>(1024);
    let mut model = initial_model(&config, read_only);
    // The console asks about unknown host keys instead of taking them.
    let shared = remote::Shared::new(false);
    let handles: Vec<HostHandle> = config
        .inventory
        .hosts
        .iter()
        .enumerate()
        .map(|(i, h)| remote::spawn(i, h, &config, &shared, tx.clone()))
        .collect();

    // The history view starts with what the audit log remembers.
    if let Some(path) = crate::jobs::audit::path() {
        let records = crate::jobs::audit::read_recent(&path, crate::model::job::HISTORY_LEN);
        if !records.is_empty() {
            update(&mut model, Msg::History(records));
        }
    }
    // Before the terminal turns raw: from then on no signal may end opsdeck unhandled.
    let signals = Signals::new(&CONSOLE_SIGNALS)?;
    let term = terminal::enter()?;
    let mut console = Console {
        term,
        model,
        theme: &theme,
        rx,
        dead: vec![false; handles.len()],
        handles,
        signals,
        events: EventStream::new(),
        last_draw: None,
        keyed: false,
    };
    let ended = console.event_loop().await;
    let why = match &ended {
        Ok(why) => why.clone(),
        Err(e) => format!("opsdeck stopped on an error ({e})"),
    };
    console.stop_jobs(&why).await;
    terminal::restore();
    ended.map(|_| ())
}

/// How long quitting waits for running jobs to stop on their hosts and write their audit
/// lines. A job still going then is left (its host stops the step when the connection
/// closes) and its record says so.
const QUIT_WAIT: Duration = Duration::from_secs(5);

/// Signals that end the console, listened to from before the terminal turns raw. In raw
/// mode `Ctrl-C` and `Ctrl-\` are keys, not signals, so a SIGINT or SIGQUIT was sent on
/// purpose (`kill`): like SIGTERM and a hang-up, it quits, and its name is the reason
/// running jobs are cancelled with.
pub const CONSOLE_SIGNALS: [(SignalKind, &str); 4] = [
    (SignalKind::interrupt(), "SIGINT"),
    (SignalKind::quit(), "SIGQUIT"),
    (SignalKind::terminate(), "SIGTERM"),
    (SignalKind::hangup(), "SIGHUP"),
];

/// Some signals, taken over from their default action (which would end opsdeck on the
/// spot, its terminal raw and its jobs unrecorded) and received by name.
pub struct Signals {
    list: Vec<(Signal, &'static str)>,
}

impl Signals {
    pub fn new(which: &[(SignalKind, &'static str)]) -> std::io::Result<Signals> {
        let list = which
            .iter()
            .map(|&(kind, name)| Ok((signal(kind)?, name)))
            .collect::<std::io::Result<_>>()?;
        Ok(Signals { list })
    }

    /// The next signal to arrive, by name.
    pub async fn recv(&mut self) -> &'static str {
        std::future::poll_fn(|cx| {
            for (sig, name) in &mut self.list {
                if let std::task::Poll::Ready(Some(())) = sig.poll_recv(cx) {
                    return std::task::Poll::Ready(*name);
                }
            }
            std::task::Poll::Pending
        })
        .await
    }
}

struct Console<'a> {
    term: terminal::Term,
    model: Model,
    theme: &'a Theme,
    rx: mpsc::Receiver<Msg>,
    handles: Vec<HostHandle>,
    /// Workers whose end has been reported (see [`dead_workers`]).
    dead: Vec<bool>,
    signals: Signals,
    events: EventStream,
    last_draw: Option<Instant>,
    /// The operator pressed a key (or resized) since the last frame: draw at once, not at
    /// the next frame (which only holds back bursts of messages from the hosts).
    keyed: bool,
}

impl Console<'_> {
    /// Draws when the model changed and the last frame is old enough, or a key was pressed.
    fn draw(&mut self) -> std::io::Result<()> {
        let keyed = std::mem::take(&mut self.keyed);
        if self.model.dirty {
            let due = self.next_frame();
            if keyed || Instant::now() >= due {
                let (model, theme) = (&self.model, self.theme);
                // One frame is one synchronized update (DEC mode 2026): a terminal that
                // knows it shows the frame whole, never half old and half new, which over a
                // slow SSH link is the difference between a redraw and a flicker. Others
                // ignore it. The PTY tests read the screen only between such updates.
                crossterm::queue!(
                    self.term.backend_mut(),
                    crossterm::terminal::BeginSynchronizedUpdate
                )?;
                let drawn = self.term.draw(|f| ui::view(model, theme, f)).map(|_| ());
                crossterm::execute!(
                    self.term.backend_mut(),
                    crossterm::terminal::EndSynchronizedUpdate
                )?;
                drawn?;
                self.model.dirty = false;
                self.last_draw = Some(Instant::now());
            }
        }
        Ok(())
    }

    /// When the next frame for the hosts' updates is due.
    fn next_frame(&self) -> Instant {
        let every = match self.model.view.kind() {
            ViewKind::Container | ViewKind::Job => FRAME,
            ViewKind::Fleet | ViewKind::Host | ViewKind::Jobs => DATA_FRAME,
        };
        self.last_draw.map_or_else(Instant::now, |t| t + every)
    }

    fn apply(&mut self, msgs: Vec<Msg>) {
        for msg in msgs {
            self.keyed |= matches!(msg, Msg::Key(_) | Msg::Resize { .. });
            for effect in update(&mut self.model, msg) {
                dispatch(effect, &self.handles);
            }
        }
    }

    /// Runs until the operator quits or a signal says to; returns why, which is what the
    /// records of jobs still running will say they were cancelled for.
    async fn event_loop(&mut self) -> anyhow::Result<String> {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let size = self.term.size()?;
        update(
            &mut self.model,
            Msg::Resize {
                width: size.width,
                height: size.height,
            },
        );
        let mut why = "opsdeck quit";

        loop {
            self.draw()?;
            let redraw_at = self.next_frame();
            let mut msgs = Vec::new();
            tokio::select! {
                ev = self.events.next() => match ev {
                    Some(Ok(Event::Key(k))) => {
                        if let Some(key) = terminal::map_key(k) {
                            msgs.push(Msg::Key(key));
                        }
                    }
                    Some(Ok(Event::Resize(w, h))) => msgs.push(Msg::Resize { width: w, height: h }),
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Err(e.into()),
                    None => {
                        why = "the terminal closed";
                        msgs.push(Msg::Shutdown);
                    }
                },
                Some(msg) = self.rx.recv() => {
                    msgs.push(msg);
                    // Take whatever else is already waiting, so a burst costs one frame.
                    while msgs.len() < 256 {
                        match self.rx.try_recv() {
                            Ok(m) => msgs.push(m),
                            Err(_) => break,
                        }
                    }
                }
                _ = tick.tick() => {
                    let now = Timestamp::now();
                    msgs.extend(dead_workers(&self.handles, &mut self.dead, now));
                    msgs.push(Msg::Tick { now });
                }
                sig = self.signals.recv() => {
                    why = sig;
                    msgs.push(Msg::Shutdown);
                }
                _ = tokio::time::sleep_until(redraw_at.into()), if self.model.dirty => {}
            }
            self.apply(msgs);
            if self.model.should_quit {
                return Ok(why.to_string());
            }
        }
    }

    /// Quitting with jobs running: each is cancelled the way `x` cancels it (the host stops
    /// its step) and writes its audit line, within [`QUIT_WAIT`]. The screen follows them
    /// meanwhile, where the terminal is still there; a second signal, or `Ctrl-C`, leaves at
    /// once.
    async fn stop_jobs(&mut self, why: &str) {
        let model_running = |m: &Model| m.hosts.iter().any(HostState::job_running);
        let stopping = crate::jobs::exec::stop_all(why);
        if stopping == 0 && !model_running(&self.model) {
            return;
        }
        tracing::info!("{why}: stopping {stopping} running job(s)");
        let deadline = tokio::time::Instant::now() + QUIT_WAIT;
        let mut poll = tokio::time::interval(Duration::from_millis(50));
        let (mut drawing, mut reading) = (true, true);
        loop {
            if crate::jobs::exec::running() == 0 && !model_running(&self.model) {
                return;
            }
            // A hung-up terminal takes no frames: stop drawing, keep waiting.
            if drawing && self.draw().is_err() {
                drawing = false;
            }
            tokio::select! {
                Some(msg) = self.rx.recv() => {
                    // Only the jobs' news matters now; nothing new is started.
                    let _ = update(&mut self.model, msg);
                }
                _ = poll.tick() => {}
                _ = tokio::time::sleep_until(deadline) => {
                    tracing::warn!("{why}: jobs still running after {}s: leaving them", QUIT_WAIT.as_secs());
                    return;
                }
                sig = self.signals.recv() => {
                    tracing::warn!("{sig} while stopping jobs: leaving at once");
                    return;
                }
                ev = self.events.next(), if reading => match ev {
                    Some(Ok(Event::Key(k))) if terminal::map_key(k) == Some(Key::Ctrl('c')) => {
                        tracing::warn!("Ctrl-C while stopping jobs: leaving at once");
                        return;
                    }
                    Some(Ok(_)) => {}
                    // a hung-up terminal
                    Some(Err(_)) | None => reading = false,
                },
            }
        }
    }
}

/// A worker whose inbox closed has ended, and while the console runs that only happens
/// when its task panicked (tokio caught it; the panic hook logged it). Its host is shown
/// down with the reason, once, instead of going quietly stale.
fn dead_workers(handles: &[HostHandle], reported: &mut [bool], now: Timestamp) -> Vec<Msg> {
    let mut msgs = Vec::new();
    for (host, (h, seen)) in handles.iter().zip(reported.iter_mut()).enumerate() {
        if h.cmds.is_closed() && !*seen {
            *seen = true;
            tracing::error!("the worker of host {host} stopped");
            let reason = "opsdeck's worker for this host stopped (a bug, see opsdeck.log); \
                          restart opsdeck to watch it again";
            msgs.push(Msg::Host {
                host,
                snapshot: std::sync::Arc::new(HostSnapshot::down(now, reason.into())),
                changed: Changed::CONN,
            });
        }
    }
    msgs
}

fn dispatch(effect: Effect, handles: &[HostHandle]) {
    match effect {
        Effect::RunJob { host, request } => {
            if let Some(h) = handles.get(host) {
                h.send(HostCmd::Job(request));
            }
        }
        Effect::CancelJob { host } => {
            if let Some(h) = handles.get(host) {
                h.send(HostCmd::CancelJob {
                    why: "cancelled by the operator".into(),
                });
            }
        }
        Effect::AcceptHostKey { host, fingerprint } => {
            if let Some(h) = handles.get(host) {
                h.send(HostCmd::AcceptHostKey { fingerprint });
            }
        }
        Effect::Passphrase {
            host,
            path,
            passphrase,
        } => {
            if let Some(h) = handles.get(host) {
                h.send(HostCmd::Passphrase { path, passphrase });
            }
        }
        Effect::FollowLogs { host, id } => {
            if let Some(h) = handles.get(host) {
                h.send(HostCmd::FollowLogs { id });
            }
        }
        Effect::StopLogs { host, id } => {
            if let Some(h) = handles.get(host) {
                h.send(HostCmd::StopLogs { id });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_worker_that_died_shows_its_host_down_once() {
        let (alive, _rx) = mpsc::unbounded_channel();
        let (dead, rx) = mpsc::unbounded_channel();
        drop(rx); // what a panicking worker task leaves behind
        let handles = [HostHandle::new(alive), HostHandle::new(dead)];
        let mut seen = vec![false; 2];
        let now = Timestamp::now();
        let msgs = dead_workers(&handles, &mut seen, now);
        assert_eq!(msgs.len(), 1, "{msgs:?}");
        match &msgs[0] {
            Msg::Host {
                host: 1,
                snapshot,
                changed,
            } => {
                assert_eq!(*changed, Changed::CONN);
                let crate::model::HostConn::Down { since, reason } = &snapshot.conn else {
                    panic!("{snapshot:?}")
                };
                assert_eq!(*since, now);
                assert!(reason.contains("worker for this host stopped"), "{reason}");
            }
            m => panic!("{m:?}"),
        }
        assert!(dead_workers(&handles, &mut seen, now).is_empty());
    }
}
