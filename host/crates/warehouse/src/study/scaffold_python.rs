//! `carrel study new <name> --lang python`: writes a study project on the Python SDK
//! (`app.py`, a worked example that builds and passes `carrel study try <name>
//! --synthetic` as it is; `test_app.py`, its tests on made-up consultations; a README),
//! and, unless told not to, its manifest section, whose `build` runs componentize-py
//! over the project, the repository's SDK (`sdk/python`) and its WIT (`wit/`).

use super::scaffold::{
    STUDY_TOML, ScaffoldOptions, append_section, manifest_to_extend, relative, render, type_name,
};
use super::scaffold_error::ScaffoldError;
use std::path::{Path, PathBuf};

const APP_PY: &str = include_str!("templates/python/app.py.tmpl");
const TEST_APP_PY: &str = include_str!("templates/python/test_app.py.tmpl");
const README_MD: &str = include_str!("templates/python/README.md.tmpl");
const GITIGNORE: &str = include_str!("templates/python/gitignore.tmpl");

/// The componentize-py release the build command is written for and CI installs.
pub const COMPONENTIZE_PY_VERSION: &str = "0.25.1";

/// The SDK package and the WIT, as they sit in the repository.
const SDK: &str = "sdk/python";
const WIT: &str = "wit";

/// What `scaffold` did.
pub struct ScaffoldedPython {
    pub project_dir: PathBuf,
    pub section: String,
    pub manifest_updated: bool,
}

/// The nearest directory at or above `dir` holding the Python SDK and the WIT.
fn find_repository(dir: &Path) -> Option<PathBuf> {
    dir.ancestors()
        .find(|a| {
            a.join(SDK).join("carrel_study/component.py").is_file()
                && a.join(WIT).join("eds.wit").is_file()
        })
        .map(Path::to_owned)
}

/// The `[component.<name>.build]` keys: componentize-py over the project, the SDK and the
/// WIT, into `<wasm>` in the project.
fn build_keys(workdir: &str, wit: &str, sdk: &str, wasm: &str) -> String {
    let check = format!(
        "command -v componentize-py >/dev/null || {{ echo 'componentize-py is not installed: pip install componentize-py=={COMPONENTIZE_PY_VERSION}' >&2; exit 1; }}"
    );
    let build = format!(
        "componentize-py -d {wit} -w carrel:eds/study componentize carrel_study.component -p . -p {sdk} -o {wasm}"
    );
    let quoted = |s: &str| toml::Value::String(s.to_owned()).to_string();
    format!(
        "command = [{}, {}]\nworkdir = {}\nwatch = [\"*.py\", {}]",
        quoted(&check),
        quoted(&build),
        quoted(workdir),
        quoted(&format!("{sdk}/carrel_study/*.py")),
    )
}

pub fn scaffold(options: &ScaffoldOptions) -> Result<ScaffoldedPython, ScaffoldError> {
    let name = &options.name;
    let super::scaffold::ProjectPlace {
        manifest_dir,
        dir,
        project_dir,
    } = super::scaffold::project_place(options)?;
    let repository = find_repository(&manifest_dir)
        .or_else(|| find_repository(&dir))
        .ok_or_else(|| ScaffoldError::NoPythonSdk {
            sdk: SDK,
            wit: WIT,
            dir: manifest_dir.clone(),
        })?;
    let wasm = format!("{}.wasm", name.replace('-', "_"));
    let sdk_path = relative(&repository.join(SDK), &project_dir);
    let wit_path = relative(&repository.join(WIT), &project_dir);
    let workdir = relative(&project_dir, &manifest_dir);
    let source = relative(&project_dir.join(&wasm), &manifest_dir);
    let expires = (time::OffsetDateTime::now_utc().date() + time::Duration::days(365))
        .format(&time::macros::format_description!("[year]-[month]-[day]"))?;
    let build = build_keys(&workdir, &wit_path, &sdk_path, &wasm);
    let type_name = type_name(name);
    let vars = [
        ("name", name.as_str()),
        ("type_name", &type_name),
        ("sdk_path", &sdk_path),
        ("source", &source),
        ("expires", &expires),
        ("build", &build),
        ("wasm", &wasm),
        ("componentize_version", COMPONENTIZE_PY_VERSION),
    ];
    let section = render(STUDY_TOML, &vars);
    let manifest_text = manifest_to_extend(options)?;

    std::fs::create_dir_all(&project_dir).map_err(|source| ScaffoldError::Create {
        path: project_dir.clone(),
        source,
    })?;
    for (file, template) in [
        ("app.py", APP_PY),
        ("test_app.py", TEST_APP_PY),
        ("README.md", README_MD),
        (".gitignore", GITIGNORE),
    ] {
        let path = project_dir.join(file);
        super::scaffold::write(&path, render(template, &vars))?;
    }
    let example = project_dir.join(super::scaffold::SECTION_FILE);
    super::scaffold::write(&example, section.trim_start())?;
    let manifest_updated = match manifest_text {
        Some(text) => {
            append_section(&options.manifest, text, &section)?;
            true
        }
        None => false,
    };
    Ok(ScaffoldedPython {
        project_dir,
        section,
        manifest_updated,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Vec<(&'static str, &'static str)> {
        vec![
            ("name", "x"),
            ("type_name", "XStudy"),
            ("sdk_path", "../../../sdk/python"),
            ("source", "components/studies/x/x.wasm"),
            ("expires", "2099-01-01"),
            ("build", "command = \"true\""),
            ("wasm", "x.wasm"),
            ("componentize_version", COMPONENTIZE_PY_VERSION),
        ]
    }

    #[test]
    fn the_python_templates_have_no_placeholder_left() {
        for template in [APP_PY, TEST_APP_PY, README_MD, GITIGNORE, STUDY_TOML] {
            assert!(!render(template, &vars()).contains("{{"), "{template}");
        }
    }

    #[test]
    fn ci_installs_the_componentize_py_the_build_command_names() {
        let ci = include_str!("../../../../../.ci/run");
        assert!(
            ci.contains(&format!("componentize_py={COMPONENTIZE_PY_VERSION}\n")),
            ".ci/run must install componentize-py {COMPONENTIZE_PY_VERSION}"
        );
    }

    #[test]
    fn the_build_section_runs_componentize_py_over_the_project_sdk_and_wit() {
        let keys = build_keys(
            "components/studies/x",
            "../../../wit",
            "../../../sdk/python",
            "x.wasm",
        );
        let table: toml::Table = toml::from_str(&keys).unwrap();
        let commands = table["command"].as_array().unwrap();
        assert!(
            commands[0]
                .as_str()
                .unwrap()
                .contains("pip install componentize-py==")
        );
        assert_eq!(
            commands[1].as_str().unwrap(),
            "componentize-py -d ../../../wit -w carrel:eds/study componentize carrel_study.component -p . -p ../../../sdk/python -o x.wasm"
        );
        assert_eq!(table["workdir"].as_str(), Some("components/studies/x"));
    }

    #[test]
    fn the_worked_example_adds_only_to_measures_its_section_declares() {
        let section: toml::Table = toml::from_str(&render(STUDY_TOML, &vars())).unwrap();
        let study = &section["component"]["x"]["tool"]["carrel"]["study"];
        let declared: Vec<&str> = study["table"]["measures"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m.as_str().unwrap())
            .collect();
        let added: Vec<&str> = APP_PY
            .split("out.add(row, \"")
            .skip(1)
            .map(|rest| rest.split('"').next().unwrap())
            .collect();
        assert_eq!(added, declared);
        // Its tests' harness names the same table and grant.
        let granted: Vec<&str> = study["datasets"]["consultations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap())
            .collect();
        let harness = format!("Harness({declared:?}, granted={granted:?})");
        assert!(TEST_APP_PY.contains(&harness), "{harness}");
    }
}
