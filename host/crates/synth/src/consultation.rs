//! What the generator draws with and what it draws: a seeded random source, and one
//! consultation (who, where, when, what for, how it ended) before it is written as FHIR.

use chacha20::ChaCha8Rng;
use chacha20::rand_core::{Rng, SeedableRng};

use crate::places::Association;

/// A seeded random source with the few draws the generator needs.
pub struct Dice(ChaCha8Rng);

impl Dice {
    pub fn new(seed: u64) -> Dice {
        Dice(ChaCha8Rng::seed_from_u64(seed))
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.0.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.0.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn chance(&mut self, probability: f64) -> bool {
        self.unit() < probability
    }

    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }

    /// An index drawn with the given weights (not all zero).
    pub fn weighted(&mut self, weights: &[u32]) -> usize {
        let total: u64 = weights.iter().map(|&w| u64::from(w)).sum();
        let mut target = self.below(total);
        for (index, &weight) in weights.iter().enumerate() {
            if target < u64::from(weight) {
                return index;
            }
            target -= u64::from(weight);
        }
        weights.len() - 1
    }
}

/// Visit type, as FHIR Encounter.class codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visit {
    Home,
    Centre,
    Tele,
}

impl Visit {
    pub fn class_code(self) -> &'static str {
        match self {
            Visit::Home => "HH",
            Visit::Centre => "AMB",
            Visit::Tele => "VR",
        }
    }

    /// The warehouse's name for it.
    pub fn name(self) -> &'static str {
        match self {
            Visit::Home => "home",
            Visit::Centre => "centre",
            Visit::Tele => "tele",
        }
    }
}

/// How the consultation ended, as a FHIR discharge-disposition code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Home,
    Hospital,
    Deceased,
}

impl Outcome {
    pub fn code(self) -> &'static str {
        match self {
            Outcome::Home => "home",
            Outcome::Hospital => "other-hcf",
            Outcome::Deceased => "exp",
        }
    }
}

/// One generated consultation, before it is written as FHIR.
#[derive(Debug, Clone)]
pub struct Consultation {
    pub association: &'static Association,
    /// Day number of the start (local date).
    pub day: i64,
    pub hour: u32,
    pub minute: u32,
    pub female: bool,
    /// Day number of the birth date.
    pub birth: i64,
    pub nir: String,
    pub family: &'static str,
    pub given: &'static str,
    pub phone: String,
    pub visit: Visit,
    pub diagnosis: Option<&'static str>,
    pub outcome: Outcome,
    /// The probability of a hospital referral the stated model gave it.
    pub referral: f64,
}
