//! What the rewrites of progenitor's output share: each is a visitor that
//! counts the places it changed and keeps the first it could not.

use syn::visit_mut::VisitMut;

use crate::{Error, Result};

/// A rewrite's running result.
#[derive(Default)]
pub(crate) struct Tally {
    /// Places rewritten.
    pub(crate) count: usize,
    /// The first place whose shape the rewrite did not expect.
    pub(crate) error: Option<Error>,
}

/// Runs `visitor` over `file` and reads its tally with `tally`: how many
/// places it rewrote, or, rather than leave the output half rewritten,
/// its first error.
pub(crate) fn run<V: VisitMut>(
    file: &mut syn::File,
    mut visitor: V,
    tally: impl FnOnce(V) -> Tally,
) -> Result<usize> {
    visitor.visit_file_mut(file);
    let tally = tally(visitor);
    match tally.error {
        Some(e) => Err(e),
        None => Ok(tally.count),
    }
}

/// For tests: `code` after `rewrite`, with how many places it rewrote, as
/// tokens without spaces.
#[cfg(test)]
pub(crate) fn applied(
    code: &str,
    rewrite: fn(&mut syn::File) -> Result<usize>,
) -> Result<(usize, String)> {
    use quote::ToTokens;
    let mut file: syn::File = syn::parse_str(code).expect("test code parses");
    let n = rewrite(&mut file)?;
    Ok((n, file.to_token_stream().to_string().replace(' ', "")))
}
