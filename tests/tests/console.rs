//! The web console in a real browser: Debian's Chromium, driven by Selenium
//! from `tests/python/console_browser.py`. A provider employee logs in to
//! the workstation with a НУЦ key, registers and completes an application
//! `shep send` submitted, each report signed in the browser; the applicant's
//! cabinet, open in another tab, shows the statuses live, and its result
//! document verifies. Screenshots go to `target/console-screenshots/`.
//!
//! Needs `chromium` and `chromedriver` (`.ci/run` installs Debian's); where
//! they are missing the test says so and passes, unless
//! `SHEP_REQUIRE_CHROMIUM` is set, as CI does.

use std::path::{Path, PathBuf};

use shep_proto::envelope::v1::ApplicationStatus;
use shep_tests::*;

fn tool(variable: &str, default: &str) -> Option<PathBuf> {
    let path = std::env::var_os(variable)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(default));
    path.exists().then_some(path)
}

fn text(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 path")
}

#[tokio::test]
async fn an_employee_completes_an_application_in_the_browser_and_the_cabinet_sees_it_live() {
    let (Some(chromium), Some(chromedriver)) = (
        tool("SHEP_CHROMIUM", "/usr/bin/chromium"),
        tool("SHEP_CHROMEDRIVER", "/usr/bin/chromedriver"),
    ) else {
        assert!(
            std::env::var_os("SHEP_REQUIRE_CHROMIUM").is_none(),
            "SHEP_REQUIRE_CHROMIUM is set but chromium or chromedriver is missing"
        );
        eprintln!("skipped: no chromium/chromedriver (Debian's `chromium` and `chromium-driver`)");
        return;
    };
    let python = python();
    let gw = TestGateway::start().await;
    let url = gw.url();
    let data = text(&gw.data_dir().0).to_owned();
    let form = gw.temp_dir().join("form.json");
    std::fs::write(&form, r#"{"child_iin":"061211600012","kind":"опека"}"#).unwrap();
    let sent = run_shep(&[
        "send",
        "--service",
        ESIL_SERVICE,
        "--subject",
        APPLICANT_IIN,
        "--payload",
        text(&form),
        "--gateway",
        &url,
        "--data-dir",
        &data,
    ])
    .await;
    let accepted = sent.ok();
    let message_id = accepted
        .split_whitespace()
        .nth(2)
        .expect("accepted: message_id <id> …")
        .to_owned();

    let screenshots = target_dir().join("console-screenshots");
    std::fs::create_dir_all(&screenshots).unwrap();
    let (applicant_key, applicant_cert) = gw.data_dir().identity("applicant");
    let (employee_key, employee_cert) =
        gw.data_dir().identity(&format!("provider-{ESIL_PROVIDER}"));
    let config = serde_json::json!({
        "url": url,
        "chromium": text(&chromium),
        "chromedriver": text(&chromedriver),
        "profile": text(&gw.temp_dir().join("chromium-profile")),
        "screenshots": text(&screenshots),
        "message_id": message_id,
        "provider": ESIL_PROVIDER,
        "admin_token": gw.admin_token(),
        "applicant": {"key": text(&applicant_key), "cert": text(&applicant_cert)},
        "employee": {"key": text(&employee_key), "cert": text(&employee_cert)},
    });
    let config_path = gw.temp_dir().join("console-config.json");
    std::fs::write(&config_path, config.to_string()).unwrap();
    let seen = python
        .run_json("console_browser.py", &[text(&config_path)])
        .await;
    eprintln!("the browser saw: {seen:#}");

    // The workstation showed the applicant's signature as checked, and each
    // report signed in the browser was accepted by the gateway.
    assert!(
        seen["signature_shown"]
            .as_str()
            .unwrap()
            .contains("верна ("),
        "{}",
        seen["signature_shown"]
    );
    for step in ["registered", "in_work", "completed"] {
        assert!(
            seen[step].as_str().unwrap().starts_with("Отправлено"),
            "{step}: {}",
            seen[step]
        );
    }
    // The cabinet, never reloaded, heard every status as it came.
    let notified: Vec<&str> = seen["notified"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|status| status.as_str())
        .collect();
    for status in ["REGISTERED", "IN_WORK", "COMPLETED"] {
        assert!(notified.contains(&status), "{status}: {notified:?}");
    }
    assert_eq!(seen["reloaded"], "navigate");
    assert!(
        seen["result_check"]
            .as_str()
            .unwrap()
            .starts_with("Подпись результата верна"),
        "{}",
        seen["result_check"]
    );

    // To every other client the console's reports are the provider's own.
    let application = gw.status(&message_id).await;
    assert_eq!(application.status(), ApplicationStatus::Completed);
    assert_eq!(application.registration_number, "КОНСОЛЬ-1");
    let reported: Vec<&str> = application
        .events
        .iter()
        .filter(|event| !matches!(event.reported_by.as_str(), "" | "gateway"))
        .map(|event| event.reported_by.as_str())
        .collect();
    assert!(
        reported.len() == 3 && reported.iter().all(|by| *by == ESIL_PROVIDER),
        "{reported:?}"
    );
    // The operator saw the application cross the gateway hop by hop, the
    // per-hop latencies, a refused route with its reason, and a fault added
    // and removed.
    let rows: Vec<&str> = seen["flow_rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|row| row.as_str())
        .collect();
    for hop in ["ingress", "delivery"] {
        assert!(rows.iter().any(|row| row.contains(hop)), "{hop}: {rows:?}");
    }
    assert!(
        seen["flow_hops"]
            .as_array()
            .unwrap()
            .iter()
            .any(|hop| hop.as_str().unwrap().starts_with("submit · total")),
        "{}",
        seen["flow_hops"]
    );
    assert!(
        seen["route_refused"]
            .as_str()
            .unwrap()
            .starts_with("Маршрут не принят"),
        "{}",
        seen["route_refused"]
    );
    assert!(
        seen["fixtures_refused"]
            .as_str()
            .unwrap()
            .starts_with("Фикстуры не приняты"),
        "{}",
        seen["fixtures_refused"]
    );
    assert!(
        seen["fault_added"].as_str().unwrap().contains("gbdfl-down"),
        "{}",
        seen["fault_added"]
    );
    assert_eq!(seen["fault_deleted"], true);
    for page in [
        "login",
        "desk",
        "desk-application",
        "cabinet",
        "flow",
        "operator",
    ] {
        assert!(
            screenshots.join(format!("{page}.png")).exists(),
            "{page}.png"
        );
    }
}
