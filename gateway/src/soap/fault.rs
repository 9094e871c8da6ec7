//! SOAP faults in ШЭП's terms: `ErrorInfo` with the ШЭП code (`SCE…`,
//! ANCHORS.md §1.5) as `errorCode`, and the catalogue's reason, the one a
//! gRPC client gets, as `subError/errorCode`, with the retry advice of
//! docs/ERRORS.md in `errorData`.

use prost_types::Timestamp;
use shep_proto::catalogue;
use shep_proto::envelope::v1::Reason;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::SOAP_ENV;
use super::wsdl::Channel;
use crate::error::GatewayError;
use crate::xmldata::escape;

/// A refusal or failure, ready to be written as a SOAP fault.
#[derive(Debug, Clone)]
pub(crate) struct Fault {
    /// SOAP's `faultcode`: the caller's mistake, or the server's.
    client: bool,
    /// SOAP 1.1 VersionMismatch (a SOAP 1.2 envelope).
    version_mismatch: bool,
    code: &'static str,
    reason: &'static str,
    message: String,
    retry: &'static str,
    channel: Channel,
    session: Option<String>,
}

impl Fault {
    /// The catalogue's answer to `error`.
    pub(crate) fn from_error(
        error: &GatewayError,
        channel: Channel,
        session: Option<&str>,
    ) -> Self {
        Self::of_reason(error.reason(), error.to_string(), channel, session)
    }

    pub(super) fn of_reason(
        reason: Reason,
        message: String,
        channel: Channel,
        session: Option<&str>,
    ) -> Self {
        let entry = catalogue::entry(reason);
        let client = matches!(
            entry.retry,
            catalogue::Retry::FixAndResend | catalogue::Retry::DoNotRetry
        );
        Self {
            client,
            version_mismatch: false,
            code: entry.shep_code.unwrap_or("SCE909"),
            reason: entry.name(),
            message,
            retry: entry.retry.as_str(),
            channel,
            session: session.map(super::message::guid),
        }
    }

    /// The message does not match the format (SCE001, `MALFORMED_BODY`).
    pub(crate) fn format(problem: &str, channel: Channel) -> Self {
        Self::of_reason(
            Reason::MalformedBody,
            format!("the message does not match the ШЭП format: {problem}"),
            channel,
            None,
        )
    }

    pub(crate) fn internal(problem: &str) -> Self {
        Self::of_reason(Reason::Internal, problem.to_owned(), Channel::Sync, None)
    }

    pub(super) fn version_mismatch() -> Self {
        let mut fault = Self::format(
            "a SOAP 1.2 envelope; ШЭП speaks SOAP 1.1 (`http://schemas.xmlsoap.org/soap/envelope/`)",
            Channel::Sync,
        );
        fault.version_mismatch = true;
        fault
    }

    /// Adds what the transport said to the message.
    pub(crate) fn detail(&mut self, detail: &str) {
        self.message = format!("{} ({detail})", self.message);
    }

    /// `errorCode`, e.g. `SCE016`.
    pub(crate) fn code(&self) -> &'static str {
        self.code
    }

    /// `subError/errorCode`, e.g. `SIGNATURE_INVALID`.
    pub(crate) fn reason(&self) -> &'static str {
        self.reason
    }

    pub(crate) fn message(&self) -> &str {
        &self.message
    }

    /// The whole SOAP envelope with the fault.
    pub(crate) fn to_xml(&self) -> String {
        let faultcode = if self.version_mismatch {
            "S:VersionMismatch"
        } else if self.client {
            "S:Client"
        } else {
            "S:Server"
        };
        let now = now();
        let session = self
            .session
            .as_deref()
            .map(|id| format!("<sessionId>{}</sessionId>", escape(id)))
            .unwrap_or_default();
        let (element, namespace) = self.channel.fault_element();
        format!(
            "<S:Envelope xmlns:S=\"{SOAP_ENV}\"><S:Body><S:Fault><faultcode>{faultcode}</faultcode><faultstring>{code}: {message}</faultstring><detail><ns2:{element} xmlns:ns2=\"{namespace}\"><errorCode>{code}</errorCode><errorMessage>{message}</errorMessage><errorData>reason={reason}; retry={retry}</errorData><errorDate>{now}</errorDate><subError><errorCode>{reason}</errorCode><errorMessage>{message}</errorMessage><errorDate>{now}</errorDate></subError>{session}</ns2:{element}></detail></S:Fault></S:Body></S:Envelope>",
            code = self.code,
            message = escape(&self.message),
            reason = self.reason,
            retry = self.retry,
        )
    }
}

/// Now as ШЭП's dateTime.
pub(super) fn now() -> String {
    OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .unwrap_or_default()
}

/// A protobuf timestamp as ШЭП's dateTime.
pub(super) fn date(stamp: &Timestamp) -> String {
    OffsetDateTime::from_unix_timestamp(stamp.seconds)
        .map(|at| at + time::Duration::nanoseconds(i64::from(stamp.nanos)))
        .ok()
        .and_then(|at| at.format(&Rfc3339).ok())
        .unwrap_or_default()
}
