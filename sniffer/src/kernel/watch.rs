//! The maps that say which cgroups the programs report, as user space drives them.
//!
//! The programs' gate reads `WATCHED`, an array where cgroup `id` has slot `id & mask`: one
//! read and a compare, inlined by the verifier, where a hash table would cost a lookup call on
//! every open of every task on the node. A slot holds one watched cgroup; another watched
//! cgroup whose id maps to a taken slot goes to the `WATCHED_SPILL` hash table, and the slot's
//! `SPILLED` flag sends the gate there. User space writes a `WATCHED` slot only while it is
//! free or to free it, never while the programs count into it.

use std::collections::HashMap as StdHashMap;

use aya::Ebpf;
use aya::maps::{Array, HashMap, MapData, MapError};
use sniffer_common::WatchState;

use super::{KernelError, map_err};

/// Where a watched cgroup's [`WatchState`] lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// In its `WATCHED` slot.
    Slot,
    /// In `WATCHED_SPILL`: another cgroup held the slot when this one was watched.
    Spill,
}

/// The three maps, taken out of the loaded object, and user space's index of them.
pub(super) struct Watchlist {
    slots: Array<MapData, WatchState>,
    spilled: Array<MapData, u32>,
    spill: HashMap<MapData, u64, WatchState>,
    mask: u32,
    watched: StdHashMap<u64, Place>,
}

/// Takes map `name` out of `ebpf` as a `T`.
fn take<T>(ebpf: &mut Ebpf, name: &'static str) -> Result<T, KernelError>
where
    T: TryFrom<aya::maps::Map, Error = MapError>,
{
    let map = ebpf.take_map(name).ok_or(KernelError::Missing(name))?;
    T::try_from(map).map_err(map_err(name))
}

impl Watchlist {
    /// Takes the maps out of `ebpf`; `mask` is the slot count less one (a power of two less one).
    pub(super) fn new(ebpf: &mut Ebpf, mask: u32) -> Result<Self, KernelError> {
        Ok(Watchlist {
            slots: take(ebpf, "WATCHED")?,
            spilled: take(ebpf, "SPILLED")?,
            spill: take(ebpf, "WATCHED_SPILL")?,
            mask,
            watched: StdHashMap::new(),
        })
    }

    fn slot(&self, cgroup_id: u64) -> u32 {
        cgroup_id as u32 & self.mask
    }

    /// Starts reporting this cgroup; watching it again changes nothing.
    pub(super) fn watch(&mut self, cgroup_id: u64) -> Result<(), KernelError> {
        if cgroup_id == 0 {
            // 0 marks a free slot; no cgroup has it.
            return Err(KernelError::NoCgroup(cgroup_id));
        }
        if self.watched.contains_key(&cgroup_id) {
            return Ok(());
        }
        let index = self.slot(cgroup_id);
        let fresh = WatchState { cgroup_id, ..WatchState::default() };
        let place = if self.slots.get(&index, 0).map_err(map_err("WATCHED"))?.cgroup_id == 0 {
            self.slots.set(index, fresh, 0).map_err(map_err("WATCHED"))?;
            Place::Slot
        } else {
            self.spill.insert(cgroup_id, fresh, 0).map_err(map_err("WATCHED_SPILL"))?;
            self.spilled.set(index, 1, 0).map_err(map_err("SPILLED"))?;
            Place::Spill
        };
        self.watched.insert(cgroup_id, place);
        Ok(())
    }

    /// Stops reporting this cgroup; returns how many of its events were lost.
    pub(super) fn unwatch(&mut self, cgroup_id: u64) -> Result<u64, KernelError> {
        let Some(place) = self.watched.remove(&cgroup_id) else {
            return Ok(0);
        };
        let index = self.slot(cgroup_id);
        let lost = self.counts(cgroup_id, place)?.lost;
        match place {
            Place::Slot => self.slots.set(index, WatchState::default(), 0).map_err(map_err("WATCHED"))?,
            Place::Spill => {
                match self.spill.remove(&cgroup_id) {
                    Ok(()) | Err(MapError::KeyNotFound) => {}
                    Err(e) => return Err(map_err("WATCHED_SPILL")(e)),
                }
                let others = self.watched.iter().any(|(&id, &p)| p == Place::Spill && self.slot(id) == index);
                if !others {
                    self.spilled.set(index, 0, 0).map_err(map_err("SPILLED"))?;
                }
            }
        }
        Ok(lost)
    }

    fn counts(&self, cgroup_id: u64, place: Place) -> Result<WatchState, KernelError> {
        match place {
            Place::Slot => self.slots.get(&self.slot(cgroup_id), 0).map_err(map_err("WATCHED")),
            Place::Spill => match self.spill.get(&cgroup_id, 0) {
                Ok(state) => Ok(state),
                Err(MapError::KeyNotFound) => Ok(WatchState::default()),
                Err(e) => Err(map_err("WATCHED_SPILL")(e)),
            },
        }
    }

    /// What the programs counted for this cgroup; zeroes if it is not watched.
    pub(super) fn counts_for(&self, cgroup_id: u64) -> Result<WatchState, KernelError> {
        match self.watched.get(&cgroup_id) {
            Some(&place) => self.counts(cgroup_id, place),
            None => Ok(WatchState::default()),
        }
    }
}
