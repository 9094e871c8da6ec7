//! IIN and BIN: the 12-digit identifiers of individuals and legal entities.
//!
//! Both end in a check digit computed the same way: weights 1..=11 mod 11, and
//! when that gives 10, weights 3..=11,1,2 mod 11; when that gives 10 again the
//! number is never issued. Real fixtures exist with bad check digits, so
//! validation has a lenient mode that checks only the shape.

use time::{Date, Month};

const WEIGHTS_FIRST: [u32; 11] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
const WEIGHTS_SECOND: [u32; 11] = [3, 4, 5, 6, 7, 8, 9, 10, 11, 1, 2];

/// How strictly an identifier is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Strictness {
    /// Structure and check digit.
    #[default]
    Strict,
    /// Twelve digits and a plausible structure; the check digit is not checked.
    Lenient,
}

/// Why an identifier is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentError {
    #[error("must be 12 digits")]
    Shape,
    #[error("check digit is {found}, expected {expected}")]
    CheckDigit { expected: u8, found: u8 },
    #[error("no check digit exists for this prefix: the number is never issued")]
    NeverIssued,
    #[error("digit 7 (century and sex) must be 1-6, found {0}")]
    CenturySex(u8),
    #[error("`{0}` is not a valid birth date")]
    BirthDate(String),
    #[error("digit 5 (entity type) must be 4, 5 or 6, found {0}")]
    EntityType(u8),
    #[error("digit 6 (unit type) must be 0-3, found {0}")]
    UnitType(u8),
    #[error("month `{0}` of registration is not 01-12")]
    RegistrationMonth(u8),
}

/// Sex encoded in an IIN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sex {
    Male,
    Female,
}

/// What an IIN says about its holder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IinInfo {
    pub birth_date: Date,
    pub sex: Sex,
}

/// What a BIN says about its entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BinInfo {
    /// Two-digit year of (re-)registration.
    pub year: u8,
    /// Month of (re-)registration, 1-12.
    pub month: u8,
    /// 4 resident legal entity, 5 non-resident, 6 joint individual entrepreneurship.
    pub entity_type: u8,
    /// 0 head unit, 1 branch, 2 representative office, 3 peasant/farm household.
    pub unit_type: u8,
}

fn digits(id: &str) -> Result<[u8; 12], IdentError> {
    let bytes = id.as_bytes();
    if bytes.len() != 12 || !bytes.iter().all(u8::is_ascii_digit) {
        return Err(IdentError::Shape);
    }
    let mut out = [0u8; 12];
    for (slot, byte) in out.iter_mut().zip(bytes) {
        *slot = byte - b'0';
    }
    Ok(out)
}

/// Computes the check digit for the first 11 digits, or `None` when the
/// prefix is never issued.
pub fn check_digit(prefix: &[u8; 11]) -> Option<u8> {
    let weighted = |weights: &[u32; 11]| {
        prefix
            .iter()
            .zip(weights)
            .map(|(digit, weight)| u32::from(*digit) * weight)
            .sum::<u32>()
            % 11
    };
    match weighted(&WEIGHTS_FIRST) {
        10 => match weighted(&WEIGHTS_SECOND) {
            10 => None,
            second => Some(second as u8),
        },
        first => Some(first as u8),
    }
}

fn verify_check_digit(all: &[u8; 12]) -> Result<(), IdentError> {
    let prefix: [u8; 11] = all[..11].try_into().expect("11 of 12 digits");
    let expected = check_digit(&prefix).ok_or(IdentError::NeverIssued)?;
    if expected != all[11] {
        return Err(IdentError::CheckDigit {
            expected,
            found: all[11],
        });
    }
    Ok(())
}

/// Validates an IIN and decodes its birth date and sex.
pub fn parse_iin(iin: &str, strictness: Strictness) -> Result<IinInfo, IdentError> {
    let all = digits(iin)?;
    let century_sex = all[6];
    let (century, sex) = match century_sex {
        1 => (1800, Sex::Male),
        2 => (1800, Sex::Female),
        3 => (1900, Sex::Male),
        4 => (1900, Sex::Female),
        5 => (2000, Sex::Male),
        6 => (2000, Sex::Female),
        other => return Err(IdentError::CenturySex(other)),
    };
    let year = century + i32::from(all[0] * 10 + all[1]);
    let month = all[2] * 10 + all[3];
    let day = all[4] * 10 + all[5];
    let birth_date = Month::try_from(month)
        .ok()
        .and_then(|month| Date::from_calendar_date(year, month, day).ok())
        .ok_or_else(|| IdentError::BirthDate(iin[..6].to_owned()))?;
    if strictness == Strictness::Strict {
        verify_check_digit(&all)?;
    }
    Ok(IinInfo { birth_date, sex })
}

/// Validates a BIN and decodes its structure.
pub fn parse_bin(bin: &str, strictness: Strictness) -> Result<BinInfo, IdentError> {
    let all = digits(bin)?;
    let month = all[2] * 10 + all[3];
    if !(1..=12).contains(&month) {
        return Err(IdentError::RegistrationMonth(month));
    }
    if !(4..=6).contains(&all[4]) {
        return Err(IdentError::EntityType(all[4]));
    }
    if all[5] > 3 {
        return Err(IdentError::UnitType(all[5]));
    }
    if strictness == Strictness::Strict {
        verify_check_digit(&all)?;
    }
    Ok(BinInfo {
        year: all[0] * 10 + all[1],
        month,
        entity_type: all[4],
        unit_type: all[5],
    })
}

/// Builds an IIN from a birth date, sex and 4-digit serial, or `None` when that
/// prefix is never issued (try the next serial) or the date is out of range.
pub fn make_iin(birth_date: Date, sex: Sex, serial: u16) -> Option<String> {
    let year = birth_date.year();
    let century_sex = match (year / 100, sex) {
        (18, Sex::Male) => 1,
        (18, Sex::Female) => 2,
        (19, Sex::Male) => 3,
        (19, Sex::Female) => 4,
        (20, Sex::Male) => 5,
        (20, Sex::Female) => 6,
        _ => return None,
    };
    if serial > 9999 {
        return None;
    }
    let prefix = format!(
        "{:02}{:02}{:02}{century_sex}{serial:04}",
        year % 100,
        u8::from(birth_date.month()),
        birth_date.day()
    );
    let digits: [u8; 11] = prefix
        .bytes()
        .map(|byte| byte - b'0')
        .collect::<Vec<_>>()
        .try_into()
        .ok()?;
    check_digit(&digits).map(|check| format!("{prefix}{check}"))
}

/// Builds a BIN from its registration year (two digits) and month, entity
/// type (4-6), unit type (0-3) and 5-digit serial, or `None` when that prefix
/// is never issued or a part is out of range.
pub fn make_bin(
    year: u8,
    month: u8,
    entity_type: u8,
    unit_type: u8,
    serial: u32,
) -> Option<String> {
    if year > 99
        || !(1..=12).contains(&month)
        || !(4..=6).contains(&entity_type)
        || unit_type > 3
        || serial > 99_999
    {
        return None;
    }
    let prefix = format!("{year:02}{month:02}{entity_type}{unit_type}{serial:05}");
    let digits: [u8; 11] = prefix
        .bytes()
        .map(|byte| byte - b'0')
        .collect::<Vec<_>>()
        .try_into()
        .ok()?;
    check_digit(&digits).map(|check| format!("{prefix}{check}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_published_vectors() {
        for bin in ["940140000385", "990140004654"] {
            parse_bin(bin, Strictness::Strict).unwrap();
        }
        for iin in [
            "791028302728",
            "061211600012",
            "910312400290",
            "900101300811",
        ] {
            parse_iin(iin, Strictness::Strict).unwrap();
        }
    }

    #[test]
    fn decodes_birth_date_and_sex() {
        let info = parse_iin("061211600012", Strictness::Strict).unwrap();
        assert_eq!(
            info.birth_date,
            Date::from_calendar_date(2006, Month::December, 11).unwrap()
        );
        assert_eq!(info.sex, Sex::Female);
    }

    #[test]
    fn second_weight_pass_is_used_when_first_gives_ten() {
        let prefix: [u8; 11] = [9, 0, 0, 1, 0, 1, 3, 0, 0, 8, 1];
        assert_eq!(check_digit(&prefix), Some(1));
    }

    #[test]
    fn prefix_with_two_tens_is_never_issued() {
        let prefix: [u8; 11] = [9, 0, 0, 1, 0, 1, 3, 0, 0, 8, 0];
        assert_eq!(check_digit(&prefix), None);
        assert_eq!(
            parse_iin("900101300800", Strictness::Strict),
            Err(IdentError::NeverIssued)
        );
    }

    #[test]
    fn rejects_bad_check_digit_only_when_strict() {
        assert_eq!(
            parse_iin("911212333888", Strictness::Strict),
            Err(IdentError::CheckDigit {
                expected: 4,
                found: 8
            })
        );
        parse_iin("911212333888", Strictness::Lenient).unwrap();
    }

    #[test]
    fn rejects_bad_shape_and_structure() {
        assert_eq!(
            parse_iin("12345", Strictness::Lenient),
            Err(IdentError::Shape)
        );
        assert_eq!(
            parse_iin("79102830272a", Strictness::Lenient),
            Err(IdentError::Shape)
        );
        assert_eq!(
            parse_iin("791328302728", Strictness::Lenient),
            Err(IdentError::BirthDate("791328".into()))
        );
        assert_eq!(
            parse_iin("791028702728", Strictness::Lenient),
            Err(IdentError::CenturySex(7))
        );
        assert_eq!(
            parse_bin("941340000385", Strictness::Lenient),
            Err(IdentError::RegistrationMonth(13))
        );
        assert_eq!(
            parse_bin("940170000385", Strictness::Lenient),
            Err(IdentError::EntityType(7))
        );
    }

    #[test]
    fn made_iins_round_trip() {
        let date = Date::from_calendar_date(1985, Month::March, 15).unwrap();
        let mut made = 0;
        for serial in 0..50 {
            if let Some(iin) = make_iin(date, Sex::Male, serial) {
                let info = parse_iin(&iin, Strictness::Strict).unwrap();
                assert_eq!(info.birth_date, date);
                assert_eq!(info.sex, Sex::Male);
                made += 1;
            }
        }
        assert!(made > 40, "most serials are issuable, got {made}");
    }

    #[test]
    fn made_bins_round_trip() {
        let bin = make_bin(94, 1, 4, 0, 38).unwrap();
        assert_eq!(bin, "940140000385");
        let info = parse_bin(&bin, Strictness::Strict).unwrap();
        assert_eq!((info.year, info.month), (94, 1));
        assert_eq!((info.entity_type, info.unit_type), (4, 0));
        assert_eq!(make_bin(99, 13, 4, 0, 1), None);
        assert_eq!(make_bin(99, 1, 7, 0, 1), None);
    }

    #[test]
    fn lenient_mode_still_checks_the_structure_of_a_bin() {
        // Valid structure, wrong check digit (5 is right).
        assert_eq!(
            parse_bin("940140000386", Strictness::Strict),
            Err(IdentError::CheckDigit {
                expected: 5,
                found: 6
            })
        );
        parse_bin("940140000386", Strictness::Lenient).unwrap();
        assert_eq!(
            parse_bin("940140000386".get(..11).unwrap(), Strictness::Lenient),
            Err(IdentError::Shape)
        );
        assert_eq!(
            parse_bin("940148000385", Strictness::Lenient),
            Err(IdentError::UnitType(8))
        );
    }

    #[test]
    fn no_number_is_both_an_iin_and_a_bin() {
        // An IIN's 5th digit starts the birth day (0-3); a BIN's is its entity
        // type (4-6). Lookups and fixtures rely on this.
        for id in ["940140000385", "990140004654"] {
            assert!(parse_iin(id, Strictness::Lenient).is_err());
        }
        for id in [
            "791028302728",
            "061211600012",
            "910312400290",
            "900101300811",
        ] {
            assert!(parse_bin(id, Strictness::Lenient).is_err());
        }
    }
}
