"""Fetch a public file (a dataset archive, pretrained weights) into a cache directory, once.

- The file comes from its official site, or from the mirror its kind's setting names
  (`KUBETRAIN_DATASETS_MIRROR`, `KUBETRAIN_WEIGHTS_MIRROR`: a base URL or a directory).
- It is checked against its published checksum, or against the sha256 the mirror publishes
  beside it as `<name>.sha256` (a mirror serving a different file on purpose says so that way).
- Only one process downloads into a directory: the others (a job's workers sharing the
  directory) wait on a lock file there, then use the file it wrote.
- The file is written under a temporary name and renamed into place once its checksum matches,
  so a file under the final name is whole; a partial or mismatching download is deleted.

A file already in the directory is used as it is, with no network: data on a volume.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import http.client
import os
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol

from kubetrain.api.mirrors import CHECKSUM_SIDECAR, MIRROR_SETTING, PublicFile
from kubetrain.trainer.say import say

DOCS = "docs/air-gapped.md"
CHUNK = 1 << 20
PROGRESS_EVERY_S = 5.0
TIMEOUT_S = 60.0  # per socket operation, not for the whole file
# HTTP answers that mean "no such file here" (S3 says 403 for a missing key without list rights).
_ABSENT = (403, 404, 410)


class _Reader(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class _Hasher(Protocol):
    def update(self, data: bytes, /) -> None: ...

    def hexdigest(self) -> str: ...


class DownloadError(RuntimeError):
    """A file could not be fetched; the message names the URL, the setting and the fix."""


class ChecksumMismatch(DownloadError):
    """The fetched bytes are not the file expected; nothing was kept."""


def default_cache_dir() -> Path:
    """Where files go when the spec names no directory: $XDG_CACHE_HOME/kubetrain, else
    ~/.cache/kubetrain (in the trainer image HOME is /tmp, a per-pod emptyDir)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "kubetrain"


@dataclass(frozen=True)
class Source:
    """Where one file is read from: a URL or a local path, and the checksum it must have."""

    location: str  # a URL, or a local path
    algorithm: str
    digest: str
    mirror: str | None  # the mirror setting's value, None for the official site
    setting: str

    @property
    def is_url(self) -> bool:
        return self.location.startswith(("http://", "https://"))


def mirror_value(file: PublicFile) -> str | None:
    value = os.environ.get(MIRROR_SETTING[file.kind], "").strip()
    return value or None


def _local_dir(mirror: str) -> Path:
    if mirror.startswith("file://"):
        return Path(urllib.parse.unquote(urllib.parse.urlparse(mirror).path))
    return Path(mirror)


def _parse_sidecar(text: str, where: str) -> str:
    first = text.split()[0].lower() if text.split() else ""
    if len(first) != 64 or any(c not in "0123456789abcdef" for c in first):
        raise DownloadError(
            f"{where} is not a sha256 checksum file (it should hold 64 hex digits, optionally "
            f"followed by the file name, as sha256sum writes it); fix or remove it"
        )
    return first


def _read_url(url: str) -> bytes | None:
    """A small file's bytes, None when the server says it has no such file."""
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
            data: bytes = response.read()
            return data
    except urllib.error.HTTPError as exc:
        if exc.code in _ABSENT:
            return None
        raise


def resolve(file: PublicFile, local_fix: str = "") -> Source:
    """Where `file` comes from now, and the checksum it must match."""
    setting = MIRROR_SETTING[file.kind]
    mirror = mirror_value(file)
    if mirror is None:
        return Source(file.url, file.algorithm, file.digest, None, setting)
    if mirror.startswith(("http://", "https://")):
        url = mirror.rstrip("/") + "/" + file.name
        try:
            sidecar = _read_url(url + CHECKSUM_SIDECAR)
        except (OSError, ValueError) as exc:
            raise DownloadError(
                f"{setting}={mirror}: cannot reach the mirror for {url + CHECKSUM_SIDECAR} "
                f"({_reason(exc)}); fix the address, unset {setting} to use {file.url}"
                + (f", or {local_fix}" if local_fix else "")
            ) from exc
        if sidecar is None:
            return Source(url, file.algorithm, file.digest, mirror, setting)
        digest = _parse_sidecar(sidecar.decode("utf-8", "replace"), url + CHECKSUM_SIDECAR)
        return Source(url, "sha256", digest, mirror, setting)
    directory = _local_dir(mirror)
    if not directory.is_dir():
        raise DownloadError(
            f"{setting}={mirror}: {directory} is not a directory on this machine; mount the "
            f"mirror there, or give an http(s):// base URL (see {DOCS})"
        )
    path = directory / file.name
    sidecar_path = directory / (file.name + CHECKSUM_SIDECAR)
    if sidecar_path.is_file():
        try:
            text = sidecar_path.read_text("utf-8", "replace")
        except OSError as exc:
            raise DownloadError(f"{setting}={mirror}: cannot read {sidecar_path} ({exc})") from exc
        return Source(str(path), "sha256", _parse_sidecar(text, str(sidecar_path)), mirror, setting)
    return Source(str(path), file.algorithm, file.digest, mirror, setting)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        return str(exc.reason)
    return str(exc) or type(exc).__name__


def _fix(file: PublicFile, source: Source, local_fix: str) -> str:
    """What to do when `source` failed: a mirror, or the file put where it is looked for."""
    if source.mirror is None:
        return (
            f"without internet access, set {source.setting} to a mirror (a URL or directory "
            f"serving {file.name}), or {local_fix} (see {DOCS})"
        )
    return (
        f"put the official {file.name} (from {file.url}) on the mirror, fix {source.setting}"
        f"={source.mirror}, or {local_fix} (see {DOCS})"
    )


@contextlib.contextmanager
def _exclusive(lock_path: Path, what: str) -> Iterator[bool]:
    """Hold an exclusive lock on `lock_path` (an flock: released by the kernel if the holder
    dies); yields whether it is held. A filesystem without locks gets no lock: each process
    then downloads on its own, and the atomic rename still keeps the file whole."""
    with lock_path.open("a+b") as handle:
        held = True
        try:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                say(f"waiting for another process to download {what}")
                fcntl.flock(handle, fcntl.LOCK_EX)
        except OSError as exc:
            if exc.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
                raise
            held = False
            say(f"{lock_path.parent} does not support file locks; downloading {what} unshared")
        try:
            yield held
        finally:
            with contextlib.suppress(OSError):
                fcntl.flock(handle, fcntl.LOCK_UN)


def _copy(reader: _Reader, out: IO[bytes], hasher: _Hasher, label: str, total: int) -> int:
    done, started, last = 0, time.monotonic(), time.monotonic()
    while chunk := reader.read(CHUNK):
        out.write(chunk)
        hasher.update(chunk)
        done += len(chunk)
        now = time.monotonic()
        if now - last >= PROGRESS_EVERY_S:
            last = now
            of = f" of {total / 1e6:.1f} MB ({100 * done // total}%)" if total else " MB"
            say(f"{label}: {done / 1e6:.1f}{of}, {now - started:.0f} s")
    return done


def _transfer(source: Source, out: IO[bytes], hasher: _Hasher, label: str) -> None:
    if not source.is_url:
        path = Path(source.location)
        if not path.is_file():
            raise FileNotFoundError(f"{path} does not exist")
        with path.open("rb") as reader:
            _copy(reader, out, hasher, label, path.stat().st_size)
        return
    request = urllib.request.Request(source.location, headers={"User-Agent": "kubetrain"})
    with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
        total = int(response.headers.get("Content-Length") or 0)
        done = _copy(response, out, hasher, label, total)
    if total and done != total:
        raise OSError(f"the connection ended after {done} of {total} bytes")


def _download(file: PublicFile, target: Path, local_fix: str) -> None:
    source = resolve(file, local_fix)
    where = source.location
    say(f"fetching {file.name} from {where} into {target.parent}")
    hasher = hashlib.new(source.algorithm)
    started = time.monotonic()
    fd, tmp_name = tempfile.mkstemp(prefix=f".{file.name}.", suffix=".part", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        os.fchmod(fd, 0o644)  # mkstemp's 0600 would hide the file from other users of the volume
        with os.fdopen(fd, "wb") as out:
            try:
                _transfer(source, out, hasher, f"fetching {file.name}")
            except (OSError, ValueError, http.client.HTTPException) as exc:
                raise DownloadError(
                    f"cannot fetch {where} ({_reason(exc)}); {_fix(file, source, local_fix)}"
                ) from exc
            out.flush()
            os.fsync(out.fileno())
        got = hasher.hexdigest()
        if got != source.digest:
            published = (
                f"the published {source.algorithm}"
                if source.algorithm == file.algorithm and source.digest == file.digest
                else f"the mirror's {file.name}{CHECKSUM_SIDECAR}"
            )
            raise ChecksumMismatch(
                f"{where} has {source.algorithm} {got}, not {source.digest} ({published}): a "
                f"truncated or different file, deleted. "
                + (
                    f"Copy the official file from {file.url} to the mirror again, or publish "
                    f"the sha256 of the file it serves beside it as {file.name}"
                    f"{CHECKSUM_SIDECAR} (see {DOCS})"
                    if source.mirror is not None
                    else f"Try again; if it persists, {_fix(file, source, local_fix)}"
                )
            )
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)
    size = target.stat().st_size
    say(f"fetched {file.name} ({size / 1e6:.1f} MB in {time.monotonic() - started:.1f} s)")


def fetch(file: PublicFile, directory: Path, local_fix: str) -> Path:
    """`directory/<file.name>`, fetched first unless already there.

    `local_fix` says how to do without the network, for the error messages (e.g. "put it in
    spec.dataset.path (/data/mnist)")."""
    target = directory / file.name
    if target.is_file():
        return target
    try:
        directory.mkdir(parents=True, exist_ok=True)
        lock = directory / f".{file.name}.lock"
        with _exclusive(lock, f"{file.name} into {directory}") as held:
            if target.is_file():  # another process fetched it while this one waited
                return target
            if held:  # no one else writes: partial files are from a process that died
                for stale in directory.glob(f".{file.name}.*.part"):
                    stale.unlink(missing_ok=True)
            _download(file, target, local_fix)
    except OSError as exc:  # not writable: no permission, a read-only filesystem, no space
        raise DownloadError(
            f"cannot write {file.name} into {directory} ({exc.strerror or exc}); mount a "
            f"writable volume there or make it writable by this user, or {local_fix}"
        ) from exc
    return target


def dataset_dir(path: str | None, source: str) -> Path:
    """Where a dataset's files are looked for and fetched to: spec.dataset.path, else
    `<cache>/datasets/<source>`."""
    return Path(path) if path else default_cache_dir() / "datasets" / source


def dataset_local_fix(path: str | None, names: str) -> str:
    """How to do without the network, for the error messages of a dataset's fetch."""
    if path:
        return f"put {names} in spec.dataset.path ({path})"
    return f"set spec.dataset.path to a directory (a volume) that holds {names}"
