"""Command-line interface: one command per capability.

::

    jaxwalras demo [--section NAME]             the built-in examples
    jaxwalras auction FILE [--json]             buyer-optimal Walrasian prices (multi-unit JSON)
    jaxwalras convexified FILE [--json]         convexified equilibrium (menu-economy JSON)
    jaxwalras markup FILE [--json]              markup mechanism (menu-economy JSON)
    jaxwalras rationing FILE [--json]           rationing mechanism (menu-economy JSON)
    jaxwalras we FILE [--json]                  item-price Walrasian equilibrium (CATS or JSON)
    jaxwalras cwe FILE [--json]                 combinatorial Walrasian equilibrium (CATS or JSON)
    jaxwalras experiment STUDY --out DIR        reproducible studies (see jaxwalras.experiments)
    jaxwalras --version

With ``--json`` the answer is one JSON object on standard output (machine-readable);
otherwise a table.  Exit codes: 0 every market solved and certified, 1 some market has no
solution or was not certified (its ``status`` says why), 2 bad input (one line on standard
error naming the file, the place in it and what is wrong; no traceback).
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Callable, Sequence

import numpy as np

EXIT_OK, EXIT_NO_SOLUTION, EXIT_BAD_INPUT = 0, 1, 2


class _BadInput(Exception):
    """An input problem the CLI reports as one line (exit code 2)."""


# ------------------------------------------------------------------ input helpers
def _load_menu(path: str) -> Any:
    from .economy_json import load_economy
    from .formats import FormatError
    try:
        return load_economy(path)
    except FormatError as exc:
        raise _BadInput(str(exc)) from None
    except (OSError, ValueError, TypeError) as exc:
        raise _BadInput(f"{path}: {exc}") from None


def _detect_format(path: str, fmt: str) -> str:
    if fmt != "auto":
        return fmt
    try:
        with open(path, "rb") as fh:
            head = fh.read(4096).lstrip()
    except OSError as exc:
        raise _BadInput(f"{path}: cannot read the file ({exc.strerror or exc})") from None
    return "json" if head[:1] in (b"{", b"[") else "cats"


def _load_setfunction(path: str, fmt: str) -> tuple[Any, list, list | None]:
    """(market, bidders for the JSON answer, names or None)."""
    from .formats import FormatError, load_setfunction_market, read_cats
    try:
        if _detect_format(path, fmt) == "cats":
            cats = read_cats(path)
            return cats.market, cats.bidders, None
        cm, names = load_setfunction_market(path, with_names=True)
    except FormatError as exc:
        raise _BadInput(str(exc)) from None
    if cm.batch_shape:
        raise _BadInput(f"{path}: holds {cm.batch_shape[0]} markets; this command solves "
                        "one market per file")
    return cm, list(range(cm.n_buyers)), names["buyers"]


def _reserve(text: str) -> Any:
    if text in ("adaptive", "none", "worst_case"):
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 'adaptive', 'none', 'worst_case' or a "
                                         f"number, got {text!r}") from None


def _emit(args: argparse.Namespace, payload: dict, table: Callable[[], None]) -> None:
    if args.json:
        print(json.dumps(payload, allow_nan=False))
    else:
        table()


def _status_lines(status: Any) -> list[str]:
    from .status import status_message
    st = np.atleast_1d(np.asarray(status))
    return [f"market {k}: status {int(c)} ({status_message(int(c))})"
            for k, c in enumerate(st) if c != 0]


def _progress(args: argparse.Namespace) -> bool:
    """Progress bars on standard error when it is a terminal, unless ``--no-progress``."""
    return not getattr(args, "no_progress", False) and sys.stderr.isatty()


def _exit_code(converged: Any) -> int:
    return EXIT_OK if bool(np.all(converged)) else EXIT_NO_SOLUTION


def _floats(x: Any) -> Any:
    arr = np.asarray(x, np.float64)
    out = arr.astype(object)
    out[~np.isfinite(arr)] = None
    return out.tolist()


# ------------------------------------------------------------------ commands
def _cmd_auction(args: argparse.Namespace) -> int:
    from .auction import buyer_optimal_equilibrium
    from .formats import FormatError, load_multiunit_market
    try:
        mkt, names = load_multiunit_market(args.file, with_names=True)
    except FormatError as exc:
        raise _BadInput(str(exc)) from None
    res = buyer_optimal_equilibrium(mkt, step=args.step, backend=args.backend,
                                    max_rounds=args.max_rounds,
                                    jumps=False if args.no_jumps else None,
                                    progress=_progress(args))

    def one(k: Any) -> dict:
        return {"prices": np.asarray(res.prices[k]).tolist(),
                "allocation": np.asarray(res.allocation[k]).tolist(),
                "converged": bool(res.converged[k]), "status": int(res.status[k]),
                "iterations": int(res.iterations[k])}

    payload = one(()) if mkt.batch_shape == () else {
        "markets": [one(k) for k in range(mkt.batch_shape[0])]}

    def table() -> None:
        batch = [()] if mkt.batch_shape == () else list(range(mkt.batch_shape[0]))
        for k in batch:
            nm = names if k == () else names[k]
            objs = nm.get("objects") or [str(j) for j in range(mkt.n_objects)]
            head = "" if k == () else f"market {k}: "
            print(f"{head}buyer-optimal prices: " + ", ".join(
                f"{o}={int(p)}" for o, p in zip(objs, np.asarray(res.prices[k]))))
            buyers = nm.get("buyers") or [str(i) for i in range(mkt.n_buyers)]
            for i, row in enumerate(np.asarray(res.allocation[k])):
                got = ", ".join(f"{int(x)} x {objs[j]}" for j, x in enumerate(row) if x)
                print(f"  {buyers[i]}: {got or '-'}")
        for line in _status_lines(res.status):
            print(line)

    _emit(args, payload, table)
    return _exit_code(res.converged)


def _cmd_convexified(args: argparse.Namespace) -> int:
    from .convexified import convexified_equilibrium
    eco = _load_menu(args.file)
    ce = convexified_equilibrium(eco, markup=args.markup, reserve=args.reserve,
                                 method=args.method, backend=args.backend, rtol=args.rtol,
                                 progress=_progress(args))
    payload = {"prices": _floats(ce.prices), "buyer_prices": _floats(ce.buyer_prices),
               "buyer_weights": np.asarray(ce.buyer_weights).tolist(),
               "seller_weights": np.asarray(ce.seller_weights).tolist(),
               "welfare": float(ce.primal_value), "rel_gap": float(ce.rel_gap),
               "converged": bool(ce.converged), "status": int(ce.status)}

    def table() -> None:
        print(f"economy: {eco.n_buyers} buyers, {eco.n_sellers} sellers, {eco.n_goods} goods")
        print("good | seller price | buyer price")
        for l in range(eco.n_goods):
            print(f"{l:>4} | {float(ce.prices[l]):>12.6g} | {float(ce.buyer_prices[l]):>11.6g}")
        mixing = int(((np.asarray(ce.buyer_weights) > 1e-9).sum(-1) > 1).sum()
                     + ((np.asarray(ce.seller_weights) > 1e-9).sum(-1) > 1).sum())
        print(f"convexified welfare = {float(ce.primal_value):.6g}; relative duality gap "
              f"{float(ce.rel_gap):.1e}; {mixing} mixing agent(s)")
        for line in _status_lines(ce.status):
            print(line)

    _emit(args, payload, table)
    return _exit_code(ce.converged)


def _cmd_markup(args: argparse.Namespace) -> int:
    from .markup import markup_mechanism
    eco = _load_menu(args.file)
    mk = markup_mechanism(eco, reserve=args.reserve, method=args.method, backend=args.backend,
                          max_markup=args.max_markup, progress=_progress(args))
    payload = {"markup": _floats(mk.markup), "prices": _floats(mk.prices),
               "buyer_prices": _floats(mk.buyer_prices),
               "buyer_choice": np.asarray(mk.buyer_choice).tolist(),
               "seller_choice": np.asarray(mk.seller_choice).tolist(),
               "excess_supply": _floats(mk.excess_supply),
               "budget_surplus": float(mk.budget_surplus), "welfare": float(mk.welfare),
               "welfare_bound": float(mk.welfare_bound),
               "certified_minimal": bool(mk.certified_minimal),
               "converged": bool(mk.converged), "status": int(mk.status)}

    def table() -> None:
        L = eco.n_goods
        print(f"economy: {eco.n_buyers} buyers, {eco.n_sellers} sellers, {L} goods")
        print(f"markup alpha = {float(mk.markup):.6g}"
              f"{' (certified minimal)' if bool(mk.certified_minimal) else ''}")
        print("good | seller price | buyer price | excess supply")
        for l in range(L):
            print(f"{l:>4} | {float(mk.prices[l]):>12.6g} | {float(mk.buyer_prices[l]):>11.6g} | "
                  f"{float(mk.excess_supply[l]):>13.6g}")
        print("buyers served (option): " + ", ".join(
            f"b{i + 1}:{int(k)}" for i, k in enumerate(mk.buyer_choice) if k > 0))
        print("sellers producing (option): " + ", ".join(
            f"s{i + 1}:{int(k)}" for i, k in enumerate(mk.seller_choice) if k > 0))
        print(f"budget surplus = {float(mk.budget_surplus):.6g}; welfare = "
              f"{float(mk.welfare):.6g}; welfare-bound certificate: loss <= "
              f"{float(mk.welfare_bound):.6g}")
        for line in _status_lines(mk.status):
            print(line + "; the outcome above is NOT a valid markup outcome")

    _emit(args, payload, table)
    return _exit_code(mk.converged)


def _cmd_rationing(args: argparse.Namespace) -> int:
    from .rationing import rationing_mechanism
    eco = _load_menu(args.file)
    ra = rationing_mechanism(eco, reserve=args.reserve, backend=args.backend,
                             progress=_progress(args))
    payload = {"prices": _floats(ra.prices),
               "buyer_allocation": np.asarray(ra.buyer_allocation).tolist(),
               "seller_choice": np.asarray(ra.seller_choice).tolist(),
               "buyer_losses": np.asarray(ra.buyer_losses).tolist(),
               "budget_surplus": float(ra.budget_surplus), "welfare": float(ra.welfare),
               "welfare_bound": float(ra.welfare_bound), "converged": bool(ra.converged),
               "status": int(ra.status)}

    def table() -> None:
        print(f"economy: {eco.n_buyers} buyers, {eco.n_sellers} sellers, {eco.n_goods} goods")
        print("prices: " + ", ".join(f"{float(p):.6g}" for p in np.asarray(ra.prices)))
        print("sellers producing (option): " + ", ".join(
            f"s{i + 1}:{int(k)}" for i, k in enumerate(ra.seller_choice) if k > 0))
        losses = np.asarray(ra.buyer_losses)
        print(f"rationed buyers: {int((losses > 0).sum())} (total loss {losses.sum():.6g}); "
              f"welfare = {float(ra.welfare):.6g}; loss bound {float(ra.welfare_bound):.6g}")
        for line in _status_lines(ra.status):
            print(line)

    _emit(args, payload, table)
    return _exit_code(ra.converged)


def _items(mask: int, m: int) -> list[int]:
    return [j for j in range(m) if (int(mask) >> j) & 1]


def _cmd_we(args: argparse.Namespace) -> int:
    from .item_prices import walrasian_equilibrium
    cm, bidders, names = _load_setfunction(args.file, args.format)
    we = walrasian_equilibrium(cm, rtol=args.rtol, minimal_prices=args.minimal_prices)
    m = cm.n_items
    payload: dict = {"bidders": bidders, "exists": bool(we.exists),
                     "welfare": float(we.welfare), "lp_value": float(we.lp_value),
                     "converged": bool(we.converged), "status": int(we.status)}
    if bool(we.exists):
        payload["prices"] = _floats(we.prices)
        payload["allocation"] = [_items(a, m) for a in np.asarray(we.allocation)]
    if names is not None:
        payload["names"] = names

    def table() -> None:
        print(f"market: {cm.n_buyers} bidders, {m} goods; optimal welfare "
              f"{float(we.welfare):.6g}, configuration-LP value {float(we.lp_value):.6g}")
        if bool(we.exists):
            print("item-price Walrasian equilibrium: prices " + ", ".join(
                f"{float(p):.6g}" for p in np.asarray(we.prices)))
            for i, a in enumerate(np.asarray(we.allocation)):
                label = names[i] if names else bidders[i]
                print(f"  bidder {label}: goods {_items(a, m) or '-'}")
        else:
            print("no item-price Walrasian equilibrium exists (the configuration LP has no "
                  "integral optimum); try: jaxwalras cwe FILE")
        for line in _status_lines(we.status):
            print(line)

    _emit(args, payload, table)
    return _exit_code(we.converged)


def _cmd_cwe(args: argparse.Namespace) -> int:
    from .bundling import combinatorial_walrasian_equilibrium
    cm, bidders, names = _load_setfunction(args.file, args.format)
    res = combinatorial_walrasian_equilibrium(cm, rtol=args.rtol, patience=args.patience,
                                              progress=_progress(args))
    m = cm.n_items
    live = np.flatnonzero(np.asarray(res.bundles) > 0)
    payload: dict = {"bidders": bidders,
                     "bundles": [_items(res.bundles[s], m) for s in live],
                     "prices": _floats(np.asarray(res.prices)[live]),
                     "holders": np.asarray(res.holder)[live].astype(int).tolist(),
                     "welfare": float(res.welfare), "revenue": float(res.revenue),
                     "max_regret": float(res.max_regret),
                     "tol": np.asarray(res.tol, np.float64).tolist(),
                     "converged": bool(res.converged), "status": int(res.status)}
    if names is not None:
        payload["names"] = names

    def table() -> None:
        print(f"market: {cm.n_buyers} bidders, {m} goods; combinatorial Walrasian "
              f"equilibrium with welfare {float(res.welfare):.6g} (start "
              f"{float(res.start_welfare):.6g}), revenue {float(res.revenue):.6g}")
        print("bundle (goods) | price | holder")
        for s in live:
            h = int(res.holder[s])
            who = "unsold" if h < 0 else (names[h] if names else str(bidders[h]))
            print(f"{_items(res.bundles[s], m)} | {float(res.prices[s]):.6g} | {who}")
        print(f"largest regret {float(res.max_regret):.3g} (tolerances up to "
              f"{float(np.max(res.tol)):.3g}, one per bidder)")
        for line in _status_lines(res.status):
            print(line)

    _emit(args, payload, table)
    return _exit_code(res.converged)


def run_markup_cli(path: str, print_fn: Callable[[str], Any] = print,
                   backend: str = "host") -> int:
    """Deprecated: ``jaxwalras markup FILE`` (kept for scripts that call it)."""
    from ._validation import warn_deprecated
    warn_deprecated("jaxwalras.cli.run_markup_cli", "jaxwalras.cli.main(['markup', FILE])")
    import contextlib
    import io
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
        code = main(["markup", str(path), "--backend", backend])
    for line in buf.getvalue().splitlines():
        print_fn(line)
    return code


# ------------------------------------------------------------------ parser
def _parser() -> argparse.ArgumentParser:
    from . import __version__
    from .demo import SECTIONS
    ap = argparse.ArgumentParser(
        prog="jaxwalras", description="Market equilibria and pricing mechanisms, exact and "
        "batched with JAX.", epilog="Exit codes: 0 solved and certified, 1 no solution or "
        "not certified (see status), 2 bad input.")
    ap.add_argument("--version", action="version", version=f"jaxwalras {__version__}")
    ap.add_argument("--compilation-cache", metavar="DIR|off", default=None,
                    dest="global_compilation_cache",
                    help="JAX's persistent compilation cache folder (default: "
                    "$JAXWALRAS_CACHE_DIR or ~/.cache/jaxwalras/jax-compilation-cache; "
                    "'off' switches it off)")
    sub = ap.add_subparsers(dest="cmd", required=True, metavar="COMMAND")

    p = sub.add_parser("demo", help="solve the built-in example markets and print tables")
    p.add_argument("--section", choices=list(SECTIONS), action="append",
                   help="run only these sections (repeatable); default: all")
    sub.add_parser("version", help="print the version")

    def add(name: str, help_: str, file_help: str) -> argparse.ArgumentParser:
        q = sub.add_parser(name, help=help_, description=help_)
        q.add_argument("file", metavar="FILE", help=file_help)
        q.add_argument("--json", action="store_true",
                       help="print one JSON object on standard output instead of a table")
        q.add_argument("--no-progress", action="store_true",
                       help="no progress bar (shown on standard error when it is a terminal)")
        return q

    q = add("auction", "buyer-optimal Walrasian prices of multi-unit markets by the flow-based "
            "ascending auction", "multi-unit market JSON (format jaxwalras.multiunit_market/1)")
    q.add_argument("--step", choices=["long", "search", "unit"], default="long")
    q.add_argument("--backend", choices=["auto", "device", "host"], default="auto")
    q.add_argument("--max-rounds", type=int, default=1_000_000)
    q.add_argument("--no-jumps", action="store_true", help="no singleton jumps")
    menu_file = "menu economy JSON (format jaxwalras.menu_economy/1)"
    q = add("convexified", "equilibrium of the convexified economy", menu_file)
    q.add_argument("--markup", type=float, default=0.0)
    q.add_argument("--reserve", type=float, default=0.0)
    q.add_argument("--method", choices=["auto", "smoothed", "lp", "envelope"], default="auto")
    q.add_argument("--backend", choices=["auto", "device", "host"], default="auto")
    q.add_argument("--rtol", type=float, default=1e-6)
    q = add("markup", "the markup mechanism: least budget-feasible markup", menu_file)
    q.add_argument("--reserve", type=_reserve, default="adaptive",
                   help="adaptive (default), none, worst_case, or a number")
    q.add_argument("--method", choices=["auto", "grid", "scan"], default="auto")
    q.add_argument("--backend", choices=["auto", "device", "host"], default="host")
    q.add_argument("--max-markup", type=float, default=4.0)
    q = add("rationing", "the rationing mechanism: one price, buyers rationed", menu_file)
    q.add_argument("--reserve", type=_reserve, default="adaptive")
    q.add_argument("--backend", choices=["auto", "device", "host"], default="host")
    setf = "a CATS file or set-function market JSON (format jaxwalras.setfunction_market/1)"
    q = add("we", "item-price Walrasian equilibrium: exists? (configuration LP)", setf)
    q.add_argument("--format", choices=["auto", "cats", "json"], default="auto")
    q.add_argument("--rtol", type=float, default=None)
    q.add_argument("--minimal-prices", action="store_true")
    q = add("cwe", "combinatorial Walrasian equilibrium by bundling (>= half the optimal "
            "welfare)", setf)
    q.add_argument("--format", choices=["auto", "cats", "json"], default="auto")
    q.add_argument("--rtol", type=float, default=None)
    q.add_argument("--patience", type=int, default=None)
    from .experiments import cli as experiment_cli
    experiment_cli.add_parser(sub)
    return ap


COMMANDS = {"auction": _cmd_auction, "convexified": _cmd_convexified, "markup": _cmd_markup,
            "rationing": _cmd_rationing, "we": _cmd_we, "cwe": _cmd_cwe}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``jaxwalras`` console script; returns the exit code."""
    args = _parser().parse_args(argv)
    if args.cmd == "version":
        from . import __version__
        print(__version__)
        return EXIT_OK
    if args.cmd == "experiment":          # manages the compilation cache itself
        from .experiments import cli as experiment_cli
        if args.compilation_cache is None:
            args.compilation_cache = args.global_compilation_cache
        return experiment_cli.run(args)
    from .experiments.cache import compilation_cache
    try:
        with compilation_cache(args.global_compilation_cache):   # a rerun compiles nothing
            if args.cmd == "demo":
                from .demo import run_demo
                return run_demo(args.section)
            return COMMANDS[args.cmd](args)
    except _BadInput as exc:
        print(f"jaxwalras {args.cmd}: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (ValueError, TypeError) as exc:      # an option the solver refuses
        print(f"jaxwalras {args.cmd}: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
