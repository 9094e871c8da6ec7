//! The first step of every envelope: an envelope sent without
//! `x-shep-session` is put in the session a binding gives it (see
//! [`crate::toolkit::bindings`]), before the span, the exchange journal,
//! faults and the clock look at its session.

use prost::Message as _;
use shep_proto::envelope::v1::{Body, subject};

use super::{EnvelopeRequest, Rpc};
use crate::engine::Engine;
use crate::toolkit::bindings::{Kind, Probe, normal_uuid};

/// Sets `request`'s session from the bindings when it has none. While
/// nothing is bound this is one atomic load; otherwise the body is decoded
/// once, and only when a bound kind needs it.
pub(super) fn resolve(engine: &Engine, request: &mut EnvelopeRequest) {
    if request.ctx.session.is_some() {
        return;
    }
    let bindings = &engine.toolkit().bindings;
    let wanted = bindings.wanted();
    if wanted.is_empty() {
        return;
    }
    let mut probe = Probe::default();
    if wanted.has(Kind::Certificate) {
        if let Some(signature) = &request.envelope.signature {
            probe.certificate(&signature.certificate_der);
        }
        if let Some(leaf) = request
            .ctx
            .certificates
            .as_ref()
            .and_then(|chain| chain.first())
        {
            probe.certificate(leaf);
        }
    }
    if wanted.body() {
        // A body that does not decode is refused by the steps; unbound here.
        if let Ok(body) = Body::decode(request.envelope.body.as_slice()) {
            probe_body(engine, request.rpc, body, &mut probe, |kind| {
                wanted.has(kind)
            });
        }
    }
    request.ctx.session = bindings.session_of(&probe);
}

/// What the body shows: its sessionId, sender, subject, and the provider it
/// reaches (the sender itself for a report).
fn probe_body(
    engine: &Engine,
    rpc: Rpc,
    body: Body,
    probe: &mut Probe,
    wanted: impl Fn(Kind) -> bool,
) {
    let sender = body
        .sender
        .map(|sender| sender.sender_id)
        .unwrap_or_default();
    if wanted(Kind::SessionId)
        && let Some(id) = normal_uuid(&body.session_id)
    {
        probe.add(Kind::SessionId, id);
    }
    if wanted(Kind::Provider) {
        // A provider's own envelopes (reports, its lookups) are its calls.
        probe.add(Kind::Provider, sender.clone());
        if rpc != Rpc::Report {
            if !body.route_id.is_empty() {
                probe.add(Kind::Provider, body.route_id);
            } else if let Some(provider) = engine
                .routes()
                .route(&body.service_id)
                .and_then(|route| route.only_provider())
            {
                // A route choosing its provider by the applicant's region is
                // resolved only after the registry lookup: a binding of one of
                // its providers applies when the sender names it in route_id.
                probe.add(Kind::Provider, provider);
            }
        }
    }
    if wanted(Kind::System) {
        probe.add(Kind::System, sender);
    }
    if wanted(Kind::Subject)
        && let Some(subject::Id::Iin(id) | subject::Id::Bin(id)) =
            body.subject.and_then(|subject| subject.id)
    {
        probe.add(Kind::Subject, id);
    }
}

#[cfg(test)]
mod tests {
    use shep_proto::admin::v1::session_binding::To;
    use shep_proto::envelope::v1::SignedEnvelope;

    use super::*;
    use crate::testing::{self, ESIL_PROVIDER};
    use crate::toolkit::CallContext;
    use crate::toolkit::bindings::Target;

    fn request(envelope: SignedEnvelope, session: Option<&str>) -> EnvelopeRequest {
        EnvelopeRequest {
            rpc: Rpc::Submit,
            envelope,
            ctx: CallContext {
                session: session.map(Into::into),
                ..CallContext::default()
            },
        }
    }

    fn bind(engine: &Engine, session: &str, to: To) {
        let target = Target::from_proto(Some(&to)).unwrap();
        engine.toolkit().bindings.bind(session, target).unwrap();
    }

    #[test]
    fn without_bindings_nothing_is_looked_at() {
        let engine = testing::engine();
        // A body that does not decode: resolving must not try to.
        let garbage = SignedEnvelope {
            body: vec![0xff; 16],
            ..SignedEnvelope::default()
        };
        let mut asked = request(garbage, None);
        resolve(&engine, &mut asked);
        assert_eq!(asked.ctx.session(), None);
    }

    #[test]
    fn a_route_with_one_provider_binds_its_applications_and_the_header_wins() {
        let engine = testing::engine();
        bind(&engine, "esil", To::ProviderId(ESIL_PROVIDER.to_owned()));
        let mut asked = request(testing::application(&testing::message_id()), None);
        resolve(&engine, &mut asked);
        assert_eq!(asked.ctx.session(), Some("esil"));

        let mut headed = request(testing::application(&testing::message_id()), Some("own"));
        resolve(&engine, &mut headed);
        assert_eq!(headed.ctx.session(), Some("own"));

        // A lookup goes to a registry, not to the provider.
        let mut lookup = request(testing::lookup(&testing::message_id()), None);
        lookup.rpc = Rpc::Call;
        resolve(&engine, &mut lookup);
        assert_eq!(lookup.ctx.session(), None);
    }

    #[test]
    fn a_certificate_binding_matches_the_signer_without_the_body() {
        let engine = testing::engine();
        let der = b"not really a certificate".to_vec();
        let fingerprint = crate::admin_auth::Fingerprint::of(&der).to_string();
        bind(&engine, "signer", To::CertificateSha256(fingerprint));
        let envelope = SignedEnvelope {
            body: vec![0xff; 16],
            signature: Some(shep_proto::envelope::v1::Signature {
                certificate_der: der,
                ..Default::default()
            }),
            xml_data: Vec::new(),
        };
        let mut asked = request(envelope, None);
        resolve(&engine, &mut asked);
        assert_eq!(asked.ctx.session(), Some("signer"));
    }
}
