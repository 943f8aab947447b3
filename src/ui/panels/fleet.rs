//! The fleet: one row per host, worst news first to the eye (state, unhealthy count).

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};

use crate::model::{DockerState, HostConn, HostState, Model, multi};
use crate::ui::{Theme, cells, format, select_row};

pub fn draw(model: &Model, theme: &Theme, frame: &mut Frame, area: Rect) {
    let [table_area, detail_area] =
        Layout::vertical([Constraint::Min(3), Constraint::Length(3)]).areas(area);
    let visible = model.visible_hosts();
    let order = if model.sort_worst {
        " · worst first"
    } else {
        ""
    };
    let title = if model.filter.is_empty() {
        format!(" Hosts ({}){order} ", model.hosts.len())
    } else {
        format!(
            " Hosts ({} of {}, filter {:?}){order} ",
            visible.len(),
            model.hosts.len(),
            model.filter
        )
    };
    let mut block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme.border)
        .title(Span::styled(title, theme.title));
    if let Some(status) = multi::status_line(model) {
        let style = match &model.batch {
            Some(b) if b.running() => theme.info,
            Some(b) if b.hosts.iter().all(|h| h.turn == multi::Turn::Done) => theme.ok,
            Some(_) => theme.crit,
            None => theme.key,
        };
        block = block.title_bottom(Span::styled(format!(" {status} "), style));
    }
    let inner = block.inner(table_area);
    frame.render_widget(block, table_area);

    // A marker column (`*` marked; a multi-deploy's turns) while anything is marked.
    let marks = multi::shows_marks(model);
    let w = (inner.width as usize).saturating_sub(if marks { 2 } else { 0 });
    // Fixed columns; CPU and MEM share what is left, for their sparklines. The job column
    // is a mark on a narrow screen and names the job on a wide one.
    let job_w = if w >= 110 { 16 } else { 1 };
    let fixed = [16usize, 11, 5, 3, 6, 6, job_w];
    let gaps = 8;
    let flex = w.saturating_sub(fixed.iter().sum::<usize>() + gaps);
    let spark_col = (flex / 2).max(6);
    let spark_w = spark_col.saturating_sub(5);

    let mut header = cells(&[
        ("HOST".into(), fixed[0], theme.header),
        ("STATE".into(), fixed[1], theme.header),
        ("CPU".into(), spark_col, theme.header),
        ("MEM".into(), spark_col, theme.header),
        ("CTRS".into(), fixed[2], theme.header),
        ("BAD".into(), fixed[3], theme.header),
        ("BACKUP".into(), fixed[4], theme.header),
        ("CHECK".into(), fixed[5], theme.header),
        (
            if job_w > 1 { "JOB" } else { "J" }.into(),
            job_w,
            theme.header,
        ),
    ]);
    if marks {
        header.insert(0, Span::styled("  ", theme.header));
    }
    let mut lines = vec![Line::from(header)];
    let rows = inner.height.saturating_sub(1) as usize;
    let offset = model.fleet_cursor.saturating_sub(rows.saturating_sub(1));
    if visible.is_empty() {
        lines.push(Line::from(Span::styled(
            "  no host matches the filter",
            theme.dim,
        )));
    }
    model
        .fleet_drawn
        .set(visible.iter().skip(offset).take(rows).copied().collect());
    for (pos, &i) in visible.iter().enumerate().skip(offset).take(rows) {
        let h = &model.hosts[i];
        let (state, state_style) = state_cell(h, model, theme);
        let (cpu, mem) = match &h.metrics {
            // Down over SSH, its metrics source may still report it.
            Some(m) if h.shows_figures(model.now) => (
                format!(
                    "{} {:>4}",
                    format::sparkline(&h.cpu.tail(spark_w), spark_w, 100.0),
                    format::percent(m.cpu_percent)
                ),
                format!(
                    "{} {:>4}",
                    format::sparkline(&h.mem.tail(spark_w), spark_w, 100.0),
                    format::percent(m.mem_percent())
                ),
            ),
            _ => ("–".into(), "–".into()),
        };
        let (ctrs, ctrs_style) = match &h.docker {
            DockerState::Up { .. } => (
                format!("{}/{}", h.running(), h.containers.len()),
                theme.text,
            ),
            DockerState::Unavailable { .. } => ("n/a".into(), theme.dim),
            DockerState::Unknown => ("–".into(), theme.dim),
        };
        let (backup, backup_style) = super::backups::fleet_cell(h, model.now.as_second(), theme);
        let (check, check_style) = super::checks::fleet_cell(h, theme);
        let bad = h.unhealthy();
        let (bad_text, bad_style) = if bad > 0 {
            (bad.to_string(), theme.crit)
        } else {
            ("0".into(), theme.dim)
        };
        let (job, job_style) = job_cell(h, job_w > 1, theme);
        let mut spans = cells(&[
            (h.name.clone(), fixed[0], theme.text),
            (state, fixed[1], state_style),
            (cpu, spark_col, theme.cpu),
            (mem, spark_col, theme.mem),
            (ctrs, fixed[2], ctrs_style),
            (bad_text, fixed[3], bad_style),
            (backup, fixed[4], backup_style),
            (check, fixed[5], check_style),
            (job, job_w, job_style),
        ]);
        if marks {
            let (mark, style) = match multi::marker(model, i) {
                Some((m, kind)) => (m, mark_style(kind, theme)),
                None => (" ", theme.text),
            };
            spans.insert(0, Span::raw(" "));
            spans.insert(0, Span::styled(mark, style));
        }
        if pos == model.fleet_cursor {
            select_row(&mut spans, inner.width as usize, theme);
        }
        lines.push(Line::from(spans));
    }
    frame.render_widget(Paragraph::new(lines), inner);

    let detail = visible
        .get(model.fleet_cursor)
        .map(|&i| detail_lines(&model.hosts[i], model, theme))
        .unwrap_or_default();
    let block = Block::default()
        .borders(Borders::TOP)
        .border_style(theme.border);
    let inner = block.inner(detail_area);
    frame.render_widget(block, detail_area);
    frame.render_widget(Paragraph::new(detail), inner);
}

fn mark_style(kind: multi::MarkKind, theme: &Theme) -> Style {
    match kind {
        multi::MarkKind::Marked => theme.key,
        multi::MarkKind::Waiting => theme.dim,
        multi::MarkKind::Running => theme.info,
        multi::MarkKind::Done => theme.ok,
        multi::MarkKind::Failed => theme.crit,
    }
}

/// The host's current or last job: `⟳ deploy 2/5`, `✔ deploy`, `✖ migrate`, or only
/// its mark when `wide` is false.
fn job_cell(h: &HostState, wide: bool, theme: &Theme) -> (String, Style) {
    let Some(job) = &h.job else {
        return (String::new(), theme.dim);
    };
    let style = match &job.outcome {
        None => theme.info,
        Some(Ok(_)) => theme.ok,
        Some(Err(_)) => theme.crit,
    };
    let text = job.short();
    if wide {
        (text, style)
    } else {
        (
            text.chars().next().map(String::from).unwrap_or_default(),
            style,
        )
    }
}

fn state_cell(h: &HostState, model: &Model, theme: &Theme) -> (String, Style) {
    match &h.conn {
        HostConn::Connecting => ("◌ connecting".into(), theme.info),
        HostConn::Up => match h.stale_secs(model.now) {
            Some(age) => (format!("● stale {}", format::age(age)), theme.warn),
            // Its metrics source fails: sampled over SSH meanwhile.
            None if h.source.as_ref().is_some_and(|s| s.fallback.is_some()) => {
                ("● up ssh!".into(), theme.warn)
            }
            None => ("● up".into(), theme.ok),
        },
        HostConn::Stalled { since, .. } => (
            format!(
                "◐ stalled {}",
                format::age(model.now.as_second() - since.as_second())
            ),
            theme.warn,
        ),
        HostConn::Down { since, .. } => (
            format!(
                "✖ down {}",
                format::age(model.now.as_second() - since.as_second())
            ),
            theme.crit,
        ),
    }
}

/// Two lines about the selected host: its vitals, or why it is down; its job.
fn detail_lines(h: &HostState, model: &Model, theme: &Theme) -> Vec<Line<'static>> {
    let mut first = vec![
        Span::styled(h.name.clone(), theme.title),
        Span::styled(format!(" {}", h.target), theme.dim),
    ];
    if h.production {
        first.push(Span::styled(" production", theme.warn));
    }
    if h.read_only {
        first.push(Span::styled(" read-only", theme.warn));
    }
    match h.source.as_ref() {
        Some(s) if s.fallback.is_some() => first.push(Span::styled(
            format!(
                " · {}",
                crate::sanitize::line(s.fallback.as_deref().unwrap_or_default())
            ),
            theme.warn,
        )),
        Some(s) => first.push(Span::styled(format!(" · metrics: {}", s.what), theme.dim)),
        None => {}
    }
    if let Some(job) = &h.job {
        let (_, style) = job_cell(h, true, theme);
        let age = if job.running() {
            format!(" {}", super::job::duration(job.elapsed_secs(model.now)))
        } else {
            format!(
                " {} ago",
                format::age(model.now.as_second() - job.ended.unwrap_or(job.started).as_second())
            )
        };
        first.push(Span::styled(" · job ", theme.dim));
        first.push(Span::styled(job.short(), style));
        first.push(Span::styled(age, theme.dim));
    }
    let second = match (&h.conn, &h.metrics) {
        (HostConn::Down { reason, .. }, _) => vec![Span::styled(reason.clone(), theme.crit)],
        (HostConn::Stalled { reason, .. }, _) => vec![Span::styled(
            format!("stalled: {reason} (the last sample is shown)"),
            theme.warn,
        )],
        (_, Some(m)) => {
            let root = m
                .disks
                .iter()
                .find(|d| d.mount == "/")
                .or(m.disks.first())
                .map(|d| {
                    format!(
                        " · disk {} {}",
                        d.mount,
                        format::percent(crate::model::host::percent(d.used_bytes, d.total_bytes))
                    )
                })
                .unwrap_or_default();
            let docker = match &h.docker {
                DockerState::Up { version } => format!(" · docker {version}"),
                DockerState::Unavailable { reason } => format!(" · docker: {reason}"),
                DockerState::Unknown => String::new(),
            };
            vec![Span::styled(
                format!(
                    "load {:.2} {:.2} {:.2}{root} · net ↓{} ↑{}{docker}",
                    m.load[0],
                    m.load[1],
                    m.load[2],
                    format::rate(m.net_rx_bps),
                    format::rate(m.net_tx_bps)
                ),
                theme.text,
            )]
        }
        (HostConn::Connecting, None) => vec![Span::styled("connecting…", theme.info)],
        (HostConn::Up, None) => vec![Span::styled("waiting for the first sample…", theme.dim)],
    };
    vec![Line::from(first), Line::from(second)]
}
