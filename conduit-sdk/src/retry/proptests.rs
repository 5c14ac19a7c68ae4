//! Property tests of `Retry-After` parsing. They run with 64 cases in
//! `cargo test` and with many more under `cargo xtask fuzz`
//! (`CONDUIT_FUZZ_CASES`); the cargo-fuzz target `retry_after` reaches the
//! parser through the `fuzzing` feature.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use proptest::prelude::*;
use proptest::test_runner::Config;

use super::{MAX_RETRY_AFTER as YEAR, parse_retry_after};

fn cases() -> u32 {
    std::env::var("CONDUIT_FUZZ_CASES")
        .ok()
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(64)
}

/// No regression files are written next to the sources: a failure prints
/// its minimal input, which becomes a plain test.
fn config() -> Config {
    Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    }
}

/// Strings shaped like `Retry-After` values, valid or nearly so.
fn retry_after_like() -> impl Strategy<Value = String> {
    prop_oneof![
        "[ \t]{0,2}[0-9]{0,25}(\\.[0-9]{0,10})?([eE][+-]?[0-9]{1,4})?[ \t]{0,2}",
        "[-+ .0-9eE]{0,24}",
        "(inf|Inf|INF|NaN|nan|infinity|-inf|0x1F|1_000|١٢)",
        "(Mon|Tue|Wed|Thu|Fri|Sat|Sun|Xyz), [0-9]{1,2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec|Foo) [0-9]{1,6} [0-9]{2}:[0-9]{2}:[0-9]{2} (GMT|UTC|PST)",
        "(Sunday|Monday), [0-9]{2}-(Nov|Dec)-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2} GMT",
        "(Sun|Mon) (Nov|Dec) [ 0-9][0-9] [0-9]{2}:[0-9]{2}:[0-9]{2} [0-9]{4}",
    ]
}

fn now_strategy() -> impl Strategy<Value = SystemTime> {
    (0u64..=8_000_000_000).prop_map(|s| UNIX_EPOCH + Duration::from_secs(s))
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn retry_after_never_panics_and_stays_within_a_year(
        value in any::<String>(),
        now in now_strategy(),
    ) {
        if let Some(wait) = parse_retry_after(&value, now) {
            prop_assert!(wait <= YEAR, "{value:?} -> {wait:?}");
        }
    }

    #[test]
    fn retry_after_like_values_never_panic_and_stay_within_a_year(
        value in retry_after_like(),
        now in now_strategy(),
    ) {
        if let Some(wait) = parse_retry_after(&value, now) {
            prop_assert!(wait <= YEAR, "{value:?} -> {wait:?}");
        }
    }

    #[test]
    fn digits_are_that_many_seconds_capped_at_a_year(
        digits in "[0-9]{1,40}",
        left in "[ \t]{0,3}",
        right in "[ \t]{0,3}",
        now in now_strategy(),
    ) {
        let significant = digits.trim_start_matches('0');
        let expected = if significant.len() > 12 {
            YEAR
        } else {
            Duration::from_secs(significant.parse().unwrap_or(0)).min(YEAR)
        };
        let value = format!("{left}{digits}{right}");
        prop_assert_eq!(parse_retry_after(&value, now), Some(expected), "{:?}", value);
    }

    #[test]
    fn an_http_date_waits_until_that_second(
        // Dates from 1973 on, so that `now + offset` is never before 1970.
        now in (100_000_000u64..=8_000_000_000).prop_map(|s| UNIX_EPOCH + Duration::from_secs(s)),
        offset in -100_000_000i64..=100_000_000,
    ) {
        // HTTP-dates have whole seconds: compare against a whole-second now.
        let at = if offset >= 0 {
            now + Duration::from_secs(offset.unsigned_abs())
        } else {
            now - Duration::from_secs(offset.unsigned_abs())
        };
        let expected = Duration::from_secs(offset.max(0).unsigned_abs()).min(YEAR);
        let value = httpdate::fmt_http_date(at);
        prop_assert_eq!(parse_retry_after(&value, now), Some(expected), "{}", value);
    }
}
