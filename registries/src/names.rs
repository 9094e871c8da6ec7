//! Names for the synthetic population: Kazakh, Russian and other surnames,
//! given names by sex, and patronymics formed from the father's name, grouped
//! by nationality so that a person's name fits their nationality.

use crate::ident::Sex;

/// A given name that can also be a father's name: (name, patronymic for a son,
/// patronymic for a daughter).
pub type Father = (&'static str, &'static str, &'static str);

/// Names of one naming tradition.
#[derive(Debug)]
pub struct NameSet {
    /// Surnames in the masculine form; the feminine form follows [`feminine`].
    pub surnames: &'static [&'static str],
    /// Men's given names, also used as fathers' names for patronymics.
    pub men: &'static [Father],
    /// Women's given names.
    pub women: &'static [&'static str],
}

/// A nationality: its code in [`crate::reference::NATIONALITIES`], its share
/// of the population in per mille, and its names.
#[derive(Debug)]
pub struct Group {
    pub nationality: &'static str,
    pub per_mille: u32,
    pub names: NameSet,
}

const KAZAKH_MEN: &[Father] = &[
    ("Нурлан", "Нурланович", "Нурлановна"),
    ("Ерлан", "Ерланович", "Ерлановна"),
    ("Даурен", "Дауренович", "Дауреновна"),
    ("Арман", "Арманович", "Армановна"),
    ("Асхат", "Асхатович", "Асхатовна"),
    ("Бауыржан", "Бауыржанович", "Бауыржановна"),
    ("Ермек", "Ермекович", "Ермековна"),
    ("Марат", "Маратович", "Маратовна"),
    ("Серик", "Серикович", "Сериковна"),
    ("Болат", "Болатович", "Болатовна"),
    ("Кайрат", "Кайратович", "Кайратовна"),
    ("Ержан", "Ержанович", "Ержановна"),
    ("Айдос", "Айдосович", "Айдосовна"),
    ("Алихан", "Алиханович", "Алихановна"),
    ("Дамир", "Дамирович", "Дамировна"),
    ("Темирлан", "Темирланович", "Темирлановна"),
    ("Санжар", "Санжарович", "Санжаровна"),
    ("Мирас", "Мирасович", "Мирасовна"),
    ("Талгат", "Талгатович", "Талгатовна"),
    ("Азамат", "Азаматович", "Азаматовна"),
    ("Руслан", "Русланович", "Руслановна"),
    ("Жандос", "Жандосович", "Жандосовна"),
    ("Бекзат", "Бекзатович", "Бекзатовна"),
    ("Габит", "Габитович", "Габитовна"),
    ("Мухтар", "Мухтарович", "Мухтаровна"),
];

const KAZAKH_WOMEN: &[&str] = &[
    "Айгерим",
    "Динара",
    "Асель",
    "Гульнара",
    "Жанар",
    "Айжан",
    "Сауле",
    "Камила",
    "Алия",
    "Мадина",
    "Дана",
    "Аружан",
    "Жансая",
    "Айдана",
    "Гульмира",
    "Салтанат",
    "Ботагоз",
    "Назерке",
    "Томирис",
    "Акмарал",
    "Балжан",
    "Меруерт",
];

const KAZAKH_SURNAMES: &[&str] = &[
    "Ахметов",
    "Серикбаев",
    "Жумабеков",
    "Оспанов",
    "Нурланов",
    "Сулейменов",
    "Абдрахманов",
    "Касымов",
    "Искаков",
    "Тулегенов",
    "Бекмуханов",
    "Кенжебаев",
    "Ержанов",
    "Мухамеджанов",
    "Сагинтаев",
    "Байжанов",
    "Есенов",
    "Амиров",
    "Жаксылыков",
    "Турсынов",
    "Садыков",
    "Муканов",
    "Калиев",
    "Омаров",
    "Утепов",
    "Нургалиев",
    "Смагулов",
    "Бейсенов",
    "Кусаинов",
    "Аубакиров",
    "Тлеубаев",
    "Мамыров",
];

const RUSSIAN_MEN: &[Father] = &[
    ("Сергей", "Сергеевич", "Сергеевна"),
    ("Александр", "Александрович", "Александровна"),
    ("Дмитрий", "Дмитриевич", "Дмитриевна"),
    ("Андрей", "Андреевич", "Андреевна"),
    ("Алексей", "Алексеевич", "Алексеевна"),
    ("Николай", "Николаевич", "Николаевна"),
    ("Владимир", "Владимирович", "Владимировна"),
    ("Игорь", "Игоревич", "Игоревна"),
    ("Евгений", "Евгеньевич", "Евгеньевна"),
    ("Максим", "Максимович", "Максимовна"),
    ("Павел", "Павлович", "Павловна"),
    ("Виктор", "Викторович", "Викторовна"),
    ("Олег", "Олегович", "Олеговна"),
    ("Юрий", "Юрьевич", "Юрьевна"),
    ("Михаил", "Михайлович", "Михайловна"),
    ("Петр", "Петрович", "Петровна"),
];

const RUSSIAN_WOMEN: &[&str] = &[
    "Елена",
    "Ольга",
    "Наталья",
    "Татьяна",
    "Ирина",
    "Светлана",
    "Анна",
    "Мария",
    "Екатерина",
    "Юлия",
    "Людмила",
    "Галина",
    "Оксана",
    "Марина",
    "Виктория",
];

const RUSSIAN_SURNAMES: &[&str] = &[
    "Иванов",
    "Петров",
    "Смирнов",
    "Кузнецов",
    "Попов",
    "Васильев",
    "Соколов",
    "Михайлов",
    "Новиков",
    "Федоров",
    "Морозов",
    "Волков",
    "Алексеев",
    "Лебедев",
    "Семенов",
    "Егоров",
    "Павлов",
    "Козлов",
    "Степанов",
    "Николаев",
];

const UZBEK_MEN: &[Father] = &[
    ("Бахтияр", "Бахтиярович", "Бахтияровна"),
    ("Рустам", "Рустамович", "Рустамовна"),
    ("Шухрат", "Шухратович", "Шухратовна"),
    ("Фарход", "Фарходович", "Фарходовна"),
    ("Улугбек", "Улугбекович", "Улугбековна"),
    ("Тимур", "Тимурович", "Тимуровна"),
];
const UZBEK_WOMEN: &[&str] = &[
    "Дильноза",
    "Гульнора",
    "Нилуфар",
    "Мохира",
    "Зарина",
    "Феруза",
];
const UZBEK_SURNAMES: &[&str] = &[
    "Юсупов",
    "Каримов",
    "Рахимов",
    "Усманов",
    "Ташпулатов",
    "Мирзаев",
];

const UYGHUR_MEN: &[Father] = &[
    ("Мурат", "Муратович", "Муратовна"),
    ("Ильхам", "Ильхамович", "Ильхамовна"),
    ("Дильшат", "Дильшатович", "Дильшатовна"),
    ("Алим", "Алимович", "Алимовна"),
];
const UYGHUR_WOMEN: &[&str] = &["Гульбахрам", "Патигуль", "Динара", "Мадина"];
const UYGHUR_SURNAMES: &[&str] = &["Масимов", "Исмаилов", "Турдиев", "Абдуллаев", "Розиев"];

const TATAR_MEN: &[Father] = &[
    ("Ринат", "Ринатович", "Ринатовна"),
    ("Рустем", "Рустемович", "Рустемовна"),
    ("Ильдар", "Ильдарович", "Ильдаровна"),
    ("Рафаэль", "Рафаэлевич", "Рафаэлевна"),
];
const TATAR_WOMEN: &[&str] = &["Гульнур", "Альфия", "Лейсан", "Резеда", "Эльвира"];
const TATAR_SURNAMES: &[&str] = &["Хабибуллин", "Сафин", "Гарипов", "Валиев", "Зарипов"];

const UKRAINIAN_SURNAMES: &[&str] = &[
    "Ткаченко",
    "Шевченко",
    "Бондаренко",
    "Коваленко",
    "Мельник",
    "Кравченко",
    "Литвиненко",
];
const GERMAN_SURNAMES: &[&str] = &["Шмидт", "Вебер", "Миллер", "Вагнер", "Беккер", "Шульц"];
const KOREAN_SURNAMES: &[&str] = &["Ким", "Цой", "Пак", "Ли", "Тен", "Хван", "Югай"];

/// The nationalities of the synthetic population with their shares (per
/// mille; they add up to 1000) and names.
pub const GROUPS: &[Group] = &[
    Group {
        nationality: "005",
        per_mille: 700,
        names: NameSet {
            surnames: KAZAKH_SURNAMES,
            men: KAZAKH_MEN,
            women: KAZAKH_WOMEN,
        },
    },
    Group {
        nationality: "001",
        per_mille: 170,
        names: NameSet {
            surnames: RUSSIAN_SURNAMES,
            men: RUSSIAN_MEN,
            women: RUSSIAN_WOMEN,
        },
    },
    Group {
        nationality: "009",
        per_mille: 35,
        names: NameSet {
            surnames: UZBEK_SURNAMES,
            men: UZBEK_MEN,
            women: UZBEK_WOMEN,
        },
    },
    Group {
        nationality: "007",
        per_mille: 20,
        names: NameSet {
            surnames: UKRAINIAN_SURNAMES,
            men: RUSSIAN_MEN,
            women: RUSSIAN_WOMEN,
        },
    },
    Group {
        nationality: "011",
        per_mille: 15,
        names: NameSet {
            surnames: UYGHUR_SURNAMES,
            men: UYGHUR_MEN,
            women: UYGHUR_WOMEN,
        },
    },
    Group {
        nationality: "013",
        per_mille: 15,
        names: NameSet {
            surnames: TATAR_SURNAMES,
            men: TATAR_MEN,
            women: TATAR_WOMEN,
        },
    },
    Group {
        nationality: "015",
        per_mille: 15,
        names: NameSet {
            surnames: GERMAN_SURNAMES,
            men: RUSSIAN_MEN,
            women: RUSSIAN_WOMEN,
        },
    },
    Group {
        nationality: "017",
        per_mille: 30,
        names: NameSet {
            surnames: KOREAN_SURNAMES,
            men: RUSSIAN_MEN,
            women: RUSSIAN_WOMEN,
        },
    },
];

/// The surname in the form for `sex`: Russian-style endings (-ов, -ев, -ин,
/// -ын) take -а for women; other surnames (Ким, Ткаченко, Шмидт) do not change.
pub fn surname_for(masculine: &str, sex: Sex) -> String {
    let inflects = ["ов", "ев", "ин", "ын"]
        .iter()
        .any(|ending| masculine.ends_with(ending));
    match sex {
        Sex::Female if inflects => format!("{masculine}а"),
        _ => masculine.to_owned(),
    }
}

/// The patronymic of a child of `father`.
pub fn patronymic_for(father: &Father, sex: Sex) -> &'static str {
    match sex {
        Sex::Male => father.1,
        Sex::Female => father.2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_add_up_and_nationalities_are_in_the_reference_book() {
        let total: u32 = GROUPS.iter().map(|group| group.per_mille).sum();
        assert_eq!(total, 1000);
        for group in GROUPS {
            assert!(
                crate::reference::find(crate::reference::NATIONALITIES, group.nationality)
                    .is_some()
            );
            assert!(!group.names.surnames.is_empty());
            assert!(!group.names.men.is_empty());
            assert!(!group.names.women.is_empty());
        }
    }

    #[test]
    fn surnames_take_the_feminine_form_where_russian_grammar_wants_it() {
        assert_eq!(surname_for("Ахметов", Sex::Female), "Ахметова");
        assert_eq!(surname_for("Хабибуллин", Sex::Female), "Хабибуллина");
        assert_eq!(surname_for("Ким", Sex::Female), "Ким");
        assert_eq!(surname_for("Ткаченко", Sex::Female), "Ткаченко");
        assert_eq!(surname_for("Ахметов", Sex::Male), "Ахметов");
        assert_eq!(patronymic_for(&KAZAKH_MEN[7], Sex::Male), "Маратович");
        assert_eq!(patronymic_for(&RUSSIAN_MEN[13], Sex::Female), "Юрьевна");
    }
}
