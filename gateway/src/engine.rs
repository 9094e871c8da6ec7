//! The gateway's domain core, free of transport types: the checks, routing,
//! application tracking and delivery bookkeeping behind every RPC.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use ring::digest::{SHA256, digest};
use shep_adapters::{AdapterError, RegistryAdapter};
use shep_nuc::revocation::RevocationCheck;
use shep_nuc::verify::{SignatureVerifier, SignerIdentity};
use shep_proto::envelope::v1::{
    ApplicationStatus, MessageType, PowerOfAttorneyRef, SignedEnvelope,
};
use shep_proto::gateway::v1::{CallResponse, MessageState, Receipt, ResponseInfo, StatusInfo};
use shep_proto::provider::v1::{Ack, ReceiveStatus, ReportReceipt, ResendMessage};
use shep_proto::registry::v1::{
    LookupRequest, LookupResponse, PowerOfAttorney, RequestContext, lookup_request::Key,
    lookup_response::Record,
};
use shep_registries::ident::{Strictness, parse_iin};
use time::format_description::well_known::Iso8601;
use time::{Date, OffsetDateTime};
use tokio::time::Instant;
use tower::ServiceExt;
use tracing::Instrument as _;

use crate::calendar::KZ_OFFSET;
use crate::config::GatewayConfig;
use crate::delivery::{Delivery, Pending, Settled};
use crate::envelope::{self, Inbound, SubjectId, parse_uuid};
use crate::error::{AttorneyProblem, GatewayError};
use crate::journal::{Entry, Journal, JournalError};
use crate::lifecycle::{default_notification, provider_may_report};
use crate::routes::{ChannelName, Role, Route, RoutingTable, ServiceKind, Target};
use crate::store::{ApplicationRecord, Change, Inserted, ReportKey, Store, timestamp};
use crate::toolkit::exchanges::{Record as ExchangeRecord, any};
use crate::toolkit::faults::{Effect, Fired, Site};
use crate::toolkit::{CallContext, Toolkit};

/// ГБД ФЛ: individuals (applicant checks, regions), keyed by IIN.
const PERSONS_REGISTRY: &str = "gbdfl";
/// ГБД ЮЛ: legal entities (applicant checks, regions), keyed by BIN.
const ENTITIES_REGISTRY: &str = "gbdul";
/// ЕНИС: notarised powers of attorney, keyed by number.
const ATTORNEYS_REGISTRY: &str = "enis";

/// The span of one Call or Submit: its message id and service are recorded
/// once the body is decoded, so every event and child span (a registry
/// lookup) below carries them.
fn message_span(rpc: &'static str, ctx: &CallContext) -> tracing::Span {
    tracing::info_span!(
        "message",
        rpc,
        message_id = tracing::field::Empty,
        service = tracing::field::Empty,
        session = ctx.session().unwrap_or_default(),
    )
}

/// The outcome label of a result: `ok` or the refusal reason.
fn outcome<T>(result: &Result<T, GatewayError>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(error) => error.reason().as_str_name(),
    }
}

/// How long an identical re-send waits for its original to be durable.
const ORIGINAL_PATIENCE: Duration = Duration::from_secs(10);

/// A change could not be made durable: the caller gets no receipt and may
/// send again (idempotently).
fn journal_failed(error: JournalError) -> GatewayError {
    GatewayError::Internal(format!("journal: {error}"))
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    digest(&SHA256, bytes)
        .as_ref()
        .try_into()
        .expect("sha-256 is 32 bytes")
}

/// The shared state of a running gateway.
#[derive(Debug)]
pub struct Engine {
    routes: RwLock<Arc<RoutingTable>>,
    verifier: SignatureVerifier,
    revocation: RevocationCheck,
    /// Off only for load tests that want to measure the gateway without
    /// signature checks (`checks.verify_signatures = false`).
    verify_signatures: bool,
    registries: HashMap<String, RegistryAdapter>,
    store: Store,
    delivery: Delivery,
    skew_secs: u64,
    lease: Duration,
    max_attempts: u32,
    default_in_flight: u32,
    next_connection: AtomicU64,
    /// Set when the gateway shuts down, so open streams end.
    closing: tokio::sync::watch::Sender<bool>,
    journal: Arc<Journal>,
    calendar: crate::calendar::Calendar,
    metrics: crate::metrics::Metrics,
    toolkit: Arc<Toolkit>,
}

impl Engine {
    /// Creates the engine.
    pub fn new(
        config: &GatewayConfig,
        routes: RoutingTable,
        verifier: SignatureVerifier,
        revocation: RevocationCheck,
        registries: HashMap<String, RegistryAdapter>,
    ) -> Self {
        Self {
            routes: RwLock::new(Arc::new(routes)),
            verifier,
            revocation,
            verify_signatures: config.checks.verify_signatures,
            registries,
            store: Store::default(),
            delivery: Delivery::default(),
            skew_secs: config.checks.message_date_skew_secs,
            lease: Duration::from_millis(config.delivery.lease_ms),
            max_attempts: config.delivery.max_attempts,
            default_in_flight: config.delivery.max_in_flight,
            next_connection: AtomicU64::new(1),
            closing: tokio::sync::watch::channel(false).0,
            journal: Arc::new(Journal::memory()),
            // Validated with the configuration.
            calendar: config.calendar.calendar().unwrap_or_default(),
            metrics: crate::metrics::Metrics::default(),
            toolkit: Arc::new(Toolkit::new(&config.toolkit)),
        }
    }

    /// Journals to `journal` and restores the state its `entries` describe:
    /// applications, statuses, and requests still to deliver (or dead letters).
    pub fn with_journal(
        mut self,
        journal: Arc<Journal>,
        entries: Vec<Entry>,
    ) -> Result<Self, String> {
        self.journal = journal.clone();
        self.store = Store::new(journal);
        let waiting = self.store.restore(entries)?;
        let restored = waiting.len();
        for undelivered in waiting {
            let queue = self.delivery.queue(&undelivered.provider_id);
            let pending = Pending {
                message_id: undelivered.message_id,
                service_id: undelivered.service_id,
                correlation_id: undelivered.correlation_id,
                envelope: undelivered.envelope,
                attempts: 0,
                // Sessions live in memory only; after a restart anyone may take it.
                session: None,
            };
            if undelivered.stopped {
                queue.push_dead(pending);
            } else {
                queue.push(pending);
            }
        }
        if restored > 0 {
            tracing::info!(restored, "requests to deliver restored from the journal");
        }
        Ok(self)
    }

    /// Writes what is queued in the journal and releases it.
    pub fn close_journal(&self) {
        self.journal.close();
    }

    /// The routing table in force.
    pub fn routes(&self) -> Arc<RoutingTable> {
        self.routes
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Replaces the routing table.
    pub fn replace_routes(&self, table: RoutingTable) {
        *self
            .routes
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(table);
    }

    /// Resolves once the gateway shuts down.
    pub fn closed(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut closing = self.closing.subscribe();
        async move {
            while !*closing.borrow_and_update() {
                if closing.changed().await.is_err() {
                    return;
                }
            }
        }
    }

    /// Ends open streams: the server's graceful stop waits for them.
    pub fn close(&self) {
        self.closing.send_replace(true);
    }

    /// The registry ids the engine has adapters for.
    pub fn registry_ids(&self) -> Vec<&str> {
        self.registries.keys().map(String::as_str).collect()
    }

    /// Faults, scenarios, the exchange journal and the live connections.
    pub fn toolkit(&self) -> &Arc<Toolkit> {
        &self.toolkit
    }

    /// The gateway's metrics.
    pub fn metrics(&self) -> &crate::metrics::Metrics {
        &self.metrics
    }

    /// The application store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The provider queues.
    pub fn delivery(&self) -> &Delivery {
        &self.delivery
    }

    /// Leases before a delivery stops.
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// How long a delivery stays leased.
    pub fn lease(&self) -> Duration {
        self.lease
    }

    /// A new connection id for a provider stream.
    pub fn connection_id(&self) -> u64 {
        self.next_connection.fetch_add(1, Ordering::Relaxed)
    }

    /// The in-flight limit for a Hello asking for `requested` (0: the default).
    pub fn in_flight_for(&self, requested: u32) -> usize {
        let chosen = if requested == 0 {
            self.default_in_flight
        } else {
            requested
        };
        chosen.clamp(1, 1024) as usize
    }

    // === Checks ===

    fn decode(&self, envelope: &SignedEnvelope) -> Result<Inbound, GatewayError> {
        envelope::decode(envelope, OffsetDateTime::now_utc(), self.skew_secs)
    }

    /// Route exists, sender and channel allowed, kind matches the RPC.
    fn authorize(
        routes: &RoutingTable,
        inbound: &Inbound,
        kind: ServiceKind,
    ) -> Result<Arc<Route>, GatewayError> {
        let service = &inbound.body.service_id;
        let route = routes
            .route(service)
            .ok_or_else(|| GatewayError::UnknownService(service.clone()))?;
        if !route.senders.contains(&inbound.sender_id) {
            return Err(GatewayError::SenderNotAllowed {
                sender: inbound.sender_id.clone(),
                service: service.clone(),
            });
        }
        if !route.channels.contains(&inbound.channel) {
            return Err(GatewayError::ChannelNotAllowed {
                channel: format!("{:?}", inbound.channel.to_proto()),
                service: service.clone(),
            });
        }
        if route.kind != kind {
            return Err(GatewayError::WrongServiceKind {
                service: service.clone(),
                kind: route.kind.as_str(),
                rpc: if route.kind == ServiceKind::Lookup {
                    "Gateway.Call"
                } else {
                    "Gateway.Submit"
                },
            });
        }
        Ok(route.clone())
    }

    /// The identity rule of the channel. Portal: the signer is the applicant.
    /// Other channels: the signer is one of the sending system's operators.
    fn check_identity(
        &self,
        routes: &RoutingTable,
        inbound: &Inbound,
        signer: &SignerIdentity,
    ) -> Result<(), GatewayError> {
        if !self.verify_signatures {
            return Ok(());
        }
        if inbound.channel != ChannelName::Portal {
            return Self::check_operator(routes, &inbound.sender_id, signer);
        }
        let (kind, expected, found) = match &inbound.subject {
            SubjectId::Iin(iin) => ("IIN", iin, &signer.iin),
            SubjectId::Bin(bin) => ("BIN", bin, &signer.bin),
        };
        if found.as_ref() != Some(expected) {
            return Err(GatewayError::IdentityMismatch {
                kind,
                expected: expected.clone(),
                found: found.clone().unwrap_or_else(|| "none".to_owned()),
            });
        }
        Ok(())
    }

    /// The signer must be a registered operator of `system` (and carry its BIN).
    fn check_operator(
        routes: &RoutingTable,
        system: &str,
        signer: &SignerIdentity,
    ) -> Result<(), GatewayError> {
        let spec = routes
            .system(system)
            .ok_or_else(|| GatewayError::SenderNotAllowed {
                sender: system.to_owned(),
                service: String::new(),
            })?;
        let iin = signer.iin.clone().unwrap_or_else(|| "none".to_owned());
        if !spec.operators.contains(&iin) {
            return Err(GatewayError::IdentityMismatch {
                kind: "IIN",
                expected: format!("an operator of `{system}`"),
                found: iin,
            });
        }
        if let Some(bin) = &spec.bin
            && signer.bin.as_ref() != Some(bin)
        {
            return Err(GatewayError::IdentityMismatch {
                kind: "BIN",
                expected: bin.clone(),
                found: signer.bin.clone().unwrap_or_else(|| "none".to_owned()),
            });
        }
        Ok(())
    }

    /// The signature check of an envelope: chain, validity at signing time,
    /// key usage, revocation, and the signature over the exact body bytes.
    async fn verify(
        &self,
        envelope: &SignedEnvelope,
        inbound: &Inbound,
    ) -> Result<Arc<SignerIdentity>, GatewayError> {
        self.verify_bytes(
            envelope.signature.as_ref(),
            &envelope.body,
            inbound.signed_at,
        )
        .await
    }

    async fn verify_bytes(
        &self,
        signature: Option<&shep_proto::envelope::v1::Signature>,
        signed: &[u8],
        signed_at: OffsetDateTime,
    ) -> Result<Arc<SignerIdentity>, GatewayError> {
        if !self.verify_signatures {
            return Ok(Arc::new(SignerIdentity::default()));
        }
        let signer = self.verifier.verify(signature, signed, signed_at)?;
        self.revocation.check(&signer.serial).await?;
        Ok(signer)
    }

    fn lookup_request(inbound: &Inbound, signer: &SignerIdentity, key: Key) -> LookupRequest {
        LookupRequest {
            key: Some(key),
            context: Some(RequestContext {
                requester_system: inbound.sender_id.clone(),
                operator_iin: if inbound.channel == ChannelName::Portal {
                    String::new()
                } else {
                    signer.iin.clone().unwrap_or_default()
                },
                service_id: inbound.body.service_id.clone(),
                purpose: inbound.body.purpose.clone(),
                message_id: inbound.message_id.clone(),
                test: inbound.body.test,
                session: String::new(),
            }),
        }
    }

    /// Asks `registry`; a key it refuses is an `INVALID_FIELD` on `key_field`.
    /// Faults on the registry or the key apply first, and the caller's
    /// deadline bounds the wait.
    async fn lookup(
        &self,
        registry: &str,
        mut request: LookupRequest,
        key_field: &'static str,
        ctx: &CallContext,
    ) -> Result<LookupResponse, GatewayError> {
        let started = Instant::now();
        if let (Some(session), Some(context)) = (ctx.session(), request.context.as_mut()) {
            context.session = session.to_owned();
        }
        let key = match &request.key {
            Some(Key::Iin(key) | Key::Bin(key) | Key::PowerOfAttorneyNumber(key)) => key.clone(),
            None => String::new(),
        };
        let fired = self.toolkit.faults.check(
            Site::Registry {
                id: registry,
                key: &key,
            },
            ctx.session(),
        );
        let fault_id = fired
            .as_ref()
            .map(|f| f.fault_id.clone())
            .unwrap_or_default();
        let recorded = self.toolkit.exchanges.recording().then(|| request.clone());
        let span = tracing::info_span!("registry", registry, key = %key);
        let result = async {
            if let Some(fired) = fired {
                self.apply_fault(fired, ctx, &format!("registry `{registry}`"))
                    .await?;
            }
            self.ask_registry(registry, request, key_field, ctx).await
        }
        .instrument(span)
        .await;
        if let Some(asked) = recorded {
            let context = asked.context.clone().unwrap_or_default();
            self.toolkit.exchanges.record(|| {
                let mut record = ExchangeRecord {
                    session: ctx.session_label(),
                    rpc: format!("registry/{registry}"),
                    hop: "registry",
                    service_id: context.service_id,
                    subject: key,
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
                    Err(error) => {
                        record.failed(&crate::error::into_status(error.clone()));
                    }
                }
                record
            });
        }
        result
    }

    async fn ask_registry(
        &self,
        registry: &str,
        request: LookupRequest,
        key_field: &'static str,
        ctx: &CallContext,
    ) -> Result<LookupResponse, GatewayError> {
        let adapter =
            self.registries
                .get(registry)
                .ok_or_else(|| GatewayError::RegistryUnavailable {
                    registry: registry.to_owned(),
                    message: "not configured".to_owned(),
                })?;
        let asked = adapter.clone().oneshot(request);
        let answered = match ctx.deadline {
            Some(deadline) => tokio::time::timeout_at(deadline, asked)
                .await
                .map_err(|_| GatewayError::DeadlineExceeded(format!("registry `{registry}`")))?,
            None => asked.await,
        };
        answered.map_err(|error| match error {
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
    }

    /// Carries out a fired fault: its delay (bounded by the caller's
    /// deadline), then its effect. `Ok` lets the call go on.
    pub async fn apply_fault(
        &self,
        fired: Fired,
        ctx: &CallContext,
        what: &str,
    ) -> Result<(), GatewayError> {
        let deadline_passed = || GatewayError::DeadlineExceeded(what.to_owned());
        if let Some(delay) = fired.delay {
            let until = Instant::now() + delay;
            match ctx.deadline {
                Some(deadline) if deadline < until => {
                    tokio::time::sleep_until(deadline).await;
                    return Err(deadline_passed());
                }
                _ => tokio::time::sleep_until(until).await,
            }
        }
        match fired.effect {
            Effect::Proceed | Effect::CutStreamAfter(_) => Ok(()),
            Effect::Error(injected) => Err(GatewayError::Injected(injected)),
            Effect::Hang(max) => match ctx.deadline {
                Some(deadline) => {
                    tokio::time::sleep_until(deadline).await;
                    Err(deadline_passed())
                }
                None => {
                    tokio::time::sleep(max).await;
                    Err(GatewayError::Injected(
                        crate::toolkit::faults::InjectedError {
                            code: shep_proto::catalogue::GrpcCode::Unavailable,
                            message: format!("{what} did not answer within {} ms", max.as_millis()),
                            reason: "INJECTED_FAULT".to_owned(),
                            metadata: vec![("fault_id".to_owned(), fired.fault_id)],
                        },
                    ))
                }
            },
            Effect::DropConnection => {
                if let Some(peer) = ctx.peer {
                    self.toolkit.connections.kill(peer);
                }
                Err(GatewayError::Injected(
                    crate::toolkit::faults::InjectedError {
                        code: shep_proto::catalogue::GrpcCode::Unavailable,
                        message: "connection dropped by a fault".to_owned(),
                        reason: "INJECTED_FAULT".to_owned(),
                        metadata: vec![("fault_id".to_owned(), fired.fault_id)],
                    },
                ))
            }
        }
    }

    /// Faults attached to `service` for this call.
    async fn service_faults(&self, service: &str, ctx: &CallContext) -> Result<(), GatewayError> {
        match self
            .toolkit
            .faults
            .check(Site::Service(service), ctx.session())
        {
            Some(fired) => {
                self.apply_fault(fired, ctx, &format!("service `{service}`"))
                    .await
            }
            None => Ok(()),
        }
    }

    /// The registry checks the route asks for on this channel (the service
    /// centre's «условие 1»: the applicant in ГБД ФЛ or ГБД ЮЛ, the
    /// representative's power of attorney in ЕНИС), and the applicant's КАТО
    /// code if the route picks its provider by region.
    async fn check_applicant(
        &self,
        route: &Route,
        inbound: &Inbound,
        signer: &SignerIdentity,
        ctx: &CallContext,
    ) -> Result<Option<String>, GatewayError> {
        let listed = |registry: &str| {
            route
                .checks
                .get(&inbound.channel)
                .is_some_and(|registries| registries.iter().any(|id| id == registry))
        };
        let kato = match &inbound.subject {
            SubjectId::Iin(iin) if listed(PERSONS_REGISTRY) || route.needs_region() => {
                let request = Self::lookup_request(inbound, signer, Key::Iin(iin.clone()));
                let response = self
                    .lookup(PERSONS_REGISTRY, request, "subject", ctx)
                    .await?;
                match response.record {
                    Some(Record::Person(person)) => person.reg_address.map(|address| address.kato),
                    _ => None,
                }
            }
            SubjectId::Bin(bin) if listed(ENTITIES_REGISTRY) || route.needs_region() => {
                let request = Self::lookup_request(inbound, signer, Key::Bin(bin.clone()));
                let response = self
                    .lookup(ENTITIES_REGISTRY, request, "subject", ctx)
                    .await?;
                match response.record {
                    Some(Record::LegalEntity(entity)) => entity.address.map(|address| address.kato),
                    _ => None,
                }
            }
            _ => None,
        };
        if listed(ATTORNEYS_REGISTRY)
            && let Some(reference) = &inbound.body.power_of_attorney
        {
            self.check_power_of_attorney(route, inbound, signer, reference, ctx)
                .await?;
        }
        Ok(kato)
    }

    /// Looks the representative's power of attorney up in ЕНИС and checks
    /// that it lets them make this request for this applicant on the day the
    /// message was signed.
    async fn check_power_of_attorney(
        &self,
        route: &Route,
        inbound: &Inbound,
        signer: &SignerIdentity,
        reference: &PowerOfAttorneyRef,
        ctx: &CallContext,
    ) -> Result<(), GatewayError> {
        if reference.number.trim().is_empty() {
            return Err(GatewayError::InvalidField {
                field: "power_of_attorney.number",
                problem: "is required when a power of attorney is given".to_owned(),
            });
        }
        parse_iin(&reference.representative_iin, Strictness::Strict).map_err(|error| {
            GatewayError::InvalidField {
                field: "power_of_attorney.representative_iin",
                problem: format!(
                    "`{}` is not a valid IIN: {error}",
                    reference.representative_iin
                ),
            }
        })?;
        let request = Self::lookup_request(
            inbound,
            signer,
            Key::PowerOfAttorneyNumber(reference.number.clone()),
        );
        let response = self
            .lookup(ATTORNEYS_REGISTRY, request, "power_of_attorney.number", ctx)
            .await
            .map_err(|error| match error {
                GatewayError::NoData(_) => GatewayError::NoData(format!(
                    "ЕНИС has no power of attorney `{}` («нет данных доверенности в ЕНИС»)",
                    reference.number
                )),
                other => other,
            })?;
        let Some(Record::PowerOfAttorney(attorney)) = response.record else {
            return Err(GatewayError::RegistryUnavailable {
                registry: ATTORNEYS_REGISTRY.to_owned(),
                message: "answered without a power of attorney".to_owned(),
            });
        };
        // Dates count in Astana time.
        let today = inbound.signed_at.to_offset(KZ_OFFSET).date();
        check_attorney(
            &attorney,
            reference,
            &inbound.subject,
            &route.service_id,
            today,
        )
    }

    // === Sync ===

    /// `Gateway.Call`: a sync lookup answered by a registry.
    pub async fn call(
        &self,
        envelope: SignedEnvelope,
        ctx: &CallContext,
    ) -> Result<CallResponse, GatewayError> {
        let _in_flight = self.metrics.in_flight("call");
        let span = message_span("call", ctx);
        let result = self
            .call_checked(envelope, Instant::now(), ctx)
            .instrument(span)
            .await;
        self.metrics.outcome("call", outcome(&result));
        result
    }

    async fn call_checked(
        &self,
        envelope: SignedEnvelope,
        start: Instant,
        ctx: &CallContext,
    ) -> Result<CallResponse, GatewayError> {
        let inbound = self.decode(&envelope)?;
        tracing::Span::current()
            .record("message_id", inbound.message_id.as_str())
            .record("service", inbound.body.service_id.as_str());
        if inbound.message_type != MessageType::Request {
            return Err(GatewayError::InvalidField {
                field: "message_type",
                problem: "must be REQUEST for Gateway.Call".to_owned(),
            });
        }
        let routes = self.routes();
        let route = Self::authorize(&routes, &inbound, ServiceKind::Lookup)?;
        self.service_faults(&route.service_id, ctx).await?;
        let signer = self.verify(&envelope, &inbound).await?;
        self.check_identity(&routes, &inbound, &signer)?;
        let service = route.service_id.as_str();
        self.metrics.hop("call", service, "checks", start);
        let Target::Registry(registry) = &route.target else {
            return Err(GatewayError::Internal(format!(
                "lookup route `{}` has no registry",
                route.service_id
            )));
        };
        // ЕНИС is keyed by the power of attorney's number; the others by the
        // subject.
        let (key, key_field) = if registry == ATTORNEYS_REGISTRY {
            let number = inbound
                .body
                .power_of_attorney
                .as_ref()
                .map(|reference| reference.number.clone())
                .filter(|number| !number.trim().is_empty())
                .ok_or_else(|| GatewayError::InvalidField {
                    field: "power_of_attorney.number",
                    problem: "is the key of an ЕНИС lookup and is required".to_owned(),
                })?;
            (
                Key::PowerOfAttorneyNumber(number),
                "power_of_attorney.number",
            )
        } else {
            match &inbound.subject {
                SubjectId::Iin(iin) => (Key::Iin(iin.clone()), "subject"),
                SubjectId::Bin(bin) => (Key::Bin(bin.clone()), "subject"),
            }
        };
        let request = Self::lookup_request(&inbound, &signer, key);
        let asked = Instant::now();
        let lookup = self.lookup(registry, request, key_field, ctx).await?;
        self.metrics.hop("call", service, "registry", asked);
        if let Some(Record::PowerOfAttorney(attorney)) = &lookup.record
            && !concerns(attorney, &inbound.subject)
        {
            // A power of attorney is shown only to its principal or
            // representative; to anyone else it does not exist.
            return Err(GatewayError::NoData(format!(
                "ЕНИС has no power of attorney `{}` for the subject («нет данных»)",
                attorney.number
            )));
        }
        let result = lookup
            .result
            .clone()
            .unwrap_or_else(shep_registries::success);
        self.metrics.hop("call", service, "total", start);
        Ok(CallResponse {
            response_info: Some(ResponseInfo {
                message_id: envelope::response_id(),
                correlation_id: inbound.message_id,
                response_date: Some(timestamp(OffsetDateTime::now_utc())),
                status: Some(StatusInfo {
                    code: result.code,
                    message: result.name_ru,
                }),
                session_id: inbound.body.session_id,
            }),
            lookup: Some(lookup),
        })
    }

    // === Async ===

    fn receipt(record: &ApplicationRecord) -> Receipt {
        Receipt {
            message_id: record.message_id.clone(),
            correlation_id: record.correlation_id.clone(),
            response_date: Some(timestamp(record.accepted_at)),
            session_id: record.session_id.clone(),
            provider_id: record.provider_id.clone(),
            status: ApplicationStatus::Accepted as i32,
        }
    }

    /// The receipt of an identical re-send, once the original is durable;
    /// a different body under the same id is a duplicate.
    async fn existing_receipt(
        &self,
        inbound: &Inbound,
        digest: &[u8; 32],
    ) -> Option<Result<Receipt, GatewayError>> {
        let same = self.store.with(&inbound.message_id, |record| {
            record.sender_id == inbound.sender_id && &record.body_digest == digest
        })?;
        if !same {
            return Some(Err(GatewayError::DuplicateMessage {
                message_id: inbound.message_id.clone(),
                sender: inbound.sender_id.clone(),
            }));
        }
        // Never answer for an original that a crash could still take back.
        if !self
            .store
            .accepted_visible(&inbound.message_id, ORIGINAL_PATIENCE)
            .await
        {
            return Some(Err(GatewayError::Internal(format!(
                "the first copy of `{}` is not yet durable; send again",
                inbound.message_id
            ))));
        }
        self.store.with(&inbound.message_id, Self::receipt).map(Ok)
    }

    /// `Gateway.Submit`: accepts an application and queues it for its provider.
    pub async fn submit(
        &self,
        envelope: SignedEnvelope,
        ctx: &CallContext,
    ) -> Result<Receipt, GatewayError> {
        let _in_flight = self.metrics.in_flight("submit");
        let span = message_span("submit", ctx);
        let result = self
            .submit_checked(envelope, Instant::now(), ctx)
            .instrument(span)
            .await;
        self.metrics.outcome("submit", outcome(&result));
        result
    }

    async fn submit_checked(
        &self,
        envelope: SignedEnvelope,
        start: Instant,
        ctx: &CallContext,
    ) -> Result<Receipt, GatewayError> {
        let inbound = self.decode(&envelope)?;
        tracing::Span::current()
            .record("message_id", inbound.message_id.as_str())
            .record("service", inbound.body.service_id.as_str());
        if inbound.message_type != MessageType::Request {
            return Err(GatewayError::InvalidField {
                field: "message_type",
                problem: "must be REQUEST for Gateway.Submit".to_owned(),
            });
        }
        let routes = self.routes();
        let route = Self::authorize(&routes, &inbound, ServiceKind::Application)?;
        self.service_faults(&route.service_id, ctx).await?;
        let signer = self.verify(&envelope, &inbound).await?;
        self.check_identity(&routes, &inbound, &signer)?;
        self.metrics
            .hop("submit", &route.service_id, "checks", start);
        let digest = sha256(&envelope.body);
        if let Some(existing) = self.existing_receipt(&inbound, &digest).await {
            return existing;
        }

        let asked = Instant::now();
        let kato = self.check_applicant(&route, &inbound, &signer, ctx).await?;
        self.metrics
            .hop("submit", &route.service_id, "registry", asked);
        let provider = if inbound.body.route_id.is_empty() {
            route
                .provider_for(kato.as_deref())
                .ok_or_else(|| GatewayError::NoProviderForRegion {
                    service: route.service_id.clone(),
                    region: kato.clone().unwrap_or_else(|| "unknown".to_owned()),
                })?
                .to_owned()
        } else if route.has_provider(&inbound.body.route_id) {
            inbound.body.route_id.clone()
        } else {
            return Err(GatewayError::InvalidField {
                field: "route_id",
                problem: format!(
                    "`{}` is not a provider of service `{}`",
                    inbound.body.route_id, route.service_id
                ),
            });
        };

        let envelope = Arc::new(envelope);
        let record = ApplicationRecord {
            message_id: inbound.message_id.clone(),
            service_id: route.service_id.clone(),
            subject: inbound.subject.clone(),
            channel: inbound.channel.to_proto() as i32,
            sender_id: inbound.sender_id.clone(),
            provider_id: provider.clone(),
            accepted_at: OffsetDateTime::now_utc(),
            delivery_state: MessageState::OnDelivery,
            status: ApplicationStatus::Accepted,
            registration_number: String::new(),
            expected_at: None,
            deadline: route.deadline,
            test: inbound.body.test,
            events: Vec::new(),
            envelope: envelope.clone(),
            body_digest: digest,
            session_id: inbound.body.session_id.clone(),
            correlation_id: inbound.body.correlation_id.clone(),
        };
        let shared = match self.store.insert(record)? {
            Inserted::New(shared) => shared,
            // Lost a race with an identical re-send: answer as it will be
            // answered, once it is durable.
            Inserted::Existing(_) => {
                return self
                    .existing_receipt(&inbound, &digest)
                    .await
                    .unwrap_or_else(|| {
                        Err(GatewayError::MessageNotFound(inbound.message_id.clone()))
                    });
            }
        };
        let (_, ticket) = self.store.record(&inbound.message_id, |_| {
            Ok(Change {
                status: ApplicationStatus::Accepted,
                notification: default_notification(ApplicationStatus::Accepted, "", None, ""),
                reported_by: "gateway".to_owned(),
                ..Change::default()
            })
        })?;
        // On disk before anyone hears of it: the receipt and the delivery.
        let committing = Instant::now();
        let committed = ticket.durable().await;
        self.metrics
            .hop("submit", &route.service_id, "journal", committing);
        if let Err(error) = committed {
            self.store.forget(&inbound.message_id);
            return Err(journal_failed(error));
        }
        self.delivery.queue(&provider).push(Pending {
            message_id: inbound.message_id.clone(),
            service_id: route.service_id.clone(),
            correlation_id: inbound.body.correlation_id.clone(),
            envelope,
            attempts: 0,
            session: ctx.session.clone(),
        });
        tracing::info!(message_id = %inbound.message_id, service = %route.service_id, provider = %provider, "accepted");
        let record = shared
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        self.metrics
            .hop("submit", &route.service_id, "total", start);
        Ok(Self::receipt(&record))
    }

    // === Provider side ===

    /// Checks that `provider` is a provider system in the routing table.
    pub fn check_provider(&self, provider: &str) -> Result<(), GatewayError> {
        match self.routes().system(provider) {
            Some(system) if system.role == Role::Provider => Ok(()),
            _ => Err(GatewayError::ProviderNotAllowed {
                provider: provider.to_owned(),
                message_id: String::new(),
            }),
        }
    }

    /// Applies a provider's acknowledgement of a delivery.
    pub fn acknowledge(&self, provider: &str, ack: &Ack) -> Result<Settled, GatewayError> {
        let message_id = parse_uuid("message_id", &ack.message_id)?;
        let accepted = match ReceiveStatus::try_from(ack.receive_status) {
            Ok(ReceiveStatus::MessageAccepted) => true,
            Ok(ReceiveStatus::MessageNotAccepted) => false,
            _ => {
                return Err(GatewayError::InvalidField {
                    field: "receive_status",
                    problem: "must be MESSAGE_ACCEPTED or MESSAGE_NOT_ACCEPTED".to_owned(),
                });
            }
        };
        let resend = ack.resend != ResendMessage::NotResend as i32;
        let owner = self
            .store
            .with(&message_id, |record| record.provider_id.clone())
            .ok_or_else(|| GatewayError::MessageNotFound(message_id.clone()))?;
        if owner != provider {
            return Err(GatewayError::ProviderNotAllowed {
                provider: provider.to_owned(),
                message_id,
            });
        }
        let settled = self
            .delivery
            .queue(provider)
            .acknowledge(&message_id, accepted, resend, self.max_attempts)
            .ok_or_else(|| GatewayError::MessageNotFound(message_id.clone()))?;
        self.apply_settled(&message_id, &settled, &ack.error_message);
        Ok(settled)
    }

    /// Records what a settled delivery means for the application.
    pub fn apply_settled(&self, message_id: &str, settled: &Settled, reason: &str) {
        let (state, reason) = match settled {
            Settled::Requeued => return,
            Settled::Delivered => (MessageState::Delivered, String::new()),
            Settled::NotDelivered => (
                MessageState::NotDelivered,
                if reason.is_empty() {
                    "the provider did not accept the request".to_owned()
                } else {
                    reason.to_owned()
                },
            ),
            Settled::Stopped { attempts } => (
                MessageState::DeliveryStopped,
                format!("delivery stopped after {attempts} attempts"),
            ),
        };
        let outcome = self.store.record(message_id, |record| {
            if record.delivery_state != MessageState::OnDelivery {
                return Err(GatewayError::InvalidStatusTransition {
                    from: format!("{:?}", record.delivery_state),
                    to: format!("{state:?}"),
                });
            }
            record.delivery_state = state;
            if state == MessageState::Delivered {
                let waited = OffsetDateTime::now_utc() - record.accepted_at;
                self.metrics.hop_seconds(
                    "submit",
                    &record.service_id,
                    "delivery",
                    waited.as_seconds_f64().max(0.0),
                );
            }
            let status = if state == MessageState::Delivered {
                if record.status != ApplicationStatus::Accepted {
                    // A report already moved the status on; nothing to announce.
                    return Err(GatewayError::InvalidStatusTransition {
                        from: format!("{:?}", record.status),
                        to: "Delivered".to_owned(),
                    });
                }
                ApplicationStatus::Delivered
            } else {
                ApplicationStatus::NotDelivered
            };
            record.status = status;
            Ok(Change {
                status,
                notification: default_notification(status, "", None, &reason),
                reason: reason.clone(),
                reported_by: "gateway".to_owned(),
                ..Change::default()
            })
        });
        if let Err(error) = outcome {
            tracing::debug!(message_id, %error, "delivery settled without a status event");
        }
    }

    /// Dead letters, per provider (all providers when `provider` is empty).
    pub fn dead_letters(&self, provider: &str) -> Vec<(String, Pending)> {
        self.delivery
            .queues()
            .into_iter()
            .filter(|(id, _)| provider.is_empty() || id == provider)
            .flat_map(|(id, queue)| {
                queue
                    .dead_letters()
                    .into_iter()
                    .map(move |pending| (id.clone(), pending))
            })
            .collect()
    }

    /// Puts a dead letter back into its provider's queue; its status returns
    /// to ACCEPTED, journaled before it is delivered again.
    pub async fn requeue_dead_letter(&self, message_id: &str) -> Result<String, GatewayError> {
        let message_id = parse_uuid("message_id", message_id)?;
        let not_found = || GatewayError::MessageNotFound(format!("dead letter `{message_id}`"));
        let provider = self
            .store
            .with(&message_id, |record| record.provider_id.clone())
            .ok_or_else(not_found)?;
        let (_, ticket) = self.store.record(&message_id, |record| {
            if record.delivery_state != MessageState::DeliveryStopped {
                return Err(not_found());
            }
            record.delivery_state = MessageState::OnDelivery;
            record.status = ApplicationStatus::Accepted;
            Ok(Change {
                status: ApplicationStatus::Accepted,
                notification: "Доставка заявки возобновлена оператором".to_owned(),
                reported_by: "operator".to_owned(),
                ..Change::default()
            })
        })?;
        ticket.durable().await.map_err(journal_failed)?;
        if !self.delivery.queue(&provider).requeue(&message_id) {
            return Err(GatewayError::Internal(format!(
                "`{message_id}` was stopped but not in the dead letters of `{provider}`"
            )));
        }
        tracing::info!(%message_id, %provider, "dead letter requeued");
        Ok(provider)
    }

    /// Requeues expired leases on every queue; stops those out of attempts.
    pub fn expire_leases(&self) {
        let now = tokio::time::Instant::now();
        for (provider, queue) in self.delivery.queues() {
            for (message_id, settled) in queue.expire(now, self.max_attempts) {
                tracing::info!(%provider, %message_id, ?settled, "lease expired");
                self.apply_settled(&message_id, &settled, "");
            }
        }
    }

    /// `Provider.Report`: a provider's signed status report about an application.
    pub async fn report(&self, envelope: SignedEnvelope) -> Result<ReportReceipt, GatewayError> {
        let span = tracing::info_span!(
            "report",
            message_id = tracing::field::Empty,
            correlation_id = tracing::field::Empty,
        );
        self.report_checked(envelope).instrument(span).await
    }

    async fn report_checked(
        &self,
        envelope: SignedEnvelope,
    ) -> Result<ReportReceipt, GatewayError> {
        let inbound = self.decode(&envelope)?;
        tracing::Span::current()
            .record("message_id", inbound.message_id.as_str())
            .record("correlation_id", inbound.body.correlation_id.as_str());
        if !matches!(
            inbound.message_type,
            MessageType::Update | MessageType::Response
        ) {
            return Err(GatewayError::InvalidField {
                field: "message_type",
                problem: "a report must be UPDATE or RESPONSE".to_owned(),
            });
        }
        let report = inbound
            .body
            .report
            .clone()
            .ok_or_else(|| GatewayError::InvalidField {
                field: "report",
                problem: "is required on Provider.Report".to_owned(),
            })?;
        let application_id = parse_uuid("correlation_id", &inbound.body.correlation_id)?;
        if inbound.channel != ChannelName::ProviderDesk {
            return Err(GatewayError::InvalidField {
                field: "channel",
                problem: "a report must come on PROVIDER_DESK".to_owned(),
            });
        }
        let provider = inbound.sender_id.clone();
        self.check_provider(&provider)?;
        let routes = self.routes();
        let signer = self.verify(&envelope, &inbound).await?;
        self.check_identity(&routes, &inbound, &signer)?;
        let digest = sha256(&envelope.body);
        if let Some((seen, receipt)) = self.store.report_seen(&provider, &inbound.message_id) {
            return if seen == digest {
                Ok(receipt)
            } else {
                Err(GatewayError::DuplicateMessage {
                    message_id: inbound.message_id,
                    sender: provider,
                })
            };
        }

        let status =
            ApplicationStatus::try_from(report.status).unwrap_or(ApplicationStatus::Unspecified);
        let missing = |field: &'static str, what: &str| GatewayError::InvalidField {
            field,
            problem: format!("is required for {what}"),
        };
        let expected_at = report
            .expected_at
            .as_ref()
            .map(|time| {
                OffsetDateTime::from_unix_timestamp(time.seconds).map_err(|_| {
                    GatewayError::InvalidField {
                        field: "report.expected_at",
                        problem: "is not a valid timestamp".to_owned(),
                    }
                })
            })
            .transpose()?;
        match status {
            ApplicationStatus::Registered if report.registration_number.is_empty() => {
                return Err(missing("report.registration_number", "REGISTERED"));
            }
            ApplicationStatus::TermExtended if expected_at.is_none() => {
                return Err(missing("report.expected_at", "TERM_EXTENDED"));
            }
            ApplicationStatus::Refused | ApplicationStatus::ReturnedToCentre
                if report.reason.is_empty() =>
            {
                return Err(missing("report.reason", "REFUSED and RETURNED_TO_CENTRE"));
            }
            ApplicationStatus::Completed if report.result.is_none() => {
                return Err(missing("report.result", "COMPLETED"));
            }
            _ => {}
        }
        if let Some(result) = &report.result {
            // The result is signed by an employee of the provider, like the report.
            let author = self
                .verify_bytes(
                    result.signature.as_ref(),
                    &result.content,
                    inbound.signed_at,
                )
                .await?;
            if self.verify_signatures {
                Self::check_operator(&routes, &provider, &author)?;
            }
        }

        let (event, ticket) = self.store.record(&application_id, |record| {
            if record.provider_id != provider {
                return Err(GatewayError::ProviderNotAllowed {
                    provider: provider.clone(),
                    message_id: application_id.clone(),
                });
            }
            if record.service_id != inbound.body.service_id {
                return Err(GatewayError::InvalidField {
                    field: "service_id",
                    problem: format!("is not the application's service `{}`", record.service_id),
                });
            }
            if record.subject != inbound.subject {
                return Err(GatewayError::InvalidField {
                    field: "subject",
                    problem: "does not match the application's applicant".to_owned(),
                });
            }
            let from = record.status;
            let service_centre =
                record.channel == shep_proto::envelope::v1::Channel::ServiceCentre as i32;
            if !provider_may_report(from, status)
                || (status == ApplicationStatus::ReturnedToCentre && !service_centre)
            {
                return Err(GatewayError::InvalidStatusTransition {
                    from: from.as_str_name().to_owned(),
                    to: status.as_str_name().to_owned(),
                });
            }
            if record.delivery_state == MessageState::OnDelivery {
                // Reporting on it proves it arrived.
                record.delivery_state = MessageState::Delivered;
            }
            if status == ApplicationStatus::Registered {
                record.registration_number = report.registration_number.clone();
                record.expected_at = expected_at.or_else(|| {
                    record
                        .deadline
                        .map(|deadline| deadline.due(record.accepted_at, &self.calendar))
                });
            } else if let Some(expected) = expected_at {
                record.expected_at = Some(expected);
            }
            record.status = status;
            let notification = if report.notification.is_empty() {
                default_notification(
                    status,
                    &record.registration_number,
                    record.expected_at,
                    &report.reason,
                )
            } else {
                report.notification.clone()
            };
            Ok(Change {
                status,
                notification,
                registration_number: record.registration_number.clone(),
                expected_at: record.expected_at,
                reason: report.reason.clone(),
                result: report.result.clone(),
                reported_by: provider.clone(),
                report: Some(ReportKey {
                    sender: provider.clone(),
                    message_id: inbound.message_id.clone(),
                    digest,
                }),
            })
        })?;
        ticket.durable().await.map_err(journal_failed)?;
        // A report settles any outstanding delivery of the same request.
        if let Some(settled) = self.delivery.queue(&provider).acknowledge(
            &application_id,
            true,
            false,
            self.max_attempts,
        ) {
            tracing::debug!(message_id = %application_id, ?settled, "delivery settled by a report");
        }
        tracing::info!(message_id = %application_id, status = status.as_str_name(), %provider, operator = ?signer.iin, "reported");
        let receipt = ReportReceipt {
            message_id: inbound.message_id.clone(),
            correlation_id: application_id,
            status: status as i32,
            sequence: event.sequence,
        };
        self.store
            .remember_report(&provider, &inbound.message_id, digest, receipt.clone());
        Ok(receipt)
    }
}

/// Whether the power of attorney names `subject` as its principal or its
/// representative.
fn concerns(attorney: &PowerOfAttorney, subject: &SubjectId) -> bool {
    match subject {
        SubjectId::Iin(iin) => {
            (attorney.principal_iin == *iin && attorney.principal_bin.is_empty())
                || attorney.representative_iin == *iin
        }
        SubjectId::Bin(bin) => attorney.principal_bin == *bin,
    }
}

/// Checks a power of attorney ЕНИС returned against the request, on `today`.
fn check_attorney(
    attorney: &PowerOfAttorney,
    reference: &PowerOfAttorneyRef,
    subject: &SubjectId,
    service_id: &str,
    today: Date,
) -> Result<(), GatewayError> {
    let refuse = |problem: AttorneyProblem, detail: String| GatewayError::PowerOfAttorneyInvalid {
        number: attorney.number.clone(),
        problem,
        detail,
    };
    let date = |field: &str, text: &str| {
        Date::parse(text, &Iso8601::DATE).map_err(|_| GatewayError::RegistryUnavailable {
            registry: ATTORNEYS_REGISTRY.to_owned(),
            message: format!("answered a power of attorney with a bad `{field}` `{text}`"),
        })
    };
    if attorney.revoked {
        let when = if attorney.revocation_date.is_empty() {
            String::new()
        } else {
            format!(" on {}", attorney.revocation_date)
        };
        return Err(refuse(AttorneyProblem::Revoked, format!("revoked{when}")));
    }
    if date("issue_date", &attorney.issue_date)? > today {
        return Err(refuse(
            AttorneyProblem::NotYetValid,
            format!("in force from {}", attorney.issue_date),
        ));
    }
    if date("valid_until", &attorney.valid_until)? < today {
        return Err(refuse(
            AttorneyProblem::Expired,
            format!("expired after {}", attorney.valid_until),
        ));
    }
    let (principal_ok, applicant) = match subject {
        SubjectId::Iin(iin) => (
            attorney.principal_iin == *iin && attorney.principal_bin.is_empty(),
            iin,
        ),
        SubjectId::Bin(bin) => (attorney.principal_bin == *bin, bin),
    };
    if !principal_ok {
        let principal = if attorney.principal_bin.is_empty() {
            &attorney.principal_iin
        } else {
            &attorney.principal_bin
        };
        return Err(refuse(
            AttorneyProblem::PrincipalMismatch,
            format!("given by `{principal}`, not by the applicant `{applicant}`"),
        ));
    }
    if attorney.representative_iin != reference.representative_iin {
        return Err(refuse(
            AttorneyProblem::RepresentativeMismatch,
            format!(
                "names representative `{}`, not `{}`",
                attorney.representative_iin, reference.representative_iin
            ),
        ));
    }
    if !attorney.service_ids.is_empty() && !attorney.service_ids.iter().any(|id| id == service_id) {
        return Err(refuse(
            AttorneyProblem::ServiceNotCovered,
            format!(
                "covers {}, not `{service_id}`",
                attorney
                    .service_ids
                    .iter()
                    .map(|id| format!("`{id}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    fn attorney() -> PowerOfAttorney {
        PowerOfAttorney {
            number: "850315301235-01".into(),
            principal_iin: "850315301235".into(),
            representative_iin: "780521307893".into(),
            issue_date: "2025-06-02".into(),
            valid_until: "2030-06-01".into(),
            ..PowerOfAttorney::default()
        }
    }

    fn reference() -> PowerOfAttorneyRef {
        PowerOfAttorneyRef {
            number: "850315301235-01".into(),
            representative_iin: "780521307893".into(),
        }
    }

    fn problem(
        attorney: &PowerOfAttorney,
        reference: &PowerOfAttorneyRef,
        subject: &SubjectId,
        today: Date,
    ) -> Option<AttorneyProblem> {
        match check_attorney(attorney, reference, subject, "svc", today) {
            Ok(()) => None,
            Err(GatewayError::PowerOfAttorneyInvalid { problem, .. }) => Some(problem),
            Err(other) => panic!("{other}"),
        }
    }

    #[test]
    fn checks_a_power_of_attorney_against_the_request() {
        let person = SubjectId::Iin("850315301235".into());
        let today = date!(2026 - 01 - 15);
        assert_eq!(problem(&attorney(), &reference(), &person, today), None);
        let revoked = PowerOfAttorney {
            revoked: true,
            ..attorney()
        };
        assert_eq!(
            problem(&revoked, &reference(), &person, today),
            Some(AttorneyProblem::Revoked)
        );
        assert_eq!(
            problem(&attorney(), &reference(), &person, date!(2030 - 06 - 02)),
            Some(AttorneyProblem::Expired)
        );
        assert_eq!(
            problem(&attorney(), &reference(), &person, date!(2030 - 06 - 01)),
            None,
            "valid through its last day"
        );
        assert_eq!(
            problem(&attorney(), &reference(), &person, date!(2025 - 06 - 01)),
            Some(AttorneyProblem::NotYetValid)
        );
        let other = SubjectId::Iin("920704404563".into());
        assert_eq!(
            problem(&attorney(), &reference(), &other, today),
            Some(AttorneyProblem::PrincipalMismatch)
        );
        let someone_else = PowerOfAttorneyRef {
            representative_iin: "920704404563".into(),
            ..reference()
        };
        assert_eq!(
            problem(&attorney(), &someone_else, &person, today),
            Some(AttorneyProblem::RepresentativeMismatch)
        );
        let limited = PowerOfAttorney {
            service_ids: vec!["other".into()],
            ..attorney()
        };
        assert_eq!(
            problem(&limited, &reference(), &person, today),
            Some(AttorneyProblem::ServiceNotCovered)
        );
        let covering = PowerOfAttorney {
            service_ids: vec!["other".into(), "svc".into()],
            ..attorney()
        };
        assert_eq!(problem(&covering, &reference(), &person, today), None);
    }

    #[test]
    fn an_entity_power_of_attorney_serves_the_entity_not_its_head() {
        let entity = PowerOfAttorney {
            principal_bin: "100440123456".into(),
            principal_iin: "010910512342".into(),
            ..attorney()
        };
        let today = date!(2026 - 01 - 15);
        let bin = SubjectId::Bin("100440123456".into());
        assert_eq!(problem(&entity, &reference(), &bin, today), None);
        let head = SubjectId::Iin("010910512342".into());
        assert_eq!(
            problem(&entity, &reference(), &head, today),
            Some(AttorneyProblem::PrincipalMismatch)
        );
        assert!(concerns(&entity, &bin));
        assert!(!concerns(&entity, &head));
        assert!(concerns(&entity, &SubjectId::Iin("780521307893".into())));
    }
}
