//! The backup set's glob (`*`, `?`, classes, `\`) against a file name: never a panic,
//! never slow, whatever the pattern; a name matches itself with every character quoted;
//! and on ASCII the answer is glibc's `fnmatch(FNM_PERIOD)` in the C locale, which is
//! `find -name` plus the rule that a leading `.` is matched only by a literal `.` (the
//! backups helper's property tests compare with `find -name` itself).
#![no_main]

use std::ffi::CString;

use libfuzzer_sys::fuzz_target;
use opsdeck::collect::backups::glob_match;

fn fnmatch(pattern: &str, name: &str) -> bool {
    let (Ok(p), Ok(n)) = (CString::new(pattern), CString::new(name)) else {
        unreachable!("no NUL in ASCII input here")
    };
    // SAFETY: two valid NUL-terminated strings; fnmatch only reads them.
    unsafe { libc::fnmatch(p.as_ptr(), n.as_ptr(), libc::FNM_PERIOD) == 0 }
}

fuzz_target!(|input: (String, String)| {
    let (pattern, name) = input;
    let got = glob_match(&pattern, &name);
    let _ = glob_match(&name, &pattern);
    let quoted: String = name.chars().flat_map(|c| ['\\', c]).collect();
    assert!(glob_match(&quoted, &name), "{quoted:?} vs {name:?}");
    let ascii = |s: &str| s.bytes().all(|b| (1..0x80).contains(&b));
    // Named classes, equivalence classes and collating symbols (`[:`, `[=`, `[.` inside a
    // class) are documented as not supported.
    let unsupported = ["[:", "[=", "[."].iter().any(|s| pattern.contains(s));
    if ascii(&pattern) && ascii(&name) && !name.is_empty() && !name.contains('/') && !unsupported {
        assert_eq!(got, fnmatch(&pattern, &name), "{pattern:?} vs {name:?}");
    }
});
