//! The capability report as text, for people.

use super::report::{ApprovalView, ComponentReport, Grants, ImportClass, Report};
use std::io::Write;

pub fn text(report: &Report, out: &mut dyn Write) -> std::io::Result<()> {
    let version = report
        .application
        .version
        .as_deref()
        .map(|v| format!(" {v}"))
        .unwrap_or_default();
    writeln!(
        out,
        "application {}{version} ({})",
        report.application.name, report.manifest
    )?;
    match &report.warehouse {
        Some(w) => writeln!(out, "warehouse state: {}", w.state_dir)?,
        None => writeln!(
            out,
            "no warehouse state: approvals cannot be shown (no catalog in the state directory)"
        )?,
    }
    for component in &report.components {
        writeln!(out)?;
        self::component(component, report.warehouse.is_some(), out)?;
    }
    if let Some(w) = &report.warehouse
        && !w.other_studies.is_empty()
    {
        writeln!(out)?;
        writeln!(out, "registered studies not in this manifest:")?;
        for a in &w.other_studies {
            writeln!(out, "  {}: {}", a.study, approval_line(a))?;
        }
    }
    let findings: Vec<_> = report
        .components
        .iter()
        .flat_map(|c| c.findings.iter())
        .collect();
    let count = |kind| findings.iter().filter(|f| f.kind == kind).count();
    use super::report::FindingKind as K;
    writeln!(out)?;
    let n =
        |count: usize, what: &str| format!("{count} {what}{}", if count == 1 { "" } else { "s" });
    writeln!(
        out,
        "{}, {}: {} without a grant, {} the binary cannot use, {} other",
        n(report.components.len(), "component"),
        n(findings.len(), "finding"),
        n(count(K::ImportWithoutGrant), "import"),
        n(count(K::UnusedGrant), "grant"),
        findings.len() - count(K::ImportWithoutGrant) - count(K::UnusedGrant),
    )
}

fn component(c: &ComponentReport, warehouse: bool, out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(out, "component {}", c.id)?;
    writeln!(out, "  source   {}", c.source)?;
    writeln!(
        out,
        "  sha256   {}",
        c.sha256.as_deref().unwrap_or("not built")
    )?;
    if let Some(m) = &c.manifest_sha256 {
        writeln!(out, "  manifest section sha256 {m}")?;
    }
    writeln!(out, "  granted")?;
    let lines = grant_lines(&c.grants);
    if lines.is_empty() {
        writeln!(out, "    nothing")?;
    }
    for (name, value) in lines {
        writeln!(out, "    {name:<24} {value}")?;
    }
    writeln!(out, "  imports ({})", c.imports.len())?;
    for i in &c.imports {
        let status = match (i.class, i.granted) {
            (ImportClass::Capability, Some(true)) => format!(
                "{}: granted ({})",
                i.note,
                i.capability.map(|c| c.grant_field()).unwrap_or_default()
            ),
            (ImportClass::Capability, _) => format!("{}: NOT GRANTED", i.note),
            _ => i.note.clone(),
        };
        writeln!(out, "    {:<44} {status}", i.name)?;
    }
    if !c.exports.is_empty() {
        writeln!(out, "  exports  {}", c.exports.join(", "))?;
    }
    writeln!(out, "  findings")?;
    if c.findings.is_empty() {
        writeln!(out, "    none")?;
    }
    for f in &c.findings {
        writeln!(out, "    ! {:<13} {}", f.kind.label(), f.message)?;
    }
    if c.grants.study.is_some() {
        match &c.approval {
            Some(a) => writeln!(out, "  approval {}", approval_line(a))?,
            None if !warehouse => writeln!(out, "  approval unknown: no warehouse state")?,
            None => {}
        }
    }
    Ok(())
}

/// Who submitted, approved and revoked which hashes.
pub fn approval_line(a: &ApprovalView) -> String {
    let mut parts = vec![a.state.clone()];
    let by = |what: &str, who: &Option<String>, when: &Option<String>| {
        who.as_ref().map(|who| {
            format!(
                "{what} by {who} at {}",
                when.as_deref().unwrap_or("an unknown time")
            )
        })
    };
    parts.extend(by("submitted", &a.submitted_by, &a.submitted_at));
    parts.extend(by("approved", &a.approved_by, &a.approved_at));
    parts.extend(by("revoked", &a.revoked_by, &a.revoked_at));
    if let (Some(w), Some(m)) = (&a.wasm_sha256, &a.manifest_sha256) {
        parts.push(format!("for wasm sha256 {w} and manifest sha256 {m}"));
    }
    match a.matches_current {
        Some(true) => parts.push("the binary and manifest section on disk are these".into()),
        Some(false) => parts.push(
            "the binary or manifest section on disk CHANGED since: it needs a new submission"
                .into(),
        ),
        None => {}
    }
    parts.join("; ")
}

fn grant_lines(g: &Grants) -> Vec<(String, String)> {
    let mut lines = Vec::new();
    let mut list = |name: &str, items: &[String]| {
        if !items.is_empty() {
            lines.push((name.to_owned(), items.join(", ")));
        }
    };
    list("routes", &g.routes);
    list("key_value_stores", &g.key_value_stores);
    list("sqlite_databases", &g.sqlite_databases);
    list("allowed_outbound_hosts", &g.allowed_outbound_hosts);
    list("files", &g.files);
    list("keyed_hash_domains", &g.keyed_hash_domains);
    let map = |m: &std::collections::BTreeMap<String, String>| {
        m.iter()
            .map(|(k, v)| format!("{k} = {v:?}"))
            .collect::<Vec<_>>()
    };
    list("variables", &map(&g.variables));
    list("environment", &map(&g.environment));
    if let Some(auth) = &g.auth {
        lines.push(("auth".into(), format!("token role {auth}")));
    }
    if let Some(i) = &g.ingest {
        lines.push((
            "ingest".into(),
            format!("into dataset {} through {}", i.dataset, i.pseudonymiser),
        ));
    }
    if let Some(s) = &g.study {
        lines.push(("study".into(), s.title.clone()));
        lines.push(("  purpose".into(), s.purpose.clone()));
        lines.push(("  legal basis".into(), s.legal_basis.clone()));
        lines.push(("  investigator".into(), s.principal_investigator.clone()));
        for (dataset, columns) in &s.datasets {
            lines.push((format!("  dataset {dataset}"), columns.join(", ")));
        }
        let d = &s.disclosure;
        lines.push((
            "  disclosure".into(),
            format!(
                "counts under {} redacted, rounded to {}, at most {} rows and {} bytes; {}",
                d.min_count,
                d.rounding,
                d.max_rows,
                d.max_bytes,
                crate::audit_commands::report::privacy_summary(d)
            ),
        ));
        lines.push((
            "  limits".into(),
            format!("{} s, {} MiB", s.time_limit_seconds, s.memory_limit_mb),
        ));
        lines.push(("  expires".into(), s.expires.clone()));
    }
    lines
}
