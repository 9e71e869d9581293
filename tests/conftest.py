"""Shared pytest configuration and fixtures."""
from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

# Keep JAX from grabbing all CPU threads per xdist worker and from preallocating GPU memory.
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

# CI runs the same examples every time ("default", derandomized), so a run's verdict does not
# depend on the draw; HYPOTHESIS_PROFILE=explore draws fresh random examples, ten times as
# many (tests scale their own budgets with tests/_hyp.examples), for a nightly-style run.
_common = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                     HealthCheck.data_too_large])
settings.register_profile("default", max_examples=40, derandomize=True, **_common)
settings.register_profile("explore", max_examples=400, derandomize=False, print_blob=True,
                          **_common)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


@pytest.fixture
def rng() -> np.random.Generator:
    """A fresh, seeded numpy generator per test (reproducible failures)."""
    return np.random.default_rng(12345)
