//! The console's panic hook, in a process of its own (a panic hook is global): a panic in a
//! worker's task leaves the terminal to the UI and goes to the log; a panic on the UI
//! thread gives the terminal back and prints.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use opsdeck::runtime::terminal::panic_hook;

static ACTIVE: AtomicBool = AtomicBool::new(true);
static RESTORED: AtomicUsize = AtomicUsize::new(0);
static PRINTED: AtomicUsize = AtomicUsize::new(0);

fn active() -> bool {
    ACTIVE.load(Ordering::SeqCst)
}

fn restore() {
    RESTORED.fetch_add(1, Ordering::SeqCst);
}

#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<u8>>>);

impl Write for Log {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Log {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[test]
fn only_a_panic_on_the_ui_thread_takes_the_terminal_back() {
    let log = Log::default();
    let writer = log.clone();
    tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();
    let print = std::panic::take_hook();
    std::panic::set_hook(panic_hook(
        std::thread::current().id(),
        active,
        restore,
        Box::new(move |info| {
            PRINTED.fetch_add(1, Ordering::SeqCst);
            print(info);
        }),
    ));

    // A host worker's task panics: tokio catches it, the console goes on drawing.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let err = runtime
        .block_on(async { tokio::spawn(async { panic!("a worker's bug") }).await })
        .unwrap_err();
    assert!(err.is_panic());
    assert_eq!(
        RESTORED.load(Ordering::SeqCst),
        0,
        "the terminal stays the UI's"
    );
    assert_eq!(
        PRINTED.load(Ordering::SeqCst),
        0,
        "nothing is printed over the UI"
    );
    let text = log.text();
    assert!(text.contains("a worker's bug"), "logged: {text}");
    assert!(text.contains("on thread tokio-"), "with its thread: {text}");

    // The UI thread panics: the terminal is given back, and the message printed.
    assert!(std::panic::catch_unwind(|| panic!("the UI's bug")).is_err());
    assert_eq!(RESTORED.load(Ordering::SeqCst), 1);
    assert_eq!(PRINTED.load(Ordering::SeqCst), 1);
    assert!(log.text().contains("the UI's bug"));

    // Once the terminal is given back, any panic prints as usual.
    ACTIVE.store(false, Ordering::SeqCst);
    assert!(std::thread::spawn(|| panic!("late")).join().is_err());
    assert_eq!(PRINTED.load(Ordering::SeqCst), 2);
}
