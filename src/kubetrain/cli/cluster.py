"""The cluster verbs' arguments: submit, list, status, logs, wait, delete, metrics.

What they do is in `verbs.py`, imported only when one runs: `kubetrain run` and `validate` do
not pay for the Kubernetes client, and work without it installed.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from kubetrain.cli._common import EXIT_CLUSTER

EXIT_CODES = """\
exit codes of the cluster verbs:
  0    done (wait, submit --watch: the job succeeded; wait --for finished: it ended)
  1    the job failed (the reason, pod and container are printed)
  2    invalid input (the spec: nothing was created; the arguments)
  3    the cluster said no: unreachable, no TrainingJob CRD, forbidden, not found, exists
  124  wait --timeout ran out
  130  interrupted (Ctrl-C): the job goes on running on the cluster
"""


def _cluster_options() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument(
        "-n", "--namespace", help="the namespace (default: the kubeconfig context's, or default)"
    )
    p.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config)")
    p.add_argument("--context", help="kubeconfig context (default: the current one)")
    return p


def _timeout(text: str) -> float:
    seconds = float(text.removesuffix("s"))
    if seconds <= 0:
        raise argparse.ArgumentTypeError("must be more than 0 seconds")
    return seconds


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    common = [_cluster_options()]

    submit = sub.add_parser(
        "submit", parents=common, help="create a TrainingJob on the cluster (checked first)",
        epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    submit.add_argument("file", type=Path, help="TrainingJob YAML")
    submit.add_argument(
        "-w", "--watch", action="store_true",
        help="then show its progress until it ends (exit codes as for wait)",
    )  # fmt: skip
    submit.set_defaults(handler=_verb("submit"))

    ls = sub.add_parser("list", parents=common, help="the TrainingJobs of a namespace")
    ls.add_argument("-A", "--all-namespaces", action="store_true", help="of every namespace")
    ls.set_defaults(handler=_verb("list"))

    status = sub.add_parser(
        "status", parents=common,
        help="a job's phase, conditions, failure (pod and container), checkpoint, metrics, log",
    )  # fmt: skip
    status.add_argument("name")
    status.add_argument(
        "--log-lines", type=int, default=10, metavar="N",
        help="the last N lines of the log of the pod at fault, else the head's (0: none)",
    )  # fmt: skip
    status.set_defaults(handler=_verb("status"))

    logs = sub.add_parser("logs", parents=common, help="the head's log, or a worker's")
    logs.add_argument("name")
    logs.add_argument("--rank", type=int, help="worker rank R's pod instead of the head's")
    logs.add_argument(
        "-f", "--follow", action="store_true",
        help="go on as it grows, across the pod's replacement, until the job ends",
    )  # fmt: skip
    logs.add_argument("--tail", type=int, metavar="N", help="only the last N lines")
    logs.set_defaults(handler=_verb("logs"))

    wait = sub.add_parser(
        "wait", parents=common, help="until the job succeeds (or ends); the exit code says how",
        epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    wait.add_argument("name")
    wait.add_argument(
        "--for", dest="wait_for", choices=("succeeded", "finished"), default="succeeded",
        help="succeeded (default: a failure exits 1) or finished (either end exits 0)",
    )  # fmt: skip
    wait.add_argument(
        "--timeout", type=_timeout, metavar="SECONDS", help="give up after this long (exit 124)"
    )
    wait.set_defaults(handler=_verb("wait"))

    delete = sub.add_parser("delete", parents=common, help="delete a job (its pods go with it)")
    delete.add_argument("name")
    delete.set_defaults(handler=_verb("delete"))

    metrics = sub.add_parser(
        "metrics", parents=common, help="a job's latest progress values, from its status"
    )
    metrics.add_argument("name")
    metrics.add_argument("-o", "--output", choices=("text", "json"), default="text")
    metrics.set_defaults(handler=_verb("metrics"))


def _verb(name: str) -> Callable[[argparse.Namespace], int]:
    def handler(args: argparse.Namespace) -> int:
        try:
            from kubetrain.cli import verbs
        except ModuleNotFoundError as exc:
            if exc.name not in ("kubernetes", "urllib3"):
                raise
            print(
                f"kubetrain {name}: needs the Kubernetes client (the `{exc.name}` package):"
                " pip install 'kubetrain[cluster]'",
                file=sys.stderr,
            )
            return EXIT_CLUSTER
        return verbs.run(name, args)

    return handler
