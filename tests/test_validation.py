"""The shared input validation (jaxwalras._validation): every class of bad input gives a
TypeError / ValueError that names the argument and the offending value *as given* (not
what a cast made of it), and good input converts exactly."""
from __future__ import annotations

import numpy as np
import pytest

from jaxwalras import _validation as V


@pytest.mark.parametrize("given, exc, shown", [
    ([1e300], ValueError, "found 1e+300"),
    ([2**63], ValueError, "found 9223372036854775808"),
    ([1, 2**63], ValueError, "found 9223372036854775808"),      # numpy makes this float64
    ([2**64], ValueError, "found 18446744073709551616"),        # ... and this an object array
    (np.array([2**64 - 1], np.uint64), ValueError, "found 18446744073709551615"),
    ([2**31], ValueError, "found 2147483648"),
    ([-(2**63)], ValueError, "must be non-negative, found -9223372036854775808"),
    ([-1e300], ValueError, "must be non-negative, found -1e+300"),
    ([float("nan")], ValueError, "contains nan"),
    ([float("-inf")], ValueError, "contains -inf"),
    ([0.5], TypeError, "non-integer value 0.5"),
    ([2**70, 0.5], TypeError, "non-integer value 0.5"),
    ([True, False], TypeError, "got booleans"),
    ([["1"]], TypeError, "got strings ('1')"),
    ([None], TypeError, "found None (NoneType)"),
    ([1j], TypeError, "got complex numbers"),
    ([[1, 2], [3]], TypeError, "nested sequences of different lengths"),
    ([[1, [2]]], TypeError, "must be a rectangular array of numbers"),
    (object(), TypeError, "must be a rectangular array of numbers"),
])
def test_as_int_array_reports_values_as_given(given, exc, shown):
    with pytest.raises(exc) as err:
        V.as_int_array(given, "values")
    assert str(err.value).startswith("values: ") and shown in str(err.value)


def test_as_int_array_converts_exactly():
    out = V.as_int_array([[3, 2**20], [0.0, 7.0]], "x")
    assert out.dtype == np.int64 and out.tolist() == [[3, 2**20], [0, 7]]
    big = V.as_int_array([2**62, -(2**62)], "x", max_abs=None, nonnegative=False)
    assert big.tolist() == [2**62, -(2**62)]
    assert V.as_int_array(np.array([True, False]), "x", allow_bool=True).tolist() == [1, 0]
    with pytest.raises(ValueError, match=r"x: values must not exceed 9223372036854775807 .*"
                                         r"9223372036854775808"):
        V.as_int_array([2**63], "x", max_abs=None)
    with pytest.raises(ValueError, match=r"x: needs at least 2 dimension\(s\), got shape \(3,\)"):
        V.as_int_array([1, 2, 3], "x", min_ndim=2)


@pytest.mark.parametrize("given, kw, exc, shown", [
    ([10**400], {}, ValueError, "100000000000...000000 (401 digits) is too large for a float"),
    ([float("nan")], {}, ValueError, "contains nan"),
    ([1e300], {"dtype": np.float32}, ValueError, "contains 1e+300 (out of range for float32)"),
    ([2.0], {"max_abs": 1.0}, ValueError, "must not exceed 1 in absolute value, found 2.0"),
    ([-0.5], {"nonnegative": True}, ValueError, "must be non-negative, found -0.5"),
    ([True], {"allow_bool": False}, TypeError, "got booleans"),
    (["a"], {}, TypeError, "got strings ('a')"),
])
def test_as_float_array_reports_values_as_given(given, kw, exc, shown):
    with pytest.raises(exc) as err:
        V.as_float_array(given, "w", **kw)
    assert str(err.value).startswith("w: ") and shown in str(err.value)


def test_as_float_array_keeps_its_old_behaviour():
    assert V.as_float_array([True, 2], "w").tolist() == [1.0, 2.0]      # bools still allowed
    assert V.as_float_array([2**70], "w").tolist() == [float(2**70)]
    assert V.as_float_array([[1, 2]], "w", dtype=np.float32).dtype == np.float32


@pytest.mark.parametrize("value, kw, exc, msg", [
    (float("nan"), dict(lo=0, hi=1), ValueError, "r: must be a finite number in [0, 1], got nan"),
    (float("inf"), dict(lo=0), ValueError, "r: must be a finite number >= 0, got inf"),
    (0.0, dict(lo=0, lo_open=True), ValueError, "r: must be a finite number > 0, got 0.0"),
    (1, dict(hi=1, hi_open=True), ValueError, "r: must be a finite number < 1, got 1"),
    (-1, {}, None, None),
    ("0.1", {}, TypeError, "r: must be a real number, got '0.1' (str)"),
    (True, {}, TypeError, "r: must be a real number, got True (bool)"),
    (np.array([0.1, 0.2]), {}, TypeError, "r: must be one real number"),
    (None, {}, TypeError, "r: must be a real number, got None (NoneType)"),
])
def test_check_number(value, kw, exc, msg):
    if exc is None:
        assert V.check_number(value, "r", **kw) == float(value)
        return
    with pytest.raises(exc) as err:
        V.check_number(value, "r", **kw)
    assert msg in str(err.value)


def test_check_integer():
    assert V.check_integer(np.int64(5), "k", lo=1) == 5
    assert V.check_integer(10**30, "k") == 10**30
    for value, exc, msg in [(0, ValueError, "k: must be an integer >= 1, got 0"),
                            (2.0, TypeError, "k: must be an integer, got 2.0 (float)"),
                            (True, TypeError, "k: must be an integer, got True (bool)"),
                            (11, ValueError, "k: must be an integer in [1, 10], got 11")]:
        with pytest.raises(exc) as err:
            V.check_integer(value, "k", lo=1, hi=10 if value == 11 else None)
        assert msg in str(err.value)


def test_format_value():
    assert V.format_value(np.float64(1e300)) == "1e+300"
    assert V.format_value(2**63) == "9223372036854775808"
    assert V.format_value(-(10**50)) == "-10000000000...000000 (51 digits)"
    assert V.format_value(np.bool_(True)) == "True"
    assert V.format_value("x" * 100).endswith("...") and len(V.format_value("x" * 100)) == 60
