//! The ШЭП SOAP front door (docs/SOAP.md): SOAP 1.1 document/literal at the
//! real paths, `/bip-sync/` (`SendMessage`) and `/bip-async/` (`sendMessage`,
//! `getMessages`, `getMessageStatus`, `sendDeliveryNotification`), with their
//! WSDL and XSD. It is a second edge onto the same pipeline, not a second
//! gateway: a message is read into a [`SignedEnvelope`] whose business data
//! is the signed XML (`xml_data`), sent through the envelope pipeline or the
//! gRPC services in-process, and the answer written back as ШЭП's types.
//! Refusals are `ErrorInfo` faults with ШЭП's code and the catalogue reason
//! in `subError` ([`fault`]).

mod channel;
mod fault;
mod message;
pub(crate) mod push;
mod sync;
mod wsdl;

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::engine::Engine;
use crate::error::GatewayError;
use crate::participants::Principal;
use crate::pipeline::EnvelopeService;

pub(crate) use fault::Fault;

/// SOAP 1.1's envelope namespace.
pub(crate) const SOAP_ENV: &str = "http://schemas.xmlsoap.org/soap/envelope/";
/// SOAP 1.2's, answered with a VersionMismatch fault.
const SOAP12_ENV: &str = "http://www.w3.org/2003/05/soap-envelope";

/// What the SOAP handlers share.
#[derive(Debug, Clone)]
pub(crate) struct Soap {
    engine: Arc<Engine>,
    pipeline: EnvelopeService,
    /// Reads what the transport proves; with `auth.participants = "off"`,
    /// everyone is anyone.
    credentials: crate::participants::Credentials,
    /// The listener speaks TLS: the WSDL's address is `https`.
    tls: bool,
    /// The largest message read (`limits.max_message_bytes`).
    max_bytes: usize,
}

/// The SOAP routes, merged into the gateway's port. Bodies over
/// `max_bytes` are refused with a fault before they are read whole.
pub(crate) fn router(
    engine: Arc<Engine>,
    pipeline: EnvelopeService,
    required: bool,
    tls: bool,
    max_bytes: usize,
) -> axum::Router {
    let soap = Soap {
        engine,
        pipeline,
        credentials: crate::participants::Credentials::new(required),
        tls,
        max_bytes,
    };
    let sync = get(describe_sync).post(post_sync);
    let channel = get(describe_async).post(post_async);
    axum::Router::new()
        .route("/bip-sync", sync.clone())
        .route("/bip-sync/", sync)
        .route("/bip-async", channel.clone())
        .route("/bip-async/", channel)
        .with_state(soap)
}

type QueryMap = Query<std::collections::HashMap<String, String>>;

async fn describe_sync(State(soap): State<Soap>, headers: HeaderMap, query: QueryMap) -> Response {
    describe(&soap, &headers, wsdl::Channel::Sync, &query.0)
}

async fn describe_async(State(soap): State<Soap>, headers: HeaderMap, query: QueryMap) -> Response {
    describe(&soap, &headers, wsdl::Channel::Async, &query.0)
}

/// `?wsdl`, `?wsdl=client` (the push interface a participant implements) and
/// `?xsd=NAME`; anything else is a pointer to them. The WSDL's address is
/// the host the client reached, so a client built from it calls back here.
fn describe(
    soap: &Soap,
    headers: &HeaderMap,
    channel: wsdl::Channel,
    query: &std::collections::HashMap<String, String>,
) -> Response {
    let host = headers
        .get(header::HOST)
        .and_then(|host| host.to_str().ok())
        .unwrap_or("localhost");
    let base = format!("{}://{host}", if soap.tls { "https" } else { "http" });
    let document = match (query.get("wsdl"), query.get("xsd")) {
        (Some(which), _) => wsdl::wsdl(channel, which, &base),
        (None, Some(name)) => wsdl::xsd(name).map(str::to_owned),
        (None, None) => None,
    };
    match document {
        Some(text) => xml_response(StatusCode::OK, text),
        None => (
            StatusCode::NOT_FOUND,
            format!(
                "ШЭП {} channel: POST SOAP 1.1 here; its contract is at ?wsdl{}, the schemas at ?xsd={}\n",
                channel.name(),
                if channel == wsdl::Channel::Async {
                    " (the push interface a participant implements: ?wsdl=client)"
                } else {
                    ""
                },
                wsdl::XSD_NAMES.join(", ?xsd="),
            ),
        )
            .into_response(),
    }
}

async fn post_sync(State(soap): State<Soap>, request: axum::extract::Request) -> Response {
    handle(&soap, request, wsdl::Channel::Sync).await
}

async fn post_async(State(soap): State<Soap>, request: axum::extract::Request) -> Response {
    handle(&soap, request, wsdl::Channel::Async).await
}

async fn handle(soap: &Soap, request: axum::extract::Request, channel: wsdl::Channel) -> Response {
    let (parts, body) = request.into_parts();
    let answer = match axum::body::to_bytes(body, soap.max_bytes).await {
        // Over the limit (`limits.max_message_bytes`), or cut off.
        Err(error) => {
            let size = parts
                .headers
                .get(header::CONTENT_LENGTH)
                .and_then(|length| length.to_str().ok()?.parse().ok())
                .unwrap_or_default();
            let mut fault = Fault::from_error(
                &GatewayError::TooLarge {
                    what: "SOAP message",
                    size,
                    limit: soap.max_bytes,
                },
                channel,
                None,
            );
            fault.detail(&error.to_string());
            Err(fault)
        }
        Ok(body) => match std::str::from_utf8(&body) {
            Err(_) => Err(Fault::format("the message is not UTF-8", channel)),
            Ok(text) => dispatch(soap, parts, text, channel).await,
        },
    };
    match answer {
        Ok(xml) => xml_response(StatusCode::OK, xml),
        Err(fault) => {
            tracing::debug!(
                code = fault.code(),
                reason = fault.reason(),
                message = fault.message(),
                "SOAP fault"
            );
            xml_response(StatusCode::INTERNAL_SERVER_ERROR, fault.to_xml())
        }
    }
}

fn xml_response(status: StatusCode, xml: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
        xml,
    )
        .into_response()
}

async fn dispatch(
    soap: &Soap,
    parts: axum::http::request::Parts,
    text: &str,
    channel: wsdl::Channel,
) -> Result<String, Fault> {
    let document = message::parse(text).map_err(|problem| Fault::format(&problem, channel))?;
    let operation = message::operation(&document, channel)?;
    let metadata = tonic::metadata::MetadataMap::from_headers(parts.headers);
    // What the transport proves (a client certificate, `authorization:
    // Basic`), as for a gRPC call.
    let transport = tonic::Request::from_parts(metadata.clone(), parts.extensions, ());
    let ctx = crate::toolkit::CallContext::from_request(&transport)
        .map_err(|error| Fault::from_error(&error, channel, None))?;
    let auth = Auth {
        soap,
        transport: &transport,
    };
    let name = operation.tag_name().name();
    match (channel, name) {
        (wsdl::Channel::Sync, "SendMessage") => {
            sync::send_message(soap, &auth, ctx, operation).await
        }
        (wsdl::Channel::Async, _) => {
            channel::dispatch(soap, &auth, ctx, &metadata, operation).await
        }
        (_, other) => Err(Fault::format(
            &format!("the sync channel has one operation, SendMessage; got `{other}`"),
            channel,
        )),
    }
}

/// Who a SOAP message proves its sender is.
#[derive(Debug)]
pub(crate) struct Auth<'a> {
    soap: &'a Soap,
    transport: &'a tonic::Request<()>,
}

impl Auth<'_> {
    /// The transport's proof first (a system's or person's client
    /// certificate, `authorization: Basic`), then ШЭП's `senderId` and
    /// `password` from the message.
    fn principal(&self, sender: &message::Sender) -> Result<Principal, GatewayError> {
        let routes = self.soap.engine.routes();
        let by_transport = self.soap.credentials.principal(&routes, self.transport);
        match (by_transport, &sender.password) {
            (Ok(principal), None) => Ok(principal),
            (Ok(Principal::Anyone), Some(_)) => Ok(Principal::Anyone),
            (_, Some(password)) => {
                crate::participants::from_password(&routes, (sender.id.clone(), password.clone()))
            }
            (Err(error), None) => Err(error),
        }
    }
}
