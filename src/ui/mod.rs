//! The view: a pure function of the model and the theme. Nothing here does I/O or keeps
//! state, so every screen is a snapshot test away.

pub mod format;
pub mod panels;
pub mod theme;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::model::detail::Tab;
use crate::model::{HostConn, Input, Level, Model, Overlay, View};
pub use theme::Theme;

pub fn view(model: &Model, theme: &Theme, frame: &mut Frame) {
    let area = frame.area();
    let alerts: Vec<(&str, &str)> = model
        .hosts
        .iter()
        .filter_map(|h| h.key_alert.as_deref().map(|a| (h.name.as_str(), a)))
        .collect();
    let offer = import_line(model);
    let [header, banner, body, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(u16::from(!alerts.is_empty() || offer.is_some())),
        Constraint::Min(1),
        Constraint::Length(1),
    ])
    .areas(area);
    draw_header(model, theme, frame, header);
    if let Some((name, alert)) = alerts.first() {
        // A changed host key is the one thing that must not scroll out of sight.
        let more = if alerts.len() > 1 {
            format!(" (+{} more hosts)", alerts.len() - 1)
        } else {
            String::new()
        };
        let text = format!(" ⚠ {name}: {alert}{more}");
        let style = theme.crit.add_modifier(ratatui::style::Modifier::REVERSED);
        frame.render_widget(Paragraph::new(Span::styled(text, style)), banner);
    } else if let Some((text, style)) = offer {
        let style = style(theme).add_modifier(ratatui::style::Modifier::REVERSED);
        frame.render_widget(Paragraph::new(Span::styled(text, style)), banner);
    }
    match &model.view {
        View::Fleet => panels::fleet::draw(model, theme, frame, body),
        View::Host { host } => panels::host::draw(model, *host, theme, frame, body),
        View::Container { host, id } => {
            panels::container::draw(model, *host, id, theme, frame, body)
        }
        View::Stack { host, project } => {
            panels::stack::draw(model, *host, project, theme, frame, body)
        }
        View::Job(r) => panels::job::draw(model, *r, theme, frame, body),
        View::Jobs => panels::jobs::draw(model, theme, frame, body),
        View::Timeline { .. } => panels::timeline::draw(model, theme, frame, body),
    }
    draw_footer(model, theme, frame, footer);
    match &model.overlay {
        Overlay::None => {}
        Overlay::Help(scroll) => panels::help::draw(model, *scroll, theme, frame, area),
        Overlay::Problems { cursor } => panels::problems::draw(model, *cursor, theme, frame, area),
        Overlay::Palette(p) => panels::palette::draw(model, p, theme, frame, area),
        Overlay::Releases(p) => panels::releases::draw(model, p, theme, frame, area),
        Overlay::Confirm(c) => panels::confirm::draw(model, c, theme, frame, area),
        Overlay::Passphrase { host, path, input } => {
            panels::confirm::passphrase(model, *host, path, input.len(), theme, frame, area)
        }
    }
}

fn draw_header(model: &Model, theme: &Theme, frame: &mut Frame, area: Rect) {
    let mut left = vec![Span::styled(" opsdeck ", theme.title)];
    let crumb = match &model.view {
        View::Fleet => "fleet".to_string(),
        View::Host { host } => format!("fleet › {}", host_name(model, *host)),
        View::Container { host, id } => {
            let name = model
                .hosts
                .get(*host)
                .and_then(|h| h.containers.iter().find(|c| &c.id == id))
                .map(|c| c.name.clone())
                .unwrap_or_else(|| id.chars().take(12).collect());
            format!("fleet › {} › {name}", host_name(model, *host))
        }
        View::Stack { host, project } => format!(
            "fleet › {} › {} logs",
            host_name(model, *host),
            crate::sanitize::line(project)
        ),
        View::Job(crate::model::JobRef::Host(host)) => {
            format!("fleet › {} › job", host_name(model, *host))
        }
        View::Job(crate::model::JobRef::History(_)) => "jobs › job".to_string(),
        View::Jobs => "jobs".to_string(),
        View::Timeline { host: Some(host) } => {
            format!("fleet › {} › what changed", host_name(model, *host))
        }
        View::Timeline { host: None } => "fleet › what changed".to_string(),
    };
    left.push(Span::styled(crumb, theme.text));
    // Looking at one host: say at once when it is not answering.
    let viewed = match &model.view {
        View::Host { host }
        | View::Container { host, .. }
        | View::Stack { host, .. }
        | View::Job(crate::model::JobRef::Host(host)) => model.hosts.get(*host),
        _ => None,
    };
    match viewed.map(|h| &h.conn) {
        Some(HostConn::Stalled { since, .. }) => left.push(Span::styled(
            format!(
                "  ◐ stalled {}",
                format::age(model.now.as_second() - since.as_second())
            ),
            theme.warn,
        )),
        Some(HostConn::Down { since, .. }) => left.push(Span::styled(
            format!(
                "  ✖ down {}",
                format::age(model.now.as_second() - since.as_second())
            ),
            theme.crit,
        )),
        _ => {}
    }
    let up = model
        .hosts
        .iter()
        .filter(|h| matches!(h.conn, HostConn::Up))
        .count();
    let mut right = vec![Span::styled(
        format!("{up}/{} hosts up ", model.hosts.len()),
        if up == model.hosts.len() {
            theme.dim
        } else {
            theme.warn
        },
    )];
    if model.read_only {
        right.push(Span::styled(" READ-ONLY ", theme.banner));
    }
    let right_width: usize = right.iter().map(|s| s.content.chars().count()).sum();
    let [l, r] = Layout::horizontal([Constraint::Min(1), Constraint::Length(right_width as u16)])
        .areas(area);
    frame.render_widget(Paragraph::new(Line::from(left)), l);
    frame.render_widget(Paragraph::new(Line::from(right)), r);
}

fn host_name(model: &Model, host: usize) -> &str {
    model.hosts.get(host).map_or("?", |h| h.name.as_str())
}

type StyleOf = fn(&Theme) -> ratatui::style::Style;

/// The first-run import's line: the offer, its progress, or why it failed.
fn import_line(model: &Model) -> Option<(String, StyleOf)> {
    use crate::model::Import;
    let hosts = |n: usize| {
        if n == 1 {
            "1 host".to_string()
        } else {
            format!("{n} hosts")
        }
    };
    Some(match model.import.as_ref()? {
        Import::Offered { hosts: n } => (
            format!(
                " No inventory yet: press I to import {} from ~/.ssh/config",
                hosts(*n)
            ),
            |t| t.info,
        ),
        Import::Running { done, total } => (
            format!(
                " Importing from ~/.ssh/config: {done} of {} looked at…",
                hosts(*total)
            ),
            |t| t.info,
        ),
        Import::Failed { error, .. } => (
            format!(
                " Import failed: {} (I to try again)",
                crate::sanitize::line(error)
            ),
            |t| t.crit,
        ),
    })
}

fn draw_footer(model: &Model, theme: &Theme, frame: &mut Frame, area: Rect) {
    let line = if let Some(input) = &model.input {
        let (prompt, text) = match input {
            Input::Filter(t) => ("filter: ", t),
            Input::Search(t) => ("search: ", t),
        };
        Line::from(vec![
            Span::styled(prompt, theme.key),
            Span::styled(text.clone(), theme.text),
            Span::styled("█", theme.dim),
            Span::styled("  ⏎ apply  Esc cancel", theme.dim),
        ])
    } else if let Some(flash) = &model.flash {
        let style = match flash.level {
            Level::Info => theme.info,
            Level::Warn => theme.warn,
            Level::Error => theme.crit,
        };
        Line::from(Span::styled(format!(" {}", flash.text), style))
    } else {
        let mut spans = Vec::new();
        if !model.filter.is_empty() && model.view.kind().is_list() {
            spans.push(Span::styled(
                format!(" filter: {} ", model.filter),
                theme.warn,
            ));
        }
        let hints: &[(&str, &str)] = match model.view {
            View::Fleet if model.batch.as_ref().is_some_and(|b| b.running()) => &[
                ("⏎", "open"),
                ("x", "stop the deploys"),
                ("J", "jobs"),
                ("?", "help"),
                ("q", "quit"),
            ],
            View::Fleet if !model.marked.is_empty() => &[
                ("Space", "mark"),
                ("d", "deploy marked"),
                ("Esc", "clear marks"),
                ("?", "help"),
                ("q", "quit"),
            ],
            View::Fleet => &[
                ("⏎", "open"),
                ("Space", "mark"),
                ("/", "filter"),
                (":", "command"),
                ("?", "help"),
                ("q", "quit"),
            ],
            View::Host { host } => {
                let locked = model.read_only || model.hosts.get(host).is_some_and(|h| h.read_only);
                if locked {
                    spans.push(Span::styled(" READ-ONLY host: no changes ", theme.warn));
                    &[
                        ("⏎", "logs"),
                        ("J", "jobs"),
                        ("Esc", "fleet"),
                        ("?", "help"),
                        ("q", "quit"),
                    ]
                } else {
                    &[
                        ("⏎", "logs"),
                        ("d", "deploy"),
                        ("r", "restart"),
                        ("b", "backup"),
                        ("J", "jobs"),
                        ("Esc", "fleet"),
                        ("?", "help"),
                        ("q", "quit"),
                    ]
                }
            }
            View::Stack { .. } => &[
                ("Esc", "back"),
                ("f", "service"),
                ("p", "pause"),
                ("G", "follow"),
                ("/", "search"),
                ("n/N", "next/prev"),
                ("?", "help"),
            ],
            View::Container { .. } => match model.detail.as_ref().map(|p| p.tab) {
                None | Some(Tab::Logs) => &[
                    ("Esc", "back"),
                    ("[ ]", "tabs"),
                    ("p", "pause"),
                    ("G", "follow"),
                    ("/", "search"),
                    ("n/N", "next/prev"),
                    ("?", "help"),
                ],
                Some(Tab::Env) => &[
                    ("Esc", "back"),
                    ("[ ]", "tabs"),
                    ("v", "show/mask secrets"),
                    ("↑↓", "scroll"),
                    ("?", "help"),
                ],
                Some(_) => &[
                    ("Esc", "back"),
                    ("[ ]", "tabs"),
                    ("1…7", "tab"),
                    ("↑↓", "scroll"),
                    ("?", "help"),
                ],
            },
            View::Job(r) => {
                if model.job(r).is_some_and(|j| j.running()) {
                    &[
                        ("Esc", "back"),
                        ("x", "cancel"),
                        ("↑↓", "scroll"),
                        ("G", "follow"),
                        ("J", "jobs"),
                        ("?", "help"),
                        ("q", "quit"),
                    ]
                } else {
                    &[
                        ("Esc", "back"),
                        ("↑↓", "scroll"),
                        ("G", "end"),
                        ("J", "jobs"),
                        ("?", "help"),
                        ("q", "quit"),
                    ]
                }
            }
            View::Jobs => &[
                ("⏎", "open"),
                ("/", "filter"),
                ("Esc", "back"),
                ("?", "help"),
                ("q", "quit"),
            ],
            View::Timeline { .. } => &[
                ("⏎", "its log then"),
                ("/", "filter"),
                ("Esc", "back"),
                ("?", "help"),
                ("q", "quit"),
            ],
        };
        spans.extend(hint_spans(hints, theme));
        Line::from(spans)
    };
    frame.render_widget(Paragraph::new(line), area);
}

fn hint_spans(hints: &[(&str, &str)], theme: &Theme) -> Vec<Span<'static>> {
    let mut spans = Vec::new();
    for (key, what) in hints {
        spans.push(Span::styled(format!(" {key}"), theme.key));
        spans.push(Span::styled(format!(" {what} "), theme.dim));
    }
    spans
}

/// A row of fixed-width cells, padded or cut, one space apart.
pub fn cells(parts: &[(String, usize, Style)]) -> Vec<Span<'static>> {
    let mut spans = Vec::with_capacity(parts.len() * 2);
    for (i, (text, width, style)) in parts.iter().enumerate() {
        if i > 0 {
            spans.push(Span::raw(" "));
        }
        let t = format::fit(text, *width);
        let pad = width.saturating_sub(t.chars().count());
        spans.push(Span::styled(format!("{t}{}", " ".repeat(pad)), *style));
    }
    spans
}

/// Draws a table row as selected, across the whole `width`.
pub fn select_row(spans: &mut Vec<Span<'static>>, width: usize, theme: &Theme) {
    for s in spans.iter_mut() {
        s.style = s.style.patch(theme.selected);
    }
    let used: usize = spans.iter().map(|s| s.content.chars().count()).sum();
    spans.push(Span::styled(
        " ".repeat(width.saturating_sub(used)),
        theme.selected,
    ));
}

/// A centred rectangle of at most `w`×`h` inside `area`.
pub fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}
