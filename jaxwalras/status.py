"""One status vocabulary for every solver result of the library.

Every solver result carries three fields with the same meaning in all three market
families:

``converged``
    ``True`` where every condition the function's docstring promises was verified by an
    independent final check (computed on the host, in float64 or exact integers), never by
    the search that produced the answer.
``status``
    an integer code from :class:`Status` (``0`` = :attr:`Status.OK` iff ``converged``);
    :data:`STATUS` maps every code to its message and :func:`status_message` formats it.
``iterations``
    the work the solver did for that market (price raises, simplex pivots, device
    iterations, purchases, markup evaluations, ...; each result documents its unit).

Codes never change meaning between families, so a batch of mixed results can be
tabulated with one legend (the model is Optimistix's ``RESULTS`` enumeration).
"""
from __future__ import annotations

import enum
from typing import Any

import numpy as np

__all__ = ["Status", "STATUS", "status_message"]


class Status(enum.IntEnum):
    """Per-market outcome codes shared by all solvers (see the module docstring).

    Examples
    --------
    >>> import jaxwalras as jw
    >>> int(jw.Status.NO_SOLUTION), jw.Status(5).name
    (3, 'INFEASIBLE')
    """

    #: every stated condition verified by the final check
    OK = 0
    #: the round / iteration budget ran out before the answer was certified
    ROUND_LIMIT = 1
    #: the start prices were not below the buyer-optimal prices (ascending auction)
    START_ABOVE_OPTIMUM = 2
    #: no outcome with the required properties exists within the search range
    NO_SOLUTION = 3
    #: the exact solver (LP / MILP / simplex) failed or returned no solution
    SOLVER_FAILED = 4
    #: the problem is infeasible (e.g. a reserve larger than total capacity)
    INFEASIBLE = 5
    #: an answer was found but the final certificate rejected it
    NOT_CERTIFIED = 6
    #: a time limit was reached (the best answer found is returned, not proven optimal)
    TIME_LIMIT = 7
    #: the answer holds only to a tolerance looser than the one requested
    TOLERANCE_LOOSENED = 8


#: ``code -> message`` for every :class:`Status` code.
STATUS: dict[int, str] = {
    Status.OK: "ok: every stated condition verified by the final check",
    Status.ROUND_LIMIT: "round limit reached before the answer was certified (raise the "
                        "round/iteration budget)",
    Status.START_ABOVE_OPTIMUM: "the start prices were not below the buyer-optimal prices: "
                                "the auction ended at prices that are not the least "
                                "Walrasian prices (no market-clearing allocation, or "
                                "Walrasian but not least); start from 0 or use "
                                "on_bad_start='restart'",
    Status.NO_SOLUTION: "no outcome with the required properties exists within the search "
                        "range (e.g. no budget-feasible markup <= max_markup)",
    Status.SOLVER_FAILED: "the exact solver (LP / MILP / simplex) failed or returned no "
                          "solution",
    Status.INFEASIBLE: "the problem is infeasible (e.g. the reserve exceeds total capacity)",
    Status.NOT_CERTIFIED: "an answer was found but the final certificate rejected it",
    Status.TIME_LIMIT: "time limit reached: best answer found, optimality not proven",
    Status.TOLERANCE_LOOSENED: "the answer holds only to a tolerance looser than the one "
                               "requested (see the result's tolerance field)",
}
STATUS = {int(k): v for k, v in STATUS.items()}


def status_message(code: int) -> str:
    """The message of one status code.

    Parameters
    ----------
    code : int or Status
        One code (a 0-d array is accepted).

    Returns
    -------
    str

    Raises
    ------
    TypeError
        ``code`` is not one integer.
    ValueError
        ``code`` is not a known status code.

    Examples
    --------
    >>> import jaxwalras as jw
    >>> jw.status_message(0)
    'ok: every stated condition verified by the final check'
    """
    try:
        c = int(np.asarray(code).item())
    except (TypeError, ValueError):
        raise TypeError(f"code: expected one integer status code, got {code!r}") from None
    if c not in STATUS:
        raise ValueError(f"code: unknown status code {c}; known codes are {sorted(STATUS)}")
    return STATUS[c]
