//! The conformance kits' verdicts: the reference provider passes every
//! case, each deliberately broken provider fails exactly its cases, and
//! `shep conformance provider` gates with its exit code and JUnit XML that
//! a standard XML parser reads.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use shep::client::{TrustAnchors, iin};
use shep::conformance::provider::{Admin, CASES, Options, ProviderKit};
use shep::script::{Misbehaviour, ProviderRule, RunOptions, run_script};
use shep_tests::*;

/// Each reported step of the reference provider waits this long.
const STEP: Duration = Duration::from_millis(100);

fn anchors(gw: &TestGateway) -> TrustAnchors {
    TrustAnchors::from_nuc_dir(&gw.data_dir().nuc()).expect("the test НУЦ")
}

/// Plays the built-in `complete` rule as the Esil provider, with `options`.
fn provider(gw: &TestGateway, step: Duration, options: RunOptions) -> tokio::task::JoinHandle<()> {
    let channel = gw.channel();
    let participant = gw.provider(ESIL_PROVIDER);
    tokio::spawn(async move {
        let script = std::sync::Arc::new(ProviderRule::Complete.script(step));
        let _ = run_script(channel, participant, script, options).await;
    })
}

/// Runs the provider kit against the Esil provider; the names of the cases
/// that failed, with the report's text for the assertion message.
async fn grade(gw: &TestGateway) -> (BTreeSet<&'static str>, String) {
    let kit = ProviderKit {
        gateway: gw.channel(),
        admin: Admin {
            channel: gw.channel(),
            token: Some(gw.admin_token().to_owned()),
        },
        applicant: gw.applicant(),
        anchors: anchors(gw),
        provider_id: ESIL_PROVIDER.to_owned(),
        service_id: ESIL_SERVICE.to_owned(),
        subject: iin(APPLICANT_IIN),
        options: Options {
            case_timeout: Duration::from_secs(12),
            quiet: Duration::from_millis(800),
            burst: 8,
            deadline_in: Duration::from_secs(3),
            only: Vec::new(),
        },
    };
    let report = kit.run().await.expect("the kit runs");
    assert_eq!(report.outcomes.len(), CASES.len());
    let text = report.text(false);
    (report.failed().into_iter().collect(), text)
}

async fn gateway() -> TestGateway {
    // Fewer in flight than the burst, so the burst really queues.
    TestGateway::builder().max_in_flight(4).start().await
}

#[tokio::test]
async fn the_reference_provider_passes_every_case() {
    let gw = gateway().await;
    let _provider = provider(
        &gw,
        STEP,
        RunOptions {
            verify: Some(anchors(&gw)),
            max_in_flight: 4,
            ..RunOptions::default()
        },
    );
    let (failed, text) = grade(&gw).await;
    assert!(failed.is_empty(), "{text}");
}

#[tokio::test]
async fn a_provider_that_skips_registration_fails_the_lifecycle_and_its_deadline() {
    let gw = gateway().await;
    let _provider = provider(
        &gw,
        STEP,
        RunOptions {
            verify: Some(anchors(&gw)),
            max_in_flight: 4,
            misbehave: Some(Misbehaviour::SkipRegistration),
            ..RunOptions::default()
        },
    );
    let (failed, text) = grade(&gw).await;
    assert_eq!(
        failed,
        BTreeSet::from(["delivery", "burst", "deadline"]),
        "{text}"
    );
    assert!(text.contains("INVALID_STATUS_TRANSITION"), "{text}");
}

#[tokio::test]
async fn a_provider_that_forgets_deliveries_fails_the_redelivery_cases() {
    let gw = gateway().await;
    let _provider = provider(
        &gw,
        STEP,
        RunOptions {
            verify: Some(anchors(&gw)),
            max_in_flight: 4,
            misbehave: Some(Misbehaviour::ForgetDeliveries),
            ..RunOptions::default()
        },
    );
    let (failed, text) = grade(&gw).await;
    assert_eq!(
        failed,
        BTreeSet::from(["lost-ack", "duplicate", "lease-expiry"]),
        "{text}"
    );
    assert!(text.contains("processed twice"), "{text}");
}

#[tokio::test]
async fn a_provider_that_does_not_verify_fails_the_corrupt_case() {
    let gw = gateway().await;
    let _provider = provider(
        &gw,
        STEP,
        RunOptions {
            verify: None,
            max_in_flight: 4,
            ..RunOptions::default()
        },
    );
    let (failed, text) = grade(&gw).await;
    assert_eq!(failed, BTreeSet::from(["corrupt"]), "{text}");
}

#[tokio::test]
async fn a_slow_provider_fails_the_deadline_case() {
    let gw = gateway().await;
    // Three steps of 1.2 s: the term passes in 3 s on the session's clock.
    let _provider = provider(
        &gw,
        Duration::from_millis(1200),
        RunOptions {
            verify: Some(anchors(&gw)),
            max_in_flight: 4,
            ..RunOptions::default()
        },
    );
    let (failed, text) = grade(&gw).await;
    assert_eq!(failed, BTreeSet::from(["deadline"]), "{text}");
    assert!(text.contains("overdue"), "{text}");
}

/// A provider that pulls (GetMessages / Acknowledge) instead of
/// subscribing, and works each request once: verified, acknowledged,
/// registered, completed with a signed result.
async fn pulling_provider(
    mut client: shep_proto::provider::v1::provider_client::ProviderClient<
        tonic::transport::Channel,
    >,
    participant: shep::client::Participant,
    anchors: TrustAnchors,
) {
    use prost::Message as _;
    use shep_proto::envelope::v1::{ApplicationStatus, Body, StatusReport};
    use shep_proto::provider::v1::{Ack, GetMessagesRequest, ReceiveStatus, ResendMessage};
    let participant = std::sync::Arc::new(participant);
    let mut worked = std::collections::HashSet::new();
    loop {
        let messages = match client
            .get_messages(GetMessagesRequest {
                provider_id: ESIL_PROVIDER.to_owned(),
                amount: 10,
                ..GetMessagesRequest::default()
            })
            .await
        {
            Ok(answer) => answer.into_inner().messages,
            Err(_) => Vec::new(),
        };
        for message in messages {
            let envelope = message.envelope.clone().unwrap_or_default();
            let verified = anchors.verify_envelope(&envelope).is_ok();
            let (status, resend) = if verified {
                (ReceiveStatus::MessageAccepted, ResendMessage::Unspecified)
            } else {
                (ReceiveStatus::MessageNotAccepted, ResendMessage::Resend)
            };
            let _ = client
                .acknowledge(Ack {
                    message_id: message.message_id.clone(),
                    receive_status: status as i32,
                    resend: resend as i32,
                    error_message: String::new(),
                    provider_id: ESIL_PROVIDER.to_owned(),
                })
                .await;
            if !verified || !worked.insert(message.message_id.clone()) {
                continue;
            }
            let body = Body::decode(envelope.body.as_slice()).unwrap_or_default();
            let participant = participant.clone();
            let mut client = client.clone();
            tokio::spawn(async move {
                let number = format!("PULL-{}", &body.message_id[..8]);
                for status in [ApplicationStatus::Registered, ApplicationStatus::Completed] {
                    tokio::time::sleep(STEP).await;
                    let registered = status == ApplicationStatus::Registered;
                    let report = StatusReport {
                        status: status as i32,
                        registration_number: if registered {
                            number.clone()
                        } else {
                            String::new()
                        },
                        result: (!registered).then(|| {
                            participant
                                .document("spravka.txt", "text/plain", number.as_bytes())
                                .expect("signed")
                        }),
                        ..StatusReport::default()
                    };
                    let envelope = participant.report(&body, report).expect("signed");
                    let _ = client.report(envelope).await;
                }
            });
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
}

#[tokio::test]
async fn a_pulling_provider_is_graded_as_a_subscribed_one() {
    let gw = gateway().await;
    let puller = tokio::spawn(pulling_provider(
        gw.provider_client(),
        gw.provider(ESIL_PROVIDER),
        anchors(&gw),
    ));
    let (failed, text) = grade(&gw).await;
    puller.abort();
    assert!(failed.is_empty(), "{text}");
}

/// Runs `shep` to its end (at most two minutes); exit code and stdout.
async fn shep_to_the_end(args: Vec<String>) -> (Option<i32>, String, String) {
    tokio::task::spawn_blocking(move || {
        let output = std::process::Command::new(shep_binary())
            .args(&args)
            .env_remove("SHEP_ADMIN_TOKEN")
            .env("SHEP_LOG", "error")
            .output()
            .expect("running shep");
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    })
    .await
    .expect("shep ran")
}

/// Reads a JUnit XML file with Python's standard `xml.etree` parser:
/// `tests failures` of the suite, then `name:failed` per test case.
fn parse_junit(path: &Path) -> String {
    let script = r#"
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
suite = root.find("testsuite")
print(suite.get("tests"), suite.get("failures"))
for case in suite.findall("testcase"):
    print(case.get("name") + ":" + ("failed" if case.find("failure") is not None else "passed"))
"#;
    let output = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(path)
        .output()
        .expect("python3");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test]
async fn shep_conformance_gates_on_its_exit_code_and_writes_junit() {
    let dir = TempDir::new("shep-conformance-cli");
    let data = dir.path().join("data");
    let addr: std::net::SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let server = ShepServe::start(addr, &data, &dir.path().join("serve.log")).await;
    let common = |extra: &[&str]| -> Vec<String> {
        let mut args: Vec<String> = ["--gateway", &server.url(), "--data-dir"]
            .iter()
            .map(|arg| (*arg).to_owned())
            .collect();
        args.push(data.display().to_string());
        args.extend(extra.iter().map(|arg| (*arg).to_owned()));
        args
    };
    let spawn_provider = |extra: &[&str]| {
        let mut args = vec![
            "provider".to_owned(),
            "--id".to_owned(),
            ESIL_PROVIDER.to_owned(),
        ];
        args.extend(common(&["--delay-ms", "100"]));
        args.extend(extra.iter().map(|arg| (*arg).to_owned()));
        KillOnDrop(
            std::process::Command::new(shep_binary())
                .args(&args)
                .env("SHEP_LOG", "error")
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("starting shep provider"),
        )
    };

    // The reference provider passes; JUnit lists every case.
    let reference = spawn_provider(&["--verify"]);
    let junit = dir.path().join("reference.xml");
    let mut args = vec![
        "conformance".to_owned(),
        "provider".to_owned(),
        "--id".to_owned(),
    ];
    args.push(ESIL_PROVIDER.to_owned());
    args.extend(common(&[
        "--deadline-in",
        "3",
        "--junit",
        junit.to_str().unwrap(),
    ]));
    let (code, stdout, stderr) = shep_to_the_end(args).await;
    assert_eq!(code, Some(0), "{stdout}\n{stderr}\n{}", server.log());
    assert!(stdout.contains("7 of 7 cases passed"), "{stdout}");
    let parsed = parse_junit(&junit);
    let mut lines = parsed.lines();
    assert_eq!(lines.next(), Some("7 0"), "{parsed}");
    let names: Vec<&str> = lines.collect();
    assert_eq!(
        names,
        CASES
            .iter()
            .map(|case| format!("{}:passed", case.name))
            .collect::<Vec<_>>(),
        "{parsed}"
    );
    drop(reference);

    // A provider that works each delivery it gets fails the duplicate case:
    // exit code 1, and the failure in the XML.
    let _broken = spawn_provider(&["--verify", "--misbehave", "forget-deliveries"]);
    let junit = dir.path().join("broken.xml");
    let mut args = vec![
        "conformance".to_owned(),
        "provider".to_owned(),
        "--id".to_owned(),
    ];
    args.push(ESIL_PROVIDER.to_owned());
    args.extend(common(&[
        "--case",
        "delivery",
        "--case",
        "duplicate",
        "--junit",
        junit.to_str().unwrap(),
    ]));
    let (code, stdout, stderr) = shep_to_the_end(args).await;
    assert_eq!(code, Some(1), "{stdout}\n{stderr}");
    assert!(stdout.contains("FAIL  duplicate"), "{stdout}");
    assert_eq!(
        parse_junit(&junit),
        "2 1\ndelivery:passed\nduplicate:failed\n"
    );
}

/// A child process killed when the test is done with it.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
