"""Starting a Ray node in a pod: waits for the head, and retries of `ray start`."""

from __future__ import annotations

from kubetrain.pods.node import start_ray_node, wait_for_port, worker_command
from tests.pods.fake_time import FakeTime


def test_wait_for_port_retries_until_it_answers() -> None:
    time = FakeTime()
    tries = iter([OSError("no DNS yet"), OSError("refused"), None])

    def connect(addr: tuple[str, int]) -> None:
        error = next(tries)
        if error:
            raise error

    assert wait_for_port("h", 6379, timeout=30, connect=connect, sleep=time.sleep, clock=time.clock)
    assert time.t == 2


def test_wait_for_port_times_out() -> None:
    time = FakeTime()

    def refuse(addr: tuple[str, int]) -> None:
        raise OSError("refused")

    assert not wait_for_port("h", 1, timeout=3, connect=refuse, sleep=time.sleep, clock=time.clock)


def test_worker_command_advertises_one_worker_slot_per_rank() -> None:
    assert worker_command("t-head.ml.svc:6379", num_cpus=4, num_gpus=8, ranks=8) == [
        "ray", "start", "--address=t-head.ml.svc:6379", "--block",
        "--num-cpus=4", "--num-gpus=8", '--resources={"kubetrain_worker": 8}',
        "--disable-usage-stats",
    ]  # fmt: skip


def _runs(*results: tuple[int, bool]) -> tuple[list[tuple[int, bool]], list[str]]:
    return list(results), []


def test_ray_node_that_fails_before_starting_is_started_again() -> None:
    results, calls = _runs((1, False), (0, True))
    code = start_ray_node(lambda: results.pop(0), lambda: calls.append("stop"))
    assert (code, calls, results) == (0, ["stop"], [])


def test_ray_node_that_died_after_starting_is_not_restarted() -> None:
    results, calls = _runs((1, True), (0, True))
    assert start_ray_node(lambda: results.pop(0), lambda: calls.append("stop")) == 1
    assert calls == [] and len(results) == 1


def test_ray_node_start_gives_up_after_the_last_attempt() -> None:
    results, calls = _runs((1, False), (1, False), (1, False), (0, True))
    assert start_ray_node(lambda: results.pop(0), lambda: calls.append("stop"), attempts=3) == 1
    assert calls == ["stop", "stop"] and results == [(0, True)]
