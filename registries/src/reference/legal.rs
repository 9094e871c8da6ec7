//! Legal forms and kinds of activity, as ГБД ЮЛ answers them.

use super::Entry;

/// A legal form: its entry, the abbreviations of short names (ru, kk), and
/// the Kazakh form that follows a quoted name in a full name (with the
/// possessive ending Kazakh grammar wants there).
#[derive(Debug, Clone, Copy)]
pub struct LegalForm {
    pub entry: Entry,
    pub short_ru: &'static str,
    pub short_kk: &'static str,
    pub full_kk: &'static str,
}

pub const LLP: LegalForm = LegalForm {
    entry: (
        "20",
        "Товарищество с ограниченной ответственностью",
        "Жауапкершілігі шектеулі серіктестік",
    ),
    short_ru: "ТОО",
    short_kk: "ЖШС",
    full_kk: "жауапкершілігі шектеулі серіктестігі",
};
pub const JSC: LegalForm = LegalForm {
    entry: ("10", "Акционерное общество", "Акционерлік қоғам"),
    short_ru: "АО",
    short_kk: "АҚ",
    full_kk: "акционерлік қоғамы",
};
pub const STATE_INSTITUTION: LegalForm = LegalForm {
    entry: ("30", "Государственное учреждение", "Мемлекеттік мекеме"),
    short_ru: "ГУ",
    short_kk: "ММ",
    full_kk: "мемлекеттік мекемесі",
};
pub const PUBLIC_ASSOCIATION: LegalForm = LegalForm {
    entry: ("40", "Общественное объединение", "Қоғамдық бірлестік"),
    short_ru: "ОО",
    short_kk: "ҚБ",
    full_kk: "қоғамдық бірлестігі",
};
pub const COOPERATIVE: LegalForm = LegalForm {
    entry: ("50", "Производственный кооператив", "Өндірістік кооператив"),
    short_ru: "ПК",
    short_kk: "ӨК",
    full_kk: "өндірістік кооперативі",
};
pub const NON_COMMERCIAL_JSC: LegalForm = LegalForm {
    entry: (
        "11",
        "Некоммерческое акционерное общество",
        "Коммерциялық емес акционерлік қоғам",
    ),
    short_ru: "НАО",
    short_kk: "КЕАҚ",
    full_kk: "коммерциялық емес акционерлік қоғамы",
};
pub const BRANCH: LegalForm = LegalForm {
    entry: ("60", "Филиал", "Филиал"),
    short_ru: "Филиал",
    short_kk: "филиалы",
    full_kk: "филиалы",
};
pub const REPRESENTATIVE_OFFICE: LegalForm = LegalForm {
    entry: ("70", "Представительство", "Өкілдік"),
    short_ru: "Представительство",
    short_kk: "өкілдігі",
    full_kk: "өкілдігі",
};
pub const JOINT_ENTREPRENEURSHIP: LegalForm = LegalForm {
    entry: (
        "80",
        "Индивидуальное предпринимательство в форме совместного",
        "Бірлескен нысандағы жеке кәсіпкерлік",
    ),
    short_ru: "ИП(С)",
    short_kk: "ЖК(Б)",
    full_kk: "бірлескен нысандағы жеке кәсіпкерлігі",
};
pub const FARM: LegalForm = LegalForm {
    entry: (
        "90",
        "Крестьянское (фермерское) хозяйство",
        "Шаруа (фермер) қожалығы",
    ),
    short_ru: "КХ",
    short_kk: "ШҚ",
    full_kk: "шаруа (фермер) қожалығы",
};
pub const LEGAL_FORMS: &[LegalForm] = &[
    LLP,
    JSC,
    NON_COMMERCIAL_JSC,
    STATE_INSTITUTION,
    PUBLIC_ASSOCIATION,
    COOPERATIVE,
    BRANCH,
    REPRESENTATIVE_OFFICE,
    JOINT_ENTREPRENEURSHIP,
    FARM,
];

/// Legal-form entries, for dictionary look-ups.
pub fn legal_form_entries() -> impl Iterator<Item = &'static Entry> {
    LEGAL_FORMS.iter().map(|form| &form.entry)
}

/// Main activities (ОКЭД).
pub const ACTIVITIES: &[Entry] = &[
    (
        "62010",
        "Деятельность в области компьютерного программирования",
        "Компьютерлік бағдарламалау саласындағы қызмет",
    ),
    (
        "46900",
        "Неспециализированная оптовая торговля",
        "Мамандандырылмаған көтерме сауда",
    ),
    (
        "41200",
        "Строительство жилых и нежилых зданий",
        "Тұрғын және тұрғын емес ғимараттар құрылысы",
    ),
    (
        "49410",
        "Деятельность автомобильного грузового транспорта",
        "Автомобиль жүк көлігінің қызметі",
    ),
    (
        "01110",
        "Выращивание зерновых и зернобобовых культур",
        "Дәнді және дәнді бұршақты дақылдарды өсіру",
    ),
    (
        "47110",
        "Розничная торговля в неспециализированных магазинах",
        "Мамандандырылмаған дүкендерде бөлшек сауда",
    ),
    (
        "69200",
        "Деятельность в области бухгалтерского учета и аудита",
        "Бухгалтерлік есеп және аудит саласындағы қызмет",
    ),
    (
        "84110",
        "Деятельность органов государственного управления",
        "Мемлекеттік басқару органдарының қызметі",
    ),
    (
        "85310",
        "Общее среднее образование",
        "Жалпы орта білім беру",
    ),
    (
        "94990",
        "Деятельность прочих общественных организаций",
        "Басқа да қоғамдық ұйымдардың қызметі",
    ),
];
