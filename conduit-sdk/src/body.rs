//! The response body as the SDK reads it: bounded in size, and failing when
//! it stops delivering bytes (stalled-stream protection, as in the AWS
//! SDKs), so that a broken server cannot hold a call until the per-attempt
//! timeout or fill memory. Either read whole at once ([`read_all`], the
//! SDK's own calls), or guarded as the raw client's decoding reads it
//! ([`guard`]).

use std::fmt;
use std::future::Future;
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
    };
    rebuild(parts, reqwest::Body::wrap(body), url)
}

/// Reads the whole body now, under the same rules as [`guard`]: more than
/// `max_bytes` fails with [`TooLarge`], waiting more than `stall` for the
/// next bytes with [`Stalled`].
pub(crate) async fn read_all(
    response: &mut reqwest::Response,
    max_bytes: usize,
    stall: Duration,
) -> Result<Bytes, BoxError> {
    let declared = response.content_length();
    // The usual case, one chunk, is kept without copying.
    let mut first: Option<Bytes> = None;
    let mut more: Vec<Bytes> = Vec::new();
    let mut read = 0usize;
    loop {
        if declared.is_some_and(|len| len > max_bytes as u64) || read > max_bytes {
            return Err(Box::new(TooLarge { limit: max_bytes }));
        }
        match next_chunk(response, stall).await? {
            Some(chunk) => {
                read = read.saturating_add(chunk.len());
                match first {
                    None => first = Some(chunk),
                    Some(_) => more.push(chunk),
                }
            }
            None => return Ok(joined(first.take(), std::mem::take(&mut more), read)),
        }
    }
}

/// At most the first `limit` bytes of the body: what an error is shown
/// with. A body that fails or stalls gives what came before.
pub(crate) async fn read_prefix(
    response: &mut reqwest::Response,
    limit: usize,
    stall: Duration,
) -> Bytes {
    let mut body = Vec::new();
    while body.len() < limit {
        match next_chunk(response, stall).await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            Ok(None) | Err(_) => break,
        }
    }
    body.truncate(limit);
    body.into()
}

/// The body's next chunk, failing with [`Stalled`] after `stall` without
/// one. The timer is made only if the read has to wait.
async fn next_chunk(
    response: &mut reqwest::Response,
    stall: Duration,
) -> Result<Option<Bytes>, BoxError> {
    let mut chunk = std::pin::pin!(response.chunk());
    let mut timer = std::pin::pin!(None::<tokio::time::Sleep>);
    std::future::poll_fn(|cx| {
        if let Poll::Ready(read) = chunk.as_mut().poll(cx) {
            return Poll::Ready(read.map_err(BoxError::from));
        }
        if timer.is_none() {
            timer.set(Some(tokio::time::sleep(stall)));
        }
        if let Some(timer) = timer.as_mut().as_pin_mut() {
            ready!(timer.poll(cx));
        }
        Poll::Ready(Err(Box::new(Stalled { after: stall }) as BoxError))
    })
    .await
}

/// The chunks of a body as one `Bytes`; `read` is their total length.
fn joined(first: Option<Bytes>, more: Vec<Bytes>, read: usize) -> Bytes {
    match first {
        None => Bytes::new(),
        Some(first) if more.is_empty() => first,
        Some(first) => {
            let mut all = Vec::with_capacity(read);
            all.extend_from_slice(&first);
            for chunk in more {
                all.extend_from_slice(&chunk);
            }
            all.into()
        }
    }
}

/// A reqwest response from parts, keeping `url` (reqwest keeps a response's
/// URL in an extension only its builder can set). Without it reqwest would
/// parse a placeholder URL, which costs more than this copy. The builder
/// takes the response's own extensions first, so the URL joins their map
/// instead of a new one.
pub(crate) fn rebuild(
    mut parts: http::response::Parts,
    body: reqwest::Body,
    url: reqwest::Url,
) -> reqwest::Response {
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
    async fn a_body_read_whole_is_every_chunk_in_order() {
        for chunks in [&[][..], &["{\"a\":1}"], &["{\"a\"", ":", "1}"]] {
            let mut response = streamed(chunks);
            let read = read_all(&mut response, 1024, Duration::from_secs(10))
                .await
                .unwrap();
            assert_eq!(response.chunk().await.unwrap(), None, "the body is spent");
            assert_eq!(read, chunks.concat().as_bytes(), "{chunks:?}");
        }
    }

    #[tokio::test]
    async fn a_body_over_the_limit_fails_whole_or_guarded() {
        let mut response = streamed(&["0123456789", "0123456789"]);
        let err = read_all(&mut response, 15, Duration::from_secs(10))
            .await
            .unwrap_err();
        assert!(format!("{err:?}").contains("TooLarge"), "{err:?}");
        // The same limit through the guard, for bodies read later.
        let guarded = guard(
            streamed(&["0123456789", "0123456789"]),
            15,
            Duration::from_secs(10),
        );
        let err = guarded.bytes().await.unwrap_err();
        assert!(format!("{err:?}").contains("TooLarge"), "{err:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_that_stops_delivering_fails_as_stalled_after_the_limit() {
        /// One chunk, then nothing, ever.
        struct Stops(bool);
        impl Body for Stops {
            type Data = Bytes;
            type Error = BoxError;
            fn poll_frame(
                mut self: Pin<&mut Self>,
                _: &mut Context<'_>,
            ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
                if std::mem::replace(&mut self.0, true) {
                    Poll::Pending
                } else {
                    Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b"{")))))
                }
            }
        }
        let started = tokio::time::Instant::now();
        let mut stopped =
            reqwest::Response::from(http::Response::new(reqwest::Body::wrap(Stops(false))));
        let err = read_all(&mut stopped, 1024, Duration::from_secs(3))
            .await
            .unwrap_err();
        assert_eq!(started.elapsed(), Duration::from_secs(3));
        assert!(format!("{err:?}").contains("Stalled"), "{err:?}");
    }
}
