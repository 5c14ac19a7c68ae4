//! The base URL: checked and normalised, its credentials never shown, and
//! redirects followed only within its origin.

use reqwest::Url;

use crate::Error;
use crate::shown::mask_url;

/// Checks and normalises a base URL: http(s) only, no credentials, query or
/// fragment, no clear-text http beyond loopback unless allowed. Messages show
/// the URL with any user info masked.
pub(crate) fn parse_base_url(raw: &str, allow_insecure_http: bool) -> Result<Url, Error> {
    let raw = raw.trim();
    let shown = mask_url(raw);
    let url = Url::parse(raw).map_err(|e| {
        Error::config(format!(
            "base URL {shown:?} is not an absolute URL ({e}); it should look like https://api.conduit.ai"
        ))
    })?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Error::config(
            "base URL must not hold credentials; the token authenticates",
        ));
    }
    match url.scheme() {
        "https" => {}
        "http" if allow_insecure_http || is_loopback(&url) => {}
        "http" => {
            return Err(Error::config(format!(
                "base URL {shown:?} uses plain http to a host that is not loopback, \
                 which would send the token in clear text; use https or allow_insecure_http"
            )));
        }
        other => {
            return Err(Error::config(format!(
                "base URL scheme {other:?} is not http or https"
            )));
        }
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(Error::config(format!("base URL {shown:?} has no host")));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(Error::config(format!(
            "base URL {shown:?} must not have a query or fragment"
        )));
    }
    Ok(url)
}

/// Follows redirects only within the base URL's origin: a redirect elsewhere
/// would re-send the request body (tool parameters) to a host the caller did
/// not choose. The 3xx is then returned as an error naming the target.
pub(crate) fn same_origin_redirects() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let same_origin = attempt
            .previous()
            .first()
            .is_some_and(|first| first.origin() == attempt.url().origin());
        if attempt.previous().len() > 10 {
            attempt.error("too many redirects")
        } else if same_origin {
            attempt.follow()
        } else {
            attempt.stop()
        }
    })
}

pub(crate) fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn base_urls_are_checked_and_normalised() {
        let ok = |u: &str| parse_base_url(u, false).unwrap().to_string();
        assert_eq!(ok("https://api.conduit.ai/"), "https://api.conduit.ai/");
        assert_eq!(
            ok("https://proxy.example/conduit/"),
            "https://proxy.example/conduit/"
        );
        assert_eq!(ok("http://127.0.0.1:4010"), "http://127.0.0.1:4010/");
        assert_eq!(ok("http://localhost:4010"), "http://localhost:4010/");
        assert_eq!(ok("http://[::1]:4010"), "http://[::1]:4010/");
        for bad in [
            "api.conduit.ai",
            "",
            "ftp://x",
            "http://api.conduit.ai",
            "https://x/?a=1",
            "https://u:p@x",
        ] {
            let e = parse_base_url(bad, false).unwrap_err();
            assert!(e.is_config(), "{bad}: {e}");
        }
        assert!(parse_base_url("http://api.conduit.ai", true).is_ok());
    }

    #[test]
    fn credentials_are_masked_in_messages_whatever_they_hold() {
        for c in ["/", "?", "#", "@", ":", "%", " "] {
            let url = format!("https://u:PW{c}PASS999@api.conduit.ai/");
            let e = parse_base_url(&url, false).unwrap_err();
            assert!(e.is_config(), "{url}: {e}");
            let shown = format!("{e} {e:?}");
            assert!(!shown.contains("PASS999"), "{url}: {shown}");
        }
    }
}
