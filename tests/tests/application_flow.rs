//! An application's life: portal -> gateway -> provider -> back to the
//! applicant, its refusal, idempotent re-sends, and what the applicant sees
//! through GetStatus, History and Watch.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use prost::Message;
use shep::script::{ProviderRule, run_provider};
use shep_gateway::calendar::{Deadline, DeadlineUnit, KZ_OFFSET};
use shep_proto::envelope::v1::{ApplicationStatus, Body, Channel, StatusReport};
use shep_proto::gateway::v1::{GetStatusRequest, HistoryRequest, MessageState};
use shep_proto::provider::v1::GetMessagesRequest;
use shep_tests::*;
use time::{OffsetDateTime, Weekday};
use tonic::Code;

fn statuses(events: &[shep_proto::gateway::v1::StatusEvent]) -> Vec<ApplicationStatus> {
    events.iter().map(|event| event.status()).collect()
}

#[tokio::test]
async fn portal_application_reaches_its_provider_and_its_statuses_reach_the_applicant() {
    let gw = TestGateway::start().await;
    let mut watch = gw.watch_subject(iin(APPLICANT_IIN), 0).await;
    let mut desk = gw.subscribe(ESIL_PROVIDER, 0).await;
    assert_eq!(desk.welcome.lease_ms, 30_000, "the default lease");

    // The applicant signs and submits; the region (КАТО 59…) picks the provider.
    let submitted = gw.submit_application().await;
    let id = submitted.body.message_id.clone();
    let receipt = &submitted.receipt;
    assert_eq!(receipt.message_id, id);
    assert_eq!(receipt.provider_id, ESIL_PROVIDER);
    assert_eq!(receipt.status(), ApplicationStatus::Accepted);
    assert!(receipt.response_date.is_some());

    // The provider receives exactly what the applicant signed.
    let delivery = desk.next_delivery().await;
    assert_eq!(delivery.message_id, id);
    assert_eq!(delivery.service_id, ESIL_SERVICE);
    assert_eq!(delivery.attempt, 1);
    assert!(delivery.lease_until.is_some());
    let delivered = delivery.envelope.expect("the envelope is delivered");
    assert_eq!(
        delivered, submitted.envelope,
        "body bytes and signature as signed"
    );
    let application = Body::decode(delivered.body.as_slice()).expect("the body decodes");
    assert_eq!(application, submitted.body);
    desk.accept(&id).await;

    let accepted = next_item(&mut watch).await;
    assert_eq!(
        (accepted.status(), accepted.message_id.as_str()),
        (ApplicationStatus::Accepted, id.as_str())
    );
    assert_eq!(accepted.reported_by, "gateway");
    assert_eq!(accepted.service_id, ESIL_SERVICE);
    assert_eq!(accepted.subject, Some(iin(APPLICANT_IIN)));
    let delivered_event = next_item(&mut watch).await;
    assert_eq!(delivered_event.status(), ApplicationStatus::Delivered);
    assert_eq!(delivered_event.reported_by, "gateway");

    // Registered without expected_at: the gateway computes it from the deadline.
    let registered = gw
        .report(
            ESIL_PROVIDER,
            &application,
            StatusReport {
                registration_number: "ESIL-2026-000123".to_owned(),
                ..status_report(ApplicationStatus::Registered)
            },
        )
        .await
        .expect("REGISTERED is accepted");
    assert_eq!(registered.status(), ApplicationStatus::Registered);
    assert_eq!(registered.correlation_id, id);
    let in_work = gw
        .report(
            ESIL_PROVIDER,
            &application,
            status_report(ApplicationStatus::InWork),
        )
        .await
        .expect("IN_WORK is accepted");
    assert_eq!(in_work.status(), ApplicationStatus::InWork);
    let document = gw
        .provider(ESIL_PROVIDER)
        .document(
            "spravka.pdf",
            "application/pdf",
            b"%PDF-1.4 spravka po opeke",
        )
        .expect("signing the result");
    let completed = gw
        .report(
            ESIL_PROVIDER,
            &application,
            StatusReport {
                result: Some(document.clone()),
                ..status_report(ApplicationStatus::Completed)
            },
        )
        .await
        .expect("COMPLETED is accepted");
    assert_eq!(completed.status(), ApplicationStatus::Completed);

    let mut events = vec![accepted, delivered_event];
    for _ in 0..3 {
        events.push(next_item(&mut watch).await);
    }
    assert_eq!(
        statuses(&events),
        [
            ApplicationStatus::Accepted,
            ApplicationStatus::Delivered,
            ApplicationStatus::Registered,
            ApplicationStatus::InWork,
            ApplicationStatus::Completed,
        ]
    );
    assert!(
        events
            .windows(2)
            .all(|pair| pair[0].sequence < pair[1].sequence),
        "sequences increase: {:?}",
        events
            .iter()
            .map(|event| event.sequence)
            .collect::<Vec<_>>()
    );
    assert_eq!(
        [events[2].sequence, events[3].sequence, events[4].sequence],
        [registered.sequence, in_work.sequence, completed.sequence],
        "report receipts carry their events' sequence numbers"
    );
    for event in &events[2..] {
        assert_eq!(event.reported_by, ESIL_PROVIDER);
        assert_eq!(event.message_id, id);
    }
    assert_eq!(events[2].registration_number, "ESIL-2026-000123");
    assert!(
        events[2].notification.contains("ESIL-2026-000123"),
        "{}",
        events[2].notification
    );
    assert_eq!(events[4].result.as_ref(), Some(&document));

    // What GetStatus says.
    let status = gw.status(&id).await;
    assert_eq!(status.status(), ApplicationStatus::Completed);
    assert_eq!(status.delivery_state(), MessageState::Delivered);
    assert_eq!(status.registration_number, "ESIL-2026-000123");
    assert_eq!(status.provider_id, ESIL_PROVIDER);
    assert_eq!(status.service_id, ESIL_SERVICE);
    assert_eq!(status.sender_id, "pep");
    assert_eq!(status.channel(), Channel::Portal);
    assert_eq!(status.subject, Some(iin(APPLICANT_IIN)));
    assert!(!status.overdue);
    assert!(!status.test);
    assert_eq!(
        status.events, events,
        "GetStatus lists every event, oldest first"
    );

    // expected_at: five working days after acceptance, at 18:00 Astana time.
    let accepted_at = to_time(status.accepted_at.as_ref().expect("accepted_at"));
    let expected_at = to_time(
        status
            .expected_at
            .as_ref()
            .expect("expected_at is computed"),
    );
    assert_eq!(
        Some(expected_at),
        events[2].expected_at.as_ref().map(to_time),
        "the REGISTERED event carries the same due time"
    );
    let deadline = Deadline {
        amount: 5,
        unit: DeadlineUnit::WorkingDays,
    };
    assert_eq!(
        expected_at,
        deadline.due(accepted_at, &shep_gateway::calendar::Calendar::default())
    );
    let local = expected_at.to_offset(KZ_OFFSET);
    assert_eq!((local.hour(), local.minute(), local.second()), (18, 0, 0));
    assert!(!matches!(
        local.weekday(),
        Weekday::Saturday | Weekday::Sunday
    ));
    let days = (local.date() - accepted_at.to_offset(KZ_OFFSET).date()).whole_days();
    assert!((5..=14).contains(&days), "due {days} days after acceptance");

    // What History says.
    let history = gw
        .gateway()
        .history(HistoryRequest {
            subject: Some(iin(APPLICANT_IIN)),
            page_size: 0,
            page_token: String::new(),
        })
        .await
        .expect("History")
        .into_inner();
    assert_eq!(history.applications, vec![status]);
    assert!(history.next_page_token.is_empty());

    // A watcher resuming after REGISTERED gets only what came later.
    let mut resumed = gw
        .watch_subject(iin(APPLICANT_IIN), registered.sequence)
        .await;
    let replayed = [next_item(&mut resumed).await, next_item(&mut resumed).await];
    assert_eq!(replayed[0], events[3]);
    assert_eq!(replayed[1], events[4]);
    // Nothing else came between: the applicant's next event is the next item.
    let later = gw.submit_application().await.receipt.message_id;
    let next = next_item(&mut resumed).await;
    assert_eq!(
        (next.message_id.as_str(), next.status()),
        (later.as_str(), ApplicationStatus::Accepted)
    );
    assert!(next.sequence > events[4].sequence);
    // So does one watching the application by its id.
    let mut by_id = gw.watch_message(&id, in_work.sequence).await;
    assert_eq!(next_item(&mut by_id).await, events[4]);
}

#[tokio::test]
async fn a_report_that_overtakes_the_providers_ack_records_the_delivery_first() {
    let gw = TestGateway::start().await;
    let mut desk = gw.subscribe(ESIL_PROVIDER, 0).await;
    let submitted = gw.submit_application().await;
    let id = submitted.receipt.message_id.clone();
    assert_eq!(desk.next_delivery().await.message_id, id);

    // REGISTERED reaches the gateway before the ack: the overtaking an
    // automated provider causes, here made certain.
    let mut registered = status_report(ApplicationStatus::Registered);
    registered.registration_number = "ESL-1".to_owned();
    gw.report(ESIL_PROVIDER, &submitted.body, registered)
        .await
        .expect("the report applies");
    desk.accept(&id).await;
    // The late ack is handled (journalled) before the next report.
    let acked = StreamEvent::Acknowledged {
        message_id: id.clone(),
    };
    eventually(PATIENCE, async || {
        let events = gw.stream_events(ESIL_PROVIDER).await;
        if events.contains(&acked) {
            Ok(())
        } else {
            Err(events)
        }
    })
    .await;
    gw.report(
        ESIL_PROVIDER,
        &submitted.body,
        status_report(ApplicationStatus::InWork),
    )
    .await
    .expect("IN_WORK applies");

    let application = gw.status(&id).await;
    assert_eq!(
        statuses(&application.events),
        [
            ApplicationStatus::Accepted,
            ApplicationStatus::Delivered,
            ApplicationStatus::Registered,
            ApplicationStatus::InWork,
        ],
        "DELIVERED once, before REGISTERED, and not again when the ack arrives"
    );
    assert_eq!(application.delivery_state(), MessageState::Delivered);
}

#[tokio::test]
async fn a_refusal_with_a_reason_is_terminal() {
    let gw = TestGateway::start().await;
    let submitted = gw.submit_application().await;
    let id = &submitted.receipt.message_id;

    let status = refusal(
        gw.report(
            ESIL_PROVIDER,
            &submitted.body,
            status_report(ApplicationStatus::Refused),
        )
        .await,
        Code::InvalidArgument,
        "INVALID_FIELD",
    );
    assert_eq!(
        error_metadata(&status, "field").as_deref(),
        Some("report.reason")
    );

    // A refusal follows registration (condition 3 is checked on a registered application).
    gw.report(
        ESIL_PROVIDER,
        &submitted.body,
        StatusReport {
            registration_number: "ESIL-R-1".to_owned(),
            ..status_report(ApplicationStatus::Registered)
        },
    )
    .await
    .expect("REGISTERED");
    let reason_text = "представлен неполный пакет документов";
    let refused = gw
        .report(
            ESIL_PROVIDER,
            &submitted.body,
            StatusReport {
                reason: reason_text.to_owned(),
                ..status_report(ApplicationStatus::Refused)
            },
        )
        .await
        .expect("REFUSED with a reason is accepted");
    assert_eq!(refused.status(), ApplicationStatus::Refused);

    let document = gw
        .provider(ESIL_PROVIDER)
        .document("spravka.txt", "text/plain", b"too late")
        .unwrap();
    let late = refusal(
        gw.report(
            ESIL_PROVIDER,
            &submitted.body,
            StatusReport {
                result: Some(document),
                ..status_report(ApplicationStatus::Completed)
            },
        )
        .await,
        Code::FailedPrecondition,
        "INVALID_STATUS_TRANSITION",
    );
    assert!(late.message().contains("REFUSED"), "{}", late.message());
    refusal(
        gw.report(
            ESIL_PROVIDER,
            &submitted.body,
            status_report(ApplicationStatus::InWork),
        )
        .await,
        Code::FailedPrecondition,
        "INVALID_STATUS_TRANSITION",
    );

    let application = gw.status(id).await;
    assert_eq!(application.status(), ApplicationStatus::Refused);
    assert_eq!(
        application.delivery_state(),
        MessageState::Delivered,
        "a report implies delivery"
    );
    // The report proved the delivery its ack had not yet settled.
    assert_eq!(
        statuses(&application.events),
        [
            ApplicationStatus::Accepted,
            ApplicationStatus::Delivered,
            ApplicationStatus::Registered,
            ApplicationStatus::Refused
        ]
    );
    let last = application.events.last().unwrap();
    assert_eq!(last.reason, reason_text);
    assert!(
        last.notification.contains(reason_text),
        "{}",
        last.notification
    );
    assert!(!application.overdue);

    // The report settled the queued request: nothing is left to deliver.
    let pulled = gw
        .provider_client()
        .get_messages(GetMessagesRequest {
            provider_id: ESIL_PROVIDER.to_owned(),
            amount: 10,
            ..GetMessagesRequest::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(pulled.messages.is_empty(), "{:?}", pulled.messages);
}

#[tokio::test]
async fn resubmitting_the_identical_envelope_returns_the_original_receipt_and_delivers_once() {
    let gw = TestGateway::start().await;
    let first = gw.submit_application().await;
    let again = gw
        .gateway()
        .submit(first.envelope.clone())
        .await
        .expect("an identical re-send is answered")
        .into_inner();
    assert_eq!(again, first.receipt);
    assert_eq!(
        gw.engine()
            .delivery()
            .queue(ESIL_PROVIDER)
            .depth()
            .await
            .expect("the queue's depth"),
        (1, 0, 0),
        "queued once"
    );

    let mut desk = gw.subscribe(ESIL_PROVIDER, 0).await;
    let delivery = desk.next_delivery().await;
    assert_eq!(delivery.message_id, first.receipt.message_id);
    desk.accept(&delivery.message_id).await;
    let id = first.receipt.message_id.clone();
    let application = delivery_state_becomes(&gw, &id, MessageState::Delivered).await;
    assert_eq!(
        statuses(&application.events),
        [ApplicationStatus::Accepted, ApplicationStatus::Delivered]
    );
    // Delivered once: nothing is left in the queue, one delivery journalled.
    assert_eq!(
        gw.engine()
            .delivery()
            .queue(ESIL_PROVIDER)
            .depth()
            .await
            .expect("the queue's depth"),
        (0, 0, 0)
    );
    assert_eq!(gw.delivered_attempts(&id).await, [1]);
    let history = gw
        .gateway()
        .history(HistoryRequest {
            subject: Some(iin(APPLICANT_IIN)),
            ..HistoryRequest::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(history.applications.len(), 1);
}

#[tokio::test]
async fn a_re_send_with_a_corrupted_signature_is_refused_not_answered_with_the_receipt() {
    let gw = TestGateway::start().await;
    let first = gw.submit_application().await;
    // The accepted application's exact body, its signature with one bit
    // flipped: the idempotent answer must not skip verification.
    let mut forged = first.envelope.clone();
    let signature = forged.signature.as_mut().expect("signed");
    signature.value[10] ^= 0x01;
    assert_eq!(forged.body, first.envelope.body);
    refusal(
        gw.gateway().submit(forged).await,
        Code::Unauthenticated,
        "SIGNATURE_INVALID",
    );

    // The application is as it was; the genuine re-send still gets its receipt.
    let application = gw.status(&first.receipt.message_id).await;
    assert_eq!(statuses(&application.events), [ApplicationStatus::Accepted]);
    let again = gw
        .gateway()
        .submit(first.envelope.clone())
        .await
        .expect("the genuine re-send is answered")
        .into_inner();
    assert_eq!(again, first.receipt);
}

#[tokio::test]
async fn the_same_message_id_with_a_different_body_is_a_duplicate() {
    let gw = TestGateway::start().await;
    let first = gw.submit_application().await;
    let applicant = gw.applicant();

    let mut changed = first.body.clone();
    changed.payload.as_mut().unwrap().data =
        r#"{"child_iin":"061211600012","kind":"попечительство"}"#
            .as_bytes()
            .to_vec();
    let status = refusal(
        gw.gateway().submit(applicant.seal(&changed).unwrap()).await,
        Code::AlreadyExists,
        "DUPLICATE_MESSAGE",
    );
    assert!(
        status.message().contains(&first.body.message_id),
        "{}",
        status.message()
    );

    // ШЭП's braced form names the same message.
    let mut braced = first.body.clone();
    braced.message_id = format!("{{{}}}", first.body.message_id);
    refusal(
        gw.gateway().submit(applicant.seal(&braced).unwrap()).await,
        Code::AlreadyExists,
        "DUPLICATE_MESSAGE",
    );

    let application = gw.status(&first.receipt.message_id).await;
    assert_eq!(statuses(&application.events), [ApplicationStatus::Accepted]);
    assert_eq!(
        gw.engine()
            .delivery()
            .queue(ESIL_PROVIDER)
            .depth()
            .await
            .expect("the queue's depth"),
        (1, 0, 0)
    );
}

#[tokio::test]
async fn a_repeated_report_returns_the_same_receipt_and_a_changed_one_is_a_duplicate() {
    let gw = TestGateway::start().await;
    let submitted = gw.submit_application().await;
    let employee = gw.provider(ESIL_PROVIDER);
    let envelope = employee
        .report(
            &submitted.body,
            StatusReport {
                registration_number: "ESIL-1".to_owned(),
                ..status_report(ApplicationStatus::Registered)
            },
        )
        .unwrap();
    let mut client = gw.provider_client();
    let first = client.report(envelope.clone()).await.unwrap().into_inner();
    let second = client.report(envelope.clone()).await.unwrap().into_inner();
    assert_eq!(first, second);
    let report_body = Body::decode(envelope.body.as_slice()).unwrap();
    assert_eq!(first.message_id, report_body.message_id);

    let mut changed = report_body;
    changed.report.as_mut().unwrap().registration_number = "ESIL-2".to_owned();
    refusal(
        client.report(employee.seal(&changed).unwrap()).await,
        Code::AlreadyExists,
        "DUPLICATE_MESSAGE",
    );
    let application = gw.status(&submitted.receipt.message_id).await;
    assert_eq!(
        statuses(&application.events),
        [
            ApplicationStatus::Accepted,
            ApplicationStatus::Delivered,
            ApplicationStatus::Registered
        ]
    );
    assert_eq!(application.registration_number, "ESIL-1");
}

#[tokio::test]
async fn reports_missing_their_required_fields_or_with_a_bad_result_are_refused() {
    let gw = TestGateway::start().await;
    let submitted = gw.submit_application().await;
    let body = &submitted.body;

    let cases = [
        (
            status_report(ApplicationStatus::Registered),
            "report.registration_number",
        ),
        (
            status_report(ApplicationStatus::TermExtended),
            "report.expected_at",
        ),
        (status_report(ApplicationStatus::Completed), "report.result"),
    ];
    for (report, field) in cases {
        let status = refusal(
            gw.report(ESIL_PROVIDER, body, report).await,
            Code::InvalidArgument,
            "INVALID_FIELD",
        );
        assert_eq!(error_metadata(&status, "field").as_deref(), Some(field));
    }

    // A result document whose content changed after signing.
    let mut document = gw
        .provider(ESIL_PROVIDER)
        .document("spravka.txt", "text/plain", b"original")
        .unwrap();
    document.content = b"forged".to_vec();
    refusal(
        gw.report(
            ESIL_PROVIDER,
            body,
            StatusReport {
                result: Some(document),
                ..status_report(ApplicationStatus::Completed)
            },
        )
        .await,
        Code::Unauthenticated,
        "SIGNATURE_INVALID",
    );

    // A report about an application the gateway does not know.
    let mut unknown = body.clone();
    unknown.message_id = new_message_id();
    refusal(
        gw.report(
            ESIL_PROVIDER,
            &unknown,
            status_report(ApplicationStatus::InWork),
        )
        .await,
        Code::NotFound,
        "MESSAGE_NOT_FOUND",
    );

    let application = gw.status(&submitted.receipt.message_id).await;
    assert_eq!(application.status(), ApplicationStatus::Accepted);
    assert_eq!(application.events.len(), 1);
}

#[tokio::test]
async fn an_application_past_its_due_time_is_overdue_until_it_is_finished() {
    let gw = TestGateway::start().await;
    let submitted = gw.submit_application().await;
    let id = &submitted.receipt.message_id;
    let due = OffsetDateTime::now_utc() - time::Duration::minutes(1);
    gw.report(
        ESIL_PROVIDER,
        &submitted.body,
        StatusReport {
            registration_number: "ESIL-7".to_owned(),
            expected_at: Some(to_timestamp(due)),
            ..status_report(ApplicationStatus::Registered)
        },
    )
    .await
    .unwrap();
    let application = gw.status(id).await;
    assert_eq!(
        application.expected_at.as_ref().map(|t| t.seconds),
        Some(due.unix_timestamp())
    );
    assert!(application.overdue);

    let document = gw
        .provider(ESIL_PROVIDER)
        .document("spravka.txt", "text/plain", b"done")
        .unwrap();
    gw.report(
        ESIL_PROVIDER,
        &submitted.body,
        StatusReport {
            result: Some(document),
            ..status_report(ApplicationStatus::Completed)
        },
    )
    .await
    .unwrap();
    assert!(!gw.status(id).await.overdue);
}

#[tokio::test]
async fn a_service_centre_application_can_be_returned_to_the_centre_and_a_portal_one_cannot() {
    let gw = TestGateway::start().await;
    let operator = gw.operator();
    let body = operator.request(ESIL_SERVICE, iin(APPLICANT_IIN));
    let receipt = gw
        .gateway()
        .submit(operator.seal(&body).unwrap())
        .await
        .expect("the operator applies on the applicant's behalf")
        .into_inner();
    assert_eq!(receipt.provider_id, ESIL_PROVIDER);
    let returned = gw
        .report(
            ESIL_PROVIDER,
            &body,
            StatusReport {
                reason: "нет копии удостоверения".to_owned(),
                ..status_report(ApplicationStatus::ReturnedToCentre)
            },
        )
        .await
        .expect("RETURNED_TO_CENTRE for a service-centre application");
    assert_eq!(returned.status(), ApplicationStatus::ReturnedToCentre);
    let application = gw.status(&receipt.message_id).await;
    assert_eq!(application.channel(), Channel::ServiceCentre);
    assert_eq!(application.sender_id, "is-con");
    assert_eq!(application.status(), ApplicationStatus::ReturnedToCentre);

    let portal = gw.submit_application().await;
    refusal(
        gw.report(
            ESIL_PROVIDER,
            &portal.body,
            StatusReport {
                reason: "нет копии удостоверения".to_owned(),
                ..status_report(ApplicationStatus::ReturnedToCentre)
            },
        )
        .await,
        Code::FailedPrecondition,
        "INVALID_STATUS_TRANSITION",
    );
}

#[tokio::test]
async fn history_lists_the_applicants_applications_newest_first_in_pages() {
    let gw = TestGateway::start().await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(gw.submit_application().await.receipt.message_id);
    }
    let mut client = gw.gateway();
    let first = client
        .history(HistoryRequest {
            subject: Some(iin(APPLICANT_IIN)),
            page_size: 2,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let ids_of = |page: &shep_proto::gateway::v1::HistoryResponse| {
        page.applications
            .iter()
            .map(|application| application.message_id.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids_of(&first), [ids[2].clone(), ids[1].clone()]);
    assert!(!first.next_page_token.is_empty());
    let second = client
        .history(HistoryRequest {
            subject: Some(iin(APPLICANT_IIN)),
            page_size: 2,
            page_token: first.next_page_token.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ids_of(&second), [ids[0].clone()]);
    assert!(second.next_page_token.is_empty());

    let other = client
        .history(HistoryRequest {
            subject: Some(iin("920704404563")),
            ..HistoryRequest::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(other.applications.is_empty());
    refusal(
        client
            .history(HistoryRequest {
                subject: Some(iin(APPLICANT_IIN)),
                page_size: 2,
                page_token: "not-a-token".to_owned(),
            })
            .await,
        Code::InvalidArgument,
        "INVALID_FIELD",
    );
}

#[tokio::test]
async fn the_status_of_an_unknown_or_malformed_message_id_is_refused() {
    let gw = TestGateway::start().await;
    let mut client = gw.gateway();
    refusal(
        client
            .get_status(GetStatusRequest {
                message_id: new_message_id(),
            })
            .await,
        Code::NotFound,
        "MESSAGE_NOT_FOUND",
    );
    let status = refusal(
        client
            .get_status(GetStatusRequest {
                message_id: "12345".to_owned(),
            })
            .await,
        Code::InvalidArgument,
        "INVALID_MESSAGE_ID",
    );
    assert_eq!(
        error_metadata(&status, "field").as_deref(),
        Some("message_id")
    );

    // The braced ШЭП form finds the application.
    let submitted = gw.submit_application().await;
    let braced = client
        .get_status(GetStatusRequest {
            message_id: format!("{{{}}}", submitted.receipt.message_id.to_uppercase()),
        })
        .await
        .expect("braced, upper-case form")
        .into_inner();
    assert_eq!(braced.message_id, submitted.receipt.message_id);
}

#[tokio::test]
async fn the_simulated_provider_of_the_client_library_completes_an_application() {
    let gw = TestGateway::start().await;
    let (steps_tx, mut steps) = tokio::sync::mpsc::unbounded_channel();
    let provider = tokio::spawn(run_provider(
        gw.channel(),
        gw.provider(ESIL_PROVIDER),
        ProviderRule::Complete,
        Duration::ZERO,
        Some(steps_tx),
    ));
    let submitted = gw.submit_application().await;
    let id = submitted.receipt.message_id.clone();
    let mut watch = gw.watch_message(&id, 0).await;
    let mut seen = Vec::new();
    loop {
        let event = next_item(&mut watch).await;
        seen.push(event.status());
        if event.status() == ApplicationStatus::Completed {
            let result = event.result.expect("a result document");
            let text = String::from_utf8(result.content).unwrap();
            assert!(text.contains(&id), "{text}");
            break;
        }
        assert!(seen.len() < 6, "{seen:?}");
    }
    // The ack and the first report travel separately; whichever arrives
    // first, DELIVERED is announced once, before REGISTERED.
    assert_eq!(
        seen,
        [
            ApplicationStatus::Accepted,
            ApplicationStatus::Delivered,
            ApplicationStatus::Registered,
            ApplicationStatus::InWork,
            ApplicationStatus::Completed,
        ]
    );
    let application = gw.status(&id).await;
    assert_eq!(application.delivery_state(), MessageState::Delivered);
    // The provider narrates its steps; the last one is the COMPLETED report.
    let mut narrated = Vec::new();
    while !narrated.iter().any(|what| what == "reported COMPLETED") {
        match tokio::time::timeout(PATIENCE, steps.recv()).await {
            Ok(Some(step)) => narrated.push(step.what),
            other => panic!("no COMPLETED step ({other:?}): {narrated:?}"),
        }
    }
    assert!(
        narrated.iter().any(|what| what == "acknowledged: accepted"),
        "{narrated:?}"
    );
    provider.abort();
}

// Several workers, so the reports are applied while the watchers open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_opened_while_statuses_change_misses_no_event() {
    // Many applications make the replay read long; reports on the first and
    // the last application land while watchers are being opened. Every event
    // of this gateway is the applicant's, so a watcher from sequence 0 must
    // see 1, 2, 3, … with no gap. (The engine is driven directly, as the
    // Report RPC drives it, to change statuses fast enough.)
    const APPLICATIONS: usize = 300;
    const ROUNDS: usize = 400;
    const MAX_WATCHERS: usize = 60;
    // In memory: the race is in the store and the live feed; sequential fsyncs
    // would only slow the writer down.
    let gw = TestGateway::builder()
        .configure(|config| config.journal.mode = shep_gateway::config::JournalMode::Memory)
        .start()
        .await;
    let applicant = gw.applicant();
    let mut bodies = Vec::new();
    for _ in 0..APPLICATIONS {
        let body = applicant.request(ESIL_SERVICE, iin(APPLICANT_IIN));
        shep_gateway::pipeline::submit(
            gw.engine(),
            applicant.seal(&body).unwrap(),
            &shep_gateway::toolkit::CallContext::default(),
        )
        .await
        .expect("accepted");
        bodies.push(body);
    }
    let employee = gw.provider(ESIL_PROVIDER);
    let ends = [bodies[0].clone(), bodies[APPLICATIONS - 1].clone()];
    let extended_to = to_timestamp(OffsetDateTime::now_utc() + time::Duration::days(30));
    let mut reports = Vec::new();
    for round in 0..=ROUNDS {
        for body in &ends {
            let report = match round {
                0 => StatusReport {
                    registration_number: "ESIL-R".to_owned(),
                    ..status_report(ApplicationStatus::Registered)
                },
                odd if odd % 2 == 1 => StatusReport {
                    expected_at: Some(extended_to),
                    ..status_report(ApplicationStatus::TermExtended)
                },
                _ => status_report(ApplicationStatus::InWork),
            };
            reports.push(employee.report(body, report).unwrap());
        }
    }
    // The first report on each of the two also records its DELIVERED.
    let total = (APPLICATIONS + ends.len() + reports.len()) as u64;

    let engine = gw.engine().clone();
    let applied = Arc::new(AtomicUsize::new(0));
    let writer = {
        let applied = applied.clone();
        tokio::spawn(async move {
            for report in reports {
                shep_gateway::pipeline::report(&engine, report, &Default::default())
                    .await
                    .expect("the report applies");
                applied.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    eventually(PATIENCE, async || match applied.load(Ordering::Relaxed) {
        0 => Err("the writer has not started"),
        _ => Ok(()),
    })
    .await;
    // Watchers open one after another for as long as the statuses change.
    let mut watchers = Vec::new();
    while !writer.is_finished() && watchers.len() < MAX_WATCHERS {
        watchers.push(gw.watch_subject(iin(APPLICANT_IIN), 0).await);
    }
    writer.await.unwrap();
    assert!(
        !watchers.is_empty(),
        "no watcher opened while statuses changed"
    );

    // Read concurrently: the watchers share one HTTP/2 connection, whose
    // flow-control window the unread ones would otherwise fill, stalling
    // the one being read.
    let readers: Vec<_> = watchers
        .into_iter()
        .enumerate()
        .map(|(number, mut watch)| {
            tokio::spawn(async move {
                for expected in 1..=total {
                    let event = next_item(&mut watch).await;
                    if event.sequence != expected {
                        return Some(format!(
                            "watcher {number}: expected sequence {expected}, got {}",
                            event.sequence
                        ));
                    }
                }
                None
            })
        })
        .collect();
    let mut gaps = Vec::new();
    for reader in readers {
        gaps.extend(reader.await.unwrap());
    }
    assert!(gaps.is_empty(), "events were lost:\n{}", gaps.join("\n"));
}

#[tokio::test]
async fn a_report_must_be_about_the_application_and_come_from_the_provider_desk() {
    let gw = TestGateway::start().await;
    let submitted = gw.submit_application().await;
    let employee = gw.provider(ESIL_PROVIDER);
    let good = employee
        .report(
            &submitted.body,
            StatusReport {
                registration_number: "ESIL-5".to_owned(),
                ..status_report(ApplicationStatus::Registered)
            },
        )
        .unwrap();
    let good_body = Body::decode(good.body.as_slice()).unwrap();
    type Change = fn(&mut Body);
    let cases: [(&str, Change, Code, &str, &str); 5] = [
        (
            "on the portal channel",
            |body| body.channel = Channel::Portal as i32,
            Code::InvalidArgument,
            "INVALID_FIELD",
            "channel",
        ),
        (
            "about another service",
            |body| body.service_id = "guardianship-certificate-karaganda".to_owned(),
            Code::InvalidArgument,
            "INVALID_FIELD",
            "service_id",
        ),
        (
            "about another applicant",
            |body| body.subject = Some(iin("920704404563")),
            Code::InvalidArgument,
            "INVALID_FIELD",
            "subject",
        ),
        (
            "as a REQUEST",
            |body| body.message_type = shep_proto::envelope::v1::MessageType::Request as i32,
            Code::InvalidArgument,
            "INVALID_FIELD",
            "message_type",
        ),
        (
            "with a correlation id that is not a UUID",
            |body| body.correlation_id = "application-1".to_owned(),
            Code::InvalidArgument,
            "INVALID_MESSAGE_ID",
            "correlation_id",
        ),
    ];
    let mut client = gw.provider_client();
    for (what, change, code, reason_name, field) in cases {
        let mut body = good_body.clone();
        body.message_id = new_message_id();
        change(&mut body);
        let status = match client.report(employee.seal(&body).unwrap()).await {
            Ok(receipt) => panic!("{what}: applied as {:?}", receipt.into_inner()),
            Err(status) => status,
        };
        assert_eq!(
            (
                status.code(),
                reason(&status).as_str(),
                error_metadata(&status, "field")
            ),
            (code, reason_name, Some(field.to_owned())),
            "{what}: {}",
            describe(&status)
        );
    }
    let receipt = client
        .report(good)
        .await
        .expect("the good report applies")
        .into_inner();
    assert_eq!(receipt.status(), ApplicationStatus::Registered);
    let application = gw.status(&submitted.receipt.message_id).await;
    assert_eq!(
        statuses(&application.events),
        [
            ApplicationStatus::Accepted,
            ApplicationStatus::Delivered,
            ApplicationStatus::Registered
        ]
    );
}

#[tokio::test]
async fn a_provider_desk_employee_applies_for_a_visitor_and_the_desk_system_receives_it() {
    // BRIEF §2.C: the МИО employee signs the visitor's application in ИС МИО,
    // which sends it through the gateway as itself, on the provider desk. The
    // visitor lives in Тайынша: the department serves its own district.
    const DESK: &str = "is-mio-sko-tayynsha-social";
    const SERVICE: &str = "targeted-social-assistance-tayynsha";
    let gw = TestGateway::start().await;
    let mut desk = gw.subscribe(DESK, 0).await;
    let url = gw.url();
    let data = gw.data_dir().0.to_str().unwrap().to_owned();
    let desk_args = [
        "send",
        "--service",
        SERVICE,
        "--subject",
        TAYYNSHA_APPLICANT_IIN,
        "--channel",
        "provider-desk",
        "--gateway",
        &url,
        "--data-dir",
        &data,
    ];

    // Without the desk's system the CLI says what to name, before sending.
    let unnamed = run_shep(&desk_args).await;
    assert!(!unnamed.status.success());
    assert!(unnamed.stderr.contains("--sender"), "{}", unnamed.stderr);

    let sent = run_shep(&[&desk_args[..], &["--sender", DESK]].concat()).await;
    assert!(
        sent.ok().contains(&format!("routed to `{DESK}`")),
        "{}",
        sent.stdout
    );
    let delivery = desk.next_delivery().await;
    let envelope = delivery.envelope.expect("the envelope");
    let body = Body::decode(envelope.body.as_slice()).unwrap();
    assert_eq!(body.channel(), Channel::ProviderDesk);
    assert_eq!(body.sender.as_ref().unwrap().sender_id, DESK);
    assert_eq!(
        body.subject,
        Some(iin(TAYYNSHA_APPLICANT_IIN)),
        "the visitor"
    );
    desk.accept(&delivery.message_id).await;

    // The same desk applying through the API, and the employee completing it.
    let employee = gw.provider(DESK);
    let request = employee.request(SERVICE, iin(TAYYNSHA_APPLICANT_IIN));
    let receipt = gw
        .gateway()
        .submit(employee.seal(&request).unwrap())
        .await
        .expect("the desk's application is accepted")
        .into_inner();
    assert_eq!(receipt.provider_id, DESK);
    let mut registered = status_report(ApplicationStatus::Registered);
    registered.registration_number = "TAY-1".to_owned();
    gw.report(DESK, &request, registered)
        .await
        .expect("registered");
    let application = gw.status(&receipt.message_id).await;
    assert_eq!(application.channel(), Channel::ProviderDesk);
    assert_eq!(application.status(), ApplicationStatus::Registered);

    // A ЦОН operator's signature is not the desk's.
    let operator = gw.signer_of("operator");
    let foreign = shep::client::Participant::new(DESK, Channel::ProviderDesk, operator);
    let refused = gw
        .gateway()
        .submit(
            foreign
                .seal(&foreign.request(SERVICE, iin(TAYYNSHA_APPLICANT_IIN)))
                .unwrap(),
        )
        .await
        .unwrap_err();
    assert_eq!(reason(&refused), "IDENTITY_MISMATCH");
}
