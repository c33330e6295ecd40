//! Data for `host/benches/study.sh`: N canonical consultation rows, written into a fresh
//! warehouse (encrypted, in 200,000-row segments, as ingestion would leave them) and, for
//! the reference engine, the same rows as one Arrow IPC stream file. The rows come from a
//! small deterministic generator (winter epidemics of J11/A09/J21 over a background of
//! other codes, 8% uncoded) rather than from FHIR, so that 10 million rows take seconds:
//! what is measured is reading them, not making them.
//!
//! For care-pathway studies (`reconsult`), about one consultation in ten is the return of
//! the patient of a first consultation 0 to 8 days before it (mostly 0 to 3; one return
//! per first consultation), so that about 6% of consultations are followed by another
//! within 72 hours and 8% within 7 days; outcomes are mostly `home`, with hospital
//! referrals more frequent at 75 and over. Both come from a second generator, so every
//! other column (and so the ILI indicator's consultation counts) is what it was: only
//! the returns' `patient_id` and every row's `outcome` differ.
//!
//!   study_data N STATE_DIR ROWS.arrow

use arrow_array::builder::{Date32Builder, ListBuilder, StringBuilder, UInt8Builder};
use arrow_array::{ArrayRef, RecordBatch};
use carrel_vault::{MasterKeyEnv, Vault};
use std::sync::Arc;

const BATCH: usize = 200_000;
/// 2023-07-01, in days since 1970-01-01.
const FIRST_DAY: i32 = 19_539;
const DEPARTEMENTS: [&str; 16] = [
    "75", "69", "13", "33", "35", "59", "67", "31", "44", "06", "2A", "2B", "971", "974", "29",
    "56",
];
const BACKGROUND: [&str; 8] = ["J06", "R50", "N39", "H66", "J02", "R10", "S61", "L03"];

/// xorshift64*: deterministic and fast; quality is beside the point here.
struct Dice(u64);

impl Dice {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
}

/// Returns and outcomes, from their own dice so that the main sequence is untouched.
struct Pathways {
    dice: Dice,
    /// The patient of the last first consultation (not a return) generated on each day,
    /// by day of the 730, until a return takes it.
    first_visit: Vec<Option<u64>>,
}

impl Pathways {
    fn new() -> Pathways {
        Pathways {
            dice: Dice(0xD1B5_4A32_D192_ED03),
            first_visit: vec![None; 730],
        }
    }

    /// The patient of a consultation on `day`, randomly drawn as `drawn`: with
    /// probability 0.1, the patient of a first consultation 0 to 8 days earlier (mostly
    /// 0 to 3) that has no return yet; otherwise `drawn`, and the consultation is a
    /// first one.
    fn patient(&mut self, day: i32, drawn: u64) -> u64 {
        if self.dice.chance(0.1) {
            let back = match self.dice.below(20) {
                0..=4 => 0,
                5..=9 => 1,
                10..=12 => 2,
                13..=14 => 3,
                n => n - 11, // 4 to 8, 8 being beyond 7 days
            } as i32;
            // Each first consultation has at most one return, so that no patient piles
            // up consultations in one week (ili-weekly bounds a patient to 3 per cell).
            if let Some(patient) = usize::try_from(day - back)
                .ok()
                .and_then(|d| self.first_visit.get_mut(d))
                .and_then(Option::take)
            {
                return patient;
            }
        }
        self.first_visit[day as usize] = Some(drawn);
        drawn
    }

    fn outcome(&mut self, years: u8) -> &'static str {
        let hospital = if years >= 75 { 0.12 } else { 0.04 };
        let draw = (self.dice.next() >> 11) as f64 / (1u64 << 53) as f64;
        if draw < hospital {
            "hospital"
        } else if draw < hospital + 0.02 {
            "unknown"
        } else if draw < hospital + 0.0205 {
            "deceased"
        } else {
            "home"
        }
    }
}

fn batch(dice: &mut Dice, pathways: &mut Pathways, first: usize, rows: usize) -> RecordBatch {
    let mut consultation = StringBuilder::new();
    let mut patient = StringBuilder::new();
    let mut association = StringBuilder::new();
    let mut date = Date32Builder::new();
    let mut hour = UInt8Builder::new();
    let mut age = UInt8Builder::new();
    let mut sex = StringBuilder::new();
    let mut departement = StringBuilder::new();
    let mut visit = StringBuilder::new();
    let mut diagnoses =
        ListBuilder::new(StringBuilder::new()).with_field(carrel_pseudonym::diagnosis_item_field());
    let mut outcome = StringBuilder::new();
    for i in first..first + rows {
        let day = dice.below(730) as i32;
        // Day of the season since 1 July: winter is roughly days 120 to 240.
        let winter = (120..240).contains(&(day % 365));
        let years = match dice.below(10) {
            0 => dice.below(2),
            1..=2 => 2 + dice.below(13),
            3..=8 => 15 + dice.below(60),
            _ => 75 + dice.below(25),
        } as u8;
        consultation.append_value(format!("{i:016x}"));
        let drawn = dice.below(3_000_000);
        patient.append_value(format!("{:016x}", pathways.patient(day, drawn)));
        association.append_value(format!("sos-{:02}", dice.below(60)));
        date.append_value(FIRST_DAY + day);
        hour.append_value(dice.below(24) as u8);
        age.append_value(years.min(90));
        sex.append_value(if dice.chance(0.5) { "F" } else { "M" });
        departement.append_value(DEPARTEMENTS[dice.below(16) as usize]);
        visit.append_value(["home", "centre", "tele"][dice.below(3) as usize]);
        if !dice.chance(0.08) {
            let code = if dice.chance(if winter { 0.20 } else { 0.03 }) {
                "J11"
            } else if dice.chance(if winter { 0.10 } else { 0.05 }) {
                "A09"
            } else if years < 2 && dice.chance(if winter { 0.3 } else { 0.02 }) {
                "J21"
            } else {
                BACKGROUND[dice.below(8) as usize]
            };
            diagnoses.values().append_value(code);
        }
        diagnoses.append(true);
        outcome.append_value(pathways.outcome(years));
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(consultation.finish()),
        Arc::new(patient.finish()),
        Arc::new(association.finish()),
        Arc::new(date.finish()),
        Arc::new(hour.finish()),
        Arc::new(age.finish()),
        Arc::new(sex.finish()),
        Arc::new(departement.finish()),
        Arc::new(visit.finish()),
        Arc::new(diagnoses.finish()),
        Arc::new(outcome.finish()),
    ];
    RecordBatch::try_new(carrel_pseudonym::canonical_schema(), columns).expect("canonical rows")
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    anyhow::ensure!(args.len() == 3, "usage: study_data N STATE_DIR ROWS.arrow");
    let n: usize = args[0].parse()?;
    let state = std::path::Path::new(&args[1]);
    carrel_vault::init_master_key(state, &MasterKeyEnv::unset(), "bench")?;
    let vault = Vault::open(state, &MasterKeyEnv::unset())?;
    carrel_warehouse::ingest::ensure_canonical_dataset(&vault, "consultations", "bench")?;
    let file = std::io::BufWriter::new(std::fs::File::create(&args[2])?);
    let mut ipc =
        arrow_ipc::writer::StreamWriter::try_new(file, &carrel_pseudonym::canonical_schema())?;
    let mut dice = Dice(0x9E37_79B9_7F4A_7C15);
    let mut pathways = Pathways::new();
    let mut written = 0;
    while written < n {
        let rows = BATCH.min(n - written);
        let batch = batch(&mut dice, &mut pathways, written, rows);
        vault.append(
            "consultations",
            &carrel_warehouse::ingest::record_keys::with_record_keys(&batch)?,
            "bench",
        )?;
        ipc.write(&batch)?;
        written += rows;
    }
    ipc.finish()?;
    println!("{written}");
    Ok(())
}
