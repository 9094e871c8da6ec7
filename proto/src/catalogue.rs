//! The catalogue of every `google.rpc.ErrorInfo.reason` the simulator returns,
//! keyed by [`Reason`]: its gRPC code, ШЭП-style code, retry advice and
//! meaning, in one exhaustive `match` ([`entry`]), so a new reason does not
//! compile until it is catalogued. The gateway's `into_status`, the
//! registries' and the НУЦ's servers all take their codes from here;
//! `shep errors` prints it and docs/ERRORS.md holds the same tables.

use std::collections::HashMap;

use tonic_types::{ErrorDetails, StatusExt as _};

use crate::envelope::v1::Reason;

/// The `google.rpc.ErrorInfo.domain` of every refusal of the simulator.
pub const ERROR_DOMAIN: &str = "shep.kz";

/// A gRPC status code with the numbers of `google.rpc.Code`, free of any
/// transport type: domain errors carry one, and only the edge turns it into a
/// `tonic::Code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum GrpcCode {
    Ok = 0,
    Cancelled = 1,
    Unknown = 2,
    InvalidArgument = 3,
    DeadlineExceeded = 4,
    NotFound = 5,
    AlreadyExists = 6,
    PermissionDenied = 7,
    ResourceExhausted = 8,
    FailedPrecondition = 9,
    Aborted = 10,
    OutOfRange = 11,
    Unimplemented = 12,
    Internal = 13,
    Unavailable = 14,
    DataLoss = 15,
    Unauthenticated = 16,
}

impl GrpcCode {
    /// Every code, in number order.
    pub const ALL: [Self; 17] = [
        Self::Ok,
        Self::Cancelled,
        Self::Unknown,
        Self::InvalidArgument,
        Self::DeadlineExceeded,
        Self::NotFound,
        Self::AlreadyExists,
        Self::PermissionDenied,
        Self::ResourceExhausted,
        Self::FailedPrecondition,
        Self::Aborted,
        Self::OutOfRange,
        Self::Unimplemented,
        Self::Internal,
        Self::Unavailable,
        Self::DataLoss,
        Self::Unauthenticated,
    ];

    /// The canonical upper-case name, as the gRPC specs write it.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Ok => "OK",
            Self::Cancelled => "CANCELLED",
            Self::Unknown => "UNKNOWN",
            Self::InvalidArgument => "INVALID_ARGUMENT",
            Self::DeadlineExceeded => "DEADLINE_EXCEEDED",
            Self::NotFound => "NOT_FOUND",
            Self::AlreadyExists => "ALREADY_EXISTS",
            Self::PermissionDenied => "PERMISSION_DENIED",
            Self::ResourceExhausted => "RESOURCE_EXHAUSTED",
            Self::FailedPrecondition => "FAILED_PRECONDITION",
            Self::Aborted => "ABORTED",
            Self::OutOfRange => "OUT_OF_RANGE",
            Self::Unimplemented => "UNIMPLEMENTED",
            Self::Internal => "INTERNAL",
            Self::Unavailable => "UNAVAILABLE",
            Self::DataLoss => "DATA_LOSS",
            Self::Unauthenticated => "UNAUTHENTICATED",
        }
    }

    /// The code named `name` in any case (`UNAVAILABLE`, `not_found`).
    pub fn from_name(name: &str) -> Option<Self> {
        let name = name.trim();
        Self::ALL
            .into_iter()
            .find(|code| code.name().eq_ignore_ascii_case(name))
    }

    /// The code with `number`, if it is one.
    pub fn from_number(number: i32) -> Option<Self> {
        usize::try_from(number)
            .ok()
            .and_then(|index| Self::ALL.get(index).copied())
    }

    /// The code's number, as on the wire.
    pub const fn number(self) -> i32 {
        self as i32
    }
}

impl From<GrpcCode> for tonic::Code {
    fn from(code: GrpcCode) -> Self {
        tonic::Code::from_i32(code.number())
    }
}

impl From<tonic::Code> for GrpcCode {
    fn from(code: tonic::Code) -> Self {
        Self::from_number(code as i32).unwrap_or(Self::Unknown)
    }
}

/// The canonical upper-case name of a gRPC code (`GrpcCode` or `tonic::Code`).
pub fn code_name(code: impl Into<GrpcCode>) -> &'static str {
    code.into().name()
}

/// What a client should do after an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Send the same request again at once.
    Retry,
    /// Send the same request again after a growing pause.
    RetryAfterBackoff,
    /// The answer is final for this request: sending it again changes nothing.
    DoNotRetry,
    /// The request is wrong: change it (fields, signature, credential), then send it.
    FixAndResend,
    /// As the gRPC code implies ([`Retry::for_code`]): for reasons whose code varies.
    AsCodeImplies,
}

impl Retry {
    /// The advice's name in the table and in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Retry => "retry",
            Self::RetryAfterBackoff => "retry-after-backoff",
            Self::DoNotRetry => "do-not-retry",
            Self::FixAndResend => "fix-and-resend",
            Self::AsCodeImplies => "as the code implies",
        }
    }

    /// The advice a bare gRPC code implies, for statuses without a catalogued
    /// reason (an injected fault, the gRPC layer itself).
    pub fn for_code(code: impl Into<GrpcCode>) -> Self {
        match code.into() {
            GrpcCode::Ok => Self::DoNotRetry,
            GrpcCode::Aborted => Self::Retry,
            GrpcCode::Unavailable
            | GrpcCode::DeadlineExceeded
            | GrpcCode::ResourceExhausted
            | GrpcCode::Internal
            | GrpcCode::Unknown
            | GrpcCode::Cancelled => Self::RetryAfterBackoff,
            GrpcCode::InvalidArgument
            | GrpcCode::FailedPrecondition
            | GrpcCode::OutOfRange
            | GrpcCode::Unauthenticated
            | GrpcCode::PermissionDenied
            | GrpcCode::Unimplemented => Self::FixAndResend,
            GrpcCode::NotFound | GrpcCode::AlreadyExists | GrpcCode::DataLoss => Self::DoNotRetry,
        }
    }
}

/// Where in the simulator a reason comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Area {
    /// The envelope checks of `Call`, `Submit` and `Provider.Report`: format,
    /// signature, certificate, identity, idempotency.
    Checks,
    /// The routing table: the service, the sender's rights, the provider.
    Routing,
    /// ГБД ФЛ, ГБД ЮЛ, ЕНИС: through the gateway and `shep.registry.v1` served alone.
    Registries,
    /// The provider side: `Subscribe`, `GetMessages`, `Acknowledge`, `Report`.
    Delivery,
    /// The consumer's queries: `GetStatus`, `History`, `Watch`.
    Status,
    /// The НУЦ mock: `shep.nuc.v1.Nuc` and the revocation check.
    Nuc,
    /// `shep.admin.v1.Admin` and the registries' `RegistryAdmin`.
    Admin,
    /// Fault injection.
    Faults,
    /// Any RPC.
    Any,
}

impl Area {
    /// The area's name in the table and in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Checks => "checks",
            Self::Routing => "routing",
            Self::Registries => "registries",
            Self::Delivery => "delivery",
            Self::Status => "status",
            Self::Nuc => "НУЦ",
            Self::Admin => "admin",
            Self::Faults => "faults",
            Self::Any => "any",
        }
    }
}

/// One reason of the catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CatalogueEntry {
    /// The reason; its name is `google.rpc.ErrorInfo.reason`.
    pub reason: Reason,
    /// The gRPC code; `None` where the code varies (set by an injected fault).
    pub code: Option<GrpcCode>,
    /// `metadata["shep_code"]`: the nearest ШЭП code (ANCHORS.md §1.5), where one is known.
    pub shep_code: Option<&'static str>,
    pub retry: Retry,
    /// Where it comes from.
    pub areas: &'static [Area],
    /// What it means, in one line.
    pub meaning: &'static str,
}

impl CatalogueEntry {
    /// `google.rpc.ErrorInfo.reason`, e.g. `SIGNATURE_INVALID`.
    pub fn name(&self) -> &'static str {
        self.reason.as_str_name()
    }
}

/// The line before the generated tables in docs/ERRORS.md.
pub const TABLE_BEGIN: &str =
    "<!-- BEGIN generated by `shep errors --format markdown`; do not edit -->";
/// The line after them.
pub const TABLE_END: &str = "<!-- END generated -->";

/// The reason a fault-injection rule puts on the errors it makes up.
pub const INJECTED_FAULT: &str = "INJECTED_FAULT";

use Area::*;

/// A reason with a fixed code.
const fn fixed(
    reason: Reason,
    code: GrpcCode,
    shep_code: Option<&'static str>,
    retry: Retry,
    areas: &'static [Area],
    meaning: &'static str,
) -> CatalogueEntry {
    CatalogueEntry {
        reason,
        code: Some(code),
        shep_code,
        retry,
        areas,
        meaning,
    }
}

/// The catalogue entry of `reason`: the one place a reason's code, ШЭП code,
/// advice and meaning are written.
pub const fn entry(reason: Reason) -> CatalogueEntry {
    use GrpcCode as C;
    match reason {
        // The envelope's format.
        Reason::MalformedBody => fixed(
            reason,
            C::InvalidArgument,
            Some("SCE001"),
            Retry::FixAndResend,
            &[Checks],
            "`body` is not a valid serialized `shep.envelope.v1.Body`",
        ),
        Reason::InvalidField => fixed(
            reason,
            C::InvalidArgument,
            Some("SCE001"),
            Retry::FixAndResend,
            &[Checks, Routing, Registries, Delivery, Status, Nuc, Admin],
            "a field is missing or malformed; `metadata.field` names it (`route_id`, `page_token`, `toml`, `fixtures`, …)",
        ),
        Reason::InvalidMessageId => fixed(
            reason,
            C::InvalidArgument,
            Some("SCE001"),
            Retry::FixAndResend,
            &[Checks, Delivery, Status],
            "`message_id` (or another id) is not a UUID; `metadata.field` names it",
        ),
        Reason::InvalidSubject => fixed(
            reason,
            C::InvalidArgument,
            None,
            Retry::FixAndResend,
            &[Checks, Registries, Status],
            "the IIN or BIN fails its structure or check digit",
        ),
        Reason::MessageDateSkew => fixed(
            reason,
            C::InvalidArgument,
            None,
            Retry::FixAndResend,
            &[Checks],
            "`message_date` is further from the gateway clock than `checks.message_date_skew_secs`",
        ),
        // The signature.
        Reason::NotSigned => fixed(
            reason,
            C::Unauthenticated,
            Some("SCE017"),
            Retry::FixAndResend,
            &[Checks],
            "the envelope has no signature",
        ),
        Reason::MalformedSignature => fixed(
            reason,
            C::InvalidArgument,
            Some("SCE016"),
            Retry::FixAndResend,
            &[Checks],
            "the signature or its certificate cannot be parsed, or the algorithm is unknown or does not match the key",
        ),
        Reason::UnknownIssuer => fixed(
            reason,
            C::Unauthenticated,
            Some("SCE016"),
            Retry::FixAndResend,
            &[Checks],
            "the certificate does not chain to a trusted НУЦ anchor",
        ),
        Reason::CertificateNotYetValid => fixed(
            reason,
            C::Unauthenticated,
            Some("SCE015"),
            Retry::FixAndResend,
            &[Checks],
            "the certificate is not yet valid at `message_date`",
        ),
        Reason::CertificateExpired => fixed(
            reason,
            C::Unauthenticated,
            Some("SCE015"),
            Retry::FixAndResend,
            &[Checks],
            "the certificate has expired at `message_date`",
        ),
        Reason::CertificateRevoked => fixed(
            reason,
            C::Unauthenticated,
            Some("SCE015"),
            Retry::FixAndResend,
            &[Checks],
            "the НУЦ revoked the certificate (the message gives when and why): sign with another",
        ),
        Reason::WrongKeyUsage => fixed(
            reason,
            C::Unauthenticated,
            Some("SCE016"),
            Retry::FixAndResend,
            &[Checks],
            "the certificate's key usage does not allow signing (an authentication key, a CA)",
        ),
        Reason::SignatureInvalid => fixed(
            reason,
            C::Unauthenticated,
            Some("SCE016"),
            Retry::FixAndResend,
            &[Checks],
            "the signature does not verify over the `body` bytes as sent",
        ),
        Reason::IdentityMismatch => fixed(
            reason,
            C::PermissionDenied,
            Some("SCE016"),
            Retry::FixAndResend,
            &[Checks, Delivery],
            "the signer is not the applicant (portal) or not an operator of the sending system",
        ),
        Reason::DuplicateMessage => fixed(
            reason,
            C::AlreadyExists,
            None,
            Retry::FixAndResend,
            &[Checks],
            "the `message_id` is already used, with another body or by another sender (message ids are unique across the gateway): a new message needs a new id",
        ),
        // Routing.
        Reason::UnknownService => fixed(
            reason,
            C::NotFound,
            Some("SCE004"),
            Retry::FixAndResend,
            &[Routing, Admin],
            "no route for `service_id`",
        ),
        Reason::SenderNotAllowed => fixed(
            reason,
            C::PermissionDenied,
            None,
            Retry::DoNotRetry,
            &[Routing],
            "the sending system is unknown or may not call this service",
        ),
        Reason::ChannelNotAllowed => fixed(
            reason,
            C::PermissionDenied,
            None,
            Retry::DoNotRetry,
            &[Routing],
            "the channel is not allowed for this service",
        ),
        Reason::WrongServiceKind => fixed(
            reason,
            C::InvalidArgument,
            None,
            Retry::FixAndResend,
            &[Routing],
            "a lookup sent to `Submit` or an application to `Call`: use the other RPC",
        ),
        Reason::NoProviderForRegion => fixed(
            reason,
            C::FailedPrecondition,
            None,
            Retry::DoNotRetry,
            &[Routing],
            "no provider of the service serves the applicant's region (КАТО from ГБД ФЛ or ГБД ЮЛ)",
        ),
        // Registries.
        Reason::NoData => fixed(
            reason,
            C::NotFound,
            None,
            Retry::DoNotRetry,
            &[Registries],
            "the registry has no data about the subject or the power of attorney («нет данных»)",
        ),
        Reason::RegistryUnavailable => fixed(
            reason,
            C::Unavailable,
            None,
            Retry::RetryAfterBackoff,
            &[Registries, Nuc],
            "a registry (or the remote НУЦ) could not be reached or failed",
        ),
        Reason::PowerOfAttorneyInvalid => fixed(
            reason,
            C::PermissionDenied,
            None,
            Retry::DoNotRetry,
            &[Registries],
            "ЕНИС holds the power of attorney but it does not allow the request; `metadata.problem` says why",
        ),
        // The application's life.
        Reason::MessageNotFound => fixed(
            reason,
            C::NotFound,
            None,
            Retry::DoNotRetry,
            &[Status, Delivery, Nuc],
            "unknown message, application, or (НУЦ) certificate serial",
        ),
        Reason::InvalidStatusTransition => fixed(
            reason,
            C::FailedPrecondition,
            None,
            Retry::DoNotRetry,
            &[Delivery],
            "a report's status is not allowed after the application's current status",
        ),
        Reason::ProviderNotAllowed => fixed(
            reason,
            C::PermissionDenied,
            None,
            Retry::DoNotRetry,
            &[Delivery],
            "not a provider system of the routing table, or the application is not routed to it",
        ),
        Reason::ProtocolViolation => fixed(
            reason,
            C::FailedPrecondition,
            None,
            Retry::FixAndResend,
            &[Delivery],
            "the `Subscribe` stream did not start with a `Hello`, or sent something other than an `Ack` after it",
        ),
        // Credentials and limits.
        Reason::Unauthenticated => fixed(
            reason,
            C::Unauthenticated,
            None,
            Retry::FixAndResend,
            &[Admin, Nuc, Registries],
            "missing or wrong admin bearer token (`Admin`, `Nuc.Issue`/`Revoke`, `RegistryAdmin`)",
        ),
        Reason::TooLarge => fixed(
            reason,
            C::ResourceExhausted,
            None,
            Retry::FixAndResend,
            &[Admin],
            "a JSON body over the 4 MiB limit of the Admin API's HTTP face (HTTP 413); over gRPC a message that large is `OUT_OF_RANGE`, from the gRPC layer (below)",
        ),
        Reason::Internal => fixed(
            reason,
            C::Internal,
            Some("SCE909"),
            Retry::RetryAfterBackoff,
            &[Any],
            "the gateway failed unexpectedly; the detail is in its log, not in the message",
        ),
        Reason::DeadlineExceeded => fixed(
            reason,
            C::DeadlineExceeded,
            None,
            Retry::RetryAfterBackoff,
            &[Registries, Faults],
            "the caller's deadline (`grpc-timeout`) passed while the gateway waited (a registry, a delay or hang fault); the gateway answers just before it",
        ),
        Reason::ToolkitNotFound => fixed(
            reason,
            C::NotFound,
            None,
            Retry::FixAndResend,
            &[Admin],
            "the admin API has no fault, scenario or fixture document by that name (in the caller's session)",
        ),
        Reason::Overloaded => fixed(
            reason,
            C::Unavailable,
            None,
            Retry::RetryAfterBackoff,
            &[Any],
            "the gateway is working on as many envelopes as `limits.max_concurrent` allows and refused this one at once",
        ),
        Reason::InjectedFault => CatalogueEntry {
            reason,
            code: None,
            shep_code: None,
            retry: Retry::AsCodeImplies,
            areas: &[Faults],
            meaning: "an error a fault made up (`metadata.fault_id` names it); its code is the fault's, and a fault may set its own reason instead",
        },
        // The proto3 zero value: never sent, so not in the table.
        Reason::Unspecified => fixed(
            reason,
            C::Internal,
            None,
            Retry::RetryAfterBackoff,
            &[],
            "no reason given",
        ),
    }
}

/// The order of the table: grouped by where the reasons arise. Every reason
/// of the contract but the zero value is here once (a test checks it).
const ORDER: [Reason; 34] = [
    Reason::MalformedBody,
    Reason::InvalidField,
    Reason::InvalidMessageId,
    Reason::InvalidSubject,
    Reason::MessageDateSkew,
    Reason::NotSigned,
    Reason::MalformedSignature,
    Reason::UnknownIssuer,
    Reason::CertificateNotYetValid,
    Reason::CertificateExpired,
    Reason::CertificateRevoked,
    Reason::WrongKeyUsage,
    Reason::SignatureInvalid,
    Reason::IdentityMismatch,
    Reason::DuplicateMessage,
    Reason::UnknownService,
    Reason::SenderNotAllowed,
    Reason::ChannelNotAllowed,
    Reason::WrongServiceKind,
    Reason::NoProviderForRegion,
    Reason::NoData,
    Reason::RegistryUnavailable,
    Reason::PowerOfAttorneyInvalid,
    Reason::MessageNotFound,
    Reason::InvalidStatusTransition,
    Reason::ProviderNotAllowed,
    Reason::ProtocolViolation,
    Reason::Unauthenticated,
    Reason::TooLarge,
    Reason::Internal,
    Reason::DeadlineExceeded,
    Reason::ToolkitNotFound,
    Reason::Overloaded,
    Reason::InjectedFault,
];

static CATALOGUE: [CatalogueEntry; ORDER.len()] = {
    let mut entries = [entry(Reason::Unspecified); ORDER.len()];
    let mut index = 0;
    while index < ORDER.len() {
        entries[index] = entry(ORDER[index]);
        index += 1;
    }
    entries
};

/// Every reason the simulator returns, grouped by where it arises.
pub fn catalogue() -> &'static [CatalogueEntry] {
    &CATALOGUE
}

/// The catalogue entry of the reason named `reason` (`SIGNATURE_INVALID`).
pub fn lookup(reason: &str) -> Option<&'static CatalogueEntry> {
    CATALOGUE.iter().find(|entry| entry.name() == reason)
}

/// A status the gRPC layer returns by itself: it carries no `ErrorInfo`, so
/// a client treats it by its code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransportStatus {
    pub code: GrpcCode,
    /// When a client meets it.
    pub when: &'static str,
}

impl TransportStatus {
    /// What its code implies.
    pub fn retry(&self) -> Retry {
        Retry::for_code(self.code)
    }
}

static TRANSPORT: &[TransportStatus] = &[
    TransportStatus {
        code: GrpcCode::Unimplemented,
        when: "the server has no such method",
    },
    TransportStatus {
        code: GrpcCode::NotFound,
        when: "`grpc.health.v1.Health` does not know the service name asked about",
    },
    TransportStatus {
        code: GrpcCode::OutOfRange,
        when: "a message is larger than the receiver's limit: 4 MiB (tonic's default) for every request the gateway, the registries and the НУЦ decode",
    },
    TransportStatus {
        code: GrpcCode::Internal,
        when: "the request is not a valid protobuf message of the method's type",
    },
    TransportStatus {
        code: GrpcCode::DeadlineExceeded,
        when: "the client's deadline passed (its own gRPC library says so)",
    },
    TransportStatus {
        code: GrpcCode::Cancelled,
        when: "the client cancelled the call",
    },
    TransportStatus {
        code: GrpcCode::Unavailable,
        when: "the connection could not be made or broke",
    },
];

/// The statuses of the gRPC layer itself, without a reason.
pub fn transport_statuses() -> &'static [TransportStatus] {
    TRANSPORT
}

/// The catalogue as the Markdown tables of docs/ERRORS.md: the reasons, then
/// the statuses of the gRPC layer.
pub fn catalogue_markdown() -> String {
    let mut table = String::from(
        "| reason | gRPC code | ШЭП code | retry | from | meaning |\n\
         | --- | --- | --- | --- | --- | --- |\n",
    );
    for entry in &CATALOGUE {
        let areas: Vec<&str> = entry.areas.iter().map(|area| area.as_str()).collect();
        table.push_str(&format!(
            "| `{}` | {} | {} | {} | {} | {} |\n",
            entry.name(),
            entry.code.map_or("set by the fault", GrpcCode::name),
            entry.shep_code.unwrap_or("—"),
            entry.retry.as_str(),
            areas.join(", "),
            entry.meaning,
        ));
    }
    table.push_str(
        "\n| gRPC code, no reason | retry | when the gRPC layer answers it |\n\
         | --- | --- | --- |\n",
    );
    for status in TRANSPORT {
        table.push_str(&format!(
            "| {} | {} | {} |\n",
            status.code.name(),
            status.retry().as_str(),
            status.when,
        ));
    }
    table
}

/// The catalogue as JSON: an array of objects, `code` null where it varies.
pub fn catalogue_json() -> serde_json::Value {
    CATALOGUE
        .iter()
        .map(|entry| {
            serde_json::json!({
                "reason": entry.name(),
                "code": entry.code.map(GrpcCode::name),
                "code_number": entry.code.map(GrpcCode::number),
                "shep_code": entry.shep_code,
                "retry": entry.retry.as_str(),
                "areas": entry.areas.iter().map(|area| area.as_str()).collect::<Vec<_>>(),
                "meaning": entry.meaning,
            })
        })
        .collect()
}

/// A refusal as a gRPC status: `code`, `message`, and in its details a
/// `google.rpc.ErrorInfo` with `reason`, domain [`ERROR_DOMAIN`] and
/// `metadata`. For reasons the catalogue does not fix the code of (an
/// injected fault); [`refusal`] for the rest.
pub fn error_status(
    code: GrpcCode,
    reason: &str,
    message: impl Into<String>,
    metadata: HashMap<String, String>,
) -> tonic::Status {
    tonic::Status::with_error_details(
        code.into(),
        message,
        ErrorDetails::with_error_info(reason, ERROR_DOMAIN, metadata),
    )
}

/// The status of a catalogued refusal: the catalogue's code for `reason`, and
/// its ШЭП code as `metadata["shep_code"]` where it has one.
pub fn refusal(
    reason: Reason,
    message: impl Into<String>,
    mut metadata: HashMap<String, String>,
) -> tonic::Status {
    let entry = entry(reason);
    if let Some(shep_code) = entry.shep_code {
        metadata.insert("shep_code".to_owned(), shep_code.to_owned());
    }
    // Only INJECTED_FAULT has no fixed code, and a fault brings its own
    // through `error_status`; UNAVAILABLE is a fault's default.
    let code = entry.code.unwrap_or(GrpcCode::Unavailable);
    error_status(code, reason.as_str_name(), message, metadata)
}

#[cfg(test)]
mod tests;
