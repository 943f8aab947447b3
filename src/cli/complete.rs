//! Shell completion: `opsdeck completions SHELL` prints a small script that, at each TAB,
//! asks opsdeck itself (`OPSDECK_COMPLETE=SHELL opsdeck -- WORDS...`, clap_complete's
//! dynamic engine) what may come next. Subcommands and flags come from the clap definition;
//! host, stack, action and backup set names from the inventory opsdeck would load for that
//! command line (`--config` on it, `$OPSDECK_CONFIG`, `./hosts.toml`, the XDG config dir).
//!
//! A completion never prints to the terminal: an inventory that is missing, unreadable or
//! invalid completes no names (and says nothing), and a name that could not stand as one
//! word on a command line (whitespace, control characters) is not offered.

use std::ffi::{OsStr, OsString};
use std::path::PathBuf;

use clap_complete::engine::{CompletionCandidate, PathCompleter, ValueCompleter};

use crate::config::{self, Host, Inventory};

/// The environment variable that turns a run of opsdeck into a completion request (not
/// clap_complete's default `COMPLETE`, a name other programs use too).
pub const COMPLETE_VAR: &str = "OPSDECK_COMPLETE";

/// The shells `opsdeck completions` writes a script for.
pub const SHELLS: [&str; 5] = ["bash", "zsh", "fish", "elvish", "powershell"];

/// `opsdeck run`'s own actions; custom actions come from the inventory.
pub const BUILTIN_ACTIONS: [&str; 12] = [
    "deploy", "migrate", "rollback", "restore", "restart", "backup", "stop", "start", "kill",
    "pause", "unpause", "rm",
];

/// Flags that take a value as the next word (`--stack NAME`): their values are not
/// positional arguments. `main.rs` checks this list against the clap definition.
pub const VALUE_FLAGS: [&str; 13] = [
    "--config",
    "-c",
    "--theme",
    "--stack",
    "--signal",
    "--to",
    "--hosts",
    "--tail",
    "--since",
    "--out-dir",
    "--ansible",
    "--out",
    "-o",
];

/// The registration script for `shell` (one of [`SHELLS`]): it calls `completer` (the
/// opsdeck to run at each TAB) for the command `opsdeck`.
pub fn registration(shell: &str, completer: &str) -> std::io::Result<Vec<u8>> {
    let shells = clap_complete::env::Shells::builtins();
    let Some(sh) = shells.completer(shell) else {
        return Err(std::io::Error::other(format!(
            "unknown shell {shell:?}: use one of {}",
            SHELLS.join(", ")
        )));
    };
    let mut buf = Vec::new();
    sh.write_registration(COMPLETE_VAR, "opsdeck", "opsdeck", completer, &mut buf)?;
    Ok(buf)
}

/// What the script should run at each TAB: this binary as it was invoked. A bare name
/// (`opsdeck`, found on PATH) stays one, so the script outlives a reinstall; a relative
/// path is made absolute, since completion runs in whatever directory the shell is in.
pub fn completer_path(argv0: &OsStr, cwd: Option<&std::path::Path>) -> String {
    let path = PathBuf::from(argv0);
    let path = match cwd {
        Some(cwd) if path.components().count() > 1 && path.is_relative() => cwd.join(path),
        _ => path,
    };
    path.to_string_lossy().into_owned()
}

/// The command line being completed, up to the word under the cursor.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Line {
    /// The words between the program's name and the word being completed.
    pub before: Vec<String>,
}

impl Line {
    /// From a completion request's arguments (`COMPLETER -- opsdeck WORDS...`) and the
    /// index of the word being completed among the words after `--` (bash, zsh and
    /// elvish pass it; fish and PowerShell complete the last word).
    pub fn from_request(args: &[OsString], index: Option<usize>) -> Line {
        let words: Vec<String> = match args.iter().position(|a| a == "--") {
            Some(i) => args[i + 1..]
                .iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect(),
            None => Vec::new(),
        };
        let end = index
            .unwrap_or(words.len().saturating_sub(1))
            .min(words.len());
        Line {
            before: words
                .get(1..end)
                .map(<[String]>::to_vec)
                .unwrap_or_default(),
        }
    }

    /// The request this process was started for.
    pub fn current() -> Line {
        let args: Vec<OsString> = std::env::args_os().collect();
        let index = std::env::var("_CLAP_COMPLETE_INDEX")
            .ok()
            .and_then(|i| i.parse().ok());
        Line::from_request(&args, index)
    }

    /// The words before the cursor up to a lone `--` (after it, `exec`'s command's own
    /// words), with a lone `=` (bash splits `--config=x` into three words) dropped.
    fn options(&self) -> impl Iterator<Item = &str> {
        self.before
            .iter()
            .map(String::as_str)
            .take_while(|w| *w != "--")
            .filter(|w| *w != "=")
    }

    /// The value of a flag with a value (`--stack x`, `--stack=x`, `-cx`), the last given.
    fn flag(&self, long: &str, short: Option<&str>) -> Option<String> {
        let mut found = None;
        let mut words = self.options();
        while let Some(w) = words.next() {
            if w == long || Some(w) == short {
                found = words.next().map(String::from);
            } else if let Some(v) = w.strip_prefix(long).and_then(|r| r.strip_prefix('=')) {
                found = Some(v.to_string());
            } else if let Some(v) = short.and_then(|s| w.strip_prefix(s)) {
                found = Some(v.to_string());
            }
        }
        found.map(|v| unquote(&v))
    }

    /// `--config` (or `-c`) as the shell would pass it: unquoted, `~/` expanded.
    pub fn config(&self) -> Option<PathBuf> {
        let value = self.flag("--config", Some("-c"))?;
        Some(match value.strip_prefix("~/") {
            Some(rest) => std::env::var_os("HOME")
                .map(|home| PathBuf::from(home).join(rest))
                .unwrap_or_else(|| PathBuf::from(&value)),
            None => PathBuf::from(value),
        })
    }

    /// `run --hosts A,B`: the hosts named.
    pub fn hosts_flag(&self) -> Option<Vec<String>> {
        let list = self.flag("--hosts", None)?;
        Some(
            list.split(',')
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect(),
        )
    }

    /// `--stack NAME`, when given.
    pub fn stack(&self) -> Option<String> {
        self.flag("--stack", None)
    }

    /// The words that are neither flags nor their values: the subcommand first, then its
    /// positional arguments.
    pub fn positionals(&self) -> Vec<&str> {
        let mut out = Vec::new();
        let mut words = self.options();
        while let Some(w) = words.next() {
            if VALUE_FLAGS.contains(&w) {
                words.next();
            } else if !w.starts_with('-') {
                out.push(w);
            }
        }
        out
    }
}

/// A shell word as the program would get it: `'a b'`, `"x"` and `a\ b` unquoted.
fn unquote(word: &str) -> String {
    if !word.contains(['\'', '"', '\\']) {
        return word.to_string();
    }
    match shlex::split(word).as_deref() {
        Some([one]) => one.clone(),
        _ => word.to_string(),
    }
}

/// The inventory opsdeck would load for this command line; `None` when it cannot be read
/// or is invalid. With no inventory anywhere it is the built-in one (`local`), as for the
/// console.
pub fn inventory(line: &Line) -> Option<Inventory> {
    let flag = line.config();
    let env = std::env::var("OPSDECK_CONFIG").ok();
    let cwd = std::env::current_dir().ok()?;
    let source = config::discover(
        flag.as_deref(),
        env.as_deref(),
        &cwd,
        config::xdg_config_dir().as_deref(),
    );
    config::load(source).ok().map(|c| c.inventory)
}

/// A name that can be offered: one word, nothing a terminal acts on.
fn offerable(name: &str) -> bool {
    !name.is_empty()
        && !name
            .chars()
            .any(|c| c.is_whitespace() || crate::sanitize::is_unsafe(c))
}

/// A candidate: `value` (an offerable name) with an optional description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    pub value: String,
    pub help: Option<String>,
}

impl Offer {
    fn new(value: impl Into<String>, help: Option<&str>) -> Offer {
        Offer {
            value: value.into(),
            help: help
                .map(|h| crate::sanitize::line(h).into_owned())
                .filter(|h| !h.is_empty()),
        }
    }
}

/// `offers` that start with `current` and are offerable, each once, in order.
fn keep(current: &str, offers: impl IntoIterator<Item = Offer>) -> Vec<Offer> {
    let mut out: Vec<Offer> = Vec::new();
    for o in offers {
        if o.value.starts_with(current)
            && offerable(&o.value)
            && !out.iter().any(|k| k.value == o.value)
        {
            out.push(o);
        }
    }
    out
}

/// Every host of the inventory.
pub fn hosts(inv: &Inventory, current: &str) -> Vec<Offer> {
    keep(
        current,
        inv.hosts
            .iter()
            .map(|h| Offer::new(h.name.get_ref(), Some(h.address()))),
    )
}

/// `--hosts A,B,`: the hosts not named yet, after the ones that are.
pub fn host_list(inv: &Inventory, current: &str) -> Vec<Offer> {
    let (done, last) = match current.rfind(',') {
        Some(i) => current.split_at(i + 1),
        None => ("", current),
    };
    let named: Vec<&str> = done.split(',').collect();
    hosts(inv, last)
        .into_iter()
        .filter(|o| !named.contains(&o.value.as_str()))
        .map(|o| Offer {
            value: format!("{done}{}", o.value),
            help: o.help,
        })
        .collect()
}

/// The hosts this line names (`--hosts`, or host names among its positional words), or
/// every host when it names none.
fn named_hosts<'a>(inv: &'a Inventory, line: &Line) -> Vec<&'a Host> {
    let mut names: Vec<String> = line.hosts_flag().unwrap_or_default();
    names.extend(line.positionals().iter().skip(1).map(|s| s.to_string()));
    let named: Vec<&Host> = inv
        .hosts
        .iter()
        .filter(|h| names.iter().any(|n| n == h.name.get_ref()))
        .collect();
    if named.is_empty() {
        inv.hosts.iter().collect()
    } else {
        named
    }
}

/// `--stack`: the stacks of the hosts the line names (of every host when it names none).
pub fn stacks(inv: &Inventory, line: &Line, current: &str) -> Vec<Offer> {
    keep(
        current,
        named_hosts(inv, line).into_iter().flat_map(|h| {
            h.stacks
                .iter()
                .map(move |s| Offer::new(s.name.get_ref(), Some(h.name.get_ref())))
        }),
    )
}

/// `run`'s ACTION: the built-in actions, then the custom actions of the named hosts'
/// stacks (of `--stack` only, when given), spaces written as `-` as `run` accepts them.
pub fn actions(inv: &Inventory, line: &Line, current: &str) -> Vec<Offer> {
    let stack = line.stack();
    let builtin = BUILTIN_ACTIONS.iter().map(|a| Offer::new(*a, None));
    let custom = named_hosts(inv, line)
        .into_iter()
        .flat_map(|h| h.stacks.iter())
        .filter(|s| stack.as_deref().is_none_or(|want| s.name.get_ref() == want))
        .flat_map(|s| s.actions.iter())
        .map(|a| Offer::new(a.name.get_ref().replace(' ', "-"), a.description.as_deref()));
    keep(current, builtin.chain(custom).collect::<Vec<_>>())
}

/// `run HOST backup|restore SET`: the backup sets of the named hosts' stacks.
pub fn backup_sets(inv: &Inventory, line: &Line, current: &str) -> Vec<Offer> {
    let stack = line.stack();
    keep(
        current,
        named_hosts(inv, line)
            .into_iter()
            .flat_map(|h| h.stacks.iter())
            .filter(|s| stack.as_deref().is_none_or(|want| s.name.get_ref() == want))
            .flat_map(|s| {
                s.backups
                    .iter()
                    .map(move |b| Offer::new(b.name.get_ref(), Some(s.name.get_ref())))
            }),
    )
}

/// What `run` offers for its `n`th positional word (0: HOST, 1: ACTION, 2: ARG). With
/// `--hosts` the words move up, as `run` reads them: the first is the action.
pub fn run_word(inv: &Inventory, line: &Line, n: usize, current: &str) -> Vec<Offer> {
    let pos = line.positionals();
    let (n, action) = if line.hosts_flag().is_some() {
        (n + 1, pos.get(1).copied())
    } else {
        (n, pos.get(2).copied())
    };
    match n {
        0 => hosts(inv, current),
        1 => actions(inv, line, current),
        2 if matches!(action, Some("backup" | "restore")) => backup_sets(inv, line, current),
        _ => Vec::new(),
    }
}

fn candidates(offers: Vec<Offer>) -> Vec<CompletionCandidate> {
    offers
        .into_iter()
        .map(|o| CompletionCandidate::new(o.value).help(o.help.map(Into::into)))
        .collect()
}

/// Runs `f` on this request's line and inventory; nothing when the word being completed
/// is not UTF-8 or the inventory cannot be loaded.
fn with_inventory(
    current: &OsStr,
    f: impl FnOnce(&Inventory, &Line, &str) -> Vec<Offer>,
) -> Vec<CompletionCandidate> {
    let Some(current) = current.to_str() else {
        return Vec::new();
    };
    let line = Line::current();
    match inventory(&line) {
        Some(inv) => candidates(f(&inv, &line, current)),
        None => Vec::new(),
    }
}

/// A HOST argument.
pub fn complete_host(current: &OsStr) -> Vec<CompletionCandidate> {
    with_inventory(current, |inv, _, cur| hosts(inv, cur))
}

/// `run --hosts A,B,...`.
pub fn complete_host_list(current: &OsStr) -> Vec<CompletionCandidate> {
    with_inventory(current, |inv, _, cur| host_list(inv, cur))
}

/// `--stack`.
pub fn complete_stack(current: &OsStr) -> Vec<CompletionCandidate> {
    with_inventory(current, stacks)
}

/// `run`'s first positional word: HOST, or with `--hosts` the action.
pub fn complete_run_host(current: &OsStr) -> Vec<CompletionCandidate> {
    with_inventory(current, |inv, line, cur| run_word(inv, line, 0, cur))
}

/// `run`'s second positional word: ACTION, or with `--hosts` its argument.
pub fn complete_run_action(current: &OsStr) -> Vec<CompletionCandidate> {
    with_inventory(current, |inv, line, cur| run_word(inv, line, 1, cur))
}

/// `run`'s third positional word: the backup set of `backup` and `restore`.
pub fn complete_run_arg(current: &OsStr) -> Vec<CompletionCandidate> {
    with_inventory(current, |inv, line, cur| run_word(inv, line, 2, cur))
}

/// `--theme`: the built-in themes, then theme files.
pub fn complete_theme(current: &OsStr) -> Vec<CompletionCandidate> {
    let text = current.to_string_lossy();
    let mut out: Vec<CompletionCandidate> = config::BUILTIN_THEMES
        .iter()
        .filter(|t| t.starts_with(text.as_ref()))
        .map(|t| CompletionCandidate::new(*t))
        .collect();
    out.extend(PathCompleter::file().complete(current));
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::path::Path;

    const INVENTORY: &str = r#"
[[host]]
name = "lila"
address = "10.0.0.2"
[[host.stack]]
name = "lila"
dir = "~/lila"
[[host.stack.action]]
name = "restart caddy"
description = "reload the proxy"
steps = ["true"]
[[host.stack.backup]]
name = "db"
dir = "~/backups"
glob = "lila-*.sql.gz"
max_age = "1d"

[[host]]
name = "lab-two"
address = "10.0.0.3"
[[host.stack]]
name = "course-supporter"
dir = "~/cs"
[[host.stack]]
name = "proxy"
dir = "~/proxy"

[[host]]
name = "cs"
address = "10.0.0.4"
[[host.stack]]
name = "bad\u001b]52;c;eA==\u0007name"
dir = "~/x"
"#;

    fn inv() -> Inventory {
        config::parse_str(INVENTORY, Path::new("test.toml")).unwrap()
    }

    fn values(offers: Vec<Offer>) -> Vec<String> {
        offers.into_iter().map(|o| o.value).collect()
    }

    fn line(words: &[&str]) -> Line {
        Line {
            before: words.iter().map(|w| w.to_string()).collect(),
        }
    }

    #[test]
    fn the_request_is_cut_at_the_cursor() {
        let args: Vec<OsString> = ["opsdeck", "--", "opsdeck", "run", "--stack", "x", "li"]
            .iter()
            .map(OsString::from)
            .collect();
        assert_eq!(
            Line::from_request(&args, Some(4)).before,
            ["run", "--stack", "x"]
        );
        // fish and PowerShell: the last word is the one completed
        assert_eq!(
            Line::from_request(&args, None).before,
            ["run", "--stack", "x"]
        );
        assert_eq!(
            Line::from_request(&args, Some(1)).before,
            Vec::<String>::new()
        );
        // an index past the end: every word is before it
        assert_eq!(Line::from_request(&args, Some(99)).before.len(), 4);
        assert_eq!(Line::from_request(&args[..1], None), Line::default());
    }

    #[test]
    fn config_is_found_in_every_spelling() {
        for (words, want) in [
            (&["--config", "a.toml", "run"][..], "a.toml"),
            (&["run", "-c", "b.toml"][..], "b.toml"),
            (&["-cc.toml", "run"][..], "c.toml"),
            (&["--config=d.toml"][..], "d.toml"),
            (&["--config", "=", "e.toml"][..], "e.toml"),
            (&["--config", "'my hosts.toml'"][..], "my hosts.toml"),
            (&["--config", "x.toml", "--config", "y.toml"][..], "y.toml"),
        ] {
            assert_eq!(line(words).config(), Some(PathBuf::from(want)), "{words:?}");
        }
        // after `--`, `-c` is the command's own
        assert_eq!(
            line(&["exec", "lila", "app", "--", "sh", "-c", "x"]).config(),
            None
        );
        let home = std::env::var_os("HOME").map(PathBuf::from);
        if let Some(home) = home {
            assert_eq!(
                line(&["--config", "~/h.toml"]).config(),
                Some(home.join("h.toml"))
            );
        }
    }

    #[test]
    fn positionals_skip_flags_and_their_values() {
        let l = line(&[
            "--config", "x", "run", "--stack", "s", "-y", "lila", "backup",
        ]);
        assert_eq!(l.positionals(), ["run", "lila", "backup"]);
        assert_eq!(l.stack().as_deref(), Some("s"));
    }

    #[test]
    fn hosts_complete_by_prefix() {
        let inv = inv();
        assert_eq!(values(hosts(&inv, "li")), ["lila"]);
        assert_eq!(values(hosts(&inv, "l")), ["lila", "lab-two"]);
        assert_eq!(values(hosts(&inv, "")), ["lila", "lab-two", "cs"]);
        assert_eq!(hosts(&inv, "li")[0].help.as_deref(), Some("10.0.0.2"));
        assert!(hosts(&inv, "x").is_empty());
    }

    #[test]
    fn a_host_list_completes_its_last_item() {
        let inv = inv();
        assert_eq!(values(host_list(&inv, "lila,la")), ["lila,lab-two"]);
        assert_eq!(
            values(host_list(&inv, "lila,")),
            ["lila,lab-two", "lila,cs"]
        );
        assert_eq!(values(host_list(&inv, "")), ["lila", "lab-two", "cs"]);
    }

    #[test]
    fn stacks_are_the_named_hosts_or_all() {
        let inv = inv();
        assert_eq!(
            values(stacks(&inv, &line(&["run", "lab-two"]), "")),
            ["course-supporter", "proxy"]
        );
        assert_eq!(
            values(stacks(&inv, &line(&["run", "--hosts", "lila,lab-two"]), "")),
            ["lila", "course-supporter", "proxy"]
        );
        // no host named: every stack, each once, the unprintable one left out
        assert_eq!(
            values(stacks(&inv, &line(&["logs"]), "")),
            ["lila", "course-supporter", "proxy"]
        );
        assert_eq!(
            values(stacks(&inv, &line(&["releases"]), "c")),
            ["course-supporter"]
        );
    }

    #[test]
    fn actions_are_builtin_then_the_hosts_custom_ones() {
        let inv = inv();
        let on_lila = actions(&inv, &line(&["run", "lila"]), "");
        assert_eq!(on_lila.len(), BUILTIN_ACTIONS.len() + 1);
        let custom = actions(&inv, &line(&["run", "lila"]), "restart-");
        assert_eq!(values(custom.clone()), ["restart-caddy"]);
        assert_eq!(custom[0].help.as_deref(), Some("reload the proxy"));
        assert_eq!(
            values(actions(&inv, &line(&["run", "lab-two"]), "re")),
            ["restore", "restart"]
        );
        assert_eq!(
            values(actions(
                &inv,
                &line(&["run", "lila", "--stack", "other"]),
                "restart-"
            )),
            Vec::<String>::new()
        );
    }

    #[test]
    fn run_words_move_up_with_hosts() {
        let inv = inv();
        assert_eq!(values(run_word(&inv, &line(&["run"]), 0, "li")), ["lila"]);
        assert_eq!(
            values(run_word(&inv, &line(&["run", "--hosts", "lila"]), 0, "dep")),
            ["deploy"]
        );
        assert_eq!(
            values(run_word(&inv, &line(&["run", "lila", "backup"]), 2, "")),
            ["db"]
        );
        assert_eq!(
            values(run_word(
                &inv,
                &line(&["run", "--hosts", "lila", "backup"]),
                1,
                ""
            )),
            ["db"]
        );
        assert!(run_word(&inv, &line(&["run", "lila", "stop"]), 2, "").is_empty());
    }

    #[test]
    fn unprintable_names_are_never_offered() {
        assert!(offerable("lila"));
        assert!(!offerable("a b"));
        assert!(!offerable("a\u{b}b")); // bash's completion separator
        assert!(!offerable("x\u{1b}[2J"));
        assert!(!offerable("x\u{9b}2J"));
        assert!(!offerable("x\u{202e}y"));
        assert!(!offerable(""));
    }

    #[test]
    fn registration_is_written_for_every_shell() {
        for shell in SHELLS {
            let script =
                String::from_utf8(registration(shell, "/usr/bin/opsdeck").unwrap()).unwrap();
            assert!(script.contains(COMPLETE_VAR), "{shell}: {script}");
            assert!(script.contains("/usr/bin/opsdeck"), "{shell}: {script}");
        }
        assert!(registration("tcsh", "opsdeck").is_err());
    }

    #[test]
    fn the_completer_is_absolute_unless_a_bare_name() {
        let cwd = Path::new("/home/me/src");
        assert_eq!(completer_path(OsStr::new("opsdeck"), Some(cwd)), "opsdeck");
        assert_eq!(
            completer_path(OsStr::new("target/debug/opsdeck"), Some(cwd)),
            "/home/me/src/target/debug/opsdeck"
        );
        assert_eq!(
            completer_path(OsStr::new("/usr/bin/opsdeck"), Some(cwd)),
            "/usr/bin/opsdeck"
        );
    }
}
