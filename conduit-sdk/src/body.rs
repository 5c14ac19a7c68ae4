//! The response body as the SDK reads it: bounded in size, and failing when
//! it stops delivering bytes (stalled-stream protection, as in the AWS
//! SDKs), so that a broken server cannot hold a call until the per-attempt
//! timeout or fill memory.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body is longer than `max_response_bytes`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TooLarge {
    limit: usize,
}

impl fmt::Display for TooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the response body exceeds max_response_bytes ({} bytes) and was not read",
            self.limit
        )
    }
}

impl std::error::Error for TooLarge {}

/// The body stopped delivering bytes for longer than the limit.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stalled {
    after: Duration,
}

impl fmt::Display for Stalled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the response body stalled: no bytes for {:?} (read_stall_timeout)",
            self.after
        )
    }
}

impl std::error::Error for Stalled {}

/// Wraps a response's body: reading more than `max_bytes` fails (bodies
/// whose declared length is within it are not counted again: hyper
/// enforces the declared length), and so does waiting more than `stall`
/// for the next bytes. The stall timer is only made when a read has to
/// wait, so a body that arrives with its head costs no timer.
pub(crate) fn guard(
    response: reqwest::Response,
    max_bytes: usize,
    stall: Duration,
) -> reqwest::Response {
    let url = response.url().clone();
    let (parts, body) = guarded(response, max_bytes, stall);
    with_url(
        http::Response::from_parts(parts, reqwest::Body::wrap(body)),
        url,
    )
}

/// Reads the whole body of `response` under the same guard, and gives back
/// its parts and the bytes, or the parts and a body that fails as the read
/// did (so that whoever reads it next sees the same error).
pub(crate) async fn read_guarded(
    response: reqwest::Response,
    max_bytes: usize,
    stall: Duration,
) -> (http::response::Parts, Result<Bytes, reqwest::Body>) {
    let (parts, mut body) = guarded(response, max_bytes, stall);
    let mut chunks: Vec<Bytes> = Vec::new();
    loop {
        match std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
            None => break,
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    chunks.push(data);
                }
            }
            Some(Err(e)) => return (parts, Err(reqwest::Body::wrap(Failed(Some(e))))),
        }
    }
    let bytes = match chunks.len() {
        0 => Bytes::new(),
        1 => chunks.pop().unwrap_or_default(),
        _ => chunks.concat().into(),
    };
    (parts, Ok(bytes))
}

/// The response's parts and its body behind the guard.
fn guarded(
    response: reqwest::Response,
    max_bytes: usize,
    stall: Duration,
) -> (http::response::Parts, Guarded) {
    let count = response
        .content_length()
        .is_none_or(|len| len > max_bytes as u64);
    let (parts, body) = http::Response::<reqwest::Body>::from(response).into_parts();
    let body = Guarded {
        inner: body,
        limit: max_bytes,
        left: count.then_some(max_bytes),
        stall,
        timer: None,
    };
    (parts, body)
}

/// A body that fails once with the error a read met.
struct Failed(Option<BoxError>);

impl Body for Failed {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        Poll::Ready(self.0.take().map(Err))
    }
}

/// A reqwest response from parts, keeping `url` (reqwest keeps a response's
/// URL in an extension only its builder can set).
pub(crate) fn with_url(
    mut response: http::Response<reqwest::Body>,
    url: reqwest::Url,
) -> reqwest::Response {
    if let Ok(marker) = reqwest::ResponseBuilderExt::url(http::Response::builder(), url).body(()) {
        response
            .extensions_mut()
            .extend(marker.into_parts().0.extensions);
    }
    reqwest::Response::from(response)
}

struct Guarded {
    inner: reqwest::Body,
    limit: usize,
    /// Bytes still allowed, when counted.
    left: Option<usize>,
    stall: Duration,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Body for Guarded {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                this.timer = None;
                let frame = match frame {
                    Some(Ok(frame)) => frame,
                    Some(Err(e)) => return Poll::Ready(Some(Err(e.into()))),
                    None => return Poll::Ready(None),
                };
                if let (Some(left), Some(data)) = (this.left.as_mut(), frame.data_ref()) {
                    match left.checked_sub(data.len()) {
                        Some(rest) => *left = rest,
                        None => {
                            let limit = this.limit;
                            return Poll::Ready(Some(Err(Box::new(TooLarge { limit }))));
                        }
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Pending => {
                let stall = this.stall;
                let timer = this
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(stall)));
                ready!(timer.as_mut().poll(cx));
                Poll::Ready(Some(Err(Box::new(Stalled { after: stall }))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
