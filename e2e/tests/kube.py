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
from typing import IO, TypeVar

import yaml

from kubetrain_operator.kubeobj import Obj as Obj  # re-exported: e2e modules take it from here

REPO = Path(__file__).resolve().parents[2]
T = TypeVar("T")


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

    def create_namespace(self, name: str) -> None:
        """A new namespace, once pods can be admitted there (its default ServiceAccount exists)."""
        self.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
        wait_for("the default ServiceAccount", lambda: self.get("sa", "default", namespace=name),
                 timeout=60)  # fmt: skip

    def delete(
        self, kind: str, name: str, *, namespace: str | None = None, wait: bool = False
    ) -> None:
        args = ["delete", kind, name, "--ignore-not-found", f"--wait={str(wait).lower()}"]
        self.run(*args, *(["-n", namespace] if namespace else []))

    @contextlib.contextmanager
    def watch(self, kind: str, *, namespace: str, catch_up: float = 20.0) -> Iterator[list[str]]:
        """`kubectl get KIND -n NAMESPACE -w`, as a user watches it: the list fills with its
        output lines (the header first) when the block ends.

        The watch prints an update a moment after it happens: at the end of the block it goes on
        until it shows every object as `kubectl get` shows it then (the AGE column aside), for at
        most `catch_up` seconds; past that, the lines are what it printed (the caller's checks on
        them say what is missing).
        """
        lines: list[str] = []
        with tempfile.TemporaryFile("w+") as out:
            proc = subprocess.Popen(
                [self.binary, "--kubeconfig", self.kubeconfig, "get", kind, "-n", namespace, "-w"],
                stdout=out, stderr=subprocess.STDOUT, text=True,
            )  # fmt: skip
            try:
                yield lines
            finally:
                # Not raised from here: it would hide what ended the block.
                with contextlib.suppress(AssertionError, KubectlError, subprocess.SubprocessError):
                    wait_for(
                        f"`kubectl get {kind} -n {namespace} -w` to show the objects as they are",
                        lambda: self._shows_current(kind, namespace, _lines(out)),
                        timeout=catch_up,
                        every=0.2,
                    )
                proc.terminate()
                proc.wait(timeout=10)
                lines.extend(_lines(out))

    def _shows_current(self, kind: str, namespace: str, watched: list[str]) -> bool:
        """Whether the watch's last row for each object is the row `kubectl get` prints now."""
        now = [line.split() for line in self.run("get", kind, "-n", namespace).splitlines()]
        now = [row for row in now if row]
        if not now:
            return True  # nothing there to catch up with
        header, *rows = now
        age = header[-1] == "AGE"  # it ticks on: not compared

        def cells(row: list[str]) -> list[str]:
            return row[:-1] if age else row

        # The last line naming each object (the header, and a "No resources found" the watch
        # may print first, name none).
        shown = {row[0]: row for row in (line.split() for line in watched)}
        return all(row[0] in shown and cells(shown[row[0]]) == cells(row) for row in rows)

    def events_for(self, kind: str, name: str, namespace: str) -> list[Obj]:
        selector = f"involvedObject.kind={kind},involvedObject.name={name}"
        out = self.run("get", "events", "-n", namespace, "--field-selector", selector, "-o", "json")
        return list(json.loads(out)["items"])


def _lines(out: IO[str]) -> list[str]:
    """The non-blank lines written so far to `out`, which a running process writes through the
    same open file: read with pread, which leaves the offset its writes go to alone."""
    fd = out.fileno()
    text = os.pread(fd, os.fstat(fd).st_size, 0).decode(errors="replace")
    return [line.rstrip() for line in text.splitlines() if line.strip()]


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
