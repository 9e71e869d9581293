"""The PGLib-UC case shipped with the library (IEEE PES Power Grid Library, CC BY 4.0)."""
from __future__ import annotations

import importlib.resources
import pathlib

__all__ = ["pglib_case_path", "PGLIB_CASES"]

#: PGLib-UC cases shipped inside the package (``examples/data/pglib_uc/``)
PGLIB_CASES = ("rts_gmlc_2020-01-27",)


def pglib_case_path(name: str = "rts_gmlc_2020-01-27") -> pathlib.Path:
    """Path of a PGLib-UC case shipped with the library.

    One case is shipped: ``rts_gmlc/2020-01-27`` of PGLib-UC (the RTS-GMLC system on
    27 January 2020: 73 thermal and 81 renewable units, 48 hours), under CC BY 4.0 (licence
    and attribution next to the file).  Read it with :func:`jaxwalras.load_pglib_uc`.

    Parameters
    ----------
    name : str
        One of :data:`PGLIB_CASES`.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    ValueError
        An unknown case name.

    Examples
    --------
    >>> import jaxwalras as jw
    >>> jw.examples.pglib_case_path().name
    'rts_gmlc_2020-01-27.json'
    """
    if name not in PGLIB_CASES:
        raise ValueError(f"name: unknown shipped PGLib-UC case {name!r}; shipped: "
                         f"{list(PGLIB_CASES)} (other cases: pass their path to load_pglib_uc)")
    root = importlib.resources.files("jaxwalras") / "examples" / "data" / "pglib_uc"
    return pathlib.Path(str(root / f"{name}.json"))
