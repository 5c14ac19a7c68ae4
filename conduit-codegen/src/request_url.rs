//! Progenitor builds each request's URL as a string,
//! `format!("{}/v1/things/{}", client.baseurl, encode_path(&id.to_string()))`,
//! which reqwest then parses whole, host included, on every call. This
//! rewrites it to `crate::request_url::of(client, format_args!("/v1/things/{}",
//! crate::request_url::Segment(&id)))`: the same URL, from the base parsed
//! once per client and the parameters escaped straight into the path
//! (conduit-api-gen's `src/request_url.rs`).

use proc_macro2::TokenStream;
use quote::{ToTokens, quote};
use syn::punctuated::Punctuated;
use syn::visit_mut::{self, VisitMut};

use crate::rewrite::{self, Tally};
use crate::{Error, Result};

/// Rewrites every request URL; returns how many. Fails, rather than leave
/// one as it was, when progenitor's output no longer has the shape this
/// expects.
pub(crate) fn rewrite(file: &mut syn::File) -> Result<usize> {
    rewrite::run(file, Urls::default(), |v| v.0)
}

#[derive(Default)]
struct Urls(Tally);

impl VisitMut for Urls {
    fn visit_local_mut(&mut self, local: &mut syn::Local) {
        if let Some(init) = &mut local.init
            && let syn::Expr::Macro(mac) = &*init.expr
            && mac.mac.path.is_ident("format")
            && mentions_baseurl(&mac.mac.tokens)
        {
            match url_of(&mac.mac.tokens) {
                Ok(expr) => {
                    *init.expr = expr;
                    self.0.count += 1;
                }
                Err(what) => {
                    self.0.error.get_or_insert(Error::Generate(format!(
                        "progenitor's request URL: {what} (see conduit-codegen/src/request_url.rs)"
                    )));
                }
            }
        }
        visit_mut::visit_local_mut(self, local);
    }
}

fn mentions_baseurl(tokens: &TokenStream) -> bool {
    tokens
        .to_string()
        .replace(' ', "")
        .contains("client.baseurl")
}

/// `format!("{}<path>", client.baseurl, encode_path(&x.to_string()), ..)`
/// as the call of `request_url::of`.
fn url_of(tokens: &TokenStream) -> std::result::Result<syn::Expr, String> {
    let args = syn::parse::Parser::parse2(
        Punctuated::<syn::Expr, syn::Token![,]>::parse_terminated,
        tokens.clone(),
    )
    .map_err(|e| format!("unparsable format! arguments: {e}"))?;
    let mut args = args.into_iter();
    let template = match args.next() {
        Some(syn::Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Str(s),
            ..
        })) => s.value(),
        _ => return Err("format! without a literal template".to_owned()),
    };
    let Some(path) = template.strip_prefix("{}") else {
        return Err(format!(
            "template {template:?} does not start with the base URL"
        ));
    };
    match args.next() {
        Some(base) if base.to_token_stream().to_string().replace(' ', "") == "client.baseurl" => {}
        _ => return Err(format!("template {template:?} is not on client.baseurl")),
    }
    let params = args
        .map(|arg| parameter(&arg).ok_or_else(|| format!("unexpected parameter {}", quote!(#arg))))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    if path.matches("{}").count() != params.len() || !path.starts_with('/') {
        return Err(format!("template {template:?} does not fit its parameters"));
    }
    Ok(syn::parse_quote! {
        crate::request_url::of(
            client,
            format_args!(#path, #(crate::request_url::Segment(&#params)),*),
        )
        .map_err(Error::InvalidRequest)?
    })
}

/// `x` of `encode_path(&x.to_string())`.
fn parameter(arg: &syn::Expr) -> Option<syn::Expr> {
    let syn::Expr::Call(call) = arg else {
        return None;
    };
    let syn::Expr::Path(func) = &*call.func else {
        return None;
    };
    if !func.path.is_ident("encode_path") || call.args.len() != 1 {
        return None;
    }
    let syn::Expr::Reference(reference) = call.args.first()? else {
        return None;
    };
    let syn::Expr::MethodCall(to_string) = &*reference.expr else {
        return None;
    };
    (to_string.method == "to_string" && to_string.args.is_empty())
        .then(|| (*to_string.receiver).clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewritten(code: &str) -> Result<(usize, String)> {
        rewrite::applied(code, super::rewrite)
    }

    #[test]
    fn the_url_is_built_from_the_parsed_base_and_escaped_segments() {
        let (n, code) = rewritten(
            r#"fn send() {
                let url = format!("{}/v1/a/{}/b/{}", client.baseurl, encode_path(&id.to_string()), encode_path(&n.to_string()),);
                let other = format!("error converting supplied value for data: {e}");
            }"#,
        )
        .unwrap();
        assert_eq!(n, 1);
        assert!(
            code.contains(
                r#"leturl=crate::request_url::of(client,format_args!("/v1/a/{}/b/{}",crate::request_url::Segment(&id),crate::request_url::Segment(&n)),).map_err(Error::InvalidRequest)?;"#
            ),
            "{code}"
        );
        assert!(code.contains("errorconvertingsuppliedvalue"), "{code}");
        let (n, code) =
            rewritten(r#"fn send() { let url = format!("{}/v1/things", client.baseurl,); }"#)
                .unwrap();
        assert_eq!(n, 1);
        assert!(code.contains(r#"format_args!("/v1/things",)"#), "{code}");
    }

    #[test]
    fn a_changed_generator_fails_generation() {
        for (code, why) in [
            (
                r#"fn f() { let url = format!("{}/v1/{}", client.baseurl, id); }"#,
                "unexpected parameter",
            ),
            (
                r#"fn f() { let url = format!("{}/v1/{}", client.baseurl, encode_path(&id)); }"#,
                "unexpected parameter",
            ),
            (
                r#"fn f() { let url = format!("{}{}/v1", client.baseurl, x); }"#,
                "unexpected parameter",
            ),
            (
                r#"fn f() { let url = format!("{}{}", client.baseurl, encode_path(&p.to_string())); }"#,
                "does not fit",
            ),
            (
                r#"fn f() { let url = format!("v1/{}", client.baseurl); }"#,
                "does not start with the base URL",
            ),
            (
                r#"fn f() { let url = format!("{}/v1", other, client.baseurl); }"#,
                "is not on client.baseurl",
            ),
        ] {
            let e = rewritten(code).unwrap_err();
            assert!(e.to_string().contains(why), "{code}: {e}");
        }
    }
}
