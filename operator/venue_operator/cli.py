"""Entry points: `venue-operator run | check | crd` (the lab and demo: `venue-lab`)."""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

from venue_operator import logs
from venue_operator.crd import CRD_PATH, render_crd
from venue_operator.settings import Settings


def _crd(args: argparse.Namespace) -> int:
    text = render_crd()
    if args.write:
        path = Path(args.write)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path}")
    else:
        sys.stdout.write(text)
    return 0


def settings_from(args: argparse.Namespace) -> Settings:
    """The `run` command line as the one settings object the handlers read."""
    return Settings(
        namespaces=tuple(args.namespace or ()),
        prometheus_url=args.prometheus_url or None,
        metrics_max_age=args.metrics_max_age or None,
        liveness_port=args.liveness_port,
        metrics_port=args.metrics_port,
        bind_address=args.bind_address,
        peering=args.peering or None,
        priority=args.priority if args.priority is not None else random.randint(1, 1_000_000),
        peering_lifetime=args.peering_lifetime,
        verbose=args.verbose,
    )


def _run(args: argparse.Namespace) -> int:
    import asyncio

    import kopf
    from prometheus_client import start_http_server

    from venue_operator import handlers

    settings = settings_from(args)
    if settings.metrics_port:
        start_http_server(settings.metrics_port, addr=settings.bind_address)
    # --log-json: Kopf's own lines (and every stdlib logger's) are JSON objects too.
    log_format = kopf.LogFormat.JSON if args.log_json else kopf.LogFormat.FULL
    kopf.configure(verbose=settings.verbose, log_format=log_format)
    asyncio.run(handlers.serve(settings))
    return 0


def _check(args: argparse.Namespace) -> int:
    import asyncio

    from venue_operator.check import run_check

    return asyncio.run(run_check(args.namespace, args.name, args.prometheus_url))


def _uninstall(args: argparse.Namespace) -> int:
    import asyncio

    from venue_operator.uninstall import run_uninstall

    return asyncio.run(run_uninstall())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="venue-operator", description=__doc__)
    parser.add_argument("--log-json", action="store_true", help="log JSON lines")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the operator (uses KUBECONFIG or in-cluster config)")
    run.add_argument(
        "--namespace", "-n", action="append", help="watch only these namespaces (repeatable)"
    )
    run.add_argument("--prometheus-url", help="Prometheus for VenueServices that name none")
    run.add_argument(
        "--metrics-max-age", type=float, metavar="SECONDS",
        help="oldest shared Prometheus snapshot a cycle may use (default: half the interval; "
        "Prometheus' scrape interval detects fastest, at a few more queries per second)",
    )  # fmt: skip
    run.add_argument("--liveness-port", type=int, default=8080, help="0 disables /healthz")
    run.add_argument("--metrics-port", type=int, default=9090, help="0 disables /metrics")
    run.add_argument("--bind-address", default="127.0.0.1", help="0.0.0.0 inside a pod")
    run.add_argument(
        "--peering", metavar="NAME",
        help="Kopf peering (manifests/optional/peering.yaml): several replicas, one acts",
    )  # fmt: skip
    run.add_argument("--priority", type=int, help="peering priority (default: random)")
    run.add_argument(
        "--peering-lifetime", type=int, default=15,
        help="seconds before a silent peer is considered gone (the failover time)",
    )  # fmt: skip
    run.add_argument("--verbose", action="store_true")
    run.set_defaults(func=_run)

    check = sub.add_parser("check", help="evaluate one VenueService now and print it")
    check.add_argument("name")
    check.add_argument("--namespace", "-n", default="default")
    check.add_argument("--prometheus-url")
    check.set_defaults(func=_check)

    crd = sub.add_parser("crd", help="print the CRD generated from the models")
    crd.add_argument(
        "--write", nargs="?", const=str(CRD_PATH), help=f"write it (default {CRD_PATH})"
    )
    crd.set_defaults(func=_crd)

    uninstall = sub.add_parser(
        "uninstall", help="after removing the operator: release the VenueServices it leaves "
        "(Kopf's finalizer and annotations), so they and their namespaces can be deleted",
    )  # fmt: skip
    uninstall.set_defaults(func=_uninstall)

    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logs.configure(json=args.log_json)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
