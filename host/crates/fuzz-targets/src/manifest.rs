//! The Spin manifest reader, the route patterns it declares, and request routing.

use std::path::Path;

use carrel_manifest::{
    HttpRoute, ManifestError, Route, RoutePattern, Router, check_request_path,
    resolve_component_variables,
};

/// Routes `path` and checks what the match says about it.
fn route(router: &Router, path: &str) {
    let checked = check_request_path(path);
    if let Err(error) = &checked {
        assert!(!error.to_string().is_empty());
    }
    if let Some(matched) = router.route(path) {
        assert!(
            path.ends_with(&matched.path_info),
            "path info {:?} is not the end of {path:?}",
            matched.path_info
        );
        for value in matched.params.values() {
            assert!(!value.is_empty() && !value.contains('/'), "{value:?}");
            if checked.is_ok() {
                assert!(value != "." && value != "..", "{path:?} captured {value:?}");
            }
        }
    }
}

pub fn manifest(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let lines = text.lines().count().max(1);
    match carrel_manifest::parse(Path::new("spin.toml"), text) {
        Err(ManifestError::Syntax {
            line,
            column,
            message,
            ..
        }) => {
            assert!((1..=lines + 1).contains(&line), "line {line} of {lines}");
            assert!(column >= 1);
            assert!(!message.is_empty());
        }
        Err(other) => assert!(!other.to_string().is_empty()),
        Ok(loaded) => {
            // No variable is set in the environment: required ones are reported missing.
            let _ = resolve_component_variables(&loaded.manifest, &|_| None);
            let mut routes = Vec::new();
            for trigger in &loaded.http_triggers {
                if let HttpRoute::Path(raw) = &trigger.route {
                    match RoutePattern::parse(raw) {
                        Ok(pattern) => routes.push(Route {
                            pattern,
                            component: trigger.component.clone(),
                        }),
                        Err(error) => assert!(!error.to_string().is_empty()),
                    }
                }
            }
            if let Ok(router) = Router::new(routes) {
                for declared in router.routes() {
                    route(&router, declared.pattern.raw());
                }
                for line in text.lines() {
                    route(&router, line.trim());
                }
            }
        }
    }
    // The router on its own: the first line as a route, the others as request paths.
    let mut lines = text.lines();
    if let Some(first) = lines.next()
        && let Ok(pattern) = RoutePattern::parse(first)
    {
        let router = Router::new(vec![Route {
            pattern,
            component: "c".to_owned(),
        }])
        .expect("a single route duplicates no other");
        for path in lines {
            route(&router, path);
        }
    }
}
