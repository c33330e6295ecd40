//! The frame of every server-rendered page, with its inline CSS, and the responses that
//! carry pages (forms, queries and links are read and written by [`crate::forms`]). Pages are maud templates (the SVG charts of [`super::curves`] too):
//! whatever a page interpolates is escaped unless it says `PreEscaped`, which only this
//! frame's own CSS does. No external resource and no script is ever used.

use carrel_runtime::responses::{HostResponse, bytes};
use http::{HeaderValue, StatusCode, header};
use maud::{DOCTYPE, Markup, PreEscaped, html};

const CSS: &str = "\
body{font:15px/1.45 system-ui,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}\
header{background:#1f3a5f;color:#fff;padding:.6em 1.2em;display:flex;gap:1.2em;align-items:center;flex-wrap:wrap}\
header a{color:#fff}header form{margin:0 0 0 auto}\
main{padding:1em 1.2em;max-width:82em}\
h1{font-size:1.5em;margin:.3em 0}h2{font-size:1.2em;margin:1.2em 0 .4em}h3{font-size:1.05em;margin:1em 0 .3em}\
table{border-collapse:collapse;background:#fff;margin:.4em 0 1em;width:100%}\
th,td{border:1px solid #d5d9e0;padding:.3em .5em;text-align:left;vertical-align:top}\
th{background:#eef1f5}td.num{text-align:right;font-variant-numeric:tabular-nums}\
code,.hash{font-family:ui-monospace,monospace;font-size:.9em;word-break:break-all}\
.chain{padding:.5em 1.2em;font-weight:600}.chain.ok{background:#dff3e4;color:#14532d}\
.chain.broken{background:#fde2e1;color:#7f1d1d}\
.tag{display:inline-block;padding:0 .45em;border-radius:.3em;font-size:.85em;background:#e5e7eb}\
.tag.approved,.tag.succeeded{background:#dff3e4}.tag.submitted{background:#fef3c7}\
.tag.revoked,.tag.failed,.tag.refused,.tag.finding{background:#fde2e1}\
.note{color:#4b5563}.error{color:#991b1b}\
form.filters{display:flex;gap:.6em;flex-wrap:wrap;align-items:end;margin:.5em 0}\
form.filters label{display:flex;flex-direction:column;font-size:.9em}\
input{font:inherit;padding:.2em .4em}button{font:inherit;padding:.2em .8em}\
nav.pages{display:flex;gap:1em;margin:.5em 0}\
td.redacted,.mark.redacted{background:repeating-linear-gradient(135deg,#fde2e1 0 4px,#fff 4px 8px);color:#7f1d1d;font-style:italic;text-align:center}\
td.na,.mark.na{color:#6b7280;text-align:center}.mark{padding:0 .4em;border:1px solid #d5d9e0}\
.legend-box{background:#fff;border:1px solid #d5d9e0;padding:.2em 1em;margin:.5em 0}.legend-box li{margin:.3em 0}\
svg.curves{display:block;max-width:100%;height:auto;margin:.6em 0;border:1px solid #d5d9e0}\
#result-table td,#result-table th{padding:.15em .4em;font-size:.92em}td.nowrap{white-space:nowrap}";

/// The navigation a page shows in its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    /// The public register only.
    Public,
    /// The auditor's view, with its logout button.
    Auditor,
    /// The researcher's results, with its logout button.
    Researcher,
}

/// A whole page: `title`, the navigation `nav`, an optional banner above the content
/// (the chain status) and the content.
pub fn page(title: &str, nav: Nav, banner: Option<Markup>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · carrel" }
                style { (PreEscaped(CSS)) }
            }
            body {
                header {
                    strong { "carrel" }
                    @match nav {
                        Nav::Auditor => {
                            a href="/audit" { "Overview" }
                            a href="/audit/components" { "Components" }
                            a href="/audit/log" { "Audit log" }
                            a href="/register" { "Public register" }
                            form method="post" action="/audit/logout" {
                                button type="submit" id="logout" { "Log out" }
                            }
                        }
                        Nav::Researcher => {
                            a href="/results" { "My runs" }
                            a href="/register" { "Public register" }
                            form method="post" action="/results/logout" {
                                button type="submit" id="logout" { "Log out" }
                            }
                        }
                        Nav::Public => a href="/register" { "Public register" },
                    }
                }
                @if let Some(banner) = banner {
                    (banner)
                }
                main {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

fn secure_headers(response: &mut HostResponse, private: bool) {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if private {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
}

/// A page as a response. `private` pages are never cached.
pub fn html_response(status: StatusCode, private: bool, page: Markup) -> HostResponse {
    let mut response = bytes(status, "text/html; charset=utf-8", page.into_string());
    secure_headers(&mut response, private);
    response
}

/// 303 See Other to `location`, with an optional `Set-Cookie`.
pub fn redirect(location: &str, cookie: Option<cookie::Cookie<'_>>) -> HostResponse {
    let mut response = bytes(StatusCode::SEE_OTHER, "text/html; charset=utf-8", "");
    secure_headers(&mut response, true);
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    if let Some(cookie) = cookie.and_then(|c| HeaderValue::from_str(&c.to_string()).ok()) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

/// A coloured label: `<span class="tag approved">approved</span>`.
pub fn tag(text: &str) -> Markup {
    html! { span class={ "tag " (tag_class(text)) } { (text) } }
}

/// A capability report's finding as a tag marked as a finding:
/// `<span class="tag finding NOGRANT">NO GRANT</span>`.
pub fn finding_tag(label: &str) -> Markup {
    html! { span class={ "tag finding " (tag_class(label)) } { (label) } }
}

/// The class a tag's text gives it: its letters, digits and dashes.
fn tag_class(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect()
}

/// A table's head: one row of column names.
pub fn columns(names: &[&str]) -> Markup {
    html! { thead { tr { @for name in names { th { (name) } } } } }
}

/// A table's rows of a name and a value.
pub fn rows(rows: &[(&str, String)]) -> Markup {
    html! { @for (name, value) in rows { tr { th { (name) } td { (value) } } } }
}

/// The day of an RFC 3339 time (`2026-03-01T10:00:00Z` → `2026-03-01`).
pub fn day(time: &str) -> &str {
    time.get(..10).unwrap_or(time)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_escapes_its_title_and_content() {
        let text = "<a href=\"x\">O'Neil & co</a>";
        let page = page(text, Nav::Public, None, html! { p { (text) } }).into_string();
        assert!(!page.contains("<a href=\"x\">"), "{page}");
        assert!(
            page.contains("<h1>&lt;a href=&quot;x&quot;&gt;O'Neil &amp; co&lt;/a&gt;</h1>"),
            "{page}"
        );
        assert!(page.contains(
            "<title>&lt;a href=&quot;x&quot;&gt;O'Neil &amp; co&lt;/a&gt; · carrel</title>"
        ));
        assert_eq!(
            tag("<b>").into_string(),
            "<span class=\"tag b\">&lt;b&gt;</span>"
        );
    }
}
