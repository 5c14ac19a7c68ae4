//! The response body as the SDK reads it: bounded in size, and failing when
//! it stops delivering bytes (stalled-stream protection, as in the AWS
//! SDKs), so that a broken server cannot hold a call until the per-attempt
//! timeout or fill memory.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

use crate::middleware::CallState;

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
/// wait, so a body that arrives with its head costs no timer. With `keep`,
/// the bytes read are also handed to that call's state once the body ends:
/// the body as sent, without reading it twice.
pub(crate) fn guard(
    response: reqwest::Response,
    max_bytes: usize,
    stall: Duration,
    keep: Option<Arc<CallState>>,
) -> reqwest::Response {
    let count = response
        .content_length()
        .is_none_or(|len| len > max_bytes as u64);
    let url = response.url().clone();
    let (parts, inner) = http::Response::<reqwest::Body>::from(response).into_parts();
    let body = Guarded {
        inner,
        limit: max_bytes,
        left: count.then_some(max_bytes),
        stall,
        timer: None,
        keep: keep.map(|call| Keep {
            call,
            first: None,
            more: Vec::new(),
        }),
    };
    with_url(
        http::Response::from_parts(parts, reqwest::Body::wrap(body)),
        url,
    )
}

/// A reqwest response from parts, keeping `url` (reqwest keeps a response's
/// URL in an extension only its builder can set). Without it reqwest would
/// parse a placeholder URL, which costs more than this copy. The builder
/// takes the response's own extensions first, so the URL joins their map
/// instead of a new one.
pub(crate) fn with_url(
    response: http::Response<reqwest::Body>,
    url: reqwest::Url,
) -> reqwest::Response {
    let (mut parts, body) = response.into_parts();
    let mut builder = http::Response::builder();
    if let Some(extensions) = builder.extensions_mut() {
        *extensions = std::mem::take(&mut parts.extensions);
    }
    // Building `()` cannot fail on a fresh builder; were it to, the
    // response goes on without its URL rather than failing.
    if let Ok(marker) = reqwest::ResponseBuilderExt::url(builder, url).body(()) {
        parts.extensions = marker.into_parts().0.extensions;
    }
    reqwest::Response::from(http::Response::from_parts(parts, body))
}

struct Guarded {
    inner: reqwest::Body,
    limit: usize,
    /// Bytes still allowed, when counted.
    left: Option<usize>,
    stall: Duration,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
    keep: Option<Keep>,
}

/// The bytes of a body as they pass, for the call's state.
struct Keep {
    call: Arc<CallState>,
    /// The usual case, one chunk, is kept without copying.
    first: Option<Bytes>,
    more: Vec<Bytes>,
}

impl Keep {
    fn push(&mut self, data: &Bytes) {
        match self.first {
            None => self.first = Some(data.clone()),
            Some(_) => self.more.push(data.clone()),
        }
    }

    fn finish(&mut self) {
        let bytes = match self.first.take() {
            None => Bytes::new(),
            Some(first) if self.more.is_empty() => first,
            Some(first) => {
                let mut all = first.to_vec();
                for chunk in self.more.drain(..) {
                    all.extend_from_slice(&chunk);
                }
                all.into()
            }
        };
        self.call.set_body(bytes);
    }
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
                    None => {
                        if let Some(mut keep) = this.keep.take() {
                            keep.finish();
                        }
                        return Poll::Ready(None);
                    }
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
                if let (Some(keep), Some(data)) = (this.keep.as_mut(), frame.data_ref()) {
                    keep.push(data);
                }
                // A reader may stop at the end without polling past it.
                if this.inner.is_end_stream()
                    && let Some(mut keep) = this.keep.take()
                {
                    keep.finish();
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A body that yields its chunks one frame at a time.
    struct Chunks(std::collections::VecDeque<Bytes>);

    impl Body for Chunks {
        type Data = Bytes;
        type Error = BoxError;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
            Poll::Ready(self.0.pop_front().map(|c| Ok(Frame::data(c))))
        }
    }

    /// A 200 whose body arrives in `chunks`, as hyper would stream it.
    fn streamed(chunks: &[&'static str]) -> reqwest::Response {
        let chunks = chunks.iter().map(|c| Bytes::from_static(c.as_bytes()));
        let body = reqwest::Body::wrap(Chunks(chunks.collect()));
        reqwest::Response::from(http::Response::new(body))
    }

    #[tokio::test]
    async fn a_kept_body_is_every_chunk_the_reader_saw_in_order() {
        for chunks in [&[][..], &["{\"a\":1}"], &["{\"a\"", ":", "1}"]] {
            let call = Arc::new(CallState::new(None, true));
            let response = guard(
                streamed(chunks),
                1024,
                Duration::from_secs(10),
                Some(call.clone()),
            );
            let read = response.bytes().await.unwrap();
            assert_eq!(read, chunks.concat().as_bytes(), "{chunks:?}");
            assert_eq!(call.take_body(), Some(read), "{chunks:?}");
        }
    }

    #[tokio::test]
    async fn a_body_over_the_limit_fails_and_keeps_nothing() {
        let call = Arc::new(CallState::new(None, true));
        let response = guard(
            streamed(&["0123456789", "0123456789"]),
            15,
            Duration::from_secs(10),
            Some(call.clone()),
        );
        let err = response.bytes().await.unwrap_err();
        assert!(format!("{err:?}").contains("TooLarge"), "{err:?}");
        assert_eq!(call.take_body(), None);
    }
}
