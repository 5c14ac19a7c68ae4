//! Loading a spec source: an OpenAPI YAML or JSON file, or a reference page
//! (markdown with the document in a ```` ```yaml ```` block).

use std::path::Path;

use serde_json::Value;

use crate::{Error, Result};

/// One loaded OpenAPI document and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    /// A name for messages: the path it was read from.
    pub name: String,
    /// The document, as generic JSON so nothing the spec says is dropped.
    pub doc: Value,
}

impl Source {
    /// Reads and parses `path`; the kind is chosen by its extension
    /// (`.md`/`.markdown` page, `.json`, anything else YAML).
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&path.display().to_string(), &text)
    }

    /// Parses `text`, naming it `name` in messages.
    pub fn parse(name: &str, text: &str) -> Result<Self> {
        let lower = name.to_ascii_lowercase();
        let doc = if lower.ends_with(".md") || lower.ends_with(".markdown") {
            let block = yaml_block(text).ok_or_else(|| Error::NoYamlBlock {
                source_name: name.to_owned(),
            })?;
            parse_yaml(name, block)?
        } else if lower.ends_with(".json") {
            serde_json::from_str(text).map_err(|e| parse_error(name, e))?
        } else {
            parse_yaml(name, text)?
        };
        if !doc.get("openapi").is_some_and(Value::is_string) {
            return Err(Error::Parse {
                source_name: name.to_owned(),
                message: "not an OpenAPI document (no `openapi` version field)".into(),
            });
        }
        Ok(Self {
            name: name.to_owned(),
            doc,
        })
    }
}

fn parse_error(name: &str, e: impl std::fmt::Display) -> Error {
    Error::Parse {
        source_name: name.to_owned(),
        message: e.to_string(),
    }
}

fn parse_yaml(name: &str, text: &str) -> Result<Value> {
    serde_saphyr::from_str(text).map_err(|e| parse_error(name, e))
}

/// The body of the first fenced block whose info string starts with `yaml`.
/// Reference pages fence with four backticks, so any fence of three or more
/// backticks is accepted, closed by a fence at least as long.
pub fn yaml_block(markdown: &str) -> Option<&str> {
    let mut offset = 0;
    let mut open: Option<(usize, usize)> = None; // (fence length, body start)
    for line in markdown.split_inclusive('\n') {
        let trimmed = line.trim_end();
        let ticks = trimmed.chars().take_while(|&c| c == '`').count();
        match open {
            None if ticks >= 3 => {
                let info = trimmed[ticks..].trim_start();
                if info.split_whitespace().next() == Some("yaml") {
                    open = Some((ticks, offset + line.len()));
                }
            }
            Some((len, start)) if ticks >= len && trimmed.len() == ticks => {
                return Some(&markdown[start..offset]);
            }
            _ => {}
        }
        offset += line.len();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extracts_the_block_of_a_reference_page() {
        let page = "# Title\n\n````yaml POST /v1/x\nopenapi: 3.0.0\ninfo: {title: t, version: '1'}\n````\ntrailing";
        assert_eq!(
            yaml_block(page),
            Some("openapi: 3.0.0\ninfo: {title: t, version: '1'}\n")
        );
        let src = Source::parse("page.md", page).unwrap();
        assert_eq!(src.doc["info"]["title"], "t");
    }

    #[test]
    fn inner_shorter_fences_do_not_close_the_block() {
        let page = "````yaml\nopenapi: 3.0.0\ndescription: |\n  ```\n  code\n  ```\n````\n";
        let block = yaml_block(page).unwrap();
        assert!(block.contains("code"), "{block}");
    }

    #[test]
    fn a_page_without_a_yaml_block_is_refused_by_name() {
        let err = Source::parse("empty.md", "# nothing\n```json\n{}\n```\n").unwrap_err();
        assert!(matches!(err, Error::NoYamlBlock { .. }));
        assert!(err.to_string().contains("empty.md"));
    }

    #[test]
    fn json_and_yaml_sources_parse_alike() {
        let y = Source::parse("a.yaml", "openapi: 3.0.0\npaths: {}\n").unwrap();
        let j = Source::parse("a.json", r#"{"openapi":"3.0.0","paths":{}}"#).unwrap();
        assert_eq!(y.doc, j.doc);
    }

    #[test]
    fn a_document_without_openapi_field_is_refused() {
        let err = Source::parse("x.yaml", "foo: bar\n").unwrap_err();
        assert!(err.to_string().contains("not an OpenAPI document"), "{err}");
    }

    #[test]
    fn the_shared_reference_page_matches_the_vendored_spec() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let vendored = Source::load(&root.join(crate::VENDORED_SPEC)).unwrap();
        assert!(vendored.doc["paths"]["/v1/custom-tools/{id}/run"]["post"].is_object());
    }
}
