//! The peer comparison's backend: a bare tonic `Gateway.Call` that answers at
//! once, so the direct and nginx rows measure transport, not checks.

use shep_proto::envelope::v1::SignedEnvelope;

/// The comparison's backend: `Gateway.Call` answered at once with a fixed
/// response and no checks. The other RPCs are not part of it.
#[derive(Debug, Clone, Copy)]
struct Echo;

#[tonic::async_trait]
impl shep_proto::gateway::v1::gateway_server::Gateway for Echo {
    async fn call(
        &self,
        _request: tonic::Request<SignedEnvelope>,
    ) -> Result<tonic::Response<shep_proto::gateway::v1::CallResponse>, tonic::Status> {
        Ok(tonic::Response::new(
            shep_proto::gateway::v1::CallResponse {
                response_info: Some(shep_proto::gateway::v1::ResponseInfo {
                    status: Some(shep_proto::gateway::v1::StatusInfo {
                        code: "00000".to_owned(),
                        message: "echo".to_owned(),
                    }),
                    ..Default::default()
                }),
                lookup: None,
            },
        ))
    }

    async fn submit(
        &self,
        _request: tonic::Request<SignedEnvelope>,
    ) -> Result<tonic::Response<shep_proto::gateway::v1::Receipt>, tonic::Status> {
        Err(tonic::Status::unimplemented(
            "the echo backend answers Call only",
        ))
    }

    async fn get_status(
        &self,
        _request: tonic::Request<shep_proto::gateway::v1::GetStatusRequest>,
    ) -> Result<tonic::Response<shep_proto::gateway::v1::Application>, tonic::Status> {
        Err(tonic::Status::unimplemented(
            "the echo backend answers Call only",
        ))
    }

    async fn history(
        &self,
        _request: tonic::Request<shep_proto::gateway::v1::HistoryRequest>,
    ) -> Result<tonic::Response<shep_proto::gateway::v1::HistoryResponse>, tonic::Status> {
        Err(tonic::Status::unimplemented(
            "the echo backend answers Call only",
        ))
    }

    type WatchStream = std::pin::Pin<
        Box<
            dyn tokio_stream::Stream<
                    Item = Result<shep_proto::gateway::v1::StatusEvent, tonic::Status>,
                > + Send,
        >,
    >;

    async fn watch(
        &self,
        _request: tonic::Request<shep_proto::gateway::v1::WatchRequest>,
    ) -> Result<tonic::Response<Self::WatchStream>, tonic::Status> {
        Err(tonic::Status::unimplemented(
            "the echo backend answers Call only",
        ))
    }
}

/// Serves the echo backend on `listener` until `shutdown` resolves.
pub async fn serve_echo(
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    tonic::transport::Server::builder()
        .add_service(shep_proto::gateway::v1::gateway_server::GatewayServer::new(
            Echo,
        ))
        .serve_with_incoming_shutdown(
            tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
            shutdown,
        )
        .await?;
    Ok(())
}
