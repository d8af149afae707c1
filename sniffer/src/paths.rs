//! Interned paths: every distinct path the daemon holds is stored once, however many
//! containers used it, and containers refer to it by a 4-byte [`PathId`].
//!
//! Replicas of one image open the same files, so a node's containers share most of their
//! paths; a `String` per record per container cost about 1.5 KiB per learned path. Entries
//! are reference-counted by the containers that hold them and freed when the last one goes,
//! so a daemon that runs for months holds only the paths of containers it still tracks.

use hashbrown::HashTable;
use hashbrown::DefaultHashBuilder;
use std::hash::BuildHasher;

/// A path in a [`PathTable`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PathId(u32);

struct Entry {
    bytes: Box<[u8]>,
    /// Holders; 0 means the slot is free (on the free list).
    refs: u32,
}

/// The table. Not thread-safe by itself: the daemon keeps it inside its tracker's lock.
#[derive(Default)]
pub struct PathTable {
    /// Ids, found by the hash of their bytes.
    index: HashTable<u32>,
    entries: Vec<Entry>,
    free: Vec<u32>,
    hasher: DefaultHashBuilder,
}

impl PathTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// The id of `bytes` if some holder has it, without taking a reference.
    pub fn lookup(&self, bytes: &[u8]) -> Option<PathId> {
        let hash = self.hasher.hash_one(bytes);
        self.index.find(hash, |&i| &*self.entries[i as usize].bytes == bytes).map(|&i| PathId(i))
    }

    /// Takes a reference to `bytes`, adding it when new.
    pub fn intern(&mut self, bytes: &[u8]) -> PathId {
        let hash = self.hasher.hash_one(bytes);
        let entries = &mut self.entries;
        if let Some(&i) = self.index.find(hash, |&i| &*entries[i as usize].bytes == bytes) {
            entries[i as usize].refs += 1;
            return PathId(i);
        }
        let entry = Entry { bytes: bytes.into(), refs: 1 };
        let i = match self.free.pop() {
            Some(i) => {
                entries[i as usize] = entry;
                i
            }
            None => {
                // More than 4 billion distinct paths cannot be held in memory anyway.
                let i = u32::try_from(entries.len()).unwrap_or(u32::MAX);
                entries.push(entry);
                i
            }
        };
        let hasher = &self.hasher;
        self.index.insert_unique(hash, i, |&j| hasher.hash_one(&*entries[j as usize].bytes));
        PathId(i)
    }

    /// Drops one reference; the path is freed with its last.
    pub fn release(&mut self, id: PathId) {
        let Some(entry) = self.entries.get_mut(id.0 as usize) else { return };
        if entry.refs == 0 {
            return;
        }
        entry.refs -= 1;
        if entry.refs > 0 {
            return;
        }
        let hash = self.hasher.hash_one(&*entry.bytes);
        if let Ok(found) = self.index.find_entry(hash, |&i| i == id.0) {
            found.remove();
        }
        entry.bytes = Box::default();
        self.free.push(id.0);
    }

    /// The bytes of a path (empty for an id that was freed).
    pub fn get(&self, id: PathId) -> &[u8] {
        self.entries.get(id.0 as usize).map(|e| &*e.bytes).unwrap_or_default()
    }

    /// Distinct paths held.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// True when no path is held.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_entry_per_distinct_path_freed_with_its_last_holder() {
        let mut t = PathTable::new();
        let a = t.intern(b"/usr/lib/libc.so.6");
        let b = t.intern(b"/usr/lib/libc.so.6");
        let c = t.intern(b"/etc/passwd");
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(t.len(), 2);
        assert_eq!(t.get(a), b"/usr/lib/libc.so.6");
        assert_eq!(t.lookup(b"/etc/passwd"), Some(c));
        t.release(a);
        assert_eq!(t.lookup(b"/usr/lib/libc.so.6"), Some(a), "one holder left");
        t.release(b);
        assert_eq!(t.lookup(b"/usr/lib/libc.so.6"), None);
        assert_eq!(t.len(), 1);
        // The freed slot is reused, and the other path is untouched.
        let d = t.intern(b"/bin/sh");
        assert_eq!(d, a);
        assert_eq!(t.get(d), b"/bin/sh");
        assert_eq!(t.get(c), b"/etc/passwd");
        // Releasing more than was taken does nothing.
        t.release(c);
        t.release(c);
        assert_eq!(t.get(d), b"/bin/sh");
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn many_paths_round_trip() {
        let mut t = PathTable::new();
        let ids: Vec<PathId> = (0..10_000).map(|i| t.intern(format!("/tmp/f{i}").as_bytes())).collect();
        for (i, id) in ids.iter().enumerate() {
            assert_eq!(t.get(*id), format!("/tmp/f{i}").as_bytes());
        }
        for id in ids.iter().step_by(2) {
            t.release(*id);
        }
        assert_eq!(t.len(), 5_000);
        for (i, id) in ids.iter().enumerate().skip(1).step_by(2) {
            assert_eq!(t.lookup(format!("/tmp/f{i}").as_bytes()), Some(*id));
        }
    }
}
