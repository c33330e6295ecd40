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

use super::slot_counts::{Counted, SlotCounts};
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

    /// Contribution `i` in arrival order: patient, record, and the slot in each tally.
    fn get(&self, i: usize, width: usize) -> (u64, u64, &[u32]) {
        let (chunk, j) = (&self.chunks[i / CHUNK], i % CHUNK);
        (
            chunk.patients[j],
            chunk.records[j],
            &chunk.slots[j * width..(j + 1) * width],
        )
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

    /// Settles every pending contribution under `bounds`, in each tally apart, on every
    /// core: the partitions are shared out between threads, each counts the
    /// contributions that count into its own [`SlotCounts`] per tally (tally `t` has
    /// `slots[t]` slots), and those are added up. Returns each tally's counts and how many
    /// contributions were dropped.
    pub fn settle_counts(&mut self, bounds: Bounds, slots: &[usize]) -> (Vec<SlotCounts>, u64) {
        assert_eq!(slots.len(), self.width, "one slot count per tally");
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let per_thread = self.partitions.len().div_ceil(threads);
        let width = self.width;
        let settled: Vec<(Vec<SlotCounts>, u64)> = std::thread::scope(|scope| {
            let threads: Vec<_> = self
                .partitions
                .chunks_mut(per_thread)
                .map(|partitions| {
                    scope.spawn(move || {
                        let mut counts: Vec<SlotCounts> =
                            slots.iter().map(|&n| SlotCounts::new(n)).collect();
                        let dropped =
                            settle_partitions(partitions, width, bounds, |t, c| counts[t].count(c));
                        (counts, dropped)
                    })
                })
                .collect();
            threads
                .into_iter()
                .map(|t| {
                    t.join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                })
                .collect()
        });
        self.len = 0;
        let mut total: Vec<SlotCounts> = slots.iter().map(|&n| SlotCounts::new(n)).collect();
        let mut dropped = 0;
        for (counts, d) in settled {
            for (t, c) in total.iter_mut().zip(&counts) {
                t.add(c);
            }
            dropped += d;
        }
        (total, dropped)
    }
}

/// Settles the contributions of `partitions` (each `width` tallies wide) under `bounds`,
/// in each tally apart, handing each one that counts to `count` with its tally; returns
/// how many were dropped (in all tallies). Leaves the partitions empty.
///
/// Within a partition, contributions are grouped by patient (a counting sort that keeps
/// each patient's arrival order) and each patient's are settled together: one lookup per
/// contribution finds its patient, and the patient's slots are a short list, where a
/// lookup per tally into tables of every patient cost twice as much. The order in which
/// `count` sees contributions is not arrival order; counts and cell keys are sums, so it
/// does not matter.
fn settle_partitions(
    partitions: &mut [Partition],
    width: usize,
    bounds: Bounds,
    mut count: impl FnMut(usize, Counted),
) -> u64 {
    let mut dropped = 0;
    // Reused from one partition to the next.
    let mut ids: FxHashMap<u64, u32> = FxHashMap::default();
    let mut patient_of: Vec<u32> = Vec::new();
    let mut starts: Vec<u32> = Vec::new();
    let mut order: Vec<u32> = Vec::new();
    let mut seen = PatientSlots::new(width);
    for partition in partitions {
        let p = std::mem::take(partition);
        ids.clear();
        patient_of.clear();
        for (patient, _, _) in p.iter(width) {
            let next = ids.len() as u32;
            patient_of.push(*ids.entry(patient).or_insert(next));
        }
        group_by_patient(&patient_of, ids.len(), &mut starts, &mut order);
        for range in starts.windows(2) {
            seen.clear();
            for &i in &order[range[0] as usize..range[1] as usize] {
                let (patient, record, slots) = p.get(i as usize, width);
                for (tally, &slot) in slots.iter().enumerate() {
                    match seen.add(tally, slot, bounds) {
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
    }
    dropped
}

/// Orders contribution indexes by patient, keeping arrival order within each patient:
/// patient `id`'s contributions are `order[starts[id]..starts[id + 1]]`.
fn group_by_patient(
    patient_of: &[u32],
    patients: usize,
    starts: &mut Vec<u32>,
    order: &mut Vec<u32>,
) {
    starts.clear();
    starts.resize(patients + 1, 0);
    for &id in patient_of {
        starts[id as usize + 1] += 1;
    }
    for id in 0..patients {
        starts[id + 1] += starts[id];
    }
    order.clear();
    order.resize(patient_of.len(), 0);
    let mut next: Vec<u32> = starts[..patients].to_vec();
    for (i, &id) in patient_of.iter().enumerate() {
        order[next[id as usize] as usize] = i as u32;
        next[id as usize] += 1;
    }
}

/// One patient's slots while its contributions are settled: in each tally, the slots it
/// opened (in order) with what it added to each.
struct PatientSlots {
    tallies: Vec<TallySlots>,
}

#[derive(Default)]
struct TallySlots {
    /// (slot, contributions counted there), one per slot opened.
    added: Vec<(u32, u8)>,
    /// Past [`SCANNED_SLOTS`] slots, where each is in `added`: a patient that opens many
    /// slots is not scanned for each contribution.
    index: FxHashMap<u32, usize>,
}

/// Slots scanned before a patient's slots in a tally are indexed.
const SCANNED_SLOTS: usize = 32;

impl PatientSlots {
    fn new(width: usize) -> PatientSlots {
        PatientSlots {
            tallies: (0..width).map(|_| TallySlots::default()).collect(),
        }
    }

    fn clear(&mut self) {
        for tally in &mut self.tallies {
            tally.added.clear();
            if !tally.index.is_empty() {
                tally.index = FxHashMap::default();
            }
        }
    }

    /// Whether a contribution to `slot` of `tally` counts (`None` past the bounds), and
    /// whether it is the patient's first there.
    fn add(&mut self, tally: usize, slot: u32, bounds: Bounds) -> Option<bool> {
        let t = &mut self.tallies[tally];
        let found = match t.added.len() > SCANNED_SLOTS {
            true => t.index.get(&slot).copied(),
            false => t.added.iter().position(|&(s, _)| s == slot),
        };
        match found {
            Some(i) if t.added[i].1 >= bounds.per_slot => None,
            Some(i) => {
                t.added[i].1 += 1;
                Some(false)
            }
            None if t.added.len() >= usize::from(bounds.slots) => None,
            None => {
                t.added.push((slot, 1));
                let len = t.added.len();
                if len == SCANNED_SLOTS + 1 {
                    t.index = t
                        .added
                        .iter()
                        .enumerate()
                        .map(|(i, &(s, _))| (s, i))
                        .collect();
                } else if len > SCANNED_SLOTS + 1 {
                    t.index.insert(slot, len - 1);
                }
                Some(true)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Settles on one thread, handing each counted contribution to `count`.
    fn settled_in_order(
        pending: &mut Pending,
        bounds: Bounds,
        count: impl FnMut(usize, Counted),
    ) -> u64 {
        let dropped = settle_partitions(&mut pending.partitions, pending.width, bounds, count);
        pending.len = 0;
        dropped
    }

    fn settled(pending: &mut Pending, bounds: Bounds) -> (Vec<Counted>, u64) {
        let mut counted = Vec::new();
        let dropped = settled_in_order(pending, bounds, |_, c| counted.push(c));
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

    /// The bounds as the definition states them: contributions in arrival order, each
    /// tally apart, one table of every patient's slots.
    fn settled_one_by_one(
        all: &[(u64, u64, Vec<u32>)],
        bounds: Bounds,
    ) -> (Vec<(usize, Counted)>, u64) {
        use std::collections::HashMap;
        let mut added: HashMap<(u64, usize, u32), u8> = HashMap::new();
        let mut opened: HashMap<(u64, usize), u16> = HashMap::new();
        let (mut counted, mut dropped) = (Vec::new(), 0);
        for (patient, record, slots) in all {
            for (tally, &slot) in slots.iter().enumerate() {
                let n = added.entry((*patient, tally, slot)).or_insert(0);
                let open = opened.entry((*patient, tally)).or_insert(0);
                let counts = match *n {
                    0 => *open < bounds.slots,
                    n => n < bounds.per_slot,
                };
                if !counts {
                    dropped += 1;
                    continue;
                }
                if *n == 0 {
                    *open += 1;
                }
                *n += 1;
                let c = Counted {
                    slot,
                    patient: *patient,
                    record: *record,
                    first: *n == 1,
                };
                counted.push((tally, c));
            }
        }
        counted.sort_by_key(|&(t, c)| (t, c.patient, c.record));
        (counted, dropped)
    }

    #[test]
    fn settling_by_patient_drops_what_settling_in_arrival_order_drops() {
        // Few patients with many rows (past the slots a patient's list scans), three
        // tallies, slots drawn from a fixed sequence.
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut draw = |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % n
        };
        let all: Vec<(u64, u64, Vec<u32>)> = (0..20_000u64)
            .map(|record| {
                let patient = draw(40).wrapping_mul(0x9E37_79B9_7F4A_7C15);
                let slots = vec![draw(3) as u32, draw(60) as u32, draw(400) as u32];
                (patient, record, slots)
            })
            .collect();
        let bounds = Bounds {
            per_slot: 3,
            slots: 50,
        };
        let mut pending = Pending::new(3);
        for (patient, record, slots) in &all {
            pending.push(*patient, *record, slots);
        }
        let mut counted = Vec::new();
        let dropped = settled_in_order(&mut pending, bounds, |t, c| counted.push((t, c)));
        counted.sort_by_key(|&(t, c)| (t, c.patient, c.record));
        let (expected, expected_dropped) = settled_one_by_one(&all, bounds);
        assert_eq!(dropped, expected_dropped);
        assert!(dropped > 0 && !counted.is_empty());
        assert_eq!(counted, expected);

        // The same settled on every core, each thread counting apart.
        let slots = [3, 60, 400];
        let mut pending = Pending::new(3);
        for (patient, record, s) in &all {
            pending.push(*patient, *record, s);
        }
        let (counts, dropped) = pending.settle_counts(bounds, &slots);
        assert_eq!(dropped, expected_dropped);
        let mut one_by_one: Vec<SlotCounts> = slots.iter().map(|&n| SlotCounts::new(n)).collect();
        for (t, c) in expected {
            one_by_one[t].count(c);
        }
        for (settled, expected) in counts.iter().zip(&one_by_one) {
            assert_eq!(settled.consultations, expected.consultations);
            assert_eq!(settled.patients, expected.patients);
            assert_eq!(settled.consultation_keys, expected.consultation_keys);
            assert_eq!(settled.patient_keys, expected.patient_keys);
        }
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
