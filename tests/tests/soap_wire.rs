//! The SOAP front door on the wire, from Rust: what other ШЭП clients send
//! (JAX-WS hoists namespaces, older schemas spell `types`, GUIDs in braces,
//! a WS-Security header), the same refusal reasons as the gRPC envelope for
//! the same signature mistakes, and push with the stream's redeliveries and
//! dead letters.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use shep_nuc::ca::{CertificateAuthority, IdentitySpec, Signer};
use shep_nuc::xmldsig::{C14nMethod, sign_enveloped};
use shep_proto::admin::v1::ListDeadLettersRequest;
use shep_proto::envelope::v1::{Body, Channel, Reason};
use shep_tests::*;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

const SOAP_ENV: &str = "http://schemas.xmlsoap.org/soap/envelope/";

/// A signed lookup of the demo applicant as `SendMessage`, the data signed
/// by `signer` (none: unsigned), `change` applied to the signed data text.
fn lookup_message(
    signer: Option<&Signer>,
    message_id: &str,
    change: impl Fn(String) -> String,
) -> String {
    let body = Body {
        subject: Some(iin(APPLICANT_IIN)),
        channel: Channel::Portal as i32,
        ..Body::default()
    };
    let data = shep_gateway::xmldata::body_to_xml(&body);
    let data = match signer {
        Some(signer) => sign_enveloped(&data, signer, C14nMethod::Exclusive).unwrap(),
        None => data,
    };
    let date = OffsetDateTime::now_utc().format(&Rfc3339).unwrap();
    format!(
        "<S:Envelope xmlns:S=\"{SOAP_ENV}\"><S:Body><ns1:SendMessage xmlns:ns1=\"http://bip.bee.kz/SyncChannel/v10/Types\"><request><requestInfo><messageId>{message_id}</messageId><serviceId>{LOOKUP_SERVICE}</serviceId><messageDate>{date}</messageDate><sender><senderId>pep</senderId></sender></requestInfo><requestData><data>{}</data></requestData></request></ns1:SendMessage></S:Body></S:Envelope>",
        change(data)
    )
}

/// The answer's HTTP status, `status/code` (or `errorCode`) and
/// `subError/errorCode`.
async fn post(gw: &TestGateway, path: &str, message: String) -> (u16, String, String) {
    let (status, answer) =
        shep_gateway::soap_client::post(&format!("{}{path}", gw.url()), message, None, &[])
            .await
            .expect("the gateway answers");
    let document = roxmltree::Document::parse(&answer).expect("an XML answer");
    let text = |name: &str| {
        document
            .descendants()
            .find(|node| node.tag_name().name() == name)
            .and_then(|node| node.text())
            .unwrap_or_default()
            .to_owned()
    };
    let reason = document
        .descendants()
        .find(|node| node.tag_name().name() == "subError")
        .and_then(|sub| {
            sub.children()
                .find(|node| node.tag_name().name() == "errorCode")
        })
        .and_then(|node| node.text())
        .unwrap_or_default()
        .to_owned();
    let code = if status == 200 {
        text("code")
    } else {
        text("errorCode")
    };
    (status, code, reason)
}

#[tokio::test]
async fn what_other_shep_clients_send_is_understood() {
    let gw = TestGateway::start().await;
    let applicant = gw.signer_of("applicant");
    let id = new_message_id();
    // JAX-WS style: the data's namespace declared on the Envelope and used
    // by prefix; the older `types` spelling; braces; a WS-Security header.
    let body = Body {
        subject: Some(iin(APPLICANT_IIN)),
        channel: Channel::Portal as i32,
        ..Body::default()
    };
    let data = shep_gateway::xmldata::body_to_xml(&body)
        .replace(
            "<body xmlns=\"urn:shep-sim:body:v1\">",
            "<b:body xmlns:b=\"urn:shep-sim:body:v1\">",
        )
        .replace("<subject>", "<b:subject>")
        .replace("</subject>", "</b:subject>")
        .replace("<iin>", "<b:iin>")
        .replace("</iin>", "</b:iin>")
        .replace("<channel>", "<b:channel>")
        .replace("</channel>", "</b:channel>")
        .replace("</body>", "</b:body>");
    for c14n in [C14nMethod::Exclusive, C14nMethod::Inclusive] {
        let signed = sign_enveloped(&data, &applicant, c14n).unwrap();
        let hoisted = signed.replacen(" xmlns:b=\"urn:shep-sim:body:v1\"", "", 1);
        let date = OffsetDateTime::now_utc().format(&Rfc3339).unwrap();
        let message = format!(
            "<soapenv:Envelope xmlns:soapenv=\"{SOAP_ENV}\" xmlns:b=\"urn:shep-sim:body:v1\" xmlns:wsse=\"http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd\"><soapenv:Header><wsse:Security><wsse:BinarySecurityToken>AAAA</wsse:BinarySecurityToken></wsse:Security></soapenv:Header><soapenv:Body><t:SendMessage xmlns:t=\"http://bip.bee.kz/SyncChannel/v10/types\"><request><requestInfo><messageId>{{{id}}}</messageId><serviceId>{LOOKUP_SERVICE}</serviceId><messageDate>{date}</messageDate><sender><senderId>pep</senderId></sender><sessionId>{{{}}}</sessionId></requestInfo><requestData><data>{hoisted}</data></requestData></request></t:SendMessage></soapenv:Body></soapenv:Envelope>",
            new_message_id(),
        );
        let (status, code, reason) = post(&gw, "/bip-sync", message).await;
        assert_eq!(
            (status, code.as_str()),
            (200, "00000"),
            "{c14n:?}: {reason}"
        );
    }

    // SOAP 1.2 is not ШЭП's: a VersionMismatch fault, in the catalogue's terms.
    let soap12 = lookup_message(Some(&applicant), &new_message_id(), |data| data)
        .replace(SOAP_ENV, "http://www.w3.org/2003/05/soap-envelope");
    let (status, code, reason) = post(&gw, "/bip-sync/", soap12).await;
    assert_eq!(
        (status, code.as_str(), reason.as_str()),
        (500, "SCE001", "MALFORMED_BODY")
    );

    // The contracts are served.
    for (path, needle) in [
        ("/bip-sync/?wsdl", "ISyncChannelHttpService"),
        ("/bip-async/?wsdl", "getMessageStatus"),
        ("/bip-async/?wsdl=client", "changeMassageStatusNotification"),
        ("/bip-async/?xsd=async.xsd", "MESSAGE_NOT_ACCTEPTED"),
        ("/bip-sync/?xsd=common.xsd", "ErrorInfo"),
    ] {
        let text = http_get(&format!("{}{path}", gw.url())).await;
        assert!(text.contains(needle), "{path}: {text}");
    }
}

async fn http_get(url: &str) -> String {
    let uri: http::Uri = url.parse().unwrap();
    let stream = tokio::net::TcpStream::connect(uri.authority().unwrap().as_str())
        .await
        .unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(connection);
    let request = http::Request::get(uri.path_and_query().unwrap().as_str())
        .header(http::header::HOST, uri.authority().unwrap().as_str())
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), 200, "{url}");
    let bytes = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[tokio::test]
async fn a_signature_mistake_gets_the_same_reason_over_soap_and_over_grpc() {
    let gw = TestGateway::start().await;
    let foreign_dir = gw.temp_dir().join("foreign-ca");
    let foreign = CertificateAuthority::load_or_generate(&foreign_dir).unwrap();
    let expired = IdentitySpec {
        not_before: OffsetDateTime::now_utc() - time::Duration::days(30),
        not_after: OffsetDateTime::now_utc() - time::Duration::days(1),
        ..IdentitySpec::individual(APPLICANT_IIN, "ИСТЁКШИЙ")
    };
    let cases: Vec<(&str, Option<Signer>, Reason)> = vec![
        ("unsigned", None, Reason::NotSigned),
        (
            "a foreign CA",
            Some(
                foreign
                    .issue(&IdentitySpec::individual(APPLICANT_IIN, "ЧУЖОЙ"))
                    .and_then(|issued| issued.signer())
                    .unwrap(),
            ),
            Reason::UnknownIssuer,
        ),
        (
            "an expired certificate",
            Some(gw.issue_registered(&expired)),
            Reason::CertificateExpired,
        ),
        (
            "someone else's certificate",
            Some(gw.issue_registered(&IdentitySpec::individual(TAYYNSHA_APPLICANT_IIN, "ДРУГОЙ"))),
            Reason::IdentityMismatch,
        ),
    ];
    for (case, signer, reason) in cases {
        // gRPC: the same lookup as an envelope.
        let request = gw.applicant().request(LOOKUP_SERVICE, iin(APPLICANT_IIN));
        let envelope = match &signer {
            Some(signer) => signer.seal(&request).unwrap(),
            None => shep_proto::envelope::v1::SignedEnvelope {
                body: prost::Message::encode_to_vec(&request),
                ..Default::default()
            },
        };
        let status = gw.gateway().call(envelope).await.expect_err(case);
        assert_eq!(
            shep_tests::reason(&status),
            reason.as_str_name(),
            "gRPC, {case}"
        );
        // SOAP.
        let (status, _, soap_reason) = post(
            &gw,
            "/bip-sync/",
            lookup_message(signer.as_ref(), &new_message_id(), |d| d),
        )
        .await;
        assert_eq!(status, 500, "{case}");
        assert_eq!(soap_reason, reason.as_str_name(), "SOAP, {case}");
    }
    // A change after signing: a digest no longer matches.
    let tampered = lookup_message(
        Some(&gw.signer_of("applicant")),
        &new_message_id(),
        |data| data.replace("<channel>PORTAL</channel>", "<channel>SYSTEM</channel>"),
    );
    let (_, code, reason) = post(&gw, "/bip-sync/", tampered).await;
    assert_eq!(
        (code.as_str(), reason.as_str()),
        ("SCE016", "SIGNATURE_INVALID")
    );
}

/// A push endpoint that refuses its first `refusals` messages with a SOAP
/// fault, then takes them; counts what it was sent.
async fn endpoint(refusals: usize) -> (String, Arc<AtomicUsize>) {
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    let app = axum::Router::new().route(
        "/push",
        axum::routing::post(move |body: String| {
            let counter = counter.clone();
            async move {
                let n = counter.fetch_add(1, Ordering::SeqCst);
                assert!(body.contains("sendMessage"), "{body}");
                if n < refusals {
                    (
                        axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                        format!("<S:Envelope xmlns:S=\"{SOAP_ENV}\"><S:Body><S:Fault><faultcode>S:Server</faultcode><faultstring>busy, attempt {}</faultstring></S:Fault></S:Body></S:Envelope>", n + 1),
                    )
                } else {
                    (
                        axum::http::StatusCode::OK,
                        format!("<S:Envelope xmlns:S=\"{SOAP_ENV}\"><S:Body><ns2:sendMessageResponse xmlns:ns2=\"http://bip.bee.kz/AsyncChannel/v10/Interfaces/Client\"><response><responseDate>2026-12-07T00:00:00Z</responseDate></response></ns2:sendMessageResponse></S:Body></S:Envelope>"),
                    )
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/push", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

fn with_push(url: &str) -> String {
    let line = format!("id = \"{ESIL_PROVIDER}\"\n");
    shep_gateway::routes::DEFAULT_ROUTES.replacen(
        &line,
        &format!("{line}soap_endpoint = \"{url}\"\n"),
        1,
    )
}

#[tokio::test]
async fn a_refused_push_is_delivered_again_and_dead_lettered_after_its_attempts() {
    // Refused once, then taken: delivered, on the second attempt.
    let (url, seen) = endpoint(1).await;
    let gw = TestGateway::builder()
        .routes_toml(&with_push(&url))
        .lease_ms(300)
        .start()
        .await;
    let submitted = gw.submit_application().await;
    let message_id = submitted.receipt.message_id;
    delivery_state_becomes(
        &gw,
        &message_id,
        shep_proto::gateway::v1::MessageState::Delivered,
    )
    .await;
    assert_eq!(seen.load(Ordering::SeqCst), 2, "one refusal, one delivery");

    // Always refused: dead-lettered after `delivery.max_attempts`.
    let (url, seen) = endpoint(usize::MAX).await;
    let gw = TestGateway::builder()
        .routes_toml(&with_push(&url))
        .lease_ms(200)
        .max_attempts(2)
        .start()
        .await;
    let submitted = gw.submit_application().await;
    let letters = eventually(PATIENCE, async || {
        let letters = gw
            .admin()
            .list_dead_letters(gw.authorized(ListDeadLettersRequest {
                provider_id: ESIL_PROVIDER.to_owned(),
            }))
            .await
            .map_err(|status| status.to_string())?
            .into_inner()
            .dead_letters;
        if letters.is_empty() {
            Err("no dead letter yet".to_owned())
        } else {
            Ok(letters)
        }
    })
    .await;
    assert_eq!(letters[0].message_id, submitted.receipt.message_id);
    assert_eq!(seen.load(Ordering::SeqCst), 2, "two attempts");
}

/// A ШЭП sessionId bound to a test session puts a SOAP message in it: the
/// session's fault answers it as a fault, and the exchange journal keeps it
/// under the session; the same message without the sessionId is untouched.
#[tokio::test]
async fn a_bound_soap_session_gets_its_faults_and_its_journal() {
    use shep_proto::admin::v1::session_binding::To;
    use shep_proto::admin::v1::{
        ErrorEffect, ExchangeFilter, Fault, FaultTarget, ListExchangesRequest, SessionBinding,
        fault, fault_target,
    };
    const SESSION: &str = "soap-team";
    const SESSION_ID: &str = "0b7e3c1a-5d2f-4e6a-9c8b-1234567890ab";
    let gw = TestGateway::start().await;
    gw.admin()
        .bind_session(gw.authorized(SessionBinding {
            id: String::new(),
            session: SESSION.to_owned(),
            to: Some(To::SessionId(SESSION_ID.to_owned())),
        }))
        .await
        .expect("BindSession");
    let mut add = gw.authorized(Fault {
        id: "gbdfl-down".to_owned(),
        target: Some(FaultTarget {
            target: Some(fault_target::Target::Service(LOOKUP_SERVICE.to_owned())),
        }),
        effect: Some(fault::Effect::Error(ErrorEffect {
            code: "UNAVAILABLE".to_owned(),
            message: "ГБД ФЛ is down in this session".to_owned(),
            ..ErrorEffect::default()
        })),
        ..Fault::default()
    });
    add.metadata_mut().insert(
        shep_gateway::toolkit::SESSION_HEADER,
        SESSION.parse().unwrap(),
    );
    gw.admin().add_fault(add).await.expect("AddFault");

    let applicant = gw.signer_of("applicant");
    let in_session = new_message_id();
    let message = lookup_message(Some(&applicant), &in_session, |data| data).replace(
        "</sender></requestInfo>",
        &format!("</sender><sessionId>{{{SESSION_ID}}}</sessionId></requestInfo>"),
    );
    let (status, _, reason) = post(&gw, "/bip-sync/", message).await;
    assert_eq!((status, reason.as_str()), (500, "INJECTED_FAULT"));
    let outside = lookup_message(Some(&applicant), &new_message_id(), |data| data);
    let (status, code, _) = post(&gw, "/bip-sync/", outside).await;
    assert_eq!((status, code.as_str()), (200, "00000"));

    let journal = gw
        .admin()
        .list_exchanges(gw.authorized(ListExchangesRequest {
            filter: Some(ExchangeFilter {
                session: SESSION.to_owned(),
                message_id: in_session.clone(),
                ..ExchangeFilter::default()
            }),
            limit: 10,
        }))
        .await
        .expect("ListExchanges")
        .into_inner()
        .exchanges;
    assert_eq!(journal.len(), 1, "{journal:?}");
}
