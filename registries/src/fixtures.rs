//! Fixture files: curated persons, legal entities and powers of attorney that
//! add to or override the synthetic population, and identifiers marked absent.
//!
//! A fixture file is JSON in the format of `registries/fixtures.schema.json`
//! (point an editor at it with `"$schema"`). Sources apply in order — the
//! built-in fixtures first, then each file, then documents sent over the
//! admin API — and a later source overrides an earlier one. A person or
//! entity fixture sets only the fields it names; the others come from an
//! earlier source's record of that IIN or BIN, or else from the synthetic
//! one. Powers of attorney are given whole.
//!
//! Loading is all or nothing: the first problem stops it with an error that
//! names the source, the line and column, and the field, so the caller can
//! keep the data it had.

mod format;
mod locate;
mod merge;

use std::collections::{HashMap, HashSet};
use std::path::Path;

use shep_proto::registry::v1::{LegalEntity, Person, PowerOfAttorney};

use crate::ident::Strictness;
use crate::population::{Directory, Population};
use format::FixtureFile;
use locate::{Step, locate, render};

/// The fixtures built into the simulator: the eight demo persons, the demo
/// legal entities and powers of attorney, and stable "no data" examples.
pub const BUILTIN: &str = include_str!("../fixtures/builtin.json");

/// The JSON Schema of fixture files.
pub const SCHEMA: &str = include_str!("../fixtures.schema.json");

/// Why fixtures could not be loaded.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FixtureError {
    #[error("cannot read fixture file `{file}`: {message}")]
    Read { file: String, message: String },
    #[error("{file}:{line}:{column}: {}{problem}", field_prefix(.field))]
    Invalid {
        /// The file path or document name.
        file: String,
        /// 1-based line of the offending value (or of its record when the
        /// field is missing).
        line: usize,
        /// 1-based column, in characters.
        column: usize,
        /// The field, e.g. `persons[1].iin`; empty for a syntax error.
        field: String,
        problem: String,
    },
}

fn field_prefix(field: &str) -> String {
    if field.is_empty() {
        String::new()
    } else {
        format!("`{field}`: ")
    }
}

/// One fixture document and the name errors call it by.
#[derive(Debug, Clone)]
pub struct FixtureSource {
    pub name: String,
    pub text: String,
    /// The built-in fixtures: their records that a later source breaks (by
    /// marking a person they link to absent) are dropped rather than refused,
    /// since the user cannot edit them.
    builtin: bool,
}

impl FixtureSource {
    /// Reads a fixture file.
    pub fn file(path: &Path) -> Result<Self, FixtureError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|error| FixtureError::Read {
            file: name.clone(),
            message: error.to_string(),
        })?;
        Ok(Self {
            name,
            text,
            builtin: false,
        })
    }

    /// A document given as text (e.g. over the admin API).
    pub fn inline(name: &str, text: &str) -> Self {
        Self {
            name: name.to_owned(),
            text: text.to_owned(),
            builtin: false,
        }
    }

    /// The built-in fixtures.
    pub fn builtin() -> Self {
        Self {
            builtin: true,
            ..Self::inline("builtin", BUILTIN)
        }
    }
}

impl FixtureSource {
    /// The registry keys this document defines or marks absent, as
    /// `gbdfl:<iin>`, `gbdul:<bin>`, `enis:<number>`. A document that does
    /// not parse has none.
    pub fn keys(&self) -> Vec<String> {
        let Ok(file) = parse(self) else {
            return Vec::new();
        };
        let mut keys = Vec::new();
        keys.extend(file.persons.iter().map(|p| format!("gbdfl:{}", p.iin)));
        keys.extend(
            file.legal_entities
                .iter()
                .map(|e| format!("gbdul:{}", e.bin)),
        );
        keys.extend(
            file.powers_of_attorney
                .iter()
                .map(|a| format!("enis:{}", a.number)),
        );
        keys.extend(file.absent.iins.iter().map(|iin| format!("gbdfl:{iin}")));
        keys.extend(file.absent.bins.iter().map(|bin| format!("gbdul:{bin}")));
        keys.extend(
            file.absent
                .powers_of_attorney
                .iter()
                .map(|number| format!("enis:{number}")),
        );
        keys
    }
}

/// Counts of what a set of fixtures defines.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FixtureSummary {
    pub sources: Vec<String>,
    pub persons: usize,
    pub legal_entities: usize,
    pub powers_of_attorney: usize,
    pub absent: usize,
}

/// Loaded fixtures: complete records and absent identifiers.
#[derive(Debug, Default)]
pub struct FixtureSet {
    pub(crate) persons: HashMap<String, Person>,
    pub(crate) entities: HashMap<String, LegalEntity>,
    pub(crate) attorneys: HashMap<String, PowerOfAttorney>,
    pub(crate) absent_iins: HashSet<String>,
    pub(crate) absent_bins: HashSet<String>,
    pub(crate) absent_attorneys: HashSet<String>,
    pub(crate) sources: Vec<String>,
}

impl FixtureSet {
    /// Loads `sources` in order on top of `population`. Identifiers are
    /// checked with `strictness`.
    pub fn load(
        population: &Population,
        sources: &[FixtureSource],
        strictness: Strictness,
    ) -> Result<Self, FixtureError> {
        let mut files = Vec::with_capacity(sources.len());
        for source in sources {
            files.push((source, parse(source)?));
        }
        let mut set = Self {
            sources: sources.iter().map(|source| source.name.clone()).collect(),
            ..Self::default()
        };
        let mut merger = merge::Merger {
            population,
            strictness,
            set: &mut set,
            entity_origin: HashMap::new(),
        };
        // Persons first: entities and powers of attorney link to them.
        for (source, file) in &files {
            merger.persons(source, file)?;
        }
        for (position, (source, file)) in files.iter().enumerate() {
            merger.entities(position, source, file)?;
        }
        // An entity's founders may be entities defined later, so entity links
        // are checked once every entity is in.
        for (position, (source, file)) in files.iter().enumerate() {
            merger.check_links(position, source, file)?;
        }
        for (source, file) in &files {
            merger.attorneys(source, file)?;
        }
        Ok(set)
    }

    /// What the set defines.
    pub fn summary(&self) -> FixtureSummary {
        FixtureSummary {
            sources: self.sources.clone(),
            persons: self.persons.len(),
            legal_entities: self.entities.len(),
            powers_of_attorney: self.attorneys.len(),
            absent: self.absent_iins.len() + self.absent_bins.len() + self.absent_attorneys.len(),
        }
    }

    /// The population seen through these fixtures.
    pub fn view<'a>(&'a self, population: &'a Population) -> View<'a> {
        View {
            population,
            fixtures: self,
        }
    }
}

/// The population with fixtures on top: what the registries answer.
#[derive(Debug, Clone, Copy)]
pub struct View<'a> {
    pub population: &'a Population,
    pub fixtures: &'a FixtureSet,
}

impl View<'_> {
    /// The power of attorney numbered `number`, if any.
    pub fn power_of_attorney(&self, number: &str) -> Option<PowerOfAttorney> {
        if self.fixtures.absent_attorneys.contains(number) {
            return None;
        }
        if let Some(found) = self.fixtures.attorneys.get(number) {
            return Some(found.clone());
        }
        self.population.power_of_attorney(number, self)
    }
}

impl Directory for View<'_> {
    fn person(&self, iin: &str) -> Option<Person> {
        if self.fixtures.absent_iins.contains(iin) {
            return None;
        }
        if let Some(found) = self.fixtures.persons.get(iin) {
            return Some(found.clone());
        }
        self.population.person(iin)
    }

    fn legal_entity(&self, bin: &str) -> Option<LegalEntity> {
        if self.fixtures.absent_bins.contains(bin) {
            return None;
        }
        if let Some(found) = self.fixtures.entities.get(bin) {
            return Some(found.clone());
        }
        self.population.legal_entity(bin, self)
    }

    fn entity_name(&self, bin: &str) -> Option<String> {
        if self.fixtures.absent_bins.contains(bin) {
            return None;
        }
        if let Some(found) = self.fixtures.entities.get(bin) {
            let registered = found
                .reg_status
                .as_ref()
                .is_some_and(|status| status.code == crate::reference::REGISTERED.0);
            return registered.then(|| found.short_name_ru.clone());
        }
        self.population.entity_name(bin)
    }
}

/// An error at `path` in `source`.
pub(crate) fn invalid(source: &FixtureSource, path: &[Step], problem: String) -> FixtureError {
    let (line, column) = locate(&source.text, path);
    FixtureError::Invalid {
        file: source.name.clone(),
        line,
        column,
        field: render(path),
        problem,
    }
}

/// A serde_json error as a fixture error at `path`.
fn syntax(source: &FixtureSource, path: &[Step], error: &serde_json::Error) -> FixtureError {
    let message = error.to_string();
    let suffix = format!(" at line {} column {}", error.line(), error.column());
    FixtureError::Invalid {
        file: source.name.clone(),
        line: error.line().max(1),
        // serde_json says column 0 for an error before a line's first
        // character (an early end after a newline, an empty document); the
        // error promises 1-based positions, as editors read them.
        column: error.column().max(1),
        field: render(path),
        problem: message.strip_suffix(&suffix).unwrap_or(&message).to_owned(),
    }
}

/// Parses a document, naming the field of a type error.
fn parse(source: &FixtureSource) -> Result<FixtureFile, FixtureError> {
    let mut deserializer = serde_json::Deserializer::from_str(&source.text);
    let file: FixtureFile =
        serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
            let path: Vec<Step> = error
                .path()
                .iter()
                .filter_map(|segment| match segment {
                    serde_path_to_error::Segment::Seq { index } => Some(Step::Index(*index)),
                    serde_path_to_error::Segment::Map { key } => Some(Step::Key(key.clone())),
                    serde_path_to_error::Segment::Enum { variant } => {
                        Some(Step::Key(variant.clone()))
                    }
                    serde_path_to_error::Segment::Unknown => None,
                })
                .collect();
            syntax(source, &path, error.inner())
        })?;
    // Anything after the document is an error too.
    deserializer
        .end()
        .map_err(|error| syntax(source, &[], &error))?;
    Ok(file)
}

#[cfg(test)]
mod tests;
