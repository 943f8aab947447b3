//! `opsdeck init [--from-ssh-config] [--ansible INVENTORY] [HOST...]`: looks at each host
//! over SSH and writes a commented `hosts.toml` to review. It never overwrites a file
//! without `--force` (and then keeps the old one as `.bak`); with a file present it prints
//! what it would add.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::onboard::{self, Candidate, HostReport, Outcome, sources};
use crate::remote::ssh::{self, KeyPolicy};

pub struct InitArgs {
    pub from_ssh_config: bool,
    pub ansible: Option<PathBuf>,
    pub hosts: Vec<String>,
    /// Where to write; `-` for standard output.
    pub out: PathBuf,
    pub force: bool,
    pub accept_new: bool,
    /// The command line, for the file's first comment.
    pub command: String,
}

pub use crate::onboard::default_out;

/// The hosts to look at, first mention wins; an error is a usage error (exit 2).
pub fn candidates(
    args: &InitArgs,
    ssh_config: Option<&ssh2_config::SshConfig>,
) -> Result<Vec<Candidate>, String> {
    let mut out: Vec<Candidate> = Vec::new();
    if args.from_ssh_config {
        let cfg = ssh_config.ok_or("--from-ssh-config: there is no readable ~/.ssh/config")?;
        let found = sources::from_ssh_config(cfg);
        if found.is_empty() {
            return Err("--from-ssh-config: ~/.ssh/config names no concrete host (only patterns like `Host *`)".into());
        }
        out.extend(found);
    }
    if let Some(path) = &args.ansible {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("{}: cannot read the inventory: {e}", path.display()))?;
        let name = path.display().to_string();
        out.extend(sources::from_ansible(&text, &name)?);
    }
    for spec in &args.hosts {
        let mut c = sources::from_destination(spec);
        if let Some(cfg) = ssh_config
            && c.user.is_none()
            && c.port.is_none()
            && let Some(alias) = sources::from_ssh_config(cfg)
                .into_iter()
                .find(|a| a.name == c.name)
        {
            c = alias;
        }
        out.push(c);
    }
    if !args.from_ssh_config && args.ansible.is_none() && args.hosts.is_empty() {
        return Err(
            "name the hosts to look at: HOST..., --from-ssh-config, or --ansible INVENTORY".into(),
        );
    }
    let mut seen = Vec::new();
    out.retain(|c| {
        let new = !seen.contains(&c.name);
        seen.push(c.name.clone());
        new
    });
    Ok(out)
}

fn summary(r: &HostReport) -> String {
    let name = crate::sanitize::line(&r.candidate.name);
    match &r.outcome {
        Outcome::Found(f) => {
            let sets: usize = f.stacks.iter().map(|s| s.backups.len()).sum();
            let names: Vec<&str> = f.stacks.iter().map(|s| s.name.as_str()).collect();
            format!(
                "{name}: {} stack(s){}, {sets} backup set(s)",
                f.stacks.len(),
                if names.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", names.join(", "))
                }
            )
        }
        Outcome::NotProbed(why) => {
            format!(
                "{name}: written, not looked at: {}",
                crate::sanitize::line(why)
            )
        }
        Outcome::Unreachable(why) => format!(
            "{name}: not reachable, written commented out: {}",
            crate::sanitize::line(why)
        ),
    }
}

/// Runs `init`; the exit status: 0 written (or printed), 1 failed to write, 2 usage.
pub async fn run(args: InitArgs) -> u8 {
    let ssh_config = ssh::load_ssh_config().map(std::sync::Arc::new);
    let mut cands = match candidates(&args, ssh_config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("opsdeck init: {e}");
            return 2;
        }
    };
    let to_stdout = args.out.as_os_str() == "-";
    let existing = if to_stdout {
        None
    } else {
        match std::fs::read_to_string(&args.out) {
            Ok(text) => Some(text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                eprintln!("opsdeck init: {}: {e}", args.out.display());
                return 1;
            }
        }
    };
    let preview = existing.is_some() && !args.force;
    if let (Some(text), true) = (&existing, preview) {
        let names = match onboard::existing_names(text, &args.out) {
            Ok(n) => n,
            Err(e) => {
                eprintln!(
                    "opsdeck init: {} exists and does not load, so it is left alone: {e}",
                    args.out.display()
                );
                return 2;
            }
        };
        let (known, new): (Vec<Candidate>, Vec<Candidate>) =
            cands.into_iter().partition(|c| names.contains(&c.name));
        if !known.is_empty() {
            let k: Vec<&str> = known.iter().map(|c| c.name.as_str()).collect();
            eprintln!(
                "opsdeck init: already in {}: {}",
                args.out.display(),
                k.join(", ")
            );
        }
        if new.is_empty() {
            eprintln!("opsdeck init: nothing to add");
            return 0;
        }
        cands = new;
    }
    let policy = if args.accept_new {
        KeyPolicy::AcceptNew
    } else {
        KeyPolicy::Refuse
    };
    eprintln!("opsdeck init: looking at {} host(s)…", cands.len());
    let total = cands.len();
    let reports = onboard::look_all(&cands, ssh_config.clone(), &policy, |done, r| {
        eprintln!("  [{done}/{total}] {}", summary(r));
    })
    .await;
    let text = onboard::render::file(&reports, &onboard::now_text(), &args.command);
    // What is written must load: a guess that broke the file would be a bug here.
    if let Err(e) = crate::config::parse_str(&text, Path::new("<init>")) {
        eprintln!("opsdeck init: the inventory it made does not load (a bug in opsdeck): {e}");
        return 1;
    }
    let unreachable = reports
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Unreachable(_)))
        .count();
    if to_stdout || preview {
        if preview {
            eprintln!(
                "opsdeck init: {} exists, so it is not changed; this is what init would add \
                 (append it, or run again with --force to rewrite the file; the old one is kept as .bak):",
                args.out.display()
            );
        }
        let mut out = std::io::stdout().lock();
        return match out.write_all(text.as_bytes()) {
            Ok(()) => 0,
            Err(_) => 1,
        };
    }
    if let Err(e) = onboard::write_inventory(&args.out, &text, args.force) {
        eprintln!("opsdeck init: cannot write {e}");
        return 1;
    }
    eprintln!(
        "opsdeck init: wrote {}: {} host(s), {} of them unreachable and commented out. \
         Review the `# found:` lines, then run `opsdeck config check`.",
        args.out.display(),
        reports.len(),
        unreachable
    );
    0
}
