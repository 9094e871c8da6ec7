//! The pipeline in-process through `tower::ServiceExt::oneshot`: no network.

use std::time::Duration;

use shep_proto::admin::v1::{Delay, Fault, FaultTarget, delay, fault_target};
use shep_proto::envelope::v1::ApplicationStatus;
use shep_proto::registry::v1::lookup_response::Record;
use shep_registries::RegistryKind;
use tower::ServiceExt as _;

use super::*;
use crate::testing::{self, ESIL_PROVIDER, ESIL_SERVICE};

fn request(rpc: Rpc, envelope: SignedEnvelope) -> EnvelopeRequest {
    EnvelopeRequest {
        rpc,
        envelope,
        ctx: CallContext::default(),
    }
}

/// Requests queued for the Esil provider.
async fn queued(engine: &Engine) -> usize {
    let depth = engine.delivery().queue(ESIL_PROVIDER).depth().await;
    depth.expect("the queue's depth").0
}

fn unlimited() -> Limits {
    Limits { max_concurrent: 64 }
}

#[tokio::test]
async fn an_application_is_accepted_once_and_its_resend_gets_the_same_receipt() {
    let engine = testing::engine();
    let pipeline = stack(engine.clone(), unlimited());
    let id = testing::message_id();
    let send = |envelope| pipeline.clone().oneshot(request(Rpc::Submit, envelope));

    let application = testing::application(&id);
    let Answer::Submit(first) = send(application.clone()).await.unwrap() else {
        panic!("a submit answers with a receipt");
    };
    assert_eq!(first.message_id, id);
    assert_eq!(first.provider_id, ESIL_PROVIDER);
    assert_eq!(first.status, ApplicationStatus::Accepted as i32);
    assert_eq!(queued(&engine).await, 1);

    let Answer::Submit(again) = send(application).await.unwrap() else {
        panic!("a re-send answers with a receipt");
    };
    assert_eq!(again, first);
    assert_eq!(queued(&engine).await, 1, "a re-send is not queued twice");

    // Same id, another body (a later `message_date`): a duplicate, not a receipt.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let error = send(testing::application(&id)).await.unwrap_err();
    assert!(
        matches!(error, GatewayError::DuplicateMessage { .. }),
        "{error}"
    );
}

#[tokio::test]
async fn a_lookup_is_answered_by_the_registry_behind_its_layers() {
    let pipeline = stack(testing::engine(), unlimited());
    let answer = pipeline
        .oneshot(request(Rpc::Call, testing::lookup(&testing::message_id())))
        .await
        .unwrap();
    let Answer::Call(response) = answer else {
        panic!("a call answers with a lookup");
    };
    let lookup = response.lookup.expect("a lookup");
    match lookup.record {
        Some(Record::Person(person)) => assert_eq!(person.iin, testing::APPLICANT),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn the_wrong_rpc_for_a_service_is_refused_by_the_route_check() {
    let pipeline = stack(testing::engine(), unlimited());
    let error = pipeline
        .oneshot(request(
            Rpc::Call,
            testing::application(&testing::message_id()),
        ))
        .await
        .unwrap_err();
    match error {
        GatewayError::WrongServiceKind { service, .. } => assert_eq!(service, ESIL_SERVICE),
        other => panic!("{other}"),
    }
}

#[tokio::test(start_paused = true)]
async fn over_the_limit_an_envelope_is_shed_at_once() {
    let engine = testing::engine();
    // The service answers after a minute: the first application holds the
    // only slot that long.
    engine
        .toolkit()
        .faults
        .add(
            Fault {
                target: Some(FaultTarget {
                    target: Some(fault_target::Target::Service(ESIL_SERVICE.into())),
                }),
                delay: Some(Delay {
                    distribution: Some(delay::Distribution::FixedMs(60_000)),
                }),
                ..Fault::default()
            },
            None,
            "",
            &RegistryKind::IDS,
        )
        .unwrap();
    let pipeline = stack(engine.clone(), Limits { max_concurrent: 1 });
    let slow = tokio::spawn(pipeline.clone().oneshot(request(
        Rpc::Submit,
        testing::application(&testing::message_id()),
    )));
    // Let the first one take the slot and start its delay.
    let holding = || {
        engine
            .metrics()
            .encode()
            .contains("shep_in_flight{rpc=\"submit\"} 1")
    };
    for _ in 0..1000 {
        if holding() {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert!(holding(), "the first application is in flight");
    let started = tokio::time::Instant::now();
    let error = pipeline
        .clone()
        .oneshot(request(Rpc::Call, testing::lookup(&testing::message_id())))
        .await
        .unwrap_err();
    assert!(matches!(error, GatewayError::Overloaded), "{error}");
    assert_eq!(started.elapsed(), Duration::ZERO, "refused without waiting");
    assert!(slow.await.unwrap().is_ok(), "the first one still completes");
    // The slot is free again.
    assert!(
        pipeline
            .oneshot(request(Rpc::Call, testing::lookup(&testing::message_id())))
            .await
            .is_ok()
    );
    let metrics = engine.metrics().encode();
    assert!(
        metrics.contains("outcome=\"OVERLOADED\""),
        "the shed request is counted: {metrics}"
    );
}

#[tokio::test]
async fn a_journal_that_cannot_write_refuses_with_storage_unavailable_and_recovers() {
    let journal = std::sync::Arc::new(testing::FailingJournal::default());
    let storage = crate::storage::Storage::new(
        std::sync::Arc::new(crate::storage::memory::MemoryStore::new(journal.clone())),
        std::sync::Arc::new(crate::storage::memory::MemoryQueues::default()),
        journal.clone(),
    );
    let engine = testing::engine_on(storage);
    let pipeline = stack(engine.clone(), unlimited());
    let id = testing::message_id();
    let send = |envelope| pipeline.clone().oneshot(request(Rpc::Submit, envelope));

    journal.fail(true);
    let refused = send(testing::application(&id)).await.unwrap_err();
    assert_eq!(
        refused.reason(),
        shep_proto::envelope::v1::Reason::StorageUnavailable,
        "{refused}"
    );
    assert!(
        engine.store().application(&id).await.unwrap().is_none(),
        "no receipt, and nothing kept of what was not written"
    );
    assert_eq!(queued(&engine).await, 0, "nothing queued");

    // Space is back: the same message is accepted and queued.
    journal.fail(false);
    let Answer::Submit(receipt) = send(testing::application(&id)).await.unwrap() else {
        panic!("a receipt");
    };
    assert_eq!(receipt.message_id, id);
    assert_eq!(queued(&engine).await, 1);
}

/// Sends `envelope` until the answer is not STORAGE_UNAVAILABLE (the journal
/// reopening), for at most ten seconds.
async fn submit_once_storing(pipeline: &EnvelopeService, envelope: SignedEnvelope) -> Answer {
    let mut last = None;
    for _ in 0..100 {
        match pipeline
            .clone()
            .oneshot(request(Rpc::Submit, envelope.clone()))
            .await
        {
            Err(error)
                if error.reason() == shep_proto::envelope::v1::Reason::StorageUnavailable =>
            {
                last = Some(error);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            answer => return answer.expect("accepted once the journal stores again"),
        }
    }
    panic!("the journal never stored again: {last:?}");
}

/// A full disk under the redb journal (its writes and syncs fail with
/// ENOSPC): a Submit is refused with STORAGE_UNAVAILABLE and leaves nothing
/// behind, what was accepted before is kept, and once space returns the
/// writer has reopened the file and the refused message is accepted afresh;
/// after a restart both are there, each accepted once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_under_the_journal_refuses_new_work_and_the_gateway_recovers() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use crate::storage::embedded;

    let dir = std::env::temp_dir().join(format!(
        "shep-disk-full-{}-{}",
        std::process::id(),
        testing::message_id()
    ));
    let path = dir.join("journal.redb");
    let full = Arc::new(AtomicBool::new(false));
    let options = embedded::Options {
        disk_full: Some(full.clone()),
        ..embedded::Options::default()
    };
    let storage = embedded::open_with(&path, &options).expect("a journal");
    let engine = testing::engine_on(storage.clone());
    let pipeline = stack(engine.clone(), unlimited());

    let before = testing::message_id();
    let Answer::Submit(kept) = submit_once_storing(&pipeline, testing::application(&before)).await
    else {
        panic!("a receipt");
    };
    assert_eq!(kept.message_id, before);

    full.store(true, Ordering::SeqCst);
    let refused_id = testing::message_id();
    let refused_envelope = testing::application(&refused_id);
    let refused = pipeline
        .clone()
        .oneshot(request(Rpc::Submit, refused_envelope.clone()))
        .await
        .expect_err("a receipt for what the disk did not take");
    assert_eq!(
        refused.reason(),
        shep_proto::envelope::v1::Reason::StorageUnavailable,
        "{refused}"
    );
    assert_eq!(queued(&engine).await, 1, "only what was accepted before");

    // Space is back: the writer reopens the file and the re-send is new.
    full.store(false, Ordering::SeqCst);
    let Answer::Submit(receipt) = submit_once_storing(&pipeline, refused_envelope).await else {
        panic!("a receipt");
    };
    assert_eq!(receipt.message_id, refused_id);
    assert_eq!(queued(&engine).await, 2);
    storage.close().await;

    let reopened = embedded::open(&path).expect("the journal after the outage");
    for id in [&before, &refused_id] {
        let application = reopened
            .store
            .application(id)
            .await
            .expect("a read")
            .expect("kept across the outage and a restart");
        let statuses: Vec<i32> = application
            .events
            .iter()
            .map(|event| event.status)
            .collect();
        assert_eq!(
            statuses,
            [ApplicationStatus::Accepted as i32],
            "accepted once"
        );
    }
    let (queued_again, _, _) = reopened
        .delivery
        .queue(ESIL_PROVIDER)
        .depth()
        .await
        .expect("the queue's depth");
    assert_eq!(queued_again, 2, "both still to deliver");
    reopened.close().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// Past `delivery.max_queue_depth` requests not yet acknowledged, a Submit
/// is refused with QUEUE_FULL and a retry hint, and nothing of it is kept:
/// once the provider takes and acknowledges one, the same envelope is
/// accepted.
#[tokio::test]
async fn a_full_provider_queue_refuses_a_submit_until_the_provider_takes_one() {
    let mut config = crate::config::GatewayConfig::default();
    config.delivery.max_queue_depth = 2;
    let engine = testing::engine_with(config);
    let pipeline = stack(engine.clone(), unlimited());
    let send = |envelope| pipeline.clone().oneshot(request(Rpc::Submit, envelope));
    for _ in 0..2 {
        send(testing::application(&testing::message_id()))
            .await
            .expect("room in the queue");
    }

    let id = testing::message_id();
    let envelope = testing::application(&id);
    let refused = send(envelope.clone()).await.unwrap_err();
    assert!(
        matches!(&refused, GatewayError::QueueFull { provider, limit: 2, .. } if provider == ESIL_PROVIDER),
        "{refused}"
    );
    let status = crate::error::into_status(refused);
    assert_eq!(status.code(), tonic::Code::ResourceExhausted);
    assert!(
        tonic_types::StatusExt::get_details_retry_info(&status).is_some(),
        "a retry hint"
    );
    assert!(
        engine.store().application(&id).await.unwrap().is_none(),
        "nothing stored of a refused application"
    );

    // A leased delivery still counts; an acknowledged one frees its place.
    let queue = engine.delivery().queue(ESIL_PROVIDER);
    let leased = queue
        .take(
            None,
            0,
            &crate::storage::Filter::default(),
            Duration::from_secs(30),
        )
        .await
        .unwrap()
        .expect("a delivery");
    assert!(matches!(
        send(envelope.clone()).await.unwrap_err(),
        GatewayError::QueueFull { .. }
    ));
    queue
        .acknowledge(&leased.pending.message_id, true, false, 5)
        .await
        .unwrap()
        .expect("settled");
    let Answer::Submit(receipt) = send(envelope).await.expect("room again") else {
        panic!("a receipt");
    };
    assert_eq!(receipt.message_id, id);
}
