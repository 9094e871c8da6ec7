//! A synthetic person: names by nationality, birth date and sex from the IIN,
//! addresses in real regions and districts (by population share), documents and life status consistent with the
//! age as of [`AS_OF`].

use shep_proto::registry::v1::{Address, IdentityDocument, Person};
use time::{Date, Duration};

use time::macros::date;

use super::{AS_OF, add_years, years_between};
use crate::hash::{Draw, Purpose};
use crate::ident::{IinInfo, Sex};
use crate::names::{GROUPS, Group, patronymic_for, surname_for};
use crate::reference::{
    self, BIRTH_CERTIFICATE, COUNTRIES, DECEASED, DOCUMENT_EXPIRED, DOCUMENT_INVALID,
    DOCUMENT_LOST, DOCUMENT_VALID, District, FEMALE, ID_CARD, KAZAKHSTAN, MALE, MJ, MVD,
    NATIONALITIES, PASSPORT, REGIONS, Region, STREETS, value,
};

/// When Kazakhstan's own identity documents start: none is dated earlier.
const FIRST_DOCUMENTS: Date = date!(1995 - 01 - 01);

/// A region drawn by population weight.
pub(crate) fn draw_region(draw: &mut Draw) -> &'static Region {
    let total: u64 = REGIONS.iter().map(|region| u64::from(region.weight)).sum();
    let mut point = draw.below(total);
    for region in REGIONS {
        if point < u64::from(region.weight) {
            return region;
        }
        point -= u64::from(region.weight);
    }
    &REGIONS[0]
}

/// A district of `region` drawn by its share of the region's population; the
/// centre of a region kept at centre level (drawing nothing, so those
/// regions' persons stay as they were before districts).
pub(crate) fn draw_district(region: &Region, draw: &mut Draw) -> District {
    if region.districts.is_empty() {
        return region.centre();
    }
    let total: u64 = region
        .districts
        .iter()
        .map(|district| u64::from(district.weight))
        .sum();
    let mut point = draw.below(total);
    for district in region.districts {
        if point < u64::from(district.weight) {
            return *district;
        }
        point -= u64::from(district.weight);
    }
    region.districts[0]
}

/// An address at the seat of `district` in `region`; `with_home` adds a
/// building and, mostly, a flat.
pub(crate) fn address_in(
    region: &Region,
    district: &District,
    draw: &mut Draw,
    with_home: bool,
) -> Address {
    let (street, building, flat) = if with_home {
        let flat = if draw.chance(650) {
            draw.range(1, 250).to_string()
        } else {
            String::new()
        };
        (
            (*draw.pick(STREETS)).to_owned(),
            draw.range(1, 180).to_string(),
            flat,
        )
    } else {
        (String::new(), String::new(), String::new())
    };
    Address {
        kato: district.seat.kato.to_owned(),
        country: Some(value(&KAZAKHSTAN)),
        region: Some(reference::region_value(region)),
        district: Some(district.value()),
        city: district.seat.locality_ru(),
        street,
        building,
        flat,
    }
}

fn draw_group(draw: &mut Draw) -> &'static Group {
    let mut point = draw.below(1000) as u32;
    for group in GROUPS {
        if point < group.per_mille {
            return group;
        }
        point -= group.per_mille;
    }
    &GROUPS[0]
}

/// Chance of having died by [`AS_OF`], per mille, by age then.
fn death_per_mille(age: i32) -> u64 {
    match age {
        ..=39 => 5,
        40..=59 => 30,
        60..=74 => 120,
        75..=89 => 400,
        90..=109 => 850,
        _ => 1000,
    }
}

fn digits(draw: &mut Draw, count: u32) -> String {
    format!(
        "{:0width$}",
        draw.below(10u64.pow(count)),
        width = count as usize
    )
}

fn document(
    kind: &reference::Entry,
    number: String,
    begin: Date,
    end: Option<Date>,
    issuer: &reference::Entry,
    status: &reference::Entry,
) -> IdentityDocument {
    IdentityDocument {
        r#type: Some(value(kind)),
        number,
        begin_date: begin.to_string(),
        end_date: end.map(|end| end.to_string()).unwrap_or_default(),
        issuer: Some(value(issuer)),
        status: Some(value(status)),
    }
}

/// Identity documents, the current one first: a birth certificate under 16;
/// from 16 an identity card renewed every ten years, sometimes a passport and
/// an earlier card (expired or lost).
fn documents(draw: &mut Draw, birth: Date, death: Option<Date>) -> Vec<IdentityDocument> {
    let until = death.unwrap_or(AS_OF);
    if until < FIRST_DOCUMENTS {
        // Died before Kazakhstan issued documents of its own.
        return Vec::new();
    }
    let age = years_between(birth, until);
    // A dead person's documents are cancelled.
    let current = if death.is_some() {
        &DOCUMENT_INVALID
    } else {
        &DOCUMENT_VALID
    };
    if age < 16 {
        let issued = (birth + Duration::days(draw.range(3, 30))).min(until);
        return vec![document(
            &BIRTH_CERTIFICATE,
            digits(draw, 7),
            issued,
            None,
            &MJ,
            current,
        )];
    }
    let renewals = (age - 16) / 10;
    let mut issued = add_years(birth, 16 + 10 * renewals) + Duration::days(draw.range(0, 60));
    if issued < FIRST_DOCUMENTS {
        issued = FIRST_DOCUMENTS + Duration::days(draw.range(0, 364));
    }
    if issued >= until {
        issued = until - Duration::days(1);
    }
    let mut all = vec![document(
        &ID_CARD,
        format!("0{}", digits(draw, 8)),
        issued,
        Some(add_years(issued, 10) - Duration::days(1)),
        &MVD,
        current,
    )];
    if draw.chance(350) {
        let since = years_between(add_years(birth, 16), until).min(9);
        let passport_issued = add_years(until, -draw.range(0, i64::from(since)) as i32)
            - Duration::days(draw.range(1, 300));
        let passport_issued = passport_issued
            .max(add_years(birth, 16))
            .max(FIRST_DOCUMENTS);
        let end = add_years(passport_issued, 10) - Duration::days(1);
        let status = if death.is_some() {
            &DOCUMENT_INVALID
        } else if end < AS_OF {
            &DOCUMENT_EXPIRED
        } else {
            &DOCUMENT_VALID
        };
        all.push(document(
            &PASSPORT,
            format!("N{}", digits(draw, 8)),
            passport_issued,
            Some(end),
            &MVD,
            status,
        ));
    }
    if renewals > 0 && draw.chance(300) && add_years(issued, -10) >= FIRST_DOCUMENTS {
        let earlier = add_years(issued, -10);
        let status = if draw.chance(200) {
            &DOCUMENT_LOST
        } else {
            &DOCUMENT_EXPIRED
        };
        all.push(document(
            &ID_CARD,
            format!("0{}", digits(draw, 8)),
            earlier,
            Some(add_years(earlier, 10) - Duration::days(1)),
            &MVD,
            status,
        ));
    }
    all
}

/// The person for `iin`. Every attribute is drawn from one stream seeded by
/// (seed, IIN), always in the same order.
pub(super) fn synthesize(seed: u64, iin: &str, info: &IinInfo) -> Person {
    let mut draw = Draw::new(seed, Purpose::Person, iin);
    let group = draw_group(&mut draw);
    let masculine = *draw.pick(group.names.surnames);
    let surname = surname_for(masculine, info.sex);
    let name = match info.sex {
        Sex::Male => draw.pick(group.names.men).0,
        Sex::Female => *draw.pick(group.names.women),
    };
    let patronymic = patronymic_for(draw.pick(group.names.men), info.sex);
    let citizenship = if draw.chance(985) {
        value(&KAZAKHSTAN)
    } else {
        value(draw.pick(&COUNTRIES[1..]))
    };
    let home = draw_region(&mut draw);
    let home_district = draw_district(home, &mut draw);
    let reg_address = address_in(home, &home_district, &mut draw, true);
    let (birth_region, birth_district) = if draw.chance(750) {
        (home, home_district)
    } else {
        let region = draw_region(&mut draw);
        (region, draw_district(region, &mut draw))
    };
    let birth_place = address_in(birth_region, &birth_district, &mut draw, false);

    let birth = info.birth_date;
    let age = years_between(birth, AS_OF);
    let dies = draw.chance(death_per_mille(age));
    let death = dies.then(|| {
        let lived = (AS_OF - birth).whole_days().max(2);
        if age > 110 {
            // Born in the 1800s or early 1900s: died old, long ago.
            birth + Duration::days(draw.range(50 * 365, 95 * 365))
        } else {
            // Died in the second half of their life so far.
            birth + Duration::days(draw.range((lived / 2).max(1), lived - 1))
        }
    });
    let documents = documents(&mut draw, birth, death);
    let nationality = reference::find(NATIONALITIES, group.nationality).unwrap_or_default();
    Person {
        iin: iin.to_owned(),
        surname,
        name: name.to_owned(),
        patronymic: patronymic.to_owned(),
        birth_date: birth.to_string(),
        birth_place: Some(birth_place),
        gender: Some(value(match info.sex {
            Sex::Male => &MALE,
            Sex::Female => &FEMALE,
        })),
        citizenship: Some(citizenship),
        nationality: Some(nationality),
        life_status: Some(value(if death.is_some() {
            &DECEASED
        } else {
            &reference::ALIVE
        })),
        reg_address: Some(reg_address),
        documents,
        death_date: death.map(|death| death.to_string()).unwrap_or_default(),
    }
}
