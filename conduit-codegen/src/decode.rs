//! Progenitor decodes each JSON response with
//! `ResponseValue::from_response(response)`, which clones the response's
//! headers and reads the body through reqwest's `bytes()`. This rewrites
//! those calls to `crate::decode::json(response)` (conduit-api-gen's
//! `src/decode.rs`): the same value and errors, the headers moved instead
//! of copied.

use quote::ToTokens;
use syn::visit_mut::{self, VisitMut};

use crate::rewrite::{self, Tally};
use crate::{Error, Result};

/// Rewrites every call; returns how many. Fails when progenitor calls
/// `from_response` in a way this does not expect.
pub(crate) fn rewrite(file: &mut syn::File) -> Result<usize> {
    rewrite::run(file, Decodings::default(), |v| v.0)
}

#[derive(Default)]
struct Decodings(Tally);

impl VisitMut for Decodings {
    fn visit_expr_call_mut(&mut self, call: &mut syn::ExprCall) {
        if let syn::Expr::Path(func) = &*call.func
            && func
                .path
                .segments
                .last()
                .is_some_and(|s| s.ident == "from_response")
        {
            let path = func.to_token_stream().to_string().replace(' ', "");
            if path == "ResponseValue::from_response" && call.args.len() == 1 {
                *call.func = syn::parse_quote!(crate::decode::json);
                self.0.count += 1;
            } else {
                self.0.error.get_or_insert(Error::Generate(format!(
                    "progenitor's response decoding: unexpected call of {path} with {} \
                     argument(s) (see conduit-codegen/src/decode.rs)",
                    call.args.len()
                )));
            }
        }
        visit_mut::visit_expr_call_mut(self, call);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewritten(code: &str) -> Result<(usize, String)> {
        rewrite::applied(code, super::rewrite)
    }

    #[test]
    fn every_json_decoding_goes_through_the_crates_own() {
        let (n, code) = rewritten(
            "async fn send() { match s {
                200u16 => ResponseValue::from_response(response).await,
                400u16 => Err(Error::ErrorResponse(ResponseValue::from_response(response).await?)),
                204u16 => Ok(ResponseValue::empty(response)),
                _ => Err(Error::UnexpectedResponse(response)),
            } }",
        )
        .unwrap();
        assert_eq!(n, 2);
        assert!(!code.contains("from_response"), "{code}");
        assert_eq!(
            code.matches("crate::decode::json(response)").count(),
            2,
            "{code}"
        );
        assert!(code.contains("ResponseValue::empty(response)"), "{code}");
    }

    #[test]
    fn a_changed_generator_fails_generation() {
        for code in [
            "fn f() { ResponseValue::from_response(response, extra); }",
            "fn f() { progenitor_client::ResponseValue::<T>::from_response(response); }",
        ] {
            let e = rewritten(code).unwrap_err();
            assert!(e.to_string().contains("response decoding"), "{code}: {e}");
        }
    }
}
