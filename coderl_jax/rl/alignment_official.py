"""Failed rollouts -> alignment tasks under ``semantics="official"``: the official CodeRL+
conversion (``recipe/code_extractor.py`` and ``recipe/filter.py`` of github
jiangxxxue/CODERLPLUS @ c574a90), quirks included, run in this project's sandbox.

Which rollouts (:func:`select_candidates`, in the official order): a reward above 0 drops
it; the program is the official task extractor's (the last non-empty ```` ```python ````
block of the whole completion, stripped; ``execution.extract.extract_task_code``), none ->
no task; the problem's first test input is the task input (none -> no task); the official
cyclomatic complexity (``program_analysis.official_cyclomatic_complexity``, 999 for a
program that does not parse) must lie in 0..100. The code judge's own run of the rollout
plays no part: the capture run below decides.

The capture run (:func:`capture_program`): the program is run once more, as a plain script
(no prelude, default limits) with the input on stdin and a 5 s limit, with code added that
reads ``locals()`` where it runs and prints them to stderr after a line ``___V___`` as
``json.dumps`` writes them. It keeps the names that do not start with ``_`` whose value is
not callable and whose exact type is a plain builtin (``int float str bool list dict tuple
set NoneType``, from ``builtins`` or ``__main__``), turning a top-level set into a list. Where
it goes: appended at module level after a blank line, unless the text contains both ``if
__name__`` and ``__main__`` (anywhere, comments included); then every line of it, indented
by four spaces, goes right after the last line that is not blank and not a comment (the
program is cut into lines with ``str.splitlines`` and joined with ``\\n``). So a usual main
guard gets it at the end of its body (module globals); a guard indented otherwise, a
statement after the guard, or a guard only mentioned in a comment makes the program fail.

Reading it back (:func:`read_capture`): the run must exit with status 0 (an exception,
``sys.exit(1)``, a timeout or a value ``json.dumps`` cannot write -- a nested set, a tuple key,
an int over 4300 digits -- drop the task). The expected output is stdout with line endings
made ``\\n`` and then stripped; empty -> no task. The variables are ``json.loads`` of the
first line after the first ``___V___`` in stderr; no marker (the program exited with status 0
before the capture: ``sys.exit(0)``, ``exit()``) or an unparsable line -> no variables, and
the task is kept with the output alone. V is the last K (3) captured names, in capture order
(first-binding order of the module's globals).

Per step (:func:`failures_to_tasks`): one sandbox batch runs every candidate; tasks are then
deduplicated on (input, output) in candidate order -- the first wins, and its key counts even
when its prompt then turns out too long -- and dropped when their official prompt
(``alignment_prompt.render_official_prompt``) with the chat template is longer than the
prompt limit.

Where this differs from the official code (reasons in the README, "Fidelity"): the official
dedup keeps whichever duplicate's worker finished first (nondeterministic), here the first
in rollout order; the sandbox's limits apply (1 GiB memory, 1 MiB per output stream: a run
past them is dropped, the official run has no limits) and it decodes invalid UTF-8 output
with replacement characters (the official run fails on it and drops the task).
"""

from __future__ import annotations

import collections
import dataclasses
import json
from collections.abc import Callable, Sequence
from typing import Any

from coderl_jax.execution.extract import extract_task_code
from coderl_jax.rl.alignment_task import AlignmentConfig, AlignmentTask, CodeRollout
from coderl_jax.rl.program_analysis import official_cyclomatic_complexity

CAPTURE_MARKER = "___V___"
CAPTURE_TIMEOUT_S = 5.0  # the official subprocess.run timeout
COMPLEXITY_WINDOW = (0, 100)  # the official min_complexity, max_complexity

# Runs in the program's own namespace, after everything else: it binds only names that the
# capture itself drops, and only after reading ``locals()``, and calls the same builtins the
# official capture calls (a program that rebinds one fails alike).
_CAPTURE_TEXT = """
# alignment task: the final values of the program's plain variables
__captured__ = {__name_: __value_ for __name_, __value_ in locals().items()
    if not __name_.startswith('_') and not callable(__value_)
    and type(__value_).__module__ in ('builtins', '__main__')
    and type(__value_).__name__ in ('int', 'float', 'str', 'bool', 'list', 'dict', 'tuple', 'set', 'NoneType')}
for __name_, __value_ in __captured__.items():
    if isinstance(__value_, set):
        __captured__[__name_] = list(__value_)
import sys, json
print("___V___", file=sys.stderr)
print(json.dumps(__captured__), file=sys.stderr)
"""


def capture_program(code: str) -> str:
    """``code`` with the capture added where the official conversion adds it (module
    docstring): appended, or inserted by the main-guard rule."""
    if "if __name__" not in code or "__main__" not in code:
        return f"{code}\n\n{_CAPTURE_TEXT}"
    lines = code.splitlines()
    at = len(lines)
    for i in range(len(lines) - 1, -1, -1):
        text = lines[i].strip()
        if text and not text.startswith("#"):
            at = i + 1
            break
    lines[at:at] = ["    " + line for line in _CAPTURE_TEXT.splitlines()]
    return "\n".join(lines)


def _universal_newlines(text: str) -> str:
    # What subprocess.run(text=True) hands the official code.
    return text.replace("\r\n", "\n").replace("\r", "\n")


def read_capture(stdout: str, stderr: str) -> tuple[str, Any]:
    """``(expected output, captured value)`` of a capture run that exited with status 0: the
    stripped stdout, and the JSON value after the marker (``{}`` without one; anything else
    than a dict means the task cannot be made)."""
    output = _universal_newlines(stdout).strip()
    stderr = _universal_newlines(stderr)
    if CAPTURE_MARKER not in stderr:
        return output, {}
    line = stderr[stderr.index(CAPTURE_MARKER) + len(CAPTURE_MARKER) :].strip().split("\n")[0]
    try:
        return output, json.loads(line) if line else {}
    except ValueError:  # json.JSONDecodeError, or an int too long to read back
        return output, {}


def task_code(candidate: CodeRollout) -> str | None:
    """The program the official conversion builds a task from (module docstring)."""
    if candidate.completion is not None:
        return extract_task_code(candidate.completion, "official")
    return candidate.program.strip() or None


def select_candidates(
    rollouts: Sequence[CodeRollout], complexity_window: tuple[int, int] | None = None
) -> tuple[list[CodeRollout], dict[str, int]]:
    """Rollouts the official conversion runs, each with ``program`` set to its task code,
    and drop counts (module docstring). ``complexity_window`` None is the official 0..100."""
    low, high = complexity_window or COMPLEXITY_WINDOW
    counts = collections.Counter()
    selected = []
    for rollout in rollouts:
        code = task_code(rollout)
        if code is None:
            counts["drop/no_program"] += 1
        elif rollout.input_kind not in ("stdin", "call"):
            counts["drop/no_input"] += 1
        elif not low <= official_cyclomatic_complexity(code) <= high:
            counts["drop/complexity"] += 1
        elif rollout.reward > 0:
            counts["drop/passed"] += 1
        else:
            selected.append(dataclasses.replace(rollout, program=code))
    counts["selected"] = len(selected)
    return selected, dict(counts)


def failures_to_tasks(
    candidates: Sequence[CodeRollout],
    run_batch: Callable[[list], list],
    *,
    step: int,
    config: AlignmentConfig,
    count_tokens: Callable[[str], int] | None,
    job_factory: Callable[..., Any],
) -> tuple[list[AlignmentTask], dict[str, int]]:
    """The official conversion of selected candidates (their ``program`` is the task code):
    one sandbox batch of capture runs, then tasks, dedup and the prompt limit. Arguments as
    ``coderl_jax.rl.alignment.failures_to_tasks``; returns ``(tasks, counts)``."""
    counts = collections.Counter()
    runnable, jobs = [], []
    for candidate in candidates:
        try:
            stdin = candidate.stdin.encode("utf-8")
        except UnicodeEncodeError:  # the official run cannot write it either
            counts["drop/execution_error"] += 1
            continue
        runnable.append(candidate)
        jobs.append(
            job_factory(
                code=capture_program(candidate.program),
                stdin=stdin,
                call=None,
                trace=False,
                timeout_s=CAPTURE_TIMEOUT_S,
            )
        )
    results = run_batch(jobs) if jobs else []
    if len(results) != len(jobs):
        raise ValueError(f"run_batch returned {len(results)} results for {len(jobs)} jobs")
    tasks, seen = [], set()
    for candidate, result in zip(runnable, results):
        task, reason = _task_from_run(candidate, result, step, config.max_variables)
        if task is not None and config.dedup_input_output:
            key = (task.stdin, task.expected_output)
            if key in seen:
                task, reason = None, "duplicate_input_output"
            seen.add(key)
        if task is not None and config.max_prompt_tokens is not None:
            if count_tokens(task.prompt()) > config.max_prompt_tokens:
                task, reason = None, "prompt_too_long"
        if task is None:
            counts[f"drop/{reason}"] += 1
        else:
            tasks.append(task)
    counts["tasks"] = len(tasks)
    return tasks, dict(counts)


def _task_from_run(
    candidate: CodeRollout, result: Any, step: int, max_variables: int
) -> tuple[AlignmentTask | None, str]:
    if result.status != "ok" or result.exit_code != 0:
        return None, "execution_error"
    output, captured = read_capture(result.stdout or "", result.stderr or "")
    if not output:
        return None, "empty_output"
    if not isinstance(captured, dict):  # a program that printed a marker of its own
        return None, "bad_capture"
    names = list(captured)[-max_variables:]
    task = AlignmentTask(
        program=candidate.program,
        input_kind="stdin",
        stdin=candidate.stdin,
        call=None,
        variables=tuple(names),
        labels={name: captured[name] for name in names},
        expected_output=output,
        problem_id=candidate.problem_id,
        step=step,
        semantics="official",
    )
    return task, "ok"
