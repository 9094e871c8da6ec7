//! Service deadlines and the working-day calendar they are counted in.

use std::fmt;

use time::{Date, Duration, Month, OffsetDateTime, UtcOffset, Weekday};

/// Astana time (UTC+5), in which the regulations' days are counted.
pub const KZ_OFFSET: UtcOffset = match UtcOffset::from_hms(5, 0, 0) {
    Ok(offset) => offset,
    Err(_) => panic!("valid offset"),
};

/// The unit of a service deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadlineUnit {
    Minutes,
    WorkingDays,
    CalendarDays,
}

/// A service deadline such as "5 working-days".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    pub amount: u32,
    pub unit: DeadlineUnit,
}

impl fmt::Display for Deadline {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = match self.unit {
            DeadlineUnit::Minutes => "minutes",
            DeadlineUnit::WorkingDays => "working-days",
            DeadlineUnit::CalendarDays => "calendar-days",
        };
        write!(formatter, "{} {unit}", self.amount)
    }
}

impl std::str::FromStr for Deadline {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let mut parts = text.split_whitespace();
        let (Some(amount), Some(unit), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(format!(
                "`{text}` is not `<n> <unit>` (units: minutes, working-days, calendar-days)"
            ));
        };
        let amount: u32 = amount
            .parse()
            .map_err(|_| format!("`{amount}` is not a whole number"))?;
        if amount == 0 {
            return Err("a deadline must be longer than zero".to_owned());
        }
        let unit = match unit {
            "minutes" => DeadlineUnit::Minutes,
            "working-days" => DeadlineUnit::WorkingDays,
            "calendar-days" => DeadlineUnit::CalendarDays,
            other => {
                return Err(format!(
                    "unknown unit `{other}` (units: minutes, working-days, calendar-days)"
                ));
            }
        };
        Ok(Self { amount, unit })
    }
}

/// Fixed-date public holidays of Kazakhstan (month, day). Movable ones
/// (Kurban Ait) and transferred days off are not modelled yet.
const HOLIDAYS: &[(Month, u8)] = &[
    (Month::January, 1),
    (Month::January, 2),
    (Month::January, 7),
    (Month::March, 8),
    (Month::March, 21),
    (Month::March, 22),
    (Month::March, 23),
    (Month::May, 1),
    (Month::May, 7),
    (Month::May, 9),
    (Month::July, 6),
    (Month::August, 30),
    (Month::October, 25),
    (Month::December, 16),
];

/// The working-day calendar: weekends and the fixed-date public holidays,
/// plus configured extra holidays (Курбан айт, bridge days) and extra working
/// days (a Saturday worked to bridge a holiday).
#[derive(Debug, Clone, Default)]
pub struct Calendar {
    extra_holidays: std::collections::HashSet<Date>,
    extra_working_days: std::collections::HashSet<Date>,
}

impl Calendar {
    /// The default calendar with these exceptions.
    pub fn new(extra_holidays: Vec<Date>, extra_working_days: Vec<Date>) -> Self {
        Self {
            extra_holidays: extra_holidays.into_iter().collect(),
            extra_working_days: extra_working_days.into_iter().collect(),
        }
    }

    /// Whether `date` is a working day.
    pub fn is_working_day(&self, date: Date) -> bool {
        if self.extra_working_days.contains(&date) {
            return true;
        }
        !matches!(date.weekday(), Weekday::Saturday | Weekday::Sunday)
            && !self.extra_holidays.contains(&date)
            && !HOLIDAYS
                .iter()
                .any(|(month, day)| date.month() == *month && date.day() == *day)
    }
}

/// Parses `YYYY-MM-DD`.
pub fn parse_date(text: &str) -> Result<Date, String> {
    Date::parse(
        text,
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .map_err(|_| format!("`{text}` is not a date (YYYY-MM-DD)"))
}

impl Calendar {
    /// `start` moved forwards by `days` working days, to the same local
    /// (Astana) time of day; the day of `start` does not count.
    pub fn add_working_days(&self, start: OffsetDateTime, days: u32) -> OffsetDateTime {
        let local = start.to_offset(KZ_OFFSET);
        let mut date = local.date();
        let mut counted = 0;
        while counted < days {
            date = date.next_day().unwrap_or(date);
            if self.is_working_day(date) {
                counted += 1;
            }
        }
        date.with_time(local.time())
            .assume_offset(KZ_OFFSET)
            .to_offset(start.offset())
    }
}

impl Deadline {
    /// When a request accepted at `start` is due. Working days end at 18:00
    /// Astana time on the last working day counted; the day of acceptance does
    /// not count.
    pub fn due(&self, start: OffsetDateTime, calendar: &Calendar) -> OffsetDateTime {
        match self.unit {
            DeadlineUnit::Minutes => start + Duration::minutes(i64::from(self.amount)),
            DeadlineUnit::CalendarDays => start + Duration::days(i64::from(self.amount)),
            DeadlineUnit::WorkingDays => {
                let local = start.to_offset(KZ_OFFSET);
                let mut date = local.date();
                let mut counted = 0;
                while counted < self.amount {
                    date = date.next_day().unwrap_or(date);
                    if calendar.is_working_day(date) {
                        counted += 1;
                    }
                }
                date.with_hms(18, 0, 0)
                    .expect("valid time")
                    .assume_offset(KZ_OFFSET)
                    .to_offset(start.offset())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn parses_and_prints_deadlines() {
        let deadline: Deadline = "5 working-days".parse().unwrap();
        assert_eq!(deadline.to_string(), "5 working-days");
        assert!("0 minutes".parse::<Deadline>().is_err());
        assert!("5 fortnights".parse::<Deadline>().is_err());
        assert!("five working-days".parse::<Deadline>().is_err());
    }

    #[test]
    fn working_days_skip_weekends() {
        // Thursday 2026-11-19 + 5 working days = Thursday 2026-11-26.
        let due = Deadline {
            amount: 5,
            unit: DeadlineUnit::WorkingDays,
        }
        .due(datetime!(2026-11-19 10:00 +5), &Calendar::default());
        assert_eq!(due, datetime!(2026-11-26 18:00 +5));
    }

    #[test]
    fn working_days_skip_public_holidays() {
        // Monday 2026-12-14 + 3 working days: 15th, (16th holiday), 17th, 18th.
        let due = Deadline {
            amount: 3,
            unit: DeadlineUnit::WorkingDays,
        }
        .due(datetime!(2026-12-14 09:00 +5), &Calendar::default());
        assert_eq!(due, datetime!(2026-12-18 18:00 +5));
    }

    #[test]
    fn configured_exceptions_move_the_due_date() {
        let deadline = Deadline {
            amount: 2,
            unit: DeadlineUnit::WorkingDays,
        };
        // Friday 2026-05-22 + 2 working days: Monday 25th, Tuesday 26th.
        let start = datetime!(2026-05-22 10:00 +5);
        assert_eq!(
            deadline.due(start, &Calendar::default()),
            datetime!(2026-05-26 18:00 +5)
        );
        // Kurban Ait on Monday 25th moves it to Wednesday 27th ...
        let holiday = Calendar::new(vec![parse_date("2026-05-25").unwrap()], Vec::new());
        assert_eq!(
            deadline.due(start, &holiday),
            datetime!(2026-05-27 18:00 +5)
        );
        // ... unless Saturday 23rd is worked instead.
        let worked = Calendar::new(
            vec![parse_date("2026-05-25").unwrap()],
            vec![parse_date("2026-05-23").unwrap()],
        );
        assert_eq!(deadline.due(start, &worked), datetime!(2026-05-26 18:00 +5));
        assert!(parse_date("2026-13-01").is_err());
    }

    #[test]
    fn minutes_and_calendar_days_are_plain_durations() {
        let start = datetime!(2026-11-20 10:00 UTC);
        let minutes = Deadline {
            amount: 5,
            unit: DeadlineUnit::Minutes,
        };
        assert_eq!(
            minutes.due(start, &Calendar::default()),
            datetime!(2026-11-20 10:05 UTC)
        );
        let days = Deadline {
            amount: 15,
            unit: DeadlineUnit::CalendarDays,
        };
        assert_eq!(
            days.due(start, &Calendar::default()),
            datetime!(2026-12-05 10:00 UTC)
        );
    }
}
