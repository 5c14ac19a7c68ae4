//! Reading progenitor's output: its builders, their `send` and the
//! `OperationInfo` each passes to the hooks, and the generated types.

use std::collections::BTreeMap;

use quote::ToTokens;
use syn::visit::Visit;
use syn::{Fields, GenericArgument, Item, PathArguments, Type};

/// The Rust method progenitor makes of an `operationId`: snake case, as its
/// `sanitize(.., Case::Snake)`. [`Surface::from_generated`](super::Surface::from_generated)
/// checks the result against the output, so a difference is an error, not
/// a wrong table.
pub(super) fn rust_method_name(operation_id: &str) -> String {
    use heck::ToSnakeCase;
    let cleaned: String = operation_id
        .replace('\'', "")
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let out = cleaned.to_snake_case();
    match out.chars().next() {
        None => "x".to_owned(),
        Some(c) if c.is_alphabetic() || c == '_' => out,
        Some(_) => format!("_{out}"),
    }
}

/// What a builder's `send` declares.
pub(super) struct Send {
    pub(super) builder: String,
    pub(super) response: String,
    pub(super) error: String,
}

/// The parts of the generated file the surface is read from.
pub(super) struct Generated<'a> {
    builders: &'a [Item],
    types: &'a [Item],
    /// Builder `send`s by the `OperationInfo::operation_id` they pass.
    sends: BTreeMap<String, (&'a syn::ItemImpl, &'a syn::ImplItemFn)>,
}

impl<'a> Generated<'a> {
    pub(super) fn new(file: &'a syn::File) -> Self {
        let builders = module(&file.items, "builder").unwrap_or(&[]);
        let mut sends = BTreeMap::new();
        for item in builders {
            let Item::Impl(imp) = item else { continue };
            for i in &imp.items {
                if let syn::ImplItem::Fn(f) = i
                    && f.sig.ident == "send"
                    && let Some(name) = operation_info_name(f)
                {
                    sends.insert(name, (imp, f));
                }
            }
        }
        Self {
            builders,
            types: module(&file.items, "types").unwrap_or(&[]),
            sends,
        }
    }

    /// The builder whose `send` passes `OperationInfo` for `rust_method`.
    pub(super) fn send_of(&self, rust_method: &str) -> Option<Send> {
        let (imp, send) = self.sends.get(rust_method)?;
        let builder = last_ident(&imp.self_ty)?;
        let syn::ReturnType::Type(_, ret) = &send.sig.output else {
            return None;
        };
        // Result<ResponseValue<T>, Error<E>>
        let args = generic_args(ret);
        let ok = args
            .first()
            .and_then(|t| generic_args(t).into_iter().next())?;
        let err = args
            .get(1)
            .and_then(|t| generic_args(t).into_iter().next())?;
        Some(Send {
            builder,
            response: type_string(&ok),
            error: type_string(&err),
        })
    }

    /// The Rust methods of the output not in `known`.
    pub(super) fn unmatched<'k>(&self, known: impl Iterator<Item = &'k str>) -> Vec<String> {
        let known: Vec<&str> = known.collect();
        self.sends
            .keys()
            .filter(|k| !known.contains(&k.as_str()))
            .cloned()
            .collect()
    }

    /// Setters of a builder: its fields but `client`, unwrapped from
    /// `Result<T, String>`.
    pub(super) fn builder_params(&self, builder: &str) -> Vec<(String, String)> {
        let fields = self.builders.iter().find_map(|item| match item {
            Item::Struct(s) if s.ident == builder => Some(&s.fields),
            _ => None,
        });
        let Some(Fields::Named(named)) = fields else {
            return Vec::new();
        };
        named
            .named
            .iter()
            .filter_map(|f| {
                let name = f.ident.as_ref()?.to_string();
                (name != "client").then(|| {
                    let inner = generic_args(&f.ty)
                        .into_iter()
                        .next()
                        .unwrap_or_else(|| f.ty.clone());
                    (name, type_string(&inner))
                })
            })
            .collect()
    }

    /// `Name -> ["field: Type", …]` for structs, variants for enums.
    pub(super) fn types(&self) -> BTreeMap<String, Vec<String>> {
        type_summaries(self.types)
    }
}

/// The string literal a function passes as `OperationInfo { operation_id }`.
fn operation_info_name(f: &syn::ImplItemFn) -> Option<String> {
    struct Find(Option<String>);
    impl<'ast> Visit<'ast> for Find {
        fn visit_expr_struct(&mut self, e: &'ast syn::ExprStruct) {
            if e.path
                .segments
                .last()
                .is_some_and(|s| s.ident == "OperationInfo")
            {
                for field in &e.fields {
                    if let syn::Member::Named(name) = &field.member
                        && name == "operation_id"
                        && let syn::Expr::Lit(lit) = &field.expr
                        && let syn::Lit::Str(s) = &lit.lit
                    {
                        self.0 = Some(s.value());
                    }
                }
            }
            syn::visit::visit_expr_struct(self, e);
        }
    }
    let mut find = Find(None);
    find.visit_block(&f.block);
    find.0
}

fn module<'a>(items: &'a [Item], name: &str) -> Option<&'a [Item]> {
    items.iter().find_map(|item| match item {
        Item::Mod(m) if m.ident == name => m.content.as_ref().map(|(_, items)| items.as_slice()),
        _ => None,
    })
}

/// `Name -> ["field: Type", …]` for structs, variants for enums.
fn type_summaries(items: &[Item]) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    for item in items {
        match item {
            Item::Struct(s) => {
                let lines = match &s.fields {
                    Fields::Named(named) => named
                        .named
                        .iter()
                        .map(|f| {
                            let name = f
                                .ident
                                .as_ref()
                                .map(ToString::to_string)
                                .unwrap_or_default();
                            format!("{}: {}", name, type_string(&f.ty))
                        })
                        .collect(),
                    Fields::Unnamed(unnamed) => unnamed
                        .unnamed
                        .iter()
                        .map(|f| format!("({})", type_string(&f.ty)))
                        .collect(),
                    Fields::Unit => Vec::new(),
                };
                out.insert(s.ident.to_string(), lines);
            }
            Item::Enum(e) => {
                let lines = e
                    .variants
                    .iter()
                    .map(|v| format!("variant {}", v.ident))
                    .collect();
                out.insert(e.ident.to_string(), lines);
            }
            Item::Type(t) => {
                out.insert(
                    t.ident.to_string(),
                    vec![format!("= {}", type_string(&t.ty))],
                );
            }
            _ => {}
        }
    }
    out
}

fn last_ident(ty: &Type) -> Option<String> {
    match ty {
        Type::Path(p) => p.path.segments.last().map(|s| s.ident.to_string()),
        _ => None,
    }
}

fn generic_args(ty: &Type) -> Vec<Type> {
    let Type::Path(p) = ty else { return Vec::new() };
    let Some(seg) = p.path.segments.last() else {
        return Vec::new();
    };
    let PathArguments::AngleBracketed(args) = &seg.arguments else {
        return Vec::new();
    };
    args.args
        .iter()
        .filter_map(|a| match a {
            GenericArgument::Type(t) => Some(t.clone()),
            _ => None,
        })
        .collect()
}

/// A type as a reader would write it: `Option<String>`, not `:: std :: …`.
fn type_string(ty: &Type) -> String {
    let raw = ty.to_token_stream().to_string().replace(' ', "");
    let mut s = raw;
    for prefix in [
        "::std::string::",
        "::std::option::",
        "::std::vec::",
        "::std::collections::",
        "::serde_json::",
        "::chrono::",
    ] {
        s = s.replace(prefix, "");
    }
    s.replace("types::builder::", "types::").replace(',', ", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_method_names_follow_progenitor() {
        for (id, name) in [
            ("runCustomTool", "run_custom_tool"),
            ("listKBNodes", "list_kb_nodes"),
            ("get-conversation", "get_conversation"),
            ("v2.listAgents", "v2_list_agents"),
        ] {
            assert_eq!(rust_method_name(id), name, "{id}");
        }
    }
}
