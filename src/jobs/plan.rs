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
    /// Reads the release history and chooses the release a rollback or a restore goes to
    /// (`--to`, else the newest ok one that differs from what runs); changes nothing.
    ChooseRelease { to: Option<String>, need_dump: bool },
    /// The stack's `downgrade` recipe, its `{head}` the chosen release's migration head;
    /// skipped when the heads are the same or the release recorded none.
    Downgrade(Vec<CommandLine>),
    /// `git checkout` of the chosen release's commit in the stack's directory.
    Checkout,
    /// Stops the stack's other services, restores the chosen release's dump into the
    /// set's database, starts them again.
    RestoreDump(Box<BackupSet>),
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
            StepKind::RestoreImages => {
                "put back the chosen release's image IDs (retag, no pull)".into()
            }
            StepKind::ChooseRelease { to: Some(to), .. } => format!("choose release {to}"),
            StepKind::ChooseRelease { to: None, .. } => "choose the release before this one".into(),
            StepKind::Downgrade(cmds) => format!(
                "undo migrations down to the release's head: {}",
                cmds.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
            StepKind::Checkout => "git checkout the release's commit".into(),
            StepKind::RestoreDump(set) => format!(
                "restore the release's dump of {} (its other services stopped meanwhile)",
                set.name.get_ref()
            ),
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
    /// The recipe a release record names when the job ends (deploys, migrations and
    /// rollbacks add one to the stack's history, ok or not); `None` adds none.
    pub release: Option<String>,
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
        JobKind::Restore { set } => pg_set(s, set).is_ok(),
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
                JobKind::Restore { set } if set.is_empty() => "a pg_dump backup set".to_string(),
                JobKind::Restore { set } => format!("a pg_dump backup set {set:?}"),
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
    let mut release = None;
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
            let mut dumped = false;
            for step in steps_of(recipe.steps.get_ref()) {
                if !dumped && is_migration(st, &step.kind) {
                    if let Some(set) = dump_set(st) {
                        steps.push(PlannedStep::new(StepKind::Backup(Box::new(set.clone()))));
                    }
                    dumped = true;
                }
                steps.push(step);
            }
            release = Some("deploy".to_string());
            steps
        }
        (JobKind::Migrate, Some(st)) => {
            let recipe = st
                .migrate
                .as_ref()
                .ok_or_else(|| format!("stack {sname} on {hname} has no migrate recipe"))?;
            timeout = recipe.timeout.map(|t| t.as_duration());
            let mut steps: Vec<PlannedStep> = dump_set(st)
                .map(|set| PlannedStep::new(StepKind::Backup(Box::new(set.clone()))))
                .into_iter()
                .collect();
            steps.extend(steps_of(recipe.steps.get_ref()));
            release = Some("migrate".to_string());
            steps
        }
        (JobKind::Restore { set }, Some(st)) => {
            let b = pg_set(st, set).map_err(|e| format!("stack {sname} on {hname}: {e}"))?;
            vec![
                PlannedStep::new(StepKind::ChooseRelease {
                    to: req.opts.to.clone(),
                    need_dump: true,
                }),
                // what the database holds now, first: a restore loses nothing
                PlannedStep::new(StepKind::Backup(Box::new(b.clone()))),
                PlannedStep::new(StepKind::RestoreDump(Box::new(b.clone()))),
                PlannedStep::new(StepKind::WaitHealthy(deploy_wait(st))),
            ]
        }
        (JobKind::Rollback, Some(st)) => {
            let up = CommandLine {
                argv: ["compose", "up", "-d", "--no-build"]
                    .map(String::from)
                    .to_vec(),
            };
            let mut steps = vec![PlannedStep::new(StepKind::ChooseRelease {
                to: req.opts.to.clone(),
                need_dump: false,
            })];
            if let Some(down) = &st.downgrade {
                let cmds = down
                    .steps
                    .get_ref()
                    .iter()
                    .filter_map(|s| match s {
                        Step::Run(c) => Some(c.clone()),
                        Step::WaitHealthy(_) => None,
                    })
                    .collect();
                steps.push(PlannedStep::new(StepKind::Downgrade(cmds)));
            }
            steps.push(PlannedStep::new(StepKind::RestoreImages));
            if req.opts.checkout {
                steps.push(PlannedStep::new(StepKind::Checkout));
            }
            steps.push(PlannedStep::new(StepKind::Run(up)));
            steps.push(PlannedStep::new(StepKind::WaitHealthy(deploy_wait(st))));
            release = Some("rollback".to_string());
            steps
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
        release,
    })
}

/// How long a rollback or restore waits for health: the deploy recipe's `wait healthy`.
fn deploy_wait(st: &Stack) -> Duration {
    st.deploy
        .as_ref()
        .and_then(|d| {
            d.steps.get_ref().iter().find_map(|s| match s {
                Step::WaitHealthy(d) => Some(*d),
                Step::Run(_) => None,
            })
        })
        .unwrap_or(DEFAULT_WAIT)
}

/// The set a dump before migrating goes to: the stack's first `pg_dump` set, unless the
/// stack says `backup_before_migrate = false`.
fn dump_set(st: &Stack) -> Option<&BackupSet> {
    if !st.backup_before_migrate {
        return None;
    }
    st.backups.iter().find(|b| b.pg_dump.is_some())
}

/// A deploy step that is one of the migrate recipe's steps: a dump goes before the first.
fn is_migration(st: &Stack, kind: &StepKind) -> bool {
    let StepKind::Run(cmd) = kind else {
        return false;
    };
    st.migrate.as_ref().is_some_and(|m| {
        m.steps
            .get_ref()
            .iter()
            .any(|s| matches!(s, Step::Run(c) if c == cmd))
    })
}

/// The `pg_dump` set a restore works on: the named one, else the stack's only one.
fn pg_set<'a>(st: &'a Stack, name: &str) -> Result<&'a BackupSet, String> {
    let sets: Vec<&BackupSet> = st.backups.iter().filter(|b| b.pg_dump.is_some()).collect();
    if !name.is_empty() {
        return sets
            .into_iter()
            .find(|b| b.name.get_ref() == name)
            .ok_or_else(|| format!("no pg_dump backup set {name:?}"));
    }
    match sets.as_slice() {
        [one] => Ok(one),
        [] => Err("no pg_dump backup set to restore into".into()),
        _ => Err("several pg_dump backup sets: name one (restore SET)".into()),
    }
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
        assert_eq!(
            p.labels(),
            [
                "choose the release before this one",
                "put back the chosen release's image IDs (retag, no pull)",
                "compose up -d --no-build",
                "wait healthy (up to 1m30s)"
            ]
        );
        assert!(
            matches!(p.steps[3].kind, StepKind::WaitHealthy(d) if d == Duration::from_secs(90))
        );
        assert_eq!(p.release.as_deref(), Some("rollback"));
    }

    const CS: &str = r#"
[[host]]
name = "cs"
[[host.stack]]
name = "cs"
dir = "~/cs"
migration_head = "compose exec -T app alembic current"
[host.stack.deploy]
steps = ["git pull --ff-only", "compose up -d", "compose exec -T app alembic upgrade head", "compose restart worker"]
[host.stack.migrate]
steps = ["compose exec -T app alembic upgrade head"]
[host.stack.downgrade]
steps = ["compose exec -T app alembic downgrade {head}"]
[[host.stack.backup]]
name = "uploads"
dir = "~/u"
glob = "u-*.tgz"
max_age = "1d"
[[host.stack.backup]]
name = "db"
dir = "~/b"
glob = "cs-*.dump"
max_age = "1d"
[host.stack.backup.pg_dump]
service = "db"
database = "cs"
"#;

    #[test]
    fn a_dump_goes_before_the_first_migration_step_unless_turned_off() {
        let h = host(CS);
        let p = plan(&h, &req(JobKind::Deploy)).unwrap();
        let labels = p.labels();
        // pre-flight, record images, pull, up, the dump, the migration, restart
        assert_eq!(labels.len(), 7, "{labels:?}");
        assert!(labels[4].starts_with("back up db: pg_dump"), "{labels:?}");
        assert_eq!(labels[5], "compose exec -T app alembic upgrade head");
        assert_eq!(p.release.as_deref(), Some("deploy"));
        let m = plan(&h, &req(JobKind::Migrate)).unwrap();
        assert!(m.labels()[0].starts_with("back up db:"), "{:?}", m.labels());
        assert_eq!(m.release.as_deref(), Some("migrate"));
        let off = host(&CS.replace(
            "migration_head =",
            "backup_before_migrate = false\nmigration_head =",
        ));
        assert_eq!(plan(&off, &req(JobKind::Deploy)).unwrap().steps.len(), 6);
        assert_eq!(plan(&off, &req(JobKind::Migrate)).unwrap().steps.len(), 1);
        // lila has no migrate recipe: no step of its deploy is a migration
        assert_eq!(
            plan(&host(LILA), &req(JobKind::Deploy))
                .unwrap()
                .steps
                .len(),
            5
        );
    }

    #[test]
    fn a_rollback_to_a_release_undoes_migrations_and_checks_out_when_asked() {
        let h = host(CS);
        let mut r = req(JobKind::Rollback);
        r.opts.to = Some("3".into());
        r.opts.checkout = true;
        let p = plan(&h, &r).unwrap();
        assert_eq!(
            p.labels(),
            [
                "choose release 3",
                "undo migrations down to the release's head: compose exec -T app alembic downgrade '{head}'",
                "put back the chosen release's image IDs (retag, no pull)",
                "git checkout the release's commit",
                "compose up -d --no-build",
                "wait healthy (up to 2m)"
            ]
        );
        // a restore dumps what is there first, and needs a pg_dump set
        let mut r = req(JobKind::Restore { set: String::new() });
        r.opts.to = Some("3".into());
        let p = plan(&h, &r).unwrap();
        assert_eq!(p.labels()[0], "choose release 3");
        assert!(p.labels()[1].starts_with("back up db:"));
        assert!(p.labels()[2].starts_with("restore the release's dump of db"));
        assert_eq!(p.release, None);
        let err = plan(&host(LILA), &req(JobKind::Restore { set: "nope".into() })).unwrap_err();
        assert_eq!(
            err,
            "no stack on lila has a pg_dump backup set \"nope\" in the inventory"
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
