//! The process-wide budget of AWS calls: every call any reconcile makes takes a token first, so a
//! burst of creates or a thousand stacks in progress never send more than `--aws-max-rps` calls a
//! second to an account whose API limits every other tool shares. Throttling answers halve the
//! rate; each success gives back a twentieth of the maximum (additive increase, multiplicative
//! decrease, as TCP and the AWS SDK's adaptive retry mode do), so a storm slows the operator down
//! instead of turning into errors.

use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// The slowest the budget goes, however much AWS throttles: one call every two seconds.
pub const MIN_RATE: f64 = 0.5;

pub struct Budget {
    max_rate: f64,
    burst: f64,
    state: Mutex<State>,
}

struct State {
    rate: f64,
    tokens: f64,
    last: Instant,
    /// When AWS began throttling with no success since.
    storm_since: Option<Instant>,
    /// When AWS stopped answering (unreachable, timed out) with no success since.
    outage_since: Option<Instant>,
}

impl State {
    /// Takes a token at `now`, one not yet earned if need be: `None` when one was there, else how
    /// long until the token taken is earned. Callers are served in the order they asked (each waits
    /// behind the debt of those before it), so none is passed over for good: a new resource's first
    /// call waits at most for the calls asked before it, at the rate.
    fn take(&mut self, now: Instant, burst: f64) -> Option<Duration> {
        if self.rate.is_infinite() {
            return None;
        }
        let earned = now.saturating_duration_since(self.last).as_secs_f64() * self.rate;
        self.tokens = (self.tokens + earned).min(burst);
        self.last = now;
        self.tokens -= 1.0;
        (self.tokens < 0.0).then(|| Duration::from_secs_f64(-self.tokens / self.rate))
    }
}

impl Budget {
    /// At most `max_rps` calls a second on average, and `burst` at once after a quiet spell.
    pub fn new(max_rps: f64, burst: u32) -> Budget {
        let max_rate = if max_rps.is_finite() && max_rps > 0.0 { max_rps.max(MIN_RATE) } else { f64::INFINITY };
        let burst = f64::from(burst.max(1));
        Budget {
            max_rate,
            burst,
            state: Mutex::new(State {
                rate: max_rate,
                tokens: burst,
                last: Instant::now(),
                storm_since: None,
                outage_since: None,
            }),
        }
    }

    /// No limit (tests and tools that bring their own).
    pub fn unlimited() -> Budget {
        Budget::new(f64::INFINITY, 1)
    }

    /// Waits for a token, in turn; how long it waited.
    pub async fn acquire(&self) -> Duration {
        let wait = match self.state.lock() {
            Ok(mut s) => s.take(Instant::now(), self.burst),
            Err(_) => None,
        };
        match wait {
            None => Duration::ZERO,
            Some(wait) => {
                tokio::time::sleep(wait).await;
                wait
            }
        }
    }

    /// AWS answered Throttling: halve the rate.
    pub fn throttled(&self) {
        if let Ok(mut s) = self.state.lock() {
            s.storm_since.get_or_insert_with(Instant::now);
            if s.rate.is_finite() {
                s.rate = (s.rate / 2.0).max(MIN_RATE);
            }
        }
    }

    /// AWS could not be reached or did not answer in time.
    pub fn unreachable(&self) {
        if let Ok(mut s) = self.state.lock() {
            s.outage_since.get_or_insert_with(Instant::now);
        }
    }

    /// How long AWS has been unreachable (no call went through since the first that failed so).
    pub fn outage(&self) -> Option<Duration> {
        self.state.lock().ok()?.outage_since.map(|t| t.elapsed())
    }

    /// How long to wait before trying AWS again during an outage: `fastest` at first, then a fifth
    /// of the outage so far, at most `slowest`, so a long outage costs few calls, whatever the
    /// number of resources waiting on it.
    pub fn outage_delay(&self, fastest: Duration, slowest: Duration) -> Duration {
        (self.outage().unwrap_or_default() / 5).clamp(fastest, slowest.max(fastest))
    }

    /// How long AWS has been throttling every call (none went through since the first throttle).
    pub fn storm(&self) -> Option<Duration> {
        self.state.lock().ok()?.storm_since.map(|t| t.elapsed())
    }

    /// A call went through: give back part of the rate.
    pub fn succeeded(&self) {
        if let Ok(mut s) = self.state.lock() {
            s.storm_since = None;
            s.outage_since = None;
            if s.rate < self.max_rate {
                s.rate = (s.rate + self.max_rate / 20.0).min(self.max_rate);
            }
        }
    }

    /// Calls a second allowed now.
    pub fn rate(&self) -> f64 {
        self.state.lock().map(|s| s.rate).unwrap_or(self.max_rate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Asks for `n` tokens at once, on a clock of its own; when the last may go.
    fn drain(budget: &Budget, n: usize) -> Duration {
        let start = Instant::now();
        let mut s = budget.state.lock().expect("lock");
        s.last = start;
        (0..n).filter_map(|_| s.take(start, budget.burst)).max().unwrap_or_default()
    }

    #[test]
    fn callers_are_served_in_the_order_they_asked() {
        let budget = Budget::new(10.0, 2);
        let start = Instant::now();
        let mut s = budget.state.lock().expect("lock");
        s.last = start;
        let waits: Vec<Duration> = (0..5).map(|_| s.take(start, budget.burst).unwrap_or_default()).collect();
        let secs: Vec<f64> = waits.iter().map(|w| (w.as_secs_f64() * 10.0).round() / 10.0).collect();
        assert_eq!(secs, [0.0, 0.0, 0.1, 0.2, 0.3], "each waits behind those before it, one rate step apart");
        // A latecomer a little later waits only for the debt still ahead of it.
        let later = s.take(start + Duration::from_millis(250), budget.burst).unwrap_or_default().as_secs_f64();
        assert!((0.14..0.16).contains(&later), "{later}");
    }

    #[test]
    fn a_burst_is_spread_to_the_rate_after_the_first_tokens() {
        let budget = Budget::new(10.0, 5);
        // 5 at once, then 20 more at 10 a second.
        let took = drain(&budget, 25).as_secs_f64();
        assert!((1.99..=2.01).contains(&took), "{took}");
    }

    #[test]
    fn throttling_halves_the_rate_and_successes_restore_it() {
        let budget = Budget::new(10.0, 1);
        budget.throttled();
        budget.throttled();
        assert_eq!(budget.rate(), 2.5);
        for _ in 0..3 {
            budget.throttled();
        }
        assert_eq!(budget.rate(), MIN_RATE, "never below the floor");
        let took = drain(&budget, 3).as_secs_f64();
        assert!((3.99..=4.01).contains(&took), "one call every two seconds at the floor: {took}");
        for _ in 0..30 {
            budget.succeeded();
        }
        assert_eq!(budget.rate(), 10.0, "back to the maximum, never above");
    }

    #[tokio::test]
    async fn unlimited_never_waits() {
        let budget = Budget::unlimited();
        for _ in 0..1000 {
            assert_eq!(budget.acquire().await, Duration::ZERO);
        }
        budget.throttled();
        assert!(budget.rate().is_infinite());
        assert!(Budget::new(0.0, 5).rate().is_infinite(), "0 means no limit");
    }

    /// Moves the start of the outage or storm `by` into the past.
    fn age(budget: &Budget, by: Duration) {
        let mut s = budget.state.lock().expect("lock");
        s.outage_since = s.outage_since.and_then(|t| t.checked_sub(by));
        s.storm_since = s.storm_since.and_then(|t| t.checked_sub(by));
    }

    #[test]
    fn an_outage_backs_off_to_a_fifth_of_its_length_within_bounds_and_a_success_ends_it() {
        // Short spans: the monotonic clock cannot go back further than the machine's uptime.
        let budget = Budget::new(10.0, 1);
        let (fast, slow) = (Duration::from_secs(1), Duration::from_secs(6));
        assert_eq!(budget.outage_delay(fast, slow), fast);
        budget.unreachable();
        age(&budget, Duration::from_secs(10));
        let delay = budget.outage_delay(fast, slow).as_secs_f64();
        assert!((2.0..2.1).contains(&delay), "{delay}");
        age(&budget, Duration::from_secs(30));
        assert_eq!(budget.outage_delay(fast, slow), slow);
        budget.succeeded();
        assert_eq!((budget.outage(), budget.outage_delay(fast, slow)), (None, fast));
    }

    #[test]
    fn a_storm_lasts_until_a_call_goes_through() {
        let budget = Budget::new(10.0, 1);
        budget.throttled();
        age(&budget, Duration::from_secs(5));
        budget.throttled();
        assert!(budget.storm().is_some_and(|d| d >= Duration::from_secs(5)), "the storm began at the first throttle");
        budget.succeeded();
        assert_eq!(budget.storm(), None);
    }
}
