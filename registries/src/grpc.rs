//! Serves a [`Registry`] as the `shep.registry.v1.Registry` gRPC service, so a
//! registry can run in its own process (or a team can replace it with theirs),
//! and the registries' data as `shep.registry.v1.RegistryAdmin` (audit and
//! fixtures) behind a bearer token.

use std::collections::HashMap;
use std::sync::Arc;

use shep_proto::catalogue::refusal;
use shep_proto::envelope::v1::Reason;
use shep_proto::registry::v1::registry_admin_server::{
    RegistryAdmin as RegistryAdminService, RegistryAdminServer,
};
use shep_proto::registry::v1::registry_server::{Registry as RegistryService, RegistryServer};
use shep_proto::registry::v1::{
    AccessLogRequest, AccessLogResponse, LookupRequest, LookupResponse, ReloadFixturesRequest,
    ReloadFixturesResponse,
};
use tonic::{Request, Response, Status};

use crate::data::RegistryData;
use crate::fixtures::{FixtureError, FixtureSource, FixtureSummary};
use crate::{Registry, RegistryError};

/// The gRPC face of a registry.
#[derive(Debug, Clone)]
pub struct RegistryGrpcAdapter<R> {
    registry: Arc<R>,
}

impl<R: Registry> RegistryGrpcAdapter<R> {
    /// Wraps `registry`.
    pub fn new(registry: Arc<R>) -> Self {
        Self { registry }
    }

    /// The tonic server for this registry.
    pub fn into_server(self) -> RegistryServer<Self> {
        RegistryServer::new(self)
    }
}

/// The gRPC status for a registry error, with a `google.rpc.ErrorInfo` reason
/// (`NO_DATA`, `INVALID_SUBJECT`) in the gateway's `shep.kz` domain and the
/// catalogue's code. The gateway's remote adapter maps NOT_FOUND back to "no data".
pub fn status_of(error: &RegistryError) -> Status {
    let reason = match error {
        RegistryError::NoData { .. } => Reason::NoData,
        RegistryError::InvalidKey { .. }
        | RegistryError::InvalidNumber { .. }
        | RegistryError::UnsupportedKey { .. } => Reason::InvalidSubject,
    };
    refusal(reason, error.to_string(), HashMap::new())
}

/// The gRPC status for fixtures that failed to load: reason `INVALID_FIELD`
/// with `metadata.field` = `fixtures`, as the gateway answers a bad field.
pub fn fixture_status(error: &FixtureError) -> Status {
    refusal(
        Reason::InvalidField,
        error.to_string(),
        HashMap::from([("field".to_owned(), "fixtures".to_owned())]),
    )
}

#[tonic::async_trait]
impl<R: Registry> RegistryService for RegistryGrpcAdapter<R> {
    async fn lookup(
        &self,
        request: Request<LookupRequest>,
    ) -> Result<Response<LookupResponse>, Status> {
        self.registry
            .lookup(request.get_ref())
            .map(Response::new)
            .map_err(|error| status_of(&error))
    }
}

/// The response to a successful fixture load.
pub fn reload_response(summary: FixtureSummary, generation: u64) -> ReloadFixturesResponse {
    ReloadFixturesResponse {
        sources: summary.sources,
        persons: summary.persons as u64,
        legal_entities: summary.legal_entities as u64,
        powers_of_attorney: summary.powers_of_attorney as u64,
        absent: summary.absent as u64,
        generation,
    }
}

/// The inline documents of a `ReloadFixtures` request; unnamed ones are
/// called `document-1`, `document-2`, ….
pub fn documents(request: &ReloadFixturesRequest) -> Vec<FixtureSource> {
    request
        .documents
        .iter()
        .enumerate()
        .map(|(index, document)| {
            let name = if document.name.is_empty() {
                format!("document-{}", index + 1)
            } else {
                document.name.clone()
            };
            FixtureSource::inline(&name, &document.json)
        })
        .collect()
}

/// Applies a `ReloadFixtures` request to `data`.
pub fn reload(
    data: &RegistryData,
    request: &ReloadFixturesRequest,
) -> Result<ReloadFixturesResponse, Status> {
    data.reload(&documents(request))
        .map(|(summary, generation)| reload_response(summary, generation))
        .map_err(|error| fixture_status(&error))
}

/// Whether `request` carries `authorization: Bearer <token>`. Compares
/// digests, so the comparison's timing says nothing about the token.
pub fn bearer_matches<T>(request: &Request<T>, token: &str) -> bool {
    let presented = request
        .metadata()
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    let digest = |bytes: &[u8]| ring::digest::digest(&ring::digest::SHA256, bytes);
    presented.is_some_and(|presented| {
        digest(presented.as_bytes()).as_ref() == digest(token.as_bytes()).as_ref()
    })
}

/// `shep.registry.v1.RegistryAdmin` over the data of a registry process.
#[derive(Debug, Clone)]
pub struct RegistryAdminGrpcAdapter {
    data: Arc<RegistryData>,
    token: Arc<str>,
}

impl RegistryAdminGrpcAdapter {
    /// Serves `data`'s audit and fixtures to callers presenting `token`.
    pub fn new(data: Arc<RegistryData>, token: &str) -> Self {
        Self {
            data,
            token: token.into(),
        }
    }

    /// The tonic server.
    pub fn into_server(self) -> RegistryAdminServer<Self> {
        RegistryAdminServer::new(self)
    }

    fn authorize<T>(&self, request: &Request<T>) -> Result<(), Status> {
        if bearer_matches(request, &self.token) {
            Ok(())
        } else {
            Err(refusal(
                Reason::Unauthenticated,
                "missing or wrong admin credential",
                HashMap::new(),
            ))
        }
    }
}

#[tonic::async_trait]
impl RegistryAdminService for RegistryAdminGrpcAdapter {
    async fn access_log(
        &self,
        request: Request<AccessLogRequest>,
    ) -> Result<Response<AccessLogResponse>, Status> {
        self.authorize(&request)?;
        Ok(Response::new(self.data.audit().query(request.get_ref())))
    }

    async fn reload_fixtures(
        &self,
        request: Request<ReloadFixturesRequest>,
    ) -> Result<Response<ReloadFixturesResponse>, Status> {
        self.authorize(&request)?;
        reload(&self.data, request.get_ref()).map(Response::new)
    }
}
