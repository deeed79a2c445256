"""Programs as LeetCode-style evaluations run them.

LeetCode's Python judge runs a submission with the common standard-library modules already
imported and calls ``Solution().<method>(...)``. The public evaluations of LeetCode contest
and LiveCodeBench problems mimic that: they put an import header before the extracted code,
and for class-based problems they need a ``class Solution``. ``leetcode_program`` does both:

* ``IMPORT_PRELUDE`` (typing names, collections, heapq, bisect, math, itertools, functools,
  string, re, ...) goes first, so ``List[int]`` or ``Counter`` without imports still work;
* when the code defines no ``class Solution`` but a top-level function named like the
  method, a ``Solution`` class whose method forwards to that function is appended (passing
  the instance along when the function's first parameter is ``self``, i.e. a method copied
  out of its class);
* for ``leetcode_contest`` problems (``method`` given), the tests' entry point
  ``SOLUTION_CALL_SOURCE`` (see ``coderl_jax.data.builders.leetcode``) is appended last.
"""

from __future__ import annotations

import ast

from coderl_jax.data.builders.leetcode import SOLUTION_CALL_SOURCE

IMPORT_PRELUDE = """\
import bisect
import collections
import functools
import heapq
import itertools
import math
import operator
import re
import string
import sys
from bisect import *
from collections import *
from functools import *
from heapq import *
from itertools import *
from math import *
from typing import *

sys.setrecursionlimit(100000)
"""


def _top_level(code: str) -> tuple[set[str], dict[str, ast.FunctionDef]]:
    try:
        body = ast.parse(code).body
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return set(), {}
    classes = {node.name for node in body if isinstance(node, ast.ClassDef)}
    functions = {node.name: node for node in body if isinstance(node, ast.FunctionDef)}
    return classes, functions


def leetcode_program(code: str, method: str | None) -> str:
    """``code`` with the import prelude and, for a LeetCode contest problem (``method``
    given), a forwarding ``class Solution`` if needed and the tests' entry point."""
    program = f"{IMPORT_PRELUDE}\n{code}"
    if method is None:
        return program
    classes, functions = _top_level(code)
    if "Solution" not in classes and method in functions:
        params = functions[method].args.posonlyargs + functions[method].args.args
        receiver = "self, " if params and params[0].arg == "self" else ""
        program = (
            f"{program.rstrip()}\n\n\nclass Solution:\n"
            f"    def {method}(self, *args, **kwargs):\n"
            f"        return {method}({receiver}*args, **kwargs)\n"
        )
    return program.rstrip("\n") + "\n" + SOLUTION_CALL_SOURCE
