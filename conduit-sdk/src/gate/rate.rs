//! An explicit request rate, such as `120/min`.

use std::fmt;
use std::num::NonZeroU32;
use std::str::FromStr;
use std::time::Duration;

/// At most `count` requests in any span of `per`: a limit as a server
/// states it, for [`RateLimiter::fixed`](crate::RateLimiter::fixed). State
/// it as the server does: Conduit's default is `120/min`, which lets a
/// burst of 120 go at once where `2/s` would not.
///
/// Parsed from `N/min` or `N/s` (also `N/m`, `N/sec`, `N/second`,
/// `N/minute`), as `CONDUIT_RATE_LIMIT` and the CLI's `--rate` take it.
///
/// ```
/// use std::time::Duration;
/// use conduit_sdk::Rate;
///
/// let rate: Rate = "120/min".parse()?;
/// assert_eq!(rate, Rate::per_minute(120).unwrap());
/// assert_eq!(rate.interval(), Duration::from_millis(500));
/// assert!("0/s".parse::<Rate>().is_err());
/// # Ok::<(), conduit_sdk::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    count: NonZeroU32,
    per: Duration,
}

impl Rate {
    /// `count` requests per second; `None` for 0.
    pub fn per_second(count: u32) -> Option<Self> {
        Self::new(count, Duration::from_secs(1))
    }

    /// `count` requests per minute; `None` for 0.
    pub fn per_minute(count: u32) -> Option<Self> {
        Self::new(count, Duration::from_secs(60))
    }

    /// `count` requests per `per`; `None` for a zero count or period.
    pub fn new(count: u32, per: Duration) -> Option<Self> {
        let count = NonZeroU32::new(count)?;
        (!per.is_zero()).then_some(Self { count, per })
    }

    /// The requests allowed in a span.
    pub fn count(&self) -> u32 {
        self.count.get()
    }

    /// The span the count is allowed in.
    pub fn per(&self) -> Duration {
        self.per
    }

    /// The time between two requests at this rate, on average.
    pub fn interval(&self) -> Duration {
        self.per / self.count.get()
    }

    /// Requests per second.
    pub fn per_second_f64(&self) -> f64 {
        f64::from(self.count.get()) / self.per.as_secs_f64()
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.per.as_secs() {
            60 if self.per.subsec_nanos() == 0 => write!(f, "{}/min", self.count),
            1 if self.per.subsec_nanos() == 0 => write!(f, "{}/s", self.count),
            _ => write!(f, "{}/{:?}", self.count, self.per),
        }
    }
}

impl FromStr for Rate {
    type Err = crate::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || {
            crate::Error::invalid_input(format!(
                "rate {s:?} is not a positive whole number per min or s, such as 120/min"
            ))
        };
        let (count, unit) = s.trim().split_once('/').ok_or_else(bad)?;
        let count: u32 = count.trim().parse().map_err(|_| bad())?;
        let per = match unit.trim() {
            "min" | "m" | "minute" => Duration::from_secs(60),
            "s" | "sec" | "second" => Duration::from_secs(1),
            _ => return Err(bad()),
        };
        Self::new(count, per).ok_or_else(bad)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_counts_per_minute_and_second() {
        let r = |s: &str| s.parse::<Rate>().unwrap();
        assert_eq!(r("120/min"), Rate::per_minute(120).unwrap());
        assert_eq!(r(" 2 / s "), Rate::per_second(2).unwrap());
        assert_eq!(r("30/minute").interval(), Duration::from_secs(2));
        assert_eq!(r("4/sec").interval(), Duration::from_millis(250));
        assert_eq!(r("120/min").to_string(), "120/min");
        assert_eq!(r("5/s").to_string(), "5/s");
        assert!((r("120/min").per_second_f64() - 2.0).abs() < 1e-9);
    }

    #[test]
    fn refuses_anything_but_a_positive_count_per_min_or_s() {
        for bad in [
            "", "120", "0/min", "-1/s", "1.5/s", "x/s", "10/h", "10/", "/s", "1e3/s",
        ] {
            let e = bad.parse::<Rate>().unwrap_err();
            assert!(
                e.is_invalid_input() && e.to_string().contains("rate"),
                "{bad}: {e}"
            );
        }
    }
}
