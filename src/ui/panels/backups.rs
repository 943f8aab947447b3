//! Backup sets: the fleet's "worst backup" cell and the host view's list of sets.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};

use crate::collect::backups::{BackupStatus, Verdict};
use crate::model::{HostState, Model};
use crate::sanitize;
use crate::ui::{Theme, cells, format};

pub fn verdict_style(v: Verdict, theme: &Theme) -> Style {
    match v {
        Verdict::Fresh => theme.ok,
        Verdict::Suspicious => theme.warn,
        Verdict::Stale | Verdict::Missing => theme.crit,
        Verdict::Unknown => theme.dim,
    }
}

fn label(v: Verdict) -> &'static str {
    match v {
        Verdict::Fresh => "fresh",
        Verdict::Stale => "STALE",
        Verdict::Missing => "MISSING",
        Verdict::Suspicious => "suspicious",
        Verdict::Unknown => "unknown",
    }
}

/// The fleet column: the age of the worst set's newest file, marked by its verdict.
pub fn fleet_cell(h: &HostState, now_secs: i64, theme: &Theme) -> (String, Style) {
    match h.worst_backup(now_secs) {
        None => ("–".into(), theme.dim),
        Some(b) => {
            let text = match (b.verdict, b.newest_age(now_secs)) {
                (Verdict::Missing, _) => "none".to_string(),
                (Verdict::Unknown, _) => "?".to_string(),
                (Verdict::Suspicious, Some(age)) => format!("{}?", format::age(age)),
                (Verdict::Stale, Some(age)) => format!("{}!", format::age(age)),
                (_, Some(age)) => format::age(age),
                (_, None) => "–".into(),
            };
            (text, verdict_style(b.verdict, theme))
        }
    }
}

/// Rows the host view gives the backup block: one per set (up to 4) and its borders.
pub fn height(h: &HostState) -> u16 {
    if h.backups.is_empty() {
        0
    } else {
        h.backups.len().min(4) as u16 + 2
    }
}

pub fn draw(h: &HostState, model: &Model, theme: &Theme, frame: &mut Frame, area: Rect) {
    let now = model.now.as_second();
    let bad = h
        .backups
        .iter()
        .filter(|b| b.verdict != Verdict::Fresh)
        .count();
    let backup_job = h.job.as_ref().filter(|j| j.set.is_some());
    let (title, style) = match backup_job {
        Some(job) if job.running() => (
            format!(
                " {}: {} written, {}s… ",
                job.action,
                format::bytes(job.bytes),
                job.elapsed_secs(model.now)
            ),
            theme.info,
        ),
        Some(job) if matches!(job.outcome, Some(Err(_))) => {
            (format!(" {} FAILED (J shows why) ", job.action), theme.crit)
        }
        _ if bad == 0 => (format!(" Backups: {} fresh ", h.backups.len()), theme.title),
        _ => (
            format!(" Backups: {bad} of {} need attention ", h.backups.len()),
            theme.warn,
        ),
    };
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme.border)
        .title(Span::styled(title, style));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let mut sets: Vec<&BackupStatus> = h.backups.iter().collect();
    sets.sort_by_key(|b| {
        std::cmp::Reverse((b.verdict.severity(), b.newest_age(now).unwrap_or(i64::MAX)))
    });
    let w = inner.width as usize;
    let lines: Vec<Line> = sets
        .iter()
        .take(inner.height as usize)
        .map(|b| {
            let name = format!("{}/{}", b.stack, b.name);
            // File names and reasons come from the host: never raw to the terminal.
            let ago = || format!("{} ago", format::age(b.newest_age(now).unwrap_or(0)));
            let (age, file) = match (&b.newest, &b.error) {
                (Some(_), Some(e)) => (ago(), sanitize::line(e).into_owned()),
                (None, Some(e)) => (String::new(), sanitize::line(e).into_owned()),
                (Some(f), None) => (ago(), sanitize::line(&f.name).into_owned()),
                (None, None) => ("no file".into(), format!("in {}", b.dir)),
            };
            let size = b
                .newest
                .as_ref()
                .map_or(String::new(), |f| format::bytes(f.size));
            let count = if b.count == 1 {
                "1 file".to_string()
            } else {
                format!("{} files", b.count)
            };
            // Half a narrow screen still shows the verdict and the age.
            let name_w = (w / 3).clamp(8, 22);
            let fixed = name_w + 10 + 9 + 6 + 9 + 5;
            Line::from(cells(&[
                (name, name_w, theme.text),
                (label(b.verdict).into(), 10, verdict_style(b.verdict, theme)),
                (age, 9, theme.text),
                (size, 6, theme.mem),
                (count, 9, theme.dim),
                (file, w.saturating_sub(fixed), theme.dim),
            ]))
        })
        .collect();
    frame.render_widget(Paragraph::new(lines), inner);
}
