//! What a runtime does not run must not pass in silence: a trigger type it has no trigger
//! for, an HTTP executor other than Spin's, Serverless AI models, component dependencies,
//! application-level trigger settings. Each is an error naming it and its line, found
//! before anything starts.

use super::{LoadedManifest, ManifestError, field_line, trigger_line};

impl LoadedManifest {
    /// Checks that everything the manifest asks for is something a runtime running these
    /// `trigger_types` runs.
    pub fn check_runnable(&self, trigger_types: &[&str]) -> Result<(), ManifestError> {
        let runs = trigger_types
            .iter()
            .map(|t| format!("`{t}`"))
            .collect::<Vec<_>>()
            .join(" and ");
        for (kind, triggers) in &self.manifest.trigger {
            if !trigger_types.contains(&kind.as_str()) && !triggers.is_empty() {
                return Err(self.at(
                    trigger_line(&self.text, kind, 0),
                    format!(
                        "[[trigger.{kind}]]: carrel does not run `{kind}` triggers (it runs {runs})"
                    ),
                ));
            }
        }
        for (index, trigger) in self.http_triggers.iter().enumerate() {
            let Some(executor) = &trigger.executor else {
                continue;
            };
            let kind = executor.get("type").and_then(|t| t.as_str()).unwrap_or("");
            if kind != "spin" {
                let header = trigger_line(&self.text, "http", index);
                return Err(self.at(
                    field_line(&self.text, header, "executor").unwrap_or(header),
                    format!(
                        "[[trigger.http]] route {}: executor type `{kind}` is not run by carrel (only the default, `spin`)",
                        trigger.route.describe()
                    ),
                ));
            }
        }
        if let Some((kind, _)) = self
            .manifest
            .application
            .trigger
            .iter()
            .find(|(_, settings)| !settings.is_empty())
        {
            return Err(self.at(
                table_line(&self.text, &format!("[application.trigger.{kind}]")),
                format!("[application.trigger.{kind}]: carrel runs no application-level trigger settings"),
            ));
        }
        for (id, component) in &self.manifest.component {
            let header = table_line(&self.text, &format!("[component.{id}]"));
            let line = |field: &str| field_line(&self.text, header, field).unwrap_or(header);
            if !component.ai_models.is_empty() {
                return Err(self.at(
                    line("ai_models"),
                    format!(
                        "[component.{id}] ai_models = {:?}: carrel does not run Serverless AI models",
                        component.ai_models
                    ),
                ));
            }
            if !component.dependencies.is_empty() {
                return Err(self.at(
                    table_line(&self.text, &format!("[component.{id}.dependencies]"))
                        .max(line("dependencies")),
                    format!(
                        "[component.{id}] dependencies: carrel does not compose component dependencies"
                    ),
                ));
            }
        }
        Ok(())
    }

    fn at(&self, line: usize, message: String) -> ManifestError {
        ManifestError::Syntax {
            path: self.path.clone(),
            line,
            column: 1,
            message,
        }
    }
}

/// The line of a table header, or 1 when it is written another way (dotted keys, quotes).
fn table_line(text: &str, header: &str) -> usize {
    text.lines()
        .position(|l| l.trim_start().starts_with(header))
        .map(|n| n + 1)
        .unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use crate::parse;
    use std::path::Path;

    const BASE: &str = r#"spin_manifest_version = 2

[application]
name = "demo"

[[trigger.http]]
route = "/..."
component = "web"

[component.web]
source = "web.wasm"
"#;

    fn check(text: &str) -> Result<(), String> {
        parse(Path::new("spin.toml"), text)
            .map_err(|e| e.to_string())?
            .check_runnable(&["http", "study"])
            .map_err(|e| e.to_string())
    }

    #[test]
    fn http_and_custom_triggers_carrel_runs_pass() {
        check(BASE).unwrap();
        check(&format!("{BASE}\n[[trigger.study]]\ncomponent = \"web\"\n")).unwrap();
    }

    #[test]
    fn a_trigger_type_carrel_does_not_run_is_named_with_its_line() {
        let text =
            format!("{BASE}\n[[trigger.redis]]\nchannel = \"messages\"\ncomponent = \"web\"\n");
        let err = check(&text).unwrap_err();
        let line = text.lines().position(|l| l == "[[trigger.redis]]").unwrap() + 1;
        assert!(err.contains(&format!("spin.toml:{line}:")), "{err}");
        assert!(err.contains("`redis` triggers"), "{err}");
    }

    #[test]
    fn ai_models_dependencies_executors_and_application_trigger_settings_are_refused() {
        let err = check(&format!("{BASE}ai_models = [\"llama2-chat\"]\n")).unwrap_err();
        assert!(
            err.contains("ai_models") && err.contains("spin.toml:12:"),
            "{err}"
        );
        let err = check(&format!(
            "{BASE}\n[component.web.dependencies]\n\"example:dep/api\" = {{ path = \"dep.wasm\" }}\n"
        ))
        .unwrap_err();
        assert!(err.contains("dependencies"), "{err}");
        let err = check(&BASE.replace(
            "component = \"web\"",
            "component = \"web\"\nexecutor = { type = \"wagi\" }",
        ))
        .unwrap_err();
        assert!(
            err.contains("`wagi`") && err.contains("spin.toml:9:"),
            "{err}"
        );
        check(&BASE.replace(
            "component = \"web\"",
            "component = \"web\"\nexecutor = { type = \"spin\" }",
        ))
        .unwrap();
        let err = check(&BASE.replace(
            "name = \"demo\"",
            "name = \"demo\"\n\n[application.trigger.redis]\naddress = \"redis://localhost\"",
        ))
        .unwrap_err();
        assert!(err.contains("[application.trigger.redis]"), "{err}");
    }
}
