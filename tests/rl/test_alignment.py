"""Failure -> alignment task conversion, variable selection, prompts, end to end to rewards.

The sandbox (tracing) is merged separately. Until then the conversion tests replay traced
results computed by hand for the hand-written programs below (``RecordedSandbox``); their
stdout/return values are checked against real Python execution in
``test_recorded_outputs_match_python``, and the traces (values and order) were checked
against the sandbox branch's ``VariableTracer`` (commit ba99e21) before it was merged.
Tests marked ``needs_sandbox`` run the same programs through the real
``coderl_jax.execution.run_program`` and are skipped only while it does not exist.
"""

import dataclasses
import json
from typing import Any

import pytest

from coderl_jax.execution import spec
from coderl_jax.rl.alignment import (
    AlignmentConfig,
    AlignmentTask,
    CodeRollout,
    failures_to_tasks,
    first_test_input,
    select_candidates,
    select_variables,
)
from coderl_jax.rl.alignment_prompt import render_call
from coderl_jax.rl.program_analysis import cyclomatic_complexity, names_assigned_in_loops
from coderl_jax.rl.rewards import alignment_reward
from coderl_jax.rl.values import to_prompt_literal

try:
    from coderl_jax.execution import run_program
except ImportError:
    run_program = None
needs_sandbox = pytest.mark.skipif(
    run_program is None, reason="coderl_jax.execution.run_program does not exist yet"
)

# Fails its problem (should print the max and its count); prints "max 8" for "3 9 4".
MAX_PROGRAM = """\
def main():
    nums = [int(t) for t in input().split()]
    best = 0
    count = 0
    for v in nums:
        if v > best:
            best = v
            count += 1
    half = best // 2
    label = "max"
    print(label, best - 1)


main()
"""
MAX_STDIN = "3 9 4\n"
MAX_TRACE = {
    "main.nums": [3, 9, 4],
    "main.best": 9,
    "main.count": 2,
    "main.v": 4,
    "main.half": 4,
    "main.label": "max",
}
# Call-based; fails its problem (pairs with distinct sums, but should be sorted by sum desc).
PAIRS_PROGRAM = """\
def pair_sums(xs):
    seen = set()
    pairs = []
    for i in range(len(xs)):
        for j in range(i + 1, len(xs)):
            s = xs[i] + xs[j]
            if s not in seen:
                seen.add(s)
                pairs.append((xs[i], xs[j]))
    return pairs
"""
PAIRS_CALL = ("pair_sums", "[[1, 2, 3]]")
PAIRS_RETURN = [{"__tuple__": [1, 2]}, {"__tuple__": [1, 3]}, {"__tuple__": [2, 3]}]
PAIRS_TRACE = {
    "pair_sums.xs": [1, 2, 3],
    "pair_sums.seen": {"__set__": [3, 4, 5]},
    "pair_sums.pairs": PAIRS_RETURN,
    "pair_sums.i": 2,
    "pair_sums.j": 2,
    "pair_sums.s": 5,
}
# Same input and output as MAX_PROGRAM, different text: an (input, output) duplicate.
MAX_TWIN = 'nums = input().split()\nprint("max", 8)\n'
# Only a module object is traced: nothing askable.
REVERSE_PROGRAM = "import sys\nprint(sys.stdin.read().strip()[::-1])\n"
CRASHING_PROGRAM = "print(1 // 0)\n"
SLOW_PROGRAM = "import time\nx = 1\ntime.sleep(10)\nprint(x)\n"


@dataclasses.dataclass(frozen=True)
class RecordedJob:
    code: str
    stdin: bytes
    call: tuple | None
    trace: bool
    timeout_s: float


@dataclasses.dataclass(frozen=True)
class RecordedResult:
    status: str
    stdout: str = ""
    variables: dict | None = None
    return_value: Any = None


class RecordedSandbox:
    """Replays hand-computed traced runs keyed by (code, stdin, call); counts batches."""

    table = {
        (MAX_PROGRAM, MAX_STDIN.encode(), None): RecordedResult("ok", "max 8\n", MAX_TRACE),
        (PAIRS_PROGRAM, b"", PAIRS_CALL): RecordedResult("ok", "", PAIRS_TRACE, PAIRS_RETURN),
        (MAX_TWIN, MAX_STDIN.encode(), None): RecordedResult(
            "ok", "max 8\n", {"nums": ["3", "9", "4"]}
        ),
        (REVERSE_PROGRAM, b"abc\n", None): RecordedResult(
            "ok", "cba\n", {"sys": {"__unrepresentable__": "module", "reason": "module"}}
        ),
        (SLOW_PROGRAM, b"", None): RecordedResult("timeout"),
    }

    def __init__(self):
        self.batches = []

    def run_batch(self, jobs):
        self.batches.append(jobs)
        return [self.table[(j.code, j.stdin, j.call)] for j in jobs]


def rollout(program, stdin="", call=None, reward=0.0, status="ok", stdout="x", ret=None, pid="p"):
    kind = "call" if call else "stdin"
    return CodeRollout(pid, program, reward, kind, stdin, call, status, stdout, ret)


def convert(rollouts, config=None, **kwargs):
    sandbox = RecordedSandbox()
    tasks, counts = failures_to_tasks(
        rollouts,
        sandbox.run_batch,
        step=7,
        config=config or AlignmentConfig(),
        job_factory=RecordedJob,
        **kwargs,
    )
    return tasks, counts, sandbox


def test_recorded_outputs_match_python(capsys):
    namespace = {"input": lambda: MAX_STDIN.strip()}
    exec(MAX_PROGRAM, namespace)
    assert capsys.readouterr().out == "max 8\n"
    namespace = {}
    exec(PAIRS_PROGRAM, namespace)
    assert namespace["pair_sums"]([1, 2, 3]) == [(1, 2), (1, 3), (2, 3)]


def test_first_test_input_per_kind():
    stdio = spec.TestSpec("stdio", inputs=("1 2\n", "3\n"), outputs=("3\n", "3\n"))
    call = spec.TestSpec("call", inputs=("[[1]]",), outputs=("1",), fn_name="f")
    check = spec.TestSpec("assert", check_code="def check(c): pass", entry_point="f")
    assert first_test_input(stdio) == ("stdin", "1 2\n", None)
    # Call-based: stdin holds the arguments as the official rows do (one JSON value a line).
    assert first_test_input(call) == ("call", "[1]", ("f", "[[1]]"))
    lines = spec.TestSpec(
        "call", inputs=('[1, 2]\n"a"',), outputs=("1",), fn_name="f", call_arguments="json_lines"
    )
    assert first_test_input(lines) == ("call", '[1, 2]\n"a"', ("f", '[[1, 2], "a"]'))
    broken = spec.TestSpec(
        "call", inputs=("[1,",), outputs=("1",), fn_name="f", call_arguments="json_lines"
    )
    assert first_test_input(broken) == ("call", "[1,", None)
    assert first_test_input(check) == ("none", "", None)
    assert first_test_input(spec.TestSpec("stdio")) == ("none", "", None)


def test_select_candidates_rules_and_counts():
    rollouts = [
        rollout(MAX_PROGRAM, MAX_STDIN, stdout="max 8\n"),
        rollout(MAX_PROGRAM, MAX_STDIN, reward=1.0),
        rollout(CRASHING_PROGRAM, status="runtime_error", stdout=""),
        rollout(SLOW_PROGRAM, status="timeout"),
        rollout("x = 1\n", stdout="  \n"),
        rollout(PAIRS_PROGRAM, call=PAIRS_CALL, stdout="", ret=None),
        rollout(PAIRS_PROGRAM, call=PAIRS_CALL, stdout="", ret=PAIRS_RETURN),
        rollout("   ", stdout="1"),
        CodeRollout("h", "def f(): pass", 0.0, "none", "", None, "ok", "", None),
    ]
    selected, counts = select_candidates(rollouts)
    assert selected == [rollouts[0], rollouts[6]]
    assert counts == {
        "selected": 2,
        "drop/passed": 1,
        "drop/did_not_run": 2,
        "drop/empty_output": 2,
        "drop/no_program": 1,
        "drop/no_input": 1,
    }


def test_cyclomatic_complexity_and_window():
    assert cyclomatic_complexity("x = 1\n") == 1
    # for, if, and (+1), nested for + if, comprehension for + if, ternary, except
    assert cyclomatic_complexity(MAX_PROGRAM) == 1 + 1 + 1 + 1  # comprehension, for, if
    assert cyclomatic_complexity(PAIRS_PROGRAM) == 1 + 3
    program = "try:\n    y = [a for a in b if a and c] if d else 0\nexcept E:\n    pass\n"
    assert cyclomatic_complexity(program) == 1 + 2 + 1 + 1 + 1  # comp, `and`, IfExp, except
    assert cyclomatic_complexity("def (") is None
    simple = rollout("print(1)\n")
    selected, counts = select_candidates([simple, rollout(MAX_PROGRAM)], complexity_window=(2, 5))
    assert [r.program for r in selected] == [MAX_PROGRAM]
    assert counts["drop/complexity"] == 1


def test_names_assigned_in_loops():
    assert names_assigned_in_loops(MAX_PROGRAM) == {"v", "best", "count"}
    assert names_assigned_in_loops(PAIRS_PROGRAM) == {"i", "j", "s"}
    # Definitions and comprehensions inside a loop are their own scopes.
    program = "for k in r:\n    def g():\n        z = 1\n    w = [q for q in k]\n"
    assert names_assigned_in_loops(program) == {"k", "w"}
    assert names_assigned_in_loops("while (") == set()


def test_select_variables_policies():
    official = select_variables(MAX_PROGRAM, MAX_TRACE, AlignmentConfig())
    assert official == {"v": 4, "half": 4, "label": "max"}
    loops = AlignmentConfig(variable_policy="loops")
    assert select_variables(MAX_PROGRAM, MAX_TRACE, loops) == {
        "best": 9,
        "count": 2,
        "v": 4,
    }
    # Fewer loop variables than K: filled with the last others, kept in capture order.
    five = AlignmentConfig(variable_policy="loops", max_variables=5)
    assert list(select_variables(MAX_PROGRAM, MAX_TRACE, five)) == [
        "best",
        "count",
        "v",
        "half",
        "label",
    ]
    eight = AlignmentConfig(variable_policy="loops", max_variables=8)
    assert select_variables(MAX_PROGRAM, MAX_TRACE, eight) == {
        key.split(".")[1]: value for key, value in MAX_TRACE.items()
    }
    one = AlignmentConfig(max_variables=1)
    assert select_variables(MAX_PROGRAM, MAX_TRACE, one) == {"label": "max"}


def test_select_variables_filters():
    traced = {
        "f.x": 1,
        "g.x": 2,  # plain name "x" is ambiguous: not asked
        "Solution.solve.n": 4,
        "n": 5,  # module and method both have "n": ambiguous too
        "big": {"__bigint__": "1234", "digits": 9000},
        "obj": {"__unrepresentable__": "Foo", "reason": "object"},
        "long": list(range(100)),  # over the size cap
        "ok": [1, 2],
        "f.<lambda>": 3,  # not an identifier
    }
    config = AlignmentConfig(max_value_chars=50)
    assert select_variables("", traced, config) == {"ok": [1, 2]}


def test_failures_to_tasks_one_batch_filters_and_dedup():
    rollouts = [
        rollout(MAX_PROGRAM, MAX_STDIN, pid="max"),
        rollout(PAIRS_PROGRAM, call=PAIRS_CALL, ret=PAIRS_RETURN, pid="pairs"),
        rollout(MAX_PROGRAM, MAX_STDIN, pid="max"),  # same program and input
        rollout(MAX_TWIN, MAX_STDIN, pid="max"),  # same input and output
        rollout(REVERSE_PROGRAM, "abc\n", pid="rev"),
        rollout(SLOW_PROGRAM, pid="slow"),
    ]
    tasks, counts, sandbox = convert(rollouts)
    assert len(sandbox.batches) == 1 and len(sandbox.batches[0]) == 5
    job = sandbox.batches[0][0]
    assert (job.trace, job.timeout_s, job.stdin) == (True, 5.0, MAX_STDIN.encode())
    assert counts == {
        "tasks": 2,
        "drop/duplicate_program_input": 1,
        "drop/duplicate_input_output": 1,
        "drop/no_askable_variables": 1,
        "drop/trace_timeout": 1,
    }
    max_task, pairs_task = tasks
    assert max_task == AlignmentTask(
        program=MAX_PROGRAM,
        input_kind="stdin",
        stdin=MAX_STDIN,
        call=None,
        variables=("v", "half", "label"),
        labels={"v": 4, "half": 4, "label": "max"},
        expected_output="max 8\n",
        problem_id="max",
        step=7,
    )
    assert pairs_task.input_kind == "call" and pairs_task.output_kind == "return"
    assert pairs_task.variables == ("i", "j", "s")
    assert pairs_task.expected_output == PAIRS_RETURN
    assert AlignmentTask.from_json(json.loads(json.dumps(pairs_task.to_json()))) == pairs_task


def test_failures_to_tasks_without_dedup_and_empty():
    config = AlignmentConfig(dedup_input_output=False)
    tasks, counts, _ = convert([rollout(MAX_PROGRAM, MAX_STDIN), rollout(MAX_TWIN, MAX_STDIN)])
    assert counts["tasks"] == 1
    tasks, counts, _ = convert(
        [rollout(MAX_PROGRAM, MAX_STDIN), rollout(MAX_TWIN, MAX_STDIN)], config
    )
    assert counts["tasks"] == 2
    tasks, counts, sandbox = convert([])
    assert (tasks, counts, sandbox.batches) == ([], {"tasks": 0}, [])


def test_prompt_length_limit_drops_and_counts():
    words = lambda text: len(text.split())  # a whitespace "tokenizer" for the limit
    rollouts = [rollout(MAX_PROGRAM, MAX_STDIN), rollout(PAIRS_PROGRAM, call=PAIRS_CALL, ret=[1])]
    tasks, _, _ = convert(rollouts)
    assert [words(t.prompt()) for t in tasks] == [197, 181]
    kept, counts, _ = convert(rollouts, AlignmentConfig(max_prompt_tokens=190), count_tokens=words)
    assert [t.problem_id for t in kept] == [tasks[1].problem_id] and kept[0].call == PAIRS_CALL
    assert counts == {"tasks": 1, "drop/prompt_too_long": 1}
    kept, counts, _ = convert(rollouts, AlignmentConfig(max_prompt_tokens=197), count_tokens=words)
    assert len(kept) == 2
    with pytest.raises(ValueError, match="count_tokens"):
        convert([], AlignmentConfig(max_prompt_tokens=10))


def test_prompt_shows_input_and_answer_format():
    tasks, _, _ = convert(
        [rollout(MAX_PROGRAM, MAX_STDIN), rollout(PAIRS_PROGRAM, call=PAIRS_CALL, ret=[1])]
    )
    stdin_prompt, call_prompt = tasks[0].prompt(), tasks[1].prompt()
    assert MAX_PROGRAM.rstrip() in stdin_prompt
    assert "```\n3 9 4\n```" in stdin_prompt
    assert "step by step" in stdin_prompt
    assert stdin_prompt.endswith(
        '{"final_output": ..., "variables": {"v": ..., "half": ..., "label": ...}}'
    )
    assert "pair_sums([1, 2, 3])" in call_prompt
    assert render_call("class Solution:\n    def f(self, a): pass\n", "f", "[true, null]") == (
        "Solution().f(True, None)"
    )


def test_end_to_end_answers_get_documented_rewards():
    tasks, _, _ = convert(
        [rollout(MAX_PROGRAM, MAX_STDIN), rollout(PAIRS_PROGRAM, call=PAIRS_CALL, ret=[1])]
    )
    max_task, pairs_task = tasks
    cases = [
        (
            max_task,
            '{"final_output": "max 8", "variables": {"v": 4, "half": 4, "label": "max"}}',
            1.0,
            1.0,
        ),
        (
            max_task,
            '{"final_output": "max 9", "variables": {"v": 4, "half": 4.5, "label": "max"}}',
            0.55,
            2 / 3,
        ),
        (
            pairs_task,
            '{"final_output": [[1, 2], [1, 3], [2, 3]], "variables": {"i": 2, "j": 2, "s": 5}}',
            1.0,
            1.0,
        ),
        (
            pairs_task,
            '{"final_output": [[1, 2], [1, 3], [2, 3]], "variables": {"i": 2, "j": 3, "s": 5}}',
            0.775,
            2 / 3,
        ),
        (pairs_task, "The answer is i=2, j=2, s=5.", 0.0, 0.0),
    ]
    for task, answer, improved, paper in cases:
        completion = "Walking through the loops...\n" + answer
        for mode, want in (("improved", improved), ("paper", paper)):
            got = alignment_reward(
                completion, task.expected_output, task.labels, mode, task.output_kind
            )
            assert got == pytest.approx(want), (task.problem_id, answer, mode)
    for task in tasks:
        assert (
            alignment_reward(
                task.reference_answer(),
                task.expected_output,
                task.labels,
                "improved",
                task.output_kind,
            )
            == 1.0
        )


def test_task_validation():
    with pytest.raises(ValueError, match="labels keys"):
        AlignmentTask("x=1", "stdin", "", None, ("x",), {"y": 1}, "1", "p", 0)
    with pytest.raises(ValueError, match="call must be set"):
        AlignmentTask("x=1", "call", "", None, ("x",), {"x": 1}, 1, "p", 0)
    with pytest.raises(ValueError, match="variable_policy"):
        AlignmentConfig(variable_policy="random")
    with pytest.raises(ValueError, match="no input"):
        convert([CodeRollout("h", "x", 0.0, "none", "", None, "ok", "1", None)])


@needs_sandbox
def test_real_sandbox_conversion_end_to_end():
    from coderl_jax.execution import Job  # part of the contract: fail, don't skip, if absent

    def run_batch(jobs):
        return [
            run_program(j.code, stdin=j.stdin, timeout_s=j.timeout_s, trace=j.trace, call=j.call)
            for j in jobs
        ]

    rollouts = [
        rollout(MAX_PROGRAM, MAX_STDIN, pid="max"),
        rollout(PAIRS_PROGRAM, call=PAIRS_CALL, ret=PAIRS_RETURN, pid="pairs"),
        rollout(REVERSE_PROGRAM, "abc\n", pid="rev"),
    ]
    config = AlignmentConfig(max_variables=6)
    tasks, counts = failures_to_tasks(
        rollouts,
        run_batch,
        step=1,
        config=config,
        job_factory=Job,
    )
    by_problem = {t.problem_id: t for t in tasks}
    assert set(by_problem) == {"max", "pairs"}, counts
    for task, hand in ((by_problem["max"], MAX_TRACE), (by_problem["pairs"], PAIRS_TRACE)):
        hand_plain = {k.rsplit(".", 1)[-1]: v for k, v in hand.items()}
        compared = set(task.variables) & set(hand_plain)
        assert compared, task  # e.g. comprehension variables may differ by Python version
        for name in compared:  # the tracer agrees with the hand-computed labels
            assert json.loads(to_prompt_literal(task.labels[name])) == json.loads(
                to_prompt_literal(hand_plain[name])
            ), name
        assert (
            alignment_reward(
                task.reference_answer(),
                task.expected_output,
                task.labels,
                "improved",
                task.output_kind,
            )
            == 1.0
        )
    assert by_problem["max"].expected_output == "max 8\n"
