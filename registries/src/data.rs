//! The data behind the mock registries — the synthetic population, the
//! fixtures on top of it and the access audit — shared by ГБД ФЛ, ГБД ЮЛ and
//! ЕНИС in one process.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use serde::Deserialize;
use shep_proto::registry::v1::{
    AccessOutcome, LegalEntity, LookupRequest, LookupResponse, Person, PowerOfAttorney,
    lookup_request::Key, lookup_response::Record,
};

use crate::audit::{Access, AccessAudit};
use crate::fixtures::{FixtureError, FixtureSet, FixtureSource, FixtureSummary};
use crate::ident::{Strictness, parse_bin, parse_iin};
use crate::population::{Directory, Population, PopulationError};
use crate::{RegistryError, success};

/// How strictly identifiers are checked, as the configuration spells it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Identifiers {
    /// Structure and check digit.
    #[default]
    Strict,
    /// Structure only: fixtures and lookups accept a wrong check digit.
    Lenient,
}

impl Identifiers {
    /// The codec's strictness.
    pub fn strictness(self) -> Strictness {
        match self {
            Self::Strict => Strictness::Strict,
            Self::Lenient => Strictness::Lenient,
        }
    }
}

/// The settings of the registries' data: `[population]` in the gateway's
/// configuration, the flags of `shep registry`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PopulationConfig {
    /// The seed every synthetic record is derived from.
    pub seed: u64,
    /// The number of IIN slots the population covers (see
    /// [`crate::population`]); absent: every valid IIN.
    pub size: Option<u64>,
    /// The share of identifiers (0-0.9) that answer "no data".
    pub absent_share: f64,
    /// Fixture files applied after the built-in fixtures, in order.
    pub fixtures: Vec<PathBuf>,
    /// `strict` (default) or `lenient` checking of identifiers in fixtures
    /// and lookups.
    pub identifiers: Identifiers,
}

/// The default seed.
pub const DEFAULT_SEED: u64 = 1;
/// The default share of absent identifiers.
pub const DEFAULT_ABSENT_SHARE: f64 = 0.05;

impl Default for PopulationConfig {
    fn default() -> Self {
        Self {
            seed: DEFAULT_SEED,
            size: None,
            absent_share: DEFAULT_ABSENT_SHARE,
            fixtures: Vec::new(),
            identifiers: Identifiers::Strict,
        }
    }
}

impl PopulationConfig {
    /// Checks what serde cannot; messages name the key under `prefix`
    /// (e.g. `population`).
    pub fn validate(&self, prefix: &str) -> Result<(), String> {
        Population::new(self.seed, self.size, self.absent_share)
            .map(|_| ())
            .map_err(|error| format!("`{prefix}.{}", error.to_string().trim_start_matches('`')))
    }
}

/// Why the registries' data could not be built.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error(transparent)]
    Population(#[from] PopulationError),
    #[error(transparent)]
    Fixtures(#[from] FixtureError),
}

/// An id that names no registry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown registry `{0}` (known: {known})", known = RegistryKind::IDS.join(", "))]
pub struct UnknownRegistry(pub String);

/// Which registry answers: the one list of registries, used by the
/// configuration, the server, the gateway's checks and the CLI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RegistryKind {
    /// ГБД ФЛ: persons by IIN.
    Persons,
    /// ГБД ЮЛ: legal entities by BIN.
    LegalEntities,
    /// ЕНИС: powers of attorney by number.
    PowersOfAttorney,
}

impl RegistryKind {
    /// Every registry.
    pub const ALL: [Self; 3] = [Self::Persons, Self::LegalEntities, Self::PowersOfAttorney];

    /// Every registry's id, in the order of [`Self::ALL`].
    pub const IDS: [&'static str; 3] = {
        let mut ids = [""; 3];
        let mut index = 0;
        while index < Self::ALL.len() {
            ids[index] = Self::ALL[index].id();
            index += 1;
        }
        ids
    };

    /// The registry's id in configurations and routes.
    pub const fn id(self) -> &'static str {
        match self {
            Self::Persons => "gbdfl",
            Self::LegalEntities => "gbdul",
            Self::PowersOfAttorney => "enis",
        }
    }

    /// The registry's name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Persons => "ГБД ФЛ",
            Self::LegalEntities => "ГБД ЮЛ",
            Self::PowersOfAttorney => "ЕНИС",
        }
    }

    /// The registry with id `id`.
    pub fn from_id(id: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.id() == id)
    }

    /// The registry with id `id`, or an error naming the known ids.
    pub fn parse(id: &str) -> Result<Self, UnknownRegistry> {
        Self::from_id(id).ok_or_else(|| UnknownRegistry(id.to_owned()))
    }
}

/// The population, the fixtures in force and the audit.
#[derive(Debug)]
pub struct RegistryData {
    population: Population,
    strictness: Strictness,
    files: Vec<PathBuf>,
    fixtures: RwLock<Arc<FixtureSet>>,
    /// What the global fixture set was built from, after the files.
    layers: RwLock<Layers>,
    /// Per test session: its own documents on top of the global set.
    sessions: RwLock<HashMap<String, SessionFixtures>>,
    /// Keys looked up since start or the last reset, as `registry:key`.
    used: Mutex<HashSet<String>>,
    generation: AtomicU64,
    audit: AccessAudit,
}

/// The global sources after the files: named documents (admin PutFixtures),
/// then the documents of the last reload.
#[derive(Debug, Default)]
struct Layers {
    named: Vec<FixtureSource>,
    reloaded: Vec<FixtureSource>,
}

#[derive(Debug)]
struct SessionFixtures {
    documents: Vec<FixtureSource>,
    set: Arc<FixtureSet>,
}

/// Where a fixture document applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope<'a> {
    Global,
    Session(&'a str),
}

impl Scope<'_> {
    /// `global` or `session <id>`.
    pub fn describe(&self) -> String {
        match self {
            Scope::Global => "global".to_owned(),
            Scope::Session(id) => format!("session {id}"),
        }
    }
}

impl RegistryData {
    /// Builds the population of `config` and loads the built-in fixtures and
    /// `config.fixtures`.
    pub fn new(config: &PopulationConfig, audit_capacity: usize) -> Result<Self, DataError> {
        let population = Population::new(config.seed, config.size, config.absent_share)?;
        let strictness = config.identifiers.strictness();
        let fixtures = Self::load(&population, strictness, &config.fixtures, &[])?;
        Ok(Self {
            population,
            strictness,
            files: config.fixtures.clone(),
            fixtures: RwLock::new(Arc::new(fixtures)),
            layers: RwLock::default(),
            sessions: RwLock::default(),
            used: Mutex::default(),
            generation: AtomicU64::new(1),
            audit: AccessAudit::new(audit_capacity),
        })
    }

    /// The default population with the built-in fixtures only.
    pub fn builtin() -> Self {
        // The built-in fixtures are valid for the default configuration: a
        // unit test loads them.
        Self::new(&PopulationConfig::default(), crate::audit::DEFAULT_CAPACITY)
            .expect("the built-in fixtures load on the default population")
    }

    fn load(
        population: &Population,
        strictness: Strictness,
        files: &[PathBuf],
        documents: &[FixtureSource],
    ) -> Result<FixtureSet, FixtureError> {
        let mut sources = vec![FixtureSource::builtin()];
        for file in files {
            sources.push(FixtureSource::file(file)?);
        }
        sources.extend_from_slice(documents);
        FixtureSet::load(population, &sources, strictness)
    }

    /// Re-reads the fixture files and applies the named documents and
    /// `documents` after them (`documents` replace those of the previous
    /// reload). On error the fixtures in force stay.
    pub fn reload(
        &self,
        documents: &[FixtureSource],
    ) -> Result<(FixtureSummary, u64), FixtureError> {
        let mut layers = self.layers.write().unwrap_or_else(|p| p.into_inner());
        let sources: Vec<FixtureSource> = layers.named.iter().chain(documents).cloned().collect();
        let fixtures = Self::load(&self.population, self.strictness, &self.files, &sources)?;
        let summary = fixtures.summary();
        self.rebuild_sessions(&sources)?;
        layers.reloaded = documents.to_vec();
        *self
            .fixtures
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(fixtures);
        let generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        tracing::info!(generation, sources = ?summary.sources, "fixtures reloaded");
        Ok((summary, generation))
    }

    /// Rebuilds every session's set on new global sources; all or nothing.
    fn rebuild_sessions(&self, global: &[FixtureSource]) -> Result<(), FixtureError> {
        let mut sessions = self.sessions.write().unwrap_or_else(|p| p.into_inner());
        let mut rebuilt = Vec::with_capacity(sessions.len());
        for (id, session) in sessions.iter() {
            let sources: Vec<FixtureSource> =
                global.iter().chain(&session.documents).cloned().collect();
            let set = Self::load(&self.population, self.strictness, &self.files, &sources)?;
            rebuilt.push((id.clone(), Arc::new(set)));
        }
        for (id, set) in rebuilt {
            if let Some(session) = sessions.get_mut(&id) {
                session.set = set;
            }
        }
        Ok(())
    }

    /// Adds `document` to `scope`, replacing one of the same name. It is
    /// validated with everything else in force first; on error nothing
    /// changes.
    pub fn put_document(
        &self,
        scope: Scope<'_>,
        document: FixtureSource,
    ) -> Result<FixtureSummary, FixtureError> {
        fn replace(list: &mut Vec<FixtureSource>, document: FixtureSource) {
            match list.iter_mut().find(|old| old.name == document.name) {
                Some(old) => *old = document,
                None => list.push(document),
            }
        }
        match scope {
            Scope::Global => {
                let mut layers = self.layers.write().unwrap_or_else(|p| p.into_inner());
                let mut named = layers.named.clone();
                replace(&mut named, document);
                self.apply_global(&mut layers, named)
            }
            Scope::Session(id) => {
                let mut documents = self.session_documents(id);
                replace(&mut documents, document);
                self.apply_session(id, documents)
            }
        }
    }

    /// Removes the document `name` from `scope`; `None` if it had none.
    pub fn delete_document(
        &self,
        scope: Scope<'_>,
        name: &str,
    ) -> Option<Result<FixtureSummary, FixtureError>> {
        match scope {
            Scope::Global => {
                let mut layers = self.layers.write().unwrap_or_else(|p| p.into_inner());
                let mut named = layers.named.clone();
                let before = named.len();
                named.retain(|document| document.name != name);
                (named.len() != before).then(|| self.apply_global(&mut layers, named))
            }
            Scope::Session(id) => {
                let mut documents = self.session_documents(id);
                let before = documents.len();
                documents.retain(|document| document.name != name);
                (documents.len() != before).then(|| self.apply_session(id, documents))
            }
        }
    }

    /// Removes every document of `scope` (for a session: the session's
    /// fixtures altogether); how many there were.
    pub fn clear(&self, scope: Scope<'_>) -> usize {
        match scope {
            Scope::Global => {
                let mut layers = self.layers.write().unwrap_or_else(|p| p.into_inner());
                let count = layers.named.len();
                if count > 0 {
                    // The remaining sources loaded before; a failure here
                    // would leave the named documents in force.
                    if let Err(error) = self.apply_global(&mut layers, Vec::new()) {
                        tracing::warn!(%error, "fixtures could not be reset");
                        return 0;
                    }
                }
                count
            }
            Scope::Session(id) => self
                .sessions
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .remove(id)
                .map_or(0, |session| session.documents.len()),
        }
    }

    /// The names of the documents in force for `scope`, in order.
    pub fn documents(&self, scope: Scope<'_>) -> Vec<String> {
        match scope {
            Scope::Global => self
                .layers
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .named
                .iter()
                .map(|document| document.name.clone())
                .collect(),
            Scope::Session(id) => self
                .session_documents(id)
                .into_iter()
                .map(|document| document.name)
                .collect(),
        }
    }

    /// What the fixtures in force for `scope` define.
    pub fn summary_for(&self, scope: Scope<'_>) -> FixtureSummary {
        match scope {
            Scope::Global => self.fixtures().summary(),
            Scope::Session(id) => self.fixtures_for(Some(id)).summary(),
        }
    }

    fn session_documents(&self, id: &str) -> Vec<FixtureSource> {
        self.sessions
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .map(|session| session.documents.clone())
            .unwrap_or_default()
    }

    fn global_sources(layers: &Layers, named: &[FixtureSource]) -> Vec<FixtureSource> {
        named.iter().chain(&layers.reloaded).cloned().collect()
    }

    fn apply_global(
        &self,
        layers: &mut Layers,
        named: Vec<FixtureSource>,
    ) -> Result<FixtureSummary, FixtureError> {
        let sources = Self::global_sources(layers, &named);
        let fixtures = Self::load(&self.population, self.strictness, &self.files, &sources)?;
        self.rebuild_sessions(&sources)?;
        let summary = fixtures.summary();
        layers.named = named;
        *self.fixtures.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(fixtures);
        self.generation.fetch_add(1, Ordering::SeqCst);
        Ok(summary)
    }

    fn apply_session(
        &self,
        id: &str,
        documents: Vec<FixtureSource>,
    ) -> Result<FixtureSummary, FixtureError> {
        let layers = self.layers.read().unwrap_or_else(|p| p.into_inner());
        let sources: Vec<FixtureSource> = Self::global_sources(&layers, &layers.named)
            .into_iter()
            .chain(documents.iter().cloned())
            .collect();
        let set = Self::load(&self.population, self.strictness, &self.files, &sources)?;
        let summary = set.summary();
        let mut sessions = self.sessions.write().unwrap_or_else(|p| p.into_inner());
        if documents.is_empty() {
            sessions.remove(id);
        } else {
            sessions.insert(
                id.to_owned(),
                SessionFixtures {
                    documents,
                    set: Arc::new(set),
                },
            );
        }
        Ok(summary)
    }

    /// Fixture keys (`registry:key`) of the user's documents that no lookup
    /// asked for since start or the last [`forget_used`](Self::forget_used),
    /// with the document defining them. `session` adds that session's
    /// documents.
    pub fn unused(&self, session: Option<&str>) -> Vec<(String, String)> {
        let mut documents = Vec::new();
        for file in &self.files {
            if let Ok(source) = FixtureSource::file(file) {
                documents.push(source);
            }
        }
        {
            let layers = self.layers.read().unwrap_or_else(|p| p.into_inner());
            documents.extend(layers.named.iter().chain(&layers.reloaded).cloned());
        }
        if let Some(id) = session {
            documents.extend(self.session_documents(id));
        }
        let used = self.used.lock().unwrap_or_else(|p| p.into_inner());
        let mut unused = Vec::new();
        for document in documents {
            for key in document.keys() {
                if !used.contains(&key) {
                    unused.push((key, document.name.clone()));
                }
            }
        }
        unused
    }

    /// Forgets which keys were looked up (for a test run's reset).
    pub fn forget_used(&self) {
        self.used.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// What the fixtures in force define, and how many loads there were.
    pub fn summary(&self) -> (FixtureSummary, u64) {
        (
            self.fixtures().summary(),
            self.generation.load(Ordering::SeqCst),
        )
    }

    fn fixtures(&self) -> Arc<FixtureSet> {
        self.fixtures
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// The set a lookup of `session` sees: the session's own, if it has
    /// documents, else the global one.
    fn fixtures_for(&self, session: Option<&str>) -> Arc<FixtureSet> {
        if let Some(id) = session.filter(|id| !id.is_empty()) {
            let sessions = self.sessions.read().unwrap_or_else(|p| p.into_inner());
            if let Some(found) = sessions.get(id) {
                return found.set.clone();
            }
        }
        self.fixtures()
    }

    /// The population.
    pub fn population(&self) -> &Population {
        &self.population
    }

    /// The access audit.
    pub fn audit(&self) -> &AccessAudit {
        &self.audit
    }

    /// The person with `iin`, as ГБД ФЛ answers (no audit); `None` also for
    /// an IIN the registry would refuse.
    pub fn person(&self, iin: &str) -> Option<Person> {
        parse_iin(iin, self.strictness).ok()?;
        let fixtures = self.fixtures();
        fixtures.view(&self.population).person(iin)
    }

    /// The legal entity with `bin`, as ГБД ЮЛ answers (no audit); `None`
    /// also for a BIN the registry would refuse.
    pub fn legal_entity(&self, bin: &str) -> Option<LegalEntity> {
        parse_bin(bin, self.strictness).ok()?;
        let fixtures = self.fixtures();
        fixtures.view(&self.population).legal_entity(bin)
    }

    /// The power of attorney numbered `number`, as ЕНИС answers (no audit).
    pub fn power_of_attorney(&self, number: &str) -> Option<PowerOfAttorney> {
        let fixtures = self.fixtures();
        fixtures.view(&self.population).power_of_attorney(number)
    }

    /// Answers `request` as registry `kind` and records it in the audit.
    pub fn lookup(
        &self,
        kind: RegistryKind,
        request: &LookupRequest,
    ) -> Result<LookupResponse, RegistryError> {
        let key = match &request.key {
            Some(Key::Iin(value) | Key::Bin(value) | Key::PowerOfAttorneyNumber(value)) => {
                value.as_str()
            }
            None => "",
        };
        let mut related = Vec::new();
        let session = request
            .context
            .as_ref()
            .map(|context| context.session.as_str());
        let answer = self.answer(kind, request.key.as_ref(), session);
        if !key.is_empty() {
            self.used
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(format!("{}:{key}", kind.id()));
        }
        if let Ok(Record::PowerOfAttorney(found)) = &answer {
            related = vec![
                found.principal_iin.clone(),
                found.principal_bin.clone(),
                found.representative_iin.clone(),
            ];
        }
        let outcome = match &answer {
            Ok(_) => AccessOutcome::Found,
            Err(RegistryError::NoData { .. }) => AccessOutcome::NoData,
            Err(_) => AccessOutcome::InvalidKey,
        };
        self.audit.record(Access {
            registry: kind.id(),
            key,
            related,
            outcome,
            context: request.context.as_ref(),
        });
        answer.map(|record| LookupResponse {
            result: Some(success()),
            record: Some(record),
        })
    }

    fn answer(
        &self,
        kind: RegistryKind,
        key: Option<&Key>,
        session: Option<&str>,
    ) -> Result<Record, RegistryError> {
        let fixtures = self.fixtures_for(session);
        let view = fixtures.view(&self.population);
        let no_data = |key: &str| RegistryError::NoData {
            key: key.to_owned(),
        };
        match (kind, key) {
            (RegistryKind::Persons, Some(Key::Iin(iin))) => {
                parse_iin(iin, self.strictness).map_err(|source| RegistryError::InvalidKey {
                    key: iin.clone(),
                    source,
                })?;
                view.person(iin)
                    .map(Record::Person)
                    .ok_or_else(|| no_data(iin))
            }
            (RegistryKind::LegalEntities, Some(Key::Bin(bin))) => {
                parse_bin(bin, self.strictness).map_err(|source| RegistryError::InvalidKey {
                    key: bin.clone(),
                    source,
                })?;
                view.legal_entity(bin)
                    .map(Record::LegalEntity)
                    .ok_or_else(|| no_data(bin))
            }
            (RegistryKind::PowersOfAttorney, Some(Key::PowerOfAttorneyNumber(number))) => {
                if number.is_empty()
                    || number.chars().count() > 64
                    || number
                        .chars()
                        .any(|ch| ch.is_whitespace() || ch.is_control())
                {
                    return Err(RegistryError::InvalidNumber {
                        number: number.clone(),
                    });
                }
                view.power_of_attorney(number)
                    .map(Record::PowerOfAttorney)
                    .ok_or_else(|| no_data(number))
            }
            _ => Err(RegistryError::UnsupportedKey {
                registry: kind.id(),
            }),
        }
    }
}

#[cfg(test)]
mod tests;
