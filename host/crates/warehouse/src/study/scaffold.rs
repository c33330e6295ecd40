//! `carrel study new <name>`: writes a study component crate on the study SDK (a worked
//! example, a `consultation` function with its native test, that builds and passes
//! `carrel study try <name> --synthetic` as it is), adds it to the components workspace
//! and, unless told not to, its section (grant, table, limits) to the manifest.

use super::scaffold_error::{MembersError, ScaffoldError};
use std::path::{Component, Path, PathBuf};
use std::process::Command;

const CARGO_TOML: &str = include_str!("templates/Cargo.toml.tmpl");
const LIB_RS: &str = include_str!("templates/lib.rs.tmpl");
pub(super) const STUDY_TOML: &str = include_str!("templates/study.toml.tmpl");

/// The manifest section is also written next to the crate under this name.
pub const SECTION_FILE: &str = "study.toml.example";

pub struct ScaffoldOptions {
    pub name: String,
    /// Where the crate directory is created; default `components/studies` next to the
    /// manifest.
    pub dir: Option<PathBuf>,
    pub manifest: PathBuf,
    pub add_to_manifest: bool,
}

/// What `scaffold` did.
pub struct Scaffolded {
    pub crate_dir: PathBuf,
    pub workspace: PathBuf,
    /// The crate's path in the workspace's `members`.
    pub member: String,
    pub section: String,
    pub manifest_updated: bool,
    /// Why `Cargo.lock` could not be brought up to date, if it could not.
    pub lock_problem: Option<String>,
}

/// A study name is a Spin component id and a Cargo package name: lowercase ASCII letters,
/// digits and single `-` between them, starting with a letter.
pub fn validate_name(name: &str) -> Result<(), String> {
    let valid = name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-')
        && !name.contains("--")
        && name.len() <= 64;
    if !valid {
        return Err(format!(
            "`{name}` is not a valid study name: use lowercase letters, digits and `-` (not \
             doubled, not last), starting with a letter, at most 64 characters, e.g. `flu-by-week`"
        ));
    }
    const TAKEN: &[&str] = &[
        "test",
        "core",
        "std",
        "alloc",
        "proc-macro",
        "self",
        "crate",
    ];
    if TAKEN.contains(&name) || name == "study-sdk" {
        return Err(format!(
            "`{name}` is reserved (a Rust or Cargo name, or the SDK's): choose another"
        ));
    }
    Ok(())
}

/// `flu-by-week` → `FluByWeekStudy`: a type name that cannot clash with the SDK's prelude.
pub(super) fn type_name(name: &str) -> String {
    let mut out: String = name
        .split('-')
        .map(|word| {
            let mut chars = word.chars();
            chars
                .next()
                .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect();
    if out == "Study" {
        out = "ThisStudy".into();
    } else if !out.ends_with("Study") {
        out.push_str("Study");
    }
    out
}

pub(super) fn render(template: &str, vars: &[(&str, &str)]) -> String {
    vars.iter().fold(template.to_owned(), |text, (key, value)| {
        text.replace(&format!("{{{{{key}}}}}"), value)
    })
}

/// `path` relative to `base` (both absolute), with `/` separators.
pub fn relative(path: &Path, base: &Path) -> String {
    let path: Vec<Component> = path.components().collect();
    let base: Vec<Component> = base.components().collect();
    let common = path.iter().zip(&base).take_while(|(a, b)| a == b).count();
    let parts: Vec<String> = std::iter::repeat_n("..".to_owned(), base.len() - common)
        .chain(
            path[common..]
                .iter()
                .map(|c| c.as_os_str().to_string_lossy().into_owned()),
        )
        .collect();
    if parts.is_empty() {
        ".".into()
    } else {
        parts.join("/")
    }
}

/// The nearest directory at or above `dir` whose Cargo.toml has a `[workspace]`.
fn find_workspace(dir: &Path) -> Option<PathBuf> {
    dir.ancestors().find_map(|a| {
        let text = std::fs::read_to_string(a.join("Cargo.toml")).ok()?;
        let table: toml::Table = toml::from_str(&text).ok()?;
        table.contains_key("workspace").then(|| a.to_owned())
    })
}

/// `text` (a Cargo.toml) with `member` added to `[workspace] members`, keeping the rest of
/// the file as it is; `None` when it is listed already.
pub fn add_member(text: &str, member: &str) -> Result<Option<String>, MembersError> {
    let members = |text: &str| -> Result<Vec<String>, MembersError> {
        let table: toml::Table = toml::from_str(text)?;
        Ok(table
            .get("workspace")
            .and_then(|w| w.get("members"))
            .and_then(|m| m.as_array())
            .map(|m| {
                m.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default())
    };
    if members(text)?.iter().any(|m| m == member) {
        return Ok(None);
    }
    let unsupported = || MembersError::NoMembersArray;
    let workspace = text
        .find("[workspace]")
        .ok_or(MembersError::NoWorkspaceTable)?;
    let mut key = None;
    let mut start = workspace;
    for (index, line) in text[workspace..].split_inclusive('\n').enumerate() {
        let trimmed = line.trim_start();
        if index > 0 && trimmed.starts_with('[') {
            break;
        }
        let is_members = trimmed
            .strip_prefix("members")
            .is_some_and(|rest| rest.trim_start().starts_with('='));
        if index > 0 && is_members {
            key = Some(start);
            break;
        }
        start += line.len();
    }
    let key = key.ok_or_else(unsupported)?;
    let open = key + text[key..].find('[').ok_or_else(unsupported)?;
    let close = open + text[open..].find(']').ok_or_else(unsupported)?;
    let inside = &text[open + 1..close];
    let entry = format!("\"{member}\"");
    let new = if !inside.contains('\n') {
        // members = ["a", "b"]
        let body = inside.trim_end();
        let sep = if body.trim().is_empty() {
            ""
        } else if body.ends_with(',') {
            " "
        } else {
            ", "
        };
        format!(
            "{}{sep}{entry}{}",
            &text[..open + 1 + body.len()],
            &text[open + 1 + body.len()..]
        )
    } else {
        // One entry a line: after the last entry, with its indentation and a comma.
        let last = inside
            .split_inclusive('\n')
            .scan(open + 1, |at, line| {
                let start = *at;
                *at += line.len();
                Some((start, line))
            })
            .filter(|(_, line)| line.trim_start().starts_with('"'))
            .last();
        match last {
            Some((start, line)) => {
                let indent = &line[..line.len() - line.trim_start().len()];
                let content = line.trim_end_matches(['\n', '\r']);
                // The value, without a trailing comment: a missing comma goes after it.
                let value = content.split('#').next().unwrap_or("").trim_end();
                let comma = if value.ends_with(',') { "" } else { "," };
                let (value_end, end) = (start + value.len(), start + content.len());
                format!(
                    "{}{comma}{}\n{indent}{entry},{}",
                    &text[..value_end],
                    &text[value_end..end],
                    &text[end..]
                )
            }
            None => format!("{}\n    {entry},{}", &text[..open + 1], &text[open + 1..]),
        }
    };
    if !members(&new)?.iter().any(|m| m == member) {
        return Err(unsupported());
    }
    Ok(Some(new))
}

/// Brings the workspace's Cargo.lock up to date with the new member (its dependencies are
/// the SDK's, already locked), offline first, so the next `--locked` build passes.
fn update_lock(workspace: &Path) -> Option<String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut last = String::new();
    for offline in [true, false] {
        let mut command = Command::new(&cargo);
        command
            .args(["update", "--workspace", "-q"])
            .current_dir(workspace);
        if offline {
            command.arg("--offline");
        }
        match command.output() {
            Ok(out) if out.status.success() => return None,
            Ok(out) => last = String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            Err(e) => last = format!("cannot run {}: {e}", cargo.to_string_lossy()),
        }
    }
    Some(last)
}

/// Where a new study's project goes: the manifest's folder, the folder of study projects
/// (`--dir`, else `components/studies` beside the manifest) and the project's own folder,
/// which must not exist yet; the study's name is checked first.
pub(super) struct ProjectPlace {
    pub manifest_dir: PathBuf,
    pub dir: PathBuf,
    pub project_dir: PathBuf,
}

pub(super) fn project_place(options: &ScaffoldOptions) -> Result<ProjectPlace, ScaffoldError> {
    validate_name(&options.name).map_err(ScaffoldError::BadName)?;
    let manifest_dir = std::path::absolute(&options.manifest)?
        .parent()
        .map(Path::to_owned)
        .unwrap_or_default();
    let dir = match &options.dir {
        Some(dir) => std::path::absolute(dir)?,
        None => manifest_dir.join("components").join("studies"),
    };
    let project_dir = dir.join(&options.name);
    if project_dir.exists() {
        return Err(ScaffoldError::Exists { path: project_dir });
    }
    Ok(ProjectPlace {
        manifest_dir,
        dir,
        project_dir,
    })
}

pub fn scaffold(options: &ScaffoldOptions) -> Result<Scaffolded, ScaffoldError> {
    let name = &options.name;
    let ProjectPlace {
        manifest_dir,
        dir,
        project_dir: crate_dir,
    } = project_place(options)?;
    let workspace =
        find_workspace(&dir).ok_or_else(|| ScaffoldError::NoWorkspace { dir: dir.clone() })?;
    let sdk = workspace.join("study-sdk");
    if !sdk.is_dir() {
        return Err(ScaffoldError::NoSdk { workspace });
    }
    let member = relative(&crate_dir, &workspace);
    let workspace_toml = workspace.join("Cargo.toml");
    let workspace_text =
        std::fs::read_to_string(&workspace_toml).map_err(|source| ScaffoldError::Read {
            path: workspace_toml.clone(),
            source,
        })?;
    let new_workspace_text =
        add_member(&workspace_text, &member).map_err(|source| ScaffoldError::Members {
            path: workspace_toml.clone(),
            member: member.clone(),
            source: Box::new(source),
        })?;

    let crate_name = name.replace('-', "_");
    let source = relative(
        &workspace
            .join("target/wasm32-wasip2/release")
            .join(format!("{crate_name}.wasm")),
        &manifest_dir,
    );
    let expires = (time::OffsetDateTime::now_utc().date() + time::Duration::days(365))
        .format(&time::macros::format_description!("[year]-[month]-[day]"))?;
    let sdk_path = relative(&sdk, &crate_dir);
    let workdir = relative(&workspace, &manifest_dir);
    let type_name = type_name(name);
    let build = format!(
        "command = \"rustup target add wasm32-wasip2 && cargo build --release --target wasm32-wasip2 -p {name}\"\n\
         workdir = \"{workdir}\"\n\
         watch = [\"{member}/src/**/*.rs\", \"{member}/Cargo.toml\"]"
    );
    let vars = [
        ("name", name.as_str()),
        ("type_name", &type_name),
        ("sdk_path", &sdk_path),
        ("source", &source),
        ("expires", &expires),
        ("build", &build),
    ];
    let section = render(STUDY_TOML, &vars);

    // Check the manifest before anything is written.
    let manifest_text = manifest_to_extend(options)?;

    std::fs::create_dir_all(crate_dir.join("src")).map_err(|source| ScaffoldError::Create {
        path: crate_dir.clone(),
        source,
    })?;
    for (file, text) in [
        ("Cargo.toml", render(CARGO_TOML, &vars)),
        ("src/lib.rs", render(LIB_RS, &vars)),
        (SECTION_FILE, section.trim_start().to_owned()),
    ] {
        let path = crate_dir.join(file);
        write(&path, text)?;
    }
    if let Some(text) = new_workspace_text {
        write(&workspace_toml, text)?;
    }
    let lock_problem = update_lock(&workspace);

    let manifest_updated = match manifest_text {
        Some(text) => {
            append_section(&options.manifest, text, &section)?;
            true
        }
        None => false,
    };
    Ok(Scaffolded {
        crate_dir,
        workspace,
        member,
        section,
        manifest_updated,
        lock_problem,
    })
}

/// The manifest's text when the new study's section is to be appended to it: checked to
/// parse and to have no component of the study's name, before anything is written.
pub(super) fn manifest_to_extend(
    options: &ScaffoldOptions,
) -> Result<Option<String>, ScaffoldError> {
    if !options.add_to_manifest {
        return Ok(None);
    }
    manifest_without(&options.manifest, &options.name).map(Some)
}

/// The text of `manifest`, checked to parse and to have no component `name`.
pub(super) fn manifest_without(manifest: &Path, name: &str) -> Result<String, ScaffoldError> {
    let text =
        std::fs::read_to_string(manifest).map_err(|source| ScaffoldError::ManifestUnreadable {
            path: manifest.to_owned(),
            source,
        })?;
    let table: toml::Table =
        toml::from_str(&text).map_err(|source| ScaffoldError::ManifestNotToml {
            path: manifest.to_owned(),
            source: Box::new(source),
        })?;
    if table.get("component").and_then(|c| c.get(name)).is_some() {
        return Err(ScaffoldError::ComponentExists {
            path: manifest.to_owned(),
            name: name.to_owned(),
        });
    }
    Ok(text)
}

/// Writes a file of the new study, naming it when that fails.
pub(super) fn write(path: &Path, text: impl AsRef<[u8]>) -> Result<(), ScaffoldError> {
    std::fs::write(path, text).map_err(|source| ScaffoldError::Write {
        path: path.to_owned(),
        source,
    })
}

/// Writes `text` (the manifest as read) with `section` appended to `manifest`.
pub(super) fn append_section(
    manifest: &Path,
    mut text: String,
    section: &str,
) -> Result<(), ScaffoldError> {
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(section);
    toml::from_str::<toml::Table>(&text)
        .map_err(|e| ScaffoldError::SectionDoesNotParse(Box::new(e)))?;
    write(manifest, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_must_be_lowercase_kebab_case_starting_with_a_letter() {
        for good in ["my-study", "flu2", "a", "ili-by-week-2"] {
            assert!(validate_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "My-study",
            "2flu",
            "-flu",
            "flu-",
            "flu--week",
            "flu_week",
            "flu week",
            "flu/x",
            "test",
            "study-sdk",
        ] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn type_names_never_clash_with_the_prelude() {
        assert_eq!(type_name("my-study"), "MyStudy");
        assert_eq!(type_name("flu"), "FluStudy");
        assert_eq!(type_name("study"), "ThisStudy");
        assert_eq!(type_name("result"), "ResultStudy");
    }

    #[test]
    fn a_member_is_added_after_the_last_one_keeping_the_layout() {
        let text = "# comment\n[workspace]\nresolver = \"3\"\nmembers = [\n    \"welcome\",\n    \"studies/activity\" # last\n]\n\n[workspace.package]\nedition = \"2024\"\n";
        let new = add_member(text, "studies/my-study").unwrap().unwrap();
        assert_eq!(
            new,
            "# comment\n[workspace]\nresolver = \"3\"\nmembers = [\n    \"welcome\",\n    \"studies/activity\", # last\n    \"studies/my-study\",\n]\n\n[workspace.package]\nedition = \"2024\"\n"
        );
        assert!(add_member(&new, "studies/my-study").unwrap().is_none());
        let inline = "[workspace]\nmembers = [\"a\", \"b\"]\n";
        assert_eq!(
            add_member(inline, "c").unwrap().unwrap(),
            "[workspace]\nmembers = [\"a\", \"b\", \"c\"]\n"
        );
        assert_eq!(
            add_member("[workspace]\nmembers = []\n", "c")
                .unwrap()
                .unwrap(),
            "[workspace]\nmembers = [\"c\"]\n"
        );
        assert!(add_member("[workspace]\nresolver = \"3\"\n", "c").is_err());
    }

    #[test]
    fn relative_paths_climb_to_the_common_ancestor() {
        assert_eq!(
            relative(
                Path::new("/r/components/study-sdk"),
                Path::new("/r/components/studies/x")
            ),
            "../../study-sdk"
        );
        assert_eq!(
            relative(Path::new("/r/components"), Path::new("/r")),
            "components"
        );
        assert_eq!(relative(Path::new("/r"), Path::new("/r")), ".");
    }

    #[test]
    fn the_templates_have_no_placeholder_left() {
        let vars = [
            ("name", "x"),
            ("type_name", "XStudy"),
            ("sdk_path", "../../study-sdk"),
            ("source", "s.wasm"),
            ("expires", "2099-01-01"),
            ("build", "command = \"true\""),
        ];
        for template in [CARGO_TOML, LIB_RS, STUDY_TOML] {
            assert!(!render(template, &vars).contains("{{"), "{template}");
        }
        let section: toml::Table = toml::from_str(&render(STUDY_TOML, &vars)).unwrap();
        let study = &section["component"]["x"]["tool"]["carrel"]["study"];
        let mut tool: super::super::manifest::StudyTool = study.clone().try_into().unwrap();
        tool.validate("x").unwrap();
    }

    #[test]
    fn the_worked_example_adds_only_to_measures_its_section_declares() {
        let section = render(STUDY_TOML, &[("build", "command = \"true\"")]);
        let section: toml::Table =
            toml::from_str(section.replace("{{", "").replace("}}", "").as_str()).unwrap();
        let study = section["component"]
            .as_table()
            .and_then(|c| c.values().next())
            .map(|c| &c["tool"]["carrel"]["study"])
            .unwrap();
        let declared: Vec<&str> = study["table"]["measures"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m.as_str().unwrap())
            .collect();
        let added: Vec<&str> = LIB_RS
            .split("out.add(row, \"")
            .skip(1)
            .map(|rest| rest.split('"').next().unwrap())
            .collect();
        assert_eq!(added, declared);
        // Its test's harness names the same table and grant.
        let granted = study["datasets"]["consultations"].as_array().unwrap();
        let harness = format!(
            "Harness::new(&{declared:?}).granting(&{:?})",
            granted
                .iter()
                .map(|c| c.as_str().unwrap())
                .collect::<Vec<_>>()
        );
        assert!(LIB_RS.contains(&harness), "{harness}");
    }
}
