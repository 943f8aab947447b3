//! `sanitize::{line, text, keep_sgr}` over any text: what comes out holds no ESC, BEL,
//! C0 (but `\t`/`\n` where kept), DEL, C1 or bidi override, keeps SGR only where asked,
//! and a second pass changes nothing.
#![no_main]

#[path = "../../support/oracles.rs"]
mod oracles;
use libfuzzer_sys::fuzz_target;
use opsdeck::sanitize::{keep_sgr, line, text};
use oracles::{bidi, only_sgr};

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
