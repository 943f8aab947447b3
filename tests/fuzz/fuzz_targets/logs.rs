//! A container's log from the engine's byte stream to the screen: Docker's frames (or a
//! TTY's raw bytes) cut into arbitrary chunks give the same lines as the whole stream at
//! once; every line is bounded and holds no escape sequence but colours; the search
//! ranges lie on character boundaries, in order; and the log pane renders the lines with
//! their colours (ansi-to-tui) and the search highlight, as the container view does.
#![no_main]

use std::cell::RefCell;
use std::sync::OnceLock;

use libfuzzer_sys::arbitrary::{self, Arbitrary};
#[path = "../../support/oracles.rs"]
mod oracles;
use libfuzzer_sys::fuzz_target;
use opsdeck::docker::logs::{CUT_MARK, LogDecoder, MAX_LINE_BYTES};
use opsdeck::model::logs::{LogRing, fold, match_ranges, matches, strip_ansi};
use opsdeck::model::{HostState, LogLine, LogPane, Model, View};
use opsdeck::ui::Theme;
use oracles::only_sgr;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::layout::Rect;

static THEME: OnceLock<Theme> = OnceLock::new();

thread_local! {
    static TERMINAL: RefCell<Terminal<TestBackend>> =
        RefCell::new(Terminal::new(TestBackend::new(100, 24)).expect("a test backend"));
}

#[derive(Arbitrary, Debug)]
struct Input {
    tty: bool,
    /// Stream byte (0, 1, 2 are Docker's; anything else is a bad frame) and payload.
    frames: Vec<(u8, Vec<u8>)>,
    /// Each payload is repeated 2^(repeat mod 8) times, so a short input reaches the
    /// 16 KiB line bound.
    repeat: u8,
    /// Chunk sizes, cycled.
    cuts: Vec<u16>,
    needle: String,
    width: u8,
    height: u8,
    current: bool,
}

fn decode(tty: bool, chunks: &[&[u8]]) -> (Vec<LogLine>, bool) {
    let mut decoder = LogDecoder::new(tty);
    let mut out = Vec::new();
    let mut failed = false;
    for chunk in chunks {
        if decoder.push(chunk, &mut out).is_err() {
            failed = true;
            break;
        }
    }
    decoder.finish(&mut out);
    (out, failed)
}

fuzz_target!(|input: Input| {
    let mut stream: Vec<u8> = Vec::new();
    for (kind, payload) in &input.frames {
        let payload = payload.repeat(1 << (input.repeat % 8));
        if !input.tty {
            stream.extend_from_slice(&[*kind, 0, 0, 0]);
            stream.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        }
        stream.extend_from_slice(&payload);
    }
    let (whole, whole_failed) = decode(input.tty, &[&stream]);
    let mut chunks: Vec<&[u8]> = Vec::new();
    let mut rest = &stream[..];
    let mut sizes = input.cuts.iter().map(|&c| usize::from(c).max(1)).cycle();
    while !rest.is_empty() {
        let n = sizes.next().unwrap_or(rest.len()).min(rest.len());
        chunks.push(&rest[..n]);
        rest = &rest[n..];
    }
    let (chunked, chunked_failed) = decode(input.tty, &chunks);
    assert_eq!(whole_failed, chunked_failed);
    assert_eq!(whole, chunked, "the lines depend on how the stream was cut");

    let needle = fold(&input.needle);
    let mut ring = LogRing::default();
    for line in whole {
        assert!(only_sgr(&line.text), "{:?}", line.text);
        // Invalid UTF-8 becomes U+FFFD, three bytes for one.
        assert!(line.text.len() <= 3 * MAX_LINE_BYTES + CUT_MARK.len());
        assert!(
            line.time.is_empty() || line.time.len() == 8,
            "{:?}",
            line.time
        );
        let plain = strip_ansi(&line.text);
        let ranges = match_ranges(&plain, &needle);
        let mut end = 0;
        for r in &ranges {
            assert!(r.start >= end && r.start < r.end, "{ranges:?}");
            let found = plain
                .get(r.clone())
                .expect("a range on character boundaries");
            assert!(
                fold(found).contains(needle.as_str()),
                "{found:?} / {needle:?}"
            );
            end = r.end;
        }
        assert_eq!(matches(&line.text, &needle), !ranges.is_empty());
        let _ = ansi_to_tui::IntoText::into_text(&line.text.as_bytes());
        ring.push(line);
    }
    ring.set_search(&input.needle);
    let count = ring.matches();
    let first = ring.find(None, true);
    assert_eq!(count > 0, first.is_some());

    let mut model = Model::new(vec![HostState::new("h", "ssh h", 2)], opsdeck_now());
    let id = "c".repeat(64);
    model.view = View::Container {
        host: 0,
        id: id.clone(),
    };
    model.logs = Some(LogPane {
        host: 0,
        id: id.clone(),
        ring,
        follow: true,
        scroll: 0,
        search: input.needle.clone(),
        current_match: if input.current { first } else { None },
        ended: None,
        stack: None,
        moment: None,
    });
    // One terminal for every input, drawn into without the diff and flush of a real
    // draw (making the terminal and diffing its cells were most of the cost); each input
    // draws into an area of its own size inside it.
    TERMINAL.with_borrow_mut(|terminal| {
        let theme = THEME.get_or_init(|| Theme::load("default").expect("the built-in theme"));
        let mut frame = terminal.get_frame();
        let full = frame.area();
        let area = Rect {
            width: (u16::from(input.width) + 1).min(full.width),
            height: (u16::from(input.height % 16) + 8).min(full.height),
            ..full
        };
        opsdeck::ui::panels::container::draw(&model, 0, &id, theme, &mut frame, area);
    });
});

fn opsdeck_now() -> jiff::Timestamp {
    jiff::Timestamp::from_second(1_795_000_000).expect("a valid time")
}
