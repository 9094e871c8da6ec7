//! The envelope's body: decoded, its fields valid, its date near the
//! gateway's clock, its message type the one the RPC takes.

use shep_proto::envelope::v1::{Body, MessageType, SignedEnvelope};
use time::OffsetDateTime;

use crate::envelope::{self, Inbound};
use crate::error::GatewayError;

/// Decodes and validates the body; `skew_secs` bounds `message_date`.
pub(crate) fn decode(envelope: &SignedEnvelope, skew_secs: u64) -> Result<Inbound, GatewayError> {
    let inbound = envelope::decode(envelope, OffsetDateTime::now_utc(), skew_secs)?;
    // Every event and child span below carries the message and its service.
    tracing::Span::current()
        .record("message_id", inbound.message_id.as_str())
        .record("service", inbound.body.service_id.as_str());
    Ok(inbound)
}

/// Every attachment within `max_bytes` (`limits.max_attachment_bytes`).
pub(crate) fn attachments(body: &Body, max_bytes: usize) -> Result<(), GatewayError> {
    match body
        .attachments
        .iter()
        .find(|attachment| attachment.data.len() > max_bytes)
    {
        Some(attachment) => Err(GatewayError::TooLarge {
            what: "an attachment",
            size: attachment.data.len(),
            limit: max_bytes,
        }),
        None => Ok(()),
    }
}

/// The message type must be one of `allowed` (`rpc` names the RPC).
pub(crate) fn message_type(
    inbound: &Inbound,
    allowed: &[MessageType],
    rpc: &str,
) -> Result<(), GatewayError> {
    if allowed.contains(&inbound.message_type) {
        return Ok(());
    }
    let names: Vec<&str> = allowed
        .iter()
        .map(|kind| kind.as_str_name().trim_start_matches("MESSAGE_TYPE_"))
        .collect();
    Err(GatewayError::InvalidField {
        field: "message_type",
        problem: format!("must be {} for {rpc}", names.join(" or ")),
    })
}

#[cfg(test)]
mod tests {
    use prost::Message as _;

    use super::*;

    #[test]
    fn an_attachment_over_the_limit_is_too_large() {
        use shep_proto::envelope::v1::Attachment;
        let body = Body {
            message_id: "1f0c2a9e-5b7d-4c3e-9a8b-0d1e2f3a4b5c".into(),
            service_id: "svc".into(),
            attachments: vec![Attachment {
                name: "scan.pdf".into(),
                content_type: "application/pdf".into(),
                data: vec![0; 2048],
            }],
            ..Body::default()
        };
        assert!(attachments(&body, 2048).is_ok());
        let error = attachments(&body, 2047).unwrap_err();
        assert!(
            matches!(
                error,
                GatewayError::TooLarge {
                    size: 2048,
                    limit: 2047,
                    ..
                }
            ),
            "{error}"
        );
    }

    #[test]
    fn an_empty_body_is_malformed() {
        let error = decode(&SignedEnvelope::default(), 300).unwrap_err();
        assert!(matches!(error, GatewayError::MalformedBody(_)), "{error}");
    }

    #[test]
    fn a_body_without_a_message_id_names_the_field() {
        let envelope = SignedEnvelope {
            body: Body {
                service_id: "svc".into(),
                ..Body::default()
            }
            .encode_to_vec(),
            ..SignedEnvelope::default()
        };
        match decode(&envelope, 300).unwrap_err() {
            GatewayError::InvalidMessageId { field, .. } => assert_eq!(field, "message_id"),
            other => panic!("{other}"),
        }
    }
}
