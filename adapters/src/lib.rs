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

use shep_proto::registry::v1::{LookupRequest, LookupResponse};
use shep_registries::{Registry, RegistryError};
use tower::Service;
use tower::util::BoxCloneSyncService;

pub mod coalesce;
mod remote;
pub mod unary;

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

/// A remote registry's URL that cannot be used.
#[derive(Debug, Clone, thiserror::Error)]
#[error("`{url}` is not a registry's address: {why}")]
pub struct BadUrl {
    pub url: String,
    pub why: String,
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

/// Serves lookups from a `shep.registry.v1.Registry` server over gRPC
/// (HTTP/2 without TLS; see [`remote`]).
#[derive(Debug, Clone)]
pub struct Remote {
    name: Arc<str>,
    pool: Arc<remote::Pool>,
}

impl Remote {
    /// Creates an adapter for the server at `url` (e.g. `http://127.0.0.1:7711`).
    /// Connects lazily: an unreachable server shows up as `Unavailable` on calls.
    pub fn new(name: &str, url: &str) -> Result<Self, BadUrl> {
        Ok(Self {
            name: name.into(),
            pool: Arc::new(remote::Pool::new(url)?),
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
        // Connections are checked per call.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: LookupRequest) -> Self::Future {
        let pool = self.pool.clone();
        let name = self.name.clone();
        Box::pin(async move {
            match pool.lookup(&request).await {
                Ok(response) => Ok(response),
                Err(remote::Failure::Status(code, message)) => Err(match code {
                    tonic::Code::NotFound => AdapterError::NoData {
                        registry: name.to_string(),
                        key: format!("{:?}", request.key),
                    },
                    tonic::Code::InvalidArgument => AdapterError::InvalidRequest {
                        registry: name.to_string(),
                        message,
                    },
                    _ => AdapterError::Unavailable {
                        registry: name.to_string(),
                        message: format!("{code:?}: {message}"),
                    },
                }),
                Err(remote::Failure::Transport(message)) => Err(AdapterError::Unavailable {
                    registry: name.to_string(),
                    message,
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

    #[test]
    fn remote_adapter_refuses_a_url_it_cannot_reach() {
        for url in [
            "https://127.0.0.1:7711",
            "http://127.0.0.1",
            "127.0.0.1:7711",
            "http://",
        ] {
            let error = Remote::new("gbdfl", url).unwrap_err();
            assert_eq!(error.url, url);
            assert!(
                error.to_string().contains("not a registry's address"),
                "{error}"
            );
        }
    }

    /// Serves the built-in ГБД ФЛ over gRPC on `listener` until `stop`.
    async fn registry_server(
        listener: tokio::net::TcpListener,
        stop: tokio::sync::oneshot::Receiver<()>,
    ) -> tokio::task::JoinHandle<()> {
        let service =
            shep_registries::grpc::RegistryGrpcAdapter::new(Arc::new(PersonRegistry::builtin()))
                .into_server();
        let incoming = tonic::transport::server::TcpIncoming::from(listener);
        tokio::spawn(async move {
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming_shutdown(incoming, async {
                    let _ = stop.await;
                })
                .await
                .unwrap();
        })
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn remote_adapter_answers_maps_refusals_and_reconnects_after_a_restart() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let server = registry_server(listener, stopped).await;
        let adapter = Remote::new("gbdfl", &format!("http://{addr}"))
            .unwrap()
            .boxed();

        // Many at once, over the pool's connections.
        let lookups: Vec<_> = (0..64)
            .map(|_| adapter.clone().oneshot(by_iin("850315301235")))
            .collect();
        for found in futures_join(lookups).await {
            let person = found.unwrap().record;
            assert!(person.is_some());
        }
        let missing = adapter
            .clone()
            .oneshot(by_iin("791028302728"))
            .await
            .unwrap_err();
        assert!(
            matches!(missing, AdapterError::NoData { .. }),
            "{missing:?}"
        );
        let invalid = adapter.clone().oneshot(by_iin("12")).await.unwrap_err();
        assert!(
            matches!(invalid, AdapterError::InvalidRequest { .. }),
            "{invalid:?}"
        );

        // The registry goes away: lookups are Unavailable, not hung.
        stop.send(()).unwrap();
        server.await.unwrap();
        let down = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            adapter.clone().oneshot(by_iin("850315301235")),
        )
        .await
        .expect("answered in time")
        .unwrap_err();
        assert!(matches!(down, AdapterError::Unavailable { .. }), "{down:?}");

        // It comes back on the same port: the adapter connects again.
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let (_stop, stopped) = tokio::sync::oneshot::channel();
        let _server = registry_server(listener, stopped).await;
        // Every slot's connection closed with the old server; each is
        // replaced before anything is sent on it, so no lookup fails.
        for _ in 0..4 {
            let found = adapter.clone().oneshot(by_iin("850315301235")).await;
            assert!(found.unwrap().record.is_some());
        }
    }

    async fn futures_join<F>(futures: Vec<F>) -> Vec<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let handles: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
        let mut outputs = Vec::new();
        for handle in handles {
            outputs.push(handle.await.unwrap());
        }
        outputs
    }
}
