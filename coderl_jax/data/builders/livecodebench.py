"""LiveCodeBench builders (manual download of the published JSONL files, split ``test``).

* ``lcb_code_generation``: ``<manual_dir>/lcb_code_generation/*.jsonl`` (the
  ``code_generation`` / ``code_generation_lite`` release files, e.g. ``test.jsonl`` ...
  ``test6.jsonl``; all files are read, sorted by name) -> ``Problem`` records with the public
  then the private tests (stdin/stdout or LeetCode call-based).
* ``lcb_code_execution``: ``<manual_dir>/lcb_code_execution/*.jsonl`` (``execution-v2``) ->
  ``ReasoningItem(task="code_execution")``.
* ``lcb_test_output``: ``<manual_dir>/lcb_test_output/*.jsonl`` (``test_generation``) ->
  ``ReasoningItem(task="test_output")``.

Row formats and the safe decoding of compressed private tests: ``livecodebench_format``.
"""

from __future__ import annotations

import tensorflow_datasets as tfds

from coderl_jax.data.builders.base import RecordBuilder, jsonl_rows
from coderl_jax.data.builders.livecodebench_format import (
    parse_code_execution_row,
    parse_code_generation_row,
    parse_test_output_row,
)


def _instructions(name: str, release: str) -> str:
    return (
        f"Download LiveCodeBench's {release} JSONL file(s) and place them in "
        f"<manual_dir>/{name}/ (any *.jsonl or *.jsonl.gz name; all are read, sorted by name)."
    )


def _patterns(name: str) -> tuple[str, ...]:
    return (f"{name}/*.jsonl", f"{name}/*.jsonl.gz")


class LcbCodeGeneration(RecordBuilder):
    """LiveCodeBench code generation; records are ``Problem`` JSON."""

    VERSION = tfds.core.Version("1.0.0")
    MANUAL_DOWNLOAD_INSTRUCTIONS = _instructions("lcb_code_generation", "code_generation(_lite)")

    def _split_generators(self, dl_manager):
        paths = self.manual_files(dl_manager, _patterns(self.name), "the code_generation JSONL")
        rows = jsonl_rows(paths, lambda row, index: _problem_record(row))
        return {"test": self._generate_examples(rows, "test")}


class LcbCodeExecution(RecordBuilder):
    """LiveCodeBench code execution (program + input -> output); records are
    ``ReasoningItem`` JSON."""

    VERSION = tfds.core.Version("1.0.0")
    MANUAL_DOWNLOAD_INSTRUCTIONS = _instructions("lcb_code_execution", "execution-v2")

    def _split_generators(self, dl_manager):
        paths = self.manual_files(dl_manager, _patterns(self.name), "the execution JSONL")
        rows = jsonl_rows(
            paths, lambda row, index: _item_record(parse_code_execution_row(row, index))
        )
        return {"test": self._generate_examples(rows, "test")}


class LcbTestOutput(RecordBuilder):
    """LiveCodeBench test output prediction (statement + input -> output); records are
    ``ReasoningItem`` JSON."""

    VERSION = tfds.core.Version("1.0.0")
    MANUAL_DOWNLOAD_INSTRUCTIONS = _instructions("lcb_test_output", "test_generation")

    def _split_generators(self, dl_manager):
        paths = self.manual_files(dl_manager, _patterns(self.name), "the test_generation JSONL")
        rows = jsonl_rows(paths, lambda row, index: _item_record(parse_test_output_row(row, index)))
        return {"test": self._generate_examples(rows, "test")}


def _problem_record(row: dict) -> tuple[str, str]:
    problem = parse_code_generation_row(row)
    return problem.id, problem.to_json_str()


def _item_record(item) -> tuple[str, str]:
    return item.id, item.to_json_str()
