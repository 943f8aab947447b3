//! The inventory as written in `hosts.toml`. Unknown keys are rejected so a typo such as
//! `adress` is an error with a position, not a silently ignored line.

use serde::Deserialize;
use toml::Spanned;

use super::duration::HumanDuration;
use super::step::{CommandLine, Step};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Inventory {
    #[serde(default)]
    pub settings: Settings,
    #[serde(default, rename = "host")]
    pub hosts: Vec<Host>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub refresh: Option<HumanDuration>,
    pub theme: Option<Spanned<String>>,
    #[serde(default)]
    pub read_only: bool,
    pub known_hosts: Option<String>,
    /// Fleet-wide limits for `opsdeck check` and the problems panel.
    #[serde(default)]
    pub thresholds: Thresholds,
    /// Where `opsdeck check` posts its problems when they change.
    pub notify: Option<Notify>,
}

/// A webhook for `opsdeck check`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Notify {
    pub url: Spanned<String>,
    #[serde(default)]
    pub kind: NotifyKind,
    /// The chat a Telegram bot posts to (`kind = "telegram"`).
    pub chat_id: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NotifyKind {
    /// `{"status", "hosts", "problems": [...]}`, as `check --json` prints it.
    #[default]
    Json,
    /// A plain-text message with ntfy's Title, Priority and Tags headers.
    Ntfy,
    /// A bot's `sendMessage` URL (`https://api.telegram.org/bot<token>/sendMessage`).
    Telegram,
}

/// Limits that turn a reading into a problem. Every key is optional: a host's own table
/// overrides the settings' key by key, and what neither sets has a default.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    /// Disk use in percent: warning at or above (default 85).
    pub disk_warn: Option<f64>,
    /// Disk use in percent: critical at or above (default 95).
    pub disk_crit: Option<f64>,
    /// Memory use in percent: warning at or above (default 90).
    pub mem_warn: Option<f64>,
    /// Memory use in percent: critical at or above (default 97).
    pub mem_crit: Option<f64>,
    /// A container restarted this many times or more is in a restart loop (default 3).
    pub restarts: Option<i64>,
}

impl Thresholds {
    /// `self` where set, else `base`.
    pub fn or(self, base: Thresholds) -> Thresholds {
        Thresholds {
            disk_warn: self.disk_warn.or(base.disk_warn),
            disk_crit: self.disk_crit.or(base.disk_crit),
            mem_warn: self.mem_warn.or(base.mem_warn),
            mem_crit: self.mem_crit.or(base.mem_crit),
            restarts: self.restarts.or(base.restarts),
        }
    }

    pub fn resolve(self) -> crate::model::Limits {
        let d = crate::model::Limits::default();
        crate::model::Limits {
            disk_warn: self.disk_warn.unwrap_or(d.disk_warn),
            disk_crit: self.disk_crit.unwrap_or(d.disk_crit),
            mem_warn: self.mem_warn.unwrap_or(d.mem_warn),
            mem_crit: self.mem_crit.unwrap_or(d.mem_crit),
            restarts: self.restarts.unwrap_or(d.restarts),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Host {
    pub name: Spanned<String>,
    /// An IP, a DNS name, a `~/.ssh/config` alias, or `local`. Defaults to `name`, so a
    /// host that is already an alias in `~/.ssh/config` needs nothing else.
    pub address: Option<Spanned<String>>,
    pub port: Option<Port>,
    pub user: Option<String>,
    pub identity_file: Option<String>,
    /// ProxyJump syntax: `user@host:port`, several hops separated by commas.
    pub jump: Option<String>,
    pub docker_socket: Option<String>,
    pub refresh: Option<HumanDuration>,
    #[serde(default)]
    pub production: bool,
    #[serde(default)]
    pub read_only: bool,
    pub known_hosts: Option<String>,
    #[serde(default, rename = "stack")]
    pub stacks: Vec<Stack>,
    #[serde(default, rename = "check")]
    pub checks: Vec<Check>,
    /// Overrides `settings.thresholds` for this host, key by key.
    #[serde(default)]
    pub thresholds: Thresholds,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stack {
    pub name: Spanned<String>,
    pub dir: String,
    #[serde(default)]
    pub compose_files: Vec<String>,
    pub env_file: Option<String>,
    /// The compose project name (`-p`); compose's own default is the directory's name.
    pub project: Option<String>,
    /// Services of interest; empty means all of the project's services.
    #[serde(default)]
    pub services: Vec<String>,
    #[serde(default)]
    pub compose: ComposeCommand,
    pub deploy: Option<Recipe>,
    pub migrate: Option<Recipe>,
    /// Prints the database's migration head (its last line counts), recorded with every
    /// release: `compose exec -T app alembic current`.
    pub migration_head: Option<CommandLine>,
    /// Undoes migrations down to a release's head when rolling back to it; the word
    /// `{head}` in its steps is that release's recorded head.
    pub downgrade: Option<Recipe>,
    /// `migrate`, and a deploy step that is one of the migrate recipe's, take a dump of the
    /// stack's `pg_dump` backup set first (default true).
    #[serde(default = "yes")]
    pub backup_before_migrate: bool,
    #[serde(default, rename = "action")]
    pub actions: Vec<CustomAction>,
    #[serde(default, rename = "check")]
    pub checks: Vec<Check>,
    #[serde(default, rename = "backup")]
    pub backups: Vec<BackupSet>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum ComposeCommand {
    /// `docker compose` when the plugin answers, else `docker-compose`.
    #[default]
    #[serde(rename = "auto")]
    Auto,
    #[serde(rename = "docker compose")]
    Plugin,
    #[serde(rename = "docker-compose")]
    Standalone,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recipe {
    pub steps: Spanned<Vec<Step>>,
    /// Upper bound for the whole recipe; a step running past it is cancelled.
    pub timeout: Option<HumanDuration>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomAction {
    pub name: Spanned<String>,
    pub key: Option<Spanned<String>>,
    pub description: Option<String>,
    pub steps: Spanned<Vec<Step>>,
    /// Dangerous actions ask for confirmation like deploys do.
    #[serde(default)]
    pub dangerous: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Via {
    /// From the machine opsdeck runs on.
    #[default]
    Direct,
    /// Through the host's SSH connection, for ports only the host can reach.
    Ssh,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Check {
    pub name: Spanned<String>,
    pub url: Spanned<String>,
    #[serde(default = "default_status")]
    pub expect_status: Spanned<u16>,
    pub expect_body: Option<String>,
    pub timeout: Option<HumanDuration>,
    #[serde(default)]
    pub via: Via,
    /// Warn when an https certificate has fewer days left than this.
    pub tls_warn_days: Option<u32>,
    /// A PEM file of extra CA certificates trusted for this check, on top of the
    /// bundled Mozilla roots: for a private CA (and for tests).
    pub ca_file: Option<String>,
}

fn default_status() -> Spanned<u16> {
    Spanned::new(0..0, 200)
}

/// A TCP port, 1 to 65535, with an error that says so rather than "expected u16".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Port(pub u16);

impl<'de> Deserialize<'de> for Port {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Port;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a port number from 1 to 65535")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Port, E> {
                match u16::try_from(v) {
                    Ok(p) if p > 0 => Ok(Port(p)),
                    _ => Err(E::custom(format!(
                        "port {v} is out of range: use a port number from 1 to 65535"
                    ))),
                }
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupSet {
    pub name: Spanned<String>,
    pub dir: String,
    pub glob: Spanned<String>,
    pub max_age: HumanDuration,
    pub keep_last: Option<u32>,
    pub keep_within: Option<HumanDuration>,
    pub pg_dump: Option<PgDump>,
    pub file_copy: Option<FileCopy>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PgDump {
    /// The compose service whose container runs the database.
    pub service: String,
    pub database: String,
    #[serde(default = "default_pg_user")]
    pub user: String,
    #[serde(default)]
    pub format: DumpFormat,
}

fn default_pg_user() -> String {
    "postgres".into()
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum DumpFormat {
    /// `pg_dump -Fc`, checked with `pg_restore --list`.
    #[default]
    #[serde(rename = "custom")]
    Custom,
    /// Plain SQL through gzip, checked with `gzip -t`.
    #[serde(rename = "sql-gzip")]
    SqlGzip,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileCopy {
    /// Path of the file to copy, relative to the stack dir.
    pub source: String,
    pub quiesce: Option<CommandLine>,
    pub resume: Option<CommandLine>,
}
