//! What the НУЦ knows about the certificates it issued: which serials exist,
//! which are revoked, when and why. Kept in two small append-only files beside
//! the CA (`issued.tsv`, `revoked.tsv`) so revocations survive restarts.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use time::OffsetDateTime;

use super::NucError;

/// RFC 5280 revocation reasons the НУЦ records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevocationReason {
    Unspecified,
    KeyCompromise,
    AffiliationChanged,
    Superseded,
    CessationOfOperation,
}

impl RevocationReason {
    /// The name used in files, the CLI and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unspecified => "unspecified",
            Self::KeyCompromise => "key-compromise",
            Self::AffiliationChanged => "affiliation-changed",
            Self::Superseded => "superseded",
            Self::CessationOfOperation => "cessation-of-operation",
        }
    }

    /// Every reason, for help texts.
    pub const ALL: [Self; 5] = [
        Self::Unspecified,
        Self::KeyCompromise,
        Self::AffiliationChanged,
        Self::Superseded,
        Self::CessationOfOperation,
    ];

    pub(super) fn to_rcgen(self) -> rcgen::RevocationReason {
        match self {
            Self::Unspecified => rcgen::RevocationReason::Unspecified,
            Self::KeyCompromise => rcgen::RevocationReason::KeyCompromise,
            Self::AffiliationChanged => rcgen::RevocationReason::AffiliationChanged,
            Self::Superseded => rcgen::RevocationReason::Superseded,
            Self::CessationOfOperation => rcgen::RevocationReason::CessationOfOperation,
        }
    }
}

impl std::str::FromStr for RevocationReason {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|reason| reason.as_str() == text)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|reason| reason.as_str()).collect();
                format!("unknown reason `{text}` (one of: {})", names.join(", "))
            })
    }
}

/// A certificate's status as the НУЦ answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertificateStatus {
    Good,
    Revoked {
        at: OffsetDateTime,
        reason: RevocationReason,
    },
    /// Not issued by this НУЦ.
    Unknown,
}

/// One issued certificate.
#[derive(Debug, Clone)]
pub struct IssuedRecord {
    pub serial: Vec<u8>,
    pub subject: String,
    pub not_after: OffsetDateTime,
}

#[derive(Debug, Default)]
struct State {
    issued: HashMap<Vec<u8>, IssuedRecord>,
    revoked: HashMap<Vec<u8>, (OffsetDateTime, RevocationReason)>,
}

/// Issued and revoked serials, persisted when the CA has a directory.
#[derive(Debug, Default)]
pub struct RevocationRegistry {
    dir: Option<PathBuf>,
    state: Mutex<State>,
}

const ISSUED_FILE: &str = "issued.tsv";
const REVOKED_FILE: &str = "revoked.tsv";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Parses a hex serial number (colons and spaces allowed, as tools print them).
pub fn parse_serial(text: &str) -> Option<Vec<u8>> {
    let digits: String = text
        .chars()
        .filter(|char| !matches!(char, ':' | ' '))
        .collect();
    if digits.is_empty() || !digits.len().is_multiple_of(2) {
        return None;
    }
    (0..digits.len())
        .step_by(2)
        .map(|index| u8::from_str_radix(&digits[index..index + 2], 16).ok())
        .collect()
}

/// Formats a serial number as lowercase hex.
pub fn format_serial(serial: &[u8]) -> String {
    hex(serial)
}

fn corrupt(path: &Path, line: usize, problem: &str) -> NucError {
    NucError::Corrupt {
        path: path.display().to_string(),
        line,
        problem: problem.to_owned(),
    }
}

impl RevocationRegistry {
    /// A registry persisted in `dir` (loading what is there), or in memory.
    pub fn open(dir: Option<&Path>) -> Result<Self, NucError> {
        let mut state = State::default();
        if let Some(dir) = dir {
            let issued = dir.join(ISSUED_FILE);
            for (index, line) in read_lines(&issued)?.iter().enumerate() {
                let fields: Vec<&str> = line.splitn(3, '\t').collect();
                let [serial, not_after, subject] = fields[..] else {
                    return Err(corrupt(
                        &issued,
                        index + 1,
                        "expected 3 tab-separated fields",
                    ));
                };
                let serial = parse_serial(serial)
                    .ok_or_else(|| corrupt(&issued, index + 1, "bad serial"))?;
                let not_after = not_after
                    .parse::<i64>()
                    .ok()
                    .and_then(|secs| OffsetDateTime::from_unix_timestamp(secs).ok())
                    .ok_or_else(|| corrupt(&issued, index + 1, "bad time"))?;
                state.issued.insert(
                    serial.clone(),
                    IssuedRecord {
                        serial,
                        subject: subject.to_owned(),
                        not_after,
                    },
                );
            }
            let revoked = dir.join(REVOKED_FILE);
            for (index, line) in read_lines(&revoked)?.iter().enumerate() {
                let fields: Vec<&str> = line.split('\t').collect();
                let [serial, at, reason] = fields[..] else {
                    return Err(corrupt(
                        &revoked,
                        index + 1,
                        "expected 3 tab-separated fields",
                    ));
                };
                let serial = parse_serial(serial)
                    .ok_or_else(|| corrupt(&revoked, index + 1, "bad serial"))?;
                let at = at
                    .parse::<i64>()
                    .ok()
                    .and_then(|secs| OffsetDateTime::from_unix_timestamp(secs).ok())
                    .ok_or_else(|| corrupt(&revoked, index + 1, "bad time"))?;
                let reason = reason
                    .parse()
                    .map_err(|problem: String| corrupt(&revoked, index + 1, &problem))?;
                state.revoked.insert(serial, (at, reason));
            }
        }
        Ok(Self {
            dir: dir.map(Path::to_owned),
            state: Mutex::new(state),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn append(&self, file: &str, line: &str) -> Result<(), NucError> {
        let Some(dir) = &self.dir else {
            return Ok(());
        };
        let path = dir.join(file);
        let write = || -> std::io::Result<()> {
            let mut handle = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)?;
            writeln!(handle, "{line}")?;
            handle.sync_data()
        };
        write().map_err(|source| NucError::Write {
            path: path.display().to_string(),
            source,
        })
    }

    /// Records an issued certificate.
    pub fn record_issued(&self, record: IssuedRecord) -> Result<(), NucError> {
        self.append(
            ISSUED_FILE,
            &format!(
                "{}\t{}\t{}",
                hex(&record.serial),
                record.not_after.unix_timestamp(),
                record.subject.replace(['\t', '\n'], " ")
            ),
        )?;
        self.lock().issued.insert(record.serial.clone(), record);
        Ok(())
    }

    /// Revokes `serial`. Revoking twice keeps the first time and reason.
    pub fn revoke(
        &self,
        serial: &[u8],
        reason: RevocationReason,
        at: OffsetDateTime,
    ) -> Result<CertificateStatus, NucError> {
        if !self.lock().issued.contains_key(serial) {
            return Err(NucError::UnknownSerial(hex(serial)));
        }
        if let Some((at, reason)) = self.lock().revoked.get(serial) {
            return Ok(CertificateStatus::Revoked {
                at: *at,
                reason: *reason,
            });
        }
        // Whole seconds: what the file and a CRL can hold.
        let at = at.replace_nanosecond(0).unwrap_or(at);
        self.append(
            REVOKED_FILE,
            &format!(
                "{}\t{}\t{}",
                hex(serial),
                at.unix_timestamp(),
                reason.as_str()
            ),
        )?;
        self.lock().revoked.insert(serial.to_vec(), (at, reason));
        Ok(CertificateStatus::Revoked { at, reason })
    }

    /// The status of `serial`.
    pub fn status(&self, serial: &[u8]) -> CertificateStatus {
        let state = self.lock();
        match state.revoked.get(serial) {
            Some((at, reason)) => CertificateStatus::Revoked {
                at: *at,
                reason: *reason,
            },
            None if state.issued.contains_key(serial) => CertificateStatus::Good,
            None => CertificateStatus::Unknown,
        }
    }

    /// Every revocation, oldest first.
    pub fn revoked(&self) -> Vec<(Vec<u8>, OffsetDateTime, RevocationReason)> {
        let mut all: Vec<_> = self
            .lock()
            .revoked
            .iter()
            .map(|(serial, (at, reason))| (serial.clone(), *at, *reason))
            .collect();
        all.sort_by_key(|(serial, at, _)| (*at, serial.clone()));
        all
    }

    /// The issued record of `serial`, if any.
    pub fn issued(&self, serial: &[u8]) -> Option<IssuedRecord> {
        self.lock().issued.get(serial).cloned()
    }
}

fn read_lines(path: &Path) -> Result<Vec<String>, NucError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text
            .lines()
            .filter(|line| !line.trim().is_empty())
            .map(str::to_owned)
            .collect()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(source) => Err(NucError::Read {
            path: path.display().to_string(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(serial: u8) -> IssuedRecord {
        IssuedRecord {
            serial: vec![serial],
            subject: "CN=X".to_owned(),
            not_after: OffsetDateTime::now_utc(),
        }
    }

    #[test]
    fn revocations_persist_and_unknown_serials_are_unknown() {
        let dir = std::env::temp_dir().join(format!("shep-revocation-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let registry = RevocationRegistry::open(Some(&dir)).unwrap();
        registry.record_issued(record(1)).unwrap();
        registry.record_issued(record(2)).unwrap();
        let at = OffsetDateTime::now_utc();
        registry
            .revoke(&[1], RevocationReason::KeyCompromise, at)
            .unwrap();
        assert!(matches!(
            registry.revoke(&[9], RevocationReason::Unspecified, at),
            Err(NucError::UnknownSerial(_))
        ));

        let reopened = RevocationRegistry::open(Some(&dir)).unwrap();
        assert!(matches!(
            reopened.status(&[1]),
            CertificateStatus::Revoked {
                reason: RevocationReason::KeyCompromise,
                ..
            }
        ));
        assert_eq!(reopened.status(&[2]), CertificateStatus::Good);
        assert_eq!(reopened.status(&[3]), CertificateStatus::Unknown);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn serials_parse_with_colons() {
        assert_eq!(parse_serial("0a:FF:10"), Some(vec![0x0a, 0xff, 0x10]));
        assert_eq!(parse_serial("abc"), None);
        assert_eq!(format_serial(&[0x0a, 0xff]), "0aff");
    }
}
