//! The researcher's results: `/results` lists the runs of the studies the researcher owns;
//! `/results/<run-id>` shows one of them: who ran which study with which parameters,
//! when it started and about how long it took, the hashes of the binary, the manifest
//! section and the output, download links, the epidemic curves when the table has weeks
//! and shares ([`super::curves`]), and the released table a page at a time with its
//! redacted cells marked and explained ([`super::result_table`]). A researcher sees only
//! the runs of studies they own ([`carrel_warehouse::study::owners`]), as a researcher sees a run
//! ([`carrel_warehouse::study::view`]): no study log, no error text, no figure of what was read.

use super::curves;
use super::html::{Nav, esc, field, html, page_with, parse_form, tag, url_decode, url_encode};
use super::result_table::{self, Redactions};
use carrel_runtime::responses::HostResponse;
use carrel_warehouse::app::App;
use carrel_warehouse::study::registry::RegistryError;
use carrel_warehouse::study::run_pages::page_size;
use carrel_warehouse::study::view::duration_text;
use carrel_warehouse::study::{Caller, ResearcherRun, StudyService};
use carrel_warehouse::tokens::Principal;
use http::StatusCode;
use std::fmt::Write;

#[derive(Debug, thiserror::Error)]
enum PageError {
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("the released table cannot be read: {0}")]
    Table(String),
}

type Page = Result<(String, String), PageError>;

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
        Ok((title, body)) => html(
            StatusCode::OK,
            true,
            page_with(&title, Nav::Researcher, "", &body),
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
    let body = format!("<p class=\"error\">{}</p>", esc(&e.to_string()));
    html(
        status,
        true,
        page_with("Not available", Nav::Researcher, "", &body),
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
        .unwrap_or_else(|e| error_page(&PageError::Table(format!("{e:#}"))))
}

fn redacted_cells(run: &ResearcherRun) -> String {
    Redactions::of(&run.disclosure)
        .map(|r| r.total.to_string())
        .unwrap_or_else(|| "-".into())
}

fn params(run: &ResearcherRun) -> String {
    if run.params.is_empty() {
        return "none".into();
    }
    run.params
        .iter()
        .map(|(k, v)| format!("<code>{}={}</code>", esc(k), esc(v)))
        .collect::<Vec<_>>()
        .join(" ")
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
    let mut body = format!(
        "<p>Logged in as <code id=\"holder\">{}</code>. Runs of the studies you own, newest \
         first. A run is started with <code>POST /api/studies/&lt;id&gt;/runs</code> or \
         <code>carrel study run &lt;id&gt; --by {}</code>.</p>",
        esc(&caller.actor()),
        esc(&who.token_id)
    );
    if runs.is_empty() {
        body.push_str("<p id=\"no-runs\">No run yet.</p>");
        return Ok(("My runs".into(), body));
    }
    body.push_str(
        "<table id=\"runs\"><thead><tr><th>Run</th><th>Study</th><th>Started</th><th>Status</th>\
         <th>Parameters</th><th>By</th><th>Rows released</th><th>Cells redacted</th></tr></thead><tbody>",
    );
    for run in &runs {
        let _ = write!(
            body,
            "<tr class=\"run\"><td class=\"nowrap\"><a class=\"run-link\" href=\"/results/{}\">{}</a></td>\
             <td class=\"nowrap\">{}</td><td class=\"nowrap\">{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            url_encode(&run.run_id),
            esc(&run.run_id),
            esc(&run.study),
            esc(&when(&run.started_at)),
            tag(run.status.as_str()),
            params(run),
            esc(&run.actor),
            run.rows_released,
            redacted_cells(run),
        );
    }
    body.push_str("</tbody></table>");
    if let Some(next) = &page.next_after {
        let _ = write!(
            body,
            "<nav class=\"pages\"><a id=\"page-older\" href=\"/results?after={}\">Older runs</a></nav>",
            url_encode(next)
        );
    }
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
    let rows: [(&str, &str, String); 12] = [
        (
            "study",
            "Study",
            format!("<code>{}</code> {}", esc(&run.study), esc(title)),
        ),
        (
            "status",
            "Status",
            format!(
                "{} {}",
                tag(run.status.as_str()),
                esc(run.researcher_error.as_deref().unwrap_or(""))
            ),
        ),
        (
            "actor",
            "Run by",
            format!("<code>{}</code>", esc(&run.actor)),
        ),
        ("started", "Started", esc(&when(&run.started_at))),
        (
            "duration",
            "Took",
            esc(&duration_text(run.duration_seconds)),
        ),
        ("params", "Parameters", params(&run)),
        ("released", "Rows released", run.rows_released.to_string()),
        ("redacted", "Cells redacted", redacted_cells(&run)),
        ("approval", "Approved", esc(&approval)),
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
    let mut body = String::from("<table id=\"run-summary\"><tbody>");
    for (id, name, value) in rows {
        let _ = write!(
            body,
            "<tr id=\"run-{id}\"><th>{name}</th><td>{value}</td></tr>"
        );
    }
    body.push_str("</tbody></table>");
    let Some(ipc) = desk.registry.result(&run.run_id)? else {
        body.push_str("<p id=\"no-table\">This run released no table.</p>");
        return Ok((format!("{}: {}", run.study, run.run_id), body));
    };
    let id = url_encode(&run.run_id);
    let _ = write!(
        body,
        "<h2>Downloads</h2><p id=\"downloads\"><a id=\"download-csv\" href=\"/results/{id}/result.csv\" \
         download=\"{name}.csv\">CSV</a> (a redacted cell is empty) · <a id=\"download-arrow\" \
         href=\"/results/{id}/result.arrow\" download=\"{name}.arrow\">Arrow IPC</a> (a redacted \
         cell is null; the columns keep their <code>carrel.*</code> metadata). Scripts get the \
         same files with a bearer token at <code>/api/runs/{name}/result.csv</code> and \
         <code>/api/runs/{name}/result.arrow</code>.</p>",
        name = esc(&run.run_id)
    );
    body.push_str(&super::model_charts::section(
        &run.run_id,
        &run.model_report,
    ));
    let batches = carrel_pseudonym::from_ipc(&ipc).map_err(|e| PageError::Table(e.to_string()))?;
    let Some(schema) = batches.first().map(|b| b.schema()) else {
        body.push_str("<p id=\"no-table\">The released table has no rows.</p>");
        return Ok((format!("{}: {}", run.study, run.run_id), body));
    };
    let table = arrow_select::concat::concat_batches(&schema, &batches)
        .map_err(|e| PageError::Table(e.to_string()))?;
    let charts = curves::charts(&table);
    if !charts.is_empty() {
        body.push_str(
            "<h2>Curves</h2><p class=\"note\">A gap in a line is a week whose share is unknown: a \
             cell behind it is redacted, or no consultation was coded.</p><div id=\"curves\">",
        );
        for chart in &charts {
            body.push_str(&curves::svg(chart));
        }
        body.push_str("</div>");
    }
    let page_no: usize = field(&parse_form(query), "page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(1);
    let _ = write!(
        body,
        "<h2>Released table</h2>{}",
        result_table::legend(policy, &redactions.unwrap_or_default())
    );
    let mut rendered = String::new();
    let pages = result_table::render(&table, page_no, &mut rendered);
    let page_no = page_no.clamp(1, pages);
    let _ = write!(
        body,
        "<p id=\"table-summary\">{} rows; page {page_no} of {pages}, {} rows a page.</p>{rendered}",
        table.num_rows(),
        result_table::ROWS_PER_PAGE
    );
    if pages > 1 {
        body.push_str("<nav class=\"pages\">");
        if page_no > 1 {
            let _ = write!(
                body,
                "<a id=\"page-previous\" href=\"/results/{id}?page={}\">Previous</a>",
                page_no - 1
            );
        }
        if page_no < pages {
            let _ = write!(
                body,
                "<a id=\"page-next\" href=\"/results/{id}?page={}\">Next</a>",
                page_no + 1
            );
        }
        body.push_str("</nav>");
    }
    Ok((format!("{}: {}", run.study, run.run_id), body))
}

/// An RFC 3339 UTC time to the second: `2026-03-01 10:00:00 UTC`.
fn when(time: &str) -> String {
    match (time.get(..10), time.get(11..19)) {
        (Some(day), Some(clock)) if time.ends_with('Z') => format!("{day} {clock} UTC"),
        _ => time.to_owned(),
    }
}

fn hash(text: &str) -> String {
    format!("<span class=\"hash\">{}</span>", esc(text))
}
