"""Command-line interface: ``jaxwalras demo``, ``jaxwalras markup FILE.json``,
``jaxwalras version``."""
from __future__ import annotations

import argparse
import sys
from typing import Any, Callable


def run_markup_cli(path: str, print_fn: Callable[[str], Any] = print,
                   backend: str = "host") -> int:
    """``jaxwalras markup FILE.json``: run the markup mechanism and print the outcome.

    Returns a process exit code: 0 ok, 1 no budget-feasible markup found, 2 bad input.
    """
    from .economy_json import load_economy
    from .markup import markup_mechanism
    from .status import status_message
    try:
        eco = load_economy(path)
    except (OSError, ValueError, TypeError) as exc:
        print_fn(f"error: {exc}")
        return 2
    mk = markup_mechanism(eco, backend=backend)
    L = eco.n_goods
    print_fn(f"economy: {eco.n_buyers} buyers, {eco.n_sellers} sellers, {L} goods")
    print_fn(f"markup alpha = {float(mk.markup):.6g}"
             f"{' (certified minimal)' if bool(mk.certified_minimal) else ''}")
    print_fn("good | seller price | buyer price | excess supply")
    for l in range(L):
        print_fn(f"{l:>4} | {float(mk.prices[l]):>12.6g} | {float(mk.buyer_prices[l]):>11.6g} | "
                 f"{float(mk.excess_supply[l]):>13.6g}")
    print_fn("buyers served (option): " + ", ".join(
        f"b{i + 1}:{int(k)}" for i, k in enumerate(mk.buyer_choice) if k > 0))
    print_fn("sellers producing (option): " + ", ".join(
        f"s{i + 1}:{int(k)}" for i, k in enumerate(mk.seller_choice) if k > 0))
    print_fn(f"budget surplus = {float(mk.budget_surplus):.6g}; welfare = {float(mk.welfare):.6g}; "
             f"welfare-bound certificate: loss <= {float(mk.welfare_bound):.6g}")
    if not bool(mk.converged):
        print_fn(f"no valid markup outcome: {status_message(mk.status)} (status "
                 f"{int(mk.status)}); the outcome above is NOT a valid markup outcome")
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``jaxwalras`` console script; returns the exit code."""
    from .demo import SECTIONS, run_demo
    ap = argparse.ArgumentParser(prog="jaxwalras", description="Market equilibria and "
                                 "pricing mechanisms, exact and batched with JAX.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p_demo = sub.add_parser("demo", help="solve the built-in example markets and print tables")
    p_demo.add_argument("--section", choices=list(SECTIONS), action="append",
                        help="run only these sections (repeatable); default: all")
    p_mk = sub.add_parser("markup", help="run the markup mechanism on an economy in JSON "
                          "(format: see jaxwalras.economy_json)")
    p_mk.add_argument("path")
    sub.add_parser("version", help="print the version")
    from .experiments import cli as experiment_cli
    experiment_cli.add_parser(sub)
    args = ap.parse_args(argv)
    if args.cmd == "experiment":
        return experiment_cli.run(args)
    if args.cmd == "demo":
        return run_demo(args.section)
    if args.cmd == "markup":
        return run_markup_cli(args.path, print_fn=print)
    if args.cmd == "version":
        from jaxwalras import __version__
        print(__version__)
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
