"""Where the runner's own Ray actors live."""

from __future__ import annotations

from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from kubetrain.runner.ray_job import channel_options


def test_progress_channel_is_pinned_to_the_drivers_node() -> None:
    # On a cluster, a worker pod's node may go at any time; the driver's node stays.
    node = "a2ed883064274c87e2d713aea042bc950bf9c6670d6a9a7101508b8e"  # as Ray names nodes
    options = channel_options(node)
    strategy = options["scheduling_strategy"]
    assert isinstance(strategy, NodeAffinitySchedulingStrategy)
    assert (strategy.node_id, strategy.soft) == (node, False)
    assert options["num_cpus"] == 0  # the head offers no CPUs
