//! Overdue marks as events: when an open application's due time passes on
//! its clock (see `toolkit::clock`), the gateway records an event with
//! `overdue` set and the status unchanged, so a watcher learns it without
//! polling. The due times come from `deadlines`.

use time::OffsetDateTime;

use crate::engine::Engine;
use crate::error::{GatewayError, with_causes};
use crate::lifecycle::overdue_notification;
use crate::storage::Change;

/// Raises overdue events as due times pass, until the gateway closes.
pub(crate) async fn run(engine: std::sync::Arc<Engine>) {
    let mut clock_changes = engine.toolkit().clock.subscribe();
    let closed = engine.closed();
    tokio::pin!(closed);
    loop {
        let (due, sleep) = engine.deadlines().take_due(&engine.toolkit().clock);
        for (message_id, at) in due {
            mark_overdue(&engine, &message_id, at).await;
        }
        tokio::select! {
            () = tokio::time::sleep(sleep) => {}
            () = engine.deadlines().woken() => {}
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
