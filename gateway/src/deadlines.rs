//! Overdue marks as events: when an open application's due time passes on
//! its clock (see `toolkit::clock`), the gateway records an event with
//! `overdue` set, so a watcher learns it without polling.
//!
//! Due times are tracked in memory, per clock (test session), from
//! acceptance and from every report that moves them. What a restart loses
//! is only the event: `Application.overdue` is computed on every read.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::Notify;

use crate::engine::Engine;
use crate::error::{GatewayError, with_causes};
use crate::lifecycle::overdue_notification;
use crate::storage::Change;

/// Due times tracked at most; past it new ones are not tracked (reads still
/// say `overdue`), so a load test without deadlines in sight cannot grow
/// memory without bound.
const MAX_TRACKED: usize = 100_000;

/// Longest sleep between looks, so a missed wake-up costs at most this.
const MAX_SLEEP: Duration = Duration::from_secs(30);

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
    fn take_due(&self, engine: &Engine) -> (Vec<(String, OffsetDateTime)>, Duration) {
        let clock = &engine.toolkit().clock;
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

    /// How many due times are tracked.
    pub fn len(&self) -> usize {
        self.tracked.load(Ordering::Relaxed)
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Raises overdue events as due times pass, until the gateway closes.
pub async fn run(engine: std::sync::Arc<Engine>) {
    let mut clock_changes = engine.toolkit().clock.subscribe();
    let closed = engine.closed();
    tokio::pin!(closed);
    loop {
        let (due, sleep) = engine.deadlines().take_due(&engine);
        for (message_id, at) in due {
            mark_overdue(&engine, &message_id, at).await;
        }
        tokio::select! {
            () = tokio::time::sleep(sleep) => {}
            () = engine.deadlines().wake.notified() => {}
            changed = clock_changes.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            () = &mut closed => return,
        }
    }
}

/// Records that `message_id` became overdue at `due`, unless it is no
/// longer due then (registered with a later time, answered, or already
/// marked for that time).
pub(crate) async fn mark_overdue(engine: &Engine, message_id: &str, due: OffsetDateTime) {
    // Compared in whole seconds: a store may keep `expected_at` no finer.
    let second = due.unix_timestamp();
    let outcome = engine.store().record(message_id, |record| {
        let now = engine.now_in(&record.test_session);
        let marked = record.events.iter().any(|event| {
            event.overdue && event.expected_at.as_ref().map(|at| at.seconds) == Some(second)
        });
        let still_due = record.due().map(OffsetDateTime::unix_timestamp) == Some(second);
        if !still_due || marked || due > now {
            // Not an error anyone sees: nothing to record.
            return Err(GatewayError::InvalidStatusTransition {
                from: record.status.as_str_name().to_owned(),
                to: "overdue".to_owned(),
                rule: "not due".to_owned(),
            });
        }
        Ok(Change {
            status: record.status,
            notification: overdue_notification(record.status, due),
            registration_number: record.registration_number.clone(),
            expected_at: Some(due),
            reported_by: "gateway".to_owned(),
            occurred_at: Some(now),
            overdue: true,
            ..Change::default()
        })
    });
    match outcome.await {
        Ok((event, ticket)) => {
            if let Err(error) = ticket.durable().await {
                tracing::warn!(message_id, error = %with_causes(&error), "an overdue mark was not made durable");
            }
            tracing::info!(message_id, sequence = event.sequence, status = ?event.status(), "overdue");
        }
        Err(GatewayError::InvalidStatusTransition { .. }) => {}
        Err(error) => {
            tracing::warn!(message_id, error = %with_causes(&error), "recording an overdue mark failed");
        }
    }
}
