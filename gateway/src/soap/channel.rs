//! The async channel: `sendMessage` (an application, `Gateway.Submit`, or a
//! provider's status report, `Provider.Report`), `getMessages` (pull,
//! `Provider.GetMessages`), `sendDeliveryNotification` (`Provider.Acknowledge`)
//! and `getMessageStatus` (`Gateway.GetStatus`). The queries go through the
//! gRPC services in-process, so they answer exactly as they do over gRPC.

use prost::Message as _;
use roxmltree::Node;
use shep_proto::envelope::v1::{ApplicationStatus, Body, MessageType, SignedEnvelope};
use shep_proto::gateway::v1::GetStatusRequest;
use shep_proto::gateway::v1::gateway_server::Gateway as _;
use shep_proto::provider::v1::provider_server::Provider as _;
use shep_proto::provider::v1::{Ack, Delivery, GetMessagesRequest, ReceiveStatus, ResendMessage};
use tonic::metadata::MetadataMap;
use tower::ServiceExt as _;

use super::message::{self, business_data, child, required, text};
use super::sync::envelope;
use super::wsdl::Channel;
use super::{Auth, Fault, SOAP_ENV, Soap};
use crate::error::GatewayError;
use crate::grpc::{GatewayGrpcAdapter, ProviderGrpcAdapter};
use crate::participants::Principal;
use crate::pipeline::{Answer, EnvelopeRequest, Rpc};
use crate::toolkit::CallContext;
use crate::xmldata::escape;

/// The async channel's operations' namespace.
pub(crate) const ASYNC_INTERFACES: &str = "http://bip.bee.kz/AsyncChannel/v10/Interfaces";

const CHANNEL: Channel = Channel::Async;

pub(super) async fn dispatch(
    soap: &Soap,
    auth: &Auth<'_>,
    ctx: CallContext,
    metadata: &MetadataMap,
    operation: Node<'_, '_>,
) -> Result<String, Fault> {
    let name = operation.tag_name().name();
    let request = required(operation, "request", CHANNEL)?;
    let info = child(request, "messageInfo").unwrap_or(request);
    let session = text(info, "sessionId");
    let fail = |error: GatewayError| Fault::from_error(&error, CHANNEL, session.as_deref());
    let sender = message::sender(info)
        .ok_or_else(|| Fault::format(&format!("`{name}` has no `sender/senderId`"), CHANNEL))?;
    let principal = auth.principal(&sender).map_err(fail)?;
    let answer = match name {
        "sendMessage" => send_message(soap, ctx, principal, request).await?,
        "getMessages" => get_messages(soap, metadata, principal, &sender.id, request).await?,
        "sendDeliveryNotification" => {
            delivery_notification(soap, metadata, principal, &sender.id, request).await?
        }
        "getMessageStatus" => get_status(soap, metadata, principal, request).await?,
        other => {
            return Err(Fault::format(
                &format!(
                    "the async channel has sendMessage, getMessages, getMessageStatus and sendDeliveryNotification; got `{other}`"
                ),
                CHANNEL,
            ));
        }
    };
    Ok(format!(
        "<S:Envelope xmlns:S=\"{SOAP_ENV}\"><S:Body><ns2:{name}Response xmlns:ns2=\"{ASYNC_INTERFACES}\"><response>{answer}</response></ns2:{name}Response></S:Body></S:Envelope>"
    ))
}

fn message_type(value: Option<&str>) -> Result<MessageType, Fault> {
    match value.unwrap_or("REQUEST") {
        "REQUEST" => Ok(MessageType::Request),
        "RESPONSE" => Ok(MessageType::Response),
        "UPDATE" => Ok(MessageType::Update),
        "NOTIFICATION" => Ok(MessageType::Notification),
        other => Err(Fault::format(
            &format!("`messageType` is REQUEST, NOTIFICATION, UPDATE or RESPONSE; got `{other}`"),
            CHANNEL,
        )),
    }
}

/// An application (REQUEST) or a provider's report (UPDATE, RESPONSE).
async fn send_message(
    soap: &Soap,
    mut ctx: CallContext,
    principal: Principal,
    request: Node<'_, '_>,
) -> Result<String, Fault> {
    let info = required(request, "messageInfo", CHANNEL)?;
    let session = text(info, "sessionId");
    let kind = message_type(text(info, "messageType").as_deref())?;
    let data = required(required(request, "messageData", CHANNEL)?, "data", CHANNEL)?;
    let (signed, xml) = business_data(request.document(), data, CHANNEL)?;
    let envelope = envelope(info, signed, xml, kind, CHANNEL, session.as_deref())?;
    ctx.principal = principal;
    let rpc = if kind == MessageType::Request {
        Rpc::Submit
    } else {
        Rpc::Report
    };
    let answer = soap
        .pipeline
        .clone()
        .oneshot(EnvelopeRequest { rpc, envelope, ctx })
        .await
        .map_err(|error| Fault::from_error(&error, CHANNEL, session.as_deref()))?;
    let (message_id, correlation_id, date, session_id) = match answer {
        Answer::Submit(receipt) => (
            receipt.message_id,
            receipt.correlation_id,
            receipt.response_date,
            receipt.session_id,
        ),
        Answer::Report(receipt) => (
            receipt.message_id,
            receipt.correlation_id,
            None,
            session.unwrap_or_default(),
        ),
        Answer::Call(_) => return Err(Fault::internal("a sendMessage was answered as a call")),
    };
    let date = date.map_or_else(super::fault::now, |stamp| super::fault::date(&stamp));
    Ok(format!(
        "<messageId>{}</messageId><correlationId>{}</correlationId><responseDate>{date}</responseDate>{}",
        escape(&message_id),
        escape(&correlation_id),
        optional("sessionId", &session_id),
    ))
}

fn optional(name: &str, value: &str) -> String {
    if value.is_empty() {
        String::new()
    } else {
        format!("<{name}>{}</{name}>", escape(value))
    }
}

/// A gRPC request made in-process, as the interceptor would have left it.
fn in_process<T>(metadata: &MetadataMap, principal: Principal, message: T) -> tonic::Request<T> {
    let mut request =
        tonic::Request::from_parts(metadata.clone(), tonic::Extensions::default(), message);
    request.extensions_mut().insert(principal);
    request
}

/// A refusal of a gRPC service called in-process: its catalogue reason
/// kept, its message as it is.
fn status_fault(status: &tonic::Status) -> Fault {
    use tonic_types::StatusExt as _;
    let reason = status
        .get_error_details()
        .error_info()
        .and_then(|info| shep_proto::envelope::v1::Reason::from_str_name(&info.reason))
        .unwrap_or(shep_proto::envelope::v1::Reason::Internal);
    Fault::of_reason(reason, status.message().to_owned(), CHANNEL, None)
}

fn invalid(field: &'static str, problem: String) -> Fault {
    Fault::from_error(
        &GatewayError::InvalidField { field, problem },
        CHANNEL,
        None,
    )
}

async fn get_messages(
    soap: &Soap,
    metadata: &MetadataMap,
    principal: Principal,
    sender: &str,
    request: Node<'_, '_>,
) -> Result<String, Fault> {
    let amount = match text(request, "amount") {
        None => 0,
        Some(value) => value
            .parse()
            .map_err(|_| invalid("amount", format!("is not a number: `{value}`")))?,
    };
    let asked = GetMessagesRequest {
        provider_id: sender.to_owned(),
        amount,
        service_id: text(request, "serviceId").unwrap_or_default(),
        correlation_id: text(request, "correlationId")
            .map(|id| message::guid(&id))
            .unwrap_or_default(),
    };
    let adapter = ProviderGrpcAdapter::new(soap.engine.clone(), soap.pipeline.clone());
    let response = adapter
        .get_messages(in_process(metadata, principal, asked))
        .await
        .map_err(|status| status_fault(&status))?
        .into_inner();
    let date = response
        .response_date
        .map_or_else(super::fault::now, |stamp| super::fault::date(&stamp));
    let messages: String = response.messages.iter().map(async_message).collect();
    Ok(format!("<responseDate>{date}</responseDate>{messages}"))
}

/// A delivery as ШЭП's `AsyncMessage`: the business data as its sender
/// signed it (SOAP), or the body's data part as XML (an envelope sent over
/// gRPC, whose signature is over its protobuf bytes).
pub(super) fn async_message(delivery: &Delivery) -> String {
    let envelope = delivery.envelope.clone().unwrap_or_default();
    format!(
        "<messages>{}</messages>",
        message_xml(&envelope, Some(delivery))
    )
}

/// `messageInfo` and `messageData` of an envelope.
pub(super) fn message_xml(envelope: &SignedEnvelope, delivery: Option<&Delivery>) -> String {
    let body = Body::decode(envelope.body.as_slice()).unwrap_or_default();
    let data = if envelope.xml_data.is_empty() {
        crate::xmldata::body_to_xml(&body)
    } else {
        strip_declaration(&String::from_utf8_lossy(&envelope.xml_data)).to_owned()
    };
    let kind = MessageType::try_from(body.message_type)
        .map(|kind| kind.as_str_name())
        .unwrap_or("REQUEST");
    let date = body
        .message_date
        .as_ref()
        .map(super::fault::date)
        .unwrap_or_default();
    let mut properties: String = body
        .properties
        .iter()
        .map(|property| {
            format!(
                "<properties><key>{}</key><value>{}</value></properties>",
                escape(&property.key),
                escape(&property.value)
            )
        })
        .collect();
    if let Some(delivery) = delivery {
        properties.push_str(&format!(
            "<properties><key>shep.attempt</key><value>{}</value></properties>",
            delivery.attempt
        ));
        if let Some(until) = &delivery.lease_until {
            properties.push_str(&format!(
                "<properties><key>shep.leaseUntil</key><value>{}</value></properties>",
                super::fault::date(until)
            ));
        }
    }
    format!(
        "<messageInfo><messageId>{}</messageId>{}<serviceId>{}</serviceId><messageType>{kind}</messageType>{}<messageDate>{date}</messageDate><sender><senderId>{}</senderId></sender>{properties}{}</messageInfo><messageData><data>{data}</data></messageData>",
        escape(&body.message_id),
        optional("correlationId", &body.correlation_id),
        escape(&body.service_id),
        optional("routeId", &body.route_id),
        escape(
            &body
                .sender
                .map(|sender| sender.sender_id)
                .unwrap_or_default()
        ),
        optional("sessionId", &body.session_id),
    )
}

fn strip_declaration(xml: &str) -> &str {
    let trimmed = xml.trim_start();
    match trimmed.strip_prefix("<?xml") {
        Some(rest) => rest
            .find("?>")
            .map_or(trimmed, |end| rest[end + 2..].trim_start()),
        None => trimmed,
    }
}

async fn delivery_notification(
    soap: &Soap,
    metadata: &MetadataMap,
    principal: Principal,
    sender: &str,
    request: Node<'_, '_>,
) -> Result<String, Fault> {
    let missing = |field: &'static str| invalid(field, "is required".to_owned());
    let notification = child(request, "notification").ok_or_else(|| missing("notification"))?;
    let status = child(notification, "deliveryStatus").ok_or_else(|| missing("deliveryStatus"))?;
    let receive_status = match text(status, "receiveStatus").as_deref() {
        Some("MESSAGE_ACCEPTED") => ReceiveStatus::MessageAccepted,
        // ШЭП's own spelling, and the corrected one.
        Some("MESSAGE_NOT_ACCTEPTED" | "MESSAGE_NOT_ACCEPTED") => ReceiveStatus::MessageNotAccepted,
        other => {
            return Err(invalid(
                "receiveStatus",
                format!(
                    "is MESSAGE_ACCEPTED or MESSAGE_NOT_ACCTEPTED; got `{}`",
                    other.unwrap_or_default()
                ),
            ));
        }
    };
    let resend = match text(status, "resendMessage").as_deref() {
        Some("RESEND") => ResendMessage::Resend,
        Some("NOT_RESEND") => ResendMessage::NotResend,
        _ => ResendMessage::Unspecified,
    };
    let error_message = child(status, "error")
        .and_then(|error| text(error, "errorMessage"))
        .unwrap_or_default();
    let ack = Ack {
        message_id: message::guid(
            &text(notification, "messageId").ok_or_else(|| missing("messageId"))?,
        ),
        receive_status: receive_status as i32,
        resend: resend as i32,
        error_message,
        provider_id: sender.to_owned(),
    };
    let adapter = ProviderGrpcAdapter::new(soap.engine.clone(), soap.pipeline.clone());
    adapter
        .acknowledge(in_process(metadata, principal, ack))
        .await
        .map_err(|status| status_fault(&status))?;
    Ok(format!(
        "<responseDate>{}</responseDate>",
        super::fault::now()
    ))
}

async fn get_status(
    soap: &Soap,
    metadata: &MetadataMap,
    principal: Principal,
    request: Node<'_, '_>,
) -> Result<String, Fault> {
    let message_id =
        text(request, "messageId").ok_or_else(|| invalid("messageId", "is required".to_owned()))?;
    let adapter = GatewayGrpcAdapter::new(soap.engine.clone(), soap.pipeline.clone());
    let application = adapter
        .get_status(in_process(
            metadata,
            principal,
            GetStatusRequest {
                message_id: message::guid(&message_id),
            },
        ))
        .await
        .map_err(|status| status_fault(&status))?
        .into_inner();
    Ok(status_xml(&application))
}

/// A status event's notification and reason, as ШЭП's `statusMessage`.
pub(super) fn event_text(event: &shep_proto::gateway::v1::StatusEvent) -> String {
    [event.notification.as_str(), event.reason.as_str()]
        .into_iter()
        .filter(|text| !text.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

/// `messageState` and `status` of an application, as getMessageStatus
/// answers and a status notification tells.
pub(super) fn status_xml(application: &shep_proto::gateway::v1::Application) -> String {
    let state = shep_proto::gateway::v1::MessageState::try_from(application.delivery_state)
        .map(|state| state.as_str_name())
        .unwrap_or("ON_DELIVERY");
    let status = ApplicationStatus::try_from(application.status)
        .map(|status| status.as_str_name())
        .unwrap_or("ACCEPTED");
    let last = application.events.last();
    let date = last
        .and_then(|event| event.occurred_at.as_ref())
        .map(super::fault::date)
        .unwrap_or_default();
    let message = last.map(event_text).unwrap_or_default();
    format!(
        "<messageState>{state}</messageState><status><statusCode>{status}</statusCode><statusMessage>{}</statusMessage><statusDate>{date}</statusDate></status><responseDate>{}</responseDate>{}",
        escape(&message),
        super::fault::now(),
        optional("registrationNumber", &application.registration_number),
    )
}
