//! The path check: the request must reach the operation's own path.

/// Whether `actual` is `base_path` followed by `template`, each `{param}`
/// standing for exactly one non-empty segment.
pub(crate) fn path_matches(actual: &str, base_path: &str, template: &str) -> bool {
    let Some(rest) = actual.strip_prefix(base_path.trim_end_matches('/')) else {
        return false;
    };
    let (mut got, mut want) = (rest.split('/'), template.split('/'));
    loop {
        match (got.next(), want.next()) {
            (None, None) => return true,
            (Some(g), Some(w)) if w.starts_with('{') && w.ends_with('}') => {
                if g.is_empty() {
                    return false;
                }
            }
            (Some(g), Some(w)) if g == w => {}
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_match_their_template_segment_by_segment() {
        let t = "/v1/custom-tools/{id}/run";
        assert!(path_matches("/v1/custom-tools/abc/run", "", t));
        assert!(path_matches("/v1/custom-tools/a%2Fb/run", "", t));
        assert!(path_matches("/proxy/v1/custom-tools/abc/run", "/proxy/", t));
        assert!(!path_matches("/v1/custom-tools/run", "", t));
        assert!(!path_matches("/v1/run", "", t));
        assert!(!path_matches("/v1/custom-tools//run", "", t));
        assert!(!path_matches("/other/v1/custom-tools/abc/run", "/proxy", t));
    }
}
