//! Text from a host made fit for a terminal.
//!
//! Everything a host sends (log lines, names, labels, file names, stderr, files on the host,
//! HTTP bodies, certificate fields) may carry escape sequences: OSC 52 writes the operator's
//! clipboard, CSI sequences move the cursor and rewrite what the operator reads, and a
//! UTF-8 terminal takes the C1 characters U+009B and U+009D as CSI and OSC too. These
//! functions remove every escape sequence (ECMA-48: CSI, OSC, DCS, SOS, PM, APC, and the
//! short `ESC x` forms, 7-bit and 8-bit), every C0 control but the ones a caller keeps, DEL,
//! every C1 control, and the bidirectional overrides that make text read in another order
//! than it is stored. They work on `char`s, never on byte offsets of another string, and
//! borrow the input when there is nothing to remove.

use std::borrow::Cow;

/// One line of text: newlines, carriage returns and tabs become spaces; everything else
/// that is not printable goes.
pub fn line(s: &str) -> Cow<'_, str> {
    clean(s, Keep::Line)
}

/// Several lines: `\n` and `\t` stay, `\r` goes; everything else that is not printable goes.
pub fn text(s: &str) -> Cow<'_, str> {
    clean(s, Keep::Text)
}

/// One line that keeps its colours: SGR sequences (`ESC [ … m` with numeric parameters)
/// stay, every other escape sequence and control goes; tabs become spaces.
pub fn keep_sgr(s: &str) -> Cow<'_, str> {
    clean(s, Keep::Sgr)
}

/// Serialised JSON made safe to print: DEL, the C1 controls and the bidirectional
/// controls (which `serde_json` writes as they are, unlike C0) become `\uXXXX` escapes.
/// They can only stand inside JSON strings, so the document means exactly what it meant.
pub fn json(serialised: &str) -> Cow<'_, str> {
    let escape = |c: char| ('\u{7f}'..='\u{9f}').contains(&c) || is_bidi_control(c);
    if !serialised.chars().any(escape) {
        return Cow::Borrowed(serialised);
    }
    let mut out = String::with_capacity(serialised.len() + 16);
    for c in serialised.chars() {
        if escape(c) {
            out.push_str(&format!("\\u{:04x}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Whether `c` would be removed (or replaced) by [`line`].
pub fn is_unsafe(c: char) -> bool {
    c.is_control() || is_bidi_control(c)
}

/// Directional formatting characters: embeddings, overrides and isolates (the "Trojan
/// Source" characters), which reorder what follows them on screen.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Keep {
    Line,
    Text,
    Sgr,
}

/// ESC, or the C1 control with the same meaning, as the first byte of a sequence.
const ESC: char = '\u{1b}';
const BEL: char = '\u{7}';
const C1_CSI: char = '\u{9b}';
const C1_ST: char = '\u{9c}';
const C1_OSC: char = '\u{9d}';

fn clean(s: &str, keep: Keep) -> Cow<'_, str> {
    let Some(first) = first_unsafe(s) else {
        return Cow::Borrowed(s);
    };
    let mut out = String::with_capacity(s.len());
    out.push_str(&s[..first]);
    let mut rest = &s[first..];
    loop {
        // `rest` starts with a character to remove or replace; what follows it up to the
        // next such character is copied as it is.
        let mut chars = rest.chars();
        match chars.next() {
            Some(ESC) => match chars.next() {
                Some('[') => csi(&mut chars, &mut out, keep),
                // OSC, DCS, SOS, PM, APC: a string up to ST (or BEL for OSC).
                Some(']' | 'P' | 'X' | '^' | '_') => skip_string(&mut chars),
                // nF sequences: intermediates, then one final byte.
                Some('\u{20}'..='\u{2f}') => {
                    while next_if(&mut chars, |c| ('\u{20}'..='\u{2f}').contains(&c)).is_some() {}
                    next_if(&mut chars, |c| ('\u{30}'..='\u{7e}').contains(&c));
                }
                // Fp, Fe, Fs: two characters in all; a lone ESC at the end; ESC ESC.
                _ => {}
            },
            Some(C1_CSI) => csi(&mut chars, &mut out, keep),
            Some('\u{90}' | '\u{98}' | C1_OSC | '\u{9e}' | '\u{9f}') => skip_string(&mut chars),
            Some('\n') => out.push(if keep == Keep::Text { '\n' } else { ' ' }),
            Some('\t') => out.push(if keep == Keep::Text { '\t' } else { ' ' }),
            Some('\r') if keep == Keep::Line => out.push(' '),
            _ => {}
        }
        rest = chars.as_str();
        match first_unsafe(rest) {
            Some(at) => {
                out.push_str(&rest[..at]);
                rest = &rest[at..];
            }
            None => {
                out.push_str(rest);
                return Cow::Owned(out);
            }
        }
    }
}

/// Where the first character [`is_unsafe`] starts, found on the bytes: C0 and DEL are
/// single bytes, C1 is `C2 80..9F`, the bidirectional controls are `E2 80 AA..AE` and
/// `E2 81 A6..A9`. Lead bytes never occur inside another character, so no match is a
/// false one.
fn first_unsafe(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    b.iter().enumerate().position(|(i, &c)| match c {
        0..=0x1f | 0x7f => true,
        0xc2 => matches!(b.get(i + 1), Some(0x80..=0x9f)),
        0xe2 => matches!(
            (b.get(i + 1), b.get(i + 2)),
            (Some(0x80), Some(0xaa..=0xae)) | (Some(0x81), Some(0xa6..=0xa9))
        ),
        _ => false,
    })
}

/// The next character when it satisfies `f`; otherwise nothing is consumed.
fn next_if(chars: &mut std::str::Chars<'_>, f: impl Fn(char) -> bool) -> Option<char> {
    let mut ahead = chars.clone();
    let c = ahead.next().filter(|&c| f(c))?;
    *chars = ahead;
    Some(c)
}

/// A control sequence after its introducer: parameter bytes, intermediate bytes, a final
/// byte. Kept only when it is SGR and SGR is wanted. A character outside the grammar ends
/// the sequence (as terminals do) and is then read as text.
fn csi(chars: &mut std::str::Chars<'_>, out: &mut String, keep: Keep) {
    let all = chars.as_str();
    while next_if(chars, |c| ('\u{30}'..='\u{3f}').contains(&c)).is_some() {}
    // Parameter bytes are ASCII: one byte each.
    let params = &all[..all.len() - chars.as_str().len()];
    let mut intermediates = false;
    while next_if(chars, |c| ('\u{20}'..='\u{2f}').contains(&c)).is_some() {
        intermediates = true;
    }
    let Some(fin) = next_if(chars, |c| ('\u{40}'..='\u{7e}').contains(&c)) else {
        return;
    };
    if keep == Keep::Sgr
        && fin == 'm'
        && !intermediates
        && params
            .chars()
            .all(|c| c.is_ascii_digit() || c == ';' || c == ':')
    {
        out.push(ESC);
        out.push('[');
        out.push_str(params);
        out.push('m');
    }
}

/// Skips a control string up to its terminator: ST (`ESC \` or U+009C) or BEL. An
/// unterminated string swallows the rest of the text, as it would in a terminal.
fn skip_string(chars: &mut std::str::Chars<'_>) {
    while let Some(c) = chars.next() {
        match c {
            BEL | C1_ST => return,
            ESC => {
                next_if(chars, |c| c == '\\');
                return;
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // The first implementation, character by character, kept as the oracle of the one
    // that copies runs of plain text.
    fn reference(s: &str, keep: Keep) -> Cow<'_, str> {
        if !s.chars().any(is_unsafe) {
            return Cow::Borrowed(s);
        }
        let mut out = String::with_capacity(s.len());
        let mut chars = s.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                ESC => match chars.next() {
                    Some('[') => reference_csi(&mut chars, &mut out, keep),
                    // OSC, DCS, SOS, PM, APC: a string up to ST (or BEL for OSC).
                    Some(']' | 'P' | 'X' | '^' | '_') => reference_skip(&mut chars),
                    // nF sequences: intermediates, then one final byte.
                    Some('\u{20}'..='\u{2f}') => {
                        while chars
                            .next_if(|c| ('\u{20}'..='\u{2f}').contains(c))
                            .is_some()
                        {}
                        chars.next_if(|c| ('\u{30}'..='\u{7e}').contains(c));
                    }
                    // Fp, Fe, Fs: two characters in all; a lone ESC at the end; ESC ESC.
                    _ => {}
                },
                C1_CSI => reference_csi(&mut chars, &mut out, keep),
                '\u{90}' | '\u{98}' | C1_OSC | '\u{9e}' | '\u{9f}' => reference_skip(&mut chars),
                '\n' => out.push(if keep == Keep::Text { '\n' } else { ' ' }),
                '\t' => out.push(if keep == Keep::Text { '\t' } else { ' ' }),
                '\r' if keep == Keep::Line => out.push(' '),
                c if is_unsafe(c) => {}
                c => out.push(c),
            }
        }
        Cow::Owned(out)
    }

    // A control sequence after its introducer: parameter bytes, intermediate bytes, a final
    // byte. Kept only when it is SGR and SGR is wanted. A character outside the grammar ends
    // the sequence (as terminals do) and is then read as text.
    fn reference_csi(
        chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
        out: &mut String,
        keep: Keep,
    ) {
        let mut params = String::new();
        while let Some(c) = chars.next_if(|c| ('\u{30}'..='\u{3f}').contains(c)) {
            params.push(c);
        }
        let mut intermediates = false;
        while chars
            .next_if(|c| ('\u{20}'..='\u{2f}').contains(c))
            .is_some()
        {
            intermediates = true;
        }
        let Some(fin) = chars.next_if(|c| ('\u{40}'..='\u{7e}').contains(c)) else {
            return;
        };
        if keep == Keep::Sgr
            && fin == 'm'
            && !intermediates
            && params
                .chars()
                .all(|c| c.is_ascii_digit() || c == ';' || c == ':')
        {
            out.push(ESC);
            out.push('[');
            out.push_str(&params);
            out.push('m');
        }
    }

    // Skips a control string up to its terminator: ST (`ESC \` or U+009C) or BEL. An
    // unterminated string swallows the rest of the text, as it would in a terminal.
    fn reference_skip(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
        while let Some(c) = chars.next() {
            match c {
                BEL | C1_ST => return,
                ESC => {
                    chars.next_if_eq(&'\\');
                    return;
                }
                _ => {}
            }
        }
    }

    fn hostile() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            Just("\u{1b}".to_string()),
            Just("\u{1b}[".to_string()),
            Just("\u{1b}]".to_string()),
            Just("\u{9b}".to_string()),
            Just("\u{9c}".to_string()),
            Just("\u{9d}".to_string()),
            Just("\u{202e}".to_string()),
            Just("\u{2068}".to_string()),
            Just("\\".to_string()),
            "[\\x00-\\x7f]{0,4}",
            "[0-9;:?>m ]{0,4}",
            "[\\u{80}-\\u{9f}\\u{2020}-\\u{2070}]",
            any::<char>().prop_map(String::from),
            "\\PC{0,6}",
        ];
        prop::collection::vec(piece, 0..24).prop_map(|v| v.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]
        #[test]
        fn same_as_the_character_by_character_oracle(s in hostile()) {
            for keep in [Keep::Line, Keep::Text, Keep::Sgr] {
                prop_assert_eq!(clean(&s, keep), reference(&s, keep), "{:?}", s);
            }
            prop_assert_eq!(first_unsafe(&s), s.char_indices().find(|(_, c)| is_unsafe(*c)).map(|(i, _)| i));
        }
    }

    #[test]
    fn plain_text_is_borrowed() {
        assert!(matches!(line("héllo wörld ✓"), Cow::Borrowed(_)));
    }

    #[test]
    fn removes_osc_52_csi_and_c1() {
        // OSC 52 (clipboard) with BEL and with ST; cursor movement; 8-bit CSI and OSC.
        assert_eq!(line("a\u{1b}]52;c;aGVsbG8=\u{7}b"), "ab");
        assert_eq!(line("a\u{1b}]52;c;aGVsbG8=\u{1b}\\b"), "ab");
        assert_eq!(line("a\u{1b}[2J\u{1b}[1;1Hb"), "ab");
        assert_eq!(line("a\u{9b}31mb\u{9d}0;t\u{9c}c"), "abc");
        assert_eq!(line("a\u{1b}Pq#0;2;0;0;0\u{1b}\\b"), "ab");
        assert_eq!(line("a\u{1b}(Bb\u{1b}7c\u{1b}"), "abc");
        assert_eq!(line("bell\u{7} del\u{7f} nul\u{0}"), "bell del nul");
        assert_eq!(line("a\u{202e}b\u{2066}c"), "abc");
    }

    #[test]
    fn lines_text_and_colours() {
        assert_eq!(line("a\nb\tc\rd"), "a b c d");
        assert_eq!(text("a\nb\tc\r\n"), "a\nb\tc\n");
        assert_eq!(
            keep_sgr("\u{1b}[1;31mred\u{1b}[0m\u{1b}[2K\u{1b}]52;c;x\u{7}"),
            "\u{1b}[1;31mred\u{1b}[0m"
        );
        // A private-mode sequence ending in m is not SGR.
        assert_eq!(keep_sgr("\u{1b}[?1m\u{1b}[>4;1m x"), " x");
    }

    #[test]
    fn json_keeps_its_meaning_and_loses_its_c1_bytes() {
        let v = serde_json::json!({ "issuer": "CN=x\u{9b}2J\u{1b}]52;c;eA==\u{7}\u{202e}" });
        let text = serde_json::to_string(&v).unwrap();
        let safe = json(&text);
        assert!(!safe.chars().any(|c| c.is_control() || is_bidi_control(c)));
        let back: serde_json::Value = serde_json::from_str(&safe).unwrap();
        assert_eq!(back, v);
    }

    #[test]
    fn a_broken_sequence_ends_where_the_grammar_does() {
        // The 'é' cannot be part of a CSI: the sequence is dropped, the letter kept.
        assert_eq!(line("\u{1b}[12éx"), "éx");
        // Unterminated OSC swallows the rest.
        assert_eq!(line("ok\u{1b}]0;title"), "ok");
    }
}
