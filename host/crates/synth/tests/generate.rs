//! The generated files, read back by the warehouse's own FHIR reader.

use std::collections::BTreeMap;
use std::path::Path;

use carrel_fhir::date::days_since_epoch;
use carrel_fhir::{IdentifiedConsultation, parse_bundle, parse_ndjson, validate_nir};
use carrel_synth::{GroundTruth, SynthFormat, SynthOptions, generate};

fn options(consultations: u64, seed: u64) -> SynthOptions {
    SynthOptions {
        consultations,
        seed,
        ..SynthOptions::default()
    }
}

fn run(options: &SynthOptions, dir: &Path) -> GroundTruth {
    let mut last = 0;
    let truth = generate(options, dir, &mut |done| last = done).expect("generated");
    assert_eq!(last, options.consultations);
    truth
}

fn read(dir: &Path, files: &[String], format: SynthFormat) -> Vec<IdentifiedConsultation> {
    let mut all = Vec::new();
    for name in files {
        let body = std::fs::read(dir.join(name)).expect("readable");
        let ingested = match format {
            SynthFormat::Ndjson => parse_ndjson(&body),
            SynthFormat::Bundle => parse_bundle(&body),
        };
        match ingested {
            Ok(ingested) => all.extend(ingested.consultations),
            Err(refusal) => panic!("{name} refused: {:?}", &refusal.problems[..1]),
        }
    }
    all
}

fn ymd(text: &str) -> (i32, u32, u32) {
    let part = |range: std::ops::Range<usize>| text[range].parse::<u32>().expect("digits");
    (part(0..4) as i32, part(5..7), part(8..10))
}

/// The ISO week of a date, from the Thursday of its week.
fn week_of(date: (i32, u32, u32)) -> String {
    let day = days_since_epoch(date.0 as u16, date.1 as u8, date.2 as u8);
    let monday_based = (day + 3).rem_euclid(7);
    let thursday = day - monday_based + 3;
    let mut year = date.0 + 1;
    while days_since_epoch(year as u16, 1, 1) > thursday {
        year -= 1;
    }
    let week = (thursday - days_since_epoch(year as u16, 1, 1)) / 7 + 1;
    format!("{year}-W{week:02}")
}

fn age_class(birth: (i32, u32, u32), on: (i32, u32, u32)) -> &'static str {
    let mut age = on.0 - birth.0;
    if (on.1, on.2) < (birth.1, birth.2) {
        age -= 1;
    }
    match age {
        ..=1 => "<2",
        2..=14 => "2-14",
        15..=74 => "15-74",
        _ => "75+",
    }
}

fn count(map: &mut BTreeMap<String, u64>, key: &str) {
    *map.entry(key.to_owned()).or_default() += 1;
}

#[test]
fn ndjson_output_is_accepted_whole_and_matches_its_ground_truth() {
    let dir = tempfile::tempdir().expect("temp dir");
    let truth = run(&options(2_000, 11), dir.path());
    assert_eq!(truth.files, ["consultations-0001.ndjson"]);
    let consultations = read(dir.path(), &truth.files, SynthFormat::Ndjson);
    assert_eq!(consultations.len(), 2_000);
    assert_eq!(truth.consultations, 2_000);

    let (mut by_code, mut by_age, mut by_week, mut by_visit, mut by_hour) = Default::default();
    let mut without = 0;
    for consultation in &consultations {
        let start = ymd(&consultation.start);
        let birth = ymd(consultation
            .patient
            .birth_date
            .as_deref()
            .expect("birth date"));
        count(&mut by_age, age_class(birth, start));
        count(&mut by_week, &week_of(start));
        count(&mut by_hour, &consultation.start[11..13]);
        let visit = match consultation.class_code.as_deref() {
            Some("HH") => "home",
            Some("AMB") => "centre",
            Some("VR") => "tele",
            other => panic!("class {other:?}"),
        };
        count(&mut by_visit, visit);
        if consultation.diagnoses.is_empty() {
            without += 1;
        }
        for diagnosis in &consultation.diagnoses {
            assert_eq!(
                diagnosis.system.as_deref(),
                Some("http://hl7.org/fhir/sid/icd-10")
            );
            count(&mut by_code, &diagnosis.code);
        }
    }
    assert_eq!(truth.by_code, by_code);
    assert_eq!(truth.by_age_class, by_age);
    assert_eq!(truth.by_week, by_week);
    assert_eq!(truth.by_visit_type, by_visit);
    assert_eq!(truth.by_hour, by_hour);
    assert_eq!(truth.without_diagnosis, without);
    assert_eq!(truth.by_association.values().sum::<u64>(), 2_000);

    let written: GroundTruth =
        serde_json::from_slice(&std::fs::read(dir.path().join("ground-truth.json")).unwrap())
            .expect("ground truth");
    assert_eq!(written, truth);
}

#[test]
fn bundles_hold_at_most_five_thousand_encounters_and_are_each_accepted() {
    let dir = tempfile::tempdir().expect("temp dir");
    let options = SynthOptions {
        format: SynthFormat::Bundle,
        ..options(6_000, 3)
    };
    let truth = run(&options, dir.path());
    assert_eq!(truth.files, ["bundle-0001.json", "bundle-0002.json"]);
    let first = read(dir.path(), &truth.files[..1], SynthFormat::Bundle);
    let second = read(dir.path(), &truth.files[1..], SynthFormat::Bundle);
    assert_eq!((first.len(), second.len()), (5_000, 1_000));
}

#[test]
fn the_same_seed_gives_the_same_bytes_and_another_seed_does_not() {
    let [a, b, c] = [(); 3].map(|_| tempfile::tempdir().expect("temp dir"));
    run(&options(1_500, 42), a.path());
    run(&options(1_500, 42), b.path());
    run(&options(1_500, 43), c.path());
    for name in ["consultations-0001.ndjson", "ground-truth.json"] {
        let bytes = |dir: &tempfile::TempDir| std::fs::read(dir.path().join(name)).unwrap();
        assert!(bytes(&a) == bytes(&b), "{name} differs for one seed");
        assert!(bytes(&a) != bytes(&c), "{name} is the same for two seeds");
    }
}

#[test]
fn every_nir_checks_and_agrees_with_sex_and_birth_date() {
    let dir = tempfile::tempdir().expect("temp dir");
    let truth = run(&options(2_000, 5), dir.path());
    for consultation in read(dir.path(), &truth.files, SynthFormat::Ndjson) {
        let patient = consultation.patient;
        let nir = patient.nir.expect("a NIR");
        validate_nir(&nir).expect("a NIR that checks");
        let sex = if patient.sex.as_deref() == Some("female") {
            "2"
        } else {
            "1"
        };
        let birth = patient.birth_date.expect("birth date");
        assert_eq!(&nir[..1], sex, "{nir}");
        assert_eq!(&nir[1..3], &birth[2..4], "{nir} {birth}");
        assert_eq!(&nir[3..5], &birth[5..7], "{nir} {birth}");
        let postcode = patient.postcode.expect("a French postcode");
        assert_eq!(postcode.len(), 5);
    }
}

#[test]
fn faulty_records_are_set_apart_and_refused_by_the_reader() {
    let dir = tempfile::tempdir().expect("temp dir");
    let options = SynthOptions {
        faults: 0.1,
        ..options(2_000, 9)
    };
    let truth = run(&options, dir.path());
    assert!(truth.faulty > 100 && truth.faulty < 300, "{}", truth.faulty);
    assert_eq!(truth.consultations + truth.faulty, 2_000);
    assert_eq!(truth.faulty_by_kind.len(), 3);
    assert_eq!(
        read(dir.path(), &truth.files, SynthFormat::Ndjson).len() as u64,
        truth.consultations
    );
    assert_eq!(truth.faulty_files, ["faulty-0001.ndjson"]);
    let body = std::fs::read(dir.path().join("faulty-0001.ndjson")).unwrap();
    let refusal = parse_ndjson(&body).expect_err("faulty records refused");
    let located = |words: &str| refusal.problems.iter().any(|p| p.message.contains(words));
    assert!(located("NIR does not check"), "{:?}", refusal.problems);
    assert!(located("points at no Patient"), "{:?}", refusal.problems);
    // Each faulty record alone is refused too.
    for line in body
        .split(|&b| b == b'\n')
        .filter(|l| l.starts_with(b"{\"resourceType\":\"Encounter\""))
    {
        let id = std::str::from_utf8(line).unwrap();
        let id = &id[id.find("\"id\":\"e-").unwrap() + 8..];
        let id = &id[..id.find('"').unwrap()];
        let own: Vec<u8> = body
            .split(|&b| b == b'\n')
            .filter(|l| {
                let text = std::str::from_utf8(l).unwrap();
                text.contains(&format!("\"p-{id}\""))
                    || text.contains(&format!("\"e-{id}\""))
                    || text.contains(&format!("\"c-{id}\""))
            })
            .flat_map(|l| l.iter().copied().chain(std::iter::once(b'\n')))
            .collect();
        assert!(
            parse_ndjson(&own).is_err(),
            "accepted: {}",
            String::from_utf8_lossy(&own)
        );
    }
}

#[test]
fn winter_weeks_have_a_higher_influenza_share_than_summer_weeks() {
    let dir = tempfile::tempdir().expect("temp dir");
    let truth = run(&options(4_000, 21), dir.path());
    let share = |weeks: std::ops::RangeInclusive<u32>| {
        let weeks: Vec<String> = weeks.map(|w| format!("2024-W{w:02}")).collect();
        let sum =
            |map: &BTreeMap<String, u64>| -> u64 { weeks.iter().filter_map(|w| map.get(w)).sum() };
        sum(&truth.ili_by_week) as f64 / sum(&truth.coded_by_week) as f64
    };
    let (winter, summer) = (share(1..=6), share(27..=32));
    assert!(winter > 3.0 * summer, "winter {winter}, summer {summer}");
    assert!(
        truth
            .ili_by_week
            .keys()
            .all(|week| truth.by_week.contains_key(week))
    );
}

#[test]
fn visits_ages_and_hours_look_like_out_of_hours_care() {
    let dir = tempfile::tempdir().expect("temp dir");
    let truth = run(&options(4_000, 8), dir.path());
    let share = |map: &BTreeMap<String, u64>, keys: &[&str]| {
        keys.iter().filter_map(|k| map.get(*k)).sum::<u64>() as f64 / 4_000.0
    };
    let home = share(&truth.by_visit_type, &["home"]);
    let tele = share(&truth.by_visit_type, &["tele"]);
    assert!((0.25..0.35).contains(&home), "home visits {home}");
    assert!((0.03..0.08).contains(&tele), "tele {tele}");
    let children = share(&truth.by_age_class, &["<2", "2-14"]);
    let oldest = share(&truth.by_age_class, &["75+"]);
    assert!(
        children > 0.3 && oldest > 0.07,
        "children {children}, 75+ {oldest}"
    );
    let out_of_hours = [
        "19", "20", "21", "22", "23", "00", "01", "02", "03", "04", "05", "06", "07",
    ];
    let night = share(&truth.by_hour, &out_of_hours);
    assert!(night > 0.6, "evening and night share {night}");
    let without = truth.without_diagnosis as f64 / 4_000.0;
    assert!((0.12..0.18).contains(&without), "no diagnosis {without}");
    assert_eq!(truth.by_association.len(), carrel_synth::ASSOCIATIONS.len());
}

#[test]
fn re_consultations_and_referrals_follow_the_stated_models() {
    let dir = tempfile::tempdir().unwrap();
    let truth = run(&options(30_000, 11), dir.path());
    let n = truth.consultations as f64;
    let models = &truth.models;
    // Binomial sampling error, less what the last week's follow-ups lose past the end.
    for (count, rate) in [
        (truth.reconsult_72h, models.reconsult_72h_rate),
        (truth.reconsult_7d, models.reconsult_7d_rate),
    ] {
        let share = count as f64 / n;
        let error = 4.0 * (rate * (1.0 - rate) / n).sqrt();
        assert!(
            share > rate - error - 0.005 && share < rate + error,
            "{share} against {rate}"
        );
    }
    let referral = &models.referral;
    assert_eq!(referral.coefficients["visit_type=home"], 0.6);
    let auroc = referral.auroc.unwrap();
    assert!((0.6..0.85).contains(&auroc), "{auroc}");
    assert_eq!(
        truth.by_outcome.get("other-hcf").copied().unwrap_or(0),
        referral.referrals
    );
    // The truth says what a reader of the file needs, and not the per-consultation scores.
    let written = std::fs::read_to_string(dir.path().join("ground-truth.json")).unwrap();
    assert!(
        written.contains("\"reconsult_72h_rate\": 0.06"),
        "{written}"
    );
    assert!(!written.contains("referral_scores"));
}
