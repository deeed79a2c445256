"""Code-generation reward: extraction, host syntax check, sandbox verdicts -> outcomes; with
``semantics="official"``, the official reward on every judge case of
tests/execution/official_cases."""

import json
import pathlib

import pytest

from coderl_jax.execution import SandboxPool, TestSpec
from coderl_jax.execution.spec import OfficialRowFails
from coderl_jax.rl.rewards import code_generation_rewards

CASES = pathlib.Path(__file__).parents[1] / "execution" / "official_cases" / "judge.json"

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


def test_official_semantics_gives_the_official_reward(pool):
    with open(CASES) as f:
        cases = json.load(f)
    completions, specs, expected = [], [], []
    for case in cases:
        try:
            specs.append(TestSpec.from_official(case["tests"]))
        except OfficialRowFails:  # check_solution's business: the batch takes TestSpecs
            continue
        program = case.get("program")
        completions.append(case["completion"] if program is None else fenced(program))
        expected.append(float(case["official"]["passed"]))
    rewards, outcomes, programs, _ = code_generation_rewards(
        completions, specs, pool.check_batch, timeout_s=1.0, semantics="official"
    )
    assert len(expected) >= 120
    assert rewards.tolist() == expected  # timeout_s is the official 6 s, not 1 s
    assert "syntax_error" not in outcomes  # official extraction parses the block itself
    assert outcomes[completions.index(fenced("print(6"))] == "no_code"
    top_level_return = next(c for c in completions if "    return\nprint('other')" in c)
    assert outcomes[completions.index(top_level_return)] == "passed"  # compile() rejects it


def test_official_extraction_and_comparison(pool):
    spec = TestSpec("stdio", inputs=("3\n",), outputs=("1.5\n",))
    completions = [
        "```py\nprint(int(input()) / 2)\n```",  # improved reads a ```py fence, official not
        fenced("print(int(input()) / 2 + 1e-9)"),  # float tolerance: improved only
        fenced("print('1.50')"),  # Decimal token comparison: official only
    ]
    args = completions, [spec] * 3, pool.check_batch
    improved, *_ = code_generation_rewards(*args)
    tolerant, *_ = code_generation_rewards(*args, float_tolerance=1e-6)
    official, outcomes, *_ = code_generation_rewards(
        *args, float_tolerance=1e-6, semantics="official"
    )
    assert improved.tolist() == [1.0, 0.0, 0.0] and tolerant.tolist() == [1.0, 1.0, 1.0]
    assert official.tolist() == [0.0, 0.0, 1.0] and outcomes[0] == "no_code"
