"""The user message of an execution semantics alignment task.

The prompt shows the program, then its input: stdin programs show the stdin text as given
(in a fence, or a note when it is empty); call-based programs show the call as Python,
``f(1, [2, 3])`` or ``Solution().f(...)`` for LeetCode-style classes, arguments written as
Python literals. It asks for step-by-step reasoning about the execution and for a last line
of strict JSON ``{"final_output": ..., "variables": {...}}`` naming exactly the asked
variables, with the value conventions that :func:`coderl_jax.rl.values.to_prompt_literal`
produces (so a perfect answer is ``AlignmentTask.reference_answer()``). The chat template is
applied later by the tokenizer; this is the plain user text.

Styles: ``"full"`` (default, for real models) is the prompt above. ``"concise"`` keeps the
program, the input and the answer template but drops the reasoning request and the value
conventions (about a quarter of the tokens): for small models trained to answer directly
(the tiny CPU default), where a 300-token preamble only costs compute.
"""

from __future__ import annotations

import json
import typing
from typing import TYPE_CHECKING, Literal

from coderl_jax.rl.program_analysis import defines_solution_method

if TYPE_CHECKING:
    from coderl_jax.rl.alignment import AlignmentTask

_VALUE_CONVENTIONS = (
    "Write every value as JSON: numbers, strings in double quotes, true/false, null; "
    "lists and tuples as lists; sets as lists (any order); dicts as objects whose keys are "
    'written as strings (e.g. {"1": 2}); float nan/inf as the strings "nan", "inf", "-inf".'
)


def render_call(program: str, fn_name: str, args_json: str) -> str:
    """The call a call-based test makes, as Python source: ``fn(args...)`` or
    ``Solution().fn(args...)``."""
    args = json.loads(args_json)
    if not isinstance(args, list):
        raise ValueError(f"call arguments must be a JSON list, got {args_json!r}")
    callee = f"Solution().{fn_name}" if defines_solution_method(program, fn_name) else fn_name
    return f"{callee}({', '.join(repr(arg) for arg in args)})"


def _fence(text: str, language: str = "") -> str:
    # A longer fence than any backtick run inside keeps the block intact.
    ticks = "```"
    while ticks in text:
        ticks += "`"
    return f"{ticks}{language}\n{text.rstrip(chr(10))}\n{ticks}"


PromptStyle = Literal["full", "concise"]
PROMPT_STYLES: tuple[str, ...] = typing.get_args(PromptStyle)


def render_prompt(task: AlignmentTask, style: str = "full") -> str:
    """Renders the alignment prompt of ``task`` in ``style`` (see the module docstring)."""
    if style not in PROMPT_STYLES:
        raise ValueError(f"alignment prompt style must be one of {PROMPT_STYLES}, got {style!r}")
    parts = ["Here is a Python program:", _fence(task.program, "python")]
    if task.input_kind == "stdin":
        if task.stdin:
            parts += ["It is run with this text on standard input:", _fence(task.stdin)]
        else:
            parts.append("It is run with empty standard input.")
        output_line = (
            "- final_output: everything the program prints to standard output, as a JSON string."
        )
    else:
        fn_name, args_json = task.call
        call = render_call(task.program, fn_name, args_json)
        parts += ["It is run by evaluating this call:", _fence(call, "python")]
        output_line = "- final_output: the value the call returns."
    names = ", ".join(task.variables)
    template_vars = ", ".join(f"{json.dumps(name)}: ..." for name in task.variables)
    answer_template = f'{{"final_output": ..., "variables": {{{template_vars}}}}}'
    if style == "concise":
        parts += [
            f"Give its output and the final values of {names} as one JSON line:",
            answer_template,
        ]
        return "\n\n".join(parts)
    parts += [
        "Reason step by step about how this program executes on that input: follow the "
        "control flow and track how the values of the variables change. Then give:",
        output_line + f"\n- variables: the final value of each of {names}, i.e. the value it holds "
        "after its last assignment during the run.",
        _VALUE_CONVENTIONS,
        "Finish your response with exactly one line containing one JSON object of this "
        "form, and write nothing after that line:",
        answer_template,
    ]
    return "\n\n".join(parts)
