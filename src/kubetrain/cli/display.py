"""How the cluster verbs print: the live progress of `submit --watch` and `wait`, `status`'s
page and `metrics`' values. Pure text from typed values; the verbs write it out."""

from __future__ import annotations

import re
import shutil
import sys
from collections.abc import Callable
from datetime import datetime
from typing import Any, TextIO

from kubetrain.api import TrainingJob
from kubetrain.api.progress import format_duration
from kubetrain.client.views import (
    JobStatus,
    age,
    created_at,
    format_table,
    parse_time,
    phase_of,
    status_parts,
)

BAR_WIDTH = 20  # characters between the brackets

# Ray colours its log prefixes for a terminal; a status page shows them as text.
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def progress_bar(epoch: int, total: int, width: int = BAR_WIDTH) -> str:
    """`[######--------------]`: the share of epochs done."""
    done = 0 if total <= 0 else min(width, round(width * epoch / total))
    return "[" + "#" * done + "-" * (width - done) + "]"


def live_line(job: TrainingJob) -> str:
    """The terminal's line: name, phase, a bar once epochs are reported, then the rest."""
    parts = status_parts(job)
    status = job.status
    if status is not None and status.epoch is not None:
        total = status.total_epochs or job.spec.training.epochs
        parts.insert(2, progress_bar(status.epoch, total))
    return "  ".join(parts)


def terminal_width() -> int:
    return shutil.get_terminal_size((100, 24)).columns


class ProgressDisplay:
    """A job's progress as it changes (`kubetrain submit --watch`, `kubetrain wait`).

    On a terminal (`live`): one line rewritten in place, with a bar, cut to the terminal's width;
    a phase change keeps the old line and starts a new one. Elsewhere (a pipe, CI logs): a plain
    line each time what it says changes, the same words `kubetrain run` prints per epoch.
    """

    def __init__(
        self,
        stream: TextIO,
        *,
        live: bool,
        width: Callable[[], int] = terminal_width,
    ) -> None:
        self.stream = stream
        self.live = live
        self.width = width
        self.last: str | None = None
        self.phase: str | None = None
        self.open = False  # a live line is on the screen without its newline

    @classmethod
    def for_stream(cls, stream: TextIO = sys.stdout) -> ProgressDisplay:
        return cls(stream, live=stream.isatty())

    def update(self, job: TrainingJob) -> None:
        phase = phase_of(job).value
        if not self.live:
            line = "  ".join(status_parts(job))
            if line != self.last:
                print(line, file=self.stream, flush=True)
            self.last, self.phase = line, phase
            return
        line = live_line(job)[: max(20, self.width() - 1)]
        if self.open and phase != self.phase:
            self.stream.write("\n")
        self.stream.write("\r\x1b[K" + line)
        self.stream.flush()
        self.last, self.phase, self.open = line, phase, True

    def close(self) -> None:
        """Ends the live line (the next output starts on a line of its own)."""
        if self.open:
            self.stream.write("\n")
            self.stream.flush()
            self.open = False


# --------------------------------------------------------------------------- kubetrain status


def _since(value: str | None, now: datetime) -> str:
    return age(parse_time(value), now) if value else ""


def render_status(st: JobStatus, now: datetime) -> str:
    """`kubetrain status NAME`: what `kubectl describe` would say, the way a trainer reads it."""
    job = st.job
    status = job.status
    fields: list[tuple[str, str]] = [
        ("Name", job.name),
        ("Namespace", job.namespace),
        ("Created", f"{age(created_at(job), now)} ago"),
        ("Phase", st.phase.value),
    ]
    if status is not None and status.message:
        fields.append(("Message", status.message))
    if st.failure is not None:
        fields.append(("Failed", st.failure.reason))
        if st.failure.pod:
            where = st.failure.pod + (f", container {st.failure.container}"
                                      if st.failure.container else "")  # fmt: skip
            fields.append(("Failed in", f"pod {where}"))
    fields.append(("Progress", st.progress or "no epoch reported yet"))
    fields.append(("Restarts", f"{st.restarts} (worker pods replaced: {st.worker_restarts})"))
    fields.append(("Checkpoint", st.checkpoint or "none yet"))
    if st.metrics:
        fields.append(("Metrics", "  ".join(f"{k}={v:.4g}" for k, v in sorted(st.metrics.items()))))
    width = max(len(k) for k, _ in fields) + 3  # the colon, then two spaces at least
    lines = [f"{k + ':':<{width}}{v}" for k, v in fields]
    if st.conditions:
        rows = [[c.type.value, c.status, c.reason, _since(c.last_transition_time, now), c.message]
                for c in st.conditions]  # fmt: skip
        table = format_table(["TYPE", "STATUS", "REASON", "AGE", "MESSAGE"], rows)
        lines += ["Conditions:", *("  " + line for line in table.splitlines())]
    if st.log_pod is not None:
        if st.log_note is not None:
            lines.append(f"Log of pod {st.log_pod}: {st.log_note}")
        elif st.log_tail:
            lines.append(f"Log of pod {st.log_pod} (last {len(st.log_tail)} lines):")
            lines += ["  " + _ANSI.sub("", line) for line in st.log_tail]
        else:
            lines.append(f"Log of pod {st.log_pod}: empty")
    return "\n".join(lines)


# --------------------------------------------------------------------------- kubetrain metrics


def render_metrics(values: dict[str, Any]) -> str:
    """`kubetrain metrics NAME`: one value a line, the metrics flattened."""
    rows: list[tuple[str, str]] = []
    for key, value in values.items():
        if key == "metrics" and isinstance(value, dict):
            rows += [(k, f"{v:.6g}") for k, v in sorted(value.items())]
        elif key == "etaSeconds":
            rows.append(("eta", format_duration(float(value))))
        elif isinstance(value, float):
            rows.append((key, f"{value:.6g}"))
        else:
            rows.append((key, str(value)))
    width = max((len(k) for k, _ in rows), default=0) + 2
    return "\n".join(f"{k:<{width}}{v}" for k, v in rows)
