//! FHIR Bulk Data NDJSON: one resource a line, types mixed in any order.

use crate::assemble::finish;
use crate::collect::{Collector, Site};
use crate::depth::{MAX_DEPTH, find_too_deep};
use crate::model::Ingested;
use crate::problem::{IssueCode, Refusal};
use crate::utf8::not_utf8;

/// How an NDJSON payload as a whole is named in problems about it.
pub(crate) const WHOLE_NDJSON: &str = "NDJSON";

/// The non-blank lines of an NDJSON body with their 1-based line numbers: a leading
/// UTF-8 byte order mark is skipped, lines end at `\n` (a `\r` before it is dropped),
/// and lines of nothing but ASCII whitespace are left out but still counted, so the
/// numbers are the ones an editor shows.
pub fn ndjson_lines(body: &[u8]) -> impl Iterator<Item = (usize, &[u8])> {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let mut line_start = 0;
    memchr::memchr_iter(b'\n', body)
        .chain(std::iter::once(body.len()))
        .enumerate()
        .filter_map(move |(index, line_end)| {
            let line = &body[line_start..line_end];
            line_start = line_end + 1;
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            (!line.trim_ascii().is_empty()).then_some((index + 1, line))
        })
}

/// Reads `application/fhir+ndjson`: one consultation per Encounter line, or a refusal
/// listing every problem (located as `line N`). Blank lines are skipped; lines may end
/// in `\r\n`. References match `Type/id`, and `urn:uuid:<id>` matches the resource of
/// the expected type whose id is that uuid, since NDJSON has no fullUrls.
pub fn parse_ndjson(body: &[u8]) -> Result<Ingested, Refusal> {
    let mut collector = Collector::default();
    for (number, line) in ndjson_lines(body) {
        let site = Site::Line(number);
        if let Some(why) = not_utf8(line) {
            // Its position is within the line: the line number is the site's.
            let why = why.replacen(" at line 1,", " at", 1);
            collector.problem(IssueCode::Structure, site.resource(), why);
            continue;
        }
        if let Some(too_deep) = find_too_deep(line, MAX_DEPTH) {
            collector.problem(
                IssueCode::Structure,
                site.resource(),
                format!(
                    "JSON nested deeper than {MAX_DEPTH} levels (column {})",
                    too_deep.column
                ),
            );
            continue;
        }
        collector.add(line, site, None, false);
    }
    finish(collector, WHOLE_NDJSON, None)
}
