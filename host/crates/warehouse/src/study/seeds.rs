//! The seed of each group's random numbers, handed to the study with the group
//! (`consultations.seeds`). A study that draws random numbers (to sample, shuffle or
//! break ties) must still be a function of one patient: the patient-locality check hands
//! sampled patients again among other neighbours and compares. A generator seeded once
//! per instance gives a re-run patient other numbers, so the SDKs reseed before each group
//! with the seed the host hands for it.
//!
//! The seed is SipHash-2-4, under a key of the host's (from its pseudonymisation secret,
//! the study and the parameters the study is handed), of the group's patient key, the
//! date of its first row and its row count. So:
//! - a group handed again gets the same seed, whatever its neighbours;
//! - a run repeated with the same parameters draws the same numbers, and gives the same
//!   output (the host's cell noise, keyed by the records counted, stays the same too);
//! - the seed tells the study nothing of the patient's pseudonym, and seeds of two
//!   studies cannot be joined (their keys differ);
//! - a study of unit `consultation` gets a seed per patient and day.

use crate::capabilities::keyed_hash::PseudonymSecret;
use arrow_array::RecordBatch;
use arrow_array::cast::AsArray;
use arrow_array::types::Date32Type;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use siphasher::sip::SipHasher24;
use std::hash::Hasher;

use super::row_keys::patient_key;

/// The key of one study's seeds under one set of parameters.
#[derive(Clone)]
pub struct GroupSeeds {
    k0: u64,
    k1: u64,
}

impl GroupSeeds {
    /// The key of `study`'s seeds when it is handed `params` (the declared parameters of
    /// the run, as the study sees them).
    pub fn new(secret: &PseudonymSecret, study: &str, params: &[(String, String)]) -> Self {
        Self::from_key(&secret.domain_key(&format!("study-random:{study}")), params)
    }

    /// The key of a study's seeds from the study's own key.
    fn from_key(key: &[u8; 32], params: &[(String, String)]) -> Self {
        let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
        for (name, value) in params {
            for part in [name, value] {
                mac.update(&(part.len() as u64).to_le_bytes());
                mac.update(part.as_bytes());
            }
        }
        let bytes = mac.finalize().into_bytes();
        Self {
            k0: u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")),
            k1: u64::from_le_bytes(bytes[8..16].try_into().expect("8 bytes")),
        }
    }

    /// A key for unit tests of what uses seeds.
    #[cfg(test)]
    pub fn for_tests() -> Self {
        Self { k0: 1, k1: 2 }
    }

    /// The seed of each group of `batch` (group `g` holds rows `groups[g]..groups[g + 1]`),
    /// from the host's `patient_id` and `date` columns.
    pub fn of_groups(&self, batch: &RecordBatch, groups: &[u32]) -> Result<Vec<u64>, String> {
        let patients = batch
            .column_by_name("patient_id")
            .and_then(|c| c.as_string_opt::<i32>())
            .ok_or("the host read no patient_id")?;
        let dates = batch
            .column_by_name("date")
            .and_then(|c| c.as_primitive_opt::<Date32Type>())
            .ok_or("the host read no date")?;
        Ok(groups
            .windows(2)
            .map(|window| {
                let (start, end) = (window[0] as usize, window[1]);
                let mut hasher = SipHasher24::new_with_keys(self.k0, self.k1);
                hasher.write_u64(patient_key(patients.value(start)));
                hasher.write_i32(dates.value(start));
                hasher.write_u32(end - window[0]);
                hasher.finish()
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::study::reading::tests::rows;

    /// A study's seeds, its key standing for the host's key of `study`.
    fn seeds(study: &str, params: &[(&str, &str)]) -> GroupSeeds {
        let mut key = [0u8; 32];
        key[..study.len()].copy_from_slice(study.as_bytes());
        let params: Vec<(String, String)> = params
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        GroupSeeds::from_key(&key, &params)
    }

    const A: &str = "00000000000000aa";
    const B: &str = "00000000000000bb";

    #[test]
    fn a_group_gets_the_same_seed_whatever_its_neighbours() {
        let key = seeds("s", &[]);
        let main = key
            .of_groups(&rows(&[A, A, B, A], &[1, 1, 1, 9]), &[0, 2, 3, 4])
            .unwrap();
        let again = key
            .of_groups(&rows(&[B, A, A], &[1, 1, 1]), &[0, 1, 3])
            .unwrap();
        assert_eq!(main[0], again[1], "patient A's two rows of day 1");
        assert_eq!(main[1], again[0], "patient B");
        assert_ne!(main[0], main[2], "A on another day, with one row");
        assert_ne!(main[0], main[1]);
    }

    #[test]
    fn seeds_differ_between_studies_and_parameters() {
        let batch = rows(&[A], &[1]);
        let of = |key: GroupSeeds| key.of_groups(&batch, &[0, 1]).unwrap()[0];
        let base = of(seeds("s", &[("op", "x")]));
        assert_eq!(base, of(seeds("s", &[("op", "x")])));
        assert_ne!(base, of(seeds("t", &[("op", "x")])));
        assert_ne!(base, of(seeds("s", &[("op", "y")])));
    }
}
