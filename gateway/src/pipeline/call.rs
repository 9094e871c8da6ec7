//! `Gateway.Call`: a sync lookup answered by a registry.

use shep_proto::envelope::v1::{MessageType, SignedEnvelope};
use shep_proto::gateway::v1::{CallResponse, ResponseInfo, StatusInfo};
use shep_proto::registry::v1::lookup_request::Key;
use shep_proto::registry::v1::lookup_response::Record;
use shep_registries::RegistryKind;
use time::OffsetDateTime;
use tokio::time::Instant;

use crate::checks;
use crate::engine::Engine;
use crate::envelope::{self, Inbound, SubjectId};
use crate::error::GatewayError;
use crate::registry::lookup_request;
use crate::routes::{ServiceKind, Target};
use crate::storage::timestamp;
use crate::toolkit::CallContext;

/// The steps of `Gateway.Call`, in order.
pub async fn call(
    engine: &Engine,
    envelope: SignedEnvelope,
    ctx: &CallContext,
) -> Result<CallResponse, GatewayError> {
    let start = Instant::now();
    // 1. The body: decoded, its fields and date valid; a REQUEST.
    let inbound = checks::decode(&envelope, engine.checks.skew_secs)?;
    checks::attachments(&inbound.body, engine.checks.max_attachment_bytes)?;
    checks::message_type(&inbound, &[MessageType::Request], "Gateway.Call")?;
    ctx.principal.act_as(
        &inbound.sender_id,
        "a call comes from the system it names as sender",
    )?;
    // 2. The route: the service exists, a lookup, open to this sender and channel.
    let routes = engine.routes();
    let route = checks::authorize(&routes, &inbound, ServiceKind::Lookup)?;
    // 3. Faults a test session attached to the service.
    super::service_faults(engine, &route.service_id, ctx).await?;
    // 4. The signature, then who signed.
    let signer = engine.checks.signer(&envelope, &inbound).await?;
    engine.checks.identity(&routes, &inbound, &signer)?;
    let service = route.service_id.as_str();
    engine.metrics().hop("call", service, "checks", start);
    // 5. The registry the route names, asked for the subject (or the power
    //    of attorney), behind the registry layers.
    let Target::Registry(registry) = &route.target else {
        return Err(GatewayError::Internal(format!(
            "lookup route `{service}` has no registry"
        )));
    };
    let registry = RegistryKind::from_id(registry).ok_or_else(|| {
        GatewayError::Internal(format!(
            "lookup route `{service}` names registry `{registry}`"
        ))
    })?;
    let (key, key_field) = lookup_key(registry, &inbound)?;
    let request = lookup_request(&inbound, &signer, key);
    let asked = Instant::now();
    let lookup = engine
        .registries
        .lookup(registry, request, key_field, ctx)
        .await?;
    engine.metrics().hop("call", service, "registry", asked);
    // 6. A power of attorney is shown only to its principal or
    //    representative; to anyone else it does not exist.
    if let Some(Record::PowerOfAttorney(attorney)) = &lookup.record
        && !checks::concerns(attorney, &inbound.subject)
    {
        return Err(GatewayError::NoData(format!(
            "ЕНИС has no power of attorney `{}` for the subject («нет данных»)",
            attorney.number
        )));
    }
    let result = lookup
        .result
        .clone()
        .unwrap_or_else(shep_registries::success);
    engine.metrics().hop("call", service, "total", start);
    Ok(CallResponse {
        response_info: Some(ResponseInfo {
            message_id: envelope::response_id(),
            correlation_id: inbound.message_id,
            response_date: Some(timestamp(OffsetDateTime::now_utc())),
            status: Some(StatusInfo {
                code: result.code,
                message: result.name_ru,
            }),
            session_id: inbound.body.session_id,
        }),
        lookup: Some(lookup),
    })
}

/// ЕНИС is keyed by the power of attorney's number; the others by the subject.
fn lookup_key(
    registry: RegistryKind,
    inbound: &Inbound,
) -> Result<(Key, &'static str), GatewayError> {
    if registry == RegistryKind::PowersOfAttorney {
        let number = inbound
            .body
            .power_of_attorney
            .as_ref()
            .map(|reference| reference.number.clone())
            .filter(|number| !number.trim().is_empty())
            .ok_or_else(|| GatewayError::InvalidField {
                field: "power_of_attorney.number",
                problem: "is the key of an ЕНИС lookup and is required".to_owned(),
            })?;
        return Ok((
            Key::PowerOfAttorneyNumber(number),
            "power_of_attorney.number",
        ));
    }
    Ok(match &inbound.subject {
        SubjectId::Iin(iin) => (Key::Iin(iin.clone()), "subject"),
        SubjectId::Bin(bin) => (Key::Bin(bin.clone()), "subject"),
    })
}
