//! Terminal setup and the promise to put it back: on quit, on error, on panic, on signals.

use std::io::{self, Stdout, Write};
use std::panic::PanicHookInfo;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::ThreadId;

use crossterm::cursor::{Hide, Show};
use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use crossterm::execute;
use crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;

use crate::model::Key;

pub type Term = Terminal<CrosstermBackend<Stdout>>;

/// Whether the terminal is opsdeck's (raw, alternate screen) and wants restoring.
static ACTIVE: AtomicBool = AtomicBool::new(false);

/// Takes the terminal: raw mode, the alternate screen, no cursor. Call it on the thread
/// that runs the UI: a panic there puts the terminal back, a panic elsewhere does not.
pub fn enter() -> io::Result<Term> {
    install_panic_hook();
    enable_raw_mode()?;
    ACTIVE.store(true, Ordering::SeqCst);
    let mut out = io::stdout();
    if let Err(e) = execute!(out, EnterAlternateScreen, Hide) {
        restore();
        return Err(e);
    }
    Terminal::new(CrosstermBackend::new(io::stdout()))
}

/// Takes the terminal back after a shell had it (raw mode, the alternate screen, no
/// cursor) and returns a [`Term`] that knows nothing of what is on screen, so its next
/// frame is drawn whole. (ratatui's own `clear` asks the terminal where its cursor is,
/// and a terminal that does not answer holds it two seconds and leaves the screen as
/// the shell left it.)
pub fn take_back() -> io::Result<Term> {
    enable_raw_mode()?;
    let mut out = io::stdout();
    execute!(
        out,
        EnterAlternateScreen,
        Hide,
        crossterm::terminal::Clear(crossterm::terminal::ClearType::All)
    )?;
    Terminal::new(CrosstermBackend::new(io::stdout()))
}

/// Puts the terminal back as it was: cooked mode, the main screen, the cursor. Safe to
/// call more than once and from any thread; only the first call after [`enter`] writes.
pub fn restore() {
    if !ACTIVE.swap(false, Ordering::SeqCst) {
        return;
    }
    let _ = disable_raw_mode();
    let mut out = io::stdout();
    let _ = execute!(out, LeaveAlternateScreen, Show);
    let _ = out.flush();
}

/// Whether the terminal is still opsdeck's.
pub fn active() -> bool {
    ACTIVE.load(Ordering::SeqCst)
}

/// The panic hook for the thread calling this (the UI's).
fn install_panic_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(panic_hook(
        std::thread::current().id(),
        active,
        restore,
        previous,
    ));
}

pub type PanicHook = Box<dyn Fn(&PanicHookInfo<'_>) + Send + Sync + 'static>;

/// What a panic does while the console runs. On the UI thread (or once the terminal is
/// given back) it brings the console down: the terminal is restored and the message printed
/// (`previous`). Anywhere else, a host worker's or a job's task, the console goes on: tokio
/// catches the panic, the worker's end shows as its host down or its job failed, and the
/// message goes to opsdeck's log, since printing it would scribble over the screen. Every
/// panic is logged.
pub fn panic_hook(
    ui: ThreadId,
    active: fn() -> bool,
    restore: fn(),
    previous: PanicHook,
) -> PanicHook {
    Box::new(move |info| {
        let thread = std::thread::current();
        let name = thread.name().unwrap_or("unnamed");
        let on_ui = thread.id() == ui;
        let backtrace = std::backtrace::Backtrace::capture();
        let backtrace = match backtrace.status() {
            std::backtrace::BacktraceStatus::Captured => format!("\n{backtrace}"),
            _ => String::new(),
        };
        tracing::error!(
            "panic on thread {name}{}: {info}{backtrace}",
            if on_ui { " (the UI's)" } else { "" }
        );
        if on_ui || !active() {
            restore();
            previous(info);
        }
    })
}

/// Maps a crossterm key event to the model's own key type; releases and repeats of
/// modifier-only keys are ignored.
pub fn map_key(ev: KeyEvent) -> Option<Key> {
    if ev.kind == KeyEventKind::Release {
        return None;
    }
    let ctrl = ev.modifiers.contains(KeyModifiers::CONTROL);
    Some(match ev.code {
        KeyCode::Char(c) if ctrl => Key::Ctrl(c.to_ascii_lowercase()),
        KeyCode::Char(c) => Key::Char(c),
        KeyCode::Enter => Key::Enter,
        KeyCode::Esc => Key::Esc,
        KeyCode::Up => Key::Up,
        KeyCode::Down => Key::Down,
        KeyCode::Left => Key::Left,
        KeyCode::Right => Key::Right,
        KeyCode::PageUp => Key::PageUp,
        KeyCode::PageDown => Key::PageDown,
        KeyCode::Home => Key::Home,
        KeyCode::End => Key::End,
        KeyCode::Backspace => Key::Backspace,
        KeyCode::Tab => Key::Tab,
        KeyCode::BackTab => Key::BackTab,
        _ => return None,
    })
}
