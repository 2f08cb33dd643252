"""What kopf remembers of each object between events: nothing.

kopf diffs every event's object against its last handled state for its change handlers
(`on.create`, `on.update`, `on.field`, ...). To do that it deep-copies the whole body of every
event, managedFields and status included, even when no such handler exists. This operator has
none: its daemon reads the job afresh on each pass, and its `on.event` handlers take no diff. With
100 new jobs and their 300 pods, those copies were 40% of the event loop's CPU (py-spy during
bench/operator_bench.py), on a loop that every watch event and every pass waits on.

So the essence is empty: no copy, and no change is ever seen. A change handler added later would
never fire; `NoDiffBase.guard` makes the operator refuse to start with one instead.
"""

from __future__ import annotations

from collections.abc import Iterable

import kopf


class NoDiffBase(kopf.AnnotationsDiffBaseStorage):
    """An annotations diff-base storage (what a future handler would need) that builds nothing."""

    def build(
        self, *, body: kopf.Body, extra_fields: Iterable[kopf.FieldSpec] | None = None
    ) -> kopf.BodyEssence:
        return kopf.BodyEssence()

    @staticmethod
    def guard(registry: kopf.OperatorRegistry) -> None:
        """Refuses a registry with change handlers: they would silently never run."""
        changing = [h.id for h in registry._changing.get_all_handlers()]
        if changing:
            raise RuntimeError(
                f"change handlers {changing} are registered, but kopf's diff base is switched "
                "off (kubetrain_operator/diffbase.py): use on.event, or restore the diff base"
            )
