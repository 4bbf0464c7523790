//! Client-side rate limiting: a token bucket that hands out reservations (requests or tokens per minute).

use std::sync::Mutex;
use std::time::Duration;

/// A token bucket refilled continuously at `per_minute / 60` per second, holding at most
/// `burst_seconds` worth. Callers *reserve* an amount and are told when they may go; the level may
/// go negative, so concurrent callers queue fairly without holding a lock while they wait.
/// Over any window of `w` seconds at most `per_minute * (w + burst_seconds) / 60` is admitted.
#[derive(Debug)]
pub(crate) struct TokenBucket {
    per_second: f64,
    capacity: f64,
    state: Mutex<BucketState>,
}

#[derive(Debug)]
struct BucketState {
    level: f64,
    at: Duration,
}

impl TokenBucket {
    pub(crate) fn new(per_minute: f64, burst_seconds: f64) -> Self {
        let per_second = per_minute / 60.0;
        let capacity = (per_second * burst_seconds).max(1.0);
        Self { per_second, capacity, state: Mutex::new(BucketState { level: capacity, at: Duration::ZERO }) }
    }

    fn refill(&self, state: &mut BucketState, now: Duration) {
        if now > state.at {
            let elapsed = (now - state.at).as_secs_f64();
            state.level = (state.level + elapsed * self.per_second).min(self.capacity);
            state.at = now;
        }
    }

    /// Take `amount` at time `now`; returns the time from which the caller may proceed.
    pub(crate) fn reserve(&self, now: Duration, amount: f64) -> Duration {
        let mut state = self.state.lock().expect("bucket lock");
        self.refill(&mut state, now);
        state.level -= amount;
        if state.level >= 0.0 {
            now.max(state.at)
        } else {
            state.at + Duration::from_secs_f64(-state.level / self.per_second)
        }
    }

    /// Give back (positive) or take more (negative) once the true amount is known.
    pub(crate) fn adjust(&self, now: Duration, refund: f64) {
        let mut state = self.state.lock().expect("bucket lock");
        self.refill(&mut state, now);
        state.level = (state.level + refund).min(self.capacity);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_queue_at_the_refill_rate() {
        let bucket = TokenBucket::new(60.0, 1.0);
        let secs = |n| Duration::from_secs(n);
        let goes: Vec<Duration> = (0..4).map(|_| bucket.reserve(secs(0), 1.0)).collect();
        assert_eq!(goes, vec![secs(0), secs(1), secs(2), secs(3)]);
        // After a long pause the bucket is full again, but never above its capacity.
        assert_eq!(bucket.reserve(secs(100), 1.0), secs(100));
        assert_eq!(bucket.reserve(secs(100), 1.0), secs(101));
    }

    #[test]
    fn refunds_shorten_later_waits() {
        let bucket = TokenBucket::new(600.0, 1.0); // 10 per second, capacity 10
        assert_eq!(bucket.reserve(Duration::ZERO, 30.0), Duration::from_secs(2));
        bucket.adjust(Duration::ZERO, 20.0);
        assert_eq!(bucket.reserve(Duration::ZERO, 10.0), Duration::from_secs(1));
    }
}
