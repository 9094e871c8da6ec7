//! Decoding and validating an envelope's body at the edge, before any routing.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use prost::Message;
use shep_proto::envelope::v1::{Body, Channel, MessageType, SignedEnvelope, Subject, subject::Id};
use shep_registries::ident::{Strictness, parse_bin, parse_iin};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::GatewayError;
use crate::routes::ChannelName;

/// ШЭП Property limits.
const PROPERTY_KEY_MAX: usize = 30;
const PROPERTY_VALUE_MAX: usize = 500;

/// The applicant, validated.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SubjectId {
    Iin(String),
    Bin(String),
}

impl SubjectId {
    /// Validates a protobuf subject.
    pub fn from_proto(subject: Option<&Subject>) -> Result<Self, GatewayError> {
        match subject.and_then(|subject| subject.id.as_ref()) {
            Some(Id::Iin(iin)) => parse_iin(iin, Strictness::Strict)
                .map(|_| Self::Iin(iin.clone()))
                .map_err(|error| GatewayError::InvalidSubject {
                    kind: "IIN",
                    value: iin.clone(),
                    problem: error.to_string(),
                }),
            Some(Id::Bin(bin)) => parse_bin(bin, Strictness::Strict)
                .map(|_| Self::Bin(bin.clone()))
                .map_err(|error| GatewayError::InvalidSubject {
                    kind: "BIN",
                    value: bin.clone(),
                    problem: error.to_string(),
                }),
            None => Err(GatewayError::InvalidField {
                field: "subject",
                problem: "must hold an IIN or a BIN".to_owned(),
            }),
        }
    }

    /// The protobuf subject.
    pub fn to_proto(&self) -> Subject {
        Subject {
            id: Some(match self {
                Self::Iin(iin) => Id::Iin(iin.clone()),
                Self::Bin(bin) => Id::Bin(bin.clone()),
            }),
        }
    }

    /// A key unique across IINs and BINs.
    pub fn key(&self) -> String {
        match self {
            Self::Iin(iin) => format!("iin:{iin}"),
            Self::Bin(bin) => format!("bin:{bin}"),
        }
    }
}

/// A decoded, field-validated envelope (signature not yet checked).
#[derive(Debug)]
pub struct Inbound {
    pub body: Body,
    /// The message id in canonical lowercase hyphenated form.
    pub message_id: String,
    pub message_type: MessageType,
    pub signed_at: OffsetDateTime,
    pub subject: SubjectId,
    pub channel: ChannelName,
    pub sender_id: String,
}

/// A fresh message id for the gateway's own answers: a version-4 UUID made
/// from a per-process counter and a key drawn once. `Uuid::new_v4` asks the
/// kernel for randomness on every call, and that `getrandom` syscall was 1.6%
/// of a checked lookup's CPU in the profile (BENCHMARKS.md). An id only has
/// to be unique: a bijective mix of the counter cannot repeat within the
/// process, and the key keeps ids of different runs apart.
pub fn response_id() -> String {
    static KEY: OnceLock<(u64, u64)> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let (unique_key, noise_key) = *KEY.get_or_init(|| Uuid::new_v4().as_u64_pair());
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    let unique = mix(count ^ unique_key).to_be_bytes();
    let noise = mix(count.wrapping_add(noise_key)).to_be_bytes();
    // The unique half goes where the version and variant bits are not.
    let mut bytes = [0u8; 16];
    bytes[..4].copy_from_slice(&unique[..4]);
    bytes[4..12].copy_from_slice(&noise);
    bytes[12..].copy_from_slice(&unique[4..]);
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .hyphenated()
        .to_string()
}

/// SplitMix64's finalizer: a bijection on `u64` that scatters neighbours.
fn mix(mut value: u64) -> u64 {
    value = (value ^ (value >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    value = (value ^ (value >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    value ^ (value >> 31)
}

/// Parses a UUID, tolerating ШЭП's braced form, into canonical form.
pub fn parse_uuid(field: &'static str, value: &str) -> Result<String, GatewayError> {
    let trimmed = value
        .strip_prefix('{')
        .and_then(|rest| rest.strip_suffix('}'))
        .unwrap_or(value);
    Uuid::parse_str(trimmed)
        .map(|uuid| uuid.hyphenated().to_string())
        .map_err(|_| GatewayError::InvalidMessageId {
            field,
            value: value.to_owned(),
        })
}

fn required(field: &'static str, value: &str) -> Result<(), GatewayError> {
    if value.trim().is_empty() {
        return Err(GatewayError::InvalidField {
            field,
            problem: "is required".to_owned(),
        });
    }
    Ok(())
}

/// Decodes and validates the body of `envelope`. `max_skew_secs` bounds how far
/// `message_date` may be from `now`.
pub fn decode(
    envelope: &SignedEnvelope,
    now: OffsetDateTime,
    max_skew_secs: u64,
) -> Result<Inbound, GatewayError> {
    if envelope.body.is_empty() {
        return Err(GatewayError::MalformedBody("`body` is empty".to_owned()));
    }
    let body = Body::decode(envelope.body.as_slice())
        .map_err(|error| GatewayError::MalformedBody(error.to_string()))?;
    let message_id = parse_uuid("message_id", &body.message_id)?;
    required("service_id", &body.service_id)?;
    let message_type = MessageType::try_from(body.message_type)
        .ok()
        .filter(|kind| *kind != MessageType::Unspecified)
        .ok_or_else(|| GatewayError::InvalidField {
            field: "message_type",
            problem: "must be REQUEST, RESPONSE, NOTIFICATION or UPDATE".to_owned(),
        })?;
    let sender_id = body
        .sender
        .as_ref()
        .map(|sender| sender.sender_id.clone())
        .unwrap_or_default();
    required("sender.sender_id", &sender_id)?;
    let message_date = body
        .message_date
        .as_ref()
        .ok_or_else(|| GatewayError::InvalidField {
            field: "message_date",
            problem: "is required".to_owned(),
        })?;
    let signed_at = OffsetDateTime::from_unix_timestamp(message_date.seconds)
        .ok()
        .and_then(|time| {
            u32::try_from(message_date.nanos)
                .ok()
                .and_then(|nanos| time.replace_nanosecond(nanos).ok())
        })
        .ok_or_else(|| GatewayError::InvalidField {
            field: "message_date",
            problem: "is not a valid timestamp".to_owned(),
        })?;
    let skew_secs = (now - signed_at).whole_seconds();
    if skew_secs.unsigned_abs() > max_skew_secs {
        return Err(GatewayError::MessageDateSkew {
            skew_secs,
            allowed_secs: max_skew_secs,
        });
    }
    if !body.session_id.is_empty() {
        parse_uuid("session_id", &body.session_id)?;
    }
    for property in &body.properties {
        if property.key.is_empty() || property.key.chars().count() > PROPERTY_KEY_MAX {
            return Err(GatewayError::InvalidField {
                field: "properties",
                problem: format!(
                    "key `{}` must be 1-{PROPERTY_KEY_MAX} characters",
                    property.key
                ),
            });
        }
        if property.value.chars().count() > PROPERTY_VALUE_MAX {
            return Err(GatewayError::InvalidField {
                field: "properties",
                problem: format!(
                    "value of `{}` is longer than {PROPERTY_VALUE_MAX} characters",
                    property.key
                ),
            });
        }
    }
    let channel = Channel::try_from(body.channel)
        .ok()
        .and_then(ChannelName::from_proto)
        .ok_or_else(|| GatewayError::InvalidField {
            field: "channel",
            problem: "must be PORTAL, SERVICE_CENTRE, PROVIDER_DESK or SYSTEM".to_owned(),
        })?;
    let subject = SubjectId::from_proto(body.subject.as_ref())?;
    Ok(Inbound {
        message_id,
        message_type,
        signed_at,
        subject,
        channel,
        sender_id,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_ids_are_distinct_version_4_uuids() {
        let ids: std::collections::HashSet<String> = (0..10_000).map(|_| response_id()).collect();
        assert_eq!(ids.len(), 10_000);
        for id in ids.iter().take(100) {
            let uuid = Uuid::parse_str(id).unwrap();
            assert_eq!(uuid.get_version_num(), 4, "{id}");
            assert_eq!(uuid.get_variant(), uuid::Variant::RFC4122, "{id}");
            assert_eq!(parse_uuid("message_id", id).unwrap(), *id);
        }
    }
    use shep_proto::envelope::v1::{Property, Sender};

    fn body() -> Body {
        Body {
            message_id: "{6f1c2b8e-3d4a-4b5c-9d6e-7f8091a2b3c4}".to_owned(),
            service_id: "svc".to_owned(),
            message_type: MessageType::Request as i32,
            message_date: Some(prost_types::Timestamp::from(std::time::SystemTime::now())),
            sender: Some(Sender {
                sender_id: "pep".to_owned(),
            }),
            subject: Some(SubjectId::Iin("850315301235".into()).to_proto()),
            channel: Channel::Portal as i32,
            ..Body::default()
        }
    }

    fn run(body: &Body) -> Result<Inbound, GatewayError> {
        let envelope = SignedEnvelope {
            xml_data: Vec::new(),
            body: body.encode_to_vec(),
            signature: None,
        };
        decode(&envelope, OffsetDateTime::now_utc(), 300)
    }

    #[test]
    fn accepts_a_valid_body_and_canonicalises_the_braced_id() {
        let inbound = run(&body()).unwrap();
        assert_eq!(inbound.message_id, "6f1c2b8e-3d4a-4b5c-9d6e-7f8091a2b3c4");
        assert_eq!(inbound.channel, ChannelName::Portal);
    }

    #[test]
    fn rejects_garbage_bytes() {
        let envelope = SignedEnvelope {
            xml_data: Vec::new(),
            body: vec![0xff, 0xff, 0xff, 0x01],
            signature: None,
        };
        let error = decode(&envelope, OffsetDateTime::now_utc(), 300).unwrap_err();
        assert!(matches!(error, GatewayError::MalformedBody(_)), "{error}");
    }

    #[test]
    fn rejects_each_bad_field_with_its_reason() {
        let mut bad_id = body();
        bad_id.message_id = "42".into();
        assert!(matches!(
            run(&bad_id),
            Err(GatewayError::InvalidMessageId { .. })
        ));

        let mut bad_subject = body();
        bad_subject.subject = Some(SubjectId::Iin("911212333888".into()).to_proto());
        assert!(matches!(
            run(&bad_subject),
            Err(GatewayError::InvalidSubject { .. })
        ));

        let mut old = body();
        old.message_date = Some(prost_types::Timestamp {
            seconds: 1_000_000_000,
            nanos: 0,
        });
        assert!(matches!(
            run(&old),
            Err(GatewayError::MessageDateSkew { .. })
        ));

        let mut no_channel = body();
        no_channel.channel = 0;
        assert!(matches!(
            run(&no_channel),
            Err(GatewayError::InvalidField {
                field: "channel",
                ..
            })
        ));

        let mut long_key = body();
        long_key.properties.push(Property {
            key: "k".repeat(31),
            value: String::new(),
        });
        assert!(matches!(
            run(&long_key),
            Err(GatewayError::InvalidField {
                field: "properties",
                ..
            })
        ));
    }
}
