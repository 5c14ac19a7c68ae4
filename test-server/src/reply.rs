//! What the server writes for a request, and what it then does with the
//! connection.

use std::time::Duration;

use bytes::Bytes;

/// A reply: bytes to write (any bytes; they need not be HTTP), and what
/// follows them. Cheap to clone, so a responder can keep replies rendered
/// ahead of time.
#[derive(Debug, Clone)]
pub enum Reply {
    /// Writes these bytes, then reads the next request on the connection.
    KeepAlive(Bytes),
    /// Writes these bytes, then closes the connection. This is also how to
    /// send a response that is cut short, or is not HTTP at all.
    Close(Bytes),
    /// Writes these bytes, then nothing more until the client hangs up.
    Stall(Bytes),
    /// Writes `head`, then `chunk` over and over until the client hangs up
    /// or it has gone out `max_repeats` times, then closes: an endless
    /// body whose loop still ends.
    Repeat {
        /// Written once, first.
        head: Bytes,
        /// Written after it, repeatedly.
        chunk: Bytes,
        /// At most this many times.
        max_repeats: usize,
    },
    /// Writes `head`, then `body` one byte at a time, waiting `every` before
    /// each, until it is out or the client hangs up, then closes.
    Trickle {
        /// Written at once.
        head: Bytes,
        /// Written a byte at a time.
        body: Bytes,
        /// The wait before each byte.
        every: Duration,
    },
}

impl Reply {
    /// The bytes it starts with, where a status line would be.
    pub(crate) fn start(&self) -> &[u8] {
        match self {
            Self::KeepAlive(bytes) | Self::Close(bytes) | Self::Stall(bytes) => bytes,
            Self::Repeat { head, .. } | Self::Trickle { head, .. } => head,
        }
    }
}

/// An HTTP/1.1 response head: the status line with `status` and `reason`,
/// these header lines (each given without its CRLF), and the blank line.
pub fn response_head(status: u16, reason: &str, headers: &[&str]) -> Vec<u8> {
    let mut head = format!("HTTP/1.1 {status} {reason}\r\n");
    for header in headers {
        head.push_str(header);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    head.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_head_ends_with_a_blank_line() {
        let head = response_head(429, "Too Many Requests", &["retry-after: 1", "a: b"]);
        assert_eq!(
            head,
            b"HTTP/1.1 429 Too Many Requests\r\nretry-after: 1\r\na: b\r\n\r\n"
        );
        assert_eq!(response_head(200, "X", &[]), b"HTTP/1.1 200 X\r\n\r\n");
    }
}
