//! The layers every registry adapter sits behind, in-process or remote
//! alike, composed once in [`stack`]. Each is a small tower middleware over
//! `Service<RegistryCall, Response = LookupResponse, Error = GatewayError>`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use shep_adapters::{AdapterError, RegistryAdapter};
use shep_proto::registry::v1::LookupResponse;
use tokio::time::Instant;
use tower::util::BoxCloneSyncService;
use tower::{Layer, Service, ServiceBuilder, ServiceExt as _};
use tracing::Instrument as _;

use super::{RegistryCall, RegistryService};
use crate::error::GatewayError;
use crate::toolkit::Toolkit;
use crate::toolkit::exchanges::{Record as ExchangeRecord, any};
use crate::toolkit::faults::Site;

type BoxFuture = Pin<Box<dyn Future<Output = Result<LookupResponse, GatewayError>> + Send>>;

/// The registry stack. The first layer listed is the outermost.
pub(super) fn stack(adapter: RegistryAdapter, toolkit: Arc<Toolkit>) -> RegistryService {
    BoxCloneSyncService::new(
        ServiceBuilder::new()
            // A span per lookup, so the registry's logs and the fault's name
            // the registry and key under the message's span.
            .layer(SpanLayer)
            // Chooses the fault in force for this registry, key and session
            // once, before the journal, so the exchange names the fault.
            .layer(FaultLayer::choose(toolkit.clone()))
            // The exchange journal sees what the caller sees: the fault's
            // delay and the deadline included.
            .layer(RecordLayer(toolkit.clone()))
            // The caller's deadline bounds everything below: a fault's delay
            // or hang as much as a slow registry.
            .layer(DeadlineLayer)
            // Carries the chosen fault out (delay, error, hang, dropped
            // connection) where the deadline sees it.
            .layer(FaultLayer::inject(toolkit))
            .service(Adapter(adapter)),
    )
}

// === impl Adapter ===

/// The adapter itself, its errors mapped into the gateway's.
#[derive(Debug, Clone)]
struct Adapter(RegistryAdapter);

impl Service<RegistryCall> for Adapter {
    type Response = LookupResponse;
    type Error = GatewayError;
    type Future = BoxFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), GatewayError>> {
        // The boxed adapters are always ready: each call clones one.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, call: RegistryCall) -> BoxFuture {
        let adapter = self.0.clone();
        let key_field = call.key_field;
        Box::pin(async move {
            adapter
                .oneshot(call.request)
                .await
                .map_err(|error| match error {
                    AdapterError::NoData { registry, key } => GatewayError::NoData(format!(
                        "registry `{registry}` has no data for `{key}` («нет данных»)"
                    )),
                    AdapterError::InvalidRequest { message, .. } => GatewayError::InvalidField {
                        field: key_field,
                        problem: message,
                    },
                    AdapterError::Unavailable { registry, message } => {
                        GatewayError::RegistryUnavailable { registry, message }
                    }
                })
        })
    }
}

// === impl SpanLayer ===

#[derive(Debug, Clone, Copy)]
struct SpanLayer;

impl<S> Layer<S> for SpanLayer {
    type Service = Span<S>;

    fn layer(&self, inner: S) -> Span<S> {
        Span(inner)
    }
}

#[derive(Debug, Clone)]
struct Span<S>(S);

impl<S> Service<RegistryCall> for Span<S>
where
    S: Service<RegistryCall, Response = LookupResponse, Error = GatewayError>,
    S::Future: Send + 'static,
{
    type Response = LookupResponse;
    type Error = GatewayError;
    type Future = BoxFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), GatewayError>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, call: RegistryCall) -> BoxFuture {
        let span =
            tracing::info_span!("registry", registry = call.registry.id(), key = %call.key());
        Box::pin(self.0.call(call).instrument(span))
    }
}

// === impl FaultLayer ===

/// Fault injection in two places of the stack: `choose` picks the fault in
/// force (outside the journal), `inject` carries it out (inside the deadline).
#[derive(Debug, Clone)]
struct FaultLayer {
    toolkit: Arc<Toolkit>,
    inject: bool,
}

impl FaultLayer {
    fn choose(toolkit: Arc<Toolkit>) -> Self {
        Self {
            toolkit,
            inject: false,
        }
    }

    fn inject(toolkit: Arc<Toolkit>) -> Self {
        Self {
            toolkit,
            inject: true,
        }
    }
}

impl<S> Layer<S> for FaultLayer {
    type Service = Fault<S>;

    fn layer(&self, inner: S) -> Fault<S> {
        Fault {
            inner,
            layer: self.clone(),
        }
    }
}

#[derive(Debug, Clone)]
struct Fault<S> {
    inner: S,
    layer: FaultLayer,
}

impl<S> Service<RegistryCall> for Fault<S>
where
    S: Service<RegistryCall, Response = LookupResponse, Error = GatewayError>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = LookupResponse;
    type Error = GatewayError;
    type Future = BoxFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), GatewayError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut call: RegistryCall) -> BoxFuture {
        let toolkit = self.layer.toolkit.clone();
        if !self.layer.inject {
            call.fired = toolkit.faults.check(
                Site::Registry {
                    id: call.registry.id(),
                    key: call.key(),
                },
                call.ctx.session(),
            );
            return Box::pin(self.inner.call(call));
        }
        // The inner service was made ready for this call: take it, leave a clone.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            if let Some(fired) = call.fired.clone() {
                let what = format!("registry `{}`", call.registry.id());
                crate::toolkit::inject::apply(fired, &call.ctx, &what, &toolkit.connections)
                    .await?;
            }
            inner.call(call).await
        })
    }
}

// === impl RecordLayer ===

/// Records each lookup in the exchange journal, when it records.
#[derive(Debug, Clone)]
struct RecordLayer(Arc<Toolkit>);

impl<S> Layer<S> for RecordLayer {
    type Service = Record<S>;

    fn layer(&self, inner: S) -> Record<S> {
        Record {
            inner,
            toolkit: self.0.clone(),
        }
    }
}

#[derive(Debug, Clone)]
struct Record<S> {
    inner: S,
    toolkit: Arc<Toolkit>,
}

impl<S> Service<RegistryCall> for Record<S>
where
    S: Service<RegistryCall, Response = LookupResponse, Error = GatewayError>,
    S::Future: Send + 'static,
{
    type Response = LookupResponse;
    type Error = GatewayError;
    type Future = BoxFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), GatewayError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, call: RegistryCall) -> BoxFuture {
        if !self.toolkit.exchanges.recording() {
            return Box::pin(self.inner.call(call));
        }
        let started = Instant::now();
        let asked = call.request.clone();
        let session = call.ctx.session_label();
        let rpc = format!("registry/{}", call.registry.id());
        let subject = call.key().to_owned();
        let fault_id = call
            .fired
            .as_ref()
            .map(|fired| fired.fault_id.clone())
            .unwrap_or_default();
        let toolkit = self.toolkit.clone();
        let answer = self.inner.call(call);
        Box::pin(async move {
            let result = answer.await;
            let context = asked.context.clone().unwrap_or_default();
            toolkit.exchanges.record(|| {
                let mut record = ExchangeRecord {
                    session,
                    rpc,
                    hop: "registry",
                    service_id: context.service_id,
                    subject,
                    message_id: context.message_id,
                    request: Some(any("shep.registry.v1.LookupRequest", &asked)),
                    duration: started.elapsed(),
                    fault_id,
                    ..ExchangeRecord::default()
                };
                match &result {
                    Ok(response) => {
                        record.response = Some(any("shep.registry.v1.LookupResponse", response));
                    }
                    Err(error) => record.failed(&crate::error::into_status(error.clone())),
                }
                record
            });
            result
        })
    }
}

// === impl DeadlineLayer ===

/// Bounds a lookup by the caller's `grpc-timeout`, so an answer that would
/// come too late is a `DEADLINE_EXCEEDED` in time.
#[derive(Debug, Clone, Copy)]
struct DeadlineLayer;

impl<S> Layer<S> for DeadlineLayer {
    type Service = Deadline<S>;

    fn layer(&self, inner: S) -> Deadline<S> {
        Deadline(inner)
    }
}

#[derive(Debug, Clone)]
struct Deadline<S>(S);

impl<S> Service<RegistryCall> for Deadline<S>
where
    S: Service<RegistryCall, Response = LookupResponse, Error = GatewayError>,
    S::Future: Send + 'static,
{
    type Response = LookupResponse;
    type Error = GatewayError;
    type Future = BoxFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), GatewayError>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, call: RegistryCall) -> BoxFuture {
        let Some(deadline) = call.ctx.deadline else {
            return Box::pin(self.0.call(call));
        };
        let registry = call.registry.id();
        let answer = self.0.call(call);
        Box::pin(async move {
            tokio::time::timeout_at(deadline, answer)
                .await
                .map_err(|_| GatewayError::DeadlineExceeded(format!("registry `{registry}`")))?
        })
    }
}
