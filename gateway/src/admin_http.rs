//! The Admin API as JSON over HTTP, on the gateway's port: `POST
//! /admin/v1/{Method}` transcodes a JSON body (the proto3 JSON mapping) into
//! the method's request message, calls the same gRPC service in-process and
//! transcodes the answer, or the refusal, back; `GET /admin/v1/openapi.json`
//! describes it. Everything is derived from the descriptor of
//! `shep.admin.v1.Admin`, so a new RPC appears here with no code change.

mod error;
mod openapi;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Version, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http_body_util::{BodyExt as _, Full};
use prost::Message as _;
use prost_reflect::{
    DescriptorError, DescriptorPool, DynamicMessage, MethodDescriptor, SerializeOptions,
    ServiceDescriptor,
};
use tonic::service::Routes;
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
use tower::ServiceExt as _;

pub(crate) use error::ErrorBody;

/// The service served over HTTP.
pub(crate) const ADMIN_SERVICE: &str = "shep.admin.v1.Admin";
/// Where the HTTP face of the Admin service lives.
pub(crate) const PATH_PREFIX: &str = "/admin/v1";
/// The largest request body, in bytes: tonic's default limit for a decoded
/// message, so a request too large for gRPC is refused before transcoding.
const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;
/// The length prefix of a gRPC message: compression flag and big-endian length.
const FRAME_HEADER: usize = 5;

/// Why the HTTP face could not be built.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AdminHttpError {
    #[error("decoding the descriptor sets")]
    Descriptors(#[source] DescriptorError),
    #[error("service `{0}` is not in the descriptor set")]
    MissingService(&'static str),
}

/// The descriptors of every shep proto plus `google.rpc` (for error details).
pub(crate) fn descriptor_pool() -> Result<DescriptorPool, DescriptorError> {
    let mut pool = DescriptorPool::decode(shep_proto::FILE_DESCRIPTOR_SET)?;
    pool.decode_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)?;
    Ok(pool)
}

/// The routes of the Admin API over HTTP. `grpc` holds the gRPC services
/// (without these routes); each request is answered by calling it in-process,
/// so HTTP and gRPC clients get the same implementation, checks included.
pub(crate) fn router(grpc: Routes) -> Result<axum::Router, AdminHttpError> {
    let pool = descriptor_pool().map_err(AdminHttpError::Descriptors)?;
    let service = pool
        .get_service_by_name(ADMIN_SERVICE)
        .ok_or(AdminHttpError::MissingService(ADMIN_SERVICE))?;
    // The document only changes with the binary, so it is rendered once.
    let openapi = Bytes::from(openapi::document(&service, PATH_PREFIX).to_string());
    let state = AdminHttp(Arc::new(Inner {
        pool,
        service,
        grpc,
        openapi,
    }));
    Ok(axum::Router::new()
        .route(&format!("{PATH_PREFIX}/openapi.json"), get(openapi_json))
        .route(&format!("{PATH_PREFIX}/{{method}}"), post(call))
        .with_state(state))
}

#[derive(Clone)]
struct AdminHttp(Arc<Inner>);

struct Inner {
    pool: DescriptorPool,
    service: ServiceDescriptor,
    grpc: Routes,
    openapi: Bytes,
}

impl std::fmt::Debug for AdminHttp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminHttp")
            .field("service", &self.0.service.full_name())
            .finish_non_exhaustive()
    }
}

async fn openapi_json(State(state): State<AdminHttp>) -> Response {
    json_response(StatusCode::OK, state.0.openapi.clone())
}

async fn call(
    State(state): State<AdminHttp>,
    Path(method): Path<String>,
    request: Request,
) -> Response {
    match state.call(&method, request).await {
        Ok(body) => json_response(StatusCode::OK, body),
        Err(error) => error.into_response(),
    }
}

fn json_response(status: StatusCode, body: Bytes) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

// === impl AdminHttp ===

impl AdminHttp {
    async fn call(&self, name: &str, request: Request) -> Result<Bytes, ErrorBody> {
        let inner = &self.0;
        let method = inner
            .service
            .methods()
            .find(|method| method.name() == name)
            .ok_or_else(|| ErrorBody::unknown_method(name, inner.service.full_name()))?;
        if method.is_client_streaming() || method.is_server_streaming() {
            return Err(ErrorBody::streaming(name));
        }
        let (parts, body) = request.into_parts();
        check_content_type(&parts.headers)?;
        let body = axum::body::to_bytes(body, MAX_BODY_BYTES)
            .await
            .map_err(|_| ErrorBody::too_large(MAX_BODY_BYTES))?;
        let message = decode_json(&method, &body)?;

        let mut grpc_request = axum::http::Request::builder()
            .method(Method::POST)
            .uri(format!("/{}/{}", inner.service.full_name(), method.name()))
            .version(Version::HTTP_2)
            .header(header::CONTENT_TYPE, "application/grpc")
            .header(header::TE, "trailers")
            .body(Full::new(frame(&message)))
            .map_err(|error| ErrorBody::internal(&error))?;
        forward_metadata(&parts.headers, grpc_request.headers_mut());
        // The peer address (and, with TLS, the peer's certificates) belong to
        // the connection the HTTP request came on; the gRPC service reads them
        // from the request's extensions.
        if let Some(info) = parts.extensions.get::<TcpConnectInfo>() {
            grpc_request.extensions_mut().insert(info.clone());
        }
        if let Some(info) = parts.extensions.get::<TlsConnectInfo<TcpConnectInfo>>() {
            grpc_request.extensions_mut().insert(info.clone());
        }

        let Ok(response) = inner.grpc.clone().oneshot(grpc_request).await;
        let (head, body) = response.into_parts();
        let collected = body
            .collect()
            .await
            .map_err(|status| ErrorBody::from_status(&status, &inner.pool))?;
        // A refusal without a body comes as headers only ("Trailers-Only").
        let status = collected
            .trailers()
            .and_then(tonic::Status::from_header_map)
            .or_else(|| tonic::Status::from_header_map(&head.headers))
            .ok_or_else(|| ErrorBody::internal(&"the gRPC answer has no `grpc-status`"))?;
        if status.code() != tonic::Code::Ok {
            return Err(ErrorBody::from_status(&status, &inner.pool));
        }
        let answer = unframe(&collected.to_bytes())
            .and_then(|payload| {
                DynamicMessage::decode(method.output(), payload).map_err(|error| error.to_string())
            })
            .map_err(|problem| ErrorBody::internal(&problem))?;
        encode_json(&answer).map_err(|error| ErrorBody::internal(&error))
    }
}

/// Refuses bodies that say they are something other than JSON. A missing
/// type is taken as JSON, and so is `application/x-www-form-urlencoded`,
/// because that is what `curl -d` sends; the body must parse as JSON anyway.
fn check_content_type(headers: &HeaderMap) -> Result<(), ErrorBody> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Ok(());
    };
    let essence = value
        .to_str()
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let json = essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
        || essence == "application/x-www-form-urlencoded";
    if json {
        Ok(())
    } else {
        Err(ErrorBody::unsupported_media_type(&essence))
    }
}

/// Copies the headers the gRPC services read as metadata: the admin
/// credential and the simulator's own `x-shep-*` headers (sessions).
fn forward_metadata(from: &HeaderMap, to: &mut HeaderMap) {
    for (name, value) in from {
        if name == header::AUTHORIZATION || name.as_str().starts_with("x-shep-") {
            to.append(name.clone(), value.clone());
        }
    }
}

/// The request message from the JSON body; an empty body is the empty message.
fn decode_json(method: &MethodDescriptor, body: &[u8]) -> Result<DynamicMessage, ErrorBody> {
    if body.trim_ascii().is_empty() {
        return Ok(DynamicMessage::new(method.input()));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let message = DynamicMessage::deserialize(method.input(), &mut deserializer)
        .map_err(|error| ErrorBody::invalid_json(&error, method.input().full_name()))?;
    // Trailing garbage after the object is as malformed as a broken object.
    deserializer
        .end()
        .map_err(|error| ErrorBody::invalid_json(&error, method.input().full_name()))?;
    Ok(message)
}

/// Every field, defaults included, so a client sees the whole shape of the
/// answer rather than having to know proto3's omitted defaults.
fn encode_json(message: &DynamicMessage) -> Result<Bytes, serde_json::Error> {
    let options = SerializeOptions::new().skip_default_fields(false);
    let mut out = Vec::new();
    message.serialize_with_options(&mut serde_json::Serializer::new(&mut out), &options)?;
    Ok(Bytes::from(out))
}

/// One uncompressed gRPC message: flag 0, big-endian length, the message.
fn frame(message: &DynamicMessage) -> Bytes {
    let payload = message.encode_to_vec();
    let mut framed = Vec::with_capacity(FRAME_HEADER + payload.len());
    framed.push(0);
    // A body over 4 GiB is refused long before this (`MAX_BODY_BYTES`).
    framed.extend_from_slice(
        &u32::try_from(payload.len())
            .unwrap_or(u32::MAX)
            .to_be_bytes(),
    );
    framed.extend_from_slice(&payload);
    Bytes::from(framed)
}

/// The one message of a unary answer.
fn unframe(body: &[u8]) -> Result<&[u8], String> {
    let (header, payload) = body
        .split_at_checked(FRAME_HEADER)
        .ok_or_else(|| format!("the gRPC answer is {} bytes, no message", body.len()))?;
    if header[0] != 0 {
        return Err("the gRPC answer is compressed".to_owned());
    }
    let length = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
    if payload.len() != length {
        return Err(format!(
            "the gRPC answer announces {length} bytes and carries {}",
            payload.len()
        ));
    }
    Ok(payload)
}

#[cfg(test)]
mod fuzz;
#[cfg(test)]
mod tests;
