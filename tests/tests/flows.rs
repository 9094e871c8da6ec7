//! `shep flow`: each shipped flow of the seed regulations runs from one
//! command, and its narrated timeline follows the regulation's steps in
//! order, on the simulated clock, to the regulation's outcome.

use shep_tests::*;

/// The step labels a flow file lists, in order.
fn labels(flow: &str) -> Vec<String> {
    let path = workspace_root()
        .join("shep/flows")
        .join(format!("{flow}.toml"));
    std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .filter_map(|line| line.strip_prefix("label = \""))
        .map(|rest| rest.trim_end_matches('"').to_owned())
        .collect()
}

/// Runs `shep flow run <flow>` and checks the timeline against the file.
async fn run_flow(flow: &str, final_status: &str) -> String {
    let out = run_shep(&["flow", "run", flow]).await.ok().to_owned();
    let steps: Vec<&str> = out
        .lines()
        .filter(|line| {
            line.trim_start()
                .split_once(". ")
                .is_some_and(|(number, _)| number.parse::<u32>().is_ok())
        })
        .collect();
    let expected = labels(flow);
    assert_eq!(steps.len(), expected.len(), "{out}");
    let mut previous = String::new();
    for (line, label) in steps.iter().zip(&expected) {
        assert!(
            line.contains(label.as_str()),
            "`{label}` in `{line}`\n{out}"
        );
        // The simulated time of each step (dd.mm.yyyy hh:mm) never goes back.
        let mut words = line.split_whitespace().skip(1);
        let (date, time) = (words.next().unwrap(), words.next().unwrap());
        let parts: Vec<&str> = date.split('.').collect();
        let sortable = format!("{}{}{} {time}", parts[2], parts[1], parts[0]);
        assert!(sortable >= previous, "{sortable} after {previous}\n{out}");
        previous = sortable;
    }
    assert!(out.contains("срок соблюден"), "{out}");
    assert!(
        out.contains(&format!("итоговый статус: {final_status}")),
        "{out}"
    );
    out
}

#[tokio::test]
async fn the_portal_flow_of_000_registers_and_completes_within_five_working_days() {
    let out = run_flow("000-portal", "COMPLETED").await;
    // The clock starts on Monday 01.02.2027 09:00 Astana; 5 working days end
    // on Monday 08.02 at 18:00.
    assert!(
        out.contains("результат ожидается 08.02.2027 18:00"),
        "{out}"
    );
}

#[tokio::test]
async fn the_centre_flow_of_000_looks_up_gbdfl_and_issues_the_paper_certificate() {
    let out = run_flow("000-centre", "ISSUED").await;
    assert!(out.contains("ГБД ФЛ: "), "{out}");
    assert!(out.contains("REGISTERED №"), "{out}");
}

#[tokio::test]
async fn the_return_to_the_centre_of_000_is_followed_by_the_centre_informing_the_applicant() {
    let out = run_flow("000-centre-return", "ISSUED").await;
    assert!(out.contains("RETURNED_TO_CENTRE"), "{out}");
    assert!(out.contains("получатель проинформирован"), "{out}");
}

#[tokio::test]
async fn the_desk_and_portal_flows_of_001_are_answered_within_seven_working_days() {
    run_flow("001-desk", "ISSUED").await;
    let out = run_flow("001-portal", "COMPLETED").await;
    assert!(out.contains("IN_WORK"), "{out}");
}

#[tokio::test]
async fn the_mangystau_flow_of_002_is_answered_without_registration() {
    let out = run_flow("002-portal", "COMPLETED").await;
    assert!(
        !out.contains("REGISTERED"),
        "002 has no registration step:\n{out}"
    );
}

#[tokio::test]
async fn the_karaganda_flow_of_003_is_served_within_its_five_minutes() {
    run_flow("003-portal", "COMPLETED").await;
}

#[tokio::test]
async fn the_archive_flows_of_004_run_through_the_portal_the_centre_and_the_desk() {
    run_flow("004-portal", "COMPLETED").await;
    let centre = run_flow("004-centre", "ISSUED").await;
    assert!(centre.contains("ГБД ФЛ: "), "{centre}");
    let desk = run_flow("004-desk", "ISSUED").await;
    assert!(desk.contains("ГБД ФЛ: "), "{desk}");
}

#[tokio::test]
async fn the_shipped_flows_are_listed_and_an_unknown_one_is_refused() {
    let list = run_shep(&["flow", "list"]).await.ok().to_owned();
    for flow in [
        "000-portal",
        "000-centre",
        "000-centre-return",
        "001-desk",
        "001-portal",
        "002-portal",
        "003-portal",
        "004-portal",
        "004-centre",
        "004-desk",
    ] {
        assert!(list.contains(flow), "{list}");
    }
    let unknown = run_shep(&["flow", "run", "999-nothing"]).await;
    assert!(!unknown.status.success());
    assert!(
        unknown.stderr.contains("no shipped flow"),
        "{}",
        unknown.stderr
    );
}
