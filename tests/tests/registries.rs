//! The mock registries through the gateway, over real sockets: ГБД ФЛ, ГБД ЮЛ
//! and ЕНИС lookups, the service-centre flow's checks (applicant, power of
//! attorney), BIN applicants routed by their ГБД ЮЛ address, fixture reloads
//! through the admin API, the access audit, test requests, and a registry
//! served in its own server and plugged in by configuration.

use std::sync::Arc;

use shep_proto::envelope::v1::{Body, PowerOfAttorneyRef, Subject, subject};
use shep_proto::registry::v1::lookup_response::Record;
use shep_proto::registry::v1::registry_admin_client::RegistryAdminClient;
use shep_proto::registry::v1::{
    AccessLogRequest, AccessOutcome, FixtureDocument, ReloadFixturesRequest,
};
use shep_registries::enis::PowerOfAttorneyRegistry;
use shep_registries::gbdfl::PersonRegistry;
use shep_registries::{PopulationConfig, RegistryData};
use shep_tests::{
    APPLICANT_IIN, ESIL_SERVICE, Participant, TempDir, TestGateway, connect, error_metadata, iin,
    refusal, run_shep,
};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tonic::Code;

const REPRESENTATIVE: &str = "780521307893";
const ARCHIVE_SERVICE: &str = "archive-certificate-mangystau";
const ARCHIVE_PROVIDER: &str = "is-mio-mangystau-archives";
/// ТОО «Каспий Архив Сервис», Актау (built-in fixture).
const ENTITY_BIN: &str = "100440123456";

fn bin(bin: &str) -> Subject {
    Subject {
        id: Some(subject::Id::Bin(bin.to_owned())),
    }
}

fn with_attorney(mut body: Body, number: &str, representative: &str) -> Body {
    body.power_of_attorney = Some(PowerOfAttorneyRef {
        number: number.to_owned(),
        representative_iin: representative.to_owned(),
    });
    body
}

/// The ЦОН operator applies for `subject` under `service`, optionally with a
/// representative's power of attorney.
async fn apply(
    gateway: &TestGateway,
    service: &str,
    subject: Subject,
    attorney: Option<(&str, &str)>,
) -> Result<shep_proto::gateway::v1::Receipt, tonic::Status> {
    let operator = gateway.operator();
    let mut body = operator.application(service, subject, "{}", Vec::new());
    if let Some((number, representative)) = attorney {
        body = with_attorney(body, number, representative);
    }
    let envelope = operator.seal(&body).expect("signing");
    gateway
        .gateway()
        .submit(envelope)
        .await
        .map(|receipt| receipt.into_inner())
}

async fn call(
    gateway: &TestGateway,
    participant: &Participant,
    body: Body,
) -> Result<shep_proto::gateway::v1::CallResponse, tonic::Status> {
    let envelope = participant.seal(&body).expect("signing");
    gateway
        .gateway()
        .call(envelope)
        .await
        .map(|response| response.into_inner())
}

#[tokio::test]
async fn the_service_centre_checks_the_power_of_attorney_in_enis() {
    let gateway = TestGateway::start().await;

    // Found and valid: routed by the applicant's district (Есильский район, 5942).
    let receipt = apply(
        &gateway,
        ESIL_SERVICE,
        iin(APPLICANT_IIN),
        Some(("850315301235-01", REPRESENTATIVE)),
    )
    .await
    .expect("a valid power of attorney is accepted");
    assert_eq!(receipt.provider_id, "arm-rshep-sko-esil-edu");

    // Not in ЕНИС: the documented «нет данных» refusal.
    for number in ["850315301235-05", "NO-SUCH-NUMBER"] {
        let status = refusal(
            apply(
                &gateway,
                ESIL_SERVICE,
                iin(APPLICANT_IIN),
                Some((number, REPRESENTATIVE)),
            )
            .await,
            Code::NotFound,
            "NO_DATA",
        );
        assert!(status.message().contains("ЕНИС"), "{}", status.message());
    }

    // In ЕНИС but not good for this request.
    let cases = [
        ("850315301235-02", REPRESENTATIVE, "REVOKED"),
        ("850315301235-03", REPRESENTATIVE, "EXPIRED"),
        ("850315301235-04", REPRESENTATIVE, "SERVICE_NOT_COVERED"),
        ("850315301235-01", "920704404563", "REPRESENTATIVE_MISMATCH"),
        ("100440123456-01", "670228423458", "PRINCIPAL_MISMATCH"),
    ];
    for (number, representative, problem) in cases {
        let status = refusal(
            apply(
                &gateway,
                ESIL_SERVICE,
                iin(APPLICANT_IIN),
                Some((number, representative)),
            )
            .await,
            Code::PermissionDenied,
            "POWER_OF_ATTORNEY_INVALID",
        );
        assert_eq!(
            error_metadata(&status, "problem").as_deref(),
            Some(problem),
            "{number}"
        );
    }

    // No power of attorney: the applicant applies in person.
    apply(&gateway, ESIL_SERVICE, iin(APPLICANT_IIN), None)
        .await
        .expect("no power of attorney, no ЕНИС check");

    // The portal channel does not check ЕНИС (the applicant signs).
    let applicant = gateway.applicant();
    let body = with_attorney(
        applicant.application(ESIL_SERVICE, iin(APPLICANT_IIN), "{}", Vec::new()),
        "850315301235-02",
        REPRESENTATIVE,
    );
    gateway
        .gateway()
        .submit(applicant.seal(&body).unwrap())
        .await
        .expect("the portal flow has no ЕНИС check");
}

#[tokio::test]
async fn an_applicant_unknown_to_gbdfl_ends_the_service_centre_flow() {
    let gateway = TestGateway::start().await;
    // A valid IIN the built-in fixtures mark absent.
    let status = refusal(
        apply(&gateway, ESIL_SERVICE, iin("791028302728"), None).await,
        Code::NotFound,
        "NO_DATA",
    );
    assert!(
        status.message().contains("791028302728"),
        "{}",
        status.message()
    );
    // Any other valid IIN is a synthetic person: the flow goes on to the
    // provider choice by the region ГБД ФЛ gives.
    let synthetic = "061211600012";
    let kato = gateway
        .running
        .registry_data
        .person(synthetic)
        .expect("a synthetic person")
        .reg_address
        .unwrap()
        .kato;
    let result = apply(&gateway, ESIL_SERVICE, iin(synthetic), None).await;
    // Only Есильский район's residents (5942…) have the Esil department.
    if kato.starts_with("5942") {
        assert_eq!(result.unwrap().provider_id, "arm-rshep-sko-esil-edu");
    } else {
        refusal(result, Code::FailedPrecondition, "NO_PROVIDER_FOR_REGION");
    }
}

#[tokio::test]
async fn a_legal_entity_applicant_is_checked_in_gbdul_and_routed_by_its_address() {
    let gateway = TestGateway::start().await;
    // Актау (КАТО 47…): the Mangystau archives.
    let receipt = apply(&gateway, ARCHIVE_SERVICE, bin(ENTITY_BIN), None)
        .await
        .expect("a known entity is accepted");
    assert_eq!(receipt.provider_id, ARCHIVE_PROVIDER);
    // The entity's power of attorney, presented for the entity.
    let receipt = apply(
        &gateway,
        ARCHIVE_SERVICE,
        bin(ENTITY_BIN),
        Some(("100440123456-01", "670228423458")),
    )
    .await
    .expect("the entity's own power of attorney");
    assert_eq!(receipt.provider_id, ARCHIVE_PROVIDER);
    // A person's power of attorney does not serve an entity.
    refusal(
        apply(
            &gateway,
            ARCHIVE_SERVICE,
            bin(ENTITY_BIN),
            Some(("850315301235-04", REPRESENTATIVE)),
        )
        .await,
        Code::PermissionDenied,
        "POWER_OF_ATTORNEY_INVALID",
    );
    // ГБД ЮЛ has no data: refused.
    refusal(
        apply(&gateway, ARCHIVE_SERVICE, bin("990140004654"), None).await,
        Code::NotFound,
        "NO_DATA",
    );
}

#[tokio::test]
async fn each_registry_answers_its_lookup_through_the_gateway() {
    let gateway = TestGateway::start().await;
    let operator = gateway.operator();

    let body = operator.request("GbdulInfoByBin_v2", bin(ENTITY_BIN));
    let response = call(&gateway, &operator, body)
        .await
        .expect("ГБД ЮЛ lookup");
    assert_eq!(
        response.response_info.unwrap().status.unwrap().code,
        "00000"
    );
    let Some(Record::LegalEntity(entity)) = response.lookup.unwrap().record else {
        panic!("expected a legal entity");
    };
    assert_eq!(entity.short_name_ru, "ТОО «Каспий Архив Сервис»");
    assert_eq!(entity.head_name, "Жумабеков Ерлан Асхатович");

    // A synthetic entity for any valid BIN.
    let body = operator.request("GbdulInfoByBin_v2", bin("940140000385"));
    let response = call(&gateway, &operator, body)
        .await
        .expect("synthetic entity");
    let Some(Record::LegalEntity(entity)) = response.lookup.unwrap().record else {
        panic!("expected a legal entity");
    };
    assert!(entity.registration_date.starts_with("1994-01-"));

    // ЕНИС: keyed by the number, shown to its principal or representative.
    let body = with_attorney(
        operator.request("EnisPowerOfAttorney_v1", iin(APPLICANT_IIN)),
        "850315301235-02",
        "",
    );
    let response = call(&gateway, &operator, body).await.expect("ЕНИС lookup");
    let Some(Record::PowerOfAttorney(attorney)) = response.lookup.unwrap().record else {
        panic!("expected a power of attorney");
    };
    assert!(attorney.revoked);
    assert_eq!(attorney.representative_iin, REPRESENTATIVE);
    let body = with_attorney(
        operator.request("EnisPowerOfAttorney_v1", iin("920704404563")),
        "850315301235-02",
        "",
    );
    refusal(
        call(&gateway, &operator, body).await,
        Code::NotFound,
        "NO_DATA",
    );
    let body = operator.request("EnisPowerOfAttorney_v1", iin(APPLICANT_IIN));
    let status = refusal(
        call(&gateway, &operator, body).await,
        Code::InvalidArgument,
        "INVALID_FIELD",
    );
    assert_eq!(
        error_metadata(&status, "field").as_deref(),
        Some("power_of_attorney.number")
    );

    // The audit shows who looked up whom and why.
    let mut admin = gateway.admin();
    let log = admin
        .access_log(gateway.authorized(AccessLogRequest {
            subject: REPRESENTATIVE.to_owned(),
            ..AccessLogRequest::default()
        }))
        .await
        .expect("the audit")
        .into_inner();
    assert_eq!(
        log.records.len(),
        2,
        "both ЕНИС lookups name the representative"
    );
    let record = &log.records[0];
    assert_eq!(record.registry, "enis");
    assert_eq!(record.key, "850315301235-02");
    assert_eq!(record.outcome(), AccessOutcome::Found);
    let context = record.context.as_ref().unwrap();
    assert_eq!(context.requester_system, "is-con");
    assert_eq!(context.operator_iin, "920704404563");
    assert_eq!(context.service_id, "EnisPowerOfAttorney_v1");
    assert!(!context.message_id.is_empty());
    refusal(
        admin.access_log(AccessLogRequest::default()).await,
        Code::Unauthenticated,
        "UNAUTHENTICATED",
    );
}

#[tokio::test]
async fn test_requests_are_audited_as_tests_and_change_no_registry_data() {
    let gateway = TestGateway::start().await;
    let data = gateway.running.registry_data.clone();
    let before = data.summary();
    let person = data.person(APPLICANT_IIN);

    let operator = gateway.operator();
    let mut body = with_attorney(
        operator.application(ESIL_SERVICE, iin(APPLICANT_IIN), "{}", Vec::new()),
        "850315301235-01",
        REPRESENTATIVE,
    );
    body.test = true;
    body.purpose = "проверка доверенности".to_owned();
    gateway
        .gateway()
        .submit(operator.seal(&body).unwrap())
        .await
        .expect("a test application");

    assert_eq!(data.summary(), before);
    assert_eq!(data.person(APPLICANT_IIN), person);
    let log = gateway
        .admin()
        .access_log(gateway.authorized(AccessLogRequest {
            subject: APPLICANT_IIN.to_owned(),
            ..AccessLogRequest::default()
        }))
        .await
        .unwrap()
        .into_inner();
    let registries: Vec<&str> = log.records.iter().map(|r| r.registry.as_str()).collect();
    assert_eq!(registries, ["enis", "gbdfl"], "applicant first, then ЕНИС");
    for record in &log.records {
        let context = record.context.as_ref().unwrap();
        assert!(context.test, "flagged as a test lookup");
        assert_eq!(context.purpose, "проверка доверенности");
        assert_eq!(context.service_id, ESIL_SERVICE);
    }
}

#[tokio::test]
async fn fixtures_reload_through_the_admin_api_and_a_bad_file_keeps_the_old_data() {
    let dir = TempDir::new("shep-fixtures");
    let file = dir.path().join("team.json");
    std::fs::write(
        &file,
        r#"{ "persons": [ { "iin": "061211600012", "surname": "Командная",
              "reg_address": { "kato": "594230100" } } ] }"#,
    )
    .unwrap();
    let path = file.clone();
    let gateway = TestGateway::builder()
        .configure(move |config| config.population.fixtures = vec![path])
        .start()
        .await;
    let surname = || {
        gateway
            .running
            .registry_data
            .person("061211600012")
            .unwrap()
            .surname
    };
    assert_eq!(surname(), "Командная");
    // The fixture moved her to Есильский район: the ЦОН flow routes her there.
    let receipt = apply(&gateway, ESIL_SERVICE, iin("061211600012"), None)
        .await
        .expect("routed by the fixture's address");
    assert_eq!(receipt.provider_id, "arm-rshep-sko-esil-edu");

    let mut admin = gateway.admin();
    std::fs::write(
        &file,
        "{\n  \"persons\": [\n    { \"iin\": \"061211600013\" }\n  ]\n}\n",
    )
    .unwrap();
    let status = refusal(
        admin
            .reload_fixtures(gateway.authorized(ReloadFixturesRequest::default()))
            .await,
        Code::InvalidArgument,
        "INVALID_FIELD",
    );
    assert_eq!(
        error_metadata(&status, "field").as_deref(),
        Some("fixtures")
    );
    let expected = format!("{}:3:", file.display());
    assert!(status.message().contains(&expected), "{}", status.message());
    assert!(
        status.message().contains("`persons[0].iin`"),
        "{}",
        status.message()
    );
    assert_eq!(surname(), "Командная", "the old fixtures stay in force");

    std::fs::write(
        &file,
        r#"{ "persons": [ { "iin": "061211600012", "surname": "Исправленная" } ] }"#,
    )
    .unwrap();
    let reloaded = admin
        .reload_fixtures(gateway.authorized(ReloadFixturesRequest {
            documents: vec![FixtureDocument {
                name: "ci.json".to_owned(),
                json: r#"{ "absent": { "iins": ["920704404563"] } }"#.to_owned(),
            }],
        }))
        .await
        .expect("a good reload")
        .into_inner();
    assert_eq!(reloaded.generation, 2);
    assert_eq!(
        reloaded.sources,
        [
            "builtin".to_owned(),
            file.display().to_string(),
            "ci.json".to_owned()
        ]
    );
    assert_eq!(surname(), "Исправленная");
    assert!(
        gateway
            .running
            .registry_data
            .person("920704404563")
            .is_none()
    );
    refusal(
        admin
            .reload_fixtures(ReloadFixturesRequest::default())
            .await,
        Code::Unauthenticated,
        "UNAUTHENTICATED",
    );
}

/// A registry server of its own on a loopback port, over its own data.
struct RemoteRegistry {
    url: String,
    data: Arc<RegistryData>,
    stop: Option<oneshot::Sender<()>>,
}

impl RemoteRegistry {
    async fn start_persons(fixtures: &str) -> Self {
        Self::start(fixtures, PersonRegistry::new).await
    }

    async fn start<R: shep_registries::Registry>(
        fixtures: &str,
        registry: impl FnOnce(Arc<RegistryData>) -> R,
    ) -> Self {
        let data = Arc::new(RegistryData::new(&PopulationConfig::default(), 100).unwrap());
        data.reload(&[shep_registries::fixtures::FixtureSource::inline(
            "remote.json",
            fixtures,
        )])
        .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let served = registry(data.clone());
        let serving = data.clone();
        tokio::spawn(async move {
            shep::cli::serve_registry_on(listener, served, serving, "remote-token", async {
                let _ = stopped.await;
            })
            .await
            .expect("serving the registry");
        });
        Self {
            url,
            data,
            stop: Some(stop),
        }
    }
}

impl Drop for RemoteRegistry {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

#[tokio::test]
async fn a_remote_registry_is_plugged_in_by_configuration() {
    // ГБД ФЛ and ЕНИС of "another team", with data the built-in ones lack.
    let persons = RemoteRegistry::start_persons(
        r#"{ "persons": [ { "iin": "850315301235", "surname": "Удалённый" } ] }"#,
    )
    .await;
    let attorneys = RemoteRegistry::start(
        r#"{ "powers_of_attorney": [ { "number": "REMOTE-1", "principal_iin": "850315301235",
              "representative_iin": "780521307893", "issue_date": "2025-01-01",
              "valid_until": "2030-01-01" } ] }"#,
        PowerOfAttorneyRegistry::new,
    )
    .await;
    let gateway = TestGateway::builder()
        .registry_url("gbdfl", &persons.url)
        .registry_url("enis", &attorneys.url)
        .start()
        .await;
    assert_eq!(gateway.running.in_process, ["gbdul"]);

    let operator = gateway.operator();
    let body = operator.request("GbdflInfoByIin_v1", iin(APPLICANT_IIN));
    let response = call(&gateway, &operator, body)
        .await
        .expect("remote ГБД ФЛ");
    let Some(Record::Person(person)) = response.lookup.unwrap().record else {
        panic!("expected a person");
    };
    assert_eq!(
        person.surname, "Удалённый",
        "answered by the remote registry"
    );

    // The service-centre flow uses both remote registries.
    apply(
        &gateway,
        ESIL_SERVICE,
        iin(APPLICANT_IIN),
        Some(("REMOTE-1", REPRESENTATIVE)),
    )
    .await
    .expect("checked in the remote ЕНИС");
    refusal(
        apply(
            &gateway,
            ESIL_SERVICE,
            iin(APPLICANT_IIN),
            Some(("850315301235-01", "920704404563")),
        )
        .await,
        Code::PermissionDenied,
        "POWER_OF_ATTORNEY_INVALID",
    );

    // The remote registry audited the lookups it answered, and its own admin
    // service shows them.
    let mut remote_admin = RegistryAdminClient::new(connect(&persons.url).await);
    let mut request = tonic::Request::new(AccessLogRequest {
        subject: APPLICANT_IIN.to_owned(),
        ..AccessLogRequest::default()
    });
    request
        .metadata_mut()
        .insert("authorization", "Bearer remote-token".parse().unwrap());
    let log = remote_admin.access_log(request).await.unwrap().into_inner();
    assert_eq!(log.records.len(), 3);
    assert!(log.records.iter().all(|record| record.registry == "gbdfl"));
    assert_eq!(
        persons
            .data
            .audit()
            .query(&AccessLogRequest::default())
            .records
            .len(),
        3
    );
    // The gateway's admin API answers for its in-process registries only.
    refusal(
        gateway
            .admin()
            .access_log(gateway.authorized(AccessLogRequest {
                registry: "gbdfl".to_owned(),
                ..AccessLogRequest::default()
            }))
            .await,
        Code::InvalidArgument,
        "INVALID_FIELD",
    );

    // A registry that goes away is REGISTRY_UNAVAILABLE, not "no data".
    drop(persons);
    shep_tests::eventually(shep_tests::PATIENCE, async || {
        let body = operator.request("GbdflInfoByIin_v1", iin(APPLICANT_IIN));
        match call(&gateway, &operator, body).await {
            Err(status) if status.code() == Code::Unavailable => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
}

#[tokio::test]
async fn the_population_can_be_looked_at_from_the_command_line() {
    let run = run_shep(&["population", "show", APPLICANT_IIN]).await;
    let out = run.ok();
    assert!(out.contains("Серикбаев Нурлан Маратович"), "{out}");
    assert!(out.contains("594230100"), "{out}");
    let run = run_shep(&["population", "show", "850315301235-02"]).await;
    assert!(run.ok().contains("REVOKED 2025-10-01"));
    let run = run_shep(&["population", "show", "100440123456"]).await;
    assert!(run.ok().contains("ТОО «Каспий Архив Сервис»"));
    let run = run_shep(&["population", "show", "791028302728"]).await;
    assert!(!run.status.success());
    assert!(run.stderr.contains("нет данных"), "{}", run.stderr);
    // A wrong check digit is refused, not shown.
    let run = run_shep(&["population", "show", "791028302729"]).await;
    assert!(!run.status.success());
    assert!(
        run.stderr.contains("check digit is 9, expected 8"),
        "{}",
        run.stderr
    );
    let run = run_shep(&["population", "sample", "--count", "3", "--seed", "9"]).await;
    let out = run.ok();
    assert_eq!(out.matches("ИИН").count(), 3, "{out}");
    // The same seed shows the same people.
    let again = run_shep(&["population", "sample", "--count", "3", "--seed", "9"]).await;
    assert_eq!(again.ok(), out);
}

#[tokio::test]
async fn a_malformed_power_of_attorney_is_an_invalid_field() {
    // A power of attorney with an empty number is a malformed request, not a
    // lookup of nothing.
    let gateway = TestGateway::start().await;
    let status = refusal(
        apply(
            &gateway,
            ESIL_SERVICE,
            iin(APPLICANT_IIN),
            Some(("", REPRESENTATIVE)),
        )
        .await,
        Code::InvalidArgument,
        "INVALID_FIELD",
    );
    assert_eq!(
        error_metadata(&status, "field").as_deref(),
        Some("power_of_attorney.number")
    );
    let status = refusal(
        apply(
            &gateway,
            ESIL_SERVICE,
            iin(APPLICANT_IIN),
            Some(("850315301235-01", "12345")),
        )
        .await,
        Code::InvalidArgument,
        "INVALID_FIELD",
    );
    assert_eq!(
        error_metadata(&status, "field").as_deref(),
        Some("power_of_attorney.representative_iin")
    );
}

#[tokio::test]
async fn a_registry_url_the_gateway_cannot_use_stops_it_naming_the_key() {
    // TLS to a registry is not spoken; a URL without a port names no server.
    for url in ["https://127.0.0.1:7711", "http://127.0.0.1"] {
        let error = TestGateway::builder()
            .registry_url("gbdul", url)
            .try_start()
            .await
            .expect_err("a URL the adapter cannot use");
        let text = format!("{error:#}");
        assert!(
            text.contains("`registries.gbdul.url`") && text.contains(url),
            "{text}"
        );
    }
}
