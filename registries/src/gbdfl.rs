//! ГБД ФЛ: the state database of individuals, answering by IIN. Answers come
//! from the synthetic population with the fixtures on top (the built-in
//! fixtures hold the eight demo persons of the README).

use std::sync::Arc;

use shep_proto::registry::v1::{LookupRequest, LookupResponse, Person};

use crate::data::{RegistryData, RegistryKind};
use crate::{Registry, RegistryError};

/// ГБД ФЛ over shared registry data.
#[derive(Debug, Clone)]
pub struct PersonRegistry {
    data: Arc<RegistryData>,
}

impl PersonRegistry {
    /// ГБД ФЛ answering from `data`.
    pub fn new(data: Arc<RegistryData>) -> Self {
        Self { data }
    }

    /// ГБД ФЛ on the default population with the built-in fixtures.
    pub fn builtin() -> Self {
        Self::new(Arc::new(RegistryData::builtin()))
    }

    /// The person with this IIN, if known (not audited).
    pub fn get(&self, iin: &str) -> Option<Person> {
        self.data.person(iin)
    }

    /// The data it answers from.
    pub fn data(&self) -> &Arc<RegistryData> {
        &self.data
    }
}

impl Registry for PersonRegistry {
    fn lookup(&self, request: &LookupRequest) -> Result<LookupResponse, RegistryError> {
        self.data.lookup(RegistryKind::Persons, request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shep_proto::registry::v1::lookup_request::Key;
    use shep_proto::registry::v1::lookup_response::Record;

    use crate::ident::{Sex, Strictness, parse_iin};

    /// The eight persons as the first release built them in code: the
    /// built-in fixtures must keep answering exactly this, but for the
    /// districts now filled in and the demo applicant's move.
    mod before {
        use shep_proto::registry::v1::{Address, DictionaryValue, IdentityDocument, Person};

        use crate::ident::{Sex, Strictness, parse_iin};

        /// A built-in person: IIN, surname, name, patronymic, КАТО of the registered
        /// address, city, street and building.
        pub(super) type Row = (
            &'static str,
            &'static str,
            &'static str,
            &'static str,
            &'static str,
            &'static str,
            &'static str,
        );

        /// The built-in persons. Every IIN passes the strict check (a unit test holds
        /// this); regions are chosen so that the default routing table's region rules
        /// have someone to route.
        pub(super) const PERSONS: &[Row] = &[
            // Moved from Петропавловск to Есильский район, the district the
            // demo service (guardianship-certificate-esil) serves.
            (
                "850315301235",
                "Серикбаев",
                "Нурлан",
                "Маратович",
                "594230100",
                "с. Явленка",
                "ул. Ленина, 31",
            ),
            (
                "920704404563",
                "Ахметова",
                "Айгерим",
                "Болатовна",
                "591010000",
                "Петропавловск",
                "ул. Букетова, 35",
            ),
            (
                "780521307893",
                "Иванов",
                "Сергей",
                "Петрович",
                "351010000",
                "Караганда",
                "пр. Бухар-Жырау, 48",
            ),
            (
                "010910512342",
                "Жумабеков",
                "Ерлан",
                "Асхатович",
                "471010000",
                "Актау",
                "мкр. 14, дом 7",
            ),
            (
                "670228423458",
                "Ким",
                "Елена",
                "Викторовна",
                "471010000",
                "Актау",
                "мкр. 5, дом 21",
            ),
            (
                "881111334568",
                "Оспанов",
                "Даурен",
                "Кайратович",
                "711000000",
                "Астана",
                "пр. Мангилик Ел, 8",
            ),
            (
                "950606445672",
                "Тулегенова",
                "Динара",
                "Сериковна",
                "751000000",
                "Алматы",
                "ул. Абая, 150",
            ),
            (
                "731203356787",
                "Бекмуханов",
                "Арман",
                "Ержанович",
                "351010000",
                "Караганда",
                "ул. Ерубаева, 20",
            ),
        ];

        /// КАТО region prefixes and their names (ru, kk).
        const REGIONS: &[(&str, &str, &str)] = &[
            (
                "59",
                "Северо-Казахстанская область",
                "Солтүстік Қазақстан облысы",
            ),
            ("35", "Карагандинская область", "Қарағанды облысы"),
            ("47", "Мангистауская область", "Маңғыстау облысы"),
            ("71", "г. Астана", "Астана қ."),
            ("75", "г. Алматы", "Алматы қ."),
        ];

        /// Districts (or cities of regional significance) of the built-in
        /// persons' КАТО codes: (КАТО, district code, name ru, name kk). The
        /// first release left the district empty.
        const DISTRICTS: &[(&str, &str, &str, &str)] = &[
            ("594230100", "594200000", "Есильский район", "Есіл ауданы"),
            ("591010000", "591000000", "г. Петропавловск", "Петропавл қ."),
            ("351010000", "351000000", "г. Караганда", "Қарағанды қ."),
            ("471010000", "471000000", "г. Актау", "Ақтау қ."),
            ("711000000", "711000000", "г. Астана", "Астана қ."),
            ("751000000", "751000000", "г. Алматы", "Алматы қ."),
        ];

        fn district_of(kato: &str) -> Option<DictionaryValue> {
            DISTRICTS
                .iter()
                .find(|(known, ..)| *known == kato)
                .map(|(_, code, ru, kk)| dict(code, ru, kk))
        }

        fn dict(code: &str, name_ru: &str, name_kk: &str) -> DictionaryValue {
            DictionaryValue {
                code: code.to_owned(),
                name_ru: name_ru.to_owned(),
                name_kk: name_kk.to_owned(),
            }
        }

        fn region_of(kato: &str) -> DictionaryValue {
            REGIONS
                .iter()
                .find(|(prefix, ..)| kato.starts_with(prefix))
                .map(|(prefix, ru, kk)| dict(prefix, ru, kk))
                .unwrap_or_default()
        }

        pub(super) fn person_from_row(row: &Row) -> Person {
            let (iin, surname, name, patronymic, kato, city, street) = *row;
            let info = parse_iin(iin, Strictness::Strict).expect("built-in IINs are valid");
            let gender = match info.sex {
                Sex::Male => dict("1", "Мужской", "Ер"),
                Sex::Female => dict("2", "Женский", "Әйел"),
            };
            let kazakhstan = dict("398", "Казахстан", "Қазақстан");
            let address = Address {
                kato: kato.to_owned(),
                country: Some(kazakhstan.clone()),
                region: Some(region_of(kato)),
                district: district_of(kato),
                city: city.to_owned(),
                street: street.to_owned(),
                building: String::new(),
                flat: String::new(),
            };
            let birth_date = info.birth_date;
            // An identity card issued at 16 (or at birth for the young), valid ten years.
            let issued = birth_date
                .replace_year(birth_date.year() + 16)
                .unwrap_or(birth_date);
            Person {
                iin: iin.to_owned(),
                surname: surname.to_owned(),
                name: name.to_owned(),
                patronymic: patronymic.to_owned(),
                birth_date: birth_date.to_string(),
                birth_place: Some(address.clone()),
                gender: Some(gender),
                citizenship: Some(kazakhstan),
                nationality: Some(dict("005", "Казах", "Қазақ")),
                life_status: Some(dict("0", "Нормальный", "Қалыпты")),
                reg_address: Some(address),
                documents: vec![IdentityDocument {
                    r#type: Some(dict("002", "УДОСТОВЕРЕНИЕ РК", "ҚР ЖЕКЕ КУӘЛІГІ")),
                    number: format!("0{}", &iin[3..11]),
                    begin_date: issued.to_string(),
                    end_date: issued
                        .replace_year(issued.year() + 10)
                        .unwrap_or(issued)
                        .to_string(),
                    issuer: Some(dict("002", "МВД РК", "ҚР ІІМ")),
                    status: Some(dict("00", "ДОКУМЕНТ ДЕЙСТВИТЕЛЕН", "ҚҰЖАТ ЖАРАМДЫ")),
                }],
                death_date: String::new(),
            }
        }
    }

    fn by_iin(iin: &str) -> LookupRequest {
        LookupRequest {
            key: Some(Key::Iin(iin.to_owned())),
            context: None,
        }
    }

    #[test]
    fn builtin_persons_answer_exactly_as_before() {
        let registry = PersonRegistry::builtin();
        for row in before::PERSONS {
            let expected = before::person_from_row(row);
            assert_eq!(registry.get(row.0).as_ref(), Some(&expected), "{}", row.0);
        }
    }

    #[test]
    fn builtin_persons_are_consistent_with_their_iins() {
        let registry = PersonRegistry::builtin();
        for row in before::PERSONS {
            let person = registry.get(row.0).unwrap();
            let info = parse_iin(&person.iin, Strictness::Strict).unwrap();
            assert_eq!(person.birth_date, info.birth_date.to_string());
            let expected = if info.sex == Sex::Male { "1" } else { "2" };
            assert_eq!(person.gender.unwrap().code, expected, "{}", person.iin);
            assert!(!person.reg_address.unwrap().region.unwrap().code.is_empty());
        }
    }

    #[test]
    fn finds_a_known_person() {
        let response = PersonRegistry::builtin()
            .lookup(&by_iin("850315301235"))
            .unwrap();
        let Some(Record::Person(person)) = response.record else {
            panic!("expected a person");
        };
        assert_eq!(person.surname, "Серикбаев");
        assert_eq!(response.result.unwrap().code, "00000");
    }

    #[test]
    fn answers_any_valid_iin_from_the_population() {
        let registry = PersonRegistry::builtin();
        let person = registry.get("061211600012").expect("a synthetic person");
        assert_eq!(person.birth_date, "2006-12-11");
        assert_eq!(person.gender.unwrap().code, "2");
    }

    #[test]
    fn reports_no_data_for_an_absent_valid_iin() {
        // The built-in fixtures mark this ANCHORS vector absent.
        let error = PersonRegistry::builtin()
            .lookup(&by_iin("791028302728"))
            .unwrap_err();
        assert!(matches!(error, RegistryError::NoData { .. }));
    }

    #[test]
    fn rejects_an_invalid_iin() {
        let error = PersonRegistry::builtin()
            .lookup(&by_iin("911212333888"))
            .unwrap_err();
        assert!(matches!(error, RegistryError::InvalidKey { .. }));
    }

    #[test]
    fn refuses_other_kinds_of_key() {
        let request = LookupRequest {
            key: Some(Key::Bin("940140000385".into())),
            context: None,
        };
        let error = PersonRegistry::builtin().lookup(&request).unwrap_err();
        assert!(matches!(error, RegistryError::UnsupportedKey { .. }));
    }
}
