//! From what the operator asked ([`JobRequest`]) to the steps a job will run, using the
//! inventory alone: no host is contacted here, so a bad request is refused before
//! anything changes anywhere.

use std::time::Duration;

use crate::checks::CheckSpec;
use crate::config::{BackupSet, CommandLine, Stack, Step};
use crate::model::job::{ActionInfo, ContainerOp, JobKind, JobRequest, StackInfo};

/// How long a rollback waits for the stack to be healthy when the deploy recipe has no
/// `wait_healthy` of its own to borrow.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(120);

#[derive(Debug, Clone)]
pub enum StepKind {
    /// A command line from the inventory; `compose` is expanded on the host.
    Run(CommandLine),
    /// Container health and the stack's checks, until healthy or the time is up.
    WaitHealthy(Duration),
    /// Notes the image ID behind every container of the project, for a rollback.
    RecordImages,
    /// Tags the recorded image IDs back to the names the compose file uses.
    RestoreImages,
    /// Restarts one container (Docker API).
    Restart { id: String, name: String },
    /// Restarts every container of the project (Docker API), one after the other.
    RestartProject,
    /// Stops, starts, kills, pauses, unpauses or removes one container (Docker API).
    Container {
        op: ContainerOp,
        id: String,
        name: String,
    },
    /// Takes a backup of one set: `pg_dump` or a quiesced file copy.
    Backup(Box<BackupSet>),
    /// A deploy's pre-flight: refuses, or stops on warnings unless forced.
    Preflight(super::preflight::Settings),
}

#[derive(Debug, Clone)]
pub struct PlannedStep {
    pub label: String,
    pub kind: StepKind,
}

impl PlannedStep {
    fn new(kind: StepKind) -> Self {
        let label = match &kind {
            StepKind::Run(cmd) => cmd.to_string(),
            StepKind::WaitHealthy(d) => Step::WaitHealthy(*d).to_string(),
            StepKind::RecordImages => "record the image IDs in use (for a rollback)".into(),
            StepKind::RestoreImages => "put back the image IDs recorded by the last deploy".into(),
            StepKind::Restart { name, .. } => format!("restart {name} (Docker API)"),
            StepKind::RestartProject => "restart every container of the stack (Docker API)".into(),
            StepKind::Container { op, name, .. } => format!("{} (Docker API)", op.action(name)),
            StepKind::Preflight(_) => crate::model::preflight::STEP_LABEL.into(),
            StepKind::Backup(set) => match crate::collect::backups::recipe(set) {
                Some(r) => format!("back up {}: {r}", set.name.get_ref()),
                None => format!("back up {}", set.name.get_ref()),
            },
        };
        PlannedStep { label, kind }
    }
}

/// Everything a job needs to run, resolved from the inventory.
#[derive(Debug, Clone)]
pub struct Plan {
    pub host: String,
    /// The stack's name; empty for a container outside any stack.
    pub stack_name: String,
    /// The stack, for its directory, compose command and checks.
    pub stack: Option<Stack>,
    /// The compose project whose lock the job takes; `None` takes no lock.
    pub project: Option<String>,
    /// Backups only read the stack: they share its lock with other backups, and exclude
    /// deploys and actions.
    pub shared_lock: bool,
    pub action: String,
    /// The action as the audit log names it: `backup` (with the set in its own field)
    /// where the console says `backup db`.
    pub audit_action: String,
    pub steps: Vec<PlannedStep>,
    /// The recipe's `timeout`: past it, the running step is stopped.
    pub timeout: Option<Duration>,
    /// The stack's health checks, for `wait healthy`.
    pub checks: Vec<CheckSpec>,
    /// The services `wait healthy` looks at (all of the project's when empty).
    pub services: Vec<String>,
    /// Whether the job changes the host (everything but a harmless custom action).
    pub mutating: bool,
}

impl Plan {
    pub fn labels(&self) -> Vec<String> {
        self.steps.iter().map(|s| s.label.clone()).collect()
    }
}

fn steps_of(steps: &[Step]) -> Vec<PlannedStep> {
    steps
        .iter()
        .map(|s| match s {
            Step::Run(cmd) => PlannedStep::new(StepKind::Run(cmd.clone())),
            Step::WaitHealthy(d) => PlannedStep::new(StepKind::WaitHealthy(*d)),
        })
        .collect()
}

/// What the console shows of a stack: its project, recipes and actions, as written.
pub fn stack_info(stack: &Stack) -> StackInfo {
    let labels = |steps: &[Step]| steps.iter().map(Step::to_string).collect::<Vec<_>>();
    StackInfo {
        name: stack.name.get_ref().clone(),
        project: super::compose::project_name(stack),
        deploy: stack.deploy.as_ref().map(|r| labels(r.steps.get_ref())),
        migrate: stack.migrate.as_ref().map(|r| labels(r.steps.get_ref())),
        actions: stack
            .actions
            .iter()
            .map(|a| ActionInfo {
                name: a.name.get_ref().clone(),
                key: a.key.as_ref().and_then(|k| k.get_ref().chars().next()),
                description: a.description.clone(),
                steps: labels(a.steps.get_ref()),
                dangerous: a.dangerous,
            })
            .collect(),
    }
}

/// The stack a request names: by name, or, when the name is empty, the host's only stack
/// that can do what is asked (the only one with a deploy recipe, say).
pub fn find_stack<'a>(
    hname: &str,
    stacks: &'a [Stack],
    name: &str,
    kind: &JobKind,
) -> Result<&'a Stack, String> {
    let names = |list: &[&Stack]| {
        list.iter()
            .map(|s| s.name.get_ref().as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if !name.is_empty() {
        return stacks
            .iter()
            .find(|s| s.name.get_ref() == name)
            .ok_or_else(|| {
                let all: Vec<&Stack> = stacks.iter().collect();
                format!(
                    "host {hname} has no stack {name:?} (stacks: {})",
                    names(&all)
                )
            });
    }
    let fits = |s: &&Stack| match kind {
        JobKind::Deploy | JobKind::Rollback => s.deploy.is_some(),
        JobKind::Migrate => s.migrate.is_some(),
        JobKind::Custom { name } => s.actions.iter().any(|a| a.name.get_ref() == name),
        JobKind::Backup { set } => s.backups.iter().any(|b| b.name.get_ref() == set),
        JobKind::Restart { .. } | JobKind::RestartStack | JobKind::Container { .. } => true,
    };
    let fitting: Vec<&Stack> = stacks.iter().filter(fits).collect();
    match fitting.as_slice() {
        [only] => Ok(only),
        [] if stacks.is_empty() => Err(format!("host {hname} has no stacks in the inventory")),
        [] => {
            let what = match kind {
                JobKind::Deploy | JobKind::Rollback => "a deploy recipe".to_string(),
                JobKind::Migrate => "a migrate recipe".to_string(),
                JobKind::Custom { name } => {
                    let known: Vec<&str> = stacks
                        .iter()
                        .flat_map(|s| s.actions.iter().map(|a| a.name.get_ref().as_str()))
                        .collect();
                    let known = if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    };
                    format!("an action {name:?} (actions: {known})")
                }
                JobKind::Backup { set } => format!("a backup set {set:?}"),
                JobKind::Restart { .. } | JobKind::RestartStack | JobKind::Container { .. } => {
                    "that".to_string()
                }
            };
            Err(format!("no stack on {hname} has {what} in the inventory"))
        }
        several => Err(format!(
            "host {hname} has several stacks for this: choose one with --stack (stacks: {})",
            names(several)
        )),
    }
}

/// The job for a request on a host (its name and its stacks, from the inventory).
pub fn plan(hname: &str, stacks: &[Stack], req: &JobRequest) -> Result<Plan, String> {
    let hname = hname.to_string();
    let restart_outside = matches!(
        req.kind,
        JobKind::Restart { .. } | JobKind::Container { .. }
    ) && req.stack.is_empty();
    let stack = if restart_outside {
        None
    } else {
        Some(find_stack(&hname, stacks, &req.stack, &req.kind)?)
    };
    let sname = stack.map(|s| s.name.get_ref().clone()).unwrap_or_default();
    let mut timeout = None;
    let mut mutating = true;
    let mut shared_lock = false;
    let steps = match (&req.kind, stack) {
        (JobKind::Deploy, Some(st)) => {
            let recipe = st
                .deploy
                .as_ref()
                .ok_or_else(|| format!("stack {sname} on {hname} has no deploy recipe"))?;
            timeout = recipe.timeout.map(|t| t.as_duration());
            let preflight = super::preflight::Settings {
                force: req.opts.force,
                ..Default::default()
            };
            let mut steps = vec![
                PlannedStep::new(StepKind::Preflight(preflight)),
                PlannedStep::new(StepKind::RecordImages),
            ];
            steps.extend(steps_of(recipe.steps.get_ref()));
            steps
        }
        (JobKind::Migrate, Some(st)) => {
            let recipe = st
                .migrate
                .as_ref()
                .ok_or_else(|| format!("stack {sname} on {hname} has no migrate recipe"))?;
            timeout = recipe.timeout.map(|t| t.as_duration());
            steps_of(recipe.steps.get_ref())
        }
        (JobKind::Rollback, Some(st)) => {
            let wait = st
                .deploy
                .as_ref()
                .and_then(|d| {
                    d.steps.get_ref().iter().find_map(|s| match s {
                        Step::WaitHealthy(d) => Some(*d),
                        Step::Run(_) => None,
                    })
                })
                .unwrap_or(DEFAULT_WAIT);
            let up = CommandLine {
                argv: ["compose", "up", "-d", "--no-build"]
                    .map(String::from)
                    .to_vec(),
            };
            vec![
                PlannedStep::new(StepKind::RestoreImages),
                PlannedStep::new(StepKind::Run(up)),
                PlannedStep::new(StepKind::WaitHealthy(wait)),
            ]
        }
        (JobKind::Restart { id, name }, _) => vec![PlannedStep::new(StepKind::Restart {
            id: id.clone(),
            name: name.clone(),
        })],
        (JobKind::RestartStack, Some(_)) => vec![PlannedStep::new(StepKind::RestartProject)],
        (JobKind::Container { op, id, name }, _) => {
            vec![PlannedStep::new(StepKind::Container {
                op: *op,
                id: id.clone(),
                name: name.clone(),
            })]
        }
        (JobKind::Custom { name }, Some(st)) => {
            let action = st
                .actions
                .iter()
                .find(|a| a.name.get_ref() == name)
                .ok_or_else(|| {
                    let known: Vec<&str> = st
                        .actions
                        .iter()
                        .map(|a| a.name.get_ref().as_str())
                        .collect();
                    format!(
                        "stack {sname} on {hname} has no action {name:?} (actions: {})",
                        if known.is_empty() {
                            "none".to_string()
                        } else {
                            known.join(", ")
                        }
                    )
                })?;
            // Only what the inventory marks dangerous counts as changing the host.
            mutating = action.dangerous;
            steps_of(action.steps.get_ref())
        }
        (JobKind::Backup { set }, Some(st)) => {
            let b = st
                .backups
                .iter()
                .find(|b| b.name.get_ref() == set)
                .ok_or_else(|| format!("stack {sname} on {hname} has no backup set {set:?}"))?;
            if b.pg_dump.is_none() && b.file_copy.is_none() {
                return Err(format!(
                    "backup set {set:?} has no pg_dump or file_copy recipe: opsdeck only watches it"
                ));
            }
            shared_lock = true;
            vec![PlannedStep::new(StepKind::Backup(Box::new(b.clone())))]
        }
        (_, None) => return Err("this action needs a stack".into()),
    };
    // A container outside any stack of the inventory is acted on without a lock.
    let project = stack.map(super::compose::project_name);
    Ok(Plan {
        host: hname,
        stack_name: sname.clone(),
        stack: stack.cloned(),
        project,
        shared_lock,
        action: req.action(),
        audit_action: match &req.kind {
            JobKind::Backup { .. } => "backup".into(),
            _ => req.action(),
        },
        steps,
        timeout,
        checks: stack
            .map(|st| {
                st.checks
                    .iter()
                    .map(|c| CheckSpec::new(Some(&sname), c))
                    .collect()
            })
            .unwrap_or_default(),
        services: stack.map(|s| s.services.clone()).unwrap_or_default(),
        mutating,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Host, parse_str};
    use std::path::Path;

    fn host(text: &str) -> Host {
        parse_str(text, Path::new("t.toml"))
            .unwrap()
            .hosts
            .remove(0)
    }

    fn plan(h: &Host, req: &JobRequest) -> Result<Plan, String> {
        super::plan(h.name.get_ref(), &h.stacks, req)
    }

    const LILA: &str = r#"
[[host]]
name = "lila"
[[host.stack]]
name = "lila"
dir = "~/lila"
project = "lila"
[host.stack.deploy]
steps = ["compose pull", "compose up -d", { wait_healthy = "90s" }]
timeout = "10m"
[[host.stack.action]]
name = "restart caddy"
key = "C"
steps = ["compose restart caddy"]
dangerous = true
[[host.stack.action]]
name = "ps"
steps = ["compose ps"]
[[host.stack.check]]
name = "site"
url = "http://127.0.0.1/"
[[host.stack.backup]]
name = "db"
dir = "~/backups"
glob = "lila-*.sql.gz"
max_age = "26h"
[host.stack.backup.pg_dump]
service = "database"
database = "lila"
"#;

    fn req(kind: JobKind) -> JobRequest {
        JobRequest {
            stack: String::new(),
            kind,
            opts: Default::default(),
        }
    }

    #[test]
    fn deploys_record_images_first_and_keep_the_recipe() {
        let h = host(LILA);
        let p = plan(&h, &req(JobKind::Deploy)).unwrap();
        assert_eq!(
            p.labels(),
            [
                crate::model::preflight::STEP_LABEL,
                "record the image IDs in use (for a rollback)",
                "compose pull",
                "compose up -d",
                "wait healthy (up to 1m30s)"
            ]
        );
        assert_eq!(p.project.as_deref(), Some("lila"));
        assert_eq!(p.timeout, Some(Duration::from_secs(600)));
        assert_eq!(p.checks.len(), 1);
        assert!(p.mutating && !p.shared_lock);
    }

    #[test]
    fn rollback_borrows_the_deploys_wait() {
        let p = plan(&host(LILA), &req(JobKind::Rollback)).unwrap();
        assert_eq!(p.steps[1].label, "compose up -d --no-build");
        assert!(
            matches!(p.steps[2].kind, StepKind::WaitHealthy(d) if d == Duration::from_secs(90))
        );
    }

    #[test]
    fn custom_actions_mutate_only_when_dangerous() {
        let h = host(LILA);
        let custom = |n: &str| {
            plan(
                &h,
                &req(JobKind::Custom {
                    name: n.to_string(),
                }),
            )
        };
        assert!(custom("restart caddy").unwrap().mutating);
        assert!(!custom("ps").unwrap().mutating);
        let err = custom("nope").unwrap_err();
        assert!(err.contains("actions: restart caddy, ps"), "{err}");
    }

    #[test]
    fn missing_recipes_and_stacks_are_refused_before_anything_runs() {
        let h = host(LILA);
        let err = plan(&h, &req(JobKind::Migrate)).unwrap_err();
        assert_eq!(
            err,
            "no stack on lila has a migrate recipe in the inventory"
        );
        let named = plan(
            &h,
            &JobRequest {
                stack: "lila".into(),
                kind: JobKind::Migrate,
                opts: Default::default(),
            },
        )
        .unwrap_err();
        assert_eq!(named, "stack lila on lila has no migrate recipe");
        let err = plan(
            &h,
            &JobRequest {
                stack: "web".into(),
                kind: JobKind::Deploy,
                opts: Default::default(),
            },
        )
        .unwrap_err();
        assert!(err.contains("no stack \"web\" (stacks: lila)"), "{err}");
        let b = plan(&h, &req(JobKind::Backup { set: "db".into() })).unwrap();
        assert!(b.shared_lock);
        // A container outside any stack can be restarted, without a lock.
        let r = plan(
            &h,
            &req(JobKind::Restart {
                id: "abc".into(),
                name: "coolify-app".into(),
            }),
        )
        .unwrap();
        assert_eq!(r.project, None);
    }
}
