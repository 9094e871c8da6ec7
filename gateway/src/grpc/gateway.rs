//! `shep.gateway.v1.Gateway`.

use std::sync::Arc;

use shep_proto::envelope::v1::SignedEnvelope;
use shep_proto::gateway::v1::gateway_server::Gateway;
use shep_proto::gateway::v1::{
    Application, CallResponse, GetStatusRequest, HistoryRequest, HistoryResponse, Receipt,
    StatusEvent, WatchRequest,
};
use tokio_stream::StreamExt as _;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::{EventStream, envelope, respond, unexpected};
use crate::engine::Engine;
use crate::error::into_status;
use crate::participants::Principal;
use crate::pipeline::{Answer, EnvelopeService, Rpc};
use crate::status;

/// `shep.gateway.v1.Gateway`.
#[derive(Debug, Clone)]
pub(crate) struct GatewayGrpcAdapter {
    engine: Arc<Engine>,
    pipeline: EnvelopeService,
}

impl GatewayGrpcAdapter {
    /// Serves Call and Submit through `pipeline`, the queries from `engine`.
    pub(crate) fn new(engine: Arc<Engine>, pipeline: EnvelopeService) -> Self {
        Self { engine, pipeline }
    }
}

#[tonic::async_trait]
impl Gateway for GatewayGrpcAdapter {
    async fn call(
        &self,
        request: Request<SignedEnvelope>,
    ) -> Result<Response<CallResponse>, Status> {
        match envelope(&self.engine, &self.pipeline, Rpc::Call, request).await? {
            Answer::Call(response) => Ok(Response::new(*response)),
            other => Err(unexpected(&other)),
        }
    }

    async fn submit(&self, request: Request<SignedEnvelope>) -> Result<Response<Receipt>, Status> {
        match envelope(&self.engine, &self.pipeline, Rpc::Submit, request).await? {
            Answer::Submit(receipt) => Ok(Response::new(receipt)),
            other => Err(unexpected(&other)),
        }
    }

    async fn get_status(
        &self,
        request: Request<GetStatusRequest>,
    ) -> Result<Response<Application>, Status> {
        respond(super::watch::get_status(&self.engine, request).await)
    }

    async fn history(
        &self,
        request: Request<HistoryRequest>,
    ) -> Result<Response<HistoryResponse>, Status> {
        let principal = Principal::of(&request);
        let read = async {
            let subject =
                crate::envelope::SubjectId::from_proto(request.get_ref().subject.as_ref())?;
            status::authorize_subject(&self.engine, &principal, &subject, "Gateway.History")?;
            status::history(&self.engine, request.get_ref()).await
        };
        respond(read.await)
    }

    type WatchStream = EventStream<StatusEvent>;

    async fn watch(
        &self,
        request: Request<WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let events = super::watch::open(&self.engine, request)
            .await
            .map_err(into_status)?;
        let events = ReceiverStream::new(events).map(|event| event.map_err(into_status));
        Ok(Response::new(Box::pin(events)))
    }
}
