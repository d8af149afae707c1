//! Severity of a finding: a CVSS base score computed from the vector where a record gives
//! one (v4 preferred, then v3, then v2), the database's own rating otherwise.

use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::osv::Record;

/// Qualitative rating, ordered from least to most severe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Rating {
    /// No rating anywhere in the records.
    #[default]
    Unknown,
    /// CVSS 0.0.
    None,
    /// CVSS 0.1–3.9.
    Low,
    /// CVSS 4.0–6.9 (GitHub's MODERATE).
    Medium,
    /// CVSS 7.0–8.9.
    High,
    /// CVSS 9.0–10.0.
    Critical,
}

impl Rating {
    /// From a CVSS base score.
    pub fn of_score(score: f64) -> Rating {
        match score {
            s if s >= 9.0 => Rating::Critical,
            s if s >= 7.0 => Rating::High,
            s if s >= 4.0 => Rating::Medium,
            s if s > 0.0 => Rating::Low,
            _ => Rating::None,
        }
    }

    /// From a database's word (`HIGH`, `MODERATE`, Debian's `medium`, …).
    pub fn of_word(word: &str) -> Option<Rating> {
        Some(match word.to_ascii_lowercase().as_str() {
            "critical" => Rating::Critical,
            "high" | "important" => Rating::High,
            "moderate" | "medium" => Rating::Medium,
            "low" | "negligible" | "unimportant" => Rating::Low,
            "none" => Rating::None,
            _ => return None,
        })
    }

    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Rating::Unknown => "unknown",
            Rating::None => "none",
            Rating::Low => "low",
            Rating::Medium => "medium",
            Rating::High => "high",
            Rating::Critical => "critical",
        }
    }
}

impl FromStr for Rating {
    type Err = String;
    fn from_str(s: &str) -> Result<Rating, String> {
        match s.to_ascii_lowercase().as_str() {
            "unknown" => Ok(Rating::Unknown),
            other => {
                Rating::of_word(other).ok_or_else(|| format!("unknown severity {s:?} (low, medium, high, critical)"))
            }
        }
    }
}

/// A finding's severity and where it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct SeverityInfo {
    /// The rating.
    pub rating: Rating,
    /// The CVSS base score, when a vector was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    /// The CVSS vector it was computed from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vector: Option<String>,
    /// The record and field the rating was taken from; none when no record rates it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<SeveritySource>,
}

/// Where a rating was read: which record, which field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeveritySource {
    /// The record's id (`GHSA-…`, `PYSEC-…`, `DSA-…`).
    pub record: String,
    /// The field: `severity` with the vector's type (`CVSS_V3`), or the database's own field
    /// (`database_specific.severity`, `affected.ecosystem_specific.urgency`, …).
    pub field: String,
    /// Whether the record is an alias of the matched ones, looked up for its rating only
    /// (PyPA records carry no vector; the GitHub advisory they name often does).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub alias: bool,
}

fn cvss_rank(kind: &str) -> Option<u8> {
    match kind {
        "CVSS_V4" => Some(3),
        "CVSS_V3" => Some(2),
        "CVSS_V2" => Some(1),
        _ => None,
    }
}

/// The severity the records of one vulnerability give: the newest CVSS version present,
/// highest score among them; else the databases' highest rating word.
pub fn of_records<'a>(records: impl IntoIterator<Item = &'a Record> + Clone) -> SeverityInfo {
    of_records_and_aliases(records, std::iter::empty())
}

/// [`of_records`] over the matched records, and over `aliases` (records the matched ones
/// name as aliases, found in the database but not matched) only where the matched records
/// rate nothing: a matched record's own rating always wins.
pub fn of_records_and_aliases<'a>(
    records: impl IntoIterator<Item = &'a Record> + Clone,
    aliases: impl IntoIterator<Item = &'a Record> + Clone,
) -> SeverityInfo {
    let own = rate(records, false);
    if own.rating != Rating::Unknown {
        return own;
    }
    let aliased = rate(aliases, true);
    if aliased.rating != Rating::Unknown { aliased } else { own }
}

fn rate<'a>(records: impl IntoIterator<Item = &'a Record> + Clone, alias: bool) -> SeverityInfo {
    let source = |record: &str, field: String| Some(SeveritySource { record: record.to_string(), field, alias });
    let mut best: Option<(u8, f64, &str, &str, &str)> = None;
    for r in records.clone() {
        for s in &r.severity {
            let (Some(rank), Ok(cvss)) = (cvss_rank(&s.kind), cvss::Cvss::from_str(&s.score)) else { continue };
            let score = cvss.score();
            if best.as_ref().is_none_or(|(br, bs, ..)| (rank, score) > (*br, *bs)) {
                best = Some((rank, score, &s.score, &r.id, &s.kind));
            }
        }
    }
    if let Some((_, score, vector, id, kind)) = best {
        return SeverityInfo {
            rating: Rating::of_score(score),
            score: Some(score),
            vector: Some(vector.to_string()),
            source: source(id, format!("severity {kind}")),
        };
    }
    let mut found = SeverityInfo::default();
    for r in records {
        let fields = [("database_specific", r.database_specific.as_ref())]
            .into_iter()
            .chain(r.affected.iter().flat_map(|a| {
                [
                    ("affected.ecosystem_specific", a.ecosystem_specific.as_ref()),
                    ("affected.database_specific", a.database_specific.as_ref()),
                ]
            }))
            .filter_map(|(place, v)| Some((place, v?)));
        let mut words: Vec<(String, &str)> = Vec::new();
        for (place, v) in fields {
            for key in ["severity", "urgency"] {
                if let Some(w) = v.get(key).and_then(|w| w.as_str()) {
                    words.push((format!("{place}.{key}"), w.trim_end_matches('*')));
                }
            }
        }
        for s in r.severity.iter().filter(|s| cvss_rank(&s.kind).is_none()) {
            words.push((format!("severity {}", s.kind), &s.score));
        }
        for (field, w) in words {
            let rating = Rating::of_word(w).unwrap_or(Rating::Unknown);
            if rating > found.rating {
                found = SeverityInfo { rating, score: None, vector: None, source: source(&r.id, field) };
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cvss_vectors_are_scored() {
        let r: Record = serde_json::from_str(
            r#"{"id":"X","severity":[{"type":"CVSS_V3","score":"CVSS:3.1/AV:N/AC:L/PR:H/UI:N/S:U/C:H/I:H/A:H"}],"affected":[]}"#,
        )
        .unwrap();
        let s = of_records([&r]);
        assert_eq!(s.score, Some(7.2));
        assert_eq!(s.rating, Rating::High);
        let r: Record = serde_json::from_str(r#"{"id":"Y","database_specific":{"severity":"MODERATE"}}"#).unwrap();
        let s = of_records([&r]);
        assert_eq!(s.rating, Rating::Medium);
        let source = s.source.unwrap();
        assert_eq!(
            (source.record.as_str(), source.field.as_str(), source.alias),
            ("Y", "database_specific.severity", false)
        );
    }

    fn real(path: &std::path::Path) -> Record {
        Record::parse(&std::fs::read(path).unwrap()).unwrap()
    }

    /// Real records: the PyPA record for requests rates nothing; the GitHub advisory it names
    /// as an alias does, and is said to be where the rating came from. A record's own vector
    /// wins over an alias's.
    #[test]
    fn an_alias_rates_what_the_matched_records_do_not() {
        let pysec = real(&testkit::fixtures::osv().join("PyPI/PYSEC-2023-74.json"));
        let ghsa =
            real(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/github/GHSA-j8r2-6x86-q33q.json"));
        assert_eq!(of_records([&pysec]), SeverityInfo::default());
        let s = of_records_and_aliases([&pysec], [&ghsa]);
        assert_eq!((s.rating, s.score), (Rating::Medium, Some(6.1)));
        assert_eq!(
            s.source,
            Some(SeveritySource { record: ghsa.id.clone(), field: "severity CVSS_V3".into(), alias: true })
        );
        // urllib3's PyPA record has its own vector (8.1): the alias is not consulted.
        let rated = real(&testkit::fixtures::osv().join("PyPI/PYSEC-2023-192.json"));
        let s = of_records_and_aliases([&rated], [&ghsa]);
        assert_eq!((s.score, s.source.map(|s| s.record)), (Some(8.1), Some("PYSEC-2023-192".to_string())));
    }
}
