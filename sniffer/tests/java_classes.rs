//! Classes a real JVM defines (Debian's OpenJDK 17), by code source, against a real Maven
//! advisory (GHSA-mjmj-j48q-9wg2, SnakeYAML < 2.0) and Debian's real SnakeYAML 1.33 jar:
//! a class path with an unused jar, the jar used, a fat jar whose launcher defines its nested
//! jars' classes with nested code sources (both of Spring Boot's URL styles), and an
//! application CDS archive (classes taken from it are never seen defined: file level).

use std::path::{Path, PathBuf};
use std::process::Command;

use testkit::java::{JavaRoot, jar, libjvm};

const ADVISORY: &str = "GHSA-mjmj-j48q-9wg2";

const USES_YAML: &str = "public class UsesYaml { public static void main(String[] a) { \
    System.out.println(new org.yaml.snakeyaml.Yaml().load(\"a: 1\").toString()); } }";
const NO_YAML: &str =
    "public class NoYaml { public static void main(String[] a) { System.out.println(\"no yaml\"); } }";
const FAT_MAIN: &str = "public class Main { public static void main(String[] a) { \
    System.out.println(new org.yaml.snakeyaml.Yaml().load(\"b: 2\").toString()); } }";

/// A launcher as Spring Boot's: it defines the classes of the fat jar's `BOOT-INF/classes`
/// and of each jar in `BOOT-INF/lib` itself, each with a code source naming where it came
/// from (SnakeYAML in Spring Boot 3.2's `jar:nested:` style, the others in the older
/// `jar:file:…!/…!/`).
const LAUNCHER: &str = r#"
import java.io.*; import java.net.*; import java.security.*; import java.util.*; import java.util.zip.*;
public class Launcher extends ClassLoader {
  private final Map<String, byte[]> bytes = new HashMap<>();
  private final Map<String, String> sources = new HashMap<>();
  private static final URLStreamHandler NONE = new URLStreamHandler() {
    protected URLConnection openConnection(URL u) throws IOException { throw new IOException("not opened"); } };
  Launcher(String fat) throws IOException {
    super(Launcher.class.getClassLoader());
    try (ZipFile z = new ZipFile(fat)) {
      for (Enumeration<? extends ZipEntry> e = z.entries(); e.hasMoreElements();) {
        ZipEntry en = e.nextElement(); String n = en.getName();
        if (n.startsWith("BOOT-INF/classes/") && n.endsWith(".class")) {
          put(n.substring(17), z.getInputStream(en).readAllBytes(), "jar:file:" + fat + "!/BOOT-INF/classes!/");
        } else if (n.startsWith("BOOT-INF/lib/") && n.endsWith(".jar")) {
          String src = n.contains("snake") ? "jar:nested:" + fat + "/!" + n + "!/" : "jar:file:" + fat + "!/" + n + "!/";
          try (ZipInputStream in = new ZipInputStream(z.getInputStream(en))) {
            for (ZipEntry c; (c = in.getNextEntry()) != null;) {
              if (c.getName().endsWith(".class") && !c.getName().contains("module-info")) put(c.getName(), in.readAllBytes(), src);
            }
          }
        }
      }
    }
  }
  private void put(String path, byte[] b, String src) {
    String cn = path.substring(0, path.length() - 6).replace('/', '.'); bytes.put(cn, b); sources.put(cn, src);
  }
  protected Class<?> findClass(String name) throws ClassNotFoundException {
    byte[] b = bytes.get(name);
    if (b == null) throw new ClassNotFoundException(name);
    try {
      CodeSource cs = new CodeSource(new URL(null, sources.get(name), NONE), (java.security.cert.Certificate[]) null);
      return defineClass(name, b, 0, b.length, new ProtectionDomain(cs, null));
    } catch (MalformedURLException e) { throw new ClassNotFoundException(name, e); }
  }
  public static void main(String[] a) throws Exception {
    String fat = new File(Launcher.class.getProtectionDomain().getCodeSource().getLocation().toURI()).getPath();
    Class<?> m = new Launcher(fat).loadClass("Main");
    m.getMethod("main", String[].class).invoke(null, (Object) a);
  }
}
"#;

fn sniffer(args: &[&str]) -> std::process::Output {
    let out = Command::new(testkit::sniffer()).args(args).output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out
}

fn s(p: &Path) -> String {
    p.to_str().unwrap().to_string()
}

/// SBOM' of the root from a trace, scanned against the root's SBOM (`dir/sbom.json`) and
/// `dir/vuln.db`: the advisory's finding.
fn finding_of_trace(root: &JavaRoot, dir: &Path, name: &str, trace: &Path) -> serde_json::Value {
    let runtime = dir.join(format!("{name}.runtime.json"));
    std::fs::write(&runtime, sniffer(&["sbom", "--dir", &s(&root.path), "--opened", &s(trace)]).stdout).unwrap();
    let (sbom, db) = (s(&dir.join("sbom.json")), s(&dir.join("vuln.db")));
    let scan = sniffer(&["scan", "--sbom", &sbom, "--runtime", &s(&runtime), "--db", &db, "--format", "json"]);
    let report: serde_json::Value = serde_json::from_slice(&scan.stdout).unwrap();
    let found = report["findings"].as_array().unwrap().iter().find(|f| f["id"] == ADVISORY).cloned();
    found.unwrap_or_else(|| panic!("{name}: no {ADVISORY}: {report:#}"))
}

/// Traces `java ARGS` in the root (the class probe on the host's libjvm.so), makes SBOM' of
/// it and scans: the advisory's finding.
fn run(root: &JavaRoot, dir: &Path, name: &str, java: &[&str]) -> (String, serde_json::Value) {
    let trace = dir.join(format!("{name}.trace"));
    let db = dir.join("vuln.db");
    let mut cmd =
        vec!["trace".to_string(), "--db".into(), s(&db), "--jvm".into(), s(&libjvm()), "-o".into(), s(&trace)];
    cmd.extend(["--".into(), "chroot".into(), s(&root.path), "java".into(), "-XX:-UsePerfData".into()]);
    cmd.extend(java.iter().map(|a| a.to_string()));
    let args: Vec<&str> = cmd.iter().map(String::as_str).collect();
    sniffer(&args);
    let text = std::fs::read_to_string(&trace).unwrap();
    let finding = finding_of_trace(root, dir, name, &trace);
    (text, finding)
}

#[test]
fn classes_defined_decide_maven_findings() {
    let tmp = tempfile::tempdir_in("/var/tmp").unwrap();
    let dir = tmp.path();
    let root = JavaRoot::new(dir);
    let app = root.app();
    let debian = testkit::fixtures::java_root().join("usr/share/java");
    let snake = app.join("snakeyaml.jar");
    std::fs::copy(debian.join("snakeyaml.jar"), &snake).unwrap();
    jar(&app.join("yaml.jar"), &[&snake], &[("UsesYaml.java", USES_YAML)], &[], None);
    jar(&app.join("noyaml.jar"), &[], &[("NoYaml.java", NO_YAML)], &[], None);
    // The fat jar: its launcher, its own classes, SnakeYAML and XZ (unused) nested.
    let main_jar = dir.join("main-classes.jar");
    jar(&main_jar, &[&snake], &[("Main.java", FAT_MAIN)], &[], None);
    let main_class = dir.join("Main.class");
    // The JDK's own jar tool takes the class out (no unzip needed on the machine).
    let out = Command::new("jar").arg("xf").arg(&main_jar).arg("Main.class").current_dir(dir).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let xz = debian.join("xz-1.9.jar");
    jar(
        &app.join("fat.jar"),
        &[],
        &[("Launcher.java", LAUNCHER)],
        &[
            ("BOOT-INF/classes/Main.class", &main_class),
            ("BOOT-INF/lib/snakeyaml.jar", &snake),
            ("BOOT-INF/lib/xz-1.9.jar", &xz),
        ],
        Some("Launcher"),
    );
    sniffer(&["db", "import", "--db", &s(&dir.join("vuln.db")), &s(&testkit::fixtures::github_advisory(ADVISORY))]);
    let sbom = sniffer(&["sbom", "--dir", &s(&root.path)]).stdout;
    std::fs::write(dir.join("sbom.json"), &sbom).unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&sbom).unwrap();
    let found: Vec<&str> = doc["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["purl"] == "pkg:maven/org.yaml/snakeyaml@1.33")
        .map(|p| p["found_at"].as_str().unwrap())
        .collect();
    assert_eq!(found.len(), 2, "SnakeYAML on its own and nested in the fat jar: {found:?}");

    // On the class path, not used: its jar was opened while the JVM looked for the main
    // class, and no class of it was defined.
    let (trace, f) = run(&root, dir, "unused", &["-cp", "/app/snakeyaml.jar:/app/noyaml.jar", "NoYaml"]);
    assert!(trace.contains("class NoYaml file:/app/noyaml.jar"), "{trace}");
    assert_eq!(f["reachability"]["state"], "not_loaded", "{f:#}\n{trace}");
    assert_eq!(f["relevant"], false);

    // Used: its classes were defined from its jar.
    let (trace, f) = run(&root, dir, "used", &["-cp", "/app/snakeyaml.jar:/app/yaml.jar", "UsesYaml"]);
    assert!(trace.contains("class org/yaml/snakeyaml/Yaml file:/app/snakeyaml.jar"), "{trace}");
    assert_eq!(f["reachability"]["state"], "loaded", "{f:#}");
    assert_eq!(f["relevant"], true);
    assert!(f["reachability"]["evidence"].to_string().contains("org/yaml/snakeyaml/"), "{f:#}");

    // The fat jar: nested code sources map to the nested jar.
    let (trace, f) = run(&root, dir, "fat", &["-jar", "/app/fat.jar"]);
    assert!(trace.contains("jar:nested:/app/fat.jar/!BOOT-INF/lib/snakeyaml.jar!/"), "{trace}");
    assert_eq!(f["reachability"]["state"], "loaded", "{f:#}");
    assert!(f["reachability"]["evidence"].to_string().contains("jar:nested:"), "{f:#}");

    // An application CDS archive: SnakeYAML's classes come from it, never defined; the
    // finding stays at file level and says why.
    let out = Command::new("chroot")
        .arg(&root.path)
        .args(["java", "-XX:-UsePerfData", "-XX:ArchiveClassesAtExit=/app/app.jsa", "-cp"])
        .args(["/app/snakeyaml.jar:/app/yaml.jar", "UsesYaml"])
        .output()
        .unwrap();
    assert!(out.status.success() && app.join("app.jsa").exists(), "{out:?}");
    let (trace, f) = run(
        &root,
        dir,
        "cds",
        &["-XX:SharedArchiveFile=/app/app.jsa", "-cp", "/app/snakeyaml.jar:/app/yaml.jar", "UsesYaml"],
    );
    assert!(!trace.contains("class org/yaml/snakeyaml/Yaml "), "taken from the archive: {trace}");
    assert_eq!(f["reachability"]["state"], "opened", "{f:#}");
    assert!(f["reachability"]["why"].as_str().unwrap().contains("/app/app.jsa"), "{f:#}");
    assert_eq!(f["relevant"], true);
}

/// A `libjvm.so` that is not a JVM: the class probe says so, nothing is attached, and the
/// findings stay at file level.
#[test]
fn a_libjvm_that_is_not_a_jvm_leaves_file_level() {
    let tmp = tempfile::tempdir_in("/var/tmp").unwrap();
    let fake: PathBuf = tmp.path().join("libjvm.so");
    std::fs::copy("/bin/true", &fake).unwrap();
    let db = tmp.path().join("vuln.db");
    sniffer(&["db", "import", "--db", &s(&db), &s(&testkit::fixtures::github_advisory(ADVISORY))]);
    let out = Command::new(testkit::sniffer())
        .args(["trace", "--db", &s(&db), "--jvm", &s(&fake), "--", "true"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!stdout.contains("probe JVM_DefineClassWithSource"), "{stdout}");
    assert!(stderr.contains("not a HotSpot JVM"), "{stderr}");
}

/// The same through the daemon, in real containerd containers of an image with Debian's JRE:
/// the image's libjvm.so is probed as soon as the image is known, before the JVM starts.
#[test]
fn classes_through_the_daemon_in_containers() {
    const IMAGE: &str = "docker.io/library/java-fixture:1";
    let tmp = tempfile::tempdir_in("/var/tmp").unwrap();
    let dir = tmp.path();
    testkit::prepare(dir);
    sniffer(&["db", "import", "--db", &s(&dir.join("vuln.db")), &s(&testkit::fixtures::github_advisory(ADVISORY))]);
    let debian = testkit::fixtures::java_root().join("usr/share/java");
    let snake = debian.join("snakeyaml.jar");
    let (yaml, noyaml) = (dir.join("yaml.jar"), dir.join("noyaml.jar"));
    jar(&yaml, &[&snake], &[("UsesYaml.java", USES_YAML)], &[], None);
    jar(&noyaml, &[], &[("NoYaml.java", NO_YAML)], &[], None);
    let archive =
        testkit::java::image(dir, &[("snakeyaml.jar", &snake), ("yaml.jar", &yaml), ("noyaml.jar", &noyaml)], IMAGE);
    let ctd = testkit::Containerd::start(&dir.join("containerd"));
    let out = ctd.ctr(&["images", "import", archive.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let metrics = testkit::free_addr();
    let d = testkit::daemon_args(dir, &ctd.socket, "http://127.0.0.1:9/none", &metrics, "daemon.log", 120, &[]);
    let run = |name: &str, main: &str, cp: &str| {
        let id = format!("{name}-{}", std::process::id());
        // The JVM starts once the image is known and its probe in place.
        let script = format!("sleep 4; exec java -XX:-UsePerfData -cp {cp} {main}");
        let out = ctd.ctr(&["run", "-d", IMAGE, &id, "sh", "-c", &script]);
        assert!(out.status.success(), "ctr run {id}: {}", String::from_utf8_lossy(&out.stderr));
        d.wait_event(&format!("SBOM' of {id}"), |e| e["event"] == "prime_stored" && e["instance"] == id.as_str());
        // What it learned, shown when an assertion fails: the JVM runs in the container's
        // last tenth of a second, so its events are read after its exit was seen.
        let runtime = String::from_utf8_lossy(&d.cli(&["sbom", &id, "--runtime"]).stdout).into_owned();
        let report = d.report(&id);
        let f = report["findings"].as_array().unwrap().iter().find(|f| f["id"] == ADVISORY).cloned();
        (f.unwrap_or_else(|| panic!("{report:#}")), runtime)
    };
    let (f, runtime) = run("noyaml", "NoYaml", "/app/snakeyaml.jar:/app/noyaml.jar");
    assert_eq!(f["reachability"]["state"], "not_loaded", "{f:#}\nSBOM': {runtime}");
    assert_eq!(f["relevant"], false);
    let (f, runtime) = run("yaml", "UsesYaml", "/app/snakeyaml.jar:/app/yaml.jar");
    assert_eq!(f["reachability"]["state"], "loaded", "{f:#}\nSBOM': {runtime}");
    assert!(f["reachability"]["evidence"].to_string().contains("file:/app/snakeyaml.jar"), "{f:#}");
    let status: serde_json::Value = serde_json::from_slice(&d.cli(&["status", "--json"]).stdout).unwrap();
    assert!(status["probes"]["attached_total"].as_u64().unwrap() >= 1, "{status:#}");
}

/// A class loader that defines a class named with a mebibyte of characters, from a code
/// source naming a path outside the root: the probe cuts the name, the source is only ever
/// a key (never read), maps to no package, and leaves every Maven finding at file level
/// with the reason.
const HOSTILE: &str = r#"
import java.net.*; import java.security.*;
public class Hostile extends ClassLoader {
  public static void main(String[] a) throws Exception {
    URLStreamHandler none = new URLStreamHandler() { protected URLConnection openConnection(URL u) { return null; } };
    CodeSource cs = new CodeSource(new URL(null, "file:/../../../../etc/shadow.jar", none), (java.security.cert.Certificate[]) null);
    String name = "x".repeat(1 << 20);
    byte[] junk = new byte[64];
    try { new Hostile().defineClass(name, junk, 0, junk.length, new ProtectionDomain(cs, null)); }
    catch (Throwable t) { System.out.println("refused: " + t.getClass().getName()); }
    System.out.println(new org.yaml.snakeyaml.Yaml().load("c: 3").toString());
  }
}
"#;

#[test]
fn a_hostile_class_name_and_code_source_are_cut_and_never_read() {
    let tmp = tempfile::tempdir_in("/var/tmp").unwrap();
    let dir = tmp.path();
    let root = JavaRoot::new(dir);
    let app = root.app();
    let snake = app.join("snakeyaml.jar");
    std::fs::copy(testkit::fixtures::java_root().join("usr/share/java/snakeyaml.jar"), &snake).unwrap();
    jar(&app.join("hostile.jar"), &[&snake], &[("Hostile.java", HOSTILE)], &[], None);
    sniffer(&["db", "import", "--db", &s(&dir.join("vuln.db")), &s(&testkit::fixtures::github_advisory(ADVISORY))]);
    std::fs::write(dir.join("sbom.json"), sniffer(&["sbom", "--dir", &s(&root.path)]).stdout).unwrap();
    let (trace, f) = run(&root, dir, "hostile", &["-cp", "/app/snakeyaml.jar:/app/hostile.jar", "Hostile"]);
    let line = trace.lines().find(|l| l.contains("/etc/shadow.jar")).unwrap_or_else(|| panic!("{trace}"));
    let name = line.split(' ').nth(1).unwrap();
    assert!(name.len() < 256 && name.starts_with("xxxx"), "the name is cut: {} bytes", name.len());
    assert_eq!(f["reachability"]["state"], "loaded", "its own classes still count: {f:#}");
    // Without the used jar's classes, the unmappable source decides: file level, said why.
    let trace_path = dir.join("hostile.trace");
    let kept: String = std::fs::read_to_string(&trace_path)
        .unwrap()
        .lines()
        .filter(|l| !l.contains("org/yaml/snakeyaml"))
        .map(|l| format!("{l}\n"))
        .collect();
    let edited = dir.join("hostile-only.trace");
    std::fs::write(&edited, kept).unwrap();
    let f = finding_of_trace(&root, dir, "hostile-only", &edited);
    assert_eq!(f["reachability"]["state"], "opened", "{f:#}");
    assert!(f["reachability"]["why"].as_str().unwrap().contains("/etc/shadow.jar"), "{f:#}");
}
