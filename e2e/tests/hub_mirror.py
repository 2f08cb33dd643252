"""The end-to-end suite's download mirror: one HTTP server for datasets, weights and the
Hugging Face hub, the way an air-gapped cluster's mirror serves them (docs/air-gapped.md).

    python hub_mirror.py ROOT [PORT]        # in the mirror pod (trainer image: python, stdlib)

ROOT holds
  datasets/<official name> (+ .sha256)   -> GET /datasets/<name>   (KUBETRAIN_DATASETS_MIRROR)
  weights/<official name> (+ .sha256)    -> GET /weights/<name>    (KUBETRAIN_WEIGHTS_MIRROR)
  hub/<repo id>/<files>                  -> the hub's HTTP API     (HF_ENDPOINT)

The hub part speaks what huggingface_hub's downloads ask of an endpoint (2.x, and transformers'
from_pretrained through it):
  HEAD|GET /<repo>/resolve/<revision>/<file>   200 with X-Repo-Commit, ETag (the file's sha256),
           X-Linked-Etag, X-Linked-Size, Content-Length; a missing file is 404 with X-Error-Code:
           EntryNotFound (the hub's "no such file in this repo", which from_pretrained expects
           for the optional files it probes), a missing repo 404 RepoNotFound
  GET /api/models/<repo>[/revision/<revision>]  the model's info: id, sha, siblings
  GET /api/models/<repo>/tree/<revision>[/<path>]  the files' list (type, path, size, oid)
Every revision names the one commit (a hash of the repo's files). Every request is printed to
stdout as `<client address> <METHOD> <path> <status>`: the suite reads the pod's log to see
which pod fetched what.

Standard library only: it runs as a file in the pod (on its hostPath volume), and in a thread in
the suite's own check against this venv's transformers (test_examples.py).
"""

from __future__ import annotations

import hashlib
import http.server
import json
import sys
import threading
import urllib.parse
from pathlib import Path
from typing import Any

STATIC = ("datasets", "weights")
CHUNK = 1 << 20


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class Repo:
    """One hub repository: a folder whose files (recursively) are the repo's files."""

    def __init__(self, repo_id: str, folder: Path) -> None:
        self.id, self.folder = repo_id, folder
        self.files = {
            p.relative_to(folder).as_posix(): p for p in sorted(folder.rglob("*")) if p.is_file()
        }
        self.sha256 = {name: _sha256(p) for name, p in self.files.items()}
        listing = "".join(f"{n} {h}\n" for n, h in sorted(self.sha256.items()))
        self.commit = hashlib.sha1(f"{repo_id}\n{listing}".encode()).hexdigest()

    def info(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "modelId": self.id,
            "sha": self.commit,
            "private": False,
            "gated": False,
            "disabled": False,
            "tags": [],
            "siblings": [{"rfilename": name} for name in self.files],
        }

    def tree(self, under: str) -> list[dict[str, Any]]:
        prefix = under.strip("/")
        return [
            {
                "type": "file",
                "path": name,
                "size": path.stat().st_size,
                "oid": self.sha256[name][:40],
                "lfs": {"oid": self.sha256[name], "size": path.stat().st_size},
            }
            for name, path in self.files.items()
            if not prefix or name == prefix or name.startswith(prefix + "/")
        ]


class Handler(http.server.BaseHTTPRequestHandler):
    root: Path
    repos: dict[str, Repo]
    lock = threading.Lock()
    protocol_version = "HTTP/1.1"

    def do_HEAD(self) -> None:
        self._answer(body=False)

    def do_GET(self) -> None:
        self._answer(body=True)

    # ------------------------------------------------------------------ routing

    def _answer(self, body: bool) -> None:
        path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
        parts = path.strip("/").split("/")
        if len(parts) == 2 and parts[0] in STATIC:
            self._static(self.root / parts[0] / parts[1], body)
        elif parts[:2] == ["api", "models"] and len(parts) >= 3:
            self._api(parts[2:], body)
        elif "/resolve/" in path:
            repo_id, _, rest = path.strip("/").partition("/resolve/")
            _revision, _, name = rest.partition("/")
            self._resolve(repo_id, name, body)
        else:
            self._send(404, b"not found\n", body)

    def _static(self, file: Path, body: bool) -> None:
        if not file.is_file():
            self._send(404, b"not found\n", body)
            return
        self._file(file, {}, body)

    def _repo(self, parts: list[str]) -> tuple[Repo | None, list[str]]:
        """The repo named by the first one or two parts (`name` or `org/name`), and the rest."""
        for size in (2, 1):
            repo = self.repos.get("/".join(parts[:size]))
            if repo is not None:
                return repo, parts[size:]
        return None, parts

    def _api(self, parts: list[str], body: bool) -> None:
        repo, rest = self._repo(parts)
        if repo is None:
            self._send(
                404, b'{"error":"Repository not found"}', body, {"X-Error-Code": "RepoNotFound"}
            )
            return
        if not rest or rest[0] == "revision":
            payload: Any = repo.info()
        elif rest[0] == "tree":
            payload = repo.tree("/".join(rest[2:]))
        else:
            self._send(404, b'{"error":"not served here"}', body)
            return
        data = json.dumps(payload).encode()
        self._send(
            200, data, body, {"Content-Type": "application/json", "X-Repo-Commit": repo.commit}
        )

    def _resolve(self, repo_id: str, name: str, body: bool) -> None:
        repo = self.repos.get(repo_id)
        if repo is None:
            self._send(404, b"Repository not found", body, {"X-Error-Code": "RepoNotFound"})
            return
        file = repo.files.get(name)
        headers = {"X-Repo-Commit": repo.commit}
        if file is None:
            headers |= {"X-Error-Code": "EntryNotFound", "X-Error-Message": "Entry not found"}
            self._send(404, b"Entry not found", body, headers)
            return
        digest = repo.sha256[name]
        headers |= {
            "ETag": f'"{digest}"',
            "X-Linked-Etag": f'"{digest}"',
            "X-Linked-Size": str(file.stat().st_size),
        }
        self._file(file, headers, body)

    # ------------------------------------------------------------------ answers

    def _file(self, file: Path, headers: dict[str, str], body: bool) -> None:
        size = file.stat().st_size
        self.send_response(200)
        for key, value in {**headers, "Content-Length": str(size),
                           "Content-Type": "application/octet-stream"}.items():  # fmt: skip
            self.send_header(key, value)
        self.end_headers()
        if body:
            with file.open("rb") as fh:
                while chunk := fh.read(CHUNK):
                    self.wfile.write(chunk)

    def _send(
        self, code: int, data: bytes, body: bool, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(code)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if body:
            self.wfile.write(data)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        with self.lock:
            print(f"{self.client_address[0]} {self.command} {self.path} {code}", flush=True)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # errors too: the request line above says what was asked and answered


def make_server(
    root: Path, host: str = "0.0.0.0", port: int = 8080
) -> http.server.ThreadingHTTPServer:
    """A server for `root` (not started): serve_forever() in a thread, or in the foreground."""
    hub = root / "hub"
    repos: dict[str, Repo] = {}
    if hub.is_dir():  # hub/<name>/config.json, or hub/<org>/<name>/config.json
        for folder in sorted(hub.iterdir()):
            inner = [folder] if (folder / "config.json").is_file() else sorted(folder.iterdir())
            for repo_dir in inner:
                if (repo_dir / "config.json").is_file():
                    repo_id = repo_dir.relative_to(hub).as_posix()
                    repos[repo_id] = Repo(repo_id, repo_dir)
    handler = type("MirrorHandler", (Handler,), {"root": root, "repos": repos})
    server = http.server.ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit("usage: python hub_mirror.py ROOT [PORT]")
    served = make_server(Path(sys.argv[1]), port=int(sys.argv[2]) if len(sys.argv) == 3 else 8080)
    print(f"serving {sys.argv[1]} on port {served.server_address[1]}", flush=True)
    served.serve_forever()
