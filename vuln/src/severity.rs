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
    let mut best: Option<(u8, f64, String)> = None;
    for r in records.clone() {
        for s in &r.severity {
            let (Some(rank), Ok(cvss)) = (cvss_rank(&s.kind), cvss::Cvss::from_str(&s.score)) else { continue };
            let score = cvss.score();
            if best.as_ref().is_none_or(|(br, bs, _)| (rank, score) > (*br, *bs)) {
                best = Some((rank, score, s.score.clone()));
            }
        }
    }
    if let Some((_, score, vector)) = best {
        return SeverityInfo { rating: Rating::of_score(score), score: Some(score), vector: Some(vector) };
    }
    let mut rating = Rating::Unknown;
    for r in records {
        let words = r
            .database_specific
            .iter()
            .chain(r.affected.iter().flat_map(|a| a.ecosystem_specific.iter().chain(a.database_specific.iter())))
            .filter_map(|v| v.get("severity").or_else(|| v.get("urgency")))
            .filter_map(|v| v.as_str());
        for w in words {
            rating = rating.max(Rating::of_word(w.trim_end_matches('*')).unwrap_or(Rating::Unknown));
        }
        for s in r.severity.iter().filter(|s| cvss_rank(&s.kind).is_none()) {
            rating = rating.max(Rating::of_word(&s.score).unwrap_or(Rating::Unknown));
        }
    }
    SeverityInfo { rating, score: None, vector: None }
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
        assert_eq!(of_records([&r]).rating, Rating::Medium);
    }
}
