#!/usr/bin/env python3
"""The agent's OCI image from a sniffer binary: the binary without its debug information,
the dynamic loader and C libraries it links (as ldd resolves them here), CA certificates,
every file root's and writable by no one else, labelled with version and revision.
`cargo xtask image` runs it on the release binary; the DaemonSet test on the binary under
test. Prints the manifest digest.

usage: agent-image.py BINARY OUT.tar REF VERSION REVISION
"""
import os, shutil, subprocess, sys, tempfile

binary, out, ref, version, revision = sys.argv[1:6]
here = os.path.dirname(os.path.abspath(__file__))
with tempfile.TemporaryDirectory(dir=os.path.dirname(os.path.abspath(out))) as work:
    root = os.path.join(work, "root")
    for d in ("usr/local/bin", "etc/ssl/certs", "tmp", "var/lib/sniffer", "run/sniffer", "proc", "sys", "dev"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    installed = os.path.join(root, "usr/local/bin/sniffer")
    subprocess.run(["objcopy", "--strip-debug", binary, installed], check=True)
    os.chmod(installed, 0o755)
    ldd = subprocess.run(["ldd", binary], check=True, capture_output=True, text=True).stdout
    for lib in sorted({w for w in ldd.split() if w.startswith("/")}):
        target = os.path.join(root, lib.lstrip("/"))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copyfile(lib, target)
        os.chmod(target, 0o755)
    certs = "/etc/ssl/certs/ca-certificates.crt"
    if os.path.exists(certs):
        shutil.copyfile(certs, os.path.join(root, "etc/ssl/certs/ca-certificates.crt"))
    os.chmod(os.path.join(root, "tmp"), 0o755)
    labels = {
        "org.opencontainers.image.title": "sniffer",
        "org.opencontainers.image.version": version,
        "org.opencontainers.image.revision": revision,
        "org.opencontainers.image.licenses": "Apache-2.0",
    }
    cmd = [sys.executable, os.path.join(here, "oci-image.py"), root, ref, out, "--root-owned",
           "--entrypoint", "/usr/local/bin/sniffer", "--cmd", "run"]
    cmd += ["--label=%s=%s" % kv for kv in labels.items()]
    subprocess.run(cmd, check=True)
