//! `conduit tools run-batch`, run as a process against local servers: input
//! checks, output order and shape, exit statuses, pacing and Ctrl-C.

mod common;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::Limiting;
use common::cli::{Output, command, conduit_with_stdin, requests, success_body};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const TOKEN: &str = "tok-batch-test-51c9e2";
const TOOL_PATH: &str = "/v1/custom-tools/tool_1/run";

/// Runs `tools run-batch tool_1 EXTRA...` against `server` with `input` on
/// stdin.
async fn batch(server_uri: &str, extra: &[&str], input: &str) -> Output {
    let mut args = vec!["--base-url", server_uri, "tools", "run-batch", "tool_1"];
    args.extend_from_slice(extra);
    conduit_with_stdin(&args, &[("CONDUIT_API_TOKEN", TOKEN)], Some(input)).await
}

fn lines(out: &Output) -> Vec<Value> {
    out.stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}\n{out:?}")))
        .collect()
}

/// Answers each run by the `reply` parameter of its body: `ok`, `fail`
/// (the tool's code failed), or an HTTP status; after `delay_ms`.
struct ByParameter;

impl Respond for ByParameter {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let body: Value = request.body_json().unwrap_or(Value::Null);
        let p = &body["parameters"];
        let delay = Duration::from_millis(p["delay_ms"].as_u64().unwrap_or(0));
        let reply = match p["reply"].as_str().unwrap_or("ok") {
            "ok" => ResponseTemplate::new(200).set_body_json(success_body()),
            "fail" => ResponseTemplate::new(200).set_body_json(json!({"data": {
                "success": false, "message": null, "result": null,
                "error": "KeyError: 'order_id'", "logs": null, "run_time_ms": 3
            }})),
            status => {
                let status: u16 = status.parse().unwrap();
                ResponseTemplate::new(status)
                    .set_body_json(json!({"error": format!("status {status}")}))
            }
        };
        reply.set_delay(delay)
    }
}

async fn server() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(TOOL_PATH))
        .respond_with(ByParameter)
        .mount(&server)
        .await;
    server
}

#[tokio::test]
async fn each_item_is_one_call_and_one_line_in_input_order() {
    let server = server().await;
    // The first item answers last: output order is still input order.
    let input = r#"{"order": 0, "delay_ms": 300}
{"order": 1}

{"order": 2, "nested": {"a": [1, 2]}}
"#;
    let out = batch(&server.uri(), &["--concurrency", "3"], input).await;
    assert_eq!(out.code, 0, "{out:?}");
    let lines = lines(&out);
    assert_eq!(lines.len(), 3, "{out:?}");
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(line["index"], i, "{out:?}");
        assert_eq!(line["data"]["success"], true, "{out:?}");
        assert_eq!(line["data"]["message"], "Order ord_1 is shipped");
    }
    let mut sent: Vec<Value> = requests(&server)
        .await
        .iter()
        .map(|r| r.body_json::<Value>().unwrap()["parameters"].clone())
        .collect();
    sent.sort_by_key(|p| p["order"].as_u64());
    assert_eq!(sent[2], json!({"order": 2, "nested": {"a": [1, 2]}}));
    assert_eq!(sent.len(), 3);
    // stderr is a pipe: a summary, and no progress bar.
    assert!(out.stderr.contains("3 of 3 items"), "{out:?}");
    assert!(
        !out.stderr.contains('\r') && !out.stderr.contains('\x1b'),
        "{out:?}"
    );
    out.assert_hides(TOKEN);
}

#[tokio::test]
async fn input_can_come_from_a_file() {
    let server = server().await;
    let dir = std::env::temp_dir().join(format!("conduit-batch-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("items.jsonl");
    std::fs::write(&file, "{\"a\": 1}\n{\"a\": 2}\n").unwrap();
    let out = batch(&server.uri(), &["--input", file.to_str().unwrap()], "").await;
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(lines(&out).len(), 2);

    let out = batch(&server.uri(), &["--input", "/no/such/file.jsonl"], "").await;
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("/no/such/file.jsonl"), "{out:?}");
}

#[tokio::test]
async fn a_line_that_is_not_a_json_object_exits_2_naming_it_and_sends_nothing() {
    let server = server().await;
    for (input, line) in [
        ("{\"a\": 1}\n\n[1, 2]\n", 3),
        ("{\"a\": 1}\nnot json\n", 2),
        ("\"text\"\n", 1),
        ("{\"a\": 1}\n{\"b\": \n", 2),
    ] {
        let out = batch(&server.uri(), &[], input).await;
        assert_eq!(out.code, 2, "{input:?}: {out:?}");
        assert!(
            out.stderr.contains(&format!("line {line}")),
            "{input:?}: {out:?}"
        );
        assert!(out.stdout.is_empty(), "{out:?}");
    }
    assert!(requests(&server).await.is_empty());
}

#[tokio::test]
async fn empty_input_exits_0_with_no_output_and_sends_nothing() {
    let server = server().await;
    for input in ["", "\n  \n\t\n"] {
        let out = batch(&server.uri(), &[], input).await;
        assert_eq!(out.code, 0, "{out:?}");
        assert!(out.stdout.is_empty() && out.stderr.is_empty(), "{out:?}");
    }
    assert!(requests(&server).await.is_empty());
}

#[tokio::test]
async fn a_zero_concurrency_or_a_bad_rate_is_a_usage_error() {
    let server = server().await;
    for extra in [
        &["--concurrency", "0"][..],
        &["--concurrency", "-1"],
        &["--rate", "0/s"],
        &["--rate", "fast"],
        &["--rate", "10/h"],
        &["--rate", "-5/min"],
        &["--rate", "1.5/s"],
    ] {
        let out = batch(&server.uri(), extra, "{}\n").await;
        assert_eq!(out.code, 2, "{extra:?}: {out:?}");
        assert!(out.stderr.contains("Usage"), "{out:?}");
    }
    assert!(requests(&server).await.is_empty());
}

#[tokio::test]
async fn an_invalid_tool_id_is_a_usage_error_before_anything_is_sent() {
    let server = server().await;
    let uri = server.uri();
    let args = ["--base-url", &uri, "tools", "run-batch", " "];
    let out = conduit_with_stdin(&args, &[("CONDUIT_API_TOKEN", TOKEN)], Some("{}\n{}\n")).await;
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");
    assert!(requests(&server).await.is_empty());
}

#[tokio::test]
async fn errors_are_lines_with_kind_status_and_message_and_the_worst_outcome_exits() {
    let server = server().await;
    // A tool failure alone exits 1.
    let out = batch(
        &server.uri(),
        &[],
        "{\"reply\": \"ok\"}\n{\"reply\": \"fail\"}\n",
    )
    .await;
    assert_eq!(out.code, 1, "{out:?}");
    assert_eq!(lines(&out)[1]["data"]["success"], false);

    // An API error beats a tool failure: exit 3.
    let input = "{\"reply\": \"fail\"}\n{\"reply\": \"404\"}\n{\"reply\": \"ok\"}\n";
    let out = batch(&server.uri(), &[], input).await;
    assert_eq!(out.code, 3, "{out:?}");
    let lines = lines(&out);
    assert_eq!(
        lines[1],
        json!({"index": 1, "error": {
            "kind": "not_found",
            "status": 404,
            "message": "not found (status 404) in run_custom_tool: status 404"
        }})
    );
    assert!(
        out.stderr
            .contains("1 succeeded, 1 tool failures, 1 errors (not_found 1)"),
        "{out:?}"
    );

    // No answer at all beats everything: exit 4, status null.
    let dead = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let args = [
        "--base-url",
        &dead,
        "--max-retries",
        "0",
        "tools",
        "run-batch",
        "tool_1",
    ];
    let out = conduit_with_stdin(&args, &[("CONDUIT_API_TOKEN", TOKEN)], Some("{}\n")).await;
    assert_eq!(out.code, 4, "{out:?}");
    let line = &self::lines(&out)[0];
    assert_eq!(line["error"]["kind"], "connect", "{out:?}");
    assert_eq!(line["error"]["status"], Value::Null);
}

/// Records when each run request arrived.
struct Arrivals(Mutex<Vec<Instant>>);

impl Respond for &'static Arrivals {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        self.0.lock().unwrap().push(Instant::now());
        ResponseTemplate::new(200).set_body_json(success_body())
    }
}

#[tokio::test]
async fn rate_paces_every_worker_together() {
    let arrivals: &'static Arrivals = Box::leak(Box::new(Arrivals(Mutex::default())));
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(arrivals)
        .mount(&server)
        .await;
    let input = "{}\n".repeat(6);
    let out = batch(
        &server.uri(),
        &["--concurrency", "6", "--rate", "20/s"],
        &input,
    )
    .await;
    assert_eq!(out.code, 0, "{out:?}");
    let times = arrivals.0.lock().unwrap().clone();
    assert_eq!(times.len(), 6);
    // One request per 50 ms, however many workers: the six span five
    // intervals, and none comes in a burst (arrival times jitter by a few
    // ms on a loaded machine, so each gap is only checked loosely).
    let span = times[5] - times[0];
    assert!(span >= Duration::from_millis(240), "{span:?}: {times:?}");
    for pair in times.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(gap >= Duration::from_millis(25), "{gap:?} in {times:?}");
    }
}

#[tokio::test]
async fn a_batch_over_the_limit_waits_instead_of_failing_and_reports_the_429s() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(Limiting::new(5, Duration::from_millis(200)))
        .mount(&server)
        .await;
    let input = "{}\n".repeat(30);
    let out = batch(&server.uri(), &["--concurrency", "10"], &input).await;
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        lines(&out).iter().all(|l| l["data"]["success"] == true),
        "{out:?}"
    );
    let summary = out.stderr.lines().last().unwrap_or_default();
    let seen: u64 = summary
        .rsplit("429s seen: ")
        .next()
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no 429 count in {summary:?}"));
    assert!(seen > 0, "{summary}");
}

#[tokio::test]
async fn ctrl_c_starts_no_new_call_prints_the_finished_and_exits_130() {
    let server = server().await;
    let uri = server.uri();
    let mut cmd = command(
        &[
            "--base-url",
            &uri,
            "tools",
            "run-batch",
            "tool_1",
            "--concurrency",
            "2",
        ],
        &[("CONDUIT_API_TOKEN", TOKEN)],
    )
    .await;
    cmd.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    {
        use tokio::io::AsyncWriteExt;
        let mut stdin = child.stdin.take().unwrap();
        stdin
            .write_all("{\"delay_ms\": 600}\n".repeat(10).as_bytes())
            .await
            .unwrap();
    }
    // Wait until the two calls are in flight, then interrupt.
    let deadline = Instant::now() + Duration::from_secs(20);
    while requests(&server).await.len() < 2 {
        assert!(Instant::now() < deadline, "the calls never arrived");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let pid = child.id().unwrap().to_string();
    let killed = tokio::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .await
        .unwrap();
    assert!(killed.success());
    let out = Output::from(
        tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
            .await
            .unwrap()
            .unwrap(),
    );
    assert_eq!(out.code, 130, "{out:?}");
    assert_eq!(requests(&server).await.len(), 2, "no new call after Ctrl-C");
    let lines = lines(&out);
    assert_eq!(lines.len(), 2, "the calls in flight finished: {out:?}");
    assert!(
        lines.iter().all(|l| l["data"]["success"] == true),
        "{out:?}"
    );
    assert!(out.stderr.contains("interrupted"), "{out:?}");
    assert!(out.stderr.contains("2 of 10 items"), "{out:?}");
}
