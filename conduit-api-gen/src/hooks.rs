//! The one seam between the generated client and hand-written behaviour.
//!
//! Progenitor routes every operation through `ClientHooks`; implementing it
//! here once, in terms of a [`Middleware`] object, means an operation added
//! by regeneration gets the SDK's auth, retries and tracing with no new code.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};

use progenitor_client::{ClientHooks, ClientInfo, Error, OperationInfo};

use crate::{Client, OPERATIONS};

/// A boxed, sendable future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Static facts about one operation of the spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Operation {
    /// The `Client` method, such as `run_custom_tool`. Progenitor passes it
    /// to the hooks as `OperationInfo::operation_id`; here "operation id"
    /// always means the spec's name, below.
    pub rust_method: &'static str,
    /// The spec's `operationId`, such as `runCustomTool`.
    pub operation_id: &'static str,
    /// HTTP method, upper case.
    pub method: &'static str,
    /// Path template, such as `/v1/custom-tools/{id}/run`.
    pub path: &'static str,
}

impl Operation {
    /// The operation whose Rust method is `rust_method`, if the spec has it.
    pub fn find(rust_method: &str) -> Option<&'static Operation> {
        OPERATIONS
            .binary_search_by(|op| op.rust_method.cmp(rust_method))
            .ok()
            .map(|i| &OPERATIONS[i])
    }
}

/// Behaviour applied to every request of the generated client.
pub trait Middleware: Send + Sync + 'static {
    /// Edits or refuses a request before it is sent. A refusal becomes
    /// `Error::InvalidRequest` and nothing is sent.
    fn prepare(
        &self,
        request: &mut reqwest::Request,
        op: Option<&'static Operation>,
    ) -> Result<(), String>;

    /// Sends the request, and any retries, on `client`.
    fn execute<'a>(
        &'a self,
        client: &'a reqwest::Client,
        request: reqwest::Request,
        op: Option<&'static Operation>,
    ) -> BoxFuture<'a, reqwest::Result<reqwest::Response>>;
}

/// The generated client's inner value: the middleware, if any.
#[derive(Clone, Default)]
pub struct Hooks {
    middleware: Option<Arc<dyn Middleware>>,
    /// The client's base URL, parsed on its first request.
    pub(crate) base: OnceLock<crate::request_url::Base>,
}

impl Hooks {
    /// Hooks that run `middleware` on every request.
    pub fn new(middleware: Arc<dyn Middleware>) -> Self {
        Self {
            middleware: Some(middleware),
            base: OnceLock::new(),
        }
    }
}

impl fmt::Debug for Hooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hooks")
            .field("middleware", &self.middleware.is_some())
            .finish()
    }
}

impl ClientHooks<Hooks> for Client {
    async fn pre<E>(
        &self,
        request: &mut reqwest::Request,
        info: &OperationInfo,
    ) -> Result<(), Error<E>> {
        match &self.inner().middleware {
            Some(m) => m
                .prepare(request, Operation::find(info.operation_id))
                .map_err(Error::InvalidRequest),
            None => Ok(()),
        }
    }

    async fn exec(
        &self,
        request: reqwest::Request,
        info: &OperationInfo,
    ) -> reqwest::Result<reqwest::Response> {
        match &self.inner().middleware {
            Some(m) => {
                m.execute(self.client(), request, Operation::find(info.operation_id))
                    .await
            }
            None => self.client().execute(request).await,
        }
    }
}
