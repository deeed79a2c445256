"""``prime_code``: the PRIME-derived parquet release CodeRL+ trains on (manual download).

Input: ``<manual_dir>/prime_code/train.parquet`` (or shards ``train-*.parquet``), optionally
``validation.parquet`` / ``test.parquet`` (or ``-*`` shards) next to it; one split per file
group. Files
are read with pyarrow in streaming record batches, so a large release never sits in memory.

Row format (verl/PRIME style; the official CodeRL+ data, ``recipe/prepare_data.sh``'s
``data/train_set.parquet``, is in this form):

* ``prompt``: chat messages ``[{"role", "content"}, ...]`` (a list, or JSON text of one). The
  last user message is the statement; a trailing paragraph starting with
  ``INSTRUCTION_PREFIX`` ("Write Python code to solve the problem...") is cut off and kept in
  ``metadata["instruction"]`` so the prompt renderer does not repeat it. A system message is
  kept in ``metadata["system_prompt"]``; the messages as given in ``metadata["messages"]``.
* ``data_source``: origin (apps, taco, codecontests, ...), kept in ``metadata``.
* ``ability`` (optional): rows whose ability is not ``"code"`` (the release mixes in math) are
  not code problems; they are excluded and counted in ``builder.excluded_rows``.
* ``reward_model``: ``{"ground_truth": <JSON text>, "style": ...}`` (a struct or JSON text).
  Two forms of ground truth (``metadata["row_format"]``):

  - ``"official"``: every expected output is text, and call-based inputs are text. Read by
    ``TestSpec.from_official``, exactly as the official judge reads the row:
    ``{"inputs": [stdin text, ...], "outputs": [stdout text, ...]}`` for stdin/stdout tests
    (an input given as a list of lines is joined with ``\n``); with ``"fn_name": "<name>"``
    call-based tests whose ``inputs[i]`` holds the arguments as JSON values, one per line,
    joined with ``\n`` (``"1\n[2, 3]"``), and ``outputs[i]`` the JSON of the return value
    (``TestSpec.call_arguments == "json_lines"``); ``"fn_name": null`` is a stdin/stdout row
    the official judge treats specially (``TestSpec.null_fn_name``). Inputs and outputs pair as
    ``zip`` pairs them; a row the official judge fails on every program (a non-text input of a
    call-based row, a ``fn_name`` that is no name) is a bad row.
  - ``"apps"`` (rows released in the APPS/TACO form, where the official judge would fail every
    program): a call-based row's ``inputs[i]`` is the positional-argument list, or an expected
    output is a list. Inputs/outputs given as lists of lines are joined with newlines and end
    with one. APPS/TACO wrap each expected return value in a one-element list (their harness
    accepts either the value or its first element). Rule used here: when *every* output of a
    problem is a one-element list, they are unwrapped (``metadata["outputs_unwrapped"] =
    True``); otherwise outputs are kept as given. A function that really returns one-element
    lists in every test would be misread by this rule; the flag in metadata makes such cases
    auditable.
* ``extra_info`` (optional): kept in ``metadata``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import tensorflow_datasets as tfds

from coderl_jax.data.builders.base import (
    FieldError,
    RecordBuilder,
    canonical_json,
    json_field,
    optional_str,
)
from coderl_jax.data.problems import Problem
from coderl_jax.execution.spec import OfficialRowFails, TestSpec

SOURCE = "prime_code"
INSTRUCTION_PREFIX = "Write Python code to solve the problem"
# Per split, globs tried in order (first that matches wins) relative to the manual dir.
SPLIT_FILES: dict[str, tuple[str, ...]] = {
    split: (f"prime_code/{split}.parquet", f"prime_code/{split}-*.parquet")
    for split in ("train", "validation", "test")
}
BATCH_ROWS = 512
_INSTRUCTION_RE = re.compile(rf"\n\s*\n\s*({re.escape(INSTRUCTION_PREFIX)}.*)\Z", re.DOTALL)


def parse_prime_row(row: dict[str, Any], split: str, index: int) -> Problem | None:
    """One parquet row -> ``Problem`` (None for non-code rows); ``FieldError`` naming the bad
    field otherwise. See the module docstring for the format and the unwrapping rule."""
    ability = row.get("ability")
    if ability is not None and ability != "code":
        return None
    messages = json_field(row, "prompt")
    if not isinstance(messages, list) or not all(
        isinstance(m, dict) and isinstance(m.get("content"), str) for m in messages
    ):
        raise FieldError("prompt", "expected a list of {role, content} chat messages")
    users = [m["content"] for m in messages if m.get("role") == "user"]
    if not users or not users[-1].strip():
        raise FieldError("prompt", "no non-empty user message")
    statement, instruction = _split_instruction(users[-1])
    systems = [m["content"] for m in messages if m.get("role") == "system"]

    reward_model = json_field(row, "reward_model")
    if not isinstance(reward_model, dict) or "ground_truth" not in reward_model:
        raise FieldError("reward_model", "expected a struct with a 'ground_truth' entry")
    truth = json_field(reward_model, "ground_truth")
    if _official_form(truth):
        tests, unwrapped, row_format = _official_tests(truth), False, "official"
    else:
        (tests, unwrapped), row_format = _tests(truth), "apps"

    metadata: dict[str, Any] = {
        "data_source": optional_str(row, "data_source"),
        "row_format": row_format,
        "messages": messages,
    }
    if instruction:
        metadata["instruction"] = instruction
    if systems:
        metadata["system_prompt"] = systems[-1]
    if unwrapped:
        metadata["outputs_unwrapped"] = True
    if isinstance(row.get("extra_info"), dict):
        metadata["extra_info"] = row["extra_info"]
    try:
        return Problem(
            id=f"{SOURCE}/{split}/{index:07d}",
            source=SOURCE,
            statement=statement,
            tests=tests,
            metadata=metadata,
        )
    except (TypeError, ValueError) as e:
        raise FieldError("prompt", str(e)) from e


def _split_instruction(text: str) -> tuple[str, str | None]:
    match = _INSTRUCTION_RE.search(text)
    if not match or not text[: match.start()].strip():
        return text.strip(), None
    return text[: match.start()].strip(), match.group(1).strip()


def _official_form(truth: Any) -> bool:
    """Whether a ground truth is in the official rows' form (module docstring)."""
    if not isinstance(truth, dict) or not isinstance(truth.get("outputs"), list):
        return True  # not the APPS form either: the official reading names the fault
    if any(isinstance(output, list) for output in truth["outputs"]):
        return False
    call_based = isinstance(truth.get("fn_name"), str)
    return not (call_based and any(isinstance(x, list) for x in truth.get("inputs") or []))


def _official_tests(truth: Any) -> TestSpec:
    field = "reward_model.ground_truth"
    try:
        return TestSpec.from_official(truth)
    except OfficialRowFails as e:
        raise FieldError(field, f"the official judge fails every program on this row: {e}") from e
    except ValueError as e:
        raise FieldError(field, str(e)) from e


def _tests(truth: Any) -> tuple[TestSpec, bool]:
    field = "reward_model.ground_truth"
    if not isinstance(truth, dict):
        raise FieldError(field, f"expected a JSON object, got {type(truth).__name__}")
    inputs, outputs = truth.get("inputs"), truth.get("outputs")
    if not isinstance(inputs, list) or not isinstance(outputs, list):
        raise FieldError(field, "expected 'inputs' and 'outputs' lists")
    if len(inputs) != len(outputs) or not inputs:
        raise FieldError(field, f"{len(inputs)} inputs and {len(outputs)} outputs")
    fn_name = truth.get("fn_name")
    if fn_name is None:
        return TestSpec(
            kind="stdio",
            inputs=[_text(x, f"{field}.inputs[{i}]") for i, x in enumerate(inputs)],
            outputs=[_text(x, f"{field}.outputs[{i}]") for i, x in enumerate(outputs)],
        ), False
    if not isinstance(fn_name, str) or not fn_name.isidentifier():
        raise FieldError(f"{field}.fn_name", f"expected a Python identifier, got {fn_name!r}")
    for i, args in enumerate(inputs):
        if not isinstance(args, list):
            raise FieldError(f"{field}.inputs[{i}]", "call-based inputs must be argument lists")
    unwrap = all(isinstance(out, list) and len(out) == 1 for out in outputs)
    expected = [out[0] for out in outputs] if unwrap else outputs
    spec = TestSpec(
        kind="call",
        fn_name=fn_name,
        inputs=[canonical_json(args) for args in inputs],
        outputs=[canonical_json(value) for value in expected],
    )
    return spec, unwrap


def _text(value: Any, field: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(line, str) for line in value):
        return "\n".join(value) + "\n"
    raise FieldError(field, f"expected text or a list of lines, got {type(value).__name__}")


def parquet_rows(paths: list[Path]):
    """``(row, file, row index in file)`` for every row of ``paths`` in order, streamed in
    record batches."""
    for path in paths:
        row_in_file = 0
        for batch in pq.ParquetFile(path).iter_batches(batch_size=BATCH_ROWS):
            for row in batch.to_pylist():
                yield row, str(path), row_in_file
                row_in_file += 1


class PrimeCode(RecordBuilder):
    """PRIME-derived code RL data (parquet, manual); records are ``Problem`` JSON."""

    VERSION = tfds.core.Version("1.0.0")
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        "Download the parquet release CodeRL+ trains on (PRIME / Eurus-2-RL-Data code rows, "
        "verl format) and place train.parquet (or train-*.parquet shards), optionally "
        "validation.parquet and test.parquet, in <manual_dir>/prime_code/."
    )

    def _split_generators(self, dl_manager):
        train = self.manual_files(dl_manager, SPLIT_FILES["train"], "the training parquet file")
        found = {"train": train}
        for split in ("validation", "test"):
            paths = self.optional_manual_files(dl_manager, SPLIT_FILES[split])
            if paths:
                found[split] = paths
        return {
            split: self._generate_examples(self._rows(split, paths), split)
            for split, paths in found.items()
        }

    def _rows(self, split: str, paths: list[Path]):
        for index, (row, file, row_in_file) in enumerate(parquet_rows(paths)):
            yield index, file, row_in_file, lambda row=row, i=index: _record(row, split, i)


def _record(row: dict, split: str, index: int) -> tuple[str, str] | None:
    problem = parse_prime_row(row, split, index)
    return None if problem is None else (problem.id, problem.to_json_str())
