//! The ШЭП SOAP front door with a real third-party SOAP client: Python's
//! `zeep` builds its clients from the WSDL the gateway serves, `signxml`
//! signs the business data with keys the test НУЦ issued, and the script
//! (`tests/python/soap_client.py`) is also the provider's push endpoint. The
//! gateway is the default one: authenticated, on TLS.
//!
//! The script reports what it saw; the judging is here, against the
//! catalogue and against what gRPC clients see of the same applications.

use std::path::Path;

use shep_nuc::ca::{IdentitySpec, KeyAlgorithm};
use shep_proto::catalogue;
use shep_proto::envelope::v1::{ApplicationStatus, Reason};
use shep_proto::gateway::v1::GetStatusRequest;
use shep_proto::gateway::v1::gateway_client::GatewayClient;
use shep_tests::*;

const TAYYNSHA_SERVICE: &str = "targeted-social-assistance-tayynsha";
const TAYYNSHA_PROVIDER: &str = "is-mio-sko-tayynsha-social";
const TAYYNSHA_EMPLOYEE_IIN: &str = "770905300455";
const TAYYNSHA_PROVIDER_BIN: &str = "050140003214";
/// The gateway's message limit in this test, so an oversize body is cheap.
const MAX_MESSAGE: usize = 256 << 10;

/// The default routing table with ШЭП passwords, and push endpoints for the
/// Тайынша provider and the portal (its status notifications).
fn routes(push: &str) -> String {
    let mut text = shep_gateway::routes::DEFAULT_ROUTES.to_owned();
    for (system, extra) in [
        (
            "pep",
            format!("password = \"pep-secret\"\nsoap_endpoint = \"{push}\"\n"),
        ),
        (ESIL_PROVIDER, "password = \"esil-secret\"\n".to_owned()),
        (
            TAYYNSHA_PROVIDER,
            format!("password = \"tayynsha-secret\"\nsoap_endpoint = \"{push}\"\n"),
        ),
    ] {
        let line = format!("id = \"{system}\"\n");
        assert!(text.contains(&line), "{system} is in the default table");
        text = text.replacen(&line, &format!("{line}{extra}"), 1);
    }
    text
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free loopback port")
}

fn path(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 path")
}

#[tokio::test]
async fn a_zeep_client_built_from_the_served_wsdl_runs_the_sync_and_async_flows() {
    // The first use installs the packages: done before the gateway starts.
    let python = python();
    let push_port = free_port();
    let push = format!("http://127.0.0.1:{push_port}/push");
    let gw = TestGateway::builder()
        .authenticated()
        .routes_toml(&routes(&push))
        .configure(|config| config.limits.max_message_bytes = MAX_MESSAGE)
        .start()
        .await;

    let rsa = |iin: &str, name: &str| IdentitySpec {
        algorithm: KeyAlgorithm::Rsa2048,
        ..IdentitySpec::individual(iin, name)
    };
    let employee = |iin: &str, bin: &str, name: &str| IdentitySpec {
        algorithm: KeyAlgorithm::Rsa2048,
        ..IdentitySpec::employee(iin, bin, name, "ГУ")
    };
    let identities = [
        ("applicant-rsa", rsa(APPLICANT_IIN, "ЗАЯВИТЕЛЬ RSA"), "rsa"),
        (
            "applicant-p256",
            IdentitySpec {
                algorithm: KeyAlgorithm::EcdsaP256,
                ..IdentitySpec::individual(APPLICANT_IIN, "ЗАЯВИТЕЛЬ P-256")
            },
            "p256",
        ),
        (
            "esil-employee",
            employee(ESIL_EMPLOYEE_IIN, ESIL_PROVIDER_BIN, "СОТРУДНИК ЕСИЛЬ"),
            "rsa",
        ),
        (
            "tayynsha-applicant",
            rsa(TAYYNSHA_APPLICANT_IIN, "ЗАЯВИТЕЛЬ ТАЙЫНША"),
            "rsa",
        ),
        (
            "tayynsha-employee",
            employee(
                TAYYNSHA_EMPLOYEE_IIN,
                TAYYNSHA_PROVIDER_BIN,
                "СОТРУДНИК ТАЙЫНША",
            ),
            "rsa",
        ),
    ];
    let mut files = serde_json::Map::new();
    for (name, spec, algorithm) in &identities {
        let (key, cert) = gw.issue_files(spec, name);
        files.insert(
            (*name).to_owned(),
            serde_json::json!([path(&key), path(&cert), algorithm]),
        );
    }
    let form = serde_json::json!({"child_iin": "061211600012", "kind": "опека"});
    let config = serde_json::json!({
        "url": gw.url(),
        "ca": path(&gw.data_dir().root_certificate()),
        "identities": files,
        "passwords": {
            "pep": "pep-secret",
            ESIL_PROVIDER: "esil-secret",
            TAYYNSHA_PROVIDER: "tayynsha-secret",
        },
        "applicant_iin": APPLICANT_IIN,
        "lookup_service": LOOKUP_SERVICE,
        "push_port": push_port,
        "oversize": MAX_MESSAGE + 1024,
        "pull": {
            "service": ESIL_SERVICE,
            "provider": ESIL_PROVIDER,
            "employee": "esil-employee",
            "form": form,
        },
        "push": {
            "service": TAYYNSHA_SERVICE,
            "provider": TAYYNSHA_PROVIDER,
            "employee": "tayynsha-employee",
            "applicant": "tayynsha-applicant",
            "iin": TAYYNSHA_APPLICANT_IIN,
            "form": {"family_size": 4, "monthly_income": 90000},
        },
    });
    let config_path = gw.temp_dir().join("soap-config.json");
    std::fs::write(&config_path, config.to_string()).unwrap();
    let seen = python
        .run_json("soap_client.py", &[path(&config_path)])
        .await;

    eprintln!("the SOAP client saw: {seen:#}");
    // The push interface's WSDL is one zeep can build a client from.
    assert_eq!(
        seen["client_operations"],
        serde_json::json!(["changeMassageStatusNotification", "sendMessage"])
    );

    // Sync lookups answer with the registry's record, for RSA with
    // exclusive c14n and P-256 with inclusive.
    for lookup in ["lookup_rsa", "lookup_p256"] {
        assert_eq!(seen[lookup]["code"], "00000", "{lookup}: {}", seen[lookup]);
        assert_eq!(seen[lookup]["iin"], APPLICANT_IIN, "{lookup}");
        assert_ne!(seen[lookup]["surname"], "", "{lookup}");
    }

    // Refusals carry ШЭП's code and, in subError, the reason a gRPC client
    // gets for the same mistake.
    for (case, reason) in [
        ("bad_password", Reason::NotAuthenticated),
        ("bad_signature", Reason::SignatureInvalid),
        ("unknown_service", Reason::UnknownService),
        ("gost", Reason::MalformedSignature),
    ] {
        let fault = &seen["refusals"][case];
        let entry = catalogue::entry(reason);
        assert_eq!(fault["subError"], entry.name(), "{case}: {fault}");
        assert_eq!(
            fault["errorCode"],
            entry.shep_code.expect("every reason has a ШЭП code"),
            "{case}: {fault}"
        );
    }
    assert!(
        seen["refusals"]["gost"]["message"]
            .as_str()
            .unwrap()
            .contains("GOST"),
        "{}",
        seen["refusals"]["gost"]
    );

    // Hostile bodies get a fault, and the gateway keeps serving.
    for (case, reason) in [
        ("malformed", Reason::MalformedBody),
        ("billion_laughs", Reason::MalformedBody),
        ("oversize", Reason::TooLarge),
    ] {
        let fault = &seen["hostile"][case];
        assert_eq!(fault["http"], 500, "{case}: {fault}");
        assert_eq!(
            fault["subError"],
            catalogue::entry(reason).name(),
            "{case}: {fault}"
        );
    }
    assert_eq!(seen["serving_after_hostile"], "00000");

    // Pull: the receipt names the application; the provider pulled it,
    // acknowledged it, registered it and refused it.
    assert_eq!(
        seen["pull_receipt"]["messageId"],
        seen["pull_receipt"]["asked"]
    );
    assert_eq!(seen["pulled"]["messageId"], seen["pull_receipt"]["asked"]);
    assert_eq!(seen["pulled"]["messageType"], "REQUEST");
    assert_eq!(seen["pulled"]["sender"], "pep");
    assert_eq!(seen["pulled"]["attempt"], "1");
    assert_eq!(seen["pull_after_ack"], "DELIVERED");
    assert_eq!(seen["pull_status"]["status"], "REFUSED");
    assert_eq!(seen["pull_status"]["registrationNumber"], "SOAP-PULL-1");

    // Push: the provider's endpoint got the application with the applicant's
    // signed data; the portal's endpoint heard of each status.
    assert_eq!(seen["pushed"]["messageId"], seen["pushed_asked"]);
    assert_eq!(seen["pushed"]["serviceId"], TAYYNSHA_SERVICE);
    assert_eq!(seen["pushed"]["signed"], true);
    assert_eq!(seen["pushed"]["iin"], TAYYNSHA_APPLICANT_IIN);
    let notified: Vec<&str> = seen["push_notifications"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|status| status.as_str())
        .collect();
    assert!(notified.contains(&"REGISTERED"), "{notified:?}");
    assert_eq!(notified.last(), Some(&"COMPLETED"), "{notified:?}");
    assert_eq!(seen["push_status"]["status"], "COMPLETED");
    // The portal receives responses (`responses = true`): the pull flow's
    // reports were pushed to its endpoint as ШЭП pushes them.
    let responses: Vec<(&str, &str)> = seen["pushed_responses"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|pushed| pushed["correlationId"] == seen["pull_status"]["messageId"])
        .map(|pushed| {
            (
                pushed["messageType"].as_str().unwrap(),
                pushed["serviceId"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        responses,
        [("UPDATE", ESIL_SERVICE), ("RESPONSE", ESIL_SERVICE)],
        "{}",
        seen["pushed_responses"]
    );

    // The same applications, through gRPC: the same statuses and numbers.
    let mut gateway = GatewayClient::new(gw.channel_as("pep").await);
    for (case, status) in [
        ("pull_status", ApplicationStatus::Refused),
        ("push_status", ApplicationStatus::Completed),
    ] {
        let id = seen[case]["messageId"].as_str().unwrap().to_owned();
        let application = gateway
            .get_status(GetStatusRequest { message_id: id })
            .await
            .unwrap_or_else(|status| panic!("GetStatus: {}", describe(&status)))
            .into_inner();
        assert_eq!(application.status(), status, "{case}");
        assert_eq!(
            application.registration_number, seen[case]["registrationNumber"],
            "{case}"
        );
        assert_eq!(
            application.delivery_state().as_str_name(),
            seen[case]["state"],
            "{case}"
        );
    }
}

/// `shep send --soap` on the default gateway (TLS, the portal's transport
/// certificate): a lookup answered with the record, an application a gRPC
/// provider receives with the applicant's signed XML, which it can verify
/// and which a corrupted copy fails.
#[tokio::test]
async fn shep_send_soap_reaches_grpc_providers_with_verifiable_signed_xml() {
    let gw = TestGateway::builder().authenticated().start().await;
    let url = gw.url();
    let data = path(&gw.data_dir().0).to_owned();
    let base = ["send", "--soap", "--gateway", &url, "--data-dir", &data];

    let lookup = run_shep(
        &[
            &base[..],
            &["--service", LOOKUP_SERVICE, "--subject", APPLICANT_IIN],
        ]
        .concat(),
    )
    .await;
    let answer = lookup.ok();
    assert!(answer.starts_with("00000 "), "{answer}");
    assert!(
        answer.contains(&format!("<iin>{APPLICANT_IIN}</iin>")),
        "{answer}"
    );

    let form = gw.temp_dir().join("form.json");
    std::fs::write(&form, r#"{"child_iin":"061211600012","kind":"опека"}"#).unwrap();
    let mut provider =
        Subscription::open(gw.channel_as(ESIL_PROVIDER).await, hello(ESIL_PROVIDER, 1))
            .await
            .unwrap_or_else(|status| panic!("Subscribe: {}", describe(&status)));
    let sent = run_shep(
        &[
            &base[..],
            &[
                "--service",
                ESIL_SERVICE,
                "--subject",
                APPLICANT_IIN,
                "--payload",
                path(&form),
            ],
        ]
        .concat(),
    )
    .await;
    let receipt = sent.ok();
    assert!(
        receipt.starts_with("accepted over SOAP: message_id "),
        "{receipt}"
    );
    let message_id = receipt.trim().rsplit(' ').next().unwrap().to_owned();

    let delivery = provider.next_delivery().await;
    assert_eq!(delivery.message_id, message_id);
    let envelope = delivery.envelope.expect("the envelope");
    let xml = String::from_utf8(envelope.xml_data.clone()).expect("signed XML");
    assert!(xml.contains("SignatureValue"), "{xml}");
    let anchors = shep::client::TrustAnchors::from_nuc_dir(&gw.data_dir().nuc()).unwrap();
    let signer = anchors
        .verify_envelope(&envelope)
        .expect("the applicant's XMLDSig verifies");
    assert_eq!(signer.iin.as_deref(), Some(APPLICANT_IIN));

    // A copy whose body says something the signed XML does not is refused.
    let mut changed = envelope.clone();
    let mut body =
        <shep_proto::envelope::v1::Body as prost::Message>::decode(changed.body.as_slice())
            .unwrap();
    body.purpose = "не то, что подписано".to_owned();
    changed.body = prost::Message::encode_to_vec(&body);
    let refused = anchors.verify_envelope(&changed).unwrap_err();
    assert_eq!(refused.reason(), Reason::SignatureInvalid, "{refused}");
    provider.accept(&message_id).await;
}
