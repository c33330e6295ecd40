//! carrel's own settings for a component, in `[component.<id>.tool.carrel]` where Spin lets
//! tools keep theirs. Parsed strictly, like the rest of the manifest.

use crate::tokens::Role;
use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CarrelTool {
    /// The role a bearer token must have to reach this component's routes.
    pub auth: Option<Role>,
    /// This component may hand consultations to the host (`carrel:eds/ingest`).
    pub ingest: Option<IngestTool>,
    /// Domains this component may hash under (`carrel:eds/keyed-hash`).
    #[serde(default)]
    pub keyed_hash_domains: Vec<String>,
    /// This component is a study (`[[trigger.study]]`): its capability manifest.
    pub study: Option<crate::study::manifest::StudyTool>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct IngestTool {
    /// The dataset consultations are appended to.
    pub dataset: String,
    /// The component (a `pseudonymiser` world) that turns identified rows into canonical ones.
    pub pseudonymiser: String,
}

/// A `[component.<id>.tool.carrel]` table that does not read as carrel's settings.
#[derive(Debug, thiserror::Error)]
#[error("[component.{component}.tool.carrel]: {message}")]
pub struct CarrelToolError {
    pub component: String,
    pub message: String,
}

impl CarrelTool {
    pub fn of(
        component_id: &str,
        tools: &std::collections::BTreeMap<String, toml::Table>,
    ) -> Result<Self, CarrelToolError> {
        match tools.get("carrel") {
            None => Ok(Self::default()),
            Some(table) => table
                .clone()
                .try_into()
                .map_err(|e: toml::de::Error| CarrelToolError {
                    component: component_id.to_owned(),
                    message: e.message().to_owned(),
                }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_table_is_read_strictly() {
        let tools: std::collections::BTreeMap<String, toml::Table> = toml::from_str(
            "[carrel]\nauth = \"ingest\"\ningest = { dataset = \"consultations\", pseudonymiser = \"pseudonymise\" }\n",
        )
        .unwrap();
        let tool = CarrelTool::of("ingest-fhir", &tools).unwrap();
        assert_eq!(tool.auth, Some(Role::Ingest));
        assert_eq!(tool.ingest.unwrap().pseudonymiser, "pseudonymise");
        let bad: std::collections::BTreeMap<String, toml::Table> =
            toml::from_str("[carrel]\nauht = \"ingest\"\n").unwrap();
        let err = CarrelTool::of("x", &bad).unwrap_err().to_string();
        assert!(
            err.contains("auht") && err.contains("[component.x.tool.carrel]"),
            "{err}"
        );
    }
}
