//! The auditor's pages: overview, capability report, one study with its runs, and the
//! audit log filtered and paged. The chain status (the audit log verified from the last
//! head found intact, with the head's seq and hash) is at the top of every page. Every
//! list is a bounded page, read by a cursor.

use super::html::{esc, field, html, page, parse_form, tag, url_encode};
use super::result_table::Redactions;
use carrel_runtime::responses::HostResponse;
use carrel_vault::audit::{AuditFilter, PageCursor, VerifyReport, clip};
use carrel_warehouse::app::App;
use carrel_warehouse::audit_commands::log::compact;
use carrel_warehouse::audit_commands::report::{ComponentReport, ImportClass};
use carrel_warehouse::study::registry::RunRecord;
use carrel_warehouse::study::run_pages::{RunScope, page_size};
use carrel_warehouse::tokens::Principal;
use http::StatusCode;
use std::fmt::Write;

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
        ["audit", "patients"] => super::patients_page::auditor_page(app),
        ["audit", "studies", id] => study(app, &super::html::url_decode(id), query),
        _ => Err(Missing("No such page.".into()).into()),
    };
    match outcome {
        Ok((title, body)) => html(StatusCode::OK, true, page(&title, true, &banner, &body)),
        Err(e) => {
            let status = if e.is::<Missing>() {
                StatusCode::NOT_FOUND
            } else {
                tracing::error!(error = %format!("{e:#}"), "audit page failed");
                StatusCode::INTERNAL_SERVER_ERROR
            };
            let body = format!("<p class=\"error\">{}</p>", esc(&format!("{e:#}")));
            html(status, true, page("Not available", true, &banner, &body))
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Missing(String);

type Page = anyhow::Result<(String, String)>;

/// The chain's status, verified from the last head these pages found intact (the whole
/// chain the first time after the host starts): a page costs the entries added since, not
/// the log's length. `carrel audit verify` walks it whole.
fn chain_banner(app: &App) -> String {
    let Some(warehouse) = &app.warehouse else {
        return String::new();
    };
    let from = warehouse
        .verified
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let report = match &from {
        Some(head) => warehouse.audit.verify_since(head),
        None => warehouse.audit.verify(),
    };
    match report {
        Ok(VerifyReport::Intact { entries, head }) => {
            let since = match &from {
                Some(from) => format!(
                    "verified from entry #{} (found intact earlier); <code>carrel audit verify</code> walks it whole",
                    from.seq
                ),
                None => "verified whole".to_owned(),
            };
            let banner = format!(
                "<div class=\"chain ok\" id=\"chain-status\">Audit chain intact: {entries} entries, \
                 head <span id=\"head-seq\">#{}</span> <span class=\"hash\" id=\"head-hash\">{}</span> \
                 <span class=\"note\" id=\"chain-since\">{since}</span></div>",
                head.seq,
                esc(&head.hash)
            );
            *warehouse.verified.lock().unwrap_or_else(|p| p.into_inner()) = Some(head);
            banner
        }
        Ok(VerifyReport::Broken { seq, problem }) => {
            let head = warehouse
                .audit
                .head()
                .map(|h| format!("#{} {}", h.seq, h.hash))
                .unwrap_or_else(|e| format!("unreadable ({e})"));
            format!(
                "<div class=\"chain broken\" id=\"chain-status\">Audit chain BROKEN at entry #{seq}: {}. \
                 Recorded head {}</div>",
                esc(&problem.to_string()),
                esc(&head)
            )
        }
        Err(e) => format!(
            "<div class=\"chain broken\" id=\"chain-status\">The audit chain cannot be verified: {}</div>",
            esc(&e.to_string())
        ),
    }
}

fn overview(app: &App, who: &Principal) -> Page {
    let mut body = format!(
        "<p>Logged in as auditor <code>{}</code> on <strong>{}</strong>. The \
         <a href=\"/audit/components\">capability report</a> compares what every component \
         is granted with what its binary imports; the <a href=\"/audit/log\">audit log</a> \
         holds every change and refusal; <a href=\"/audit/patients\">objections and \
         removals</a> are counted by month.</p><h2>Studies</h2>",
        esc(&who.actor()),
        esc(&app.runtime.name)
    );
    let Some(desk) = &app.studies else {
        body.push_str("<p>The app declares no study.</p>");
        return Ok(("Auditor's view".into(), body));
    };
    body.push_str(
        "<table id=\"studies\"><thead><tr><th>Study</th><th>Title</th><th>Principal investigator</th>\
         <th>Approval</th><th>Expires</th><th>Runs</th><th>Rows read</th><th>Rows released</th>\
         </tr></thead><tbody>",
    );
    for listing in desk.list()? {
        let totals = desk.registry.run_totals(&listing.id)?;
        let changed = if listing.changed_since_submission {
            " <span class=\"tag finding\">changed since submission</span>"
        } else {
            ""
        };
        let _ = write!(
            body,
            "<tr><td><a class=\"study-link\" href=\"/audit/studies/{}\">{}</a></td><td>{}</td><td>{}</td>\
             <td>{}{changed}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td></tr>",
            url_encode(&listing.id),
            esc(&listing.id),
            esc(&listing.title),
            esc(&listing.principal_investigator),
            tag(&listing.state),
            esc(&listing.expires),
            totals.runs,
            totals.rows_read,
            totals.rows_released,
        );
    }
    body.push_str("</tbody></table>");
    Ok(("Auditor's view".into(), body))
}

async fn components(app: &App) -> Page {
    let report = super::capability_report(app).await;
    let report = match report.as_ref() {
        Ok(r) => r,
        Err(e) => anyhow::bail!("the capability report cannot be built: {e}"),
    };
    let findings: usize = report.components.iter().map(|c| c.findings.len()).sum();
    let mut body = format!(
        "<p>Application <strong>{}</strong> {} from <code>{}</code>: {} components, \
         <span id=\"findings-total\">{findings}</span> findings. Built once when first shown; \
         approvals below are as of then (the <a href=\"/audit\">overview</a> is live).</p>",
        esc(&report.application.name),
        esc(report.application.version.as_deref().unwrap_or("")),
        esc(&report.manifest),
        report.components.len()
    );
    for c in &report.components {
        component(c, &mut body);
    }
    Ok(("Capability report".into(), body))
}

fn component(c: &ComponentReport, out: &mut String) {
    let _ = write!(
        out,
        "<section class=\"component\" id=\"component-{id}\"><h2>{id}</h2><p><code>{}</code> sha256 \
         <span class=\"hash\">{}</span></p>",
        esc(&c.source),
        esc(c.sha256.as_deref().unwrap_or("(not built)")),
        id = esc(&c.id)
    );
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
    out.push_str("<h3>Granted</h3><table class=\"grants\"><tbody>");
    for (name, value) in grants.iter().filter(|(_, v)| !v.is_empty()) {
        let _ = write!(
            out,
            "<tr><th>{}</th><td>{}</td></tr>",
            esc(name),
            esc(value)
        );
    }
    out.push_str("</tbody></table><h3>Imported by the binary</h3><table class=\"imports\"><thead><tr>\
                  <th>Interface</th><th>Version</th><th>Class</th><th>Granted</th><th>Note</th></tr></thead><tbody>");
    for i in &c.imports {
        let class = match i.class {
            ImportClass::Capability => "capability",
            ImportClass::Baseline => "baseline",
            ImportClass::Types => "types",
            ImportClass::Never => "never",
            ImportClass::Unknown => "unknown",
        };
        let granted = match i.granted {
            Some(true) => "yes",
            Some(false) => "NO",
            None => "",
        };
        let _ = write!(
            out,
            "<tr><td><code>{}</code></td><td>{}</td><td>{class}</td><td>{granted}</td><td>{}</td></tr>",
            esc(&i.interface),
            esc(i.version.as_deref().unwrap_or("")),
            esc(&i.note)
        );
    }
    out.push_str("</tbody></table><h3>Findings</h3>");
    if c.findings.is_empty() {
        out.push_str("<p class=\"note\">None: grants and imports match.</p>");
    } else {
        out.push_str("<ul class=\"findings\">");
        for f in &c.findings {
            let _ = write!(
                out,
                "<li>{} <code>{}</code>: {}</li>",
                tag(f.kind.label()).replace("class=\"tag ", "class=\"tag finding "),
                esc(&f.subject),
                esc(&f.message)
            );
        }
        out.push_str("</ul>");
    }
    if let Some(a) = &c.approval {
        let _ = write!(
            out,
            "<p>Approval: {} <span class=\"note\">approved by {} at {}</span></p>",
            tag(&a.state),
            esc(a.approved_by.as_deref().unwrap_or("-")),
            esc(a.approved_at.as_deref().unwrap_or("-"))
        );
    }
    out.push_str("</section>");
}

fn study(app: &App, id: &str, query: &str) -> Page {
    let desk = app
        .studies
        .as_ref()
        .ok_or_else(|| Missing("The app declares no study.".into()))?;
    let spec = desk.specs.get(id);
    let submission = desk.registry.latest(id)?;
    if spec.is_none() && submission.is_none() {
        return Err(Missing(format!("No study `{id}`.")).into());
    }
    let mut body = String::new();
    if let Some(spec) = spec {
        let t = &spec.tool;
        let datasets: Vec<String> = t
            .datasets
            .iter()
            .map(|(d, cols)| format!("{d}: {}", cols.join(", ")))
            .collect();
        let rows = [
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
        ];
        body.push_str("<table id=\"study-spec\"><tbody>");
        for (k, v) in rows {
            let _ = write!(body, "<tr><th>{k}</th><td>{}</td></tr>", esc(&v));
        }
        body.push_str("</tbody></table>");
    } else {
        body.push_str(
            "<p class=\"note\">This study is in the register but no longer in the manifest.</p>",
        );
    }
    body.push_str("<h2>Approval</h2>");
    match &submission {
        None => body.push_str("<p id=\"approval\">Never submitted.</p>"),
        Some(s) => {
            let _ = write!(
                body,
                "<p id=\"approval\">{}</p><table><tbody><tr><th>Submitted</th><td>{} by {}</td></tr>\
                 <tr><th>Approved</th><td>{} by {}</td></tr><tr><th>Revoked</th><td>{} by {}</td></tr>\
                 <tr><th>wasm sha256</th><td class=\"hash\">{}</td></tr>\
                 <tr><th>manifest sha256</th><td class=\"hash\">{}</td></tr></tbody></table>",
                tag(s.state().as_str()),
                esc(&s.submitted_at),
                esc(&s.submitted_by),
                esc(s.approved_at.as_deref().unwrap_or("-")),
                esc(s.approved_by.as_deref().unwrap_or("-")),
                esc(s.revoked_at.as_deref().unwrap_or("-")),
                esc(s.revoked_by.as_deref().unwrap_or("-")),
                esc(&s.wasm_sha256),
                esc(&s.manifest_sha256),
            );
        }
    }
    let owners: Vec<String> = desk
        .registry
        .owners(id)?
        .into_iter()
        .map(|o| format!("{} (added {} by {})", o.holder, o.added_at, o.added_by))
        .collect();
    let _ = write!(
        body,
        "<h2>Owners</h2><p id=\"owners\">{}</p>",
        if owners.is_empty() {
            "None: only the operator runs it.".to_owned()
        } else {
            esc(&owners.join("; "))
        }
    );
    let totals = desk.registry.run_totals(id)?;
    let form = parse_form(query);
    let after = field(&form, "after");
    let runs = desk.registry.runs_page(
        RunScope::Study(id),
        after,
        page_size(field(&form, "limit").and_then(|l| l.parse().ok())),
    )?;
    let _ = write!(
        body,
        "<h2>Runs ({})</h2><p><a href=\"/audit/log?subject={}\">Audit entries of this study</a></p>",
        totals.runs,
        url_encode(&format!("study:{id}"))
    );
    if runs.runs.is_empty() {
        body.push_str("<p id=\"no-runs\">No run yet.</p>");
    } else {
        body.push_str(
            "<table id=\"runs\"><thead><tr><th>Run</th><th>Started</th><th>By</th><th>Status</th>\
             <th>Segments read</th><th>Rows read</th><th>Rows released</th><th>Cells redacted</th>\
             <th>Error</th></tr></thead><tbody>",
        );
        for run in &runs.runs {
            run_row(run, &mut body);
        }
        body.push_str("</tbody></table>");
    }
    if let Some(next) = &runs.next_after {
        let _ = write!(
            body,
            "<nav class=\"pages\"><a id=\"page-older\" href=\"/audit/studies/{}?after={}\">Older runs</a></nav>",
            url_encode(id),
            url_encode(next)
        );
    }
    Ok((format!("Study {id}"), body))
}

fn run_row(run: &RunRecord, out: &mut String) {
    let redacted = match Redactions::of(&run.disclosure) {
        Some(r) => format!(
            "<span class=\"redacted-total\">{}</span> <span class=\"note\">({} primary, {} secondary, {} shares)</span>",
            r.total, r.primary, r.secondary, r.shares
        ),
        None => "<span class=\"note\">-</span>".into(),
    };
    let segments = if run.segments_read.is_empty() {
        "0".to_owned()
    } else {
        format!(
            "{} <span class=\"note\">{}</span>",
            run.segments_read.len(),
            esc(&run.segments_read.join(", "))
        )
    };
    let _ = write!(
        out,
        "<tr class=\"run\" id=\"run-{id}\"><td><code>{id}</code></td><td>{}</td><td>{}</td><td>{}</td>\
         <td class=\"segments-read\">{segments}</td><td class=\"num rows-read\">{}</td>\
         <td class=\"num rows-released\">{}</td><td class=\"redacted\">{redacted}</td><td class=\"error\">{}{}</td></tr>",
        esc(&run.started_at),
        esc(&run.actor),
        tag(run.status.as_str()),
        run.rows_read,
        run.rows_released,
        esc(run.error.as_deref().unwrap_or("")),
        study_said(run),
        id = esc(&run.run_id),
    );
}

/// The study's log and the names it was denied: for auditors only.
fn study_said(run: &RunRecord) -> String {
    let lines: Vec<String> = run
        .denied
        .iter()
        .map(|d| format!("denied: {d}"))
        .chain(run.logs.iter().cloned())
        .collect();
    if lines.is_empty() {
        return String::new();
    }
    format!(
        "<details class=\"study-log\"><summary>log ({})</summary><pre>{}</pre></details>",
        lines.len(),
        esc(&lines.join("\n"))
    )
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
    let value = |v: &Option<String>| esc(v.as_deref().unwrap_or(""));
    let range = match (shown.first(), shown.last()) {
        (Some(first), Some(last)) => format!("entries #{} to #{}", first.seq, last.seq),
        _ => "no entry".to_owned(),
    };
    let mut body = format!(
        "<form class=\"filters\" method=\"get\" action=\"/audit/log\" id=\"log-filters\">\
         <label>Actor <input name=\"actor\" id=\"filter-actor\" value=\"{}\" placeholder=\"token:…\"></label>\
         <label>Action <input name=\"action\" id=\"filter-action\" value=\"{}\" placeholder=\"study or study.run\"></label>\
         <label>Subject <input name=\"subject\" id=\"filter-subject\" value=\"{}\" placeholder=\"study:\"></label>\
         <button type=\"submit\" id=\"filter-submit\">Filter</button> <a href=\"/audit/log\">Clear</a></form>\
         <p id=\"log-summary\">The log has {total} entries. Matching ones, newest first, {PAGE_SIZE} a page: {range}.</p>",
        value(&filters.actor),
        value(&filters.action),
        value(&filters.subject),
    );
    body.push_str(
        "<table id=\"log\"><thead><tr><th>#</th><th>Time</th><th>Actor</th><th>Action</th>\
         <th>Subject</th><th>Details</th></tr></thead><tbody>",
    );
    for e in &shown {
        let _ = write!(
            body,
            "<tr class=\"entry\"><td class=\"num seq\">{}</td><td>{}</td><td class=\"actor\">{}</td>\
             <td class=\"action\">{}</td><td class=\"subject\">{}</td><td><code>{}</code></td></tr>",
            e.seq,
            esc(&e.time),
            esc(&e.actor),
            esc(&e.action),
            esc(&e.subject),
            esc(&clip(&compact(&e.details), DETAILS_CHARS))
        );
    }
    body.push_str("</tbody></table><nav class=\"pages\">");
    let link = |key: &str, n: u64| {
        let mut q = String::new();
        for (k, v) in [
            ("actor", &filters.actor),
            ("action", &filters.action),
            ("subject", &filters.subject),
        ] {
            if let Some(v) = v {
                let _ = write!(q, "{k}={}&", url_encode(v));
            }
        }
        format!("/audit/log?{q}{key}={n}")
    };
    if let (true, Some(first)) = (newer, shown.first()) {
        let _ = write!(
            body,
            "<a id=\"page-newer\" href=\"{}\">Newer</a>",
            esc(&link("after", first.seq))
        );
    }
    if let (true, Some(last)) = (older, shown.last()) {
        let _ = write!(
            body,
            "<a id=\"page-older\" href=\"{}\">Older</a>",
            esc(&link("before", last.seq))
        );
    }
    body.push_str("</nav>");
    Ok(("Audit log".into(), body))
}
