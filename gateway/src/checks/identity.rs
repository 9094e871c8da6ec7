//! Who signed: on the portal the applicant themself, on every other channel
//! a registered operator of the sending system (carrying its BIN).

use crate::envelope::{Inbound, SubjectId};
use crate::error::GatewayError;
use crate::routes::{ChannelName, RoutingTable};
use shep_nuc::verify::SignerIdentity;

/// The identity rule of the envelope's channel.
pub(crate) fn check_identity(
    routes: &RoutingTable,
    inbound: &Inbound,
    signer: &SignerIdentity,
) -> Result<(), GatewayError> {
    if inbound.channel != ChannelName::Portal {
        return check_operator(routes, &inbound.sender_id, signer);
    }
    let (kind, expected, found) = match &inbound.subject {
        SubjectId::Iin(iin) => ("IIN", iin, &signer.iin),
        SubjectId::Bin(bin) => ("BIN", bin, &signer.bin),
    };
    if found.as_ref() != Some(expected) {
        return Err(GatewayError::IdentityMismatch {
            kind,
            expected: expected.clone(),
            found: found.clone().unwrap_or_else(|| "none".to_owned()),
        });
    }
    Ok(())
}

/// The signer must be a registered operator of `system` (and carry its BIN).
pub(crate) fn check_operator(
    routes: &RoutingTable,
    system: &str,
    signer: &SignerIdentity,
) -> Result<(), GatewayError> {
    let spec = routes
        .system(system)
        .ok_or_else(|| GatewayError::SenderNotAllowed {
            sender: system.to_owned(),
            service: String::new(),
        })?;
    let iin = signer.iin.clone().unwrap_or_else(|| "none".to_owned());
    if !spec.operators.contains(&iin) {
        return Err(GatewayError::IdentityMismatch {
            kind: "IIN",
            expected: format!("an operator of `{system}`"),
            found: iin,
        });
    }
    if let Some(bin) = &spec.bin
        && signer.bin.as_ref() != Some(bin)
    {
        return Err(GatewayError::IdentityMismatch {
            kind: "BIN",
            expected: bin.clone(),
            found: signer.bin.clone().unwrap_or_else(|| "none".to_owned()),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use shep_proto::envelope::v1::{Body, MessageType};
    use time::OffsetDateTime;

    use super::*;
    use crate::routes::DEFAULT_ROUTES;

    fn table() -> RoutingTable {
        RoutingTable::from_toml(DEFAULT_ROUTES, "embedded", &["gbdfl", "gbdul", "enis"]).unwrap()
    }

    fn inbound(channel: ChannelName, sender: &str, subject: SubjectId) -> Inbound {
        Inbound {
            body: Body::default(),
            message_id: String::new(),
            message_type: MessageType::Request,
            signed_at: OffsetDateTime::UNIX_EPOCH,
            subject,
            channel,
            sender_id: sender.to_owned(),
        }
    }

    fn signer(iin: &str) -> SignerIdentity {
        SignerIdentity {
            iin: Some(iin.to_owned()),
            ..SignerIdentity::default()
        }
    }

    #[test]
    fn on_the_portal_the_applicant_signs() {
        let applicant = SubjectId::Iin("850315301235".into());
        let portal = inbound(ChannelName::Portal, "pep", applicant);
        assert!(check_identity(&table(), &portal, &signer("850315301235")).is_ok());
        match check_identity(&table(), &portal, &signer("920704404563")).unwrap_err() {
            GatewayError::IdentityMismatch { kind, found, .. } => {
                assert_eq!((kind, found.as_str()), ("IIN", "920704404563"));
            }
            other => panic!("{other}"),
        }
    }

    #[test]
    fn at_the_service_centre_an_operator_signs_for_the_applicant() {
        let applicant = SubjectId::Iin("850315301235".into());
        let centre = inbound(ChannelName::ServiceCentre, "is-con", applicant);
        let operator = SignerIdentity {
            bin: Some("080340012345".into()),
            ..signer("920704404563")
        };
        assert!(check_identity(&table(), &centre, &operator).is_ok());
        let without_bin = signer("920704404563");
        assert!(matches!(
            check_identity(&table(), &centre, &without_bin),
            Err(GatewayError::IdentityMismatch { kind: "BIN", .. })
        ));
        assert!(matches!(
            check_identity(&table(), &centre, &signer("850315301235")),
            Err(GatewayError::IdentityMismatch { .. })
        ));
    }

    #[test]
    fn an_unknown_system_has_no_operators() {
        assert!(matches!(
            check_operator(&table(), "nobody", &signer("920704404563")),
            Err(GatewayError::SenderNotAllowed { .. })
        ));
    }
}
