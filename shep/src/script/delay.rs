//! Durations as scripts write them (`90s`, `15m`, `2h`, `1h30m`) and the
//! delays made of them: fixed, uniform, normal, log-normal, exponential.

use std::fmt;
use std::time::Duration;

use rand::Rng as _;
use rand::rngs::StdRng;
use rand_distr::{Distribution as _, Exp, LogNormal, Normal};
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};

/// A duration written `<number><unit>`, repeated: `500ms`, `90s`, `15m`,
/// `2h`, `1d`, `1h30m`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Span(pub Duration);

impl std::str::FromStr for Span {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "`{text}` is not a duration such as `500ms`, `90s`, `15m`, `2h`, `1d` or `1h30m`"
            )
        };
        let mut rest = text.trim();
        if rest.is_empty() {
            return Err(bad());
        }
        let mut total = Duration::ZERO;
        while !rest.is_empty() {
            let digits = rest
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .ok_or_else(bad)?;
            let amount: f64 = rest[..digits].parse().map_err(|_| bad())?;
            rest = &rest[digits..];
            let unit_len = rest
                .find(|c: char| c.is_ascii_digit() || c == '.')
                .unwrap_or(rest.len());
            let seconds = match &rest[..unit_len] {
                "ms" => 0.001,
                "s" => 1.0,
                "m" | "min" => 60.0,
                "h" => 3600.0,
                "d" => 86_400.0,
                _ => return Err(bad()),
            };
            rest = &rest[unit_len..];
            total += Duration::try_from_secs_f64(amount * seconds).map_err(|_| bad())?;
        }
        Ok(Span(total))
    }
}

impl fmt::Display for Span {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let millis = self.0.as_millis();
        match millis {
            0 => write!(formatter, "0s"),
            _ if millis.is_multiple_of(3_600_000) => write!(formatter, "{}h", millis / 3_600_000),
            _ if millis.is_multiple_of(60_000) => write!(formatter, "{}m", millis / 60_000),
            _ if millis.is_multiple_of(1000) => write!(formatter, "{}s", millis / 1000),
            _ => write!(formatter, "{millis}ms"),
        }
    }
}

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(de::Error::custom)
    }
}

/// A mean and a standard deviation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeanSd {
    pub mean: Span,
    pub sd: Span,
}

/// How long to wait before a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum Delay {
    /// Always this long (a bare string: `delay = "15m"`).
    Fixed(Span),
    /// Evenly between two: `{ uniform = ["1m", "5m"] }`.
    Uniform([Span; 2]),
    /// Normal, cut at zero: `{ normal = { mean = "10m", sd = "2m" } }`.
    Normal(MeanSd),
    /// Log-normal with this mean and standard deviation (of the delay
    /// itself, not of its logarithm): a long tail of slow cases.
    Lognormal(MeanSd),
    /// Exponential with this mean: `{ exponential = "10m" }`.
    Exponential(Span),
}

impl Delay {
    /// The delay in a script: a string (fixed) or a one-key table.
    pub(crate) fn deserialize_any<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Delay>, D::Error> {
        struct DelayVisitor;
        impl<'de> Visitor<'de> for DelayVisitor {
            type Value = Option<Delay>;

            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str(
                    "a duration such as \"15m\", or a table { uniform | normal | lognormal | exponential | fixed = ... }",
                )
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
                text.parse()
                    .map(|span| Some(Delay::Fixed(span)))
                    .map_err(E::custom)
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                Delay::deserialize(de::value::MapAccessDeserializer::new(map)).map(Some)
            }
        }
        deserializer.deserialize_any(DelayVisitor)
    }

    /// Checks the parameters; the problem, if any.
    pub(crate) fn problem(&self) -> Option<String> {
        match self {
            Delay::Uniform([low, high]) if low > high => {
                Some(format!("uniform: `{low}` is above `{high}`"))
            }
            Delay::Lognormal(spec) if spec.mean.0.is_zero() => {
                Some("lognormal: the mean must be above zero".to_owned())
            }
            Delay::Exponential(mean) if mean.0.is_zero() => {
                Some("exponential: the mean must be above zero".to_owned())
            }
            _ => None,
        }
    }

    /// Draws one delay.
    pub fn sample(&self, rng: &mut StdRng) -> Duration {
        let seconds = match *self {
            Delay::Fixed(span) => return span.0,
            Delay::Uniform([low, high]) => {
                rng.gen_range(low.0.as_secs_f64()..=high.0.as_secs_f64())
            }
            Delay::Normal(MeanSd { mean, sd }) => {
                Normal::new(mean.0.as_secs_f64(), sd.0.as_secs_f64())
                    .map(|normal| normal.sample(rng))
                    .unwrap_or(mean.0.as_secs_f64())
            }
            Delay::Lognormal(MeanSd { mean, sd }) => {
                // The parameters of the logarithm from the delay's own mean
                // and deviation: sigma^2 = ln(1 + sd^2/mean^2), mu = ln(mean) - sigma^2/2.
                let (mean, sd) = (mean.0.as_secs_f64(), sd.0.as_secs_f64());
                let sigma2 = (1.0 + (sd * sd) / (mean * mean)).ln();
                LogNormal::new(mean.ln() - sigma2 / 2.0, sigma2.sqrt())
                    .map(|lognormal| lognormal.sample(rng))
                    .unwrap_or(mean)
            }
            Delay::Exponential(mean) => Exp::new(1.0 / mean.0.as_secs_f64())
                .map(|exp| exp.sample(rng))
                .unwrap_or(mean.0.as_secs_f64()),
        };
        Duration::try_from_secs_f64(seconds.max(0.0)).unwrap_or_default()
    }
}
