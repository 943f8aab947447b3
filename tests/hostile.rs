//! Everything a host sends is hostile: lab containers whose log lines, compose labels, a
//! lock-holder file on the host and a TLS certificate's issuer carry text meant to crash
//! opsdeck or to reach the operator's terminal raw (OSC 52 writes the clipboard, CSI
//! sequences redraw the screen, C1 controls do both on a UTF-8 terminal).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;
mod support;

use std::time::Duration;

use common::lab::{LILA, Lab};
use common::run::{TestContainer, borrowed, both, host_inventory, lab_env, opsdeck_command};
use support::tui::Tui;

/// Clipboard write (OSC 52, BEL-terminated), screen clear (CSI), an 8-bit CSI (U+009B),
/// and a right-to-left override.
const EVIL: &str = "\u{1b}]52;c;aGFja2Vk\u{7}\u{1b}[2J\u{1b}[1;1H\u{9b}31m\u{202e}";

/// A container on lila's engine, removed when dropped (and by `tests/run` at start, after
/// an interrupted run: label `opsdeck.test=1`).
#[test]
fn searching_a_log_line_whose_case_folding_changes_byte_lengths() {
    let Some(lab) = Lab::get() else { return };
    // U+023A lower-cases to a longer character, U+212A KELVIN SIGN to a shorter one: the
    // lower-cased line has the same length, and every offset after them differs.
    let _c = TestContainer::run(
        lab,
        LILA,
        "opsdeck-search-log",
        "printf 'before\\n\\310\\272\\310\\272error\\342\\204\\252 here\\n'; \
         printf '\\033]52;c;aGFja2Vk\\007clipboard \\033[2Jline\\n'; exec sleep 3600",
    );
    let home = tempfile::tempdir().unwrap();
    let config = host_inventory(home.path(), lab, &LILA, "");
    let env = lab_env(lab, &config);
    let mut tui = Tui::start_sized(home.path(), &[], &borrowed(&env), 120, 36);
    // One host: the console opens on its host view.
    tui.wait_for("lila's host view", |s| {
        s.contains("fleet › lila") && s.contains("opsdeck-search")
    });
    tui.send("/opsdeck-search\r");
    tui.wait_for("the filter applied", |s| !s.contains("database"));
    tui.send("\r");
    tui.wait_for("the container's log", |s| {
        s.contains("› opsdeck-search-log") && s.contains("\u{23a}\u{23a}error\u{212a} here")
    });
    tui.send("/error\r");
    let screen = tui.wait_for("the search's match", |s| s.contains("/error 1 matches"));
    assert!(
        screen.contains("\u{23a}\u{23a}error\u{212a} here"),
        "{screen}"
    );
    // Drawn on, with the line still there: the console is alive.
    // `n` jumps to the match (the highlight path); the help opening after it says the
    // console read and drew it, and lives.
    tui.send("n?");
    tui.wait_for("the help after n", |s| s.contains("Help: "));
    tui.send("?");
    tui.wait_for("the help closed", |s| !s.contains("Help: "));
    let screen = tui.wait_for("the line after n", |s| {
        s.contains("\u{23a}\u{23a}error\u{212a} here")
    });
    assert!(screen.contains("clipboard line"), "{screen}");
    let raw = String::from_utf8_lossy(&tui.raw).into_owned();
    assert!(!raw.contains("]52;"), "an OSC 52 reached the terminal");
    tui.quit_ok();
}

/// Every byte a terminal acts on: C0 but newline and tab, DEL, and C1 (as UTF-8: C2 80–9F).
fn controls(bytes: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(bytes);
    text.char_indices()
        .filter(|(_, c)| {
            (c.is_control() && *c != '\n' && *c != '\t') || ('\u{202a}'..='\u{202e}').contains(c)
        })
        .map(|(i, c)| {
            let from = text.floor_char_boundary(i.saturating_sub(30));
            format!("U+{:04X} after {:?}", u32::from(c), &text[from..i])
        })
        .collect()
}

/// A CA whose name is hostile, and a certificate for localhost it signed.
fn hostile_tls() -> (
    String,
    rustls::pki_types::CertificateDer<'static>,
    rustls::pki_types::PrivateKeyDer<'static>,
) {
    let ca = common::tls::ca(&format!("evil CA {EVIL} end"));
    // Five days left: `check` warns, naming the issuer.
    let not_after = time::OffsetDateTime::now_utc() + time::Duration::days(5);
    let (cert, key) = common::tls::leaf(&ca, not_after);
    (ca.pem, cert, key)
}

/// Serves `200 ok` over TLS on a port of 127.0.0.1 until the runtime ends.
async fn https_server(
    cert: rustls::pki_types::CertificateDer<'static>,
    key: rustls::pki_types::PrivateKeyDer<'static>,
) -> u16 {
    use tokio::io::AsyncWriteExt;
    common::tls::https_server(cert, key, |mut tls| async move {
        if common::tls::read_request(&mut tls).await.is_some() {
            let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
            let _ = tls.write_all(ok).await;
            let _ = tls.shutdown().await;
        }
    })
    .await
}

/// Holds the lock of project `opsdeck-hostile` on lila, its holder file hostile, until
/// dropped.
struct HostileLock(&'static Lab);

impl HostileLock {
    fn take(lab: &'static Lab) -> Self {
        let holder = "evil\\033]52;c;aGFja2Vk\\007 \\033[2J\\302\\233m\\342\\200\\256 holder";
        let script = format!(
            "d=~/.local/state/opsdeck; mkdir -p $d; \
             setsid flock -x $d/opsdeck-hostile.lock sh -c \
             'printf \"%s %b\\n\" $$ \"{holder}\" >{{d}}/opsdeck-hostile.holder; sleep 120; : opsdeck-hostile-lock' \
             </dev/null >/dev/null 2>&1 & \
             for i in $(seq 50); do [ -s $d/opsdeck-hostile.holder ] && exit 0; sleep 0.1; done; exit 1"
        )
        .replace("{d}", "$HOME/.local/state/opsdeck");
        lab.ssh_ok(&LILA, &script);
        HostileLock(lab)
    }
}

impl Drop for HostileLock {
    fn drop(&mut self) {
        let _ = self.0.ssh(
            &LILA,
            "pkill -f 'opsdeck-hostile-lock'; rm -f ~/.local/state/opsdeck/opsdeck-hostile.*",
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headless_output_carries_no_escape_from_labels_lock_holder_or_issuer() {
    let Some(lab) = Lab::get() else { return };
    let _c = TestContainer::run_with(
        lab,
        LILA,
        "opsdeck-hostile-labels",
        &[],
        &[
            ("com.docker.compose.project", &format!("proj{EVIL}ect")),
            ("com.docker.compose.service", &format!("svc{EVIL}")),
        ],
        "exit 3",
    );
    let _lock = HostileLock::take(lab);
    let (ca_pem, cert, key) = hostile_tls();
    let port = https_server(cert, key).await;
    let home = tempfile::tempdir().unwrap();
    let ca_file = home.path().join("ca.pem");
    std::fs::write(&ca_file, ca_pem).unwrap();
    let body = format!(
        "[[host.check]]\nname = \"tls\"\nurl = \"https://localhost:{port}/\"\nca_file = \"{}\"\n\n\
         [[host.stack]]\nname = \"hostile\"\ndir = \"~\"\nproject = \"opsdeck-hostile\"\n\n\
         [[host.stack.action]]\nname = \"hello\"\nsteps = [\"true\"]\ndangerous = true\n",
        ca_file.display()
    );
    host_inventory(home.path(), lab, &LILA, &body);
    let run = |args: &'static [&'static str]| {
        let home = home.path().to_path_buf();
        async move {
            tokio::task::spawn_blocking(move || {
                opsdeck_command(lab, &home, args)
                    .env("OPSDECK_CONFIG", home.join("hosts.toml"))
                    .output()
                    .unwrap()
            })
            .await
            .unwrap()
        }
    };
    for args in [
        &["status", "lila"][..],
        &["status", "lila", "--json"],
        &["check", "lila"],
        &["check", "lila", "--json"],
        &["run", "lila", "hello", "--yes"],
    ] {
        let out = run(args).await;
        let text = both(&out);
        // The hostile text was really there to be printed.
        match args[0] {
            "status" => {
                assert!(text.contains("evil CA"), "{args:?}: {text}");
                assert!(text.contains("proj"), "{args:?}: {text}");
            }
            "check" => {
                assert!(text.contains("opsdeck-hostile-labels"), "{args:?}: {text}");
                assert!(text.contains("evil CA"), "{args:?}: {text}");
            }
            _ => {
                assert_eq!(out.status.code(), Some(75), "{args:?}: {text}");
                assert!(text.contains("evil"), "{args:?}: {text}");
            }
        }
        let found = controls(&out.stdout);
        assert!(found.is_empty(), "{args:?} stdout: {found:?}\n{text}");
        let found = controls(&out.stderr);
        assert!(found.is_empty(), "{args:?} stderr: {found:?}\n{text}");
    }
    // JSON means what the host said, escaped: a script gets the label back exactly.
    let out = run(&["status", "lila", "--json"]).await;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let containers = v["hosts"][0]["containers"].as_array().unwrap();
    let c = containers
        .iter()
        .find(|c| c["name"] == "opsdeck-hostile-labels")
        .unwrap();
    assert_eq!(c["state"], "exited");
    assert_eq!(c["exit_code"], 3);
    let issuer = v["hosts"][0]["checks"][0]["tls"]["issuer"]
        .as_str()
        .unwrap();
    assert!(issuer.contains("evil CA"), "{issuer}");
}

#[test]
fn opsdeck_logs_sanitises_on_a_terminal_and_is_raw_in_a_pipe() {
    let Some(lab) = Lab::get() else { return };
    let _c = TestContainer::run(
        lab,
        LILA,
        "opsdeck-hostile-cli-log",
        "printf '\\033]52;c;aGFja2Vk\\007clipboard \\033[31mred\\033[0m\\n'; exec sleep 3600",
    );
    let home = tempfile::tempdir().unwrap();
    let config = host_inventory(home.path(), lab, &LILA, "");
    let args = ["logs", "lila", "opsdeck-hostile-cli-log"];
    // In a pipe: the bytes as the container wrote them, like `docker logs`.
    let out = opsdeck_command(lab, home.path(), &args)
        .env("OPSDECK_CONFIG", &config)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", both(&out));
    let piped = String::from_utf8_lossy(&out.stdout);
    assert!(
        piped.contains("\u{1b}]52;c;aGFja2Vk\u{7}clipboard"),
        "{piped:?}"
    );
    // On a terminal: the colours, nothing else.
    let env = lab_env(lab, &config);
    let env: Vec<(&str, Option<&str>)> = env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_deref()))
        .collect();
    let mut tui = Tui::start_sized(home.path(), &args, &env, 120, 36);
    let status = tui.finish();
    assert!(
        matches!(status, expectrl::WaitStatus::Exited(_, 0)),
        "{status:?}"
    );
    let raw = String::from_utf8_lossy(&tui.raw).into_owned();
    assert!(raw.contains("clipboard"), "{raw:?}");
    assert!(!raw.contains("]52;"), "{raw:?}");
    assert!(raw.contains("\u{1b}[31mred"), "{raw:?}");
}

#[tokio::test]
async fn a_tty_progress_bar_without_newlines_is_read_in_bounded_lines() {
    use opsdeck::docker::logs::{self, CUT_MARK, LogDecoder, LogRequest, MAX_LINE_BYTES};
    let Some(lab) = Lab::get() else { return };
    // 4 MB of `\r` progress on a TTY, then one line: bollard's decoder held all of it
    // waiting for a newline.
    let _c = TestContainer::run_with(
        lab,
        LILA,
        "opsdeck-hostile-tty",
        &["-t"],
        &[],
        "i=0; while [ $i -lt 300000 ]; do printf '%d%% ..........\\r' $i; i=$((i+1)); done; \
         printf 'done\\n'; exec sleep 3600",
    );
    let socket_path = lab.docker_socket(&LILA).display().to_string();
    let (docker, _) = opsdeck::docker::connect_unix(&socket_path).await.unwrap();
    let socket = opsdeck::docker::Socket::unix(&socket_path);
    let req = LogRequest {
        follow: true,
        timestamps: true,
        tail: None,
        after: None,
    };
    let mut body = logs::open(&docker, &socket, "opsdeck-hostile-tty", &req)
        .await
        .unwrap();
    assert!(body.tty, "the container has a TTY");
    let mut decoder = LogDecoder::new(body.tty);
    let mut lines = Vec::new();
    let mut bytes = 0usize;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while !lines
        .iter()
        .any(|l: &opsdeck::model::LogLine| l.text == "done")
    {
        let chunk = tokio::time::timeout_at(deadline, body.next())
            .await
            .expect("the progress bar's end within 2 minutes")
            .expect("the stream stays open")
            .unwrap();
        bytes += chunk.len();
        decoder.push(&chunk, &mut lines).unwrap();
    }
    assert!(bytes > 3_000_000, "{bytes} bytes read");
    // Every line is bounded; what a terminal shows of the progress bar, cut if need be.
    for l in &lines {
        assert!(
            l.text.len() <= MAX_LINE_BYTES + CUT_MARK.len(),
            "{}",
            l.text.len()
        );
    }
    assert!(lines.len() < 1000, "{} lines", lines.len());
}
