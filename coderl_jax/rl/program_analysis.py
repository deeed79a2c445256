"""Static facts about a Python program, read with ``ast`` (no execution).

Used by alignment-task construction: the cyclomatic-complexity window on candidates (this
project's measure, and the official CodeRL+ one), the ``loops`` variable-selection policy,
and how a call-based program is shown in a prompt (module function vs. LeetCode-style
``Solution`` method).
"""

from __future__ import annotations

import ast
import warnings


def parse_quietly(program: str) -> ast.Module | None:
    """``ast.parse(program)``, or None when it does not parse. The compiler's
    warnings (``x is 1``, invalid escapes: common in generated code) are not printed."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SyntaxWarning; DeprecationWarning before 3.12
        try:
            return ast.parse(program)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            return None


def cyclomatic_complexity(program: str) -> int | None:
    """McCabe complexity of the whole program: 1 + decision points, or None if unparsable.

    Decision points: ``if``/``elif``, ``for``, ``while``, ``except`` clauses, conditional
    expressions, each comprehension ``for`` and ``if``, ``match`` cases, ``assert``, and each
    extra operand of ``and``/``or``. Summed over all functions (one number per program).
    """
    tree = parse_quietly(program)
    if tree is None:
        return None
    decisions = 0
    for node in ast.walk(tree):
        if isinstance(node, (ast.If, ast.For, ast.AsyncFor, ast.While, ast.IfExp, ast.Assert)):
            decisions += 1
        elif isinstance(node, (ast.ExceptHandler, ast.match_case)):
            decisions += 1
        elif isinstance(node, ast.comprehension):
            decisions += 1 + len(node.ifs)
        elif isinstance(node, ast.BoolOp):
            decisions += len(node.values) - 1
    return 1 + decisions


OFFICIAL_UNPARSABLE_COMPLEXITY = 999


def official_cyclomatic_complexity(program: str) -> int:
    """The complexity the official CodeRL+ conversion filters on (``recipe/filter.py``,
    ``SimpleCodeFilter.calculate_cyclomatic_complexity``): 1 + the number of ``if``/``elif``,
    ``while``, ``for`` and ``async for`` statements + ``except`` clauses + each extra operand
    of ``and``/``or``; 999 when the program does not parse. Conditional expressions,
    comprehensions, ``assert`` and ``match`` do not count (unlike
    :func:`cyclomatic_complexity`)."""
    tree = parse_quietly(program)
    if tree is None:
        return OFFICIAL_UNPARSABLE_COMPLEXITY
    decisions = 0
    for node in ast.walk(tree):
        if isinstance(node, (ast.If, ast.While, ast.For, ast.AsyncFor, ast.ExceptHandler)):
            decisions += 1
        elif isinstance(node, ast.BoolOp):
            decisions += len(node.values) - 1
    return 1 + decisions


class _LoopAssignments(ast.NodeVisitor):
    """Names bound (``Store`` context) inside a loop of their own scope."""

    def __init__(self):
        self.loop_depth = 0
        self.names: set[str] = set()

    def _loop(self, node: ast.AST) -> None:
        self.loop_depth += 1
        self.generic_visit(node)
        self.loop_depth -= 1

    def _new_scope(self, node: ast.AST) -> None:
        # A function defined in a loop does not run in it; comprehensions have own scopes.
        saved, self.loop_depth = self.loop_depth, 0
        self.generic_visit(node)
        self.loop_depth = saved

    visit_For = visit_AsyncFor = visit_While = _loop
    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = visit_ClassDef = _new_scope
    visit_ListComp = visit_SetComp = visit_DictComp = visit_GeneratorExp = _new_scope

    def visit_Name(self, node: ast.Name) -> None:
        if self.loop_depth and isinstance(node.ctx, ast.Store):
            self.names.add(node.id)


def names_assigned_in_loops(program: str) -> set[str]:
    """Plain names assigned inside ``for``/``while`` loops (targets included); empty set if
    the program does not parse."""
    tree = parse_quietly(program)
    if tree is None:
        return set()
    visitor = _LoopAssignments()
    visitor.visit(tree)
    return visitor.names


def defines_solution_method(program: str, name: str) -> bool:
    """Whether the program has a module-level ``class Solution`` with a method ``name`` (and
    no module-level function ``name``, which the harness would call first)."""
    tree = parse_quietly(program)
    if tree is None:
        return False
    functions = (ast.FunctionDef, ast.AsyncFunctionDef)
    if any(isinstance(node, functions) and node.name == name for node in tree.body):
        return False
    return any(
        isinstance(node, ast.ClassDef)
        and node.name == "Solution"
        and any(isinstance(item, functions) and item.name == name for item in node.body)
        for node in tree.body
    )
