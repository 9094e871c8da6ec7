//! The restart check: what was durable when a backend closed is there when
//! it opens again, and nothing else.

use std::collections::BTreeSet;

use shep_proto::envelope::v1::ApplicationStatus;
use shep_proto::gateway::v1::MessageState;
use shep_proto::provider::v1::ReportReceipt;

use super::{ALICE, BOB, Backend, PROVIDER, accept, application, change, pending};
use crate::envelope::SubjectId;
use crate::storage::{Change, Filter, Inserted, ReportKey, Settled, StorageError, WatchTarget};

/// After a restart a durable backend holds the same applications, events,
/// resume sequence and report keys; the requests still on delivery are
/// queued again (an unacknowledged lease included, at the latest when it runs
/// out), the dead letters are
/// dead letters, and what was acknowledged or never made durable is gone.
/// A backend that is not durable holds nothing.
pub async fn a_restart_finds_what_was_durable(backend: &impl Backend) {
    let storage = backend.open().await;
    let store = storage.store.as_ref();
    let queue = storage.delivery.queue(PROVIDER);
    let lease = super::LEASE;
    let any = Filter::default();

    let delivered = application(ALICE, "portal", b"delivered");
    let leased = application(ALICE, "portal", b"leased");
    let stopped = application(BOB, "portal", b"stopped");
    let waiting = application(BOB, "portal", b"waiting");
    for record in [&delivered, &leased, &stopped, &waiting] {
        accept(store, record.clone()).await;
        queue.push(pending(record)).await.expect("pushing");
    }
    let take = async || {
        queue
            .take(Some(1), 8, &any, lease)
            .await
            .expect("taking")
            .expect("a delivery")
            .pending
    };

    // Delivered and acknowledged, recorded as the engine does; then a report.
    assert_eq!(take().await.message_id, delivered.message_id);
    assert_eq!(
        queue
            .acknowledge(&delivered.message_id, true, false, 1)
            .await
            .expect("an ack"),
        Some(Settled::Delivered)
    );
    change(
        store,
        &delivered.message_id,
        ApplicationStatus::Delivered,
        Some(MessageState::Delivered),
    )
    .await;
    let report_id = uuid::Uuid::new_v4().to_string();
    let (registered, ticket) = store
        .record(&delivered.message_id, |record| {
            record.status = ApplicationStatus::Registered;
            record.registration_number = "REG-1".to_owned();
            Ok::<_, StorageError>(Change {
                status: ApplicationStatus::Registered,
                registration_number: "REG-1".to_owned(),
                reported_by: PROVIDER.to_owned(),
                report: Some(ReportKey {
                    sender: PROVIDER.to_owned(),
                    message_id: report_id.clone(),
                    digest: [5; 32],
                }),
                ..Change::default()
            })
        })
        .await
        .expect("recording a report");
    ticket.durable().await.expect("the report is durable");
    let receipt = ReportReceipt {
        message_id: report_id.clone(),
        correlation_id: delivered.message_id.clone(),
        status: ApplicationStatus::Registered as i32,
        sequence: registered.sequence,
    };
    store
        .remember_report(PROVIDER, &report_id, [5; 32], receipt.clone())
        .await
        .expect("remember");

    // Leased when the gateway stops, never acknowledged.
    assert_eq!(take().await.message_id, leased.message_id);
    // Refused with a resend on its last attempt: a dead letter.
    assert_eq!(take().await.message_id, stopped.message_id);
    assert_eq!(
        queue
            .acknowledge(&stopped.message_id, false, true, 1)
            .await
            .expect("an ack"),
        Some(Settled::Stopped { attempts: 1 })
    );
    change(
        store,
        &stopped.message_id,
        ApplicationStatus::NotDelivered,
        Some(MessageState::DeliveryStopped),
    )
    .await;
    // `waiting` stays queued.

    let everyone = [ALICE, BOB].map(|iin| WatchTarget::Subject(SubjectId::Iin(iin.to_owned())));
    let mut before = Vec::new();
    for target in &everyone {
        before.extend(store.snapshot(target, 0).await.expect("a snapshot").0);
    }
    let last = before
        .iter()
        .map(|event| event.sequence)
        .max()
        .expect("events");

    storage.close().await;
    if storage.is_durable() {
        // Refused at once (a backend that writes before answering), or
        // recorded in memory with a ticket that never becomes durable.
        let recorded = store
            .record(&waiting.message_id, |_| {
                Ok::<_, StorageError>(Change {
                    status: ApplicationStatus::Registered,
                    ..Change::default()
                })
            })
            .await;
        match recorded {
            Err(StorageError::Stopped) => {}
            Err(other) => panic!("a closed backend answers `Stopped`, not {other}"),
            Ok((_, ticket)) => assert!(
                ticket.durable().await.is_err(),
                "a closed backend makes nothing durable"
            ),
        }
    }
    drop(queue);

    let reopened = backend.open().await;
    let store = reopened.store.as_ref();
    let queue = reopened.delivery.queue(PROVIDER);
    if !storage.is_durable() {
        assert!(
            store
                .application(&delivered.message_id)
                .await
                .expect("a read")
                .is_none(),
            "nothing survives"
        );
        assert_eq!(queue.depth().await.expect("depth"), (0, 0, 0));
        return;
    }

    // The applications, as last made durable.
    for (record, status, state, num_events) in [
        (
            &delivered,
            ApplicationStatus::Registered,
            MessageState::Delivered,
            3,
        ),
        (
            &leased,
            ApplicationStatus::Accepted,
            MessageState::OnDelivery,
            1,
        ),
        (
            &stopped,
            ApplicationStatus::NotDelivered,
            MessageState::DeliveryStopped,
            2,
        ),
        (
            &waiting,
            ApplicationStatus::Accepted,
            MessageState::OnDelivery,
            1,
        ),
    ] {
        let view = store
            .application(&record.message_id)
            .await
            .expect("a read")
            .unwrap_or_else(|| panic!("`{}` restored", record.message_id));
        assert_eq!(view.status, status as i32, "{}", record.message_id);
        assert_eq!(view.delivery_state, state as i32, "{}", record.message_id);
        assert_eq!(view.events.len(), num_events, "{}", record.message_id);
        let (sender, digest, envelope) = store
            .with(&record.message_id, |restored| {
                (
                    restored.sender_id.clone(),
                    restored.body_digest,
                    restored.envelope.clone(),
                )
            })
            .await
            .expect("a read")
            .expect("restored");
        assert_eq!(sender, record.sender_id);
        assert_eq!(digest, record.body_digest);
        assert_eq!(envelope, record.envelope);
    }
    let view = store
        .application(&delivered.message_id)
        .await
        .expect("a read")
        .expect("restored");
    assert_eq!(view.registration_number, "REG-1");

    // The idempotency keys.
    assert_eq!(
        store.insert(delivered.clone()).await.expect("insert"),
        Inserted::Existing
    );
    let imposter = crate::storage::ApplicationRecord {
        body_digest: [9; 32],
        ..delivered.clone()
    };
    assert_eq!(
        store.insert(imposter).await.expect("insert"),
        Inserted::Duplicate
    );
    assert_eq!(
        store
            .report_seen(PROVIDER, &report_id)
            .await
            .expect("a read"),
        Some(([5; 32], receipt))
    );

    // The events and the resume sequence.
    let mut after = Vec::new();
    for target in &everyone {
        after.extend(store.snapshot(target, 0).await.expect("a snapshot").0);
    }
    let sequences = |events: &[std::sync::Arc<shep_proto::gateway::v1::StatusEvent>]| {
        events
            .iter()
            .map(|event| (event.sequence, event.message_id.clone(), event.status))
            .collect::<BTreeSet<_>>()
    };
    assert_eq!(sequences(&after), sequences(&before), "the same events");
    let (resumed, upto) = store
        .snapshot(&everyone[0], last)
        .await
        .expect("a snapshot");
    assert!(resumed.is_empty(), "nothing after the last sequence");
    assert!(upto >= last);
    let mut live = store.subscribe();
    let next = change(
        store,
        &waiting.message_id,
        ApplicationStatus::Delivered,
        None,
    )
    .await;
    assert!(next.sequence > last, "the sequence goes on from {last}");
    let fed = tokio::time::timeout(super::PATIENCE, live.recv())
        .await
        .expect("the live feed")
        .expect("an event");
    assert_eq!(fed.sequence, next.sequence);

    // The queue: what was on delivery, and the dead letters.
    let dead: Vec<String> = queue
        .dead_letters()
        .await
        .expect("dead letters")
        .into_iter()
        .map(|pending| pending.message_id)
        .collect();
    assert_eq!(dead, std::slice::from_ref(&stopped.message_id));
    // A lease taken before the restart comes back at once (an in-process
    // backend) or once it runs out (a shared one, whose leases outlive a
    // node: another node's connection may still hold them).
    tokio::time::sleep(lease + lease / 2).await;
    queue
        .expire(tokio::time::Instant::now(), 5)
        .await
        .expect("expiring");
    let mut queued = BTreeSet::new();
    while let Some(taken) = queue.take(None, 0, &any, lease).await.expect("taking") {
        assert!(taken.pending.attempts >= 1);
        assert_eq!(
            Some(&taken.pending.envelope),
            [&leased, &waiting]
                .into_iter()
                .find(|record| record.message_id == taken.pending.message_id)
                .map(|record| &record.envelope),
            "the envelope as received"
        );
        queued.insert(taken.pending.message_id);
    }
    assert_eq!(
        queued,
        BTreeSet::from([leased.message_id.clone(), waiting.message_id.clone()])
    );
    assert!(
        queue
            .acknowledge(&delivered.message_id, true, false, 5)
            .await
            .expect("an ack")
            .is_none(),
        "acknowledged before the restart"
    );
    reopened.close().await;
}
