//! Reading a container's root filesystem without ever leaving it.
//!
//! Every path is resolved inside the root, as `openat2(RESOLVE_IN_ROOT)` does: an absolute
//! symlink starts again at the root, `..` stops at the root, so a hostile image cannot make
//! us read a host file.

use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat2};
use nix::sys::stat::Mode;

/// Most symlinks followed resolving one path (Linux's own limit is 40).
const MAX_LINKS: usize = 40;

/// A root directory opened once; paths are resolved inside it.
#[derive(Debug)]
pub struct Root {
    dir: OwnedFd,
    path: PathBuf,
}

impl Root {
    /// Opens `path` as a root (errors do not repeat the path: callers name it).
    pub fn open(path: &Path) -> io::Result<Root> {
        let dir = File::open(path)?;
        if !dir.metadata()?.is_dir() {
            return Err(io::Error::new(io::ErrorKind::NotADirectory, format!("{} is not a directory", path.display())));
        }
        Ok(Root { dir: dir.into(), path: path.to_path_buf() })
    }

    /// The root's path on the host.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Opens a file for reading, resolving `path` inside the root.
    pub fn open_file(&self, path: &Path) -> io::Result<File> {
        let how = OpenHow::new()
            .flags(OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NOCTTY | OFlag::O_NONBLOCK)
            .mode(Mode::empty())
            .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
        let relative = relative_to_root(path);
        let fd = openat2(self.dir.as_fd(), relative.as_path(), how)
            .map_err(|e| annotate(io::Error::from(e), &self.path.join(&relative)))?;
        Ok(File::from(fd))
    }

    /// The canonical path of `path` inside the root: every symlink followed (inside the
    /// root), `.` and `..` gone. The result is absolute, as the container sees it.
    /// Components that do not exist are kept as they are.
    pub fn canonicalize(&self, path: &Path) -> io::Result<PathBuf> {
        let mut resolved = PathBuf::from("/");
        let mut pending: Vec<Vec<u8>> = components(path);
        pending.reverse();
        let mut links = 0;
        while let Some(part) = pending.pop() {
            match part.as_slice() {
                b"." | b"" => continue,
                b".." => {
                    resolved.pop();
                    continue;
                }
                _ => {}
            }
            let candidate = resolved.join(OsStr::from_bytes(&part));
            let link = nix::fcntl::readlinkat(self.dir.as_fd(), relative_to_root(&candidate).as_path());
            match link {
                Ok(target) => {
                    links += 1;
                    if links > MAX_LINKS {
                        return Err(io::Error::other(format!(
                            "too many symlinks resolving {} in {}",
                            path.display(),
                            self.path.display()
                        )));
                    }
                    let target = Path::new(&target);
                    if target.is_absolute() {
                        resolved = PathBuf::from("/");
                    }
                    let mut more = components(target);
                    more.reverse();
                    pending.extend(more);
                }
                // Not a symlink, or not there: keep the name as it is.
                Err(_) => resolved = candidate,
            }
        }
        Ok(resolved)
    }
}

/// Lexical normalisation of a path inside a root: made absolute, `.` dropped, `..` pops
/// (never above `/`). No symlink is looked at; [`Root::canonicalize`] resolves them.
pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in path.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

/// The components of a path, as bytes, root and prefix dropped.
fn components(path: &Path) -> Vec<Vec<u8>> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.as_bytes().to_vec()),
            Component::ParentDir => Some(b"..".to_vec()),
            Component::CurDir | Component::RootDir | Component::Prefix(_) => None,
        })
        .collect()
}

/// `/a/b` becomes `a/b`; `/` becomes `.`.
fn relative_to_root(path: &Path) -> PathBuf {
    let relative = path.strip_prefix("/").unwrap_or(path);
    if relative.as_os_str().is_empty() { PathBuf::from(".") } else { relative.to_path_buf() }
}

fn annotate(e: io::Error, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn hostile_root() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        std::fs::create_dir_all(r.join("usr/lib")).unwrap();
        std::fs::create_dir_all(r.join("etc")).unwrap();
        std::fs::write(r.join("usr/lib/real"), b"inside").unwrap();
        std::fs::write(r.join("etc/hostname"), b"container").unwrap();
        symlink("usr/lib", r.join("lib")).unwrap();
        symlink("/etc/hostname", r.join("abs")).unwrap();
        symlink("../../../../../../../etc/hostname", r.join("usr/lib/up")).unwrap();
        symlink("loop2", r.join("loop1")).unwrap();
        symlink("loop1", r.join("loop2")).unwrap();
        dir
    }

    #[test]
    fn canonicalizes_inside_the_root() {
        let dir = hostile_root();
        let root = Root::open(dir.path()).unwrap();
        assert_eq!(root.canonicalize(Path::new("/lib/real")).unwrap(), Path::new("/usr/lib/real"));
        assert_eq!(root.canonicalize(Path::new("/abs")).unwrap(), Path::new("/etc/hostname"));
        assert_eq!(root.canonicalize(Path::new("/lib/up")).unwrap(), Path::new("/etc/hostname"));
        assert_eq!(root.canonicalize(Path::new("/usr/../../lib/./real")).unwrap(), Path::new("/usr/lib/real"));
        assert_eq!(root.canonicalize(Path::new("/missing/x")).unwrap(), Path::new("/missing/x"));
        assert!(root.canonicalize(Path::new("/loop1")).is_err());
    }

    #[test]
    fn reads_never_leave_the_root() {
        let dir = hostile_root();
        let root = Root::open(dir.path()).unwrap();
        for escaping in ["/abs", "/lib/up", "../../../../etc/hostname"] {
            let text = std::io::read_to_string(root.open_file(Path::new(escaping)).unwrap()).unwrap();
            assert_eq!(text, "container", "{escaping} must resolve inside the root");
        }
        let err = root.open_file(Path::new("/loop1")).unwrap_err();
        assert!(err.to_string().contains("loop1"), "error names the file: {err}");
    }
}
