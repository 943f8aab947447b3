//! Backup sets: the fleet's "worst backup" cell and the host view's list of sets.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};

use crate::model::backup::{BackupStatus, Verdict};
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
                // Unknown, or suspicious with no file of a believable age.
                (Verdict::Unknown, _) | (Verdict::Suspicious, None) => "?".to_string(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::HostConn;
    use crate::model::backup::FileEntry;
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    const NOW: i64 = 1_000_000;

    fn set(name: &str, verdict: Verdict, error: Option<&str>, file: Option<&str>) -> BackupStatus {
        BackupStatus {
            host: 0,
            stack: "s".into(),
            name: name.into(),
            dir: "~/backups".into(),
            newest: file.map(|n| FileEntry {
                name: n.into(),
                mtime: NOW - 3 * 3600,
                size: 2048,
            }),
            count: usize::from(file.is_some()),
            total_bytes: 2048,
            max_age_secs: 26 * 3600,
            verdict,
            error: error.map(str::to_string),
            recipe: None,
        }
    }

    fn screen(h: HostState) -> (String, String) {
        let model = Model::new(vec![h], jiff::Timestamp::from_second(NOW).unwrap());
        let theme = Theme::load("default").unwrap();
        let mut t = Terminal::new(TestBackend::new(110, 6)).unwrap();
        t.draw(|f| draw(&model.hosts[0], &model, &theme, f, f.area()))
            .unwrap();
        let text: String = t
            .backend()
            .buffer()
            .content()
            .iter()
            .map(|c| c.symbol())
            .collect();
        let cell = fleet_cell(&model.hosts[0], NOW, &theme).0;
        (text, cell)
    }

    #[test]
    fn a_missing_directory_shows_as_missing_with_its_reason() {
        let mut h = HostState::new("h", "h", 2);
        h.conn = HostConn::Up;
        h.backups = vec![
            set("db", Verdict::Fresh, None, Some("db-1.dump")),
            set(
                "gone",
                Verdict::Missing,
                Some("directory ~/backups does not exist"),
                None,
            ),
        ];
        let (text, cell) = screen(h);
        assert!(text.contains("s/gone"), "{text}");
        assert!(text.contains("MISSING"), "{text}");
        assert!(
            text.contains("directory ~/backups does not exist"),
            "{text}"
        );
        assert_eq!(cell, "none");
    }

    #[test]
    fn host_text_never_reaches_the_terminal_raw() {
        let mut h = HostState::new("h", "h", 2);
        h.conn = HostConn::Up;
        h.backups = vec![
            set(
                "db",
                Verdict::Fresh,
                None,
                Some("db-\u{1b}]0;pwned\u{7}\n.dump"),
            ),
            set(
                "odd",
                Verdict::Stale,
                Some("x.dump is dated 3d in the future\u{1b}[2J"),
                Some("old.dump"),
            ),
        ];
        let (text, _) = screen(h);
        assert!(!text.chars().any(char::is_control), "{text:?}");
        assert!(text.contains("db- .dump"), "{text}");
        // A stale set with a reason still shows its age.
        assert!(text.contains("3h ago"), "{text}");
        assert!(text.contains("dated 3d in the future"), "{text}");
        let mut h = HostState::new("h", "h", 2);
        h.backups = vec![set(
            "future",
            Verdict::Suspicious,
            Some("x.dump is dated 3d in the future of the host's clock: its age is unknown"),
            None,
        )];
        assert_eq!(screen(h).1, "?", "no age to show");
    }
}
