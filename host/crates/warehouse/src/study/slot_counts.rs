//! What a tally counts per slot once its contributions are settled, kept apart from the
//! tally so that settling threads each count into their own and add up at the end.

use carrel_disclosure::noise::mix64;

/// A counted contribution, handed to the counter when settling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counted {
    pub slot: u32,
    pub patient: u64,
    pub record: u64,
    /// The patient's first contribution to this slot.
    pub first: bool,
}

/// Consultations, distinct patients and their cell keys per slot of a tally
/// (`cell * measures + measure`).
#[derive(Debug, Clone, Default)]
pub struct SlotCounts {
    pub consultations: Vec<u64>,
    pub patients: Vec<u64>,
    /// Wrapping sums of the record keys of the consultations counted, and of the patient
    /// keys of the patients counted.
    pub consultation_keys: Vec<u64>,
    pub patient_keys: Vec<u64>,
}

impl SlotCounts {
    /// Counts of `slots` slots, all zero.
    pub fn new(slots: usize) -> SlotCounts {
        let mut counts = SlotCounts::default();
        counts.resize(slots);
        counts
    }

    pub fn resize(&mut self, slots: usize) {
        self.consultations.resize(slots, 0);
        self.patients.resize(slots, 0);
        self.consultation_keys.resize(slots, 0);
        self.patient_keys.resize(slots, 0);
    }

    pub fn slots(&self) -> usize {
        self.consultations.len()
    }

    /// Counts a contribution its patient's bounds allowed: each patient's first
    /// contribution to a slot is a distinct patient there.
    pub fn count(&mut self, c: Counted) {
        let slot = c.slot as usize;
        if c.first {
            self.patients[slot] += 1;
            self.patient_keys[slot] =
                self.patient_keys[slot].wrapping_add(patient_cell_key(c.patient));
        }
        self.consultations[slot] += 1;
        self.consultation_keys[slot] = self.consultation_keys[slot].wrapping_add(c.record);
    }

    /// Adds counts made apart (by another settling thread) of the same slots.
    pub fn add(&mut self, other: &SlotCounts) {
        let sum = |mine: &mut Vec<u64>, theirs: &[u64], add: fn(u64, u64) -> u64| {
            for (m, t) in mine.iter_mut().zip(theirs) {
                *m = add(*m, *t);
            }
        };
        sum(&mut self.consultations, &other.consultations, |a, b| a + b);
        sum(&mut self.patients, &other.patients, |a, b| a + b);
        sum(
            &mut self.consultation_keys,
            &other.consultation_keys,
            u64::wrapping_add,
        );
        sum(
            &mut self.patient_keys,
            &other.patient_keys,
            u64::wrapping_add,
        );
    }
}

/// A patient's share of the cell keys of the patient counts it is in: its key mixed, so
/// that patient keys (prefixes of HMACs) and cell keys never coincide.
fn patient_cell_key(patient_key: u64) -> u64 {
    mix64(patient_key ^ 0x243f_6a88_85a3_08d3)
}
