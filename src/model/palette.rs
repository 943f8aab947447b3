//! The `:` command palette: action names, `host NAME` jumps and the current host's custom
//! actions (`action NAME`), fuzzy-matched as typed.

use nucleo_matcher::pattern::{AtomKind, CaseMatching, Normalization, Pattern};
use nucleo_matcher::{Config, Matcher, Utf32Str};

use super::keymap::{Action, PALETTE_ACTIONS};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Run(Action),
    GotoHost(usize),
    /// A custom action of a stack on a host.
    Custom {
        host: usize,
        stack: String,
        name: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub label: String,
    pub command: Command,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Palette {
    pub input: String,
    pub selected: usize,
}

/// Every palette entry for a fleet with these host names, and the custom actions
/// (`(host, stack, action name)`) of the host on screen.
pub fn entries(hosts: &[&str], customs: &[(usize, String, String)]) -> Vec<Entry> {
    let mut out: Vec<Entry> = PALETTE_ACTIONS
        .iter()
        .map(|a| Entry {
            label: a.name().to_string(),
            command: Command::Run(*a),
        })
        .collect();
    out.extend(customs.iter().map(|(host, stack, name)| Entry {
        label: format!("action {name}"),
        command: Command::Custom {
            host: *host,
            stack: stack.clone(),
            name: name.clone(),
        },
    }));
    out.extend(hosts.iter().enumerate().map(|(i, h)| Entry {
        label: format!("host {h}"),
        command: Command::GotoHost(i),
    }));
    out
}

/// Entries matching `input`, best first; all of them, in order, when `input` is empty.
pub fn matching(all: Vec<Entry>, input: &str) -> Vec<Entry> {
    if input.trim().is_empty() {
        return all;
    }
    let mut matcher = Matcher::new(Config::DEFAULT);
    let pattern = Pattern::new(
        input,
        CaseMatching::Ignore,
        Normalization::Smart,
        AtomKind::Fuzzy,
    );
    let mut buf = Vec::new();
    let mut scored: Vec<(u32, usize, Entry)> = all
        .into_iter()
        .enumerate()
        .filter_map(|(i, e)| {
            let score = pattern.score(Utf32Str::new(&e.label, &mut buf), &mut matcher)?;
            Some((score, i, e))
        })
        .collect();
    scored.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    scored.into_iter().map(|(_, _, e)| e).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fuzzy_matches_actions_and_hosts() {
        let all = entries(
            &["lila", "course-supporter"],
            &[(0, "lila".into(), "restart caddy".into())],
        );
        let m = matching(all.clone(), "lil");
        assert_eq!(m[0].command, Command::GotoHost(0));
        let m = matching(all.clone(), "qui");
        assert_eq!(m[0].command, Command::Run(Action::Quit));
        let m = matching(all.clone(), "action cad");
        assert!(matches!(&m[0].command, Command::Custom { name, .. } if name == "restart caddy"));
        assert_eq!(matching(all.clone(), "").len(), all.len());
        assert!(matching(all, "zzzz").is_empty());
    }
}
