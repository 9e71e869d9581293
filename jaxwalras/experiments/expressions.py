"""Safe arithmetic expressions over the columns of one results row.

A study's ``derive`` columns (``{"relative_loss": "welfare_bound / welfare"}``) and its
``cost`` (``"n_buyers * n_objects"``) are expressions in the row's parameters and output
figures.  They come from spec files, so they are evaluated by walking a restricted Python
syntax tree (numbers, strings, column names, ``+ - * / // % **``, comparisons, ``and`` /
``or`` / ``not``, ``x if c else y`` and the functions in :data:`FUNCTIONS`), never by
``eval``.  Division by zero gives ``nan`` (or ``inf``), as in numpy.
"""
from __future__ import annotations

import ast
import math
import operator
from typing import Any, Callable, Mapping

__all__ = ["Expression", "FUNCTIONS"]

#: functions an expression may call
FUNCTIONS: dict[str, Callable[..., Any]] = {
    "abs": abs, "min": min, "max": max, "round": round, "float": float, "int": int,
    "log": math.log, "log10": math.log10, "exp": math.exp, "sqrt": math.sqrt,
    "isfinite": math.isfinite, "isnan": math.isnan,
}


def _div(a: Any, b: Any) -> float:
    try:
        return a / b
    except ZeroDivisionError:
        return math.nan if a == 0 or a != a else math.copysign(math.inf, a)


_BINOPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
           ast.Div: _div, ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod,
           ast.Pow: operator.pow}
_CMPOPS = {ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge,
           ast.Eq: operator.eq, ast.NotEq: operator.ne}


class Expression:
    """A parsed expression; ``expr(row)`` evaluates it on a mapping of column values.

    Parameters
    ----------
    source : str
        The expression text.
    name : str
        What the expression is (used in error messages), e.g. ``"derive.relative_loss"``.

    Raises
    ------
    ValueError
        The text is not an expression of the allowed form (the message names ``name``).

    Examples
    --------
    >>> from jaxwalras.experiments.expressions import Expression
    >>> e = Expression("welfare_bound / welfare", "derive.rel")
    >>> e({"welfare_bound": 1.0, "welfare": 4.0}), sorted(e.names)
    (0.25, ['welfare', 'welfare_bound'])
    >>> Expression("log10(n) if n > 0 else 0", "cost")({"n": 1000})
    3.0
    """

    def __init__(self, source: str, name: str) -> None:
        if not isinstance(source, str) or not source.strip():
            raise ValueError(f"{name}: expected an expression (a non-empty string), got "
                             f"{source!r}")
        try:
            tree = ast.parse(source.strip(), mode="eval")
        except SyntaxError as exc:
            raise ValueError(f"{name}: {source!r} is not a valid expression ({exc.msg})") from None
        self.source = source
        self.name = name
        self.names: set[str] = set()
        self._check(tree.body)
        self._tree = tree.body

    def _check(self, node: ast.AST) -> None:
        ok = (ast.BinOp, ast.UnaryOp, ast.Compare, ast.BoolOp, ast.IfExp, ast.Name,
              ast.Constant, ast.Call, ast.Load, ast.operator, ast.unaryop, ast.cmpop,
              ast.boolop)
        for sub in ast.walk(node):
            if not isinstance(sub, ok):
                raise ValueError(f"{self.name}: {self.source!r} uses {type(sub).__name__}, "
                                 "which expressions do not allow (allowed: numbers, column "
                                 "names, arithmetic, comparisons, and/or/not, x if c else y, "
                                 f"and the functions {', '.join(sorted(FUNCTIONS))})")
            if isinstance(sub, ast.BinOp) and type(sub.op) not in _BINOPS:
                raise ValueError(f"{self.name}: operator {type(sub.op).__name__} is not "
                                 "allowed in expressions")
            if isinstance(sub, ast.Call):
                if not isinstance(sub.func, ast.Name) or sub.func.id not in FUNCTIONS \
                        or sub.keywords:
                    raise ValueError(f"{self.name}: {self.source!r} calls something other "
                                     f"than {', '.join(sorted(FUNCTIONS))} (positional "
                                     "arguments only)")
            elif isinstance(sub, ast.Name) and sub.id not in FUNCTIONS:
                self.names.add(sub.id)
            if isinstance(sub, ast.Constant) and not isinstance(sub.value,
                                                                (int, float, str, bool)):
                raise ValueError(f"{self.name}: constant {sub.value!r} is not allowed")

    def __call__(self, row: Mapping[str, Any]) -> Any:
        missing = sorted(n for n in self.names if n not in row)
        if missing:
            raise KeyError(f"{self.name}: {self.source!r} names {', '.join(missing)}, which "
                           f"the row does not have (columns: {', '.join(row)})")
        return self._eval(self._tree, row)

    def _eval(self, node: ast.AST, row: Mapping[str, Any]) -> Any:
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            return row[node.id]
        if isinstance(node, ast.BinOp):
            return _BINOPS[type(node.op)](self._eval(node.left, row), self._eval(node.right, row))
        if isinstance(node, ast.UnaryOp):
            v = self._eval(node.operand, row)
            unary: dict[type, Callable[[Any], Any]] = {
                ast.USub: operator.neg, ast.UAdd: operator.pos, ast.Not: operator.not_,
                ast.Invert: operator.invert}
            return unary[type(node.op)](v)
        if isinstance(node, ast.Compare):
            left = self._eval(node.left, row)
            for op, comp in zip(node.ops, node.comparators):
                right = self._eval(comp, row)
                if not _CMPOPS[type(op)](left, right):
                    return False
                left = right
            return True
        if isinstance(node, ast.BoolOp):
            vals = (self._eval(v, row) for v in node.values)
            return all(vals) if isinstance(node.op, ast.And) else any(vals)
        if isinstance(node, ast.IfExp):
            return self._eval(node.body if self._eval(node.test, row) else node.orelse, row)
        if isinstance(node, ast.Call):
            assert isinstance(node.func, ast.Name)     # checked when the expression was parsed
            fn: Callable[..., Any] = FUNCTIONS[node.func.id]
            return fn(*(self._eval(a, row) for a in node.args))
        raise ValueError(f"{self.name}: cannot evaluate {type(node).__name__}")  # pragma: no cover

    def __repr__(self) -> str:
        return f"Expression({self.source!r})"
