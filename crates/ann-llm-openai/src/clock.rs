//! The clock the backend waits on (backoff, `Retry-After`, rate limits): tokio time, or a manual one in tests.

use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;

/// Time as the backend sees it. Transport timeouts always run on tokio time; every *wait* the
/// backend decides on (backoff, `Retry-After`, rate limits) goes through this trait, so tests can
/// run them on a [`ManualClock`] and check them without sleeping.
#[async_trait]
pub trait Clock: Send + Sync + fmt::Debug {
    /// Monotonic time since an arbitrary origin fixed when the clock was made.
    fn now(&self) -> Duration;

    /// Wall-clock time; only used to read `Retry-After` HTTP dates.
    fn system_time(&self) -> SystemTime;

    /// Wait until `now()` reaches `deadline` (returns at once if it already has).
    async fn sleep_until(&self, deadline: Duration);

    /// Wait for `duration`.
    async fn sleep(&self, duration: Duration) {
        self.sleep_until(self.now() + duration).await;
    }
}

/// The real clock: tokio time (so tokio's paused test clock applies) and the system wall clock.
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    origin: tokio::time::Instant,
}

impl Default for TokioClock {
    fn default() -> Self {
        Self { origin: tokio::time::Instant::now() }
    }
}

#[async_trait]
impl Clock for TokioClock {
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }

    fn system_time(&self) -> SystemTime {
        SystemTime::now()
    }

    async fn sleep_until(&self, deadline: Duration) {
        tokio::time::sleep_until(self.origin + deadline).await;
    }
}

/// A virtual clock for tests: sleeping returns at once, moves the clock forward to the deadline
/// and is recorded, so a test can check every wait the backend decided on.
#[derive(Debug)]
pub struct ManualClock {
    epoch: SystemTime,
    state: Mutex<ManualState>,
}

#[derive(Debug, Default)]
struct ManualState {
    now: Duration,
    sleeps: Vec<Duration>,
}

impl ManualClock {
    /// A clock at 0 whose wall time starts at `epoch`.
    pub fn new(epoch: SystemTime) -> Self {
        Self { epoch, state: Mutex::new(ManualState::default()) }
    }

    /// Every wait asked for so far (time from the call to its deadline), in order.
    pub fn sleeps(&self) -> Vec<Duration> {
        self.state.lock().expect("clock lock").sleeps.clone()
    }

    /// Move the clock forward.
    pub fn advance(&self, by: Duration) {
        self.state.lock().expect("clock lock").now += by;
    }
}

impl Default for ManualClock {
    /// Starts at 2026-01-01T00:00:00Z.
    fn default() -> Self {
        Self::new(SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600))
    }
}

#[async_trait]
impl Clock for ManualClock {
    fn now(&self) -> Duration {
        self.state.lock().expect("clock lock").now
    }

    fn system_time(&self) -> SystemTime {
        self.epoch + self.now()
    }

    async fn sleep_until(&self, deadline: Duration) {
        {
            let mut state = self.state.lock().expect("clock lock");
            let wait = deadline.saturating_sub(state.now);
            state.sleeps.push(wait);
            state.now = state.now.max(deadline);
        }
        tokio::task::yield_now().await;
    }
}
