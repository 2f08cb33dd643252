"""The spec field reference (`docs/spec-reference.md`), generated from the same schema as the CRD.

One row per field: its path, type, default, what it accepts and what it does. A test regenerates
it and compares, so the reference cannot drift from the models either.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from kubetrain.api.constants import GROUP, KIND, VERSION
from kubetrain.api.crd import JsonSchema, openapi_schema
from kubetrain.api.spec import TrainingJobSpec

_HEADER = f"""# `{KIND}` spec reference

`apiVersion: {GROUP}/{VERSION}`. Generated from the typed models in `src/kubetrain/api/spec.py`
by `kubetrain reference -o docs/spec-reference.md`; do not edit by hand. Every field is optional
unless marked **required**; `kubectl apply` and `kubetrain validate` refuse anything else, naming
the field.

| field (under `spec`) | type | default | accepts | description |
|---|---|---|---|---|
"""


def _type(node: JsonSchema) -> str:
    kind = node.get("type")
    if kind == "array":
        return f"list of {_type(node.get('items', {}))}"
    if kind == "object" and "additionalProperties" in node:
        return f"map of {_type(node['additionalProperties'])}"
    if kind is None and node.get("x-kubernetes-int-or-string"):
        return "integer or string"
    if kind is None:
        return "any"
    return str(kind)


def _accepts(node: JsonSchema) -> str:
    parts: list[str] = []
    if "enum" in node:
        parts.append(", ".join(f"`{v}`" for v in node["enum"]))
    low, high = node.get("minimum"), node.get("maximum")
    if low is not None:
        parts.append(f"{'>' if node.get('exclusiveMinimum') else '≥'} {low}")
    if high is not None:
        parts.append(f"{'<' if node.get('exclusiveMaximum') else '≤'} {high}")
    for key, word in (("minItems", "{} or more items"), ("maxItems", "{} items at most"),
                      ("minLength", "at least {} characters")):  # fmt: skip
        if key in node:
            parts.append(word.format(node[key]))
    if "pattern" in node:
        parts.append(f"pattern `{node['pattern']}`")
    return "; ".join(parts)


def _default(node: JsonSchema) -> str:
    if "default" not in node or node["default"] == {}:
        return ""
    return f"`{json.dumps(node['default'])}`"


def _rows(node: JsonSchema, path: str, required: bool) -> Iterator[str]:
    description = " ".join(str(node.get("description", "")).split())
    if required:
        description = f"**required.** {description}".strip()
    if path:
        cells = [f"`{path}`", _type(node), _default(node), _accepts(node), description]
        yield "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"
    # The fields of an object, or of each object in a list (`tolerations[].key`).
    fields = node.get("items", {}) if node.get("type") == "array" else node
    prefix = f"{path}[]." if node.get("type") == "array" else (f"{path}." if path else "")
    props: dict[str, Any] = fields.get("properties", {})
    needed = set(fields.get("required", []))
    for name, child in props.items():
        yield from _rows(child, prefix + name, name in needed)


def render_reference() -> str:
    """The whole reference page: one row per field under a TrainingJob's `spec`."""
    return _HEADER + "\n".join(_rows(openapi_schema(TrainingJobSpec), "", False)) + "\n"
