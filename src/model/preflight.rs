//! A deploy's pre-flight as the console and `opsdeck run` show it: a list of checks, each
//! ok, a warning (`--force`, or `force` typed in the console, goes on despite it) or a
//! refusal (nothing goes on despite it). Pure data; `crate::jobs::preflight` gathers it.

use serde::Serialize;

/// The step's label in the plan and the confirmation.
pub const STEP_LABEL: &str = "pre-flight: free space, checkout, env file, compose config, registry";

/// Items a report keeps: the rest is said in one line.
pub const MAX_ITEMS: usize = 24;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Ok,
    /// Soft: a deploy goes on only when forced.
    Warn,
    /// Hard: the deploy does not go on.
    Refuse,
}

impl Verdict {
    /// `ok`, `warn`, `REFUSE`: the word `opsdeck run` prints in front of an item.
    pub fn word(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Warn => "warn",
            Verdict::Refuse => "REFUSE",
        }
    }

    /// `deploy --check`'s exit status: 0 ok, 1 warnings, 2 refused.
    pub fn exit_code(self) -> u8 {
        match self {
            Verdict::Ok => 0,
            Verdict::Warn => 1,
            Verdict::Refuse => 2,
        }
    }
}

/// What an item is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Topic {
    /// Free space on Docker's root and on the backup directories.
    Disk,
    /// The stack directory: there, clean, a git checkout.
    Checkout,
    /// Where the checkout stands against its upstream.
    Origin,
    Env,
    Compose,
    Registry,
    Lock,
    /// The pre-flight itself could not run (the host, Docker).
    Preflight,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Item {
    pub topic: Topic,
    pub verdict: Verdict,
    /// One line, already made safe for a terminal.
    pub text: String,
}

impl Item {
    pub fn new(topic: Topic, verdict: Verdict, text: impl Into<String>) -> Item {
        Item {
            topic,
            verdict,
            text: text.into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Report {
    pub items: Vec<Item>,
}

impl Report {
    pub fn push(&mut self, item: Item) {
        if self.items.len() < MAX_ITEMS {
            self.items.push(item);
        }
    }

    /// The worst verdict of its items (ok when there are none).
    pub fn verdict(&self) -> Verdict {
        self.items
            .iter()
            .map(|i| i.verdict)
            .max()
            .unwrap_or(Verdict::Ok)
    }

    pub fn with(&self, verdict: Verdict) -> impl Iterator<Item = &Item> {
        self.items.iter().filter(move |i| i.verdict == verdict)
    }

    /// `1 refusal, 2 warnings`, `all 6 checks pass`.
    pub fn summary(&self) -> String {
        let count = |v| self.with(v).count();
        let (r, w) = (count(Verdict::Refuse), count(Verdict::Warn));
        let plural =
            |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        match (r, w) {
            (0, 0) => format!("all {} pass", plural(self.items.len(), "check", "checks")),
            (0, w) => plural(w, "warning", "warnings"),
            (r, 0) => plural(r, "refusal", "refusals"),
            (r, w) => format!(
                "{}, {}",
                plural(r, "refusal", "refusals"),
                plural(w, "warning", "warnings")
            ),
        }
    }

    /// Why a deploy does not go on: the first refusal (and how many more), or, unless
    /// `force`, the warnings. `None` when it may go on.
    pub fn stops(&self, force: bool) -> Option<String> {
        let first = |v| {
            let mut items = self.with(v);
            let first = items.next()?;
            let more = items.count();
            Some(if more == 0 {
                first.text.clone()
            } else {
                format!("{} (and {more} more)", first.text)
            })
        };
        if let Some(why) = first(Verdict::Refuse) {
            return Some(format!("pre-flight: {why}"));
        }
        if force {
            return None;
        }
        first(Verdict::Warn)
            .map(|why| format!("pre-flight warning (force to deploy anyway): {why}"))
    }
}

/// The pre-flight shown in a deploy's confirmation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shown {
    /// Asked of the host's worker; `id` matches the answer to this dialog.
    Checking {
        id: u64,
    },
    Done(Report),
}

impl Shown {
    /// Why the deploy cannot be confirmed now: still checking, or refused.
    pub fn not_ready(&self) -> Option<String> {
        match self {
            Shown::Checking { .. } => {
                Some("the pre-flight is still checking: wait for its report".into())
            }
            Shown::Done(r) => r
                .stops(true)
                .map(|why| format!("refused by the {why}: nothing to confirm (Esc closes)")),
        }
    }

    pub fn warns(&self) -> bool {
        matches!(self, Shown::Done(r) if r.verdict() == Verdict::Warn)
    }
}

/// What a confirmation wants typed: the host's name on a production host, `force` when
/// the pre-flight warns, both (`force NAME`) when both; `None`: a `y` will do.
pub fn must_type(name: &str, production: bool, shown: Option<&Shown>) -> Option<String> {
    let warns = shown.is_some_and(Shown::warns);
    match (warns, production) {
        (true, true) => Some(format!("force {name}")),
        (true, false) => Some("force".into()),
        (false, true) => Some(name.to_string()),
        (false, false) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worst_item_decides_and_force_passes_only_warnings() {
        let mut r = Report::default();
        assert_eq!(r.verdict(), Verdict::Ok);
        r.push(Item::new(Topic::Disk, Verdict::Ok, "/: 40 % free"));
        assert_eq!(r.stops(false), None);
        assert_eq!(r.summary(), "all 1 check pass");
        r.push(Item::new(Topic::Origin, Verdict::Warn, "nothing new"));
        assert_eq!(r.verdict(), Verdict::Warn);
        assert_eq!(r.stops(true), None);
        assert!(r.stops(false).unwrap().contains("nothing new"));
        r.push(Item::new(Topic::Checkout, Verdict::Refuse, "dirty"));
        r.push(Item::new(Topic::Compose, Verdict::Refuse, "broken"));
        assert_eq!(
            r.stops(true).as_deref(),
            Some("pre-flight: dirty (and 1 more)")
        );
        assert_eq!(r.summary(), "2 refusals, 1 warning");
        assert_eq!(r.verdict().exit_code(), 2);
        for _ in 0..100 {
            r.push(Item::new(Topic::Disk, Verdict::Ok, "x"));
        }
        assert_eq!(r.items.len(), MAX_ITEMS);
    }
}
