//! A root a real JVM runs in, for the class probe's tests: the host's `/usr` (Debian's
//! OpenJDK 17), `/etc`, `/proc` and `/dev` bind-mounted read-only into a fresh directory,
//! and `/app` of its own holding jars built here. Mounts are not crossed by the SBOM's walk,
//! so the root's SBOM holds what `/app` holds. Dropping it unmounts.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The root; dropping it unmounts its binds.
pub struct JavaRoot {
    /// Where it is.
    pub path: PathBuf,
    mounts: Vec<PathBuf>,
}

impl Drop for JavaRoot {
    fn drop(&mut self) {
        for m in self.mounts.iter().rev() {
            let _ = Command::new("umount").arg("-l").arg(m).status();
        }
    }
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl JavaRoot {
    /// Makes one under `dir`.
    pub fn new(dir: &Path) -> JavaRoot {
        let path = dir.join("jroot");
        let mut root = JavaRoot { path: path.clone(), mounts: Vec::new() };
        for d in ["usr", "etc", "proc", "dev", "tmp", "app"] {
            std::fs::create_dir_all(path.join(d)).expect("root directory");
        }
        for (link, to) in [("bin", "usr/bin"), ("lib", "usr/lib"), ("lib64", "usr/lib64"), ("sbin", "usr/sbin")] {
            std::os::unix::fs::symlink(to, path.join(link)).expect("root link");
        }
        for d in ["usr", "etc", "proc", "dev"] {
            let at = path.join(d);
            run(Command::new("mount").args(["--rbind", &format!("/{d}")]).arg(&at));
            root.mounts.push(at);
        }
        root
    }

    /// `/app` inside it, on the host.
    pub fn app(&self) -> PathBuf {
        self.path.join("app")
    }
}

/// The host's `libjvm.so` of the `java` on its `PATH`.
pub fn libjvm() -> PathBuf {
    let java = std::fs::canonicalize("/usr/bin/java").expect("java (openjdk-17-jre-headless)");
    java.parent().and_then(Path::parent).expect("a JDK home").join("lib/server/libjvm.so")
}

/// Compiles `sources` (file name, text) with the host's javac against `classpath`, into a
/// jar at `out` (with `manifest_main` as its Main-Class, and `extra` files under their paths).
pub fn jar(
    out: &Path,
    classpath: &[&Path],
    sources: &[(&str, &str)],
    extra: &[(&str, &Path)],
    manifest_main: Option<&str>,
) {
    let work = tempfile::tempdir().expect("temporary directory");
    let (src, classes) = (work.path().join("src"), work.path().join("classes"));
    std::fs::create_dir_all(&src).expect("src");
    std::fs::create_dir_all(&classes).expect("classes");
    let mut files = Vec::new();
    for (name, text) in sources {
        let f = src.join(name);
        std::fs::write(&f, text).expect("source");
        files.push(f);
    }
    if !files.is_empty() {
        let cp: Vec<String> = classpath.iter().map(|p| p.display().to_string()).collect();
        let mut javac = Command::new("javac");
        javac.arg("-d").arg(&classes);
        if !cp.is_empty() {
            javac.arg("-cp").arg(cp.join(":"));
        }
        run(javac.args(&files));
    }
    for (at, from) in extra {
        let to = classes.join(at);
        std::fs::create_dir_all(to.parent().expect("a parent")).expect("extra directory");
        std::fs::copy(from, &to).expect("extra file");
    }
    let mut jar = Command::new("jar");
    match manifest_main {
        Some(main) => jar.arg("cfe").arg(out).arg(main),
        None => jar.arg("cf").arg(out),
    };
    run(jar.arg("-C").arg(&classes).arg("."));
}

/// An OCI image archive (`ctr images import` takes it) of a root that runs Debian's real
/// OpenJDK 17 (the Java fixture's JRE, with the C and C++ libraries it links and a shell
/// from the Debian fixture root), with `app` (name, file) under `/app`.
pub fn image(dir: &Path, app: &[(&str, &Path)], reference: &str) -> PathBuf {
    let (java, debian) = (crate::fixtures::java_root(), crate::fixtures::bookworm_root());
    let root = dir.join("java-image-root");
    for d in ["usr/lib/x86_64-linux-gnu", "usr/lib64", "usr/bin", "etc", "tmp", "proc", "sys", "dev", "app"] {
        std::fs::create_dir_all(root.join(d)).expect("image root");
    }
    run(Command::new("cp").arg("-a").arg(java.join("usr/lib/jvm")).arg(root.join("usr/lib/")));
    run(Command::new("cp").arg("-a").arg(java.join("etc/java-17-openjdk")).arg(root.join("etc/")));
    for lib in ["libc.so.6", "libm.so.6", "libz.so.1", "libstdc++.so.6", "libgcc_s.so.1"] {
        run(Command::new("cp")
            .arg("-L")
            .arg(debian.join("usr/lib/x86_64-linux-gnu").join(lib))
            .arg(root.join("usr/lib/x86_64-linux-gnu/")));
    }
    run(Command::new("cp").arg("-L").arg(debian.join("lib64/ld-linux-x86-64.so.2")).arg(root.join("usr/lib64/")));
    run(Command::new("cp").arg("-L").arg(debian.join("usr/bin/dash")).arg(root.join("usr/bin/sh")));
    run(Command::new("cp").arg("-L").arg(debian.join("usr/bin/sleep")).arg(root.join("usr/bin/sleep")));
    for (link, to) in [("bin", "usr/bin"), ("lib", "usr/lib"), ("lib64", "usr/lib64")] {
        std::os::unix::fs::symlink(to, root.join(link)).expect("image link");
    }
    std::os::unix::fs::symlink("/usr/lib/jvm/java-17-openjdk-amd64/bin/java", root.join("usr/bin/java"))
        .expect("java link");
    for (name, file) in app {
        std::fs::copy(file, root.join("app").join(name)).expect("an application file");
    }
    let out = dir.join("java.oci.tar");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/oci-image.py");
    run(Command::new("python3").arg(script).arg(&root).arg(reference).arg(&out));
    out
}
