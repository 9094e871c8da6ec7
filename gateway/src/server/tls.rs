//! The listener's TLS: configured, or issued by the test НУЦ so that
//! participants can authenticate by client certificate out of the box.

use std::net::SocketAddr;
use std::path::PathBuf;

use std::sync::Arc;

use anyhow::Context as _;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use shep_nuc::ca::CertificateAuthority;
use tokio_rustls::rustls;

use super::DataDir;
use crate::config::{GatewayConfig, ParticipantAuth};

/// The listener's TLS settings: `tls.cert` when set; else, when participants
/// authenticate, a certificate the test НУЦ issues into the data directory.
/// Client certificates chain to `tls.client_ca`, or to the trust anchors
/// when participants authenticate.
pub(super) fn server_tls(
    config: &GatewayConfig,
    dir: &DataDir,
    ca: &CertificateAuthority,
    addr: SocketAddr,
    anchors: &[Vec<u8>],
) -> anyhow::Result<Option<Arc<rustls::ServerConfig>>> {
    let read = |path: &PathBuf| {
        std::fs::read(path).with_context(|| format!("reading `{}`", path.display()))
    };
    let tls = &config.tls;
    let required = config.auth.participants == ParticipantAuth::Required;
    let (cert, key) = match (&tls.cert, &tls.key) {
        (Some(cert), Some(key)) => (read(cert)?, read(key)?),
        _ if required => {
            let (key, cert) = dir.listener_identity();
            if !key.exists() {
                let mut hosts = vec![
                    "localhost".to_owned(),
                    "127.0.0.1".to_owned(),
                    "::1".to_owned(),
                ];
                let ip = addr.ip().to_string();
                if !addr.ip().is_unspecified() && !hosts.contains(&ip) {
                    hosts.push(ip);
                }
                let parent = key.parent().expect("a file in the data directory");
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("creating `{}`", parent.display()))?;
                ca.issue_server(&hosts)?.write(parent, "gateway")?;
            }
            (read(&cert)?, read(&key)?)
        }
        _ => return Ok(None),
    };
    let client_ca = match &tls.client_ca {
        Some(path) => Some(read(path)?),
        None if required => Some(
            anchors
                .iter()
                .map(|der| shep_nuc::ca::pem_certificate(der))
                .collect::<String>()
                .into_bytes(),
        ),
        None => None,
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?;
    let builder = match client_ca {
        Some(client_ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for certificate in CertificateDer::pem_slice_iter(&client_ca) {
                roots
                    .add(certificate.context("reading the client CA certificates")?)
                    .context("a client CA certificate")?;
            }
            // Asked for, not required by the handshake: a system may use its
            // password instead, and the admin API its token; the participant
            // services refuse a call that proves nobody.
            let verifier =
                rustls::server::WebPkiClientVerifier::builder_with_provider(roots.into(), provider)
                    .allow_unauthenticated()
                    .build()
                    .context("the client certificate verifier")?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let chain = CertificateDer::pem_slice_iter(&cert)
        .collect::<Result<Vec<_>, _>>()
        .context("reading the listener's certificate (`tls.cert`)")?;
    let key =
        PrivateKeyDer::from_pem_slice(&key).context("reading the listener's key (`tls.key`)")?;
    let mut server = builder
        .with_single_cert(chain, key)
        .context("the listener's certificate and key (`tls.cert`, `tls.key`)")?;
    // gRPC needs h2; SOAP clients and the admin JSON's ask for HTTP/1.1.
    server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Some(Arc::new(server)))
}
