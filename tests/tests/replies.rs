//! The reply path: a consumer system that receives responses (`responses =
//! true`: ИС ЦОН and the portal in the default table) gets its providers'
//! reports as messages on its own queue, pulled with GetMessages or
//! streamed with Subscribe, and acknowledged like any delivery.

use prost::Message;
use shep_proto::envelope::v1::{ApplicationStatus, Body, StatusReport};
use shep_proto::provider::v1::{GetMessagesRequest, ReceiveStatus, ResendMessage};
use shep_tests::*;
use tonic::Code;

async fn pull(gw: &TestGateway, consumer: &str) -> Vec<shep_proto::provider::v1::Delivery> {
    gw.provider_client()
        .get_messages(GetMessagesRequest {
            provider_id: consumer.to_owned(),
            amount: 100,
            ..GetMessagesRequest::default()
        })
        .await
        .unwrap_or_else(|status| panic!("GetMessages refused: {}", describe(&status)))
        .into_inner()
        .messages
}

/// The report a response carries, as the provider signed it.
fn report_of(delivery: &shep_proto::provider::v1::Delivery) -> Body {
    Body::decode(delivery.envelope.as_ref().unwrap().body.as_slice()).unwrap()
}

#[tokio::test]
async fn the_centre_pulls_its_providers_reports_as_signed_messages_and_acknowledges_them() {
    let gw = TestGateway::builder().lease_ms(400).start().await;
    let operator = gw.operator();
    let body = operator.request(ESIL_SERVICE, iin(APPLICANT_IIN));
    gw.gateway()
        .submit(operator.seal(&body).unwrap())
        .await
        .unwrap();

    let registered = StatusReport {
        registration_number: "ESIL-C-1".to_owned(),
        ..status_report(ApplicationStatus::Registered)
    };
    let completed = StatusReport {
        result: Some(
            gw.provider(ESIL_PROVIDER)
                .document("spravka.txt", "text/plain", b"done")
                .unwrap(),
        ),
        ..status_report(ApplicationStatus::Completed)
    };
    let mut sent = Vec::new();
    for report in [registered, completed] {
        let envelope = gw.provider(ESIL_PROVIDER).report(&body, report).unwrap();
        gw.provider_client().report(envelope.clone()).await.unwrap();
        sent.push(envelope);
    }

    let responses = pull(&gw, "is-con").await;
    assert_eq!(responses.len(), 2, "{responses:?}");
    for (response, envelope) in responses.iter().zip(&sent) {
        assert_eq!(
            response.envelope.as_ref(),
            Some(envelope),
            "the report exactly as the provider signed it"
        );
        let report = report_of(response);
        assert_eq!(report.correlation_id, body.message_id);
        assert_eq!(response.message_id, report.message_id);
        assert_eq!(response.service_id, ESIL_SERVICE);
    }
    assert_eq!(
        report_of(&responses[1]).report.unwrap().status(),
        ApplicationStatus::Completed
    );

    // Unacknowledged, the first comes back after its lease; acknowledged, never.
    gw.provider_client()
        .acknowledge(ack(
            "is-con",
            &responses[1].message_id,
            ReceiveStatus::MessageAccepted,
            ResendMessage::Unspecified,
            "",
        ))
        .await
        .expect("the centre acknowledges a response");
    let again = loop {
        let again = pull(&gw, "is-con").await;
        if !again.is_empty() {
            break again;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].message_id, responses[0].message_id);
    assert_eq!(again[0].attempt, 2);

    // The portal sent nothing here, so its queue is empty; a provider's
    // reports never reach a system that did not send the application.
    assert!(pull(&gw, "pep").await.is_empty());
    // The application itself is untouched by the responses' acks.
    let application = gw.status(&body.message_id).await;
    assert_eq!(application.status(), ApplicationStatus::Completed);
}

#[tokio::test]
async fn the_portal_streams_responses_on_subscribe() {
    let gw = TestGateway::start().await;
    let mut portal = gw.subscribe("pep", 0).await;
    let submitted = gw.submit_application().await;
    gw.report(
        ESIL_PROVIDER,
        &submitted.body,
        StatusReport {
            registration_number: "ESIL-P-1".to_owned(),
            ..status_report(ApplicationStatus::Registered)
        },
    )
    .await
    .unwrap();
    let delivery = portal.next_delivery().await;
    let report = report_of(&delivery);
    assert_eq!(report.correlation_id, submitted.receipt.message_id);
    assert_eq!(
        report.report.unwrap().status(),
        ApplicationStatus::Registered
    );
    portal.accept(&delivery.message_id).await;
}

#[tokio::test]
async fn only_providers_and_consumers_with_responses_have_a_queue() {
    let gw = TestGateway::start().await;
    refusal(
        gw.provider_client()
            .get_messages(GetMessagesRequest {
                provider_id: "no-such-system".to_owned(),
                ..GetMessagesRequest::default()
            })
            .await,
        Code::PermissionDenied,
        "PROVIDER_NOT_ALLOWED",
    );
    // The routing table refuses `responses` on a provider, and a consumer
    // without it has no queue.
    let table = |responses: &str| {
        shep_gateway::routes::RoutingTable::from_toml(
            &format!(
                r#"
                [[system]]
                id = "arm-a"
                name_ru = "АРМ A"
                role = "{responses}"
                operators = ["731203356787"]
                responses = true
                "#
            ),
            "test.toml",
            &["gbdfl", "gbdul", "enis"],
        )
    };
    let error = table("provider").unwrap_err();
    assert!(error.to_string().contains("responses"), "{error}");
    assert!(table("system").is_ok());
}

#[tokio::test]
async fn the_centre_watches_every_application_it_sent_and_no_one_else_does() {
    let gw = TestGateway::builder().authenticated().start().await;
    let as_centre = gw.channel_as("is-con").await;
    let mut watch = shep_proto::gateway::v1::gateway_client::GatewayClient::new(as_centre.clone())
        .watch(shep_proto::gateway::v1::WatchRequest {
            target: Some(shep_proto::gateway::v1::watch_request::Target::SenderId(
                "is-con".to_owned(),
            )),
            after_sequence: 0,
        })
        .await
        .expect("the centre watches its own applications")
        .into_inner();

    // One from the portal, then one from the centre: the watch sees the centre's only.
    let applicant = gw.applicant();
    let portal_body = applicant.application(ESIL_SERVICE, iin(APPLICANT_IIN), "{}", Vec::new());
    shep_proto::gateway::v1::gateway_client::GatewayClient::new(gw.channel_as("pep").await)
        .submit(applicant.seal(&portal_body).unwrap())
        .await
        .unwrap();
    let operator = gw.operator();
    let body = operator.request(ESIL_SERVICE, iin(APPLICANT_IIN));
    shep_proto::gateway::v1::gateway_client::GatewayClient::new(as_centre)
        .submit(operator.seal(&body).unwrap())
        .await
        .unwrap();
    let event = next_item(&mut watch).await;
    assert_eq!(event.message_id, body.message_id);
    assert_eq!(event.sender_id, "is-con");
    assert_eq!(event.status(), ApplicationStatus::Accepted);

    // The portal may not follow the centre's applications.
    let refused =
        shep_proto::gateway::v1::gateway_client::GatewayClient::new(gw.channel_as("pep").await)
            .watch(shep_proto::gateway::v1::WatchRequest {
                target: Some(shep_proto::gateway::v1::watch_request::Target::SenderId(
                    "is-con".to_owned(),
                )),
                after_sequence: 0,
            })
            .await;
    refusal(refused, Code::PermissionDenied, "ACCESS_DENIED");
}
