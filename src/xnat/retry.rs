//! When to try a request again, how long to wait first, and the one loop that does it.
//!
//! Retried: 5xx and 429 answers and connection failures, with exponential backoff and
//! "equal jitter" (half the delay fixed, half random) so many clients do not retry in step.
//! Bounded twice: by a number of retries and by the time since the first attempt. Never
//! retried: 4xx answers other than 429 (a 401 is handled apart: log in again, once).
//! [`RetryPolicy::delay`] and [`verdict`] are pure; [`run`] is the loop every request and the
//! login go through.

use std::future::Future;
use std::time::{Duration, Instant};

use super::error::XnatError;

/// How a request that failed may be retried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (0 = never retry).
    pub max_retries: u32,
    /// No retry starts once this much time has passed since the first attempt, and no wait
    /// goes past it.
    pub max_elapsed: Duration,
    /// The wait before the first retry, doubled for each further one.
    pub base_delay: Duration,
    /// The longest single wait.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 5,
            max_elapsed: Duration::from_secs(30),
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(8),
        }
    }
}

impl RetryPolicy {
    /// No retries at all.
    pub fn never() -> Self {
        RetryPolicy {
            max_retries: 0,
            ..Self::default()
        }
    }

    /// The wait before retry number `retries_done + 1`, or `None` to give up.
    ///
    /// `jitter` is a random number in `[0, 1)`; `retry_after` is the server's `Retry-After`,
    /// honoured as a lower bound.
    pub fn delay(
        &self,
        retries_done: u32,
        elapsed: Duration,
        jitter: f64,
        retry_after: Option<Duration>,
    ) -> Option<Duration> {
        if retries_done >= self.max_retries || elapsed >= self.max_elapsed {
            return None;
        }
        let exp = self
            .base_delay
            .saturating_mul(1u32.checked_shl(retries_done.min(31)).unwrap_or(u32::MAX))
            .min(self.max_delay);
        let jitter = jitter.clamp(0.0, 1.0);
        let mut wait = exp / 2 + exp.mul_f64(jitter / 2.0);
        if let Some(after) = retry_after {
            wait = wait.max(after.min(self.max_delay));
        }
        let left = self.max_elapsed - elapsed;
        if wait >= left {
            return None;
        }
        Some(wait)
    }
}

/// What to do with an answer's status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// 1xx-3xx: done.
    Success,
    /// 401: the session expired; log in again once and replay.
    Relogin,
    /// 429 or 5xx: may be retried.
    Retry,
    /// Any other 4xx: fail now.
    Fail,
}

/// Classify a status code.
pub fn verdict(status: u16) -> Verdict {
    match status {
        401 => Verdict::Relogin,
        429 | 500..=599 => Verdict::Retry,
        400..=499 => Verdict::Fail,
        _ if status >= 600 => Verdict::Fail,
        _ => Verdict::Success,
    }
}

/// The `Retry-After` header in its seconds form (the date form is rare and ignored).
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// How an attempt that did not succeed ended.
pub(crate) enum Failure {
    /// Another attempt may succeed: `reason` goes in the log line of the retry, `error` is
    /// the answer if the budget runs out, `after` the server's `Retry-After`.
    Transient {
        reason: String,
        error: XnatError,
        after: Option<Duration>,
    },
    /// No attempt will do better.
    Final(XnatError),
}

/// Run `attempt` (given its 1-based number) until it succeeds, fails for good, or `policy`
/// allows no more retries. `what` (method and URL) names the request in the retry log lines.
pub(crate) async fn run<T, F, Fut>(
    policy: &RetryPolicy,
    what: &str,
    mut attempt: F,
) -> Result<T, XnatError>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<T, Failure>>,
{
    let started = Instant::now();
    let mut retries = 0u32;
    loop {
        match attempt(retries + 1).await {
            Ok(value) => return Ok(value),
            Err(Failure::Final(error)) => return Err(error),
            Err(Failure::Transient {
                reason,
                error,
                after,
            }) => match policy.delay(retries, started.elapsed(), rand::random(), after) {
                Some(wait) => {
                    tracing::info!(
                        attempt = retries + 1,
                        "{what}: {reason}; retrying in {wait:?}"
                    );
                    tokio::time::sleep(wait).await;
                    retries += 1;
                }
                None => return Err(error),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_retries: 5,
            max_elapsed: Duration::from_secs(30),
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(2),
        }
    }

    #[test]
    fn delays_grow_exponentially_within_jitter_bounds() {
        let p = policy();
        for n in 0..5 {
            let exp = Duration::from_millis(100 * (1 << n)).min(Duration::from_secs(2));
            let low = p.delay(n, Duration::ZERO, 0.0, None).unwrap();
            let high = p.delay(n, Duration::ZERO, 0.999_999, None).unwrap();
            assert_eq!(low, exp / 2);
            assert!(high <= exp && high > exp * 9 / 10, "{n}: {high:?}");
        }
    }

    #[test]
    fn delay_is_capped() {
        let p = RetryPolicy {
            max_retries: 100,
            ..policy()
        };
        let d = p.delay(60, Duration::ZERO, 0.999, None).unwrap();
        assert!(d <= Duration::from_secs(2));
    }

    #[test]
    fn count_bound_stops_retries() {
        let p = policy();
        assert!(p.delay(4, Duration::ZERO, 0.5, None).is_some());
        assert_eq!(p.delay(5, Duration::ZERO, 0.5, None), None);
        assert_eq!(
            RetryPolicy::never().delay(0, Duration::ZERO, 0.5, None),
            None
        );
    }

    #[test]
    fn time_bound_stops_retries() {
        let p = policy();
        assert_eq!(p.delay(0, Duration::from_secs(30), 0.0, None), None);
        // A wait that would end past the budget is not started either.
        assert_eq!(p.delay(4, Duration::from_millis(29_500), 0.0, None), None);
        assert!(p
            .delay(0, Duration::from_millis(29_000), 0.0, None)
            .is_some());
    }

    #[test]
    fn retry_after_is_a_lower_bound_capped_by_max_delay() {
        let p = policy();
        let d = p
            .delay(0, Duration::ZERO, 0.0, Some(Duration::from_secs(1)))
            .unwrap();
        assert_eq!(d, Duration::from_secs(1));
        let d = p
            .delay(0, Duration::ZERO, 0.0, Some(Duration::from_secs(3600)))
            .unwrap();
        assert_eq!(d, Duration::from_secs(2));
    }

    #[test]
    fn verdicts() {
        assert_eq!(verdict(200), Verdict::Success);
        assert_eq!(verdict(206), Verdict::Success);
        assert_eq!(verdict(304), Verdict::Success);
        assert_eq!(verdict(401), Verdict::Relogin);
        assert_eq!(verdict(429), Verdict::Retry);
        assert_eq!(verdict(500), Verdict::Retry);
        assert_eq!(verdict(503), Verdict::Retry);
        for s in [400, 403, 404, 405, 409, 416, 417] {
            assert_eq!(verdict(s), Verdict::Fail, "{s}");
        }
    }

    fn transient(n: u32) -> Failure {
        Failure::Transient {
            reason: "503".into(),
            error: XnatError::protocol("u", format!("gave up after {n}")),
            after: None,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_loop_retries_transient_failures_within_the_policy() {
        let calls = std::sync::atomic::AtomicU32::new(0);
        let got = run(&policy(), "GET u", |n| {
            calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            async move {
                if n < 3 {
                    Err(transient(n))
                } else {
                    Ok(n)
                }
            }
        })
        .await
        .unwrap();
        assert_eq!(got, 3);
        let err = run(
            &policy(),
            "GET u",
            |n| async move { Err::<(), _>(transient(n)) },
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains("gave up after 6"), "{err}");
        let err = run(&policy(), "GET u", |_| async {
            Err::<(), _>(Failure::Final(XnatError::protocol("u", "final")))
        })
        .await
        .unwrap_err();
        assert!(err.to_string().contains("final"));
        assert_eq!(calls.into_inner(), 3);
    }

    #[test]
    fn retry_after_parsing() {
        assert_eq!(parse_retry_after(" 7 "), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }
}
