//! `shep population`: what the registries would answer, without a server;
//! and the population flags shared with `shep registry` and `shep serve`.

use std::path::PathBuf;

use clap::Subcommand;
use shep_proto::registry::v1::LookupRequest;
use shep_proto::registry::v1::lookup_request::Key;
use shep_proto::registry::v1::lookup_response::Record;
use shep_registries::data::Identifiers;
use shep_registries::ident::{Strictness, parse_bin, parse_iin};
use shep_registries::{PopulationConfig, RegistryData, RegistryError, RegistryKind};

use super::print::{print_attorney, print_entity, print_person, print_person_details};

/// The population settings shared by `shep registry`, `shep population` and
/// `shep serve`.
#[derive(Debug, Clone, clap::Args)]
pub(super) struct PopulationArgs {
    /// The seed of the synthetic population.
    #[arg(long)]
    seed: Option<u64>,
    /// IIN slots of the population (default: every valid IIN).
    #[arg(long)]
    size: Option<u64>,
    /// Share of identifiers (0-0.9) that answer "no data" (default 0.05).
    #[arg(long)]
    absent_share: Option<f64>,
    /// Fixture files applied after the built-in fixtures, in order.
    #[arg(long = "fixtures", num_args = 1..)]
    fixtures: Vec<PathBuf>,
    /// Accept identifiers with a wrong check digit (structure still checked).
    #[arg(long)]
    lenient: bool,
}

impl PopulationArgs {
    /// Applies the flags over `config`.
    pub(super) fn apply(&self, config: &mut PopulationConfig) -> anyhow::Result<()> {
        if let Some(seed) = self.seed {
            config.seed = seed;
        }
        if self.size.is_some() {
            config.size = self.size;
        }
        if let Some(share) = self.absent_share {
            config.absent_share = share;
        }
        config.fixtures.extend(self.fixtures.iter().cloned());
        if self.lenient {
            config.identifiers = Identifiers::Lenient;
        }
        config.validate("population").map_err(anyhow::Error::msg)
    }

    pub(super) fn data(&self, audit_capacity: usize) -> anyhow::Result<RegistryData> {
        let mut config = PopulationConfig::default();
        self.apply(&mut config)?;
        Ok(RegistryData::new(&config, audit_capacity)?)
    }
}

#[derive(Debug, Subcommand)]
pub(super) enum PopulationCommand {
    /// Shows the record of an IIN, a BIN or a power-of-attorney number.
    Show {
        /// An IIN, a BIN or a power-of-attorney number.
        id: String,
        #[command(flatten)]
        population: PopulationArgs,
    },
    /// Lists persons of the population, with their powers of attorney.
    Sample {
        /// How many persons.
        #[arg(long, default_value_t = 10)]
        count: usize,
        /// The first slot to look at.
        #[arg(long, default_value_t = 0)]
        from: u64,
        #[command(flatten)]
        population: PopulationArgs,
    },
}

/// Runs `shep population`.
pub(super) fn run(command: PopulationCommand) -> anyhow::Result<()> {
    match command {
        PopulationCommand::Show { id, population } => {
            let data = population.data(1)?;
            // The registry by the shape of the identifier: an IIN's 5th digit
            // starts a day (0-3), a BIN's is an entity type (4-6).
            let (kind, key) = if parse_iin(&id, Strictness::Lenient).is_ok() {
                (RegistryKind::Persons, Key::Iin(id.clone()))
            } else if parse_bin(&id, Strictness::Lenient).is_ok() {
                (RegistryKind::LegalEntities, Key::Bin(id.clone()))
            } else {
                (
                    RegistryKind::PowersOfAttorney,
                    Key::PowerOfAttorneyNumber(id.clone()),
                )
            };
            let request = LookupRequest {
                key: Some(key),
                context: None,
            };
            let answer = data.lookup(kind, &request).map_err(|error| match error {
                RegistryError::NoData { .. } => {
                    anyhow::anyhow!("{}: no data for `{id}` («нет данных»)", kind.name())
                }
                other => anyhow::anyhow!("{}: {other}", kind.name()),
            })?;
            match answer.record {
                Some(Record::Person(person)) => {
                    print_person(&person);
                    print_person_details(&person);
                }
                Some(Record::LegalEntity(entity)) => print_entity(&entity),
                Some(Record::PowerOfAttorney(attorney)) => print_attorney(&attorney),
                None => {}
            }
            Ok(())
        }
        PopulationCommand::Sample {
            count,
            from,
            population,
        } => {
            let data = population.data(1)?;
            let slots = data
                .population()
                .size()
                .unwrap_or(shep_registries::population::MAX_SIZE);
            let mut shown = 0;
            let mut slot = from;
            while shown < count && slot < slots {
                if let Some(iin) = data.population().iin_at(slot)
                    && let Some(person) = data.person(&iin)
                {
                    print_person(&person);
                    let numbers: Vec<String> = (1..=3)
                        .map(|ordinal| format!("{iin}-{ordinal:02}"))
                        .filter(|number| data.power_of_attorney(number).is_some())
                        .collect();
                    if !numbers.is_empty() {
                        println!("  powers of attorney: {}", numbers.join(", "));
                    }
                    shown += 1;
                }
                slot += 1;
            }
            Ok(())
        }
    }
}
