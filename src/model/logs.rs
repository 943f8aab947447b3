//! A container's log as a bounded ring with stable sequence numbers, so a search match
//! or a paused viewport keeps pointing at the same line while old lines fall off.
//!
//! The ring is bounded twice: by lines and by bytes, so a container printing long lines
//! cannot take more than [`LOG_BYTES`] of memory. Search is case-insensitive by folding
//! each character on its own, and a match is mapped back to whole characters of the
//! original text: lower-casing changes byte lengths (`Ⱥ` is two bytes, `ⱥ` three; `K`
//! KELVIN SIGN three, `k` one), so offsets in a lower-cased copy never index the original.

use std::collections::VecDeque;
use std::ops::Range;

pub const LOG_CAPACITY: usize = 5000;
/// The most a ring holds, counting each line's text, timestamp and bookkeeping.
pub const LOG_BYTES: usize = 4 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// `HH:MM:SS` as Docker stamped it (UTC), or empty when it carried no timestamp.
    pub time: String,
    /// Docker's timestamp of the line in full, when it carried one: what a stack's logs
    /// are interleaved by.
    pub at: Option<jiff::Timestamp>,
    /// In a stack's logs, which of its services the line came from (an index into the
    /// pane's list of services); `None` in one container's log.
    pub source: Option<u16>,
    pub stream: Stream,
    /// The text with its colours: SGR sequences are the only escape sequences left in it
    /// (the reader runs it through `sanitize::keep_sgr`); the view renders them.
    pub text: String,
}

impl LogLine {
    /// What the line costs the ring.
    pub fn cost(&self) -> usize {
        std::mem::size_of::<LogLine>() + self.text.len() + self.time.len()
    }
}

#[derive(Debug, Clone, Default)]
pub struct LogRing {
    lines: VecDeque<LogLine>,
    /// Sequence number of `lines[0]`.
    first_seq: u64,
    /// The sum of [`LogLine::cost`] over `lines`.
    bytes: usize,
    /// The search, [`fold`]ed; empty for none.
    search: String,
    /// Whether each line matches `search`, decided once as it arrives, so neither a line
    /// leaving the ring nor a redraw matches it again.
    matched: VecDeque<bool>,
    /// How many of `matched` are true.
    matches: usize,
}

impl LogRing {
    /// Appends a line; returns how many lines fell off the front to keep the ring within
    /// [`LOG_CAPACITY`] lines and [`LOG_BYTES`] bytes (the newest line always stays).
    pub fn push(&mut self, line: LogLine) -> usize {
        let hit = matches(&line.text, &self.search);
        self.matches += usize::from(hit);
        self.matched.push_back(hit);
        self.bytes += line.cost();
        self.lines.push_back(line);
        let mut dropped = 0;
        while self.lines.len() > LOG_CAPACITY || (self.bytes > LOG_BYTES && self.lines.len() > 1) {
            let Some(old) = self.lines.pop_front() else {
                break;
            };
            self.bytes -= old.cost();
            self.first_seq += 1;
            if self.matched.pop_front() == Some(true) {
                self.matches -= 1;
            }
            dropped += 1;
        }
        dropped
    }

    /// Searches for `needle` (case-insensitive, on what the user sees) from now on: every
    /// line held is matched once here, each new one as it arrives.
    pub fn set_search(&mut self, needle: &str) {
        self.search = fold(needle);
        let search = &self.search;
        self.matched = self
            .lines
            .iter()
            .map(|l| matches(&l.text, search))
            .collect();
        self.matches = self.matched.iter().filter(|m| **m).count();
    }

    /// Lines held that match the search.
    pub fn matches(&self) -> usize {
        self.matches
    }

    /// What the lines held cost, in bytes (at most [`LOG_BYTES`] plus one line).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn len(&self) -> usize {
        self.lines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    pub fn first_seq(&self) -> u64 {
        self.first_seq
    }

    /// One past the newest line's sequence number.
    pub fn end_seq(&self) -> u64 {
        self.first_seq + self.lines.len() as u64
    }

    pub fn get(&self, seq: u64) -> Option<&LogLine> {
        seq.checked_sub(self.first_seq)
            .and_then(|i| self.lines.get(usize::try_from(i).ok()?))
    }

    /// Lines `[from, to)` by sequence number, clamped to what is held.
    pub fn range(&self, from: u64, to: u64) -> impl Iterator<Item = (u64, &LogLine)> {
        let from = from.max(self.first_seq);
        let to = to.min(self.end_seq());
        (from..to).filter_map(move |s| self.get(s).map(|l| (s, l)))
    }

    /// The nearest line matching the search ([`LogRing::set_search`]) strictly after (or
    /// before) `from`, wrapping.
    pub fn find(&self, from: Option<u64>, forward: bool) -> Option<u64> {
        if self.matches == 0 {
            return None;
        }
        let n = self.lines.len() as u64;
        let start = from.map(|s| s.saturating_sub(self.first_seq).min(n - 1));
        for step in 1..=n {
            let idx = match (start, forward) {
                (Some(s), true) => (s + step) % n,
                (Some(s), false) => (s + n * 2 - step) % n,
                (None, true) => step - 1,
                (None, false) => n - step,
            };
            if usize::try_from(idx)
                .ok()
                .and_then(|i| self.matched.get(i))
                .is_some_and(|m| *m)
            {
                return Some(self.first_seq + idx);
            }
        }
        None
    }
}

/// How long a stack's live line is held for lines of other services stamped earlier
/// that are still on their way (see [`Interleave`]).
pub const INTERLEAVE_WINDOW_MS: u64 = 250;
/// The most an [`Interleave`] holds, in lines and in bytes ([`LogLine::cost`]): past
/// either, the oldest lines go out at once, window or not.
pub const INTERLEAVE_LINES: usize = 2000;
pub const INTERLEAVE_BYTES: usize = 1024 * 1024;

/// Several logs (a stack's services) put in one order by Docker's timestamps.
///
/// Each service's stream is in order by itself; across streams, lines stamped at about
/// the same time can arrive in any order (each stream is its own connection, read in
/// batches). A line is therefore held until it has waited [`INTERLEAVE_WINDOW_MS`]; when
/// one is due, every line held that is stamped no later than it goes out with it,
/// oldest first. So lines that arrive within the window of each other come out in
/// timestamp order, and a line that arrives later than that (a stream that stalled) comes
/// out when it arrives, after newer lines: the view never waits on a silent service.
/// `docker compose logs -f` does not reorder at all; this is that, approximately
/// ordered. A backlog read in full goes through [`Interleave::drain`] instead: sorted.
///
/// A line without a timestamp, or stamped before its service's previous line, counts as
/// stamped with that previous line's time, so each service keeps its own order. Clocks
/// are never compared with this machine's: `now_ms` is only a stopwatch for the window.
#[derive(Debug, Default)]
pub struct Interleave {
    held: std::collections::BinaryHeap<std::cmp::Reverse<Held>>,
    bytes: usize,
    /// Arrival order, the tie-break between equal timestamps.
    seq: u64,
    /// Each source's newest timestamp.
    last: Vec<Option<jiff::Timestamp>>,
}

#[derive(Debug)]
struct Held {
    at: jiff::Timestamp,
    seq: u64,
    arrived_ms: u64,
    line: LogLine,
}

impl PartialEq for Held {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Held {}
impl PartialOrd for Held {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Held {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

impl Interleave {
    /// Takes a line of source `line.source` (0 when it has none), arrived at `now_ms`.
    /// Lines beyond the bounds go to `out` at once, oldest first.
    pub fn push(&mut self, line: LogLine, now_ms: u64, out: &mut Vec<LogLine>) {
        let src = usize::from(line.source.unwrap_or(0));
        if self.last.len() <= src {
            self.last.resize(src + 1, None);
        }
        let at = match (line.at, self.last[src]) {
            (Some(t), Some(prev)) => t.max(prev),
            (Some(t), None) => t,
            (None, Some(prev)) => prev,
            (None, None) => jiff::Timestamp::MIN,
        };
        self.last[src] = Some(at);
        self.bytes += line.cost();
        self.seq += 1;
        self.held.push(std::cmp::Reverse(Held {
            at,
            seq: self.seq,
            arrived_ms: now_ms,
            line,
        }));
        while self.held.len() > INTERLEAVE_LINES || self.bytes > INTERLEAVE_BYTES {
            self.pop(out);
        }
    }

    /// Lines held, waiting for their window.
    pub fn len(&self) -> usize {
        self.held.len()
    }

    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    /// Puts out, oldest first, the lines whose window has passed at `now_ms`, and every
    /// line stamped no later than the newest of those.
    pub fn release(&mut self, now_ms: u64, out: &mut Vec<LogLine>) {
        let cut = self
            .held
            .iter()
            .filter(|h| h.0.arrived_ms.saturating_add(INTERLEAVE_WINDOW_MS) <= now_ms)
            .map(|h| h.0.at)
            .max();
        let Some(cut) = cut else {
            return;
        };
        while self.held.peek().is_some_and(|h| h.0.at <= cut) {
            self.pop(out);
        }
    }

    /// Puts out everything held, oldest first.
    pub fn drain(&mut self, out: &mut Vec<LogLine>) {
        while !self.held.is_empty() {
            self.pop(out);
        }
    }

    fn pop(&mut self, out: &mut Vec<LogLine>) {
        if let Some(std::cmp::Reverse(h)) = self.held.pop() {
            self.bytes -= h.line.cost();
            out.push(h.line);
        }
    }
}

/// The case-folded form search compares: every character lower-cased on its own (no
/// context rules), so a needle and a text fold the same way.
pub fn fold(s: &str) -> String {
    if s.is_ascii() {
        return s.to_ascii_lowercase();
    }
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_ascii() {
            out.push(c.to_ascii_lowercase());
        } else {
            out.extend(c.to_lowercase());
        }
    }
    out
}

/// Whether a line's visible text contains `folded_needle` (already [`fold`]ed).
pub fn matches(text: &str, folded_needle: &str) -> bool {
    if folded_needle.is_empty() {
        return false;
    }
    let plain = strip_ansi(text);
    if !folded_needle.is_ascii() {
        return fold(&plain).contains(folded_needle);
    }
    // An ASCII needle can only meet ASCII bytes of the folded text, and the only
    // characters beyond ASCII that fold to ASCII are these two; every other character
    // may stay as it is (its bytes are all >= 0x80).
    let mut folded = Vec::with_capacity(plain.len());
    for c in plain.chars() {
        match c {
            '\u{212a}' => folded.push(b'k'),
            // `i` and U+0307, which stands between the `i` and what follows.
            '\u{130}' => folded.extend([b'i', 0x80]),
            c if c.is_ascii() => folded.push(c.to_ascii_lowercase() as u8),
            // Any byte >= 0x80 stands for the character: it never meets the needle.
            _ => folded.push(0x80),
        }
    }
    folded
        .windows(folded_needle.len())
        .any(|w| w == folded_needle.as_bytes())
}

/// The characters beyond ASCII whose lower case holds an ASCII character.
#[cfg(test)]
const FOLD_TO_ASCII: [char; 2] = ['\u{130}', '\u{212a}'];

/// Where `folded_needle` occurs in `plain`, case-insensitively: byte ranges of `plain`
/// that start and end on character boundaries, in order, not overlapping. A match that
/// begins or ends inside a character's lower-case expansion covers that whole character.
pub fn match_ranges(plain: &str, folded_needle: &str) -> Vec<Range<usize>> {
    if folded_needle.is_empty() {
        return Vec::new();
    }
    // For each character of `plain`: where its expansion starts in the folded text.
    let mut folded = String::with_capacity(plain.len());
    let mut starts: Vec<(usize, usize)> = Vec::with_capacity(plain.len());
    for (at, c) in plain.char_indices() {
        starts.push((folded.len(), at));
        folded.extend(c.to_lowercase());
    }
    // The character whose expansion holds folded byte `f`.
    let owner = |f: usize| match starts.binary_search_by(|(fs, _)| fs.cmp(&f)) {
        Ok(i) => i,
        Err(i) => i.saturating_sub(1),
    };
    let end_of = |i: usize| starts.get(i + 1).map_or(plain.len(), |(_, at)| *at);
    let folded_end_of = |i: usize| starts.get(i + 1).map_or(folded.len(), |(fs, _)| *fs);
    let mut out = Vec::new();
    let mut pos = 0;
    while let Some(found) = folded.get(pos..).and_then(|rest| rest.find(folded_needle)) {
        let first = owner(pos + found);
        let last = owner(pos + found + folded_needle.len() - 1);
        out.push(starts[first].1..end_of(last));
        pos = folded_end_of(last);
    }
    out
}

/// What the user sees of a line: every escape sequence and control character removed
/// (colours included); search and highlight work on this.
pub fn strip_ansi(text: &str) -> std::borrow::Cow<'_, str> {
    crate::sanitize::line(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(t: &str) -> LogLine {
        LogLine {
            time: String::new(),
            at: None,
            source: None,
            stream: Stream::Stdout,
            text: t.into(),
        }
    }

    #[test]
    fn ring_is_bounded_and_sequence_numbers_are_stable() {
        let mut r = LogRing::default();
        for i in 0..LOG_CAPACITY + 10 {
            r.push(line(&format!("line {i}")));
        }
        assert_eq!(r.len(), LOG_CAPACITY);
        assert_eq!(r.first_seq(), 10);
        assert_eq!(r.get(10).unwrap().text, "line 10");
        assert!(r.get(9).is_none());
    }

    #[test]
    fn find_wraps_both_ways_and_ignores_ansi() {
        let mut r = LogRing::default();
        for t in ["a", "\u{1b}[31mERROR\u{1b}[0m x", "b", "error y"] {
            r.push(line(t));
        }
        assert_eq!(r.find(None, true), None, "no search, no match");
        r.set_search("error");
        assert_eq!(r.find(None, true), Some(1));
        assert_eq!(r.find(Some(1), true), Some(3));
        assert_eq!(r.find(Some(3), true), Some(1));
        assert_eq!(r.find(None, false), Some(3));
        assert_eq!(r.find(Some(1), false), Some(3));
        r.set_search("ERROR");
        assert_eq!(r.matches(), 2);
        r.push(line("more errors"));
        assert_eq!(r.matches(), 3, "a new line is matched as it arrives");
        r.set_search("[31m");
        assert_eq!(r.find(None, true), None);
        assert_eq!(r.matches(), 0);
    }

    #[test]
    fn only_two_characters_beyond_ascii_fold_to_ascii() {
        let found: Vec<char> = (0x80..=0x10ffff)
            .filter_map(char::from_u32)
            .filter(|c| c.to_lowercase().any(|l| l.is_ascii()))
            .collect();
        assert_eq!(found, FOLD_TO_ASCII);
    }

    #[test]
    fn dotted_capital_i_folds_to_i_and_a_combining_dot() {
        assert!(matches("\u{130}F", "i"));
        assert!(!matches("\u{130}F", "if"), "U+0307 stands between");
        assert!(matches("\u{212a}ELVIN", "kelvin"));
    }

    proptest::proptest! {
        #[test]
        fn matches_agrees_with_folding_the_whole_text(
            text in "[a-zA-Z \u{212a}\u{130}\u{307}\u{1b}\\[0-9;m]{0,30}|\\PC{0,30}",
            needle in "[a-zA-Z\u{307}]{1,3}|\\PC{1,3}",
        ) {
            let needle = fold(&needle);
            let oracle = fold(&strip_ansi(&text)).contains(needle.as_str());
            proptest::prop_assert_eq!(matches(&text, &needle), oracle);
        }

        #[test]
        fn fold_lowercases_each_character_on_its_own(s in "\\PC{0,40}|[A-Za-z\u{212a}\u{130}\u{3a3}]{0,20}") {
            let oracle: String = s.chars().flat_map(char::to_lowercase).collect();
            proptest::prop_assert_eq!(fold(&s), oracle);
        }
    }

    #[test]
    fn ring_is_bounded_by_bytes_too() {
        let mut r = LogRing::default();
        r.set_search("X");
        let long = "x".repeat(16 * 1024);
        let mut dropped = 0;
        for i in 0..1000 {
            dropped += r.push(line(&if i % 2 == 0 {
                long.clone()
            } else {
                long.replace('x', "y")
            }));
        }
        // Lines leaving the ring leave the match count too.
        assert_eq!(
            r.matches(),
            r.range(0, u64::MAX)
                .filter(|(_, l)| l.text.contains('x'))
                .count()
        );
        assert!(r.bytes() <= LOG_BYTES, "{} bytes held", r.bytes());
        assert!(r.len() < 300, "{} lines", r.len());
        assert_eq!(dropped + r.len(), 1000);
        assert_eq!(r.first_seq() as usize, dropped);
        // One line larger than the bound is still shown.
        let mut r = LogRing::default();
        r.push(line(&"y".repeat(LOG_BYTES + 1)));
        assert_eq!(r.len(), 1);
    }

    #[test]
    fn matches_map_back_to_whole_characters_when_lowercasing_changes_lengths() {
        // U+023A lower-cases to three bytes from two, U+212A KELVIN SIGN to one from three:
        // the folded copy has the same length, but every offset after them differs.
        let plain = "\u{23a}\u{23a}error\u{212a} here";
        let found = match_ranges(plain, &fold("error"));
        assert_eq!(found, vec![4..9]);
        assert_eq!(&plain[found[0].clone()], "error");
        assert_eq!(match_ranges(plain, &fold("k")), vec![9..12]);
        assert_eq!(&plain[9..12], "\u{212a}");
        assert_eq!(match_ranges(plain, &fold("ⱥⱥ")), vec![0..4]);
        // İ folds to two characters; a needle matching half of it covers all of it.
        assert_eq!(match_ranges("aİb", "i"), vec![1..3]);
        assert_eq!(match_ranges("aaaa", "aa"), vec![0..2, 2..4]);
        assert!(match_ranges("abc", "").is_empty());
        assert!(matches("\u{23a}\u{23a}error\u{212a} here", &fold("ERROR")));
    }

    fn stamped(src: u16, secs: i64, t: &str) -> LogLine {
        LogLine {
            at: Some(jiff::Timestamp::from_second(secs).unwrap()),
            source: Some(src),
            ..line(t)
        }
    }

    fn texts(lines: &[LogLine]) -> Vec<&str> {
        lines.iter().map(|l| l.text.as_str()).collect()
    }

    #[test]
    fn interleave_orders_lines_arriving_within_the_window() {
        let mut m = Interleave::default();
        let mut out = Vec::new();
        m.push(stamped(0, 10, "app 10"), 0, &mut out);
        m.push(stamped(1, 11, "db 11"), 100, &mut out);
        m.push(stamped(0, 12, "app 12"), 200, &mut out);
        m.release(INTERLEAVE_WINDOW_MS - 1, &mut out);
        assert!(out.is_empty(), "nothing is due yet");
        m.release(INTERLEAVE_WINDOW_MS, &mut out);
        assert_eq!(
            texts(&out),
            ["app 10"],
            "only what is due, and nothing newer"
        );
        m.release(100 + INTERLEAVE_WINDOW_MS, &mut out);
        // db 11 is due; app 12 is not, and is stamped later: it waits.
        assert_eq!(texts(&out), ["app 10", "db 11"]);
        m.release(10_000, &mut out);
        assert_eq!(texts(&out), ["app 10", "db 11", "app 12"]);
        assert!(m.is_empty());
        // A line later than its window goes out when it comes, after newer ones.
        m.push(stamped(1, 5, "db late"), 20_000, &mut out);
        m.release(20_000 + INTERLEAVE_WINDOW_MS, &mut out);
        assert_eq!(out.last().unwrap().text, "db late");
    }

    #[test]
    fn interleave_keeps_each_source_in_its_own_order() {
        let mut m = Interleave::default();
        let mut out = Vec::new();
        m.push(stamped(0, 20, "a1"), 0, &mut out);
        // Stamped before a1 (a clock step on the host), and one without a stamp: both
        // stay after a1.
        m.push(stamped(0, 10, "a2"), 0, &mut out);
        m.push(
            LogLine {
                source: Some(0),
                ..line("a3")
            },
            0,
            &mut out,
        );
        m.push(stamped(1, 15, "b1"), 0, &mut out);
        m.drain(&mut out);
        assert_eq!(texts(&out), ["b1", "a1", "a2", "a3"]);
    }

    #[test]
    fn interleave_is_bounded() {
        let mut m = Interleave::default();
        let mut out = Vec::new();
        for i in 0..INTERLEAVE_LINES + 10 {
            m.push(stamped(0, i as i64, "x"), 0, &mut out);
        }
        assert_eq!(m.len(), INTERLEAVE_LINES);
        assert_eq!(out.len(), 10);
        let long = "y".repeat(64 * 1024);
        for i in 0..40 {
            m.push(stamped(1, 1_000_000 + i, &long), 0, &mut out);
        }
        assert!(m.bytes <= INTERLEAVE_BYTES, "{}", m.bytes);
        // What left first is the oldest.
        assert!(out.windows(2).all(|w| w[0].at <= w[1].at));
    }

    proptest::proptest! {
        /// However lines of three sources arrive, what `drain` gives is sorted by time,
        /// each source's lines in their own order.
        #[test]
        fn interleave_drain_sorts(stamps in proptest::collection::vec((0u16..3, 0i64..50), 0..60)) {
            let mut m = Interleave::default();
            let mut out = Vec::new();
            // Each source's stamps ascend, as Docker's do.
            let mut sorted = stamps.clone();
            for src in 0..3u16 {
                let mut mine: Vec<i64> = stamps.iter().filter(|s| s.0 == src).map(|s| s.1).collect();
                mine.sort();
                for (slot, t) in sorted.iter_mut().filter(|s| s.0 == src).zip(mine) {
                    slot.1 = t;
                }
            }
            for (i, (src, t)) in sorted.iter().enumerate() {
                m.push(stamped(*src, *t, &i.to_string()), i as u64, &mut out);
            }
            m.drain(&mut out);
            proptest::prop_assert_eq!(out.len(), sorted.len());
            proptest::prop_assert!(out.windows(2).all(|w| w[0].at <= w[1].at));
            for src in 0..3u16 {
                let order: Vec<usize> = out.iter().filter(|l| l.source == Some(src)).map(|l| l.text.parse().unwrap()).collect();
                proptest::prop_assert!(order.windows(2).all(|w| w[0] < w[1]), "{:?}", order);
            }
        }
    }

    #[test]
    fn strips_csi_and_osc() {
        assert_eq!(strip_ansi("\u{1b}[1;32mok\u{1b}[0m"), "ok");
        assert_eq!(strip_ansi("\u{1b}]0;title\u{7}x"), "x");
    }
}
