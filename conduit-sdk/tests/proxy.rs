//! Proxies: a loopback base URL never goes through one (the audit saw the
//! token go in clear text to `HTTP_PROXY`), an explicit proxy is used for
//! other hosts, and settings that contradict each other are refused.

mod common;

use common::*;
use conduit_sdk::{Client, Proxy};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer};

/// A server that answers anything, standing in for a proxy or the API.
async fn answering() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ok())
        .mount(&server)
        .await;
    server
}

#[tokio::test]
async fn a_loopback_base_url_never_goes_through_an_explicit_proxy() {
    let (api, proxy) = (answering().await, answering().await);
    let client = builder(&api)
        .proxy(Proxy::url(proxy.uri()))
        .build()
        .unwrap();
    client.custom_tools().run(TOOL).send().await.unwrap();
    assert_eq!(requests(&api).await, 1);
    assert_eq!(requests(&proxy).await, 0, "the proxy saw the request");
}

#[tokio::test]
async fn an_explicit_proxy_carries_requests_to_other_hosts() {
    let proxy = answering().await;
    let client = Client::builder()
        .token(TOKEN)
        .base_url("http://conduit.invalid")
        .allow_insecure_http(true)
        .proxy(Proxy::url(proxy.uri()))
        .build()
        .unwrap();
    client.custom_tools().run(TOOL).send().await.unwrap();
    let seen = proxy.received_requests().await.unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0].url.host_str(),
        Some("conduit.invalid"),
        "{:?}",
        seen[0].url
    );
}

#[test]
fn a_proxy_with_an_own_http_client_is_refused() {
    let e = Client::builder()
        .token(TOKEN)
        .http_client(reqwest::Client::new())
        .proxy(Proxy::none())
        .build()
        .unwrap_err();
    assert!(e.is_config() && e.to_string().contains("proxy"), "{e}");
}
