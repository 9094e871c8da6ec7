//! What the signature check costs per envelope, by algorithm, with and
//! without the revocation status cache; and what a sync lookup through the
//! gateway engine costs with every check on and with signature checks off.
//! In-process (no network), so it measures the checks, not the transport.
//!
//! The Ed25519 groups compare, for 1, 8, 32 and 64 signatures checked
//! together: the signature check as webpki made it for every envelope
//! (certificate parsed, then the signature), with the signer's key cached per
//! certificate, and as one batch (`shep_nuc::verify::batch`); and the same
//! number of concurrent lookups through the engine with
//! `checks.batch_ed25519` off and on.
//!
//! Run: `cargo bench -p shep-gateway --bench verify_bench`
//! (only the batch groups: `… -- ed25519`)

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use prost::Message;
use rustls_pki_types::CertificateDer;
use shep_adapters::InProcess;
use shep_gateway::config::GatewayConfig;
use shep_gateway::engine::Engine;
use shep_gateway::routes::{DEFAULT_ROUTES, RoutingTable};
use shep_nuc::ca::{CertificateAuthority, IdentitySpec, KeyAlgorithm, Signer};
use shep_nuc::revocation::RevocationCheck;
use shep_nuc::status::InProcessNuc;
use shep_nuc::verify::SignatureVerifier;
use shep_nuc::verify::batch::{BatchItem, verify_ed25519};
use shep_proto::envelope::v1::Signature;
use shep_proto::envelope::v1::{Body, Channel, MessageType, Payload, Sender, Subject, subject};
use shep_registries::{RegistryData, RegistryKind};
use time::OffsetDateTime;
use webpki::EndEntityCert;

const APPLICANT: &str = "850315301235";

fn body() -> Body {
    Body {
        message_id: uuid::Uuid::new_v4().to_string(),
        service_id: "GbdflInfoByIin_v1".to_owned(),
        message_type: MessageType::Request as i32,
        message_date: Some(prost_types::Timestamp::from(SystemTime::now())),
        sender: Some(Sender {
            sender_id: "pep".to_owned(),
        }),
        subject: Some(Subject {
            id: Some(subject::Id::Iin(APPLICANT.to_owned())),
        }),
        channel: Channel::Portal as i32,
        // About 1 KiB, like the peer calibration's payload.
        payload: Some(Payload {
            content_type: "application/json".to_owned(),
            data: vec![b'x'; 1000],
        }),
        ..Body::default()
    }
}

fn signer(ca: &CertificateAuthority, algorithm: KeyAlgorithm) -> Signer {
    let mut spec = IdentitySpec::individual(APPLICANT, "СЕРИКБАЕВ НУРЛАН");
    spec.algorithm = algorithm;
    ca.issue(&spec).unwrap().signer().unwrap()
}

const ALGORITHMS: [(&str, KeyAlgorithm); 3] = [
    ("ed25519", KeyAlgorithm::Ed25519),
    ("ecdsa-p256", KeyAlgorithm::EcdsaP256),
    ("rsa-2048", KeyAlgorithm::Rsa2048),
];

fn verification(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let ca = Arc::new(CertificateAuthority::generate().unwrap());
    let verifier = SignatureVerifier::new(
        &[ca.root_der().to_vec()],
        &[ca.issuing_der().to_vec()],
        Duration::from_secs(300),
    )
    .unwrap();
    let cached = RevocationCheck::new(
        InProcessNuc::new(ca.clone()).boxed(),
        Duration::from_secs(60),
    );
    let uncached = RevocationCheck::new(InProcessNuc::new(ca.clone()).boxed(), Duration::ZERO);
    let mut group = c.benchmark_group("verify");
    group.throughput(Throughput::Elements(1));
    for (name, algorithm) in ALGORITHMS {
        let bytes = body().encode_to_vec();
        let signature = signer(&ca, algorithm).sign(&bytes).unwrap();
        let now = OffsetDateTime::now_utc();
        for (cache, check) in [("status-cached", &cached), ("status-uncached", &uncached)] {
            group.bench_with_input(BenchmarkId::new(name, cache), &bytes, |b, bytes| {
                b.iter(|| {
                    let signer = verifier
                        .verify(Some(black_box(&signature)), black_box(bytes), now)
                        .unwrap();
                    runtime
                        .block_on(check.check(&shep_nuc::status::CertificateId {
                            issuer: signer.issuer.clone(),
                            serial: signer.serial.clone(),
                        }))
                        .unwrap();
                });
            });
        }
    }
    group.finish();
}

fn engine(ca: &Arc<CertificateAuthority>, verify_signatures: bool) -> Engine {
    let mut config = GatewayConfig::default();
    config.checks.verify_signatures = verify_signatures;
    engine_with(ca, config)
}

fn engine_with(ca: &Arc<CertificateAuthority>, config: GatewayConfig) -> Engine {
    // Every registry in-process: the default routes name all three.
    let data = Arc::new(RegistryData::builtin());
    let mut registries = HashMap::new();
    for kind in RegistryKind::ALL {
        let adapter = InProcess::new(kind.id(), Arc::new(kind.registry(data.clone()))).boxed();
        registries.insert(kind, adapter);
    }
    let routes = RoutingTable::from_toml(DEFAULT_ROUTES, "embedded", &RegistryKind::IDS).unwrap();
    let verifier = SignatureVerifier::new(
        &[ca.root_der().to_vec()],
        &[ca.issuing_der().to_vec()],
        Duration::from_secs(300),
    )
    .unwrap();
    let revocation = RevocationCheck::new(
        InProcessNuc::new(ca.clone()).boxed(),
        Duration::from_secs(60),
    );
    Engine::new(&config, routes, verifier, revocation, registries)
}

fn gateway_call(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let ca = Arc::new(CertificateAuthority::generate().unwrap());
    let mut group = c.benchmark_group("engine_call");
    group.throughput(Throughput::Elements(1));
    for (name, algorithm) in ALGORITHMS {
        let envelope = signer(&ca, algorithm).seal(&body()).unwrap();
        for (checks, on) in [("checks-on", true), ("checks-off", false)] {
            if !on && name != "ed25519" {
                continue;
            }
            let engine = engine(&ca, on);
            group.bench_function(BenchmarkId::new(name, checks), |b| {
                b.iter(|| {
                    let response = runtime
                        .block_on(shep_gateway::pipeline::call(
                            &engine,
                            black_box(envelope.clone()),
                            &shep_gateway::toolkit::CallContext::default(),
                        ))
                        .unwrap();
                    black_box(response);
                });
            });
        }
    }
    group.finish();
}

/// Signatures checked together.
const CONCURRENCY: [usize; 4] = [1, 8, 32, 64];

/// `count` envelopes from `count` signers (certificates), each its own body.
fn signed_bodies(ca: &CertificateAuthority, count: usize) -> Vec<(Vec<u8>, Signature)> {
    (0..count)
        .map(|_| {
            let bytes = body().encode_to_vec();
            let signature = signer(ca, KeyAlgorithm::Ed25519).sign(&bytes).unwrap();
            (bytes, signature)
        })
        .collect()
}

fn ed25519_batch(c: &mut Criterion) {
    let ca = Arc::new(CertificateAuthority::generate().unwrap());
    let verifier = SignatureVerifier::new(
        &[ca.root_der().to_vec()],
        &[ca.issuing_der().to_vec()],
        Duration::from_secs(300),
    )
    .unwrap();
    let now = OffsetDateTime::now_utc();
    let mut group = c.benchmark_group("ed25519_verify");
    for count in CONCURRENCY {
        let signed = signed_bodies(&ca, count);
        for (bytes, signature) in &signed {
            // Chains cached, as for any repeat signer.
            verifier.verify(Some(signature), bytes, now).unwrap();
        }
        group.throughput(Throughput::Elements(count as u64));
        group.bench_function(BenchmarkId::new("webpki-per-envelope", count), |b| {
            b.iter(|| {
                for (bytes, signature) in &signed {
                    let prepared = verifier.prepare(Some(signature), now).unwrap();
                    black_box(prepared);
                    let der = CertificateDer::from(signature.certificate_der.as_slice());
                    EndEntityCert::try_from(&der)
                        .unwrap()
                        .verify_signature(webpki::ring::ED25519, bytes, &signature.value)
                        .unwrap();
                }
            });
        });
        group.bench_function(BenchmarkId::new("cached-key", count), |b| {
            b.iter(|| {
                for (bytes, signature) in &signed {
                    black_box(verifier.verify(Some(signature), bytes, now).unwrap());
                }
            });
        });
        group.bench_function(BenchmarkId::new("batched", count), |b| {
            b.iter(|| {
                let prepared: Vec<_> = signed
                    .iter()
                    .map(|(_, signature)| verifier.prepare(Some(signature), now).unwrap())
                    .collect();
                let items: Vec<_> = prepared
                    .iter()
                    .zip(&signed)
                    .map(|(prepared, (bytes, _))| BatchItem {
                        key: prepared.batchable_ed25519().unwrap(),
                        message: bytes,
                        signature: prepared.value(),
                    })
                    .collect();
                for result in verify_ed25519(&items) {
                    result.unwrap();
                }
            });
        });
    }
    group.finish();
}

/// Where a screened batch's time goes, per signature of a batch of 64: the
/// batch equation alone (ed25519-dalek, nothing screened), the screening of
/// one signature (`s` and `R` canonical, `R` torsion-free), and one single
/// verification with the cached key (ring).
fn ed25519_parts(c: &mut Criterion) {
    let ca = Arc::new(CertificateAuthority::generate().unwrap());
    let verifier = SignatureVerifier::new(
        &[ca.root_der().to_vec()],
        &[ca.issuing_der().to_vec()],
        Duration::from_secs(300),
    )
    .unwrap();
    let now = OffsetDateTime::now_utc();
    let signed = signed_bodies(&ca, 64);
    let prepared: Vec<_> = signed
        .iter()
        .map(|(_, signature)| verifier.prepare(Some(signature), now).unwrap())
        .collect();
    let keys: Vec<_> = prepared
        .iter()
        .map(|prepared| {
            let spki_key: [u8; 32] = prepared
                .batchable_ed25519()
                .unwrap()
                .ed25519_bytes()
                .unwrap();
            ed25519_dalek::VerifyingKey::from_bytes(&spki_key).unwrap()
        })
        .collect();
    let messages: Vec<&[u8]> = signed.iter().map(|(bytes, _)| bytes.as_slice()).collect();
    let signatures: Vec<_> = signed
        .iter()
        .map(|(_, signature)| ed25519_dalek::Signature::from_slice(&signature.value).unwrap())
        .collect();
    let mut group = c.benchmark_group("ed25519_parts");
    group.throughput(Throughput::Elements(64));
    group.bench_function("dalek-batch-unscreened/64", |b| {
        b.iter(|| ed25519_dalek::verify_batch(&messages, &signatures, &keys).unwrap());
    });
    group.bench_function("screening/64", |b| {
        b.iter(|| {
            for (_, signature) in &signed {
                assert!(shep_nuc::verify::batch::is_batchable_signature(black_box(
                    &signature.value
                )));
            }
        });
    });
    group.bench_function("ring-cached-key/64", |b| {
        b.iter(|| {
            for (prepared, (bytes, signature)) in prepared.iter().zip(&signed) {
                let key = prepared.batchable_ed25519().unwrap();
                key.verify_ed25519(bytes, &signature.value).unwrap();
            }
        });
    });
    group.finish();
}

fn ed25519_engine_concurrent(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let ca = Arc::new(CertificateAuthority::generate().unwrap());
    let mut group = c.benchmark_group("ed25519_engine_concurrent");
    for (name, batch) in [("batch-off", false), ("batch-on", true)] {
        let mut config = GatewayConfig::default();
        config.checks.batch_ed25519 = batch;
        let engine = Arc::new(engine_with(&ca, config));
        for count in CONCURRENCY {
            let envelopes: Vec<_> = (0..count)
                .map(|_| signer(&ca, KeyAlgorithm::Ed25519).seal(&body()).unwrap())
                .collect();
            group.throughput(Throughput::Elements(count as u64));
            group.bench_function(BenchmarkId::new(name, count), |b| {
                b.iter(|| {
                    runtime.block_on(async {
                        let calls: Vec<_> = envelopes
                            .iter()
                            .map(|envelope| {
                                let engine = engine.clone();
                                let envelope = envelope.clone();
                                tokio::spawn(async move {
                                    shep_gateway::pipeline::call(
                                        &engine,
                                        envelope,
                                        &shep_gateway::toolkit::CallContext::default(),
                                    )
                                    .await
                                    .unwrap()
                                })
                            })
                            .collect();
                        for call in calls {
                            black_box(call.await.unwrap());
                        }
                    });
                });
            });
        }
    }
    group.finish();
}

criterion_group!(
    benches,
    verification,
    gateway_call,
    ed25519_batch,
    ed25519_parts,
    ed25519_engine_concurrent
);
criterion_main!(benches);
