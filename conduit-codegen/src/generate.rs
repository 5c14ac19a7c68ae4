//! Running progenitor over a (merged) spec.

use std::panic::{AssertUnwindSafe, catch_unwind};

use proc_macro2::TokenStream;
use progenitor::{GenerationSettings, Generator, HooksMode, InterfaceStyle, TagStyle};
use quote::quote;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::{Error, Result, Surface, normalize::normalize};

/// The outcome of generating the raw client.
#[derive(Debug)]
pub struct Generated {
    /// Formatted Rust source for `conduit-api-gen`: the client, which takes
    /// its types from `conduit-api-types`.
    pub code: String,
    /// Formatted Rust source for `conduit-api-types`: the spec's schemas
    /// (progenitor's `types` module). A crate of their own, they need no
    /// HTTP stack, so an application's build compiles them alongside it
    /// rather than after it.
    pub types: String,
    /// Formatted Rust source of the typed `httpmock` extensions for the
    /// same operations (`conduit-api-gen`'s `mock` module).
    pub mock: String,
    /// The SDK's per-operation layer (`conduit-sdk/src/api/generated.rs`).
    pub sdk: crate::sdk::SdkLayer,
    /// The reviewable summary of what `code` offers.
    pub surface: Surface,
    /// What normalisation changed, one line each.
    pub notes: Vec<String>,
}

/// Normalises, validates and generates the raw client for `doc`.
pub fn generate(doc: &Value) -> Result<Generated> {
    let mut normalized = doc.clone();
    let notes = normalize(&mut normalized);
    let spec: openapiv3::OpenAPI =
        serde_json::from_value(normalized.clone()).map_err(|e| Error::Invalid(e.to_string()))?;
    validate(&spec)?;

    let mut settings = GenerationSettings::default();
    settings
        .with_interface(InterfaceStyle::Builder)
        .with_tag(TagStyle::Merged)
        .with_derive("schemars::JsonSchema")
        // Every request goes through `crate::Hooks`, which is how the SDK
        // applies auth, retries and tracing to operations it has never seen.
        .with_inner_type(quote!(crate::Hooks))
        .with_hooks(HooksMode::Expected);
    // Progenitor asserts on constructs it does not support; report those as
    // errors naming the spec rather than crashing the build script.
    let (tokens, mock) = catch_unwind(AssertUnwindSafe(|| {
        let client = Generator::new(&settings).generate_tokens(&spec)?;
        // Mocks for users' tests, typed by the same spec: each operation's
        // request matchers and documented responses (oxide.rs ships them as
        // oxide-httpmock).
        let mock = Generator::new(&settings).httpmock(&spec, "crate")?;
        Ok::<_, progenitor::Error>((client, mock))
    }))
    .map_err(|panic| Error::Generate(format!("progenitor panicked: {}", panic_text(&panic))))?
    .map_err(|e| Error::Generate(e.to_string()))?;
    let mock: syn::File =
        syn::parse2(mock).map_err(|e| Error::Generate(format!("unparsable mocks: {e}")))?;

    let mut file: syn::File =
        syn::parse2(tokens).map_err(|e| Error::Generate(format!("unparsable output: {e}")))?;
    crate::api_version::strip(&mut file)?;
    let urls = crate::request_url::rewrite(&mut file)?;
    let surface = Surface::from_generated(&file, &spec, fingerprint(doc))?;
    let sdk = crate::sdk::generate(&normalized, &file, &surface)?;
    for (what, n, module) in [("request URL", urls, "request_url")] {
        if n != surface.operations.len() {
            return Err(Error::Generate(format!(
                "progenitor's {what}: {n} rewritten for {} operations \
                 (see conduit-codegen/src/{module}.rs)",
                surface.operations.len()
            )));
        }
    }
    let table: syn::File = syn::parse2(operation_table(&surface))
        .map_err(|e| Error::Generate(format!("operation table: {e}")))?;
    file.items.extend(table.items);
    let mut types = split_types(&mut file)?;
    crate::json_schema::gate(&mut types)?;
    Ok(Generated {
        code: prettyplease::unparse(&file),
        types: prettyplease::unparse(&types),
        mock: mock_doc_links(&prettyplease::unparse(&mock)),
        sdk,
        surface,
        notes,
    })
}

/// Moves progenitor's `pub mod types` out of `file` into a file of its own,
/// leaving `pub use conduit_api_types::types;` in its place: the client's
/// `crate::types::..` paths, and its users' `conduit_api_gen::types::..`,
/// stay as they were.
fn split_types(file: &mut syn::File) -> Result<syn::File> {
    let at = file
        .items
        .iter()
        .position(|item| matches!(item, syn::Item::Mod(m) if m.ident == "types"))
        .ok_or_else(|| Error::Generate("progenitor's output has no `types` module".into()))?;
    let types = std::mem::replace(
        &mut file.items[at],
        syn::parse_quote!(
            pub use conduit_api_types::types;
        ),
    );
    Ok(syn::File {
        shebang: None,
        attrs: Vec::new(),
        items: vec![types],
    })
}

/// The mocks' source with progenitor's doc links to `::httpmock::Type` or
/// `::httpmock::Type::method` pointing at httpmock's docs on docs.rs (the
/// version conduit-api-gen depends on): rustdoc, documenting the mocks as
/// conduit-sdk's `test_util` without their dependencies, had nowhere to
/// link them and wrote the paths out as the links' addresses.
fn mock_doc_links(source: &str) -> String {
    const FROM: &str = "](::httpmock::";
    let mut out = String::with_capacity(source.len());
    let mut rest = source;
    while let Some(at) = rest.find(FROM) {
        let after = &rest[at + FROM.len()..];
        let Some(end) = after.find(')') else { break };
        out.push_str(&rest[..at]);
        let (item, method) = after[..end].split_once("::").unwrap_or((&after[..end], ""));
        out.push_str("](https://docs.rs/httpmock/0.9/httpmock/struct.");
        out.push_str(item);
        out.push_str(".html");
        if !method.is_empty() {
            out.push_str("#method.");
            out.push_str(method);
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// `pub const OPERATIONS`, the table runtime middleware looks up: every
/// operation's Rust method, spec `operationId`, HTTP method and path
/// template, sorted by Rust method so lookups can binary search.
fn operation_table(surface: &Surface) -> TokenStream {
    let mut sorted: Vec<_> = surface.operations.iter().collect();
    sorted.sort_by(|a, b| a.rust_method.cmp(&b.rust_method));
    let rows = sorted.into_iter().map(|op| {
        let (rust_method, operation_id, method, path) =
            (&op.rust_method, &op.operation_id, &op.method, &op.path);
        quote! {
            crate::Operation {
                rust_method: #rust_method,
                operation_id: #operation_id,
                method: #method,
                path: #path,
            }
        }
    });
    quote! {
        /// Every operation of the vendored spec, sorted by `rust_method`, for
        /// middleware that must treat all of them alike (retry safety, path
        /// checks, tracing).
        pub const OPERATIONS: &[crate::Operation] = &[#(#rows),*];
    }
}

/// SHA-256 of the document's JSON form: any edit to the spec changes it.
pub fn fingerprint(doc: &Value) -> String {
    let digest = Sha256::digest(doc.to_string().as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn validate(spec: &openapiv3::OpenAPI) -> Result<()> {
    if !spec.openapi.starts_with("3.0") {
        return Err(Error::Invalid(format!(
            "OpenAPI {} is not supported; progenitor takes 3.0.x",
            spec.openapi
        )));
    }
    let mut seen = std::collections::BTreeMap::new();
    for (path, method, op) in spec.operations() {
        let label = format!("{} {path}", method.to_ascii_uppercase());
        let Some(id) = &op.operation_id else {
            return Err(Error::Invalid(format!("{label} has no operationId")));
        };
        if let Some(first) = seen.insert(id.clone(), label.clone()) {
            return Err(Error::Invalid(format!(
                "operationId {id} is used by both {first} and {label}"
            )));
        }
    }
    Ok(())
}

fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "unknown panic".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Source;

    fn vendored() -> Value {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        Source::load(&root.join(crate::VENDORED_SPEC)).unwrap().doc
    }

    #[test]
    fn error_responses_get_their_own_type() {
        let generated = generate(&vendored()).unwrap();
        let ops = &generated.surface.operations;
        let op = ops
            .iter()
            .find(|op| op.operation_id == "runCustomTool")
            .unwrap();
        assert_eq!(op.response, "types::RunCustomToolResponse");
        // Without normalisation progenitor types errors as the success body.
        assert_eq!(op.error, "types::ApiError");
        assert!(generated.types.contains("pub struct ApiError"));
        // The pages share the run page's error shape, so every operation has it.
        assert!(ops.iter().all(|op| op.error == "types::ApiError"));
    }

    #[test]
    fn the_mocks_link_httpmock_on_docs_rs() {
        let mock = generate(&vendored()).unwrap().mock;
        assert!(!mock.contains("](::httpmock::"), "{mock}");
        let docs = "https://docs.rs/httpmock/0.9/httpmock";
        assert!(mock.contains(&format!("[`When`]({docs}/struct.When.html)")));
        assert!(mock.contains(&format!(
            "[`mock()`]({docs}/struct.MockServer.html#method.mock)"
        )));
        // Code naming httpmock is left alone.
        assert!(mock.contains("-> ::httpmock::Mock<'_>"));
    }

    #[test]
    fn the_types_are_a_file_apart_that_the_client_re_exports() {
        let generated = generate(&vendored()).unwrap();
        let types: syn::File = syn::parse_str(&generated.types).unwrap();
        assert!(
            matches!(&types.items[..], [syn::Item::Mod(m)] if m.ident == "types"),
            "the types file holds the types module alone"
        );
        assert!(generated.types.contains("pub struct RunCustomToolResponse"));
        assert!(generated.code.contains("pub use conduit_api_types::types;"));
        assert!(!generated.code.contains("pub mod types"));
        assert!(!generated.code.contains("pub struct RunCustomToolResponse"));
    }

    #[test]
    fn the_operation_table_lists_every_operation() {
        let generated = generate(&vendored()).unwrap();
        assert!(generated.code.contains("pub const OPERATIONS"));
        assert!(generated.code.contains("\"/v1/custom-tools/{id}/run\""));
    }

    #[test]
    fn generated_requests_carry_no_api_version_header() {
        let mut doc = vendored();
        // An operation with a header parameter keeps its own header.
        let op = &mut doc["paths"]["/v1/custom-tools/{id}/run"]["post"];
        op["parameters"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({
                "name": "Idempotency-Key", "in": "header", "required": false,
                "schema": { "type": "string" }
            }));
        let generated = generate(&doc).unwrap();
        assert!(
            !generated.code.contains("api-version"),
            "{}",
            generated.code
        );
        let code = generated.code.replace(char::is_whitespace, "");
        assert!(code.contains("HeaderMap::with_capacity(1usize"), "{code}");
        assert!(generated.code.contains("\"Idempotency-Key\""));
    }

    #[test]
    fn every_request_url_is_built_from_the_parsed_base() {
        let mut doc = vendored();
        // A second operation, with an integer path parameter and a query.
        doc["paths"]["/v1/things/{thing_id}/items/{n}"] = serde_json::json!({ "get": {
            "operationId": "getThingItem",
            "parameters": [
                { "name": "thing_id", "in": "path", "required": true, "schema": { "type": "string" } },
                { "name": "n", "in": "path", "required": true, "schema": { "type": "integer" } },
                { "name": "limit", "in": "query", "required": false, "schema": { "type": "integer" } }
            ],
            "responses": { "204": { "description": "none" } }
        }});
        let generated = generate(&doc).unwrap();
        let code = generated.code.replace(char::is_whitespace, "");
        assert_eq!(
            code.matches("crate::request_url::of(").count(),
            generated.surface.operations.len(),
            "{code}"
        );
        assert!(!code.contains("client.baseurl"), "{code}");
        assert!(
            code.contains(r#"format_args!("/v1/things/{}/items/{}",crate::request_url::Segment(&thing_id),crate::request_url::Segment(&n))"#),
            "{code}"
        );
    }

    #[test]
    fn duplicate_operation_ids_are_refused() {
        let mut doc = vendored();
        let op = doc["paths"]["/v1/custom-tools/{id}/run"]["post"].clone();
        doc["paths"]["/v1/other/{id}"] = serde_json::json!({ "post": op });
        let err = generate(&doc).unwrap_err();
        assert!(
            err.to_string()
                .contains("operationId runCustomTool is used by both"),
            "{err}"
        );
    }

    #[test]
    fn openapi_3_1_is_refused_clearly() {
        let mut doc = vendored();
        doc["openapi"] = "3.1.0".into();
        let err = generate(&doc).unwrap_err();
        assert!(err.to_string().contains("3.1.0"), "{err}");
    }

    #[test]
    fn the_fingerprint_follows_any_edit() {
        let doc = vendored();
        let mut edited = doc.clone();
        edited["info"]["description"] = "edited".into();
        assert_ne!(fingerprint(&doc), fingerprint(&edited));
        assert_eq!(fingerprint(&doc), fingerprint(&doc.clone()));
    }
}
