//! The gateway's `grpc.health.v1` statuses: the gateway as a whole (`""`), each
//! service it serves, and each registry behind it as
//! `shep.registry.v1.Registry/<id>`.
//!
//! A registry's status has two sources. Its *base* is SERVING for an
//! in-process registry, and what a background probe last saw for a remote one
//! (the remote's own `grpc.health.v1.Health/Check`, unreachable counting as
//! NOT_SERVING). An *override* (a fault flipping a registry to NOT_SERVING)
//! wins over the base until it is removed. Like tonic-health, the handle that
//! changes statuses is separate from the served service.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use shep_nuc::service::NucGrpcAdapter;
use shep_proto::admin::v1::admin_server::AdminServer;
use shep_proto::gateway::v1::gateway_server::GatewayServer;
use shep_proto::nuc::v1::nuc_server::NucServer;
use shep_proto::provider::v1::provider_server::ProviderServer;
use tokio::sync::Mutex;
use tonic::server::NamedService;
use tonic::transport::Endpoint;
use tonic_health::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::health_server::{Health as HealthService, HealthServer};
use tonic_health::pb::{HealthCheckRequest, health_check_response};
use tonic_health::server::HealthReporter;

use crate::config::REGISTRY_IDS;
use crate::grpc::{AdminGrpcAdapter, GatewayGrpcAdapter, ProviderGrpcAdapter};

/// The prefix of the per-registry health names.
pub const REGISTRY_SERVICE: &str = "shep.registry.v1.Registry";

/// The health name of the storage backend: NOT_SERVING while it cannot
/// store work (a JetStream backend cut off from NATS), when Submit and
/// Report are refused with `STORAGE_UNAVAILABLE`.
pub const STORAGE_NAME: &str = "shep.storage";

/// The id of the НУЦ among the per-registry health names.
pub const NUC_ID: &str = "nuc";

/// The health name of registry `id`: `shep.registry.v1.Registry/<id>`.
pub fn registry_name(id: &str) -> String {
    format!("{REGISTRY_SERVICE}/{id}")
}

/// One health name's two sources of status.
#[derive(Debug, Clone, Copy, Default)]
struct Entry {
    /// What the gateway knows by itself; `None` for a name that only an
    /// override put there.
    base: Option<ServingStatus>,
    /// What a fault set, winning over `base`.
    forced: Option<ServingStatus>,
}

impl Entry {
    fn effective(self) -> Option<ServingStatus> {
        self.forced.or(self.base)
    }
}

/// The handle that sets the served health statuses.
#[derive(Debug, Clone)]
pub struct Health {
    reporter: HealthReporter,
    // A tokio mutex, held across the reporter's update, so that a probe and an
    // override changing the same name at once publish in the order they decided.
    entries: Arc<Mutex<HashMap<String, Entry>>>,
}

impl Health {
    /// Creates the statuses and the `grpc.health.v1.Health` service serving
    /// them: SERVING for the gateway, its services and every registry except
    /// those in `remote` (registry ids, `nuc` included), which stay UNKNOWN
    /// until their first probe ([`Health::probe`]).
    pub async fn new(remote: &[&str]) -> (Self, HealthServer<impl HealthService>) {
        let (reporter, server) = tonic_health::server::health_reporter();
        let health = Self {
            reporter,
            entries: Arc::new(Mutex::new(HashMap::new())),
        };
        let services = [
            "",
            <GatewayServer<GatewayGrpcAdapter> as NamedService>::NAME,
            <ProviderServer<ProviderGrpcAdapter> as NamedService>::NAME,
            <AdminServer<AdminGrpcAdapter> as NamedService>::NAME,
            <NucServer<NucGrpcAdapter> as NamedService>::NAME,
        ];
        for service in services.into_iter().chain([STORAGE_NAME]) {
            health.set_base(service, ServingStatus::Serving).await;
        }
        for id in REGISTRY_IDS.iter().copied().chain([NUC_ID]) {
            let status = if remote.contains(&id) {
                ServingStatus::Unknown
            } else {
                ServingStatus::Serving
            };
            health.set_base(&registry_name(id), status).await;
        }
        (health, server)
    }

    /// The per-registry health names: `shep.registry.v1.Registry/<id>` for
    /// ГБД ФЛ, ГБД ЮЛ, ЕНИС and the НУЦ.
    pub fn names() -> Vec<String> {
        REGISTRY_IDS
            .iter()
            .copied()
            .chain([NUC_ID])
            .map(registry_name)
            .collect()
    }

    /// Serves the storage backend's state under [`STORAGE_NAME`].
    pub async fn set_storage(&self, serving: bool) {
        let status = if serving {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        self.set_base(STORAGE_NAME, status).await;
    }

    /// Forces `name` to `status` whatever its probe says, or, with `None`,
    /// gives it back to its probe. A name the gateway does not know is served
    /// while forced and unknown again (NOT_FOUND) once released.
    pub async fn set_override(&self, name: &str, status: Option<ServingStatus>) {
        self.update(name, |entry| entry.forced = status).await;
    }

    /// The status `name` is served with now; `None` when it is not served.
    pub async fn status(&self, name: &str) -> Option<ServingStatus> {
        self.entries
            .lock()
            .await
            .get(name)
            .and_then(|entry| entry.effective())
    }

    async fn set_base(&self, name: &str, status: ServingStatus) {
        self.update(name, |entry| entry.base = Some(status)).await;
    }

    /// Applies `change` to `name`'s entry and publishes the result if it
    /// changed, so Watch streams see changes rather than every probe.
    async fn update(&self, name: &str, change: impl FnOnce(&mut Entry)) {
        let mut entries = self.entries.lock().await;
        let entry = entries.entry(name.to_owned()).or_default();
        let before = entry.effective();
        change(entry);
        let after = entry.effective();
        if after.is_none() {
            entries.remove(name);
        }
        if before == after {
            return;
        }
        match after {
            Some(status) => self.reporter.set_service_status(name, status).await,
            None => self.reporter.clone().clear_service_status(name).await,
        }
    }

    /// The probe of remote registry `id` at `url`: every `every`, asks the
    /// remote's `grpc.health.v1.Health/Check` about the whole server and
    /// mirrors SERVING or NOT_SERVING into `shep.registry.v1.Registry/<id>`.
    /// The caller spawns the returned future and aborts it to stop probing.
    pub fn probe(
        &self,
        id: &str,
        url: &str,
        every: Duration,
    ) -> Result<impl Future<Output = ()> + Send + 'static, tonic::transport::Error> {
        // A probe that outlives its period would delay the next one.
        let channel = Endpoint::from_shared(url.to_owned())?
            .connect_timeout(every)
            .timeout(every)
            .connect_lazy();
        let health = self.clone();
        let name = registry_name(id);
        let url = url.to_owned();
        Ok(async move {
            let mut client = HealthClient::new(channel);
            let mut interval = tokio::time::interval(every);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut last = None;
            loop {
                interval.tick().await;
                let answer = client
                    .check(HealthCheckRequest {
                        service: String::new(),
                    })
                    .await;
                let status = match &answer {
                    Ok(response)
                        if response.get_ref().status()
                            == health_check_response::ServingStatus::Serving =>
                    {
                        ServingStatus::Serving
                    }
                    _ => ServingStatus::NotServing,
                };
                if last != Some(status) {
                    match &answer {
                        Ok(response) => tracing::info!(
                            registry = %name, %url, answer = ?response.get_ref().status(),
                            "registry health changed"
                        ),
                        Err(error) => tracing::warn!(
                            registry = %name, %url, code = ?error.code(), error = %error.message(),
                            "registry unreachable"
                        ),
                    }
                    last = Some(status);
                }
                health.set_base(&name, status).await;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_override_wins_over_the_base_until_released() {
        let (health, _server) = Health::new(&[]).await;
        let gbdfl = registry_name("gbdfl");
        assert_eq!(health.status(&gbdfl).await, Some(ServingStatus::Serving));
        health
            .set_override(&gbdfl, Some(ServingStatus::NotServing))
            .await;
        // A probe's answer does not undo a fault.
        health.set_base(&gbdfl, ServingStatus::Serving).await;
        assert_eq!(health.status(&gbdfl).await, Some(ServingStatus::NotServing));
        health.set_override(&gbdfl, None).await;
        assert_eq!(health.status(&gbdfl).await, Some(ServingStatus::Serving));
    }

    #[tokio::test]
    async fn a_remote_registry_is_unknown_until_probed_and_unknown_names_come_and_go() {
        let (health, _server) = Health::new(&["enis", NUC_ID]).await;
        for id in ["enis", NUC_ID] {
            assert_eq!(
                health.status(&registry_name(id)).await,
                Some(ServingStatus::Unknown)
            );
        }
        assert_eq!(
            health.status(&registry_name("gbdul")).await,
            Some(ServingStatus::Serving)
        );
        assert_eq!(health.status("shep.nothing.v1.Nothing").await, None);
        health
            .set_override("shep.nothing.v1.Nothing", Some(ServingStatus::NotServing))
            .await;
        assert_eq!(
            health.status("shep.nothing.v1.Nothing").await,
            Some(ServingStatus::NotServing)
        );
        health.set_override("shep.nothing.v1.Nothing", None).await;
        assert_eq!(health.status("shep.nothing.v1.Nothing").await, None);
    }

    #[test]
    fn names_cover_every_registry_and_the_nuc() {
        assert_eq!(
            Health::names(),
            [
                "shep.registry.v1.Registry/gbdfl",
                "shep.registry.v1.Registry/gbdul",
                "shep.registry.v1.Registry/enis",
                "shep.registry.v1.Registry/nuc",
            ]
        );
    }
}
