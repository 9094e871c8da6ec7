//! The integration team's toolkit: sessions, faults, scenarios and the
//! exchange journal, as the admin API exposes them and as the engine
//! consults them on every call.

pub mod bindings;
pub mod clock;
pub mod connections;
pub mod exchanges;
pub mod faults;
pub mod inject;
pub mod scenarios;
pub mod shared;

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::time::Instant;
use tonic::metadata::MetadataMap;
use tonic::transport::CertificateDer;

use crate::config::ToolkitConfig;
use crate::error::GatewayError;
use crate::participants::Principal;

pub use bindings::Bindings;
pub use clock::Clock;
pub use connections::Connections;
pub use exchanges::Exchanges;
pub use faults::Faults;
pub use scenarios::Scenarios;
pub use shared::Shared;

/// The metadata header naming a caller's test session.
pub const SESSION_HEADER: &str = "x-shep-session";

/// The longest session id accepted.
const MAX_SESSION_LEN: usize = 128;

/// What a session id must be, as refusals say it.
const SESSION_PROBLEM: &str = "must be 1-128 printable ASCII characters";

/// Whether `session` (trimmed) may name a test session.
fn valid_session(session: &str) -> bool {
    !session.is_empty()
        && session.len() <= MAX_SESSION_LEN
        && !session.chars().any(|ch| ch.is_control())
}

/// Faults, scenarios, the exchange journal and the live connections.
#[derive(Debug)]
pub struct Toolkit {
    pub faults: Faults,
    pub scenarios: Scenarios,
    pub exchanges: Exchanges,
    pub connections: Connections,
    /// Sessions chosen by what a call shows, for callers without the header.
    pub bindings: Bindings,
    /// The simulated clock, global and per session.
    pub clock: Clock,
    /// Set in a cluster: the link through which faults, scenarios, session
    /// fixtures and exchanges are shared (see [`shared`]).
    shared: OnceLock<Arc<Shared>>,
}

impl Toolkit {
    /// A toolkit as `config` sets it up (scenario files are read by the server).
    pub fn new(config: &ToolkitConfig) -> Self {
        Self {
            faults: Faults::default(),
            scenarios: Scenarios::default(),
            exchanges: Exchanges::new(config.exchanges, config.exchanges_capacity),
            connections: Connections::default(),
            bindings: Bindings::default(),
            clock: Clock::default(),
            shared: OnceLock::new(),
        }
    }

    /// The cluster link, when the toolkit is shared.
    pub fn shared(&self) -> Option<&Arc<Shared>> {
        self.shared.get()
    }

    fn share(&self, shared: Arc<Shared>) {
        let _ = self.shared.set(shared);
    }
}

/// What the gateway knows of a call beyond its message: the session, the
/// caller's deadline, its connection and who it proved it is.
#[derive(Debug, Clone, Default)]
pub struct CallContext {
    pub session: Option<Arc<str>>,
    pub deadline: Option<Instant>,
    pub peer: Option<SocketAddr>,
    /// [`Principal::Anyone`] for a context made in-process (`default`);
    /// from a request, what its authentication found.
    pub principal: Principal,
    /// The TLS client's certificate chain, leaf first, kept only while a
    /// certificate binding exists ([`CallContext::with_certificates`]).
    pub certificates: Option<Arc<Vec<CertificateDer<'static>>>>,
    /// The caller's trace (`traceparent`), read only while spans are
    /// exported (`telemetry.otlp_endpoint`): the message span's parent.
    pub remote_parent: Option<opentelemetry::Context>,
}

impl CallContext {
    /// Reads `x-shep-session` and `grpc-timeout` from a request.
    pub fn from_request<T>(request: &tonic::Request<T>) -> Result<Self, GatewayError> {
        let mut context = Self::from_metadata(request.metadata())?;
        context.peer = request.remote_addr();
        context.principal = Principal::of(request);
        Ok(context)
    }

    /// Keeps `request`'s TLS client certificates, when a certificate binding
    /// could match them: without one, not even that is looked up.
    pub fn with_certificates<T>(
        mut self,
        request: &tonic::Request<T>,
        bindings: &Bindings,
    ) -> Self {
        if self.session.is_none() && bindings.wanted().has(bindings::Kind::Certificate) {
            self.certificates = request.peer_certs();
        }
        self
    }

    /// Puts a call without the header in the session a binding gives it:
    /// by its TLS certificate, and by its principal (or, with participant
    /// authentication off, `acting_as`, the system it names) as a system
    /// and as a provider. Costs one atomic load while nothing is bound.
    pub fn bind(&mut self, bindings: &Bindings, acting_as: Option<&str>) {
        use bindings::{Kind, Probe};
        if self.session.is_some() {
            return;
        }
        let wanted = bindings.wanted();
        if wanted.is_empty() {
            return;
        }
        let mut probe = Probe::default();
        if wanted.has(Kind::Certificate)
            && let Some(leaf) = self.certificates.as_ref().and_then(|chain| chain.first())
        {
            probe.certificate(leaf);
        }
        let system = match &self.principal {
            Principal::System(id) => Some(id.as_str()),
            Principal::Anyone => acting_as,
            Principal::Person(_) | Principal::Nobody => None,
        };
        if let Some(system) = system {
            probe.add(Kind::System, system);
            probe.add(Kind::Provider, system);
        }
        self.session = bindings.session_of(&probe);
    }

    /// Reads `x-shep-session`, `grpc-timeout` and (when spans are exported)
    /// `traceparent` from metadata.
    pub fn from_metadata(metadata: &MetadataMap) -> Result<Self, GatewayError> {
        let session = match metadata.get(SESSION_HEADER) {
            None => None,
            Some(value) => {
                let value = value.to_str().ok().map(str::trim).unwrap_or_default();
                if !valid_session(value) {
                    return Err(GatewayError::InvalidField {
                        field: "x-shep-session",
                        problem: SESSION_PROBLEM.to_owned(),
                    });
                }
                Some(Arc::from(value))
            }
        };
        let deadline = metadata
            .get("grpc-timeout")
            .and_then(|value| value.to_str().ok())
            .and_then(parse_grpc_timeout)
            // A little early, so the answer reaches the caller before its own
            // timer fires and before tonic's server-side timeout (which would
            // answer CANCELLED) does.
            .map(|timeout| {
                Instant::now() + timeout
                    - (timeout / 50)
                        .clamp(Duration::from_millis(1), Duration::from_millis(20))
                        .min(timeout)
            });
        Ok(Self {
            session,
            deadline,
            peer: None,
            // Proven by the request's authentication, not by metadata.
            principal: Principal::Nobody,
            certificates: None,
            remote_parent: crate::telemetry::remote_parent(metadata),
        })
    }

    /// The session id, if any.
    pub fn session(&self) -> Option<&str> {
        self.session.as_deref()
    }

    /// The session id or "" (as recorded in exchanges).
    pub fn session_label(&self) -> String {
        self.session().unwrap_or_default().to_owned()
    }
}

/// Parses a `grpc-timeout` value: up to 8 digits and a unit (H M S m u n).
pub fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    if value.len() < 2 || value.len() > 9 {
        return None;
    }
    let (digits, unit) = value.split_at(value.len() - 1);
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount.checked_mul(3600)?),
        "M" => Duration::from_secs(amount.checked_mul(60)?),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeouts_parse_as_the_spec_writes_them() {
        assert_eq!(parse_grpc_timeout("250m"), Some(Duration::from_millis(250)));
        assert_eq!(parse_grpc_timeout("2S"), Some(Duration::from_secs(2)));
        assert_eq!(parse_grpc_timeout("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_grpc_timeout("100"), None);
        assert_eq!(parse_grpc_timeout("123456789S"), None);
        assert_eq!(parse_grpc_timeout("m"), None);
    }

    #[test]
    fn a_bad_session_header_is_refused() {
        let mut metadata = MetadataMap::new();
        metadata.insert(SESSION_HEADER, "a".repeat(200).parse().unwrap());
        assert!(CallContext::from_metadata(&metadata).is_err());
        let mut metadata = MetadataMap::new();
        metadata.insert(SESSION_HEADER, "ci-run-17".parse().unwrap());
        let context = CallContext::from_metadata(&metadata).unwrap();
        assert_eq!(context.session(), Some("ci-run-17"));
    }
}
