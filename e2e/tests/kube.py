"""kubectl, as the end-to-end tests use it: JSON in, JSON out, against $KUBECONFIG."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml

REPO = Path(__file__).resolve().parents[2]
T = TypeVar("T")
Obj = dict[str, Any]


class KubectlError(RuntimeError):
    pass


def find_kubectl() -> str | None:
    """kubectl from $KUBECTL, PATH, or the local cluster's own build (e2e/cluster.sh)."""
    candidates = [
        os.environ.get("KUBECTL"),
        shutil.which("kubectl"),
        str(
            Path(os.environ.get("KUBETRAIN_CLUSTER_DIR", "/tmp/kubetrain-cluster")) / "bin/kubectl"
        ),
        str(Path.home() / ".cache/kubetrain/k8s-v1.20.2/bin/kubectl"),
    ]
    return next((c for c in candidates if c and os.access(c, os.X_OK)), None)


@dataclass(frozen=True)
class Kubectl:
    binary: str
    kubeconfig: str

    def run(self, *args: str, stdin: str | None = None, check: bool = True) -> str:
        proc = subprocess.run(
            [self.binary, "--kubeconfig", self.kubeconfig, *args],
            input=stdin, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        if check and proc.returncode != 0:
            raise KubectlError(f"kubectl {' '.join(args)}: {proc.stderr.strip()}")
        return proc.stdout

    def get(self, kind: str, name: str | None = None, *, namespace: str | None = None,
            selector: str | None = None) -> Obj | None:  # fmt: skip
        """The object (or a List), or None if it does not exist."""
        args = ["get", kind, *([name] if name else []), "-o", "json"]
        if namespace:
            args += ["-n", namespace]
        if selector:
            args += ["-l", selector]
        try:
            return json.loads(self.run(*args))  # type: ignore[no-any-return]
        except KubectlError as exc:
            if "NotFound" in str(exc) or "not found" in str(exc):
                return None
            raise

    def items(
        self, kind: str, *, namespace: str | None = None, selector: str | None = None
    ) -> list[Obj]:
        found = self.get(kind, namespace=namespace, selector=selector)
        return list(found["items"]) if found else []

    def apply(self, obj: Obj) -> None:
        self.run("apply", "-f", "-", stdin=yaml.safe_dump(obj))

    def create(self, obj: Obj) -> None:
        self.run("create", "-f", "-", stdin=yaml.safe_dump(obj))

    def delete(
        self, kind: str, name: str, *, namespace: str | None = None, wait: bool = False
    ) -> None:
        args = ["delete", kind, name, "--ignore-not-found", f"--wait={str(wait).lower()}"]
        self.run(*args, *(["-n", namespace] if namespace else []))

    @contextlib.contextmanager
    def watch(self, kind: str, *, namespace: str) -> Iterator[list[str]]:
        """`kubectl get KIND -n NAMESPACE -w`, as a user watches it: the list fills with its
        output lines (the header first) when the block ends."""
        lines: list[str] = []
        with tempfile.TemporaryFile("w+") as out:
            proc = subprocess.Popen(
                [self.binary, "--kubeconfig", self.kubeconfig, "get", kind, "-n", namespace, "-w"],
                stdout=out, stderr=subprocess.STDOUT, text=True,
            )  # fmt: skip
            try:
                yield lines
            finally:
                time.sleep(2)  # the last update is on its way
                proc.terminate()
                proc.wait(timeout=10)
                out.seek(0)
                lines.extend(line.rstrip() for line in out if line.strip())

    def events_for(self, kind: str, name: str, namespace: str) -> list[Obj]:
        selector = f"involvedObject.kind={kind},involvedObject.name={name}"
        out = self.run("get", "events", "-n", namespace, "--field-selector", selector, "-o", "json")
        return list(json.loads(out)["items"])


def wait_for(what: str, check: Callable[[], T | None], *, timeout: float, every: float = 1.0) -> T:
    """Polls `check` until it returns something truthy; fails naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while True:
        last = check()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError(
                f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})"
            )
        time.sleep(every)
