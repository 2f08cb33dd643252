#!/usr/bin/env python3
"""Build kubetrain's trainer and operator images and load them into the cluster in use.

    e2e/images/build.py                  # build (or reuse) both, load into the current cluster
    e2e/images/build.py --no-load        # only build; prints the docker-archive tarballs
    e2e/images/build.py --variant cuda   # the CUDA trainer (torch from the cu128 index)

Where the images go:
  * kind (the kubeconfig's current context is `kind-*` and `docker info` works): `docker build`,
    then `kind load docker-image`.
  * otherwise, with no Docker engine: a daemonless build with Debian's buildah on a Debian
    bookworm base made by debootstrap, exported as a docker-archive tarball, then imported into
    the e2e cluster's containerd (`e2e/cluster.sh load-image`).

Builds are cached by the content hash of their inputs (Dockerfile, sources, lock, build args,
base) under ~/.cache/kubetrain/images: a rerun with nothing changed builds nothing, and an
image already in the cluster's containerd is not imported again.

The machine's CA bundle and pip settings reach `RUN` steps through build-time mounts only; no
image contains them. Python standard library only; needs root for the daemonless path.
"""

from __future__ import annotations

import argparse
import configparser
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("KUBETRAIN_CACHE_DIR", Path.home() / ".cache" / "kubetrain")) / "images"
CLUSTER_DIR = Path(os.environ.get("KUBETRAIN_CLUSTER_DIR", "/tmp/kubetrain-cluster"))
VERSION = "0.1.0"

SUITE = "bookworm"
BASE_TAG = f"kubetrain.local/debian:{SUITE}-minbase"
# What RUN steps see of the machine: its CA bundle (pip verifies PyPI against it) and a pip
# config pointing there. Mounted at build time, never copied into a layer.
HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")
BUILD_CA = "/run/kubetrain-build/ca.crt"
TORCH_INDEX = {
    "cpu": "https://download.pytorch.org/whl/cpu",
    "cuda": "https://download.pytorch.org/whl/cu128",
}
# Sources both images copy (see .dockerignore); trainer_image/ only the trainer needs.
SOURCES = ("pyproject.toml", "README.md", "src", "operator", "trainer_image")
PACKAGES = {"debootstrap": "debootstrap", "buildah": "buildah", "podman": "podman"}


def log(msg: str) -> None:
    print(f"[images {time.strftime('%T')}] {msg}", file=sys.stderr, flush=True)


def run(cmd: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, check=True, text=True, **kw)  # type: ignore[call-overload, no-any-return]


def out(cmd: list[str]) -> str:
    return run(cmd, stdout=subprocess.PIPE).stdout.strip()


@dataclass
class Image:
    name: str  # trainer | operator
    tag: str
    dockerfile: str  # relative to the context
    build_args: dict[str, str] = field(default_factory=dict)
    wheels: list[Path] = field(default_factory=list)  # linked into trainer_image/wheels/


def images(variant: str, torch_wheel: Path | None, torch_index: str | None) -> list[Image]:
    if torch_index is None:
        # With the wheel on disk no index is needed for torch (download.pytorch.org may be out
        # of reach); without it the variant's index provides it.
        torch_index = "" if torch_wheel else TORCH_INDEX[variant]
    trainer = Image(
        "trainer",
        f"kubetrain/trainer:{VERSION}-{variant}",
        "trainer_image/Dockerfile",
        {"TORCH_INDEX": torch_index},
        [torch_wheel] if torch_wheel else [],
    )
    operator = Image("operator", f"kubetrain/operator:{VERSION}", "operator/Dockerfile")
    return [trainer, operator]


def find_torch_wheel() -> Path | None:
    """The CPU torch wheel the pinned version needs, if this machine has one on disk."""
    lock = (REPO / "trainer_image" / "requirements.lock").read_text()
    version = next(ln.split("==")[1] for ln in lock.splitlines() if ln.startswith("torch=="))
    dirs = [Path(d) for d in os.environ.get("PIP_FIND_LINKS", "/opt/wheels").split()]
    for d in dirs:
        # The image's Python is Debian bookworm's 3.11.
        for whl in sorted(d.glob(f"torch-{version}+cpu-cp311-*linux*x86_64.whl")):
            return whl
    return None


# --------------------------------------------------------------------------- build context


def stage_context(image: Image, dest: Path) -> str:
    """Copies what the Dockerfile may use into dest; returns the content hash of the inputs."""
    h = hashlib.sha256()
    skip = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "*.whl")
    for name in SOURCES:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=skip)
        else:
            shutil.copy2(src, dest / name)
    for path in sorted(p for p in dest.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(dest)).encode() + b"\0" + path.read_bytes() + b"\0")
    for whl in image.wheels:
        target = dest / "trainer_image" / "wheels" / whl.name
        if whl.stat().st_dev == dest.stat().st_dev:
            os.link(whl, target)
        else:
            shutil.copy2(whl, target)
        # A wheel's name carries its version; its size catches a different build.
        h.update(f"wheel {whl.name} {whl.stat().st_size}".encode())
    h.update(json.dumps([image.dockerfile, image.tag, image.build_args], sort_keys=True).encode())
    return h.hexdigest()[:16]


# --------------------------------------------------------------------------- daemonless


def ensure_packages() -> None:
    missing = [pkg for tool, pkg in PACKAGES.items() if shutil.which(tool) is None]
    if not missing:
        return
    if os.geteuid() != 0:
        sys.exit(f"missing {' '.join(missing)}; install them (apt-get install) or run as root")
    log(f"apt-get install {' '.join(missing)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    run(["apt-get", "update", "-qq"], env=env)
    run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing], env=env)


def debian_mirror() -> str:
    """The machine's own Debian mirror (apt sources), so debootstrap uses what apt can reach."""
    for path in sorted(Path("/etc/apt/sources.list.d").glob("*.sources")):
        for line in path.read_text().splitlines():
            if line.startswith("URIs:") and "security" not in line:
                return line.split()[1]
    sources = Path("/etc/apt/sources.list")
    if sources.exists():
        for line in sources.read_text().splitlines():
            parts = line.split()
            if parts[:1] == ["deb"] and "security" not in line:
                return next(p for p in parts[1:] if p.startswith("http"))
    return "http://deb.debian.org/debian"


def ensure_base() -> str:
    """A minimal Debian bookworm image in containers-storage; returns its ID."""
    probe = subprocess.run(["podman", "image", "exists", BASE_TAG], check=False)
    if probe.returncode != 0:
        tarball = CACHE / f"debian-{SUITE}-minbase.tar"
        if not tarball.exists():
            mirror = debian_mirror()
            log(f"debootstrap --variant=minbase {SUITE} from {mirror}")
            with tempfile.TemporaryDirectory(prefix="kubetrain-rootfs.") as tmp:
                rootfs = Path(tmp) / "rootfs"
                run(["debootstrap", "--variant=minbase", SUITE, str(rootfs), mirror],
                    stdout=subprocess.DEVNULL)  # fmt: skip
                # Smaller and reproducible-ish: no apt lists or caches in the base.
                for d in ("var/lib/apt/lists", "var/cache/apt"):
                    for p in (rootfs / d).glob("*"):
                        if p.is_file():
                            p.unlink()
                tmp_tar = tarball.with_suffix(".part")
                run(["tar", "-C", str(rootfs), "--numeric-owner", "-cf", str(tmp_tar), "."])
                tmp_tar.rename(tarball)
        log(f"podman import {tarball.name} as {BASE_TAG}")
        run(["podman", "import", str(tarball), BASE_TAG], stdout=subprocess.DEVNULL)
    return out(["podman", "image", "inspect", "--format", "{{.Id}}", BASE_TAG])


def pip_conf(dest: Path) -> Path:
    """The machine's pip network settings for RUN steps, trusting the mounted CA bundle."""
    config = configparser.ConfigParser()
    host = configparser.ConfigParser()
    host.read(["/etc/pip.conf", "/etc/xdg/pip/pip.conf", Path.home() / ".config/pip/pip.conf"])
    config["global"] = {"cert": BUILD_CA, "timeout": "120"}
    for key in ("index-url", "trusted-host", "proxy"):
        if host.has_option("global", key):
            config["global"][key] = host.get("global", key)
    # Local file:// indexes and find-links are not mounted: the build sees only the network.
    path = dest / "pip.conf"
    with path.open("w") as f:
        config.write(f)
    return path


def buildah_build(image: Image, ctx: Path, base_id: str, inputs: str, tarball: Path) -> None:
    conf = pip_conf(ctx.parent)
    args = [
        "buildah", "bud", "--layers", "--network=host", "--format=docker",
        "-f", image.dockerfile, "-t", image.tag,
        "--label", f"io.kubetrain.inputs={inputs}",
        "--build-arg", f"BASE={base_id}",
        "-v", f"{HOST_CA}:{BUILD_CA}:ro", "-v", f"{conf}:/etc/pip.conf:ro",
    ]  # fmt: skip
    for key, value in image.build_args.items():
        args += ["--build-arg", f"{key}={value}"]
    run([*args, str(ctx)], cwd=ctx, stdout=sys.stderr)
    part = tarball.with_suffix(".part")
    part.unlink(missing_ok=True)
    run(
        ["buildah", "push", image.tag, f"docker-archive:{part}:{image.tag}"],
        stdout=subprocess.DEVNULL,
    )
    part.rename(tarball)


# --------------------------------------------------------------------------- loading


def ctr(*args: str) -> list[str]:
    sock = CLUSTER_DIR / "containerd" / "containerd.sock"
    return ["ctr", "--address", str(sock), "--namespace", "k8s.io", *args]


def normalized(tag: str) -> str:
    """The name containerd stores an image under (`kubetrain/x:1` is `docker.io/kubetrain/x:1`)."""
    first, _, rest = tag.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        return tag
    return f"docker.io/{tag}" if rest else f"docker.io/library/{tag}"


def ctr_digest(tag: str) -> str | None:
    ref = normalized(tag)
    result = subprocess.run(
        ctr("images", "ls", f"name=={ref}"), capture_output=True, text=True, check=False
    )
    rows = [ln.split() for ln in result.stdout.splitlines()[1:] if ln.strip()]
    return rows[0][2] if rows else None


def load_local(image: Image, tarball: Path) -> float:
    """Imports into the e2e cluster's containerd unless this very image is there; seconds."""
    marker = tarball.with_suffix(".digest")
    have = ctr_digest(image.tag)
    if have is not None and marker.exists() and marker.read_text() == have:
        log(f"{image.tag} already in the cluster")
        return 0.0
    t0 = time.monotonic()
    run([str(REPO / "e2e" / "cluster.sh"), "load-image", str(tarball)], stdout=sys.stderr)
    took = time.monotonic() - t0
    digest = ctr_digest(image.tag)
    if digest:
        marker.write_text(digest)
    log(f"imported {image.tag} in {took:.1f} s")
    return took


# --------------------------------------------------------------------------- kind


def kind_cluster() -> str | None:
    """The kind cluster's name if kubectl's current context is one and Docker answers."""
    try:
        context = out(["kubectl", "config", "current-context"])
    except (OSError, subprocess.CalledProcessError):
        return None
    if not context.startswith("kind-") or shutil.which("kind") is None:
        return None
    docker = subprocess.run(["docker", "info"], capture_output=True, check=False)
    return context.removeprefix("kind-") if docker.returncode == 0 else None


def docker_build(image: Image, ctx: Path, inputs: str) -> bool:
    """docker build unless the tag already has these inputs; True if it built."""
    label = '{{index .Config.Labels "io.kubetrain.inputs"}}'
    probe = subprocess.run(
        ["docker", "image", "inspect", "--format", label, image.tag],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if probe.returncode == 0 and probe.stdout.strip() == inputs:
        return False
    args = ["docker", "build", "-f", image.dockerfile, "-t", image.tag]
    args += ["--label", f"io.kubetrain.inputs={inputs}"]
    for key, value in image.build_args.items():
        args += ["--build-arg", f"{key}={value}"]
    run([*args, str(ctx)], cwd=ctx, stdout=sys.stderr)
    return True


# --------------------------------------------------------------------------- main


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--variant", choices=sorted(TORCH_INDEX), default="cpu", help="trainer variant")
    p.add_argument(
        "--only", choices=["trainer", "operator"], action="append", help="build only these"
    )
    p.add_argument(
        "--torch-index",
        help="PyTorch wheel index for the trainer ('' = PyPI only); default: the variant's",
    )
    p.add_argument("--no-load", action="store_true", help="build only; do not load into a cluster")
    p.add_argument("--report", type=Path, help="write what was done (times, sizes) as JSON here")
    args = p.parse_args()

    wheel = find_torch_wheel() if args.variant == "cpu" else None
    todo = [
        i
        for i in images(args.variant, wheel, args.torch_index)
        if not args.only or i.name in args.only
    ]
    kind = None if args.no_load else kind_cluster()
    report: dict[str, dict[str, object]] = {}
    CACHE.mkdir(parents=True, exist_ok=True)
    base_id = ""
    if kind is None:
        ensure_packages()
        t0 = time.monotonic()
        base_id = ensure_base()
        report["base"] = {"seconds": round(time.monotonic() - t0, 1), "id": base_id[:12]}
    for image in todo:
        entry: dict[str, object] = {"tag": image.tag}
        report[image.name] = entry
        with tempfile.TemporaryDirectory(prefix=f"kubetrain-{image.name}-ctx.", dir=CACHE) as tmp:
            ctx = Path(tmp) / "context"
            ctx.mkdir()
            inputs = stage_context(image, ctx)
            if kind is not None:
                t0 = time.monotonic()
                entry["built"] = docker_build(image, ctx, inputs)
                entry["build_seconds"] = round(time.monotonic() - t0, 1)
                continue
            # The base is an input too: a new debootstrap makes a new image.
            inputs = hashlib.sha256(f"{inputs} {base_id}".encode()).hexdigest()[:16]
            tarball = CACHE / f"{image.tag.replace('/', '_').replace(':', '_')}-{inputs}.tar"
            entry["tarball"] = str(tarball)
            entry["built"] = not tarball.exists()
            if tarball.exists():
                log(f"{image.tag}: cached ({tarball.name})")
            else:
                log(f"{image.tag}: building (inputs {inputs})")
                t0 = time.monotonic()
                buildah_build(image, ctx, base_id, inputs, tarball)
                entry["build_seconds"] = round(time.monotonic() - t0, 1)
                for old in CACHE.glob(f"{tarball.name.rsplit('-', 1)[0]}-*.tar"):
                    if old != tarball:  # one tarball per image: the newest inputs
                        old.unlink()
                        old.with_suffix(".digest").unlink(missing_ok=True)
            entry["tarball_mb"] = round(tarball.stat().st_size / 2**20)
    for image in todo:
        entry = report[image.name]
        if kind is not None:
            t0 = time.monotonic()
            run(["kind", "load", "docker-image", "--name", kind, image.tag], stdout=sys.stderr)
            entry["load_seconds"] = round(time.monotonic() - t0, 1)
        elif not args.no_load:
            entry["load_seconds"] = round(load_local(image, Path(str(entry["tarball"]))), 1)
    if args.report:
        args.report.write_text(json.dumps(report, indent=2) + "\n")
    log(json.dumps(report))
    for image in todo:
        print(report[image.name].get("tarball", image.tag))
    return 0


if __name__ == "__main__":
    sys.exit(main())
