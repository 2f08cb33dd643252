"""Parse a TrainingJob from YAML or a dict, with errors that name the field and the fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from kubetrain.api.job import TrainingJob
from kubetrain.api.semantics import check_spec


class InvalidTrainingJob(ValueError):
    """Bad input. `problems` holds one `field.path: what is wrong` line each."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"invalid TrainingJob in {source}:\n{lines}")


def _field_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path


def _describe(error: Any) -> str:
    path = _field_path(tuple(error["loc"]))
    msg: str = error["msg"]
    if msg.startswith("Value error, "):
        # Our own validators put the field path in the message already.
        return msg.removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        return f"{path}: unknown field; check its spelling against `kubetrain reference`"
    if error["type"] == "missing":
        return f"{path}: required field is missing"
    got = error.get("input")
    shown = "" if isinstance(got, dict | list) or got is None else f" (got {got!r})"
    return f"{path}: {msg}{shown}"


def check_job(
    job: TrainingJob, *, source: str = "<input>", on_cluster: bool = False
) -> TrainingJob:
    """`job` if its fields fit together (the semantic check; `on_cluster`: as pods run it),
    else InvalidTrainingJob listing every problem."""
    problems = check_spec(job.spec, on_cluster=on_cluster)
    if problems:
        raise InvalidTrainingJob(source, [str(p) for p in problems])
    return job


def parse_job(data: Any, *, source: str = "<input>") -> TrainingJob:
    """A TrainingJob whose every field is well-formed; `check_job` says whether they fit
    together."""
    if not isinstance(data, dict):
        raise InvalidTrainingJob(source, ["the document must be a mapping with a `spec`"])
    try:
        return TrainingJob.model_validate(data)
    except ValidationError as exc:
        raise InvalidTrainingJob(source, [_describe(e) for e in exc.errors()]) from None


def load_job(path: str | Path) -> TrainingJob:
    """Load the first TrainingJob from a YAML file (other kinds in the file are skipped)."""
    p = Path(path)
    try:
        docs = list(yaml.safe_load_all(p.read_text()))
    except OSError as exc:
        raise InvalidTrainingJob(str(p), [f"cannot read the file: {exc.strerror}"]) from None
    except yaml.YAMLError as exc:
        raise InvalidTrainingJob(str(p), [f"not valid YAML: {exc}"]) from None
    for doc in docs:
        if isinstance(doc, dict) and doc.get("kind", "TrainingJob") == "TrainingJob":
            return parse_job(doc, source=str(p))
    raise InvalidTrainingJob(str(p), ["no document of kind TrainingJob found"])
