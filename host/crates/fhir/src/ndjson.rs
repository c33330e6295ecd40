//! FHIR Bulk Data NDJSON: one resource a line, types mixed in any order.

use crate::assemble::finish;
use crate::collect::{Collector, Site};
use crate::depth::{MAX_DEPTH, find_too_deep};
use crate::model::Ingested;
use crate::problem::{IssueCode, Refusal};

/// How an NDJSON payload as a whole is named in problems about it.
pub(crate) const WHOLE_NDJSON: &str = "NDJSON";

/// Reads `application/fhir+ndjson`: one consultation per Encounter line, or a refusal
/// listing every problem (located as `line N`). Blank lines are skipped; lines may end
/// in `\r\n`. References match `Type/id`, and `urn:uuid:<id>` matches the resource of
/// the expected type whose id is that uuid, since NDJSON has no fullUrls.
pub fn parse_ndjson(body: &[u8]) -> Result<Ingested, Refusal> {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let mut collector = Collector::default();
    let mut line_start = 0;
    let line_ends = memchr::memchr_iter(b'\n', body).chain(std::iter::once(body.len()));
    for (index, line_end) in line_ends.enumerate() {
        let line = &body[line_start..line_end];
        line_start = line_end + 1;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.trim_ascii().is_empty() {
            continue;
        }
        let site = Site::Line(index + 1);
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
