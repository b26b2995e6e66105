//! Matching a request path against a plugin's declared routes.

use std::collections::BTreeMap;

use learnloop_plugin_api::RouteSpec;

/// Finds the route for `method` and `path` (relative to `/api/v1/<plugin>`),
/// with its `{param}` values. Literal segments win over parameters when two
/// routes could match.
pub fn match_route<'a>(
    routes: &'a [RouteSpec],
    method: &str,
    path: &str,
) -> Option<(&'a RouteSpec, BTreeMap<String, String>)> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').filter(|s| !s.is_empty()).collect();
    let mut best: Option<(usize, &RouteSpec, BTreeMap<String, String>)> = None;
    for route in routes.iter().filter(|r| r.method.eq_ignore_ascii_case(method)) {
        let pattern: Vec<&str> = route.path.trim_matches('/').split('/').filter(|s| !s.is_empty()).collect();
        if pattern.len() != segments.len() {
            continue;
        }
        let mut params = BTreeMap::new();
        let mut literals = 0;
        let ok = pattern.iter().zip(&segments).all(|(p, s)| {
            if let Some(name) = p.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                params.insert(name.to_string(), s.to_string());
                true
            } else {
                literals += 1;
                p == s
            }
        });
        if ok && best.as_ref().is_none_or(|(l, _, _)| literals > *l) {
            best = Some((literals, route, params));
        }
    }
    best.map(|(_, r, p)| (r, p))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(method: &str, path: &str) -> RouteSpec {
        RouteSpec::new(method, path, "", false, Default::default())
    }

    #[test]
    fn matches_params_and_prefers_literals() {
        let routes =
            [route("GET", "/models/{model}"), route("GET", "/models/summary"), route("POST", "/models/{model}")];
        let (r, p) = match_route(&routes, "GET", "/models/m1").unwrap();
        assert_eq!((r.path.as_str(), p["model"].as_str()), ("/models/{model}", "m1"));
        let (r, _) = match_route(&routes, "GET", "/models/summary/").unwrap();
        assert_eq!(r.path, "/models/summary");
        assert_eq!(match_route(&routes, "POST", "/models/x").unwrap().0.method, "POST");
        assert!(match_route(&routes, "GET", "/models").is_none());
        assert!(match_route(&routes, "DELETE", "/models/m1").is_none());
    }
}
