"""Small programs a verifier has the model write, run without `eval`: arithmetic on named values.

A program is simple Python: assignments of arithmetic to names (`eggs = 16 - 3 - 4`,
`total += 2`), `if` on comparisons, `for` over a `range`, optionally inside a function without
parameters that returns the result, and `print(...)` of the result. Expressions go through the
calculator's AST walker, so nothing but arithmetic ever runs: no imports, attributes,
subscripts or calls except the calculator's functions plus `int`, `float` and `sum` of listed
values. Every statement run counts against a budget, so loops end. Anything else makes the
program unreadable, never executed.
"""

from __future__ import annotations

import ast
import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from verity.tools.base import ToolError
from verity.tools.builtin.calculator import Number, evaluate_node

__all__ = ["ProgramError", "ProgramRun", "extract_code", "run_program"]

MAX_STATEMENTS = 1_000
MAX_PROGRAM_CHARS = 4_000
_ANSWER_NAMES = ("answer", "result", "total", "solution")
_FENCE = re.compile(r"```(?:python|py)?[ \t]*\n(.*?)(?:```|\Z)", re.DOTALL)
_EXTRA_FUNCTIONS = {"int": int, "float": float}
_COMPARE: dict[type[ast.cmpop], Callable[[Number, Number], bool]] = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}
_MATH_NAMES = {"floor", "ceil", "sqrt", "exp", "log", "log10", "sin", "cos", "tan", "pi", "e"}


class ProgramError(ValueError):
    """The program is not straight-line arithmetic, or its arithmetic fails."""


@dataclass
class ProgramRun:
    """What a program computed."""

    value: Number
    """The result: what it printed, else `answer`, else a function's return value, else
    `result` or `total`, else the last value it assigned."""
    names: dict[str, Number] = field(default_factory=dict)
    """Every value it named, for the feedback."""


def extract_code(text: str) -> str:
    """The program in a model's reply: the first fenced block, else the reply itself."""
    match = _FENCE.search(text)
    return (match.group(1) if match else text).strip()


def run_program(source: str) -> ProgramRun:
    """Run `source` as straight-line arithmetic and return what it computed.

    Raises:
        ProgramError: the program is empty, too long, not straight-line arithmetic, fails to
            compute, or names no result.
    """
    if len(source) > MAX_PROGRAM_CHARS:
        raise ProgramError(f"the program is longer than {MAX_PROGRAM_CHARS} characters")
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError) as exc:
        raise ProgramError(f"the program does not parse: {exc}") from None
    runner = _Runner()
    runner.block(tree.body, top=True)
    value = runner.result()
    if isinstance(value, float) and not math.isfinite(value):
        raise ProgramError("the program's result is not a finite number")
    return ProgramRun(value=value, names=dict(runner.names))


class _Runner:
    def __init__(self) -> None:
        self.names: dict[str, Number] = {}
        self.functions: dict[str, list[ast.stmt]] = {}
        self.active: set[str] = set()
        self.called = False
        self.returned: Number | None = None
        self.printed: Number | None = None
        self.last: Number | None = None
        self.statements = 0

    def result(self) -> Number:
        if self.printed is not None:
            return self.printed
        if "answer" in self.names:
            return self.names["answer"]
        if self.returned is None and self.functions and not self.called:
            self.call(list(self.functions)[-1])  # `def solution(): ...` written, never called
        if self.returned is not None:
            return self.returned
        for name in _ANSWER_NAMES[1:]:
            if name in self.names:
                return self.names[name]
        if self.last is not None:
            return self.last
        raise ProgramError("the program computes no result (assign it to `answer`)")

    def block(self, statements: list[ast.stmt], *, top: bool = False) -> bool:
        """Run `statements`; True when one of them returned from the current function."""
        for statement in statements:
            self.statements += 1
            if self.statements > MAX_STATEMENTS:
                raise ProgramError(f"the program runs more than {MAX_STATEMENTS} statements")
            if self.statement(statement, top=top):
                return True
        return False

    def statement(self, node: ast.stmt, *, top: bool) -> bool:
        """Run one statement; True when it returns from the current function."""
        match node:
            case ast.Import(names=[ast.alias(name="math")]) | ast.ImportFrom(module="math"):
                return False
            case ast.Expr(value=ast.Constant(value=str())) | ast.Pass():  # a docstring
                return False
            case ast.If(test=test, body=body, orelse=orelse):
                return self.block(body if self.truth(test) else orelse)
            case ast.For(
                target=ast.Name(id=name),
                iter=ast.Call(func=ast.Name(id="range"), args=bounds, keywords=[]),
                body=body,
                orelse=[],
            ) if 1 <= len(bounds) <= 3:
                for index in range(*(self.integer(bound) for bound in bounds)):
                    self.names[name] = index
                    if self.block(body):
                        return True
            case ast.FunctionDef(name=name, args=args) if top and not _has_parameters(args):
                self.functions[name] = node.body
                return False
            case ast.Assign(targets=targets, value=value):
                self.assign(targets, value)
            case ast.AnnAssign(target=ast.Name(id=name), value=value) if value is not None:
                self.names[name] = self.last = self.value(value)
            case ast.AugAssign(target=ast.Name(id=name), op=op, value=value):
                combined = ast.BinOp(left=ast.Name(id=name), op=op, right=value)
                self.names[name] = self.last = self.value(combined)
            case ast.Return(value=value) if value is not None and not top:
                self.returned = self.value(value)
                return True
            case ast.Expr(value=ast.Call(func=ast.Name(id="print"), args=[*_, argument])):
                self.printed = self.value(_printed(argument))
            case ast.Expr(value=ast.Call(func=ast.Name(id=name), args=[])) if (
                name in self.functions
            ):
                self.call(name)
            case ast.Expr(value=value) if top:  # a bare expression, as in a notebook cell
                self.last = self.value(value)
            case _:
                raise ProgramError(f"unsupported statement: {_source(node)}")
        return False

    def assign(self, targets: list[ast.expr], value: ast.expr) -> None:
        for target in targets:
            match target, value:
                case ast.Name(id=name), _:
                    self.names[name] = self.last = self.value(value)
                case ast.Tuple(elts=names), ast.Tuple(elts=values) if len(names) == len(values):
                    for each, item in zip(names, values, strict=True):
                        self.assign([each], item)
                case _:
                    raise ProgramError(f"unsupported assignment to {_source(target)}")

    def integer(self, node: ast.expr) -> int:
        value = self.value(node)
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if not isinstance(value, int):
            raise ProgramError(f"range() needs whole numbers, not {value}")
        return value

    def truth(self, node: ast.expr) -> bool:
        """A condition: comparisons of arithmetic, joined by `and`, `or`, `not`."""
        match node:
            case ast.BoolOp(op=ast.And(), values=values):
                return all(self.truth(value) for value in values)
            case ast.BoolOp(op=ast.Or(), values=values):
                return any(self.truth(value) for value in values)
            case ast.UnaryOp(op=ast.Not(), operand=operand):
                return not self.truth(operand)
            case ast.Compare(left=left, ops=ops, comparators=comparators):
                if not all(type(op) in _COMPARE for op in ops):
                    raise ProgramError(f"unsupported comparison: {_source(node)}")
                numbers = [self.value(left), *(self.value(c) for c in comparators)]
                pairs = zip(ops, numbers, numbers[1:], strict=False)
                return all(_COMPARE[type(op)](a, b) for op, a, b in pairs)
        return self.value(node) != 0

    def call(self, name: str) -> Number:
        if name in self.active:
            raise ProgramError(f"{name}() calls itself")
        self.active.add(name)
        self.called = True
        self.returned = None
        self.block(self.functions[name])
        self.active.discard(name)
        if self.returned is None:
            raise ProgramError(f"{name}() returns no number")
        return self.returned

    def value(self, node: ast.expr) -> Number:
        node = _SumsAsAdditions().visit(_without_math_prefix(node))
        calls = {
            n.func.id
            for n in ast.walk(node)
            if isinstance(n, ast.Call)
            and isinstance(n.func, ast.Name)
            and n.func.id in self.functions
        }
        names = dict(self.names)
        for name in calls:
            names[f"__call_{name}"] = self.call(name)
        if calls:
            node = _CallsAsNames(calls).visit(node)
        try:
            return evaluate_node(node, names, _EXTRA_FUNCTIONS)
        except ToolError as exc:
            raise ProgramError(str(exc)) from None


def _has_parameters(args: ast.arguments) -> bool:
    return bool(args.posonlyargs or args.args or args.vararg or args.kwonlyargs or args.kwarg)


def _without_math_prefix(node: ast.expr) -> ast.expr:
    """`math.floor(x)` as `floor(x)`: the calculator has the functions, not the module."""

    class Strip(ast.NodeTransformer):
        def visit_Attribute(self, attribute: ast.Attribute) -> ast.AST:
            value = attribute.value
            if isinstance(value, ast.Name) and value.id == "math" and attribute.attr in _MATH_NAMES:
                return ast.copy_location(ast.Name(id=attribute.attr, ctx=ast.Load()), attribute)
            return self.generic_visit(attribute)

    return Strip().visit(node)  # type: ignore[no-any-return]


def _printed(argument: ast.expr) -> ast.expr:
    """What a print shows: an f-string's last `{value}`, else the argument itself."""
    if isinstance(argument, ast.JoinedStr):
        values = [v.value for v in argument.values if isinstance(v, ast.FormattedValue)]
        if values:
            return values[-1]
    return argument


class _SumsAsAdditions(ast.NodeTransformer):
    """`sum([a, b, c])` as `a + b + c`: the calculator has no lists."""

    def visit_Call(self, call: ast.Call) -> ast.AST:
        match call:
            case ast.Call(
                func=ast.Name(id="sum"), args=[ast.List(elts=items) | ast.Tuple(elts=items)]
            ) if items:
                total: ast.expr = items[0]
                for item in items[1:]:
                    total = ast.BinOp(left=total, op=ast.Add(), right=item)
                return self.generic_visit(ast.copy_location(total, call))
        return self.generic_visit(call)


class _CallsAsNames(ast.NodeTransformer):
    def __init__(self, functions: set[str]) -> None:
        self.functions = functions

    def visit_Call(self, call: ast.Call) -> ast.AST:
        if isinstance(call.func, ast.Name) and call.func.id in self.functions and not call.args:
            return ast.copy_location(ast.Name(id=f"__call_{call.func.id}", ctx=ast.Load()), call)
        return self.generic_visit(call)


def _source(node: ast.AST) -> str:
    try:
        return ast.unparse(node).splitlines()[0][:80]
    except RecursionError:
        return type(node).__name__
