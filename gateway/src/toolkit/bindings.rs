//! Session bindings: a test session chosen by the gateway from what it sees
//! of a call, for consumer and provider systems that cannot send
//! `x-shep-session`. An operator binds a session to a ШЭП sessionId, a
//! certificate, a system, a provider or a subject; a call without the header
//! that matches is in that session as if it had sent it.
//!
//! The table is read on every call, so an empty table costs one atomic load
//! and the callers build a [`Probe`] (decoding the body) only for the kinds
//! that are bound ([`Bindings::wanted`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};

use shep_proto::admin::v1::SessionBinding;
use shep_proto::admin::v1::session_binding::To;

use crate::admin_auth::Fingerprint;
use crate::error::GatewayError;

/// The most bindings a gateway holds: each is a lookup key on the hot path
/// and a line in every listing.
pub const MAX_BINDINGS: usize = 10_000;

/// What a binding matches, in the order of precedence: the most specific
/// first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    SessionId,
    Certificate,
    System,
    Provider,
    Subject,
}

impl Kind {
    /// Every kind, in the order of precedence.
    pub const ALL: [Kind; 5] = [
        Kind::SessionId,
        Kind::Certificate,
        Kind::System,
        Kind::Provider,
        Kind::Subject,
    ];

    fn bit(self) -> u8 {
        1 << self as u8
    }

    /// The name of the `SessionBinding.to` field: a cluster's key token.
    pub fn name(self) -> &'static str {
        match self {
            Kind::SessionId => "session_id",
            Kind::Certificate => "certificate_sha256",
            Kind::System => "system_id",
            Kind::Provider => "provider_id",
            Kind::Subject => "subject",
        }
    }

    /// The kind [`name`](Self::name)d.
    pub fn named(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.name() == name)
    }
}

/// A binding's normalised target: UUIDs hyphenated in lower case,
/// fingerprints as 64 lower-case hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    pub kind: Kind,
    pub value: String,
}

impl Target {
    /// Checks and normalises the `to` of a binding; whether a system or
    /// provider exists is the caller's to check against the routing table.
    pub fn from_proto(to: Option<&To>) -> Result<Self, GatewayError> {
        let invalid = |problem: String| GatewayError::InvalidField {
            field: "to",
            problem,
        };
        let (kind, value) = match to {
            None => {
                return Err(invalid(
                    "names nothing: set one of session_id, system_id, provider_id, subject or certificate_sha256".to_owned(),
                ));
            }
            Some(To::SessionId(id)) => (
                Kind::SessionId,
                normal_uuid(id)
                    .ok_or_else(|| invalid(format!("session_id `{id}` is not a UUID")))?,
            ),
            Some(To::SystemId(id)) => (Kind::System, id.trim().to_owned()),
            Some(To::ProviderId(id)) => (Kind::Provider, id.trim().to_owned()),
            Some(To::Subject(id)) => {
                let id = id.trim();
                if id.len() != 12 || !id.bytes().all(|byte| byte.is_ascii_digit()) {
                    return Err(invalid(format!(
                        "subject `{id}` is not an IIN or BIN (12 digits)"
                    )));
                }
                (Kind::Subject, id.to_owned())
            }
            Some(To::CertificateSha256(hex)) => (
                Kind::Certificate,
                Fingerprint::parse(hex)
                    .map_err(|problem| invalid(format!("certificate_sha256: {problem}")))?
                    .to_string(),
            ),
        };
        if value.is_empty() {
            return Err(invalid("names an empty system or provider id".to_owned()));
        }
        Ok(Self { kind, value })
    }

    fn to_proto(&self) -> To {
        let value = self.value.clone();
        match self.kind {
            Kind::SessionId => To::SessionId(value),
            Kind::Certificate => To::CertificateSha256(value),
            Kind::System => To::SystemId(value),
            Kind::Provider => To::ProviderId(value),
            Kind::Subject => To::Subject(value),
        }
    }
}

/// A ШЭП sessionId as bindings compare it: hyphenated, lower case; braces
/// and case ignored. `None` for what is not a UUID.
pub fn normal_uuid(text: &str) -> Option<String> {
    let text = text.trim();
    let text = text
        .strip_prefix('{')
        .and_then(|inner| inner.strip_suffix('}'))
        .unwrap_or(text);
    uuid::Uuid::try_parse(text)
        .ok()
        .map(|id| id.hyphenated().to_string())
}

/// What the gateway sees of one call, by kind: the values its bindings are
/// looked up by. Built only for the kinds [`Bindings::wanted`] names.
#[derive(Debug, Default)]
pub struct Probe(Vec<(Kind, String)>);

impl Probe {
    /// Adds a value already in normal form (see [`Target`]); empty values
    /// are skipped.
    pub fn add(&mut self, kind: Kind, value: impl Into<String>) {
        let value = value.into();
        if !value.is_empty() {
            self.0.push((kind, value));
        }
    }

    /// Adds a certificate, by its fingerprint.
    pub fn certificate(&mut self, der: &[u8]) {
        if !der.is_empty() {
            self.add(Kind::Certificate, Fingerprint::of(der).to_string());
        }
    }
}

/// The kinds bound at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wanted(u8);

impl Wanted {
    /// No binding at all: nothing to look at.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Bindings of `kind` exist.
    pub fn has(self, kind: Kind) -> bool {
        self.0 & kind.bit() != 0
    }

    /// Bindings that need the envelope's body exist.
    pub fn body(self) -> bool {
        self.0 & !Kind::Certificate.bit() != 0
    }
}

#[derive(Debug)]
struct Entry {
    id: String,
    /// When this node made it, for listing in that order.
    order: u64,
    session: Arc<str>,
}

#[derive(Debug, Default)]
struct Table {
    last_order: u64,
    entries: HashMap<(Kind, String), Entry>,
}

impl Table {
    fn wanted(&self) -> u8 {
        self.entries
            .keys()
            .fold(0, |bits, (kind, _)| bits | kind.bit())
    }

    fn list(&self, session: Option<&str>) -> Vec<SessionBinding> {
        let mut listed: Vec<_> = self
            .entries
            .iter()
            .filter(|(_, entry)| session.is_none_or(|session| *entry.session == *session))
            .collect();
        listed.sort_by_key(|(_, entry)| entry.order);
        listed
            .into_iter()
            .map(|((kind, value), entry)| binding(entry, *kind, value))
            .collect()
    }

    fn retain(&mut self, keep: impl Fn(&Entry) -> bool) -> usize {
        let before = self.entries.len();
        self.entries.retain(|_, entry| keep(entry));
        before - self.entries.len()
    }
}

fn binding(entry: &Entry, kind: Kind, value: &str) -> SessionBinding {
    SessionBinding {
        id: entry.id.clone(),
        session: entry.session.to_string(),
        to: Some(
            Target {
                kind,
                value: value.to_owned(),
            }
            .to_proto(),
        ),
    }
}

/// The bindings of this node.
#[derive(Debug, Default)]
pub struct Bindings {
    /// A bit per bound [`Kind`], kept with the table: the hot path reads
    /// only this while nothing is bound.
    wanted: AtomicU8,
    table: RwLock<Table>,
    last_id: AtomicU64,
    /// Set in a cluster: made-up ids carry the node, so that two nodes
    /// never make the same one.
    node: OnceLock<String>,
}

impl Bindings {
    /// The kinds bound now.
    pub fn wanted(&self) -> Wanted {
        Wanted(self.wanted.load(Ordering::Acquire))
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Table> {
        // A panic elsewhere while holding the lock leaves the table whole.
        self.table
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn change<T>(&self, change: impl FnOnce(&mut Table) -> T) -> T {
        let mut table = self
            .table
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let result = change(&mut table);
        self.wanted.store(table.wanted(), Ordering::Release);
        result
    }

    /// Names this node in the ids it makes up (a cluster's).
    pub fn set_node(&self, node: &str) {
        let _ = self.node.set(node.to_owned());
    }

    fn new_id(&self) -> String {
        let number = self.last_id.fetch_add(1, Ordering::Relaxed) + 1;
        match self.node.get() {
            Some(node) => format!("b-{number}-{node}"),
            None => format!("b-{number}"),
        }
    }

    /// Binds `session` (checked as the header is) to `target`, replacing the
    /// session of an existing binding of the same target (which keeps its id).
    pub fn bind(&self, session: &str, target: Target) -> Result<SessionBinding, GatewayError> {
        let session = checked(session)?;
        self.change(|table| {
            let key = (target.kind, target.value);
            if let Some(entry) = table.entries.get_mut(&key) {
                entry.session = session;
                return Ok(binding(entry, key.0, &key.1));
            }
            full(table)?;
            table.last_order += 1;
            let entry = Entry {
                id: self.new_id(),
                order: table.last_order,
                session,
            };
            let made = binding(&entry, key.0, &key.1);
            table.entries.insert(key, entry);
            Ok(made)
        })
    }

    /// The binding [`bind`](Self::bind) would make, without making it: what
    /// a cluster shares, to be [`insert`](Self::insert)ed by every node.
    pub fn prepare(&self, session: &str, target: Target) -> Result<SessionBinding, GatewayError> {
        let session = checked(session)?;
        let table = self.read();
        let key = (target.kind, target.value);
        let id = match table.entries.get(&key) {
            Some(entry) => entry.id.clone(),
            None => {
                full(&table)?;
                self.new_id()
            }
        };
        Ok(SessionBinding {
            id,
            session: session.to_string(),
            to: Some(
                Target {
                    kind: key.0,
                    value: key.1,
                }
                .to_proto(),
            ),
        })
    }

    /// Makes or replaces a [`prepare`](Self::prepare)d binding, as it is,
    /// whichever node prepared it.
    pub fn insert(&self, made: &SessionBinding) -> Result<(), GatewayError> {
        let target = Target::from_proto(made.to.as_ref())?;
        let session = checked(&made.session)?;
        self.change(|table| {
            table.last_order += 1;
            let order = table.last_order;
            let entry = table
                .entries
                .entry((target.kind, target.value))
                .or_insert_with(|| Entry {
                    id: String::new(),
                    order,
                    session: session.clone(),
                });
            entry.id.clone_from(&made.id);
            entry.session = session;
        });
        Ok(())
    }

    /// The bindings, of `session` or all, in the order they were made.
    pub fn list(&self, session: Option<&str>) -> Vec<SessionBinding> {
        self.read().list(session)
    }

    /// The target of binding `id`.
    pub fn target_of(&self, id: &str) -> Option<Target> {
        let id = id.trim();
        self.read()
            .entries
            .iter()
            .find(|(_, entry)| entry.id == id)
            .map(|((kind, value), _)| Target {
                kind: *kind,
                value: value.clone(),
            })
    }

    /// The targets bound to `session`, or all.
    pub fn targets_of(&self, session: Option<&str>) -> Vec<Target> {
        self.read()
            .entries
            .iter()
            .filter(|(_, entry)| session.is_none_or(|session| *entry.session == *session))
            .map(|((kind, value), _)| Target {
                kind: *kind,
                value: value.clone(),
            })
            .collect()
    }

    /// Removes the binding of `target`; `false` when there is none.
    pub fn remove(&self, target: &Target) -> bool {
        let key = (target.kind, target.value.clone());
        self.change(|table| table.entries.remove(&key).is_some())
    }

    /// Removes binding `id`; `false` when there is none.
    pub fn unbind(&self, id: &str) -> bool {
        self.target_of(id)
            .is_some_and(|target| self.remove(&target))
    }

    /// Removes the bindings of `session`, or every binding; how many went.
    pub fn clear(&self, session: Option<&str>) -> usize {
        self.change(|table| match session {
            Some(session) => table.retain(|entry| *entry.session != *session),
            None => table.retain(|_| false),
        })
    }

    /// The session of the first binding `probe` matches, by kind in the
    /// order of precedence.
    pub fn session_of(&self, probe: &Probe) -> Option<Arc<str>> {
        if probe.0.is_empty() {
            return None;
        }
        let table = self.read();
        let mut key = (Kind::SessionId, String::new());
        Kind::ALL.into_iter().find_map(|kind| {
            probe
                .0
                .iter()
                .filter(|(probed, _)| *probed == kind)
                .find_map(|(_, value)| {
                    key.0 = kind;
                    key.1.clone_from(value);
                    table.entries.get(&key).map(|entry| entry.session.clone())
                })
        })
    }
}

/// `session` as a binding's, checked as the header is.
fn checked(session: &str) -> Result<Arc<str>, GatewayError> {
    let session = session.trim();
    if !super::valid_session(session) {
        return Err(GatewayError::InvalidField {
            field: "session",
            problem: super::SESSION_PROBLEM.to_owned(),
        });
    }
    Ok(Arc::from(session))
}

/// Refuses a new binding when the table holds its limit.
fn full(table: &Table) -> Result<(), GatewayError> {
    if table.entries.len() >= MAX_BINDINGS {
        return Err(GatewayError::InvalidField {
            field: "to",
            problem: format!(
                "cannot be bound: the gateway holds its limit of {MAX_BINDINGS} bindings; unbind some first"
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests;
