//! The rate-limit gate through real HTTP: every call of a partition waits
//! out a 429's `Retry-After`, clones and clients sharing a limiter see it,
//! waiting is not a retry, and limits hold under concurrency. Waits are on
//! virtual time (or Tokio's paused clock), except in the one concurrency
//! test against a limiting server, which takes about two seconds.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use conduit_sdk::test_util::ManualTime;
use conduit_sdk::{Client, ErrorKind, Rate, RateLimiter, RetryPolicy};
use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, MockServer};

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

#[tokio::test]
async fn a_retry_waits_out_retry_after_exactly_on_virtual_time() {
    let server = MockServer::start().await;
    sequence(&server, throttled(Some("3")), 1, ok()).await;
    let (client, time) = gated_client(&server);
    let run = client.custom_tools().run(TOOL).send().await.unwrap();
    assert!(run.success());
    // Virtual time takes no jitter: the wait is exactly the server's.
    assert_eq!(time.waits(), vec![secs(3)]);
    // A success says what it took, as an error would.
    assert_eq!((run.attempts(), run.waited()), (2, secs(3)));
    let again = client.custom_tools().run(TOOL).send().await.unwrap();
    assert_eq!(again.attempts(), 1);
    assert_eq!(
        again.waited(),
        time.total_waited() - secs(3),
        "its pacing slot"
    );
}

#[tokio::test]
async fn a_429_holds_the_other_calls_of_the_client_and_waiting_is_not_a_retry() {
    let server = MockServer::start().await;
    sequence(&server, throttled(Some("5")), 1, ok()).await;
    // No retries at all: the call that meets the 429 fails at once.
    let (client, time) = unretried_client(&server);
    let err = client.custom_tools().run(TOOL).send().await.unwrap_err();
    assert!(err.is_rate_limited(), "{err}");
    assert!(time.waits().is_empty());

    // A clone's next call, never throttled itself, waits out the cooldown
    // and is then sent once: waiting used none of its (zero) retries.
    let clone = client.clone();
    clone.custom_tools().run(TOOL).send().await.unwrap();
    let waits = time.waits();
    assert_eq!(waits.len(), 1, "{waits:?}");
    assert!(waits[0] >= secs(5), "{waits:?}");
    assert_eq!(requests(&server).await, 2);
    assert_eq!(client.rate_limiter().stats().throttled, 1);
}

#[tokio::test]
async fn the_raw_client_passes_the_gate_too() {
    let server = MockServer::start().await;
    sequence(&server, throttled(Some("4")), 1, ok()).await;
    let (client, time) = unretried_client(&server);
    client.custom_tools().run(TOOL).send().await.unwrap_err();
    let response = raw_run(&client).await.unwrap();
    assert!(response.into_inner().data.success);
    assert!(
        time.waits().first().is_some_and(|w| *w >= secs(4)),
        "{:?}",
        time.waits()
    );
}

#[tokio::test]
async fn clients_sharing_a_limiter_share_cooldowns_and_others_do_not() {
    let server = MockServer::start().await;
    sequence(&server, throttled(Some("7")), 1, ok()).await;
    let limiter = RateLimiter::adaptive();
    // Clients sharing a limiter share its time line too.
    let (time_a, time_c) = (ManualTime::new(), ManualTime::new());
    let time_b = time_a.clone();
    let make = |time: &ManualTime, limiter: Option<&RateLimiter>| {
        let mut b = builder(&server).manual_time(time).max_retries(0);
        if let Some(l) = limiter {
            b = b.rate_limiter(l.clone());
        }
        b.build().unwrap()
    };
    let a = make(&time_a, Some(&limiter));
    let b = make(&time_b, Some(&limiter));
    let c = make(&time_c, None);
    a.custom_tools().run(TOOL).send().await.unwrap_err();
    c.custom_tools().run(TOOL).send().await.unwrap();
    assert!(
        time_c.waits().is_empty(),
        "a client with its own limiter is not held"
    );
    b.custom_tools().run(TOOL).send().await.unwrap();
    // b, never throttled itself, waits out a's 7 s.
    assert_eq!(time_b.waits(), vec![secs(7)]);
}

#[tokio::test]
async fn each_workspace_is_its_own_partition() {
    let server = MockServer::start().await;
    sequence(&server, throttled(Some("9")), 1, ok()).await;
    let time = ManualTime::new();
    let client = builder(&server)
        .manual_time(&time)
        .workspace_id("ws_default")
        .max_retries(0)
        .build()
        .unwrap();
    // A 429 in workspace ws_other ...
    let err = client
        .custom_tools()
        .run(TOOL)
        .workspace_id("ws_other")
        .send()
        .await
        .unwrap_err();
    assert!(err.is_rate_limited());
    // ... does not hold the client's default workspace ...
    client.custom_tools().run(TOOL).send().await.unwrap();
    assert!(time.waits().is_empty(), "{:?}", time.waits());
    // ... naming the default explicitly is the same partition ...
    client
        .custom_tools()
        .run(TOOL)
        .workspace_id("ws_default")
        .send()
        .await
        .unwrap();
    assert!(time.waits().is_empty(), "{:?}", time.waits());
    // ... but holds ws_other.
    client
        .custom_tools()
        .run(TOOL)
        .workspace_id("ws_other")
        .send()
        .await
        .unwrap();
    assert!(
        time.waits().first().is_some_and(|w| *w >= secs(9)),
        "{:?}",
        time.waits()
    );
}

#[tokio::test]
async fn a_cooldown_beyond_max_wait_fails_other_calls_at_once_without_sending() {
    let server = MockServer::start().await;
    always(&server, throttled(Some("100"))).await;
    let (client, time) = gated_client(&server);
    let first = client.custom_tools().run(TOOL).send().await.unwrap_err();
    assert_eq!(
        (first.attempts(), first.retry_after()),
        (1, Some(secs(100)))
    );
    time.advance(secs(30));
    let err = client.custom_tools().run(TOOL).send().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RateLimited, "{err:?}");
    assert!(err.is_refused_locally(), "{err:?}");
    assert_eq!(err.attempts(), 0, "not sent");
    assert_eq!(err.status(), None, "no response of its own");
    assert_eq!(err.retry_after(), Some(secs(70)));
    assert!(err.to_string().contains("not sent"), "{err}");
    assert_eq!(requests(&server).await, 1);
    assert!(time.waits().is_empty());
}

#[tokio::test]
async fn one_429_holds_the_workspace_no_longer_than_the_ceiling() {
    let ceiling = RateLimiter::MAX_COOLDOWN;
    let far = httpdate::fmt_http_date(std::time::SystemTime::UNIX_EPOCH + secs(4_102_444_800));
    for retry_after in ["1000000000000", far.as_str()] {
        let server = MockServer::start().await;
        sequence(&server, throttled(Some(retry_after)), 1, ok()).await;
        let (client, time) = gated_client(&server);
        // The call that got it fails with the server's value...
        let first = client.custom_tools().run(TOOL).send().await.unwrap_err();
        assert!(first.retry_after().unwrap() > 100 * ceiling, "{first:?}");
        assert!(!first.is_refused_locally());
        // ...the workspace's next call is held for the ceiling at most...
        let held = client.custom_tools().run(TOOL).send().await.unwrap_err();
        assert!(held.is_refused_locally(), "{held:?}");
        assert_eq!(held.retry_after(), Some(ceiling), "{retry_after}");
        // ...and once the ceiling is near, a call waits out the rest and goes.
        time.advance(ceiling - secs(10));
        client.custom_tools().run(TOOL).send().await.unwrap();
        assert_eq!(time.waits(), vec![secs(10)], "{retry_after}");
        assert_eq!(requests(&server).await, 2);
    }
}

#[tokio::test]
async fn a_date_retry_after_is_read_against_the_servers_clock() {
    // The client's clock is an hour behind the server's: the server asks
    // for 2 s by date, and the call waits 2 s, not an hour and 2 s.
    let server_now = std::time::SystemTime::UNIX_EPOCH + secs(1_800_000_000);
    let server = MockServer::start().await;
    let answer = throttled(Some(&httpdate::fmt_http_date(server_now + secs(2))))
        .insert_header("date", httpdate::fmt_http_date(server_now).as_str());
    sequence(&server, answer, 1, ok()).await;
    let time = ManualTime::starting_at(server_now - secs(3600));
    let client = builder(&server).manual_time(&time).build().unwrap();
    client.custom_tools().run(TOOL).send().await.unwrap();
    assert_eq!(time.waits(), vec![secs(2)]);
}

#[tokio::test]
async fn an_error_says_how_long_the_call_waited_in_all() {
    let server = MockServer::start().await;
    always(&server, throttled(Some("2"))).await;
    let (client, time) = gated_client(&server);
    let err = client.custom_tools().run(TOOL).send().await.unwrap_err();
    assert_eq!(err.attempts(), 3);
    assert_eq!(err.waited(), time.total_waited());
    assert!(err.waited() >= secs(4), "{:?}", err.waited());
    assert!(
        err.to_string().contains("after 3 attempts, waited"),
        "{err}"
    );
}

/// On real time (200 ms): a paused clock would jump to hyper's idle timers
/// while requests are on the wire.
#[tokio::test]
async fn total_timeout_covers_waiting_in_the_gate() {
    let server = MockServer::start().await;
    sequence(&server, throttled(Some("30")), 1, ok()).await;
    let client = builder(&server)
        .max_retries(0)
        .total_timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    client.custom_tools().run(TOOL).send().await.unwrap_err();
    let start = Instant::now();
    let err = client.custom_tools().run(TOOL).send().await.unwrap_err();
    let took = start.elapsed();
    assert!(err.is_timeout(), "{err:?}");
    assert!(
        // Ended by its 200 ms total timeout, far short of the 30 s cooldown.
        took >= Duration::from_millis(200) && took < secs(20),
        "{took:?}"
    );
    assert_eq!(err.attempts(), 0);
    assert_eq!(
        requests(&server).await,
        1,
        "the waiting call was never sent"
    );
}

#[tokio::test]
async fn an_explicit_rate_lets_its_allowance_go_then_waits_for_a_slot() {
    let server = MockServer::start().await;
    always(&server, ok()).await;
    let time = ManualTime::new();
    let client = builder(&server)
        .manual_time(&time)
        .rate_limit(Rate::per_second(2).unwrap())
        .build()
        .unwrap();
    for _ in 0..5 {
        client.custom_tools().run(TOOL).send().await.unwrap();
    }
    // Two at t = 0; the third waits for the first's slot (t = 1 s), the
    // fourth goes with it on the second's, the fifth waits for the third's.
    let s = Duration::from_secs;
    assert_eq!(time.waits(), vec![s(1), s(1)]);
}

#[tokio::test]
async fn conduit_rate_limit_sets_an_explicit_rate() {
    let env = |k: &str| match k {
        "CONDUIT_API_TOKEN" => Some("t".to_owned()),
        "CONDUIT_RATE_LIMIT" => Some("30/min".to_owned()),
        _ => None,
    };
    let client = conduit_sdk::ClientBuilder::from_lookup(env)
        .unwrap()
        .build()
        .unwrap();
    assert_eq!(client.rate_limiter().rate(), Rate::per_minute(30));
    let bad = |k: &str| match k {
        "CONDUIT_API_TOKEN" => Some("t".to_owned()),
        "CONDUIT_RATE_LIMIT" => Some("lots".to_owned()),
        _ => None,
    };
    let err = conduit_sdk::ClientBuilder::from_lookup(bad).unwrap_err();
    assert!(err.to_string().contains("CONDUIT_RATE_LIMIT"), "{err}");
}

/// 60 calls from 30 tasks against 10 per 250 ms; what succeeded and how
/// many 429s the server sent.
async fn overload(limiter: RateLimiter) -> (usize, u64) {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path_regex("/run$"))
        .respond_with(Limiting::new(10, Duration::from_millis(250)))
        .mount(&server)
        .await;
    let client: Client = builder(&server)
        .rate_limiter(limiter)
        .retry_policy(RetryPolicy::default().with_initial_backoff(Duration::from_millis(100)))
        .build()
        .unwrap();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let tasks: Vec<_> = (0..30)
        .map(|_| {
            let (client, next) = (client.clone(), next.clone());
            tokio::spawn(async move {
                let mut ok = 0;
                while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < 60 {
                    ok += usize::from(client.custom_tools().run(TOOL).send().await.is_ok());
                }
                ok
            })
        })
        .collect();
    let mut succeeded = 0;
    for t in tasks {
        succeeded += t.await.unwrap();
    }
    (succeeded, client.rate_limiter().stats().throttled)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_concurrency_the_gate_turns_a_stampede_into_waiting() {
    let (gated_ok, gated_429s) = overload(RateLimiter::adaptive()).await;
    let (alone_ok, alone_429s) = overload(RateLimiter::disabled()).await;
    eprintln!(
        "gated: {gated_ok}/60 ok, {gated_429s} 429s; alone: {alone_ok}/60 ok, {alone_429s} 429s"
    );
    assert_eq!(
        gated_ok, 60,
        "every call succeeds with the default 2 retries"
    );
    // The first wave meets 429s (nothing is paced before one); after that
    // the gate holds the rest.
    assert!(gated_429s <= 40, "{gated_429s}");
    assert!(alone_429s > gated_429s, "{alone_429s} vs {gated_429s}");
}

#[tokio::test]
async fn a_turn_further_off_than_max_wait_is_refused_at_once_unsent() {
    let server = MockServer::start().await;
    always(&server, ok()).await;
    let time = ManualTime::new();
    let client = builder(&server)
        .manual_time(&time)
        .rate_limit(Rate::per_minute(1).unwrap())
        .retry_policy(RetryPolicy::default().with_max_wait(secs(5)))
        .build()
        .unwrap();
    client.custom_tools().run(TOOL).send().await.unwrap();
    // The next slot is a minute away, the call may wait 5 s.
    let err = client.custom_tools().run(TOOL).send().await.unwrap_err();
    assert!(err.is_rate_limited() && err.is_refused_locally(), "{err:?}");
    assert_eq!((err.attempts(), err.retry_after()), (0, None));
    assert!(err.to_string().contains("turn"), "{err}");
    assert!(time.waits().is_empty(), "refused without waiting");
    assert_eq!(requests(&server).await, 1);
}

/// A server limiting workspace `ws_b` alone: `Retry-After: 100` to every
/// request naming it, in the query or the body; 200 to the rest.
async fn limiting_ws_b() -> MockServer {
    use wiremock::matchers::{body_partial_json, query_param};
    let server = MockServer::start().await;
    let limited = throttled(Some("100"));
    Mock::given(query_param("workspace_id", "ws_b"))
        .respond_with(limited.clone())
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(body_partial_json(
        serde_json::json!({"workspace_id": "ws_b"}),
    ))
    .respond_with(limited)
    .with_priority(1)
    .mount(&server)
    .await;
    let page = serde_json::json!({"data": [], "next_cursor": null, "has_more": false});
    Mock::given(method("GET"))
        .respond_with(wiremock::ResponseTemplate::new(200).set_body_json(page))
        .with_priority(2)
        .mount(&server)
        .await;
    always(&server, ok()).await;
    server
}

#[tokio::test]
async fn a_raw_call_is_gated_in_the_workspace_its_query_names() {
    let server = limiting_ws_b().await;
    let time = ManualTime::new();
    let client = builder(&server)
        .manual_time(&time)
        .workspace_id("ws_a")
        .max_retries(0)
        .build()
        .unwrap();
    let list = |ws: &'static str| {
        let client = client.clone();
        async move {
            client
                .call(|raw| raw.list_contacts().workspace_id(ws).send())
                .await
        }
    };
    list("ws_b").await.unwrap_err();
    // ws_b cools down; the client's own workspace does not.
    list("ws_a").await.unwrap();
    let held = list("ws_b").await.unwrap_err();
    assert!(held.is_refused_locally(), "{held:?}");
    assert_eq!(requests(&server).await, 2);
    assert!(time.waits().is_empty());
}

#[tokio::test]
async fn a_raw_call_is_gated_in_the_workspace_its_body_names() {
    use conduit_sdk::raw::types::RunCustomToolBody;
    let server = limiting_ws_b().await;
    let time = ManualTime::new();
    let client = builder(&server)
        .manual_time(&time)
        .max_retries(0)
        .build()
        .unwrap();
    let run = |ws: &'static str| {
        let client = client.clone();
        async move {
            let body = RunCustomToolBody {
                parameters: Default::default(),
                workspace_id: Some(ws.to_owned()),
            };
            client
                .call(|raw| raw.run_custom_tool().id(TOOL).body(body).send())
                .await
        }
    };
    run("ws_b").await.unwrap_err();
    run("ws_c").await.unwrap();
    // The client's own partition (its token's) is free too.
    client.custom_tools().run(TOOL).send().await.unwrap();
    let held = run("ws_b").await.unwrap_err();
    assert!(held.is_refused_locally(), "{held:?}");
    assert_eq!(requests(&server).await, 3);
}
