"""The kubeconfig as kubectl reads it, and a cluster that is not there, with no API server."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
import yaml

from kubetrain import cli
from kubetrain.client import Client, ConfigError, Unreachable


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def kubeconfig(tmp_path: Path, server: str, namespace: str | None = "team-a") -> Path:
    context = {"cluster": "c", "user": "u"} | ({"namespace": namespace} if namespace else {})
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "main",
        "clusters": [{"name": "c",
                      "cluster": {"server": server, "insecure-skip-tls-verify": True}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "main", "context": context},
                     {"name": "other", "context": {"cluster": "c", "user": "u"}}],
    }))  # fmt: skip
    return path


def test_the_namespace_comes_from_the_context_unless_given(tmp_path: Path) -> None:
    path = kubeconfig(tmp_path, "https://127.0.0.1:1")
    assert Client(path).namespace == "team-a"
    assert Client(path, context="other").namespace == "default"
    assert Client(path, namespace="mine").namespace == "mine"
    assert Client(path).context == "main" and Client(path).server == "https://127.0.0.1:1"


def test_a_missing_kubeconfig_or_context_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^kubeconfig: "):
        Client(tmp_path / "nope")
    with pytest.raises(ConfigError, match=r"kubeconfig: .*nope"):
        Client(kubeconfig(tmp_path, "https://127.0.0.1:1"), context="nope")


def test_a_cluster_that_does_not_answer_is_one_line_and_exit_3(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server = f"https://127.0.0.1:{_closed_port()}"
    path = kubeconfig(tmp_path, server)
    t0 = time.monotonic()
    with pytest.raises(Unreachable) as caught:
        Client(path).list()
    assert str(caught.value) == (
        f'cannot reach the cluster at {server} (context "main"): connection refused'
    )
    assert time.monotonic() - t0 < 10
    assert cli.main(["list", "--kubeconfig", str(path)]) == cli.EXIT_CLUSTER
    err = capsys.readouterr().err.strip()
    assert err == f"kubetrain: {caught.value}"
