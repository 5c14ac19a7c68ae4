//! The typed mocks' 429 helpers, driven by the SDK's own client on virtual
//! time.

use std::time::Duration;

use conduit_sdk::test_util::{
    ManualTime, MockServerExt, ThenExt, httpmock::MockServer, run_response,
};
use conduit_sdk::{Client, ErrorKind, RateLimiter};
use serde_json::json;

fn client(server: &MockServer, time: &ManualTime, retries: u32) -> Client {
    Client::builder()
        .token("test-token")
        .base_url(server.base_url())
        .manual_time(time)
        .max_retries(retries)
        // Without the gate's spreading, each wait is the Retry-After alone.
        .rate_limiter(RateLimiter::disabled())
        .build()
        .unwrap()
}

#[tokio::test]
async fn rate_limited_answers_429_with_retry_after_in_whole_seconds() {
    let server = MockServer::start_async().await;
    let mock = server.run_custom_tool(|when, then| {
        when.id("t1");
        then.rate_limited(Duration::from_millis(2_500));
    });
    let time = ManualTime::new();
    let err = client(&server, &time, 0)
        .custom_tools()
        .run("t1")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RateLimited, "{err:?}");
    assert_eq!(err.status().map(|s| s.as_u16()), Some(429));
    // 2.5 s, rounded up: the header holds whole seconds.
    assert_eq!(err.retry_after(), Some(Duration::from_secs(3)));
    assert_eq!(err.api_message(), Some("Rate limit exceeded"));
    mock.assert_calls(1);
}

#[tokio::test]
async fn two_429s_then_200_is_retried_to_success_waiting_each_retry_after() {
    let server = MockServer::start_async().await;
    let limited = server.run_custom_tool(|when, then| {
        when.id("t1");
        then.rate_limited(Duration::from_secs(2)).up_to_n_times(2);
    });
    let ok = server.run_custom_tool(|when, then| {
        when.id("t1");
        then.ok(&run_response(json!({"message": "done"})));
    });
    let time = ManualTime::new();
    let run = client(&server, &time, 3)
        .custom_tools()
        .run("t1")
        .send()
        .await
        .unwrap();
    assert_eq!(run.message(), Some("done"));
    limited.assert_calls(2);
    ok.assert_calls(1);
    assert_eq!(time.waits(), vec![Duration::from_secs(2); 2]);
}

#[tokio::test]
async fn a_used_up_429_mock_lets_later_calls_through() {
    let server = MockServer::start_async().await;
    let limited = server.run_custom_tool(|when, then| {
        when.id("t1");
        then.rate_limited(Duration::from_secs(1)).up_to_n_times(1);
    });
    let ok = server.run_custom_tool(|when, then| {
        when.id("t1");
        then.ok(&run_response(json!({})));
    });
    let time = ManualTime::new();
    let client = client(&server, &time, 0);
    let first = client.custom_tools().run("t1").send().await.unwrap_err();
    assert!(first.is_rate_limited(), "{first:?}");
    assert!(
        client
            .custom_tools()
            .run("t1")
            .send()
            .await
            .unwrap()
            .success()
    );
    limited.assert_calls(1);
    ok.assert_calls(1);
    assert!(time.waits().is_empty(), "{:?}", time.waits());
}
