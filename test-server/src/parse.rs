//! Reading a request head: where it ends, whether it can be served, and how
//! long its body is. Also the status code at the start of a reply.

use std::borrow::Cow;

/// Heads longer than this are refused.
pub(crate) const MAX_HEAD: usize = 64 * 1024;
/// Bodies longer than this are refused.
pub(crate) const MAX_BODY: usize = 64 * 1024 * 1024;

/// Why a request is not handed to the responder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// A head that is not HTTP/1.x: the reason, for the reply's body.
    Malformed(&'static str),
    /// A `Transfer-Encoding` body, which this server does not read.
    Chunked,
    /// A head longer than [`MAX_HEAD`].
    HeadTooLarge,
    /// A `Content-Length` over [`MAX_BODY`].
    BodyTooLarge,
}

impl Refusal {
    /// The whole response sent before closing the connection.
    pub(crate) fn response(self) -> Vec<u8> {
        let (status, reason, detail) = match self {
            Self::Malformed(detail) => (400, "Bad Request", detail),
            Self::Chunked => (
                501,
                "Not Implemented",
                "request bodies must have a Content-Length",
            ),
            Self::HeadTooLarge => (
                431,
                "Request Header Fields Too Large",
                "request head too large",
            ),
            Self::BodyTooLarge => (413, "Content Too Large", "request body too large"),
        };
        let length = format!("content-length: {}", detail.len());
        let mut bytes = crate::response_head(
            status,
            reason,
            &["content-type: text/plain", &length, "connection: close"],
        );
        bytes.extend_from_slice(detail.as_bytes());
        bytes
    }
}

/// Where the head in `buf` ends (just past its blank line). Bytes before
/// `searched` were looked at already and are not scanned again.
pub(crate) fn head_end(buf: &[u8], searched: usize) -> Option<usize> {
    let start = searched.saturating_sub(3);
    memchr::memmem::find(buf.get(start..)?, b"\r\n\r\n").map(|i| start + i + 4)
}

/// Checks a request head (request line and header lines, up to and
/// including the blank line) and returns the length of its body. A bare
/// line feed also ends a line, as RFC 9112 lets a recipient accept.
pub(crate) fn body_length(head: &str) -> Result<usize, Refusal> {
    // Split on one byte, not on "\r\n": the benchmark's server thread
    // should cost per header what a real server's parser does, about
    // nothing, so that a client sending more headers is not charged for
    // this parser's speed.
    let mut lines = head
        .split('\n')
        .map(|line| line.strip_suffix('\r').unwrap_or(line));
    let line = lines.next().unwrap_or_default();
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Refusal::Malformed("bad request line"));
    };
    if method.is_empty() || target.is_empty() || !version.starts_with("HTTP/1.") {
        return Err(Refusal::Malformed("bad request line"));
    }
    let mut length = None;
    for line in lines.take_while(|l| !l.is_empty()) {
        let (name, value) = line
            .split_once(':')
            .ok_or(Refusal::Malformed("header without a colon"))?;
        if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(Refusal::Chunked);
        }
        if name.eq_ignore_ascii_case("content-length") {
            let value = value.trim();
            // `parse` alone would also take "+5".
            let n = (!value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()))
                .then(|| value.parse::<usize>().ok())
                .flatten()
                .ok_or(Refusal::Malformed("bad content-length"))?;
            if length.is_some_and(|l| l != n) {
                return Err(Refusal::Malformed("conflicting content-length"));
            }
            length = Some(n);
        }
    }
    match length.unwrap_or(0) {
        n if n > MAX_BODY => Err(Refusal::BodyTooLarge),
        n => Ok(n),
    }
}

/// `bytes` as text: borrowed when they are UTF-8 (checked word by word, as
/// a head is ASCII), else with replacement characters.
pub(crate) fn text(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

/// The status code of bytes that start with an HTTP/1.x status line.
pub(crate) fn status_of(bytes: &[u8]) -> Option<u16> {
    let rest = bytes.strip_prefix(b"HTTP/1.")?;
    let (_minor, rest) = rest.split_first()?;
    let rest = rest.strip_prefix(b" ")?;
    let code = rest.get(..3)?;
    if !code.iter().all(u8::is_ascii_digit) || rest.get(3).is_some_and(u8::is_ascii_digit) {
        return None;
    }
    code.iter()
        .try_fold(0u16, |n, d| Some(n * 10 + u16::from(d - b'0')))
}

#[cfg(test)]
mod tests {
    use super::*;

    const POST: &str = "POST /run HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\n\r\n";

    #[test]
    fn the_head_ends_after_the_blank_line() {
        let buf = format!("{POST}{{\"a\":1}}").into_bytes();
        assert_eq!(head_end(&buf, 0), Some(POST.len()));
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nHost: x\r\n", 0), None);
    }

    #[test]
    fn a_blank_line_split_across_reads_is_found() {
        let buf = POST.as_bytes();
        // The previous read ended inside "\r\n\r\n".
        for searched in POST.len() - 3..POST.len() {
            assert_eq!(head_end(buf, searched), Some(POST.len()), "{searched}");
        }
    }

    #[test]
    fn the_body_length_is_the_content_length() {
        assert_eq!(body_length(POST), Ok(12));
        assert_eq!(body_length("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), Ok(0));
        let twice = "POST / HTTP/1.1\r\ncontent-length:3\r\nContent-Length: 3\r\n\r\n";
        assert_eq!(body_length(twice), Ok(3));
    }

    #[test]
    fn chunked_bodies_are_refused() {
        let head = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(body_length(head), Err(Refusal::Chunked));
    }

    #[test]
    fn malformed_heads_are_refused() {
        for head in [
            "POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: +3\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: \r\n\r\n",
            "POST / HTTP/1.1\r\nno colon\r\n\r\n",
            "POST /\r\n\r\n",
            "POST / HTTP/1.1 extra\r\n\r\n",
            " / HTTP/1.1\r\n\r\n",
            "SSH-2.0-OpenSSH_9.6\r\n\r\n",
        ] {
            assert!(
                matches!(body_length(head), Err(Refusal::Malformed(_))),
                "{head:?}"
            );
        }
    }

    #[test]
    fn huge_bodies_are_refused() {
        let head = format!(
            "POST / HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
            MAX_BODY + 1
        );
        assert_eq!(body_length(&head), Err(Refusal::BodyTooLarge));
        let head = "POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n";
        assert!(body_length(head).is_err());
    }

    #[test]
    fn refusals_are_complete_responses() {
        let bytes = Refusal::Chunked.response();
        let text = String::from_utf8(bytes).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 501 "), "{head}");
        assert!(head.contains(&format!("content-length: {}", body.len())));
        assert_eq!(status_of(text.as_bytes()), Some(501));
    }

    #[test]
    fn the_status_is_read_off_the_status_line() {
        assert_eq!(status_of(b"HTTP/1.1 200 OK\r\n"), Some(200));
        assert_eq!(status_of(b"HTTP/1.0 429 X\r\n\r\n"), Some(429));
        assert_eq!(status_of(b"HTTP/1.1 503\r\n"), Some(503));
        assert_eq!(status_of(b"HTTP/1.1 2000 X\r\n"), None);
        assert_eq!(status_of(b"HTTP/1.1 20"), None);
        assert_eq!(status_of(b"SSH-2.0-OpenSSH_9.6\r\n"), None);
        assert_eq!(status_of(b""), None);
    }
}
