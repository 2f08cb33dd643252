"""A private etcd and kube-apiserver for tests, as controller-runtime's envtest does it (a pytest
plugin: tests/conftest.py loads it).

No kubelet, no controller-manager, no scheduler, no root: etcd and the cached v1.20.2
kube-apiserver (`e2e/cluster.sh build` caches it; etcd is Debian's) run as this user, on free
loopback ports, in a temporary directory. The API server makes its own self-signed serving
certificate (clients trust that file), a static token in group system:masters is the client's
credential, and the ServiceAccount admission plugin is off (no controller makes the default
ServiceAccounts a pod would need). A second static token, of user `envtest-user` in no group, may
do nothing until a test binds it a Role (`user_kubeconfig`). Every CRD in crds/ is applied and
served before the fixture yields. Start-up takes about 5 s on two cores.

Fixtures: `apiserver` (session): an `ApiServer` with a kubeconfig, a `request` helper and the
operator's own client; `bare_apiserver` (session): another one, with no CRD applied. Tests that
use them are marked `apiserver` and `slow`. Without the binaries (or openssl, for the
ServiceAccount key the API server insists on) they skip and say why.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from kubetrain_operator.kubeobj import Obj
from tests.conftest import ROOT

if TYPE_CHECKING:
    from kubetrain_operator.kube import Kube

K8S_VERSION = "v1.20.2"
CACHE = Path(os.environ.get("KUBETRAIN_CACHE_DIR", Path.home() / ".cache" / "kubetrain"))
BIN = CACHE / f"k8s-{K8S_VERSION}" / "bin"
CRDS = ROOT / "crds"
START_TIMEOUT = 60.0  # seconds; about 5 s on two cores
USER = "envtest-user"  # the unprivileged user of `ApiServer.user_kubeconfig`


def find_binaries() -> dict[str, str] | str:
    """Paths of etcd, kube-apiserver and openssl; or why they cannot be had."""

    def cached(name: str) -> str | None:
        return str(BIN / name) if (BIN / name).exists() else None

    found = {
        "kube-apiserver": cached("kube-apiserver"),
        "etcd": shutil.which("etcd") or cached("etcd"),
        "openssl": shutil.which("openssl"),
    }
    absent = [name for name, path in found.items() if path is None]
    if absent:
        return (
            f"no {', '.join(absent)}: kube-apiserver is looked for in {BIN} (e2e/cluster.sh build"
            " caches it), etcd and openssl on PATH (Debian: etcd-server, openssl)"
        )
    return {name: str(path) for name, path in found.items()}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ApiError(RuntimeError):
    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"HTTP {status}: {body[:500]}")
        self.status = status


@dataclass
class ApiServer:
    url: str  # https://127.0.0.1:PORT
    token: str  # a bearer token of group system:masters
    ca_file: Path  # the API server's self-signed certificate
    kubeconfig: Path
    workdir: Path
    user_token: str = ""  # a bearer token of USER, in no group: only what RBAC grants it
    _context: ssl.SSLContext = field(init=False, repr=False)

    @property
    def user_kubeconfig(self) -> Path:
        """A kubeconfig that authenticates as USER, who may do nothing until bound a Role."""
        return self.workdir / "user.kubeconfig"

    def __post_init__(self) -> None:
        self._context = ssl.create_default_context(cafile=str(self.ca_file))

    def request(self, method: str, path: str, body: Obj | None = None) -> Obj | None:
        """One JSON request; None on 404; ApiError on any other non-2xx answer."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"{self.url}{path}", data=data, method=method)
        req.add_header("Authorization", f"Bearer {self.token}")
        req.add_header("Accept", "application/json")
        if data is not None:
            ctype = "application/merge-patch+json" if method == "PATCH" else "application/json"
            req.add_header("Content-Type", ctype)
        try:
            with urllib.request.urlopen(req, timeout=10, context=self._context) as r:
                out: Obj = json.loads(r.read() or b"{}")
                return out
        except urllib.error.HTTPError as e:
            if e.code == 404:
                return None
            raise ApiError(e.code, e.read().decode(errors="replace")) from None

    def is_ready(self) -> bool:
        """The API server's own /readyz (etcd reachable, its post-start hooks done)."""
        req = urllib.request.Request(f"{self.url}/readyz")
        req.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(req, timeout=5, context=self._context) as r:
                return bool(r.status == 200)
        except (OSError, ssl.SSLError):  # refused, or 500 while it starts (HTTPError)
            return False

    def create(self, obj: Obj) -> Obj:
        """POSTs `obj` to its collection (the path is found by API discovery)."""
        out = self.request("POST", self.collection(obj), obj)
        assert out is not None
        return out

    def delete(self, obj: Obj) -> None:
        name = obj["metadata"]["name"]
        self.request("DELETE", f"{self.collection(obj)}/{name}")

    def collection(self, obj: Obj) -> str:
        group_version = obj["apiVersion"]
        base = f"/api/{group_version}" if "/" not in group_version else f"/apis/{group_version}"
        listing = self.request("GET", base) or {}
        for resource in listing.get("resources", []):
            if resource["kind"] == obj["kind"] and "/" not in resource["name"]:
                ns = obj["metadata"].get("namespace", "default")
                where = f"/namespaces/{ns}" if resource["namespaced"] else ""
                return f"{base}{where}/{resource['name']}"
        raise AssertionError(f"{group_version} serves no {obj['kind']}")

    def kube(self) -> Kube:
        """The operator's own client, from the kubeconfig."""
        from kubetrain_operator.kube import Kube, api_client

        return Kube(api_client(kubeconfig=str(self.kubeconfig), pool_size=4))


def wait_until(what: str, check: Callable[[], Any], timeout: float, every: float = 0.1) -> Any:
    """`check()` once it is truthy; AssertionError after `timeout` s (exceptions: not yet)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except Exception as e:  # not up yet
            last = e
        if last and not isinstance(last, Exception):
            return last
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")


def _tail(path: Path, lines: int = 30) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    return ""


class _Processes:
    """What the fixture started, each in its own session, stopped in reverse order."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.started: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, *argv: str) -> subprocess.Popen[bytes]:
        with (self.workdir / f"{name}.log").open("wb") as log:
            proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        self.started.append((name, proc))
        return proc

    def check_alive(self) -> None:
        for name, proc in self.started:
            if proc.poll() is not None:
                log = _tail(self.workdir / f"{name}.log")
                raise AssertionError(f"{name} exited with {proc.returncode}:\n{log}")

    def stop(self) -> None:
        for _name, proc in reversed(self.started):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=5)
        self.started.clear()


@contextlib.contextmanager
def running_apiserver(
    workdir: Path, binaries: dict[str, str], *, crds: Path | None = CRDS
) -> Iterator[ApiServer]:
    """etcd and kube-apiserver in `workdir`, with every CRD of `crds` served (None: none);
    stopped on exit."""
    etcd_port, peer_port, api_port = free_port(), free_port(), free_port()
    token, user_token = uuid.uuid4().hex, uuid.uuid4().hex
    (workdir / "tokens.csv").write_text(
        f'{token},envtest-admin,envtest-admin,"system:masters"\n{user_token},{USER},{USER}\n'
    )
    # The API server needs a key for ServiceAccount tokens even when nothing asks for one.
    subprocess.run(
        [binaries["openssl"], "genrsa", "-out", str(workdir / "sa.key"), "2048"],
        check=True, capture_output=True,
    )  # fmt: skip
    procs = _Processes(workdir)
    try:
        etcd_url, peer_url = f"http://127.0.0.1:{etcd_port}", f"http://127.0.0.1:{peer_port}"
        procs.start(
            "etcd", binaries["etcd"], "--name", "envtest", "--data-dir", str(workdir / "etcd"),
            "--listen-client-urls", etcd_url, "--advertise-client-urls", etcd_url,
            "--listen-peer-urls", peer_url, "--initial-advertise-peer-urls", peer_url,
            "--initial-cluster", f"envtest={peer_url}", "--listen-metrics-urls", "",
            "--log-level", "warn",
        )  # fmt: skip
        certs = workdir / "certs"
        procs.start(
            "kube-apiserver", binaries["kube-apiserver"],
            "--etcd-servers", etcd_url,
            "--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1",
            "--secure-port", str(api_port), "--insecure-port", "0",
            "--cert-dir", str(certs),  # it writes its self-signed apiserver.crt there
            "--token-auth-file", str(workdir / "tokens.csv"),
            "--authorization-mode", "RBAC",
            "--service-account-key-file", str(workdir / "sa.key"),
            "--service-account-signing-key-file", str(workdir / "sa.key"),
            "--service-account-issuer", "https://kubernetes.default.svc",
            "--disable-admission-plugins", "ServiceAccount",
            "--profiling=false", "--v", "1",
        )  # fmt: skip
        url = f"https://127.0.0.1:{api_port}"

        def ready() -> ApiServer | None:
            procs.check_alive()
            if not (certs / "apiserver.crt").exists():
                return None
            server = ApiServer(url, token, certs / "apiserver.crt", workdir / "kubeconfig", workdir,
                               user_token)  # fmt: skip
            return server if server.is_ready() else None

        try:
            server = wait_until("kube-apiserver /readyz", ready, START_TIMEOUT)
        except AssertionError as e:
            raise AssertionError(f"{e}\n{_tail(workdir / 'kube-apiserver.log')}") from None
        server.kubeconfig.write_text(yaml.safe_dump(_kubeconfig(server)))
        server.user_kubeconfig.write_text(
            yaml.safe_dump(_kubeconfig(server, user=USER, token=user_token))
        )
        if crds is not None:
            apply_crds(server, crds)
        yield server
    finally:
        procs.stop()


def _kubeconfig(server: ApiServer, *, user: str = "envtest-admin", token: str = "") -> Obj:
    return {
        "apiVersion": "v1", "kind": "Config", "current-context": "envtest",
        "clusters": [{"name": "envtest", "cluster": {
            "server": server.url, "certificate-authority": str(server.ca_file)}}],
        "users": [{"name": user, "user": {"token": token or server.token}}],
        "contexts": [{"name": "envtest", "context": {"cluster": "envtest", "user": user}}],
    }  # fmt: skip


def apply_crds(server: ApiServer, directory: Path = CRDS) -> None:
    """Creates every CRD in `directory` (as `kubectl apply -f crds/` would) and waits until API
    discovery serves each, which is what kopf and the operator read."""
    crds = [
        doc
        for path in sorted(directory.glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if doc
    ]
    for crd in crds:
        server.create(crd)

    def served(path: str, plural: str) -> bool:
        listing = server.request("GET", path) or {}
        return any(r["name"] == plural for r in listing.get("resources", []))

    for crd in crds:
        spec, plural = crd["spec"], crd["spec"]["names"]["plural"]
        for version in (v["name"] for v in spec["versions"] if v.get("served", True)):
            path = f"/apis/{spec['group']}/{version}"
            wait_until(f"{plural} in {path}", functools.partial(served, path, plural), timeout=30)


@pytest.fixture(scope="session")
def apiserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    binaries = find_binaries()
    if isinstance(binaries, str):
        pytest.skip(binaries)
    t0 = time.monotonic()
    with running_apiserver(tmp_path_factory.mktemp("apiserver"), binaries) as server:
        print(f"\napiserver fixture: up with the CRDs in {time.monotonic() - t0:.1f}s")
        yield server


@pytest.fixture(scope="session")
def bare_apiserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    """An API server on which no CRD is installed (what a cluster without kubetrain looks like)."""
    binaries = find_binaries()
    if isinstance(binaries, str):
        pytest.skip(binaries)
    with running_apiserver(tmp_path_factory.mktemp("bare-apiserver"), binaries, crds=None) as s:
        yield s
