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
use crate::remote::shell::{self, ShellIo, ShellRequest};
use crate::remote::{self, HostCmd, HostHandle};
use crate::ui::{self, Theme};

/// At most one frame per this interval, however fast messages arrive.
const FRAME: Duration = Duration::from_millis(33);

/// Where nothing streams (the fleet, a host, the job history), the hosts' updates are
/// drawn at most this often: twenty hosts sampled every 2 s send about twenty updates a
/// second, and a frame for each would cost more than the rest of the console together. A
/// key is still drawn at once; a log or a job's output follows at [`FRAME`].
const DATA_FRAME: Duration = Duration::from_millis(250);

/// Jobs of the audit log the timeline starts with.
const TIMELINE_JOBS: usize = 1000;
/// Events of each host's store the console starts with (the rest stay on disk, for
/// `opsdeck events`).
const TIMELINE_PER_HOST: usize = 2000;

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

/// Runs the console until the operator quits. `Ok(Some(path))`: the first-run import wrote
/// an inventory there, for the caller to start the console again over it.
pub async fn run(config: Config, theme: Theme, read_only: bool) -> anyhow::Result<Option<String>> {
    let (tx, rx) = mpsc::channel::<Msg>(1024);
    let mut model = initial_model(&config, read_only);
    if config.source == crate::config::Source::BuiltinLocal {
        model.import = crate::onboard::offer().map(|hosts| crate::model::Import::Offered { hosts });
    }
    // The console asks about unknown host keys instead of taking them.
    let shared = remote::Shared::new(false);
    let handles: Vec<HostHandle> = config
        .inventory
        .hosts
        .iter()
        .enumerate()
        .map(|(i, h)| remote::spawn(i, h, &config, &shared, tx.clone()))
        .collect();

    // The history view starts with what the audit log remembers, and the timeline with
    // that and what each host's store kept.
    if let Some(path) = crate::jobs::audit::path() {
        let records = crate::jobs::audit::read_recent(&path, TIMELINE_JOBS);
        if !records.is_empty() {
            update(&mut model, Msg::History(records));
        }
    }
    for (host, h) in config.inventory.hosts.iter().enumerate() {
        if let Some(store) = remote::timeline::Store::for_host(h.name.get_ref()) {
            let events = store.load_newest(TIMELINE_PER_HOST);
            update(
                &mut model,
                Msg::Timeline {
                    host,
                    events,
                    caught_up: false,
                },
            );
        }
    }
    // Before the terminal turns raw: from then on no signal may end opsdeck unhandled.
    let signals = Signals::new(&CONSOLE_SIGNALS)?;
    let term = terminal::enter()?;
    let mut console = Console {
        term,
        tx: tx.clone(),
        model,
        theme: &theme,
        rx,
        dead: vec![false; handles.len()],
        handles,
        signals,
        events: Some(EventStream::new()),
        last_draw: None,
        keyed: false,
        opening: None,
    };
    let ended = console.event_loop().await;
    let why = match &ended {
        Ok(why) => why.clone(),
        Err(e) => format!("opsdeck stopped on an error ({e})"),
    };
    console.stop_jobs(&why).await;
    terminal::restore();
    ended.map(|_| console.model.reload.take())
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
    /// For work the console starts itself (the first-run import).
    tx: mpsc::Sender<Msg>,
    model: Model,
    theme: &'a Theme,
    rx: mpsc::Receiver<Msg>,
    handles: Vec<HostHandle>,
    /// Workers whose end has been reported (see [`dead_workers`]).
    dead: Vec<bool>,
    signals: Signals,
    /// The terminal's keys and resizes; `None` while a shell has the terminal.
    events: Option<EventStream>,
    last_draw: Option<Instant>,
    /// The operator pressed a key (or resized) since the last frame: draw at once, not at
    /// the next frame (which only holds back bursts of messages from the hosts).
    keyed: bool,
    /// A shell asked of a host's worker, not opened yet.
    opening: Option<Opening>,
}

/// A shell being opened by a host's worker.
struct Opening {
    host: usize,
    /// `(id, name)`; `None` for the host's own shell.
    container: Option<(String, String)>,
    stack: String,
    reply: tokio::sync::oneshot::Receiver<Result<ShellIo, String>>,
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
            ViewKind::Container | ViewKind::Stack | ViewKind::Job => FRAME,
            ViewKind::Fleet | ViewKind::Host | ViewKind::Jobs | ViewKind::Timeline => DATA_FRAME,
        };
        self.last_draw.map_or_else(Instant::now, |t| t + every)
    }

    fn apply(&mut self, msgs: Vec<Msg>) {
        for msg in msgs {
            self.keyed |= matches!(msg, Msg::Key(_) | Msg::Resize { .. });
            for effect in update(&mut self.model, msg) {
                match effect {
                    Effect::Shell {
                        host,
                        container,
                        stack,
                    } => self.ask_shell(host, container, stack),
                    Effect::Import => self.start_import(),
                    effect => dispatch(effect, &self.handles),
                }
            }
        }
    }

    /// The first-run import, in the background: progress and its end come back as
    /// [`Msg::Import`].
    fn start_import(&self) {
        use crate::model::ImportMsg;
        let tx = self.tx.clone();
        tokio::spawn(async move {
            let progress = tx.clone();
            let result = crate::onboard::import_ssh_config(move |done, total| {
                let _ = progress.try_send(Msg::Import(ImportMsg::Progress { done, total }));
            })
            .await;
            let _ = tx.send(Msg::Import(ImportMsg::Done(result))).await;
        });
    }

    /// Asks the host's worker for a shell; the event loop hands the terminal over when it
    /// is open. One at a time.
    fn ask_shell(&mut self, host: usize, container: Option<(String, String)>, stack: String) {
        let Some(handle) = self.handles.get(host) else {
            return;
        };
        if self.opening.is_some() {
            return;
        }
        let (reply, rx) = tokio::sync::oneshot::channel();
        let request = ShellRequest {
            container: container.as_ref().map(|(id, _)| id.clone()),
            command: Vec::new(),
            tty: Some(shell::Tty::here()),
        };
        handle.send(HostCmd::Shell { request, reply });
        self.opening = Some(Opening {
            host,
            container,
            stack,
            reply: rx,
        });
    }

    /// The terminal goes to the shell until it ends, then comes back to the console,
    /// redrawn whole. Meanwhile the hosts' news still reaches the model (not the screen),
    /// so nothing waits on the operator's shell. Returns the signal that asked opsdeck to
    /// end during the shell, if one did.
    async fn hand_over(&mut self, opened: Opening, io: ShellIo) -> Option<&'static str> {
        let host = self.model.hosts[opened.host].name.clone();
        let shown = match &opened.container {
            Some((id, name)) => {
                let c = self.model.hosts[opened.host]
                    .containers
                    .iter()
                    .find(|c| &c.id == id);
                format!(
                    "{} on {host}",
                    c.map_or(name.as_str(), |c| c.display_name())
                )
            }
            None => host.clone(),
        };
        let local = io.is_local();
        let started = Timestamp::now();
        let clock = Instant::now();
        // crossterm's reader stops before the shell reads the terminal: dropping the
        // stream wakes its thread out of its poll, and the thread ends. Nothing here may
        // poll crossterm's reader itself: a poll would take that wake-up, and a thread
        // that had not yet reached its poll would then wait in it, holding the reader's
        // lock, until a key came, so that making the stream again after the shell would
        // hang the console (a PTY test caught it under load, 3 runs in 40). A key read
        // in the instant before the thread ends is kept in crossterm's queue and comes to
        // the console after the shell: never lost.
        self.events = None;
        let mut out = std::io::stdout();
        let _ = crossterm::execute!(
            out,
            crossterm::terminal::LeaveAlternateScreen,
            crossterm::cursor::Show
        );
        if local {
            let _ = crossterm::terminal::disable_raw_mode();
        }
        // `shell in api on lila`, `shell on lila`
        let what = format!(
            "shell {} {shown}",
            if opened.container.is_some() {
                "in"
            } else {
                "on"
            }
        );
        let banner = format!(
            "opsdeck: {}; exit (or Ctrl-D) comes back to opsdeck",
            crate::sanitize::line(&what)
        );
        {
            use std::io::Write;
            let _ = write!(out, "\r\n{banner}\r\n");
            let _ = out.flush();
        }
        let mut session = tokio::spawn(async move {
            match io {
                ShellIo::Ssh { channel, early } => shell::bridge(channel, early, true).await,
                ShellIo::Local { argv } => shell::run_local(&argv).await,
            }
        });
        let mut quit = None;
        let ended = loop {
            tokio::select! {
                ended = &mut session => break ended.unwrap_or_default(),
                Some(msg) = self.rx.recv() => {
                    for effect in update(&mut self.model, msg) {
                        dispatch(effect, &self.handles);
                    }
                }
                sig = self.signals.recv() => {
                    // A program on this terminal gets the terminal's Ctrl-C and Ctrl-\
                    // itself (opsdeck, in the same process group, hears them too).
                    if local && matches!(sig, "SIGINT" | "SIGQUIT") {
                        continue;
                    }
                    quit = Some(sig);
                    session.abort();
                    break shell::Ended { lost: true, ..Default::default() };
                }
            }
        };
        match terminal::take_back() {
            Ok(term) => self.term = term,
            Err(e) => tracing::warn!("taking the terminal back after a shell: {e}"),
        }
        self.events = Some(EventStream::new());
        if let Ok(size) = self.term.size() {
            self.model.size = (size.width, size.height);
        }
        self.model.dirty = true;
        self.keyed = true;
        let took = clock.elapsed();
        let mut record = crate::model::JobRecord::new(
            started.to_string(),
            self.model.user.clone(),
            &host,
            &opened.stack,
            "shell",
        );
        record.container = opened.container.as_ref().map(|(_, name)| name.clone());
        record.summary = Some(what.clone());
        shell::finish_record(&mut record, &ended, took, quit, true);
        let mut notice = format!(
            "{what} ended: {} ({})",
            ended.describe(shell::quick(took)),
            crate::ui::format::age(i64::try_from(took.as_secs()).unwrap_or(i64::MAX))
        );
        let mut level = if ended.status == Some(0) {
            crate::model::Level::Info
        } else {
            crate::model::Level::Warn
        };
        if let Some(path) = crate::jobs::audit::path()
            && let Err(e) = crate::jobs::audit::append_to(&path, &record)
        {
            notice = format!("{notice}; {e}");
            level = crate::model::Level::Warn;
        }
        // The clock stood still for the model while the shell ran.
        update(
            &mut self.model,
            Msg::Tick {
                now: Timestamp::now(),
            },
        );
        update(
            &mut self.model,
            Msg::Notice {
                level,
                text: notice,
            },
        );
        update(&mut self.model, Msg::Recorded(Box::new(record)));
        quit
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
            let mut opened = None;
            let opening = &mut self.opening;
            tokio::select! {
                ev = next_event(&mut self.events) => match ev {
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
                reply = async {
                    match opening.as_mut() {
                        Some(o) => (&mut o.reply).await,
                        None => std::future::pending().await,
                    }
                }, if opening.is_some() => {
                    opened = Some(reply);
                }
            }
            if let (Some(reply), Some(asked)) = (opened, self.opening.take()) {
                let failed = |text: String| Msg::Notice {
                    level: crate::model::Level::Warn,
                    text: format!("cannot open the shell: {text}"),
                };
                match reply {
                    Ok(Ok(io)) => {
                        if let Some(sig) = self.hand_over(asked, io).await {
                            why = sig;
                            msgs.push(Msg::Shutdown);
                        }
                    }
                    Ok(Err(e)) => msgs.push(failed(e)),
                    Err(_) => msgs.push(failed("the host is not connected".into())),
                }
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
                ev = next_event(&mut self.events), if reading => match ev {
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

/// The terminal's next event; never while a shell has the terminal.
async fn next_event(events: &mut Option<EventStream>) -> Option<std::io::Result<Event>> {
    match events {
        Some(events) => events.next().await,
        None => std::future::pending().await,
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
        // The console's own (see `Console::apply`).
        Effect::Import => {}
        Effect::RunJob { host, request } => {
            if let Some(h) = handles.get(host) {
                h.send(HostCmd::Job(request));
            }
        }
        Effect::Preflight { host, id, stack } => {
            if let Some(h) = handles.get(host) {
                h.send(HostCmd::Preflight {
                    id,
                    stack,
                    fetch: true,
                });
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
        Effect::ReadReleases { host, stack } => {
            if let Some(h) = handles.get(host) {
                h.send(HostCmd::Releases { stack });
            }
        }
        Effect::InspectContainer { host, id, stats } => {
            if let Some(h) = handles.get(host) {
                h.send(HostCmd::Inspect { id, stats });
            }
        }
        // The console opens shells itself ([`Console::ask_shell`]): it owns the terminal.
        Effect::Shell { .. } => {}
        Effect::KeepEvents { events } => {
            if let Some(name) = events.first().map(|e| e.host.clone())
                && let Some(store) = remote::timeline::Store::for_host(&name)
            {
                tokio::spawn(async move { remote::timeline::save(Some(&store), &events).await });
            }
        }
        Effect::FollowStack {
            host,
            project,
            sources,
        } => {
            if let Some(h) = handles.get(host) {
                h.send(HostCmd::FollowStack { project, sources });
            }
        }
        Effect::StopStack { host, project } => {
            if let Some(h) = handles.get(host) {
                h.send(HostCmd::StopStack { project });
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
