"""Checkpoints in an S3-compatible store (a real moto S3 server on loopback), through pyarrow.

The job is interrupted after epoch 2 and run again under the same name: it resumes from the
checkpoint in the bucket, and the result JSON lands in the bucket too.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT, example_dict
from tests.integration.cli_runs import epoch_lines, interrupt, resumed_epochs, start
from tests.integration.conftest import free_port

pytestmark = pytest.mark.slow

# Installed by scripts/setup.sh in a venv of its own: moto pins python-dateutil<3, the
# kubernetes client needs >=3.
MOTO_SERVER = ROOT / ".venv" / "moto" / "bin" / "moto_server"
BUCKET = "kubetrain-ckpt"
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_REGION": "us-east-1",
}


@pytest.fixture
def s3_endpoint() -> Iterator[str]:
    if not MOTO_SERVER.exists():
        pytest.fail(f"{MOTO_SERVER} is missing: run scripts/setup.sh")
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [str(MOTO_SERVER), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                request = urllib.request.Request(f"{endpoint}/{BUCKET}", method="PUT")
                urllib.request.urlopen(request, timeout=2).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "moto's S3 server did not start in 60 s"
                time.sleep(0.3)
        yield endpoint
    finally:
        server.terminate()
        server.wait(timeout=20)


def _objects(endpoint: str) -> list[str]:
    from pyarrow import fs

    s3 = fs.S3FileSystem(
        endpoint_override=endpoint,
        access_key=CREDENTIALS["AWS_ACCESS_KEY_ID"],
        secret_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        region=CREDENTIALS["AWS_REGION"],
    )
    infos = s3.get_file_info(fs.FileSelector(BUCKET, recursive=True))
    return [i.path for i in infos if i.type == fs.FileType.File]


def _read(endpoint: str, key: str) -> bytes:
    with urllib.request.urlopen(f"{endpoint}/{BUCKET}/{key}", timeout=10) as r:
        return bytes(r.read())


def test_interrupted_run_resumes_from_checkpoints_in_s3(s3_endpoint: str, tmp_path: Path) -> None:
    job = example_dict("mnist-mlp.yaml")
    job["spec"]["checkpoint"].pop("claimName")  # a claim is for a local path in pods
    job["spec"]["training"]["epochs"] = 4
    job["spec"]["checkpoint"] |= {"storagePath": f"s3://{BUCKET}/runs", "s3Endpoint": s3_endpoint}
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(job))
    args = [str(path), "--no-metrics"]

    first = start(args, env=CREDENTIALS)
    seen = epoch_lines(first, "epoch 2/4", timeout=300)
    assert "[checkpoint]" in seen[-1]
    interrupt(first)
    name = job["metadata"]["name"]
    checkpoints = [k for k in _objects(s3_endpoint) if "/checkpoint_" in k]
    assert checkpoints, "no checkpoint objects were written to the bucket"
    assert all(k.startswith(f"{BUCKET}/runs/{name}/") for k in checkpoints)

    second = start(args, env=CREDENTIALS)
    lines = epoch_lines(second, "epoch 4/4", timeout=300)
    assert second.wait(timeout=120) == 0
    resumed_epochs(lines, total=4, at_least=2)  # from the bucket: the local disk has none
    result = json.loads(_read(s3_endpoint, f"runs/{name}/result.json"))
    assert result["status"] == "succeeded"
    assert result["checkpoint"].startswith(f"s3://{BUCKET}/runs/{name}/checkpoint_")
