"""Writers the suite had no bad-input test for, and result_to_dict against the result's own
fields (issue 16)."""
from __future__ import annotations

import json

import numpy as np
import pytest

import jaxwalras as jw


@pytest.mark.parametrize("writer,what", [
    (jw.save_multiunit_market, "jaxwalras.MultiUnitMarket"),
    (jw.save_setfunction_market, "jaxwalras.SetFunctionMarket"),
    (jw.write_cats, "jaxwalras.SetFunctionMarket"),
    (jw.save_result, "one of the library's result NamedTuples"),
])
def test_writers_refuse_what_they_cannot_write(tmp_path, writer, what):
    with pytest.raises(TypeError, match=what):
        writer("not a market", tmp_path / "out")
    assert not any(tmp_path.iterdir())                  # nothing written


def test_result_to_dict_holds_every_field_exactly():
    """Every field of the result, by name, with its dtype, shape and values (compared
    here with the NamedTuple itself), and JSON-serialisable as it stands."""
    r = jw.convexified_equilibrium(jw.examples.milgrom_watt_table1())
    d = jw.result_to_dict(r)
    assert d["type"] == "ConvexifiedResult"
    assert set(d["fields"]) == set(r._fields)
    for name in r._fields:
        v, f = np.asarray(getattr(r, name)), d["fields"][name]
        assert f["dtype"] == str(v.dtype) and f["shape"] == list(v.shape), name
        np.testing.assert_array_equal(np.asarray(f["data"], v.dtype).reshape(v.shape), v)
    assert json.loads(json.dumps(d)) == d
    with pytest.raises(TypeError, match="result: expected one of the library's result"):
        jw.result_to_dict({"prices": [0.5]})
