//! A question that needs a `y`: what will happen, to which host, and how to back out.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};

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
        } => {
            let h = model.hosts.get(*host);
            let name = h.map_or("?", |h| h.name.as_str());
            let action = request.action();
            let mut lines = Vec::new();
            if h.is_some_and(|h| h.production) {
                lines.push(Line::from(Span::styled(" PRODUCTION HOST ", theme.banner)));
            }
            lines.push(Line::from(Span::styled(
                request.question(name),
                theme.title,
            )));
            lines.push(Line::from(""));
            let many = details.len() > 1;
            for (i, d) in details.iter().enumerate() {
                let text = if many {
                    format!(" {:>2}. {d}", i + 1)
                } else {
                    format!("  {d}")
                };
                lines.push(Line::from(Span::styled(text, theme.text)));
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
            lines.push(Line::from(""));
            match typed {
                Some(text) => {
                    lines.push(Line::from(vec![
                        Span::styled(format!(" Type {name} and press ⏎: "), theme.warn),
                        Span::styled(text.clone(), theme.text),
                        Span::styled("█", theme.dim),
                    ]));
                    lines.push(Line::from(vec![
                        Span::styled(" Esc ", theme.key),
                        Span::styled("cancel", theme.text),
                    ]));
                }
                None => lines.push(Line::from(vec![
                    Span::styled(" y ", theme.key),
                    Span::styled(format!("{action} now   "), theme.text),
                    Span::styled(" n Esc ", theme.key),
                    Span::styled("cancel", theme.text),
                ])),
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
