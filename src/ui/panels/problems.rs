//! `P`: the fleet's problems, worst first, as `opsdeck check` prints them; Enter opens the
//! host of the selected one.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};

use crate::model::{Model, Severity};
use crate::ui::{Theme, centered};

pub fn draw(model: &Model, cursor: usize, theme: &Theme, frame: &mut Frame, area: Rect) {
    let found = model.problems();
    let width = area.width.saturating_sub(4).min(100);
    let height = (found.len().max(1) as u16 + 2).min(area.height.saturating_sub(2));
    let rect = centered(area, width, height);
    frame.render_widget(Clear, rect);
    let rows = height.saturating_sub(2) as usize;
    let offset = cursor.saturating_sub(rows.saturating_sub(1));
    let host_w = found
        .iter()
        .map(|p| p.host_name.chars().count())
        .max()
        .unwrap_or(0);
    let mut lines: Vec<Line> = found
        .iter()
        .enumerate()
        .skip(offset)
        .take(rows)
        .map(|(i, p)| {
            let sev_style = match p.severity {
                Severity::Critical => theme.crit,
                Severity::Warning => theme.warn,
            };
            let mut spans = vec![
                Span::styled(format!(" {:<9}", p.severity.label()), sev_style),
                Span::styled(format!("{:<host_w$}  ", p.host_name), theme.text),
                Span::styled(p.what.clone(), theme.dim),
            ];
            if i == cursor {
                for s in &mut spans {
                    s.style = s.style.patch(theme.selected);
                }
            }
            Line::from(spans)
        })
        .collect();
    if found.is_empty() {
        lines.push(Line::from(Span::styled(" no problems", theme.ok)));
    }
    let title = match found.len() {
        0 => " Problems · Esc closes ".to_string(),
        n => format!(" Problems ({n}) · Enter opens the host · Esc closes "),
    };
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme.title)
        .title(Span::styled(title, theme.title));
    frame.render_widget(Paragraph::new(lines).block(block), rect);
}
