//! Application variables: declared in `[variables]`, overridden by `SPIN_VARIABLE_<NAME>`
//! environment variables, and templated (`{{ name }}`) into component variables.

use super::Manifest;
use std::collections::BTreeMap;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VariableError {
    #[error(
        "invalid variable name `{0}`: use lower-case letters, digits and `_`, starting with a letter"
    )]
    InvalidName(String),
    #[error("unterminated `{{{{` in template `{0}`")]
    Unterminated(String),
    #[error("application variable `{0}` is required but has no value: set SPIN_VARIABLE_{upper}", upper = .0.to_uppercase())]
    Missing(String),
    #[error("component `{component}`: `{template}` refers to `{name}`, which has no value")]
    Unresolved {
        component: String,
        template: String,
        name: String,
    },
}

pub fn check_variable_name(name: &str) -> Result<(), VariableError> {
    let mut chars = name.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !name.ends_with('_')
        && !name.contains("__");
    if ok {
        Ok(())
    } else {
        Err(VariableError::InvalidName(name.to_owned()))
    }
}

enum Piece<'a> {
    Text(&'a str),
    Reference(String),
}

fn pieces(template: &str) -> Result<Vec<Piece<'_>>, VariableError> {
    let mut out = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push(Piece::Text(&rest[..start]));
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| VariableError::Unterminated(template.to_owned()))?;
        let name = after[..end].trim();
        check_variable_name(name)?;
        out.push(Piece::Reference(name.to_owned()));
        rest = &after[end + 2..];
    }
    out.push(Piece::Text(rest));
    Ok(out)
}

/// The application variables a template refers to.
pub fn template_references(template: &str) -> Result<Vec<String>, VariableError> {
    Ok(pieces(template)?
        .into_iter()
        .filter_map(|p| match p {
            Piece::Reference(r) => Some(r),
            Piece::Text(_) => None,
        })
        .collect())
}

/// The value of every application variable, after environment overrides.
fn application_values(
    manifest: &Manifest,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<BTreeMap<String, String>, VariableError> {
    let mut values = BTreeMap::new();
    for (name, decl) in &manifest.variables {
        let value =
            env(&format!("SPIN_VARIABLE_{}", name.to_uppercase())).or_else(|| decl.default.clone());
        match value {
            Some(v) => {
                values.insert(name.clone(), v);
            }
            None if decl.required => return Err(VariableError::Missing(name.clone())),
            None => {}
        }
    }
    Ok(values)
}

/// `template` with each reference replaced by its value from `lookup`; or the name of a
/// reference without one (the last, when several lack one).
fn expand<'v>(
    template: &str,
    lookup: impl Fn(&str) -> Option<&'v str>,
) -> Result<Result<String, String>, VariableError> {
    let mut value = String::new();
    let mut missing = None;
    for piece in pieces(template)? {
        match piece {
            Piece::Text(t) => value.push_str(t),
            Piece::Reference(r) => match lookup(&r) {
                Some(v) => value.push_str(v),
                None => missing = Some(r),
            },
        }
    }
    Ok(match missing {
        Some(r) => Err(r),
        None => Ok(value),
    })
}

/// Each component's variables with templates expanded, resolved once when the app starts.
pub type ResolvedVariables = BTreeMap<String, BTreeMap<String, Result<String, String>>>;

/// Resolves every component's variables. A component variable whose template refers to an
/// application variable without a value is kept as an error, which the guest receives as
/// `undefined` when it asks for it; a required application variable without a value stops
/// the app at start.
pub fn resolve_component_variables(
    manifest: &Manifest,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<ResolvedVariables, VariableError> {
    let app = application_values(manifest, env)?;
    let mut out = BTreeMap::new();
    for (id, component) in &manifest.component {
        let mut vars = BTreeMap::new();
        for (name, template) in &component.variables {
            let resolved = expand(template, |r| app.get(r).map(String::as_str))?
                .map_err(|r| format!("application variable `{r}` has no value"));
            vars.insert(name.clone(), resolved);
        }
        out.insert(id.clone(), vars);
    }
    Ok(out)
}

/// Each component's `allowed_outbound_hosts`, with `{{ name }}` templates expanded: a name
/// is one of the component's variables, or else an application variable. An entry that
/// refers to a variable without a value stops the app at start: a grant is never guessed.
pub fn resolve_outbound_hosts(
    manifest: &Manifest,
    env: &dyn Fn(&str) -> Option<String>,
    components: &ResolvedVariables,
) -> Result<BTreeMap<String, Vec<String>>, VariableError> {
    let app = application_values(manifest, env)?;
    let mut out = BTreeMap::new();
    for (id, component) in &manifest.component {
        let own = components.get(id);
        let mut hosts = Vec::with_capacity(component.allowed_outbound_hosts.len());
        for template in &component.allowed_outbound_hosts {
            let value = expand(template, |r| match own.and_then(|vars| vars.get(r)) {
                Some(resolved) => resolved.as_deref().ok(),
                None => app.get(r).map(String::as_str),
            })?
            .map_err(|name| VariableError::Unresolved {
                component: id.clone(),
                template: template.clone(),
                name,
            })?;
            hosts.push(value);
        }
        out.insert(id.clone(), hosts);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variable_names_follow_spin_rules() {
        assert!(check_variable_name("api_key2").is_ok());
        for bad in ["", "Api", "2x", "a-b", "a__b", "a_"] {
            assert!(check_variable_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn templates_list_their_references() {
        assert_eq!(
            template_references("https://{{ host }}:{{port}}/x").unwrap(),
            vec!["host".to_owned(), "port".to_owned()]
        );
        assert!(template_references("{{ open").is_err());
    }
}
