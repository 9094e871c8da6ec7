//! The integration team's toolkit over real sockets: sessions isolating
//! parallel runs, faults on registries, services, subjects and providers
//! (delays, errors with details, seeded rates, hangs against the caller's
//! deadline, cut streams, dropped connections), scenarios with sequences,
//! session fixtures, routes one at a time, the exchange journal with verify
//! and the unused report, and reset.

use std::time::{Duration, Instant};

use shep_proto::admin::v1::{
    ApplyScenarioRequest, Delay, DeleteFaultRequest, DeleteRouteRequest, ErrorEffect,
    ExchangeFilter, Fault, FaultTarget, GetRouteRequest, HangEffect, ListExchangesRequest,
    ListFaultsRequest, PutFixturesRequest, PutRouteRequest, ResetRequest, Scenario, UnusedRequest,
    VerifyExchangesRequest, delay, fault, fault_target, verify_exchanges_request,
};
use shep_proto::gateway::v1::CallResponse;
use shep_proto::provider::v1::{
    SubscribeRequest, SubscribeResponse, subscribe_request, subscribe_response,
};
use shep_proto::registry::v1::FixtureDocument;
use shep_proto::registry::v1::lookup_response::Record;
use shep_tests::*;
use tonic::{Code, Request, Status};

const SESSION: &str = "x-shep-session";

fn in_session<T>(mut request: Request<T>, session: Option<&str>) -> Request<T> {
    if let Some(session) = session {
        request
            .metadata_mut()
            .insert(SESSION, session.parse().unwrap());
    }
    request
}

fn admin<T>(gw: &TestGateway, message: T, session: Option<&str>) -> Request<T> {
    in_session(gw.authorized(message), session)
}

/// The demo applicant looks themself up in ГБД ФЛ through the portal.
async fn lookup(
    gw: &TestGateway,
    session: Option<&str>,
    timeout: Option<Duration>,
) -> Result<CallResponse, Status> {
    let applicant = gw.applicant();
    let envelope = applicant
        .seal(&applicant.request(LOOKUP_SERVICE, iin(APPLICANT_IIN)))
        .unwrap();
    let mut request = in_session(Request::new(envelope), session);
    if let Some(timeout) = timeout {
        request.set_timeout(timeout);
    }
    gw.gateway()
        .call(request)
        .await
        .map(tonic::Response::into_inner)
}

fn person_name(answer: &CallResponse) -> String {
    match answer
        .lookup
        .as_ref()
        .and_then(|lookup| lookup.record.as_ref())
    {
        Some(Record::Person(person)) => person.surname.clone(),
        other => panic!("expected a person, got {other:?}"),
    }
}

fn target(target: fault_target::Target) -> Option<FaultTarget> {
    Some(FaultTarget {
        target: Some(target),
    })
}

fn error(code: &str, message: &str, reason: &str) -> Option<fault::Effect> {
    Some(fault::Effect::Error(ErrorEffect {
        code: code.to_owned(),
        message: message.to_owned(),
        reason: reason.to_owned(),
        metadata: [("registry_node".to_owned(), "gbdfl-2".to_owned())].into(),
    }))
}

async fn add_fault(gw: &TestGateway, fault: Fault, session: Option<&str>) -> Fault {
    gw.admin()
        .add_fault(admin(gw, fault, session))
        .await
        .unwrap_or_else(|status| panic!("AddFault refused: {}", describe(&status)))
        .into_inner()
}

async fn verify(
    gw: &TestGateway,
    filter: ExchangeFilter,
    exactly: u64,
    session: Option<&str>,
) -> shep_proto::admin::v1::VerifyExchangesResponse {
    gw.admin()
        .verify_exchanges(admin(
            gw,
            VerifyExchangesRequest {
                filter: Some(filter),
                expect: Some(verify_exchanges_request::Expect::Exactly(exactly)),
            },
            session,
        ))
        .await
        .unwrap()
        .into_inner()
}

fn gbdfl_lookups_of_applicant() -> ExchangeFilter {
    ExchangeFilter {
        rpc: "registry/gbdfl".into(),
        hop: "registry".into(),
        subject: APPLICANT_IIN.into(),
        ..ExchangeFilter::default()
    }
}

#[tokio::test]
async fn two_sessions_with_conflicting_scenarios_stay_apart() {
    let gw = TestGateway::start().await;
    let mut admin_client = gw.admin();
    // "absent": ГБД ФЛ has no data on the applicant.
    admin_client
        .put_scenario(gw.authorized(Scenario {
            name: "applicant-absent".into(),
            fixtures: vec![FixtureDocument {
                name: "absent.json".into(),
                json: format!(r#"{{"absent": {{"iins": ["{APPLICANT_IIN}"]}}}}"#),
            }],
            ..Scenario::default()
        }))
        .await
        .unwrap();
    // "down": ГБД ФЛ answers PERMISSION_DENIED for the applicant.
    admin_client
        .put_scenario(gw.authorized(Scenario {
            name: "gbdfl-denies".into(),
            faults: vec![Fault {
                id: "deny".into(),
                target: target(fault_target::Target::Subject(APPLICANT_IIN.into())),
                effect: error("PERMISSION_DENIED", "доступ запрещён", "ACCESS_DENIED"),
                ..Fault::default()
            }],
            ..Scenario::default()
        }))
        .await
        .unwrap();
    for (session, scenario) in [("run-a", "applicant-absent"), ("run-b", "gbdfl-denies")] {
        admin_client
            .apply_scenario(admin(
                &gw,
                ApplyScenarioRequest {
                    name: scenario.into(),
                },
                Some(session),
            ))
            .await
            .unwrap();
    }

    let (a, b, none) = tokio::join!(
        lookup(&gw, Some("run-a"), None),
        lookup(&gw, Some("run-b"), None),
        lookup(&gw, None, None),
    );
    refusal(a, Code::NotFound, "NO_DATA");
    let denied = refusal(b, Code::PermissionDenied, "ACCESS_DENIED");
    assert_eq!(denied.message(), "доступ запрещён");
    assert_eq!(
        error_metadata(&denied, "registry_node").as_deref(),
        Some("gbdfl-2")
    );
    assert_eq!(
        error_metadata(&denied, "fault_id").as_deref(),
        Some("gbdfl-denies/deny")
    );
    assert_eq!(person_name(&none.unwrap()), "Серикбаев");

    // Each session saw exactly its own lookup.
    for session in ["run-a", "run-b"] {
        let verdict = verify(&gw, gbdfl_lookups_of_applicant(), 1, Some(session)).await;
        assert!(verdict.satisfied, "{}", verdict.explanation);
        assert_eq!(verdict.sample[0].session, session);
    }
    let all = verify(&gw, gbdfl_lookups_of_applicant(), 3, None).await;
    assert!(all.satisfied, "{}", all.explanation);
    let wrong = verify(&gw, gbdfl_lookups_of_applicant(), 2, Some("run-a")).await;
    assert!(!wrong.satisfied);
    assert!(
        wrong.explanation.contains("exactly 2") && wrong.explanation.contains("saw 1"),
        "{}",
        wrong.explanation
    );

    // Resetting one session leaves the other's setup alone.
    let reset = admin_client
        .reset(admin(&gw, ResetRequest {}, Some("run-a")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reset.fixture_documents_removed, 1);
    assert!(reset.exchanges_removed >= 2, "{reset:?}");
    assert_eq!(
        person_name(&lookup(&gw, Some("run-a"), None).await.unwrap()),
        "Серикбаев"
    );
    refusal(
        lookup(&gw, Some("run-b"), None).await,
        Code::PermissionDenied,
        "ACCESS_DENIED",
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn a_seeded_fault_rate_repeats_the_same_sequence() {
    let gw = TestGateway::start().await;
    let fault = Fault {
        target: target(fault_target::Target::Registry("gbdfl".into())),
        effect: error("UNAVAILABLE", "", ""),
        rate: 0.4,
        seed: 20261201,
        ..Fault::default()
    };
    let mut runs = Vec::new();
    for run in 0..2 {
        let session = format!("seeded-{run}");
        add_fault(&gw, fault.clone(), Some(&session)).await;
        let mut outcomes = Vec::new();
        for _ in 0..24 {
            outcomes.push(match lookup(&gw, Some(&session), None).await {
                Ok(_) => Code::Ok,
                Err(status) => {
                    assert_eq!(reason(&status), "INJECTED_FAULT", "{}", describe(&status));
                    status.code()
                }
            });
        }
        runs.push(outcomes);
    }
    assert_eq!(runs[0], runs[1], "the same seed gives the same sequence");
    let failures = runs[0].iter().filter(|code| **code != Code::Ok).count();
    assert!(
        (3..=18).contains(&failures),
        "{failures} of 24 failed at rate 0.4"
    );
    assert!(runs[0].contains(&Code::Unavailable));
    let listed = gw
        .admin()
        .list_faults(admin(&gw, ListFaultsRequest {}, Some("seeded-0")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.faults.len(), 1);
    assert_eq!(listed.faults[0].matched, 24);
    assert_eq!(listed.faults[0].fired, failures as u64);
    gw.shutdown().await;
}

#[tokio::test]
async fn a_hanging_registry_answers_at_the_callers_deadline() {
    let gw = TestGateway::start().await;
    add_fault(
        &gw,
        Fault {
            target: target(fault_target::Target::Registry("gbdfl".into())),
            effect: Some(fault::Effect::Hang(HangEffect { max_ms: 0 })),
            ..Fault::default()
        },
        Some("hang"),
    )
    .await;
    let started = Instant::now();
    let status = lookup(&gw, Some("hang"), Some(Duration::from_millis(400)))
        .await
        .unwrap_err();
    let waited = started.elapsed();
    assert_eq!(
        status.code(),
        Code::DeadlineExceeded,
        "{}",
        describe(&status)
    );
    assert!(
        waited >= Duration::from_millis(370),
        "answered after {waited:?}, before the deadline"
    );
    // The gateway itself gave up at the deadline: the registry hop is
    // journalled as DEADLINE_EXCEEDED, not left hanging (the hang's own
    // limit would have ended it as UNAVAILABLE).
    eventually(PATIENCE, async || {
        let found = gw
            .admin()
            .list_exchanges(admin(
                &gw,
                ListExchangesRequest {
                    filter: Some(ExchangeFilter {
                        hop: "registry".into(),
                        code: "DEADLINE_EXCEEDED".into(),
                        ..ExchangeFilter::default()
                    }),
                    limit: 10,
                },
                Some("hang"),
            ))
            .await
            .unwrap()
            .into_inner();
        if found.exchanges.len() == 1 && found.exchanges[0].duration_us >= 370_000 {
            Ok(())
        } else {
            Err(format!("{:?}", found.exchanges))
        }
    })
    .await;

    // Without a deadline the hang ends after its own limit, as UNAVAILABLE.
    add_fault(
        &gw,
        Fault {
            target: target(fault_target::Target::Registry("gbdfl".into())),
            effect: Some(fault::Effect::Hang(HangEffect { max_ms: 300 })),
            ..Fault::default()
        },
        Some("hang-no-deadline"),
    )
    .await;
    let started = Instant::now();
    let status = lookup(&gw, Some("hang-no-deadline"), None)
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{}", describe(&status));
    assert_eq!(reason(&status), "INJECTED_FAULT");
    assert!(started.elapsed() >= Duration::from_millis(300));
    gw.shutdown().await;
}

#[tokio::test]
async fn delays_sequences_and_limits_shape_what_callers_see() {
    let gw = TestGateway::start().await;
    // A service-level delay of 250 ms, twice only.
    let delayed = add_fault(
        &gw,
        Fault {
            target: target(fault_target::Target::Service(LOOKUP_SERVICE.into())),
            delay: Some(Delay {
                distribution: Some(delay::Distribution::FixedMs(250)),
            }),
            times: 2,
            ..Fault::default()
        },
        Some("slow"),
    )
    .await;
    assert!(!delayed.id.is_empty());
    let mut took = Vec::new();
    for _ in 0..3 {
        let started = Instant::now();
        lookup(&gw, Some("slow"), None).await.unwrap();
        took.push(started.elapsed());
    }
    assert!(took[0] >= Duration::from_millis(250), "{took:?}");
    assert!(took[1] >= Duration::from_millis(250), "{took:?}");
    // The third call was not delayed: the fault fired twice and is spent.
    let listed = gw
        .admin()
        .list_faults(admin(&gw, ListFaultsRequest {}, Some("slow")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.faults.len(), 1, "{:?}", listed.faults);
    assert_eq!(listed.faults[0].id, delayed.id);
    assert_eq!(listed.faults[0].fired, 2, "{:?}", listed.faults[0]);

    // A scenario sequence: the first call fails, the second succeeds.
    gw.admin()
        .put_scenario(gw.authorized(Scenario {
            name: "flaky-once".into(),
            faults: vec![Fault {
                id: "first".into(),
                target: target(fault_target::Target::Registry("gbdfl".into())),
                effect: error("UNAVAILABLE", "ГБД ФЛ временно недоступна", ""),
                times: 1,
                ..Fault::default()
            }],
            ..Scenario::default()
        }))
        .await
        .unwrap();
    gw.admin()
        .apply_scenario(admin(
            &gw,
            ApplyScenarioRequest {
                name: "flaky-once".into(),
            },
            Some("flaky"),
        ))
        .await
        .unwrap();
    let first = refusal(
        lookup(&gw, Some("flaky"), None).await,
        Code::Unavailable,
        "INJECTED_FAULT",
    );
    assert_eq!(first.message(), "ГБД ФЛ временно недоступна");
    lookup(&gw, Some("flaky"), None).await.unwrap();

    // A fault can be removed; an unknown one is NOT_FOUND.
    gw.admin()
        .delete_fault(admin(
            &gw,
            DeleteFaultRequest {
                id: delayed.id.clone(),
            },
            Some("slow"),
        ))
        .await
        .unwrap();
    refusal(
        gw.admin()
            .delete_fault(admin(
                &gw,
                DeleteFaultRequest { id: delayed.id },
                Some("slow"),
            ))
            .await,
        Code::NotFound,
        "TOOLKIT_NOT_FOUND",
    );
    // Bad faults are refused with the field.
    let bad = gw
        .admin()
        .add_fault(admin(
            &gw,
            Fault {
                target: target(fault_target::Target::Registry("gbdfl".into())),
                effect: error("TEAPOT", "", ""),
                ..Fault::default()
            },
            None,
        ))
        .await;
    let status = refusal(bad, Code::InvalidArgument, "INVALID_FIELD");
    assert_eq!(
        error_metadata(&status, "field").as_deref(),
        Some("error.code")
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn the_unused_report_names_what_a_test_never_touched() {
    let gw = TestGateway::start().await;
    let mut admin_client = gw.admin();
    admin_client
        .put_scenario(gw.authorized(Scenario {
            name: "never-applied".into(),
            ..Scenario::default()
        }))
        .await
        .unwrap();
    // A session document with two absent IINs; only one is looked up.
    admin_client
        .put_fixtures(admin(
            &gw,
            PutFixturesRequest {
                name: "two-absent.json".into(),
                json: format!(r#"{{"absent": {{"iins": ["{APPLICANT_IIN}", "791028302728"]}}}}"#),
            },
            Some("unused"),
        ))
        .await
        .unwrap();
    let idle = add_fault(
        &gw,
        Fault {
            target: target(fault_target::Target::Registry("enis".into())),
            effect: error("INTERNAL", "", ""),
            ..Fault::default()
        },
        Some("unused"),
    )
    .await;
    refusal(
        lookup(&gw, Some("unused"), None).await,
        Code::NotFound,
        "NO_DATA",
    );
    let report = admin_client
        .unused(admin(&gw, UnusedRequest {}, Some("unused")))
        .await
        .unwrap()
        .into_inner();
    let keys: Vec<&str> = report.fixtures.iter().map(|f| f.key.as_str()).collect();
    assert!(keys.contains(&"gbdfl:791028302728"), "{keys:?}");
    assert!(
        !keys.contains(&format!("gbdfl:{APPLICANT_IIN}").as_str()),
        "{keys:?}"
    );
    assert!(report.scenarios.contains(&"never-applied".to_owned()));
    assert_eq!(report.faults, vec![idle.id]);
    gw.shutdown().await;
}

#[tokio::test]
async fn routes_are_put_and_deleted_one_at_a_time() {
    let gw = TestGateway::start().await;
    let mut admin_client = gw.admin();
    let put = admin_client
        .put_route(
            gw.authorized(PutRouteRequest {
                toml: r#"
id = "GbdflInfoByIin_v9"
name_ru = "Сведения о физическом лице (v9)"
name_kk = "Жеке тұлға туралы мәліметтер (v9)"
kind = "lookup"
senders = ["pep", "is-con"]
channels = ["portal", "service-centre"]
registry = "gbdfl"
"#
                .into(),
            }),
        )
        .await
        .unwrap_or_else(|status| panic!("{}", describe(&status)))
        .into_inner();
    assert_eq!(put.registry, "gbdfl");
    let applicant = gw.applicant();
    let envelope = applicant
        .seal(&applicant.request("GbdflInfoByIin_v9", iin(APPLICANT_IIN)))
        .unwrap();
    let answer = gw.gateway().call(envelope).await.unwrap().into_inner();
    assert_eq!(person_name(&answer), "Серикбаев");

    let bad = admin_client
        .put_route(gw.authorized(PutRouteRequest {
            toml: "id = \"X\"\nname_ru = \"x\"\nname_kk = \"x\"\nkind = \"lookup\"\nsenders = [\"pep\"]\nchannels = [\"portal\"]\nregistry = \"nowhere\"\n".into(),
        }))
        .await;
    let status = refusal(bad, Code::InvalidArgument, "INVALID_FIELD");
    assert!(status.message().contains("nowhere"), "{}", status.message());
    // The table in force is unchanged by the refusal.
    admin_client
        .get_route(gw.authorized(GetRouteRequest {
            service_id: "GbdflInfoByIin_v9".into(),
        }))
        .await
        .unwrap();

    admin_client
        .delete_route(gw.authorized(DeleteRouteRequest {
            service_id: "GbdflInfoByIin_v9".into(),
        }))
        .await
        .unwrap();
    refusal(
        admin_client
            .get_route(gw.authorized(GetRouteRequest {
                service_id: "GbdflInfoByIin_v9".into(),
            }))
            .await,
        Code::NotFound,
        "UNKNOWN_SERVICE",
    );
    refusal(
        admin_client
            .delete_route(gw.authorized(DeleteRouteRequest {
                service_id: "GbdflInfoByIin_v9".into(),
            }))
            .await,
        Code::NotFound,
        "UNKNOWN_SERVICE",
    );
    // Without the credential nothing is changed.
    refusal(
        admin_client.add_fault(Request::new(Fault::default())).await,
        Code::Unauthenticated,
        "UNAUTHENTICATED",
    );
    gw.shutdown().await;
}

/// The demo applicant submits an application in `session`.
async fn submit_in(gw: &TestGateway, session: &str) -> String {
    let applicant = gw.applicant();
    let body = applicant.application(
        ESIL_SERVICE,
        iin(APPLICANT_IIN),
        r#"{"child_iin":"061211600012"}"#,
        Vec::new(),
    );
    let envelope = applicant.seal(&body).unwrap();
    gw.gateway()
        .submit(in_session(Request::new(envelope), Some(session)))
        .await
        .unwrap_or_else(|status| panic!("submit refused: {}", describe(&status)))
        .into_inner()
        .message_id
}

async fn subscribe_in(
    channel: tonic::transport::Channel,
    session: &str,
) -> Result<tonic::Streaming<shep_proto::provider::v1::SubscribeResponse>, Status> {
    let (uplink, outbound) = tokio::sync::mpsc::channel(8);
    uplink
        .send(SubscribeRequest {
            kind: Some(subscribe_request::Kind::Hello(hello(ESIL_PROVIDER, 4))),
        })
        .await
        .unwrap();
    // Keep the uplink open for the stream's life.
    std::mem::forget(uplink);
    let request = in_session(
        Request::new(tokio_stream::wrappers::ReceiverStream::new(outbound)),
        Some(session),
    );
    shep_proto::provider::v1::provider_client::ProviderClient::new(channel)
        .subscribe(request)
        .await
        .map(tonic::Response::into_inner)
}

/// The next delivery's message id, skipping the Welcome.
async fn next_delivered(
    stream: &mut tonic::Streaming<shep_proto::provider::v1::SubscribeResponse>,
) -> Result<(String, u32), Status> {
    use shep_proto::provider::v1::subscribe_response::Kind;
    loop {
        match next_within(stream, PATIENCE).await {
            Next::Item(item) => match item.kind {
                Some(Kind::Delivery(delivery)) => {
                    return Ok((delivery.message_id, delivery.attempt));
                }
                Some(Kind::Welcome(_)) => continue,
                other => panic!("unexpected {other:?}"),
            },
            Next::Failed(status) => return Err(status),
            other => panic!("expected a delivery, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn provider_faults_cut_and_drop_streams_and_nothing_is_lost() {
    let gw = TestGateway::builder().lease_ms(60_000).start().await;
    // Another session's subscriber sees nothing of this session's application.
    let mut other = subscribe_in(gw.channel(), "someone-else").await.unwrap();
    let message_id = submit_in(&gw, "providers").await;

    add_fault(
        &gw,
        Fault {
            target: target(fault_target::Target::Provider(ESIL_PROVIDER.into())),
            effect: Some(fault::Effect::CutStreamAfter(1)),
            times: 1,
            ..Fault::default()
        },
        Some("providers"),
    )
    .await;
    let mut cut = subscribe_in(gw.channel(), "providers").await.unwrap();
    assert_eq!(
        next_delivered(&mut cut).await.unwrap(),
        (message_id.clone(), 1)
    );
    let status = next_delivered(&mut cut).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{}", describe(&status));
    assert_eq!(reason(&status), "INJECTED_FAULT");

    // Next: the connection itself is dropped at the first delivery.
    add_fault(
        &gw,
        Fault {
            target: target(fault_target::Target::Provider(ESIL_PROVIDER.into())),
            effect: Some(fault::Effect::DropConnection(true)),
            times: 1,
            ..Fault::default()
        },
        Some("providers"),
    )
    .await;
    let own_channel = connect(&gw.url()).await;
    let dropped = subscribe_in(own_channel.clone(), "providers").await;
    if let Ok(mut stream) = dropped {
        let status = next_delivered(&mut stream).await.unwrap_err();
        assert!(
            matches!(
                status.code(),
                Code::Unavailable | Code::Unknown | Code::Internal
            ),
            "{}",
            describe(&status)
        );
    }

    // The request was never lost: a fresh connection gets it again.
    let mut fresh = subscribe_in(connect(&gw.url()).await, "providers")
        .await
        .unwrap();
    let (again, attempt) = next_delivered(&mut fresh).await.unwrap();
    assert_eq!(again, message_id);
    assert!(attempt >= 2, "attempt {attempt}");
    // The other session's subscriber, open all along, never held it: with
    // a 60 s lease it reached `cut` as attempt 1 and `fresh` after the drop.
    // Its stream has only its Welcome.
    match next_within(&mut other, PATIENCE).await {
        Next::Item(SubscribeResponse {
            kind: Some(subscribe_response::Kind::Welcome(_)),
        }) => {}
        unexpected => panic!("expected the other session's Welcome, got {unexpected:?}"),
    }
    if let Next::Item(item) = next_within(&mut other, Duration::ZERO).await {
        panic!("another session's subscriber got {item:?}");
    }
    // The deliveries are journalled under the submitting session.
    let delivered = verify(
        &gw,
        ExchangeFilter {
            hop: "delivery".into(),
            message_id: message_id.clone(),
            ..ExchangeFilter::default()
        },
        2,
        Some("providers"),
    )
    .await;
    assert!(delivered.count >= 2, "{}", delivered.explanation);
    gw.shutdown().await;
}

#[tokio::test]
async fn the_exchange_journal_is_bounded_and_can_be_switched_off() {
    let gw = TestGateway::builder()
        .configure(|config| config.toolkit.exchanges_capacity = 3)
        .start()
        .await;
    for _ in 0..3 {
        lookup(&gw, None, None).await.unwrap();
    }
    let listed = gw
        .admin()
        .list_exchanges(gw.authorized(ListExchangesRequest::default()))
        .await
        .unwrap()
        .into_inner();
    // Each call is two exchanges (ingress and registry): three were dropped.
    assert_eq!(listed.exchanges.len(), 3);
    assert_eq!(listed.dropped, 3);
    assert!(listed.recording);
    let ingress = &listed.exchanges[2];
    assert_eq!(ingress.rpc, "shep.gateway.v1.Gateway/Call");
    assert_eq!(ingress.code, "OK");
    assert_eq!(ingress.subject, APPLICANT_IIN);
    assert!(
        ingress
            .request
            .as_ref()
            .unwrap()
            .type_url
            .ends_with("SignedEnvelope")
    );
    assert!(
        ingress
            .response
            .as_ref()
            .unwrap()
            .type_url
            .ends_with("CallResponse")
    );
    gw.shutdown().await;

    let off = TestGateway::builder()
        .configure(|config| config.toolkit.exchanges = false)
        .start()
        .await;
    lookup(&off, None, None).await.unwrap();
    let listed = off
        .admin()
        .list_exchanges(off.authorized(ListExchangesRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert!(!listed.recording);
    assert!(listed.exchanges.is_empty());
    off.shutdown().await;
}

#[tokio::test]
async fn a_not_serving_fault_flips_the_registrys_health_while_in_force() {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;

    let gw = TestGateway::start().await;
    let status_of = async |name: &str| {
        HealthClient::new(gw.channel())
            .check(HealthCheckRequest {
                service: name.to_owned(),
            })
            .await
            .unwrap()
            .into_inner()
            .status()
    };
    let gbdul = "shep.registry.v1.Registry/gbdul";
    assert_eq!(status_of(gbdul).await, ServingStatus::Serving);
    let fault = add_fault(
        &gw,
        Fault {
            target: target(fault_target::Target::Registry("gbdul".into())),
            effect: Some(fault::Effect::NotServing(true)),
            ..Fault::default()
        },
        None,
    )
    .await;
    eventually(PATIENCE, async || match status_of(gbdul).await {
        ServingStatus::NotServing => Ok(()),
        other => Err(other),
    })
    .await;
    assert_eq!(
        status_of("shep.registry.v1.Registry/gbdfl").await,
        ServingStatus::Serving
    );
    gw.admin()
        .delete_fault(admin(&gw, DeleteFaultRequest { id: fault.id }, None))
        .await
        .unwrap();
    eventually(PATIENCE, async || match status_of(gbdul).await {
        ServingStatus::Serving => Ok(()),
        other => Err(other),
    })
    .await;

    // A windowed fault ends by itself.
    add_fault(
        &gw,
        Fault {
            target: target(fault_target::Target::Registry("gbdul".into())),
            effect: Some(fault::Effect::NotServing(true)),
            lasts_ms: 300,
            ..Fault::default()
        },
        None,
    )
    .await;
    eventually(PATIENCE, async || match status_of(gbdul).await {
        ServingStatus::NotServing => Ok(()),
        other => Err(other),
    })
    .await;
    eventually(PATIENCE, async || match status_of(gbdul).await {
        ServingStatus::Serving => Ok(()),
        other => Err(other),
    })
    .await;
    gw.shutdown().await;
}

#[tokio::test]
async fn scenario_files_load_at_start_and_a_provider_registers_then_refuses() {
    let dir = TempDir::new("shep-scenarios");
    let file = dir.path().join("provider-flaps.toml");
    std::fs::write(
        &file,
        format!(
            r#"
name = "provider-flaps"
description = "the provider registers once, then its subscriptions are refused"

[[faults]]
id = "registers"
target = {{ provider = "{ESIL_PROVIDER}" }}
pass = true
times = 1

[[faults]]
id = "refuses"
target = {{ provider = "{ESIL_PROVIDER}" }}
error = {{ code = "PERMISSION_DENIED", message = "provider refuses", reason = "PROVIDER_REFUSED" }}
"#
        ),
    )
    .unwrap();
    let gw = TestGateway::builder()
        .configure(|config| config.toolkit.scenarios = vec![file.clone()])
        .start()
        .await;
    let listed = gw
        .admin()
        .list_scenarios(gw.authorized(shep_proto::admin::v1::ListScenariosRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.scenarios.len(), 1);
    assert_eq!(listed.scenarios[0].faults.len(), 2);
    let applied = gw
        .admin()
        .apply_scenario(admin(
            &gw,
            ApplyScenarioRequest {
                name: "provider-flaps".into(),
            },
            Some("flaps"),
        ))
        .await
        .unwrap()
        .into_inner();
    let ids: Vec<&str> = applied.faults.iter().map(|f| f.id.as_str()).collect();
    assert_eq!(ids, ["provider-flaps/registers", "provider-flaps/refuses"]);

    let mut first = subscribe_in(gw.channel(), "flaps").await.unwrap();
    assert!(matches!(
        next_within(&mut first, PATIENCE).await,
        Next::Item(_)
    ));
    let refused = match subscribe_in(gw.channel(), "flaps").await {
        Err(status) => status,
        Ok(mut stream) => match next_within(&mut stream, PATIENCE).await {
            Next::Failed(status) => status,
            other => panic!("expected a refusal, got {other:?}"),
        },
    };
    assert_eq!(
        refused.code(),
        Code::PermissionDenied,
        "{}",
        describe(&refused)
    );
    assert_eq!(reason(&refused), "PROVIDER_REFUSED");
    // Other sessions' providers are not affected.
    let mut unaffected = subscribe_in(gw.channel(), "other").await.unwrap();
    assert!(matches!(
        next_within(&mut unaffected, PATIENCE).await,
        Next::Item(_)
    ));
    gw.shutdown().await;

    // A broken scenario file stops the start with its name.
    std::fs::write(&file, "name = \"x\"\n[[faults]]\nrate = \"often\"\n").unwrap();
    let error = TestGateway::builder()
        .configure(|config| config.toolkit.scenarios = vec![file.clone()])
        .try_start()
        .await
        .unwrap_err();
    assert!(
        format!("{error:#}").contains("provider-flaps.toml"),
        "{error:#}"
    );
}

#[tokio::test]
async fn a_dropped_connection_fails_the_call_and_the_next_connection_works() {
    let gw = TestGateway::start().await;
    add_fault(
        &gw,
        Fault {
            target: target(fault_target::Target::Service(LOOKUP_SERVICE.into())),
            effect: Some(fault::Effect::DropConnection(true)),
            times: 1,
            ..Fault::default()
        },
        Some("drop"),
    )
    .await;
    let applicant = gw.applicant();
    let envelope = applicant
        .seal(&applicant.request(LOOKUP_SERVICE, iin(APPLICANT_IIN)))
        .unwrap();
    let own = connect(&gw.url()).await;
    let status = shep_proto::gateway::v1::gateway_client::GatewayClient::new(own.clone())
        .call(in_session(Request::new(envelope.clone()), Some("drop")))
        .await
        .unwrap_err();
    // The connection is gone before any answer: the transport reports it.
    assert!(
        matches!(
            status.code(),
            Code::Unavailable | Code::Unknown | Code::Internal
        ),
        "{}",
        describe(&status)
    );
    assert_ne!(
        reason(&status),
        "INJECTED_FAULT",
        "no answer crossed the dropped connection"
    );
    // tonic reconnects; the fault is spent.
    let answer = eventually(PATIENCE, async || {
        shep_proto::gateway::v1::gateway_client::GatewayClient::new(own.clone())
            .call(in_session(Request::new(envelope.clone()), Some("drop")))
            .await
    })
    .await;
    assert_eq!(person_name(&answer.into_inner()), "Серикбаев");
    gw.shutdown().await;
}

#[tokio::test]
async fn session_fixture_documents_are_listed_replaced_and_deleted() {
    use shep_proto::admin::v1::{DeleteFixturesRequest, ListFixturesRequest};
    let gw = TestGateway::start().await;
    let mut admin_client = gw.admin();
    let absent = format!(r#"{{"absent": {{"iins": ["{APPLICANT_IIN}"]}}}}"#);
    let put = admin_client
        .put_fixtures(admin(
            &gw,
            PutFixturesRequest {
                name: "case.json".into(),
                json: absent,
            },
            Some("fx"),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(put.documents, ["case.json"]);
    assert_eq!(put.scope, "session fx");
    refusal(
        lookup(&gw, Some("fx"), None).await,
        Code::NotFound,
        "NO_DATA",
    );
    // Replaced under the same name by a document that marks someone else absent.
    admin_client
        .put_fixtures(admin(
            &gw,
            PutFixturesRequest {
                name: "case.json".into(),
                json: r#"{"absent": {"iins": ["791028302728"]}}"#.into(),
            },
            Some("fx"),
        ))
        .await
        .unwrap();
    lookup(&gw, Some("fx"), None).await.unwrap();
    // A broken document is refused and changes nothing.
    refusal(
        admin_client
            .put_fixtures(admin(
                &gw,
                PutFixturesRequest {
                    name: "broken.json".into(),
                    json: "{".into(),
                },
                Some("fx"),
            ))
            .await,
        Code::InvalidArgument,
        "INVALID_FIELD",
    );
    let listed = admin_client
        .list_fixtures(admin(&gw, ListFixturesRequest {}, Some("fx")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.documents, ["case.json"]);
    let global = admin_client
        .list_fixtures(admin(&gw, ListFixturesRequest {}, None))
        .await
        .unwrap()
        .into_inner();
    assert!(global.documents.is_empty());
    assert_eq!(global.scope, "global");
    let deleted = admin_client
        .delete_fixtures(admin(
            &gw,
            DeleteFixturesRequest {
                name: "case.json".into(),
            },
            Some("fx"),
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(deleted.documents.is_empty());
    refusal(
        admin_client
            .delete_fixtures(admin(
                &gw,
                DeleteFixturesRequest {
                    name: "case.json".into(),
                },
                Some("fx"),
            ))
            .await,
        Code::NotFound,
        "TOOLKIT_NOT_FOUND",
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn get_messages_with_a_session_takes_only_that_sessions_applications() {
    use shep_proto::provider::v1::GetMessagesRequest;
    let gw = TestGateway::start().await;
    let mine = submit_in(&gw, "pull-a").await;
    let theirs = submit_in(&gw, "pull-b").await;
    let pull = |session: &'static str| {
        let request = in_session(
            Request::new(GetMessagesRequest {
                provider_id: ESIL_PROVIDER.into(),
                amount: 10,
                ..GetMessagesRequest::default()
            }),
            Some(session),
        );
        let mut client = gw.provider_client();
        async move { client.get_messages(request).await.unwrap().into_inner() }
    };
    let got: Vec<String> = pull("pull-a")
        .await
        .messages
        .into_iter()
        .map(|message| message.message_id)
        .collect();
    assert_eq!(got, [mine]);
    let got: Vec<String> = pull("pull-b")
        .await
        .messages
        .into_iter()
        .map(|message| message.message_id)
        .collect();
    assert_eq!(got, [theirs]);
    gw.shutdown().await;
}

#[tokio::test]
async fn shep_send_carries_a_session() {
    let gw = TestGateway::start().await;
    add_fault(
        &gw,
        Fault {
            target: target(fault_target::Target::Registry("gbdfl".into())),
            effect: error("UNAVAILABLE", "ГБД ФЛ недоступна", ""),
            ..Fault::default()
        },
        Some("cli"),
    )
    .await;
    let data_dir = gw.data_dir().0.to_str().unwrap().to_owned();
    let send = |session: Option<&'static str>| {
        let url = gw.url();
        let data_dir = data_dir.clone();
        async move {
            let mut args = vec![
                "send".to_owned(),
                "--service".to_owned(),
                LOOKUP_SERVICE.to_owned(),
                "--subject".to_owned(),
                APPLICANT_IIN.to_owned(),
                "--gateway".to_owned(),
                url,
                "--data-dir".to_owned(),
                data_dir,
            ];
            if let Some(session) = session {
                args.extend(["--session".to_owned(), session.to_owned()]);
            }
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            run_shep(&args).await
        }
    };
    let faulted = send(Some("cli")).await;
    assert!(!faulted.status.success(), "{}", faulted.stdout);
    assert!(
        faulted.stderr.contains("INJECTED_FAULT"),
        "{}",
        faulted.stderr
    );
    let plain = send(None).await;
    assert!(plain.ok().contains("Серикбаев"), "{}", plain.stdout);
    gw.shutdown().await;
}
