//! Reading a ШЭП SOAP message: the envelope, the operation, `requestInfo` /
//! `messageInfo`, and the business data as a standalone signed document.
//!
//! Child elements are unqualified in ШЭП's schemas but some clients qualify
//! them, and the `Types` / `types` spelling differs between schema
//! generations: elements are matched by local name, the operation's
//! namespace by `bip.bee.kz` whatever its case.

use prost_types::Timestamp;
use roxmltree::{Document, Node};
use shep_proto::envelope::v1::{Body, MessageType, Property, Sender as BodySender};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::wsdl::Channel;
use super::{Fault, SOAP_ENV, SOAP12_ENV};

/// Elements deeper than this in a SOAP message are refused.
const MAX_DEPTH: usize = 64;

/// Parses `text`; roxmltree refuses any DTD, so no entity expansion and no
/// external entity is ever read.
pub(super) fn parse(text: &str) -> Result<Document<'_>, String> {
    let document = Document::parse_with_options(
        text,
        roxmltree::ParsingOptions {
            allow_dtd: false,
            nodes_limit: 1_000_000,
            ..roxmltree::ParsingOptions::default()
        },
    )
    .map_err(|error| {
        format!("the message is not well-formed XML (a DTD is never accepted): {error}")
    })?;
    if document
        .descendants()
        .any(|node| node.ancestors().count() > MAX_DEPTH)
    {
        return Err(format!(
            "the message nests deeper than {MAX_DEPTH} elements"
        ));
    }
    Ok(document)
}

/// The operation element: the first element of the SOAP Body.
pub(super) fn operation<'a, 'input>(
    document: &'a Document<'input>,
    channel: Channel,
) -> Result<Node<'a, 'input>, Fault> {
    let envelope = document.root_element();
    let namespace = envelope.tag_name().namespace().unwrap_or_default();
    if envelope.tag_name().name() != "Envelope" || namespace != SOAP_ENV {
        if namespace == SOAP12_ENV {
            return Err(Fault::version_mismatch());
        }
        return Err(Fault::format(
            &format!("the root element is not a SOAP 1.1 Envelope (`{SOAP_ENV}`)"),
            channel,
        ));
    }
    let body = envelope
        .children()
        .find(|node| node.is_element() && node.tag_name().name() == "Body")
        .ok_or_else(|| Fault::format("the SOAP Envelope has no Body", channel))?;
    let operation = body
        .children()
        .find(Node::is_element)
        .ok_or_else(|| Fault::format("the SOAP Body is empty", channel))?;
    let namespace = operation.tag_name().namespace().unwrap_or_default();
    if !namespace
        .to_ascii_lowercase()
        .starts_with("http://bip.bee.kz/")
    {
        return Err(Fault::format(
            &format!(
                "`{}` is not in a ШЭП namespace (http://bip.bee.kz/…), got `{namespace}`",
                operation.tag_name().name()
            ),
            channel,
        ));
    }
    Ok(operation)
}

/// The child element `name` of `node`, by local name.
pub(super) fn child<'a, 'input>(node: Node<'a, 'input>, name: &str) -> Option<Node<'a, 'input>> {
    node.children()
        .find(|child| child.is_element() && child.tag_name().name() == name)
}

/// The children elements `name` of `node`, by local name.
pub(super) fn children<'a, 'input>(
    node: Node<'a, 'input>,
    name: &'a str,
) -> impl Iterator<Item = Node<'a, 'input>> + 'a {
    node.children()
        .filter(move |child| child.is_element() && child.tag_name().name() == name)
}

/// The trimmed text of child `name`, if present and not empty.
pub(super) fn text(node: Node<'_, '_>, name: &str) -> Option<String> {
    child(node, name)
        .map(|child| {
            child
                .children()
                .filter(Node::is_text)
                .filter_map(|text| text.text())
                .collect::<String>()
        })
        .map(|text| text.trim().to_owned())
        .filter(|text| !text.is_empty())
}

/// `required` child `name`, or a format fault naming it.
pub(super) fn required<'a, 'input>(
    node: Node<'a, 'input>,
    name: &str,
    channel: Channel,
) -> Result<Node<'a, 'input>, Fault> {
    child(node, name).ok_or_else(|| {
        Fault::format(
            &format!("`{}` has no `{name}`", node.tag_name().name()),
            channel,
        )
    })
}

/// ШЭП's `SenderInfo`.
#[derive(Debug, Clone, Default)]
pub(super) struct Sender {
    pub(super) id: String,
    pub(super) password: Option<String>,
}

pub(super) fn sender(node: Node<'_, '_>) -> Option<Sender> {
    let sender = child(node, "sender")?;
    Some(Sender {
        id: text(sender, "senderId")?,
        password: text(sender, "password"),
    })
}

/// `dateTime` as ШЭП clients write it: with an offset, or without one
/// (read as Astana time, UTC+5, as ШЭП's own clocks run).
pub(super) fn date_time(value: &str) -> Option<OffsetDateTime> {
    if let Ok(at) = OffsetDateTime::parse(value, &Rfc3339) {
        return Some(at);
    }
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second][optional [.[subsecond]]]"
    );
    time::PrimitiveDateTime::parse(value, format)
        .ok()
        .map(|at| at.assume_offset(time::macros::offset!(+5)))
}

pub(super) fn timestamp(at: OffsetDateTime) -> Timestamp {
    crate::storage::timestamp(at)
}

/// A GUID with or without ШЭП's braces, as the envelope wants it.
pub(super) fn guid(value: &str) -> String {
    value
        .trim()
        .trim_start_matches('{')
        .trim_end_matches('}')
        .to_owned()
}

/// The body fields of `requestInfo` / `messageInfo`.
pub(super) fn info_fields(
    info: Node<'_, '_>,
    message_type: MessageType,
    channel: Channel,
) -> Result<Body, Fault> {
    let message_date = match text(info, "messageDate") {
        None => None,
        Some(value) => Some(timestamp(date_time(&value).ok_or_else(|| {
            Fault::format(
                &format!("`messageDate` is not an xs:dateTime: `{value}`"),
                channel,
            )
        })?)),
    };
    Ok(Body {
        message_id: text(info, "messageId")
            .map(|id| guid(&id))
            .unwrap_or_default(),
        correlation_id: text(info, "correlationId")
            .map(|id| guid(&id))
            .unwrap_or_default(),
        service_id: text(info, "serviceId").unwrap_or_default(),
        message_type: message_type as i32,
        route_id: text(info, "routeId").unwrap_or_default(),
        message_date,
        sender: sender(info).map(|sender| BodySender {
            sender_id: sender.id,
        }),
        properties: children(info, "properties")
            .map(|property| Property {
                key: text(property, "key").unwrap_or_default(),
                value: text(property, "value").unwrap_or_default(),
            })
            .collect(),
        session_id: text(info, "sessionId")
            .map(|id| guid(&id))
            .unwrap_or_default(),
        ..Body::default()
    })
}

/// The business data: the one element under `<data>`, as the standalone
/// document its signer signed. Namespace declarations it uses but a SOAP
/// ancestor made (JAX-WS hoists them to the Envelope) are put on its root,
/// as the signer's own document must have had them.
pub(super) fn business_data<'a, 'input>(
    document: &'a Document<'input>,
    data: Node<'a, 'input>,
    channel: Channel,
) -> Result<(Node<'a, 'input>, String), Fault> {
    let mut elements = data.children().filter(Node::is_element);
    let root = elements.next().ok_or_else(|| {
        Fault::format(
            "`data` is empty: it carries the signed business data (docs/SOAP.md)",
            channel,
        )
    })?;
    if elements.next().is_some() {
        return Err(Fault::format(
            "`data` carries more than one element: the business data is one signed element",
            channel,
        ));
    }
    let text = &document.input_text()[root.range()];
    let inherited = inherited_declarations(root);
    if inherited.is_empty() {
        return Ok((root, text.to_owned()));
    }
    // After the root's qualified name: `<prefix:name` then the declarations.
    let name_end = text
        .find(|c: char| c.is_whitespace() || c == '>' || c == '/')
        .unwrap_or(text.len());
    let mut standalone = String::with_capacity(text.len() + 64);
    standalone.push_str(&text[..name_end]);
    for (prefix, uri) in inherited {
        let uri = crate::xmldata::escape(uri);
        match prefix {
            Some(prefix) => standalone.push_str(&format!(" xmlns:{prefix}=\"{uri}\"")),
            None => standalone.push_str(&format!(" xmlns=\"{uri}\"")),
        }
    }
    standalone.push_str(&text[name_end..]);
    Ok((root, standalone))
}

/// Declarations in scope at `root` but made above it that `root`'s subtree
/// uses in an element or attribute name.
fn inherited_declarations<'a>(root: Node<'a, '_>) -> Vec<(Option<&'a str>, &'a str)> {
    let Some(parent) = root.parent() else {
        return Vec::new();
    };
    let above: Vec<_> = parent
        .namespaces()
        .map(|namespace| (namespace.name(), namespace.uri()))
        .collect();
    let own: Vec<_> = root
        .namespaces()
        .filter(|namespace| !above.contains(&(namespace.name(), namespace.uri())))
        .map(|namespace| namespace.name())
        .collect();
    let mut used: Vec<(Option<&str>, &str)> = Vec::new();
    for node in root.descendants().filter(Node::is_element) {
        let uris = node.tag_name().namespace().into_iter().chain(
            node.attributes()
                .filter_map(|attribute| attribute.namespace()),
        );
        for uri in uris {
            for (prefix, declared) in &above {
                if *declared == uri
                    && !own.contains(prefix)
                    && !used.contains(&(*prefix, *declared))
                    && prefix.is_none_or(|prefix| prefix != "xml")
                {
                    used.push((*prefix, *declared));
                }
            }
        }
    }
    used
}
