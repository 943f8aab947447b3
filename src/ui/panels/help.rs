//! `?`: every binding of the current view, straight from the keymap table.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};

use crate::model::Model;
use crate::model::keymap::{ViewKind, help_for};
use crate::ui::{Theme, centered};

pub fn draw(model: &Model, scroll: u16, theme: &Theme, frame: &mut Frame, area: Rect) {
    let kind = model.view.kind();
    let view_name = match kind {
        ViewKind::Fleet => "fleet view",
        ViewKind::Host => "host view",
        ViewKind::Container => "container view",
        ViewKind::Stack => "stack logs",
        ViewKind::Job => "job",
        ViewKind::Jobs => "jobs",
        ViewKind::Timeline => "timeline",
    };
    let mut lines: Vec<Line> = help_for(kind)
        .map(|b| {
            Line::from(vec![
                Span::styled(format!(" {:<12}", b.label), theme.key),
                Span::styled(b.help, theme.text),
            ])
        })
        .collect();
    // The host's custom actions: their keys work in its host view.
    if let crate::model::View::Host { host } = &model.view
        && let Some(h) = model.hosts.get(*host)
    {
        let customs: Vec<Line> = h
            .stacks
            .iter()
            .flat_map(|st| st.actions.iter().map(move |a| (st, a)))
            .map(|(st, a)| {
                let key = a.key.map_or(":".to_string(), |k| k.to_string());
                let mut text = format!("{} ({})", a.name, st.name);
                if let Some(d) = &a.description {
                    text.push_str(&format!(": {d}"));
                }
                if a.dangerous {
                    text.push_str(" [asks first]");
                }
                Line::from(vec![
                    Span::styled(format!(" {key:<12}"), theme.key),
                    Span::styled(text, theme.text),
                ])
            })
            .collect();
        if !customs.is_empty() {
            lines.push(Line::from(""));
            lines.push(Line::from(Span::styled(
                " custom actions of this host (also `:action NAME`)",
                theme.header,
            )));
            lines.extend(customs);
        }
    }
    lines.push(Line::from(""));
    if model.read_only {
        lines.push(Line::from(Span::styled(
            " read-only: actions that change hosts are off",
            theme.warn,
        )));
    }
    if let Some(
        crate::model::Import::Offered { hosts } | crate::model::Import::Failed { hosts, .. },
    ) = &model.import
    {
        lines.push(Line::from(vec![
            Span::styled(format!(" {:<12}", "I"), theme.key),
            Span::styled(
                format!("import {hosts} host(s) from ~/.ssh/config into a new inventory"),
                theme.text,
            ),
        ]));
    }
    if !model.source.is_empty() {
        lines.push(Line::from(Span::styled(
            format!(" inventory: {}", model.source),
            theme.dim,
        )));
    }
    let width = 72.min(area.width.saturating_sub(2));
    let height = (lines.len() as u16 + 2).min(area.height.saturating_sub(2));
    let rect = centered(area, width, height);
    frame.render_widget(Clear, rect);
    // Longer than the screen: it scrolls, and the border says there is more.
    let rows = height.saturating_sub(2);
    let total = lines.len() as u16;
    let scroll = scroll.min(total.saturating_sub(rows));
    let mut block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme.title)
        .title(Span::styled(
            format!(" Help: {view_name} · Esc closes "),
            theme.title,
        ));
    if total > rows {
        let more = if scroll + rows < total {
            format!(" ↓ j/k scroll ({}/{total}) ", scroll + rows)
        } else {
            format!(" ↑ k ({total}/{total}) ")
        };
        block = block.title_bottom(Span::styled(more, theme.dim));
    }
    frame.render_widget(Paragraph::new(lines).block(block).scroll((scroll, 0)), rect);
}
