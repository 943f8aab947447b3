//! The container view's tabs beyond the log: the tab bar, graphs, processes, environment,
//! mounts and ports, labels, health and state. Everything shown was sanitised and bounded
//! where it was read; long values are cut to the screen here.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::host::{graph, spark, titled};
use crate::model::detail::{ContainerDetail, DetailPane, MASK, Tab};
use crate::model::series::Series;
use crate::model::{Container, HostState, Model};
use crate::ui::{Theme, cells, format};

/// The tab bar: each tab's digit and name, the open one highlighted.
pub fn bar(open: Tab, theme: &Theme, frame: &mut Frame, area: Rect) {
    let wide = area.width >= 100;
    let mut spans = Vec::new();
    for (i, tab) in Tab::ALL.iter().enumerate() {
        let (long, short) = tab.names();
        let name = if wide { long } else { short };
        spans.push(Span::styled(format!(" {}", i + 1), theme.key));
        let style = if *tab == open {
            theme.selected
        } else {
            theme.dim
        };
        spans.push(Span::styled(format!(" {name} "), style));
    }
    if wide {
        spans.push(Span::styled("   [ ] switch", theme.dim));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

/// The open tab's body (any tab but the log).
pub fn draw(
    model: &Model,
    h: &HostState,
    c: Option<&Container>,
    pane: &DetailPane,
    theme: &Theme,
    frame: &mut Frame,
    area: Rect,
) {
    if pane.tab == Tab::Graphs {
        draw_graphs(h, c, pane, theme, frame, area);
        return;
    }
    let (name, _) = pane.tab.names();
    let mut title = format!(" {name} ");
    if let Some(at) = pane.detail_at {
        title.push_str(&format!(
            "· read {} ago ",
            format::age(model.now.as_second() - at.as_second())
        ));
    }
    let block = titled(theme, &title);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let Some(d) = &pane.detail else {
        let text = match &pane.error {
            Some(e) => Span::styled(format!(" cannot read this container: {e}"), theme.warn),
            None => Span::styled(" asking Docker…", theme.dim),
        };
        frame.render_widget(Paragraph::new(text), inner);
        return;
    };
    let w = inner.width as usize;
    let mut lines: Vec<Line> = Vec::new();
    if let Some(e) = &pane.error {
        lines.push(Line::from(Span::styled(
            format!(" showing the last answer; the newest ask failed: {e}"),
            theme.warn,
        )));
    }
    let body = match pane.tab {
        Tab::Processes => processes(d, theme, w),
        Tab::Env => env(d, pane.reveal, theme, w),
        Tab::Mounts => mounts(d, theme, w),
        Tab::Labels => labels(d, theme, w),
        Tab::State => state(model, d, theme, w),
        Tab::Logs | Tab::Graphs => Vec::new(),
    };
    // A heading line stays; the rest scrolls.
    let (head, rows) = match pane.tab {
        Tab::Processes | Tab::Env | Tab::Labels if !body.is_empty() => {
            let mut b = body;
            let first = b.remove(0);
            (Some(first), b)
        }
        _ => (None, body),
    };
    lines.extend(head);
    let mut room = (inner.height as usize).saturating_sub(lines.len());
    let more = rows.len() > room;
    if more {
        // The last line says where the view is in a list longer than the screen.
        room = room.saturating_sub(1);
    }
    let skip = pane.scroll.min(rows.len().saturating_sub(room));
    let total = rows.len();
    lines.extend(rows.into_iter().skip(skip).take(room));
    if more {
        let note = format!(
            " ↑↓ scroll · {}–{} of {total}",
            skip + 1,
            (skip + room).min(total)
        );
        lines.push(Line::from(Span::styled(format::fit(&note, w), theme.info)));
    }
    frame.render_widget(Paragraph::new(lines), inner);
}

fn dim_line(text: &str, theme: &Theme) -> Line<'static> {
    Line::from(Span::styled(format!(" {text}"), theme.dim))
}

/// `key  value` rows with the keys in one column.
fn pairs(rows: &[(String, String, Style)], theme: &Theme, w: usize) -> Vec<Line<'static>> {
    let key_w = rows
        .iter()
        .map(|(k, _, _)| k.chars().count())
        .max()
        .unwrap_or(0)
        .min(w / 2)
        .max(1);
    rows.iter()
        .map(|(k, v, style)| {
            let rest = w.saturating_sub(key_w + 3);
            Line::from(vec![
                Span::styled(format!(" {:<key_w$}", format::fit(k, key_w)), theme.header),
                Span::raw("  "),
                Span::styled(format::fit(v, rest), *style),
            ])
        })
        .collect()
}

fn processes(d: &ContainerDetail, theme: &Theme, w: usize) -> Vec<Line<'static>> {
    let p = &d.processes;
    if let Some(e) = &p.error {
        return vec![dim_line(&format!("no processes: {e}"), theme)];
    }
    if p.titles.is_empty() {
        return vec![dim_line("Docker listed no processes", theme)];
    }
    // Every column as wide as its widest cell (at most 12), the last takes the rest.
    let n = p.titles.len();
    let mut widths: Vec<usize> = (0..n)
        .map(|i| {
            std::iter::once(&p.titles[i])
                .chain(p.rows.iter().filter_map(|r| r.get(i)))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(1)
                .min(12)
        })
        .collect();
    let used: usize = widths[..n - 1].iter().map(|x| x + 1).sum::<usize>() + 1;
    widths[n - 1] = w.saturating_sub(used).max(8);
    let row = |cols: &[String], style: Style| {
        let parts: Vec<(String, usize, Style)> = (0..n)
            .map(|i| (cols.get(i).cloned().unwrap_or_default(), widths[i], style))
            .collect();
        let mut spans = vec![Span::raw(" ")];
        spans.extend(cells(&parts));
        Line::from(spans)
    };
    let mut title = p.titles.clone();
    if p.total > p.rows.len() {
        let last = title.len() - 1;
        title[last] = format!("{} ({} of {} shown)", title[last], p.rows.len(), p.total);
    }
    let mut lines = vec![row(&title, theme.header)];
    lines.extend(p.rows.iter().map(|r| row(r, theme.text)));
    lines
}

fn env(d: &ContainerDetail, reveal: bool, theme: &Theme, w: usize) -> Vec<Line<'static>> {
    let masked = d.env.iter().filter(|e| e.secret).count();
    let mut head = format!("{} variables", d.env_total);
    if d.env_total > d.env.len() {
        head.push_str(&format!(", the first {} shown", d.env.len()));
    }
    if masked > 0 {
        head.push_str(&if reveal {
            format!(" · {masked} secret shown: v masks")
        } else {
            format!(" · {masked} secret masked: v shows")
        });
    }
    let rows: Vec<(String, String, Style)> = d
        .env
        .iter()
        .map(|e| {
            if e.secret && !reveal {
                (e.key.clone(), MASK.to_string(), theme.dim)
            } else if e.secret {
                (e.key.clone(), e.value.clone(), theme.warn)
            } else {
                (e.key.clone(), e.value.clone(), theme.text)
            }
        })
        .collect();
    let mut lines = vec![dim_line(&head, theme)];
    lines.extend(pairs(&rows, theme, w));
    lines
}

fn mounts(d: &ContainerDetail, theme: &Theme, w: usize) -> Vec<Line<'static>> {
    let mut lines = vec![Line::from(Span::styled(
        format!(" Mounts ({})", d.mounts.len()),
        theme.group,
    ))];
    if d.mounts.is_empty() {
        lines.push(dim_line("none", theme));
    }
    for m in &d.mounts {
        let mode = if m.read_only { "ro" } else { "rw" };
        let text = format!("{} → {}", m.source, m.destination);
        lines.push(Line::from(vec![
            Span::styled(format!(" {:<6} ", format::fit(&m.kind, 6)), theme.header),
            Span::styled(format!("{mode} "), theme.dim),
            Span::styled(format::fit(&text, w.saturating_sub(11)), theme.text),
        ]));
    }
    lines.push(Line::from(Span::styled(
        format!(" Ports ({})", d.ports.len()),
        theme.group,
    )));
    if d.ports.is_empty() {
        lines.push(dim_line("none", theme));
    }
    for p in &d.ports {
        lines.push(Line::from(Span::styled(
            format::fit(&format!(" {p}"), w),
            theme.text,
        )));
    }
    lines
}

fn labels(d: &ContainerDetail, theme: &Theme, w: usize) -> Vec<Line<'static>> {
    let mut head = format!("{} labels", d.labels_total);
    if d.labels_total > d.labels.len() {
        head.push_str(&format!(", the first {} shown", d.labels.len()));
    }
    let rows: Vec<(String, String, Style)> = d
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), v.clone(), theme.text))
        .collect();
    let mut lines = vec![dim_line(&head, theme)];
    lines.extend(pairs(&rows, theme, w));
    lines
}

fn when(model: &Model, t: Option<jiff::Timestamp>) -> String {
    match t {
        Some(t) => format!(
            "{} ({} ago)",
            t.strftime("%Y-%m-%d %H:%M:%S UTC"),
            format::age(model.now.as_second() - t.as_second())
        ),
        None => "–".into(),
    }
}

fn state(model: &Model, d: &ContainerDetail, theme: &Theme, w: usize) -> Vec<Line<'static>> {
    let mut rows: Vec<(String, String, Style)> = Vec::new();
    let status_style = if d.running { theme.ok } else { theme.crit };
    rows.push(("state".into(), d.status.clone(), status_style));
    if !d.running {
        let code = d.exit_code.map_or("–".into(), |c| c.to_string());
        let style = if d.exit_code.unwrap_or(0) == 0 {
            theme.text
        } else {
            theme.crit
        };
        rows.push(("exit code".into(), code, style));
        rows.push(("finished".into(), when(model, d.finished_at), theme.text));
    }
    rows.push(("started".into(), when(model, d.started_at), theme.text));
    if let Some(e) = &d.error {
        rows.push(("error".into(), e.clone(), theme.crit));
    }
    rows.push((
        "OOM-killed".into(),
        if d.oom_killed {
            "yes: the kernel killed it for memory".into()
        } else {
            "no".into()
        },
        if d.oom_killed { theme.crit } else { theme.text },
    ));
    // Docker keeps only whether the last exit was one; the timeline counts them.
    let shown = match &model.view {
        crate::model::View::Container { id, .. } => Some(id.as_str()),
        _ => None,
    };
    let kills = model
        .timeline
        .iter()
        .filter(|e| e.kind == "oom" && e.id.is_some() && e.id.as_deref() == shown)
        .count();
    rows.push((
        "OOM kills".into(),
        format!("{kills} on its timeline (t)"),
        if kills > 0 { theme.crit } else { theme.text },
    ));
    rows.push((
        "memory limit".into(),
        d.mem_limit
            .map_or("none (the host's memory)".into(), format::bytes),
        theme.text,
    ));
    rows.push((
        "restart".into(),
        format!(
            "{} · restarted {}",
            d.restart_policy,
            d.restart_count.map_or("–".into(), |n| format!("{n}×"))
        ),
        theme.text,
    ));
    rows.push(("command".into(), d.command.clone(), theme.text));
    let mut lines = pairs(&rows, theme, w);
    match &d.health {
        None => lines.push(dim_line("no health check", theme)),
        Some(h) => {
            let style = match h.status.as_str() {
                "healthy" => theme.ok,
                "unhealthy" => theme.crit,
                _ => theme.warn,
            };
            lines.push(Line::from(vec![
                Span::styled(" Health ", theme.group),
                Span::styled(h.status.clone(), style),
                Span::styled(
                    format!(
                        " · failing streak {} · last {} checks",
                        h.failing_streak.unwrap_or(0),
                        h.runs.len()
                    ),
                    theme.dim,
                ),
            ]));
            for run in h.runs.iter().rev() {
                let code_style = if run.exit_code == Some(0) {
                    theme.ok
                } else {
                    theme.crit
                };
                let at = run
                    .start
                    .map_or("–".into(), |t| t.strftime("%H:%M:%S").to_string());
                let first = run.output.first().cloned().unwrap_or_default();
                lines.push(Line::from(vec![
                    Span::styled(format!(" {at} "), theme.dim),
                    Span::styled(
                        format!(
                            "exit {:<3} ",
                            run.exit_code.map_or("–".into(), |c| c.to_string())
                        ),
                        code_style,
                    ),
                    Span::styled(format::fit(&first, w.saturating_sub(19)), theme.text),
                ]));
                for more in run.output.iter().skip(1) {
                    lines.push(Line::from(Span::styled(
                        format::fit(&format!("{:18}{more}", ""), w),
                        theme.text,
                    )));
                }
            }
        }
    }
    lines
}

/// CPU and memory from the host's samples (since opsdeck started); network and block I/O
/// from Docker's stats (since this tab opened).
fn draw_graphs(
    h: &HostState,
    c: Option<&Container>,
    pane: &DetailPane,
    theme: &Theme,
    frame: &mut Frame,
    area: Rect,
) {
    let [top, bottom] = Layout::vertical([Constraint::Ratio(1, 2); 2]).areas(area);
    let [cpu_a, mem_a] = Layout::horizontal([Constraint::Ratio(1, 2); 2]).areas(top);
    let [net_a, blk_a] = Layout::horizontal([Constraint::Ratio(1, 2); 2]).areas(bottom);
    let empty = Series::default();
    let usage = h.usage.get(&pane.id);
    let (cpu, mem) = usage.map_or((&empty, &empty), |u| (&u.cpu, &u.mem));

    let cpu_now = c.and_then(|c| c.cpu_percent);
    let cpu_title = format!(
        " CPU {} · 10 min ",
        cpu_now.map_or("–".into(), format::percent)
    );
    // Percent of one core: a container busy on two cores reaches 200%.
    let cpu_max = cpu.max().max(100.0);
    graph(
        frame,
        cpu_a,
        theme,
        &cpu_title,
        cpu,
        Some(cpu_max),
        theme.cpu,
    );

    let limit = pane.detail.as_ref().and_then(|d| d.mem_limit);
    let oom = pane.detail.as_ref().is_some_and(|d| d.oom_killed);
    let mem_now = c.and_then(|c| c.mem_bytes);
    let mut mem_title = format!(" MEM {}", mem_now.map_or("–".into(), format::bytes));
    match limit {
        Some(l) => mem_title.push_str(&format!(" of {} limit", format::bytes(l))),
        None => mem_title.push_str(" · no limit"),
    }
    if oom {
        mem_title.push_str(" · OOM-killed");
    }
    mem_title.push(' ');
    // Against the limit when there is one, else against its own peak.
    let mem_max = limit.map_or(mem.max(), |l| (l as f64).max(mem.max()));
    graph(
        frame,
        mem_a,
        theme,
        &mem_title,
        mem,
        Some(mem_max),
        theme.mem,
    );

    let io_graph = |frame: &mut Frame,
                    area: Rect,
                    name: &str,
                    (a, b): (&Series, &Series),
                    (la, lb): (&str, &str),
                    (sa, sb): (Style, Style)| {
        let title = match (a.last(), b.last()) {
            (Some(x), Some(y)) => {
                format!(" {name} {la}{} {lb}{} ", format::rate(x), format::rate(y))
            }
            _ => format!(" {name} "),
        };
        let block = titled(theme, &title);
        let inner = block.inner(area);
        frame.render_widget(block, area);
        if a.is_empty() {
            let text = if pane.error.is_some() && pane.detail.is_none() {
                " no answer from Docker"
            } else {
                " from Docker's stats, from when this tab opened…"
            };
            frame.render_widget(Paragraph::new(Span::styled(text, theme.dim)), inner);
            return;
        }
        let scale = a.max().max(b.max()).max(1024.0);
        let [ra, rb] = Layout::vertical([Constraint::Ratio(1, 2); 2]).areas(inner);
        spark(frame, ra, a, scale, sa);
        spark(frame, rb, b, scale, sb);
    };
    io_graph(
        frame,
        net_a,
        "NET",
        (&pane.net_rx, &pane.net_tx),
        ("↓", "↑"),
        (theme.net_rx, theme.net_tx),
    );
    io_graph(
        frame,
        blk_a,
        "BLOCK I/O",
        (&pane.blk_read, &pane.blk_write),
        ("r ", "w "),
        (theme.net_rx, theme.net_tx),
    );
}
