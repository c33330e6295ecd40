//! The per-patient half of the host's counting: whether a contribution counts (a
//! patient's contributions to one cell and measure are bounded, and so is the number of
//! cells and measures it adds to) and whether it is the patient's first there (a distinct
//! patient of that count).
//!
//! Deciding that as contributions arrive needs a lookup per contribution into tables of
//! every patient seen, which at 10 million rows are hundreds of megabytes: random memory
//! accesses took most of a run's time. So contributions are kept in arrival order, split
//! into partitions by patient, and settled after the pass one partition at a time, with
//! tables of that partition's patients only, which stay in the cache. A patient's
//! contributions all land in one partition in the order they arrived, so the bounds drop
//! exactly the contributions they would have dropped on arrival.

use rustc_hash::FxHashMap;

/// Partitions by the top bits of a mixed patient key: at 10 million contributions, a
/// partition's tables are a few megabytes.
const PARTITION_BITS: u32 = 8;

/// Contributions per chunk of a partition: chunks, not a growing vector, so that memory is
/// what is kept (20 bytes a contribution, plus at most one partial chunk a partition)
/// rather than up to twice that while vectors double.
const CHUNK: usize = 4096;

/// Contributions kept for settling, in arrival order: each one's patient key, slot (`cell *
/// measures + measure`) and the record key of its row, in three columns.
struct Chunk {
    patients: Box<[u64]>,
    slots: Box<[u32]>,
    records: Box<[u64]>,
}

impl Chunk {
    fn new() -> Chunk {
        Chunk {
            patients: vec![0; CHUNK].into_boxed_slice(),
            slots: vec![0; CHUNK].into_boxed_slice(),
            records: vec![0; CHUNK].into_boxed_slice(),
        }
    }
}

#[derive(Default)]
struct Partition {
    chunks: Vec<Chunk>,
    /// Contributions in the last chunk.
    last: usize,
}

impl Partition {
    fn push(&mut self, patient: u64, slot: u32, record: u64) {
        if self.chunks.is_empty() || self.last == CHUNK {
            self.chunks.push(Chunk::new());
            self.last = 0;
        }
        let chunk = self.chunks.last_mut().expect("a chunk was just ensured");
        chunk.patients[self.last] = patient;
        chunk.slots[self.last] = slot;
        chunk.records[self.last] = record;
        self.last += 1;
    }

    /// The contributions in arrival order.
    fn iter(&self) -> impl Iterator<Item = (u64, u32, u64)> + '_ {
        let count = self.chunks.len();
        self.chunks.iter().enumerate().flat_map(move |(i, c)| {
            let len = if i + 1 == count { self.last } else { CHUNK };
            (0..len).map(move |j| (c.patients[j], c.slots[j], c.records[j]))
        })
    }
}

/// A counted contribution, handed to the counter when settling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counted {
    pub slot: u32,
    pub patient: u64,
    pub record: u64,
    /// The patient's first contribution to this slot.
    pub first: bool,
}

/// Contributions waiting to be settled.
pub struct Pending {
    partitions: Vec<Partition>,
    len: usize,
}

impl Default for Pending {
    fn default() -> Self {
        Pending {
            partitions: (0..1 << PARTITION_BITS)
                .map(|_| Partition::default())
                .collect(),
            len: 0,
        }
    }
}

/// A patient's bounds: contributions per slot, and slots.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    pub per_slot: u8,
    pub slots: u16,
}

impl Pending {
    pub fn push(&mut self, patient: u64, slot: u32, record: u64) {
        // Patient keys are HMAC prefixes, but the fallback for odd pseudonyms is a plain
        // hash: mixing spreads both over the partitions.
        let partition =
            (patient.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - PARTITION_BITS)) as usize;
        self.partitions[partition].push(patient, slot, record);
        self.len += 1;
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Settles every pending contribution under `bounds`, handing each one that counts to
    /// `count`; returns how many were dropped. Leaves nothing pending.
    pub fn settle(&mut self, bounds: Bounds, mut count: impl FnMut(Counted)) -> u64 {
        let mut dropped = 0;
        // What each patient of the partition added to each slot, and how many slots it
        // opened; reused from one partition to the next.
        let mut added: FxHashMap<(u64, u32), u8> = FxHashMap::default();
        let mut opened: FxHashMap<u64, u16> = FxHashMap::default();
        for partition in &mut self.partitions {
            let p = std::mem::take(partition);
            added.clear();
            opened.clear();
            for (patient, slot, record) in p.iter() {
                let first = match added.get_mut(&(patient, slot)) {
                    Some(n) if *n >= bounds.per_slot => None,
                    Some(n) => {
                        *n += 1;
                        Some(false)
                    }
                    None => {
                        let slots = opened.entry(patient).or_insert(0);
                        match *slots >= bounds.slots {
                            true => None,
                            false => {
                                *slots += 1;
                                added.insert((patient, slot), 1);
                                Some(true)
                            }
                        }
                    }
                };
                match first {
                    None => dropped += 1,
                    Some(first) => count(Counted {
                        slot,
                        patient,
                        record,
                        first,
                    }),
                }
            }
        }
        self.len = 0;
        dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settled(pending: &mut Pending, bounds: Bounds) -> (Vec<Counted>, u64) {
        let mut counted = Vec::new();
        let dropped = pending.settle(bounds, |c| counted.push(c));
        counted.sort_by_key(|c| (c.patient, c.record));
        (counted, dropped)
    }

    #[test]
    fn a_patients_contributions_beyond_its_bounds_are_dropped_in_arrival_order() {
        let mut pending = Pending::default();
        // Patient 7: three to slot 1 (bound 2), then a third slot (bound 2 slots).
        for (record, slot) in [(1, 1), (2, 1), (3, 2), (4, 1), (5, 3)] {
            pending.push(7, slot, record);
        }
        pending.push(8, 1, 6);
        let bounds = Bounds {
            per_slot: 2,
            slots: 2,
        };
        let (counted, dropped) = settled(&mut pending, bounds);
        let kept: Vec<(u64, u32, bool)> = counted
            .iter()
            .map(|c| (c.record, c.slot, c.first))
            .collect();
        assert_eq!(
            kept,
            [(1, 1, true), (2, 1, false), (3, 2, true), (6, 1, true)]
        );
        assert_eq!(dropped, 2);
        assert!(pending.is_empty());
    }

    #[test]
    fn contributions_across_chunks_keep_their_arrival_order() {
        let mut pending = Pending::default();
        let n = 2 * CHUNK as u64 + 7;
        for record in 0..n {
            pending.push(7, (record % 3) as u32, record);
        }
        let bounds = Bounds {
            per_slot: 200,
            slots: 3,
        };
        let (counted, dropped) = settled(&mut pending, bounds);
        assert_eq!(dropped, n - 600);
        let records: Vec<u64> = counted.iter().map(|c| c.record).collect();
        assert_eq!(
            records,
            (0..600).collect::<Vec<u64>>(),
            "the first 200 of each slot"
        );
    }

    #[test]
    fn patients_spread_over_partitions_are_settled_apart() {
        let mut pending = Pending::default();
        for patient in 0..10_000u64 {
            pending.push(patient << 40 | patient, 0, patient);
            pending.push(patient << 40 | patient, 0, patient + 1_000_000);
        }
        let used = pending
            .partitions
            .iter()
            .filter(|p| !p.chunks.is_empty())
            .count();
        assert_eq!(used, 1 << PARTITION_BITS);
        let bounds = Bounds {
            per_slot: 1,
            slots: 10,
        };
        let (counted, dropped) = settled(&mut pending, bounds);
        assert_eq!(counted.len(), 10_000);
        assert!(counted.iter().all(|c| c.first && c.record < 1_000_000));
        assert_eq!(dropped, 10_000);
    }
}
