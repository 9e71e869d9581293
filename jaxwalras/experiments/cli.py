"""``jaxwalras experiment``: run a study from the shell.

``add_parser(subparsers)`` registers the subcommand and ``run(args)`` executes it (the
main ``jaxwalras`` entry point only registers and dispatches).  Exit codes: 0 the study
finished (rows whose solver did not converge are results, counted in the summary), 1 a
batch failed (committed rows are kept: run again with ``--resume``), 2 bad input
(unknown study, malformed sizes or spec file, unwritable or foreign output folder,
unreachable coordinator), 130 interrupted (committed rows are kept).
"""
from __future__ import annotations

import argparse
import json
import math
import signal
import sys
import types
from typing import Any

__all__ = ["add_parser", "run", "main"]

EXAMPLES = """examples:
  jaxwalras experiment --list
  jaxwalras experiment markup-scaling --out runs/markup --sizes 100,1000,10000 --seeds 4
  jaxwalras experiment markup-scaling --out runs/markup --resume
  jaxwalras experiment --spec my_study.toml --out runs/mine
  jaxwalras experiment auction-rounds --out runs/auction --grid max_value=10,100,1000
  # two processes (run both; process 0 hosts the coordinator):
  jaxwalras experiment markup-scaling --out runs/m --num-processes 2 --process-id 0 \\
      --coordinator 10.0.0.1:7777
  jaxwalras experiment markup-scaling --out runs/m --num-processes 2 --process-id 1 \\
      --coordinator 10.0.0.1:7777
"""


def _one_line_error(self: argparse.ArgumentParser, message: str) -> None:
    sys.stderr.write(f"{self.prog}: error: {message} (see {self.prog} --help)\n")
    sys.exit(2)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``experiment`` subcommand to an argparse ``subparsers`` object."""
    p = subparsers.add_parser(
        "experiment", help="run a reproducible large-N study (progress, durable results, "
        "figures, many processes)", description="Run a study: one row per (grid point, "
        "seed) in OUT/results.csv, committed after every batch; a figure and fitted rates "
        "in OUT.", epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.error = types.MethodType(_one_line_error, p)
    p.add_argument("study", nargs="?", help="a built-in study (see --list)")
    p.add_argument("--spec", metavar="FILE", help="a study spec file (.toml or .json)")
    p.add_argument("--list", action="store_true", help="list the built-in studies, "
                   "generators and capabilities, and exit")
    p.add_argument("--show", action="store_true", help="print the study's specification "
                   "as JSON (a starting point for a spec file), and exit")
    p.add_argument("--out", metavar="DIR", help="results folder")
    p.add_argument("--sizes", metavar="LIST", help="values of the study's size parameter, "
                   "e.g. 100,1000,10000")
    p.add_argument("--seeds", metavar="K", help="number of seeds per grid point")
    p.add_argument("--grid", metavar="KEY=V1,V2", action="append", default=[],
                   help="replace (or add) a grid axis; repeatable")
    p.add_argument("--fixed", metavar="KEY=VALUE", action="append", default=[],
                   help="replace a base parameter of every grid point; repeatable")
    p.add_argument("--batch-size", metavar="B", help="markets per batch")
    p.add_argument("--resume", action="store_true", help="continue the run in --out "
                   "(committed rows are not recomputed)")
    p.add_argument("--force", action="store_true", help="delete the results in --out "
                   "first, even those of another study")
    p.add_argument("--no-progress", action="store_true", help="no progress line")
    p.add_argument("--no-figure", action="store_true", help="do not draw the figure")
    p.add_argument("--num-processes", metavar="P", help="processes of a distributed run")
    p.add_argument("--process-id", metavar="I", help="this process (0..P-1)")
    p.add_argument("--coordinator", metavar="HOST:PORT", help="process 0's address")
    p.add_argument("--coordinator-timeout", metavar="S", default="60",
                   help="seconds to wait for the coordinator and all processes (default 60)")
    p.add_argument("--local-device-ids", metavar="IDS", help="this process's local devices, "
                   "e.g. 0 or 0,1")
    p.add_argument("--compilation-cache", metavar="DIR|off", help="JAX persistent "
                   "compilation cache folder, or off (default: JAXWALRAS_CACHE_DIR or the "
                   "user cache folder)")
    return p


def _int(text: Any, name: str, lo: int) -> int | None:
    if text is None:
        return None
    try:
        val = int(str(text).strip())
    except ValueError:
        raise ValueError(f"{name}: expected an integer, got {text!r}") from None
    if val < lo:
        raise ValueError(f"{name}: must be >= {lo}, got {val}")
    return val


def _value(tok: str) -> Any:
    t = tok.strip()
    if t.lower() in ("true", "false"):
        return t.lower() == "true"
    for conv in (int, float):
        try:
            return conv(t)
        except ValueError:
            pass
    return t


def _grid(items: list[str], name: str = "--grid") -> dict:
    out: dict[str, Any] = {}
    for it in items:
        key, sep, vals = it.partition("=")
        if not sep or not key.strip() or not vals.strip():
            form = "KEY=V1,V2,..." if name == "--grid" else "KEY=VALUE"
            raise ValueError(f"{name}: expected {form}, got {it!r}")
        if name == "--grid":
            out[key.strip()] = [_value(v) for v in vals.split(",")]
        else:
            out[key.strip()] = _value(vals)
    return out


def _list(print_fn: Any) -> None:
    from .capabilities import CAPABILITIES
    from .generators import GENERATORS
    from .studies import STUDIES
    print_fn("built-in studies (jaxwalras experiment NAME --out DIR [--sizes ...] [--seeds K]):")
    for st in STUDIES.values():
        rs = st.resolve()
        sizes = sorted({pt[st.size_param] for pt in rs.points}) if st.size_param else []
        print_fn(f"  {st.name:<20} {st.description}")
        print_fn(f"  {'':<20} {len(rs.points)} grid points x {len(rs.seeds)} seeds; "
                 f"--sizes sets {st.size_param} (default {','.join(map(str, sizes))})")
    print_fn("generators (spec files: generator = NAME, or 'package.module:function'):")
    for g in GENERATORS.values():
        print_fn(f"  {g.name:<20} {g.description}; parameters: {', '.join(g.params or {})}")
    print_fn("capabilities (spec files: compute = NAME, or [{capability, options, prefix}]):")
    for c in CAPABILITIES.values():
        print_fn(f"  {c.name:<20} {c.description}; options: {', '.join(c.options or {})}")


def run(args: argparse.Namespace, print_fn: Any = print) -> int:
    """Execute ``jaxwalras experiment`` for parsed ``args``; returns the exit code."""
    from .distributed import CoordinatorError
    from .runner import ExperimentError, as_study, run_study
    from .spec import parse_sizes
    err = sys.stderr
    if args.list:
        _list(print_fn)
        return 0
    try:
        if args.spec and args.study:
            raise ValueError("give a built-in STUDY or --spec FILE, not both")
        if not args.spec and not args.study:
            raise ValueError("name a study (see --list) or give --spec FILE")
        study = as_study(args.spec if args.spec else args.study)
        if args.spec and not args.spec.lower().endswith((".toml", ".json")):
            raise ValueError(f"--spec {args.spec}: expected a .toml or .json file")
        sizes = parse_sizes(args.sizes) if args.sizes is not None else None
        seeds = _int(args.seeds, "--seeds", 1)
        grid = _grid(args.grid)
        fixed = _grid(args.fixed, "--fixed")
        if args.show:
            st = study.with_overrides(sizes=sizes, seeds=seeds, grid=grid, fixed=fixed)
            st.resolve()
            print_fn(json.dumps(st.to_dict(), indent=2))
            return 0
        if not args.out:
            raise ValueError("--out: a results folder is required")
        timeout = float(args.coordinator_timeout)
        if not (math.isfinite(timeout) and timeout > 0):
            raise ValueError(f"--coordinator-timeout: must be a positive number of seconds, "
                             f"got {args.coordinator_timeout!r}")
        ids: list[int] | None = None
        if args.local_device_ids:
            ids = [int(_int(t, "--local-device-ids", 0) or 0)
                   for t in args.local_device_ids.split(",")]
    except (ValueError, TypeError) as exc:
        err.write(f"jaxwalras experiment: error: {exc}\n")
        return 2

    def on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGTERM, on_term)
    try:
        res = run_study(study, args.out, sizes=sizes, seeds=seeds, grid=grid or None,
                        fixed=fixed or None,
                        batch_size=_int(args.batch_size, "--batch-size", 1),
                        resume=args.resume, force=args.force,
                        progress=not args.no_progress,
                        num_processes=_int(args.num_processes, "--num-processes", 1),
                        process_id=_int(args.process_id, "--process-id", 0),
                        coordinator=args.coordinator, coordinator_timeout=timeout,
                        local_device_ids=ids, compilation_cache=args.compilation_cache,
                        figure=not args.no_figure)
    except KeyboardInterrupt:
        err.write(f"jaxwalras experiment: interrupted; the rows committed so far are kept in "
                  f"{args.out}; run the same command with --resume to finish\n")
        return 130
    except (ValueError, TypeError, CoordinatorError) as exc:
        err.write(f"jaxwalras experiment: error: {exc}\n")
        return 2
    except ExperimentError as exc:
        err.write(f"jaxwalras experiment: error: {exc}; the rows committed before it are "
                  f"kept in {args.out} (fix the cause, then run again with --resume)\n")
        return 1
    finally:
        signal.signal(signal.SIGTERM, old)
    _summary(res, print_fn)
    return 0


def _summary(res: Any, print_fn: Any) -> None:
    from ..status import status_message
    if res.process != 0:
        print_fn(f"{res.study} [process {res.process}/{res.num_processes}]: {res.computed} "
                 f"rows computed ({res.skipped} already committed) in {res.seconds:.1f} s; "
                 f"process 0 writes {res.table}")
        return
    rate = res.computed / res.seconds if res.seconds > 0 else 0.0
    state = ("every row converged" if res.converged else
             f"not every row converged (most common status {res.status}: "
             f"{status_message(res.status)})")
    print_fn(f"{res.study}: {res.rows} rows in {res.table} ({res.computed} computed, "
             f"{res.skipped} already committed) in {res.seconds:.1f} s ({rate:.3g} rows/s); "
             f"{state}")
    for f in res.fits:
        if not math.isfinite(f["slope"]):
            continue
        exp = f" (theory {f['expected']:g})" if f.get("expected") is not None else ""
        grp = f" [{f['group']}]" if f.get("group") else ""
        print_fn(f"  {f['label']}{grp}: b = {f['slope']:.3f}{exp}, r^2 = {f['r2']:.2f}, "
                 f"{f['n']} rows")
    if res.figure:
        print_fn(f"  figure: {res.figure}")


def main(argv: list[str] | None = None) -> int:
    """``python -m jaxwalras.experiments.cli ...`` (same as ``jaxwalras experiment ...``)."""
    ap = argparse.ArgumentParser(prog="jaxwalras")
    sub = ap.add_subparsers(dest="cmd", required=True)
    add_parser(sub)
    return run(ap.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
