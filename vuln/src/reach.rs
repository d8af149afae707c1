//! Reachability: how far a finding's code is known to have run, below the file where we can
//! see it. A finding's `relevant` is decided here from its [`Reachability`].
//!
//! The states, strongest evidence first: `called` (a vulnerable function's entry was hit),
//! `loaded` (a class of the package was defined), `opened` (a file of the package was
//! opened or executed), `unknown` (nothing says either way); then the ones that make a
//! finding not relevant: `not_called` (linked, never called while it was learned: weaker
//! than the rest, as the window may have been short), `not_loaded`, `not_opened`, and
//! `not_present` (no vulnerable symbol is in the binary at all: not relevant whatever runs).
//! A signal that may be missing (no probe, a table we could not read) falls back to the
//! coarser state, and the reason says why.

use std::collections::HashMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use sbom::calls::{Call, Calls, Site};

use crate::matching::{Finding, ScanReport};

/// How far a finding's code is known to have run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// A vulnerable function was called.
    Called,
    /// A class of the package was defined.
    Loaded,
    /// A file of the package was opened or executed.
    Opened,
    /// Nothing says either way.
    Unknown,
    /// Linked, and not called while the instance was learned.
    NotCalled,
    /// No class of the package was defined while the instance was learned.
    NotLoaded,
    /// No file of the package was opened while the instance was learned.
    NotOpened,
    /// No vulnerable symbol is in the code at all.
    NotPresent,
}

impl State {
    /// Whether a finding in this state is relevant (its code may run).
    pub fn relevant(self) -> bool {
        matches!(self, State::Called | State::Loaded | State::Opened | State::Unknown)
    }

    /// Whether the state says the code ran (not only that it may have).
    pub fn ran(self) -> bool {
        matches!(self, State::Called | State::Loaded | State::Opened)
    }

    /// Order in reports: called and loaded first, not present last.
    pub fn rank(self) -> u8 {
        match self {
            State::Called | State::Loaded => 0,
            State::Opened => 1,
            State::Unknown => 2,
            State::NotCalled | State::NotLoaded => 3,
            State::NotOpened => 4,
            State::NotPresent => 5,
        }
    }

    /// The word reports use.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Called => "called",
            State::Loaded => "loaded",
            State::Opened => "opened",
            State::Unknown => "unknown",
            State::NotCalled => "not_called",
            State::NotLoaded => "not_loaded",
            State::NotOpened => "not_opened",
            State::NotPresent => "not_present",
        }
    }
}

/// A finding's reachability: its state, why, and what shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reachability {
    /// The state.
    pub state: State,
    /// Why, in one sentence (what was looked at, and what fell back to what).
    pub why: String,
    /// What shows it: calls (function, binary, pid, command, time), linked functions,
    /// classes, files.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<String>,
    /// How long the instance was learned, in seconds, when the state rests on it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_seconds: Option<u64>,
}

/// What the function tables of an image's Go binaries say about one vulnerability in one
/// module.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum GoStatic {
    /// No symbol the record names is in any binary holding the module.
    NotPresent {
        /// The symbols looked for (`encoding/gob.Decoder.Decode`).
        symbols: Vec<String>,
        /// The binaries looked in.
        #[serde(with = "sbom::path_text::many")]
        binaries: Vec<PathBuf>,
    },
    /// These vulnerable functions are linked.
    Linked {
        /// Where.
        sites: Vec<Site>,
    },
    /// It could not be decided (a table that could not be read).
    Undecided {
        /// Why.
        why: String,
    },
}

/// Everything known below the file: static facts per (module purl, advisory id), and what
/// ran.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// Keyed by the module's purl (without qualifiers) and a Go advisory id.
    pub go: HashMap<(String, String), GoStatic>,
    /// Calls seen while the instance was learned, when probes ran.
    pub calls: Option<Calls>,
    /// Why static facts are missing for the image, when they are (said in the findings).
    pub go_missing: Option<String>,
    /// What the class probe says of Maven packages, when one ran.
    pub java: crate::javacode::JavaOutcome,
}

impl Facts {
    /// The static facts of a finding: its purl and any of its ids.
    fn go_of(&self, f: &Finding) -> Option<&GoStatic> {
        let purl = crate::input::purl_key(&f.package.purl);
        std::iter::once(&f.id).chain(&f.aliases).find_map(|id| self.go.get(&(purl.clone(), id.clone())))
    }
}

/// Most evidence lines kept per finding.
const MAX_EVIDENCE: usize = 8;

/// Decides every finding's reachability and, with SBOM', its `relevant`; then orders the
/// findings (called and loaded first).
pub fn decide(report: &mut ScanReport, facts: &Facts) {
    for f in &mut report.findings {
        f.reachability = reachability(f, facts);
        if let (Some(_), Some(r)) = (f.relevant, &f.reachability) {
            f.relevant = Some(r.state.relevant());
        }
    }
    report.findings.sort_by(crate::matching::order);
}

fn reachability(f: &Finding, facts: &Facts) -> Option<Reachability> {
    let go = if f.package.ecosystem == "Go" { facts.go_of(f) } else { None };
    let opened = f.relevant;
    let files = || f.evidence.iter().take(MAX_EVIDENCE).map(|p| format!("opened {}", p.display())).collect();
    let r = |state, why: String, evidence| Some(Reachability { state, why, evidence, window_seconds: None });
    if let Some(GoStatic::NotPresent { symbols, binaries }) = go {
        let shown: Vec<String> = binaries.iter().map(|b| b.display().to_string()).collect();
        return r(State::NotPresent, format!("none of {} is in {}", symbols.join(", "), shown.join(", ")), Vec::new());
    }
    let Some(opened) = opened else {
        // No SBOM': what the image alone says.
        return match go {
            Some(GoStatic::Linked { sites }) => {
                r(State::Unknown, "linked; no runtime data (no SBOM' given)".into(), site_lines(sites))
            }
            Some(GoStatic::Undecided { why }) => r(State::Unknown, why.clone(), Vec::new()),
            _ => None,
        };
    };
    if !opened {
        return r(State::NotOpened, "no file of the package was opened or executed while learning".into(), Vec::new());
    }
    if f.package.ecosystem == "Maven" {
        let window = facts.calls.as_ref().map(|c| c.window_seconds);
        match facts.java.facts.get(&crate::input::purl_key(&f.package.purl)) {
            Some(crate::javacode::JavaFact::Loaded(lines)) => {
                let mut r = r(State::Loaded, "classes of the package were defined".into(), lines.clone())?;
                r.window_seconds = window;
                return Some(r);
            }
            Some(crate::javacode::JavaFact::NotLoaded) => {
                return Some(Reachability {
                    state: State::NotLoaded,
                    why: format!(
                        "its archive was opened, and no class of it was defined {} (weaker than not present: a longer run may load it)",
                        match window {
                            Some(0) | None => "while it was traced".to_string(),
                            Some(s) => format!("during {s} s of learning"),
                        }
                    ),
                    evidence: files(),
                    window_seconds: window,
                });
            }
            None => {
                if let Some(why) = &facts.java.fallback {
                    return r(
                        State::Opened,
                        format!("a file of the package was opened; classes not decided: {why}"),
                        files(),
                    );
                }
            }
        }
    }
    let Some(GoStatic::Linked { sites }) = go else {
        let why = match (go, &facts.go_missing) {
            (Some(GoStatic::Undecided { why }), _) => format!("a file of the package was opened; {why}"),
            (_, Some(missing)) if f.package.ecosystem == "Go" => {
                format!("a file of the package was opened; {missing}")
            }
            _ => "a file of the package was opened or executed".into(),
        };
        return r(State::Opened, why, files());
    };
    let Some(calls) = &facts.calls else {
        return r(
            State::Opened,
            "linked and its binary ran; calls were not observed (no function probes for this instance)".into(),
            site_lines(sites),
        );
    };
    let hit: Vec<&Call> = calls.calls.iter().filter(|c| sites.iter().any(|s| same(s, &c.site))).collect();
    if !hit.is_empty() {
        let evidence = hit
            .iter()
            .take(MAX_EVIDENCE)
            .map(|c| {
                format!(
                    "{} in {} called by pid {} ({}) at {}",
                    c.site.function,
                    c.site.binary.display(),
                    c.pid,
                    c.comm,
                    c.at
                )
            })
            .collect();
        let mut r = r(State::Called, "a vulnerable function was called".into(), evidence)?;
        r.window_seconds = Some(calls.window_seconds);
        return Some(r);
    }
    // A function of a binary that never ran was not called, probed or not.
    let ran = |s: &Site| f.evidence.contains(&s.binary);
    let unprobed: Vec<&Site> = sites.iter().filter(|s| ran(s) && !calls.probed.iter().any(|p| same(p, s))).collect();
    if !unprobed.is_empty() {
        let mut why = String::from("linked and its binary ran; not every vulnerable function could be probed");
        if let Some(reason) = calls.unprobed.first() {
            why.push_str(&format!(" ({reason})"));
        }
        return r(State::Opened, why, site_lines(sites));
    }
    Some(Reachability {
        state: State::NotCalled,
        why: format!(
            "linked, not called {}{} (weaker than not present: a longer run may call it)",
            match calls.window_seconds {
                0 => "while it was traced".to_string(),
                s => format!("during {s} s of learning"),
            },
            calls.since.map(|t| format!(", probed from {t}")).unwrap_or_default()
        ),
        evidence: site_lines(sites),
        window_seconds: Some(calls.window_seconds),
    })
}

/// The same function of the same binary (offsets may come from two reads of it).
fn same(a: &Site, b: &Site) -> bool {
    a.binary == b.binary && a.function == b.function
}

fn site_lines(sites: &[Site]) -> Vec<String> {
    sites
        .iter()
        .take(MAX_EVIDENCE)
        .map(|s| match s.offset {
            Some(_) => format!("linked {} in {}", s.function, s.binary.display()),
            None => format!("linked {} in {} (inlined only)", s.function, s.binary.display()),
        })
        .collect()
}
