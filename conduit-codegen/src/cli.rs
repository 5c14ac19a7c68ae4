//! The `conduit` command line's actions: for every operation of the spec,
//! `conduit <group> <action>` with its parameters described (for help,
//! `--batch` and the checks clap makes) and a function calling the SDK's
//! builder for it (`client.<group>().<action>()`), which checks the input
//! and sends. Written into `conduit-cli/src/generated.rs` by `cargo xtask
//! regen`; the runtime it feeds is `conduit-cli/src/`.
//!
//! Names are the SDK layer's ([`crate::sdk`]) in kebab case: the
//! reference's URL slugs.

use std::collections::BTreeMap;

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use serde_json::Value;

use crate::sdk::{SdkOperation, ident, resolve, sample, snake};
use crate::{Error, Result};

/// The operation whose `KEY=VALUE` items are the tool's `parameters`
/// rather than body fields, as `tools run` has always taken them.
pub const ITEMS_ARE_PARAMETERS: &str = "runCustomTool";

/// The generated actions and the invocations that exercise them.
#[derive(Debug, Clone)]
pub struct CliLayer {
    /// Formatted Rust source of `conduit-cli/src/generated.rs`.
    pub code: String,
    /// Formatted Rust source of `INVOCATIONS`: each action's arguments
    /// with sample path parameters and required body fields, for the test
    /// against Prism (`conduit-cli/tests/every_action/invocations.rs`).
    pub every_action: String,
    /// How many actions there are.
    pub count: usize,
}

/// Generates the CLI's actions for `spec` (as merged) from the SDK
/// layer's `operations`.
pub fn generate(spec: &Value, operations: &[SdkOperation]) -> Result<CliLayer> {
    let mut spec = spec.clone();
    crate::normalize::normalize(&mut spec);
    let mut groups: BTreeMap<String, (String, Vec<TokenStream>)> = BTreeMap::new();
    let mut functions = Vec::new();
    let mut invocations = Vec::new();
    for op in operations {
        let raw = &spec["paths"][&op.path][op.method.to_ascii_lowercase()];
        let action = Action::read(&spec, raw, op)?;
        let entry = groups.entry(kebab(&op.group)).or_default();
        let tag_about = group_about(&spec, raw);
        if !tag_about.is_empty() {
            entry.0 = tag_about;
        } else if let Some(summary) = raw["summary"].as_str() {
            // No tag described (the reference shows none for the page):
            // the group says what its actions do.
            if !entry.0.is_empty() {
                entry.0.push_str("; ");
            }
            entry.0.push_str(summary.trim_end_matches('.'));
        }
        entry.1.push(action.table_entry());
        functions.push(action.function());
        invocations.push(action.invocation());
    }
    for (about, _) in groups.values_mut() {
        if !about.is_empty() && !about.ends_with('.') {
            about.push('.');
        }
    }
    let group_entries = groups.iter().map(|(name, (about, actions))| {
        quote! {
            Group {
                name: #name,
                about: #about,
                actions: &[#(#actions),*],
            }
        }
    });
    let code: syn::File = syn::parse2(quote! {
        use conduit_sdk::Client;

        use crate::action::{Action, Args, Group, Kind, Param, Prepared};

        /// Every group of actions, by name; each action in spec order.
        pub static GROUPS: &[Group] = &[#(#group_entries),*];

        #(#functions)*
    })
    .map_err(|e| Error::Generate(format!("the CLI's actions do not parse: {e}")))?;
    let count = invocations.len();
    let every: syn::File = syn::parse2(quote! {
        /// How many actions [`INVOCATIONS`] runs.
        pub const ACTION_COUNT: usize = #count;

        /// Every action's arguments, after the global options: sample path
        /// parameters and the body's required fields. `workspace_id` comes
        /// from `--workspace`.
        pub const INVOCATIONS: &[&[&str]] = &[#(&[#(#invocations),*]),*];
    })
    .map_err(|e| Error::Generate(format!("INVOCATIONS does not parse: {e}")))?;
    Ok(CliLayer {
        code: prettyplease::unparse(&code),
        every_action: prettyplease::unparse(&every),
        count,
    })
}

/// `custom_tools` as the command line spells it: `custom-tools`.
fn kebab(snake: &str) -> String {
    snake.replace('_', "-")
}

/// What the group's first tag says of it.
fn group_about(spec: &Value, op: &Value) -> String {
    let tag = op["tags"][0].as_str().unwrap_or_default();
    spec["tags"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|t| t["name"] == tag)
        .and_then(|t| t["description"].as_str())
        .map(first_sentence)
        .unwrap_or_default()
}

fn first_sentence(text: &str) -> String {
    let line = text.lines().next().unwrap_or_default().trim();
    match line.find(". ") {
        Some(end) => line[..=end].to_owned(),
        None => line.to_owned(),
    }
}

/// One parameter as the generated table describes it.
struct Param {
    name: String,
    kind: &'static str,
    required: bool,
    description: String,
    values: Vec<String>,
    min: Option<i64>,
    max: Option<i64>,
    /// The SDK setter taking it typed (an integer's, with its range
    /// check), for a body field; query parameters always have one.
    setter: Option<String>,
    /// A value of its type, for the sample invocation.
    sample: Value,
}

impl Param {
    fn read(name: &str, schema: &Value, required: bool, description: Option<&str>) -> Self {
        let kind = match schema["type"].as_str() {
            Some("integer") => "Integer",
            Some("number") => "Number",
            Some("boolean") => "Boolean",
            Some("array") => "Array",
            Some("object") => "Object",
            Some("string") => "String",
            _ => "Any",
        };
        let description = description
            .or(schema["description"].as_str())
            .map(first_sentence)
            .unwrap_or_default();
        Self {
            name: name.to_owned(),
            kind,
            required,
            description,
            values: schema["enum"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            min: schema["minimum"].as_i64(),
            max: schema["maximum"].as_i64(),
            setter: None,
            sample: sample(schema),
        }
    }

    fn tokens(&self) -> TokenStream {
        let Param {
            name,
            required,
            description,
            values,
            ..
        } = self;
        let kind = format_ident!("{}", self.kind);
        let bound = |b: Option<i64>| match b {
            Some(v) => quote!(Some(#v)),
            None => quote!(None),
        };
        let (min, max) = (bound(self.min), bound(self.max));
        quote! {
            Param {
                name: #name,
                kind: Kind::#kind,
                required: #required,
                description: #description,
                values: &[#(#values),*],
                min: #min,
                max: #max,
            }
        }
    }
}

/// One operation as an action.
struct Action<'s> {
    op: &'s SdkOperation,
    summary: String,
    description: String,
    path: Vec<Param>,
    query: Vec<Param>,
    /// `None` for an operation without a body.
    body: Option<Vec<Param>>,
}

impl<'s> Action<'s> {
    fn read(spec: &Value, raw: &Value, op: &'s SdkOperation) -> Result<Self> {
        let params: Vec<&Value> = raw["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| resolve(spec, p))
            .collect();
        let param = |p: &Value| {
            Param::read(
                p["name"].as_str().unwrap_or_default(),
                resolve(spec, &p["schema"]),
                p["required"] == true || p["in"] == "path",
                p["description"].as_str(),
            )
        };
        let mut path = Vec::new();
        for name in &op.path_params {
            let p = params
                .iter()
                .find(|p| p["in"] == "path" && p["name"] == name.as_str())
                .ok_or_else(|| {
                    Error::Generate(format!(
                        "{}: path parameter {name} is not described",
                        op.operation_id
                    ))
                })?;
            path.push(param(p));
        }
        let query: Vec<Param> = params
            .iter()
            .filter(|p| p["in"] == "query")
            .map(|p| param(p))
            .collect();
        let body = raw["requestBody"]["content"]["application/json"]["schema"].clone();
        let body = if body.is_null() {
            None
        } else {
            let schema = resolve(spec, &body);
            let required: Vec<&str> = schema["required"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            // The SDK's setter names: a body field shadowed by a query
            // parameter or a builder method takes `_field`.
            let mut taken: Vec<String> = ["send", "options", "items", "json_body", "field", "new"]
                .into_iter()
                .map(str::to_owned)
                .chain(query.iter().map(|q| snake(&q.name)))
                .collect();
            let mut fields = Vec::new();
            for (name, prop) in schema["properties"].as_object().into_iter().flatten() {
                let prop = resolve(spec, prop);
                let mut field = Param::read(name, prop, required.contains(&name.as_str()), None);
                let mut setter = snake(name);
                if taken.contains(&setter) {
                    setter.push_str("_field");
                }
                taken.push(setter.clone());
                if field.kind == "Integer" {
                    field.setter = Some(setter);
                }
                fields.push(field);
            }
            Some(fields)
        };
        let summary = raw["summary"]
            .as_str()
            .unwrap_or(&op.operation_id)
            .trim_end_matches('.')
            .to_owned();
        let description = raw["description"].as_str().unwrap_or_default().to_owned();
        Ok(Self {
            op,
            summary,
            description,
            path,
            query,
            body,
        })
    }

    fn function_name(&self) -> syn::Ident {
        format_ident!("{}_{}", self.op.group, self.op.action)
    }

    fn table_entry(&self) -> TokenStream {
        let name = kebab(&self.op.action);
        let (summary, description) = (&self.summary, &self.description);
        let line = format!("{} {}", self.op.method, self.op.path);
        let path = self.path.iter().map(Param::tokens);
        let query = self.query.iter().map(Param::tokens);
        let body = match &self.body {
            Some(fields) => {
                let fields = fields.iter().map(Param::tokens);
                quote!(Some(&[#(#fields),*]))
            }
            None => quote!(None),
        };
        let (items_are_parameters, list) =
            (self.op.operation_id == ITEMS_ARE_PARAMETERS, self.op.paged);
        let call = self.function_name();
        quote! {
            Action {
                name: #name,
                summary: #summary,
                description: #description,
                request: #line,
                path: &[#(#path),*],
                query: &[#(#query),*],
                body: #body,
                list: #list,
                items_are_parameters: #items_are_parameters,
                call: #call,
            }
        }
    }

    /// `fn <group>_<action>(client, args)`: the SDK builder with every
    /// argument given, ready to send.
    fn function(&self) -> TokenStream {
        let name = self.function_name();
        let group = ident(&self.op.group);
        let action = ident(&self.op.action);
        let path = self.path.iter().map(|p| {
            let name = &p.name;
            quote!(args.path(#name)?)
        });
        let query = self.query.iter().map(|p| {
            let (name, setter) = (&p.name, ident(&snake(&p.name)));
            if p.kind == "Integer" {
                quote! {
                    if let Some(v) = args.integer(#name)? {
                        call = call.#setter(v);
                    }
                }
            } else {
                quote! {
                    if let Some(v) = args.text(#name)? {
                        call = call.#setter(v.as_str());
                    }
                }
            }
        });
        let body = match &self.body {
            Some(fields) => {
                let typed = fields.iter().filter_map(|f| {
                    let setter = ident(f.setter.as_ref()?);
                    let name = &f.name;
                    Some(quote!(#name => call.#setter(crate::action::integer(&name, &value)?),))
                });
                quote! {
                    if let Some(body) = args.take_body() {
                        call = call.json_body(&body);
                    }
                    for (name, value) in args.fields() {
                        call = match name.as_str() {
                            #(#typed)*
                            _ => call.field(&name, &value),
                        };
                    }
                }
            }
            None => quote!(args.no_body()?;),
        };
        let prepared = if self.op.operation_id == ITEMS_ARE_PARAMETERS {
            quote!(Prepared::tool_run(call))
        } else if self.op.paged {
            quote!(Prepared::list(call))
        } else {
            quote!(Prepared::one(call))
        };
        quote! {
            fn #name(client: &Client, mut args: Args) -> Result<Prepared<'_>, String> {
                let mut call = client.#group().#action(#(#path),*);
                #(#query)*
                #body
                args.done()?;
                Ok(#prepared)
            }
        }
    }

    /// Sample arguments: path parameters, then the required body fields
    /// (`workspace_id` aside) as `KEY:=JSON`.
    fn invocation(&self) -> Vec<String> {
        let mut args = vec![kebab(&self.op.group), kebab(&self.op.action)];
        args.extend(self.path.iter().map(|p| format!("{}_123", p.name)));
        for field in self.body.iter().flatten() {
            if field.required && field.name != "workspace_id" {
                args.push(format!("{}:={}", field.name, field.sample));
            }
        }
        args
    }
}
