//! The layers of the envelope pipeline that are ours (the limit layers are
//! tower's): the message span with its metrics, and the exchange journal.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::time::Instant;
use tower::{BoxError, Service};
use tracing::Instrument as _;

use super::{Answer, EnvelopeRequest};
use crate::engine::Engine;
use crate::error::GatewayError;

type AnswerFuture<E> = Pin<Box<dyn Future<Output = Result<Answer, E>> + Send>>;

/// Turns what tower's limit layers answer into the gateway's errors.
pub(super) fn classify(error: BoxError) -> GatewayError {
    match error.downcast::<GatewayError>() {
        Ok(error) => *error,
        Err(error) if error.is::<tower::load_shed::error::Overloaded>() => GatewayError::Overloaded,
        Err(error) => GatewayError::Internal(format!("request path: {error}")),
    }
}

// === impl MessageService ===

/// A span per message (its id and service recorded once the body is
/// decoded, so every event and child span below carries them), the in-flight
/// gauge and the outcome counter.
#[derive(Debug, Clone)]
pub(super) struct MessageService<S> {
    pub(super) inner: S,
    pub(super) engine: Arc<Engine>,
}

impl<S> Service<EnvelopeRequest> for MessageService<S>
where
    S: Service<EnvelopeRequest, Response = Answer, Error = GatewayError>,
    S::Future: Send + 'static,
{
    type Response = Answer;
    type Error = GatewayError;
    type Future = AnswerFuture<GatewayError>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), GatewayError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: EnvelopeRequest) -> Self::Future {
        // First: the span, the journal, faults and the clock all see the
        // session a binding gives a call without the header.
        super::bind::resolve(&self.engine, &mut request);
        let rpc = request.rpc.label();
        let span = tracing::info_span!(
            "message",
            rpc,
            message_id = tracing::field::Empty,
            service = tracing::field::Empty,
            correlation_id = tracing::field::Empty,
            session = request.ctx.session().unwrap_or_default(),
        );
        if let Some(parent) = request.ctx.remote_parent.take() {
            use tracing_opentelemetry::OpenTelemetrySpanExt as _;
            // Fails only when no OpenTelemetry layer records the span: then
            // there is nothing to attach the parent to.
            let _ = span.set_parent(parent);
        }
        let engine = self.engine.clone();
        let in_flight = engine.metrics().in_flight(rpc);
        let answer = self.inner.call(request).instrument(span);
        Box::pin(async move {
            let result = answer.await;
            drop(in_flight);
            let outcome = match &result {
                Ok(_) => "ok",
                Err(error) => error.reason().as_str_name(),
            };
            engine.metrics().outcome(rpc, outcome);
            result
        })
    }
}

// === impl ExchangeService ===

/// Records each envelope and its answer in the exchange journal, when it
/// records.
#[derive(Debug, Clone)]
pub(super) struct ExchangeService<S> {
    pub(super) inner: S,
    pub(super) engine: Arc<Engine>,
}

impl<S> Service<EnvelopeRequest> for ExchangeService<S>
where
    S: Service<EnvelopeRequest, Response = Answer, Error = GatewayError>,
    S::Future: Send + 'static,
{
    type Response = Answer;
    type Error = GatewayError;
    type Future = AnswerFuture<GatewayError>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), GatewayError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: EnvelopeRequest) -> Self::Future {
        // Recording encodes the envelope into a recycled buffer now, before
        // the pipeline takes it, and the answer after: no copy of the
        // request, no allocation once the journal has warmed up.
        let Some(mut draft) = self.engine.toolkit().exchanges.draft() else {
            return Box::pin(self.inner.call(request));
        };
        let started = Instant::now();
        draft.envelope(
            request.rpc.path(),
            request.ctx.session().unwrap_or_default(),
            &request.envelope,
        );
        let engine = self.engine.clone();
        let answer = self.inner.call(request);
        Box::pin(async move {
            let result = answer.await;
            match &result {
                Ok(answer) => answer.record(&mut draft),
                Err(error) => draft.failed(&crate::error::into_status(error.clone())),
            }
            engine.toolkit().exchanges.commit(draft, started.elapsed());
            result
        })
    }
}
