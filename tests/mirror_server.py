"""A real HTTP server on 127.0.0.1 serving a directory as a download mirror, counting requests.

Standard library only. `serve(directory)` runs it in a thread for a test; the counts say how
often each file was fetched. Options make it slow (to overlap two clients) or cut files short.
`python -m tests.mirror_server DIR [PORT]` serves DIR in the foreground (a mirror pod).
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Mirror:
    url: str  # base URL, no trailing slash
    directory: Path
    delay_s: float = 0.0  # before each answer
    truncate: set[str] = field(default_factory=set)  # names sent half, with the full length
    requests: Counter[str] = field(default_factory=Counter)  # "GET /name" -> count
    lock: threading.Lock = field(default_factory=threading.Lock)

    def gets(self, name: str) -> int:
        with self.lock:
            return self.requests[f"GET /{name}"]


class _Handler(http.server.SimpleHTTPRequestHandler):
    mirror: Mirror

    def __init__(self, *args: Any, mirror: Mirror, **kwargs: Any) -> None:
        self.mirror = mirror
        super().__init__(*args, directory=str(mirror.directory), **kwargs)

    def do_GET(self) -> None:
        with self.mirror.lock:
            self.mirror.requests[f"GET {self.path}"] += 1
        if self.mirror.delay_s:
            time.sleep(self.mirror.delay_s)
        name = self.path.lstrip("/")
        if name in self.mirror.truncate:
            data = (self.mirror.directory / name).read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        super().do_GET()

    def log_message(self, format: str, *args: Any) -> None:  # quiet in tests
        pass


@contextlib.contextmanager
def serve(
    directory: Path, delay_s: float = 0.0, truncate: set[str] | None = None
) -> Iterator[Mirror]:
    """Serve `directory` on a free port of 127.0.0.1 for the `with` block."""
    mirror = Mirror("", directory, delay_s, truncate or set())
    handler = functools.partial(_Handler, mirror=mirror)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    mirror.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield mirror
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit("usage: python -m tests.mirror_server DIR [PORT]")
    port = int(sys.argv[2]) if len(sys.argv) == 3 else 8080
    handler = functools.partial(_Handler, mirror=Mirror("", Path(sys.argv[1])))
    with http.server.ThreadingHTTPServer(("0.0.0.0", port), handler) as server:
        print(f"serving {sys.argv[1]} on port {port}", flush=True)
        server.serve_forever()
