//! What changed, when: a host's events (or the fleet's), newest first, one line each.
//! Times are UTC, as Docker stamps its logs (the log opened from a line shows the same
//! clock).

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::Paragraph;

use crate::model::timeline::Grade;
use crate::model::{Model, View};
use crate::ui::{Theme, cells, format, select_row};

pub fn draw(model: &Model, theme: &Theme, frame: &mut Frame, area: Rect) {
    let host = match model.view {
        View::Timeline { host } => host.and_then(|h| model.hosts.get(h)),
        _ => None,
    };
    let list = model.timeline_list();
    let title = match host {
        Some(h) => format!(" What changed on {} ({}) ", h.name, list.len()),
        None => format!(" What changed in the fleet ({}) ", list.len()),
    };
    let inner = super::host::list_block(model, theme, frame, area, title);
    if list.is_empty() {
        let texts = (
            " nothing yet: containers dying, restarting, killed or out of memory, health \
             changes, images pulled, checks failing, deploys and backups show here",
            " no event matches the filter",
        );
        super::host::empty_list(model, theme, frame, inner, texts);
        return;
    }
    let w = inner.width as usize;
    let wide = w >= 110;
    let fleet = host.is_none();
    let time_w = if wide { 14 } else { 8 };
    let host_w = if fleet { if wide { 16 } else { 10 } } else { 0 };
    let stack_w = if wide { 16 } else { 0 };
    let subject_w = if wide { 24 } else { 14 };
    let fixed = 5
        + (time_w + 1)
        + if fleet { host_w + 1 } else { 0 }
        + if wide { stack_w + 1 } else { 0 }
        + subject_w
        + 1;
    let text_w = w.saturating_sub(fixed).max(10);
    let mut header = vec![
        ("AGO".to_string(), 4, theme.header),
        ("TIME UTC".into(), time_w, theme.header),
    ];
    if fleet {
        header.push(("HOST".into(), host_w, theme.header));
    }
    if wide {
        header.push(("STACK".into(), stack_w, theme.header));
    }
    header.push(("WHAT".into(), subject_w, theme.header));
    header.push(("EVENT".into(), text_w, theme.header));
    let mut lines = vec![Line::from(cells(&header))];
    let rows = inner.height.saturating_sub(1) as usize;
    let offset = model.timeline_cursor.saturating_sub(rows.saturating_sub(1));
    for (pos, e) in list.iter().enumerate().skip(offset).take(rows) {
        let t = e.time();
        let ago = format::age(model.now.as_second() - t.as_second());
        let clock = if wide {
            t.strftime("%m-%d %H:%M:%S").to_string()
        } else {
            t.strftime("%H:%M:%S").to_string()
        };
        let style = match e.grade {
            Grade::Crit => theme.crit,
            Grade::Warn => theme.warn,
            Grade::Good => theme.ok,
            Grade::Info => theme.text,
        };
        let mut parts = vec![(ago, 4, theme.dim), (clock, time_w, theme.dim)];
        if fleet {
            parts.push((e.host.clone(), host_w, theme.text));
        }
        if wide {
            parts.push((e.stack.clone().unwrap_or_default(), stack_w, theme.dim));
        }
        let subject = e.subject.clone().unwrap_or_else(|| e.kind.clone());
        parts.push((subject, subject_w, theme.text));
        parts.push((e.text.clone(), text_w, style));
        let mut spans = cells(&parts);
        if pos == model.timeline_cursor {
            select_row(&mut spans, w, theme);
        }
        lines.push(Line::from(spans));
    }
    frame.render_widget(Paragraph::new(lines), inner);
}
