//! Java code sources: the URL a JVM gives with each class it defines, mapped to the archive
//! it names, keyed as the SBOM's `found_at` writes it (`/app/x.jar`, or
//! `/app.jar!/BOOT-INF/lib/x.jar` for an archive inside another). Only ever keys: nothing
//! named here is read.

use std::path::{Path, PathBuf};

/// Where a code source says its classes came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// An archive, keyed as the SBOM's `found_at` writes it; `outer` is the file itself.
    Archive {
        /// `/app.jar!/BOOT-INF/lib/x.jar`.
        key: String,
        /// `/app.jar`.
        outer: PathBuf,
    },
    /// A directory of class files (the workload's own classes).
    Directory,
    /// The JDK's own modules (`jrt:/java.sql`).
    Jdk,
    /// None given.
    None,
    /// A URL we cannot map.
    Unknown,
}

/// Bytes of a code source the probe keeps; one that fills them may be cut.
pub const SOURCE_MAX: usize = 511;

/// Maps a code source URL to where its classes came from.
pub fn origin(source: &str) -> Origin {
    if source.is_empty() {
        return Origin::None;
    }
    if source.len() >= SOURCE_MAX {
        // Cut by the probe: what it names is not known.
        return Origin::Unknown;
    }
    if source.starts_with("jrt:/") {
        return Origin::Jdk;
    }
    if let Some(path) = source.strip_prefix("file:") {
        let path = decode(path.trim_start_matches("//"));
        if path.ends_with('/') {
            return Origin::Directory;
        }
        return archive(&path, &[]);
    }
    // Spring Boot 3.2: jar:nested:/app.jar/!BOOT-INF/lib/x.jar[!/...]
    if let Some(rest) = source.strip_prefix("jar:nested:") {
        let Some((outer, inner)) = rest.split_once("/!") else { return Origin::Unknown };
        let parts: Vec<String> = inner.split("!/").map(decode).collect();
        return archive(&decode(outer), &parts);
    }
    // jar:file:/app.jar!/BOOT-INF/lib/x.jar!/
    if let Some(rest) = source.strip_prefix("jar:file:") {
        let mut parts = rest.split("!/");
        let outer = decode(parts.next().unwrap_or_default().trim_start_matches("//"));
        let inner: Vec<String> = parts.map(decode).collect();
        return archive(&outer, &inner);
    }
    Origin::Unknown
}

/// An archive at `outer` and the archives inside it; a trailing part that is not an
/// archive (`BOOT-INF/classes`) is a directory of the last archive, whose own classes they
/// are.
fn archive(outer: &str, inner: &[String]) -> Origin {
    if !outer.starts_with('/') {
        return Origin::Unknown;
    }
    let outer = crate::rootfs::normalize(Path::new(outer));
    let mut key = outer.display().to_string();
    for part in inner.iter().map(|p| p.trim_end_matches('/')).filter(|p| !p.is_empty()) {
        if !is_archive(part) {
            break;
        }
        key.push_str("!/");
        key.push_str(part);
    }
    Origin::Archive { key, outer }
}

fn is_archive(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    [".jar", ".war", ".ear", ".zip"].iter().any(|e| lower.ends_with(e))
}

/// `%xx` escapes of a URL undone.
fn decode(s: &str) -> String {
    String::from_utf8_lossy(&crate::text::percent_decode(s)).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_sources_map_to_archives_as_the_sbom_names_them() {
        let a = |key: &str, outer: &str| Origin::Archive { key: key.into(), outer: outer.into() };
        assert_eq!(origin("file:/app/lib/x.jar"), a("/app/lib/x.jar", "/app/lib/x.jar"));
        assert_eq!(origin("file:/app/lib/with%20space.jar"), a("/app/lib/with space.jar", "/app/lib/with space.jar"));
        assert_eq!(origin("file:/app/classes/"), Origin::Directory);
        assert_eq!(
            origin("jar:file:/app/fat.jar!/BOOT-INF/lib/x.jar!/"),
            a("/app/fat.jar!/BOOT-INF/lib/x.jar", "/app/fat.jar")
        );
        assert_eq!(origin("jar:file:/app/fat.jar!/BOOT-INF/classes!/"), a("/app/fat.jar", "/app/fat.jar"));
        assert_eq!(
            origin("jar:nested:/app/fat.jar/!BOOT-INF/lib/y.jar"),
            a("/app/fat.jar!/BOOT-INF/lib/y.jar", "/app/fat.jar")
        );
        assert_eq!(
            origin("jar:nested:/app/fat.jar/!BOOT-INF/lib/y.jar!/"),
            a("/app/fat.jar!/BOOT-INF/lib/y.jar", "/app/fat.jar")
        );
        assert_eq!(origin("jrt:/java.sql"), Origin::Jdk);
        assert_eq!(origin(""), Origin::None);
        assert_eq!(origin("http://example.com/x.jar"), Origin::Unknown);
        assert_eq!(origin(&format!("file:/{}", "a".repeat(600))), Origin::Unknown, "cut by the probe");
        // A path outside the root is only ever a key: normalised, never read.
        assert_eq!(origin("file:/../../../etc/x.jar"), a("/etc/x.jar", "/etc/x.jar"));
        assert_eq!(origin("file:relative.jar"), Origin::Unknown);
    }
}
