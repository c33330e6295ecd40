//! The Spin application manifest, version 2, parsed strictly.
//!
//! Every table denies unknown fields, as Spin does, so a typo in `spin.toml` is an error
//! that names the file, the line and the field instead of a silently ignored setting.
//! carrel's own settings live where Spin lets tools put theirs: `[component.<id>.tool.*]`,
//! `[application.tool.*]`, and custom trigger types such as `[[trigger.study]]`; those are
//! kept as raw TOML for the capabilities that read them.

mod routes;
mod runnable;
mod variables;

pub use routes::{
    PathError, Route, RouteError, RouteMatch, RoutePattern, Router, check_request_path,
};
pub use variables::{
    ResolvedVariables, VariableError, check_variable_name, resolve_component_variables,
    resolve_outbound_hosts,
};

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A manifest that could not be read or does not describe a valid application.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: {message}")]
    Syntax {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub spin_manifest_version: u32,
    pub application: Application,
    #[serde(default)]
    pub variables: BTreeMap<String, Variable>,
    #[serde(default)]
    pub trigger: BTreeMap<String, Vec<toml::Table>>,
    #[serde(default)]
    pub component: BTreeMap<String, Component>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Application {
    pub name: String,
    pub version: Option<String>,
    pub description: Option<String>,
    #[serde(default)]
    pub authors: Vec<String>,
    pub targets: Option<Vec<String>>,
    /// Application-level trigger settings (`[application.trigger.http]`), kept raw.
    #[serde(default)]
    pub trigger: BTreeMap<String, toml::Table>,
    #[serde(default)]
    pub tool: BTreeMap<String, toml::Table>,
}

/// An application variable: `{ default = "…" }`, `{ required = true }`, optionally `secret`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Variable {
    pub default: Option<String>,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub secret: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Component {
    pub description: Option<String>,
    pub source: ComponentSource,
    #[serde(default)]
    pub files: Vec<FileMount>,
    #[serde(default)]
    pub exclude_files: Vec<String>,
    #[serde(default)]
    pub allowed_outbound_hosts: Vec<String>,
    #[serde(default)]
    pub key_value_stores: Vec<String>,
    #[serde(default)]
    pub sqlite_databases: Vec<String>,
    #[serde(default)]
    pub ai_models: Vec<String>,
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
    pub build: Option<BuildConfig>,
    #[serde(default)]
    pub tool: BTreeMap<String, toml::Table>,
    #[serde(default)]
    pub dependencies_inherit_configuration: bool,
    #[serde(default)]
    pub dependencies: toml::Table,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum ComponentSource {
    Local(String),
    Remote(toml::Table),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum FileMount {
    Pattern(String),
    Placement(FilePlacement),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilePlacement {
    pub source: String,
    pub destination: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildConfig {
    pub command: BuildCommand,
    pub workdir: Option<String>,
    #[serde(default)]
    pub watch: Vec<String>,
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum BuildCommand {
    One(String),
    Many(Vec<String>),
}

impl BuildCommand {
    pub fn commands(&self) -> Vec<&str> {
        match self {
            BuildCommand::One(c) => vec![c.as_str()],
            BuildCommand::Many(cs) => cs.iter().map(String::as_str).collect(),
        }
    }
}

/// One `[[trigger.http]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpTrigger {
    pub id: Option<String>,
    pub route: HttpRoute,
    pub component: String,
    pub executor: Option<toml::Table>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum HttpRoute {
    Path(String),
    Private(PrivateRoute),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrivateRoute {
    pub private: bool,
}

/// A parsed manifest together with where it came from.
#[derive(Debug, Clone)]
pub struct LoadedManifest {
    pub path: PathBuf,
    pub manifest: Manifest,
    pub http_triggers: Vec<HttpTrigger>,
    /// The text it was parsed from, for the lines of errors found later.
    text: String,
}

impl LoadedManifest {
    /// The directory relative paths in the manifest are resolved against.
    pub fn base_dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("."))
    }

    pub fn component_source_path(&self, id: &str) -> Result<PathBuf, ManifestError> {
        let component = &self.manifest.component[id];
        match &component.source {
            ComponentSource::Local(p) => Ok(self.base_dir().join(p)),
            ComponentSource::Remote(_) => Err(self.invalid(format!(
                "component `{id}`: only local `source = \"path.wasm\"` is supported (no registry or URL sources on a closed network)"
            ))),
        }
    }

    fn invalid(&self, message: String) -> ManifestError {
        ManifestError::Invalid {
            path: self.path.clone(),
            message,
        }
    }
}

/// Reads and validates `path`.
pub fn load(path: &Path) -> Result<LoadedManifest, ManifestError> {
    let text = std::fs::read_to_string(path).map_err(|source| ManifestError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse(path, &text)
}

/// Parses manifest text; `path` is used in error messages and to resolve relative paths.
pub fn parse(path: &Path, text: &str) -> Result<LoadedManifest, ManifestError> {
    let syntax = |message: String, span: Option<std::ops::Range<usize>>| {
        let (line, column) = span
            .map(|s| line_and_column(text, s.start))
            .unwrap_or((1, 1));
        ManifestError::Syntax {
            path: path.to_owned(),
            line,
            column,
            message,
        }
    };
    let manifest: Manifest =
        toml::from_str(text).map_err(|e| syntax(e.message().to_owned(), e.span()))?;
    let invalid = |message: String| ManifestError::Invalid {
        path: path.to_owned(),
        message,
    };
    if manifest.spin_manifest_version != 2 {
        return Err(invalid(format!(
            "spin_manifest_version = {} is not supported: carrel reads Spin manifest version 2",
            manifest.spin_manifest_version
        )));
    }
    for name in manifest.variables.keys() {
        variables::check_variable_name(name).map_err(|e| invalid(e.to_string()))?;
    }
    // Trigger tables are kept raw because custom trigger types belong to later capabilities;
    // the HTTP ones are read strictly here, with the line of the offending entry.
    let mut http_triggers = Vec::new();
    for (index, table) in manifest
        .trigger
        .get("http")
        .into_iter()
        .flatten()
        .enumerate()
    {
        let trigger: HttpTrigger = table.clone().try_into().map_err(|e: toml::de::Error| {
            let header = trigger_line(text, "http", index);
            let line = unknown_field(e.message())
                .and_then(|field| field_line(text, header, field))
                .unwrap_or(header);
            ManifestError::Syntax {
                path: path.to_owned(),
                line,
                column: 1,
                message: format!("[[trigger.http]] number {}: {}", index + 1, e.message()),
            }
        })?;
        if !manifest.component.contains_key(&trigger.component) {
            return Err(invalid(format!(
                "[[trigger.http]] route {} names component `{}`, which has no [component.{}] table",
                trigger.route.describe(),
                trigger.component,
                trigger.component
            )));
        }
        http_triggers.push(trigger);
    }
    for (kind, triggers) in &manifest.trigger {
        for (index, table) in triggers.iter().enumerate() {
            if let Some(component) = table.get("component").and_then(|c| c.as_str())
                && !manifest.component.contains_key(component)
            {
                return Err(ManifestError::Syntax {
                    path: path.to_owned(),
                    line: trigger_line(text, kind, index),
                    column: 1,
                    message: format!(
                        "[[trigger.{kind}]] names component `{component}`, which has no [component.{component}] table"
                    ),
                });
            }
        }
    }
    for (id, component) in &manifest.component {
        for (name, template) in &component.variables {
            variables::check_variable_name(name)
                .map_err(|e| invalid(format!("[component.{id}.variables]: {e}")))?;
            for reference in variables::template_references(template)
                .map_err(|e| invalid(format!("[component.{id}.variables] {name}: {e}")))?
            {
                if !manifest.variables.contains_key(&reference) {
                    return Err(invalid(format!(
                        "[component.{id}.variables] {name} refers to `{{{{ {reference} }}}}`, which is not declared in [variables]"
                    )));
                }
            }
        }
        for entry in &component.allowed_outbound_hosts {
            for reference in variables::template_references(entry)
                .map_err(|e| invalid(format!("[component.{id}] allowed_outbound_hosts: {e}")))?
            {
                if !component.variables.contains_key(&reference)
                    && !manifest.variables.contains_key(&reference)
                {
                    return Err(invalid(format!(
                        "[component.{id}] allowed_outbound_hosts entry `{entry}` refers to `{{{{ {reference} }}}}`, which is neither a variable of the component nor declared in [variables]"
                    )));
                }
            }
        }
    }
    Ok(LoadedManifest {
        path: path.to_owned(),
        manifest,
        http_triggers,
        text: text.to_owned(),
    })
}

impl HttpRoute {
    pub fn describe(&self) -> String {
        match self {
            HttpRoute::Path(p) => format!("`{p}`"),
            HttpRoute::Private(_) => "{ private = true }".to_owned(),
        }
    }
}

fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rsplit('\n')
        .next()
        .map(|l| l.chars().count())
        .unwrap_or(0)
        + 1;
    (line, column)
}

/// The line of the `index`-th `[[trigger.<kind>]]` header, for errors found after parsing.
fn trigger_line(text: &str, kind: &str, index: usize) -> usize {
    let header = format!("[[trigger.{kind}]]");
    text.lines()
        .enumerate()
        .filter(|(_, l)| l.trim_start().starts_with(&header))
        .nth(index)
        .map(|(n, _)| n + 1)
        .unwrap_or(1)
}

/// The field serde named in an "unknown field `x`" message.
fn unknown_field(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("unknown field `")?;
    rest.split('`').next()
}

/// The line, at or after `header_line` and before the next table header, that sets `field`.
fn field_line(text: &str, header_line: usize, field: &str) -> Option<usize> {
    text.lines()
        .enumerate()
        .skip(header_line)
        .take_while(|(_, l)| !l.trim_start().starts_with('['))
        .find(|(_, l)| {
            l.trim_start()
                .strip_prefix(field)
                .is_some_and(|r| r.trim_start().starts_with('='))
        })
        .map(|(n, _)| n + 1)
}

#[cfg(test)]
mod tests;
