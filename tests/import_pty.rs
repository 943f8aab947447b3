//! The first-run import for real: the binary in a pseudo-terminal, with no inventory
//! anywhere and a ~/.ssh/config naming the three lab hosts and the down one, offers
//! "press I to import 4 hosts"; `I` looks at them over SSH, writes
//! ~/.config/opsdeck/hosts.toml (the down host commented out) and the console starts again
//! over it: the fleet of the three lab hosts, watched.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;
mod support;

use std::time::Duration;

use common::lab::Lab;
use support::tui::Tui;

#[test]
fn first_run_offers_the_ssh_config_hosts_and_i_imports_and_watches_them() {
    let Some(lab) = Lab::get() else { return };
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(home.path().join(".ssh")).unwrap();
    std::fs::write(home.path().join(".ssh/config"), lab.ssh_config()).unwrap();
    let env: Vec<(&str, Option<&str>)> = lab
        .env
        .iter()
        .filter(|(k, _)| k != "OPSDECK_CONFIG")
        .map(|(k, v)| (k.as_str(), Some(v.as_str())))
        .collect();
    let mut tui = Tui::start_sized(home.path(), &[], &env, 100, 30);
    tui.wait_for("the offer", |s| {
        s.contains("No inventory yet: press I to import 4 hosts from ~/.ssh/config")
    });
    let written = home.path().join("config/opsdeck/hosts.toml");
    assert!(!written.exists());
    tui.send("I");
    let screen = tui.wait_for_within(Duration::from_secs(90), "the imported fleet", |s| {
        s.contains("course-supporter")
            && s.contains("lila")
            && s.contains("duckdb-app")
            && s.contains("3/3 hosts up")
    });
    assert!(!screen.contains("No inventory yet"), "{screen}");
    let text = std::fs::read_to_string(&written).unwrap();
    assert!(text.contains("# [[host]]\n# name = \"down\""), "{text}");
    assert!(text.contains("project = \"lila\""), "{text}");
    // The console now watches the new inventory: help names it.
    tui.send("?");
    tui.wait_for("help naming the inventory", |s| {
        s.contains("config/opsdeck/hosts.toml")
    });
    tui.send("q");
    tui.quit_ok();
}
