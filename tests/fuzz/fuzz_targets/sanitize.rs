//! `sanitize::{line, text, keep_sgr}` over any text: what comes out holds no ESC, BEL,
//! C0 (but `\t`/`\n` where kept), DEL, C1 or bidi override, keeps SGR only where asked,
//! and a second pass changes nothing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use opsdeck::sanitize::{keep_sgr, line, text};

fn bidi(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

fn only_sgr(s: &str) -> bool {
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.next() != Some('[') {
                return false;
            }
            loop {
                match chars.next() {
                    Some('m') => break,
                    Some(c) if c.is_ascii_digit() || c == ';' || c == ':' => {}
                    _ => return false,
                }
            }
        } else if c.is_control() || bidi(c) {
            return false;
        }
    }
    true
}

fuzz_target!(|data: &[u8]| {
    let s = String::from_utf8_lossy(data);
    let l = line(&s);
    assert!(
        !l.chars().any(|c| c.is_control() || bidi(c)),
        "{s:?} -> {l:?}"
    );
    assert_eq!(line(&l), l);
    let t = text(&s);
    assert!(
        !t.chars()
            .any(|c| (c.is_control() && c != '\n' && c != '\t') || bidi(c)),
        "{s:?} -> {t:?}"
    );
    assert_eq!(text(&t), t);
    let k = keep_sgr(&s);
    assert!(only_sgr(&k), "{s:?} -> {k:?}");
    assert_eq!(keep_sgr(&k), k);
});
