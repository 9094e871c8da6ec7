//! The sync channel's `SendMessage`: a lookup (`Gateway.Call`) answered in
//! the same HTTP exchange.

use prost::Message as _;
use roxmltree::Node;
use shep_proto::envelope::v1::{MessageType, SignedEnvelope};
use tower::ServiceExt as _;

use super::message::{self, business_data, required};
use super::wsdl::Channel;
use super::{Auth, Fault, SOAP_ENV, Soap};
use crate::pipeline::{Answer, EnvelopeRequest, Rpc};
use crate::toolkit::CallContext;
use crate::xmldata::{escape, to_xml};

/// ШЭП's sync types' namespace, as the current schemas spell it.
pub(super) const SYNC_TYPES: &str = "http://bip.bee.kz/SyncChannel/v10/Types";

pub(super) async fn send_message(
    soap: &Soap,
    auth: &Auth<'_>,
    mut ctx: CallContext,
    operation: Node<'_, '_>,
) -> Result<String, Fault> {
    let channel = Channel::Sync;
    let request = required(operation, "request", channel)?;
    let info = required(request, "requestInfo", channel)?;
    let session = message::text(info, "sessionId");
    let sender = message::sender(info)
        .ok_or_else(|| Fault::format("`requestInfo` has no `sender/senderId`", channel))?;
    ctx.principal = auth
        .principal(&sender)
        .map_err(|error| Fault::from_error(&error, channel, session.as_deref()))?;
    let data = required(required(request, "requestData", channel)?, "data", channel)?;
    let document = operation.document();
    let (signed, xml) = business_data(document, data, channel)?;
    let envelope = envelope(
        info,
        signed,
        xml,
        MessageType::Request,
        channel,
        session.as_deref(),
    )?;
    let answer = soap
        .pipeline
        .clone()
        .oneshot(EnvelopeRequest {
            rpc: Rpc::Call,
            envelope,
            ctx,
        })
        .await
        .map_err(|error| Fault::from_error(&error, channel, session.as_deref()))?;
    let Answer::Call(response) = answer else {
        return Err(Fault::internal(
            "the pipeline answered a call with another answer",
        ));
    };
    let info = response.response_info.unwrap_or_default();
    let status = info.status.unwrap_or_default();
    let date = info
        .response_date
        .map(|stamp| super::fault::date(&stamp))
        .unwrap_or_default();
    let data = response
        .lookup
        .map(|lookup| to_xml("lookup", "shep.registry.v1.LookupResponse", &lookup))
        .unwrap_or_default();
    let session_id = if info.session_id.is_empty() {
        String::new()
    } else {
        format!("<sessionId>{}</sessionId>", escape(&info.session_id))
    };
    Ok(format!(
        "<S:Envelope xmlns:S=\"{SOAP_ENV}\"><S:Body><ns2:SendMessageResponse xmlns:ns2=\"{SYNC_TYPES}\"><response><responseInfo><messageId>{}</messageId><correlationId>{}</correlationId><responseDate>{date}</responseDate><status><code>{}</code><message>{}</message></status>{session_id}</responseInfo><responseData><data>{data}</data></responseData></response></ns2:SendMessageResponse></S:Body></S:Envelope>",
        escape(&info.message_id),
        escape(&info.correlation_id),
        escape(&status.code),
        escape(&status.message),
    ))
}

/// The envelope of a SOAP message: the info fields, the signed data's
/// fields, and the signed data itself for the signature check.
pub(super) fn envelope(
    info: Node<'_, '_>,
    signed: Node<'_, '_>,
    xml: String,
    message_type: MessageType,
    channel: Channel,
    session: Option<&str>,
) -> Result<SignedEnvelope, Fault> {
    let mut body = message::info_fields(info, message_type, channel)?;
    let data = crate::xmldata::body_from_xml(signed)
        .map_err(|error| Fault::from_error(&error, channel, session))?;
    body.subject = data.subject;
    body.channel = data.channel;
    body.power_of_attorney = data.power_of_attorney;
    body.payload = data.payload;
    body.attachments = data.attachments;
    body.test = data.test;
    body.report = data.report;
    body.purpose = data.purpose;
    Ok(SignedEnvelope {
        body: body.encode_to_vec(),
        signature: None,
        xml_data: xml.into_bytes(),
    })
}
