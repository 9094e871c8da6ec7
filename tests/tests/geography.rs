//! District geography over real sockets: the seed services routed by the
//! district prefix the regulations name (an applicant of another district of
//! the region is refused), and each provider system signing with its own
//! employee and BIN, whom ГБД ФЛ and ГБД ЮЛ know (and a data directory of
//! an older release getting those identities).

use std::collections::HashSet;

use shep_gateway::config::REGISTRY_IDS;
use shep_gateway::routes::{DEFAULT_ROUTES, Role, RoutingTable};
use shep_gateway::server::{DataDir, demo_employee, prepare_data_dir};
use shep_nuc::ca::{CertificateAuthority, IdentitySpec, certificates};
use shep_nuc::verify::certificate_identity;
use shep_proto::envelope::v1::{Channel, Subject, subject};
use shep_proto::registry::v1::lookup_response::Record;
use shep_tests::{
    APPLICANT_IIN, ESIL_PROVIDER, ESIL_PROVIDER_BIN, ESIL_SERVICE, LOOKUP_SERVICE, Participant,
    TAYYNSHA_APPLICANT_IIN, TempDir, TestGateway, iin, reason, refusal,
};
use tonic::Code;

const TAYYNSHA_SERVICE: &str = "targeted-social-assistance-tayynsha";
const TAYYNSHA_PROVIDER: &str = "is-mio-sko-tayynsha-social";
/// Ахметова Айгерим, registered in Петропавловск: СКО, but neither district.
const PETROPAVLOVSK_IIN: &str = "920704404563";

fn default_routes() -> RoutingTable {
    RoutingTable::from_toml(DEFAULT_ROUTES, "embedded", REGISTRY_IDS).expect("the default table")
}

fn bin(bin: &str) -> Subject {
    Subject {
        id: Some(subject::Id::Bin(bin.to_owned())),
    }
}

async fn submit(
    gw: &TestGateway,
    who: &Participant,
    service: &str,
    applicant: &str,
) -> Result<shep_proto::gateway::v1::Receipt, tonic::Status> {
    let body = who.application(service, iin(applicant), "{}", Vec::new());
    gw.gateway()
        .submit(who.seal(&body).expect("signing"))
        .await
        .map(|receipt| receipt.into_inner())
}

async fn lookup(
    gw: &TestGateway,
    who: &Participant,
    service: &str,
    subject: Subject,
) -> Result<Record, tonic::Status> {
    let envelope = who.seal(&who.request(service, subject)).expect("signing");
    let response = gw.gateway().call(envelope).await?.into_inner();
    Ok(response
        .lookup
        .and_then(|lookup| lookup.record)
        .expect("a record"))
}

#[tokio::test]
async fn a_district_service_takes_its_own_district_and_refuses_the_rest_of_the_region() {
    let gw = TestGateway::start().await;
    let operator = gw.operator();

    // Есильский район (5942…): the district's education department.
    let receipt = submit(&gw, &operator, ESIL_SERVICE, APPLICANT_IIN)
        .await
        .expect("the demo applicant lives in Есильский район");
    assert_eq!(receipt.provider_id, ESIL_PROVIDER);

    // Тайыншинский район and Петропавловск are СКО (59…) too, but not Есиль's.
    for (applicant, kato) in [
        (TAYYNSHA_APPLICANT_IIN, "596020100"),
        (PETROPAVLOVSK_IIN, "591010000"),
    ] {
        let status = refusal(
            submit(&gw, &operator, ESIL_SERVICE, applicant).await,
            Code::FailedPrecondition,
            "NO_PROVIDER_FOR_REGION",
        );
        assert!(status.message().contains(kato), "{}", status.message());
    }

    // And the other way round: Тайынша's department takes Тайынша's resident
    // on the portal, not the demo applicant of Есильский район.
    let resident = gw.participant(
        "pep",
        Channel::Portal,
        &IdentitySpec::individual(TAYYNSHA_APPLICANT_IIN, "ОМАРОВА САУЛЕ"),
    );
    let receipt = submit(&gw, &resident, TAYYNSHA_SERVICE, TAYYNSHA_APPLICANT_IIN)
        .await
        .expect("a resident of Тайыншинский район");
    assert_eq!(receipt.provider_id, TAYYNSHA_PROVIDER);
    refusal(
        submit(&gw, &gw.applicant(), TAYYNSHA_SERVICE, APPLICANT_IIN).await,
        Code::FailedPrecondition,
        "NO_PROVIDER_FOR_REGION",
    );
}

#[tokio::test]
async fn each_provider_signs_with_its_own_employee_and_bin_and_only_for_itself() {
    let gw = TestGateway::start().await;
    let routes = default_routes();
    let providers: Vec<String> = routes
        .systems()
        .into_iter()
        .filter(|system| system.role == Role::Provider)
        .map(|system| system.id.clone())
        .collect();
    assert_eq!(providers.len(), 5, "{providers:?}");

    let mut seen = Vec::new();
    for provider in &providers {
        let employee = demo_employee(&routes, provider).expect("an operator");
        let bin_of_provider = employee.bin.clone().expect("every provider has a BIN");
        // The demo identity carries the provider's own employee and BIN.
        let signer = gw.signer_of(&format!("provider-{provider}"));
        let identity = certificate_identity(signer.certificate_der()).unwrap();
        assert_eq!(identity.iin.as_deref(), Some(employee.iin.as_str()));
        assert_eq!(identity.bin.as_deref(), Some(bin_of_provider.as_str()));
        seen.push((employee.iin.clone(), bin_of_provider.clone()));

        // Accepted for its own system: ГБД ЮЛ knows the organisation (headed
        // by the employee), ГБД ФЛ the employee.
        let desk = gw.provider(provider);
        let Record::LegalEntity(entity) =
            lookup(&gw, &desk, "GbdulInfoByBin_v2", bin(&bin_of_provider))
                .await
                .unwrap_or_else(|status| panic!("{provider}: {status}"))
        else {
            panic!("{provider}: not a legal entity");
        };
        assert_eq!(entity.head_iin, employee.iin, "{provider}");
        assert!(
            entity
                .full_name_ru
                .starts_with("Государственное учреждение"),
            "{provider}: {}",
            entity.full_name_ru
        );
        let Record::Person(person) = lookup(&gw, &desk, LOOKUP_SERVICE, iin(&employee.iin))
            .await
            .unwrap_or_else(|status| panic!("{provider}: {status}"))
        else {
            panic!("{provider}: not a person");
        };
        assert_eq!(
            entity.head_name,
            format!("{} {} {}", person.surname, person.name, person.patronymic)
        );

        // Refused when signing for any other provider.
        for other in providers.iter().filter(|other| *other != provider) {
            let impostor = Participant::new(
                other,
                Channel::ProviderDesk,
                gw.signer_of(&format!("provider-{provider}")),
            );
            let status = lookup(&gw, &impostor, LOOKUP_SERVICE, iin(APPLICANT_IIN))
                .await
                .expect_err("another provider's employee");
            assert_eq!(
                reason(&status),
                "IDENTITY_MISMATCH",
                "{provider} as {other}"
            );
        }
    }
    let iins: HashSet<&String> = seen.iter().map(|(iin, _)| iin).collect();
    let bins: HashSet<&String> = seen.iter().map(|(_, bin)| bin).collect();
    assert_eq!(
        (iins.len(), bins.len()),
        (providers.len(), providers.len()),
        "distinct employees and BINs: {seen:?}"
    );
}

#[test]
fn a_data_directory_from_before_gets_each_provider_its_own_identity() {
    let dir = TempDir::new("shep-geography");
    let data = DataDir(dir.path().to_owned());
    let routes = default_routes();
    let url = "http://127.0.0.1:1";
    prepare_data_dir(&data, &routes, url).expect("a fresh data directory");
    let read = |name: &str| std::fs::read(data.identity(name).1).unwrap();
    let applicant = read("applicant");
    // As an older release left it: the shared employee and Есиль's BIN.
    let name = format!("provider-{TAYYNSHA_PROVIDER}");
    CertificateAuthority::load(&data.nuc())
        .unwrap()
        .issue(&IdentitySpec::employee(
            "731203356787",
            ESIL_PROVIDER_BIN,
            "БЕКМУХАНОВ АРМАН",
            TAYYNSHA_PROVIDER,
        ))
        .unwrap()
        .write(&data.identities(), &name)
        .unwrap();

    prepare_data_dir(&data, &routes, url).expect("the same directory again");
    let der = certificates(&data.identity(&name).1).unwrap().remove(0);
    let identity = certificate_identity(&der).unwrap();
    let employee = demo_employee(&routes, TAYYNSHA_PROVIDER).unwrap();
    assert_eq!(identity.iin, Some(employee.iin));
    assert_eq!(identity.bin, employee.bin);
    assert_eq!(read("applicant"), applicant, "the others are kept");
}
