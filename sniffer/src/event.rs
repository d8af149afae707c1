//! Events from the kernel, decoded.

use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sniffer_common::{
    CLASS_NAME_MAX, CLASS_SOURCE_MAX, CallEvent, EventHeader, FLAG_TRUNCATED, KIND_CALL, KIND_CLASS, KIND_EXEC,
    KIND_OPEN,
};

/// What the task did with the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    /// Opened it (open, openat, openat2, creat).
    Open,
    /// Executed it.
    Exec,
}

impl Access {
    /// `open` or `exec`.
    pub fn as_str(self) -> &'static str {
        match self {
            Access::Open => "open",
            Access::Exec => "exec",
        }
    }
}

/// Prefix of a path whose root-side components did not fit in the event.
pub const TRUNCATED_PREFIX: &str = "…";

/// One file a watched task opened or executed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEvent {
    /// cgroup v2 id of the task.
    pub cgroup_id: u64,
    /// Mount namespace id of the task.
    pub mnt_ns: u64,
    /// Thread id (initial pid namespace).
    pub pid: u32,
    /// Process id (initial pid namespace).
    pub tgid: u32,
    /// The task's command name.
    pub comm: String,
    /// Open or exec.
    pub kind: Access,
    /// Absolute path as the task sees it from its root; when `truncated`, only the leaf side,
    /// after [`TRUNCATED_PREFIX`].
    pub path: PathBuf,
    /// The path was too long or too deep to send whole.
    pub truncated: bool,
    /// Set on the exec of a dynamic loader: the executable whose `PT_INTERP` named it. The
    /// kernel opens loaders itself, unseen by tracepoints; see `loader`.
    pub loader_of: Option<PathBuf>,
}

impl FileEvent {
    /// Decodes one ring buffer record; `None` when it is malformed.
    pub fn decode(bytes: &[u8]) -> Option<FileEvent> {
        let header_len = std::mem::size_of::<EventHeader>();
        if bytes.len() < header_len {
            return None;
        }
        // SAFETY: EventHeader is repr(C) plain data and `bytes` holds at least its size;
        // read_unaligned because ring buffer records are only 8-byte aligned by convention.
        let header: EventHeader = unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast()) };
        let data = bytes.get(header_len..header_len + header.path_len as usize)?;
        let kind = match header.kind {
            KIND_OPEN => Access::Open,
            KIND_EXEC => Access::Exec,
            _ => return None,
        };
        let truncated = header.flags & FLAG_TRUNCATED != 0;
        let comm_len = header.comm.iter().position(|&b| b == 0).unwrap_or(header.comm.len());
        Some(FileEvent {
            cgroup_id: header.cgroup_id,
            mnt_ns: header.mnt_ns,
            pid: header.pid,
            tgid: header.tgid,
            comm: String::from_utf8_lossy(&header.comm[..comm_len]).into_owned(),
            kind,
            path: path_from_leaf_first(data, truncated),
            truncated,
            loader_of: None,
        })
    }
}

/// The first call of a probed function by a watched cgroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallSeen {
    /// cgroup v2 id of the task.
    pub cgroup_id: u64,
    /// Thread id (initial pid namespace).
    pub pid: u32,
    /// Process id (initial pid namespace).
    pub tgid: u32,
    /// The task's command name.
    pub comm: String,
    /// The probe's id.
    pub probe: u64,
}

impl CallSeen {
    /// Decodes one ring buffer record of kind `KIND_CALL`; `None` for any other record.
    pub fn decode(bytes: &[u8]) -> Option<CallSeen> {
        if bytes.len() < std::mem::size_of::<CallEvent>() {
            return None;
        }
        // SAFETY: CallEvent is repr(C) plain data and `bytes` holds at least its size.
        let event: CallEvent = unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast()) };
        if event.header.kind != KIND_CALL || event.header.path_len != 8 {
            return None;
        }
        let comm = &event.header.comm;
        let comm_len = comm.iter().position(|&b| b == 0).unwrap_or(comm.len());
        Some(CallSeen {
            cgroup_id: event.header.cgroup_id,
            pid: event.header.pid,
            tgid: event.header.tgid,
            comm: String::from_utf8_lossy(&comm[..comm_len]).into_owned(),
            probe: event.probe,
        })
    }
}

/// A class a JVM defined in a watched cgroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassSeen {
    /// cgroup v2 id of the task.
    pub cgroup_id: u64,
    /// Process id (initial pid namespace).
    pub tgid: u32,
    /// The task's command name.
    pub comm: String,
    /// The class name as the JVM gives it (`com/example/Foo`), cut at
    /// `CLASS_NAME_MAX - 1` bytes.
    pub class: String,
    /// Its code source URL, cut at `CLASS_SOURCE_MAX - 1` bytes.
    pub source: String,
}

impl ClassSeen {
    /// Decodes one ring buffer record of kind `KIND_CLASS`; `None` for any other record.
    pub fn decode(bytes: &[u8]) -> Option<ClassSeen> {
        let header_len = std::mem::size_of::<EventHeader>();
        if bytes.len() < header_len + CLASS_NAME_MAX + CLASS_SOURCE_MAX {
            return None;
        }
        // SAFETY: EventHeader is repr(C) plain data and `bytes` holds at least its size.
        let header: EventHeader = unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast()) };
        if header.kind != KIND_CLASS || header.path_len as usize != CLASS_NAME_MAX + CLASS_SOURCE_MAX {
            return None;
        }
        let field = |b: &[u8]| {
            let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
            String::from_utf8_lossy(&b[..end]).into_owned()
        };
        let data = &bytes[header_len..];
        let comm_len = header.comm.iter().position(|&b| b == 0).unwrap_or(header.comm.len());
        Some(ClassSeen {
            cgroup_id: header.cgroup_id,
            tgid: header.tgid,
            comm: String::from_utf8_lossy(&header.comm[..comm_len]).into_owned(),
            class: field(&data[..CLASS_NAME_MAX]),
            source: field(&data[CLASS_NAME_MAX..CLASS_NAME_MAX + CLASS_SOURCE_MAX]),
        })
    }
}

/// `c/b/a/` (leaf first, as the kernel walks) becomes `/a/b/c`.
fn path_from_leaf_first(data: &[u8], truncated: bool) -> PathBuf {
    let mut out = Vec::with_capacity(data.len() + 4);
    if truncated {
        out.extend_from_slice(TRUNCATED_PREFIX.as_bytes());
    }
    let mut any = false;
    for component in data.split(|&b| b == b'/').rev().filter(|c| !c.is_empty()) {
        out.push(b'/');
        out.extend_from_slice(component);
        any = true;
    }
    if !any {
        out.push(b'/');
    }
    PathBuf::from(OsString::from_vec(out))
}

/// A path as text for people and JSON; bytes that are not UTF-8 are escaped as `\xNN`.
pub fn display_path(path: &Path) -> String {
    let bytes = path.as_os_str().as_bytes();
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_string(),
        Err(_) => bytes
            .utf8_chunks()
            .flat_map(|chunk| {
                let invalid: String = chunk.invalid().iter().map(|b| format!("\\x{b:02x}")).collect();
                [chunk.valid().to_string(), invalid]
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(kind: u8, flags: u8, path: &[u8]) -> Vec<u8> {
        let header = EventHeader {
            cgroup_id: 7,
            mnt_ns: 9,
            pid: 10,
            tgid: 11,
            comm: *b"python3\0\0\0\0\0\0\0\0\0",
            kind,
            flags,
            _pad: 0,
            path_len: path.len() as u32,
        };
        let mut bytes = vec![0u8; std::mem::size_of::<EventHeader>()];
        // SAFETY: plain data copied into a buffer of its size.
        unsafe { std::ptr::write_unaligned(bytes.as_mut_ptr().cast(), header) };
        bytes.extend_from_slice(path);
        bytes
    }

    #[test]
    fn reverses_leaf_first_components() {
        let ev = FileEvent::decode(&record(KIND_OPEN, 0, b"libc.so.6/x86_64-linux-gnu/lib/usr/")).unwrap();
        assert_eq!(ev.path, Path::new("/usr/lib/x86_64-linux-gnu/libc.so.6"));
        assert_eq!((ev.kind, ev.comm.as_str(), ev.tgid, ev.truncated), (Access::Open, "python3", 11, false));
        let root = FileEvent::decode(&record(KIND_EXEC, 0, b"")).unwrap();
        assert_eq!(root.path, Path::new("/"));
    }

    #[test]
    fn marks_truncated_paths() {
        let ev = FileEvent::decode(&record(KIND_OPEN, FLAG_TRUNCATED, b"leaf/deep/")).unwrap();
        assert!(ev.truncated);
        assert_eq!(display_path(&ev.path), "…/deep/leaf");
    }

    #[test]
    fn rejects_malformed_records() {
        assert!(FileEvent::decode(&[0u8; 8]).is_none());
        assert!(FileEvent::decode(&record(99, 0, b"x/")).is_none());
        let mut short = record(KIND_OPEN, 0, b"abc/");
        short.truncate(short.len() - 2);
        assert!(FileEvent::decode(&short).is_none());
    }

    #[test]
    fn escapes_non_utf8() {
        let p = PathBuf::from(OsString::from_vec(b"/tmp/a\xffb".to_vec()));
        assert_eq!(display_path(&p), "/tmp/a\\xffb");
    }
}
