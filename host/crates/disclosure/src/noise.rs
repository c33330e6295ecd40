//! Cell-key perturbation: noise drawn from a cell's key, so that the same records always
//! get the same noise.
//!
//! Every consultation carries a random 64-bit record key from ingestion, and every
//! patient a key the host derives from their pseudonym; neither is ever released or
//! handed to a study. A count's *cell key* is the wrapping sum of the keys of what it
//! counts (record keys for consultations, patient keys for distinct patients). The noise
//! of a count is a function of its cell key and the count alone: running a query again,
//! or averaging many runs, gives back the same noisy value, while two cells that differ
//! by a single record have unrelated keys and so independent noise.
//!
//! The noise is discrete Laplace (a two-sided geometric distribution) of scale `b`:
//! `P(N = k) = (1 − p) / (1 + p) · p^|k|` with `p = exp(−1/b)`. Its support is every
//! integer, which is what a differential-privacy guarantee needs (bounded noise cannot
//! give one): between two counts that differ by `Δ`, the probability of any noisy value
//! changes by a factor of at most `exp(Δ / b)`. It is drawn as the difference of two
//! geometric variables, each by inversion of a uniform taken from the cell key.

/// The name of this perturbation, kept with every release so that an auditor can say
/// which protection a released number had. Change it whenever the draw changes.
pub const PERTURBATION_VERSION: &str = "carrel-cellkey-dlaplace-1";

/// A 64-bit mix (splitmix64's finaliser): neighbouring inputs give unrelated outputs.
pub fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A uniform value in the open interval (0, 1) from 64 random bits (53 of them used).
fn open_unit(bits: u64) -> f64 {
    ((bits >> 11) as f64 + 0.5) / (1u64 << 53) as f64
}

/// A geometric draw on {0, 1, 2, …} with `P(G ≥ k) = p^k`, by inversion.
fn geometric(bits: u64, ln_p: f64) -> i64 {
    let draw = (open_unit(bits).ln() / ln_p).floor();
    // Beyond 2^40 the noise is astronomically unlikely (p^(2^40)); clamp so the
    // conversion cannot overflow.
    draw.min((1u64 << 40) as f64) as i64
}

/// The noise of a count `count` with cell key `cell_key`, at scale `scale`. 0 when the
/// scale is 0 (perturbation off).
pub fn noise(scale: f64, cell_key: u64, count: u64) -> i64 {
    if scale <= 0.0 {
        return 0;
    }
    let ln_p = -1.0 / scale;
    // The count takes part, as in a perturbation table indexed by (cell key, count):
    // the same key with another count draws anew.
    let first = mix64(cell_key ^ mix64(count));
    let second = mix64(first ^ 0x6a09_e667_f3bc_c908);
    geometric(first, ln_p) - geometric(second, ln_p)
}

/// The perturbed value of `count`: `count + noise`, never below 0. A zero stays zero:
/// an empty cell has no records to draw a key from, and is never shown as a number.
pub fn perturb(scale: f64, cell_key: u64, count: u64) -> u64 {
    if count == 0 {
        return 0;
    }
    let noisy = count as i128 + i128::from(noise(scale, cell_key, count));
    noisy.clamp(0, i128::from(u64::MAX)) as u64
}

/// `P(N ≥ k)` for the discrete Laplace noise of `scale`, for `k ≥ 1`: the chance that
/// noise lifts a count by at least `k`.
pub fn tail(scale: f64, k: u64) -> f64 {
    if scale <= 0.0 {
        return 0.0;
    }
    let p = (-1.0 / scale).exp();
    p.powf(k as f64) / (1.0 + p)
}

/// The standard deviation of the noise of `scale`: `sqrt(2p) / (1 − p)`.
pub fn standard_deviation(scale: f64) -> f64 {
    if scale <= 0.0 {
        return 0.0;
    }
    let p = (-1.0 / scale).exp();
    (2.0 * p).sqrt() / (1.0 - p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_cell_key_and_count_always_draw_the_same_noise() {
        for key in [0u64, 1, 42, u64::MAX] {
            assert_eq!(noise(2.0, key, 17), noise(2.0, key, 17));
        }
        let draws: std::collections::BTreeSet<i64> =
            (0..200u64).map(|k| noise(2.0, mix64(k), 50)).collect();
        assert!(draws.len() > 5, "{draws:?}");
    }

    #[test]
    fn noise_follows_the_discrete_laplace_distribution() {
        // p = exp(-1/2): P(N = 0) = (1 - p) / (1 + p) = 0.2449, Var = 2p / (1 - p)^2.
        let scale = 2.0;
        let p: f64 = (-0.5f64).exp();
        let n = 200_000u64;
        let draws: Vec<i64> = (0..n)
            .map(|i| noise(scale, mix64(i * 7 + 3), 100))
            .collect();
        let mean = draws.iter().sum::<i64>() as f64 / n as f64;
        let variance = draws
            .iter()
            .map(|&d| (d as f64 - mean).powi(2))
            .sum::<f64>()
            / n as f64;
        let zeros = draws.iter().filter(|&&d| d == 0).count() as f64 / n as f64;
        let at_least_3 = draws.iter().filter(|&&d| d >= 3).count() as f64 / n as f64;
        assert!(mean.abs() < 0.03, "mean {mean}");
        let expected_variance = 2.0 * p / (1.0 - p).powi(2);
        assert!(
            (variance / expected_variance - 1.0).abs() < 0.03,
            "{variance}"
        );
        assert!((zeros - (1.0 - p) / (1.0 + p)).abs() < 0.005, "{zeros}");
        assert!((at_least_3 - tail(scale, 3)).abs() < 0.005, "{at_least_3}");
        assert!((standard_deviation(scale) - expected_variance.sqrt()).abs() < 1e-12);
    }

    #[test]
    fn a_zero_stays_zero_and_no_perturbed_count_is_negative() {
        for key in 0..10_000u64 {
            assert_eq!(perturb(3.0, mix64(key), 0), 0);
            let _ = perturb(3.0, mix64(key), 1); // u64: never negative, clamped at 0.
        }
        let lowered = (0..10_000u64)
            .filter(|&k| perturb(3.0, mix64(k), 1) == 0)
            .count();
        assert!(lowered > 0, "noise below -1 clamps to zero");
    }

    #[test]
    fn scale_zero_turns_perturbation_off() {
        assert_eq!(perturb(0.0, 12345, 17), 17);
        assert_eq!(tail(0.0, 1), 0.0);
    }

    #[test]
    fn hand_checked_tails_of_the_noise() {
        // scale 1: p = e^-1 = 0.367879; P(N >= 1) = p / (1 + p) = 0.268941.
        assert!((tail(1.0, 1) - 0.268_941).abs() < 1e-6);
        // P(N >= 7) = p^7 / (1 + p) = 0.000666.
        assert!((tail(1.0, 7) - 0.000_666_5).abs() < 1e-6);
    }
}
