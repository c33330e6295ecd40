//! The auditor's pages: overview, capability report, one study with its runs, and the
//! audit log filtered and paged. The chain status (the audit log verified from the last
//! head found intact, with the head's seq and hash) is at the top of every page. Every
//! list is a bounded page, read by a cursor.

use super::capability_page;
use super::html::{Nav, columns, html_response, page, rows, tag};
use super::result_table::Redactions;
use crate::forms::{field, parse_form, url_encode};
use carrel_runtime::error::with_causes;
use carrel_runtime::responses::HostResponse;
use carrel_vault::VaultError;
use carrel_vault::audit::{AuditFilter, PageCursor, VerifyReport, clip};
use carrel_warehouse::app::App;
use carrel_warehouse::audit_commands::log::compact;
use carrel_warehouse::patients::PatientsError;
use carrel_warehouse::study::errors::StudyError;
use carrel_warehouse::study::registry::{RegistryError, RunRecord};
use carrel_warehouse::study::run_pages::{RunScope, page_size};
use carrel_warehouse::tokens::Principal;
use http::StatusCode;
use maud::{Markup, html};

/// Entries on one page of the log.
pub const PAGE_SIZE: usize = 50;
/// Characters of an entry's details shown in the log (a study's log lines can be long;
/// `carrel audit export` has them whole).
const DETAILS_CHARS: usize = 2000;

pub async fn handle(app: &App, who: &Principal, path: &str, query: &str) -> HostResponse {
    let banner = chain_banner(app);
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let outcome = match segments.as_slice() {
        ["audit"] => overview(app, who),
        ["audit", "components"] => components(app).await,
        ["audit", "log"] => log(app, query),
        ["audit", "patients"] => super::patients_page::auditor_page(app).map_err(Into::into),
        ["audit", "studies", id] => study(app, &crate::forms::url_decode(id), query),
        _ => Err(AuditPageError::Missing("No such page.".into())),
    };
    let (status, title, body) = match outcome {
        Ok((title, body)) => (StatusCode::OK, title, body),
        Err(e) => {
            let status = if matches!(e, AuditPageError::Missing(_)) {
                StatusCode::NOT_FOUND
            } else {
                tracing::error!(error = %with_causes(&e), "audit page failed");
                StatusCode::INTERNAL_SERVER_ERROR
            };
            let body = html! { p.error { (with_causes(&e)) } };
            (status, "Not available".to_owned(), body)
        }
    };
    html_response(status, true, page(&title, Nav::Auditor, banner, body))
}

/// Why an auditor's page is not shown. Its text, with its causes, is the page's content.
#[derive(Debug, thiserror::Error)]
pub enum AuditPageError {
    /// No such page or study, or no study at all: a 404.
    #[error("{0}")]
    Missing(String),
    /// The capability report could not be built; the text has the causes already.
    #[error("the capability report cannot be built: {0}")]
    Report(String),
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Study(#[from] StudyError),
    #[error(transparent)]
    Patients(#[from] PatientsError),
}

type Page = Result<(String, Markup), AuditPageError>;

/// The chain's status, verified from the last head these pages found intact (the whole
/// chain the first time after the host starts): a page costs the entries added since, not
/// the log's length. `carrel audit verify` walks it whole.
fn chain_banner(app: &App) -> Option<Markup> {
    let warehouse = app.warehouse.as_ref()?;
    let from = warehouse
        .verified
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let report = match &from {
        Some(head) => warehouse.audit.verify_since(head),
        None => warehouse.audit.verify(),
    };
    let banner = match report {
        Ok(VerifyReport::Intact { entries, head }) => {
            let banner = html! {
                div.chain.ok #chain-status {
                    "Audit chain intact: " (entries) " entries, head "
                    span #head-seq { "#" (head.seq) } " "
                    span.hash #head-hash { (head.hash) } " "
                    span.note #chain-since {
                        @match &from {
                            Some(from) => {
                                "verified from entry #" (from.seq) " (found intact earlier); "
                                code { "carrel audit verify" } " walks it whole"
                            }
                            None => "verified whole",
                        }
                    }
                }
            };
            *warehouse.verified.lock().unwrap_or_else(|p| p.into_inner()) = Some(head);
            banner
        }
        Ok(VerifyReport::Broken { seq, problem }) => {
            let head = warehouse
                .audit
                .head()
                .map(|h| format!("#{} {}", h.seq, h.hash))
                .unwrap_or_else(|e| format!("unreadable ({e})"));
            html! {
                div.chain.broken #chain-status {
                    "Audit chain BROKEN at entry #" (seq) ": " (problem) ". Recorded head " (head)
                }
            }
        }
        Err(e) => html! {
            div.chain.broken #chain-status { "The audit chain cannot be verified: " (e) }
        },
    };
    Some(banner)
}

fn overview(app: &App, who: &Principal) -> Page {
    let intro = html! {
        p {
            "Logged in as auditor " code { (who.actor()) } " on " strong { (app.runtime.name) }
            ". The " a href="/audit/components" { "capability report" }
            " compares what every component is granted with what its binary imports; the "
            a href="/audit/log" { "audit log" } " holds every change and refusal; "
            a href="/audit/patients" { "objections and removals" } " are counted by month."
        }
        h2 { "Studies" }
    };
    let Some(desk) = &app.studies else {
        let body = html! { (intro) p { "The app declares no study." } };
        return Ok(("Auditor's view".into(), body));
    };
    let mut rows = Vec::new();
    for listing in desk.list()? {
        let totals = desk.registry.run_totals(&listing.id)?;
        rows.push((listing, totals));
    }
    let body = html! {
        (intro)
        table #studies {
            (columns(&[
                "Study", "Title", "Principal investigator", "Approval", "Expires", "Runs",
                "Rows read", "Rows released",
            ]))
            tbody {
                @for (listing, totals) in &rows {
                    tr {
                        td {
                            a.study-link href={ "/audit/studies/" (url_encode(&listing.id)) } {
                                (listing.id)
                            }
                        }
                        td { (listing.title) } td { (listing.principal_investigator) }
                        td {
                            (tag(&listing.state))
                            @if listing.changed_since_submission {
                                " " span.tag.finding { "changed since submission" }
                            }
                        }
                        td { (listing.expires) } td.num { (totals.runs) }
                        td.num { (totals.rows_read) } td.num { (totals.rows_released) }
                    }
                }
            }
        }
    };
    Ok(("Auditor's view".into(), body))
}

async fn components(app: &App) -> Page {
    let report = super::capability_report(app).await;
    match report.as_ref() {
        Ok(report) => Ok(("Capability report".into(), capability_page::body(report))),
        Err(e) => Err(AuditPageError::Report(e.clone())),
    }
}

/// One filter of the log: a labelled input holding the filter's value.
fn filter(label: &str, name: &str, value: &Option<String>, placeholder: &str) -> Markup {
    let value = value.as_deref().unwrap_or("");
    html! {
        label {
            (label) " "
            input name=(name) id={ "filter-" (name) } value=(value) placeholder=(placeholder);
        }
    }
}

fn study(app: &App, id: &str, query: &str) -> Page {
    let desk = app
        .studies
        .as_ref()
        .ok_or_else(|| AuditPageError::Missing("The app declares no study.".into()))?;
    let spec = desk.specs.get(id);
    let submission = desk.registry.latest(id)?;
    if spec.is_none() && submission.is_none() {
        return Err(AuditPageError::Missing(format!("No study `{id}`.")));
    }
    let spec_rows = spec.map(|spec| {
        let t = &spec.tool;
        let datasets: Vec<String> = t
            .datasets
            .iter()
            .map(|(d, cols)| format!("{d}: {}", cols.join(", ")))
            .collect();
        [
            ("Title", t.title.clone()),
            ("Purpose", t.purpose.clone()),
            ("Legal basis", t.legal_basis.clone()),
            ("Principal investigator", t.principal_investigator.clone()),
            ("Datasets and columns", datasets.join("; ")),
            (
                "Disclosure",
                format!(
                    "min count {}, rounding {}, max rows {}",
                    t.disclosure.min_count, t.disclosure.rounding, t.disclosure.max_rows
                ),
            ),
            ("Expires", t.expires.clone()),
            ("Manifest section sha256", spec.manifest_sha256.clone()),
        ]
    });
    let owners: Vec<String> = desk
        .registry
        .owners(id)?
        .into_iter()
        .map(|o| format!("{} (added {} by {})", o.holder, o.added_at, o.added_by))
        .collect();
    let totals = desk.registry.run_totals(id)?;
    let form = parse_form(query);
    let after = field(&form, "after");
    let runs = desk.registry.runs_page(
        RunScope::Study(id),
        after,
        page_size(field(&form, "limit").and_then(|l| l.parse().ok())),
    )?;
    let body = html! {
        @if let Some(spec_rows) = &spec_rows {
            table #study-spec { tbody { (rows(spec_rows)) } }
        } @else {
            p.note { "This study is in the register but no longer in the manifest." }
        }
        h2 { "Approval" }
        @match &submission {
            None => p #approval { "Never submitted." },
            Some(s) => {
                p #approval { (tag(s.state().as_str())) }
                table {
                    tbody {
                        (rows(&[
                            ("Submitted", by(Some(&s.submitted_at), Some(&s.submitted_by))),
                            ("Approved", by(s.approved_at.as_deref(), s.approved_by.as_deref())),
                            ("Revoked", by(s.revoked_at.as_deref(), s.revoked_by.as_deref())),
                        ]))
                        tr { th { "wasm sha256" } td.hash { (s.wasm_sha256) } }
                        tr { th { "manifest sha256" } td.hash { (s.manifest_sha256) } }
                    }
                }
            }
        }
        h2 { "Owners" }
        p #owners {
            @if owners.is_empty() { "None: only the operator runs it." } @else { (owners.join("; ")) }
        }
        h2 { "Runs (" (totals.runs) ")" }
        p {
            a href={ "/audit/log?subject=" (url_encode(&format!("study:{id}"))) } {
                "Audit entries of this study"
            }
        }
        @if runs.runs.is_empty() {
            p #no-runs { "No run yet." }
        } @else {
            table #runs {
                (columns(&[
                    "Run", "Started", "By", "Status", "Segments read", "Rows read",
                    "Rows released", "Cells redacted", "Error",
                ]))
                tbody {
                    @for run in &runs.runs {
                        (run_row(run))
                    }
                }
            }
        }
        @if let Some(next) = &runs.next_after {
            nav.pages {
                a id="page-older"
                    href={ "/audit/studies/" (url_encode(id)) "?after=" (url_encode(next)) } {
                    "Older runs"
                }
            }
        }
    };
    Ok((format!("Study {id}"), body))
}

fn run_row(run: &RunRecord) -> Markup {
    html! {
        tr.run id={ "run-" (run.run_id) } {
            td { code { (run.run_id) } }
            td { (run.started_at) } td { (run.actor) } td { (tag(run.status.as_str())) }
            td.segments-read {
                @if run.segments_read.is_empty() {
                    "0"
                } @else {
                    (run.segments_read.len()) " "
                    span.note { (run.segments_read.join(", ")) }
                }
            }
            td.num.rows-read { (run.rows_read) }
            td.num.rows-released { (run.rows_released) }
            td.redacted {
                @match Redactions::of(&run.disclosure) {
                    Some(r) => {
                        span.redacted-total { (r.total) } " "
                        span.note {
                            "(" (r.primary) " primary, " (r.secondary) " secondary, "
                            (r.shares) " shares)"
                        }
                    }
                    None => span.note { "-" },
                }
            }
            td.error { (run.error.as_deref().unwrap_or("")) (study_said(run)) }
        }
    }
}

/// The study's log and the names it was denied: for auditors only.
fn study_said(run: &RunRecord) -> Markup {
    let lines: Vec<String> = run
        .denied
        .iter()
        .map(|d| format!("denied: {d}"))
        .chain(run.logs.iter().cloned())
        .collect();
    html! {
        @if !lines.is_empty() {
            details.study-log {
                summary { "log (" (lines.len()) ")" }
                pre { (lines.join("\n")) }
            }
        }
    }
}

fn log(app: &App, query: &str) -> Page {
    let warehouse = app.warehouse.as_ref().expect("checked by the caller");
    let form = parse_form(query);
    let filters = AuditFilter {
        actor: field(&form, "actor").map(str::to_owned),
        action: field(&form, "action").map(str::to_owned),
        subject: field(&form, "subject").map(str::to_owned),
    };
    let seq = |name: &str| field(&form, name).and_then(|v| v.parse::<u64>().ok());
    let cursor = match (seq("before"), seq("after")) {
        (Some(before), _) => PageCursor::Before(before),
        (None, Some(after)) => PageCursor::After(after),
        (None, None) => PageCursor::Newest,
    };
    let shown = warehouse.audit.page(&filters, cursor, PAGE_SIZE)?;
    let total = warehouse.audit.head()?.seq;
    let (newer, older) = match (shown.first(), shown.last()) {
        (Some(first), Some(last)) => (
            warehouse.audit.has_more(&filters, first.seq, false)?,
            warehouse.audit.has_more(&filters, last.seq, true)?,
        ),
        _ => (false, false),
    };
    let range = match (shown.first(), shown.last()) {
        (Some(first), Some(last)) => format!("entries #{} to #{}", first.seq, last.seq),
        _ => "no entry".to_owned(),
    };
    let link = |key: &str, n: u64| {
        let q: String = [
            ("actor", &filters.actor),
            ("action", &filters.action),
            ("subject", &filters.subject),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={}&", url_encode(v))))
        .collect();
        format!("/audit/log?{q}{key}={n}")
    };
    let body = html! {
        form.filters method="get" action="/audit/log" id="log-filters" {
            (filter("Actor", "actor", &filters.actor, "token:…"))
            (filter("Action", "action", &filters.action, "study or study.run"))
            (filter("Subject", "subject", &filters.subject, "study:"))
            button type="submit" id="filter-submit" { "Filter" } " " a href="/audit/log" { "Clear" }
        }
        p #log-summary {
            "The log has " (total) " entries. Matching ones, newest first, " (PAGE_SIZE)
            " a page: " (range) "."
        }
        table #log {
            (columns(&["#", "Time", "Actor", "Action", "Subject", "Details"]))
            tbody {
                @for e in &shown {
                    tr.entry {
                        td.num.seq { (e.seq) } td { (e.time) } td.actor { (e.actor) }
                        td.action { (e.action) } td.subject { (e.subject) }
                        td { code { (clip(&compact(&e.details), DETAILS_CHARS)) } }
                    }
                }
            }
        }
        nav.pages {
            @if let (true, Some(first)) = (newer, shown.first()) {
                a id="page-newer" href=(link("after", first.seq)) { "Newer" }
            }
            @if let (true, Some(last)) = (older, shown.last()) {
                a id="page-older" href=(link("before", last.seq)) { "Older" }
            }
        }
    };
    Ok(("Audit log".into(), body))
}

/// `when by who`, with `-` for what is not known.
fn by(when: Option<&str>, who: Option<&str>) -> String {
    format!("{} by {}", when.unwrap_or("-"), who.unwrap_or("-"))
}
