use super::*;
use crate::jobs::Local;
use std::path::Path;
use std::process::Command;

fn lines(text: &str) -> Vec<String> {
    text.lines().map(str::to_string).collect()
}

#[test]
fn the_script_parses_in_sh() {
    let check = Command::new("sh")
        .args(["-n", "-c", SCRIPT])
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
}

#[test]
fn df_reads_the_filesystem_line_whatever_its_names() {
    let body = lines(
        "/srv/backups\nFilesystem 1024-blocks Used Available Capacity Mounted on\n\
         /dev/mapper/vg0-data with space 1000 900 100 90% /srv/my backups\n",
    );
    let df = parse_df(&body).unwrap();
    assert_eq!(df.mount, "/srv/my backups");
    assert_eq!((df.used_kb, df.avail_kb), (900, 100));
    assert_eq!(df.used_pct(), 90.0);
    assert_eq!(df.avail_bytes(), 102_400);
    let err = parse_df(&lines("x\ndf: /nope: No such file or directory\n")).unwrap_err();
    assert!(err.contains("No such file"), "{err}");
    assert!(parse_df(&[]).is_err());
    // a full filesystem of nothing is full, not a division by zero
    let empty = Df {
        path: "/".into(),
        mount: "/".into(),
        used_kb: 0,
        avail_kb: 0,
    };
    assert_eq!(empty.used_pct(), 100.0);
}

#[test]
fn porcelain_paths_are_unquoted_made_safe_and_renames_give_the_new_name() {
    assert_eq!(
        porcelain_path(" M app/main.py").as_deref(),
        Some("app/main.py")
    );
    assert_eq!(
        porcelain_path("R  old.py -> new.py").as_deref(),
        Some("new.py")
    );
    assert_eq!(
        porcelain_path(r#" M "caf\303\251 \"x\".txt""#).as_deref(),
        Some("café \"x\".txt")
    );
    // an escape sequence in a name is shown inert
    assert_eq!(
        porcelain_path(r#" M "\033]52;c;eA==\007evil""#).as_deref(),
        Some("evil")
    );
    assert_eq!(porcelain_path("M"), None);
    assert_eq!(porcelain_path(" Mé"), None);
    assert_eq!(unquote_git(r#""\""#), "\\");
    assert_eq!(unquote_git(r#""\777x""#), "\u{fffd}x");
}

#[test]
fn the_lock_is_held_when_proc_locks_names_its_inode() {
    let held = lines(
        "ino 1234\nL 1: FLOCK  ADVISORY  WRITE 4242 fd:01:1234 0 EOF\n\
         holder 4242 alice@laptop since T (deploy, opsdeck pid 7)\nalive yes\n",
    );
    assert_eq!(
        parse_lock(&held),
        LockSeen::Held("alice@laptop since T (deploy, opsdeck pid 7)".into())
    );
    let other = lines(
        "ino 1234\nL 1: FLOCK  ADVISORY  WRITE 4242 fd:01:12345 0 EOF\nholder 1 x\nalive yes\n",
    );
    assert_eq!(parse_lock(&other), LockSeen::Free);
    let no_proc = lines("ino 1\nnolocks\nholder 99 bob\nalive yes\n");
    assert_eq!(parse_lock(&no_proc), LockSeen::Held("bob".into()));
    assert_eq!(parse_lock(&lines("nofile\n")), LockSeen::NoFile);
}

fn names() -> Names {
    Names {
        dir: "~/app".into(),
        env_file: Some(".env.prod".into()),
        root: Some(Ok("/var/lib/docker".into())),
        backups: vec![("~/backups".into(), vec!["db".into()])],
        pulls_code: true,
        uses_compose: true,
        images_size: Some(2_000_000_000),
        disk_warn: 90.0,
        probe_lock: true,
    }
}

const GOOD: &str = "\n@@opsdeck df root\n/var/lib/docker\nFilesystem 1024-blocks Used Available Capacity Mounted on\n/dev/vda 100000000 50000000 50000000 50% /\n\
\n@@opsdeck df 0\n./backups\nFilesystem 1024-blocks Used Available Capacity Mounted on\ntmpfs 1000 990 10 99% /home/u/backups\n\
\n@@opsdeck lock\nnofile\n\
\n@@opsdeck dir\nok\n\
\n@@opsdeck env\npresent\n\
\n@@opsdeck git\nrepo\nabc1234\nmain\n\
\n@@opsdeck status\n@@rc 0\n\
\n@@opsdeck upstream\norigin/main\nabc1234\n0\t0\n\
\n@@opsdeck compose\n@@rc 0\n\
\n@@opsdeck images\nimage\tapi\t\"reg:5000/app/api:1\"\nimage\tweb\treg:5000/app/web:1\nbuild\tweb\n";

#[test]
fn a_level_checkout_and_a_full_backup_dir_are_warnings_the_rest_passes() {
    let g = parse(GOOD.as_bytes());
    assert_eq!(
        g.images,
        [("api".to_string(), "reg:5000/app/api:1".to_string())]
    );
    let r = judge(&g, &names());
    let texts: Vec<(Verdict, &str)> = r
        .items
        .iter()
        .map(|i| (i.verdict, i.text.as_str()))
        .collect();
    assert_eq!(
        texts,
        [
            (
                Verdict::Ok,
                "Docker's root /var/lib/docker: 50 % free (51.2 GB) on /"
            ),
            (
                Verdict::Warn,
                "~/backups: 1 % free (10.2 kB) on /home/u/backups: under 10 % free"
            ),
            (Verdict::Ok, "no other job holds the lock"),
            (Verdict::Ok, "env file .env.prod present"),
            (Verdict::Ok, "checkout clean (main at abc1234)"),
            (
                Verdict::Warn,
                "nothing new to deploy: level with origin/main at abc1234"
            ),
            (Verdict::Ok, "compose config -q passes"),
        ]
    );
    // a deploy that does not pull has nothing to say about being level
    let mut n = names();
    n.pulls_code = false;
    n.disk_warn = 100.0;
    let r = judge(&g, &n);
    assert_eq!(r.verdict(), Verdict::Ok, "{r:?}");
}

#[test]
fn refusals_name_the_file_the_compose_error_and_the_lock_holder() {
    let text = GOOD
        .replace("@@opsdeck status\n@@rc 0", "@@opsdeck status\n M app/main.py\n M b\n M c\n M d\n@@rc 0")
        .replace("@@opsdeck compose\n@@rc 0", "@@opsdeck compose\n\nERROR: yaml.scanner.ScannerError: mapping values are not allowed here\n  in x\n@@rc 1")
        .replace("present", "missing")
        .replace("0\t0", "2\t3");
    let text = text.replace(
        "@@opsdeck lock\nnofile",
        "@@opsdeck lock\nino 7\nL 1: FLOCK ADVISORY WRITE 9 08:01:7 0 EOF\nholder 9 bob@ci since T (deploy)",
    );
    let r = judge(&parse(text.as_bytes()), &names());
    let refused: Vec<&str> = r.with(Verdict::Refuse).map(|i| i.text.as_str()).collect();
    assert_eq!(
        refused,
        [
            "another job holds the stack's lock: bob@ci since T (deploy)",
            "env file .env.prod is missing in ~/app",
            "checkout has changes: app/main.py, b, c and 1 more",
            "diverged from origin/main: 2 commits ahead, 3 commits behind",
            "compose config failed: ERROR: yaml.scanner.ScannerError: mapping values are not allowed here",
        ]
    );
    assert_eq!(
        r.stops(true).unwrap(),
        "pre-flight: another job holds the stack's lock: bob@ci since T (deploy) (and 4 more)"
    );
}

#[test]
fn where_the_checkout_stands_against_its_upstream() {
    let at = |counts: &str, pulls: bool| {
        let g = parse(GOOD.replace("0\t0", counts).as_bytes());
        let mut n = names();
        n.pulls_code = pulls;
        judge(&g, &n)
            .items
            .into_iter()
            .find(|i| i.topic == Topic::Origin)
            .map(|i| (i.verdict, i.text))
            .unwrap()
    };
    assert_eq!(
        at("0\t3\nabc1234 Add table \u{1b}[2Jnotes (migration 0003)", true),
        (
            Verdict::Ok,
            "3 commits behind origin/main: 3 commits to deploy, up to abc1234 Add table notes (migration 0003)"
                .into()
        )
    );
    assert_eq!(
        at("0\t3", true),
        (
            Verdict::Ok,
            "3 commits behind origin/main: 3 commits to deploy".into()
        )
    );
    assert_eq!(
        at("0\t1", false),
        (
            Verdict::Ok,
            "1 commit behind origin/main (the deploy recipe does not pull)".into()
        )
    );
    assert_eq!(
        at("2\t0", true),
        (
            Verdict::Warn,
            "2 commits ahead of origin/main: not pushed".into()
        )
    );
    assert_eq!(at("1\t1", false).0, Verdict::Warn);
    assert_eq!(at("garbage", true).0, Verdict::Warn);
    // a missing stack dir says so and nothing else about it
    let g = parse(b"\n@@opsdeck dir\nmissing\n");
    let r = judge(&g, &names());
    assert_eq!(r.verdict(), Verdict::Refuse);
    assert!(
        r.items
            .iter()
            .any(|i| i.text.contains("~/app does not exist")),
        "{r:?}"
    );
    // an answer cut before the stack dir
    let r = judge(&parse(b""), &names());
    assert!(
        r.items
            .iter()
            .any(|i| i.topic == Topic::Preflight && i.verdict == Verdict::Refuse)
    );
}

#[test]
fn the_images_of_a_stack_count_against_dockers_root() {
    let g = parse(GOOD.as_bytes());
    let mut n = names();
    n.images_size = Some(60_000_000_000);
    let r = judge(&g, &n);
    assert_eq!(r.items[0].verdict, Verdict::Warn);
    assert!(
        r.items[0]
            .text
            .ends_with("less than the 60.0 GB of the images the stack runs now"),
        "{}",
        r.items[0].text
    );
}

#[test]
fn recipes_say_whether_they_pull_code_or_images() {
    let steps = |s: &[&str]| -> Vec<Step> {
        s.iter()
            .map(|t| Step::Run(crate::config::CommandLine::parse(t).unwrap()))
            .collect()
    };
    assert!(pulls_code(&steps(&["git pull --ff-only", "compose up -d"])));
    assert!(!pulls_code(&steps(&["compose up -d --build"])));
    assert!(pulls_images(&steps(&["compose pull", "compose up -d"])));
    assert!(!pulls_images(&steps(&["compose build --pull"])));
    assert!(plain_reference("127.0.0.1:5000/lila/api:latest"));
    assert!(plain_reference("postgres@sha256:abc"));
    assert!(!plain_reference("x/../../containers/json?"));
    assert!(!plain_reference(""));
}

/// A git origin and a checkout of it in a temporary home, for the script run for real.
fn repo(home: &Path) {
    let git = |dir: &Path, args: &[&str]| {
        let out = Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@t")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@t")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    git(home, &["init", "-q", "--bare", "-b", "main", "origin.git"]);
    git(home, &["clone", "-q", "origin.git", "app"]);
    let app = home.join("app");
    std::fs::write(app.join("main.py"), "print(1)\n").unwrap();
    git(&app, &["add", "main.py"]);
    git(&app, &["commit", "-q", "-m", "one"]);
    git(&app, &["push", "-q", "origin", "main"]);
}

#[tokio::test]
async fn the_script_reads_a_real_checkout() {
    if Command::new("git").arg("--version").output().is_err() {
        eprintln!("no git here: skipped");
        return;
    }
    let home = tempfile::tempdir().unwrap();
    repo(home.path());
    std::fs::write(home.path().join("app/.env.prod"), "X=1\n").unwrap();
    let local = Local {
        home: Some(home.path().to_path_buf()),
    };
    let inputs = Inputs {
        dir: "./app".into(),
        env_file: ".env.prod".into(),
        root: home.path().display().to_string(),
        fetch: true,
        lock_file: ".local/state/opsdeck/app.lock".into(),
        images: true,
        backup_dirs: vec!["./backups/not-yet".into()],
        // a compose that fails its config, as a broken file would
        compose: [
            "sh",
            "-c",
            "echo 'ERROR: broken yaml' >&2; exit 1",
            "compose",
        ]
        .map(String::from)
        .to_vec(),
    };
    let run = |i: &Inputs| {
        let cmd = command(None, i).unwrap();
        let local = local.clone();
        async move { parse(&local.run(&cmd).await.unwrap().stdout) }
    };
    let g = run(&inputs).await;
    assert_eq!(g.dir, Some(true));
    assert_eq!(g.env.as_deref(), Some("present"));
    assert_eq!(g.lock, Some(LockSeen::NoFile));
    assert!(matches!(&g.root, Some(Ok(_))), "{g:?}");
    // a backup dir not made yet is measured where it would be
    assert!(
        matches!(&g.dirs.get(&0), Some(Ok(df)) if df.path == "."),
        "{g:?}"
    );
    assert_eq!(g.compose, Some(Err("ERROR: broken yaml".into())));
    let Git::Repo(r) = &g.git else {
        panic!("{g:?}")
    };
    assert!(r.changes.is_empty() && r.changes_complete, "{r:?}");
    assert_eq!(r.upstream.as_ref().unwrap().counts, Some((0, 0)));
    assert_eq!(r.branch.as_deref(), Some("main"));
    // a tracked file changed, named; an untracked one is not a change
    std::fs::write(home.path().join("app/main.py"), "print(2)\n").unwrap();
    std::fs::write(home.path().join("app/new.txt"), "x\n").unwrap();
    let g = run(&inputs).await;
    let Git::Repo(r) = &g.git else {
        panic!("{g:?}")
    };
    assert_eq!(r.changes, ["main.py"]);
    let report = judge(&g, &names());
    assert!(
        report
            .with(Verdict::Refuse)
            .any(|i| i.text == "checkout has changes: main.py"),
        "{report:?}"
    );
    // no stack dir
    let gone = Inputs {
        dir: "./nope".into(),
        ..inputs.clone()
    };
    assert_eq!(run(&gone).await.dir, Some(false));
}

mod props {
    use super::*;
    use proptest::prelude::*;

    fn section_line() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("@@opsdeck df root".to_string()),
            Just("@@opsdeck df 0".to_string()),
            Just("@@opsdeck df 99999999999999999999".to_string()),
            Just("@@opsdeck lock".to_string()),
            Just("@@opsdeck dir".to_string()),
            Just("@@opsdeck git".to_string()),
            Just("@@opsdeck status".to_string()),
            Just("@@opsdeck fetch".to_string()),
            Just("@@opsdeck upstream".to_string()),
            Just("@@opsdeck compose".to_string()),
            Just("@@opsdeck images".to_string()),
            Just("@@rc 0".to_string()),
            Just("@@rc 1".to_string()),
            Just("repo".to_string()),
            Just("ok".to_string()),
            Just("L 1: FLOCK ADVISORY WRITE 1 a:b:7 0 EOF".to_string()),
            Just("ino 7".to_string()),
            Just("tmpfs 1 2 3 4% /x".to_string()),
            Just(
                "tmpfs 18446744073709551615 18446744073709551615 18446744073709551615 100% /"
                    .to_string()
            ),
            Just(" M \"\\".to_string()),
            Just("image\ta\t\"".to_string()),
            "[ -~]{0,40}",
            "\\PC{0,20}",
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        #[test]
        fn any_bytes_parse_and_judge_without_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let g = parse(&bytes);
            let r = judge(&g, &names());
            prop_assert!(r.items.len() <= crate::model::preflight::MAX_ITEMS);
        }

        #[test]
        fn shaped_garbage_parses_bounded_and_inert(lines in proptest::collection::vec(section_line(), 0..200)) {
            let text = lines.join("\n");
            let g = parse(text.as_bytes());
            prop_assert!(g.dirs.len() <= MAX_DIRS);
            prop_assert!(g.images.len() <= 100);
            let r = judge(&g, &names());
            for i in &r.items {
                prop_assert!(!i.text.chars().any(crate::sanitize::is_unsafe), "{:?}", i.text);
                prop_assert!(i.text.chars().count() < 2000);
            }
        }
    }
}
