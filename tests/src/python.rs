//! The Python that the Python tests run: `python3` with the pinned packages
//! of `tests/python/requirements.txt`, provisioned by the tests themselves so
//! that `cargo test` needs nothing but `python3` on the machine.
//!
//! On first use the packages go into a virtual environment under the cargo
//! target directory (`target/python-venv`); later runs reuse it while a
//! marker in it matches the requirements and the `python3` that made it. A
//! `python3` without `venv` (Debian's without `python3-venv`) gets the
//! packages through `pip install --target` and `PYTHONPATH` instead. The test
//! threads of one binary wait on a [`OnceLock`], and test binaries running at
//! the same time on a lock file beside the environment, so it is made once.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The file in the environment that says what it was made from.
const MARKER: &str = "shep-requirements";

/// The interpreter the Python tests run, with the pinned packages.
#[derive(Debug)]
pub struct Python {
    program: PathBuf,
    /// `PYTHONPATH` of a `pip install --target` environment; `None` in a venv.
    packages: Option<PathBuf>,
    root: PathBuf,
}

impl Python {
    /// Runs `tests/python/<script>` with `args` off the async runtime (a
    /// gateway under test may run on it) and returns the JSON it printed;
    /// panics with its output if it fails.
    pub async fn run_json(&self, script: &str, args: &[&str]) -> serde_json::Value {
        let mut command = self.command();
        command
            .arg(
                std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("python")
                    .join(script),
            )
            .args(args);
        let output = tokio::task::spawn_blocking(move || command.output())
            .await
            .expect("the Python task")
            .expect("running python3");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{script} failed ({}): {stdout}{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_str(&stdout)
            .unwrap_or_else(|error| panic!("{script} printed no JSON ({error}): {stdout}"))
    }

    /// A command running the interpreter, seeing the pinned packages first.
    pub fn command(&self) -> Command {
        let mut command = Command::new(&self.program);
        // Packages in the user's own site directory must not stand in for
        // the pinned ones (a venv ignores it already; the fallback does not).
        command.env("PYTHONNOUSERSITE", "1");
        match &self.packages {
            Some(packages) => command.env("PYTHONPATH", packages),
            None => command.env_remove("PYTHONPATH"),
        };
        command
    }

    /// Where the packages are installed.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Whether this is a virtual environment (rather than the fallback of
    /// the system `python3` with `PYTHONPATH`).
    pub fn is_venv(&self) -> bool {
        self.packages.is_none()
    }
}

/// The tests' Python, provisioned on first use (this can take a minute: pip
/// downloads the packages). Panics with the reason when it cannot be made:
/// the Python tests fail rather than skip.
pub fn python() -> &'static Python {
    static PYTHON: OnceLock<Result<Python, String>> = OnceLock::new();
    match PYTHON.get_or_init(provision) {
        Ok(python) => python,
        Err(error) => panic!("{error}"),
    }
}

/// The pinned requirements the environment is made from.
pub fn requirements_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("python/requirements.txt")
}

fn provision() -> Result<Python, String> {
    let requirements_path = requirements_path();
    let requirements = fs::read_to_string(&requirements_path)
        .map_err(|error| format!("reading `{}`: {error}", requirements_path.display()))?;
    let version = run(Command::new("python3").args(["-c", "import sys; print(sys.version)"]))
        .map_err(|error| {
            format!("the Python tests need `python3` on the PATH, with `venv` or `pip`: {error}")
        })?;
    // A new python3 or a changed pin makes the environment again.
    let made_from = format!("python3 {}\n{requirements}", version.trim());

    let target = crate::target_dir();
    let root = target.join("python-venv");
    fs::create_dir_all(&target)
        .map_err(|error| format!("creating `{}`: {error}", target.display()))?;
    let lock_path = target.join("python-venv.lock");
    let lock = File::create(&lock_path)
        .map_err(|error| format!("creating `{}`: {error}", lock_path.display()))?;
    // Held until the environment is ready (released when `lock` drops):
    // another test binary waits here instead of installing over this one.
    lock.lock()
        .map_err(|error| format!("locking `{}`: {error}", lock_path.display()))?;

    if let Some(python) = ready(&root, &made_from) {
        return Ok(python);
    }
    eprintln!(
        "installing the Python tests' packages ({}) into `{}`",
        requirements_path.display(),
        root.display()
    );
    remove(&root)?;
    let python = match make_venv(&root, &requirements_path) {
        Ok(python) => python,
        Err(Failure::Venv(venv_error)) => {
            remove(&root)?;
            install_target(&root, &requirements_path).map_err(|pip_error| {
                format!(
                    "cannot provision the Python tests' packages under `{}`: `python3 -m venv` \
                     failed ({venv_error}), and so did `python3 -m pip install --target` \
                     ({pip_error}); install python3's venv module (Debian: `python3-venv`) or pip",
                    root.display()
                )
            })?
        }
        Err(Failure::Install(pip_error)) => {
            return Err(format!(
                "cannot install `{}` into the virtual environment `{}` (is the package index \
                 reachable?): {pip_error}",
                requirements_path.display(),
                root.display()
            ));
        }
    };
    let kind = if python.is_venv() { "venv" } else { "target" };
    // Written last: a half-made environment has no marker and is made again.
    fs::write(root.join(MARKER), format!("{kind}\n{made_from}"))
        .map_err(|error| format!("writing the marker in `{}`: {error}", root.display()))?;
    Ok(python)
}

/// The environment at `root`, if its marker says it was made from `made_from`.
fn ready(root: &Path, made_from: &str) -> Option<Python> {
    let marker = fs::read_to_string(root.join(MARKER)).ok()?;
    let (kind, rest) = marker.split_once('\n')?;
    if rest != made_from {
        return None;
    }
    match kind {
        "venv" => Some(venv_python(root)).filter(|python| python.program.exists()),
        // The marker is inside the package directory: it exists.
        "target" => Some(target_python(root)),
        _ => None,
    }
}

fn venv_python(root: &Path) -> Python {
    let program = if cfg!(windows) {
        root.join("Scripts").join("python.exe")
    } else {
        root.join("bin").join("python")
    };
    Python {
        program,
        packages: None,
        root: root.to_owned(),
    }
}

fn target_python(root: &Path) -> Python {
    Python {
        program: PathBuf::from("python3"),
        packages: Some(root.to_owned()),
        root: root.to_owned(),
    }
}

/// Why the venv route failed: making the venv (try the fallback), or
/// installing into it (the fallback would fail the same way).
enum Failure {
    Venv(String),
    Install(String),
}

fn make_venv(root: &Path, requirements: &Path) -> Result<Python, Failure> {
    run(Command::new("python3").arg("-m").arg("venv").arg(root)).map_err(Failure::Venv)?;
    let python = venv_python(root);
    run(python.command().args(pip_install(requirements))).map_err(Failure::Install)?;
    Ok(python)
}

fn install_target(root: &Path, requirements: &Path) -> Result<Python, String> {
    let python = target_python(root);
    run(python
        .command()
        .args(pip_install(requirements))
        .arg("--target")
        .arg(root))?;
    Ok(python)
}

fn pip_install(requirements: &Path) -> Vec<std::ffi::OsString> {
    let mut args: Vec<std::ffi::OsString> = [
        "-m",
        "pip",
        "install",
        "--disable-pip-version-check",
        "--no-input",
        "--quiet",
        "-r",
    ]
    .map(Into::into)
    .into();
    args.push(requirements.into());
    args
}

fn remove(root: &Path) -> Result<(), String> {
    match fs::remove_dir_all(root) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
            Err(format!("removing `{}`: {error}", root.display()))
        }
        _ => Ok(()),
    }
}

/// Runs `command` and returns its stdout, or what it said when it failed.
fn run(command: &mut Command) -> Result<String, String> {
    let shown = format!("{command:?}");
    let output: Output = command
        .output()
        .map_err(|error| format!("`{shown}` did not start: {error}"))?;
    if output.status.success() {
        return Ok(String::from_utf8_lossy(&output.stdout).into_owned());
    }
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    // pip's last lines say why; the rest is progress.
    let lines: Vec<&str> = said.trim().lines().collect();
    let tail = lines[lines.len().saturating_sub(15)..].join("\n");
    Err(format!("`{shown}` exited with {}:\n{tail}", output.status))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The packages come from the provisioned environment, at the pinned
    /// versions, whatever the system `python3` has installed itself.
    #[test]
    fn the_tests_python_has_the_pinned_packages_and_no_others() {
        let python = python();
        let script = "import json, sys\n\
                      from importlib import metadata\n\
                      names = sys.argv[1:]\n\
                      found = {name: metadata.version(name) for name in names}\n\
                      print(json.dumps({'found': found, 'prefix': sys.prefix, \
                      'base_prefix': sys.base_prefix, \
                      'site': [path for path in sys.path if 'site-packages' in path]}))";
        let requirements = fs::read_to_string(requirements_path()).unwrap();
        let pins: Vec<(&str, &str)> = requirements
            .lines()
            .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
            .map(|line| line.split_once("==").expect("pinned with =="))
            .collect();
        let output = python
            .command()
            .args(["-c", script])
            .args(pins.iter().map(|(name, _)| name))
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let seen: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        for (name, version) in &pins {
            assert_eq!(seen["found"][name], *version, "{name}: {seen}");
        }
        if python.is_venv() {
            // Only the venv's own site-packages: the system's are not seen.
            assert_ne!(seen["prefix"], seen["base_prefix"], "{seen}");
            let prefix = seen["prefix"].as_str().unwrap();
            for site in seen["site"].as_array().unwrap() {
                assert!(site.as_str().unwrap().starts_with(prefix), "{seen}");
            }
        }
    }
}
