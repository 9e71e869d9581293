"""File formats: JSON for every market family and every result, and the CATS format.

Every reader validates against a written JSON Schema (``jaxwalras/formats/schemas``) with
a maintained validator (``jsonschema``), rejects unknown keys by their path, keeps names,
and raises :class:`FormatError`, whose message is one line naming the file, the place in
it and what is wrong.
"""
from __future__ import annotations

from ._common import FormatError
from .cats import CatsMarket, read_cats, write_cats
from .menu import (load_menu_economy, menu_economy_from_dict, menu_economy_to_dict,
                   save_menu_economy)
from .multiunit import (load_multiunit_market, multiunit_market_from_dict,
                        multiunit_market_to_dict, save_multiunit_market)
from .results import (load_result, result_from_dict, result_from_json, result_to_dict,
                      result_to_json, save_result)
from .setfunction import (load_setfunction_market, save_setfunction_market,
                          setfunction_market_from_dict, setfunction_market_to_dict, xor_bids)

__all__ = ["FormatError", "CatsMarket", "read_cats", "write_cats", "load_menu_economy",
           "save_menu_economy", "menu_economy_from_dict", "menu_economy_to_dict",
           "load_multiunit_market",
           "save_multiunit_market", "multiunit_market_from_dict", "multiunit_market_to_dict",
           "load_setfunction_market", "save_setfunction_market", "setfunction_market_from_dict",
           "setfunction_market_to_dict", "xor_bids", "result_to_dict", "result_from_dict",
           "result_to_json", "result_from_json", "save_result", "load_result"]
