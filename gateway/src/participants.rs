//! Who is calling: the participant system, or the person, the transport
//! proves. An interceptor in front of the whole Gateway and Provider services
//! (`grpc::Authenticate`, over [`Credentials`]) refuses a call that proves
//! nobody and puts the [`Principal`] in the request's extensions, so no
//! method can forget to ask; the operations then check that it may act as
//! the envelope's sender, on a provider's queue, or read an applicant's
//! applications.
//!
//! Proofs, strongest first:
//! - a client certificate (mTLS) that chains to the trusted НУЦ (the TLS
//!   handshake checks that) and names a system of the routing table:
//!   `CN=<system id>`, with `OU=BIN<bin>` when the system has a `bin`;
//! - a person's authentication certificate (`SERIALNUMBER=IIN…`, no BIN):
//!   the TLS handshake is then the person's signed request, and they may
//!   read their own applications;
//! - ШЭП's senderId and password, as `authorization: Basic`, for a system
//!   whose `[[system]]` has a `password`.

use std::sync::Arc;

use base64::Engine as _;
use dashmap::DashMap;
use shep_nuc::verify::{SignerIdentity, certificate_identity};
use tonic::Request;

use crate::admin_auth::Fingerprint;
use crate::envelope::SubjectId;
use crate::error::GatewayError;
use crate::routes::{Role, RoutingTable};

/// Parsed client certificates kept, at most; past it the cache starts over.
const MAX_CERTIFICATES: usize = 4096;

/// Who the transport proved the caller is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Principal {
    /// Participant authentication is off (`auth.participants = "off"`).
    #[default]
    Anyone,
    /// A participant system of the routing table.
    System(String),
    /// A person, by the IIN of their authentication certificate.
    Person(String),
    /// Nothing proven (a request the interceptor did not see).
    Nobody,
}

impl Principal {
    /// The principal the interceptor put on `request`; [`Principal::Nobody`]
    /// when it did not run.
    pub fn of<T>(request: &Request<T>) -> Self {
        request
            .extensions()
            .get::<Self>()
            .cloned()
            .unwrap_or(Self::Nobody)
    }

    fn describe(&self) -> String {
        match self {
            Self::Anyone => "anyone".to_owned(),
            Self::System(id) => format!("system `{id}`"),
            Self::Person(iin) => format!("person {iin}"),
            Self::Nobody => "nobody".to_owned(),
        }
    }

    fn refuse(&self, acting_as: String, what: &'static str) -> GatewayError {
        match self {
            Self::Nobody => not_authenticated(),
            _ => GatewayError::AccessDenied {
                authenticated: self.describe(),
                acting_as,
                what,
            },
        }
    }

    /// May act as participant `system`: send its envelopes, take from its
    /// queue, report for it.
    pub fn act_as(&self, system: &str, what: &'static str) -> Result<(), GatewayError> {
        match self {
            Self::Anyone => Ok(()),
            Self::System(id) if id == system => Ok(()),
            _ => Err(self.refuse(format!("system `{system}`"), what)),
        }
    }

    /// May read applications about `subject` (sent by anyone, routed to
    /// `provider` when known): a consumer system acting for the applicant,
    /// the provider they were routed to, or the applicant themself. Returns
    /// the reading system, for the access audit.
    pub fn read(
        &self,
        routes: &RoutingTable,
        subject: Option<&SubjectId>,
        provider: Option<&str>,
    ) -> Result<Option<String>, GatewayError> {
        const WHAT: &str = "only a consumer system, the provider an application was routed to, or the applicant may read it";
        let about = || match subject {
            Some(SubjectId::Iin(iin)) => format!("reader of IIN {iin}"),
            Some(SubjectId::Bin(bin)) => format!("reader of BIN {bin}"),
            None => "reader of this application".to_owned(),
        };
        match self {
            Self::Anyone => Ok(None),
            Self::System(id) => {
                let role = routes.system(id).map(|system| system.role);
                let allowed = match role {
                    Some(Role::Portal | Role::ServiceCentre | Role::System) => true,
                    Some(Role::Provider) => provider == Some(id.as_str()),
                    None => false,
                };
                if allowed {
                    Ok(Some(id.clone()))
                } else {
                    Err(self.refuse(about(), WHAT))
                }
            }
            Self::Person(iin) => match subject {
                Some(SubjectId::Iin(subject)) if subject == iin => Ok(None),
                _ => Err(self.refuse(about(), WHAT)),
            },
            Self::Nobody => Err(not_authenticated()),
        }
    }

    /// Whether this principal sees every application without reading each
    /// one first (authentication off, or a consumer system).
    pub fn reads_everything(&self, routes: &RoutingTable) -> bool {
        match self {
            Self::Anyone => true,
            Self::System(id) => routes
                .system(id)
                .is_some_and(|system| system.role != Role::Provider),
            Self::Person(_) | Self::Nobody => false,
        }
    }
}

fn not_authenticated() -> GatewayError {
    GatewayError::NotAuthenticated(
        "no credential: connect with the system's transport certificate (mTLS), a person's authentication certificate, or `authorization: Basic` with the system's id and password".to_owned(),
    )
}

/// Reads who a request proves its caller is, against the routing table of
/// the moment (`crate::grpc` runs it in front of every participant service).
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    required: bool,
    certificates: Arc<DashMap<Fingerprint, Arc<SignerIdentity>>>,
}

impl Credentials {
    /// With `required` off, everyone is [`Principal::Anyone`].
    pub fn new(required: bool) -> Self {
        Self {
            required,
            certificates: Arc::default(),
        }
    }

    /// Who `request` proves its caller is.
    pub fn principal<T>(
        &self,
        routes: &RoutingTable,
        request: &Request<T>,
    ) -> Result<Principal, GatewayError> {
        if !self.required {
            return Ok(Principal::Anyone);
        }
        let leaf = request
            .peer_certs()
            .and_then(|chain| chain.first().map(|leaf| leaf.as_ref().to_vec()));
        let mut refusal = None;
        if let Some(leaf) = leaf {
            match self
                .identity(&leaf)
                .and_then(|identity| from_certificate(routes, &identity))
            {
                Ok(principal) => return Ok(principal),
                Err(problem) => refusal = Some(problem),
            }
        }
        if let Some(credential) = basic_credential(request)? {
            return from_password(routes, credential);
        }
        Err(refusal.map_or_else(not_authenticated, GatewayError::NotAuthenticated))
    }

    fn identity(&self, der: &[u8]) -> Result<Arc<SignerIdentity>, String> {
        let fingerprint = Fingerprint::of(der);
        if let Some(identity) = self.certificates.get(&fingerprint) {
            return Ok(identity.clone());
        }
        let identity = Arc::new(
            certificate_identity(der)
                .map_err(|error| format!("the client certificate cannot be read: {error}"))?,
        );
        if self.certificates.len() >= MAX_CERTIFICATES {
            self.certificates.clear();
        }
        self.certificates.insert(fingerprint, identity.clone());
        Ok(identity)
    }
}

/// A system by `CN` (and its BIN), else a person by IIN.
fn from_certificate(routes: &RoutingTable, identity: &SignerIdentity) -> Result<Principal, String> {
    if let Some(system) = routes.system(&identity.common_name) {
        return match (&system.bin, &identity.bin) {
            (Some(expected), found) if found.as_ref() != Some(expected) => Err(format!(
                "the client certificate names system `{}` but carries BIN {}, the routing table says {expected}",
                system.id,
                found.as_deref().unwrap_or("none"),
            )),
            _ => Ok(Principal::System(system.id.clone())),
        };
    }
    match (&identity.iin, &identity.bin) {
        (Some(iin), None) => Ok(Principal::Person(iin.clone())),
        _ => Err(format!(
            "the client certificate (CN={}) names no system of the routing table and no person",
            identity.common_name
        )),
    }
}

/// `authorization: Basic base64(<system id>:<password>)`, if sent.
fn basic_credential<T>(request: &Request<T>) -> Result<Option<(String, String)>, GatewayError> {
    let Some(value) = request.metadata().get("authorization") else {
        return Ok(None);
    };
    let Some(encoded) = value
        .to_str()
        .ok()
        .and_then(|value| value.strip_prefix("Basic "))
    else {
        return Ok(None);
    };
    let malformed = || {
        GatewayError::NotAuthenticated(
            "`authorization: Basic` is not base64 of `id:password`".to_owned(),
        )
    };
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| malformed())?;
    let text = String::from_utf8(decoded).map_err(|_| malformed())?;
    let (id, password) = text.split_once(':').ok_or_else(malformed)?;
    Ok(Some((id.to_owned(), password.to_owned())))
}

pub(crate) fn from_password(
    routes: &RoutingTable,
    (id, password): (String, String),
) -> Result<Principal, GatewayError> {
    // Compared as digests, so the time taken says nothing of the password.
    let matches = routes
        .system(&id)
        .and_then(|system| system.password.as_ref())
        .is_some_and(|expected| {
            Fingerprint::of(expected.as_bytes()) == Fingerprint::of(password.as_bytes())
        });
    if matches {
        Ok(Principal::System(id))
    } else {
        Err(GatewayError::NotAuthenticated(format!(
            "wrong senderId `{id}` or password (only a `[[system]]` with a `password` accepts one)"
        )))
    }
}

#[cfg(test)]
mod tests;
