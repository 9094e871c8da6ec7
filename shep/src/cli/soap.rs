//! `shep send --soap`: the same lookup or application as ШЭП's SOAP, its
//! business data signed as XML (XMLDSig), posted to the gateway's SOAP
//! front door (docs/SOAP.md).

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use shep_nuc::ca::Signer;
use shep_nuc::xmldsig::{C14nMethod, sign_enveloped};
use shep_proto::envelope::v1::Body;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio_rustls::rustls;

const SOAP_ENV: &str = "http://schemas.xmlsoap.org/soap/envelope/";

/// What `--soap` sends.
#[derive(Debug)]
pub(super) struct SoapSend<'a> {
    pub(super) gateway: &'a str,
    pub(super) data_dir: &'a Path,
    pub(super) system: &'a str,
    pub(super) password: Option<&'a str>,
    pub(super) session: Option<&'a str>,
    pub(super) lookup: bool,
}

/// Signs `body`'s data as XML and sends it; prints the answer, or fails
/// with the fault's codes.
pub(super) async fn send(how: SoapSend<'_>, signer: &Signer, body: &Body) -> anyhow::Result<()> {
    let data = sign_enveloped(
        &shep_gateway::xmldata::body_to_xml(body),
        signer,
        C14nMethod::Exclusive,
    )
    .context("signing the business data (XMLDSig)")?;
    let escape = shep_gateway::xmldata::escape;
    let date = OffsetDateTime::now_utc().format(&Rfc3339)?;
    let password = how
        .password
        .map(|password| format!("<password>{}</password>", escape(password)))
        .unwrap_or_default();
    let info = format!(
        "<messageId>{}</messageId><serviceId>{}</serviceId>{}<messageDate>{date}</messageDate><sender><senderId>{}</senderId>{password}</sender>",
        escape(&body.message_id),
        escape(&body.service_id),
        if how.lookup {
            ""
        } else {
            "<messageType>REQUEST</messageType>"
        },
        escape(how.system),
    );
    let (path, message) = if how.lookup {
        (
            "/bip-sync/",
            format!(
                "<ns1:SendMessage xmlns:ns1=\"http://bip.bee.kz/SyncChannel/v10/Types\"><request><requestInfo>{info}</requestInfo><requestData><data>{data}</data></requestData></request></ns1:SendMessage>"
            ),
        )
    } else {
        (
            "/bip-async/",
            format!(
                "<ns1:sendMessage xmlns:ns1=\"http://bip.bee.kz/AsyncChannel/v10/Interfaces\"><request><messageInfo>{info}</messageInfo><messageData><data>{data}</data></messageData></request></ns1:sendMessage>"
            ),
        )
    };
    let envelope =
        format!("<S:Envelope xmlns:S=\"{SOAP_ENV}\"><S:Body>{message}</S:Body></S:Envelope>");
    let url = format!("{}{path}", how.gateway.trim_end_matches('/'));
    let tls = if url.starts_with("https://") {
        Some(client_tls(how.data_dir, how.system)?)
    } else {
        None
    };
    // The test session, as for gRPC: the `x-shep-session` header.
    let headers: Vec<(&str, &str)> = how
        .session
        .map(|session| (shep_gateway::toolkit::SESSION_HEADER, session))
        .into_iter()
        .collect();
    let (status, answer) = shep_gateway::soap_client::post(&url, envelope, tls, &headers)
        .await
        .map_err(anyhow::Error::msg)?;
    let document = roxmltree::Document::parse(&answer)
        .with_context(|| format!("the gateway answered HTTP {status} with no XML: {answer}"))?;
    let text = |name: &str| {
        document
            .descendants()
            .find(|node| node.tag_name().name() == name)
            .and_then(|node| node.text())
            .unwrap_or_default()
            .to_owned()
    };
    if status != 200 {
        let reason = document
            .descendants()
            .find(|node| node.tag_name().name() == "subError")
            .and_then(|sub| {
                sub.children()
                    .find(|node| node.tag_name().name() == "errorCode")
            })
            .and_then(|node| node.text())
            .unwrap_or("-");
        anyhow::bail!(
            "SOAP fault {} (reason {reason}): {}",
            text("errorCode"),
            text("errorMessage")
        );
    }
    if how.lookup {
        println!(
            "{} {} (response {})",
            text("code"),
            text("message"),
            text("messageId")
        );
        if let Some(data) = document
            .descendants()
            .find(|node| node.tag_name().name() == "lookup")
        {
            println!("{}", &answer[data.range()]);
        }
    } else {
        println!("accepted over SOAP: message_id {}", text("messageId"));
    }
    Ok(())
}

/// TLS to the gateway: its НУЦ's root, and `system`'s transport certificate.
fn client_tls(data_dir: &Path, system: &str) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let dir = shep_gateway::server::DataDir(data_dir.to_owned());
    let read = |path: &Path| {
        std::fs::read(path).with_context(|| {
            format!(
                "reading `{}` (the data directory of `shep serve`: --data-dir)",
                path.display()
            )
        })
    };
    let mut roots = rustls::RootCertStore::empty();
    for certificate in CertificateDer::pem_slice_iter(&read(&dir.root_certificate())?) {
        roots.add(certificate?)?;
    }
    let (key, cert) = dir.system_identity(system);
    let chain = CertificateDer::pem_slice_iter(&read(&cert)?).collect::<Result<Vec<_>, _>>()?;
    let key = PrivateKeyDer::from_pem_slice(&read(&key)?)?;
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_client_auth_cert(chain, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
