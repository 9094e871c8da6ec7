//! The routing table: the participating systems and, per service, who may call
//! it on which channel, what answers it (a registry or a provider chosen by the
//! applicant's region), and its deadline. Read from TOML and validated with
//! errors that name the service and the key.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use serde::Deserialize;
use shep_proto::admin::v1 as admin;
use shep_proto::envelope::v1::Channel;

use crate::calendar::Deadline;

/// The routing table shipped with the simulator: the eight services of the
/// seed regulations and the ГБД ФЛ lookup.
pub const DEFAULT_ROUTES: &str = include_str!("../routes/default.toml");

/// Why a routing table was refused.
#[derive(Debug, thiserror::Error)]
pub enum RoutesError {
    #[error("{source_name}: {message}")]
    Parse {
        source_name: String,
        message: String,
    },
    #[error("{source_name}: {message}")]
    Invalid {
        source_name: String,
        message: String,
    },
}

/// What a system is in the e-government.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// ПЭП.
    Portal,
    /// ИС ЦОН.
    ServiceCentre,
    /// АРМ РШЭП / ИС МИО.
    Provider,
    /// Any other information system calling lookups.
    System,
}

/// Whether a service is answered synchronously by a registry or asynchronously
/// by a provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ServiceKind {
    Lookup,
    Application,
}

impl ServiceKind {
    /// The name used in the file and the admin API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Lookup => "lookup",
            Self::Application => "application",
        }
    }
}

/// A channel as written in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChannelName {
    Portal,
    ServiceCentre,
    ProviderDesk,
    System,
}

impl ChannelName {
    /// The protobuf channel.
    pub fn to_proto(self) -> Channel {
        match self {
            Self::Portal => Channel::Portal,
            Self::ServiceCentre => Channel::ServiceCentre,
            Self::ProviderDesk => Channel::ProviderDesk,
            Self::System => Channel::System,
        }
    }

    /// The file name of a protobuf channel, if it has one.
    pub fn from_proto(channel: Channel) -> Option<Self> {
        match channel {
            Channel::Portal => Some(Self::Portal),
            Channel::ServiceCentre => Some(Self::ServiceCentre),
            Channel::ProviderDesk => Some(Self::ProviderDesk),
            Channel::System => Some(Self::System),
            Channel::Unspecified => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Portal => "portal",
            Self::ServiceCentre => "service-centre",
            Self::ProviderDesk => "provider-desk",
            Self::System => "system",
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RoutesFile {
    #[serde(default, rename = "system")]
    systems: Vec<SystemSpec>,
    #[serde(default, rename = "service")]
    services: Vec<ServiceSpec>,
}

/// A participating information system.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SystemSpec {
    pub id: String,
    pub name_ru: String,
    #[serde(default)]
    pub name_kk: String,
    pub role: Role,
    /// IINs of the people who may sign for this system (ЦОН operators,
    /// provider employees). Required for service centres and providers.
    #[serde(default)]
    pub operators: Vec<String>,
    /// The BIN the operators' certificates must carry (`OU=BIN…`), if any;
    /// the system's transport certificate carries it too.
    pub bin: Option<String>,
    /// ШЭП's senderId + password: lets the system authenticate with
    /// `authorization: Basic` instead of its transport certificate.
    pub password: Option<String>,
    /// A consumer system that receives its providers' reports as messages
    /// on its own queue (ШЭП's getMessages on the consumer side): pulled or
    /// streamed with the Provider service, acknowledged like deliveries.
    #[serde(default)]
    pub responses: bool,
    /// The system's own SOAP endpoint (ШЭП's PUSH, `IAsyncChannelClient`):
    /// its queue is delivered there with `sendMessage`, and the status changes
    /// of the applications it sent with `changeMassageStatusNotification`.
    /// `http://` only.
    pub soap_endpoint: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServiceSpec {
    id: String,
    name_ru: String,
    #[serde(default)]
    name_kk: String,
    kind: ServiceKind,
    senders: Vec<String>,
    channels: Vec<ChannelName>,
    registry: Option<String>,
    providers: Option<ProviderRuleSpec>,
    deadline: Option<String>,
    #[serde(default)]
    checks: BTreeMap<ChannelName, Vec<String>>,
    /// The regulations allow a result without registration first.
    #[serde(default)]
    immediate_result: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProviderRuleSpec {
    #[serde(default)]
    by_region: BTreeMap<String, String>,
    default: Option<String>,
}

/// What answers a service.
#[derive(Debug, Clone)]
pub enum Target {
    /// A registry adapter, by id.
    Registry(String),
    /// A provider system chosen by the applicant's КАТО code: the longest
    /// matching prefix wins, then the default.
    Providers {
        by_region: Vec<(String, String)>,
        default: Option<String>,
    },
}

/// One validated service route.
#[derive(Debug, Clone)]
pub struct Route {
    pub service_id: String,
    pub name_ru: String,
    pub name_kk: String,
    pub kind: ServiceKind,
    pub senders: HashSet<String>,
    pub channels: Vec<ChannelName>,
    pub target: Target,
    pub deadline: Option<Deadline>,
    /// Registries consulted before routing, per channel.
    pub checks: BTreeMap<ChannelName, Vec<String>>,
    /// The regulations allow COMPLETED without REGISTERED first.
    pub immediate_result: bool,
}

impl Route {
    /// Whether the route picks its provider by region.
    pub fn needs_region(&self) -> bool {
        matches!(&self.target, Target::Providers { by_region, .. } if !by_region.is_empty())
    }

    /// The provider for an applicant whose address has `kato` (if known).
    pub fn provider_for(&self, kato: Option<&str>) -> Option<&str> {
        let Target::Providers { by_region, default } = &self.target else {
            return None;
        };
        kato.and_then(|kato| {
            by_region
                .iter()
                .find(|(prefix, _)| kato.starts_with(prefix.as_str()))
                .map(|(_, provider)| provider.as_str())
        })
        .or(default.as_deref())
    }

    /// The provider whatever the region, when the route has only one.
    pub fn only_provider(&self) -> Option<&str> {
        let Target::Providers { by_region, default } = &self.target else {
            return None;
        };
        let mut providers = by_region
            .iter()
            .map(|(_, id)| id.as_str())
            .chain(default.as_deref());
        let first = providers.next()?;
        providers.all(|id| id == first).then_some(first)
    }

    /// Whether `provider` is one this route can deliver to.
    pub fn has_provider(&self, provider: &str) -> bool {
        match &self.target {
            Target::Providers { by_region, default } => {
                default.as_deref() == Some(provider)
                    || by_region.iter().any(|(_, id)| id == provider)
            }
            Target::Registry(_) => false,
        }
    }

    /// The admin API's view of the route.
    pub fn to_proto(&self) -> admin::Route {
        let mut senders: Vec<String> = self.senders.iter().cloned().collect();
        senders.sort();
        let (registry, providers_by_region, default_provider) = match &self.target {
            Target::Registry(id) => (id.clone(), HashMap::new(), String::new()),
            Target::Providers { by_region, default } => (
                String::new(),
                by_region.iter().cloned().collect(),
                default.clone().unwrap_or_default(),
            ),
        };
        admin::Route {
            service_id: self.service_id.clone(),
            name_ru: self.name_ru.clone(),
            name_kk: self.name_kk.clone(),
            kind: self.kind.as_str().to_owned(),
            senders,
            channels: self
                .channels
                .iter()
                .map(|channel| channel.to_proto() as i32)
                .collect(),
            registry,
            providers_by_region,
            default_provider,
            deadline: self
                .deadline
                .map(|deadline| deadline.to_string())
                .unwrap_or_default(),
            checks: self
                .checks
                .iter()
                .map(|(channel, registries)| {
                    format!("{}: {}", channel.as_str(), registries.join(", "))
                })
                .collect(),
            immediate_result: self.immediate_result,
        }
    }
}

/// The validated routing table.
#[derive(Debug, Clone)]
pub struct RoutingTable {
    source: String,
    /// The TOML the table was read from, for edits one service at a time.
    text: String,
    systems: HashMap<String, SystemSpec>,
    routes: HashMap<String, Arc<Route>>,
}

impl RoutingTable {
    /// Parses and validates a table. `source_name` names it in errors (a path,
    /// or `embedded`); `registries` are the registry ids the gateway has.
    pub fn from_toml(
        text: &str,
        source_name: &str,
        registries: &[&str],
    ) -> Result<Self, RoutesError> {
        let file: RoutesFile = toml::from_str(text).map_err(|error| RoutesError::Parse {
            source_name: source_name.to_owned(),
            message: error.to_string(),
        })?;
        let invalid = |message: String| RoutesError::Invalid {
            source_name: source_name.to_owned(),
            message,
        };

        let mut systems = HashMap::new();
        for system in file.systems {
            if system.id.trim().is_empty() {
                return Err(invalid("`system.id` must not be empty".to_owned()));
            }
            if systems.contains_key(&system.id) {
                return Err(invalid(format!("system `{}` is defined twice", system.id)));
            }
            validate_operators(&system).map_err(invalid)?;
            validate_endpoint(&system).map_err(invalid)?;
            systems.insert(system.id.clone(), system);
        }

        let mut routes = HashMap::new();
        for spec in file.services {
            let route = validate_service(spec, &systems, registries).map_err(invalid)?;
            if routes.contains_key(&route.service_id) {
                return Err(invalid(format!(
                    "service `{}` is defined twice",
                    route.service_id
                )));
            }
            routes.insert(route.service_id.clone(), Arc::new(route));
        }
        Ok(Self {
            source: source_name.to_owned(),
            text: text.to_owned(),
            systems,
            routes,
        })
    }

    /// The route of `service_id`.
    pub fn route(&self, service_id: &str) -> Option<&Arc<Route>> {
        self.routes.get(service_id)
    }

    /// A system by id.
    pub fn system(&self, id: &str) -> Option<&SystemSpec> {
        self.systems.get(id)
    }

    /// Every system, sorted by id.
    pub fn systems(&self) -> Vec<&SystemSpec> {
        let mut all: Vec<_> = self.systems.values().collect();
        all.sort_by(|a, b| a.id.cmp(&b.id));
        all
    }

    /// Every route, sorted by service id.
    pub fn routes(&self) -> Vec<&Arc<Route>> {
        let mut all: Vec<_> = self.routes.values().collect();
        all.sort_by(|left, right| left.service_id.cmp(&right.service_id));
        all
    }

    /// Where the table came from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The table with one `[[service]]` entry (given as TOML) added, or
    /// replacing the entry with the same `id`; and that id.
    pub fn with_service(
        &self,
        entry: &str,
        registries: &[&str],
    ) -> Result<(Self, String), RoutesError> {
        let invalid = |message: String| RoutesError::Invalid {
            source_name: "admin-api".to_owned(),
            message,
        };
        let service: toml::Table = toml::from_str(entry).map_err(|error| RoutesError::Parse {
            source_name: "admin-api".to_owned(),
            message: error.to_string(),
        })?;
        let id = service
            .get("id")
            .and_then(toml::Value::as_str)
            .ok_or_else(|| invalid("the service entry needs a string `id`".to_owned()))?
            .to_owned();
        let table = self.edited(registries, |services| {
            let position = services
                .iter()
                .position(|old| old.get("id").and_then(toml::Value::as_str) == Some(id.as_str()));
            match position {
                Some(index) => services[index] = toml::Value::Table(service),
                None => services.push(toml::Value::Table(service)),
            }
        })?;
        Ok((table, id))
    }

    /// The table without service `id`; `None` if it has no such service.
    pub fn without_service(
        &self,
        id: &str,
        registries: &[&str],
    ) -> Option<Result<Self, RoutesError>> {
        self.route(id)?;
        Some(self.edited(registries, |services| {
            services.retain(|old| old.get("id").and_then(toml::Value::as_str) != Some(id));
        }))
    }

    fn edited(
        &self,
        registries: &[&str],
        edit: impl FnOnce(&mut Vec<toml::Value>),
    ) -> Result<Self, RoutesError> {
        let mut table: toml::Table =
            toml::from_str(&self.text).map_err(|error| RoutesError::Parse {
                source_name: self.source.clone(),
                message: error.to_string(),
            })?;
        let services = table
            .entry("service")
            .or_insert_with(|| toml::Value::Array(Vec::new()));
        if let toml::Value::Array(services) = services {
            edit(services);
        }
        let text = toml::to_string(&table).map_err(|error| RoutesError::Parse {
            source_name: self.source.clone(),
            message: error.to_string(),
        })?;
        let source = if self.source.ends_with("+admin-api") {
            self.source.clone()
        } else {
            format!("{}+admin-api", self.source)
        };
        Self::from_toml(&text, &source, registries)
    }
}

fn validate_endpoint(system: &SystemSpec) -> Result<(), String> {
    let Some(url) = &system.soap_endpoint else {
        return Ok(());
    };
    match url.parse::<http::Uri>() {
        Ok(uri) if uri.scheme_str() == Some("http") && uri.host().is_some() => Ok(()),
        _ => Err(format!(
            "system `{}`: `soap_endpoint` must be an http:// URL with a host, got `{url}`",
            system.id
        )),
    }
}

fn validate_operators(system: &SystemSpec) -> Result<(), String> {
    use shep_registries::ident::{Strictness, parse_bin, parse_iin};
    let id = &system.id;
    if system.responses && system.role == Role::Provider {
        return Err(format!(
            "system `{id}`: `responses` is for consumer systems; a provider's queue holds its deliveries"
        ));
    }
    if matches!(system.role, Role::ServiceCentre | Role::Provider) && system.operators.is_empty() {
        return Err(format!(
            "system `{id}`: `operators` must list the IINs that sign for a {}",
            if system.role == Role::Provider {
                "provider"
            } else {
                "service centre"
            }
        ));
    }
    for iin in &system.operators {
        parse_iin(iin, Strictness::Strict)
            .map_err(|error| format!("system `{id}`: `operators` entry `{iin}`: {error}"))?;
    }
    if let Some(bin) = &system.bin {
        parse_bin(bin, Strictness::Strict)
            .map_err(|error| format!("system `{id}`: `bin` `{bin}`: {error}"))?;
    }
    Ok(())
}

fn validate_service(
    spec: ServiceSpec,
    systems: &HashMap<String, SystemSpec>,
    registries: &[&str],
) -> Result<Route, String> {
    let service = spec.id.clone();
    if service.trim().is_empty() {
        return Err("`service.id` must not be empty".to_owned());
    }
    if spec.senders.is_empty() {
        return Err(format!("service `{service}`: `senders` must not be empty"));
    }
    for sender in &spec.senders {
        if !systems.contains_key(sender) {
            return Err(format!(
                "service `{service}`: `senders` names unknown system `{sender}`"
            ));
        }
    }
    if spec.channels.is_empty() {
        return Err(format!("service `{service}`: `channels` must not be empty"));
    }
    let known_registry = |id: &str, key: &str| {
        if registries.contains(&id) {
            Ok(())
        } else {
            Err(format!(
                "service `{service}`: `{key}` names unknown registry `{id}` (known: {})",
                registries.join(", ")
            ))
        }
    };
    for (channel, ids) in &spec.checks {
        if !spec.channels.contains(channel) {
            return Err(format!(
                "service `{service}`: `checks` names channel `{}` that the service does not allow",
                channel.as_str()
            ));
        }
        for id in ids {
            known_registry(id, "checks")?;
        }
    }
    let is_provider = |id: &str, key: &str| match systems.get(id) {
        Some(system) if system.role == Role::Provider => Ok(()),
        Some(_) => Err(format!(
            "service `{service}`: `{key}` names system `{id}`, which is not a provider"
        )),
        None => Err(format!(
            "service `{service}`: `{key}` names unknown system `{id}`"
        )),
    };

    let (target, deadline) = match spec.kind {
        ServiceKind::Lookup => {
            let Some(registry) = spec.registry else {
                return Err(format!(
                    "service `{service}`: a lookup needs `registry` (known: {})",
                    registries.join(", ")
                ));
            };
            known_registry(&registry, "registry")?;
            if spec.providers.is_some() || spec.deadline.is_some() || spec.immediate_result {
                return Err(format!(
                    "service `{service}`: a lookup has no `providers`, `deadline` or `immediate_result`"
                ));
            }
            (Target::Registry(registry), None)
        }
        ServiceKind::Application => {
            if spec.registry.is_some() {
                return Err(format!(
                    "service `{service}`: an application is answered by `providers`, not `registry`"
                ));
            }
            let Some(rule) = spec.providers else {
                return Err(format!(
                    "service `{service}`: an application needs `providers`"
                ));
            };
            if rule.by_region.is_empty() && rule.default.is_none() {
                return Err(format!(
                    "service `{service}`: `providers` needs `by_region` entries or a `default`"
                ));
            }
            let mut by_region = Vec::new();
            for (prefix, provider) in rule.by_region {
                if prefix.is_empty() || !prefix.bytes().all(|byte| byte.is_ascii_digit()) {
                    return Err(format!(
                        "service `{service}`: `providers.by_region` key `{prefix}` must be a КАТО prefix (digits)"
                    ));
                }
                is_provider(&provider, "providers.by_region")?;
                by_region.push((prefix, provider));
            }
            // Longest prefix first, so the first match is the most specific.
            by_region.sort_by_key(|(prefix, _)| std::cmp::Reverse(prefix.len()));
            if let Some(default) = &rule.default {
                is_provider(default, "providers.default")?;
            }
            let Some(deadline) = spec.deadline else {
                return Err(format!(
                    "service `{service}`: an application needs `deadline` (e.g. \"5 working-days\")"
                ));
            };
            let deadline: Deadline = deadline
                .parse()
                .map_err(|error| format!("service `{service}`: `deadline`: {error}"))?;
            (
                Target::Providers {
                    by_region,
                    default: rule.default,
                },
                Some(deadline),
            )
        }
    };
    Ok(Route {
        service_id: spec.id,
        name_ru: spec.name_ru,
        name_kk: spec.name_kk,
        kind: spec.kind,
        senders: spec.senders.into_iter().collect(),
        channels: spec.channels,
        target,
        deadline,
        checks: spec.checks,
        immediate_result: spec.immediate_result,
    })
}

#[cfg(test)]
mod fuzz;

#[cfg(test)]
mod tests {
    use super::*;

    const REGISTRIES: &[&str] = crate::config::REGISTRY_IDS;

    fn table(text: &str) -> Result<RoutingTable, RoutesError> {
        RoutingTable::from_toml(text, "test.toml", REGISTRIES)
    }

    const SYSTEMS: &str = r#"
        [[system]]
        id = "pep"
        name_ru = "ПЭП"
        role = "portal"
        [[system]]
        id = "arm-a"
        name_ru = "АРМ A"
        role = "provider"
        operators = ["800417400129"]
        [[system]]
        id = "arm-b"
        name_ru = "АРМ B"
        role = "provider"
        operators = ["770905300455"]
    "#;

    #[test]
    fn a_soap_endpoint_must_be_an_http_url_with_a_host() {
        let with = |url: &str| {
            SYSTEMS.replacen(
                "role = \"portal\"",
                &format!("role = \"portal\"\n        soap_endpoint = \"{url}\""),
                1,
            )
        };
        assert!(table(&with("http://10.0.0.5:8080/shep")).is_ok());
        for bad in ["https://10.0.0.5/shep", "ftp://x/y", "/shep", "not a url"] {
            let error = table(&with(bad)).unwrap_err().to_string();
            assert!(error.contains("soap_endpoint"), "{bad}: {error}");
        }
    }

    #[test]
    fn default_table_is_valid_and_has_the_eight_services() {
        let table = RoutingTable::from_toml(DEFAULT_ROUTES, "embedded", REGISTRIES).unwrap();
        let applications = table
            .routes()
            .into_iter()
            .filter(|route| route.kind == ServiceKind::Application)
            .count();
        assert_eq!(applications, 8);
        for lookup in [
            "GbdflInfoByIin_v1",
            "GbdulInfoByBin_v2",
            "EnisPowerOfAttorney_v1",
        ] {
            assert_eq!(table.route(lookup).unwrap().kind, ServiceKind::Lookup);
        }
        let esil = table.route("guardianship-certificate-esil").unwrap();
        assert_eq!(
            esil.checks[&ChannelName::ServiceCentre],
            ["gbdfl", "enis"],
            "the ЦОН flow checks ГБД ФЛ and ЕНИС"
        );
    }

    #[test]
    fn default_table_routes_the_district_services_by_district() {
        let table = RoutingTable::from_toml(DEFAULT_ROUTES, "embedded", REGISTRIES).unwrap();
        let provider = |service: &str, kato: &str| {
            table
                .route(service)
                .unwrap()
                .provider_for(Some(kato))
                .map(str::to_owned)
        };
        // Явленка (Есильский район) and the district's own code.
        for kato in ["594230100", "594200000"] {
            assert_eq!(
                provider("guardianship-certificate-esil", kato).as_deref(),
                Some("arm-rshep-sko-esil-edu")
            );
        }
        // Other places of СКО: Тайынша, Петропавловск, Булаево.
        for kato in ["596020100", "591010000", "593620100"] {
            assert_eq!(
                provider("guardianship-certificate-esil", kato),
                None,
                "{kato}"
            );
        }
        assert_eq!(
            provider("targeted-social-assistance-tayynsha", "596020100").as_deref(),
            Some("is-mio-sko-tayynsha-social")
        );
        assert_eq!(
            provider("targeted-social-assistance-tayynsha", "594230100"),
            None
        );
        // The region-wide providers take every district of their region.
        for kato in ["471010000", "471810000", "475030100"] {
            assert_eq!(
                provider("archive-certificate-mangystau", kato).as_deref(),
                Some("is-mio-mangystau-archives")
            );
            assert_eq!(
                provider("foster-care-payment-mangystau", kato).as_deref(),
                Some("arm-rshep-mangystau-mio")
            );
        }
        for kato in ["351010000", "352410000", "354030100"] {
            assert_eq!(
                provider("guardianship-certificate-karaganda", kato).as_deref(),
                Some("arm-rshep-karaganda-edu")
            );
        }
    }

    #[test]
    fn default_providers_have_their_own_employee_and_bin_known_to_the_registries() {
        use shep_registries::RegistryData;
        use shep_registries::reference::district_of;

        let table = RoutingTable::from_toml(DEFAULT_ROUTES, "embedded", REGISTRIES).unwrap();
        let data = RegistryData::builtin();
        let providers: Vec<&SystemSpec> = table
            .systems()
            .into_iter()
            .filter(|system| system.role == Role::Provider)
            .collect();
        let mut iins = HashSet::new();
        let mut bins = HashSet::new();
        for system in &providers {
            let id = &system.id;
            let bin = system.bin.as_deref().expect("a provider has a BIN");
            assert!(iins.insert(system.operators[0].as_str()), "{id}");
            assert!(bins.insert(bin), "{id}");
            let entity = data
                .legal_entity(bin)
                .unwrap_or_else(|| panic!("{id}: `{bin}`"));
            assert_eq!(entity.head_iin, system.operators[0], "{id}");
            let employee = data.person(&system.operators[0]).unwrap();
            assert!(employee.death_date.is_empty(), "{id}");
            // The organisation sits in the place it serves: routing its own
            // address reaches it.
            let kato = entity.address.unwrap().kato;
            assert!(district_of(&kato).is_some(), "{id}: {kato}");
            let serves_itself = table.routes().iter().any(|route| {
                route.has_provider(id) && route.provider_for(Some(&kato)) == Some(id.as_str())
            });
            assert!(serves_itself, "{id}: {kato}");
        }
        assert_eq!(providers.len(), 5);
    }

    #[test]
    fn longest_region_prefix_wins_then_default() {
        let text = format!(
            r#"{SYSTEMS}
            [[service]]
            id = "svc"
            name_ru = "Услуга"
            kind = "application"
            senders = ["pep"]
            channels = ["portal"]
            deadline = "5 working-days"
            providers = {{ by_region = {{ "59" = "arm-a", "5910" = "arm-b" }}, default = "arm-a" }}
            "#
        );
        let table = table(&text).unwrap();
        let route = table.route("svc").unwrap();
        assert_eq!(route.provider_for(Some("591010000")), Some("arm-b"));
        assert_eq!(route.provider_for(Some("592000000")), Some("arm-a"));
        assert_eq!(route.provider_for(Some("750000000")), Some("arm-a"));
        assert_eq!(route.provider_for(None), Some("arm-a"));
    }

    #[test]
    fn errors_name_the_service_and_the_key() {
        let text = format!(
            r#"{SYSTEMS}
            [[service]]
            id = "svc"
            name_ru = "Услуга"
            kind = "application"
            senders = ["pep", "nobody"]
            channels = ["portal"]
            deadline = "5 working-days"
            providers = {{ default = "arm-a" }}
            "#
        );
        let error = table(&text).unwrap_err().to_string();
        assert!(error.contains("service `svc`"), "{error}");
        assert!(error.contains("unknown system `nobody`"), "{error}");
    }

    #[test]
    fn providers_need_valid_operators() {
        let missing = SYSTEMS.replace("operators = [\"800417400129\"]", "");
        let error = table(&missing).unwrap_err().to_string();
        assert!(error.contains("system `arm-a`: `operators`"), "{error}");
        let bad = SYSTEMS.replace("800417400129", "800417400128");
        let error = table(&bad).unwrap_err().to_string();
        assert!(
            error.contains("`operators` entry `800417400128`"),
            "{error}"
        );
    }

    #[test]
    fn rejects_unknown_keys_with_a_line_number() {
        let text = format!(
            r#"{SYSTEMS}
            [[service]]
            id = "svc"
            nmae_ru = "typo"
            "#
        );
        let error = table(&text).unwrap_err().to_string();
        assert!(error.contains("nmae_ru"), "{error}");
        assert!(error.contains("line"), "{error}");
    }

    #[test]
    fn rejects_a_lookup_on_an_unknown_registry() {
        let text = format!(
            r#"{SYSTEMS}
            [[service]]
            id = "lookup"
            name_ru = "Поиск"
            kind = "lookup"
            senders = ["pep"]
            channels = ["portal"]
            registry = "gbdxx"
            "#
        );
        let error = table(&text).unwrap_err().to_string();
        assert!(
            error.contains("unknown registry `gbdxx` (known: gbdfl, gbdul, enis)"),
            "{error}"
        );
    }

    #[test]
    fn rejects_a_non_provider_target_and_a_bad_deadline() {
        let target = format!(
            r#"{SYSTEMS}
            [[service]]
            id = "svc"
            name_ru = "Услуга"
            kind = "application"
            senders = ["pep"]
            channels = ["portal"]
            deadline = "5 working-days"
            providers = {{ default = "pep" }}
            "#
        );
        assert!(
            table(&target)
                .unwrap_err()
                .to_string()
                .contains("not a provider")
        );
        let deadline = target
            .replace("default = \"pep\"", "default = \"arm-a\"")
            .replace("5 working-days", "5 weeks");
        assert!(
            table(&deadline)
                .unwrap_err()
                .to_string()
                .contains("`deadline`")
        );
    }
}
