//! Shep's messages as XML, for the SOAP front door (docs/SOAP.md).
//!
//! ШЭП carries the business data as any XML under `<data>`; shep-sim's is the
//! envelope [`Body`] without the fields ШЭП's `requestInfo` already carries
//! ([`INFO_FIELDS`]), as `<body xmlns="urn:shep-sim:body:v1">`. Answers (a
//! registry's record, a status) are written the same way. The mapping is the
//! proto3 JSON one spelled in elements, driven by the descriptors, so every
//! field the gRPC contract has is reachable from SOAP without a second schema:
//! an element per field named as in JSON (`contentType`; the proto name is
//! accepted too), repeated fields as repeated elements, enums by name, bytes
//! in base64, timestamps in RFC 3339.

use std::sync::OnceLock;

use base64::Engine as _;
use prost::Message as _;
use prost_reflect::{
    DescriptorPool, DynamicMessage, Kind, MessageDescriptor, ReflectMessage, Value,
};
use shep_proto::envelope::v1::Body;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::error::GatewayError;

/// The namespace of shep-sim's business data.
pub const NAMESPACE: &str = "urn:shep-sim:body:v1";
/// XMLDSig's namespace: its `Signature` inside the data is not a field.
pub const XMLDSIG: &str = "http://www.w3.org/2000/09/xmldsig#";

/// `Body` fields that ШЭП's `requestInfo` / `messageInfo` carries: never in
/// the data, and left out when the data is compared with a body.
pub const INFO_FIELDS: &[&str] = &[
    "message_id",
    "correlation_id",
    "service_id",
    "message_type",
    "route_id",
    "message_date",
    "sender",
    "properties",
    "session_id",
];

/// Deepest nesting read; shep's messages are a few levels deep.
const MAX_DEPTH: usize = 16;

fn pool() -> &'static DescriptorPool {
    static POOL: OnceLock<DescriptorPool> = OnceLock::new();
    POOL.get_or_init(|| {
        DescriptorPool::decode(shep_proto::FILE_DESCRIPTOR_SET)
            .expect("the build's own descriptor set decodes")
    })
}

fn descriptor(full_name: &str) -> MessageDescriptor {
    pool()
        .get_message_by_name(full_name)
        .unwrap_or_else(|| panic!("`{full_name}` is in the build's descriptor set"))
}

/// `body` without the fields `requestInfo` carries.
pub fn data_part(body: &Body) -> Body {
    Body {
        subject: body.subject.clone(),
        channel: body.channel,
        power_of_attorney: body.power_of_attorney.clone(),
        payload: body.payload.clone(),
        attachments: body.attachments.clone(),
        test: body.test,
        report: body.report.clone(),
        purpose: body.purpose.clone(),
        ..Body::default()
    }
}

/// The data part of `body` as `<body xmlns="urn:shep-sim:body:v1">…</body>`,
/// unsigned.
pub fn body_to_xml(body: &Body) -> String {
    message_to_xml(
        "body",
        "shep.envelope.v1.Body",
        &data_part(body).encode_to_vec(),
    )
}

/// A shep message (`full_name`, encoded as `bytes`) as `<element xmlns=…>`.
pub fn message_to_xml(element: &str, full_name: &str, bytes: &[u8]) -> String {
    let message = DynamicMessage::decode(descriptor(full_name), bytes)
        .expect("a message encoded by prost decodes with its own descriptor");
    let mut out = format!("<{element} xmlns=\"{NAMESPACE}\">");
    write_fields(&message, &mut out);
    out.push_str(&format!("</{element}>"));
    out
}

/// A shep message (`full_name`, encoded as `bytes`) as its proto3 JSON.
pub fn to_json(full_name: &str, bytes: &[u8]) -> serde_json::Value {
    let message = DynamicMessage::decode(descriptor(full_name), bytes)
        .expect("a message encoded by prost decodes with its own descriptor");
    serde_json::to_value(&message).unwrap_or_default()
}

/// A prost message of the shep protos (`full_name`) as XML.
pub fn to_xml<M: prost::Message>(element: &str, full_name: &str, message: &M) -> String {
    message_to_xml(element, full_name, &message.encode_to_vec())
}

fn write_fields(message: &DynamicMessage, out: &mut String) {
    for (field, value) in message.fields() {
        let name = field.json_name();
        match value {
            Value::List(items) => {
                for item in items {
                    write_value(name, item, &field.kind(), out);
                }
            }
            other => write_value(name, other, &field.kind(), out),
        }
    }
}

fn write_value(name: &str, value: &Value, kind: &Kind, out: &mut String) {
    let text = match value {
        Value::Message(message) if is_timestamp(&message.descriptor()) => {
            let seconds = message
                .get_field_by_name("seconds")
                .and_then(|value| value.as_i64())
                .unwrap_or_default();
            let nanos = message
                .get_field_by_name("nanos")
                .and_then(|value| value.as_i32())
                .unwrap_or_default();
            let at = OffsetDateTime::from_unix_timestamp_nanos(
                i128::from(seconds) * 1_000_000_000 + i128::from(nanos),
            )
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
            at.format(&Rfc3339).unwrap_or_default()
        }
        Value::Message(message) => {
            out.push_str(&format!("<{name}>"));
            write_fields(message, out);
            out.push_str(&format!("</{name}>"));
            return;
        }
        Value::EnumNumber(number) => match kind.as_enum().and_then(|e| e.get_value(*number)) {
            Some(known) => known.name().to_owned(),
            None => number.to_string(),
        },
        Value::Bytes(bytes) => base64::engine::general_purpose::STANDARD.encode(bytes),
        Value::String(text) => text.clone(),
        Value::Bool(flag) => flag.to_string(),
        Value::I32(number) => number.to_string(),
        Value::I64(number) => number.to_string(),
        Value::U32(number) => number.to_string(),
        Value::U64(number) => number.to_string(),
        Value::F32(number) => number.to_string(),
        Value::F64(number) => number.to_string(),
        // No shep message carried over SOAP has a map field.
        Value::List(_) | Value::Map(_) => return,
    };
    out.push_str(&format!("<{name}>{}</{name}>", escape(&text)));
}

fn is_timestamp(descriptor: &MessageDescriptor) -> bool {
    descriptor.full_name() == "google.protobuf.Timestamp"
}

/// `text` escaped for element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\r' => out.push_str("&#xD;"),
            c => out.push(c),
        }
    }
    out
}

/// The data part of a body from its XML element (the element under
/// `<data>`), ignoring its XMLDSig. A field of `requestInfo` found here is
/// refused: it would be unsigned in one place and signed in the other.
pub fn body_from_xml(node: roxmltree::Node<'_, '_>) -> Result<Body, GatewayError> {
    let message = read_message(node, &descriptor("shep.envelope.v1.Body"), "data", 0)?;
    if let Some(field) = INFO_FIELDS
        .iter()
        .find(|field| message.has_field_by_name(field))
    {
        return Err(invalid(format!(
            "carries `{field}`, which belongs in requestInfo / messageInfo"
        )));
    }
    Body::decode(message.encode_to_vec().as_slice())
        .map_err(|error| GatewayError::MalformedBody(error.to_string()))
}

fn invalid(problem: String) -> GatewayError {
    GatewayError::InvalidField {
        field: "data",
        problem,
    }
}

fn read_message(
    node: roxmltree::Node<'_, '_>,
    descriptor: &MessageDescriptor,
    path: &str,
    depth: usize,
) -> Result<DynamicMessage, GatewayError> {
    if depth > MAX_DEPTH {
        return Err(invalid(format!(
            "nests deeper than {MAX_DEPTH} at `{path}`"
        )));
    }
    let mut message = DynamicMessage::new(descriptor.clone());
    for child in node.children().filter(roxmltree::Node::is_element) {
        let tag = child.tag_name();
        if tag.namespace() == Some(XMLDSIG) {
            continue;
        }
        let name = tag.name();
        let field = descriptor
            .get_field_by_json_name(name)
            .or_else(|| descriptor.get_field_by_name(name))
            .ok_or_else(|| {
                invalid(format!(
                    "has an unknown element `{path}/{name}` (`{}` has no such field)",
                    descriptor.name()
                ))
            })?;
        let here = format!("{path}/{name}");
        let value = read_value(child, &field.kind(), &here, depth + 1)?;
        if field.is_list() {
            if let Value::List(items) = message.get_field_mut(&field) {
                items.push(value);
            }
        } else if message.has_field(&field) {
            return Err(invalid(format!("repeats `{here}`, which is not a list")));
        } else {
            message.set_field(&field, value);
        }
    }
    Ok(message)
}

fn read_value(
    node: roxmltree::Node<'_, '_>,
    kind: &Kind,
    path: &str,
    depth: usize,
) -> Result<Value, GatewayError> {
    let text: String = node
        .children()
        .filter(roxmltree::Node::is_text)
        .filter_map(|text| text.text())
        .collect();
    let trimmed = text.trim();
    let bad = |what: &str| invalid(format!("`{path}` is not {what}: `{trimmed}`"));
    Ok(match kind {
        Kind::Message(descriptor) if is_timestamp(descriptor) => {
            let at = OffsetDateTime::parse(trimmed, &Rfc3339)
                .map_err(|_| bad("an RFC 3339 date-time"))?;
            let mut stamp = DynamicMessage::new(descriptor.clone());
            stamp.set_field_by_name("seconds", Value::I64(at.unix_timestamp()));
            stamp.set_field_by_name("nanos", Value::I32(at.nanosecond() as i32));
            Value::Message(stamp)
        }
        Kind::Message(descriptor) => Value::Message(read_message(node, descriptor, path, depth)?),
        Kind::Enum(descriptor) => {
            let value = descriptor
                .get_value_by_name(trimmed)
                .map(|value| value.number())
                .or_else(|| trimmed.parse().ok())
                .ok_or_else(|| bad(&format!("a `{}`", descriptor.name())))?;
            Value::EnumNumber(value)
        }
        Kind::Bytes => {
            let compact: String = trimmed.split_whitespace().collect();
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(compact)
                .map_err(|_| bad("base64"))?;
            Value::Bytes(bytes.into())
        }
        // Text as written: whitespace inside a string is the sender's.
        Kind::String => Value::String(text),
        Kind::Bool => match trimmed {
            "true" | "1" => Value::Bool(true),
            "false" | "0" => Value::Bool(false),
            _ => return Err(bad("a boolean")),
        },
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
            Value::I32(trimmed.parse().map_err(|_| bad("an integer"))?)
        }
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => {
            Value::I64(trimmed.parse().map_err(|_| bad("an integer"))?)
        }
        Kind::Uint32 | Kind::Fixed32 => {
            Value::U32(trimmed.parse().map_err(|_| bad("an unsigned integer"))?)
        }
        Kind::Uint64 | Kind::Fixed64 => {
            Value::U64(trimmed.parse().map_err(|_| bad("an unsigned integer"))?)
        }
        Kind::Float => Value::F32(trimmed.parse().map_err(|_| bad("a number"))?),
        Kind::Double => Value::F64(trimmed.parse().map_err(|_| bad("a number"))?),
    })
}

/// The XMLDSig of signed business data (an envelope's `xml_data`) checked
/// in structure and in its references' digests, with `body`'s data fields
/// equal to the XML's. The caller verifies the returned signature over the
/// returned SignedInfo by its certificate rules.
pub fn check_signed(
    xml: &[u8],
    body: &Body,
) -> Result<shep_nuc::xmldsig::VerifiedXml, GatewayError> {
    let text = std::str::from_utf8(xml)
        .map_err(|_| GatewayError::MalformedSignature("`xml_data` is not UTF-8".to_owned()))?;
    // No DTD is accepted: no entity expansion, no external entities.
    let document = shep_nuc::xmldsig::parse(text).map_err(|error| {
        GatewayError::MalformedSignature(format!("`xml_data` is not well-formed XML: {error}"))
    })?;
    let root = document.root_element();
    let verified =
        shep_nuc::xmldsig::verify_enveloped(&document, root).map_err(|error| {
            match error.reason() {
                shep_proto::envelope::v1::Reason::NotSigned => GatewayError::NotSigned,
                shep_proto::envelope::v1::Reason::SignatureInvalid => {
                    GatewayError::SignatureInvalid
                }
                _ => GatewayError::MalformedSignature(error.to_string()),
            }
        })?;
    matches_signed(body, root)?;
    Ok(verified)
}

/// Checks that a decoded body's data part is what the signed XML says.
fn matches_signed(body: &Body, signed: roxmltree::Node<'_, '_>) -> Result<(), GatewayError> {
    let from_xml = body_from_xml(signed)?;
    if data_part(body) == from_xml {
        Ok(())
    } else {
        Err(GatewayError::SignatureInvalid)
    }
}

#[cfg(test)]
mod tests {
    use shep_proto::envelope::v1::{Attachment, Channel, Payload, Subject, subject};

    use super::*;

    fn body() -> Body {
        Body {
            message_id: "ignored".into(),
            subject: Some(Subject {
                id: Some(subject::Id::Iin("850315301235".into())),
            }),
            channel: Channel::Portal as i32,
            payload: Some(Payload {
                content_type: "application/json".into(),
                data: br#"{"a":"<&>"}"#.to_vec(),
            }),
            attachments: vec![
                Attachment {
                    name: "скан.pdf".into(),
                    content_type: "application/pdf".into(),
                    data: vec![1, 2, 3],
                },
                Attachment {
                    name: "two".into(),
                    ..Attachment::default()
                },
            ],
            test: true,
            purpose: "проверка".into(),
            ..Body::default()
        }
    }

    #[test]
    fn the_data_part_round_trips_through_xml() {
        let xml = body_to_xml(&body());
        assert!(xml.contains("<channel>PORTAL</channel>"), "{xml}");
        assert!(!xml.contains("ignored"), "{xml}");
        let doc = roxmltree::Document::parse(&xml).unwrap();
        let back = body_from_xml(doc.root_element()).unwrap();
        assert_eq!(back, data_part(&body()));
    }

    #[test]
    fn unknown_and_info_fields_are_refused_by_name() {
        for (xml, expect) in [
            ("<body><colour>red</colour></body>", "data/colour"),
            ("<body><serviceId>x</serviceId></body>", "requestInfo"),
            ("<body><test>maybe</test></body>", "a boolean"),
            ("<body><channel>TELEPATHY</channel></body>", "Channel"),
            ("<body><test>true</test><test>true</test></body>", "repeats"),
        ] {
            let doc = roxmltree::Document::parse(xml).unwrap();
            let error = body_from_xml(doc.root_element()).unwrap_err();
            assert!(error.to_string().contains(expect), "{xml}: {error}");
        }
    }

    #[test]
    fn a_body_that_differs_from_its_signed_xml_is_refused() {
        let xml = body_to_xml(&body());
        let doc = roxmltree::Document::parse(&xml).unwrap();
        matches_signed(&body(), doc.root_element()).unwrap();
        let mut other = body();
        other.purpose = "другое".into();
        assert!(matches!(
            matches_signed(&other, doc.root_element()),
            Err(GatewayError::SignatureInvalid)
        ));
    }
}
