//! The researcher's results: `/results` lists the runs of the studies the researcher owns;
//! `/results/<run-id>` shows one of them: who ran which study with which parameters,
//! when it started and about how long it took, the hashes of the binary, the manifest
//! section and the output, download links, the epidemic curves when the table has weeks
//! and shares ([`super::curves`]), and the released table a page at a time with its
//! redacted cells marked and explained ([`super::result_table`]). A researcher sees only
//! the runs of studies they own ([`carrel_warehouse::study::owners`]), as a researcher sees a run
//! ([`carrel_warehouse::study::view`]): no study log, no error text, no figure of what was read.

use super::curves;
use super::html::{Nav, html_response, page, tag};
use super::result_table::{self, Redactions};
use crate::forms::{field, parse_form, url_decode, url_encode};
use carrel_runtime::error::with_causes;
use carrel_runtime::responses::HostResponse;
use carrel_warehouse::app::App;
use carrel_warehouse::study::registry::RegistryError;
use carrel_warehouse::study::run_pages::page_size;
use carrel_warehouse::study::view::duration_text;
use carrel_warehouse::study::{Caller, ResearcherRun, StudyService};
use carrel_warehouse::tokens::Principal;
use http::StatusCode;
use maud::{Markup, html};

#[derive(Debug, thiserror::Error)]
enum PageError {
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("the released table cannot be read: {0}")]
    Table(String),
}

type Page = Result<(String, Markup), PageError>;

pub async fn handle(app: &App, who: &Principal, path: &str, query: &str) -> HostResponse {
    let caller = Caller::Holder(who.clone());
    let segments: Vec<String> = path
        .trim_start_matches('/')
        .split('/')
        .map(url_decode)
        .collect();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let outcome = match (&app.studies, segments.as_slice()) {
        (None, _) => Err(PageError::NotFound("This app declares no study.".into())),
        (Some(desk), ["results"]) => list(desk, who, &caller, query),
        (Some(desk), ["results", run_id]) => run_page(desk, &caller, run_id, query),
        (Some(desk), ["results", run_id, file]) => {
            return download(desk, &caller, run_id, file);
        }
        _ => Err(PageError::NotFound("No such page.".into())),
    };
    match outcome {
        Ok((title, body)) => html_response(
            StatusCode::OK,
            true,
            page(&title, Nav::Researcher, None, body),
        ),
        Err(e) => error_page(&e),
    }
}

fn error_page(e: &PageError) -> HostResponse {
    let status = match e {
        PageError::NotFound(_) => StatusCode::NOT_FOUND,
        _ => {
            tracing::error!(error = %e, "results page failed");
            StatusCode::INTERNAL_SERVER_ERROR
        }
    };
    let body = html! { p.error { (e.to_string()) } };
    html_response(
        status,
        true,
        page("Not available", Nav::Researcher, None, body),
    )
}

/// The run, if it exists and is of a study the caller owns.
fn own_run(desk: &StudyService, who: &Caller, run_id: &str) -> Result<ResearcherRun, PageError> {
    match desk.registry.run_for(who, run_id) {
        Ok(run) => Ok(run.for_researcher()),
        Err(RegistryError::UnknownRun(_)) => Err(PageError::NotFound(format!(
            "No run `{run_id}` of a study you own."
        ))),
        Err(e) => Err(e.into()),
    }
}

fn download(desk: &StudyService, who: &Caller, run_id: &str, file: &str) -> HostResponse {
    if let Err(e) = own_run(desk, who, run_id) {
        return error_page(&e);
    }
    crate::api::result_file(desk, run_id, file)
        .unwrap_or_else(|e| error_page(&PageError::Table(with_causes(&e))))
}

fn redacted_cells(run: &ResearcherRun) -> String {
    Redactions::of(&run.disclosure)
        .map(|r| r.total.to_string())
        .unwrap_or_else(|| "-".into())
}

fn params(run: &ResearcherRun) -> Markup {
    html! {
        @if run.params.is_empty() {
            "none"
        }
        @for (i, (k, v)) in run.params.iter().enumerate() {
            @if i > 0 {
                " "
            }
            code { (k) "=" (v) }
        }
    }
}

fn list(desk: &StudyService, who: &Principal, caller: &Caller, query: &str) -> Page {
    let form = parse_form(query);
    let page = desk.registry.runs_page_for(
        caller,
        None,
        field(&form, "after"),
        page_size(field(&form, "limit").and_then(|l| l.parse().ok())),
    );
    let page = match page {
        Err(RegistryError::UnknownRun(_)) => {
            return Err(PageError::NotFound("No such page of runs.".into()));
        }
        other => other?,
    };
    let runs: Vec<ResearcherRun> = page.runs.iter().map(|r| r.for_researcher()).collect();
    let body = html! {
        p {
            "Logged in as " code #holder { (caller.actor()) }
            ". Runs of the studies you own, newest first. A run is started with "
            code { "POST /api/studies/<id>/runs" } " or "
            code { "carrel study run <id> --by " (who.token_id) } "."
        }
        @if runs.is_empty() {
            p #no-runs { "No run yet." }
        } @else {
            table #runs {
                thead {
                    tr {
                        th { "Run" }
                        th { "Study" }
                        th { "Started" }
                        th { "Status" }
                        th { "Parameters" }
                        th { "By" }
                        th { "Rows released" }
                        th { "Cells redacted" }
                    }
                }
                tbody {
                    @for run in &runs {
                        tr.run {
                            td.nowrap {
                                a.run-link href={ "/results/" (url_encode(&run.run_id)) } {
                                    (run.run_id)
                                }
                            }
                            td.nowrap { (run.study) }
                            td.nowrap { (when(&run.started_at)) }
                            td { (tag(run.status.as_str())) }
                            td { (params(run)) }
                            td { (run.actor) }
                            td.num { (run.rows_released) }
                            td.num { (redacted_cells(run)) }
                        }
                    }
                }
            }
            @if let Some(next) = &page.next_after {
                nav.pages {
                    a #page-older href={ "/results?after=" (url_encode(next)) } { "Older runs" }
                }
            }
        }
    };
    Ok(("My runs".into(), body))
}

fn run_page(desk: &StudyService, who: &Caller, run_id: &str, query: &str) -> Page {
    let run = own_run(desk, who, run_id)?;
    let spec = desk.specs.get(&run.study);
    // The policy the run applied is the manifest section's it was run with; the current
    // one says the same only if that section is unchanged.
    let policy = spec
        .filter(|s| s.manifest_sha256 == run.manifest_sha256)
        .map(|s| &s.tool.disclosure);
    let approval = desk
        .registry
        .latest(&run.study)?
        .filter(|s| s.wasm_sha256 == run.wasm_sha256 && s.manifest_sha256 == run.manifest_sha256)
        .and_then(|s| {
            let by = format!(
                "{} at {}",
                s.approved_by.as_deref()?,
                when(s.approved_at.as_deref()?)
            );
            Some(match (&s.revoked_by, &s.revoked_at) {
                (Some(who), Some(at)) => format!("{by}; revoked by {who} at {}", when(at)),
                _ => by,
            })
        })
        .unwrap_or_else(|| "not the latest submission of this study".into());
    let title = spec.map(|s| s.tool.title.as_str()).unwrap_or("");
    let redactions = Redactions::of(&run.disclosure);
    let rows: [(&str, &str, Markup); 12] = [
        ("study", "Study", html! { code { (run.study) } " " (title) }),
        (
            "status",
            "Status",
            html! {
                (tag(run.status.as_str())) " " (run.researcher_error.as_deref().unwrap_or(""))
            },
        ),
        ("actor", "Run by", html! { code { (run.actor) } }),
        ("started", "Started", html! { (when(&run.started_at)) }),
        (
            "duration",
            "Took",
            html! { (duration_text(run.duration_seconds)) },
        ),
        ("params", "Parameters", params(&run)),
        ("released", "Rows released", html! { (run.rows_released) }),
        (
            "redacted",
            "Cells redacted",
            html! { (redacted_cells(&run)) },
        ),
        ("approval", "Approved", html! { (approval) }),
        ("wasm", "Binary (wasm) sha256", hash(&run.wasm_sha256)),
        (
            "manifest",
            "Manifest section sha256",
            hash(&run.manifest_sha256),
        ),
        (
            "output",
            "Output (Arrow IPC) sha256",
            hash(run.output_sha256.as_deref().unwrap_or("-")),
        ),
    ];
    let summary = html! {
        table #run-summary {
            tbody {
                @for (id, name, value) in rows {
                    tr id={ "run-" (id) } {
                        th { (name) }
                        td { (value) }
                    }
                }
            }
        }
    };
    let page_title = format!("{}: {}", run.study, run.run_id);
    let Some(ipc) = desk.registry.result(&run.run_id)? else {
        let body = html! {
            (summary)
            p #no-table { "This run released no table." }
        };
        return Ok((page_title, body));
    };
    let id = url_encode(&run.run_id);
    let name = &run.run_id;
    let downloads = html! {
        h2 { "Downloads" }
        p #downloads {
            a #download-csv href={ "/results/" (id) "/result.csv" } download={ (name) ".csv" } {
                "CSV"
            }
            " (a redacted cell is empty) · "
            a #download-arrow href={ "/results/" (id) "/result.arrow" } download={ (name) ".arrow" } {
                "Arrow IPC"
            }
            " (a redacted cell is null; the columns keep their "
            code { "carrel.*" }
            " metadata). Scripts get the same files with a bearer token at "
            code { "/api/runs/" (name) "/result.csv" }
            " and "
            code { "/api/runs/" (name) "/result.arrow" }
            "."
        }
        (super::model_charts::section(&run.run_id, &run.model_report))
    };
    let batches = carrel_pseudonym::from_ipc(&ipc).map_err(|e| PageError::Table(e.to_string()))?;
    let Some(schema) = batches.first().map(|b| b.schema()) else {
        let body = html! {
            (summary)
            (downloads)
            p #no-table { "The released table has no rows." }
        };
        return Ok((page_title, body));
    };
    let table = arrow_select::concat::concat_batches(&schema, &batches)
        .map_err(|e| PageError::Table(e.to_string()))?;
    let charts = curves::charts(&table);
    let page_no: usize = field(&parse_form(query), "page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(1);
    let (rendered, pages) = result_table::render(&table, page_no);
    let page_no = page_no.clamp(1, pages);
    let body = html! {
        (summary)
        (downloads)
        @if !charts.is_empty() {
            h2 { "Curves" }
            p.note {
                "A gap in a line is a week whose share is unknown: a cell behind it is \
                 redacted, or no consultation was coded."
            }
            div #curves {
                @for chart in &charts {
                    (curves::svg(chart))
                }
            }
        }
        h2 { "Released table" }
        (result_table::legend(policy, &redactions.unwrap_or_default()))
        p #table-summary {
            (table.num_rows()) " rows; page " (page_no) " of " (pages) ", "
            (result_table::ROWS_PER_PAGE) " rows a page."
        }
        (rendered)
        @if pages > 1 {
            nav.pages {
                @if page_no > 1 {
                    a #page-previous href={ "/results/" (id) "?page=" (page_no - 1) } {
                        "Previous"
                    }
                }
                @if page_no < pages {
                    a #page-next href={ "/results/" (id) "?page=" (page_no + 1) } { "Next" }
                }
            }
        }
    };
    Ok((page_title, body))
}

/// An RFC 3339 UTC time to the second: `2026-03-01 10:00:00 UTC`.
fn when(time: &str) -> String {
    match (time.get(..10), time.get(11..19)) {
        (Some(day), Some(clock)) if time.ends_with('Z') => format!("{day} {clock} UTC"),
        _ => time.to_owned(),
    }
}

fn hash(text: &str) -> Markup {
    html! { span.hash { (text) } }
}
