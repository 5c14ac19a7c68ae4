//! Each retry rule against a local server. Waits are recorded by an injected
//! sleeper (or taken on tokio's paused clock), never slept for real.

mod common;

use std::time::{Duration, SystemTime};

use common::*;
use conduit_sdk::test_util::ManualTime;
use conduit_sdk::{ErrorKind, RetryPolicy};
use wiremock::MockServer;

#[tokio::test]
async fn retry_after_seconds_is_honoured() {
    let server = MockServer::start().await;
    sequence(&server, throttled(Some("3")), 1, ok()).await;
    let (client, sleep) = client(&server);
    let run = client.custom_tools().run(TOOL).send().await.unwrap();
    assert!(run.success());
    assert_eq!(sleep.waits(), vec![Duration::from_secs(3)]);
    assert_eq!(requests(&server).await, 2);
}

#[tokio::test]
async fn retry_after_http_date_is_honoured_exactly() {
    let server = MockServer::start().await;
    let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let at = httpdate::fmt_http_date(start + Duration::from_secs(30));
    // The server's clock reads `start` too (the date is read against it).
    let answer =
        throttled(Some(&at)).insert_header("date", httpdate::fmt_http_date(start).as_str());
    sequence(&server, answer, 1, ok()).await;
    // Virtual time whose wall clock reads `start`: the wait is exact.
    let time = ManualTime::starting_at(start);
    let client = builder(&server)
        .manual_time(&time)
        .rate_limiter(conduit_sdk::RateLimiter::disabled())
        .build()
        .unwrap();
    client.custom_tools().run(TOOL).send().await.unwrap();
    assert_eq!(time.waits(), vec![Duration::from_secs(30)]);
}

#[tokio::test]
async fn retry_after_above_the_cap_returns_at_once_with_its_value() {
    let server = MockServer::start().await;
    always(&server, throttled(Some("120"))).await;
    let (client, sleep) = client(&server);
    let err = client.custom_tools().run(TOOL).send().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RateLimited);
    assert_eq!(err.retry_after(), Some(Duration::from_secs(120)));
    assert_eq!(err.attempts(), 1);
    assert_eq!(err.api_message(), Some("Rate limit exceeded"));
    assert!(sleep.waits().is_empty());
    assert_eq!(requests(&server).await, 1);
}

#[tokio::test]
async fn the_cap_is_configurable() {
    let server = MockServer::start().await;
    sequence(&server, throttled(Some("120")), 1, ok()).await;
    let sleep = ManualTime::new();
    let client = builder(&server)
        .manual_time(&sleep)
        .rate_limiter(conduit_sdk::RateLimiter::disabled())
        .retry_policy(RetryPolicy::default().with_max_wait(Duration::from_secs(300)))
        .build()
        .unwrap();
    client.custom_tools().run(TOOL).send().await.unwrap();
    assert_eq!(sleep.waits(), vec![Duration::from_secs(120)]);
}

#[tokio::test]
async fn exhausted_retries_return_the_rate_limit_with_attempts() {
    let server = MockServer::start().await;
    always(&server, throttled(Some("1"))).await;
    let (client, sleep) = client(&server);
    let err = client.custom_tools().run(TOOL).send().await.unwrap_err();
    assert!(err.is_rate_limited());
    assert_eq!(err.status().map(|s| s.as_u16()), Some(429));
    assert_eq!(
        err.attempts(),
        3,
        "default: 2 retries after the first attempt"
    );
    assert_eq!(err.retry_after(), Some(Duration::from_secs(1)));
    assert!(err.to_string().contains("after 3 attempts"), "{err}");
    assert_eq!(sleep.waits(), vec![Duration::from_secs(1); 2]);
    assert_eq!(requests(&server).await, 3);
}

#[tokio::test]
async fn max_retries_zero_sends_once() {
    let server = MockServer::start().await;
    always(&server, throttled(Some("1"))).await;
    let sleep = ManualTime::new();
    let client = builder(&server)
        .manual_time(&sleep)
        .rate_limiter(conduit_sdk::RateLimiter::disabled())
        .max_retries(0)
        .build()
        .unwrap();
    let err = client.custom_tools().run(TOOL).send().await.unwrap_err();
    assert!(err.is_rate_limited());
    assert_eq!(err.attempts(), 1);
    assert!(sleep.waits().is_empty());
    assert_eq!(requests(&server).await, 1);
}

#[tokio::test]
async fn without_retry_after_backoff_doubles_with_jitter() {
    let server = MockServer::start().await;
    sequence(&server, throttled(None), 2, ok()).await;
    let (client, sleep) = client(&server);
    client.custom_tools().run(TOOL).send().await.unwrap();
    let waits = sleep.waits();
    assert_eq!(waits.len(), 2);
    let ms: Vec<u128> = waits.iter().map(Duration::as_millis).collect();
    assert!((375..=500).contains(&ms[0]), "{ms:?}");
    assert!((750..=1000).contains(&ms[1]), "{ms:?}");
}

#[tokio::test]
async fn unparsable_retry_after_falls_back_to_backoff() {
    for bad in ["soon", "-3"] {
        let server = MockServer::start().await;
        sequence(&server, throttled(Some(bad)), 1, ok()).await;
        let (client, sleep) = client(&server);
        client.custom_tools().run(TOOL).send().await.unwrap();
        let ms = sleep.waits()[0].as_millis();
        assert!((375..=500).contains(&ms), "{bad}: {ms}");
    }
}

#[tokio::test]
async fn post_is_not_retried_after_a_server_error() {
    for status in [500u16, 502, 503, 504] {
        let server = MockServer::start().await;
        sequence(&server, error(status, "upstream down"), 1, ok()).await;
        let (client, sleep) = client(&server);
        let err = client.custom_tools().run(TOOL).send().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Server, "{status}");
        assert_eq!(err.status().map(|s| s.as_u16()), Some(status));
        assert_eq!(err.api_message(), Some("upstream down"));
        assert_eq!(err.attempts(), 1);
        assert!(sleep.waits().is_empty());
        assert_eq!(requests(&server).await, 1, "{status}");
    }
}

#[tokio::test]
async fn post_is_not_retried_after_a_timeout() {
    let server = MockServer::start().await;
    sequence(&server, ok().set_delay(Duration::from_secs(5)), 1, ok()).await;
    let sleep = ManualTime::new();
    let client = builder(&server)
        .manual_time(&sleep)
        .rate_limiter(conduit_sdk::RateLimiter::disabled())
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let err = client.custom_tools().run(TOOL).send().await.unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert_eq!(err.attempts(), 1);
    assert_eq!(requests(&server).await, 1);
}

#[tokio::test]
async fn a_connection_that_cannot_be_opened_is_retried_even_for_post() {
    // Bind then drop a listener: the port is closed, connecting is refused.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let sleep = ManualTime::new();
    let client = conduit_sdk::Client::builder()
        .token(TOKEN)
        .base_url(format!("http://127.0.0.1:{port}"))
        .manual_time(&sleep)
        .rate_limiter(conduit_sdk::RateLimiter::disabled())
        .build()
        .unwrap();
    let err = client.custom_tools().run(TOOL).send().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connect, "{err:?}");
    assert_eq!(err.attempts(), 3);
    assert_eq!(sleep.waits().len(), 2);
}

/// An HTTP client with no timers of its own. On a paused clock tokio jumps
/// to the next timer whenever the runtime waits on I/O, so a request timeout
/// or the pool's idle timer would fire or skew the measured wait.
fn paused_clock_http() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_idle_timeout(None)
        .build()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn the_default_sleeper_waits_on_the_tokio_clock() {
    let server = MockServer::start().await;
    sequence(&server, throttled(Some("2")), 1, ok()).await;
    let client = builder(&server)
        .http_client(paused_clock_http())
        .build()
        .unwrap();
    let start = tokio::time::Instant::now();
    client.custom_tools().run(TOOL).send().await.unwrap();
    let waited = start.elapsed();
    // The Retry-After, on the paused clock: never less, and no jump past
    // the gate's jitter (under 1 s; tokio's timer rounds up to 1 ms).
    assert!(
        waited >= Duration::from_secs(2) && waited <= Duration::from_millis(3001),
        "{waited:?}"
    );
    assert_eq!(requests(&server).await, 2);
}

#[tokio::test(start_paused = true)]
async fn dropping_a_call_during_a_retry_wait_sends_nothing_more() {
    let server = MockServer::start().await;
    always(&server, throttled(Some("10"))).await;
    let client = builder(&server)
        .http_client(paused_clock_http())
        .build()
        .unwrap();
    let call = tokio::spawn({
        let client = client.clone();
        async move { client.custom_tools().run(TOOL).send().await }
    });
    // Step the paused clock in small increments until the first 429 is
    // answered; the call is then in its 10 s wait.
    let start = tokio::time::Instant::now();
    while requests(&server).await == 0 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "the retry wait is not over"
    );
    call.abort();
    assert!(call.await.unwrap_err().is_cancelled());
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(requests(&server).await, 1, "a dropped call must not retry");
}

#[tokio::test]
async fn total_timeout_bounds_the_whole_call_including_waits() {
    let server = MockServer::start().await;
    always(&server, throttled(Some("1"))).await;
    let client = builder(&server)
        .total_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let err = client.custom_tools().run(TOOL).send().await.unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert!(!err.is_status(), "a timeout is not a status error: {err:?}");
    assert_eq!(err.attempts(), 1);
}

#[tokio::test]
async fn a_call_cut_short_mid_attempt_counts_that_attempt() {
    let server = MockServer::start().await;
    always(&server, ok().set_delay(Duration::from_secs(5))).await;
    let client = builder(&server)
        .total_timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let err = client.custom_tools().run(TOOL).send().await.unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert_eq!(err.attempts(), 1);
}

#[tokio::test]
async fn no_policy_overflows_whatever_its_durations() {
    // Backoffs of Duration::MAX, and a Retry-After too bad to use: the
    // backoff is what the call would wait, far past max_wait.
    let server = MockServer::start().await;
    always(&server, throttled(Some("soon"))).await;
    let time = ManualTime::new();
    let policy = conduit_sdk::RetryPolicy::default()
        .with_initial_backoff(Duration::MAX)
        .with_max_backoff(Duration::MAX);
    let client = builder(&server)
        .manual_time(&time)
        .retry_policy(policy.clone())
        .build()
        .unwrap();
    let err = client.custom_tools().run(TOOL).send().await.unwrap_err();
    assert!(err.is_rate_limited() && err.attempts() == 1, "{err:?}");
    // The workspace is held for the ceiling, not for ever.
    let held = client.custom_tools().run(TOOL).send().await.unwrap_err();
    assert!(held.is_refused_locally(), "{held:?}");
    assert_eq!(
        held.retry_after(),
        Some(conduit_sdk::RateLimiter::MAX_COOLDOWN)
    );
    // Nor does a max_wait of Duration::MAX.
    let client = builder(&server)
        .manual_time(&time)
        .retry_policy(policy.with_max_wait(Duration::MAX).with_max_retries(1))
        .build()
        .unwrap();
    let err = client.custom_tools().run(TOOL).send().await.unwrap_err();
    assert!(err.is_rate_limited(), "{err:?}");
}
