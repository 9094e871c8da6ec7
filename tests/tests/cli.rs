//! The `shep` binary: the demo runs the whole flow, and `routes check`
//! validates routing table files with errors that name the service and key.

use std::io::Read;
use std::path::Path;
use std::process::{Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use shep_tests::TempDir;

/// The `shep` binary, built once per test binary by the harness.
fn shep() -> &'static Path {
    shep_tests::shep_binary()
}

fn run(args: &[&str]) -> Output {
    Command::new(shep())
        .args(args)
        .env_remove("SHEP_ADMIN_TOKEN")
        .env("SHEP_LOG", "error")
        .output()
        .expect("running shep")
}

/// Runs `shep` with `args`; kills it if it has not exited within `deadline`
/// (then the status is `None`). Returns the status, stdout and stderr. Its
/// temp directory is one of ours, so nothing is left behind even if killed.
fn run_bounded(args: &[&str], deadline: Duration) -> (Option<ExitStatus>, String, String) {
    let tmp = TempDir::new("shep-cli-tmp");
    let mut child = Command::new(shep())
        .args(args)
        .env_remove("SHEP_ADMIN_TOKEN")
        .env("SHEP_LOG", "error")
        .env("TMPDIR", tmp.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting shep");
    let reader = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            text(&bytes)
        })
    };
    let stdout = reader(Box::new(child.stdout.take().unwrap()));
    let stderr = reader(Box::new(child.stderr.take().unwrap()));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for shep") {
            break Some(status);
        }
        if started.elapsed() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (status, stdout.join().unwrap(), stderr.join().unwrap())
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn the_demo_completes_an_application_shows_refusals_and_exits() {
    // The demo takes about two seconds; a hang is a failure, not a stuck suite.
    let (status, stdout, stderr) = run_bounded(&["demo"], Duration::from_secs(15));
    for expected in [
        "COMPLETED",
        "SIGNATURE_INVALID",
        "IDENTITY_MISMATCH",
        "UNKNOWN_SERVICE",
        "arm-rshep-sko-esil-edu",
        "Серикбаев",
    ] {
        assert!(
            stdout.contains(expected),
            "`{expected}` missing:\n{stdout}\n{stderr}"
        );
    }
    assert!(
        !stdout.contains("unexpectedly accepted"),
        "a bad envelope was accepted:\n{stdout}"
    );
    let status = status.unwrap_or_else(|| {
        panic!("shep demo did not exit within 15 s (killed); it printed:\n{stdout}\n{stderr}")
    });
    assert!(
        status.success(),
        "shep demo failed ({status}):\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("Done."), "{stdout}");
}

#[test]
fn routes_check_names_the_service_and_the_key_of_an_unknown_sender() {
    let dir = TempDir::new("shep-cli");
    let file = dir.path().join("routes.toml");
    std::fs::write(
        &file,
        r#"
[[system]]
id = "pep"
name_ru = "ПЭП"
role = "portal"

[[system]]
id = "arm-a"
name_ru = "АРМ"
role = "provider"
operators = ["800417400129"]
bin = "151240012341"

[[service]]
id = "birth-certificate"
name_ru = "Справка о рождении"
kind = "application"
senders = ["pep", "ghost-system"]
channels = ["portal"]
providers = { default = "arm-a" }
deadline = "5 working-days"
"#,
    )
    .unwrap();
    let output = run(&["routes", "check", file.to_str().unwrap()]);
    let stderr = text(&output.stderr);
    assert!(
        !output.status.success(),
        "accepted an invalid table: {stderr}"
    );
    for named in ["birth-certificate", "`senders`", "ghost-system"] {
        assert!(stderr.contains(named), "`{named}` not named: {stderr}");
    }
}

#[test]
fn routes_check_accepts_the_default_table() {
    let dir = TempDir::new("shep-cli");
    let printed = run(&["routes", "default"]);
    assert!(printed.status.success());
    let file = dir.path().join("default.toml");
    std::fs::write(&file, &printed.stdout).unwrap();
    let output = run(&["routes", "check", file.to_str().unwrap()]);
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", text(&output.stderr));
    assert!(stdout.contains("ok, 11 services"), "{stdout}");
}
