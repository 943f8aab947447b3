//! known_hosts lookup over arbitrary files, hosts and ports: no panic, no slow pattern,
//! the line a status names is one `host_lines` lists, and `host_lines` agrees with a
//! transcription of OpenSSH's own `match_pattern_list` (hostfile.c, match.c) on every
//! line that is not hashed.
#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use opsdeck::remote::known_hosts::{HostKeyStatus, Marker, check_contents, host_lines};
use russh::keys::PublicKey;

const KEYS: [&str; 3] = [
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINnErunihirY0qNWagQHhyAViidMnBbVmCGibfAb9G6M",
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOj9wcXcbK6y5d7qBWcKVvhalTVfRfDyO4HsncV5867G",
    "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBKcMPsyeqpQMOxbZF0CsngyHkzc0goeEUobemqL/VG3XQpvPqZVIRyj7qfrJdwd1+7750BGzN/f7dosWwJBWzF0=",
];

static PARSED: OnceLock<[PublicKey; 3]> = OnceLock::new();

/// OpenSSH's `match_pattern`: `*` any run, `?` one byte (recursive there; a table here).
fn match_pattern(s: &[u8], p: &[u8]) -> bool {
    let mut row = vec![false; s.len() + 1];
    row[0] = true;
    for &c in p {
        let mut next = vec![false; s.len() + 1];
        if c == b'*' {
            let mut any = false;
            for i in 0..=s.len() {
                any |= row[i];
                next[i] = any;
            }
        } else {
            for i in 0..s.len() {
                next[i + 1] = row[i] && (c == b'?' || c == s[i]);
            }
        }
        row = next;
    }
    row[s.len()]
}

/// OpenSSH's `match_pattern_list` with `dolower`: 1, 0 or -1 (negated).
fn match_pattern_list(string: &[u8], pattern: &[u8]) -> i32 {
    let mut got_positive = 0;
    let mut i = 0;
    while i < pattern.len() {
        let negated = pattern[i] == b'!';
        if negated {
            i += 1;
        }
        let mut sub = Vec::new();
        while i < pattern.len() && sub.len() < 1023 && pattern[i] != b',' {
            sub.push(pattern[i].to_ascii_lowercase());
            i += 1;
        }
        if sub.len() >= 1023 {
            return 0;
        }
        if i < pattern.len() && pattern[i] == b',' {
            i += 1;
        }
        if match_pattern(string, &sub) {
            if negated {
                return -1;
            }
            got_positive = 1;
        }
    }
    got_positive
}

enum Fields<'a> {
    /// A comment, or a line OpenSSH rejects before or after matching.
    Skip,
    /// `|1|salt|hash`: matched by HMAC, which this reference leaves to the unit tests.
    Hashed,
    Entry(Marker, &'a [u8]),
}

/// The marker and host field of a line, as hostkeys_foreach_file reads them, but for one
/// deliberate difference: OpenSSH ends a marker at the first space on the line (at a tab
/// only when there is no space), so `@revoked<TAB>host key` is an invalid marker to it;
/// opsdeck ends it at the first blank and honours the revocation.
fn reference_fields(line: &[u8]) -> Fields<'_> {
    reference(line).unwrap_or(Fields::Skip)
}

fn reference(line: &[u8]) -> Option<Fields<'_>> {
    let blank = |b: &u8| *b == b' ' || *b == b'\t';
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let start = line.iter().position(|b| !blank(b))?;
    let mut cp = &line[start..];
    if cp[0] == b'#' {
        return None;
    }
    let mut marker = Marker::None;
    while cp.first() == Some(&b'@') {
        if marker != Marker::None {
            return None;
        }
        let len = cp.iter().position(blank).unwrap_or(cp.len());
        marker = match &cp[..len] {
            b"@cert-authority" => Marker::CertAuthority,
            b"@revoked" => Marker::Revoked,
            _ => return None,
        };
        cp = &cp[len..];
        cp = &cp[cp.iter().position(|b| !blank(b)).unwrap_or(cp.len())..];
    }
    let end = cp.iter().position(blank).unwrap_or(cp.len());
    let (hosts, rest) = cp.split_at(end);
    let key = &rest[rest.iter().position(|b| !blank(b)).unwrap_or(rest.len())..];
    if hosts.is_empty() || key.is_empty() || key[0] == b'#' {
        return None;
    }
    Some(if hosts[0] == b'|' {
        Fields::Hashed
    } else {
        Fields::Entry(marker, hosts)
    })
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let port = u16::from_le_bytes([data[0], data[1]]);
    let keys =
        PARSED.get_or_init(|| KEYS.map(|k| PublicKey::from_openssh(k).expect("a fixed key")));
    let key = &keys[usize::from(data[2]) % KEYS.len()];
    let rest = &data[3..];
    let (host, contents) = match rest.iter().position(|&b| b == b'\n') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &[][..]),
    };
    let host = String::from_utf8_lossy(host);
    let path = Path::new("known_hosts");

    let lines = host_lines(contents, &host, port);
    let count = contents.split(|&b| b == b'\n').count();
    assert!(lines.windows(2).all(|w| w[0].line < w[1].line));
    assert!(lines.iter().all(|l| (1..=count).contains(&l.line)));
    let listed = |line: usize, markers: &[Marker]| {
        lines
            .iter()
            .any(|l| l.line == line && markers.contains(&l.marker))
    };
    match check_contents(path, contents, &host, port, key) {
        HostKeyStatus::Unknown => {}
        HostKeyStatus::Known { line, .. } | HostKeyStatus::Changed { line, .. } => {
            assert!(listed(line, &[Marker::None]), "line {line}");
        }
        HostKeyStatus::Revoked { line, .. } => {
            assert!(listed(line, &[Marker::Revoked]), "line {line}");
        }
    }

    // Lines holding a NUL or invalid UTF-8 are left out: OpenSSH reads them as C strings
    // and bytes, opsdeck as (lossy) text, and neither is a file anyone writes.
    let name = if port == 22 {
        host.to_ascii_lowercase()
    } else {
        format!("[{}]:{port}", host.to_ascii_lowercase())
    };
    for (index, raw) in contents.split(|&b| b == b'\n').enumerate() {
        if raw.contains(&0) || std::str::from_utf8(raw).is_err() {
            continue;
        }
        let (marker, hosts) = match reference_fields(raw) {
            Fields::Hashed => continue,
            Fields::Skip => {
                assert!(
                    !lines.iter().any(|l| l.line == index + 1),
                    "line {} is listed but OpenSSH skips it: {:?}",
                    index + 1,
                    String::from_utf8_lossy(raw)
                );
                continue;
            }
            Fields::Entry(marker, hosts) => (marker, hosts),
        };
        let expected = match_pattern_list(name.as_bytes(), hosts) == 1;
        let got = lines.iter().find(|l| l.line == index + 1);
        assert_eq!(
            got.is_some(),
            expected,
            "line {}: {:?} for {name:?}",
            index + 1,
            String::from_utf8_lossy(raw)
        );
        if let Some(l) = got {
            assert_eq!(l.marker, marker);
        }
    }
});
