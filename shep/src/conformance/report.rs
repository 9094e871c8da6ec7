//! A kit's verdicts: as a person reads them and as JUnit XML, the format
//! CI systems gate on (one `<testsuite>`, one `<testcase>` per case).

use std::fmt::Write as _;
use std::time::Duration;

/// One case's verdict.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The case's name in the catalogue (`lost-ack`).
    pub case: &'static str,
    /// What it checks, in a line.
    pub title: &'static str,
    /// The rule of the regulations or the contract it comes from.
    pub rule: &'static str,
    /// `None` when it passed; otherwise why it failed.
    pub failure: Option<String>,
    /// Why it was not run (it does not apply to the system graded).
    pub skipped: Option<String>,
    /// The exchanges and events that show it, in order.
    pub evidence: Vec<String>,
    pub duration: Duration,
}

impl Outcome {
    pub fn passed(&self) -> bool {
        self.failure.is_none()
    }
}

/// The verdicts of one run of a kit.
#[derive(Debug, Clone)]
pub struct Report {
    /// `provider` or `consumer`.
    pub kit: &'static str,
    /// The system graded.
    pub target: String,
    pub outcomes: Vec<Outcome>,
}

impl Report {
    /// Whether every case passed.
    pub fn passed(&self) -> bool {
        self.outcomes.iter().all(Outcome::passed)
    }

    /// How many cases were not run.
    pub fn skipped(&self) -> usize {
        self.outcomes
            .iter()
            .filter(|outcome| outcome.skipped.is_some())
            .count()
    }

    /// The names of the cases that failed.
    pub fn failed(&self) -> Vec<&'static str> {
        self.outcomes
            .iter()
            .filter(|outcome| !outcome.passed())
            .map(|outcome| outcome.case)
            .collect()
    }

    /// The report as a person reads it; `verbose` adds the evidence of
    /// passed cases too (a failed case always shows its evidence).
    pub fn text(&self, verbose: bool) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "{} conformance of `{}`", self.kit, self.target);
        for outcome in &self.outcomes {
            let verdict = match (&outcome.skipped, outcome.passed()) {
                (Some(_), _) => "SKIP",
                (None, true) => "PASS",
                (None, false) => "FAIL",
            };
            let _ = writeln!(
                out,
                "\n{verdict}  {}  {} ({:.1} s)\n      rule: {}",
                outcome.case,
                outcome.title,
                outcome.duration.as_secs_f64(),
                outcome.rule
            );
            if let Some(failure) = &outcome.failure {
                let _ = writeln!(out, "      why:  {failure}");
            }
            if let Some(skipped) = &outcome.skipped {
                let _ = writeln!(out, "      not run: {skipped}");
            }
            if verbose || !outcome.passed() {
                for line in &outcome.evidence {
                    let _ = writeln!(out, "        {line}");
                }
            }
        }
        let failed = self.failed();
        let run = self.outcomes.len() - self.skipped();
        let _ = writeln!(
            out,
            "\n{} of {run} cases passed{}",
            run - failed.len(),
            if failed.is_empty() {
                String::new()
            } else {
                format!("; failed: {}", failed.join(", "))
            }
        );
        out
    }

    /// The report as JUnit XML (the Ant schema most CI systems read).
    pub fn junit(&self) -> String {
        let total: f64 = self
            .outcomes
            .iter()
            .map(|outcome| outcome.duration.as_secs_f64())
            .sum();
        let suite = format!("shep-conformance.{}.{}", self.kit, self.target);
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let _ = writeln!(
            out,
            "<testsuites name=\"shep conformance\" tests=\"{}\" failures=\"{}\" time=\"{total:.3}\">",
            self.outcomes.len(),
            self.failed().len()
        );
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"{}\" time=\"{total:.3}\">",
            escape(&suite),
            self.outcomes.len(),
            self.failed().len(),
            self.skipped()
        );
        for outcome in &self.outcomes {
            let _ = write!(
                out,
                "    <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\">",
                escape(&suite),
                escape(outcome.case),
                outcome.duration.as_secs_f64()
            );
            if let Some(skipped) = &outcome.skipped {
                let _ = write!(out, "<skipped message=\"{}\"/>", escape(skipped));
            }
            if let Some(failure) = &outcome.failure {
                let _ = write!(
                    out,
                    "\n      <failure message=\"{}\" type=\"{}\">{}</failure>\n    ",
                    escape(failure),
                    escape(outcome.rule),
                    escape(&outcome.evidence.join("\n"))
                );
            }
            let _ = writeln!(
                out,
                "<system-out>{}</system-out></testcase>",
                escape(&format!("{}\nrule: {}", outcome.title, outcome.rule))
            );
        }
        out.push_str("  </testsuite>\n</testsuites>\n");
        out
    }
}

/// Escapes text for an XML attribute or element; drops the characters XML
/// 1.0 cannot carry at all.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' | '\r' | '\t' => out.push(ch),
            ch if (ch as u32) < 0x20 || ch == '\u{FFFE}' || ch == '\u{FFFF}' => {}
            ch => out.push(ch),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> Report {
        Report {
            kit: "provider",
            target: "arm-<x>".to_owned(),
            outcomes: vec![
                Outcome {
                    case: "delivery",
                    title: "t",
                    rule: "r",
                    failure: None,
                    skipped: None,
                    evidence: vec![],
                    duration: Duration::from_millis(1500),
                },
                Outcome {
                    case: "lost-ack",
                    title: "t",
                    rule: "r",
                    failure: Some("reported \"REGISTERED\" twice & \u{1}more".to_owned()),
                    skipped: None,
                    evidence: vec!["a < b".to_owned()],
                    duration: Duration::ZERO,
                },
            ],
        }
    }

    #[test]
    fn junit_counts_failures_and_escapes_what_it_quotes() {
        let xml = report().junit();
        assert!(xml.contains("tests=\"2\" failures=\"1\""), "{xml}");
        assert!(xml.contains("name=\"shep-conformance.provider.arm-&lt;x&gt;\""));
        assert!(xml.contains("message=\"reported &quot;REGISTERED&quot; twice &amp; more\""));
        assert!(xml.contains(">a &lt; b</failure>"));
    }

    #[test]
    fn the_text_names_what_failed() {
        let report = report();
        assert!(!report.passed());
        assert_eq!(report.failed(), ["lost-ack"]);
        assert!(
            report
                .text(false)
                .contains("1 of 2 cases passed; failed: lost-ack")
        );
    }
}
