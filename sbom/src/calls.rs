//! What ran below the file in one learned instance: the vulnerable functions whose entries
//! were probed and the first call of each; the classes JVMs defined, by code source. SBOM' carries it (`sniffer sbom --opened` reads
//! it from `sniffer trace --db` output too), and the scan decides reachability with it.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// A vulnerable function linked into a binary.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Site {
    /// The binary (its path in the image).
    #[serde(with = "crate::path_text")]
    pub binary: PathBuf,
    /// The function as the binary names it (`encoding/gob.(*Decoder).Decode`).
    pub function: String,
    /// Where its code starts in the file; `None` when only inlined copies exist (no probe
    /// can see those called).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
}

/// The first call of a vulnerable function seen in an instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Call {
    /// Which function.
    pub site: Site,
    /// The calling process.
    pub pid: u32,
    /// Its command name.
    pub comm: String,
    /// When.
    pub at: crate::time::Timestamp,
}

/// What ran, below the file, in one learned instance: the vulnerable functions probed and
/// the first call of each.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Calls {
    /// Functions whose entry was probed for the whole window (their binary and offset).
    pub probed: Vec<Site>,
    /// First calls.
    pub calls: Vec<Call>,
    /// How long the instance was learned, seconds.
    pub window_seconds: u64,
    /// When its probes were in place (its image's scan may have been ready only after the
    /// container started).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<crate::time::Timestamp>,
    /// Classes JVMs defined, by code source, when a class probe ran.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub classes: Vec<Defined>,
    /// The class probe, when one ran: from when, and why what it saw may be short.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class_probe: Option<ClassProbe>,
    /// Why some functions could not be probed (said in the reachability of their findings).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unprobed: Vec<String>,
}

/// Most class names kept per code source.
pub const CLASSES_PER_SOURCE: usize = 8;
/// Most code sources kept per instance; past it the class probe's answer is short.
pub const MAX_SOURCES: usize = 4096;

/// Classes a JVM defined from one code source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Defined {
    /// The code source as the JVM gave it (`file:/app/x.jar`,
    /// `jar:file:/app.jar!/BOOT-INF/lib/x.jar!/`, `jar:nested:/app.jar/!BOOT-INF/lib/x.jar`);
    /// empty for classes defined without one.
    pub source: String,
    /// Classes defined from it.
    pub count: u64,
    /// The first of them (at most [`CLASSES_PER_SOURCE`]), as the JVM names them
    /// (`com/example/Foo`).
    pub first: Vec<String>,
    /// The archive it names was itself opened (so its path is the file's own, not a link's).
    #[serde(default)]
    pub opened: bool,
    /// A process that defined them, and its command.
    pub pid: u32,
    /// Its command name.
    pub comm: String,
}

/// A class probe's coverage.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassProbe {
    /// When it was in place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<crate::time::Timestamp>,
    /// The JVMs (`libjvm.so`) probed.
    #[serde(default, with = "crate::path_text::many")]
    pub jvms: Vec<PathBuf>,
    /// Why classes may have been defined unseen (a JVM that started before the probe, a
    /// probe that could not attach, too many code sources): while any is said, no package is
    /// called not loaded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gaps: Vec<String>,
}

impl Calls {
    /// What the paths the instance opened say of the class probe: an application CDS
    /// archive or AOT cache mapped (classes in it are never defined), a JVM that was not
    /// probed; and which code sources name an archive that was itself opened.
    pub fn note_opened(&mut self, opened: &[PathBuf]) {
        let Some(probe) = &mut self.class_probe else { return };
        for p in opened {
            let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let jdk_default = p.parent().is_some_and(|d| d.ends_with("lib/server")) && name.starts_with("classes");
            let why = if (name.ends_with(".jsa") && !jdk_default) || name.ends_with(".aot") {
                format!("a JVM mapped the class archive {}: classes it holds are never seen defined", p.display())
            } else if name == "libjvm.so" && !probe.jvms.contains(p) {
                format!("a JVM that was not probed ran ({})", p.display())
            } else {
                continue;
            };
            if !probe.gaps.contains(&why) {
                probe.gaps.push(why);
            }
        }
        for d in &mut self.classes {
            if let crate::codesource::Origin::Archive { outer, .. } = crate::codesource::origin(&d.source) {
                d.opened = opened.contains(&outer);
            }
        }
    }

    /// Counts a class defined from `source` (bounded: past [`MAX_SOURCES`] the class probe
    /// says it is short).
    pub fn define(&mut self, source: &str, class: &str, pid: u32, comm: &str) {
        if let Some(d) = self.classes.iter_mut().find(|d| d.source == source) {
            d.count += 1;
            if d.first.len() < CLASSES_PER_SOURCE && !d.first.iter().any(|c| c == class) {
                d.first.push(class.to_string());
            }
            return;
        }
        if self.classes.len() >= MAX_SOURCES {
            let probe = self.class_probe.get_or_insert_with(Default::default);
            let why = format!("more than {MAX_SOURCES} code sources: the rest were not kept");
            if !probe.gaps.contains(&why) {
                probe.gaps.push(why);
            }
            return;
        }
        self.classes.push(Defined {
            source: source.to_string(),
            count: 1,
            first: vec![class.to_string()],
            opened: false,
            pid,
            comm: comm.to_string(),
        });
    }
}
