//! Reference books: the dictionary values (`{code, name_ru, name_kk}`) the
//! registries answer with, and the regions synthetic addresses are drawn from.
//!
//! Region prefixes are the real first two digits of КАТО codes; the codes of
//! regional centres follow the КАТО pattern (`<region>1010000`, or
//! `<region>1000000` for the three cities of republican significance). The
//! regions the seed regulations name go down to districts and cities of
//! regional significance (`reference/districts.rs` says which codes are real); the
//! others stay at their centre. The codes of nationalities, legal forms and
//! statuses are the simulator's own: the real reference books are not public.

use shep_proto::registry::v1::DictionaryValue;

mod districts;
mod legal;

pub use legal::*;

/// A dictionary entry: code, Russian name, Kazakh name.
pub type Entry = (&'static str, &'static str, &'static str);

/// Builds a dictionary value.
pub fn dict(code: &str, name_ru: &str, name_kk: &str) -> DictionaryValue {
    DictionaryValue {
        code: code.to_owned(),
        name_ru: name_ru.to_owned(),
        name_kk: name_kk.to_owned(),
    }
}

/// The dictionary value of an entry.
pub fn value(entry: &Entry) -> DictionaryValue {
    dict(entry.0, entry.1, entry.2)
}

/// Finds `code` in a reference book.
pub fn find(book: &[Entry], code: &str) -> Option<DictionaryValue> {
    book.iter().find(|entry| entry.0 == code).map(value)
}

pub const KAZAKHSTAN: Entry = ("398", "Казахстан", "Қазақстан");

/// Countries (ISO 3166 numeric codes), for citizenship and birth places.
pub const COUNTRIES: &[Entry] = &[
    KAZAKHSTAN,
    ("643", "Россия", "Ресей"),
    ("860", "Узбекистан", "Өзбекстан"),
    ("417", "Кыргызстан", "Қырғызстан"),
    ("156", "Китай", "Қытай"),
    ("276", "Германия", "Германия"),
];

pub const MALE: Entry = ("1", "Мужской", "Ер");
pub const FEMALE: Entry = ("2", "Женский", "Әйел");
pub const GENDERS: &[Entry] = &[MALE, FEMALE];

pub const ALIVE: Entry = ("0", "Нормальный", "Қалыпты");
pub const DECEASED: Entry = ("1", "Умерший", "Қайтыс болған");
pub const LIFE_STATUSES: &[Entry] = &[ALIVE, DECEASED];

pub const NATIONALITIES: &[Entry] = &[
    ("005", "Казах", "Қазақ"),
    ("001", "Русский", "Орыс"),
    ("007", "Украинец", "Украин"),
    ("009", "Узбек", "Өзбек"),
    ("011", "Уйгур", "Ұйғыр"),
    ("013", "Татарин", "Татар"),
    ("015", "Немец", "Неміс"),
    ("017", "Кореец", "Кәріс"),
];

pub const ID_CARD: Entry = ("002", "УДОСТОВЕРЕНИЕ РК", "ҚР ЖЕКЕ КУӘЛІГІ");
pub const PASSPORT: Entry = ("001", "ПАСПОРТ РК", "ҚР ПАСПОРТЫ");
pub const BIRTH_CERTIFICATE: Entry = ("003", "СВИДЕТЕЛЬСТВО О РОЖДЕНИИ", "ТУУ ТУРАЛЫ КУӘЛІК");
pub const DOCUMENT_TYPES: &[Entry] = &[ID_CARD, PASSPORT, BIRTH_CERTIFICATE];

pub const MVD: Entry = ("002", "МВД РК", "ҚР ІІМ");
pub const MJ: Entry = ("001", "МЮ РК", "ҚР ӘМ");
pub const ISSUERS: &[Entry] = &[MVD, MJ];

pub const DOCUMENT_VALID: Entry = ("00", "ДОКУМЕНТ ДЕЙСТВИТЕЛЕН", "ҚҰЖАТ ЖАРАМДЫ");
pub const DOCUMENT_EXPIRED: Entry = ("01", "СРОК ДЕЙСТВИЯ ИСТЕК", "ҚҰЖАТТЫҢ МЕРЗІМІ ӨТКЕН");
pub const DOCUMENT_LOST: Entry = ("02", "ДОКУМЕНТ УТЕРЯН", "ҚҰЖАТ ЖОҒАЛҒАН");
pub const DOCUMENT_INVALID: Entry = ("03", "ДОКУМЕНТ НЕДЕЙСТВИТЕЛЕН", "ҚҰЖАТ ЖАРАМСЫЗ");
pub const DOCUMENT_STATUSES: &[Entry] = &[
    DOCUMENT_VALID,
    DOCUMENT_EXPIRED,
    DOCUMENT_LOST,
    DOCUMENT_INVALID,
];

pub const REGISTERED: Entry = ("1", "Зарегистрирован", "Тіркелген");
pub const LIQUIDATED: Entry = ("2", "Ликвидирован", "Таратылған");
pub const LIQUIDATING: Entry = ("3", "В стадии ликвидации", "Тарату сатысында");
pub const REG_STATUSES: &[Entry] = &[REGISTERED, LIQUIDATED, LIQUIDATING];

/// A region: КАТО prefix, names (ru, kk), its centre (КАТО, name ru, name kk),
/// its weight in the population (thousands of residents, roughly), and its
/// districts and cities of regional significance (empty for a region kept at
/// centre level).
#[derive(Debug, Clone, Copy)]
pub struct Region {
    pub prefix: &'static str,
    pub name_ru: &'static str,
    pub name_kk: &'static str,
    pub centre_kato: &'static str,
    pub centre_ru: &'static str,
    pub centre_kk: &'static str,
    pub weight: u32,
    pub districts: &'static [District],
}

const fn region(
    prefix: &'static str,
    name_ru: &'static str,
    name_kk: &'static str,
    centre: (&'static str, &'static str, &'static str),
    weight: u32,
) -> Region {
    Region {
        prefix,
        name_ru,
        name_kk,
        centre_kato: centre.0,
        centre_ru: centre.1,
        centre_kk: centre.2,
        weight,
        districts: &[],
    }
}

impl Region {
    /// The same region, gone down to `districts`.
    const fn with_districts(self, districts: &'static [District]) -> Self {
        Self { districts, ..self }
    }

    /// The regional centre as a district of its own: the whole region, for a
    /// region kept at centre level.
    pub fn centre(&self) -> District {
        District {
            kato: self.centre_kato,
            names: None,
            seat: Seat {
                kato: self.centre_kato,
                kind: SeatKind::Town,
                name_ru: self.centre_ru,
                name_kk: self.centre_kk,
            },
            weight: self.weight,
        }
    }
}

/// What a district's seat is: it decides the abbreviation before its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeatKind {
    /// A city or town: «г.», «қ.» (қала).
    Town,
    /// A village: «с.», «а.» (ауыл).
    Village,
    /// A settlement (посёлок): «п.», «к.» (кент).
    Settlement,
}

/// A settlement that is the seat of a district (or a city of regional
/// significance itself): its 9-digit КАТО code, kind and bare names (ru, kk).
#[derive(Debug, Clone, Copy)]
pub struct Seat {
    pub kato: &'static str,
    pub kind: SeatKind,
    pub name_ru: &'static str,
    pub name_kk: &'static str,
}

impl Seat {
    /// Kazakh word for the kind, in its possessive form («Явленка ауылы»).
    fn word_kk(&self) -> &'static str {
        match self.kind {
            SeatKind::Town => "қаласы",
            SeatKind::Village => "ауылы",
            SeatKind::Settlement => "кенті",
        }
    }

    /// The name as an address writes it: «с. Явленка», «г. Тайынша».
    pub fn locality_ru(&self) -> String {
        let abbreviation = match self.kind {
            SeatKind::Town => "г.",
            SeatKind::Village => "с.",
            SeatKind::Settlement => "п.",
        };
        format!("{abbreviation} {}", self.name_ru)
    }

    /// The Kazakh name with its abbreviation: «Явленка а.», «Тайынша қ.».
    pub fn locality_kk(&self) -> String {
        let abbreviation = match self.kind {
            SeatKind::Town => "қ.",
            SeatKind::Village => "а.",
            SeatKind::Settlement => "к.",
        };
        format!("{} {abbreviation}", self.name_kk)
    }

    /// Kazakh genitive: «Явленка ауылының».
    pub fn of_kk(&self) -> String {
        format!("{} {}ның", self.name_kk, self.word_kk())
    }

    /// Kazakh locative adjective: «Явленка ауылындағы», «Ботақара кентіндегі».
    pub fn in_kk(&self) -> String {
        let word = self.word_kk();
        let ending = if self.kind == SeatKind::Settlement {
            "ндегі"
        } else {
            "ндағы"
        };
        format!("{} {word}{ending}", self.name_kk)
    }
}

/// A district, or a city of regional significance (named after its seat):
/// its КАТО code (`AABB00000`, see `reference/districts.rs`), names, seat, and weight in
/// its region's population (thousands of residents, roughly).
#[derive(Debug, Clone, Copy)]
pub struct District {
    pub kato: &'static str,
    /// Name ru, name kk and the Russian genitive of a district; `None` for a
    /// city, whose names are its seat's.
    names: Option<(&'static str, &'static str, &'static str)>,
    pub seat: Seat,
    pub weight: u32,
}

/// A city of regional significance: the district `kato` whose seat `seat_kato`
/// is the city, with its names (ru, kk).
const fn city(
    kato: &'static str,
    seat_kato: &'static str,
    names: (&'static str, &'static str),
    weight: u32,
) -> District {
    District {
        kato,
        names: None,
        seat: Seat {
            kato: seat_kato,
            kind: SeatKind::Town,
            name_ru: names.0,
            name_kk: names.1,
        },
        weight,
    }
}

/// A district: (КАТО, name ru, name kk), its Russian genitive, its seat
/// (КАТО, kind, name ru, name kk), and its weight.
const fn district(
    names: (&'static str, &'static str, &'static str),
    genitive_ru: &'static str,
    seat: (&'static str, SeatKind, &'static str, &'static str),
    weight: u32,
) -> District {
    District {
        kato: names.0,
        names: Some((names.1, names.2, genitive_ru)),
        seat: Seat {
            kato: seat.0,
            kind: seat.1,
            name_ru: seat.2,
            name_kk: seat.3,
        },
        weight,
    }
}

impl District {
    /// Whether it is a city of regional significance.
    pub fn is_city(&self) -> bool {
        self.names.is_none()
    }

    /// The КАТО prefix every settlement of the district starts with: the
    /// region's two digits and the district's two.
    pub fn prefix(&self) -> &'static str {
        &self.kato[..4]
    }

    /// «Есильский район», «г. Петропавловск».
    pub fn name_ru(&self) -> String {
        match self.names {
            Some((name_ru, ..)) => name_ru.to_owned(),
            None => self.seat.locality_ru(),
        }
    }

    /// «Есіл ауданы», «Петропавл қ.».
    pub fn name_kk(&self) -> String {
        match self.names {
            Some((_, name_kk, _)) => name_kk.to_owned(),
            None => self.seat.locality_kk(),
        }
    }

    /// Russian genitive, as in an institution's name: «Отдел образования
    /// Есильского района», «… г. Петропавловск».
    pub fn of_ru(&self) -> String {
        match self.names {
            Some((.., genitive_ru)) => genitive_ru.to_owned(),
            None => self.seat.locality_ru(),
        }
    }

    /// Kazakh genitive: «Есіл ауданының», «Петропавл қаласының».
    pub fn of_kk(&self) -> String {
        match self.names {
            Some((_, name_kk, _)) => format!("{name_kk}ның"),
            None => self.seat.of_kk(),
        }
    }

    /// The dictionary value an address's `district` carries.
    pub fn value(&self) -> DictionaryValue {
        dict(self.kato, &self.name_ru(), &self.name_kk())
    }
}

pub const REGIONS: &[Region] = &[
    region(
        "11",
        "Акмолинская область",
        "Ақмола облысы",
        ("111010000", "Кокшетау", "Көкшетау"),
        790,
    ),
    region(
        "15",
        "Актюбинская область",
        "Ақтөбе облысы",
        ("151010000", "Актобе", "Ақтөбе"),
        920,
    ),
    region(
        "19",
        "Алматинская область",
        "Алматы облысы",
        ("191010000", "Конаев", "Қонаев"),
        1_500,
    ),
    region(
        "23",
        "Атырауская область",
        "Атырау облысы",
        ("231010000", "Атырау", "Атырау"),
        700,
    ),
    region(
        "27",
        "Западно-Казахстанская область",
        "Батыс Қазақстан облысы",
        ("271010000", "Уральск", "Орал"),
        690,
    ),
    region(
        "31",
        "Жамбылская область",
        "Жамбыл облысы",
        ("311010000", "Тараз", "Тараз"),
        1_220,
    ),
    region(
        "35",
        "Карагандинская область",
        "Қарағанды облысы",
        ("351010000", "Караганда", "Қарағанды"),
        1_130,
    )
    .with_districts(districts::KARAGANDA),
    region(
        "39",
        "Костанайская область",
        "Қостанай облысы",
        ("391010000", "Костанай", "Қостанай"),
        830,
    ),
    region(
        "43",
        "Кызылординская область",
        "Қызылорда облысы",
        ("431010000", "Кызылорда", "Қызылорда"),
        830,
    ),
    region(
        "47",
        "Мангистауская область",
        "Маңғыстау облысы",
        ("471010000", "Актау", "Ақтау"),
        770,
    )
    .with_districts(districts::MANGYSTAU),
    region(
        "55",
        "Павлодарская область",
        "Павлодар облысы",
        ("551010000", "Павлодар", "Павлодар"),
        750,
    ),
    region(
        "59",
        "Северо-Казахстанская область",
        "Солтүстік Қазақстан облысы",
        ("591010000", "Петропавловск", "Петропавл"),
        530,
    )
    .with_districts(districts::NORTH_KAZAKHSTAN),
    region(
        "63",
        "Восточно-Казахстанская область",
        "Шығыс Қазақстан облысы",
        ("631010000", "Усть-Каменогорск", "Өскемен"),
        720,
    ),
    region(
        "71",
        "г. Астана",
        "Астана қ.",
        ("711000000", "Астана", "Астана"),
        1_420,
    ),
    region(
        "75",
        "г. Алматы",
        "Алматы қ.",
        ("751000000", "Алматы", "Алматы"),
        2_230,
    ),
    region(
        "79",
        "г. Шымкент",
        "Шымкент қ.",
        ("791000000", "Шымкент", "Шымкент"),
        1_220,
    ),
];

/// The region whose prefix starts `kato`, if known.
pub fn region_of(kato: &str) -> Option<&'static Region> {
    REGIONS
        .iter()
        .find(|region| kato.starts_with(region.prefix))
}

/// The district or city of regional significance `kato` is in: by its first
/// four digits in a region gone down to districts, or the centre of a region
/// kept at centre level when `kato` is the centre's code.
pub fn district_of(kato: &str) -> Option<(&'static Region, District)> {
    let region = region_of(kato)?;
    if region.districts.is_empty() {
        return (kato == region.centre_kato).then(|| (region, region.centre()));
    }
    region
        .districts
        .iter()
        .find(|district| kato.starts_with(district.prefix()))
        .map(|district| (region, *district))
}

/// The region's dictionary value.
pub fn region_value(region: &Region) -> DictionaryValue {
    dict(region.prefix, region.name_ru, region.name_kk)
}

/// Streets, shared by every city (most Kazakh cities have them).
pub const STREETS: &[&str] = &[
    "ул. Абая",
    "ул. Ауэзова",
    "ул. Толе би",
    "ул. Казыбек би",
    "ул. Айтеке би",
    "ул. Жамбыла",
    "ул. Сатпаева",
    "ул. Байтурсынова",
    "ул. Кунаева",
    "ул. Пушкина",
    "ул. Гагарина",
    "ул. Шевченко",
    "ул. Муканова",
    "ул. Богенбай батыра",
    "ул. Кенесары",
    "ул. Мира",
    "ул. Достык",
    "ул. Желтоксан",
    "пр. Республики",
    "пр. Независимости",
    "мкр. Самал",
    "мкр. Восток",
    "мкр. Юго-Восток",
    "мкр. Жастар",
];

/// Areas of a state institution's remit: (ru genitive, kk).
pub const STATE_SPHERES: &[(&str, &str)] = &[
    ("образования", "білім"),
    (
        "занятости и социальных программ",
        "жұмыспен қамту және әлеуметтік бағдарламалар",
    ),
    (
        "архитектуры и градостроительства",
        "сәулет және қала құрылысы",
    ),
    (
        "культуры и развития языков",
        "мәдениет және тілдерді дамыту",
    ),
    ("физической культуры и спорта", "дене шынықтыру және спорт"),
    (
        "жилищно-коммунального хозяйства",
        "тұрғын үй-коммуналдық шаруашылығы",
    ),
];

/// Parts of company names (transliterated, the same in both languages).
pub const NAME_STEMS: &[&str] = &[
    "Астана",
    "Алтын",
    "Нур",
    "Сарыарка",
    "Жулдыз",
    "Казына",
    "Береке",
    "Самал",
    "Атамекен",
    "Тулпар",
    "Дала",
    "Каспий",
    "Алатау",
    "Кокше",
    "Есиль",
    "Евразия",
    "Тумар",
    "Бастау",
    "Шапагат",
    "Керуен",
];
pub const NAME_SUFFIXES: &[&str] = &[
    "Трейд",
    "Строй",
    "Сервис",
    "Агро",
    "Логистик",
    "Энерго",
    "Мунай",
    "Фарм",
    "Консалт",
    "Инвест",
    "Тех",
    "Медиа",
    "Транс",
    "Групп",
    "Продукт",
];

/// Foreign companies behind non-resident branches and offices.
pub const FOREIGN_COMPANIES: &[&str] = &[
    "Caspian Drilling Ltd.",
    "Silk Road Logistics GmbH",
    "Eurasia Mining B.V.",
    "Steppe Energy Inc.",
    "Altai Trading LLC",
    "Nomad Software OÜ",
];

/// Services a synthetic power of attorney may be limited to: the services of
/// the seed regulations (the default routing table's applications).
pub const SERVICES: &[&str] = &[
    "guardianship-certificate-esil",
    "targeted-social-assistance-tayynsha",
    "foster-care-payment-mangystau",
    "adoption-payment-mangystau",
    "foster-care-transfer-mangystau",
    "adopter-registration-mangystau",
    "guardianship-certificate-karaganda",
    "archive-certificate-mangystau",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_have_two_digit_prefixes_and_matching_centres() {
        for region in REGIONS {
            assert_eq!(region.prefix.len(), 2);
            assert_eq!(region.centre_kato.len(), 9);
            assert!(region.centre_kato.starts_with(region.prefix));
            assert_eq!(region_of(region.centre_kato).unwrap().prefix, region.prefix);
        }
        assert!(region_of("991000000").is_none());
    }

    #[test]
    fn districts_nest_in_their_regions_and_seats_in_their_districts() {
        let mut num_districts = 0;
        for region in REGIONS {
            let mut prefixes = Vec::new();
            for district in region.districts {
                num_districts += 1;
                assert_eq!(district.kato.len(), 9, "{}", district.kato);
                assert!(
                    district.kato.starts_with(region.prefix),
                    "{}",
                    district.kato
                );
                assert!(district.kato.ends_with("00000"), "{}", district.kato);
                assert_eq!(district.seat.kato.len(), 9);
                assert!(district.seat.kato.starts_with(district.prefix()));
                assert!(district.weight > 0);
                prefixes.push(district.prefix());
                for kato in [district.kato, district.seat.kato] {
                    let (found_region, found) = district_of(kato).unwrap();
                    assert_eq!(found_region.prefix, region.prefix);
                    assert_eq!(found.kato, district.kato);
                }
            }
            let num_prefixes = prefixes.len();
            prefixes.sort_unstable();
            prefixes.dedup();
            assert_eq!(prefixes.len(), num_prefixes, "{}", region.name_ru);
            // The centre is one of the districts' seats, or the only place.
            let (_, centre) = district_of(region.centre_kato).unwrap();
            assert_eq!(centre.seat.kato, region.centre_kato);
            assert_eq!(centre.seat.name_ru, region.centre_ru);
        }
        assert!(num_districts >= 30, "{num_districts}");
        // A settlement of a region kept at centre level has no district here.
        assert!(district_of("751010000").is_none());
    }

    #[test]
    fn districts_and_seats_are_named_in_both_languages() {
        let (_, esil) = district_of("594230100").unwrap();
        assert_eq!(
            esil.value(),
            dict("594200000", "Есильский район", "Есіл ауданы")
        );
        assert_eq!(esil.seat.locality_ru(), "с. Явленка");
        assert_eq!(esil.of_ru(), "Есильского района");
        assert_eq!(esil.of_kk(), "Есіл ауданының");
        let (_, tayynsha) = district_of("596020100").unwrap();
        assert_eq!(tayynsha.seat.locality_ru(), "г. Тайынша");
        assert_eq!(tayynsha.prefix(), "5960");
        let (_, aktau) = district_of("471010000").unwrap();
        assert!(aktau.is_city());
        assert_eq!(aktau.value(), dict("471000000", "г. Актау", "Ақтау қ."));
        assert_eq!(aktau.of_kk(), "Ақтау қаласының");
        assert_eq!(aktau.seat.in_kk(), "Ақтау қаласындағы");
        // A region kept at centre level: the centre, as before districts.
        let (_, astana) = district_of("711000000").unwrap();
        assert_eq!(astana.value(), dict("711000000", "г. Астана", "Астана қ."));
    }

    #[test]
    fn codes_are_unique_per_book() {
        let books: [Vec<&str>; 6] = [
            NATIONALITIES.iter().map(|entry| entry.0).collect(),
            COUNTRIES.iter().map(|entry| entry.0).collect(),
            DOCUMENT_STATUSES.iter().map(|entry| entry.0).collect(),
            legal_form_entries().map(|entry| entry.0).collect(),
            ACTIVITIES.iter().map(|entry| entry.0).collect(),
            REGIONS.iter().map(|region| region.prefix).collect(),
        ];
        for book in books {
            let mut sorted = book.clone();
            sorted.sort_unstable();
            sorted.dedup();
            assert_eq!(sorted.len(), book.len(), "{book:?}");
        }
    }
}
