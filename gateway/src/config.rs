//! The gateway's configuration: a TOML file whose every key is optional.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use shep_registries::{PopulationConfig, RegistryKind};

/// The registries the gateway knows, by id ([`RegistryKind::IDS`]).
pub const REGISTRY_IDS: &[&str] = &RegistryKind::IDS;

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read `{path}`: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{path}`: {message}")]
    Parse { path: String, message: String },
    #[error("{0}")]
    Invalid(String),
}

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatewayConfig {
    /// Address of the gRPC server.
    pub listen: SocketAddr,
    /// Where the test НУЦ, demo identities and the admin token live.
    pub data_dir: PathBuf,
    /// The routing table file; the embedded default when absent.
    pub routes: Option<PathBuf>,
    pub trust: TrustConfig,
    pub checks: ChecksConfig,
    pub delivery: DeliveryConfig,
    /// Per registry id: how to reach it.
    pub registries: BTreeMap<String, RegistryConfig>,
    /// The in-process registries' data: seed, size, absent share, fixtures.
    pub population: PopulationConfig,
    pub audit: AuditConfig,
    pub admin: AdminConfig,
    pub tls: TlsConfig,
    pub auth: AuthConfig,
    pub nuc: NucConfig,
    pub journal: JournalConfig,
    pub cluster: ClusterConfig,
    pub calendar: CalendarConfig,
    pub toolkit: ToolkitConfig,
    pub health: HealthConfig,
    pub limits: LimitsConfig,
    pub telemetry: TelemetryConfig,
}

/// OTLP export of the message spans (docs/OPERATIONS.md, "Traces"); off
/// unless `otlp_endpoint` is set.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetryConfig {
    /// An OTLP/gRPC collector, plaintext: `http://HOST:PORT` (4317 is the
    /// usual port). Absent: no export, and no tracing layer for it.
    pub otlp_endpoint: Option<String>,
    /// The resource's `service.name`.
    pub service_name: String,
    /// The share of traces recorded (0.0-1.0) where a trace starts here; a
    /// message with a `traceparent` follows its caller's sampled flag.
    pub sampling_ratio: f64,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            otlp_endpoint: None,
            service_name: "shep-sim".to_owned(),
            sampling_ratio: 1.0,
        }
    }
}

impl TelemetryConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if let Some(endpoint) = &self.otlp_endpoint {
            let invalid = |problem: &str| {
                ConfigError::Invalid(format!("`telemetry.otlp_endpoint` `{endpoint}`: {problem}"))
            };
            let uri: http::Uri = endpoint
                .parse()
                .map_err(|error| invalid(&format!("not a URL ({error})")))?;
            // The exporter's TLS would need trust roots of its own; a
            // collector beside a simulator listens in plaintext.
            if uri.scheme_str() != Some("http") {
                return Err(invalid(
                    "expected http://HOST:PORT (OTLP/gRPC in plaintext)",
                ));
            }
            if uri.host().is_none_or(str::is_empty) {
                return Err(invalid("no host"));
            }
        }
        if self.service_name.trim().is_empty() {
            return Err(ConfigError::Invalid(
                "`telemetry.service_name` must not be empty".to_owned(),
            ));
        }
        if !(0.0..=1.0).contains(&self.sampling_ratio) {
            return Err(ConfigError::Invalid(
                "`telemetry.sampling_ratio` must be 0.0-1.0".to_owned(),
            ));
        }
        Ok(())
    }
}

/// Bounds on the work the gateway takes on.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Envelopes (Call, Submit, Report) worked on at once; one more is
    /// refused at once with `OVERLOADED` (RESOURCE_EXHAUSTED with a retry hint) rather than queued.
    pub max_concurrent: usize,
    /// The largest gRPC message taken or sent, in bytes: a request over it
    /// is refused with `TOO_LARGE` (RESOURCE_EXHAUSTED, the limit in the
    /// metadata). ШЭП carries scans inline, so tens of MiB by default.
    pub max_message_bytes: usize,
    /// The largest attachment of an envelope, in bytes (`TOO_LARGE`); the
    /// whole message's limit bounds it too.
    pub max_attachment_bytes: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_concurrent: 1024,
            max_message_bytes: 64 << 20,
            max_attachment_bytes: 32 << 20,
        }
    }
}

/// The integration-testing toolkit: scenarios and the exchange journal.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ToolkitConfig {
    /// Scenario files (JSON or TOML, the `shep.admin.v1.Scenario` message in
    /// its JSON form), defined at start.
    pub scenarios: Vec<PathBuf>,
    /// Record exchanges for `Admin.ListExchanges` / `VerifyExchanges`; off
    /// for load runs that want nothing but routing.
    pub exchanges: bool,
    /// Exchanges kept; the oldest are dropped (and counted) beyond.
    pub exchanges_capacity: usize,
}

impl Default for ToolkitConfig {
    fn default() -> Self {
        Self {
            scenarios: Vec::new(),
            exchanges: true,
            exchanges_capacity: 10_000,
        }
    }
}

/// The `grpc.health.v1` statuses of the registries.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HealthConfig {
    /// How often a remote registry (or НУЦ) is asked for its health, in
    /// milliseconds; also how long one probe may take.
    pub probe_interval_ms: u64,
}

impl Default for HealthConfig {
    fn default() -> Self {
        Self {
            probe_interval_ms: 2000,
        }
    }
}

/// Where accepted applications and their statuses are kept.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum JournalMode {
    /// `<data_dir>/journal.redb`, fsync'd (group commit) before every receipt.
    #[default]
    Disk,
    /// Nothing on disk: a restart loses everything. For pure load tests.
    Memory,
}

/// The journal.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JournalConfig {
    pub mode: JournalMode,
}

/// Several gateway nodes sharing their state through NATS JetStream
/// (docs/OPERATIONS.md, "A cluster"). Without `nats`, this node keeps its own
/// state as `journal.mode` says.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterConfig {
    /// The NATS server(s), e.g. `nats://127.0.0.1:4222` (several separated by
    /// commas): applications, statuses and provider queues live in a
    /// JetStream stream there, and `journal.mode` is not used.
    pub nats: Option<String>,
    /// Names the stream (`<PREFIX>_LOG`) and its subjects (`<prefix>.>`):
    /// nodes with the same prefix share their state.
    pub prefix: String,
    /// Copies of the stream on a JetStream cluster (1, 3 or 5).
    pub replicas: usize,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            nats: None,
            prefix: "shep".to_owned(),
            replicas: 1,
        }
    }
}

/// Exceptions to the working-day calendar, as `YYYY-MM-DD`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CalendarConfig {
    /// Extra days off: movable holidays (Курбан айт), bridge days.
    pub extra_holidays: Vec<String>,
    /// Weekend days worked instead.
    pub extra_working_days: Vec<String>,
}

impl CalendarConfig {
    /// The calendar these exceptions make.
    pub fn calendar(&self) -> Result<crate::calendar::Calendar, ConfigError> {
        let parse = |key: &str, dates: &[String]| {
            dates
                .iter()
                .map(|date| {
                    crate::calendar::parse_date(date).map_err(|problem| {
                        ConfigError::Invalid(format!("`calendar.{key}`: {problem}"))
                    })
                })
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(crate::calendar::Calendar::new(
            parse("extra_holidays", &self.extra_holidays)?,
            parse("extra_working_days", &self.extra_working_days)?,
        ))
    }
}

/// The НУЦ mock.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NucConfig {
    /// Base URL written into issued certificates (CRL distribution point,
    /// authority information access); `http://<listen>` when absent.
    pub public_url: Option<String>,
    /// A remote `shep.nuc.v1.Nuc` server to ask for certificate status
    /// instead of the in-process НУЦ.
    pub url: Option<String>,
}

/// The in-process registries' access audit.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// Lookups kept in memory; the oldest are dropped (and counted) beyond.
    pub capacity: usize,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            capacity: shep_registries::audit::DEFAULT_CAPACITY,
        }
    }
}

/// Which certificates the gateway trusts.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrustConfig {
    /// PEM files of trust anchors (root CAs). Empty: the test НУЦ in `data_dir/nuc`.
    pub anchors: Vec<PathBuf>,
    /// PEM files of intermediate CAs the gateway knows.
    pub intermediates: Vec<PathBuf>,
}

/// Limits of the envelope checks.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChecksConfig {
    /// How far `message_date` may be from the gateway clock, in seconds.
    pub message_date_skew_secs: u64,
    /// How long a certificate's verified chain is reused, in seconds.
    pub chain_cache_secs: u64,
    /// How long a certificate's revocation status is reused, in
    /// milliseconds: a revocation takes effect within this delay (0: at once).
    pub revocation_cache_ms: u64,
    /// Signature, revocation and identity checks. Turn off only to measure the
    /// gateway without them in a load test.
    pub verify_signatures: bool,
    /// Ed25519 signatures of envelopes checked at the same time verified as
    /// one batch; results equal single verification, nothing is skipped.
    pub batch_ed25519: bool,
    /// The most signatures in one batch (2-1024).
    pub batch_max: usize,
    /// How long the first signature of a batch waits for others, in
    /// microseconds (at most 10000).
    pub batch_wait_us: u64,
}

impl Default for ChecksConfig {
    fn default() -> Self {
        Self {
            message_date_skew_secs: 300,
            chain_cache_secs: 300,
            revocation_cache_ms: 60_000,
            verify_signatures: true,
            batch_ed25519: false,
            batch_max: 64,
            batch_wait_us: 0,
        }
    }
}

/// Delivery to providers.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeliveryConfig {
    /// How long a delivery waits for its acknowledgement before it is
    /// delivered again, in milliseconds.
    pub lease_ms: u64,
    /// Leases before a delivery stops (dead letter).
    pub max_attempts: u32,
    /// Default unacknowledged deliveries per connection (a Hello may lower or raise it, up to 1024).
    pub max_in_flight: u32,
    /// Requests a provider's queue may hold, queued and leased, before a
    /// Submit routed to it is refused with QUEUE_FULL (RESOURCE_EXHAUSTED,
    /// retry later): what bounds the memory a provider that stopped taking
    /// its deliveries can cost.
    pub max_queue_depth: usize,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        Self {
            lease_ms: 30_000,
            max_attempts: 5,
            max_in_flight: 16,
            max_queue_depth: 10_000,
        }
    }
}

/// How to reach one registry.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegistryConfig {
    /// A `shep.registry.v1.Registry` server (e.g. `http://127.0.0.1:7711`);
    /// in-process when absent.
    pub url: Option<String>,
}

/// The admin API.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// The bearer token; `SHEP_ADMIN_TOKEN`, or a generated one in
    /// `data_dir/admin-token`, when absent.
    pub token: Option<String>,
    /// SHA-256 fingerprints (hex, colons allowed) of TLS client certificates
    /// that may use the admin API without the token. Needs `tls.client_ca`.
    pub client_certificates: Vec<String>,
}

/// TLS on the gateway's listener; plaintext when `cert` is absent.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// The server certificate chain (PEM).
    pub cert: Option<PathBuf>,
    /// The server certificate's private key (PEM).
    pub key: Option<PathBuf>,
    /// CA certificates (PEM) that client certificates must chain to. When
    /// set, the gateway asks clients for a certificate; one is still optional.
    pub client_ca: Option<PathBuf>,
}

/// Who may act as a participant system.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    pub participants: ParticipantAuth,
}

/// Whether participant systems must prove who they are.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ParticipantAuth {
    /// By a client certificate (mTLS) or a system's password; the listener
    /// speaks TLS (its certificate issued by the test НУЦ unless `tls.cert`).
    #[default]
    Required,
    /// Anyone may act as any system: only when asked for explicitly.
    Off,
}

impl GatewayConfig {
    /// Whether the listener speaks TLS: configured, or for authentication.
    pub fn listener_tls(&self) -> bool {
        self.tls.cert.is_some() || self.auth.participants == ParticipantAuth::Required
    }
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 7700)),
            data_dir: PathBuf::from(".shep"),
            routes: None,
            trust: TrustConfig::default(),
            checks: ChecksConfig::default(),
            delivery: DeliveryConfig::default(),
            registries: BTreeMap::new(),
            population: PopulationConfig::default(),
            audit: AuditConfig::default(),
            admin: AdminConfig::default(),
            tls: TlsConfig::default(),
            auth: AuthConfig::default(),
            nuc: NucConfig::default(),
            journal: JournalConfig::default(),
            cluster: ClusterConfig::default(),
            calendar: CalendarConfig::default(),
            toolkit: ToolkitConfig::default(),
            health: HealthConfig::default(),
            limits: LimitsConfig::default(),
            telemetry: TelemetryConfig::default(),
        }
    }
}

impl GatewayConfig {
    /// Reads and validates a configuration file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let config: Self = toml::from_str(&text).map_err(|error| ConfigError::Parse {
            path: path.display().to_string(),
            message: error.to_string(),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// The URL of registry `kind`, when it is served remotely.
    pub fn registry_url(&self, kind: RegistryKind) -> Option<&str> {
        self.registries.get(kind.id())?.url.as_deref()
    }

    /// Checks values serde cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.delivery.lease_ms == 0 {
            return Err(ConfigError::Invalid(
                "`delivery.lease_ms` must be > 0".to_owned(),
            ));
        }
        if self.delivery.max_attempts == 0 {
            return Err(ConfigError::Invalid(
                "`delivery.max_attempts` must be > 0".to_owned(),
            ));
        }
        if !(1..=1024).contains(&self.delivery.max_in_flight) {
            return Err(ConfigError::Invalid(
                "`delivery.max_in_flight` must be 1-1024".to_owned(),
            ));
        }
        if self.delivery.max_queue_depth == 0 {
            return Err(ConfigError::Invalid(
                "`delivery.max_queue_depth` must be > 0".to_owned(),
            ));
        }
        if self.health.probe_interval_ms == 0 {
            return Err(ConfigError::Invalid(
                "`health.probe_interval_ms` must be > 0".to_owned(),
            ));
        }
        if self.limits.max_message_bytes < 1024 {
            return Err(ConfigError::Invalid(
                "`limits.max_message_bytes` must be at least 1024".to_owned(),
            ));
        }
        if self.limits.max_attachment_bytes == 0 {
            return Err(ConfigError::Invalid(
                "`limits.max_attachment_bytes` must be > 0".to_owned(),
            ));
        }
        if !matches!(self.cluster.replicas, 1 | 3 | 5) {
            return Err(ConfigError::Invalid(
                "`cluster.replicas` must be 1, 3 or 5".to_owned(),
            ));
        }
        let prefix = &self.cluster.prefix;
        if prefix.is_empty()
            || !prefix
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_')
        {
            return Err(ConfigError::Invalid(
                "`cluster.prefix` must be letters, digits, `-` or `_`".to_owned(),
            ));
        }
        self.calendar.calendar()?;
        self.population
            .validate("population")
            .map_err(ConfigError::Invalid)?;
        if !(1..=10_000_000).contains(&self.audit.capacity) {
            return Err(ConfigError::Invalid(
                "`audit.capacity` must be 1-10000000".to_owned(),
            ));
        }
        for id in self.registries.keys() {
            RegistryKind::parse(id)
                .map_err(|error| ConfigError::Invalid(format!("`registries.{id}`: {error}")))?;
        }
        if !(2..=1024).contains(&self.checks.batch_max) {
            return Err(ConfigError::Invalid(
                "`checks.batch_max` must be 2-1024".to_owned(),
            ));
        }
        if self.checks.batch_wait_us > 10_000 {
            return Err(ConfigError::Invalid(
                "`checks.batch_wait_us` must be at most 10000".to_owned(),
            ));
        }
        if self.limits.max_concurrent == 0 {
            return Err(ConfigError::Invalid(
                "`limits.max_concurrent` must be > 0".to_owned(),
            ));
        }
        self.telemetry.validate()?;
        self.validate_tls()
    }

    fn validate_tls(&self) -> Result<(), ConfigError> {
        let tls = &self.tls;
        if tls.cert.is_some() != tls.key.is_some() {
            return Err(ConfigError::Invalid(
                "`tls.cert` and `tls.key` must be set together".to_owned(),
            ));
        }
        if tls.client_ca.is_some() && tls.cert.is_none() {
            return Err(ConfigError::Invalid(
                "`tls.client_ca` needs `tls.cert` and `tls.key`".to_owned(),
            ));
        }
        if !self.admin.client_certificates.is_empty() && tls.client_ca.is_none() {
            return Err(ConfigError::Invalid(
                "`admin.client_certificates` needs `tls.client_ca` (the CA they chain to)"
                    .to_owned(),
            ));
        }
        for entry in &self.admin.client_certificates {
            crate::admin_auth::Fingerprint::parse(entry).map_err(|problem| {
                ConfigError::Invalid(format!(
                    "`admin.client_certificates` entry `{entry}`: {problem}"
                ))
            })?;
        }
        Ok(())
    }

    /// The allowed admin client certificates, parsed (after [`Self::validate`]).
    pub fn admin_client_certificates(&self) -> Vec<crate::admin_auth::Fingerprint> {
        self.admin
            .client_certificates
            .iter()
            .filter_map(|entry| crate::admin_auth::Fingerprint::parse(entry).ok())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_the_defaults() {
        let config: GatewayConfig = toml::from_str("").unwrap();
        config.validate().unwrap();
        assert_eq!(config.listen.port(), 7700);
        assert_eq!(config.delivery.max_attempts, 5);
        assert_eq!(config.health.probe_interval_ms, 2000);
    }

    #[test]
    fn reads_the_population_and_remote_registries() {
        let config: GatewayConfig = toml::from_str(
            "[population]\nseed = 7\nsize = 1000000\nabsent_share = 0.1\nfixtures = [\"a.json\"]\n\
             identifiers = \"lenient\"\n[audit]\ncapacity = 10\n\
             [registries.gbdul]\nurl = \"http://127.0.0.1:7712\"\n[registries.enis]\n",
        )
        .unwrap();
        config.validate().unwrap();
        assert_eq!(config.population.seed, 7);
        assert_eq!(config.population.size, Some(1_000_000));
        assert_eq!(config.population.fixtures, [PathBuf::from("a.json")]);
        assert_eq!(config.audit.capacity, 10);
        assert!(config.registries["enis"].url.is_none());
    }

    #[test]
    fn tls_and_admin_client_certificates_are_checked_together() {
        let fingerprint = "AB:".repeat(31) + "AB";
        let text = format!(
            "[tls]\ncert = \"c.pem\"\nkey = \"k.pem\"\nclient_ca = \"ca.pem\"\n\
             [admin]\nclient_certificates = [\"{fingerprint}\"]\n"
        );
        let config: GatewayConfig = toml::from_str(&text).unwrap();
        config.validate().unwrap();
        assert_eq!(config.admin_client_certificates().len(), 1);

        for (text, named) in [
            ("[tls]\ncert = \"c.pem\"", "`tls.cert` and `tls.key`"),
            ("[tls]\nclient_ca = \"ca.pem\"", "`tls.client_ca`"),
            (
                "[admin]\nclient_certificates = [\"ab\"]",
                "`admin.client_certificates` needs `tls.client_ca`",
            ),
        ] {
            let config: GatewayConfig = toml::from_str(text).unwrap();
            let error = config.validate().unwrap_err().to_string();
            assert!(error.contains(named), "{error}");
        }
        let text = "[tls]\ncert = \"c.pem\"\nkey = \"k.pem\"\nclient_ca = \"ca.pem\"\n\
                    [admin]\nclient_certificates = [\"abcd\"]\n";
        let config: GatewayConfig = toml::from_str(text).unwrap();
        let error = config.validate().unwrap_err().to_string();
        assert!(error.contains("entry `abcd`"), "{error}");
    }

    #[test]
    fn unknown_keys_and_bad_values_are_named() {
        let error = toml::from_str::<GatewayConfig>("[delivery]\nlease = 5").unwrap_err();
        assert!(error.to_string().contains("lease"), "{error}");
        let config: GatewayConfig = toml::from_str("[registries.gbdxx]\nurl = \"x\"").unwrap();
        let error = config.validate().unwrap_err().to_string();
        assert!(error.contains("registries.gbdxx"), "{error}");
        let config: GatewayConfig = toml::from_str("[population]\nabsent_share = 2.0").unwrap();
        let error = config.validate().unwrap_err().to_string();
        assert!(error.contains("`population.absent_share`"), "{error}");
        let error = toml::from_str::<GatewayConfig>("[population]\nseeed = 2").unwrap_err();
        assert!(error.to_string().contains("seeed"), "{error}");
        let config: GatewayConfig = toml::from_str("[delivery]\nlease_ms = 0").unwrap();
        assert!(
            config
                .validate()
                .unwrap_err()
                .to_string()
                .contains("lease_ms")
        );
        let config: GatewayConfig = toml::from_str("[health]\nprobe_interval_ms = 0").unwrap();
        let error = config.validate().unwrap_err().to_string();
        assert!(error.contains("`health.probe_interval_ms`"), "{error}");
        let config: GatewayConfig = toml::from_str("[checks]\nbatch_max = 1").unwrap();
        let error = config.validate().unwrap_err().to_string();
        assert!(error.contains("`checks.batch_max`"), "{error}");
        let config: GatewayConfig = toml::from_str("[checks]\nbatch_wait_us = 20000").unwrap();
        let error = config.validate().unwrap_err().to_string();
        assert!(error.contains("`checks.batch_wait_us`"), "{error}");
    }

    #[test]
    fn telemetry_is_off_by_default_and_its_endpoint_is_checked() {
        let config: GatewayConfig = toml::from_str("").unwrap();
        assert!(config.telemetry.otlp_endpoint.is_none());
        assert_eq!(config.telemetry.service_name, "shep-sim");
        let config: GatewayConfig = toml::from_str(
            "[telemetry]\notlp_endpoint = \"http://127.0.0.1:4317\"\nservice_name = \"gw-1\"\n\
             sampling_ratio = 0.25\n",
        )
        .unwrap();
        config.validate().unwrap();
        for (endpoint, problem) in [
            ("127.0.0.1:4317", "expected http://"),
            ("https://collector:4317", "expected http://"),
            ("http://", "not a URL"),
            ("http://exa mple:4317", "not a URL"),
        ] {
            let text = format!("[telemetry]\notlp_endpoint = \"{endpoint}\"");
            let config: GatewayConfig = toml::from_str(&text).unwrap();
            let error = config.validate().unwrap_err().to_string();
            assert!(error.contains("`telemetry.otlp_endpoint`"), "{error}");
            assert!(error.contains(problem), "{endpoint}: {error}");
        }
        let config: GatewayConfig = toml::from_str("[telemetry]\nsampling_ratio = 1.5").unwrap();
        let error = config.validate().unwrap_err().to_string();
        assert!(error.contains("`telemetry.sampling_ratio`"), "{error}");
    }
}
