//! Fuzz properties of envelope decoding and the checks of `Gateway.Call` and
//! `Gateway.Submit` (docs/FUZZING.md): whatever arrives is refused with a
//! stable reason, never INTERNAL, and a signed envelope changed in transit is
//! never accepted. A fixed budget here; `PROPTEST_CASES=… cargo test
//! --release -p shep-gateway --lib fuzz` for a long run.

use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

use proptest::collection::vec;
use proptest::prelude::*;
use prost::Message as _;
use shep_nuc::ca::{IdentitySpec, Signer};
use shep_proto::envelope::v1::{
    Attachment, Body, Payload, PowerOfAttorneyRef, Property, Reason, Sender, Signature,
    StatusReport, Subject, subject,
};
use time::OffsetDateTime;

use super::{Engine, GatewayError, Rpc, SignedEnvelope, call, submit};
use crate::config::GatewayConfig;
use crate::envelope;
use crate::testing::{self, APPLICANT, ESIL_SERVICE};
use crate::toolkit::CallContext;

/// `message_date` may be this far off: a long campaign outlives the default
/// five minutes, and the signed envelopes below are made once.
const SKEW_SECS: u64 = 7 * 24 * 3600;

/// A runtime, an engine that checks signatures, and an envelope of each RPC
/// signed by the applicant (both accepted as they are).
struct World {
    runtime: tokio::runtime::Runtime,
    engine: Arc<Engine>,
    lookup: SignedEnvelope,
    application: SignedEnvelope,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime");
        let mut config = GatewayConfig::default();
        config.checks.verify_signatures = true;
        config.checks.message_date_skew_secs = SKEW_SECS;
        let engine = runtime.block_on(async { testing::signing_engine_with(config) });
        let signer = applicant_signer();
        let seal = |service: &str| {
            let body = Body {
                message_id: testing::message_id(),
                service_id: service.to_owned(),
                ..testing::portal_body()
            };
            signer.seal(&body).expect("signs")
        };
        let world = World {
            runtime,
            engine,
            lookup: seal("GbdflInfoByIin_v1"),
            application: seal(ESIL_SERVICE),
        };
        for rpc in [Rpc::Call, Rpc::Submit] {
            let envelope = world.envelope(rpc).clone();
            if let Err(error) = world.send(rpc, envelope) {
                panic!("the unchanged {rpc:?} envelope is accepted: {error}");
            }
        }
        world
    })
}

fn applicant_signer() -> Signer {
    testing::ca()
        .issue(&IdentitySpec::individual(APPLICANT, "Fuzz Applicant"))
        .and_then(|issued| issued.signer())
        .expect("the applicant's signer")
}

impl World {
    fn envelope(&self, rpc: Rpc) -> &SignedEnvelope {
        match rpc {
            Rpc::Submit => &self.application,
            _ => &self.lookup,
        }
    }

    fn send(&self, rpc: Rpc, envelope: SignedEnvelope) -> Result<(), GatewayError> {
        let ctx = CallContext::default();
        self.runtime.block_on(async {
            match rpc {
                Rpc::Submit => submit(&self.engine, envelope, &ctx).await.map(drop),
                _ => call(&self.engine, envelope, &ctx).await.map(drop),
            }
        })
    }
}

/// A refusal must carry a stable reason a client can act on.
fn assert_refused(result: Result<(), GatewayError>) -> Result<(), TestCaseError> {
    let error = result.expect_err("refused");
    let reason = error.reason();
    prop_assert!(
        !matches!(reason, Reason::Internal | Reason::Unspecified),
        "{error}: {reason:?}"
    );
    Ok(())
}

// === strategies ===

fn rpc() -> impl Strategy<Value = Rpc> {
    prop_oneof![Just(Rpc::Call), Just(Rpc::Submit)]
}

fn uuid_like() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<u128>().prop_map(|bits| uuid::Uuid::from_u128(bits).to_string()),
        any::<u128>().prop_map(|bits| format!("{{{}}}", uuid::Uuid::from_u128(bits))),
        Just(String::new()),
        "[0-9a-fA-F{}-]{0,40}",
        any::<String>(),
    ]
}

fn one_of(values: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop_oneof![
        3 => proptest::sample::select(values).prop_map(str::to_owned),
        1 => any::<String>(),
    ]
}

fn identifier() -> impl Strategy<Value = String> {
    one_of(&[
        APPLICANT,
        "061211600012",
        "911212333888",
        "940140000385",
        "151240012341",
        "",
    ])
}

fn timestamp() -> impl Strategy<Value = prost_types::Timestamp> {
    let now = OffsetDateTime::now_utc().unix_timestamp();
    prop_oneof![
        (-600i64..600, 0i32..1_000_000_000).prop_map(move |(offset, nanos)| {
            prost_types::Timestamp {
                seconds: now + offset,
                nanos,
            }
        }),
        (any::<i64>(), any::<i32>())
            .prop_map(|(seconds, nanos)| prost_types::Timestamp { seconds, nanos }),
    ]
}

fn small_bytes() -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..64)
}

/// A body with every field drawn from values the checks treat differently:
/// valid ones, near misses and anything at all.
fn body() -> impl Strategy<Value = Body> {
    let head = (
        uuid_like(),
        uuid_like(),
        one_of(&[
            "GbdflInfoByIin_v1",
            "GbdulInfoByBin_v2",
            "EnisPowerOfAttorney_v1",
            ESIL_SERVICE,
            "archive-certificate-mangystau",
        ]),
        -1i32..6,
        one_of(&["", "arm-rshep-sko-esil-edu", "arm-rshep-mangystau-mio"]),
        proptest::option::of(timestamp()),
        proptest::option::of(one_of(&["pep", "is-con", "", " "])),
        vec(("\\PC{0,32}", "\\PC{0,8}|x{501}"), 0..3),
    );
    let tail = (
        uuid_like(),
        proptest::option::of(prop_oneof![
            identifier().prop_map(subject::Id::Iin),
            identifier().prop_map(subject::Id::Bin),
        ]),
        -1i32..6,
        proptest::option::of((any::<String>(), identifier())),
        proptest::option::of((any::<String>(), small_bytes())),
        vec((any::<String>(), any::<String>(), small_bytes()), 0..2),
        any::<bool>(),
        proptest::option::of((-1i32..8, any::<String>())),
        any::<String>(),
    );
    (head, tail).prop_map(
        |(
            (message_id, correlation_id, service_id, message_type, route_id, date, sender, props),
            (session_id, id, channel, attorney, payload, attachments, test, report, purpose),
        )| Body {
            message_id,
            correlation_id,
            service_id,
            message_type,
            route_id,
            message_date: date,
            sender: sender.map(|sender_id| Sender { sender_id }),
            properties: props
                .into_iter()
                .map(|(key, value)| Property { key, value })
                .collect(),
            session_id,
            subject: id.map(|id| Subject { id: Some(id) }),
            channel,
            power_of_attorney: attorney.map(|(number, representative_iin)| PowerOfAttorneyRef {
                number,
                representative_iin,
            }),
            payload: payload.map(|(content_type, data)| Payload { content_type, data }),
            attachments: attachments
                .into_iter()
                .map(|(name, content_type, data)| Attachment {
                    name,
                    content_type,
                    data,
                })
                .collect(),
            test,
            report: report.map(|(status, reason)| StatusReport {
                status,
                reason,
                ..StatusReport::default()
            }),
            purpose,
        },
    )
}

/// The serialized body: arbitrary bytes, a generated body, or a generated
/// body with bytes flipped.
fn body_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        vec(any::<u8>(), 0..256),
        body().prop_map(|body| body.encode_to_vec()),
        (body(), vec((any::<usize>(), 1u8..=255), 1..4)).prop_map(|(body, flips)| {
            let mut bytes = body.encode_to_vec();
            if !bytes.is_empty() {
                let len = bytes.len();
                for (at, mask) in flips {
                    bytes[at % len] ^= mask;
                }
            }
            bytes
        }),
    ]
}

fn signature() -> impl Strategy<Value = Option<Signature>> {
    proptest::option::of(
        (
            prop_oneof![Just(1i32), Just(2), Just(3), any::<i32>()],
            vec(any::<u8>(), 0..400),
            vec(any::<u8>(), 0..96),
            vec(vec(any::<u8>(), 0..64), 0..2),
        )
            .prop_map(|(algorithm, certificate_der, value, chain_der)| Signature {
                algorithm,
                certificate_der,
                value,
                chain_der,
            }),
    )
}

/// Which part of a signed envelope a mutation changes.
#[derive(Debug, Clone, Copy)]
enum Part {
    Body,
    Value,
    Certificate,
    Algorithm,
    Chain,
}

fn part() -> impl Strategy<Value = Part> {
    prop_oneof![
        3 => Just(Part::Body),
        1 => Just(Part::Value),
        2 => Just(Part::Certificate),
        1 => Just(Part::Algorithm),
        1 => Just(Part::Chain),
    ]
}

fn flip(bytes: &mut [u8], at: usize, mask: u8) {
    if !bytes.is_empty() {
        let len = bytes.len();
        bytes[at % len] ^= mask;
    }
}

proptest! {
    #![proptest_config(crate::fuzzing::budget(256))]

    #[test]
    fn decoding_any_body_gives_an_inbound_or_a_stable_refusal(bytes in body_bytes()) {
        let envelope = SignedEnvelope { xml_data: Vec::new(), body: bytes, signature: None };
        if let Err(error) = envelope::decode(&envelope, OffsetDateTime::now_utc(), SKEW_SECS) {
            assert_refused(Err(error))?;
        }
    }

    #[test]
    fn any_envelope_with_any_signature_is_refused_with_a_stable_reason(
        rpc in rpc(),
        body in prop_oneof![
            body_bytes(),
            // A valid body, so the signature itself is what is checked.
            Just(()).prop_map(|()| {
                Body {
                    message_id: testing::message_id(),
                    service_id: "GbdflInfoByIin_v1".to_owned(),
                    message_date: Some(SystemTime::now().into()),
                    ..testing::portal_body()
                }
                .encode_to_vec()
            }),
        ],
        signature in signature(),
    ) {
        let world = world();
        assert_refused(world.send(rpc, SignedEnvelope { xml_data: Vec::new(), body, signature }))?;
    }

    #[test]
    fn a_signed_envelope_changed_in_transit_is_refused(
        rpc in rpc(),
        part in part(),
        at in any::<usize>(),
        mask in 1u8..=255,
    ) {
        let world = world();
        let mut envelope = world.envelope(rpc).clone();
        let signature = envelope.signature.as_mut().expect("signed");
        match part {
            Part::Body => flip(&mut envelope.body, at, mask),
            Part::Value => flip(&mut signature.value, at, mask),
            Part::Certificate => flip(&mut signature.certificate_der, at, mask),
            Part::Algorithm => signature.algorithm ^= i32::from(mask),
            Part::Chain => {
                let chain = signature.chain_der.first_mut().expect("the issuing CA");
                flip(chain, at, mask);
            }
        }
        let result = world.send(rpc, envelope);
        match part {
            // The chain is a hint: the gateway knows the issuing CA itself, so
            // a damaged copy may be passed over.
            Part::Chain if result.is_ok() => {}
            _ => assert_refused(result)?,
        }
    }
}
