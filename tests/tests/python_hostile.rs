//! Issue 13's table, rerun by a third-party client that knows nothing of the
//! project's code (`tests/python/hostile_client.py`, grpcio only), against
//! the gateway's default (authenticated) configuration: a provider's stream
//! and an applicant's history claimed without a credential answer
//! UNAUTHENTICATED with `NOT_AUTHENTICATED`; bytes that
//! are not the RPC's message answer INVALID_ARGUMENT with `MALFORMED_BODY`,
//! a message over `limits.max_message_bytes` answers RESOURCE_EXHAUSTED with
//! `TOO_LARGE` and the limit, each with an ErrorInfo, and the gateway keeps
//! serving.

use shep_tests::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_and_oversized_requests_get_stable_reasons_from_a_python_client() {
    let python = tokio::task::spawn_blocking(python).await.unwrap();
    const LIMIT: usize = 4 << 20;
    let gw = TestGateway::builder()
        .authenticated()
        .configure(|config| config.limits.max_message_bytes = LIMIT)
        .start()
        .await;
    let dir = gw.data_dir();
    let (key, cert) = dir.system_identity("pep");
    let path = |path: &std::path::Path| path.to_str().unwrap().to_owned();
    let result = python
        .run_json(
            "hostile_client.py",
            &[
                "--target",
                &gw.url(),
                "--big",
                &(6 << 20).to_string(),
                "--ca",
                &path(&dir.root_certificate()),
                "--cert",
                &path(&cert),
                "--key",
                &path(&key),
            ],
        )
        .await;
    println!("{result:#}");
    for row in ["subscribe_as_a_provider", "history_of_someone"] {
        assert_eq!(result[row]["code"], "UNAUTHENTICATED", "{row}: {result}");
        assert_eq!(
            result[row]["error_info"]["reason"], "NOT_AUTHENTICATED",
            "{row}: {result}"
        );
    }
    for row in ["random_submit", "random_get_status"] {
        assert_eq!(result[row]["code"], "INVALID_ARGUMENT", "{row}: {result}");
        assert_eq!(
            result[row]["error_info"]["reason"], "MALFORMED_BODY",
            "{row}: {result}"
        );
        assert_eq!(result[row]["error_info"]["domain"], "shep.kz");
    }
    let big = &result["big_submit"];
    assert_eq!(big["code"], "RESOURCE_EXHAUSTED", "{result}");
    assert_eq!(big["error_info"]["reason"], "TOO_LARGE", "{result}");
    assert_eq!(
        big["error_info"]["metadata"]["limit"],
        LIMIT.to_string(),
        "{result}"
    );
    assert_eq!(result["still_serving"], true);
}
