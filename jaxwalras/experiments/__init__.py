"""Reproducible large-N studies: progress, durable results, figures, many processes.

A **study** is a market generator, a grid of sizes and parameters, seeds, and what to
compute (any of the library's batched solvers, with its options).  :func:`run_study` (and
``jaxwalras experiment`` on the shell) runs it in batches with a progress line, commits
each batch's rows to an SQLite store in the output folder the moment the batch finishes,
keeps ``results.csv`` (one row per grid point and seed, every parameter and every output
figure) complete after each batch, and at the end fits the rates the theory predicts and
draws a figure.  A run killed at any moment continues with ``resume=True``
(``--resume``): committed rows are not recomputed, and every market is drawn from a seed
derived from its grid point and seed index, so the table equals that of an uninterrupted
run.  Several processes (``--num-processes/--process-id/--coordinator``, or a SLURM job
step) share the grid through JAX's distributed runtime.

Built-in studies (:data:`STUDIES`): ``markup-scaling``, ``rationing-vs-markup``,
``auction-rounds``, ``cwe-welfare``, ``monotonicity``; generators (:data:`GENERATORS`)
and capabilities (:data:`CAPABILITIES`) can be combined freely in a :class:`Study` or a
TOML/JSON spec file (:func:`load_spec`).  The how-to is ``docs/experiments.md``.

References
----------
P. Milgrom and M. Watt, "Linear pricing mechanisms for markets without convexity",
EC 2022.  K. Eickhoff, S. T. McCormick, B. Peis, N. Rieken and L. Vargas Koch, "A
flow-based ascending auction to compute buyer-optimal Walrasian prices", Networks 84(2),
2024.  M. Feldman, N. Gravin and B. Lucier, "Combinatorial Walrasian equilibrium", STOC
2013.  K. Leyton-Brown, M. Pearson and Y. Shoham, "Towards a universal test suite for
combinatorial auction algorithms", EC 2000.

Examples
--------
>>> from jaxwalras import experiments as ex
>>> sorted(ex.STUDIES)
['auction-rounds', 'cwe-welfare', 'markup-scaling', 'monotonicity', 'rationing-vs-markup']
>>> ex.get_study("markup-scaling").resolve().points[-1]
{'n_buyers': 1000000}
"""
from __future__ import annotations

from .analysis import draw_figure, fit_rates
from .cache import compilation_cache
from .capabilities import CAPABILITIES, Batch, Capability
from .generators import GENERATORS, Generator
from .runner import (ExperimentError, ExperimentInputError, ExperimentResult, plan_batches,
                     run_study)
from .spec import ResolvedStudy, Study, load_spec, market_seed, parse_sizes
from .store import read_results
from .studies import STUDIES, get_study

__all__ = ["Study", "ResolvedStudy", "run_study", "ExperimentResult", "ExperimentError",
           "ExperimentInputError", "STUDIES", "get_study", "GENERATORS", "Generator",
           "CAPABILITIES", "Capability", "Batch", "load_spec", "read_results", "fit_rates",
           "draw_figure", "market_seed", "parse_sizes", "plan_batches", "compilation_cache"]
