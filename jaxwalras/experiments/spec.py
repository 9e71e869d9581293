"""Study specifications: what a study generates, over which grid and seeds, and what it
computes -- and the deterministic seeding that makes every row reproducible.

A :class:`Study` is plain data (it round-trips through TOML/JSON spec files, see
:func:`load_spec`).  :meth:`Study.resolve` validates it completely, before anything is
written, and returns a :class:`ResolvedStudy`: the grid points in a fixed order, the
seeds, the generator and capabilities with each parameter routed to the generator or to
the capabilities that take it, and a fingerprint of everything that determines the
numbers (so a results folder can refuse a different study).
"""
from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
import os
import sys
import re
from typing import Any, Callable, Mapping, NamedTuple, Sequence

from .capabilities import Capability, get_capability
from .expressions import Expression
from .generators import Generator, get_generator

__all__ = ["Study", "ResolvedStudy", "ComputeItem", "load_spec", "market_seed",
           "parse_sizes", "SPEC_KEYS"]

#: keys a spec file (or :meth:`Study.from_dict`) may use
SPEC_KEYS = ("study", "name", "description", "generator", "grid", "fixed", "seeds",
             "compute", "derive", "size_param", "cost", "batch_size", "batch_cost",
             "figure", "fits")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_SCALAR = (bool, int, float, str)


class ComputeItem(NamedTuple):
    """One capability of a study: what runs, with which fixed options, under which column
    prefix, and which grid parameters are routed to it."""
    capability: Capability
    options: dict
    prefix: str
    routed: tuple


def _canon(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=True)


def market_seed(generator: str, params: Mapping[str, Any], seed: int) -> int:
    """The integer seed of the market of one (grid point, seed index).

    A hash (SHA-256) of the generator's name, the generator's parameters at the grid
    point and the seed index, reduced to ``[0, 2**31)``: it does not depend on the batch,
    the order of the grid, the other grid points or the number of processes, so a row can
    be recomputed alone (``generator(market_seed, **params)``).

    Examples
    --------
    >>> from jaxwalras.experiments import market_seed
    >>> market_seed("single-good", {"n_buyers": 100}, 0)
    240285171
    >>> market_seed("single-good", {"n_buyers": 100}, 0) == market_seed(
    ...     "single-good", {"n_buyers": 100}, 1)
    False
    """
    digest = hashlib.sha256(_canon([str(generator), dict(params), int(seed)]).encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def parse_sizes(text: Any, name: str = "--sizes") -> list[int]:
    """``"100,1000,1e4"`` -> ``[100, 1000, 10000]`` (positive integers, no repeats).

    Raises
    ------
    ValueError
        An entry that is not a positive integer, or an empty list (the message quotes the
        entry as given).

    Examples
    --------
    >>> from jaxwalras.experiments import parse_sizes
    >>> parse_sizes("100,1000,1e4")
    [100, 1000, 10000]
    """
    items = text if isinstance(text, (list, tuple)) else str(text).split(",")
    out: list[int] = []
    for raw in items:
        tok = str(raw).strip()
        try:
            val = float(tok)
            ok = math.isfinite(val) and val == int(val) and val >= 1
        except ValueError:
            ok = False
        if not ok:
            raise ValueError(f"{name}: {tok!r} in {text!r} is not a positive integer "
                             "(expected a comma-separated list such as 100,1000,10000)")
        if int(val) in out:
            raise ValueError(f"{name}: {int(val)} appears twice in {text!r}")
        out.append(int(val))
    if not out:
        raise ValueError(f"{name}: no sizes given")
    return out


def _scalar(val: Any, where: str) -> Any:
    if isinstance(val, _SCALAR) and not (isinstance(val, float) and not math.isfinite(val)):
        return val
    raise ValueError(f"{where}: values must be numbers, booleans or strings, got {val!r}")


def _grid_list(grid: Any) -> list[dict[str, list]]:
    subs = [grid] if isinstance(grid, Mapping) else grid
    if not isinstance(subs, (list, tuple)) or not subs:
        raise ValueError(f"grid: expected a table of parameter -> list of values, or a list "
                         f"of such tables, got {grid!r}")
    out = []
    for k, sub in enumerate(subs):
        where = "grid" if isinstance(grid, Mapping) else f"grid[{k}]"
        if not isinstance(sub, Mapping):
            raise ValueError(f"{where}: expected a table of parameter -> list of values, "
                             f"got {sub!r}")
        axes = {}
        for key, vals in sub.items():
            if not isinstance(key, str) or not key:
                raise ValueError(f"{where}: parameter names must be strings, got {key!r}")
            vals = list(vals) if isinstance(vals, (list, tuple)) else [vals]
            if not vals:
                raise ValueError(f"{where}.{key}: needs at least one value, got []")
            axes[key] = [_scalar(v, f"{where}.{key}") for v in vals]
        out.append(axes)
    return out


def _seeds(seeds: Any) -> tuple[int, ...]:
    if isinstance(seeds, bool):
        raise ValueError(f"seeds: expected a count >= 1 or a list of seed indices, got {seeds!r}")
    if isinstance(seeds, int):
        if seeds < 1:
            raise ValueError(f"seeds: the count must be >= 1, got {seeds}")
        return tuple(range(seeds))
    if isinstance(seeds, (list, tuple)) and seeds and all(
            isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds):
        if len(set(seeds)) != len(seeds):
            raise ValueError(f"seeds: repeated seed index in {list(seeds)}")
        return tuple(int(s) for s in seeds)
    raise ValueError(f"seeds: expected a count >= 1 or a non-empty list of distinct integers "
                     f">= 0, got {seeds!r}")


def _callable_id(fn: Any) -> str:
    return f"{getattr(fn, '__module__', '?')}:{getattr(fn, '__qualname__', repr(fn))}"


def _jsonable(obj: Any) -> Any:
    if callable(obj):
        return _callable_id(obj)
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    return obj


@dataclasses.dataclass(frozen=True)
class Study:
    """A study: a market generator, a grid of parameters, seeds, and what to compute.

    Parameters
    ----------
    name : str
        Letters, digits, ``.``, ``_``, ``-`` (names the figure file).
    generator : str or callable
        A built-in generator (:data:`jaxwalras.experiments.GENERATORS`),
        ``"package.module:function"``, or ``fn(seed, **params) -> market``.
    grid : dict or list of dict
        Parameter -> list of values; the grid is their Cartesian product.  A list of
        tables is the union of their products (one-at-a-time sweeps around a base).
    compute : str, callable, dict or list
        Capabilities (:data:`jaxwalras.experiments.CAPABILITIES`, ``"module:function"``
        or ``fn(batch, **options)``), each as a name or
        ``{"capability": ..., "options": {...}, "prefix": ...}``.  With several, columns are
        prefixed ``"<capability>_"`` unless ``prefix`` says otherwise.
    seeds : int or list of int
        A count ``K`` (seed indices ``0..K-1``) or explicit indices.
    fixed : dict
        Base parameters of every grid point (grid axes override them).
    derive : dict
        Extra columns: name -> expression over the row (:class:`~.expressions.Expression`)
        or ``fn(row) -> value``.
    size_param : str, optional
        The parameter that ``--sizes`` replaces.
    cost : str, optional
        Expression for one market's relative cost (progress ETA, ``batch_cost``).
    batch_size : int
        Markets per batch (one grid point per batch).
    batch_cost : float, optional
        At most this summed ``cost`` per batch.
    figure : dict, optional
        ``{"title": ..., "panels": [{"x", "y", "by", "where", "logx", "logy", "hline",
        "title"}, ...]}`` (see :func:`jaxwalras.experiments.analysis.draw_figure`).
    fits : list of dict
        Log-log fits ``{"x", "y", "where", "expected", "band", "label"}`` reported in
        ``fits.json`` (see :func:`jaxwalras.experiments.analysis.fit_rates`).
    description : str

    Examples
    --------
    >>> from jaxwalras.experiments import Study
    >>> st = Study("tiny", "single-good", {"n_buyers": [100, 1000]}, "markup", seeds=2)
    >>> rs = st.resolve()
    >>> rs.points, rs.seeds, [c.capability.name for c in rs.compute]
    ([{'n_buyers': 100}, {'n_buyers': 1000}], (0, 1), ['markup'])
    """
    name: str
    generator: Any
    grid: Any
    compute: Any
    seeds: Any = 4
    fixed: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    derive: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    size_param: str | None = None
    cost: str | None = None
    batch_size: int = 16
    batch_cost: float | None = None
    figure: Mapping[str, Any] | None = None
    fits: Sequence[Mapping[str, Any]] = ()
    description: str = ""

    # -- construction -------------------------------------------------------------------
    @classmethod
    def from_dict(cls, spec: Mapping[str, Any], source: str = "spec") -> "Study":
        """A study from a spec table; ``{"study": NAME, ...}`` starts from a built-in study
        and replaces the fields given (``fixed`` is merged).

        Raises
        ------
        ValueError
            Unknown keys, an unknown built-in study, or a missing field.
        """
        if not isinstance(spec, Mapping):
            raise ValueError(f"{source}: expected a table of study fields, got "
                             f"{type(spec).__name__}")
        unknown = sorted(set(spec) - set(SPEC_KEYS))
        if unknown:
            raise ValueError(f"{source}: unknown field(s) {', '.join(map(repr, unknown))}; "
                             f"allowed: {', '.join(SPEC_KEYS)}")
        fields = dict(spec)
        base = fields.pop("study", None)
        if base is not None:
            from .studies import get_study
            study = get_study(base, field=f"{source}: study")
            if "fixed" in fields:
                if not isinstance(fields["fixed"], Mapping):
                    raise ValueError(f"{source}: fixed: expected a table, got {fields['fixed']!r}")
                fields["fixed"] = {**study.fixed, **fields["fixed"]}
            try:
                return dataclasses.replace(study, **fields)
            except TypeError as exc:
                raise ValueError(f"{source}: {exc}") from None
        missing = [k for k in ("name", "generator", "grid", "compute") if k not in fields]
        if missing:
            raise ValueError(f"{source}: missing field(s) {', '.join(missing)} (or name a "
                             "built-in study with study = \"...\")")
        return cls(**fields)

    def with_overrides(self, *, sizes: Any = None, seeds: Any = None,
                       grid: Mapping[str, Any] | None = None,
                       fixed: Mapping[str, Any] | None = None,
                       batch_size: int | None = None) -> "Study":
        """A copy with ``sizes`` (values of ``size_param``), ``seeds``, grid axes
        (``{param: values}``, replacing that axis wherever it occurs, else added to every
        sub-grid), ``fixed`` parameters (merged) or ``batch_size`` replaced."""
        subs = [dict(s) for s in ([self.grid] if isinstance(self.grid, Mapping) else self.grid)]
        axes = dict(grid or {})
        if sizes is not None:
            if not self.size_param:
                raise ValueError(f"--sizes: study {self.name!r} has no size parameter; set "
                                 "grid values instead")
            axes[self.size_param] = list(sizes)
        for key, vals in axes.items():
            vals = list(vals) if isinstance(vals, (list, tuple)) else [vals]
            if any(key in s for s in subs):
                for s in subs:
                    if key in s:
                        s[key] = vals
            else:
                for s in subs:
                    s[key] = vals
        new_grid = subs[0] if isinstance(self.grid, Mapping) else subs
        if fixed is not None and not isinstance(fixed, Mapping):
            raise ValueError(f"fixed: expected a table of parameter -> value, got {fixed!r}")
        return dataclasses.replace(
            self, grid=new_grid, seeds=self.seeds if seeds is None else seeds,
            fixed={**self.fixed, **(fixed or {})},
            batch_size=self.batch_size if batch_size is None else batch_size)

    def to_dict(self) -> dict:
        """The spec as JSON-able data (callables as ``"module:qualname"``)."""
        return {f.name: _jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)}

    # -- validation ---------------------------------------------------------------------
    def resolve(self) -> "ResolvedStudy":
        """Validate everything and fix the grid points, seeds and parameter routing.

        Raises
        ------
        ValueError, TypeError
            The message names the field and the offending value as given.
        """
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise ValueError(f"name: must be letters, digits, '.', '_' or '-', got {self.name!r}")
        gen = get_generator(self.generator)
        subs = _grid_list(self.grid)
        if not isinstance(self.fixed, Mapping):
            raise ValueError(f"fixed: expected a table of parameter -> value, got {self.fixed!r}")
        fixed = {str(k): _scalar(v, f"fixed.{k}") for k, v in self.fixed.items()}
        seeds = _seeds(self.seeds)
        points: list[dict] = []
        seen: set[str] = set()
        for sub in subs:
            keys = list(sub)
            for combo in itertools.product(*(sub[k] for k in keys)):
                pt = {**fixed, **dict(zip(keys, combo))}
                key = _canon(pt)
                if key not in seen:
                    seen.add(key)
                    points.append(pt)
        params = list(dict.fromkeys(k for pt in points for k in pt))
        compute = self._compute(params, gen)
        gen_params = [p for p in params if gen.params is None or p in gen.params]
        routed = {p for c in compute for p in c.routed}
        stray = [p for p in params if p not in gen_params and p not in routed]
        if stray:
            allowed = "any keyword" if gen.params is None else ", ".join(gen.params) or "none"
            caps = "; ".join(f"{c.capability.name}: {', '.join(c.capability.options or {})}"
                             for c in compute)
            raise ValueError(f"grid/fixed: parameter {stray[0]!r} is taken neither by "
                             f"generator {gen.name!r} (parameters: {allowed}) nor by a "
                             f"capability ({caps})")
        derive: dict[str, Any] = {}
        if not isinstance(self.derive, Mapping):
            raise ValueError(f"derive: expected a table of column -> expression, got "
                             f"{self.derive!r}")
        for col, ex in self.derive.items():
            if col in params or col in ("seed", "market_seed", "converged", "status"):
                raise ValueError(f"derive.{col}: the name is already a column")
            derive[col] = ex if callable(ex) else Expression(ex, f"derive.{col}")
        cost = None
        if self.cost is not None:
            cost = Expression(self.cost, "cost")
            bad = sorted(cost.names - set(params))
            if bad:
                raise ValueError(f"cost: {self.cost!r} names {', '.join(bad)}, which are not "
                                 f"parameters (parameters: {', '.join(params)})")
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int) \
                or self.batch_size < 1:
            raise ValueError(f"batch_size: must be a positive integer, got {self.batch_size!r}")
        if self.batch_cost is not None and not (
                isinstance(self.batch_cost, (int, float)) and self.batch_cost > 0):
            raise ValueError(f"batch_cost: must be a positive number, got {self.batch_cost!r}")
        if self.size_param is not None and self.size_param not in params:
            raise ValueError(f"size_param: {self.size_param!r} is not a grid parameter "
                             f"(parameters: {', '.join(params)})")
        from .analysis import check_figure_spec, check_fits
        check_figure_spec(self.figure)
        check_fits(self.fits)
        return ResolvedStudy(self, gen, points, seeds, compute, gen_params, derive, cost)

    def _compute(self, params: list[str], gen: Generator) -> list[ComputeItem]:
        items = self.compute if isinstance(self.compute, (list, tuple)) else [self.compute]
        if not items:
            raise ValueError("compute: needs at least one capability")
        parsed = []
        for k, it in enumerate(items):
            where = "compute" if len(items) == 1 else f"compute[{k}]"
            if isinstance(it, Mapping):
                bad = sorted(set(it) - {"capability", "options", "prefix"})
                if bad or "capability" not in it:
                    raise ValueError(f"{where}: expected {{capability, options, prefix}}, "
                                     f"got keys {sorted(it)}")
                cap = get_capability(it["capability"], f"{where}.capability")
                opts = it.get("options", {}) or {}
                if not isinstance(opts, Mapping):
                    raise ValueError(f"{where}.options: expected a table, got {opts!r}")
                prefix = it.get("prefix")
            else:
                cap, opts, prefix = get_capability(it, where), {}, None
            if prefix is None:
                prefix = "" if len(items) == 1 else re.sub(r"\W", "_", cap.name.split(":")[-1]
                                                            .split(".")[-1]) + "_"
            if not isinstance(prefix, str):
                raise ValueError(f"{where}.prefix: expected a string, got {prefix!r}")
            named = cap.options or {}
            for opt in opts:
                if cap.options is not None and opt not in named and not cap.open_options:
                    raise ValueError(f"{where}.options: {cap.name!r} has no option {opt!r} "
                                     f"(options: {', '.join(named) or 'none'})")
            routed = tuple(p for p in params
                           if not (gen.params is None or p in gen.params) and p in named)
            clash = [p for p in routed if p in opts]
            if clash:
                raise ValueError(f"{where}.options: {clash[0]!r} is also a grid parameter; "
                                 "give it in one place")
            parsed.append(ComputeItem(cap, dict(opts), prefix, routed))
        prefixes = [c.prefix for c in parsed]
        if len(set(prefixes)) < len(prefixes):
            dup = next(p for p in prefixes if prefixes.count(p) > 1)
            raise ValueError(f"compute: two capabilities share the column prefix {dup!r}; "
                             "give each its own prefix")
        return parsed


class ResolvedStudy(NamedTuple):
    """A validated study (see :meth:`Study.resolve`)."""
    study: Study
    generator: Generator
    points: list
    seeds: tuple
    compute: list
    gen_params: list
    derive: dict
    cost: Any

    def generator_params(self, point: Mapping[str, Any]) -> dict:
        return {k: v for k, v in point.items() if k in self.gen_params}

    def market_seed(self, point: Mapping[str, Any], seed: int) -> int:
        return market_seed(self.generator.name, self.generator_params(point), seed)

    def point_key(self, point: Mapping[str, Any]) -> str:
        return _canon(dict(point))

    def point_cost(self, point: Mapping[str, Any]) -> float:
        if self.cost is None:
            return 1.0
        val = float(self.cost(point))
        return val if math.isfinite(val) and val > 0 else 1.0

    def fingerprint_data(self) -> dict:
        """Everything that determines the numbers of the table."""
        return {"name": self.study.name, "generator": self.generator.name,
                "points": self.points, "seeds": list(self.seeds),
                "compute": [{"capability": c.capability.name, "options": _jsonable(c.options),
                             "prefix": c.prefix} for c in self.compute],
                "derive": {k: (v.source if isinstance(v, Expression) else _callable_id(v))
                           for k, v in self.derive.items()}}

    def fingerprint(self) -> str:
        return hashlib.sha256(_canon(self.fingerprint_data()).encode()).hexdigest()[:16]


def load_spec(path: Any) -> Study:
    """A :class:`Study` from a TOML (``.toml``) or JSON (``.json``) spec file.

    Raises
    ------
    ValueError
        The file is missing, unreadable, not valid TOML/JSON (with the line), or not a
        valid study (the message names the file and the field).

    Examples
    --------
    >>> import importlib.resources as ir
    >>> from jaxwalras.experiments import load_spec
    >>> st = load_spec(ir.files("jaxwalras.experiments") / "specs" / "example.toml")
    >>> st.name, st.generator, st.resolve().points[0]
    ('menu-mechanisms', 'menu', {'n_sellers': 2, 'n_goods': 2, 'n_buyers': 8})
    """
    path = os.fspath(path)
    ext = os.path.splitext(path)[1].lower()
    if ext not in (".toml", ".json"):
        raise ValueError(f"--spec {path}: expected a .toml or .json file")
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        raise ValueError(f"--spec {path}: cannot read the file ({exc.strerror})") from None
    try:
        if ext == ".json":
            data = json.loads(raw.decode("utf-8"))
        else:
            if sys.version_info >= (3, 11):
                import tomllib
            else:                        # Python 3.10
                import tomli as tomllib
            data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ValueError(f"--spec {path}: not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"--spec {path}: line {exc.lineno}, column {exc.colno}: "
                         f"{exc.msg}") from None
    except ValueError as exc:  # tomllib.TOMLDecodeError is a ValueError
        raise ValueError(f"--spec {path}: invalid TOML: {exc}") from None
    try:
        study = Study.from_dict(data, source=f"--spec {path}")
        study.resolve()
    except (ValueError, TypeError) as exc:
        msg = str(exc)
        raise ValueError(msg if msg.startswith("--spec") else f"--spec {path}: {msg}") from None
    return study
