//! `script::command`, the line a host's login shell runs: for any argument vector and
//! `DOCKER_HOST` value it is `None` exactly when a word holds a NUL, and otherwise every
//! word reads back unchanged under POSIX shell quoting, with nothing a shell would expand.
//! (The property tests run the same line through dash, bash and busybox sh.)
#![no_main]

use libfuzzer_sys::fuzz_target;

/// `opsdeck::jobs::script` is private to the crate (`mod script;` in src/jobs/mod.rs), so
/// the very same source file is compiled in here.
#[allow(dead_code)]
#[path = "../../../src/jobs/script.rs"]
mod script;

use script::command;

/// The words of `line` as a POSIX shell reads them, for lines made of the three forms
/// `shlex` writes: bare characters that no shell treats specially, `'...'` (literal) and
/// `"..."` (where `\` escapes `$`, `` ` ``, `"`, `\` and newline). Anything else, such as a
/// bare `$`, `~` or `*`, or an unescaped `$` in double quotes, is an error: a shell would
/// expand it.
fn posix_words(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut chars = line.chars().peekable();
    while chars.peek().is_some() {
        let mut word = String::new();
        while let Some(c) = chars.next() {
            match c {
                ' ' => break,
                '\'' => loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err("unclosed '".into()),
                    }
                },
                '"' => loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('$' | '`' | '"' | '\\')) => word.push(c),
                            Some('\n') => {}
                            Some(c) => {
                                word.push('\\');
                                word.push(c);
                            }
                            None => return Err("unclosed \"".into()),
                        },
                        Some(c @ ('$' | '`')) => return Err(format!("{c} in double quotes")),
                        Some(c) => word.push(c),
                        None => return Err("unclosed \"".into()),
                    }
                },
                c if c.is_ascii_alphanumeric() || "+-./:@]_".contains(c) => word.push(c),
                c => return Err(format!("bare {c:?}")),
            }
        }
        words.push(word);
    }
    Ok(words)
}

fuzz_target!(|input: (Option<String>, String, Vec<String>)| {
    let (docker_host, script, args) = input;
    let line = command(docker_host.as_deref(), &script, &args);
    let mut words: Vec<String> = Vec::new();
    if let Some(host) = &docker_host {
        words.push("env".into());
        words.push(format!("DOCKER_HOST={host}"));
    }
    words.extend(["sh".into(), "-c".into(), script, "sh".into()]);
    words.extend(args);
    let nul = words.iter().any(|w| w.contains('\0'));
    match line {
        None => assert!(nul, "refused a line without NUL"),
        Some(line) => {
            assert!(!nul, "quoted a NUL: {line:?}");
            assert_eq!(posix_words(&line), Ok(words), "{line:?}");
        }
    }
});
