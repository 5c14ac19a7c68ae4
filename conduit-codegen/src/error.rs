//! Errors of the spec pipeline.

use std::path::PathBuf;

/// A failure to load, merge, validate or generate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A source file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A source is not valid YAML or JSON.
    #[error("cannot parse {source_name}: {message}")]
    Parse {
        /// The source.
        source_name: String,
        /// The parser's message.
        message: String,
    },
    /// A markdown page has no embedded OpenAPI document.
    #[error("{source_name} has no ```yaml block holding an OpenAPI document")]
    NoYamlBlock {
        /// The page.
        source_name: String,
    },
    /// Two sources define the same thing differently.
    #[error(
        "conflicting definitions of {what}: {new_source} differs from {existing_source} at {at}"
    )]
    Conflict {
        /// What is defined twice, such as `POST /v1/x` or `components.schemas.Foo`.
        what: String,
        /// The source that defined it first.
        existing_source: String,
        /// The source that defines it differently.
        new_source: String,
        /// A JSON pointer (relative to the definition) to the first difference.
        at: String,
    },
    /// The document is not an OpenAPI 3.0 document the generator accepts.
    #[error("invalid spec: {0}")]
    Invalid(String),
    /// Progenitor refused the document.
    #[error("code generation failed: {0}")]
    Generate(String),
}

/// Result alias of the spec pipeline.
pub type Result<T, E = Error> = std::result::Result<T, E>;
