//! `R`: a stack's releases, newest first, and below the list what the selected one is and
//! what going back to it would change per service.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};

use crate::model::Model;
use crate::model::picker::ReleasesPicker;
use crate::model::releases::{self, Release};
use crate::ui::format::fit_columns;
use crate::ui::{Theme, centered};

/// `2026-12-03T07:40:12Z` → `12-03 07:40`, by characters (the text is the host's).
fn when(at: &str) -> String {
    at.chars()
        .skip(5)
        .take(11)
        .map(|c| if c == 'T' { ' ' } else { c })
        .collect()
}

pub fn draw(model: &Model, p: &ReleasesPicker, theme: &Theme, frame: &mut Frame, area: Rect) {
    let width = area.width.min(110);
    let max_h = area.height.saturating_sub(2).min(30);
    let inner_w = width.saturating_sub(2) as usize;
    let host = model.hosts.get(p.host).map_or("?", |h| h.name.as_str());
    let title = format!(" Releases of {} on {host} ", p.stack);
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme.title)
        .title(Span::styled(
            fit_columns(&title, inner_w).trim_end().to_string() + " ",
            theme.title,
        ));
    let body_h = max_h.saturating_sub(2) as usize;
    let mut lines: Vec<Line> = Vec::new();
    match &p.view {
        None => lines.push(Line::from(Span::styled(
            " reading the history from the host…",
            theme.dim,
        ))),
        Some(Err(e)) => lines.push(Line::from(Span::styled(
            format!(" cannot read the releases: {e}"),
            theme.crit,
        ))),
        Some(Ok(view)) => {
            let rows = p.rows();
            if rows.is_empty() {
                lines.push(Line::from(Span::styled(
                    " no releases yet: each deploy, migration and rollback records one",
                    theme.dim,
                )));
            }
            // the list takes what the detail below leaves, at least 3 rows
            let detail_h = 6.min(body_h.saturating_sub(4));
            let list_h = body_h.saturating_sub(detail_h + 2).max(1);
            if !rows.is_empty() {
                lines.push(Line::from(Span::styled(
                    fit_columns(
                        "   #    when         recipe                  outcome      changes",
                        inner_w,
                    ),
                    theme.header,
                )));
            }
            let offset = p.cursor.saturating_sub(list_h.saturating_sub(1));
            for (i, r) in rows.iter().enumerate().skip(offset).take(list_h) {
                let changes = releases::changes(r, &view.running);
                let change_text = if changes.is_empty() {
                    "runs now".to_string()
                } else {
                    let names: Vec<&str> =
                        changes.iter().filter_map(|c| c.split(':').next()).collect();
                    format!("differs: {}", names.join(", "))
                };
                let mark = if i == p.cursor { " ▶ " } else { "   " };
                let outcome_style = if r.ok() { theme.ok } else { theme.crit };
                let outcome = if r.ok() { "ok" } else { "FAILED" };
                let mut spans = vec![
                    Span::styled(mark.to_string(), theme.text),
                    Span::styled(fit_columns(&format!("#{}", r.n), 5), theme.text),
                    Span::styled(fit_columns(&when(&r.at), 13), theme.dim),
                    Span::styled(fit_columns(&r.recipe, 24), theme.text),
                    Span::styled(fit_columns(outcome, 13), outcome_style),
                    Span::styled(
                        fit_columns(&change_text, inner_w.saturating_sub(58)),
                        theme.dim,
                    ),
                ];
                if i == p.cursor {
                    for s in &mut spans {
                        s.style = s.style.patch(theme.selected);
                    }
                }
                lines.push(Line::from(spans));
            }
            if let Some(r) = p.selected() {
                let head = format!("── {} ", r.label());
                let rest = inner_w.saturating_sub(head.chars().count());
                lines.push(Line::from(Span::styled(
                    fit_columns(&format!("{head}{}", "─".repeat(rest)), inner_w),
                    theme.border,
                )));
                for l in detail(r, &view.running, view.downgrade)
                    .into_iter()
                    .take(detail_h)
                {
                    lines.push(Line::from(Span::styled(
                        fit_columns(&l, inner_w),
                        theme.text,
                    )));
                }
            }
        }
    }
    // the keys, on the last line
    let keys = format!(
        " Enter roll back · c checkout: {} · D restore its dump · r reload · Esc",
        if p.checkout { "on" } else { "off" }
    );
    lines.truncate(body_h.saturating_sub(2));
    lines.push(Line::from(""));
    lines.push(Line::from(Span::styled(
        fit_columns(&keys, inner_w),
        theme.key,
    )));
    let height = (lines.len() as u16 + 2).min(max_h);
    let rect = centered(area, width, height);
    frame.render_widget(Clear, rect);
    frame.render_widget(Paragraph::new(lines).block(block), rect);
}

/// What the selected release is, in lines: who and when, commit, head, dump, outcome, and
/// what going back to it changes.
fn detail(r: &Release, running: &[(String, String)], downgrade: bool) -> Vec<String> {
    let mut out = vec![format!(" {} by {}: {}", r.at, r.who, r.outcome)];
    let mut facts = Vec::new();
    if let Some(c) = &r.commit {
        facts.push(format!("commit {}", c.get(..12).unwrap_or(c)));
    }
    if let Some(h) = &r.migration_head {
        facts.push(format!(
            "migration head {h}{}",
            if downgrade {
                ""
            } else {
                " (not undone: no downgrade recipe)"
            }
        ));
    }
    if let Some(d) = &r.dump {
        facts.push(format!("dump {d}"));
    }
    if !facts.is_empty() {
        out.push(format!(" {}", facts.join(" · ")));
    }
    let changes = releases::changes(r, running);
    if changes.is_empty() {
        out.push(" every service runs this release's images now".into());
    }
    out.extend(changes.into_iter().map(|c| format!("   {c}")));
    out
}
