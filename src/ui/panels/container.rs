//! One container: what it is and how it is doing, over its tabs: the live log first,
//! then graphs, processes, environment, mounts and ports, labels, health and state
//! ([`super::tabs`]).

use ansi_to_tui::IntoText;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};

use crate::model::detail::Tab;
use crate::model::logs::{self, match_ranges, strip_ansi};
use crate::model::{Health, LogLine, LogPane, Model, Stream};
use crate::ui::{Theme, format};

pub fn draw(model: &Model, host: usize, id: &str, theme: &Theme, frame: &mut Frame, area: Rect) {
    let [details, bar, log] = Layout::vertical([
        Constraint::Length(4),
        Constraint::Length(1),
        Constraint::Min(3),
    ])
    .areas(area);
    let h = model.hosts.get(host);
    let c = h.and_then(|h| h.containers.iter().find(|c| c.id == id));
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme.border)
        .title(Span::styled(
            format!(" {} ", c.map_or(id, |c| c.name.as_str())),
            theme.title,
        ));
    let inner = block.inner(details);
    frame.render_widget(block, details);
    let lines = match c {
        None => vec![Line::from(Span::styled(
            "this container is gone from the host's list (removed or recreated)",
            theme.warn,
        ))],
        Some(c) => {
            let health = match c.health {
                Some(Health::Healthy) => Span::styled("healthy", theme.ok),
                Some(Health::Unhealthy) => Span::styled("unhealthy", theme.crit),
                Some(Health::Starting) => Span::styled("starting", theme.warn),
                None => Span::styled("no healthcheck", theme.dim),
            };
            let state_style = if c.is_running() { theme.ok } else { theme.crit };
            let up = c
                .started_at
                .filter(|_| c.is_running())
                .map(|t| format!("up {}", format::age(model.now.as_second() - t.as_second())))
                .unwrap_or_else(|| "not running".into());
            let project = match (&c.project, &c.service) {
                (Some(p), Some(s)) => format!("{p}/{s}"),
                _ => "not in a compose project".into(),
            };
            vec![
                Line::from(vec![
                    Span::styled(c.state.label(), state_style),
                    Span::styled(" · ", theme.dim),
                    health,
                    Span::styled(format!(" · {up} · restarts ",), theme.dim),
                    Span::styled(
                        c.restart_count.map_or("–".into(), |r| r.to_string()),
                        theme.text,
                    ),
                    Span::styled(" · cpu ", theme.dim),
                    Span::styled(c.cpu_percent.map_or("–".into(), format::percent), theme.cpu),
                    Span::styled(" · mem ", theme.dim),
                    Span::styled(c.mem_bytes.map_or("–".into(), format::bytes), theme.mem),
                ]),
                Line::from(vec![
                    Span::styled(c.image.clone(), theme.text),
                    Span::styled(
                        format!(" · {project} · {} · ", &c.id[..c.id.len().min(12)]),
                        theme.dim,
                    ),
                    Span::styled(
                        if c.ports.is_empty() {
                            "no ports".into()
                        } else {
                            c.ports.join(" ")
                        },
                        theme.dim,
                    ),
                ]),
            ]
        }
    };
    frame.render_widget(Paragraph::new(lines), inner);
    let tabs = model
        .detail
        .as_ref()
        .filter(|p| p.host == host && p.id == id);
    let open = tabs.map_or(Tab::Logs, |p| p.tab);
    super::tabs::bar(open, theme, frame, bar);
    if let (Some(pane), Some(h), false) = (tabs, h, open == Tab::Logs) {
        super::tabs::draw(model, h, c, pane, theme, frame, log);
    } else if let Some(pane) = model.logs.as_ref().filter(|p| p.host == host && p.id == id) {
        draw_log(pane, theme, frame, log);
    }
}

/// A log pane: one container's, or a stack's with each line's service in a column.
pub(crate) fn draw_log(pane: &LogPane, theme: &Theme, frame: &mut Frame, area: Rect) {
    let mut title = vec![Span::styled(
        if pane.stack.is_some() {
            " logs "
        } else {
            " log "
        },
        theme.title,
    )];
    if pane.follow {
        title.push(Span::styled("· following ", theme.ok));
    } else {
        title.push(Span::styled("· PAUSED ", theme.banner));
        if pane.scroll > 0 {
            title.push(Span::styled(
                format!(" +{} below ", pane.scroll),
                theme.warn,
            ));
        }
    }
    title.push(Span::styled(
        format!("· {} lines ", pane.ring.len()),
        theme.dim,
    ));
    if !pane.search.is_empty() {
        let n = pane.ring.matches();
        title.push(Span::styled(
            format!("· /{} {n} matches ", pane.search),
            theme.info,
        ));
    }
    if let Some(st) = &pane.stack {
        let shown = match st.only.and_then(|i| st.services.get(usize::from(i))) {
            Some(name) => format!("· only {} ", crate::sanitize::line(name)),
            None => format!("· all {} services ", st.services.len()),
        };
        title.push(Span::styled(shown, theme.info));
    }
    if let Some(reason) = &pane.ended {
        title.push(Span::styled(format!("· ended: {reason} "), theme.crit));
    }
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme.border)
        .title(Line::from(title));
    let inner = block.inner(area);
    frame.render_widget(block, area);

    let height = inner.height as u64;
    let end = pane.ring.end_seq().saturating_sub(pane.scroll);
    let start = end.saturating_sub(height);
    let column = service_column(pane);
    let lines: Vec<Line> = pane
        .ring
        .range(start, end)
        .map(|(seq, l)| render_line(l, seq, pane, &column, theme))
        .collect();
    if lines.is_empty() {
        let text = if pane.ended.is_some() {
            " no log output"
        } else {
            " waiting for log lines…"
        };
        frame.render_widget(Paragraph::new(Span::styled(text, theme.dim)), inner);
        return;
    }
    frame.render_widget(Paragraph::new(lines), inner);
}

/// The most columns a service's name takes in a stack's logs.
pub const SERVICE_COLUMN_MAX: usize = 16;

/// A stack's services as its log column shows them: sanitised, cut or padded to the
/// width of the longest (by display width, at most [`SERVICE_COLUMN_MAX`]). Empty for
/// one container's log.
fn service_column(pane: &LogPane) -> Vec<String> {
    let Some(st) = &pane.stack else {
        return Vec::new();
    };
    let names: Vec<std::borrow::Cow<'_, str>> = st
        .services
        .iter()
        .map(|s| crate::sanitize::line(s))
        .collect();
    let width = names
        .iter()
        .map(|n| unicode_width::UnicodeWidthStr::width(n.as_ref()))
        .max()
        .unwrap_or(0)
        .min(SERVICE_COLUMN_MAX);
    names
        .iter()
        .map(|n| format::fit_columns(n, width))
        .collect()
}

fn render_line<'a>(
    l: &'a LogLine,
    seq: u64,
    pane: &LogPane,
    column: &[String],
    theme: &Theme,
) -> Line<'a> {
    let mut spans = vec![];
    if let Some(i) = l.source.map(usize::from)
        && let Some(name) = column.get(i)
    {
        spans.push(Span::styled(format!("{name} │ "), theme.service(i)));
    }
    if !l.time.is_empty() {
        spans.push(Span::styled(format!("{} ", l.time), theme.dim));
    }
    spans.push(match l.stream {
        Stream::Stderr => Span::styled("E ", theme.stderr),
        Stream::Stdout => Span::styled("  ", theme.dim),
    });
    let plain = strip_ansi(&l.text);
    let ranges = match_ranges(&plain, &logs::fold(&pane.search));
    if !ranges.is_empty() {
        let style = if pane.current_match == Some(seq) {
            theme.current_match
        } else {
            theme.matched
        };
        spans.extend(highlight(&plain, &ranges, style, theme));
    } else if theme.colour && l.text.contains('\u{1b}') {
        match l.text.as_bytes().into_text() {
            Ok(text) => {
                for line in text.lines.into_iter().take(1) {
                    spans.extend(line.spans);
                }
            }
            Err(_) => spans.push(Span::styled(plain.into_owned(), theme.text)),
        }
    } else {
        spans.push(Span::styled(
            plain.into_owned(),
            if l.stream == Stream::Stderr {
                theme.stderr
            } else {
                theme.text
            },
        ));
    }
    Line::from(spans)
}

/// Splits `plain` into spans around the match `ranges` (byte ranges of `plain` on
/// character boundaries, in order, as [`match_ranges`] gives them).
fn highlight(
    plain: &str,
    ranges: &[std::ops::Range<usize>],
    style: ratatui::style::Style,
    theme: &Theme,
) -> Vec<Span<'static>> {
    let mut spans = Vec::new();
    let mut pos = 0;
    for r in ranges {
        let (Some(before), Some(found)) = (plain.get(pos..r.start), plain.get(r.clone())) else {
            continue;
        };
        if !before.is_empty() {
            spans.push(Span::styled(before.to_string(), theme.text));
        }
        spans.push(Span::styled(found.to_string(), style));
        pos = r.end;
    }
    if let Some(rest) = plain.get(pos..).filter(|r| !r.is_empty()) {
        spans.push(Span::styled(rest.to_string(), theme.text));
    }
    spans
}
