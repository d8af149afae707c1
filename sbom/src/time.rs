//! The workspace's one clock and one time format: RFC 3339 in UTC. Every crate that records
//! a time (SBOM documents, the vulnerability database, the flow's records and events) takes
//! it from [`Timestamp::now`].

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A point in time, UTC. Written as RFC 3339 to the second (`2026-11-30T03:53:12Z`); read
/// from RFC 3339 at any precision and offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(DateTime<Utc>);

impl Timestamp {
    /// Now.
    pub fn now() -> Self {
        Timestamp(Utc::now())
    }

    /// Parses RFC 3339.
    pub fn parse(text: &str) -> Result<Self, chrono::ParseError> {
        DateTime::parse_from_rfc3339(text).map(|t| Timestamp(t.with_timezone(&Utc)))
    }

    /// Time from this to now; zero if this is in the future (a clock stepped back).
    pub fn elapsed(&self) -> Duration {
        (Utc::now() - self.0).to_std().unwrap_or_default()
    }

    /// Milliseconds since the Unix epoch.
    pub fn unix_millis(&self) -> i64 {
        self.0.timestamp_millis()
    }

    /// RFC 3339 to the millisecond, for events that follow each other closely.
    pub fn to_millis_string(&self) -> String {
        self.0.to_rfc3339_opts(SecondsFormat::Millis, true)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.to_rfc3339_opts(SecondsFormat::Secs, true))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Timestamp::parse(&text).map_err(|e| serde::de::Error::custom(format!("time {text:?}: {e}")))
    }
}

/// `#[serde(with = "sbom::time::millis")]`: a [`Timestamp`] written to the millisecond.
pub mod millis {
    use serde::{Deserialize, Deserializer, Serializer};

    use super::Timestamp;

    /// Writes `t` to the millisecond.
    pub fn serialize<S: Serializer>(t: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&t.to_millis_string())
    }

    /// Reads RFC 3339 at any precision.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
        Timestamp::deserialize(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_to_the_second_and_read_back_at_any_precision() {
        let t = Timestamp::parse("2026-11-30T03:53:12.345+01:00").unwrap();
        assert_eq!(t.to_string(), "2026-11-30T02:53:12Z");
        assert_eq!(t.to_millis_string(), "2026-11-30T02:53:12.345Z");
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(json, "\"2026-11-30T02:53:12Z\"");
        let back: Timestamp = serde_json::from_str(&json).unwrap();
        assert_eq!(back.to_string(), t.to_string());
        assert!(serde_json::from_str::<Timestamp>("\"yesterday\"").unwrap_err().to_string().contains("yesterday"));
    }
}
