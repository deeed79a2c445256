"""Parsing LiveCodeBench's published JSONL rows, including its compressed private tests.

Code generation rows carry ``question_title, question_content, platform, question_id,
contest_id, contest_date, starter_code, difficulty, public_test_cases, private_test_cases,
metadata``. Test lists are JSON text of ``[{"input", "output", "testtype"}]`` with testtype
``"stdin"`` (input fed on stdin, output expected on stdout) or ``"functional"`` (LeetCode:
each input line is the JSON of one positional argument, output the JSON of the return
value; the method name is ``metadata["func_name"]``, called on ``Solution()``).

``private_test_cases`` is either that JSON text, or -- in the larger releases --
``base64(zlib(pickle(json_text)))``. Pickle can run arbitrary code, so it is decoded with
``SafeUnpickler``, whose ``find_class`` refuses every global: only payloads built from plain
str/bytes/int/float/list/tuple/dict opcodes load (protocol >= 3; protocol 2 pickles bytes
through a global and is refused too). Anything else raises ``UnsafePickleError``.
Decompression is capped at ``MAX_DECOMPRESSED_BYTES`` against zip bombs.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import pickle
import zlib
from typing import Any

from coderl_jax.data.builders.base import (
    FieldError,
    canonical_json,
    json_field,
    optional_str,
    required_str,
)
from coderl_jax.data.problems import Problem
from coderl_jax.data.reasoning import ReasoningItem
from coderl_jax.execution.spec import TestSpec

MAX_DECOMPRESSED_BYTES = 1 << 30


class UnsafePickleError(pickle.UnpicklingError):
    """A pickle payload that references a global (class, function) and was refused."""


class SafeUnpickler(pickle.Unpickler):
    """An unpickler that refuses every global and persistent id (plain data only)."""

    def find_class(self, module: str, name: str):
        raise UnsafePickleError(
            f"refusing to unpickle global {module}.{name}: only plain str/bytes/list/dict "
            "payloads are accepted"
        )

    def persistent_load(self, pid):
        raise UnsafePickleError(f"refusing persistent id {pid!r}")


def safe_unpickle(data: bytes) -> Any:
    """``pickle.loads`` restricted to plain data (see ``SafeUnpickler``)."""
    return SafeUnpickler(io.BytesIO(data)).load()


def decode_test_cases(text: str, field: str) -> list[dict]:
    """A LiveCodeBench test list from JSON text or ``base64(zlib(pickle(json)))`` text.

    Raises ``FieldError(field, ...)`` on anything else, including refused pickles.
    """
    stripped = text.strip()
    if stripped.startswith("["):
        tests = json_field({field: stripped}, field)
    else:
        try:
            packed = base64.b64decode(stripped, validate=True)
            decompressor = zlib.decompressobj()
            raw = decompressor.decompress(packed, MAX_DECOMPRESSED_BYTES)
            if decompressor.unconsumed_tail:
                raise FieldError(field, f"decompresses past {MAX_DECOMPRESSED_BYTES} bytes")
            payload = safe_unpickle(raw)
        except UnsafePickleError as e:
            raise FieldError(field, str(e)) from e
        except (binascii.Error, zlib.error, pickle.UnpicklingError, EOFError, ValueError) as e:
            raise FieldError(
                field, f"neither JSON nor base64(zlib(pickle(json))) ({type(e).__name__}: {e})"
            ) from e
        if isinstance(payload, bytes):
            payload = payload.decode("utf-8")
        tests = json_field({field: payload}, field) if isinstance(payload, str) else payload
    if not isinstance(tests, list) or not all(isinstance(t, dict) for t in tests):
        raise FieldError(field, "expected a list of {input, output, testtype} objects")
    return tests


def _test_spec(tests: list[dict], func_name: str | None) -> TestSpec:
    kinds = {t.get("testtype") for t in tests}
    if len(kinds) != 1 or not kinds <= {"stdin", "functional"}:
        raise FieldError(
            "test_cases",
            f"testtype must be all stdin or all functional, got {sorted(map(str, kinds))}",
        )
    for i, t in enumerate(tests):
        if not isinstance(t.get("input"), str) or not isinstance(t.get("output"), str):
            raise FieldError("test_cases", f"test {i}: input and output must be strings")
    if kinds == {"stdin"}:
        return TestSpec(
            kind="stdio", inputs=[t["input"] for t in tests], outputs=[t["output"] for t in tests]
        )
    if not func_name:
        raise FieldError("metadata", "functional tests need metadata.func_name")
    inputs, outputs = [], []
    for i, t in enumerate(tests):
        try:
            args = [json.loads(line) for line in t["input"].split("\n") if line.strip()]
            expected = json.loads(t["output"])
        except json.JSONDecodeError as e:
            raise FieldError("test_cases", f"functional test {i} is not JSON lines ({e})") from e
        inputs.append(canonical_json(args))
        outputs.append(canonical_json(expected))
    return TestSpec(kind="call", fn_name=func_name, inputs=inputs, outputs=outputs)


def parse_code_generation_row(row: dict, source: str = "lcb_code_generation") -> Problem:
    """A code_generation row -> ``Problem`` with public then private tests."""
    question_id = required_str(row, "question_id")
    metadata_field = json_field(row, "metadata") if row.get("metadata") else {}
    if not isinstance(metadata_field, dict):
        raise FieldError("metadata", "expected a JSON object")
    public = decode_test_cases(required_str(row, "public_test_cases"), "public_test_cases")
    private_text = row.get("private_test_cases") or "[]"
    if not isinstance(private_text, str):
        raise FieldError("private_test_cases", "expected text")
    private = decode_test_cases(private_text, "private_test_cases")
    tests = _test_spec(public + private, metadata_field.get("func_name"))
    return Problem(
        id=f"{source}/{question_id}",
        source=source,
        statement=required_str(row, "question_content"),
        starter_code=optional_str(row, "starter_code"),
        tests=tests,
        metadata={
            "question_title": optional_str(row, "question_title"),
            "platform": optional_str(row, "platform"),
            "contest_id": optional_str(row, "contest_id"),
            "contest_date": optional_str(row, "contest_date"),
            "difficulty": optional_str(row, "difficulty"),
            "num_public_tests": len(public),
        },
    )


def parse_code_execution_row(row: dict, index: int, source: str = "lcb_code_execution"):
    """A code execution row (``code, input, output, function_name, id, ...``) ->
    ``ReasoningItem`` (task ``code_execution``)."""
    item_id = optional_str(row, "id") or f"{required_str(row, 'question_id')}_{index}"
    return ReasoningItem(
        id=f"{source}/{item_id}",
        source=source,
        task="code_execution",
        program=required_str(row, "code"),
        input=required_str(row, "input"),
        expected_output=required_str(row, "output"),
        function_name=optional_str(row, "function_name"),
        metadata={
            key: row.get(key)
            for key in ("question_id", "contest_id", "contest_date", "difficulty", "numsteps")
            if row.get(key) is not None
        },
    )


def parse_test_output_row(row: dict, index: int, source: str = "lcb_test_output"):
    """A test output prediction row (``question_content, starter_code, test, function_name,
    test_id, ...``) -> ``ReasoningItem`` (task ``test_output``) for its first test."""
    tests = json_field(row, "test")
    if isinstance(tests, dict):
        tests = [tests]
    if not isinstance(tests, list) or not tests or not isinstance(tests[0], dict):
        raise FieldError("test", "expected a non-empty list of {input, output} objects")
    test = tests[0]
    if not isinstance(test.get("input"), str) or not isinstance(test.get("output"), str):
        raise FieldError("test", "the test's input and output must be strings")
    question_id = required_str(row, "question_id")
    test_id = row.get("test_id", index)
    return ReasoningItem(
        id=f"{source}/{question_id}_{test_id}",
        source=source,
        task="test_output",
        statement=required_str(row, "question_content"),
        starter_code=optional_str(row, "starter_code"),
        function_name=optional_str(row, "function_name"),
        input=test["input"],
        expected_output=test["output"],
        metadata={
            key: row.get(key)
            for key in ("question_title", "contest_id", "contest_date", "difficulty")
            if row.get(key) is not None
        }
        | {"testtype": test.get("testtype")},
    )
