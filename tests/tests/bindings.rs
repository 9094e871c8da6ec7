//! Session bindings: systems that cannot send `x-shep-session` are put in a
//! test session by what the gateway sees of their calls (the body's
//! sessionId, the sender, the subject, the provider reached), so a session's
//! faults and exchange journal apply to them; the header still wins.

use std::time::Duration;

use shep_proto::admin::v1::session_binding::To;
use shep_proto::admin::v1::{
    ErrorEffect, Exchange, ExchangeFilter, Fault, FaultTarget, ListExchangesRequest,
    ListSessionBindingsRequest, ResetRequest, SessionBinding, UnbindSessionRequest, fault,
    fault_target,
};
use shep_proto::envelope::v1::{Body, SignedEnvelope};
use shep_tests::*;
use tonic::{Code, Request, Status};

const SESSION: &str = "x-shep-session";
const SUBMIT: &str = "shep.gateway.v1.Gateway/Submit";
const SUBSCRIBE: &str = "shep.provider.v1.Provider/Subscribe";
const SESSION_ID: &str = "6F1C2D3E-4A5B-4C6D-8E7F-901234567890";

fn in_session<T>(message: T, session: Option<&str>) -> Request<T> {
    let mut request = Request::new(message);
    if let Some(session) = session {
        request
            .metadata_mut()
            .insert(SESSION, session.parse().unwrap());
    }
    request
}

fn admin<T>(gw: &TestGateway, message: T, session: Option<&str>) -> Request<T> {
    let mut request = gw.authorized(message);
    if let Some(session) = session {
        request
            .metadata_mut()
            .insert(SESSION, session.parse().unwrap());
    }
    request
}

/// A fault on the Esil service that answers UNAVAILABLE, in `session` only.
async fn fail_esil_in(gw: &TestGateway, session: &str) {
    let fault = Fault {
        id: format!("esil-down-{session}"),
        target: Some(FaultTarget {
            target: Some(fault_target::Target::Service(ESIL_SERVICE.to_owned())),
        }),
        effect: Some(fault::Effect::Error(ErrorEffect {
            code: "UNAVAILABLE".to_owned(),
            message: "the bound session's fault".to_owned(),
            ..ErrorEffect::default()
        })),
        ..Fault::default()
    };
    gw.admin()
        .add_fault(admin(gw, fault, Some(session)))
        .await
        .unwrap_or_else(|status| panic!("AddFault refused: {}", describe(&status)));
}

async fn bind(gw: &TestGateway, session: &str, to: To) -> SessionBinding {
    gw.admin()
        .bind_session(gw.authorized(SessionBinding {
            id: String::new(),
            session: session.to_owned(),
            to: Some(to),
        }))
        .await
        .unwrap_or_else(|status| panic!("BindSession refused: {}", describe(&status)))
        .into_inner()
}

async fn unbind(gw: &TestGateway, id: &str) {
    gw.admin()
        .unbind_session(gw.authorized(UnbindSessionRequest {
            id: id.to_owned(),
            session: String::new(),
        }))
        .await
        .unwrap_or_else(|status| panic!("UnbindSession refused: {}", describe(&status)));
}

/// The demo applicant's application to Esil, with the ШЭП sessionId `{…}`.
fn application(gw: &TestGateway) -> (Body, SignedEnvelope) {
    let applicant = gw.applicant();
    let mut body = applicant.application(
        ESIL_SERVICE,
        iin(APPLICANT_IIN),
        r#"{"child_iin":"061211600012","kind":"опека"}"#,
        Vec::new(),
    );
    body.session_id = format!("{{{SESSION_ID}}}");
    let envelope = applicant.seal(&body).unwrap();
    (body, envelope)
}

async fn submit(gw: &TestGateway, header: Option<&str>) -> (String, Result<(), Status>) {
    let (body, envelope) = application(gw);
    let result = gw
        .gateway()
        .submit(in_session(envelope, header))
        .await
        .map(|_| ());
    (body.message_id, result)
}

/// The exchanges the journal holds under `session` for `rpc` and `message_id`.
async fn journal(gw: &TestGateway, session: &str, rpc: &str, message_id: &str) -> Vec<Exchange> {
    gw.admin()
        .list_exchanges(gw.authorized(ListExchangesRequest {
            filter: Some(ExchangeFilter {
                session: session.to_owned(),
                rpc: rpc.to_owned(),
                message_id: message_id.to_owned(),
                ..ExchangeFilter::default()
            }),
            limit: 100,
        }))
        .await
        .unwrap()
        .into_inner()
        .exchanges
}

#[tokio::test]
async fn a_call_without_the_header_is_in_the_session_its_binding_names_until_unbound() {
    let gw = TestGateway::start().await;
    let kinds = [
        ("by-system", To::SystemId("pep".to_owned())),
        ("by-session-id", To::SessionId(SESSION_ID.to_owned())),
        ("by-subject", To::Subject(APPLICANT_IIN.to_owned())),
        ("by-provider", To::ProviderId(ESIL_PROVIDER.to_owned())),
    ];
    for (session, to) in kinds {
        fail_esil_in(&gw, session).await;
        let (_, before) = submit(&gw, None).await;
        assert!(before.is_ok(), "{session}: no binding yet: {before:?}");

        let binding = bind(&gw, session, to).await;
        assert_eq!(binding.session, session);
        let (message_id, bound) = submit(&gw, None).await;
        let refused = bound.expect_err(session);
        assert_eq!(refused.code(), Code::Unavailable, "{session}: {refused:?}");
        let recorded = journal(&gw, session, SUBMIT, &message_id).await;
        assert_eq!(recorded.len(), 1, "{session}: {recorded:?}");
        assert_eq!(recorded[0].code, "UNAVAILABLE");

        // The header wins over any binding.
        let (message_id, headed) = submit(&gw, Some("elsewhere")).await;
        assert!(headed.is_ok(), "{session}: {headed:?}");
        assert!(journal(&gw, session, SUBMIT, &message_id).await.is_empty());

        unbind(&gw, &binding.id).await;
        let (message_id, unbound) = submit(&gw, None).await;
        assert!(unbound.is_ok(), "{session}: unbound: {unbound:?}");
        assert!(journal(&gw, session, SUBMIT, &message_id).await.is_empty());
        assert_eq!(journal(&gw, "", SUBMIT, &message_id).await.len(), 1);
    }
    gw.shutdown().await;
}

#[tokio::test]
async fn the_more_specific_binding_wins_and_reset_removes_a_sessions_bindings() {
    let gw = TestGateway::start().await;
    bind(&gw, "by-subject", To::Subject(APPLICANT_IIN.to_owned())).await;
    bind(&gw, "by-session-id", To::SessionId(SESSION_ID.to_owned())).await;
    let (message_id, result) = submit(&gw, None).await;
    assert!(result.is_ok(), "{result:?}");
    assert_eq!(
        journal(&gw, "by-session-id", SUBMIT, &message_id)
            .await
            .len(),
        1
    );

    gw.admin()
        .reset(admin(&gw, ResetRequest {}, Some("by-session-id")))
        .await
        .unwrap();
    let left = gw
        .admin()
        .list_session_bindings(gw.authorized(ListSessionBindingsRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .bindings;
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0].session, "by-subject");
    let (message_id, _) = submit(&gw, None).await;
    assert_eq!(
        journal(&gw, "by-subject", SUBMIT, &message_id).await.len(),
        1
    );

    gw.admin()
        .reset(gw.authorized(ResetRequest {}))
        .await
        .unwrap();
    let left = gw
        .admin()
        .list_session_bindings(gw.authorized(ListSessionBindingsRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .bindings;
    assert!(left.is_empty(), "{left:?}");
    gw.shutdown().await;
}

#[tokio::test]
async fn a_providers_ack_lands_in_the_session_of_the_applications_submitter() {
    let gw = TestGateway::start().await;
    let (message_id, result) = submit(&gw, Some("submitter")).await;
    assert!(result.is_ok(), "{result:?}");
    // The provider sends no header.
    let provider = gw.subscribe(ESIL_PROVIDER, 1).await;
    let mut provider = provider;
    let delivery = provider.next_delivery().await;
    assert_eq!(delivery.message_id, message_id);
    provider.accept(&message_id).await;

    let acked = async {
        loop {
            let recorded = journal(&gw, "submitter", SUBSCRIBE, &message_id).await;
            let ack = recorded.into_iter().find(|exchange| {
                exchange
                    .request
                    .as_ref()
                    .is_some_and(|any| any.type_url.ends_with("shep.provider.v1.Ack"))
            });
            if let Some(ack) = ack {
                return ack;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let ack = tokio::time::timeout(PATIENCE, acked)
        .await
        .expect("the ack is journaled in the submitter's session");
    assert_eq!(ack.session, "submitter");
    gw.shutdown().await;
}

#[tokio::test]
async fn bad_bindings_are_refused_as_invalid_arguments() {
    let gw = TestGateway::start().await;
    let cases = [
        ("s", None),
        ("", Some(To::SystemId("pep".to_owned()))),
        ("s", Some(To::SystemId("no-such-system".to_owned()))),
        // A consumer system is not a provider.
        ("s", Some(To::ProviderId("pep".to_owned()))),
        ("s", Some(To::Subject("12345".to_owned()))),
        ("s", Some(To::SessionId("not-a-uuid".to_owned()))),
        ("s", Some(To::CertificateSha256("abcd".to_owned()))),
    ];
    for (session, to) in cases {
        let refused = gw
            .admin()
            .bind_session(gw.authorized(SessionBinding {
                id: String::new(),
                session: session.to_owned(),
                to: to.clone(),
            }))
            .await
            .expect_err("a bad binding");
        assert_eq!(refused.code(), Code::InvalidArgument, "{to:?}: {refused:?}");
        assert!(
            describe(&refused).contains("INVALID_FIELD"),
            "{to:?}: {}",
            describe(&refused)
        );
    }
    let missing = gw
        .admin()
        .unbind_session(gw.authorized(UnbindSessionRequest {
            id: "b-99".to_owned(),
            session: String::new(),
        }))
        .await
        .expect_err("no such binding");
    assert_eq!(missing.code(), Code::NotFound);
    // Colons and capitals are the fingerprint as openssl prints it.
    let fingerprint = "AB:".repeat(31) + "AB";
    let bound = bind(&gw, "s", To::CertificateSha256(fingerprint)).await;
    assert_eq!(bound.to, Some(To::CertificateSha256("ab".repeat(32))));
    gw.shutdown().await;
}

#[tokio::test]
async fn the_admin_json_front_binds_with_the_admin_token_only() {
    let gw = TestGateway::start().await;
    let body = r#"{"session":"json","systemId":"pep"}"#;
    let refused = http_post_json(gw.addr(), "/admin/v1/BindSession", None, body).await;
    assert_eq!(refused.status, 401, "{}", refused.json());
    let bound = http_post_json(
        gw.addr(),
        "/admin/v1/BindSession",
        Some(gw.admin_token()),
        body,
    )
    .await;
    assert_eq!(bound.status, 200, "{}", bound.json());
    assert_eq!(bound.json()["id"], "b-1");
    assert_eq!(bound.json()["systemId"], "pep");
    let listed = http_post_json(
        gw.addr(),
        "/admin/v1/ListSessionBindings",
        Some(gw.admin_token()),
        "{}",
    )
    .await;
    assert_eq!(listed.json()["bindings"][0]["session"], "json");
    gw.shutdown().await;
}

#[tokio::test]
async fn shep_bindings_binds_a_signers_certificate_from_its_pem_lists_and_deletes() {
    let gw = TestGateway::start().await;
    let url = gw.url();
    let token = gw.admin_token().to_owned();
    let (_, cert) = gw.data_dir().identity("applicant");
    let cert = cert.to_str().unwrap().to_owned();
    let common = ["--gateway", url.as_str(), "--token", token.as_str()];
    let with = |args: &[&str]| -> Vec<String> {
        args.iter()
            .chain(&common)
            .map(|arg| (*arg).to_owned())
            .collect()
    };
    let shep = async |args: Vec<String>| {
        run_shep(&args.iter().map(String::as_str).collect::<Vec<_>>()).await
    };
    let run = shep(with(&[
        "bindings",
        "add",
        "--session",
        "cli",
        "--certificate",
        &cert,
    ]))
    .await;
    assert!(run.ok().contains("b-1"), "{}", run.stdout);

    // The fingerprint is the signer's: the applicant's envelopes are in the session.
    let (message_id, result) = submit(&gw, None).await;
    assert!(result.is_ok(), "{result:?}");
    assert_eq!(journal(&gw, "cli", SUBMIT, &message_id).await.len(), 1);

    let run = shep(with(&["bindings", "list", "--session", "cli"])).await;
    assert!(run.ok().contains("1 binding(s)"), "{}", run.stdout);
    let run = shep(with(&["bindings", "delete", "--session", "cli"])).await;
    assert!(run.ok().contains("0 binding(s)"), "{}", run.stdout);
    let run = shep(with(&[
        "bindings",
        "add",
        "--session",
        "cli",
        "--subject",
        "1",
    ]))
    .await;
    assert!(!run.status.success(), "{}", run.stdout);
    assert!(run.stderr.contains("INVALID_FIELD"), "{}", run.stderr);
    gw.shutdown().await;
}

/// The SHA-256 fingerprint of the first certificate of a PEM file.
fn fingerprint_of(pem: &std::path::Path) -> String {
    let bytes = std::fs::read(pem).unwrap();
    let (_, block) = x509_parser::pem::parse_x509_pem(&bytes).unwrap();
    shep_gateway::admin_auth::Fingerprint::of(&block.contents).to_string()
}

#[tokio::test]
async fn a_providers_tls_certificate_puts_its_subscribe_in_the_bound_session() {
    let gw = TestGateway::builder().authenticated().start().await;
    let fault = Fault {
        target: Some(FaultTarget {
            target: Some(fault_target::Target::Provider(ESIL_PROVIDER.to_owned())),
        }),
        effect: Some(fault::Effect::Error(ErrorEffect {
            code: "UNAVAILABLE".to_owned(),
            ..ErrorEffect::default()
        })),
        ..Fault::default()
    };
    gw.admin()
        .add_fault(admin(&gw, fault, Some("tls")))
        .await
        .unwrap();
    let open = async || {
        let channel = gw.channel_as(ESIL_PROVIDER).await;
        Subscription::open(channel, hello(ESIL_PROVIDER, 1))
            .await
            .map(drop)
    };
    assert!(open().await.is_ok(), "not bound yet");

    let (_, cert) = gw.data_dir().system_identity(ESIL_PROVIDER);
    bind(&gw, "tls", To::CertificateSha256(fingerprint_of(&cert))).await;
    let refused = open()
        .await
        .expect_err("the bound session's provider fault");
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
    gw.shutdown().await;
}

/// A Watch of an applicant, sent without the header, is in the session
/// bound to that subject: the session's watch fault cuts it, and the
/// journal lists it there.
#[tokio::test]
async fn a_watch_of_a_bound_subject_is_in_the_subjects_session() {
    use shep_proto::gateway::v1::{WatchRequest, watch_request};
    use tokio_stream::StreamExt as _;
    let gw = TestGateway::start().await;
    let (message_id, submitted) = submit(&gw, None).await;
    submitted.unwrap_or_else(|status| panic!("submit refused: {}", describe(&status)));
    let cut = Fault {
        target: Some(FaultTarget {
            target: Some(fault_target::Target::Watch("*".to_owned())),
        }),
        effect: Some(fault::Effect::CutStreamAfter(1)),
        ..Fault::default()
    };
    gw.admin()
        .add_fault(admin(&gw, cut, Some("watchers")))
        .await
        .unwrap_or_else(|status| panic!("AddFault refused: {}", describe(&status)));
    let watch = |gw: &TestGateway| {
        let mut client = gw.gateway();
        async move {
            let mut events = client
                .watch(WatchRequest {
                    target: Some(watch_request::Target::Subject(iin(APPLICANT_IIN))),
                    after_sequence: 0,
                })
                .await
                .unwrap_or_else(|status| panic!("Watch refused: {}", describe(&status)))
                .into_inner();
            let first = events
                .next()
                .await
                .expect("an event")
                .expect("an event, not an error");
            let second = tokio::time::timeout(Duration::from_millis(500), events.next()).await;
            (first, second)
        }
    };

    // Unbound: the fault is the session's, the stream goes on.
    let (first, second) = watch(&gw).await;
    assert_eq!(first.message_id, message_id);
    assert!(
        second.is_err(),
        "nothing more to send, and no cut: {second:?}"
    );

    bind(&gw, "watchers", To::Subject(APPLICANT_IIN.to_owned())).await;
    let (_, second) = watch(&gw).await;
    let cut = second
        .expect("the cut comes at once")
        .expect("the stream ends with an error")
        .expect_err("the cut, not an event");
    assert_eq!(cut.code(), Code::Unavailable, "{cut:?}");
    assert_eq!(reason(&cut), "INJECTED_FAULT");
    let watched = gw
        .admin()
        .list_exchanges(gw.authorized(ListExchangesRequest {
            filter: Some(ExchangeFilter {
                session: "watchers".to_owned(),
                rpc: "shep.gateway.v1.Gateway/Watch".to_owned(),
                ..ExchangeFilter::default()
            }),
            limit: 100,
        }))
        .await
        .unwrap()
        .into_inner()
        .exchanges;
    assert!(
        watched
            .iter()
            .any(|exchange| exchange.subject == APPLICANT_IIN),
        "{watched:?}"
    );
}
