//! Each operation's `send` is an async fn whose future is moved whole into
//! every caller that awaits it, so its size is paid on every call. Rustc
//! keeps a local's storage in that future from its first borrow across an
//! await to the end of its scope, and keeps it in every state when it
//! spans more than one await. Progenitor's `send` declares everything at
//! the top: the path and body values (dead once the request is built), the
//! request (borrowed by the `pre` hook, then sent) and the result (borrowed
//! by the `post` hook, then unwrapped) all stayed in the future for its
//! whole life, about half of its 1,144 bytes.
//!
//! This rewrites the body after progenitor's request building into nested
//! blocks, so that each of those values ends with the await that needs it:
//!
//! ```text
//! let response = {
//!     let (client, info, result) = {
//!         let (client, request, info) = {
//!             let (client, mut request, info) = { <building>; (client, request, info) };
//!             client.pre(&mut request, &info).await?;
//!             (client, request, info)
//!         };
//!         let result = client.exec(request, &info).await;
//!         (client, info, result)
//!     };
//!     client.post(&result, &info).await?;
//!     result?
//! };
//! match response.status().as_u16() { ... }
//! ```
//!
//! The same statements run in the same order.

use quote::ToTokens;
use syn::visit_mut::{self, VisitMut};
use syn::{Expr, Stmt};

use crate::rewrite::{self, Tally};
use crate::{Error, Result};

/// Rewrites every operation's `send`; returns how many. Fails when a
/// `send` is not shaped as this expects.
pub(crate) fn rewrite(file: &mut syn::File) -> Result<usize> {
    rewrite::run(file, Scopes::default(), |v| v.0)
}

#[derive(Default)]
struct Scopes(Tally);

impl VisitMut for Scopes {
    fn visit_impl_item_fn_mut(&mut self, f: &mut syn::ImplItemFn) {
        if f.sig.ident == "send" && f.sig.asyncness.is_some() {
            match scoped(&f.block.stmts) {
                Ok(stmts) => {
                    f.block.stmts = stmts;
                    self.0.count += 1;
                }
                Err(why) => {
                    self.0.error.get_or_insert(Error::Generate(format!(
                        "progenitor's `send`: {why} (see conduit-codegen/src/scopes.rs)"
                    )));
                }
            }
        }
        visit_mut::visit_impl_item_fn_mut(self, f);
    }
}

/// `stmts` with the hooks' statements and what they use scoped as in the
/// module docs.
fn scoped(stmts: &[Stmt]) -> std::result::Result<Vec<Stmt>, String> {
    let at = stmts
        .iter()
        .position(|s| hook(s, "pre").is_some())
        .ok_or("no `pre` hook awaited")?;
    let (building, rest) = stmts.split_at(at);
    let [pre, exec, post, unwrap, tail @ ..] = rest else {
        return Err("fewer statements than the hooks need after `pre`".into());
    };
    if building.iter().any(awaits) {
        return Err("an await before the `pre` hook".into());
    }
    let (client, request, info) = hook(pre, "pre").ok_or("`pre` hook")?;
    let result = local_awaiting(exec, "exec").ok_or("`exec` after `pre`")?;
    hook(post, "post").ok_or("`post` after `exec`")?;
    let Stmt::Local(unwrap) = unwrap else {
        return Err("no `let response = result?;` after `post`".into());
    };
    let response = &unwrap.pat;
    let unwrapped = &unwrap
        .init
        .as_ref()
        .ok_or("`let response` without a value")?
        .expr;
    if !matches!(&**unwrapped, Expr::Try(t) if path_is(&t.expr, &result)) {
        return Err("`let response` is not the result unwrapped".into());
    }
    let block: syn::Block = syn::parse_quote!({
        let #response = {
            let (#client, #info, #result) = {
                let (#client, #request, #info) = {
                    let (#client, mut #request, #info) = {
                        #(#building)*
                        (#client, #request, #info)
                    };
                    #pre
                    (#client, #request, #info)
                };
                #exec
                (#client, #info, #result)
            };
            #post
            #unwrapped
        };
        #(#tail)*
    });
    Ok(block.stmts)
}

/// For `<client>.<name>(&mut <request>, &<info>).await?;` (or with `&` for
/// `post`'s result): the client, the first argument's and the second's
/// names.
fn hook(stmt: &Stmt, name: &str) -> Option<(syn::Ident, syn::Ident, syn::Ident)> {
    let Stmt::Expr(Expr::Try(t), Some(_)) = stmt else {
        return None;
    };
    let Expr::Await(a) = &*t.expr else {
        return None;
    };
    let Expr::MethodCall(call) = &*a.base else {
        return None;
    };
    if call.method != name || call.args.len() != 2 {
        return None;
    }
    let referenced = |e: &Expr| match e {
        Expr::Reference(r) => ident(&r.expr),
        _ => None,
    };
    Some((
        ident(&call.receiver)?,
        referenced(&call.args[0])?,
        referenced(&call.args[1])?,
    ))
}

/// For `let <name> = <client>.<method>(..).await;`: the name.
fn local_awaiting(stmt: &Stmt, method: &str) -> Option<syn::Ident> {
    let Stmt::Local(local) = stmt else {
        return None;
    };
    let Expr::Await(a) = &*local.init.as_ref()?.expr else {
        return None;
    };
    let Expr::MethodCall(call) = &*a.base else {
        return None;
    };
    let syn::Pat::Ident(name) = &local.pat else {
        return None;
    };
    (call.method == method).then(|| name.ident.clone())
}

fn ident(e: &Expr) -> Option<syn::Ident> {
    match e {
        Expr::Path(p) => p.path.get_ident().cloned(),
        _ => None,
    }
}

fn path_is(e: &Expr, name: &syn::Ident) -> bool {
    ident(e).is_some_and(|i| i == *name)
}

fn awaits(stmt: &Stmt) -> bool {
    stmt.to_token_stream()
        .to_string()
        .replace(' ', "")
        .contains(".await")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewritten(code: &str) -> Result<(usize, String)> {
        rewrite::applied(code, super::rewrite)
    }

    /// Progenitor's shape, abridged.
    const SEND: &str = r#"impl<'a> Op<'a> {
        pub async fn send(self) -> Result<ResponseValue<T>, Error<E>> {
            let Self { client, id } = self;
            let id = id.map_err(Error::InvalidRequest)?;
            let mut request = client.client.post(url).build()?;
            let info = OperationInfo { operation_id: "op" };
            client.pre(&mut request, &info).await?;
            let result = client.exec(request, &info).await;
            client.post(&result, &info).await?;
            let response = result?;
            match response.status().as_u16() {
                200u16 => crate::decode::json(response).await,
                _ => Err(Error::UnexpectedResponse(response)),
            }
        }
        pub fn other(self) {}
    }"#;

    #[test]
    fn the_hooks_values_end_with_the_await_that_needs_them() {
        let (n, code) = rewritten(SEND).unwrap();
        assert_eq!(n, 1);
        let expected = concat!(
            "letresponse={",
            "let(client,info,result)={",
            "let(client,request,info)={",
            "let(client,mutrequest,info)={",
            "letSelf{client,id}=self;",
            "letid=id.map_err(Error::InvalidRequest)?;",
            "letmutrequest=client.client.post(url).build()?;",
            "letinfo=OperationInfo{operation_id:\"op\"};",
            "(client,request,info)};",
            "client.pre(&mutrequest,&info).await?;",
            "(client,request,info)};",
            "letresult=client.exec(request,&info).await;",
            "(client,info,result)};",
            "client.post(&result,&info).await?;",
            "result?};",
            "matchresponse.status().as_u16(){",
        );
        assert!(code.contains(expected), "{code}");
        // Nothing else is touched.
        assert!(code.contains("pubfnother(self){}"), "{code}");
    }

    #[test]
    fn a_send_of_another_shape_is_refused_rather_than_half_rewritten() {
        let cases = [
            (
                SEND.replace("client.pre(", "client.before("),
                "no `pre` hook",
            ),
            (
                SEND.replace("let result = client.exec", "let result = client.run"),
                "`exec` after `pre`",
            ),
            (
                SEND.replace("let response = result?;", "let response = result.unwrap();"),
                "unwrapped",
            ),
            (
                SEND.replace("let id = id", "hook().await; let id = id"),
                "an await before",
            ),
        ];
        for (code, why) in cases {
            let err = rewritten(&code).unwrap_err().to_string();
            assert!(
                err.contains(why) && err.contains("scopes.rs"),
                "{why}: {err}"
            );
        }
    }
}
