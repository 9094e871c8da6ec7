//! The catalogue of every `google.rpc.ErrorInfo.reason` the simulator returns:
//! its gRPC code, ШЭП-style code, retry advice and meaning. `shep errors`
//! prints it and docs/ERRORS.md holds the same table; tests keep both in step
//! with [`into_status`](super::into_status) and the registries' statuses.

use tonic::Code;

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
    pub fn for_code(code: Code) -> Self {
        match code {
            Code::Ok => Self::DoNotRetry,
            Code::Aborted => Self::Retry,
            Code::Unavailable
            | Code::DeadlineExceeded
            | Code::ResourceExhausted
            | Code::Internal
            | Code::Unknown
            | Code::Cancelled => Self::RetryAfterBackoff,
            Code::InvalidArgument
            | Code::FailedPrecondition
            | Code::OutOfRange
            | Code::Unauthenticated
            | Code::PermissionDenied
            | Code::Unimplemented => Self::FixAndResend,
            Code::NotFound | Code::AlreadyExists | Code::DataLoss => Self::DoNotRetry,
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
    /// `google.rpc.ErrorInfo.reason`.
    pub reason: &'static str,
    /// The gRPC code; `None` where the code varies (set by an injected fault).
    pub code: Option<Code>,
    /// `metadata["shep_code"]`: the nearest ШЭП code (ANCHORS.md §1.5), where one is known.
    pub shep_code: Option<&'static str>,
    pub retry: Retry,
    /// Where it comes from.
    pub areas: &'static [Area],
    /// What it means, in one line.
    pub meaning: &'static str,
}

/// The canonical upper-case name of a gRPC code, as the gRPC specs write it.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// The line before the generated table in docs/ERRORS.md.
pub const TABLE_BEGIN: &str =
    "<!-- BEGIN generated by `shep errors --format markdown`; do not edit -->";
/// The line after it.
pub const TABLE_END: &str = "<!-- END generated -->";

/// The reason a fault-injection rule puts on the errors it makes up.
pub const INJECTED_FAULT: &str = "INJECTED_FAULT";

use Area::*;

const fn entry(
    reason: &'static str,
    code: Code,
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

static CATALOGUE: &[CatalogueEntry] = &[
    // The envelope's format.
    entry(
        "MALFORMED_BODY",
        Code::InvalidArgument,
        Some("SCE001"),
        Retry::FixAndResend,
        &[Checks],
        "`body` is not a valid serialized `shep.envelope.v1.Body`",
    ),
    entry(
        "INVALID_FIELD",
        Code::InvalidArgument,
        Some("SCE001"),
        Retry::FixAndResend,
        &[Checks, Routing, Registries, Delivery, Status, Nuc, Admin],
        "a field is missing or malformed; `metadata.field` names it (`route_id`, `page_token`, `toml`, `fixtures`, …)",
    ),
    entry(
        "INVALID_MESSAGE_ID",
        Code::InvalidArgument,
        Some("SCE001"),
        Retry::FixAndResend,
        &[Checks, Delivery, Status],
        "`message_id` (or another id) is not a UUID; `metadata.field` names it",
    ),
    entry(
        "INVALID_SUBJECT",
        Code::InvalidArgument,
        None,
        Retry::FixAndResend,
        &[Checks, Registries, Status],
        "the IIN or BIN fails its structure or check digit",
    ),
    entry(
        "MESSAGE_DATE_SKEW",
        Code::InvalidArgument,
        None,
        Retry::FixAndResend,
        &[Checks],
        "`message_date` is further from the gateway clock than `checks.message_date_skew_secs`",
    ),
    // The signature.
    entry(
        "NOT_SIGNED",
        Code::Unauthenticated,
        Some("SCE017"),
        Retry::FixAndResend,
        &[Checks],
        "the envelope has no signature",
    ),
    entry(
        "MALFORMED_SIGNATURE",
        Code::InvalidArgument,
        Some("SCE016"),
        Retry::FixAndResend,
        &[Checks],
        "the signature or its certificate cannot be parsed, or the algorithm is unknown or does not match the key",
    ),
    entry(
        "UNKNOWN_ISSUER",
        Code::Unauthenticated,
        Some("SCE016"),
        Retry::FixAndResend,
        &[Checks],
        "the certificate does not chain to a trusted НУЦ anchor",
    ),
    entry(
        "CERTIFICATE_NOT_YET_VALID",
        Code::Unauthenticated,
        Some("SCE015"),
        Retry::FixAndResend,
        &[Checks],
        "the certificate is not yet valid at `message_date`",
    ),
    entry(
        "CERTIFICATE_EXPIRED",
        Code::Unauthenticated,
        Some("SCE015"),
        Retry::FixAndResend,
        &[Checks],
        "the certificate has expired at `message_date`",
    ),
    entry(
        "CERTIFICATE_REVOKED",
        Code::Unauthenticated,
        Some("SCE015"),
        Retry::FixAndResend,
        &[Checks],
        "the НУЦ revoked the certificate (the message gives when and why): sign with another",
    ),
    entry(
        "WRONG_KEY_USAGE",
        Code::Unauthenticated,
        Some("SCE016"),
        Retry::FixAndResend,
        &[Checks],
        "the certificate's key usage does not allow signing (an authentication key, a CA)",
    ),
    entry(
        "SIGNATURE_INVALID",
        Code::Unauthenticated,
        Some("SCE016"),
        Retry::FixAndResend,
        &[Checks],
        "the signature does not verify over the `body` bytes as sent",
    ),
    entry(
        "IDENTITY_MISMATCH",
        Code::PermissionDenied,
        Some("SCE016"),
        Retry::FixAndResend,
        &[Checks, Delivery],
        "the signer is not the applicant (portal) or not an operator of the sending system",
    ),
    entry(
        "DUPLICATE_MESSAGE",
        Code::AlreadyExists,
        None,
        Retry::FixAndResend,
        &[Checks],
        "this sender already sent this `message_id` with another body: a new body needs a new id",
    ),
    // Routing.
    entry(
        "UNKNOWN_SERVICE",
        Code::NotFound,
        Some("SCE004"),
        Retry::FixAndResend,
        &[Routing, Admin],
        "no route for `service_id`",
    ),
    entry(
        "SENDER_NOT_ALLOWED",
        Code::PermissionDenied,
        None,
        Retry::DoNotRetry,
        &[Routing],
        "the sending system is unknown or may not call this service",
    ),
    entry(
        "CHANNEL_NOT_ALLOWED",
        Code::PermissionDenied,
        None,
        Retry::DoNotRetry,
        &[Routing],
        "the channel is not allowed for this service",
    ),
    entry(
        "WRONG_SERVICE_KIND",
        Code::InvalidArgument,
        None,
        Retry::FixAndResend,
        &[Routing],
        "a lookup sent to `Submit` or an application to `Call`: use the other RPC",
    ),
    entry(
        "NO_PROVIDER_FOR_REGION",
        Code::FailedPrecondition,
        None,
        Retry::DoNotRetry,
        &[Routing],
        "no provider of the service serves the applicant's region (КАТО from ГБД ФЛ or ГБД ЮЛ)",
    ),
    // Registries.
    entry(
        "NO_DATA",
        Code::NotFound,
        None,
        Retry::DoNotRetry,
        &[Registries],
        "the registry has no data about the subject or the power of attorney («нет данных»)",
    ),
    entry(
        "REGISTRY_UNAVAILABLE",
        Code::Unavailable,
        None,
        Retry::RetryAfterBackoff,
        &[Registries, Nuc],
        "a registry (or the remote НУЦ) could not be reached or failed",
    ),
    entry(
        "POWER_OF_ATTORNEY_INVALID",
        Code::PermissionDenied,
        None,
        Retry::DoNotRetry,
        &[Registries],
        "ЕНИС holds the power of attorney but it does not allow the request; `metadata.problem` says why",
    ),
    // The application's life.
    entry(
        "MESSAGE_NOT_FOUND",
        Code::NotFound,
        None,
        Retry::DoNotRetry,
        &[Status, Delivery, Nuc],
        "unknown message, application, or (НУЦ) certificate serial",
    ),
    entry(
        "INVALID_STATUS_TRANSITION",
        Code::FailedPrecondition,
        None,
        Retry::DoNotRetry,
        &[Delivery],
        "a report's status is not allowed after the application's current status",
    ),
    entry(
        "PROVIDER_NOT_ALLOWED",
        Code::PermissionDenied,
        None,
        Retry::DoNotRetry,
        &[Delivery],
        "not a provider system of the routing table, or the application is not routed to it",
    ),
    entry(
        "PROTOCOL_VIOLATION",
        Code::FailedPrecondition,
        None,
        Retry::FixAndResend,
        &[Delivery],
        "the `Subscribe` stream did not start with a `Hello`, or sent something other than an `Ack` after it",
    ),
    // Credentials and limits.
    entry(
        "UNAUTHENTICATED",
        Code::Unauthenticated,
        None,
        Retry::FixAndResend,
        &[Admin, Nuc, Registries],
        "missing or wrong admin bearer token (`Admin`, `Nuc.Issue`/`Revoke`, `RegistryAdmin`)",
    ),
    entry(
        "TOO_LARGE",
        Code::ResourceExhausted,
        None,
        Retry::FixAndResend,
        &[Checks],
        "the message exceeds a size limit (reserved: the gateway sets no limit of its own yet)",
    ),
    entry(
        "INTERNAL",
        Code::Internal,
        Some("SCE909"),
        Retry::RetryAfterBackoff,
        &[Any],
        "the gateway failed unexpectedly; the detail is in its log, not in the message",
    ),
    entry(
        "DEADLINE_EXCEEDED",
        Code::DeadlineExceeded,
        None,
        Retry::RetryAfterBackoff,
        &[Registries, Faults],
        "the caller's deadline (`grpc-timeout`) passed while the gateway waited (a registry, a delay or hang fault); the gateway answers just before it",
    ),
    entry(
        "TOOLKIT_NOT_FOUND",
        Code::NotFound,
        None,
        Retry::FixAndResend,
        &[Admin],
        "the admin API has no fault, scenario or fixture document by that name (in the caller's session)",
    ),
    entry(
        "OVERLOADED",
        Code::Unavailable,
        None,
        Retry::RetryAfterBackoff,
        &[Any],
        "the gateway is working on as many envelopes as `limits.max_concurrent` allows and refused this one at once",
    ),
    CatalogueEntry {
        reason: INJECTED_FAULT,
        code: None,
        shep_code: None,
        retry: Retry::AsCodeImplies,
        areas: &[Faults],
        meaning: "an error a fault made up (`metadata.fault_id` names it); its code is the fault's, and a fault may set its own reason instead",
    },
];

/// Every reason the simulator returns, grouped by where it arises.
pub fn catalogue() -> &'static [CatalogueEntry] {
    CATALOGUE
}

/// The catalogue entry of `reason`.
pub fn lookup(reason: &str) -> Option<&'static CatalogueEntry> {
    CATALOGUE.iter().find(|entry| entry.reason == reason)
}

/// The catalogue as the Markdown table of docs/ERRORS.md.
pub fn catalogue_markdown() -> String {
    let mut table = String::from(
        "| reason | gRPC code | ШЭП code | retry | from | meaning |\n\
         | --- | --- | --- | --- | --- | --- |\n",
    );
    for entry in CATALOGUE {
        let areas: Vec<&str> = entry.areas.iter().map(|area| area.as_str()).collect();
        table.push_str(&format!(
            "| `{}` | {} | {} | {} | {} | {} |\n",
            entry.reason,
            entry.code.map_or("set by the fault", code_name),
            entry.shep_code.unwrap_or("—"),
            entry.retry.as_str(),
            areas.join(", "),
            entry.meaning,
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
                "reason": entry.reason,
                "code": entry.code.map(code_name),
                "code_number": entry.code.map(|code| code as i32),
                "shep_code": entry.shep_code,
                "retry": entry.retry.as_str(),
                "areas": entry.areas.iter().map(|area| area.as_str()).collect::<Vec<_>>(),
                "meaning": entry.meaning,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests;
