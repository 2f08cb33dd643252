"""The pod and container a condition's message blames: written by the operator, read by the CLI."""

from __future__ import annotations

from kubetrain.api.status import FaultSite, fault_message


def test_what_the_operator_writes_the_client_reads_back() -> None:
    message = fault_message("mnist-worker-1", "worker", "OOMKilled (exit code 137)")
    assert message == "pod mnist-worker-1 container worker: OOMKilled (exit code 137)"
    assert FaultSite.find(message) == FaultSite(
        "mnist-worker-1", "worker", "OOMKilled (exit code 137)"
    )


def test_a_pod_without_a_container_and_a_prefixed_message() -> None:
    message = "restart 2/3 from the last checkpoint: " + fault_message(
        "j-head", None, "the head pod disappeared"
    )
    assert FaultSite.find(message) == FaultSite("j-head", None, "the head pod disappeared")


def test_several_faults_name_the_first_and_none_names_nothing() -> None:
    message = "; ".join(
        [fault_message("j-worker-0", "worker", "x"), fault_message("j-worker-1", "worker", "y")]
    )
    site = FaultSite.find(message)
    assert site is not None and (site.pod, site.container) == ("j-worker-0", "worker")
    assert FaultSite.find("spec.model.inputSize: is 100 but ...") is None
