//! A synthetic legal entity: legal form from the BIN's entity and unit types,
//! registration in the year and month the BIN encodes, names in Russian and
//! Kazakh, an address in a real region and district, and a head and founders who are
//! persons of the population.

use shep_proto::registry::v1::{Address, Founder, LegalEntity, founder};
use time::{Date, Duration, Month};

use super::person::{address_in, draw_district, draw_region};
use super::{AS_OF, Directory, Population, add_years, full_name};
use crate::hash::{Draw, Purpose};
use crate::ident::{BinInfo, make_bin};
use crate::reference::{
    self, ACTIVITIES, BRANCH, COOPERATIVE, District, FARM, FOREIGN_COMPANIES,
    JOINT_ENTREPRENEURSHIP, JSC, LIQUIDATED, LIQUIDATING, LLP, LegalForm, NAME_STEMS,
    NAME_SUFFIXES, NON_COMMERCIAL_JSC, PUBLIC_ASSOCIATION, REGISTERED, REPRESENTATIVE_OFFICE,
    STATE_INSTITUTION, STATE_SPHERES, value,
};

/// What an entity's name is made of.
#[derive(Debug, Clone)]
enum Naming {
    /// A brand, e.g. «Нур Логистик».
    Brand(String),
    /// A state institution: an area of remit in its district or city.
    State {
        sphere_ru: &'static str,
        sphere_kk: &'static str,
    },
    /// A branch or office of a resident entity with a brand.
    Unit(String),
    /// A branch or office of a foreign company.
    Foreign(&'static str),
    /// Named after its head (farms, joint entrepreneurship).
    Head,
}

/// The parts of an entity that depend on its BIN alone.
#[derive(Debug, Clone)]
pub struct EntityCore {
    bin: String,
    registration_date: Option<Date>,
    form: LegalForm,
    district: District,
    address: Address,
    status: reference::Entry,
    liquidation_date: Option<Date>,
    naming: Naming,
    activity: reference::Entry,
    draw: Draw,
}

fn registration(info: &BinInfo, draw: &mut Draw) -> Option<Date> {
    let year = match info.year {
        0..=25 => 2000 + i32::from(info.year),
        90..=99 => 1900 + i32::from(info.year),
        // No BIN was issued for these years (before 1990, or after AS_OF).
        _ => return None,
    };
    let month = Month::try_from(info.month).ok()?;
    let days = time::util::days_in_month(month, year);
    Date::from_calendar_date(year, month, draw.range(1, i64::from(days)) as u8).ok()
}

fn brand(draw: &mut Draw) -> String {
    format!("{} {}", draw.pick(NAME_STEMS), draw.pick(NAME_SUFFIXES))
}

/// Draws the BIN-only parts, always in the same order.
pub(super) fn core(seed: u64, bin: &str, info: &BinInfo) -> EntityCore {
    let mut draw = Draw::new(seed, Purpose::Entity, bin);
    let registration_date = registration(info, &mut draw);
    let form = match (info.entity_type, info.unit_type) {
        (_, 3) => FARM,
        (6, _) => JOINT_ENTREPRENEURSHIP,
        (_, 1) => BRANCH,
        (_, 2) => REPRESENTATIVE_OFFICE,
        (5, _) => BRANCH,
        _ => *draw.weighted(&[
            (780, LLP),
            (40, JSC),
            (10, NON_COMMERCIAL_JSC),
            (80, STATE_INSTITUTION),
            (60, PUBLIC_ASSOCIATION),
            (30, COOPERATIVE),
        ]),
    };
    let region = draw_region(&mut draw);
    let district = draw_district(region, &mut draw);
    let address = address_in(region, &district, &mut draw, true);
    let status = *draw.weighted(&[(920, REGISTERED), (50, LIQUIDATED), (30, LIQUIDATING)]);
    let liquidation_date = (status.0 == LIQUIDATED.0)
        .then(|| {
            let registered = registration_date?;
            let span = (AS_OF - registered).whole_days();
            (span > 2).then(|| registered + Duration::days(draw.range(1, span - 1)))
        })
        .flatten();
    let naming = if info.entity_type == 5 {
        let company = *draw.pick(FOREIGN_COMPANIES);
        Naming::Foreign(company)
    } else if form.entry.0 == STATE_INSTITUTION.entry.0 {
        let (sphere_ru, sphere_kk) = *draw.pick(STATE_SPHERES);
        Naming::State {
            sphere_ru,
            sphere_kk,
        }
    } else if form.entry.0 == BRANCH.entry.0 || form.entry.0 == REPRESENTATIVE_OFFICE.entry.0 {
        Naming::Unit(brand(&mut draw))
    } else if form.entry.0 == FARM.entry.0 || form.entry.0 == JOINT_ENTREPRENEURSHIP.entry.0 {
        Naming::Head
    } else {
        Naming::Brand(brand(&mut draw))
    };
    let activity = match &naming {
        Naming::State { sphere_ru, .. } if *sphere_ru == "образования" => ACTIVITIES[8],
        Naming::State { .. } => ACTIVITIES[7],
        _ if form.entry.0 == PUBLIC_ASSOCIATION.entry.0 => ACTIVITIES[9],
        _ if form.entry.0 == FARM.entry.0 => ACTIVITIES[4],
        _ => *draw.pick(&[
            ACTIVITIES[0],
            ACTIVITIES[1],
            ACTIVITIES[2],
            ACTIVITIES[3],
            ACTIVITIES[5],
            ACTIVITIES[6],
        ]),
    };
    EntityCore {
        bin: bin.to_owned(),
        registration_date,
        form,
        district,
        address,
        status,
        liquidation_date,
        naming,
        activity,
        draw,
    }
}

impl EntityCore {
    /// Whether the population holds this entity: registered from 1990 to
    /// before [`AS_OF`].
    pub fn in_population(&self) -> bool {
        self.registration_date.is_some_and(|date| date < AS_OF)
    }

    /// Whether the entity is registered (not liquidated or liquidating).
    pub fn is_registered(&self) -> bool {
        self.status.0 == REGISTERED.0
    }

    /// Names: (full ru, full kk, short ru, short kk); `head_surname` for the
    /// forms named after their head.
    fn names(&self, head_surname: &str) -> (String, String, String, String) {
        let form = &self.form;
        let district = &self.district;
        match &self.naming {
            Naming::Brand(brand) => (
                format!("{} «{brand}»", form.entry.1),
                format!("«{brand}» {}", form.full_kk),
                format!("{} «{brand}»", form.short_ru),
                format!("«{brand}» {}", form.short_kk),
            ),
            Naming::State {
                sphere_ru,
                sphere_kk,
            } => {
                let ru = format!("«Отдел {sphere_ru} {}»", district.of_ru());
                let kk = format!("«{} {sphere_kk} бөлімі»", district.of_kk());
                (
                    format!("{} {ru}", form.entry.1),
                    format!("{kk} {}", form.full_kk),
                    format!("{} {ru}", form.short_ru),
                    format!("{kk} {}", form.short_kk),
                )
            }
            Naming::Unit(brand) => {
                let ru = format!(
                    "{} ТОО «{brand}» в {}",
                    form.entry.1,
                    district.seat.locality_ru()
                );
                let kk = format!("«{brand}» ЖШС {} {}", district.seat.in_kk(), form.full_kk);
                (ru.clone(), kk.clone(), ru, kk)
            }
            Naming::Foreign(company) => {
                let ru = format!(
                    "{} компании «{company}» в Республике Казахстан",
                    form.entry.1
                );
                let kk = format!(
                    "«{company}» компаниясының Қазақстан Республикасындағы {}",
                    form.full_kk
                );
                (ru.clone(), kk.clone(), ru, kk)
            }
            Naming::Head => (
                format!("{} «{head_surname}»", form.entry.1),
                format!("«{head_surname}» {}", form.full_kk),
                format!("{} «{head_surname}»", form.short_ru),
                format!("«{head_surname}» {}", form.short_kk),
            ),
        }
    }

    /// The short Russian name, unless the entity is named after its head.
    pub fn short_name_ru(&self) -> Option<String> {
        (!matches!(self.naming, Naming::Head)).then(|| self.names("").2)
    }

    fn head_position(&self) -> &'static str {
        match self.form.entry.0 {
            "10" => "Генеральный директор",
            "11" => "Председатель правления",
            "30" => "Руководитель",
            "40" => "Председатель",
            "60" => "Директор филиала",
            "70" => "Глава представительства",
            "80" => "Уполномоченный представитель",
            "90" => "Глава крестьянского хозяйства",
            _ => "Директор",
        }
    }
}

/// Draws founders: persons (and, for an LLP, sometimes an entity registered
/// before this one) with shares adding up to 100 % where the form records them.
fn founders(
    population: &Population,
    core: &mut EntityCore,
    directory: &dyn Directory,
    head: Option<&shep_proto::registry::v1::Person>,
    adult_by: Date,
) -> Vec<Founder> {
    let form = core.form.entry.0;
    let (count, with_shares) = match form {
        "20" => (core.draw.range(1, 3), true),
        "40" => (core.draw.range(1, 3), false),
        "50" => (core.draw.range(2, 4), true),
        "80" | "90" => (core.draw.range(1, 2), false),
        _ => return Vec::new(),
    };
    let mut people: Vec<Founder> = Vec::new();
    if let Some(head) = head
        && (matches!(form, "80" | "90") || core.draw.chance(500))
    {
        people.push(Founder {
            id: Some(founder::Id::Iin(head.iin.clone())),
            name: full_name(head),
            share_percent: 0.0,
        });
    }
    let except = head.map(|head| head.iin.clone()).unwrap_or_default();
    while people.len() < count as usize {
        let entity_founder = form == "20" && core.draw.chance(150);
        let found = if entity_founder {
            founding_entity(core, directory)
        } else {
            population
                .pick_person(&mut core.draw, directory, adult_by, &except)
                .map(|person| Founder {
                    id: Some(founder::Id::Iin(person.iin.clone())),
                    name: full_name(&person),
                    share_percent: 0.0,
                })
        };
        match found {
            Some(founder) if !people.iter().any(|existing| existing.id == founder.id) => {
                people.push(founder);
            }
            Some(_) => {}
            // Nobody to be found: a founder fewer.
            None => break,
        }
    }
    if with_shares && !people.is_empty() {
        let mut left = 100u32;
        let last = people.len() - 1;
        for (index, founder) in people.iter_mut().enumerate() {
            let share = if index == last {
                left
            } else {
                let most = left - (last - index) as u32;
                core.draw.range(1, i64::from(most.min(70))) as u32
            };
            left -= share;
            founder.share_percent = f64::from(share);
        }
    }
    people
}

/// An LLP registered before `core` that can found it.
fn founding_entity(core: &mut EntityCore, directory: &dyn Directory) -> Option<Founder> {
    let registered = core.registration_date?;
    if registered.year() < 1997 {
        return None;
    }
    for _ in 0..8 {
        let year = core.draw.range(1995, i64::from(registered.year()) - 1);
        let month = core.draw.range(1, 12) as u8;
        let serial = core.draw.below(100_000) as u32;
        let Some(bin) = make_bin((year % 100) as u8, month, 4, 0, serial) else {
            continue;
        };
        if let Some(name) = directory.entity_name(&bin) {
            return Some(Founder {
                id: Some(founder::Id::Bin(bin)),
                name,
                share_percent: 0.0,
            });
        }
    }
    None
}

/// Completes an entity: head, founders, names.
pub(super) fn complete(
    population: &Population,
    mut core: EntityCore,
    directory: &dyn Directory,
) -> LegalEntity {
    let registered = core.registration_date;
    // The head was an adult when the entity was registered (and is one now).
    let adult_by = add_years(registered.unwrap_or(AS_OF).min(AS_OF), -18);
    let head = population.pick_person(&mut core.draw, directory, adult_by, "");
    let founders = founders(population, &mut core, directory, head.as_ref(), adult_by);
    let head_surname = head
        .as_ref()
        .map(|head| head.surname.clone())
        .unwrap_or_default();
    let (full_name_ru, full_name_kk, short_name_ru, short_name_kk) = core.names(&head_surname);
    LegalEntity {
        bin: core.bin.clone(),
        full_name_ru,
        full_name_kk,
        short_name_ru,
        registration_date: registered.map(|date| date.to_string()).unwrap_or_default(),
        reg_status: Some(value(&core.status)),
        legal_form: Some(value(&core.form.entry)),
        address: Some(core.address.clone()),
        head_iin: head
            .as_ref()
            .map(|head| head.iin.clone())
            .unwrap_or_default(),
        founders,
        short_name_kk,
        head_name: head.as_ref().map(full_name).unwrap_or_default(),
        head_position: head
            .as_ref()
            .map(|_| core.head_position().to_owned())
            .unwrap_or_default(),
        activity: Some(value(&core.activity)),
        liquidation_date: core
            .liquidation_date
            .map(|date| date.to_string())
            .unwrap_or_default(),
    }
}
