//! The registry checks a route asks for on a channel (the service centre's
//! «условие 1»: the applicant in ГБД ФЛ or ГБД ЮЛ, the representative's power
//! of attorney in ЕНИС), and the applicant's region for routing by КАТО.

use shep_proto::envelope::v1::PowerOfAttorneyRef;
use shep_proto::registry::v1::lookup_request::Key;
use shep_proto::registry::v1::lookup_response::Record;
use shep_registries::RegistryKind;
use shep_registries::ident::{Strictness, parse_iin};

use crate::calendar::KZ_OFFSET;
use crate::envelope::{Inbound, SubjectId};
use crate::error::GatewayError;
use crate::registry::{Registries, lookup_request};
use crate::routes::Route;
use crate::toolkit::CallContext;
use shep_nuc::verify::SignerIdentity;

/// Runs the route's registry checks; answers the applicant's КАТО code when
/// a registry gave one.
pub(crate) async fn check_applicant(
    registries: &Registries,
    route: &Route,
    inbound: &Inbound,
    signer: &SignerIdentity,
    ctx: &CallContext,
) -> Result<Option<String>, GatewayError> {
    let listed = |registry: RegistryKind| {
        route
            .checks
            .get(&inbound.channel)
            .is_some_and(|registries| registries.iter().any(|id| id == registry.id()))
    };
    let kato = match &inbound.subject {
        SubjectId::Iin(iin) if listed(RegistryKind::Persons) || route.needs_region() => {
            let request = lookup_request(inbound, signer, Key::Iin(iin.clone()));
            let response = registries
                .lookup(RegistryKind::Persons, request, "subject", ctx)
                .await?;
            match response.record {
                Some(Record::Person(person)) => person.reg_address.map(|address| address.kato),
                _ => None,
            }
        }
        SubjectId::Bin(bin) if listed(RegistryKind::LegalEntities) || route.needs_region() => {
            let request = lookup_request(inbound, signer, Key::Bin(bin.clone()));
            let response = registries
                .lookup(RegistryKind::LegalEntities, request, "subject", ctx)
                .await?;
            match response.record {
                Some(Record::LegalEntity(entity)) => entity.address.map(|address| address.kato),
                _ => None,
            }
        }
        _ => None,
    };
    if listed(RegistryKind::PowersOfAttorney)
        && let Some(reference) = &inbound.body.power_of_attorney
    {
        check_power_of_attorney(registries, route, inbound, signer, reference, ctx).await?;
    }
    Ok(kato)
}

/// Looks the representative's power of attorney up in ЕНИС and checks that
/// it lets them make this request for this applicant on the signing day.
async fn check_power_of_attorney(
    registries: &Registries,
    route: &Route,
    inbound: &Inbound,
    signer: &SignerIdentity,
    reference: &PowerOfAttorneyRef,
    ctx: &CallContext,
) -> Result<(), GatewayError> {
    if reference.number.trim().is_empty() {
        return Err(GatewayError::InvalidField {
            field: "power_of_attorney.number",
            problem: "is required when a power of attorney is given".to_owned(),
        });
    }
    parse_iin(&reference.representative_iin, Strictness::Strict).map_err(|error| {
        GatewayError::InvalidField {
            field: "power_of_attorney.representative_iin",
            problem: format!(
                "`{}` is not a valid IIN: {error}",
                reference.representative_iin
            ),
        }
    })?;
    let request = lookup_request(
        inbound,
        signer,
        Key::PowerOfAttorneyNumber(reference.number.clone()),
    );
    let response = registries
        .lookup(
            RegistryKind::PowersOfAttorney,
            request,
            "power_of_attorney.number",
            ctx,
        )
        .await
        .map_err(|error| match error {
            GatewayError::NoData(_) => GatewayError::NoData(format!(
                "ЕНИС has no power of attorney `{}` («нет данных доверенности в ЕНИС»)",
                reference.number
            )),
            other => other,
        })?;
    let Some(Record::PowerOfAttorney(attorney)) = response.record else {
        return Err(GatewayError::RegistryUnavailable {
            registry: RegistryKind::PowersOfAttorney.id().to_owned(),
            message: "answered without a power of attorney".to_owned(),
        });
    };
    // Dates count in Astana time.
    let today = inbound.signed_at.to_offset(KZ_OFFSET).date();
    super::attorney::check_attorney(
        &attorney,
        reference,
        &inbound.subject,
        &route.service_id,
        today,
    )
}
