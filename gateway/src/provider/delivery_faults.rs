//! Faults on each delivery to a provider: sent twice, corrupted, held, or
//! its ack ignored. Applied where the gateway hands a request over (a
//! Subscribe stream, a GetMessages answer), so the queues know nothing of
//! them and a redelivery is as the sender signed it.

use std::time::Duration;

use shep_proto::provider::v1::Delivery;

use crate::engine::Engine;
use crate::toolkit::faults::{Effect, Site};

/// What the faults make of one delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Planned {
    /// How many times to send it: 1, or 2 for a duplicate.
    pub(crate) copies: usize,
    /// How long to hold it before sending.
    pub(crate) hold: Option<Duration>,
}

/// Consults the faults on deliveries to `provider` for `delivery` (of a
/// caller in `session`): corrupts it in place, notes an ack to ignore, and
/// says how often and when to send it.
pub(crate) fn plan(
    engine: &Engine,
    provider: &str,
    session: Option<&str>,
    delivery: &mut Delivery,
) -> Planned {
    let faults = &engine.toolkit().faults;
    let mut planned = Planned {
        copies: 1,
        hold: None,
    };
    let Some(fired) = faults.check(Site::Delivery(provider), session) else {
        faults.drop_next_ack(&delivery.message_id, None);
        return planned;
    };
    planned.hold = fired.delay;
    let mut drops_ack = false;
    match fired.effect {
        Effect::DuplicateDelivery => planned.copies = 2,
        Effect::CorruptDelivery => corrupt(delivery),
        Effect::DropAck => drops_ack = true,
        _ => {}
    }
    faults.drop_next_ack(
        &delivery.message_id,
        drops_ack.then_some(fired.fault_id.as_str()),
    );
    tracing::info!(
        message_id = %delivery.message_id,
        provider,
        attempt = delivery.attempt,
        fault = %fired.fault_id,
        effect = ?fired.effect,
        hold_ms = planned.hold.map(|hold| hold.as_millis() as u64),
        "delivery fault fired"
    );
    planned
}

/// Flips the lowest bit of the last byte of the envelope's signature value
/// (of its body when it has no signature value): the body still decodes,
/// the signature no longer verifies.
pub(crate) fn corrupt(delivery: &mut Delivery) {
    let Some(envelope) = delivery.envelope.as_mut() else {
        return;
    };
    // Signed XML (the SOAP front door): a letter of its SignatureValue,
    // changed for another base64 letter so the document stays well-formed.
    if !envelope.xml_data.is_empty() {
        const TAG: &[u8] = b"SignatureValue>";
        if let Some(at) = envelope
            .xml_data
            .windows(TAG.len())
            .position(|window| window == TAG)
            .map(|at| at + TAG.len())
            .and_then(|start| {
                envelope.xml_data[start..]
                    .iter()
                    .position(u8::is_ascii_alphanumeric)
                    .map(|offset| start + offset)
            })
        {
            let letter = &mut envelope.xml_data[at];
            *letter = if *letter == b'A' { b'B' } else { b'A' };
            return;
        }
    }
    let target = match envelope.signature.as_mut() {
        Some(signature) if !signature.value.is_empty() => &mut signature.value,
        _ => &mut envelope.body,
    };
    if let Some(last) = target.last_mut() {
        *last ^= 1;
    }
}

/// Waits out `hold` unless `closed` comes first; whether the hold ended.
pub(crate) async fn held(
    hold: Option<Duration>,
    closed: impl std::future::Future<Output = ()>,
) -> bool {
    let Some(hold) = hold else { return true };
    tokio::select! {
        () = tokio::time::sleep(hold) => true,
        () = closed => false,
    }
}

#[cfg(test)]
mod tests {
    use shep_proto::envelope::v1::{Signature, SignedEnvelope};

    use super::*;

    #[test]
    fn corruption_of_signed_xml_changes_a_letter_of_its_signature_value_only() {
        let xml = "<body><ds:Signature><ds:SignatureValue>\n  AbCd==</ds:SignatureValue></ds:Signature></body>";
        let envelope = SignedEnvelope {
            body: vec![1, 2, 3],
            signature: None,
            xml_data: xml.as_bytes().to_vec(),
        };
        let mut delivery = Delivery {
            envelope: Some(envelope.clone()),
            ..Delivery::default()
        };
        corrupt(&mut delivery);
        let corrupted = delivery.envelope.unwrap();
        assert_eq!(corrupted.body, envelope.body);
        assert_eq!(
            String::from_utf8(corrupted.xml_data).unwrap(),
            xml.replace("AbCd==", "BbCd==")
        );
    }

    #[test]
    fn corruption_flips_one_bit_of_the_signature_and_leaves_the_body() {
        let envelope = SignedEnvelope {
            body: vec![1, 2, 3],
            signature: Some(Signature {
                value: vec![9, 8, 7],
                ..Signature::default()
            }),
            xml_data: Vec::new(),
        };
        let mut delivery = Delivery {
            envelope: Some(envelope.clone()),
            ..Delivery::default()
        };
        corrupt(&mut delivery);
        let corrupted = delivery.envelope.unwrap();
        assert_eq!(corrupted.body, envelope.body);
        assert_eq!(corrupted.signature.unwrap().value, vec![9, 8, 6]);

        let mut unsigned = Delivery {
            envelope: Some(SignedEnvelope {
                xml_data: Vec::new(),
                body: vec![1, 2, 3],
                signature: None,
            }),
            ..Delivery::default()
        };
        corrupt(&mut unsigned);
        assert_eq!(unsigned.envelope.unwrap().body, vec![1, 2, 2]);
    }
}
