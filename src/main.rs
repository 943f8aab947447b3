use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand, ValueHint};
use clap_complete::engine::{ArgValueCompleter, CompletionCandidate};

use opsdeck::cli::complete;
use opsdeck::config::{self, Source};
use opsdeck::ui::Theme;

/// A terminal ops console for small fleets of Docker Compose hosts.
///
/// Without a subcommand, opens the console. The inventory is found in this order:
/// --config, $OPSDECK_CONFIG, ./hosts.toml, ~/.config/opsdeck/hosts.toml; with none,
/// opsdeck watches the machine it runs on.
#[derive(Parser)]
#[command(name = "opsdeck", version)]
struct Cli {
    /// The inventory file.
    #[arg(long, short = 'c', global = true, value_name = "PATH", value_hint = ValueHint::FilePath)]
    config: Option<PathBuf>,
    /// A built-in theme (default, 16color) or a theme file; overrides the inventory.
    #[arg(long, value_name = "NAME|PATH", add = ArgValueCompleter::new(complete::complete_theme))]
    theme: Option<String>,
    /// Refuse every action that changes a host.
    #[arg(long, global = true)]
    read_only: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Work with the inventory.
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
    /// One snapshot of the fleet (or of the named hosts): metrics and containers.
    Status {
        /// Hosts to ask (default: all).
        #[arg(add = ArgValueCompleter::new(complete::complete_host))]
        hosts: Vec<String>,
        /// JSON for scripts instead of a table.
        #[arg(long)]
        json: bool,
        /// Record host keys no known_hosts file has yet (like ssh's accept-new).
        #[arg(long)]
        accept_new: bool,
    },
    /// Evaluate everything opsdeck knows and print the problems, worst first; exit 0 OK,
    /// 1 warning, 2 critical, 3 could not run (as monitoring plugins do).
    Check {
        /// Hosts to check (default: all).
        #[arg(add = ArgValueCompleter::new(complete::complete_host))]
        hosts: Vec<String>,
        /// JSON for scripts instead of one line per problem.
        #[arg(long)]
        json: bool,
        /// Record host keys no known_hosts file has yet (like ssh's accept-new).
        #[arg(long)]
        accept_new: bool,
    },
    /// Print a container's log, or with --stack every service's log of a stack, interleaved
    /// by time.
    Logs {
        #[arg(add = ArgValueCompleter::new(complete::complete_host))]
        host: String,
        /// Container name, compose service, or id prefix.
        #[arg(required_unless_present = "stack")]
        container: Option<String>,
        /// A stack's logs together (its inventory name or compose project): each line as
        /// `service | text`, in timestamp order.
        #[arg(
            long,
            value_name = "NAME",
            conflicts_with_all = ["container", "raw"],
            add = ArgValueCompleter::new(complete::complete_stack)
        )]
        stack: Option<String>,
        /// Keep printing new lines.
        #[arg(long, short = 'f')]
        follow: bool,
        /// Only the last N lines (of each service, with --stack).
        #[arg(long, value_name = "N")]
        tail: Option<u64>,
        /// With --stack: only lines of the last DURATION (`90s`, `1h`, `2h30m`) or after
        /// an RFC 3339 time.
        #[arg(long, value_name = "DURATION", requires = "stack")]
        since: Option<String>,
        /// With --stack: each line after Docker's timestamp.
        #[arg(long, short = 't', requires = "stack")]
        timestamps: bool,
        /// The log's bytes as they are, escape sequences included (what `docker logs`
        /// prints); without it, a terminal gets each line with only its colours kept.
        #[arg(long)]
        raw: bool,
        #[arg(long)]
        accept_new: bool,
    },
    /// Run a job on a host: deploy, migrate, rollback [--to N], restore [SET] --to N,
    /// restart [CONTAINER], backup [SET],
    /// stop|start|kill|pause|unpause|rm CONTAINER, or one of the stack's custom actions by
    /// name. Exit 0 done, 1 failed, 2 refused before anything ran, 75 the stack is locked
    /// by another job, 130 interrupted. With --hosts a,b,c (and no HOST): the action on
    /// each host in turn, stopping at the first that fails, then a summary.
    #[command(override_usage = "opsdeck run [OPTIONS] HOST ACTION [ARG]\n       \
                                opsdeck run [OPTIONS] --hosts A,B,... ACTION [ARG]")]
    Run {
        /// The host (with --hosts, the first word is the action instead).
        #[arg(
            required_unless_present = "hosts",
            value_name = "HOST",
            add = ArgValueCompleter::new(complete::complete_run_host)
        )]
        host: Option<String>,
        /// deploy, migrate, rollback, restore, restart, backup, stop, start, kill, pause,
        /// unpause, rm, or a custom action's name.
        #[arg(
            required_unless_present = "hosts",
            value_name = "ACTION",
            add = ArgValueCompleter::new(complete::complete_run_action)
        )]
        action: Option<String>,
        /// For backup, the set; for restart and the others, the container (name, service
        /// or id prefix; without it, restart restarts the whole stack).
        #[arg(add = ArgValueCompleter::new(complete::complete_run_arg))]
        arg: Option<String>,
        /// For kill: TERM (the default), KILL, HUP, USR1, USR2 or INT.
        #[arg(long)]
        signal: Option<String>,
        /// The stack, when the host has several.
        #[arg(long, add = ArgValueCompleter::new(complete::complete_stack))]
        stack: Option<String>,
        /// Run without asking for confirmation (the action changes the host).
        #[arg(long, short = 'y')]
        yes: bool,
        /// Record host keys no known_hosts file has yet (like ssh's accept-new).
        #[arg(long)]
        accept_new: bool,
        /// For deploy: go on despite the pre-flight's warnings (never its refusals).
        #[arg(long)]
        force: bool,
        /// For deploy: run only the pre-flight and change nothing (exit 0 ok, 1 warnings,
        /// 2 refused).
        #[arg(long)]
        check: bool,
        /// For rollback: the release to go back to, by number or ID (default: the newest
        /// ok one that differs from what runs); for restore: the release whose dump is
        /// restored (default: the newest with one). See `opsdeck releases`.
        #[arg(long, value_name = "N|ID")]
        to: Option<String>,
        /// For rollback: also check out the release's git commit in the stack's directory.
        #[arg(long)]
        checkout: bool,
        /// Several hosts, comma-separated: the action runs on each in this order, one at
        /// a time, and the run stops at the first host whose job does not end well (the
        /// rest are not started). Everything is checked before anything runs; one
        /// confirmation for all.
        #[arg(long, value_name = "A,B,...", add = ArgValueCompleter::new(complete::complete_host_list))]
        hosts: Option<String>,
        /// JSON on stdout: with --hosts the summary (the steps' stdout goes to stderr),
        /// with deploy --check the report.
        #[arg(long)]
        json: bool,
    },
    /// A stack's release history on its host, newest first: who deployed what when, every
    /// service's image ID, commit, migration head, the dump taken before migrating, and
    /// what going back to each would change. Exit 1 when the host could not be asked.
    Releases {
        #[arg(add = ArgValueCompleter::new(complete::complete_host))]
        host: String,
        /// The stack, when the host has several with a deploy recipe.
        #[arg(long, add = ArgValueCompleter::new(complete::complete_stack))]
        stack: Option<String>,
        /// JSON for scripts.
        #[arg(long)]
        json: bool,
        /// Record host keys no known_hosts file has yet (like ssh's accept-new).
        #[arg(long)]
        accept_new: bool,
    },
    /// What changed on the hosts, newest first: Docker's events (die, oom, kill, health,
    /// restart, start, stop, destroy, image pull and tag), checks that changed, opsdeck's
    /// jobs and backups. Caught up from each engine first. Exit 1 when a host could not be
    /// asked (what was kept of it is still printed).
    Events {
        /// Hosts to ask (default: all).
        #[arg(add = ArgValueCompleter::new(complete::complete_host))]
        hosts: Vec<String>,
        /// How far back: a duration (`90m`, `24h`, `7d`) or an RFC 3339 time.
        #[arg(long, default_value = "24h", value_name = "DURATION|TIME")]
        since: String,
        /// JSON for scripts: an array of events, newest first.
        #[arg(long)]
        json: bool,
        /// Record host keys no known_hosts file has yet (like ssh's accept-new).
        #[arg(long)]
        accept_new: bool,
    },
    /// A shell in a container (bash, else sh), or a command, over the host's SSH
    /// connection: `opsdeck exec HOST CONTAINER [-- CMD...]`. With a terminal, the command
    /// gets one (a PTY of its size); piped, it reads stdin. Exits with the command's status
    /// (255 when the connection was lost, 2 when nothing was run).
    Exec {
        #[arg(add = ArgValueCompleter::new(complete::complete_host))]
        host: String,
        /// Container name, compose service, or id prefix.
        container: String,
        /// The command and its arguments (default: an interactive shell).
        #[arg(
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "CMD"
        )]
        command: Vec<String>,
        /// Record host keys no known_hosts file has yet (like ssh's accept-new).
        #[arg(long)]
        accept_new: bool,
    },
    /// Print a shell's completion script (bash, zsh, fish, elvish, powershell).
    ///
    /// It completes subcommands, flags, and the names of hosts, stacks, actions and backup
    /// sets from the inventory opsdeck would load for the line being completed. Bash:
    /// `source <(opsdeck completions bash)` in ~/.bashrc; the README has the other shells.
    /// Write an inventory from the hosts you already have: look at each over SSH and
    /// propose its compose stacks (from the containers' compose labels), its Postgres
    /// services and the backups already being taken, every guess marked `# found:`.
    ///
    /// Hosts: those named (`[user@]host[:port]` or an ssh_config alias), every concrete
    /// `Host` of ~/.ssh/config with --from-ssh-config, the hosts of an Ansible inventory
    /// (INI or YAML) with --ansible. A host it cannot reach is written commented out with
    /// the reason. It never overwrites a file without --force; with the file present it
    /// prints what it would add.
    Init {
        /// Hosts to look at: `[user@]host[:port]` or ssh_config aliases.
        hosts: Vec<String>,
        /// Every concrete host of ~/.ssh/config.
        #[arg(long)]
        from_ssh_config: bool,
        /// The hosts of an Ansible inventory (INI or YAML): ansible_host, ansible_user,
        /// ansible_port, ansible_ssh_private_key_file.
        #[arg(long, value_name = "INVENTORY", value_hint = ValueHint::FilePath)]
        ansible: Option<PathBuf>,
        /// The file to write (`-` for standard output); default: --config, else
        /// ~/.config/opsdeck/hosts.toml.
        #[arg(long, short = 'o', value_name = "PATH", value_hint = ValueHint::FilePath)]
        out: Option<PathBuf>,
        /// Rewrite an existing file (the old one is kept as .bak).
        #[arg(long)]
        force: bool,
        /// Record host keys no known_hosts file has yet (like ssh's accept-new).
        #[arg(long)]
        accept_new: bool,
    },
    Completions {
        /// The shell.
        #[arg(value_parser = clap::builder::PossibleValuesParser::new(complete::SHELLS))]
        shell: String,
    },
    /// Print the manual page, or a subcommand's, for `man -l -`.
    ///
    /// In roff, made from this command line's own definition: `opsdeck man | man -l -`,
    /// `opsdeck man run`; with --out-dir, every page is written there (opsdeck.1,
    /// opsdeck-run.1, ...).
    Man {
        /// The subcommand whose page to print (`run`, `config check`).
        #[arg(
            value_name = "SUBCOMMAND",
            conflicts_with = "out_dir",
            add = ArgValueCompleter::new(complete_man_page)
        )]
        command: Vec<String>,
        /// Write every page into DIR (created if need be), e.g. ~/.local/share/man/man1.
        #[arg(long, value_name = "DIR", value_hint = ValueHint::DirPath)]
        out_dir: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum ConfigAction {
    /// Validate an inventory and print a summary; exit 2 when it is invalid.
    Check {
        /// The file to check (default: the discovered inventory).
        #[arg(value_hint = ValueHint::FilePath)]
        path: Option<PathBuf>,
    },
    /// Print the JSON Schema of hosts.toml (schema/hosts.schema.json), for editors.
    Schema,
}

/// `opsdeck man`'s SUBCOMMAND words: the subcommands under the ones already given.
fn complete_man_page(current: &std::ffi::OsStr) -> Vec<CompletionCandidate> {
    let line = complete::Line::current();
    let cmd = Cli::command();
    let mut at = &cmd;
    for word in line.positionals().iter().skip(1) {
        match at.find_subcommand(word) {
            Some(sub) => at = sub,
            None => return Vec::new(),
        }
    }
    let current = current.to_string_lossy();
    at.get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name().starts_with(current.as_ref()))
        .map(|s| CompletionCandidate::new(s.get_name()))
        .collect()
}

/// Answers a completion request (`OPSDECK_COMPLETE=SHELL opsdeck -- WORDS...`), or prints
/// the registration script (without `--`); `None` for a normal run. A failed completion
/// says nothing: its output would land on the terminal the user is typing in.
fn shell_completion() -> Option<ExitCode> {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let request = args.iter().any(|a| a == "--");
    let cwd = std::env::current_dir().ok();
    match clap_complete::CompleteEnv::with_factory(Cli::command)
        .var(complete::COMPLETE_VAR)
        .try_complete(args, cwd.as_deref())
    {
        Ok(false) => None,
        Ok(true) => Some(ExitCode::SUCCESS),
        Err(_) if request => Some(ExitCode::FAILURE),
        Err(e) => {
            eprintln!("opsdeck: {e}");
            Some(ExitCode::from(2))
        }
    }
}

/// Writes to stdout; a reader that went away (`opsdeck man | head`) is not an error.
fn print_bytes(bytes: &[u8]) -> ExitCode {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "opsdeck: {e}");
            ExitCode::FAILURE
        }
    }
}

fn completions(shell: &str) -> ExitCode {
    let argv0 = std::env::args_os()
        .next()
        .unwrap_or_else(|| "opsdeck".into());
    let cwd = std::env::current_dir().ok();
    let completer = complete::completer_path(&argv0, cwd.as_deref());
    match complete::registration(shell, &completer) {
        Ok(script) => print_bytes(&script),
        Err(e) => {
            eprintln!("opsdeck: {e}");
            ExitCode::from(2)
        }
    }
}

fn man(command: &[String], out_dir: Option<PathBuf>) -> ExitCode {
    if let Some(dir) = out_dir {
        return match opsdeck::cli::man::write_all(Cli::command(), &dir) {
            Ok(files) => {
                for f in files {
                    println!("{}", f.display());
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("opsdeck: {}: {e}", dir.display());
                ExitCode::FAILURE
            }
        };
    }
    let mut page = Vec::new();
    match opsdeck::cli::man::page(Cli::command(), command, &mut page) {
        Ok(()) => print_bytes(&page),
        Err(e) => {
            eprintln!("opsdeck: {e}");
            ExitCode::from(2)
        }
    }
}

fn discover(flag: Option<PathBuf>) -> Source {
    let env = std::env::var("OPSDECK_CONFIG").ok();
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    config::discover(
        flag.as_deref(),
        env.as_deref(),
        &cwd,
        config::xdg_config_dir().as_deref(),
    )
}

fn main() -> ExitCode {
    if let Some(code) = shell_completion() {
        return code;
    }
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Completions { shell }) => completions(&shell),
        Some(Command::Init {
            hosts,
            from_ssh_config,
            ansible,
            out,
            force,
            accept_new,
        }) => {
            let Some(out) = out.or(cli.config).or_else(opsdeck::cli::init::default_out) else {
                eprintln!("opsdeck init: no config directory: name the file with --out");
                return ExitCode::from(2);
            };
            let command = std::iter::once("opsdeck".to_string())
                .chain(std::env::args().skip(1))
                .map(|a| shlex::try_quote(&a).map(|q| q.into_owned()).unwrap_or(a))
                .collect::<Vec<_>>()
                .join(" ");
            let args = opsdeck::cli::init::InitArgs {
                from_ssh_config,
                ansible,
                hosts,
                out,
                force,
                accept_new,
                command,
            };
            let _log_guard = init_logging();
            let runtime = match async_runtime() {
                Ok(r) => r,
                Err(code) => return code,
            };
            ExitCode::from(runtime.block_on(opsdeck::cli::init::run(args)))
        }
        Some(Command::Man { command, out_dir }) => man(&command, out_dir),
        Some(Command::Config {
            action: ConfigAction::Check { path },
        }) => opsdeck::cli::config_check(discover(path.or(cli.config))),
        Some(Command::Config {
            action: ConfigAction::Schema,
        }) => {
            // Not print!: a closed pipe (`| head`) is an exit status, not a panic.
            use std::io::Write;
            let text = opsdeck::config::json_schema();
            match std::io::stdout().lock().write_all(text.as_bytes()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(_) => ExitCode::FAILURE,
            }
        }
        Some(Command::Status {
            hosts,
            json,
            accept_new,
        }) => headless(cli.config, move |config| async move {
            let selected = opsdeck::cli::status::select(&config, &hosts)?;
            let shared = opsdeck::remote::Shared::new(accept_new);
            let model = opsdeck::cli::status::snapshot(&config, &selected, &shared).await;
            if json {
                let json = opsdeck::cli::status::to_json(&model, &selected);
                println!("{}", opsdeck::cli::json_text(&json));
            } else {
                print!("{}", opsdeck::cli::status::to_text(&model, &selected));
            }
            Ok(())
        }),
        Some(Command::Check {
            hosts,
            json,
            accept_new,
        }) => {
            // Monitoring plugins say "could not run" with 3, not the 2 of a broken inventory.
            if let Err(e) = config::load(discover(cli.config.clone())) {
                eprintln!("opsdeck: {e}");
                return ExitCode::from(opsdeck::cli::check::UNKNOWN);
            }
            let args = opsdeck::cli::check::CheckArgs {
                hosts,
                json,
                accept_new,
            };
            headless_exit(cli.config, move |config| {
                opsdeck::cli::check::run(config, args)
            })
        }
        Some(Command::Logs {
            host,
            container,
            stack,
            follow,
            tail,
            since,
            timestamps,
            raw,
            accept_new,
        }) => headless(cli.config, move |config| async move {
            let after = since
                .as_deref()
                .map(opsdeck::cli::logs::since)
                .transpose()?;
            let selected = opsdeck::cli::status::select(&config, std::slice::from_ref(&host))?;
            let h = &config.inventory.hosts[selected[0]];
            let shared = opsdeck::remote::Shared::new(accept_new);
            let engine = opsdeck::cli::logs::docker_for(selected[0], h, &config, &shared).await?;
            if let Some(stack) = stack {
                let project =
                    opsdeck::cli::logs::stack_project(&h.stacks, &engine.containers, &stack)?;
                let how = opsdeck::cli::logs::StackPrint {
                    follow,
                    tail,
                    after,
                    timestamps,
                };
                return opsdeck::cli::logs::print_stack(&engine, &project, how).await;
            }
            let container = container.unwrap_or_default();
            let id = opsdeck::cli::logs::find(&engine, &container)?;
            opsdeck::cli::logs::print(&engine, &id, follow, tail, raw).await
        }),
        Some(Command::Run {
            host,
            action,
            arg,
            stack,
            yes,
            accept_new,
            signal,
            force,
            check,
            to,
            checkout,
            hosts,
            json,
        }) => {
            // With --hosts the words move up: the first is the action, the second its
            // argument.
            let (host, action, arg) = match &hosts {
                None => (host.unwrap_or_default(), action.unwrap_or_default(), arg),
                Some(_) if arg.is_some() => {
                    eprintln!(
                        "opsdeck: with --hosts, name no host: opsdeck run --hosts A,B ACTION [ARG]"
                    );
                    return ExitCode::from(2);
                }
                Some(_) => (String::new(), host.unwrap_or_default(), action),
            };
            if action.is_empty() {
                eprintln!("opsdeck: --hosts wants an action: opsdeck run --hosts A,B ACTION [ARG]");
                return ExitCode::from(2);
            }
            let args = opsdeck::cli::run::RunArgs {
                host,
                action,
                arg,
                stack,
                yes,
                accept_new,
                read_only: cli.read_only,
                signal,
                opts: opsdeck::model::JobOptions {
                    force,
                    check_only: check,
                    to,
                    checkout,
                },
                // with --hosts, --json is the run's summary (multi::run's own flag)
                json: json && hosts.is_none(),
            };
            match hosts {
                Some(list) => headless_exit(cli.config, move |config| {
                    opsdeck::cli::multi::run(config, list, args, json)
                }),
                None => headless_exit(cli.config, move |config| {
                    opsdeck::cli::run::run(config, args)
                }),
            }
        }
        Some(Command::Exec {
            host,
            container,
            command,
            accept_new,
        }) => {
            let args = opsdeck::cli::exec::ExecArgs {
                host,
                container,
                command,
                accept_new,
                read_only: cli.read_only,
            };
            headless_exit(cli.config, move |config| {
                opsdeck::cli::exec::run(config, args)
            })
        }
        Some(Command::Releases {
            host,
            stack,
            json,
            accept_new,
        }) => {
            let args = opsdeck::cli::releases::ReleasesArgs {
                host,
                stack,
                json,
                accept_new,
            };
            headless_exit(cli.config, move |config| {
                opsdeck::cli::releases::run(config, args)
            })
        }
        Some(Command::Events {
            hosts,
            since,
            json,
            accept_new,
        }) => {
            let args = opsdeck::cli::events::EventsArgs {
                hosts,
                since: Some(since),
                json,
                accept_new,
            };
            headless_exit(cli.config, move |config| {
                opsdeck::cli::events::run(config, args)
            })
        }
        None => run_tui(cli),
    }
}

/// Runs a headless command: exit 2 for a broken inventory or an unknown host name,
/// 1 when the command itself failed, 0 otherwise (hosts being down is not a failure).
fn headless<F, Fut>(flag: Option<PathBuf>, body: F) -> ExitCode
where
    F: FnOnce(config::Config) -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    headless_exit(flag, move |config| async move {
        match body(config).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) if e.starts_with("unknown host ") => {
                eprintln!("opsdeck: {e}");
                ExitCode::from(2)
            }
            Err(e) => {
                eprintln!("opsdeck: {e}");
                ExitCode::FAILURE
            }
        }
    })
}

/// Like [`headless`], for a command that chooses its own exit status (`run`: 2 when it
/// refused before touching the host, 1 when the action failed).
fn headless_exit<F, Fut>(flag: Option<PathBuf>, body: F) -> ExitCode
where
    F: FnOnce(config::Config) -> Fut,
    Fut: std::future::Future<Output = ExitCode>,
{
    let config = match config::load(discover(flag)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("opsdeck: {e}");
            return ExitCode::from(2);
        }
    };
    let _log_guard = init_logging();
    let runtime = match async_runtime() {
        Ok(r) => r,
        Err(code) => return code,
    };
    runtime.block_on(body(config))
}

fn run_tui(cli: Cli) -> ExitCode {
    let config = match config::load(discover(cli.config)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("opsdeck: {e}");
            return ExitCode::from(2);
        }
    };
    let theme_name = cli
        .theme
        .clone()
        .or_else(|| {
            config
                .inventory
                .settings
                .theme
                .as_ref()
                .map(|t| t.get_ref().clone())
        })
        .unwrap_or_else(|| "default".into());
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let theme = if no_color {
        Theme::monochrome()
    } else {
        match Theme::load(&theme_name) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("opsdeck: {e}");
                return ExitCode::from(2);
            }
        }
    };
    let _log_guard = init_logging();
    let runtime = match async_runtime() {
        Ok(r) => r,
        Err(code) => return code,
    };
    let mut config = config;
    let result = loop {
        match runtime.block_on(opsdeck::runtime::run(config, theme.clone(), cli.read_only)) {
            // The first-run import wrote an inventory: watch it.
            Ok(Some(path)) => match config::load(Source::Xdg(PathBuf::from(&path))) {
                Ok(c) => config = c,
                Err(e) => break Err(anyhow::anyhow!("the imported inventory: {e}")),
            },
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        }
    };
    // Dropping the tasks now, not at some later point of exit: a job that did not stop
    // within the console's wait writes its audit line as it is dropped.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // not eprintln!: after a hang-up the terminal is gone, and a failed write panics
            let _ = writeln!(std::io::stderr(), "opsdeck: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Two worker threads: opsdeck waits on hosts, it does not compute, and the machines it
/// runs on often have two cores.
fn async_runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("opsdeck: cannot start the async runtime: {e}");
            ExitCode::FAILURE
        })
}

/// Logs go to a file in the XDG state dir (the terminal belongs to the UI), readable by
/// its owner only, like the audit log beside it.
fn init_logging() -> Option<tracing_appender::non_blocking::WorkerGuard> {
    let path = opsdeck::jobs::audit::state_dir()?.join("opsdeck.log");
    let file = opsdeck::jobs::audit::open_private(&path).ok()?;
    // A small queue: the default (128,000 lines) preallocates 4 MB for a log that sees a
    // few lines an hour; past the limit lines are dropped, never waited for.
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .buffered_lines_limit(1024)
        .lossy(true)
        .finish(file);
    let filter = tracing_subscriber::EnvFilter::try_from_env("OPSDECK_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_writer(writer)
        .with_ansi(false)
        .with_env_filter(filter)
        .init();
    Some(guard)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    /// The completion's word scanner must know every flag that takes a value, or it takes
    /// the value for a positional word (`--tail 50` for a host).
    #[test]
    fn completion_knows_every_flag_with_a_value() {
        fn walk(cmd: &clap::Command, out: &mut Vec<String>) {
            for a in cmd.get_arguments() {
                if a.get_num_args().is_some_and(|n| n.takes_values()) && !a.is_positional() {
                    out.extend(a.get_long().map(|l| format!("--{l}")));
                    out.extend(a.get_short().map(|s| format!("-{s}")));
                }
            }
            for sub in cmd.get_subcommands() {
                walk(sub, out);
            }
        }
        let mut cmd = Cli::command();
        cmd.build();
        let mut flags = Vec::new();
        walk(&cmd, &mut flags);
        flags.sort();
        flags.dedup();
        let mut known: Vec<String> = complete::VALUE_FLAGS
            .iter()
            .map(|f| f.to_string())
            .collect();
        known.sort();
        assert_eq!(flags, known);
    }
}
