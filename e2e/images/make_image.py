#!/usr/bin/env python3
"""Turn rootfs directories into a docker-archive image tarball, without any daemon.

The tarball has the layout `docker save` writes (manifest.json, a config JSON,
one layer.tar per rootfs directory), which `ctr images import`, `docker load`,
`kind load image-archive` and podman all accept.

    e2e/images/make_image.py -t kubetrain.local/smoke:1.0 -o smoke.tar \
        --entrypoint /bin/sh --cmd -c --cmd 'echo hi' rootfs/

Each ROOTFS argument becomes one layer, in order (later layers win). Layers are
reproducible: entries sorted, owner root:root, mtime fixed (SOURCE_DATE_EPOCH or
0), so the same input gives the same image ID. Python standard library only.

Import into the e2e cluster:  e2e/cluster.sh load-image smoke.tar
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ARCH = {
    "x86_64": "amd64",
    "aarch64": "arm64",
    "armv7l": "arm",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
}.get(os.uname().machine, os.uname().machine)


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _layer_tar(rootfs_dir: str, out_path: Path, mtime: int) -> None:
    """Write rootfs as an uncompressed, reproducible layer tar."""
    rootfs = Path(rootfs_dir).absolute()
    if not rootfs.is_dir():
        raise SystemExit(f"make_image: not a directory: {rootfs}")
    entries: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(rootfs):
        dirnames.sort()
        entries.extend(Path(dirpath) / name for name in sorted(dirnames + filenames))
    entries.sort(key=lambda p: str(p.relative_to(rootfs)))
    with tarfile.open(out_path, "w", format=tarfile.PAX_FORMAT) as tar:
        for path in entries:
            arcname = str(path.relative_to(rootfs))
            info = tar.gettarinfo(str(path), arcname)
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            info.mtime = mtime
            if info.isreg():
                with path.open("rb") as f:
                    tar.addfile(info, f)
            else:
                tar.addfile(info)


def make_image(
    tag,
    rootfs_dirs,
    output,
    entrypoint=None,
    cmd=None,
    env=None,
    workdir="/",
    user="",
    labels=None,
    exposed_ports=None,
):
    """Build a docker-archive tarball at `output`; return the image ID (sha256:...)."""
    mtime = int(os.environ.get("SOURCE_DATE_EPOCH", "0"))
    env = list(env or [])
    if not any(e.startswith("PATH=") for e in env):
        env.insert(0, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    with tempfile.TemporaryDirectory(prefix="make_image.") as tmp:
        layers = []  # (digest_hex, tmp path)
        for i, rootfs in enumerate(rootfs_dirs):
            path = Path(tmp) / f"layer{i}.tar"
            _layer_tar(rootfs, path, mtime)
            layers.append((_sha256_file(path), path))
        created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(mtime))
        config = {
            "architecture": ARCH,
            "os": "linux",
            "created": created,
            "config": {
                "Env": env,
                "Entrypoint": entrypoint or None,
                "Cmd": cmd or None,
                "WorkingDir": workdir,
                "User": user,
                "Labels": labels or None,
                "ExposedPorts": {p: {} for p in (exposed_ports or [])} or None,
            },
            "rootfs": {"type": "layers", "diff_ids": [f"sha256:{d}" for d, _ in layers]},
            "history": [
                {"created": created, "created_by": "e2e/images/make_image.py"} for _ in layers
            ],
        }
        config_bytes = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
        config_hex = hashlib.sha256(config_bytes).hexdigest()
        manifest = [
            {
                "Config": f"{config_hex}.json",
                "RepoTags": [tag],
                "Layers": [f"{d}/layer.tar" for d, _ in layers],
            }
        ]
        repo, _, ver = tag.rpartition(":")
        if not repo or "/" in ver:
            raise SystemExit(f"make_image: tag must be NAME:TAG, got {tag!r}")
        repositories = {repo: {ver: layers[-1][0]}}

        def add_bytes(tar, name, data):
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), mtime, 0o644
            tar.addfile(info, io.BytesIO(data))

        out_tmp = Path(output + ".tmp")
        with tarfile.open(out_tmp, "w", format=tarfile.PAX_FORMAT) as tar:
            for digest, path in layers:
                info = tarfile.TarInfo(digest)
                info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, mtime
                tar.addfile(info)
                info = tar.gettarinfo(str(path), f"{digest}/layer.tar")
                info.uid = info.gid = 0
                info.uname = info.gname = "root"
                info.mtime, info.mode = mtime, 0o644
                with path.open("rb") as f:
                    tar.addfile(info, f)
            add_bytes(tar, f"{config_hex}.json", config_bytes)
            add_bytes(tar, "manifest.json", json.dumps(manifest).encode())
            add_bytes(tar, "repositories", json.dumps(repositories).encode())
        out_tmp.replace(output)
    return f"sha256:{config_hex}"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("-t", "--tag", required=True, help="image reference NAME:TAG")
    p.add_argument("-o", "--output", required=True, help="tarball to write")
    p.add_argument(
        "--entrypoint",
        action="append",
        default=[],
        help="entrypoint argv element (repeat for more)",
    )
    p.add_argument("--cmd", action="append", default=[], help="cmd argv element (repeat)")
    p.add_argument("--env", action="append", default=[], help="KEY=VALUE (repeat)")
    p.add_argument("--workdir", default="/")
    p.add_argument("--user", default="")
    p.add_argument("--label", action="append", default=[], help="KEY=VALUE (repeat)")
    p.add_argument("--expose", action="append", default=[], help="PORT/PROTO, e.g. 80/tcp")
    p.add_argument("rootfs", nargs="+", help="rootfs directory; one layer each")
    a = p.parse_args(argv)
    labels = dict(label.split("=", 1) for label in a.label)
    image_id = make_image(
        a.tag,
        a.rootfs,
        a.output,
        entrypoint=a.entrypoint,
        cmd=a.cmd,
        env=a.env,
        workdir=a.workdir,
        user=a.user,
        labels=labels,
        exposed_ports=a.expose,
    )
    print(f"{a.output}: {a.tag} {image_id}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
