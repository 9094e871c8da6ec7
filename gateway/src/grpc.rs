//! The gRPC edge: thin adapters that turn a tonic request into the domain's
//! terms (an [`EnvelopeRequest`](crate::pipeline::EnvelopeRequest), a query,
//! an admin operation), call it, and map its error through
//! [`into_status`](crate::error::into_status), the one conversion to a status.

mod admin;
mod edge;
mod gateway;
mod provider;
mod watch;

use std::pin::Pin;

use tokio_stream::Stream;
use tonic::{Request, Response, Status};

pub(crate) use admin::AdminGrpcAdapter;
pub(crate) use edge::refine;
pub(crate) use gateway::GatewayGrpcAdapter;
pub(crate) use provider::ProviderGrpcAdapter;

use crate::error::into_status;
use crate::participants::Credentials;
use crate::pipeline::{Answer, EnvelopeRequest, EnvelopeService, Rpc};
use crate::toolkit::CallContext;

type EventStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// Authenticates every call of a participant service (Gateway, Provider)
/// before any method runs, and hands the methods its [`Principal`].
#[derive(Debug, Clone)]
pub(crate) struct Authenticate {
    engine: std::sync::Arc<crate::engine::Engine>,
    credentials: Credentials,
}

impl Authenticate {
    pub(crate) fn new(engine: std::sync::Arc<crate::engine::Engine>, required: bool) -> Self {
        Self {
            engine,
            credentials: Credentials::new(required),
        }
    }
}

impl tonic::service::Interceptor for Authenticate {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let principal = self
            .credentials
            .principal(&self.engine.routes(), &request)
            .map_err(into_status)?;
        request.extensions_mut().insert(principal);
        Ok(request)
    }
}

/// Sends an envelope-carrying request through the pipeline.
async fn envelope(
    engine: &crate::engine::Engine,
    pipeline: &EnvelopeService,
    rpc: Rpc,
    request: Request<shep_proto::envelope::v1::SignedEnvelope>,
) -> Result<Answer, Status> {
    use tower::ServiceExt as _;
    let ctx = CallContext::from_request(&request)
        .map_err(into_status)?
        .with_certificates(&request, &engine.toolkit().bindings);
    let request = EnvelopeRequest {
        rpc,
        envelope: request.into_inner(),
        ctx,
    };
    pipeline.clone().oneshot(request).await.map_err(into_status)
}

/// The answer a pipeline gives an RPC of its kind.
fn unexpected(answer: &Answer) -> Status {
    into_status(crate::error::GatewayError::Internal(format!(
        "the pipeline answered {answer:?} to another RPC"
    )))
}

/// Wraps a domain result as a response.
fn respond<T>(result: Result<T, crate::error::GatewayError>) -> Result<Response<T>, Status> {
    result.map(Response::new).map_err(into_status)
}
