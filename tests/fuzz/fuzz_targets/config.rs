//! The TOML inventory loader over any text: never a panic, and every error names a
//! line and column inside the text, with that line as its excerpt.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use opsdeck::config::{Config, ConfigError, Inventory, Source, parse_str, summary};

fuzz_target!(|data: &[u8]| {
    // The loader reads with `read_to_string`, so only UTF-8 reaches the parser.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("fuzz.toml");
    match parse_str(text, path) {
        Ok(inventory) => {
            let config = Config {
                source: Source::Flag(path.to_path_buf()),
                inventory,
            };
            let _ = summary(&config);
            for host in &config.inventory.hosts {
                let _ = (
                    host.target(),
                    config.refresh_for(host),
                    host.docker_socket(),
                );
            }
        }
        Err(e @ ConfigError::Invalid { .. }) => {
            let shown = e.to_string();
            let ConfigError::Invalid {
                line,
                column,
                excerpt,
                ..
            } = &e
            else {
                unreachable!()
            };
            let lines: Vec<&str> = text.split('\n').collect();
            assert!(
                (1..=lines.len()).contains(line),
                "line {line} of {}: {shown}",
                lines.len()
            );
            let this = lines[line - 1];
            assert!(
                *column >= 1 && *column <= this.chars().count() + 1,
                "column {column} of {:?}: {shown}",
                this
            );
            // `str::lines` drops the `\r` of a `\r\n`, not a bare one at the very end.
            let expected = if *line < lines.len() {
                this.strip_suffix('\r').unwrap_or(this)
            } else {
                this
            };
            assert_eq!(expected, excerpt);
            assert!(shown.starts_with(&format!("fuzz.toml:{line}:{column}: ")));
            // A position of 1:1 must be the error's own span, not a missing one.
            if let Err(toml) = toml::from_str::<Inventory>(text) {
                assert!(toml.span().is_some(), "no span: {toml}");
            }
        }
        Err(e @ ConfigError::Read { .. }) => panic!("parse_str read a file: {e}"),
    }
});
