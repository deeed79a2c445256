"""Derived reasoning sets: assert parsing, labels from the sandbox, determinism."""

import ast

from coderl_jax.data.sources import load_problems
from coderl_jax.evals import derived

CHECK = """
def check(candidate):
    assert candidate(1, 2) == 3
    assert abs(candidate(1.5, x=-2) - 0.5) < 1e-6, "message"
    assert candidate(1, 2) == 3  # duplicate input
    for i in range(3):
        assert candidate(i, i) == 2 * i
    assert True
    assert candidate(*[1, 2]) == 3
    assert candidate([1, (2, 3)], {"a": {1}}) is not None
"""


def test_literal_calls_keep_literal_inputs_and_count_the_rest():
    calls, skipped = derived.literal_calls(CHECK)
    assert calls == [["1", "2"], ["1.5", "x=-2"], ["[1, (2, 3)]", "{'a': {1}}"]]
    assert skipped == 3  # the loop's assert, assert True, the starred call


def test_python_literal_sorts_sets_and_round_trips():
    value = {"k": [frozenset({"b", "a"}), (1,), set()], 2: (None, 1.5)}
    text = derived.python_literal(value)
    assert text == "{'k': [{'a', 'b'}, (1,), set()], 2: (None, 1.5)}"
    assert ast.literal_eval(text) == value


def test_without_docstring_removes_only_the_docstring():
    program = (
        'import math\n\ndef f(x):\n    """Doc.\n    >>> f(1)\n    2\n    """\n    return x + 1\n'
    )
    assert derived.without_docstring(program, "f") == "import math\n\ndef f(x):\n    return x + 1\n"
    assert derived.without_docstring(program, "g") == program


def test_humaneval_sets_are_deterministic_and_labelled_by_running(pool, data, tmp_path):
    problems = load_problems("humaneval", "test", data.data_dir)[:30]
    first, counts = derived.humaneval_items(problems, "code_execution", pool.run_batch)
    again, _ = derived.humaneval_items(problems, "code_execution", pool.run_batch)
    assert first == again
    assert counts["problems"] == 30 and counts["items"] == len(first) > 100
    assert counts["asserts_skipped"] > 0
    zero = first[0]  # HumanEval/0: has_close_elements([1.0, 2.0, 3.9, 4.0, 5.0, 2.2], 0.3)
    assert zero.id == "humaneval_exec/0_0" and zero.task == "code_execution"
    assert zero.input == "has_close_elements([1.0, 2.0, 3.9, 4.0, 5.0, 2.2], 0.3)"
    assert zero.expected_output == "True"
    assert '"""' not in zero.program and "def has_close_elements" in zero.program
    outputs, _ = derived.humaneval_items(problems[:2], "test_output", pool.run_batch)
    assert outputs[0].input == "[1.0, 2.0, 3.9, 4.0, 5.0, 2.2]\n0.3"
    assert outputs[0].statement == problems[0].starter_code
    assert [i.expected_output for i in outputs] == [
        i.expected_output for i in first[: len(outputs)]
    ]


def test_failing_calls_are_counted_not_labelled(pool):
    labels = derived.call_labels(
        [("def f(x):\n    return 1 / x\n", "f(0)"), ("def f(x):\n    return {x, 'a'}\n", "f('b')")],
        pool.run_batch,
        timeout_s=5.0,
    )
    assert labels == [None, "{'a', 'b'}"]


def test_synthetic_items_label_stdin_and_call_programs(pool, data):
    problems = load_problems("coderl_synthetic", "test", data.data_dir, config=data.synthetic)
    items, counts = derived.synthetic_items(problems, pool.run_batch)
    assert counts == {"problems": 12, "unlabelled": 0, "items": 12}
    for problem, item in zip(problems, items):
        assert item.program == problem.reference_solution
        if problem.tests.kind == "stdio":  # the label is the program's own output
            assert item.metadata["input_kind"] == "stdin"
            assert item.expected_output.strip() == problem.tests.outputs[0].strip()
        else:
            assert item.input.startswith(problem.tests.fn_name) or "Solution()" in item.input
