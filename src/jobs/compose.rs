//! The stack's compose command as an argument vector: which binary, and the `--env-file`,
//! `-f` and `-p` every compose command of the stack needs (course-supporter's compose file
//! refuses to interpolate without its env file). Backups use it for quiesce and resume
//! steps; deploys will too.

use crate::config::step::CommandLine;
use crate::config::{ComposeCommand, Stack};

use super::runner::Runner;

/// The compose project name as compose derives it, and as its container labels carry it:
/// the stack's `project`, else the directory's base name, lowercased, with only
/// `a-z 0-9 _ -` kept.
pub fn project_name(stack: &Stack) -> String {
    let raw = match &stack.project {
        Some(p) => p.as_str(),
        None => stack
            .dir
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or(&stack.dir),
    };
    raw.to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .collect()
}

/// `docker compose` (or `docker-compose`) with the stack's options, ready for a
/// subcommand. `detected` is what the host answered for `auto`; an explicit choice in
/// the inventory wins over it.
pub fn compose_argv(stack: &Stack, detected: ComposeCommand) -> Vec<String> {
    let which = match stack.compose {
        ComposeCommand::Auto => detected,
        chosen => chosen,
    };
    let mut argv: Vec<String> = match which {
        ComposeCommand::Standalone => vec!["docker-compose".into()],
        ComposeCommand::Plugin | ComposeCommand::Auto => vec!["docker".into(), "compose".into()],
    };
    if let Some(env) = &stack.env_file {
        argv.extend(["--env-file".into(), env.clone()]);
    }
    for file in &stack.compose_files {
        argv.extend(["-f".into(), file.clone()]);
    }
    if let Some(project) = &stack.project {
        argv.extend(["-p".into(), project.clone()]);
    }
    argv
}

/// A step's words with a leading `compose` replaced by the stack's compose command.
pub fn expand(cmd: &CommandLine, stack: &Stack, detected: ComposeCommand) -> Vec<String> {
    if cmd.is_compose() {
        let mut argv = compose_argv(stack, detected);
        argv.extend(cmd.argv.iter().skip(1).cloned());
        argv
    } else {
        cmd.argv.clone()
    }
}

/// What `auto` means on this host: the plugin when `docker compose version` answers,
/// else the standalone `docker-compose` (Debian 12 ships only that).
pub async fn detect<R: Runner>(runner: &R) -> ComposeCommand {
    match runner.run("docker compose version >/dev/null 2>&1").await {
        Ok(out) if out.status == Some(0) => ComposeCommand::Plugin,
        _ => ComposeCommand::Standalone,
    }
}

/// Whether any of `cmds` needs [`detect`] to be expanded.
pub fn needs_detection<'a>(stack: &Stack, cmds: impl IntoIterator<Item = &'a CommandLine>) -> bool {
    stack.compose == ComposeCommand::Auto && cmds.into_iter().any(CommandLine::is_compose)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_str;
    use std::path::Path;

    fn stack(extra: &str) -> Stack {
        let text = format!(
            "[[host]]\nname = \"h\"\n[[host.stack]]\nname = \"s\"\ndir = \"~/My App\"\n{extra}\n"
        );
        parse_str(&text, Path::new("t.toml"))
            .unwrap()
            .hosts
            .remove(0)
            .stacks
            .remove(0)
    }

    #[test]
    fn argv_carries_env_file_files_and_project() {
        let s = stack(
            "compose_files = [\"docker-compose.prod.yml\"]\nenv_file = \".env.prod\"\nproject = \"course-supporter\"\ncompose = \"docker-compose\"",
        );
        assert_eq!(
            compose_argv(&s, ComposeCommand::Plugin),
            [
                "docker-compose",
                "--env-file",
                ".env.prod",
                "-f",
                "docker-compose.prod.yml",
                "-p",
                "course-supporter"
            ]
        );
        let step = CommandLine::parse("compose stop backend").unwrap();
        assert_eq!(
            expand(&step, &s, ComposeCommand::Plugin)[7..],
            ["stop", "backend"]
        );
        let plain = CommandLine::parse("sqlite3 data/app.db 'PRAGMA wal_checkpoint'").unwrap();
        assert_eq!(expand(&plain, &s, ComposeCommand::Plugin), plain.argv);
    }

    #[test]
    fn auto_follows_detection_and_project_defaults_to_the_dir() {
        let s = stack("");
        assert_eq!(
            compose_argv(&s, ComposeCommand::Plugin),
            ["docker", "compose"]
        );
        assert_eq!(
            compose_argv(&s, ComposeCommand::Standalone),
            ["docker-compose"]
        );
        assert_eq!(project_name(&s), "myapp");
        assert!(needs_detection(
            &s,
            [&CommandLine::parse("compose stop x").unwrap()]
        ));
        let s = stack("project = \"Lila\"\ncompose = \"docker compose\"");
        assert_eq!(project_name(&s), "lila");
        assert!(!needs_detection(
            &s,
            [&CommandLine::parse("compose stop x").unwrap()]
        ));
    }
}
