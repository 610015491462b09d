"""The `run` command line's flags, grouped as `--help` shows them, and the settings they
make (cli/settings.py): Prometheus limits and credentials, tenant boundaries, fleet storms."""

from __future__ import annotations

import argparse
import math
import os
import random
import socket
from datetime import timedelta
from pathlib import Path

from venue_operator.cli.settings import Settings
from venue_operator.decide.storm import StormRule
from venue_operator.observe.bounded_session import PrometheusAuth
from venue_operator.observe.endpoints import Limits
from venue_operator.tenancy.policy import Caps, Tenancy


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
        service_metrics=args.service_metrics,
        bind_address=args.bind_address,
        peering=args.peering or None,
        priority=args.priority if args.priority is not None else random.randint(1, 1_000_000),
        peering_lifetime=args.peering_lifetime,
        shard=_shard_name(args),
        shard_namespace=_own_namespace(args.operator_namespace) if args.shards else None,
        shard_lease=args.shard_lease,
        verbose=args.verbose,
        prometheus_auth=prometheus_auth_from(args),
        prometheus_limits=prometheus_limits_from(args),
        tenancy=tenancy_from(args),
        storm=storm_rule_from(args),
    )


def storm_rule_from(args: argparse.Namespace) -> StormRule:
    return StormRule(min_services=args.storm_min_services, min_fraction=args.storm_min_fraction,
                     min_namespaces=args.storm_min_namespaces,
                     window=timedelta(seconds=args.storm_window))  # fmt: skip


def _fraction(text: str) -> float:
    value = _number(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not between 0 and 1")
    return value


def storm_flags(parser: argparse.ArgumentParser) -> None:
    rule = StormRule()
    group = parser.add_argument_group(
        "fleet storms", "many VenueServices breaching one check at once have a shared cause: "
        "their scale-ups and service-wide rollbacks are held (docs/fleet.md)",
    )  # fmt: skip
    group.add_argument("--storm-min-services", type=int, default=rule.min_services, metavar="N",
                       help="services breaching together that make a storm (default "
                       "%(default)s; 0: no storm guard)")  # fmt: skip
    group.add_argument("--storm-min-fraction", type=_fraction, default=rule.min_fraction,
                       metavar="F", help="and this share of the scope's services, or of its "
                       "namespaces across namespaces (default %(default)s)")  # fmt: skip
    group.add_argument("--storm-min-namespaces", type=int, default=rule.min_namespaces,
                       metavar="N", help="namespaces breaching together for a storm across "
                       "namespaces (one voice per namespace; default %(default)s)")  # fmt: skip
    group.add_argument("--storm-window", type=positive_float,
                       default=rule.window.total_seconds(), metavar="SECONDS",
                       help="a service counts as breaching this long after it last did "
                       "(default %(default)s)")  # fmt: skip


def prometheus_limits_from(args: argparse.Namespace) -> Limits:
    return Limits(timeout=args.prometheus_timeout, concurrency=args.prometheus_concurrency,
                  max_bytes=args.prometheus_max_body_bytes)  # fmt: skip


def prometheus_limit_flags(parser: argparse.ArgumentParser) -> None:
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


def prometheus_auth_flags(parser: argparse.ArgumentParser) -> None:
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


def _shard_name(args: argparse.Namespace) -> str | None:
    """--shards: this replica's member name, its Pod's (POD_NAME) where it has one."""
    if not args.shards:
        return None
    if args.peering:
        raise SystemExit(
            "--shards and --peering exclude each other: shards all act, each on its own"
        )
    if not _own_namespace(args.operator_namespace):
        raise SystemExit(
            "--shards needs the operator's namespace (--operator-namespace or POD_NAMESPACE)"
        )
    return os.environ.get("POD_NAME") or f"{socket.gethostname()}-{os.getpid()}"


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


def cidr(text: str) -> str:
    import ipaddress

    try:
        return str(ipaddress.ip_network(text, strict=False))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None


def positive_float(text: str) -> float:
    """Seconds, above 0 and finite: at 0 or less an alert would be posted every cycle and end
    as it is sent (endsAt is 4 intervals ahead); inf and nan failed later, in timedelta,
    naming no flag."""
    value = _number(text)
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive, finite number")
    return value


def tenancy_flags(run: argparse.ArgumentParser) -> None:
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
        "--allow-service-cidr", action="append", metavar="CIDR", type=cidr,
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
