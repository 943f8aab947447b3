//! One host: graphs of the last minutes, its vitals, and its containers grouped by
//! compose project.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Sparkline, Wrap};

use crate::model::host::percent;
use crate::model::series::Series;
use crate::model::{
    Container, DockerState, Health, HostConn, HostQuestion, HostState, Model, RunState,
};
use crate::ui::{Theme, cells, format, select_row};

pub fn draw(model: &Model, host: usize, theme: &Theme, frame: &mut Frame, area: Rect) {
    let Some(h) = model.hosts.get(host) else {
        return;
    };
    let graph_h = (area.height / 3).clamp(5, 14);
    let (b_h, c_h) = (super::backups::height(h), super::checks::height(h));
    // On a short terminal backups and checks share one row, so containers keep theirs.
    let side_by_side = b_h > 0 && c_h > 0 && area.height < 40;
    let (first_h, second_h) = if side_by_side {
        (b_h.max(c_h), 0)
    } else {
        (b_h, c_h)
    };
    let [graphs, vitals, first, second, containers] = Layout::vertical([
        Constraint::Length(graph_h),
        Constraint::Length(2),
        Constraint::Length(first_h),
        Constraint::Length(second_h),
        Constraint::Min(3),
    ])
    .areas(area);
    draw_graphs(h, theme, frame, graphs);
    draw_vitals(h, model, theme, frame, vitals);
    let (backups, checks) = if side_by_side {
        let [l, r] = Layout::horizontal([Constraint::Ratio(1, 2); 2]).areas(first);
        (l, r)
    } else if b_h > 0 {
        (first, second)
    } else {
        (second, first)
    };
    if !h.backups.is_empty() {
        super::backups::draw(h, model, theme, frame, backups);
    }
    if !h.checks.is_empty() {
        super::checks::draw(h, model, theme, frame, checks);
    }
    draw_containers(h, model, theme, frame, containers);
}

fn draw_graphs(h: &HostState, theme: &Theme, frame: &mut Frame, area: Rect) {
    let cols = Layout::horizontal([Constraint::Ratio(1, 4); 4]).split(area);
    let m = h.metrics.as_ref();
    let cores = m.map_or(0, |m| m.per_core.len());
    let cpu_title = match m {
        Some(m) => format!(" CPU {} of {cores} ", format::percent(m.cpu_percent)),
        None => " CPU ".into(),
    };
    graph(
        frame,
        cols[0],
        theme,
        &cpu_title,
        &h.cpu,
        Some(100.0),
        theme.cpu,
    );
    let mem_title = match m {
        Some(m) => format!(
            " MEM {} {} ",
            format::percent(m.mem_percent()),
            format::bytes(m.mem_used_bytes)
        ),
        None => " MEM ".into(),
    };
    graph(
        frame,
        cols[1],
        theme,
        &mem_title,
        &h.mem,
        Some(100.0),
        theme.mem,
    );

    // Network: receive on top, transmit below, one scale so they compare.
    let net_title = match m {
        Some(m) => format!(
            " NET ↓{} ↑{} ",
            format::rate(m.net_rx_bps),
            format::rate(m.net_tx_bps)
        ),
        None => " NET ".into(),
    };
    let block = titled(theme, &net_title);
    let inner = block.inner(cols[2]);
    frame.render_widget(block, cols[2]);
    let scale = h.net_rx.max().max(h.net_tx.max()).max(1024.0);
    let [rx, tx] = Layout::vertical([Constraint::Ratio(1, 2); 2]).areas(inner);
    spark(frame, rx, &h.net_rx, scale, theme.net_rx);
    spark(frame, tx, &h.net_tx, scale, theme.net_tx);

    let load_title = match m {
        Some(m) => format!(" LOAD {:.2} ", m.load[0]),
        None => " LOAD ".into(),
    };
    // Load is read against the number of cores: a full graph means every core is busy.
    let load_max = h.load1.max().max(cores.max(1) as f64);
    graph(
        frame,
        cols[3],
        theme,
        &load_title,
        &h.load1,
        Some(load_max),
        theme.load,
    );
}

pub(super) fn titled<'a>(theme: &Theme, title: &'a str) -> Block<'a> {
    Block::default()
        .borders(Borders::ALL)
        .border_style(theme.border)
        .title(Span::styled(title, theme.title))
}

/// A list's block, its title followed by the filter when one is set: drawn, and the
/// inside returned.
pub(super) fn list_block(
    model: &Model,
    theme: &Theme,
    frame: &mut Frame,
    area: Rect,
    mut title: String,
) -> Rect {
    if !model.filter.is_empty() {
        title.push_str(&format!("· filter {:?} ", model.filter));
    }
    let block = titled(theme, &title);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    inner
}

/// What an empty list says: `empty`, or with a filter set, `no_match`.
pub(super) fn empty_list(
    model: &Model,
    theme: &Theme,
    frame: &mut Frame,
    inner: Rect,
    (empty, no_match): (&str, &str),
) {
    let text = if model.filter.is_empty() {
        empty
    } else {
        no_match
    };
    frame.render_widget(Paragraph::new(Span::styled(text, theme.dim)), inner);
}

pub(super) fn graph(
    frame: &mut Frame,
    area: Rect,
    theme: &Theme,
    title: &str,
    series: &Series,
    max: Option<f64>,
    style: Style,
) {
    let block = titled(theme, title);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let max = max.unwrap_or_else(|| series.max()).max(f64::EPSILON);
    spark(frame, inner, series, max, style);
}

pub(super) fn spark(frame: &mut Frame, area: Rect, series: &Series, max: f64, style: Style) {
    // Scale to integers with headroom so small values still show a sliver.
    let data: Vec<u64> = series
        .tail(area.width as usize)
        .iter()
        .map(|v| ((v / max).clamp(0.0, 1.0) * 1000.0).round() as u64)
        .collect();
    frame.render_widget(
        Sparkline::default().data(&data).max(1000).style(style),
        area,
    );
}

fn draw_vitals(h: &HostState, model: &Model, theme: &Theme, frame: &mut Frame, area: Rect) {
    let lines = match (&h.conn, &h.metrics) {
        (HostConn::Down { reason, .. }, m) => vec![
            Line::from(Span::styled(
                format!(" ✖ {} is down: {reason}", h.name),
                theme.crit,
            )),
            match (&h.question, m, h.metrics_at) {
                (Some(HostQuestion::UnknownKey { fingerprint }), _, _) => Line::from(vec![
                    Span::styled(" press ", theme.warn),
                    Span::styled("A", theme.key),
                    Span::styled(
                        format!(" to review and trust the new key {fingerprint}"),
                        theme.warn,
                    ),
                ]),
                (Some(HostQuestion::Passphrase { path, wrong }), _, _) => Line::from(vec![
                    Span::styled(
                        if *wrong {
                            " wrong passphrase; press "
                        } else {
                            " press "
                        },
                        theme.warn,
                    ),
                    Span::styled("A", theme.key),
                    Span::styled(format!(" to enter the passphrase of {path}"), theme.warn),
                ]),
                (None, Some(_), Some(at)) => Line::from(Span::styled(
                    format!(
                        " showing the last data received, {} ago",
                        format::age(model.now.as_second() - at.as_second())
                    ),
                    theme.dim,
                )),
                _ => Line::from(Span::styled(
                    " no data received from this host yet",
                    theme.dim,
                )),
            },
        ],
        (_, None) => vec![Line::from(Span::styled(
            " waiting for the first sample…",
            theme.dim,
        ))],
        (_, Some(m)) => {
            let cores: String = m
                .per_core
                .iter()
                .map(|c| format::sparkline(&[*c], 1, 100.0))
                .collect();
            let mut first = vec![
                Span::styled(" cores ", theme.dim),
                Span::styled(cores, theme.cpu),
                Span::styled("  mem ", theme.dim),
                Span::styled(
                    format!(
                        "{}/{}",
                        format::bytes(m.mem_used_bytes),
                        format::bytes(m.mem_total_bytes)
                    ),
                    theme.text,
                ),
                Span::styled("  swap ", theme.dim),
                Span::styled(
                    format!(
                        "{}/{}",
                        format::bytes(m.swap_used_bytes),
                        format::bytes(m.swap_total_bytes)
                    ),
                    theme.text,
                ),
                Span::styled("  load ", theme.dim),
                Span::styled(
                    format!("{:.2} {:.2} {:.2}", m.load[0], m.load[1], m.load[2]),
                    theme.text,
                ),
                Span::styled("  up ", theme.dim),
                Span::styled(format::age(m.uptime_secs as i64), theme.text),
            ];
            if let Some(age) = h.stale_secs(model.now) {
                first.push(Span::styled(
                    format!("  stale {}", format::age(age)),
                    theme.warn,
                ));
            }
            let mut second = vec![Span::styled(" disks", theme.dim)];
            for d in &m.disks {
                let p = percent(d.used_bytes, d.total_bytes);
                let style = if p >= 90.0 {
                    theme.crit
                } else if p >= 80.0 {
                    theme.warn
                } else {
                    theme.text
                };
                second.push(Span::styled(format!(" {} ", d.mount), theme.dim));
                second.push(Span::styled(
                    format!("{} of {}", format::percent(p), format::bytes(d.total_bytes)),
                    style,
                ));
            }
            vec![Line::from(first), Line::from(second)]
        }
    };
    frame.render_widget(Paragraph::new(lines), area);
}

fn draw_containers(h: &HostState, model: &Model, theme: &Theme, frame: &mut Frame, area: Rect) {
    let groups = h.groups(&model.filter);
    let projects = groups.iter().filter(|g| g.project.is_some()).count();
    let title = format!(
        " Containers {}/{} running · {projects} compose project{} ",
        h.running(),
        h.containers.len(),
        if projects == 1 { "" } else { "s" }
    );
    let inner = list_block(model, theme, frame, area, title);

    if let DockerState::Unavailable { reason } = &h.docker {
        let lines = vec![
            Line::from(Span::styled(
                " Docker is not reachable on this host:",
                theme.warn,
            )),
            Line::from(Span::styled(format!(" {reason}"), theme.text)),
            Line::from(Span::styled(
                " Host metrics above still work; containers appear once the socket answers.",
                theme.dim,
            )),
        ];
        frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), inner);
        return;
    }
    if h.containers.is_empty() {
        let text = match (&h.conn, &h.docker) {
            (HostConn::Down { .. }, _) => " no container data: the host is down",
            (_, DockerState::Unknown) => " asking Docker…",
            _ => " no containers on this host",
        };
        frame.render_widget(Paragraph::new(Span::styled(text, theme.dim)), inner);
        return;
    }

    let w = inner.width as usize;
    let wide = w >= 120;
    let name_w = if wide { 28 } else { 17 };
    let fixed = name_w + 11 + 9 + 3 + 5 + 6 + 6 + 7 + if wide { 26 } else { 0 };
    let image_w = w.saturating_sub(fixed).max(8);
    let mut header = vec![
        ("NAME".to_string(), name_w, theme.header),
        ("STATE".into(), 11, theme.header),
        ("HEALTH".into(), 9, theme.header),
        ("RST".into(), 3, theme.header),
        ("UP".into(), 5, theme.header),
        ("CPU".into(), 6, theme.header),
        ("MEM".into(), 6, theme.header),
        ("IMAGE".into(), image_w, theme.header),
    ];
    if wide {
        header.push(("PORTS".into(), 25, theme.header));
    }

    // Rows: group headers interleaved with containers; the cursor counts containers only.
    let mut rows: Vec<(Option<usize>, Line<'static>)> = Vec::new();
    let mut ordinal = 0usize;
    for g in &groups {
        let running = g
            .containers
            .iter()
            .filter(|&&i| h.containers[i].is_running())
            .count();
        let name = g
            .project
            .clone()
            .unwrap_or_else(|| "(not in a compose project)".into());
        let mut spans = vec![
            Span::styled(format!("▾ {name} "), theme.group),
            Span::styled(
                format!("{running}/{} running", g.containers.len()),
                theme.dim,
            ),
        ];
        // The cursor on a project's row: Enter opens its logs together.
        let on_header = model.host_header && ordinal == model.host_cursor;
        if on_header {
            if g.project.is_some() {
                spans.push(Span::styled("  ⏎ its logs together", theme.dim));
            }
            select_row(&mut spans, w, theme);
        }
        rows.push((on_header.then_some(usize::MAX), Line::from(spans)));
        for &i in &g.containers {
            let c = &h.containers[i];
            let mut spans = container_cells(c, model, theme, name_w, image_w, wide);
            if ordinal == model.host_cursor && !model.host_header {
                select_row(&mut spans, w, theme);
            }
            rows.push((Some(ordinal), Line::from(spans)));
            ordinal += 1;
        }
    }
    let body_rows = inner.height.saturating_sub(1) as usize;
    let cursor_row = rows
        .iter()
        .position(|(o, _)| *o == Some(model.host_cursor) || *o == Some(usize::MAX))
        .unwrap_or(0);
    let offset = cursor_row.saturating_sub(body_rows.saturating_sub(1));
    let mut lines = vec![Line::from(cells(&header))];
    lines.extend(
        rows.into_iter()
            .skip(offset)
            .take(body_rows)
            .map(|(_, l)| l),
    );
    if groups.is_empty() {
        lines.push(Line::from(Span::styled(
            "  no container matches the filter",
            theme.dim,
        )));
    }
    frame.render_widget(Paragraph::new(lines), inner);
}

fn container_cells(
    c: &Container,
    model: &Model,
    theme: &Theme,
    name_w: usize,
    image_w: usize,
    wide: bool,
) -> Vec<Span<'static>> {
    let state_style = match c.state {
        RunState::Running => theme.ok,
        RunState::Restarting | RunState::Dead => theme.crit,
        RunState::Exited { code: Some(code) } if code != 0 => theme.crit,
        _ => theme.dim,
    };
    let (health, health_style) = match c.health {
        Some(Health::Healthy) => ("healthy", theme.ok),
        Some(Health::Unhealthy) => ("unhealthy", theme.crit),
        Some(Health::Starting) => ("starting", theme.warn),
        None => ("–", theme.dim),
    };
    let restarts = c.restart_count.map_or("–".into(), |r| r.to_string());
    let restart_style = if c.restart_count.unwrap_or(0) > 0 {
        theme.warn
    } else {
        theme.dim
    };
    let up = match (&c.state, c.started_at) {
        (RunState::Running, Some(t)) => format::age(model.now.as_second() - t.as_second()),
        _ => "–".into(),
    };
    let cpu = c.cpu_percent.map_or("–".into(), format::percent);
    let mem = c.mem_bytes.map_or("–".into(), format::bytes);
    let mut parts = vec![
        (format!("  {}", c.display_name()), name_w, theme.text),
        (c.state.label(), 11, state_style),
        (health.to_string(), 9, health_style),
        (restarts, 3, restart_style),
        (up, 5, theme.text),
        (cpu, 6, theme.cpu),
        (mem, 6, theme.mem),
        (c.image.clone(), image_w, theme.dim),
    ];
    if wide {
        parts.push((c.ports.join(" "), 25, theme.dim));
    }
    cells(&parts)
}
