//! Fuzz properties of the Admin API's JSON transcoding (docs/FUZZING.md):
//! any body for any unary method is the request message or a MALFORMED_BODY
//! refusal, and what is transcoded reaches the gRPC service unchanged. A
//! fixed budget here; `PROPTEST_CASES=… cargo test --release -p
//! shep-gateway --lib fuzz` for a long run.

use std::collections::BTreeSet;
use std::sync::OnceLock;

use proptest::prelude::*;
use prost_reflect::{FieldDescriptor, Kind, MessageDescriptor};
use serde_json::{Map, Number, Value};

use super::unframe;
use super::{ADMIN_SERVICE, DynamicMessage, MethodDescriptor, decode_json, descriptor_pool, frame};

/// The unary methods, and the names and enum values their requests use, so
/// generated bodies get past unknown-field refusals into the values.
struct Admin {
    methods: Vec<MethodDescriptor>,
    keys: Vec<String>,
    words: Vec<String>,
}

fn admin() -> &'static Admin {
    static ADMIN: OnceLock<Admin> = OnceLock::new();
    ADMIN.get_or_init(|| {
        let pool = descriptor_pool().expect("the descriptors");
        let service = pool
            .get_service_by_name(ADMIN_SERVICE)
            .expect("the service");
        let methods: Vec<_> = service
            .methods()
            .filter(|method| !method.is_client_streaming() && !method.is_server_streaming())
            .collect();
        let mut keys = BTreeSet::new();
        let mut words: BTreeSet<String> = SPECIAL.iter().map(|word| (*word).to_owned()).collect();
        let mut seen = BTreeSet::new();
        for method in &methods {
            names(&method.input(), &mut seen, &mut keys, &mut words);
        }
        Admin {
            methods,
            keys: keys.into_iter().collect(),
            words: words.into_iter().collect(),
        }
    })
}

/// The field names (proto and JSON) and enum value names under `message`.
fn names(
    message: &MessageDescriptor,
    seen: &mut BTreeSet<String>,
    keys: &mut BTreeSet<String>,
    words: &mut BTreeSet<String>,
) {
    if !seen.insert(message.full_name().to_owned()) {
        return;
    }
    for field in message.fields() {
        keys.insert(field.name().to_owned());
        keys.insert(field.json_name().to_owned());
        match field.kind() {
            Kind::Message(nested) => names(&nested, seen, keys, words),
            Kind::Enum(kind) => words.extend(kind.values().map(|value| value.name().to_owned())),
            _ => {}
        }
    }
}

/// Besides enum value names, strings proto3 JSON reads specially: 64-bit integers, float words,
/// timestamps, durations, bytes.
const SPECIAL: &[&str] = &[
    "NaN",
    "Infinity",
    "-Infinity",
    "18446744073709551616",
    "-9223372036854775809",
    "1e3",
    "0x10",
    "2024-02-30T00:00:00Z",
    "1970-01-01T00:00:00.999999999999Z",
    "9999-12-31T23:59:60Z",
    "1.5s",
    "-315576000001s",
    "s",
    "AAAA",
    "A===",
    "",
];

fn leaf() -> impl Strategy<Value = Value> {
    let admin = admin();
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(|float| Number::from_f64(float).map_or(Value::Null, Value::Number)),
        proptest::sample::select(admin.words.clone()).prop_map(Value::String),
        any::<String>().prop_map(Value::String),
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => proptest::sample::select(admin().keys.clone()),
        1 => Just("@type".to_owned()),
        1 => any::<String>(),
    ]
}

/// A JSON tree at most 4 levels deep.
fn json() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 64, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            proptest::collection::vec((key(), inner), 0..6)
                .prop_map(|fields| Value::Object(fields.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// A value for `field`, of the type proto3 JSON expects for it most of the
/// time and of any type otherwise; messages `depth` levels deep at most.
fn field_value(field: &FieldDescriptor, depth: u32) -> BoxedStrategy<Value> {
    let one = kind_value(&field.kind(), depth);
    let typed = if field.is_map() {
        let Kind::Message(entry) = field.kind() else {
            unreachable!("a map field's kind is its entry message")
        };
        let value = kind_value(&entry.map_entry_value_field().kind(), depth);
        let key = prop_oneof![key(), any::<i64>().prop_map(|key| key.to_string())];
        proptest::collection::vec((key, value), 0..4)
            .prop_map(|entries| Value::Object(entries.into_iter().collect::<Map<_, _>>()))
            .boxed()
    } else if field.is_list() {
        proptest::collection::vec(one, 0..4)
            .prop_map(Value::Array)
            .boxed()
    } else {
        one
    };
    prop_oneof![6 => typed, 1 => json()].boxed()
}

fn kind_value(kind: &Kind, depth: u32) -> BoxedStrategy<Value> {
    match kind {
        Kind::String => prop_oneof![
            proptest::sample::select(admin().words.clone()).prop_map(Value::String),
            any::<String>().prop_map(Value::String),
        ]
        .boxed(),
        Kind::Bool => any::<bool>().prop_map(Value::Bool).boxed(),
        Kind::Bytes => "[A-Za-z0-9+/=_-]{0,12}".prop_map(Value::String).boxed(),
        Kind::Double | Kind::Float => prop_oneof![
            any::<f64>()
                .prop_map(|float| Number::from_f64(float).map_or(Value::Null, Value::Number)),
            proptest::sample::select(&["NaN", "Infinity", "-Infinity", "1e39"][..])
                .prop_map(Value::from),
        ]
        .boxed(),
        Kind::Enum(kind) => {
            let names: Vec<String> = kind.values().map(|value| value.name().to_owned()).collect();
            prop_oneof![
                proptest::sample::select(names).prop_map(Value::String),
                any::<i32>().prop_map(Value::from),
            ]
            .boxed()
        }
        Kind::Message(message) => message_value(message, depth),
        // The integers: as numbers, as strings, and past their range.
        _ => prop_oneof![
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<i64>().prop_map(|int| Value::String(int.to_string())),
            (0i64..100).prop_map(Value::from),
        ]
        .boxed(),
    }
}

fn message_value(message: &MessageDescriptor, depth: u32) -> BoxedStrategy<Value> {
    match message.full_name() {
        "google.protobuf.Timestamp" | "google.protobuf.Duration" | "google.protobuf.FieldMask" => {
            prop_oneof![
                proptest::sample::select(admin().words.clone()).prop_map(Value::String),
                "[0-9:.TZsn-]{0,24}".prop_map(Value::String),
            ]
            .boxed()
        }
        _ if depth == 0 => Just(Value::Object(Map::new())).boxed(),
        _ => {
            let fields: Vec<BoxedStrategy<(String, Value)>> = message
                .fields()
                .map(|field| {
                    let name = field.json_name().to_owned();
                    field_value(&field, depth - 1)
                        .prop_map(move |value| (name.clone(), value))
                        .boxed()
                })
                .collect();
            if fields.is_empty() {
                return Just(Value::Object(Map::new())).boxed();
            }
            proptest::collection::vec(proptest::strategy::Union::new(fields), 0..6)
                .prop_map(|fields| Value::Object(fields.into_iter().collect::<Map<_, _>>()))
                .boxed()
        }
    }
}

/// A method and a body for it: an object shaped like its request, any
/// JSON, or arbitrary bytes.
fn method_and_body() -> impl Strategy<Value = (MethodDescriptor, Vec<u8>)> {
    proptest::sample::select(admin().methods.clone()).prop_flat_map(|method| {
        let body = prop_oneof![
            6 => message_value(&method.input(), 3).prop_map(|value| value.to_string().into_bytes()),
            1 => json().prop_map(|value| value.to_string().into_bytes()),
            1 => proptest::collection::vec(any::<u8>(), 0..64),
        ];
        (Just(method), body)
    })
}

proptest! {
    #![proptest_config(crate::fuzzing::budget(512))]

    #[test]
    fn any_body_is_transcoded_or_refused_as_malformed(
        (method, body) in method_and_body(),
    ) {
        match decode_json(&method, &body) {
            Ok(message) => {
                // The gRPC service decodes what was framed into the same message.
                let framed = frame(&message);
                let payload = unframe(&framed).expect("one message");
                let decoded = DynamicMessage::decode(method.input(), payload).expect("decodes");
                prop_assert_eq!(
                    serde_json::to_value(&decoded).expect("serializes"),
                    serde_json::to_value(&message).expect("serializes")
                );
            }
            Err(refused) => {
                prop_assert_eq!(
                    (refused.status, refused.reason.as_deref()),
                    (400, Some("MALFORMED_BODY")),
                    "{}", refused.message
                );
            }
        }
    }
}
