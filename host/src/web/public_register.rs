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

use super::html::{Nav, day, html_response, page};
use crate::forms::{field, parse_form};
use carrel_runtime::error::with_causes;
use carrel_runtime::responses::HostResponse;
use carrel_warehouse::app::App;
use carrel_warehouse::study::approved_text::StudyText;
use carrel_warehouse::study::registry::{ApprovalState, RegistryError};
use http::StatusCode;
use maud::{Markup, html};

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
pub fn entries(app: &App) -> Result<Vec<RegisterEntry>, RegistryError> {
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
            tracing::error!(error = %with_causes(&e), "cannot read the study register");
            let body = html! { p.error { "The register cannot be read at the moment." } };
            return html_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                false,
                page("Study register", Nav::Public, None, body),
            );
        }
    };
    let page_no: usize = field(&parse_form(query), "page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(1);
    html_response(
        StatusCode::OK,
        false,
        page(
            "Study register",
            Nav::Public,
            None,
            render(app, &entries, page_no),
        ),
    )
}

/// What the register shows of a study approved before its text was kept, and changed
/// since.
fn text_not_kept() -> StudyText {
    StudyText {
        title: "(the approved text was not kept)".into(),
        purpose: "Approved before this warehouse kept the approved text, and changed since.".into(),
        legal_basis: String::new(),
        principal_investigator: String::new(),
        expires: String::new(),
        datasets: Default::default(),
    }
}

fn study_row(e: &RegisterEntry, today: &str, not_kept: &StudyText) -> Markup {
    let t = e.text.as_ref().unwrap_or(not_kept);
    let expired = !t.expires.is_empty() && t.expires.as_str() < today;
    let datasets = t.datasets.keys().cloned().collect::<Vec<_>>().join(", ");
    html! {
        tr.study id={ "study-" (e.id) } {
            td {
                strong.title { (t.title) } br;
                code { (e.id) } br;
                span.note { "data: " (datasets) } br;
                span.note { "approved binary sha256" } " " span.hash { (e.wasm_sha256) }
            }
            td.purpose { (t.purpose) }
            td.legal-basis { (t.legal_basis) }
            td.pi { (t.principal_investigator) }
            td.approved {
                (e.approved_on)
                @if e.changed_since_approval {
                    " " span.tag.revoked.changed { "changed since approval: runs refused" }
                }
            }
            td.expires {
                (t.expires)
                @if expired {
                    " " span.tag.revoked { "expired" }
                }
            }
            td.num.runs { (e.runs) }
            td.num.released { (e.released) }
        }
    }
}

fn render(app: &App, entries: &[RegisterEntry], page_no: usize) -> Markup {
    let today = time::OffsetDateTime::now_utc().date().to_string();
    let rights = super::patients_page::register_section(app)
        .inspect_err(|e| {
            tracing::error!(error = %with_causes(e), "cannot count objections and removals");
        })
        .ok();
    let pages = entries.len().div_ceil(PAGE_SIZE).max(1);
    let page_no = page_no.clamp(1, pages);
    let not_kept = text_not_kept();
    html! {
        p {
            "Studies approved to run on the data of " strong { (app.runtime.name) }
            ". Each study is a program whose exact binary an auditor approved; it reads only \
             the columns granted to it and releases only tables that passed disclosure control."
        }
        @if let Some(rights) = rights {
            (rights)
        }
        @if entries.is_empty() {
            p #no-studies { "No study is approved at present." }
        } @else {
            table #register {
                thead {
                    tr {
                        th { "Study" } th { "Purpose" } th { "Legal basis" }
                        th { "Principal investigator" } th { "Approved" } th { "Expires" }
                        th { "Runs" } th { "Results released" }
                    }
                }
                tbody {
                    @for e in entries.iter().skip((page_no - 1) * PAGE_SIZE).take(PAGE_SIZE) {
                        (study_row(e, &today, &not_kept))
                    }
                }
            }
            @if pages > 1 {
                nav.pages #register-pages {
                    "Page " (page_no) " of " (pages)
                    @if page_no > 1 {
                        " " a #page-previous href={ "/register?page=" (page_no - 1) } { "Previous" }
                    }
                    @if page_no < pages {
                        " " a #page-next href={ "/register?page=" (page_no + 1) } { "Next" }
                    }
                }
            }
        }
    }
}
