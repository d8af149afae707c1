//! Text from images made safe to show: image content names files, packages and warnings,
//! and a name can carry terminal escape sequences or bidirectional overrides. Whatever
//! reaches a terminal or a log goes through [`clean`]; warnings quote image bytes only
//! through [`bounded`] (the catalogs' warnings are cut to 400 characters).

use std::borrow::Cow;

fn unsafe_char(c: char) -> bool {
    c.is_control()
        // Bidirectional controls ("Trojan Source"), which reorder what a terminal shows.
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `text` with every control character (C0, DEL, C1) and bidirectional control escaped as
/// `\u{..}`; borrowed when there is none.
pub fn clean(text: &str) -> Cow<'_, str> {
    if !text.chars().any(unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if unsafe_char(c) {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// At most `max` characters of `text`, cleaned, with `…` when cut.
pub fn bounded(text: &str, max: usize) -> String {
    let mut chars = text.chars();
    let head: String = chars.by_ref().take(max).collect();
    let cut = chars.next().is_some();
    let mut out = clean(&head).into_owned();
    if cut {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_terminal_controls_and_keeps_the_rest() {
        assert!(matches!(clean("/usr/lib/libc.so.6"), Cow::Borrowed(_)));
        assert_eq!(clean("a\u{1b}[31mred\u{7}\r\n"), "a\\u{1b}[31mred\\u{7}\\u{d}\\u{a}");
        assert_eq!(clean("x\u{202e}gpj.exe"), "x\\u{202e}gpj.exe");
        assert_eq!(clean("\u{9b}2J"), "\\u{9b}2J");
        assert_eq!(clean("naïve ✓"), "naïve ✓");
    }

    #[test]
    fn excerpts_are_short_and_clean() {
        let long = "\u{1b}".repeat(10_000);
        let e = bounded(&long, 120);
        assert!(e.ends_with('…') && !e.contains('\u{1b}') && e.chars().count() < 1000, "{e}");
        assert_eq!(bounded("short", 120), "short");
    }
}
