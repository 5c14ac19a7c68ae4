//! One connection: read a request, ask the responder, write its reply, and
//! again while the reply keeps the connection alive.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::parse::{self, MAX_HEAD, Refusal};
use crate::server::Shared;
use crate::{Exchange, Reply, Request, Respond};

/// How long a refused client gets to stop sending before the close.
const LINGER: Duration = Duration::from_secs(1);

/// What a connection does after a reply.
enum Then {
    /// Reads the next request.
    Read,
    /// Writes nothing more until the client hangs up.
    Hold,
    /// Closes.
    Close,
}

/// Serves `stream` until the client hangs up, a reply ends the connection
/// or the server stops.
pub(crate) async fn serve<R: Respond>(mut stream: TcpStream, shared: Arc<Shared<R>>) {
    // Replies go out whole at once, and a trickle byte by byte, without
    // waiting for more to send.
    let _ = stream.set_nodelay(true);
    let mut buf: Vec<u8> = Vec::with_capacity(8 * 1024);
    loop {
        // A request that came in with the previous one's bytes is here now.
        let mut arrived = (!buf.is_empty()).then(Instant::now);
        let mut searched = 0;
        let head_len = loop {
            if let Some(end) = parse::head_end(&buf, searched) {
                break end;
            }
            if buf.len() > MAX_HEAD {
                return refuse(stream, Refusal::HeadTooLarge).await;
            }
            searched = buf.len();
            buf.reserve(8 * 1024);
            match stream.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return, // closed between requests
                Ok(_) => {}
            }
            arrived.get_or_insert_with(Instant::now);
        };
        let arrived = arrived.unwrap_or_else(Instant::now);
        let total = match parse::body_length(&parse::text(&buf[..head_len])) {
            Ok(length) => head_len + length,
            Err(refusal) => return refuse(stream, refusal).await,
        };
        while buf.len() < total {
            buf.reserve(total - buf.len());
            match stream.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return, // closed inside a body
                Ok(_) => {}
            }
        }
        let then = {
            let head = parse::text(&buf[..head_len]);
            let request = Request {
                arrived,
                head: &head,
                body: &buf[head_len..total],
            };
            let reply = shared.respond.respond(&request);
            // Decided before answering: a caller may stop recording as soon
            // as it has the reply.
            let recording = shared.recording();
            let written = write(&mut stream, &reply).await;
            if recording {
                shared.record(Exchange {
                    arrived,
                    answered: Instant::now(),
                    status: parse::status_of(reply.start()),
                    complete: written.is_ok(),
                    head: head.into_owned(),
                    body: buf[head_len..total].to_vec(),
                });
            }
            match reply {
                _ if written.is_err() => Then::Close,
                Reply::KeepAlive(_) => Then::Read,
                Reply::Stall(_) => Then::Hold,
                Reply::Close(_) | Reply::Repeat { .. } | Reply::Trickle { .. } => Then::Close,
            }
        };
        match then {
            Then::Read => drop(buf.drain(..total)),
            Then::Hold => return hold(&mut stream).await,
            Then::Close => {
                let _ = stream.shutdown().await;
                return;
            }
        }
    }
}

/// Writes `reply`'s bytes, stopping at the first failed write.
async fn write(stream: &mut TcpStream, reply: &Reply) -> std::io::Result<()> {
    match reply {
        Reply::KeepAlive(bytes) | Reply::Close(bytes) | Reply::Stall(bytes) => {
            stream.write_all(bytes).await
        }
        Reply::Repeat {
            head,
            chunk,
            max_repeats,
        } => {
            stream.write_all(head).await?;
            for _ in 0..*max_repeats {
                stream.write_all(chunk).await?;
            }
            Ok(())
        }
        Reply::Trickle { head, body, every } => {
            stream.write_all(head).await?;
            for i in 0..body.len() {
                tokio::time::sleep(*every).await;
                stream.write_all(&body[i..=i]).await?;
            }
            Ok(())
        }
    }
}

/// Reads and drops whatever the client sends until it hangs up.
async fn hold(stream: &mut TcpStream) {
    let mut scratch = [0u8; 4096];
    while let Ok(1..) = stream.read(&mut scratch).await {}
}

/// Answers a request that cannot be served, then closes. Unread input at
/// the close would reset the connection, and the client could lose the
/// answer, so the rest is read and dropped for a moment first.
async fn refuse(mut stream: TcpStream, refusal: Refusal) {
    if stream.write_all(&refusal.response()).await.is_ok() {
        let _ = stream.shutdown().await;
        let _ = tokio::time::timeout(LINGER, hold(&mut stream)).await;
    }
}
