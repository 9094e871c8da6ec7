//! The request path of the envelope-carrying RPCs (`Gateway.Call`,
//! `Gateway.Submit`, `Provider.Report`): one tower service whose steps per
//! RPC are listed in [`call`], [`submit`] and [`report`], behind one stack
//! of layers built in [`stack`].
//!
//! ```text
//!  request ─▶ Message ─▶ Exchange ─▶ Classify ─▶ LoadShed ─▶ ConcurrencyLimit ─▶ Steps
//!  (bound session,  (journal)   (errors)    (refuse at once)  (bound work)    (checks, act)
//!   span, metrics)
//! ```

mod bind;
mod call;
mod layers;
mod report;
mod submit;

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use shep_proto::envelope::v1::SignedEnvelope;
use shep_proto::gateway::v1::{CallResponse, Receipt};
use shep_proto::provider::v1::ReportReceipt;
use tower::layer::layer_fn;
use tower::util::BoxCloneSyncService;
use tower::{Service, ServiceBuilder};

pub use call::call;
pub use report::report;
pub use submit::submit;

use crate::engine::Engine;
use crate::error::GatewayError;
use crate::toolkit::exchanges::Draft;
use crate::toolkit::faults::Site;
use crate::toolkit::{CallContext, inject};

/// An envelope-carrying RPC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rpc {
    Call,
    Submit,
    Report,
}

impl Rpc {
    /// The metrics' `rpc` label and the span's.
    pub fn label(self) -> &'static str {
        match self {
            Self::Call => "call",
            Self::Submit => "submit",
            Self::Report => "report",
        }
    }

    /// The gRPC path, as the exchange journal names the RPC.
    pub fn path(self) -> &'static str {
        match self {
            Self::Call => "shep.gateway.v1.Gateway/Call",
            Self::Submit => "shep.gateway.v1.Gateway/Submit",
            Self::Report => "shep.provider.v1.Provider/Report",
        }
    }
}

/// A signed envelope on its way in, with what the transport said of the call.
#[derive(Debug, Clone)]
pub struct EnvelopeRequest {
    pub rpc: Rpc,
    pub envelope: SignedEnvelope,
    pub ctx: CallContext,
}

/// The answer to an envelope-carrying RPC.
#[derive(Debug, Clone)]
pub enum Answer {
    /// Boxed: a lookup's answer is ten times a receipt's size.
    Call(Box<CallResponse>),
    Submit(Receipt),
    Report(ReportReceipt),
}

impl Answer {
    /// The answer as a `google.protobuf.Any`, for the exchange journal.
    fn record(&self, draft: &mut Draft) {
        match self {
            Self::Call(response) => {
                draft.answered("shep.gateway.v1.CallResponse", response.as_ref())
            }
            Self::Submit(receipt) => draft.answered("shep.gateway.v1.Receipt", receipt),
            Self::Report(receipt) => draft.answered("shep.provider.v1.ReportReceipt", receipt),
        }
    }
}

/// The envelope pipeline behind its layers: clone it per request.
pub type EnvelopeService = BoxCloneSyncService<EnvelopeRequest, Answer, GatewayError>;

/// Limits on the envelope pipeline.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Envelopes worked on at once; one more is refused with `OVERLOADED`.
    pub max_concurrent: usize,
}

/// The envelope pipeline with its layers. The first layer listed is the
/// outermost: it sees the request first and the answer last.
pub fn stack(engine: Arc<Engine>, limits: Limits) -> EnvelopeService {
    BoxCloneSyncService::new(
        ServiceBuilder::new()
            // Outermost, so the span covers everything and every answer is
            // counted, the refusals of the layers below included. It first
            // gives a call without a session the one a binding names.
            .layer(layer_fn(|inner| layers::MessageService {
                inner,
                engine: engine.clone(),
            }))
            // The exchange journal records what the caller sent and got,
            // shed requests included.
            .layer(layer_fn(|inner| layers::ExchangeService {
                inner,
                engine: engine.clone(),
            }))
            // tower's limit layers answer with `BoxError`: classified once
            // here into the gateway's errors (OVERLOADED, or what passed
            // through).
            .map_err(layers::classify)
            // Refuse at once rather than queue when the limit is reached, so
            // an overloaded gateway answers fast and holds no backlog.
            .load_shed()
            .concurrency_limit(limits.max_concurrent)
            .service(Steps(engine.clone())),
    )
}

// === impl Steps ===

/// The steps of each RPC, without layers.
#[derive(Debug, Clone)]
struct Steps(Arc<Engine>);

type AnswerFuture = Pin<Box<dyn Future<Output = Result<Answer, GatewayError>> + Send>>;

impl Service<EnvelopeRequest> for Steps {
    type Response = Answer;
    type Error = GatewayError;
    type Future = AnswerFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), GatewayError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: EnvelopeRequest) -> AnswerFuture {
        let engine = self.0.clone();
        Box::pin(async move {
            let EnvelopeRequest { rpc, envelope, ctx } = request;
            match rpc {
                Rpc::Call => call(&engine, envelope, &ctx)
                    .await
                    .map(|response| Answer::Call(Box::new(response))),
                Rpc::Submit => submit(&engine, envelope, &ctx).await.map(Answer::Submit),
                Rpc::Report => report(&engine, envelope, &ctx).await.map(Answer::Report),
            }
        })
    }
}

/// Faults attached to `service` for this call.
async fn service_faults(
    engine: &Engine,
    service: &str,
    ctx: &CallContext,
) -> Result<(), GatewayError> {
    let toolkit = engine.toolkit();
    match toolkit.faults.check(Site::Service(service), ctx.session()) {
        Some(fired) => {
            let what = format!("service `{service}`");
            inject::apply(fired, ctx, &what, &toolkit.connections).await
        }
        None => Ok(()),
    }
}

#[cfg(test)]
mod fuzz;
#[cfg(test)]
mod tests;
