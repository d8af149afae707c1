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

/// `%xx` escapes undone, as bytes (a `%` not followed by two hex digits is kept): package
/// URLs, Go symbol names (`yaml%2ev3`) and code source URLs write them.
pub fn percent_decode(text: &str) -> Vec<u8> {
    let raw = text.as_bytes();
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let hex = raw.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok());
        match (raw[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
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

/// Pretty JSON in which every character [`clean`] would escape (DEL, C1, bidirectional
/// controls) is a `\uXXXX` escape, not the raw character: serde_json escapes only C0, and a
/// package name from an image reaches the terminal through `sniffer sbom` and `scan`.
/// Parsers read the same strings back.
pub fn to_json_pretty<T: serde::Serialize + ?Sized>(value: &T) -> serde_json::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(4096);
    let mut ser =
        serde_json::Serializer::with_formatter(&mut out, SafeFormatter(serde_json::ser::PrettyFormatter::new()));
    value.serialize(&mut ser)?;
    Ok(out)
}

/// [`to_json_pretty`] on one line (for JSON Lines output).
pub fn to_json_line<T: serde::Serialize + ?Sized>(value: &T) -> serde_json::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(256);
    let mut ser = serde_json::Serializer::with_formatter(&mut out, SafeFormatter(serde_json::ser::CompactFormatter));
    value.serialize(&mut ser)?;
    Ok(out)
}

/// [`to_json_pretty`] as a `String`.
pub fn to_json_pretty_string<T: serde::Serialize + ?Sized>(value: &T) -> serde_json::Result<String> {
    // Only valid UTF-8 is ever written: serde_json's strings and our ASCII escapes.
    to_json_pretty(value).map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
}

/// A serde_json formatter, escaping what [`unsafe_char`] names in strings as well.
struct SafeFormatter<F>(F);

impl<F: serde_json::ser::Formatter> serde_json::ser::Formatter for SafeFormatter<F> {
    fn write_string_fragment<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            if unsafe_char(c) {
                writer.write_all(&fragment.as_bytes()[start..i])?;
                write!(writer, "\\u{:04x}", c as u32)?;
                start = i + c.len_utf8();
            }
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }
    fn begin_array<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.begin_array(w)
    }
    fn end_array<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.end_array(w)
    }
    fn begin_array_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W, first: bool) -> std::io::Result<()> {
        self.0.begin_array_value(w, first)
    }
    fn end_array_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.end_array_value(w)
    }
    fn begin_object<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.begin_object(w)
    }
    fn end_object<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.end_object(w)
    }
    fn begin_object_key<W: ?Sized + std::io::Write>(&mut self, w: &mut W, first: bool) -> std::io::Result<()> {
        self.0.begin_object_key(w, first)
    }
    fn begin_object_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.begin_object_value(w)
    }
    fn end_object_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.end_object_value(w)
    }
}

#[cfg(test)]
mod json_tests {
    #[test]
    fn c1_and_bidi_controls_are_escaped_and_read_back() {
        let value = serde_json::json!({"name": "a\u{9b}2J\u{7f}b\u{202e}c\u{1b}d", "plain": "é"});
        let text = super::to_json_pretty_string(&value).unwrap();
        assert!(!text.contains(['\u{9b}', '\u{7f}', '\u{202e}', '\u{1b}']), "{text}");
        assert!(text.contains("\\u009b") && text.contains("é"), "{text}");
        assert_eq!(serde_json::from_str::<serde_json::Value>(&text).unwrap(), value);
        assert_eq!(
            text,
            serde_json::to_string_pretty(&serde_json::json!({"name": "x", "plain": "é"}))
                .unwrap()
                .replace("\"x\"", "\"a\\u009b2J\\u007fb\\u202ec\\u001bd\"")
        );
    }
}
