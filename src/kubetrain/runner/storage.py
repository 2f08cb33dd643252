"""Where a run's checkpoints and results live: a local dir, a PVC mount, or S3."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubetrain.api.spec import CheckpointSpec


@dataclass(frozen=True)
class Storage:
    path: str  # what Ray Train's RunConfig.storage_path gets
    filesystem: Any  # pyarrow.fs.FileSystem, or None for the local filesystem

    def uri(self, path: str) -> str:
        """What a user can paste: `s3://bucket/key` for a path inside the bucket store."""
        return f"s3://{path}" if self.filesystem is not None else path


def resolve(spec: CheckpointSpec) -> Storage:
    uri = spec.storage_path
    if uri.startswith("s3://"):
        from pyarrow import fs

        s3 = (
            fs.S3FileSystem(endpoint_override=spec.s3_endpoint)
            if spec.s3_endpoint
            else (fs.S3FileSystem())
        )
        return Storage(uri.removeprefix("s3://"), s3)
    return Storage(str(Path(uri).expanduser().resolve()), None)
