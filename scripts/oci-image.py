#!/usr/bin/env python3
"""Packs a root filesystem directory into an OCI image archive (one gzip layer) that
`ctr images import` accepts: no registry, no Docker. Prints the manifest digest.

usage: oci-image.py ROOT NAME:TAG OUT.tar [--entrypoint ARG]... [--cmd ARG]...
                    [--label KEY=VALUE]... [--root-owned]

--root-owned: every entry owned by root:root and writable by no one else (group and
other write bits cleared), whatever it is on disk; mtimes zeroed, so a build is
reproducible.
"""
import argparse, gzip, hashlib, io, json, os, sys, tarfile

p = argparse.ArgumentParser()
p.add_argument("root"); p.add_argument("ref"); p.add_argument("out")
p.add_argument("--entrypoint", action="append", default=None)
p.add_argument("--cmd", action="append", default=None)
p.add_argument("--label", action="append", default=[])
p.add_argument("--root-owned", action="store_true")
a = p.parse_args()

def blob(tar, data, media):
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    info = tarfile.TarInfo("blobs/sha256/" + digest.split(":")[1])
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))
    return {"mediaType": media, "digest": digest, "size": len(data)}

def owned(info):
    if a.root_owned:
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        info.mode &= ~0o022
        info.mtime = 0
    return info

layer_raw = io.BytesIO()
with tarfile.open(fileobj=layer_raw, mode="w", format=tarfile.PAX_FORMAT) as lt:
    for name in sorted(os.listdir(a.root)):
        if name in ("proc", "sys", "dev"):
            lt.add(os.path.join(a.root, name), arcname=name, recursive=False, filter=owned)
        else:
            lt.add(os.path.join(a.root, name), arcname=name, filter=owned)
raw = layer_raw.getvalue()
diff_id = "sha256:" + hashlib.sha256(raw).hexdigest()
layer = gzip.compress(raw, compresslevel=6 if a.root_owned else 1, mtime=0)

config = {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]}
config["Cmd"] = a.cmd if a.cmd is not None else ["/bin/sh"]
if a.entrypoint is not None:
    config["Entrypoint"] = a.entrypoint
if a.label:
    config["Labels"] = dict(l.split("=", 1) for l in a.label)
with tarfile.open(a.out, "w") as tar:
    lay = blob(tar, layer, "application/vnd.oci.image.layer.v1.tar+gzip")
    cfg_doc = {"architecture": "amd64", "os": "linux", "config": config,
               "rootfs": {"type": "layers", "diff_ids": [diff_id]}}
    cfg = blob(tar, json.dumps(cfg_doc, sort_keys=True).encode(), "application/vnd.oci.image.config.v1+json")
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "config": cfg, "layers": [lay]}
    if a.label:
        manifest["annotations"] = dict(l.split("=", 1) for l in a.label)
    man = blob(tar, json.dumps(manifest, sort_keys=True).encode(), "application/vnd.oci.image.manifest.v1+json")
    man["annotations"] = {"org.opencontainers.image.ref.name": a.ref, "io.containerd.image.name": a.ref}
    for name, data in (("oci-layout", json.dumps({"imageLayoutVersion": "1.0.0"}).encode()),
                       ("index.json", json.dumps({"schemaVersion": 2, "manifests": [man]}).encode())):
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
print(man["digest"])
