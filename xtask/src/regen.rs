//! `cargo xtask regen`: build the vendored spec from the reference pages
//! under openapi/pages (placing new ones there first) and regenerate
//! everything that follows from it.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::surface_diff::section_changes;
use conduit_codegen::{
    CLI_FILE, EVERY_ACTION_FILE, EVERY_OPERATION_FILE, EVERY_OPERATION_MOCKED_FILE, GENERATED_FILE,
    GENERATED_HEADER, MOCK_FILE, PAGES_DIR, SDK_FILE, SURFACE_FILE, Source, TYPES_FILE,
    VENDORED_SPEC, generate, json::METHODS, merge::merge,
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
    run_step(
        "build the CLI on the generated actions",
        cargo().args(["build", "-p", "conduit-cli"]),
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

/// Builds the spec under `root` from its pages, after placing `sources`
/// among them, and rewrites the spec, SURFACE.md and the generated code (or,
/// with `check`, fails if any would change). Returns the changed sections of
/// the surface. On any error nothing is written.
pub fn regen(root: &Path, sources: &[PathBuf], check: bool) -> Result<Vec<String>, String> {
    let spec_path = root.join(VENDORED_SPEC);
    let surface_path = root.join(SURFACE_FILE);

    let vendored = Source::load(&spec_path).map_err(|e| e.to_string())?;
    let mut pages = load_pages(root)?;
    let mut placed = Vec::new();
    for source in sources {
        if let Some(page) = place(root, &mut pages, source)? {
            placed.push(page);
        }
    }
    // An empty base: every definition comes from a page.
    let base = Source {
        name: PAGES_DIR.into(),
        doc: json!({}),
    };
    let docs: Vec<Source> = pages.iter().map(Page::stamped).collect();
    let merged = merge(&base, &docs).map_err(|e| format!("{e}; nothing was changed"))?;
    let generated = generate(&merged).map_err(|e| format!("{e}; nothing was changed"))?;
    for note in &generated.notes {
        println!("normalised: {note}");
    }
    let cli = conduit_codegen::cli::generate(&merged, &generated.sdk.operations)
        .map_err(|e| format!("{e}; nothing was changed"))?;

    let summary = generated.surface.render();
    let old_summary = std::fs::read_to_string(&surface_path).unwrap_or_default();
    // The checked-in generated code, each with what it should now hold.
    let outputs: Vec<(&str, PathBuf, String)> = [
        (GENERATED_FILE, &generated.code),
        (TYPES_FILE, &generated.types),
        (MOCK_FILE, &generated.mock),
        (SDK_FILE, &generated.sdk.code),
        (EVERY_OPERATION_FILE, &generated.sdk.every_operation),
        (
            EVERY_OPERATION_MOCKED_FILE,
            &generated.sdk.every_operation_mocked,
        ),
        (CLI_FILE, &cli.code),
        (EVERY_ACTION_FILE, &cli.every_action),
    ]
    .into_iter()
    .map(|(file, code)| (file, root.join(file), format!("{GENERATED_HEADER}{code}")))
    .collect();
    let generated_files = outputs.len();
    let outputs: Vec<_> = outputs
        .into_iter()
        .filter(|(_, path, code)| std::fs::read_to_string(path).unwrap_or_default() != *code)
        .collect();
    let spec_changed = merged != vendored.doc;
    let changes = section_changes(&old_summary, &summary);

    if check {
        let mut stale: Vec<String> = placed.iter().map(|p| p.describe(true)).collect();
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
                "regen --check: {VENDORED_SPEC}, {SURFACE_FILE} and the {} generated files \
                 are up to date",
                generated_files
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

    for page in &placed {
        let path = root.join(&page.path);
        std::fs::create_dir_all(path.parent().expect("a page is in a directory"))
            .and_then(|()| std::fs::write(&path, &page.text))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        println!("{}", page.describe(false));
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
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        std::fs::write(&path, code).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        println!("updated {file}");
    }
    Ok(changes)
}

/// A reference page under [`PAGES_DIR`].
struct Page {
    /// Relative to the workspace root.
    path: PathBuf,
    source: Source,
}

impl Page {
    /// The page's document with each operation's `x-page` set to where the
    /// page lives, `<group>/<slug>` (the reference's URL slug): the SDK's
    /// per-operation layer is named from it. A page straight under
    /// [`PAGES_DIR`] has none.
    fn stamped(&self) -> Source {
        let mut source = self.source.clone();
        let relative = self.path.strip_prefix(PAGES_DIR).unwrap_or(&self.path);
        let parts: Vec<String> = relative
            .with_extension("")
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        let [group, slug] = parts.as_slice() else {
            return source;
        };
        let page = format!("{group}/{slug}");
        if let Some(paths) = source.doc["paths"].as_object_mut() {
            for item in paths.values_mut().filter_map(Value::as_object_mut) {
                for (method, op) in item.iter_mut() {
                    if METHODS.contains(&method.as_str())
                        && let Some(op) = op.as_object_mut()
                    {
                        op.insert("x-page".into(), Value::String(page.clone()));
                    }
                }
            }
        }
        source
    }
}

/// A page `regen` puts under [`PAGES_DIR`].
struct Placed {
    /// Relative to the workspace root.
    path: PathBuf,
    text: String,
    /// Where it came from.
    from: PathBuf,
    /// Whether it takes the place of a page written from the reference.
    replaces: bool,
}

impl Placed {
    fn describe(&self, check: bool) -> String {
        let (page, from) = (self.path.display(), self.from.display());
        match (self.replaces, check) {
            (true, false) => format!("replaced {page} (written from the reference) by {from}"),
            (true, true) => format!("{page} would be replaced by {from}"),
            (false, false) => format!("added {page} from {from}"),
            (false, true) => format!("{page} would be added from {from}"),
        }
    }
}

/// Every `.md` page under [`PAGES_DIR`], sorted by path.
fn load_pages(root: &Path) -> Result<Vec<Page>, String> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            if path.is_dir() {
                walk(&path, out)?;
            } else if path.extension().is_some_and(|e| e == "md") {
                out.push(path);
            }
        }
        Ok(())
    }
    let dir = root.join(PAGES_DIR);
    let mut paths = Vec::new();
    walk(&dir, &mut paths).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    if paths.is_empty() {
        return Err(format!("no pages under {}", dir.display()));
    }
    paths.sort();
    paths
        .into_iter()
        .map(|full| {
            let path = full.strip_prefix(root).expect("under root").to_owned();
            let text = std::fs::read_to_string(&full)
                .map_err(|e| format!("cannot read {}: {e}", full.display()))?;
            let source = parse(&path, &text)?;
            Ok(Page { path, source })
        })
        .collect()
}

fn parse(name: &Path, text: &str) -> Result<Source, String> {
    Source::parse(&name.display().to_string(), text).map_err(|e| e.to_string())
}

/// Puts the page at `from` among `pages`. A page already under
/// [`PAGES_DIR`] is there. One whose operations a page written from the
/// reference holds takes that page's place (upstream's page replacing the
/// written one). Any other is added under its own file name; if an upstream
/// page holds its operation, the merge then refuses it unless identical.
fn place(root: &Path, pages: &mut Vec<Page>, from: &Path) -> Result<Option<Placed>, String> {
    let canonical = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_owned());
    if canonical(from).starts_with(canonical(&root.join(PAGES_DIR))) {
        return Ok(None);
    }
    let text = std::fs::read_to_string(from)
        .map_err(|e| format!("cannot read {}: {e}", from.display()))?;
    let new_ops = operations(&parse(from, &text)?.doc);
    let holders: Vec<usize> = (0..pages.len())
        .filter(|&i| is_written(&pages[i].source.doc))
        .filter(|&i| {
            operations(&pages[i].source.doc)
                .iter()
                .any(|op| new_ops.contains(op))
        })
        .collect();
    let (path, replaces) = match holders.as_slice() {
        [] => {
            let name = from
                .file_name()
                .ok_or_else(|| format!("{} is not a file", from.display()))?;
            let path = Path::new(PAGES_DIR).join(name);
            if pages.iter().any(|p| p.path == path) {
                return Err(format!(
                    "{} already exists; save {} under another name",
                    path.display(),
                    from.display()
                ));
            }
            (path, false)
        }
        [one] => (pages.remove(*one).path, true),
        _ => {
            return Err(format!(
                "{} holds the operations of several pages",
                from.display()
            ));
        }
    };
    let source = parse(&path, &text)?;
    pages.push(Page {
        path: path.clone(),
        source,
    });
    pages.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(Some(Placed {
        path,
        text,
        from: from.to_owned(),
        replaces,
    }))
}

/// Each operation object of `doc`, labelled `METHOD path`.
fn operation_objects(doc: &Value) -> Vec<(String, &Value)> {
    let Some(paths) = doc["paths"].as_object() else {
        return Vec::new();
    };
    paths
        .iter()
        .filter_map(|(path, item)| Some((path, item.as_object()?)))
        .flat_map(|(path, item)| {
            item.iter()
                .filter(|(m, _)| METHODS.contains(&m.as_str()))
                .map(move |(m, op)| (format!("{} {path}", m.to_ascii_uppercase()), op))
        })
        .collect()
}

fn operations(doc: &Value) -> Vec<String> {
    operation_objects(doc)
        .into_iter()
        .map(|(label, _)| label)
        .collect()
}

/// Whether `doc` has operations and each was written from the rendered
/// reference (carries `x-source`); upstream's pages carry none.
fn is_written(doc: &Value) -> bool {
    let ops = operation_objects(doc);
    !ops.is_empty() && ops.iter().all(|(_, op)| op.get("x-source").is_some())
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

    /// A scratch workspace holding copies of the pages, the spec and what is
    /// generated from it.
    fn scratch() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        for file in [
            VENDORED_SPEC,
            SURFACE_FILE,
            GENERATED_FILE,
            TYPES_FILE,
            MOCK_FILE,
        ] {
            let to = dir.path().join(file);
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(root().join(file), to).unwrap();
        }
        for page in load_pages(&root()).unwrap() {
            let to = dir.path().join(&page.path);
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(root().join(&page.path), to).unwrap();
        }
        let root = dir.path().to_owned();
        (dir, root)
    }

    fn fixture(name: &str) -> PathBuf {
        root().join("xtask/tests/fixtures").join(name)
    }

    fn read(root: &Path, file: impl AsRef<Path>) -> String {
        std::fs::read_to_string(root.join(file)).unwrap()
    }

    /// The section of SURFACE.md on `operation_id`.
    fn section<'s>(surface: &'s str, operation_id: &str) -> &'s str {
        let start = surface
            .find(&format!("### `{operation_id}`"))
            .unwrap_or_else(|| panic!("no {operation_id} in {surface}"));
        let rest = &surface[start..];
        &rest[..rest[4..].find("### ").map_or(rest.len(), |end| end + 4)]
    }

    #[test]
    fn main_is_up_to_date() {
        regen(&root(), &[], true).unwrap();
    }

    #[test]
    fn the_spec_holds_every_page_and_the_upstream_run_operation_as_published() {
        let spec = Source::load(&root().join(VENDORED_SPEC)).unwrap().doc;
        let pages = load_pages(&root()).unwrap();
        let page_ops: Vec<String> = pages
            .iter()
            .flat_map(|p| operations(&p.source.doc))
            .collect();
        assert_eq!(operations(&spec).len(), page_ops.len());
        let run = pages
            .iter()
            .find(|p| p.path.ends_with("custom-tools/run.md"))
            .unwrap();
        assert!(!is_written(&run.source.doc));
        let path = "/v1/custom-tools/{id}/run";
        // As published, plus the name regen gives it from its place.
        let mut merged = spec["paths"][path].clone();
        let page = merged["post"].as_object_mut().unwrap().remove("x-page");
        assert_eq!(page, Some(json!("custom-tools/run")));
        assert_eq!(merged, run.source.doc["paths"][path]);
        let surface = read(&root(), SURFACE_FILE);
        assert!(section(&surface, "runCustomTool").contains("- Source: upstream page\n"));
    }

    #[test]
    fn an_upstream_page_replaces_the_written_one_and_the_surface_shows_it() {
        let (_dir, root) = scratch();
        let written = Path::new(PAGES_DIR).join("custom-tools/list.md");
        assert!(read(&root, &written).starts_with("Source: written from"));
        let upstream = fixture("list-custom-tools.md");
        let changes = regen(&root, std::slice::from_ref(&upstream), false).unwrap();
        assert!(
            changes.contains(&"~ operation `listCustomTools`".to_owned()),
            "{changes:?}"
        );
        assert_eq!(read(&root, &written), read(&root, &upstream));
        let surface = read(&root, SURFACE_FILE);
        assert!(
            section(&surface, "listCustomTools").contains("- Source: upstream page\n"),
            "{surface}"
        );
        // Nothing else moved, and the result is up to date.
        assert!(section(&surface, "runCustomTool").contains("- Source: upstream page\n"));
        regen(&root, &[], true).unwrap();
        // A second upstream page for it is no longer a replacement but a conflict.
        let again = root.join("again.md");
        std::fs::write(
            &again,
            read(&root, &upstream).replace("summary: List custom tools", "summary: Other"),
        )
        .unwrap();
        let err = regen(&root, &[again], false).unwrap_err();
        assert!(err.contains("GET /v1/custom-tools"), "{err}");
    }

    #[test]
    fn a_page_for_a_new_operation_is_added_to_the_pages_spec_summary_and_client() {
        let (_dir, root) = scratch();
        let page = root.join("list-examples.md");
        let text = read(&root, fixture("list-custom-tools.md"))
            .replace("/v1/custom-tools", "/v1/examples")
            .replace("listCustomTools", "listExamples");
        std::fs::write(&page, &text).unwrap();
        let changes = regen(&root, &[page], false).unwrap();
        assert!(
            changes.contains(&"+ operation `listExamples`".to_owned()),
            "{changes:?}"
        );
        assert_eq!(
            read(&root, Path::new(PAGES_DIR).join("list-examples.md")),
            text
        );
        assert!(read(&root, VENDORED_SPEC).contains("/v1/examples:"));
        let surface = read(&root, SURFACE_FILE);
        assert!(
            surface.contains("### `listExamples`: GET /v1/examples"),
            "{surface}"
        );
        assert!(surface.contains("Client::list_examples()"));
        assert!(read(&root, GENERATED_FILE).contains("pub fn list_examples(&self)"));
        let mock = read(&root, MOCK_FILE);
        assert!(mock.contains("pub struct ListExamplesWhen"), "{mock}");
        regen(&root, &[], true).unwrap();
    }

    #[test]
    fn a_conflicting_page_is_refused_and_changes_nothing() {
        let (_dir, root) = scratch();
        let list = Path::new(PAGES_DIR).join("custom-tools/list.md");
        let before = (
            read(&root, VENDORED_SPEC),
            read(&root, SURFACE_FILE),
            read(&root, GENERATED_FILE),
            read(&root, &list),
        );
        let pages = [
            fixture("list-custom-tools.md"),
            fixture("conflicting-run-custom-tool.md"),
        ];
        let err = regen(&root, &pages, false).unwrap_err();
        assert!(err.contains("POST /v1/custom-tools/{id}/run"), "{err}");
        assert!(err.contains("conflicting-run-custom-tool.md"), "{err}");
        assert!(err.contains("openapi/pages/custom-tools/run.md"), "{err}");
        let after = (
            read(&root, VENDORED_SPEC),
            read(&root, SURFACE_FILE),
            read(&root, GENERATED_FILE),
            read(&root, &list),
        );
        assert_eq!(before, after);
        assert!(
            !root
                .join(PAGES_DIR)
                .join("conflicting-run-custom-tool.md")
                .exists()
        );
    }

    #[test]
    fn a_page_referencing_a_missing_component_is_refused() {
        let (_dir, root) = scratch();
        let components = root.join(PAGES_DIR).join("components.md");
        let text =
            read(&root, &components).replace("  schemas:\n    Agent:", "  schemas:\n    Agent2:");
        std::fs::write(&components, text).unwrap();
        let err = regen(&root, &[], true).unwrap_err();
        assert!(err.contains("#/components/schemas/Agent"), "{err}");
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
    fn editing_the_spec_by_hand_fails_the_check_and_regen_restores_it() {
        let (_dir, root) = scratch();
        let original = read(&root, VENDORED_SPEC);
        let spec = original.replace(
            "description: Public API for Conduit.",
            "description: Public API for Conduit, edited.",
        );
        std::fs::write(root.join(VENDORED_SPEC), spec).unwrap();
        let err = regen(&root, &[], true).unwrap_err();
        assert!(err.contains("openapi/conduit.yaml would change"), "{err}");
        regen(&root, &[], false).unwrap();
        assert_eq!(read(&root, VENDORED_SPEC), original);
    }

    #[test]
    fn editing_a_page_without_regenerating_fails_the_check() {
        let (_dir, root) = scratch();
        let page = root.join(PAGES_DIR).join("tickets/close.md");
        let text = read(&root, &page).replace("summary: Close ticket", "summary: Close a ticket");
        std::fs::write(&page, text).unwrap();
        let err = regen(&root, &[], true).unwrap_err();
        assert!(err.contains("openapi/conduit.yaml would change"), "{err}");
        assert!(err.contains("generated.rs is stale"), "{err}");
        regen(&root, &[], false).unwrap();
        regen(&root, &[], true).unwrap();
    }

    #[test]
    fn check_with_a_new_page_reports_what_would_change() {
        let (_dir, root) = scratch();
        let err = regen(&root, &[fixture("list-custom-tools.md")], true).unwrap_err();
        assert!(
            err.contains("openapi/pages/custom-tools/list.md would be replaced"),
            "{err}"
        );
        assert!(err.contains("openapi/conduit.yaml would change"), "{err}");
    }
}
