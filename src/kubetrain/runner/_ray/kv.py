"""The GCS key-value store (`ray.experimental.internal_kv`), in one namespace of kubetrain's.

Values are pickled: only kubetrain's own processes, inside the same Ray cluster, write them.
"""

from __future__ import annotations

import pickle
from typing import Any

from ray.experimental import internal_kv

NAMESPACE = "kubetrain"


def put(key: str, value: object) -> None:
    internal_kv._internal_kv_put(key, pickle.dumps(value), namespace=NAMESPACE)


def get(key: str) -> Any:
    """The value under `key`, or None."""
    raw = internal_kv._internal_kv_get(key, namespace=NAMESPACE)
    return None if raw is None else pickle.loads(raw)


def delete(key: str) -> None:
    internal_kv._internal_kv_del(key, namespace=NAMESPACE)


def keys(prefix: str) -> list[bytes]:
    return list(internal_kv._internal_kv_list(prefix, namespace=NAMESPACE))
