//! The generated per-operation layer: input checks before sending, the
//! client's workspace filled in, rate-limit partitions per request, pages
//! and streams, writes not retried.

mod common;

use common::*;
use conduit_sdk::ErrorKind;
use futures_util::{StreamExt, TryStreamExt};
use serde_json::{Value, json};
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

fn contact(id: &str) -> Value {
    json!({ "id": id, "name": format!("Contact {id}") })
}

fn page(ids: &[&str], next: Option<&str>) -> ResponseTemplate {
    let data: Vec<Value> = ids.iter().map(|id| contact(id)).collect();
    ResponseTemplate::new(200)
        .set_body_json(json!({ "data": data, "next_cursor": next, "has_more": next.is_some() }))
}

/// What the server received, in order: `(method, path?query, body)`.
async fn received(server: &MockServer) -> Vec<(String, String, Value)> {
    let requests: Vec<Request> = server.received_requests().await.unwrap();
    requests
        .into_iter()
        .map(|r| {
            let target = match r.url.query() {
                Some(q) => format!("{}?{q}", r.url.path()),
                None => r.url.path().to_owned(),
            };
            let body = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
            (r.method.to_string(), target, body)
        })
        .collect()
}

#[tokio::test]
async fn a_stream_reads_three_pages_in_order_through_a_429() {
    let server = MockServer::start().await;
    Mock::given(path("/v1/contacts"))
        .and(query_param("cursor", "c2"))
        .respond_with(throttled(Some("1")))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    for (cursor, ids, next) in [
        ("c2", &["c", "d"][..], Some("c3")),
        ("c3", &["e"][..], None),
    ] {
        Mock::given(path("/v1/contacts"))
            .and(query_param("cursor", cursor))
            .respond_with(page(ids, next))
            .with_priority(2)
            .mount(&server)
            .await;
    }
    Mock::given(path("/v1/contacts"))
        .respond_with(page(&["a", "b"], Some("c2")))
        .with_priority(3)
        .mount(&server)
        .await;
    let time = conduit_sdk::test_util::ManualTime::new();
    let client = builder(&server)
        .workspace_id("ws_1")
        .manual_time(&time)
        .build()
        .unwrap();
    let ids: Vec<String> = client
        .contacts()
        .list()
        .limit(2)
        .items()
        .map_ok(|c| c.id.clone().unwrap_or_default())
        .try_collect()
        .await
        .unwrap();
    assert_eq!(
        ids,
        ["a", "b", "c", "d", "e"],
        "nothing twice, nothing lost"
    );
    let sent = received(&server).await;
    assert_eq!(sent.len(), 4, "three pages and the one retry: {sent:?}");
    for (_, target, _) in &sent {
        assert!(target.contains("workspace_id=ws_1"), "{target}");
        assert!(target.contains("limit=2"), "{target}");
    }
    assert!(
        time.waits().iter().any(|w| w.as_secs() == 1),
        "{:?}",
        time.waits()
    );
}

#[tokio::test]
async fn a_cursor_given_twice_ends_the_stream_with_an_error() {
    let server = MockServer::start().await;
    Mock::given(path("/v1/contacts"))
        .respond_with(page(&["a"], Some("same")))
        .mount(&server)
        .await;
    let (client, _) = client(&server);
    let items: Vec<_> = client
        .contacts()
        .list()
        .workspace_id("ws_1")
        .items()
        .collect()
        .await;
    assert_eq!(items.len(), 3, "a, a, then the error: {items:?}");
    let err = items[2].as_ref().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Decode);
    assert!(err.to_string().contains("second time"), "{err}");
    assert_eq!(requests(&server).await, 2);
}

#[tokio::test]
async fn one_page_carries_its_cursor_and_the_response() {
    let server = MockServer::start().await;
    Mock::given(path("/v1/tickets"))
        .respond_with(page(&["t1"], Some("next")).insert_header("x-request-id", "req_9"))
        .mount(&server)
        .await;
    let (client, _) = client(&server);
    let page = client
        .tickets()
        .list()
        .workspace_id("ws_1")
        .status("open")
        .send()
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.next_cursor.as_deref(), Some("next"));
    assert!(page.has_more);
    assert_eq!(page.request_id(), Some("req_9"));
    assert_eq!(page.status(), 200);
    let (_, target, _) = &received(&server).await[0];
    assert_eq!(target, "/v1/tickets?workspace_id=ws_1&status=open");
}

#[tokio::test]
async fn bad_input_is_refused_before_sending_naming_what_is_wrong() {
    let server = MockServer::start().await;
    let (client, _) = client(&server);
    let cases = [
        (
            client
                .tickets()
                .list()
                .workspace_id("ws")
                .status("reopened")
                .send()
                .await
                .map(drop),
            "status: invalid value; one of: open, new, pending, resolved, closed",
        ),
        (
            client
                .tickets()
                .list()
                .workspace_id("ws")
                .limit(101)
                .send()
                .await
                .map(drop),
            "above the maximum 100",
        ),
        (
            client
                .tickets()
                .list()
                .workspace_id("ws")
                .limit(0)
                .send()
                .await
                .map(drop),
            "below the minimum 1",
        ),
        (
            client.tickets().list().send().await.map(drop),
            "workspace_id",
        ),
        (
            client.tickets().close("").send().await.map(drop),
            "id is empty",
        ),
        (
            client.tickets().close("..").send().await.map(drop),
            "leave its path segment",
        ),
        (
            client
                .skills()
                .create()
                .workspace_id("ws")
                .name("n")
                .send()
                .await
                .map(drop),
            "missing field",
        ),
        (
            client
                .knowledge()
                .create_node()
                .workspace_id("ws")
                .title("t")
                .field("metadata", &f64::NAN)
                .send()
                .await
                .map(drop),
            "NaN",
        ),
    ];
    for (i, (result, says)) in cases.into_iter().enumerate() {
        let err = result.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "case {i}: {err:?}");
        assert!(err.to_string().contains(says), "case {i}: {err}");
        assert_eq!(err.attempts(), 0, "case {i}");
    }
    assert_eq!(requests(&server).await, 0);
}

#[tokio::test]
async fn the_clients_workspace_fills_the_query_or_the_body_unless_the_call_names_one() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(page(&[], None))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "data": {} })))
        .mount(&server)
        .await;
    let client = builder(&server).workspace_id("ws_default").build().unwrap();
    client.tickets().list().send().await.unwrap();
    client
        .tickets()
        .list()
        .workspace_id("ws_other")
        .send()
        .await
        .unwrap();
    client
        .custom_tools()
        .create()
        .name("t")
        .send()
        .await
        .unwrap();
    client
        .custom_tools()
        .create()
        .name("t")
        .workspace_id("ws_other")
        .send()
        .await
        .unwrap();
    // No workspace_id in the spec for this one: none is added.
    client.workspaces().list().send().await.unwrap();
    let sent = received(&server).await;
    assert_eq!(sent[0].1, "/v1/tickets?workspace_id=ws_default");
    assert_eq!(sent[1].1, "/v1/tickets?workspace_id=ws_other");
    assert_eq!(
        sent[2].2,
        json!({ "name": "t", "workspace_id": "ws_default" })
    );
    assert_eq!(
        sent[3].2,
        json!({ "name": "t", "workspace_id": "ws_other" })
    );
    assert_eq!(sent[4].1, "/v1/workspaces");
}

#[tokio::test]
async fn each_request_counts_against_the_workspace_it_targets_or_the_token() {
    let server = MockServer::start().await;
    // ws_b is limited, in the query or the body; the rest answers.
    Mock::given(query_param("workspace_id", "ws_b"))
        .respond_with(throttled(Some("100")))
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(wiremock::matchers::body_partial_json(
        json!({"workspace_id": "ws_b"}),
    ))
    .respond_with(throttled(Some("100")))
    .with_priority(1)
    .mount(&server)
    .await;
    Mock::given(method("GET"))
        .respond_with(page(&[], None))
        .with_priority(2)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "data": {} })))
        .with_priority(2)
        .mount(&server)
        .await;
    let time = conduit_sdk::test_util::ManualTime::new();
    let client = builder(&server)
        .workspace_id("ws_b")
        .manual_time(&time)
        .max_retries(0)
        .build()
        .unwrap();
    // The client's own workspace, by the query, cools down.
    let err = client.tickets().list().send().await.unwrap_err();
    assert!(
        err.is_rate_limited() && !err.is_refused_locally(),
        "{err:?}"
    );
    // Held now, by the query and by the body, without a request.
    let held = client.tickets().list().send().await.unwrap_err();
    assert!(held.is_refused_locally(), "{held:?}");
    let held = client
        .custom_tools()
        .create()
        .name("t")
        .send()
        .await
        .unwrap_err();
    assert!(held.is_refused_locally(), "{held:?}");
    // Another workspace, named in the query or the body, is free.
    client
        .tickets()
        .list()
        .workspace_id("ws_a")
        .send()
        .await
        .unwrap();
    client
        .custom_tools()
        .create()
        .name("t")
        .workspace_id("ws_a")
        .send()
        .await
        .unwrap();
    // A workspace named by the path counts against that workspace.
    let held = client.workspaces().roles("ws_b").send().await.unwrap_err();
    assert!(held.is_refused_locally(), "{held:?}");
    client.workspaces().roles("ws_a").send().await.unwrap();
    // A request that targets no workspace counts against the token: free.
    client.workspaces().list().send().await.unwrap();
    client.custom_tools().runtimes().send().await.unwrap();
    assert_eq!(requests(&server).await, 6);
    assert!(time.waits().is_empty());
}

#[tokio::test]
async fn a_write_is_not_retried_on_a_503_and_a_read_is() {
    let server = MockServer::start().await;
    for write in ["POST", "PATCH"] {
        Mock::given(method(write))
            .respond_with(ResponseTemplate::new(503))
            .mount(&server)
            .await;
    }
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "data": {"id": "tk_1"} })))
        .with_priority(2)
        .mount(&server)
        .await;
    let (client, _) = client(&server);
    let err = client
        .tickets()
        .send_message("tk_1")
        .workspace_id("ws")
        .body("hello")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Server);
    assert_eq!(err.attempts(), 1, "a POST is sent once");
    let err = client.agents().update("ag_1").send().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Server);
    assert_eq!(err.attempts(), 1, "a PATCH is sent once");
    let ticket = client
        .helpdesk_tickets()
        .get("tk_1")
        .workspace_id("ws")
        .send()
        .await
        .unwrap();
    assert_eq!(ticket.attempts(), 2, "a GET is retried");
    assert_eq!(ticket.id.as_deref(), Some("tk_1"));
}

#[tokio::test]
async fn a_body_that_is_not_the_documented_shape_is_a_decode_error_with_a_snippet() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "data": "no" })))
        .mount(&server)
        .await;
    let (client, _) = client(&server);
    let err = client
        .calls()
        .get("c1")
        .workspace_id("ws")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Decode, "{err:?}");
    assert!(err.body_snippet().unwrap().contains("no"));
}
