//! Serves a [`Registry`] as the `shep.registry.v1.Registry` gRPC service, so a
//! registry can run in its own process (or a team can replace it with theirs).

use std::collections::HashMap;
use std::sync::Arc;

use shep_proto::registry::v1::registry_server::{Registry as RegistryService, RegistryServer};
use shep_proto::registry::v1::{LookupRequest, LookupResponse};
use tonic::{Code, Request, Response, Status};
use tonic_types::{ErrorDetails, StatusExt};

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
/// (`NO_DATA`, `INVALID_SUBJECT`) in the gateway's `shep.kz` domain. The
/// gateway's remote adapter maps NOT_FOUND back to "no data".
pub fn status_of(error: &RegistryError) -> Status {
    let (code, reason) = match error {
        RegistryError::NoData { .. } => (Code::NotFound, "NO_DATA"),
        RegistryError::InvalidKey { .. } | RegistryError::UnsupportedKey { .. } => {
            (Code::InvalidArgument, "INVALID_SUBJECT")
        }
    };
    Status::with_error_details(
        code,
        error.to_string(),
        ErrorDetails::with_error_info(reason, "shep.kz", HashMap::new()),
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
