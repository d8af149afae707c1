//! What the flow knows of an image and an instance below the file: the vulnerable Go
//! functions its binaries link and its JVMs (read with its file index), the probes to ask
//! the sniffer for, what SBOM' says of them, and how a learning window with a gap in it
//! (an agent restart) is told.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::flow::ProbeTarget;

/// What is known of an image below the file: which vulnerable Go functions its binaries link
/// (read from the container's root, as the file index is), or why that is not known.
#[derive(Default)]
pub(crate) struct Code {
    pub(crate) go: HashMap<(String, String), vuln::reach::GoStatic>,
    pub(crate) missing: Option<String>,
    pub(crate) warnings: Vec<String>,
    /// The image's JVMs (`libjvm.so`), when it has Java packages.
    pub(crate) jvms: Vec<PathBuf>,
}

impl Code {
    /// Reads the function tables of the image's Go binaries inside `root`, against `db`.
    pub(crate) fn read(db: &Path, sbom: &sbom::Sbom, root: &sbom::rootfs::Root) -> Code {
        let jvms = jvms_of(sbom, root);
        if !sbom.packages.iter().any(|p| p.kind == sbom::Ecosystem::Go) {
            return Code { jvms, ..Code::default() };
        }
        let outcome =
            vuln::Db::open(db).and_then(|db| vuln::gocode::facts(&db, sbom, root, vuln::gocode::Limits::default()));
        match outcome {
            Ok(o) => Code { go: o.facts, missing: None, warnings: o.warnings, jvms },
            Err(e) => Code {
                missing: Some(format!("which vulnerable functions are linked is not known ({})", crate::chain(&e))),
                jvms,
                ..Code::default()
            },
        }
    }

    /// What to probe: every linked vulnerable function with code of its own, by binary.
    pub(crate) fn targets(&self) -> Vec<ProbeTarget> {
        let mut by_binary: std::collections::BTreeMap<&Path, std::collections::BTreeSet<&str>> = Default::default();
        for fact in self.go.values() {
            if let vuln::reach::GoStatic::Linked { sites } = fact {
                for s in sites.iter().filter(|s| s.offset.is_some()) {
                    by_binary.entry(&s.binary).or_default().insert(&s.function);
                }
            }
        }
        let go = by_binary.into_iter().map(|(b, f)| ProbeTarget {
            binary: b.to_path_buf(),
            functions: f.into_iter().map(str::to_string).collect(),
            jvm: false,
        });
        let jvms = self.jvms.iter().map(|j| ProbeTarget { binary: j.clone(), functions: Vec::new(), jvm: true });
        go.chain(jvms).collect()
    }

    /// The facts a scan decides reachability with; `calls` from a learned instance (its
    /// opened paths noted), `sbom` for the classes.
    pub(crate) fn facts(&self, calls: Option<vuln::reach::Calls>, sbom: &sbom::Sbom) -> vuln::reach::Facts {
        let java = calls.as_ref().map(|c| vuln::javacode::facts(sbom, c)).unwrap_or_default();
        vuln::reach::Facts { go: self.go.clone(), calls, go_missing: self.missing.clone(), java }
    }
}

/// Most JVMs of one image probed.
const MAX_JVMS: usize = 16;

/// The `libjvm.so` files of an image with Java packages: those its packages list (Debian's
/// JREs), and those of JDKs known by their home (`<home>/lib/server/libjvm.so`), that are
/// regular files inside the root.
fn jvms_of(sbom: &sbom::Sbom, root: &sbom::rootfs::Root) -> Vec<PathBuf> {
    if !sbom.packages.iter().any(|p| p.kind == sbom::Ecosystem::Java) {
        return Vec::new();
    }
    let listed = sbom.packages.iter().flat_map(|p| p.files.iter()).filter(|f| f.ends_with("libjvm.so")).cloned();
    let homes = sbom
        .packages
        .iter()
        .filter(|p| p.kind == sbom::Ecosystem::Runtime)
        .flat_map(|p| p.files.iter().map(|h| h.join("lib/server/libjvm.so")));
    let mut out: Vec<PathBuf> =
        listed.chain(homes).filter(|p| root.kind(p) == Some(sbom::rootfs::EntryKind::File)).collect();
    out.sort();
    out.dedup();
    out.truncate(MAX_JVMS);
    out
}

/// What an instance learned in an earlier life of the daemon.
#[derive(Debug, Default)]
pub(crate) struct Seed {
    pub(crate) paths: Vec<PathBuf>,
    /// Learning began in an earlier life: a call made while the daemon was down was not
    /// seen, so no function is said not called.
    pub(crate) resumed: bool,
    pub(crate) calls: Option<vuln::reach::Calls>,
}

/// Calls of a window with a gap in it: functions not seen called were not probed
/// throughout, and the reason is said.
pub(crate) fn interrupted(mut calls: vuln::reach::Calls, why: &str) -> vuln::reach::Calls {
    calls.probed = calls.calls.iter().map(|c| c.site.clone()).collect();
    calls.probed.sort();
    calls.probed.dedup();
    if !calls.unprobed.iter().any(|u| u == why) {
        calls.unprobed.push(why.to_string());
    }
    calls
}

/// Why a resumed window has a gap.
pub(crate) const RESUMED: &str =
    "the agent restarted while the instance was learned: a call made meanwhile was not seen";

/// What SBOM' says of the function probes: from when, what, and what fell back to file
/// level and why.
pub(crate) fn probe_notes(code: &Code, calls: Option<&vuln::reach::Calls>, window: u64) -> Vec<String> {
    let mut notes: Vec<String> = code.warnings.iter().map(|w| format!("function tables: {w}")).collect();
    let wanted = code.targets();
    let functions: usize = wanted.iter().filter(|t| !t.jvm).map(|t| t.functions.len()).sum();
    if functions > 0 {
        match calls {
            Some(c) => {
                notes.push(format!(
                    "function probes: {} of {functions} linked vulnerable functions probed{}, over {window} s of learning; {} called",
                    c.probed.len(),
                    c.since.map(|t| format!(" from {t}")).unwrap_or_default(),
                    c.calls.len()
                ));
                notes.extend(c.unprobed.iter().map(|w| format!("not probed (file level instead): {w}")));
            }
            None => notes.push(format!(
                "function probes: none of {functions} linked vulnerable functions could be probed: their findings stay at file level"
            )),
        }
    }
    if !code.jvms.is_empty() {
        match calls.and_then(|c| c.class_probe.as_ref().map(|p| (c, p))) {
            Some((c, p)) => {
                notes.push(format!(
                    "class probes: {} of {} JVMs probed{}; {} classes defined from {} code sources",
                    p.jvms.len(),
                    code.jvms.len(),
                    p.since.map(|t| format!(" from {t}")).unwrap_or_default(),
                    c.classes.iter().map(|d| d.count).sum::<u64>(),
                    c.classes.len()
                ));
                notes.extend(
                    p.gaps.iter().map(|g| {
                        format!("classes may have been defined unseen (Java packages stay at file level): {g}")
                    }),
                );
            }
            None => notes.push(format!(
                "class probes: none of the image's {} JVMs could be probed: Java packages stay at file level",
                code.jvms.len()
            )),
        }
    }
    notes
}
