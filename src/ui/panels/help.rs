//! `?`: every binding of the current view, straight from the keymap table.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};

use crate::model::Model;
use crate::model::keymap::{ViewKind, help_for};
use crate::ui::{Theme, centered};

pub fn draw(model: &Model, theme: &Theme, frame: &mut Frame, area: Rect) {
    let kind = model.view.kind();
    let view_name = match kind {
        ViewKind::Fleet => "fleet view",
        ViewKind::Host => "host view",
        ViewKind::Container => "container view",
    };
    let mut lines: Vec<Line> = help_for(kind)
        .map(|b| {
            Line::from(vec![
                Span::styled(format!(" {:<12}", b.label), theme.key),
                Span::styled(b.help, theme.text),
            ])
        })
        .collect();
    lines.push(Line::from(""));
    if model.read_only {
        lines.push(Line::from(Span::styled(
            " read-only: actions that change hosts are off",
            theme.warn,
        )));
    }
    if !model.source.is_empty() {
        lines.push(Line::from(Span::styled(
            format!(" inventory: {}", model.source),
            theme.dim,
        )));
    }
    let width = 60.min(area.width.saturating_sub(2));
    let height = (lines.len() as u16 + 2).min(area.height.saturating_sub(2));
    let rect = centered(area, width, height);
    frame.render_widget(Clear, rect);
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme.title)
        .title(Span::styled(
            format!(" Help: {view_name} · Esc closes "),
            theme.title,
        ));
    frame.render_widget(Paragraph::new(lines).block(block), rect);
}
