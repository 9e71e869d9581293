"""Shared helpers for the benchmark scripts: machine description, timing, tables, JSON."""
from __future__ import annotations

import json
import os
import platform
import time
from typing import Any, Callable, Sequence

import jax
import numpy as np


def machine_info() -> dict[str, Any]:
    """What the numbers were measured on (goes into every JSON file and README table)."""
    dev = jax.devices()[0]
    info = {
        "backend": jax.default_backend(),
        "device": getattr(dev, "device_kind", str(dev)),
        "cpu_count": os.cpu_count(),
        "cpu": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "jax": jax.__version__,
        "numpy": np.__version__,
    }
    try:
        import scipy
        info["scipy"] = scipy.__version__
    except Exception:  # pragma: no cover
        pass
    return info


def timeit(fn: Callable[[], Any], *, repeat: int = 3, warmup: int = 1) -> float:
    """Best-of-``repeat`` wall time in seconds of ``fn()``; blocks on JAX outputs."""
    for _ in range(warmup):
        jax.block_until_ready(fn())
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        best = min(best, time.perf_counter() - t0)
    return best


def markdown_table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    def fmt(v: Any) -> str:
        if isinstance(v, float):
            if v == 0 or 1e-3 <= abs(v) < 1e5:
                return f"{v:.4g}"
            return f"{v:.3e}"
        return str(v)
    head = "| " + " | ".join(columns) + " |"
    sep = "|" + "|".join("---" for _ in columns) + "|"
    body = ["| " + " | ".join(fmt(r.get(c, "")) for c in columns) + " |" for r in rows]
    return "\n".join([head, sep, *body])


def write_json(path: str, payload: dict[str, Any]) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    payload = {"machine": machine_info(), **payload}
    with open(path, "w") as fh:
        json.dump(payload, fh, indent=2, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o))
