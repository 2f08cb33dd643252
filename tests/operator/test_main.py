"""The operator's entry point: which kopf settings its flags imply."""

from __future__ import annotations

import pytest

from kubetrain_operator.__main__ import exact_namespaces_only


@pytest.mark.parametrize(
    ("namespaces", "exact"),
    [
        ([], False),  # the whole cluster: kopf follows CRDs, as a ClusterRole allows
        (["team-a"], True),
        (["team-a", "team-b"], True),
        (["op-*"], False),  # a pattern: kopf must list namespaces to match it
        (["team-?"], False),
        (["!kube-system"], False),
        (["team-a,team-b"], False),
        (["team-a", "team-*"], False),
    ],
)
def test_cluster_scanning_is_off_only_for_plain_namespace_names(
    namespaces: list[str], exact: bool
) -> None:
    assert exact_namespaces_only(namespaces) is exact
