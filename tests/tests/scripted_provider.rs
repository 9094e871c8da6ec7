//! Scripted providers over the socket (the library's `run_script`, and
//! `shep provider --script` against `shep serve`), and the faults that act
//! on each delivery: duplicated, corrupted, held, ack dropped.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use prost::Message as _;
use shep::client::{ProviderStep, TrustAnchors};
use shep::script::{RunOptions, Script, run_script};
use shep_proto::admin::v1::{Delay, Fault, FaultTarget, delay, fault, fault_target};
use shep_proto::envelope::v1::{ApplicationStatus, Body};
use shep_proto::gateway::v1::{Application, MessageState};
use shep_proto::provider::v1::{GetMessagesRequest, ReceiveStatus, ResendMessage};
use shep_tests::*;
use tokio::sync::mpsc;

const LEASE_MS: u64 = 400;

fn script(text: &str) -> Arc<Script> {
    Arc::new(Script::parse(text, "test script", Path::new(".")).expect("a valid script"))
}

/// Plays `script` as the Esil provider on the test gateway; its narration.
fn play(
    gw: &TestGateway,
    script: Arc<Script>,
    time_factor: f64,
    verify: Option<TrustAnchors>,
) -> (
    tokio::task::JoinHandle<anyhow::Result<()>>,
    mpsc::UnboundedReceiver<ProviderStep>,
) {
    let (steps_tx, steps) = mpsc::unbounded_channel();
    let task = tokio::spawn(run_script(
        gw.channel(),
        gw.provider(ESIL_PROVIDER),
        script,
        RunOptions {
            time_factor,
            verify,
            steps: Some(steps_tx),
            ..RunOptions::default()
        },
    ));
    (task, steps)
}

/// Waits until application `id` reaches `status`; returns it.
async fn reaches(gw: &TestGateway, id: &str, status: ApplicationStatus) -> Application {
    eventually(PATIENCE, async || {
        let application = gw.status(id).await;
        // Its event is published a moment after the status changes.
        let published = application.events.last().map(|event| event.status());
        if application.status() == status && published == Some(status) {
            Ok(application)
        } else {
            Err(application.status())
        }
    })
    .await
}

fn statuses(application: &Application) -> Vec<ApplicationStatus> {
    application
        .events
        .iter()
        .map(|event| event.status())
        .collect()
}

/// The narration so far, without waiting.
fn narrated(steps: &mut mpsc::UnboundedReceiver<ProviderStep>) -> Vec<String> {
    let mut said = Vec::new();
    while let Ok(step) = steps.try_recv() {
        said.push(step.what);
    }
    said
}

fn provider_fault(effect: fault::Effect, delay_ms: Option<u32>) -> Fault {
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

async fn add_fault(gw: &TestGateway, fault: Fault) {
    gw.admin()
        .add_fault(gw.authorized(fault))
        .await
        .unwrap_or_else(|status| panic!("AddFault refused: {}", describe(&status)));
}

async fn short_lease_gateway() -> TestGateway {
    TestGateway::builder().lease_ms(LEASE_MS).start().await
}

const TERM_EXTENDED: &str = r#"
[services.default]
[[services.default.steps]]
status = "REGISTERED"
registration_number = "ЕСЛ-{seq}"
term = "5 working-days"
delay = "1m"
[[services.default.steps]]
status = "IN_WORK"
delay = "1m"
[[services.default.steps]]
status = "TERM_EXTENDED"
term = "15 working-days"
notification = "Срок продлен: нужен ответ другого органа"
delay = "1m"
[[services.default.steps]]
status = "IN_WORK"
delay = "1m"
[[services.default.steps]]
status = "COMPLETED"
delay = "1m"
document = { name = "spravka.txt", text = "Справка {registration_number} по заявке {message_id}" }
"#;

#[tokio::test]
async fn a_scripted_provider_extends_the_term_then_completes() {
    let gw = TestGateway::start().await;
    // Five steps of a scripted minute each, at 600 times: 100 ms each.
    let (provider, mut steps) = play(&gw, script(TERM_EXTENDED), 600.0, None);
    let started = Instant::now();
    let submitted = gw.submit_application().await;
    let id = submitted.receipt.message_id.clone();
    let application = reaches(&gw, &id, ApplicationStatus::Completed).await;
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "five scripted minutes at ×600 took {:?}",
        started.elapsed()
    );
    assert_eq!(
        statuses(&application),
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
    assert_eq!(application.registration_number, "ЕСЛ-1");
    let event = |status| {
        application
            .events
            .iter()
            .find(|event| event.status() == status)
            .expect("the event")
    };
    let registered = to_time(
        event(ApplicationStatus::Registered)
            .expected_at
            .as_ref()
            .unwrap(),
    );
    let extended = event(ApplicationStatus::TermExtended);
    assert_eq!(
        extended.notification,
        "Срок продлен: нужен ответ другого органа"
    );
    let extended_to = to_time(extended.expected_at.as_ref().unwrap());
    assert!(
        extended_to >= registered + time::Duration::days(14),
        "{registered} -> {extended_to}"
    );
    let result = event(ApplicationStatus::Completed)
        .result
        .clone()
        .expect("the result document");
    assert_eq!(result.name, "spravka.txt");
    assert_eq!(
        String::from_utf8(result.content.clone()).unwrap(),
        format!("Справка ЕСЛ-1 по заявке {id}")
    );
    let anchors = TrustAnchors::from_nuc_dir(&gw.data_dir().nuc()).unwrap();
    anchors
        .verify_document(&result)
        .expect("signed by the provider's key");
    let said = narrated(&mut steps);
    for expected in [
        "acknowledged: accepted",
        "reported TERM_EXTENDED",
        "reported COMPLETED",
    ] {
        assert!(
            said.iter().any(|what| what == expected),
            "{expected}: {said:?}"
        );
    }
    provider.abort();
}

#[tokio::test]
async fn a_scripted_provider_returns_a_service_centre_application_to_the_centre() {
    let gw = TestGateway::start().await;
    let (provider, _steps) = play(
        &gw,
        script(
            r#"
[services."guardianship-certificate-esil"]
[[services."guardianship-certificate-esil".steps]]
status = "REGISTERED"
registration_number = "ЦОН-{seq}"
[[services."guardianship-certificate-esil".steps]]
status = "RETURNED_TO_CENTRE"
reason = "нет копии удостоверения"
"#,
        ),
        1.0,
        None,
    );
    let operator = gw.operator();
    let body = operator.request(ESIL_SERVICE, iin(APPLICANT_IIN));
    let receipt = gw
        .gateway()
        .submit(operator.seal(&body).unwrap())
        .await
        .expect("the operator applies on the applicant's behalf")
        .into_inner();
    let application = reaches(
        &gw,
        &receipt.message_id,
        ApplicationStatus::ReturnedToCentre,
    )
    .await;
    assert_eq!(
        statuses(&application),
        [
            ApplicationStatus::Accepted,
            ApplicationStatus::Delivered,
            ApplicationStatus::Registered,
            ApplicationStatus::ReturnedToCentre,
        ]
    );
    let returned = application.events.last().unwrap();
    assert_eq!(returned.reason, "нет копии удостоверения");
    assert_eq!(returned.reported_by, ESIL_PROVIDER);
    assert_eq!(application.registration_number, "ЦОН-1");
    provider.abort();
}

#[tokio::test]
async fn shep_provider_plays_a_shipped_script_against_shep_serve() {
    let dir = TempDir::new("shep-script-cli");
    let data = dir.path().join("data");
    let addr: std::net::SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let server = ShepServe::start(addr, &data, &dir.path().join("serve.log")).await;
    let script = workspace_root().join("shep/scripts/term-extended.toml");
    // 3 h 17 min of scripted steps at ×20000: about 0.6 s.
    let binary = tokio::task::spawn_blocking(shep_binary).await.unwrap();
    let output = dir.path().join("provider.out");
    let mut provider = std::process::Command::new(binary)
        .args(["provider", "--gateway", &server.url(), "--data-dir"])
        .arg(&data)
        .arg("--script")
        .arg(&script)
        .args(["--time-factor", "20000"])
        .env("SHEP_LOG", "error")
        .stdout(std::fs::File::create(&output).unwrap())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("starting shep provider");

    let applicant = applicant_of(&data);
    let body = applicant.application(
        ESIL_SERVICE,
        iin(APPLICANT_IIN),
        r#"{"child_iin":"061211600012"}"#,
        Vec::new(),
    );
    let channel = connect(&server.url()).await;
    let mut gateway = shep_proto::gateway::v1::gateway_client::GatewayClient::new(channel);
    let receipt = gateway
        .submit(applicant.seal(&body).unwrap())
        .await
        .unwrap_or_else(|status| panic!("submit refused: {}", describe(&status)))
        .into_inner();
    let application = eventually(PATIENCE, async || {
        let application = gateway
            .get_status(shep_proto::gateway::v1::GetStatusRequest {
                message_id: receipt.message_id.clone(),
            })
            .await
            .map(tonic::Response::into_inner)
            .map_err(|status| describe(&status))?;
        let published = application.events.last().map(|event| event.status());
        if published == Some(ApplicationStatus::Completed) {
            Ok(application)
        } else {
            Err(format!("{:?}", application.status()))
        }
    })
    .await;
    let _ = provider.kill();
    let _ = tokio::task::spawn_blocking(move || provider.wait()).await;
    assert_eq!(
        statuses(&application),
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
    assert_eq!(application.registration_number, "ЕСЛ-1");
    let printed = std::fs::read_to_string(&output).unwrap();
    assert!(printed.contains("time factor 20000"), "{printed}");
    assert!(
        printed.contains(&format!(
            "{} {ESIL_SERVICE}: reported COMPLETED",
            receipt.message_id
        )),
        "{printed}"
    );
}

#[tokio::test]
async fn shep_provider_refuses_a_bad_script_naming_the_line_and_exits_non_zero() {
    let dir = TempDir::new("shep-script-bad");
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[services.default]\n[[services.default.steps]]\nstatus = \"REGISTERED\"\ndelay = \"soon\"\n",
    )
    .unwrap();
    let run = run_shep(&["provider", "--script", bad.to_str().unwrap(), "--check"]).await;
    assert!(!run.status.success(), "accepted: {}", run.stdout);
    assert!(run.stderr.contains("line 4"), "{}", run.stderr);
    assert!(
        run.stderr.contains("`soon` is not a duration"),
        "{}",
        run.stderr
    );
    let good = workspace_root().join("shep/scripts/realistic.toml");
    let run = run_shep(&["provider", "--script", good.to_str().unwrap(), "--check"]).await;
    assert!(run.ok().contains("ok, services: default"), "{}", run.stdout);
}

#[tokio::test]
async fn a_duplicated_delivery_arrives_twice_and_one_ack_settles_it() {
    let gw = short_lease_gateway().await;
    add_fault(
        &gw,
        provider_fault(fault::Effect::DuplicateDelivery(true), None),
    )
    .await;
    let mut subscription = gw.subscribe(ESIL_PROVIDER, 4).await;
    let id = gw.submit_application().await.receipt.message_id;
    let first = subscription.next_delivery().await;
    let second = subscription.next_delivery().await;
    assert_eq!((first.message_id.as_str(), first.attempt), (id.as_str(), 1));
    assert_eq!(
        (second.message_id.as_str(), second.attempt),
        (id.as_str(), 1)
    );
    assert_eq!(first.envelope, second.envelope);
    subscription.accept(&id).await;
    delivery_state_becomes(&gw, &id, MessageState::Delivered).await;
    // Nothing more, well past the lease.
    match subscription
        .next_within(Duration::from_millis(LEASE_MS * 3))
        .await
    {
        Next::TimedOut => {}
        other => panic!("after the ack: {other:?}"),
    }
    assert_eq!(gw.delivered_attempts(&id).await, [1, 1]);
}

#[tokio::test]
async fn a_duplicated_pull_lists_the_request_twice_and_one_acknowledge_settles_it() {
    let gw = short_lease_gateway().await;
    add_fault(
        &gw,
        provider_fault(fault::Effect::DuplicateDelivery(true), None),
    )
    .await;
    let id = gw.submit_application().await.receipt.message_id;
    let pulled = gw
        .provider_client()
        .get_messages(GetMessagesRequest {
            provider_id: ESIL_PROVIDER.to_owned(),
            amount: 10,
            ..GetMessagesRequest::default()
        })
        .await
        .unwrap()
        .into_inner()
        .messages;
    let ids: Vec<&str> = pulled.iter().map(|m| m.message_id.as_str()).collect();
    assert_eq!(ids, [id.as_str(), id.as_str()]);
    gw.provider_client()
        .acknowledge(ack(
            ESIL_PROVIDER,
            &id,
            ReceiveStatus::MessageAccepted,
            ResendMessage::Unspecified,
            "",
        ))
        .await
        .expect("the ack");
    tokio::time::sleep(Duration::from_millis(LEASE_MS * 3)).await;
    let again = gw
        .provider_client()
        .get_messages(GetMessagesRequest {
            provider_id: ESIL_PROVIDER.to_owned(),
            ..GetMessagesRequest::default()
        })
        .await
        .unwrap()
        .into_inner()
        .messages;
    assert!(again.is_empty(), "{again:?}");
    delivery_state_becomes(&gw, &id, MessageState::Delivered).await;
}

#[tokio::test]
async fn a_dropped_ack_brings_the_request_back_with_attempt_two() {
    let gw = short_lease_gateway().await;
    add_fault(&gw, provider_fault(fault::Effect::DropAck(true), None)).await;
    let mut subscription = gw.subscribe(ESIL_PROVIDER, 4).await;
    let id = gw.submit_application().await.receipt.message_id;
    let first = subscription.next_delivery().await;
    assert_eq!((first.message_id.as_str(), first.attempt), (id.as_str(), 1));
    subscription.accept(&id).await;
    let again = subscription.next_delivery().await;
    assert_eq!((again.message_id.as_str(), again.attempt), (id.as_str(), 2));
    subscription.accept(&id).await;
    delivery_state_becomes(&gw, &id, MessageState::Delivered).await;
    match subscription
        .next_within(Duration::from_millis(LEASE_MS * 3))
        .await
    {
        Next::TimedOut => {}
        other => panic!("after the second ack: {other:?}"),
    }
    assert_eq!(gw.delivered_attempts(&id).await, [1, 2]);
}

#[tokio::test]
async fn a_dropped_acknowledge_answers_ok_and_the_pull_gets_attempt_two() {
    let gw = short_lease_gateway().await;
    add_fault(&gw, provider_fault(fault::Effect::DropAck(true), None)).await;
    let id = gw.submit_application().await.receipt.message_id;
    let pull = || GetMessagesRequest {
        provider_id: ESIL_PROVIDER.to_owned(),
        ..GetMessagesRequest::default()
    };
    let acknowledge = || {
        ack(
            ESIL_PROVIDER,
            &id,
            ReceiveStatus::MessageAccepted,
            ResendMessage::Unspecified,
            "",
        )
    };
    let first = gw
        .provider_client()
        .get_messages(pull())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.messages[0].attempt, 1);
    gw.provider_client()
        .acknowledge(acknowledge())
        .await
        .expect("a dropped ack still answers OK");
    let again = eventually(PATIENCE, async || {
        let pulled = gw
            .provider_client()
            .get_messages(pull())
            .await
            .unwrap()
            .into_inner()
            .messages;
        pulled.into_iter().next().ok_or("nothing yet")
    })
    .await;
    assert_eq!((again.message_id.as_str(), again.attempt), (id.as_str(), 2));
    gw.provider_client()
        .acknowledge(acknowledge())
        .await
        .unwrap();
    delivery_state_becomes(&gw, &id, MessageState::Delivered).await;
}

#[tokio::test]
async fn a_corrupted_delivery_fails_the_provider_s_signature_check_and_the_next_passes() {
    let gw = short_lease_gateway().await;
    add_fault(
        &gw,
        provider_fault(fault::Effect::CorruptDelivery(true), None),
    )
    .await;
    let anchors = TrustAnchors::from_nuc_dir(&gw.data_dir().nuc()).unwrap();
    let mut subscription = gw.subscribe(ESIL_PROVIDER, 4).await;
    let submitted = gw.submit_application().await;
    let id = submitted.receipt.message_id.clone();
    anchors
        .verify_envelope(&submitted.envelope)
        .expect("the envelope as signed verifies");
    let corrupted = subscription.next_delivery().await;
    let envelope = corrupted.envelope.unwrap();
    // The body is untouched: it still decodes; the signature does not verify.
    assert_eq!(envelope.body, submitted.envelope.body);
    assert_eq!(
        Body::decode(envelope.body.as_slice()).unwrap().message_id,
        id
    );
    let error = anchors.verify_envelope(&envelope).unwrap_err();
    assert_eq!(error.reason().as_str_name(), "SIGNATURE_INVALID", "{error}");
    subscription
        .reject(&id, ResendMessage::Resend, "signature check failed")
        .await;
    let again = subscription.next_delivery().await;
    assert_eq!(again.attempt, 2);
    anchors
        .verify_envelope(again.envelope.as_ref().unwrap())
        .expect("the redelivery is as signed");
}

#[tokio::test]
async fn a_checking_scripted_provider_refuses_a_corrupted_delivery_and_completes_the_resend() {
    let gw = short_lease_gateway().await;
    add_fault(
        &gw,
        provider_fault(fault::Effect::CorruptDelivery(true), None),
    )
    .await;
    let anchors = TrustAnchors::from_nuc_dir(&gw.data_dir().nuc()).unwrap();
    let (provider, mut steps) = play(
        &gw,
        Arc::new(shep::script::ProviderRule::Complete.script(Duration::ZERO)),
        1.0,
        Some(anchors),
    );
    let id = gw.submit_application().await.receipt.message_id;
    reaches(&gw, &id, ApplicationStatus::Completed).await;
    let said = narrated(&mut steps);
    assert!(
        said.iter().any(
            |what| what.starts_with("signature check failed (SIGNATURE_INVALID)")
                && what.ends_with("not accepted, resend asked")
        ),
        "{said:?}"
    );
    assert!(
        said.iter().any(|what| what == "received (attempt 2)"),
        "{said:?}"
    );
    provider.abort();
}

#[tokio::test]
async fn a_held_delivery_arrives_no_sooner_than_the_fault_s_delay() {
    let gw = TestGateway::start().await;
    add_fault(
        &gw,
        provider_fault(fault::Effect::DelayDelivery(true), Some(700)),
    )
    .await;
    let mut subscription = gw.subscribe(ESIL_PROVIDER, 4).await;
    let started = Instant::now();
    let id = gw.submit_application().await.receipt.message_id;
    let delivery = subscription.next_delivery().await;
    assert_eq!(delivery.message_id, id);
    assert!(
        started.elapsed() >= Duration::from_millis(700),
        "delivered after {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_held_pull_answers_no_sooner_than_the_fault_s_delay() {
    let gw = TestGateway::start().await;
    add_fault(
        &gw,
        provider_fault(fault::Effect::DelayDelivery(true), Some(700)),
    )
    .await;
    let pulled_id = gw.submit_application().await.receipt.message_id;
    let started = Instant::now();
    let pulled = gw
        .provider_client()
        .get_messages(GetMessagesRequest {
            provider_id: ESIL_PROVIDER.to_owned(),
            ..GetMessagesRequest::default()
        })
        .await
        .unwrap()
        .into_inner()
        .messages;
    assert!(
        started.elapsed() >= Duration::from_millis(700),
        "answered after {:?}",
        started.elapsed()
    );
    assert_eq!(pulled.len(), 1);
    assert_eq!(pulled[0].message_id, pulled_id);
}

#[tokio::test]
async fn shep_faults_adds_lists_and_refuses_delivery_faults() {
    let gw = TestGateway::start().await;
    let url = gw.url();
    let token = gw.admin_token().to_owned();
    let common = ["--gateway", url.as_str(), "--token", token.as_str()];
    let add = |extra: &[&str]| {
        let mut args = vec!["faults", "add"];
        args.extend_from_slice(&common);
        args.extend_from_slice(extra);
        args.into_iter().map(str::to_owned).collect::<Vec<_>>()
    };
    let args = add(&[
        "--provider",
        ESIL_PROVIDER,
        "--effect",
        "drop-ack",
        "--times",
        "1",
    ]);
    let run = run_shep(&args.iter().map(String::as_str).collect::<Vec<_>>()).await;
    assert!(run.ok().contains("DropAck"), "{}", run.stdout);
    let listed = gw
        .admin()
        .list_faults(gw.authorized(shep_proto::admin::v1::ListFaultsRequest {}))
        .await
        .unwrap()
        .into_inner()
        .faults;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].effect, Some(fault::Effect::DropAck(true)));
    assert_eq!(listed[0].times, 1);

    let args = add(&["--service", ESIL_SERVICE, "--effect", "duplicate-delivery"]);
    let run = run_shep(&args.iter().map(String::as_str).collect::<Vec<_>>()).await;
    assert!(!run.status.success(), "{}", run.stdout);
    assert!(run.stderr.contains("duplicate_delivery"), "{}", run.stderr);
    let args = add(&["--provider", ESIL_PROVIDER, "--effect", "delay-delivery"]);
    let run = run_shep(&args.iter().map(String::as_str).collect::<Vec<_>>()).await;
    assert!(run.stderr.contains("delay_delivery"), "{}", run.stderr);

    let mut args = vec!["faults", "list"];
    args.extend_from_slice(&common);
    let run = run_shep(&args).await;
    assert!(run.ok().contains("1 fault(s)"), "{}", run.stdout);
}

#[tokio::test]
async fn shep_serve_simulates_a_provider_in_process_from_its_script() {
    let dir = TempDir::new("shep-serve-simulate");
    let data = dir.path().join("data");
    let addr: std::net::SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let script = workspace_root().join("shep/scripts/term-extended.toml");
    let simulate = format!("{ESIL_PROVIDER}={}", script.display());
    let server = ShepServe::start_with(
        addr,
        &data,
        &dir.path().join("serve.log"),
        &[],
        &["--simulate", &simulate, "--simulate-factor", "20000"],
    )
    .await;

    // No provider process: the gateway's own simulated provider answers.
    let applicant = applicant_of(&data);
    let body = applicant.application(ESIL_SERVICE, iin(APPLICANT_IIN), "{}", Vec::new());
    let channel = connect(&server.url()).await;
    let mut gateway = shep_proto::gateway::v1::gateway_client::GatewayClient::new(channel);
    let receipt = gateway
        .submit(applicant.seal(&body).unwrap())
        .await
        .unwrap_or_else(|status| panic!("submit refused: {}", describe(&status)))
        .into_inner();
    let application = eventually(PATIENCE, async || {
        let application = gateway
            .get_status(shep_proto::gateway::v1::GetStatusRequest {
                message_id: receipt.message_id.clone(),
            })
            .await
            .map(tonic::Response::into_inner)
            .map_err(|status| describe(&status))?;
        match application.events.last().map(|event| event.status()) {
            Some(ApplicationStatus::Completed) => Ok(application),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    assert_eq!(
        statuses(&application),
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
    assert!(
        server.log().contains("simulated provider"),
        "{}",
        server.log()
    );
}

#[tokio::test]
async fn shep_serve_refuses_a_bad_simulation_before_it_listens() {
    let dir = TempDir::new("shep-serve-simulate-bad");
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[services.default]\n[[services.default.steps]]\nstatus = \"DONE\"\n",
    )
    .unwrap();
    let run = run_shep(&[
        "serve",
        "--insecure",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        dir.path().join("data").to_str().unwrap(),
        "--simulate",
        &format!("{ESIL_PROVIDER}={}", bad.display()),
    ])
    .await;
    assert!(!run.status.success());
    assert!(run.stderr.contains("DONE"), "{}", run.stderr);
}
