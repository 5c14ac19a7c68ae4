//! The path check: the request must reach the operation's own path.

/// Whether `actual` is `base_path` (without its trailing `/`) followed by
/// `template`, each `{param}` standing for exactly one non-empty segment.
// Inlined into its one caller: as a call into another part of the binary,
// cold on every request, it cost about 1 % of a call's latency on one core.
#[inline(always)]
pub(crate) fn path_matches(actual: &str, base_path: &str, template: &str) -> bool {
    let Some(rest) = actual.strip_prefix(base_path) else {
        return false;
    };
    // Literal runs compare as slices: this runs on every request.
    let (mut got, mut want) = (rest.as_bytes(), template.as_bytes());
    while let Some(open) = want.iter().position(|&b| b == b'{') {
        let Some(literal) = got.strip_prefix(&want[..open]) else {
            return false;
        };
        let Some(close) = want[open..].iter().position(|&b| b == b'}') else {
            return false;
        };
        want = &want[open + close + 1..];
        let segment = literal
            .iter()
            .position(|&b| b == b'/')
            .unwrap_or(literal.len());
        if segment == 0 {
            return false;
        }
        got = &literal[segment..];
    }
    got == want
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_match_their_template_segment_by_segment() {
        let t = "/v1/custom-tools/{id}/run";
        assert!(path_matches("/v1/custom-tools/abc/run", "", t));
        assert!(path_matches("/v1/custom-tools/a%2Fb/run", "", t));
        assert!(path_matches("/proxy/v1/custom-tools/abc/run", "/proxy", t));
        assert!(!path_matches("/v1/custom-tools/run", "", t));
        assert!(!path_matches("/v1/run", "", t));
        assert!(!path_matches("/v1/custom-tools//run", "", t));
        assert!(!path_matches("/other/v1/custom-tools/abc/run", "/proxy", t));
        assert!(!path_matches("/v1/custom-tools/abc/run/", "", t));
        assert!(!path_matches("/v1/custom-tools/abc/runs", "", t));
        assert!(!path_matches("/v1/custom-tools/a/b/run", "", t));
        assert!(path_matches("/v1/things/x", "", "/v1/things/{id}"));
        assert!(!path_matches("/v1/things/", "", "/v1/things/{id}"));
        assert!(!path_matches("/v1/things/x/y", "", "/v1/things/{id}"));
        assert!(path_matches("/v1/a/x/b/y", "", "/v1/a/{p}/b/{q}"));
        assert!(!path_matches("/v1/a/x/b/", "", "/v1/a/{p}/b/{q}"));
    }
}
