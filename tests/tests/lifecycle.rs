//! The regulations' branches on the simulated clock: an application that
//! goes overdue before anyone registers it, a term extended then completed,
//! a return to the service centre and the centre's working day to inform
//! the applicant, the paper result issued at the centre, and the order the
//! lifecycle enforces (BRIEF §5).

use shep_proto::admin::v1::set_clock_request::Change;
use shep_proto::admin::v1::{ClockReading, GetClockRequest, SetClockRequest};
use shep_proto::envelope::v1::{ApplicationStatus, Body, StatusReport};
use shep_proto::gateway::v1::StatusEvent;
use shep_tests::*;
use time::OffsetDateTime;
use tonic::Code;

/// `request` with the test session header (none for "").
fn in_session<T>(mut request: tonic::Request<T>, session: &str) -> tonic::Request<T> {
    if !session.is_empty() {
        request
            .metadata_mut()
            .insert("x-shep-session", session.parse().unwrap());
    }
    request
}

async fn set_clock(gw: &TestGateway, session: &str, change: Change) -> ClockReading {
    gw.admin()
        .set_clock(in_session(
            gw.authorized(SetClockRequest {
                change: Some(change),
            }),
            session,
        ))
        .await
        .unwrap_or_else(|status| panic!("SetClock refused: {}", describe(&status)))
        .into_inner()
}

/// The applicant submits an ESIL_SERVICE application in `session`.
async fn submit_in(gw: &TestGateway, session: &str) -> Body {
    let applicant = gw.applicant();
    let body = applicant.application(
        ESIL_SERVICE,
        iin(APPLICANT_IIN),
        r#"{"child_iin":"061211600012","kind":"опека"}"#,
        Vec::new(),
    );
    gw.gateway()
        .submit(in_session(
            tonic::Request::new(applicant.seal(&body).unwrap()),
            session,
        ))
        .await
        .unwrap_or_else(|status| panic!("submit refused: {}", describe(&status)));
    body
}

/// The ЦОН operator submits an ESIL_SERVICE application for the applicant in `session`.
async fn submit_at_centre(gw: &TestGateway, session: &str) -> Body {
    let operator = gw.operator();
    let body = operator.request(ESIL_SERVICE, iin(APPLICANT_IIN));
    gw.gateway()
        .submit(in_session(
            tonic::Request::new(operator.seal(&body).unwrap()),
            session,
        ))
        .await
        .unwrap_or_else(|status| panic!("the centre's submit refused: {}", describe(&status)));
    body
}

fn time_of(stamp: &prost_types::Timestamp) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(stamp.seconds).unwrap()
}

/// The next event on `watch` that is an overdue mark.
async fn next_overdue(watch: &mut tonic::Streaming<StatusEvent>) -> StatusEvent {
    loop {
        let event = next_item(watch).await;
        if event.overdue {
            return event;
        }
    }
}

#[tokio::test]
async fn an_application_nobody_registered_goes_overdue_when_its_session_clock_passes_the_deadline()
{
    let gw = TestGateway::start().await;
    let session = "clock-overdue";
    let body = submit_in(&gw, session).await;
    let id = body.message_id.clone();
    let elsewhere = gw.submit_application().await.receipt.message_id;
    let mut watch = gw.watch_message(&id, 0).await;

    // 5 working days from acceptance, though nobody registered it.
    let before = gw.status(&id).await;
    assert!(!before.overdue);
    assert_eq!(before.test_session, session);
    let due = time_of(before.due_at.as_ref().expect("due from acceptance"));
    let accepted = time_of(before.accepted_at.as_ref().unwrap());
    assert!(
        due - accepted >= time::Duration::days(5),
        "5 working days: {accepted} -> {due}"
    );

    let moved = set_clock(&gw, session, Change::AdvanceWorkingDays(6)).await;
    assert!(moved.own && moved.simulated, "{moved:?}");
    assert!(
        moved.offset_seconds >= 6.0 * 86_400.0,
        "6 working days are at least 6 days: {moved:?}"
    );

    let overdue = next_overdue(&mut watch).await;
    assert_eq!(
        overdue.status(),
        ApplicationStatus::Accepted,
        "still unregistered"
    );
    assert_eq!(overdue.reported_by, "gateway");
    assert_eq!(overdue.expected_at.as_ref().map(time_of), Some(due));
    assert!(
        overdue.notification.contains("не зарегистрирована"),
        "{}",
        overdue.notification
    );
    assert!(time_of(overdue.occurred_at.as_ref().unwrap()) > due);
    assert!(gw.status(&id).await.overdue);

    // Other sessions and the global clock did not move.
    assert!(!gw.status(&elsewhere).await.overdue);
    let global = gw
        .admin()
        .get_clock(gw.authorized(GetClockRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert!(
        !global.simulated && global.offset_seconds.abs() < 5.0,
        "{global:?}"
    );

    // Once answered, it is no longer overdue.
    gw.report(
        ESIL_PROVIDER,
        &body,
        StatusReport {
            registration_number: "ESIL-1".to_owned(),
            ..status_report(ApplicationStatus::Registered)
        },
    )
    .await
    .unwrap();
    let refused = gw
        .report(
            ESIL_PROVIDER,
            &body,
            StatusReport {
                reason: "не подтвержден статус опекуна".to_owned(),
                ..status_report(ApplicationStatus::Refused)
            },
        )
        .await;
    refused.expect("a late refusal is still a refusal");
    assert!(!gw.status(&id).await.overdue);
}

#[tokio::test]
async fn a_term_extended_then_completed_walks_the_lifecycle_and_completion_needs_registration() {
    let gw = TestGateway::start().await;
    let submitted = gw.submit_application().await;
    let body = &submitted.body;

    // COMPLETED before REGISTERED: the service has no immediate result.
    let premature = refusal(
        gw.report(
            ESIL_PROVIDER,
            body,
            StatusReport {
                result: Some(
                    gw.provider(ESIL_PROVIDER)
                        .document("spravka.txt", "text/plain", b"early")
                        .unwrap(),
                ),
                ..status_report(ApplicationStatus::Completed)
            },
        )
        .await,
        Code::FailedPrecondition,
        "INVALID_STATUS_TRANSITION",
    );
    assert!(
        premature.message().contains("registers"),
        "{}",
        premature.message()
    );

    let extended_to = OffsetDateTime::now_utc() + time::Duration::days(20);
    let steps = [
        StatusReport {
            registration_number: "ESIL-2026-7".to_owned(),
            ..status_report(ApplicationStatus::Registered)
        },
        status_report(ApplicationStatus::InWork),
        StatusReport {
            expected_at: Some(prost_types::Timestamp {
                seconds: extended_to.unix_timestamp(),
                nanos: 0,
            }),
            ..status_report(ApplicationStatus::TermExtended)
        },
        status_report(ApplicationStatus::InWork),
        StatusReport {
            result: Some(
                gw.provider(ESIL_PROVIDER)
                    .document("spravka.txt", "text/plain", b"done")
                    .unwrap(),
            ),
            ..status_report(ApplicationStatus::Completed)
        },
    ];
    for step in steps {
        let status = step.status();
        gw.report(ESIL_PROVIDER, body, step)
            .await
            .unwrap_or_else(|refused| panic!("{status:?} refused: {}", describe(&refused)));
    }
    let application = gw.status(&submitted.receipt.message_id).await;
    let statuses: Vec<_> = application.events.iter().map(StatusEvent::status).collect();
    assert_eq!(
        statuses,
        [
            ApplicationStatus::Accepted,
            ApplicationStatus::Delivered,
            ApplicationStatus::Registered,
            ApplicationStatus::InWork,
            ApplicationStatus::TermExtended,
            ApplicationStatus::InWork,
            ApplicationStatus::Completed,
        ]
    );
    let extension = &application.events[4];
    assert_eq!(
        extension.expected_at.as_ref().map(|at| at.seconds),
        Some(extended_to.unix_timestamp())
    );
    assert!(
        extension.notification.contains("продлен"),
        "{}",
        extension.notification
    );
    assert_eq!(application.status(), ApplicationStatus::Completed);
    assert!(!application.overdue && application.due_at.is_none());

    // On the portal the result is in the cabinet: nothing is issued on paper.
    refusal(
        gw.report(
            ESIL_PROVIDER,
            body,
            status_report(ApplicationStatus::Issued),
        )
        .await,
        Code::FailedPrecondition,
        "INVALID_STATUS_TRANSITION",
    );
}

#[tokio::test]
async fn a_return_to_the_centre_gives_the_centre_a_working_day_to_inform_the_applicant() {
    let gw = TestGateway::start().await;
    let session = "clock-return";
    let body = submit_at_centre(&gw, session).await;
    let id = body.message_id.clone();
    let mut watch = gw.watch_message(&id, 0).await;

    gw.report(
        ESIL_PROVIDER,
        &body,
        StatusReport {
            reason: "нет копии свидетельства о рождении".to_owned(),
            ..status_report(ApplicationStatus::ReturnedToCentre)
        },
    )
    .await
    .expect("returned within 3 working days");
    let returned = gw.status(&id).await;
    assert_eq!(returned.status(), ApplicationStatus::ReturnedToCentre);
    let inform_by = time_of(returned.due_at.as_ref().expect("the centre's day"));
    let event = returned.events.last().unwrap();
    assert!(
        event.notification.contains("ЦОН проинформирует"),
        "{}",
        event.notification
    );

    // The centre lets the day pass: an overdue mark on the return.
    set_clock(&gw, session, Change::AdvanceWorkingDays(2)).await;
    let overdue = next_overdue(&mut watch).await;
    assert_eq!(overdue.status(), ApplicationStatus::ReturnedToCentre);
    assert_eq!(overdue.expected_at.as_ref().map(time_of), Some(inform_by));
    assert!(
        overdue.notification.contains("ЦОН"),
        "{}",
        overdue.notification
    );

    // The provider has nothing more to say; the centre hands over the
    // written justification and says so.
    refusal(
        gw.report(
            ESIL_PROVIDER,
            &body,
            status_report(ApplicationStatus::Issued),
        )
        .await,
        Code::PermissionDenied,
        "PROVIDER_NOT_ALLOWED",
    );
    let issued = gw
        .provider_client()
        .report(
            gw.operator()
                .report(
                    &body,
                    StatusReport {
                        notification:
                            "Услугополучатель проинформирован, обоснование возврата выдано"
                                .to_owned(),
                        ..status_report(ApplicationStatus::Issued)
                    },
                )
                .unwrap(),
        )
        .await
        .unwrap_or_else(|status| panic!("ISSUED refused: {}", describe(&status)))
        .into_inner();
    assert_eq!(issued.status(), ApplicationStatus::Issued);
    let done = gw.status(&id).await;
    assert_eq!(done.status(), ApplicationStatus::Issued);
    assert!(!done.overdue && done.due_at.is_none());
    refusal(
        gw.report(
            ESIL_PROVIDER,
            &body,
            status_report(ApplicationStatus::InWork),
        )
        .await,
        Code::FailedPrecondition,
        "INVALID_STATUS_TRANSITION",
    );
}

#[tokio::test]
async fn documents_go_back_to_the_centre_within_three_working_days_only() {
    let gw = TestGateway::start().await;
    let session = "clock-late-return";
    let body = submit_at_centre(&gw, session).await;
    set_clock(&gw, session, Change::AdvanceWorkingDays(4)).await;
    let late = refusal(
        gw.report(
            ESIL_PROVIDER,
            &body,
            StatusReport {
                reason: "нет копии".to_owned(),
                ..status_report(ApplicationStatus::ReturnedToCentre)
            },
        )
        .await,
        Code::FailedPrecondition,
        "INVALID_STATUS_TRANSITION",
    );
    assert!(
        late.message().contains("3 working days"),
        "{}",
        late.message()
    );
}

#[tokio::test]
async fn a_paper_result_at_the_centre_is_issued_or_kept_uncollected() {
    let gw = TestGateway::start().await;
    let body = submit_at_centre(&gw, "paper").await;
    let id = body.message_id.clone();
    for report in [
        StatusReport {
            registration_number: "ESIL-9".to_owned(),
            ..status_report(ApplicationStatus::Registered)
        },
        StatusReport {
            result: Some(
                gw.provider(ESIL_PROVIDER)
                    .document("spravka.txt", "text/plain", b"done")
                    .unwrap(),
            ),
            ..status_report(ApplicationStatus::Completed)
        },
    ] {
        gw.report(ESIL_PROVIDER, &body, report).await.unwrap();
    }
    let centre = gw.operator();
    let mut provider_client = gw.provider_client();
    for status in [ApplicationStatus::Uncollected, ApplicationStatus::Issued] {
        provider_client
            .report(centre.report(&body, status_report(status)).unwrap())
            .await
            .unwrap_or_else(|refused| panic!("{status:?} refused: {}", describe(&refused)));
    }
    let application = gw.status(&id).await;
    let statuses: Vec<_> = application.events.iter().map(StatusEvent::status).collect();
    assert_eq!(
        statuses[statuses.len() - 3..],
        [
            ApplicationStatus::Completed,
            ApplicationStatus::Uncollected,
            ApplicationStatus::Issued,
        ]
    );
    assert_eq!(application.events.last().unwrap().reported_by, "is-con");
}

#[tokio::test]
async fn a_clock_running_at_a_factor_is_refused_out_of_range_and_resets() {
    let gw = TestGateway::start().await;
    let refused = gw
        .admin()
        .set_clock(gw.authorized(SetClockRequest {
            change: Some(Change::Factor(0.0)),
        }))
        .await;
    refusal(refused, Code::InvalidArgument, "INVALID_FIELD");
    let fast = set_clock(&gw, "", Change::Factor(3_600.0)).await;
    assert_eq!(fast.factor, 3_600.0);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let later = gw
        .admin()
        .get_clock(gw.authorized(GetClockRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert!(
        later.offset_seconds >= 600.0,
        "an hour a second: 0.2 s makes 12 minutes, got {later:?}"
    );
    let reset = set_clock(&gw, "", Change::Reset(true)).await;
    assert!(!reset.simulated && reset.factor == 1.0);
}
