"""Every solver result to and from JSON, exactly.

A result (any of the library's result NamedTuples) becomes::

    {"format": "jaxwalras.result/1", "type": "AuctionResult",
     "fields": {"prices": {"dtype": "int64", "shape": [2], "data": [4, 2]}, ...}}

Integers stay integers, floats round-trip exactly (Python writes the shortest string that
reads back to the same float64), NaN and infinities are written as the strings ``"nan"``,
``"inf"``, ``"-inf"`` (strict JSON has no such numbers), booleans stay booleans, and plain
Python values (e.g. the auction's ``timings`` dict) are written as they are.
:func:`result_to_dict` with ``plain=True`` gives the simpler ``{field: nested lists}`` the
command line prints.
"""
from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from ..typing import PathLike
from ._common import FormatError, read_json, write_json

__all__ = ["result_to_dict", "result_from_dict", "result_to_json", "result_from_json",
           "save_result", "load_result", "result_types"]

FORMAT = "jaxwalras.result/1"


def result_types() -> dict[str, type]:
    """The result classes that can be written, by name."""
    import jaxwalras as jw
    names = ["AuctionResult", "ConvexifiedResult", "RoundingResult", "MarkupResult",
             "RationingResult", "EfficientAllocation", "WelfareBound", "OptimalAllocationResult",
             "WalrasianResult", "ItemPriceAuctionResult", "CWEResult", "ItemPriceWelfareResult",
             "DemandResult", "PreferredBundles", "SmoothedEquilibrium"]
    return {n: getattr(jw, n) for n in names if hasattr(jw, n)}


def _float(x: float) -> Any:
    return x if math.isfinite(x) else ("nan" if math.isnan(x) else ("inf" if x > 0 else "-inf"))


def _encode(value: Any, plain: bool) -> Any:
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, dict):
        return {str(k): _encode(v, plain) for k, v in value.items()}
    if isinstance(value, (list, tuple)) and not hasattr(value, "_fields"):
        return [_encode(v, plain) for v in value]
    arr = np.asarray(value)
    if arr.dtype.kind == "f":
        data = np.vectorize(_float, otypes=[object])(arr).tolist() if arr.size else arr.tolist()
    elif arr.dtype.kind in "biu":
        data = arr.tolist()
    else:
        raise TypeError(f"cannot write a value of dtype {arr.dtype} to JSON")
    if plain:
        return data
    dtype = {"f": "float64", "b": "bool"}.get(arr.dtype.kind, "int64")
    return {"dtype": dtype, "shape": list(arr.shape), "data": data}


def _decode(value: Any, where: str) -> Any:
    if isinstance(value, dict) and set(value) == {"dtype", "shape", "data"}:
        dtype = value["dtype"]
        if dtype not in ("float64", "int64", "bool"):
            raise FormatError(None, where, f"unknown dtype {dtype!r}")
        data = value["data"]
        if dtype == "float64":
            conv = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}
            data = np.vectorize(lambda x: conv[x] if isinstance(x, str) else x,
                                otypes=[np.float64])(np.asarray(data, dtype=object)) \
                if np.size(data) else data
        arr = np.asarray(data, dtype=dtype)
        if list(arr.shape) != list(value["shape"]):
            raise FormatError(None, where, f"data has shape {list(arr.shape)}, the file says "
                              f"{value['shape']}")
        return arr
    if isinstance(value, dict):
        return {k: _decode(v, f"{where}.{k}") for k, v in value.items()}
    return value


def result_to_dict(result: tuple, *, plain: bool = False) -> dict:
    """A result as a JSON-ready dict (``plain=True``: just ``{field: nested lists}``).

    Examples
    --------
    >>> import jaxwalras as jw
    >>> mkt = jw.MultiUnitMarket([[4, 4], [5, 3]], demands=[2, 1], supplies=[1, 1])
    >>> d = jw.result_to_dict(jw.buyer_optimal_equilibrium(mkt), plain=True)
    >>> d["prices"], d["allocation"], d["converged"]
    ([4, 2], [[0, 1], [1, 0]], True)
    """
    if not hasattr(result, "_fields"):
        raise TypeError(f"result: expected one of the library's result NamedTuples, got "
                        f"{type(result).__name__}")
    fields = {f: _encode(getattr(result, f), plain) for f in result._fields}
    if plain:
        return fields
    return {"format": FORMAT, "type": type(result).__name__, "fields": fields}


def result_from_dict(d: Any, *, path: Any = None) -> Any:
    """Rebuild a result from :func:`result_to_dict`'s output (not the plain form)."""
    if not isinstance(d, dict) or d.get("format") != FORMAT:
        raise FormatError(path, "format", f"not a jaxwalras result (expected 'format': "
                          f"{FORMAT!r})")
    types = result_types()
    name = d.get("type")
    if name not in types:
        raise FormatError(path, "type", f"unknown result type {name!r} (known: "
                          f"{', '.join(sorted(types))})")
    cls: Any = types[name]
    fields = d.get("fields")
    if not isinstance(fields, dict):
        raise FormatError(path, "fields", "must be an object")
    unknown = set(fields) - set(cls._fields)
    missing = set(cls._fields) - set(fields)
    if unknown or missing:
        what = (f"unknown field {sorted(unknown)[0]!r}" if unknown
                else f"missing field {sorted(missing)[0]!r}")
        raise FormatError(path, "fields", f"{what} for {name} (fields: {', '.join(cls._fields)})")
    try:
        return cls(**{f: _decode(fields[f], f"fields.{f}") for f in cls._fields})
    except FormatError as exc:
        raise FormatError(path, exc.where, exc.what) from None


def result_to_json(result: tuple, *, plain: bool = False) -> str:
    """A result as a strict JSON string (see :func:`result_to_dict`)."""
    return json.dumps(result_to_dict(result, plain=plain), allow_nan=False)


def result_from_json(text: str) -> Any:
    """Rebuild a result from :func:`result_to_json`'s output.

    Examples
    --------
    >>> import numpy as np, jaxwalras as jw
    >>> r = jw.convexified_equilibrium(jw.examples.milgrom_watt_table1())
    >>> back = jw.result_from_json(jw.result_to_json(r))
    >>> type(back).__name__, all(np.array_equal(a, b, equal_nan=True)
    ...                          for a, b in zip(back, r) if not isinstance(a, dict))
    ('ConvexifiedResult', True)
    """
    try:
        d = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FormatError(None, f"line {exc.lineno} column {exc.colno}",
                          f"not valid JSON ({exc.msg})") from None
    return result_from_dict(d)


def save_result(result: tuple, path: PathLike) -> None:
    """Write a result as JSON (exact round trip with :func:`load_result`)."""
    write_json(result_to_dict(result), path)


def load_result(path: PathLike) -> Any:
    """Read a result written by :func:`save_result`."""
    return result_from_dict(read_json(path), path=path)
