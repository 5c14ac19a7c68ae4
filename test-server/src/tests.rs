//! The server end to end, over real loopback sockets, with blocking clients
//! (the server needs no runtime from its caller).

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::{Reply, Request, Server, response_head};

fn connect<R>(server: &Server<R>) -> TcpStream {
    let stream = TcpStream::connect(server.addr()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream
}

fn post(target: &str, body: &str) -> Vec<u8> {
    format!(
        "POST {target} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn read_n(stream: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut out = vec![0; n];
    stream.read_exact(&mut out).unwrap();
    out
}

fn read_to_close(stream: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    stream.read_to_end(&mut out).unwrap();
    out
}

/// A 200 whose body is the request's method, target and body.
fn echo(request: &Request<'_>) -> Reply {
    let body = format!(
        "{} {} {}",
        request.method(),
        request.target(),
        String::from_utf8_lossy(request.body)
    );
    let length = format!("content-length: {}", body.len());
    let mut bytes = response_head(200, "OK", &[&length]);
    bytes.extend_from_slice(body.as_bytes());
    Reply::KeepAlive(bytes.into())
}

fn echoed(body: &str) -> Vec<u8> {
    let mut bytes = response_head(200, "OK", &[&format!("content-length: {}", body.len())]);
    bytes.extend_from_slice(body.as_bytes());
    bytes
}

/// The recording once it holds `n` requests (a reply reaches the client
/// just before its request is recorded).
fn recorded<R>(server: &Server<R>, n: usize) -> Vec<crate::Exchange> {
    let start = Instant::now();
    while server.recorded().len() < n && start.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(1));
    }
    server.recorded()
}

#[test]
fn keep_alive_serves_requests_in_turn_and_pipelined() {
    let server = Server::start(echo).unwrap();
    server.set_recording(true);
    let mut client = connect(&server);
    client.write_all(&post("/a", "one")).unwrap();
    let want = echoed("POST /a one");
    assert_eq!(read_n(&mut client, want.len()), want);
    // A head and body split across writes.
    let second = post("/b", "two");
    client.write_all(&second[..10]).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    client.write_all(&second[10..]).unwrap();
    let want = echoed("POST /b two");
    assert_eq!(read_n(&mut client, want.len()), want);
    // Two requests in one write.
    let pipelined = [
        post("/c", ""),
        b"GET /d HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
    ]
    .concat();
    client.write_all(&pipelined).unwrap();
    let want = [echoed("POST /c "), echoed("GET /d ")].concat();
    assert_eq!(read_n(&mut client, want.len()), want);

    let seen = recorded(&server, 4);
    let targets: Vec<_> = seen
        .iter()
        .map(|e| e.request().target().to_owned())
        .collect();
    assert_eq!(targets, ["/a", "/b", "/c", "/d"]);
    assert_eq!(seen[0].body, b"one");
    assert_eq!(seen[0].request().header("content-length"), Some("3"));
    assert!(seen.iter().all(|e| e.status == Some(200)));
    assert!(seen.iter().all(|e| e.arrived <= e.answered));
}

#[test]
fn close_writes_its_bytes_then_closes() {
    let server = Server::start(Reply::Close(Bytes::from_static(b"SSH-2.0-x\r\n"))).unwrap();
    server.set_recording(true);
    let mut client = connect(&server);
    client.write_all(&post("/", "{}")).unwrap();
    assert_eq!(read_to_close(&mut client), b"SSH-2.0-x\r\n");
    let seen = recorded(&server, 1);
    assert_eq!(seen[0].status, None, "not HTTP");

    let server = Server::start(Reply::Close(Bytes::new())).unwrap();
    let mut client = connect(&server);
    client.write_all(&post("/", "")).unwrap();
    assert_eq!(read_to_close(&mut client), b"");
}

#[test]
fn stall_writes_its_bytes_then_nothing_until_the_server_stops() {
    let head = response_head(200, "OK", &["content-length: 100"]);
    let server = Server::start(Reply::Stall(head.clone().into())).unwrap();
    server.set_recording(true);
    let mut client = connect(&server);
    client.write_all(&post("/", "")).unwrap();
    assert_eq!(read_n(&mut client, head.len()), head);
    client
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let err = client.read(&mut [0; 16]).unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
        "{err:?}"
    );
    assert_eq!(server.recorded().len(), 1, "recorded before the stall");
    drop(server);
    client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    assert_eq!(
        read_to_close(&mut client),
        b"",
        "dropping the server closes"
    );
}

#[test]
fn repeat_writes_the_chunk_at_most_max_repeats_times() {
    let server = Server::start(Reply::Repeat {
        head: Bytes::from_static(b"H"),
        chunk: Bytes::from_static(b"ab"),
        max_repeats: 1000,
    })
    .unwrap();
    let mut client = connect(&server);
    client.write_all(&post("/", "")).unwrap();
    let want = [&b"H"[..], &b"ab".repeat(1000)].concat();
    assert_eq!(read_to_close(&mut client), want);
}

#[test]
fn repeat_ends_when_the_client_hangs_up() {
    let server = Server::start(Reply::Repeat {
        head: Bytes::from_static(b"H"),
        chunk: Bytes::from(vec![b'.'; 64 * 1024]),
        max_repeats: usize::MAX,
    })
    .unwrap();
    server.set_recording(true);
    let mut client = connect(&server);
    client.write_all(&post("/", "")).unwrap();
    read_n(&mut client, 1024 * 1024);
    drop(client);
    assert_eq!(recorded(&server, 1).len(), 1, "the loop ended");
}

#[test]
fn trickle_writes_one_byte_every_interval() {
    let every = Duration::from_millis(20);
    let server = Server::start(Reply::Trickle {
        head: Bytes::from_static(b"H"),
        body: Bytes::from_static(b"abcde"),
        every,
    })
    .unwrap();
    let mut client = connect(&server);
    client.write_all(&post("/", "")).unwrap();
    let start = Instant::now();
    assert_eq!(read_n(&mut client, 1), b"H");
    assert_eq!(read_to_close(&mut client), b"abcde");
    assert!(start.elapsed() >= every * 5, "{:?}", start.elapsed());
}

/// A responder counting its calls, always answering 200.
fn counting() -> (Arc<AtomicUsize>, impl crate::Respond) {
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let ok = Bytes::from(response_head(200, "OK", &["content-length: 0"]));
    let respond = move |_: &Request<'_>| {
        counted.fetch_add(1, Ordering::SeqCst);
        Reply::KeepAlive(ok.clone())
    };
    (calls, respond)
}

#[test]
fn chunked_request_bodies_are_refused_with_501() {
    let (calls, respond) = counting();
    let server = Server::start(respond).unwrap();
    let mut client = connect(&server);
    client
        .write_all(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
        .unwrap();
    let answer = read_to_close(&mut client);
    assert!(answer.starts_with(b"HTTP/1.1 501 "), "{answer:?}");
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

#[test]
fn oversized_heads_are_refused_with_431() {
    let (calls, respond) = counting();
    let server = Server::start(respond).unwrap();
    let mut client = connect(&server);
    let big = format!("GET / HTTP/1.1\r\nX-Big: {}\r\n", "a".repeat(80 * 1024));
    client.write_all(big.as_bytes()).unwrap();
    let answer = read_to_close(&mut client);
    assert!(answer.starts_with(b"HTTP/1.1 431 "), "{answer:?}");
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

#[test]
fn recording_is_off_until_turned_on_and_turning_it_on_forgets() {
    let server = Server::start(echo).unwrap();
    let mut client = connect(&server);
    let want = echoed("POST / ");
    client.write_all(&post("/", "")).unwrap();
    read_n(&mut client, want.len());
    assert!(server.recorded().is_empty());
    server.set_recording(true);
    client.write_all(&post("/", "")).unwrap();
    read_n(&mut client, want.len());
    assert_eq!(recorded(&server, 1).len(), 1);
    server.set_recording(true);
    assert!(server.recorded().is_empty());
}

#[test]
fn the_responder_runs_on_the_named_thread() {
    let names = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = names.clone();
    let server = Server::start_named("bench-server", move |r: &Request<'_>| {
        seen.lock()
            .unwrap()
            .push(std::thread::current().name().map(str::to_owned));
        echo(r)
    })
    .unwrap();
    let mut client = connect(&server);
    client.write_all(&post("/", "")).unwrap();
    read_n(&mut client, echoed("POST / ").len());
    assert_eq!(*names.lock().unwrap(), [Some("bench-server".to_owned())]);
    assert_eq!(server.url(), format!("http://{}", server.addr()));
}
