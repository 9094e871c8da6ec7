//! The registries behind the gateway (ГБД ФЛ, ГБД ЮЛ, ЕНИС): each adapter,
//! in-process or remote alike, reached through the same stack of layers
//! ([`layers::stack`]): the span, fault injection, the exchange journal and
//! the caller's deadline.

mod layers;

use std::collections::HashMap;
use std::sync::Arc;

use shep_adapters::RegistryAdapter;
use shep_proto::registry::v1::{
    LookupRequest, LookupResponse, RequestContext, lookup_request::Key,
};
use shep_registries::{RegistryData, RegistryKind};
use tower::ServiceExt as _;
use tower::util::BoxCloneSyncService;

use crate::envelope::Inbound;
use crate::error::GatewayError;
use crate::routes::ChannelName;
use crate::toolkit::faults::Fired;
use crate::toolkit::{CallContext, Toolkit};
use shep_nuc::verify::SignerIdentity;

/// One lookup on its way to a registry, with what the layers need to know.
#[derive(Debug)]
pub(crate) struct RegistryCall {
    pub(crate) registry: RegistryKind,
    pub(crate) request: LookupRequest,
    /// The envelope field a key the registry refuses is blamed on.
    pub(crate) key_field: &'static str,
    pub(crate) ctx: CallContext,
    /// The fault in force for this call, as the fault layer chose it.
    pub(crate) fired: Option<Fired>,
}

impl RegistryCall {
    /// The lookup's key as text (an IIN, a BIN or a power of attorney number).
    pub(crate) fn key(&self) -> &str {
        match &self.request.key {
            Some(Key::Iin(key) | Key::Bin(key) | Key::PowerOfAttorneyNumber(key)) => key,
            None => "",
        }
    }
}

/// A registry behind its layers.
type RegistryService = BoxCloneSyncService<RegistryCall, LookupResponse, GatewayError>;

/// Every registry the gateway reaches, by kind.
#[derive(Debug, Clone)]
pub(crate) struct Registries {
    services: HashMap<RegistryKind, RegistryService>,
}

impl Registries {
    /// Puts each adapter behind the registry layers.
    pub(crate) fn new(
        adapters: HashMap<RegistryKind, RegistryAdapter>,
        toolkit: &Arc<Toolkit>,
    ) -> Self {
        let services = adapters
            .into_iter()
            .map(|(kind, adapter)| (kind, layers::stack(adapter, toolkit.clone())))
            .collect();
        Self { services }
    }

    /// The registries reachable, in the canonical order.
    pub(crate) fn kinds(&self) -> Vec<RegistryKind> {
        RegistryKind::ALL
            .into_iter()
            .filter(|kind| self.services.contains_key(kind))
            .collect()
    }

    /// Asks `registry`; a key it refuses is an `INVALID_FIELD` on `key_field`.
    pub(crate) async fn lookup(
        &self,
        registry: RegistryKind,
        mut request: LookupRequest,
        key_field: &'static str,
        ctx: &CallContext,
    ) -> Result<LookupResponse, GatewayError> {
        let service =
            self.services
                .get(&registry)
                .ok_or_else(|| GatewayError::RegistryUnavailable {
                    registry: registry.id().to_owned(),
                    message: "not configured".to_owned(),
                })?;
        if let (Some(session), Some(context)) = (ctx.session(), request.context.as_mut()) {
            context.session = session.to_owned();
        }
        let call = RegistryCall {
            registry,
            request,
            key_field,
            ctx: ctx.clone(),
            fired: None,
        };
        service.clone().oneshot(call).await
    }
}

/// A lookup of `key` on behalf of the envelope's sender: the registry's
/// audit names the system, the operator (off the portal) and the purpose.
pub(crate) fn lookup_request(
    inbound: &Inbound,
    signer: &SignerIdentity,
    key: Key,
) -> LookupRequest {
    LookupRequest {
        key: Some(key),
        context: Some(RequestContext {
            requester_system: inbound.sender_id.clone(),
            operator_iin: if inbound.channel == ChannelName::Portal {
                String::new()
            } else {
                signer.iin.clone().unwrap_or_default()
            },
            service_id: inbound.body.service_id.clone(),
            purpose: inbound.body.purpose.clone(),
            message_id: inbound.message_id.clone(),
            test: inbound.body.test,
            session: String::new(),
        }),
    }
}

/// The in-process registries' data, and which registries run in-process.
#[derive(Debug, Clone)]
pub(crate) struct RegistriesHandle {
    pub data: Arc<RegistryData>,
    /// Registries served in-process (the others are remote).
    pub in_process: Vec<RegistryKind>,
}
