//! The patient-locality check. A study's contributions for a group (one patient's rows, or
//! one row) must depend on that group alone; otherwise a study could move many unrelated
//! rows between cells when a target patient has a diagnosis, and every cell would still
//! be large. After the main pass the host runs a secret random sample of patients again,
//! in fresh instances, each batch made of sampled groups that were never neighbours in
//! the main pass, and compares what the study said about each of them.
//!
//! With a sample fraction f, a study that makes m groups' contributions depend on
//! something outside them is caught unless none of the m is sampled: with probability
//! 1 - (1 - f)^m. At f = 1/64: m = 20 → 27%, m = 100 → 79%, m = 1000 → 1 - 1.5e-7.

use arrow_array::RecordBatch;
use rand::seq::SliceRandom;
use std::collections::BTreeMap;
use std::sync::Arc;

/// One patient in this many is checked again.
pub const SAMPLE_ONE_IN: u64 = 64;

use super::answers::GroupContribution;

/// Picks patients with a secret drawn per run. A patient key is 64 bits of an HMAC the
/// study never sees, so a keyed mix of it is as unpredictable to the study as a keyed
/// hash, at a fraction of the cost (it runs once per row).
pub struct Sampler {
    k0: u64,
    k1: u64,
}

impl Default for Sampler {
    fn default() -> Self {
        let mut keys = [0u8; 16];
        getrandom::fill(&mut keys).expect("operating system random source");
        Self {
            k0: u64::from_le_bytes(keys[..8].try_into().expect("8 bytes")),
            k1: u64::from_le_bytes(keys[8..].try_into().expect("8 bytes")),
        }
    }
}

impl Sampler {
    pub fn picks(&self, patient: u64) -> bool {
        let mixed = (patient ^ self.k0).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        (mixed.rotate_left(31) ^ self.k1).wrapping_mul(0xBF58_476D_1CE4_E5B9)
            < u64::MAX / SAMPLE_ONE_IN
    }
}

/// A sampled group: its rows, where it was in the main pass, and what the study said.
///
/// The rows stay in the copy of its main-pass batch's sampled rows, shared by the groups
/// sampled there: at one patient in 64, a 10-million-row run keeps about 150,000 groups,
/// and a slice or a pseudonym string of each cost more than the run's counts.
pub struct SampledGroup {
    /// The main-pass batch it was handed in.
    pub batch: usize,
    /// The sampled rows of that batch, with every column the host read.
    pub copy: Arc<RecordBatch>,
    /// Where its rows are in `copy`.
    pub offset: u32,
    pub len: u32,
    /// The main pass's contributions for it, sorted.
    pub expected: Vec<GroupContribution>,
}

impl SampledGroup {
    /// Its rows.
    pub fn rows(&self) -> RecordBatch {
        self.copy.slice(self.offset as usize, self.len as usize)
    }

    /// The stored pseudonyms of a copy's rows, if it has them.
    pub fn pseudonyms(copy: &RecordBatch) -> Option<&arrow_array::StringArray> {
        use arrow_array::cast::AsArray;
        copy.column_by_name("patient_id")?.as_string_opt::<i32>()
    }

    /// The stored pseudonym of its patient, to name it (re-keyed) to the auditor.
    pub fn pseudonym(&self) -> &str {
        Self::pseudonyms(&self.copy)
            .expect("sampled copies are checked to hold patient_id")
            .value(self.offset as usize)
    }
}

/// Groups the samples into check batches of at most `max_rows` rows (and at least one
/// group), no two groups of a batch from the same main-pass batch, in random order.
pub fn check_batches(
    samples: Vec<SampledGroup>,
    max_rows: usize,
    rng: &mut impl rand::Rng,
) -> Vec<Vec<SampledGroup>> {
    let mut buckets: BTreeMap<usize, Vec<SampledGroup>> = BTreeMap::new();
    for sample in samples {
        buckets.entry(sample.batch).or_default().push(sample);
    }
    let mut buckets: Vec<Vec<SampledGroup>> = buckets.into_values().collect();
    for bucket in &mut buckets {
        bucket.shuffle(rng);
    }
    let mut batches = Vec::new();
    loop {
        buckets.retain(|b| !b.is_empty());
        if buckets.is_empty() {
            return batches;
        }
        buckets.shuffle(rng);
        let mut batch = Vec::new();
        let mut rows = 0;
        for bucket in &mut buckets {
            let next = bucket.last().expect("not empty").len as usize;
            if !batch.is_empty() && rows + next > max_rows {
                break;
            }
            rows += next;
            batch.push(bucket.pop().expect("not empty"));
        }
        batches.push(batch);
    }
}

/// What the check found, for the auditor's run record.
#[derive(Debug, Default, serde::Serialize)]
pub struct LocalityReport {
    pub sample_one_in: u64,
    pub groups_checked: u64,
    pub check_instances: u64,
    pub groups_differing: u64,
    /// Study pseudonyms of (at most 20) patients whose contributions differed.
    pub patients_differing: Vec<String>,
    /// Why a check instance gave no answer, if one did not.
    pub check_failure: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::UInt8Array;
    use rand::SeedableRng;
    use std::sync::Arc;

    fn group(batch: usize, rows: usize) -> SampledGroup {
        SampledGroup {
            batch,
            copy: Arc::new(
                RecordBatch::try_from_iter([(
                    "age_years",
                    Arc::new(UInt8Array::from(vec![1u8; rows])) as _,
                )])
                .unwrap(),
            ),
            offset: 0,
            len: rows as u32,
            expected: Vec::new(),
        }
    }

    #[test]
    fn no_check_batch_holds_two_groups_of_one_main_batch() {
        let samples: Vec<SampledGroup> = (0..300).map(|i| group(i % 7, 1 + i % 3)).collect();
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let batches = check_batches(samples, 10, &mut rng);
        assert_eq!(batches.iter().map(Vec::len).sum::<usize>(), 300);
        for batch in &batches {
            let mut origins: Vec<usize> = batch.iter().map(|g| g.batch).collect();
            origins.sort();
            origins.dedup();
            assert_eq!(origins.len(), batch.len());
            let rows: usize = batch.iter().map(|g| g.rows().num_rows()).sum();
            assert!(rows <= 10 || batch.len() == 1);
        }
    }

    #[test]
    fn about_one_patient_in_sixty_four_is_sampled() {
        let sampler = Sampler::default();
        // Patient keys are HMAC bits: spread them as such.
        let picked = (0..640_000u64)
            .filter(|p| sampler.picks(p.wrapping_mul(0xD6E8_FEB8_6659_FD93)))
            .count();
        assert!((9_000..11_000).contains(&picked), "{picked}");
    }
}
