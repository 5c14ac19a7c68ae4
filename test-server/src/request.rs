//! A request as the responder sees it, and as a recording keeps it.

use std::time::Instant;

/// One request, read in full: its head and its `Content-Length` body,
/// borrowed from the connection's buffer.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// When its first bytes were read (for a request that came in with the
    /// previous one's bytes, when that one had been answered).
    pub arrived: Instant,
    /// The request line and header lines as received, each ending in CRLF,
    /// then the blank line; bytes that are not UTF-8 are replaced.
    pub head: &'a str,
    /// The body: exactly `Content-Length` bytes.
    pub body: &'a [u8],
}

impl<'a> Request<'a> {
    /// The method, such as `POST`.
    pub fn method(&self) -> &'a str {
        self.request_line().split(' ').next().unwrap_or_default()
    }

    /// The request target, such as `/v1/custom-tools/x/run`.
    pub fn target(&self) -> &'a str {
        self.request_line().split(' ').nth(1).unwrap_or_default()
    }

    /// The headers in order, names as sent and values trimmed.
    pub fn headers(&self) -> impl Iterator<Item = (&'a str, &'a str)> + use<'a> {
        self.head
            .split("\r\n")
            .skip(1)
            .take_while(|line| !line.is_empty())
            .filter_map(|line| line.split_once(':'))
            .map(|(name, value)| (name, value.trim()))
    }

    /// The first header called `name` (any case).
    pub fn header(&self, name: &str) -> Option<&'a str> {
        self.headers()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, value)| value)
    }

    fn request_line(&self) -> &'a str {
        self.head.split("\r\n").next().unwrap_or_default()
    }
}

/// A request the responder answered, as kept while recording is on
/// ([`Server::set_recording`](crate::Server::set_recording)).
#[derive(Debug, Clone)]
pub struct Exchange {
    /// When its first bytes were read, as [`Request::arrived`].
    pub arrived: Instant,
    /// When the reply's bytes had all been written, or the client had hung
    /// up partway. For a [`Reply::Stall`](crate::Reply::Stall), before the
    /// stall.
    pub answered: Instant,
    /// The reply's status, if its bytes start with an HTTP/1.x status line.
    pub status: Option<u16>,
    /// Whether every byte of the reply was written: false when the client
    /// hung up first.
    pub complete: bool,
    /// The request head, as [`Request::head`].
    pub head: String,
    /// The request body.
    pub body: Vec<u8>,
}

impl Exchange {
    /// The request, to read its method, target and headers.
    pub fn request(&self) -> Request<'_> {
        Request {
            arrived: self.arrived,
            head: &self.head,
            body: &self.body,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = "POST /v1/run?x=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization:  Bearer t \r\ncontent-type: application/json\r\n\r\n";

    fn request() -> Request<'static> {
        Request {
            arrived: Instant::now(),
            head: HEAD,
            body: b"{}",
        }
    }

    #[test]
    fn the_request_line_is_split_into_method_and_target() {
        assert_eq!(request().method(), "POST");
        assert_eq!(request().target(), "/v1/run?x=1");
    }

    #[test]
    fn headers_are_found_in_any_case_with_values_trimmed() {
        let r = request();
        assert_eq!(r.header("authorization"), Some("Bearer t"));
        assert_eq!(r.header("Content-Type"), Some("application/json"));
        assert_eq!(r.header("accept"), None);
        let names: Vec<_> = r.headers().map(|(n, _)| n).collect();
        assert_eq!(names, ["Host", "Authorization", "content-type"]);
    }

    #[test]
    fn an_exchange_reads_back_as_its_request() {
        let e = Exchange {
            arrived: Instant::now(),
            answered: Instant::now(),
            status: Some(200),
            complete: true,
            head: HEAD.to_owned(),
            body: b"{}".to_vec(),
        };
        let r = e.request();
        assert_eq!((r.method(), r.body), ("POST", &b"{}"[..]));
        assert_eq!(r.header("host"), Some("127.0.0.1"));
    }
}
