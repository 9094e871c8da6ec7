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
use tower::layer::layer_fn;
use tower::util::BoxCloneSyncService;
use tower::{Layer, Service, ServiceBuilder, ServiceExt as _};
use tracing::Instrument as _;

use super::{RegistryCall, RegistryService};
use crate::error::GatewayError;
use crate::toolkit::Toolkit;
use crate::toolkit::faults::Site;
use shep_registries::RegistryKind;

type BoxFuture = Pin<Box<dyn Future<Output = Result<LookupResponse, GatewayError>> + Send>>;

/// The registry stack. The first layer listed is the outermost.
pub(super) fn stack(adapter: RegistryAdapter, toolkit: Arc<Toolkit>) -> RegistryService {
    BoxCloneSyncService::new(
        ServiceBuilder::new()
            // A span per lookup, so the registry's logs and the fault's name
            // the registry and key under the message's span.
            .layer(layer_fn(Span))
            // Chooses the fault in force for this registry, key and session
            // once, before the journal, so the exchange names the fault.
            .layer(FaultLayer::choose(toolkit.clone()))
            // The exchange journal sees what the caller sees: the fault's
            // delay and the deadline included.
            .layer(layer_fn(|inner| Record {
                inner,
                toolkit: toolkit.clone(),
            }))
            // The caller's deadline bounds everything below: a fault's delay
            // or hang as much as a slow registry.
            .layer(layer_fn(Deadline))
            // Carries the chosen fault out (delay, error, hang, dropped
            // connection) where the deadline sees it.
            .layer(FaultLayer::inject(toolkit.clone()))
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

// === impl Span ===

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

// === impl Record ===

/// Records each lookup in the exchange journal, when it records.
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
        // As the envelope's record: the lookup encoded into a recycled
        // buffer, the answer after it.
        let Some(mut draft) = self.toolkit.exchanges.draft() else {
            return Box::pin(self.inner.call(call));
        };
        let started = Instant::now();
        draft.lookup(
            lookup_rpc(call.registry),
            call.ctx.session().unwrap_or_default(),
            call.key(),
            call.fired
                .as_ref()
                .map(|fired| fired.fault_id.as_str())
                .unwrap_or_default(),
            &call.request,
        );
        let toolkit = self.toolkit.clone();
        let answer = self.inner.call(call);
        Box::pin(async move {
            let result = answer.await;
            match &result {
                Ok(response) => draft.answered("shep.registry.v1.LookupResponse", response),
                Err(error) => draft.failed(&crate::error::into_status(error.clone())),
            }
            toolkit.exchanges.commit(draft, started.elapsed());
            result
        })
    }
}

/// The exchange journal's name of a lookup in `registry`.
fn lookup_rpc(registry: RegistryKind) -> &'static str {
    match registry {
        RegistryKind::Persons => "registry/gbdfl",
        RegistryKind::LegalEntities => "registry/gbdul",
        RegistryKind::PowersOfAttorney => "registry/enis",
    }
}

// === impl Deadline ===

/// Bounds a lookup by the caller's `grpc-timeout`, so an answer that would
/// come too late is a `DEADLINE_EXCEEDED` in time.
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use shep_proto::admin::v1::{
        ErrorEffect, ExchangeFilter, Fault, FaultTarget, fault, fault_target,
    };
    use shep_proto::registry::v1::{LookupRequest, lookup_request::Key};
    use shep_registries::RegistryKind;
    use tower::service_fn;

    use super::*;
    use crate::config::ToolkitConfig;
    use crate::toolkit::CallContext;

    /// An adapter that counts its calls and answers after `delay` with `answer`.
    fn adapter(
        delay: Duration,
        answer: Result<(), AdapterError>,
        calls: Arc<AtomicUsize>,
    ) -> RegistryAdapter {
        BoxCloneSyncService::new(service_fn(move |_request: LookupRequest| {
            let answer = answer.clone();
            calls.fetch_add(1, Ordering::Relaxed);
            async move {
                tokio::time::sleep(delay).await;
                answer.map(|()| LookupResponse::default())
            }
        }))
    }

    fn call(ctx: CallContext) -> RegistryCall {
        RegistryCall {
            registry: RegistryKind::Persons,
            request: LookupRequest {
                key: Some(Key::Iin("850315301235".into())),
                context: None,
            },
            key_field: "subject",
            ctx,
            fired: None,
        }
    }

    fn toolkit() -> Arc<Toolkit> {
        Arc::new(Toolkit::new(&ToolkitConfig::default()))
    }

    #[tokio::test(start_paused = true)]
    async fn the_callers_deadline_bounds_a_slow_registry() {
        let calls = Arc::new(AtomicUsize::new(0));
        let slow = adapter(Duration::from_secs(5), Ok(()), calls.clone());
        let started = Instant::now();
        let ctx = CallContext {
            deadline: Some(started + Duration::from_millis(100)),
            ..CallContext::default()
        };
        let error = stack(slow, toolkit()).oneshot(call(ctx)).await.unwrap_err();
        assert!(
            matches!(error, GatewayError::DeadlineExceeded(_)),
            "{error}"
        );
        assert_eq!(started.elapsed(), Duration::from_millis(100));
        assert_eq!(calls.load(Ordering::Relaxed), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_registry_fault_answers_instead_of_the_registry_and_is_journaled() {
        let calls = Arc::new(AtomicUsize::new(0));
        let toolkit = toolkit();
        let fault = toolkit
            .faults
            .add(
                Fault {
                    target: Some(FaultTarget {
                        target: Some(fault_target::Target::Registry("gbdfl".into())),
                    }),
                    effect: Some(fault::Effect::Error(ErrorEffect {
                        code: "UNAVAILABLE".into(),
                        ..ErrorEffect::default()
                    })),
                    ..Fault::default()
                },
                None,
                "",
                &RegistryKind::IDS,
            )
            .unwrap();
        let registry = adapter(Duration::ZERO, Ok(()), calls.clone());
        let error = stack(registry, toolkit.clone())
            .oneshot(call(CallContext::default()))
            .await
            .unwrap_err();
        assert!(matches!(error, GatewayError::Injected(_)), "{error}");
        assert_eq!(
            calls.load(Ordering::Relaxed),
            0,
            "the registry was not asked"
        );
        let (exchanges, _) = toolkit.exchanges.list(&ExchangeFilter::default(), 10);
        assert_eq!(exchanges.len(), 1);
        assert_eq!(exchanges[0].rpc, "registry/gbdfl");
        assert_eq!(exchanges[0].fault_id, fault.id);
        assert_eq!(exchanges[0].code, "UNAVAILABLE");
    }

    #[tokio::test]
    async fn a_refused_key_is_blamed_on_the_envelope_field() {
        let refusing = adapter(
            Duration::ZERO,
            Err(AdapterError::InvalidRequest {
                registry: "gbdfl".into(),
                message: "bad check digit".into(),
            }),
            Arc::default(),
        );
        match stack(refusing, toolkit())
            .oneshot(call(CallContext::default()))
            .await
            .unwrap_err()
        {
            GatewayError::InvalidField { field, problem } => {
                assert_eq!((field, problem.as_str()), ("subject", "bad check digit"));
            }
            other => panic!("{other}"),
        }
        let empty = adapter(
            Duration::ZERO,
            Err(AdapterError::NoData {
                registry: "gbdfl".into(),
                key: "850315301235".into(),
            }),
            Arc::default(),
        );
        assert!(matches!(
            stack(empty, toolkit())
                .oneshot(call(CallContext::default()))
                .await,
            Err(GatewayError::NoData(_))
        ));
    }
}
