//! Which vulnerable Go symbols an image's binaries link: the symbols Go advisories name
//! (`affected[].ecosystem_specific.imports[]`: package paths, each with its symbols, or none
//! for the whole package) looked up in each binary's function table (`sbom::gofunc`), read
//! through the image's root. As govulncheck matches them: `Decoder.Decode` is
//! `(*Decoder).Decode`, closures and instantiations count as their function, and inlined
//! copies count (their names are in the table).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sbom::gofunc::{FuncTable, FuncTableError};
use sbom::rootfs::Root;

use crate::osv::Record;
use crate::reach::{GoStatic, Site};
use crate::store::{Db, DbError};

/// A package an advisory names, and its vulnerable symbols (none: the whole package).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Import {
    /// Package path (`encoding/gob`).
    pub path: String,
    /// Symbols (`Decoder.Decode`).
    pub symbols: Vec<String>,
}

/// Most symbols one advisory may name for a module and still be decided; past it the
/// finding stays undecided rather than half-checked.
pub const MAX_SYMBOLS: usize = 4096;
/// Most linked functions kept per finding.
pub const MAX_SITES: usize = 64;
/// Most Go binaries whose tables are read per image.
pub const MAX_BINARIES: usize = 256;

/// What limits the reading of one image's tables.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Binaries read at most.
    pub binaries: usize,
    /// Time for all of them.
    pub time: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { binaries: MAX_BINARIES, time: Duration::from_secs(60) }
    }
}

/// The imports a record names for `module` (case-insensitively, as matching compares Go
/// paths); `None` when it names none (no symbol-level answer), or too many.
pub fn imports(record: &Record, module: &str) -> Option<Vec<Import>> {
    let mut out = Vec::new();
    for a in &record.affected {
        let Some(p) = &a.package else { continue };
        if p.ecosystem != "Go" || !p.name.eq_ignore_ascii_case(module) {
            continue;
        }
        let Some(list) = a.ecosystem_specific.as_ref().and_then(|e| e.get("imports")).and_then(|i| i.as_array()) else {
            // One affected entry without imports: the whole module may be affected.
            return None;
        };
        for i in list {
            let path = i.get("path").and_then(|p| p.as_str())?;
            let symbols: Vec<String> = i
                .get("symbols")
                .and_then(|s| s.as_array())
                .map(|s| s.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
                .unwrap_or_default();
            out.push(Import { path: path.to_string(), symbols });
        }
    }
    let total: usize = out.iter().map(|i| i.symbols.len().max(1)).sum();
    (!out.is_empty() && total <= MAX_SYMBOLS).then_some(out)
}

/// The functions of `table` that are one of `imports`' symbols (any function of a package
/// named without symbols), at most [`MAX_SITES`].
pub fn linked(table: &FuncTable, binary: &Path, imports: &[Import]) -> Vec<Site> {
    let mut sites = BTreeSet::new();
    for i in imports {
        let found: Box<dyn Iterator<Item = sbom::gofunc::Func<'_>>> = if i.symbols.is_empty() {
            Box::new(table.of_package(&i.path))
        } else {
            Box::new(i.symbols.iter().flat_map(|s| table.find(&i.path, s)))
        };
        for f in found {
            if sites.len() >= MAX_SITES {
                break;
            }
            sites.insert(Site { binary: binary.to_path_buf(), function: f.name.into_owned(), offset: f.offset });
        }
    }
    sites.into_iter().collect()
}

/// The symbols of `imports` as one list, for reports (`encoding/gob.Decoder.Decode`).
fn symbol_names(imports: &[Import]) -> Vec<String> {
    imports
        .iter()
        .flat_map(|i| {
            if i.symbols.is_empty() {
                vec![format!("{} (any function)", i.path)]
            } else {
                i.symbols.iter().map(|s| format!("{}.{s}", i.path)).collect()
            }
        })
        .collect()
}

/// Why the static facts of an image are what they are.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Per (module purl without qualifiers, advisory id).
    pub facts: HashMap<(String, String), GoStatic>,
    /// Binaries whose tables were read, and functions they hold in all.
    pub binaries_read: usize,
    /// What could not be read (said in the findings, and as warnings).
    pub warnings: Vec<String>,
}

/// The static facts of every Go module of `sbom` against every advisory the database holds
/// for it with imports, from the binaries that hold the module, read inside `root`.
/// Binaries are read one at a time: one table is in memory at once.
pub fn facts(db: &Db, sbom: &sbom::Sbom, root: &Root, limits: Limits) -> Result<Outcome, DbError> {
    // Per module (by purl): its advisories' imports.
    let mut wanted: BTreeMap<String, Vec<(String, Vec<Import>)>> = BTreeMap::new();
    let mut binaries: BTreeMap<PathBuf, Vec<String>> = BTreeMap::new();
    for p in sbom.packages.iter().filter(|p| p.kind == sbom::Ecosystem::Go) {
        let purl = crate::input::purl_key(&p.purl);
        // The same module in several binaries (stdlib in every one): each is looked in.
        if let Some(list) = wanted.get(&purl) {
            if !list.is_empty() {
                for f in &p.files {
                    binaries.entry(f.clone()).or_default().push(purl.clone());
                }
            }
            continue;
        }
        let mut list = Vec::new();
        for entry in db.candidates("Go", &p.name)? {
            if let Some(record) = db.record(&entry.id)?
                && let Some(imports) = imports(&record, &p.name)
            {
                list.push((entry.id, imports));
            }
        }
        if !list.is_empty() {
            for f in &p.files {
                binaries.entry(f.clone()).or_default().push(purl.clone());
            }
        }
        wanted.insert(purl, list);
    }
    let mut out = Outcome::default();
    // Per (purl, id): sites found, binaries that could not be read, binaries read.
    type Acc = (Vec<Site>, Vec<String>, Vec<PathBuf>);
    let mut acc: HashMap<(String, String), Acc> = HashMap::new();
    let started = Instant::now();
    for (n, (binary, purls)) in binaries.iter().enumerate() {
        let table = if n >= limits.binaries {
            Err(format!("budget: more than {} Go binaries in the image; not read", limits.binaries))
        } else if started.elapsed() > limits.time {
            Err(format!("budget: reading function tables took over {:?}; not read", limits.time))
        } else {
            FuncTable::read(root, binary).map_err(|e| describe(&e))
        };
        if let Ok(t) = &table {
            out.binaries_read += 1;
            if !t.sees_inlined() {
                out.warnings.push(format!(
                    "{}: a Go 1.2-1.15 function table: inlined copies are not seen, so no symbol is said absent",
                    binary.display()
                ));
            }
        }
        if let Err(why) = &table {
            out.warnings.push(format!("{}: no usable Go function table: {why}", binary.display()));
        }
        for purl in purls {
            for (id, imports) in &wanted[purl] {
                let a = acc.entry((purl.clone(), id.clone())).or_default();
                match &table {
                    Ok(t) if t.sees_inlined() => {
                        a.0.extend(linked(t, binary, imports));
                        a.2.push(binary.clone());
                    }
                    Ok(t) => {
                        a.0.extend(linked(t, binary, imports));
                        a.1.push(format!(
                            "{}: inlined copies are not seen in its (Go 1.2-1.15) table",
                            binary.display()
                        ));
                    }
                    Err(why) => a.1.push(format!("{}: {why}", binary.display())),
                }
            }
        }
    }
    for ((purl, id), (mut sites, failed, read)) in acc {
        let imports = &wanted[&purl].iter().find(|(i, _)| *i == id).map(|(_, i)| i.clone()).unwrap_or_default();
        sites.sort();
        sites.dedup();
        sites.truncate(MAX_SITES);
        let fact = if !sites.is_empty() {
            GoStatic::Linked { sites }
        } else if let Some(why) = failed.first() {
            GoStatic::Undecided { why: format!("whether its vulnerable functions are linked is not known ({why})") }
        } else {
            GoStatic::NotPresent { symbols: symbol_names(imports), binaries: read }
        };
        out.facts.insert((purl, id), fact);
    }
    Ok(out)
}

fn describe(e: &FuncTableError) -> String {
    let mut s = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        s.push_str(&format!(": {c}"));
        cause = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(json: &str) -> Record {
        Record::parse(json.as_bytes()).unwrap()
    }

    #[test]
    fn imports_of_a_module_and_only_it() {
        let r = record(
            r#"{"id":"GO-1","affected":[
              {"package":{"ecosystem":"Go","name":"stdlib"},
               "ecosystem_specific":{"imports":[{"path":"net/http","symbols":["Client.Do"]},{"path":"net/url"}]}},
              {"package":{"ecosystem":"Go","name":"example.com/other"},
               "ecosystem_specific":{"imports":[{"path":"example.com/other/x","symbols":["F"]}]}}]}"#,
        );
        let i = imports(&r, "stdlib").unwrap();
        assert_eq!(i.len(), 2);
        assert_eq!(i[0], Import { path: "net/http".into(), symbols: vec!["Client.Do".into()] });
        assert!(i[1].symbols.is_empty(), "a package without symbols: any of its functions");
        assert_eq!(imports(&r, "EXAMPLE.com/Other").unwrap()[0].path, "example.com/other/x");
        assert!(imports(&r, "example.com/none").is_none());
        // An entry without imports: no symbol-level claim for the module.
        let bare = record(r#"{"id":"GO-2","affected":[{"package":{"ecosystem":"Go","name":"stdlib"}}]}"#);
        assert!(imports(&bare, "stdlib").is_none());
    }

    #[test]
    fn ten_thousand_symbols_are_not_half_checked() {
        let symbols: Vec<String> = (0..10_000).map(|i| format!("\"F{i}\"")).collect();
        let r = record(&format!(
            r#"{{"id":"GO-3","affected":[{{"package":{{"ecosystem":"Go","name":"m"}},
               "ecosystem_specific":{{"imports":[{{"path":"m/p","symbols":[{}]}}]}}}}]}}"#,
            symbols.join(",")
        ));
        assert!(imports(&r, "m").is_none(), "over the limit: undecided, never 'not present' from part of the list");
    }
}
