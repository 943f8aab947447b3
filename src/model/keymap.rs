//! Every key binding, in one table: `update` dispatches from it, the `?` overlay lists it,
//! the `:` palette offers its actions by name, and the config refuses custom action keys
//! that collide with it. One source, so help can never lie about a key.

/// A key press, independent of the terminal library.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    Char(char),
    Ctrl(char),
    Enter,
    Esc,
    Up,
    Down,
    Left,
    Right,
    PageUp,
    PageDown,
    Home,
    End,
    Backspace,
    Tab,
    BackTab,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Quit,
    Help,
    Palette,
    Filter,
    Up,
    Down,
    PageUp,
    PageDown,
    Top,
    Bottom,
    Open,
    Back,
    NextHost,
    PrevHost,
    Search,
    SearchNext,
    SearchPrev,
    TogglePause,
    FollowEnd,
    GoFleet,
    Answer,
    Backup,
    Problems,
    SortWorst,
    Deploy,
    Migrate,
    Restart,
    RestartStack,
    StopStart,
    PauseUnpause,
    Kill,
    Remove,
    Rollback,
    Jobs,
    CancelJob,
    Shell,
    HostShell,
    Timeline,
    StackLogs,
    ServiceFilter,
    NextTab,
    PrevTab,
    GotoTab,
    Reveal,
    Mark,
    DeployMarked,
    StopDeploys,
}

impl Action {
    /// The name the `:` palette shows and accepts.
    pub fn name(self) -> &'static str {
        match self {
            Action::Quit => "quit",
            Action::Help => "help",
            Action::Palette => "palette",
            Action::Filter => "filter",
            Action::Up => "up",
            Action::Down => "down",
            Action::PageUp => "page-up",
            Action::PageDown => "page-down",
            Action::Top => "top",
            Action::Bottom => "bottom",
            Action::Open => "open",
            Action::Back => "back",
            Action::NextHost => "next-host",
            Action::PrevHost => "prev-host",
            Action::Search => "search",
            Action::SearchNext => "search-next",
            Action::SearchPrev => "search-prev",
            Action::TogglePause => "pause",
            Action::FollowEnd => "follow",
            Action::GoFleet => "fleet",
            Action::Answer => "answer-host",
            Action::Backup => "backup",
            Action::Problems => "problems",
            Action::SortWorst => "sort-worst",
            Action::Deploy => "deploy",
            Action::Migrate => "migrate",
            Action::Restart => "restart",
            Action::RestartStack => "restart-stack",
            Action::StopStart => "stop-start",
            Action::PauseUnpause => "pause-unpause",
            Action::Kill => "kill",
            Action::Remove => "remove",
            Action::Rollback => "rollback",
            Action::Jobs => "jobs",
            Action::CancelJob => "cancel-job",
            Action::Shell => "shell",
            Action::HostShell => "host-shell",
            Action::Timeline => "timeline",
            Action::StackLogs => "stack-logs",
            Action::ServiceFilter => "service-filter",
            Action::NextTab => "next-tab",
            Action::PrevTab => "prev-tab",
            Action::GotoTab => "tab",
            Action::Reveal => "reveal-secrets",
            Action::Mark => "mark",
            Action::DeployMarked => "deploy-marked",
            Action::StopDeploys => "stop-deploys",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ViewKind {
    Fleet,
    Host,
    Container,
    /// A compose project's logs together.
    Stack,
    /// One job's steps and output.
    Job,
    /// Recent jobs, from the audit log.
    Jobs,
    /// What changed, when: a host's or the fleet's events, newest first.
    Timeline,
}

impl ViewKind {
    pub const ALL: [ViewKind; 7] = [
        ViewKind::Fleet,
        ViewKind::Host,
        ViewKind::Container,
        ViewKind::Stack,
        ViewKind::Job,
        ViewKind::Jobs,
        ViewKind::Timeline,
    ];

    /// Views whose body is a list with a cursor (the others scroll text).
    pub fn is_list(self) -> bool {
        matches!(
            self,
            ViewKind::Fleet | ViewKind::Host | ViewKind::Jobs | ViewKind::Timeline
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    All,
    /// Fleet, host and jobs: a cursor over rows.
    Lists,
    /// Container log and job output: text that scrolls.
    Text,
    /// The views of one host: its host view, a container's, a stack's.
    OneHost,
    /// A log: a container's, or a stack's together.
    Logs,
    Only(ViewKind),
    Not(ViewKind),
}

impl Scope {
    pub fn covers(self, view: ViewKind) -> bool {
        match self {
            Scope::All => true,
            Scope::Lists => view.is_list(),
            Scope::Text => !view.is_list(),
            Scope::OneHost => {
                matches!(view, ViewKind::Host | ViewKind::Container | ViewKind::Stack)
            }
            Scope::Logs => matches!(view, ViewKind::Container | ViewKind::Stack),
            Scope::Only(v) => v == view,
            Scope::Not(v) => v != view,
        }
    }
}

pub struct Binding {
    pub keys: &'static [Key],
    /// How the keys are written in help.
    pub label: &'static str,
    pub action: Action,
    pub scope: Scope,
    pub help: &'static str,
}

use Key::*;

pub const BINDINGS: &[Binding] = &[
    Binding {
        keys: &[Up, Char('k')],
        label: "↑ k",
        action: Action::Up,
        scope: Scope::Lists,
        help: "move up",
    },
    Binding {
        keys: &[Down, Char('j')],
        label: "↓ j",
        action: Action::Down,
        scope: Scope::Lists,
        help: "move down",
    },
    Binding {
        keys: &[Up, Char('k')],
        label: "↑ k",
        action: Action::Up,
        scope: Scope::Text,
        help: "scroll up (pauses following)",
    },
    Binding {
        keys: &[Down, Char('j')],
        label: "↓ j",
        action: Action::Down,
        scope: Scope::Text,
        help: "scroll down",
    },
    Binding {
        keys: &[PageUp, Ctrl('b')],
        label: "PgUp ^b",
        action: Action::PageUp,
        scope: Scope::All,
        help: "page up",
    },
    Binding {
        keys: &[PageDown, Ctrl('f')],
        label: "PgDn ^f",
        action: Action::PageDown,
        scope: Scope::All,
        help: "page down",
    },
    Binding {
        keys: &[Home, Char('g')],
        label: "Home g",
        action: Action::Top,
        scope: Scope::All,
        help: "go to the top",
    },
    Binding {
        keys: &[End, Char('G')],
        label: "End G",
        action: Action::Bottom,
        scope: Scope::Lists,
        help: "go to the bottom",
    },
    Binding {
        keys: &[End, Char('G')],
        label: "End G",
        action: Action::FollowEnd,
        scope: Scope::Text,
        help: "jump to the end and follow",
    },
    Binding {
        keys: &[Enter, Right, Char('l')],
        label: "⏎ → l",
        action: Action::Open,
        scope: Scope::Lists,
        help: "open the selected row",
    },
    Binding {
        keys: &[Esc, Left, Char('h'), Backspace],
        label: "Esc ← h",
        action: Action::Back,
        scope: Scope::Not(ViewKind::Fleet),
        help: "back",
    },
    Binding {
        keys: &[Esc],
        label: "Esc",
        action: Action::Back,
        scope: Scope::Only(ViewKind::Fleet),
        help: "clear the filter, else the marks",
    },
    Binding {
        keys: &[Char(' ')],
        label: "Space",
        action: Action::Mark,
        scope: Scope::Only(ViewKind::Fleet),
        help: "mark / unmark the host, for d",
    },
    Binding {
        keys: &[Char('d')],
        label: "d",
        action: Action::DeployMarked,
        scope: Scope::Only(ViewKind::Fleet),
        help: "deploy the marked hosts, one at a time (asks first)",
    },
    Binding {
        keys: &[Char('x')],
        label: "x",
        action: Action::StopDeploys,
        scope: Scope::Only(ViewKind::Fleet),
        help: "stop the multi-deploy: its running job, and the rest",
    },
    Binding {
        keys: &[Tab],
        label: "Tab",
        action: Action::NextHost,
        scope: Scope::OneHost,
        help: "next host",
    },
    Binding {
        keys: &[BackTab],
        label: "S-Tab",
        action: Action::PrevHost,
        scope: Scope::OneHost,
        help: "previous host",
    },
    Binding {
        keys: &[Char('/')],
        label: "/",
        action: Action::Filter,
        scope: Scope::Lists,
        help: "filter rows",
    },
    Binding {
        keys: &[Char('/')],
        label: "/",
        action: Action::Search,
        scope: Scope::Logs,
        help: "search the log",
    },
    Binding {
        keys: &[Char('n')],
        label: "n",
        action: Action::SearchNext,
        scope: Scope::Logs,
        help: "next match",
    },
    Binding {
        keys: &[Char('N')],
        label: "N",
        action: Action::SearchPrev,
        scope: Scope::Logs,
        help: "previous match",
    },
    Binding {
        keys: &[Char('p'), Char(' ')],
        label: "p Space",
        action: Action::TogglePause,
        scope: Scope::Logs,
        help: "pause / resume following",
    },
    Binding {
        keys: &[Char('L')],
        label: "L",
        action: Action::StackLogs,
        scope: Scope::OneHost,
        help: "the stack's logs together: every service, in time order",
    },
    Binding {
        keys: &[Char('f')],
        label: "f",
        action: Action::ServiceFilter,
        scope: Scope::Only(ViewKind::Stack),
        help: "show one service, the next, then all again",
    },
    Binding {
        keys: &[Char(']')],
        label: "]",
        action: Action::NextTab,
        scope: Scope::Only(ViewKind::Container),
        help: "next tab",
    },
    Binding {
        keys: &[Char('[')],
        label: "[",
        action: Action::PrevTab,
        scope: Scope::Only(ViewKind::Container),
        help: "previous tab",
    },
    Binding {
        keys: &[
            Char('1'),
            Char('2'),
            Char('3'),
            Char('4'),
            Char('5'),
            Char('6'),
            Char('7'),
        ],
        label: "1…7",
        action: Action::GotoTab,
        scope: Scope::Only(ViewKind::Container),
        help: "1 logs 2 graphs 3 procs 4 env 5 mounts 6 labels 7 state",
    },
    Binding {
        keys: &[Char('v')],
        label: "v",
        action: Action::Reveal,
        scope: Scope::Only(ViewKind::Container),
        help: "show / mask secret env values (PASS, SECRET, TOKEN, KEY)",
    },
    Binding {
        keys: &[Char('F')],
        label: "F",
        action: Action::GoFleet,
        scope: Scope::Not(ViewKind::Fleet),
        help: "back to the fleet",
    },
    Binding {
        keys: &[Char('d')],
        label: "d",
        action: Action::Deploy,
        scope: Scope::Only(ViewKind::Host),
        help: "deploy the selected container's stack (asks first)",
    },
    Binding {
        keys: &[Char('m')],
        label: "m",
        action: Action::Migrate,
        scope: Scope::Only(ViewKind::Host),
        help: "run the stack's migrations (asks first)",
    },
    Binding {
        keys: &[Char('r')],
        label: "r",
        action: Action::Restart,
        scope: Scope::Only(ViewKind::Host),
        help: "restart the selected container (asks first)",
    },
    Binding {
        keys: &[Char('s')],
        label: "s",
        action: Action::StopStart,
        scope: Scope::Only(ViewKind::Host),
        help: "stop the selected container, or start it (asks first)",
    },
    Binding {
        keys: &[Char('p')],
        label: "p",
        action: Action::PauseUnpause,
        scope: Scope::Only(ViewKind::Host),
        help: "pause or unpause the selected container (asks first)",
    },
    Binding {
        keys: &[Char('K')],
        label: "K",
        action: Action::Kill,
        scope: Scope::Only(ViewKind::Host),
        help: "send it a signal; Tab chooses which (asks first)",
    },
    Binding {
        keys: &[Char('D')],
        label: "D",
        action: Action::Remove,
        scope: Scope::Only(ViewKind::Host),
        help: "remove the selected container once stopped (asks)",
    },
    Binding {
        keys: &[Char('e')],
        label: "e",
        action: Action::Shell,
        scope: Scope::OneHost,
        help: "a shell in the container (bash, else sh); exit returns",
    },
    Binding {
        keys: &[Char('S')],
        label: "S",
        action: Action::HostShell,
        scope: Scope::OneHost,
        help: "a shell on the host; exit returns",
    },
    Binding {
        keys: &[Char('S')],
        label: "S",
        action: Action::HostShell,
        scope: Scope::Only(ViewKind::Fleet),
        help: "a shell on the selected host; exit returns",
    },
    Binding {
        keys: &[Char('R')],
        label: "R",
        action: Action::Rollback,
        scope: Scope::Only(ViewKind::Host),
        help: "releases: roll back to one, restore its dump",
    },
    Binding {
        keys: &[Char('b')],
        label: "b",
        action: Action::Backup,
        scope: Scope::Only(ViewKind::Host),
        help: "take a backup now (pg_dump or file copy)",
    },
    Binding {
        keys: &[Char('x')],
        label: "x",
        action: Action::CancelJob,
        scope: Scope::Only(ViewKind::Job),
        help: "cancel the running job (stops its step on the host)",
    },
    Binding {
        keys: &[Char('J')],
        label: "J",
        action: Action::Jobs,
        scope: Scope::All,
        help: "jobs: this host's job, or recent jobs with their output",
    },
    Binding {
        keys: &[Char('t')],
        label: "t",
        action: Action::Timeline,
        scope: Scope::Not(ViewKind::Timeline),
        help: "what changed, when: this host's events (the fleet's from the fleet)",
    },
    Binding {
        keys: &[Char('P')],
        label: "P",
        action: Action::Problems,
        scope: Scope::All,
        help: "problems, worst first; Enter opens its host",
    },
    Binding {
        keys: &[Char('s')],
        label: "s",
        action: Action::SortWorst,
        scope: Scope::Only(ViewKind::Fleet),
        help: "sort worst host first / inventory order",
    },
    Binding {
        keys: &[Char('A')],
        label: "A",
        action: Action::Answer,
        scope: Scope::All,
        help: "answer the host: trust a new key, unlock a key",
    },
    Binding {
        keys: &[Char(':')],
        label: ":",
        action: Action::Palette,
        scope: Scope::All,
        help: "command palette",
    },
    Binding {
        keys: &[Char('?')],
        label: "?",
        action: Action::Help,
        scope: Scope::All,
        help: "this help",
    },
    Binding {
        keys: &[Char('q')],
        label: "q",
        action: Action::Quit,
        scope: Scope::All,
        help: "quit",
    },
    Binding {
        keys: &[Ctrl('c')],
        label: "^c",
        action: Action::Quit,
        scope: Scope::All,
        help: "quit, from anywhere",
    },
];

pub fn lookup(view: ViewKind, key: Key) -> Option<Action> {
    BINDINGS
        .iter()
        .find(|b| b.scope.covers(view) && b.keys.contains(&key))
        .map(|b| b.action)
}

/// The bindings of a view, as help lists them: what only this view does first (its
/// actions), then moving about, then what works everywhere.
pub fn help_for(view: ViewKind) -> impl Iterator<Item = &'static Binding> {
    let rank = |b: &Binding| match b.scope {
        Scope::Only(_) | Scope::Logs => 0,
        Scope::All => 2,
        _ => 1,
    };
    let mut list: Vec<&'static Binding> =
        BINDINGS.iter().filter(|b| b.scope.covers(view)).collect();
    list.sort_by_key(|b| rank(b));
    list.into_iter()
}

/// Keys that custom actions may not take, because a view already binds them, or opsdeck
/// keeps them for itself (`t`, `y`, `z`, and `o` for what comes next).
pub fn is_reserved(c: char) -> bool {
    const RESERVED: &str = "drmbRLJstxyzo";
    RESERVED.contains(c) || BINDINGS.iter().any(|b| b.keys.contains(&Key::Char(c)))
}

/// Actions worth offering in the palette, in the order shown.
pub const PALETTE_ACTIONS: &[Action] = &[
    Action::GoFleet,
    Action::Problems,
    Action::Jobs,
    Action::StackLogs,
    Action::SortWorst,
    Action::Deploy,
    Action::DeployMarked,
    Action::StopDeploys,
    Action::Migrate,
    Action::Restart,
    Action::RestartStack,
    Action::StopStart,
    Action::PauseUnpause,
    Action::Kill,
    Action::Remove,
    Action::Rollback,
    Action::Backup,
    Action::CancelJob,
    Action::Shell,
    Action::HostShell,
    Action::Timeline,
    Action::Filter,
    Action::Search,
    Action::TogglePause,
    Action::FollowEnd,
    Action::NextTab,
    Action::PrevTab,
    Action::Reveal,
    Action::NextHost,
    Action::PrevHost,
    Action::Help,
    Action::Quit,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_view_has_quit_help_palette() {
        for v in ViewKind::ALL {
            assert_eq!(lookup(v, Char('q')), Some(Action::Quit));
            assert_eq!(lookup(v, Ctrl('c')), Some(Action::Quit));
            assert_eq!(lookup(v, Char('?')), Some(Action::Help));
            assert_eq!(lookup(v, Char(':')), Some(Action::Palette));
        }
    }

    #[test]
    fn slash_filters_lists_and_searches_logs() {
        assert_eq!(lookup(ViewKind::Fleet, Char('/')), Some(Action::Filter));
        assert_eq!(lookup(ViewKind::Host, Char('/')), Some(Action::Filter));
        assert_eq!(lookup(ViewKind::Container, Char('/')), Some(Action::Search));
        assert_eq!(lookup(ViewKind::Stack, Char('/')), Some(Action::Search));
        assert_eq!(lookup(ViewKind::Stack, Char('n')), Some(Action::SearchNext));
        assert_eq!(
            lookup(ViewKind::Stack, Char('p')),
            Some(Action::TogglePause)
        );
        assert_eq!(
            lookup(ViewKind::Stack, Char('f')),
            Some(Action::ServiceFilter)
        );
        assert_eq!(lookup(ViewKind::Host, Char('L')), Some(Action::StackLogs));
        assert_eq!(
            lookup(ViewKind::Container, Char('L')),
            Some(Action::StackLogs)
        );
    }

    #[test]
    fn no_key_is_bound_twice_in_one_view() {
        for v in ViewKind::ALL {
            let mut seen = Vec::new();
            for b in help_for(v) {
                for k in b.keys {
                    assert!(!seen.contains(k), "{k:?} bound twice in {v:?}");
                    seen.push(*k);
                }
            }
        }
    }

    #[test]
    fn reserved_covers_bindings() {
        for c in ['q', 'j', 'k', '/', 'd', 'r', 'm', 'b', 'R', 'x', 'J'] {
            assert!(is_reserved(c));
        }
        assert!(!is_reserved('C'));
    }
}
