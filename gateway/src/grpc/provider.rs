//! `shep.provider.v1.Provider`.

use std::sync::Arc;

use shep_proto::envelope::v1::SignedEnvelope;
use shep_proto::provider::v1::provider_server::Provider;
use shep_proto::provider::v1::{
    Ack, AckResponse, GetMessagesRequest, GetMessagesResponse, ReportReceipt, SubscribeRequest,
    SubscribeResponse,
};
use time::OffsetDateTime;
use tokio::sync::mpsc;
use tokio_stream::StreamExt as _;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::{EventStream, envelope, unexpected};
use crate::engine::Engine;
use crate::error::into_status;
use crate::participants::Principal;
use crate::pipeline::{Answer, EnvelopeService, Rpc};
use crate::provider::{self, subscription};
use crate::storage::{Filter, timestamp};
use crate::toolkit::CallContext;

/// Messages a subscriber may have in flight in the transport.
const STREAM_BUFFER: usize = 64;
/// `GetMessages` when the caller asks for no amount, and the most it gets.
const DEFAULT_PULL: usize = 10;
const MAX_PULL: usize = 1000;

/// `shep.provider.v1.Provider`.
#[derive(Debug, Clone)]
pub(crate) struct ProviderGrpcAdapter {
    engine: Arc<Engine>,
    pipeline: EnvelopeService,
}

impl ProviderGrpcAdapter {
    /// Serves Report through `pipeline`, the rest from `engine`.
    pub(crate) fn new(engine: Arc<Engine>, pipeline: EnvelopeService) -> Self {
        Self { engine, pipeline }
    }
}

#[tonic::async_trait]
impl Provider for ProviderGrpcAdapter {
    type SubscribeStream = EventStream<SubscribeResponse>;

    async fn subscribe(
        &self,
        request: Request<Streaming<SubscribeRequest>>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        let ctx = CallContext::from_request(&request)
            .map_err(into_status)?
            .with_certificates(&request, &self.engine.toolkit().bindings);
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        tokio::spawn(subscription::serve(
            self.engine.clone(),
            ctx,
            request.into_inner(),
            tx,
        ));
        let outbound = ReceiverStream::new(rx).map(|message| message.map_err(into_status));
        Ok(Response::new(Box::pin(outbound)))
    }

    async fn get_messages(
        &self,
        request: Request<GetMessagesRequest>,
    ) -> Result<Response<GetMessagesResponse>, Status> {
        let bindings = &self.engine.toolkit().bindings;
        let mut ctx = CallContext::from_request(&request)
            .map_err(into_status)?
            .with_certificates(&request, bindings);
        let request = request.into_inner();
        ctx.bind(bindings, Some(&request.provider_id));
        let session = ctx.session;
        ctx.principal
            .act_as(
                &request.provider_id,
                "a provider pulls from its own queue only",
            )
            .map_err(into_status)?;
        provider::check_provider(&self.engine, &request.provider_id).map_err(into_status)?;
        let amount = match request.amount {
            0 => DEFAULT_PULL,
            amount => (amount as usize).min(MAX_PULL),
        };
        let filter = Filter {
            service_ids: if request.service_id.is_empty() {
                Vec::new()
            } else {
                vec![request.service_id]
            },
            correlation_id: request.correlation_id,
            session,
        };
        let messages = provider::pull(&self.engine, &request.provider_id, &filter, amount)
            .await
            .map_err(into_status)?;
        Ok(Response::new(GetMessagesResponse {
            response_date: Some(timestamp(OffsetDateTime::now_utc())),
            messages,
        }))
    }

    async fn acknowledge(&self, request: Request<Ack>) -> Result<Response<AckResponse>, Status> {
        let principal = Principal::of(&request);
        let ack = request.into_inner();
        principal
            .act_as(
                &ack.provider_id,
                "a provider acknowledges its own deliveries only",
            )
            .map_err(into_status)?;
        provider::check_provider(&self.engine, &ack.provider_id).map_err(into_status)?;
        provider::acknowledge(&self.engine, &ack.provider_id, &ack)
            .await
            .map(|_| Response::new(AckResponse {}))
            .map_err(into_status)
    }

    async fn report(
        &self,
        request: Request<SignedEnvelope>,
    ) -> Result<Response<ReportReceipt>, Status> {
        match envelope(&self.engine, &self.pipeline, Rpc::Report, request).await? {
            Answer::Report(receipt) => Ok(Response::new(receipt)),
            other => Err(unexpected(&other)),
        }
    }
}
