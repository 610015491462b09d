"""Entry points: `venue-operator crd | lab | demo` (more commands join as the loop grows)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from venue_operator import logs
from venue_operator.crd import CRD_PATH, render_crd


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


def _lab(args: argparse.Namespace) -> int:
    from venue_lab.session import run_lab  # the lab is a dev tool: import it only when asked

    return run_lab(keep=args.keep, scrape_interval=args.scrape_interval)


def _demo(args: argparse.Namespace) -> int:
    from venue_lab.demo import run_demo

    return run_demo(keep=args.keep)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="venue-operator", description=__doc__)
    parser.add_argument("--log-json", action="store_true", help="log JSON lines")
    sub = parser.add_subparsers(dest="command", required=True)

    crd = sub.add_parser("crd", help="print the CRD generated from the models")
    crd.add_argument(
        "--write", nargs="?", const=str(CRD_PATH), help=f"write it (default {CRD_PATH})"
    )
    crd.set_defaults(func=_crd)

    lab = sub.add_parser("lab", help="run the local control plane + Prometheus until Ctrl-C")
    lab.add_argument("--keep", action="store_true", help="keep the work directories afterwards")
    lab.add_argument("--scrape-interval", default="1s")
    lab.set_defaults(func=_lab)

    demo = sub.add_parser("demo", help="the quick-start demo on the local lab")
    demo.add_argument("--keep", action="store_true", help="keep it running; print the KUBECONFIG")
    demo.set_defaults(func=_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logs.configure(json=args.log_json)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
