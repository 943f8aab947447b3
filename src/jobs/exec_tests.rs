//! Jobs on this machine through the real step wrapper and lock scripts: streaming, stop at
//! the first failure, quoting, cancel and timeout really stopping the step's process
//! group, a dropped job cleaning up, the lock refusing a second job, the audit record.

use std::path::Path;
use std::time::Duration;

use tokio::sync::mpsc;

use super::exec::{self, Context};
use super::plan;
use super::runner::Local;
use crate::config::parse_str;
use crate::model::job::{JobEvent, JobKind, JobRecord, JobRequest, LineKind};

struct Setup {
    home: tempfile::TempDir,
    local: Local,
    stacks: Vec<crate::config::Stack>,
}

impl Setup {
    /// One local host whose stack `app` lives in `dir` and has `extra` (TOML) added.
    fn new(dir: &str, extra: &str) -> Setup {
        let home = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(home.path().join("app")).unwrap();
        let text = format!(
            "[[host]]\nname = \"h\"\naddress = \"local\"\n[[host.stack]]\nname = \"app\"\ndir = {dir:?}\ncompose = \"docker-compose\"\n{extra}\n"
        );
        let stacks = parse_str(&text, Path::new("t.toml"))
            .unwrap()
            .hosts
            .remove(0)
            .stacks;
        let local = Local {
            home: Some(home.path().to_path_buf()),
        };
        Setup {
            home,
            local,
            stacks,
        }
    }

    fn path(&self, rel: &str) -> std::path::PathBuf {
        self.home.path().join(rel)
    }

    fn ctx(&self) -> Context<'_, Local> {
        Context {
            runner: &self.local,
            docker: None,
            tunnel: None,
            docker_host: None,
            audit: Some(self.path("state/audit.jsonl")),
            user: "tester".into(),
        }
    }

    fn plan(&self, kind: JobKind) -> plan::Plan {
        let req = JobRequest {
            stack: "app".into(),
            kind,
            opts: Default::default(),
        };
        plan::plan("h", &self.stacks, &req).unwrap()
    }

    async fn run_with(
        &self,
        kind: JobKind,
        cancel: exec::CancelReceiver,
    ) -> (JobRecord, Vec<JobEvent>) {
        let plan = self.plan(kind);
        let (tx, mut rx) = mpsc::channel(1000);
        let record = exec::execute(&self.ctx(), &plan, &tx, cancel).await;
        drop(tx);
        let mut events = Vec::new();
        while let Some(e) = rx.recv().await {
            events.push(e);
        }
        (record, events)
    }

    async fn run(&self, kind: JobKind) -> (JobRecord, Vec<JobEvent>) {
        let (_keep, cancel) = exec::cancel_channel();
        self.run_with(kind, cancel).await
    }
}

fn custom(name: &str) -> JobKind {
    JobKind::Custom { name: name.into() }
}

fn action(name: &str, steps: &[&str]) -> String {
    let steps: Vec<String> = steps.iter().map(|s| format!("{s:?}")).collect();
    format!(
        "[[host.stack.action]]\nname = \"{name}\"\nsteps = [{}]\ndangerous = true\n",
        steps.join(", ")
    )
}

fn alive(pid: &str) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // a zombie is as good as gone
    !stat.is_empty() && stat.split_whitespace().nth(2) != Some("Z")
}

#[tokio::test]
async fn steps_stream_in_order_and_the_first_failure_stops_the_job() {
    let s = Setup::new(
        "~/app",
        &action(
            "go",
            &[
                "sh -c 'echo out-$(basename $PWD); echo err >&2'",
                "false",
                "touch never",
            ],
        ),
    );
    let (record, events) = s.run(custom("go")).await;
    assert_eq!(
        record.outcome, "failed: step 2/3 (false): exit status 1",
        "{record:?}"
    );
    let steps: Vec<(&str, Option<i32>, &str)> = record
        .steps
        .iter()
        .map(|r| (r.step.as_str(), r.exit, r.outcome.as_str()))
        .collect();
    assert_eq!(
        steps,
        [
            (
                "sh -c 'echo out-$(basename $PWD); echo err >&2'",
                Some(0),
                "ok"
            ),
            ("false", Some(1), "failed"),
            ("touch never", None, "skipped"),
        ]
    );
    assert!(!s.path("app/never").exists());
    let out: Vec<(Option<usize>, LineKind, &str)> = record
        .output
        .iter()
        .map(|l| (l.step, l.kind, l.text.as_str()))
        .collect();
    assert!(
        out.contains(&(Some(0), LineKind::Out, "out-app")),
        "{out:?}"
    );
    assert!(out.contains(&(Some(0), LineKind::Err, "err")), "{out:?}");
    // events: planned first, finished last, a start and an end per step that ran
    assert!(matches!(&events[0], JobEvent::Planned { steps } if steps.len() == 3));
    assert!(matches!(events.last(), Some(JobEvent::Finished(Err(_)))));
    let started = events
        .iter()
        .filter(|e| matches!(e, JobEvent::StepStarted { .. }))
        .count();
    assert_eq!(started, 2);
    // and the record is in the audit log, as one JSON line
    let text = std::fs::read_to_string(s.path("state/audit.jsonl")).unwrap();
    let back: JobRecord = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(back, record);
    assert_eq!(back.user, "tester");
}

#[tokio::test]
async fn config_values_are_arguments_never_shell() {
    let marker = format!("/tmp/opsdeck-pwned-{}", std::process::id());
    let _ = std::fs::remove_file(&marker);
    let s = Setup::new(&format!("~/x; touch {marker}"), &action("go", &["echo hi"]));
    let (record, _) = s.run(custom("go")).await;
    assert!(
        record
            .outcome
            .contains("cannot enter the stack directory x; touch"),
        "{}",
        record.outcome
    );
    assert!(!Path::new(&marker).exists(), "the dir was run as shell");
    // words with shell syntax reach the program as they are
    let s = Setup::new(
        "~/app",
        &action("go", &[&format!("echo $(touch {marker}) ; `id` | x")]),
    );
    let (record, _) = s.run(custom("go")).await;
    assert_eq!(record.outcome, "ok");
    assert_eq!(
        record.output.last().unwrap().text,
        format!("$(touch {marker}) ; `id` | x")
    );
    assert!(!Path::new(&marker).exists());
}

#[tokio::test]
async fn cancel_stops_the_steps_whole_process_group() {
    let s = Setup::new(
        "~/app",
        &action(
            "slow",
            &[
                "sh -c 'sleep 300 & echo $! > bg.pid; echo $$ > fg.pid; wait'",
                "touch after",
            ],
        ),
    );
    let (cancel, rx) = exec::cancel_channel();
    let pids = s.path("app/bg.pid");
    let job = s.run_with(custom("slow"), rx);
    let canceller = async {
        for _ in 0..50 {
            if std::fs::read_to_string(&pids).is_ok_and(|p| !p.is_empty()) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        cancel
            .send(Some("cancelled by the operator".into()))
            .unwrap();
    };
    let ((record, _), ()) = tokio::time::timeout(Duration::from_secs(15), async {
        tokio::join!(job, canceller)
    })
    .await
    .expect("the cancelled job ends");
    assert!(
        record
            .outcome
            .starts_with("cancelled: cancelled by the operator"),
        "{}",
        record.outcome
    );
    assert_eq!(record.steps[0].outcome, "cancelled");
    assert_eq!(record.steps[1].outcome, "skipped");
    assert!(!s.path("app/after").exists());
    let bg = std::fs::read_to_string(&pids).unwrap();
    let fg = std::fs::read_to_string(s.path("app/fg.pid")).unwrap();
    for pid in [bg.trim(), fg.trim()] {
        let mut gone = false;
        for _ in 0..60 {
            if !alive(pid) {
                gone = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(gone, "process {pid} of the cancelled step still runs");
    }
}

#[tokio::test]
async fn a_recipe_timeout_stops_the_running_step() {
    let s = Setup::new(
        "~/app",
        "[host.stack.migrate]\nsteps = [\"sleep 30\"]\ntimeout = \"1s\"\n",
    );
    let started = std::time::Instant::now();
    let (record, _) = s.run(JobKind::Migrate).await;
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(
        record
            .outcome
            .contains("timed out: the recipe's timeout of 1s passed"),
        "{}",
        record.outcome
    );
}

#[tokio::test]
async fn a_dropped_job_stops_its_step_on_the_host() {
    let s = Setup::new(
        "~/app",
        &action("slow", &["sh -c 'echo $$ > fg.pid; exec sleep 300'"]),
    );
    let pid_file = s.path("app/fg.pid");
    let dropped = tokio::time::timeout(Duration::from_millis(1500), s.run(custom("slow"))).await;
    assert!(dropped.is_err(), "the step should still be running");
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    let mut gone = false;
    for _ in 0..80 {
        if !alive(pid.trim()) {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(gone, "the step outlived opsdeck");
}

#[tokio::test]
async fn a_second_job_on_the_stack_is_refused_while_one_runs() {
    // The first job holds the lock until the test lets it go (a file appears), so the
    // second is started while it certainly runs, whatever the machine's load.
    let s = Setup::new(
        "~/app",
        &action(
            "one",
            &[
                "sh -c 'touch started; while [ ! -e go ]; do sleep 0.02; done'",
                "sh -c 'echo ran >> ran.log'",
            ],
        ),
    );
    let first = s.run(custom("one"));
    let second = async {
        let started = s.path("app/started");
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while !started.exists() {
            assert!(
                std::time::Instant::now() < deadline,
                "the first job never started"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let refused = s.run(custom("one")).await;
        std::fs::write(s.path("app/go"), "").unwrap();
        refused
    };
    let ((a, _), (b, events)) = tokio::join!(first, second);
    assert_eq!(a.outcome, "ok");
    assert!(
        b.outcome
            .starts_with("refused: app on h is locked by tester@"),
        "{}",
        b.outcome
    );
    assert!(b.outcome.contains("(one, opsdeck pid"), "{}", b.outcome);
    assert!(b.steps.iter().all(|s| s.outcome == "skipped"));
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, JobEvent::StepStarted { .. }))
    );
    assert_eq!(
        std::fs::read_to_string(s.path("app/ran.log")).unwrap(),
        "ran\n"
    );
    // and the lock is free again afterwards
    let (c, _) = s.run(custom("one")).await;
    assert_eq!(c.outcome, "ok");
}

#[tokio::test]
async fn a_job_is_done_only_once_its_lock_is_released() {
    // A job started the moment the previous one reported its end never meets that one's
    // lock: the end is reported after the holder on the host has let go.
    let s = Setup::new("~/app", &action("one", &["true"]));
    for i in 0..200 {
        let (r, _) = s.run(custom("one")).await;
        assert_eq!(r.outcome, "ok", "job {i}");
    }
}

#[tokio::test]
async fn docker_steps_say_so_when_docker_is_unreachable() {
    let s = Setup::new("~/app", "[host.stack.deploy]\nsteps = [\"true\"]\n");
    // the pre-flight warns first, and a deploy that is not forced stops there
    let (record, _) = s.run(JobKind::Deploy).await;
    assert_eq!(
        record.outcome,
        "refused: pre-flight warning (force to deploy anyway): Docker's root directory is not known: Docker is not reachable on the host"
    );
    let outcomes: Vec<&str> = record.steps.iter().map(|s| s.outcome.as_str()).collect();
    assert_eq!(outcomes, ["refused", "skipped", "skipped"]);
    // forced, it goes on to the first step that needs Docker
    let mut plan = s.plan(JobKind::Deploy);
    for step in &mut plan.steps {
        if let plan::StepKind::Preflight(p) = &mut step.kind {
            p.force = true;
        }
    }
    let (tx, _rx) = mpsc::channel(1000);
    let (_keep, cancel) = exec::cancel_channel();
    let record = exec::execute(&s.ctx(), &plan, &tx, cancel).await;
    assert_eq!(
        record.outcome,
        "failed: step 2/3 (record the image IDs in use (for a rollback)): Docker is not reachable on the host"
    );
    assert_eq!(record.steps[0].outcome, "ok");
}
