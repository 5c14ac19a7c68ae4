//! The SDK's per-operation layer: for every operation of the spec, a
//! method on its group (`client.tickets().list_notes(id)`) returning a
//! builder with a typed setter per query parameter and body field, and a
//! `send` giving the response's `data` (a `Page` for lists, with `.items()`
//! streaming every page). Written into `conduit-sdk/src/api/generated.rs`
//! by `cargo xtask regen`; the runtime it calls is `conduit-sdk/src/api/`.
//!
//! Names come from the reference's URL slugs, which regen records on each
//! operation as `x-page: <group>/<slug>` (the page's place under
//! `openapi/pages/`): group and action in snake case. An operation without
//! one is named from its first tag and its `operationId`.
//!
//! Types are progenitor's (`conduit_api_gen::types`), read off its output,
//! so the layer is spec-exact wherever the raw client is.

use std::collections::{BTreeMap, BTreeSet};

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use serde_json::Value;
use syn::visit_mut::{self, VisitMut};

use crate::surface::Surface;
use crate::{Error, Result};

/// One operation, as the SDK layer names and types it.
#[derive(Debug, Clone)]
pub struct SdkOperation {
    /// The group, such as `custom_tools`.
    pub group: String,
    /// The action, such as `list_notes`.
    pub action: String,
    /// The spec's `operationId`.
    pub operation_id: String,
    /// HTTP method, upper case.
    pub method: String,
    /// Path template.
    pub path: String,
    /// Path parameters, in path order.
    pub path_params: Vec<String>,
    /// Whether it is a cursor-paged list (`.items()`).
    pub paged: bool,
    /// Where it came from (the surface's source line).
    pub source: String,
    /// The reference page it was written from, if any.
    pub reference: Option<String>,
}

/// The generated layer's source and what it holds.
#[derive(Debug, Clone)]
pub struct SdkLayer {
    /// Formatted Rust source.
    pub code: String,
    /// Every operation, in spec order.
    pub operations: Vec<SdkOperation>,
    /// Formatted Rust source of `every_operation(client)`, which calls each
    /// operation once with sample arguments (for the conformance test
    /// against Prism, `conduit-sdk/tests/conformance/every_operation.rs`).
    pub every_operation: String,
    /// Formatted Rust source of `every_operation_mocked(server, client)`,
    /// which mocks each operation with its typed httpmock extension and a
    /// sample of its documented 200 body, then calls it through the SDK
    /// (`conduit-sdk/tests/mocked/every_operation.rs`).
    pub every_operation_mocked: String,
}

/// Generates the layer for `spec` (normalised, as progenitor saw it) from
/// progenitor's output `file` and its `surface`.
pub fn generate(spec: &Value, file: &syn::File, surface: &Surface) -> Result<SdkLayer> {
    let types = Types::read(file);
    let mut groups: BTreeMap<String, Vec<TokenStream>> = BTreeMap::new();
    let mut items = Vec::new();
    let mut operations = Vec::new();
    let mut taken = BTreeSet::new();
    let mut calls = Vec::new();
    let mut mocked = Vec::new();
    let mut not_mocked = Vec::new();
    for op in &surface.operations {
        let raw = &spec["paths"][&op.path][op.method.to_ascii_lowercase()];
        let (group, action) = names(raw, &op.operation_id);
        if !taken.insert((group.clone(), action.clone())) {
            return Err(Error::Generate(format!(
                "two operations are named {group}().{action}(); give one its own page slug"
            )));
        }
        let built = Built::new(spec, raw, op, &types)?;
        calls.push(built.sample_call(&group, &action));
        match built.mocked_call(spec, &group, &action)? {
            Some(call) => mocked.push(call),
            None => not_mocked.push(op.operation_id.clone()),
        }
        let path_params = built.path_params.clone();
        let paged = built.paged;
        let (method_tokens, builder_tokens) = built.tokens(&group, &action)?;
        groups.entry(group.clone()).or_default().push(method_tokens);
        items.push(builder_tokens);
        operations.push(SdkOperation {
            group,
            action,
            operation_id: op.operation_id.clone(),
            method: op.method.clone(),
            path: op.path.clone(),
            path_params,
            paged,
            source: op.source.clone(),
            reference: raw["x-source"]["written-from"].as_str().map(str::to_owned),
        });
    }
    let group_items = groups.iter().map(|(group, methods)| {
        let ty = format_ident!("{}", pascal(group));
        let accessor = ident(group);
        let doc = format!(" The `{group}` operations: `client.{group}()`.");
        let client_doc = format!(" The `{group}` operations.");
        quote! {
            #[doc = #doc]
            #[derive(Debug, Clone, Copy)]
            pub struct #ty<'a> {
                client: &'a Client,
            }

            impl Client {
                #[doc = #client_doc]
                pub fn #accessor(&self) -> #ty<'_> {
                    #ty { client: self }
                }
            }

            impl<'a> #ty<'a> {
                #(#methods)*
            }
        }
    });
    let tokens = quote! {
        use ::conduit_api_gen::{types, Operation};
        use ::std::fmt::Display;
        use crate::api::request::{Request, Workspace};
        use crate::{CallOptions, Client, Page, Response, Result};

        #(#group_items)*
        #(#items)*
    };
    let file: syn::File = syn::parse2(tokens)
        .map_err(|e| Error::Generate(format!("the SDK layer does not parse: {e}")))?;
    let count = calls.len();
    let every: syn::File = syn::parse2(quote! {
        /// How many operations [`every_operation`] calls.
        pub const OPERATION_COUNT: usize = #count;

        /// Calls every operation of the spec once through the SDK, with
        /// sample path parameters and required body fields:
        /// `(operationId, outcome)`, in spec order.
        pub async fn every_operation(
            client: &conduit_sdk::Client,
        ) -> Vec<(&'static str, conduit_sdk::Result<()>)> {
            let mut outcomes = Vec::new();
            #(outcomes.push(#calls);)*
            outcomes
        }
    })
    .map_err(|e| Error::Generate(format!("every_operation does not parse: {e}")))?;
    let mocked: syn::File = syn::parse2(quote! {
        /// The operations of the spec.
        pub const OPERATION_COUNT: usize = #count;

        /// Operations without a JSON 200 body to mock, left out of
        /// [`every_operation_mocked`].
        pub const NOT_MOCKED: &[&str] = &[#(#not_mocked),*];

        /// What one operation's mocked call gave.
        pub struct Mocked {
            /// The operation's `operationId`.
            pub operation_id: &'static str,
            /// The call's outcome: what the SDK decoded, as JSON (for a
            /// list, the page's `data`, `next_cursor` and `has_more`).
            pub decoded: conduit_sdk::Result<::serde_json::Value>,
            /// The same part of the body the mock answered.
            pub expected: ::serde_json::Value,
            /// Requests the operation's mock matched.
            pub calls: usize,
        }

        /// Mocks every operation of the spec on `server` with its typed
        /// extension (matching its method, path and path parameters) and
        /// a sample of its documented 200 body, then calls it once
        /// through `client`, in spec order.
        pub async fn every_operation_mocked(
            server: &::conduit_sdk::test_util::httpmock::MockServer,
            client: &conduit_sdk::Client,
        ) -> Vec<Mocked> {
            use ::conduit_sdk::raw::types;
            use ::conduit_sdk::test_util::MockServerExt;
            let mut outcomes = Vec::new();
            #(outcomes.push(#mocked);)*
            outcomes
        }
    })
    .map_err(|e| Error::Generate(format!("every_operation_mocked does not parse: {e}")))?;
    Ok(SdkLayer {
        code: prettyplease::unparse(&file),
        operations,
        every_operation: prettyplease::unparse(&every),
        every_operation_mocked: prettyplease::unparse(&mocked),
    })
}

/// The group and action of an operation: from `x-page`, else its first
/// tag and its `operationId`.
pub(crate) fn names(op: &Value, operation_id: &str) -> (String, String) {
    if let Some((group, slug)) = op["x-page"].as_str().and_then(|p| p.split_once('/')) {
        return (snake(group), snake(slug));
    }
    let group = op["tags"][0].as_str().unwrap_or("operations");
    (snake(group), snake(operation_id))
}

/// `list-notes`, `listNotes` or `custom_tools` in snake case.
pub fn snake(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c == '-' || c == ' ' || c == '_' {
            if !out.ends_with('_') {
                out.push('_');
            }
        } else if c.is_ascii_uppercase() {
            if i > 0 && !out.ends_with('_') {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn pascal(snake: &str) -> String {
    snake
        .split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// An identifier, raw when it is a keyword.
pub(crate) fn ident(name: &str) -> syn::Ident {
    syn::parse_str::<syn::Ident>(name).unwrap_or_else(|_| format_ident!("r#{}", name))
}

/// The structs of progenitor's `types` module: fields and their JSON names.
struct Types {
    structs: BTreeMap<String, Vec<Field>>,
    names: BTreeSet<String>,
}

#[derive(Clone)]
struct Field {
    ident: syn::Ident,
    json: String,
    ty: syn::Type,
    doc: Option<String>,
}

impl Types {
    fn read(file: &syn::File) -> Self {
        let mut structs = BTreeMap::new();
        let mut names = BTreeSet::new();
        let module = file.items.iter().find_map(|item| match item {
            syn::Item::Mod(m) if m.ident == "types" => m.content.as_ref().map(|(_, items)| items),
            _ => None,
        });
        for item in module.into_iter().flatten() {
            match item {
                syn::Item::Struct(s) => {
                    names.insert(s.ident.to_string());
                    let fields = s
                        .fields
                        .iter()
                        .filter_map(|f| {
                            let ident = f.ident.clone()?;
                            let json = rename(&f.attrs).unwrap_or_else(|| {
                                ident.to_string().trim_start_matches("r#").to_owned()
                            });
                            Some(Field {
                                ident,
                                json,
                                ty: f.ty.clone(),
                                doc: doc(&f.attrs),
                            })
                        })
                        .collect();
                    structs.insert(s.ident.to_string(), fields);
                }
                syn::Item::Enum(e) => {
                    names.insert(e.ident.to_string());
                }
                syn::Item::Type(t) => {
                    names.insert(t.ident.to_string());
                }
                _ => {}
            }
        }
        Self { structs, names }
    }

    /// `ty` with the `types` module's own names qualified, for use outside it.
    fn qualified(&self, ty: &syn::Type) -> syn::Type {
        struct Qualify<'a>(&'a BTreeSet<String>);
        impl VisitMut for Qualify<'_> {
            fn visit_type_path_mut(&mut self, p: &mut syn::TypePath) {
                visit_mut::visit_type_path_mut(self, p);
                if p.qself.is_none()
                    && p.path.leading_colon.is_none()
                    && p.path.segments.len() == 1
                    && self.0.contains(&p.path.segments[0].ident.to_string())
                {
                    let name = &p.path.segments[0];
                    *p = syn::parse_quote!(types::#name);
                }
            }
        }
        let mut ty = ty.clone();
        Qualify(&self.names).visit_type_mut(&mut ty);
        ty
    }

    /// The struct a surface type string such as `types::X` names.
    fn fields(&self, surface_type: &str) -> Option<&Vec<Field>> {
        self.structs.get(surface_type.strip_prefix("types::")?)
    }
}

fn rename(attrs: &[syn::Attribute]) -> Option<String> {
    attrs
        .iter()
        .filter(|a| a.path().is_ident("serde"))
        .find_map(|a| {
            let mut found = None;
            let _ = a.parse_nested_meta(|meta| {
                if meta.path.is_ident("rename") {
                    let lit: syn::LitStr = meta.value()?.parse()?;
                    found = Some(lit.value());
                } else if meta.input.peek(syn::Token![=]) {
                    let _: syn::Expr = meta.value()?.parse()?;
                }
                Ok(())
            });
            found
        })
}

fn doc(attrs: &[syn::Attribute]) -> Option<String> {
    attrs.iter().find_map(|a| match &a.meta {
        syn::Meta::NameValue(nv) if nv.path.is_ident("doc") => match &nv.value {
            syn::Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Str(s),
                ..
            }) => Some(s.value()),
            _ => None,
        },
        _ => None,
    })
}

/// `Option<T>` → `T`; anything else as it is.
fn unoptional(ty: &syn::Type) -> syn::Type {
    if let syn::Type::Path(p) = ty
        && let Some(last) = p.path.segments.last()
        && last.ident == "Option"
        && let syn::PathArguments::AngleBracketed(args) = &last.arguments
        && let Some(syn::GenericArgument::Type(inner)) = args.args.first()
    {
        return inner.clone();
    }
    ty.clone()
}

fn type_text(ty: &syn::Type) -> String {
    quote!(#ty).to_string().replace(' ', "")
}

fn is_integer(ty: &syn::Type) -> bool {
    let t = type_text(ty);
    [
        "i8",
        "i16",
        "i32",
        "i64",
        "u8",
        "u16",
        "u32",
        "u64",
        "NonZeroU64",
        "NonZeroU32",
    ]
    .iter()
    .any(|n| t == *n || t.ends_with(&format!("::{n}")))
}

fn is_json(ty: &syn::Type) -> bool {
    let t = type_text(ty);
    t.starts_with("::serde_json::Map") || t == "::serde_json::Value"
}

/// The schema's `minimum` and `maximum`, as tokens of `Option<i64>`.
fn range(schema: &Value) -> (TokenStream, TokenStream) {
    let bound = |key: &str| match schema[key].as_i64() {
        Some(v) => quote!(Some(#v)),
        None => quote!(None),
    };
    (bound("minimum"), bound("maximum"))
}

/// What one operation's builder needs.
struct Built<'s> {
    op: &'s crate::surface::Operation,
    raw: &'s Value,
    builder: syn::Ident,
    path_params: Vec<String>,
    query: Vec<(String, syn::Type, Value)>,
    body: Option<(syn::Type, Vec<Field>, Value)>,
    workspace: TokenStream,
    output: Output,
    paged: bool,
}

enum Output {
    /// No body.
    Unit,
    /// The body's bytes, as sent (not JSON).
    Bytes,
    /// The whole body, typed.
    Whole(syn::Type),
    /// The `data` field.
    Data(syn::Type),
    /// A page of `data` items.
    Page {
        item: syn::Type,
        has_more_optional: bool,
        total_count: bool,
    },
}

impl<'s> Built<'s> {
    fn new(
        spec: &'s Value,
        raw: &'s Value,
        op: &'s crate::surface::Operation,
        types: &Types,
    ) -> Result<Self> {
        let builder = format_ident!("{}", op.builder.rsplit("::").next().unwrap_or(&op.builder));
        let params: Vec<Value> = raw["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| resolve(spec, p).clone())
            .collect();
        let setters: BTreeMap<&str, &str> = op
            .params
            .iter()
            .map(|(n, t)| (n.as_str(), t.as_str()))
            .collect();
        let mut path_params = Vec::new();
        for segment in op.path.split('/') {
            if let Some(name) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                path_params.push(name.to_owned());
            }
        }
        let mut query = Vec::new();
        for p in params.iter().filter(|p| p["in"] == "query") {
            let name = p["name"].as_str().unwrap_or_default().to_owned();
            let Some(ty) = setters.get(snake(&name).as_str()) else {
                return Err(Error::Generate(format!(
                    "{}: no builder setter for query parameter {name}",
                    op.operation_id
                )));
            };
            let ty: syn::Type = syn::parse_str(ty)
                .map_err(|e| Error::Generate(format!("{}: {ty}: {e}", op.operation_id)))?;
            let ty = types.qualified(&unoptional(&ty));
            query.push((name, ty, p.clone()));
        }
        let body = match setters.get("body") {
            Some(ty) => {
                let fields: Vec<Field> = types
                    .fields(ty)
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|f| Field {
                        ty: types.qualified(&f.ty),
                        ..f
                    })
                    .collect();
                let schema = resolve(
                    spec,
                    &raw["requestBody"]["content"]["application/json"]["schema"],
                )
                .clone();
                let ty: syn::Type = syn::parse_str(ty)
                    .map_err(|e| Error::Generate(format!("{}: {ty}: {e}", op.operation_id)))?;
                Some((ty, fields, schema))
            }
            None => None,
        };
        let has = |name: &str| query.iter().any(|(n, _, _)| n == name);
        let body_has = |name: &str| {
            body.as_ref()
                .is_some_and(|(_, fields, _)| fields.iter().any(|f| f.json == name))
        };
        let workspace = if has("workspace_id") {
            quote!(Workspace::Query)
        } else if body_has("workspace_id") {
            quote!(Workspace::Body)
        } else if !path_params.is_empty() {
            quote!(Workspace::Implied)
        } else {
            quote!(Workspace::None)
        };
        let fields = types.fields(&op.response);
        let field = |name: &str| fields.and_then(|f| f.iter().find(|f| f.ident == name));
        let output = match (field("data"), field("has_more"), field("next_cursor")) {
            (Some(data), Some(has_more), Some(_)) => {
                let item = match &data.ty {
                    syn::Type::Path(p) => match &p.path.segments.last().map(|s| &s.arguments) {
                        Some(syn::PathArguments::AngleBracketed(a)) => match a.args.first() {
                            Some(syn::GenericArgument::Type(t)) => types.qualified(t),
                            _ => {
                                return Err(Error::Generate(format!(
                                    "{}: data is not a list",
                                    op.operation_id
                                )));
                            }
                        },
                        _ => {
                            return Err(Error::Generate(format!(
                                "{}: data is not a list",
                                op.operation_id
                            )));
                        }
                    },
                    _ => {
                        return Err(Error::Generate(format!(
                            "{}: data is not a list",
                            op.operation_id
                        )));
                    }
                };
                Output::Page {
                    item,
                    has_more_optional: type_text(&has_more.ty).contains("Option"),
                    total_count: field("total_count").is_some(),
                }
            }
            (Some(data), _, _) => Output::Data(types.qualified(&data.ty)),
            _ => {
                let ty: syn::Type = syn::parse_str(&op.response).map_err(|e| {
                    Error::Generate(format!("{}: {}: {e}", op.operation_id, op.response))
                })?;
                let text = type_text(&ty);
                if text == "()" {
                    Output::Unit
                } else if text == "ByteStream" {
                    Output::Bytes
                } else {
                    let ty = if text == "Value" {
                        syn::parse_quote!(::serde_json::Value)
                    } else if text.starts_with("types::") || text.starts_with("::") {
                        ty
                    } else {
                        return Err(Error::Generate(format!(
                            "{}: the response type {} cannot be decoded by the SDK",
                            op.operation_id, op.response
                        )));
                    };
                    Output::Whole(ty)
                }
            }
        };
        let paged = matches!(output, Output::Page { .. }) && has("cursor");
        Ok(Self {
            op,
            raw,
            builder,
            path_params,
            query,
            body,
            workspace,
            output,
            paged,
        })
    }

    /// The group's method and the builder's items.
    fn tokens(&self, group: &str, action: &str) -> Result<(TokenStream, TokenStream)> {
        let op = self.op;
        let builder = &self.builder;
        let action_ident = ident(action);
        let summary = self.raw["summary"].as_str().unwrap_or(&op.operation_id);
        let description = self.raw["description"].as_str().unwrap_or("");
        let line = format!(" `{} {}` ({}).", op.method, op.path, op.operation_id);
        let reference = match self.raw["x-source"]["written-from"].as_str() {
            Some(url) => format!(" Reference: <{url}>."),
            None => String::new(),
        };
        let summary_doc = format!(" {summary}.");
        let summary_doc = summary_doc.replace("..", ".");
        let mut description_docs: Vec<String> =
            description.lines().map(|l| format!(" {l}")).collect();
        if description.trim() == summary.trim() || description.trim().is_empty() {
            description_docs.clear();
        } else {
            // A paragraph of its own: rustdoc shows the summary line alone.
            description_docs.insert(0, String::new());
        }
        let args: Vec<syn::Ident> = self.path_params.iter().map(|p| ident(&snake(p))).collect();
        let arg_names = &self.path_params;
        let required: Vec<&str> = self
            .query
            .iter()
            .filter(|(_, _, p)| p["required"] == true)
            .map(|(n, _, _)| n.as_str())
            .collect();
        let has_body = self.body.is_some();
        let workspace = &self.workspace;
        let (rust_method, operation_id, method, path) =
            (&op.rust_method, &op.operation_id, &op.method, &op.path);
        let const_name = format_ident!("{}", op.rust_method.to_ascii_uppercase());
        let example = format!(
            " ```no_run\n # async fn demo(client: conduit_sdk::Client) -> conduit_sdk::Result<()> {{\n let response = client.{group}().{action}({}){}.send().await?;\n # Ok(()) }}\n ```",
            self.path_params
                .iter()
                .map(|p| format!("{:?}", format!("{p}_123")))
                .collect::<Vec<_>>()
                .join(", "),
            self.example_setters(),
        );
        let method_tokens = quote! {
            #[doc = #summary_doc]
            #(#[doc = #description_docs])*
            ///
            #[doc = #line]
            #[doc = #reference]
            ///
            #[doc = #example]
            pub fn #action_ident(&self, #(#args: impl Into<String>),*) -> #builder<'a> {
                let request = Request::new(self.client, &#const_name, #workspace, #has_body)
                    .requires(&[#(#required),*]);
                #(let request = request.path(#arg_names, #args);)*
                #builder { request }
            }
        };
        let mut setters = Vec::new();
        let mut taken: BTreeSet<String> = ["send", "options", "items", "json_body", "field", "new"]
            .into_iter()
            .map(str::to_owned)
            .collect();
        for (name, ty, param) in &self.query {
            let setter = snake(name);
            taken.insert(setter.clone());
            let setter = ident(&setter);
            let mut docs = vec![format!(" Query parameter `{name}`.")];
            if let Some(d) = param["description"].as_str() {
                docs.extend(d.lines().map(|l| format!(" {l}")));
            }
            let schema = &param["schema"];
            if let Some(values) = schema["enum"].as_array() {
                let values: Vec<String> = values
                    .iter()
                    .filter_map(|v| v.as_str())
                    .map(|v| format!("`{v}`"))
                    .collect();
                docs.push(format!(" One of {}.", values.join(", ")));
            }
            let body = if is_integer(ty) {
                let (min, max) = range(schema);
                quote! {
                    pub fn #setter<V>(mut self, value: V) -> Self
                    where V: TryInto<i64>, V::Error: Display
                    {
                        self.request = self.request.query_int(#name, value, #min, #max);
                        self
                    }
                }
            } else {
                let allowed = enum_values(schema);
                quote! {
                    pub fn #setter<V>(mut self, value: V) -> Self
                    where V: TryInto<#ty>, V::Error: Display
                    {
                        self.request = self.request.query::<#ty, V>(#name, value, &[#(#allowed),*]);
                        self
                    }
                }
            };
            setters.push(quote! { #(#[doc = #docs])* #body });
        }
        let mut body_type = quote!(::serde::de::IgnoredAny);
        if let Some((ty, fields, schema)) = &self.body {
            body_type = quote!(#ty);
            for f in fields {
                let mut setter = snake(&f.json);
                if taken.contains(&setter) {
                    setter = format!("{setter}_field");
                }
                taken.insert(setter.clone());
                let setter = ident(&setter);
                let json = &f.json;
                let required = schema["required"]
                    .as_array()
                    .is_some_and(|r| r.iter().any(|v| v == json.as_str()));
                let mut docs = vec![format!(
                    " Body field `{json}`{}.",
                    if required { " (required)" } else { "" }
                )];
                if let Some(d) = &f.doc {
                    docs.extend(d.lines().map(|l| format!(" {l}")));
                }
                let inner = unoptional(&f.ty);
                let prop = &schema["properties"][json.as_str()];
                let body = if is_json(&inner) {
                    docs.push(" Anything that serializes: a struct, a map, `json!`.".to_owned());
                    quote! {
                        pub fn #setter<T: ::serde::Serialize + ?Sized>(mut self, value: &T) -> Self {
                            self.request = self.request.json(#json, value);
                            self
                        }
                    }
                } else if is_integer(&inner) {
                    let (min, max) = range(prop);
                    quote! {
                        pub fn #setter<V>(mut self, value: V) -> Self
                        where V: TryInto<i64>, V::Error: Display
                        {
                            self.request = self.request.field_int(#json, value, #min, #max);
                            self
                        }
                    }
                } else {
                    let allowed = enum_values(prop);
                    quote! {
                        pub fn #setter<V>(mut self, value: V) -> Self
                        where V: TryInto<#inner>, V::Error: Display
                        {
                            self.request = self.request.field::<#inner, V>(#json, value, &[#(#allowed),*]);
                            self
                        }
                    }
                };
                setters.push(quote! { #(#[doc = #docs])* #body });
            }
            setters.push(quote! {
                /// The whole body at once, from anything that serializes to
                /// a JSON object (the documented body type, a map, `json!`);
                /// replaces fields set before. Checked against the
                /// documented body when sent.
                pub fn json_body<T: ::serde::Serialize>(mut self, body: &T) -> Self {
                    self.request = self.request.body(body);
                    self
                }

                /// A body field the spec does not name, sent as given.
                pub fn field<T: ::serde::Serialize + ?Sized>(mut self, name: &str, value: &T) -> Self {
                    self.request = self.request.json(name, value);
                    self
                }
            });
        }
        let (output, convert) = match &self.output {
            Output::Unit => (quote!(Response<()>), quote!(Ok(reply.unit()))),
            Output::Bytes => (quote!(Response<::bytes::Bytes>), quote!(Ok(reply.bytes()))),
            Output::Whole(ty) => (quote!(Response<#ty>), quote!(reply.decode::<#ty>())),
            Output::Data(ty) => {
                let whole: syn::Type = syn::parse_str(&op.response).unwrap_or_else(|_| ty.clone());
                (
                    quote!(Response<#ty>),
                    quote!(reply.decode::<#whole>().map(|r| r.map(|r| r.data))),
                )
            }
            Output::Page {
                item,
                has_more_optional,
                total_count,
            } => {
                let whole: syn::Type =
                    syn::parse_str(&op.response).unwrap_or_else(|_| item.clone());
                let has_more = if *has_more_optional {
                    quote!(r.has_more.unwrap_or(r.next_cursor.is_some()))
                } else {
                    quote!(r.has_more)
                };
                let total = if *total_count {
                    quote!(r.total_count.map(|n| n as i64))
                } else {
                    quote!(None)
                };
                (
                    quote!(Response<Page<#item>>),
                    quote!(reply.decode::<#whole>().map(|r| r.map(|r| {
                        let has_more = #has_more;
                        Page::new(r.data, r.next_cursor, has_more, #total)
                    }))),
                )
            }
        };
        let send_doc = if matches!(self.output, Output::Page { .. }) && !self.paged {
            &[
                " Sends the request. Invalid input fails here, before",
                " anything is sent.",
                "",
                " One page: the spec gives this list no `cursor` parameter,",
                " so there is no `.items()` stream; `next_cursor` is kept",
                " for when the reference says where it goes.",
            ][..]
        } else {
            &[
                " Sends the request. Invalid input fails here, before",
                " anything is sent.",
            ][..]
        };
        let paged = if self.paged {
            let Output::Page { item, .. } = &self.output else {
                unreachable!("paged outputs are pages")
            };
            quote! {
                impl<'a> #builder<'a> {
                    /// Every item, across pages: the next page is fetched as
                    /// the items run out, through the client's gate and
                    /// retries. A cursor given twice ends the stream with an
                    /// error.
                    pub fn items(self) -> impl ::futures_util::Stream<Item = Result<#item>> + Send + 'a {
                        crate::api::paging::items(self)
                    }
                }

                impl<'a> crate::api::Paged for #builder<'a> {
                    type Item = #item;

                    fn fetch(self, cursor: Option<String>) -> impl ::std::future::Future<Output = Result<#output>> + Send {
                        match cursor {
                            Some(cursor) => self.cursor(cursor),
                            None => self,
                        }
                        .send()
                    }
                }
            }
        } else {
            quote!()
        };
        let builder_doc = format!(
            " A pending `{operation_id}` call: see [`{}::{action}`].",
            pascal(group)
        );
        let builder_tokens = quote! {
            const #const_name: Operation = Operation {
                rust_method: #rust_method,
                operation_id: #operation_id,
                method: #method,
                path: #path,
            };

            #[doc = #builder_doc]
            #[derive(Debug, Clone)]
            #[must_use = "a request does nothing until sent"]
            pub struct #builder<'a> {
                pub(crate) request: Request<'a>,
            }

            impl<'a> #builder<'a> {
                #(#setters)*

                /// Overrides the client's settings for this call only
                /// (timeouts, retries, extra headers).
                pub fn options(mut self, options: CallOptions) -> Self {
                    self.request = self.request.options(options);
                    self
                }

                #(#[doc = #send_doc])*
                pub async fn send(self) -> Result<#output> {
                    let reply = self.request.send::<#body_type>().await?;
                    #convert
                }
            }

            impl<'a> ::std::future::IntoFuture for #builder<'a> {
                type Output = Result<#output>;
                type IntoFuture = ::std::pin::Pin<Box<dyn ::std::future::Future<Output = Self::Output> + Send + 'a>>;

                fn into_future(self) -> Self::IntoFuture {
                    Box::pin(self.send())
                }
            }

            #paged
        };
        Ok((method_tokens, builder_tokens))
    }

    /// `(operationId, outcome)` of calling this operation with sample
    /// path parameters and the body's required fields.
    fn sample_call(&self, group: &str, action: &str) -> TokenStream {
        let group = ident(group);
        let action = ident(action);
        let operation_id = &self.op.operation_id;
        let args = self.path_params.iter().map(|p| format!("{p}_123"));
        let setters = self.sample_setters();
        quote! {
            (#operation_id, client.#group().#action(#(#args),*)#(#setters)*.send().await.map(|_| ()))
        }
    }

    /// A block that mocks this operation with a sample of its documented
    /// 200 body, calls it with the arguments of [`Self::sample_call`],
    /// and gives a `Mocked`; `None` without a JSON 200 body to mock.
    fn mocked_call(&self, spec: &Value, group: &str, action: &str) -> Result<Option<TokenStream>> {
        let operation_id = &self.op.operation_id;
        let group = ident(group);
        let action = ident(action);
        let args: Vec<String> = self
            .path_params
            .iter()
            .map(|p| format!("{p}_123"))
            .collect();
        let call_args = args.iter();
        let when = self.path_params.iter().zip(&args).map(|(p, a)| {
            let p = ident(&snake(p));
            quote!(.#p(#a))
        });
        let when = if self.path_params.is_empty() {
            quote!(let _ = when;)
        } else {
            quote!(when #(#when)*;)
        };
        let mock = format_ident!("{}", self.op.rust_method);
        let schema = resolve(
            spec,
            &self.raw["responses"]["200"]["content"]["application/json"]["schema"],
        );
        if schema.is_null() {
            return Ok(None);
        }
        let body = sample_deep(spec, schema, 0);
        let body_text = body.to_string();
        let response = match self.op.response.as_str() {
            "Value" => "::serde_json::Value",
            other => other,
        };
        let response: syn::Type = syn::parse_str(response)
            .map_err(|e| Error::Generate(format!("{operation_id}: {e}")))?;
        let (decoded, expected) = match &self.output {
            Output::Unit | Output::Bytes => (quote!(::serde_json::Value::Null), Value::Null),
            Output::Whole(_) => (
                quote!(::serde_json::to_value(r.data()).unwrap()),
                body.clone(),
            ),
            Output::Data(_) => (
                quote!(::serde_json::to_value(r.data()).unwrap()),
                body["data"].clone(),
            ),
            Output::Page { .. } => (
                quote!(::serde_json::json!({
                    "data": r.data().items,
                    "next_cursor": r.data().next_cursor,
                    "has_more": r.data().has_more,
                })),
                serde_json::json!({
                    "data": body["data"],
                    "next_cursor": body["next_cursor"],
                    "has_more": body["has_more"].as_bool().unwrap_or(false),
                }),
            ),
        };
        let expected = expected.to_string();
        let setters = self.sample_setters();
        Ok(Some(quote! {{
            let body: #response = ::serde_json::from_str(#body_text)
                .expect(concat!(#operation_id, ": the sample body decodes as the documented type"));
            let mock = server.#mock(|when, then| {
                #when
                then.ok(&body);
            });
            let decoded = client.#group().#action(#(#call_args),*)#(#setters)*.send().await.map(|r| #decoded);
            Mocked {
                operation_id: #operation_id,
                decoded,
                expected: ::serde_json::from_str(#expected).unwrap(),
                calls: mock.calls_async().await,
            }
        }}))
    }

    /// Setters for the body's required fields, with sample values.
    fn sample_setters(&self) -> Vec<TokenStream> {
        let fields: Vec<(String, Value)> = match &self.body {
            Some((_, fields, schema)) => fields
                .iter()
                .filter(|f| {
                    schema["required"]
                        .as_array()
                        .is_some_and(|r| r.iter().any(|v| v == f.json.as_str()))
                        && f.json != "workspace_id"
                })
                .map(|f| {
                    (
                        f.json.clone(),
                        sample(&schema["properties"][f.json.as_str()]),
                    )
                })
                .collect(),
            None => Vec::new(),
        };
        fields
            .iter()
            .map(|(name, value)| {
                let value = value.to_string();
                quote!(.field(#name, &::serde_json::from_str::<::serde_json::Value>(#value).unwrap()))
            })
            .collect()
    }

    /// Setters for the example: the body's required string fields.
    fn example_setters(&self) -> String {
        let Some((_, fields, schema)) = &self.body else {
            return String::new();
        };
        let required: Vec<&str> = schema["required"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str())
            .collect();
        fields
            .iter()
            .filter(|f| required.contains(&f.json.as_str()) && f.json != "workspace_id")
            .filter(|f| type_text(&unoptional(&f.ty)).ends_with("String"))
            .map(|f| format!(".{}(\"…\")", snake(&f.json)))
            .collect()
    }
}

/// The string values of `schema`'s `enum`, if it has one.
fn enum_values(schema: &Value) -> Vec<String> {
    schema["enum"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect()
}

/// A value of `schema`'s type: its example, its first enum value, its
/// minimum, or a plain value of the type.
pub(crate) fn sample(schema: &Value) -> Value {
    if let Some(example) = schema.get("example") {
        return example.clone();
    }
    if let Some(first) = schema["enum"].as_array().and_then(|e| e.first()) {
        return first.clone();
    }
    match schema["type"].as_str() {
        Some("integer") => Value::from(schema["minimum"].as_i64().unwrap_or(1)),
        Some("number") => Value::from(1.0),
        Some("boolean") => Value::Bool(true),
        Some("array") => Value::Array(Vec::new()),
        Some("object") => Value::Object(Default::default()),
        _ => Value::String("sample".into()),
    }
}

/// A whole value of `schema`'s type, `$ref`s followed: an object with
/// every property it names, an array with one item (none below a depth
/// of 8), and [`sample`]'s values for the rest, so that every field of a
/// decoded value is compared.
pub(crate) fn sample_deep(spec: &Value, schema: &Value, depth: usize) -> Value {
    let schema = resolve(spec, schema);
    if schema.get("example").is_some() || schema.get("enum").is_some() {
        return sample(schema);
    }
    match schema["type"].as_str() {
        // A free-form object holds a field, so that it is not skipped as
        // empty when the decoded value is written back.
        Some("object")
            if schema["properties"]
                .as_object()
                .is_none_or(|p| p.is_empty()) =>
        {
            let value = match &schema["additionalProperties"] {
                Value::Object(each) => sample_deep(spec, &Value::Object(each.clone()), depth + 1),
                _ => Value::from("sample"),
            };
            serde_json::json!({ "key": value })
        }
        Some("object") => {
            let fields = schema["properties"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(name, property)| (name.clone(), sample_deep(spec, property, depth + 1)))
                .collect();
            Value::Object(fields)
        }
        Some("array") if depth < 8 => {
            Value::Array(vec![sample_deep(spec, &schema["items"], depth + 1)])
        }
        Some("number") => Value::from(1.5),
        // Any JSON: an object, as the API's bodies are.
        None => Value::Object(Default::default()),
        _ => sample(schema),
    }
}

/// `value`, or what its `$ref` points at.
pub(crate) fn resolve<'a>(spec: &'a Value, value: &'a Value) -> &'a Value {
    match value["$ref"].as_str().and_then(|r| r.strip_prefix("#/")) {
        Some(pointer) => spec
            .pointer(&format!("/{pointer}"))
            .map(|v| resolve(spec, v))
            .unwrap_or(value),
        None => value,
    }
}
