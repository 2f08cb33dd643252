"""The operator's entry point: which kopf settings, and which prerequisites, its flags imply."""

from __future__ import annotations

import pytest

from kubetrain_operator.__main__ import _parser, exact_namespaces_only, needs
from kubetrain_operator.health import Needs


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


@pytest.mark.parametrize(
    ("namespaces", "standalone", "wanted"),
    [
        ([], False, Needs(peering="p")),  # the whole cluster: one ClusterKopfPeering
        ([], True, Needs(peering=None)),  # no peering: only the TrainingJob CRD
        (
            ["team-a", "team-b"],
            False,
            Needs("p", clusterwide=False, namespaces=("team-a", "team-b")),
        ),
        # A pattern's namespaces are kopf's to find: for them only the KopfPeering CRD is checked.
        (["team-a", "op-*"], False, Needs("p", clusterwide=False, namespaces=("team-a",))),
        (["team-a"], True, Needs(peering=None)),
    ],
)
def test_what_the_operator_waits_for_follows_its_peering_flags(
    namespaces: list[str], standalone: bool, wanted: Needs
) -> None:
    assert needs(namespaces, standalone=standalone, peering="p") == wanted


def test_pod_env_flags_become_the_pods_variables_in_order() -> None:
    args = _parser().parse_args(
        ["--pod-env", "KUBETRAIN_DATASETS_MIRROR=http://mirror:8000/d", "--pod-env", "EMPTY="]
    )
    assert args.pod_env == [("KUBETRAIN_DATASETS_MIRROR", "http://mirror:8000/d"), ("EMPTY", "")]


@pytest.mark.parametrize("bad", ["NOEQUALS", "1BAD=x", "=x"])
def test_a_malformed_pod_env_flag_is_refused_naming_the_form(
    bad: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        _parser().parse_args(["--pod-env", bad])
    assert "write NAME=VALUE" in capsys.readouterr().err


def test_metrics_from_must_be_a_json_list_of_peers(capsys: pytest.CaptureFixture[str]) -> None:
    ok = _parser().parse_args(["--metrics-from", '[{"podSelector": {}}]'])
    assert ok.metrics_from == '[{"podSelector": {}}]' and ok.network_policy is True
    with pytest.raises(SystemExit):
        _parser().parse_args(["--metrics-from", '{"podSelector": {}}'])
    assert "a JSON list of NetworkPolicyPeer objects" in capsys.readouterr().err
    assert _parser().parse_args(["--no-network-policy"]).network_policy is False
