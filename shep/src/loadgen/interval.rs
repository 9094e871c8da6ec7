//! Numbers per interval of a run, so a long one (a soak) shows how its
//! latency moves over time instead of one percentile for the whole run.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use tokio::time::{Instant, MissedTickBehavior};

use super::{Recorded, Recorder, lock, quantile};

/// One interval of a run, as written to `--interval-log` (a JSON line each).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    /// Since the start of the run, at the end of this interval, seconds.
    pub elapsed_s: f64,
    /// This interval's length, seconds (the last one may be shorter).
    pub seconds: f64,
    pub ok: u64,
    pub errors: u64,
    /// Latency of this interval's successful requests, microseconds.
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
}

/// What a run tells as it goes.
#[derive(Debug, Clone)]
pub struct Tick {
    pub elapsed: Duration,
    /// Counts since the start.
    pub ok: u64,
    pub errors: u64,
    /// With intervals: the one that ends at this tick.
    pub interval: Option<Interval>,
}

impl Recorder {
    /// The interval that ends now (and starts the next one); `None` unless
    /// the recorder keeps intervals.
    fn take_interval(&self, elapsed: Duration, seconds: Duration) -> Option<Interval> {
        let recorded = std::mem::take(&mut *lock(self.shared.interval.as_ref()?));
        Some(Interval::of(&recorded, elapsed, seconds))
    }
}

impl Interval {
    fn of(recorded: &Recorded, elapsed: Duration, seconds: Duration) -> Self {
        let latency = &recorded.latency;
        Self {
            elapsed_s: elapsed.as_secs_f64(),
            seconds: seconds.as_secs_f64(),
            ok: latency.len(),
            errors: recorded.errors.values().sum(),
            p50_us: quantile(latency, 0.5),
            p90_us: quantile(latency, 0.9),
            p99_us: quantile(latency, 0.99),
            max_us: if latency.is_empty() { 0 } else { latency.max() },
        }
    }
}

/// Calls the progress callback at each tick until stopped, then once more
/// for the last, shorter interval if it saw any request.
pub(super) struct Ticker {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Ticker {
    pub(super) fn start(
        recorder: &Recorder,
        every: Option<Duration>,
        mut progress: impl FnMut(Tick) + Send + 'static,
    ) -> Self {
        let recorder = recorder.clone();
        let (stop, mut stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let start = Instant::now();
            let period = every.unwrap_or(Duration::from_secs(1));
            let mut ticks = tokio::time::interval_at(start + period, period);
            // A late tick (a busy machine) makes a longer interval, not a burst of short ones.
            ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
            let mut last = start;
            loop {
                let done = tokio::select! {
                    _ = ticks.tick() => false,
                    _ = &mut stopped => true,
                };
                let now = Instant::now();
                let interval = recorder.take_interval(now - start, now - last);
                last = now;
                let (ok, errors) = recorder.counts();
                let tick = Tick {
                    elapsed: now - start,
                    ok,
                    errors,
                    interval,
                };
                if done {
                    if tick
                        .interval
                        .as_ref()
                        .is_some_and(|last| last.ok + last.errors > 0)
                    {
                        progress(tick);
                    }
                    return;
                }
                progress(tick);
            }
        });
        Self { stop, task }
    }

    /// Stops ticking once the last interval is out.
    pub(super) async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_interval_holds_only_the_requests_since_the_last_one() {
        let recorder = Recorder::new(true);
        for micros in 1..=100 {
            recorder.ok(Duration::from_micros(micros));
        }
        recorder.error("Unavailable");
        let first = recorder
            .take_interval(Duration::from_secs(60), Duration::from_secs(60))
            .unwrap();
        assert_eq!((first.ok, first.errors), (100, 1));
        assert!((99..=100).contains(&first.p99_us), "{first:?}");
        assert_eq!(first.max_us, 100);
        let mut tally = recorder.tally();
        tally.record(Ok(()), Duration::from_millis(5));
        let second = recorder
            .take_interval(Duration::from_secs(120), Duration::from_secs(60))
            .unwrap();
        assert_eq!((second.ok, second.errors), (1, 0));
        assert!((4995..=5005).contains(&second.p50_us), "{second:?}");
        // The whole run still has them all.
        drop(tally);
        assert_eq!(
            recorder
                .report(&super::super::tests::settings(), Duration::from_secs(120))
                .ok,
            101
        );
    }

    #[test]
    fn without_intervals_there_are_none() {
        let recorder = Recorder::default();
        recorder.ok(Duration::from_millis(1));
        assert!(
            recorder
                .take_interval(Duration::ZERO, Duration::ZERO)
                .is_none()
        );
    }

    #[test]
    fn an_empty_interval_reads_as_zeros() {
        let recorder = Recorder::new(true);
        let empty = recorder
            .take_interval(Duration::from_secs(1), Duration::from_secs(1))
            .unwrap();
        assert_eq!((empty.ok, empty.p99_us, empty.max_us), (0, 0, 0));
        let line = serde_json::to_string(&empty).unwrap();
        assert_eq!(serde_json::from_str::<Interval>(&line).unwrap(), empty);
    }
}
