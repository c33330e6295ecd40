//! `GET /register`: the public register of approved studies. What a health data
//! warehouse owes the public: what data it holds, for how long and how a patient objects
//! ([`super::patients_page`]), which studies may use the data, why, under which legal
//! basis, led by whom, until when, and how often they ran and released results.
//!
//! Only studies whose latest submission is approved are listed (submitted, revoked and
//! never submitted ones are not), with the text that was approved
//! ([`carrel_warehouse::study::approved_text`]), not the manifest's current one; a study whose binary
//! or section changed since approval is marked "changed since approval: runs refused".
//! 50 studies a page. Nothing here is row-level, secret or internal: no
//! tokens, no actors, no paths, no run parameters; the approved binary's sha256 is shown
//! so anyone can check which code was approved.

use super::html::{day, esc, field, html, page, parse_form};
use carrel_runtime::responses::HostResponse;
use carrel_warehouse::app::App;
use carrel_warehouse::study::approved_text::StudyText;
use carrel_warehouse::study::registry::ApprovalState;
use http::StatusCode;
use std::fmt::Write;

/// One line of the register.
#[derive(Debug, Clone, PartialEq)]
pub struct RegisterEntry {
    pub id: String,
    /// The text as approved; `None` for an approval from before carrel kept it, whose
    /// section changed since.
    pub text: Option<StudyText>,
    pub approved_on: String,
    pub wasm_sha256: String,
    /// The binary or the manifest section differ from what was approved (or the study
    /// left the manifest): its runs are refused.
    pub changed_since_approval: bool,
    pub runs: u64,
    /// Runs that released a table (status `succeeded`).
    pub released: u64,
}

/// Studies on one page of the register.
pub const PAGE_SIZE: usize = 50;

/// The approved studies, sorted by id.
pub fn entries(app: &App) -> anyhow::Result<Vec<RegisterEntry>> {
    let Some(desk) = &app.studies else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for submission in desk.registry.all_latest()? {
        if submission.state() != ApprovalState::Approved {
            continue;
        }
        let id = &submission.study;
        let spec = desk.specs.get(id);
        let section_unchanged =
            spec.is_some_and(|s| s.manifest_sha256 == submission.manifest_sha256);
        let binary_unchanged = desk
            .current_wasm_sha256(id)
            .is_ok_and(|w| w == submission.wasm_sha256);
        let text = match desk.registry.text_of(&submission.manifest_sha256)? {
            Some(text) => Some(text),
            // Approved before texts were kept: the manifest's text is the approved one
            // only while the section is unchanged.
            None => spec
                .filter(|_| section_unchanged)
                .map(|s| StudyText::of(&s.tool)),
        };
        let totals = desk.registry.run_totals(id)?;
        out.push(RegisterEntry {
            id: id.clone(),
            text,
            approved_on: day(submission.approved_at.as_deref().unwrap_or("")).to_owned(),
            wasm_sha256: submission.wasm_sha256.clone(),
            changed_since_approval: !(section_unchanged && binary_unchanged),
            runs: totals.runs,
            released: totals.succeeded,
        });
    }
    Ok(out)
}

pub fn handle(app: &App, query: &str) -> HostResponse {
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
    let page_no: usize = field(&parse_form(query), "page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(1);
    html(
        StatusCode::OK,
        false,
        page("Study register", false, "", &render(app, &entries, page_no)),
    )
}

fn render(app: &App, entries: &[RegisterEntry], page_no: usize) -> String {
    let today = time::OffsetDateTime::now_utc().date().to_string();
    let mut body = format!(
        "<p>Studies approved to run on the data of <strong>{}</strong>. Each study is a \
         program whose exact binary an auditor approved; it reads only the columns granted \
         to it and releases only tables that passed disclosure control.</p>",
        esc(&app.runtime.name)
    );
    match super::patients_page::register_section(app) {
        Ok(section) => body.push_str(&section),
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "cannot count objections and removals")
        }
    }
    if entries.is_empty() {
        body.push_str("<p id=\"no-studies\">No study is approved at present.</p>");
        return body;
    }
    body.push_str(
        "<table id=\"register\"><thead><tr><th>Study</th><th>Purpose</th><th>Legal basis</th>\
         <th>Principal investigator</th><th>Approved</th><th>Expires</th><th>Runs</th>\
         <th>Results released</th></tr></thead><tbody>",
    );
    let pages = entries.len().div_ceil(PAGE_SIZE).max(1);
    let page_no = page_no.clamp(1, pages);
    for e in entries
        .iter()
        .skip((page_no - 1) * PAGE_SIZE)
        .take(PAGE_SIZE)
    {
        let unknown = StudyText {
            title: "(the approved text was not kept)".into(),
            purpose: "Approved before this warehouse kept the approved text, and changed since."
                .into(),
            legal_basis: String::new(),
            principal_investigator: String::new(),
            expires: String::new(),
            datasets: Default::default(),
        };
        let t = e.text.as_ref().unwrap_or(&unknown);
        let expired = if !t.expires.is_empty() && t.expires.as_str() < today.as_str() {
            " <span class=\"tag revoked\">expired</span>"
        } else {
            ""
        };
        let changed = if e.changed_since_approval {
            " <span class=\"tag revoked changed\">changed since approval: runs refused</span>"
        } else {
            ""
        };
        let _ = write!(
            body,
            "<tr class=\"study\" id=\"study-{id}\"><td><strong class=\"title\">{title}</strong><br>\
             <code>{id}</code><br><span class=\"note\">data: {datasets}</span><br>\
             <span class=\"note\">approved binary sha256</span> <span class=\"hash\">{wasm}</span></td>\
             <td class=\"purpose\">{purpose}</td><td class=\"legal-basis\">{basis}</td>\
             <td class=\"pi\">{pi}</td><td class=\"approved\">{approved}{changed}</td>\
             <td class=\"expires\">{expires}{expired}</td><td class=\"num runs\">{runs}</td>\
             <td class=\"num released\">{released}</td></tr>",
            id = esc(&e.id),
            title = esc(&t.title),
            datasets = esc(&t.datasets.keys().cloned().collect::<Vec<_>>().join(", ")),
            wasm = esc(&e.wasm_sha256),
            purpose = esc(&t.purpose),
            basis = esc(&t.legal_basis),
            pi = esc(&t.principal_investigator),
            approved = esc(&e.approved_on),
            expires = esc(&t.expires),
            runs = e.runs,
            released = e.released,
        );
    }
    body.push_str("</tbody></table>");
    if pages > 1 {
        let _ = write!(
            body,
            "<nav class=\"pages\" id=\"register-pages\">Page {page_no} of {pages}"
        );
        if page_no > 1 {
            let _ = write!(
                body,
                " <a id=\"page-previous\" href=\"/register?page={}\">Previous</a>",
                page_no - 1
            );
        }
        if page_no < pages {
            let _ = write!(
                body,
                " <a id=\"page-next\" href=\"/register?page={}\">Next</a>",
                page_no + 1
            );
        }
        body.push_str("</nav>");
    }
    body
}
