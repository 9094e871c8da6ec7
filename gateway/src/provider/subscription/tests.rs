//! The Subscribe protocol in-process: the provider's side is a channel, the
//! clock is paused.

use shep_proto::admin::v1::{Fault, fault};
use shep_proto::envelope::v1::ApplicationStatus;
use shep_proto::provider::v1::{Ack, Hello, ReceiveStatus};
use tokio::sync::mpsc::error::TryRecvError;
use tokio_stream::wrappers::UnboundedReceiverStream;

use super::*;
use crate::testing::{self, ESIL_PROVIDER};

type Inbound = mpsc::UnboundedSender<Result<SubscribeRequest, GatewayError>>;
type Received = mpsc::Receiver<Result<SubscribeResponse, GatewayError>>;

/// Opens a stream: what the test sends, what it receives.
fn open(engine: &Arc<Engine>) -> (Inbound, Received, tokio::task::JoinHandle<()>) {
    let (inbound_tx, inbound_rx) = mpsc::unbounded_channel();
    let (tx, rx) = mpsc::channel(64);
    let served = tokio::spawn(serve(
        engine.clone(),
        CallContext::default(),
        UnboundedReceiverStream::new(inbound_rx),
        tx,
    ));
    (inbound_tx, rx, served)
}

fn hello(provider: &str, max_in_flight: u32) -> Result<SubscribeRequest, GatewayError> {
    Ok(SubscribeRequest {
        kind: Some(subscribe_request::Kind::Hello(Hello {
            provider_id: provider.to_owned(),
            max_in_flight,
            service_ids: Vec::new(),
        })),
    })
}

fn ack(message_id: &str) -> Result<SubscribeRequest, GatewayError> {
    Ok(SubscribeRequest {
        kind: Some(subscribe_request::Kind::Ack(Ack {
            message_id: message_id.to_owned(),
            receive_status: ReceiveStatus::MessageAccepted as i32,
            ..Ack::default()
        })),
    })
}

fn delivered(message: Option<Result<SubscribeResponse, GatewayError>>) -> String {
    match message {
        Some(Ok(SubscribeResponse {
            kind: Some(subscribe_response::Kind::Delivery(delivery)),
        })) => delivery.message_id,
        other => panic!("expected a delivery, got {other:?}"),
    }
}

async fn submit(engine: &Engine, count: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for _ in 0..count {
        let id = testing::message_id();
        let envelope = testing::application(&id);
        crate::pipeline::submit(engine, envelope, &CallContext::default())
            .await
            .expect("accepted");
        ids.push(id);
    }
    ids
}

#[tokio::test(start_paused = true)]
async fn a_stream_that_never_says_hello_is_ended_after_the_hello_timeout() {
    let engine = testing::engine();
    let (_inbound, mut rx, served) = open(&engine);
    let started = tokio::time::Instant::now();
    match rx.recv().await {
        Some(Err(GatewayError::ProtocolViolation(_))) => {}
        other => panic!("expected a protocol violation, got {other:?}"),
    }
    assert_eq!(started.elapsed(), HELLO_TIMEOUT);
    served.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn only_a_provider_or_a_consumer_with_responses_may_subscribe() {
    let engine = testing::engine();
    let (inbound, mut rx, _served) = open(&engine);
    inbound.send(hello("no-such-system", 0)).unwrap();
    match rx.recv().await {
        Some(Err(GatewayError::ProviderNotAllowed { provider, .. })) => {
            assert_eq!(provider, "no-such-system");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    // The portal receives its providers' reports on its own queue.
    let (inbound, mut rx, _served) = open(&engine);
    inbound.send(hello("pep", 0)).unwrap();
    match rx.recv().await {
        Some(Ok(_welcome)) => {}
        other => panic!("expected a welcome, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn deliveries_stay_within_the_credit_and_an_ack_frees_a_place() {
    let engine = testing::engine();
    let ids = submit(&engine, 3).await;
    let (inbound, mut rx, _served) = open(&engine);
    inbound.send(hello(ESIL_PROVIDER, 2)).unwrap();
    match rx.recv().await {
        Some(Ok(SubscribeResponse {
            kind: Some(subscribe_response::Kind::Welcome(welcome)),
        })) => assert_eq!(welcome.lease_ms, engine.lease().as_millis() as u64),
        other => panic!("expected a welcome, got {other:?}"),
    }
    let first = delivered(rx.recv().await);
    let second = delivered(rx.recv().await);
    assert_eq!(
        [first.as_str(), second.as_str()],
        [&ids[0], &ids[1]],
        "in order"
    );
    // Two leased, the third still queued: the credit holds it back.
    let queue = engine.delivery().queue(ESIL_PROVIDER);
    assert_eq!(queue.depth().await.unwrap(), (1, 2, 0));
    assert!(matches!(rx.try_recv(), Err(TryRecvError::Empty)));

    inbound.send(ack(&first)).unwrap();
    assert_eq!(delivered(rx.recv().await), ids[2]);
    assert_eq!(queue.depth().await.unwrap(), (0, 2, 0));
    let status = engine
        .store()
        .application(&first)
        .await
        .expect("the store answers")
        .expect("the application")
        .status;
    assert_eq!(status, ApplicationStatus::Delivered as i32);
}

#[tokio::test(start_paused = true)]
async fn leases_held_by_a_closed_stream_go_back_to_the_queue() {
    let engine = testing::engine();
    submit(&engine, 1).await;
    let (inbound, mut rx, served) = open(&engine);
    inbound.send(hello(ESIL_PROVIDER, 1)).unwrap();
    rx.recv().await.expect("a welcome").unwrap();
    delivered(rx.recv().await);
    let queue = engine.delivery().queue(ESIL_PROVIDER);
    assert_eq!(queue.depth().await.unwrap(), (0, 1, 0));
    drop(inbound);
    served.await.unwrap();
    assert_eq!(
        queue.depth().await.unwrap(),
        (1, 0, 0),
        "released for the next subscriber"
    );
}

#[tokio::test(start_paused = true)]
async fn anything_but_an_ack_after_the_hello_ends_the_stream() {
    let engine = testing::engine();
    let (inbound, mut rx, served) = open(&engine);
    inbound.send(hello(ESIL_PROVIDER, 1)).unwrap();
    rx.recv().await.expect("a welcome").unwrap();
    inbound.send(hello(ESIL_PROVIDER, 1)).unwrap();
    match rx.recv().await {
        Some(Err(GatewayError::ProtocolViolation(_))) => {}
        other => panic!("expected a protocol violation, got {other:?}"),
    }
    served.await.unwrap();
}

fn delivery_fault(effect: shep_proto::admin::v1::fault::Effect, delay_ms: Option<u32>) -> Fault {
    use shep_proto::admin::v1::{Delay, FaultTarget, delay, fault_target};
    Fault {
        target: Some(FaultTarget {
            target: Some(fault_target::Target::Provider(ESIL_PROVIDER.to_owned())),
        }),
        effect: Some(effect),
        delay: delay_ms.map(|ms| Delay {
            distribution: Some(delay::Distribution::FixedMs(ms)),
        }),
        times: 1,
        ..Fault::default()
    }
}

async fn welcomed(engine: &Arc<Engine>) -> (Inbound, Received) {
    let (inbound, mut rx, _served) = open(engine);
    inbound.send(hello(ESIL_PROVIDER, 4)).unwrap();
    rx.recv().await.expect("a welcome").unwrap();
    (inbound, rx)
}

#[tokio::test(start_paused = true)]
async fn a_duplicated_delivery_is_sent_twice_and_one_ack_settles_it() {
    let engine = testing::engine();
    engine
        .toolkit()
        .faults
        .add(
            delivery_fault(fault::Effect::DuplicateDelivery(true), None),
            None,
            "",
            &[],
        )
        .unwrap();
    let ids = submit(&engine, 1).await;
    let (inbound, mut rx) = welcomed(&engine).await;
    assert_eq!(delivered(rx.recv().await), ids[0]);
    assert_eq!(delivered(rx.recv().await), ids[0]);
    inbound.send(ack(&ids[0])).unwrap();
    inbound.send(ack(&ids[0])).unwrap();
    tokio::time::sleep(engine.lease() * 3).await;
    crate::provider::expire_leases(&engine).await;
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert!(matches!(rx.try_recv(), Err(TryRecvError::Empty)));
    let queue = engine.delivery().queue(ESIL_PROVIDER);
    assert_eq!(queue.depth().await.unwrap(), (0, 0, 0));
}

#[tokio::test(start_paused = true)]
async fn a_held_delivery_waits_for_the_fault_s_delay_and_others_pass_it() {
    let engine = testing::engine();
    engine
        .toolkit()
        .faults
        .add(
            delivery_fault(fault::Effect::DelayDelivery(true), Some(5_000)),
            None,
            "",
            &[],
        )
        .unwrap();
    let ids = submit(&engine, 2).await;
    let (_inbound, mut rx) = welcomed(&engine).await;
    // The second is not held; the first is still held short of the delay
    // (the clock is paused: the test's clock, not the machine's), and
    // arrives once the hold is over.
    assert_eq!(delivered(rx.recv().await), ids[1]);
    assert!(
        tokio::time::timeout(Duration::from_millis(4_900), rx.recv())
            .await
            .is_err(),
        "held for the fault's delay"
    );
    assert_eq!(delivered(rx.recv().await), ids[0]);
}

#[tokio::test(start_paused = true)]
async fn a_dropped_ack_leaves_the_delivery_leased_until_it_expires() {
    let engine = testing::engine();
    engine
        .toolkit()
        .faults
        .add(
            delivery_fault(fault::Effect::DropAck(true), None),
            None,
            "",
            &[],
        )
        .unwrap();
    let ids = submit(&engine, 1).await;
    let (inbound, mut rx) = welcomed(&engine).await;
    assert_eq!(delivered(rx.recv().await), ids[0]);
    inbound.send(ack(&ids[0])).unwrap();
    tokio::time::sleep(Duration::from_millis(10)).await;
    let queue = engine.delivery().queue(ESIL_PROVIDER);
    assert_eq!(queue.depth().await.unwrap(), (0, 1, 0), "still leased");
    tokio::time::sleep(engine.lease() + Duration::from_millis(1)).await;
    crate::provider::expire_leases(&engine).await;
    match tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .ok()
        .flatten()
    {
        Some(Ok(SubscribeResponse {
            kind: Some(subscribe_response::Kind::Delivery(delivery)),
        })) => {
            assert_eq!(delivery.message_id, ids[0]);
            assert_eq!(delivery.attempt, 2);
        }
        other => panic!("expected the redelivery, got {other:?}"),
    }
    inbound.send(ack(&ids[0])).unwrap();
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(
        queue.depth().await.unwrap(),
        (0, 0, 0),
        "the second ack settles it"
    );
}
