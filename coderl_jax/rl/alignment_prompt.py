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

Tasks made under ``semantics="official"`` are always asked with the official CodeRL+ prompt
(:func:`render_official_prompt`; the text is data, with its source, in
:mod:`coderl_jax.rl.official_prompt_data`), quirks included: the program glued to the fence
tag and the closing fence (```` ```pythonn = int(input())``` ````), the input verbatim (its
trailing newline leaves an empty line), the names as a Python list (``['a', 'b']``), and an
example answer that spans two lines.
"""

from __future__ import annotations

import json
import re
import typing
from typing import TYPE_CHECKING, Literal

from coderl_jax.rl import official_prompt_data
from coderl_jax.rl.program_analysis import defines_solution_method

if TYPE_CHECKING:
    from coderl_jax.rl.alignment_task import AlignmentTask

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


_FILL_POINT = re.compile("|".join(re.escape(point) for point in official_prompt_data.FILL_POINTS))


def render_official_prompt(code: str, test_input: str, target_names: list[str]) -> str:
    """The official alignment prompt: ``official_prompt_data.TEMPLATE`` with ``code``,
    ``test_input`` and ``str(target_names)`` put in, each in one pass (a fill-in text that
    itself contains ``{test_input}`` stays as it is, as in the official f-string)."""
    values = {
        "{code}": code,
        "{test_input}": test_input,
        "{local_variable_name}": str(list(target_names)),
    }
    return _FILL_POINT.sub(lambda match: values[match.group(0)], official_prompt_data.TEMPLATE)


def render_prompt(task: AlignmentTask, style: str = "full") -> str:
    """Renders the alignment prompt of ``task`` in ``style`` (see the module docstring);
    official tasks get the official prompt whatever the style."""
    if style not in PROMPT_STYLES:
        raise ValueError(f"alignment prompt style must be one of {PROMPT_STYLES}, got {style!r}")
    if task.semantics == "official":
        return render_official_prompt(task.program, task.stdin, list(task.variables))
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
