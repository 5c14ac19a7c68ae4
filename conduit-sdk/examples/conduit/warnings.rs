//! The one line the CLI prints when the rate store (Redis) fails: the SDK
//! logs it as a `tracing` warning; this subscriber shows only those.

use std::fmt;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// The SDK's target for rate-store events.
const TARGET: &str = "conduit_sdk::rate_store";

/// Prints the SDK's rate-store warnings on stderr, one line each.
pub fn print_store_warnings() {
    let _ = tracing::subscriber::set_global_default(StoreWarnings);
}

struct StoreWarnings;

impl Subscriber for StoreWarnings {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.target() == TARGET && *metadata.level() <= Level::WARN
    }

    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
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
