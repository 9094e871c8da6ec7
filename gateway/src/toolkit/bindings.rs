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
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, RwLock};

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
    id: u64,
    session: Arc<str>,
}

#[derive(Debug, Default)]
struct Table {
    last_id: u64,
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
        listed.sort_by_key(|(_, entry)| entry.id);
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
        id: format!("b-{}", entry.id),
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

    /// Binds `session` (checked as the header is) to `target`, replacing the
    /// session of an existing binding of the same target (which keeps its id).
    pub fn bind(&self, session: &str, target: Target) -> Result<SessionBinding, GatewayError> {
        let session = session.trim();
        if !super::valid_session(session) {
            return Err(GatewayError::InvalidField {
                field: "session",
                problem: super::SESSION_PROBLEM.to_owned(),
            });
        }
        let session: Arc<str> = Arc::from(session);
        self.change(|table| {
            let key = (target.kind, target.value);
            if let Some(entry) = table.entries.get_mut(&key) {
                entry.session = session;
                return Ok(binding(entry, key.0, &key.1));
            }
            if table.entries.len() >= MAX_BINDINGS {
                return Err(GatewayError::InvalidField {
                    field: "to",
                    problem: format!(
                        "cannot be bound: the gateway holds its limit of {MAX_BINDINGS} bindings; unbind some first"
                    ),
                });
            }
            table.last_id += 1;
            let entry = Entry {
                id: table.last_id,
                session,
            };
            let made = binding(&entry, key.0, &key.1);
            table.entries.insert(key, entry);
            Ok(made)
        })
    }

    /// The bindings, of `session` or all, in the order they were made.
    pub fn list(&self, session: Option<&str>) -> Vec<SessionBinding> {
        self.read().list(session)
    }

    /// Removes binding `id` (`b-N`); `false` when there is none.
    pub fn unbind(&self, id: &str) -> bool {
        let Some(id) = id
            .trim()
            .strip_prefix("b-")
            .and_then(|number| number.parse::<u64>().ok())
        else {
            return false;
        };
        self.change(|table| table.retain(|entry| entry.id != id)) > 0
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

#[cfg(test)]
mod tests;
