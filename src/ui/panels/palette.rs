//! `:`: type a few letters of a command or a host name, Enter runs the best match.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};

use crate::model::Model;
use crate::model::palette::{self, Palette};
use crate::ui::Theme;

pub fn draw(model: &Model, p: &Palette, theme: &Theme, frame: &mut Frame, area: Rect) {
    let matches = palette::matching(model.palette_entries(), &p.input);
    let max_rows = area.height.saturating_sub(6).clamp(1, 10) as usize;
    let offset = p.selected.saturating_sub(max_rows - 1);
    let mut lines = vec![Line::from(vec![
        Span::styled(":", theme.key),
        Span::styled(p.input.clone(), theme.text),
        Span::styled("█", theme.dim),
    ])];
    for (i, e) in matches.iter().enumerate().skip(offset).take(max_rows) {
        let style = if i == p.selected {
            theme.selected
        } else {
            theme.text
        };
        lines.push(Line::from(Span::styled(format!(" {:<40}", e.label), style)));
    }
    if matches.is_empty() {
        lines.push(Line::from(Span::styled(" no match", theme.dim)));
    }
    let width = 50.min(area.width.saturating_sub(2));
    let height = (lines.len() as u16 + 2).min(area.height.saturating_sub(2));
    let rect = Rect {
        x: area.x + (area.width.saturating_sub(width)) / 2,
        y: area.y + 2.min(area.height.saturating_sub(height)),
        width,
        height,
    };
    frame.render_widget(Clear, rect);
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme.title)
        .title(Span::styled(" Command · ⏎ run · Esc close ", theme.title));
    frame.render_widget(Paragraph::new(lines).block(block), rect);
}
