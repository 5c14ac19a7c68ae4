//! Property tests of the spec loader: reference pages and spec files are
//! input from outside (a saved web page, a file from upstream), so finding
//! the YAML block and parsing a source must never panic, whatever the text.
//!
//! Each property runs 64 cases by default; `CONDUIT_FUZZ_CASES=N` raises
//! that (`cargo xtask fuzz` does).

use conduit_codegen::Source;
use conduit_codegen::source::yaml_block;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::Config;

fn cases() -> u32 {
    std::env::var("CONDUIT_FUZZ_CASES")
        .ok()
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(64)
}

/// No regression files are written next to the sources: a failure prints
/// its minimal input, which becomes a plain test.
fn config() -> Config {
    Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    }
}

/// One line of a markdown page: fences of any length and info string,
/// YAML-ish content, prose, odd white space and line endings.
fn markdown_line() -> impl Strategy<Value = String> {
    let fence = (
        1usize..7,
        select(vec![
            "",
            "yaml",
            "yaml POST /v1/x",
            " yaml",
            "yaml\t",
            "yml",
            "json",
            "YAML",
            "yamlx",
        ]),
    )
        .prop_map(|(n, info)| format!("{}{info}", "`".repeat(n)));
    let yamlish = select(vec![
        "openapi: 3.0.0",
        "openapi: 3.1.0",
        "info: {title: t, version: '1'}",
        "paths:",
        "  /v1/x:",
        "    post:",
        "      responses: {'200': {description: ok}}",
        "components: {schemas: {A: {type: object}}}",
        "- a",
        "? complex",
        "a: &anchor [1, 2]",
        "b: *anchor",
        "c: *missing",
        "<<: *anchor",
        "d: !!binary aGVsbG8=",
        "e: !custom x",
        "f: |",
        "g: >-",
        "'unterminated",
        "\"esc\\u00e9\\x\"",
        "{[}]",
        "%YAML 1.2",
        "---",
        "...",
        "\t tabbed: 1",
        "key: value # comment",
    ])
    .prop_map(str::to_owned);
    let ending = select(vec!["\n", "\r\n", "\r", "", " \n", "\t\n"]);
    (
        prop_oneof![
            2 => fence,
            4 => yamlish,
            1 => ".{0,30}",
            1 => "[ `\t]{0,8}",
        ],
        ending,
    )
        .prop_map(|(line, ending)| format!("{line}{ending}"))
}

fn markdown() -> impl Strategy<Value = String> {
    vec(markdown_line(), 0..40).prop_map(|lines| lines.concat())
}

/// A line that neither opens nor closes a fence: no leading backtick.
fn body_line() -> impl Strategy<Value = String> {
    "[^`\n][^\n]{0,30}\n|\n"
}

/// Whether `inner` is a slice of `outer` (the same memory, not a copy).
fn is_slice_of(inner: &str, outer: &str) -> bool {
    let (start, end) = (
        outer.as_ptr() as usize,
        outer.as_ptr() as usize + outer.len(),
    );
    let at = inner.as_ptr() as usize;
    at >= start && at + inner.len() <= end
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn yaml_block_never_panics_on_any_text(text in any::<String>()) {
        if let Some(block) = yaml_block(&text) {
            prop_assert!(is_slice_of(block, &text));
        }
    }

    #[test]
    fn yaml_block_never_panics_on_markdown_and_returns_a_slice(page in markdown()) {
        if let Some(block) = yaml_block(&page) {
            prop_assert!(is_slice_of(block, &page));
        }
    }

    #[test]
    fn yaml_block_finds_the_block_between_its_fences(
        before in vec(body_line(), 0..5),
        body in vec(body_line(), 0..8),
        after in markdown(),
        ticks in 3usize..7,
        info in select(vec!["yaml", "yaml POST /v1/custom-tools/{id}/run", "yaml  "]),
    ) {
        let fence = "`".repeat(ticks);
        let body = body.concat();
        let page = format!("{}{fence}{info}\n{body}{fence}\n{after}", before.concat());
        prop_assert_eq!(yaml_block(&page), Some(body.as_str()));
    }

    #[test]
    fn parsing_a_page_never_panics(page in markdown()) {
        let _ = Source::parse("page.md", &page);
    }

    #[test]
    fn parsing_yaml_or_json_never_panics(text in markdown(), raw in any::<String>()) {
        for name in ["spec.yaml", "spec.json", "page.markdown"] {
            let _ = Source::parse(name, &text);
            let _ = Source::parse(name, &raw);
        }
    }
}

/// Nesting deep enough to overflow a recursive parser's stack is refused,
/// not a crash.
#[test]
fn deeply_nested_documents_are_errors_not_stack_overflows() {
    let depth = 100_000;
    let flow = format!(
        "openapi: 3.0.0\nx: {}{}\n",
        "[".repeat(depth),
        "]".repeat(depth)
    );
    assert!(Source::parse("deep.yaml", &flow).is_err());
    let json = format!(
        r#"{{"openapi": "3.0.0", "x": {}{}}}"#,
        "[".repeat(depth),
        "]".repeat(depth)
    );
    assert!(Source::parse("deep.json", &json).is_err());
    let page = format!("````yaml\n{flow}````\n");
    assert!(Source::parse("deep.md", &page).is_err());
    let block: String = (0..2_000)
        .map(|i| format!("{}k:\n", " ".repeat(i)))
        .collect();
    let _ = Source::parse("indent.yaml", &format!("openapi: 3.0.0\n{block}"));
}

/// A "billion laughs" page: aliases that would expand exponentially are
/// refused (or bounded) instead of filling memory.
#[test]
fn alias_bombs_are_refused() {
    let mut yaml = String::from(
        "openapi: 3.0.0\na0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n",
    );
    for i in 1..=12 {
        let p = i - 1;
        yaml.push_str(&format!(
            "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
        ));
    }
    assert!(Source::parse("bomb.yaml", &yaml).is_err());
}
