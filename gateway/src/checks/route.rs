//! The routing table's say: the service exists, the sender and its channel
//! may use it, the RPC fits its kind, and which provider takes it.

use std::sync::Arc;

use crate::envelope::Inbound;
use crate::error::GatewayError;
use crate::routes::{Role, Route, RoutingTable, ServiceKind};

/// The route of the envelope's service, if the sender may use it on its
/// channel with an RPC of `kind`.
pub(crate) fn authorize(
    routes: &RoutingTable,
    inbound: &Inbound,
    kind: ServiceKind,
) -> Result<Arc<Route>, GatewayError> {
    let service = &inbound.body.service_id;
    let route = routes
        .route(service)
        .ok_or_else(|| GatewayError::UnknownService(service.clone()))?;
    if !route.senders.contains(&inbound.sender_id) {
        return Err(GatewayError::SenderNotAllowed {
            sender: inbound.sender_id.clone(),
            service: service.clone(),
        });
    }
    if !route.channels.contains(&inbound.channel) {
        return Err(GatewayError::ChannelNotAllowed {
            channel: format!("{:?}", inbound.channel.to_proto()),
            service: service.clone(),
        });
    }
    if route.kind != kind {
        return Err(GatewayError::WrongServiceKind {
            service: service.clone(),
            kind: route.kind.as_str(),
            rpc: if route.kind == ServiceKind::Lookup {
                "Gateway.Call"
            } else {
                "Gateway.Submit"
            },
        });
    }
    Ok(route.clone())
}

/// `provider` must be a provider system of the routing table.
pub(crate) fn check_provider(routes: &RoutingTable, provider: &str) -> Result<(), GatewayError> {
    match routes.system(provider) {
        Some(system) if system.role == Role::Provider => Ok(()),
        _ => Err(GatewayError::ProviderNotAllowed {
            provider: provider.to_owned(),
            message_id: String::new(),
        }),
    }
}

/// `system` is a system of the routing table (any role).
pub(crate) fn check_system(routes: &RoutingTable, system: &str) -> Result<(), GatewayError> {
    match routes.system(system) {
        Some(_) => Ok(()),
        None => Err(GatewayError::ProviderNotAllowed {
            provider: system.to_owned(),
            message_id: String::new(),
        }),
    }
}

/// The provider that takes the application: the one the sender named in
/// `route_id`, or the route's provider for the applicant's region (`kato`).
pub(crate) fn provider_for(
    route: &Route,
    inbound: &Inbound,
    kato: Option<&str>,
) -> Result<String, GatewayError> {
    let named = &inbound.body.route_id;
    if named.is_empty() {
        return route.provider_for(kato).map(str::to_owned).ok_or_else(|| {
            GatewayError::NoProviderForRegion {
                service: route.service_id.clone(),
                region: kato.unwrap_or("unknown").to_owned(),
            }
        });
    }
    if route.has_provider(named) {
        return Ok(named.clone());
    }
    Err(GatewayError::InvalidField {
        field: "route_id",
        problem: format!(
            "`{named}` is not a provider of service `{}`",
            route.service_id
        ),
    })
}
