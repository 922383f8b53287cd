//! A token-bucket rate limiter for searches.
//!
//! The bucket holds up to `burst` tokens and refills at `per_second`; each
//! search takes one token, waiting (asynchronously) for it when the bucket
//! is empty. Waiters are served in the order they reserve: a reservation
//! may drive the balance negative, and each waiter sleeps until its own
//! token has accrued, so no search starves. A waiter that is cancelled
//! (its search timed out or its caller went away) gives its token back, so
//! under overload with timeouts the debt stays bounded by the waiters that
//! are still waiting. The state is two numbers, valid whatever a panicking
//! holder left: a poisoned lock is used as is, never bypassed.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::error::{Error, Result};

/// A token bucket.
#[derive(Debug)]
pub struct RateLimiter {
    per_second: f64,
    burst: f64,
    state: Mutex<(f64, Instant)>,
}

impl RateLimiter {
    /// `per_second` searches a second on average, bursts of up to `burst`.
    pub fn new(per_second: f64, burst: u32) -> Result<RateLimiter> {
        if !(per_second.is_finite() && per_second > 0.0) || burst == 0 {
            return Err(Error::InvalidArgument(format!(
                "rate limit needs a positive rate and burst, got {per_second}/s and {burst}"
            )));
        }
        Ok(RateLimiter {
            per_second,
            burst: f64::from(burst),
            state: Mutex::new((f64::from(burst), Instant::now())),
        })
    }

    /// How long the caller must wait for its token (reserving it now).
    fn state(&self) -> std::sync::MutexGuard<'_, (f64, Instant)> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn reserve(&self) -> Duration {
        let mut s = self.state();
        let now = Instant::now();
        let (tokens, last) = *s;
        let refilled =
            (tokens + now.duration_since(last).as_secs_f64() * self.per_second).min(self.burst);
        let after = refilled - 1.0;
        *s = (after, now);
        if after >= 0.0 {
            Duration::ZERO
        } else {
            // Capped: an absurdly slow rate must not overflow a Duration.
            Duration::try_from_secs_f64(-after / self.per_second).unwrap_or(Duration::MAX)
        }
    }

    /// Takes one token, waiting for it if the bucket is empty. Dropping the
    /// future before it completes returns the token.
    pub async fn acquire(&self) {
        let wait = self.reserve();
        if wait.is_zero() {
            return;
        }
        let refund = Refund(Some(self));
        tokio::time::sleep(wait).await;
        std::mem::forget(refund);
    }
}

/// Returns a reserved token when a waiter is cancelled.
struct Refund<'a>(Option<&'a RateLimiter>);

impl Drop for Refund<'_> {
    fn drop(&mut self) {
        if let Some(rl) = self.0.take() {
            let mut s = rl.state();
            s.0 = (s.0 + 1.0).min(rl.burst);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn bursts_then_paces() {
        let rl = RateLimiter::new(10.0, 3).unwrap();
        let start = tokio::time::Instant::now();
        for _ in 0..3 {
            rl.acquire().await;
        }
        // The first three are the burst; the next seven take 0.7 s of
        // refill at 10 a second (paused time advances exactly).
        assert!(start.elapsed() < Duration::from_millis(5));
        for _ in 0..7 {
            rl.acquire().await;
        }
        let t = start.elapsed().as_secs_f64();
        assert!((0.65..0.75).contains(&t), "{t}");
        assert!(RateLimiter::new(0.0, 1).is_err());
        assert!(RateLimiter::new(1.0, 0).is_err());
    }

    /// Issue 15, item 9: 200 waiters that give up after 10 ms must not
    /// leave 20 s of debt behind (before the fix, the next search waited
    /// for every cancelled reservation).
    #[tokio::test(start_paused = true)]
    async fn cancelled_waiters_give_their_tokens_back() {
        let rl = RateLimiter::new(10.0, 1).unwrap();
        rl.acquire().await;
        let mut cancelled = 0;
        for _ in 0..200 {
            // Most give up; every tenth finds a token refilled meanwhile.
            if tokio::time::timeout(Duration::from_millis(10), rl.acquire())
                .await
                .is_err()
            {
                cancelled += 1;
            }
        }
        assert!(cancelled >= 150, "{cancelled} cancelled");
        let start = tokio::time::Instant::now();
        rl.acquire().await;
        let t = start.elapsed().as_secs_f64();
        assert!(t <= 0.1 + 1e-6, "waited {t} s after cancelled waiters");
    }

    #[tokio::test(start_paused = true)]
    async fn a_poisoned_lock_still_limits() {
        let rl = std::sync::Arc::new(RateLimiter::new(10.0, 1).unwrap());
        let r = rl.clone();
        let _ = std::thread::spawn(move || {
            let _g = r.state.lock().unwrap();
            panic!("poison");
        })
        .join();
        assert!(rl.state.is_poisoned());
        let start = tokio::time::Instant::now();
        for _ in 0..3 {
            rl.acquire().await;
        }
        let t = start.elapsed().as_secs_f64();
        assert!((0.19..0.21).contains(&t), "{t}");
    }
}
