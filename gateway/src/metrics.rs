//! Prometheus metrics: latency per service and per hop, outcomes by reason,
//! and what is in flight. Served as text at `/metrics` on the gateway's port.
//!
//! Hops of a request: `checks` (decode, fields, routing table, signature,
//! revocation, identity), `registry` (the lookup of a sync call, or the
//! registry checks and region of a submission), `journal` (waiting for the
//! fsync'd commit), `delivery` (from acceptance to the provider's
//! acknowledgement), and `total` (the whole RPC, reply included).

use std::collections::HashMap;
use std::sync::RwLock;
use std::sync::atomic::AtomicI64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tokio::time::Instant;

/// Labels of a hop's latency.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HopLabels {
    pub rpc: &'static str,
    pub service: String,
    pub hop: &'static str,
}

/// Labels of an outcome.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub rpc: &'static str,
    /// `ok`, or the refusal reason (e.g. `SIGNATURE_INVALID`).
    pub outcome: String,
}

/// Labels of an in-flight gauge.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RpcLabels {
    pub rpc: &'static str,
}

fn latency_histogram() -> Histogram {
    // 50 µs to about 13 s, doubling.
    Histogram::new(exponential_buckets(0.000_05, 2.0, 19))
}

/// Series already created, found again by borrowed strings. A family lookup
/// needs an owned label set (a `String` allocated and hashed per call, five
/// times per request); this finds the handle with one hash of the name and a
/// scan of a few static pairs, and allocates only the first time.
#[derive(Debug)]
struct Handles<M> {
    by_name: RwLock<HashMap<Box<str>, Vec<Keyed<M>>>>,
}

/// A handle with the two static labels that, with the name, identify it.
type Keyed<M> = (&'static str, &'static str, M);

impl<M> Default for Handles<M> {
    fn default() -> Self {
        Self {
            by_name: RwLock::new(HashMap::new()),
        }
    }
}

impl<M: Clone> Handles<M> {
    /// The handle of (`name`, `first`, `second`), made by `create` if new.
    fn get(
        &self,
        name: &str,
        first: &'static str,
        second: &'static str,
        create: impl FnOnce() -> M,
    ) -> M {
        let find = |list: &Vec<Keyed<M>>| {
            list.iter()
                .find(|(a, b, _)| *a == first && *b == second)
                .map(|(_, _, handle)| handle.clone())
        };
        if let Some(found) = self
            .by_name
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(name)
            .and_then(find)
        {
            return found;
        }
        let mut by_name = self
            .by_name
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let list = by_name.entry(name.into()).or_default();
        if let Some(found) = find(list) {
            return found;
        }
        let made = create();
        list.push((first, second, made.clone()));
        made
    }
}

/// The gateway's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    hops: Family<HopLabels, Histogram, fn() -> Histogram>,
    outcomes: Family<OutcomeLabels, Counter>,
    in_flight: Family<RpcLabels, Gauge<i64, AtomicI64>>,
    /// By service, then (rpc, hop).
    hop_handles: Handles<Histogram>,
    /// By outcome, then (rpc, "").
    outcome_handles: Handles<Counter>,
    /// By rpc, then ("", "").
    in_flight_handles: Handles<Gauge<i64, AtomicI64>>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("shep");
        let hops = Family::<HopLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram,
        );
        let outcomes = Family::<OutcomeLabels, Counter>::default();
        let in_flight = Family::<RpcLabels, Gauge<i64, AtomicI64>>::default();
        registry.register(
            "hop_duration_seconds",
            "Latency of each hop of a request, per RPC and service",
            hops.clone(),
        );
        registry.register(
            "requests",
            "Requests by RPC and outcome (ok, or the refusal reason)",
            outcomes.clone(),
        );
        registry.register(
            "in_flight",
            "Requests being handled, per RPC",
            in_flight.clone(),
        );
        Self {
            registry,
            hops,
            outcomes,
            in_flight,
            hop_handles: Handles::default(),
            outcome_handles: Handles::default(),
            in_flight_handles: Handles::default(),
        }
    }
}

impl Metrics {
    fn hop_histogram(&self, rpc: &'static str, service: &str, hop: &'static str) -> Histogram {
        self.hop_handles.get(service, rpc, hop, || {
            self.hops
                .get_or_create(&HopLabels {
                    rpc,
                    service: service.to_owned(),
                    hop,
                })
                .clone()
        })
    }

    /// Records that `hop` of `rpc` for `service` took from `since` to now.
    pub fn hop(&self, rpc: &'static str, service: &str, hop: &'static str, since: Instant) {
        self.hop_histogram(rpc, service, hop)
            .observe(since.elapsed().as_secs_f64());
    }

    /// Records a hop that took `seconds`.
    pub fn hop_seconds(&self, rpc: &'static str, service: &str, hop: &'static str, seconds: f64) {
        self.hop_histogram(rpc, service, hop).observe(seconds);
    }

    /// Counts an outcome.
    pub fn outcome(&self, rpc: &'static str, outcome: &str) {
        self.outcome_handles
            .get(outcome, rpc, "", || {
                self.outcomes
                    .get_or_create(&OutcomeLabels {
                        rpc,
                        outcome: outcome.to_owned(),
                    })
                    .clone()
            })
            .inc();
    }

    /// Marks a request of `rpc` in flight until the guard drops.
    pub fn in_flight(&self, rpc: &'static str) -> InFlight {
        let gauge = self.in_flight_handles.get(rpc, "", "", || {
            self.in_flight.get_or_create(&RpcLabels { rpc }).clone()
        });
        gauge.inc();
        InFlight(gauge)
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        if let Err(error) = prometheus_client::encoding::text::encode(&mut text, &self.registry) {
            tracing::error!(%error, "encoding metrics");
        }
        text
    }
}

/// Decrements its in-flight gauge when dropped.
#[derive(Debug)]
pub struct InFlight(Gauge<i64, AtomicI64>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn encodes_hops_outcomes_and_in_flight() {
        let metrics = Metrics::default();
        let start = Instant::now();
        metrics.hop("call", "GbdflInfoByIin_v1", "checks", start);
        metrics.outcome("call", "ok");
        metrics.outcome("call", "SIGNATURE_INVALID");
        let guard = metrics.in_flight("submit");
        let text = metrics.encode();
        assert!(
            text.contains(r#"shep_hop_duration_seconds_count{rpc="call",service="GbdflInfoByIin_v1",hop="checks"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"shep_requests_total{rpc="call",outcome="SIGNATURE_INVALID"} 1"#),
            "{text}"
        );
        assert!(text.contains(r#"shep_in_flight{rpc="submit"} 1"#), "{text}");
        drop(guard);
        assert!(
            metrics
                .encode()
                .contains(r#"shep_in_flight{rpc="submit"} 0"#)
        );
    }

    #[tokio::test]
    async fn handles_found_again_record_into_the_same_series() {
        let metrics = Metrics::default();
        let start = Instant::now();
        for _ in 0..3 {
            metrics.hop("call", "GbdflInfoByIin_v1", "total", start);
            metrics.outcome("call", "ok");
        }
        metrics.hop("call", "GbdulInfoByBin_v2", "total", start);
        metrics.hop_seconds("submit", "GbdflInfoByIin_v1", "total", 0.5);
        let text = metrics.encode();
        for expected in [
            r#"shep_hop_duration_seconds_count{rpc="call",service="GbdflInfoByIin_v1",hop="total"} 3"#,
            r#"shep_hop_duration_seconds_count{rpc="call",service="GbdulInfoByBin_v2",hop="total"} 1"#,
            r#"shep_hop_duration_seconds_count{rpc="submit",service="GbdflInfoByIin_v1",hop="total"} 1"#,
            r#"shep_requests_total{rpc="call",outcome="ok"} 3"#,
        ] {
            assert!(text.contains(expected), "{expected}\n{text}");
        }
    }
}
