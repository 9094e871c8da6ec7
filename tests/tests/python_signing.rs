//! Teams outside Rust sign envelopes too: `tests/python/sign_envelope.py`
//! (only the `cryptography` and `protobuf` packages) signs an envelope that
//! the gateway accepts, and a byte changed after signing is refused.
//!
//! These tests fail, rather than skip, without python3: the packages come
//! from [`python()`], which installs the pinned ones under the target
//! directory on first use.

use std::path::{Path, PathBuf};

use prost::Message;
use shep_proto::envelope::v1::{Body, Channel, MessageType, SignatureAlgorithm, SignedEnvelope};
use shep_proto::nuc::v1::{IssueRequest, KeyAlgorithm};
use shep_tests::*;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tonic::Code;

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("python/sign_envelope.py")
}

/// Runs the script for the demo applicant's application, signed with `key`
/// and `cert`, and returns the envelope it wrote.
async fn python_envelope(
    gw: &TestGateway,
    (key, cert): (&Path, &Path),
    message_id: &str,
    date: OffsetDateTime,
) -> Vec<u8> {
    let descriptors = gw.temp_dir().join("shep.desc");
    std::fs::write(&descriptors, shep_proto::FILE_DESCRIPTOR_SET).unwrap();
    let date = date.format(&Rfc3339).unwrap();
    let mut command = python().command();
    command.arg(script());
    for (flag, value) in [
        ("--descriptors", descriptors.to_str().unwrap()),
        ("--key", key.to_str().unwrap()),
        ("--cert", cert.to_str().unwrap()),
        ("--message-id", message_id),
        ("--service", ESIL_SERVICE),
        ("--iin", APPLICANT_IIN),
        ("--date", date.as_str()),
    ] {
        command.args([flag, value]);
    }
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .expect("running python3");
    assert!(
        output.status.success(),
        "sign_envelope.py failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

#[tokio::test]
async fn an_envelope_signed_in_python_is_accepted_and_a_changed_byte_is_not() {
    // The first use installs the packages: done before the gateway starts.
    python();
    let gw = TestGateway::start().await;
    let message_id = new_message_id();
    let now = OffsetDateTime::now_utc();
    let (key, cert) = gw.data_dir().identity("applicant");
    let bytes = python_envelope(&gw, (&key, &cert), &message_id, now).await;

    // What Python wrote is a SignedEnvelope with the body we asked for.
    let envelope = SignedEnvelope::decode(bytes.as_slice()).expect("a SignedEnvelope");
    let body = Body::decode(envelope.body.as_slice()).expect("a Body");
    assert_eq!(body.message_id, message_id);
    assert_eq!(body.service_id, ESIL_SERVICE);
    assert_eq!(body.message_type(), MessageType::Request);
    assert_eq!(body.channel(), Channel::Portal);
    assert_eq!(body.sender.as_ref().unwrap().sender_id, "pep");
    assert_eq!(body.subject, Some(iin(APPLICANT_IIN)));
    assert_eq!(
        body.message_date.as_ref().map(|date| date.seconds),
        Some(now.unix_timestamp())
    );
    let signature = envelope.signature.as_ref().expect("signed");
    assert_eq!(signature.algorithm(), SignatureAlgorithm::Ed25519);
    let pem_chain = shep_nuc::ca::certificates(&cert).unwrap();
    assert_eq!(signature.certificate_der, pem_chain[0]);
    assert_eq!(signature.chain_der, pem_chain[1..]);

    let receipt = gw
        .gateway()
        .submit(envelope.clone())
        .await
        .unwrap_or_else(|status| panic!("the Python envelope was refused: {}", describe(&status)))
        .into_inner();
    assert_eq!(receipt.message_id, message_id);
    assert_eq!(receipt.provider_id, ESIL_PROVIDER);
    let application = gw.status(&message_id).await;
    assert_eq!(application.sender_id, "pep");

    refusal(
        gw.gateway()
            .submit(with_one_byte_changed(envelope, &message_id))
            .await,
        Code::Unauthenticated,
        "SIGNATURE_INVALID",
    );
}

/// `envelope` with one byte of its body changed after signing: a digit of the
/// message id, so the body still parses and names a fresh application.
fn with_one_byte_changed(mut envelope: SignedEnvelope, message_id: &str) -> SignedEnvelope {
    let at = envelope
        .body
        .windows(message_id.len())
        .position(|window| window == message_id.as_bytes())
        .expect("the message id is in the body");
    let digit = &mut envelope.body[at];
    *digit = if *digit == b'0' { b'1' } else { b'0' };
    let changed = Body::decode(envelope.body.as_slice()).expect("still a Body");
    assert_ne!(changed.message_id, message_id);
    envelope
}

#[tokio::test]
async fn an_ecdsa_p256_envelope_signed_in_python_is_accepted() {
    // The first use installs the packages: done before the gateway starts.
    python();
    let gw = TestGateway::start().await;
    let issued = gw
        .nuc()
        .issue(gw.authorized(IssueRequest {
            iin: APPLICANT_IIN.to_owned(),
            algorithm: KeyAlgorithm::EcdsaP256 as i32,
            ..IssueRequest::default()
        }))
        .await
        .unwrap_or_else(|status| panic!("Nuc.Issue refused: {}", describe(&status)))
        .into_inner();
    let key = gw.temp_dir().join("p256.key.pem");
    let cert = gw.temp_dir().join("p256.cert.pem");
    std::fs::write(&key, issued.key_pem).unwrap();
    std::fs::write(&cert, issued.certificate_pem).unwrap();

    let message_id = new_message_id();
    let bytes = python_envelope(&gw, (&key, &cert), &message_id, OffsetDateTime::now_utc()).await;
    let envelope = SignedEnvelope::decode(bytes.as_slice()).expect("a SignedEnvelope");
    assert_eq!(
        envelope.signature.as_ref().unwrap().algorithm(),
        SignatureAlgorithm::EcdsaP256Sha256
    );
    let receipt = gw
        .gateway()
        .submit(envelope.clone())
        .await
        .unwrap_or_else(|status| panic!("the Python envelope was refused: {}", describe(&status)))
        .into_inner();
    assert_eq!(receipt.message_id, message_id);

    refusal(
        gw.gateway()
            .submit(with_one_byte_changed(envelope, &message_id))
            .await,
        Code::Unauthenticated,
        "SIGNATURE_INVALID",
    );
}
