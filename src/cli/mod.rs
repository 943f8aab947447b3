//! Headless commands: the same workers and model as the console, printed for scripts.

pub mod check;
pub mod complete;
pub mod events;
pub mod exec;
pub mod init;
pub mod logs;
pub mod man;
pub mod multi;
pub mod notify;
pub mod releases;
pub mod run;
pub mod status;

use std::process::ExitCode;

use crate::config::{self, Source};

/// A JSON document for stdout, pretty-printed, with no byte a terminal would act on:
/// `serde_json` escapes C0 controls, [`crate::sanitize::json`] the rest.
pub fn json_text(value: &serde_json::Value) -> String {
    crate::sanitize::json(&format!("{value:#}")).into_owned()
}

/// `opsdeck config check [PATH]`: 0 when the inventory is valid, 2 with the error otherwise.
pub fn config_check(source: Source) -> ExitCode {
    if source == Source::BuiltinLocal {
        eprintln!(
            "opsdeck: no inventory found (--config, $OPSDECK_CONFIG, ./hosts.toml, {}); \
             without one opsdeck watches this machine",
            config::xdg_config_dir()
                .map(|d| d.join("hosts.toml").display().to_string())
                .unwrap_or_else(|| "~/.config/opsdeck/hosts.toml".into())
        );
        return ExitCode::from(2);
    }
    match config::load(source) {
        Ok(c) => {
            print!("{}", config::summary(&c));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("opsdeck: {e}");
            ExitCode::from(2)
        }
    }
}
