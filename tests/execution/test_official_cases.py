"""The code judge, code extraction and the alignment comparator in both semantics, case by
case: ``semantics="official"`` must give what the official CodeRL+ code gave on each case
(``official_cases/*.json``, see its README), ``"improved"`` this project's own result."""

import concurrent.futures
import json
import pathlib

import pytest

from coderl_jax.execution import OFFICIAL_TIMEOUT_S, TestSpec, Verdict, check_solution
from coderl_jax.execution.compare import answer_value_matches, check_value_equality
from coderl_jax.execution.extract import extract_code, extract_task_code
from coderl_jax.execution.spec import OfficialRowFails

CASES = pathlib.Path(__file__).parent / "official_cases"


def load(kind: str) -> list[dict]:
    with open(CASES / f"{kind}.json") as f:
        return json.load(f)


JUDGE, EXTRACT, COMPARE = load("judge"), load("extract"), load("compare")


def _ids(cases):
    return [c["id"] for c in cases]


def _judge(case: dict, semantics: str) -> Verdict | None:
    """The code reward's verdict on a case (None: no program, so reward 0 without a run)."""
    code = case.get("program")
    if code is None:
        code = extract_code(case["completion"], semantics)
    return None if code is None else check_solution(code, case["tests"], semantics=semantics)


@pytest.fixture(scope="module")
def verdicts() -> dict[tuple[str, str], Verdict | None]:
    """Every judge case in both semantics, run side by side on the shared pool."""
    keys = [(c["id"], s) for c in JUDGE for s in ("official", "improved")]
    by_id = {c["id"]: c for c in JUDGE}
    with concurrent.futures.ThreadPoolExecutor(4) as threads:
        found = threads.map(lambda key: _judge(by_id[key[0]], key[1]), keys)
        return dict(zip(keys, found))


def official_codes(verdict: Verdict | None, kind: str) -> list | None:
    """A verdict in the official judge's per-test codes: True, then at the first failure
    -2 (stdio) / False (call) for a wrong answer, -3 for a timeout, -4 for an error."""
    if verdict is None:
        return None
    codes: list = []
    for test in verdict.tests:
        if test.passed:
            codes.append(True)
        elif test.status == "ok":
            codes.append(-2 if kind == "stdio" else False)
            break
        else:
            codes.append(-3 if test.status == "timeout" else -4)
            break
    return codes


# Failing the same test with another code: the reward (0) is the same.
OTHER_FAILURE_CODE = {
    "m_j20_decimal_snan": "comparing sNaN tokens raises officially; here it is a wrong answer",
    "m_j25_keyboard_interrupt": "the official run dies (-1); here the test errs (-4)",
    "m_c16_bad_expected_json": "officially the row errs (-4); here the answer is wrong",
    "m_c20_sys_exit_in_call": "the official run dies (-1); here the test errs (-4)",
    "m_z5_sys_exit_while_loading": "the official run dies (-1); here the first test errs (-4)",
}


@pytest.mark.parametrize("case", JUDGE, ids=_ids(JUDGE))
def test_judge_official(case, verdicts):
    verdict = verdicts[case["id"], "official"]
    assert (verdict is not None and verdict.passed) == case["official"]["passed"], verdict
    expected = case["official"]["results"]
    if verdict is None or expected is None or not verdict.tests:
        return  # no run (reward 0 before the tests), or no tests
    got = official_codes(verdict, "call" if case["tests"].get("fn_name") else "stdio")
    if case["id"] in OTHER_FAILURE_CODE:
        assert got[:-1] == expected[:-1] and got[-1] is not True and got != expected
    else:
        assert got == expected, verdict


@pytest.mark.parametrize("case", JUDGE, ids=_ids(JUDGE))
def test_judge_improved(case, verdicts):
    verdict = verdicts[case["id"], "improved"]
    assert (verdict is not None and verdict.passed) == case["improved"]["passed"], verdict


def test_judge_reads_official_rows_as_the_official_judge():
    row = {"inputs": ["1\n2", "[3]\n[4]"], "outputs": ["3", "[3, 4]"], "fn_name": "add"}
    spec = TestSpec.from_official(json.dumps(row))
    assert (spec.kind, spec.call_arguments, spec.fn_name) == ("call", "json_lines", "add")
    assert [spec.arguments(i) for i in range(2)] == [[1, 2], [[3], [4]]]
    stdio = TestSpec.from_official({"inputs": [["1", "2"], "3\n"], "outputs": ["3\n", "3\n"]})
    assert stdio.inputs == ("1\n2", "3\n") and not stdio.null_fn_name
    assert TestSpec.from_official({"inputs": [], "outputs": [], "fn_name": None}).null_fn_name
    # Unpaired inputs are dropped, as zip drops them.
    assert TestSpec.from_official({"inputs": ["1", "2"], "outputs": ["1"]}).inputs == ("1",)
    for row in (
        {"inputs": ["1"], "outputs": [["1"]]},
        {"inputs": [["1"]], "outputs": ["1"], "fn_name": "f"},
        {"inputs": ["1"], "outputs": ["1"], "fn_name": ""},
        {"inputs": ["1"]},
    ):
        with pytest.raises(OfficialRowFails):
            TestSpec.from_official(row)
    with pytest.raises(ValueError, match="inputs"):
        TestSpec.from_official({"assert_case": ["assert f() == 1"]})
    verdict = check_solution(
        "print(1)", {"inputs": ["\n"], "outputs": [["1"]]}, semantics="official"
    )
    assert not verdict.passed and "fails this row" in verdict.result.error


def test_json_list_specs_mean_the_same_arguments_in_both_semantics():
    spec = TestSpec("call", inputs=("[[1, 2], 3]",), outputs=("[1, 2, 3]",), fn_name="f")
    program = "def f(xs, y):\n    return xs + [y]"
    assert check_solution(program, spec, semantics="official").passed
    assert check_solution(program, spec, semantics="improved").passed


def test_official_timeout_is_six_seconds_per_test():
    assert OFFICIAL_TIMEOUT_S == 6.0
    with pytest.raises(ValueError, match="assert"):
        check_solution(
            "def f(): return 1",
            TestSpec("assert", check_code="def check(c): assert c() == 1", entry_point="f"),
            semantics="official",
        )


@pytest.mark.parametrize("case", EXTRACT, ids=_ids(EXTRACT))
def test_extract(case):
    text = case["completion"]
    assert extract_code(text, "official") == case["official"]["reward_code"]
    assert extract_task_code(text, "official") == case["official"]["task_code"]
    assert extract_code(text) == case["improved"]["code"]
    assert extract_task_code(text) == case["improved"]["code"]


@pytest.mark.parametrize("case", COMPARE, ids=_ids(COMPARE))
def test_compare(case):
    assert check_value_equality(case["predicted"], case["expected"]) == case["official"]["equal"]
    assert answer_value_matches(case["predicted"], case["expected"]) == case["improved"]["equal"]


def test_case_counts():
    """The fixture sizes the report quotes (a change to the cases shows up here)."""
    assert (len(JUDGE), len(EXTRACT), len(COMPARE)) == (133, 35, 28)


def test_official_judge_deliberate_deviations():
    """Where this sandbox keeps its own rule under official semantics (README, Fidelity)."""
    rigged = "class Any:\n    def __eq__(self, other):\n        return True\n\n"
    rigged += "class Solution:\n    def f(self, x):\n        return Any()"
    row = {"inputs": ["1"], "outputs": ["5"], "fn_name": "f"}
    # Officially `Any() == 5` is True; here values cross the sandbox as data, so a rigged
    # __eq__ is never run outside it.
    assert not check_solution(rigged, row, semantics="official").passed
    # The sandbox's memory limit holds in both semantics (the official judge has none).
    hog = "x = bytearray(3 << 30)\nprint(1)"
    assert not check_solution(
        hog, {"inputs": ["\n"], "outputs": ["1\n"]}, semantics="official"
    ).passed


def test_official_judge_caps_no_ordinary_output():
    # The official judge has no output limit: 2 MB of right answer passes, and debug prints
    # of a call-based solution (to the process's own stdout, which it ignores) cost nothing.
    lines = 300_000
    row = {"inputs": ["\n"], "outputs": ["".join(f"{i}\n" for i in range(lines))]}
    program = f"for i in range({lines}):\n    print(i)"
    assert check_solution(program, row, semantics="official").passed
    assert check_solution(program, row, semantics="improved").status == "output_limit"
    chatty = "class Solution:\n    def f(self, x):\n"
    chatty += "        for i in range(200000):\n            print('debug', i)\n        return x"
    call_row = {"inputs": ["1"], "outputs": ["1"], "fn_name": "f"}
    assert check_solution(chatty, call_row, semantics="official").passed
