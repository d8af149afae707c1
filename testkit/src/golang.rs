//! Real Go programs, built here with Debian's Go toolchain from the standard library alone,
//! for function-level reachability: one calls a vulnerable function
//! (`encoding/gob.(*Decoder).Decode`, GO-2024-3106), one links it and never calls it, one
//! does not link its package, and the first again, stripped. None imports `go/parser` or
//! `go/build/constraint` (GO-2024-3105, GO-2024-3107). Static (`CGO_ENABLED=0`), so they run
//! in any container root.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Calls `Decoder.Decode` N times (argument 1, default 1), sleeping argument 2 seconds
/// before and after (default 0): a probe can be in place before the first call, and the
/// call is reported before the process exits.
const CALLS: &str = r#"package main

import (
	"bytes"
	"encoding/gob"
	"fmt"
	"os"
	"strconv"
	"time"
)

func main() {
	n, wait := 1, 0
	if len(os.Args) > 1 {
		n, _ = strconv.Atoi(os.Args[1])
	}
	if len(os.Args) > 2 {
		wait, _ = strconv.Atoi(os.Args[2])
	}
	time.Sleep(time.Duration(wait) * time.Second)
	var buf bytes.Buffer
	enc := gob.NewEncoder(&buf)
	dec := gob.NewDecoder(&buf)
	sum := 0
	for i := 0; i < n; i++ {
		if err := enc.Encode(i); err != nil {
			panic(err)
		}
		var v int
		if err := dec.Decode(&v); err != nil {
			panic(err)
		}
		sum += v
	}
	fmt.Println("decoded", n, sum)
	time.Sleep(time.Duration(wait) * time.Second)
}
"#;

/// Links `Decoder.Decode` (behind a condition that never holds) and encodes only.
const LINKS: &str = r#"package main

import (
	"bytes"
	"encoding/gob"
	"fmt"
	"os"
	"time"
)

func main() {
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(42); err != nil {
		panic(err)
	}
	if len(os.Args) > 100 {
		var v int
		_ = gob.NewDecoder(&buf).Decode(&v)
	}
	if len(os.Args) > 1 {
		time.Sleep(2 * time.Second)
	}
	fmt.Println("encoded", buf.Len())
}
"#;

/// Neither gob nor the parsers.
const NOLINK: &str = r#"package main

import (
	"fmt"
	"os"
)

func main() { fmt.Println("args", len(os.Args)) }
"#;

/// The programs, built.
#[derive(Debug, Clone)]
pub struct Programs {
    /// Calls `encoding/gob.(*Decoder).Decode`.
    pub calls: PathBuf,
    /// Links it, never calls it.
    pub links: PathBuf,
    /// Does not link `encoding/gob`.
    pub nolink: PathBuf,
    /// `calls`, built with `-ldflags=-s -w -trimpath`.
    pub stripped: PathBuf,
}

/// An OCI image archive (`ctr images import` takes it) of a root holding only the
/// programs, at `/usr/local/bin/{calls,links,nolink}`: static binaries need nothing else.
pub fn image(dir: &Path, programs: &Programs, reference: &str) -> PathBuf {
    let root = dir.join("go-root");
    let bin = root.join("usr/local/bin");
    std::fs::create_dir_all(&bin).expect("image root");
    for (name, path) in [("calls", &programs.calls), ("links", &programs.links), ("nolink", &programs.nolink)] {
        std::fs::copy(path, bin.join(name)).expect("copying a program into the image root");
    }
    for d in ["proc", "sys", "dev", "tmp", "etc"] {
        std::fs::create_dir_all(root.join(d)).expect("image root");
    }
    let out = dir.join("go.oci.tar");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/oci-image.py");
    let status = Command::new("python3")
        .arg(script)
        .arg(&root)
        .arg(reference)
        .arg(&out)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("python3");
    assert!(status.success(), "oci-image.py failed");
    out
}

/// Builds `source` (a `main` package) into `out` with extra `go build` flags.
pub fn build(source: &str, out: &Path, flags: &[&str]) {
    let src = tempfile::tempdir().expect("temporary directory");
    std::fs::write(src.path().join("go.mod"), "module example.com/app\n\ngo 1.19\n").expect("go.mod");
    std::fs::write(src.path().join("main.go"), source).expect("main.go");
    // A cache shared by every test: the standard library is compiled once.
    let cache = Path::new("/var/cache/sniffer-fixtures/go-build");
    std::fs::create_dir_all(cache).expect("Go build cache");
    let output = Command::new("go")
        .arg("build")
        .args(flags)
        .arg("-o")
        .arg(out)
        .arg(".")
        .current_dir(src.path())
        .env("CGO_ENABLED", "0")
        .env("GOFLAGS", "-mod=mod")
        .env("GOPROXY", "off")
        .env("GOCACHE", cache)
        .env("GOPATH", src.path().join("gopath"))
        .output()
        .expect("running go build (golang-go: cargo xtask setup installs it)");
    assert!(output.status.success(), "go build: {}", String::from_utf8_lossy(&output.stderr));
}

/// Builds the four programs into `dir`.
pub fn programs(dir: &Path) -> Programs {
    let p = Programs {
        calls: dir.join("calls"),
        links: dir.join("links"),
        nolink: dir.join("nolink"),
        stripped: dir.join("stripped"),
    };
    build(CALLS, &p.calls, &[]);
    build(LINKS, &p.links, &[]);
    build(NOLINK, &p.nolink, &[]);
    build(CALLS, &p.stripped, &["-trimpath", "-ldflags=-s -w"]);
    p
}

/// The Go vulnerability records the tests use (golang/vulndb, CC-BY 4.0; see the README
/// beside them).
pub fn records() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../vuln/tests/data/golang")
}
