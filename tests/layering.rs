//! The layering DESIGN.md and the README promise, checked on the source: the model and the
//! screens are pure (no I/O module, no tokio, bollard, russh or processes), and jobs do not
//! reach back into the transports that run them.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::path::Path;

/// Every `.rs` file under `dir`, with its code lines (comments dropped).
fn sources(dir: &Path) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                let code = text
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.starts_with("//"))
                    .map(String::from)
                    .collect();
                out.push((path.display().to_string(), code));
            }
        }
    }
    assert!(!out.is_empty(), "no sources under {}", dir.display());
    out
}

fn offenders(dir: &str, forbidden: &[&str]) -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    sources(&root)
        .into_iter()
        .flat_map(|(file, lines)| {
            lines
                .into_iter()
                .enumerate()
                .filter(|(_, l)| forbidden.iter().any(|f| l.contains(f)))
                .map(move |(n, l)| format!("{file}:{}: {l}", n + 1))
                .collect::<Vec<_>>()
        })
        .collect()
}

const IO: [&str; 14] = [
    "crate::remote",
    "crate::metrics",
    "reqwest",
    "crate::jobs",
    "crate::collect",
    "crate::checks",
    "crate::docker",
    "crate::runtime",
    "crate::cli",
    "tokio",
    "bollard",
    "russh",
    "std::process",
    "std::net",
];

#[test]
fn the_model_imports_no_io_module() {
    let found = offenders("src/model", &IO);
    assert!(found.is_empty(), "{}", found.join("\n"));
}

#[test]
fn the_screens_import_no_io_module() {
    let found = offenders("src/ui", &IO);
    assert!(found.is_empty(), "{}", found.join("\n"));
}

#[test]
fn jobs_do_not_import_the_transports() {
    let found = offenders("src/jobs", &["crate::remote"]);
    assert!(found.is_empty(), "{}", found.join("\n"));
}
