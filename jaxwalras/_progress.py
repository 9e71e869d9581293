"""Progress bars for long calls (large batches, many rounds, experiments).

Convention: library calls are silent by default, as befits code inside scripts and
notebooks that print their own output; ``progress=True`` (or the environment variable
``JAXWALRAS_PROGRESS=1``) shows a ``tqdm`` bar on standard error.  The command line shows
bars when standard error is a terminal (``--no-progress`` turns them off).
"""
from __future__ import annotations

import os
import sys
from typing import Any

__all__ = ["Progress", "progress_enabled"]


def progress_enabled(progress: bool | None) -> bool:
    """Resolve a ``progress=`` argument: ``None`` reads ``JAXWALRAS_PROGRESS``."""
    if progress is None:
        return os.environ.get("JAXWALRAS_PROGRESS", "").strip().lower() in ("1", "true", "yes")
    if not isinstance(progress, (bool, int)):
        raise TypeError(f"progress: must be True, False or None, got {progress!r}")
    return bool(progress)


class Progress:
    """A ``tqdm`` bar on standard error, or nothing when disabled (same interface)."""

    def __init__(self, total: int | None, desc: str, *, unit: str = "it",
                 enabled: bool | None = None) -> None:
        self._bar: Any = None
        if progress_enabled(enabled):
            from tqdm.auto import tqdm
            self._bar = tqdm(total=total, desc=desc, unit=unit, file=sys.stderr,
                             mininterval=0.5, dynamic_ncols=True, leave=False)

    def update(self, n: int = 1, **postfix: Any) -> None:
        if self._bar is not None:
            if postfix:
                self._bar.set_postfix(postfix, refresh=False)
            self._bar.update(n)

    def set_total(self, total: int) -> None:
        if self._bar is not None:
            self._bar.total = total
            self._bar.refresh()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
