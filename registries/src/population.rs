//! The synthetic population: a person for any valid IIN, a legal entity for any
//! valid BIN and powers of attorney between them, each derived from a hash of
//! (seed, identifier) when asked for, so that twenty million persons cost no
//! memory and the same seed always gives the same answer.
//!
//! **Persons.** With no `size`, every valid IIN whose birth date is before
//! [`AS_OF`] is a person. With a `size`, the population is the first `size`
//! *slots* of a fixed enumeration: slot `i` holds the IIN with serial
//! `i / PAIRS` and the (birth date, sex) pair `i % PAIRS` after a seeded
//! permutation, with birth dates in the hundred years before [`AS_OF`]. So a
//! population of any size has an even spread of ages and low serials, like
//! real IINs. About 1 slot in 121 has no check digit (the number is never
//! issued) and holds nobody.
//!
//! **Absent identifiers.** A share of identifiers (`absent_share`) answers "no
//! data", chosen by a hash of the identifier alone, independent of the rest.
//!
//! **Legal entities** exist for valid BINs registered from January 1990 to
//! December 2025 (the year and month the BIN encodes); their heads and
//! founders are persons of the population. **Powers of attorney** are
//! numbered `<principal IIN or BIN>-<NN>`: each living adult (and each
//! registered entity) has 0-3 of them, `-01` to `-0k`.
//!
//! The derivation is part of a release's contract: the same release and seed
//! give the same records; a release that changes the name lists or the rules
//! may change them.

pub(crate) mod attorney;
mod entity;
mod person;

use shep_proto::registry::v1::{LegalEntity, Person, PowerOfAttorney};
use time::macros::date;
use time::{Date, Duration};

use crate::hash::{Draw, Purpose, hash_id, mix};
use crate::ident::{IinInfo, Sex, Strictness, make_iin, parse_bin, parse_iin};

pub use entity::EntityCore;

/// The day the synthetic population is as of: ages, document validity and
/// registrations are computed for this day, so that records do not change as
/// time passes.
pub const AS_OF: Date = date!(2026 - 01 - 01);

/// The first birth date of a sized population (a hundred years before
/// [`AS_OF`]).
const FIRST_BIRTH: Date = date!(1926 - 01 - 01);

/// Birth dates in a sized population.
const DAYS: u64 = 36_525;

/// (birth date, sex) pairs per serial.
pub const PAIRS: u64 = DAYS * 2;

/// Slots in the whole enumeration: every pair with every 4-digit serial.
pub const MAX_SIZE: u64 = PAIRS * 10_000;

/// Why a population cannot be built.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PopulationError {
    #[error("`absent_share` must be from 0 to 0.9, got {0}")]
    AbsentShare(f64),
    #[error("`size` must be 1-{MAX_SIZE}, got {0}")]
    Size(u64),
}

/// Where a composed registry looks up the persons and entities a record
/// links to (the population itself, or the population with fixtures on top).
pub trait Directory {
    /// The person ГБД ФЛ answers for `iin`, if any.
    fn person(&self, iin: &str) -> Option<Person>;
    /// The legal entity ГБД ЮЛ answers for `bin`, if any.
    fn legal_entity(&self, bin: &str) -> Option<LegalEntity>;
    /// The short name of a registered entity, if it exists, without deriving
    /// its people (founders are looked up by name only, which keeps chains of
    /// entities founding entities short).
    fn entity_name(&self, bin: &str) -> Option<String>;
}

/// A seeded affine permutation of `0..PAIRS`: consecutive slots spread over
/// all birth dates, so that a small population has every age.
#[derive(Debug, Clone, Copy)]
struct Permutation {
    multiplier: u64,
    inverse: u64,
    offset: u64,
}

fn gcd(mut left: u64, mut right: u64) -> u64 {
    while right != 0 {
        (left, right) = (right, left % right);
    }
    left
}

/// The inverse of `value` modulo `modulus` (they must be coprime).
fn inverse_mod(value: u64, modulus: u64) -> u64 {
    let (mut old_r, mut r) = (value as i128, modulus as i128);
    let (mut old_s, mut s) = (1i128, 0i128);
    while r != 0 {
        let quotient = old_r / r;
        (old_r, r) = (r, old_r - quotient * r);
        (old_s, s) = (s, old_s - quotient * s);
    }
    old_s.rem_euclid(modulus as i128) as u64
}

impl Permutation {
    fn new(seed: u64) -> Self {
        let mixed = mix(seed ^ Purpose::Permutation as u64);
        // Near the golden ratio of the domain, which spreads prefixes evenly.
        let mut multiplier = (PAIRS as f64 * 0.618_033_988_75) as u64 + mixed % 997;
        while gcd(multiplier, PAIRS) != 1 {
            multiplier += 1;
        }
        Self {
            multiplier,
            inverse: inverse_mod(multiplier, PAIRS),
            offset: mix(mixed) % PAIRS,
        }
    }

    fn forward(&self, value: u64) -> u64 {
        (self.multiplier * value + self.offset) % PAIRS
    }

    fn backward(&self, value: u64) -> u64 {
        (self.inverse * ((value + PAIRS - self.offset) % PAIRS)) % PAIRS
    }
}

/// The synthetic population of one seed.
#[derive(Debug, Clone)]
pub struct Population {
    seed: u64,
    size: Option<u64>,
    absent_share: f64,
    absent_threshold: u64,
    permutation: Permutation,
}

impl Population {
    /// Creates the population of `seed` over `size` slots (every valid IIN
    /// when `None`), with `absent_share` (0-0.9) of identifiers absent.
    pub fn new(seed: u64, size: Option<u64>, absent_share: f64) -> Result<Self, PopulationError> {
        if !(0.0..=0.9).contains(&absent_share) {
            return Err(PopulationError::AbsentShare(absent_share));
        }
        if let Some(size) = size
            && !(1..=MAX_SIZE).contains(&size)
        {
            return Err(PopulationError::Size(size));
        }
        Ok(Self {
            seed,
            size,
            absent_share,
            absent_threshold: (absent_share * u64::MAX as f64) as u64,
            permutation: Permutation::new(seed),
        })
    }

    /// The seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The number of slots, or `None` for every valid IIN.
    pub fn size(&self) -> Option<u64> {
        self.size
    }

    /// The share of identifiers that are absent.
    pub fn absent_share(&self) -> f64 {
        self.absent_share
    }

    /// Whether the population says "no data" for `id` whatever it is.
    pub fn is_absent(&self, id: &str) -> bool {
        self.absent_threshold != 0
            && hash_id(self.seed, Purpose::Absent, id) < self.absent_threshold
    }

    /// The IIN in slot `index`, or `None` when the slot is outside the
    /// population or its number is never issued. The person may still be
    /// absent.
    pub fn iin_at(&self, index: u64) -> Option<String> {
        if index >= self.size.unwrap_or(MAX_SIZE) {
            return None;
        }
        let serial = (index / PAIRS) as u16;
        let pair = self.permutation.forward(index % PAIRS);
        let birth_date = FIRST_BIRTH + Duration::days((pair / 2) as i64);
        let sex = if pair.is_multiple_of(2) {
            Sex::Male
        } else {
            Sex::Female
        };
        make_iin(birth_date, sex, serial)
    }

    /// The slot of `iin` in the enumeration, if its birth date is in range.
    pub fn index_of(&self, iin: &str) -> Option<u64> {
        let info = parse_iin(iin, Strictness::Lenient).ok()?;
        let day = (info.birth_date - FIRST_BIRTH).whole_days();
        if !(0..DAYS as i64).contains(&day) {
            return None;
        }
        let pair = day as u64 * 2 + u64::from(info.sex == Sex::Female);
        let serial: u64 = iin[7..11].parse().ok()?;
        Some(serial * PAIRS + self.permutation.backward(pair))
    }

    /// Whether the person of `iin` belongs to the population (absent or not).
    fn contains(&self, iin: &str, info: &IinInfo) -> bool {
        match self.size {
            None => info.birth_date < AS_OF,
            Some(size) => self.index_of(iin).is_some_and(|index| index < size),
        }
    }

    /// The person with `iin`, if the population has one and it is not absent.
    pub fn person(&self, iin: &str) -> Option<Person> {
        let info = parse_iin(iin, Strictness::Lenient).ok()?;
        if !self.contains(iin, &info) || self.is_absent(iin) {
            return None;
        }
        Some(self.synthesize_person(iin, &info))
    }

    /// The synthetic record for `iin`, whether or not the population holds
    /// it: fixtures start from it.
    pub fn synthesize_person(&self, iin: &str, info: &IinInfo) -> Person {
        person::synthesize(self.seed, iin, info)
    }

    /// The legal entity with `bin`, if the population has one and it is not
    /// absent. Its head and founders are looked up in `directory`.
    pub fn legal_entity(&self, bin: &str, directory: &dyn Directory) -> Option<LegalEntity> {
        if self.is_absent(bin) {
            return None;
        }
        let core = self.entity_core(bin)?;
        if !core.in_population() {
            return None;
        }
        Some(entity::complete(self, core, directory))
    }

    /// The synthetic record for `bin`, whether or not the population holds
    /// it (fixtures start from it); `None` only for a malformed BIN.
    pub fn synthesize_entity(&self, bin: &str, directory: &dyn Directory) -> Option<LegalEntity> {
        self.entity_core(bin)
            .map(|core| entity::complete(self, core, directory))
    }

    /// The parts of an entity that need no other record.
    pub fn entity_core(&self, bin: &str) -> Option<EntityCore> {
        let info = parse_bin(bin, Strictness::Lenient).ok()?;
        Some(entity::core(self.seed, bin, &info))
    }

    /// The short name of a registered, non-absent synthetic entity whose name
    /// is not a person's (see [`Directory::entity_name`]).
    pub fn entity_name(&self, bin: &str) -> Option<String> {
        if self.is_absent(bin) {
            return None;
        }
        let core = self.entity_core(bin)?;
        (core.in_population() && core.is_registered())
            .then(|| core.short_name_ru())
            .flatten()
    }

    /// The synthetic power of attorney numbered `number`, if its principal has
    /// that many. Principal and representative come from `directory`.
    pub fn power_of_attorney(
        &self,
        number: &str,
        directory: &dyn Directory,
    ) -> Option<PowerOfAttorney> {
        attorney::synthesize(self, number, directory)
    }

    /// Picks a living person born on or before `born_by` from `directory`,
    /// other than `except`; `None` when a few tries find nobody (a tiny or
    /// mostly absent population).
    pub(crate) fn pick_person(
        &self,
        draw: &mut Draw,
        directory: &dyn Directory,
        born_by: Date,
        except: &str,
    ) -> Option<Person> {
        let oldest = AS_OF - Duration::days(85 * 365);
        for _ in 0..32 {
            let candidate = match self.size {
                Some(size) => self.iin_at(draw.below(size)),
                None => {
                    let span = (born_by - oldest).whole_days().max(1);
                    let birth = oldest + Duration::days(draw.range(0, span));
                    let sex = if draw.chance(500) {
                        Sex::Male
                    } else {
                        Sex::Female
                    };
                    make_iin(birth, sex, draw.below(2_000) as u16)
                }
            };
            let Some(iin) = candidate else { continue };
            if iin == except {
                continue;
            }
            if let Some(person) = directory.person(&iin)
                && person.death_date.is_empty()
                && person.birth_date.as_str() <= born_by.to_string().as_str()
            {
                return Some(person);
            }
        }
        None
    }
}

impl Directory for Population {
    fn person(&self, iin: &str) -> Option<Person> {
        Population::person(self, iin)
    }

    fn legal_entity(&self, bin: &str) -> Option<LegalEntity> {
        Population::legal_entity(self, bin, self)
    }

    fn entity_name(&self, bin: &str) -> Option<String> {
        Population::entity_name(self, bin)
    }
}

/// Adds whole years to a date (29 February becomes 28 February in a common
/// year).
pub(crate) fn add_years(date: Date, years: i32) -> Date {
    let year = date.year() + years;
    date.replace_year(year)
        .or_else(|_| date.replace_day(28).and_then(|day| day.replace_year(year)))
        .unwrap_or(date)
}

/// Whole years from `from` to `to`.
pub(crate) fn years_between(from: Date, to: Date) -> i32 {
    let mut years = to.year() - from.year();
    if (to.month() as u8, to.day()) < (from.month() as u8, from.day()) {
        years -= 1;
    }
    years
}

/// "Surname Name Patronymic".
pub(crate) fn full_name(person: &Person) -> String {
    [&person.surname, &person.name, &person.patronymic]
        .iter()
        .filter(|part| !part.is_empty())
        .map(|part| part.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests;
