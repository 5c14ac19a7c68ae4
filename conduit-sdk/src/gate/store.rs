//! The gate's state in Redis, so that a fleet of processes keeps to one
//! workspace limit (feature `redis`).
//!
//! Three atomic server-side scripts, timed by Redis's own clock (`TIME`) so
//! that machines whose clocks differ still agree:
//! - `acquire`: waits out the partition's cooldown and, at an explicit
//!   rate, takes a slot in the fleet's window once one is free (the
//!   allowance of [`window`](super::window), kept as a sorted set);
//! - `answered`: holds an answered request's slot until a span after the
//!   answer;
//! - `cooldown`: records a 429's deadline, keeping the later one.
//!
//! No deadline in the store holds calls more than
//! [`RateLimiter::MAX_COOLDOWN`] (plus a span, for a slot in the window)
//! ahead: the scripts write none further, and validate what
//! they read, so a corrupt or foreign value is repaired, never obeyed
//! forever (see [`DEADLINE`]).
//!
//! Keys are `conduit:gate:v1:<hash>:{cooldown,window}`, the hash being the first
//! 16 hex digits of the partition name's SHA-256 (the name itself may be a
//! workspace id; the token is never part of it), and expire on their own a
//! second after they stop mattering.
//!
//! The store never costs a call: an operation that fails or takes longer
//! than [`OP_TIMEOUT`] marks the store down, the call goes on under the
//! in-process gate, and a background task probes the store until it
//! answers again. One warning per outage, naming its cause; the outage
//! ends when an operation succeeds again (logged once at info).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use redis::Script;
use redis::aio::ConnectionManager;
use tokio::sync::OnceCell;

use crate::{Error, RateLimiter};

/// The longest a store operation may take before the call goes on without.
pub(crate) const OP_TIMEOUT: Duration = Duration::from_millis(100);
/// How often a store that is down is probed.
const PROBE_EVERY: Duration = Duration::from_secs(1);

/// Reads a deadline key (µs on Redis's clock), holding no call more than
/// `limit` µs past `now`, whoever wrote it: an older SDK, a person, a bug.
/// The scripts below only write numbers a little ahead of `now` with a
/// matching expiry; anything else there is repaired on the spot, because
/// left in place it would hold (or fail) every call of the workspace for
/// as long as it stays:
/// - not a finite number (`garbage`, `inf`, `nan`, or not a string at
///   all): deleted, as if there were no deadline;
/// - more than `limit` ahead: cut to `now + limit`;
/// - no expiry (or a longer one than its value needs): given the expiry
///   the scripts give it, or deleted when it is already past.
const DEADLINE: &str = r"
local function deadline(key, now, limit)
  local raw = redis.pcall('GET', key)
  if not raw then return 0 end
  local value = type(raw) == 'string' and tonumber(raw)
  if not value or value - value ~= 0 then
    redis.call('DEL', key)
    return 0
  end
  local capped = math.min(value, now + limit)
  local ttl = redis.call('PTTL', key)
  local want = math.ceil((capped - now) / 1000) + 1000
  if capped < value or ttl < 0 or ttl > want + 1000 then
    if capped <= now then
      redis.call('DEL', key)
      return 0
    end
    redis.call('SET', key, capped, 'PX', want)
  end
  return capped
end
";

/// Waits out the cooldown, then (at a rate) reserves a slot in the
/// window. KEYS: cooldown, window. ARGV: count (0: no rate), span µs, max
/// wait µs, member; `CEILING` is [`RateLimiter::MAX_COOLDOWN`] in µs,
/// written into the script because Redis refuses a command of more than
/// ten parts before authentication, and a wrong password must read as
/// one. Returns {0, wait µs, of which cooldown µs}: go after the cooldown
/// (no rate), or now, the slot taken; {1, cooldown µs left, 0} when that is
/// over the max wait; {2, wait µs, 0} when the window's next slot is; {3,
/// wait µs, of which cooldown µs} when the cooldown or the next slot is
/// that far off: ask again then.
///
/// The window is a sorted set of the fleet's last `count` requests, each
/// scored with the latest time the server may have counted it: when it
/// was let through, then its answer ([`ANSWERED`]). A request goes no
/// sooner than a span after the `count`-th latest, and takes its slot only
/// when it is due: a slot promised ahead would be reckoned from requests
/// still unanswered, which the server may count later than they were let
/// through. Scores are validated as deadlines are: a
/// window that is not a sorted set is deleted, and scores further ahead
/// than a ceiling and a span are dropped, so a corrupt value never holds
/// calls for long.
const ACQUIRE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local count = tonumber(ARGV[1])
local span = tonumber(ARGV[2])
local ceiling = CEILING
local cool = deadline(KEYS[1], now, ceiling)
if cool - now > tonumber(ARGV[3]) then
  return {1, cool - now, 0}
end
local start = math.max(now, cool)
if count > 0 then
  local stale = redis.pcall('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - span)
  if type(stale) == 'table' and stale.err then
    redis.call('DEL', KEYS[2])
  end
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '(' .. (now + ceiling + span), '+inf')
  local n = redis.call('ZCARD', KEYS[2])
  if n >= count then
    local oldest = redis.call('ZRANGE', KEYS[2], n - count, n - count, 'WITHSCORES')
    start = math.max(start, tonumber(oldest[2]) + span)
  end
  if start - now > tonumber(ARGV[3]) then
    return {2, start - now, 0}
  end
  if start > now then
    return {3, start - now, math.max(cool - now, 0)}
  end
  redis.call('ZADD', KEYS[2], now, ARGV[4])
  redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -count - 1)
  redis.call('PEXPIRE', KEYS[2], math.ceil(span / 1000) + 1000)
end
return {0, start - now, math.max(cool - now, 0)}
";

/// An answer came for a request of the window: its slot (KEYS[1], member
/// ARGV[1]) is held until a span (ARGV[2] µs) after now, if it is still in
/// the window and held less.
const ANSWERED: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local score = redis.pcall('ZSCORE', KEYS[1], ARGV[1])
if type(score) == 'string' and tonumber(score) < now then
  redis.call('ZADD', KEYS[1], 'XX', now, ARGV[1])
  local want = math.ceil(tonumber(ARGV[2]) / 1000) + 1000
  if redis.call('PTTL', KEYS[1]) < want then
    redis.call('PEXPIRE', KEYS[1], want)
  end
end
return 0
";

/// Records a cooldown of ARGV[1] µs from now, at most the ceiling ARGV[2]
/// µs, keeping a later one.
const COOLDOWN: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local ceiling = tonumber(ARGV[2])
local wait = math.min(tonumber(ARGV[1]), ceiling)
local cool = now + wait
if cool > deadline(KEYS[1], now, ceiling) then
  redis.call('SET', KEYS[1], cool, 'PX', math.ceil(wait / 1000) + 1000)
end
return 0
";

/// What `acquire` said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Acquired {
    /// Go after `wait` (without a rate, the cooldown; with one, none), of
    /// which `cooldown` is the cooldown's; `slot` names the slot taken in
    /// the window.
    After {
        wait: Duration,
        cooldown: Duration,
        slot: Option<String>,
    },
    /// The cooldown left is over the caller's `max_wait`; nothing reserved.
    Refused(Duration),
    /// The window's next slot is further off than the caller's
    /// `max_wait`; nothing taken.
    Full,
    /// The cooldown or the window's next slot is `wait` away (`cooldown`
    /// of it the cooldown's): ask again then.
    Later { wait: Duration, cooldown: Duration },
}

/// An explicit rate as the store applies it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Allowance {
    pub(crate) count: u32,
    pub(crate) span: Duration,
}

/// A Redis store, shared by every partition of a limiter.
pub(crate) struct RedisStore {
    /// The URL as given, trimmed: two clients naming the same store agree.
    url: String,
    client: redis::Client,
    /// Made on first use, inside the caller's runtime; it reconnects by
    /// itself.
    connection: OnceCell<ConnectionManager>,
    /// The URL with its password masked, for messages.
    shown: String,
    acquire: Script,
    cooldown: Script,
    answered: Script,
    /// Whether calls use the store: false from a failure until the probe
    /// gets an answer.
    up: Arc<AtomicBool>,
    /// Whether an outage was reported and no operation succeeded since.
    outage: AtomicBool,
    /// Whether a probe is running.
    probing: Arc<AtomicBool>,
}

impl RedisStore {
    /// A store at `url` (`redis://[:password@]host[:port][/db]`, or
    /// `rediss://`). Nothing is connected yet: an unreachable server costs
    /// no call, now or later.
    pub(crate) fn new(url: &str) -> Result<Self, Error> {
        let shown = crate::shown::mask_url(url.trim());
        let client = redis::Client::open(url.trim())
            .map_err(|e| Error::config(format!("rate store URL {shown:?} is not usable: {e}")))?;
        Ok(Self {
            url: url.trim().to_owned(),
            client,
            connection: OnceCell::new(),
            shown,
            acquire: Script::new(&format!(
                "{DEADLINE}{}",
                ACQUIRE.replace("CEILING", &micros(RateLimiter::MAX_COOLDOWN).to_string())
            )),
            cooldown: Script::new(&format!("{DEADLINE}{COOLDOWN}")),
            answered: Script::new(ANSWERED),
            up: Arc::new(AtomicBool::new(true)),
            outage: AtomicBool::new(false),
            probing: Arc::new(AtomicBool::new(false)),
        })
    }

    /// The URL as given.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// The URL as shown in messages.
    pub(crate) fn shown(&self) -> &str {
        &self.shown
    }

    /// Whether calls use the store now.
    pub(crate) fn is_up(&self) -> bool {
        self.up.load(Ordering::Acquire)
    }

    /// Waits out `key`'s cooldown and, with an `allowance`, takes a slot
    /// in its window if one is free now. `None` when the store did not answer: the call
    /// goes on under the in-process gate.
    pub(crate) async fn acquire(
        &self,
        key: &str,
        allowance: Option<Allowance>,
        max_wait: Duration,
    ) -> Option<Acquired> {
        let (count, span) = allowance.map_or((0, Duration::ZERO), |a| (a.count, a.span));
        // Unique within the window: two requests are two members.
        let member = format!("{:016x}", fastrand::u64(..));
        let answer: Option<(u8, i64, i64)> = self
            .guard(|| async {
                let mut invocation = self.acquire.key(format!("{key}:cooldown"));
                invocation
                    .key(format!("{key}:window"))
                    .arg(count)
                    .arg(micros(span))
                    .arg(micros(max_wait))
                    .arg(&member);
                let mut connection = self.connection().await?;
                invocation.invoke_async(&mut connection).await
            })
            .await;
        let (code, wait, cooldown) = answer?;
        let duration = |us: i64| Duration::from_micros(us.max(0).unsigned_abs());
        Some(match code {
            1 => Acquired::Refused(duration(wait)),
            2 => Acquired::Full,
            3 => Acquired::Later {
                wait: duration(wait),
                cooldown: duration(cooldown),
            },
            _ => Acquired::After {
                wait: duration(wait),
                cooldown: duration(cooldown),
                slot: allowance.map(|_| member),
            },
        })
    }

    /// Records a 429's cooldown of `wait` for `key`, keeping a later one.
    /// One response holds the fleet for [`RateLimiter::MAX_COOLDOWN`] at
    /// most, whatever it asked.
    pub(crate) async fn cooldown(&self, key: &str, wait: Duration) {
        let _: Option<i64> = self
            .guard(|| async {
                let mut invocation = self.cooldown.key(format!("{key}:cooldown"));
                invocation
                    .arg(micros(wait.min(RateLimiter::MAX_COOLDOWN)))
                    .arg(micros(RateLimiter::MAX_COOLDOWN));
                let mut connection = self.connection().await?;
                invocation.invoke_async(&mut connection).await
            })
            .await;
    }

    /// An answer came for a request that took `slot` in `key`'s window of
    /// `span`: the slot is held until a span from now.
    pub(crate) async fn answered(&self, key: &str, slot: &str, span: Duration) {
        let _: Option<i64> = self
            .guard(|| async {
                let mut invocation = self.answered.key(format!("{key}:window"));
                invocation.arg(slot).arg(micros(span));
                let mut connection = self.connection().await?;
                invocation.invoke_async(&mut connection).await
            })
            .await;
    }

    /// The connection manager, made on first use.
    async fn connection(&self) -> redis::RedisResult<ConnectionManager> {
        self.connection
            .get_or_try_init(|| {
                // No retries inside the manager: its backoff sleeps would
                // outlast OP_TIMEOUT, so a refused port or a wrong password
                // would show as a timeout. `guard` retries, and the probe.
                let config = redis::aio::ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(OP_TIMEOUT))
                    .set_response_timeout(Some(OP_TIMEOUT))
                    .set_number_of_retries(0);
                std::future::ready(self.client.get_connection_manager_lazy(config))
            })
            .await
            .cloned()
    }

    /// Runs a store operation under [`OP_TIMEOUT`]; on failure marks the
    /// store down and starts probing it. A connection found broken (Redis
    /// restarted) is tried once more: the connection manager reconnects on
    /// the spot.
    ///
    /// One warning per outage, naming its cause: an outage lasts until an
    /// operation succeeds again, not merely until the probe's PING does
    /// (a store that answers PING but fails the scripts would otherwise
    /// warn again at every probe).
    async fn guard<T, F, Fut>(&self, op: F) -> Option<T>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        let mut failure = String::new();
        for attempt in 0..2 {
            match tokio::time::timeout(OP_TIMEOUT, op()).await {
                Ok(Ok(value)) => {
                    if self.outage.swap(false, Ordering::AcqRel) {
                        tracing::info!(
                            target: "conduit_sdk::rate_store",
                            store = %self.shown,
                            "rate store (Redis at {}) is back; the fleet paces together again",
                            self.shown
                        );
                    }
                    return Some(value);
                }
                Ok(Err(e)) if attempt == 0 && (e.is_io_error() || e.is_connection_dropped()) => {
                    failure = cause(&e);
                }
                Ok(Err(e)) => {
                    failure = cause(&e);
                    break;
                }
                Err(_) => {
                    failure = format!("no answer within {OP_TIMEOUT:?}");
                    break;
                }
            }
        }
        self.up.store(false, Ordering::Release);
        if self.outage.swap(true, Ordering::AcqRel) {
            tracing::debug!(
                target: "conduit_sdk::rate_store",
                store = %self.shown,
                "rate store (Redis at {}) still unavailable: {failure}",
                self.shown
            );
        } else {
            tracing::warn!(
                target: "conduit_sdk::rate_store",
                store = %self.shown,
                "rate store (Redis at {}) unavailable: {failure}; this process paces alone until it is back",
                self.shown
            );
        }
        self.probe();
        None
    }

    /// Probes the store in the background until it answers PING, then
    /// lets calls use it again (the next operation that succeeds ends the
    /// outage). One probe at a time.
    fn probe(&self) {
        if self.probing.swap(true, Ordering::AcqRel) {
            return;
        }
        let (up, probing) = (self.up.clone(), self.probing.clone());
        let (Ok(runtime), Some(connection)) = (
            tokio::runtime::Handle::try_current(),
            self.connection.get().cloned(),
        ) else {
            // Nothing to probe with: the next call tries the store again.
            up.store(true, Ordering::Release);
            probing.store(false, Ordering::Release);
            return;
        };
        runtime.spawn(async move {
            let mut connection = connection;
            loop {
                tokio::time::sleep(PROBE_EVERY).await;
                let ping = redis::cmd("PING");
                let answer = ping.query_async::<String>(&mut connection);
                if let Ok(Ok(_)) = tokio::time::timeout(OP_TIMEOUT, answer).await {
                    up.store(true, Ordering::Release);
                    probing.store(false, Ordering::Release);
                    return;
                }
            }
        });
    }
}

/// Why a store operation failed, in words that say what to fix.
fn cause(e: &redis::RedisError) -> String {
    let code = e.code().unwrap_or_default();
    let what = if e.kind() == redis::ErrorKind::AuthenticationFailed
        || matches!(code, "NOAUTH" | "WRONGPASS")
    {
        "authentication failed (check the user and password in the URL)"
    } else if code == "NOPERM" {
        "permission denied (the Redis user may not run scripts on these keys)"
    } else if e.is_connection_refusal() {
        "connection refused (nothing listens at that address)"
    } else if e.is_timeout() {
        "timed out"
    } else if e.is_io_error() || e.is_connection_dropped() {
        "connection failed"
    } else {
        "Redis refused the operation"
    };
    format!("{what}: {e}")
}

/// The store key of a partition: namespaced, hashed.
pub(crate) fn key(partition: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(partition.as_bytes());
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("conduit:gate:v1:{hex}")
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_namespaced_hashes() {
        let k = key("workspace:ws_1");
        assert!(k.starts_with("conduit:gate:v1:") && k.len() == 32, "{k}");
        assert!(!k.contains("ws_1"));
        assert_ne!(k, key("workspace:ws_2"));
    }

    #[test]
    fn passwords_are_masked_whatever_they_hold() {
        for c in ["/", "?", "#", "@", ":", "%", " "] {
            let url = format!(" redis://us{c}er:RD{c}PASS777@127.0.0.1:16390/0 ");
            match RedisStore::new(&url) {
                Ok(store) => {
                    assert_eq!(store.shown(), "redis://***@127.0.0.1:16390/0", "{url}");
                }
                Err(e) => {
                    let shown = format!("{e} {e:?}");
                    assert!(e.is_config(), "{url}: {shown}");
                    assert!(!shown.contains("PASS777"), "{url}: {shown}");
                    assert!(!shown.contains("er:RD"), "{url}: {shown}");
                }
            }
        }
        let e = RedisStore::new("redis://:s3cret@[bad")
            .err()
            .expect("refused");
        assert!(!format!("{e} {e:?}").contains("s3cret"), "{e:?}");
    }
}
