//! The inventory as written in `hosts.toml`. Unknown keys are rejected so a typo such as
//! `adress` is an error with a position, not a silently ignored line.

use schemars::JsonSchema;
use serde::Deserialize;
use toml::Spanned;

use super::duration::HumanDuration;
use super::step::{CommandLine, Step};

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Inventory {
    /// Settings for the whole inventory.
    #[serde(default)]
    pub settings: Settings,
    /// The hosts opsdeck watches, in the order it shows them.
    #[serde(default, rename = "host")]
    pub hosts: Vec<Host>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// How often hosts are polled (default "2s"; a host's `refresh` overrides it).
    pub refresh: Option<HumanDuration>,
    /// A built-in theme ("default", "16color") or a path to a theme file (default "default").
    #[schemars(with = "Option<String>")]
    pub theme: Option<Spanned<String>>,
    /// Refuse every action that changes a host, and every mutating headless command.
    #[serde(default)]
    pub read_only: bool,
    /// The known_hosts file host keys are verified against (default ~/.ssh/known_hosts).
    pub known_hosts: Option<String>,
    /// Fleet-wide limits for `opsdeck check` and the problems panel.
    #[serde(default)]
    pub thresholds: Thresholds,
    /// Where `opsdeck check` posts its problems when they change.
    pub notify: Option<Notify>,
    /// Where every host's metrics come from (default "ssh"; a host's `metrics` overrides
    /// it).
    #[schemars(with = "Option<MetricsSource>")]
    pub metrics: Option<Spanned<MetricsSource>>,
}

/// Where a host's CPU, memory, load, network and disk figures come from.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(
    untagged,
    expecting = "metrics must be \"ssh\", { netdata = \"URL\", via = \"ssh\" } or { prometheus = \"URL\", instance = \"{address}:9100\" }"
)]
pub enum MetricsSource {
    /// `"ssh"`: sampled from the host's /proc over its SSH connection (the default).
    Ssh(SshMetrics),
    /// A Prometheus server that scrapes the host's node-exporter.
    Prometheus(PrometheusSource),
    /// The host's Netdata agent, its REST API.
    Netdata(NetdataSource),
}

/// `{ netdata = "http://127.0.0.1:19999", via = "ssh" }`: the host's Netdata, one request
/// per refresh for the host's charts and its containers' cgroup charts.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NetdataSource {
    /// Netdata's base URL (`http://` or `https://`); `{name}` and `{address}` are the
    /// host's. With `via = "ssh"` (the default) it is reached from the host itself, through
    /// its SSH connection, so Netdata can stay bound to localhost.
    #[schemars(regex(pattern = r"^https?://"))]
    pub netdata: String,
    /// `"ssh"` (the default): through the host's SSH connection; `"direct"`: from here.
    #[serde(default = "via_ssh")]
    pub via: Via,
}

fn via_ssh() -> Via {
    Via::Ssh
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
pub enum SshMetrics {
    #[serde(rename = "ssh")]
    Ssh,
}

/// `{ prometheus = "URL", instance = "{address}:9100" }`: PromQL over node-exporter's
/// metrics, one query per refresh for every host of the same server.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PrometheusSource {
    /// The server's base URL (`http://` or `https://`), e.g. "https://prom.example/".
    #[schemars(regex(pattern = r"^https?://"))]
    pub prometheus: String,
    /// The host's `instance` label: `{name}` is the inventory name, `{address}` (or
    /// `{host}`) its address (default "{address}:9100", node-exporter's port).
    #[serde(default = "default_instance")]
    pub instance: String,
    /// An environment variable holding a bearer token to send (never the token itself).
    pub token_env: Option<String>,
    /// A file holding a bearer token to send.
    pub token_file: Option<String>,
}

fn default_instance() -> String {
    "{address}:9100".into()
}

/// A webhook for `opsdeck check`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Notify {
    /// The webhook's URL.
    #[schemars(with = "String")]
    pub url: Spanned<String>,
    /// What the webhook expects.
    #[serde(default)]
    pub kind: NotifyKind,
    /// The chat a Telegram bot posts to (`kind = "telegram"`).
    pub chat_id: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
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
#[derive(Debug, Clone, Copy, Default, Deserialize, JsonSchema)]
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

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Host {
    /// Unique, without spaces: the host's name on the command line and in the console.
    #[schemars(with = "String", regex(pattern = r"^\S+$"))]
    pub name: Spanned<String>,
    /// An IP, a DNS name, a `~/.ssh/config` alias, or `local`. Defaults to `name`, so a
    /// host that is already an alias in `~/.ssh/config` needs nothing else.
    #[schemars(with = "Option<String>")]
    pub address: Option<Spanned<String>>,
    /// The SSH port (default: from ~/.ssh/config, else 22).
    pub port: Option<Port>,
    /// The SSH user (default: from ~/.ssh/config).
    pub user: Option<String>,
    /// A private key (default: ssh-agent, then ~/.ssh/config).
    pub identity_file: Option<String>,
    /// ProxyJump syntax: `user@host:port`, several hops separated by commas.
    pub jump: Option<String>,
    /// The host's Docker socket (default /var/run/docker.sock; rootless sockets work).
    pub docker_socket: Option<String>,
    /// The poll interval for this host (default: `settings.refresh`).
    pub refresh: Option<HumanDuration>,
    /// Confirmations ask you to type the host name.
    #[serde(default)]
    pub production: bool,
    /// Refuse mutating actions on this host.
    #[serde(default)]
    pub read_only: bool,
    /// Host keys for this host (default: `settings.known_hosts`).
    pub known_hosts: Option<String>,
    /// The Docker Compose stacks on this host.
    #[serde(default, rename = "stack")]
    pub stacks: Vec<Stack>,
    /// HTTP checks of the host, outside its stacks.
    #[serde(default, rename = "check")]
    pub checks: Vec<Check>,
    /// Overrides `settings.thresholds` for this host, key by key.
    #[serde(default)]
    pub thresholds: Thresholds,
    /// Where this host's metrics come from (default: `settings.metrics`, else "ssh").
    #[schemars(with = "Option<MetricsSource>")]
    pub metrics: Option<Spanned<MetricsSource>>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Stack {
    /// Unique on the host.
    #[schemars(with = "String")]
    pub name: Spanned<String>,
    /// The compose project directory on the host.
    pub dir: String,
    /// Compose files, passed as `-f` (default: compose's own).
    #[serde(default)]
    pub compose_files: Vec<String>,
    /// Passed as `--env-file` (e.g. ".env.prod").
    pub env_file: Option<String>,
    /// The compose project name (`-p`); compose's own default is the directory's name.
    pub project: Option<String>,
    /// Services of interest; empty means all of the project's services.
    #[serde(default)]
    pub services: Vec<String>,
    /// Which compose command runs the stack.
    #[serde(default)]
    pub compose: ComposeCommand,
    /// The steps `deploy` runs.
    pub deploy: Option<Recipe>,
    /// The steps `migrate` runs (a dump of the stack's pg_dump set goes first).
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
    /// The stack's own actions, each with a key in the console.
    #[serde(default, rename = "action")]
    pub actions: Vec<CustomAction>,
    /// HTTP checks of the stack.
    #[serde(default, rename = "check")]
    pub checks: Vec<Check>,
    /// Backup sets: files in a directory, judged fresh, stale, suspicious or missing.
    #[serde(default, rename = "backup")]
    pub backups: Vec<BackupSet>,
}

fn yes() -> bool {
    true
}

/// Which compose command runs a stack.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
pub enum ComposeCommand {
    /// `docker compose` when the plugin answers, else `docker-compose`.
    #[default]
    #[serde(rename = "auto")]
    Auto,
    /// The compose plugin.
    #[serde(rename = "docker compose")]
    Plugin,
    /// The standalone compose v1.
    #[serde(rename = "docker-compose")]
    Standalone,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Recipe {
    /// The steps, run in order; the first that fails stops the recipe.
    #[schemars(with = "Vec<Step>", length(min = 1))]
    pub steps: Spanned<Vec<Step>>,
    /// Upper bound for the whole recipe; a step running past it is cancelled.
    pub timeout: Option<HumanDuration>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomAction {
    /// Unique in the stack, and not one of the words `opsdeck run` means itself (deploy,
    /// migrate, rollback, restore, restart, backup, stop, start, kill, pause, unpause, rm).
    #[schemars(with = "String")]
    pub name: Spanned<String>,
    /// One character not bound by opsdeck, that runs the action in the console.
    #[schemars(with = "Option<String>", length(equal = 1))]
    pub key: Option<Spanned<String>>,
    /// Shown next to the action in the console.
    pub description: Option<String>,
    /// The steps, run in order; the first that fails stops the action.
    #[schemars(with = "Vec<Step>", length(min = 1))]
    pub steps: Spanned<Vec<Step>>,
    /// Dangerous actions ask for confirmation like deploys do.
    #[serde(default)]
    pub dangerous: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Via {
    /// From the machine opsdeck runs on.
    #[default]
    Direct,
    /// Through the host's SSH connection, for ports only the host can reach.
    Ssh,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Check {
    /// Unique among the host's or stack's checks.
    #[schemars(with = "String")]
    pub name: Spanned<String>,
    /// An `http://` or `https://` URL.
    #[schemars(with = "String", regex(pattern = "^https?://"))]
    pub url: Spanned<String>,
    /// The HTTP status a healthy answer has.
    #[serde(default = "default_status")]
    #[schemars(with = "u16", range(min = 100, max = 599), extend("default" = 200))]
    pub expect_status: Spanned<u16>,
    /// Text a healthy answer's body contains.
    pub expect_body: Option<String>,
    /// How long the request may take (default "10s").
    pub timeout: Option<HumanDuration>,
    /// Where the request is made from.
    #[serde(default)]
    pub via: Via,
    /// Warn when an https certificate has fewer days left than this (default 14).
    pub tls_warn_days: Option<u32>,
    /// A PEM file of extra CA certificates trusted for this check, on top of the
    /// bundled Mozilla roots: for a private CA (and for tests).
    pub ca_file: Option<String>,
    /// Follow redirects (at most 10) and judge the last answer; by default a redirect is
    /// the answer (its 3xx status). Direct checks only.
    #[serde(default)]
    pub follow_redirects: bool,
}

fn default_status() -> Spanned<u16> {
    Spanned::new(0..0, 200)
}

/// A TCP port, 1 to 65535, with an error that says so rather than "expected u16".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Port(pub u16);

impl JsonSchema for Port {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Port".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A TCP port, 1 to 65535.",
            "type": "integer",
            "minimum": 1,
            "maximum": 65535,
        })
    }
}

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

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BackupSet {
    /// Unique in the stack.
    #[schemars(with = "String")]
    pub name: Spanned<String>,
    /// The directory on the host holding the set's files.
    pub dir: String,
    /// The set's file names in `dir` (no `/`); its single `*` becomes a UTC timestamp in
    /// the names of new backups.
    #[schemars(with = "String", regex(pattern = "^[^/]+$"))]
    pub glob: Spanned<String>,
    /// The newest file is stale when it is older than this.
    pub max_age: HumanDuration,
    /// Retention: keep the newest this many files.
    pub keep_last: Option<u32>,
    /// Retention: keep the files younger than this.
    pub keep_within: Option<HumanDuration>,
    /// Take backups with pg_dump in the database's container.
    pub pg_dump: Option<PgDump>,
    /// Take backups by copying a file of the stack.
    pub file_copy: Option<FileCopy>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PgDump {
    /// The compose service whose container runs the database.
    pub service: String,
    /// The database to dump.
    pub database: String,
    /// The PostgreSQL role pg_dump connects as.
    #[serde(default = "default_pg_user")]
    pub user: String,
    /// The dump's format.
    #[serde(default)]
    pub format: DumpFormat,
}

fn default_pg_user() -> String {
    "postgres".into()
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
pub enum DumpFormat {
    /// `pg_dump -Fc`, checked with `pg_restore --list`.
    #[default]
    #[serde(rename = "custom")]
    Custom,
    /// Plain SQL through gzip, checked with `gzip -t`.
    #[serde(rename = "sql-gzip")]
    SqlGzip,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileCopy {
    /// Path of the file to copy, relative to the stack dir.
    pub source: String,
    /// Run before the copy (e.g. "compose stop backend").
    pub quiesce: Option<CommandLine>,
    /// Run after the copy, even when it failed (e.g. "compose start backend").
    pub resume: Option<CommandLine>,
}

/// The JSON Schema of `hosts.toml`, generated from the types above, as pretty JSON with a
/// final newline: what `opsdeck config schema` prints and `schema/hosts.schema.json` holds.
/// Draft-07, the newest draft Taplo (Even Better TOML) validates with.
pub fn json_schema() -> String {
    let generator = schemars::generate::SchemaSettings::draft07().into_generator();
    let mut schema = generator.into_root_schema_for::<Inventory>();
    schema.insert("title".into(), "opsdeck inventory (hosts.toml)".into());
    schema.insert(
        "description".into(),
        "The hosts, stacks, checks and backup sets opsdeck watches. Generated from \
         src/config/schema.rs by `opsdeck config schema`; check a file with \
         `opsdeck config check`."
            .into(),
    );
    let mut value = schema.to_value();
    drop_null(&mut value);
    let mut text = serde_json::to_string_pretty(&value).unwrap_or_default();
    text.push('\n');
    text
}

/// TOML has no null: an optional key is left out, never `null`. schemars writes an
/// `Option<T>` as T or null; this takes the null out again, everywhere in `value`.
fn drop_null(value: &mut serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            if let Some(Value::Array(types)) = map.get_mut("type") {
                types.retain(|t| t != "null");
                if let [only] = types.as_slice() {
                    let only = only.clone();
                    map.insert("type".into(), only);
                }
            }
            if let Some(Value::Array(alternatives)) = map.get_mut("anyOf") {
                alternatives.retain(|a| a.get("type").is_none_or(|t| t != "null"));
                if alternatives.len() == 1 {
                    // Draft-07 ignores the siblings of a `$ref`, such as a description.
                    if let Some(alternatives) = map.remove("anyOf") {
                        map.insert("allOf".into(), alternatives);
                    }
                }
            }
            map.values_mut().for_each(drop_null);
        }
        Value::Array(items) => items.iter_mut().for_each(drop_null),
        _ => {}
    }
}
