"""Code-reasoning sets we derive offline from problems with reference solutions.

These are derived sets, not official benchmarks: they let code reasoning and test-output
prediction run without downloads, next to the LiveCodeBench sets the paper reports.

* ``humaneval_exec`` (code execution): for each HumanEval problem, every call
  ``candidate(<literal args>)`` in its test asserts (found with ``ast``: ``assert
  candidate(1, 2) == 3`` gives the input ``f(1, 2)``) becomes one question: the canonical
  solution, its docstring removed (its examples would give answers away), and the call; the
  label is the ``repr`` of what the call returns when the solution runs in the sandbox.
* ``humaneval_testoutput`` (test-output prediction): the same calls, shown with the problem's
  signature and docstring instead of the solution.
* ``synthetic_reasoning`` (code execution): for each ``coderl_synthetic`` problem, its
  reference solution and its first test: a stdin program with that input (label: the stdout
  of running it) or a function call (label: the ``repr`` of its return value).

Asserts without such a call (loops over variables, random inputs, ``assert True``) are
skipped and counted, as are calls whose run fails or whose result is not a literal. Labels
are written with set items sorted, so a derived set is the same on every build.
"""

from __future__ import annotations

import ast
import collections
from collections.abc import Callable, Sequence

from coderl_jax.data.problems import Problem
from coderl_jax.data.reasoning import ReasoningItem
from coderl_jax.execution import Job
from coderl_jax.rl.alignment_prompt import render_call

RunBatch = Callable[[list[Job]], list]  # SandboxPool.run_batch
_MARKER = "<<coderl_eval_value>>"


def python_literal(value) -> str:
    """``repr`` with set items in sorted order (sets print in hash order otherwise)."""
    if isinstance(value, (set, frozenset)):
        if not value:
            return "set()"
        return "{" + ", ".join(sorted(python_literal(v) for v in value)) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(python_literal(v) for v in value) + "]"
    if isinstance(value, tuple):
        inner = ", ".join(python_literal(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if isinstance(value, dict):
        items = (f"{python_literal(k)}: {python_literal(v)}" for k, v in value.items())
        return "{" + ", ".join(items) + "}"
    return repr(value)


def _is_literal(node: ast.expr) -> bool:
    try:
        ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False
    return True


def literal_calls(check_code: str, name: str = "candidate") -> tuple[list[list[str]], int]:
    """Arguments of each ``name(...)`` call with only literal arguments in the asserts of
    ``check_code`` (one source text per argument, keywords as ``k=v``; duplicates dropped),
    and the number of asserts that hold no such call."""
    calls: list[list[str]] = []
    skipped = 0
    for node in ast.walk(ast.parse(check_code)):
        if not isinstance(node, ast.Assert):
            continue
        found = [
            call
            for call in ast.walk(node.test)
            if isinstance(call, ast.Call)
            and isinstance(call.func, ast.Name)
            and call.func.id == name
            and all(_is_literal(a) and not isinstance(a, ast.Starred) for a in call.args)
            and all(k.arg is not None and _is_literal(k.value) for k in call.keywords)
        ]
        if not found:
            skipped += 1
        for call in found:
            args = [ast.unparse(a) for a in call.args]
            args += [f"{k.arg}={ast.unparse(k.value)}" for k in call.keywords]
            if args not in calls:
                calls.append(args)
    return calls, skipped


def without_docstring(program: str, function_name: str) -> str:
    """``program`` with the docstring of top-level function ``function_name`` removed."""
    for node in ast.parse(program).body:
        if isinstance(node, ast.FunctionDef) and node.name == function_name and node.body:
            first = node.body[0]
            is_doc = isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
            if is_doc and isinstance(first.value.value, str) and len(node.body) > 1:
                lines = program.split("\n")
                del lines[first.lineno - 1 : first.end_lineno]
                return "\n".join(lines)
    return program


def call_labels(
    programs_and_calls: Sequence[tuple[str, str]], run_batch: RunBatch, timeout_s: float
) -> list[str | None]:
    """For each ``(program, call expression)``: ``python_literal`` of what the call returns
    after the program runs (one sandboxed run each), or None where the run fails or the value
    is not a literal."""
    jobs = [
        Job(code=f"{program}\n\nprint({_MARKER!r} + repr({call}))\n", timeout_s=timeout_s)
        for program, call in programs_and_calls
    ]
    labels: list[str | None] = []
    for result in run_batch(jobs) if jobs else []:
        label = None
        if result.status == "ok" and _MARKER in result.stdout:
            text = result.stdout.rsplit(_MARKER, 1)[1].rstrip("\n")
            try:
                label = python_literal(ast.literal_eval(text))
            except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                label = None
        labels.append(label)
    return labels


def humaneval_items(
    problems: Sequence[Problem], task: str, run_batch: RunBatch, timeout_s: float = 5.0
) -> tuple[list[ReasoningItem], dict[str, int]]:
    """``humaneval_exec`` (``task="code_execution"``) or ``humaneval_testoutput``
    (``task="test_output"``) from the HumanEval problems, with counts of what was skipped."""
    source = {"code_execution": "humaneval_exec", "test_output": "humaneval_testoutput"}[task]
    counts = collections.Counter(problems=len(problems))
    pending = []  # (problem, argument texts, call expression)
    for problem in problems:
        calls, skipped = literal_calls(problem.tests.check_code)
        counts["asserts_skipped"] += skipped
        entry = problem.tests.entry_point
        pending += [(problem, args, f"{entry}({', '.join(args)})") for args in calls]
    labels = call_labels(
        [(problem.reference_solution, call) for problem, _, call in pending], run_batch, timeout_s
    )
    items = []
    per_problem = collections.Counter()
    for (problem, args, call), label in zip(pending, labels):
        if label is None:
            counts["calls_unlabelled"] += 1
            continue
        number = problem.id.split("/")[-1]
        entry = problem.tests.entry_point
        common = dict(
            id=f"{source}/{number}_{per_problem[number]}",
            source=source,
            task=task,
            expected_output=label,
            function_name=entry,
            metadata={"problem_id": problem.id},
        )
        per_problem[number] += 1
        if task == "code_execution":
            program = without_docstring(problem.reference_solution, entry)
            items.append(ReasoningItem(program=program, input=call, **common))
        else:
            items.append(
                ReasoningItem(statement=problem.starter_code, input="\n".join(args), **common)
            )
    counts["items"] = len(items)
    return items, dict(counts)


def synthetic_items(
    problems: Sequence[Problem], run_batch: RunBatch, timeout_s: float = 5.0
) -> tuple[list[ReasoningItem], dict[str, int]]:
    """``synthetic_reasoning``: one code-execution question per problem (module docstring)."""
    counts = collections.Counter(problems=len(problems))
    problems = [p for p in problems if p.reference_solution]
    stdio = [p for p in problems if p.tests.kind == "stdio"]
    calls = [p for p in problems if p.tests.kind == "call"]
    jobs = [
        Job(code=p.reference_solution, stdin=p.tests.inputs[0].encode(), timeout_s=timeout_s)
        for p in stdio
    ]
    labels = {
        p.id: r.stdout for p, r in zip(stdio, run_batch(jobs) if jobs else []) if r.status == "ok"
    }
    expressions = {
        p.id: render_call(p.reference_solution, p.tests.fn_name, p.tests.inputs[0]) for p in calls
    }
    values = call_labels(
        [(p.reference_solution, expressions[p.id]) for p in calls], run_batch, timeout_s
    )
    labels.update({p.id: v for p, v in zip(calls, values) if v is not None})
    items = []
    for p in problems:
        if p.id not in labels:
            continue
        stdin = p.tests.kind == "stdio"
        metadata = {"problem_id": p.id}
        if stdin:
            metadata.update(input_kind="stdin", output_kind="stdout")
        items.append(
            ReasoningItem(
                id=f"synthetic_reasoning/{p.id.split('/')[-1]}",
                source="synthetic_reasoning",
                task="code_execution",
                program=p.reference_solution,
                input=p.tests.inputs[0] if stdin else expressions[p.id],
                expected_output=labels[p.id],
                function_name=None if stdin else p.tests.fn_name,
                metadata=metadata,
            )
        )
    counts["unlabelled"] = counts["problems"] - len(items)
    counts["items"] = len(items)
    return items, dict(counts)
