//! The host-side scripts of the backup job, and how they are sent.
//!
//! Both scripts share one skeleton: a lock on the partial file (`flock`, when the host has
//! it, so two runs of one set never write the same partial), an EXIT trap that removes the
//! partial unless it was renamed into place, and a watcher on stdin. Nothing ever writes
//! to a job's stdin, so its end of file means the SSH channel (or opsdeck's pipe) is gone:
//! sshd does not signal a command that has no terminal, so without the watcher a killed
//! opsdeck would leave the dump running and, worse, renamed into place when it finished.
//! The watcher turns that into SIGUSR1 (not SIGHUP: a shell started with SIGHUP ignored,
//! as under `nohup`, cannot trap it), and its trap, the one for a hang-up too, sends all
//! output to /dev/null first, because writing to the dead channel would kill the cleanup
//! with SIGPIPE.
//!
//! Exit statuses tell opsdeck which stage failed. On stderr, an `opsdeck-stage: NAME` line
//! opens each stage, so what the tools print can be told apart by stage, and an
//! `opsdeck: ...` line says why a stage failed.

/// Exit statuses shared by the scripts and the code reading them.
pub mod exit {
    pub const BUSY: u32 = 69;
    pub const DUMP: u32 = 70;
    pub const COPY: u32 = 71;
    pub const EMPTY: u32 = 72;
    pub const VERIFY: u32 = 73;
    pub const EXISTS: u32 = 74;
    pub const WRITE: u32 = 75;
    pub const RESUME: u32 = 76;
    pub const QUIESCE: u32 = 77;
    pub const RENAME: u32 = 78;
    pub const HANGUP: u32 = 129;
    pub const INTERRUPTED: u32 = 130;
}

/// Lock, traps and the stdin watcher. Expects `partial` set and a `finish` EXIT trap that
/// reads `stage`, `owned` and `watch`; ends holding the lock on fd 9.
const PRELUDE: &str = r#"
fail() { code=$1; shift; printf 'opsdeck: %s\n' "$*" >&2; exit "$code"; }
enter() { stage=$1; printf '\nopsdeck-stage: %s\n' "$1" >&2; }
trap 'exec >/dev/null 2>&1; exit 129' HUP USR1
trap 'printf "opsdeck: interrupted\n" >&2; exit 130' INT TERM
exec 3<&0
( while read -r _; do :; done <&3; kill -USR1 $$ ) >/dev/null 2>&1 &
watch=$!
exec 3<&- </dev/null
mkdir -p -- "${partial%/*}" || fail 75 "cannot create the directory ${partial%/*}"
(: >>"$partial") 2>/dev/null || fail 75 "cannot write $partial"
exec 9>>"$partial"
if command -v flock >/dev/null 2>&1; then
    flock -n 9 || fail 69 "another backup of this set is running: $partial is locked"
fi
owned=1
(: >"$partial") || fail 75 "cannot write $partial"
"#;

/// Size check, no-clobber rename, and the success line `ok SIZE` on stdout.
const RENAME: &str = r#"
enter check
size=$(wc -c <"$partial") || fail 75 "cannot read $partial"
size=$((size + 0))
[ "$size" -gt 0 ] || fail 72 "the backup is empty"
[ ! -e "$final" ] || fail 74 "$final already exists"
sync "$partial" 2>/dev/null || sync
enter rename
mv -- "$partial" "$final" || fail 78 "cannot rename $partial to $final"
stage=done
printf 'ok %s\n' "$size"
"#;

/// `pg_dump` in the database container into the partial file, verified, renamed.
///
/// Positional: partial, final, container, user, database, format (`custom` or
/// `sql-gzip`), the dump's `application_name`, and the SQL that ends a session by that
/// name. Killing the `docker exec` client does not stop the process in the container, so
/// an interrupted dump is stopped by ending its database session instead.
///
/// Plain SQL goes through gzip on the host; dash has no `pipefail`, so pg_dump's own
/// status comes out of the pipe on fd 4.
pub const PG_DUMP: &str = r#"set -u
partial=$1 final=$2 ctr=$3 user=$4 db=$5 format=$6 tag=$7 stop=$8
stage=lock owned= watch= job=
finish() {
    st=$?
    trap - EXIT HUP USR1 INT TERM
    [ -z "$watch" ] || kill "$watch" 2>/dev/null
    if [ "$stage" != done ]; then
        if [ -n "$job" ]; then
            docker exec "$ctr" psql -X -U "$user" -d "$db" -Atqc "$stop" >/dev/null 2>&1
            kill "$job" 2>/dev/null
        fi
        [ -z "$owned" ] || rm -f -- "$partial"
    fi
    exit "$st"
}
trap finish EXIT
__PRELUDE__
enter dump
case $format in
custom)
    docker exec -e PGAPPNAME="$tag" "$ctr" pg_dump -U "$user" -Fc -- "$db" >"$partial" &
    ;;
*)
    (
        st=$( { { docker exec -e PGAPPNAME="$tag" "$ctr" pg_dump -U "$user" -- "$db" 4>&-; echo $? >&4; } | gzip -c >"$partial" 4>&-; } 4>&1 ) || {
            printf 'opsdeck: gzip failed\n' >&2
            exit 1
        }
        exit "${st:-1}"
    ) &
    ;;
esac
job=$!
wait "$job"
st=$?
job=
[ "$st" -eq 0 ] || fail 70 "pg_dump exited with status $st"
enter verify
case $format in
custom)
    docker exec -i "$ctr" pg_restore --list <"$partial" >/dev/null || fail 73 "pg_restore --list rejects the dump"
    ;;
*)
    gzip -t -- "$partial" || fail 73 "gzip -t rejects the dump"
    ;;
esac
printf 'verified\n'
__RENAME__"#;

/// A file copied to the partial name between the quiesce and resume commands.
///
/// Positional: stack dir, source path, partial, final, the number of quiesce words, the
/// number of resume words, then those words. The resume command runs from the EXIT trap,
/// so it runs whenever the quiesce command was started: after a failed copy, after a
/// failed quiesce (which may have stopped half of what it meant to), and when opsdeck
/// went away mid-copy.
pub const FILE_COPY: &str = r#"set -u
stackdir=$1 source=$2 partial=$3 final=$4 nq=$5 nr=$6
shift 6
stage=lock owned= watch= quiesced=
words() {
    skip=$1 count=$2
    shift 2
    i=0
    for w; do
        shift
        if [ "$i" -ge "$skip" ] && [ "$i" -lt $((skip + count)) ]; then set -- "$@" "$w"; fi
        i=$((i + 1))
    done
    (cd -- "$stackdir" && exec "$@" 9>&-)
}
finish() {
    st=$?
    trap - EXIT HUP USR1 INT TERM
    [ -z "$watch" ] || kill "$watch" 2>/dev/null
    [ "$stage" = done ] || [ -z "$owned" ] || rm -f -- "$partial"
    if [ -n "$quiesced" ] && [ "$nr" -gt 0 ]; then
        # through a file: the channel may be gone, and a write to it would kill the
        # resume command with SIGPIPE halfway
        printf '\nopsdeck-stage: resume\n' >&2
        rlog=$(mktemp 2>/dev/null) || rlog=/dev/null
        words "$nq" "$nr" "$@" >"$rlog" 2>&1
        rs=$?
        [ "$rlog" = /dev/null ] || { cat -- "$rlog" >&2; rm -f -- "$rlog"; }
        if [ "$rs" -ne 0 ]; then
            printf 'opsdeck: the resume command failed (exit %s)\n' "$rs" >&2
            [ "$st" -ne 0 ] || st=76
        fi
    fi
    exit "$st"
}
trap 'finish "$@"' EXIT
__PRELUDE__
enter quiesce
quiesced=1
if [ "$nq" -gt 0 ]; then
    words 0 "$nq" "$@" >&2 || fail 77 "the quiesce command failed (exit $?)"
fi
enter copy
cp -- "$source" "$partial" || fail 71 "cannot copy $source"
printf 'verified\n'
__RENAME__"#;

/// One step of a deploy, migration or action: `dir` then the step's words, run in `dir`
/// with stdin closed, in a process group of its own (`setsid`, where the host has it).
///
/// The wrapper watches its own stdin like the backup scripts do: when it closes (the
/// operator cancelled, opsdeck died, the connection dropped) the step's whole group gets
/// SIGTERM, then SIGKILL 5 s later, so `compose build` and its children really stop.
/// Exit 126 means the directory could not be entered; otherwise the step's own status.
pub const STEP: &str = r#"set -u
dir=$1
shift
cd -- "$dir" 2>/dev/null || { printf 'opsdeck: cannot enter the stack directory %s\n' "$dir" >&2; exit 126; }
exec 3<&0 </dev/null
if command -v setsid >/dev/null 2>&1; then
    setsid "$@" 3<&- &
else
    "$@" 3<&- &
fi
pid=$!
(
    trap '' PIPE
    while read -r _; do :; done <&3
    kill -s TERM -- "-$pid" 2>/dev/null || kill -s TERM "$pid" 2>/dev/null || exit 0
    printf '\nopsdeck: stopping the step (SIGTERM to its process group)\n' >&2 2>/dev/null
    i=0
    while [ "$i" -lt 50 ] && kill -0 "$pid" 2>/dev/null; do sleep 0.1; i=$((i + 1)); done
    kill -s KILL -- "-$pid" 2>/dev/null || kill -s KILL "$pid" 2>/dev/null
) &
watch=$!
exec 3<&-
wait "$pid"
st=$?
kill "$watch" 2>/dev/null
exit "$st""#;

/// Holds a stack's lock for as long as its stdin is open: `flock` on `$1` (its directory
/// made first), `$3` `shared` or `exclusive`. Prints `locked`, or `busy <holder>` and
/// exits 69 when another job holds it.
///
/// Who holds it goes into a file of its own beside the lock (`<name>.holder`: the holder's
/// pid and `$2`), written whole through a rename: the lock file itself is never replaced,
/// since the lock lives on its inode. A job refused in the instant between another's
/// `flock` and its writing the holder file waits (up to 2 s) for a holder that is alive,
/// so it never names a finished job from before.
///
/// The lock lives in its own process, not in the steps', so it spans the whole job; when
/// opsdeck goes away the channel closes, the loop ends, and the kernel drops the lock.
pub const LOCK: &str = r#"set -u
file=$1 info=$2 mode=$3
holder=${file%.lock}.holder
mkdir -p -- "${file%/*}" 2>/dev/null
exec 9>>"$file" || { printf 'opsdeck: cannot open the lock file %s\n' "$file" >&2; exit 75; }
command -v flock >/dev/null 2>&1 || { printf 'opsdeck: flock is not installed on the host (Debian: util-linux)\n' >&2; exit 75; }
if [ "$mode" = shared ]; then set -- -s; else set --; fi
if ! flock -n "$@" 9; then
    i=0
    while :; do
        h=$(cat -- "$holder" 2>/dev/null) || h=
        pid=${h%% *}
        if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then break; fi
        [ "$i" -ge 20 ] && break
        sleep 0.1
        i=$((i + 1))
    done
    printf 'busy %s\n' "${h#* }"
    exit 69
fi
printf '%s %s\n' "$$" "$info" >"$holder.$$" && mv -f -- "$holder.$$" "$holder"
printf 'locked\n'
while read -r _; do :; done
exit 0"#;

/// Writes `$2` to the file `$1` (directory made first) through a temporary name, so a
/// reader never sees half of it.
pub const WRITE_FILE: &str = r#"mkdir -p -- "${1%/*}" 2>/dev/null
printf '%s' "$2" >"$1.tmp" && mv -f -- "$1.tmp" "$1""#;

/// Prints the file `$1`, or nothing (status 0) when there is none.
pub const READ_FILE: &str = r#"[ ! -e "$1" ] || cat -- "$1""#;

/// The size of a partial file, for progress; fails (no output) when it is not there.
pub const SIZE: &str = r#"[ -f "$1" ] && { stat -c %s -- "$1" 2>/dev/null || wc -c <"$1"; }"#;

/// Removes the named files in a directory and prints each one removed, NUL-terminated.
pub const REMOVE: &str = r#"cd -- "$1" || exit 1
shift
st=0
for f; do
    if [ -f "$f" ] && rm -f -- "$f"; then printf '%s\0' "$f"; else st=1; fi
done
exit "$st""#;

/// A script with the shared pieces in place.
pub fn assemble(script: &str) -> String {
    script
        .replace("__PRELUDE__", PRELUDE.trim())
        .replace("__RENAME__", RENAME.trim())
}

/// `DOCKER_HOST` for commands on the host, from the inventory's `docker_socket` (a path
/// or already a URL).
pub fn docker_host_env(socket: Option<&str>) -> Option<String> {
    socket.map(|s| {
        if s.contains("://") {
            s.to_string()
        } else {
            format!("unix://{s}")
        }
    })
}

/// The command line for a host's login shell: `[env DOCKER_HOST=...] sh -c SCRIPT sh
/// ARGS...`, every word quoted. `None` when a word cannot be quoted (a NUL byte).
pub fn command(docker_host: Option<&str>, script: &str, args: &[String]) -> Option<String> {
    let mut words: Vec<String> = Vec::new();
    if let Some(host) = docker_host {
        words.push("env".into());
        words.push(format!("DOCKER_HOST={host}"));
    }
    words.extend(["sh".into(), "-c".into(), script.to_string(), "sh".into()]);
    words.extend(args.iter().cloned());
    words
        .iter()
        .map(|w| shlex::try_quote(w).ok().map(|q| q.into_owned()))
        .collect::<Option<Vec<_>>>()
        .map(|q| q.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_parse_and_use_the_documented_statuses() {
        for script in [PG_DUMP, FILE_COPY] {
            let full = assemble(script);
            let check = std::process::Command::new("sh")
                .args(["-n", "-c", &full])
                .output()
                .unwrap();
            assert!(
                check.status.success(),
                "{}",
                String::from_utf8_lossy(&check.stderr)
            );
            for code in [
                exit::BUSY,
                exit::WRITE,
                exit::EMPTY,
                exit::EXISTS,
                exit::RENAME,
            ] {
                assert!(full.contains(&format!("fail {code} ")), "fail {code}");
            }
        }
        let pg = assemble(PG_DUMP);
        for code in [exit::DUMP, exit::VERIFY] {
            assert!(pg.contains(&format!("fail {code} ")), "fail {code}");
        }
        let copy = assemble(FILE_COPY);
        for code in [exit::QUIESCE, exit::COPY] {
            assert!(copy.contains(&format!("fail {code} ")), "fail {code}");
        }
        assert!(copy.contains(&format!("st={}", exit::RESUME)));
        assert!(PRELUDE.contains(&format!("exit {}' HUP", exit::HANGUP)));
        assert!(PRELUDE.contains(&format!("exit {}' INT TERM", exit::INTERRUPTED)));
    }

    #[test]
    fn commands_quote_every_word() {
        let cmd = command(
            Some("unix:///run/x.sock"),
            "echo \"$1\"",
            &["it's; rm -rf ~".into()],
        )
        .unwrap();
        assert_eq!(
            shlex::split(&cmd).unwrap(),
            [
                "env",
                "DOCKER_HOST=unix:///run/x.sock",
                "sh",
                "-c",
                "echo \"$1\"",
                "sh",
                "it's; rm -rf ~"
            ]
        );
        assert_eq!(command(None, "x", &["a\0b".into()]), None);
    }
}
