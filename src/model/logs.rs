//! A container's log as a bounded ring with stable sequence numbers, so a search match
//! or a paused viewport keeps pointing at the same line while old lines fall off.

use std::collections::VecDeque;

pub const LOG_CAPACITY: usize = 5000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// `HH:MM:SS` as Docker stamped it (UTC), or empty when it carried no timestamp.
    pub time: String,
    pub stream: Stream,
    /// The raw text, ANSI colour codes included; the view renders them.
    pub text: String,
}

#[derive(Debug, Clone, Default)]
pub struct LogRing {
    lines: VecDeque<LogLine>,
    /// Sequence number of `lines[0]`.
    first_seq: u64,
}

impl LogRing {
    /// Appends a line; returns the oldest one when the ring was full and let it go.
    pub fn push(&mut self, line: LogLine) -> Option<LogLine> {
        self.lines.push_back(line);
        if self.lines.len() > LOG_CAPACITY {
            self.first_seq += 1;
            return self.lines.pop_front();
        }
        None
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

    /// The nearest line matching `needle` strictly after (or before) `from`, wrapping.
    pub fn find(&self, needle: &str, from: Option<u64>, forward: bool) -> Option<u64> {
        if needle.is_empty() || self.lines.is_empty() {
            return None;
        }
        let needle = needle.to_lowercase();
        let n = self.lines.len() as u64;
        let start = from.map(|s| s.saturating_sub(self.first_seq).min(n - 1));
        for step in 1..=n {
            let idx = match (start, forward) {
                (Some(s), true) => (s + step) % n,
                (Some(s), false) => (s + n * 2 - step) % n,
                (None, true) => step - 1,
                (None, false) => n - step,
            };
            let seq = self.first_seq + idx;
            if self.get(seq).is_some_and(|l| matches(&l.text, &needle)) {
                return Some(seq);
            }
        }
        None
    }

    pub fn count_matches(&self, needle: &str) -> usize {
        if needle.is_empty() {
            return 0;
        }
        let needle = needle.to_lowercase();
        self.lines
            .iter()
            .filter(|l| matches(&l.text, &needle))
            .count()
    }
}

/// Whether a line's visible text contains `lower_needle` (already lower-cased).
pub fn matches(text: &str, lower_needle: &str) -> bool {
    strip_ansi(text).to_lowercase().contains(lower_needle)
}

/// Removes CSI/OSC escape sequences; search and highlight work on what the user sees.
pub fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            match chars.peek() {
                Some('[') => {
                    chars.next();
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) {
                            break;
                        }
                    }
                }
                Some(']') => {
                    chars.next();
                    while let Some(c) = chars.next() {
                        if c == '\u{7}' {
                            break;
                        }
                        if c == '\u{1b}' && chars.peek() == Some(&'\\') {
                            chars.next();
                            break;
                        }
                    }
                }
                _ => {
                    chars.next();
                }
            }
        } else if c != '\r' {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(t: &str) -> LogLine {
        LogLine {
            time: String::new(),
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
        assert_eq!(r.find("error", None, true), Some(1));
        assert_eq!(r.find("error", Some(1), true), Some(3));
        assert_eq!(r.find("error", Some(3), true), Some(1));
        assert_eq!(r.find("error", None, false), Some(3));
        assert_eq!(r.find("error", Some(1), false), Some(3));
        assert_eq!(r.count_matches("ERROR"), 2);
        assert_eq!(r.find("[31m", None, true), None);
    }

    #[test]
    fn strips_csi_and_osc() {
        assert_eq!(strip_ansi("\u{1b}[1;32mok\u{1b}[0m\r"), "ok");
        assert_eq!(strip_ansi("\u{1b}]0;title\u{7}x"), "x");
    }
}
