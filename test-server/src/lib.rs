//! One loopback HTTP/1.1 server for the workspace's tests, fuzz target and
//! benchmark, so that only one piece of code parses HTTP by hand.
//!
//! [`Server::start`] binds `127.0.0.1:0` and serves keep-alive connections
//! on its own thread with its own current-thread Tokio runtime: it needs
//! nothing from the caller's runtime, and its work does not queue behind the
//! caller's tasks. It reads each request head and its `Content-Length` body,
//! hands the [`Request`] to the caller's [`Respond`] and writes the
//! [`Reply`]. Requests it cannot read (chunked bodies, oversized heads or
//! bodies, malformed heads) are answered with a 4xx or 5xx and the
//! connection is closed; they never reach the responder. Dropping the
//! server stops it and closes every connection.
//!
//! ```
//! use conduit_test_server::{Bytes, Reply, Request, Server, response_head};
//!
//! let ok = Bytes::from(response_head(200, "OK", &["content-length: 0"]));
//! let server = Server::start(move |_: &Request<'_>| Reply::KeepAlive(ok.clone())).unwrap();
//! assert!(server.url().starts_with("http://127.0.0.1:"));
//! ```

mod connection;
mod parse;
mod reply;
mod request;
mod server;

/// The cheap-to-clone bytes that replies are made of.
pub use bytes::Bytes;
pub use reply::{Reply, response_head};
pub use request::{Exchange, Request};
pub use server::Server;

/// What the server answers: the caller's behaviour.
///
/// Implemented for closures `Fn(&Request) -> Reply` and for [`Reply`]
/// itself (the same reply to every request).
pub trait Respond: Send + Sync + 'static {
    /// The reply to `request`. Called on the server's thread for each
    /// request in turn, so it should be quick and must not block.
    fn respond(&self, request: &Request<'_>) -> Reply;
}

impl<F> Respond for F
where
    F: Fn(&Request<'_>) -> Reply + Send + Sync + 'static,
{
    fn respond(&self, request: &Request<'_>) -> Reply {
        self(request)
    }
}

impl Respond for Reply {
    fn respond(&self, _: &Request<'_>) -> Reply {
        self.clone()
    }
}

#[cfg(test)]
mod tests;
