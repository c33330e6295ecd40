//! Drawing one consultation: who, where, when, what for, and how it ended.

use crate::calendar::{civil, day_number, is_holiday, weekday};
use crate::consultation::{Consultation, Dice, Visit};
use crate::places::{
    ASSOCIATIONS, BACKGROUND_CODES, BRONCHIOLITIS_CODE, FAMILY_NAMES, FEMALE_GIVEN_NAMES,
    GASTRO_CODES, ILI_CODES, MALE_GIVEN_NAMES,
};

/// Relative volume of a day: weekends and holidays are busier, winter too.
pub fn day_weight(day: i64) -> f64 {
    let calendar = if is_holiday(day) || weekday(day) == 6 {
        2.6
    } else if weekday(day) == 5 {
        2.0
    } else {
        1.0
    };
    calendar * (1.0 + 0.35 * winter(day, 15, 60.0))
}

/// A seasonal bump in `[0, 1]`: 1 on `peak` (day of year), falling off over `width` days.
fn winter(day: i64, peak: i64, width: f64) -> f64 {
    let (year, _, _) = civil(day);
    let day_of_year = day - day_number(year, 1, 1);
    let distance = (day_of_year - peak).rem_euclid(365);
    let distance = distance.min(365 - distance) as f64;
    (-(distance * distance) / (2.0 * width * width)).exp()
}

/// Out-of-hours hours: evenings and nights heavy, weekday daytime light (GPs' surgeries
/// are open), weekend daytime busy.
const WEEKDAY_HOURS: [u32; 24] = [
    6, 5, 4, 3, 3, 3, 3, 4, 2, 1, 1, 1, 1, 1, 1, 1, 1, 2, 3, 8, 10, 10, 9, 7,
];
const WEEKEND_HOURS: [u32; 24] = [
    6, 5, 4, 3, 3, 3, 3, 4, 6, 8, 9, 9, 8, 7, 7, 7, 7, 8, 8, 9, 10, 9, 8, 7,
];

/// Age in years drawn from out-of-hours care's mix: many children, many adults, some
/// very old.
fn draw_age(dice: &mut Dice) -> i64 {
    match dice.weighted(&[14, 24, 50, 12]) {
        0 => dice.below(2) as i64,
        1 => 2 + dice.below(13) as i64,
        2 => 15 + dice.below(60) as i64,
        _ => 75 + dice.below(25) as i64,
    }
}

/// The 15-character NIR: sex, birth year and month, département and commune of birth,
/// order number, then the key (97 − number mod 97, Corsica counted as 19/18).
pub fn nir(female: bool, birth: i64, departement: &str, commune: u32, order: u32) -> String {
    let (year, month, _) = civil(birth);
    let place = if departement.len() == 3 {
        format!("{departement}{:02}", commune % 100)
    } else {
        format!("{departement}{:03}", commune % 1000)
    };
    let sex = if female { 2 } else { 1 };
    let body = format!("{sex}{:02}{month:02}{place}{:03}", year % 100, order % 1000);
    let numeric = body.replace("2A", "19").replace("2B", "18");
    // Only digits remain: the replacement covers the two Corsican codes.
    let number: u64 = numeric.parse().unwrap_or(0);
    format!("{body}{:02}", 97 - number % 97)
}

const CHILD_WEIGHTS: [u32; BACKGROUND_CODES.len()] = background_weights(true);
const ADULT_WEIGHTS: [u32; BACKGROUND_CODES.len()] = background_weights(false);

const fn background_weights(child: bool) -> [u32; BACKGROUND_CODES.len()] {
    let mut weights = [0; BACKGROUND_CODES.len()];
    let mut index = 0;
    while index < weights.len() {
        let (_, for_children, for_adults) = BACKGROUND_CODES[index];
        weights[index] = if child { for_children } else { for_adults };
        index += 1;
    }
    weights
}

fn diagnosis(dice: &mut Dice, day: i64, age: i64) -> Option<&'static str> {
    if dice.chance(0.15) {
        return None;
    }
    let ili = 0.02 + 0.22 * winter(day, 25, 25.0);
    let gastro = 0.03 + 0.12 * winter(day, 365, 22.0);
    let bronchiolitis = if age < 2 {
        0.03 + 0.40 * winter(day, 340, 22.0)
    } else {
        0.0
    };
    let draw = dice.unit();
    if draw < bronchiolitis {
        Some(BRONCHIOLITIS_CODE)
    } else if draw < bronchiolitis + ili {
        Some(dice.pick(&ILI_CODES))
    } else if draw < bronchiolitis + ili + gastro {
        Some(dice.pick(&GASTRO_CODES))
    } else {
        let weights = if age < 15 {
            CHILD_WEIGHTS
        } else {
            ADULT_WEIGHTS
        };
        Some(BACKGROUND_CODES[dice.weighted(&weights)].0)
    }
}

/// Draws a consultation on a given day.
pub fn consultation(dice: &mut Dice, day: i64, association_weights: &[u32]) -> Consultation {
    let association = &ASSOCIATIONS[dice.weighted(association_weights)];
    let weekend = weekday(day) >= 5 || is_holiday(day);
    let hour = dice.weighted(if weekend {
        &WEEKEND_HOURS
    } else {
        &WEEKDAY_HOURS
    }) as u32;
    let minute = dice.below(60) as u32;
    let age = draw_age(dice);
    let birth = day - age * 365 - age / 4 - dice.below(365) as i64;
    let female = dice.chance(0.52);
    let given = if female {
        dice.pick(&FEMALE_GIVEN_NAMES)
    } else {
        dice.pick(&MALE_GIVEN_NAMES)
    };
    let commune = 1 + dice.below(400) as u32;
    let order = 1 + dice.below(999) as u32;
    let nir = nir(female, birth, association.departement, commune, order);
    let phone = format!(
        "0{} {:02} {:02} {:02} {:02}",
        dice.pick(&[6u64, 7, 1, 2, 3, 4, 5]),
        dice.below(100),
        dice.below(100),
        dice.below(100),
        dice.below(100)
    );
    let visit = match dice.weighted(&[30, 65, 5]) {
        0 => Visit::Home,
        1 => Visit::Centre,
        _ => Visit::Tele,
    };
    let diagnosis = diagnosis(dice, day, age);
    let years = age_at(birth, day);
    let referral = crate::pathways::referral_probability(years, visit, diagnosis, female);
    let outcome = crate::pathways::outcome(dice, referral, years);
    Consultation {
        association,
        day,
        hour,
        minute,
        female,
        birth,
        nir,
        family: dice.pick(&FAMILY_NAMES),
        given,
        phone,
        visit,
        diagnosis,
        outcome,
        referral,
    }
}

/// Age in whole years at `day` of someone born on `birth` (day numbers).
fn age_at(birth: i64, day: i64) -> i64 {
    i64::from(crate::truth::age_in_years(
        crate::calendar::civil(birth),
        crate::calendar::civil(day),
    ))
}

/// The same patient seen again on `day` at `hour`: same identity and association, a new
/// visit, diagnosis and outcome.
pub fn follow_up(dice: &mut Dice, first: &Consultation, day: i64, hour: u32) -> Consultation {
    let visit = match dice.weighted(&[30, 65, 5]) {
        0 => Visit::Home,
        1 => Visit::Centre,
        _ => Visit::Tele,
    };
    let years = age_at(first.birth, day);
    let diagnosis = diagnosis(dice, day, years);
    let referral = crate::pathways::referral_probability(years, visit, diagnosis, first.female);
    Consultation {
        day,
        hour,
        minute: dice.below(60) as u32,
        visit,
        diagnosis,
        outcome: crate::pathways::outcome(dice, referral, years),
        referral,
        phone: first.phone.clone(),
        nir: first.nir.clone(),
        ..*first
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nir_carries_sex_birth_month_and_a_checking_key() {
        let birth = day_number(1984, 12, 7);
        assert_eq!(nir(true, birth, "76", 451, 89), "284127645108993");
        let corsican = nir(false, day_number(1950, 3, 2), "2A", 4, 12);
        assert!(corsican.starts_with("150032A004012"), "{corsican}");
        let overseas = nir(true, day_number(2001, 5, 9), "974", 11, 7);
        assert!(overseas.starts_with("2010597411007"), "{overseas}");
    }

    #[test]
    fn weighted_draws_never_pick_a_zero_weight() {
        let mut dice = Dice::new(7);
        for _ in 0..1000 {
            assert_ne!(dice.weighted(&[3, 0, 5]), 1);
        }
    }
}
