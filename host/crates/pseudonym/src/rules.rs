//! From identified values to the coarse ones stored: each rule of the canonical schema.

use std::borrow::Cow;

use carrel_fhir::date::{FhirDate, days_in_month, parse_date};
use carrel_fhir::{Coding, is_icd10_system};
use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// Ages from this one up are stored as this one: very old ages are rare enough to
/// single people out.
pub const AGE_TOP_CODE: u8 = 90;

/// Letters that Unicode does not decompose into a base letter and marks.
fn unaccented(letter: char) -> Option<&'static str> {
    Some(match letter {
        'œ' | 'Œ' => "OE",
        'æ' | 'Æ' => "AE",
        'ø' | 'Ø' => "O",
        'đ' | 'Đ' | 'ð' | 'Ð' => "D",
        'ł' | 'Ł' => "L",
        'þ' | 'Þ' => "TH",
        'ı' => "I",
        _ => return None,
    })
}

/// A name as compared across sources: upper-case, accents removed (`é`→`E`, `ç`→`C`,
/// `œ`→`OE`, `ß`→`SS`), and every run of non-letters (spaces, hyphens, apostrophes,
/// digits) made one space, trimmed: `Lefèvre-D'Arc` and `LEFEVRE D ARC` are one name.
pub fn normalise_name(name: &str) -> String {
    let mut normalised = String::with_capacity(name.len());
    let mut gap = false;
    let mut push = |letter: char, normalised: &mut String| {
        if letter.is_alphabetic() {
            if gap && !normalised.is_empty() {
                normalised.push(' ');
            }
            gap = false;
            normalised.push(letter);
        } else {
            gap = true;
        }
    };
    // NFKD also splits ligatures such as `ﬁ` into their letters.
    for character in name.nfkd().filter(|c| !is_combining_mark(*c)) {
        match unaccented(character) {
            Some(letters) => letters.chars().for_each(|l| push(l, &mut normalised)),
            None => character
                .to_uppercase()
                .for_each(|l| push(l, &mut normalised)),
        }
    }
    normalised
}

/// `F`, `M` or `U` from FHIR administrative gender.
pub fn sex_code(gender: Option<&str>) -> &'static str {
    match gender.map(str::trim) {
        Some("female") => "F",
        Some("male") => "M",
        _ => "U",
    }
}

/// The INSEE département of a French postcode: its first two digits, `2A`/`2B` for
/// Corsica (200xx–201xx, 202xx and 206xx), three digits overseas (971–976). Anything
/// else gives none: postcodes of other countries, Monaco and the overseas collectivities
/// (977–988), and numbers that no département has (00, 96, other 20xxx).
pub fn departement(postcode: &str) -> Option<&str> {
    let postcode = postcode.trim();
    let digits = postcode.as_bytes();
    if digits.len() != 5 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    match (&postcode[..2], digits[2]) {
        ("20", b'0' | b'1') => Some("2A"),
        ("20", b'2' | b'6') => Some("2B"),
        ("20", _) => None,
        ("97", b'1'..=b'6') => Some(&postcode[..3]),
        ("00" | "96" | "97" | "98" | "99", _) => None,
        (two, _) => Some(two),
    }
}

/// `home` (FHIR Encounter.class HH), `centre` (AMB), `tele` (VR), else `other`.
pub fn visit_type(class_code: Option<&str>) -> &'static str {
    match class_code.map(str::trim) {
        Some("HH") => "home",
        Some("AMB") => "centre",
        Some("VR") => "tele",
        _ => "other",
    }
}

/// `home`, `hospital`, `deceased` or `unknown` from a discharge disposition code, read
/// in three vocabularies:
///
/// | outcome | FHIR discharge-disposition | NUBC (US claims, Synthea) | French |
/// | --- | --- | --- | --- |
/// | home | `home`, `alt-home` | `01`, `06` (home, home health), `50` (hospice at home) | `domicile` |
/// | hospital | `hosp`, `other-hcf`, `snf`, `rehab`, `long`, `psy` | `02`–`05`, `43`, `51`, `61`–`66`, `70` | `hospitalisation` |
/// | deceased | `exp` | `20`, `40`–`42` | `deces` |
///
/// Everything else (`aadvice`, `oth`, `07` left against advice, no disposition) is
/// `unknown`. Codes are compared case-insensitively, NUBC ones with or without their
/// leading zero.
pub fn outcome(disposition: Option<&Coding>) -> &'static str {
    let Some(coding) = disposition else {
        return "unknown";
    };
    let code = coding.code.trim().to_ascii_lowercase();
    let code = match code.strip_prefix('0') {
        Some(rest) if !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit()) => rest,
        _ => code.as_str(),
    };
    match code {
        "home" | "alt-home" | "1" | "6" | "50" | "domicile" => "home",
        "hosp" | "other-hcf" | "snf" | "rehab" | "long" | "psy" | "2" | "3" | "4" | "5" | "43"
        | "51" | "61" | "62" | "63" | "64" | "65" | "66" | "70" | "hospitalisation" => "hospital",
        "exp" | "deceased" | "20" | "40" | "41" | "42" | "deces" | "décès" => "deceased",
        _ => "unknown",
    }
}

/// An ICD-10 code as stored: upper-case without dots or spaces (`j11.1` → `J111`), the
/// form French PMSI and CIM-10 exports use, so that codes from every source compare.
/// Any other coding as `system|code` (`|code` when the source named no system).
pub fn diagnosis_code(coding: &Coding) -> Cow<'_, str> {
    let code = coding.code.trim();
    match coding.system.as_deref() {
        Some(system) if is_icd10_system(system) => Cow::Owned(
            code.chars()
                .filter(|c| *c != '.' && !c.is_whitespace())
                .map(|c| c.to_ascii_uppercase())
                .collect(),
        ),
        Some(system) => Cow::Owned(format!("{}|{code}", system.trim())),
        None => Cow::Owned(format!("|{code}")),
    }
}

fn years_between(birth: (u16, u8, u8), on: (u16, u8, u8)) -> i32 {
    let mut years = i32::from(on.0) - i32::from(birth.0);
    if (on.1, on.2) < (birth.1, birth.2) {
        years -= 1;
    }
    years
}

/// Age in whole years on the day of the consultation, top-coded at [`AGE_TOP_CODE`].
/// A partial birth date (`1984` or `1984-12`) gives an age only when every day it
/// allows gives the same one; a birth after the consultation gives none.
pub fn age_years(birth_date: &str, on: (u16, u8, u8)) -> Option<u8> {
    let FhirDate { year, month, day } = parse_date(birth_date.trim()).ok()?;
    let earliest = (year, month.unwrap_or(1), day.unwrap_or(1));
    let latest_month = month.unwrap_or(12);
    let latest = (
        year,
        latest_month,
        day.unwrap_or_else(|| days_in_month(year, latest_month)),
    );
    let oldest = years_between(earliest, on);
    let youngest = years_between(latest, on);
    if youngest < 0 {
        return None;
    }
    let top_code = |age: i32| age.min(i32::from(AGE_TOP_CODE)) as u8;
    (top_code(oldest) == top_code(youngest)).then(|| top_code(youngest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn coding(system: Option<&str>, code: &str) -> Coding {
        Coding {
            system: system.map(str::to_owned),
            code: code.to_owned(),
        }
    }

    #[test]
    fn names_are_upper_cased_without_accents_and_with_one_space_between_words() {
        assert_eq!(normalise_name("Lefèvre-D'Arc"), "LEFEVRE D ARC");
        assert_eq!(normalise_name("  Éloïse "), "ELOISE");
        assert_eq!(normalise_name("François"), "FRANCOIS");
        assert_eq!(normalise_name("Lætitia Cœur"), "LAETITIA COEUR");
        assert_eq!(normalise_name("Weiß"), "WEISS");
        assert_eq!(normalise_name("Medhurst46"), "MEDHURST");
        assert_eq!(normalise_name("Øster\u{fb01}eld"), "OSTERFIELD");
        assert_eq!(normalise_name("123"), "");
    }

    #[test]
    fn sex_is_f_m_or_u() {
        assert_eq!(sex_code(Some("female")), "F");
        assert_eq!(sex_code(Some("male")), "M");
        assert_eq!(sex_code(Some("other")), "U");
        assert_eq!(sex_code(None), "U");
    }

    #[test]
    fn postcodes_give_their_departement() {
        assert_eq!(departement("29200"), Some("29"));
        assert_eq!(departement("01000"), Some("01"));
        assert_eq!(departement(" 75011 "), Some("75"));
        assert_eq!(departement("20090"), Some("2A"));
        assert_eq!(departement("20137"), Some("2A"));
        assert_eq!(departement("20200"), Some("2B"));
        assert_eq!(departement("20600"), Some("2B"));
        assert_eq!(departement("97110"), Some("971"));
        assert_eq!(departement("97600"), Some("976"));
    }

    #[test]
    fn postcodes_that_name_no_departement_give_none() {
        for postcode in [
            "98000",
            "97700",
            "98714",
            "00100",
            "20300",
            "6680",
            "66801-1234",
            "SW1A 1AA",
            "",
        ] {
            assert_eq!(departement(postcode), None, "{postcode}");
        }
    }

    #[test]
    fn visit_types_follow_the_encounter_class() {
        assert_eq!(visit_type(Some("HH")), "home");
        assert_eq!(visit_type(Some("AMB")), "centre");
        assert_eq!(visit_type(Some("VR")), "tele");
        assert_eq!(visit_type(Some("EMER")), "other");
        assert_eq!(visit_type(None), "other");
    }

    #[test]
    fn outcomes_follow_the_discharge_disposition() {
        let nubc = Some("http://www.nubc.org/patient-discharge");
        assert_eq!(outcome(Some(&coding(None, "home"))), "home");
        assert_eq!(outcome(Some(&coding(nubc, "01"))), "home");
        assert_eq!(outcome(Some(&coding(nubc, "1"))), "home");
        assert_eq!(outcome(Some(&coding(None, "hosp"))), "hospital");
        assert_eq!(outcome(Some(&coding(None, "other-hcf"))), "hospital");
        assert_eq!(outcome(Some(&coding(nubc, "02"))), "hospital");
        assert_eq!(outcome(Some(&coding(None, "snf"))), "hospital");
        assert_eq!(outcome(Some(&coding(None, "exp"))), "deceased");
        assert_eq!(outcome(Some(&coding(nubc, "20"))), "deceased");
        assert_eq!(outcome(Some(&coding(None, "aadvice"))), "unknown");
        assert_eq!(outcome(Some(&coding(None, "0"))), "unknown");
        assert_eq!(outcome(None), "unknown");
    }

    #[test]
    fn icd10_codes_are_stored_bare_and_others_with_their_system() {
        let icd = Some("http://hl7.org/fhir/sid/icd-10");
        assert_eq!(diagnosis_code(&coding(icd, "j11.1")), "J111");
        assert_eq!(
            diagnosis_code(&coding(Some("http://hl7.org/fhir/sid/icd-10-fr"), "A09")),
            "A09"
        );
        assert_eq!(
            diagnosis_code(&coding(Some("urn:oid:2.16.840.1.113883.6.3"), "J21.9")),
            "J219"
        );
        assert_eq!(
            diagnosis_code(&coding(Some("http://snomed.info/sct"), "6142004")),
            "http://snomed.info/sct|6142004"
        );
        assert_eq!(diagnosis_code(&coding(None, "grippe")), "|grippe");
    }

    #[test]
    fn age_is_counted_in_whole_years_on_the_consultation_day() {
        assert_eq!(age_years("1984-12-07", (2024, 12, 6)), Some(39));
        assert_eq!(age_years("1984-12-07", (2024, 12, 7)), Some(40));
        assert_eq!(age_years("2020-02-29", (2021, 2, 28)), Some(0));
        assert_eq!(age_years("2020-02-29", (2021, 3, 1)), Some(1));
        assert_eq!(age_years("2024-01-15", (2024, 1, 15)), Some(0));
    }

    #[test]
    fn age_is_top_coded_at_ninety() {
        assert_eq!(age_years("1920-01-01", (2024, 1, 15)), Some(90));
        assert_eq!(age_years("1933-06-01", (2024, 1, 15)), Some(90));
        assert_eq!(age_years("1934-06-01", (2024, 1, 15)), Some(89));
        // A year-only birth 100 years ago is 90 whatever the day.
        assert_eq!(age_years("1924", (2024, 1, 15)), Some(90));
    }

    #[test]
    fn partial_or_impossible_birth_dates_give_an_age_only_when_it_is_certain() {
        assert_eq!(age_years("1984-06", (2024, 12, 1)), Some(40));
        assert_eq!(age_years("1984-12", (2024, 12, 15)), None);
        assert_eq!(age_years("1984", (2024, 6, 1)), None);
        assert_eq!(age_years("1984", (2024, 12, 31)), Some(40));
        assert_eq!(age_years("2025-01-01", (2024, 1, 15)), None);
        assert_eq!(age_years("not a date", (2024, 1, 15)), None);
    }
}
