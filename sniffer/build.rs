//! Builds the kernel programs (`sniffer-ebpf`, nightly, bpfel-unknown-none) and leaves the
//! object in OUT_DIR for `include_bytes_aligned!`, so `sniffer` is one self-contained binary.

use std::env;
use std::path::PathBuf;
use std::process::Command;

fn main() {
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let ebpf_dir = manifest.join("../sniffer-ebpf");
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo"));
    for watched in ["src", "Cargo.toml", "rust-toolchain.toml", ".cargo/config.toml"] {
        println!("cargo:rerun-if-changed={}", ebpf_dir.join(watched).display());
    }
    println!("cargo:rerun-if-changed={}", manifest.join("../sniffer-common/src").display());

    // One eBPF target dir for every profile: <target>/ebpf (OUT_DIR is <target>/<profile>/build/<pkg>/out).
    let target_dir = out_dir.ancestors().nth(4).map(|t| t.join("ebpf")).unwrap_or_else(|| out_dir.join("ebpf"));

    let mut cmd = Command::new("cargo");
    cmd.current_dir(&ebpf_dir).args(["build", "--release", "--target-dir"]).arg(&target_dir);
    // Let sniffer-ebpf/rust-toolchain.toml pick nightly: drop what the outer (stable) build set.
    for (key, _) in env::vars_os() {
        let key = key.to_string_lossy();
        if key.starts_with("CARGO") || key.starts_with("RUST") {
            cmd.env_remove(key.as_ref());
        }
    }
    let status = cmd.status().unwrap_or_else(|e| panic!("running cargo for sniffer-ebpf: {e}"));
    if !status.success() {
        panic!(
            "building the eBPF programs failed; `cargo xtask setup` installs what they need \
             (nightly rust-src, bpf-linker)"
        );
    }
    let object = target_dir.join("bpfel-unknown-none/release/sniffer-ebpf");
    std::fs::copy(&object, out_dir.join("sniffer-ebpf.o"))
        .unwrap_or_else(|e| panic!("copying {}: {e}", object.display()));
}
