//! Recent jobs, newest first: those running now, then what the audit log remembers.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::Paragraph;

use crate::model::{JobRef, Model};
use crate::ui::{Theme, cells, format, select_row};

pub fn draw(model: &Model, theme: &Theme, frame: &mut Frame, area: Rect) {
    let list = model.job_list();
    let inner = super::host::list_block(
        model,
        theme,
        frame,
        area,
        format!(" Jobs ({}) ", list.len()),
    );
    if list.is_empty() {
        let texts = (
            " no jobs yet: deploys, restarts, migrations and backups show here, with their output",
            " no job matches the filter",
        );
        super::host::empty_list(model, theme, frame, inner, texts);
        return;
    }
    let w = inner.width as usize;
    let wide = w >= 110;
    let (host_w, stack_w, user_w) = if wide { (18, 18, 12) } else { (14, 0, 0) };
    let fixed = 8 + host_w + 8 + 7 + if wide { stack_w + user_w + 3 } else { 0 } + 4;
    let action_w = w.saturating_sub(fixed).clamp(8, 28);
    let mut header = vec![
        ("WHEN".to_string(), 8, theme.header),
        ("HOST".into(), host_w, theme.header),
    ];
    if wide {
        header.push(("STACK".into(), stack_w, theme.header));
    }
    header.push(("ACTION".into(), action_w, theme.header));
    header.push(("RESULT".into(), 8, theme.header));
    header.push(("TOOK".into(), 7, theme.header));
    if wide {
        header.push(("USER".into(), user_w, theme.header));
    }
    let mut lines = vec![Line::from(cells(&header))];
    let rows = inner.height.saturating_sub(1) as usize;
    let offset = model.jobs_cursor.saturating_sub(rows.saturating_sub(1));
    for (pos, r) in list.iter().enumerate().skip(offset).take(rows) {
        let Some(job) = model.job(*r) else { continue };
        let when = format!(
            "{} ago",
            format::age(model.now.as_second() - job.started.as_second())
        );
        let (result, style) = match (&job.outcome, r) {
            (None, JobRef::Host(_)) => ("running".to_string(), theme.info),
            (None, _) => ("?".into(), theme.dim),
            (Some(Ok(_)), _) => ("ok".into(), theme.ok),
            (Some(Err(e)), _) if e.starts_with("cancelled") => ("cancelled".into(), theme.warn),
            (Some(Err(e)), _) if e.starts_with("refused") => ("refused".into(), theme.crit),
            (Some(Err(_)), _) => ("FAILED".into(), theme.crit),
        };
        let took = super::job::duration(job.elapsed_secs(model.now));
        let mut parts = vec![(when, 8, theme.dim), (job.host.clone(), host_w, theme.text)];
        if wide {
            parts.push((job.stack.clone(), stack_w, theme.dim));
        }
        parts.push((job.action.clone(), action_w, theme.text));
        parts.push((result, 8, style));
        parts.push((took, 7, theme.dim));
        if wide {
            let user = if job.user.is_empty() {
                "you".to_string()
            } else {
                job.user.clone()
            };
            parts.push((user, user_w, theme.dim));
        }
        let mut spans = cells(&parts);
        if pos == model.jobs_cursor {
            select_row(&mut spans, w, theme);
        }
        lines.push(Line::from(spans));
    }
    frame.render_widget(Paragraph::new(lines), inner);
}
