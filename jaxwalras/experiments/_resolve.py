"""Resolve a ``"module:function"`` name to the callable it names (generators, capabilities)."""
from __future__ import annotations

import importlib
from typing import Callable


def import_callable(spec: str, field: str) -> Callable:
    """The callable ``spec = "module:attr.attr"`` names; ``ValueError`` naming ``field``
    when it cannot be imported or is not callable."""
    mod, _, attr = spec.partition(":")
    try:
        fn = importlib.import_module(mod)
        for part in attr.split("."):
            fn = getattr(fn, part)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"{field}: cannot import {spec!r} ({exc})") from None
    if not callable(fn):
        raise ValueError(f"{field}: {spec!r} is not callable")
    return fn
