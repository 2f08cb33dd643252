"""Generate the TrainingJob CustomResourceDefinition from the typed models.

Pydantic emits JSON Schema (draft 2020-12); Kubernetes wants a *structural* OpenAPI v3.0 schema:
no `$ref`, no `anyOf` with null, boolean `exclusiveMinimum`, `x-kubernetes-preserve-unknown-fields`
for free-form maps. `_structural` does that translation, so `crds/trainingjob.yaml` never drifts
from `spec.py` (a test regenerates it and compares).
"""

from __future__ import annotations

import copy
from typing import Any

import yaml

from kubetrain.api.constants import (
    CRD_NAME,
    GROUP,
    JOB_NAME_PATTERN,
    KIND,
    MAX_JOB_NAME,
    PLURAL,
    SHORT_NAMES,
    SINGULAR,
    VERSION,
)
from kubetrain.api.spec import TrainingJobSpec
from kubetrain.api.status import TrainingJobStatus

JsonSchema = dict[str, Any]

_DROP_KEYS = {"title", "discriminator"}

PRINTER_COLUMNS: list[dict[str, Any]] = [
    {"name": "Model", "type": "string", "jsonPath": ".spec.model.name"},
    {"name": "Backend", "type": "string", "jsonPath": ".spec.distributed.backend"},
    {"name": "Workers", "type": "integer", "jsonPath": ".spec.distributed.workers"},
    {
        "name": "Ranks",
        "type": "integer",
        "jsonPath": ".status.worldSize",
        "description": "Training ranks: worker pods x ranks per pod.",
        "priority": 1,
    },
    {
        "name": "Phase",
        "type": "string",
        "jsonPath": ".status.phase",
        "description": "Derived from the conditions that are True.",
    },
    {"name": "Epoch", "type": "string", "jsonPath": ".status.progress"},
    {"name": "Metric", "type": "string", "jsonPath": ".status.metricSummary"},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]


def _defaults_to_none(node: JsonSchema) -> bool:
    """An optional field: pydantic gives it `default: null`, and absent means "off"."""
    return "default" in node and node["default"] is None


def _resolve(node: JsonSchema, defs: dict[str, JsonSchema]) -> JsonSchema:
    """Inline a `$ref` (or a single-element allOf wrapping one), keeping sibling keys."""
    if "$ref" in node:
        target = copy.deepcopy(defs[node["$ref"].rsplit("/", 1)[-1]])
        siblings = {k: v for k, v in node.items() if k != "$ref"}
        return {**target, **siblings}
    if "allOf" in node and len(node["allOf"]) == 1:
        inner = _resolve(node["allOf"][0], defs)
        siblings = {k: v for k, v in node.items() if k != "allOf"}
        return {**inner, **siblings}
    return node


def _structural(node: JsonSchema, defs: dict[str, JsonSchema]) -> JsonSchema:
    node = _resolve(node, defs)
    out: JsonSchema = {}
    if "anyOf" in node:
        options = [o for o in node["anyOf"] if o.get("type") != "null"]
        if len(options) != 1:
            raise ValueError(f"cannot express a union in a structural schema: {node['anyOf']}")
        merged = {**_resolve(options[0], defs), **{k: v for k, v in node.items() if k != "anyOf"}}
        if _defaults_to_none(merged):
            del merged["default"]
        return _structural(merged, defs)

    optional: set[str] = set()
    for key, value in node.items():
        if key in _DROP_KEYS:
            continue
        if key == "properties":
            out["properties"] = {name: _structural(sub, defs) for name, sub in value.items()}
            optional = {name for name, sub in value.items() if _defaults_to_none(sub)}
        elif key == "items":
            out["items"] = _structural(value, defs)
        elif key == "prefixItems":
            # tuple[float, float] → fixed-length array of one item type
            out["items"] = _structural(value[0], defs)
            out["minItems"] = out["maxItems"] = len(value)
        elif key == "additionalProperties":
            if value is True or value == {}:
                out["x-kubernetes-preserve-unknown-fields"] = True
            elif value is not False:
                out["additionalProperties"] = _structural(value, defs)
        elif key in ("exclusiveMinimum", "exclusiveMaximum"):
            bound = "minimum" if key == "exclusiveMinimum" else "maximum"
            out[bound] = value
            out[key] = True
        else:
            out[key] = value

    if out.get("default") == "":
        # Kubernetes 1.20 turns a "" default into null and then refuses the CRD; an absent
        # string means "" to every reader of the spec anyway.
        del out["default"]
    if out.get("type") == "object" and "properties" in out:
        required = set(out.get("required", []))
        for name, sub in out["properties"].items():
            # Defaulting an optional field to {} would switch it on (earlyStopping with
            # patience 10 for every job).
            if name in optional:
                continue
            # Defaulting an absent parent to {} lets the API server fill its children's
            # defaults, so `kubectl get -o yaml` shows the effective spec.
            if name not in required and "default" not in sub:
                if sub.get("type") == "object" and "properties" in sub:
                    sub["default"] = {}
                elif sub.get("type") == "array" and not sub.get("minItems"):
                    sub["default"] = []
                elif sub.get("type") == "object" and "additionalProperties" in sub:
                    sub["default"] = {}
    return out


def openapi_schema(model: type[TrainingJobSpec] | type[TrainingJobStatus]) -> JsonSchema:
    raw = model.model_json_schema(by_alias=True, mode="validation")
    defs = raw.pop("$defs", {})
    return _structural(raw, defs)


def _status_schema() -> JsonSchema:
    schema = openapi_schema(TrainingJobStatus)
    conditions = schema["properties"]["conditions"]
    conditions["x-kubernetes-list-type"] = "map"
    conditions["x-kubernetes-list-map-keys"] = ["type"]
    return schema


# metadata.name's own rules (the API server checks names only as generic object names).
NAME_RULES = [
    {"rule": f"self.metadata.name.size() <= {MAX_JOB_NAME}",
     "message": f"metadata.name: at most {MAX_JOB_NAME} characters (pod names add -worker-N)"},
    {"rule": f"self.metadata.name.matches('{JOB_NAME_PATTERN}')",
     "message": "metadata.name: start with a letter, then lowercase letters, digits and '-'"
                " (it names the job's Service)"},
]  # fmt: skip


def build_crd() -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": CRD_NAME},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": KIND,
                "listKind": f"{KIND}List",
                "plural": PLURAL,
                "singular": SINGULAR,
                "shortNames": list(SHORT_NAMES),
                "categories": ["all", "kubetrain"],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": PRINTER_COLUMNS,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": "A data-parallel training run on a Ray cluster.",
                            "required": ["spec"],
                            "x-kubernetes-validations": NAME_RULES,
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": openapi_schema(TrainingJobSpec),
                                "status": _status_schema(),
                            },
                        }
                    },
                }
            ],
        },
    }


def render_crd_yaml() -> str:
    header = "# Generated by `kubetrain crd` from src/kubetrain/api/spec.py. Do not edit.\n"
    return header + yaml.safe_dump(build_crd(), sort_keys=False, width=100)
