//! `conduit tools run-batch`, run as a process against local servers: input
//! checks, output order and shape, exit statuses, pacing and Ctrl-C.

mod common;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::{Limiting, Output, command, conduit_with_stdin, requests, success_body};
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

/// A file in a fresh directory, removed with it when dropped.
struct TempFile(std::path::PathBuf);

impl TempFile {
    fn new(name: &str, text: &str) -> Self {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("conduit-batch-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        Self(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(dir) = self.0.parent() {
            std::fs::remove_dir_all(dir).ok();
        }
    }
}

const BAD_INPUTS: [(&str, usize); 4] = [
    ("{\"a\": 1}\n\n[1, 2]\n", 3),
    ("{\"a\": 1}\nnot json\n", 2),
    ("\"text\"\n", 1),
    ("{\"a\": 1}\n{\"b\": \n", 2),
];

#[tokio::test]
async fn a_bad_line_in_a_file_exits_2_naming_it_and_sends_nothing() {
    let server = server().await;
    let uri = server.uri();
    for (input, line) in BAD_INPUTS {
        let file = TempFile::new("items.jsonl", input);
        // As --input, and as stdin redirected from the file.
        let out = batch(&uri, &["--input", file.path()], "").await;
        let mut cmd = command(
            &["--base-url", &uri, "tools", "run-batch", "tool_1"],
            &[("CONDUIT_API_TOKEN", TOKEN)],
        )
        .await;
        cmd.stdin(std::fs::File::open(file.path()).unwrap())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let redirected = Output::from(cmd.output().await.unwrap());
        for out in [out, redirected] {
            assert_eq!(out.code, 2, "{input:?}: {out:?}");
            assert!(
                out.stderr.contains(&format!("line {line}")),
                "{input:?}: {out:?}"
            );
            assert!(out.stdout.is_empty(), "{out:?}");
        }
    }
    assert!(requests(&server).await.is_empty());
}

#[tokio::test]
async fn a_bad_line_in_a_pipe_sends_nothing_for_it_or_after_it_and_exits_2() {
    let server = server().await;
    for (input, line) in BAD_INPUTS {
        let out = batch(&server.uri(), &[], input).await;
        assert_eq!(out.code, 2, "{input:?}: {out:?}");
        assert!(
            out.stderr.contains(&format!("line {line}")),
            "{input:?}: {out:?}"
        );
    }
    // The lines before the bad one are sent and printed; none after it.
    let input = "{\"n\": 1}\n{\"n\": 2}\n{\"n\": oops}\n{\"n\": 4}\n";
    let before = requests(&server).await.len();
    let out = batch(&server.uri(), &["--concurrency", "1"], input).await;
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("input line 3: not JSON"), "{out:?}");
    let printed = lines(&out);
    assert_eq!(printed.len(), 2, "{out:?}");
    assert!(
        printed.iter().all(|l| l["data"]["success"] == true),
        "{out:?}"
    );
    let sent: Vec<Value> = requests(&server).await[before..]
        .iter()
        .map(|r| r.body_json::<Value>().unwrap()["parameters"]["n"].clone())
        .collect();
    assert_eq!(sent, [json!(1), json!(2)]);
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
async fn rate_keeps_every_worker_to_one_allowance() {
    let arrivals: &'static Arrivals = Box::leak(Box::new(Arrivals(Mutex::default())));
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(arrivals)
        .mount(&server)
        .await;
    let input = "{}\n".repeat(4);
    let out = batch(
        &server.uri(),
        &["--concurrency", "4", "--rate", "2/s"],
        &input,
    )
    .await;
    assert_eq!(out.code, 0, "{out:?}");
    let times = arrivals.0.lock().unwrap().clone();
    assert_eq!(times.len(), 4);
    // Two at once, however many workers; the other two a second later,
    // when the first two's slots free: never three in a second.
    assert!(
        times[1] - times[0] < Duration::from_millis(500),
        "{times:?}"
    );
    for pair in [(0, 2), (1, 3)] {
        let gap = times[pair.1] - times[pair.0];
        assert!(gap >= Duration::from_millis(990), "{gap:?} in {times:?}");
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

/// Starts `tools run-batch tool_1 EXTRA...` against `server_uri`, its
/// output piped; stdin is `stdin`.
async fn spawn_batch(
    server_uri: &str,
    extra: &[&str],
    stdin: std::process::Stdio,
) -> tokio::process::Child {
    let mut args = vec!["--base-url", server_uri, "tools", "run-batch", "tool_1"];
    args.extend_from_slice(extra);
    let mut cmd = command(&args, &[("CONDUIT_API_TOKEN", TOKEN)]).await;
    cmd.stdin(stdin)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    cmd.spawn().expect("the CLI runs")
}

async fn signal(child: &tokio::process::Child, name: &str) {
    let pid = child.id().expect("still running").to_string();
    let sent = tokio::process::Command::new("kill")
        .args([&format!("-{name}"), &pid])
        .status()
        .await
        .unwrap();
    assert!(sent.success(), "kill -{name} {pid}");
}

async fn wait_for_requests(server: &MockServer, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while requests(server).await.len() < n {
        assert!(Instant::now() < deadline, "{n} requests never arrived");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Ten items at 1/min: the first is sent at once, the next three wait in
/// the gate for its slot, a minute on. `name` arrives while the first is
/// in flight.
async fn stopped_while_calls_wait_in_the_gate(name: &str) -> Output {
    let server = server().await;
    let file = TempFile::new("items.jsonl", &"{\"delay_ms\": 700}\n".repeat(10));
    let args = [
        "--rate",
        "1/min",
        "--concurrency",
        "4",
        "--input",
        file.path(),
    ];
    let child = spawn_batch(&server.uri(), &args, std::process::Stdio::null()).await;
    wait_for_requests(&server, 1).await;
    signal(&child, name).await;
    // Without the signal handled this takes minutes: the waiting calls
    // would go out at their turns.
    let out = tokio::time::timeout(Duration::from_secs(10), child.wait_with_output())
        .await
        .expect("the CLI stops soon after the signal")
        .unwrap();
    let out = Output::from(out);
    assert_eq!(
        requests(&server).await.len(),
        1,
        "nothing is sent after {name}: {out:?}"
    );
    let printed = lines(&out);
    assert_eq!(printed.len(), 4, "{out:?}");
    assert_eq!(printed[0]["index"], 0);
    assert_eq!(
        printed[0]["data"]["success"], true,
        "in flight, awaited: {out:?}"
    );
    for (i, line) in printed.iter().enumerate().skip(1) {
        assert_eq!(line["index"], i, "{out:?}");
        assert_eq!(line["error"]["kind"], "not_sent", "{out:?}");
        assert_eq!(line["error"]["status"], Value::Null, "{out:?}");
    }
    assert!(
        out.stderr.contains("4 of 10 items in")
            && out.stderr.contains(&format!(
            "1 succeeded, 0 tool failures, 0 errors; stopped by SIG{name}: 3 not sent, 0 interrupted"
        )),
        "{out:?}"
    );
    out.assert_hides(TOKEN);
    out
}

#[tokio::test]
async fn ctrl_c_drops_the_calls_waiting_in_the_gate_awaits_the_one_out_and_exits_130() {
    let out = stopped_while_calls_wait_in_the_gate("INT").await;
    assert_eq!(out.code, 130, "{out:?}");
}

#[tokio::test]
async fn sigterm_stops_as_ctrl_c_does_and_exits_143() {
    let out = stopped_while_calls_wait_in_the_gate("TERM").await;
    assert_eq!(out.code, 143, "{out:?}");
}

#[tokio::test]
async fn sighup_stops_as_ctrl_c_does_and_exits_129() {
    let out = stopped_while_calls_wait_in_the_gate("HUP").await;
    assert_eq!(out.code, 129, "{out:?}");
}

#[tokio::test]
async fn a_second_signal_abandons_the_call_out_and_reports_it() {
    let server = server().await;
    let file = TempFile::new("items.jsonl", &"{\"delay_ms\": 5000}\n".repeat(3));
    let args = ["--concurrency", "1", "--input", file.path()];
    let child = spawn_batch(&server.uri(), &args, std::process::Stdio::null()).await;
    wait_for_requests(&server, 1).await;
    signal(&child, "INT").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    signal(&child, "TERM").await;
    let out = tokio::time::timeout(Duration::from_secs(4), child.wait_with_output())
        .await
        .expect("the second signal does not wait for the call")
        .unwrap();
    let out = Output::from(out);
    // The first signal's status: it is what stopped the batch.
    assert_eq!(out.code, 130, "{out:?}");
    assert_eq!(
        lines(&out),
        [json!({"index": 0, "error": {
            "kind": "interrupted",
            "status": null,
            "message": "abandoned by a second signal with its request out: it may have run"
        }})]
    );
    assert!(out.stderr.contains("1 of 3 items"), "{out:?}");
    assert_eq!(requests(&server).await.len(), 1);
}

/// The first answer holds the workspace for 100 s, more than a call may
/// wait (60 s): every later call is refused by the gate without sending.
async fn server_holding_the_workspace() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(TOOL_PATH))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("Retry-After", "100")
                .set_body_json(json!({"error": "slow down"})),
        )
        .mount(&server)
        .await;
    server
}

#[tokio::test]
async fn a_call_the_gate_refused_says_it_was_refused_locally_and_not_sent() {
    let server = server_holding_the_workspace().await;
    let out = batch(&server.uri(), &["--concurrency", "1"], &"{}\n".repeat(3)).await;
    assert_eq!(out.code, 3, "{out:?}");
    assert_eq!(requests(&server).await.len(), 1, "{out:?}");
    let printed = lines(&out);
    assert_eq!(printed[0]["error"]["status"], 429, "{out:?}");
    for line in &printed[1..] {
        assert_eq!(line["error"]["kind"], "rate_limited", "{out:?}");
        assert_eq!(line["error"]["status"], Value::Null, "{out:?}");
        let message = line["error"]["message"].as_str().unwrap();
        assert!(
            message.starts_with("rate limited: refused locally, nothing sent: the rate-limit gate still holds this workspace for ")
                && message.ends_with(" s after a 429, longer than a call may wait"),
            "{message}"
        );
    }
}

/// The peak resident set of process `pid`, in KiB (Linux).
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

#[tokio::test]
async fn memory_stays_bounded_by_the_concurrency_for_a_large_piped_input() {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    // ~100 MB of input: held whole, it alone is over the bound. The calls
    // are refused by the gate, so that they cost little.
    const ITEMS: usize = 50_000;
    const BOUND_KIB: u64 = 64 * 1024;
    let server = server_holding_the_workspace().await;
    let mut child = spawn_batch(
        &server.uri(),
        &["--concurrency", "8"],
        std::process::Stdio::piped(),
    )
    .await;
    let pid = child.id().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let padding = "x".repeat(2000);
    let writer = tokio::spawn(async move {
        let mut chunk = String::new();
        for i in 0..ITEMS {
            chunk.push_str(&format!("{{\"i\": {i}, \"pad\": \"{padding}\"}}\n"));
            if chunk.len() > 1 << 16 {
                stdin.write_all(chunk.as_bytes()).await.unwrap();
                chunk.clear();
            }
        }
        stdin.write_all(chunk.as_bytes()).await.unwrap();
        // Kept open: output must come before the input ends, as it does
        // for an endless pipe.
        stdin
    });
    let mut out = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut peak = 0;
    let mut printed = 0;
    let deadline = Instant::now() + Duration::from_secs(100);
    while printed < ITEMS {
        assert!(Instant::now() < deadline, "only {printed} lines in 100 s");
        let line = tokio::time::timeout(Duration::from_secs(5), out.next_line()).await;
        if printed % 2000 == 0 {
            peak = peak.max(peak_rss_kib(pid).unwrap_or(0));
        }
        assert!(
            peak < BOUND_KIB,
            "peak RSS {peak} KiB after {printed} lines, over {BOUND_KIB} KiB"
        );
        match line {
            Ok(Ok(Some(line))) => {
                // In input order: the index is the line's position.
                if printed % 1000 == 0 {
                    let line: Value = serde_json::from_str(&line).unwrap();
                    assert_eq!(line["index"], printed, "{line}");
                }
                printed += 1;
            }
            Ok(other) => panic!("stdout ended after {printed} lines: {other:?}"),
            Err(_) => {}
        }
    }
    let peak = peak.max(peak_rss_kib(pid).unwrap_or(0));
    assert!(peak < BOUND_KIB, "peak RSS {peak} KiB");
    drop(writer.await.unwrap());
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(3));
    eprintln!("peak RSS {peak} KiB for {ITEMS} items");
}

/// What a terminal shows after `bytes`: a minimal emulator of what the
/// progress bar writes (`\r`, erase line, cursor up and down) and plain
/// text, without wrapping.
fn screen(bytes: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(bytes);
    let mut rows: Vec<Vec<char>> = vec![Vec::new()];
    let (mut row, mut col) = (0usize, 0usize);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => col = 0,
            '\n' => {
                row += 1;
                if rows.len() <= row {
                    rows.push(Vec::new());
                }
            }
            '\x1b' if chars.peek() == Some(&'[') => {
                chars.next();
                let mut params = String::new();
                let mut command = ' ';
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        command = c;
                        break;
                    }
                    params.push(c);
                }
                let n: usize = params.trim_start_matches('?').parse().unwrap_or(0);
                match command {
                    'K' if n == 2 => rows[row].clear(),
                    'K' => rows[row].truncate(col),
                    'J' => {
                        rows[row].truncate(col);
                        rows.truncate(row + 1);
                    }
                    'A' => row = row.saturating_sub(n.max(1)),
                    'B' => {
                        row += n.max(1);
                        while rows.len() <= row {
                            rows.push(Vec::new());
                        }
                    }
                    'G' => col = n.saturating_sub(1),
                    _ => {}
                }
            }
            c => {
                let line = &mut rows[row];
                while line.len() < col {
                    line.push(' ');
                }
                if col < line.len() {
                    line[col] = c;
                } else {
                    line.push(c);
                }
                col += 1;
            }
        }
    }
    rows.into_iter()
        .map(|r| r.into_iter().collect::<String>().trim_end().to_owned())
        .filter(|r| !r.is_empty())
        .collect()
}

#[tokio::test]
async fn on_a_terminal_the_progress_bar_leaves_no_copy_among_the_lines() {
    let server = server().await;
    let file = TempFile::new("items.jsonl", &"{\"delay_ms\": 150}\n".repeat(5));
    let binary = tokio::task::spawn_blocking(common::binary).await.unwrap();
    // stdout and stderr on one terminal, as in an interactive shell.
    let line = format!(
        "{} --base-url {} tools run-batch tool_1 --concurrency 1 --input {}",
        binary.display(),
        server.uri(),
        file.path()
    );
    let out = tokio::process::Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .env("CONDUIT_API_TOKEN", TOKEN)
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .expect("script (util-linux) runs");
    assert!(out.status.success(), "{out:?}");
    let raw = String::from_utf8_lossy(&out.stdout);
    assert!(raw.contains("calls, "), "the bar was drawn: {raw:?}");
    let shown = screen(&out.stdout);
    assert_eq!(shown.len(), 6, "{shown:#?}");
    for (i, row) in shown[..5].iter().enumerate() {
        let line: Value = serde_json::from_str(row)
            .unwrap_or_else(|e| panic!("row {i} is not a JSON line ({e}): {shown:#?}"));
        assert_eq!(line["index"], i);
    }
    assert!(shown[5].starts_with("batch: 5 of 5 items"), "{shown:#?}");
}

#[tokio::test]
async fn blank_lines_are_skipped_and_index_counts_the_non_blank_ones() {
    let server = MockServer::start().await;
    // Echoes the parameters as the run's message.
    Mock::given(method("POST"))
        .respond_with(|r: &Request| {
            let body: Value = r.body_json().unwrap();
            ResponseTemplate::new(200).set_body_json(json!({"data": {
                "success": true, "message": body["parameters"]["n"].to_string(),
                "result": null, "error": null, "logs": null, "run_time_ms": 1
            }}))
        })
        .mount(&server)
        .await;
    let input = "\n{\"n\": 1}\n   \n\n{\"n\": 2}\n\t\n{\"n\": 3}\n\n";
    let file = TempFile::new("items.jsonl", input);
    for out in [
        batch(&server.uri(), &[], input).await,
        batch(&server.uri(), &["--input", file.path()], "").await,
    ] {
        assert_eq!(out.code, 0, "{out:?}");
        let shown: Vec<(Value, Value)> = lines(&out)
            .iter()
            .map(|l| (l["index"].clone(), l["data"]["message"].clone()))
            .collect();
        assert_eq!(
            shown,
            [
                (json!(0), json!("1")),
                (json!(1), json!("2")),
                (json!(2), json!("3"))
            ],
            "{out:?}"
        );
    }
}
