//! Spin HTTP routes: exact paths, a trailing `/...` wildcard, and `:name` segments.
//!
//! The most specific route wins: more literal segments first, then an exact route over
//! a wildcard, so `/api/users/me` beats `/api/users/:id`, which beats `/api/...`.

use std::collections::BTreeMap;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RouteError {
    #[error("route `{0}` must start with `/`")]
    NoLeadingSlash(String),
    #[error("route `{0}`: `...` is only allowed as the last segment")]
    WildcardNotLast(String),
    #[error("route `{0}`: `:` must be followed by a parameter name")]
    EmptyParameter(String),
    #[error("routes `{0}` of component `{1}` and `{2}` of component `{3}` match the same requests")]
    Duplicate(String, String, String, String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Parameter(String),
}

/// A parsed route pattern such as `/users/:id/...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutePattern {
    raw: String,
    segments: Vec<Segment>,
    wildcard: bool,
}

impl RoutePattern {
    pub fn parse(raw: &str) -> Result<Self, RouteError> {
        if !raw.starts_with('/') {
            return Err(RouteError::NoLeadingSlash(raw.to_owned()));
        }
        let parts: Vec<&str> = raw.split('/').skip(1).filter(|s| !s.is_empty()).collect();
        let mut segments = Vec::new();
        let mut wildcard = false;
        for (i, part) in parts.iter().enumerate() {
            if *part == "..." {
                if i + 1 != parts.len() {
                    return Err(RouteError::WildcardNotLast(raw.to_owned()));
                }
                wildcard = true;
            } else if let Some(name) = part.strip_prefix(':') {
                if name.is_empty() {
                    return Err(RouteError::EmptyParameter(raw.to_owned()));
                }
                segments.push(Segment::Parameter(name.to_owned()));
            } else {
                segments.push(Segment::Literal((*part).to_owned()));
            }
        }
        Ok(Self {
            raw: raw.to_owned(),
            segments,
            wildcard,
        })
    }

    /// The route as written in the manifest (`spin-matched-route`).
    pub fn raw(&self) -> &str {
        &self.raw
    }

    /// The route without its trailing wildcard (`spin-component-route`).
    pub fn component_route(&self) -> String {
        if self.segments.is_empty() {
            return String::new();
        }
        let mut out = String::new();
        for s in &self.segments {
            out.push('/');
            match s {
                Segment::Literal(l) => out.push_str(l),
                Segment::Parameter(p) => {
                    out.push(':');
                    out.push_str(p);
                }
            }
        }
        out
    }

    /// Matches a request path, returning the captured parameters and the path info.
    fn matches(&self, path: &str) -> Option<(BTreeMap<String, String>, String)> {
        let mut rest = path;
        let mut params = BTreeMap::new();
        for segment in &self.segments {
            let trimmed = rest.strip_prefix('/')?;
            let (part, after) = match trimmed.find('/') {
                Some(i) => (&trimmed[..i], &trimmed[i..]),
                None => (trimmed, ""),
            };
            if part.is_empty() {
                return None;
            }
            match segment {
                Segment::Literal(l) if l == part => {}
                Segment::Literal(_) => return None,
                Segment::Parameter(name) => {
                    params.insert(name.clone(), part.to_owned());
                }
            }
            rest = after;
        }
        if self.wildcard {
            Some((params, rest.to_owned()))
        } else if rest.is_empty() || rest == "/" {
            Some((params, String::new()))
        } else {
            None
        }
    }

    /// Higher is more specific.
    fn specificity(&self) -> (usize, usize, bool) {
        let literals = self
            .segments
            .iter()
            .filter(|s| matches!(s, Segment::Literal(_)))
            .count();
        (self.segments.len(), literals, !self.wildcard)
    }

    fn same_shape(&self, other: &Self) -> bool {
        self.wildcard == other.wildcard
            && self.segments.len() == other.segments.len()
            && self
                .segments
                .iter()
                .zip(&other.segments)
                .all(|(a, b)| match (a, b) {
                    (Segment::Literal(x), Segment::Literal(y)) => x == y,
                    (Segment::Parameter(_), Segment::Parameter(_)) => true,
                    _ => false,
                })
    }
}

/// Why a request path is refused before routing.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PathError {
    #[error("the request path must start with `/`")]
    NotAbsolute,
    #[error(
        "the request path has a `{0}` segment: paths are matched as sent, never resolved, so send it without dot segments"
    )]
    DotSegment(&'static str),
    #[error("the request path has an empty segment (`//`)")]
    EmptySegment,
    #[error("the request path holds `{0}`, which is not allowed in a path")]
    Forbidden(&'static str),
}

/// Refuses request paths that could be read as another path than the one routed: dot
/// segments (`/ingest/../audit`, also percent-encoded as `%2e%2e`), empty segments
/// (`//`) except one trailing slash, backslashes, and encoded separators or NUL (`%2f`,
/// `%5c`, `%00`). The router matches paths as sent and never resolves them; refusing
/// these outright means a proxy, a guest or a log reader that does resolve them can
/// never be pointed somewhere the route check did not see.
pub fn check_request_path(path: &str) -> Result<(), PathError> {
    let rest = path.strip_prefix('/').ok_or(PathError::NotAbsolute)?;
    if path.contains('\\') {
        return Err(PathError::Forbidden("\\"));
    }
    for encoded in ["%2f", "%5c", "%00"] {
        if path
            .as_bytes()
            .windows(3)
            .any(|w| w.eq_ignore_ascii_case(encoded.as_bytes()))
        {
            return Err(PathError::Forbidden(encoded));
        }
    }
    if rest.is_empty() {
        return Ok(());
    }
    let segments: Vec<&str> = rest.split('/').collect();
    let last = segments.len() - 1;
    for (index, segment) in segments.into_iter().enumerate() {
        let dots = decoded_dots(segment);
        if dots == Some(1) {
            return Err(PathError::DotSegment("."));
        }
        if dots == Some(2) {
            return Err(PathError::DotSegment(".."));
        }
        if segment.is_empty() && index != last {
            return Err(PathError::EmptySegment);
        }
    }
    Ok(())
}

/// How many dots a segment made only of `.` and `%2e` stands for.
fn decoded_dots(segment: &str) -> Option<usize> {
    let mut rest = segment.as_bytes();
    let mut dots = 0;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix(b".") {
            rest = after;
        } else if rest.len() >= 3 && rest[..3].eq_ignore_ascii_case(b"%2e") {
            rest = &rest[3..];
        } else {
            return None;
        }
        dots += 1;
    }
    (dots > 0).then_some(dots)
}

/// A route bound to the component that serves it.
#[derive(Debug, Clone)]
pub struct Route {
    pub pattern: RoutePattern,
    pub component: String,
}

/// The result of routing one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteMatch<'a> {
    pub component: &'a str,
    pub pattern: &'a RoutePattern,
    pub params: BTreeMap<String, String>,
    pub path_info: String,
}

#[derive(Debug, Clone, Default)]
pub struct Router {
    routes: Vec<Route>,
}

impl Router {
    pub fn new(mut routes: Vec<Route>) -> Result<Self, RouteError> {
        for (i, a) in routes.iter().enumerate() {
            if let Some(b) = routes[i + 1..]
                .iter()
                .find(|b| a.pattern.same_shape(&b.pattern))
            {
                return Err(RouteError::Duplicate(
                    a.pattern.raw.clone(),
                    a.component.clone(),
                    b.pattern.raw.clone(),
                    b.component.clone(),
                ));
            }
        }
        // Most specific first, so the first match is the one that wins.
        routes.sort_by_key(|r| std::cmp::Reverse(r.pattern.specificity()));
        Ok(Self { routes })
    }

    pub fn route(&self, path: &str) -> Option<RouteMatch<'_>> {
        self.routes.iter().find_map(|r| {
            r.pattern
                .matches(path)
                .map(|(params, path_info)| RouteMatch {
                    component: &r.component,
                    pattern: &r.pattern,
                    params,
                    path_info,
                })
        })
    }

    pub fn routes(&self) -> &[Route] {
        &self.routes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_paths_that_could_resolve_elsewhere_are_refused() {
        for (path, error) in [
            ("/ingest/../audit", PathError::DotSegment("..")),
            ("/ingest/%2e%2E/audit", PathError::DotSegment("..")),
            ("/ingest/.%2e", PathError::DotSegment("..")),
            ("/./ingest/fhir", PathError::DotSegment(".")),
            ("//ingest/fhir", PathError::EmptySegment),
            ("/ingest//fhir", PathError::EmptySegment),
            ("/ingest\\..\\audit", PathError::Forbidden("\\")),
            ("/ingest%2F..%2Faudit", PathError::Forbidden("%2f")),
            ("/ingest/fhir%00", PathError::Forbidden("%00")),
            ("ingest/fhir", PathError::NotAbsolute),
        ] {
            assert_eq!(check_request_path(path), Err(error), "{path}");
        }
    }

    #[test]
    fn ordinary_request_paths_pass_the_check() {
        for path in [
            "/",
            "/ingest/fhir",
            "/ingest/fhir/",
            "/api/runs/r-1/result.csv",
            "/files/.hidden",
            "/files/a...b",
            "/files/...",
            "/q%20x",
        ] {
            assert_eq!(check_request_path(path), Ok(()), "{path}");
        }
    }

    fn router(routes: &[(&str, &str)]) -> Router {
        Router::new(
            routes
                .iter()
                .map(|(p, c)| Route {
                    pattern: RoutePattern::parse(p).unwrap(),
                    component: (*c).to_owned(),
                })
                .collect(),
        )
        .unwrap()
    }

    #[test]
    fn exact_route_matches_only_its_path() {
        let r = router(&[("/hello", "a")]);
        assert_eq!(r.route("/hello").unwrap().component, "a");
        assert_eq!(r.route("/hello/").unwrap().component, "a");
        assert!(r.route("/hello/x").is_none());
        assert!(r.route("/hell").is_none());
        assert!(r.route("/").is_none());
    }

    #[test]
    fn wildcard_route_gives_the_rest_as_path_info() {
        let r = router(&[("/static/...", "s")]);
        let m = r.route("/static/css/site.css").unwrap();
        assert_eq!(m.path_info, "/css/site.css");
        assert_eq!(m.pattern.component_route(), "/static");
        assert_eq!(r.route("/static").unwrap().path_info, "");
        assert!(r.route("/staticx").is_none());
    }

    #[test]
    fn longest_and_most_literal_route_wins() {
        let r = router(&[
            ("/...", "root"),
            ("/api/...", "api"),
            ("/api/users/:id", "user"),
            ("/api/users/me", "me"),
        ]);
        assert_eq!(r.route("/").unwrap().component, "root");
        assert_eq!(r.route("/other").unwrap().component, "root");
        assert_eq!(r.route("/api/things").unwrap().component, "api");
        assert_eq!(r.route("/api/users/42").unwrap().component, "user");
        assert_eq!(r.route("/api/users/me").unwrap().component, "me");
        assert_eq!(r.route("/api/users/42/more").unwrap().component, "api");
    }

    #[test]
    fn named_segments_are_captured() {
        let r = router(&[("/studies/:study/runs/:run", "s")]);
        let m = r.route("/studies/ili/runs/7").unwrap();
        assert_eq!(m.params["study"], "ili");
        assert_eq!(m.params["run"], "7");
    }

    #[test]
    fn exact_route_beats_wildcard_of_same_prefix() {
        let r = router(&[("/a/...", "w"), ("/a", "e")]);
        assert_eq!(r.route("/a").unwrap().component, "e");
        assert_eq!(r.route("/a/b").unwrap().component, "w");
    }

    #[test]
    fn duplicate_routes_are_refused() {
        let err = Router::new(vec![
            Route {
                pattern: RoutePattern::parse("/x/:a").unwrap(),
                component: "one".into(),
            },
            Route {
                pattern: RoutePattern::parse("/x/:b").unwrap(),
                component: "two".into(),
            },
        ])
        .unwrap_err();
        assert!(matches!(err, RouteError::Duplicate(..)));
    }

    #[test]
    fn malformed_routes_are_refused() {
        assert!(RoutePattern::parse("nope").is_err());
        assert!(RoutePattern::parse("/a/.../b").is_err());
        assert!(RoutePattern::parse("/a/:").is_err());
    }
}
