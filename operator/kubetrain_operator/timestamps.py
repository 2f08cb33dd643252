"""Timestamps as the API server writes them: RFC 3339, UTC, to the second (`2024-05-01T12:00:00Z`).

The one place the operator reads and writes them: pods' creationTimestamp, the status's startTime
and completionTime, conditions' lastTransitionTime, events' times.
"""

from __future__ import annotations

from datetime import datetime, timezone


def parse_time(value: object) -> datetime | None:
    """The time `value` names; None for no value (absent, empty, not a string)."""
    if not isinstance(value, str) or not value:
        return None
    # Python 3.10's fromisoformat does not read the "Z" suffix.
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def rfc3339(at: datetime) -> str:
    return at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
