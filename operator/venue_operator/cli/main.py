"""Entry points: `venue-operator run | check | report | crd | uninstall | resume` (the lab and
demo: `venue-lab`)."""

from __future__ import annotations

import argparse
import math
import os
import random
import sys
from datetime import timedelta
from pathlib import Path

from venue_operator.cli import logs
from venue_operator.cli.settings import Settings
from venue_operator.model.crd import CRD_PATH, render_crd
from venue_operator.observe.bounded_session import PrometheusAuth
from venue_operator.observe.endpoints import Limits
from venue_operator.paging import alerts
from venue_operator.tenancy.policy import Caps, Tenancy


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
        alertmanager_url=args.alertmanager_url or None,
        alertmanager_resend=timedelta(seconds=args.alertmanager_resend_interval),
        metrics_max_age=args.metrics_max_age or None,
        liveness_port=args.liveness_port,
        metrics_port=args.metrics_port,
        bind_address=args.bind_address,
        peering=args.peering or None,
        priority=args.priority if args.priority is not None else random.randint(1, 1_000_000),
        peering_lifetime=args.peering_lifetime,
        verbose=args.verbose,
        prometheus_auth=prometheus_auth_from(args),
        prometheus_limits=prometheus_limits_from(args),
        tenancy=tenancy_from(args),
    )


def prometheus_limits_from(args: argparse.Namespace) -> Limits:
    return Limits(timeout=args.prometheus_timeout, concurrency=args.prometheus_concurrency,
                  max_bytes=args.prometheus_max_body_bytes)  # fmt: skip


def _prometheus_limit_flags(parser: argparse.ArgumentParser) -> None:
    defaults = Limits()
    group = parser.add_argument_group(
        "Prometheus limits", "bounds of every query, per Prometheus URL (one slow, hung or "
        "huge-bodied Prometheus delays only the VenueServices that use it)",
    )  # fmt: skip
    group.add_argument("--prometheus-timeout", type=float, default=defaults.timeout,
                       metavar="SECONDS", help="total deadline of one query: connect, "
                       "read and body (default %(default)s)")  # fmt: skip
    group.add_argument("--prometheus-concurrency", type=int, default=defaults.concurrency,
                       metavar="N", help="queries in flight per URL (%(default)s)")  # fmt: skip
    group.add_argument("--prometheus-max-body-bytes", type=int, default=defaults.max_bytes,
                       metavar="BYTES", help="largest answer read; beyond it the reading is "
                       "unknown, never read further (default %(default)s)")  # fmt: skip


def prometheus_auth_from(args: argparse.Namespace) -> PrometheusAuth | None:
    files = (args.prometheus_bearer_token_file, args.prometheus_basic_auth_file,
             args.prometheus_ca_file)  # fmt: skip
    if not any(files):
        return None
    return PrometheusAuth(*files)


def _prometheus_auth_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "Prometheus credentials",
        "for --prometheus-url only: files of a Secret in the operator's namespace mounted "
        "into its pod (never sent to a URL a VenueService names)",
    )
    group.add_argument("--prometheus-bearer-token-file", metavar="PATH",
                       help="a bearer token (read at every query: rotations apply)")  # fmt: skip
    group.add_argument("--prometheus-basic-auth-file", metavar="PATH",
                       help="one line, user:password")  # fmt: skip
    group.add_argument("--prometheus-ca-file", metavar="PATH", help="CA bundle (PEM) for https")


SA_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def _own_namespace(given: str | None) -> str | None:
    if given:
        return given
    if os.environ.get("POD_NAMESPACE"):
        return os.environ["POD_NAMESPACE"]
    return SA_NAMESPACE.read_text().strip() if SA_NAMESPACE.is_file() else None


def tenancy_from(args: argparse.Namespace) -> Tenancy:
    """The cluster admin's tenant boundaries (what a namespace user's spec may ask for)."""
    caps = Caps(
        max_replicas=args.max_replicas,
        min_cooldown=timedelta(seconds=args.min_cooldown),
        max_actions_per_hour=args.max_actions_per_hour,
        min_probe_interval=timedelta(seconds=args.min_probe_interval),
        fleet_actions_per_minute=args.max_fleet_actions_per_minute,
    )
    return Tenancy(
        caps=caps,
        prometheus_urls=tuple(args.allow_prometheus_url or ()),
        alertmanager_urls=tuple(args.allow_alertmanager_url or ()),
        service_hosts=tuple(h.lower() for h in args.allow_service_host or ()),
        service_cidrs=tuple(args.allow_service_cidr or ()),
        act_namespaces=tuple(args.act_namespace or ()),
        operator_namespace=_own_namespace(args.operator_namespace),
    )


def _cidr(text: str) -> str:
    import ipaddress

    try:
        return str(ipaddress.ip_network(text, strict=False))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive_float(text: str) -> float:
    """Seconds, above 0 and finite: at 0 or less an alert would be posted every cycle and end
    as it is sent (endsAt is 4 intervals ahead); inf and nan failed later, in timedelta,
    naming no flag."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive, finite number")
    return value


def _tenancy_flags(run: argparse.ArgumentParser) -> None:
    caps = Caps()
    group = run.add_argument_group(
        "tenant boundaries", "what a VenueService (written by a namespace user) may ask for"
    )
    group.add_argument(
        "--allow-prometheus-url", action="append", metavar="URL",
        help="a spec.prometheus.url allowed besides --prometheus-url (repeatable; default: none)",
    )  # fmt: skip
    group.add_argument(
        "--allow-alertmanager-url", action="append", metavar="URL",
        help="a spec.notification.alertmanager.url allowed besides --alertmanager-url "
        "(repeatable; default: none)",
    )  # fmt: skip
    group.add_argument(
        "--allow-service-host", action="append", metavar="PATTERN",
        help="host pattern (fnmatch) spec.service.url may name besides *.<own namespace>.svc "
        "(repeatable)",
    )  # fmt: skip
    group.add_argument(
        "--allow-service-cidr", action="append", metavar="CIDR", type=_cidr,
        help="network spec.service.url may name by IP, e.g. 127.0.0.0/8 in a lab (repeatable; "
        "default: none: IP addresses, loopback and link-local are refused)",
    )  # fmt: skip
    group.add_argument(
        "--act-namespace", action="append", metavar="GLOB",
        help="namespaces where the operator may act (repeatable; default: all but kube-* and "
        "its own); elsewhere it only observes and reports",
    )  # fmt: skip
    group.add_argument(
        "--operator-namespace", help="the operator's own namespace (default: POD_NAMESPACE)"
    )
    group.add_argument("--max-replicas", type=int, default=caps.max_replicas,
                       help="cap on spec remediation.scale.maxReplicas")  # fmt: skip
    group.add_argument(
        "--min-cooldown", type=float, metavar="SECONDS",
        default=caps.min_cooldown.total_seconds(), help="floor of every spec cooldown",
    )  # fmt: skip
    group.add_argument("--max-actions-per-hour", type=int, default=caps.max_actions_per_hour,
                       help="cap on spec remediation.maxActionsPerHour")  # fmt: skip
    group.add_argument(
        "--min-probe-interval", type=float, metavar="SECONDS",
        default=caps.min_probe_interval.total_seconds(), help="floor of spec probe.interval",
    )  # fmt: skip
    group.add_argument(
        "--max-fleet-actions-per-minute", type=int, metavar="N",
        default=caps.fleet_actions_per_minute,
        help="workload actions a minute across every VenueService (a shared outage never "
        "makes the whole fleet act at once); excess ones are held and escalated; 0: no limit",
    )  # fmt: skip


def _run(args: argparse.Namespace) -> int:
    import asyncio

    import kopf
    from prometheus_client import start_http_server

    from venue_operator.cli import handlers

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

    from venue_operator.cli.check import run_check

    tenancy = tenancy_from(args)  # the run flags' boundaries: what the operator would fetch
    auth, limits = prometheus_auth_from(args), prometheus_limits_from(args)
    return asyncio.run(
        run_check(args.namespace, args.name, args.prometheus_url, tenancy, auth, limits)
    )


def _report(args: argparse.Namespace) -> int:
    import asyncio

    from venue_operator.cli.report import ReportError, Source, write_report

    source = Source(args.prometheus_url, tenancy_from(args), prometheus_auth_from(args),
                    prometheus_limits_from(args))  # fmt: skip
    out = Path(args.out) if args.out else None
    try:
        path = asyncio.run(write_report(args.namespace, args.name, args.incident, out, source))
    except ReportError as exc:
        print(f"venue-operator report: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {path}")
    return 0


def _uninstall(args: argparse.Namespace) -> int:
    import asyncio

    from venue_operator.cli.uninstall import run_uninstall

    return asyncio.run(run_uninstall(args.namespace))


def _resume(args: argparse.Namespace) -> int:
    import asyncio

    from venue_operator.cli.resume import run_resume

    return asyncio.run(run_resume(args.namespace, args.name))


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
        "--alertmanager-url", metavar="URL",
        help="Alertmanager for VenueServices whose spec.notification.alertmanager names none",
    )  # fmt: skip
    run.add_argument(
        "--alertmanager-resend-interval", type=_positive_float, metavar="SECONDS",
        default=alerts.RESEND.total_seconds(),
        help="re-send an open incident's alert this often; it stays valid for 4 of these "
        "(default %(default)s)",
    )  # fmt: skip
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
    _prometheus_auth_flags(run)
    _prometheus_limit_flags(run)
    _tenancy_flags(run)
    run.set_defaults(func=_run)

    check = sub.add_parser("check", help="evaluate one VenueService now and print it")
    check.add_argument("name")
    check.add_argument("--namespace", "-n", default="default")
    check.add_argument("--prometheus-url")
    _prometheus_auth_flags(check)
    _prometheus_limit_flags(check)
    _tenancy_flags(check)
    check.set_defaults(func=_check)

    report = sub.add_parser(
        "report", help="write an incident's post-mortem draft (Markdown + PNG graphs); reads only"
    )
    report.add_argument("name")
    report.add_argument("--namespace", "-n", default="default")
    report.add_argument("--incident", metavar="ID", help="default: the newest incident")
    report.add_argument("--out", metavar="DIR",
                        help="default: ./postmortem-<namespace>-<name>-<incident>")  # fmt: skip
    report.add_argument("--prometheus-url", help="for the graphs (without it: none)")
    _prometheus_auth_flags(report)
    _prometheus_limit_flags(report)
    _tenancy_flags(report)
    report.set_defaults(func=_report)

    crd = sub.add_parser("crd", help="print the CRD generated from the models")
    crd.add_argument(
        "--write", nargs="?", const=str(CRD_PATH), help=f"write it (default {CRD_PATH})"
    )
    crd.set_defaults(func=_crd)

    uninstall = sub.add_parser(
        "uninstall", help="after removing an operator of an older version: release the "
        "VenueServices it left Kopf's finalizer (and annotations) on, so that they and their "
        "namespaces can be deleted (this version puts no finalizer on them)",
    )  # fmt: skip
    uninstall.add_argument(
        "--namespace", "-n", default=None,
        help="only this namespace's (default: every namespace; e.g. an operator that watched "
        "some namespaces only, or one of several operators removed)",
    )  # fmt: skip
    uninstall.set_defaults(func=_uninstall)

    resume = sub.add_parser(
        "resume", help="undo the GitOps suspension (Flux suspend, Argo CD automated sync) made "
        "after a rollback of this VenueService's Deployment",
    )  # fmt: skip
    resume.add_argument("name")
    resume.add_argument("--namespace", "-n", default="default")
    resume.set_defaults(func=_resume)

    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logs.configure(json=args.log_json)
    result: int = args.func(args)
    return result
