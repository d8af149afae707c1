//! Alpine version order, as `apk version -t` computes it.
//!
//! Grammar: `digit{.digit}...{letter}{_suffix{digits}}...{~hash}{-r#}`. Pre-release suffixes
//! (`_alpha`, `_beta`, `_pre`, `_rc`) sort before the bare version, post-release ones
//! (`_cvs`, `_svn`, `_git`, `_hg`, `_p`) after it.

use std::cmp::Ordering;

/// Token kinds, in apk's order: when two versions differ in the kind of their next token,
/// the one with the later kind is the smaller version (so a shorter version is smaller).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Digit,
    Letter,
    Suffix,
    SuffixNo,
    Hash,
    Revision,
    End,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// A number; `fractional` when it is not the first and has a leading zero (compared
    /// as a string, as apk does).
    Digit {
        text: String,
        first: bool,
    },
    Letter(u8),
    /// Index in SUFFIXES: below PRE_COUNT is a pre-release.
    Suffix(usize),
    SuffixNo(u64),
    Hash(String),
    Revision(u64),
}

const SUFFIXES: [&str; 9] = ["alpha", "beta", "pre", "rc", "cvs", "svn", "git", "hg", "p"];
const PRE_COUNT: usize = 4;

/// A parsed Alpine version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApkVersion(Vec<Token>);

impl ApkVersion {
    /// Parses an Alpine package version.
    pub fn parse(s: &str) -> Result<ApkVersion, String> {
        let b = s.as_bytes();
        let mut i = 0;
        let mut out = Vec::new();
        let digits = |i: usize| b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        let n = digits(0);
        if n == 0 {
            return Err("does not start with a digit".into());
        }
        out.push(Token::Digit { text: s[..n].to_string(), first: true });
        i += n;
        while i < b.len() && b[i] == b'.' {
            let n = digits(i + 1);
            if n == 0 {
                return Err(format!("no digits after '.' at {i}"));
            }
            out.push(Token::Digit { text: s[i + 1..i + 1 + n].to_string(), first: false });
            i += 1 + n;
        }
        if i < b.len() && b[i].is_ascii_lowercase() {
            out.push(Token::Letter(b[i]));
            i += 1;
        }
        while i < b.len() && b[i] == b'_' {
            let name_len = b[i + 1..].iter().take_while(|c| c.is_ascii_lowercase()).count();
            let name = &s[i + 1..i + 1 + name_len];
            let idx = SUFFIXES.iter().position(|x| *x == name).ok_or_else(|| format!("unknown suffix _{name}"))?;
            out.push(Token::Suffix(idx));
            i += 1 + name_len;
            let n = digits(i);
            if n > 0 {
                out.push(Token::SuffixNo(s[i..i + n].parse().map_err(|_| "suffix number too large")?));
                i += n;
            }
        }
        if i < b.len() && b[i] == b'~' {
            let n = b[i + 1..].iter().take_while(|c| c.is_ascii_hexdigit()).count();
            out.push(Token::Hash(s[i + 1..i + 1 + n].to_string()));
            i += 1 + n;
        }
        if s[i..].starts_with("-r") {
            let n = digits(i + 2);
            if n == 0 {
                return Err("no digits after -r".into());
            }
            out.push(Token::Revision(s[i + 2..i + 2 + n].parse().map_err(|_| "revision too large")?));
            i += 2 + n;
        }
        if i != b.len() {
            return Err(format!("unexpected {:?} at {i}", &s[i..]));
        }
        Ok(ApkVersion(out))
    }
}

fn kind(t: Option<&Token>) -> Kind {
    match t {
        Some(Token::Digit { .. }) => Kind::Digit,
        Some(Token::Letter(_)) => Kind::Letter,
        Some(Token::Suffix(_)) => Kind::Suffix,
        Some(Token::SuffixNo(_)) => Kind::SuffixNo,
        Some(Token::Hash(_)) => Kind::Hash,
        Some(Token::Revision(_)) => Kind::Revision,
        None => Kind::End,
    }
}

fn cmp_digits(a: &str, b: &str, fractional: bool) -> Ordering {
    if fractional {
        return a.cmp(b);
    }
    let (a, b) = (a.trim_start_matches('0'), b.trim_start_matches('0'));
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

impl Ord for ApkVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        let (a, b) = (&self.0, &other.0);
        let mut i = 0;
        loop {
            let (ta, tb) = (a.get(i), b.get(i));
            let (ka, kb) = (kind(ta), kind(tb));
            if ka != kb {
                // A pre-release suffix is below anything; otherwise the later kind is smaller.
                if let Some(Token::Suffix(x)) = ta
                    && *x < PRE_COUNT
                {
                    return Ordering::Less;
                }
                if let Some(Token::Suffix(x)) = tb
                    && *x < PRE_COUNT
                {
                    return Ordering::Greater;
                }
                return kb.cmp(&ka);
            }
            let ord = match (ta, tb) {
                (None, None) => return Ordering::Equal,
                (Some(Token::Digit { text: x, first }), Some(Token::Digit { text: y, .. })) => {
                    let fractional = !first && (x.starts_with('0') || y.starts_with('0'));
                    cmp_digits(x, y, fractional)
                }
                (Some(Token::Letter(x)), Some(Token::Letter(y))) => x.cmp(y),
                (Some(Token::Suffix(x)), Some(Token::Suffix(y))) => x.cmp(y),
                (Some(Token::SuffixNo(x)), Some(Token::SuffixNo(y))) => x.cmp(y),
                (Some(Token::Hash(_)), Some(Token::Hash(_))) => Ordering::Equal,
                (Some(Token::Revision(x)), Some(Token::Revision(y))) => x.cmp(y),
                _ => Ordering::Equal,
            };
            if ord != Ordering::Equal {
                return ord;
            }
            i += 1;
        }
    }
}

impl PartialOrd for ApkVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
