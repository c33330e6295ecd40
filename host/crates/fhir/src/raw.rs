//! The parts of FHIR R4 resources the reader needs, as serde structs that borrow their
//! strings from the payload (only a string with JSON escapes is copied). Every other
//! element is skipped by serde without being built.

use std::borrow::Cow;
use std::fmt;
use std::ops::Deref;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, Visitor};
use serde_json::value::RawValue;

/// A JSON string borrowed from the payload when it has no escapes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Text<'a>(pub Cow<'a, str>);

impl Deref for Text<'_> {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor;

        impl<'de> Visitor<'de> for TextVisitor {
            type Value = Text<'de>;

            fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
                formatter.write_str("a string")
            }

            fn visit_borrowed_str<E: de::Error>(self, value: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(value)))
            }

            fn visit_str<E: de::Error>(self, value: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(value.to_owned())))
            }

            fn visit_string<E: de::Error>(self, value: String) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(value)))
            }
        }

        deserializer.deserialize_str(TextVisitor)
    }
}

/// Just the type of a resource, when it does not come first in its object.
#[derive(Deserialize)]
pub(crate) struct Header<'a> {
    #[serde(rename = "resourceType", borrow)]
    pub resource_type: Option<Text<'a>>,
}

#[derive(Deserialize, Debug)]
pub(crate) struct Identifier<'a> {
    #[serde(borrow)]
    pub system: Option<Text<'a>>,
    #[serde(borrow)]
    pub value: Option<Text<'a>>,
}

#[derive(Deserialize, Debug)]
pub(crate) struct Coding<'a> {
    #[serde(borrow)]
    pub system: Option<Text<'a>>,
    #[serde(borrow)]
    pub code: Option<Text<'a>>,
}

#[derive(Deserialize, Debug, Default)]
pub(crate) struct CodeableConcept<'a> {
    #[serde(default, borrow)]
    pub coding: Vec<Coding<'a>>,
}

#[derive(Deserialize, Debug)]
pub(crate) struct Reference<'a> {
    #[serde(borrow)]
    pub reference: Option<Text<'a>>,
    /// A logical reference: the target's business identifier.
    #[serde(borrow)]
    pub identifier: Option<Identifier<'a>>,
}

#[derive(Deserialize, Debug)]
pub(crate) struct HumanName<'a> {
    #[serde(rename = "use", borrow)]
    pub name_use: Option<Text<'a>>,
    #[serde(borrow)]
    pub family: Option<Text<'a>>,
    /// FHIR JSON may hold `null` in primitive arrays (when only `_given` has a value).
    #[serde(default, borrow)]
    pub given: Vec<Option<Text<'a>>>,
}

#[derive(Deserialize, Debug)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Address<'a> {
    #[serde(borrow)]
    pub postal_code: Option<Text<'a>>,
    #[serde(borrow)]
    pub country: Option<Text<'a>>,
}

#[derive(Deserialize, Debug)]
pub(crate) struct ContactPoint<'a> {
    #[serde(borrow)]
    pub value: Option<Text<'a>>,
}

#[derive(Deserialize, Debug)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Patient<'a> {
    /// Declared so that a second `resourceType` in the object is a duplicate-field
    /// error: the type was read from the first, and another reader may take the last.
    #[serde(rename = "resourceType")]
    _resource_type: Option<IgnoredAny>,
    #[serde(borrow)]
    pub id: Option<Text<'a>>,
    #[serde(default, borrow)]
    pub identifier: Vec<Identifier<'a>>,
    #[serde(default, borrow)]
    pub name: Vec<HumanName<'a>>,
    #[serde(borrow)]
    pub birth_date: Option<Text<'a>>,
    #[serde(borrow)]
    pub gender: Option<Text<'a>>,
    #[serde(default, borrow)]
    pub address: Vec<Address<'a>>,
    #[serde(default, borrow)]
    pub telecom: Vec<ContactPoint<'a>>,
}

#[derive(Deserialize, Debug)]
pub(crate) struct Period<'a> {
    #[serde(borrow)]
    pub start: Option<Text<'a>>,
}

#[derive(Deserialize, Debug)]
pub(crate) struct EncounterDiagnosis<'a> {
    #[serde(borrow)]
    pub condition: Option<Reference<'a>>,
}

#[derive(Deserialize, Debug)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Hospitalization<'a> {
    #[serde(borrow)]
    pub discharge_disposition: Option<CodeableConcept<'a>>,
}

#[derive(Deserialize, Debug)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Encounter<'a> {
    /// Declared so that a second `resourceType` in the object is a duplicate-field
    /// error: the type was read from the first, and another reader may take the last.
    #[serde(rename = "resourceType")]
    _resource_type: Option<IgnoredAny>,
    #[serde(borrow)]
    pub id: Option<Text<'a>>,
    #[serde(default, borrow)]
    pub identifier: Vec<Identifier<'a>>,
    #[serde(borrow)]
    pub class: Option<Coding<'a>>,
    #[serde(borrow)]
    pub period: Option<Period<'a>>,
    #[serde(borrow)]
    pub subject: Option<Reference<'a>>,
    #[serde(default, borrow)]
    pub reason_code: Vec<CodeableConcept<'a>>,
    #[serde(default, borrow)]
    pub diagnosis: Vec<EncounterDiagnosis<'a>>,
    #[serde(borrow)]
    pub hospitalization: Option<Hospitalization<'a>>,
}

#[derive(Deserialize, Debug)]
pub(crate) struct Condition<'a> {
    /// Declared so that a second `resourceType` in the object is a duplicate-field
    /// error: the type was read from the first, and another reader may take the last.
    #[serde(rename = "resourceType")]
    _resource_type: Option<IgnoredAny>,
    #[serde(borrow)]
    pub id: Option<Text<'a>>,
    #[serde(default, borrow)]
    pub identifier: Vec<Identifier<'a>>,
    #[serde(borrow)]
    pub code: Option<CodeableConcept<'a>>,
    #[serde(borrow)]
    pub subject: Option<Reference<'a>>,
    #[serde(borrow)]
    pub encounter: Option<Reference<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct BundleEntry<'a> {
    #[serde(borrow)]
    pub full_url: Option<Text<'a>>,
    /// Kept as text: its type decides how it is read.
    #[serde(borrow)]
    pub resource: Option<&'a RawValue>,
}

#[derive(Deserialize)]
pub(crate) struct Bundle<'a> {
    /// Declared so that a second `resourceType` in the object is a duplicate-field
    /// error: the type was read from the first, and another reader may take the last.
    #[serde(rename = "resourceType")]
    _resource_type: Option<IgnoredAny>,
    #[serde(borrow)]
    pub id: Option<Text<'a>>,
    #[serde(rename = "type", borrow)]
    pub bundle_type: Option<Text<'a>>,
    #[serde(default, borrow)]
    pub entry: Vec<BundleEntry<'a>>,
}

/// The resourceType of an object that starts with it, as nearly every exporter writes
/// it, without parsing the rest; `None` sends the caller to the full [`Header`] parse.
pub(crate) fn sniff_resource_type(json: &[u8]) -> Option<&str> {
    let rest = json
        .trim_ascii_start()
        .strip_prefix(br#"{"resourceType":""#)?;
    let end = rest.iter().position(|&b| b == b'"' || b == b'\\')?;
    if rest[end] != b'"' {
        return None;
    }
    std::str::from_utf8(&rest[..end]).ok()
}
