//! A question that needs a `y`: what will happen, to which host, and how to back out.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};

use crate::model::preflight::{Shown, Topic, Verdict, must_type};
use crate::model::{Confirm, Model};
use crate::ui::{Theme, centered};

pub fn draw(model: &Model, confirm: &Confirm, theme: &Theme, frame: &mut Frame, area: Rect) {
    let (title, lines) = match confirm {
        Confirm::TrustHostKey { host, fingerprint } => {
            let h = model.hosts.get(*host);
            let name = h.map_or("?", |h| h.name.as_str());
            let target = h.map_or("", |h| h.target.as_str());
            (
                " Unknown host key ",
                vec![
                    Line::from(vec![
                        Span::styled(name.to_string(), theme.title),
                        Span::styled(format!(" ({target})"), theme.dim),
                        Span::styled(
                            " offered a host key that no known_hosts file has:",
                            theme.text,
                        ),
                    ]),
                    Line::from(""),
                    Line::from(Span::styled(format!("  {fingerprint}"), theme.warn)),
                    Line::from(""),
                    Line::from(Span::styled(
                        "Compare it with `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` on the host. \
                         Trusting it records it in your known_hosts file.",
                        theme.dim,
                    )),
                    Line::from(""),
                    Line::from(vec![
                        Span::styled(" y ", theme.key),
                        Span::styled("trust and connect   ", theme.text),
                        Span::styled(" n Esc ", theme.key),
                        Span::styled("do not connect", theme.text),
                    ]),
                ],
            )
        }
        Confirm::Job {
            host,
            request,
            details,
            typed,
            preflight,
        } => {
            let h = model.hosts.get(*host);
            let name = h.map_or("?", |h| h.name.as_str());
            let production = h.is_some_and(|h| h.production);
            // Rows inside the box: a deploy's pre-flight may need them all, so its ok items
            // and then the recipe's steps fold into one line each when they do not fit.
            let room = usize::from(area.height.saturating_sub(4));
            let wrap = usize::from(
                76.min(area.width.saturating_sub(2))
                    .saturating_sub(8)
                    .max(1),
            );
            let rows = |lines: &[Line]| -> usize {
                lines
                    .iter()
                    .map(|l| 1 + l.width().saturating_sub(1) / wrap)
                    .sum()
            };
            let mut lines = Vec::new();
            for (fold_ok, fold_steps) in [(false, false), (true, false), (true, true)] {
                lines = job_lines(
                    JobDialog {
                        name,
                        production,
                        request,
                        details,
                        typed: typed.as_deref(),
                        preflight: preflight.as_ref(),
                        fold_ok,
                        fold_steps,
                    },
                    theme,
                );
                if rows(&lines) <= room {
                    break;
                }
            }
            (" Confirm ", lines)
        }
        Confirm::CancelJob { host } => {
            let h = model.hosts.get(*host);
            let name = h.map_or("?", |h| h.name.as_str());
            let action = h
                .and_then(|h| h.job.as_ref())
                .map_or("the job".to_string(), |j| j.action.clone());
            // a multi-deploy's running host: the hosts after it do not start either
            let left = model
                .batch
                .as_ref()
                .filter(|b| b.current().is_some_and(|(_, c)| c.host == *host))
                .map(|b| b.count(|t| *t == crate::model::multi::Turn::Waiting));
            let rest = match left {
                Some(n) if n > 0 => format!(
                    " This stops the multi-deploy: the {n} host{} after it will not be started.",
                    if n == 1 { "" } else { "s" }
                ),
                _ => String::new(),
            };
            (
                " Cancel the job ",
                vec![
                    Line::from(vec![
                        Span::styled("Stop ", theme.text),
                        Span::styled(action, theme.title),
                        Span::styled(" on ", theme.text),
                        Span::styled(name.to_string(), theme.title),
                        Span::styled("?", theme.text),
                    ]),
                    Line::from(""),
                    Line::from(Span::styled(
                        format!(
                            "The running step gets SIGTERM on the host (SIGKILL 5 s later); the steps after it do not run. What earlier steps changed stays changed.{rest}"
                        ),
                        theme.dim,
                    )),
                    Line::from(""),
                    Line::from(vec![
                        Span::styled(" y ", theme.key),
                        Span::styled("stop it   ", theme.text),
                        Span::styled(" n Esc ", theme.key),
                        Span::styled("let it run", theme.text),
                    ]),
                ],
            )
        }
        Confirm::Quit { running } => {
            let mut lines = vec![
                Line::from(Span::styled("Jobs are running:", theme.text)),
                Line::from(""),
            ];
            for r in running {
                lines.push(Line::from(Span::styled(format!("  {r}"), theme.title)));
            }
            lines.push(Line::from(""));
            lines.push(Line::from(Span::styled(
                "Quitting closes their connections: each host stops the running step and skips the rest.",
                theme.dim,
            )));
            lines.push(Line::from(""));
            lines.push(Line::from(vec![
                Span::styled(" y ", theme.key),
                Span::styled("quit anyway   ", theme.text),
                Span::styled(" n Esc ", theme.key),
                Span::styled("stay", theme.text),
            ]));
            (" Quit? ", lines)
        }
        Confirm::Batch { batch, typed } => (
            " Confirm ",
            super::multi::confirm_lines(model, batch, typed.as_ref(), theme),
        ),
    };
    let width = 76.min(area.width.saturating_sub(2));
    let needed: u16 = lines
        .iter()
        .map(|l| {
            let w = l.width() as u16;
            // a little pessimistic: words wrap before the last column
            1 + w.saturating_sub(1) / width.saturating_sub(8).max(1)
        })
        .sum();
    let height = (needed + 2).min(area.height.saturating_sub(2));
    let rect = centered(area, width, height);
    frame.render_widget(Clear, rect);
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme.warn)
        .title(Span::styled(title, theme.warn));
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(block),
        rect,
    );
}

/// A job's confirmation, and how much of it to fold.
struct JobDialog<'a> {
    name: &'a str,
    production: bool,
    request: &'a crate::model::JobRequest,
    details: &'a [String],
    typed: Option<&'a str>,
    preflight: Option<&'a Shown>,
    /// The pre-flight's ok items as one line.
    fold_ok: bool,
    /// The recipe's steps as one line.
    fold_steps: bool,
}

fn job_lines<'a>(d: JobDialog<'a>, theme: &Theme) -> Vec<Line<'a>> {
    let JobDialog {
        name,
        production,
        request,
        details,
        typed,
        preflight,
        fold_ok,
        fold_steps,
    } = d;
    let action = request.action();
    let mut lines = Vec::new();
    if production {
        lines.push(Line::from(Span::styled(" PRODUCTION HOST ", theme.banner)));
    }
    lines.push(Line::from(Span::styled(
        request.question(name),
        theme.title,
    )));
    lines.push(Line::from(""));
    if fold_steps && details.len() > 1 {
        let all: Vec<String> = details
            .iter()
            .enumerate()
            .map(|(i, d)| format!("{}. {d}", i + 1))
            .collect();
        lines.push(Line::from(Span::styled(
            format!("  {}", all.join(" · ")),
            theme.text,
        )));
    } else {
        let many = details.len() > 1;
        for (i, d) in details.iter().enumerate() {
            let text = if many {
                format!(" {:>2}. {d}", i + 1)
            } else {
                format!("  {d}")
            };
            lines.push(Line::from(Span::styled(text, theme.text)));
        }
    }
    if let crate::model::JobKind::Container {
        op: crate::model::job::ContainerOp::Kill(chosen),
        ..
    } = request.kind
    {
        // The signals on offer, the chosen one marked.
        let mut spans = vec![
            Span::styled(" Tab ← → ", theme.key),
            Span::styled(" signal:", theme.text),
        ];
        for s in crate::model::job::Signal::ALL {
            let style = if s == chosen {
                theme.selected
            } else {
                theme.dim
            };
            spans.push(Span::raw(" "));
            spans.push(Span::styled(s.name(), style));
        }
        lines.push(Line::from(""));
        lines.push(Line::from(spans));
    }
    if matches!(request.kind, crate::model::JobKind::Backup { .. }) {
        lines.push(Line::from(""));
        lines.push(Line::from(Span::styled(
            "Written to a hidden partial file and verified before it counts; the set's retention runs after.",
            theme.dim,
        )));
    }
    let refused = match preflight {
        Some(shown) => {
            lines.push(Line::from(""));
            preflight_lines(shown, fold_ok, theme, &mut lines)
        }
        None => false,
    };
    lines.push(Line::from(""));
    let want = must_type(name, production, preflight);
    if refused {
        lines.push(Line::from(vec![
            Span::styled(" Esc ", theme.key),
            Span::styled("close: the pre-flight refuses this deploy", theme.text),
        ]));
    } else if let (Some(text), Some(want)) = (typed, want) {
        lines.push(Line::from(vec![
            Span::styled(format!(" Type {want} and press ⏎: "), theme.warn),
            Span::styled(text.to_string(), theme.text),
            Span::styled("█", theme.dim),
        ]));
        lines.push(Line::from(vec![
            Span::styled(" Esc ", theme.key),
            Span::styled("cancel", theme.text),
        ]));
    } else if matches!(preflight, Some(Shown::Checking { .. })) {
        lines.push(Line::from(vec![
            Span::styled(" y ", theme.dim),
            Span::styled(
                format!("{action} once the pre-flight has answered   "),
                theme.dim,
            ),
            Span::styled(" n Esc ", theme.key),
            Span::styled("cancel", theme.text),
        ]));
    } else {
        lines.push(Line::from(vec![
            Span::styled(" y ", theme.key),
            Span::styled(format!("{action} now   "), theme.text),
            Span::styled(" n Esc ", theme.key),
            Span::styled("cancel", theme.text),
        ]));
    }
    lines
}

/// The pre-flight's part of a confirmation; true when it refuses.
fn preflight_lines<'a>(
    shown: &Shown,
    fold_ok: bool,
    theme: &Theme,
    lines: &mut Vec<Line<'a>>,
) -> bool {
    let report = match shown {
        Shown::Checking { .. } => {
            lines.push(Line::from(vec![
                Span::styled("Pre-flight: ", theme.title),
                Span::styled(
                    "checking… (free space, checkout, env file, compose config, registry, lock)",
                    theme.dim,
                ),
            ]));
            return false;
        }
        Shown::Done(r) => r,
    };
    let verdict = report.verdict();
    let (style, what) = match verdict {
        Verdict::Ok => (theme.ok, report.summary()),
        Verdict::Warn => (
            theme.warn,
            format!("{}: type force to deploy anyway", report.summary()),
        ),
        Verdict::Refuse => (theme.crit, format!("{}: cannot deploy", report.summary())),
    };
    lines.push(Line::from(vec![
        Span::styled("Pre-flight: ", theme.title),
        Span::styled(what, style),
    ]));
    let mark = |v: Verdict| match v {
        Verdict::Ok => ("  ✔ ", theme.ok),
        Verdict::Warn => ("  ! ", theme.warn),
        Verdict::Refuse => ("  ✖ ", theme.crit),
    };
    let oks: Vec<&str> = report
        .with(Verdict::Ok)
        .map(|i| topic_word(i.topic))
        .collect();
    if fold_ok && oks.len() > 1 {
        let mut topics: Vec<&str> = Vec::new();
        for t in &oks {
            if !topics.contains(t) {
                topics.push(t);
            }
        }
        lines.push(Line::from(vec![
            Span::styled("  ✔ ", theme.ok),
            Span::styled(
                format!("{} pass: {}", oks.len(), topics.join(", ")),
                theme.text,
            ),
        ]));
    }
    for item in &report.items {
        if fold_ok && oks.len() > 1 && item.verdict == Verdict::Ok {
            continue;
        }
        let (m, style) = mark(item.verdict);
        lines.push(Line::from(vec![
            Span::styled(m, style),
            Span::styled(item.text.clone(), theme.text),
        ]));
    }
    verdict == Verdict::Refuse
}

fn topic_word(t: Topic) -> &'static str {
    match t {
        Topic::Disk => "free space",
        Topic::Checkout => "checkout",
        Topic::Origin => "origin",
        Topic::Env => "env file",
        Topic::Compose => "compose config",
        Topic::Registry => "registry",
        Topic::Lock => "lock",
        Topic::Preflight => "pre-flight",
    }
}

/// The passphrase prompt: only bullets are drawn, one per character typed.
pub fn passphrase(
    model: &Model,
    host: usize,
    path: &str,
    typed: usize,
    theme: &Theme,
    frame: &mut Frame,
    area: Rect,
) {
    let name = model.hosts.get(host).map_or("?", |h| h.name.as_str());
    let lines = vec![
        Line::from(vec![
            Span::styled("The key ", theme.text),
            Span::styled(path.to_string(), theme.title),
            Span::styled(format!(" for {name} is encrypted."), theme.text),
        ]),
        Line::from(""),
        Line::from(vec![
            Span::styled("Passphrase: ", theme.key),
            Span::styled("•".repeat(typed), theme.text),
            Span::styled("█", theme.dim),
        ]),
        Line::from(""),
        Line::from(Span::styled(
            "Kept in memory for this session only. ⏎ unlock · Esc cancel",
            theme.dim,
        )),
    ];
    let width = 70.min(area.width.saturating_sub(2));
    let height = 9.min(area.height.saturating_sub(2));
    let rect = centered(area, width, height);
    frame.render_widget(Clear, rect);
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme.title)
        .title(Span::styled(" Unlock key ", theme.title));
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(block),
        rect,
    );
}
