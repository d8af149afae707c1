//! Python distributions as pip installs them (the setup installs pip, setuptools and wheel
//! with pip): checked against what Python's own tools report of the same tree
//! (`importlib.metadata` for dist-info, `pkg_resources` for eggs, each vendored module's
//! `__version__` as pip imports it).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use sbom::Ecosystem;
use sbom::index::FileIndex;
use sbom::rootfs::Root;

const SITE: &str = "/usr/local/lib/python3/site-packages";

/// What Python's tools say is installed under the site directory, as `kind name version
/// path` lines, names PEP 503-normalised and versions PEP 440-normalised by pip's
/// vendored `packaging`; `path` is relative to the root.
fn python_says(root: &Path) -> BTreeSet<(String, String, String, String)> {
    let script = r#"
import glob, importlib, importlib.metadata as md, os, sys, warnings
warnings.simplefilter("ignore")
root, site = sys.argv[1], sys.argv[1] + sys.argv[2]
sys.path.insert(0, site)
import pkg_resources
from pip._vendor.packaging.utils import canonicalize_name
from pip._vendor.packaging.version import Version
def out(kind, name, version, path):
    print(kind, canonicalize_name(name), Version(version), "/" + os.path.relpath(path, root), sep="\t")
for base in [site, site + "/setuptools/_vendor"]:
    for d in md.distributions(path=[base]):
        out("dist", d.metadata["Name"], d.version, str(d._path))
for egg in glob.glob(site + "/**/*.egg", recursive=True):
    for d in pkg_resources.find_distributions(egg, only=True):
        out("egg", d.project_name, d.version, egg)
# pip's vendored modules, as pip imports them: the version each says it is.
vendored = site + "/pip/_vendor"
for entry in sorted(os.listdir(vendored)):
    module = entry[:-3] if entry.endswith(".py") else entry
    if module.startswith("_") or module in ("vendor", "pkg_resources") or entry.endswith(".txt"):
        continue
    m = importlib.import_module("pip._vendor." + module)
    if getattr(m, "__version__", None):
        out("vendored", module, m.__version__, os.path.join(vendored, entry))
"#;
    let out = Command::new("python3").arg("-c").arg(script).arg(root).arg(SITE).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f[0].to_string(), f[1].to_string(), f[2].to_string(), f[3].to_string())
        })
        .collect()
}

/// PEP 440 normalisation of the few forms met here (`2024.08.30` is `2024.8.30`).
fn pep440(version: &str) -> String {
    version
        .split('.')
        .map(|part| match part.trim_start_matches('0') {
            "" if part.chars().all(|c| c == '0') => "0".to_string(),
            trimmed if part.chars().all(|c| c.is_ascii_digit()) => trimmed.to_string(),
            _ => part.to_string(),
        })
        .collect::<Vec<_>>()
        .join(".")
}

#[test]
fn vendored_distributions_and_eggs_are_what_python_says() {
    let root = testkit::fixtures::python_root();
    let sbom = sbom::scan(&root).unwrap();
    assert!(sbom.warnings.is_empty(), "{:#?}", sbom.warnings);
    let ours: Vec<&sbom::Package> = sbom.packages.iter().filter(|p| p.kind == Ecosystem::Python).collect();
    let key = |name: &str, version: &str| (sbom::purl::normalize_python(name), pep440(version));
    let listed: BTreeSet<(String, String)> = ours.iter().map(|p| key(&p.name, &p.version)).collect();

    let says = python_says(&root);
    let count = |kind: &str| says.iter().filter(|(k, ..)| k == kind).count();
    // pip, setuptools, wheel and setuptools' 16 vendored distributions; two eggs; pip's
    // vendored modules that carry a version.
    assert!(count("dist") >= 19 && count("egg") == 2 && count("vendored") >= 12, "{says:#?}");
    for (kind, name, version, path) in &says {
        assert!(listed.contains(&key(name, version)), "{kind} {name} {version} at {path} is not listed");
        let found = ours.iter().find(|p| key(&p.name, &p.version) == key(name, version)).unwrap();
        match kind.as_str() {
            // The package owns the egg (a directory or the zip Python imports).
            "egg" => assert!(
                ours.iter().any(|p| key(&p.name, &p.version) == key(name, version) && p.files == [PathBuf::from(path)]),
                "{name}: no package owning {path}"
            ),
            "vendored" => {
                let at = ours
                    .iter()
                    .find(|p| {
                        key(&p.name, &p.version) == key(name, version)
                            && p.found_at == Path::new(SITE).join("pip/_vendor/vendor.txt")
                    })
                    .unwrap_or_else(|| panic!("{name} {version}: not found from pip's vendor.txt ({found:?})"));
                assert_eq!(at.files, [PathBuf::from(path)]);
            }
            _ => assert!(!found.files.is_empty(), "{name}: owns no files"),
        }
    }
    // Nothing pip's vendor.txt pins without shipping (setuptools: only pkg_resources is).
    assert!(!ours.iter().any(|p| p.name == "setuptools" && p.found_at.ends_with("vendor.txt")));

    // SBOM': a file of pip's vendored urllib3 is pip's (its RECORD lists it) and urllib3's;
    // a file inside the unzipped egg, and the zipped egg itself, are the egg's.
    let index = FileIndex::build(&Root::open(&root).unwrap(), &sbom);
    let owners = |path: &str| -> BTreeSet<String> {
        index.owners(Path::new(path)).into_iter().map(|i| sbom.packages[i].purl.clone()).collect()
    };
    let urllib3 = format!("{SITE}/pip/_vendor/urllib3/connectionpool.py");
    assert_eq!(
        owners(&urllib3),
        BTreeSet::from(["pkg:pypi/pip@24.3.1".to_string(), "pkg:pypi/urllib3@1.26.20".to_string()])
    );
    let eggs = format!("{SITE}/pkg_resources/tests/data");
    for path in [
        format!("{eggs}/my-test-package_unpacked-egg/my_test_package-1.0-py3.7.egg/EGG-INFO/top_level.txt"),
        format!("{eggs}/my-test-package_zipped-egg/my_test_package-1.0-py3.7.egg"),
    ] {
        // setuptools' RECORD lists them too: it shipped them.
        assert!(owners(&path).contains("pkg:pypi/my-test-package@1.0"), "{path}: {:?}", owners(&path));
    }
}
