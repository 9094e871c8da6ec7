//! The structural and digest half of verifying an enveloped signature; the
//! cryptographic half is [`crate::verify::SignatureVerifier`]'s.

use roxmltree::{Document, Node};
use shep_proto::envelope::v1::{Signature, SignatureAlgorithm};

use super::c14n::{C14nMethod, Standalone};
use super::{
    DIGEST_SHA256, DSIG_NS, ENVELOPED_SIGNATURE, EXC_C14N_NS, VerifiedXml, WSU_NS, XmlDsigError,
    decode_base64, ecdsa_raw_to_der, signature_algorithm, unsupported,
};

/// Checks the enveloped `ds:Signature` among the children of `signed_root`:
/// its structure, algorithms and every Reference digest, and that one
/// Reference covers `signed_root` itself (a signature over a part only would
/// leave the rest of the business data open to change).
///
/// `signed_root` is the element that was signed as the root of its own
/// document (in SOAP: the element in `<data>`); it is canonicalized as such,
/// whatever it is embedded in. The signature itself is not checked here:
/// hand [`VerifiedXml::signature`] and [`VerifiedXml::signed_info`] to
/// [`crate::verify::SignatureVerifier`].
pub fn verify_enveloped(
    doc: &Document<'_>,
    signed_root: Node<'_, '_>,
) -> Result<VerifiedXml, XmlDsigError> {
    if !std::ptr::eq(signed_root.document(), doc) || !signed_root.is_element() {
        return Err(XmlDsigError::Malformed(
            "the signed root is not an element of this document",
        ));
    }
    let view = Standalone::new(signed_root)?;
    let mut signatures = signed_root
        .children()
        .filter(|child| child.has_tag_name((DSIG_NS, "Signature")));
    let signature = signatures.next().ok_or(XmlDsigError::NotSigned)?;
    if signatures.next().is_some() {
        return Err(XmlDsigError::Malformed(
            "more than one ds:Signature in the signed element",
        ));
    }
    let mut parts = elements(signature);
    let signed_info = expect(parts.next(), "SignedInfo")?;
    let signature_value = expect(parts.next(), "SignatureValue")?;
    let key_info = parts
        .next()
        .filter(|node| node.has_tag_name((DSIG_NS, "KeyInfo")))
        .ok_or(XmlDsigError::MissingCertificate)?;

    let mut info = elements(signed_info);
    let canonicalization = expect(info.next(), "CanonicalizationMethod")?;
    let (method, prefixes) = c14n_method(canonicalization)?;
    let algorithm = signature_algorithm(algorithm_of(expect(info.next(), "SignatureMethod")?)?)?;
    let mut covers_root = false;
    let mut references = 0;
    for reference in info {
        if !reference.has_tag_name((DSIG_NS, "Reference")) {
            return Err(XmlDsigError::Malformed(
                "SignedInfo holds something other than References after SignatureMethod",
            ));
        }
        if references == MAX_REFERENCES {
            return Err(XmlDsigError::Malformed("more than 16 References"));
        }
        let apex = check_reference(&view, reference, signature)?;
        covers_root |= apex == signed_root;
        references += 1;
    }
    if references == 0 {
        return Err(XmlDsigError::Malformed("SignedInfo has no Reference"));
    }
    if !covers_root {
        return Err(XmlDsigError::Malformed(
            "no Reference covers the whole signed element",
        ));
    }
    let signed_info_c14n = view.canonicalize(signed_info, method, &prefixes, None, false)?;

    let mut value = decode_base64(text_of(signature_value), "SignatureValue")?;
    if value.is_empty() {
        return Err(XmlDsigError::Malformed("SignatureValue is empty"));
    }
    if algorithm == SignatureAlgorithm::EcdsaP256Sha256 {
        value = ecdsa_raw_to_der(&value)?;
    }
    let mut certificates = elements(key_info)
        .filter(|node| node.has_tag_name((DSIG_NS, "X509Data")))
        .flat_map(elements)
        .filter(|node| node.has_tag_name((DSIG_NS, "X509Certificate")))
        .map(|node| decode_base64(text_of(node), "X509Certificate"))
        .collect::<Result<Vec<_>, _>>()?
        .into_iter();
    let certificate_der = certificates
        .next()
        .filter(|der| !der.is_empty())
        .ok_or(XmlDsigError::MissingCertificate)?;
    Ok(VerifiedXml {
        signature: Signature {
            algorithm: algorithm.into(),
            certificate_der,
            value,
            chain_der: certificates.collect(),
        },
        signed_info: signed_info_c14n,
    })
}

/// References per signature, at most: each canonicalizes up to the whole
/// document.
const MAX_REFERENCES: usize = 16;

/// Checks one Reference's digest; returns the element it covers.
fn check_reference<'a, 'input>(
    view: &Standalone<'a, 'input>,
    reference: Node<'a, 'input>,
    signature: Node<'a, 'input>,
) -> Result<Node<'a, 'input>, XmlDsigError> {
    let uri = reference
        .attribute("URI")
        .ok_or(XmlDsigError::Malformed("a Reference without URI"))?;
    let apex = resolve(view.root(), uri)?;
    let mut children = elements(reference).peekable();
    let mut enveloped = false;
    let mut c14n = None;
    if let Some(transforms) = children.next_if(|node| node.has_tag_name((DSIG_NS, "Transforms"))) {
        for transform in elements(transforms) {
            if !transform.has_tag_name((DSIG_NS, "Transform")) {
                return Err(XmlDsigError::Malformed("Transforms holds a non-Transform"));
            }
            if c14n.is_some() {
                return Err(XmlDsigError::Malformed(
                    "a canonicalization must be the last transform",
                ));
            }
            if algorithm_of(transform)? == ENVELOPED_SIGNATURE {
                enveloped = true;
            } else {
                c14n = Some(c14n_method(transform)?);
            }
        }
    }
    let digest_method = algorithm_of(expect(children.next(), "DigestMethod")?)?;
    if digest_method != DIGEST_SHA256 {
        return Err(unsupported(digest_method));
    }
    let expected = decode_base64(
        text_of(expect(children.next(), "DigestValue")?),
        "DigestValue",
    )?;
    if children.next().is_some() {
        return Err(XmlDsigError::Malformed(
            "unexpected element after DigestValue",
        ));
    }
    // Without a canonicalization transform, the node set is serialized by
    // inclusive c14n without comments (XML-DSig §4.3.3.2).
    let (method, prefixes) = c14n.unwrap_or((C14nMethod::Inclusive, Vec::new()));
    // Same-document references select the node set without comments
    // (XML-DSig §4.3.3.3), whatever the canonicalization.
    let method = match method {
        C14nMethod::InclusiveWithComments => C14nMethod::Inclusive,
        C14nMethod::ExclusiveWithComments => C14nMethod::Exclusive,
        other => other,
    };
    let exclude = enveloped.then(|| signature.id());
    let bytes = view.canonicalize(apex, method, &prefixes, exclude, uri.is_empty())?;
    let digest = ring::digest::digest(&ring::digest::SHA256, &bytes);
    if digest.as_ref() != expected.as_slice() {
        return Err(XmlDsigError::DigestMismatch {
            uri: uri.to_owned(),
        });
    }
    Ok(apex)
}

/// The element a same-document URI names within `root`'s document: `""` is
/// `root`, `#id` the one element with that `Id`, `ID`, `id` or `wsu:Id`.
fn resolve<'a, 'input>(
    root: Node<'a, 'input>,
    uri: &str,
) -> Result<Node<'a, 'input>, XmlDsigError> {
    if uri.is_empty() {
        return Ok(root);
    }
    let id = uri
        .strip_prefix('#')
        .filter(|id| !id.is_empty() && !id.starts_with("xpointer("))
        .ok_or(XmlDsigError::Malformed(
            "a Reference URI must be \"\" or \"#id\" (same document)",
        ))?;
    let mut found = root.descendants().filter(|node| {
        node.attributes().any(|attribute| {
            let named = match attribute.namespace() {
                None => matches!(attribute.name(), "Id" | "ID" | "id"),
                Some(namespace) => namespace == WSU_NS && attribute.name() == "Id",
            };
            named && attribute.value() == id
        })
    });
    let target = found.next().ok_or(XmlDsigError::Malformed(
        "a Reference names an Id that no element carries",
    ))?;
    if found.next().is_some() {
        return Err(XmlDsigError::Malformed(
            "a Reference names an Id that several elements carry",
        ));
    }
    Ok(target)
}

/// The c14n method of a CanonicalizationMethod or Transform element, and the
/// InclusiveNamespaces PrefixList of the exclusive ones.
fn c14n_method(node: Node<'_, '_>) -> Result<(C14nMethod, Vec<String>), XmlDsigError> {
    let uri = algorithm_of(node)?;
    let method = C14nMethod::from_uri(uri).ok_or_else(|| unsupported(uri))?;
    let mut prefixes = Vec::new();
    if method.is_exclusive() {
        for inclusive in
            elements(node).filter(|n| n.has_tag_name((EXC_C14N_NS, "InclusiveNamespaces")))
        {
            let list = inclusive.attribute("PrefixList").unwrap_or_default();
            prefixes.extend(list.split_ascii_whitespace().map(str::to_owned));
        }
    }
    Ok((method, prefixes))
}

fn algorithm_of<'a>(node: Node<'a, '_>) -> Result<&'a str, XmlDsigError> {
    node.attribute("Algorithm").ok_or(XmlDsigError::Malformed(
        "an algorithm element without Algorithm",
    ))
}

/// The element children of `node`.
fn elements<'a, 'input>(node: Node<'a, 'input>) -> impl Iterator<Item = Node<'a, 'input>> {
    node.children().filter(Node::is_element)
}

/// `node` if it is the XML-DSig element `name`.
fn expect<'a, 'input>(
    node: Option<Node<'a, 'input>>,
    name: &'static str,
) -> Result<Node<'a, 'input>, XmlDsigError> {
    node.filter(|node| node.has_tag_name((DSIG_NS, name)))
        .ok_or(XmlDsigError::Malformed(match name {
            "SignedInfo" => "ds:Signature must start with SignedInfo",
            "SignatureValue" => "SignatureValue must follow SignedInfo",
            "CanonicalizationMethod" => "SignedInfo must start with CanonicalizationMethod",
            "SignatureMethod" => "SignatureMethod must follow CanonicalizationMethod",
            "DigestMethod" => "a Reference without DigestMethod",
            _ => "a Reference without DigestValue",
        }))
}

/// The text content of an element (a base64 value, possibly wrapped).
fn text_of<'a>(node: Node<'a, '_>) -> &'a str {
    node.text().unwrap_or_default()
}
