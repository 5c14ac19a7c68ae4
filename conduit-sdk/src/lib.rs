//! Rust SDK for the [Conduit](https://conduit.ai) public API.
//!
//! [`Client`] adds what every call needs on top of the generated raw client
//! (`conduit-api-gen`): bearer auth, retry on 429 with `Retry-After`, typed
//! [`Error`]s and `tracing` spans. It applies to every operation of the spec,
//! including ones a later `cargo xtask regen` adds, which are reachable
//! through [`Client::call`] at once.
//!
//! # Quickstart
//!
//! ```no_run
//! # async fn demo() -> Result<(), conduit_sdk::Error> {
//! use conduit_sdk::Client;
//!
//! // CONDUIT_API_TOKEN, and optionally CONDUIT_BASE_URL, CONDUIT_WORKSPACE_ID
//! // and CONDUIT_MAX_RETRIES, configure the client.
//! let client = Client::from_env()?;
//!
//! let run = client
//!     .custom_tools()
//!     .run("kg77c0dy0mgdpzmqz6tesry8w184002s")
//!     .parameter("order_id", "ord_12345")
//!     .send()
//!     .await?;
//!
//! // A tool whose own code failed is a 200 with `success: false`:
//! // `into_result` turns that into an error carrying its text and logs.
//! let run = run.into_result()?;
//! println!("{:?} in {:?}", run.message(), run.run_time());
//! # Ok(()) }
//! ```
//!
//! Any operation of the raw client, with the same auth, retries and errors:
//!
//! ```no_run
//! # async fn demo(client: conduit_sdk::Client) -> Result<(), conduit_sdk::Error> {
//! let response = client
//!     .call(|raw| raw.run_custom_tool().id("kg77c0dy0mgdpzmqz6tesry8w184002s").send())
//!     .await?;
//! println!("success: {}", response.data.success);
//! # Ok(()) }
//! ```
//!
//! # Features
//!
//! - `test-util`: the `test_util` module, typed mocks and fakes for
//!   testing code that uses the SDK.
//! - `redis`: `ClientBuilder::rate_store`, the rate-limit gate shared
//!   through Redis by every process of a fleet.
//!
//! (Not linked: without the feature they are not there to link to.) Their
//! docs say "Available with the `…` feature"; `cargo doc -p conduit-sdk
//! --all-features` documents them.

// docs.rs builds with nightly and `--cfg docsrs`: each gated item is then
// badged with its feature.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod body;
mod call;
mod client;
mod custom_tools;
mod error;
mod gate;
mod middleware;
mod options;
mod pages;
mod params;
mod retry;
pub mod shown;
#[cfg(feature = "test-util")]
#[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
pub mod test_util;
pub mod time;

pub use client::{Client, ClientBuilder, Proxy};
pub use conduit_api_gen as raw;
pub use custom_tools::{CustomTools, MAX_TOOL_ID_LEN, RunTool, ToolRun};
pub use error::{Error, ErrorKind};
pub use gate::{Rate, RateLimiter, RateLimiterStats};
pub use options::CallOptions;
pub use pages::Pages;
pub use progenitor_client::ResponseValue;
// Types that appear in this crate's signatures, so users need not add and
// pin reqwest themselves.
pub use reqwest;
pub use reqwest::StatusCode;
pub use reqwest::header::{HeaderMap, HeaderValue};
pub use retry::RetryPolicy;

/// For fuzz targets only (`fuzz/`, feature `fuzzing`): internals that
/// deserve inputs no test would think of. Not a stable API.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::retry::parse_retry_after;
}

/// The README's examples, compiled as doc tests so they cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
