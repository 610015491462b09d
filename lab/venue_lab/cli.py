"""`venue-lab lab | demo`: the local lab and the quick-start demo (development tools)."""

from __future__ import annotations

import argparse
import sys

from venue_operator.cli import logs


def _lab(args: argparse.Namespace) -> int:
    from venue_lab.session import run_lab

    return run_lab(keep=args.keep, scrape_interval=args.scrape_interval)


def _demo(args: argparse.Namespace) -> int:
    from venue_lab.demo import run_demo

    return run_demo(keep=args.keep, scenario=args.scenario)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="venue-lab", description=__doc__)
    parser.add_argument("--log-json", action="store_true", help="log JSON lines")
    sub = parser.add_subparsers(dest="command", required=True)

    lab = sub.add_parser("lab", help="run the local control plane + Prometheus until Ctrl-C")
    lab.add_argument("--keep", action="store_true", help="keep the work directories afterwards")
    lab.add_argument("--scrape-interval", default="1s")
    lab.set_defaults(func=_lab)

    demo = sub.add_parser("demo", help="the quick-start demo on the local lab")
    demo.add_argument("--keep", action="store_true", help="keep it running; print the KUBECONFIG")
    demo.add_argument(
        "--scenario", choices=("rollback", "capacity", "database"), default="rollback",
        help="bad rollout -> rollback (default); pool saturation -> scale-up; "
        "database down -> circuit breaker",
    )  # fmt: skip
    demo.set_defaults(func=_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    """`venue-lab lab|demo`: logs as the operator's, exit code from the command."""
    args = build_parser().parse_args(argv)
    logs.configure(json=args.log_json)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
