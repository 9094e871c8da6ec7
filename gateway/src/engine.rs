//! The gateway's shared state, free of transport types: the routing table,
//! the checks, the registries, the application store and provider queues,
//! the toolkit and the metrics. What happens to a request is elsewhere: the
//! envelope pipeline ([`crate::pipeline`]), the provider side
//! ([`crate::provider`]) and the consumer's status queries ([`crate::status`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use shep_adapters::RegistryAdapter;
use shep_registries::RegistryKind;

use crate::calendar::Calendar;
use crate::checks::Checks;
use crate::config::GatewayConfig;
use crate::metrics::Metrics;
use crate::registry::Registries;
use crate::routes::RoutingTable;
use crate::storage::{self, ApplicationStore, DeliveryQueues, Storage};
use crate::toolkit::Toolkit;
use shep_nuc::revocation::RevocationCheck;
use shep_nuc::verify::SignatureVerifier;

/// How deliveries to providers are leased and retried.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DeliverySettings {
    /// How long a delivery stays leased to a connection.
    pub(crate) lease: Duration,
    /// Leases before a delivery stops (a dead letter).
    pub(crate) max_attempts: u32,
    /// The in-flight limit of a subscriber that asks for none.
    pub(crate) default_in_flight: u32,
    /// Requests a provider's queue may hold (queued and leased) before
    /// Submit refuses more.
    pub(crate) max_queue_depth: usize,
}

/// The shared state of a running gateway.
#[derive(Debug)]
pub struct Engine {
    routes: RwLock<Arc<RoutingTable>>,
    pub(crate) checks: Checks,
    pub(crate) registries: Registries,
    store: Arc<dyn ApplicationStore>,
    delivery: Arc<dyn DeliveryQueues>,
    pub(crate) settings: DeliverySettings,
    next_connection: AtomicU64,
    /// Set when the gateway shuts down, so open streams end.
    closing: tokio::sync::watch::Sender<bool>,
    /// The backend behind `store` and `delivery`: its durability, its shutdown.
    storage: Storage,
    pub(crate) calendar: Calendar,
    metrics: Metrics,
    toolkit: Arc<Toolkit>,
    /// Where a system's reads of applicants' applications are recorded.
    access_audit: Option<Arc<shep_registries::RegistryData>>,
    /// Open applications' due times, for overdue events.
    deadlines: crate::deadlines::Deadlines,
}

impl Engine {
    /// Creates the engine, with in-memory storage.
    pub fn new(
        config: &GatewayConfig,
        routes: RoutingTable,
        verifier: SignatureVerifier,
        revocation: RevocationCheck,
        registries: HashMap<RegistryKind, RegistryAdapter>,
    ) -> Self {
        let toolkit = Arc::new(Toolkit::new(&config.toolkit));
        let storage = storage::memory::open();
        Self {
            routes: RwLock::new(Arc::new(routes)),
            checks: {
                let checks = Checks::new(
                    verifier,
                    revocation,
                    config.checks.verify_signatures,
                    config.checks.message_date_skew_secs,
                )
                .with_max_attachment(config.limits.max_attachment_bytes);
                if config.checks.batch_ed25519 {
                    checks.with_batches(crate::checks::BatchSettings {
                        max: config.checks.batch_max,
                        wait: Duration::from_micros(config.checks.batch_wait_us),
                    })
                } else {
                    checks
                }
            },
            registries: Registries::new(registries, &toolkit),
            store: storage.store.clone(),
            delivery: storage.delivery.clone(),
            settings: DeliverySettings {
                lease: Duration::from_millis(config.delivery.lease_ms),
                max_attempts: config.delivery.max_attempts,
                default_in_flight: config.delivery.max_in_flight,
                max_queue_depth: config.delivery.max_queue_depth,
            },
            next_connection: AtomicU64::new(1),
            closing: tokio::sync::watch::channel(false).0,
            storage,
            // Validated with the configuration.
            calendar: config.calendar.calendar().unwrap_or_default(),
            metrics: Metrics::default(),
            toolkit,
            access_audit: None,
            deadlines: crate::deadlines::Deadlines::default(),
        }
    }

    /// Records systems' reads of applications in `data`'s access audit,
    /// beside the registries' lookups (as registry `applications`).
    pub fn with_access_audit(mut self, data: Arc<shep_registries::RegistryData>) -> Self {
        self.access_audit = Some(data);
        self
    }

    /// Records that `system` read the applications of `key` (an IIN, a BIN
    /// or a message id) through `rpc`.
    pub(crate) fn audit_read(&self, system: &str, key: &str, rpc: &str, message_id: &str) {
        use shep_proto::registry::v1::{AccessOutcome, RequestContext};
        let Some(data) = &self.access_audit else {
            return;
        };
        let context = RequestContext {
            requester_system: system.to_owned(),
            purpose: rpc.to_owned(),
            message_id: message_id.to_owned(),
            ..RequestContext::default()
        };
        data.audit().record(shep_registries::audit::Access {
            registry: "applications",
            key,
            related: Vec::new(),
            outcome: AccessOutcome::Found,
            context: Some(&context),
        });
    }

    /// Keeps applications and queues in `storage` (by default in memory),
    /// which holds what it restored.
    pub fn with_storage(mut self, storage: Storage) -> Self {
        self.store = storage.store.clone();
        self.delivery = storage.delivery.clone();
        self.storage = storage;
        self
    }

    /// Makes what is queued durable and releases the storage.
    pub async fn close_storage(&self) {
        self.storage.close().await;
    }

    /// The storage backend's name and whether it can store work now.
    pub fn storage_state(&self) -> (&'static str, bool) {
        (self.storage.backend(), self.storage.serving())
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

    /// The registries the engine has adapters for.
    pub fn registry_kinds(&self) -> Vec<RegistryKind> {
        self.registries.kinds()
    }

    /// The registry ids the engine has adapters for, as routes name them.
    pub fn registry_ids(&self) -> Vec<&'static str> {
        self.registries
            .kinds()
            .into_iter()
            .map(RegistryKind::id)
            .collect()
    }

    /// Open applications' due times.
    pub fn deadlines(&self) -> &crate::deadlines::Deadlines {
        &self.deadlines
    }

    /// Now on the clock of `test_session` ("": the global clock).
    pub fn now_in(&self, test_session: &str) -> time::OffsetDateTime {
        self.toolkit.clock.now(Some(test_session))
    }

    /// Faults, scenarios, the exchange journal, the live connections and the clock.
    pub fn toolkit(&self) -> &Arc<Toolkit> {
        &self.toolkit
    }

    /// The gateway's metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The application store.
    pub fn store(&self) -> &dyn ApplicationStore {
        self.store.as_ref()
    }

    /// The application store, to keep beyond a borrow of the engine.
    pub(crate) fn store_handle(&self) -> Arc<dyn ApplicationStore> {
        self.store.clone()
    }

    /// The provider queues.
    pub fn delivery(&self) -> &dyn DeliveryQueues {
        self.delivery.as_ref()
    }

    /// How long a delivery stays leased, in real time: the configured
    /// lease on the global clock, so a clock running at a factor shortens it.
    pub fn lease(&self) -> Duration {
        self.toolkit
            .clock
            .real_duration(None, self.settings.lease)
            .max(Duration::from_millis(1))
    }

    /// A new connection id for a provider stream.
    pub(crate) fn connection_id(&self) -> u64 {
        self.next_connection.fetch_add(1, Ordering::Relaxed)
    }
}
