//! Whole HTTP responses, from a loopback server, through the SDK: response
//! decoding and error mapping end in `Ok` or a typed `Error` carrying the
//! status, never a panic.
#![no_main]

use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use arbitrary::Arbitrary;
use conduit_sdk::Client;
use conduit_test_server::{Bytes, Reply, Request, Respond, Server};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Answer<'a> {
    status: u16,
    content_type: u8,
    retry_after: Option<&'a str>,
    /// Send `body` as the raw response (head included) instead.
    raw: bool,
    body: &'a [u8],
}

/// Answers every request with the bytes set for the current input, then
/// closes the connection.
struct Next(Mutex<Bytes>);

impl Respond for Next {
    fn respond(&self, _: &Request<'_>) -> Reply {
        Reply::Close(self.0.lock().unwrap().clone())
    }
}

struct Harness {
    runtime: tokio::runtime::Runtime,
    client: Client,
    server: Server<Next>,
}

/// A loopback server and a client pointed at it, made once per process.
fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let server = Server::start(Next(Mutex::new(Bytes::new()))).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let client = Client::builder()
            .token("fuzz-token")
            .base_url(server.url())
            .max_retries(0)
            .timeout(Duration::from_secs(2))
            .build()
            .unwrap();
        Harness {
            runtime,
            client,
            server,
        }
    })
}

fn response_bytes(a: &Answer) -> (Option<u16>, Vec<u8>) {
    if a.raw {
        return (None, a.body.to_vec());
    }
    let status = 100 + a.status % 500;
    // 1xx and 204/304 have their own framing rules; keep the fuzzing on bodies.
    let status = if status < 200 || status == 204 || status == 304 {
        200
    } else {
        status
    };
    let content_type = [
        "application/json",
        "text/html",
        "text/plain",
        "application/json; charset=utf-8",
    ][usize::from(a.content_type % 4)];
    let mut head = format!(
        "HTTP/1.1 {status} X\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n",
        a.body.len()
    );
    if let Some(v) = a
        .retry_after
        .filter(|v| v.bytes().all(|b| (0x20..0x7f).contains(&b)))
    {
        head.push_str(&format!("retry-after: {v}\r\n"));
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    out.extend_from_slice(a.body);
    (Some(status), out)
}

fuzz_target!(|answer: Answer| {
    let h = harness();
    let (status, bytes) = response_bytes(&answer);
    *h.server.responder().0.lock().unwrap() = bytes.into();
    let result = h.runtime.block_on(
        h.client
            .custom_tools()
            .run("tool")
            .parameter("k", "v")
            .send(),
    );
    match (result, status) {
        (Ok(run), Some(status)) => {
            assert_eq!(status, 200, "only a 200 decodes");
            let _ = (run.run_time(), run.message().map(str::len));
            let _ = run.into_result().is_ok();
        }
        (Err(e), Some(status)) if !e.is_transport() => {
            assert_eq!(e.status().map(|s| s.as_u16()), Some(status), "{e:?}");
            let _ = format!("{e} {e:?}");
        }
        (Ok(_) | Err(_), _) => {}
    }
});
