//! Every operation of the spec as `client.<group>().<action>()`: the
//! builders are generated (`generated.rs`, by `cargo xtask regen`); what
//! they share is here.

// Included rather than a module file, so that rustfmt leaves regen's
// output as written (`regen --check` compares it byte for byte).
#[allow(clippy::all, unused_mut)]
mod generated {
    include!("generated.rs");
}
mod paging;
pub(crate) mod request;

pub use generated::*;
pub use paging::Paged;
pub use request::MAX_ID_LEN;
