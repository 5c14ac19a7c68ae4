//! `cargo xtask regen`: fold new reference pages into the vendored spec and
//! regenerate everything that follows from it.

use std::path::{Path, PathBuf};

use crate::surface_diff::section_changes;
use conduit_codegen::{
    GENERATED_FILE, GENERATED_HEADER, MOCK_FILE, SURFACE_FILE, Source, VENDORED_SPEC, generate,
    merge::merge,
};

use crate::{cargo, root, run_step};

pub fn run(check: bool, sources: &[PathBuf]) -> Result<(), String> {
    let changes = regen(&root(), sources, check)?;
    if check {
        return Ok(());
    }
    // Both ways of getting the client: generated in build.rs, and checked in.
    run_step(
        "build the raw client",
        cargo().args(["build", "-p", "conduit-api-gen"]),
    )?;
    run_step(
        "build the SDK on the checked-in client",
        cargo().args(["build", "-p", "conduit-sdk"]),
    )?;
    if changes.is_empty() {
        println!("no change to the generated API");
    } else {
        println!("changes to the generated API:");
        for line in &changes {
            println!("  {line}");
        }
    }
    Ok(())
}

/// Merges `sources` into the spec under `root` and rewrites the spec and
/// SURFACE.md (or, with `check`, fails if either would change). Returns the
/// changed sections of the surface. On any error nothing is written.
pub fn regen(root: &Path, sources: &[PathBuf], check: bool) -> Result<Vec<String>, String> {
    let spec_path = root.join(VENDORED_SPEC);
    let surface_path = root.join(SURFACE_FILE);

    let vendored = Source::load(&spec_path).map_err(|e| e.to_string())?;
    let sources = sources
        .iter()
        .map(|s| Source::load(s).map_err(|e| e.to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    let merged = merge(&vendored, &sources).map_err(|e| format!("{e}; nothing was changed"))?;
    let generated = generate(&merged).map_err(|e| format!("{e}; nothing was changed"))?;
    for note in &generated.notes {
        println!("normalised: {note}");
    }

    let summary = generated.surface.render();
    let old_summary = std::fs::read_to_string(&surface_path).unwrap_or_default();
    // The checked-in generated code, each with what it should now hold.
    let outputs: Vec<(&str, PathBuf, String)> = [
        (GENERATED_FILE, &generated.code),
        (MOCK_FILE, &generated.mock),
    ]
    .into_iter()
    .map(|(file, code)| (file, root.join(file), format!("{GENERATED_HEADER}{code}")))
    .filter(|(_, path, code)| std::fs::read_to_string(path).unwrap_or_default() != *code)
    .collect();
    let spec_changed = merged != vendored.doc;
    let changes = section_changes(&old_summary, &summary);

    if check {
        let mut stale = Vec::new();
        if spec_changed {
            stale.push(format!("{VENDORED_SPEC} would change"));
        }
        if summary != old_summary {
            stale.push(format!("{SURFACE_FILE} is stale"));
        }
        for (file, _, _) in &outputs {
            stale.push(format!("{file} is stale"));
        }
        if stale.is_empty() {
            println!(
                "regen --check: {VENDORED_SPEC}, {SURFACE_FILE}, {GENERATED_FILE} and {MOCK_FILE} \
                 are up to date"
            );
            return Ok(changes);
        }
        for line in &changes {
            println!("  {line}");
        }
        return Err(format!(
            "regen --check: {}; run `cargo xtask regen` and commit the result",
            stale.join(", ")
        ));
    }

    if spec_changed {
        write_spec(&spec_path, &merged)?;
        println!("updated {VENDORED_SPEC}");
    }
    if summary != old_summary {
        std::fs::write(&surface_path, &summary)
            .map_err(|e| format!("cannot write {}: {e}", surface_path.display()))?;
        println!("updated {SURFACE_FILE}");
    }
    for (file, path, code) in outputs {
        std::fs::write(&path, code).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        println!("updated {file}");
    }
    Ok(changes)
}

/// Writes `doc` as YAML, after checking that it reads back identically.
fn write_spec(path: &Path, doc: &serde_json::Value) -> Result<(), String> {
    let yaml = serde_saphyr::to_string(doc).map_err(|e| format!("cannot serialise spec: {e}"))?;
    let back: serde_json::Value = serde_saphyr::from_str(&yaml)
        .map_err(|e| format!("serialised spec does not parse: {e}"))?;
    if &back != doc {
        return Err("serialised spec does not read back identically; nothing was changed".into());
    }
    std::fs::write(path, yaml).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scratch workspace holding copies of the spec and the summary.
    fn scratch() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        for file in [VENDORED_SPEC, SURFACE_FILE, GENERATED_FILE, MOCK_FILE] {
            let to = dir.path().join(file);
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(root().join(file), to).unwrap();
        }
        let root = dir.path().to_owned();
        (dir, root)
    }

    fn fixture(name: &str) -> PathBuf {
        root().join("xtask/tests/fixtures").join(name)
    }

    fn read(root: &Path, file: &str) -> String {
        std::fs::read_to_string(root.join(file)).unwrap()
    }

    #[test]
    fn main_is_up_to_date() {
        regen(&root(), &[], true).unwrap();
    }

    #[test]
    fn a_new_page_adds_its_operation_to_spec_summary_and_client() {
        let (_dir, root) = scratch();
        let changes = regen(&root, &[fixture("list-custom-tools.md")], false).unwrap();
        assert!(
            changes.contains(&"+ operation `listCustomTools`".to_owned()),
            "{changes:?}"
        );
        assert!(read(&root, VENDORED_SPEC).contains("/v1/custom-tools:"));
        let surface = read(&root, SURFACE_FILE);
        assert!(
            surface.contains("### `listCustomTools`: GET /v1/custom-tools"),
            "{surface}"
        );
        assert!(surface.contains("Client::list_custom_tools()"));
        // The old operation is still there, and the result is now up to date.
        assert!(surface.contains("### `runCustomTool`"));
        assert!(read(&root, GENERATED_FILE).contains("pub fn list_custom_tools(&self)"));
        // Its typed mock comes with it.
        let mock = read(&root, MOCK_FILE);
        assert!(mock.contains("pub struct ListCustomToolsWhen"), "{mock}");
        assert!(mock.contains("fn list_custom_tools<F>"), "{mock}");
        regen(&root, &[], true).unwrap();
        // The merged spec generates a client with the new method.
        let spec = Source::load(&root.join(VENDORED_SPEC)).unwrap();
        let code = generate(&spec.doc).unwrap().code;
        assert!(code.contains("pub fn list_custom_tools(&self)"));
    }

    #[test]
    fn a_conflicting_page_is_refused_and_changes_nothing() {
        let (_dir, root) = scratch();
        let before = (
            read(&root, VENDORED_SPEC),
            read(&root, SURFACE_FILE),
            read(&root, GENERATED_FILE),
        );
        let pages = [
            fixture("list-custom-tools.md"),
            fixture("conflicting-run-custom-tool.md"),
        ];
        let err = regen(&root, &pages, false).unwrap_err();
        assert!(err.contains("POST /v1/custom-tools/{id}/run"), "{err}");
        assert!(err.contains("conflicting-run-custom-tool.md"), "{err}");
        assert!(err.contains(VENDORED_SPEC), "{err}");
        let after = (
            read(&root, VENDORED_SPEC),
            read(&root, SURFACE_FILE),
            read(&root, GENERATED_FILE),
        );
        assert_eq!(before, after);
    }

    #[test]
    fn a_stale_mock_file_fails_the_check() {
        let (_dir, root) = scratch();
        std::fs::write(root.join(MOCK_FILE), "// edited by hand\n").unwrap();
        let err = regen(&root, &[], true).unwrap_err();
        assert!(err.contains("mock.rs is stale"), "{err}");
        regen(&root, &[], false).unwrap();
        regen(&root, &[], true).unwrap();
    }

    #[test]
    fn editing_the_spec_without_regenerating_fails_the_check() {
        let (_dir, root) = scratch();
        let spec = read(&root, VENDORED_SPEC).replace(
            "description: Public API for Conduit.",
            "description: Public API for Conduit, edited.",
        );
        std::fs::write(root.join(VENDORED_SPEC), spec).unwrap();
        let err = regen(&root, &[], true).unwrap_err();
        assert!(err.contains("SURFACE.md is stale"), "{err}");
        assert!(err.contains("generated.rs is stale"), "{err}");
        regen(&root, &[], false).unwrap();
        regen(&root, &[], true).unwrap();
    }

    #[test]
    fn check_with_a_new_page_reports_the_spec_would_change() {
        let (_dir, root) = scratch();
        let err = regen(&root, &[fixture("list-custom-tools.md")], true).unwrap_err();
        assert!(err.contains("openapi/conduit.yaml would change"), "{err}");
    }
}
