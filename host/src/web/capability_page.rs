//! The capability report on the auditor's pages (`/audit/components`): what each
//! component was granted, what its binary imports and exports, and where the two differ
//! (the findings of `carrel audit manifest`).

use super::html::{columns, finding_tag, rows, tag};
use carrel_warehouse::audit_commands::report::{ComponentReport, ImportClass, Report};
use maud::{Markup, html};

/// The report's page content.
pub fn body(report: &Report) -> Markup {
    let findings: usize = report.components.iter().map(|c| c.findings.len()).sum();
    html! {
        p {
            "Application " strong { (report.application.name) } " "
            (report.application.version.as_deref().unwrap_or("")) " from "
            code { (report.manifest) } ": " (report.components.len()) " components, "
            span #findings-total { (findings) }
            " findings. Built once when first shown; approvals below are as of then (the "
            a href="/audit" { "overview" } " is live)."
        }
        @for c in &report.components {
            (component(c))
        }
    }
}

fn component(c: &ComponentReport) -> Markup {
    let g = &c.grants;
    let mut grants: Vec<(&str, String)> = vec![
        ("routes", g.routes.join(", ")),
        ("auth", g.auth.clone().unwrap_or_default()),
        ("key-value stores", g.key_value_stores.join(", ")),
        ("SQLite databases", g.sqlite_databases.join(", ")),
        ("outbound hosts", g.allowed_outbound_hosts.join(", ")),
        (
            "variables",
            g.variables.keys().cloned().collect::<Vec<_>>().join(", "),
        ),
        ("files", g.files.join(", ")),
        ("keyed-hash domains", g.keyed_hash_domains.join(", ")),
    ];
    if let Some(i) = &g.ingest {
        grants.push(("ingest", format!("{} via {}", i.dataset, i.pseudonymiser)));
    }
    if let Some(s) = &g.study {
        let datasets: Vec<String> = s
            .datasets
            .iter()
            .map(|(d, cols)| format!("{d}: {}", cols.join(", ")))
            .collect();
        grants.push(("datasets and columns", datasets.join("; ")));
        let d = &s.disclosure;
        grants.push((
            "disclosure",
            format!(
                "min count {}, rounding {}, max rows {}, max bytes {}; {}",
                d.min_count,
                d.rounding,
                d.max_rows,
                d.max_bytes,
                carrel_warehouse::audit_commands::report::privacy_summary(d)
            ),
        ));
        grants.push((
            "limits",
            format!("{} s, {} MB", s.time_limit_seconds, s.memory_limit_mb),
        ));
        grants.push(("expires", s.expires.clone()));
    }
    grants.retain(|(_, v)| !v.is_empty());
    html! {
        section.component id={ "component-" (c.id) } {
            h2 { (c.id) }
            p {
                code { (c.source) } " sha256 "
                span.hash { (c.sha256.as_deref().unwrap_or("(not built)")) }
            }
            h3 { "Granted" }
            table.grants { tbody { (rows(&grants)) } }
            h3 { "Imported by the binary" }
            table.imports {
                (columns(&["Interface", "Version", "Class", "Granted", "Note"]))
                tbody {
                    @for i in &c.imports {
                        tr {
                            td { code { (i.interface) } }
                            td { (i.version.as_deref().unwrap_or("")) }
                            td { (import_class(i.class)) }
                            td { (i.granted.map_or("", |g| if g { "yes" } else { "NO" })) }
                            td { (i.note) }
                        }
                    }
                }
            }
            h3 { "Findings" }
            @if c.findings.is_empty() {
                p.note { "None: grants and imports match." }
            } @else {
                ul.findings {
                    @for f in &c.findings {
                        li {
                            (finding_tag(f.kind.label())) " " code { (f.subject) } ": "
                            (f.message)
                        }
                    }
                }
            }
            @if let Some(a) = &c.approval {
                p {
                    "Approval: " (tag(&a.state)) " "
                    span.note {
                        "approved by " (a.approved_by.as_deref().unwrap_or("-")) " at "
                        (a.approved_at.as_deref().unwrap_or("-"))
                    }
                }
            }
        }
    }
}

fn import_class(class: ImportClass) -> &'static str {
    match class {
        ImportClass::Capability => "capability",
        ImportClass::Baseline => "baseline",
        ImportClass::Types => "types",
        ImportClass::Never => "never",
        ImportClass::Unknown => "unknown",
    }
}
