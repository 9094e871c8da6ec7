//! Canonical XML 1.0 (inclusive) and Exclusive XML Canonicalization 1.0 over
//! roxmltree nodes, with or without comments.
//!
//! roxmltree already did what c14n asks of the parser: line endings are
//! normalized, character and entity references expanded, attribute values
//! normalized, CDATA merged into text. What is left is the serialization:
//! namespace declarations and attributes in canonical order, canonical
//! escaping, start+end tag pairs, no XML declaration, no DTD.
//!
//! Everything is canonicalized in a [`Standalone`] view: the signed element
//! as the root of its own document, whatever it is embedded in (a SOAP
//! envelope). See [`Standalone::new`] for what that means for namespaces.

use std::collections::{BTreeMap, HashSet};

use roxmltree::{Node, NodeId};

use super::XmlDsigError;

/// The namespace of the `xml:` prefix (never declared, never rendered).
const XML_NAMESPACE: &str = "http://www.w3.org/XML/1998/namespace";

/// A canonicalization algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum C14nMethod {
    /// Canonical XML 1.0, without comments.
    Inclusive,
    InclusiveWithComments,
    /// Exclusive XML Canonicalization 1.0, without comments.
    Exclusive,
    ExclusiveWithComments,
}

impl C14nMethod {
    /// Every method, for the callers (and tests) that try them all.
    pub const ALL: [Self; 4] = [
        Self::Inclusive,
        Self::InclusiveWithComments,
        Self::Exclusive,
        Self::ExclusiveWithComments,
    ];

    /// The algorithm URI of `CanonicalizationMethod` and `Transform`.
    pub fn uri(self) -> &'static str {
        match self {
            Self::Inclusive => "http://www.w3.org/TR/2001/REC-xml-c14n-20010315",
            Self::InclusiveWithComments => {
                "http://www.w3.org/TR/2001/REC-xml-c14n-20010315#WithComments"
            }
            Self::Exclusive => "http://www.w3.org/2001/10/xml-exc-c14n#",
            Self::ExclusiveWithComments => "http://www.w3.org/2001/10/xml-exc-c14n#WithComments",
        }
    }

    /// The method an algorithm URI names, if it is one of the four.
    pub fn from_uri(uri: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|method| method.uri() == uri)
    }

    /// Whether comments are kept.
    pub fn with_comments(self) -> bool {
        matches!(
            self,
            Self::InclusiveWithComments | Self::ExclusiveWithComments
        )
    }

    /// Whether this is the exclusive variant.
    pub fn is_exclusive(self) -> bool {
        matches!(self, Self::Exclusive | Self::ExclusiveWithComments)
    }
}

/// Namespace bindings: prefix (`None` for the default namespace) → URI.
type Bindings = BTreeMap<Option<String>, String>;

/// The signed element seen as the root of its own standalone document.
#[derive(Debug)]
pub(crate) struct Standalone<'a, 'input> {
    root: Node<'a, 'input>,
    /// Bindings declared above `root` that its subtree uses, as if `root`
    /// declared them.
    base: Bindings,
}

impl<'a, 'input> Standalone<'a, 'input> {
    /// The view of `root` as a standalone document.
    ///
    /// Inclusive c14n of a document subset renders every namespace in scope
    /// at the apex, ancestors' included (`xmlns:soap` of a SOAP envelope).
    /// The signer signed `root` as a document of its own, where only its own
    /// declarations are in scope. So a declaration of an ancestor outside
    /// `root` counts only if an element or attribute name in the subtree uses
    /// its prefix (or the default namespace) without a declaration of its own
    /// between: the standalone document must have declared it itself, and
    /// rendering it on `root` reproduces the signer's document when the
    /// signer declared it at the root (as a good signer does).
    ///
    /// Refuses a subtree nesting deeper than [`MAX_DEPTH`] elements: the
    /// canonicalization recurses, and roxmltree (iterative) parses any depth.
    pub(crate) fn new(root: Node<'a, 'input>) -> Result<Self, XmlDsigError> {
        check_depth(root)?;
        let mut base = Bindings::new();
        if let Some(parent) = root.parent_element() {
            let outside = in_scope(parent);
            let mut used = HashSet::new();
            collect_outside_uses(root, &mut Vec::new(), &mut used);
            for prefix in used {
                if let Some(uri) = outside.get(&prefix).filter(|uri| !uri.is_empty()) {
                    base.insert(prefix, uri.clone());
                }
            }
        }
        Ok(Self { root, base })
    }

    /// The root element.
    pub(crate) fn root(&self) -> Node<'a, 'input> {
        self.root
    }

    /// The bindings in scope at `node` (an element of the subtree) in the
    /// standalone document: `base`, then the declarations from `root` down.
    fn bindings_at(&self, node: Node<'a, 'input>) -> Bindings {
        let mut path = Vec::new();
        for ancestor in node.ancestors() {
            path.push(ancestor);
            if ancestor == self.root {
                break;
            }
        }
        let mut bindings = self.base.clone();
        for element in path.into_iter().rev() {
            declare(element, &mut bindings);
        }
        bindings
    }

    /// Canonicalizes the subtree of `apex` (an element of the view), leaving
    /// out the subtree of `exclude` (the enveloped signature). `document`:
    /// an apex that is the document element stands for the whole document,
    /// so the processing instructions (and comments) around it are rendered.
    pub(crate) fn canonicalize(
        &self,
        apex: Node<'a, 'input>,
        method: C14nMethod,
        inclusive_prefixes: &[String],
        exclude: Option<NodeId>,
        document: bool,
    ) -> Result<Vec<u8>, XmlDsigError> {
        if !apex.is_element() || !apex.ancestors().any(|node| node == self.root) {
            return Err(XmlDsigError::Malformed(
                "only an element of the signed subtree can be canonicalized",
            ));
        }
        let mut writer = Writer {
            method,
            inclusive_prefixes: inclusive_prefixes
                .iter()
                .map(|prefix| (prefix != "#default").then(|| prefix.clone()))
                .collect(),
            exclude,
            out: Vec::new(),
        };
        let top_level = document && apex == self.root && apex.parent().is_some_and(|p| p.is_root());
        if top_level {
            writer.siblings(
                apex.prev_siblings()
                    .skip(1)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev(),
                true,
            );
        }
        let mut inherited_xml = Vec::new();
        if !method.is_exclusive() && apex != self.root {
            // Canonical XML 1.0: the apex of a subset inherits the xml:*
            // attributes of its ancestors (within the standalone document).
            let ancestors = apex
                .ancestors()
                .skip(1)
                .take_while(|node| node.is_element());
            for ancestor in ancestors {
                for attribute in ancestor.attributes() {
                    let name = attribute.name();
                    if attribute.namespace() == Some(XML_NAMESPACE)
                        && !inherited_xml.iter().any(|(n, _)| *n == name)
                    {
                        inherited_xml.push((name, attribute.value()));
                    }
                }
                if ancestor == self.root {
                    break;
                }
            }
        }
        writer.element(
            apex,
            &self.bindings_at(apex),
            &Bindings::new(),
            &inherited_xml,
        )?;
        if top_level {
            writer.siblings(apex.next_siblings().skip(1), false);
        }
        Ok(writer.out)
    }
}

/// How deep elements may nest under the signed root: far more than any
/// business document, far less than what overflows a thread's stack.
pub(crate) const MAX_DEPTH: usize = 256;

/// Refuses a subtree of `root` deeper than [`MAX_DEPTH`], without recursing.
fn check_depth(root: Node<'_, '_>) -> Result<(), XmlDsigError> {
    let mut stack = vec![(root, 1)];
    while let Some((node, depth)) = stack.pop() {
        if depth > MAX_DEPTH {
            return Err(XmlDsigError::Malformed(
                "the signed element nests deeper than 256 elements",
            ));
        }
        stack.extend(
            node.children()
                .filter(Node::is_element)
                .map(|child| (child, depth + 1)),
        );
    }
    Ok(())
}

/// Every binding roxmltree has in scope at `element`.
fn in_scope(element: Node<'_, '_>) -> Bindings {
    element
        .namespaces()
        .map(|ns| (ns.name().map(str::to_owned), ns.uri().to_owned()))
        .collect()
}

/// Applies the declarations written on `element` to `bindings`.
fn declare(element: Node<'_, '_>, bindings: &mut Bindings) {
    for prefix in declared_prefixes(element) {
        let uri = element
            .namespaces()
            .find(|ns| ns.name() == prefix)
            .map(|ns| ns.uri().to_owned())
            .unwrap_or_default();
        bindings.insert(prefix.map(str::to_owned), uri);
    }
}

/// Prefixes used in the subtree of `element` that no element on the way
/// down declares (`declared` holds the declarations of the path so far).
fn collect_outside_uses<'input>(
    element: Node<'_, 'input>,
    declared: &mut Vec<Option<&'input str>>,
    used: &mut HashSet<Option<String>>,
) {
    let mark = declared.len();
    declared.extend(declared_prefixes(element));
    let element_prefix = qname_prefix(element_qname(element));
    let attribute_prefixes = element
        .attributes()
        .filter(|attribute| attribute.namespace() != Some(XML_NAMESPACE))
        .filter_map(|attribute| qname_prefix(attribute_qname(element, &attribute)));
    for prefix in std::iter::once(element_prefix).chain(attribute_prefixes.map(Some)) {
        if !declared.contains(&prefix) {
            used.insert(prefix.map(str::to_owned));
        }
    }
    for child in element.children().filter(Node::is_element) {
        collect_outside_uses(child, declared, used);
    }
    declared.truncate(mark);
}

/// The qualified name of an element as written in its start tag.
fn element_qname<'input>(element: Node<'_, 'input>) -> &'input str {
    let input = element.document().input_text();
    let tag = input.get(element.range().start + 1..).unwrap_or_default();
    let end = tag
        .find(|c: char| c.is_ascii_whitespace() || c == '/' || c == '>')
        .unwrap_or(tag.len());
    &tag[..end]
}

/// The qualified name of an attribute as written.
fn attribute_qname<'input>(
    element: Node<'_, 'input>,
    attribute: &roxmltree::Attribute<'_, 'input>,
) -> &'input str {
    element
        .document()
        .input_text()
        .get(attribute.range_qname())
        .unwrap_or_else(|| attribute.name())
}

fn qname_prefix(qname: &str) -> Option<&str> {
    qname.split_once(':').map(|(prefix, _)| prefix)
}

/// The prefixes `element` declares (`None`: `xmlns=…`), read from its start
/// tag: roxmltree only tells what is in scope, which cannot tell a
/// redeclaration from an inherited binding. The tag is well-formed (roxmltree
/// parsed it), so a scan for `name = "value"` pairs is enough.
fn declared_prefixes<'input>(element: Node<'_, 'input>) -> Vec<Option<&'input str>> {
    let input = element.document().input_text();
    let start = element.range().start + 1 + element_qname(element).len();
    let mut rest = input.get(start..).unwrap_or_default();
    let mut prefixes = Vec::new();
    loop {
        rest = rest.trim_start_matches(|c: char| c.is_ascii_whitespace());
        if rest.is_empty() || rest.starts_with('>') || rest.starts_with('/') {
            return prefixes;
        }
        let Some(eq) = rest.find('=') else {
            return prefixes;
        };
        let name = rest[..eq].trim_end();
        rest = rest[eq + 1..].trim_start_matches(|c: char| c.is_ascii_whitespace());
        let Some(quote) = rest.chars().next() else {
            return prefixes;
        };
        let Some(close) = rest[1..].find(quote) else {
            return prefixes;
        };
        rest = &rest[close + 2..];
        if name == "xmlns" {
            prefixes.push(None);
        } else if let Some(prefix) = name.strip_prefix("xmlns:")
            && prefix != "xml"
        {
            prefixes.push(Some(prefix));
        }
    }
}

struct Writer {
    method: C14nMethod,
    /// Exclusive c14n's InclusiveNamespaces PrefixList (`None`: `#default`).
    inclusive_prefixes: Vec<Option<String>>,
    exclude: Option<NodeId>,
    out: Vec<u8>,
}

impl Writer {
    /// The comments and PIs before (`before`) or after the document element.
    fn siblings<'a, 'input: 'a>(
        &mut self,
        nodes: impl Iterator<Item = Node<'a, 'input>>,
        before: bool,
    ) {
        for node in nodes {
            let len = self.out.len();
            if !before {
                self.out.push(b'\n');
            }
            if !self.other(node) {
                self.out.truncate(len);
            } else if before {
                self.out.push(b'\n');
            }
        }
    }

    /// A comment or PI; false when nothing was written.
    fn other(&mut self, node: Node<'_, '_>) -> bool {
        if node.is_comment() && self.method.with_comments() {
            self.out.extend_from_slice(b"<!--");
            self.out
                .extend_from_slice(node.text().unwrap_or_default().as_bytes());
            self.out.extend_from_slice(b"-->");
            true
        } else if let Some(pi) = node.pi() {
            self.out.extend_from_slice(b"<?");
            self.out.extend_from_slice(pi.target.as_bytes());
            if let Some(value) = pi.value.filter(|value| !value.is_empty()) {
                self.out.push(b' ');
                self.out.extend_from_slice(value.as_bytes());
            }
            self.out.extend_from_slice(b"?>");
            true
        } else {
            false
        }
    }

    /// One element and its subtree. `bindings`: what is in scope at
    /// `element`; `rendered`: what the output ancestors declared.
    fn element(
        &mut self,
        element: Node<'_, '_>,
        bindings: &Bindings,
        rendered: &Bindings,
        inherited_xml: &[(&str, &str)],
    ) -> Result<(), XmlDsigError> {
        let qname = element_qname(element);
        let mut rendered = rendered.clone();
        // Namespace declarations: BTreeMap order puts the default first,
        // then the prefixes in lexicographic order.
        let mut candidates: Vec<&Option<String>> = if self.method.is_exclusive() {
            let mut utilized: Vec<Option<String>> = vec![qname_prefix(qname).map(str::to_owned)];
            utilized.extend(
                element
                    .attributes()
                    .filter(|attribute| attribute.namespace() != Some(XML_NAMESPACE))
                    .filter_map(|attribute| qname_prefix(attribute_qname(element, &attribute)))
                    .map(|prefix| Some(prefix.to_owned())),
            );
            utilized.extend(self.inclusive_prefixes.iter().cloned());
            let mut keys: Vec<&Option<String>> = bindings
                .keys()
                .filter(|prefix| utilized.contains(prefix))
                .collect();
            if utilized.contains(&None) && !bindings.contains_key(&None) {
                keys.insert(0, &None);
            }
            keys
        } else {
            let mut keys: Vec<&Option<String>> = bindings.keys().collect();
            if !bindings.contains_key(&None) {
                keys.insert(0, &None);
            }
            keys
        };
        candidates.dedup();
        self.out.push(b'<');
        self.out.extend_from_slice(qname.as_bytes());
        for prefix in candidates {
            let uri = bindings.get(prefix).map(String::as_str).unwrap_or_default();
            let shown = rendered.get(prefix).map(String::as_str).unwrap_or_default();
            if uri == shown {
                continue;
            }
            match prefix {
                None => self.out.extend_from_slice(b" xmlns=\""),
                Some(prefix) => {
                    self.out.extend_from_slice(b" xmlns:");
                    self.out.extend_from_slice(prefix.as_bytes());
                    self.out.extend_from_slice(b"=\"");
                }
            }
            escape_attribute(uri, &mut self.out);
            self.out.push(b'"');
            rendered.insert(prefix.clone(), uri.to_owned());
        }
        let mut attributes: Vec<(&str, &str, &str, &str)> = element
            .attributes()
            .map(|attribute| {
                (
                    attribute.namespace().unwrap_or_default(),
                    attribute.name(),
                    attribute_qname(element, &attribute),
                    attribute.value(),
                )
            })
            .collect();
        for (name, value) in inherited_xml {
            if !attributes
                .iter()
                .any(|(ns, local, _, _)| *ns == XML_NAMESPACE && local == name)
            {
                attributes.push((XML_NAMESPACE, name, "", value));
            }
        }
        attributes.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
        for (namespace, local, qname, value) in attributes {
            self.out.push(b' ');
            if qname.is_empty() && namespace == XML_NAMESPACE {
                self.out.extend_from_slice(b"xml:");
                self.out.extend_from_slice(local.as_bytes());
            } else {
                self.out.extend_from_slice(qname.as_bytes());
            }
            self.out.extend_from_slice(b"=\"");
            escape_attribute(value, &mut self.out);
            self.out.push(b'"');
        }
        self.out.push(b'>');
        for child in element.children() {
            if Some(child.id()) == self.exclude {
                continue;
            }
            if child.is_element() {
                let mut child_bindings = bindings.clone();
                declare(child, &mut child_bindings);
                self.element(child, &child_bindings, &rendered, &[])?;
            } else if child.is_text() {
                escape_text(child.text().unwrap_or_default(), &mut self.out);
            } else {
                self.other(child);
            }
        }
        self.out.extend_from_slice(b"</");
        self.out.extend_from_slice(qname.as_bytes());
        self.out.push(b'>');
        Ok(())
    }
}

/// Text node escaping of Canonical XML.
fn escape_text(text: &str, out: &mut Vec<u8>) {
    for c in text.chars() {
        match c {
            '&' => out.extend_from_slice(b"&amp;"),
            '<' => out.extend_from_slice(b"&lt;"),
            '>' => out.extend_from_slice(b"&gt;"),
            '\r' => out.extend_from_slice(b"&#xD;"),
            c => {
                let mut buffer = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buffer).as_bytes());
            }
        }
    }
}

/// Attribute value escaping of Canonical XML.
fn escape_attribute(value: &str, out: &mut Vec<u8>) {
    for c in value.chars() {
        match c {
            '&' => out.extend_from_slice(b"&amp;"),
            '<' => out.extend_from_slice(b"&lt;"),
            '"' => out.extend_from_slice(b"&quot;"),
            '\t' => out.extend_from_slice(b"&#x9;"),
            '\n' => out.extend_from_slice(b"&#xA;"),
            '\r' => out.extend_from_slice(b"&#xD;"),
            c => {
                let mut buffer = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buffer).as_bytes());
            }
        }
    }
}
