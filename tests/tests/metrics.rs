//! `/metrics` on the gateway's port exposes per-hop latency series, outcomes
//! by reason and in-flight gauges for the traffic that went through.

use shep_tests::*;

fn count(text: &str, series: &str) -> u64 {
    text.lines()
        .find(|line| line.starts_with(series))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("no series `{series}` in:\n{text}"))
}

#[tokio::test]
async fn metrics_expose_every_hop_and_outcome_after_traffic() {
    let gw = TestGateway::start().await;
    let applicant = gw.applicant();
    let mut client = gw.gateway();
    for _ in 0..3 {
        client
            .call(
                applicant
                    .seal(&applicant.request("GbdflInfoByIin_v1", shep::client::iin(APPLICANT_IIN)))
                    .unwrap(),
            )
            .await
            .unwrap();
    }
    let submitted = gw.submit_application().await;
    let mut desk = gw.subscribe(ESIL_PROVIDER, 0).await;
    desk.next_delivery().await;
    desk.accept(&submitted.receipt.message_id).await;
    // A refusal: the body changed after signing.
    let signed = applicant.request("GbdflInfoByIin_v1", shep::client::iin(APPLICANT_IIN));
    let mut tampered = applicant.seal(&signed).unwrap();
    let mut changed = signed.clone();
    changed.message_id = shep::client::new_message_id();
    tampered.body = prost::Message::encode_to_vec(&changed);
    let refused = client.call(tampered).await.unwrap_err();
    assert_eq!(reason(&refused), "SIGNATURE_INVALID", "{refused:?}");

    let text = eventually(PATIENCE, async || {
        let text = http_get(gw.addr(), "/metrics").await.text();
        if text.contains(r#"hop="delivery""#) {
            Ok(text)
        } else {
            Err("no delivery hop yet")
        }
    })
    .await;
    let lookup = r#"rpc="call",service="GbdflInfoByIin_v1""#;
    for hop in ["checks", "registry", "total"] {
        let series = format!("shep_hop_duration_seconds_count{{{lookup},hop=\"{hop}\"}}");
        assert_eq!(count(&text, &series), 3, "{series}");
    }
    let submit = r#"rpc="submit",service="guardianship-certificate-esil""#;
    for hop in ["checks", "registry", "journal", "delivery", "total"] {
        let series = format!("shep_hop_duration_seconds_count{{{submit},hop=\"{hop}\"}}");
        assert_eq!(count(&text, &series), 1, "{series}");
    }
    assert_eq!(
        count(&text, r#"shep_requests_total{rpc="call",outcome="ok"}"#),
        3
    );
    assert_eq!(
        count(&text, r#"shep_requests_total{rpc="submit",outcome="ok"}"#),
        1
    );
    assert_eq!(
        count(
            &text,
            r#"shep_requests_total{rpc="call",outcome="SIGNATURE_INVALID"}"#
        ),
        1
    );
    assert_eq!(count(&text, r#"shep_in_flight{rpc="call"}"#), 0);
    assert!(
        text.contains("# TYPE shep_hop_duration_seconds histogram"),
        "{text}"
    );
}

/// The names in a PromQL expression that look like shep's series, and the
/// label names it selects or groups by.
fn promql_names(expr: &str) -> (Vec<String>, Vec<String>) {
    let words: Vec<&str> = expr
        .split(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '_'))
        .filter(|word| !word.is_empty())
        .collect();
    let series = words
        .iter()
        .filter(|word| word.starts_with("shep_"))
        .map(|word| (*word).to_owned())
        .collect();
    let labels = ["rpc", "service", "hop", "outcome", "le"]
        .iter()
        .filter(|label| words.contains(label))
        .map(|label| (*label).to_owned())
        .collect();
    (series, labels)
}

/// bench/grafana-dashboard.json queries only series and labels the gateway
/// exposes, so the dashboard does not go blank when a metric is renamed.
#[tokio::test]
async fn the_grafana_dashboard_queries_what_metrics_exposes() {
    let path = workspace_root().join("bench/grafana-dashboard.json");
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("the dashboard"))
            .expect("the dashboard is JSON");
    let mut exprs: Vec<String> = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().expect("targets") {
            exprs.push(target["expr"].as_str().expect("an expr").to_owned());
        }
    }
    for variable in dashboard["templating"]["list"]
        .as_array()
        .expect("variables")
    {
        if variable["type"] == "query" {
            exprs.push(variable["query"].as_str().expect("a query").to_owned());
        }
    }
    assert!(exprs.len() >= 7, "{exprs:?}");

    let gw = TestGateway::start().await;
    let applicant = gw.applicant();
    gw.gateway()
        .call(
            applicant
                .seal(&applicant.request("GbdflInfoByIin_v1", shep::client::iin(APPLICANT_IIN)))
                .unwrap(),
        )
        .await
        .unwrap();
    let text = http_get(gw.addr(), "/metrics").await.text();
    for expr in &exprs {
        let (series, labels) = promql_names(expr);
        assert!(!series.is_empty(), "`{expr}` queries no shep series");
        for name in series {
            let exposed = text
                .lines()
                .filter(|line| !line.starts_with('#'))
                .find(|line| line.starts_with(&format!("{name}{{")));
            let Some(line) = exposed else {
                panic!("`{expr}` queries `{name}`, which /metrics does not expose:\n{text}");
            };
            for label in &labels {
                // `hop` and `service` are on the histogram only; `outcome` on the counter.
                let on_this = match label.as_str() {
                    "outcome" => name == "shep_requests_total",
                    "hop" | "service" | "le" => name.starts_with("shep_hop_duration_seconds"),
                    _ => true,
                };
                let wanted = if label == "le" {
                    name.ends_with("_bucket")
                } else {
                    on_this
                };
                if wanted {
                    assert!(
                        line.contains(&format!("{label}=\"")),
                        "`{expr}` uses label `{label}`, which `{name}` does not carry: {line}"
                    );
                }
            }
        }
    }
}

/// With `SHEP_LOG=info SHEP_LOG_SPANS=close`, `shep serve` logs each message's
/// span as it ends, with its message id, and the registry hop inside it.
#[tokio::test]
async fn spans_carry_the_message_id_across_hops_into_the_log() {
    let tmp = TempDir::new("shep-spans");
    let data = tmp.path().join("data");
    let log = tmp.path().join("serve.log");
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], free_port()));
    let server = ShepServe::start_with_env(
        addr,
        &data,
        &log,
        &[
            ("SHEP_LOG", "shep_gateway=info"),
            ("SHEP_LOG_SPANS", "close"),
        ],
    )
    .await;
    let (key, cert) = shep_gateway::server::DataDir(data.clone()).identity("applicant");
    let applicant = Participant::new(
        "pep",
        shep_proto::envelope::v1::Channel::Portal,
        shep_nuc::ca::Signer::from_files(&key, &cert).unwrap(),
    );
    let body = applicant.request("GbdflInfoByIin_v1", shep::client::iin(APPLICANT_IIN));
    let message_id = body.message_id.clone();
    shep_proto::gateway::v1::gateway_client::GatewayClient::new(connect(&server.url()).await)
        .call(applicant.seal(&body).unwrap())
        .await
        .unwrap();
    let text = eventually(PATIENCE, async || {
        let text = server.log();
        if text.contains("registry") && text.contains(&message_id) && text.contains("close") {
            Ok(text)
        } else {
            Err(text)
        }
    })
    .await;
    let registry_line = text
        .lines()
        .find(|line| line.contains("registry{") && line.contains("close"))
        .unwrap_or_else(|| panic!("no registry span closed in:\n{text}"));
    assert!(
        registry_line.contains(&format!("message_id=\"{message_id}\"")),
        "the registry hop carries the message id: {registry_line}"
    );
    assert!(
        registry_line.contains("registry=\"gbdfl\""),
        "{registry_line}"
    );
    assert!(registry_line.contains("time.busy"), "{registry_line}");
    server.interrupt().await;
}
