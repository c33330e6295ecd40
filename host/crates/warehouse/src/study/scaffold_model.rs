//! `carrel study new NAME --template model-eval`: a study that evaluates a model the
//! researcher brings. No code to write: the shipped `model-eval` component runs any ONNX
//! model the manifest names; the researcher writes the section (features, outcome, bins,
//! thresholds, subgroups) and puts the model file where it says.

use super::scaffold::validate_name;
use super::scaffold_error::ScaffoldError;
use std::path::Path;

const SECTION: &str = include_str!("templates/model_eval.toml.tmpl");

/// The manifest section of model-evaluation study `name`, whose model file is
/// `models/<name>.onnx` beside the manifest.
pub fn section(name: &str) -> Result<String, ScaffoldError> {
    validate_name(name).map_err(ScaffoldError::BadName)?;
    let model = model_file(name);
    let expires = (time::OffsetDateTime::now_utc().date() + time::Duration::days(365))
        .format(&time::macros::format_description!("[year]-[month]-[day]"))?;
    Ok([
        ("{{name}}", name),
        ("{{model}}", model.as_str()),
        ("{{expires}}", expires.as_str()),
        (
            "{{source}}",
            "components/target/wasm32-wasip2/release/model_eval.wasm",
        ),
        ("{{workdir}}", "components"),
    ]
    .iter()
    .fold(SECTION.to_owned(), |text, (key, value)| {
        text.replace(key, value)
    }))
}

/// Where the section of study `name` expects its model, relative to the manifest.
pub fn model_file(name: &str) -> String {
    format!("models/{name}.onnx")
}

/// Appends `section` of study `name` to `manifest`, which must have no component `name`.
pub fn append(name: &str, manifest: &Path, section: &str) -> Result<(), ScaffoldError> {
    let text = super::scaffold::manifest_without(manifest, name)?;
    super::scaffold::append_section(manifest, text, section)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_model_eval_section_parses_and_names_the_model_file() {
        let dir = tempfile::tempdir().unwrap();
        let manifest = dir.path().join("spin.toml");
        std::fs::write(&manifest, "spin_manifest_version = 2\n").unwrap();
        let section = section("triage-eval").unwrap();
        append("triage-eval", &manifest, &section).unwrap();
        let table: toml::Table =
            toml::from_str(&std::fs::read_to_string(&manifest).unwrap()).unwrap();
        let study = &table["component"]["triage-eval"]["tool"]["carrel"]["study"];
        assert_eq!(study["kind"].as_str(), Some("model-evaluation"));
        assert_eq!(
            study["model"]["file"].as_str(),
            Some("models/triage-eval.onnx")
        );
        let tool: crate::study::manifest::StudyTool = study.clone().try_into().unwrap();
        assert!(tool.model.is_some());
        // A second time, the name is taken.
        let again = append("triage-eval", &manifest, &section).unwrap_err();
        assert!(
            again.to_string().contains("already has a component"),
            "{again}"
        );
    }
}
