//! Puts the `schemars::JsonSchema` derive of the generated types behind
//! `conduit-api-types`'s `schemars` feature.
//!
//! Few applications want a JSON Schema of the API's payloads, and the
//! derive costs every application's build: schemars and its derive macro
//! must be built before the types, and each type's derive expands to code
//! of its own. Progenitor (typify) derives it for every type or none, so
//! the derive is moved into a `cfg_attr` here.

use proc_macro2::TokenStream;
use quote::ToTokens;
use syn::punctuated::Punctuated;
use syn::visit_mut::{self, VisitMut};
use syn::{Attribute, Path, Token};

use crate::Result;
use crate::rewrite::{self, Tally};

/// Rewrites every `#[derive(.., schemars::JsonSchema, ..)]` in `file` into
/// the derive without it and `#[cfg_attr(feature = "schemars",
/// derive(schemars::JsonSchema))]`; returns how many it rewrote.
pub(crate) fn gate(file: &mut syn::File) -> Result<usize> {
    rewrite::run(file, Gate::default(), |g| g.tally)
}

#[derive(Default)]
struct Gate {
    tally: Tally,
}

impl Gate {
    fn attrs(&mut self, attrs: &mut Vec<Attribute>) {
        let mut gated = None;
        for (i, attr) in attrs.iter_mut().enumerate() {
            if !attr.path().is_ident("derive") {
                continue;
            }
            let Ok(paths) = attr.parse_args_with(Punctuated::<Path, Token![,]>::parse_terminated)
            else {
                continue;
            };
            if !paths.iter().any(is_json_schema) {
                continue;
            }
            let kept: Punctuated<Path, Token![,]> =
                paths.into_iter().filter(|p| !is_json_schema(p)).collect();
            *attr = syn::parse_quote!(#[derive(#kept)]);
            gated = Some(i);
        }
        if let Some(i) = gated {
            let gate: Attribute = syn::parse_quote!(
                #[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
            );
            attrs.insert(i + 1, gate);
            self.tally.count += 1;
        }
    }
}

impl VisitMut for Gate {
    fn visit_item_struct_mut(&mut self, item: &mut syn::ItemStruct) {
        self.attrs(&mut item.attrs);
        visit_mut::visit_item_struct_mut(self, item);
    }

    fn visit_item_enum_mut(&mut self, item: &mut syn::ItemEnum) {
        self.attrs(&mut item.attrs);
        visit_mut::visit_item_enum_mut(self, item);
    }
}

/// `schemars::JsonSchema` or `::schemars::JsonSchema`.
fn is_json_schema(path: &Path) -> bool {
    let tokens: TokenStream = path.to_token_stream();
    let text = tokens.to_string().replace(' ', "");
    text == "schemars::JsonSchema" || text == "::schemars::JsonSchema"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_derive_moves_into_a_cfg_attr_and_the_rest_stays() {
        let mut file: syn::File = syn::parse_quote! {
            pub mod types {
                /// A doc.
                #[derive(::serde::Deserialize, Clone, schemars::JsonSchema)]
                #[serde(rename_all = "snake_case")]
                pub struct A { pub x: i64 }
                #[derive(Debug, ::schemars::JsonSchema)]
                pub enum B { X }
                #[derive(Debug)]
                pub struct C;
            }
        };
        assert_eq!(gate(&mut file).unwrap(), 2);
        let code = prettyplease::unparse(&file);
        assert!(!code.contains("Clone, schemars::JsonSchema"), "{code}");
        assert!(
            code.contains("#[derive(::serde::Deserialize, Clone)]"),
            "{code}"
        );
        assert_eq!(
            code.matches("#[cfg_attr(feature = \"schemars\", derive(schemars::JsonSchema))]")
                .count(),
            2,
            "{code}"
        );
        // Right after the derive, so serde's attributes still follow it.
        let a = code.find("pub struct A").unwrap();
        let gate = code.find("cfg_attr").unwrap();
        let serde = code.find("#[serde(rename_all").unwrap();
        assert!(gate < serde && serde < a, "{code}");
    }
}
