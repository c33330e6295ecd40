//! Reading each resource of a payload into typed form, with the checks that need only
//! the resource itself. References are checked later, once every resource is known.

use std::collections::BTreeMap;

use serde::de::IgnoredAny;

use crate::date::{parse_date, parse_date_time};
use crate::nir::validate_nir;
use crate::problem::{IssueCode, Problems, clip};
use crate::raw::{self, Condition, Encounter, Header, Identifier, Patient, Text};
use crate::reference::Kind;

/// Identifier systems of the NIR: INS-NIR, then INS-NIA (a temporary number).
pub const NIR_SYSTEMS: [&str; 2] = [
    "urn:oid:1.2.250.1.213.1.4.8",
    "urn:oid:1.2.250.1.213.1.4.10",
];

/// Largest Patient, Encounter or Condition read, in bytes of JSON. Real ones are a few
/// kilobytes; one of megabytes is an attack on the sandbox's memory or a broken export,
/// and its values would be stored or echoed. Resources of other types are skipped
/// unbuilt, so a large attachment in a DocumentReference is no trouble.
pub const MAX_RESOURCE_BYTES: usize = 1 << 20;

/// Where a resource sits in its payload, for problem locations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Site {
    /// 1-based NDJSON line.
    Line(usize),
    /// 0-based Bundle.entry index.
    Entry(usize),
}

impl Site {
    /// The resource as a whole: `line 12` or `Bundle.entry[3].resource`.
    pub(crate) fn resource(self) -> String {
        match self {
            Site::Line(line) => format!("line {line}"),
            Site::Entry(entry) => format!("Bundle.entry[{entry}].resource"),
        }
    }

    /// One element: `line 12: Encounter.subject` or `Bundle.entry[3].resource.subject`.
    pub(crate) fn element(self, resource_type: &str, element: &str) -> String {
        match self {
            Site::Line(line) => format!("line {line}: {resource_type}.{element}"),
            Site::Entry(entry) => format!("Bundle.entry[{entry}].resource.{element}"),
        }
    }

    pub(crate) fn resource_type(self) -> String {
        match self {
            Site::Line(line) => format!("line {line}: resourceType"),
            Site::Entry(entry) => format!("Bundle.entry[{entry}].resource.resourceType"),
        }
    }

    pub(crate) fn full_url(self) -> String {
        match self {
            Site::Line(line) => format!("line {line}"),
            Site::Entry(entry) => format!("Bundle.entry[{entry}].fullUrl"),
        }
    }
}

/// A resource with where it came from.
#[derive(Debug)]
pub(crate) struct Located<'a, T> {
    pub site: Site,
    pub full_url: Option<Text<'a>>,
    pub resource: T,
}

/// The kept resources of one payload, in payload order.
#[derive(Debug, Default)]
pub(crate) struct Resources<'a> {
    pub patients: Vec<Located<'a, Patient<'a>>>,
    pub encounters: Vec<Located<'a, Encounter<'a>>>,
    pub conditions: Vec<Located<'a, Condition<'a>>>,
}

impl<'a> Resources<'a> {
    pub(crate) fn len(&self) -> usize {
        self.patients.len() + self.encounters.len() + self.conditions.len()
    }

    pub(crate) fn count(&self, kind: Kind) -> usize {
        match kind {
            Kind::Patient => self.patients.len(),
            Kind::Encounter => self.encounters.len(),
            Kind::Condition => self.conditions.len(),
        }
    }

    /// Id, fullUrl and site of one resource.
    pub(crate) fn keys(&self, kind: Kind, position: usize) -> (Option<&str>, Option<&str>, Site) {
        fn of<'r, T>(
            located: &'r Located<'_, T>,
            id: &'r Option<Text<'_>>,
        ) -> (Option<&'r str>, Option<&'r str>, Site) {
            (id.as_deref(), located.full_url.as_deref(), located.site)
        }
        match kind {
            Kind::Patient => of(
                &self.patients[position],
                &self.patients[position].resource.id,
            ),
            Kind::Encounter => of(
                &self.encounters[position],
                &self.encounters[position].resource.id,
            ),
            Kind::Condition => of(
                &self.conditions[position],
                &self.conditions[position].resource.id,
            ),
        }
    }

    pub(crate) fn identifiers(&self, kind: Kind, position: usize) -> &[Identifier<'a>] {
        match kind {
            Kind::Patient => &self.patients[position].resource.identifier,
            Kind::Encounter => &self.encounters[position].resource.identifier,
            Kind::Condition => &self.conditions[position].resource.identifier,
        }
    }
}

/// Everything read from a payload so far, and the problems found.
#[derive(Debug, Default)]
pub(crate) struct Collector<'a> {
    pub resources: Resources<'a>,
    pub ignored: BTreeMap<String, usize>,
    pub problems: Problems,
}

/// serde_json's message without its ` at line L column C` suffix.
pub(crate) fn bare_message(error: &serde_json::Error) -> String {
    let message = error.to_string();
    match message.rsplit_once(" at line ") {
        Some((bare, _)) if error.line() > 0 => bare.to_owned(),
        _ => message,
    }
}

/// Whether `name` has the shape of a FHIR resource type (PascalCase letters).
fn is_resource_type_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_uppercase())
        && name.chars().all(|c| c.is_ascii_alphanumeric())
}

impl<'a> Collector<'a> {
    pub(crate) fn problem(&mut self, code: IssueCode, location: String, message: String) {
        self.problems.push(code, location, message);
    }

    /// A message for a JSON error: with its column on an NDJSON line, without a position
    /// inside a Bundle entry (the position would count from the entry, not the body).
    fn json_problem(&mut self, site: Site, what: &str, error: &serde_json::Error) {
        // A resource cut short or broken is bad JSON, whatever type it started as; a
        // type the reader did not expect (a number for an id) is about that resource.
        let what = if error.is_data() {
            what
        } else {
            "malformed JSON"
        };
        let message = match site {
            Site::Line(_) if error.line() > 0 => {
                format!(
                    "{what}: {} (column {})",
                    bare_message(error),
                    error.column()
                )
            }
            _ => format!("{what}: {}", bare_message(error)),
        };
        self.problem(IssueCode::Structure, site.resource(), message);
    }

    /// Reads one resource. `well_formed` says the JSON was already checked (a Bundle
    /// entry parsed as a raw value), so a resource of an ignored type is not parsed again.
    pub(crate) fn add(
        &mut self,
        json: &'a [u8],
        site: Site,
        full_url: Option<Text<'a>>,
        well_formed: bool,
    ) {
        match json.trim_ascii_start().first() {
            Some(b'{') => {}
            _ => {
                let found = match serde_json::from_slice::<IgnoredAny>(json) {
                    Err(error) => return self.json_problem(site, "malformed JSON", &error),
                    Ok(_) => match json.trim_ascii_start().first() {
                        Some(b'[') => "an array",
                        Some(b'"') => "a string",
                        Some(b'n') => "null",
                        Some(b't' | b'f') => "a boolean",
                        _ => "a number",
                    },
                };
                return self.problem(
                    IssueCode::Structure,
                    site.resource(),
                    format!("expected a JSON object (a FHIR resource), found {found}"),
                );
            }
        }
        let header;
        let resource_type = match raw::sniff_resource_type(json) {
            Some(name) => name,
            None => match serde_json::from_slice::<Header>(json) {
                Ok(Header {
                    resource_type: Some(name),
                }) => {
                    header = name;
                    &*header
                }
                Ok(Header {
                    resource_type: None,
                }) => {
                    return self.problem(
                        IssueCode::Structure,
                        site.resource(),
                        "the object has no resourceType".to_owned(),
                    );
                }
                Err(error) => return self.json_problem(site, "malformed JSON", &error),
            },
        };
        if let Some(kind) = Kind::from_name(resource_type)
            && json.len() > MAX_RESOURCE_BYTES
        {
            return self.problem(
                IssueCode::TooCostly,
                site.resource(),
                format!(
                    "a {} of {} bytes is larger than the {MAX_RESOURCE_BYTES} bytes a Patient, Encounter or Condition may take",
                    kind.name(),
                    json.len()
                ),
            );
        }
        match Kind::from_name(resource_type) {
            Some(Kind::Patient) => match serde_json::from_slice::<Patient<'a>>(json) {
                Ok(patient) => self.add_patient(patient, site, full_url),
                Err(error) => self.json_problem(site, "Patient", &error),
            },
            Some(Kind::Encounter) => match serde_json::from_slice::<Encounter<'a>>(json) {
                Ok(encounter) => self.add_encounter(encounter, site, full_url),
                Err(error) => self.json_problem(site, "Encounter", &error),
            },
            Some(Kind::Condition) => match serde_json::from_slice::<Condition<'a>>(json) {
                Ok(condition) => self.resources.conditions.push(Located {
                    site,
                    full_url,
                    resource: condition,
                }),
                Err(error) => self.json_problem(site, "Condition", &error),
            },
            None => self.add_other(resource_type, json, site, well_formed),
        }
    }

    fn add_other(&mut self, resource_type: &str, json: &[u8], site: Site, well_formed: bool) {
        if resource_type == "Bundle" {
            return self.problem(
                IssueCode::NotSupported,
                site.resource(),
                "a Bundle inside a payload is not read: send each Bundle as its own application/fhir+json request".to_owned(),
            );
        }
        if !is_resource_type_name(resource_type) {
            let hint = ["Patient", "Encounter", "Condition"]
                .into_iter()
                .find(|known| known.eq_ignore_ascii_case(resource_type))
                .map(|known| format!(" (resource types are case-sensitive: `{known}`)"))
                .unwrap_or_default();
            return self.problem(
                IssueCode::Structure,
                site.resource_type(),
                format!(
                    "`{}` is not a FHIR resource type{hint}",
                    clip(resource_type)
                ),
            );
        }
        if !well_formed && let Err(error) = serde_json::from_slice::<IgnoredAny>(json) {
            return self.json_problem(site, "malformed JSON", &error);
        }
        match self.ignored.get_mut(resource_type) {
            Some(count) => *count += 1,
            None => {
                self.ignored.insert(resource_type.to_owned(), 1);
            }
        }
    }

    fn add_patient(&mut self, patient: Patient<'a>, site: Site, full_url: Option<Text<'a>>) {
        if let Some(birth_date) = &patient.birth_date
            && let Err(error) = parse_date(birth_date)
        {
            self.problem(
                IssueCode::Value,
                site.element("Patient", "birthDate"),
                error.to_string(),
            );
        }
        for (index, identifier) in patient.identifier.iter().enumerate() {
            let is_nir = identifier
                .system
                .as_deref()
                .is_some_and(|system| NIR_SYSTEMS.contains(&system));
            if let (true, Some(value)) = (is_nir, identifier.value.as_deref())
                && let Err(error) = validate_nir(value)
            {
                self.problem(
                    IssueCode::Value,
                    site.element("Patient", &format!("identifier[{index}].value")),
                    format!("the NIR does not check: {error}"),
                );
            }
        }
        self.resources.patients.push(Located {
            site,
            full_url,
            resource: patient,
        });
    }

    fn add_encounter(&mut self, encounter: Encounter<'a>, site: Site, full_url: Option<Text<'a>>) {
        if encounter.id.is_none() && full_url.is_none() {
            self.problem(
                IssueCode::Required,
                site.element("Encounter", "id"),
                "the Encounter has no id (nor a fullUrl to stand for it)".to_owned(),
            );
        }
        // An empty subject (no reference, no identifier) is reported when references
        // are followed.
        if encounter.subject.is_none() {
            self.problem(
                IssueCode::Required,
                site.element("Encounter", "subject"),
                "the Encounter has no subject: every consultation needs its patient".to_owned(),
            );
        }
        match encounter
            .period
            .as_ref()
            .and_then(|period| period.start.as_deref())
        {
            None => self.problem(
                IssueCode::Required,
                site.element("Encounter", "period.start"),
                "the Encounter has no period.start: every consultation needs its date".to_owned(),
            ),
            Some(start) => match parse_date_time(start) {
                Err(error) => self.problem(
                    IssueCode::Value,
                    site.element("Encounter", "period.start"),
                    error.to_string(),
                ),
                Ok(parsed) if parsed.date.day.is_none() => self.problem(
                    IssueCode::Value,
                    site.element("Encounter", "period.start"),
                    format!(
                        "`{}` does not give the day of the consultation",
                        clip(start)
                    ),
                ),
                Ok(_) => {}
            },
        }
        self.resources.encounters.push(Located {
            site,
            full_url,
            resource: encounter,
        });
    }
}
