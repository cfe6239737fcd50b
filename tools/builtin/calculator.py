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
# a comma before exactly three digits groups thousands; any other one separates arguments
_THOUSANDS_COMMA = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")

_BINARY: dict[type[ast.operator], Callable[[Number, Number], Number]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
    ast.BitXor: operator.pow,  # people and models write 2^10 for a power, not for xor
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
    """Evaluate an arithmetic expression.

    Raises:
        ToolError: the expression is not arithmetic, is too large, or divides by zero.
    """
    text = _THOUSANDS_COMMA.sub("", expression.replace("×", "*").replace("÷", "/")).strip()
    if not text:
        raise ToolError("The expression is empty. Pass arithmetic such as '12 * (3 + 4)'.")
    if len(text) > MAX_EXPRESSION_CHARS:
        raise ToolError(f"The expression is longer than {MAX_EXPRESSION_CHARS} characters.")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError:
        raise ToolError(
            f"Could not parse {expression!r}. Use numbers, + - * / // % ** and parentheses."
        ) from None
    return _guarded(tree.body, expression, {}, _FUNCTIONS)


def evaluate_node(
    node: ast.expr,
    names: Mapping[str, Number] | None = None,
    functions: Mapping[str, Callable[..., Number]] | None = None,
) -> Number:
    """Evaluate a parsed arithmetic expression, with `names` as extra variables and `functions`
    as extra functions (a verifier runs small programs this way, still without `eval`).

    Raises:
        ToolError: the expression is not arithmetic, is too large, or divides by zero.
    """
    return _guarded(node, None, names or {}, {**_FUNCTIONS, **(functions or {})})


def _guarded(
    node: ast.expr,
    text: str | None,
    names: Mapping[str, Number],
    functions: Mapping[str, Callable[..., Number]],
) -> Number:
    try:
        return _evaluate_node(node, names, functions)
    except ZeroDivisionError:
        raise ToolError(f"Division by zero in {text or _source(node)!r}.") from None
    except (OverflowError, ValueError, TypeError, RecursionError) as exc:
        raise ToolError(f"Cannot evaluate {text or _source(node)!r}: {exc}.") from None


def _source(node: ast.expr) -> str:
    try:
        return ast.unparse(node)[:200]
    except RecursionError:  # a deeply nested expression cannot be printed either
        return "the expression"


def _evaluate_node(
    node: ast.expr,
    names: Mapping[str, Number],
    functions: Mapping[str, Callable[..., Number]],
) -> Number:
    match node:
        case ast.Constant(value=bool()):
            raise ToolError("Booleans are not numbers here.")
        case ast.Constant(value=int() | float() as value):
            return value
        case ast.BinOp(left=left, op=op, right=right) if type(op) in _BINARY:
            a, b = _evaluate_node(left, names, functions), _evaluate_node(right, names, functions)
            if isinstance(op, ast.Pow | ast.BitXor):
                _check_power(a, b)
            return _check_size(_BINARY[type(op)](a, b))
        case ast.UnaryOp(op=op, operand=operand) if type(op) in _UNARY:
            return _UNARY[type(op)](_evaluate_node(operand, names, functions))
        case ast.Name(id=name) if name in names:
            return names[name]
        case ast.Name(id=name) if name in _CONSTANTS:
            return _CONSTANTS[name]
        case ast.Call(func=ast.Name(id=name), args=args, keywords=[]) if name in functions:
            values = [_evaluate_node(arg, names, functions) for arg in args]
            return _check_size(functions[name](*values))
    allowed = ", ".join(sorted(_FUNCTIONS))
    raise ToolError(
        f"Unsupported syntax {ast.unparse(node)!r}. Allowed: numbers, + - * / // % ** ^, "
        f"parentheses, pi, e and the functions {allowed}."
    )


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
