//! A compose project's logs together: its services, each in its own colour, over their
//! lines interleaved by time.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};

use crate::model::Model;
use crate::ui::Theme;

pub fn draw(
    model: &Model,
    host: usize,
    project: &str,
    theme: &Theme,
    frame: &mut Frame,
    area: Rect,
) {
    let [services, log] = Layout::vertical([Constraint::Length(3), Constraint::Min(3)]).areas(area);
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme.border)
        .title(Span::styled(
            format!(" {} ", crate::sanitize::line(project)),
            theme.title,
        ));
    let inner = block.inner(services);
    frame.render_widget(block, services);
    let Some(pane) = model
        .logs
        .as_ref()
        .filter(|p| p.host == host && p.stack.as_ref().is_some_and(|s| s.project == project))
    else {
        return;
    };
    let Some(st) = &pane.stack else {
        return;
    };
    let containers = model.hosts.get(host).map_or(&[][..], |h| &h.containers[..]);
    let mut spans = vec![Span::styled(" services ", theme.dim)];
    if st.services.is_empty() {
        spans.push(Span::styled("none running", theme.warn));
    }
    for (i, name) in st.services.iter().enumerate() {
        let shown = st.only.is_none_or(|o| usize::from(o) == i);
        let mut style = theme.service(i);
        if !shown {
            style = theme.dim.add_modifier(Modifier::CROSSED_OUT);
        }
        spans.push(Span::styled(
            crate::sanitize::line(name).into_owned(),
            style,
        ));
        // Its container's state, from the host's list, when it is not running.
        let state = containers
            .iter()
            .find(|c| c.project.as_deref() == Some(project) && c.display_name() == name)
            .map(|c| (c.is_running(), c.state.label()));
        if let Some((false, label)) = state {
            spans.push(Span::styled(format!(" ({label})"), theme.warn));
        }
        spans.push(Span::raw("  "));
    }
    spans.push(Span::styled("f", theme.key));
    spans.push(Span::styled(" one service / all", theme.dim));
    frame.render_widget(
        Paragraph::new(Line::from(spans)).wrap(Wrap { trim: true }),
        inner,
    );
    super::container::draw_log(pane, theme, frame, log);
}
