//! `carrel study new NAME --template model-eval`: a study that evaluates a model the
//! researcher brings. No code to write: the shipped `model-eval` component runs any ONNX
//! model the manifest names; the researcher writes the section (features, outcome, bins,
//! thresholds, subgroups) and puts the model file where it says.

use super::scaffold::validate_name;
use anyhow::{Context, bail};
use std::path::Path;
use std::process::ExitCode;

const SECTION: &str = include_str!("templates/model_eval.toml.tmpl");

/// Appends the section of study `name` to `manifest` (or prints it when `add` is false)
/// and says what to do next.
pub fn run(name: &str, manifest: &Path, add: bool) -> anyhow::Result<ExitCode> {
    validate_name(name).map_err(anyhow::Error::msg)?;
    let model = format!("models/{name}.onnx");
    let expires = (time::OffsetDateTime::now_utc().date() + time::Duration::days(365))
        .format(&time::macros::format_description!("[year]-[month]-[day]"))?;
    let section = [
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
    });
    if !add {
        println!("Paste this section into your spin.toml:\n{section}");
        return Ok(ExitCode::SUCCESS);
    }
    let text = std::fs::read_to_string(manifest).with_context(|| {
        format!(
            "cannot read the manifest {} (pass -f <spin.toml>, or --no-manifest to print the section instead)",
            manifest.display()
        )
    })?;
    let table: toml::Table = toml::from_str(&text)
        .with_context(|| format!("{} is not valid TOML", manifest.display()))?;
    if table.get("component").and_then(|c| c.get(name)).is_some() {
        bail!(
            "{} already has a component `{name}`: choose another name",
            manifest.display()
        );
    }
    let mut new = text;
    if !new.ends_with('\n') {
        new.push('\n');
    }
    new.push_str(&section);
    toml::from_str::<toml::Table>(&new)
        .context("the manifest section does not parse (a bug in carrel)")?;
    std::fs::write(manifest, new)
        .with_context(|| format!("cannot write {}", manifest.display()))?;
    println!(
        "Appended the section of `{name}` to {}.\nNext:\n  1. put your ONNX model at {model} (next to the manifest) and list its inputs, in order, as `features`;\n  2. fill in purpose, legal_basis and principal_investigator;\n  3. carrel build, then carrel study submit {name}: the study checks the model in its sandbox (operators, input width) before an auditor approves it.",
        manifest.display()
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_model_eval_section_parses_and_names_the_model_file() {
        let dir = tempfile::tempdir().unwrap();
        let manifest = dir.path().join("spin.toml");
        std::fs::write(&manifest, "spin_manifest_version = 2\n").unwrap();
        run("triage-eval", &manifest, true).unwrap();
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
        let again = run("triage-eval", &manifest, true).unwrap_err();
        assert!(
            again.to_string().contains("already has a component"),
            "{again}"
        );
    }
}
