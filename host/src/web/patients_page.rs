//! Patients' rights on the pages: what the public register tells patients (what is held,
//! why, for how long, how to object, with counts), and the auditor's
//! `/audit/patients` (objections and removals by month). Counts only, from the audit log.

use carrel_warehouse::app::App;
use carrel_warehouse::patients::PatientsError;
use carrel_warehouse::patients::report::{Counts, RightsReport};
use maud::{Markup, html};

/// What the register says when the operator gave no words of their own.
const DEFAULT_HOW_TO_OBJECT: &str = "Tell the out-of-hours association that treated you \
    that you object: it forwards your objection to the warehouse. The warehouse keeps \
    only a keyed hash of your identifiers, never the identifiers themselves.";

fn report(app: &App) -> Result<RightsReport, PatientsError> {
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
pub fn register_section(app: &App) -> Result<Markup, PatientsError> {
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
    Ok(html! {
        section #patients-rights {
            h2 { "The data and your rights" }
            p #data-held {
                strong { "What is held." }
                " Out-of-hours primary care consultations sent by the associations: the date \
                 and hour, age in years (90 and over as 90), sex, département, type of visit, \
                 diagnoses and outcome. Names, addresses, telephone numbers and social \
                 security numbers are never stored: a patient is known only by a keyed hash."
            }
            p #purposes {
                strong { "For what." }
                " Only the approved studies listed below, each for its stated purpose and \
                 legal basis; they receive counts that passed disclosure control, never a \
                 patient's record."
            }
            p #retention {
                strong { "For how long." } " " (retention_text(config.retention_days)) "."
            }
            p #how-to-object {
                strong { "How to object." } " " (how)
                " Once an objection is registered, your consultations are no longer stored, \
                 no study run uses them, and those already stored are removed."
            }
            p #rights-counts {
                "To date: "
                span.num #objections-total { (totals.objections) }
                " objections registered; "
                span.num #withheld-total { (totals.rows_withheld) }
                " consultations not stored and "
                span.num #removed-objection-total { (totals.removed_for_objection) }
                " removed at patients' objection; "
                span.num #removed-retention-total { (totals.removed_for_retention) }
                " removed after the retention period."
            }
        }
        h2 { "Approved studies" }
    })
}

fn row(label: &str, counts: &Counts, id: &str) -> Markup {
    html! {
        tr id=(id) {
            td { (label) }
            td.num.objections { (counts.objections) }
            td.num.withheld { (counts.rows_withheld) }
            td.num.removed-objection { (counts.removed_for_objection) }
            td.num.removed-retention { (counts.removed_for_retention) }
            td.num.passes { (counts.passes) }
        }
    }
}

/// `/audit/patients`: objections and removals by month, with the totals.
pub fn auditor_page(app: &App) -> Result<(String, Markup), PatientsError> {
    let report = report(app)?;
    let (retention, pending) = match &app.warehouse {
        Some(w) => (
            w.rights.config.retention_days,
            w.rights.objections.pending()?,
        ),
        None => (None, 0),
    };
    let body = html! {
        p {
            "Retention: " (retention_text(retention))
            ". Objections registered and not yet applied to stored rows by a pass: "
            span #objections-pending { (pending) }
            ". Counts come from the audit log ("
            code { "patient.objection" } ", " code { "ingest.withheld" } ", "
            code { "dataset.rewrite" } ", " code { "dataset.purge" }
            "); no identifier is kept."
        }
        table #rights-by-month {
            thead {
                tr {
                    th { "Month (UTC)" }
                    th { "Objections" }
                    th { "Consultations withheld at ingestion" }
                    th { "Removed: objection" }
                    th { "Removed: retention" }
                    th { "Passes completed" }
                }
            }
            tbody {
                @for (month, counts) in &report.months {
                    (row(month, counts, &format!("month-{month}")))
                }
                (row("Total", &report.totals, "rights-total"))
            }
        }
    };
    Ok(("Objections and removals".into(), body))
}
