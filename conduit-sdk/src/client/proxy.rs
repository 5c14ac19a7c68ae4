//! Which proxy, if any, requests go through.
//!
//! - A loopback base URL (the Prism mock, a local gateway) never goes
//!   through a proxy, whatever is set: a proxy cannot reach this machine's
//!   loopback, and an `http://` request would hand it the token in clear.
//! - Otherwise the default is the environment, as curl reads it: `HTTPS_PROXY`
//!   (and `https_proxy`) for `https://`, `HTTP_PROXY` for `http://`,
//!   `ALL_PROXY` for both, `NO_PROXY` for exceptions.
//! - Over `https://` a proxy only relays the encrypted stream (CONNECT). With
//!   [`allow_insecure_http`](crate::ClientBuilder::allow_insecure_http) and a
//!   proxy, the proxy sees every request, token included.

use std::fmt;

use reqwest::Url;

use super::base_url::is_loopback;
use crate::Error;
use crate::shown::mask_url;

/// The proxy setting of a [`Client`](crate::Client); see
/// [`ClientBuilder::proxy`](crate::ClientBuilder::proxy).
///
/// ```
/// use conduit_sdk::{Client, Proxy};
///
/// let client = Client::builder()
///     .token("t")
///     .proxy(Proxy::url("http://proxy.internal:3128"))
///     .build()?;
/// # Ok::<(), conduit_sdk::Error>(())
/// ```
#[derive(Clone, Default)]
pub struct Proxy(Kind);

#[derive(Clone, Default)]
enum Kind {
    #[default]
    Environment,
    Direct,
    Url(String),
}

impl Proxy {
    /// The proxy the environment names (the default).
    pub fn from_env() -> Self {
        Self(Kind::Environment)
    }

    /// No proxy, whatever the environment says.
    pub fn none() -> Self {
        Self(Kind::Direct)
    }

    /// This proxy for every request (`http://`, `https://` or `socks5://`
    /// URL; user info in it is used for proxy authentication, and never
    /// shown).
    pub fn url(url: impl Into<String>) -> Self {
        Self(Kind::Url(url.into()))
    }

    /// Applies the setting to a client being built for `base_url`.
    pub(crate) fn apply(
        &self,
        builder: reqwest::ClientBuilder,
        base_url: &Url,
    ) -> Result<reqwest::ClientBuilder, Error> {
        if is_loopback(base_url) {
            return Ok(builder.no_proxy());
        }
        match &self.0 {
            Kind::Environment => Ok(builder),
            Kind::Direct => Ok(builder.no_proxy()),
            Kind::Url(url) => {
                let proxy = reqwest::Proxy::all(url.as_str()).map_err(|e| {
                    Error::config(format!("proxy URL {:?} is not usable: {e}", mask_url(url)))
                })?;
                Ok(builder.no_proxy().proxy(proxy))
            }
        }
    }

    /// Whether a request to a non-loopback `http://` base URL may pass a
    /// proxy that then sees the token.
    pub(crate) fn may_see_clear_text(&self, lookup: impl Fn(&str) -> Option<String>) -> bool {
        match &self.0 {
            Kind::Direct => false,
            Kind::Url(_) => true,
            Kind::Environment => ["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"]
                .iter()
                .any(|k| lookup(k).is_some_and(|v| !v.trim().is_empty())),
        }
    }
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Kind::Environment => f.write_str("Proxy::from_env()"),
            Kind::Direct => f.write_str("Proxy::none()"),
            Kind::Url(url) => write!(f, "Proxy::url({:?})", mask_url(url)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Client;

    #[test]
    fn a_proxy_url_with_credentials_is_never_shown() {
        let p = Proxy::url("http://user:hunter2@proxy.internal:3128");
        assert!(!format!("{p:?}").contains("hunter2"));
        let bad = Proxy::url("not a url with user:hunter2@");
        let e = bad
            .apply(
                reqwest::Client::builder(),
                &"https://api.conduit.ai".parse().unwrap(),
            )
            .unwrap_err();
        assert!(e.is_config(), "{e}");
        assert!(!e.to_string().contains("hunter2"), "{e}");
    }

    #[test]
    fn a_proxy_password_is_never_shown_whatever_it_holds() {
        let base = "https://api.conduit.ai".parse().unwrap();
        for c in ["/", "?", "#", "@", ":", "%", " "] {
            for url in [
                format!("http://u:PX{c}PASS999@127.0.0.1:9"),
                format!("http://US{c}ER999:pw@127.0.0.1:9"),
            ] {
                let proxy = Proxy::url(&url);
                let mut shown = format!("{proxy:?}");
                match proxy.apply(reqwest::Client::builder(), &base) {
                    Ok(builder) => {
                        if let Err(e) = builder.build() {
                            shown.push_str(&format!(" {e} {e:?}"));
                        }
                    }
                    Err(e) => {
                        assert!(e.is_config(), "{url}: {e}");
                        shown.push_str(&format!(" {e} {e:?}"));
                    }
                }
                let built = Client::builder()
                    .token("t")
                    .base_url("https://api.conduit.ai")
                    .proxy(Proxy::url(&url));
                shown.push_str(&format!(" {built:?}"));
                match built.build() {
                    Ok(client) => shown.push_str(&format!(" {client:?}")),
                    Err(e) => {
                        let mut cause: Option<&dyn std::error::Error> = Some(&e);
                        while let Some(c) = cause {
                            shown.push_str(&format!(" {c} {c:?}"));
                            cause = c.source();
                        }
                    }
                }
                assert!(
                    !shown.contains("PASS999") && !shown.contains("ER999"),
                    "{url}: {shown}"
                );
            }
        }
    }

    #[test]
    fn only_a_proxy_that_is_set_may_see_clear_text() {
        let env = |k: &str| (k == "http_proxy").then(|| "http://p:1".to_owned());
        let none = |_: &str| None;
        assert!(Proxy::from_env().may_see_clear_text(env));
        assert!(!Proxy::from_env().may_see_clear_text(none));
        assert!(!Proxy::none().may_see_clear_text(env));
        assert!(Proxy::url("http://p:1").may_see_clear_text(none));
    }
}
