//! The error body of the HTTP face: a gRPC status (code, message and its
//! `google.rpc` details) as JSON, under the standard code -> HTTP mapping.

use std::collections::BTreeMap;
use std::fmt::Display;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use prost::Message as _;
use prost_reflect::{DescriptorPool, DynamicMessage, SerializeOptions};
use serde::Serialize;
use serde_json::{Map, Value};
use shep_proto::catalogue;
use shep_proto::envelope::v1::Reason;
use tonic::Code;
use tonic_types::StatusExt as _;

use crate::error::{ERROR_DOMAIN, GrpcCode};

const ERROR_INFO_TYPE: &str = "type.googleapis.com/google.rpc.ErrorInfo";

/// The HTTP status of a gRPC code, as `google.api` HTTP rules and
/// grpc-gateway map it (499 is nginx's "client closed request").
pub(crate) fn http_status(code: impl Into<GrpcCode>) -> u16 {
    match code.into() {
        GrpcCode::Ok => 200,
        GrpcCode::Cancelled => 499,
        GrpcCode::InvalidArgument | GrpcCode::FailedPrecondition | GrpcCode::OutOfRange => 400,
        GrpcCode::Unauthenticated => 401,
        GrpcCode::PermissionDenied => 403,
        GrpcCode::NotFound => 404,
        GrpcCode::AlreadyExists | GrpcCode::Aborted => 409,
        GrpcCode::ResourceExhausted => 429,
        GrpcCode::Unknown | GrpcCode::Internal | GrpcCode::DataLoss => 500,
        GrpcCode::Unimplemented => 501,
        GrpcCode::Unavailable => 503,
        GrpcCode::DeadlineExceeded => 504,
    }
}

/// The canonical name of a gRPC code, as in `google.rpc.Code` (one table
/// for the whole gateway: the error catalogue's).
pub(crate) use crate::error::code_name;

/// A refusal as the HTTP face answers it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct ErrorBody {
    /// The gRPC code's name, e.g. `NOT_FOUND`.
    pub code: &'static str,
    /// The HTTP status, repeated for clients that only keep the body.
    pub status: u16,
    pub message: String,
    /// `google.rpc.ErrorInfo.reason`: stable, what clients branch on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// `google.rpc.ErrorInfo.metadata` (e.g. `field`, `shep_code`).
    pub metadata: BTreeMap<String, String>,
    /// Every detail of the `google.rpc.Status`, each in the JSON mapping of
    /// `google.protobuf.Any` (`@type` plus the message's fields).
    pub details: Vec<Value>,
}

impl ErrorBody {
    /// The body of a gRPC refusal.
    pub(crate) fn from_status(status: &tonic::Status, pool: &DescriptorPool) -> Self {
        let info = status.get_details_error_info();
        Self {
            code: code_name(status.code()),
            status: http_status(status.code()),
            message: status.message().to_owned(),
            reason: info.as_ref().map(|info| info.reason.clone()),
            metadata: info
                .map(|info| info.metadata.into_iter().collect())
                .unwrap_or_default(),
            details: details(status.details(), pool),
        }
    }

    /// A refusal of the HTTP face itself, shaped like the gateway's own: an
    /// `ErrorInfo` with `reason` in domain `shep.kz`.
    fn local(
        code: impl Into<GrpcCode>,
        status: u16,
        reason: &str,
        message: String,
        metadata: BTreeMap<String, String>,
    ) -> Self {
        let info = serde_json::json!({
            "@type": ERROR_INFO_TYPE,
            "reason": reason,
            "domain": ERROR_DOMAIN,
            "metadata": metadata,
        });
        Self {
            code: code_name(code),
            status,
            message,
            reason: Some(reason.to_owned()),
            metadata,
            details: vec![info],
        }
    }

    pub(super) fn unknown_method(method: &str, service: &str) -> Self {
        Self::local(
            Code::NotFound,
            404,
            "UNKNOWN_METHOD",
            format!(
                "`{service}` has no method `{method}` (see {}/openapi.json)",
                super::PATH_PREFIX
            ),
            BTreeMap::from([("method".to_owned(), method.to_owned())]),
        )
    }

    pub(super) fn streaming(method: &str) -> Self {
        Self::local(
            Code::Unimplemented,
            501,
            "STREAMING_NOT_SUPPORTED_OVER_HTTP",
            format!("`{method}` streams; call it over gRPC"),
            BTreeMap::from([("method".to_owned(), method.to_owned())]),
        )
    }

    pub(super) fn unsupported_media_type(content_type: &str) -> Self {
        Self::local(
            Code::InvalidArgument,
            415,
            "UNSUPPORTED_MEDIA_TYPE",
            format!("the body must be JSON (`application/json`), not `{content_type}`"),
            BTreeMap::from([("content_type".to_owned(), content_type.to_owned())]),
        )
    }

    /// A refusal with a catalogued reason, under the catalogue's gRPC code.
    fn catalogued(
        reason: Reason,
        status: u16,
        message: String,
        metadata: BTreeMap<String, String>,
    ) -> Self {
        let code = catalogue::entry(reason).code.unwrap_or(GrpcCode::Unknown);
        Self::local(code, status, reason.as_str_name(), message, metadata)
    }

    pub(super) fn too_large(limit: usize) -> Self {
        Self::catalogued(
            Reason::TooLarge,
            413,
            format!("the body is larger than the {limit}-byte limit"),
            BTreeMap::new(),
        )
    }

    pub(super) fn invalid_json(error: &serde_json::Error, message: &str) -> Self {
        // The JSON face of the gRPC refusal of undecodable bytes.
        Self::catalogued(
            Reason::MalformedBody,
            400,
            format!("the body is not a `{message}` in JSON: {error}"),
            BTreeMap::from([
                ("line".to_owned(), error.line().to_string()),
                ("column".to_owned(), error.column().to_string()),
            ]),
        )
    }

    /// Logs what went wrong once, here at the edge, and answers generically.
    pub(super) fn internal(problem: &dyn Display) -> Self {
        tracing::error!(error = %problem, rpc = "admin.http", "internal error");
        Self::catalogued(
            Reason::Internal,
            500,
            "internal error".to_owned(),
            BTreeMap::new(),
        )
    }
}

impl IntoResponse for ErrorBody {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        match serde_json::to_vec(&self) {
            Ok(body) => (
                status,
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                )],
                body,
            )
                .into_response(),
            Err(_) => status.into_response(),
        }
    }
}

/// The details of an encoded `google.rpc.Status`, each as JSON; a detail of a
/// type the pool does not know keeps only its `@type`.
fn details(encoded: &[u8], pool: &DescriptorPool) -> Vec<Value> {
    if encoded.is_empty() {
        return Vec::new();
    }
    let Ok(status) = tonic_types::pb::Status::decode(encoded) else {
        return Vec::new();
    };
    status
        .details
        .iter()
        .map(|any| {
            let type_name = any.type_url.rsplit('/').next().unwrap_or_default();
            let decoded = pool
                .get_message_by_name(type_name)
                .and_then(|descriptor| {
                    DynamicMessage::decode(descriptor, any.value.as_slice()).ok()
                })
                .and_then(|message| {
                    message
                        .serialize_with_options(
                            serde_json::value::Serializer,
                            &SerializeOptions::new(),
                        )
                        .ok()
                });
            // The JSON mapping of Any: a message's fields beside `@type`, or
            // for a type with a special mapping (not an object), `value`.
            let mut object = match decoded {
                Some(Value::Object(fields)) => fields,
                Some(other) => Map::from_iter([("value".to_owned(), other)]),
                None => Map::new(),
            };
            object.insert("@type".to_owned(), Value::String(any.type_url.clone()));
            Value::Object(object)
        })
        .collect()
}
