//! The simulated clock: what "now" is for deadlines, overdue marks and
//! leases, globally and per test session, so a 5-working-day deadline can be
//! tested in a second.
//!
//! A clock is an anchor and a rate: simulated time = `anchor` + (real time
//! since `anchor_real`) × `factor`. Setting, advancing or changing the rate
//! re-anchors it, so simulated time never jumps except when asked to. A
//! session without a clock of its own follows the global one; giving it one
//! starts from the global clock's reading.
//!
//! What follows the clock: acceptance and event times, due dates and the
//! overdue events (see `crate::deadlines`), and delivery leases (their
//! length is divided by the factor; an advance past a lease ends it). What
//! does not: the envelope's `message_date` skew check (participants sign
//! with their real clocks) and certificate validity.

use std::sync::RwLock;
use std::time::Duration;

use dashmap::DashMap;
use time::OffsetDateTime;
use tokio::sync::watch;

use crate::calendar::Calendar;

/// The fastest a clock may run: a year of simulated time in about 5 real
/// minutes.
pub const MAX_FACTOR: f64 = 100_000.0;

/// One clock's setting.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Setting {
    /// Real time at the anchor.
    anchor_real: OffsetDateTime,
    /// Simulated time at the anchor.
    anchor: OffsetDateTime,
    /// Simulated seconds per real second.
    factor: f64,
}

impl Setting {
    /// The real clock.
    fn real(now: OffsetDateTime) -> Self {
        Self {
            anchor_real: now,
            anchor: now,
            factor: 1.0,
        }
    }

    /// Simulated time at real time `real`.
    fn at(&self, real: OffsetDateTime) -> OffsetDateTime {
        let elapsed = (real - self.anchor_real).as_seconds_f64() * self.factor;
        self.anchor + time::Duration::seconds_f64(elapsed)
    }

    /// Whether this is the real clock (no offset, factor 1).
    fn is_real(&self) -> bool {
        self.factor == 1.0 && self.anchor == self.anchor_real
    }

    /// The real time that passes while this clock moves by `simulated`.
    fn real_for(&self, simulated: Duration) -> Duration {
        simulated.div_f64(self.factor)
    }
}

/// A change to a clock.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ClockChange {
    /// Jump to this time (forwards or back).
    Set(OffsetDateTime),
    /// Move forwards by this much.
    Advance(Duration),
    /// Move forwards by this many working days, to the same local time.
    AdvanceWorkingDays(u32),
    /// Run at this many simulated seconds per real second from now.
    Factor(f64),
    /// Back to the real clock (a session: back to following the global one).
    Reset,
}

/// What a clock reads, for the Admin API.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reading {
    pub now: OffsetDateTime,
    pub factor: f64,
    /// Simulated time minus real time.
    pub offset: time::Duration,
    /// Whether it differs from the real clock.
    pub simulated: bool,
    /// Whether the session has a clock of its own (false: it follows the
    /// global one).
    pub own: bool,
}

/// Why a clock change was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InvalidClock {
    #[error("the factor must be a number from {min} to {MAX_FACTOR}, not {0}", min = 1.0 / MAX_FACTOR)]
    Factor(f64),
    #[error("moving the clock by {0:?} takes it out of the range of dates")]
    OutOfRange(Duration),
}

/// The global clock and the sessions' own.
#[derive(Debug)]
pub struct Clock {
    global: RwLock<Setting>,
    sessions: DashMap<String, Setting>,
    /// Bumped on every change, so whoever waits for a simulated time
    /// recomputes how long to wait.
    changed: watch::Sender<u64>,
}

impl Default for Clock {
    fn default() -> Self {
        Self {
            global: RwLock::new(Setting::real(OffsetDateTime::now_utc())),
            sessions: DashMap::new(),
            changed: watch::channel(0).0,
        }
    }
}

impl Clock {
    fn setting(&self, session: Option<&str>) -> (Setting, bool) {
        if let Some(session) = session.filter(|session| !session.is_empty())
            && let Some(own) = self.sessions.get(session)
        {
            return (*own, true);
        }
        (
            *self.global.read().unwrap_or_else(|e| e.into_inner()),
            false,
        )
    }

    /// Now, on `session`'s clock (`None` or "": the global one).
    pub fn now(&self, session: Option<&str>) -> OffsetDateTime {
        self.setting(session).0.at(OffsetDateTime::now_utc())
    }

    /// Whether any clock differs from the real one (the hot path skips the
    /// lookups when none does).
    pub fn is_simulated(&self) -> bool {
        !self.sessions.is_empty() || !self.setting(None).0.is_real()
    }

    /// What `session`'s clock reads.
    pub fn reading(&self, session: Option<&str>) -> Reading {
        let real = OffsetDateTime::now_utc();
        let (setting, own) = self.setting(session);
        let now = setting.at(real);
        Reading {
            now,
            factor: setting.factor,
            offset: now - real,
            simulated: !setting.is_real(),
            own,
        }
    }

    /// The real time until `session`'s clock reads `at` (zero if it already
    /// has), at its current rate.
    pub fn real_until(&self, session: Option<&str>, at: OffsetDateTime) -> Duration {
        let (setting, _) = self.setting(session);
        let ahead = at - setting.at(OffsetDateTime::now_utc());
        if ahead <= time::Duration::ZERO {
            return Duration::ZERO;
        }
        setting.real_for(ahead.unsigned_abs())
    }

    /// `lease` of simulated time in real time on `session`'s clock.
    pub fn real_duration(&self, session: Option<&str>, simulated: Duration) -> Duration {
        self.setting(session).0.real_for(simulated)
    }

    /// Applies `change` to `session`'s clock (`None`: the global one) and
    /// returns what it reads now, with how far it jumped forwards.
    pub fn change(
        &self,
        session: Option<&str>,
        change: ClockChange,
        calendar: &Calendar,
    ) -> Result<(Reading, Duration), InvalidClock> {
        let session = session.filter(|session| !session.is_empty());
        let real = OffsetDateTime::now_utc();
        let (current, _) = self.setting(session);
        let before = current.at(real);
        let next = match change {
            ClockChange::Reset => None,
            ClockChange::Set(at) => Some(Setting {
                anchor_real: real,
                anchor: at,
                factor: current.factor,
            }),
            ClockChange::Advance(by) => {
                let by_signed =
                    time::Duration::try_from(by).map_err(|_| InvalidClock::OutOfRange(by))?;
                let anchor = before
                    .checked_add(by_signed)
                    .ok_or(InvalidClock::OutOfRange(by))?;
                Some(Setting {
                    anchor_real: real,
                    anchor,
                    factor: current.factor,
                })
            }
            ClockChange::AdvanceWorkingDays(days) => Some(Setting {
                anchor_real: real,
                anchor: calendar.add_working_days(before, days),
                factor: current.factor,
            }),
            ClockChange::Factor(factor) => {
                if !(factor.is_finite() && (1.0 / MAX_FACTOR..=MAX_FACTOR).contains(&factor)) {
                    return Err(InvalidClock::Factor(factor));
                }
                Some(Setting {
                    anchor_real: real,
                    anchor: before,
                    factor,
                })
            }
        };
        match (session, next) {
            (Some(session), Some(setting)) => {
                self.sessions.insert(session.to_owned(), setting);
            }
            (Some(session), None) => {
                self.sessions.remove(session);
            }
            (None, next) => {
                *self.global.write().unwrap_or_else(|e| e.into_inner()) =
                    next.unwrap_or_else(|| Setting::real(real));
            }
        }
        self.changed.send_modify(|version| *version += 1);
        let reading = self.reading(session);
        let jumped = (reading.now - before).max(time::Duration::ZERO);
        Ok((reading, jumped.unsigned_abs()))
    }

    /// Notified on every change.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_is_real_until_changed() {
        let clock = Clock::default();
        assert!(!clock.is_simulated());
        let real = OffsetDateTime::now_utc();
        let now = clock.now(None);
        assert!((now - real).abs() < time::Duration::seconds(1));
        assert!(!clock.reading(Some("s1")).own);
    }

    #[test]
    fn advancing_a_session_leaves_the_others_alone() {
        let clock = Clock::default();
        let calendar = Calendar::default();
        let (reading, jumped) = clock
            .change(
                Some("s1"),
                ClockChange::Advance(Duration::from_secs(3600)),
                &calendar,
            )
            .unwrap();
        assert!(reading.own && reading.simulated);
        assert!(jumped >= Duration::from_secs(3599));
        let ahead = clock.now(Some("s1")) - clock.now(None);
        assert!(ahead > time::Duration::minutes(59), "{ahead}");
        assert!((clock.now(Some("s2")) - clock.now(None)).abs() < time::Duration::seconds(1));
        clock
            .change(Some("s1"), ClockChange::Reset, &calendar)
            .unwrap();
        assert!(!clock.is_simulated());
    }

    #[test]
    fn a_factor_runs_the_clock_faster_and_shortens_real_waits() {
        let clock = Clock::default();
        let calendar = Calendar::default();
        clock
            .change(None, ClockChange::Factor(60.0), &calendar)
            .unwrap();
        let in_an_hour = clock.now(None) + time::Duration::hours(1);
        let wait = clock.real_until(None, in_an_hour);
        assert!(wait <= Duration::from_secs(60) && wait > Duration::from_secs(59));
        assert_eq!(
            clock.real_duration(None, Duration::from_secs(30)),
            Duration::from_millis(500)
        );
        assert!(matches!(
            clock.change(None, ClockChange::Factor(0.0), &calendar),
            Err(InvalidClock::Factor(_))
        ));
        assert!(
            clock
                .change(None, ClockChange::Factor(f64::NAN), &calendar)
                .is_err()
        );
    }

    #[test]
    fn working_days_skip_the_weekend() {
        let clock = Clock::default();
        let calendar = Calendar::default();
        // Friday 2026-11-20 10:00 Astana + 1 working day = Monday 23rd 10:00.
        let friday = time::macros::datetime!(2026-11-20 10:00 +5);
        clock
            .change(None, ClockChange::Set(friday), &calendar)
            .unwrap();
        let (reading, jumped) = clock
            .change(None, ClockChange::AdvanceWorkingDays(1), &calendar)
            .unwrap();
        assert!(
            reading.now - time::macros::datetime!(2026-11-23 10:00 +5) < time::Duration::seconds(1)
        );
        assert!(jumped >= Duration::from_secs(3 * 86_400 - 1));
    }
}
