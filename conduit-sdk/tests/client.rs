//! The client against a local server: what is sent, what comes back, and
//! how each failure maps to `conduit_sdk::Error`.

mod common;

use common::*;
use conduit_sdk::ErrorKind;
use serde_json::{Value, json};
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

#[tokio::test]
async fn sends_bearer_auth_user_agent_and_the_parameters() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(RUN_PATH))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .and(body_json(json!({
            "parameters": {"order_id": "ord_12345", "count": 2},
            "workspace_id": "ws_default"
        })))
        .respond_with(ok())
        .expect(1)
        .mount(&server)
        .await;
    let client = builder(&server).workspace_id("ws_default").build().unwrap();
    let run = client
        .custom_tools()
        .run(TOOL)
        .parameter("order_id", "ord_12345")
        .parameter("count", 2)
        .send()
        .await
        .unwrap();
    assert!(run.success());
    let req = &server.received_requests().await.unwrap()[0];
    let agent = req.headers.get("user-agent").unwrap().to_str().unwrap();
    assert!(agent.starts_with("conduit-sdk-rust/"), "{agent}");
    // The header progenitor adds to every request; Conduit defines none.
    assert!(
        req.headers.get("api-version").is_none(),
        "{:?}",
        req.headers
    );
}

#[tokio::test]
async fn a_workspace_override_beats_the_default_and_structs_are_parameters() {
    #[derive(serde::Serialize)]
    struct Params {
        order_id: &'static str,
    }
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(RUN_PATH))
        .and(body_json(
            json!({"parameters": {"order_id": "o1"}, "workspace_id": "ws_other"}),
        ))
        .respond_with(ok())
        .expect(1)
        .mount(&server)
        .await;
    let client = builder(&server).workspace_id("ws_default").build().unwrap();
    client
        .custom_tools()
        .run(TOOL)
        .parameters(&Params { order_id: "o1" })
        .workspace_id("ws_other")
        .await
        .unwrap();
}

#[tokio::test]
async fn a_successful_run_exposes_every_field() {
    #[derive(serde::Deserialize, Debug, PartialEq)]
    struct Order {
        status: String,
    }
    let server = MockServer::start().await;
    always(&server, ok()).await;
    let (client, _) = client(&server);
    let run = client.custom_tools().run(TOOL).send().await.unwrap();
    assert_eq!(run.message(), Some("Order ord_12345 is shipped"));
    assert_eq!(run.result()["rawData"]["status"], "shipped");
    assert_eq!(run.error(), None);
    assert_eq!(run.logs(), None);
    assert_eq!(run.run_time(), std::time::Duration::from_millis(842));
    assert_eq!(
        run.raw_data::<Order>().unwrap(),
        Some(Order {
            status: "shipped".into()
        })
    );
    let wrong_shape = run.raw_data::<Vec<u8>>().unwrap_err();
    assert_eq!(wrong_shape.kind(), ErrorKind::Decode, "{wrong_shape}");
    assert!(
        wrong_shape
            .to_string()
            .contains("rawData does not decode as"),
        "{wrong_shape}"
    );
    assert_eq!(wrong_shape.status(), None, "the server kept its schema");
    assert!(run.into_result().is_ok());
}

#[tokio::test]
async fn a_failed_tool_is_a_response_and_into_result_makes_it_an_error() {
    let server = MockServer::start().await;
    let body = json!({"data": {"success": false, "message": null, "result": null,
        "error": "TypeError: order is undefined", "logs": "fetching order\n", "run_time_ms": 12.5}});
    always(&server, ResponseTemplate::new(200).set_body_json(body)).await;
    let (client, _) = client(&server);
    let run = client.custom_tools().run(TOOL).send().await.unwrap();
    assert!(!run.success());
    assert_eq!(run.error(), Some("TypeError: order is undefined"));
    assert_eq!(run.raw_data::<Value>().unwrap(), None);
    let failed = run.into_result().unwrap_err();
    assert_eq!(failed.message(), "TypeError: order is undefined");
    assert_eq!(failed.logs(), Some("fetching order\n"));
    assert_eq!(failed.run().run_time_ms(), 12.5);
    // `?` makes it an Error that keeps the failure, run and all.
    let err = conduit_sdk::Error::from(failed);
    assert!(err.is_tool_failure());
    assert_eq!(err.status(), None);
    assert_eq!(err.api_message(), Some("TypeError: order is undefined"));
    assert_eq!(
        err.to_string(),
        "tool failed: TypeError: order is undefined"
    );
    let failed = std::error::Error::source(&err)
        .and_then(|s| s.downcast_ref::<conduit_sdk::ToolFailure>())
        .expect("the failure is the error's source");
    let run = failed.run();
    assert_eq!(run.logs(), Some("fetching order\n"));
    assert_eq!(run.json()["error"], "TypeError: order is undefined");
}

#[tokio::test]
async fn each_documented_error_status_maps_to_its_kind_with_the_server_message() {
    for (status, kind) in [
        (400, ErrorKind::BadRequest),
        (401, ErrorKind::Unauthorized),
        (403, ErrorKind::Forbidden),
        (404, ErrorKind::NotFound),
    ] {
        let server = MockServer::start().await;
        always(&server, error(status, "Custom tool not found")).await;
        let (client, sleep) = client(&server);
        let err = client.custom_tools().run(TOOL).send().await.unwrap_err();
        assert_eq!(err.kind(), kind, "{status}");
        assert_eq!(err.status().unwrap().as_u16(), status);
        assert_eq!(err.api_message(), Some("Custom tool not found"));
        assert_eq!(err.attempts(), 1);
        assert_eq!(err.operation(), Some("run_custom_tool"));
        assert!(sleep.waits().is_empty(), "{status} is not retried");
    }
}

#[tokio::test]
async fn an_undocumented_status_keeps_its_status_and_message() {
    let server = MockServer::start().await;
    always(&server, error(409, "Tool is being edited")).await;
    let (client, _) = client(&server);
    let err = client.custom_tools().run(TOOL).send().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::OtherStatus);
    assert_eq!(err.status().unwrap().as_u16(), 409);
    assert_eq!(err.api_message(), Some("Tool is being edited"));
}

#[tokio::test]
async fn an_undocumented_success_status_keeps_its_body_in_the_error() {
    // The wrapper reads a 2xx body whole before the generated code finds
    // the status undocumented: the error must still show that body.
    let server = MockServer::start().await;
    always(&server, error(202, "Queued, not run")).await;
    let (sdk, _) = client(&server);
    let err = sdk.custom_tools().run(TOOL).send().await.unwrap_err();
    assert_eq!(err.status().unwrap().as_u16(), 202);
    assert_eq!(err.api_message(), Some("Queued, not run"));

    let server = MockServer::start().await;
    always(
        &server,
        ResponseTemplate::new(206).set_body_raw("partial run, see logs", "text/plain"),
    )
    .await;
    let (sdk, _) = client(&server);
    let err = sdk.custom_tools().run(TOOL).send().await.unwrap_err();
    assert_eq!(err.status().unwrap().as_u16(), 206);
    assert_eq!(err.body_snippet(), Some("partial run, see logs"));
}

#[tokio::test]
async fn an_undocumented_success_status_with_the_documented_body_succeeds() {
    // A write the server made is not reported lost: the status says which.
    let server = MockServer::start().await;
    let body = json!({"data": {"success": true, "message": "done", "result": null,
        "error": null, "logs": null, "run_time_ms": 3}});
    always(&server, ResponseTemplate::new(201).set_body_json(body)).await;
    let (sdk, _) = client(&server);
    let run = sdk.custom_tools().run(TOOL).send().await.unwrap();
    assert_eq!(run.status().as_u16(), 201);
    assert_eq!(run.message(), Some("done"));
}

#[tokio::test]
async fn an_html_error_page_keeps_the_status_and_a_snippet() {
    for status in [404u16, 502] {
        let server = MockServer::start().await;
        let page = format!("<html><body>{}</body></html>", "x".repeat(5000));
        always(
            &server,
            ResponseTemplate::new(status).set_body_raw(page, "text/html"),
        )
        .await;
        let (client, _) = client(&server);
        let err = client.custom_tools().run(TOOL).send().await.unwrap_err();
        assert_eq!(err.status().unwrap().as_u16(), status);
        assert!(err.is_status(), "{status}: {err:?}");
        assert!(!err.is_decode());
        let snippet = err.body_snippet().unwrap();
        assert!(
            snippet.starts_with("<html>") && snippet.len() < 600,
            "{snippet}"
        );
    }
}

#[tokio::test]
async fn a_200_that_breaks_the_schema_is_a_decode_error_with_status_and_snippet() {
    let server = MockServer::start().await;
    always(
        &server,
        ResponseTemplate::new(200).set_body_json(json!({"data": {"success": "yes"}})),
    )
    .await;
    let (client, _) = client(&server);
    let err = client.custom_tools().run(TOOL).send().await.unwrap_err();
    assert!(err.is_decode(), "{err:?}");
    assert_eq!(err.status().unwrap().as_u16(), 200);
    assert!(err.body_snippet().unwrap().contains("\"success\":\"yes\""));
    assert!(std::error::Error::source(&err).is_some());
}

#[tokio::test]
async fn unknown_extra_fields_are_accepted() {
    let server = MockServer::start().await;
    let mut body = ok_body();
    body["data"]["new_field"] = json!({"nested": true});
    body["meta"] = json!("later");
    always(&server, ResponseTemplate::new(200).set_body_json(body)).await;
    let (client, _) = client(&server);
    assert!(
        client
            .custom_tools()
            .run(TOOL)
            .send()
            .await
            .unwrap()
            .success()
    );
}

#[tokio::test]
async fn invalid_input_is_refused_before_sending() {
    let server = MockServer::start().await;
    always(&server, ok()).await;
    let (client, _) = client(&server);
    let tools = client.custom_tools();
    let cases = [
        ("empty id", tools.run("").send().await),
        ("blank id", tools.run("  \t").send().await),
        ("padded id", tools.run(" abc ").send().await),
        ("dot-dot id", tools.run("..").send().await),
        ("dot id", tools.run(".").send().await),
        (
            "array parameters",
            tools.run(TOOL).parameters(&json!([1, 2])).send().await,
        ),
        (
            "string parameters",
            tools.run(TOOL).parameters("x").send().await,
        ),
        (
            "empty workspace",
            tools.run(TOOL).workspace_id(" ").send().await,
        ),
    ];
    for (name, result) in cases {
        let err = result.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{name}: {err:?}");
        assert_eq!(err.attempts(), 0, "{name}");
    }
    assert_eq!(requests(&server).await, 0);
}

#[tokio::test]
async fn special_characters_in_an_id_stay_in_one_path_segment() {
    assert_ids_encode(&[
        ("a/b", "a%2Fb"),
        ("a?b#c", "a%3Fb%23c"),
        ("50%", "50%25"),
        ("a b", "a%20b"),
        ("ü", "%C3%BC"),
        ("../x", "..%2Fx"),
    ])
    .await;
}

#[tokio::test]
async fn a_base_url_path_prefix_is_kept() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("/proxy/conduit{RUN_PATH}")))
        .respond_with(ok())
        .expect(1)
        .mount(&server)
        .await;
    let client = conduit_sdk::Client::builder()
        .token(TOKEN)
        .base_url(format!("{}/proxy/conduit/", server.uri()))
        .build()
        .unwrap();
    client.custom_tools().run(TOOL).send().await.unwrap();
}

#[tokio::test]
async fn the_raw_client_gets_auth_and_retries_too() {
    let server = MockServer::start().await;
    sequence(&server, throttled(Some("1")), 1, ok()).await;
    let (client, sleep) = client(&server);
    let response = raw_run(&client).await.unwrap();
    assert!(response.data.success);
    assert_eq!(sleep.waits().len(), 1);
    let reqs = server.received_requests().await.unwrap();
    assert!(
        reqs.iter()
            .all(|r| r.headers.get("authorization").unwrap() == &format!("Bearer {TOKEN}"))
    );
}

#[tokio::test]
async fn a_body_over_the_limit_fails_without_being_buffered() {
    let big = "x".repeat(256 * 1024);
    for (status, kind) in [(200u16, ErrorKind::Decode), (404, ErrorKind::NotFound)] {
        let server = MockServer::start().await;
        // A documented status, so progenitor would read the whole body.
        let body = format!("{{\"error\": \"{big}\"}}");
        always(
            &server,
            ResponseTemplate::new(status).set_body_raw(body, "application/json"),
        )
        .await;
        let client = builder(&server)
            .max_response_bytes(64 * 1024)
            .build()
            .unwrap();
        let err = client.custom_tools().run(TOOL).send().await.unwrap_err();
        assert_eq!(err.kind(), kind, "{status}: {err:?}");
        assert_eq!(err.status().unwrap().as_u16(), status);
        assert!(err.to_string().contains("max_response_bytes"), "{err}");
    }
}

#[tokio::test]
async fn a_body_within_the_limit_is_read() {
    let server = MockServer::start().await;
    always(&server, ok()).await;
    let client = builder(&server).max_response_bytes(1024).build().unwrap();
    assert!(
        client
            .custom_tools()
            .run(TOOL)
            .send()
            .await
            .unwrap()
            .success()
    );
}
