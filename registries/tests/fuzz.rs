//! Fuzz properties of fixture loading (docs/FUZZING.md): a fixed budget
//! here, `PROPTEST_CASES=… cargo test --release -p shep-registries --test
//! fuzz` for a long run.

use std::sync::OnceLock;

use proptest::prelude::*;
use serde_json::{Map, Number, Value};
use shep_registries::fixtures::{FixtureError, FixtureSet, FixtureSource};
use shep_registries::ident::Strictness;
use shep_registries::population::Population;

/// `cases` per target, unless `PROPTEST_CASES` asks for a longer run: a
/// config's explicit `cases` would override the variable proptest reads.
fn budget(cases: u32) -> ProptestConfig {
    let config = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_some() {
        config
    } else {
        ProptestConfig { cases, ..config }
    }
}

const EXAMPLE: &str = include_str!("../fixtures/example.json");

/// The field names of the format, so generated documents get past
/// `deny_unknown_fields` and into the merge rules.
const KEYS: &[&str] = &[
    "persons",
    "legal_entities",
    "powers_of_attorney",
    "absent",
    "iins",
    "bins",
    "iin",
    "bin",
    "surname",
    "name",
    "patronymic",
    "birth_date",
    "death_date",
    "gender",
    "reg_address",
    "birth_place",
    "citizenship",
    "nationality",
    "documents",
    "kato",
    "code",
    "name_ru",
    "name_kk",
    "street",
    "building",
    "flat",
    "city",
    "type",
    "number",
    "begin_date",
    "end_date",
    "status",
    "issuer",
    "full_name_ru",
    "full_name_kk",
    "short_name_ru",
    "short_name_kk",
    "registration_date",
    "head_iin",
    "head_name",
    "head_position",
    "founders",
    "share_percent",
    "principal_iin",
    "principal_bin",
    "representative_iin",
    "notary_name",
    "issue_date",
    "valid_until",
    "revoked",
    "revocation_date",
    "service_ids",
    "legal_form",
    "activity",
    "reg_status",
    "liquidation_date",
    "address",
    "life_status",
    "description",
    "$schema",
];

/// Values the format's strings look like: identifiers of the built-in data
/// and of the example, dates, codes.
const STRINGS: &[&str] = &[
    "061211600012",
    "910312400290",
    "900101300811",
    "850315301235",
    "791028302728",
    "940140000385",
    "990140004654",
    "911212333888",
    "2021-04-01",
    "2031-02-30",
    "0001-01-01",
    "471010000",
    "591010000",
    "001",
    "002",
    "398",
    "",
    " ",
    "Абенова",
    "ТОО «Тест»",
];

fn population() -> &'static Population {
    static POPULATION: OnceLock<Population> = OnceLock::new();
    POPULATION.get_or_init(|| Population::new(1, None, 0.05).expect("a population"))
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(|float| Number::from_f64(float).map_or(Value::Null, Value::Number)),
        proptest::sample::select(STRINGS).prop_map(Value::from),
        "[0-9]{0,13}".prop_map(Value::String),
        any::<String>().prop_map(Value::String),
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => proptest::sample::select(KEYS).prop_map(str::to_owned),
        1 => any::<String>(),
    ]
}

/// A JSON tree at most 5 levels deep.
fn json() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(5, 96, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::vec((key(), inner), 0..6)
                .prop_map(|fields| Value::Object(fields.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Every JSON pointer into `value`, the root included.
fn pointers(value: &Value, at: String, out: &mut Vec<String>) {
    match value {
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                pointers(item, format!("{at}/{index}"), out);
            }
        }
        Value::Object(fields) => {
            for (name, field) in fields {
                let escaped = name.replace('~', "~0").replace('/', "~1");
                pointers(field, format!("{at}/{escaped}"), out);
            }
        }
        _ => {}
    }
    out.push(at);
}

fn load(text: &str) -> Result<FixtureSet, FixtureError> {
    let sources = [
        FixtureSource::builtin(),
        FixtureSource::inline("fuzz", text),
    ];
    FixtureSet::load(population(), &sources, Strictness::Strict)
}

/// Loading gives a set or a refusal that names the document and a 1-based
/// position, as the error's documentation promises.
fn check(text: &str) -> Result<(), TestCaseError> {
    match load(text) {
        Ok(_) => {}
        Err(FixtureError::Invalid {
            file, line, column, ..
        }) => {
            prop_assert!(file == "fuzz" || file == "builtin", "{file}");
            prop_assert!(line >= 1 && column >= 1, "{line}:{column}");
        }
        Err(error) => prop_assert!(false, "only a file read fails so: {error}"),
    }
    Ok(())
}

#[test]
fn the_example_file_loads() {
    load(EXAMPLE).expect("the example loads");
}

proptest! {
    #![proptest_config(budget(256))]

    #[test]
    fn any_json_document_loads_or_is_refused_with_a_position(document in json()) {
        check(&document.to_string())?;
        check(&serde_json::to_string_pretty(&document).expect("serializes"))?;
    }

    #[test]
    fn a_mutated_example_loads_or_is_refused_with_a_position(
        pick in any::<proptest::sample::Index>(),
        replacement in prop_oneof![Just(None), json().prop_map(Some)],
    ) {
        let mut document: Value = serde_json::from_str(EXAMPLE).expect("the example is JSON");
        let mut all = Vec::new();
        pointers(&document, String::new(), &mut all);
        let pointer = pick.get(&all).clone();
        match (replacement, pointer.rsplit_once('/')) {
            (Some(value), _) => *document.pointer_mut(&pointer).expect("a pointer") = value,
            // Remove the field or item instead.
            (None, Some((parent, last))) => match document.pointer_mut(parent) {
                Some(Value::Object(fields)) => {
                    fields.remove(&last.replace("~1", "/").replace("~0", "~"));
                }
                Some(Value::Array(items)) => {
                    items.remove(last.parse::<usize>().expect("an index"));
                }
                _ => unreachable!("a parent is a container"),
            },
            (None, None) => document = Value::Null,
        }
        check(&serde_json::to_string_pretty(&document).expect("serializes"))?;
    }

    #[test]
    fn a_mutated_example_text_loads_or_is_refused_with_a_position(
        at in any::<proptest::sample::Index>(),
        cut in 0usize..8,
        insert in "[\\x00-\\x7f]{0,4}|\\PC{0,4}",
    ) {
        // Edit at a character boundary: the text is a `&str`.
        let boundaries: Vec<usize> = EXAMPLE.char_indices().map(|(index, _)| index).collect();
        let start = *at.get(&boundaries);
        let end = boundaries
            .iter()
            .copied()
            .find(|index| *index >= start + cut)
            .unwrap_or(EXAMPLE.len());
        let text = format!("{}{insert}{}", &EXAMPLE[..start], &EXAMPLE[end..]);
        check(&text)?;
    }

    #[test]
    fn any_text_loads_or_is_refused_with_a_position(text in any::<String>()) {
        check(&text)?;
    }
}
