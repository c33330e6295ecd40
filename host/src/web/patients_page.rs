//! Patients' rights on the pages: what the public register tells patients (what is held,
//! why, for how long, how to object, with counts), and the auditor's
//! `/audit/patients` (objections and removals by month). Counts only, from the audit log.

use super::html::esc;
use carrel_warehouse::app::App;
use carrel_warehouse::patients::report::{Counts, RightsReport};
use std::fmt::Write;

/// What the register says when the operator gave no words of their own.
const DEFAULT_HOW_TO_OBJECT: &str = "Tell the out-of-hours association that treated you \
    that you object: it forwards your objection to the warehouse. The warehouse keeps \
    only a keyed hash of your identifiers, never the identifiers themselves.";

fn report(app: &App) -> anyhow::Result<RightsReport> {
    let Some(warehouse) = &app.warehouse else {
        return Ok(RightsReport::default());
    };
    Ok(RightsReport::from_entries(&warehouse.audit.entries(0)?))
}

fn retention_text(days: Option<u32>) -> String {
    match days {
        Some(days) if days % 365 == 0 => format!(
            "{days} days ({} years): older consultations are removed",
            days / 365
        ),
        Some(days) => format!("{days} days: older consultations are removed"),
        None => "no retention period is set: consultations are kept until the operator sets one"
            .to_owned(),
    }
}

/// The register's section on the data and patients' rights.
pub fn register_section(app: &App) -> anyhow::Result<String> {
    let config = app
        .warehouse
        .as_ref()
        .map(|w| w.rights.config.clone())
        .unwrap_or_default();
    let totals = report(app)?.totals;
    let how = config
        .how_to_object
        .as_deref()
        .unwrap_or(DEFAULT_HOW_TO_OBJECT);
    Ok(format!(
        "<section id=\"patients-rights\"><h2>The data and your rights</h2>\
         <p id=\"data-held\"><strong>What is held.</strong> Out-of-hours primary care \
         consultations sent by the associations: the date and hour, age in years (90 and \
         over as 90), sex, département, type of visit, diagnoses and outcome. Names, \
         addresses, telephone numbers and social security numbers are never stored: a \
         patient is known only by a keyed hash.</p>\
         <p id=\"purposes\"><strong>For what.</strong> Only the approved studies listed \
         below, each for its stated purpose and legal basis; they receive counts that \
         passed disclosure control, never a patient's record.</p>\
         <p id=\"retention\"><strong>For how long.</strong> {retention}.</p>\
         <p id=\"how-to-object\"><strong>How to object.</strong> {how} Once an objection \
         is registered, your consultations are no longer stored, no study run uses them, \
         and those already stored are removed.</p>\
         <p id=\"rights-counts\">To date: <span class=\"num\" id=\"objections-total\">{objections}</span> \
         objections registered; <span class=\"num\" id=\"withheld-total\">{withheld}</span> \
         consultations not stored and <span class=\"num\" id=\"removed-objection-total\">{for_objection}</span> \
         removed at patients' objection; <span class=\"num\" id=\"removed-retention-total\">{for_retention}</span> \
         removed after the retention period.</p></section><h2>Approved studies</h2>",
        retention = esc(&retention_text(config.retention_days)),
        how = esc(how),
        objections = totals.objections,
        withheld = totals.rows_withheld,
        for_objection = totals.removed_for_objection,
        for_retention = totals.removed_for_retention,
    ))
}

fn row(body: &mut String, label: &str, counts: &Counts, id: &str) {
    let _ = write!(
        body,
        "<tr id=\"{id}\"><td>{}</td><td class=\"num objections\">{}</td>\
         <td class=\"num withheld\">{}</td><td class=\"num removed-objection\">{}</td>\
         <td class=\"num removed-retention\">{}</td><td class=\"num passes\">{}</td></tr>",
        esc(label),
        counts.objections,
        counts.rows_withheld,
        counts.removed_for_objection,
        counts.removed_for_retention,
        counts.passes,
    );
}

/// `/audit/patients`: objections and removals by month, with the totals.
pub fn auditor_page(app: &App) -> anyhow::Result<(String, String)> {
    let report = report(app)?;
    let (retention, pending) = match &app.warehouse {
        Some(w) => (
            w.rights.config.retention_days,
            w.rights.objections.pending()?,
        ),
        None => (None, 0),
    };
    let mut body = format!(
        "<p>Retention: {}. Objections registered and not yet applied to stored rows by a \
         pass: <span id=\"objections-pending\">{pending}</span>. Counts come from the audit \
         log (<code>patient.objection</code>, <code>ingest.withheld</code>, \
         <code>dataset.rewrite</code>, <code>dataset.purge</code>); no identifier is kept.</p>",
        esc(&retention_text(retention))
    );
    body.push_str(
        "<table id=\"rights-by-month\"><thead><tr><th>Month (UTC)</th><th>Objections</th>\
         <th>Consultations withheld at ingestion</th><th>Removed: objection</th>\
         <th>Removed: retention</th><th>Passes completed</th></tr></thead><tbody>",
    );
    for (month, counts) in &report.months {
        row(&mut body, month, counts, &format!("month-{month}"));
    }
    row(&mut body, "Total", &report.totals, "rights-total");
    body.push_str("</tbody></table>");
    Ok(("Objections and removals".into(), body))
}
