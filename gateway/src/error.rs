//! The gateway's domain errors and their one mapping to gRPC statuses.
//!
//! Every refusal carries a stable `shep.envelope.v1.Reason` as
//! `google.rpc.ErrorInfo.reason` (domain `shep.kz`) in the status details, so a
//! client in any language can branch on it without parsing messages. The
//! reason's code and ШЭП code come from the catalogue in `shep_proto`, which
//! the registries' and the НУЦ's servers use too.

pub(crate) mod storage;

use std::collections::HashMap;
use std::error::Error;

use shep_nuc::verify::VerifyError;
use shep_proto::catalogue;
use shep_proto::envelope::v1::Reason;
use tonic::Status;

use storage::StorageError;

pub use shep_proto::catalogue::{
    Area, CatalogueEntry, ERROR_DOMAIN, GrpcCode, INJECTED_FAULT, Retry, TABLE_BEGIN, TABLE_END,
    TransportStatus, catalogue, catalogue_json, catalogue_markdown, code_name, lookup,
    transport_statuses,
};

/// What is wrong with a power of attorney that ЕНИС knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttorneyProblem {
    /// Revoked by the principal.
    Revoked,
    /// Past its `valid_until`.
    Expired,
    /// Its `issue_date` is after the message date.
    NotYetValid,
    /// Limited to services that do not include this one.
    ServiceNotCovered,
    /// Given by someone other than the applicant.
    PrincipalMismatch,
    /// Names a representative other than the one the envelope gives.
    RepresentativeMismatch,
}

impl AttorneyProblem {
    /// The value of `metadata["problem"]`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Revoked => "REVOKED",
            Self::Expired => "EXPIRED",
            Self::NotYetValid => "NOT_YET_VALID",
            Self::ServiceNotCovered => "SERVICE_NOT_COVERED",
            Self::PrincipalMismatch => "PRINCIPAL_MISMATCH",
            Self::RepresentativeMismatch => "REPRESENTATIVE_MISMATCH",
        }
    }
}

/// The error a fired fault answers with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InjectedError {
    /// Turned into a `tonic::Code` at the edge (`into_status`).
    pub code: GrpcCode,
    pub message: String,
    pub reason: String,
    pub metadata: Vec<(String, String)>,
}

impl InjectedError {
    /// `UNAVAILABLE` with reason `INJECTED_FAULT`, naming the fault: what a
    /// hang without a deadline, a cut stream or a dropped connection answers.
    pub fn unavailable(message: String, fault_id: &str) -> Self {
        Self {
            code: GrpcCode::Unavailable,
            message,
            reason: INJECTED_FAULT.to_owned(),
            metadata: vec![("fault_id".to_owned(), fault_id.to_owned())],
        }
    }
}

/// Why the gateway refused or failed a request.
#[derive(Debug, Clone, thiserror::Error)]
pub enum GatewayError {
    #[error("body is not a valid `shep.envelope.v1.Body`: {0}")]
    MalformedBody(String),
    #[error("`{field}` {problem}")]
    InvalidField {
        field: &'static str,
        problem: String,
    },
    #[error("`{field}` must be a UUID, got `{value}`")]
    InvalidMessageId { field: &'static str, value: String },
    #[error("subject `{value}` is not a valid {kind}: {problem}")]
    InvalidSubject {
        kind: &'static str,
        value: String,
        problem: String,
    },
    #[error("the envelope is not signed")]
    NotSigned,
    #[error("malformed signature: {0}")]
    MalformedSignature(String),
    #[error("the signer certificate does not chain to a trusted НУЦ anchor")]
    UnknownIssuer,
    #[error("the signer certificate is not yet valid at signing time")]
    CertificateNotYetValid,
    #[error("the signer certificate has expired at signing time")]
    CertificateExpired,
    #[error("the signer certificate was revoked on {at} ({reason})")]
    CertificateRevoked { at: String, reason: &'static str },
    #[error("the signer certificate's key usage does not allow signing: {0}")]
    WrongKeyUsage(String),
    #[error("the signature does not verify over the body")]
    SignatureInvalid,
    #[error("the signer's {kind} `{found}` does not match `{expected}`")]
    IdentityMismatch {
        kind: &'static str,
        expected: String,
        found: String,
    },
    #[error(
        "`message_date` is {skew_secs} s away from the gateway clock (allowed {allowed_secs} s)"
    )]
    MessageDateSkew { skew_secs: i64, allowed_secs: u64 },
    #[error("no route for service `{0}`")]
    UnknownService(String),
    #[error("sender `{sender}` is not allowed to call service `{service}`")]
    SenderNotAllowed { sender: String, service: String },
    #[error("channel `{channel}` is not allowed for service `{service}`")]
    ChannelNotAllowed { channel: String, service: String },
    #[error("service `{service}` is a {kind} service; use `{rpc}`")]
    WrongServiceKind {
        service: String,
        kind: &'static str,
        rpc: &'static str,
    },
    #[error("no provider of service `{service}` serves region `{region}`")]
    NoProviderForRegion { service: String, region: String },
    #[error("{0}")]
    NoData(String),
    #[error("registry `{registry}` is unavailable: {message}")]
    RegistryUnavailable { registry: String, message: String },
    #[error("power of attorney `{number}` does not allow this request: {detail}")]
    PowerOfAttorneyInvalid {
        number: String,
        problem: AttorneyProblem,
        detail: String,
    },
    #[error(
        "message `{message_id}` (from `{sender}`) is already in use with another body or by another sender: message ids are unique across the gateway"
    )]
    DuplicateMessage { message_id: String, sender: String },
    #[error("message `{0}` not found")]
    MessageNotFound(String),
    #[error("status `{to}` is not allowed after `{from}`: {rule}")]
    InvalidStatusTransition {
        from: String,
        to: String,
        rule: String,
    },
    #[error("provider `{provider}` may not act on message `{message_id}`")]
    ProviderNotAllowed {
        provider: String,
        message_id: String,
    },
    #[error("protocol violation: {0}")]
    ProtocolViolation(String),
    #[error("missing or wrong admin credential")]
    Unauthenticated,
    #[error("{0}")]
    NotAuthenticated(String),
    #[error("{authenticated} may not act as {acting_as}: {what}")]
    AccessDenied {
        /// Who the transport proved the caller is (`system pep`, `person 850315301235`).
        authenticated: String,
        /// Whom the call acts as or reads about.
        acting_as: String,
        what: &'static str,
    },
    #[error("{what} is {size} bytes, more than the {limit}-byte limit")]
    TooLarge {
        what: &'static str,
        size: usize,
        limit: usize,
    },
    #[error("internal error: {0}")]
    Internal(String),
    /// The storage backend failed: a change was not made durable (the
    /// caller gets no receipt and may send again, idempotently) or a read
    /// did not complete.
    #[error("the storage backend failed")]
    Storage(#[source] StorageError),
    /// A fault attached through the admin API fired.
    #[error("{}", .0.message)]
    Injected(InjectedError),
    #[error("the caller's deadline passed while waiting for {0}")]
    DeadlineExceeded(String),
    #[error("{0}")]
    ToolkitNotFound(String),
    #[error("the gateway is at its limit of envelopes in progress; send again later")]
    Overloaded,
    #[error(
        "the queue of provider `{provider}` holds its limit of {limit} requests; send again later"
    )]
    QueueFull {
        provider: String,
        limit: usize,
        /// How long the client should wait before it sends again.
        retry_after: std::time::Duration,
    },
}

impl GatewayError {
    /// The stable machine-readable reason.
    pub fn reason(&self) -> Reason {
        match self {
            Self::MalformedBody(_) => Reason::MalformedBody,
            Self::InvalidField { .. } => Reason::InvalidField,
            Self::InvalidMessageId { .. } => Reason::InvalidMessageId,
            Self::InvalidSubject { .. } => Reason::InvalidSubject,
            Self::NotSigned => Reason::NotSigned,
            Self::MalformedSignature(_) => Reason::MalformedSignature,
            Self::UnknownIssuer => Reason::UnknownIssuer,
            Self::CertificateNotYetValid => Reason::CertificateNotYetValid,
            Self::CertificateExpired => Reason::CertificateExpired,
            Self::CertificateRevoked { .. } => Reason::CertificateRevoked,
            Self::WrongKeyUsage(_) => Reason::WrongKeyUsage,
            Self::SignatureInvalid => Reason::SignatureInvalid,
            Self::IdentityMismatch { .. } => Reason::IdentityMismatch,
            Self::MessageDateSkew { .. } => Reason::MessageDateSkew,
            Self::UnknownService(_) => Reason::UnknownService,
            Self::SenderNotAllowed { .. } => Reason::SenderNotAllowed,
            Self::ChannelNotAllowed { .. } => Reason::ChannelNotAllowed,
            Self::WrongServiceKind { .. } => Reason::WrongServiceKind,
            Self::NoProviderForRegion { .. } => Reason::NoProviderForRegion,
            Self::NoData(_) => Reason::NoData,
            Self::RegistryUnavailable { .. } => Reason::RegistryUnavailable,
            Self::PowerOfAttorneyInvalid { .. } => Reason::PowerOfAttorneyInvalid,
            Self::DuplicateMessage { .. } => Reason::DuplicateMessage,
            Self::MessageNotFound(_) => Reason::MessageNotFound,
            Self::InvalidStatusTransition { .. } => Reason::InvalidStatusTransition,
            Self::ProviderNotAllowed { .. } => Reason::ProviderNotAllowed,
            Self::ProtocolViolation(_) => Reason::ProtocolViolation,
            Self::Unauthenticated => Reason::Unauthenticated,
            Self::NotAuthenticated(_) => Reason::NotAuthenticated,
            Self::AccessDenied { .. } => Reason::AccessDenied,
            Self::TooLarge { .. } => Reason::TooLarge,
            Self::Storage(StorageError::Unavailable { .. }) => Reason::StorageUnavailable,
            Self::Internal(_) | Self::Storage(_) => Reason::Internal,
            Self::Injected(_) => Reason::InjectedFault,
            Self::DeadlineExceeded(_) => Reason::DeadlineExceeded,
            Self::ToolkitNotFound(_) => Reason::ToolkitNotFound,
            Self::Overloaded => Reason::Overloaded,
            Self::QueueFull { .. } => Reason::QueueFull,
        }
    }

    /// The gRPC status code: the catalogue's for the reason, a fault's own.
    pub fn code(&self) -> GrpcCode {
        match self {
            Self::Injected(injected) => injected.code,
            // Only `Injected` has a reason without a fixed code.
            other => catalogue::entry(other.reason())
                .code
                .unwrap_or(GrpcCode::Unavailable),
        }
    }

    /// The nearest ШЭП-style error code, where one is known (ANCHORS.md §1.5).
    pub fn shep_code(&self) -> Option<&'static str> {
        catalogue::entry(self.reason()).shep_code
    }
}

/// An application that storage does not hold is the caller's
/// `MESSAGE_NOT_FOUND`; any other failure is internal and keeps its cause.
impl From<StorageError> for GatewayError {
    fn from(error: StorageError) -> Self {
        match error {
            StorageError::NotFound { message_id } => Self::MessageNotFound(message_id),
            other => Self::Storage(other),
        }
    }
}

/// How long a caller refused with OVERLOADED waits before sending again.
const OVERLOAD_RETRY: std::time::Duration = std::time::Duration::from_millis(200);

/// The error and its causes, outermost first, as one line for the log.
pub(crate) fn with_causes(error: &dyn Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Converts a domain error into the status every handler returns. Internal
/// errors are logged here once, with their causes, and answered with a
/// generic message.
pub fn into_status(error: GatewayError) -> Status {
    let reason = error.reason();
    let message = if reason == Reason::Internal {
        tracing::error!(error = %with_causes(&error), "internal error");
        "internal error; see the gateway log".to_owned()
    } else if reason == Reason::StorageUnavailable {
        // What could not be reached, and why: the operator's next step.
        with_causes(&error)
    } else {
        error.to_string()
    };
    let mut metadata = HashMap::new();
    match &error {
        GatewayError::Injected(injected) => {
            // A fault speaks as the server it stands in for: its own code and reason.
            let metadata = injected.metadata.iter().cloned().collect();
            return catalogue::error_status(injected.code, &injected.reason, message, metadata);
        }
        GatewayError::InvalidField { field, .. } | GatewayError::InvalidMessageId { field, .. } => {
            metadata.insert("field".to_owned(), (*field).to_owned());
        }
        GatewayError::TooLarge { size, limit, .. } => {
            metadata.insert("limit".to_owned(), limit.to_string());
            metadata.insert("size".to_owned(), size.to_string());
        }
        GatewayError::AccessDenied {
            authenticated,
            acting_as,
            ..
        } => {
            metadata.insert("authenticated".to_owned(), authenticated.clone());
            metadata.insert("acting_as".to_owned(), acting_as.clone());
        }
        GatewayError::Overloaded => {
            // The intake's limit: a short pause, as requests in flight finish fast.
            return refusal_with_retry(reason, message, metadata, OVERLOAD_RETRY);
        }
        GatewayError::QueueFull {
            provider,
            limit,
            retry_after,
        } => {
            metadata.insert("provider".to_owned(), provider.clone());
            metadata.insert("limit".to_owned(), limit.to_string());
            return refusal_with_retry(reason, message, metadata, *retry_after);
        }
        GatewayError::PowerOfAttorneyInvalid { problem, .. } => {
            metadata.insert("field".to_owned(), "power_of_attorney".to_owned());
            metadata.insert("problem".to_owned(), problem.as_str().to_owned());
        }
        _ => {}
    }
    catalogue::refusal(reason, message, metadata)
}

/// A catalogued refusal that asks the client to wait `retry_after` before it
/// sends again: `catalogue::refusal` plus a `google.rpc.RetryInfo` detail and
/// `metadata["retry_after_ms"]`.
fn refusal_with_retry(
    reason: Reason,
    message: impl Into<String>,
    mut metadata: HashMap<String, String>,
    retry_after: std::time::Duration,
) -> tonic::Status {
    let entry = catalogue::entry(reason);
    if let Some(shep_code) = entry.shep_code {
        metadata.insert("shep_code".to_owned(), shep_code.to_owned());
    }
    metadata.insert(
        "retry_after_ms".to_owned(),
        retry_after.as_millis().to_string(),
    );
    let code = entry.code.unwrap_or(catalogue::GrpcCode::Unavailable);
    let mut details = tonic_types::ErrorDetails::with_error_info(
        reason.as_str_name(),
        catalogue::ERROR_DOMAIN,
        metadata,
    );
    details.set_retry_info(Some(retry_after));
    <Status as tonic_types::StatusExt>::with_error_details(code.into(), message, details)
}

/// The НУЦ's refusals as the gateway's, so `?` works in the checks. The
/// variants keep their shapes; a revocation's time is written as
/// notifications write dates.
impl From<VerifyError> for GatewayError {
    fn from(error: VerifyError) -> Self {
        match error {
            VerifyError::NotSigned => Self::NotSigned,
            VerifyError::UnknownAlgorithm(_)
            | VerifyError::EmptySignature
            | VerifyError::AlgorithmMismatch
            | VerifyError::BadCertificate(_)
            | VerifyError::UnreadableCertificate(_) => Self::MalformedSignature(error.to_string()),
            VerifyError::UnknownIssuer => Self::UnknownIssuer,
            VerifyError::NotYetValid => Self::CertificateNotYetValid,
            VerifyError::Expired => Self::CertificateExpired,
            VerifyError::WrongKeyUsage(problem) => Self::WrongKeyUsage(problem.to_owned()),
            VerifyError::SignatureInvalid => Self::SignatureInvalid,
            VerifyError::Revoked { at, reason } => Self::CertificateRevoked {
                at: crate::lifecycle::local_time(at),
                reason: reason.as_str(),
            },
            VerifyError::StatusUnavailable(_) => Self::RegistryUnavailable {
                // The id health and config give the НУЦ (`health::NUC_ID`).
                registry: "nuc".to_owned(),
                message: error.to_string(),
            },
        }
    }
}

impl From<GatewayError> for Status {
    fn from(error: GatewayError) -> Self {
        into_status(error)
    }
}

#[cfg(test)]
mod tests;
