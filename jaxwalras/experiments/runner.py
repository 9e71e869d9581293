"""Run a study: plan the batches, skip committed rows, solve, commit, export, analyse.

The table has one row per (grid point, seed).  Each grid point's seeds are cut into
batches at fixed boundaries (``batch_size`` markets, at most ``batch_cost`` summed cost),
so a resumed run solves exactly the batches an uninterrupted run would have; every
market is drawn from its own seed (:func:`jaxwalras.experiments.market_seed`), so its row
never depends on the batching or on the number of processes.  With several processes the
batches are dealt out by cost (largest first, to the least loaded process), each process
commits to its own store under ``DIR/parts/``, and at the end process 0 gathers every
row through JAX's distributed runtime into ``DIR/results.sqlite`` and exports
``DIR/results.csv`` (see :mod:`jaxwalras.experiments.store` for why SQLite).
"""
from __future__ import annotations

import contextlib
import glob
import json
import os
import tempfile
import time
from collections import Counter
from typing import Any, Mapping, NamedTuple, Sequence, TextIO

from .capabilities import Batch, run_capability
from .distributed import Cluster, barrier, gather_bytes, initialize, resolve_cluster
from .generators import stack_markets
from .progress import Progress
from .spec import ResolvedStudy, Study, load_spec
from .store import ResultStore, atomic_write_bytes, export_csv

__all__ = ["run_study", "ExperimentResult", "ExperimentError", "ExperimentInputError",
           "as_study", "plan_batches"]

MAIN = "results.sqlite"
CSV = "results.csv"
SPEC = "study.json"
FITS = "fits.json"
BATCHES = "batches.csv"


class ExperimentError(RuntimeError):
    """A study could not finish (a batch failed); committed rows are kept."""


class ExperimentInputError(ValueError):
    """Bad input found while running (e.g. a generator rejected a grid value)."""


class ExperimentResult(NamedTuple):
    """Outcome of :func:`run_study`.

    Attributes
    ----------
    study : str
    out : str
        The results folder.
    table : str
        ``out/results.csv``.
    figure : str or None
        The PNG (process 0 only; ``None`` when the study defines no figure).
    fits : list of dict
        Fitted rates (:func:`jaxwalras.experiments.fit_rates`).
    rows : int
        Rows in the table (process 0), or this process's rows.
    computed : int
        Rows computed by this call.
    skipped : int
        Rows that were already committed and not recomputed.
    seconds : float
        Wall time of this call.
    process : int
    num_processes : int
    converged : bool
        Every row of the table is there and has ``converged`` True.
    status : int
        ``0`` when ``converged``, else the most frequent non-zero row ``status``
        (:class:`jaxwalras.Status`; ``NO_SOLUTION`` if rows are missing).
    iterations : int
        Batches solved by this call.
    """
    study: str
    out: str
    table: str
    figure: str | None
    fits: list
    rows: int
    computed: int
    skipped: int
    seconds: float
    process: int
    num_processes: int
    converged: bool
    status: int
    iterations: int


class _Chunk(NamedTuple):
    point: int
    seeds: tuple
    cost: float


def as_study(study: Any) -> Study:
    """A :class:`Study` from a built-in name, a spec file path, a dict or a Study."""
    from .studies import get_study
    if isinstance(study, Study):
        return study
    if isinstance(study, Mapping):
        return Study.from_dict(study)
    if isinstance(study, (str, os.PathLike)):
        s = os.fspath(study)
        if s.lower().endswith((".toml", ".json")):
            return load_spec(s)
        return get_study(s)
    raise TypeError(f"study: expected a study name, a spec file, a dict or a Study, got "
                    f"{type(study).__name__}")


def plan_batches(rs: ResolvedStudy, batch_size: int | None = None,
                 batch_cost: float | None = None) -> list[_Chunk]:
    """The fixed batches of a study: each grid point's seeds cut into consecutive runs of
    at most ``batch_size`` markets and ``batch_cost`` summed cost (at least one market)."""
    bs = rs.study.batch_size if batch_size is None else int(batch_size)
    bc = rs.study.batch_cost if batch_cost is None else batch_cost
    out = []
    for i, pt in enumerate(rs.points):
        cost = rs.point_cost(pt)
        size = bs if bc is None else max(1, min(bs, int(bc // cost)))
        for lo in range(0, len(rs.seeds), size):
            seeds = rs.seeds[lo:lo + size]
            out.append(_Chunk(i, tuple(seeds), cost * len(seeds)))
    return out


def _assign(chunks: Sequence[_Chunk], nproc: int) -> list[int]:
    """Process of each chunk: largest cost first, to the least loaded process."""
    load = [0.0] * nproc
    owner = [0] * len(chunks)
    for k in sorted(range(len(chunks)), key=lambda k: (-chunks[k].cost, k)):
        p = min(range(nproc), key=lambda q: (load[q], q))
        owner[k] = p
        load[p] += chunks[k].cost
    return owner


# ---------------------------------------------------------------------------- the folder
def _part_name(cluster: Cluster) -> str:
    return f"process-{cluster.process_id}-of-{cluster.num_processes}.sqlite"


def _stores_in(out: str) -> tuple[str, list[str]]:
    return os.path.join(out, MAIN), sorted(glob.glob(os.path.join(out, "parts", "*.sqlite")))


def _store_info(path: str) -> tuple[Any, int]:
    """(fingerprint, rows) of an existing store, read-only."""
    try:
        st = ResultStore(path, create=False)
    except Exception:
        return None, 0
    try:
        return st.get_meta("fingerprint"), st.count()
    except Exception:
        return None, 0
    finally:
        st.close()


def _describe_difference(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> str:
    if not isinstance(old, Mapping):
        return "an unknown study"
    diff = [k for k in new if old.get(k) != new.get(k)]
    label = {"points": "grid points (sizes/parameters)", "seeds": "seeds",
             "compute": "what is computed", "generator": "generator", "name": "name",
             "derive": "derived columns"}
    what = ", ".join(label.get(k, k) for k in diff) or "details"
    return f"study {old.get('name')!r} (differs in: {what})"


def _check_folder(out: str, rs: ResolvedStudy, resume: bool, force: bool) -> dict:
    """All checks before anything is written; creates the (empty) folder if needed."""
    if os.path.exists(out) and not os.path.isdir(out):
        raise ExperimentInputError(f"--out {out}: exists and is not a folder")
    created = not os.path.exists(out)
    try:
        os.makedirs(out, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-test-", dir=out)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise ExperimentInputError(f"--out {out}: the folder is not writable "
                                   f"({exc.strerror or exc})") from None
    fp = rs.fingerprint()
    main, parts = _stores_in(out)
    old_spec = None
    found: list[tuple[str, Any, int]] = []
    spec_path = os.path.join(out, SPEC)
    if os.path.exists(spec_path):
        try:
            with open(spec_path, encoding="utf-8") as fh:
                old_spec = json.load(fh)
            found.append((SPEC, old_spec.get("fingerprint"), 0))
        except (OSError, ValueError, AttributeError):
            found.append((SPEC, "unreadable", 0))
    for path in ([main] if os.path.exists(main) else []) + parts:
        f, n = _store_info(path)
        found.append((os.path.relpath(path, out), f, n))
    rows = sum(n for _, _, n in found)
    other = [name for name, f, n in found if f != fp and (f is not None or n > 0)]
    if other and not force:
        desc = _describe_difference(old_spec.get("resolved") if isinstance(old_spec, dict)
                                    else None, rs.fingerprint_data())
        raise ExperimentInputError(
            f"--out {out}: holds results of a different study specification ({desc}, in "
            f"{other[0]}); use --force to replace them, or choose another --out")
    if rows and not resume and not force:
        raise ExperimentInputError(
            f"--out {out}: already holds {rows} committed row(s) of this study; use "
            "--resume to continue without recomputing them, or --force to start over")
    return {"rows": rows, "fresh": not found, "created": created}


def _remove_results(out: str, cluster: Cluster, name: str) -> None:
    main, parts = _stores_in(out)
    own = os.path.join(out, "parts", _part_name(cluster))
    if cluster.process_id == 0:
        victims = [main, main + "-journal", os.path.join(out, CSV), os.path.join(out, SPEC),
                   os.path.join(out, FITS), os.path.join(out, BATCHES),
                   os.path.join(out, f"{name}.png")]
        victims += [p for p in parts if p != own or cluster.num_processes == 1]
    else:
        victims = []
    victims += [own, own + "-journal"]
    for v in victims:
        if os.path.exists(v):
            os.unlink(v)


# ---------------------------------------------------------------------------- the rows
def _rows_of(paths: Sequence[str], skip_errors: bool) -> dict[tuple[str, int], tuple]:
    """Raw rows from several stores, deduplicated by (point_key, seed)."""
    out: dict[tuple[str, int], tuple] = {}
    for p in paths:
        if not os.path.exists(p):
            continue
        try:
            st = ResultStore(p, create=False)
            try:
                raw = st.raw_rows()
            finally:
                st.close()
        except Exception:
            if skip_errors:
                continue
            raise
        for r in raw:
            out.setdefault((r[0], int(r[1])), tuple(r))
    return out


def _sorted_dicts(raw: Mapping[tuple[str, int], tuple], rs: ResolvedStudy) -> list[dict]:
    index = {rs.point_key(pt): i for i, pt in enumerate(rs.points)}
    items = sorted(raw.values(), key=lambda r: (index.get(r[0], r[2]), int(r[1])))
    return [json.loads(r[4]) for r in items]


def _solve_chunk(rs: ResolvedStudy, chunk: _Chunk, seeds: Sequence[int]) -> list[dict]:
    pt = rs.points[chunk.point]
    gparams = rs.generator_params(pt)
    mseeds = [rs.market_seed(pt, s) for s in seeds]
    where = ", ".join(f"{k}={v}" for k, v in pt.items())
    try:
        markets = [rs.generator.fn(ms, **gparams) for ms in mseeds]
        market = stack_markets(markets)
    except (ValueError, TypeError) as exc:
        raise ExperimentInputError(f"generator {rs.generator.name!r} at {where}: {exc}") from None
    batch = Batch(market, markets, dict(pt), list(seeds), mseeds)
    cols: dict[str, list] = {}
    conv = [True] * len(seeds)
    status = [0] * len(seeds)
    for item in rs.compute:
        opts = {**item.options, **{p: pt[p] for p in item.routed}}
        try:
            c = run_capability(item.capability, batch, opts, item.prefix)
        except (ValueError, TypeError) as exc:
            raise ExperimentInputError(f"capability {item.capability.name!r} at {where}: "
                                       f"{exc}") from None
        for k in range(len(seeds)):
            conv[k] = conv[k] and bool(c.get(item.prefix + "converged", [True] * len(seeds))[k])
            st = int(c.get(item.prefix + "status", [0] * len(seeds))[k])
            status[k] = status[k] or st
        if not item.prefix:
            c.pop("converged", None)
            c.pop("status", None)
        clash = [k for k in c if k in pt or k in ("seed", "market_seed")]
        if clash:
            raise ExperimentInputError(f"capability {item.capability.name!r}: output column "
                                       f"{clash[0]!r} is also a parameter; give it a prefix")
        cols.update(c)
    rows = []
    for k, s in enumerate(seeds):
        row = {**pt, "seed": int(s), "market_seed": mseeds[k]}
        row.update({key: vals[k] for key, vals in cols.items()})
        for col, fn in rs.derive.items():
            try:
                row[col] = fn(row)
            except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
                raise ExperimentInputError(f"derive.{col} at {where}: {exc}") from None
            if hasattr(row[col], "item"):
                row[col] = row[col].item()
        row["converged"] = conv[k]
        row["status"] = status[k]
        rows.append(row)
    return rows


def _summary_status(rows: Sequence[Mapping[str, Any]], expected: int) -> tuple[bool, int]:
    from ..status import Status
    if len(rows) < expected:
        return False, int(Status.NO_SOLUTION)
    bad = [int(r.get("status") or 0) for r in rows if not r.get("converged")]
    if not bad:
        return True, int(Status.OK)
    nonzero = [b for b in bad if b]
    return False, (Counter(nonzero).most_common(1)[0][0] if nonzero
                   else int(Status.NOT_CERTIFIED))


# ---------------------------------------------------------------------------- the run
def run_study(study: Any, out: Any, *, sizes: Sequence[int] | None = None,
              seeds: Any = None, grid: Mapping[str, Any] | None = None,
              fixed: Mapping[str, Any] | None = None, batch_size: int | None = None,
              resume: bool = False, force: bool = False,
              progress: bool = True, stream: TextIO | None = None,
              num_processes: int | None = None, process_id: int | None = None,
              coordinator: str | None = None, coordinator_timeout: float = 60.0,
              local_device_ids: Sequence[int] | None = None,
              compilation_cache: str | None = None, figure: bool = True,
              progress_interval: float = 2.0) -> ExperimentResult:
    """Run a study into the folder ``out`` (one row per grid point and seed).

    Parameters
    ----------
    study : str, Study, dict or path
        A built-in study (``jaxwalras.experiments.STUDIES``), a :class:`Study`, a spec
        table, or a ``.toml``/``.json`` spec file.
    out : str or path
        Results folder: ``results.csv`` (every committed row, re-exported after each
        batch), ``results.sqlite`` (the store), ``study.json`` (the specification),
        ``fits.json``, ``batches.csv`` (timings) and ``<study>.png``.
    sizes : list of int, optional
        Values of the study's size parameter (e.g. ``n_buyers``).
    seeds : int or list of int, optional
        Seed count or indices.
    grid : dict, optional
        Replace grid axes: ``{param: [values]}``.
    fixed : dict, optional
        Replace base parameters: ``{param: value}``.
    batch_size : int, optional
        Markets per batch (default: the study's; the stored one when resuming).
    resume : bool
        Continue a run in ``out``: committed rows are kept and not recomputed.
    force : bool
        Delete the results in ``out`` first (also those of another study).
    progress : bool
        Show the progress line (``False``: quiet).
    stream : file, optional
        Where progress goes (default stderr).
    num_processes, process_id, coordinator : optional
        A multi-process run on JAX's distributed runtime (all three, or none: then a
        SLURM job step of several tasks is detected).
    coordinator_timeout : float
        Seconds to wait for the coordinator and the other processes.
    local_device_ids : list of int, optional
        This process's local devices (e.g. one GPU each).
    compilation_cache : str, optional
        Folder of JAX's persistent compilation cache, or ``"off"`` (default: see
        :mod:`jaxwalras.experiments.cache`); switched on for this call only.
    figure : bool
        Draw the study's figure (process 0).
    progress_interval : float
        Seconds between progress lines.

    Returns
    -------
    ExperimentResult

    Raises
    ------
    ValueError
        Bad study, spec, sizes or options; a folder holding another study's results
        (without ``force``) or this study's rows (without ``resume``); an output folder
        that cannot be written.  Nothing is written in these cases.
    ExperimentError
        A batch failed; the rows committed before it are kept (run again with
        ``resume=True``).
    KeyboardInterrupt
        Interrupted; committed rows are kept.

    Examples
    --------
    >>> import tempfile
    >>> from jaxwalras.experiments import run_study, read_results
    >>> res = run_study("markup-scaling", tempfile.mkdtemp(), sizes=[100, 1000], seeds=2,
    ...                 progress=False, figure=False, compilation_cache="off")
    >>> res.rows, res.converged, [r["n_buyers"] for r in read_results(res.out)]
    (4, True, [100, 100, 1000, 1000])
    """
    t_start = time.perf_counter()
    st = as_study(study)
    if isinstance(seeds, str):
        from .spec import parse_sizes
        seeds = int(parse_sizes(seeds, "--seeds")[0])
    st = st.with_overrides(sizes=sizes, seeds=seeds, grid=grid, fixed=fixed)
    if batch_size is not None and (isinstance(batch_size, bool) or
                                   not isinstance(batch_size, int) or batch_size < 1):
        raise ValueError(f"batch_size: must be a positive integer, got {batch_size!r}")
    rs = st.resolve()
    cluster = resolve_cluster(num_processes, process_id, coordinator)
    if not isinstance(out, (str, os.PathLike)):
        raise TypeError(f"out: expected a folder path, got {type(out).__name__}")
    out = os.path.abspath(os.fspath(out))
    state = _check_folder(out, rs, resume, force)
    if resume and batch_size is None and not force:
        try:
            with open(os.path.join(out, SPEC), encoding="utf-8") as fh:
                batch_size = json.load(fh).get("batch_size")
        except (OSError, ValueError):
            pass
    try:
        initialize(cluster, timeout=coordinator_timeout, local_device_ids=local_device_ids)
    except BaseException:
        if state["created"]:                 # leave no empty folder behind
            with contextlib.suppress(OSError):
                os.rmdir(out)
        raise
    from .cache import compilation_cache as cache_ctx
    with cache_ctx(compilation_cache):
        return _run(rs, out, cluster, state, force=force, progress=progress, stream=stream,
                    batch_size=batch_size, draw=figure, interval=progress_interval,
                    t_start=t_start)


def _run(rs: ResolvedStudy, out: str, cluster: Cluster, state: dict, *, force: bool,
         progress: bool, stream: TextIO | None, batch_size: int | None, draw: bool,
         interval: float, t_start: float) -> ExperimentResult:
    from .. import __version__
    multi = cluster.num_processes > 1 or cluster.auto
    if multi:
        import jax
        cluster = cluster._replace(num_processes=jax.process_count(),
                                   process_id=jax.process_index())
    me, nproc = cluster.process_id, cluster.num_processes
    if force:
        _remove_results(out, cluster, rs.study.name)
        barrier("jaxwalras-experiment-force")
    fp = rs.fingerprint()
    bsize = rs.study.batch_size if batch_size is None else int(batch_size)
    if me == 0 and (force or not os.path.exists(os.path.join(out, SPEC))):
        doc = {"fingerprint": fp, "study": rs.study.name, "jaxwalras": __version__,
               "batch_size": bsize, "batch_cost": rs.study.batch_cost,
               "spec": rs.study.to_dict(), "resolved": rs.fingerprint_data()}
        atomic_write_bytes(os.path.join(out, SPEC),
                           json.dumps(doc, indent=2, allow_nan=True).encode("utf-8"))
    main, parts = _stores_in(out)
    own_path = main if nproc == 1 else os.path.join(out, "parts", _part_name(cluster))
    os.makedirs(os.path.dirname(own_path), exist_ok=True)
    store = ResultStore(own_path, create=True)
    try:
        attempt = int(store.get_meta("attempts") or 0) + 1
        store.set_meta(fingerprint=fp, study=rs.study.name, attempts=attempt)
        stale = [p for p in parts if p != own_path and
                 not os.path.basename(p).endswith(f"-of-{nproc}.sqlite")]
        if nproc == 1 and parts:            # rows of an earlier multi-process run
            store.insert_raw(_rows_of(parts, skip_errors=False).values())
        done = store.done()
        if nproc > 1:
            done |= set(_rows_of([main] + stale, skip_errors=True))
        chunks = plan_batches(rs, bsize)
        owner = _assign(chunks, nproc)
        mine = []
        for ch, who in zip(chunks, owner):
            if who != me:
                continue
            key = rs.point_key(rs.points[ch.point])
            todo = tuple(s for s in ch.seeds if (key, s) not in done)
            if todo:
                mine.append((ch, todo))
        my_total = sum(len(ch.seeds) for ch, w in zip(chunks, owner) if w == me)
        n_todo = sum(len(t) for _, t in mine)
        cost_todo = sum(rs.point_cost(rs.points[ch.point]) * len(t) for ch, t in mine)
        label = rs.study.name + (f" [process {me}/{nproc}]" if nproc > 1 else "")
        prog = Progress(label, n_todo, cost_todo, skipped=my_total - n_todo,
                        enabled=progress, stream=stream, interval=interval)
        export_paths = ([own_path] if nproc == 1 else
                        [main, own_path] + [p for p in parts if p != own_path])
        computed = 0
        with prog:
            for ch, todo in mine:
                pt = rs.points[ch.point]
                prog.working_on(", ".join(f"{k}={v}" for k, v in pt.items()
                                          if k in (rs.study.size_param,) or
                                          len({str(p.get(k)) for p in rs.points}) > 1)
                                + f" seeds {todo[0]}..{todo[-1]}")
                t0 = time.perf_counter()
                try:
                    rows = _solve_chunk(rs, ch, todo)
                except ExperimentInputError:
                    raise
                except Exception as exc:
                    raise ExperimentError(
                        f"batch at {', '.join(f'{k}={v}' for k, v in pt.items())}, seeds "
                        f"{list(todo)} failed: {type(exc).__name__}: {exc}") from exc
                key = rs.point_key(pt)
                store.commit([(key, r["seed"], ch.point, r) for r in rows], attempt=attempt,
                             process=me, point=ch.point, seconds=time.perf_counter() - t0)
                computed += len(rows)
                if me == 0:
                    export_csv(_sorted_dicts(_rows_of(export_paths, skip_errors=True), rs),
                               os.path.join(out, CSV))
                prog.advance(len(rows), rs.point_cost(pt) * len(rows))
        # -- combine -------------------------------------------------------------------
        if nproc > 1:
            mine_raw = list(_rows_of([own_path] + stale, skip_errors=True).values())
            payload = json.dumps(mine_raw).encode("utf-8")
            gathered = gather_bytes(payload)
            if me == 0:
                with ResultStore(main, create=True) as ms:
                    ms.set_meta(fingerprint=fp, study=rs.study.name)
                    for blob in gathered:
                        ms.insert_raw(tuple(r) for r in json.loads(blob.decode("utf-8")))
            barrier("jaxwalras-experiment-merged")
        batches = store.batches()
    finally:
        store.close()
    # -- export, fits, figure --------------------------------------------------------------
    fits: list = []
    fig_path = None
    if me == 0:
        raw = _rows_of([main], skip_errors=False)
        rows = _sorted_dicts(raw, rs)
        export_csv(rows, os.path.join(out, CSV))
        if batches:
            export_csv(batches, os.path.join(out, BATCHES))
        expected = len(rs.points) * len(rs.seeds)
        from .analysis import draw_figure, fit_rates
        fits = fit_rates(rows, rs.study.fits, rs.study.fixed)
        atomic_write_bytes(os.path.join(out, FITS), json.dumps(
            {"study": rs.study.name, "rows": len(rows), "fits": fits}, indent=2,
            allow_nan=True).encode("utf-8"))
        if draw and rs.study.figure is not None and rows:
            fig_path = os.path.join(out, f"{rs.study.name}.png")
            tmp = os.path.join(out, f".{rs.study.name}.tmp.png")
            draw_figure(rows, rs.study.figure, tmp, fits,
                        title=rs.study.figure.get("title") or rs.study.name,
                        fixed=rs.study.fixed)
            os.replace(tmp, fig_path)
    else:
        raw = _rows_of([own_path], skip_errors=True)
        rows = [json.loads(r[4]) for r in raw.values()]
        expected = my_total
    conv, status = _summary_status(rows, expected)
    return ExperimentResult(rs.study.name, out, os.path.join(out, CSV), fig_path, fits,
                            len(rows), computed, my_total - n_todo,
                            time.perf_counter() - t_start, me, nproc,
                            conv, status, len(mine))
