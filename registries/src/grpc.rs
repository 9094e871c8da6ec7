//! Serves a [`Registry`] as the `shep.registry.v1.Registry` gRPC service, so a
//! registry can run in its own process (or a team can replace it with theirs).

use std::sync::Arc;

use shep_proto::registry::v1::registry_server::{Registry as RegistryService, RegistryServer};
use shep_proto::registry::v1::{LookupRequest, LookupResponse};
use tonic::{Request, Response, Status};

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

/// The gRPC status for a registry error. `NoData` is NOT_FOUND: the adapter on
/// the gateway's side maps it back.
pub fn status_of(error: &RegistryError) -> Status {
    match error {
        RegistryError::NoData { .. } => Status::not_found(error.to_string()),
        RegistryError::InvalidKey { .. } | RegistryError::UnsupportedKey { .. } => {
            Status::invalid_argument(error.to_string())
        }
    }
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
