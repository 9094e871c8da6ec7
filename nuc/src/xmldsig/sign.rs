//! Making enveloped signatures: what a participant's signer does, for tests,
//! the simulator's own clients and the conformance kits.

use shep_proto::envelope::v1::SignatureAlgorithm;

use super::c14n::{C14nMethod, Standalone};
use super::{
    DIGEST_SHA256, DSIG_NS, ENVELOPED_SIGNATURE, XmlDsigError, ecdsa_der_to_raw, encode_base64,
    parse, signature_method,
};
use crate::ca::Signer;

/// Signs the standalone document `xml` (its root element, `URI=""`) and
/// returns it with a `ds:Signature` appended as the root's last child; the
/// rest of the text is kept byte for byte.
///
/// SignedInfo and the Reference's transform use `c14n`. The SignedInfo is
/// canonicalized in its final place (a child of the root, the root's
/// namespaces in scope), exactly as [`super::verify_enveloped`] will.
pub fn sign_enveloped(
    xml: &str,
    signer: &Signer,
    c14n: C14nMethod,
) -> Result<String, XmlDsigError> {
    let doc = parse(xml)?;
    let root = doc.root_element();
    // Same-document references select the nodes without comments, so the
    // digest never covers comments, whatever the method.
    let reference_method = match c14n {
        C14nMethod::InclusiveWithComments => C14nMethod::Inclusive,
        C14nMethod::ExclusiveWithComments => C14nMethod::Exclusive,
        other => other,
    };
    let content = Standalone::new(root)?.canonicalize(root, reference_method, &[], None, true)?;
    let digest = ring::digest::digest(&ring::digest::SHA256, &content);
    let algorithm = signer.algorithm();
    let signed_info = format!(
        concat!(
            "<ds:SignedInfo>",
            "<ds:CanonicalizationMethod Algorithm=\"{c14n}\"></ds:CanonicalizationMethod>",
            "<ds:SignatureMethod Algorithm=\"{method}\"></ds:SignatureMethod>",
            "<ds:Reference URI=\"\"><ds:Transforms>",
            "<ds:Transform Algorithm=\"{enveloped}\"></ds:Transform>",
            "<ds:Transform Algorithm=\"{c14n}\"></ds:Transform>",
            "</ds:Transforms>",
            "<ds:DigestMethod Algorithm=\"{digest_method}\"></ds:DigestMethod>",
            "<ds:DigestValue>{digest}</ds:DigestValue>",
            "</ds:Reference></ds:SignedInfo>"
        ),
        c14n = c14n.uri(),
        method = signature_method(algorithm)?,
        enveloped = ENVELOPED_SIGNATURE,
        digest_method = DIGEST_SHA256,
        digest = encode_base64(digest.as_ref()),
    );
    let certificates: String = std::iter::once(signer.certificate_der())
        .chain(signer.chain_der().iter().map(Vec::as_slice))
        .map(|der| {
            format!(
                "<ds:X509Certificate>{}</ds:X509Certificate>",
                encode_base64(der)
            )
        })
        .collect();
    let signature = |value: &str| {
        format!(
            "<ds:Signature xmlns:ds=\"{DSIG_NS}\">{signed_info}\
             <ds:SignatureValue>{value}</ds:SignatureValue>\
             <ds:KeyInfo><ds:X509Data>{certificates}</ds:X509Data></ds:KeyInfo>\
             </ds:Signature>"
        )
    };

    // The SignatureValue is outside SignedInfo: any placeholder gives the
    // same canonical SignedInfo as the final document.
    let draft = splice(xml, root, &signature(""))?;
    let draft_doc = parse(&draft)?;
    let draft_root = draft_doc.root_element();
    let info = draft_root
        .last_element_child()
        .filter(|node| node.has_tag_name((DSIG_NS, "Signature")))
        .and_then(|signature| signature.first_element_child())
        .ok_or(XmlDsigError::Malformed("the signature was not inserted"))?;
    let bytes = Standalone::new(draft_root)?.canonicalize(info, c14n, &[], None, false)?;
    let mut value = signer.sign(&bytes)?.value;
    if algorithm == SignatureAlgorithm::EcdsaP256Sha256 {
        value = ecdsa_der_to_raw(&value)?;
    }
    splice(xml, root, &signature(&encode_base64(&value)))
}

/// `xml` with `insert` as the last child of `root`: before its end tag, or
/// in place of `/>` for an empty-element tag.
fn splice(xml: &str, root: roxmltree::Node<'_, '_>, insert: &str) -> Result<String, XmlDsigError> {
    let range = root.range();
    let element = xml.get(range.clone()).ok_or(XmlDsigError::Malformed(
        "the root element's text is out of range",
    ))?;
    let mut out = String::with_capacity(xml.len() + insert.len() + 64);
    if let Some(start_tag) = element.strip_suffix("/>")
        && !root.has_children()
    {
        let qname_end = start_tag
            .find(|c: char| c.is_ascii_whitespace())
            .unwrap_or(start_tag.len());
        out.push_str(&xml[..range.start]);
        out.push_str(start_tag);
        out.push('>');
        out.push_str(insert);
        out.push_str("</");
        out.push_str(&start_tag[1..qname_end]);
        out.push('>');
    } else {
        let end_tag = element
            .rfind("</")
            .ok_or(XmlDsigError::Malformed("the root element has no end tag"))?;
        out.push_str(&xml[..range.start + end_tag]);
        out.push_str(insert);
        out.push_str(&xml[range.start + end_tag..range.end]);
    }
    out.push_str(&xml[range.end..]);
    Ok(out)
}
