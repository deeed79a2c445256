"""``leetcode_contest``: LeetCode weekly/biweekly contest problems as CodeRL+'s evaluation uses
them (manual download; split ``test``).

Input: ``<manual_dir>/leetcode_contest/*.jsonl`` (all files, sorted by name). Row fields:

* ``task_id`` (or ``id``): identifier.
* ``prompt_sft`` (preferred) or ``prompt``: the problem text shown to the model, as
  published (it already contains the ``class Solution`` stub and the answer instruction).
* ``test``: Python test code -- assert lines calling ``Solution().<method>(...)`` (a string
  or a list of lines), or a complete ``def check(candidate): ...`` definition.
* ``entry_point`` (optional): the method name; otherwise read from the first
  ``Solution().<name>(`` call in the tests.
* ``starter_code``, ``meta``/``metadata``, ``difficulty`` (optional): kept.

Tests become an assert-kind ``TestSpec``. The sandbox runs ``check`` in a process of its
own and only plain values cross to the program, so a ``Solution()`` instance cannot be
handed to the test. Instead the entry point is ``SOLUTION_CALL``, a function that programs
get appended (``SOLUTION_CALL_SOURCE``; ``coderl_jax.evals.leetcode`` does it): it calls a
method on a fresh ``Solution()`` inside the program. The test sees a stand-in class whose
methods forward there::

    def _published_check(candidate):
        Solution = candidate
        <the test lines, indented>

    def check(candidate):
        class Solution:  # stands for the program's class
            def __getattr__(self, method):
                return lambda *args, **kwargs: candidate(method, *args, **kwargs)
        _published_check(Solution)

A complete published ``check(candidate)`` definition (which receives the class) is renamed
``_published_check`` and driven the same way. The method name is kept in
``metadata["method"]``.
"""

from __future__ import annotations

import re

import tensorflow_datasets as tfds

from coderl_jax.data.builders.base import (
    FieldError,
    RecordBuilder,
    jsonl_rows,
    optional_str,
    required_str,
)
from coderl_jax.data.problems import Problem
from coderl_jax.execution.spec import TestSpec

SOURCE = "leetcode_contest"
SOLUTION_CALL = "leetcode_solution_call"  # the tests' entry point (see the module docstring)
SOLUTION_CALL_SOURCE = f"""

def {SOLUTION_CALL}(method, *args, **kwargs):
    return getattr(Solution(), method)(*args, **kwargs)
"""
_DRIVER = """

def check(candidate):
    class Solution:  # stands for the program's class: each method call runs in the program
        def __getattr__(self, method):
            return lambda *args, **kwargs: candidate(method, *args, **kwargs)

    _published_check(Solution)
"""
_METHOD_CALL = re.compile(r"Solution\(\)\s*\.\s*([A-Za-z_]\w*)\s*\(")
_CHECK_DEF = re.compile(r"^def\s+check\s*\(", re.MULTILINE)


def check_code_from_tests(test: str) -> str:
    """``check(candidate)`` source for LeetCode test code (see the module docstring)."""
    if _CHECK_DEF.search(test):
        published = _CHECK_DEF.sub("def _published_check(", test, count=1)
    else:
        lines = test.strip("\n").split("\n")
        body = "\n".join("    " + line if line.strip() else "" for line in lines)
        published = f"def _published_check(candidate):\n    Solution = candidate\n{body}\n"
    return published.rstrip("\n") + "\n" + _DRIVER


def parse_leetcode_row(row: dict) -> Problem:
    """One contest JSONL row -> ``Problem`` with assert-kind tests on ``Solution``."""
    task_id = optional_str(row, "task_id") or required_str(row, "id")
    field = "prompt_sft" if row.get("prompt_sft") else "prompt"
    statement = required_str(row, field)
    test = row.get("test")
    if isinstance(test, list) and all(isinstance(line, str) for line in test):
        test = "\n".join(test)
    if not isinstance(test, str) or "assert" not in test:
        raise FieldError("test", "expected test code with assert statements (text or lines)")
    method = optional_str(row, "entry_point")
    if method is None:
        match = _METHOD_CALL.search(test)
        if match is None:
            raise FieldError("test", "no Solution().<method>(...) call and no entry_point field")
        method = match.group(1)
    if not method.isidentifier():
        raise FieldError("entry_point", f"expected a method name, got {method!r}")
    meta = row.get("meta") or row.get("metadata") or {}
    return Problem(
        id=f"{SOURCE}/{task_id}",
        source=SOURCE,
        statement=statement,
        starter_code=optional_str(row, "starter_code"),
        tests=TestSpec(
            kind="assert", check_code=check_code_from_tests(test), entry_point=SOLUTION_CALL
        ),
        metadata={
            "method": method,
            "prompt_field": field,
            "difficulty": row.get("difficulty"),
            "meta": meta if isinstance(meta, dict) else {},
        },
    )


class LeetcodeContest(RecordBuilder):
    """LeetCode contest problems (CodeRL+ evaluation format); records are ``Problem`` JSON."""

    VERSION = tfds.core.Version("1.1.0")
    RELEASE_NOTES = {
        "1.0.0": "Tests with entry point Solution (could not pass in the sandbox).",
        "1.1.0": "Tests call methods through SOLUTION_CALL, which programs get appended.",
    }
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        "Place the LeetCode contest JSONL used by CodeRL+'s evaluation (rows with task_id, "
        "prompt_sft, test, entry_point) in <manual_dir>/leetcode_contest/ (any *.jsonl name)."
    )

    def _split_generators(self, dl_manager):
        paths = self.manual_files(
            dl_manager, ("leetcode_contest/*.jsonl", "leetcode_contest/*.jsonl.gz"), "the JSONL"
        )
        rows = jsonl_rows(paths, lambda row, index: _record(row))
        return {"test": self._generate_examples(rows, "test")}


def _record(row: dict) -> tuple[str, str]:
    problem = parse_leetcode_row(row)
    return problem.id, problem.to_json_str()
