#!/usr/bin/env python3
"""Packs a root filesystem directory into an OCI image archive (one gzip layer) that
`ctr images import` accepts: no registry, no Docker.

usage: oci-image.py ROOT NAME:TAG OUT.tar
"""
import gzip, hashlib, io, json, os, sys, tarfile

root, ref, out = sys.argv[1], sys.argv[2], sys.argv[3]

def blob(tar, data, media):
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    info = tarfile.TarInfo("blobs/sha256/" + digest.split(":")[1])
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))
    return {"mediaType": media, "digest": digest, "size": len(data)}

layer_raw = io.BytesIO()
with tarfile.open(fileobj=layer_raw, mode="w", format=tarfile.PAX_FORMAT) as lt:
    for name in sorted(os.listdir(root)):
        if name in ("proc", "sys", "dev"):
            lt.add(os.path.join(root, name), arcname=name, recursive=False)
        else:
            lt.add(os.path.join(root, name), arcname=name)
raw = layer_raw.getvalue()
diff_id = "sha256:" + hashlib.sha256(raw).hexdigest()
layer = gzip.compress(raw, compresslevel=1, mtime=0)

with tarfile.open(out, "w") as tar:
    lay = blob(tar, layer, "application/vnd.oci.image.layer.v1.tar+gzip")
    config = {"architecture": "amd64", "os": "linux",
              "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], "Cmd": ["/bin/sh"]},
              "rootfs": {"type": "layers", "diff_ids": [diff_id]}}
    cfg = blob(tar, json.dumps(config).encode(), "application/vnd.oci.image.config.v1+json")
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "config": cfg, "layers": [lay]}
    man = blob(tar, json.dumps(manifest).encode(), "application/vnd.oci.image.manifest.v1+json")
    man["annotations"] = {"org.opencontainers.image.ref.name": ref, "io.containerd.image.name": ref}
    for name, data in (("oci-layout", json.dumps({"imageLayoutVersion": "1.0.0"}).encode()),
                       ("index.json", json.dumps({"schemaVersion": 2, "manifests": [man]}).encode())):
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
print(man["digest"])
