"""How a run's progress reads: the same words locally (`kubetrain run`) and from a job's status
on a cluster (`kubetrain submit --watch`, `kubetrain wait`)."""

from __future__ import annotations


def format_duration(seconds: float | None) -> str:
    """H:MM:SS; "?" when unknown."""
    if seconds is None:
        return "?"
    s = round(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def progress_parts(
    *,
    epoch: int,
    total_epochs: int,
    loss: float | None,
    metric_name: str,
    metric: float | None,
    samples_per_second: float | None,
    eta_seconds: float | None,
) -> list[str]:
    """`epoch 3/10`, `loss 0.4012`, `accuracy 0.9033`, `6708 samples/s`, `ETA 0:00:02`: what is
    known of them (the ETA always, "?" when unknown). Joined with two spaces for one line."""
    parts = [f"epoch {epoch}/{total_epochs}"]
    if loss is not None:
        parts.append(f"loss {loss:.4f}")
    if metric is not None:
        parts.append(f"{metric_name} {metric:.4f}")
    if samples_per_second is not None:
        parts.append(f"{samples_per_second:.0f} samples/s")
    parts.append(f"ETA {format_duration(eta_seconds)}")
    return parts
