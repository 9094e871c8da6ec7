//! Synthetic powers of attorney. ЕНИС's own number format is not public, so
//! the simulator's numbers name their principal: `<IIN or BIN>-<NN>`. A living
//! adult (or a registered entity) has 0-3 of them, numbered from `-01`; each
//! names a living adult representative, a notary, dates and, sometimes, the
//! services it is limited to. Some are revoked and some have expired.

use shep_proto::registry::v1::PowerOfAttorney;
use time::{Date, Duration};

use super::{AS_OF, Directory, Population, add_years, years_between};
use crate::hash::{Draw, Purpose};
use crate::ident::{Sex, Strictness, parse_bin, parse_iin};
use crate::names::GROUPS;
use crate::reference::{SERVICES, region_of};

/// Splits a synthetic number into the principal's identifier and the ordinal.
pub(crate) fn parse_number(number: &str) -> Option<(&str, u8)> {
    let (principal, ordinal) = number.split_once('-')?;
    if principal.len() != 12 || ordinal.len() != 2 || !principal.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let ordinal: u8 = ordinal.parse().ok()?;
    (ordinal > 0).then_some((principal, ordinal))
}

/// How many powers of attorney a principal has (0-3).
fn count(seed: u64, principal: &str) -> u8 {
    let mut draw = Draw::new(seed, Purpose::Attorney, principal);
    *draw.weighted(&[(400, 0), (350, 1), (150, 2), (100, 3)])
}

fn date_of(text: &str) -> Option<Date> {
    Date::parse(text, &time::format_description::well_known::Iso8601::DATE).ok()
}

/// A notary's name in the principal's region: "Нотариус г. Актау Касымова А. Б.".
pub(crate) fn notary(draw: &mut Draw, city: &str) -> String {
    // Notaries' names follow the population's commonest traditions.
    let group = &GROUPS[draw.below(2) as usize];
    let sex = if draw.chance(600) {
        Sex::Female
    } else {
        Sex::Male
    };
    let masculine = *draw.pick(group.names.surnames);
    let surname = crate::names::surname_for(masculine, sex);
    let initial = match sex {
        Sex::Male => draw.pick(group.names.men).0,
        Sex::Female => *draw.pick(group.names.women),
    };
    let father = draw.pick(group.names.men).0;
    let first = |name: &str| name.chars().next().unwrap_or('А');
    format!(
        "Нотариус г. {city} {surname} {}. {}.",
        first(initial),
        first(father)
    )
}

pub(super) fn synthesize(
    population: &Population,
    number: &str,
    directory: &dyn Directory,
) -> Option<PowerOfAttorney> {
    let (principal_id, ordinal) = parse_number(number)?;
    // Principal: a living adult, or a registered entity through its head.
    let (principal, principal_bin) = if parse_iin(principal_id, Strictness::Strict).is_ok() {
        let person = directory.person(principal_id)?;
        let born = date_of(&person.birth_date)?;
        if !person.death_date.is_empty() || years_between(born, AS_OF) < 18 {
            return None;
        }
        (person, String::new())
    } else if parse_bin(principal_id, Strictness::Strict).is_ok() {
        let entity = directory.legal_entity(principal_id)?;
        let registered = entity
            .reg_status
            .as_ref()
            .is_some_and(|status| status.code == crate::reference::REGISTERED.0);
        if !registered || entity.head_iin.is_empty() {
            return None;
        }
        (directory.person(&entity.head_iin)?, principal_id.to_owned())
    } else {
        return None;
    };
    if ordinal > count(population.seed(), principal_id) {
        return None;
    }

    let mut draw = Draw::new(population.seed(), Purpose::Attorney, number);
    let representative =
        population.pick_person(&mut draw, directory, add_years(AS_OF, -18), &principal.iin)?;
    let city = principal
        .reg_address
        .as_ref()
        .and_then(|address| region_of(&address.kato))
        .map(|region| region.centre_ru)
        .unwrap_or("Астана");
    let notary_name = notary(&mut draw, city);
    let issue_date = AS_OF - Duration::days(draw.range(1, 4 * 365));
    let term_years = *draw.pick(&[1, 1, 2, 3, 3, 5]);
    let valid_until = add_years(issue_date, term_years) - Duration::days(1);
    let service_ids = if draw.chance(600) {
        Vec::new()
    } else {
        let first = *draw.pick(SERVICES);
        let mut services = vec![first.to_owned()];
        let second = *draw.pick(SERVICES);
        if draw.chance(300) && second != first {
            services.push(second.to_owned());
        }
        services
    };
    let revoked = draw.chance(100);
    let revocation_date = revoked.then(|| {
        let span = (AS_OF - issue_date).whole_days().max(1);
        issue_date + Duration::days(draw.range(0, span - 1))
    });
    Some(PowerOfAttorney {
        number: number.to_owned(),
        principal_iin: principal.iin,
        representative_iin: representative.iin,
        notary_name,
        issue_date: issue_date.to_string(),
        valid_until: valid_until.to_string(),
        service_ids,
        revoked,
        principal_bin,
        revocation_date: revocation_date
            .map(|date| date.to_string())
            .unwrap_or_default(),
    })
}
