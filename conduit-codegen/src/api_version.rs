//! Progenitor 0.15 adds `api-version: <info.version>` to every request it
//! generates, a convention of Oxide's APIs. Conduit's API defines no such
//! header, so it is taken out of the generated code rather than sent: one
//! header less on the wire, and for an operation without header parameters
//! no header map built per call (progenitor sizes it for its own header).

use quote::ToTokens;
use syn::visit_mut::{self, VisitMut};

use crate::rewrite::{self, Tally};
use crate::{Error, Result};

/// Removes the header from every generated request; returns how many
/// requests had it. Fails, rather than leave it half done, when
/// progenitor's output no longer has the shape this expects.
pub(crate) fn strip(file: &mut syn::File) -> Result<usize> {
    let mut maps = 0;
    let appends = rewrite::run(file, Strip::default(), |strip| {
        maps = strip.maps;
        strip.appends
    })?;
    if appends != maps {
        return Err(Error::Generate(format!(
            "progenitor's api-version header: {maps} header maps but {appends} appends of it; \
             the generator's output changed (see conduit-codegen/src/api_version.rs)"
        )));
    }
    Ok(appends)
}

#[derive(Default)]
struct Strip {
    /// `HeaderMap::with_capacity(n)` calls seen, `n` counting the header.
    maps: usize,
    /// `header_map.append(HeaderName::from_static("api-version"), ..)` removed.
    appends: Tally,
}

impl VisitMut for Strip {
    fn visit_block_mut(&mut self, block: &mut syn::Block) {
        let before = block.stmts.len();
        block.stmts.retain(|stmt| !appends_api_version(stmt));
        self.appends.count += before - block.stmts.len();
        // The map may now get no header at all.
        for stmt in &mut block.stmts {
            if let syn::Stmt::Local(local) = stmt
                && let Some(init) = &local.init
                && let syn::Expr::Call(call) = &*init.expr
                && is_header_map_with_capacity(&call.func)
            {
                local.attrs.push(syn::parse_quote!(#[allow(unused_mut)]));
            }
        }
        visit_mut::visit_block_mut(self, block);
    }

    fn visit_expr_call_mut(&mut self, call: &mut syn::ExprCall) {
        if is_header_map_with_capacity(&call.func) {
            let one_arg = call.args.len() == 1;
            match call.args.first_mut() {
                Some(syn::Expr::Lit(syn::ExprLit {
                    lit: syn::Lit::Int(n),
                    ..
                })) if one_arg => match n.base10_parse::<usize>() {
                    Ok(size) if size >= 1 => {
                        *n = syn::LitInt::new(&format!("{}usize", size - 1), n.span());
                        self.maps += 1;
                    }
                    _ => self.fail(format!("unexpected header map size {n}")),
                },
                _ => self.fail("HeaderMap::with_capacity without a literal size".to_owned()),
            }
        }
        visit_mut::visit_expr_call_mut(self, call);
    }
}

impl Strip {
    fn fail(&mut self, what: String) {
        self.appends.error.get_or_insert(Error::Generate(format!(
            "progenitor's api-version header: {what} (see conduit-codegen/src/api_version.rs)"
        )));
    }
}

/// `header_map.append(HeaderName::from_static("api-version"), ..);`
fn appends_api_version(stmt: &syn::Stmt) -> bool {
    let syn::Stmt::Expr(syn::Expr::MethodCall(call), Some(_)) = stmt else {
        return false;
    };
    call.method == "append"
        && call.args.first().is_some_and(|name| {
            name.to_token_stream()
                .to_string()
                .replace(' ', "")
                .ends_with("HeaderName::from_static(\"api-version\")")
        })
}

/// A path ending in `HeaderMap::with_capacity`.
fn is_header_map_with_capacity(func: &syn::Expr) -> bool {
    let syn::Expr::Path(path) = func else {
        return false;
    };
    let names: Vec<_> = path.path.segments.iter().map(|s| &s.ident).collect();
    matches!(names.as_slice(), [.., map, with] if *map == "HeaderMap" && *with == "with_capacity")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stripped(code: &str) -> Result<(usize, String)> {
        let mut file: syn::File = syn::parse_str(code).unwrap();
        let n = strip(&mut file)?;
        Ok((n, file.to_token_stream().to_string()))
    }

    #[test]
    fn the_header_goes_and_the_map_shrinks_by_one() {
        let (n, code) = stripped(
            r#"fn send() {
                let mut header_map = ::reqwest::header::HeaderMap::with_capacity(2usize);
                header_map.append(
                    ::reqwest::header::HeaderName::from_static("api-version"),
                    ::reqwest::header::HeaderValue::from_static(Client::api_version()),
                );
                if let Some(v) = key { header_map.append("idempotency-key", v.to_string().try_into()?); }
            }"#,
        )
        .unwrap();
        assert_eq!(n, 1);
        assert!(!code.contains("api-version"), "{code}");
        assert!(code.contains("with_capacity (1usize)"), "{code}");
        assert!(code.contains("idempotency-key"), "{code}");
        assert!(
            code.contains("# [allow (unused_mut)] let mut header_map"),
            "{code}"
        );
    }

    #[test]
    fn a_changed_generator_fails_generation() {
        // A map sized for the header, but no header: half a removal.
        let e = stripped(
            "fn send() { let mut header_map = ::reqwest::header::HeaderMap::with_capacity(1usize); }",
        )
        .unwrap_err();
        assert!(e.to_string().contains("generator's output changed"), "{e}");
        let e = stripped("fn send() { let m = HeaderMap::with_capacity(n); }").unwrap_err();
        assert!(e.to_string().contains("without a literal size"), "{e}");
    }
}
