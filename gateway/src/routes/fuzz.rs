//! Fuzz properties of the routing table (docs/FUZZING.md): any text, and any
//! edit of the embedded table, loads or is refused with a [`RoutesError`]
//! naming its source. A fixed budget here; `PROPTEST_CASES=… cargo test
//! --release -p shep-gateway --lib fuzz` for a long run.

use proptest::prelude::*;

use super::{DEFAULT_ROUTES, RoutesError, RoutingTable};

const REGISTRIES: &[&str] = &["gbdfl", "gbdul", "enis"];

/// Right-hand sides the table's keys take, valid for some key and not others.
const VALUES: &[&str] = &[
    "\"pep\"",
    "\"is-con\"",
    "\"gbdfl\"",
    "\"enis\"",
    "\"lookup\"",
    "\"application\"",
    "\"portal\"",
    "\"provider\"",
    "\"5 minutes\"",
    "\"0 working-days\"",
    "\"-1 calendar-days\"",
    "\"18446744073709551615 minutes\"",
    "\"920704404563\"",
    "\"\"",
    "[]",
    "[\"pep\", \"pep\"]",
    "[\"portal\", \"service-centre\"]",
    "{ default = \"arm-rshep-sko-esil-edu\" }",
    "{ by_region = { \"\" = \"arm-rshep-sko-esil-edu\" } }",
    "{ by_region = { \"59\" = \"nobody\" } }",
    "{ portal = [\"gbdul\", \"enis\"] }",
    "0",
    "-1",
    "1e999",
    "true",
    "1979-05-27T07:32:00Z",
];

/// One edit of the table's text, by line: lines are what a person editing
/// it changes.
#[derive(Debug, Clone)]
enum Edit {
    /// Drop a line.
    Remove(usize),
    /// Copy a line (a second `id`, a second `[[service]]`) elsewhere.
    Duplicate(usize, usize),
    /// Give a `key = value` line another value.
    Value(usize, String),
    /// Replace characters of a line with arbitrary text.
    Splice(usize, usize, String),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        any::<usize>().prop_map(Edit::Remove),
        (any::<usize>(), any::<usize>()).prop_map(|(from, to)| Edit::Duplicate(from, to)),
        (
            any::<usize>(),
            prop_oneof![
                3 => proptest::sample::select(VALUES).prop_map(str::to_owned),
                1 => any::<String>(),
            ]
        )
            .prop_map(|(line, value)| Edit::Value(line, value)),
        (
            any::<usize>(),
            any::<usize>(),
            "\\PC{0,6}|[\\[\\]{}=\"',.#\\\\]{1,3}"
        )
            .prop_map(|(line, at, text)| Edit::Splice(line, at, text)),
    ]
}

fn apply(lines: &mut Vec<String>, edit: &Edit) {
    let len = lines.len();
    match edit {
        Edit::Remove(line) => {
            lines.remove(line % len);
        }
        Edit::Duplicate(from, to) => {
            let copy = lines[from % len].clone();
            lines.insert(to % (len + 1), copy);
        }
        Edit::Value(line, value) => {
            let line = &mut lines[line % len];
            if let Some((key, _)) = line.split_once('=') {
                *line = format!("{key}= {value}");
            }
        }
        Edit::Splice(line, at, text) => {
            let line = &mut lines[line % len];
            let start = line
                .char_indices()
                .map(|(index, _)| index)
                .nth(at % (line.chars().count() + 1))
                .unwrap_or(line.len());
            let end = line[start..]
                .char_indices()
                .nth(text.chars().count())
                .map_or(line.len(), |(index, _)| start + index);
            line.replace_range(start..end, text);
        }
    }
}

/// Loads or is refused naming the source; the same text gives the same answer.
fn check(text: &str) -> Result<(), TestCaseError> {
    let first = RoutingTable::from_toml(text, "fuzz", REGISTRIES);
    match &first {
        Ok(_) => {}
        Err(RoutesError::Parse {
            source_name,
            message,
        })
        | Err(RoutesError::Invalid {
            source_name,
            message,
        }) => {
            prop_assert_eq!(source_name.as_str(), "fuzz");
            prop_assert!(!message.is_empty());
        }
    }
    let again = RoutingTable::from_toml(text, "fuzz", REGISTRIES);
    prop_assert_eq!(
        first.as_ref().err().map(ToString::to_string),
        again.as_ref().err().map(ToString::to_string)
    );
    Ok(())
}

#[test]
fn the_embedded_table_loads() {
    RoutingTable::from_toml(DEFAULT_ROUTES, "fuzz", REGISTRIES).expect("the embedded table");
}

proptest! {
    #![proptest_config(crate::fuzzing::budget(256))]

    #[test]
    fn any_text_loads_or_is_refused(text in any::<String>()) {
        check(&text)?;
    }

    #[test]
    fn an_edited_embedded_table_loads_or_is_refused(
        edits in proptest::collection::vec(edit(), 1..4),
    ) {
        let mut lines: Vec<String> = DEFAULT_ROUTES.lines().map(str::to_owned).collect();
        for edit in &edits {
            apply(&mut lines, edit);
        }
        check(&lines.join("\n"))?;
    }
}
