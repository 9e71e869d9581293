"""Command-line interface: ``jaxwalras demo``, ``jaxwalras markup FILE.json``."""
from __future__ import annotations

import argparse
import importlib
import sys
import time

SECTIONS = {
    # name: (module, function)
    "multiunit": ("jaxwalras._demo_multiunit", "demo_multiunit"),
    "convexified": ("jaxwalras.convexified", "demo_convexified"),
    "mechanisms": ("jaxwalras.mechanisms", "demo_mechanisms"),
    "combinatorial": ("jaxwalras.combinatorial", "demo_combinatorial"),
}


def _demo(sections: list[str]) -> int:
    import jax
    print(f"jaxwalras demo on built-in data (JAX backend: {jax.default_backend()}, "
          f"device: {jax.devices()[0].device_kind})\n")
    for name in sections:
        mod, fn = SECTIONS[name]
        t0 = time.perf_counter()
        getattr(importlib.import_module(mod), fn)(print)
        print(f"[{name}: {time.perf_counter() - t0:.1f} s]\n")
    return 0


def main(argv: list[str] | None = None) -> int:
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
    args = ap.parse_args(argv)
    if args.cmd == "demo":
        return _demo(args.section or list(SECTIONS))
    if args.cmd == "markup":
        from jaxwalras.economy_json import run_markup_cli
        return int(run_markup_cli(args.path, print_fn=print) or 0)
    if args.cmd == "version":
        from jaxwalras import __version__
        print(__version__)
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
