//! `opsdeck exec HOST CONTAINER [-- CMD...]`: a shell in a container (bash, else sh), or
//! one command, over the host's SSH connection, as `docker exec -it` would run it there.
//! With a terminal on both ends the command gets a PTY of the terminal's size (following
//! its resizes); piped, it reads stdin and writes stdout and stderr apart. The exit status
//! is the command's (255 when the connection was lost, 2 when nothing was run). Each one
//! is a line of the audit log, as the console's `e` is.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Instant;

use super::run::{
    NotReady, RUN_SIGNALS, connect, containers, find_host, next_signal, read_only, say, stack_of,
    usage,
};
use crate::config::Config;
use crate::model::RunState;
use crate::model::job::JobRecord;
use crate::remote::HostCmd;
use crate::remote::shell::{self, ShellIo, ShellRequest, Tty};
use crate::runtime::Signals;

#[derive(Debug, Clone, Default)]
pub struct ExecArgs {
    pub host: String,
    /// Container name, compose service, or id prefix.
    pub container: String,
    /// Empty for an interactive shell.
    pub command: Vec<String>,
    pub accept_new: bool,
    /// `--read-only` on the command line.
    pub read_only: bool,
}

/// Puts the terminal back in its own mode however `exec` ends.
struct Raw;

impl Raw {
    fn on() -> Option<Raw> {
        crossterm::terminal::enable_raw_mode().ok().map(|()| Raw)
    }
}

impl Drop for Raw {
    fn drop(&mut self) {
        let _ = crossterm::terminal::disable_raw_mode();
    }
}

pub async fn run(config: Config, args: ExecArgs) -> ExitCode {
    let (index, host) = match find_host(&config, &args.host) {
        Ok(found) => found,
        Err(e) => return usage(&e),
    };
    if let Some(why) = read_only(&config, host, args.read_only) {
        return usage(&format!(
            "refused: a shell in a container can change the host, and {why}"
        ));
    }
    let mut signals = Signals::new(&RUN_SIGNALS);
    let (worker, mut rx, snapshot) =
        match connect(index, host, &config, args.accept_new, &mut signals).await {
            Ok(ready) => ready,
            Err(NotReady::Unreachable(e)) => {
                say(&format!("cannot connect to {}: {e}", args.host));
                return ExitCode::from(255);
            }
            Err(NotReady::Signal(sig)) => {
                say(&format!("{sig}: nothing was run"));
                return ExitCode::from(130);
            }
        };
    let all: Vec<&crate::model::Container> = match containers(&snapshot) {
        Ok(list) => list.iter().collect(),
        Err(e) => {
            say(&e);
            return ExitCode::from(2);
        }
    };
    let found = match super::logs::pick(&all, &args.container) {
        Ok(c) => c,
        Err(e) => return usage(&e),
    };
    if !matches!(found.state, RunState::Running) {
        return usage(&format!(
            "{} is {}: only a running container takes a shell",
            found.name,
            found.state.docker_word()
        ));
    }
    let stack = stack_of(host, found)
        .map(|s| s.name.get_ref().clone())
        .unwrap_or_default();
    let tty = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    let request = ShellRequest {
        container: Some(found.id.clone()),
        command: args.command.clone(),
        tty: tty.then(Tty::here),
    };
    let (reply, opened) = tokio::sync::oneshot::channel();
    worker.send(HostCmd::Shell { request, reply });
    let io = tokio::select! {
        r = opened => match r {
            Ok(Ok(io)) => io,
            Ok(Err(e)) => {
                say(&format!("cannot open the shell: {e}"));
                return ExitCode::from(255);
            }
            Err(_) => {
                say("cannot open the shell: the host is not connected");
                return ExitCode::from(255);
            }
        },
        sig = next_signal(&mut signals) => {
            say(&format!("{sig}: nothing was run"));
            return ExitCode::from(130);
        }
    };
    let started = jiff::Timestamp::now();
    let clock = Instant::now();
    let raw = (tty && !io.is_local()).then(Raw::on).flatten();
    let session = async move {
        match io {
            ShellIo::Ssh { channel, early } => shell::bridge(channel, early, tty).await,
            ShellIo::Local { argv } => shell::run_local(&argv).await,
        }
    };
    // In raw mode Ctrl-C is the command's; a signal sent to opsdeck ends it.
    let (ended, interrupted) = tokio::select! {
        ended = session => (ended, None),
        sig = next_signal(&mut signals) => (shell::Ended { lost: true, ..Default::default() }, Some(sig)),
    };
    drop(raw);
    let mut record = JobRecord::new(
        started.to_string(),
        crate::jobs::audit::local_user(),
        host.name.get_ref(),
        &stack,
        if args.command.is_empty() {
            "shell"
        } else {
            "exec"
        },
    );
    record.container = Some(found.name.clone());
    // A shell that ended at once says why; a command's output was the operator's to see.
    let why = args.command.is_empty();
    shell::finish_record(&mut record, &ended, clock.elapsed(), interrupted, why);
    record.summary = Some(if args.command.is_empty() {
        format!("shell in {}", found.name)
    } else {
        format!("exec in {}: {}", found.name, args.command.join(" "))
    });
    if let Some(path) = crate::jobs::audit::path()
        && let Err(e) = crate::jobs::audit::append_to(&path, &record)
    {
        say(&e.to_string());
    }
    drop(worker);
    let _ = tokio::time::timeout(super::run::CLOSE_WAIT, async {
        while rx.recv().await.is_some() {}
    })
    .await;
    if let Some(sig) = interrupted {
        say(&format!("{sig}: the command was left"));
        return ExitCode::from(130);
    }
    if ended.lost {
        say(&format!("{}: {}", args.host, ended.describe(false)));
    }
    ExitCode::from(ended.code())
}
