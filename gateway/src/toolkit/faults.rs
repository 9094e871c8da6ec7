//! Faults an integration team attaches to a registry, a service, a provider
//! or one subject: delays, errors, hangs, cut streams, dropped connections,
//! health flips, and per delivery to a provider duplicates, corruption, holds
//! and dropped acks; each limited by rate (seeded, so runs repeat), uses and
//! a time window, and scoped to a session or global.
//!
//! The hot path pays one atomic load while no fault exists.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use rand_distr::{Distribution as _, LogNormal};
use shep_proto::admin::v1::{Delay, ErrorEffect, Fault, delay, fault, fault_target};
use shep_proto::catalogue::{GrpcCode, INJECTED_FAULT};
use tokio::time::Instant;

use crate::error::InjectedError;

/// Where a call is when faults are consulted.
#[derive(Debug, Clone, Copy)]
pub enum Site<'a> {
    /// The gateway asks registry `id` about `key` (an IIN, BIN or number).
    Registry { id: &'a str, key: &'a str },
    /// A Gateway.Call or Submit for service `id`.
    Service(&'a str),
    /// A Subscribe stream of provider `id` opens.
    Provider(&'a str),
    /// The gateway is about to deliver a request to provider `id` (on a
    /// Subscribe stream or in a GetMessages answer).
    Delivery(&'a str),
    /// A Gateway.Watch stream opens, by this consumer system (`""` when
    /// the caller is not a system).
    Watch(&'a str),
}

/// What a fired fault does after its delay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Nothing more: the call goes on (a delay alone, or a `pass` step).
    Proceed,
    Error(InjectedError),
    /// Answer at the caller's deadline, or fail after this long without one.
    Hang(Duration),
    /// End the stream after this many messages.
    CutStreamAfter(u32),
    DropConnection,
    /// (Delivery) send it twice.
    DuplicateDelivery,
    /// (Delivery) alter the envelope's signature so it no longer verifies.
    CorruptDelivery,
    /// (Delivery) hold it for the fault's delay; nothing more.
    DelayDelivery,
    /// (Delivery) ignore the provider's ack of it.
    DropAck,
}

/// Whether `effect` acts on each delivery rather than on the call.
fn per_delivery(effect: Option<&fault::Effect>) -> bool {
    matches!(
        effect,
        Some(
            fault::Effect::DuplicateDelivery(true)
                | fault::Effect::CorruptDelivery(true)
                | fault::Effect::DelayDelivery(true)
                | fault::Effect::DropAck(true)
        )
    )
}

/// A fault that fired on a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fired {
    pub fault_id: String,
    pub delay: Option<Duration>,
    pub effect: Effect,
}

/// Why a fault was refused.
#[derive(Debug, Clone, thiserror::Error)]
#[error("`{field}` {problem}")]
pub struct InvalidFault {
    pub field: &'static str,
    pub problem: String,
}

fn invalid(field: &'static str, problem: impl Into<String>) -> InvalidFault {
    InvalidFault {
        field,
        problem: problem.into(),
    }
}

#[derive(Debug)]
struct FaultState {
    spec: Fault,
    session: Option<String>,
    added: Instant,
    rng: Mutex<StdRng>,
    matched: AtomicU64,
    fired: AtomicU64,
}

impl FaultState {
    fn in_force(&self, now: Instant) -> bool {
        let start = self.added + Duration::from_millis(u64::from(self.spec.starts_after_ms));
        let within = now >= start
            && (self.spec.lasts_ms == 0
                || now < start + Duration::from_millis(u64::from(self.spec.lasts_ms)));
        let spent = self.spec.times != 0
            && self.fired.load(Ordering::Relaxed) >= u64::from(self.spec.times);
        within && !spent
    }

    fn applies_to(&self, session: Option<&str>) -> bool {
        match &self.session {
            None => true,
            Some(own) => session == Some(own.as_str()),
        }
    }

    fn matches(&self, site: Site<'_>) -> bool {
        let Some(target) = self.spec.target.as_ref().and_then(|t| t.target.as_ref()) else {
            return false;
        };
        match (target, site) {
            (fault_target::Target::Registry(id), Site::Registry { id: at, .. }) => id == at,
            (fault_target::Target::Subject(subject), Site::Registry { key, .. }) => subject == key,
            (fault_target::Target::Service(id), Site::Service(at)) => id == at,
            // A provider fault acts either when a stream opens or on each
            // delivery, by its effect.
            (fault_target::Target::Provider(id), Site::Provider(at)) => {
                id == at && !per_delivery(self.spec.effect.as_ref())
            }
            (fault_target::Target::Provider(id), Site::Delivery(at)) => {
                id == at && per_delivery(self.spec.effect.as_ref())
            }
            (fault_target::Target::Watch(id), Site::Watch(at)) => id == "*" || id == at,
            _ => false,
        }
    }

    fn snapshot(&self) -> Fault {
        Fault {
            matched: self.matched.load(Ordering::Relaxed),
            fired: self.fired.load(Ordering::Relaxed),
            ..self.spec.clone()
        }
    }

    fn sample_delay(rng: &mut StdRng, delay: &Delay) -> Option<Duration> {
        let ms = match delay.distribution.as_ref()? {
            delay::Distribution::FixedMs(ms) => f64::from(*ms),
            delay::Distribution::Uniform(uniform) => {
                rng.gen_range(f64::from(uniform.min_ms)..=f64::from(uniform.max_ms))
            }
            delay::Distribution::LogNormal(spec) => {
                // Through the median and the 99th percentile: z(0.99) = 2.3263.
                let mu = f64::from(spec.p50_ms.max(1)).ln();
                let sigma = ((f64::from(spec.p99_ms.max(spec.p50_ms.max(1)))).ln() - mu) / 2.3263;
                let sample = LogNormal::new(mu, sigma.max(0.0))
                    .map(|dist| dist.sample(rng))
                    .unwrap_or(f64::from(spec.p50_ms));
                if spec.max_ms > 0 {
                    sample.min(f64::from(spec.max_ms))
                } else {
                    sample
                }
            }
        };
        Some(Duration::from_micros((ms * 1000.0) as u64))
    }

    /// Counts the match, draws for the rate and the delay; the effect if it fires.
    fn draw(&self) -> Option<Fired> {
        self.matched.fetch_add(1, Ordering::Relaxed);
        let mut rng = self.rng.lock().unwrap_or_else(|p| p.into_inner());
        let rate = if self.spec.rate <= 0.0 {
            1.0
        } else {
            self.spec.rate
        };
        // One draw per match, even at rate 1, so a seed gives the same
        // sequence whatever the rate.
        let roll: f64 = rng.r#gen();
        if roll >= rate {
            return None;
        }
        if self.spec.times != 0 {
            // Another caller may have taken the last use meanwhile.
            let taken = self
                .fired
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |fired| {
                    (fired < u64::from(self.spec.times)).then_some(fired + 1)
                });
            if taken.is_err() {
                return None;
            }
        } else {
            self.fired.fetch_add(1, Ordering::Relaxed);
        }
        let delay = self
            .spec
            .delay
            .as_ref()
            .and_then(|delay| Self::sample_delay(&mut rng, delay));
        let effect = match &self.spec.effect {
            Some(fault::Effect::Error(error)) => Effect::Error(injected(&self.spec.id, error)),
            Some(fault::Effect::Hang(hang)) => {
                Effect::Hang(Duration::from_millis(if hang.max_ms == 0 {
                    30_000
                } else {
                    u64::from(hang.max_ms)
                }))
            }
            Some(fault::Effect::CutStreamAfter(after)) => Effect::CutStreamAfter(*after),
            Some(fault::Effect::DropConnection(true)) => Effect::DropConnection,
            Some(fault::Effect::DuplicateDelivery(true)) => Effect::DuplicateDelivery,
            Some(fault::Effect::CorruptDelivery(true)) => Effect::CorruptDelivery,
            Some(fault::Effect::DelayDelivery(true)) => Effect::DelayDelivery,
            Some(fault::Effect::DropAck(true)) => Effect::DropAck,
            _ => Effect::Proceed,
        };
        Some(Fired {
            fault_id: self.spec.id.clone(),
            delay,
            effect,
        })
    }
}

fn injected(id: &str, error: &ErrorEffect) -> InjectedError {
    let code = GrpcCode::from_name(&error.code).unwrap_or(GrpcCode::Unavailable);
    let mut metadata: Vec<(String, String)> = error
        .metadata
        .iter()
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    metadata.sort();
    metadata.push(("fault_id".to_owned(), id.to_owned()));
    InjectedError {
        code,
        message: if error.message.is_empty() {
            format!("injected fault `{id}`")
        } else {
            error.message.clone()
        },
        reason: if error.reason.is_empty() {
            INJECTED_FAULT.to_owned()
        } else {
            error.reason.clone()
        },
        metadata,
    }
}

/// The faults in force.
#[derive(Debug, Default)]
pub struct Faults {
    list: RwLock<Vec<Arc<FaultState>>>,
    /// `list.len()`, read without the lock on every call.
    count: AtomicUsize,
    next_id: AtomicU64,
    /// Set in a cluster: this node's tag in the fault ids it makes up.
    node: std::sync::OnceLock<String>,
    /// Bumped on every change, so watchers (health) re-read.
    version: tokio::sync::watch::Sender<u64>,
    /// Deliveries whose next ack a `drop_ack` fault swallows: message id ->
    /// fault id. Set and cleared at each delivery, taken by the ack.
    dropped_acks: Mutex<HashMap<String, String>>,
    /// `dropped_acks.len()`, read without the lock on every delivery and ack.
    armed: AtomicUsize,
}

impl Faults {
    /// Validates and attaches `spec` for `session`; a fault with the same id
    /// is replaced. Returns the fault as stored.
    pub fn add(
        &self,
        spec: Fault,
        session: Option<&str>,
        scenario: &str,
        registries: &[&str],
    ) -> Result<Fault, InvalidFault> {
        let spec = self.prepare(spec, session, scenario, registries)?;
        self.insert(spec.clone());
        Ok(spec)
    }

    /// Validates `spec` and fills in what the gateway sets (its id when it
    /// has none, its session and scenario, zero counts), without attaching it.
    pub fn prepare(
        &self,
        mut spec: Fault,
        session: Option<&str>,
        scenario: &str,
        registries: &[&str],
    ) -> Result<Fault, InvalidFault> {
        validate(&spec, registries)?;
        if spec.id.trim().is_empty() {
            let number = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
            spec.id = match self.node.get() {
                // Nodes sharing faults number them apart.
                Some(node) => format!("f{number}-{node}"),
                None => format!("f{number}"),
            };
        }
        spec.session = session.unwrap_or_default().to_owned();
        spec.scenario = scenario.to_owned();
        spec.matched = 0;
        spec.fired = 0;
        Ok(spec)
    }

    /// Attaches a fault [`prepare`](Self::prepare)d here or on another node
    /// (its `session` field scopes it), replacing one of the same id with
    /// fresh counts and a fresh time window.
    pub fn insert(&self, spec: Fault) {
        let state = Arc::new(FaultState {
            rng: Mutex::new(StdRng::seed_from_u64(spec.seed)),
            session: (!spec.session.is_empty()).then(|| spec.session.clone()),
            added: Instant::now(),
            matched: AtomicU64::new(0),
            fired: AtomicU64::new(0),
            spec,
        });
        let mut list = self.list.write().unwrap_or_else(|p| p.into_inner());
        match list.iter_mut().find(|old| old.spec.id == state.spec.id) {
            Some(old) => *old = state,
            None => list.push(state),
        }
        self.count.store(list.len(), Ordering::Release);
        drop(list);
        self.version.send_modify(|version| *version += 1);
    }

    /// Makes the ids this node gives faults unique among the nodes sharing
    /// them (`f<n>-<node>` rather than `f<n>`); set once, before any fault.
    pub fn set_node(&self, node: &str) {
        let _ = self.node.set(node.to_owned());
    }

    /// The ids of the faults of exactly `session` (the global ones for `None`).
    pub fn ids_in(&self, session: Option<&str>) -> Vec<String> {
        self.list
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|state| state.session.as_deref() == session)
            .map(|state| state.spec.id.clone())
            .collect()
    }

    /// The faults visible to `session` (all without one), in order.
    pub fn list(&self, session: Option<&str>) -> Vec<Fault> {
        self.list
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|state| session.is_none() || state.session.as_deref() == session)
            .map(|state| state.snapshot())
            .collect()
    }

    /// Removes fault `id` (within `session` when given); whether it existed.
    pub fn remove(&self, id: &str, session: Option<&str>) -> bool {
        self.retain(|state| {
            !(state.spec.id == id && (session.is_none() || state.session.as_deref() == session))
        }) > 0
    }

    /// Removes the faults of `session` (the global ones for `None`); how many.
    pub fn clear(&self, session: Option<&str>) -> usize {
        self.retain(|state| state.session.as_deref() != session)
    }

    fn retain(&self, keep: impl Fn(&FaultState) -> bool) -> usize {
        let mut list = self.list.write().unwrap_or_else(|p| p.into_inner());
        let before = list.len();
        list.retain(|state| keep(state));
        let removed = before - list.len();
        self.count.store(list.len(), Ordering::Release);
        drop(list);
        if removed > 0 {
            self.version.send_modify(|version| *version += 1);
        }
        removed
    }

    /// The first fault in force for `session` at `site` that fires, if any.
    /// Faults are tried in the order they were added.
    pub fn check(&self, site: Site<'_>, session: Option<&str>) -> Option<Fired> {
        if self.count.load(Ordering::Acquire) == 0 {
            return None;
        }
        let now = Instant::now();
        let list = self.list.read().unwrap_or_else(|p| p.into_inner());
        list.iter()
            .filter(|state| {
                !matches!(state.spec.effect, Some(fault::Effect::NotServing(true)))
                    && state.applies_to(session)
                    && state.matches(site)
                    && state.in_force(now)
            })
            .find_map(|state| state.draw())
    }

    /// Registries a `not_serving` fault holds down right now.
    pub fn not_serving(&self) -> BTreeSet<String> {
        let now = Instant::now();
        self.list
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|state| {
                matches!(state.spec.effect, Some(fault::Effect::NotServing(true)))
                    && state.in_force(now)
            })
            .filter_map(|state| match state.spec.target.as_ref()?.target.as_ref()? {
                fault_target::Target::Registry(id) => Some(id.clone()),
                _ => None,
            })
            .collect()
    }

    /// Changes whenever faults are added or removed.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.version.subscribe()
    }

    /// Notes what a delivery of `message_id` does to its ack: swallowed by
    /// `fault_id`, or (`None`) settled as usual, whatever an earlier
    /// delivery of it said.
    pub fn drop_next_ack(&self, message_id: &str, fault_id: Option<&str>) {
        if fault_id.is_none() && self.armed.load(Ordering::Acquire) == 0 {
            return;
        }
        let mut dropped = self.dropped_acks.lock().unwrap_or_else(|p| p.into_inner());
        match fault_id {
            Some(fault_id) => {
                dropped.insert(message_id.to_owned(), fault_id.to_owned());
            }
            None => {
                dropped.remove(message_id);
            }
        }
        self.armed.store(dropped.len(), Ordering::Release);
    }

    /// The `drop_ack` fault that swallows this ack of `message_id`, if any;
    /// it swallows one ack only.
    pub fn take_dropped_ack(&self, message_id: &str) -> Option<String> {
        if self.armed.load(Ordering::Acquire) == 0 {
            return None;
        }
        let mut dropped = self.dropped_acks.lock().unwrap_or_else(|p| p.into_inner());
        let taken = dropped.remove(message_id);
        self.armed.store(dropped.len(), Ordering::Release);
        taken
    }
}

fn validate(spec: &Fault, registries: &[&str]) -> Result<(), InvalidFault> {
    let target = spec
        .target
        .as_ref()
        .and_then(|target| target.target.as_ref())
        .ok_or_else(|| {
            invalid(
                "target",
                "is required: registry, service, provider, subject or watch",
            )
        })?;
    match target {
        fault_target::Target::Registry(id) if !registries.contains(&id.as_str()) => {
            return Err(invalid(
                "target.registry",
                format!("`{id}` is not one of {}", registries.join(", ")),
            ));
        }
        fault_target::Target::Service(id)
        | fault_target::Target::Provider(id)
        | fault_target::Target::Subject(id)
        | fault_target::Target::Watch(id)
            if id.trim().is_empty() =>
        {
            return Err(invalid("target", "names nothing"));
        }
        _ => {}
    }
    if !(0.0..=1.0).contains(&spec.rate) || spec.rate.is_nan() {
        return Err(invalid("rate", "must be between 0 and 1"));
    }
    if let Some(delay::Distribution::Uniform(uniform)) =
        spec.delay.as_ref().and_then(|d| d.distribution.as_ref())
        && uniform.min_ms > uniform.max_ms
    {
        return Err(invalid("delay.uniform", "min_ms is above max_ms"));
    }
    if let Some(delay::Distribution::LogNormal(spec)) =
        spec.delay.as_ref().and_then(|d| d.distribution.as_ref())
        && (spec.p50_ms == 0 || spec.p99_ms < spec.p50_ms)
    {
        return Err(invalid("delay.log_normal", "needs 0 < p50_ms <= p99_ms"));
    }
    match (&spec.effect, target) {
        (Some(fault::Effect::Error(error)), _) if !error.code.is_empty() => {
            match GrpcCode::from_name(&error.code) {
                Some(GrpcCode::Ok) | None => {
                    return Err(invalid(
                        "error.code",
                        format!("`{}` is not a gRPC error code name", error.code),
                    ));
                }
                Some(_) => {}
            }
        }
        (Some(fault::Effect::NotServing(true)), t)
            if !matches!(t, fault_target::Target::Registry(_)) =>
        {
            return Err(invalid("not_serving", "applies to registry targets only"));
        }
        (Some(fault::Effect::CutStreamAfter(_)), t)
            if !matches!(
                t,
                fault_target::Target::Provider(_) | fault_target::Target::Watch(_)
            ) =>
        {
            return Err(invalid(
                "cut_stream_after",
                "applies to provider targets (their Subscribe streams) and watch targets only",
            ));
        }
        (Some(effect), t)
            if per_delivery(Some(effect)) && !matches!(t, fault_target::Target::Provider(_)) =>
        {
            return Err(invalid(
                delivery_field(effect),
                "applies to provider targets (their deliveries) only",
            ));
        }
        (Some(fault::Effect::DelayDelivery(true)), _) if spec.delay.is_none() => {
            return Err(invalid(
                "delay_delivery",
                "needs a `delay`: how long to hold the delivery",
            ));
        }
        (None, _) if spec.delay.is_none() => {
            return Err(invalid(
                "effect",
                "is required when there is no delay: error, hang, cut_stream_after, drop_connection, not_serving, pass, duplicate_delivery, corrupt_delivery, delay_delivery or drop_ack",
            ));
        }
        _ => {}
    }
    Ok(())
}

/// The field naming a per-delivery effect, for refusals.
fn delivery_field(effect: &fault::Effect) -> &'static str {
    match effect {
        fault::Effect::DuplicateDelivery(_) => "duplicate_delivery",
        fault::Effect::CorruptDelivery(_) => "corrupt_delivery",
        fault::Effect::DelayDelivery(_) => "delay_delivery",
        _ => "drop_ack",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shep_proto::admin::v1::FaultTarget;

    const REGISTRIES: &[&str] = &["gbdfl", "gbdul", "enis"];

    fn error_fault(target: fault_target::Target) -> Fault {
        Fault {
            target: Some(FaultTarget {
                target: Some(target),
            }),
            effect: Some(fault::Effect::Error(ErrorEffect {
                code: "UNAVAILABLE".into(),
                ..ErrorEffect::default()
            })),
            ..Fault::default()
        }
    }

    fn gbdfl(key: &str) -> Site<'_> {
        Site::Registry { id: "gbdfl", key }
    }

    #[test]
    fn a_seeded_rate_repeats_its_sequence() {
        let run = || {
            let faults = Faults::default();
            let spec = Fault {
                rate: 0.3,
                seed: 42,
                ..error_fault(fault_target::Target::Registry("gbdfl".into()))
            };
            faults.add(spec, None, "", REGISTRIES).unwrap();
            (0..200)
                .map(|_| faults.check(gbdfl("1"), None).is_some())
                .collect::<Vec<_>>()
        };
        let first = run();
        assert_eq!(first, run());
        let fired = first.iter().filter(|fired| **fired).count();
        assert!((30..=90).contains(&fired), "fired {fired} of 200 at 0.3");
    }

    #[test]
    fn times_limits_uses_and_order_makes_sequences() {
        let faults = Faults::default();
        let pass = Fault {
            times: 1,
            effect: Some(fault::Effect::Pass(true)),
            ..error_fault(fault_target::Target::Subject("850315301235".into()))
        };
        let fail = Fault {
            times: 1,
            ..error_fault(fault_target::Target::Subject("850315301235".into()))
        };
        faults.add(pass, None, "", REGISTRIES).unwrap();
        faults.add(fail, None, "", REGISTRIES).unwrap();
        let effects: Vec<Option<Effect>> = (0..3)
            .map(|_| {
                faults
                    .check(gbdfl("850315301235"), None)
                    .map(|fired| fired.effect)
            })
            .collect();
        assert_eq!(effects[0], Some(Effect::Proceed));
        assert!(matches!(effects[1], Some(Effect::Error(_))));
        assert_eq!(effects[2], None);
        assert!(faults.check(gbdfl("other"), None).is_none());
    }

    #[test]
    fn a_session_fault_is_invisible_to_other_sessions() {
        let faults = Faults::default();
        faults
            .add(
                error_fault(fault_target::Target::Registry("gbdfl".into())),
                Some("a"),
                "",
                REGISTRIES,
            )
            .unwrap();
        assert!(faults.check(gbdfl("1"), Some("a")).is_some());
        assert!(faults.check(gbdfl("1"), Some("b")).is_none());
        assert!(faults.check(gbdfl("1"), None).is_none());
        assert_eq!(faults.clear(Some("b")), 0);
        assert_eq!(faults.clear(Some("a")), 1);
    }

    #[test]
    fn bad_faults_are_refused_with_the_field() {
        let faults = Faults::default();
        let unknown = error_fault(fault_target::Target::Registry("nope".into()));
        assert_eq!(
            faults.add(unknown, None, "", REGISTRIES).unwrap_err().field,
            "target.registry"
        );
        let rate = Fault {
            rate: 1.5,
            ..error_fault(fault_target::Target::Registry("gbdfl".into()))
        };
        assert_eq!(
            faults.add(rate, None, "", REGISTRIES).unwrap_err().field,
            "rate"
        );
        let mut code = error_fault(fault_target::Target::Registry("gbdfl".into()));
        if let Some(fault::Effect::Error(error)) = &mut code.effect {
            error.code = "TEAPOT".into();
        }
        assert_eq!(
            faults.add(code, None, "", REGISTRIES).unwrap_err().field,
            "error.code"
        );
    }

    #[test]
    fn delivery_faults_fire_per_delivery_and_leave_the_stream_opening_alone() {
        let faults = Faults::default();
        let duplicate = Fault {
            times: 1,
            effect: Some(fault::Effect::DuplicateDelivery(true)),
            ..error_fault(fault_target::Target::Provider("arm".into()))
        };
        faults.add(duplicate, None, "", REGISTRIES).unwrap();
        assert!(faults.check(Site::Provider("arm"), None).is_none());
        assert!(faults.check(Site::Delivery("other"), None).is_none());
        let fired = faults.check(Site::Delivery("arm"), None).unwrap();
        assert_eq!(fired.effect, Effect::DuplicateDelivery);
        assert!(faults.check(Site::Delivery("arm"), None).is_none(), "spent");
        // An open-time provider fault does not fire on deliveries.
        faults
            .add(
                error_fault(fault_target::Target::Provider("arm".into())),
                None,
                "",
                REGISTRIES,
            )
            .unwrap();
        assert!(faults.check(Site::Delivery("arm"), None).is_none());
        assert!(faults.check(Site::Provider("arm"), None).is_some());
    }

    #[test]
    fn a_dropped_ack_is_swallowed_once_and_cleared_by_a_clean_delivery() {
        let faults = Faults::default();
        assert_eq!(faults.take_dropped_ack("m1"), None);
        faults.drop_next_ack("m1", Some("f1"));
        assert_eq!(faults.take_dropped_ack("m2"), None);
        assert_eq!(faults.take_dropped_ack("m1").as_deref(), Some("f1"));
        assert_eq!(faults.take_dropped_ack("m1"), None);
        faults.drop_next_ack("m1", Some("f1"));
        faults.drop_next_ack("m1", None);
        assert_eq!(faults.take_dropped_ack("m1"), None);
    }

    #[test]
    fn delivery_effects_need_a_provider_target_and_a_held_delivery_a_delay() {
        let faults = Faults::default();
        for (effect, field) in [
            (fault::Effect::DuplicateDelivery(true), "duplicate_delivery"),
            (fault::Effect::CorruptDelivery(true), "corrupt_delivery"),
            (fault::Effect::DelayDelivery(true), "delay_delivery"),
            (fault::Effect::DropAck(true), "drop_ack"),
        ] {
            let on_service = Fault {
                effect: Some(effect),
                ..error_fault(fault_target::Target::Service("s".into()))
            };
            assert_eq!(
                faults
                    .add(on_service, None, "", REGISTRIES)
                    .unwrap_err()
                    .field,
                field
            );
        }
        let unheld = Fault {
            effect: Some(fault::Effect::DelayDelivery(true)),
            ..error_fault(fault_target::Target::Provider("arm".into()))
        };
        assert_eq!(
            faults.add(unheld, None, "", REGISTRIES).unwrap_err().field,
            "delay_delivery"
        );
        let held = Fault {
            effect: Some(fault::Effect::DelayDelivery(true)),
            delay: Some(Delay {
                distribution: Some(delay::Distribution::FixedMs(5)),
            }),
            ..error_fault(fault_target::Target::Provider("arm".into()))
        };
        let fired = {
            faults.add(held, None, "", REGISTRIES).unwrap();
            faults.check(Site::Delivery("arm"), None).unwrap()
        };
        assert_eq!(fired.effect, Effect::DelayDelivery);
        assert_eq!(fired.delay, Some(Duration::from_millis(5)));
    }

    #[test]
    fn log_normal_delays_have_a_long_tail_around_the_median() {
        let mut rng = StdRng::seed_from_u64(7);
        let delay = Delay {
            distribution: Some(delay::Distribution::LogNormal(
                shep_proto::admin::v1::LogNormalDelay {
                    p50_ms: 10,
                    p99_ms: 100,
                    max_ms: 0,
                },
            )),
        };
        let mut samples: Vec<Duration> = (0..10_000)
            .map(|_| FaultState::sample_delay(&mut rng, &delay).unwrap())
            .collect();
        samples.sort();
        let p50 = samples[5_000].as_secs_f64() * 1000.0;
        let p99 = samples[9_900].as_secs_f64() * 1000.0;
        assert!((8.0..12.5).contains(&p50), "p50 {p50} ms");
        assert!((75.0..130.0).contains(&p99), "p99 {p99} ms");
    }
}
