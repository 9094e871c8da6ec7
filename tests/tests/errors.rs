//! The error catalogue: `shep errors` prints the table docs/ERRORS.md holds,
//! and refusals from a running gateway carry catalogued reasons with the
//! catalogue's codes.

use serde_json::Value;
use shep_gateway::error::{TABLE_BEGIN, TABLE_END, code_name, lookup};
use shep_proto::admin::v1::ListRoutesRequest;
use shep_proto::envelope::v1::{Reason, SignedEnvelope};
use shep_tests::*;
use tonic::Status;

/// The table between the markers of docs/ERRORS.md.
fn documented_table() -> String {
    let text = std::fs::read_to_string(workspace_root().join("docs/ERRORS.md"))
        .expect("reading docs/ERRORS.md");
    let start = text.find(TABLE_BEGIN).expect("the begin marker") + TABLE_BEGIN.len();
    let end = text.find(TABLE_END).expect("the end marker");
    text[start..end].trim_start_matches('\n').to_owned()
}

#[tokio::test]
async fn shep_errors_prints_exactly_the_table_of_docs_errors_md() {
    let printed = run_shep(&["errors", "--format", "markdown"]).await;
    assert_eq!(
        printed.ok(),
        documented_table(),
        "docs/ERRORS.md is out of date: put `shep errors --format markdown` between its markers"
    );
    // Markdown is the default.
    assert_eq!(run_shep(&["errors"]).await.ok(), printed.stdout);
}

#[tokio::test]
async fn shep_errors_as_json_lists_every_reason_with_its_advice() {
    let printed = run_shep(&["errors", "--format", "json"]).await;
    let entries: Value = serde_json::from_str(printed.ok()).expect("JSON");
    let entries = entries.as_array().expect("an array");
    let reason = |name: &str| {
        entries
            .iter()
            .find(|entry| entry["reason"] == name)
            .unwrap_or_else(|| panic!("`{name}` listed"))
    };
    let unavailable = reason("REGISTRY_UNAVAILABLE");
    assert_eq!(unavailable["code"], "UNAVAILABLE");
    assert_eq!(unavailable["code_number"], 14);
    assert_eq!(unavailable["retry"], "retry-after-backoff");
    assert_eq!(reason("NO_DATA")["retry"], "do-not-retry");
    assert_eq!(reason("UNKNOWN_SERVICE")["shep_code"], "SCE004");
    assert!(reason("INJECTED_FAULT")["code"].is_null());
    // Every reason of the contract but the zero value, never sent.
    let contract: Vec<Reason> = (1..256)
        .filter_map(|number| Reason::try_from(number).ok())
        .collect();
    for name in contract
        .iter()
        .filter(|name| **name != Reason::InjectedFault)
    {
        assert!(reason(name.as_str_name())["code"].is_string());
    }
    assert_eq!(entries.len(), contract.len());
}

/// Asserts that `status` carries a catalogued reason with its catalogued code.
fn catalogued(status: Status, expected_reason: &str) -> Status {
    let name = reason(&status);
    assert_eq!(name, expected_reason, "{}", describe(&status));
    let entry = lookup(&name).unwrap_or_else(|| panic!("`{name}` is not catalogued"));
    assert_eq!(
        entry.code.map(code_name),
        Some(code_name(status.code())),
        "`{name}`"
    );
    status
}

#[tokio::test]
async fn refusals_over_the_wire_carry_catalogued_reasons_and_codes() {
    let gw = TestGateway::start().await;
    let applicant = gw.applicant();
    let operator = gw.operator();

    let unknown = applicant.request("no-such-service", iin(APPLICANT_IIN));
    let refused = gw.gateway().call(applicant.seal(&unknown).unwrap()).await;
    catalogued(refused.expect_err("unknown service"), "UNKNOWN_SERVICE");

    let mut forged = applicant
        .seal(&applicant.request(LOOKUP_SERVICE, iin(APPLICANT_IIN)))
        .unwrap();
    let last = forged.signature.as_mut().unwrap().value.last_mut().unwrap();
    *last ^= 1;
    let refused = gw.gateway().call(forged).await;
    catalogued(
        refused.expect_err("a forged signature"),
        "SIGNATURE_INVALID",
    );

    // A valid IIN the built-in fixtures mark absent: «нет данных».
    let absent = operator.request(LOOKUP_SERVICE, iin("791028302728"));
    let refused = gw.gateway().call(operator.seal(&absent).unwrap()).await;
    catalogued(refused.expect_err("no data"), "NO_DATA");

    let refused = gw.admin().list_routes(ListRoutesRequest {}).await;
    catalogued(refused.expect_err("no admin token"), "UNAUTHENTICATED");
}

#[tokio::test]
async fn a_message_over_the_configured_limit_is_too_large_with_the_limit() {
    const LIMIT: usize = 1 << 20;
    let gw = TestGateway::builder()
        .configure(|config| config.limits.max_message_bytes = LIMIT)
        .start()
        .await;
    // One byte over the limit: refused before the gateway reads it, yet in
    // the catalogue's terms (the edge rewrites tonic's OUT_OF_RANGE).
    let oversized = SignedEnvelope {
        xml_data: Vec::new(),
        body: vec![0; LIMIT + 1],
        signature: None,
    };
    let refused = gw
        .gateway()
        .call(oversized)
        .await
        .expect_err("over the limit");
    let refused = catalogued(refused, "TOO_LARGE");
    assert_eq!(refused.code(), tonic::Code::ResourceExhausted);
    assert_eq!(
        error_metadata(&refused, "limit").as_deref(),
        Some(LIMIT.to_string().as_str())
    );
    // Just under the limit the gateway reads it and answers from its checks.
    let almost = SignedEnvelope {
        xml_data: Vec::new(),
        body: vec![0; LIMIT - 64],
        signature: None,
    };
    let refused = gw.gateway().call(almost).await.expect_err("not a body");
    catalogued(refused, "MALFORMED_BODY");
}
