//! Progenitor 0.15 adds `api-version: <info.version>` to every request it
//! generates, a convention of Oxide's APIs. Conduit's API defines no such
//! header, so it is taken out of the generated code rather than sent: one
//! header less on the wire. An operation without header parameters is then
//! left with an empty map merged into its request; both go, so that no code
//! runs for them per call.

use quote::ToTokens;
use syn::visit_mut::{self, VisitMut};

use crate::rewrite::{self, Tally};
use crate::{Error, Result};

/// Removes the header from every generated request, and the header map of
/// a request left with none; returns how many requests had the header.
/// Fails, rather than leave it half done, when progenitor's output no
/// longer has the shape this expects.
pub(crate) fn strip(file: &mut syn::File) -> Result<usize> {
    let (mut maps, mut empty) = (0, None);
    let appends = rewrite::run(file, Strip::default(), |strip| {
        maps = strip.maps;
        empty = strip.empty_map_error;
        strip.appends
    })?;
    if appends != maps {
        return Err(Error::Generate(format!(
            "progenitor's api-version header: {maps} header maps but {appends} appends of it; \
             the generator's output changed (see conduit-codegen/src/api_version.rs)"
        )));
    }
    if let Some(e) = empty {
        return Err(e);
    }
    Ok(appends)
}

#[derive(Default)]
struct Strip {
    /// `HeaderMap::with_capacity(n)` calls seen, `n` counting the header.
    maps: usize,
    /// `header_map.append(HeaderName::from_static("api-version"), ..)` removed.
    appends: Tally,
    /// An empty header map used other than merged once into its request.
    empty_map_error: Option<Error>,
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
        // Sizes are final now: a map for no header goes, with its merge.
        if let Some(at) = block.stmts.iter().position(is_empty_header_map) {
            block.stmts.remove(at);
            let mut merges = Merges::default();
            for stmt in &mut block.stmts[at..] {
                merges.visit_stmt_mut(stmt);
            }
            if merges.removed != 1 || merges.other_uses != 0 {
                self.empty_map_error.get_or_insert(Error::Generate(format!(
                    "progenitor's header map: an empty one merged {} times and used {} other times, \
                     expected merged once (see conduit-codegen/src/api_version.rs)",
                    merges.removed, merges.other_uses
                )));
            }
        }
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

/// `let mut header_map = HeaderMap::with_capacity(0usize);`
fn is_empty_header_map(stmt: &syn::Stmt) -> bool {
    let syn::Stmt::Local(local) = stmt else {
        return false;
    };
    let syn::Pat::Ident(name) = &local.pat else {
        return false;
    };
    name.ident == HEADER_MAP
        && local.init.as_ref().is_some_and(|init| {
            matches!(&*init.expr, syn::Expr::Call(call)
                if is_header_map_with_capacity(&call.func)
                    && call.args.len() == 1
                    && matches!(call.args.first(), Some(syn::Expr::Lit(syn::ExprLit {
                        lit: syn::Lit::Int(n), ..
                    })) if n.base10_parse::<usize>().is_ok_and(|n| n == 0)))
        })
}

/// The name progenitor gives a request's header map.
const HEADER_MAP: &str = "header_map";

/// Replaces `<request builder>.headers(header_map)` with the builder, and
/// counts any other use of the map.
#[derive(Default)]
struct Merges {
    removed: usize,
    other_uses: usize,
}

impl VisitMut for Merges {
    fn visit_expr_mut(&mut self, expr: &mut syn::Expr) {
        if let syn::Expr::MethodCall(call) = expr
            && call.method == "headers"
            && call.args.len() == 1
            && call.args.first().is_some_and(is_header_map)
        {
            self.removed += 1;
            *expr = (*call.receiver).clone();
            return self.visit_expr_mut(expr);
        }
        if is_header_map(expr) {
            self.other_uses += 1;
        }
        visit_mut::visit_expr_mut(self, expr);
    }
}

/// The path `header_map`.
fn is_header_map(expr: &syn::Expr) -> bool {
    matches!(expr, syn::Expr::Path(p) if p.path.is_ident(HEADER_MAP))
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
    fn a_request_left_with_no_header_builds_no_map() {
        let (n, code) = stripped(
            r#"fn send() {
                let mut header_map = ::reqwest::header::HeaderMap::with_capacity(1usize);
                header_map.append(
                    ::reqwest::header::HeaderName::from_static("api-version"),
                    ::reqwest::header::HeaderValue::from_static(Client::api_version()),
                );
                let mut request = client.client.post(url).json(&body).headers(header_map).build()?;
            }"#,
        )
        .unwrap();
        assert_eq!(n, 1);
        let code = code.replace(' ', "");
        assert!(!code.contains("header_map"), "{code}");
        assert!(
            code.contains("client.client.post(url).json(&body).build()?"),
            "{code}"
        );
    }

    #[test]
    fn an_empty_map_used_other_than_merged_once_fails_generation() {
        for body in [
            "let mut r = client.post(url).build()?;",
            "let mut r = client.post(url).headers(header_map).build()?; log(&header_map);",
        ] {
            let code = format!(
                r#"fn send() {{
                    let mut header_map = ::reqwest::header::HeaderMap::with_capacity(1usize);
                    header_map.append(::reqwest::header::HeaderName::from_static("api-version"), v);
                    {body}
                }}"#
            );
            let e = stripped(&code).unwrap_err();
            assert!(
                e.to_string().contains("expected merged once"),
                "{body}: {e}"
            );
        }
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
