//! The version a Go build stamped beside its commit with `-X`, when its build info says no
//! version of its own.
//!
//! Kubernetes builds `kubectl` from its source tree (`(devel)` in the build info) and sets
//! `-X k8s.io/component-base/version.gitVersion=v1.27.16 -X ….gitCommit=<commit>` through
//! a variable that does not reach the recorded `-ldflags`. The two variables are declared
//! together, so their string headers (pointer, length) sit side by side in `.data`, stripped
//! or not; the commit equals the build info's `vcs.revision`. The rule:
//!
//! - find, in `.data`, a string header whose text is exactly `vcs.revision` (40 or 64 hex);
//! - among the string headers at most four slots either side of it, take the nearest whose
//!   text is a release version (`vMAJOR.MINOR.PATCH`, optional `-pre` and `+meta` of
//!   letters, digits, `.` and `-`);
//! - refuse (nothing stamped) when no header holds the revision, when the nearest two at one
//!   distance disagree, when the version is `v0.0.0…` (a placeholder), or when `.data` is
//!   larger than [`MAX_DATA`] (position-independent binaries, whose pointers are relocated
//!   at load, find nothing and fall back too).

/// Largest `.data` section read (kubectl's is 170 KiB).
pub const MAX_DATA: u64 = 32 << 20;

/// How many string headers either side of the commit's are looked at.
const NEIGHBOURS: i64 = 4;

/// Most texts of the commit's length read while looking for it (kubectl has a few dozen
/// 40-byte strings in `.data`); a hostile `.data` of nothing else costs no more.
const MAX_READS: usize = 4096;

/// The layout of the binary's words.
#[derive(Debug, Clone, Copy)]
pub struct Words {
    /// 8 (64-bit) or 4 bytes.
    pub size: usize,
    /// Little-endian.
    pub little: bool,
}

impl Words {
    fn read(self, b: &[u8]) -> Option<u64> {
        let b = b.get(..self.size)?;
        Some(match (self.size, self.little) {
            (8, true) => u64::from_le_bytes(b.try_into().ok()?),
            (8, false) => u64::from_be_bytes(b.try_into().ok()?),
            (4, true) => u64::from(u32::from_le_bytes(b.try_into().ok()?)),
            (4, false) => u64::from(u32::from_be_bytes(b.try_into().ok()?)),
            _ => return None,
        })
    }
}

/// The stamped version, `v`-prefixed as stamped, or `None` (see the module's rule).
/// `data_section` is `.data`; `read` reads `len` bytes at a virtual address.
pub fn find(
    data_section: &[u8],
    words: Words,
    revision: &str,
    read: impl Fn(u64, u64) -> Option<Vec<u8>>,
) -> Option<String> {
    if !matches!(revision.len(), 40 | 64) || !revision.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let (w, header) = (words.size, 2 * words.size);
    let text_at = |slot: usize, max: u64| -> Option<Vec<u8>> {
        let h = data_section.get(slot..slot.checked_add(header)?)?;
        let (ptr, len) = (words.read(h)?, words.read(&h[w..])?);
        (len > 0 && len <= max).then(|| read(ptr, len)).flatten()
    };
    let wanted = revision.len() as u64;
    let (mut slot, mut reads) = (0, 0);
    while slot + header <= data_section.len() {
        // Headers are word-aligned; most words fail the length test without a read.
        if words.read(&data_section[slot + w..]) == Some(wanted) {
            reads += 1;
            if reads > MAX_READS {
                return None;
            }
            if text_at(slot, wanted).as_deref() == Some(revision.as_bytes()) {
                return beside(slot, header, |s| text_at(s, 64));
            }
        }
        slot += w;
    }
    None
}

/// The nearest release version among the headers around `slot`.
fn beside(slot: usize, header: usize, text_at: impl Fn(usize) -> Option<Vec<u8>>) -> Option<String> {
    for distance in 1..=NEIGHBOURS {
        let found: Vec<String> = [-distance, distance]
            .iter()
            .filter_map(|k| {
                let at = (slot as i64).checked_add(k.checked_mul(header as i64)?)?;
                let text = text_at(usize::try_from(at).ok()?)?;
                release(std::str::from_utf8(&text).ok()?)
            })
            .collect();
        match found.as_slice() {
            [] => continue,
            [one] => return Some(one.clone()),
            [a, b] if a == b => return Some(a.clone()),
            _ => return None,
        }
    }
    None
}

/// `text` when it is a release version: `v1.27.16`, `v1.32.4-dispatcher`, `v2.0.0+meta`.
fn release(text: &str) -> Option<String> {
    let bare = text.strip_prefix('v')?;
    let (core, suffix) = match bare.find(['-', '+']) {
        Some(i) => bare.split_at(i),
        None => (bare, ""),
    };
    let parts: Vec<&str> = core.split('.').collect();
    let numeric = |p: &&str| !p.is_empty() && p.len() <= 9 && p.bytes().all(|b| b.is_ascii_digit());
    if parts.len() != 3 || !parts.iter().all(numeric) || parts.iter().all(|p| p.bytes().all(|b| b == b'0')) {
        return None;
    }
    let suffix_ok = suffix.len() <= 64
        && suffix.bytes().skip(1).all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'+'))
        && suffix.len() != 1;
    suffix_ok.then(|| text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const REV: &str = "cbb86e0d7f4a049666fac0551e8b02ef3d6c3d9a";

    /// A `.data` of string headers pointing into a fake memory of strings.
    fn layout(strings: &[&str]) -> (Vec<u8>, Vec<u8>) {
        let (mut data, mut memory) = (Vec::new(), Vec::new());
        for s in strings {
            data.extend_from_slice(&(0x1000 + memory.len() as u64).to_le_bytes());
            data.extend_from_slice(&(s.len() as u64).to_le_bytes());
            memory.extend_from_slice(s.as_bytes());
        }
        (data, memory)
    }

    fn run(strings: &[&str]) -> Option<String> {
        let (data, memory) = layout(strings);
        let read = |addr: u64, len: u64| {
            let start = usize::try_from(addr.checked_sub(0x1000)?).ok()?;
            memory.get(start..start + len as usize).map(<[u8]>::to_vec)
        };
        find(&data, Words { size: 8, little: true }, REV, read)
    }

    #[test]
    fn kubernetes_layout_gives_git_version() {
        // gitMajor, gitMinor, gitVersion, gitCommit, gitTreeState, buildDate.
        assert_eq!(run(&["1", "27", "v1.27.16", REV, "clean", "2024-07-17T01:53:56Z"]), Some("v1.27.16".into()));
        assert_eq!(run(&["v1.32.4-dispatcher", REV]), Some("v1.32.4-dispatcher".into()));
        // Two slots away, past a non-version.
        assert_eq!(run(&["x", "v2.3.4", "clean", REV]), Some("v2.3.4".into()));
    }

    #[test]
    fn refusals() {
        // Without the commit, nothing; a placeholder; two versions at one distance.
        assert_eq!(run(&["v1.27.16", "0123456789012345678901234567890123456789"]), None);
        assert_eq!(run(&["v0.0.0", REV]), None);
        assert_eq!(run(&["v0.0.0-master+$Format:%H$", REV]), None);
        assert_eq!(run(&["v1.0.0", REV, "v2.0.0"]), None);
        assert_eq!(run(&["v1.0.0", REV, "v1.0.0"]), Some("v1.0.0".into()));
        // Too far away, or not a version at all (a Go toolchain).
        assert_eq!(run(&["v1.2.3", "a", "b", "c", "d", REV]), None);
        assert_eq!(run(&["go1.22.5", REV]), None);
        assert_eq!(find(&[], Words { size: 8, little: true }, "zz", |_, _| None), None);
    }

    #[test]
    fn a_hostile_data_section_costs_a_bounded_number_of_reads() {
        // 32 MiB of headers all of the commit's length, none of them the commit.
        let mut data = Vec::with_capacity(MAX_DATA as usize);
        while data.len() < MAX_DATA as usize {
            data.extend_from_slice(&0x1000u64.to_le_bytes());
            data.extend_from_slice(&40u64.to_le_bytes());
        }
        let reads = std::cell::Cell::new(0usize);
        let started = std::time::Instant::now();
        let found = find(&data, Words { size: 8, little: true }, REV, |_, len| {
            reads.set(reads.get() + 1);
            Some(vec![b'0'; len as usize])
        });
        assert_eq!(found, None);
        assert_eq!(reads.get(), MAX_READS);
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }

    #[test]
    fn release_versions() {
        for ok in ["v1.2.3", "v10.20.30-rc.1", "v1.2.3+meta", "v0.0.1"] {
            assert!(release(ok).is_some(), "{ok}");
        }
        for bad in ["1.2.3", "v1.2", "v1.2.3-", "v1.2.3-$x", "v0.0.0", "v1.2.x", "v1.2.3\u{1b}"] {
            assert!(release(bad).is_none(), "{bad}");
        }
    }
}
