//! Whole HTTP responses, from a loopback server, through the SDK: response
//! decoding and error mapping end in `Ok` or a typed `Error` carrying the
//! status, never a panic.
#![no_main]

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use arbitrary::Arbitrary;
use conduit_sdk::Client;
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

struct Harness {
    runtime: tokio::runtime::Runtime,
    client: Client,
    next: &'static Mutex<Vec<u8>>,
}

/// A loopback server answering each connection with the bytes in `next`.
fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let next: &'static Mutex<Vec<u8>> = Box::leak(Box::new(Mutex::new(Vec::new())));
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
                let mut seen = Vec::new();
                let mut buf = [0u8; 4096];
                // Read the head and the (small, JSON) body of the request.
                while let Ok(n @ 1..) = stream.read(&mut buf) {
                    seen.extend_from_slice(&buf[..n]);
                    if request_complete(&seen) {
                        break;
                    }
                }
                let answer = next.lock().unwrap().clone();
                let _ = stream.write_all(&answer);
            }
        });
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let client = Client::builder()
            .token("fuzz-token")
            .base_url(url)
            .max_retries(0)
            .timeout(Duration::from_secs(2))
            .build()
            .unwrap();
        Harness {
            runtime,
            client,
            next,
        }
    })
}

fn request_complete(seen: &[u8]) -> bool {
    let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&seen[..end]).to_ascii_lowercase();
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    seen.len() >= end + 4 + length
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
    *h.next.lock().unwrap() = bytes;
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
