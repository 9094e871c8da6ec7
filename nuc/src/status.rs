//! How a relying party (the gateway) asks the НУЦ about a certificate: a
//! tower [`Service`] from a certificate's issuer and serial number to its
//! [`CertificateStatus`],
//! in-process or over gRPC.

use std::future::{Ready, ready};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use shep_proto::catalogue::code_name;
use shep_proto::nuc::v1::nuc_client::NucClient;
use shep_proto::nuc::v1::{self as pb, StatusRequest, status_request};
use time::OffsetDateTime;
use tonic::transport::{Channel, Endpoint};
use tower::Service;
use tower::util::BoxCloneSyncService;

use crate::ca::{CertificateAuthority, CertificateStatus, RevocationReason, format_serial};

/// Why the НУЦ gave no status.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    /// The remote НУЦ's URL is not one.
    #[error("bad НУЦ url `{url}`: {source}")]
    BadUrl {
        url: String,
        #[source]
        source: tonic::transport::Error,
    },
    /// The remote НУЦ could not be reached or refused the query.
    #[error("{}: {}", code_name(.0.code()), .0.message())]
    Remote(#[source] tonic::Status),
}

/// A certificate as a status query names it: serial numbers are unique per
/// issuer only, so the issuer's distinguished name (DER) goes with it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CertificateId {
    pub issuer: Vec<u8>,
    pub serial: Vec<u8>,
}

/// A type-erased status adapter: a certificate's id in, status out.
pub type StatusAdapter = BoxCloneSyncService<CertificateId, CertificateStatus, StatusError>;

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

impl Service<CertificateId> for InProcessNuc {
    type Response = CertificateStatus;
    type Error = StatusError;
    type Future = Ready<Result<CertificateStatus, StatusError>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), StatusError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, id: CertificateId) -> Self::Future {
        ready(Ok(self.ca.status_of(&id.issuer, &id.serial)))
    }
}

/// Answers from a `shep.nuc.v1.Nuc` server.
#[derive(Debug, Clone)]
pub struct RemoteNuc {
    client: NucClient<Channel>,
}

impl RemoteNuc {
    /// Connects lazily to `url`.
    pub fn new(url: &str) -> Result<Self, StatusError> {
        let endpoint =
            Endpoint::from_shared(url.to_owned()).map_err(|source| StatusError::BadUrl {
                url: url.to_owned(),
                source,
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

impl Service<CertificateId> for RemoteNuc {
    type Response = CertificateStatus;
    type Error = StatusError;
    type Future = Pin<Box<dyn Future<Output = Result<CertificateStatus, StatusError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), StatusError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, id: CertificateId) -> Self::Future {
        let mut client = self.client.clone();
        Box::pin(async move {
            let response = client
                .get_status(StatusRequest {
                    id: Some(status_request::Id::Serial(format_serial(&id.serial))),
                    issuer_der: id.issuer,
                })
                .await
                .map_err(StatusError::Remote)?
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
