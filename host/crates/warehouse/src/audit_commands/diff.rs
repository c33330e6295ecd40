//! `carrel audit diff OLD.json NEW.json`: what changed between two capability reports.
//!
//! Grants and approvals are compared as flattened `path: value` items (a list grant is one
//! item per element), so an added study column reads
//! `+ grant study.datasets.consultations: diagnoses`; imports, exports and findings by name.

use super::report::{self, ComponentReport, Report};
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::PathBuf;

/// One change. `component` is empty for a change of the application itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    pub component: String,
    /// `added`, `removed` or `changed`.
    pub change: &'static str,
    /// `component`, `sha256`, `manifest_sha256`, `grant`, `import`, `export`, `finding`,
    /// `approval` or `application`.
    pub area: &'static str,
    /// What changed within the area: a grant path, an import name, …
    pub item: String,
    pub old: Option<String>,
    pub new: Option<String>,
}

/// Why a report file cannot be compared; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum ReportFileError {
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not JSON", path.display())]
    NotJson {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{} is not a report of `carrel audit manifest --format json`", path.display())]
    NotAReport { path: PathBuf },
    #[error("{} has format_version {found}; this carrel reads version {}", path.display(), report::FORMAT_VERSION)]
    Version { path: PathBuf, found: Value },
    #[error("reading {}", path.display())]
    Fields {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

/// Reads a report written by `carrel audit manifest --format json`.
pub fn read(path: &std::path::Path) -> Result<Report, ReportFileError> {
    let path_buf = || path.to_owned();
    let text = std::fs::read_to_string(path).map_err(|source| ReportFileError::Read {
        path: path_buf(),
        source,
    })?;
    let value: Value = serde_json::from_str(&text).map_err(|source| ReportFileError::NotJson {
        path: path_buf(),
        source,
    })?;
    if value["format"] != report::FORMAT {
        return Err(ReportFileError::NotAReport { path: path_buf() });
    }
    if value["format_version"] != report::FORMAT_VERSION {
        return Err(ReportFileError::Version {
            path: path_buf(),
            found: value["format_version"].clone(),
        });
    }
    serde_json::from_value(value).map_err(|source| ReportFileError::Fields {
        path: path_buf(),
        source,
    })
}

pub fn diff(old: &Report, new: &Report) -> Vec<Change> {
    let mut changes = Vec::new();
    let application = |r: &Report| serde_json::to_value(&r.application).expect("serialises");
    compare_items(
        &mut changes,
        "",
        "application",
        flatten(&application(old)),
        flatten(&application(new)),
    );
    let by_id = |r: &'_ Report| -> BTreeMap<String, ComponentReport> {
        r.components
            .iter()
            .map(|c| (c.id.clone(), c.clone()))
            .collect()
    };
    let (old_components, new_components) = (by_id(old), by_id(new));
    let ids: BTreeSet<&String> = old_components.keys().chain(new_components.keys()).collect();
    for id in ids {
        match (old_components.get(id), new_components.get(id)) {
            (Some(o), Some(n)) => component(&mut changes, o, n),
            (o, n) => changes.push(Change {
                component: id.clone(),
                change: if o.is_some() { "removed" } else { "added" },
                area: "component",
                item: id.clone(),
                old: o.map(|c| hash_text(&c.sha256)),
                new: n.map(|c| hash_text(&c.sha256)),
            }),
        }
    }
    changes
}

fn hash_text(sha256: &Option<String>) -> String {
    sha256.clone().unwrap_or_else(|| "not built".into())
}

fn component(changes: &mut Vec<Change>, old: &ComponentReport, new: &ComponentReport) {
    let id = &old.id;
    for (area, o, n) in [
        ("sha256", &old.sha256, &new.sha256),
        (
            "manifest_sha256",
            &old.manifest_sha256,
            &new.manifest_sha256,
        ),
    ] {
        if o != n {
            changes.push(Change {
                component: id.clone(),
                change: "changed",
                area,
                item: String::new(),
                old: Some(hash_text(o)),
                new: Some(hash_text(n)),
            });
        }
    }
    let grants =
        |c: &ComponentReport| flatten(&serde_json::to_value(&c.grants).expect("serialises"));
    compare_items(changes, id, "grant", grants(old), grants(new));
    let names = |items: Vec<String>| -> Items {
        items
            .into_iter()
            .map(|n| (n, (false, BTreeSet::new())))
            .collect()
    };
    let imports = |c: &ComponentReport| names(c.imports.iter().map(|i| i.name.clone()).collect());
    compare_items(changes, id, "import", imports(old), imports(new));
    compare_items(
        changes,
        id,
        "export",
        names(old.exports.clone()),
        names(new.exports.clone()),
    );
    let findings = |c: &ComponentReport| {
        names(
            c.findings
                .iter()
                .map(|f| format!("{} {}", f.kind.label(), f.subject))
                .collect(),
        )
    };
    compare_items(changes, id, "finding", findings(old), findings(new));
    let approval =
        |c: &ComponentReport| flatten(&serde_json::to_value(&c.approval).expect("serialises"));
    compare_items(changes, id, "approval", approval(old), approval(new));
}

/// Path → (is a single scalar, its values). A path with no values is present (a name).
type Items = BTreeMap<String, (bool, BTreeSet<String>)>;

/// Flattens JSON into `a.b.c` paths. Nulls and empty lists vanish, list elements become
/// values of their list's path, and scalars are single values.
fn flatten(value: &Value) -> Items {
    fn walk(path: &str, value: &Value, items: &mut Items) {
        let join = |key: &str| {
            if path.is_empty() {
                key.to_owned()
            } else {
                format!("{path}.{key}")
            }
        };
        match value {
            Value::Null => {}
            Value::Object(map) => {
                for (k, v) in map {
                    walk(&join(k), v, items);
                }
            }
            Value::Array(elements) => {
                for e in elements {
                    match e {
                        Value::Object(_) | Value::Array(_) => {
                            walk(path, &Value::String(e.to_string()), items)
                        }
                        scalar => {
                            let entry = items.entry(path.to_owned()).or_default();
                            entry.1.insert(scalar_text(scalar));
                        }
                    }
                }
            }
            scalar => {
                items.insert(
                    path.to_owned(),
                    (true, BTreeSet::from([scalar_text(scalar)])),
                );
            }
        }
    }
    let mut items = Items::new();
    walk("", value, &mut items);
    items
}

fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn compare_items(
    changes: &mut Vec<Change>,
    component: &str,
    area: &'static str,
    old: Items,
    new: Items,
) {
    let paths: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    let empty = (false, BTreeSet::new());
    for path in paths {
        let (o, n) = (old.get(path), new.get(path));
        let change = |change, value: Option<&String>| Change {
            component: component.to_owned(),
            change,
            area,
            item: path.clone(),
            old: if change == "removed" {
                value.cloned()
            } else {
                None
            },
            new: if change == "added" {
                value.cloned()
            } else {
                None
            },
        };
        if o.is_none() && n.is_some_and(|n| n.1.is_empty()) {
            changes.push(change("added", None));
            continue;
        }
        if n.is_none() && o.is_some_and(|o| o.1.is_empty()) {
            changes.push(change("removed", None));
            continue;
        }
        let (o, n) = (o.unwrap_or(&empty), n.unwrap_or(&empty));
        if o.0 && n.0 && o.1 != n.1 {
            changes.push(Change {
                component: component.to_owned(),
                change: "changed",
                area,
                item: path.clone(),
                old: o.1.first().cloned(),
                new: n.1.first().cloned(),
            });
            continue;
        }
        for removed in o.1.difference(&n.1) {
            changes.push(change("removed", Some(removed)));
        }
        for added in n.1.difference(&o.1) {
            changes.push(change("added", Some(added)));
        }
    }
}

/// Prints the changes grouped by component, `+` added, `-` removed, `~` changed.
pub fn text(changes: &[Change], out: &mut dyn Write) -> std::io::Result<()> {
    let mut current: Option<&str> = None;
    for c in changes {
        let sign = match c.change {
            "added" => "+",
            "removed" => "-",
            _ => "~",
        };
        if c.area == "component" {
            let hash = c
                .new
                .as_ref()
                .or(c.old.as_ref())
                .cloned()
                .unwrap_or_default();
            writeln!(out, "{sign} component {} (sha256 {hash})", c.component)?;
            current = None;
            continue;
        }
        if current != Some(c.component.as_str()) {
            if c.component.is_empty() {
                writeln!(out, "application")?;
            } else {
                writeln!(out, "component {}", c.component)?;
            }
            current = Some(&c.component);
        }
        let what = if c.item.is_empty() {
            c.area.to_owned()
        } else {
            format!("{} {}", c.area, c.item)
        };
        match (c.change, &c.old, &c.new) {
            ("changed", Some(o), Some(n)) => writeln!(out, "  ~ {what}: {o} -> {n}")?,
            (_, Some(v), _) | (_, None, Some(v)) => writeln!(out, "  {sign} {what}: {v}")?,
            _ => writeln!(out, "  {sign} {what}")?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit_commands::classify::classify;
    use crate::audit_commands::report::{
        ApplicationView, DisclosureGrant, FORMAT, FORMAT_VERSION, Grants, StudyGrant,
    };

    fn study(columns: &[&str]) -> ComponentReport {
        ComponentReport {
            id: "ili".into(),
            source: "ili.wasm".into(),
            sha256: Some("aa".into()),
            manifest_sha256: Some("m1".into()),
            grants: Grants {
                study: Some(StudyGrant {
                    kind: "counts".into(),
                    model: None,
                    fit: None,
                    title: "ILI".into(),
                    purpose: "surveillance".into(),
                    legal_basis: "decision 1".into(),
                    principal_investigator: "Dr A".into(),
                    unit: "consultation".into(),
                    datasets: [(
                        "consultations".to_owned(),
                        columns.iter().map(|c| c.to_string()).collect(),
                    )]
                    .into(),
                    params: Default::default(),
                    table: Default::default(),
                    disclosure: DisclosureGrant {
                        min_count: 8,
                        rounding: 5,
                        max_rows: 5000,
                        max_bytes: 1 << 24,
                        noise_scale: 3.0,
                        epsilon_budget: 2000.0,
                        epsilon_per_release: Some(16.0),
                    },
                    time_limit_seconds: 60,
                    memory_limit_mb: 256,
                    expires: "2099-12-31".into(),
                }),
                ..Grants::default()
            },
            imports: vec![classify("carrel:eds/log@0.1.0")],
            exports: vec!["carrel:eds/study-entry@0.1.0".into()],
            findings: vec![],
            approval: None,
        }
    }

    fn report(components: Vec<ComponentReport>) -> Report {
        Report {
            format: FORMAT.into(),
            format_version: FORMAT_VERSION,
            application: ApplicationView {
                name: "app".into(),
                version: None,
            },
            manifest: "spin.toml".into(),
            warehouse: None,
            components,
        }
    }

    fn lines(changes: &[Change]) -> Vec<String> {
        let mut out = Vec::new();
        text(changes, &mut out).unwrap();
        String::from_utf8(out)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn diff_of_identical_reports_is_empty() {
        let r = report(vec![study(&["date"])]);
        assert!(diff(&r, &r.clone()).is_empty());
    }

    #[test]
    fn diff_shows_an_added_study_column_and_the_new_manifest_hash() {
        let old = report(vec![study(&["date"])]);
        let mut widened = study(&["date", "diagnoses"]);
        widened.manifest_sha256 = Some("m2".into());
        let changes = diff(&old, &report(vec![widened]));
        assert_eq!(
            lines(&changes),
            [
                "component ili",
                "  ~ manifest_sha256: m1 -> m2",
                "  + grant study.datasets.consultations: diagnoses",
            ]
        );
    }

    #[test]
    fn diff_shows_components_imports_hashes_and_scalar_grants_that_changed() {
        let mut changed = study(&["date"]);
        changed.sha256 = Some("bb".into());
        changed
            .imports
            .push(classify("wasi:http/outgoing-handler@0.2.0"));
        changed.grants.study.as_mut().unwrap().expires = "2100-01-01".into();
        changed.grants.key_value_stores = vec!["default".into()];
        let mut other = study(&["date"]);
        other.id = "activity".into();
        let changes = diff(
            &report(vec![study(&["date"])]),
            &report(vec![other, changed]),
        );
        assert_eq!(
            lines(&changes),
            [
                "+ component activity (sha256 aa)",
                "component ili",
                "  ~ sha256: aa -> bb",
                "  + grant key_value_stores: default",
                "  ~ grant study.expires: 2099-12-31 -> 2100-01-01",
                "  + import wasi:http/outgoing-handler@0.2.0",
            ]
        );
        let back = diff(&report(vec![study(&["date"])]), &report(vec![]));
        assert_eq!(lines(&back), ["- component ili (sha256 aa)"]);
    }
}
