//! The globs of backup sets, matched here on the names a listing brought back (never
//! expanded by a shell on the host), the way GNU `find -name` matches them
//! (`tests/backup_props.rs` checks that on real files), but for a leading dot.

/// Shell-style glob on one file name: `*`, `?`, `[...]` classes (with `!` or `^` negation
/// and ranges) and `\` quoting the next character, as GNU `find -name` reads them in the
/// C locale (named classes like `[[:digit:]]` and collating symbols are not supported).
/// A leading `.` must be matched by a literal `.`, as in the shell (find would let `*`
/// match it), so a glob like `*.dump` never counts dot files.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    // A pattern ending in a lone `\` matches nothing, as in fnmatch.
    let Some(tokens) = tokens(pattern) else {
        return false;
    };
    if name.starts_with('.') && tokens.first() != Some(&Token::Lit('.')) {
        return false;
    }
    let n: Vec<char> = name.chars().collect();
    glob_at(&tokens, &n)
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Lit(char),
    Any,
    Star,
    Class {
        negate: bool,
        ranges: Vec<(char, char)>,
    },
    /// A `[` that never closes: an ordinary `[`, as fnmatch reads it, unless the would-be
    /// class ends in a range with no end (`[a-`) before any member matched a `[`: then
    /// fnmatch gives up on that attempt.
    Open {
        literal: bool,
    },
}

impl Token {
    fn matches(&self, c: char) -> bool {
        match self {
            Token::Lit(l) => *l == c,
            Token::Any => true,
            Token::Star => false,
            Token::Class { negate, ranges } => in_ranges(ranges, c) != *negate,
            Token::Open { literal } => *literal && c == '[',
        }
    }
}

fn in_ranges(ranges: &[(char, char)], c: char) -> bool {
    ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi)
}

fn tokens(pattern: &str) -> Option<Vec<Token>> {
    let p: Vec<char> = pattern.chars().collect();
    let mut out = Vec::with_capacity(p.len());
    let mut i = 0;
    while i < p.len() {
        match p[i] {
            '*' => {
                // `**` is `*`: one backtrack point is enough.
                if out.last() != Some(&Token::Star) {
                    out.push(Token::Star);
                }
                i += 1;
            }
            '?' => {
                out.push(Token::Any);
                i += 1;
            }
            '\\' => {
                out.push(Token::Lit(*p.get(i + 1)?));
                i += 2;
            }
            '[' => match class(&p[i..]) {
                Bracket::Closed(token, len) => {
                    out.push(token);
                    i += len;
                }
                Bracket::Open { literal } => {
                    // What followed the `[` is read again as ordinary pattern.
                    out.push(Token::Open { literal });
                    i += 1;
                }
            },
            c => {
                out.push(Token::Lit(c));
                i += 1;
            }
        }
    }
    Some(out)
}

enum Bracket {
    /// The class and its length.
    Closed(Token, usize),
    /// It never closes; see [`Token::Open`].
    Open { literal: bool },
}

/// `[...]` at the start of `p`, read as glibc's fnmatch reads it: `]` right after `[` or
/// `[!` is a member, `a-z` a range unless the `-` is last, `\` quotes the next character.
fn class(p: &[char]) -> Bracket {
    let mut i = 1;
    let negate = matches!(p.get(i), Some('!') | Some('^'));
    if negate {
        i += 1;
    }
    let mut ranges = Vec::new();
    let mut first = true;
    loop {
        let Some(&c) = p.get(i) else {
            return Bracket::Open { literal: true };
        };
        if c == ']' && !first {
            return Bracket::Closed(Token::Class { negate, ranges }, i + 1);
        }
        first = false;
        // A `\` with nothing after it: the whole pattern fails (see `tokens`).
        let Some((lo, next)) = escaped(p, i) else {
            return Bracket::Open { literal: false };
        };
        match (p.get(next), p.get(next + 1)) {
            (Some('-'), None) => {
                return Bracket::Open {
                    literal: in_ranges(&ranges, '[') || lo == '[',
                };
            }
            (Some('-'), Some(&e)) if e != ']' => {
                let Some((hi, after)) = escaped(p, next + 1) else {
                    return Bracket::Open { literal: false };
                };
                ranges.push((lo, hi));
                i = after;
            }
            _ => {
                ranges.push((lo, lo));
                i = next;
            }
        }
    }
}

/// The character at `i` inside a class, `\` quoting the next one, and where the next starts.
fn escaped(p: &[char], i: usize) -> Option<(char, usize)> {
    match *p.get(i)? {
        '\\' => p.get(i + 1).map(|&c| (c, i + 2)),
        c => Some((c, i + 1)),
    }
}

fn glob_at(p: &[Token], n: &[char]) -> bool {
    // Iterative matcher with one backtrack point for the last `*`: linear-ish, no blow-up.
    let (mut pi, mut ni) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        match p.get(pi) {
            Some(Token::Star) => {
                star = Some((pi, ni));
                pi += 1;
                continue;
            }
            Some(t) if t.matches(n[ni]) => {
                pi += 1;
                ni += 1;
                continue;
            }
            _ => {}
        }
        match star {
            Some((sp, sn)) => {
                pi = sp + 1;
                ni = sn + 1;
                star = Some((sp, sn + 1));
            }
            None => return false,
        }
    }
    p[pi..].iter().all(|t| *t == Token::Star)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_like_the_shell() {
        assert!(glob_match("lila-*.sql.gz", "lila-20261123.sql.gz"));
        assert!(!glob_match("lila-*.sql.gz", "lila-20261123.sql"));
        assert!(glob_match("*.dump", "a.dump"));
        assert!(
            !glob_match("*.dump", ".lila.partial.dump"),
            "dot files need a literal dot"
        );
        assert!(glob_match("app-??.db", "app-01.db"));
        assert!(glob_match("app-[0-9]*.db", "app-2026.db"));
        assert!(!glob_match("app-[!0-9]*.db", "app-2026.db"));
        assert!(glob_match("a*b*c*d", "axxbyyczzd"));
        assert!(!glob_match("a*b*c*d", "axxbyyczz"));
        assert!(glob_match("x[", "x["));
        assert!(glob_match("[]x]", "]"));
        assert!(glob_match("a\\*", "a*"));
        assert!(!glob_match("a\\*", "ab"));
        assert!(glob_match("[\\]]", "]"));
        assert!(
            !glob_match("a\\", "a\\"),
            "a trailing backslash matches nothing"
        );
        assert!(glob_match("[\\]", "[]"), "an unclosed class is literal");
        // Unclosed classes as glibc's fnmatch (and so `find -name`) reads them.
        assert!(glob_match("aa-[a[", "aa-[a["));
        assert!(!glob_match("[a-", "[a-"), "a range without an end fails");
        assert!(glob_match("[[-", "[[-"), "unless a `[` matched first");
        // Pathological patterns stay fast.
        let name = "a".repeat(200);
        assert!(!glob_match(&format!("{}b", "*a".repeat(30)), &name));
    }
}
