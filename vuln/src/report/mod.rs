//! Renderings of a scan: a table for people, JSON, CycloneDX VEX, OpenVEX and SARIF for
//! tools and pipelines.

mod sarif;
mod table;
mod vex;

use std::str::FromStr;

use serde::Serialize;

use crate::matching::{Finding, ScanReport};

/// Output formats of `sniffer scan`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Aligned columns.
    Table,
    /// The [`ScanReport`] with its context.
    Json,
    /// CycloneDX 1.6 with `vulnerabilities` and their analysis.
    CyclonedxVex,
    /// OpenVEX 0.2.0.
    Openvex,
    /// SARIF 2.1.0.
    Sarif,
}

impl FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Format, String> {
        Ok(match s {
            "table" => Format::Table,
            "json" => Format::Json,
            "cyclonedx-vex" => Format::CyclonedxVex,
            "openvex" => Format::Openvex,
            "sarif" => Format::Sarif,
            other => return Err(format!("unknown format {other:?}: table, json, cyclonedx-vex, openvex, sarif")),
        })
    }
}

/// What the report is about, carried into every format.
#[derive(Debug, Clone, Serialize)]
pub struct Context {
    /// The SBOM scanned.
    pub sbom: String,
    /// The SBOM' given, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(rename = "filtered")]
    pub runtime: Option<String>,
    /// The database file.
    pub db: String,
    /// When the database was last updated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub db_updated_at: Option<sbom::time::Timestamp>,
}

/// The words VEX formats use for a finding that SBOM' shows never ran.
pub const NOT_IN_EXECUTE_PATH: &str = "vulnerable code not in execute path";

/// Renders a report.
pub fn render(report: &ScanReport, ctx: &Context, format: Format) -> String {
    match format {
        Format::Table => table::render(report),
        Format::Json => {
            #[derive(Serialize)]
            struct Doc<'a> {
                context: &'a Context,
                #[serde(flatten)]
                report: &'a ScanReport,
            }
            sbom::text::to_json_pretty_string(&Doc { context: ctx, report }).expect("serialisable") + "\n"
        }
        Format::CyclonedxVex => {
            sbom::text::to_json_pretty_string(&vex::cyclonedx(report, ctx)).expect("serialisable") + "\n"
        }
        Format::Openvex => sbom::text::to_json_pretty_string(&vex::openvex(report, ctx)).expect("serialisable") + "\n",
        Format::Sarif => sbom::text::to_json_pretty_string(&sarif::sarif(report, ctx)).expect("serialisable") + "\n",
    }
}

/// The CVE among a finding's names, else its id: what people search for.
pub fn display_name(f: &Finding) -> &str {
    std::iter::once(f.id.as_str())
        .chain(f.aliases.iter().map(String::as_str))
        .find(|i| i.starts_with("CVE-"))
        .unwrap_or(&f.id)
}
