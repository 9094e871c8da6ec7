//! The Admin API as JSON over HTTP on the gateway's port: the same answers and
//! refusals as gRPC, HTTP statuses from the gRPC codes, and an OpenAPI
//! document with a path for every method of `shep.admin.v1.Admin`.

use prost::Message as _;
use prost_reflect::{DescriptorPool, DynamicMessage, SerializeOptions};
use serde_json::Value;
use shep_proto::admin::v1::{GetRouteRequest, ListRoutesRequest};
use shep_tests::*;
use tonic::Code;

async fn post(gw: &TestGateway, method: &str, body: &str) -> HttpResponse {
    http_post_json(
        gw.addr(),
        &format!("/admin/v1/{method}"),
        Some(gw.admin_token()),
        body,
    )
    .await
}

/// Asserts a JSON error answer: HTTP status, gRPC code name and reason.
fn assert_refused(response: &HttpResponse, status: u16, code: &str, reason: &str) -> Value {
    let body = response.json();
    assert_eq!(response.status, status, "{body}");
    assert_eq!(
        response.header("content-type"),
        Some("application/json"),
        "{body}"
    );
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["status"], status, "{body}");
    assert_eq!(body["reason"], reason, "{body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    body
}

/// The shep descriptors (for the proto3 JSON form of gRPC answers).
fn pool() -> DescriptorPool {
    DescriptorPool::decode(shep_proto::FILE_DESCRIPTOR_SET).expect("the shep descriptor set")
}

/// The Admin service's methods, from the descriptor set the binary embeds.
fn admin_methods() -> Vec<prost_types::MethodDescriptorProto> {
    let set = prost_types::FileDescriptorSet::decode(shep_proto::FILE_DESCRIPTOR_SET)
        .expect("the shep descriptor set");
    set.file
        .iter()
        .filter(|file| file.package() == "shep.admin.v1")
        .flat_map(|file| file.service.iter())
        .filter(|service| service.name() == "Admin")
        .flat_map(|service| service.method.clone())
        .collect()
}

#[tokio::test]
async fn list_routes_as_json_equals_the_grpc_answer() {
    let gw = TestGateway::start().await;
    let answer = gw
        .admin()
        .list_routes(gw.authorized(ListRoutesRequest {}))
        .await
        .expect("ListRoutes over gRPC")
        .into_inner();
    let descriptor = pool()
        .get_message_by_name("shep.admin.v1.ListRoutesResponse")
        .unwrap();
    let expected = DynamicMessage::decode(descriptor, answer.encode_to_vec().as_slice())
        .unwrap()
        .serialize_with_options(
            serde_json::value::Serializer,
            &SerializeOptions::new().skip_default_fields(false),
        )
        .unwrap();

    // `{}`, an empty body, and curl's `-d` default content type all mean the
    // empty request.
    let curl_like = http_request(
        gw.addr(),
        "POST",
        "/admin/v1/ListRoutes",
        &[
            ("content-type", "application/x-www-form-urlencoded"),
            ("authorization", &format!("Bearer {}", gw.admin_token())),
        ],
        b"{}",
    )
    .await;
    for response in [
        post(&gw, "ListRoutes", "{}").await,
        post(&gw, "ListRoutes", "").await,
        curl_like,
    ] {
        assert_eq!(response.status, 200, "{}", response.text());
        assert_eq!(response.header("content-type"), Some("application/json"));
        assert_eq!(response.json(), expected);
    }

    // The proto3 JSON mapping, spelled out: lowerCamelCase names, enums by name,
    // maps as objects, defaults present.
    let json = post(&gw, "ListRoutes", "{}").await.json();
    assert_eq!(json["source"], "embedded");
    let routes = json["routes"].as_array().unwrap();
    assert_eq!(routes.len(), answer.routes.len());
    let esil = routes
        .iter()
        .find(|route| route["serviceId"] == ESIL_SERVICE)
        .expect("the Esil route");
    assert_eq!(esil["kind"], "application");
    assert_eq!(esil["channels"][0], "PORTAL");
    assert!(esil["providersByRegion"].is_object(), "{esil}");
    let lookup = routes
        .iter()
        .find(|route| route["serviceId"] == LOOKUP_SERVICE)
        .expect("the lookup route");
    assert_eq!(lookup["defaultProvider"], "", "{lookup}");
}

#[tokio::test]
async fn get_route_answers_a_route_and_404_unknown_service_for_an_unknown_one() {
    let gw = TestGateway::start().await;
    // Both the JSON name and the proto field name are accepted.
    for body in [
        format!(r#"{{"serviceId": "{ESIL_SERVICE}"}}"#),
        format!(r#"{{"service_id": "{ESIL_SERVICE}"}}"#),
    ] {
        let response = post(&gw, "GetRoute", &body).await;
        assert_eq!(response.status, 200, "{}", response.text());
        assert_eq!(response.json()["serviceId"], ESIL_SERVICE);
    }

    let grpc = gw
        .admin()
        .get_route(gw.authorized(GetRouteRequest {
            service_id: "no-such-service".to_owned(),
        }))
        .await
        .unwrap_err();
    let response = post(&gw, "GetRoute", r#"{"serviceId": "no-such-service"}"#).await;
    let body = assert_refused(&response, 404, "NOT_FOUND", &reason(&grpc));
    assert_eq!(body["reason"], "UNKNOWN_SERVICE");
    assert_eq!(body["message"], grpc.message());
    assert_eq!(body["metadata"]["shep_code"], "SCE004");
    assert_eq!(
        body["details"][0]["@type"],
        "type.googleapis.com/google.rpc.ErrorInfo"
    );
    assert_eq!(body["details"][0]["reason"], "UNKNOWN_SERVICE");
    assert_eq!(body["details"][0]["domain"], "shep.kz");
}

#[tokio::test]
async fn a_missing_or_wrong_token_is_401_with_the_admins_reason() {
    let gw = TestGateway::start().await;
    let grpc = gw
        .admin()
        .list_routes(ListRoutesRequest {})
        .await
        .unwrap_err();
    assert_eq!(grpc.code(), Code::Unauthenticated);

    let missing = http_post_json(gw.addr(), "/admin/v1/ListRoutes", None, "{}").await;
    let wrong = http_post_json(
        gw.addr(),
        "/admin/v1/ListRoutes",
        Some("not-the-token"),
        "{}",
    )
    .await;
    for response in [missing, wrong] {
        let body = assert_refused(&response, 401, "UNAUTHENTICATED", &reason(&grpc));
        assert_eq!(body["message"], grpc.message());
    }
}

#[tokio::test]
async fn malformed_json_and_other_media_types_are_refused_with_stable_reasons() {
    let gw = TestGateway::start().await;
    let broken = post(&gw, "GetRoute", "{\"serviceId\": ").await;
    let body = assert_refused(&broken, 400, "INVALID_ARGUMENT", "MALFORMED_BODY");
    assert_eq!(body["metadata"]["line"], "1");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("shep.admin.v1.GetRouteRequest"),
        "{body}"
    );
    for bad in [
        r#"{"noSuchField": 1}"#,
        r#"{"serviceId": 42}"#,
        r#"["serviceId"]"#,
        "{} trailing",
    ] {
        assert_refused(
            &post(&gw, "GetRoute", bad).await,
            400,
            "INVALID_ARGUMENT",
            "MALFORMED_BODY",
        );
    }

    let xml = http_request(
        gw.addr(),
        "POST",
        "/admin/v1/ListRoutes",
        &[
            ("content-type", "application/xml"),
            ("authorization", &format!("Bearer {}", gw.admin_token())),
        ],
        b"<ListRoutesRequest/>",
    )
    .await;
    assert_refused(&xml, 415, "INVALID_ARGUMENT", "UNSUPPORTED_MEDIA_TYPE");
}

#[tokio::test]
async fn an_unknown_method_is_404_and_a_get_is_not_allowed() {
    let gw = TestGateway::start().await;
    let body = assert_refused(
        &post(&gw, "NoSuchMethod", "{}").await,
        404,
        "NOT_FOUND",
        "UNKNOWN_METHOD",
    );
    assert_eq!(body["metadata"]["method"], "NoSuchMethod");
    // Method names are case-sensitive, as in gRPC.
    assert_refused(
        &post(&gw, "listRoutes", "{}").await,
        404,
        "NOT_FOUND",
        "UNKNOWN_METHOD",
    );
    assert_eq!(
        http_get(gw.addr(), "/admin/v1/ListRoutes").await.status,
        405
    );
}

#[tokio::test]
async fn reload_routes_with_a_bad_table_is_400_naming_the_key_and_a_good_one_takes_effect() {
    let gw = TestGateway::start().await;
    let request = serde_json::json!({ "toml": UNKNOWN_SENDER_TABLE }).to_string();
    let response = post(&gw, "ReloadRoutes", &request).await;
    let body = assert_refused(&response, 400, "INVALID_ARGUMENT", "INVALID_FIELD");
    assert_eq!(body["metadata"]["field"], "toml");
    let message = body["message"].as_str().unwrap();
    for named in ["residence-certificate-esil", "senders", "nobody"] {
        assert!(message.contains(named), "{named}: {message}");
    }

    // A valid table over HTTP is the table gRPC clients see.
    let valid = UNKNOWN_SENDER_TABLE.replace(r#"["pep", "nobody"]"#, r#"["pep"]"#);
    let request = serde_json::json!({ "toml": valid }).to_string();
    let response = post(&gw, "ReloadRoutes", &request).await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.json()["source"], "admin-api");
    let listed = gw
        .admin()
        .list_routes(gw.authorized(ListRoutesRequest {}))
        .await
        .unwrap()
        .into_inner();
    let ids: Vec<&str> = listed
        .routes
        .iter()
        .map(|r| r.service_id.as_str())
        .collect();
    assert_eq!(ids, ["residence-certificate-esil"]);
}

/// Every `$ref` in `value`, anywhere.
fn refs<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(target)) = map.get("$ref") {
                out.push(target);
            }
            map.values().for_each(|child| refs(child, out));
        }
        Value::Array(items) => items.iter().for_each(|child| refs(child, out)),
        _ => {}
    }
}

#[tokio::test]
async fn the_openapi_document_has_a_path_per_admin_method_and_every_ref_resolves() {
    let gw = TestGateway::start().await;
    // No token needed to read the description.
    let response = http_get(gw.addr(), "/admin/v1/openapi.json").await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.header("content-type"), Some("application/json"));
    let doc = response.json();

    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.0."),
        "{}",
        doc["openapi"]
    );
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());
    assert_eq!(
        doc["components"]["securitySchemes"]["bearerAuth"]["scheme"],
        "bearer"
    );
    assert_eq!(doc["security"][0]["bearerAuth"], serde_json::json!([]));
    let paths = doc["paths"].as_object().expect("paths");

    let methods = admin_methods();
    assert!(methods.len() >= 7, "{methods:?}");
    assert_eq!(paths.len(), methods.len(), "{:?}", paths.keys());
    for method in &methods {
        let path = format!("/admin/v1/{}", method.name());
        let operation = &paths.get(&path).unwrap_or_else(|| panic!("no path {path}"))["post"];
        assert_eq!(operation["operationId"], method.name(), "{path}");
        let session = &operation["parameters"][0]["$ref"];
        let parameter = doc
            .pointer(session.as_str().unwrap().trim_start_matches('#'))
            .unwrap();
        assert_eq!(
            (&parameter["name"], &parameter["in"]),
            (&Value::from("x-shep-session"), &Value::from("header"))
        );
        if method.client_streaming() || method.server_streaming() {
            assert!(operation["responses"]["501"].is_object(), "{path}");
            continue;
        }
        let schema_of = |pointer: &str, type_name: &str| {
            let schema = operation
                .pointer(pointer)
                .unwrap_or_else(|| panic!("{path}{pointer}"));
            // A message schema is named by the message's full name.
            let full_name = type_name.trim_start_matches('.');
            assert_eq!(
                schema["$ref"],
                format!("#/components/schemas/{full_name}"),
                "{path}"
            );
        };
        schema_of(
            "/requestBody/content/application~1json/schema",
            method.input_type(),
        );
        schema_of(
            "/responses/200/content/application~1json/schema",
            method.output_type(),
        );
        assert!(operation["responses"]["default"]["$ref"].is_string());
    }

    let mut targets = Vec::new();
    refs(&doc, &mut targets);
    assert!(!targets.is_empty());
    for target in targets {
        let pointer = target
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("an external $ref {target}"));
        assert!(doc.pointer(pointer).is_some(), "dangling $ref {target}");
    }

    // Schemas follow the proto3 JSON mapping and carry the .proto comments.
    let schemas = &doc["components"]["schemas"];
    let route = &schemas["shep.admin.v1.Route"];
    assert_eq!(route["properties"]["serviceId"]["type"], "string");
    assert_eq!(route["properties"]["senders"]["type"], "array");
    assert_eq!(
        route["properties"]["providersByRegion"]["additionalProperties"]["type"],
        "string"
    );
    assert_eq!(route["description"], "One routing-table entry.");
    let channels = &route["properties"]["channels"]["items"]["$ref"];
    assert_eq!(channels, "#/components/schemas/shep.envelope.v1.Channel");
    let channel_names = &schemas["shep.envelope.v1.Channel"]["enum"];
    assert!(
        channel_names
            .as_array()
            .unwrap()
            .contains(&Value::from("PORTAL")),
        "{channel_names}"
    );
    let get_route = &paths["/admin/v1/GetRoute"]["post"];
    assert!(
        get_route["description"]
            .as_str()
            .unwrap()
            .contains("UNKNOWN_SERVICE"),
        "{get_route}"
    );
    let error = &schemas["AdminHttpError"];
    for property in ["code", "status", "message", "reason", "metadata", "details"] {
        assert!(error["properties"][property].is_object(), "{property}");
    }
}
