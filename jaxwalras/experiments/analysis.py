"""Fitted rates and figures from a study's results rows.

* :func:`fit_rates` fits ``log y = a + b log x`` by least squares over the rows (every
  seed is a point), per group, and reports the slope ``b`` (the empirical rate, e.g. the
  least markup ~ ``N^b`` with ``b`` near ``-1`` in Milgrom & Watt's large markets), with
  ``r^2`` and, where the study states one, the expected rate and a sanity band.
* :func:`draw_figure` draws the study's panels (mean over seeds with the min-max range,
  one line per group, fitted lines dashed) into a PNG with matplotlib's object API (no
  ``pyplot``, so no global matplotlib state changes).
"""
from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np

__all__ = ["fit_rates", "draw_figure", "select_rows", "check_figure_spec", "check_fits"]

_PANEL_KEYS = {"x", "y", "by", "where", "logx", "logy", "hline", "title", "ylabel"}
_FIT_KEYS = {"x", "y", "by", "where", "expected", "band", "label"}


def check_figure_spec(fig: Any) -> None:
    """Validate a study's ``figure`` table (ValueError naming the bad entry)."""
    if fig is None:
        return
    if not isinstance(fig, Mapping) or not isinstance(fig.get("panels"), (list, tuple)) \
            or not fig["panels"]:
        raise ValueError(f"figure: expected {{title, panels = [...]}} with at least one "
                         f"panel, got {fig!r}")
    bad = sorted(set(fig) - {"title", "panels"})
    if bad:
        raise ValueError(f"figure: unknown key(s) {bad}; allowed: title, panels")
    for k, p in enumerate(fig["panels"]):
        if not isinstance(p, Mapping) or "x" not in p or "y" not in p:
            raise ValueError(f"figure.panels[{k}]: needs at least x and y, got {p!r}")
        bad = sorted(set(p) - _PANEL_KEYS)
        if bad:
            raise ValueError(f"figure.panels[{k}]: unknown key(s) {bad}; allowed: "
                             f"{', '.join(sorted(_PANEL_KEYS))}")


def check_fits(fits: Any) -> None:
    """Validate a study's ``fits`` list (ValueError naming the bad entry)."""
    if not isinstance(fits, (list, tuple)):
        raise ValueError(f"fits: expected a list of {{x, y, ...}} tables, got {fits!r}")
    for k, f in enumerate(fits):
        if not isinstance(f, Mapping) or "x" not in f or "y" not in f:
            raise ValueError(f"fits[{k}]: needs at least x and y, got {f!r}")
        bad = sorted(set(f) - _FIT_KEYS)
        if bad:
            raise ValueError(f"fits[{k}]: unknown key(s) {bad}; allowed: "
                             f"{', '.join(sorted(_FIT_KEYS))}")
        band = f.get("band")
        if band is not None and not (isinstance(band, (list, tuple)) and len(band) == 2
                                     and band[0] <= band[1]):
            raise ValueError(f"fits[{k}].band: expected [low, high], got {band!r}")


def select_rows(rows: Sequence[Mapping[str, Any]], where: Mapping[str, Any] | None,
                fixed: Mapping[str, Any] | None = None) -> list[Mapping[str, Any]]:
    """The rows matching ``where`` (column -> value, or list of allowed values; the value
    ``"$fixed"`` means the study's base value of that parameter, i.e. the rows of a
    one-at-a-time sweep that sit at the base point in that parameter)."""
    if not where:
        return list(rows)
    out = []
    for r in rows:
        ok = True
        for key, want in where.items():
            if want == "$fixed":
                want = (fixed or {}).get(key)
            allowed = want if isinstance(want, (list, tuple)) else [want]
            if r.get(key) not in allowed:
                ok = False
                break
        if ok:
            out.append(r)
    return out


def _groups(rows: Sequence[Mapping[str, Any]], by: Any) -> dict[str, list]:
    keys = [] if by is None else ([by] if isinstance(by, str) else list(by))
    out: dict[str, list] = {}
    for r in rows:
        label = ", ".join(f"{k}={r.get(k)}" for k in keys)
        out.setdefault(label, []).append(r)
    return out


def _num(v: Any) -> float:
    if isinstance(v, bool):
        return float(v)
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def _loglog(x: np.ndarray, y: np.ndarray) -> dict:
    ok = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
    n = int(ok.sum())
    out = {"n": n, "excluded": int(len(x) - n), "slope": math.nan, "intercept": math.nan,
           "r2": math.nan}
    if n >= 2 and np.unique(x[ok]).size >= 2:
        lx, ly = np.log(x[ok]), np.log(y[ok])
        b, a = np.polyfit(lx, ly, 1)
        res = ly - (a + b * lx)
        tot = ((ly - ly.mean()) ** 2).sum()
        out.update(slope=float(b), intercept=float(a),
                   r2=float(1.0 - (res ** 2).sum() / tot) if tot > 0 else 1.0)
    return out


def fit_rates(rows: Sequence[Mapping[str, Any]], fits: Sequence[Mapping[str, Any]],
              fixed: Mapping[str, Any] | None = None) -> list[dict]:
    """Log-log least-squares rates ``y ~ x^slope``, one entry per fit and group.

    Parameters
    ----------
    rows : list of dict
        Results rows.
    fits : list of dict
        ``{"x": col, "y": col, "by": col(s), "where": {col: value(s)}, "expected": rate,
        "band": [lo, hi], "label": text}`` (``where`` as in :func:`select_rows`).  Rows
        with ``x <= 0`` or ``y <= 0`` (e.g. a
        markup of exactly 0) cannot enter a log-log fit; they are counted in ``excluded``.

    Returns
    -------
    list of dict
        ``label, x, y, group, slope, intercept, r2, n, excluded, expected, band,
        in_band`` (``in_band`` is None without a band).

    Examples
    --------
    >>> from jaxwalras.experiments import fit_rates
    >>> rows = [{"n": n, "markup": 3.0 / n} for n in (100, 1000, 10000)]
    >>> f = fit_rates(rows, [{"x": "n", "y": "markup", "expected": -1, "band": [-1.5, -0.5]}])[0]
    >>> round(f["slope"], 6), f["in_band"]
    (-1.0, True)
    """
    out = []
    for spec in fits:
        sel = select_rows(rows, spec.get("where"), fixed)
        for group, grows in _groups(sel, spec.get("by")).items():
            x = np.array([_num(r.get(spec["x"])) for r in grows])
            y = np.array([_num(r.get(spec["y"])) for r in grows])
            res = _loglog(x, y)
            band = spec.get("band")
            res.update(label=spec.get("label", f"{spec['y']} ~ {spec['x']}^b"), x=spec["x"],
                       y=spec["y"], group=group, expected=spec.get("expected"),
                       band=list(band) if band is not None else None,
                       in_band=(None if band is None or not math.isfinite(res["slope"])
                                else bool(band[0] <= res["slope"] <= band[1])))
            out.append(res)
    return out


def _series(rows: Sequence[Mapping[str, Any]], x: str, y: str, geometric: bool = False
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    by_x: dict[float, list[float]] = {}
    for r in rows:
        xv, yv = _num(r.get(x)), _num(r.get(y))
        if math.isfinite(xv) and math.isfinite(yv) and (yv > 0 or not geometric):
            by_x.setdefault(xv, []).append(yv)
    xs = np.array(sorted(by_x))
    vals = [np.array(by_x[v]) for v in xs]
    mean = [np.exp(np.log(v).mean()) if geometric else v.mean() for v in vals]
    return (xs, np.array(mean), np.array([v.min() for v in vals]),
            np.array([v.max() for v in vals]))


def draw_figure(rows: Sequence[Mapping[str, Any]], figure: Mapping[str, Any], path: str,
                fits: Sequence[Mapping[str, Any]] = (), title: str | None = None,
                fixed: Mapping[str, Any] | None = None) -> str:
    """Draw the panels of ``figure`` from ``rows`` into the PNG ``path``; returns ``path``.

    Each panel ``{"x", "y", "by", "where", "logx", "logy", "hline", "title", "ylabel"}``
    plots, per group of ``by``, the mean of ``y`` over the seeds at each ``x`` (the
    geometric mean of the positive values on a log axis) with the min-max range shaded
    (booleans are plotted as rates, unshaded).  On log-log panels, fitted rates from
    :func:`fit_rates` with the same ``x``, ``y`` and group are drawn dashed, with their
    slope in the legend.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    panels = list(figure["panels"])
    ncols = 2 if len(panels) == 4 else min(3, len(panels))
    nrows = -(-len(panels) // ncols)
    fig = Figure(figsize=(4.6 * ncols, 3.6 * nrows), dpi=90)
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, panel in zip(axes, panels):
        sel = select_rows(rows, panel.get("where"), fixed)
        x, y = panel["x"], panel["y"]
        for k, (group, grows) in enumerate(_groups(sel, panel.get("by")).items()):
            xs, mean, lo, hi = _series(grows, x, y, geometric=bool(panel.get("logy")))
            if panel.get("logx"):
                keep = xs > 0
                xs, mean, lo, hi = xs[keep], mean[keep], lo[keep], hi[keep]
            if xs.size == 0:
                continue
            color = f"C{k % 10}"
            ax.plot(xs, mean, "o-", color=color, ms=4, lw=1.4, label=group or y)
            rate = all(isinstance(r.get(y), bool) for r in grows)   # a 0/1 range says nothing
            if xs.size > 1 and not rate:
                ax.fill_between(xs, lo, hi, color=color, alpha=0.15, lw=0)
            for f in fits if panel.get("logx") and panel.get("logy") else ():
                if f["x"] == x and f["y"] == y and f["group"] == group and \
                        math.isfinite(f["slope"]) and xs.size > 1:
                    xx = np.array([xs.min(), xs.max()], float)
                    ax.plot(xx, np.exp(f["intercept"]) * xx ** f["slope"], "--", color=color,
                            lw=1.0, label=f"fit: slope {f['slope']:.2f}"
                            + (f" (theory {f['expected']:g})" if f.get("expected") is not None
                               else ""))
        if panel.get("hline") is not None:
            ax.axhline(float(panel["hline"]), color="0.4", ls=":", lw=1.0)
        if panel.get("logx"):
            ax.set_xscale("log")
        if panel.get("logy"):
            ax.set_yscale("log")
        ax.set_xlabel(x)
        ax.set_ylabel(panel.get("ylabel", y))
        ax.set_title(panel.get("title", f"{y} vs {x}"), fontsize=10)
        ax.grid(True, alpha=0.3, which="both")
        handles, labels = ax.get_legend_handles_labels()
        if handles:
            ax.legend(fontsize=6, loc="best")
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    fig.suptitle(title or figure.get("title", ""), fontsize=11)
    fig.tight_layout()
    fig.savefig(path)
    return path
