//! The НУЦ test certification authority and the gateway's full signature
//! check: certificates issued by the CLI and the `shep.nuc.v1.Nuc` API sign
//! envelopes the gateway accepts, or refuses with the reason the regulations
//! name (revoked, expired, not yet valid, foreign CA, wrong IIN, wrong key
//! usage, tampered, not an operator); the НУЦ answers status queries and
//! serves a signed CRL over gRPC and plain HTTP; certificates follow the
//! national conventions; revocations survive a restart.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use prost::Message;
use shep::client::TrustAnchors;
use shep_gateway::error::GatewayError;
use shep_gateway::server::DEMO_OPERATOR_IIN;
use shep_nuc::ca::{
    CertificateAuthority, IdentitySpec, Signer, certificates, format_serial, serial_of,
};
use shep_proto::envelope::v1::{
    ApplicationStatus, Body, Channel, SignatureAlgorithm, SignedDocument, SignedEnvelope,
    StatusReport,
};
use shep_proto::gateway::v1::Receipt;
use shep_proto::nuc::v1::{
    CertificateStatus, GetCrlRequest, IssueRequest, KeyAlgorithm, Purpose, RevokeRequest,
    StatusRequest, StatusResponse, revoke_request, status_request,
};
use shep_tests::*;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tonic::{Code, Status};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::{DistributionPointName, GeneralName, ParsedExtension};
use x509_parser::oid_registry::{OID_X509_COMMON_NAME, OID_X509_SERIALNUMBER};
use x509_parser::prelude::FromDer;
use x509_parser::revocation_list::CertificateRevocationList;
use x509_parser::x509::X509Name;

/// Иванов Сергей, registered in Караганда (КАТО 35…).
const KARAGANDA_IIN: &str = "780521307893";
/// The Karaganda guardianship certificate, routed by region 35.
const KARAGANDA_SERVICE: &str = "guardianship-certificate-karaganda";
/// The provider system that serves [`KARAGANDA_SERVICE`] for region 35.
const KARAGANDA_PROVIDER: &str = "arm-rshep-karaganda-edu";
/// The BIN of ИС ЦОН's operators (НАО «Правительство для граждан»).
const IS_CON_BIN: &str = "080340012345";

const POLICY_INDIVIDUAL: &str = "1.2.398.3.3.4.1.1";
const POLICY_EMPLOYEE: &str = "1.2.398.3.3.4.1.2";
const POLICY_EMPLOYEE_ORDINARY: &str = "1.2.398.3.3.4.1.2.5";

// === Helpers ===

/// A certificate spec for the demo applicant.
fn applicant_spec() -> IdentitySpec {
    IdentitySpec::individual(APPLICANT_IIN, "СЕРИКБАЕВ НУРЛАН")
}

/// A certificate spec for an employee of the demo providers with `iin`.
fn provider_employee(iin: &str) -> IdentitySpec {
    IdentitySpec::employee(iin, ESIL_PROVIDER_BIN, "СОТРУДНИК", ESIL_PROVIDER)
}

/// The demo applicant's application body for the Esil service, signed by `who`.
fn application(who: &Participant) -> Body {
    who.application(
        ESIL_SERVICE,
        iin(APPLICANT_IIN),
        r#"{"child_iin":"061211600012","kind":"опека"}"#,
        Vec::new(),
    )
}

async fn submit(gw: &TestGateway, envelope: SignedEnvelope) -> Result<Receipt, Status> {
    gw.gateway()
        .submit(envelope)
        .await
        .map(tonic::Response::into_inner)
}

/// `who` signs a new application for the Esil service and submits it.
async fn apply(gw: &TestGateway, who: &Participant) -> Result<Receipt, Status> {
    submit(gw, who.seal(&application(who)).unwrap()).await
}

/// A `Nuc.Issue` request for an individual with `iin`.
fn issue_request(iin: &str) -> IssueRequest {
    IssueRequest {
        iin: iin.to_owned(),
        common_name: "ТЕСТОВ ТЕСТ".to_owned(),
        ..IssueRequest::default()
    }
}

/// A certificate issued through `Nuc.Issue`, its files written beside the gateway.
#[derive(Debug)]
struct Issued {
    key: PathBuf,
    cert: PathBuf,
    serial: String,
    der: Vec<u8>,
}

impl Issued {
    fn signer(&self) -> Signer {
        Signer::from_files(&self.key, &self.cert).expect("loading the issued key")
    }

    fn participant(&self, sender_id: &str, channel: Channel) -> Participant {
        Participant::new(sender_id, channel, self.signer())
    }
}

/// Issues through `Nuc.Issue` (with the admin token) and writes `<name>.key.pem`
/// and `<name>.cert.pem` into the test's temp directory.
async fn issue_api(gw: &TestGateway, name: &str, request: IssueRequest) -> Issued {
    let response = gw
        .nuc()
        .issue(gw.authorized(request))
        .await
        .unwrap_or_else(|status| panic!("Nuc.Issue refused: {}", describe(&status)))
        .into_inner();
    assert!(
        response.key_pem.starts_with("-----BEGIN PRIVATE KEY-----"),
        "a PKCS#8 PEM key: {}",
        response.key_pem
    );
    let key = gw.temp_dir().join(format!("{name}.key.pem"));
    let cert = gw.temp_dir().join(format!("{name}.cert.pem"));
    std::fs::write(&key, &response.key_pem).unwrap();
    std::fs::write(&cert, &response.certificate_pem).unwrap();
    let der = certificates(&cert).unwrap().remove(0);
    assert_eq!(
        response.serial,
        format_serial(&serial_of(&der).unwrap()),
        "the answered serial is the certificate's"
    );
    Issued {
        key,
        cert,
        serial: response.serial,
        der,
    }
}

/// `Nuc.Revoke` of `serial` with the admin token.
async fn revoke(gw: &TestGateway, serial: &str, reason: &str) -> StatusResponse {
    gw.nuc()
        .revoke(gw.authorized(RevokeRequest {
            id: Some(revoke_request::Id::Serial(serial.to_owned())),
            reason: reason.to_owned(),
        }))
        .await
        .unwrap_or_else(|status| panic!("Nuc.Revoke refused: {}", describe(&status)))
        .into_inner()
}

/// `Nuc.GetStatus` of `id`.
async fn nuc_status(gw: &TestGateway, id: status_request::Id) -> StatusResponse {
    gw.nuc()
        .get_status(StatusRequest {
            id: Some(id),
            ..StatusRequest::default()
        })
        .await
        .unwrap_or_else(|status| panic!("Nuc.GetStatus refused: {}", describe(&status)))
        .into_inner()
}

fn serial_id(serial: &str) -> status_request::Id {
    status_request::Id::Serial(serial.to_owned())
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 path")
}

/// The text of every attribute `oid` of `name`.
fn attributes(name: &X509Name<'_>, oid: &x509_parser::der_parser::Oid<'_>) -> Vec<String> {
    name.iter_by_oid(oid)
        .filter_map(|attribute| attribute.as_str().ok().map(str::to_owned))
        .collect()
}

fn units(name: &X509Name<'_>) -> Vec<String> {
    name.iter_organizational_unit()
        .filter_map(|attribute| attribute.as_str().ok().map(str::to_owned))
        .collect()
}

fn uri<'a>(name: &'a GeneralName<'_>) -> Option<&'a str> {
    match name {
        GeneralName::URI(uri) => Some(uri),
        _ => None,
    }
}

/// What the conventions test reads out of a certificate.
#[derive(Debug, Default)]
struct Conventions {
    serial_number: Vec<String>,
    units: Vec<String>,
    policies: Vec<String>,
    crl_uris: Vec<String>,
    ocsp_uris: Vec<String>,
    ca_issuers_uris: Vec<String>,
    email_protection: bool,
    client_auth: bool,
    non_repudiation: bool,
    key_encipherment: bool,
    issuer: String,
}

fn conventions(der: &[u8]) -> Conventions {
    let (_, certificate) = X509Certificate::from_der(der).expect("a parseable certificate");
    let subject = certificate.subject();
    let mut found = Conventions {
        serial_number: attributes(subject, &OID_X509_SERIALNUMBER),
        units: units(subject),
        issuer: certificate.issuer().to_string(),
        ..Conventions::default()
    };
    if let Ok(Some(usage)) = certificate.extended_key_usage() {
        found.email_protection = usage.value.email_protection;
        found.client_auth = usage.value.client_auth;
    }
    if let Ok(Some(usage)) = certificate.key_usage() {
        assert!(usage.value.digital_signature(), "digitalSignature");
        found.non_repudiation = usage.value.non_repudiation();
        found.key_encipherment = usage.value.key_encipherment();
    }
    for extension in certificate.extensions() {
        match extension.parsed_extension() {
            ParsedExtension::CertificatePolicies(policies) => found.policies.extend(
                policies
                    .iter()
                    .map(|policy| policy.policy_id.to_id_string()),
            ),
            ParsedExtension::CRLDistributionPoints(points) => {
                for point in points.iter() {
                    if let Some(DistributionPointName::FullName(names)) = &point.distribution_point
                    {
                        found
                            .crl_uris
                            .extend(names.iter().filter_map(uri).map(str::to_owned));
                    }
                }
            }
            ParsedExtension::AuthorityInfoAccess(access) => {
                for description in access.iter() {
                    let Some(location) = uri(&description.access_location) else {
                        continue;
                    };
                    match description.access_method.to_id_string().as_str() {
                        "1.3.6.1.5.5.7.48.1" => found.ocsp_uris.push(location.to_owned()),
                        "1.3.6.1.5.5.7.48.2" => found.ca_issuers_uris.push(location.to_owned()),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    found
}

/// The demo applicant's application completed by the Esil provider with
/// `result`; returns the application's message id.
async fn complete(gw: &TestGateway, submitted: &Submitted, result: SignedDocument) -> String {
    gw.report(
        ESIL_PROVIDER,
        &submitted.body,
        StatusReport {
            registration_number: "ESIL-42".to_owned(),
            ..status_report(ApplicationStatus::Registered)
        },
    )
    .await
    .unwrap_or_else(|status| panic!("REGISTERED refused: {}", describe(&status)));
    gw.report(
        ESIL_PROVIDER,
        &submitted.body,
        StatusReport {
            result: Some(result),
            ..status_report(ApplicationStatus::Completed)
        },
    )
    .await
    .unwrap_or_else(|status| panic!("COMPLETED refused: {}", describe(&status)));
    submitted.receipt.message_id.clone()
}

// === A CLI-issued certificate, before and after revocation ===

#[tokio::test]
async fn a_cli_issued_certificate_signs_until_the_cli_revokes_it() {
    let gw = TestGateway::builder().revocation_cache_ms(0).start().await;
    let url = gw.url();
    let token = gw.admin_token().to_owned();
    let prefix = gw.temp_dir().join("ivanov");
    let issued = run_shep(&[
        "certs",
        "issue",
        "--iin",
        KARAGANDA_IIN,
        "--name",
        "ИВАНОВ СЕРГЕЙ",
        "--out",
        path_str(&prefix),
        "--gateway",
        &url,
        "--token",
        &token,
    ])
    .await;
    let printed = issued.ok();
    let key = gw.temp_dir().join("ivanov.key.pem");
    let cert = gw.temp_dir().join("ivanov.cert.pem");
    let der = certificates(&cert).unwrap().remove(0);
    let serial = format_serial(&serial_of(&der).unwrap());
    assert!(
        printed.contains(&format!("issued serial {serial}")),
        "{printed}"
    );
    assert!(printed.contains(KARAGANDA_IIN), "{printed}");

    // The CLI's key and certificate sign an application the gateway accepts.
    let citizen = Participant::new(
        "pep",
        Channel::Portal,
        Signer::from_files(&key, &cert).expect("the CLI wrote a usable key and certificate"),
    );
    let body = citizen.request(KARAGANDA_SERVICE, iin(KARAGANDA_IIN));
    let receipt = submit(&gw, citizen.seal(&body).unwrap())
        .await
        .unwrap_or_else(|status| panic!("refused: {}", describe(&status)));
    assert_eq!(receipt.provider_id, KARAGANDA_PROVIDER);
    assert_eq!(receipt.status(), ApplicationStatus::Accepted);

    // `shep sign` and `shep send --envelope` do the same from files.
    let body_file = gw.temp_dir().join("body.bin");
    let envelope_file = gw.temp_dir().join("envelope.bin");
    let sign_and_send = async |body: &Body| {
        std::fs::write(&body_file, body.encode_to_vec()).unwrap();
        run_shep(&[
            "sign",
            "--key",
            path_str(&key),
            "--cert",
            path_str(&cert),
            "--body",
            path_str(&body_file),
            "--out",
            path_str(&envelope_file),
        ])
        .await
        .ok();
        run_shep(&[
            "send",
            "--envelope",
            path_str(&envelope_file),
            "--gateway",
            &url,
        ])
        .await
    };
    let body = citizen.request(KARAGANDA_SERVICE, iin(KARAGANDA_IIN));
    let sent = sign_and_send(&body).await;
    assert!(
        sent.ok()
            .contains(&format!("accepted: message_id {}", body.message_id)),
        "{}",
        sent.stdout
    );
    assert!(sent.stdout.contains(KARAGANDA_PROVIDER), "{}", sent.stdout);

    let shown = run_shep(&["certs", "show", path_str(&cert), "--gateway", &url]).await;
    let shown = shown.ok();
    assert!(shown.contains("status:   good"), "{shown}");

    // Revoked by the CLI: the next envelope is refused at once (no status cache).
    let revoked = run_shep(&[
        "certs",
        "revoke",
        "--cert",
        path_str(&cert),
        "--reason",
        "key-compromise",
        "--gateway",
        &url,
        "--token",
        &token,
    ])
    .await;
    let printed = revoked.ok();
    assert!(printed.contains(&serial), "{printed}");
    assert!(printed.contains("REVOKED"), "{printed}");
    assert!(printed.contains("key-compromise"), "{printed}");

    let body = citizen.request(KARAGANDA_SERVICE, iin(KARAGANDA_IIN));
    let status = refusal(
        submit(&gw, citizen.seal(&body).unwrap()).await,
        Code::Unauthenticated,
        "CERTIFICATE_REVOKED",
    );
    assert_eq!(
        error_metadata(&status, "shep_code").as_deref(),
        Some("SCE015")
    );
    assert!(
        status.message().contains("key-compromise"),
        "{}",
        status.message()
    );
    let sent = sign_and_send(&citizen.request(KARAGANDA_SERVICE, iin(KARAGANDA_IIN))).await;
    assert!(!sent.status.success(), "sent with a revoked certificate");
    assert!(
        sent.stderr.contains("CERTIFICATE_REVOKED"),
        "{}",
        sent.stderr
    );

    let shown = run_shep(&["certs", "show", path_str(&cert), "--gateway", &url]).await;
    let shown = shown.ok();
    assert!(shown.contains("REVOKED"), "{shown}");
    assert!(shown.contains("key-compromise"), "{shown}");

    // Other certificates are untouched.
    let still = gw.submit_application().await;
    assert_eq!(still.receipt.provider_id, ESIL_PROVIDER);
}

#[tokio::test]
async fn a_revocation_takes_effect_within_the_status_cache_delay() {
    const CACHE: Duration = Duration::from_millis(400);
    let gw = TestGateway::builder()
        .revocation_cache_ms(CACHE.as_millis() as u64)
        .start()
        .await;
    let issued = issue_api(&gw, "cached", issue_request(APPLICANT_IIN)).await;
    let applicant = issued.participant("pep", Channel::Portal);

    // The first envelope asks the НУЦ and caches "good" for CACHE.
    let asked_from = Instant::now();
    apply(&gw, &applicant)
        .await
        .unwrap_or_else(|status| panic!("refused: {}", describe(&status)));
    let cached_by = Instant::now();
    let revoked = revoke(&gw, &issued.serial, "affiliation-changed").await;
    assert_eq!(revoked.status(), CertificateStatus::Revoked);
    let revoked_at = Instant::now();

    // Right after revoking the cached answer may still be used, never past CACHE.
    let sent = Instant::now();
    let first = apply(&gw, &applicant).await;
    let answered = Instant::now();
    match &first {
        Ok(_) => assert!(
            sent.duration_since(cached_by) < CACHE,
            "accepted {:?} after the cached answer was stored: older than the cache allows",
            sent.duration_since(cached_by)
        ),
        Err(status) => {
            assert_eq!(
                reason(status),
                "CERTIFICATE_REVOKED",
                "{}",
                describe(status)
            );
            assert!(
                answered.duration_since(asked_from) >= CACHE,
                "refused within {:?} of the cached good answer: the status cache did not hold",
                answered.duration_since(asked_from)
            );
        }
    }
    println!(
        "right after revoking: {}",
        if first.is_ok() {
            "accepted (cached)"
        } else {
            "refused"
        }
    );

    // Then the revocation takes effect: no acceptance once the cached answer is older than CACHE.
    let status = eventually(PATIENCE, async || {
        let sent = Instant::now();
        match apply(&gw, &applicant).await {
            Ok(receipt) => {
                assert!(
                    sent.duration_since(cached_by) < CACHE,
                    "accepted {} {:?} after the good answer was cached (cache {CACHE:?})",
                    receipt.message_id,
                    sent.duration_since(cached_by)
                );
                Err("still accepted")
            }
            Err(status) => Ok(status),
        }
    })
    .await;
    refusal(
        Err::<(), _>(status),
        Code::Unauthenticated,
        "CERTIFICATE_REVOKED",
    );
    println!(
        "refused {:?} after the revocation",
        revoked_at.elapsed().min(PATIENCE)
    );
}

// === Each rejection with its reason ===

#[tokio::test]
async fn expired_and_not_yet_valid_certificates_are_refused() {
    let gw = TestGateway::start().await;
    let now = OffsetDateTime::now_utc();
    let expired = issue_api(
        &gw,
        "expired",
        IssueRequest {
            not_before: Some(to_timestamp(now - time::Duration::days(30))),
            not_after: Some(to_timestamp(now - time::Duration::days(1))),
            ..issue_request(APPLICANT_IIN)
        },
    )
    .await;
    let status = refusal(
        apply(&gw, &expired.participant("pep", Channel::Portal)).await,
        Code::Unauthenticated,
        "CERTIFICATE_EXPIRED",
    );
    assert_eq!(
        error_metadata(&status, "shep_code").as_deref(),
        Some("SCE015")
    );

    let early = issue_api(
        &gw,
        "early",
        IssueRequest {
            not_before: Some(to_timestamp(now + time::Duration::days(1))),
            not_after: Some(to_timestamp(now + time::Duration::days(30))),
            ..issue_request(APPLICANT_IIN)
        },
    )
    .await;
    refusal(
        apply(&gw, &early.participant("pep", Channel::Portal)).await,
        Code::Unauthenticated,
        "CERTIFICATE_NOT_YET_VALID",
    );

    // Validity that ends before it starts is refused at issuance.
    refusal(
        gw.nuc()
            .issue(gw.authorized(IssueRequest {
                not_before: Some(to_timestamp(now)),
                not_after: Some(to_timestamp(now - time::Duration::days(1))),
                ..issue_request(APPLICANT_IIN)
            }))
            .await,
        Code::InvalidArgument,
        "INVALID_FIELD",
    );
    gw.submit_application().await;
}

#[tokio::test]
async fn a_certificate_of_another_ca_has_an_unknown_issuer() {
    let gw = TestGateway::builder().revocation_cache_ms(0).start().await;
    let stranger = CertificateAuthority::generate().unwrap();
    let signer = stranger
        .issue(&applicant_spec())
        .and_then(|issued| issued.signer())
        .unwrap();
    let status = refusal(
        apply(&gw, &Participant::new("pep", Channel::Portal, signer)).await,
        Code::Unauthenticated,
        "UNKNOWN_ISSUER",
    );
    assert_eq!(
        error_metadata(&status, "shep_code").as_deref(),
        Some("SCE016")
    );
    // Another CA's certificate is unknown to this НУЦ, not "good".
    let der = stranger.issue(&applicant_spec()).unwrap().certificate_der;
    let answer = nuc_status(&gw, status_request::Id::CertificateDer(der)).await;
    assert_eq!(answer.status(), CertificateStatus::Unknown);
    assert!(answer.subject.is_empty(), "{}", answer.subject);
}

#[tokio::test]
async fn a_certificate_for_another_iin_is_an_identity_mismatch() {
    let gw = TestGateway::start().await;
    let other = issue_api(&gw, "other", issue_request(KARAGANDA_IIN)).await;
    let status = refusal(
        apply(&gw, &other.participant("pep", Channel::Portal)).await,
        Code::PermissionDenied,
        "IDENTITY_MISMATCH",
    );
    assert!(
        status.message().contains(KARAGANDA_IIN) && status.message().contains(APPLICANT_IIN),
        "{}",
        status.message()
    );
}

#[tokio::test]
async fn an_authentication_certificate_cannot_sign() {
    let gw = TestGateway::start().await;
    let auth = issue_api(
        &gw,
        "auth",
        IssueRequest {
            purpose: Purpose::Authentication as i32,
            ..issue_request(APPLICANT_IIN)
        },
    )
    .await;
    let found = conventions(&auth.der);
    assert!(found.client_auth && !found.email_protection, "{found:?}");
    let status = refusal(
        apply(&gw, &auth.participant("pep", Channel::Portal)).await,
        Code::Unauthenticated,
        "WRONG_KEY_USAGE",
    );
    assert_eq!(
        error_metadata(&status, "shep_code").as_deref(),
        Some("SCE016")
    );
}

#[tokio::test]
async fn a_body_changed_after_signing_does_not_verify() {
    let gw = TestGateway::start().await;
    let issued = issue_api(&gw, "signer", issue_request(APPLICANT_IIN)).await;
    let applicant = issued.participant("pep", Channel::Portal);
    let signed = application(&applicant);
    let mut envelope = applicant.seal(&signed).unwrap();
    let mut changed = signed;
    changed.payload.as_mut().unwrap().data =
        r#"{"child_iin":"061211600012","kind":"попечительство"}"#
            .as_bytes()
            .to_vec();
    envelope.body = changed.encode_to_vec();
    let status = refusal(
        submit(&gw, envelope).await,
        Code::Unauthenticated,
        "SIGNATURE_INVALID",
    );
    assert_eq!(
        error_metadata(&status, "shep_code").as_deref(),
        Some("SCE016")
    );
    // The same certificate on an unchanged body is fine.
    apply(&gw, &applicant).await.expect("the untouched body");
}

#[tokio::test]
async fn rsa_2048_and_ecdsa_p256_certificates_are_accepted() {
    let gw = TestGateway::start().await;
    // RSA-2048 through the API (key generation takes a moment: done once).
    let rsa = issue_api(
        &gw,
        "rsa",
        IssueRequest {
            algorithm: KeyAlgorithm::Rsa2048 as i32,
            ..issue_request(APPLICANT_IIN)
        },
    )
    .await;
    // ECDSA P-256 through the CLI.
    let prefix = gw.temp_dir().join("p256");
    run_shep(&[
        "certs",
        "issue",
        "--iin",
        APPLICANT_IIN,
        "--alg",
        "p256",
        "--out",
        path_str(&prefix),
        "--gateway",
        &gw.url(),
        "--token",
        gw.admin_token(),
    ])
    .await
    .ok();
    let p256 = Signer::from_files(
        &gw.temp_dir().join("p256.key.pem"),
        &gw.temp_dir().join("p256.cert.pem"),
    )
    .unwrap();

    for (signer, algorithm, key_oid) in [
        (
            rsa.signer(),
            SignatureAlgorithm::RsaPkcs1Sha256,
            "1.2.840.113549.1.1.1",
        ),
        (
            p256,
            SignatureAlgorithm::EcdsaP256Sha256,
            "1.2.840.10045.2.1",
        ),
    ] {
        let (_, certificate) = X509Certificate::from_der(signer.certificate_der()).unwrap();
        assert_eq!(
            certificate.public_key().algorithm.algorithm.to_id_string(),
            key_oid
        );
        let applicant = Participant::new("pep", Channel::Portal, signer);
        let envelope = applicant.seal(&application(&applicant)).unwrap();
        assert_eq!(envelope.signature.as_ref().unwrap().algorithm(), algorithm);
        let receipt = submit(&gw, envelope.clone())
            .await
            .unwrap_or_else(|status| panic!("{algorithm:?} refused: {}", describe(&status)));
        assert_eq!(receipt.provider_id, ESIL_PROVIDER);
        // Tampering is caught for these algorithms too.
        let mut tampered = envelope;
        tampered.signature.as_mut().unwrap().value[8] ^= 0x01;
        refusal(
            submit(&gw, tampered).await,
            Code::Unauthenticated,
            "SIGNATURE_INVALID",
        );
    }
}

// === Operators of the sending system ===

#[tokio::test]
async fn a_service_centre_signer_must_be_an_operator_of_is_con_with_its_bin() {
    let gw = TestGateway::start().await;
    let centre = |spec: &IdentitySpec| gw.participant("is-con", Channel::ServiceCentre, spec);

    // Someone who is not one of ИС ЦОН's operators, with ИС ЦОН's BIN.
    let stranger = centre(&IdentitySpec::employee(
        KARAGANDA_IIN,
        IS_CON_BIN,
        "ИВАНОВ СЕРГЕЙ",
        "НАО «Правительство для граждан»",
    ));
    let status = refusal(
        apply(&gw, &stranger).await,
        Code::PermissionDenied,
        "IDENTITY_MISMATCH",
    );
    assert!(
        status.message().contains(KARAGANDA_IIN) && status.message().contains("is-con"),
        "{}",
        status.message()
    );
    // A lookup is held to the same rule.
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

    // The operator's IIN on a personal certificate (no BIN).
    let personal = centre(&IdentitySpec::individual(
        DEMO_OPERATOR_IIN,
        "АХМЕТОВА АЙГЕРИМ",
    ));
    let status = refusal(
        apply(&gw, &personal).await,
        Code::PermissionDenied,
        "IDENTITY_MISMATCH",
    );
    assert!(
        status.message().contains(IS_CON_BIN),
        "{}",
        status.message()
    );

    // The operator's IIN as an employee of another organisation.
    let moonlighting = centre(&IdentitySpec::employee(
        DEMO_OPERATOR_IIN,
        ESIL_PROVIDER_BIN,
        "АХМЕТОВА АЙГЕРИМ",
        "ГУ «Отдел образования»",
    ));
    let status = refusal(
        apply(&gw, &moonlighting).await,
        Code::PermissionDenied,
        "IDENTITY_MISMATCH",
    );
    assert!(
        status.message().contains(ESIL_PROVIDER_BIN),
        "{}",
        status.message()
    );

    // The registered operator with ИС ЦОН's BIN is accepted.
    let receipt = apply(&gw, &gw.operator())
        .await
        .unwrap_or_else(|status| panic!("the operator was refused: {}", describe(&status)));
    assert_eq!(receipt.provider_id, ESIL_PROVIDER);
}

#[tokio::test]
async fn a_provider_report_must_be_signed_by_an_operator_of_the_provider() {
    let gw = TestGateway::builder().revocation_cache_ms(0).start().await;
    let submitted = gw.submit_application().await;
    let registered = || StatusReport {
        registration_number: "ESIL-7".to_owned(),
        ..status_report(ApplicationStatus::Registered)
    };
    let report_as = async |signer: Signer| {
        let desk = Participant::new(ESIL_PROVIDER, Channel::ProviderDesk, signer);
        gw.provider_client()
            .report(desk.report(&submitted.body, registered()).unwrap())
            .await
    };

    // An employee of the provider's organisation who is not a registered operator.
    let status = refusal(
        report_as(gw.issue(&provider_employee(KARAGANDA_IIN))).await,
        Code::PermissionDenied,
        "IDENTITY_MISMATCH",
    );
    assert!(
        status.message().contains(KARAGANDA_IIN),
        "{}",
        status.message()
    );
    // The operator's IIN without the provider's BIN.
    refusal(
        report_as(gw.issue(&IdentitySpec::employee(
            ESIL_EMPLOYEE_IIN,
            IS_CON_BIN,
            "КАСЕНОВА ГУЛЬНАРА",
            "НАО «Правительство для граждан»",
        )))
        .await,
        Code::PermissionDenied,
        "IDENTITY_MISMATCH",
    );
    // The operator's revoked certificate.
    let revoked = gw.issue_registered(&provider_employee(ESIL_EMPLOYEE_IIN));
    gw.running
        .ca
        .revoke(
            &serial_of(revoked.certificate_der()).unwrap(),
            shep_nuc::ca::RevocationReason::CessationOfOperation,
        )
        .unwrap();
    refusal(
        report_as(revoked).await,
        Code::Unauthenticated,
        "CERTIFICATE_REVOKED",
    );
    let application = gw.status(&submitted.receipt.message_id).await;
    assert_eq!(application.status(), ApplicationStatus::Accepted);

    // The provider's operator is accepted.
    let receipt = gw
        .report(ESIL_PROVIDER, &submitted.body, registered())
        .await
        .unwrap_or_else(|status| panic!("the operator was refused: {}", describe(&status)));
    assert_eq!(receipt.status(), ApplicationStatus::Registered);
}

/// The report envelope is signed by the provider's operator; only the result
/// document inside it is signed by `result_signer`.
async fn complete_with_result_by(
    gw: &TestGateway,
    submitted: &Submitted,
    result_signer: Signer,
) -> Result<shep_proto::provider::v1::ReportReceipt, Status> {
    let author = Participant::new(ESIL_PROVIDER, Channel::ProviderDesk, result_signer);
    let document = author
        .document(
            "spravka.txt",
            "text/plain; charset=utf-8",
            "Справка об опеке выдана.".as_bytes(),
        )
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
}

#[tokio::test]
async fn a_result_document_signed_by_a_non_operator_is_an_identity_mismatch() {
    let gw = TestGateway::start().await;
    let submitted = gw.submit_application().await;
    let status = refusal(
        complete_with_result_by(&gw, &submitted, gw.issue(&provider_employee(KARAGANDA_IIN))).await,
        Code::PermissionDenied,
        "IDENTITY_MISMATCH",
    );
    assert!(
        status.message().contains(KARAGANDA_IIN),
        "{}",
        status.message()
    );
    // Nor may the applicant sign the result of their own application.
    refusal(
        complete_with_result_by(&gw, &submitted, gw.applicant().signer).await,
        Code::PermissionDenied,
        "IDENTITY_MISMATCH",
    );
    let application = gw.status(&submitted.receipt.message_id).await;
    assert_eq!(application.status(), ApplicationStatus::Accepted);

    gw.report(
        ESIL_PROVIDER,
        &submitted.body,
        StatusReport {
            registration_number: "ESIL-N-1".to_owned(),
            ..status_report(ApplicationStatus::Registered)
        },
    )
    .await
    .expect("REGISTERED before the result");
    complete_with_result_by(&gw, &submitted, gw.provider(ESIL_PROVIDER).signer)
        .await
        .unwrap_or_else(|status| panic!("the operator's result: {}", describe(&status)));
}

#[tokio::test]
async fn a_result_document_signed_with_a_revoked_certificate_is_refused() {
    let gw = TestGateway::builder().revocation_cache_ms(0).start().await;
    let submitted = gw.submit_application().await;
    let revoked = gw.issue_registered(&provider_employee(ESIL_EMPLOYEE_IIN));
    let serial = format_serial(&serial_of(revoked.certificate_der()).unwrap());
    revoke(&gw, &serial, "key-compromise").await;
    refusal(
        complete_with_result_by(&gw, &submitted, revoked).await,
        Code::Unauthenticated,
        "CERTIFICATE_REVOKED",
    );
    let application = gw.status(&submitted.receipt.message_id).await;
    assert_eq!(application.status(), ApplicationStatus::Accepted);
}

// === The НУЦ service ===

#[tokio::test]
async fn the_nuc_answers_status_and_guards_issue_and_revoke() {
    let gw = TestGateway::start().await;
    let issued = issue_api(
        &gw,
        "employee",
        IssueRequest {
            bin: ESIL_PROVIDER_BIN.to_owned(),
            organization: "ГУ «Отдел образования»".to_owned(),
            ..issue_request(ESIL_EMPLOYEE_IIN)
        },
    )
    .await;

    // Good, by serial (also with colons, as tools print it) and by certificate.
    let good = nuc_status(&gw, serial_id(&issued.serial)).await;
    assert_eq!(good.status(), CertificateStatus::Good);
    assert_eq!(good.serial, issued.serial);
    assert!(
        good.revoked_at.is_none() && good.reason.is_empty(),
        "{good:?}"
    );
    assert!(good.produced_at.is_some());
    assert!(
        good.subject.contains(&format!("IIN{ESIL_EMPLOYEE_IIN}"))
            && good.subject.contains(&format!("BIN{ESIL_PROVIDER_BIN}")),
        "{}",
        good.subject
    );
    let colons: Vec<&str> = (0..issued.serial.len())
        .step_by(2)
        .map(|at| &issued.serial[at..at + 2])
        .collect();
    let by_colons = nuc_status(&gw, serial_id(&colons.join(":").to_uppercase())).await;
    assert_eq!(by_colons.status(), CertificateStatus::Good);
    let by_der = nuc_status(&gw, status_request::Id::CertificateDer(issued.der.clone())).await;
    assert_eq!(
        (by_der.status(), by_der.serial.as_str()),
        (CertificateStatus::Good, issued.serial.as_str())
    );

    // Unknown.
    let unknown = nuc_status(&gw, serial_id("0badc0ffee")).await;
    assert_eq!(unknown.status(), CertificateStatus::Unknown);
    assert_eq!(unknown.serial, "0badc0ffee");
    assert!(unknown.subject.is_empty());
    refusal(
        gw.nuc()
            .get_status(StatusRequest {
                id: Some(serial_id("not hex")),
                ..StatusRequest::default()
            })
            .await,
        Code::InvalidArgument,
        "INVALID_FIELD",
    );

    // Issue and Revoke need the admin token.
    let revoke_request = |reason: &str| RevokeRequest {
        id: Some(revoke_request::Id::Serial(issued.serial.clone())),
        reason: reason.to_owned(),
    };
    refusal(
        gw.nuc().revoke(revoke_request("key-compromise")).await,
        Code::Unauthenticated,
        "UNAUTHENTICATED",
    );
    refusal(
        gw.nuc()
            .revoke(with_bearer(revoke_request("key-compromise"), "guessed"))
            .await,
        Code::Unauthenticated,
        "UNAUTHENTICATED",
    );
    refusal(
        gw.nuc().issue(issue_request(APPLICANT_IIN)).await,
        Code::Unauthenticated,
        "UNAUTHENTICATED",
    );
    refusal(
        gw.nuc()
            .issue(with_bearer(issue_request(APPLICANT_IIN), "guessed"))
            .await,
        Code::Unauthenticated,
        "UNAUTHENTICATED",
    );
    assert_eq!(
        nuc_status(&gw, serial_id(&issued.serial)).await.status(),
        CertificateStatus::Good,
        "a refused revocation changes nothing"
    );

    // A reason the НУЦ does not know, and a serial it never issued.
    let status = refusal(
        gw.nuc()
            .revoke(gw.authorized(revoke_request("lost-it")))
            .await,
        Code::InvalidArgument,
        "INVALID_FIELD",
    );
    assert_eq!(error_metadata(&status, "field").as_deref(), Some("reason"));
    let status = gw
        .nuc()
        .revoke(gw.authorized(RevokeRequest {
            id: Some(revoke_request::Id::Serial("0badc0ffee".to_owned())),
            reason: String::new(),
        }))
        .await
        .expect_err("an unknown serial cannot be revoked");
    assert_eq!(status.code(), Code::NotFound, "{}", describe(&status));

    // Revoked: with time and reason, the same on every later query.
    let before = OffsetDateTime::now_utc().unix_timestamp();
    let answer = revoke(&gw, &issued.serial, "key-compromise").await;
    let after = OffsetDateTime::now_utc().unix_timestamp();
    assert_eq!(answer.status(), CertificateStatus::Revoked);
    assert_eq!(answer.reason, "key-compromise");
    let at = answer.revoked_at.expect("revoked_at").seconds;
    assert!(
        (before..=after).contains(&at),
        "{before} <= {at} <= {after}"
    );
    let status = nuc_status(&gw, status_request::Id::CertificateDer(issued.der.clone())).await;
    assert_eq!(
        (
            status.status(),
            status.reason.as_str(),
            status.revoked_at.as_ref().map(|time| time.seconds)
        ),
        (CertificateStatus::Revoked, "key-compromise", Some(at))
    );
    // Revoking again keeps the first time and reason.
    let again = revoke(&gw, &issued.serial, "superseded").await;
    assert_eq!(
        (
            again.reason.as_str(),
            again.revoked_at.map(|time| time.seconds)
        ),
        ("key-compromise", Some(at))
    );
}

#[tokio::test]
async fn the_crl_lists_revoked_serials_and_is_signed_by_the_issuing_ca() {
    let gw = TestGateway::start().await;
    let kept = issue_api(&gw, "kept", issue_request(APPLICANT_IIN)).await;
    let lost = issue_api(&gw, "lost", issue_request(KARAGANDA_IIN)).await;
    let superseded = issue_api(&gw, "old", issue_request(DEMO_OPERATOR_IIN)).await;

    let empty = gw
        .nuc()
        .get_crl(GetCrlRequest {})
        .await
        .unwrap()
        .into_inner();
    let (_, crl) = CertificateRevocationList::from_der(&empty.der).expect("a DER CRL");
    assert_eq!(crl.iter_revoked_certificates().count(), 0);

    let lost_at = revoke(&gw, &lost.serial, "key-compromise")
        .await
        .revoked_at
        .unwrap()
        .seconds;
    revoke(&gw, &superseded.serial, "superseded").await;

    let der = gw
        .nuc()
        .get_crl(GetCrlRequest {})
        .await
        .unwrap()
        .into_inner()
        .der;
    let (rest, crl) = CertificateRevocationList::from_der(&der).expect("a DER CRL");
    assert!(rest.is_empty(), "trailing bytes after the CRL");

    let issuing_der = certificates(&gw.data_dir().nuc().join("issuing.cert.pem"))
        .unwrap()
        .remove(0);
    let (_, issuing) = X509Certificate::from_der(&issuing_der).unwrap();
    assert_eq!(crl.issuer(), issuing.subject(), "issued by the issuing CA");
    crl.verify_signature(issuing.public_key())
        .expect("the CRL is signed by the issuing CA");
    let now = OffsetDateTime::now_utc().unix_timestamp();
    assert!(crl.last_update().timestamp() <= now + 1);
    assert!(crl.next_update().expect("nextUpdate").timestamp() > now);

    let revoked: Vec<(String, i64, Option<u8>)> = crl
        .iter_revoked_certificates()
        .map(|entry| {
            (
                format_serial(entry.raw_serial()),
                entry.revocation_date.timestamp(),
                entry.reason_code().map(|(_, code)| code.0),
            )
        })
        .collect();
    assert_eq!(revoked.len(), 2, "{revoked:?}");
    // RFC 5280 reason codes: keyCompromise (1), superseded (4).
    assert!(
        revoked.contains(&(lost.serial.clone(), lost_at, Some(1))),
        "{revoked:?}"
    );
    assert!(
        revoked
            .iter()
            .any(|(serial, _, code)| *serial == superseded.serial && *code == Some(4)),
        "{revoked:?}"
    );
    assert!(
        !revoked.iter().any(|(serial, ..)| *serial == kept.serial),
        "{revoked:?}"
    );
}

#[tokio::test]
async fn the_http_endpoints_serve_the_crl_status_and_issuer_certificate() {
    let gw = TestGateway::start().await;
    let kept = issue_api(&gw, "kept", issue_request(APPLICANT_IIN)).await;
    let lost = issue_api(&gw, "lost", issue_request(KARAGANDA_IIN)).await;
    let at = revoke(&gw, &lost.serial, "affiliation-changed")
        .await
        .revoked_at
        .unwrap()
        .seconds;

    let get = async |path: &str| {
        let response = http_get(gw.addr(), path).await;
        assert_eq!(response.status, 200, "GET {path}: {}", response.text());
        response
    };
    assert_eq!(
        get(&format!("/nuc/status?serial={}", kept.serial))
            .await
            .text(),
        "good\n"
    );
    assert_eq!(
        get(&format!("/nuc/status?serial={}", lost.serial))
            .await
            .text(),
        format!("revoked {at} affiliation-changed\n")
    );
    assert_eq!(
        get("/nuc/status?serial=0badc0ffee").await.text(),
        "unknown\n"
    );
    assert_eq!(
        http_get(gw.addr(), "/nuc/status?serial=zz").await.status,
        400
    );

    // The same CRL as Nuc.GetCrl: issuer and entries (thisUpdate moves on).
    let response = get("/nuc/crl").await;
    assert_eq!(
        response.header("content-type"),
        Some("application/pkix-crl")
    );
    let (_, over_http) = CertificateRevocationList::from_der(&response.body).expect("a DER CRL");
    let grpc_der = gw
        .nuc()
        .get_crl(GetCrlRequest {})
        .await
        .unwrap()
        .into_inner()
        .der;
    let (_, over_grpc) = CertificateRevocationList::from_der(&grpc_der).unwrap();
    assert_eq!(over_http.issuer(), over_grpc.issuer());
    let entries = |crl: &CertificateRevocationList<'_>| -> Vec<(Vec<u8>, i64)> {
        crl.iter_revoked_certificates()
            .map(|entry| {
                (
                    entry.raw_serial().to_vec(),
                    entry.revocation_date.timestamp(),
                )
            })
            .collect()
    };
    assert_eq!(entries(&over_http), entries(&over_grpc));
    assert_eq!(entries(&over_http), [(serial_of(&lost.der).unwrap(), at)]);

    // The issuing CA certificate (AIA caIssuers), DER.
    let issuer = get("/nuc/issuing.cer").await;
    assert_eq!(issuer.header("content-type"), Some("application/pkix-cert"));
    assert_eq!(issuer.body, gw.running.ca.issuing_der());
    let (_, issuing) = X509Certificate::from_der(&issuer.body).unwrap();
    assert_eq!(over_http.issuer(), issuing.subject());

    // The gRPC service shares the port and still answers.
    assert_eq!(
        nuc_status(&gw, serial_id(&kept.serial)).await.status(),
        CertificateStatus::Good
    );
}

// === Certificate conventions ===

#[tokio::test]
async fn cli_issued_certificates_follow_the_national_conventions() {
    let gw = TestGateway::start().await;
    let url = gw.url();
    let issue = async |name: &str, extra: &[&str]| -> PathBuf {
        let prefix = gw.temp_dir().join(name);
        let mut args = vec![
            "certs",
            "issue",
            "--out",
            path_str(&prefix),
            "--gateway",
            &url,
            "--token",
            gw.admin_token(),
        ];
        args.extend_from_slice(extra);
        run_shep(&args).await.ok();
        let key = std::fs::read_to_string(gw.temp_dir().join(format!("{name}.key.pem"))).unwrap();
        assert!(
            key.starts_with("-----BEGIN PRIVATE KEY-----"),
            "PKCS#8: {key}"
        );
        gw.temp_dir().join(format!("{name}.cert.pem"))
    };
    let employee = issue(
        "employee",
        &[
            "--iin",
            ESIL_EMPLOYEE_IIN,
            "--bin",
            ESIL_PROVIDER_BIN,
            "--name",
            "КАСЕНОВА ГУЛЬНАРА",
            "--org",
            "ГУ «Отдел образования Есильского района»",
        ],
    )
    .await;
    let not_before =
        OffsetDateTime::now_utc().replace_nanosecond(0).unwrap() - time::Duration::days(2);
    let not_after = not_before + time::Duration::days(90);
    let individual = issue(
        "individual",
        &[
            "--iin",
            APPLICANT_IIN,
            "--not-before",
            &not_before.format(&Rfc3339).unwrap(),
            "--not-after",
            &not_after.format(&Rfc3339).unwrap(),
        ],
    )
    .await;
    let authentication = issue(
        "authentication",
        &["--iin", APPLICANT_IIN, "--purpose", "authentication"],
    )
    .await;

    // The file holds the certificate, then the issuing CA's.
    let chain = certificates(&employee).unwrap();
    assert_eq!(chain.len(), 2);
    assert_eq!(chain[1], gw.running.ca.issuing_der());
    let (_, issuing) = X509Certificate::from_der(&chain[1]).unwrap();

    let found = conventions(&chain[0]);
    assert_eq!(found.serial_number, [format!("IIN{ESIL_EMPLOYEE_IIN}")]);
    assert_eq!(found.units, [format!("BIN{ESIL_PROVIDER_BIN}")]);
    assert_eq!(found.issuer, issuing.subject().to_string());
    assert!(
        found.policies.iter().any(|oid| oid == POLICY_EMPLOYEE)
            && found
                .policies
                .iter()
                .any(|oid| oid == POLICY_EMPLOYEE_ORDINARY)
            && !found.policies.iter().any(|oid| oid == POLICY_INDIVIDUAL),
        "{:?}",
        found.policies
    );
    assert!(found.email_protection && !found.client_auth, "{found:?}");
    assert!(
        found.non_repudiation && !found.key_encipherment,
        "{found:?}"
    );
    assert_eq!(found.crl_uris, [format!("{url}/nuc/crl")]);
    assert_eq!(found.ocsp_uris, [format!("{url}/nuc/status")]);
    assert_eq!(found.ca_issuers_uris, [format!("{url}/nuc/issuing.cer")]);
    let (_, certificate) = X509Certificate::from_der(&chain[0]).unwrap();
    assert_eq!(
        attributes(certificate.subject(), &OID_X509_COMMON_NAME),
        ["КАСЕНОВА ГУЛЬНАРА"]
    );
    assert!(
        certificate
            .subject()
            .iter_organization()
            .any(|o| o.as_str() == Ok("ГУ «Отдел образования Есильского района»")),
        "{}",
        certificate.subject()
    );
    assert!(
        certificate
            .subject()
            .iter_country()
            .any(|c| c.as_str() == Ok("KZ"))
    );
    assert!(!certificate.is_ca());

    let individual_der = certificates(&individual).unwrap().remove(0);
    let (_, certificate) = X509Certificate::from_der(&individual_der).unwrap();
    assert_eq!(
        (
            certificate.validity().not_before.timestamp(),
            certificate.validity().not_after.timestamp()
        ),
        (not_before.unix_timestamp(), not_after.unix_timestamp()),
        "--not-before and --not-after"
    );
    let found = conventions(&individual_der);
    assert_eq!(found.serial_number, [format!("IIN{APPLICANT_IIN}")]);
    assert!(found.units.is_empty(), "{:?}", found.units);
    assert_eq!(found.policies, [POLICY_INDIVIDUAL]);
    assert!(found.email_protection);
    assert_eq!(found.crl_uris, [format!("{url}/nuc/crl")]);

    let found = conventions(&certificates(&authentication).unwrap()[0]);
    assert!(found.client_auth && !found.email_protection, "{found:?}");
    assert!(
        found.key_encipherment && !found.non_repudiation,
        "{found:?}"
    );

    // The files open with openssl and show the conventions.
    let Some(output) = openssl(&["x509", "-text", "-noout", "-in", path_str(&employee)]) else {
        return;
    };
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "openssl x509 failed: {}{text}",
        String::from_utf8_lossy(&output.stderr)
    );
    for expected in [
        "Certificate Policies",
        POLICY_EMPLOYEE_ORDINARY,
        "CRL Distribution Points",
        &format!("{url}/nuc/crl"),
        "Authority Information Access",
        &format!("{url}/nuc/status"),
        "E-mail Protection",
        "Non Repudiation",
        &format!("IIN{ESIL_EMPLOYEE_IIN}"),
        &format!("BIN{ESIL_PROVIDER_BIN}"),
    ] {
        assert!(text.contains(expected), "`{expected}` missing:\n{text}");
    }
}

/// Runs `openssl` with `args`; `None` (with a note) when it is not on PATH.
fn openssl(args: &[&str]) -> Option<std::process::Output> {
    match std::process::Command::new("openssl").args(args).output() {
        Ok(output) => Some(output),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            println!(
                "note: openssl is not on PATH; skipped `openssl {}`",
                args.join(" ")
            );
            None
        }
        Err(error) => panic!("running openssl: {error}"),
    }
}

/// The keys `shep certs issue` writes are PKCS#8 that other tools read
/// (RFC 8410 for Ed25519), not only ring.
#[tokio::test]
async fn issued_private_keys_open_with_openssl() {
    let gw = TestGateway::start().await;
    let mut failures = Vec::new();
    for alg in ["ed25519", "p256"] {
        let prefix = gw.temp_dir().join(alg);
        run_shep(&[
            "certs",
            "issue",
            "--iin",
            APPLICANT_IIN,
            "--alg",
            alg,
            "--out",
            path_str(&prefix),
            "--gateway",
            &gw.url(),
            "--token",
            gw.admin_token(),
        ])
        .await
        .ok();
        let key = gw.temp_dir().join(format!("{alg}.key.pem"));
        let Some(output) = openssl(&["pkey", "-noout", "-in", path_str(&key)]) else {
            return;
        };
        if !output.status.success() {
            failures.push(format!(
                "{alg}: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "openssl cannot read the issued keys:\n{}",
        failures.join("\n")
    );
}

// === The receiving side ===

#[tokio::test]
async fn the_client_library_verifies_a_result_document() {
    let gw = TestGateway::start().await;
    let submitted = gw.submit_application().await;
    let document = gw
        .provider(ESIL_PROVIDER)
        .document(
            "spravka.txt",
            "text/plain; charset=utf-8",
            "Справка по опеке выдана.".as_bytes(),
        )
        .unwrap();
    let id = complete(&gw, &submitted, document).await;

    let application = gw.status(&id).await;
    assert_eq!(application.status(), ApplicationStatus::Completed);
    let result = application
        .events
        .iter()
        .rev()
        .find_map(|event| event.result.clone())
        .expect("the COMPLETED event carries the result");

    let anchors = TrustAnchors::from_nuc_dir(&gw.data_dir().nuc()).expect("the НУЦ's anchors");
    let signer = anchors
        .verify_document(&result)
        .unwrap_or_else(|error| panic!("the result does not verify: {error}"));
    assert_eq!(signer.iin.as_deref(), Some(ESIL_EMPLOYEE_IIN));
    assert_eq!(signer.bin.as_deref(), Some(ESIL_PROVIDER_BIN));
    assert_eq!(signer.common_name, "КАСЕНОВА ГУЛЬНАРА");

    let mut tampered = result.clone();
    tampered.content = "Справка по опеке НЕ выдана.".as_bytes().to_vec();
    assert!(
        matches!(
            anchors.verify_document(&tampered),
            Err(GatewayError::SignatureInvalid)
        ),
        "{:?}",
        anchors.verify_document(&tampered)
    );
    let mut unsigned = result.clone();
    unsigned.signature = None;
    assert!(matches!(
        anchors.verify_document(&unsigned),
        Err(GatewayError::NotSigned)
    ));
    // Another НУЦ's anchors do not vouch for it.
    let stranger = CertificateAuthority::generate().unwrap();
    let foreign = TrustAnchors::new(
        &[stranger.root_der().to_vec()],
        &[stranger.issuing_der().to_vec()],
    )
    .unwrap();
    assert!(matches!(
        foreign.verify_document(&result),
        Err(GatewayError::UnknownIssuer)
    ));
}

// === Persistence and serials ===

#[tokio::test]
async fn a_revocation_survives_a_restart_on_the_same_data_dir() {
    let data = TempDir::new("shep-nuc-data");
    let gw = TestGateway::builder()
        .data_dir(data.path())
        .revocation_cache_ms(0)
        .start()
        .await;
    let token = gw.admin_token().to_owned();
    let root = gw.running.ca.root_der().to_vec();
    let kept = issue_api(&gw, "kept", issue_request(APPLICANT_IIN)).await;
    let lost = issue_api(&gw, "lost", issue_request(APPLICANT_IIN)).await;
    let kept_signer = kept.signer();
    let lost_signer = lost.signer();
    let at = revoke(&gw, &lost.serial, "cessation-of-operation")
        .await
        .revoked_at
        .unwrap();
    gw.shutdown().await;

    let gw = TestGateway::builder()
        .data_dir(data.path())
        .revocation_cache_ms(0)
        .start()
        .await;
    assert_eq!(gw.running.ca.root_der(), root, "the same НУЦ");
    assert_eq!(gw.admin_token(), token, "the same admin token");
    let status = nuc_status(&gw, serial_id(&lost.serial)).await;
    assert_eq!(
        (
            status.status(),
            status.reason.as_str(),
            status.revoked_at.as_ref()
        ),
        (
            CertificateStatus::Revoked,
            "cessation-of-operation",
            Some(&at)
        )
    );
    assert_eq!(
        nuc_status(&gw, serial_id(&kept.serial)).await.status(),
        CertificateStatus::Good
    );

    // The restarted gateway refuses the revoked certificate and accepts the other.
    refusal(
        apply(&gw, &Participant::new("pep", Channel::Portal, lost_signer)).await,
        Code::Unauthenticated,
        "CERTIFICATE_REVOKED",
    );
    apply(&gw, &Participant::new("pep", Channel::Portal, kept_signer))
        .await
        .unwrap_or_else(|status| panic!("refused after restart: {}", describe(&status)));
    gw.submit_application().await;

    // And its CRL still lists the serial.
    let der = gw
        .nuc()
        .get_crl(GetCrlRequest {})
        .await
        .unwrap()
        .into_inner()
        .der;
    let (_, crl) = CertificateRevocationList::from_der(&der).unwrap();
    assert!(
        crl.iter_revoked_certificates()
            .any(|entry| format_serial(entry.raw_serial()) == lost.serial)
    );
    gw.shutdown().await;
}

/// A random 16-byte serial starts with a zero byte once in 128 certificates;
/// DER drops that byte from the INTEGER, so the certificate carries 15 bytes.
/// The НУЦ must still know the certificate by the serial it carries: its
/// status, its revocation, and the gateway's revocation check.
#[tokio::test]
async fn every_issued_certificate_is_known_by_the_serial_it_carries() {
    let gw = TestGateway::builder().revocation_cache_ms(0).start().await;
    let started = Instant::now();
    let mut issued = None;
    for _ in 0..3000 {
        let identity = gw.running.ca.issue(&applicant_spec()).unwrap();
        if serial_of(&identity.certificate_der).unwrap().len() < 16 {
            issued = Some(identity);
            break;
        }
    }
    let Some(issued) = issued else {
        println!("note: no serial with a leading zero byte in 3000 certificates; nothing to check");
        return;
    };
    println!("found a short serial after {:?}", started.elapsed());
    let der = issued.certificate_der.clone();
    let serial = format_serial(&serial_of(&der).unwrap());
    let status = nuc_status(&gw, status_request::Id::CertificateDer(der.clone())).await;
    assert_eq!(
        status.status(),
        CertificateStatus::Good,
        "the НУЦ does not know its own certificate with serial {serial}"
    );
    let applicant = Participant::new("pep", Channel::Portal, issued.signer().unwrap());
    apply(&gw, &applicant).await.expect("a good certificate");
    gw.nuc()
        .revoke(gw.authorized(RevokeRequest {
            id: Some(revoke_request::Id::CertificateDer(der)),
            reason: "key-compromise".to_owned(),
        }))
        .await
        .unwrap_or_else(|status| panic!("revoking serial {serial}: {}", describe(&status)));
    refusal(
        apply(&gw, &applicant).await,
        Code::Unauthenticated,
        "CERTIFICATE_REVOKED",
    );
    assert!(
        http_get(gw.addr(), &format!("/nuc/status?serial={serial}"))
            .await
            .text()
            .starts_with("revoked "),
    );
}

/// `openssl` when installed; `None` (the test skips, saying so) unless
/// `SHEP_REQUIRE_OPENSSL` is set, as CI does after installing it.
fn openssl_binary() -> Option<&'static str> {
    let found = std::process::Command::new("openssl")
        .arg("version")
        .output()
        .is_ok_and(|output| output.status.success());
    if found {
        return Some("openssl");
    }
    assert!(
        std::env::var_os("SHEP_REQUIRE_OPENSSL").is_none(),
        "openssl is required (SHEP_REQUIRE_OPENSSL) but not installed"
    );
    eprintln!("skipped: `openssl` is not installed (Debian: apt-get install openssl)");
    None
}

#[tokio::test]
async fn openssl_ocsp_gets_good_then_revoked_for_a_cli_issued_certificate() {
    let Some(openssl) = openssl_binary() else {
        return;
    };
    let gw = TestGateway::start().await;
    let url = gw.url();
    let token = gw.admin_token().to_owned();
    let out = TempDir::new("shep-ocsp");
    let prefix = out.path().join("ivanov");
    run_shep(&[
        "certs",
        "issue",
        "--iin",
        KARAGANDA_IIN,
        "--name",
        "ИВАНОВ СЕРГЕЙ",
        "--out",
        path_str(&prefix),
        "--gateway",
        &url,
        "--token",
        &token,
    ])
    .await
    .ok();
    let cert = out.path().join("ivanov.cert.pem");
    let nuc = gw.data_dir().nuc();
    // As a relying party asks: the URL the certificate carries, a nonce, and
    // the answer's signature checked up to the НУЦ root. Off the runtime's
    // thread, which serves the gateway.
    let ask = async || {
        let mut command = std::process::Command::new(openssl);
        command
            .args(["ocsp", "-timeout", "10", "-issuer"])
            .arg(nuc.join("issuing.cert.pem"))
            .arg("-CAfile")
            .arg(nuc.join("root.cert.pem"))
            .arg("-cert")
            .arg(&cert)
            .args(["-url", &format!("{url}/nuc/status")]);
        let output = tokio::task::spawn_blocking(move || command.output())
            .await
            .unwrap()
            .expect("running openssl ocsp");
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(output.status.success(), "{stdout}\n{stderr}");
        assert!(stderr.contains("Response verify OK"), "{stdout}\n{stderr}");
        stdout
    };
    let answer = ask().await;
    assert!(answer.contains(": good"), "{answer}");

    run_shep(&[
        "certs",
        "revoke",
        "--cert",
        path_str(&cert),
        "--reason",
        "key-compromise",
        "--gateway",
        &url,
        "--token",
        &token,
    ])
    .await
    .ok();
    let answer = ask().await;
    assert!(answer.contains(": revoked"), "{answer}");
    assert!(answer.contains("keyCompromise"), "{answer}");

    // Bytes that are not a request get `malformedRequest` (status 1), not a
    // hang or an HTTP error.
    let malformed = http_request(
        gw.addr(),
        "POST",
        "/nuc/status",
        &[("content-type", "application/ocsp-request")],
        b"not DER",
    )
    .await;
    assert_eq!(malformed.status, 200);
    assert_eq!(malformed.body, [0x30, 0x03, 0x0a, 0x01, 0x01]);
}
