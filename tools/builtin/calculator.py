"""A calculator the model can trust: arithmetic evaluated by an AST walker, never by `eval`."""

from __future__ import annotations

import ast
import math
import operator
import re
from collections.abc import Callable, Mapping

from verity.tools.base import ToolError, tool

__all__ = ["Number", "calculator", "evaluate", "evaluate_node"]

MAX_EXPONENT = 10_000
MAX_INT_DIGITS = 1_000
MAX_EXPRESSION_CHARS = 2_000

Number = int | float

_INT_LIMIT = 10**MAX_INT_DIGITS
# a comma before exactly three digits groups thousands, except between a function's arguments
_THOUSANDS_COMMA = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
_CALL_OPENING = re.compile(r"[A-Za-z_]\w*\s*$")

_BINARY: dict[type[ast.operator], Callable[[Number, Number], Number]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[Number], Number]] = {
    ast.UAdd: operator.pos,
    ast.USub: operator.neg,
}


def _round(value: Number, ndigits: int | None = None) -> Number:
    # int.__round__ builds 10**-ndigits, so round(1, -10**9) would hang the worker thread
    if ndigits is not None and abs(ndigits) > MAX_INT_DIGITS:
        raise ToolError(f"round() accepts at most {MAX_INT_DIGITS} digits.")
    return round(value, ndigits)


_FUNCTIONS: dict[str, Callable[..., Number]] = {
    "abs": abs,
    "round": _round,
    "min": min,
    "max": max,
    "sqrt": math.sqrt,
    "exp": math.exp,
    "log": math.log,
    "log10": math.log10,
    "sin": math.sin,
    "cos": math.cos,
    "tan": math.tan,
    "floor": math.floor,
    "ceil": math.ceil,
}
_CONSTANTS: dict[str, float] = {"pi": math.pi, "e": math.e}


def evaluate(expression: str) -> Number:
    """Evaluate an arithmetic expression. `^` is a power, as people and models write it.

    Raises:
        ToolError: the expression is not arithmetic, is too large, divides by zero, or
            overflows a floating-point number.
    """
    text = _without_thousands_commas(expression.replace("×", "*").replace("÷", "/")).strip()
    if not text:
        raise ToolError("The expression is empty. Pass arithmetic such as '12 * (3 + 4)'.")
    if len(text) > MAX_EXPRESSION_CHARS:
        raise ToolError(f"The expression is longer than {MAX_EXPRESSION_CHARS} characters.")
    # as a power, ^ binds tighter than * and from the right: 2^3^2 = 2^9, 2^3*2 = 16
    text = text.replace("^", "**")
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, RecursionError, MemoryError):
        raise ToolError(
            f"Could not parse {expression!r}. Use numbers, + - * / // % ** ^ and parentheses "
            "(nested at most 100 deep)."
        ) from None
    return _guarded(tree.body, expression, text, {}, _FUNCTIONS)


def evaluate_node(
    node: ast.expr,
    names: Mapping[str, Number] | None = None,
    functions: Mapping[str, Callable[..., Number]] | None = None,
) -> Number:
    """Evaluate a parsed arithmetic expression, with `names` as extra variables and `functions`
    as extra functions (a verifier runs small programs this way, still without `eval`). In
    Python `^` is exclusive-or: it is refused here, never read as a power or an xor.

    Raises:
        ToolError: the expression is not arithmetic, is too large, divides by zero, or
            overflows a floating-point number.
    """
    return _guarded(node, None, None, names or {}, {**_FUNCTIONS, **(functions or {})})


def _guarded(
    node: ast.expr,
    expression: str | None,
    source: str | None,
    names: Mapping[str, Number],
    functions: Mapping[str, Callable[..., Number]],
) -> Number:
    try:
        return _evaluate_tree(node, source, names, functions)
    except ZeroDivisionError:
        raise ToolError(f"Division by zero in {expression or _shown(node, source)!r}.") from None
    except (OverflowError, ValueError, TypeError) as exc:
        what = expression or _shown(node, source)
        raise ToolError(f"Cannot evaluate {what!r}: {exc}.") from None


def _without_thousands_commas(text: str) -> str:
    """Drop commas that group thousands (1,234,567), but never one between a call's arguments."""
    dropped: set[int] = set()
    calls: list[bool] = []  # for each open parenthesis: does it hold a function's arguments?
    for index, char in enumerate(text):
        if char == "(":
            calls.append(_CALL_OPENING.search(text, 0, index) is not None)
        elif char == ")" and calls:
            calls.pop()
        elif char == "," and not (calls and calls[-1]) and _THOUSANDS_COMMA.match(text, index):
            dropped.add(index)
    return "".join(char for index, char in enumerate(text) if index not in dropped)


def _evaluate_tree(
    root: ast.expr,
    source: str | None,
    names: Mapping[str, Number],
    functions: Mapping[str, Callable[..., Number]],
) -> Number:
    """Evaluate without recursion: a 1000-term sum nests 1000 deep, past Python's stack limit."""
    values: list[Number] = []
    pending: list[tuple[ast.expr, int | None]] = [(root, None)]
    while pending:
        node, arity = pending.pop()
        if arity is None:
            operands = _operands(node, source, names, functions)
            pending.append((node, len(operands)))
            pending.extend((operand, None) for operand in reversed(operands))
            continue
        arguments = values[len(values) - arity :]
        del values[len(values) - arity :]
        values.append(_apply(node, arguments, names, functions))
    return values[0]


def _operands(
    node: ast.expr,
    source: str | None,
    names: Mapping[str, Number],
    functions: Mapping[str, Callable[..., Number]],
) -> list[ast.expr]:
    """The sub-expressions `node` needs, once it is known to be allowed."""
    match node:
        case ast.Constant(value=bool()):
            raise ToolError("Booleans are not numbers here.")
        case ast.Constant(value=int() | float()):
            return []
        case ast.BinOp(op=ast.BitXor()):
            raise ToolError(
                f"{_shown(node, source)!r}: ^ is exclusive-or in Python; write ** for a power."
            )
        case ast.BinOp(left=left, op=op, right=right) if type(op) in _BINARY:
            return [left, right]
        case ast.UnaryOp(op=op, operand=operand) if type(op) in _UNARY:
            return [operand]
        case ast.Name(id=name) if name in names or name in _CONSTANTS:
            return []
        case ast.Call(func=ast.Name(id=name), args=args, keywords=[]) if name in functions:
            return list(args)
    allowed = ", ".join(sorted(_FUNCTIONS))
    raise ToolError(
        f"Unsupported syntax {_shown(node, source)!r}. Allowed: numbers, + - * / // % ** ^, "
        f"parentheses, pi, e and the functions {allowed}."
    )


def _apply(
    node: ast.expr,
    arguments: list[Number],
    names: Mapping[str, Number],
    functions: Mapping[str, Callable[..., Number]],
) -> Number:
    match node:
        case ast.Constant(value=int() | float() as value):
            return _check_size(value)
        case ast.BinOp(op=op):
            a, b = arguments
            if isinstance(op, ast.Pow):
                _check_power(a, b)
            return _check_size(_BINARY[type(op)](a, b))
        case ast.UnaryOp(op=op):
            return _UNARY[type(op)](arguments[0])
        case ast.Name(id=name):
            return names[name] if name in names else _CONSTANTS[name]
        case ast.Call(func=ast.Name(id=name)):
            return _check_size(functions[name](*arguments))
    raise AssertionError(f"no rule for {type(node).__name__}")  # _operands allowed it


def _shown(node: ast.expr, source: str | None) -> str:
    """The node's text, cut short."""
    shown = ast.get_source_segment(source, node) if source else None
    if shown is None:
        try:
            shown = ast.unparse(node)
        except RecursionError:  # a deeply nested expression cannot be printed either
            shown = "the expression"
    return shown if len(shown) <= 60 else shown[:57] + "..."


def _check_power(base: Number, exponent: Number) -> None:
    if abs(exponent) > MAX_EXPONENT and abs(base) > 1:
        raise ToolError(f"Exponent {exponent} is too large (limit {MAX_EXPONENT}).")
    # |base| >= 2**(bits - 1): reject exact int powers that must overflow before computing them
    bits = abs(base).bit_length() - 1 if isinstance(base, int) else 0
    if isinstance(exponent, int) and exponent > 0 and bits * exponent >= _INT_LIMIT.bit_length():
        raise ToolError(f"The result has more than {MAX_INT_DIGITS} digits.")


def _check_size(value: Number) -> Number:
    if isinstance(value, complex):
        raise ToolError("The result is a complex number; only real arithmetic is supported.")
    if isinstance(value, float) and not math.isfinite(value):
        raise ToolError(
            "The result is too large for a floating-point number (it overflows to infinity). "
            "Use integers for exact large results, e.g. 10**308 * 10."
        )
    if isinstance(value, int) and abs(value) >= _INT_LIMIT:
        raise ToolError(f"The result has more than {MAX_INT_DIGITS} digits.")
    return value


def _format(value: Number) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    if isinstance(value, float):
        return format(value, ".12g")
    return str(value)


@tool(read_only=True)
def calculator(expression: str) -> str:
    """Evaluate an arithmetic expression exactly and return the number.

    Use it for every calculation instead of doing arithmetic in your head.

    Args:
        expression: Arithmetic such as "(3.5 + 2) * 4" or "2 ** 10 / 8".
    """
    return _format(evaluate(expression))
