//! Files of consultations: NDJSON or Bundles, a new file every `limit` Encounters, so
//! that each file is a payload of its own.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::SynthFormat;
use crate::fhir::{BASE_URL, Resources};

/// Encounters per NDJSON file and per Bundle. An NDJSON consultation is about 0.9 KB, so a
/// file (about 18 MB) stays under the server's default body limit of 32 MiB and
/// `carrel import` can send it as one payload.
pub const NDJSON_LIMIT: u64 = 20_000;
pub const BUNDLE_LIMIT: u64 = 5_000;

pub struct Sink {
    dir: PathBuf,
    prefix: &'static str,
    format: SynthFormat,
    limit: u64,
    writer: Option<BufWriter<File>>,
    in_file: u64,
    /// Names of the files written, in order.
    pub files: Vec<String>,
}

impl Sink {
    /// A sink writing `<prefix>-0001.ndjson` (or `.json`) and so on into `dir`.
    pub fn new(dir: &Path, prefix: &'static str, format: SynthFormat) -> Sink {
        let limit = match format {
            SynthFormat::Ndjson => NDJSON_LIMIT,
            SynthFormat::Bundle => BUNDLE_LIMIT,
        };
        Sink::with_limit(dir, prefix, format, limit)
    }

    /// A sink starting a new file every `limit` Encounters.
    fn with_limit(dir: &Path, prefix: &'static str, format: SynthFormat, limit: u64) -> Sink {
        Sink {
            dir: dir.to_owned(),
            prefix,
            format,
            limit,
            writer: None,
            in_file: 0,
            files: Vec::new(),
        }
    }

    fn open(&mut self) -> std::io::Result<&mut BufWriter<File>> {
        if self.writer.is_some() && self.in_file >= self.limit {
            self.close()?;
        }
        if self.writer.is_none() {
            let number = self.files.len() + 1;
            let name = match self.format {
                SynthFormat::Ndjson => format!("{}-{number:04}.ndjson", self.prefix),
                SynthFormat::Bundle => format!("{}-{number:04}.json", self.prefix),
            };
            let mut writer = BufWriter::with_capacity(1 << 20, File::create(self.dir.join(&name))?);
            if self.format == SynthFormat::Bundle {
                write!(
                    writer,
                    r#"{{"resourceType":"Bundle","id":"{}-{number:04}","type":"collection","entry":["#,
                    self.prefix
                )?;
            }
            self.files.push(name);
            self.in_file = 0;
            self.writer = Some(writer);
        }
        // Just set above when it was missing.
        Ok(self.writer.as_mut().expect("an open writer"))
    }

    /// Appends one consultation's resources.
    pub fn write(&mut self, id: u64, resources: &Resources) -> std::io::Result<()> {
        let format = self.format;
        let first = self.writer.is_none() || self.in_file >= self.limit;
        let writer = self.open()?;
        let parts = [
            ("Patient", "p", Some(&resources.patient)),
            ("Encounter", "e", Some(&resources.encounter)),
            ("Condition", "c", resources.condition.as_ref()),
        ];
        for (index, (kind, letter, json)) in parts.into_iter().enumerate() {
            let Some(json) = json else { continue };
            match format {
                SynthFormat::Ndjson => {
                    writer.write_all(json.as_bytes())?;
                    writer.write_all(b"\n")?;
                }
                SynthFormat::Bundle => {
                    if !(first && index == 0) {
                        writer.write_all(b",\n")?;
                    }
                    write!(
                        writer,
                        r#"{{"fullUrl":"{BASE_URL}/{kind}/{letter}-{id}","resource":{json}}}"#
                    )?;
                }
            }
        }
        self.in_file += 1;
        Ok(())
    }

    /// Ends and flushes the current file.
    pub fn close(&mut self) -> std::io::Result<()> {
        if let Some(mut writer) = self.writer.take() {
            if self.format == SynthFormat::Bundle {
                writer.write_all(b"]}\n")?;
            }
            writer.flush()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consultation::Dice;
    use crate::fhir::resources;
    use crate::sample::consultation;

    fn fill(format: SynthFormat, dir: &Path) -> Vec<String> {
        let mut sink = Sink::with_limit(dir, "consultations", format, 2);
        let mut dice = Dice::new(1);
        let weights = [1; crate::places::ASSOCIATIONS.len()];
        for id in 1..=5 {
            let drawn = consultation(&mut dice, 19_800, &weights);
            sink.write(id, &resources(id, &drawn, None)).unwrap();
        }
        sink.close().unwrap();
        sink.files
    }

    #[test]
    fn a_full_ndjson_file_is_followed_by_a_new_one_that_stands_alone() {
        let dir = tempfile::tempdir().unwrap();
        let files = fill(SynthFormat::Ndjson, dir.path());
        assert_eq!(files.len(), 3);
        let sizes: Vec<usize> = files
            .iter()
            .map(|name| {
                let body = std::fs::read(dir.path().join(name)).unwrap();
                carrel_fhir::parse_ndjson(&body)
                    .unwrap()
                    .consultations
                    .len()
            })
            .collect();
        assert_eq!(sizes, [2, 2, 1]);
    }

    #[test]
    fn a_full_bundle_is_closed_and_the_next_one_starts_its_own_entries() {
        let dir = tempfile::tempdir().unwrap();
        let files = fill(SynthFormat::Bundle, dir.path());
        assert_eq!(files[2], "consultations-0003.json");
        for (name, expected) in files.iter().zip([2, 2, 1]) {
            let body = std::fs::read(dir.path().join(name)).unwrap();
            let ingested = carrel_fhir::parse_bundle(&body).unwrap();
            assert_eq!(ingested.consultations.len(), expected);
            assert_eq!(ingested.bundle_id.as_deref(), Some(&name[..name.len() - 5]));
        }
    }
}
