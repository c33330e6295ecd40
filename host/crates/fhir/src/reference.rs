//! The forms a FHIR reference takes in real exports, read into what to look up.

use std::borrow::Cow;

/// The resource types the reader keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Kind {
    Patient,
    Encounter,
    Condition,
}

impl Kind {
    pub(crate) fn from_name(name: &str) -> Option<Kind> {
        match name {
            "Patient" => Some(Kind::Patient),
            "Encounter" => Some(Kind::Encounter),
            "Condition" => Some(Kind::Condition),
            _ => None,
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Patient => "Patient",
            Kind::Encounter => "Encounter",
            Kind::Condition => "Condition",
        }
    }
}

/// What a reference string asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target<'r> {
    /// `Patient/123`, `Patient/123/_history/2`, or the tail of an absolute URL.
    TypeAndId { type_name: &'r str, id: &'r str },
    /// `urn:uuid:…` or `urn:oid:…`: an entry's fullUrl, or (in NDJSON, which has no
    /// fullUrls) the id of a resource of the expected type.
    Urn { full_url: &'r str, id: &'r str },
    /// An absolute URL: an entry's fullUrl, else its `Type/id` tail.
    Absolute {
        full_url: &'r str,
        tail: Option<(&'r str, &'r str)>,
    },
    /// `Patient?identifier=system|value` (transaction bundles), or a logical reference.
    Identifier {
        type_name: &'r str,
        system: Option<Cow<'r, str>>,
        value: Cow<'r, str>,
    },
    /// `#id`: a contained resource, which the reader does not read.
    Contained,
    /// Anything else, with why it cannot be read.
    Unreadable(&'static str),
}

/// Strips a trailing `/_history/<version>`.
fn without_history(path: &str) -> &str {
    match path.rfind("/_history/") {
        Some(at) => &path[..at],
        None => path,
    }
}

/// The last two path segments, `Type/id`.
fn type_and_id_tail(path: &str) -> Option<(&str, &str)> {
    let path = without_history(path);
    let (rest, id) = path.rsplit_once('/')?;
    let type_name = rest.rsplit('/').next()?;
    if type_name.is_empty() || id.is_empty() {
        return None;
    }
    Some((type_name, id))
}

pub(crate) fn percent_decode(text: &str) -> Cow<'_, str> {
    if !text.contains('%') && !text.contains('+') {
        return Cow::Borrowed(text);
    }
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        match bytes[index] {
            b'%' if index + 2 < bytes.len() => {
                match (hex(bytes[index + 1]), hex(bytes[index + 2])) {
                    (Some(high), Some(low)) => {
                        decoded.push((high * 16 + low) as u8);
                        index += 3;
                        continue;
                    }
                    _ => decoded.push(b'%'),
                }
            }
            // In a query string, `+` stands for a space.
            b'+' => decoded.push(b' '),
            byte => decoded.push(byte),
        }
        index += 1;
    }
    Cow::Owned(String::from_utf8_lossy(&decoded).into_owned())
}

fn conditional<'r>(type_part: &'r str, query: &'r str) -> Target<'r> {
    let type_name = type_part.rsplit('/').next().unwrap_or(type_part);
    let mut token = None;
    for parameter in query.split('&').filter(|p| !p.is_empty()) {
        match parameter.split_once('=') {
            Some(("identifier", value)) if token.is_none() => token = Some(value),
            _ => {
                return Target::Unreadable(
                    "a conditional reference may only search by one identifier",
                );
            }
        }
    }
    let Some(token) = token else {
        return Target::Unreadable("a conditional reference needs an identifier parameter");
    };
    identifier_token(type_name, token)
}

/// Reads a search token: `system|value`, `|value` (no system) or `value` (any system).
fn identifier_token<'r>(type_name: &'r str, token: &'r str) -> Target<'r> {
    let (system, value) = match percent_decode(token) {
        Cow::Borrowed(token) => match token.split_once('|') {
            Some((system, value)) => (Some(Cow::Borrowed(system)), Cow::Borrowed(value)),
            None => (None, Cow::Borrowed(token)),
        },
        Cow::Owned(token) => match token.split_once('|') {
            Some((system, value)) => (
                Some(Cow::Owned(system.to_owned())),
                Cow::Owned(value.to_owned()),
            ),
            None => (None, Cow::Owned(token)),
        },
    };
    if value.is_empty() {
        return Target::Unreadable("a conditional reference needs an identifier value");
    }
    Target::Identifier {
        type_name,
        system,
        value,
    }
}

/// Reads a `Reference.reference` string.
pub(crate) fn parse_reference(reference: &str) -> Target<'_> {
    let reference = reference.trim();
    if reference.starts_with('#') {
        return Target::Contained;
    }
    if let Some((type_part, query)) = reference.split_once('?') {
        return conditional(type_part, query);
    }
    for prefix in ["urn:uuid:", "urn:oid:"] {
        if let Some(id) = reference.strip_prefix(prefix) {
            if id.is_empty() {
                return Target::Unreadable("the URN has nothing after its prefix");
            }
            return Target::Urn {
                full_url: reference,
                id,
            };
        }
    }
    if reference.starts_with("http://") || reference.starts_with("https://") {
        return Target::Absolute {
            full_url: reference,
            tail: type_and_id_tail(reference),
        };
    }
    let path = without_history(reference);
    match path.split_once('/') {
        Some((type_name, id)) if !type_name.is_empty() && !id.is_empty() && !id.contains('/') => {
            Target::TypeAndId { type_name, id }
        }
        _ => Target::Unreadable(
            "expected `Type/id`, `urn:uuid:…`, an absolute URL or `Type?identifier=…`",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_references_give_type_and_id_without_history() {
        assert_eq!(
            parse_reference("Patient/p1"),
            Target::TypeAndId {
                type_name: "Patient",
                id: "p1"
            }
        );
        assert_eq!(
            parse_reference("Patient/p1/_history/3"),
            Target::TypeAndId {
                type_name: "Patient",
                id: "p1"
            }
        );
    }

    #[test]
    fn urns_and_absolute_urls_keep_the_whole_text_for_fullurl_matching() {
        assert_eq!(
            parse_reference("urn:uuid:1b2c"),
            Target::Urn {
                full_url: "urn:uuid:1b2c",
                id: "1b2c"
            }
        );
        assert_eq!(
            parse_reference("https://ehr.example.fr/fhir/Patient/42/_history/1"),
            Target::Absolute {
                full_url: "https://ehr.example.fr/fhir/Patient/42/_history/1",
                tail: Some(("Patient", "42"))
            }
        );
    }

    #[test]
    fn conditional_references_are_read_with_percent_decoding() {
        assert_eq!(
            parse_reference("Patient?identifier=urn:oid:1.2.250.1.213.1.4.8%7C184127645108946"),
            Target::Identifier {
                type_name: "Patient",
                system: Some(Cow::Borrowed("urn:oid:1.2.250.1.213.1.4.8")),
                value: Cow::Borrowed("184127645108946"),
            }
        );
        assert!(matches!(
            parse_reference("Patient?identifier=abc"),
            Target::Identifier { system: None, .. }
        ));
        assert!(matches!(
            parse_reference("Patient?name=Martin"),
            Target::Unreadable(_)
        ));
    }

    #[test]
    fn contained_and_shapeless_references_are_told_apart() {
        assert_eq!(parse_reference("#p1"), Target::Contained);
        assert!(matches!(parse_reference("p1"), Target::Unreadable(_)));
        assert!(matches!(parse_reference("a/b/c"), Target::Unreadable(_)));
    }

    #[test]
    fn percent_decoding_leaves_broken_escapes_as_they_are() {
        assert_eq!(percent_decode("a%7Cb"), "a|b");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }
}
