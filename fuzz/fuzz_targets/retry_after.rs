//! `Retry-After` parsing: never panics, never waits more than a year.
#![no_main]

use std::time::{Duration, SystemTime};

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (u32, &str)| {
    let (secs, value) = input;
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(u64::from(secs));
    if let Some(wait) = conduit_sdk::fuzzing::parse_retry_after(value, now) {
        assert!(
            wait <= Duration::from_secs(365 * 24 * 3600),
            "{value:?} -> {wait:?}"
        );
    }
});
