"""Shared pytest configuration and fixtures."""
from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

# Keep JAX from grabbing all CPU threads per xdist worker and from preallocating GPU memory.
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

settings.register_profile(
    "default", deadline=None, max_examples=40,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile("default")


@pytest.fixture
def rng() -> np.random.Generator:
    """A fresh, seeded numpy generator per test (reproducible failures)."""
    return np.random.default_rng(12345)
