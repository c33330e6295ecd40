//! What a study's words may be: ids, the text of its manifest section, run parameters.
//!
//! Everything here reaches people: the public register, the auditor's pages, the
//! researcher's results, CSV files, the operator's terminal. So ids are plain
//! (`[a-z0-9][a-z0-9-]{0,62}`), text has a length limit, and no control character or
//! bidirectional override gets in (U+202E before "gnihtemos" makes it read "something"; ESC
//! starts a terminal escape sequence). Each refusal names the field.

/// Largest total size of a run's parameters (names and values), in bytes.
pub const MAX_PARAMS_BYTES: usize = 4 << 10;
/// Most parameters a run may give.
pub const MAX_PARAMS: usize = 16;
/// Longest parameter name or value, in characters.
pub const MAX_PARAM_CHARS: usize = 128;

/// The text fields of a study's section and their longest length, in characters.
pub const TEXT_LIMITS: [(&str, usize); 5] = [
    ("title", 200),
    ("purpose", 4000),
    ("legal_basis", 500),
    ("principal_investigator", 200),
    ("expires", 10),
];

/// Why a value was refused, naming its field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    #[error(
        "{field}: `{shown}` is not an id: use 1 to 63 of a-z, 0-9 and `-`, starting with a letter or digit"
    )]
    BadId { field: String, shown: String },
    #[error("{field} has {chars} characters; at most {max} are allowed")]
    TooLong {
        field: String,
        chars: usize,
        max: usize,
    },
    #[error("{field} contains {what} (U+{code:04X}) at character {at}: remove it")]
    Forbidden {
        field: String,
        what: &'static str,
        code: u32,
        at: usize,
    },
    #[error(
        "the parameters take {bytes} bytes and {count} entries; at most {MAX_PARAMS_BYTES} bytes and {MAX_PARAMS} entries are accepted"
    )]
    TooManyParams { bytes: usize, count: usize },
}

/// What kind of forbidden character `c` is, if it is one.
fn forbidden(c: char) -> Option<&'static str> {
    carrel_vault::text::unsafe_char(c)
}

/// Checks `value` of `field`: at most `max` characters, none of them forbidden.
pub fn check_text(field: &str, value: &str, max: usize) -> Result<(), MetadataError> {
    if let Some((at, c, what)) = value
        .chars()
        .enumerate()
        .find_map(|(i, c)| forbidden(c).map(|what| (i + 1, c, what)))
    {
        return Err(MetadataError::Forbidden {
            field: field.to_owned(),
            what,
            code: c as u32,
            at,
        });
    }
    let chars = value.chars().count();
    if chars > max {
        return Err(MetadataError::TooLong {
            field: field.to_owned(),
            chars,
            max,
        });
    }
    Ok(())
}

/// Whether `id` matches `[a-z0-9][a-z0-9-]{0,62}`.
pub fn is_id(id: &str) -> bool {
    let bytes = id.as_bytes();
    (1..=63).contains(&bytes.len())
        && (bytes[0].is_ascii_lowercase() || bytes[0].is_ascii_digit())
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
}

/// Checks that `id` of `field` is an id.
pub fn check_id(field: &str, id: &str) -> Result<(), MetadataError> {
    if is_id(id) {
        Ok(())
    } else {
        Err(MetadataError::BadId {
            field: field.to_owned(),
            shown: terminal_safe(&id.chars().take(80).collect::<String>()),
        })
    }
}

/// Checks a run's parameters: a few, short, and no forbidden character, before anything
/// of them is stored.
pub fn check_params(params: &[(String, String)]) -> Result<(), MetadataError> {
    let bytes: usize = params.iter().map(|(k, v)| k.len() + v.len()).sum();
    if bytes > MAX_PARAMS_BYTES || params.len() > MAX_PARAMS {
        return Err(MetadataError::TooManyParams {
            bytes,
            count: params.len(),
        });
    }
    for (name, value) in params {
        let name_field = format!("parameter name `{}`", terminal_safe(name));
        check_text(&name_field, name, MAX_PARAM_CHARS)?;
        check_text(&format!("parameter `{name}`"), value, MAX_PARAM_CHARS)?;
    }
    Ok(())
}

/// Checks the words of a study's section: its id, its text fields, and the names the
/// released table will carry (measures, dimensions, labels, parameters).
pub fn check_section(id: &str, tool: &super::manifest::StudyTool) -> Result<(), MetadataError> {
    check_id("study id", id)?;
    let values = [
        &tool.title,
        &tool.purpose,
        &tool.legal_basis,
        &tool.principal_investigator,
        &tool.expires,
    ];
    for ((field, max), value) in TEXT_LIMITS.iter().zip(values) {
        check_text(field, value, *max)?;
    }
    for (name, values) in &tool.params {
        check_text("params (a name)", name, MAX_PARAM_CHARS)?;
        for value in values {
            check_text(&format!("params.{name}"), value, MAX_PARAM_CHARS)?;
        }
    }
    let mut names: Vec<(&str, &String)> = Vec::new();
    // A model study's declared words are shown in the capability report too.
    if let Some(model) = &tool.model {
        names.push(("model.file", &model.file));
        names.push(("model.outcome", &model.outcome));
        names.extend(model.features.iter().map(|f| ("model.features", f)));
        names.extend(model.subgroups.iter().map(|g| ("model.subgroups", g)));
    }
    if let Some(fit) = &tool.fit {
        names.push(("fit.family", &fit.family));
        names.push(("fit.outcome", &fit.outcome));
        names.extend(fit.features.iter().map(|f| ("fit.features", f)));
    }
    let Some(t) = &tool.table else {
        return names
            .into_iter()
            .try_for_each(|(field, name)| check_text(field, name, MAX_PARAM_CHARS));
    };
    names.extend(t.dimensions.iter().map(|d| ("table.dimensions", d)));
    names.extend(t.measures.iter().map(|m| ("table.measures", m)));
    for (share, pair) in &t.shares {
        names.push(("table.shares", share));
        names.extend(pair.iter().map(|m| ("table.shares", m)));
    }
    for (by, dimensions) in &t.by {
        names.push(("table.by", by));
        names.extend(dimensions.iter().map(|d| ("table.by", d)));
    }
    if let Some(labels) = &t.labels {
        names.push(("table.labels.name", &labels.name));
        names.extend(labels.values.iter().map(|v| ("table.labels.values", v)));
    }
    names
        .into_iter()
        .try_for_each(|(field, name)| check_text(field, name, MAX_PARAM_CHARS))
}

/// `text` fit for a terminal: every control, bidirectional or invisible character is
/// written as `\u{…}`, so that nothing read from the warehouse runs as an escape sequence
/// or reorders what the operator reads.
pub fn terminal_safe(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if forbidden(c).is_some() {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

/// Lines of text fit for a terminal: [`terminal_safe`] on each, line breaks kept.
pub fn terminal_lines(text: &str) -> String {
    text.split('\n')
        .map(terminal_safe)
        .collect::<Vec<_>>()
        .join("\n")
}

/// `value` as pretty JSON fit for a terminal: the same JSON, unsafe characters escaped.
pub fn terminal_json(value: &impl serde::Serialize) -> serde_json::Result<String> {
    Ok(carrel_vault::text::escape_json_for_terminal(
        &serde_json::to_string_pretty(value)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_lowercase_letters_digits_and_dashes() {
        for good in ["ili-weekly", "a", "0x", &"a".repeat(63)] {
            assert!(is_id(good), "{good}");
        }
        for bad in ["", "-a", "../../x", "A", "a_b", "a b", "é", &"a".repeat(64)] {
            assert!(!is_id(bad), "{bad}");
            assert!(check_id("study id", bad).is_err());
        }
    }

    #[test]
    fn control_and_bidirectional_characters_are_refused_naming_the_field() {
        for (text, code) in [
            ("Dr \u{202E}gnihtemos\u{202C}", 0x202E),
            ("a\0b", 0),
            ("\u{1b}[31mred", 0x1b),
            ("bell\u{7}", 7),
            ("C1 \u{9b}", 0x9b),
            ("zero\u{200B}width", 0x200B),
            ("isolate \u{2067}", 0x2067),
        ] {
            let err = check_text("principal_investigator", text, 200).unwrap_err();
            assert!(
                matches!(&err, MetadataError::Forbidden { field, code: c, .. } if field == "principal_investigator" && *c == code),
                "{err}"
            );
            assert!(err.to_string().starts_with("principal_investigator"));
        }
        check_text("title", "Grippe — syndrome grippal (ILI), âge ≥ 75", 200).unwrap();
        let err = check_text("purpose", &"x".repeat(1_000_000), 4000).unwrap_err();
        assert_eq!(
            err.to_string(),
            "purpose has 1000000 characters; at most 4000 are allowed"
        );
    }

    #[test]
    fn parameters_are_bounded_before_anything_is_kept() {
        check_params(&[("from".into(), "2024-10-01".into())]).unwrap();
        let big = vec![("op".to_owned(), "x".repeat(MAX_PARAMS_BYTES))];
        assert!(matches!(
            check_params(&big),
            Err(MetadataError::TooManyParams { .. })
        ));
        let many: Vec<(String, String)> = (0..=MAX_PARAMS)
            .map(|i| (format!("p{i}"), "v".into()))
            .collect();
        assert!(check_params(&many).is_err());
        assert!(check_params(&[("op".into(), "\u{1b}]0;x\u{7}".into())]).is_err());
    }

    #[test]
    fn terminal_output_shows_control_characters_as_escapes() {
        assert_eq!(
            terminal_safe("a\u{1b}[2Jb\u{202E}c\n"),
            "a\\u{1b}[2Jb\\u{202e}c\\u{a}"
        );
        assert_eq!(terminal_safe("Dr Ä"), "Dr Ä");
    }
}
