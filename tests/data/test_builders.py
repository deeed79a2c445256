"""TFDS builders: each builds into a temporary data_dir from the fixtures (tests/fixtures,
made by make_fixtures.py in the published formats) and reads back through TFDS."""

from __future__ import annotations

import base64
import json
import pickle
import zlib
from pathlib import Path

import pytest
import tensorflow_datasets as tfds

from coderl_jax.data import synthetic
from coderl_jax.data.builders import BadRowError, ManualDataMissingError, synthetic_config
from coderl_jax.data.builders.leetcode import (
    SOLUTION_CALL,
    SOLUTION_CALL_SOURCE,
    check_code_from_tests,
)
from coderl_jax.data.builders.livecodebench_format import (
    UnsafePickleError,
    decode_test_cases,
    safe_unpickle,
)
from coderl_jax.data.builders.synthetic import program_overlap
from coderl_jax.data.sources import load_problems, load_reasoning_items, prepare, skipped_rows
from coderl_jax.execution import TestSpec, check_solution
from coderl_jax.rl.alignment import first_test_input

FIXTURES = Path(__file__).parent.parent / "fixtures"
MANUAL = FIXTURES / "manual"
MANUAL_BAD = FIXTURES / "manual_bad"


def _run_check(program: str, check_code: str, entry_point: str) -> None:
    """Runs trusted fixture/reference code in-process: defines the program, then check()."""
    namespace: dict = {}
    exec(program, namespace)
    exec(check_code, namespace)
    namespace["check"](namespace[entry_point])


# --- coderl_synthetic -------------------------------------------------------------------


def test_synthetic_builds_configured_sizes_identical_to_generator(tmp_path):
    config = synthetic_config(12, 3, 4, 2, seed=5)
    builder = prepare("coderl_synthetic", tmp_path, config=config)
    assert builder.info.file_format == tfds.core.FileFormat.ARRAY_RECORD
    assert str(builder.info.version) == synthetic.VERSION
    assert Path(builder.data_dir).name == synthetic.VERSION
    assert list(Path(builder.data_dir).glob("*.array_record-*"))
    # Read through tfds.data_source by name, as any TFDS user would.
    source = tfds.data_source(f"coderl_synthetic/{config.name}", data_dir=str(tmp_path))
    assert {split: len(source[split]) for split in source} == {
        "train": 12,
        "validation": 3,
        "test": 4,
        "test_heldout_families": 2,
    }
    for split, size in config.sizes().items():
        loaded = load_problems("coderl_synthetic", split, tmp_path, config=config)
        assert loaded == synthetic.generate_problems(split, size, seed=5)


def test_synthetic_build_records_zero_program_overlap(tmp_path):
    config = synthetic_config(60, 20, 24, 8, seed=3, families=("add_constant", "shift_letters"))
    prepare("coderl_synthetic", tmp_path, config=config)
    # Read back from metadata.json by a fresh builder, as a later reader would.
    builder = tfds.builder(f"coderl_synthetic/{config.name}", data_dir=str(tmp_path))
    assert str(builder.info.version) == synthetic.VERSION == "2.0.0"
    overlap = program_overlap(builder)
    assert overlap["programs_in_train"] == {"validation": 0, "test": 0, "test_heldout_families": 0}
    assert overlap["alignment_pairs_in_train"] == {
        "validation": 0,
        "test": 0,
        "test_heldout_families": 0,
    }
    # shift_letters has 675 programs (about 540 in train): 30 train problems of each family
    # find distinct programs, and so do the smaller splits.
    assert overlap["distinct_programs"] == {
        "train": 60,
        "validation": 20,
        "test": 24,
        "test_heldout_families": 8,
    }


def test_synthetic_build_fails_on_overlap(tmp_path, monkeypatch):
    # A generator that leaked (test = train's first problems) must not produce a dataset.
    real = synthetic.generate_problems
    monkeypatch.setattr(
        synthetic,
        "generate_problems",
        lambda split, n, *args: real("train" if split == "test" else split, n, *args),
    )
    with pytest.raises(RuntimeError, match="evaluation splits overlap train"):
        prepare("coderl_synthetic", tmp_path, config=synthetic_config(8, 2, 3, 1, seed=4))


def test_synthetic_family_subset_is_its_own_config(tmp_path):
    subset = ("add_constant", "count_char")
    config = synthetic_config(4, 2, 2, 1, families=subset)
    assert config.name != synthetic_config(4, 2, 2, 1).name
    assert config.name == synthetic_config(4, 2, 2, 1, families=subset[::-1]).name
    loaded = load_problems("coderl_synthetic", "train", tmp_path, config=config)
    assert loaded == synthetic.generate_problems("train", 4, seed=0, families=subset)
    assert {p.family for p in loaded} == set(subset)


def test_synthetic_default_config_sizes():
    sizes = tfds.builder_cls("coderl_synthetic").BUILDER_CONFIGS[0].sizes()
    assert sizes == {"train": 20000, "validation": 500, "test": 500, "test_heldout_families": 200}


# --- humaneval --------------------------------------------------------------------------


def test_humaneval_has_164_assert_problems_whose_reference_passes(tmp_path):
    problems = load_problems("humaneval", "test", tmp_path)
    assert len(problems) == 164
    assert [p.id for p in problems[:3]] == ["humaneval/0", "humaneval/1", "humaneval/2"]
    first = problems[0]
    assert first.tests.kind == "assert"
    assert first.tests.entry_point == "has_close_elements"
    assert "def check(candidate):" in first.tests.check_code
    assert first.starter_code.startswith("from typing import List\n\n\ndef has_close_elements(")
    assert first.reference_solution.startswith(first.starter_code)
    assert "`has_close_elements`" in first.statement
    for problem in (problems[0], problems[2], problems[163]):
        _run_check(problem.reference_solution, problem.tests.check_code, problem.tests.entry_point)


# --- prime_code -------------------------------------------------------------------------


def test_prime_code_parses_stdio_and_call_rows_and_excludes_math(tmp_path):
    builder = prepare("prime_code", tmp_path / "data", manual_dir=MANUAL)
    assert builder.excluded_rows == {"train": 1}
    assert builder.skipped_rows == {"train": 0}
    problems = load_problems("prime_code", "train", tmp_path / "data", manual_dir=MANUAL)
    assert [p.id for p in problems] == [f"prime_code/train/{i:07d}" for i in (0, 1, 3, 4, 5, 6, 7)]
    stdio, call, lines = problems[:3]
    assert stdio.statement == "Read two integers a and b and print their sum."
    assert stdio.metadata["instruction"].startswith("Write Python code to solve the problem.")
    assert stdio.metadata["system_prompt"] == "You are a helpful programmer."
    assert stdio.metadata["data_source"] == "codecontests"
    assert stdio.metadata["messages"][1]["content"].endswith("at the end.")
    assert stdio.metadata["row_format"] == "official"
    assert (stdio.tests.kind, stdio.tests.inputs, stdio.tests.outputs) == (
        "stdio",
        ("1 2\n", "10 -3\n"),
        ("3\n", "7\n"),
    )
    # APPS form: argument lists as JSON, one-element output wrappers removed.
    assert call.metadata["row_format"] == "apps"
    assert call.tests.kind == "call" and call.tests.fn_name == "double_all"
    assert call.tests.inputs == ("[[1,2]]", "[[]]")
    assert call.tests.outputs == ("[2,4]", "[]")
    assert call.metadata["outputs_unwrapped"] is True
    # Inputs/outputs given as lists of lines are joined.
    assert lines.tests.inputs == ("abc\n\n",) and lines.tests.outputs == ("cba\n",)


def test_prime_code_reads_official_rows_as_the_official_judge(tmp_path):
    """Rows in the form recipe/prepare_data.sh's parquet holds: call-based inputs are
    newline-joined JSON arguments, kept as they are and judged by the official rules."""
    problems = load_problems("prime_code", "train", tmp_path / "data", manual_dir=MANUAL)
    stdio, call, null_fn, unpaired = problems[3:]
    assert all(p.metadata["row_format"] == "official" for p in problems[3:])
    assert stdio.tests == TestSpec("stdio", ("3\n1 2 3\n", "1\n-5\n"), ("6\n", "-5\n"))
    assert call.tests == TestSpec(
        "call", ("1\n2", "[1, 2]\n[3]"), ("3", "[1, 2, 3]"), fn_name="add",
        call_arguments="json_lines",
    )  # fmt: skip
    assert call.tests.arguments(1) == [[1, 2], [3]]
    assert null_fn.tests.kind == "stdio" and null_fn.tests.null_fn_name
    assert unpaired.tests.inputs == ("1\n", "2\n")  # zip: the third input has no output
    solution = "class Solution:\n    def add(self, a, b):\n        return a + b\n"
    assert check_solution(solution, call.tests, semantics="official").passed
    assert check_solution("def add(a, b):\n    return a + b\n", call.tests).passed
    # The alignment conversion feeds the official input text to the program on stdin.
    assert first_test_input(call.tests) == ("call", "1\n2", ("add", "[1, 2]"))


def test_prime_code_bad_row_raises_naming_row_and_field_or_is_skipped(tmp_path):
    with pytest.raises(BadRowError) as info:
        prepare("prime_code", tmp_path / "strict", manual_dir=MANUAL_BAD)
    message = str(info.value)
    assert "prime_code" in message and "train.parquet" in message
    assert "row 1" in message and "reward_model.ground_truth" in message
    assert "'inputs' list" in message
    builder = prepare("prime_code", tmp_path / "skip", manual_dir=MANUAL_BAD, skip_bad_rows=True)
    assert builder.skipped_rows == {"train": 1}
    assert len(builder.as_data_source("train")) == 2
    # The count is stored with the data, so a later reader sees it without rebuilding.
    assert skipped_rows(prepare("prime_code", tmp_path / "skip")) == {"train": 1}


# --- LiveCodeBench ----------------------------------------------------------------------


def test_lcb_code_generation_decodes_compressed_private_tests(tmp_path):
    problems = load_problems("lcb_code_generation", "test", tmp_path, manual_dir=MANUAL)
    assert [p.id for p in problems] == ["lcb_code_generation/abc001_a", "lcb_code_generation/3001"]
    atcoder, leetcode = problems
    assert atcoder.starter_code is None
    assert atcoder.tests.kind == "stdio"
    assert atcoder.tests.inputs == ("1 2\n", "5 5\n", "0 0\n")
    assert atcoder.tests.outputs == ("3\n", "10\n", "0\n")
    assert atcoder.metadata["num_public_tests"] == 1
    assert atcoder.metadata["platform"] == "atcoder"
    assert leetcode.tests.kind == "call" and leetcode.tests.fn_name == "maxPairSum"
    assert leetcode.tests.inputs == ("[[1,5,3],2]", "[[4,4],0]")
    assert leetcode.tests.outputs == ("8", "8")
    assert leetcode.starter_code.startswith("class Solution:")


def test_lcb_code_generation_bad_row(tmp_path):
    with pytest.raises(BadRowError, match=r"test\.jsonl, row 1, field 'private_test_cases'"):
        prepare("lcb_code_generation", tmp_path / "strict", manual_dir=MANUAL_BAD)
    builder = prepare(
        "lcb_code_generation", tmp_path / "skip", manual_dir=MANUAL_BAD, skip_bad_rows=True
    )
    assert builder.skipped_rows == {"test": 1}


class _Exploit:
    def __reduce__(self):
        return (print, ("unpickled arbitrary code",))


def test_malicious_pickle_is_refused(capsys):
    payload = pickle.dumps(_Exploit())
    with pytest.raises(UnsafePickleError, match="builtins.print"):
        safe_unpickle(payload)
    text = base64.b64encode(zlib.compress(payload)).decode()
    with pytest.raises(ValueError, match="refusing to unpickle global"):
        decode_test_cases(text, "private_test_cases")
    assert capsys.readouterr().out == ""  # nothing ran
    tests = [{"input": "1\n", "output": "1\n", "testtype": "stdin"}]
    plain = base64.b64encode(zlib.compress(pickle.dumps(json.dumps(tests)))).decode()
    assert decode_test_cases(plain, "private_test_cases") == tests


def test_lcb_reasoning_sets(tmp_path):
    execution = load_reasoning_items("lcb_code_execution", "test", tmp_path, manual_dir=MANUAL)
    assert [item.id for item in execution] == [
        "lcb_code_execution/sample_0",
        "lcb_code_execution/sample_1",
    ]
    assert execution[1].task == "code_execution"
    assert execution[1].program == "def f(s: str) -> str:\n    return s[::-1]"
    assert (execution[1].input, execution[1].expected_output) == ("f(s = 'ab')", "'ba'")
    assert execution[0].metadata["numsteps"] == 640
    (item,) = load_reasoning_items("lcb_test_output", "test", tmp_path, manual_dir=MANUAL)
    assert item.id == "lcb_test_output/3100_0"
    assert item.task == "test_output" and item.function_name == "countEvens"
    assert (item.input, item.expected_output) == ("[1, 2, 4]", "2")
    assert item.statement == "Given nums, return how many elements are even."
    with pytest.raises(BadRowError, match=r"row 0, field 'code'"):
        prepare("lcb_code_execution", tmp_path / "bad", manual_dir=MANUAL_BAD)


# --- leetcode_contest -------------------------------------------------------------------


def test_leetcode_contest_assert_tests_run_on_solution_class(tmp_path):
    problems = load_problems("leetcode_contest", "test", tmp_path, manual_dir=MANUAL)
    pushes, pairs = problems
    assert pushes.id == "leetcode_contest/weekly-contest-381-minimum-pushes"
    assert pushes.metadata["method"] == "minimumPushes"
    assert pushes.metadata["prompt_field"] == "prompt_sft"
    assert pushes.tests.entry_point == SOLUTION_CALL
    assert pairs.metadata["method"] == "countPairs"  # read from the asserts
    assert pairs.metadata["prompt_field"] == "prompt"
    right = (
        "class Solution:\n    def countPairs(self, nums):\n"
        "        return sum(nums[i] == nums[j] for j in range(len(nums)) for i in range(j))\n"
    )
    wrong = "class Solution:\n    def countPairs(self, nums):\n        return 0\n"
    # In the sandbox: the check runs apart from the program and calls its class's methods
    # through the appended entry point.
    assert check_solution(right + SOLUTION_CALL_SOURCE, pairs.tests).passed
    assert not check_solution(wrong + SOLUTION_CALL_SOURCE, pairs.tests).passed
    assert not check_solution(right, pairs.tests).passed  # no entry point
    with pytest.raises(BadRowError, match=r"contest\.jsonl, row 1, field 'test'"):
        prepare("leetcode_contest", tmp_path / "bad", manual_dir=MANUAL_BAD)


def test_a_published_check_function_receives_the_class():
    code = "def check(candidate):\n    assert candidate().f(2) == 3\n"
    check = check_code_from_tests(code)
    assert check.startswith("def _published_check(candidate):\n    assert candidate().f(2) == 3\n")
    spec = TestSpec(kind="assert", check_code=check, entry_point=SOLUTION_CALL)
    program = "class Solution:\n    def f(self, x):\n        return x + 1\n"
    assert check_solution(program + SOLUTION_CALL_SOURCE, spec).passed


# --- errors -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, expected_file",
    [
        ("prime_code", "prime_code/train.parquet"),
        ("lcb_code_generation", "lcb_code_generation/*.jsonl"),
        ("lcb_code_execution", "lcb_code_execution/*.jsonl"),
        ("lcb_test_output", "lcb_test_output/*.jsonl"),
        ("leetcode_contest", "leetcode_contest/*.jsonl"),
    ],
)
def test_every_manual_builder_names_its_file_and_directory(tmp_path, name, expected_file):
    empty = tmp_path / "manual"
    empty.mkdir()
    with pytest.raises(ManualDataMissingError) as info:
        prepare(name, tmp_path / "data", manual_dir=empty)
    assert expected_file in str(info.value) and str(empty) in str(info.value)


def test_missing_manual_data_says_what_to_put_where(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(ManualDataMissingError) as info:
        load_problems("lcb_code_generation", "test", tmp_path / "data", manual_dir=missing)
    assert str(missing) in str(info.value)
    assert "lcb_code_generation/*.jsonl" in str(info.value)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ManualDataMissingError, match=r"prime_code/train\.parquet"):
        load_problems("prime_code", "train", tmp_path / "data", manual_dir=empty)


def test_loaders_reject_wrong_dataset_kind_and_split(tmp_path):
    with pytest.raises(ValueError, match="not a code-generation dataset"):
        load_problems("lcb_code_execution", "test", tmp_path)
    with pytest.raises(ValueError, match="unknown dataset"):
        prepare("mbpp", tmp_path)
    with pytest.raises(ValueError, match="has no split 'train'"):
        load_problems("humaneval", "train", tmp_path)
