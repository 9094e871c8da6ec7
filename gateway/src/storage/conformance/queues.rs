//! Checks of the provider queues: competing consumers, credit, filters,
//! leases, attempts, dead letters and acknowledgements.

use std::sync::Arc;

use tokio::time::Instant;

use super::{Backend, LEASE, PATIENCE, PROVIDER, SERVICE, request};
use crate::storage::{Filter, Leased, ProviderQueue, Settled};

const ANY: Filter = Filter {
    service_ids: Vec::new(),
    correlation_id: String::new(),
    session: None,
};

fn ids(count: usize) -> Vec<String> {
    (0..count)
        .map(|_| uuid::Uuid::new_v4().to_string())
        .collect()
}

async fn take(
    queue: &dyn ProviderQueue,
    connection: Option<u64>,
    max_in_flight: usize,
    filter: &Filter,
) -> Option<Leased> {
    queue
        .take(connection, max_in_flight, filter, LEASE)
        .await
        .expect("taking")
}

async fn push_all(queue: &dyn ProviderQueue, ids: &[String]) {
    for id in ids {
        queue.push(request(id, SERVICE)).await.expect("pushing");
    }
}

/// Waits out every lease taken so far, then expires them.
async fn expire_all(queue: &dyn ProviderQueue, max_attempts: u32) -> Vec<(String, Settled)> {
    tokio::time::sleep(LEASE + LEASE / 2).await;
    queue
        .expire(Instant::now(), max_attempts)
        .await
        .expect("expiring")
}

/// Connections of one provider share its queue, in order, each within its
/// `max_in_flight`; a pull is not limited by credit.
pub async fn competing_consumers_share_a_queue_within_their_credit(backend: &impl Backend) {
    let storage = backend.open().await;
    let queue = storage.delivery.queue(PROVIDER);
    let queue = queue.as_ref();
    let ids = ids(5);
    push_all(queue, &ids).await;

    let first = take(queue, Some(1), 1, &ANY).await.expect("a delivery");
    assert_eq!(first.pending.message_id, ids[0], "in the order pushed");
    assert_eq!(first.pending.attempts, 1);
    assert!(
        take(queue, Some(1), 1, &ANY).await.is_none(),
        "the credit is used up"
    );
    let second = take(queue, Some(2), 1, &ANY).await.expect("a delivery");
    assert_eq!(second.pending.message_id, ids[1]);
    assert_eq!(queue.depth().await.expect("depth"), (3, 2, 0));

    assert_eq!(
        queue
            .acknowledge(&first.pending.message_id, true, false, 5)
            .await
            .expect("an ack"),
        Some(Settled::Delivered)
    );
    let third = take(queue, Some(1), 1, &ANY).await.expect("credit freed");
    assert_eq!(third.pending.message_id, ids[2]);

    // A pull takes what connections leave, however many.
    let pulled: Vec<String> = [
        take(queue, None, 0, &ANY).await,
        take(queue, None, 0, &ANY).await,
    ]
    .into_iter()
    .map(|leased| leased.expect("a pull").pending.message_id)
    .collect();
    assert_eq!(pulled, ids[3..].to_vec());
    assert!(
        take(queue, None, 0, &ANY).await.is_none(),
        "the queue is empty"
    );
    assert_eq!(queue.depth().await.expect("depth"), (0, 4, 0));

    // Another provider's queue is its own.
    let other = storage.delivery.queue("provider-b");
    assert!(take(other.as_ref(), None, 0, &ANY).await.is_none());
    let providers: Vec<String> = storage
        .delivery
        .queues()
        .await
        .expect("queues")
        .into_iter()
        .map(|(provider, _)| provider)
        .collect();
    assert!(
        providers.iter().any(|provider| provider == PROVIDER),
        "{providers:?}"
    );
}

/// Filters take by service, correlation id and test session, skipping what
/// they refuse without losing its place.
pub async fn filters_select_what_is_taken(backend: &impl Backend) {
    let storage = backend.open().await;
    let queue = storage.delivery.queue(PROVIDER);
    let queue = queue.as_ref();
    let ids = ids(4);
    let session: Arc<str> = Arc::from("session-1");
    queue.push(request(&ids[0], "one")).await.expect("push");
    queue.push(request(&ids[1], "two")).await.expect("push");
    let mut correlated = request(&ids[2], "one");
    correlated.correlation_id = "corr-1".to_owned();
    queue.push(correlated).await.expect("push");
    let mut in_session = request(&ids[3], "one");
    in_session.session = Some(session.clone());
    queue.push(in_session).await.expect("push");

    let two = Filter {
        service_ids: vec!["two".to_owned()],
        ..Filter::default()
    };
    let taken = take(queue, None, 0, &two).await.expect("service `two`");
    assert_eq!(taken.pending.message_id, ids[1]);
    assert!(take(queue, None, 0, &two).await.is_none());

    let correlation = Filter {
        correlation_id: "corr-1".to_owned(),
        ..Filter::default()
    };
    let taken = take(queue, None, 0, &correlation)
        .await
        .expect("by correlation");
    assert_eq!(taken.pending.message_id, ids[2]);

    let sessioned = Filter {
        session: Some(session),
        ..Filter::default()
    };
    let taken = take(queue, None, 0, &sessioned)
        .await
        .expect("the session's");
    assert_eq!(taken.pending.message_id, ids[3]);
    assert!(
        take(queue, None, 0, &sessioned).await.is_none(),
        "a session takes only its own"
    );

    let taken = take(queue, None, 0, &ANY).await.expect("the one skipped");
    assert_eq!(taken.pending.message_id, ids[0], "skipped, not lost");
    assert_eq!(taken.pending.attempts, 1);
}

/// An expired lease is redelivered with one more attempt, until the lease
/// that used the last attempt, which stops it; a requeued dead letter starts
/// over.
pub async fn expired_leases_are_redelivered_then_stopped(backend: &impl Backend) {
    let storage = backend.open().await;
    let queue = storage.delivery.queue(PROVIDER);
    let queue = queue.as_ref();
    let ids = ids(2);
    push_all(queue, &ids).await;
    let doomed = &ids[0];

    for attempt in 1..=2 {
        let leased = take(queue, Some(1), 8, &ANY).await.expect("a delivery");
        assert_eq!(&leased.pending.message_id, doomed, "redelivered first");
        assert_eq!(leased.pending.attempts, attempt);
        assert!(leased.until > Instant::now(), "leased into the future");
        let expected = if attempt < 2 {
            Settled::Requeued
        } else {
            Settled::Stopped { attempts: 2 }
        };
        assert_eq!(expire_all(queue, 2).await, vec![(doomed.clone(), expected)]);
    }
    assert_eq!(queue.depth().await.expect("depth"), (1, 0, 1));
    let dead: Vec<String> = queue
        .dead_letters()
        .await
        .expect("dead letters")
        .into_iter()
        .map(|pending| pending.message_id)
        .collect();
    assert_eq!(&dead, std::slice::from_ref(doomed));
    assert!(
        queue
            .acknowledge(doomed, true, false, 2)
            .await
            .expect("an ack")
            .is_none(),
        "a dead letter is not acknowledged"
    );

    assert!(queue.requeue(doomed).await.expect("requeue"));
    assert!(!queue.requeue(doomed).await.expect("requeue"), "only once");
    assert!(
        !queue.requeue(&ids[1]).await.expect("requeue"),
        "not a dead letter"
    );
    let again = take(queue, Some(1), 8, &ANY).await.expect("requeued");
    assert_eq!(&again.pending.message_id, doomed, "to the front");
    assert_eq!(again.pending.attempts, 1, "a requeued letter starts over");
    assert_eq!(queue.depth().await.expect("depth"), (1, 1, 0));
}

/// A closed connection's leases go back to the queue, counted as attempts,
/// and its credit is freed; another connection's leases stay.
pub async fn a_closed_connection_gives_its_leases_back(backend: &impl Backend) {
    let storage = backend.open().await;
    let queue = storage.delivery.queue(PROVIDER);
    let queue = queue.as_ref();
    let ids = ids(3);
    push_all(queue, &ids).await;
    take(queue, Some(7), 2, &ANY).await.expect("a delivery");
    take(queue, Some(7), 2, &ANY).await.expect("a delivery");
    let kept = take(queue, Some(8), 2, &ANY).await.expect("a delivery");

    let mut outcome = queue.release_connection(7, 5).await.expect("release");
    outcome.sort_by(|left, right| left.0.cmp(&right.0));
    let mut expected = vec![
        (ids[0].clone(), Settled::Requeued),
        (ids[1].clone(), Settled::Requeued),
    ];
    expected.sort_by(|left, right| left.0.cmp(&right.0));
    assert_eq!(outcome, expected);
    assert_eq!(queue.depth().await.expect("depth"), (2, 1, 0));
    let again = take(queue, Some(9), 8, &ANY).await.expect("redelivered");
    assert_eq!(again.pending.attempts, 2);
    assert!(ids[..2].contains(&again.pending.message_id));
    assert_eq!(
        queue
            .acknowledge(&kept.pending.message_id, true, false, 5)
            .await
            .expect("an ack"),
        Some(Settled::Delivered),
        "another connection's lease stays"
    );

    // Out of attempts when released: stopped.
    let last = take(queue, Some(10), 8, &ANY).await.expect("a delivery");
    let outcome = queue.release_connection(10, 2).await.expect("release");
    assert_eq!(
        outcome,
        vec![(last.pending.message_id, Settled::Stopped { attempts: 2 })]
    );
}

/// An acknowledgement settles a request once: accepted, refused for good,
/// or refused with a resend (another attempt, or a dead letter on the last);
/// a late one after the lease expired still counts.
pub async fn acknowledgements_settle_once(backend: &impl Backend) {
    let storage = backend.open().await;
    let queue = storage.delivery.queue(PROVIDER);
    let queue = queue.as_ref();
    let ids = ids(3);
    push_all(queue, &ids).await;

    let refused = take(queue, Some(1), 8, &ANY).await.expect("a delivery");
    assert_eq!(
        queue
            .acknowledge(&refused.pending.message_id, false, false, 3)
            .await
            .expect("an ack"),
        Some(Settled::NotDelivered)
    );
    assert_eq!(
        queue
            .acknowledge(&refused.pending.message_id, true, false, 3)
            .await
            .expect("an ack"),
        None,
        "settled once"
    );
    assert!(
        queue
            .acknowledge("never-queued", true, false, 3)
            .await
            .expect("an ack")
            .is_none()
    );

    let resend = take(queue, Some(1), 8, &ANY).await.expect("a delivery");
    assert_eq!(
        queue
            .acknowledge(&resend.pending.message_id, false, true, 2)
            .await
            .expect("an ack"),
        Some(Settled::Requeued)
    );
    let again = take(queue, Some(1), 8, &ANY).await.expect("resent");
    assert_eq!(again.pending.message_id, resend.pending.message_id);
    assert_eq!(again.pending.attempts, 2);
    assert_eq!(
        queue
            .acknowledge(&again.pending.message_id, false, true, 2)
            .await
            .expect("an ack"),
        Some(Settled::Stopped { attempts: 2 }),
        "a resend on the last attempt stops"
    );

    // The lease runs out, then the provider's acceptance arrives.
    let late = take(queue, Some(1), 8, &ANY).await.expect("a delivery");
    assert_eq!(
        expire_all(queue, 5).await,
        vec![(late.pending.message_id.clone(), Settled::Requeued)]
    );
    assert_eq!(
        queue
            .acknowledge(&late.pending.message_id, true, false, 5)
            .await
            .expect("an ack"),
        Some(Settled::Delivered),
        "a late acceptance still counts"
    );
    assert!(
        take(queue, Some(1), 8, &ANY).await.is_none(),
        "and it is not delivered again"
    );
    assert_eq!(queue.depth().await.expect("depth"), (0, 0, 1));
}

/// A consumer waiting on [`ProviderQueue::changed`] wakes for new work and
/// for freed credit.
pub async fn the_queue_wakes_a_waiting_consumer(backend: &impl Backend) {
    let storage = backend.open().await;
    let queue = storage.delivery.queue(PROVIDER);
    let ids = ids(2);

    let changed = queue.changed();
    tokio::pin!(changed);
    changed.as_mut().enable();
    assert!(take(queue.as_ref(), Some(1), 1, &ANY).await.is_none());
    let pusher = {
        let queue = queue.clone();
        let id = ids[0].clone();
        tokio::spawn(async move { queue.push(request(&id, SERVICE)).await })
    };
    tokio::time::timeout(PATIENCE, changed)
        .await
        .expect("woken by new work");
    pusher.await.expect("the pusher").expect("pushing");
    let leased = take(queue.as_ref(), Some(1), 1, &ANY)
        .await
        .expect("the new work");
    queue
        .push(request(&ids[1], SERVICE))
        .await
        .expect("pushing");

    let changed = queue.changed();
    tokio::pin!(changed);
    changed.as_mut().enable();
    assert!(
        take(queue.as_ref(), Some(1), 1, &ANY).await.is_none(),
        "no credit"
    );
    let acker = {
        let queue = queue.clone();
        let id = leased.pending.message_id.clone();
        tokio::spawn(async move { queue.acknowledge(&id, true, false, 5).await })
    };
    tokio::time::timeout(PATIENCE, changed)
        .await
        .expect("woken by freed credit");
    acker.await.expect("the acker").expect("an ack");
    let next = take(queue.as_ref(), Some(1), 1, &ANY)
        .await
        .expect("credit back");
    assert_eq!(next.pending.message_id, ids[1]);
}
