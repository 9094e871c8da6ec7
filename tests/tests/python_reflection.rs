//! A real third-party gRPC client: `tests/python/reflect_and_call.py` (only
//! `grpcio`, `grpcio-reflection`, `grpcio-health-checking`, `protobuf` and
//! `cryptography`) finds the gateway's services by server reflection, builds
//! its message classes from the reflected descriptors, checks health, and makes
//! a signed ГБД ФЛ lookup, with no .proto file and no generated code.
//!
//! These tests fail, rather than skip, without python3: the packages come
//! from [`python()`], which installs the pinned ones under the target
//! directory on first use.

use std::path::Path;

use serde_json::Value;
use shep_gateway::health::registry_name;
use shep_tests::*;

/// Runs the script against `gw` as the demo applicant and returns its JSON.
async fn reflect_and_call(gw: &TestGateway) -> Value {
    let (key, cert) = gw.data_dir().identity("applicant");
    python()
        .run_json(
            "reflect_and_call.py",
            &[
                "--target",
                &gw.url(),
                "--key",
                key.to_str().unwrap(),
                "--cert",
                cert.to_str().unwrap(),
                "--iin",
                APPLICANT_IIN,
            ],
        )
        .await
}

fn names(list: &Value) -> Vec<&str> {
    list.as_array()
        .expect("a list of services")
        .iter()
        .map(|name| name.as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn a_python_client_finds_the_services_by_reflection_and_makes_a_signed_lookup() {
    // The first use installs the packages: done before the gateway starts.
    python();
    let gw = TestGateway::start().await;
    let result = reflect_and_call(&gw).await;

    let v1 = names(&result["services"]["v1"]);
    for expected in [
        "shep.gateway.v1.Gateway",
        "shep.admin.v1.Admin",
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
    ] {
        assert!(v1.contains(&expected), "{expected} in {v1:?}");
    }
    assert_eq!(names(&result["services"]["v1alpha"]), v1);
    assert_eq!(result["v1_file"], "shep/gateway/v1/gateway.proto");

    assert_eq!(result["health"][""], "SERVING");
    assert_eq!(
        result["health"]["shep.registry.v1.Registry/gbdfl"],
        "SERVING"
    );

    let info = &result["call"]["response_info"];
    assert_eq!(info["status"]["code"], "00000");
    assert_eq!(info["status"]["message"], "Сообщение успешно обработано");
    assert_eq!(info["correlation_id"].as_str().unwrap().len(), 36);
    let lookup = &result["call"]["lookup"];
    assert_eq!(lookup["result"]["code"], "00000");
    let person = &lookup["person"];
    assert_eq!(person["iin"], APPLICANT_IIN);
    assert_eq!(person["surname"], "Серикбаев");
    assert_eq!(person["name"], "Нурлан");
    assert_eq!(person["patronymic"], "Маратович");
    assert_eq!(person["birth_date"], "1985-03-15");
    assert_eq!(person["gender"]["code"], "1");
    assert_eq!(person["reg_address"]["kato"], "594230100");
}

#[tokio::test]
async fn a_python_client_sees_a_registry_flipped_to_not_serving() {
    // The first use installs the packages: done before the gateway starts.
    python();
    let gw = TestGateway::start().await;
    gw.running
        .health
        .set_override(
            &registry_name("gbdfl"),
            Some(tonic_health::ServingStatus::NotServing),
        )
        .await;
    let result = reflect_and_call(&gw).await;
    assert_eq!(
        result["health"]["shep.registry.v1.Registry/gbdfl"],
        "NOT_SERVING"
    );
    assert_eq!(result["health"][""], "SERVING");
}

/// The number in a proto3 JSON integer field (64-bit ones are strings).
fn number(value: &Value) -> u64 {
    value
        .as_u64()
        .or_else(|| value.as_str().and_then(|text| text.parse().ok()))
        .unwrap_or(0)
}

#[tokio::test]
async fn the_testing_guides_python_example_runs_against_the_gateway() {
    // The first use installs the packages: done before the gateway starts.
    python();
    let gw = TestGateway::start().await;
    let (key, cert) = gw.data_dir().identity("applicant");
    let token = gw.data_dir().admin_token();
    let token = if token.exists() {
        token
    } else {
        let path = gw.temp_dir().join("admin-token");
        std::fs::write(&path, gw.admin_token()).unwrap();
        path
    };
    let mut command = python().command();
    command
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("python/toolkit_example.py"))
        .args([
            "--target",
            &gw.addr().to_string(),
            "--token-file",
            token.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
            "--cert",
            cert.to_str().unwrap(),
            "--iin",
            APPLICANT_IIN,
        ]);
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .expect("running python3");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "toolkit_example.py failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let seen: Value = serde_json::from_str(&stdout).unwrap();

    assert_eq!(
        seen["unauthenticated"][0], 401,
        "{}",
        seen["unauthenticated"]
    );
    assert_eq!(seen["unauthenticated"][1]["reason"], "UNAUTHENTICATED");
    assert_eq!(seen["fault"][0], 200, "{}", seen["fault"]);
    assert_eq!(seen["fault"][1]["session"], seen["session"]);
    assert_eq!(seen["lookups"][0]["code"], "UNAVAILABLE");
    assert_eq!(seen["lookups"][0]["details"], "ГБД ФЛ недоступна");
    assert_eq!(seen["lookups"][1]["code"], "OK");
    let verdict = &seen["verify"][1];
    assert_eq!(verdict["satisfied"], true, "{verdict}");
    assert_eq!(number(&verdict["count"]), 2);
    assert_eq!(seen["unused"][0], 200);
    // Two calls, each an ingress and a registry exchange.
    assert_eq!(
        number(&seen["reset"][1]["exchangesRemoved"]),
        4,
        "{}",
        seen["reset"]
    );
    assert_eq!(number(&seen["reset"][1]["faultsRemoved"]), 1);
}
