//! How the gateway reaches a registry. A registry adapter is a tower
//! [`Service`] from a [`LookupRequest`] to a [`LookupResponse`]: in-process
//! (a direct call into `shep-registries`) or remote (any server of the
//! `shep.registry.v1.Registry` proto, ours or a team's own). Layers such as
//! timeouts and, later, fault injection wrap either one the same way. (The
//! НУЦ's status adapter is `shep_nuc::status`.)

use std::future::{Ready, ready};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use shep_proto::registry::v1::registry_client::RegistryClient;
use shep_proto::registry::v1::{LookupRequest, LookupResponse};
use shep_registries::{Registry, RegistryError};
use tonic::transport::{Channel, Endpoint};
use tower::Service;
use tower::util::BoxCloneSyncService;

/// Why an adapter gave no record.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AdapterError {
    /// The registry has no data for the key.
    #[error("registry `{registry}` has no data for `{key}`")]
    NoData { registry: String, key: String },
    /// The registry refused the key as malformed.
    #[error("registry `{registry}` refused the request: {message}")]
    InvalidRequest { registry: String, message: String },
    /// The registry could not be reached, failed, or timed out.
    #[error("registry `{registry}` is unavailable: {message}")]
    Unavailable { registry: String, message: String },
}

/// A type-erased registry adapter, cheap to clone and shareable across tasks.
pub type RegistryAdapter = BoxCloneSyncService<LookupRequest, LookupResponse, AdapterError>;

/// Serves lookups from a registry in this process.
#[derive(Debug)]
pub struct InProcess<R> {
    name: Arc<str>,
    registry: Arc<R>,
}

impl<R> Clone for InProcess<R> {
    fn clone(&self) -> Self {
        Self {
            name: self.name.clone(),
            registry: self.registry.clone(),
        }
    }
}

impl<R: Registry> InProcess<R> {
    /// Wraps `registry`, naming it `name` in errors.
    pub fn new(name: &str, registry: Arc<R>) -> Self {
        Self {
            name: name.into(),
            registry,
        }
    }

    /// Boxes the adapter.
    pub fn boxed(self) -> RegistryAdapter {
        BoxCloneSyncService::new(self)
    }
}

impl<R: Registry> Service<LookupRequest> for InProcess<R> {
    type Response = LookupResponse;
    type Error = AdapterError;
    type Future = Ready<Result<LookupResponse, AdapterError>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), AdapterError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: LookupRequest) -> Self::Future {
        // The name is copied into an error only: a lookup that answers
        // allocates nothing here.
        ready(self.registry.lookup(&request).map_err(|error| match error {
            RegistryError::NoData { key } => AdapterError::NoData {
                registry: self.name.to_string(),
                key,
            },
            other => AdapterError::InvalidRequest {
                registry: self.name.to_string(),
                message: other.to_string(),
            },
        }))
    }
}

/// Serves lookups from a `shep.registry.v1.Registry` server over gRPC.
#[derive(Debug, Clone)]
pub struct Remote {
    name: Arc<str>,
    client: RegistryClient<Channel>,
}

impl Remote {
    /// Creates an adapter for the server at `url` (e.g. `http://127.0.0.1:7711`).
    /// Connects lazily: an unreachable server shows up as `Unavailable` on calls.
    pub fn new(name: &str, url: &str) -> Result<Self, AdapterError> {
        let endpoint =
            Endpoint::from_shared(url.to_owned()).map_err(|error| AdapterError::Unavailable {
                registry: name.to_owned(),
                message: format!("bad url `{url}`: {error}"),
            })?;
        Ok(Self {
            name: name.into(),
            client: RegistryClient::new(endpoint.connect_lazy()),
        })
    }

    /// Boxes the adapter.
    pub fn boxed(self) -> RegistryAdapter {
        BoxCloneSyncService::new(self)
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl Service<LookupRequest> for Remote {
    type Response = LookupResponse;
    type Error = AdapterError;
    type Future = BoxFuture<Result<LookupResponse, AdapterError>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), AdapterError>> {
        // The channel buffers; readiness is checked per call.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: LookupRequest) -> Self::Future {
        let mut client = self.client.clone();
        let name = self.name.clone();
        Box::pin(async move {
            // Kept to name in a "no data" answer; formatted only then, not
            // on every call of the hot path.
            let key = request.key.clone();
            match client.lookup(request).await {
                Ok(response) => Ok(response.into_inner()),
                Err(status) => Err(match status.code() {
                    tonic::Code::NotFound => AdapterError::NoData {
                        registry: name.to_string(),
                        key: format!("{key:?}"),
                    },
                    tonic::Code::InvalidArgument => AdapterError::InvalidRequest {
                        registry: name.to_string(),
                        message: status.message().to_owned(),
                    },
                    _ => AdapterError::Unavailable {
                        registry: name.to_string(),
                        message: format!("{:?}: {}", status.code(), status.message()),
                    },
                }),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shep_proto::registry::v1::lookup_request::Key;
    use shep_registries::gbdfl::PersonRegistry;
    use tower::ServiceExt;

    fn by_iin(iin: &str) -> LookupRequest {
        LookupRequest {
            key: Some(Key::Iin(iin.to_owned())),
            context: None,
        }
    }

    #[tokio::test]
    async fn in_process_adapter_answers_and_maps_no_data() {
        let adapter = InProcess::new("gbdfl", Arc::new(PersonRegistry::builtin())).boxed();
        let found = adapter.clone().oneshot(by_iin("850315301235")).await;
        assert!(found.unwrap().record.is_some());
        let missing = adapter.oneshot(by_iin("791028302728")).await.unwrap_err();
        assert!(
            matches!(missing, AdapterError::NoData { .. }),
            "{missing:?}"
        );
    }

    #[tokio::test]
    async fn remote_adapter_reports_an_unreachable_registry_as_unavailable() {
        // Port 9 (discard) on loopback has no gRPC server.
        let adapter = Remote::new("gbdfl", "http://127.0.0.1:9").unwrap().boxed();
        let error = adapter.oneshot(by_iin("850315301235")).await.unwrap_err();
        assert!(
            matches!(error, AdapterError::Unavailable { .. }),
            "{error:?}"
        );
    }
}
