"""Code-generation reward: extraction, host syntax check, sandbox verdicts -> outcomes."""

import pytest

from coderl_jax.execution import SandboxPool, TestSpec
from coderl_jax.rl.rewards import code_generation_rewards

ADD = TestSpec(kind="stdio", inputs=("1 2\n", "5 7\n"), outputs=("3\n", "12\n"))
HALF = TestSpec(kind="stdio", inputs=("3\n",), outputs=("1.5\n",))
DOUBLE = TestSpec(kind="call", fn_name="double", inputs=("[2]", "[5]"), outputs=("4", "10"))


def fenced(code: str) -> str:
    return f"Here you go:\n```python\n{code}\n```"


@pytest.fixture(scope="module")
def pool():
    with SandboxPool(num_workers=2) as p:
        yield p


def test_each_outcome_is_named(pool):
    completions = [
        fenced("a, b = map(int, input().split())\nprint(a + b)"),  # passed
        fenced("a, b = map(int, input().split())\nprint(a + b if a < 5 else 0)"),  # 2nd test wrong
        fenced("raise ValueError('boom')"),
        fenced("while True:\n    pass"),
        fenced("def f(:\n  pass"),
        "I would add the numbers.",
        fenced("def double(x):\n    return 2 * x"),
    ]
    specs = [ADD, ADD, ADD, ADD, ADD, ADD, DOUBLE]
    rewards, outcomes, programs, verdicts = code_generation_rewards(
        completions, specs, pool.check_batch, timeout_s=1.0
    )
    assert outcomes == [
        "passed", "wrong_answer", "runtime_error", "timeout", "syntax_error", "no_code", "passed",
    ]  # fmt: skip
    assert rewards.tolist() == [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0]
    assert programs[5] is None and verdicts[4] is None and verdicts[5] is None
    assert verdicts[1].first_failure == 1  # the first test passed, the second failed


def test_float_tolerance_override(pool):
    completion = [fenced("print(int(input()) / 2 + 1e-9)")]
    strict, *_ = code_generation_rewards(completion, [HALF], pool.check_batch)
    tolerant, *_ = code_generation_rewards(
        completion, [HALF], pool.check_batch, float_tolerance=1e-6
    )
    assert strict.tolist() == [0.0] and tolerant.tolist() == [1.0]


def test_length_mismatch_raises(pool):
    with pytest.raises(ValueError, match="2 completions but 1 test specs"):
        code_generation_rewards(["a", "b"], [ADD], pool.check_batch)


def test_host_syntax_checks_print_no_compiler_warnings():
    import warnings

    from coderl_jax.rl import rewards
    from coderl_jax.rl.program_analysis import parse_quietly

    program = "x = 1\nprint(x is 1, '\\d')\n"  # SyntaxWarning, and an invalid escape
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert rewards._compiles(program)
        assert parse_quietly(program) is not None
        assert not rewards._compiles("def f(:\n") and parse_quietly("def f(:\n") is None
    assert caught == []
    with warnings.catch_warnings(record=True) as caught:  # the check itself is real
        warnings.simplefilter("always")
        compile(program, "<program>", "exec")
    assert caught
