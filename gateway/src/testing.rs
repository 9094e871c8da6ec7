//! An engine for in-process unit tests: the default routing table, the
//! built-in registries in-process, signature checks off (so tests build
//! envelopes without keys; [`signing_engine_with`] keeps them on), in-memory
//! storage.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use prost::Message as _;
use shep_adapters::InProcess;
use shep_nuc::ca::CertificateAuthority;
use shep_nuc::status::InProcessNuc;
use shep_proto::envelope::v1::{
    Body, Channel, MessageType, Sender, SignedEnvelope, Subject, subject,
};
use shep_registries::{RegistryData, RegistryKind};

use crate::config::GatewayConfig;
use crate::engine::Engine;
use crate::routes::{DEFAULT_ROUTES, RoutingTable};
use shep_nuc::revocation::RevocationCheck;
use shep_nuc::verify::SignatureVerifier;

/// The built-in applicant, registered in СКО (region 59).
pub(crate) const APPLICANT: &str = "850315301235";
/// An application service routed by region to [`ESIL_PROVIDER`].
pub(crate) const ESIL_SERVICE: &str = "guardianship-certificate-esil";
pub(crate) const ESIL_PROVIDER: &str = "arm-rshep-sko-esil-edu";

/// One CA per test binary: generating keys is the slow part.
pub(crate) fn ca() -> Arc<CertificateAuthority> {
    static CA: OnceLock<Arc<CertificateAuthority>> = OnceLock::new();
    CA.get_or_init(|| Arc::new(CertificateAuthority::generate().expect("a test CA")))
        .clone()
}

/// An engine as [`GatewayConfig`] `config` sets it up, signatures off.
pub(crate) fn engine_with(config: GatewayConfig) -> Arc<Engine> {
    Arc::new(bare_engine(config))
}

/// An engine with the default configuration over `storage`, signatures off.
pub(crate) fn engine_on(storage: crate::storage::Storage) -> Arc<Engine> {
    Arc::new(bare_engine(GatewayConfig::default()).with_storage(storage))
}

/// A journal whose writes fail while [`FailingJournal::fail`] says so, as a
/// full or failing disk would: the storage seam's injected I/O error. Like
/// the redb journal, a writer thread makes entries visible after their
/// "commit", in order (the store appends under its locks).
pub(crate) struct FailingJournal {
    failing: Arc<std::sync::atomic::AtomicBool>,
    hook: Arc<std::sync::OnceLock<crate::storage::OnCommit>>,
    writer: std::sync::Mutex<std::sync::mpsc::Sender<Committing>>,
}

type Committing = (
    crate::storage::Entry,
    tokio::sync::oneshot::Sender<Result<(), crate::storage::StorageError>>,
);

impl Default for FailingJournal {
    fn default() -> Self {
        let failing = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let hook: Arc<std::sync::OnceLock<crate::storage::OnCommit>> = Arc::default();
        let (writer, entries) = std::sync::mpsc::channel::<Committing>();
        {
            let failing = failing.clone();
            let hook = hook.clone();
            std::thread::spawn(move || {
                for (entry, done) in entries {
                    let outcome = if failing.load(std::sync::atomic::Ordering::SeqCst) {
                        Err(crate::storage::StorageError::unavailable(
                            "write the journal",
                            "no space left on device (injected)",
                        ))
                    } else {
                        if let Some(hook) = hook.get() {
                            hook(&entry);
                        }
                        Ok(())
                    };
                    let _ = done.send(outcome);
                }
            });
        }
        Self {
            failing,
            hook,
            writer: std::sync::Mutex::new(writer),
        }
    }
}

impl std::fmt::Debug for FailingJournal {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("FailingJournal")
            .finish_non_exhaustive()
    }
}

impl FailingJournal {
    pub(crate) fn fail(&self, failing: bool) {
        self.failing
            .store(failing, std::sync::atomic::Ordering::SeqCst);
    }
}

#[async_trait::async_trait]
impl crate::storage::Journal for FailingJournal {
    fn append(&self, entry: crate::storage::Entry) -> crate::storage::Ticket {
        let (done, ticket) = tokio::sync::oneshot::channel();
        let _ = self
            .writer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .send((entry, done));
        crate::storage::Ticket::from_writer(ticket)
    }

    fn on_commit(&self, hook: crate::storage::OnCommit) {
        let _ = self.hook.set(hook);
    }

    fn is_durable(&self) -> bool {
        true
    }

    fn backend(&self) -> &'static str {
        "failing"
    }

    async fn close(&self) {}
}

/// An engine as `config` sets it up, signatures off.
fn bare_engine(mut config: GatewayConfig) -> Engine {
    config.checks.verify_signatures = false;
    engine_as_configured(config)
}

/// An engine as `config` sets it up, signatures checked (when the config
/// says so) against [`ca`]'s chain and revocations.
pub(crate) fn signing_engine_with(config: GatewayConfig) -> Arc<Engine> {
    Arc::new(engine_as_configured(config))
}

fn engine_as_configured(config: GatewayConfig) -> Engine {
    let data = Arc::new(RegistryData::builtin());
    let mut registries = HashMap::new();
    for kind in RegistryKind::ALL {
        let id = kind.id();
        let adapter = InProcess::new(id, Arc::new(kind.registry(data.clone()))).boxed();
        registries.insert(kind, adapter);
    }
    let routes = RoutingTable::from_toml(DEFAULT_ROUTES, "embedded", &RegistryKind::IDS)
        .expect("the default table loads");
    let ca = ca();
    let verifier = SignatureVerifier::new(
        &[ca.root_der().to_vec()],
        &[ca.issuing_der().to_vec()],
        Duration::from_secs(300),
    )
    .expect("the test CA's chain");
    let revocation = RevocationCheck::new(InProcessNuc::new(ca).boxed(), Duration::from_secs(60));
    Engine::new(&config, routes, verifier, revocation, registries)
}

/// An engine with the default configuration, signatures off.
pub(crate) fn engine() -> Arc<Engine> {
    engine_with(GatewayConfig::default())
}

/// An unsigned application to [`ESIL_SERVICE`] from the portal.
pub(crate) fn application(message_id: &str) -> SignedEnvelope {
    envelope(Body {
        message_id: message_id.to_owned(),
        service_id: ESIL_SERVICE.to_owned(),
        ..portal_body()
    })
}

/// An unsigned ГБД ФЛ lookup of [`APPLICANT`] from the portal.
pub(crate) fn lookup(message_id: &str) -> SignedEnvelope {
    envelope(Body {
        message_id: message_id.to_owned(),
        service_id: "GbdflInfoByIin_v1".to_owned(),
        ..portal_body()
    })
}

/// A REQUEST from the portal about [`APPLICANT`], dated now; no service.
pub(crate) fn portal_body() -> Body {
    Body {
        message_type: MessageType::Request as i32,
        message_date: Some(prost_types::Timestamp::from(SystemTime::now())),
        sender: Some(Sender {
            sender_id: "pep".to_owned(),
        }),
        subject: Some(Subject {
            id: Some(subject::Id::Iin(APPLICANT.to_owned())),
        }),
        channel: Channel::Portal as i32,
        ..Body::default()
    }
}

fn envelope(body: Body) -> SignedEnvelope {
    SignedEnvelope {
        body: body.encode_to_vec(),
        ..SignedEnvelope::default()
    }
}

/// A fresh message id.
pub(crate) fn message_id() -> String {
    uuid::Uuid::new_v4().to_string()
}
