//! The data behind the mock registries — the synthetic population, the
//! fixtures on top of it and the access audit — shared by ГБД ФЛ, ГБД ЮЛ and
//! ЕНИС in one process.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

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

/// Which registry answers.
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

    /// The registry's id in configurations and routes.
    pub fn id(self) -> &'static str {
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
}

/// The population, the fixtures in force and the audit.
#[derive(Debug)]
pub struct RegistryData {
    population: Population,
    strictness: Strictness,
    files: Vec<PathBuf>,
    fixtures: RwLock<Arc<FixtureSet>>,
    generation: AtomicU64,
    audit: AccessAudit,
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

    /// Re-reads the fixture files and applies `documents` after them. On
    /// error the fixtures in force stay.
    pub fn reload(
        &self,
        documents: &[FixtureSource],
    ) -> Result<(FixtureSummary, u64), FixtureError> {
        let fixtures = Self::load(&self.population, self.strictness, &self.files, documents)?;
        let summary = fixtures.summary();
        *self
            .fixtures
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(fixtures);
        let generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        tracing::info!(generation, sources = ?summary.sources, "fixtures reloaded");
        Ok((summary, generation))
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
        let answer = self.answer(kind, request.key.as_ref());
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

    fn answer(&self, kind: RegistryKind, key: Option<&Key>) -> Result<Record, RegistryError> {
        let no_data = |key: &str| RegistryError::NoData {
            key: key.to_owned(),
        };
        match (kind, key) {
            (RegistryKind::Persons, Some(Key::Iin(iin))) => {
                parse_iin(iin, self.strictness).map_err(|source| RegistryError::InvalidKey {
                    key: iin.clone(),
                    source,
                })?;
                self.person(iin)
                    .map(Record::Person)
                    .ok_or_else(|| no_data(iin))
            }
            (RegistryKind::LegalEntities, Some(Key::Bin(bin))) => {
                parse_bin(bin, self.strictness).map_err(|source| RegistryError::InvalidKey {
                    key: bin.clone(),
                    source,
                })?;
                self.legal_entity(bin)
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
                self.power_of_attorney(number)
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
