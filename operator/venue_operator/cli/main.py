"""Entry points: `venue-operator run | check | report | crd | docs | uninstall | resume` (the lab
and demo: `venue-lab`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from venue_operator.cli import flags, logs
from venue_operator.model.crd import CRD_PATH, render_crd
from venue_operator.paging import alerts
from venue_operator.record import telemetry


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


def _docs(args: argparse.Namespace) -> int:
    from venue_operator.cli.reference import write_or_check

    return write_or_check(args.write)


def _run(args: argparse.Namespace) -> int:
    import asyncio

    import kopf
    from prometheus_client import start_http_server

    from venue_operator.cli import handlers

    settings = flags.settings_from(args)
    telemetry.export_check_values(settings.service_metrics == "full")
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

    tenancy = flags.tenancy_from(args)  # the run flags' boundaries: what the operator would fetch
    auth, limits = flags.prometheus_auth_from(args), flags.prometheus_limits_from(args)
    return asyncio.run(
        run_check(args.namespace, args.name, args.prometheus_url, tenancy, auth, limits)
    )


def _report(args: argparse.Namespace) -> int:
    import asyncio

    from venue_operator.cli.report import ReportError, Source, write_report

    source = Source(args.prometheus_url, flags.tenancy_from(args), flags.prometheus_auth_from(args),
                    flags.prometheus_limits_from(args))  # fmt: skip
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
        "--alertmanager-resend-interval", type=flags.positive_float, metavar="SECONDS",
        default=alerts.RESEND.total_seconds(),
        help="re-send an open incident's alert this often; it stays valid for 4 of these "
        "(default %(default)s)",
    )  # fmt: skip
    run.add_argument(
        "--metrics-max-age", type=float, metavar="SECONDS",
        help="oldest shared Prometheus snapshot a cycle may use (default: half the interval, "
        "at most the interval; less detects sooner, more reads Prometheus less often: at the "
        "interval, half as often)",
    )  # fmt: skip
    run.add_argument("--liveness-port", type=int, default=8080, help="0 disables /healthz")
    run.add_argument("--metrics-port", type=int, default=9090, help="0 disables /metrics")
    run.add_argument(
        "--service-metrics", choices=telemetry.SERVICE_METRICS, default="full",
        help="per VenueService: full (each check's value and thresholds too, for the "
        "dashboard) or alerts (what the alerts read: about half the series; bench/README.md)",
    )  # fmt: skip
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
    run.add_argument(
        "--shards", action="store_true",
        help="several replicas, each owning the VenueServices a hash gives it among the live "
        "members (a Lease each, in the operator's namespace)",
    )  # fmt: skip
    run.add_argument(
        "--shard-lease", type=int, default=15,
        help="seconds a member's Lease lasts unrenewed (the takeover time)",
    )  # fmt: skip
    run.add_argument("--verbose", action="store_true")
    flags.prometheus_auth_flags(run)
    flags.prometheus_limit_flags(run)
    flags.tenancy_flags(run)
    flags.storm_flags(run)
    run.set_defaults(func=_run)

    check = sub.add_parser("check", help="evaluate one VenueService now and print it")
    check.add_argument("name")
    check.add_argument("--namespace", "-n", default="default")
    check.add_argument("--prometheus-url")
    flags.prometheus_auth_flags(check)
    flags.prometheus_limit_flags(check)
    flags.tenancy_flags(check)
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
    flags.prometheus_auth_flags(report)
    flags.prometheus_limit_flags(report)
    flags.tenancy_flags(report)
    report.set_defaults(func=_report)

    crd = sub.add_parser("crd", help="print the CRD generated from the models")
    crd.add_argument(
        "--write", nargs="?", const=str(CRD_PATH), help=f"write it (default {CRD_PATH})"
    )
    crd.set_defaults(func=_crd)

    docs = sub.add_parser(
        "docs", help="check the docs site's generated pages (the runbook mapping, the CRD "
        "reference) against the code, from the repository's root; --write rewrites them",
    )  # fmt: skip
    docs.add_argument("--write", action="store_true", help="write them")
    docs.set_defaults(func=_docs)

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
