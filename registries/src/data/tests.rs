use std::io::Write as _;

use shep_proto::registry::v1::{AccessLogRequest, RequestContext};

use super::*;

fn request(key: Key, test: bool) -> LookupRequest {
    LookupRequest {
        key: Some(key),
        context: Some(RequestContext {
            requester_system: "is-con".into(),
            operator_iin: "920704404563".into(),
            service_id: "guardianship-certificate-esil".into(),
            purpose: "проверка данных получателя".into(),
            message_id: "7f1d2c1e-0000-4000-8000-000000000001".into(),
            test,
            ..RequestContext::default()
        }),
    }
}

/// A temporary fixture file, removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, text: &str) -> Self {
        let path = std::env::temp_dir().join(format!("shep-{}-{name}", std::process::id()));
        std::fs::File::create(&path)
            .and_then(|mut file| file.write_all(text.as_bytes()))
            .unwrap();
        Self(path)
    }

    fn write(&self, text: &str) {
        std::fs::write(&self.0, text).unwrap();
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn each_registry_answers_its_own_key_and_audits_every_lookup() {
    let data = RegistryData::builtin();
    let person = data
        .lookup(
            RegistryKind::Persons,
            &request(Key::Iin("850315301235".into()), false),
        )
        .unwrap();
    assert!(matches!(person.record, Some(Record::Person(_))));
    let entity = data
        .lookup(
            RegistryKind::LegalEntities,
            &request(Key::Bin("100440123456".into()), false),
        )
        .unwrap();
    let Some(Record::LegalEntity(entity)) = entity.record else {
        panic!("expected an entity");
    };
    assert_eq!(entity.address.unwrap().kato, "471010000");
    let attorney = data
        .lookup(
            RegistryKind::PowersOfAttorney,
            &request(Key::PowerOfAttorneyNumber("850315301235-02".into()), true),
        )
        .unwrap();
    let Some(Record::PowerOfAttorney(attorney)) = attorney.record else {
        panic!("expected a power of attorney");
    };
    assert!(attorney.revoked);
    let wrong = data.lookup(
        RegistryKind::Persons,
        &request(Key::Bin("100440123456".into()), false),
    );
    assert!(matches!(wrong, Err(RegistryError::UnsupportedKey { .. })));
    let absent = data.lookup(
        RegistryKind::Persons,
        &request(Key::Iin("791028302728".into()), false),
    );
    assert!(matches!(absent, Err(RegistryError::NoData { .. })));

    // The representative sees the power-of-attorney lookup about them.
    let log = data.audit().query(&AccessLogRequest {
        subject: "780521307893".into(),
        ..AccessLogRequest::default()
    });
    assert_eq!(log.records.len(), 1);
    let record = &log.records[0];
    assert_eq!(record.registry, "enis");
    assert_eq!(record.key, "850315301235-02");
    assert_eq!(record.outcome(), AccessOutcome::Found);
    let context = record.context.as_ref().unwrap();
    assert_eq!(context.requester_system, "is-con");
    assert_eq!(context.operator_iin, "920704404563");
    assert_eq!(context.purpose, "проверка данных получателя");
    assert!(context.test, "test lookups are audited, flagged");
    let all = data.audit().query(&AccessLogRequest::default());
    assert_eq!(all.records.len(), 5);
    assert_eq!(all.records[0].outcome(), AccessOutcome::NoData);
    assert_eq!(all.records[1].outcome(), AccessOutcome::InvalidKey);
}

#[test]
fn test_lookups_change_no_registry_data() {
    let data = RegistryData::builtin();
    let before = data.summary();
    let person = data.person("850315301235");
    for key in [
        Key::Iin("850315301235".into()),
        Key::Iin("061211600012".into()),
        Key::Iin("791028302728".into()),
    ] {
        let _ = data.lookup(RegistryKind::Persons, &request(key, true));
    }
    assert_eq!(data.summary(), before);
    assert_eq!(data.person("850315301235"), person);
}

#[test]
fn reload_applies_edited_files_and_keeps_the_old_data_on_error() {
    let file = TempFile::new(
        "reload.json",
        r#"{ "persons": [ { "iin": "061211600012", "surname": "Первая" } ] }"#,
    );
    let config = PopulationConfig {
        fixtures: vec![file.0.clone()],
        ..PopulationConfig::default()
    };
    let data = RegistryData::new(&config, 100).unwrap();
    assert_eq!(data.person("061211600012").unwrap().surname, "Первая");
    assert_eq!(data.summary().1, 1);

    file.write(
        "{\n  \"persons\": [\n    { \"iin\": \"061211600012\", \"surname\": \"\" }\n  ]\n}\n",
    );
    let error = data.reload(&[]).unwrap_err().to_string();
    assert!(
        error.starts_with(&format!("{}:3:", file.0.display())),
        "{error}"
    );
    assert!(
        error.contains("`persons[0].surname`: must not be empty"),
        "{error}"
    );
    assert_eq!(data.person("061211600012").unwrap().surname, "Первая");
    assert_eq!(data.summary().1, 1, "a failed reload is no new generation");

    file.write(r#"{ "persons": [ { "iin": "061211600012", "surname": "Вторая" } ] }"#);
    let inline = FixtureSource::inline("api.json", r#"{ "absent": { "iins": ["920704404563"] } }"#);
    let (summary, generation) = data.reload(&[inline]).unwrap();
    assert_eq!(generation, 2);
    assert_eq!(summary.sources.last().unwrap(), "api.json");
    assert_eq!(data.person("061211600012").unwrap().surname, "Вторая");
    assert!(data.person("920704404563").is_none());

    // A document applies until the next reload.
    data.reload(&[]).unwrap();
    assert!(data.person("920704404563").is_some());

    drop(file);
    let missing = data.reload(&[]).unwrap_err();
    assert!(matches!(missing, FixtureError::Read { .. }), "{missing}");
    assert_eq!(data.person("061211600012").unwrap().surname, "Вторая");
}

#[test]
fn lenient_identifiers_reach_fixtures_with_bad_check_digits() {
    let strict = RegistryData::builtin();
    let key = || request(Key::Iin("911212333888".into()), false);
    assert!(matches!(
        strict.lookup(RegistryKind::Persons, &key()),
        Err(RegistryError::InvalidKey { .. })
    ));
    let config = PopulationConfig {
        identifiers: Identifiers::Lenient,
        ..PopulationConfig::default()
    };
    let lenient = RegistryData::new(&config, 10).unwrap();
    let inline = FixtureSource::inline(
        "real.json",
        r#"{ "persons": [ { "iin": "911212333888", "surname": "Фикстурова" } ] }"#,
    );
    lenient.reload(&[inline]).unwrap();
    let found = lenient.lookup(RegistryKind::Persons, &key()).unwrap();
    let Some(Record::Person(person)) = found.record else {
        panic!("expected a person");
    };
    assert_eq!(person.surname, "Фикстурова");
}

#[test]
fn config_errors_name_the_key() {
    let config = PopulationConfig {
        absent_share: 1.5,
        ..PopulationConfig::default()
    };
    let error = config.validate("population").unwrap_err();
    assert!(
        error.starts_with("`population.absent_share` must be"),
        "{error}"
    );
    let config: PopulationConfig = serde_json::from_str(r#"{"seed": 5, "size": 1000}"#).unwrap();
    assert_eq!(config.seed, 5);
    assert_eq!(config.size, Some(1000));
    assert_eq!(config.absent_share, DEFAULT_ABSENT_SHARE);
}

fn in_session(mut request: LookupRequest, session: &str) -> LookupRequest {
    if let Some(context) = request.context.as_mut() {
        context.session = session.to_owned();
    }
    request
}

#[test]
fn a_session_document_is_seen_only_by_that_session() {
    let data = RegistryData::builtin();
    let applicant = || request(Key::Iin("850315301235".into()), false);
    let absent = FixtureSource::inline("absent.json", r#"{"absent": {"iins": ["850315301235"]}}"#);
    data.put_document(Scope::Session("a"), absent).unwrap();
    assert!(matches!(
        data.lookup(RegistryKind::Persons, &in_session(applicant(), "a")),
        Err(RegistryError::NoData { .. })
    ));
    assert!(
        data.lookup(RegistryKind::Persons, &in_session(applicant(), "b"))
            .is_ok()
    );
    assert!(data.lookup(RegistryKind::Persons, &applicant()).is_ok());
    assert_eq!(data.documents(Scope::Session("a")), ["absent.json"]);
    assert!(data.documents(Scope::Global).is_empty());

    // A broken document changes nothing and names the line and field.
    let broken = FixtureSource::inline("broken.json", "{\n  \"absent\": {\"iins\": [\"123\"]}\n}");
    let error = data.put_document(Scope::Session("a"), broken).unwrap_err();
    assert!(error.to_string().contains("broken.json:2"), "{error}");
    assert_eq!(data.documents(Scope::Session("a")), ["absent.json"]);

    assert!(data.delete_document(Scope::Session("a"), "nope").is_none());
    data.delete_document(Scope::Session("a"), "absent.json")
        .unwrap()
        .unwrap();
    assert!(
        data.lookup(RegistryKind::Persons, &in_session(applicant(), "a"))
            .is_ok()
    );
}

#[test]
fn global_documents_survive_a_reload_and_sessions_follow_them() {
    let data = RegistryData::builtin();
    let absent = FixtureSource::inline("absent.json", r#"{"absent": {"iins": ["850315301235"]}}"#);
    data.put_document(Scope::Global, absent).unwrap();
    let other = FixtureSource::inline("other.json", r#"{"absent": {"iins": ["791028302728"]}}"#);
    data.put_document(Scope::Session("s"), other).unwrap();
    data.reload(&[]).unwrap();
    let applicant = request(Key::Iin("850315301235".into()), false);
    assert!(data.lookup(RegistryKind::Persons, &applicant).is_err());
    assert!(
        data.lookup(RegistryKind::Persons, &in_session(applicant.clone(), "s"))
            .is_err()
    );
    assert_eq!(data.clear(Scope::Global), 1);
    assert!(data.lookup(RegistryKind::Persons, &applicant).is_ok());
    assert!(
        data.lookup(RegistryKind::Persons, &in_session(applicant, "s"))
            .is_ok()
    );
    assert_eq!(data.clear(Scope::Session("s")), 1);
}

#[test]
fn unused_names_fixture_keys_nobody_looked_up() {
    let data = RegistryData::builtin();
    let two = FixtureSource::inline(
        "two.json",
        r#"{"absent": {"iins": ["850315301235", "791028302728"]}}"#,
    );
    data.put_document(Scope::Global, two).unwrap();
    let _ = data.lookup(
        RegistryKind::Persons,
        &request(Key::Iin("850315301235".into()), false),
    );
    assert_eq!(
        data.unused(None),
        [("gbdfl:791028302728".to_owned(), "two.json".to_owned())]
    );
    data.forget_used();
    assert_eq!(data.unused(None).len(), 2);
}
