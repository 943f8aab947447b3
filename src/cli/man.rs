//! `opsdeck man`: manual pages in roff, made by clap_mangen from the clap definition the
//! command line is parsed with, so they cannot drift from `--help`. `opsdeck(1)` lists the
//! subcommands and ends with where opsdeck finds its inventory and keeps its files; each
//! subcommand has a page of its own (`opsdeck-run(1)`, `opsdeck-config-check(1)`).

use std::io::Write;
use std::path::{Path, PathBuf};

use clap_mangen::Man;

/// What follows the generated sections of `opsdeck(1)`.
const MAIN_EXTRA: &str = r#".SH ENVIRONMENT
.TP
\fBOPSDECK_CONFIG\fR
The inventory, when no \fB\-\-config\fR is given.
.TP
\fBOPSDECK_LOG\fR
How much opsdeck logs to its own log file (\fBwarn\fR by default; \fBdebug\fR for more).
.TP
\fBNO_COLOR\fR
Set and not empty: no colours at all.
.TP
\fBXDG_CONFIG_HOME\fR, \fBXDG_STATE_HOME\fR
Where the inventory and opsdeck's state (audit log, log, timelines) are looked for.
.SH FILES
.TP
\fI./hosts.toml\fR, \fI~/.config/opsdeck/hosts.toml\fR
The inventory, when neither \fB\-\-config\fR nor \fBOPSDECK_CONFIG\fR names one (in this order).
Without any, opsdeck watches the machine it runs on.
.TP
\fI~/.local/state/opsdeck/audit.jsonl\fR
One JSON line per job, shell and backup.
.TP
\fI~/.local/state/opsdeck/opsdeck.log\fR
opsdeck's own log.
.SH "SHELL COMPLETION"
\fBopsdeck completions\fR \fISHELL\fR prints a script for bash, zsh, fish, elvish or
powershell that completes subcommands and flags, and host, stack, action and backup set
names from the inventory. In \fI~/.bashrc\fR:
.PP
.RS 4
.nf
source <(opsdeck completions bash)
.fi
.RE
"#;

/// The page of `opsdeck` (`path` empty) or of one of its subcommands (`["run"]`,
/// `["config", "check"]`).
pub fn page(cmd: clap::Command, path: &[String], out: &mut dyn Write) -> Result<(), String> {
    let cmd = prepare(cmd);
    let mut target = &cmd;
    for (i, word) in path.iter().enumerate() {
        target = target
            .get_subcommands()
            .filter(|s| !s.is_hide_set())
            .find(|s| s.get_name() == word)
            .ok_or_else(|| {
                let known: Vec<&str> = target
                    .get_subcommands()
                    .filter(|s| !s.is_hide_set())
                    .map(|s| s.get_name())
                    .collect();
                format!(
                    "no page for {:?}: {} has {}",
                    path[..=i].join(" "),
                    target.get_display_name().unwrap_or("opsdeck"),
                    known.join(", ")
                )
            })?;
    }
    render(target.clone(), path.is_empty(), out).map_err(|e| e.to_string())
}

/// Every page into `dir` (`opsdeck.1`, `opsdeck-run.1`, ...), created if need be; returns
/// the files written.
pub fn write_all(cmd: clap::Command, dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let cmd = prepare(cmd);
    let mut written = Vec::new();
    let mut todo = vec![(cmd, true)];
    while let Some((c, main)) = todo.pop() {
        todo.extend(
            c.get_subcommands()
                .filter(|s| !s.is_hide_set())
                .map(|s| (s.clone(), false)),
        );
        let name = format!("{}.1", c.get_display_name().unwrap_or(c.get_name()));
        let path = dir.join(name);
        let mut file = std::fs::File::create(&path)?;
        render(c, main, &mut file)?;
        file.flush()?;
        written.push(path);
    }
    written.sort();
    Ok(written)
}

/// Every visible page's name: `opsdeck`, `opsdeck-run`, `opsdeck-config-check`, ...
pub fn names(cmd: clap::Command) -> Vec<String> {
    let cmd = prepare(cmd);
    let mut out = Vec::new();
    let mut todo = vec![&cmd];
    while let Some(c) = todo.pop() {
        out.push(c.get_display_name().unwrap_or(c.get_name()).to_string());
        todo.extend(c.get_subcommands().filter(|s| !s.is_hide_set()));
    }
    out.sort();
    out
}

/// The command as the pages show it: no `help` subcommand (each page is the help), names
/// and display names (`opsdeck-run`) filled in.
fn prepare(cmd: clap::Command) -> clap::Command {
    let mut cmd = cmd.disable_help_subcommand(true);
    cmd.build();
    cmd
}

fn render(cmd: clap::Command, main: bool, out: &mut dyn Write) -> std::io::Result<()> {
    let see_also: Vec<String> = if main {
        cmd.get_subcommands()
            .filter(|s| !s.is_hide_set())
            .map(|s| {
                format!(
                    "\\fB{}\\fR(1)",
                    s.get_display_name().unwrap_or(s.get_name())
                )
            })
            .collect()
    } else {
        vec!["\\fBopsdeck\\fR(1)".to_string()]
    };
    Man::new(cmd)
        .source(format!("opsdeck {}", env!("CARGO_PKG_VERSION")))
        .manual("opsdeck")
        .render(out)?;
    if main {
        out.write_all(MAIN_EXTRA.as_bytes())?;
    }
    writeln!(out, ".SH \"SEE ALSO\"\n{}", see_also.join(", "))?;
    if main {
        writeln!(
            out,
            ".PP\n\\fBopsdeck man\\fR \\fISUBCOMMAND\\fR prints a subcommand's page; \
             \\fBopsdeck man \\-\\-out\\-dir\\fR \\fIDIR\\fR writes them all."
        )?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn cli() -> clap::Command {
        clap::Command::new("opsdeck")
            .about("A console")
            .arg(clap::Arg::new("config").long("config"))
            .subcommand(
                clap::Command::new("config")
                    .about("Work with the inventory")
                    .subcommand(clap::Command::new("check").about("Validate it")),
            )
            .subcommand(clap::Command::new("run").about("Run a job"))
            .subcommand(clap::Command::new("secret").hide(true))
    }

    fn text(path: &[&str]) -> Result<String, String> {
        let mut out = Vec::new();
        let path: Vec<String> = path.iter().map(|s| s.to_string()).collect();
        page(cli(), &path, &mut out)?;
        Ok(String::from_utf8(out).unwrap())
    }

    #[test]
    fn the_main_page_has_its_sections_and_names_the_others() {
        let page = text(&[]).unwrap();
        assert!(page.contains(".TH opsdeck 1"), "{page}");
        for want in [
            ".SH NAME",
            ".SH SYNOPSIS",
            ".SH ENVIRONMENT",
            ".SH FILES",
            "OPSDECK_CONFIG",
        ] {
            assert!(page.contains(want), "{want} missing from\n{page}");
        }
        assert!(page.contains("\\fBopsdeck-run\\fR(1)"), "{page}");
        assert!(!page.contains("opsdeck-secret"), "{page}");
        assert!(!page.contains("opsdeck-help"), "{page}");
    }

    #[test]
    fn subcommands_have_pages_of_their_own() {
        let run = text(&["run"]).unwrap();
        assert!(run.contains(".TH opsdeck-run 1"), "{run}");
        assert!(!run.contains(".SH ENVIRONMENT"), "{run}");
        let check = text(&["config", "check"]).unwrap();
        assert!(check.contains(".TH opsdeck-config-check 1"), "{check}");
        let err = text(&["config", "nope"]).unwrap_err();
        assert!(
            err.contains("\"config nope\"") && err.contains("check"),
            "{err}"
        );
        assert!(text(&["secret"]).is_err());
    }

    #[test]
    fn every_page_is_written_to_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        let files = write_all(cli(), &dir.path().join("man1")).unwrap();
        let written: Vec<String> = files
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            written,
            [
                "opsdeck-config-check.1",
                "opsdeck-config.1",
                "opsdeck-run.1",
                "opsdeck.1"
            ]
        );
        assert_eq!(
            names(cli()),
            [
                "opsdeck",
                "opsdeck-config",
                "opsdeck-config-check",
                "opsdeck-run"
            ]
        );
    }
}
