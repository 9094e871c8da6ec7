//! The due times of open applications, per clock (test session), tracked in
//! memory from acceptance and from every report that moves them; `overdue`
//! raises the marks. What a restart loses is only the mark:
//! `Application.overdue` is computed on every read.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::Notify;

use crate::toolkit::Clock;

/// Due times tracked at most; past it new ones are not tracked (reads still
/// say `overdue`), so a load test without deadlines in sight cannot grow
/// memory without bound.
const MAX_TRACKED: usize = 100_000;

/// Longest sleep between looks, so a missed wake-up costs at most this.
pub(crate) const MAX_SLEEP: Duration = Duration::from_secs(30);

/// The due times of open applications, per clock.
#[derive(Debug, Default)]
pub struct Deadlines {
    /// Test session ("" for the global clock) → (due, message id).
    due: Mutex<BTreeMap<String, BTreeSet<(OffsetDateTime, String)>>>,
    tracked: AtomicUsize,
    full: AtomicBool,
    wake: Notify,
}

impl Deadlines {
    /// Tracks `message_id`, due at `due` on `session`'s clock.
    pub fn track(&self, session: &str, due: OffsetDateTime, message_id: &str) {
        if self.tracked.load(Ordering::Relaxed) >= MAX_TRACKED {
            if !self.full.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    limit = MAX_TRACKED,
                    "too many open deadlines: new ones raise no overdue events (reads still say overdue)"
                );
            }
            return;
        }
        let mut due_times = self.due.lock().unwrap_or_else(|e| e.into_inner());
        let set = due_times.entry(session.to_owned()).or_default();
        let earliest = set.first().is_none_or(|(first, _)| due < *first);
        if set.insert((due, message_id.to_owned())) {
            self.tracked.fetch_add(1, Ordering::Relaxed);
        }
        drop(due_times);
        if earliest {
            self.wake.notify_one();
        }
    }

    /// Takes what is due by each clock's now, and says how long to sleep
    /// until the next one is.
    pub(crate) fn take_due(&self, clock: &Clock) -> (Vec<(String, OffsetDateTime)>, Duration) {
        let mut due_times = self.due.lock().unwrap_or_else(|e| e.into_inner());
        let mut taken = Vec::new();
        let mut sleep = MAX_SLEEP;
        due_times.retain(|session, set| {
            let now = clock.now(Some(session));
            while let Some((due, _)) = set.first() {
                if *due > now {
                    sleep = sleep.min(clock.real_until(Some(session), *due));
                    break;
                }
                if let Some((due, message_id)) = set.pop_first() {
                    taken.push((message_id, due));
                }
            }
            !set.is_empty()
        });
        self.tracked.fetch_sub(taken.len(), Ordering::Relaxed);
        if !taken.is_empty() {
            self.full.store(false, Ordering::Relaxed);
        }
        (taken, sleep)
    }

    /// Resolves when an earlier due time than any before was tracked.
    pub(crate) async fn woken(&self) {
        self.wake.notified().await;
    }
}
