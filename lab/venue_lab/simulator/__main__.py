"""`python -m venue_lab.simulator --services 100 --control-port 0 --ready-file PATH`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import re
import signal
import ssl
import sys
from collections.abc import Sequence
from pathlib import Path

import structlog

from venue_lab.simulator.control import DEFAULT_HANG_S, DEFAULT_RATE, Simulator
from venue_lab.simulator.faults import FaultError, parse_overrides
from venue_lab.simulator.follow import (
    DeploymentFollower,
    FollowTarget,
    kubernetes_bulk_reader,
    kubernetes_image_reader,
)
from venue_operator.cli.logs import configure as configure_logs

log = structlog.get_logger(__name__)


class StartError(RuntimeError):
    """The simulator cannot start; the message says why."""


def _follow_target(spec: str) -> FollowTarget:
    try:
        return FollowTarget.parse(spec)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m venue_lab.simulator",
        description="Simulated venue services on 127.0.0.1, one port each, plus a control port.",
    )
    parser.add_argument(
        "--services", type=int, default=1, help="how many services (default 1; 0 with --follow)"
    )
    parser.add_argument("--name-prefix", default="venue", help="services are PREFIX-000, ...")
    parser.add_argument("--base-port", type=int, default=0, help="first port; 0 = free ports")
    parser.add_argument("--control-port", type=int, default=0, help="0 = a free port")
    parser.add_argument("--rate", type=float, default=DEFAULT_RATE, help="req/s per service")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--fluid-traffic", action="store_true",
        help="a healthy service's counters grow by their expected shares instead of drawn "
        "requests (no noise; a large fleet costs little); faults are drawn as always",
    )  # fmt: skip
    parser.add_argument(
        "--slow-health-seconds", type=float, default=DEFAULT_HANG_S, help="slow_health's hang"
    )
    parser.add_argument("--ready-file", type=Path, help="JSON with the ports, once listening")
    parser.add_argument(
        "--follow",
        action="append",
        default=[],
        type=_follow_target,
        metavar="NAMESPACE/DEPLOYMENT[=SERVICE]",
        help="take the service's faults from the Deployment's image (repeatable)",
    )
    parser.add_argument("--kubeconfig", help="for --follow (default: $KUBECONFIG, ~/.kube)")
    parser.add_argument("--poll-interval", type=float, default=0.5, help="for --follow, seconds")
    parser.add_argument(
        "--pod-port",
        type=int,
        default=0,
        help="for --follow: also serve each pod's own endpoint on its podIP:PORT (0 = off); "
        "every target is then read in two list calls per poll (pods by their "
        "`app: <deployment>` label)",
    )
    parser.add_argument(
        "--pod-targets",
        type=Path,
        help="with --pod-port: list the pod endpoints in this file (Prometheus file_sd JSON, "
        "labels namespace/service/pod), removed on exit",
    )
    parser.add_argument(
        "--pod-tls",
        nargs=2,
        type=Path,
        metavar=("CERT", "KEY"),
        help="with --pod-port: serve each pod's endpoint over https with this certificate",
    )
    parser.add_argument(
        "--pod-path-prefix",
        default="",
        help="with --pod-port: each pod also serves /health, /health/full, /metrics under it",
    )
    parser.add_argument(
        "--pod-faults",
        type=json.loads,
        default={},
        help='with --pod-port: faults over every pod image\'s, e.g. {"tenant_traffic": "..."}',
    )
    parser.add_argument("--log-json", action="store_true")
    parser.add_argument("--log-level", default="info", choices=("debug", "info", "warning"))
    args = parser.parse_args(argv)
    if args.services < 0:
        parser.error("--services must be >= 0")
    if args.pod_targets and not args.pod_port:
        parser.error("--pod-targets needs --pod-port")
    if args.pod_path_prefix and not re.fullmatch(r"(/[a-z0-9-]+)+", args.pod_path_prefix):
        parser.error("--pod-path-prefix must be like /internal")
    try:
        args.pod_faults = parse_overrides(args.pod_faults)
    except FaultError as exc:
        parser.error(f"--pod-faults: {exc}")
    return args


def write_ready_file(path: Path, info: dict[str, object]) -> None:
    """Atomically, so a watcher never reads half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    partial.write_text(json.dumps({"pid": os.getpid(), **info}, indent=2))
    partial.replace(path)


def _server_tls(files: Sequence[Path] | None) -> ssl.SSLContext | None:
    if not files:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(files[0], files[1])
    return context


async def serve(args: argparse.Namespace) -> None:
    """Run until SIGINT/SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with Simulator(
        rate=args.rate,
        seed=args.seed,
        control_port=args.control_port,
        slow_health_seconds=args.slow_health_seconds,
        pod_tls=_server_tls(args.pod_tls),
        pod_path_prefix=args.pod_path_prefix,
        pod_overrides=args.pod_faults,
        fluid_traffic=args.fluid_traffic,
    ) as sim:
        for index in range(args.services):
            port = args.base_port + index if args.base_port else 0
            await sim.add_service(f"{args.name_prefix}-{index:03d}", port)
        for target in args.follow:
            if target.service not in sim.services:
                await sim.add_service(target.service)
        follower = None
        if args.follow:
            try:
                reader = kubernetes_image_reader(args.kubeconfig)
            except Exception as exc:  # the client's ConfigException and friends
                raise StartError(f"cannot load the kubeconfig: {exc}") from exc
            follower = DeploymentFollower(sim, args.follow, reader, args.poll_interval)
            if args.pod_port:
                follower.follow_in_bulk(
                    kubernetes_bulk_reader(args.kubeconfig), args.pod_port, args.pod_targets
                )
            await follower.poll_once()  # the ready file then reflects the current images
        if args.ready_file:
            write_ready_file(args.ready_file, sim.ready_info())
        log.info("simulator ready", control_port=sim.control_port, services=len(sim.services))
        following = asyncio.create_task(follower.run()) if follower else None
        try:
            await stop.wait()
        finally:
            if following:
                following.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await following
            if follower:
                follower.stop_listing()
            if args.ready_file:
                args.ready_file.unlink(missing_ok=True)
    log.info("simulator stopped")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    configure_logs(json=args.log_json, level=logging.getLevelName(args.log_level.upper()))
    try:
        asyncio.run(serve(args))
    except (OSError, StartError) as exc:
        print(f"simulator: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
