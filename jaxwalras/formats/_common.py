"""What every file format of the library shares: strict JSON reading, schema validation
with a precise location for every error, and the one error type the CLI reports."""
from __future__ import annotations

import functools
import importlib.resources
import json
import math
import os
from typing import Any, Iterable

__all__ = ["FormatError", "read_json", "load_schema", "validate", "location", "write_json"]


class FormatError(ValueError):
    """A file that is not valid for its format.

    ``str(err)`` is one line naming the file, the place in it (a JSON path such as
    ``markets[2].values[0][1]`` or ``line 7``) and what is wrong.
    """

    def __init__(self, path: Any, where: str, what: str) -> None:
        self.path = None if path is None else os.fspath(path)
        self.where = where
        self.what = what
        parts = [p for p in (self.path, where) if p]
        super().__init__(": ".join(parts + [what]))


def location(parts: Iterable[Any]) -> str:
    """``['markets', 2, 'values', 0, 1]`` -> ``'markets[2].values[0][1]'``."""
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(top level)"


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number (use a finite number)")


def _finite_float(text: str) -> float:
    x = float(text)
    if not math.isfinite(x):
        raise ValueError(f"the number {text} is outside the float64 range")
    return x


def read_json(path: Any) -> Any:
    """Parse a JSON file strictly: UTF-8 only, no NaN/Infinity, clear errors."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        raise FormatError(path, "", f"cannot read the file ({exc.strerror or exc})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FormatError(path, f"byte {exc.start}", "not UTF-8 text") from None
    try:
        return json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except json.JSONDecodeError as exc:
        raise FormatError(path, f"line {exc.lineno} column {exc.colno}",
                          f"not valid JSON ({exc.msg})") from None
    except ValueError as exc:            # NaN / Infinity, or an integer too long to parse
        raise FormatError(path, "", f"not valid JSON ({exc})") from None


def write_json(obj: Any, path: Any) -> None:
    """Write ``obj`` as strict JSON (atomically: a temporary file is renamed over ``path``)."""
    tmp = f"{os.fspath(path)}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(obj, fh, indent=1, allow_nan=False)
        fh.write("\n")
    os.replace(tmp, path)


@functools.lru_cache(maxsize=None)
def load_schema(name: str) -> dict:
    """The JSON Schema ``schemas/<name>.schema.json`` shipped with the package."""
    res = importlib.resources.files("jaxwalras.formats") / "schemas" / f"{name}.schema.json"
    return json.loads(res.read_text(encoding="utf-8"))


def validate(instance: Any, schema_name: str, definition: str, path: Any = None) -> None:
    """Validate ``instance`` against ``#/$defs/<definition>`` of a shipped schema.

    Raises :class:`FormatError` for the first error (deepest location first), naming the
    JSON path; unknown keys are reported by name with the keys that are allowed there.
    """
    import jsonschema
    schema = load_schema(schema_name)
    sub = {"$ref": f"#/$defs/{definition}", "$defs": schema["$defs"]}
    validator = jsonschema.Draft202012Validator(sub)
    errors = list(validator.iter_errors(instance))
    if not errors:
        return
    err = jsonschema.exceptions.best_match(errors)
    # descend into oneOf/anyOf to the most specific error
    while err.context:
        err = jsonschema.exceptions.best_match(err.context)
    where = list(err.absolute_path)
    if err.validator == "additionalProperties":
        allowed = sorted(err.schema.get("properties", {}))
        extra = sorted(set(err.instance) - set(allowed))
        raise FormatError(path, location(where + [extra[0]]),
                          f"unknown key {extra[0]!r} (allowed here: {', '.join(allowed)})")
    if err.validator == "required":
        missing = [k for k in err.validator_value if k not in err.instance]
        raise FormatError(path, location(where), f"missing the required key {missing[0]!r}")
    if err.validator == "type":
        want = err.validator_value
        want = " or ".join(want) if isinstance(want, list) else want
        raise FormatError(path, location(where),
                          f"must be {_article(want)}, got {_describe(err.instance)}")
    if err.validator in ("minimum", "maximum"):
        raise FormatError(path, location(where), f"must be {'>=' if err.validator == 'minimum' else '<='} "
                          f"{err.validator_value}, got {_describe(err.instance)}")
    if err.validator == "minItems":
        n = err.validator_value
        raise FormatError(path, location(where),
                          f"must have at least {n} entr{'y' if n == 1 else 'ies'}, got "
                          f"{len(err.instance)}")
    if err.validator == "maxItems":
        raise FormatError(path, location(where), f"must have at most {err.validator_value} "
                          f"entries, got {len(err.instance)}")
    if err.validator == "const":
        raise FormatError(path, location(where),
                          f"must be {err.validator_value!r}, got {_describe(err.instance)}")
    raise FormatError(path, location(where), err.message)


def _article(t: str) -> str:
    return ("an " if t[:1] in "aeiou" else "a ") + t


def _describe(x: Any) -> str:
    if isinstance(x, bool):
        return f"the boolean {str(x).lower()}"
    if isinstance(x, int):
        s = str(x)
        return s if len(s) <= 30 else f"a {len(s)}-digit integer"
    if isinstance(x, float):
        return repr(x) if math.isfinite(x) else str(x)
    if isinstance(x, str):
        return repr(x if len(x) <= 40 else x[:37] + "...")
    return {list: "a list", dict: "an object", type(None): "null"}.get(type(x), type(x).__name__)
