//! How the gateway asks the НУЦ about a certificate: a tower [`Service`] from a
//! serial number to its [`CertificateStatus`], in-process or over gRPC.

use std::future::{Ready, ready};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use shep_proto::nuc::v1::nuc_client::NucClient;
use shep_proto::nuc::v1::{self as pb, StatusRequest, status_request};
use shep_registries::nuc::{
    CertificateAuthority, CertificateStatus, RevocationReason, format_serial,
};
use time::OffsetDateTime;
use tonic::transport::{Channel, Endpoint};
use tower::Service;
use tower::util::BoxCloneSyncService;

use crate::AdapterError;

/// A type-erased status adapter: serial number in, status out.
pub type StatusAdapter = BoxCloneSyncService<Vec<u8>, CertificateStatus, AdapterError>;

/// Answers from a CA in this process.
#[derive(Debug, Clone)]
pub struct InProcessNuc {
    ca: Arc<CertificateAuthority>,
}

impl InProcessNuc {
    pub fn new(ca: Arc<CertificateAuthority>) -> Self {
        Self { ca }
    }

    /// Boxes the adapter.
    pub fn boxed(self) -> StatusAdapter {
        BoxCloneSyncService::new(self)
    }
}

impl Service<Vec<u8>> for InProcessNuc {
    type Response = CertificateStatus;
    type Error = AdapterError;
    type Future = Ready<Result<CertificateStatus, AdapterError>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), AdapterError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, serial: Vec<u8>) -> Self::Future {
        ready(Ok(self.ca.status(&serial)))
    }
}

/// Answers from a `shep.nuc.v1.Nuc` server.
#[derive(Debug, Clone)]
pub struct RemoteNuc {
    client: NucClient<Channel>,
}

impl RemoteNuc {
    /// Connects lazily to `url`.
    pub fn new(url: &str) -> Result<Self, AdapterError> {
        let endpoint =
            Endpoint::from_shared(url.to_owned()).map_err(|error| AdapterError::Unavailable {
                registry: "nuc".to_owned(),
                message: format!("bad url `{url}`: {error}"),
            })?;
        Ok(Self {
            client: NucClient::new(endpoint.connect_lazy()),
        })
    }

    /// Boxes the adapter.
    pub fn boxed(self) -> StatusAdapter {
        BoxCloneSyncService::new(self)
    }
}

impl Service<Vec<u8>> for RemoteNuc {
    type Response = CertificateStatus;
    type Error = AdapterError;
    type Future = Pin<Box<dyn Future<Output = Result<CertificateStatus, AdapterError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), AdapterError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, serial: Vec<u8>) -> Self::Future {
        let mut client = self.client.clone();
        Box::pin(async move {
            let unavailable = |message: String| AdapterError::Unavailable {
                registry: "nuc".to_owned(),
                message,
            };
            let response = client
                .get_status(StatusRequest {
                    id: Some(status_request::Id::Serial(format_serial(&serial))),
                })
                .await
                .map_err(|status| {
                    unavailable(format!("{:?}: {}", status.code(), status.message()))
                })?
                .into_inner();
            Ok(match response.status() {
                pb::CertificateStatus::Good => CertificateStatus::Good,
                pb::CertificateStatus::Revoked => CertificateStatus::Revoked {
                    at: response
                        .revoked_at
                        .and_then(|time| OffsetDateTime::from_unix_timestamp(time.seconds).ok())
                        .unwrap_or(OffsetDateTime::UNIX_EPOCH),
                    reason: response
                        .reason
                        .parse()
                        .unwrap_or(RevocationReason::Unspecified),
                },
                pb::CertificateStatus::Unknown | pb::CertificateStatus::Unspecified => {
                    CertificateStatus::Unknown
                }
            })
        })
    }
}
