//! `GET /register`: the public register of approved studies. What a health data
//! warehouse owes the public: which studies may use the data, why, under which legal
//! basis, led by whom, until when, and how often they ran and released results.
//!
//! Only studies whose latest submission is approved are listed (submitted, revoked and
//! never submitted ones are not). Nothing here is row-level, secret or internal: no
//! tokens, no actors, no paths, no run parameters; the approved binary's sha256 is shown
//! so anyone can check which code was approved.

use super::html::{day, esc, html, page};
use crate::app::App;
use crate::responses::HostResponse;
use crate::study::registry::ApprovalState;
use http::StatusCode;
use std::fmt::Write;

/// One line of the register.
#[derive(Debug, Clone, PartialEq)]
pub struct RegisterEntry {
    pub id: String,
    pub title: String,
    pub purpose: String,
    pub legal_basis: String,
    pub principal_investigator: String,
    pub datasets: Vec<String>,
    pub approved_on: String,
    pub expires: String,
    pub wasm_sha256: String,
    pub runs: usize,
    /// Runs that released a table (status `succeeded`).
    pub released: usize,
}

/// The approved studies of the app's manifest, sorted by id.
pub fn entries(app: &App) -> anyhow::Result<Vec<RegisterEntry>> {
    let Some(desk) = &app.studies else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for (id, spec) in &desk.specs {
        let Some(submission) = desk.registry.latest(id)? else {
            continue;
        };
        if submission.state() != ApprovalState::Approved {
            continue;
        }
        let runs = desk.registry.runs(Some(id))?;
        out.push(RegisterEntry {
            id: id.clone(),
            title: spec.tool.title.clone(),
            purpose: spec.tool.purpose.clone(),
            legal_basis: spec.tool.legal_basis.clone(),
            principal_investigator: spec.tool.principal_investigator.clone(),
            datasets: spec.tool.datasets.keys().cloned().collect(),
            approved_on: day(submission.approved_at.as_deref().unwrap_or("")).to_owned(),
            expires: spec.tool.expires.clone(),
            wasm_sha256: submission.wasm_sha256.clone(),
            runs: runs.len(),
            released: runs.iter().filter(|r| r.status == "succeeded").count(),
        });
    }
    Ok(out)
}

pub fn handle(app: &App) -> HostResponse {
    let entries = match entries(app) {
        Ok(e) => e,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "cannot read the study register");
            return html(
                StatusCode::INTERNAL_SERVER_ERROR,
                false,
                page(
                    "Study register",
                    false,
                    "",
                    "<p class=\"error\">The register cannot be read at the moment.</p>",
                ),
            );
        }
    };
    html(
        StatusCode::OK,
        false,
        page("Study register", false, "", &render(app, &entries)),
    )
}

fn render(app: &App, entries: &[RegisterEntry]) -> String {
    let today = time::OffsetDateTime::now_utc().date().to_string();
    let mut body = format!(
        "<p>Studies approved to run on the data of <strong>{}</strong>. Each study is a \
         program whose exact binary an auditor approved; it reads only the columns granted \
         to it and releases only tables that passed disclosure control.</p>",
        esc(&app.name)
    );
    if entries.is_empty() {
        body.push_str("<p id=\"no-studies\">No study is approved at present.</p>");
        return body;
    }
    body.push_str(
        "<table id=\"register\"><thead><tr><th>Study</th><th>Purpose</th><th>Legal basis</th>\
         <th>Principal investigator</th><th>Approved</th><th>Expires</th><th>Runs</th>\
         <th>Results released</th></tr></thead><tbody>",
    );
    for e in entries {
        let expired = if e.expires.as_str() < today.as_str() {
            " <span class=\"tag revoked\">expired</span>"
        } else {
            ""
        };
        let _ = write!(
            body,
            "<tr class=\"study\" id=\"study-{id}\"><td><strong class=\"title\">{title}</strong><br>\
             <code>{id}</code><br><span class=\"note\">data: {datasets}</span><br>\
             <span class=\"note\">approved binary sha256</span> <span class=\"hash\">{wasm}</span></td>\
             <td class=\"purpose\">{purpose}</td><td class=\"legal-basis\">{basis}</td>\
             <td class=\"pi\">{pi}</td><td class=\"approved\">{approved}</td>\
             <td class=\"expires\">{expires}{expired}</td><td class=\"num runs\">{runs}</td>\
             <td class=\"num released\">{released}</td></tr>",
            id = esc(&e.id),
            title = esc(&e.title),
            datasets = esc(&e.datasets.join(", ")),
            wasm = esc(&e.wasm_sha256),
            purpose = esc(&e.purpose),
            basis = esc(&e.legal_basis),
            pi = esc(&e.principal_investigator),
            approved = esc(&e.approved_on),
            expires = esc(&e.expires),
            runs = e.runs,
            released = e.released,
        );
    }
    body.push_str("</tbody></table>");
    body
}
