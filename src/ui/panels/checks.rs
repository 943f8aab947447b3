//! HTTP checks: the fleet's "worst check" cell and the host view's list of checks.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};

use crate::model::check::{CheckStatus, CheckVerdict};
use crate::model::{HostState, Model};
use crate::ui::{Theme, cells, format};

pub fn verdict_style(v: CheckVerdict, theme: &Theme) -> Style {
    match v {
        CheckVerdict::Ok => theme.ok,
        CheckVerdict::TlsSoon => theme.warn,
        CheckVerdict::Failed => theme.crit,
    }
}

/// The fleet column: the worst check in a few characters.
pub fn fleet_cell(h: &HostState, theme: &Theme) -> (String, Style) {
    match h.worst_check() {
        None => ("–".into(), theme.dim),
        Some(c) => (c.short(), verdict_style(c.verdict(), theme)),
    }
}

/// Rows the host view gives the checks block: one per check (up to 3, worst first, so
/// a failing one is never cut off) and its borders.
pub fn height(h: &HostState) -> u16 {
    if h.checks.is_empty() {
        0
    } else {
        h.checks.len().min(3) as u16 + 2
    }
}

pub fn draw(h: &HostState, model: &Model, theme: &Theme, frame: &mut Frame, area: Rect) {
    let now = model.now.as_second();
    let bad = h
        .checks
        .iter()
        .filter(|c| c.verdict() != CheckVerdict::Ok)
        .count();
    let (title, style) = if bad == 0 {
        (format!(" Checks: {} ok ", h.checks.len()), theme.title)
    } else {
        (
            format!(" Checks: {bad} of {} need attention ", h.checks.len()),
            theme.warn,
        )
    };
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme.border)
        .title(Span::styled(title, style));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let mut checks: Vec<&CheckStatus> = h.checks.iter().collect();
    checks.sort_by_key(|c| std::cmp::Reverse(c.verdict()));
    let w = inner.width as usize;
    let lines: Vec<Line> = checks
        .iter()
        .take(inner.height as usize)
        .map(|c| {
            let v = c.verdict();
            let latency = c.latency_ms.map_or(String::new(), |ms| format!("{ms}ms"));
            let tls = c
                .tls
                .as_ref()
                .map_or(String::new(), |t| format!("TLS {}d", t.days_left));
            let detail = match (&c.error, &c.last_failure) {
                (Some(e), _) => e.clone(),
                (None, Some(f)) => format!(
                    "last failed {} ago: {}",
                    format::age((now - f.at).max(0)),
                    f.error
                ),
                (None, None) => c.url.clone(),
            };
            let name_w = (w / 3).clamp(8, 22);
            let fixed = name_w + 7 + 7 + 8;
            Line::from(cells(&[
                (c.name.clone(), name_w, theme.text),
                (c.short(), 7, verdict_style(v, theme)),
                (latency, 7, theme.dim),
                (tls, 8, verdict_style(v.min(CheckVerdict::TlsSoon), theme)),
                (detail, w.saturating_sub(fixed), theme.dim),
            ]))
        })
        .collect();
    frame.render_widget(Paragraph::new(lines), inner);
}
