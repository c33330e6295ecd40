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
//!
//! One contribution can count in several tallies at once (a model evaluation counts
//! each row overall and in each subgroup): it is kept once, with its patient and record
//! keys, and one slot per tally.

use rustc_hash::FxHashMap;

/// Partitions by the top bits of a mixed patient key: at 10 million contributions, a
/// partition's tables are a few megabytes.
const PARTITION_BITS: u32 = 8;

/// Contributions per chunk of a partition: chunks, not a growing vector, so that memory is
/// what is kept (16 bytes a contribution and 4 a slot, plus at most one partial chunk a
/// partition) rather than up to twice that while vectors double.
const CHUNK: usize = 4096;

/// Contributions kept for settling, in arrival order: each one's patient key, the record
/// key of its row, and its slot (`cell * measures + measure`) in each tally, in columns.
struct Chunk {
    patients: Box<[u64]>,
    records: Box<[u64]>,
    /// `width` slots per contribution.
    slots: Box<[u32]>,
}

impl Chunk {
    fn new(width: usize) -> Chunk {
        Chunk {
            patients: vec![0; CHUNK].into_boxed_slice(),
            records: vec![0; CHUNK].into_boxed_slice(),
            slots: vec![0; CHUNK * width].into_boxed_slice(),
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
    fn push(&mut self, patient: u64, record: u64, slots: &[u32]) {
        if self.chunks.is_empty() || self.last == CHUNK {
            self.chunks.push(Chunk::new(slots.len()));
            self.last = 0;
        }
        let chunk = self.chunks.last_mut().expect("a chunk was just ensured");
        chunk.patients[self.last] = patient;
        chunk.records[self.last] = record;
        let width = slots.len();
        chunk.slots[self.last * width..(self.last + 1) * width].copy_from_slice(slots);
        self.last += 1;
    }

    /// The contributions in arrival order: patient, record, and the slot in each tally.
    fn iter(&self, width: usize) -> impl Iterator<Item = (u64, u64, &[u32])> + '_ {
        let count = self.chunks.len();
        self.chunks.iter().enumerate().flat_map(move |(i, c)| {
            let len = if i + 1 == count { self.last } else { CHUNK };
            (0..len).map(move |j| {
                (
                    c.patients[j],
                    c.records[j],
                    &c.slots[j * width..(j + 1) * width],
                )
            })
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

/// Contributions waiting to be settled, each with a slot in each of `width` tallies.
pub struct Pending {
    partitions: Vec<Partition>,
    width: usize,
    len: usize,
}

/// A patient's bounds: contributions per slot, and slots.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    pub per_slot: u8,
    pub slots: u16,
}

impl Pending {
    /// Contributions that count in `width` tallies.
    pub fn new(width: usize) -> Pending {
        Pending {
            partitions: (0..1 << PARTITION_BITS)
                .map(|_| Partition::default())
                .collect(),
            width,
            len: 0,
        }
    }

    /// Keeps a contribution of `patient`'s row with record key `record`, in slot
    /// `slots[t]` of tally `t`.
    pub fn push(&mut self, patient: u64, record: u64, slots: &[u32]) {
        assert_eq!(slots.len(), self.width, "one slot per tally");
        // Patient keys are HMAC prefixes, but the fallback for odd pseudonyms is a plain
        // hash: mixing spreads both over the partitions.
        let partition =
            (patient.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - PARTITION_BITS)) as usize;
        self.partitions[partition].push(patient, record, slots);
        self.len += 1;
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Settles every pending contribution under `bounds`, in each tally apart, handing
    /// each one that counts to `count` with its tally; returns how many were dropped (in
    /// all tallies). Leaves nothing pending.
    pub fn settle(&mut self, bounds: Bounds, mut count: impl FnMut(usize, Counted)) -> u64 {
        let mut dropped = 0;
        // What each patient of the partition added to each tally's slot, and how many
        // slots of each tally it opened; reused from one partition to the next.
        let mut added: FxHashMap<(u64, u64), u8> = FxHashMap::default();
        let mut opened: FxHashMap<(u64, u32), u16> = FxHashMap::default();
        let width = self.width;
        for partition in &mut self.partitions {
            let p = std::mem::take(partition);
            added.clear();
            opened.clear();
            for (patient, record, slots) in p.iter(width) {
                for (tally, &slot) in slots.iter().enumerate() {
                    let at = (tally as u64) << 32 | u64::from(slot);
                    let first = match added.get_mut(&(patient, at)) {
                        Some(n) if *n >= bounds.per_slot => None,
                        Some(n) => {
                            *n += 1;
                            Some(false)
                        }
                        None => {
                            let slots = opened.entry((patient, tally as u32)).or_insert(0);
                            match *slots >= bounds.slots {
                                true => None,
                                false => {
                                    *slots += 1;
                                    added.insert((patient, at), 1);
                                    Some(true)
                                }
                            }
                        }
                    };
                    match first {
                        None => dropped += 1,
                        Some(first) => count(
                            tally,
                            Counted {
                                slot,
                                patient,
                                record,
                                first,
                            },
                        ),
                    }
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
        let dropped = pending.settle(bounds, |_, c| counted.push(c));
        counted.sort_by_key(|c| (c.patient, c.record));
        (counted, dropped)
    }

    #[test]
    fn a_patients_contributions_beyond_its_bounds_are_dropped_in_arrival_order() {
        let mut pending = Pending::new(1);
        // Patient 7: three to slot 1 (bound 2), then a third slot (bound 2 slots).
        for (record, slot) in [(1, 1), (2, 1), (3, 2), (4, 1), (5, 3)] {
            pending.push(7, record, &[slot]);
        }
        pending.push(8, 6, &[1]);
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
        let mut pending = Pending::new(1);
        let n = 2 * CHUNK as u64 + 7;
        for record in 0..n {
            pending.push(7, record, &[(record % 3) as u32]);
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
        let mut pending = Pending::new(1);
        for patient in 0..10_000u64 {
            pending.push(patient << 40 | patient, patient, &[0]);
            pending.push(patient << 40 | patient, patient + 1_000_000, &[0]);
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
