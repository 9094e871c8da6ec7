//! Parsing and validating scripts: good ones load, each kind of bad one is
//! refused naming the field (and the line, for what TOML itself catches).

use std::time::Duration;

use rand::SeedableRng as _;
use rand::rngs::StdRng;

use super::*;

fn parse(text: &str) -> Result<Script, ScriptError> {
    Script::parse(text, "test.toml", Path::new("."))
}

fn refusal(text: &str) -> String {
    match parse(text) {
        Ok(script) => panic!("accepted: {script:?}"),
        Err(error) => error.to_string(),
    }
}

const REALISTIC: &str = r#"
seed = 7

[services.default]
ack = "accept"

[[services.default.steps]]
status = "REGISTERED"
registration_number = "ЕСЛ-{seq}"
term = "5 working-days"
delay = "90s"

[[services.default.steps]]
status = "IN_WORK"
delay = { uniform = ["10m", "2h"] }

[[services.default.branches]]
name = "completed"
weight = 80
[[services.default.branches.steps]]
status = "COMPLETED"
delay = { lognormal = { mean = "1d", sd = "12h" } }
document = { name = "spravka.txt", text = "Справка по заявке {message_id}" }

[[services.default.branches]]
name = "refused"
weight = 15
[[services.default.branches.steps]]
status = "REFUSED"
reason = "неполный пакет документов"
delay = { exponential = "3h" }

[[services.default.branches]]
weight = 5
[[services.default.branches.steps]]
status = "TERM_EXTENDED"
term = "2030-01-15"
delay = { normal = { mean = "1h", sd = "10m" } }
[[services.default.branches.steps]]
status = "IN_WORK"
[[services.default.branches.steps]]
status = "COMPLETED"
notification = "Готово"

[services."guardianship-certificate-esil"]
ack = ["none", "reject-resend", "accept"]
[[services."guardianship-certificate-esil".steps]]
status = "REGISTERED"
[[services."guardianship-certificate-esil".steps]]
status = "RETURNED_TO_CENTRE"
reason = "нет копии удостоверения"
"#;

#[test]
fn a_realistic_script_loads_with_its_branches_delays_and_acks() {
    let script = parse(REALISTIC).unwrap();
    assert_eq!(script.seed, 7);
    let default = script.for_service("anything").unwrap();
    assert_eq!(default.steps.len(), 2);
    assert_eq!(default.branches.len(), 3);
    assert_eq!(
        default.steps[0].delay,
        Some(Delay::Fixed(Span(Duration::from_secs(90))))
    );
    assert_eq!(
        default.steps[0].term,
        Some(Term::After("5 working-days".parse().unwrap()))
    );
    assert_eq!(default.ack_for(1), Ack::Accept);
    let esil = script.for_service("guardianship-certificate-esil").unwrap();
    assert_eq!(esil.ack_for(1), Ack::None);
    assert_eq!(esil.ack_for(2), Ack::RejectResend);
    assert_eq!(esil.ack_for(3), Ack::Accept);
    assert_eq!(esil.ack_for(9), Ack::Accept, "the last answer repeats");
}

#[test]
fn the_shipped_example_scripts_load() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts");
    let mut loaded = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|ext| ext == "toml") {
            Script::load(&path).unwrap_or_else(|error| panic!("{error}"));
            loaded += 1;
        }
    }
    assert!(loaded >= 4, "only {loaded} scripts in {}", dir.display());
}

#[test]
fn durations_parse_in_their_units_and_combinations() {
    let span = |text: &str| text.parse::<Span>().map(|span| span.0);
    assert_eq!(span("90s"), Ok(Duration::from_secs(90)));
    assert_eq!(span("15m"), Ok(Duration::from_secs(900)));
    assert_eq!(span("2h"), Ok(Duration::from_secs(7200)));
    assert_eq!(span("1h30m"), Ok(Duration::from_secs(5400)));
    assert_eq!(span("500ms"), Ok(Duration::from_millis(500)));
    assert_eq!(span("1.5s"), Ok(Duration::from_millis(1500)));
    for bad in ["", "15", "m", "15 minutes", "-3s", "1w"] {
        assert!(span(bad).is_err(), "`{bad}` parsed");
    }
}

#[test]
fn seeded_delays_repeat_and_stay_near_their_parameters() {
    let delay = Delay::Lognormal(MeanSd {
        mean: Span(Duration::from_secs(600)),
        sd: Span(Duration::from_secs(300)),
    });
    let draw = |seed| {
        let mut rng = StdRng::seed_from_u64(seed);
        (0..2000)
            .map(|_| delay.sample(&mut rng))
            .collect::<Vec<_>>()
    };
    let first = draw(1);
    assert_eq!(first, draw(1));
    assert_ne!(first, draw(2));
    let mean = first.iter().map(Duration::as_secs_f64).sum::<f64>() / first.len() as f64;
    assert!((540.0..660.0).contains(&mean), "mean {mean}");
    let uniform = Delay::Uniform([Span(Duration::from_secs(1)), Span(Duration::from_secs(2))]);
    let mut rng = StdRng::seed_from_u64(3);
    for _ in 0..100 {
        let sample = uniform.sample(&mut rng);
        assert!(sample >= Duration::from_secs(1) && sample <= Duration::from_secs(2));
    }
    let normal = Delay::Normal(MeanSd {
        mean: Span(Duration::from_secs(1)),
        sd: Span(Duration::from_secs(10)),
    });
    assert!((0..100).all(|_| normal.sample(&mut rng) >= Duration::ZERO));
}

#[test]
fn an_unknown_status_is_refused_with_its_line() {
    let error = refusal(
        r#"
[services.default]
[[services.default.steps]]
status = "DONE"
"#,
    );
    assert!(error.contains("line 4"), "{error}");
    assert!(error.contains("DONE"), "{error}");
    assert!(
        error.contains("COMPLETED"),
        "the choices are listed: {error}"
    );
}

#[test]
fn a_bad_duration_is_refused_with_its_line() {
    let error = refusal(
        r#"
[services.default]
[[services.default.steps]]
status = "REGISTERED"
delay = "soon"
"#,
    );
    assert!(error.contains("line 5"), "{error}");
    assert!(error.contains("`soon` is not a duration"), "{error}");
    let error = refusal(
        r#"
[services.default]
[[services.default.steps]]
status = "REGISTERED"
delay = { gaussian = "1m" }
"#,
    );
    assert!(error.contains("line 5"), "{error}");
    assert!(error.contains("gaussian"), "{error}");
}

#[test]
fn a_status_order_the_lifecycle_forbids_is_refused_naming_the_step() {
    let error = refusal(
        r#"
[services.default]
[[services.default.steps]]
status = "REGISTERED"
[[services.default.steps]]
status = "IN_WORK"
[[services.default.steps]]
status = "REGISTERED"
"#,
    );
    assert!(
        error.contains("`services.default.steps[2].status` REGISTERED may not follow IN_WORK"),
        "{error}"
    );
    // Registration comes first (BRIEF §5).
    let error = refusal(
        r#"
[services.default]
[[services.default.steps]]
status = "IN_WORK"
"#,
    );
    assert!(
        error.contains("`services.default.steps[0].status` IN_WORK may not follow DELIVERED"),
        "{error}"
    );
    // Nothing after a final status, in any branch.
    let error = refusal(
        r#"
[services.default]
[[services.default.steps]]
status = "REGISTERED"
[[services.default.branches]]
weight = 1
[[services.default.branches.steps]]
status = "COMPLETED"
[[services.default.branches]]
weight = 1
[[services.default.branches.steps]]
status = "REFUSED"
reason = "x"
[[services.default.branches.steps]]
status = "IN_WORK"
"#,
    );
    assert!(
        error.contains("services.default.branches[1].steps[1].status"),
        "{error}"
    );
    // TERM_EXTENDED cannot come straight after delivery.
    let error = refusal(
        r#"
[services.default]
[[services.default.steps]]
status = "TERM_EXTENDED"
term = "3 working-days"
"#,
    );
    assert!(error.contains("TERM_EXTENDED may not follow"), "{error}");
}

#[test]
fn missing_and_misplaced_fields_are_refused_naming_the_field() {
    let cases = [
        (
            "status = \"TERM_EXTENDED\"",
            "`services.default.steps[1].term` is required for TERM_EXTENDED",
        ),
        (
            "status = \"REFUSED\"",
            "`services.default.steps[1].reason` is required for REFUSED",
        ),
        (
            "status = \"RETURNED_TO_CENTRE\"\nreason = \" \"",
            "`services.default.steps[1].reason` is required for RETURNED_TO_CENTRE",
        ),
        (
            "status = \"IN_WORK\"\nreason = \"x\"",
            "`services.default.steps[1].reason` does not apply to IN_WORK",
        ),
        (
            "status = \"COMPLETED\"\ndocument = { name = \"a.txt\" }",
            "`services.default.steps[1].document` needs exactly one of `text` and `file`",
        ),
        (
            "status = \"COMPLETED\"\ndocument = { name = \"a.txt\", file = \"no-such-file.pdf\" }",
            "`services.default.steps[1].document.file` cannot be read",
        ),
        (
            "status = \"IN_WORK\"\ndelay = { uniform = [\"5m\", \"1m\"] }",
            "`services.default.steps[1].delay` uniform: `5m` is above `1m`",
        ),
        (
            "status = \"IN_WORK\"\ndelay = { exponential = \"0s\" }",
            "`services.default.steps[1].delay` exponential: the mean must be above zero",
        ),
    ];
    for (step, expected) in cases {
        let text = format!(
            "[services.default]\n[[services.default.steps]]\nstatus = \"REGISTERED\"\n[[services.default.steps]]\n{step}\n"
        );
        let error = refusal(&text);
        assert!(error.contains(expected), "{step}:\n{error}");
    }
}

#[test]
fn bad_acks_weights_and_keys_are_refused() {
    let error = refusal("[services.default]\nack = \"maybe\"\n");
    assert!(
        error.contains("line 2") && error.contains("maybe"),
        "{error}"
    );
    let error = refusal(
        "[services.default]\nack = \"reject\"\n[[services.default.steps]]\nstatus = \"REGISTERED\"\n",
    );
    assert!(
        error.contains("`services.default.ack` never accepts"),
        "{error}"
    );
    let error = refusal(
        "[services.default]\n[[services.default.branches]]\nweight = 0\n[[services.default.branches.steps]]\nstatus = \"REGISTERED\"\n",
    );
    assert!(
        error.contains("`services.default.branches[0].weight` must be a number above zero"),
        "{error}"
    );
    let error = refusal("[services.default]\nsteps = []\ncolour = \"red\"\n");
    assert!(
        error.contains("line 3") && error.contains("colour"),
        "{error}"
    );
    let error = refusal("seed = 1\n");
    assert!(error.contains("`services` names no service"), "{error}");
    let error = refusal("[services.default\n");
    assert!(error.contains("line 1"), "{error}");
}

#[test]
fn terms_are_working_days_dates_or_times() {
    assert!(matches!(
        "5 working-days".parse::<Term>(),
        Ok(Term::After(_))
    ));
    assert!(matches!("2025-07-01".parse::<Term>(), Ok(Term::At(_))));
    assert!(matches!(
        "2025-07-01T10:00:00+05:00".parse::<Term>(),
        Ok(Term::At(_))
    ));
    assert!("next week".parse::<Term>().is_err());
}

#[test]
fn the_rules_are_built_in_scripts_the_lifecycle_allows() {
    use crate::script::ProviderRule;
    for rule in [
        ProviderRule::Complete,
        ProviderRule::Refuse,
        ProviderRule::Reject,
    ] {
        let mut script = rule.script(Duration::from_millis(5));
        script
            .validate("built-in", Path::new("."))
            .unwrap_or_else(|error| panic!("{rule:?}: {error}"));
    }
}
