"""MNIST, CIFAR-10 and IMDB come from the official site or a mirror, checked, once per shared
directory, and from a volume with no network at all.

The files are small ones in the real formats (tests/data_formats.py), served by a real HTTP
server on 127.0.0.1 (tests/mirror_server.py) or read from a directory.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import os
import socket
import subprocess
import sys
import tarfile
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from kubetrain.api.mirrors import (
    CIFAR10_FILE,
    DATASETS_MIRROR,
    IMDB_FILE,
    MNIST_FILES,
)
from kubetrain.trainer import say
from kubetrain.trainer.data import downloads, load_splits
from kubetrain.trainer.data.cifar import parse_batch
from kubetrain.trainer.data.downloads import ChecksumMismatch, DownloadError, fetch
from kubetrain.trainer.data.info import InputKind
from kubetrain.trainer.data.mnist import read_idx
from kubetrain.trainer.data.text import load_imdb
from tests import data_formats as formats
from tests.conftest import make_job
from tests.mirror_server import serve

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def mirror_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every dataset file under its official name, each with its .sha256."""
    directory = tmp_path_factory.mktemp("mirror")
    formats.write_mirror(directory)
    return directory


@pytest.fixture(autouse=True)
def _no_mirror_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(DATASETS_MIRROR, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/"  # nothing listens there once the socket is closed


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if not p.name.endswith(".lock"))


def test_mnist_from_an_http_mirror_then_from_the_cache(
    mirror_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "mnist"
    job = make_job(dataset={"source": "mnist", "path": str(cache)})
    with serve(mirror_dir) as mirror:
        monkeypatch.setenv(DATASETS_MIRROR, mirror.url)
        splits = load_splits(job.spec)
        again = load_splits(job.spec)  # from the files now in dataset.path
        counts = {f.name: mirror.gets(f.name) for f in MNIST_FILES}
        sidecars = {f.name: mirror.gets(f.name + ".sha256") for f in MNIST_FILES}
    assert counts == dict.fromkeys(counts, 1) and sidecars == dict.fromkeys(sidecars, 1)
    assert _leftovers(cache) == sorted(f.name for f in MNIST_FILES)  # no .part file
    assert {(cache / f.name).stat().st_mode & 0o777 for f in MNIST_FILES} == {0o644}
    _, labels = formats.digits()
    x, y = splits.train[0]
    assert x.shape == (1, 28, 28) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert len(splits.train) == 1500 and len(splits.val) == 297 and len(again.train) == 1500
    assert splits.info.kind is InputKind.IMAGE and splits.info.num_classes == 10
    assert splits.info.features == 784
    pixels, train_y = splits.train.tensors
    assert train_y.tolist() == labels[:1500].tolist()
    assert float(pixels.min()) == 0.0 and float(pixels.max()) == 1.0


def test_cifar10_from_a_local_directory_mirror(
    mirror_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(DATASETS_MIRROR, str(mirror_dir))
    job = make_job(
        model={"name": "cnn", "numClasses": 10},
        dataset={"source": "cifar10", "path": str(tmp_path / "cifar")},
    )
    splits = load_splits(job.spec)
    images, labels = formats.cifar_images()
    x, y = splits.train[7]
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32
    assert int(y) == int(labels[7]) and len(splits.train) == 1500 and len(splits.val) == 297
    assert torch.allclose(x, torch.from_numpy(images[7]).float() / 255.0)
    assert splits.info.channels == 3 and splits.info.image_size == 32
    assert (tmp_path / "cifar" / CIFAR10_FILE.name).is_file()


def test_a_file_url_mirror_and_the_default_cache_dir(
    mirror_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(DATASETS_MIRROR, mirror_dir.as_uri())  # file:///...
    job = make_job(
        model={"name": "mobilenet_v2", "numClasses": 10},
        dataset={"source": "mnist", "imageSize": 32},
    )
    splits = load_splits(job.spec)
    assert splits.train[0][0].shape == (3, 32, 32)  # grey digits repeated over RGB, resized
    cached = tmp_path / "xdg-cache" / "kubetrain" / "datasets" / "mnist"
    assert _leftovers(cached) == sorted(f.name for f in MNIST_FILES)


def test_imdb_from_the_archive_in_a_fixed_order(
    mirror_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with serve(mirror_dir) as mirror:
        monkeypatch.setenv(DATASETS_MIRROR, mirror.url + "/")
        train_x, train_y, test_x, test_y = load_imdb(str(tmp_path / "imdb"))
        job = make_job(
            model={"name": "lstm", "numClasses": 2, "vocabSize": 100},
            dataset={"source": "imdb", "path": str(tmp_path / "imdb"), "maxLength": 16},
        )
        splits = load_splits(job.spec)
        assert mirror.gets(IMDB_FILE.name) == 1
    reviews = formats.imdb_reviews(60)
    assert train_x == reviews["train", "neg"] + reviews["train", "pos"]  # by id, not tar order
    assert train_y == [0] * 60 + [1] * 60 and test_y == [0] * 60 + [1] * 60
    assert test_x[60] == reviews["test", "pos"][0]
    ids, label = splits.train[0]
    assert ids.shape == (16,) and ids.dtype == torch.int64 and label.dtype == torch.int64
    assert len(splits.train) == len(splits.val) == 120 and splits.info.num_classes == 2


def test_two_processes_sharing_a_directory_download_once(mirror_dir: Path, tmp_path: Path) -> None:
    """Both wait at a barrier, then fetch at once: one downloads, the other waits and reuses."""
    cache = tmp_path / "shared"
    script = textwrap.dedent(
        """
        import sys, time
        from pathlib import Path
        from kubetrain.api.mirrors import MNIST_FILES
        from kubetrain.trainer.data.downloads import fetch
        barrier, me = Path(sys.argv[1]), sys.argv[2]
        (barrier / me).touch()
        while len(list(barrier.iterdir())) < 2:
            time.sleep(0.01)
        for file in MNIST_FILES:
            fetch(file, Path(sys.argv[3]), "no fix")
        """
    )
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    with serve(mirror_dir, delay_s=0.3) as mirror:
        env = {**os.environ, DATASETS_MIRROR: mirror.url}
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", script, str(barrier), str(i), str(cache)],
                env=env,
                cwd=ROOT,
                stderr=subprocess.PIPE,
                text=True,
            )
            for i in range(2)
        ]
        errs = [p.communicate(timeout=120)[1] for p in procs]
        assert [p.returncode for p in procs] == [0, 0], errs
        counts = [mirror.gets(f.name) for f in MNIST_FILES]
    assert counts == [1, 1, 1, 1]
    assert any("waiting for another process to download" in e for e in errs), errs
    assert _leftovers(cache) == sorted(f.name for f in MNIST_FILES)
    assert np.array_equal(read_idx(cache / MNIST_FILES[1].name), formats.digits()[1][:1500])


def test_a_wrong_checksum_fails_clearly_and_keeps_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    served = tmp_path / "mirror"
    served.mkdir()
    archive = formats.write_imdb_archive(served / IMDB_FILE.name, per_class=3)
    formats.write_sidecar(archive, digest="0" * 64)
    cache = tmp_path / "cache"
    with serve(served) as mirror:
        monkeypatch.setenv(DATASETS_MIRROR, mirror.url)
        with pytest.raises(ChecksumMismatch) as caught:
            load_imdb(str(cache))
    message = str(caught.value)
    assert f"{mirror.url}/{IMDB_FILE.name} has sha256 {formats.sha256_of(archive)}" in message
    assert f"not {'0' * 64} (the mirror's {IMDB_FILE.name}.sha256)" in message
    assert IMDB_FILE.url in message and "docs/air-gapped.md" in message
    assert _leftovers(cache) == []


def test_without_a_sidecar_the_published_checksum_must_match(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    served = tmp_path / "mirror"
    served.mkdir()
    archive = formats.write_imdb_archive(served / IMDB_FILE.name, per_class=3)
    monkeypatch.setenv(DATASETS_MIRROR, str(served))
    with pytest.raises(
        ChecksumMismatch,
        match=r"not 7c2ac02c03563afcf9b574c7e56c153a \(the published md5\)",
    ) as caught:
        load_imdb(str(tmp_path / "cache"))
    assert f"{IMDB_FILE.name}.sha256" in str(caught.value)  # the way to serve a test file
    assert _leftovers(tmp_path / "cache") == []
    # The same file under a PublicFile that publishes its md5: accepted with no sidecar.
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    own = dataclasses.replace(IMDB_FILE, digest=md5)
    assert fetch(own, tmp_path / "cache", "no fix").read_bytes() == archive.read_bytes()


def test_a_truncated_download_is_deleted_never_used(
    mirror_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cifar"
    with serve(mirror_dir, truncate={CIFAR10_FILE.name}) as mirror:
        monkeypatch.setenv(DATASETS_MIRROR, mirror.url)
        with pytest.raises(DownloadError, match=rf"cannot fetch {mirror.url}/cifar-10") as caught:
            fetch(CIFAR10_FILE, cache, "put it in spec.dataset.path")
    message = str(caught.value)
    assert "the connection ended after" in message, message
    assert f"fix {DATASETS_MIRROR}={mirror.url}" in message
    assert "put it in spec.dataset.path" in message
    assert _leftovers(cache) == []


def test_no_network_names_the_url_the_setting_and_the_fix(tmp_path: Path) -> None:
    unreachable = dataclasses.replace(MNIST_FILES[0], base_url=_closed_port_url())
    with pytest.raises(DownloadError) as caught:
        fetch(unreachable, tmp_path, "put train-images-idx3-ubyte.gz in spec.dataset.path (/d)")
    message = str(caught.value)
    assert message.startswith(f"cannot fetch {unreachable.url} (")
    assert f"set {DATASETS_MIRROR} to a mirror" in message
    assert "put train-images-idx3-ubyte.gz in spec.dataset.path (/d)" in message
    assert _leftovers(tmp_path) == []


def test_a_mirror_directory_that_does_not_exist_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(DATASETS_MIRROR, str(tmp_path / "nope"))
    with pytest.raises(DownloadError, match=rf"{DATASETS_MIRROR}=.*nope is not a directory"):
        fetch(CIFAR10_FILE, tmp_path / "cache", "x")


def test_data_already_on_a_volume_needs_no_network(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """torchvision's layouts: MNIST/raw/ with unpacked files, cifar-10-batches-py/ unpacked."""
    monkeypatch.setenv(DATASETS_MIRROR, _closed_port_url())  # any fetch would fail
    raw = tmp_path / "mnist" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for path in formats.write_mnist(raw):
        path.with_suffix("").write_bytes(gzip.decompress(path.read_bytes()))
        path.unlink()
    mnist = load_splits(make_job(dataset={"source": "mnist", "path": str(tmp_path / "mnist")}).spec)
    assert len(mnist.train) == 1500
    folder = tmp_path / "cifar" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    archive = formats.write_cifar_archive(tmp_path / "c.tar.gz", *formats.cifar_images())
    with tarfile.open(archive) as tar:
        tar.extractall(tmp_path / "cifar", filter="data")
    job = make_job(
        model={"name": "cnn", "numClasses": 10},
        dataset={"source": "cifar10", "path": str(tmp_path / "cifar")},
    )
    assert len(load_splits(job.spec).val) == 297


def test_a_damaged_file_on_the_volume_is_named(tmp_path: Path) -> None:
    (tmp_path / MNIST_FILES[0].name).write_bytes(b"\x1f\x8b not really gzip")
    with pytest.raises(ValueError, match=r"spec.dataset.path: cannot read .*train-images.*delete"):
        load_splits(make_job(dataset={"source": "mnist", "path": str(tmp_path)}).spec)


def test_a_cifar_batch_cannot_run_code() -> None:
    evil = b"cos\nsystem\n(S'echo hi'\ntR."
    with pytest.raises(ValueError, match=r"os.system is not part of a CIFAR-10 batch"):
        parse_batch(evil, "mirror: data_batch_1")


def test_progress_lines_for_a_slow_download(
    mirror_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(downloads, "PROGRESS_EVERY_S", 0.0)
    monkeypatch.setattr(downloads, "CHUNK", 64 * 1024)
    monkeypatch.setenv(DATASETS_MIRROR, str(mirror_dir))
    monkeypatch.setattr(say.log, "hasHandlers", lambda: False)  # as in a Ray worker
    fetch(CIFAR10_FILE, tmp_path, "x")
    err = capsys.readouterr().err
    assert f"kubetrain: fetching {CIFAR10_FILE.name} from {mirror_dir}" in err
    assert "MB (" in err and "%)" in err and f"kubetrain: fetched {CIFAR10_FILE.name}" in err


def test_a_directory_that_cannot_be_written_is_named(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")  # a directory under a file cannot be made, even by root
    with pytest.raises(DownloadError, match=r"cannot write cifar-10-python.tar.gz into .*file/d"):
        fetch(CIFAR10_FILE, tmp_path / "file" / "d", "put it in spec.dataset.path")


def test_a_malformed_sidecar_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    archive = formats.write_imdb_archive(tmp_path / IMDB_FILE.name, per_class=2)
    archive.with_name(archive.name + ".sha256").write_text("not a checksum\n")
    monkeypatch.setenv(DATASETS_MIRROR, str(tmp_path))
    with pytest.raises(DownloadError, match=r"aclImdb_v1.tar.gz.sha256 is not a sha256 checksum"):
        fetch(IMDB_FILE, tmp_path / "cache", "x")


def test_a_partial_file_left_by_a_dead_process_is_cleared(
    mirror_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stale = tmp_path / f".{IMDB_FILE.name}.abc123.part"
    stale.write_bytes(b"half of it")
    monkeypatch.setenv(DATASETS_MIRROR, str(mirror_dir))
    fetch(IMDB_FILE, tmp_path, "x")
    assert _leftovers(tmp_path) == [IMDB_FILE.name]
