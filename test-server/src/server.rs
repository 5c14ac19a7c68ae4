//! The server: its thread, runtime and listener, and what it shares with
//! its connections.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::{Exchange, Respond, connection};

/// The name of the server's thread unless [`Server::start_named`] gives one.
const THREAD_NAME: &str = "test-server";

/// A loopback HTTP/1.1 server answering with `R`; dropping it stops it.
pub struct Server<R> {
    addr: SocketAddr,
    shared: Arc<Shared<R>>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// What the connections share with the [`Server`].
pub(crate) struct Shared<R> {
    pub(crate) respond: R,
    recording: AtomicBool,
    recorded: Mutex<Vec<Exchange>>,
}

impl<R> Shared<R> {
    pub(crate) fn recording(&self) -> bool {
        self.recording.load(Ordering::SeqCst)
    }

    pub(crate) fn record(&self, exchange: Exchange) {
        self.recorded().push(exchange);
    }

    fn recorded(&self) -> MutexGuard<'_, Vec<Exchange>> {
        // A responder that panicked does not make the recording unreadable.
        self.recorded.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl<R: Respond> Server<R> {
    /// Starts a server on a free loopback port, on a thread named
    /// `test-server`.
    pub fn start(respond: R) -> std::io::Result<Self> {
        Self::start_named(THREAD_NAME, respond)
    }

    /// Starts a server on a free loopback port, on a thread called
    /// `thread_name` (so that, say, its CPU time can be told apart).
    pub fn start_named(thread_name: &str, respond: R) -> std::io::Result<Self> {
        let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let listener = {
            let _inside = runtime.enter();
            TcpListener::from_std(listener)?
        };
        let shared = Arc::new(Shared {
            respond,
            recording: AtomicBool::new(false),
            recorded: Mutex::new(Vec::new()),
        });
        let (stop, stopped) = oneshot::channel::<()>();
        let on_thread = shared.clone();
        let thread = std::thread::Builder::new()
            .name(thread_name.to_owned())
            .spawn(move || {
                runtime.block_on(async move {
                    tokio::select! {
                        () = accept(listener, on_thread) => {}
                        _ = stopped => {}
                    }
                });
                // Dropping the runtime here drops every connection's task.
            })?;
        Ok(Self {
            addr,
            shared,
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl<R> Server<R> {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The responder it was started with.
    pub fn responder(&self) -> &R {
        &self.shared.respond
    }

    /// Turns recording of answered requests on or off; turning it on
    /// forgets earlier ones. Off when the server starts. Whether a request
    /// is recorded is decided before its reply is written.
    pub fn set_recording(&self, on: bool) {
        if on {
            self.shared.recorded().clear();
        }
        self.shared.recording.store(on, Ordering::SeqCst);
    }

    /// The requests recorded so far, in the order they were answered. A
    /// request is recorded once its reply has been written, so a client can
    /// have the reply a moment before it shows here.
    pub fn recorded(&self) -> Vec<Exchange> {
        self.shared.recorded().clone()
    }
}

impl<R> Drop for Server<R> {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Accepts connections and serves each on its own task, until dropped.
async fn accept<R: Respond>(listener: TcpListener, shared: Arc<Shared<R>>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(connection::serve(stream, shared.clone()));
            }
            // Such as too many open files: wait for some to close rather
            // than spin.
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}
