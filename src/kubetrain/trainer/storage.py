"""Where a run's checkpoints, results and exported model live: a local dir, a PVC mount, or S3."""

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

    def put_directory(self, local: Path, path: str) -> None:
        """Replace the directory `path` in this storage with a copy of the local `local`."""
        if self.filesystem is not None:
            from pyarrow import fs

            self.filesystem.delete_dir_contents(path, missing_dir_ok=True)
            fs.copy_files(str(local), path, destination_filesystem=self.filesystem)
            return
        import shutil

        shutil.rmtree(path, ignore_errors=True)
        shutil.copytree(local, path)

    def read_text(self, path: str) -> str | None:
        """The file at `path` in this storage, or None if there is none."""
        if self.filesystem is not None:
            from pyarrow import fs

            if self.filesystem.get_file_info(path).type is fs.FileType.NotFound:
                return None
            with self.filesystem.open_input_stream(path) as stream:
                return bytes(stream.read()).decode()
        file = Path(path)
        return file.read_text() if file.is_file() else None


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
