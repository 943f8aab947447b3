//! Inventory discovery, parsing and validation. Every error points at a file, line and
//! column, because an operator fixing a config at 3 a.m. should not have to search.

pub mod duration;
pub mod schema;
pub mod step;

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use duration::{HumanDuration, format_duration, parse_duration};
pub use schema::*;
pub use step::{CommandLine, Step};

/// The default poll interval: fast enough for triage, cheap on a 2-vCPU host.
pub const DEFAULT_REFRESH: Duration = Duration::from_secs(2);
pub const DEFAULT_DOCKER_SOCKET: &str = "/var/run/docker.sock";
/// Themes compiled into the binary; a `theme` value may also be a path to a TOML file.
pub const BUILTIN_THEMES: &[&str] = &["default", "16color"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Flag(PathBuf),
    Env(PathBuf),
    WorkingDir(PathBuf),
    Xdg(PathBuf),
    /// No inventory anywhere: watch the machine opsdeck runs on.
    BuiltinLocal,
}

impl Source {
    pub fn path(&self) -> Option<&Path> {
        match self {
            Source::Flag(p) | Source::Env(p) | Source::WorkingDir(p) | Source::Xdg(p) => Some(p),
            Source::BuiltinLocal => None,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Source::Flag(p) => format!("{} (--config)", p.display()),
            Source::Env(p) => format!("{} ($OPSDECK_CONFIG)", p.display()),
            Source::WorkingDir(p) => format!("{} (working directory)", p.display()),
            Source::Xdg(p) => format!("{} (config dir)", p.display()),
            Source::BuiltinLocal => "no inventory found: watching this machine".into(),
        }
    }
}

#[derive(Debug)]
pub enum ConfigError {
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    Invalid {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
        /// The offending line of the file, shown under the message with a caret.
        excerpt: String,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Read { path, error } => {
                write!(f, "{}: cannot read the inventory: {error}", path.display())
            }
            ConfigError::Invalid {
                path,
                line,
                column,
                message,
                excerpt,
            } => {
                write!(f, "{}:{line}:{column}: {message}", path.display())?;
                if !excerpt.is_empty() {
                    let gutter = line.to_string().len();
                    write!(
                        f,
                        "\n{:gutter$} |\n{line} | {excerpt}\n{:gutter$} | {:>col$}",
                        "",
                        "",
                        "^",
                        col = *column
                    )?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for ConfigError {}

#[derive(Debug)]
pub struct Config {
    pub source: Source,
    pub inventory: Inventory,
}

impl Config {
    /// The inventory used when no file is found: one host, this machine.
    pub fn builtin_local() -> Config {
        let text = "[[host]]\nname = \"local\"\naddress = \"local\"\n";
        let inventory = parse_str(text, Path::new("<builtin>")).unwrap_or_default();
        Config {
            source: Source::BuiltinLocal,
            inventory,
        }
    }

    pub fn refresh_for(&self, host: &Host) -> Duration {
        host.refresh
            .or(self.inventory.settings.refresh)
            .map(HumanDuration::as_duration)
            .unwrap_or(DEFAULT_REFRESH)
    }
}

impl Host {
    pub fn is_local(&self) -> bool {
        self.address
            .as_ref()
            .is_some_and(|a| a.get_ref() == "local")
    }

    pub fn address(&self) -> &str {
        self.address
            .as_ref()
            .map(|a| a.get_ref().as_str())
            .unwrap_or(self.name.get_ref())
    }

    /// `this machine`, or `ssh user@address:port via jump` as far as the inventory says.
    pub fn target(&self) -> String {
        if self.is_local() {
            return "this machine".into();
        }
        let user = self
            .user
            .as_deref()
            .map(|u| format!("{u}@"))
            .unwrap_or_default();
        let port = self.port.map(|p| format!(":{}", p.0)).unwrap_or_default();
        let jump = self
            .jump
            .as_deref()
            .map(|j| format!(" via {j}"))
            .unwrap_or_default();
        format!("ssh {user}{}{port}{jump}", self.address())
    }

    pub fn docker_socket(&self) -> &str {
        self.docker_socket
            .as_deref()
            .unwrap_or(DEFAULT_DOCKER_SOCKET)
    }
}

/// Where the inventory comes from, in the documented order.
pub fn discover(flag: Option<&Path>, env: Option<&str>, cwd: &Path, xdg: Option<&Path>) -> Source {
    if let Some(p) = flag {
        return Source::Flag(p.to_path_buf());
    }
    if let Some(p) = env.filter(|s| !s.is_empty()) {
        return Source::Env(PathBuf::from(p));
    }
    let local = cwd.join("hosts.toml");
    if local.is_file() {
        return Source::WorkingDir(PathBuf::from("hosts.toml"));
    }
    if let Some(dir) = xdg {
        let p = dir.join("hosts.toml");
        if p.is_file() {
            return Source::Xdg(p);
        }
    }
    Source::BuiltinLocal
}

/// The XDG config dir (`~/.config/opsdeck` on Linux).
pub fn xdg_config_dir() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "opsdeck").map(|d| d.config_dir().to_path_buf())
}

pub fn load(source: Source) -> Result<Config, ConfigError> {
    let Some(path) = source.path() else {
        return Ok(Config::builtin_local());
    };
    let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
        path: path.to_path_buf(),
        error,
    })?;
    let inventory = parse_str(&text, path)?;
    Ok(Config { source, inventory })
}

pub fn parse_str(text: &str, path: &Path) -> Result<Inventory, ConfigError> {
    let inventory: Inventory = toml::from_str(text).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        invalid(text, path, span, e.message().trim_end().to_string())
    })?;
    validate(&inventory).map_err(|(span, message)| invalid(text, path, span, message))?;
    Ok(inventory)
}

fn invalid(text: &str, path: &Path, span: Range<usize>, message: String) -> ConfigError {
    let (line, column, excerpt) = locate(text, span.start);
    ConfigError::Invalid {
        path: path.to_path_buf(),
        line,
        column,
        message,
        excerpt,
    }
}

/// 1-based line and column (in characters) of a byte offset, and that line's text.
fn locate(text: &str, offset: usize) -> (usize, usize, String) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = text[line_start..offset].chars().count() + 1;
    let line_text = text[line_start..].lines().next().unwrap_or("").to_string();
    (line, column, line_text)
}

type Invalid = (Range<usize>, String);

fn validate(inv: &Inventory) -> Result<(), Invalid> {
    if let Some(theme) = &inv.settings.theme {
        let name = theme.get_ref();
        if !BUILTIN_THEMES.contains(&name.as_str()) && !Path::new(name).is_file() {
            return Err((
                theme.span(),
                format!(
                    "unknown theme {name:?}: use one of {} or a path to a theme file",
                    BUILTIN_THEMES.join(", ")
                ),
            ));
        }
    }
    if let Some(m) = &inv.settings.metrics {
        validate_metrics(m.get_ref(), m.span(), "settings")?;
    }
    let mut names: Vec<&str> = Vec::new();
    for host in &inv.hosts {
        if let Some(m) = &host.metrics {
            validate_metrics(m.get_ref(), m.span(), host.name.get_ref())?;
        }
        if host.is_local()
            && matches!(
                host.metrics.as_ref().map(toml::Spanned::get_ref),
                Some(MetricsSource::Prometheus(_) | MetricsSource::Netdata(_))
            )
        {
            return Err((
                host.name.span(),
                "a local host's metrics come from this machine: metrics = \"ssh\" or none".into(),
            ));
        }
        let name = host.name.get_ref();
        if name.is_empty() || name.chars().any(char::is_whitespace) {
            return Err((
                host.name.span(),
                format!(
                    "host name {name:?} must be non-empty and have no spaces (it is used on the command line)"
                ),
            ));
        }
        if names.contains(&name.as_str()) {
            return Err((host.name.span(), format!("duplicate host name {name:?}")));
        }
        names.push(name);
        if host.is_local() {
            let ssh_only = [
                ("user", host.user.is_some()),
                ("port", host.port.is_some()),
                ("jump", host.jump.is_some()),
                ("identity_file", host.identity_file.is_some()),
            ];
            if let Some((key, _)) = ssh_only.iter().find(|(_, set)| *set) {
                let span = host.address.as_ref().map_or(host.name.span(), |a| a.span());
                return Err((
                    span,
                    format!("host {name:?} is `local` but sets `{key}`, which only SSH hosts use"),
                ));
            }
        }
        validate_checks(&host.checks)?;
        let mut stacks: Vec<&str> = Vec::new();
        let mut keys: Vec<&str> = Vec::new();
        for stack in &host.stacks {
            let sname = stack.name.get_ref();
            if stacks.contains(&sname.as_str()) {
                return Err((
                    stack.name.span(),
                    format!("duplicate stack name {sname:?} on host {name:?}"),
                ));
            }
            stacks.push(sname);
            for recipe in [&stack.deploy, &stack.migrate, &stack.downgrade]
                .into_iter()
                .flatten()
            {
                if recipe.steps.get_ref().is_empty() {
                    return Err((
                        recipe.steps.span(),
                        "a recipe needs at least one step".into(),
                    ));
                }
            }
            for action in &stack.actions {
                let aname = action.name.get_ref();
                if crate::model::job::BUILTIN_ACTIONS.contains(&aname.as_str()) {
                    return Err((
                        action.name.span(),
                        format!(
                            "action name {aname:?} is taken by opsdeck's own `{aname}`: name it otherwise"
                        ),
                    ));
                }
                if action.steps.get_ref().is_empty() {
                    return Err((
                        action.steps.span(),
                        "an action needs at least one step".into(),
                    ));
                }
                if let Some(key) = &action.key {
                    let k = key.get_ref();
                    let mut chars = k.chars();
                    let (Some(c), None) = (chars.next(), chars.next()) else {
                        return Err((key.span(), format!("key {k:?} must be a single character")));
                    };
                    if crate::model::keymap::is_reserved(c) {
                        return Err((
                            key.span(),
                            format!(
                                "key {k:?} is already bound by opsdeck; pick another (see `?` in the TUI)"
                            ),
                        ));
                    }
                    if keys.contains(&k.as_str()) {
                        return Err((
                            key.span(),
                            format!("key {k:?} is used by two actions on host {name:?}"),
                        ));
                    }
                    keys.push(k);
                }
            }
            validate_checks(&stack.checks)?;
            for set in &stack.backups {
                let glob = set.glob.get_ref();
                if glob.is_empty() || glob.contains('/') {
                    return Err((
                        set.glob.span(),
                        "a backup glob matches file names inside `dir`: it must be non-empty and contain no `/`".into(),
                    ));
                }
                if set.pg_dump.is_some() && set.file_copy.is_some() {
                    return Err((
                        set.name.span(),
                        format!(
                            "backup set {:?} has both `pg_dump` and `file_copy`: choose one",
                            set.name.get_ref()
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// `span`: the metrics value; `whose`: the host's name, or "settings".
fn validate_metrics(m: &MetricsSource, span: Range<usize>, whose: &str) -> Result<(), Invalid> {
    let (kind, url) = match m {
        MetricsSource::Prometheus(p) => ("prometheus", &p.prometheus),
        MetricsSource::Netdata(n) => ("netdata", &n.netdata),
        MetricsSource::Ssh(_) => return Ok(()),
    };
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err((
            span,
            format!("{whose}: metrics: {kind} url {url:?} must start with http:// or https://"),
        ));
    }
    if let MetricsSource::Prometheus(p) = m
        && p.token_env.is_some()
        && p.token_file.is_some()
    {
        return Err((
            span,
            format!(
                "{whose}: metrics: give a bearer token by token_env or by token_file, not both"
            ),
        ));
    }
    Ok(())
}

fn validate_checks(checks: &[Check]) -> Result<(), Invalid> {
    for check in checks {
        let url = check.url.get_ref();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err((
                check.url.span(),
                format!("check url {url:?} must start with http:// or https://"),
            ));
        }
        let status = *check.expect_status.get_ref();
        if !(100..=599).contains(&status) {
            return Err((
                check.expect_status.span(),
                format!("expect_status {status} is not an HTTP status (100 to 599)"),
            ));
        }
        if check.follow_redirects && check.via == Via::Ssh {
            return Err((
                check.url.span(),
                "follow_redirects works only for direct checks, not via = \"ssh\"".into(),
            ));
        }
    }
    Ok(())
}

/// What `opsdeck config check` prints on success.
pub fn summary(config: &Config) -> String {
    let inv = &config.inventory;
    let mut out = String::new();
    let stacks: usize = inv.hosts.iter().map(|h| h.stacks.len()).sum();
    let checks: usize = inv
        .hosts
        .iter()
        .map(|h| h.checks.len() + h.stacks.iter().map(|s| s.checks.len()).sum::<usize>())
        .sum();
    let backups: usize = inv
        .hosts
        .iter()
        .flat_map(|h| &h.stacks)
        .map(|s| s.backups.len())
        .sum();
    let source = config
        .source
        .path()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| config.source.describe());
    out.push_str(&format!(
        "{source}: OK: {}, {}, {}, {}\n",
        plural(inv.hosts.len(), "host"),
        plural(stacks, "stack"),
        plural(checks, "check"),
        plural(backups, "backup set")
    ));
    for host in &inv.hosts {
        let target = host.target();
        let mut flags = Vec::new();
        if host.production {
            flags.push("production");
        }
        if host.read_only || inv.settings.read_only {
            flags.push("read-only");
        }
        let flags = if flags.is_empty() {
            String::new()
        } else {
            format!(" [{}]", flags.join(", "))
        };
        out.push_str(&format!(
            "  {}: {target}, every {}{flags}\n",
            host.name.get_ref(),
            format_duration(config.refresh_for(host))
        ));
        for stack in &host.stacks {
            let mut parts = vec![format!("dir {}", stack.dir)];
            if let Some(env) = &stack.env_file {
                parts.push(format!("env {env}"));
            }
            if let Some(deploy) = &stack.deploy {
                parts.push(format!("deploy {} steps", deploy.steps.get_ref().len()));
            }
            if stack.migrate.is_some() {
                parts.push("migrate".into());
            }
            if !stack.actions.is_empty() {
                parts.push(plural(stack.actions.len(), "action"));
            }
            if !stack.checks.is_empty() {
                parts.push(plural(stack.checks.len(), "check"));
            }
            for set in &stack.backups {
                let kind = if set.pg_dump.is_some() {
                    "pg_dump"
                } else if set.file_copy.is_some() {
                    "file copy"
                } else {
                    "watched"
                };
                parts.push(format!(
                    "backup {} ({kind}, max age {})",
                    set.name.get_ref(),
                    set.max_age
                ));
            }
            out.push_str(&format!(
                "    stack {}: {}\n",
                stack.name.get_ref(),
                parts.join(", ")
            ));
        }
    }
    out
}

fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locates_offsets() {
        let text = "a = 1\nbb = ü2\n";
        assert_eq!(locate(text, 0), (1, 1, "a = 1".into()));
        let off = text.find('2').unwrap();
        assert_eq!(locate(text, off), (2, 7, "bb = ü2".into()));
    }

    #[test]
    fn discovery_order() {
        let dir = std::env::temp_dir();
        let flag = Path::new("/x/flag.toml");
        assert_eq!(
            discover(Some(flag), Some("/env.toml"), &dir, None),
            Source::Flag(flag.into())
        );
        assert_eq!(
            discover(None, Some("/env.toml"), &dir, None),
            Source::Env("/env.toml".into())
        );
        let empty = Path::new("/nonexistent-opsdeck-dir");
        assert_eq!(
            discover(None, Some(""), empty, Some(empty)),
            Source::BuiltinLocal
        );
    }

    #[test]
    fn builtin_is_one_local_host() {
        let c = Config::builtin_local();
        assert_eq!(c.inventory.hosts.len(), 1);
        assert!(c.inventory.hosts[0].is_local());
    }
}
