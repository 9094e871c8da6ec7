//! Checks of the application store: the order of status events, the resume
//! sequence, reads, and the idempotency keys.

use shep_proto::envelope::v1::ApplicationStatus;
use shep_proto::gateway::v1::MessageState;
use shep_proto::provider::v1::ReportReceipt;
use tokio::sync::broadcast;

use super::{ALICE, BOB, Backend, PATIENCE, accept, application, change};
use crate::envelope::SubjectId;
use crate::storage::{ApplicationRecord, Change, Inserted, StorageError, WatchTarget};

/// What an update may answer in these checks.
#[derive(Debug)]
enum Refusal {
    /// The update declined.
    Refused,
    Storage(StorageError),
}

impl From<StorageError> for Refusal {
    fn from(error: StorageError) -> Self {
        Self::Storage(error)
    }
}

/// Every event takes the next gateway-wide sequence number; the live feed
/// carries them in that order, even when recorded concurrently; snapshots
/// resume after any sequence, per subject or per application.
pub async fn status_events_are_ordered_under_one_sequence(backend: &impl Backend) {
    let storage = backend.open().await;
    let store = storage.store.as_ref();
    let mut live = store.subscribe();

    let first = application(ALICE, "portal", b"first");
    let second = application(ALICE, "portal", b"second");
    let other = application(BOB, "centre", b"other");
    let mut events = vec![
        accept(store, first.clone()).await,
        accept(store, second.clone()).await,
        accept(store, other.clone()).await,
        change(store, &first.message_id, ApplicationStatus::Delivered, None).await,
        change(store, &other.message_id, ApplicationStatus::Delivered, None).await,
        change(
            store,
            &second.message_id,
            ApplicationStatus::Delivered,
            None,
        )
        .await,
    ];
    // Concurrent changes still come out in one order.
    let concurrent: Vec<_> = [&first, &second, &other]
        .into_iter()
        .map(|record| {
            let storage = storage.clone();
            let message_id = record.message_id.clone();
            tokio::spawn(async move {
                change(
                    storage.store.as_ref(),
                    &message_id,
                    ApplicationStatus::Registered,
                    None,
                )
                .await
            })
        })
        .collect();
    for task in concurrent {
        events.push(task.await.expect("a recording task"));
    }
    let mut sequences: Vec<u64> = events.iter().map(|event| event.sequence).collect();
    sequences.sort_unstable();
    sequences.dedup();
    assert_eq!(sequences.len(), events.len(), "one sequence per event");
    assert!(sequences[0] > 0, "sequences start after 0");

    let mut fed = Vec::new();
    while fed.len() < events.len() {
        match tokio::time::timeout(PATIENCE, live.recv()).await {
            Ok(Ok(event)) => fed.push(event.sequence),
            Ok(Err(broadcast::error::RecvError::Lagged(_))) => panic!("the live feed lagged"),
            Ok(Err(broadcast::error::RecvError::Closed)) | Err(_) => {
                panic!("the live feed stopped after {fed:?}")
            }
        }
    }
    assert_eq!(fed, sequences, "the live feed is in sequence order");

    // Per subject, from the start and from a resume point.
    let alice = WatchTarget::Subject(SubjectId::Iin(ALICE.to_owned()));
    let (from_start, upto) = store.snapshot(&alice, 0).await.expect("a snapshot");
    assert!(
        upto >= *sequences.last().expect("events"),
        "the snapshot covers every event"
    );
    let alices: Vec<u64> = events
        .iter()
        .filter(|event| event.message_id != other.message_id)
        .map(|event| event.sequence)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let seen: Vec<u64> = from_start.iter().map(|event| event.sequence).collect();
    assert_eq!(seen, alices, "a subject's events, in order");
    let resume = alices[2];
    let (resumed, _) = store.snapshot(&alice, resume).await.expect("a snapshot");
    let seen: Vec<u64> = resumed.iter().map(|event| event.sequence).collect();
    assert_eq!(
        seen,
        alices[3..].to_vec(),
        "resumed after sequence {resume}"
    );
    let (none, _) = store.snapshot(&alice, upto).await.expect("a snapshot");
    assert!(none.is_empty(), "nothing after the last sequence");

    // Per sending system.
    let (centres, _) = store
        .snapshot(&WatchTarget::Sender("centre".to_owned()), 0)
        .await
        .expect("a snapshot");
    assert!(!centres.is_empty(), "the centre's application has events");
    assert!(
        centres
            .iter()
            .all(|event| event.message_id == other.message_id && event.sender_id == "centre"),
        "a sender's events only: {centres:?}"
    );
    let (portals, _) = store
        .snapshot(&WatchTarget::Sender("portal".to_owned()), 0)
        .await
        .expect("a snapshot");
    assert!(
        portals
            .iter()
            .all(|event| event.message_id != other.message_id),
        "not another sender's"
    );
    assert_eq!(
        portals.len() + centres.len(),
        from_start.len() + centres.len()
    );

    // Per application.
    let (theirs, _) = store
        .snapshot(&WatchTarget::Message(other.message_id.clone()), 0)
        .await
        .expect("a snapshot");
    let statuses: Vec<i32> = theirs.iter().map(|event| event.status).collect();
    assert_eq!(
        statuses,
        [
            ApplicationStatus::Accepted,
            ApplicationStatus::Delivered,
            ApplicationStatus::Registered
        ]
        .map(|status| status as i32)
    );
    let bob = Some(SubjectId::Iin(BOB.to_owned()).to_proto());
    assert!(
        theirs
            .iter()
            .all(|event| event.message_id == other.message_id && event.subject == bob)
    );
}

/// Reads see what was recorded; a refused change records nothing; an
/// unknown application is not found; History pages newest first.
pub async fn visibility_and_reads(backend: &impl Backend) {
    let storage = backend.open().await;
    let store = storage.store.as_ref();
    let records: Vec<_> = (0..3)
        .map(|index| application(ALICE, "portal", format!("body {index}").as_bytes()))
        .collect();
    for record in &records {
        accept(store, record.clone()).await;
    }
    let newest = &records[2];
    assert!(
        store
            .accepted_visible(&newest.message_id, PATIENCE)
            .await
            .expect("visibility"),
        "a durable acceptance is visible"
    );
    assert!(
        !store
            .accepted_visible("no-such-application", std::time::Duration::from_millis(50))
            .await
            .expect("visibility"),
        "an unknown application is never visible"
    );

    let refused = store
        .record(&newest.message_id, |_| Err::<Change, _>(Refusal::Refused))
        .await;
    assert!(matches!(refused, Err(Refusal::Refused)), "{refused:?}");
    let view = store
        .application(&newest.message_id)
        .await
        .expect("a read")
        .expect("the application");
    assert_eq!(view.events.len(), 1, "a refused change records nothing");
    assert_eq!(view.status, ApplicationStatus::Accepted as i32);
    assert_eq!(view.delivery_state, MessageState::OnDelivery as i32);

    let missing = store
        .record("no-such-application", |_| {
            Ok::<_, Refusal>(Change::default())
        })
        .await;
    assert!(
        matches!(
            missing,
            Err(Refusal::Storage(StorageError::NotFound { .. }))
        ),
        "{missing:?}"
    );
    assert_eq!(
        store
            .with("no-such-application", |record| record.message_id.clone())
            .await
            .expect("a read"),
        None
    );
    assert!(
        store
            .application("no-such-application")
            .await
            .expect("a read")
            .is_none()
    );

    change(
        store,
        &records[0].message_id,
        ApplicationStatus::Registered,
        Some(MessageState::Delivered),
    )
    .await;
    let (status, state, digest) = store
        .with(&records[0].message_id, |record| {
            (record.status, record.delivery_state, record.body_digest)
        })
        .await
        .expect("a read")
        .expect("the application");
    assert_eq!(status, ApplicationStatus::Registered);
    assert_eq!(state, MessageState::Delivered);
    assert_eq!(digest, records[0].body_digest);

    let subject = SubjectId::Iin(ALICE.to_owned());
    let (page, more) = store.history(&subject, 0, 2).await.expect("history");
    let ids: Vec<&str> = page.iter().map(|app| app.message_id.as_str()).collect();
    assert_eq!(ids, [&records[2].message_id, &records[1].message_id]);
    assert!(more);
    let (page, more) = store.history(&subject, 2, 2).await.expect("history");
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].message_id, records[0].message_id);
    assert_eq!(page[0].status, ApplicationStatus::Registered as i32);
    assert!(!more);
    let (page, _) = store
        .history(&SubjectId::Iin(BOB.to_owned()), 0, 10)
        .await
        .expect("history");
    assert!(page.is_empty(), "another subject's history is its own");
}

/// A Submit's message id is unique across senders: the same sender and body
/// find the original, anything else is a duplicate; a forgotten application
/// may be sent afresh.
pub async fn submit_ids_are_idempotent_and_global(backend: &impl Backend) {
    let storage = backend.open().await;
    let store = storage.store.as_ref();
    let original = application(ALICE, "portal", b"the body");
    accept(store, original.clone()).await;

    let resent = original.clone();
    assert_eq!(
        store.insert(resent).await.expect("insert"),
        Inserted::Existing
    );
    let other_body = ApplicationRecord {
        body_digest: [7; 32],
        ..original.clone()
    };
    assert_eq!(
        store.insert(other_body).await.expect("insert"),
        Inserted::Duplicate
    );
    let other_sender = ApplicationRecord {
        sender_id: "another-sender".to_owned(),
        ..original.clone()
    };
    assert_eq!(
        store.insert(other_sender).await.expect("insert"),
        Inserted::Duplicate,
        "message ids are unique across senders"
    );
    let view = store
        .application(&original.message_id)
        .await
        .expect("a read")
        .expect("the original");
    assert_eq!(view.sender_id, "portal", "the original stays");

    // Not made durable: forgotten, then accepted afresh.
    let unlucky = application(BOB, "portal", b"unlucky");
    assert_eq!(
        store.insert(unlucky.clone()).await.expect("insert"),
        Inserted::New
    );
    store.forget(&unlucky.message_id).await.expect("forget");
    assert!(
        store
            .application(&unlucky.message_id)
            .await
            .expect("a read")
            .is_none()
    );
    let (page, _) = store
        .history(&SubjectId::Iin(BOB.to_owned()), 0, 10)
        .await
        .expect("history");
    assert!(page.is_empty(), "a forgotten application leaves no history");
    let again = ApplicationRecord {
        sender_id: "another-sender".to_owned(),
        ..unlucky
    };
    accept(store, again).await;
}

/// A provider report is keyed by its sender and id, with its digest and
/// receipt.
pub async fn report_ids_are_idempotent(backend: &impl Backend) {
    let storage = backend.open().await;
    let store = storage.store.as_ref();
    let record = application(ALICE, "portal", b"reported");
    accept(store, record.clone()).await;
    let report_id = uuid::Uuid::new_v4().to_string();
    assert!(
        store
            .report_seen("provider-a", &report_id)
            .await
            .expect("a read")
            .is_none()
    );
    let event = change(
        store,
        &record.message_id,
        ApplicationStatus::Registered,
        None,
    )
    .await;
    let receipt = ReportReceipt {
        message_id: report_id.clone(),
        correlation_id: record.message_id.clone(),
        status: ApplicationStatus::Registered as i32,
        sequence: event.sequence,
    };
    store
        .remember_report("provider-a", &report_id, [3; 32], receipt.clone())
        .await
        .expect("remember");
    let seen = store
        .report_seen("provider-a", &report_id)
        .await
        .expect("a read");
    assert_eq!(seen, Some(([3; 32], receipt)));
    assert!(
        store
            .report_seen("provider-b", &report_id)
            .await
            .expect("a read")
            .is_none(),
        "report ids are per sender"
    );
    let unchanged = store
        .with(&record.message_id, |record| record.events.len())
        .await
        .expect("a read");
    assert_eq!(unchanged, Some(2));
}
