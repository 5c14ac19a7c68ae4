//! The tests that docs/ names as proof exist: a renamed or moved test must
//! not leave a page pointing at nothing.

use std::path::{Path, PathBuf};

/// The short prefixes docs/robustness.md's legend gives.
const PREFIXES: [(&str, &str); 3] = [
    ("sdk/", "conduit-sdk/"),
    ("cli/", "conduit-cli/"),
    ("codegen/", "conduit-codegen/"),
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lies in the workspace")
        .to_path_buf()
}

/// Every `` `file.rs::test` `` in `text`, as (file from the root, test).
fn references(text: &str) -> Vec<(String, String)> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .filter_map(|code| code.split_once(".rs::"))
        .filter(|(_, name)| name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        .map(|(file, name)| {
            let file = PREFIXES
                .iter()
                .find_map(|(short, long)| {
                    file.strip_prefix(short).map(|rest| format!("{long}{rest}"))
                })
                .unwrap_or_else(|| file.to_owned());
            (format!("{file}.rs"), name.to_owned())
        })
        .collect()
}

#[test]
fn every_test_the_docs_name_exists() {
    let docs = root().join("docs");
    let mut checked = 0;
    let mut missing = Vec::new();
    for entry in std::fs::read_dir(&docs).expect("docs/") {
        let page = entry.expect("a docs/ entry").path();
        if page.extension().is_none_or(|e| e != "md") {
            continue;
        }
        let text = std::fs::read_to_string(&page).expect("a readable page");
        for (file, name) in references(&text) {
            checked += 1;
            let found = std::fs::read_to_string(root().join(&file))
                .is_ok_and(|source| source.contains(&format!("fn {name}(")));
            if !found {
                missing.push(format!("{}: {file}::{name}", page.display()));
            }
        }
    }
    assert!(
        checked > 50,
        "only {checked} references read: is the parser still right?"
    );
    assert!(
        missing.is_empty(),
        "named in docs/ but not found:\n{}",
        missing.join("\n")
    );
}

#[test]
fn references_are_read_with_their_prefixes() {
    let text = "see `sdk/tests/a.rs::one_test`, `cli/src/b.rs::two` and `not::code`";
    assert_eq!(
        references(text),
        [
            ("conduit-sdk/tests/a.rs".to_owned(), "one_test".to_owned()),
            ("conduit-cli/src/b.rs".to_owned(), "two".to_owned()),
        ]
    );
}
