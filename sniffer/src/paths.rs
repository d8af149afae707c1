//! Interned paths: every distinct path the daemon holds is stored once, however many
//! containers used it, and containers refer to it by a 4-byte [`PathId`].
//!
//! Replicas of one image open the same files, so a node's containers share most of their
//! paths; a `String` per record per container cost about 1.5 KiB per learned path. The
//! bytes of every path live in one arena (no allocation per path), found through a hash
//! table of ids. Entries are reference-counted by the containers that hold them and freed
//! with the last; the arena is compacted when more than half of it is freed paths, so a
//! daemon that runs for months holds only the paths of containers it still tracks.

use hashbrown::DefaultHashBuilder;
use hashbrown::HashTable;
use std::hash::BuildHasher;

/// A path in a [`PathTable`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PathId(u32);

impl PathId {
    /// Its index (below 2^31: a table never holds more paths).
    pub fn index(self) -> u32 {
        self.0
    }

    /// The id of an index from [`PathId::index`].
    pub fn from_index(index: u32) -> PathId {
        PathId(index)
    }
}

#[derive(Clone, Copy)]
struct Entry {
    /// Where its bytes start in the arena.
    offset: u64,
    len: u32,
    /// Holders; 0 means the slot is free (on the free list).
    refs: u32,
}

/// Freed bytes below which the arena is never compacted.
const COMPACT_ABOVE: usize = 1 << 20;

/// The table. Not thread-safe by itself: the daemon keeps it inside its tracker's lock.
#[derive(Default)]
pub struct PathTable {
    /// Ids, found by the hash of their bytes.
    index: HashTable<u32>,
    entries: Vec<Entry>,
    free: Vec<u32>,
    arena: Vec<u8>,
    /// Bytes of the arena that belong to freed paths.
    dead: usize,
    hasher: DefaultHashBuilder,
}

fn bytes_of<'a>(arena: &'a [u8], e: &Entry) -> &'a [u8] {
    &arena[e.offset as usize..e.offset as usize + e.len as usize]
}

impl PathTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// The id of `bytes` if some holder has it, without taking a reference.
    pub fn lookup(&self, bytes: &[u8]) -> Option<PathId> {
        let hash = self.hasher.hash_one(bytes);
        self.index.find(hash, |&i| bytes_of(&self.arena, &self.entries[i as usize]) == bytes).map(|&i| PathId(i))
    }

    /// Takes a reference to `bytes`, adding it when new.
    pub fn intern(&mut self, bytes: &[u8]) -> PathId {
        let hash = self.hasher.hash_one(bytes);
        let (entries, arena) = (&mut self.entries, &self.arena);
        if let Some(&i) = self.index.find(hash, |&i| bytes_of(arena, &entries[i as usize]) == bytes) {
            entries[i as usize].refs += 1;
            return PathId(i);
        }
        // Paths come from the kernel, at most 4 KiB each.
        let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
        let entry = Entry { offset: self.arena.len() as u64, len, refs: 1 };
        self.arena.extend_from_slice(&bytes[..len as usize]);
        let entries = &mut self.entries;
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
        let (hasher, arena) = (&self.hasher, &self.arena);
        self.index.insert_unique(hash, i, |&j| hasher.hash_one(bytes_of(arena, &entries[j as usize])));
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
        let hash = self.hasher.hash_one(bytes_of(&self.arena, entry));
        if let Ok(found) = self.index.find_entry(hash, |&i| i == id.0) {
            found.remove();
        }
        self.dead += entry.len as usize;
        entry.len = 0;
        self.free.push(id.0);
        if self.dead > COMPACT_ABOVE && self.dead > self.arena.len() / 2 {
            self.compact();
        }
    }

    /// Copies the live paths into a fresh arena; ids and hashes do not change.
    fn compact(&mut self) {
        let mut arena = Vec::with_capacity(self.arena.len() - self.dead);
        for e in self.entries.iter_mut().filter(|e| e.refs > 0) {
            let start = arena.len() as u64;
            arena.extend_from_slice(bytes_of(&self.arena, e));
            e.offset = start;
        }
        self.arena = arena;
        self.dead = 0;
    }

    /// The bytes of a path (empty for an id that was freed).
    pub fn get(&self, id: PathId) -> &[u8] {
        self.entries.get(id.0 as usize).map(|e| bytes_of(&self.arena, e)).unwrap_or_default()
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
    fn the_arena_is_compacted_when_most_of_it_is_freed() {
        let mut t = PathTable::new();
        let long = |i: usize| format!("/{}/{i}", "d".repeat(200));
        let ids: Vec<PathId> = (0..20_000).map(|i| t.intern(long(i).as_bytes())).collect();
        let full = t.arena.len();
        for id in &ids[..15_000] {
            t.release(*id);
        }
        assert!(t.arena.len() < full / 2, "compacted: {} of {full} bytes", t.arena.len());
        for (i, id) in ids.iter().enumerate().skip(15_000) {
            assert_eq!(t.get(*id), long(i).as_bytes());
            assert_eq!(t.lookup(long(i).as_bytes()), Some(*id));
        }
        assert_eq!(t.lookup(long(0).as_bytes()), None);
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
