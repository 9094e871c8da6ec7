//! The listener's TLS: configured, or issued by the test НУЦ so that
//! participants can authenticate by client certificate out of the box.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use shep_nuc::ca::CertificateAuthority;
use tonic::transport::{Certificate, Identity, ServerTlsConfig};

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
) -> anyhow::Result<Option<ServerTlsConfig>> {
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
    let mut server = ServerTlsConfig::new().identity(Identity::from_pem(cert, key));
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
    if let Some(client_ca) = client_ca {
        // Asked for, not required by the handshake: a system may use its
        // password instead, and the admin API its token; the participant
        // services refuse a call that proves nobody.
        server = server
            .client_ca_root(Certificate::from_pem(client_ca))
            .client_auth_optional(true);
    }
    Ok(Some(server))
}
