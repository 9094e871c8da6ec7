//! The thin gRPC adapters over [`Engine`]: unwrap the request, call the
//! engine, map errors through [`into_status`].

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use shep_proto::admin::v1::admin_server::Admin;
use shep_proto::admin::v1::{
    ApplyScenarioRequest, ApplyScenarioResponse, DeadLetter, DeleteFaultRequest,
    DeleteFixturesRequest, DeleteRouteRequest, Fault, FixturesResponse, GetRouteRequest,
    ListDeadLettersRequest, ListDeadLettersResponse, ListExchangesRequest, ListExchangesResponse,
    ListFaultsRequest, ListFaultsResponse, ListFixturesRequest, ListRoutesRequest,
    ListRoutesResponse, ListScenariosRequest, ListScenariosResponse, PutFixturesRequest,
    PutRouteRequest, ReloadRoutesRequest, RequeueDeadLetterRequest, ResetRequest, ResetResponse,
    Route, Scenario, UnusedRequest, UnusedResponse, VerifyExchangesRequest,
    VerifyExchangesResponse,
};
use shep_proto::envelope::v1::SignedEnvelope;
use shep_proto::gateway::v1::gateway_server::Gateway;
use shep_proto::gateway::v1::{
    Application, CallResponse, GetStatusRequest, HistoryRequest, HistoryResponse, Receipt,
    StatusEvent, WatchRequest, watch_request,
};
use shep_proto::provider::v1::provider_server::Provider;
use shep_proto::provider::v1::{
    Ack, AckResponse, Delivery as DeliveryMessage, GetMessagesRequest, GetMessagesResponse,
    ReportReceipt, SubscribeRequest, SubscribeResponse, Welcome, subscribe_request,
    subscribe_response,
};
use shep_proto::registry::v1::{
    AccessLogRequest, AccessLogResponse, ReloadFixturesRequest, ReloadFixturesResponse,
};
use time::OffsetDateTime;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::admin_auth::{Fingerprint, check_admin};
use crate::delivery::{Filter, Leased};
use crate::engine::Engine;
use crate::envelope::{SubjectId, parse_uuid};
use crate::error::{GatewayError, into_status};
use crate::routes::RoutingTable;
use crate::server::RegistriesHandle;
use crate::store::{WatchTarget, timestamp};
use crate::toolkit::exchanges::{Record as ExchangeRecord, any};
use crate::toolkit::faults::{Effect, Site};
use crate::toolkit::{self, CallContext};

type EventStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// How long a new Subscribe stream may take to say Hello.
const HELLO_TIMEOUT: Duration = Duration::from_secs(30);

fn delivery_message(leased: &Leased) -> DeliveryMessage {
    let remaining = leased
        .until
        .saturating_duration_since(tokio::time::Instant::now());
    DeliveryMessage {
        message_id: leased.pending.message_id.clone(),
        service_id: leased.pending.service_id.clone(),
        envelope: Some((*leased.pending.envelope).clone()),
        attempt: leased.pending.attempts,
        lease_until: Some(timestamp(
            OffsetDateTime::now_utc() + time::Duration::try_from(remaining).unwrap_or_default(),
        )),
    }
}

/// Runs an envelope-carrying call (Call, Submit, Report) through `handle`
/// and records it in the exchange journal when the journal records.
async fn journalled<R, F>(
    engine: &Engine,
    request: Request<SignedEnvelope>,
    (rpc, response_type): (&str, &str),
    handle: impl FnOnce(SignedEnvelope, CallContext) -> F,
) -> Result<Response<R>, Status>
where
    R: prost::Message,
    F: Future<Output = Result<R, GatewayError>>,
{
    let started = std::time::Instant::now();
    let ctx = CallContext::from_request(&request).map_err(into_status)?;
    let envelope = request.into_inner();
    let recorded = engine
        .toolkit()
        .exchanges
        .recording()
        .then(|| (envelope.clone(), ctx.clone()));
    let result = handle(envelope, ctx)
        .await
        .map(Response::new)
        .map_err(into_status);
    if let Some((envelope, ctx)) = recorded {
        record_ingress(
            engine,
            &ctx,
            rpc,
            response_type,
            &envelope,
            started,
            &result,
        );
    }
    result
}

/// Records an envelope-carrying call (Call, Submit, Report) in the
/// exchange journal, when it records.
fn record_ingress<R: prost::Message>(
    engine: &Engine,
    ctx: &CallContext,
    rpc: &str,
    response_type: &str,
    envelope: &SignedEnvelope,
    started: std::time::Instant,
    result: &Result<Response<R>, Status>,
) {
    use prost::Message as _;
    engine.toolkit().exchanges.record(|| {
        let body =
            shep_proto::envelope::v1::Body::decode(envelope.body.as_slice()).unwrap_or_default();
        let subject = match body.subject.and_then(|subject| subject.id) {
            Some(shep_proto::envelope::v1::subject::Id::Iin(id))
            | Some(shep_proto::envelope::v1::subject::Id::Bin(id)) => id,
            None => String::new(),
        };
        let mut record = ExchangeRecord {
            session: ctx.session_label(),
            rpc: rpc.to_owned(),
            hop: "ingress",
            service_id: body.service_id,
            subject,
            message_id: body.message_id,
            request: Some(any("shep.envelope.v1.SignedEnvelope", envelope)),
            duration: started.elapsed(),
            ..ExchangeRecord::default()
        };
        match result {
            Ok(response) => record.response = Some(any(response_type, response.get_ref())),
            Err(status) => record.failed(status),
        }
        record
    });
}

// === impl GatewayGrpcAdapter ===

/// `shep.gateway.v1.Gateway`.
#[derive(Debug, Clone)]
pub struct GatewayGrpcAdapter {
    engine: Arc<Engine>,
}

impl GatewayGrpcAdapter {
    pub fn new(engine: Arc<Engine>) -> Self {
        Self { engine }
    }
}

#[tonic::async_trait]
impl Gateway for GatewayGrpcAdapter {
    async fn call(
        &self,
        request: Request<SignedEnvelope>,
    ) -> Result<Response<CallResponse>, Status> {
        journalled(
            &self.engine,
            request,
            (
                "shep.gateway.v1.Gateway/Call",
                "shep.gateway.v1.CallResponse",
            ),
            async |envelope, ctx| self.engine.call(envelope, &ctx).await,
        )
        .await
    }

    async fn submit(&self, request: Request<SignedEnvelope>) -> Result<Response<Receipt>, Status> {
        journalled(
            &self.engine,
            request,
            ("shep.gateway.v1.Gateway/Submit", "shep.gateway.v1.Receipt"),
            async |envelope, ctx| self.engine.submit(envelope, &ctx).await,
        )
        .await
    }

    async fn get_status(
        &self,
        request: Request<GetStatusRequest>,
    ) -> Result<Response<Application>, Status> {
        let id = parse_uuid("message_id", &request.get_ref().message_id).map_err(into_status)?;
        self.engine
            .store()
            .application(&id)
            .map(Response::new)
            .ok_or_else(|| into_status(GatewayError::MessageNotFound(id)))
    }

    async fn history(
        &self,
        request: Request<HistoryRequest>,
    ) -> Result<Response<HistoryResponse>, Status> {
        let request = request.into_inner();
        let subject = SubjectId::from_proto(request.subject.as_ref()).map_err(into_status)?;
        let offset = if request.page_token.is_empty() {
            0
        } else {
            request.page_token.parse::<usize>().map_err(|_| {
                into_status(GatewayError::InvalidField {
                    field: "page_token",
                    problem: "is not a token this gateway gave".to_owned(),
                })
            })?
        };
        let limit = match request.page_size {
            0 => 50,
            size => size.min(500) as usize,
        };
        let (applications, more) = self.engine.store().history(&subject, offset, limit);
        Ok(Response::new(HistoryResponse {
            applications,
            next_page_token: if more {
                (offset + limit).to_string()
            } else {
                String::new()
            },
        }))
    }

    type WatchStream = EventStream<StatusEvent>;

    async fn watch(
        &self,
        request: Request<WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let request = request.into_inner();
        let target = match request.target {
            Some(watch_request::Target::Subject(subject)) => {
                WatchTarget::Subject(SubjectId::from_proto(Some(&subject)).map_err(into_status)?)
            }
            Some(watch_request::Target::MessageId(id)) => {
                WatchTarget::Message(parse_uuid("message_id", &id).map_err(into_status)?)
            }
            None => {
                return Err(into_status(GatewayError::InvalidField {
                    field: "target",
                    problem: "must be a subject or a message_id".to_owned(),
                }));
            }
        };
        let engine = self.engine.clone();
        // Subscribe before the snapshot, so every event after the snapshot's
        // sequence arrives live.
        let mut live = engine.store().subscribe();
        let (tx, rx) = mpsc::channel(64);
        // Every event up to `cursor` has been sent or was not asked for.
        let mut cursor = request.after_sequence;
        tokio::spawn(async move {
            let (mut pending, mut upto) = engine.store().snapshot(&target, cursor);
            loop {
                for event in pending.drain(..) {
                    if tx.send(Ok((*event).clone())).await.is_err() {
                        return;
                    }
                }
                cursor = cursor.max(upto);
                tokio::select! {
                    received = live.recv() => match received {
                        Ok(event) => {
                            if event.sequence > cursor {
                                upto = event.sequence;
                                if target.matches(&event) {
                                    pending.push(event);
                                }
                            }
                        }
                        // Fell behind the live feed: catch up from the store.
                        Err(broadcast::error::RecvError::Lagged(_)) => {
                            (pending, upto) = engine.store().snapshot(&target, cursor);
                        }
                        Err(broadcast::error::RecvError::Closed) => return,
                    },
                    () = tx.closed() => return,
                    () = engine.closed() => return,
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

// === impl ProviderGrpcAdapter ===

/// `shep.provider.v1.Provider`.
#[derive(Debug, Clone)]
pub struct ProviderGrpcAdapter {
    engine: Arc<Engine>,
}

impl ProviderGrpcAdapter {
    pub fn new(engine: Arc<Engine>) -> Self {
        Self { engine }
    }
}

/// One Subscribe connection: Hello, then deliveries within the credit, acks
/// back, until either side closes. Leases still held go back to the queue.
async fn serve_subscription(
    engine: Arc<Engine>,
    ctx: CallContext,
    mut inbound: Streaming<SubscribeRequest>,
    tx: mpsc::Sender<Result<SubscribeResponse, Status>>,
) {
    let hello = match tokio::time::timeout(HELLO_TIMEOUT, inbound.message()).await {
        Ok(Ok(Some(SubscribeRequest {
            kind: Some(subscribe_request::Kind::Hello(hello)),
        }))) => hello,
        Ok(Err(_)) | Ok(Ok(None)) => return,
        _ => {
            let _ = tx
                .send(Err(into_status(GatewayError::ProtocolViolation(
                    "the first message on Subscribe must be a Hello".to_owned(),
                ))))
                .await;
            return;
        }
    };
    let provider = hello.provider_id.clone();
    if let Err(error) = engine.check_provider(&provider) {
        let _ = tx.send(Err(into_status(error))).await;
        return;
    }
    // Faults on the provider: refuse or delay the subscription, cut the
    // stream after N messages, or drop the connection at the first delivery.
    let mut cut_after = None;
    let mut drop_fault = None;
    if let Some(fired) = engine
        .toolkit()
        .faults
        .check(Site::Provider(&provider), ctx.session())
    {
        match fired.effect {
            Effect::CutStreamAfter(after) => {
                cut_after = Some((u64::from(after), fired.fault_id.clone()))
            }
            Effect::DropConnection => drop_fault = Some(fired.fault_id.clone()),
            _ => {}
        }
        let what = format!("provider `{provider}`");
        let fired = crate::toolkit::faults::Fired {
            effect: match fired.effect {
                Effect::CutStreamAfter(_) | Effect::DropConnection => Effect::Proceed,
                other => other,
            },
            ..fired
        };
        if let Err(error) = engine.apply_fault(fired, &ctx, &what).await {
            let _ = tx.send(Err(into_status(error))).await;
            return;
        }
    }
    let connection = engine.connection_id();
    let max_in_flight = engine.in_flight_for(hello.max_in_flight);
    let filter = Filter {
        service_ids: hello.service_ids,
        session: ctx.session.clone(),
        ..Filter::default()
    };
    let mut sent: u64 = 0;
    let queue = engine.delivery().queue(&provider);
    let welcome = SubscribeResponse {
        kind: Some(subscribe_response::Kind::Welcome(Welcome {
            connection_id: connection.to_string(),
            lease_ms: engine.lease().as_millis() as u64,
        })),
    };
    tracing::info!(%provider, connection, max_in_flight, "provider subscribed");
    if tx.send(Ok(welcome)).await.is_ok() {
        'serve: loop {
            let changed = queue.changed();
            tokio::pin!(changed);
            changed.as_mut().enable();
            while let Some(leased) =
                queue.take(Some(connection), max_in_flight, &filter, engine.lease())
            {
                if let Some(fault_id) = &drop_fault {
                    // The lease stays with the dead connection until released
                    // below: the message is redelivered, not lost.
                    if let Some(peer) = ctx.peer {
                        engine.toolkit().connections.kill(peer);
                    }
                    tracing::info!(%provider, connection, fault = %fault_id, "connection dropped by a fault");
                    break 'serve;
                }
                let message = SubscribeResponse {
                    kind: Some(subscribe_response::Kind::Delivery(delivery_message(
                        &leased,
                    ))),
                };
                sent += 1;
                engine.toolkit().exchanges.record(|| ExchangeRecord {
                    session: leased
                        .pending
                        .session
                        .as_deref()
                        .unwrap_or_default()
                        .to_owned(),
                    rpc: "shep.provider.v1.Provider/Subscribe".to_owned(),
                    hop: "delivery",
                    service_id: leased.pending.service_id.clone(),
                    message_id: leased.pending.message_id.clone(),
                    response: Some(any("shep.provider.v1.SubscribeResponse", &message)),
                    stream_position: sent,
                    subject: provider.clone(),
                    ..ExchangeRecord::default()
                });
                tracing::info!(
                    message_id = %leased.pending.message_id,
                    %provider,
                    connection,
                    attempt = leased.pending.attempts,
                    "delivered"
                );
                if tx.send(Ok(message)).await.is_err() {
                    break 'serve;
                }
                if let Some((after, fault_id)) = &cut_after
                    && sent >= *after
                {
                    let status = into_status(GatewayError::Injected(
                        crate::toolkit::faults::InjectedError {
                            code: shep_proto::catalogue::GrpcCode::Unavailable,
                            message: format!("stream cut after {sent} message(s) by a fault"),
                            reason: "INJECTED_FAULT".to_owned(),
                            metadata: vec![("fault_id".to_owned(), fault_id.clone())],
                        },
                    ));
                    let _ = tx.send(Err(status)).await;
                    break 'serve;
                }
            }
            tokio::select! {
                message = inbound.message() => match message {
                    Ok(Some(SubscribeRequest { kind: Some(subscribe_request::Kind::Ack(ack)) })) => {
                        let acknowledged = engine.acknowledge(&provider, &ack);
                        engine.toolkit().exchanges.record(|| {
                            let mut record = ExchangeRecord {
                                session: ctx.session_label(),
                                rpc: "shep.provider.v1.Provider/Subscribe".to_owned(),
                                hop: "delivery",
                                message_id: ack.message_id.clone(),
                                subject: provider.clone(),
                                request: Some(any("shep.provider.v1.Ack", &ack)),
                                ..ExchangeRecord::default()
                            };
                            if let Err(error) = &acknowledged {
                                record.failed(&into_status(error.clone()));
                            }
                            record
                        });
                        if let Err(error) = acknowledged {
                            tracing::warn!(%provider, connection, %error, "acknowledgement ignored");
                        }
                    }
                    Ok(Some(_)) => {
                        let _ = tx.send(Err(into_status(GatewayError::ProtocolViolation(
                            "only acks may follow the Hello".to_owned(),
                        )))).await;
                        break 'serve;
                    }
                    Ok(None) | Err(_) => break 'serve,
                },
                () = &mut changed => {}
                () = tx.closed() => break 'serve,
                () = engine.closed() => break 'serve,
            }
        }
    }
    for (message_id, settled) in queue.release_connection(connection, engine.max_attempts()) {
        engine.apply_settled(&message_id, &settled, "");
    }
    tracing::info!(%provider, connection, "provider disconnected");
}

#[tonic::async_trait]
impl Provider for ProviderGrpcAdapter {
    type SubscribeStream = EventStream<SubscribeResponse>;

    async fn subscribe(
        &self,
        request: Request<Streaming<SubscribeRequest>>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        let ctx = CallContext::from_request(&request).map_err(into_status)?;
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(serve_subscription(
            self.engine.clone(),
            ctx,
            request.into_inner(),
            tx,
        ));
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn get_messages(
        &self,
        request: Request<GetMessagesRequest>,
    ) -> Result<Response<GetMessagesResponse>, Status> {
        let session = CallContext::from_request(&request)
            .map_err(into_status)?
            .session;
        let request = request.into_inner();
        self.engine
            .check_provider(&request.provider_id)
            .map_err(into_status)?;
        let amount = match request.amount {
            0 => 10,
            amount => amount.min(1000) as usize,
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
        let queue = self.engine.delivery().queue(&request.provider_id);
        let messages = std::iter::from_fn(|| queue.take(None, 0, &filter, self.engine.lease()))
            .take(amount)
            .map(|leased| delivery_message(&leased))
            .collect();
        Ok(Response::new(GetMessagesResponse {
            response_date: Some(timestamp(OffsetDateTime::now_utc())),
            messages,
        }))
    }

    async fn acknowledge(&self, request: Request<Ack>) -> Result<Response<AckResponse>, Status> {
        let ack = request.into_inner();
        self.engine
            .check_provider(&ack.provider_id)
            .map_err(into_status)?;
        self.engine
            .acknowledge(&ack.provider_id, &ack)
            .map(|_| Response::new(AckResponse {}))
            .map_err(into_status)
    }

    async fn report(
        &self,
        request: Request<SignedEnvelope>,
    ) -> Result<Response<ReportReceipt>, Status> {
        journalled(
            &self.engine,
            request,
            (
                "shep.provider.v1.Provider/Report",
                "shep.provider.v1.ReportReceipt",
            ),
            async |envelope, _ctx| self.engine.report(envelope).await,
        )
        .await
    }
}

// === impl AdminGrpcAdapter ===

/// Refuses a request without `authorization: Bearer <token>`.
pub(crate) fn check_bearer<T>(request: &Request<T>, token: &str) -> Result<(), Status> {
    let presented = request
        .metadata()
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    // Compare digests, so the comparison's timing says nothing about the token.
    let digest = |bytes: &[u8]| ring::digest::digest(&ring::digest::SHA256, bytes);
    match presented {
        Some(presented)
            if digest(presented.as_bytes()).as_ref() == digest(token.as_bytes()).as_ref() =>
        {
            Ok(())
        }
        _ => Err(into_status(GatewayError::Unauthenticated)),
    }
}

/// `shep.admin.v1.Admin`, behind a bearer token or a listed TLS client
/// certificate.
#[derive(Debug, Clone)]
pub struct AdminGrpcAdapter {
    engine: Arc<Engine>,
    token: Arc<str>,
    client_certificates: Arc<[Fingerprint]>,
    routes_file: Option<std::path::PathBuf>,
    registries: RegistriesHandle,
}

impl AdminGrpcAdapter {
    pub fn new(
        engine: Arc<Engine>,
        token: &str,
        routes_file: Option<std::path::PathBuf>,
        registries: RegistriesHandle,
    ) -> Self {
        Self {
            engine,
            token: token.into(),
            client_certificates: Arc::new([]),
            routes_file,
            registries,
        }
    }

    /// Also lets in TLS clients whose certificate has one of these
    /// fingerprints, without the token.
    pub fn with_client_certificates(mut self, fingerprints: Vec<Fingerprint>) -> Self {
        self.client_certificates = fingerprints.into();
        self
    }

    fn authorize<T>(&self, request: &Request<T>) -> Result<(), Status> {
        check_admin(request, &self.token, &self.client_certificates)
    }

    /// Authorizes, then reads the caller's session.
    fn admin_context<T>(&self, request: &Request<T>) -> Result<CallContext, Status> {
        self.authorize(request)?;
        CallContext::from_request(request).map_err(into_status)
    }

    fn list(&self) -> ListRoutesResponse {
        let table = self.engine.routes();
        ListRoutesResponse {
            routes: table
                .routes()
                .iter()
                .map(|route| route.to_proto())
                .collect(),
            source: table.source().to_owned(),
        }
    }
}

#[tonic::async_trait]
impl Admin for AdminGrpcAdapter {
    async fn list_routes(
        &self,
        request: Request<ListRoutesRequest>,
    ) -> Result<Response<ListRoutesResponse>, Status> {
        self.authorize(&request)?;
        Ok(Response::new(self.list()))
    }

    async fn get_route(
        &self,
        request: Request<GetRouteRequest>,
    ) -> Result<Response<Route>, Status> {
        self.authorize(&request)?;
        let service = &request.get_ref().service_id;
        self.engine
            .routes()
            .route(service)
            .map(|route| Response::new(route.to_proto()))
            .ok_or_else(|| into_status(GatewayError::UnknownService(service.clone())))
    }

    async fn reload_routes(
        &self,
        request: Request<ReloadRoutesRequest>,
    ) -> Result<Response<ListRoutesResponse>, Status> {
        self.authorize(&request)?;
        let (text, source) = if request.get_ref().toml.is_empty() {
            let Some(path) = &self.routes_file else {
                return Err(into_status(GatewayError::InvalidField {
                    field: "toml",
                    problem: "is required: the gateway runs on the embedded table, there is no file to re-read".to_owned(),
                }));
            };
            let text = std::fs::read_to_string(path).map_err(|error| {
                into_status(GatewayError::InvalidField {
                    field: "toml",
                    problem: format!("cannot read `{}`: {error}", path.display()),
                })
            })?;
            (text, path.display().to_string())
        } else {
            (request.get_ref().toml.clone(), "admin-api".to_owned())
        };
        let table = RoutingTable::from_toml(&text, &source, &self.engine.registry_ids()).map_err(
            |error| {
                into_status(GatewayError::InvalidField {
                    field: "toml",
                    problem: error.to_string(),
                })
            },
        )?;
        self.engine.replace_routes(table);
        tracing::info!(%source, "routing table reloaded");
        Ok(Response::new(self.list()))
    }

    async fn reload_fixtures(
        &self,
        request: Request<ReloadFixturesRequest>,
    ) -> Result<Response<ReloadFixturesResponse>, Status> {
        self.authorize(&request)?;
        let documents = shep_registries::grpc::documents(request.get_ref());
        let (summary, generation) = self.registries.data.reload(&documents).map_err(|error| {
            into_status(GatewayError::InvalidField {
                field: "fixtures",
                problem: error.to_string(),
            })
        })?;
        tracing::info!(generation, in_process = ?self.registries.in_process, "fixtures reloaded");
        Ok(Response::new(shep_registries::grpc::reload_response(
            summary, generation,
        )))
    }

    async fn access_log(
        &self,
        request: Request<AccessLogRequest>,
    ) -> Result<Response<AccessLogResponse>, Status> {
        self.authorize(&request)?;
        let registry = &request.get_ref().registry;
        if !registry.is_empty() && !self.registries.in_process.contains(registry) {
            let problem = if crate::config::REGISTRY_IDS.contains(&registry.as_str()) {
                format!(
                    "registry `{registry}` is served remotely and keeps its own audit (shep.registry.v1.RegistryAdmin/AccessLog)"
                )
            } else {
                format!(
                    "unknown registry `{registry}` (known: {})",
                    crate::config::REGISTRY_IDS.join(", ")
                )
            };
            return Err(into_status(GatewayError::InvalidField {
                field: "registry",
                problem,
            }));
        }
        Ok(Response::new(
            self.registries.data.audit().query(request.get_ref()),
        ))
    }

    async fn list_dead_letters(
        &self,
        request: Request<ListDeadLettersRequest>,
    ) -> Result<Response<ListDeadLettersResponse>, Status> {
        self.authorize(&request)?;
        let dead_letters = self
            .engine
            .dead_letters(&request.get_ref().provider_id)
            .into_iter()
            .map(|(provider_id, pending)| DeadLetter {
                reason: self
                    .engine
                    .store()
                    .with(&pending.message_id, |record| {
                        record
                            .events
                            .last()
                            .map(|event| event.reason.clone())
                            .unwrap_or_default()
                    })
                    .unwrap_or_default(),
                message_id: pending.message_id,
                service_id: pending.service_id,
                provider_id,
            })
            .collect();
        Ok(Response::new(ListDeadLettersResponse { dead_letters }))
    }

    async fn requeue_dead_letter(
        &self,
        request: Request<RequeueDeadLetterRequest>,
    ) -> Result<Response<DeadLetter>, Status> {
        self.authorize(&request)?;
        let message_id = request.get_ref().message_id.clone();
        let provider_id = self
            .engine
            .requeue_dead_letter(&message_id)
            .await
            .map_err(into_status)?;
        let (message_id, service_id) = self
            .engine
            .store()
            .with(
                &parse_uuid("message_id", &message_id).map_err(into_status)?,
                |record| (record.message_id.clone(), record.service_id.clone()),
            )
            .unwrap_or_default();
        Ok(Response::new(DeadLetter {
            message_id,
            service_id,
            provider_id,
            reason: String::new(),
        }))
    }
    async fn put_route(
        &self,
        request: Request<PutRouteRequest>,
    ) -> Result<Response<Route>, Status> {
        self.authorize(&request)?;
        let (table, id) = self
            .engine
            .routes()
            .with_service(&request.get_ref().toml, &self.engine.registry_ids())
            .map_err(|error| {
                into_status(GatewayError::InvalidField {
                    field: "toml",
                    problem: error.to_string(),
                })
            })?;
        let route = table
            .route(&id)
            .map(|route| route.to_proto())
            .ok_or_else(|| into_status(GatewayError::UnknownService(id.clone())))?;
        self.engine.replace_routes(table);
        tracing::info!(service = %id, "route put");
        Ok(Response::new(route))
    }

    async fn delete_route(
        &self,
        request: Request<DeleteRouteRequest>,
    ) -> Result<Response<ListRoutesResponse>, Status> {
        self.authorize(&request)?;
        let id = &request.get_ref().service_id;
        let table = self
            .engine
            .routes()
            .without_service(id, &self.engine.registry_ids())
            .ok_or_else(|| into_status(GatewayError::UnknownService(id.clone())))?
            .map_err(|error| {
                into_status(GatewayError::InvalidField {
                    field: "service_id",
                    problem: error.to_string(),
                })
            })?;
        self.engine.replace_routes(table);
        tracing::info!(service = %id, "route deleted");
        Ok(Response::new(self.list()))
    }

    async fn put_fixtures(
        &self,
        request: Request<PutFixturesRequest>,
    ) -> Result<Response<FixturesResponse>, Status> {
        let ctx = self.admin_context(&request)?;
        let request = request.get_ref();
        toolkit::admin::put_fixtures(&self.registries.data, &ctx, &request.name, &request.json)
            .map(Response::new)
            .map_err(into_status)
    }

    async fn delete_fixtures(
        &self,
        request: Request<DeleteFixturesRequest>,
    ) -> Result<Response<FixturesResponse>, Status> {
        let ctx = self.admin_context(&request)?;
        toolkit::admin::delete_fixtures(&self.registries.data, &ctx, &request.get_ref().name)
            .map(Response::new)
            .map_err(into_status)
    }

    async fn list_fixtures(
        &self,
        request: Request<ListFixturesRequest>,
    ) -> Result<Response<FixturesResponse>, Status> {
        let ctx = self.admin_context(&request)?;
        Ok(Response::new(toolkit::admin::fixtures(
            &self.registries.data,
            &ctx,
        )))
    }

    async fn add_fault(&self, request: Request<Fault>) -> Result<Response<Fault>, Status> {
        let ctx = self.admin_context(&request)?;
        toolkit::admin::add_fault(&self.engine, &ctx, request.into_inner())
            .map(Response::new)
            .map_err(into_status)
    }

    async fn list_faults(
        &self,
        request: Request<ListFaultsRequest>,
    ) -> Result<Response<ListFaultsResponse>, Status> {
        let ctx = self.admin_context(&request)?;
        Ok(Response::new(toolkit::admin::list_faults(
            &self.engine,
            &ctx,
        )))
    }

    async fn delete_fault(
        &self,
        request: Request<DeleteFaultRequest>,
    ) -> Result<Response<ListFaultsResponse>, Status> {
        let ctx = self.admin_context(&request)?;
        toolkit::admin::delete_fault(&self.engine, &ctx, &request.get_ref().id)
            .map(Response::new)
            .map_err(into_status)
    }

    async fn put_scenario(&self, request: Request<Scenario>) -> Result<Response<Scenario>, Status> {
        self.authorize(&request)?;
        toolkit::admin::put_scenario(&self.engine, request.into_inner())
            .map(Response::new)
            .map_err(into_status)
    }

    async fn list_scenarios(
        &self,
        request: Request<ListScenariosRequest>,
    ) -> Result<Response<ListScenariosResponse>, Status> {
        self.authorize(&request)?;
        Ok(Response::new(ListScenariosResponse {
            scenarios: self.engine.toolkit().scenarios.list(),
        }))
    }

    async fn apply_scenario(
        &self,
        request: Request<ApplyScenarioRequest>,
    ) -> Result<Response<ApplyScenarioResponse>, Status> {
        let ctx = self.admin_context(&request)?;
        toolkit::admin::apply_scenario(
            &self.engine,
            &self.registries.data,
            &ctx,
            &request.get_ref().name,
        )
        .map(Response::new)
        .map_err(into_status)
    }

    async fn list_exchanges(
        &self,
        request: Request<ListExchangesRequest>,
    ) -> Result<Response<ListExchangesResponse>, Status> {
        let ctx = self.admin_context(&request)?;
        Ok(Response::new(toolkit::admin::list_exchanges(
            &self.engine,
            &ctx,
            request.into_inner(),
        )))
    }

    async fn verify_exchanges(
        &self,
        request: Request<VerifyExchangesRequest>,
    ) -> Result<Response<VerifyExchangesResponse>, Status> {
        let ctx = self.admin_context(&request)?;
        Ok(Response::new(toolkit::admin::verify_exchanges(
            &self.engine,
            &ctx,
            request.into_inner(),
        )))
    }

    async fn unused(
        &self,
        request: Request<UnusedRequest>,
    ) -> Result<Response<UnusedResponse>, Status> {
        let ctx = self.admin_context(&request)?;
        Ok(Response::new(toolkit::admin::unused(
            &self.engine,
            &self.registries.data,
            &ctx,
        )))
    }

    async fn reset(
        &self,
        request: Request<ResetRequest>,
    ) -> Result<Response<ResetResponse>, Status> {
        let ctx = self.admin_context(&request)?;
        Ok(Response::new(toolkit::admin::reset(
            &self.engine,
            &self.registries.data,
            &ctx,
        )))
    }
}
