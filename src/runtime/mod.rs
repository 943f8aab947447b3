//! The one loop: terminal input, worker messages and a clock tick go into `update`;
//! effects go out to workers; the screen is redrawn only when the model says it changed.

pub mod terminal;

use std::time::{Duration, Instant};

use crossterm::event::{Event, EventStream};
use futures::StreamExt;
use jiff::Timestamp;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

use crate::config::Config;
use crate::model::{Effect, HostState, Model, Msg, update};
use crate::remote::{self, HostCmd, HostHandle};
use crate::ui::{self, Theme};

/// At most one frame per this interval, however fast messages arrive.
const FRAME: Duration = Duration::from_millis(33);

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
    let (tx, mut rx) = mpsc::channel::<Msg>(1024);
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
    let mut term = terminal::enter()?;
    let result = event_loop(&mut term, &mut model, &theme, &mut rx, &handles).await;
    terminal::restore();
    result
}

async fn event_loop(
    term: &mut terminal::Term,
    model: &mut Model,
    theme: &Theme,
    rx: &mut mpsc::Receiver<Msg>,
    handles: &[HostHandle],
) -> anyhow::Result<()> {
    let mut events = EventStream::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sighup = signal(SignalKind::hangup())?;
    let size = term.size()?;
    update(
        model,
        Msg::Resize {
            width: size.width,
            height: size.height,
        },
    );
    let mut last_draw: Option<Instant> = None;

    loop {
        if model.dirty {
            let due = last_draw.map_or(Instant::now(), |t| t + FRAME);
            if Instant::now() >= due {
                term.draw(|f| ui::view(model, theme, f))?;
                model.dirty = false;
                last_draw = Some(Instant::now());
            }
        }
        let redraw_at = last_draw.map_or_else(Instant::now, |t| t + FRAME);
        let mut msgs = Vec::new();
        tokio::select! {
            ev = events.next() => match ev {
                Some(Ok(Event::Key(k))) => {
                    if let Some(key) = terminal::map_key(k) {
                        msgs.push(Msg::Key(key));
                    }
                }
                Some(Ok(Event::Resize(w, h))) => msgs.push(Msg::Resize { width: w, height: h }),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e.into()),
                None => msgs.push(Msg::Shutdown),
            },
            Some(msg) = rx.recv() => {
                msgs.push(msg);
                // Take whatever else is already waiting, so a burst costs one frame.
                while msgs.len() < 256 {
                    match rx.try_recv() {
                        Ok(m) => msgs.push(m),
                        Err(_) => break,
                    }
                }
            }
            _ = tick.tick() => msgs.push(Msg::Tick { now: Timestamp::now() }),
            _ = sigterm.recv() => msgs.push(Msg::Shutdown),
            _ = sighup.recv() => msgs.push(Msg::Shutdown),
            _ = tokio::time::sleep_until(redraw_at.into()), if model.dirty => {}
        }
        for msg in msgs {
            for effect in update(model, msg) {
                dispatch(effect, handles);
            }
        }
        if model.should_quit {
            return Ok(());
        }
    }
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
                h.send(HostCmd::CancelJob);
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
