//! Delivery to provider systems: leases and redelivery, dropped connections,
//! competing consumers, flow control, refusals by the provider, dead letters,
//! pull mode, and the Subscribe protocol.

use std::collections::BTreeSet;

use shep_proto::envelope::v1::{ApplicationStatus, StatusReport};
use shep_proto::gateway::v1::MessageState;
use shep_proto::provider::v1::{
    GetMessagesRequest, Hello, ReceiveStatus, ResendMessage, SubscribeRequest, subscribe_request,
};
use shep_tests::*;
use time::OffsetDateTime;
use tonic::{Code, Status};

const SHORT_LEASE_MS: u64 = 300;
const OTHER_PROVIDER: &str = "is-mio-sko-tayynsha-social";

/// Queued, leased and dead-lettered requests of the Esil provider.
async fn depth(gw: &TestGateway) -> (usize, usize, usize) {
    gw.engine()
        .delivery()
        .queue(ESIL_PROVIDER)
        .depth()
        .await
        .expect("the queue's depth")
}

/// Waits until the provider queue has this depth.
async fn queue_depth_becomes(gw: &TestGateway, expected: (usize, usize, usize)) {
    eventually(PATIENCE, async || {
        let now = depth(gw).await;
        if now == expected { Ok(()) } else { Err(now) }
    })
    .await;
}

fn pull(provider_id: &str, amount: u32) -> GetMessagesRequest {
    GetMessagesRequest {
        provider_id: provider_id.to_owned(),
        amount,
        ..GetMessagesRequest::default()
    }
}

/// The status a Subscribe stream ended with, whether the refusal came as the
/// response or as the stream's first message.
async fn subscribe_refusal(gw: &TestGateway, first: SubscribeRequest) -> Status {
    match open_raw(gw.channel(), first).await {
        Err(status) => status,
        Ok((_uplink, mut inbound)) => match next_within(&mut inbound, PATIENCE).await {
            Next::Failed(status) => status,
            other => panic!("expected the stream to fail, got {other:?}"),
        },
    }
}

#[tokio::test]
async fn an_unacknowledged_delivery_is_redelivered_with_the_next_attempt_after_the_lease() {
    let gw = TestGateway::builder()
        .lease_ms(SHORT_LEASE_MS)
        .max_attempts(3)
        .start()
        .await;
    let mut desk = gw.subscribe(ESIL_PROVIDER, 0).await;
    assert_eq!(desk.welcome.lease_ms, SHORT_LEASE_MS);
    let id = gw.submit_application().await.receipt.message_id;

    let first = desk.next_delivery().await;
    assert_eq!((first.message_id.as_str(), first.attempt), (id.as_str(), 1));
    let first_lease_until = to_time(first.lease_until.as_ref().expect("lease_until"));
    let second = desk.next_delivery().await;
    // Not before the first lease ended (a few ms of clock rounding allowed).
    let arrived = OffsetDateTime::now_utc();
    assert!(
        arrived >= first_lease_until - time::Duration::milliseconds(20),
        "redelivered at {arrived}, before the lease ended at {first_lease_until}"
    );
    assert_eq!(
        (second.message_id.as_str(), second.attempt),
        (id.as_str(), 2)
    );
    assert!(to_time(second.lease_until.as_ref().unwrap()) > first_lease_until);
    assert_eq!(second.envelope, first.envelope);
    assert_eq!(
        gw.status(&id).await.delivery_state(),
        MessageState::OnDelivery
    );

    desk.accept(&id).await;
    let application = delivery_state_becomes(&gw, &id, MessageState::Delivered).await;
    assert_eq!(application.status(), ApplicationStatus::Delivered);
    // Settled: nothing queued or leased is left to make a third attempt of,
    // and the journal shows the two deliveries only.
    queue_depth_becomes(&gw, (0, 0, 0)).await;
    assert_eq!(gw.delivered_attempts(&id).await, [1, 2]);
}

#[tokio::test]
async fn a_dropped_connection_gives_its_deliveries_to_another_connection() {
    // A long lease: only the dropped connection can cause the redelivery.
    let gw = TestGateway::start().await;
    let doomed_channel = connect(&gw.url()).await;
    let mut doomed = Subscription::open(doomed_channel.clone(), hello(ESIL_PROVIDER, 0))
        .await
        .expect("subscribed");
    let id = gw.submit_application().await.receipt.message_id;
    let first = doomed.next_delivery().await;
    assert_eq!((first.message_id.as_str(), first.attempt), (id.as_str(), 1));

    let mut survivor = gw.subscribe(ESIL_PROVIDER, 0).await;
    assert_ne!(survivor.welcome.connection_id, doomed.welcome.connection_id);
    assert_eq!(
        depth(&gw).await,
        (0, 1, 0),
        "leased to the first connection"
    );

    drop(doomed);
    drop(doomed_channel);
    let again = survivor.next_delivery().await;
    assert_eq!((again.message_id.as_str(), again.attempt), (id.as_str(), 2));
    survivor.accept(&id).await;
    delivery_state_becomes(&gw, &id, MessageState::Delivered).await;
}

#[tokio::test]
async fn connections_of_one_provider_compete_for_its_queue() {
    let gw = TestGateway::start().await;
    let mut left = gw.subscribe(ESIL_PROVIDER, 1).await;
    let mut right = gw.subscribe(ESIL_PROVIDER, 1).await;
    let mut submitted = BTreeSet::new();
    for _ in 0..4 {
        submitted.insert(gw.submit_application().await.receipt.message_id);
    }

    let mut received = Vec::new();
    for _ in 0..2 {
        let l = left.next_delivery().await;
        let r = right.next_delivery().await;
        assert_eq!((l.attempt, r.attempt), (1, 1));
        left.accept(&l.message_id).await;
        right.accept(&r.message_id).await;
        received.push(l.message_id);
        received.push(r.message_id);
    }
    let unique: BTreeSet<String> = received.iter().cloned().collect();
    assert_eq!(unique.len(), 4, "each delivered once: {received:?}");
    assert_eq!(unique, submitted);
    for id in &submitted {
        delivery_state_becomes(&gw, id, MessageState::Delivered).await;
    }
    // Nothing is left to deliver, and each went out once.
    queue_depth_becomes(&gw, (0, 0, 0)).await;
    for id in &submitted {
        assert_eq!(gw.delivered_attempts(id).await, [1], "`{id}`");
    }
}

#[tokio::test]
async fn a_connection_holds_at_most_max_in_flight_unacknowledged_deliveries() {
    let gw = TestGateway::start().await;
    let mut desk = gw.subscribe(ESIL_PROVIDER, 1).await;
    let first_id = gw.submit_application().await.receipt.message_id;
    let second_id = gw.submit_application().await.receipt.message_id;

    let first = desk.next_delivery().await;
    assert_eq!(first.message_id, first_id, "oldest first");
    queue_depth_becomes(&gw, (1, 1, 0)).await;

    desk.accept(&first_id).await;
    let second = desk.next_delivery().await;
    assert_eq!(
        (second.message_id.as_str(), second.attempt),
        (second_id.as_str(), 1)
    );
    desk.accept(&second_id).await;
    delivery_state_becomes(&gw, &second_id, MessageState::Delivered).await;
    // The second went out only after the first was acknowledged. (The last
    // acknowledgement is journalled a moment after it is applied.)
    let expected = [
        StreamEvent::delivered(&first_id, 1),
        StreamEvent::acknowledged(&first_id),
        StreamEvent::delivered(&second_id, 1),
        StreamEvent::acknowledged(&second_id),
    ];
    eventually(PATIENCE, async || {
        let events = gw.stream_events(ESIL_PROVIDER).await;
        if events == expected {
            Ok(())
        } else {
            Err(events)
        }
    })
    .await;
}

#[tokio::test]
async fn hello_service_ids_narrow_a_connection_to_some_services() {
    let gw = TestGateway::start().await;
    let narrow = Subscription::open(
        gw.channel(),
        Hello {
            service_ids: vec!["guardianship-certificate-karaganda".to_owned()],
            ..hello(ESIL_PROVIDER, 0)
        },
    )
    .await
    .expect("subscribed");
    let id = gw.submit_application().await.receipt.message_id;

    // The narrow connection, open first, did not take it: the wide one
    // gets it as the first attempt, and it is the only delivery.
    let mut wide = gw.subscribe(ESIL_PROVIDER, 0).await;
    let delivery = wide.next_delivery().await;
    assert_eq!(
        (delivery.message_id.as_str(), delivery.attempt),
        (id.as_str(), 1)
    );
    assert_eq!(gw.delivered_attempts(&id).await, [1]);
    assert_eq!(depth(&gw).await, (0, 1, 0));
    drop(narrow);
}

#[tokio::test]
async fn not_accepted_without_resend_makes_the_application_not_delivered() {
    let gw = TestGateway::start().await;
    let mut desk = gw.subscribe(ESIL_PROVIDER, 0).await;
    let submitted = gw.submit_application().await;
    let id = submitted.receipt.message_id.clone();
    desk.next_delivery().await;
    let why = "формат заявления не поддерживается";
    desk.reject(&id, ResendMessage::NotResend, why).await;

    let application = delivery_state_becomes(&gw, &id, MessageState::NotDelivered).await;
    assert_eq!(application.status(), ApplicationStatus::NotDelivered);
    let last = application.events.last().unwrap();
    assert_eq!(last.status(), ApplicationStatus::NotDelivered);
    assert_eq!(last.reason, why);
    assert_eq!(last.reported_by, "gateway");
    assert!(last.notification.contains(why), "{}", last.notification);
    // Nothing is left to redeliver; it went out once.
    assert_eq!(depth(&gw).await, (0, 0, 0));
    assert_eq!(gw.delivered_attempts(&id).await, [1]);

    // Terminal: the provider cannot report on it any more.
    refusal(
        gw.report(
            ESIL_PROVIDER,
            &submitted.body,
            StatusReport {
                registration_number: "ESIL-9".to_owned(),
                ..status_report(ApplicationStatus::Registered)
            },
        )
        .await,
        Code::FailedPrecondition,
        "INVALID_STATUS_TRANSITION",
    );
}

#[tokio::test]
async fn not_accepted_with_resend_is_delivered_again_at_once() {
    // A long lease: the redelivery comes from the resend, not from an expiry.
    let gw = TestGateway::start().await;
    let mut desk = gw.subscribe(ESIL_PROVIDER, 0).await;
    let id = gw.submit_application().await.receipt.message_id;
    desk.next_delivery().await;
    desk.reject(&id, ResendMessage::Resend, "временно недоступно")
        .await;
    let again = desk.next_delivery().await;
    assert_eq!((again.message_id.as_str(), again.attempt), (id.as_str(), 2));
    assert_eq!(gw.status(&id).await.status(), ApplicationStatus::Accepted);
    desk.accept(&id).await;
    delivery_state_becomes(&gw, &id, MessageState::Delivered).await;
}

#[tokio::test]
async fn running_out_of_attempts_stops_delivery() {
    let gw = TestGateway::builder()
        .lease_ms(SHORT_LEASE_MS)
        .max_attempts(2)
        .start()
        .await;
    let mut desk = gw.subscribe(ESIL_PROVIDER, 0).await;
    let id = gw.submit_application().await.receipt.message_id;
    assert_eq!(desk.next_delivery().await.attempt, 1);
    assert_eq!(desk.next_delivery().await.attempt, 2);

    let application = delivery_state_becomes(&gw, &id, MessageState::DeliveryStopped).await;
    assert_eq!(application.status(), ApplicationStatus::NotDelivered);
    let last = application.events.last().unwrap();
    assert_eq!(last.status(), ApplicationStatus::NotDelivered);
    assert!(last.reason.contains("2 attempts"), "{}", last.reason);
    assert_eq!(depth(&gw).await, (0, 0, 1), "kept aside as a dead letter");
    assert_eq!(gw.delivered_attempts(&id).await, [1, 2]);

    // A late acknowledgement does not revive it.
    refusal(
        gw.provider_client()
            .acknowledge(ack(
                ESIL_PROVIDER,
                &id,
                ReceiveStatus::MessageAccepted,
                ResendMessage::Unspecified,
                "",
            ))
            .await,
        Code::NotFound,
        "MESSAGE_NOT_FOUND",
    );
    assert_eq!(
        gw.status(&id).await.delivery_state(),
        MessageState::DeliveryStopped
    );
}

#[tokio::test]
async fn pull_mode_leases_queued_messages_and_acknowledge_settles_them() {
    let gw = TestGateway::start().await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(gw.submit_application().await.receipt.message_id);
    }
    let mut client = gw.provider_client();

    let first = client
        .get_messages(pull(ESIL_PROVIDER, 2))
        .await
        .unwrap()
        .into_inner();
    assert!(first.response_date.is_some());
    let pulled: Vec<&str> = first
        .messages
        .iter()
        .map(|delivery| delivery.message_id.as_str())
        .collect();
    assert_eq!(
        pulled,
        [ids[0].as_str(), ids[1].as_str()],
        "oldest first, at most `amount`"
    );
    for delivery in &first.messages {
        assert_eq!(delivery.attempt, 1);
        assert_eq!(delivery.service_id, ESIL_SERVICE);
        assert!(delivery.envelope.is_some() && delivery.lease_until.is_some());
    }
    let rest = client
        .get_messages(pull(ESIL_PROVIDER, 0))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rest.messages.len(), 1);
    assert_eq!(rest.messages[0].message_id, ids[2]);
    let none = client
        .get_messages(pull(ESIL_PROVIDER, 10))
        .await
        .unwrap()
        .into_inner();
    assert!(none.messages.is_empty(), "all leased");
    assert_eq!(depth(&gw).await, (0, 3, 0));

    for id in &ids {
        client
            .acknowledge(ack(
                ESIL_PROVIDER,
                id,
                ReceiveStatus::MessageAccepted,
                ResendMessage::Unspecified,
                "",
            ))
            .await
            .expect("acknowledged");
        let application = gw.status(id).await;
        assert_eq!(application.delivery_state(), MessageState::Delivered);
        assert_eq!(application.status(), ApplicationStatus::Delivered);
    }
    assert_eq!(depth(&gw).await, (0, 0, 0));

    // Settled already, and never known.
    for id in [ids[0].clone(), new_message_id()] {
        refusal(
            client
                .acknowledge(ack(
                    ESIL_PROVIDER,
                    &id,
                    ReceiveStatus::MessageAccepted,
                    ResendMessage::Unspecified,
                    "",
                ))
                .await,
            Code::NotFound,
            "MESSAGE_NOT_FOUND",
        );
    }
}

#[tokio::test]
async fn pull_mode_filters_and_refusals() {
    let gw = TestGateway::start().await;
    let id = gw.submit_application().await.receipt.message_id;
    let mut client = gw.provider_client();

    let other_service = client
        .get_messages(GetMessagesRequest {
            service_id: "guardianship-certificate-karaganda".to_owned(),
            ..pull(ESIL_PROVIDER, 10)
        })
        .await
        .unwrap()
        .into_inner();
    assert!(other_service.messages.is_empty());
    refusal(
        client.get_messages(pull("no-such-provider", 10)).await,
        Code::PermissionDenied,
        "PROVIDER_NOT_ALLOWED",
    );
    // A consumer system reads its own queue of responses (tests/tests/replies.rs).
    let leased = client
        .get_messages(GetMessagesRequest {
            service_id: ESIL_SERVICE.to_owned(),
            ..pull(ESIL_PROVIDER, 10)
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(leased.messages.len(), 1);

    let accepted = |provider: &str| {
        ack(
            provider,
            &id,
            ReceiveStatus::MessageAccepted,
            ResendMessage::Unspecified,
            "",
        )
    };
    refusal(
        client.acknowledge(accepted("")).await,
        Code::PermissionDenied,
        "PROVIDER_NOT_ALLOWED",
    );
    refusal(
        client.acknowledge(accepted(OTHER_PROVIDER)).await,
        Code::PermissionDenied,
        "PROVIDER_NOT_ALLOWED",
    );
    let status = refusal(
        client
            .acknowledge(ack(
                ESIL_PROVIDER,
                &id,
                ReceiveStatus::Unspecified,
                ResendMessage::Unspecified,
                "",
            ))
            .await,
        Code::InvalidArgument,
        "INVALID_FIELD",
    );
    assert_eq!(
        error_metadata(&status, "field").as_deref(),
        Some("receive_status")
    );
    assert_eq!(depth(&gw).await, (0, 1, 0), "refused acks settle nothing");
    client
        .acknowledge(accepted(ESIL_PROVIDER))
        .await
        .expect("the routed provider acknowledges");
    assert_eq!(
        gw.status(&id).await.delivery_state(),
        MessageState::Delivered
    );
}

#[tokio::test]
async fn a_late_acknowledgement_after_the_lease_expired_is_honoured() {
    let gw = TestGateway::builder()
        .lease_ms(SHORT_LEASE_MS)
        .start()
        .await;
    let id = gw.submit_application().await.receipt.message_id;
    let mut client = gw.provider_client();
    let leased = client
        .get_messages(pull(ESIL_PROVIDER, 1))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(leased.messages.len(), 1);
    // The lease runs out and the request goes back to the queue...
    queue_depth_becomes(&gw, (1, 0, 0)).await;
    // ...but the acknowledgement arrives before anyone took it again.
    client
        .acknowledge(ack(
            ESIL_PROVIDER,
            &id,
            ReceiveStatus::MessageAccepted,
            ResendMessage::Unspecified,
            "",
        ))
        .await
        .expect("a late acknowledgement is honoured");
    assert_eq!(
        gw.status(&id).await.delivery_state(),
        MessageState::Delivered
    );
    assert_eq!(depth(&gw).await, (0, 0, 0));
    let again = client
        .get_messages(pull(ESIL_PROVIDER, 10))
        .await
        .unwrap()
        .into_inner();
    assert!(again.messages.is_empty(), "not delivered twice");
}

#[tokio::test]
async fn a_subscribe_that_does_not_start_with_hello_is_a_protocol_violation() {
    let gw = TestGateway::start().await;
    let status = subscribe_refusal(
        &gw,
        SubscribeRequest {
            kind: Some(subscribe_request::Kind::Ack(ack(
                ESIL_PROVIDER,
                &new_message_id(),
                ReceiveStatus::MessageAccepted,
                ResendMessage::Unspecified,
                "",
            ))),
        },
    )
    .await;
    refusal::<()>(Err(status), Code::FailedPrecondition, "PROTOCOL_VIOLATION");

    // A second Hello after the first also ends the stream.
    let mut desk = gw.subscribe(ESIL_PROVIDER, 0).await;
    desk.send(SubscribeRequest {
        kind: Some(subscribe_request::Kind::Hello(hello(ESIL_PROVIDER, 0))),
    })
    .await;
    match desk.next_within(PATIENCE).await {
        Next::Failed(status) => {
            refusal::<()>(Err(status), Code::FailedPrecondition, "PROTOCOL_VIOLATION");
        }
        other => panic!("expected PROTOCOL_VIOLATION, got {other:?}"),
    }
}

#[tokio::test]
async fn a_subscribe_for_a_system_that_is_not_a_provider_is_refused() {
    let gw = TestGateway::start().await;
    // (A consumer with `responses` has a queue of its own: tests/tests/replies.rs.)
    for provider in ["no-such-provider", "is-mio-no-such-system"] {
        let status = Subscription::open(gw.channel(), hello(provider, 0))
            .await
            .expect_err("not a provider");
        refusal::<()>(Err(status), Code::PermissionDenied, "PROVIDER_NOT_ALLOWED");
    }
    // And the provider's real connection still works.
    let mut desk = gw.subscribe(ESIL_PROVIDER, 0).await;
    let id = gw.submit_application().await.receipt.message_id;
    assert_eq!(desk.next_delivery().await.message_id, id);
}

#[tokio::test]
async fn a_report_from_a_provider_the_application_is_not_routed_to_is_refused() {
    let gw = TestGateway::start().await;
    let submitted = gw.submit_application().await;
    let registered = StatusReport {
        registration_number: "TAY-1".to_owned(),
        ..status_report(ApplicationStatus::Registered)
    };
    let status = refusal(
        gw.report(OTHER_PROVIDER, &submitted.body, registered.clone())
            .await,
        Code::PermissionDenied,
        "PROVIDER_NOT_ALLOWED",
    );
    assert!(
        status.message().contains(OTHER_PROVIDER),
        "{}",
        status.message()
    );

    // The applicant's portal is not a provider system at all.
    let applicant = gw.applicant();
    refusal(
        gw.provider_client()
            .report(applicant.report(&submitted.body, registered).unwrap())
            .await,
        Code::PermissionDenied,
        "PROVIDER_NOT_ALLOWED",
    );
    let application = gw.status(&submitted.receipt.message_id).await;
    assert_eq!(application.status(), ApplicationStatus::Accepted);
    assert_eq!(application.delivery_state(), MessageState::OnDelivery);
    assert_eq!(depth(&gw).await, (1, 0, 0), "still queued for its provider");
}

#[tokio::test]
async fn a_report_settles_an_unacknowledged_delivery_and_frees_its_credit() {
    let gw = TestGateway::start().await;
    let mut desk = gw.subscribe(ESIL_PROVIDER, 1).await;
    let first = gw.submit_application().await;
    let second_id = gw.submit_application().await.receipt.message_id;
    let delivery = desk.next_delivery().await;
    assert_eq!(delivery.message_id, first.receipt.message_id);
    queue_depth_becomes(&gw, (1, 1, 0)).await;

    // The provider registers the first request without acknowledging it.
    gw.report(
        ESIL_PROVIDER,
        &first.body,
        StatusReport {
            registration_number: "ESIL-11".to_owned(),
            ..status_report(ApplicationStatus::Registered)
        },
    )
    .await
    .expect("REGISTERED");
    let application = gw.status(&first.receipt.message_id).await;
    assert_eq!(application.delivery_state(), MessageState::Delivered);
    assert_eq!(application.status(), ApplicationStatus::Registered);

    let next = desk.next_delivery().await;
    assert_eq!(
        (next.message_id.as_str(), next.attempt),
        (second_id.as_str(), 1)
    );
}

#[tokio::test]
async fn resend_on_the_last_attempt_stops_delivery() {
    let gw = TestGateway::builder().max_attempts(2).start().await;
    let mut desk = gw.subscribe(ESIL_PROVIDER, 0).await;
    let id = gw.submit_application().await.receipt.message_id;
    for attempt in 1..=2 {
        let delivery = desk.next_delivery().await;
        assert_eq!(delivery.attempt, attempt);
        desk.reject(&id, ResendMessage::Resend, "занято").await;
    }
    let application = delivery_state_becomes(&gw, &id, MessageState::DeliveryStopped).await;
    assert_eq!(application.status(), ApplicationStatus::NotDelivered);
    // A dead letter, not queued again: two deliveries, no third.
    assert_eq!(depth(&gw).await, (0, 0, 1));
    assert_eq!(gw.delivered_attempts(&id).await, [1, 2]);
}

#[tokio::test]
async fn hello_max_in_flight_zero_means_the_configured_default() {
    let gw = TestGateway::builder().max_in_flight(2).start().await;
    let mut desk = gw.subscribe(ESIL_PROVIDER, 0).await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(gw.submit_application().await.receipt.message_id);
    }
    assert_eq!(desk.next_delivery().await.message_id, ids[0]);
    assert_eq!(desk.next_delivery().await.message_id, ids[1]);
    queue_depth_becomes(&gw, (1, 2, 0)).await;

    // The third goes out once an acknowledgement frees a place, not before.
    desk.accept(&ids[0]).await;
    let third = desk.next_delivery().await;
    assert_eq!(
        (third.message_id.as_str(), third.attempt),
        (ids[2].as_str(), 1)
    );
    assert_eq!(
        gw.stream_events(ESIL_PROVIDER).await,
        [
            StreamEvent::delivered(&ids[0], 1),
            StreamEvent::delivered(&ids[1], 1),
            StreamEvent::acknowledged(&ids[0]),
            StreamEvent::delivered(&ids[2], 1),
        ]
    );
}

#[tokio::test]
async fn an_expired_pull_lease_is_leased_again_with_the_next_attempt() {
    let gw = TestGateway::builder()
        .lease_ms(SHORT_LEASE_MS)
        .start()
        .await;
    let id = gw.submit_application().await.receipt.message_id;
    let mut client = gw.provider_client();
    let first = client
        .get_messages(pull(ESIL_PROVIDER, 1))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.messages[0].attempt, 1);
    queue_depth_becomes(&gw, (1, 0, 0)).await;
    let again = client
        .get_messages(pull(ESIL_PROVIDER, 1))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.messages.len(), 1);
    assert_eq!(
        (
            again.messages[0].message_id.as_str(),
            again.messages[0].attempt
        ),
        (id.as_str(), 2)
    );
}

#[tokio::test]
async fn an_ack_the_gateway_cannot_apply_is_ignored_and_the_stream_goes_on() {
    let gw = TestGateway::start().await;
    let mut desk = gw.subscribe(ESIL_PROVIDER, 0).await;
    desk.accept(&new_message_id()).await;
    desk.accept("not-a-uuid").await;
    let id = gw.submit_application().await.receipt.message_id;
    let delivery = desk.next_delivery().await;
    assert_eq!(delivery.message_id, id);
    desk.accept(&id).await;
    delivery_state_becomes(&gw, &id, MessageState::Delivered).await;
}
