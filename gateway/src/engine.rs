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
use crate::delivery::{Delivery, Pending};
use crate::journal::{Entry, Journal};
use crate::metrics::Metrics;
use crate::registry::Registries;
use crate::routes::RoutingTable;
use crate::store::Store;
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
}

/// The shared state of a running gateway.
#[derive(Debug)]
pub struct Engine {
    routes: RwLock<Arc<RoutingTable>>,
    pub(crate) checks: Checks,
    pub(crate) registries: Registries,
    store: Store,
    delivery: Delivery,
    pub(crate) settings: DeliverySettings,
    next_connection: AtomicU64,
    /// Set when the gateway shuts down, so open streams end.
    closing: tokio::sync::watch::Sender<bool>,
    journal: Arc<Journal>,
    pub(crate) calendar: Calendar,
    metrics: Metrics,
    toolkit: Arc<Toolkit>,
}

impl Engine {
    /// Creates the engine, with an in-memory journal.
    pub fn new(
        config: &GatewayConfig,
        routes: RoutingTable,
        verifier: SignatureVerifier,
        revocation: RevocationCheck,
        registries: HashMap<RegistryKind, RegistryAdapter>,
    ) -> Self {
        let toolkit = Arc::new(Toolkit::new(&config.toolkit));
        Self {
            routes: RwLock::new(Arc::new(routes)),
            checks: Checks::new(
                verifier,
                revocation,
                config.checks.verify_signatures,
                config.checks.message_date_skew_secs,
            ),
            registries: Registries::new(registries, &toolkit),
            store: Store::default(),
            delivery: Delivery::default(),
            settings: DeliverySettings {
                lease: Duration::from_millis(config.delivery.lease_ms),
                max_attempts: config.delivery.max_attempts,
                default_in_flight: config.delivery.max_in_flight,
            },
            next_connection: AtomicU64::new(1),
            closing: tokio::sync::watch::channel(false).0,
            journal: Arc::new(Journal::memory()),
            // Validated with the configuration.
            calendar: config.calendar.calendar().unwrap_or_default(),
            metrics: Metrics::default(),
            toolkit,
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

    /// Faults, scenarios, the exchange journal and the live connections.
    pub fn toolkit(&self) -> &Arc<Toolkit> {
        &self.toolkit
    }

    /// The gateway's metrics.
    pub fn metrics(&self) -> &Metrics {
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

    /// How long a delivery stays leased.
    pub fn lease(&self) -> Duration {
        self.settings.lease
    }

    /// A new connection id for a provider stream.
    pub(crate) fn connection_id(&self) -> u64 {
        self.next_connection.fetch_add(1, Ordering::Relaxed)
    }
}
