//! Every refusal path of Call and Submit: its gRPC code and its stable reason,
//! and the gateway keeps serving afterwards. Also the ГБД ФЛ lookup itself.

use prost::Message;
use shep_nuc::ca::{CertificateAuthority, IdentitySpec, KeyAlgorithm};
use shep_proto::envelope::v1::{
    ApplicationStatus, Body, Channel, MessageType, SignatureAlgorithm, SignedEnvelope,
};
use shep_proto::gateway::v1::MessageState;
use shep_proto::registry::v1::lookup_response::Record;
use shep_tests::*;
use time::{Duration, OffsetDateTime};
use tonic::Code;

/// An IIN ГБД ФЛ does not know, with a valid check digit.
const UNKNOWN_IIN: &str = "791028302728";
/// Тулегенова Динара, registered in Almaty (КАТО 75…).
const ALMATY_IIN: &str = "950606445672";

/// The gateway still accepts a good application.
async fn assert_still_serving(gw: &TestGateway) {
    let submitted = gw.submit_application().await;
    assert_eq!(submitted.receipt.status(), ApplicationStatus::Accepted);
    assert_eq!(submitted.receipt.provider_id, ESIL_PROVIDER);
    let application = gw.status(&submitted.receipt.message_id).await;
    assert_eq!(application.status(), ApplicationStatus::Accepted);
    assert_eq!(application.delivery_state(), MessageState::OnDelivery);
}

/// The demo applicant's application body for the Esil service.
fn application(applicant: &Participant) -> Body {
    applicant.request(ESIL_SERVICE, iin(APPLICANT_IIN))
}

/// A certificate spec for the demo applicant.
fn applicant_spec() -> IdentitySpec {
    IdentitySpec::individual(APPLICANT_IIN, "СЕРИКБАЕВ НУРЛАН")
}

async fn submit(gw: &TestGateway, envelope: SignedEnvelope) -> Result<String, tonic::Status> {
    gw.gateway()
        .submit(envelope)
        .await
        .map(|receipt| receipt.into_inner().message_id)
}

#[tokio::test]
async fn a_body_that_is_not_a_protobuf_body_is_malformed() {
    let gw = TestGateway::start().await;
    let applicant = gw.applicant();
    // Field 1 with wire type 7 does not exist in protobuf.
    let garbage = b"\x0f\xff\xfe this is not a shep Body".to_vec();
    let envelope = SignedEnvelope {
        xml_data: Vec::new(),
        signature: Some(applicant.signer.sign(&garbage).unwrap()),
        body: garbage,
    };
    let status = refusal(
        submit(&gw, envelope.clone()).await,
        Code::InvalidArgument,
        "MALFORMED_BODY",
    );
    assert_eq!(
        error_metadata(&status, "shep_code").as_deref(),
        Some("SCE001")
    );
    refusal(
        gw.gateway().call(envelope).await,
        Code::InvalidArgument,
        "MALFORMED_BODY",
    );
    refusal(
        submit(&gw, SignedEnvelope::default()).await,
        Code::InvalidArgument,
        "MALFORMED_BODY",
    );
    assert_still_serving(&gw).await;
}

#[tokio::test]
async fn a_message_id_that_is_not_a_uuid_is_refused() {
    let gw = TestGateway::start().await;
    let applicant = gw.applicant();
    let mut body = application(&applicant);
    body.message_id = "MSG-2026-0001".to_owned();
    let status = refusal(
        submit(&gw, applicant.seal(&body).unwrap()).await,
        Code::InvalidArgument,
        "INVALID_MESSAGE_ID",
    );
    assert_eq!(
        error_metadata(&status, "field").as_deref(),
        Some("message_id")
    );
    assert_still_serving(&gw).await;
}

#[tokio::test]
async fn an_iin_with_a_wrong_check_digit_is_an_invalid_subject() {
    let gw = TestGateway::start().await;
    let applicant = gw.applicant();
    let body = applicant.request(ESIL_SERVICE, iin("911212333888"));
    let status = refusal(
        submit(&gw, applicant.seal(&body).unwrap()).await,
        Code::InvalidArgument,
        "INVALID_SUBJECT",
    );
    assert!(
        status.message().contains("911212333888"),
        "{}",
        status.message()
    );
    assert_still_serving(&gw).await;
}

#[tokio::test]
async fn a_message_date_too_far_from_the_gateway_clock_is_refused() {
    let gw = TestGateway::start().await;
    let applicant = gw.applicant();
    for offset in [Duration::hours(-1), Duration::hours(1)] {
        let mut body = application(&applicant);
        body.message_date = Some(to_timestamp(OffsetDateTime::now_utc() + offset));
        refusal(
            submit(&gw, applicant.seal(&body).unwrap()).await,
            Code::InvalidArgument,
            "MESSAGE_DATE_SKEW",
        );
    }
    // A minute off is within the default 300 s.
    let mut body = application(&applicant);
    body.message_date = Some(to_timestamp(
        OffsetDateTime::now_utc() - Duration::minutes(1),
    ));
    submit(&gw, applicant.seal(&body).unwrap())
        .await
        .expect("a minute of skew is allowed");
    assert_still_serving(&gw).await;
}

#[tokio::test]
async fn a_submit_whose_message_type_is_not_request_is_refused() {
    let gw = TestGateway::start().await;
    let applicant = gw.applicant();
    let mut body = application(&applicant);
    body.message_type = MessageType::Update as i32;
    let status = refusal(
        submit(&gw, applicant.seal(&body).unwrap()).await,
        Code::InvalidArgument,
        "INVALID_FIELD",
    );
    assert_eq!(
        error_metadata(&status, "field").as_deref(),
        Some("message_type")
    );
    assert_still_serving(&gw).await;
}

#[tokio::test]
async fn an_unsigned_envelope_is_refused() {
    let gw = TestGateway::start().await;
    let applicant = gw.applicant();
    let envelope = SignedEnvelope {
        xml_data: Vec::new(),
        body: application(&applicant).encode_to_vec(),
        signature: None,
    };
    let status = refusal(
        submit(&gw, envelope).await,
        Code::Unauthenticated,
        "NOT_SIGNED",
    );
    assert_eq!(
        error_metadata(&status, "shep_code").as_deref(),
        Some("SCE017")
    );
    assert_still_serving(&gw).await;
}

#[tokio::test]
async fn a_tampered_body_or_a_wrong_signature_value_does_not_verify() {
    let gw = TestGateway::start().await;
    let applicant = gw.applicant();

    // Signed one form, then another form swapped in under the same signature.
    let signed = application(&applicant);
    let mut tampered = applicant.seal(&signed).unwrap();
    let mut changed = signed.clone();
    changed.payload = Some(shep_proto::envelope::v1::Payload {
        content_type: "application/json".to_owned(),
        data: br#"{"forged":true}"#.to_vec(),
    });
    tampered.body = changed.encode_to_vec();
    let status = refusal(
        submit(&gw, tampered).await,
        Code::Unauthenticated,
        "SIGNATURE_INVALID",
    );
    assert_eq!(
        error_metadata(&status, "shep_code").as_deref(),
        Some("SCE016")
    );

    // The right body, a corrupted signature value.
    let mut corrupted = applicant.seal(&application(&applicant)).unwrap();
    corrupted.signature.as_mut().unwrap().value[10] ^= 0x55;
    refusal(
        submit(&gw, corrupted).await,
        Code::Unauthenticated,
        "SIGNATURE_INVALID",
    );

    // A valid signature by someone else's key under the applicant's certificate.
    let other = gw.issue(&applicant_spec());
    let mut swapped = applicant.seal(&application(&applicant)).unwrap();
    let body = swapped.body.clone();
    swapped.signature.as_mut().unwrap().value = other.sign(&body).unwrap().value;
    refusal(
        submit(&gw, swapped).await,
        Code::Unauthenticated,
        "SIGNATURE_INVALID",
    );
    assert_still_serving(&gw).await;
}

#[tokio::test]
async fn a_certificate_from_another_ca_has_an_unknown_issuer() {
    let gw = TestGateway::start().await;
    let stranger_ca = CertificateAuthority::generate().unwrap();
    let signer = stranger_ca
        .issue(&applicant_spec())
        .unwrap()
        .signer()
        .unwrap();
    let impostor = Participant::new("pep", Channel::Portal, signer);
    let status = refusal(
        submit(&gw, impostor.seal(&application(&impostor)).unwrap()).await,
        Code::Unauthenticated,
        "UNKNOWN_ISSUER",
    );
    assert_eq!(
        error_metadata(&status, "shep_code").as_deref(),
        Some("SCE016")
    );
    assert_still_serving(&gw).await;
}

#[tokio::test]
async fn an_expired_certificate_is_refused() {
    let gw = TestGateway::start().await;
    let now = OffsetDateTime::now_utc();
    let spec = IdentitySpec {
        not_before: now - Duration::days(30),
        not_after: now - Duration::days(1),
        ..applicant_spec()
    };
    let expired = gw.participant("pep", Channel::Portal, &spec);
    let status = refusal(
        submit(&gw, expired.seal(&application(&expired)).unwrap()).await,
        Code::Unauthenticated,
        "CERTIFICATE_EXPIRED",
    );
    assert_eq!(
        error_metadata(&status, "shep_code").as_deref(),
        Some("SCE015")
    );
    assert_still_serving(&gw).await;
}

#[tokio::test]
async fn a_certificate_not_yet_valid_is_refused() {
    let gw = TestGateway::start().await;
    let now = OffsetDateTime::now_utc();
    let spec = IdentitySpec {
        not_before: now + Duration::days(1),
        not_after: now + Duration::days(30),
        ..applicant_spec()
    };
    let early = gw.participant("pep", Channel::Portal, &spec);
    refusal(
        submit(&gw, early.seal(&application(&early)).unwrap()).await,
        Code::Unauthenticated,
        "CERTIFICATE_NOT_YET_VALID",
    );
    assert_still_serving(&gw).await;
}

#[tokio::test]
async fn on_the_portal_the_signer_must_be_the_applicant() {
    let gw = TestGateway::start().await;
    let stranger = gw.participant(
        "pep",
        Channel::Portal,
        &IdentitySpec::individual("920704404563", "АХМЕТОВА АЙГЕРИМ"),
    );
    let status = refusal(
        submit(&gw, stranger.seal(&application(&stranger)).unwrap()).await,
        Code::PermissionDenied,
        "IDENTITY_MISMATCH",
    );
    assert!(
        status.message().contains("920704404563"),
        "{}",
        status.message()
    );
    // A portal user looks up only themselves, too.
    refusal(
        gw.gateway()
            .call(
                stranger
                    .seal(&stranger.request(LOOKUP_SERVICE, iin(APPLICANT_IIN)))
                    .unwrap(),
            )
            .await,
        Code::PermissionDenied,
        "IDENTITY_MISMATCH",
    );
    assert_still_serving(&gw).await;
}

#[tokio::test]
async fn an_unknown_service_is_refused_before_the_signature_is_checked() {
    let gw = TestGateway::start().await;
    let applicant = gw.applicant();
    let body = applicant.request("no-such-service", iin(APPLICANT_IIN));
    let status = refusal(
        submit(&gw, applicant.seal(&body).unwrap()).await,
        Code::NotFound,
        "UNKNOWN_SERVICE",
    );
    assert_eq!(
        error_metadata(&status, "shep_code").as_deref(),
        Some("SCE004")
    );
    // The routing table is consulted first: even unsigned, the service is unknown.
    refusal(
        submit(
            &gw,
            SignedEnvelope {
                xml_data: Vec::new(),
                body: body.encode_to_vec(),
                signature: None,
            },
        )
        .await,
        Code::NotFound,
        "UNKNOWN_SERVICE",
    );
    assert_still_serving(&gw).await;
}

#[tokio::test]
async fn a_sender_system_the_route_does_not_list_is_refused() {
    let gw = TestGateway::start().await;
    // Тайынша's social assistance takes pep and the МИО desk, not ИС ЦОН.
    let operator = gw.operator();
    let body = operator.request("targeted-social-assistance-tayynsha", iin(APPLICANT_IIN));
    refusal(
        submit(&gw, operator.seal(&body).unwrap()).await,
        Code::PermissionDenied,
        "SENDER_NOT_ALLOWED",
    );
    // A system the routing table does not know at all.
    let applicant = gw.applicant();
    let mut unknown = application(&applicant);
    unknown.sender.as_mut().unwrap().sender_id = "shady-system".to_owned();
    refusal(
        submit(&gw, applicant.seal(&unknown).unwrap()).await,
        Code::PermissionDenied,
        "SENDER_NOT_ALLOWED",
    );
    assert_still_serving(&gw).await;
}

#[tokio::test]
async fn a_channel_the_route_does_not_allow_is_refused() {
    let gw = TestGateway::start().await;
    let applicant = gw.applicant();
    // Тайынша's social assistance is taken on the portal and the provider desk only.
    let mut body = applicant.request("targeted-social-assistance-tayynsha", iin(APPLICANT_IIN));
    body.channel = Channel::ServiceCentre as i32;
    refusal(
        submit(&gw, applicant.seal(&body).unwrap()).await,
        Code::PermissionDenied,
        "CHANNEL_NOT_ALLOWED",
    );
    let mut desk = application(&applicant);
    desk.channel = Channel::ProviderDesk as i32;
    refusal(
        submit(&gw, applicant.seal(&desk).unwrap()).await,
        Code::PermissionDenied,
        "CHANNEL_NOT_ALLOWED",
    );
    assert_still_serving(&gw).await;
}

#[tokio::test]
async fn a_lookup_sent_to_submit_and_an_application_sent_to_call_are_the_wrong_kind() {
    let gw = TestGateway::start().await;
    let applicant = gw.applicant();
    let lookup = applicant.request(LOOKUP_SERVICE, iin(APPLICANT_IIN));
    let status = refusal(
        submit(&gw, applicant.seal(&lookup).unwrap()).await,
        Code::InvalidArgument,
        "WRONG_SERVICE_KIND",
    );
    assert!(
        status.message().contains("Gateway.Call"),
        "{}",
        status.message()
    );
    let status = refusal(
        gw.gateway()
            .call(applicant.seal(&application(&applicant)).unwrap())
            .await,
        Code::InvalidArgument,
        "WRONG_SERVICE_KIND",
    );
    assert!(
        status.message().contains("Gateway.Submit"),
        "{}",
        status.message()
    );
    assert_still_serving(&gw).await;
}

#[tokio::test]
async fn an_applicant_from_a_region_no_provider_serves_is_refused() {
    let gw = TestGateway::start().await;
    let almaty = gw.participant(
        "pep",
        Channel::Portal,
        &IdentitySpec::individual(ALMATY_IIN, "ТУЛЕГЕНОВА ДИНАРА"),
    );
    let body = almaty.request(ESIL_SERVICE, iin(ALMATY_IIN));
    let status = refusal(
        submit(&gw, almaty.seal(&body).unwrap()).await,
        Code::FailedPrecondition,
        "NO_PROVIDER_FOR_REGION",
    );
    assert!(
        status.message().contains(ESIL_SERVICE),
        "{}",
        status.message()
    );
    // route_id names a provider explicitly, if it is one of the route's.
    let mut routed = almaty.request(ESIL_SERVICE, iin(ALMATY_IIN));
    routed.route_id = ESIL_PROVIDER.to_owned();
    let receipt = gw
        .gateway()
        .submit(almaty.seal(&routed).unwrap())
        .await
        .expect("an explicit route_id overrides the region")
        .into_inner();
    assert_eq!(receipt.provider_id, ESIL_PROVIDER);
    let mut foreign = almaty.request(ESIL_SERVICE, iin(ALMATY_IIN));
    foreign.route_id = "arm-rshep-karaganda-edu".to_owned();
    let status = refusal(
        submit(&gw, almaty.seal(&foreign).unwrap()).await,
        Code::InvalidArgument,
        "INVALID_FIELD",
    );
    assert_eq!(
        error_metadata(&status, "field").as_deref(),
        Some("route_id")
    );
    assert_still_serving(&gw).await;
}

#[tokio::test]
async fn an_applicant_unknown_to_the_person_registry_is_refused_with_no_data() {
    let gw = TestGateway::start().await;
    let operator = gw.operator();
    let body = operator.request(ESIL_SERVICE, iin(UNKNOWN_IIN));
    refusal(
        submit(&gw, operator.seal(&body).unwrap()).await,
        Code::NotFound,
        "NO_DATA",
    );
    assert_still_serving(&gw).await;
}

#[tokio::test]
async fn a_lookup_returns_the_person_from_the_person_registry() {
    let gw = TestGateway::start().await;
    let applicant = gw.applicant();
    let mut body = applicant.request(LOOKUP_SERVICE, iin(APPLICANT_IIN));
    body.session_id = new_message_id();
    let response = gw
        .gateway()
        .call(applicant.seal(&body).unwrap())
        .await
        .expect("the lookup is answered")
        .into_inner();
    let info = response.response_info.expect("response_info");
    assert_eq!(info.correlation_id, body.message_id);
    assert_eq!(info.session_id, body.session_id);
    assert_ne!(info.message_id, body.message_id);
    assert!(uuid::Uuid::parse_str(&info.message_id).is_ok());
    assert!(info.response_date.is_some());
    let result = info.status.expect("status");
    assert_eq!(result.code, "00000");
    assert_eq!(result.message, "Сообщение успешно обработано");
    let Some(Record::Person(person)) = response.lookup.and_then(|lookup| lookup.record) else {
        panic!("a person record");
    };
    assert_eq!(person.iin, APPLICANT_IIN);
    assert_eq!(person.surname, "Серикбаев");
    assert_eq!(person.name, "Нурлан");
    let address = person.reg_address.expect("a registered address");
    assert!(address.kato.starts_with("59"), "{}", address.kato);
    assert_still_serving(&gw).await;
}

#[tokio::test]
async fn a_lookup_of_a_person_the_registry_does_not_know_is_no_data() {
    let gw = TestGateway::start().await;
    let unknown = gw.participant(
        "pep",
        Channel::Portal,
        &IdentitySpec::individual(UNKNOWN_IIN, "НЕИЗВЕСТНЫЙ"),
    );
    refusal(
        gw.gateway()
            .call(
                unknown
                    .seal(&unknown.request(LOOKUP_SERVICE, iin(UNKNOWN_IIN)))
                    .unwrap(),
            )
            .await,
        Code::NotFound,
        "NO_DATA",
    );
    assert_still_serving(&gw).await;
}

#[tokio::test]
async fn ecdsa_p256_certificates_sign_applications_and_lookups() {
    let gw = TestGateway::start().await;
    let spec = IdentitySpec {
        algorithm: KeyAlgorithm::EcdsaP256,
        ..applicant_spec()
    };
    let applicant = gw.participant("pep", Channel::Portal, &spec);
    let envelope = applicant.seal(&application(&applicant)).unwrap();
    assert_eq!(
        envelope.signature.as_ref().unwrap().algorithm(),
        SignatureAlgorithm::EcdsaP256Sha256
    );
    let receipt = gw
        .gateway()
        .submit(envelope)
        .await
        .expect("an ECDSA P-256 signature is accepted")
        .into_inner();
    assert_eq!(receipt.provider_id, ESIL_PROVIDER);
    gw.gateway()
        .call(
            applicant
                .seal(&applicant.request(LOOKUP_SERVICE, iin(APPLICANT_IIN)))
                .unwrap(),
        )
        .await
        .expect("an ECDSA P-256 lookup is answered");

    // Labelled Ed25519 while the key is ECDSA: the algorithm does not match the key.
    let mut mislabelled = applicant.seal(&application(&applicant)).unwrap();
    mislabelled.signature.as_mut().unwrap().algorithm = SignatureAlgorithm::Ed25519 as i32;
    refusal(
        submit(&gw, mislabelled).await,
        Code::InvalidArgument,
        "MALFORMED_SIGNATURE",
    );
    assert_still_serving(&gw).await;
}

#[tokio::test]
async fn malformed_fields_are_refused_and_named() {
    let gw = TestGateway::start().await;
    let applicant = gw.applicant();
    type Change = fn(&mut Body);
    let cases: [(&str, Change, &str, &str); 9] = [
        (
            "no service",
            |body| body.service_id.clear(),
            "INVALID_FIELD",
            "service_id",
        ),
        (
            "no message type",
            |body| body.message_type = MessageType::Unspecified as i32,
            "INVALID_FIELD",
            "message_type",
        ),
        (
            "no sender",
            |body| body.sender = None,
            "INVALID_FIELD",
            "sender.sender_id",
        ),
        (
            "no message date",
            |body| body.message_date = None,
            "INVALID_FIELD",
            "message_date",
        ),
        (
            "a session id that is not a UUID",
            |body| body.session_id = "session-1".to_owned(),
            "INVALID_MESSAGE_ID",
            "session_id",
        ),
        (
            "a property key over 30 characters",
            |body| {
                body.properties.push(shep_proto::envelope::v1::Property {
                    key: "k".repeat(31),
                    value: "v".to_owned(),
                })
            },
            "INVALID_FIELD",
            "properties",
        ),
        (
            "a property value over 500 characters",
            |body| {
                body.properties.push(shep_proto::envelope::v1::Property {
                    key: "note".to_owned(),
                    value: "я".repeat(501),
                })
            },
            "INVALID_FIELD",
            "properties",
        ),
        (
            "no channel",
            |body| body.channel = Channel::Unspecified as i32,
            "INVALID_FIELD",
            "channel",
        ),
        (
            "no subject",
            |body| body.subject = None,
            "INVALID_FIELD",
            "subject",
        ),
    ];
    for (what, change, reason_name, field) in cases {
        let mut body = application(&applicant);
        change(&mut body);
        let status = match submit(&gw, applicant.seal(&body).unwrap()).await {
            Ok(id) => panic!("{what}: accepted as {id}"),
            Err(status) => status,
        };
        assert_eq!(
            (
                status.code(),
                reason(&status).as_str(),
                error_metadata(&status, "field")
            ),
            (Code::InvalidArgument, reason_name, Some(field.to_owned())),
            "{what}: {}",
            describe(&status)
        );
    }

    // Limits are inclusive, and ШЭП's braced upper-case id is stored canonically.
    let mut body = application(&applicant);
    let id = uuid::Uuid::new_v4();
    body.message_id = format!("{{{}}}", id.hyphenated().to_string().to_uppercase());
    body.session_id = new_message_id();
    body.properties.push(shep_proto::envelope::v1::Property {
        key: "k".repeat(30),
        value: "я".repeat(500),
    });
    let receipt = gw
        .gateway()
        .submit(applicant.seal(&body).unwrap())
        .await
        .expect("accepted")
        .into_inner();
    assert_eq!(receipt.message_id, id.hyphenated().to_string());
    assert_eq!(receipt.session_id, body.session_id);
    assert_still_serving(&gw).await;
}

#[tokio::test]
async fn unusable_signatures_are_refused_with_their_own_reason() {
    let gw = TestGateway::start().await;
    let applicant = gw.applicant();
    let good = applicant.seal(&application(&applicant)).unwrap();
    let with = |change: fn(&mut shep_proto::envelope::v1::Signature)| {
        let mut envelope = good.clone();
        change(envelope.signature.as_mut().unwrap());
        envelope
    };

    // An empty signature is no signature.
    refusal(
        submit(&gw, with(|signature| *signature = Default::default())).await,
        Code::Unauthenticated,
        "NOT_SIGNED",
    );
    refusal(
        submit(
            &gw,
            with(|signature| signature.certificate_der = b"not a certificate".to_vec()),
        )
        .await,
        Code::InvalidArgument,
        "MALFORMED_SIGNATURE",
    );
    refusal(
        submit(
            &gw,
            with(|signature| signature.algorithm = SignatureAlgorithm::Unspecified as i32),
        )
        .await,
        Code::InvalidArgument,
        "MALFORMED_SIGNATURE",
    );
    refusal(
        submit(&gw, with(|signature| signature.value.clear())).await,
        Code::InvalidArgument,
        "MALFORMED_SIGNATURE",
    );

    // The issuing CA's own certificate cannot sign envelopes.
    let nuc = gw.data_dir().nuc();
    let ca_signer = shep_nuc::ca::Signer::from_files(
        &nuc.join("issuing.key.pem"),
        &nuc.join("issuing.cert.pem"),
    )
    .expect("the test НУЦ keeps its issuing key");
    let ca = Participant::new("pep", Channel::Portal, ca_signer);
    let mut body = application(&ca);
    body.channel = Channel::ServiceCentre as i32;
    body.sender.as_mut().unwrap().sender_id = "is-con".to_owned();
    refusal(
        submit(&gw, ca.seal(&body).unwrap()).await,
        Code::Unauthenticated,
        "WRONG_KEY_USAGE",
    );
    assert_still_serving(&gw).await;
}

/// An application with `size` bytes of scan attached.
fn with_scan(applicant: &Participant, size: usize) -> SignedEnvelope {
    let body = applicant.application(
        ESIL_SERVICE,
        iin(APPLICANT_IIN),
        r#"{"child_iin":"061211600012","kind":"опека"}"#,
        vec![shep_proto::envelope::v1::Attachment {
            name: "scan.pdf".to_owned(),
            content_type: "application/pdf".to_owned(),
            data: vec![0x25; size],
        }],
    );
    applicant.seal(&body).expect("signing")
}

#[tokio::test]
async fn a_6_mib_scan_is_taken_and_delivered_under_the_default_limits() {
    let gw = TestGateway::start().await;
    let applicant = gw.applicant();
    let envelope = with_scan(&applicant, 6 << 20);
    let id = submit(&gw, envelope.clone())
        .await
        .unwrap_or_else(|status| panic!("a 6 MiB scan refused: {}", describe(&status)));
    // The provider receives it whole (its client raised tonic's 4 MiB default).
    let (uplink, mut inbound) = open_raw(
        gw.channel(),
        shep_proto::provider::v1::SubscribeRequest {
            kind: Some(shep_proto::provider::v1::subscribe_request::Kind::Hello(
                hello(ESIL_PROVIDER, 8),
            )),
        },
    )
    .await
    .expect("Subscribe");
    let delivered = loop {
        match next_within(&mut inbound, PATIENCE).await {
            Next::Item(shep_proto::provider::v1::SubscribeResponse {
                kind: Some(shep_proto::provider::v1::subscribe_response::Kind::Delivery(delivery)),
            }) => break delivery,
            Next::Item(_) => {}
            other => panic!("on the Subscribe stream: {other:?}"),
        }
    };
    assert_eq!(delivered.message_id, id);
    assert_eq!(
        delivered.envelope.as_ref(),
        Some(&envelope),
        "delivered whole"
    );
    drop(uplink);
}

#[tokio::test]
async fn an_attachment_over_the_configured_limit_is_too_large_with_the_limit() {
    const LIMIT: usize = 1 << 20;
    let gw = TestGateway::builder()
        .configure(|config| config.limits.max_attachment_bytes = LIMIT)
        .start()
        .await;
    let applicant = gw.applicant();
    let status = refusal(
        submit(&gw, with_scan(&applicant, 2 << 20)).await,
        Code::ResourceExhausted,
        "TOO_LARGE",
    );
    assert_eq!(
        error_metadata(&status, "limit").as_deref(),
        Some(LIMIT.to_string().as_str())
    );
    assert_eq!(
        error_metadata(&status, "size").as_deref(),
        Some((2 << 20).to_string().as_str())
    );
    assert_still_serving(&gw).await;
}
