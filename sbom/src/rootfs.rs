//! Reading a container's root filesystem without ever leaving it: the one gate every read
//! of image content goes through.
//!
//! Everything under the root is chosen by an attacker and read by us as root. So:
//! - every path is resolved inside the root, as `openat2(RESOLVE_IN_ROOT)` does: an
//!   absolute symlink starts again at the root, `..` stops at the root;
//! - magic links (`/proc/self/fd/N`, `/proc/PID/root`) are refused (`RESOLVE_NO_MAGICLINKS`),
//!   and so is crossing into another mount (`RESOLVE_NO_XDEV`): a container's `/proc`,
//!   `/sys`, `/dev`, its volumes and secrets are mounts inside its root, never the image,
//!   and its `/proc` would show *our* process (`/proc/self/environ` holds our token);
//!   `/proc`, `/sys` and `/dev` are refused by name as well, for roots where they are
//!   plain directories;
//! - a file is opened non-blocking and `fstat`ed before a byte is read: anything but a
//!   regular file (a device node, a FIFO, a socket) is refused;
//! - directories are listed and walked through descriptors, one component at a time with
//!   `O_NOFOLLOW`, never by a path that a concurrent rename could swap for a symlink.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use nix::fcntl::{AtFlags, OFlag, OpenHow, ResolveFlag, openat2};
use nix::sys::stat::{Mode, SFlag, fstat, fstatat};

/// Most symlinks followed resolving one path (Linux's own limit is 40).
const MAX_LINKS: usize = 40;
/// Most components looked at resolving one path (a real one has a few dozen, links
/// included).
pub const MAX_STEPS: usize = 4096;
/// Most entries read from one directory.
pub const MAX_DIR_ENTRIES: usize = 1 << 20;
/// Top-level directories of a root that are never read: kernel and device views.
const NEVER_READ: &[&str] = &["proc", "sys", "dev"];

/// What a directory entry is, without following it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A directory.
    Dir,
    /// A regular file.
    File,
    /// A symlink (never followed by a walk or a listing).
    Symlink,
    /// A device node, FIFO or socket: never read.
    Other,
}

impl EntryKind {
    fn of_mode(mode: u32) -> EntryKind {
        match SFlag::from_bits_truncate(mode & SFlag::S_IFMT.bits()) {
            SFlag::S_IFDIR => EntryKind::Dir,
            SFlag::S_IFREG => EntryKind::File,
            SFlag::S_IFLNK => EntryKind::Symlink,
            _ => EntryKind::Other,
        }
    }
}

/// One entry met by [`Root::walk`].
pub struct WalkEntry<'a> {
    /// Its path inside the root (absolute, as the container sees it).
    pub path: &'a Path,
    /// Its name.
    pub name: &'a OsStr,
    /// What it is (symlinks are not followed).
    pub kind: EntryKind,
    parent: BorrowedFd<'a>,
}

impl WalkEntry<'_> {
    /// Its mode bits, read without following a symlink.
    pub fn mode(&self) -> io::Result<u32> {
        Ok(fstatat(self.parent, self.name, AtFlags::AT_SYMLINK_NOFOLLOW)?.st_mode)
    }

    /// What a sibling of it named `name` is, if it exists (not followed).
    pub fn sibling(&self, name: &str) -> Option<EntryKind> {
        fstatat(self.parent, name, AtFlags::AT_SYMLINK_NOFOLLOW).ok().map(|s| EntryKind::of_mode(s.st_mode))
    }
}

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

    fn how(flags: OFlag) -> OpenHow {
        let extra = if flags.contains(OFlag::O_PATH) {
            OFlag::O_CLOEXEC
        } else {
            OFlag::O_CLOEXEC | OFlag::O_NOCTTY | OFlag::O_NONBLOCK
        };
        OpenHow::new()
            .flags(flags | extra)
            .mode(Mode::empty())
            .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS | ResolveFlag::RESOLVE_NO_XDEV)
    }

    /// `path` made relative to the root, refused when it names the kernel's or devices'
    /// views.
    fn checked(&self, path: &Path) -> io::Result<PathBuf> {
        let relative = relative_to_root(&normalize(path));
        if let Some(Component::Normal(top)) = relative.components().next()
            && NEVER_READ.iter().any(|n| top == *n)
        {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "{}: under /{}, which is never read",
                    self.path.join(&relative).display(),
                    top.to_string_lossy()
                ),
            ));
        }
        Ok(relative)
    }

    fn open_at(&self, path: &Path, flags: OFlag) -> io::Result<(OwnedFd, PathBuf)> {
        let relative = self.checked(path)?;
        let fd = openat2(self.dir.as_fd(), relative.as_path(), Self::how(flags)).map_err(|e| {
            let e = io::Error::from(e);
            if e.raw_os_error() == Some(libc::EXDEV) {
                io::Error::new(
                    e.kind(),
                    format!(
                        "{}: on another mount inside the root (not the image's): not read",
                        self.path.join(&relative).display()
                    ),
                )
            } else {
                annotate(e, &self.path.join(&relative))
            }
        })?;
        Ok((fd, relative))
    }

    /// What `path` inside the root is (its last component not followed when it is a
    /// symlink only because resolution stops there: pass a canonical path), or `None`.
    pub fn kind(&self, path: &Path) -> Option<EntryKind> {
        let (fd, _) = self.open_at(path, OFlag::O_PATH | OFlag::O_NOFOLLOW).ok()?;
        fstat(fd.as_fd()).ok().map(|s| EntryKind::of_mode(s.st_mode))
    }

    /// Opens a directory inside the root.
    pub fn open_dir(&self, path: &Path) -> io::Result<OwnedFd> {
        self.open_at(path, OFlag::O_RDONLY | OFlag::O_DIRECTORY).map(|(fd, _)| fd)
    }

    /// The entries of a directory inside the root, by name, not followed (at most
    /// [`MAX_DIR_ENTRIES`]; more is an error).
    pub fn list_dir(&self, path: &Path) -> io::Result<Vec<(OsString, EntryKind)>> {
        let fd = self.open_dir(path)?;
        list(fd.as_fd()).map_err(|e| annotate(e, &self.path.join(relative_to_root(path))))
    }

    /// Walks the tree from the root, depth first, calling `visit` for every entry (it
    /// returns false to stop the walk) and `error` for what could not be read. Symlinks
    /// are never followed, mounts inside the root are not entered, `/proc`, `/sys` and
    /// `/dev` are skipped, and below `max_depth` directories are reported to `error` and
    /// not entered. A directory's entries are read whole (at most [`MAX_DIR_ENTRIES`]).
    /// Directories are opened one component at a time from their parent's descriptor, so a
    /// directory swapped for a symlink while the walk runs is refused, not followed.
    pub fn walk(
        &self,
        max_depth: usize,
        visit: &mut dyn FnMut(&WalkEntry<'_>) -> bool,
        error: &mut dyn FnMut(&Path, io::Error),
    ) {
        struct Frame {
            fd: OwnedFd,
            path: PathBuf,
            entries: std::vec::IntoIter<(OsString, Option<EntryKind>)>,
        }
        let root_dev = match fstat(self.dir.as_fd()) {
            Ok(s) => s.st_dev,
            Err(e) => return error(Path::new("/"), e.into()),
        };
        let open = |fd: OwnedFd, path: PathBuf| -> io::Result<Frame> {
            // Only the root's descriptor (a duplicate, sharing its offset) was read before.
            let entries = list_raw(fd.as_fd(), path == Path::new("/"))?;
            Ok(Frame { fd, path, entries: entries.into_iter() })
        };
        let top = nix::unistd::dup(self.dir.as_fd()).map_err(io::Error::from);
        let mut stack = match top.and_then(|fd| open(fd, PathBuf::from("/"))) {
            Ok(f) => vec![f],
            Err(e) => return error(Path::new("/"), e),
        };
        loop {
            let depth = stack.len();
            let Some(frame) = stack.last_mut() else { break };
            let Some((name, kind)) = frame.entries.next() else {
                stack.pop();
                continue;
            };
            let path = frame.path.join(&name);
            if depth == 1 && NEVER_READ.iter().any(|n| name == *n) {
                continue;
            }
            let parent = frame.fd.as_fd();
            let kind = match kind {
                Some(k) => k,
                None => match fstatat(parent, name.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW) {
                    Ok(s) => EntryKind::of_mode(s.st_mode),
                    Err(e) => {
                        error(&path, e.into());
                        continue;
                    }
                },
            };
            if !visit(&WalkEntry { path: &path, name: &name, kind, parent }) {
                return;
            }
            if kind != EntryKind::Dir {
                continue;
            }
            if depth > max_depth {
                error(&path, io::Error::other(format!("deeper than {max_depth} directories: not walked below")));
                continue;
            }
            let how = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK;
            let child = match nix::fcntl::openat(parent, name.as_os_str(), how, Mode::empty()) {
                Ok(fd) => fd,
                Err(e) => {
                    error(&path, e.into());
                    continue;
                }
            };
            match fstat(child.as_fd()) {
                Ok(s) if s.st_dev == root_dev => {}
                // A mount inside the root: a volume, procfs, a secret; not the image.
                Ok(_) => continue,
                Err(e) => {
                    error(&path, e.into());
                    continue;
                }
            }
            match open(child, path.clone()) {
                Ok(f) => stack.push(f),
                Err(e) => error(&path, e),
            }
        }
    }

    /// The root's path on the host.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Opens a regular file for reading, resolving `path` inside the root. Anything else
    /// (a device node, a FIFO, a socket, a directory) is refused without being opened: the
    /// path is resolved to an `O_PATH` descriptor, which opens nothing, `fstat`ed, and only a
    /// regular file is then opened for reading, through that very descriptor.
    pub fn open_file(&self, path: &Path) -> io::Result<File> {
        let (fd, relative) = self.open_at(path, OFlag::O_PATH)?;
        let stat = fstat(fd.as_fd()).map_err(|e| annotate(e.into(), &self.path.join(&relative)))?;
        match EntryKind::of_mode(stat.st_mode) {
            EntryKind::File => {
                // Reopening our own descriptor's magic link opens the same inode: nothing is
                // resolved again, so nothing can be swapped in between.
                let reopen = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&fd));
                let flags = OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NOCTTY | OFlag::O_NONBLOCK;
                let file = nix::fcntl::open(reopen.as_str(), flags, Mode::empty())
                    .map_err(|e| annotate(e.into(), &self.path.join(&relative)))?;
                Ok(File::from(file))
            }
            EntryKind::Dir => Err(io::Error::new(
                io::ErrorKind::IsADirectory,
                format!("{}: a directory", self.path.join(&relative).display()),
            )),
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{}: not a regular file (a device, FIFO or socket): not read",
                    self.path.join(&relative).display()
                ),
            )),
        }
    }

    /// The canonical path of `path` inside the root: every symlink followed (inside the
    /// root), `.` and `..` gone. The result is absolute, as the container sees it.
    /// Components that do not exist are kept as they are. At most [`MAX_STEPS`]
    /// components are looked at (links whose targets hold thousands of components, chained,
    /// would otherwise cost millions of calls for one path).
    pub fn canonicalize(&self, path: &Path) -> io::Result<PathBuf> {
        let mut steps = MAX_STEPS;
        self.canonicalize_within(path, &mut steps)
    }

    /// [`Root::canonicalize`], spending at most `steps` components (less what it used
    /// is left in `steps`).
    pub fn canonicalize_within(&self, path: &Path, steps: &mut usize) -> io::Result<PathBuf> {
        let mut resolved = PathBuf::from("/");
        let mut pending: Vec<Vec<u8>> = components(path);
        pending.reverse();
        let mut links = 0;
        while let Some(part) = pending.pop() {
            if *steps == 0 {
                return Err(io::Error::other(format!(
                    "resolving {} in {} took too many steps",
                    path.display(),
                    self.path.display()
                )));
            }
            *steps -= 1;
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

/// The entries of an open directory, by name, with their kind when the directory says.
/// Read with `getdents64` on the descriptor itself, from its start: `fdopendir` would
/// cost a duplicate, two `fcntl`s and a close per directory, a fifth of a whole scan.
fn list_raw(fd: BorrowedFd<'_>, rewind: bool) -> io::Result<Vec<(OsString, Option<EntryKind>)>> {
    use std::os::fd::AsRawFd;
    if rewind {
        // Whoever read this descriptor before (the root's is listed by every walk) moved it.
        nix::unistd::lseek(fd, 0, nix::unistd::Whence::SeekSet)?;
    }
    let mut buf = vec![0u8; 32 << 10];
    let mut out = Vec::new();
    loop {
        // SAFETY: getdents64 writes at most `buf.len()` bytes into `buf`, which lives for
        // the call; the descriptor is borrowed, so open.
        let n = unsafe { libc::syscall(libc::SYS_getdents64, fd.as_raw_fd(), buf.as_mut_ptr(), buf.len()) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let filled = &buf[..n as usize];
        if filled.is_empty() {
            return Ok(out);
        }
        // Records: d_ino (8 bytes), d_off (8), d_reclen (2), d_type (1), d_name (NUL-ended).
        let mut at = 0;
        while at + 19 <= filled.len() {
            let reclen = u16::from_ne_bytes([filled[at + 16], filled[at + 17]]) as usize;
            let Some(record) = filled.get(at..at + reclen).filter(|_| reclen >= 19) else {
                return Err(io::Error::other("malformed directory record"));
            };
            let name = &record[19..];
            let name = &name[..name.iter().position(|&b| b == 0).unwrap_or(name.len())];
            at += reclen;
            if name == b"." || name == b".." {
                continue;
            }
            if out.len() == MAX_DIR_ENTRIES {
                return Err(io::Error::other(format!("more than {MAX_DIR_ENTRIES} entries: not listed")));
            }
            out.push((OsStr::from_bytes(name).to_os_string(), kind_of_dtype(record[18])));
        }
    }
}

/// A directory entry's `d_type`, when it says.
fn kind_of_dtype(t: u8) -> Option<EntryKind> {
    match t {
        libc::DT_DIR => Some(EntryKind::Dir),
        libc::DT_REG => Some(EntryKind::File),
        libc::DT_LNK => Some(EntryKind::Symlink),
        libc::DT_UNKNOWN => None,
        _ => Some(EntryKind::Other),
    }
}

/// [`list_raw`] with every kind known.
fn list(fd: BorrowedFd<'_>) -> io::Result<Vec<(OsString, EntryKind)>> {
    list_raw(fd, false)?
        .into_iter()
        .map(|(name, kind)| match kind {
            Some(k) => Ok((name, k)),
            None => Ok((
                name.clone(),
                EntryKind::of_mode(fstatat(fd, name.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW)?.st_mode),
            )),
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
