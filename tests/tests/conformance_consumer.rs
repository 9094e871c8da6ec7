//! The consumer kit's verdicts: the example consumer (run as its own
//! process, as a team's system would be) passes every case; each
//! deliberately broken one fails exactly its cases.

use std::collections::BTreeSet;
use std::time::Duration;

use shep::conformance::consumer::{CASES, ConsumerKit, Options, PlayedProvider};
use shep::conformance::provider::Admin;
use shep_tests::*;

/// Runs the consumer kit against `shep conformance example-consumer` with
/// `extra` arguments; the failed cases and the report's text.
async fn grade(extra: &str) -> (BTreeSet<&'static str>, String) {
    let gw = TestGateway::start().await;
    let (key, cert) = gw.data_dir().identity(&format!("provider-{ESIL_PROVIDER}"));
    let command = format!(
        "'{}' conformance example-consumer --gateway {} --data-dir '{}' --timeout 20 {extra}",
        shep_binary().display(),
        gw.url(),
        gw.data_dir().0.display()
    );
    let kit = ConsumerKit {
        admin: Admin {
            channel: gw.channel(),
            token: Some(gw.admin_token().to_owned()),
        },
        consumer_id: "pep".to_owned(),
        command,
        providers: vec![PlayedProvider {
            provider_id: ESIL_PROVIDER.to_owned(),
            channel: gw.channel(),
            key,
            cert,
        }],
        options: Options {
            case_timeout: Duration::from_secs(30),
            only: Vec::new(),
        },
    };
    let report = kit.run().await.expect("the kit runs");
    assert_eq!(report.outcomes.len(), CASES.len());
    // The portal's applications never return to a centre.
    assert_eq!(report.skipped(), 1, "{}", report.text(false));
    let text = report.text(false);
    (report.failed().into_iter().collect(), text)
}

#[tokio::test]
async fn the_example_consumer_passes_every_case() {
    let (failed, text) = grade("").await;
    assert!(failed.is_empty(), "{text}");
}

#[tokio::test]
async fn a_consumer_that_resends_refused_envelopes_fails_the_final_refusals() {
    let (failed, text) = grade("--misbehave retry-everything").await;
    assert_eq!(
        failed,
        BTreeSet::from(["no-data", "final-refusals"]),
        "{text}"
    );
    assert!(text.contains("unchanged"), "{text}");
}

#[tokio::test]
async fn a_consumer_that_gives_up_fails_the_retryable_cases() {
    let (failed, text) = grade("--misbehave give-up").await;
    assert_eq!(
        failed,
        BTreeSet::from(["registry-unavailable", "retryable-refusals"]),
        "{text}"
    );
}

#[tokio::test]
async fn a_consumer_that_does_not_follow_its_application_fails_the_application_cases() {
    let (failed, text) = grade("--misbehave fire-and-forget").await;
    assert_eq!(
        failed,
        BTreeSet::from([
            "not-delivered",
            "slow-provider",
            "term-extension",
            "watch-cut"
        ]),
        "{text}"
    );
}

#[tokio::test]
async fn a_consumer_that_replays_its_watch_fails_the_watch_cut() {
    let (failed, text) = grade("--misbehave restart-watch").await;
    assert_eq!(failed, BTreeSet::from(["watch-cut"]), "{text}");
    assert!(text.contains("replayed"), "{text}");
}
