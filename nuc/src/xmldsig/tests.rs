use std::sync::OnceLock;
use std::time::Duration;

use shep_proto::envelope::v1::Reason;
use time::OffsetDateTime;

use super::*;
use crate::ca::{CertificateAuthority, IdentitySpec, KeyAlgorithm, Signer};
use crate::verify::{SignatureVerifier, VerifyError};

fn c14n(xml: &str, method: C14nMethod) -> String {
    let doc = parse(xml).unwrap();
    String::from_utf8(canonicalize(doc.root_element(), method, &[]).unwrap()).unwrap()
}

/// The element named `name` (local name) in `doc`.
fn find<'a, 'input>(
    doc: &'a roxmltree::Document<'input>,
    name: &str,
) -> roxmltree::Node<'a, 'input> {
    doc.descendants()
        .find(|node| node.tag_name().name() == name)
        .unwrap()
}

// ---- Canonical XML 1.0, §3 examples ----

const PIS_AND_COMMENTS: &str = "<?xml version=\"1.0\"?>\n\n<?xml-stylesheet   href=\"doc.xsl\"\n   type=\"text/xsl\"   ?>\n\n<doc>Hello, world!<!-- Comment 1 --></doc>\n\n<?pi-without-data     ?>\n\n<!-- Comment 2 -->\n\n<!-- Comment 3 -->\n";

#[test]
fn c14n_spec_3_1_pis_and_comments() {
    assert_eq!(
        c14n(PIS_AND_COMMENTS, C14nMethod::Inclusive),
        "<?xml-stylesheet href=\"doc.xsl\"\n   type=\"text/xsl\"   ?>\n<doc>Hello, world!</doc>\n<?pi-without-data?>"
    );
    assert_eq!(
        c14n(PIS_AND_COMMENTS, C14nMethod::InclusiveWithComments),
        "<?xml-stylesheet href=\"doc.xsl\"\n   type=\"text/xsl\"   ?>\n<doc>Hello, world!<!-- Comment 1 --></doc>\n<?pi-without-data?>\n<!-- Comment 2 -->\n<!-- Comment 3 -->"
    );
    assert_eq!(
        c14n(PIS_AND_COMMENTS, C14nMethod::ExclusiveWithComments),
        c14n(PIS_AND_COMMENTS, C14nMethod::InclusiveWithComments)
    );
}

#[test]
fn c14n_spec_3_2_whitespace_in_content_is_kept() {
    let xml = "<doc>\n   <clean>   </clean>\n   <dirty>   A   B   </dirty>\n   <mixed>\n      A\n      <clean>   </clean>\n      B\n      <dirty>   A   B   </dirty>\n      C\n   </mixed>\n</doc>";
    assert_eq!(c14n(xml, C14nMethod::Inclusive), xml);
}

/// §3.3 without its DTD (refused here), so without e9's defaulted attribute.
#[test]
fn c14n_spec_3_3_start_and_end_tags() {
    let xml = r#"<doc>
   <e1   />
   <e2   ></e2>
   <e3   name = "elem3"   id="elem3"   />
   <e4   name="elem4"   id="elem4"   ></e4>
   <e5 a:attr="out" b:attr="sorted" attr2="all" attr="I'm"
      xmlns:b="http://www.ietf.org"
      xmlns:a="http://www.w3.org"
      xmlns="http://example.org"/>
   <e6 xmlns="" xmlns:a="http://www.w3.org">
      <e7 xmlns="http://www.ietf.org">
         <e8 xmlns="" xmlns:a="http://www.w3.org">
            <e9 xmlns="" xmlns:a="http://www.ietf.org"/>
         </e8>
      </e7>
   </e6>
</doc>"#;
    let expected = r#"<doc>
   <e1></e1>
   <e2></e2>
   <e3 id="elem3" name="elem3"></e3>
   <e4 id="elem4" name="elem4"></e4>
   <e5 xmlns="http://example.org" xmlns:a="http://www.w3.org" xmlns:b="http://www.ietf.org" attr="I'm" attr2="all" b:attr="sorted" a:attr="out"></e5>
   <e6 xmlns:a="http://www.w3.org">
      <e7 xmlns="http://www.ietf.org">
         <e8 xmlns="">
            <e9 xmlns:a="http://www.ietf.org"></e9>
         </e8>
      </e7>
   </e6>
</doc>"#;
    assert_eq!(c14n(xml, C14nMethod::Inclusive), expected);
}

/// §3.4 without its DTD: references, CDATA and attribute normalization.
#[test]
fn c14n_spec_3_4_character_modifications() {
    let xml = "<doc>\n   <text>First line&#x0d;&#10;Second line</text>\n   <value>&#x32;</value>\n   <compute><![CDATA[value>\"0\" && value<\"10\" ?\"valid\":\"error\"]]></compute>\n   <compute expr='value>\"0\" &amp;&amp; value&lt;\"10\" ?\"valid\":\"error\"'>valid</compute>\n   <norm attr=' &apos;   &#x20;&#13;&#xa;&#9;   &apos; '/>\n</doc>";
    let expected = "<doc>\n   <text>First line&#xD;\nSecond line</text>\n   <value>2</value>\n   <compute>value&gt;\"0\" &amp;&amp; value&lt;\"10\" ?\"valid\":\"error\"</compute>\n   <compute expr=\"value>&quot;0&quot; &amp;&amp; value&lt;&quot;10&quot; ?&quot;valid&quot;:&quot;error&quot;\">valid</compute>\n   <norm attr=\" '    &#xD;&#xA;&#x9;   ' \"></norm>\n</doc>";
    assert_eq!(c14n(xml, C14nMethod::Inclusive), expected);
}

/// The exclusive c14n spec's motivating example: a subset whose apex has an
/// ancestor namespace it does not use.
#[test]
fn exclusive_leaves_out_unused_ancestor_namespaces() {
    let xml = "<n0:local xmlns:n0=\"foo:bar\" xmlns:n3=\"ftp://example.org\"><n1:elem2 xmlns:n1=\"http://example.net\" xml:lang=\"en\"><n3:stuff xmlns:n3=\"ftp://example.org\"/></n1:elem2></n0:local>";
    let doc = parse(xml).unwrap();
    let apex = find(&doc, "elem2");
    let subset = |method, prefixes: &[String]| {
        String::from_utf8(canonicalize_subset(doc.root_element(), apex, method, prefixes).unwrap())
            .unwrap()
    };
    assert_eq!(
        subset(C14nMethod::Inclusive, &[]),
        "<n1:elem2 xmlns:n0=\"foo:bar\" xmlns:n1=\"http://example.net\" xmlns:n3=\"ftp://example.org\" xml:lang=\"en\"><n3:stuff></n3:stuff></n1:elem2>"
    );
    assert_eq!(
        subset(C14nMethod::Exclusive, &[]),
        "<n1:elem2 xmlns:n1=\"http://example.net\" xml:lang=\"en\"><n3:stuff xmlns:n3=\"ftp://example.org\"></n3:stuff></n1:elem2>"
    );
    // A PrefixList prefix is rendered as inclusive c14n would.
    assert_eq!(
        subset(C14nMethod::Exclusive, &["n0".to_owned()]),
        "<n1:elem2 xmlns:n0=\"foo:bar\" xmlns:n1=\"http://example.net\" xml:lang=\"en\"><n3:stuff xmlns:n3=\"ftp://example.org\"></n3:stuff></n1:elem2>"
    );
}

#[test]
fn inclusive_subset_inherits_xml_attributes() {
    let xml = "<a xml:lang=\"kk\" xml:space=\"preserve\"><b xml:lang=\"ru\"><c/></b></a>";
    let doc = parse(xml).unwrap();
    let c = find(&doc, "c");
    let out = canonicalize_subset(doc.root_element(), c, C14nMethod::Inclusive, &[]).unwrap();
    assert_eq!(out, b"<c xml:lang=\"ru\" xml:space=\"preserve\"></c>");
    let out = canonicalize_subset(doc.root_element(), c, C14nMethod::Exclusive, &[]).unwrap();
    assert_eq!(out, b"<c></c>");
}

#[test]
fn embedded_element_renders_only_the_outer_namespaces_it_uses() {
    let xml = "<S:Envelope xmlns:S=\"urn:soap\" xmlns:x=\"urn:x\" xmlns=\"urn:default\"><S:Body><x:doc a=\"1\"><inner/></x:doc></S:Body></S:Envelope>";
    let doc = parse(xml).unwrap();
    let out = canonicalize(find(&doc, "doc"), C14nMethod::Inclusive, &[]).unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "<x:doc xmlns=\"urn:default\" xmlns:x=\"urn:x\" a=\"1\"><inner></inner></x:doc>"
    );
}

#[test]
fn ecdsa_values_convert_both_ways() {
    let mut raw = vec![0u8; 64];
    raw[1] = 0x80; // r = 0x0080…: one leading zero dropped, one added back
    raw[32] = 0xff; // s with the top bit set
    raw[63] = 1;
    let der = ecdsa_raw_to_der(&raw).unwrap();
    assert_eq!(&der[..4], &[0x30, der.len() as u8 - 2, 0x02, 32]);
    assert_eq!(ecdsa_der_to_raw(&der).unwrap(), raw);
    assert!(ecdsa_raw_to_der(&raw[..63]).is_err());
    assert!(ecdsa_der_to_raw(&der[..der.len() - 1]).is_err());
}

// ---- Signing and verifying ----

struct Fixture {
    ca: CertificateAuthority,
    signers: Vec<(KeyAlgorithm, Signer)>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let ca = CertificateAuthority::generate().unwrap();
        let signers = [
            KeyAlgorithm::Ed25519,
            KeyAlgorithm::EcdsaP256,
            KeyAlgorithm::Rsa2048,
        ]
        .into_iter()
        .map(|algorithm| {
            let spec = IdentitySpec {
                algorithm,
                ..IdentitySpec::individual("850315301235", "СЕРИКБАЕВ НУРЛАН")
            };
            (algorithm, ca.issue(&spec).unwrap().signer().unwrap())
        })
        .collect();
        Fixture { ca, signers }
    })
}

fn signer(algorithm: KeyAlgorithm) -> &'static Signer {
    &fixture()
        .signers
        .iter()
        .find(|(a, _)| *a == algorithm)
        .unwrap()
        .1
}

fn verifier() -> SignatureVerifier {
    let ca = &fixture().ca;
    SignatureVerifier::new(&[ca.root_der().to_vec()], &[], Duration::from_secs(60)).unwrap()
}

/// The structural check, then the НУЦ verifier, as the gateway does it.
fn verify_all(xml: &str, root_name: &str) -> Result<VerifiedXml, XmlDsigError> {
    let doc = parse(xml)?;
    verify_enveloped(&doc, find(&doc, root_name))
}

fn cryptographic(verified: &VerifiedXml) -> Result<String, VerifyError> {
    verifier()
        .verify(
            Some(&verified.signature),
            &verified.signed_info,
            OffsetDateTime::now_utc(),
        )
        .map(|identity| identity.iin.clone().unwrap_or_default())
}

const BUSINESS: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ns2:GetPersonRequest xmlns:ns2=\"http://shep.sim/person\" xmlns=\"http://shep.sim/default\" Id=\"r1\">\n  <ns2:iin>850315301235</ns2:iin>\n  <comment a=\"x &amp; y\">Тест &lt;&gt;<!-- note --></comment>\n</ns2:GetPersonRequest>\n";

#[test]
fn sign_then_verify_every_algorithm_and_method() {
    for (algorithm, signer) in &fixture().signers {
        for method in C14nMethod::ALL {
            let signed = sign_enveloped(BUSINESS, signer, method).unwrap();
            assert!(signed.starts_with(&BUSINESS[..BUSINESS.find("</ns2:Get").unwrap()]));
            let verified = verify_all(&signed, "GetPersonRequest")
                .unwrap_or_else(|error| panic!("{algorithm:?} {method:?}: {error}"));
            assert_eq!(
                verified.signature.algorithm,
                i32::from(signer.algorithm()),
                "{algorithm:?}"
            );
            assert_eq!(verified.signature.certificate_der, signer.certificate_der());
            assert_eq!(verified.signature.chain_der, signer.chain_der());
            assert_eq!(
                cryptographic(&verified)
                    .unwrap_or_else(|error| panic!("{algorithm:?} {method:?}: {error}")),
                "850315301235"
            );
        }
    }
}

#[test]
fn signed_info_is_what_ring_verifies() {
    let signed = sign_enveloped(
        BUSINESS,
        signer(KeyAlgorithm::EcdsaP256),
        C14nMethod::Exclusive,
    )
    .unwrap();
    let verified = verify_all(&signed, "GetPersonRequest").unwrap();
    let info = String::from_utf8(verified.signed_info.clone()).unwrap();
    assert!(
        info.starts_with("<ds:SignedInfo xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\">"),
        "{info}"
    );
    let (_, certificate) =
        x509_parser::parse_x509_certificate(&verified.signature.certificate_der).unwrap();
    let key = ring::signature::UnparsedPublicKey::new(
        &ring::signature::ECDSA_P256_SHA256_ASN1,
        certificate.public_key().subject_public_key.data.to_vec(),
    );
    key.verify(&verified.signed_info, &verified.signature.value)
        .unwrap();
}

fn in_soap(signed: &str) -> String {
    let body = signed
        .trim_start_matches("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n")
        .trim_end();
    format!(
        "<S:Envelope xmlns:S=\"http://schemas.xmlsoap.org/soap/envelope/\"><S:Body><ns1:SendMessage xmlns:ns1=\"http://bip.bee.kz/SyncChannel/v10/Types\"><request><requestData><data>{body}</data></requestData></request></ns1:SendMessage></S:Body></S:Envelope>"
    )
}

#[test]
fn signed_document_embedded_in_soap_still_verifies() {
    for (algorithm, signer) in &fixture().signers {
        for method in C14nMethod::ALL {
            let signed = sign_enveloped(BUSINESS, signer, method).unwrap();
            let soap = in_soap(&signed);
            let doc = parse(&soap).unwrap();
            let data = find(&doc, "data");
            let root = data.first_element_child().unwrap();
            let verified = verify_enveloped(&doc, root)
                .unwrap_or_else(|error| panic!("{algorithm:?} {method:?}: {error}"));
            assert_eq!(cryptographic(&verified).unwrap(), "850315301235");
            // The same bytes as in the standalone document.
            let standalone = verify_all(&signed, "GetPersonRequest").unwrap();
            assert_eq!(standalone.signed_info, verified.signed_info);
        }
    }
}

/// A signer whose namespaces are all declared above the signed element in
/// the SOAP envelope would not have a standalone document; one that uses an
/// outer prefix declared at its own root (as it must) verifies.
#[test]
fn outer_namespace_used_by_the_subtree_is_rendered_at_its_root() {
    let xml = "<p:doc xmlns:p=\"urn:p\"><p:a>1</p:a></p:doc>";
    let signed = sign_enveloped(xml, signer(KeyAlgorithm::Ed25519), C14nMethod::Inclusive).unwrap();
    // Moved into an envelope that declares p on an ancestor instead.
    let moved = signed.replacen(" xmlns:p=\"urn:p\"", "", 1);
    let soap = format!(
        "<S:Envelope xmlns:S=\"urn:s\" xmlns:p=\"urn:p\"><data>{moved}</data></S:Envelope>"
    );
    let doc = parse(&soap).unwrap();
    let verified = verify_enveloped(&doc, find(&doc, "doc")).unwrap();
    assert_eq!(cryptographic(&verified).unwrap(), "850315301235");
}

#[test]
fn changed_text_is_a_digest_mismatch() {
    let signed = sign_enveloped(
        BUSINESS,
        signer(KeyAlgorithm::Rsa2048),
        C14nMethod::Inclusive,
    )
    .unwrap();
    let tampered = signed.replacen("850315301235</ns2:iin>", "850315301236</ns2:iin>", 1);
    assert_ne!(tampered, signed);
    let error = verify_all(&tampered, "GetPersonRequest").unwrap_err();
    assert!(
        matches!(error, XmlDsigError::DigestMismatch { ref uri } if uri.is_empty()),
        "{error}"
    );
    assert_eq!(error.reason(), Reason::SignatureInvalid);
}

#[test]
fn changed_signature_value_passes_the_structure_but_not_the_verifier() {
    for (algorithm, signer) in &fixture().signers {
        let signed = sign_enveloped(BUSINESS, signer, C14nMethod::Exclusive).unwrap();
        let start = signed.find("<ds:SignatureValue>").unwrap() + "<ds:SignatureValue>".len();
        // Flip bits in the middle of the value (still base64).
        let position = start + 20;
        let flipped = if &signed[position..=position] == "A" {
            "B"
        } else {
            "A"
        };
        let tampered = format!(
            "{}{}{}",
            &signed[..position],
            flipped,
            &signed[position + 1..]
        );
        let verified = verify_all(&tampered, "GetPersonRequest").unwrap();
        let error = cryptographic(&verified).unwrap_err();
        assert_eq!(
            error.reason(),
            Reason::SignatureInvalid,
            "{algorithm:?}: {error}"
        );
    }
}

#[test]
fn changed_signed_info_is_refused_by_the_verifier() {
    // URI="#r1" names the same element: the digest still matches (which
    // proves Id lookup), but the SignedInfo is no longer what was signed.
    let signed = sign_enveloped(
        BUSINESS,
        signer(KeyAlgorithm::Ed25519),
        C14nMethod::Inclusive,
    )
    .unwrap();
    let tampered = signed.replacen("URI=\"\"", "URI=\"#r1\"", 1);
    let verified = verify_all(&tampered, "GetPersonRequest").unwrap();
    assert_eq!(
        cryptographic(&verified).unwrap_err().reason(),
        Reason::SignatureInvalid
    );
    let unknown = signed.replacen("URI=\"\"", "URI=\"#nowhere\"", 1);
    let error = verify_all(&unknown, "GetPersonRequest").unwrap_err();
    assert_eq!(error.reason(), Reason::MalformedSignature, "{error}");
}

#[test]
fn reference_to_a_part_only_is_refused() {
    let xml = "<doc><part Id=\"p\">x</part><rest>y</rest></doc>";
    let signed = sign_enveloped(xml, signer(KeyAlgorithm::Ed25519), C14nMethod::Inclusive).unwrap();
    let doc = parse(xml).unwrap();
    let part = canonicalize_subset(
        doc.root_element(),
        find(&doc, "part"),
        C14nMethod::Inclusive,
        &[],
    )
    .unwrap();
    let digest = encode_base64(ring::digest::digest(&ring::digest::SHA256, &part).as_ref());
    let start = signed.find("<ds:DigestValue>").unwrap() + "<ds:DigestValue>".len();
    let end = signed.find("</ds:DigestValue>").unwrap();
    let partial = format!("{}{digest}{}", &signed[..start], &signed[end..]).replacen(
        "URI=\"\"",
        "URI=\"#p\"",
        1,
    );
    let error = verify_all(&partial, "doc").unwrap_err();
    assert!(
        matches!(error, XmlDsigError::Malformed(message) if message.contains("whole")),
        "{error}"
    );
}

#[test]
fn removed_signature_is_not_signed() {
    let signed = sign_enveloped(
        BUSINESS,
        signer(KeyAlgorithm::Ed25519),
        C14nMethod::Inclusive,
    )
    .unwrap();
    let start = signed.find("<ds:Signature ").unwrap();
    let end = signed.find("</ds:Signature>").unwrap() + "</ds:Signature>".len();
    let unsigned = format!("{}{}", &signed[..start], &signed[end..]);
    let error = verify_all(&unsigned, "GetPersonRequest").unwrap_err();
    assert!(matches!(error, XmlDsigError::NotSigned));
    assert_eq!(error.reason(), Reason::NotSigned);
    // Two signatures: malformed.
    let twice = format!(
        "{}{}{}",
        &signed[..end],
        &signed[start..end],
        &signed[end..]
    );
    let error = verify_all(&twice, "GetPersonRequest").unwrap_err();
    assert!(matches!(error, XmlDsigError::Malformed(_)), "{error}");
}

#[test]
fn gost_and_unknown_algorithms_are_refused_by_name() {
    let signed = sign_enveloped(
        BUSINESS,
        signer(KeyAlgorithm::Rsa2048),
        C14nMethod::Inclusive,
    )
    .unwrap();
    for gost in [
        GOST_34310,
        "urn:ietf:params:xml:ns:pkigovkz:xmlsec:algorithms:gostr34102015-gostr34112015-512",
    ] {
        let tampered = signed.replacen(RSA_SHA256, gost, 1);
        let error = verify_all(&tampered, "GetPersonRequest").unwrap_err();
        assert!(
            matches!(error, XmlDsigError::GostNotSupported(ref uri) if uri == gost),
            "{error}"
        );
        assert!(error.to_string().contains("not supported by shep-sim"));
        assert_eq!(error.reason(), Reason::MalformedSignature);
    }
    let sha1 = signed.replacen(RSA_SHA256, "http://www.w3.org/2000/09/xmldsig#rsa-sha1", 1);
    assert!(matches!(
        verify_all(&sha1, "GetPersonRequest").unwrap_err(),
        XmlDsigError::UnsupportedAlgorithm(_)
    ));
    let sha1_digest = signed.replacen(DIGEST_SHA256, "http://www.w3.org/2000/09/xmldsig#sha1", 1);
    assert!(matches!(
        verify_all(&sha1_digest, "GetPersonRequest").unwrap_err(),
        XmlDsigError::UnsupportedAlgorithm(_)
    ));
    let xpath = signed.replacen(
        ENVELOPED_SIGNATURE,
        "http://www.w3.org/TR/1999/REC-xpath-19991116",
        1,
    );
    assert!(matches!(
        verify_all(&xpath, "GetPersonRequest").unwrap_err(),
        XmlDsigError::UnsupportedAlgorithm(_)
    ));
}

#[test]
fn missing_certificate_and_bad_base64() {
    let signed = sign_enveloped(
        BUSINESS,
        signer(KeyAlgorithm::Ed25519),
        C14nMethod::Inclusive,
    )
    .unwrap();
    let start = signed.find("<ds:KeyInfo>").unwrap();
    let end = signed.find("</ds:KeyInfo>").unwrap() + "</ds:KeyInfo>".len();
    let no_key_info = format!("{}{}", &signed[..start], &signed[end..]);
    let error = verify_all(&no_key_info, "GetPersonRequest").unwrap_err();
    assert!(matches!(error, XmlDsigError::MissingCertificate), "{error}");
    assert_eq!(error.reason(), Reason::MalformedSignature);
    let bad = signed.replacen("<ds:SignatureValue>", "<ds:SignatureValue>!", 1);
    assert!(matches!(
        verify_all(&bad, "GetPersonRequest").unwrap_err(),
        XmlDsigError::BadBase64("SignatureValue")
    ));
    // Wrapped base64 (as many signers write it) is fine.
    let wrapped = signed.replacen("<ds:X509Certificate>", "<ds:X509Certificate>\n", 1);
    let wrapped = wrapped.replacen("</ds:X509Certificate>", "\n  </ds:X509Certificate>", 1);
    verify_all(&wrapped, "GetPersonRequest").unwrap();
}

#[test]
fn dtds_and_entity_bombs_are_refused_at_parse() {
    let laughs = "<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [\n<!ENTITY lol \"lol\">\n<!ENTITY lol2 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">\n<!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\">\n<!ENTITY lol4 \"&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;\">\n<!ENTITY lol5 \"&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;\">\n<!ENTITY lol6 \"&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;\">\n<!ENTITY lol7 \"&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;\">\n<!ENTITY lol8 \"&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;\">\n<!ENTITY lol9 \"&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;\">\n]>\n<lolz>&lol9;</lolz>";
    let error = parse(laughs).unwrap_err();
    assert!(matches!(error, XmlDsigError::Parse(_)), "{error}");
    assert_eq!(error.reason(), Reason::MalformedSignature);
    let xxe = "<!DOCTYPE d [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><d>&x;</d>";
    assert!(matches!(parse(xxe).unwrap_err(), XmlDsigError::Parse(_)));
    let error =
        sign_enveloped(laughs, signer(KeyAlgorithm::Ed25519), C14nMethod::Inclusive).unwrap_err();
    assert!(matches!(error, XmlDsigError::Parse(_)));
}

#[test]
fn empty_root_element_is_signed_too() {
    let signed = sign_enveloped(
        "<doc a=\"1\"/>",
        signer(KeyAlgorithm::EcdsaP256),
        C14nMethod::Exclusive,
    )
    .unwrap();
    assert!(signed.starts_with("<doc a=\"1\"><ds:Signature"), "{signed}");
    assert!(signed.ends_with("</ds:Signature></doc>"));
    let verified = verify_all(&signed, "doc").unwrap();
    assert_eq!(cryptographic(&verified).unwrap(), "850315301235");
}

/// Documents signed by xmlsec1 1.2.37 (libxmlsec, as Java/.NET/Python
/// signers are interoperable with): exclusive c14n with PrefixLists and a
/// default-namespace `Signature`; a `#Id` reference with inclusive c14n
/// WithComments and pretty-printed SignedInfo. Both verify standalone and
/// inside a SOAP envelope; the certificates are checked as of their issue.
#[test]
fn documents_signed_by_xmlsec1_verify() {
    let pem = include_str!("testdata/xmlsec1-ca.pem");
    let certificates: Vec<Vec<u8>> =
        <rustls_pki_types::CertificateDer<'_> as rustls_pki_types::pem::PemObject>::pem_slice_iter(
            pem.as_bytes(),
        )
        .map(|der| der.unwrap().to_vec())
        .collect();
    let verifier = SignatureVerifier::new(
        &certificates[..1],
        &certificates[1..],
        Duration::from_secs(60),
    )
    .unwrap();
    for (name, xml) in [
        ("exc", include_str!("testdata/xmlsec1-rsa-exc-c14n.xml")),
        ("id", include_str!("testdata/xmlsec1-ecdsa-id-ref.xml")),
    ] {
        let body = xml.trim_start_matches("<?xml version=\"1.0\"?>\n");
        for text in [xml.to_owned(), in_soap(body)] {
            let doc = parse(&text).unwrap();
            let verified = verify_enveloped(&doc, find(&doc, "root"))
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            let (_, leaf) =
                x509_parser::parse_x509_certificate(&verified.signature.certificate_der).unwrap();
            let issued =
                OffsetDateTime::from_unix_timestamp(leaf.validity().not_before.timestamp())
                    .unwrap();
            let signer = verifier
                .verify(
                    Some(&verified.signature),
                    &verified.signed_info,
                    issued + time::Duration::hours(2),
                )
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(signer.iin.as_deref(), Some("850315301235"));
            let tampered = text
                .replacen(">1<", ">2<", 1)
                .replacen("&lt;cdata&gt;", "&lt;CDATA&gt;", 1)
                .replacen("<![CDATA[<cdata>]]>", "<![CDATA[<CDATA>]]>", 1);
            let doc = parse(&tampered).unwrap();
            assert!(
                matches!(
                    verify_enveloped(&doc, find(&doc, "root")),
                    Err(XmlDsigError::DigestMismatch { .. })
                ),
                "{name}"
            );
        }
    }
}

#[test]
fn deep_nesting_is_refused_without_recursing() {
    let deep = |depth: usize| format!("{}{}", "<a>".repeat(depth), "</a>".repeat(depth));
    let signer = signer(KeyAlgorithm::Ed25519);
    let signed = sign_enveloped(&deep(255), signer, C14nMethod::Inclusive).unwrap();
    verify_all(&signed, "a").unwrap();
    let error = sign_enveloped(&deep(257), signer, C14nMethod::Inclusive).unwrap_err();
    assert!(matches!(error, XmlDsigError::Malformed(_)), "{error}");
    // Deep enough to overflow a recursive walk: refused, not a crash.
    let xml = deep(200_000);
    let doc = parse(&xml).unwrap();
    let error = verify_enveloped(&doc, doc.root_element()).unwrap_err();
    assert!(matches!(error, XmlDsigError::Malformed(_)), "{error}");
}
