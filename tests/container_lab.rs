//! The container view against the lab, in a real pseudo-terminal: a container in a busy
//! loop draws a CPU graph, one that allocates draws a rising memory figure, a database's
//! password is masked until `v`, and a stopped container shows its exit code.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;
mod support;

use std::time::Duration;

use common::lab::{LILA, Lab};
use common::run::{TestContainer, borrowed, host_inventory, lab_env};
use expectrl::WaitStatus;
use support::tui::Tui;

/// Opens the container whose name contains `name` from lila's host view (filtered to it).
fn open(tui: &mut Tui, name: &str) {
    tui.send("/");
    tui.send(name);
    tui.send("\r");
    tui.wait_for(&format!("{name} alone in the list"), |s| {
        s.contains(&format!("filter \"{name}\"")) && s.lines().any(|l| l.contains(name))
    });
    tui.send("\r");
    tui.wait_for(&format!("{name}'s view"), |s| {
        s.contains(" 1 Logs ") && s.lines().next().is_some_and(|l| l.contains(name))
    });
}

/// From a container's view back to lila's whole list: Esc leaves the view, a second
/// Esc (once the host view is drawn: two at once read as one key) clears the filter.
fn back_to_the_list(tui: &mut Tui) {
    tui.send("\u{1b}");
    tui.wait_for("the host view", |s| s.contains("┌ Containers"));
    tui.send("\u{1b}");
    tui.wait_for("the unfiltered host view", |s| {
        s.contains("┌ Containers") && !s.contains("filter \"")
    });
}

/// The rows of the graph box whose top border starts with `title`: the text between its
/// left border and the next box's, by character column.
fn graph_box(screen: &str, title: &str) -> Vec<String> {
    let rows: Vec<Vec<char>> = screen.lines().map(|l| l.chars().collect()).collect();
    let needle: Vec<char> = format!("┌ {title}").chars().collect();
    for (y, row) in rows.iter().enumerate() {
        let Some(x) = (0..row.len()).find(|&x| row[x..].starts_with(&needle)) else {
            continue;
        };
        let right = (x + 1..row.len())
            .find(|&i| row[i] == '┐')
            .unwrap_or(row.len());
        return rows[y + 1..]
            .iter()
            .take_while(|r| r.get(x) == Some(&'│'))
            .map(|r| r[x + 1..right.min(r.len())].iter().collect())
            .collect();
    }
    Vec::new()
}

fn has_bars(rows: &[String]) -> bool {
    rows.iter()
        .any(|r| r.chars().any(|c| ('▁'..='█').contains(&c)))
}

/// The figure after `label` in a graph's title (`CPU 97%`, `MEM 41M`), as a number of
/// percent or bytes.
fn figure(screen: &str, label: &str) -> Option<f64> {
    let at = screen.find(&format!("┌ {label} "))?;
    let word = screen[at..].split_whitespace().nth(2)?;
    let (num, unit) = word.split_at(word.find(|c: char| !(c.is_ascii_digit() || c == '.'))?);
    let n: f64 = num.parse().ok()?;
    let scale = match unit {
        "%" | "B" => 1.0,
        "K" => 1024.0,
        "M" => 1024.0 * 1024.0,
        "G" => 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    Some(n * scale)
}

#[test]
fn graphs_follow_a_busy_loop_and_a_growing_heap() {
    let Some(lab) = Lab::get() else { return };
    let busy = TestContainer::run(lab, LILA, "opsdeck-busy", "while :; do :; done");
    let dir = tempfile::tempdir().unwrap();
    let config = host_inventory(dir.path(), lab, &LILA, "");
    let env = lab_env(lab, &config);
    let mut tui = Tui::start_sized(dir.path(), &[], &borrowed(&env), 120, 36);
    tui.wait_for("lila's containers", |s| s.contains("opsdeck-busy"));

    open(&mut tui, "opsdeck-busy");
    tui.send("2");
    let screen = tui.wait_for("a busy CPU graph", |s| {
        figure(s, "CPU").is_some_and(|p| p >= 30.0) && has_bars(&graph_box(s, "CPU"))
    });
    assert!(screen.contains(" Graphs "), "{screen}");
    drop(busy);

    back_to_the_list(&mut tui);
    // About 1 MB more every 0.2 s, up to 120 MB, then it holds it; started now, so the
    // view sees it grow.
    let grow = TestContainer::run_with(
        lab,
        LILA,
        "opsdeck-grow",
        &["--memory", "256m"],
        &[],
        "x=; i=0; while [ $i -lt 120 ]; do x=\"$x$(head -c 1000000 /dev/zero | tr '\\0' a)\"; i=$((i+1)); sleep 0.2; done; sleep 600",
    );
    tui.wait_for("the growing container listed", |s| {
        s.contains("opsdeck-grow")
    });
    open(&mut tui, "opsdeck-grow");
    tui.send("2");
    let first = tui.wait_for("a memory figure and its limit", |s| {
        figure(s, "MEM").is_some() && s.contains("of 256M limit")
    });
    let start = figure(&first, "MEM").unwrap();
    let screen = tui.wait_for_within(Duration::from_secs(60), "memory 20 MB higher", |s| {
        figure(s, "MEM").is_some_and(|m| m >= start + 20.0 * 1024.0 * 1024.0)
            && has_bars(&graph_box(s, "MEM"))
    });
    // the I/O graphs start from Docker's stats while the tab is open
    tui.wait_for("network rates", |s| s.contains("┌ NET ↓"));
    assert!(screen.contains("BLOCK I/O"), "{screen}");
    drop(grow);
    tui.send("q");
    assert!(matches!(tui.finish(), WaitStatus::Exited(_, 0)));
}

#[test]
fn env_masks_the_database_password_and_a_stopped_container_shows_its_exit() {
    let Some(lab) = Lab::get() else { return };
    let stopped = TestContainer::run(lab, LILA, "opsdeck-exit", "echo bye; exit 3");
    let dir = tempfile::tempdir().unwrap();
    let config = host_inventory(dir.path(), lab, &LILA, "");
    let env = lab_env(lab, &config);
    let mut tui = Tui::start_sized(dir.path(), &[], &borrowed(&env), 120, 36);
    tui.wait_for("lila's containers", |s| s.contains("opsdeck-exit"));

    open(&mut tui, "database");
    tui.send("4");
    let masked = tui.wait_for("the masked password", |s| {
        s.lines()
            .any(|l| l.contains("POSTGRES_PASSWORD") && l.contains("••••••"))
    });
    assert!(!masked.contains("lab-lila-db-secret"), "{masked}");
    assert!(masked.contains("PGDATA"), "{masked}");
    tui.send("v");
    tui.wait_for("the password shown", |s| {
        s.lines()
            .any(|l| l.contains("POSTGRES_PASSWORD") && l.contains("lab-lila-db-secret"))
    });
    // leaving masks it again
    tui.send("\u{1b}");
    tui.wait_for("the host view", |s| s.contains("Containers"));
    tui.send("\r");
    tui.send("4");
    let again = tui.wait_for("masked again", |s| {
        s.lines()
            .any(|l| l.contains("POSTGRES_PASSWORD") && l.contains("••••••"))
    });
    assert!(!again.contains("lab-lila-db-secret"), "{again}");
    // processes of a running container, as docker top lists them
    tui.send("3");
    tui.wait_for("postgres's processes", |s| {
        s.contains("PID") && s.contains("postgres")
    });

    back_to_the_list(&mut tui);
    open(&mut tui, "opsdeck-exit");
    tui.send("7");
    let screen = tui.wait_for("its exit code", |s| {
        s.lines()
            .any(|l| l.contains("exit code") && l.contains(" 3"))
            && s.contains("finished")
    });
    assert!(screen.contains("exited"), "{screen}");
    tui.send("3");
    tui.wait_for("no processes", |s| s.contains("no processes: not running"));
    drop(stopped);
    tui.send("q");
    assert!(matches!(tui.finish(), WaitStatus::Exited(_, 0)));
}
