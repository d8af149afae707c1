//! The distribution of a root, from `etc/os-release` or `usr/lib/os-release`.

use std::io::Read;
use std::path::Path;

use crate::model::Distro;
use crate::rootfs::Root;

/// Most bytes of os-release read: it is a few hundred bytes; more is not os-release.
const MAX_LEN: u64 = 64 * 1024;

/// Reads the root's os-release; `None` when it has none.
pub fn detect(root: &Root) -> Option<Distro> {
    ["/etc/os-release", "/usr/lib/os-release"].iter().find_map(|p| {
        let mut text = String::new();
        root.open_file(Path::new(p)).ok()?.take(MAX_LEN).read_to_string(&mut text).ok()?;
        parse(&text)
    })
}

/// Parses os-release text (shell-style `KEY=value` lines, values optionally quoted).
pub fn parse(text: &str) -> Option<Distro> {
    let mut id = None;
    let mut version_id = None;
    let mut pretty_name = None;
    for line in text.lines() {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let value = value.trim().trim_matches(|c| c == '"' || c == '\'').to_string();
        match key.trim() {
            "ID" => id = Some(value),
            "VERSION_ID" => version_id = Some(value),
            "PRETTY_NAME" => pretty_name = Some(value),
            _ => {}
        }
    }
    Some(Distro { id: id?, version_id, pretty_name })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_debian_os_release() {
        let d = parse(
            "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nID=debian\n",
        )
        .unwrap();
        assert_eq!(d.id, "debian");
        assert_eq!(d.version_id.as_deref(), Some("12"));
        assert_eq!(d.pretty_name.as_deref(), Some("Debian GNU/Linux 12 (bookworm)"));
        assert!(parse("garbage\n\0\0").is_none());
    }

    #[test]
    fn reads_this_hosts_os_release() {
        let root = Root::open(Path::new("/")).unwrap();
        assert!(detect(&root).is_some());
    }
}
