//! One job: what it is, step i/n with a progress bar and the time it has taken, every
//! step's state, and its output as it streams (stderr marked).

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};

use crate::model::job::{Job, LineKind, StepState};
use crate::model::{JobRef, Model};
use crate::ui::{Theme, format};

/// `1m05s`, `42s`: how long a job or a step has run.
pub fn duration(secs: i64) -> String {
    let s = secs.max(0);
    if s < 60 {
        format!("{s}s")
    } else if s < 3600 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    }
}

fn outcome_span(job: &Job, theme: &Theme) -> Span<'static> {
    match &job.outcome {
        None if job.cancelling => Span::styled("cancelling…", theme.warn),
        None => Span::styled("running", theme.info),
        Some(Ok(_)) => Span::styled("done", theme.ok),
        Some(Err(e)) if e.starts_with("cancelled") => Span::styled("CANCELLED", theme.warn),
        Some(Err(e)) if e.starts_with("refused") => Span::styled("REFUSED", theme.crit),
        Some(Err(_)) => Span::styled("FAILED", theme.crit),
    }
}

/// The step list's glyph and style for a state.
fn step_mark(state: &StepState, theme: &Theme) -> (String, Style) {
    match state {
        StepState::Pending => ("·".into(), theme.dim),
        StepState::Running => ("▶".into(), theme.info),
        StepState::Done { .. } => ("✔".into(), theme.ok),
        StepState::Failed { .. } => ("✖".into(), theme.crit),
        StepState::Skipped => ("–".into(), theme.dim),
    }
}

pub fn draw(model: &Model, r: JobRef, theme: &Theme, frame: &mut Frame, area: Rect) {
    let Some(job) = model.job(r) else {
        let text = " no job here: it may have been replaced by a newer one";
        frame.render_widget(Paragraph::new(Span::styled(text, theme.dim)), area);
        return;
    };
    let n = job.steps.len();
    // Steps get what they need up to a third of the screen; output takes the rest.
    let max_steps = (area.height / 3).max(3) as usize;
    let shown_steps = n.min(max_steps);
    let [head, bar, steps, out] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Length(1),
        Constraint::Length(shown_steps as u16),
        Constraint::Min(3),
    ])
    .areas(area);
    draw_head(job, theme, frame, head);
    draw_bar(model, job, theme, frame, bar);
    draw_steps(job, shown_steps, theme, frame, steps);
    draw_output(model, job, theme, frame, out);
}

fn draw_head(job: &Job, theme: &Theme, frame: &mut Frame, area: Rect) {
    let mut first = vec![
        Span::styled(format!(" {}", job.action), theme.title),
        Span::styled(" on ", theme.dim),
        Span::styled(job.host.clone(), theme.title),
    ];
    if !job.stack.is_empty() && job.stack != job.host {
        first.push(Span::styled(" stack ", theme.dim));
        first.push(Span::styled(job.stack.clone(), theme.text));
    }
    first.push(Span::styled(" · ", theme.dim));
    first.push(outcome_span(job, theme));
    let started = job.started.strftime("%Y-%m-%d %H:%M:%S UTC").to_string();
    let who = if job.user.is_empty() {
        String::new()
    } else {
        format!(" by {}", job.user)
    };
    let second = match &job.outcome {
        Some(Ok(summary)) => Line::from(Span::styled(format!(" {summary}"), theme.ok)),
        Some(Err(why)) => Line::from(Span::styled(format!(" {why}"), theme.crit)),
        None => Line::from(Span::styled(format!(" started {started}{who}"), theme.dim)),
    };
    let mut lines = vec![Line::from(first), second];
    if job.outcome.is_some() && area.height > 2 {
        lines.push(Line::from(Span::styled(
            format!(" started {started}{who}"),
            theme.dim,
        )));
    }
    frame.render_widget(Paragraph::new(lines), area);
}

fn draw_bar(model: &Model, job: &Job, theme: &Theme, frame: &mut Frame, area: Rect) {
    let n = job.steps.len().max(1);
    let done = job.finished_steps();
    let label = match job.current() {
        Some(i) if job.running() => format!(" step {}/{n} ", i + 1),
        _ => format!(" {done}/{n} steps "),
    };
    let mut tail = format!(" {}", duration(job.elapsed_secs(model.now)));
    if job.bytes > 0 {
        tail.push_str(&format!(" · {} written", format::bytes(job.bytes)));
    }
    let width = area.width as usize;
    let bar_w = width.saturating_sub(label.chars().count() + tail.chars().count() + 1);
    let filled = (bar_w * done).checked_div(n).unwrap_or(0);
    let style = match &job.outcome {
        Some(Err(_)) => theme.crit,
        Some(Ok(_)) => theme.ok,
        None => theme.info,
    };
    let line = Line::from(vec![
        Span::styled(label, theme.text),
        Span::styled("━".repeat(filled), style),
        Span::styled("─".repeat(bar_w - filled), theme.dim),
        Span::styled(tail, theme.text),
    ]);
    frame.render_widget(Paragraph::new(line), area);
}

fn draw_steps(job: &Job, shown: usize, theme: &Theme, frame: &mut Frame, area: Rect) {
    // Keep the running step in sight when there are more steps than rows.
    let current = job.current().unwrap_or(0);
    let first = current
        .saturating_sub(shown.saturating_sub(1) / 2)
        .min(job.steps.len().saturating_sub(shown));
    let w = area.width as usize;
    let lines: Vec<Line> = job
        .steps
        .iter()
        .enumerate()
        .skip(first)
        .take(shown)
        .map(|(i, s)| {
            let (mark, style) = step_mark(&s.state, theme);
            let info = match &s.state {
                StepState::Done { exit, millis } | StepState::Failed { exit, millis } => {
                    let exit = match exit {
                        Some(0) | None => String::new(),
                        Some(e) => format!("exit {e} · "),
                    };
                    format!("{exit}{}", duration((*millis / 1000) as i64))
                }
                StepState::Running => "running".into(),
                StepState::Skipped => "skipped".into(),
                StepState::Pending => String::new(),
            };
            let label_w = w.saturating_sub(info.chars().count() + 9);
            let label = format::fit(&s.label, label_w);
            let pad = label_w.saturating_sub(label.chars().count());
            let label_style = if s.state == StepState::Running {
                theme.title
            } else {
                theme.text
            };
            Line::from(vec![
                Span::styled(format!(" {mark} "), style),
                Span::styled(format!("{:>2}. ", i + 1), theme.dim),
                Span::styled(label, label_style),
                Span::raw(" ".repeat(pad + 1)),
                Span::styled(info, style),
            ])
        })
        .collect();
    frame.render_widget(Paragraph::new(lines), area);
}

fn draw_output(model: &Model, job: &Job, theme: &Theme, frame: &mut Frame, area: Rect) {
    let mut title = vec![Span::styled(" output ", theme.title)];
    if model.job_scroll > 0 {
        title.push(Span::styled(
            format!("· PAUSED +{} below ", model.job_scroll),
            theme.banner,
        ));
    } else if job.running() {
        title.push(Span::styled("· following ", theme.ok));
    }
    let count = job.output.len() as u64 + job.dropped;
    title.push(Span::styled(format!("· {count} lines "), theme.dim));
    if job.dropped > 0 {
        title.push(Span::styled(
            format!("· first {} not kept ", job.dropped),
            theme.warn,
        ));
    }
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme.border)
        .title(Line::from(title));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let height = inner.height as usize;
    let end = job.output.len().saturating_sub(model.job_scroll as usize);
    let start = end.saturating_sub(height);
    let lines: Vec<Line> = job
        .output
        .range(start..end)
        .map(|l| {
            let (mark, style) = match l.kind {
                LineKind::Out => ("  ", theme.text),
                LineKind::Err => ("E ", theme.stderr),
                LineKind::Info => ("» ", theme.info),
            };
            let step = l.step.map_or("  ".to_string(), |s| format!("{:>2}", s + 1));
            Line::from(vec![
                Span::styled(step, theme.dim),
                Span::styled(format!(" {mark}"), style),
                Span::styled(l.text.clone(), style),
            ])
        })
        .collect();
    if lines.is_empty() {
        let text = if job.running() {
            " waiting for output…"
        } else {
            " no output"
        };
        frame.render_widget(Paragraph::new(Span::styled(text, theme.dim)), inner);
        return;
    }
    frame.render_widget(Paragraph::new(lines), inner);
}
