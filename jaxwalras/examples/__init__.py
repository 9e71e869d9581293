"""Built-in example markets and workload generators (``jw.examples``).

Each area keeps its examples in its own module; this package re-exports them.
"""
from __future__ import annotations
from .milgrom_watt import milgrom_watt_table1, milgrom_watt_random, random_menu_economy
from .combinatorial import shirts, shoes
from .large_markets import large_single_good_market, fixed_cost_economy
from .pglib_cases import pglib_case_path
