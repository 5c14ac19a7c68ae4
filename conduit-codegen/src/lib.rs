//! The spec pipeline behind `conduit-api-gen`'s build script and `cargo xtask regen`.
//!
//! Both run the same steps, so what the build compiles is what review sees:
//! [`source`] loads a spec or a reference page, [`merge`] folds pages into the
//! vendored spec, [`normalize`] rewrites what progenitor cannot take as-is,
//! [`mod@generate`] runs progenitor, and [`surface`] renders the reviewable summary.

pub mod error;
pub mod generate;
pub mod merge;
pub mod normalize;
pub mod source;
pub mod surface;

pub use error::{Error, Result};
pub use generate::{Generated, generate};
pub use source::Source;
pub use surface::Surface;

/// Where the vendored spec lives, relative to the workspace root.
pub const VENDORED_SPEC: &str = "openapi/conduit.yaml";

/// Where the reviewable API summary lives, relative to the workspace root.
pub const SURFACE_FILE: &str = "conduit-api-gen/SURFACE.md";
