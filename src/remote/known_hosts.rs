//! Host key verification against OpenSSH `known_hosts` files, following sshd(8)'s
//! "SSH_KNOWN_HOSTS FILE FORMAT" and OpenSSH's own matching rules.
//!
//! russh ships a checker, but it miscounts line numbers (comments and blank lines do not
//! advance them), ignores `@revoked`, `@cert-authority`, wildcards and negation, and fails a
//! whole file on one unparsable key. A host key check is the one thing standing between the
//! operator and a man in the middle, so this module mirrors OpenSSH instead: an entry that
//! OpenSSH would reject or revoke is rejected or revoked here too, and the line reported is
//! the one an editor (and `ssh-keygen -F`) shows.

use std::fs::{self, DirBuilder, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use data_encoding::BASE64;
use hmac::{Hmac, KeyInit, Mac};
use russh::keys::PublicKey;
use russh::keys::ssh_key::HashAlg;
use sha1::Sha1;

/// What the known_hosts files say about a host's presented key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostKeyStatus {
    /// A matching key is recorded at this file and line.
    Known { path: PathBuf, line: usize },
    /// No key of the presented algorithm is recorded for this host (keys of other algorithms
    /// may be: OpenSSH asks in that case too).
    Unknown,
    /// The host is recorded with a different key of the same algorithm (OpenSSH's
    /// "REMOTE HOST IDENTIFICATION HAS CHANGED"): refuse.
    Changed {
        path: PathBuf,
        line: usize,
        recorded_fingerprint: String,
    },
    /// The key is marked @revoked: refuse.
    Revoked { path: PathBuf, line: usize },
}

/// Looks `key` up for `host:port` in `files`, in order.
///
/// A missing file is skipped, like OpenSSH does with a missing `~/.ssh/known_hosts`. Any
/// other read error is returned rather than treated as "no entries": an unreadable file may
/// hold the very line that says the key changed or is revoked, and reporting `Unknown` would
/// invite the operator to trust a key that is recorded as bad.
///
/// Precedence: `Revoked` beats everything (in any file), then `Known`, then `Changed`.
/// `Changed` names the first offending line.
pub fn check(
    files: &[PathBuf],
    host: &str,
    port: u16,
    key: &PublicKey,
) -> io::Result<HostKeyStatus> {
    let mut verdict = Verdict::default();
    for path in files {
        let bytes = match fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        if let Some(revoked) = verdict.file(path, &bytes, host, port, key) {
            return Ok(revoked);
        }
    }
    Ok(verdict.status())
}

/// [`check`] over one file's contents already in memory. Public for the fuzz targets and
/// property tests, which feed it bytes rather than files.
pub fn check_contents(
    path: &Path,
    contents: &[u8],
    host: &str,
    port: u16,
    key: &PublicKey,
) -> HostKeyStatus {
    let mut verdict = Verdict::default();
    verdict
        .file(path, contents, host, port, key)
        .unwrap_or_else(|| verdict.status())
}

/// The first `Known` and first `Changed` line seen so far, over all files.
#[derive(Default)]
struct Verdict {
    known: Option<HostKeyStatus>,
    changed: Option<HostKeyStatus>,
}

impl Verdict {
    /// Folds one file in; `Some` when a line revokes the key, which ends the search.
    fn file(
        &mut self,
        path: &Path,
        contents: &[u8],
        host: &str,
        port: u16,
        key: &PublicKey,
    ) -> Option<HostKeyStatus> {
        for entry in host_lines(contents, host, port) {
            let line = entry.line;
            // Parse the key only once the host matched: most lines are for other hosts.
            let Some(recorded) = parse_key(&entry.key) else {
                continue;
            };
            let same = recorded.key_data() == key.key_data();
            match entry.marker {
                Marker::Revoked if same => {
                    return Some(HostKeyStatus::Revoked {
                        path: path.to_path_buf(),
                        line,
                    });
                }
                Marker::Revoked | Marker::CertAuthority => {}
                Marker::None if same => {
                    self.known.get_or_insert_with(|| HostKeyStatus::Known {
                        path: path.to_path_buf(),
                        line,
                    });
                }
                Marker::None => {
                    if recorded.algorithm() == key.algorithm() {
                        self.changed.get_or_insert_with(|| HostKeyStatus::Changed {
                            path: path.to_path_buf(),
                            line,
                            recorded_fingerprint: fingerprint(&recorded),
                        });
                    }
                }
            }
        }
        None
    }

    fn status(&mut self) -> HostKeyStatus {
        self.known
            .take()
            .or(self.changed.take())
            .unwrap_or(HostKeyStatus::Unknown)
    }
}

/// A line of a known_hosts file whose host field covers the host looked up, its key not
/// yet decoded: what `ssh-keygen -F` lists. Public for the property tests, which compare
/// it with `ssh-keygen -F`, and the fuzz targets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostLine {
    /// 1-based, as an editor and `ssh-keygen -F` number it.
    pub line: usize,
    pub marker: Marker,
    /// The key type, the base64 blob and any comment, as written.
    pub key: String,
}

/// Every line of `contents` that is an entry for `host:port`, in file order.
pub fn host_lines(contents: &[u8], host: &str, port: u16) -> Vec<HostLine> {
    let name = host_port(host, port);
    let mut out = Vec::new();
    // Splitting on '\n' alone keeps the numbering identical to getline(3) in OpenSSH
    // and to what an editor shows, whatever the lines contain.
    for (index, raw) in contents.split(|&b| b == b'\n').enumerate() {
        let text = String::from_utf8_lossy(raw);
        let Some(entry) = Entry::parse(&text) else {
            continue;
        };
        if hosts_match(entry.hosts, &name) {
            out.push(HostLine {
                line: index + 1,
                marker: entry.marker,
                key: entry.key.to_string(),
            });
        }
    }
    out
}

/// Records `key` for `host:port` the way `ssh` does with `HashKnownHosts yes`, so the file
/// does not list the fleet's host names to whoever reads it.
///
/// The line is written with one `write` on an `O_APPEND` descriptor so that a concurrent
/// `ssh` appending to the same file cannot interleave with it. Permissions follow
/// OpenSSH: a new directory is 0700 and a new file 0600; existing ones are left alone.
pub fn append(path: &Path, host: &str, port: u16, key: &PublicKey) -> io::Result<()> {
    let blob = key
        .to_bytes()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let mut salt = [0u8; SALT_LEN];
    getrandom::fill(&mut salt).map_err(io::Error::other)?;
    let name = hashed_name(&salt, &host_port(host, port))
        .ok_or_else(|| io::Error::other("HMAC-SHA1 rejected the salt"))?;
    let entry = format!(
        "{} {} {}\n",
        name,
        key.algorithm().as_str(),
        BASE64.encode(&blob)
    );

    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.exists()
    {
        let mut builder = DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(dir)?;
    }
    let mut options = OpenOptions::new();
    options.read(true).append(true).create(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;

    // A hand-edited file may lack its final newline; without one the entry would be glued
    // onto the last line and corrupt both.
    let mut out = String::new();
    if file.metadata()?.len() > 0 {
        file.seek(SeekFrom::End(-1))?;
        let mut last = [0u8; 1];
        file.read_exact(&mut last)?;
        if last[0] != b'\n' {
            out.push('\n');
        }
    }
    out.push_str(&entry);
    file.write_all(out.as_bytes())?;
    // The operator just made a trust decision; do not lose it to a crash.
    file.sync_all()
}

/// The SHA-256 fingerprint in the form `ssh-keygen -l` and `ssh` print, so the operator can
/// compare it with what the host's administrator reads off the server.
pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

/// OpenSSH's hashed-host salt and HMAC-SHA1 output length.
const SALT_LEN: usize = 20;

/// The name OpenSSH looks up: plain for port 22, `[host]:port` otherwise, lowercased
/// because `ssh` lowercases the host name before it consults or writes known_hosts.
fn host_port(host: &str, port: u16) -> String {
    let host = host.to_ascii_lowercase();
    if port == 22 {
        host
    } else {
        format!("[{host}]:{port}")
    }
}

/// The marker a known_hosts line may start with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    None,
    Revoked,
    CertAuthority,
}

/// One known_hosts line split into its fields, before the key is decoded.
#[derive(Debug)]
struct Entry<'a> {
    marker: Marker,
    hosts: &'a str,
    /// The key type, the base64 blob and any comment.
    key: &'a str,
}

fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t'
}

impl<'a> Entry<'a> {
    /// `None` for comments, blank lines and lines OpenSSH would reject (unknown or repeated
    /// marker, missing key).
    fn parse(line: &'a str) -> Option<Self> {
        // getline(3) keeps a '\r'; files edited on Windows would otherwise never match.
        let line = line.strip_suffix('\r').unwrap_or(line);
        let rest = line.trim_start_matches(is_blank);
        if rest.is_empty() || rest.starts_with('#') {
            return None;
        }
        let (marker, rest) = if rest.starts_with('@') {
            let (word, after) = rest.split_once(is_blank)?;
            let marker = match word {
                "@revoked" => Marker::Revoked,
                "@cert-authority" => Marker::CertAuthority,
                _ => return None,
            };
            let after = after.trim_start_matches(is_blank);
            // OpenSSH allows one marker per line.
            if after.starts_with('@') {
                return None;
            }
            (marker, after)
        } else {
            (Marker::None, rest)
        };
        let (hosts, key) = rest.split_once(is_blank)?;
        let key = key.trim_start_matches(is_blank);
        if hosts.is_empty() || key.is_empty() || key.starts_with('#') {
            return None;
        }
        Some(Entry { marker, hosts, key })
    }
}

/// Decodes `type base64 [comment]`; `None` if malformed, if the type named in the text is
/// not the one inside the blob (OpenSSH rejects those too), or for certificate types.
fn parse_key(field: &str) -> Option<PublicKey> {
    let mut words = field.split(is_blank).filter(|w| !w.is_empty());
    let kind = words.next()?;
    let blob = words.next()?;
    PublicKey::from_openssh(&format!("{kind} {blob}")).ok()
}

/// Whether the host field of a line covers `name` (already lowercased).
///
/// A hashed field is a single `|1|salt|hmac` (OpenSSH compares the whole field, so a hashed
/// entry in a comma-separated list never matches). Otherwise it is a comma-separated list of
/// `*`/`?` patterns compared case-insensitively, where any matching `!pattern` excludes the
/// line even if another pattern matched, and a line of only negations matches nothing.
///
/// The walk is OpenSSH's `match_pattern_list`: a pattern of [`MAX_PATTERN`] bytes or more
/// (after its `!`) makes the line match nothing, and a trailing comma adds no empty pattern.
fn hosts_match(field: &str, name: &str) -> bool {
    if field.starts_with('|') {
        return hashed_match(field, name);
    }
    let field = field.as_bytes();
    let mut positive = false;
    let mut i = 0;
    while i < field.len() {
        let negated = field[i] == b'!';
        if negated {
            i += 1;
        }
        let len = field[i..]
            .iter()
            .position(|&b| b == b',')
            .unwrap_or(field.len() - i);
        if len >= MAX_PATTERN {
            return false;
        }
        let pattern = field[i..i + len].to_ascii_lowercase();
        i += len + 1;
        if glob(&pattern, name.as_bytes()) {
            if negated {
                return false;
            }
            positive = true;
        }
    }
    positive
}

/// OpenSSH copies each pattern into a 1024-byte buffer; one this long leaves no room for its NUL.
const MAX_PATTERN: usize = 1023;

/// OpenSSH rehashes `name` with the entry's salt and compares the re-encoded string with the
/// whole field; doing the same means a salt that is not 20 bytes, non-canonical base64 or
/// trailing junk makes the line not match, exactly as with `ssh`.
fn hashed_match(field: &str, name: &str) -> bool {
    let Some(rest) = field.strip_prefix("|1|") else {
        return false;
    };
    let Some((salt, _)) = rest.split_once('|') else {
        return false;
    };
    match BASE64.decode(salt.as_bytes()) {
        Ok(salt) if salt.len() == SALT_LEN => hashed_name(&salt, name).is_some_and(|h| h == field),
        _ => false,
    }
}

/// `|1|base64(salt)|base64(HMAC-SHA1(key = salt, name))`, OpenSSH's `host_hash`.
/// `None` cannot happen (HMAC accepts keys of any length) but keeps a panic path out.
fn hashed_name(salt: &[u8], name: &str) -> Option<String> {
    let mut mac = Hmac::<Sha1>::new_from_slice(salt).ok()?;
    mac.update(name.as_bytes());
    let digest = mac.finalize().into_bytes();
    Some(format!(
        "|1|{}|{}",
        BASE64.encode(salt),
        BASE64.encode(&digest)
    ))
}

/// OpenSSH's `match_pattern`: `*` matches any run of bytes, `?` exactly one.
///
/// Iterative with single-star backtracking, so a hostile pattern such as `*a*a*a*a*b`
/// cannot make the check take exponential time.
fn glob(pattern: &[u8], name: &[u8]) -> bool {
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, n));
                p += 1;
            }
            Some(&c) if c == b'?' || c == name[n] => {
                p += 1;
                n += 1;
            }
            _ => match star {
                Some((sp, sn)) => {
                    p = sp + 1;
                    n = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;

    // Fixed keys generated once with ssh-keygen, so every run checks the same bytes.
    const ED_A: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINnErunihirY0qNWagQHhyAViidMnBbVmCGibfAb9G6M";
    const ED_A_FP: &str = "SHA256:GxvG41Xm/80cWMjIZYLnahOBbiW+XnMF2oesMiM89OI";
    const ED_B: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOj9wcXcbK6y5d7qBWcKVvhalTVfRfDyO4HsncV5867G";
    const ECDSA_C: &str = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBKcMPsyeqpQMOxbZF0CsngyHkzc0goeEUobemqL/VG3XQpvPqZVIRyj7qfrJdwd1+7750BGzN/f7dosWwJBWzF0=";
    const ECDSA_C_FP: &str = "SHA256:P+7+h4dYPAnqtqtrwfM1cNq6v6PTH0UqwmsuA34erXY";
    const RSA_R: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQCVCKvB9dgcB/1DEPmoi7ZQA1rTbLSQCH8GlMqJbSnjCxxYonujp9DMHOLOH+TxIsG5fyUv7h7TxJBtoRYKeQmpvmLO4C6CAdrN75BqxaC7MVBCq1/PI+N4u2rGCXTIIsTXJOs8ZSK4tzJC+pUu3Hf8FMzw3qVSmPaLU/gTYQNfnQ==";
    const RSA_R_FP: &str = "SHA256:+EYi//WIQMPuCYG/EazyEv5UDCoChcac2lxcVBTrKHU";

    // Salt 00 01 .. 13; the HMACs were computed independently with Python's hmac module.
    const SALT_B64: &str = "AAECAwQFBgcICQoLDA0ODxAREhM=";
    const HASHED_22: &str = "|1|AAECAwQFBgcICQoLDA0ODxAREhM=|nnUK16ANsXd3hL31YfAkGOluSjU=";
    const HASHED_2222: &str = "|1|AAECAwQFBgcICQoLDA0ODxAREhM=|Wgcx+Fm+LmaWwC7rQ80eIf2uHe0=";

    fn key(text: &str) -> PublicKey {
        PublicKey::from_openssh(text).unwrap()
    }

    /// Writes `content` as a known_hosts file in a fresh temp dir.
    fn file(content: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("known_hosts");
        fs::write(&path, content).unwrap();
        (dir, path)
    }

    fn status(path: &Path, host: &str, port: u16, k: &str) -> HostKeyStatus {
        check(&[path.to_path_buf()], host, port, &key(k)).unwrap()
    }

    fn known(path: &Path, line: usize) -> HostKeyStatus {
        HostKeyStatus::Known {
            path: path.to_path_buf(),
            line,
        }
    }

    fn ssh_keygen(args: &[&str]) -> std::process::Output {
        Command::new("ssh-keygen")
            .args(args)
            .output()
            .expect("ssh-keygen (openssh-client) is needed to cross-check against OpenSSH")
    }

    #[test]
    fn plain_entry_matches_only_port_22() {
        let (_d, p) = file(&format!("example.com {ED_A}\n"));
        assert_eq!(status(&p, "example.com", 22, ED_A), known(&p, 1));
        assert_eq!(status(&p, "EXAMPLE.com", 22, ED_A), known(&p, 1));
        assert_eq!(
            status(&p, "example.com", 2222, ED_A),
            HostKeyStatus::Unknown
        );
        assert_eq!(status(&p, "example.org", 22, ED_A), HostKeyStatus::Unknown);
        assert_eq!(
            status(&p, "www.example.com", 22, ED_A),
            HostKeyStatus::Unknown
        );
    }

    #[test]
    fn bracketed_port_entry_matches_only_that_port() {
        let (_d, p) = file(&format!(
            "[example.com]:2222,other.example {ED_A} comment here\n"
        ));
        assert_eq!(status(&p, "example.com", 2222, ED_A), known(&p, 1));
        assert_eq!(status(&p, "example.com", 22, ED_A), HostKeyStatus::Unknown);
        assert_eq!(
            status(&p, "example.com", 2223, ED_A),
            HostKeyStatus::Unknown
        );
        assert_eq!(status(&p, "other.example", 22, ED_A), known(&p, 1));
    }

    #[test]
    fn hashing_matches_independently_computed_values() {
        let salt = BASE64.decode(SALT_B64.as_bytes()).unwrap();
        assert_eq!(hashed_name(&salt, "example.com").unwrap(), HASHED_22);
        assert_eq!(
            hashed_name(&salt, "[example.com]:2222").unwrap(),
            HASHED_2222
        );
    }

    #[test]
    fn hashed_entries_with_known_salt() {
        let (_d, p) = file(&format!("{HASHED_22} {ED_A}\n{HASHED_2222} {ED_B}\n"));
        assert_eq!(status(&p, "example.com", 22, ED_A), known(&p, 1));
        assert_eq!(status(&p, "Example.COM", 22, ED_A), known(&p, 1));
        assert_eq!(status(&p, "example.com", 2222, ED_B), known(&p, 2));
        assert_eq!(status(&p, "example.org", 22, ED_A), HostKeyStatus::Unknown);
        assert_eq!(
            status(&p, "example.com", 2223, ED_B),
            HostKeyStatus::Unknown
        );
        // A hashed entry names one host: in a list it matches nothing, as in OpenSSH.
        let (_d2, p2) = file(&format!("{HASHED_22},example.org {ED_A}\n"));
        assert_eq!(status(&p2, "example.com", 22, ED_A), HostKeyStatus::Unknown);
        // Truncated hash, short salt, bad base64: skipped, never a match.
        let bad = format!(
            "{} {ED_A}\n|1|AAAA|nnUK16ANsXd3hL31YfAkGOluSjU= {ED_A}\n|1|%%%|x {ED_A}\n|1| {ED_A}\n|2|{SALT_B64}|nnUK16ANsXd3hL31YfAkGOluSjU= {ED_A}\n",
            &HASHED_22[..HASHED_22.len() - 2]
        );
        let (_d3, p3) = file(&bad);
        assert_eq!(status(&p3, "example.com", 22, ED_A), HostKeyStatus::Unknown);
    }

    #[test]
    fn hashed_entries_written_by_ssh_keygen() {
        let (_d, p) = file(&format!(
            "# comment\nexample.com {ED_A}\n[example.com]:2222 {ED_B}\nexample.org,10.0.0.7 {ECDSA_C}\n"
        ));
        let out = ssh_keygen(&["-H", "-f", p.to_str().unwrap()]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let hashed = fs::read_to_string(&p).unwrap();
        assert!(
            !hashed.contains("example"),
            "ssh-keygen left names in clear:\n{hashed}"
        );
        assert!(
            hashed.lines().filter(|l| l.starts_with("|1|")).count() >= 4,
            "{hashed}"
        );
        let line_of = |host: &str, port: u16, k: &str| match status(&p, host, port, k) {
            HostKeyStatus::Known { line, .. } => line,
            other => panic!("{host}:{port} not known: {other:?}\n{hashed}"),
        };
        // ssh-keygen -H writes one line per name; all four must match their own lines.
        let lines: Vec<&str> = hashed.lines().collect();
        for (host, port, k) in [
            ("example.com", 22, ED_A),
            ("example.com", 2222, ED_B),
            ("example.org", 22, ECDSA_C),
            ("10.0.0.7", 22, ECDSA_C),
        ] {
            let line = line_of(host, port, k);
            assert!(lines[line - 1].ends_with(k.split(' ').nth(1).unwrap()));
        }
        assert_eq!(status(&p, "example.com", 2222, ED_A), {
            let line = line_of("example.com", 2222, ED_B);
            HostKeyStatus::Changed {
                path: p.clone(),
                line,
                recorded_fingerprint: fingerprint(&key(ED_B)),
            }
        });
        assert_eq!(status(&p, "example.net", 22, ED_A), HostKeyStatus::Unknown);
    }

    #[test]
    fn line_numbers_count_comments_blank_and_invalid_lines() {
        let content = format!(
            "# header\n\n   \n\t# indented comment\nnot a valid line\nother.example {ED_B}\nexample.com {ED_A}\n"
        );
        let (_d, p) = file(&content);
        assert_eq!(status(&p, "example.com", 22, ED_A), known(&p, 7));
        assert_eq!(status(&p, "other.example", 22, ED_B), known(&p, 6));
        // CRLF files are numbered the same and still match.
        let (_d2, p2) = file(&content.replace('\n', "\r\n"));
        assert_eq!(status(&p2, "example.com", 22, ED_A), known(&p2, 7));
        // No trailing newline on the last line.
        let (_d3, p3) = file(content.trim_end());
        assert_eq!(status(&p3, "example.com", 22, ED_A), known(&p3, 7));
    }

    #[test]
    fn wildcards_negation_and_case() {
        let (_d, p) = file(&format!(
            "*.example.com,!bastion.example.com {ED_A}\nweb?.prod.example {ED_A}\n[*.lab.example]:2222 {ED_A}\nDB.Example.NET {ED_A}\n!*.neg.example {ED_A}\n"
        ));
        assert_eq!(status(&p, "web.example.com", 22, ED_A), known(&p, 1));
        assert_eq!(status(&p, "a.b.example.com", 22, ED_A), known(&p, 1));
        assert_eq!(
            status(&p, "bastion.example.com", 22, ED_A),
            HostKeyStatus::Unknown
        );
        assert_eq!(status(&p, "example.com", 22, ED_A), HostKeyStatus::Unknown);
        // A wildcard does not reach into the `[host]:port` form.
        assert_eq!(
            status(&p, "web.example.com", 2222, ED_A),
            HostKeyStatus::Unknown
        );
        assert_eq!(status(&p, "web1.prod.example", 22, ED_A), known(&p, 2));
        assert_eq!(
            status(&p, "web12.prod.example", 22, ED_A),
            HostKeyStatus::Unknown
        );
        assert_eq!(
            status(&p, "web.prod.example", 22, ED_A),
            HostKeyStatus::Unknown
        );
        assert_eq!(status(&p, "x.lab.example", 2222, ED_A), known(&p, 3));
        assert_eq!(
            status(&p, "x.lab.example", 22, ED_A),
            HostKeyStatus::Unknown
        );
        assert_eq!(status(&p, "db.example.net", 22, ED_A), known(&p, 4));
        // Only negations: matches nothing, neither the negated name nor others.
        assert_eq!(
            status(&p, "a.neg.example", 22, ED_A),
            HostKeyStatus::Unknown
        );
        assert_eq!(
            status(&p, "unrelated.example", 22, ED_A),
            HostKeyStatus::Unknown
        );
        // A negated line is not evidence of a changed key for that host.
        assert_eq!(
            status(&p, "bastion.example.com", 22, ED_B),
            HostKeyStatus::Unknown
        );
        assert!(matches!(
            status(&p, "web.example.com", 22, ED_B),
            HostKeyStatus::Changed { line: 1, .. }
        ));
    }

    /// OpenSSH copies each pattern into a 1024-byte buffer and, when one does not fit
    /// (1023 bytes or more after its `!`), the whole line matches nothing, whatever the
    /// other patterns say (`match_pattern_list` in match.c). The property test against
    /// `ssh-keygen -F` found opsdeck matching such lines.
    #[test]
    fn a_pattern_too_long_for_openssh_makes_the_line_match_nothing() {
        let fits = "a".repeat(1022);
        let too_long = "a".repeat(1023);
        let stars = "*".repeat(1023);
        let (_d, p) = file(&format!(
            "example.com,{too_long} {ED_A}\n{too_long},example.com {ED_A}\nexample.com,!{stars} {ED_A}\n{stars} {ED_A}\n"
        ));
        assert_eq!(status(&p, "example.com", 22, ED_A), HostKeyStatus::Unknown);
        let (_d2, p2) = file(&format!(
            "{fits},example.com {ED_A}\nexample.com,!{fits} {ED_A}\n"
        ));
        assert_eq!(status(&p2, "example.com", 22, ED_A), known(&p2, 1));
        assert_eq!(known_hosts_lines(&p2, "example.com"), [1, 2]);
    }

    fn known_hosts_lines(path: &Path, host: &str) -> Vec<usize> {
        host_lines(&fs::read(path).unwrap(), host, 22)
            .iter()
            .map(|l| l.line)
            .collect()
    }

    #[test]
    fn glob_edge_cases() {
        assert!(glob(b"*", b""));
        assert!(glob(b"**", b"abc"));
        assert!(glob(b"a*c", b"abbbc"));
        assert!(glob(b"a*b*c", b"aXbYbZc"));
        assert!(!glob(b"a*b*c", b"aXbYbZ"));
        assert!(glob(b"?", b"x"));
        assert!(!glob(b"?", b""));
        assert!(!glob(b"", b"x"));
        assert!(glob(b"", b""));
        assert!(glob(b"*.example.com", b".example.com"));
        // Pathological input stays fast.
        let name = vec![b'a'; 5000];
        assert!(!glob(b"*a*a*a*a*a*a*a*a*a*a*b", &name));
    }

    #[test]
    fn revoked_beats_known_in_any_file() {
        let (_d, p) = file(&format!("example.com {ED_A}\n@revoked * {ED_A}\n"));
        assert_eq!(
            status(&p, "example.com", 22, ED_A),
            HostKeyStatus::Revoked {
                path: p.clone(),
                line: 2
            }
        );
        // A revoked key is revoked for every host the line covers, known or not; `*` covers
        // the `[host]:port` names too.
        assert!(matches!(
            status(&p, "elsewhere.example", 22, ED_A),
            HostKeyStatus::Revoked { line: 2, .. }
        ));
        assert!(matches!(
            status(&p, "elsewhere.example", 2222, ED_A),
            HostKeyStatus::Revoked { line: 2, .. }
        ));
        // Revocation of another key does not touch this one.
        assert_eq!(status(&p, "example.com", 22, ED_B), {
            HostKeyStatus::Changed {
                path: p.clone(),
                line: 1,
                recorded_fingerprint: ED_A_FP.into(),
            }
        });
        // Known in the first file, revoked in the second: still revoked.
        let (_d2, first) = file(&format!("example.com {ED_B}\n"));
        let (_d3, second) = file(&format!("# revocations\n@revoked\texample.com {ED_B}\n"));
        assert_eq!(
            check(
                &[first.clone(), second.clone()],
                "example.com",
                22,
                &key(ED_B)
            )
            .unwrap(),
            HostKeyStatus::Revoked {
                path: second,
                line: 2
            }
        );
    }

    #[test]
    fn cert_authority_and_bad_markers_are_ignored() {
        let (_d, p) = file(&format!(
            "@cert-authority *.example.com {ED_A}\n@bogus web.example.com {ED_A}\n@revoked @revoked web.example.com {ED_A}\n@revoked\n@cert-authority web.example.com {ED_B}\n"
        ));
        assert_eq!(
            status(&p, "web.example.com", 22, ED_A),
            HostKeyStatus::Unknown
        );
        // A CA line with a different key is not a "changed" key either.
        assert_eq!(
            status(&p, "web.example.com", 22, ED_B),
            HostKeyStatus::Unknown
        );
        assert_eq!(
            status(&p, "web.example.com", 22, RSA_R),
            HostKeyStatus::Unknown
        );
    }

    #[test]
    fn changed_key_reports_its_line_and_recorded_fingerprint() {
        let (_d, p) = file(&format!(
            "# fleet\nexample.org {ED_B}\n\nexample.com {ED_A}\n"
        ));
        assert_eq!(
            status(&p, "example.com", 22, ED_B),
            HostKeyStatus::Changed {
                path: p.clone(),
                line: 4,
                recorded_fingerprint: ED_A_FP.into()
            }
        );
        // Several recorded keys of one type: any match is Known (OpenSSH accepts that too).
        let (_d2, p2) = file(&format!("example.com {ED_B}\nexample.com {ED_A}\n"));
        assert_eq!(status(&p2, "example.com", 22, ED_A), known(&p2, 2));
        // Changed in the first file but known in the second: Known.
        let (_d3, p3) = file(&format!("example.com {ED_A}\n"));
        assert_eq!(
            check(&[p3.clone(), p2.clone()], "example.com", 22, &key(ED_B)).unwrap(),
            known(&p2, 1)
        );
    }

    #[test]
    fn host_known_only_with_other_algorithms_is_unknown() {
        let (_d, p) = file(&format!("example.com {ECDSA_C}\nexample.com {RSA_R}\n"));
        assert_eq!(status(&p, "example.com", 22, ED_A), HostKeyStatus::Unknown);
        assert_eq!(status(&p, "example.com", 22, RSA_R), known(&p, 2));
        assert_eq!(status(&p, "example.com", 22, ECDSA_C), known(&p, 1));
    }

    #[test]
    fn missing_files_are_skipped_unreadable_ones_are_errors() {
        let (d, p) = file(&format!("example.com {ED_A}\n"));
        let missing = d.path().join("nope");
        assert_eq!(
            check(&[missing, p.clone()], "example.com", 22, &key(ED_A)).unwrap(),
            known(&p, 1)
        );
        assert_eq!(
            check(&[], "example.com", 22, &key(ED_A)).unwrap(),
            HostKeyStatus::Unknown
        );
        // A directory where the file should be: refuse to guess.
        assert!(check(&[d.path().to_path_buf(), p], "example.com", 22, &key(ED_A)).is_err());
    }

    #[test]
    fn garbage_never_panics_and_later_lines_still_count() {
        let blob_a = ED_A.split(' ').nth(1).unwrap();
        let mut content: Vec<u8> = Vec::new();
        let junk_lines = [
            "example.com".to_string(),
            "example.com ".to_string(),
            "example.com ssh-ed25519".to_string(),
            "example.com ssh-ed25519 #comment".to_string(),
            "example.com ssh-ed25519 !!!notbase64".to_string(),
            format!("example.com ssh-rsa {blob_a}"),
            format!("example.com ssh-ed25519 {}", &blob_a[..20]),
            format!("example.com ssh-ed25519-cert-v01@openssh.com {blob_a}"),
            "example.com 1024 65537 12345678901234567890".to_string(),
            "@".to_string(),
            "@revoked".to_string(),
            "@revoked ".to_string(),
            "|".to_string(),
            "|1|".to_string(),
            "|1||".to_string(),
            "[".to_string(),
            "]:".to_string(),
            ",,,, ssh-ed25519 x".to_string(),
            format!("\0 {ED_A}"),
            "*".repeat(10_000),
            format!("{} {ED_A}", "*?".repeat(3000)),
        ];
        for l in &junk_lines {
            content.extend_from_slice(l.as_bytes());
            content.push(b'\n');
        }
        content.extend_from_slice(&[0xff, 0xfe, 0x00, b' ', 0xc3, b'\n']);
        // Deterministic pseudo-random noise over a known_hosts-ish alphabet.
        let alphabet = b"ab.*?!,[]:|@ \t#\r1=+/AZ\xff";
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..2000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = (seed % 80) as usize;
            for i in 0..len {
                content
                    .push(alphabet[((seed >> (i % 50)) as usize).wrapping_add(i) % alphabet.len()]);
            }
            content.push(b'\n');
        }
        let last = content.iter().filter(|&&b| b == b'\n').count() + 1;
        content.extend_from_slice(format!("example.com {ED_A}\n").as_bytes());
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("known_hosts");
        fs::write(&p, &content).unwrap();
        assert_eq!(status(&p, "example.com", 22, ED_A), known(&p, last));
        for host in ["a", "ab.ab", "*", "", "[a]:1", "|1|"] {
            for port in [22, 1, 65535] {
                let _ = check(std::slice::from_ref(&p), host, port, &key(ED_B)).unwrap();
            }
        }
    }

    #[cfg(unix)]
    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn append_creates_private_file_and_dir_then_check_finds_it() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("home/.ssh");
        let p = dir.join("known_hosts");
        append(&p, "Example.com", 22, &key(ED_A)).unwrap();
        #[cfg(unix)]
        {
            assert_eq!(mode(&dir), 0o700);
            assert_eq!(mode(&p), 0o600);
        }
        append(&p, "example.com", 2222, &key(ED_B)).unwrap();
        append(&p, "example.com", 22, &key(RSA_R)).unwrap();
        assert_eq!(status(&p, "example.com", 22, ED_A), known(&p, 1));
        assert_eq!(status(&p, "example.com", 2222, ED_B), known(&p, 2));
        assert_eq!(status(&p, "example.com", 22, RSA_R), known(&p, 3));
        assert_eq!(status(&p, "example.com", 2222, ED_A), {
            HostKeyStatus::Changed {
                path: p.clone(),
                line: 2,
                recorded_fingerprint: fingerprint(&key(ED_B)),
            }
        });

        let text = fs::read_to_string(&p).unwrap();
        assert!(!text.contains("example"), "{text}");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        for (line, k) in lines.iter().zip([ED_A, ED_B, RSA_R]) {
            let (host, rest) = line.split_once(' ').unwrap();
            assert!(
                host.starts_with("|1|") && host.len() == 3 + 28 + 1 + 28,
                "{host}"
            );
            assert_eq!(rest, k, "type and key exactly, no comment");
        }
        // Two appends use different salts.
        assert_ne!(&lines[0][..31], &lines[2][..31]);
    }

    #[test]
    fn append_adds_missing_final_newline_and_keeps_existing_modes() {
        let (_d, p) = file(&format!("# mine\nexample.org {ED_B}"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
        }
        append(&p, "example.com", 22, &key(ED_A)).unwrap();
        assert_eq!(status(&p, "example.org", 22, ED_B), known(&p, 2));
        assert_eq!(status(&p, "example.com", 22, ED_A), known(&p, 3));
        assert!(fs::read_to_string(&p).unwrap().ends_with('\n'));
        #[cfg(unix)]
        assert_eq!(mode(&p), 0o644);
    }

    #[test]
    fn append_output_is_found_by_ssh_keygen() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("known_hosts");
        let file_arg = p.to_str().unwrap();
        append(&p, "example.com", 22, &key(ED_A)).unwrap();
        append(&p, "example.com", 2222, &key(ED_B)).unwrap();
        append(&p, "10.1.2.3", 22, &key(ECDSA_C)).unwrap();

        for (name, line, k) in [
            ("example.com", 1, ED_A),
            ("[example.com]:2222", 2, ED_B),
            ("10.1.2.3", 3, ECDSA_C),
        ] {
            let out = ssh_keygen(&["-F", name, "-f", file_arg]);
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success(),
                "ssh-keygen -F {name}: {stdout}{}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(
                stdout.contains(&format!("found: line {line} ")),
                "{name}: {stdout}"
            );
            assert!(
                stdout.contains(k.split(' ').nth(1).unwrap()),
                "{name}: {stdout}"
            );
        }
        // And nothing else is found: the port is part of the name.
        for name in ["example.org", "[example.com]:22", "[example.com]:2223"] {
            let out = ssh_keygen(&["-F", name, "-f", file_arg]);
            assert!(
                !out.status.success(),
                "ssh-keygen -F {name} should find nothing"
            );
        }
    }

    #[test]
    fn fingerprint_matches_ssh_keygen() {
        let tmp = tempfile::tempdir().unwrap();
        for (text, expected) in [(ED_A, ED_A_FP), (ECDSA_C, ECDSA_C_FP), (RSA_R, RSA_R_FP)] {
            assert_eq!(fingerprint(&key(text)), expected);
            let pub_file = tmp.path().join("key.pub");
            fs::write(&pub_file, format!("{text} test\n")).unwrap();
            let out = ssh_keygen(&["-l", "-f", pub_file.to_str().unwrap()]);
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert_eq!(stdout.split_whitespace().nth(1), Some(expected), "{stdout}");
        }
    }
}
