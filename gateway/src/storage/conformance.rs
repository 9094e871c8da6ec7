//! The backend conformance suite: the same checks for every storage backend,
//! written once against the traits.
//!
//! A backend's tests either call [`run_all`] or expand
//! [`storage_conformance_tests!`](crate::storage_conformance_tests) for one
//! test per check:
//!
//! ```ignore
//! shep_gateway::storage_conformance_tests!(#[tokio::test(start_paused = true)] || MyBackend::new());
//! ```
//!
//! Time: the checks wait out leases with `tokio::time::sleep`, so a backend
//! whose leases run on the tokio clock passes in a paused-clock test in no
//! time; a backend over the network (whose leases run on a server's clock)
//! runs them in real time. Nothing checks that "nothing happens within N
//! ms": every check waits for positive evidence.

use std::sync::Arc;
use std::time::Duration;

use shep_proto::envelope::v1::{ApplicationStatus, SignedEnvelope};
use shep_proto::gateway::v1::{MessageState, StatusEvent};
use time::OffsetDateTime;

use super::{ApplicationRecord, ApplicationStore, Change, Inserted, Pending, Storage};
use crate::envelope::SubjectId;

mod queues;
mod restart;
mod store;

pub use queues::{
    a_closed_connection_gives_its_leases_back, acknowledgements_settle_once,
    competing_consumers_share_a_queue_within_their_credit,
    expired_leases_are_redelivered_then_stopped, filters_select_what_is_taken,
    the_queue_wakes_a_waiting_consumer,
};
pub use restart::a_restart_finds_what_was_durable;
pub use store::{
    report_ids_are_idempotent, status_events_are_ordered_under_one_sequence,
    submit_ids_are_idempotent_and_global, visibility_and_reads,
};

/// A backend under test.
#[async_trait::async_trait]
pub trait Backend: Send + Sync {
    /// Opens the backend's storage. Opening again after [`Storage::close`]
    /// finds what was made durable, when the backend is durable.
    async fn open(&self) -> Storage;
}

/// Runs every check, each on a fresh backend from `make`.
pub async fn run_all<B: Backend>(make: impl Fn() -> B) {
    macro_rules! run {
        ($($check:ident),* $(,)?) => {
            $(
                eprintln!("storage conformance: {}", stringify!($check));
                $check(&make()).await;
            )*
        };
    }
    run!(
        status_events_are_ordered_under_one_sequence,
        visibility_and_reads,
        submit_ids_are_idempotent_and_global,
        report_ids_are_idempotent,
        competing_consumers_share_a_queue_within_their_credit,
        filters_select_what_is_taken,
        expired_leases_are_redelivered_then_stopped,
        a_closed_connection_gives_its_leases_back,
        acknowledgements_settle_once,
        the_queue_wakes_a_waiting_consumer,
        a_restart_finds_what_was_durable,
    );
}

/// Expands to one test per conformance check, each with the test attribute
/// given (e.g. `#[tokio::test(start_paused = true)]`) and a fresh backend
/// from the closure. Keep the list in step with [`run_all`].
#[macro_export]
macro_rules! storage_conformance_tests {
    (#[$test:meta] $make:expr) => {
        $crate::storage_conformance_tests!(@each #[$test] $make;
            status_events_are_ordered_under_one_sequence,
            visibility_and_reads,
            submit_ids_are_idempotent_and_global,
            report_ids_are_idempotent,
            competing_consumers_share_a_queue_within_their_credit,
            filters_select_what_is_taken,
            expired_leases_are_redelivered_then_stopped,
            a_closed_connection_gives_its_leases_back,
            acknowledgements_settle_once,
            the_queue_wakes_a_waiting_consumer,
            a_restart_finds_what_was_durable,
        );
    };
    (@each #[$test:meta] $make:expr; $($check:ident),* $(,)?) => {
        $(
            #[$test]
            async fn $check() {
                $crate::storage::conformance::$check(&($make)()).await;
            }
        )*
    };
}

// === Fixtures ===

/// Applicants' IINs, valid under the strict check a restore makes.
const ALICE: &str = "850315301235";
const BOB: &str = "920704404563";
const PROVIDER: &str = "provider-a";
const SERVICE: &str = "service-a";
/// Long enough for a lease on a server's clock to be told from its expiry.
const LEASE: Duration = Duration::from_millis(300);
/// Beyond any lease here: a wait that long for evidence means it is missing.
const PATIENCE: Duration = Duration::from_secs(10);

/// A new application of `subject`'s for [`PROVIDER`], sent by `sender`.
fn application(subject: &str, sender: &str, body: &[u8]) -> ApplicationRecord {
    let message_id = uuid::Uuid::new_v4().to_string();
    ApplicationRecord {
        message_id,
        service_id: SERVICE.to_owned(),
        subject: SubjectId::Iin(subject.to_owned()),
        channel: 1,
        sender_id: sender.to_owned(),
        provider_id: PROVIDER.to_owned(),
        accepted_at: OffsetDateTime::now_utc(),
        delivery_state: MessageState::OnDelivery,
        status: ApplicationStatus::Accepted,
        registration_number: String::new(),
        expected_at: None,
        deadline: None,
        test: false,
        events: Vec::new(),
        envelope: Arc::new(SignedEnvelope {
            body: body.to_vec(),
            ..SignedEnvelope::default()
        }),
        body_digest: digest(body),
        session_id: String::new(),
        correlation_id: String::new(),
        due_at: Some(OffsetDateTime::now_utc() + time::Duration::days(5)),
        test_session: "conformance".to_owned(),
    }
}

/// An application to use in a backend's own tests.
pub fn sample_application() -> ApplicationRecord {
    application(ALICE, "portal", b"sample")
}

fn digest(body: &[u8]) -> [u8; 32] {
    let mut digest = [0; 32];
    digest.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, body).as_ref());
    digest
}

/// Records `status` as the engine does, and waits until it is durable.
async fn change(
    store: &dyn ApplicationStore,
    message_id: &str,
    status: ApplicationStatus,
    delivery_state: Option<MessageState>,
) -> Arc<StatusEvent> {
    let (event, ticket) = store
        .record(message_id, |record| {
            record.status = status;
            if let Some(state) = delivery_state {
                record.delivery_state = state;
            }
            Ok::<_, super::StorageError>(Change {
                status,
                notification: format!("{status:?}"),
                reported_by: "gateway".to_owned(),
                ..Change::default()
            })
        })
        .await
        .expect("recording a change");
    ticket.durable().await.expect("the change is durable");
    event
}

/// Accepts `record` as Submit does: inserted, its ACCEPTED event durable.
async fn accept(store: &dyn ApplicationStore, record: ApplicationRecord) -> Arc<StatusEvent> {
    let message_id = record.message_id.clone();
    assert_eq!(
        store.insert(record).await.expect("inserting"),
        Inserted::New
    );
    change(store, &message_id, ApplicationStatus::Accepted, None).await
}

/// The request Submit queues for an accepted `record`.
fn pending(record: &ApplicationRecord) -> Pending {
    Pending {
        message_id: record.message_id.clone(),
        service_id: record.service_id.clone(),
        correlation_id: record.correlation_id.clone(),
        envelope: record.envelope.clone(),
        attempts: 0,
        session: None,
    }
}

/// A queued request not tied to an application (queue-only checks).
fn request(message_id: &str, service_id: &str) -> Pending {
    Pending {
        message_id: message_id.to_owned(),
        service_id: service_id.to_owned(),
        correlation_id: String::new(),
        envelope: Arc::new(SignedEnvelope::default()),
        attempts: 0,
        session: None,
    }
}
