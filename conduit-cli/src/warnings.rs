//! The CLI's `tracing` subscriber, for two things the SDK reports only as
//! events and spans:
//!
//! - the one line printed when the rate store (Redis) fails: the SDK logs
//!   it as a warning;
//! - whether a call has a request out: each attempt is a `conduit.request`
//!   span (README, "Tracing"), and `retry_in_ms` is recorded on it when
//!   the attempt is over and the call waits to retry. `run-batch` uses this
//!   to drop, on a signal, the calls that are only waiting.

use std::cell::RefCell;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// The SDK's target for rate-store events.
const TARGET: &str = "conduit_sdk::rate_store";

/// The SDK's span around each attempt.
const ATTEMPT: &str = "conduit.request";

/// Installs the subscriber: rate-store warnings on stderr, one line each,
/// and attempts tracked for [`Sending::track`].
pub fn print_store_warnings() {
    let _ = tracing::subscriber::set_global_default(StoreWarnings);
}

/// Whether one call has a request out.
#[derive(Default)]
pub struct Sending {
    now: AtomicBool,
    ever: AtomicBool,
}

thread_local! {
    /// The call being polled on this thread, if it is tracked.
    static POLLED: RefCell<Option<Arc<Sending>>> = const { RefCell::new(None) };
}

impl Sending {
    /// Runs `poll` (one poll of the call) with its attempts recorded here.
    /// The SDK opens an attempt's span inside the poll that starts it.
    pub fn track<R>(self: &Arc<Self>, poll: impl FnOnce() -> R) -> R {
        let outer = POLLED.with(|p| p.replace(Some(self.clone())));
        let result = poll();
        POLLED.with(|p| *p.borrow_mut() = outer);
        result
    }

    /// An attempt is out: its request handed to the HTTP client, and no
    /// answer to it final yet.
    pub fn now(&self) -> bool {
        self.now.load(Ordering::Acquire)
    }

    /// At least one attempt was made.
    pub fn ever(&self) -> bool {
        self.ever.load(Ordering::Acquire)
    }

    fn with_polled(f: impl FnOnce(&Sending)) {
        POLLED.with(|p| {
            if let Some(s) = &*p.borrow() {
                f(s);
            }
        });
    }
}

struct StoreWarnings;

impl Subscriber for StoreWarnings {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        (metadata.target() == TARGET && *metadata.level() <= Level::WARN)
            || (metadata.is_span() && metadata.name() == ATTEMPT)
    }

    fn new_span(&self, span: &Attributes<'_>) -> Id {
        if span.metadata().name() == ATTEMPT {
            Sending::with_polled(|s| {
                s.ever.store(true, Ordering::Release);
                s.now.store(true, Ordering::Release);
            });
        }
        Id::from_u64(1)
    }

    fn record(&self, _: &Id, values: &Record<'_>) {
        let mut retry = RetryRecorded(false);
        values.record(&mut retry);
        if retry.0 {
            Sending::with_polled(|s| s.now.store(false, Ordering::Release));
        }
    }

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        if event.metadata().target() != TARGET {
            return;
        }
        let mut message = Message(String::new());
        event.record(&mut message);
        eprintln!("warning: {}", message.0);
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}

/// Whether `retry_in_ms` is among the values recorded.
struct RetryRecorded(bool);

impl Visit for RetryRecorded {
    fn record_debug(&mut self, field: &Field, _: &dyn fmt::Debug) {
        if field.name() == "retry_in_ms" {
            self.0 = true;
        }
    }
}
