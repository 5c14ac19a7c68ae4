//! The generated actions, run as a process against wiremock: lists and
//! paging (`--all` through a 429, `--max-items`, the next cursor named),
//! input checks before sending (enum values, ranges, path parameters),
//! workspace filling, writes with items and `--body`, `--batch` on a list
//! and on a write, help from the spec and shell completions.

mod common;

use common::{Output, conduit, conduit_with_stdin, throttled};
use serde_json::{Value, json};
use wiremock::matchers::{method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TOKEN: &str = "tok-actions-test-7d21";
const ENV: [(&str, &str); 1] = [("CONDUIT_API_TOKEN", TOKEN)];

/// `conduit --base-url URI --workspace ws_1 ARGS...`.
async fn run(server: &MockServer, args: &[&str], stdin: Option<&str>) -> Output {
    let uri = server.uri();
    let mut all = vec!["--base-url", &uri, "--workspace", "ws_1"];
    all.extend_from_slice(args);
    let out = conduit_with_stdin(&all, &ENV, stdin).await;
    out.assert_hides(TOKEN);
    out
}

fn page(ids: &[&str], next: Option<&str>) -> ResponseTemplate {
    let data: Vec<Value> = ids.iter().map(|id| json!({"id": id})).collect();
    ResponseTemplate::new(200)
        .set_body_json(json!({"data": data, "next_cursor": next, "has_more": next.is_some()}))
}

/// Contacts in three pages: c1 c2 | c3 | c4. The second page is answered
/// 429 once first.
async fn contacts() -> MockServer {
    let server = MockServer::start().await;
    let list = || Mock::given(method("GET")).and(path("/v1/contacts"));
    list()
        .and(query_param_is_missing("cursor"))
        .respond_with(page(&["c1", "c2"], Some("k2")))
        .mount(&server)
        .await;
    list()
        .and(query_param("cursor", "k2"))
        .respond_with(throttled(Some("0")))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    list()
        .and(query_param("cursor", "k2"))
        .respond_with(page(&["c3"], Some("k3")))
        .mount(&server)
        .await;
    list()
        .and(query_param("cursor", "k3"))
        .respond_with(page(&["c4"], None))
        .mount(&server)
        .await;
    server
}

fn ids(out: &Output) -> Vec<String> {
    out.stdout
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}"));
            v["id"].as_str().unwrap().to_owned()
        })
        .collect()
}

async fn received(server: &MockServer) -> Vec<wiremock::Request> {
    server.received_requests().await.unwrap()
}

#[tokio::test]
async fn all_follows_cursors_through_a_429_printing_each_item_once_in_order() {
    let server = contacts().await;
    let out = run(&server, &["contacts", "list", "--all"], None).await;
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(ids(&out), ["c1", "c2", "c3", "c4"], "{out:?}");
    let requests = received(&server).await;
    assert_eq!(requests.len(), 4, "three pages and the 429");
    assert_eq!(requests[1].url.query(), requests[2].url.query(), "retried");
    for r in &requests {
        assert!(
            r.url.query().unwrap().contains("workspace_id=ws_1"),
            "{}",
            r.url
        );
    }
}

#[tokio::test]
async fn without_all_one_page_is_printed_and_stderr_names_the_next_cursor() {
    let server = contacts().await;
    let out = run(&server, &["contacts", "list"], None).await;
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(ids(&out), ["c1", "c2"]);
    assert!(out.stderr.contains("--cursor k2"), "{out:?}");
    assert_eq!(received(&server).await.len(), 1);

    let out = run(&server, &["contacts", "list", "--cursor", "k3"], None).await;
    assert_eq!(ids(&out), ["c4"]);
    assert!(out.stderr.is_empty(), "the last page: {out:?}");
}

#[tokio::test]
async fn max_items_stops_after_n_items_without_fetching_more() {
    let server = contacts().await;
    let out = run(
        &server,
        &["contacts", "list", "--all", "--max-items", "2"],
        None,
    )
    .await;
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(ids(&out), ["c1", "c2"]);
    assert_eq!(received(&server).await.len(), 1);
}

#[tokio::test]
async fn a_cursor_given_twice_stops_all_after_printing_what_came() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(page(&["w1"], Some("same")))
        .mount(&server)
        .await;
    let out = run(&server, &["workspaces", "list", "--all"], None).await;
    assert_eq!(out.code, 3, "{out:?}");
    assert_eq!(ids(&out), ["w1", "w1"]);
    assert!(out.stderr.contains("second time"), "{out:?}");
    assert_eq!(received(&server).await.len(), 2);
}

#[tokio::test]
async fn a_bad_enum_value_exits_2_naming_the_allowed_values_and_sends_nothing() {
    let server = contacts().await;
    let out = run(&server, &["tickets", "list", "--status", "shut"], None).await;
    assert_eq!(out.code, 2, "{out:?}");
    for value in ["open", "new", "pending", "resolved", "closed"] {
        assert!(out.stderr.contains(value), "{value}: {out:?}");
    }
    // The usage shown is the action's, not the whole tool's.
    assert!(
        out.stderr.contains("Usage: conduit tickets list [OPTIONS]"),
        "{out:?}"
    );
    // The same value from a --batch line: the SDK refuses it.
    let out = run(
        &server,
        &["tickets", "list", "--batch", "-"],
        Some("{\"order\": \"sideways\"}\n"),
    )
    .await;
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains("order") && out.stderr.contains("asc, desc"),
        "{out:?}"
    );
    assert!(out.stdout.is_empty(), "{out:?}");
    assert!(received(&server).await.is_empty());
}

#[tokio::test]
async fn integers_are_checked_against_their_range_before_sending() {
    let server = contacts().await;
    for (limit, says) in [
        ("500", "maximum 100"),
        ("0", "minimum 1"),
        ("ten", "integer"),
    ] {
        let out = run(&server, &["contacts", "list", "--limit", limit], None).await;
        assert_eq!(out.code, 2, "{limit}: {out:?}");
        assert!(out.stderr.contains(says), "{limit}: {out:?}");
    }
    let out = run(
        &server,
        &["knowledge", "search", "query=x", "max_results:=51"],
        None,
    )
    .await;
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("maximum 50"), "{out:?}");
    assert!(received(&server).await.is_empty());
}

#[tokio::test]
async fn path_parameters_are_positional_in_path_order_and_checked() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/agents/ag_1/runs/run_2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": {"id": "run_2"}})))
        .mount(&server)
        .await;
    let out = run(&server, &["agents", "get-run", "ag_1", "run_2"], None).await;
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.json(), json!({"id": "run_2"}));

    for bad in [
        &["agents", "get-run", "ag_1"][..],
        &["agents", "get-run", "..", "r"],
        &["agents", "get-run", "a", " r"],
    ] {
        let out = run(&server, bad, None).await;
        assert_eq!(out.code, 2, "{bad:?}: {out:?}");
    }
    assert_eq!(received(&server).await.len(), 1);
}

#[tokio::test]
async fn workspace_fills_workspace_id_and_workspace_id_overrides_it() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(page(&[], None))
        .mount(&server)
        .await;
    let uri = server.uri();
    let base = ["--base-url", uri.as_str()];
    // (arguments, environment, the workspace_id sent)
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
    let cases: [Case; 3] = [
        (
            &["--workspace", "ws_flag", "contacts", "list"],
            &[],
            "ws_flag",
        ),
        (
            &["contacts", "list"],
            &[("CONDUIT_WORKSPACE_ID", "ws_env")],
            "ws_env",
        ),
        (
            &[
                "--workspace",
                "ws_flag",
                "contacts",
                "list",
                "--workspace-id",
                "ws_own",
            ],
            &[("CONDUIT_WORKSPACE_ID", "ws_env")],
            "ws_own",
        ),
    ];
    for (i, (args, env, expected)) in cases.iter().enumerate() {
        let mut env = env.to_vec();
        env.extend(ENV);
        let out = conduit(&[&base[..], args].concat(), &env).await;
        assert_eq!(out.code, 0, "{args:?}: {out:?}");
        let query = received(&server).await[i].url.query().unwrap().to_owned();
        assert_eq!(query, format!("workspace_id={expected}"), "{args:?}");
    }
}

async fn notes() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            r#"{"data": {"id": "n1", "score": 1.50}}"#,
            "application/json",
        ))
        .mount(&server)
        .await;
    server
}

#[tokio::test]
async fn a_write_sends_its_items_and_body_file_and_prints_the_data_as_sent() {
    let server = notes().await;
    let out = run(
        &server,
        &[
            "tickets",
            "create-note",
            "tk_1",
            "body=hello",
            "mention_user_ids:=[\"u1\"]",
        ],
        None,
    )
    .await;
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stdout, "{\"id\":\"n1\",\"score\":1.50}\n");
    let requests = received(&server).await;
    assert_eq!(requests[0].url.path(), "/v1/tickets/tk_1/notes");
    let body: Value = requests[0].body_json().unwrap();
    assert_eq!(body, json!({"body": "hello", "mention_user_ids": ["u1"]}));

    // --body from stdin, an item over it.
    let out = run(
        &server,
        &["tickets", "create-note", "tk_1", "--body", "-", "body=over"],
        Some(r#"{"body": "from stdin", "mention_user_ids": ["u2"]}"#),
    )
    .await;
    assert_eq!(out.code, 0, "{out:?}");
    let body: Value = received(&server).await[1].body_json().unwrap();
    assert_eq!(body, json!({"body": "over", "mention_user_ids": ["u2"]}));

    // A required field missing: refused, nothing sent.
    let out = run(&server, &["tickets", "create-note", "tk_1"], None).await;
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("body"), "{out:?}");
    assert_eq!(received(&server).await.len(), 2);
}

fn lines(out: &Output) -> Vec<Value> {
    out.stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect()
}

#[tokio::test]
async fn batch_on_a_list_prints_each_lines_page_in_input_order() {
    let server = contacts().await;
    let input = "{}\n{\"cursor\": \"k3\"}\n{\"cursor\": \"k2\"}\n";
    let out = run(&server, &["contacts", "list", "--batch", "-"], Some(input)).await;
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(
        lines(&out),
        [
            json!({"index": 0, "data": [{"id": "c1"}, {"id": "c2"}]}),
            json!({"index": 1, "data": [{"id": "c4"}]}),
            json!({"index": 2, "data": [{"id": "c3"}]}),
        ]
    );
    // With --all, each line's data is every page from its cursor on.
    let out = run(
        &server,
        &["contacts", "list", "--all", "--batch", "-"],
        Some("{\"cursor\": \"k2\"}\n"),
    )
    .await;
    assert_eq!(
        lines(&out),
        [json!({"index": 0, "data": [{"id": "c3"}, {"id": "c4"}]})]
    );
}

#[tokio::test]
async fn batch_on_a_write_sends_one_call_per_line_with_its_path_parameters() {
    let server = notes().await;
    let input = "{\"id\": \"tk_1\", \"body\": \"a\"}\n{\"id\": \"tk_2\", \"body\": \"b\"}\n";
    let out = run(
        &server,
        &[
            "tickets",
            "create-note",
            "--batch",
            "-",
            "--concurrency",
            "1",
        ],
        Some(input),
    )
    .await;
    assert_eq!(out.code, 0, "{out:?}");
    let lines = lines(&out);
    assert_eq!(lines.len(), 2);
    assert_eq!(
        lines[1],
        json!({"index": 1, "data": {"id": "n1", "score": 1.50}})
    );
    let requests = received(&server).await;
    let sent: Vec<(String, Value)> = requests
        .iter()
        .map(|r| (r.url.path().to_owned(), r.body_json().unwrap()))
        .collect();
    assert_eq!(
        sent,
        [
            ("/v1/tickets/tk_1/notes".to_owned(), json!({"body": "a"})),
            ("/v1/tickets/tk_2/notes".to_owned(), json!({"body": "b"})),
        ]
    );

    // The command line's arguments go under every line's.
    let out = run(
        &server,
        &[
            "tickets",
            "create-note",
            "tk_9",
            "body=shared",
            "--batch",
            "-",
        ],
        Some("{}\n{\"body\": \"own\"}\n"),
    )
    .await;
    assert_eq!(out.code, 0, "{out:?}");
    let requests = received(&server).await;
    assert_eq!(requests[2].url.path(), "/v1/tickets/tk_9/notes");
    let bodies: Vec<Value> = requests[2..]
        .iter()
        .map(|r| r.body_json().unwrap())
        .collect();
    assert!(bodies.contains(&json!({"body": "shared"})), "{bodies:?}");
    assert!(bodies.contains(&json!({"body": "own"})), "{bodies:?}");

    // A line without its path parameter is a usage error naming it.
    let out = run(
        &server,
        &["tickets", "create-note", "--batch", "-"],
        Some("{\"body\": \"no id\"}\n"),
    )
    .await;
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("id is required"), "{out:?}");
    assert_eq!(received(&server).await.len(), 4);
}

#[tokio::test]
async fn help_comes_from_the_spec() {
    let out = conduit(&["--help"], &[]).await;
    assert_eq!(out.code, 0, "{out:?}");
    for group in [
        "agents",
        "contacts",
        "custom-tools",
        "knowledge",
        "tickets",
        "workspaces",
        "completions",
    ] {
        assert!(
            out.stdout.contains(&format!("\n  {group} ")),
            "{group}: {out:?}"
        );
    }

    // Each group says what it holds: its tag's description, or, for a
    // group whose page shows no tag, what its actions do.
    let described = |group: &str| {
        out.stdout
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{group} ")))
            .map(|l| l.trim_start()[group.len()..].trim().to_owned())
    };
    assert_eq!(
        described("conversations").as_deref(),
        Some("Canonical message threads.")
    );
    assert_eq!(
        described("inbox-types").as_deref(),
        Some("List inbox types.")
    );

    let out = conduit(&["tickets", "--help"], &[]).await;
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.contains("list-notes    List ticket notes"),
        "{out:?}"
    );
    assert!(
        out.stdout.contains("create-note   Create ticket note"),
        "{out:?}"
    );

    let out = conduit(&["tickets", "list", "--help"], &[]).await;
    assert!(out.stdout.contains("GET /v1/tickets"), "{out:?}");
    assert!(
        out.stdout
            .contains("[one of open, new, pending, resolved, closed]"),
        "{out:?}"
    );
    assert!(out.stdout.contains("--workspace-id <TEXT>"), "{out:?}");
    assert!(out.stdout.contains("[string, required]"), "{out:?}");
    assert!(out.stdout.contains("[integer, 1..=100]"), "{out:?}");
    assert!(out.stdout.contains("--all"), "{out:?}");

    let out = conduit(&["tickets", "create-note", "--help"], &[]).await;
    assert!(out.stdout.contains("<ID>"), "{out:?}");
    assert!(
        out.stdout
            .contains("body              Note text [string, required]"),
        "{out:?}"
    );
    assert!(!out.stdout.contains("--all"), "not a list: {out:?}");

    // The old names still work.
    for old in [
        &["tools", "run", "--help"][..],
        &["tools", "run-batch", "--help"],
    ] {
        let out = conduit(old, &[]).await;
        assert_eq!(out.code, 0, "{old:?}: {out:?}");
    }
}

#[tokio::test]
async fn completions_are_printed_for_each_shell() {
    for (shell, mark) in [
        ("bash", "_conduit()"),
        ("zsh", "#compdef conduit"),
        ("fish", "complete -c conduit"),
    ] {
        let out = conduit(&["completions", shell], &[]).await;
        assert_eq!(out.code, 0, "{shell}: {out:?}");
        assert!(out.stdout.contains(mark), "{shell}");
        assert!(out.stdout.contains("list-notes"), "{shell}");
    }
    let out = conduit(&["completions", "tcsh"], &[]).await;
    assert_eq!(out.code, 2, "{out:?}");
}
