//! The multi-deploy's confirmation: every marked host in the order they will run, with
//! the stack and how many steps, production hosts called out; their names typed when
//! there are any.

use ratatui::text::{Line, Span};

use crate::model::Model;
use crate::model::multi::{self, Batch};
use crate::ui::Theme;

pub fn confirm_lines(
    model: &Model,
    batch: &Batch,
    typed: Option<&String>,
    theme: &Theme,
) -> Vec<Line<'static>> {
    let name = |host: usize| model.hosts.get(host).map_or("?", |h| h.name.as_str());
    let production = |host: usize| model.hosts.get(host).is_some_and(|h| h.production);
    let n = batch.hosts.len();
    let mut lines = Vec::new();
    if batch.hosts.iter().any(|b| production(b.host)) {
        lines.push(Line::from(Span::styled(
            " PRODUCTION HOSTS AMONG THEM ",
            theme.banner,
        )));
    }
    lines.push(Line::from(Span::styled(
        format!("Deploy {n} hosts, one at a time, in this order?"),
        theme.title,
    )));
    lines.push(Line::from(""));
    let width = batch
        .hosts
        .iter()
        .map(|b| name(b.host).chars().count())
        .max()
        .unwrap_or(0);
    // the question and its answer stay on screen however many hosts are marked
    const LISTED: usize = 8;
    for (i, b) in batch.hosts.iter().enumerate().take(LISTED) {
        let steps = b.steps.len() + 1;
        let mut spans = vec![
            Span::styled(format!(" {:>2}. ", i + 1), theme.text),
            Span::styled(format!("{:<width$}", name(b.host)), theme.title),
            Span::styled(format!("  {} · {steps} steps", b.stack), theme.text),
        ];
        if production(b.host) {
            spans.push(Span::styled("  production", theme.warn));
        }
        lines.push(Line::from(spans));
    }
    if n > LISTED {
        lines.push(Line::from(Span::styled(
            format!("  … and {} more, in inventory order", n - LISTED),
            theme.text,
        )));
    }
    lines.push(Line::from(""));
    lines.push(Line::from(Span::styled(
        "Each host's deploy starts when the one before it has ended well; the first that fails stops the run, and the hosts after it are not started.",
        theme.dim,
    )));
    lines.push(Line::from(""));
    match typed {
        Some(text) => {
            let word = multi::production_word(model, batch);
            lines.push(Line::from(vec![
                Span::styled(format!(" Type {word} and press ⏎: "), theme.warn),
                Span::styled(text.clone(), theme.text),
                Span::styled("█", theme.dim),
            ]));
            lines.push(Line::from(vec![
                Span::styled(" Esc ", theme.key),
                Span::styled("cancel", theme.text),
            ]));
        }
        None => lines.push(Line::from(vec![
            Span::styled(" y ", theme.key),
            Span::styled(format!("deploy {n} hosts   "), theme.text),
            Span::styled(" n Esc ", theme.key),
            Span::styled("cancel", theme.text),
        ])),
    }
    lines
}
