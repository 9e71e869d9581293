"""Hypothesis example counts that follow the active profile.

CI uses the derandomized ``default`` profile (the same examples every run, so a verdict does
not depend on the draw); ``HYPOTHESIS_PROFILE=explore`` draws fresh random examples and
ten times as many for a nightly-style run.  Tests that need a smaller budget than the
profile's write ``@settings(max_examples=examples(k))`` so that exploring still scales it.
"""
from __future__ import annotations

import os

EXPLORE = os.environ.get("HYPOTHESIS_PROFILE", "default") == "explore"


def examples(n: int) -> int:
    """``n`` examples in CI, ``10 n`` when exploring."""
    return 10 * n if EXPLORE else n
