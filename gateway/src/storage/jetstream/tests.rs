use std::sync::Arc;
use std::time::Duration;

use super::test_server::{self, NatsServer};
use super::{JetStreamOptions, open};
use crate::storage::conformance::{self, Backend, sample_application};
use crate::storage::{Inserted, Storage, StorageError};

/// One prefix (one stream) on a test's own server: opening again after a
/// close finds what was stored.
struct JetStream {
    server: Arc<NatsServer>,
    prefix: String,
}

impl JetStream {
    fn on(server: &Arc<NatsServer>) -> Self {
        Self {
            server: server.clone(),
            prefix: format!("t{}", uuid::Uuid::new_v4().simple()),
        }
    }

    fn options(&self) -> JetStreamOptions {
        JetStreamOptions {
            url: self.server.url(),
            prefix: self.prefix.clone(),
            replicas: 1,
        }
    }
}

#[async_trait::async_trait]
impl Backend for JetStream {
    async fn open(&self) -> Storage {
        open(&self.options()).await.expect("opening JetStream")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passes_the_conformance_suite_on_a_real_nats_server() {
    if !test_server::available("passes_the_conformance_suite_on_a_real_nats_server") {
        return;
    }
    let server = Arc::new(NatsServer::start());
    conformance::run_all(|| JetStream::on(&server)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_share_applications_and_ids() {
    if !test_server::available("two_nodes_share_applications_and_ids") {
        return;
    }
    let server = Arc::new(NatsServer::start());
    let backend = JetStream::on(&server);
    let first = backend.open().await;
    let second = backend.open().await;

    let record = sample_application();
    let message_id = record.message_id.clone();
    assert_eq!(
        first.store.insert(record.clone()).await.expect("insert"),
        Inserted::New
    );
    assert_eq!(
        second.store.insert(record.clone()).await.expect("insert"),
        Inserted::Existing,
        "the same message id on another node is the same application"
    );
    let mut other = record.clone();
    other.sender_id = "someone-else".to_owned();
    assert_eq!(
        second.store.insert(other).await.expect("insert"),
        Inserted::Duplicate
    );

    // A change on one node is seen on the other, with the same sequence.
    let mut live = second.store.subscribe();
    let (event, ticket) = first
        .store
        .record(&message_id, |_| {
            Ok::<_, StorageError>(crate::storage::Change {
                status: shep_proto::envelope::v1::ApplicationStatus::Accepted,
                ..Default::default()
            })
        })
        .await
        .expect("a change");
    ticket.durable().await.expect("durable");
    let fed = tokio::time::timeout(Duration::from_secs(10), live.recv())
        .await
        .expect("the other node's feed")
        .expect("an event");
    assert_eq!(fed.sequence, event.sequence);
    assert_eq!(fed.message_id, message_id);

    // Queues are shared: pushed on one node, taken on the other.
    let pending = crate::storage::Pending {
        message_id: message_id.clone(),
        service_id: record.service_id.clone(),
        correlation_id: String::new(),
        envelope: record.envelope.clone(),
        attempts: 0,
        session: None,
    };
    first
        .delivery
        .queue(&record.provider_id)
        .push(pending)
        .await
        .expect("push");
    let queue = second.delivery.queue(&record.provider_id);
    let changed = queue.changed();
    tokio::pin!(changed);
    changed.as_mut().enable();
    let leased = loop {
        if let Some(leased) = queue
            .take(
                Some(1),
                1,
                &crate::storage::Filter::default(),
                Duration::from_secs(5),
            )
            .await
            .expect("take")
        {
            break leased;
        }
        tokio::time::timeout(Duration::from_secs(10), changed.as_mut())
            .await
            .expect("woken by the push on the other node");
        changed.set(queue.changed());
        changed.as_mut().enable();
    };
    assert_eq!(leased.pending.message_id, message_id);
    // Connection 1 on the first node is not connection 1 on the second.
    let on_first = first.delivery.queue(&record.provider_id);
    assert!(
        on_first
            .release_connection(1, 5)
            .await
            .expect("release")
            .is_empty(),
        "another node's connection keeps its lease"
    );
    first.close().await;
    second.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_server_refuses_work_with_unavailable() {
    if !test_server::available("a_stopped_server_refuses_work_with_unavailable") {
        return;
    }
    let mut server = NatsServer::start();
    let options = JetStreamOptions {
        url: server.url(),
        prefix: format!("t{}", uuid::Uuid::new_v4().simple()),
        replicas: 1,
    };
    let storage = open(&options).await.expect("opening");
    server.kill();
    // The client notices the lost connection within moments.
    let mut refused = None;
    for _ in 0..100 {
        match storage.store.insert(sample_application()).await {
            Err(error @ StorageError::Unavailable { .. }) => {
                refused = Some(error);
                break;
            }
            Err(other) => panic!("an unexpected error: {other}"),
            Ok(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    let refused = refused.expect("refused while NATS is down");
    assert_eq!(
        crate::error::GatewayError::from(refused).reason(),
        shep_proto::envelope::v1::Reason::StorageUnavailable
    );
    let options = JetStreamOptions {
        url: format!("nats://127.0.0.1:{}", test_server::free_port()),
        ..options
    };
    assert!(
        matches!(open(&options).await, Err(StorageError::Unavailable { .. })),
        "no server at all is unavailable, not a hang"
    );
}
